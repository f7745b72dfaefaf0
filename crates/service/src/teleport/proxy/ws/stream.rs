//! A byte stream carried in WebSocket binary frames: reads reassemble any frame size, writes
//! become one frame each (masked when we are the client), pings are answered with pongs
//! carrying the same payload, and a close frame reads as end of stream. A server-side stream
//! can also send periodic pings (Teleport's `alpn-ping` keep-alive).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Interval;

use super::frame::{self, Decoder, Event, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, Role};

/// Largest payload of one frame we send (Teleport's servers cut theirs at 128 KiB).
const MAX_SEND_PAYLOAD: usize = 64 * 1024;
/// Above this much unsent output, writers wait.
const HIGH_WATER: usize = 256 * 1024;
/// Close status: normal closure.
const CLOSE_NORMAL: u16 = 1000;

/// Called with each pong payload received (the simulator records them).
pub type PongHook = Box<dyn FnMut(&[u8]) + Send>;

pub struct WsStream<S> {
    inner: S,
    role: Role,
    decoder: Decoder,
    /// Raw bytes read but not yet decoded.
    rbuf: BytesMut,
    /// Decoded payload not yet handed to the reader.
    pending: Bytes,
    /// Encoded frames not yet written (whole frames are appended, so control frames never
    /// land inside a data frame).
    out: BytesMut,
    /// A close frame arrived or the peer ended the stream at a frame boundary.
    eof: bool,
    close_sent: bool,
    pinger: Option<(Interval, Bytes)>,
    on_pong: Option<PongHook>,
}

impl<S> std::fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("role", &self.role)
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// `prefix`: bytes already read past the HTTP response or request head.
    pub fn new(inner: S, role: Role, prefix: &[u8]) -> Self {
        Self {
            inner,
            role,
            decoder: Decoder::new(role),
            rbuf: BytesMut::from(prefix),
            pending: Bytes::new(),
            out: BytesMut::new(),
            eof: false,
            close_sent: false,
            pinger: None,
            on_pong: None,
        }
    }

    /// Sends a ping carrying `payload` every `every` (first one after `every`).
    pub fn with_pings(mut self, every: Duration, payload: &'static [u8]) -> Self {
        let start = tokio::time::Instant::now() + every;
        let mut t = tokio::time::interval_at(start, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.pinger = Some((t, Bytes::from_static(payload)));
        self
    }

    pub fn on_pong(mut self, hook: PongHook) -> Self {
        self.on_pong = Some(hook);
        self
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn mask(&self) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(rand::random::<[u8; 4]>)
    }

    fn queue(&mut self, opcode: u8, payload: &[u8]) {
        let mask = self.mask();
        frame::encode(opcode, true, payload, mask, &mut self.out);
    }

    /// Writes queued frames until done or the socket is full.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what is queued if the socket takes it now; errors surface on the next write.
    fn push_out(&mut self, cx: &mut Context<'_>) {
        if !self.out.is_empty() && self.poll_drain(cx).is_ready() {
            let _ = Pin::new(&mut self.inner).poll_flush(cx);
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Poll the timer until it is pending, so its waker is always registered.
            while let Some((timer, payload)) = &mut this.pinger
                && timer.poll_tick(cx).is_ready()
            {
                let payload = payload.clone();
                if !this.close_sent {
                    this.queue(OP_PING, &payload);
                }
            }
            this.push_out(cx);
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match this.decoder.next(&mut this.rbuf) {
                Err(e) => return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
                Ok(Some(Event::Data(b))) => this.pending = b,
                Ok(Some(Event::Ping(p))) => this.queue(OP_PONG, &p),
                Ok(Some(Event::Pong(p))) => {
                    if let Some(hook) = &mut this.on_pong {
                        hook(&p);
                    }
                }
                Ok(Some(Event::Close(code, reason))) => {
                    tracing::debug!(?code, %reason, "WebSocket peer closed the stream");
                    this.eof = true;
                    if !this.close_sent {
                        this.close_sent = true;
                        this.queue(OP_CLOSE, &frame::close_payload(CLOSE_NORMAL));
                    }
                }
                Ok(None) => {
                    let mut chunk = [0u8; 16 * 1024];
                    let mut rb = ReadBuf::new(&mut chunk);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    if rb.filled().is_empty() {
                        if !this.decoder.at_boundary() {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the connection ended inside a WebSocket frame",
                            )));
                        }
                        this.eof = true;
                    } else {
                        this.rbuf.extend_from_slice(rb.filled());
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.close_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the WebSocket stream is closed",
            )));
        }
        if this.out.len() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(MAX_SEND_PAYLOAD);
        let mask = this.mask();
        frame::encode(OP_BINARY, true, &data[..n], mask, &mut this.out);
        // Start sending now; what the socket does not take goes out on the next poll.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            this.queue(OP_CLOSE, &frame::close_payload(CLOSE_NORMAL));
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    #[tokio::test]
    async fn bytes_cross_in_both_directions_and_a_close_ends_both() {
        let (a, b) = duplex(1024);
        let mut client = WsStream::new(a, Role::Client, &[]);
        let mut server = WsStream::new(b, Role::Server, &[]);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let sent = big.clone();
        let client_task = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.flush().await.unwrap();
            let mut reply = [0u8; 5];
            client.read_exact(&mut reply).await.unwrap();
            client.shutdown().await.unwrap();
            reply
        });
        let mut got = vec![0u8; big.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
        server.write_all(b"reply").await.unwrap();
        server.flush().await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "the close frame reads as end of stream");
        assert_eq!(&client_task.await.unwrap(), b"reply");
        // A close is answered with a close; nothing may be sent after it.
        let err = server.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn an_idle_client_answers_server_pings_with_the_same_payload() {
        tokio::time::pause();
        let (a, b) = duplex(1024);
        let mut client = WsStream::new(a, Role::Client, &[]);
        let pongs = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let seen = pongs.clone();
        let mut server = WsStream::new(b, Role::Server, &[])
            .with_pings(Duration::from_millis(100), b"teleport")
            .on_pong(Box::new(move |p| seen.lock().unwrap().push(p.to_vec())));
        // The client only reads (as an idle HTTP/2 connection does); the server only reads.
        let client_task = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            client.read(&mut buf).await
        });
        let server_task = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let _ = tokio::time::timeout(Duration::from_millis(350), server.read(&mut buf)).await;
        });
        server_task.await.unwrap();
        let pongs = pongs.lock().unwrap().clone();
        assert_eq!(pongs, vec![b"teleport".to_vec(); 3]);
        client_task.abort();
    }

    #[tokio::test]
    async fn bytes_left_after_the_http_head_are_decoded_first() {
        let (a, mut b) = duplex(64);
        let mut first = BytesMut::new();
        frame::encode(OP_BINARY, true, b"early", None, &mut first);
        let mut client = WsStream::new(a, Role::Client, &first);
        let mut more = BytesMut::new();
        frame::encode(OP_BINARY, true, b"-late", None, &mut more);
        b.write_all(&more).await.unwrap();
        let mut got = [0u8; 10];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early-late");
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error_not_a_clean_end() {
        let (a, mut b) = duplex(64);
        let mut client = WsStream::new(a, Role::Client, &[]);
        b.write_all(&[0x82, 0x05, b'a']).await.unwrap();
        drop(b);
        let mut got = Vec::new();
        let err = client.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_protocol_violation_from_the_peer_is_invalid_data() {
        let (a, mut b) = duplex(64);
        let mut client = WsStream::new(a, Role::Client, &[]);
        b.write_all(&[0x81, 0x01, b'x']).await.unwrap();
        let err = client.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("text"), "{err}");
    }
}
