//! The one fixture the integration tests, the benchmark and `demo` share: both simulators
//! on loopback, the standard Teleport cast, a team and channel with the bot in it, a
//! Mattermost account per cast member bound to its Teleport user by the `mattermost_user_id`
//! trait (as an admin sets it up for in-chat review), the plugin's identity file, and the
//! `[teleport]`/`[mattermost]` part of a service config. Starting the service is the
//! caller's business: the simulators know nothing of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::mattermost::{MattermostSim, SimConfig};
use crate::teleport::fixtures::{
    self, ADMIN, BYSTANDER, PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2,
};
use crate::teleport::{RawData, SimOptions, TeleportSim};

/// The cast members who have a Mattermost account.
pub const CAST: [&str; 5] = [REQUESTER, REVIEWER1, REVIEWER2, BYSTANDER, ADMIN];
/// Those whose Teleport user is bound to their account. `admin` is left unlinked, so a
/// Mattermost user without a Teleport identity exists too.
pub const LINKED: [&str; 4] = [REQUESTER, REVIEWER1, REVIEWER2, BYSTANDER];
/// The plugin name the service keeps its plugin data under.
pub const PLUGIN_NAME: &str = "mattermost";

/// What differs between users of the world.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub teleport: SimOptions,
    pub mattermost: SimConfig,
    /// The team and channel the bot is in (`team-llama`/`channel-llama`).
    pub team: String,
    pub channel: String,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            teleport: SimOptions::default(),
            mattermost: SimConfig::default(),
            team: "team-llama".into(),
            channel: "channel-llama".into(),
        }
    }
}

impl WorldOptions {
    /// Keeps request bodies in the Mattermost simulator's log or not (the benchmark does
    /// not: they would only cost memory).
    pub fn log_bodies(mut self, on: bool) -> Self {
        self.mattermost.log_bodies = on;
        self
    }
}

pub struct World {
    /// Shared: the playground serves beside whoever holds the world.
    pub tp: Arc<TeleportSim>,
    pub mm: MattermostSim,
    /// Scratch space (identity file, configs, logs), removed on drop.
    pub dir: tempfile::TempDir,
    /// The plugin's identity file (user `access-plugin`).
    pub identity: PathBuf,
    pub team_id: String,
    /// The channel's id; the bot and the whole cast are members.
    pub channel_id: String,
    /// `team/channel`, as a recipient in the service's config.
    pub channel_path: String,
    /// Mattermost user id by Teleport user name.
    pub mm_users: BTreeMap<&'static str, String>,
}

impl World {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(WorldOptions::default()).await
    }

    pub async fn start_with(opts: WorldOptions) -> std::io::Result<Self> {
        let tp = TeleportSim::start(opts.teleport).await?;
        fixtures::standard(&tp);
        let mm = MattermostSim::start(opts.mattermost).await?;
        let team_id = mm.add_team(&opts.team);
        let channel_id = mm.add_channel(&team_id, &opts.channel);
        mm.add_team_member(&team_id, mm.bot_id());
        mm.add_channel_member(&channel_id, mm.bot_id());
        let mut mm_users = BTreeMap::new();
        for name in CAST {
            let (handle, email) = match name.split_once('@') {
                Some((handle, _)) => (handle.replace('.', "-"), name.to_string()),
                None => (name.to_string(), format!("{name}@example.com")),
            };
            let id = mm.add_user(&handle, &email);
            mm.add_team_member(&team_id, &id);
            mm.add_channel_member(&channel_id, &id);
            if let Some(mut user) = tp.user(name).filter(|_| LINKED.contains(&name)) {
                user.traits
                    .insert("mattermost_user_id".into(), vec![id.clone()]);
                tp.upsert_user(user);
            }
            mm_users.insert(name, id);
        }
        let dir = tempfile::Builder::new()
            .prefix("teleport-mattermost-")
            .tempdir()?;
        let identity = dir.path().join("identity");
        tp.write_identity(PLUGIN_USER, &identity)?;
        Ok(Self {
            tp: Arc::new(tp),
            mm,
            dir,
            identity,
            team_id,
            channel_id,
            channel_path: format!("{}/{}", opts.team, opts.channel),
            mm_users,
        })
    }

    /// The Mattermost user id of a cast member.
    pub fn mm_user(&self, name: &str) -> Option<&str> {
        self.mm_users.get(name).map(String::as_str)
    }

    /// The DM channel between the bot and a cast member, once it exists.
    pub fn dm(&self, name: &str) -> Option<String> {
        self.mm.dm_channel(self.mm.bot_id(), self.mm_user(name)?)
    }

    /// The plugin data the service keeps for a request.
    pub fn plugin_data(&self, request_id: &str) -> Option<RawData> {
        self.tp.plugin_data(request_id, PLUGIN_NAME)
    }

    /// A service config for this world: `[teleport]` and `[mattermost]`, then `extra` (the
    /// caller's sections: `[http]`, `[review]`, recipients, …).
    pub fn config_text(&self, extra: &str) -> String {
        format!(
            "[teleport]\naddr = \"{}\"\nidentity = {:?}\n\n[mattermost]\nurl = \"{}\"\ntoken = \"{}\"\n\n{extra}\n",
            self.tp.addr(),
            self.identity,
            self.mm.url(),
            self.mm.bot_token(),
        )
    }
}
