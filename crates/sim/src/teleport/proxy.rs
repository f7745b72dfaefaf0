//! A Teleport Proxy front for the Auth simulator, on 127.0.0.1: TLS routing by ALPN without
//! terminating TLS (`teleport-auth@<hex cluster>` forwarded raw to Auth), the web side with
//! its own public certificate (`/webapi/find`, `/webapi/ping`, the WebSocket connection
//! upgrade whose stream re-enters the router), and fronts that imitate layer-7 load
//! balancers. It records what clients sent (ClientHello SNI and ALPN, upgrade requests,
//! pongs) for wire assertions.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use teleport_mattermost_sim::teleport::{SimOptions, TeleportSim};
//! use teleport_mattermost_sim::teleport::proxy::{ProxySim, ProxySimOptions};
//! let auth = TeleportSim::start(SimOptions::default()).await?;
//! let proxy = ProxySim::start(&auth, ProxySimOptions::default()).await?;
//! println!("teleport.addr = {}", proxy.addr());
//! # Ok(()) }
//! ```

pub mod alpn;
mod hello;
mod http;
mod router;
mod web_pki;
pub mod ws;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use hello::Hello;

use super::TeleportSim;
use web_pki::WebPki;

/// What sits in front of the Proxy's web port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Nothing: the Proxy's own ALPN router sees every ClientHello (TLS routing works).
    Direct,
    /// A layer-7 load balancer that terminates all TLS with the web certificate and
    /// negotiates no ALPN, then forwards HTTP: only the connection upgrade reaches Auth.
    StripAlpn,
    /// A layer-7 load balancer that negotiates only `http/1.1` and refuses other protocols
    /// with a `no_application_protocol` alert.
    Http1Only,
}

#[derive(Debug, Clone)]
pub struct ProxySimOptions {
    /// The front at start; [`ProxySim::set_front`] changes it for new connections.
    pub front: Front,
    /// Interval of the `alpn-ping` WebSocket pings (Teleport: 30 s).
    pub ping_interval: Duration,
    /// The cluster name `/webapi/find` reports; `None`: the Auth simulator's. The router only
    /// forwards `teleport-auth@` for the Auth simulator's own name either way.
    pub find_cluster_name: Option<String>,
    pub tls_routing_enabled: bool,
    pub server_version: String,
}

impl Default for ProxySimOptions {
    fn default() -> Self {
        Self {
            front: Front::Direct,
            ping_interval: Duration::from_secs(30),
            find_cluster_name: None,
            tls_routing_enabled: true,
            server_version: "18.11.0".into(),
        }
    }
}

/// Where the router sent a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Forwarded raw (ClientHello included) to the Auth simulator.
    Auth,
    /// Terminated as the reverse-tunnel protocol, then closed (SSH is not simulated).
    ReverseTunnel,
    /// Terminated with the web certificate and served as HTTP.
    Web,
    /// Terminated with an alert (`no_application_protocol`).
    Refused,
    /// Closed without an answer, like Teleport's auth route for a cluster it does not know.
    Closed(String),
}

/// One ClientHello the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloRecord {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// Inside a WebSocket connection upgrade.
    pub via_upgrade: bool,
    pub route: Route,
}

/// One `/webapi/connectionupgrade` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRecord {
    pub method: String,
    pub path: String,
    /// Lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl UpgradeRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Records {
    hellos: Vec<HelloRecord>,
    upgrades: Vec<UpgradeRecord>,
    pongs: Vec<Vec<u8>>,
}

/// What every connection task shares.
pub(crate) struct Ctx {
    addr: SocketAddr,
    auth_addr: SocketAddr,
    /// The Auth simulator's cluster: the only one routed.
    cluster: String,
    opts: ProxySimOptions,
    front: Mutex<Front>,
    pki: WebPki,
    records: Mutex<Records>,
    shutdown: CancellationToken,
}

impl Ctx {
    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn front(&self) -> Front {
        *self.front.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn find_cluster(&self) -> &str {
        self.opts
            .find_cluster_name
            .as_deref()
            .unwrap_or(&self.cluster)
    }
}

/// A running proxy front; stops when dropped.
pub struct ProxySim {
    ctx: Arc<Ctx>,
}

impl ProxySim {
    /// Binds 127.0.0.1:0 in front of `auth`.
    pub async fn start(auth: &TeleportSim, opts: ProxySimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let ctx = Arc::new(Ctx {
            addr: listener.local_addr()?,
            auth_addr: auth.addr(),
            cluster: auth.cluster_name(),
            front: Mutex::new(opts.front),
            opts,
            pki: WebPki::new(),
            records: Mutex::new(Records::default()),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, ctx.clone()));
        tracing::debug!(addr = %ctx.addr, front = ?ctx.opts.front, "Teleport proxy simulator listening");
        Ok(Self { ctx })
    }

    /// `127.0.0.1:<port>`: the `teleport.addr` to configure.
    pub fn addr(&self) -> SocketAddr {
        self.ctx.addr
    }

    /// Puts a different front before the proxy, for connections accepted from now on (e.g. a
    /// load balancer that starts stripping ALPN).
    pub fn set_front(&self, front: Front) {
        *self.ctx.front.lock().unwrap_or_else(|p| p.into_inner()) = front;
    }

    /// The CA of the web certificate (what a client must trust for the public side).
    pub fn web_ca_der(&self) -> CertificateDer<'static> {
        self.ctx.pki.ca_der.clone()
    }

    pub fn web_ca_pem(&self) -> String {
        self.ctx.pki.ca_pem.clone()
    }

    /// Every ClientHello seen, oldest first (outer and upgraded connections).
    pub fn hellos(&self) -> Vec<HelloRecord> {
        self.ctx.records().hellos.clone()
    }

    pub fn upgrades(&self) -> Vec<UpgradeRecord> {
        self.ctx.records().upgrades.clone()
    }

    /// Payloads of the pongs clients sent in answer to the upgrade's pings.
    pub fn pongs(&self) -> Vec<Vec<u8>> {
        self.ctx.records().pongs.clone()
    }

    /// Connections forwarded to the Auth simulator so far.
    pub fn routed_to_auth(&self) -> usize {
        self.ctx
            .records()
            .hellos
            .iter()
            .filter(|h| h.route == Route::Auth)
            .count()
    }
}

impl Drop for ProxySim {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("proxy sim accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let stop = ctx.shutdown.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = router::route(ctx, Box::new(tcp), false) => {}
            }
            tracing::trace!(%peer, "proxy sim connection done");
        });
    }
}
