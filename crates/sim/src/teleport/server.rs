//! The simulator's listener: TCP on 127.0.0.1, mTLS handshakes off the accept loop, the
//! caller identified from its verified client certificate, and connections that the fault
//! switchboard can break.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::Connected;

use super::faults::{ConnRecord, Faults};

/// Who is on the other end of a connection: request extensions carry it to the handlers.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub user: String,
    pub serial: String,
    pub peer: SocketAddr,
}

/// An accepted mTLS connection that fails all I/O once its kill token fires.
pub(crate) struct SimConn {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
    kill: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl SimConn {
    fn killed(&mut self, cx: &mut Context<'_>) -> bool {
        self.kill.as_mut().poll(cx).is_ready()
    }
}

fn reset() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection dropped by the fault switchboard",
    )
}

impl Connected for SimConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for SimConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.killed(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.killed(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.killed(cx) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Accepts until `shutdown`, handing finished handshakes to `out`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    faults: Faults,
    out: mpsc::Sender<std::io::Result<SimConn>>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("sim accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, faults, out) = (acceptor.clone(), faults.clone(), out.clone());
        tokio::spawn(async move {
            let hs = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            let io = match hs {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "sim TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "sim TLS handshake timed out");
                    return;
                }
            };
            let Some(info) = identify(&io, peer) else {
                tracing::debug!(%peer, "sim: client certificate without a user");
                return;
            };
            faults.record_connection(ConnRecord {
                user: info.user.clone(),
                serial: info.serial.clone(),
                peer,
            });
            let kill = Box::pin(faults.connection_token().cancelled_owned());
            let _ = out.send(Ok(SimConn { io, info, kill })).await;
        });
    }
}

/// The verified client certificate's CN (the Teleport user) and serial (lowercase hex of
/// its bytes, as [`super::IssuedIdentity::serial`] has it).
fn identify(io: &TlsStream<TcpStream>, peer: SocketAddr) -> Option<ConnInfo> {
    let der = io.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let user = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    (!user.is_empty()).then(|| ConnInfo {
        user,
        serial: hex::encode(cert.raw_serial()),
        peer,
    })
}
