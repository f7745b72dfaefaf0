//! [`AutoDialer`]: reaches the Auth Service at `teleport.addr` whatever it is. The first dial
//! tries, in order, direct Auth mTLS, then the Proxy (discovery, then TLS routing, inside the
//! ALPN connection upgrade when a front strips ALPN), and remembers what worked; later dials
//! repeat that path with the identity current at the time, and the choice is made afresh
//! after repeated failures. The SSH reverse-tunnel path is not implemented (Proxies with TLS
//! routing, Teleport Cloud included, do not need it).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::ClientConfig;
use tokio::net::TcpStream;

use super::cluster::routing_alpn;
use super::error::{DialError, Peer, explain_tls};
use super::upgrade::{self, UPGRADE_PATH};
use super::web::{ProxyInfo, Web, connect_tcp};
use super::{ConnectPath, ProxyOptions};
use crate::sync;
use crate::teleport::connect::{BoxedIo, DialFuture, Dialer, tls_handshake};

/// A [`Dialer`] that chooses its path on first use (see the module docs).
#[derive(Clone)]
pub struct AutoDialer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    opts: ProxyOptions,
    /// Bound of one connection attempt (TCP, TLS, upgrade) on the chosen path.
    dial_timeout: Duration,
    web: OnceLock<Result<Arc<Web>, String>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    chosen: Option<Chosen>,
    failures: u32,
}

#[derive(Clone)]
struct Chosen {
    path: ConnectPath,
    proxy: Option<ProxyInfo>,
}

impl std::fmt::Debug for AutoDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoDialer")
            .field("addr", &self.inner.addr)
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl AutoDialer {
    pub fn new(addr: impl Into<String>, opts: ProxyOptions, dial_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                addr: addr.into(),
                opts,
                dial_timeout,
                web: OnceLock::new(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The path of the last successful choice, `None` before the first connection.
    pub fn path(&self) -> Option<ConnectPath> {
        self.inner.state().chosen.as_ref().map(|c| c.path)
    }

    /// What the Proxy reported, when a Proxy path was chosen.
    pub fn proxy_info(&self) -> Option<ProxyInfo> {
        self.inner.state().chosen.as_ref()?.proxy.clone()
    }
}

impl Dialer for AutoDialer {
    fn dial(&self, tls: Arc<ClientConfig>) -> DialFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.dial(tls).await.map_err(Into::into) })
    }

    fn target(&self) -> String {
        self.inner.addr.clone()
    }

    fn path(&self) -> Option<ConnectPath> {
        AutoDialer::path(self)
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        sync::lock(&self.state)
    }

    fn web(&self) -> Result<Arc<Web>, String> {
        self.web
            .get_or_init(|| Web::new(&self.opts.web_roots).map(Arc::new))
            .clone()
    }

    async fn dial(&self, tls: Arc<ClientConfig>) -> Result<BoxedIo, DialError> {
        let chosen = self.state().chosen.clone();
        let Some(chosen) = chosen else {
            let bound = self.opts.choose_timeout;
            return tokio::time::timeout(bound, self.choose(tls))
                .await
                .unwrap_or_else(|_| {
                    Err(DialError::Timeout {
                        what: "choosing how to reach Teleport",
                        addr: self.addr.clone(),
                        after: bound,
                    })
                });
        };
        let result = self.dial_path(&chosen, tls).await;
        let mut st = self.state();
        match &result {
            Ok(_) => st.failures = 0,
            Err(e) => {
                st.failures += 1;
                if st.failures >= self.opts.rechoose_after.max(1) {
                    tracing::warn!(
                        teleport.addr = %self.addr,
                        teleport.path = %chosen.path,
                        "{} connection attempts in a row failed (last: {e}); choosing the path to Teleport again",
                        st.failures
                    );
                    *st = State::default();
                }
            }
        }
        result
    }

    /// One connection over an already chosen path.
    async fn dial_path(&self, c: &Chosen, tls: Arc<ClientConfig>) -> Result<BoxedIo, DialError> {
        match (&c.proxy, c.path) {
            (None, _) | (_, ConnectPath::DirectAuth) => self.direct(tls).await,
            (Some(info), path) => {
                let web = self.web().map_err(DialError::Failed)?;
                let upgrade = path == ConnectPath::ProxyTlsRoutingUpgrade;
                self.routed(&web, &info.cluster_name, upgrade, tls).await
            }
        }
    }

    async fn choose(&self, tls: Arc<ClientConfig>) -> Result<BoxedIo, DialError> {
        let addr = &self.addr;
        let direct_err = match self.direct(tls.clone()).await {
            Ok(io) => return Ok(self.chose(ConnectPath::DirectAuth, None, io)),
            // Every method needs TCP to this same address.
            Err(e @ DialError::Connect { .. }) => return Err(e),
            Err(e) => e,
        };
        tracing::debug!(teleport.addr = %addr, "not an Auth Service ({direct_err}); trying it as a Proxy");
        let web = self.web().map_err(|e| {
            DialError::Failed(format!(
                "cannot reach Teleport at {addr}: as an Auth Service: {direct_err}; as a Proxy: {e}"
            ))
        })?;
        let info = web.find(addr, self.dial_timeout).await.map_err(|e| {
            DialError::Failed(format!(
                "cannot reach Teleport at {addr}: as an Auth Service: {direct_err}; as a Proxy: {e}"
            ))
        })?;
        let forced = self.opts.conn_upgrade.decide(addr);
        let upgrade = match forced {
            Some(forced) => {
                tracing::debug!(teleport.addr = %addr, upgrade = forced, "ALPN connection upgrade set by {}", super::CONN_UPGRADE_ENV);
                forced
            }
            None => web.probe(addr, self.opts.probe_timeout).await,
        };
        let path = if upgrade {
            ConnectPath::ProxyTlsRoutingUpgrade
        } else {
            ConnectPath::ProxyTlsRouting
        };
        match self.routed(&web, &info.cluster_name, upgrade, tls).await {
            Ok(io) => Ok(self.chose(path, Some(info), io)),
            Err(e) => {
                let mut hints = String::new();
                if !info.tls_routing_enabled {
                    hints.push_str(" (the proxy reports TLS routing disabled; reaching Auth through its SSH reverse tunnel is not supported: set teleport.addr to the Auth Service, host:3025)");
                }
                if forced == Some(false) {
                    hints.push_str(&format!(" ({} turns the ALPN connection upgrade off for this address; if a layer-7 load balancer terminates TLS in front of the proxy, set it to true)", super::CONN_UPGRADE_ENV));
                }
                Err(DialError::Failed(format!(
                    "{addr} is a Teleport Proxy of cluster {:?}, but connecting via {path} failed: {e}{hints}",
                    info.cluster_name
                )))
            }
        }
    }

    fn chose(&self, path: ConnectPath, proxy: Option<ProxyInfo>, io: BoxedIo) -> BoxedIo {
        match &proxy {
            Some(p) => tracing::info!(
                teleport.addr = %self.addr,
                teleport.path = %path,
                teleport.cluster = %p.cluster_name,
                teleport.version = %p.server_version,
                "reaching Teleport via {path}"
            ),
            None => {
                tracing::info!(teleport.addr = %self.addr, teleport.path = %path, "reaching Teleport via {path}")
            }
        }
        *self.state() = State {
            chosen: Some(Chosen { path, proxy }),
            failures: 0,
        };
        io
    }

    async fn tcp(&self) -> Result<TcpStream, DialError> {
        connect_tcp(&self.addr, self.dial_timeout).await
    }

    fn bounded<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, DialError>>,
    ) -> impl Future<Output = Result<T, DialError>> {
        let (addr, after) = (self.addr.clone(), self.dial_timeout);
        async move {
            tokio::time::timeout(after, fut)
                .await
                .unwrap_or(Err(DialError::Timeout { what, addr, after }))
        }
    }

    /// mTLS straight to `addr` (SNI `teleport.cluster.local`, ALPN `h2`).
    async fn direct(&self, tls: Arc<ClientConfig>) -> Result<BoxedIo, DialError> {
        self.bounded("TLS handshake as an Auth Service", async {
            let tcp = self.tcp().await?;
            let io = tls_handshake(tls, tcp)
                .await
                .map_err(|e| DialError::Failed(explain_tls(&e, Peer::DirectAuth)))?;
            Ok(Box::new(io) as BoxedIo)
        })
        .await
    }

    /// mTLS to the Auth Service through the Proxy's TLS routing, optionally inside the
    /// WebSocket connection upgrade.
    async fn routed(
        &self,
        web: &Web,
        cluster: &str,
        upgrade: bool,
        tls: Arc<ClientConfig>,
    ) -> Result<BoxedIo, DialError> {
        let mut config = (*tls).clone();
        config.alpn_protocols = routing_alpn(cluster);
        let config = Arc::new(config);
        let peer = Peer::RoutedAuth { cluster };
        let explain = |e: std::io::Error| DialError::Failed(explain_tls(&e, peer));
        let addr = &self.addr;
        if !upgrade {
            return self
                .bounded("TLS routing handshake", async {
                    let tcp = self.tcp().await?;
                    let io = tls_handshake(config, tcp).await.map_err(explain)?;
                    Ok(Box::new(io) as BoxedIo)
                })
                .await;
        }
        self.bounded("ALPN connection upgrade", async {
            let tcp = self.tcp().await?;
            let outer = web.outer(addr, tcp).await?;
            let ws = upgrade::upgrade(outer, addr).await.map_err(|e| {
                DialError::Failed(format!(
                    "the connection upgrade at https://{addr}{UPGRADE_PATH} failed: {e}"
                ))
            })?;
            let io = tls_handshake(config, ws).await.map_err(explain)?;
            Ok(Box::new(io) as BoxedIo)
        })
        .await
    }
}
