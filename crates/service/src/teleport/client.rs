//! `TeleportClient`: the typed calls a plugin makes to the Auth Service, each with a timeout
//! and the `version` metadata header, returning domain types and [`TeleportError`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use time::OffsetDateTime;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::connect::{self, ChannelOptions, Dialer};
use super::convert;
use super::error::TeleportError;
use super::events::{self, EventStream, WatchRequest};
use super::identity::IdentityError;
pub use super::params::{
    NewReview, ON_BEHALF_MIN_VERSION, PingInfo, RequestFilter, review_submission, version_at_least,
};
use super::proxy::{AutoDialer, ConnectPath, ConnectionInfo, ProxyOptions, Reachability};
use super::tls::{RefreshPolicy, TlsIdentity, TlsSource, spawn_refresher};
use super::wire::proto::auth_service_client::AuthServiceClient;
use super::wire::teleport::accessmonitoringrules::v1 as amr;
use super::wire::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_client::AccessMonitoringRulesServiceClient;
use super::wire::teleport::users::v1 as users;
use super::wire::teleport::users::v1::users_service_client::UsersServiceClient;
use super::wire::{proto, types};
use crate::access::{AccessMonitoringRule, AccessRequest, KIND_ACCESS_REQUEST, RawData, User};
use crate::config::TeleportConfig;
use crate::metrics::Metrics;
use crate::signals::Signals;

/// The `version` header sent on every call. Teleport checks it only when the Auth server
/// runs with `TELEPORT_UNSTABLE_REJECT_OLD_CLIENTS=yes`, and then wants a semver no older
/// than its previous major; this is what a v18 Go API client sends, accepted by v17–v19.
pub const API_VERSION: &str = "18.0.0";

/// Page size of the access-monitoring-rule listing (upstream's value).
const RULES_PAGE_SIZE: i64 = 1000;
/// A bound on rule pages, so a server that keeps returning tokens cannot loop us forever.
const RULES_MAX_PAGES: usize = 1000;
/// Page size of the user listing (the server caps it too).
const USERS_PAGE_SIZE: i32 = 500;
/// A bound on user pages (500 000 users), for the same reason.
const USERS_MAX_PAGES: usize = 1000;

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
    rules: AccessMonitoringRulesServiceClient<Svc>,
    users: UsersServiceClient<Svc>,
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

impl TeleportClient {
    /// A client over `dialer`; nothing is dialed until the first call.
    pub fn new(dialer: Arc<dyn Dialer>, tls: TlsSource, opts: ClientOptions) -> Self {
        let target = dialer.target();
        let channel = connect::channel(dialer.clone(), tls.clone(), opts.channel);
        let auth = AuthServiceClient::with_interceptor(channel.clone(), VersionHeader);
        let rules =
            AccessMonitoringRulesServiceClient::with_interceptor(channel.clone(), VersionHeader);
        let users = UsersServiceClient::with_interceptor(channel, VersionHeader);
        Self {
            auth,
            rules,
            users,
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

    /// Opens a watch. The first event is `Init`; the stream ends with an error when the
    /// server drops it (re-watch on [`TeleportError::is_transient`]).
    pub async fn watch(&self, req: WatchRequest) -> Result<EventStream, TeleportError> {
        let mut c = self.auth.clone();
        let wire = req.to_wire();
        let resp = self
            .unary("WatchEvents", c.watch_events(tonic::Request::new(wire)))
            .await?;
        Ok(events::typed(resp))
    }

    /// All access requests matching `filter` (GetAccessRequestsV2, streamed).
    pub async fn list_access_requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<AccessRequest>, TeleportError> {
        let mut c = self.auth.clone();
        let wire = types::AccessRequestFilter {
            id: filter.id.clone().unwrap_or_default(),
            user: filter.user.clone().unwrap_or_default(),
            state: filter.state.unwrap_or_default().to_i32(),
        };
        let budget = self.opts.list_timeout;
        let collect = async move {
            let mut stream = c
                .get_access_requests_v2(tonic::Request::new(wire))
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(r) = stream.next().await {
                out.push(convert::request_from_proto(&r?));
            }
            Ok::<_, tonic::Status>(out)
        };
        match tokio::time::timeout(budget, collect).await {
            Ok(r) => r.map_err(TeleportError::from),
            Err(_) => Err(TeleportError::timeout("GetAccessRequestsV2", budget)),
        }
    }

    /// One request by id, or `None`.
    pub async fn get_access_request(
        &self,
        id: &str,
    ) -> Result<Option<AccessRequest>, TeleportError> {
        let filter = RequestFilter {
            id: Some(id.to_string()),
            ..Default::default()
        };
        Ok(self.list_access_requests(&filter).await?.into_iter().next())
    }

    /// `plugin`'s data for request `id`; `None` when it has none.
    pub async fn get_plugin_data(
        &self,
        plugin: &str,
        id: &str,
    ) -> Result<Option<RawData>, TeleportError> {
        let mut c = self.auth.clone();
        let filter = types::PluginDataFilter {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: id.into(),
            plugin: plugin.into(),
        };
        let seq = self
            .unary("GetPluginData", c.get_plugin_data(self.req(filter)))
            .await?;
        let data = seq
            .plugin_data
            .into_iter()
            .find(|d| d.metadata.as_ref().is_some_and(|m| m.name == id))
            .and_then(|d| d.spec)
            .and_then(|mut s| s.entries.remove(plugin))
            .map(|e| e.data.into_iter().collect::<RawData>())
            .filter(|m| !m.is_empty());
        Ok(data)
    }

    /// Every request's data of `plugin` (a filter without a resource): for catching up on
    /// requests deleted while the service was not watching.
    pub async fn list_plugin_data(
        &self,
        plugin: &str,
    ) -> Result<Vec<(String, RawData)>, TeleportError> {
        let mut c = self.auth.clone();
        let filter = types::PluginDataFilter {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: String::new(),
            plugin: plugin.into(),
        };
        let seq = self
            .unary("GetPluginData", c.get_plugin_data(self.req(filter)))
            .await?;
        Ok(seq
            .plugin_data
            .into_iter()
            .filter_map(|d| {
                let id = d.metadata.as_ref()?.name.clone();
                let data: RawData = d.spec?.entries.remove(plugin)?.data.into_iter().collect();
                (!data.is_empty()).then_some((id, data))
            })
            .collect())
    }

    /// Compare-and-swap write of `plugin`'s data (`""` in `set` deletes, `""` in `expect`
    /// means absent). A failed expectation is [`TeleportError::CompareFailed`].
    pub async fn update_plugin_data(
        &self,
        plugin: &str,
        id: &str,
        set: RawData,
        expect: RawData,
    ) -> Result<(), TeleportError> {
        let mut c = self.auth.clone();
        let params = types::PluginDataUpdateParams {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: id.into(),
            plugin: plugin.into(),
            set: set.into_iter().collect::<HashMap<_, _>>(),
            expect: expect.into_iter().collect::<HashMap<_, _>>(),
        };
        self.unary("UpdatePluginData", c.update_plugin_data(self.req(params)))
            .await
    }

    /// `plugin`'s data over this client: the bridge's plugin-data port.
    pub fn plugin_data(&self, plugin: &str) -> PluginDataClient {
        PluginDataClient {
            client: self.clone(),
            plugin: plugin.to_string(),
        }
    }

    /// Submits a review; returns the request as it is after the review.
    pub async fn submit_review(
        &self,
        request_id: &str,
        review: &NewReview,
    ) -> Result<AccessRequest, TeleportError> {
        let submitted_by = if review.on_behalf {
            self.identity().username.clone()
        } else {
            String::new()
        };
        let wire = review_submission(request_id, review, &submitted_by, OffsetDateTime::now_utc());
        let mut c = self.auth.clone();
        let r = self
            .unary("SubmitAccessReview", c.submit_access_review(self.req(wire)))
            .await?;
        Ok(convert::request_from_proto(&r))
    }

    /// Every access monitoring rule for `plugin` (notification name) whose subjects include
    /// `access_request`, following pages of 1000.
    pub async fn list_access_monitoring_rules(
        &self,
        plugin: &str,
    ) -> Result<Vec<AccessMonitoringRule>, TeleportError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let started = tokio::time::Instant::now();
        for _ in 0..RULES_MAX_PAGES {
            let mut c = self.rules.clone();
            let req = amr::ListAccessMonitoringRulesWithFilterRequest {
                page_size: RULES_PAGE_SIZE,
                page_token: token.clone(),
                subjects: vec![KIND_ACCESS_REQUEST.into()],
                notification_name: plugin.into(),
                automatic_review_name: String::new(),
            };
            let page = self
                .unary(
                    "ListAccessMonitoringRulesWithFilter",
                    c.list_access_monitoring_rules_with_filter(self.req(req)),
                )
                .await?;
            out.extend(
                page.rules
                    .iter()
                    .map(convert::rule_from_proto)
                    .filter(|r| r.subjects.iter().any(|s| s == KIND_ACCESS_REQUEST)),
            );
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if page.next_page_token == token || started.elapsed() > self.opts.list_timeout {
                return Err(TeleportError::invalid_response(
                    "ListAccessMonitoringRulesWithFilter",
                    "the page token does not advance",
                ));
            }
            token = page.next_page_token;
        }
        Err(TeleportError::invalid_response(
            "ListAccessMonitoringRulesWithFilter",
            format!("more than {RULES_MAX_PAGES} pages"),
        ))
    }

    /// A user's roles and traits.
    pub async fn get_user(&self, name: &str) -> Result<User, TeleportError> {
        let mut c = self.auth.clone();
        let req = proto::GetUserRequest {
            name: name.into(),
            with_secrets: false,
        };
        let u = self.unary("GetUser", c.get_user(self.req(req))).await?;
        Ok(convert::user_from_proto(&u))
    }

    /// Every user with roles and traits (`teleport.users.v1.UsersService/ListUsers`, pages of
    /// 500), for binding Mattermost users to Teleport users. Needs `list`+`read` on `user`.
    pub async fn list_users(&self) -> Result<Vec<User>, TeleportError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let started = tokio::time::Instant::now();
        for _ in 0..USERS_MAX_PAGES {
            let mut c = self.users.clone();
            let req = users::ListUsersRequest {
                page_size: USERS_PAGE_SIZE,
                page_token: token.clone(),
            };
            let page = self.unary("ListUsers", c.list_users(self.req(req))).await?;
            out.extend(page.users.iter().map(convert::user_from_proto));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if page.next_page_token == token {
                return Err(TeleportError::invalid_response(
                    "ListUsers",
                    "the page token does not advance",
                ));
            }
            if started.elapsed() > self.opts.list_timeout {
                return Err(TeleportError::timeout("ListUsers", self.opts.list_timeout));
            }
            token = page.next_page_token;
        }
        Err(TeleportError::invalid_response(
            "ListUsers",
            format!("more than {USERS_MAX_PAGES} pages"),
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

/// One plugin's data over a [`TeleportClient`]; the bridge's `Store` port is implemented
/// on it (`bridge::teleport_store`).
#[derive(Debug, Clone)]
pub struct PluginDataClient {
    pub(crate) client: TeleportClient,
    pub(crate) plugin: String,
}
