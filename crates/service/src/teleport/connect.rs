//! How bytes reach the Auth Service: a [`Dialer`] opens an mTLS stream using the TLS
//! identity current at dial time, and [`channel`] turns a dialer into a lazily connecting,
//! auto-reconnecting tonic `Channel`. [`DirectDialer`] dials `host:3025`; the Proxy-aware
//! [`super::proxy::AutoDialer`] (Teleport Cloud) implements the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use super::proxy::ConnectPath;
use super::tls::{SERVER_NAME, TlsSource};

/// A bidirectional byte stream (usually TLS over TCP).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

pub type BoxedIo = Box<dyn Io>;
pub type DialFuture = Pin<Box<dyn Future<Output = std::io::Result<BoxedIo>> + Send>>;

/// Opens one connection to the Auth Service's gRPC endpoint, TLS included.
pub trait Dialer: Send + Sync + 'static {
    /// `tls` is the identity current at this dial; use it for the handshake.
    fn dial(&self, tls: Arc<ClientConfig>) -> DialFuture;

    /// The address, for logs and errors.
    fn target(&self) -> String;

    /// The path connections take, once known (for logs, `check` and metrics).
    fn path(&self) -> Option<ConnectPath> {
        None
    }
}

/// Direct mTLS to the Auth Service (`host:3025`).
#[derive(Debug, Clone)]
pub struct DirectDialer {
    addr: String,
}

impl DirectDialer {
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }
}

impl Dialer for DirectDialer {
    fn dial(&self, tls: Arc<ClientConfig>) -> DialFuture {
        let addr = self.addr.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let stream = tls_handshake(tls, tcp).await?;
            Ok(Box::new(stream) as BoxedIo)
        })
    }

    fn target(&self) -> String {
        self.addr.clone()
    }

    fn path(&self) -> Option<ConnectPath> {
        Some(ConnectPath::DirectAuth)
    }
}

/// TLS with SNI `teleport.cluster.local` over any stream (shared by every dialer).
pub async fn tls_handshake<S>(
    tls: Arc<ClientConfig>,
    stream: S,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, stream)
        .await
}

/// Transport settings of the gRPC channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelOptions {
    /// Bounds TCP connect plus the TLS handshake.
    pub connect_timeout: Duration,
    /// Bounds every unary call and the start (headers) of every stream.
    pub request_timeout: Duration,
    /// HTTP/2 PING interval on idle connections. Teleport's own client uses its server
    /// keep-alive period (5 min); pinging more often than the server's enforcement minimum
    /// risks a GOAWAY `too_many_pings`, so this is never below one minute.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(300),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// A channel that dials lazily (first call) and again after a connection breaks, each time
/// with the TLS identity current at that moment.
pub fn channel(dialer: Arc<dyn Dialer>, tls: TlsSource, opts: ChannelOptions) -> Channel {
    // The URI only names the peer in `:authority`; the dialer decides where bytes go. The
    // scheme must be http: TLS is the dialer's job, not tonic's.
    let uri = format!("http://{}", authority(&dialer.target()));
    let endpoint = Endpoint::from_shared(uri)
        .unwrap_or_else(|_| Endpoint::from_static("http://teleport.cluster.local"))
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.request_timeout)
        .http2_keep_alive_interval(opts.keepalive_interval.max(Duration::from_secs(60)))
        .keep_alive_timeout(opts.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let dialer = dialer.clone();
        let config = tls.borrow().config.clone();
        async move { dialer.dial(config).await.map(TokioIo::new) }
    });
    endpoint.connect_with_connector_lazy(connector)
}

/// A valid URI authority for `addr`, falling back to the API domain.
fn authority(addr: &str) -> String {
    let ok = !addr.is_empty()
        && addr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if ok {
        addr.to_string()
    } else {
        SERVER_NAME.to_string()
    }
}
