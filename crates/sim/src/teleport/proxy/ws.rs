//! The server side of the WebSocket carried by the Proxy's connection upgrade (RFC 6455),
//! written for the simulator: the accept key, frames read from the client (which must mask
//! them) and written unmasked, pings on a timer with the pongs reported, a close answered
//! with a close. The framed connection is turned into a plain byte stream through an
//! in-memory pipe, so the ALPN router can treat it like a TCP connection.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

pub const UPGRADE_PATH: &str = "/webapi/connectionupgrade";
/// The sub-protocol with server pings (what Teleport's clients ask for).
pub const SUBPROTOCOL_ALPN_PING: &str = "alpn-ping";
/// The sub-protocol without pings.
pub const SUBPROTOCOL_ALPN: &str = "alpn";

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// Close status 1000: normal closure.
const CLOSE_NORMAL: u16 = 1000;
/// Larger frames than this from a client are refused (Teleport's clients send 64 KiB).
const MAX_FRAME: u64 = 16 << 20;
/// How much the simulator sends per data frame.
const SEND_CHUNK: usize = 64 * 1024;

/// Called with each pong payload.
pub type PongHook = Box<dyn FnMut(&[u8]) + Send>;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    B64.encode(h.finalize())
}

/// One server frame (FIN set, never masked).
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A close frame's payload: the status code, big-endian.
pub fn close_payload(code: u16) -> [u8; 2] {
    code.to_be_bytes()
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// Reads one client frame: `None` at a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 2];
    if r.read(&mut head[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await?;
    let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0F);
    if head[0] & 0x70 != 0 {
        return Err(invalid("reserved bits set without an extension".into()));
    }
    if head[1] & 0x80 == 0 {
        return Err(invalid("a client frame must be masked".into()));
    }
    let len = match head[1] & 0x7F {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        n => u64::from(n),
    };
    if opcode >= OP_CLOSE && (!fin || len > 125) {
        return Err(invalid(format!(
            "control frame {opcode:#x} fragmented or too long"
        )));
    }
    if len > MAX_FRAME {
        return Err(invalid(format!("a {len}-byte frame is too large")));
    }
    let mut mask = [0u8; 4];
    r.read_exact(&mut mask).await?;
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(Some((opcode, payload)))
}

/// Serves the WebSocket on `io` and returns the byte stream it carries. With `pings`, a ping
/// carrying `teleport` goes out every interval and each pong is handed to the hook.
pub fn serve<S>(io: S, pings: Option<(Duration, PongHook)>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(SEND_CHUNK * 2);
    let (mut from_pipe, mut to_pipe) = tokio::io::split(ours);
    let (mut rd, mut wr) = tokio::io::split(io);
    let (control, mut control_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (interval, mut on_pong) = match pings {
        Some((every, hook)) => (Some(every), Some(hook)),
        None => (None, None),
    };
    // Client → pipe: data frames become bytes; control frames are answered or reported.
    tokio::spawn(async move {
        loop {
            let (opcode, data) = match read_frame(&mut rd).await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("proxy sim: WebSocket: {e}");
                    break;
                }
            };
            match opcode {
                OP_BINARY | OP_CONTINUATION => {
                    if to_pipe.write_all(&data).await.is_err() {
                        break;
                    }
                }
                OP_PING => {
                    let _ = control.send(server_frame(OP_PONG, &data));
                }
                OP_PONG => {
                    if let Some(hook) = &mut on_pong {
                        hook(&data);
                    }
                }
                OP_CLOSE => {
                    let _ = control.send(server_frame(OP_CLOSE, &close_payload(CLOSE_NORMAL)));
                    break;
                }
                OP_TEXT => {
                    tracing::debug!("proxy sim: WebSocket: a text frame on a binary stream");
                    break;
                }
                op => {
                    tracing::debug!("proxy sim: WebSocket: unknown opcode {op:#x}");
                    break;
                }
            }
        }
        // The router reads the end of the client's stream.
        let _ = to_pipe.shutdown().await;
    });
    // Pipe → client: bytes become binary frames, interleaved with pongs, pings and closes.
    tokio::spawn(async move {
        let every = interval.unwrap_or(Duration::from_secs(3600));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; SEND_CHUNK];
        loop {
            let frame = tokio::select! {
                n = from_pipe.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => server_frame(OP_BINARY, &buf[..n]),
                },
                Some(f) = control_rx.recv() => f,
                _ = ticks.tick(), if interval.is_some() => server_frame(OP_PING, b"teleport"),
            };
            let closing = frame[0] & 0x0F == OP_CLOSE;
            if wr.write_all(&frame).await.is_err() || closing {
                return;
            }
        }
        let _ = wr
            .write_all(&server_frame(OP_CLOSE, &close_payload(CLOSE_NORMAL)))
            .await;
        let _ = wr.shutdown().await;
    });
    theirs
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A masked client frame.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = server_frame(opcode, payload);
        let at = out.len() - payload.len();
        out[1] |= 0x80;
        out.splice(at..at, mask);
        for (i, b) in out[at + 4..].iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        out
    }

    #[test]
    fn the_accept_key_matches_the_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn frames_carry_bytes_both_ways_pings_are_sent_and_pongs_reported() {
        tokio::time::pause();
        let (client, server) = tokio::io::duplex(1 << 20);
        let pongs = Arc::new(Mutex::new(Vec::new()));
        let seen = pongs.clone();
        let hook: PongHook = Box::new(move |p| seen.lock().unwrap().push(p.to_vec()));
        let mut pipe = serve(server, Some((Duration::from_secs(30), hook)));
        let (mut crd, mut cwr) = tokio::io::split(client);
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        cwr.write_all(&client_frame(OP_BINARY, &big)).await.unwrap();
        let mut got = vec![0u8; big.len()];
        pipe.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
        pipe.write_all(b"reply").await.unwrap();
        let mut head = [0u8; 7];
        crd.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x82, 5, b'r', b'e', b'p', b'l', b'y']);
        tokio::time::sleep(Duration::from_secs(31)).await;
        let mut ping = [0u8; 10];
        crd.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping[..2], &[0x89, 8]);
        cwr.write_all(&client_frame(OP_PONG, &ping[2..]))
            .await
            .unwrap();
        cwr.write_all(&client_frame(OP_CLOSE, &close_payload(1000)))
            .await
            .unwrap();
        let mut rest = Vec::new();
        pipe.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "a close ends the carried stream");
        assert_eq!(*pongs.lock().unwrap(), vec![b"teleport".to_vec()]);
        let mut close = [0u8; 4];
        crd.read_exact(&mut close).await.unwrap();
        assert_eq!(close, [0x88, 2, 0x03, 0xE8]);
    }

    #[tokio::test]
    async fn an_unmasked_client_frame_ends_the_stream() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut pipe = serve(server, None);
        client
            .write_all(&server_frame(OP_BINARY, b"x"))
            .await
            .unwrap();
        let mut rest = Vec::new();
        pipe.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
