//! What end-to-end tests add to the simulators' shared world: the service itself running
//! in-process against them over real sockets, ready checks and plugin-data polling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use teleport_mattermost::access::PluginData;
use teleport_mattermost::app::{Application, Options};
use teleport_mattermost::config::Config;
use teleport_mattermost::health::Readiness;
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::signals::Signals;
use teleport_mattermost_sim::mattermost::SimPost;
use teleport_mattermost_sim::teleport::SimOptions;
use teleport_mattermost_sim::world::{World as SimWorld, WorldOptions};
use tokio_util::sync::CancellationToken;

/// Tests that load both cores for many seconds (chaos runs, request floods) take turns: run
/// side by side they measure each other, not the service.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const WAIT: Duration = Duration::from_secs(10);
/// `[review] signing_secret` of services started with [`World::review_service`].
pub const SIGNING_SECRET: &str = "review-signing-secret-0123456789abcdef";
/// `[review] command_token` of services started with [`World::review_service`].
pub const COMMAND_TOKEN: &str = "slash-command-token-for-tests";

/// In-chat review settings for [`World::review_service_with`].
#[derive(Debug, Clone)]
pub struct ReviewSetup {
    /// Extra `[review]` keys (one per line).
    pub review: String,
    /// `[http] callback_allowed_sources`, as a TOML array.
    pub allowed_sources: String,
    /// More sections or tables (e.g. `[role_to_recipients]`).
    pub extra: String,
}

impl Default for ReviewSetup {
    fn default() -> Self {
        Self {
            review: String::new(),
            allowed_sources: "[\"127.0.0.1/32\"]".into(),
            extra: "[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n".into(),
        }
    }
}

/// The simulators' world ([`teleport_mattermost_sim::world::World`]) plus what only tests
/// need: the service started in-process against it.
pub struct World(SimWorld);

impl std::ops::Deref for World {
    type Target = SimWorld;

    fn deref(&self) -> &SimWorld {
        &self.0
    }
}

impl World {
    pub async fn start() -> Self {
        Self::start_with(SimOptions::default()).await
    }

    pub async fn start_with(opts: SimOptions) -> Self {
        teleport_mattermost::install_crypto_provider();
        let opts = WorldOptions {
            teleport: opts,
            ..WorldOptions::default()
        };
        Self(
            SimWorld::start_with(opts)
                .await
                .expect("the simulators start"),
        )
    }

    /// A complete config for this world, listening on a free port; `extra` is appended.
    pub fn config_text(&self, extra: &str) -> String {
        self.0
            .config_text(&format!("[http]\nlisten_addr = \"127.0.0.1:0\"\n\n{extra}"))
    }

    pub fn config(&self, extra: &str) -> Config {
        Config::from_toml(&self.config_text(extra)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the service and waits until its watch is established.
    /// A Teleport client with the plugin's identity: another program writing its plugin data.
    pub fn other_program(&self) -> teleport_mattermost::teleport::TeleportClient {
        let cfg = self.config("");
        let signals = Signals::manual(Default::default());
        teleport_mattermost::teleport::TeleportClient::connect(
            &cfg.teleport,
            &signals,
            Default::default(),
        )
        .unwrap()
    }

    pub async fn service(&self, extra: &str) -> Service {
        let s = self.service_unready(extra).await;
        s.ready().await;
        s
    }

    pub async fn service_unready(&self, extra: &str) -> Service {
        Service::start(self.config(extra), Options::default()).await
    }

    /// Starts the service with in-chat review enabled (posts go to `team-llama/channel-llama`)
    /// and waits until it is ready.
    pub async fn review_service(&self) -> Service {
        self.review_service_with(ReviewSetup::default()).await
    }

    pub async fn review_service_with(&self, setup: ReviewSetup) -> Service {
        let s = self.review_service_unready(setup).await;
        s.ready().await;
        s
    }

    /// The port is picked first, so `[http] public_addr` can name it.
    pub async fn review_service_unready(&self, setup: ReviewSetup) -> Service {
        let std = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        std.set_nonblocking(true).unwrap();
        let port = std.local_addr().unwrap().port();
        let listener = tokio::net::TcpListener::from_std(std).unwrap();
        let text = self.0.config_text(&format!(
            "[http]\nlisten_addr = \"127.0.0.1:0\"\npublic_addr = \"http://127.0.0.1:{port}\"\ncallback_allowed_sources = {}\n\n\
             [review]\nenabled = true\nsigning_secret = \"{SIGNING_SECRET}\"\ncommand_token = \"{COMMAND_TOKEN}\"\n{}\n\n{}",
            setup.allowed_sources, setup.review, setup.extra,
        ));
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
        Service::start_on(config, Options::default(), listener).await
    }

    /// Polls a request's plugin data until no claim is held and `pred` holds, as upstream's
    /// `checkPluginData` does: the service records progress right after it posts, so a test
    /// may look in between.
    pub async fn data_when(&self, id: &str, pred: impl Fn(&PluginData) -> bool) -> PluginData {
        self.data_within(id, WAIT, |d, _| pred(d)).await
    }

    /// [`World::data_when`] with its own timeout and a look at the stored keys too.
    pub async fn data_within(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&PluginData, &BTreeMap<String, String>) -> bool,
    ) -> PluginData {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(m) = self.plugin_data(id)
                && let d = PluginData::decode(&m).unwrap()
                && pred(&d, &m)
                && !m.contains_key("claim")
            {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "plugin data of {id} never matched: {:?}",
                self.plugin_data(id)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub struct Service {
    pub addr: SocketAddr,
    pub readiness: Readiness,
    pub metrics: Metrics,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    pub async fn start(config: Config, options: Options) -> Self {
        let app = Application::build(config, options)
            .await
            .expect("service binds");
        Self::run(app)
    }

    /// Serves on a listener bound beforehand.
    pub async fn start_on(
        config: Config,
        options: Options,
        listener: tokio::net::TcpListener,
    ) -> Self {
        Self::run(Application::with_listener(config, options, listener))
    }

    fn run(app: Application) -> Self {
        let (addr, readiness, metrics) = (app.local_addr(), app.readiness(), app.metrics());
        let token = CancellationToken::new();
        let signals = Signals::manual(token.clone());
        let handle = tokio::spawn(app.run_until_stopped(signals));
        Self {
            addr,
            readiness,
            metrics,
            token,
            handle,
        }
    }

    /// `http://127.0.0.1:<port>/mattermost/<route>`.
    pub fn url(&self, route: &str) -> String {
        format!("http://{}/mattermost/{route}", self.addr)
    }

    pub async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.readiness.is_ready() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "service not ready within {WAIT:?}"
            );
            assert!(
                !self.handle.is_finished(),
                "service stopped during start-up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Graceful stop; returns how the service ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("service stops within the grace period")
            .expect("service task does not panic")
    }

    /// Waits for the service to end by itself (a fatal error).
    pub async fn ended(self) -> anyhow::Result<()> {
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("service ends")
            .expect("no panic")
    }
}

/// The request id a root post shows (`**Request ID**: <id>`).
pub fn request_id(post: &SimPost) -> Option<String> {
    let start = post.message.find("**Request ID**: ")? + "**Request ID**: ".len();
    let rest = &post.message[start..];
    Some(
        rest[..rest.find('\n').unwrap_or(rest.len())]
            .trim()
            .to_string(),
    )
}
