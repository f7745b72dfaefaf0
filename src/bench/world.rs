//! The simulated systems a benchmark (or a multi-process test) runs against: the Teleport
//! simulator with the standard cast, the Mattermost simulator with a team, a channel and the
//! cast's accounts, a plugin identity file, and a complete service config for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use teleport_mattermost_sim::mattermost::{MattermostSim, SimConfig};
use teleport_mattermost_sim::teleport::fixtures::{
    self, ADMIN, BYSTANDER, PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2,
};
use teleport_mattermost_sim::teleport::{SimOptions, TeleportSim};

/// The channel every request is posted to (`team/channel`).
pub const CHANNEL: &str = "team-llama/channel-llama";

/// A scratch directory removed on drop (the library has no tempfile dependency).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct SimWorld {
    pub tp: TeleportSim,
    pub mm: MattermostSim,
    pub dir: ScratchDir,
    /// The plugin's identity file (user `access-plugin`).
    pub identity: PathBuf,
    /// The id of [`CHANNEL`].
    pub channel_id: String,
    /// Mattermost user ids of the cast, by Teleport user name.
    pub mm_users: Vec<(&'static str, String)>,
}

impl SimWorld {
    /// Starts both simulators on loopback; `log_bodies` keeps request bodies in the
    /// Mattermost simulator's request log (off for the benchmark: it would only cost memory).
    pub async fn start(log_bodies: bool) -> std::io::Result<Self> {
        teleport_mattermost::install_crypto_provider();
        let tp = TeleportSim::start(SimOptions::default()).await?;
        fixtures::standard(&tp);
        let mm = MattermostSim::start(SimConfig {
            log_bodies,
            ..SimConfig::default()
        })
        .await?;
        let team = mm.add_team("team-llama");
        let channel_id = mm.add_channel(&team, "channel-llama");
        mm.add_team_member(&team, mm.bot_id());
        mm.add_channel_member(&channel_id, mm.bot_id());
        let mut mm_users = Vec::new();
        for name in [REQUESTER, REVIEWER1, REVIEWER2, BYSTANDER, ADMIN] {
            let username = name.split('@').next().unwrap_or(name).replace('.', "-");
            let email = if name.contains('@') {
                name.to_string()
            } else {
                format!("{name}@example.com")
            };
            let id = mm.add_user(&username, &email);
            mm.add_team_member(&team, &id);
            mm.add_channel_member(&channel_id, &id);
            // Bind the Teleport user to its Mattermost account, for in-chat review.
            if let Some(mut user) = tp.user(name) {
                user.traits
                    .insert("mattermost_user_id".into(), vec![id.clone()]);
                tp.upsert_user(user);
            }
            mm_users.push((name, id));
        }
        let dir = ScratchDir::new("teleport-mattermost")?;
        let identity = dir.path().join("identity");
        tp.write_identity(PLUGIN_USER, &identity)?;
        Ok(Self {
            tp,
            mm,
            dir,
            identity,
            channel_id,
            mm_users,
        })
    }

    /// The Mattermost user id of a cast member.
    pub fn mm_user(&self, name: &str) -> Option<&str> {
        self.mm_users
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.as_str())
    }

    /// The DM channel between the bot and a cast member, once it exists.
    pub fn dm(&self, name: &str) -> Option<String> {
        self.mm.dm_channel(self.mm.bot_id(), self.mm_user(name)?)
    }

    /// A complete service config: every request goes to [`CHANNEL`] (plus the suggested
    /// reviewers' DMs), logs at `warn` to `log`, callbacks at `http://<listen>` (used when
    /// `extra` enables review); `extra` is appended (more sections).
    pub fn config_text(&self, listen: SocketAddr, log: &Path, extra: &str) -> String {
        format!(
            "[teleport]\naddr = \"{}\"\nidentity = {:?}\n\n[mattermost]\nurl = \"{}\"\ntoken = \"{}\"\n\n[role_to_recipients]\n\"*\" = [\"{CHANNEL}\"]\n\n[log]\noutput = {:?}\nseverity = \"warn\"\n\n[http]\nlisten_addr = \"{listen}\"\npublic_addr = \"http://{listen}\"\n\n{extra}\n",
            self.tp.addr(),
            self.identity,
            self.mm.url(),
            self.mm.bot_token(),
            log,
        )
    }
}
