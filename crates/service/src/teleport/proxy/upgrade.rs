//! The client side of Teleport's ALPN connection upgrade: `GET /webapi/connectionupgrade`
//! over HTTP/1.1 asking for a WebSocket with sub-protocol `alpn-ping`, the `101` answer
//! checked (accept key, sub-protocol), and the rest of the stream handed to [`WsStream`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ws::{Role, WsStream};

pub const UPGRADE_PATH: &str = "/webapi/connectionupgrade";
/// The sub-protocol with server pings; what Teleport's own client asks for on this path.
pub const SUBPROTOCOL_ALPN_PING: &str = "alpn-ping";
/// The sub-protocol without pings (accepted by servers; not sent by this client).
pub const SUBPROTOCOL_ALPN: &str = "alpn";
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// A response head larger than this is not a Teleport proxy's.
const MAX_HEAD: usize = 16 * 1024;

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    B64.encode(h.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
pub fn new_key() -> String {
    B64.encode(rand::random::<[u8; 16]>())
}

/// The request, byte for byte. `host` is the address as configured (`host:port`).
pub fn request(host: &str, key: &str) -> String {
    format!(
        "GET {UPGRADE_PATH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: {SUBPROTOCOL_ALPN_PING}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nUser-Agent: teleport-mattermost/{}\r\n\r\n",
        crate::version::VERSION
    )
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the proxy answered 404: it does not offer the ALPN connection upgrade (a Teleport version without it); upgrade Teleport, or let ALPN through the load balancer in front of it"
    )]
    NotFound,
    #[error("the proxy answered {status} instead of 101 Switching Protocols{detail}")]
    Status { status: u16, detail: String },
    #[error("the proxy's upgrade answer is malformed: {0}")]
    Malformed(String),
    #[error("the proxy's upgrade answer is wrong: {0}")]
    Mismatch(String),
}

/// Runs the handshake on `io` (the outer TLS stream) and returns the framed stream.
pub async fn upgrade<S>(mut io: S, host: &str) -> Result<WsStream<S>, UpgradeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = new_key();
    io.write_all(request(host, &key).as_bytes()).await?;
    io.flush().await?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find_head_end(&buf) {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(UpgradeError::Malformed(format!(
                "no end of the HTTP head within {MAX_HEAD} bytes"
            )));
        }
        let mut chunk = [0u8; 2048];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(UpgradeError::Malformed(
                "the connection closed before the HTTP answer was complete".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| UpgradeError::Malformed("the HTTP head is not UTF-8".into()))?;
    check_response(head, &key)?;
    Ok(WsStream::new(io, Role::Client, &buf[head_end..]))
}

/// The index just past `\r\n\r\n`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Status line and headers (names lowercased) of an HTTP/1.1 head.
pub fn parse_head(head: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next().ok_or("an empty HTTP head")?.to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a header line without a colon: {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok((first, headers))
}

/// The first value of header `name` (lowercase).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn check_response(head: &str, key: &str) -> Result<(), UpgradeError> {
    let (status_line, headers) = parse_head(head).map_err(UpgradeError::Malformed)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| UpgradeError::Malformed(format!("status line {status_line:?}")))?;
    match status {
        101 => {}
        404 => return Err(UpgradeError::NotFound),
        _ => {
            let detail = match parts.next() {
                Some(r) if !r.is_empty() => format!(" ({r})"),
                _ => String::new(),
            };
            return Err(UpgradeError::Status { status, detail });
        }
    }
    let upgrade = header(&headers, "upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(UpgradeError::Mismatch(format!(
            "Upgrade is {upgrade:?}, not \"websocket\""
        )));
    }
    let want = accept_key(key);
    let got = header(&headers, "sec-websocket-accept").unwrap_or_default();
    if got != want {
        return Err(UpgradeError::Mismatch(format!(
            "Sec-WebSocket-Accept is {got:?}, expected {want:?}"
        )));
    }
    let proto = header(&headers, "sec-websocket-protocol").unwrap_or_default();
    if proto != SUBPROTOCOL_ALPN_PING {
        return Err(UpgradeError::Mismatch(format!(
            "Sec-WebSocket-Protocol is {proto:?}, expected {SUBPROTOCOL_ALPN_PING:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_matches_the_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_are_16_random_bytes_in_base64() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert_eq!(B64.decode(&a).unwrap().len(), 16);
    }

    fn answer(status: &str, accept: &str, proto: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nupgrade: WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n"
        )
    }

    #[test]
    fn a_correct_101_is_accepted_and_each_wrong_field_is_named() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = accept_key(key);
        check_response(&answer("101 Switching Protocols", &good, "alpn-ping"), key).unwrap();
        let e = check_response(&answer("101 Switching Protocols", "bad", "alpn-ping"), key)
            .unwrap_err();
        assert!(e.to_string().contains("Sec-WebSocket-Accept"), "{e}");
        let e = check_response(&answer("101 Switching Protocols", &good, "alpn"), key).unwrap_err();
        assert!(e.to_string().contains("Sec-WebSocket-Protocol"), "{e}");
        let e = check_response(&answer("404 Not Found", &good, "x"), key).unwrap_err();
        assert!(matches!(e, UpgradeError::NotFound), "{e}");
        let e = check_response(&answer("502 Bad Gateway", &good, "x"), key).unwrap_err();
        assert!(e.to_string().contains("502 instead of 101"), "{e}");
        assert!(e.to_string().contains("Bad Gateway"), "{e}");
        let e = check_response("garbage\r\n\r\n", key).unwrap_err();
        assert!(matches!(e, UpgradeError::Malformed(_)), "{e}");
    }

    #[test]
    fn the_request_carries_every_header_teleport_checks() {
        let r = request("tenant.teleport.sh:443", "k");
        let (first, headers) = parse_head(&r).unwrap();
        assert_eq!(first, "GET /webapi/connectionupgrade HTTP/1.1");
        for (n, v) in [
            ("host", "tenant.teleport.sh:443"),
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-protocol", "alpn-ping"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "k"),
        ] {
            assert_eq!(header(&headers, n), Some(v), "{n}");
        }
    }

    #[tokio::test]
    async fn bytes_after_the_101_head_belong_to_the_websocket_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
        let (client, mut server) = duplex(4096);
        let task = tokio::spawn(async move {
            let mut ws = upgrade(client, "h:1").await.unwrap();
            let mut got = [0u8; 2];
            ws.read_exact(&mut got).await.unwrap();
            got
        });
        let mut req = vec![0u8; 4096];
        let n = server.read(&mut req).await.unwrap();
        let (_, headers) = parse_head(std::str::from_utf8(&req[..n]).unwrap()).unwrap();
        let key = header(&headers, "sec-websocket-key").unwrap().to_string();
        let mut reply =
            answer("101 Switching Protocols", &accept_key(&key), "alpn-ping").into_bytes();
        reply.extend_from_slice(&[0x82, 0x02, b'o', b'k']);
        server.write_all(&reply).await.unwrap();
        assert_eq!(&task.await.unwrap(), b"ok");
    }
}
