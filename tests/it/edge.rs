//! The HTTP edge over real sockets: silent and slow connections neither slow `/healthz` nor
//! stay open past their deadlines, the connection cap closes new connections at accept
//! (and says so) while open ones keep working, sources outside
//! `http.callback_allowed_sources` get a share of their own, and SIGTERM with slow clients
//! and a burst in flight ends the real binary cleanly within the one shutdown deadline.
//!
//! The in-process services run with short deadlines (an options struct, not paused time:
//! the sockets are real).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use teleport_mattermost::app::{Options, SHUTDOWN_GRACE};
use teleport_mattermost::http::serve::Limits;
use teleport_mattermost_sim::process::{ServiceProcess, free_port};
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::REQUESTER;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Service, WAIT, World};

const BIN: &str = env!("CARGO_BIN_EXE_teleport-mattermost");

async fn service_with(w: &World, extra: &str, http: Limits) -> Service {
    let options = Options {
        http,
        ..Options::default()
    };
    let s = Service::start(w.config(extra), options).await;
    s.ready().await;
    s
}

/// The default limits with these deadlines.
fn deadlines(header_read: Duration, idle: Duration) -> Limits {
    Limits {
        header_read,
        idle,
        ..Limits::default()
    }
}

/// Whether the server has closed `s` (end of stream or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (e.g. 408/400) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

/// `n` connections that send nothing.
async fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(TcpStream::connect(addr).await.unwrap());
    }
    out
}

/// `/healthz` latencies of `n` probes on a fresh connection each (what a kubelet does).
async fn probe(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .expect("/healthz answers");
        assert_eq!(r.status(), 200);
        lat.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lat.sort();
    lat
}

fn p99(lat: &[Duration]) -> Duration {
    lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1]
}

async fn open_connections(s: &Service) -> f64 {
    teleport_mattermost_sim::process::metric_value(
        &s.metrics.render(),
        "teleport_mattermost_http_connections_open",
    )
    .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_neither_slow_health_checks_nor_outlive_their_deadlines() {
    const HEADER: Duration = Duration::from_millis(1500);
    const IDLE: Duration = Duration::from_secs(4);
    let w = World::start().await;
    let s = service_with(&w, "", deadlines(HEADER, IDLE)).await;
    let baseline = probe(s.addr, 50).await;

    // Silent connections (`EDGE_SILENT`, default 400), one sending a header line every
    // 300 ms and never finishing, and one keep-alive connection that sent a request and then
    // went quiet.
    let count = std::env::var("EDGE_SILENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let started = Instant::now();
    let mut quiet = silent(s.addr, count).await;
    let mut trickle = TcpStream::connect(s.addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickling = tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if trickle
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return (trickle, started.elapsed());
            }
        }
        unreachable!()
    });
    let mut keep_alive = TcpStream::connect(s.addr).await.unwrap();
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = keep_alive.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let during = probe(s.addr, 50).await;
    let held = open_connections(&s).await;
    println!(
        "/healthz p99 {:?} alone, {:?} beside {held} open connections ({count} silent); max {:?}",
        p99(&baseline),
        p99(&during),
        during.last().unwrap()
    );
    assert!(held >= count as f64, "only {held} connections were held");
    assert!(
        p99(&during) < Duration::from_millis(100).max(p99(&baseline) * 5),
        "/healthz slowed by silent connections: p99 {:?} (alone {:?})",
        p99(&during),
        p99(&baseline)
    );

    // The silent ones are closed at the header deadline (with some slack for 400 closes).
    let deadline = started + HEADER + Duration::from_secs(1);
    let mut still_open = 0;
    for q in &mut quiet {
        let wait = deadline.saturating_duration_since(Instant::now());
        if !closed_within(q, wait).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "silent connections outlived the header deadline"
    );
    // Trickling header lines does not extend the deadline: the request never completes.
    let (mut trickle, after) = trickling.await.unwrap();
    assert!(closed_within(&mut trickle, Duration::from_secs(1)).await);
    assert!(
        after < HEADER + Duration::from_secs(2),
        "the trickling client was cut off only after {after:?}"
    );
    // The keep-alive connection is idle, not slow: it outlives the header deadline...
    assert!(
        !closed_within(&mut keep_alive, Duration::from_millis(100)).await,
        "an idle keep-alive connection was closed at the header deadline"
    );
    // ...and is closed at the idle deadline.
    assert!(closed_within(&mut keep_alive, IDLE).await);
    assert_eq!(open_connections(&s).await, 0.0);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_header_bytes_after_a_request_must_complete_within_the_header_deadline() {
    const HEADER: Duration = Duration::from_millis(800);
    let w = World::start().await;
    let s = service_with(&w, "", deadlines(HEADER, Duration::from_secs(30))).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = c.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Half a request on the idle connection, then nothing: cut at the header deadline,
    // not the 30 s idle one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut c, HEADER + Duration::from_secs(2)).await);
    assert!(t.elapsed() >= HEADER - Duration::from_millis(100));
    s.stop().await.unwrap();
}

/// A `tracing` writer into a shared buffer, to read what the service logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// One thread: the capturing subscriber is the thread's default, and the service's tasks
// run on this thread too.
#[tokio::test]
async fn beyond_the_cap_new_connections_are_closed_at_accept_and_logged_while_open_ones_serve() {
    const CAP: usize = 20;
    let (log, _guard) = capture();
    let w = World::start().await;
    let s = service_with(
        &w,
        "",
        Limits {
            // Long deadlines: the silent connections must hold their places.
            header_read: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            max_connections: CAP,
            ..Limits::default()
        },
    )
    .await;
    // One keep-alive client connection opened first (a health checker's, or Mattermost's).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let healthz = format!("http://{}/healthz", s.addr);
    assert_eq!(client.get(&healthz).send().await.unwrap().status(), 200);

    let mut held = silent(s.addr, CAP - 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(open_connections(&s).await, CAP as f64);
    // Beyond the cap: closed at once, not left waiting in the backlog.
    let mut refused = silent(s.addr, 10).await;
    for r in &mut refused {
        assert!(
            closed_within(r, Duration::from_secs(1)).await,
            "a connection beyond the cap was not closed at accept"
        );
    }
    // The open keep-alive connection still answers (a new one would have been refused).
    for _ in 0..5 {
        assert_eq!(client.get(&healthz).send().await.unwrap().status(), 200);
    }
    let text = log.text();
    assert_eq!(
        text.matches("HTTP connection limit reached").count(),
        1,
        "one line per interval, not one per refusal:\n{text}"
    );
    let refusals = teleport_mattermost_sim::process::metric_value(
        &s.metrics.render(),
        "teleport_mattermost_http_connections_refused_total{reason=\"cap\"}",
    );
    assert_eq!(refusals, Some(10.0));
    // Places are given back when connections end.
    for h in &mut held[..5] {
        h.shutdown().await.unwrap();
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    assert_eq!(fresh.get(&healthz).send().await.unwrap().status(), 200);
    s.stop().await.unwrap();
}

/// A connection from `source` (a loopback address of our choosing).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    sock.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_outside_the_allow_list_share_a_budget_of_their_own() {
    const OUTSIDE: usize = 8;
    let w = World::start().await;
    let s = service_with(
        &w,
        // Appended to the `[http]` table the harness ends with.
        "callback_allowed_sources = [\"127.0.0.2/32\"]\n",
        Limits {
            header_read: Duration::from_secs(30),
            max_connections: 64,
            outside_connections: OUTSIDE,
            ..Limits::default()
        },
    )
    .await;
    // Outsiders (127.0.0.1) fill their share...
    let _held = silent(s.addr, OUTSIDE).await;
    let mut extra = connect_from("127.0.0.1", s.addr).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(1)).await,
        "an outsider beyond its share was served"
    );
    // ...and the allowed source (Mattermost at 127.0.0.2) is still served.
    let mut mm = connect_from("127.0.0.2", s.addr).await;
    mm.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    mm.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let refusals = teleport_mattermost_sim::process::metric_value(
        &s.metrics.render(),
        "teleport_mattermost_http_connections_refused_total{reason=\"outside_budget\"}",
    );
    assert_eq!(refusals, Some(1.0));
    s.stop().await.unwrap();
}

/// SIGTERM while a client holds half a request, another an idle HTTP/2 (h2c) connection,
/// and Mattermost answers so slowly that a burst of requests cannot drain: the process
/// tells the connections to close, stops at the one deadline and exits 0, saying the
/// unfinished requests are completed by the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_slow_clients_and_a_burst_in_flight_exits_0_within_the_deadline() {
    let w = World::start().await;
    let http = free_port().unwrap();
    let log = w.dir.path().join("service.log");
    let config = w.dir.path().join("service.toml");
    let extra = format!(
        "[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n\n[log]\noutput = {log:?}\nseverity = \"info\"\n"
    );
    let text = w
        .config_text(&extra)
        .replace("127.0.0.1:0", &http.to_string());
    std::fs::write(&config, text).unwrap();
    let mut svc = ServiceProcess::spawn(Path::new(BIN), &config, http, &[], Some(&log)).unwrap();
    svc.wait_ready(WAIT).await.unwrap();

    // Slow clients: half a request, and an h2c connection left idle after one request.
    let mut partial = TcpStream::connect(http).await.unwrap();
    partial
        .write_all(b"POST /mattermost/action HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("http://{http}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // A burst Mattermost cannot keep up with: every answer takes longer than the grace.
    w.mm.faults()
        .set_latency(SHUTDOWN_GRACE + Duration::from_secs(10));
    for i in 0..20 {
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).reason(&format!("burst {i}")));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t = Instant::now();
    let status = svc
        .terminate(SHUTDOWN_GRACE + Duration::from_secs(10))
        .await
        .unwrap();
    let took = t.elapsed();
    w.mm.faults().set_latency(Duration::ZERO);
    let text = std::fs::read_to_string(&log).unwrap();
    println!("SIGTERM under load: {status} after {took:?}");
    assert!(status.success(), "exit {status}:\n{text}");
    assert!(
        took < SHUTDOWN_GRACE + Duration::from_secs(1),
        "shutdown took {took:?}:\n{text}"
    );
    assert!(
        text.contains("the next start completes them"),
        "the log does not say the unfinished work is completed later:\n{text}"
    );
    assert!(text.contains("Successfully shut down"), "{text}");
    // Both slow clients were told to go (or cut off at the deadline).
    assert!(closed_within(&mut partial, Duration::from_secs(1)).await);
}

/// At shutdown, idle HTTP/1 keep-alive and HTTP/2 connections are closed at once (HTTP/2
/// with GOAWAY), not held until the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_at_once() {
    let w = World::start().await;
    let s = service_with(&w, "", Limits::default()).await;
    let mut h1 = TcpStream::connect(s.addr).await.unwrap();
    h1.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(h1.read(&mut buf).await.unwrap() > 0);
    // An HTTP/2 (prior knowledge) client connection, idle after one request.
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let h2_conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/healthz", s.addr))
        .body(String::new())
        .unwrap();
    assert_eq!(h2.send_request(req).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t = Instant::now();
    let stopped = tokio::spawn(s.stop());
    assert!(closed_within(&mut h1, Duration::from_secs(2)).await);
    // The client's connection ends when the server's GOAWAY has been exchanged.
    tokio::time::timeout(Duration::from_secs(2), h2_conn)
        .await
        .expect("the HTTP/2 connection was not closed at shutdown")
        .unwrap()
        .unwrap();
    stopped.await.unwrap().unwrap();
    println!(
        "stopped with idle HTTP/1 and HTTP/2 connections in {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopping took {:?}",
        t.elapsed()
    );
}

/// Starts a service whose `mattermost.url` is `url` (nothing else changed) with a capturing
/// subscriber, and returns the log once start-up has reported a failure.
async fn start_up_log(w: &World, url: &str, log: &Captured) -> String {
    let text = w.config_text("").replace(&w.mm.url().to_string(), url);
    let config = teleport_mattermost::config::Config::from_toml(&text).unwrap();
    let s = Service::start(config, Options::default()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !log.text().contains("start-up check failed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no start-up failure logged for {url}:\n{}",
            log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await.unwrap();
    let out = log.text();
    log.0.lock().unwrap().clear();
    out
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

/// The start-up warning for an unreachable Mattermost says why, like Teleport's: connection
/// refused, a name that does not resolve, a certificate this system does not trust.
// One thread: the capturing subscriber is the thread's default.
#[tokio::test]
async fn an_unreachable_mattermost_at_start_up_says_why() {
    let (log, _guard) = capture();
    let w = World::start().await;
    let closed = free_port().unwrap();
    let cases = [
        (format!("http://{closed}"), "Connection refused"),
        ("http://mattermost.invalid".to_string(), "dns error"),
        (
            format!("https://{}", w.tp.addr()),
            "is not signed by a CA this system trusts",
        ),
    ];
    for (url, why) in cases {
        let text = start_up_log(&w, &url, &log).await;
        let line = text
            .lines()
            .find(|l| l.contains("start-up check failed"))
            .unwrap();
        println!("{line}");
        assert!(line.contains(why), "{url}: expected {why:?} in\n{line}");
    }
}

/// A Mattermost answering 5xx at start-up: each warning says one thing, either that the
/// call is retried or that it failed, never "retrying" and "retries exhausted" together.
#[tokio::test]
async fn a_failing_mattermost_at_start_up_is_retried_without_claiming_retries_are_exhausted() {
    let (log, _guard) = capture();
    let w = World::start().await;
    w.mm.faults().fail_always(None, 502);
    let text = start_up_log(&w, w.mm.url().as_ref(), &log).await;
    w.mm.faults().clear();
    let retrying: Vec<_> = text.lines().filter(|l| l.contains("retrying")).collect();
    assert!(!retrying.is_empty(), "{text}");
    for l in retrying {
        assert!(!l.contains("exhausted"), "{l}");
        assert!(l.contains("502"), "{l}");
    }
}
