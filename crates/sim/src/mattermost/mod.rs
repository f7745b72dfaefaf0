//! A Mattermost REST v4 server on a real loopback socket, faithful to the wire facts in
//! docs/mattermost-api.md: users (a bot first), teams, channels with membership, DM channels,
//! posts with threads and edits, AppError bodies, the post length limit, `pending_post_id`
//! de-duplication, the rate limiter, trigger ids and dialogs. It also plays Mattermost toward
//! the service (button clicks, dialog submissions, slash commands) and has a fault switchboard.
//!
//! Used by the integration tests, the benchmark and `teleport-mattermost demo`.

mod dialogs;
mod errors;
mod faults;
mod ids;
mod integrations;
mod model;
mod posts;
mod ratelimit;
mod routes;
mod store;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

pub use errors::ApiError;
pub use faults::{Fault, Faults, RouteFilter};
pub use ids::{is_valid_id, new_id};
pub use integrations::{ClickOutcome, CommandOutcome, DialogOutcome, SimError};
pub use model::{
    EphemeralPost, LoggedRequest, OpenedDialog, PostRevision, SimChannel, SimPost, SimReaction,
    SimTeam, SimUser,
};

pub use ratelimit::RateLimit;
pub use tls::server_tls_config;

use store::{Rules, Store};

/// Server settings of the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub bot_username: String,
    /// The bot's access token (the service's `mattermost.token`).
    pub bot_token: String,
    /// `MaxPostSize` in runes (16383 on current servers, 4000 on old ones).
    pub max_post_runes: usize,
    /// `PrivacySettings.ShowEmailAddress = false`: e-mail lookups by the bot get 403 and user
    /// records come without e-mail.
    pub hide_emails: bool,
    /// `RateLimitSettings` (off by default, as on a fresh server; `Some(RateLimit::default())`
    /// is the server's default limit of 10 requests/s with a burst of 100 per client address).
    pub rate_limit: Option<RateLimit>,
    /// Keep request bodies in the request log (turn off for the benchmark).
    pub log_bodies: bool,
    /// How long a `pending_post_id` is remembered (30 s on the server).
    pub dedup_ttl: Duration,
    /// How long a trigger id is valid (30 s on the server).
    pub trigger_ttl: Duration,
    /// Serve HTTPS with this config (see [`server_tls_config`]) instead of HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bot_username: "teleport".into(),
            bot_token: new_id(),
            max_post_runes: 16383,
            hide_emails: false,
            rate_limit: None,
            log_bodies: true,
            dedup_ttl: Duration::from_secs(30),
            trigger_ttl: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// The client's address, which the rate limiter keys on (over plain TCP and over TLS).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// State shared by the routes and the handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Faults,
    changes: watch::Sender<u64>,
    log: Mutex<Vec<LoggedRequest>>,
    log_bodies: bool,
    http: reqwest::Client,
    url: Url,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().expect("simulator store poisoned")
    }

    /// Applies a change and wakes everyone waiting for one.
    fn mutate<T, E>(&self, f: impl FnOnce(&mut Store) -> Result<T, E>) -> Result<T, E> {
        let result = f(&mut self.store());
        if result.is_ok() {
            self.changes.send_modify(|n| *n += 1);
        }
        result
    }

    fn log_request(&self, entry: LoggedRequest) {
        self.log.lock().expect("request log poisoned").push(entry);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// A running simulator. Clones share it; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct MattermostSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    bot_id: String,
    bot_token: String,
    _stop: Arc<DropGuard>,
}

impl std::fmt::Debug for MattermostSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MattermostSim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Timed out waiting for the simulator to reach a state.
#[derive(Debug, Clone, thiserror::Error)]
#[error("timed out after {0:?} waiting for the Mattermost simulator")]
pub struct WaitTimeout(pub Duration);

impl MattermostSim {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url =
            Url::parse(&format!("{scheme}://{addr}/")).expect("a socket address is a URL host");
        let rules = Rules {
            max_post_runes: config.max_post_runes,
            hide_emails: config.hide_emails,
            dedup_ttl: config.dedup_ttl,
            dedup_capacity: 25_000,
            dedup: true,
            trigger_ttl: config.trigger_ttl,
        };
        let store = Store::new(rules, &config.bot_username, &config.bot_token);
        let bot_id = store.bot_id.clone();
        let faults = Faults::default();
        faults.set_rate_limit(config.rate_limit);
        let tls = tls::client_tls_config();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults,
            changes: watch::channel(0).0,
            log: Mutex::new(Vec::new()),
            log_bodies: config.log_bodies,
            http,
            url,
        });
        let stop = CancellationToken::new();
        let app = routes::router(shared.clone());
        let token = stop.clone();
        match config.tls {
            None => {
                tokio::spawn(async move {
                    let _ = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<PeerAddr>(),
                    )
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
                });
            }
            Some(tls) => {
                let listener = tls::TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(tls),
                };
                tokio::spawn(async move {
                    let _ = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<PeerAddr>(),
                    )
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
                });
            }
        }
        Ok(Self {
            shared,
            addr,
            bot_id,
            bot_token: config.bot_token,
            _stop: Arc::new(stop.drop_guard()),
        })
    }

    /// `http://127.0.0.1:<port>/`, the `mattermost.url` to configure.
    pub fn url(&self) -> Url {
        self.shared.url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn bot_id(&self) -> &str {
        &self.bot_id
    }

    pub fn bot_token(&self) -> &str {
        &self.bot_token
    }

    /// The fault switchboard.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Turns `pending_post_id` de-duplication on (the default) or off: off, a re-sent post
    /// creates a second post, as behind several Mattermost nodes without a shared cache.
    pub fn set_pending_post_dedup(&self, enabled: bool) {
        self.shared.store().rules.dedup = enabled;
    }

    // ---- set-up -------------------------------------------------------------------------

    /// Adds a (non-bot) user; returns its id.
    pub fn add_user(&self, username: &str, email: &str) -> String {
        self.shared
            .mutate(|s| Ok::<_, ()>(s.add_user(username, email, false)))
            .expect("infallible")
    }

    /// Makes `user_id` a system admin (admins see hidden e-mails).
    pub fn make_admin(&self, user_id: &str) {
        if let Some(u) = self.shared.store().users.get_mut(user_id) {
            u.roles = "system_user system_admin".into();
        }
    }

    /// Lets `token` authenticate as `user_id`.
    pub fn add_token(&self, token: &str, user_id: &str) {
        self.shared.store().add_token(token, user_id);
    }

    /// Adds an open team; returns its id.
    pub fn add_team(&self, name: &str) -> String {
        self.shared.store().add_team(name, true)
    }

    /// Adds an invite-only team (readable by members only); returns its id.
    pub fn add_private_team(&self, name: &str) -> String {
        self.shared.store().add_team(name, false)
    }

    /// Adds a public channel; returns its id.
    pub fn add_channel(&self, team_id: &str, name: &str) -> String {
        self.shared.store().add_channel(team_id, name, false)
    }

    /// Adds a private channel; returns its id.
    pub fn add_private_channel(&self, team_id: &str, name: &str) -> String {
        self.shared.store().add_channel(team_id, name, true)
    }

    pub fn add_team_member(&self, team_id: &str, user_id: &str) {
        self.shared.store().add_team_member(team_id, user_id);
    }

    /// Adds a member to a channel (and its team), like `/invite`.
    pub fn add_channel_member(&self, channel_id: &str, user_id: &str) {
        self.shared.store().add_channel_member(channel_id, user_id);
    }

    pub fn remove_channel_member(&self, channel_id: &str, user_id: &str) {
        self.shared
            .store()
            .remove_channel_member(channel_id, user_id);
    }

    /// `user_id` posts `message` in `channel_id` (a reply when `root_id` is set), under the
    /// same rules as `POST /posts`; the playground's message box uses it.
    pub fn post_as(
        &self,
        user_id: &str,
        channel_id: &str,
        root_id: &str,
        message: &str,
    ) -> Result<SimPost, ApiError> {
        let body =
            serde_json::json!({"channel_id": channel_id, "root_id": root_id, "message": message});
        let now = tokio::time::Instant::now();
        let post = self.shared.mutate(|s| s.create_post(user_id, &body, now))?;
        let id = post["id"].as_str().unwrap_or_default();
        Ok(self.post(id).expect("the post was just stored"))
    }

    /// A trigger id as a click or slash command by `user_id` in `channel_id` would carry.
    pub fn issue_trigger(&self, user_id: &str, channel_id: &str) -> String {
        let now = tokio::time::Instant::now();
        self.shared.store().issue_trigger(user_id, channel_id, now)
    }

    // ---- inspection ---------------------------------------------------------------------

    pub fn user(&self, id: &str) -> Option<SimUser> {
        self.shared.store().users.get(id).cloned()
    }

    pub fn channel(&self, id: &str) -> Option<SimChannel> {
        self.shared.store().channels.get(id).cloned()
    }

    /// The channels `user_id` is a member of (team channels and DMs), oldest first.
    pub fn channels_of(&self, user_id: &str) -> Vec<SimChannel> {
        let s = self.shared.store();
        let mut channels: Vec<SimChannel> = s
            .channels
            .values()
            .filter(|c| s.is_member(&c.id, user_id))
            .cloned()
            .collect();
        channels.sort_by(|a, b| (a.create_at, &a.name).cmp(&(b.create_at, &b.name)));
        channels
    }

    /// Every post (roots and replies), oldest first.
    pub fn posts(&self) -> Vec<SimPost> {
        let s = self.shared.store();
        s.post_order.iter().map(|id| s.posts[id].clone()).collect()
    }

    pub fn post_count(&self) -> usize {
        self.shared.store().post_order.len()
    }

    /// `(post id, when it was stored)` for every post from index `from` on (creation order),
    /// a monotonic instant taken under the store lock: the benchmark's event→post clock.
    pub fn post_times(&self, from: usize) -> Vec<(String, std::time::Instant)> {
        let s = self.shared.store();
        s.post_order
            .iter()
            .zip(&s.stored_at)
            .skip(from)
            .map(|(id, at)| (id.clone(), *at))
            .collect()
    }

    /// The posts of one channel (roots and replies), oldest first.
    pub fn posts_in(&self, channel_id: &str) -> Vec<SimPost> {
        let s = self.shared.store();
        s.channel_posts
            .get(channel_id)
            .map(|ids| ids.iter().map(|id| s.posts[id].clone()).collect())
            .unwrap_or_default()
    }

    /// A post with its edit history.
    pub fn post(&self, id: &str) -> Option<SimPost> {
        self.shared.store().posts.get(id).cloned()
    }

    /// The replies in a thread, oldest first.
    pub fn thread_replies(&self, root_id: &str) -> Vec<SimPost> {
        let s = self.shared.store();
        s.replies
            .get(root_id)
            .map(|ids| ids.iter().map(|id| s.posts[id].clone()).collect())
            .unwrap_or_default()
    }

    /// The DM channel of two users, once one was created.
    pub fn dm_channel(&self, user_a: &str, user_b: &str) -> Option<String> {
        self.shared.store().dm_channel(user_a, user_b)
    }

    pub fn dialogs(&self) -> Vec<OpenedDialog> {
        self.shared.store().dialogs.clone()
    }

    pub fn ephemeral_posts(&self) -> Vec<EphemeralPost> {
        self.shared.store().ephemeral.clone()
    }

    pub fn reactions(&self) -> Vec<SimReaction> {
        self.shared.store().reactions.clone()
    }

    /// Every request served so far (method, path, status, auth scheme, body).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .expect("request log poisoned")
            .clone()
    }

    /// How many requests with this method had a path starting with `path_prefix`.
    pub fn request_count(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .log
            .lock()
            .expect("request log poisoned")
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }

    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .expect("request log poisoned")
            .clear();
    }

    /// Waits until `check` returns `Some` (re-checked after every change: a post, an edit, a
    /// dialog, a request), without polling.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&MattermostSim) -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.mark_unchanged();
            if let Some(t) = check(self) {
                return Ok(t);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Err(WaitTimeout(timeout));
            }
        }
    }

    /// Waits until at least `n` posts exist; returns all posts.
    pub async fn wait_for_posts(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<SimPost>, WaitTimeout> {
        self.wait_for(timeout, |sim| (sim.post_count() >= n).then(|| sim.posts()))
            .await
    }
}
