//! Reading a TLS ClientHello without terminating TLS: bytes are buffered while rustls'
//! `Acceptor` parses a copy, so the connection can still be forwarded raw (the buffered
//! bytes first, via [`Rewind`]) or terminated here.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// A ClientHello larger than this is refused.
const MAX_HELLO: usize = 64 * 1024;

/// What the client offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
}

/// Reads until a complete ClientHello is buffered; returns it and every byte read.
pub(crate) async fn read_hello<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<(Hello, Vec<u8>), String> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buffered = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = io.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before a complete ClientHello".into());
        }
        buffered.extend_from_slice(&chunk[..n]);
        if buffered.len() > MAX_HELLO {
            return Err("the ClientHello exceeds 64 KiB".into());
        }
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            if acceptor
                .read_tls(&mut rest)
                .map_err(|e| format!("not a TLS ClientHello: {e}"))?
                == 0
            {
                break;
            }
        }
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let ch = accepted.client_hello();
                let hello = Hello {
                    sni: ch.server_name().map(str::to_string),
                    alpn: ch
                        .alpn()
                        .map(|it| {
                            it.map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                return Ok((hello, buffered));
            }
            Err((e, _)) => return Err(format!("not a TLS ClientHello: {e}")),
        }
    }
}

/// `inner` with `prefix` put back in front of what it reads; writes pass through.
pub(crate) struct Rewind<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncWriteExt, duplex};

    use super::*;

    #[tokio::test]
    async fn reads_sni_and_alpn_in_the_clients_order_and_keeps_every_byte() {
        let (client_io, mut server_io) = duplex(1 << 16);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        cfg.alpn_protocols = vec![
            b"teleport-auth@63.teleport.cluster.local".to_vec(),
            b"h2".to_vec(),
        ];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let client = tokio::spawn(async move {
            let name = ServerName::try_from("teleport.cluster.local").unwrap();
            let _ = connector.connect(name, client_io).await;
        });
        let (hello, bytes) = read_hello(&mut server_io).await.unwrap();
        assert_eq!(hello.sni.as_deref(), Some("teleport.cluster.local"));
        assert_eq!(
            hello.alpn,
            ["teleport-auth@63.teleport.cluster.local", "h2"]
        );
        assert_eq!(bytes[0], 0x16, "a handshake record");
        let mut replay = Rewind::new(bytes.clone(), tokio::io::empty());
        let mut again = Vec::new();
        replay.read_to_end(&mut again).await.unwrap();
        assert_eq!(again, bytes);
        server_io.shutdown().await.unwrap();
        drop(server_io);
        client.await.unwrap();
    }

    #[tokio::test]
    async fn plain_http_is_not_a_client_hello() {
        let (mut a, mut b) = duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let err = read_hello(&mut b).await.unwrap_err();
        assert!(err.contains("not a TLS ClientHello"), "{err}");
    }
}
