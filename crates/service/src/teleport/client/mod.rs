//! `TeleportClient`: the typed calls a plugin makes to the Auth Service, each with a timeout
//! and the `version` metadata header, returning domain types and [`TeleportError`]. This
//! module holds the connection and the call plumbing; the calls are grouped by what they
//! touch: [`requests`] (watch, list, review), [`plugin_data`], [`directory`] (rules, users),
//! [`access_lists`].

mod access_lists;
mod directory;
mod encoded;
mod plugin_data;
mod requests;

pub use access_lists::access_list_from_proto;
pub use encoded::Encoded;
pub use plugin_data::PluginDataClient;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::connect::{self, ChannelOptions, Dialer};
use super::error::TeleportError;
use super::identity::IdentityError;
pub use super::params::{
    NewReview, ON_BEHALF_MIN_VERSION, PingInfo, RequestFilter, review_submission, version_at_least,
};
use super::proxy::{AutoDialer, ConnectPath, ConnectionInfo, ProxyOptions, Reachability};
use super::tls::{RefreshPolicy, TlsIdentity, TlsSource, spawn_refresher};
use super::wire::proto;
use super::wire::proto::auth_service_client::AuthServiceClient;
use super::wire::teleport::accesslist::v1::access_list_service_client::AccessListServiceClient;
use super::wire::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_client::AccessMonitoringRulesServiceClient;
use super::wire::teleport::users::v1::users_service_client::UsersServiceClient;
use crate::config::TeleportConfig;
use crate::metrics::Metrics;
use crate::signals::Signals;

/// The `version` header sent on every call. Teleport checks it only when the Auth server
/// runs with `TELEPORT_UNSTABLE_REJECT_OLD_CLIENTS=yes`, and then wants a semver no older
/// than its previous major; this is what a v18 Go API client sends, accepted by v17–v19.
pub const API_VERSION: &str = "18.0.0";

#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub channel: ChannelOptions,
    /// Timeout of every unary call.
    pub call_timeout: Duration,
    /// Timeout of a whole streamed listing (GetAccessRequestsV2, rule pages).
    pub list_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            channel: ChannelOptions::default(),
            call_timeout: Duration::from_secs(10),
            list_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct VersionHeader;

impl tonic::service::Interceptor for VersionHeader {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert("version", MetadataValue::from_static(API_VERSION));
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, VersionHeader>;

/// A cheap-to-clone client of one Teleport cluster.
#[derive(Clone)]
pub struct TeleportClient {
    auth: AuthServiceClient<Svc>,
    /// `AuthService` calls whose answers are kept encoded ([`encoded`]).
    raw: tonic::client::Grpc<Svc>,
    rules: AccessMonitoringRulesServiceClient<Svc>,
    users: UsersServiceClient<Svc>,
    access_lists: AccessListServiceClient<Svc>,
    tls: TlsSource,
    opts: ClientOptions,
    target: String,
    /// Call latency by method and outcome, once [`TeleportClient::with_metrics`] is called.
    calls: Option<prometheus::HistogramVec>,
    dialer: Arc<dyn Dialer>,
}

impl std::fmt::Debug for TeleportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeleportClient")
            .field("target", &self.target)
            .field("identity", &*self.tls.borrow())
            .finish()
    }
}

/// Largest answer accepted from `AuthService`. `GetPluginData` without a resource answers
/// with every request's plugin data in one message (the catch-up's listing): about 0.4 KB per
/// request posted to two channels, so tonic's default of 4 MiB would end near 10,000 open
/// requests.
const MAX_AUTH_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

impl TeleportClient {
    /// A client over `dialer`; nothing is dialed until the first call.
    pub fn new(dialer: Arc<dyn Dialer>, tls: TlsSource, opts: ClientOptions) -> Self {
        let target = dialer.target();
        let channel = connect::channel(dialer.clone(), tls.clone(), opts.channel);
        let auth = AuthServiceClient::with_interceptor(channel.clone(), VersionHeader)
            .max_decoding_message_size(MAX_AUTH_MESSAGE_BYTES);
        let raw = tonic::client::Grpc::new(InterceptedService::new(channel.clone(), VersionHeader))
            .max_decoding_message_size(MAX_AUTH_MESSAGE_BYTES);
        let rules =
            AccessMonitoringRulesServiceClient::with_interceptor(channel.clone(), VersionHeader);
        let users = UsersServiceClient::with_interceptor(channel.clone(), VersionHeader);
        let access_lists = AccessListServiceClient::with_interceptor(channel, VersionHeader);
        Self {
            auth,
            raw,
            rules,
            users,
            access_lists,
            tls,
            opts,
            target,
            calls: None,
            dialer,
        }
    }

    /// Start-up: load the configured credentials (expired ones are a fatal error with the
    /// renew command), keep them fresh for the process lifetime (every
    /// `refresh_identity_interval` when `refresh_identity` is set, and on every SIGHUP), and
    /// reach `teleport.addr` as an Auth Service or through a Proxy, whichever works
    /// ([`AutoDialer`]), with `TELEPORT_TLS_ROUTING_CONN_UPGRADE` and `teleport.proxy_ca`.
    /// Must run inside a Tokio runtime.
    pub fn connect(
        cfg: &TeleportConfig,
        signals: &Signals,
        opts: ClientOptions,
    ) -> Result<Self, IdentityError> {
        let mut proxy = ProxyOptions::from_env();
        proxy.web_roots.extend(cfg.proxy_ca.iter().cloned());
        Self::connect_with(cfg, signals, opts, proxy)
    }

    /// [`TeleportClient::connect`] with explicit Proxy settings (extra web CAs, a forced
    /// connection upgrade); reads nothing from the environment.
    pub fn connect_with(
        cfg: &TeleportConfig,
        signals: &Signals,
        opts: ClientOptions,
        proxy: ProxyOptions,
    ) -> Result<Self, IdentityError> {
        let initial = TlsIdentity::load(&cfg.credentials)?;
        tracing::info!(
            identity.user = %initial.username,
            identity.expires = %super::identity::rfc3339(initial.not_after),
            teleport.addr = %cfg.addr,
            "loaded the Teleport identity"
        );
        let policy = RefreshPolicy {
            interval: cfg
                .refresh_identity
                .then_some(cfg.refresh_identity_interval),
            reload: Some(signals.reload.clone()),
        };
        let tls = spawn_refresher(
            cfg.credentials.clone(),
            initial,
            policy,
            signals.shutdown.clone(),
        );
        // Each attempt on the chosen path keeps the configured connect timeout; the first
        // dial may try every method in turn, so the channel allows it the whole choice.
        let attempt = opts.channel.connect_timeout;
        let mut opts = opts;
        opts.channel.connect_timeout = attempt.max(proxy.choose_timeout);
        let dialer = AutoDialer::new(cfg.addr.clone(), proxy, attempt);
        Ok(Self::new(Arc::new(dialer), tls, opts))
    }

    /// How connections reach Teleport; `None` until the first one succeeded.
    pub fn path(&self) -> Option<ConnectPath> {
        self.dialer.path()
    }

    /// Registers `teleport_mattermost_teleport_connection_info{path, addr}` on `metrics`.
    pub fn register_metrics(&self, metrics: &Metrics) {
        metrics.register(&ConnectionInfo::new(self.dialer.clone()));
    }

    /// Pings and reports how Teleport was reached (what `check` prints).
    pub async fn reachability(&self) -> Result<Reachability, TeleportError> {
        let ping = self.ping().await?;
        Ok(Reachability {
            path: self.path(),
            addr: self.target.clone(),
            cluster_name: ping.cluster_name,
            server_version: ping.server_version,
        })
    }

    /// Records every call's latency, by method and outcome, on `metrics`.
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        let h = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "teleport_mattermost_teleport_call_duration_seconds",
                "Teleport gRPC call latency, by method and outcome.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0, 10.0,
            ]),
            &["call", "outcome"],
        )
        .expect("static metric definition");
        self.calls = Some(metrics.register(&h));
        self
    }

    /// The identity new connections use.
    pub fn identity(&self) -> Arc<TlsIdentity> {
        self.tls.borrow().clone()
    }

    /// The address dialed, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub async fn ping(&self) -> Result<PingInfo, TeleportError> {
        let mut c = self.auth.clone();
        let r = self
            .unary("Ping", c.ping(self.req(proto::PingRequest {})))
            .await?;
        Ok(PingInfo {
            cluster_name: r.cluster_name,
            server_version: r.server_version,
            proxy_public_addr: r.proxy_public_addr,
            advanced_access_workflows: r
                .server_features
                .is_some_and(|f| f.advanced_access_workflows),
        })
    }

    /// Every item of a paged listing: `page(token)` answers one page and the next token
    /// (empty after the last). Bounded by `max_pages` and the list timeout, and refused when
    /// the token does not advance, so a misbehaving server cannot loop us forever.
    async fn all_pages<T, F, Fut>(
        &self,
        what: &'static str,
        max_pages: usize,
        mut page: F,
    ) -> Result<Vec<T>, TeleportError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, String), TeleportError>>,
    {
        let mut out = Vec::new();
        let mut token = String::new();
        let started = tokio::time::Instant::now();
        for _ in 0..max_pages {
            let (items, next) = page(token.clone()).await?;
            out.extend(items);
            if next.is_empty() {
                return Ok(out);
            }
            if next == token {
                return Err(TeleportError::invalid_response(
                    what,
                    "the page token does not advance",
                ));
            }
            if started.elapsed() > self.opts.list_timeout {
                return Err(TeleportError::timeout(what, self.opts.list_timeout));
            }
            token = next;
        }
        Err(TeleportError::invalid_response(
            what,
            format!("more than {max_pages} pages"),
        ))
    }

    /// A request carrying the call timeout as `grpc-timeout`, so the server gives up too.
    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.opts.call_timeout);
        r
    }

    async fn unary<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, TeleportError> {
        let started = std::time::Instant::now();
        let (result, outcome) = match tokio::time::timeout(self.opts.call_timeout, call).await {
            Ok(Ok(r)) => (Ok(r.into_inner()), "ok"),
            Ok(Err(status)) => {
                tracing::debug!(call = what, code = ?status.code(), "Teleport call failed: {}", status.message());
                let outcome = status.code().description();
                (Err(status.into()), outcome)
            }
            Err(_) => (
                Err(TeleportError::timeout(what, self.opts.call_timeout)),
                "timeout",
            ),
        };
        if let Some(h) = &self.calls {
            h.with_label_values(&[what, outcome])
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }
}
