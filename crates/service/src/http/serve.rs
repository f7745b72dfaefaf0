//! The listener's connection handling: every connection is served by hyper (HTTP/1 or h2c,
//! told apart by the first bytes) under deadlines of its own, and the number of open
//! connections is capped, so silent or slow clients can neither hold sockets for ever nor
//! use up the open files that health checks, identity reloads and outbound calls need.
//!
//! Shutdown: at the [`Deadline`]'s request the listener closes, every connection is told to
//! finish (HTTP/2 GOAWAY; HTTP/1 answers its request in progress with `Connection: close`,
//! an idle one is closed at once), and what is still open at the deadline is dropped.
//!
//! `http.callback_allowed_sources` at accept time: the same port serves `/healthz`,
//! `/readyz` and `/metrics`, which kubelet and Prometheus reach from addresses that are not
//! Mattermost's, and the path is not known before a request is read. So a connection from
//! outside the list is not refused outright: it goes to a small budget of its own
//! ([`Limits::outside_connections`]), refused at accept (before a byte is read) when that
//! is full, while Mattermost's sources keep the main budget to themselves. The callback
//! routes still answer 403 to outsiders. Refusing outsiders outright would need the probes
//! on a listener of their own.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::IpNet;
use crate::logging::Throttle;
use crate::metrics::Metrics;
use crate::signals::Deadline;

/// The deadlines and budgets of the HTTP listener. Production uses [`Limits::default`];
/// tests shorten them. The documented ranges are what the defaults were chosen within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A new connection must complete its first request's headers within this; on a
    /// keep-alive HTTP/1 connection, the next request's headers must be complete this long
    /// after their first byte. Mattermost sends a request at once; 2–30 s, default 5 s.
    pub header_read: Duration,
    /// A connection with no request in progress is closed after this. Longer than the 90 s
    /// Go's HTTP client (Mattermost's) keeps an idle connection, so the client closes first
    /// and never sends a request on a connection we are closing; 10–600 s, default 100 s.
    pub idle: Duration,
    /// At most this many connections at once; beyond, new ones are closed at accept. Never
    /// more than half the open-file limit, leaving the rest for outbound calls, identity
    /// reloads and logs; 16–65,536, default 1,024.
    pub max_connections: usize,
    /// When `http.callback_allowed_sources` is set, connections from elsewhere (probes,
    /// scrapes, anyone else) share this much of the cap; 4–1,024, default 64.
    pub outside_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(5),
            idle: Duration::from_secs(100),
            max_connections: 1024,
            outside_connections: 64,
        }
    }
}

/// How the server ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Served {
    /// Connections still open at the shutdown deadline, dropped then.
    pub dropped: usize,
}

/// Serves `router` on `listener` until `deadline` is requested, then drains (see the module
/// documentation). `allowed` is `http.callback_allowed_sources`.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    allowed: Vec<IpNet>,
    limits: Limits,
    metrics: &Metrics,
    deadline: Deadline,
) -> tokio::task::JoinHandle<Served> {
    let counters = ConnMetrics::new(metrics);
    tokio::spawn(serve(listener, router, allowed, limits, counters, deadline))
}

/// Raises the soft open-file limit to the hard one (the usual soft 1,024 is too few for a
/// server) and returns the soft limit now in force.
pub fn raise_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::debug!(open_files = n, "open-file limit raised to the hard limit");
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            None
        }
    }
}

/// The connection cap: `max_connections`, but at most half the open-file limit.
fn connection_cap(max: usize, open_files: Option<u64>) -> usize {
    let half = open_files.map_or(usize::MAX, |n| usize::try_from(n / 2).unwrap_or(usize::MAX));
    if half < max {
        tracing::info!(
            connections = half,
            "HTTP connection cap lowered to half the open-file limit; raise `LimitNOFILE` (or `ulimit -n`) for more"
        );
    }
    max.min(half).max(1)
}

async fn serve(
    listener: TcpListener,
    router: Router,
    allowed: Vec<IpNet>,
    limits: Limits,
    metrics: ConnMetrics,
    deadline: Deadline,
) -> Served {
    let cap = connection_cap(limits.max_connections, raise_file_limit());
    let inside = Arc::new(Semaphore::new(cap));
    let outside = Arc::new(Semaphore::new(limits.outside_connections.min(cap)));
    let tracker = TaskTracker::new();
    let closing = CancellationToken::new();
    let drop_now = CancellationToken::new();
    // What an outsider can repeat at will is logged once, then summarised every 10 s.
    let logged = Throttle::new(Duration::from_secs(10));
    let stop = deadline.reached();
    tokio::pin!(stop);
    let at = loop {
        tokio::select! {
            at = &mut stop => break at,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let outsider = !allowed.is_empty() && !allowed.iter().any(|n| n.contains(peer.ip()));
                    let budget = if outsider { &outside } else { &inside };
                    let Ok(permit) = budget.clone().try_acquire_owned() else {
                        // Closed before a byte is read: the socket is freed at once.
                        drop(tcp);
                        if outsider {
                            metrics.refused.with_label_values(&["outside_budget"]).inc();
                            if let Some(n) = logged.due(("accept", "outside_budget")) {
                                tracing::warn!(open = limits.outside_connections.min(cap), refused = n, peer = %peer, "HTTP connections from outside `http.callback_allowed_sources` reached their share; closing new ones at accept (count since the last such line in `refused`)");
                            }
                        } else {
                            metrics.refused.with_label_values(&["cap"]).inc();
                            if let Some(n) = logged.due(("accept", "cap")) {
                                tracing::warn!(open = cap, refused = n, peer = %peer, "HTTP connection limit reached; closing new connections at accept until some end (count since the last such line in `refused`)");
                            }
                        }
                        continue;
                    };
                    tracker.spawn(connection(Conn {
                        tcp,
                        peer,
                        permit,
                        router: router.clone(),
                        clock: Arc::new(Clock::new(&limits)),
                        closing: closing.clone(),
                        drop_now: drop_now.clone(),
                        open: metrics.open.clone(),
                    }));
                }
                Err(e) => {
                    if let Some(n) = logged.due(("accept", "error")) {
                        tracing::warn!(error = %e, errors = n, "HTTP accept failed");
                    }
                    // Out of files (or similar): give closing connections time to free some
                    // instead of spinning on the same error.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    drop(listener);
    closing.cancel();
    tracker.close();
    let open = tracker.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            "HTTP server stopped accepting; open connections are told to close"
        );
    }
    if tokio::time::timeout_at(at, tracker.wait()).await.is_ok() {
        return Served::default();
    }
    let dropped = tracker.len();
    drop_now.cancel();
    tracker.wait().await;
    Served { dropped }
}

/// One accepted connection and what it needs.
struct Conn {
    tcp: TcpStream,
    peer: SocketAddr,
    /// Its place in the cap, given back when the connection ends.
    permit: OwnedSemaphorePermit,
    router: Router,
    clock: Arc<Clock>,
    closing: CancellationToken,
    drop_now: CancellationToken,
    open: IntGauge,
}

async fn connection(c: Conn) {
    let Conn {
        tcp,
        peer,
        permit,
        router,
        clock,
        closing,
        drop_now,
        open,
    } = c;
    let _permit = permit;
    open.inc();
    let _open = scopeguard(move || open.dec());
    let _ = tcp.set_nodelay(true);
    let io = TokioIo::new(Watched {
        inner: tcp,
        clock: clock.clone(),
    });
    let requests = clock.clone();
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        let started = requests.request_started(req.version());
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(axum::body::Body::new)).await;
            drop(started);
            response
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut told = false;
    loop {
        let (expires, why) = clock.expiry();
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = closing.cancelled(), if !told => {
                told = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = drop_now.cancelled() => {
                tracing::debug!(peer = %peer, "HTTP connection dropped at the shutdown deadline");
                return;
            }
            _ = tokio::time::sleep_until(expires) => {
                if clock.expiry().0 <= Instant::now() {
                    tracing::debug!(peer = %peer, reason = why, "closing an HTTP connection");
                    return;
                }
            }
            _ = clock.changed.notified() => {}
        }
    }
}

/// Runs `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// When a connection is due to close, from what it has done so far.
struct Clock {
    header_read: Duration,
    idle: Duration,
    state: Mutex<ClockState>,
    /// Woken when the deadline moves earlier (bytes of a new request on an idle connection).
    changed: Notify,
}

struct ClockState {
    in_flight: usize,
    requests: u64,
    /// When the connection was accepted, or when its last request ended.
    since: Instant,
    http1: bool,
    /// The first byte of the next request's headers (HTTP/1, after the first request).
    head_started: Option<Instant>,
}

impl Clock {
    fn new(limits: &Limits) -> Self {
        Self {
            header_read: limits.header_read,
            idle: limits.idle,
            state: Mutex::new(ClockState {
                in_flight: 0,
                requests: 0,
                since: Instant::now(),
                http1: true,
                head_started: None,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ClockState> {
        crate::sync::lock(&self.state)
    }

    /// The instant the connection is due to close if nothing happens, and why.
    fn expiry(&self) -> (Instant, &'static str) {
        let s = self.state();
        if s.in_flight > 0 {
            // Requests are bounded by the router's own timeout; look again later.
            return (Instant::now() + self.idle, "request in progress");
        }
        if s.requests == 0 {
            return (s.since + self.header_read, "no request headers in time");
        }
        let idle = s.since + self.idle;
        match s.head_started {
            Some(t) if t + self.header_read < idle => (
                t + self.header_read,
                "request headers not completed in time",
            ),
            _ => (idle, "idle"),
        }
    }

    fn request_started(self: &Arc<Self>, version: http::Version) -> InFlight {
        let mut s = self.state();
        s.in_flight += 1;
        s.requests += 1;
        s.http1 = version < http::Version::HTTP_2;
        s.head_started = None;
        InFlight(self.clone())
    }

    /// Bytes arrived. On an idle HTTP/1 connection they start the next request's headers;
    /// on HTTP/2 they may be pings or settings, which do not count as a request.
    fn bytes_read(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.requests > 0 && s.http1 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }
}

/// A request in progress on a connection; its end restarts the idle clock.
struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.since = Instant::now();
            s.head_started = None;
        }
    }
}

/// The TCP stream, telling its [`Clock`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[derive(Clone)]
struct ConnMetrics {
    refused: IntCounterVec,
    open: IntGauge,
}

impl ConnMetrics {
    fn new(metrics: &Metrics) -> Self {
        let refused = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_http_connections_refused_total",
                "HTTP connections closed at accept, by reason (cap: the connection limit; outside_budget: the share of sources outside `http.callback_allowed_sources`).",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let open = IntGauge::new(
            "teleport_mattermost_http_connections_open",
            "HTTP connections open now.",
        )
        .expect("static metric definition");
        Self {
            refused: metrics.register(&refused),
            open: metrics.register(&open),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_open_files() {
        assert_eq!(connection_cap(1024, Some(1024)), 512);
        assert_eq!(connection_cap(1024, Some(524_288)), 1024);
        assert_eq!(connection_cap(1024, None), 1024);
    }
}
