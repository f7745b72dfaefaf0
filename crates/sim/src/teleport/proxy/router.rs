//! The Proxy's ALPN router: reads the ClientHello without terminating TLS and, walking the
//! client's protocols in the client's order, forwards `teleport-auth@` raw to Auth (the first
//! protocol must be that one and name this cluster), terminates `teleport-reversetunnel`,
//! `h2`, `http/1.1` or no ALPN with the web certificate, and refuses anything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::alpn::{AUTH_PREFIX, H2, HTTP1, REVERSE_TUNNEL, cluster_of};
use super::hello::{Rewind, read_hello};
use super::{Ctx, Front, HelloRecord, Route};

/// A connection the router can take: TCP, or the stream inside a connection upgrade.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}
pub(crate) type BoxedIo = Box<dyn Io>;

/// A plaintext fatal alert record: `no_application_protocol` (120).
const ALERT_NO_APPLICATION_PROTOCOL: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x78];

/// How long a client may take to send its ClientHello, or to finish a handshake here.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes one connection (a TCP connection, or the stream inside an upgrade).
pub(crate) fn route(
    ctx: Arc<Ctx>,
    mut io: BoxedIo,
    via_upgrade: bool,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let (hello, buffered) = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut io)).await
        {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return tracing::debug!("proxy sim: {e}"),
            Err(_) => return tracing::debug!("proxy sim: no ClientHello within {HELLO_TIMEOUT:?}"),
        };
        // Inside an upgrade the Proxy's own router runs, whatever the front.
        let front = if via_upgrade {
            Front::Direct
        } else {
            ctx.front()
        };
        let route = decide(front, &hello.alpn, &ctx.cluster);
        ctx.records().hellos.push(HelloRecord {
            sni: hello.sni.clone(),
            alpn: hello.alpn.clone(),
            via_upgrade,
            route: route.clone(),
        });
        let io = Rewind::new(buffered, io);
        match route {
            Route::Auth => forward(&ctx, io).await,
            Route::Closed(why) => tracing::debug!("proxy sim: closing: {why}"),
            Route::ReverseTunnel => {
                let cfg = ctx.pki.config(&[REVERSE_TUNNEL]);
                // The handshake completes; the SSH server behind it is not simulated.
                let _ =
                    tokio::time::timeout(HELLO_TIMEOUT, TlsAcceptor::from(cfg).accept(io)).await;
            }
            Route::Refused => {
                // What a TLS server with no protocol in common sends before its ServerHello.
                let mut io = io;
                let _ = io.write_all(&ALERT_NO_APPLICATION_PROTOCOL).await;
                let _ = io.shutdown().await;
            }
            Route::Web => {
                let alpn: &[&str] = match front {
                    Front::Direct => &[H2, HTTP1],
                    Front::StripAlpn => &[],
                    Front::Http1Only => &[HTTP1],
                };
                let accept = TlsAcceptor::from(ctx.pki.config(alpn)).accept(io);
                match tokio::time::timeout(HELLO_TIMEOUT, accept).await {
                    Ok(Ok(tls)) => super::http::serve(ctx.clone(), tls).await,
                    Ok(Err(e)) => tracing::debug!("proxy sim: web TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!("proxy sim: web TLS handshake timed out"),
                }
            }
        }
    })
}

/// The route for a ClientHello offering `alpn` (in the client's order).
pub(crate) fn decide(front: Front, alpn: &[String], cluster: &str) -> Route {
    match front {
        Front::StripAlpn => return Route::Web,
        Front::Http1Only => {
            return if alpn.is_empty() || alpn.iter().any(|p| p == HTTP1) {
                Route::Web
            } else {
                Route::Refused
            };
        }
        Front::Direct => {}
    }
    for p in alpn {
        if p.starts_with(AUTH_PREFIX) {
            // The auth handler reads the first protocol, whichever one matched.
            let first = &alpn[0];
            return match first.strip_prefix(AUTH_PREFIX).map(cluster_of) {
                Some(Ok(c)) if c == cluster => Route::Auth,
                Some(Ok(c)) => Route::Closed(format!("cluster {c:?} is not served here")),
                Some(Err(e)) => Route::Closed(e),
                None => Route::Closed(format!(
                    "the first ALPN protocol {first:?} is not {AUTH_PREFIX}"
                )),
            };
        }
        if p == REVERSE_TUNNEL {
            return Route::ReverseTunnel;
        }
        if p == H2 || p == HTTP1 {
            return Route::Web;
        }
    }
    if alpn.is_empty() {
        Route::Web
    } else {
        Route::Refused
    }
}

/// Copies bytes both ways between the client (ClientHello first) and the Auth simulator.
async fn forward(ctx: &Ctx, mut client: Rewind<BoxedIo>) {
    let auth =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(ctx.auth_addr)).await;
    let mut auth = match auth {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!("proxy sim: cannot reach Auth: {e}"),
        Err(_) => return tracing::debug!("proxy sim: Auth did not accept within 5s"),
    };
    let _ = auth.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut auth).await;
}

#[cfg(test)]
mod tests {
    use super::super::alpn::auth_alpn;
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_proxy_routes_by_the_clients_protocol_order() {
        let auth = auth_alpn("c.test");
        let d = |l: &[&str]| decide(Front::Direct, &v(l), "c.test");
        assert_eq!(d(&[&auth, "h2"]), Route::Auth);
        assert_eq!(d(&["h2", &auth]), Route::Web);
        assert_eq!(d(&[REVERSE_TUNNEL]), Route::ReverseTunnel);
        assert_eq!(d(&[]), Route::Web);
        assert_eq!(d(&[HTTP1]), Route::Web);
        assert_eq!(d(&["foo"]), Route::Refused);
        assert!(matches!(d(&["foo", &auth]), Route::Closed(_)));
        assert!(
            matches!(d(&[&auth_alpn("other.test"), "h2"]), Route::Closed(m) if m.contains("other.test"))
        );
        assert!(matches!(d(&["teleport-auth@zz", "h2"]), Route::Closed(_)));
    }

    #[test]
    fn layer_7_fronts_never_forward() {
        let auth = auth_alpn("c.test");
        assert_eq!(
            decide(Front::StripAlpn, &v(&[&auth, "h2"]), "c.test"),
            Route::Web
        );
        assert_eq!(
            decide(Front::Http1Only, &v(&[&auth, "h2"]), "c.test"),
            Route::Refused
        );
        assert_eq!(decide(Front::Http1Only, &v(&[]), "c.test"), Route::Web);
    }
}
