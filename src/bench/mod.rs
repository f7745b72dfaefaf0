//! `teleport-mattermost bench`: the service (this very binary, `start --config`, in its own
//! process) against the simulators (in the bench process) on loopback. One run measures
//! event→post latency, throughput and its ratio to a bare client loop, resident memory and
//! the start-up reconcile, checks every post, and prints a table (or JSON).

pub mod bare;
pub mod measure;
pub mod process;
pub mod report;
pub mod world;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use self::measure::{check_roots, percentile};
use self::process::{ServiceProcess, free_port};
use self::report::Figures;
use self::world::SimWorld;
use crate::sim::teleport::fixtures::REVIEWER1;

/// Used by `--requests` unless given.
pub const DEFAULT_REQUESTS: usize = 10_000;
const READY: Duration = Duration::from_secs(30);
const STOP: Duration = Duration::from_secs(20);
const MB: f64 = 1_000_000.0;

/// `teleport-mattermost bench [--requests N] [--latency-samples N] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Requests in the throughput burst (open during the memory and reconcile rows).
    #[arg(long, default_value_t = DEFAULT_REQUESTS)]
    pub requests: usize,
    /// Requests measured one at a time for the latency row.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Internal: run only the bare client loop from this directory (a child of `bench`).
    #[arg(long, hide = true)]
    pub bare_worker: Option<std::path::PathBuf>,
}

/// Runs the benchmark; exit 1 on a crash or a correctness error, never on a missed target.
pub fn run(args: BenchArgs) -> ExitCode {
    if let Some(dir) = &args.bare_worker {
        return bare::worker_main(dir);
    }
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(bench(&args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(f) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&f).unwrap_or_else(|e| e.to_string())
                );
            } else {
                println!("{}", header(&args));
                print!("{}", report::table(&f));
            }
            if f.correct() {
                ExitCode::SUCCESS
            } else {
                eprintln!("bench: correctness check failed (see the lines under the table)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

fn header(args: &BenchArgs) -> String {
    let build = if cfg!(debug_assertions) {
        "debug build: figures are not representative, use --release"
    } else {
        "release build"
    };
    format!(
        "teleport-mattermost bench: {} requests (2 recipients each: a channel and the suggested reviewer's DM), {} latency samples; {build}\nmachine: {}\nservice: this binary (`start --config`) in its own process; Teleport and Mattermost simulators in the bench process; loopback\n",
        args.requests,
        args.latency_samples,
        machine()
    )
}

/// `nproc`, the CPU model and total memory, from /proc.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cpus} CPUs ({model}), {mem_gib:.1} GiB memory")
}

/// The review section the benchmark runs with: buttons are signed on every post, as in a
/// deployment with in-chat review.
fn review_section() -> String {
    format!(
        "[review]\nenabled = true\nsigning_secret = \"{}\"\n",
        uuid::Uuid::new_v4().simple()
    )
}

fn write_config(
    w: &SimWorld,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, std::net::SocketAddr, std::path::PathBuf)> {
    let http = free_port()?;
    let log = w.dir.path().join(format!("{name}.log"));
    let path = w.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, w.config_text(http, &log, &review_section()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((path, http, log))
}

async fn start_service(bin: &Path, w: &SimWorld, name: &str) -> anyhow::Result<ServiceProcess> {
    let (config, http, log) = write_config(w, name)?;
    let mut svc = ServiceProcess::spawn(bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(anyhow::Error::new(e).context(format!("the service's log:\n{}", tail(&log))));
    }
    Ok(svc)
}

/// The last lines of a log file, for an error message (the scratch directory is removed).
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn mb(kib: Option<u64>) -> f64 {
    kib.map_or(f64::NAN, |k| k as f64 * 1024.0 / MB)
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Figures> {
    let bin = std::env::current_exe().context("finding this binary")?;
    let n = args.requests.max(1);
    let mut f = Figures {
        requests: n,
        latency_samples: args.latency_samples,
        ..Figures::default()
    };

    progress("starting the simulators and the service");
    let w = SimWorld::start(false).await?;
    let svc = start_service(&bin, &w, "service").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.rss_idle_mb = mb(svc.rss_kib());

    progress(&format!(
        "latency: {} requests, one at a time",
        args.latency_samples
    ));
    let samples = measure::latency(&w, args.latency_samples).await?;
    let mut lat: Vec<Duration> = samples.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    f.latency_p50_ms = ms(percentile(&lat, 50.0));
    f.latency_p99_ms = ms(percentile(&lat, 99.0));
    f.latency_max_ms = ms(lat.last().copied().unwrap_or_default());

    progress(&format!("throughput: a burst of {n} requests"));
    let timeout = Duration::from_secs(60).max(Duration::from_millis(20) * n as u32);
    let burst = measure::burst(&w, n, timeout).await?;
    f.burst_secs = burst.elapsed.as_secs_f64();
    f.burst_creating_secs = burst.creating.as_secs_f64();
    f.throughput_per_sec = n as f64 / f.burst_secs;
    f.rss_open_mb = mb(svc.rss_kib());
    f.rss_peak_mb = mb(svc.peak_rss_kib());

    let dm = w
        .dm(REVIEWER1)
        .context("the suggested reviewer's DM was never created")?;
    let channels = [w.channel_id.clone(), dm];
    let mut ids: Vec<String> = samples.into_iter().map(|(id, _)| id).collect();
    ids.extend(burst.ids);
    f.bridge_posts = check_roots(&w, &ids, &channels);

    progress(&format!(
        "reconcile: restarting the service with {} open requests",
        ids.len()
    ));
    svc.terminate(STOP).await?;
    let posts_before = w.mm.post_count();
    let started = Instant::now();
    let (config, http, log) = write_config(&w, "restarted")?;
    let mut svc = ServiceProcess::spawn(&bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(
            anyhow::Error::new(e).context(format!("the restarted service's log:\n{}", tail(&log)))
        );
    }
    f.reconcile_ready_secs = started.elapsed().as_secs_f64();
    let deadline =
        started + Duration::from_secs(60).max(Duration::from_millis(10) * ids.len() as u32);
    loop {
        // Every catch-up item is one handled event; with nothing to redo each takes one try.
        let handled = svc
            .metric("teleport_mattermost_event_duration_seconds_count")
            .await
            .unwrap_or(0.0);
        if handled >= ids.len() as f64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "reconcile: only {handled} of {} requests handled after {:?}",
            ids.len(),
            started.elapsed()
        );
        if let Some(status) = svc.exited() {
            anyhow::bail!(
                "the restarted service exited ({status}); see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f.reconcile_secs = started.elapsed().as_secs_f64();
    // Give a wrongly re-posting service the chance to show it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.reconcile_new_posts = w.mm.post_count().saturating_sub(posts_before);
    svc.terminate(STOP).await?;

    // The bare loop posts the same body the bridge rendered, into fresh simulators.
    let sample =
        w.mm.posts()
            .into_iter()
            .find(|p| p.root_id.is_empty())
            .context("no post to copy the body from")?;
    let mut props = sample.props.clone();
    if let Some(o) = props.as_object_mut() {
        o.remove("from_bot");
    }
    let body = bare::Body {
        message: sample.message,
        props: Some(props),
    };
    drop(w);

    progress(&format!(
        "bare loop: {n} requests with the raw clients, in a child process"
    ));
    let w = SimWorld::start(false).await?;
    let bare_ids: Vec<String> = (0..n)
        .map(|_| w.tp.create_request(measure::request()).id)
        .collect();
    let (config_path, _, _) = write_config(&w, "bare")?;
    std::fs::rename(&config_path, w.dir.path().join(bare::CONFIG_FILE))?;
    std::fs::write(
        w.dir.path().join(bare::BODY_FILE),
        serde_json::to_vec(&body)?,
    )?;
    let out = tokio::process::Command::new(&bin)
        .arg("bench")
        .arg("--bare-worker")
        .arg(w.dir.path())
        .kill_on_drop(true)
        .output()
        .await
        .context("running the bare worker")?;
    anyhow::ensure!(
        out.status.success(),
        "the bare worker failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let result: bare::WorkerResult = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reading the bare worker's result {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    anyhow::ensure!(
        result.requests == n,
        "the bare worker saw {} requests, not {n}",
        result.requests
    );
    f.bare_secs = result.elapsed_secs;
    f.bare_per_sec = n as f64 / f.bare_secs;
    f.bridge_over_bare = f.burst_secs / f.bare_secs;
    let dm = w.dm(REVIEWER1).context("the bare loop made no DM")?;
    f.bare_posts = check_roots(&w, &bare_ids, &[w.channel_id.clone(), dm]);
    Ok(f)
}
