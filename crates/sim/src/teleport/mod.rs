//! A Teleport Auth Service simulator: a real gRPC server over mTLS on 127.0.0.1 with the
//! RPCs, RBAC, review rules, plugin-data CAS and watch semantics a plugin relies on, an
//! in-process admin API (plain methods), identity files for its users, and a fault
//! switchboard. Used by the tests, the benchmark and `demo`.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use teleport_mattermost_sim::teleport::{NewRequest, SimOptions, SimRole, TeleportSim};
//! let sim = TeleportSim::start(SimOptions::default()).await?;
//! sim.add_role(SimRole::access_plugin());
//! sim.add_user("access-plugin", &["access-plugin"]);
//! sim.write_identity("access-plugin", std::path::Path::new("/tmp/identity"))?;
//! let req = sim.create_request(NewRequest::new("alice", &["editor"]).reason("because of"));
//! # Ok(()) }
//! ```

pub mod faults;
pub mod fixtures;
pub mod pki;
mod plugin_data;
pub mod proxy;
pub mod rbac;
mod review;
mod server;
mod service;
mod state;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use teleport_mattermost::access::RawData;
use teleport_mattermost::access::{AccessMonitoringRule, AccessRequest, RequestState, User};
use teleport_mattermost::teleport::NewReview;
use teleport_mattermost::teleport::client::review_submission;
use teleport_mattermost::teleport::convert;
use teleport_mattermost::teleport::wire::proto::auth_service_server::AuthServiceServer;
use teleport_mattermost::teleport::wire::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_server::AccessMonitoringRulesServiceServer;
use teleport_mattermost::teleport::wire::teleport::users::v1::users_service_server::UsersServiceServer;

pub use faults::{ConnRecord, Faults, Method};
pub use pki::{IssuedIdentity, Validity};
pub use rbac::{SimRole, SimRule};
pub use state::{ClusterInfo, NewRequest, ReviewAudit};

use service::{AuthSim, RulesSim, Shared, UsersSim};
use state::State;

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub cluster_name: String,
    /// Reported by Ping; also decides whether on-behalf reviews are accepted (≥ 18.11.0).
    pub server_version: String,
    pub advanced_access_workflows: bool,
    pub proxy_public_addr: String,
    /// Lifetime of identities from [`TeleportSim::write_identity`].
    pub identity_ttl: Duration,
    /// Events a watcher may fall behind before its stream ends with `Unavailable`.
    pub watch_buffer: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            cluster_name: "sim.teleport.test".into(),
            server_version: "18.11.0".into(),
            advanced_access_workflows: true,
            proxy_public_addr: "teleport.sim.test:443".into(),
            identity_ttl: Duration::from_secs(12 * 3600),
            watch_buffer: 65_536,
        }
    }
}

/// A running simulator; stops when dropped (or with [`TeleportSim::stop`]).
pub struct TeleportSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    identity_ttl: Duration,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TeleportSim {
    /// Binds 127.0.0.1:0 and serves until stopped.
    pub async fn start(opts: SimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(opts.watch_buffer.max(16));
        let info = ClusterInfo {
            cluster_name: opts.cluster_name.clone(),
            server_version: opts.server_version.clone(),
            advanced_access_workflows: opts.advanced_access_workflows,
            proxy_public_addr: opts.proxy_public_addr.clone(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(info, events)),
            pki: pki::ClusterPki::new(&opts.cluster_name),
            faults: Faults::default(),
            shutdown: CancellationToken::new(),
        });
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(server::accept_loop(
            listener,
            shared.pki.server_config(),
            shared.faults.clone(),
            tx,
            shared.shutdown.clone(),
        ));
        let seen = shared.faults.clone();
        let record =
            tower::util::MapRequestLayer::new(move |req: http::Request<tonic::body::Body>| {
                let version = req.headers().get("version").and_then(|v| v.to_str().ok());
                seen.record_request(req.uri().path(), version);
                req
            });
        let router = tonic::transport::Server::builder()
            .layer(record)
            .add_service(AuthServiceServer::new(AuthSim(shared.clone())))
            .add_service(AccessMonitoringRulesServiceServer::new(RulesSim(
                shared.clone(),
            )))
            .add_service(UsersServiceServer::new(UsersSim(shared.clone())));
        let stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), stop.cancelled_owned())
                .await
            {
                tracing::warn!("Teleport simulator stopped with an error: {e}");
            }
        });
        tracing::debug!(%addr, "Teleport simulator listening");
        Ok(Self {
            shared,
            addr,
            identity_ttl: opts.identity_ttl,
            server: Some(server),
        })
    }

    /// `127.0.0.1:<port>`: the `teleport.addr` to configure.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cluster_name(&self) -> String {
        self.shared.lock().info.cluster_name.clone()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The Host CA certificate clients must trust.
    pub fn host_ca_pem(&self) -> String {
        self.shared.pki.host_ca_pem().to_string()
    }

    /// A new identity for `user` (who need not exist yet).
    pub fn issue_identity(&self, user: &str, validity: Validity) -> IssuedIdentity {
        let roles = self
            .shared
            .lock()
            .users
            .get(user)
            .map(|u| u.roles.clone())
            .unwrap_or_default();
        self.shared.pki.issue(user, &roles, validity)
    }

    /// Writes a fresh identity file for `user` (valid for `identity_ttl`), atomically.
    pub fn write_identity(&self, user: &str, path: &Path) -> std::io::Result<IssuedIdentity> {
        self.write_identity_with(user, path, Validity::for_ttl(self.identity_ttl))
    }

    /// Writes an identity file with the given validity (e.g. [`Validity::expired`]).
    pub fn write_identity_with(
        &self,
        user: &str,
        path: &Path,
        validity: Validity,
    ) -> std::io::Result<IssuedIdentity> {
        let id = self.issue_identity(user, validity);
        let tmp = path.with_extension("tmp-sim");
        std::fs::write(&tmp, id.identity_file())?;
        std::fs::rename(&tmp, path)?;
        Ok(id)
    }

    // ----- admin API -----

    pub fn add_role(&self, role: SimRole) {
        self.shared.lock().roles.insert(role.name.clone(), role);
    }

    pub fn add_user(&self, name: &str, roles: &[&str]) {
        self.upsert_user(User {
            name: name.into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            traits: BTreeMap::new(),
        });
    }

    pub fn upsert_user(&self, user: User) {
        self.shared.lock().users.insert(user.name.clone(), user);
    }

    pub fn set_user_traits(&self, name: &str, traits: BTreeMap<String, Vec<String>>) {
        if let Some(u) = self.shared.lock().users.get_mut(name) {
            u.traits = traits;
        }
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.shared.lock().users.get(name).cloned()
    }

    /// Creates a PENDING request and broadcasts its PUT.
    pub fn create_request(&self, req: NewRequest) -> AccessRequest {
        self.shared.lock().create_request(req)
    }

    pub fn approve(&self, id: &str, reason: &str) -> Result<AccessRequest, Status> {
        self.shared
            .lock()
            .set_state(id, RequestState::Approved, reason)
    }

    pub fn deny(&self, id: &str, reason: &str) -> Result<AccessRequest, Status> {
        self.shared
            .lock()
            .set_state(id, RequestState::Denied, reason)
    }

    /// Deletes the request (what Teleport does on expiry) and broadcasts a DELETE.
    pub fn delete_request(&self, id: &str) -> bool {
        self.shared.lock().delete_request(id)
    }

    pub fn request(&self, id: &str) -> Option<AccessRequest> {
        self.shared.lock().requests.get(id).map(|s| s.req.clone())
    }

    pub fn requests(&self) -> Vec<AccessRequest> {
        self.shared
            .lock()
            .requests
            .values()
            .map(|s| s.req.clone())
            .collect()
    }

    /// Submits a review as `caller` would over gRPC (same checks, same errors).
    pub fn submit_review_as(
        &self,
        caller: &str,
        request_id: &str,
        review: &NewReview,
    ) -> Result<AccessRequest, Status> {
        let sub = review_submission(request_id, review, caller, time::OffsetDateTime::now_utc());
        let out = self.shared.lock().submit_review(caller, sub)?;
        Ok(convert::request_from_proto(&out))
    }

    /// Every review submitted so far, oldest first.
    pub fn review_audit(&self) -> Vec<ReviewAudit> {
        self.shared.lock().audit.clone()
    }

    pub fn plugin_data(&self, request_id: &str, plugin: &str) -> Option<RawData> {
        self.shared.lock().plugin_data.read(request_id, plugin)
    }

    /// Creates or replaces a rule and broadcasts its PUT.
    pub fn upsert_rule(&self, rule: AccessMonitoringRule) {
        self.shared.lock().upsert_rule(rule);
    }

    pub fn delete_rule(&self, name: &str) -> bool {
        self.shared.lock().delete_rule(name)
    }

    pub fn set_server_version(&self, version: &str) {
        self.shared.lock().info.server_version = version.into();
    }

    pub fn set_advanced_access_workflows(&self, on: bool) {
        self.shared.lock().info.advanced_access_workflows = on;
    }

    pub fn set_proxy_public_addr(&self, addr: &str) {
        self.shared.lock().info.proxy_public_addr = addr.into();
    }

    pub fn set_cluster_name(&self, name: &str) {
        self.shared.lock().info.cluster_name = name.into();
    }

    /// Ends all watches, closes the listener and waits (bounded) for the server to finish.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        self.shared.faults.drop_connections();
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }
}

impl Drop for TeleportSim {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.shared.faults.drop_connections();
    }
}
