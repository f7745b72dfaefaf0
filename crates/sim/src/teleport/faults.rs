//! The fault switchboard: end every watch stream now, drop every connection, fail or delay
//! the next calls of a method, and record which client certificate each connection used.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

/// The simulated RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Ping,
    WatchEvents,
    GetAccessRequestsV2,
    SubmitAccessReview,
    GetPluginData,
    UpdatePluginData,
    GetUser,
    ListAccessMonitoringRules,
    ListUsers,
}

#[derive(Debug, Clone)]
enum Fault {
    Fail(Code, String),
    Delay(Duration),
}

/// One accepted mTLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRecord {
    /// The Teleport user (client certificate CN).
    pub user: String,
    /// The client certificate serial, lowercase hex.
    pub serial: String,
    pub peer: SocketAddr,
}

#[derive(Default)]
struct Inner {
    planned: Mutex<HashMap<Method, VecDeque<Fault>>>,
    calls: Mutex<HashMap<Method, u64>>,
    connections: Mutex<Vec<ConnRecord>>,
    watch_kill: Mutex<CancellationToken>,
    conn_kill: Mutex<CancellationToken>,
    paths: Mutex<BTreeSet<String>>,
    versions: Mutex<BTreeSet<String>>,
}

/// Cheap to clone; all clones control the same simulator.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Faults {
    /// Ends every open watch stream with `Unavailable` (like an Auth restart); new watches
    /// work normally.
    pub fn end_watch_streams(&self) {
        let mut t = self.inner.watch_kill.lock().expect("lock");
        t.cancel();
        *t = CancellationToken::new();
    }

    /// Breaks every open connection (clients must reconnect, with their current identity).
    pub fn drop_connections(&self) {
        let mut t = self.inner.conn_kill.lock().expect("lock");
        t.cancel();
        *t = CancellationToken::new();
    }

    /// The next `n` calls of `method` fail with `code` and `message`.
    pub fn fail_next(&self, method: Method, n: usize, code: Code, message: &str) {
        self.plan(method, n, Fault::Fail(code, message.to_string()));
    }

    /// The next `n` calls of `method` are delayed by `delay` before being served.
    pub fn delay_next(&self, method: Method, n: usize, delay: Duration) {
        self.plan(method, n, Fault::Delay(delay));
    }

    /// Forgets planned failures and delays.
    pub fn clear(&self) {
        self.inner.planned.lock().expect("lock").clear();
    }

    /// Every connection accepted so far, oldest first.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.inner.connections.lock().expect("lock").clone()
    }

    /// Every gRPC path requested so far (e.g. `/proto.AuthService/Ping`).
    pub fn paths_seen(&self) -> BTreeSet<String> {
        self.inner.paths.lock().expect("lock").clone()
    }

    /// Every `version` metadata value received (`""` for a call without one).
    pub fn version_headers_seen(&self) -> BTreeSet<String> {
        self.inner.versions.lock().expect("lock").clone()
    }

    pub(crate) fn record_request(&self, path: &str, version: Option<&str>) {
        self.inner
            .paths
            .lock()
            .expect("lock")
            .insert(path.to_string());
        self.inner
            .versions
            .lock()
            .expect("lock")
            .insert(version.unwrap_or_default().to_string());
    }

    /// How many calls of `method` arrived (including failed ones).
    pub fn calls(&self, method: Method) -> u64 {
        self.inner
            .calls
            .lock()
            .expect("lock")
            .get(&method)
            .copied()
            .unwrap_or(0)
    }

    fn plan(&self, method: Method, n: usize, fault: Fault) {
        let mut p = self.inner.planned.lock().expect("lock");
        let q = p.entry(method).or_default();
        q.extend(std::iter::repeat_n(fault, n));
    }

    /// Called at the start of every RPC: counts it and applies the next planned fault.
    pub(crate) async fn enter(&self, method: Method) -> Result<(), Status> {
        *self
            .inner
            .calls
            .lock()
            .expect("lock")
            .entry(method)
            .or_default() += 1;
        let fault = self
            .inner
            .planned
            .lock()
            .expect("lock")
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        match fault {
            None => Ok(()),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fault::Fail(code, msg)) => Err(Status::new(code, msg)),
        }
    }

    pub(crate) fn watch_token(&self) -> CancellationToken {
        self.inner.watch_kill.lock().expect("lock").clone()
    }

    pub(crate) fn connection_token(&self) -> CancellationToken {
        self.inner.conn_kill.lock().expect("lock").clone()
    }

    pub(crate) fn record_connection(&self, rec: ConnRecord) {
        self.inner.connections.lock().expect("lock").push(rec);
    }
}
