//! The playground: a small web app on loopback that shows the simulated Mattermost the way its
//! web client would (channels, DMs, posts with attachments and buttons, threads, ephemeral
//! messages, dialogs, a message box for `/teleport`) beside a Teleport admin panel (create,
//! approve, deny and delete access requests; their reviews and plugin data).
//!
//! Every action takes the path real Mattermost would take toward the service: a button is the
//! click the simulator POSTs to the button's integration URL, a dialog is the submission it
//! POSTs to the dialog's URL, a command is the slash command request. The page is rendered on
//! the server and refreshed by short polling; no login (it exists only in
//! `teleport-mattermost demo --keep-running` and binds 127.0.0.1).

mod cluster;
mod forms;
mod html;
mod markdown;
mod routes;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

use crate::mattermost::MattermostSim;
use crate::teleport::TeleportSim;

/// The Mattermost user added to the channel without any Teleport account: what someone who
/// is not linked sees when they click or type a command.
pub const UNLINKED_USERNAME: &str = "guest";

/// What the playground shows and acts on.
pub struct Setup {
    pub teleport: Arc<TeleportSim>,
    pub mattermost: MattermostSim,
    /// The service's slash command endpoint (`<public_addr>/mattermost/command`).
    pub command_url: String,
    /// The slash command's token, as Mattermost sends it.
    pub command_token: String,
    /// The channel the bot posts requests to: shown first, and joined by the unlinked user.
    pub channel_id: String,
    /// The users to act as, in switcher order: (Teleport user, Mattermost user id).
    pub users: Vec<(String, String)>,
}

/// A user of the switcher.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub username: String,
    pub mattermost_id: String,
    /// `None` for the unlinked user.
    pub teleport_user: Option<String>,
}

/// A dialog answer that keeps the dialog open (Mattermost shows it in the dialog).
#[derive(Debug, Clone, Default)]
pub(crate) struct DialogErrors {
    pub error: String,
    pub fields: BTreeMap<String, String>,
}

/// Dialogs opened by clicks and commands made in the playground (the demo's own scripted
/// story opens some too, which nobody here could answer), and which of them were closed.
#[derive(Default)]
pub(crate) struct Dialogs {
    pub ours: HashSet<String>,
    pub closed: HashSet<String>,
    pub errors: BTreeMap<String, DialogErrors>,
}

pub(crate) struct Play {
    pub tp: Arc<TeleportSim>,
    pub mm: MattermostSim,
    pub command_url: String,
    pub command_token: String,
    pub home: String,
    pub actors: Vec<Actor>,
    pub dialogs: Mutex<Dialogs>,
    /// `127.0.0.1:<port>`: the only Host (and Origin host) the playground answers.
    pub authority: String,
}

impl Play {
    pub fn dialogs(&self) -> MutexGuard<'_, Dialogs> {
        self.dialogs.lock().expect("playground dialogs poisoned")
    }

    /// The actor named `username` (the first one when unknown).
    pub fn actor(&self, username: Option<&str>) -> &Actor {
        username
            .and_then(|u| self.actors.iter().find(|a| a.username == u))
            .unwrap_or(&self.actors[0])
    }
}

/// A running playground; it stops when dropped.
pub struct Playground {
    url: Url,
    _stop: DropGuard,
}

impl Playground {
    /// Adds the unlinked user to the channel, binds 127.0.0.1 on a free port and serves.
    pub async fn start(setup: Setup) -> std::io::Result<Self> {
        let mm = setup.mattermost;
        let mut actors: Vec<Actor> = setup
            .users
            .iter()
            .filter_map(|(teleport, id)| {
                mm.user(id).map(|u| Actor {
                    username: u.username,
                    mattermost_id: id.clone(),
                    teleport_user: Some(teleport.clone()),
                })
            })
            .collect();
        let guest = mm.add_user(
            UNLINKED_USERNAME,
            &format!("{UNLINKED_USERNAME}@example.com"),
        );
        mm.add_channel_member(&setup.channel_id, &guest);
        actors.push(Actor {
            username: UNLINKED_USERNAME.into(),
            mattermost_id: guest,
            teleport_user: None,
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let url = Url::parse(&format!("http://{addr}/")).expect("a socket address is a URL host");
        let play = Arc::new(Play {
            tp: setup.teleport,
            mm,
            command_url: setup.command_url,
            command_token: setup.command_token,
            home: setup.channel_id,
            actors,
            dialogs: Mutex::new(Dialogs::default()),
            authority: addr.to_string(),
        });
        let stop = CancellationToken::new();
        let token = stop.clone();
        let app = routes::router(play);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(Self {
            url,
            _stop: stop.drop_guard(),
        })
    }

    /// `http://127.0.0.1:<port>/`, the address to open in a browser.
    pub fn url(&self) -> &Url {
        &self.url
    }
}
