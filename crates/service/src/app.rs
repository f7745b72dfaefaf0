//! The application: built from a `Config`, it binds its listener, connects to Teleport and
//! Mattermost, then runs the bridge and the HTTP server until shutdown or a fatal error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::access_lists::{self, Clock, ReminderMetrics, Reminders};
use crate::bridge::metrics::BridgeMetrics;
use crate::bridge::post_render::{Buttons, PostRenderer};
use crate::bridge::processor::Processor;
use crate::bridge::queue::{HandlerFuture, KeyedQueue, RetryPolicy};
use crate::bridge::watcher::Watcher;
use crate::bridge::work::Work;
use crate::config::{Config, EnabledReview};
use crate::health::Readiness;
use crate::http::{self, Callbacks, HttpState};
use crate::mattermost::{ClientOptions as MmOptions, MattermostClient};
use crate::metrics::Metrics;
use crate::review::{ClusterFacts, ReviewMetrics, ReviewParts, ReviewService};
use crate::route::{PLUGIN_NAME, Routing};
use crate::signals::{Deadline, Signals};
use crate::signing::Signer;
use crate::teleport::client::{ClientOptions as TpOptions, PingInfo, version_at_least};
use crate::teleport::{TeleportClient, TeleportError};

/// How long a shutdown may take in all, queue drain and HTTP connections together
/// (upstream's value; below systemd's `TimeoutStopSec` and Helm's grace period).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// Start-up (ping, health check) must finish within this (upstream's init timeout).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Oldest Teleport we support: GetAccessRequestsV2 and plugin data CAS as used here.
pub const MIN_TELEPORT: (u64, u64, u64) = (13, 0, 0);

/// Process-level settings that do not belong in the config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `TELEPORT_PLUGIN_FAIL_FAST`: exit when the watch is lost instead of reconnecting.
    pub fail_fast: bool,
    /// This replica's name in plugin-data claims; defaults to host name + random suffix.
    pub replica: Option<String>,
    /// The HTTP listener's connection deadlines and budgets (tests shorten them).
    pub http: http::serve::Limits,
    /// The wall clock of the access list reminder windows and of the request reminders'
    /// schedule (tests move it).
    pub clock: Clock,
}

impl Options {
    /// Reads the options from the process environment (only `start` does this).
    pub fn from_env() -> Self {
        let fail_fast = std::env::var("TELEPORT_PLUGIN_FAIL_FAST")
            .is_ok_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        Self {
            fail_fast,
            ..Self::default()
        }
    }
}

pub struct Application {
    config: Config,
    options: Options,
    listener: TcpListener,
    state: HttpState,
    callbacks: Callbacks,
    review: Option<Review>,
}

/// In-chat review's settings with the metrics registered for it: one value, so start-up
/// never has one without the other.
struct Review {
    config: EnabledReview,
    metrics: ReviewMetrics,
}

impl Application {
    /// Binds the HTTP listener; nothing talks to Teleport or Mattermost yet.
    pub async fn build(config: Config, options: Options) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "binding the HTTP listener on {} (`http.listen_addr`)",
                    config.http.listen_addr
                )
            })?;
        Ok(Self::with_listener(config, options, listener))
    }

    /// Serves on an already bound listener (`http.listen_addr` is then ignored), e.g. when
    /// the port must be known before the config is written (`http.public_addr`).
    pub fn with_listener(config: Config, options: Options, listener: TcpListener) -> Self {
        let state = HttpState::new(Readiness::default(), Metrics::new());
        let review = config.review.clone().map(|config| Review {
            config,
            metrics: ReviewMetrics::new(&state.metrics),
        });
        let callbacks = match &review {
            Some(r) => Callbacks::enabled(
                config.http.callback_allowed_sources.clone(),
                r.metrics.clone(),
            ),
            None => Callbacks::disabled(),
        };
        Self {
            config,
            options,
            listener,
            state,
            callbacks,
            review,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn readiness(&self) -> Readiness {
        self.state.readiness.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.state.metrics.clone()
    }

    /// Serves until `signals.shutdown` is cancelled, then drains within `SHUTDOWN_GRACE`.
    /// Returns an error when start-up fails or the bridge hits something retrying cannot fix.
    pub async fn run_until_stopped(self, signals: Signals) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let cfg = &self.config;
        let metrics = self.state.metrics.clone();
        let shutdown = signals.shutdown.clone();

        // The HTTP server starts first so probes answer (503 not ready) during start-up; the
        // Mattermost callbacks answer 503 until the review service is set below.
        let router = http::router(self.state.clone(), self.callbacks.router());
        let deadline = Deadline::new(shutdown.clone(), SHUTDOWN_GRACE);
        let server = http::serve::spawn(
            self.listener,
            router,
            cfg.http.callback_allowed_sources.clone(),
            self.options.http.clone(),
            &metrics,
            deadline.clone(),
        );
        tracing::info!(http.addr = %addr, "HTTP server listening");

        let teleport = TeleportClient::connect(&cfg.teleport, &signals, TpOptions::default())
            .context("loading the Teleport identity (`teleport.identity` or client_key/client_crt/root_cas)")?
            .with_metrics(&metrics);
        teleport.register_metrics(&metrics);
        let mattermost = MattermostClient::new(MmOptions::from_config(&cfg.mattermost), &metrics)
            .context("building the Mattermost client")?;
        let started = start_up(cfg, &teleport, &mattermost);
        let ping = tokio::select! {
            r = started => r?,
            _ = shutdown.cancelled() => return finish(server, &deadline).await,
        };

        let bridge_metrics = BridgeMetrics::new(&metrics);
        let reminders = cfg.reminders.clone().map(|config| {
            Arc::new(crate::remind::Reminders {
                config,
                requester: cfg.mattermost.notify_requester,
                clock: self.options.clock.clone(),
            })
        });
        let routing = Arc::new(Routing::new(cfg.role_to_recipients.clone()));
        let render = renderer(self.review.as_ref().map(|r| &r.config), &ping);
        if let Some(review) = &self.review {
            self.callbacks.set_ready(ReviewService::new(ReviewParts {
                teleport: teleport.clone(),
                mattermost: mattermost.clone(),
                config: review.config.clone(),
                routing: routing.clone(),
                reminders: reminders.clone(),
                cluster: ClusterFacts::from_ping(&ping, render.link_base.clone()),
                metrics: review.metrics.clone(),
            }));
            if ping.supports_on_behalf_reviews() {
                tracing::info!("in-chat review ready: buttons, reason dialogs and /teleport");
            } else {
                tracing::info!(
                    "/teleport answers, but reviews go through Teleport: the cluster predates on-behalf reviews (18.11)"
                );
            }
        }
        Reminders::spawn(
            access_lists::Parts {
                teleport: teleport.clone(),
                mattermost: mattermost.clone(),
                config: cfg.access_lists.clone(),
                proxy_base: PostRenderer::link_base(&ping.proxy_public_addr, true),
                user_id_trait: self.review.as_ref().map_or_else(
                    || crate::config::DEFAULT_USER_ID_TRAIT.to_string(),
                    |r| r.config.user_id_trait.clone(),
                ),
                clock: self.options.clock.clone(),
                metrics: ReminderMetrics::new(&metrics),
            },
            shutdown.clone(),
        );
        let processor = Arc::new(Processor {
            store: teleport.plugin_data(PLUGIN_NAME),
            chat: mattermost.clone(),
            render,
            routing: routing.clone(),
            owner: self.options.replica.clone().unwrap_or_else(replica_name),
            notify_requester: cfg.mattermost.notify_requester,
            metrics: bridge_metrics.clone(),
            reminders: reminders.clone(),
            health: self.state.readiness.clone(),
            scans: Default::default(),
        });
        let histogram = bridge_metrics.event_seconds.clone();
        let queue = KeyedQueue::new(
            cfg.bridge.concurrency,
            RetryPolicy::default(),
            move |id: String, work: Work| {
                let (p, h) = (processor.clone(), histogram.clone());
                Box::pin(async move {
                    let t = Instant::now();
                    let outcome = p.handle(&id, work).await;
                    h.observe(t.elapsed().as_secs_f64());
                    outcome
                }) as HandlerFuture
            },
        );
        let scheduled = bridge_metrics.reminders_scheduled.clone();
        let scheduler =
            reminders.map(|r| Arc::new(crate::remind::Scheduler::new(r, scheduled.clone())));
        if let Some(s) = scheduler.clone() {
            let (teleport, queue, token) = (teleport.clone(), queue.clone(), shutdown.clone());
            tokio::spawn(async move { s.run(teleport, queue, token).await });
        }
        let watcher = Watcher {
            reminders: scheduler,
            client: teleport,
            queue: queue.clone(),
            routing,
            readiness: self.state.readiness.clone(),
            metrics: bridge_metrics,
            fail_fast: self.options.fail_fast,
            resync: cfg.bridge.resync_interval,
            unchanged: Default::default(),
        };
        // On a worker thread, not the thread blocked on the runtime: the request tasks it
        // spawns then start on the same worker instead of waking another thread per event.
        let token = shutdown.clone();
        tracing::debug!("starting the request watcher");
        let result = match tokio::spawn(async move { watcher.run(token).await }).await {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::new(e).context("the watcher task panicked")),
        };
        self.state.readiness.set(false);
        if let Err(e) = result {
            shutdown.cancel();
            let _ = finish(server, &deadline).await;
            return Err(e);
        }
        // Let work already started finish by the deadline (the HTTP connections drain at the
        // same time): a half-done request is completed by the next replica anyway, thanks to
        // the plugin-data claim, so running out of time is not a failure.
        let at = deadline.reached().await;
        if tokio::time::timeout_at(at, queue.idle()).await.is_err() {
            tracing::info!(
                requests = queue.active(),
                "shutdown deadline reached with requests in progress; stopping anyway: another replica or the next start completes them"
            );
        }
        finish(server, &deadline).await
    }
}

/// Pings Teleport and checks Mattermost. What retrying can fix (an unreachable server)
/// is retried with backoff while `/readyz` says 503 — unless fail-fast is set; what it
/// cannot (bad token, too old, refused) ends start-up with the fix.
async fn start_up(
    cfg: &Config,
    teleport: &TeleportClient,
    mattermost: &MattermostClient,
) -> anyhow::Result<PingInfo> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
                let ping = ping(teleport).await?;
                tracing::debug!("starting the Mattermost API health check");
                let bot = match tokio::time::timeout(INIT_TIMEOUT, mattermost.me()).await {
                    Err(_) => return Err(Start::Retry(format!("Mattermost API health check timed out after {}s ({})", INIT_TIMEOUT.as_secs(), cfg.mattermost.url))),
                    Ok(Err(e)) if e.is_transient() => return Err(Start::Retry(format!("API health check failed: {e}"))),
                    Ok(Err(e)) => return Err(Start::Fatal(anyhow::Error::new(e).context("API health check failed (GET /api/v4/users/me)"))),
                    Ok(Ok(bot)) => bot,
                };
                tracing::info!(mattermost.bot = %bot.username, mattermost.url = %cfg.mattermost.url, "Mattermost API health check passed");
                Ok(ping)
            }
            .await;
        match result {
            Ok(ping) => return Ok(ping),
            Err(Start::Fatal(e)) => return Err(e),
            Err(Start::Retry(why)) => {
                let wait = START_RETRY.delay(attempt);
                tracing::warn!(error = %why, retry_in_ms = wait.as_millis() as u64, "start-up check failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// How a start-up step failed.
enum Start {
    Retry(String),
    Fatal(anyhow::Error),
}

/// Start-up retries: quick at first, then every 30 s at most.
const START_RETRY: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

async fn ping(teleport: &TeleportClient) -> Result<PingInfo, Start> {
    let fatal = |e: anyhow::Error| Start::Fatal(e);
    tracing::debug!(teleport.addr = %teleport.target(), "checking the Teleport server version");
    let ping = match tokio::time::timeout(INIT_TIMEOUT, teleport.ping()).await {
        Err(_) => {
            return Err(Start::Retry(format!(
                "Unable to get Teleport server version: no answer from {} within {}s; check `teleport.addr` and that the address is the Auth Service (3025) or a Proxy (443/3080)",
                teleport.target(),
                INIT_TIMEOUT.as_secs()
            )));
        }
        // A reverse-tunnel port answers at once with SSH: no retry makes it a TLS server.
        Ok(Err(e)) if crate::teleport::proxy::DialError::is_ssh_port_text(&e.to_string()) => {
            return Err(fatal(anyhow::Error::new(e).context(format!(
                "Unable to reach Teleport at {}",
                teleport.target()
            ))));
        }
        Ok(Err(e)) if e.is_transient() => {
            return Err(Start::Retry(format!(
                "Unable to get Teleport server version from {}: {e}",
                teleport.target()
            )));
        }
        Ok(Err(TeleportError::Other {
            code: tonic::Code::Unimplemented,
            ..
        })) => {
            return Err(fatal(anyhow::anyhow!(
                "server version must be at least {}.{}.{}",
                MIN_TELEPORT.0,
                MIN_TELEPORT.1,
                MIN_TELEPORT.2
            )));
        }
        Ok(Err(e)) => {
            return Err(fatal(anyhow::Error::new(e).context(format!(
                "Unable to get Teleport server version from {}",
                teleport.target()
            ))));
        }
        Ok(Ok(p)) => p,
    };
    if !version_at_least(&ping.server_version, MIN_TELEPORT) {
        return Err(fatal(anyhow::anyhow!(
            "Teleport {} is too old: server version must be at least {}.{}.{}",
            ping.server_version,
            MIN_TELEPORT.0,
            MIN_TELEPORT.1,
            MIN_TELEPORT.2
        )));
    }
    tracing::info!(cluster = %ping.cluster_name, version = %ping.server_version, "connected to Teleport");
    Ok(ping)
}

/// Buttons only when review is enabled and the cluster accepts on-behalf reviews (18.11+).
fn renderer(review: Option<&EnabledReview>, ping: &PingInfo) -> PostRenderer {
    let buttons = match review {
        Some(r) if ping.supports_on_behalf_reviews() => Some(Buttons {
            signer: Signer::new(r.signing_secret.clone()),
            action_url: r.action_url.clone(),
            link_only_roles: r.link_only_roles.clone(),
        }),
        Some(_) => {
            tracing::warn!(version = %ping.server_version, "in-chat review needs Teleport 18.11 or newer (on-behalf reviews); posts show the link and tsh commands only");
            None
        }
        None => None,
    };
    PostRenderer {
        cluster: Some(ping.cluster_name.clone()).filter(|c| !c.is_empty()),
        link_base: PostRenderer::link_base(&ping.proxy_public_addr, ping.advanced_access_workflows),
        buttons,
    }
}

fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "teleport-mattermost".into());
    format!("{host}:{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

type Server = tokio::task::JoinHandle<http::serve::Served>;

/// Waits for the HTTP server to drain; it drops what is still open at the deadline itself.
/// Ends cleanly either way: a dropped connection is the client's to retry, as after any
/// restart.
async fn finish(server: Server, deadline: &Deadline) -> anyhow::Result<()> {
    let served = server.await.context("HTTP server task panicked")?;
    if served.dropped > 0 {
        tracing::info!(
            connections = served.dropped,
            grace_s = deadline.grace().as_secs(),
            "shutdown deadline reached: dropped the HTTP connections still open; their clients retry"
        );
    }
    tracing::info!("Successfully shut down");
    Ok(())
}
