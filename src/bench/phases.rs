//! The benchmark's phases: the live rows against a running service (idle memory, latency,
//! the burst, memory with the burst open), the restart reconcile, and the bare client loop.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::measure::{self, check_roots, percentile};
use super::process::{ServiceProcess, cpu_secs, free_port};
use super::report::{Figures, RateLimitedFigures};
use super::{BenchArgs, bare, progress};
use teleport_mattermost_sim::teleport::fixtures::REVIEWER1;
use teleport_mattermost_sim::world::{World as SimWorld, WorldOptions};

const READY: Duration = Duration::from_secs(30);
const STOP: Duration = Duration::from_secs(20);
const MB: f64 = 1_000_000.0;

/// The slash command's token in the benchmark's configs.
const COMMAND_TOKEN: &str = "bench-command-token";

/// The review section the benchmark runs with: buttons are signed on every post, as in a
/// deployment with in-chat review.
fn review_section() -> String {
    format!(
        "[review]\nenabled = true\nsigning_secret = \"{}\"\ncommand_token = \"{COMMAND_TOKEN}\"\nrequire_reason = \"never\"\n",
        uuid::Uuid::new_v4().simple()
    )
}

/// The simulators, without request bodies in the Mattermost log (they would only cost
/// memory).
async fn start_world() -> std::io::Result<SimWorld> {
    SimWorld::start_with(WorldOptions::default().log_bodies(false)).await
}

/// A complete service config: every request goes to the world's channel (plus the suggested
/// reviewers' DMs), logs at `warn` to `log`, callbacks at `http://<listen>`, in-chat review on.
fn config_text(w: &SimWorld, listen: std::net::SocketAddr, log: &Path, extra: &str) -> String {
    w.config_text(&format!(
        "[role_to_recipients]\n\"*\" = [\"{}\"]\n\n[log]\noutput = {log:?}\nseverity = \"warn\"\n\n[http]\nlisten_addr = \"{listen}\"\npublic_addr = \"http://{listen}\"\n\n{}\n{extra}",
        w.channel_path,
        review_section(),
    ))
}

/// The restarted service schedules a reminder and an escalation for every open request (none
/// due while it runs): the idle cost of thousands of scheduled requests.
fn reminders_section(w: &SimWorld) -> String {
    format!(
        "[reminders]\nremind_after = [\"1h\", \"4h\"]\nescalate_after = \"2h\"\nescalate_to = [\"{}\"]\n",
        w.channel_path
    )
}

fn write_config(
    w: &SimWorld,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, std::net::SocketAddr, std::path::PathBuf)> {
    write_config_with(w, name, "")
}

/// [`write_config`] with more sections (e.g. `[bridge]`).
fn write_config_with(
    w: &SimWorld,
    name: &str,
    extra: &str,
) -> anyhow::Result<(std::path::PathBuf, std::net::SocketAddr, std::path::PathBuf)> {
    let http = free_port()?;
    let log = w.dir.path().join(format!("{name}.log"));
    let path = w.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, config_text(w, http, &log, extra))
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

/// CPU microseconds per request between two readings.
fn per_request_us(before: Option<f64>, after: Option<f64>, n: usize) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => (a - b) * 1e6 / n as f64,
        _ => f64::NAN,
    }
}

fn mb(kib: Option<u64>) -> f64 {
    kib.map_or(f64::NAN, |k| k as f64 * 1024.0 / MB)
}

/// All rows, in order; the simulators of the service rows are dropped before the bare loop.
pub async fn bench(args: &BenchArgs) -> anyhow::Result<Figures> {
    let bin = std::env::current_exe().context("finding this binary")?;
    let n = args.requests.max(1);
    let mut f = Figures {
        requests: n,
        latency_samples: args.latency_samples.max(1),
        ..Figures::default()
    };
    let (w, ids) = live_rows(&bin, &mut f).await?;
    reconcile_row(&bin, &w, &ids, &mut f).await?;
    review_rows(&bin, &w, &mut f).await?;
    let body = rendered_body(&w)?;
    drop(w);
    bare_row(&bin, body, &mut f).await?;
    Ok(f)
}

/// Idle memory, latency, the burst and memory with it open; returns the ids posted.
async fn live_rows(bin: &Path, f: &mut Figures) -> anyhow::Result<(SimWorld, Vec<String>)> {
    let n = f.requests;
    progress("starting the simulators and the service");
    let w = start_world().await?;
    let svc = start_service(bin, &w, "service").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.rss_idle_mb = mb(svc.rss_kib());

    progress(&format!(
        "latency: {} requests, one at a time",
        f.latency_samples
    ));
    let samples = measure::latency(&w, f.latency_samples).await?;
    let mut lat: Vec<Duration> = samples.iter().map(|(_, d)| *d).collect();
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    f.latency_p50_ms = ms(percentile(&lat, 50.0));
    f.latency_p99_ms = ms(percentile(&lat, 99.0));
    f.latency_max_ms = ms(lat.last().copied().unwrap_or_default());

    progress(&format!("throughput: a burst of {n} requests"));
    let timeout = Duration::from_secs(60).max(Duration::from_millis(20) * n as u32);
    let cpu = (svc.cpu_secs(), cpu_secs("self"));
    let burst = measure::burst(&w, n, timeout).await?;
    f.cpu_us_bridge = per_request_us(cpu.0, svc.cpu_secs(), n);
    f.cpu_us_sims_bridge = per_request_us(cpu.1, cpu_secs("self"), n);
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
    svc.terminate(STOP).await?;
    Ok((w, ids))
}

/// Slash command and button round trips, as Mattermost makes them (the simulator POSTs the
/// form / the click to the service and waits for its answer): for each sample a new request
/// needing two approvals; reviewer1 approves with `/teleport approve`, reviewer2 with the
/// button. Each includes the service's user lookup and the on-behalf review in Teleport.
async fn review_rows(bin: &Path, w: &SimWorld, f: &mut Figures) -> anyhow::Result<()> {
    use teleport_mattermost_sim::teleport::fixtures::REVIEWER2;
    let samples = f.latency_samples;
    progress(&format!(
        "review round trips: {samples} slash commands and {samples} button clicks"
    ));
    let (config, http, log) = write_config(w, "review")?;
    let mut svc = ServiceProcess::spawn(bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(anyhow::Error::new(e).context(format!("the service's log:\n{}", tail(&log))));
    }
    let command_url = format!("http://{http}/mattermost/command");
    let (r1, r2) = (
        w.mm_user(REVIEWER1).context("no reviewer1")?.to_string(),
        w.mm_user(REVIEWER2).context("no reviewer2")?.to_string(),
    );
    let (mut slash, mut click) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let mut req = measure::request();
        req.thresholds = Some(vec![teleport_mattermost_sim::teleport::Threshold {
            name: "two".into(),
            approve: 2,
            deny: 1,
        }]);
        let before = w.mm.post_count();
        let id = w.tp.create_request(req).id;
        let (channel, wanted) = (w.channel_id.clone(), id.clone());
        // Only the posts made since the request was created: after a large burst, looking
        // through every post of the channel would make the benchmark the bottleneck.
        let root =
            w.mm.wait_for(READY, move |sim| {
                sim.post_times(before)
                    .into_iter()
                    .filter_map(|(post, _)| sim.post(&post))
                    .find(|p| {
                        p.channel_id == channel
                            && p.root_id.is_empty()
                            && p.message.contains(&wanted)
                    })
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}: request {id} was not posted"))?;
        // A click is checked against the posts recorded in plugin data: wait for the record.
        let recorded = Instant::now() + Duration::from_secs(10);
        while !measure::fully_posted(w, &id, 2) {
            anyhow::ensure!(
                Instant::now() < recorded,
                "request {id}: plugin data not recorded"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let t = Instant::now();
        let out =
            w.mm.run_slash_command(
                &command_url,
                COMMAND_TOKEN,
                &r1,
                &w.channel_id,
                &format!("approve {id}"),
            )
            .await
            .map_err(|e| anyhow::anyhow!("slash command: {e}"))?;
        slash.push(t.elapsed());
        let text = out.ephemeral.map(|e| e.message).unwrap_or_default();
        anyhow::ensure!(
            text.contains("You approved"),
            "the slash command did not approve: {text}"
        );
        let t = Instant::now();
        let out =
            w.mm.click(&root.id, "approve", &r2)
                .await
                .map_err(|e| anyhow::anyhow!("click: {e}"))?;
        click.push(t.elapsed());
        let text = out.ephemeral.map(|e| e.message).unwrap_or_default();
        anyhow::ensure!(
            text.contains("You approved"),
            "the button did not approve: {text}"
        );
    }
    svc.terminate(STOP).await?;
    let ms = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        percentile(v, p).as_secs_f64() * 1000.0
    };
    f.slash_p50_ms = ms(&mut slash, 50.0);
    f.slash_p99_ms = ms(&mut slash, 99.0);
    f.click_p50_ms = ms(&mut click, 50.0);
    f.click_p99_ms = ms(&mut click, 99.0);
    Ok(())
}

/// The restarted service's periodic resync interval: short, so the benchmark sees
/// [`RESYNCS`] of them right after the start-up reconcile.
const RESYNC_INTERVAL: &str = "1s";
/// Periodic resyncs measured after the start-up reconcile (their CPU is averaged).
const RESYNCS: u32 = 2;

/// Restarts the service over `ids`, all posted: the time until each one was looked at (the
/// start-up catch-up listed every request and what it queued was handled), then the service
/// CPU of a periodic resync over the same requests, none of which changed.
async fn reconcile_row(
    bin: &Path,
    w: &SimWorld,
    ids: &[String],
    f: &mut Figures,
) -> anyhow::Result<()> {
    progress(&format!(
        "reconcile: restarting the service with {} open requests",
        ids.len()
    ));
    let posts_before = w.mm.post_count();
    let started = Instant::now();
    let extra = format!(
        "{}\n[bridge]\nresync_interval = \"{RESYNC_INTERVAL}\"\n",
        reminders_section(w)
    );
    let (config, http, log) = write_config_with(w, "restarted", &extra)?;
    let mut svc = ServiceProcess::spawn(bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(
            anyhow::Error::new(e).context(format!("the restarted service's log:\n{}", tail(&log)))
        );
    }
    f.reconcile_ready_secs = started.elapsed().as_secs_f64();
    let deadline =
        started + Duration::from_secs(60).max(Duration::from_millis(10) * ids.len() as u32);
    f.reconcile_queued = caught_up(&mut svc, 1, deadline, &log).await?;
    f.reconcile_secs = started.elapsed().as_secs_f64();
    f.reconcile_cpu_secs = svc.cpu_secs().unwrap_or(f64::NAN);

    progress(&format!(
        "resync: {RESYNCS} periodic resyncs over the same {} requests",
        ids.len()
    ));
    let cpu = svc.cpu_secs();
    let t = Instant::now();
    let deadline =
        Instant::now() + Duration::from_secs(60).max(Duration::from_millis(2) * ids.len() as u32);
    caught_up(&mut svc, 1 + RESYNCS, deadline, &log).await?;
    f.resync_cpu_ms = per_request_us(cpu, svc.cpu_secs(), RESYNCS as usize) / 1000.0;
    f.resync_secs = t.elapsed().as_secs_f64() / f64::from(RESYNCS);
    f.resync_queued = svc
        .metric("teleport_mattermost_catch_up_queued")
        .await
        .unwrap_or(f64::NAN);
    f.resync_unchanged = svc
        .metric("teleport_mattermost_catch_up_unchanged")
        .await
        .unwrap_or(f64::NAN);
    // Give a wrongly re-posting service the chance to show it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.reconcile_new_posts = w.mm.post_count().saturating_sub(posts_before);
    svc.terminate(STOP).await?;

    // Idle with every request on the reminder timer, at the default resync interval (the
    // 1 s one above would be most of what is measured).
    let (config, http, log) = write_config_with(w, "scheduled", &reminders_section(w))?;
    let mut svc = ServiceProcess::spawn(bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(
            anyhow::Error::new(e).context(format!("the scheduled service's log:\n{}", tail(&log)))
        );
    }
    let deadline =
        Instant::now() + Duration::from_secs(60).max(Duration::from_millis(10) * ids.len() as u32);
    caught_up(&mut svc, 1, deadline, &log).await?;
    scheduled_idle_row(&svc, ids.len(), f).await?;
    svc.terminate(STOP).await?;
    Ok(())
}

/// Waits until the service has finished `catch_ups` catch-ups and handled what the last one
/// queued; returns how many requests that one queued.
async fn caught_up(
    svc: &mut ServiceProcess,
    catch_ups: u32,
    deadline: Instant,
    log: &Path,
) -> anyhow::Result<f64> {
    loop {
        let done = svc
            .metric("teleport_mattermost_catch_ups_total")
            .await
            .unwrap_or(0.0);
        if done >= f64::from(catch_ups) {
            let queued = svc
                .metric("teleport_mattermost_catch_up_queued")
                .await
                .unwrap_or(0.0);
            // Every queued request is one handled event; with nothing to redo, one try.
            let handled = svc
                .metric("teleport_mattermost_event_duration_seconds_count")
                .await
                .unwrap_or(0.0);
            if handled >= queued {
                return Ok(queued);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "reconcile: {done} of {catch_ups} catch-ups done in time"
        );
        if let Some(status) = svc.exited() {
            anyhow::bail!(
                "the restarted service exited ({status}); see {}",
                log.display()
            );
        }
        // Each look is a scrape of /metrics, which costs the service CPU of its own: often
        // enough for the figure's resolution, rarely enough not to weigh on the resync's CPU.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long the idle CPU of the scheduled service is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// The reconciled service with every open request on the reminder timer: CPU and RSS while
/// nothing is due (one timer, no task or poll per request, so both should stay flat).
async fn scheduled_idle_row(svc: &ServiceProcess, n: usize, f: &mut Figures) -> anyhow::Result<()> {
    progress(&format!(
        "idle: {n} requests scheduled for reminders, measured for {}s",
        IDLE_WINDOW.as_secs()
    ));
    let deadline = Instant::now() + READY;
    loop {
        let scheduled = svc
            .metric("teleport_mattermost_reminders_scheduled")
            .await
            .unwrap_or(0.0);
        if scheduled >= n as f64 {
            f.scheduled = scheduled as usize;
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {scheduled} of {n} requests were scheduled for reminders"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = svc.cpu_secs();
    tokio::time::sleep(IDLE_WINDOW).await;
    f.idle_cpu_pct_scheduled = match (before, svc.cpu_secs()) {
        (Some(b), Some(a)) => (a - b) * 100.0 / IDLE_WINDOW.as_secs_f64(),
        _ => f64::NAN,
    };
    f.rss_scheduled_mb = mb(svc.rss_kib());
    progress(&format!(
        "idle with {} scheduled: {:.2}% CPU, {:.1} MB RSS",
        f.scheduled, f.idle_cpu_pct_scheduled, f.rss_scheduled_mb
    ));
    Ok(())
}

/// A root post as the bridge rendered it, for the bare loop to send.
fn rendered_body(w: &SimWorld) -> anyhow::Result<bare::Body> {
    let sample =
        w.mm.posts()
            .into_iter()
            .find(|p| p.root_id.is_empty())
            .context("no post to copy the body from")?;
    let mut props = sample.props.clone();
    if let Some(o) = props.as_object_mut() {
        o.remove("from_bot");
    }
    Ok(bare::Body {
        message: sample.message,
        props: Some(props.into()),
    })
}

/// The bare client loop over `n` fresh requests in fresh simulators, in a child process.
async fn bare_row(bin: &Path, body: bare::Body, f: &mut Figures) -> anyhow::Result<()> {
    let n = f.requests;
    progress(&format!(
        "bare loop: {n} requests with the raw clients, in a child process"
    ));
    let w = start_world().await?;
    let bare_ids: Vec<String> = (0..n)
        .map(|_| w.tp.create_request(measure::request()).id)
        .collect();
    let (config_path, _, _) = write_config(&w, "bare")?;
    std::fs::rename(&config_path, w.dir.path().join(bare::CONFIG_FILE))?;
    std::fs::write(
        w.dir.path().join(bare::BODY_FILE),
        serde_json::to_vec(&body)?,
    )?;
    let sims_cpu = cpu_secs("self");
    let out = tokio::process::Command::new(bin)
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
    // The worker's own start-up and listing are outside its CPU figure, not outside the
    // simulators' (a few ms for the listing).
    f.cpu_us_sims_bare = per_request_us(sims_cpu, cpu_secs("self"), n);
    f.cpu_us_bare = result.cpu_secs * 1e6 / n as f64;
    f.bare_secs = result.elapsed_secs;
    f.bare_per_sec = n as f64 / f.bare_secs;
    f.bridge_over_bare = f.burst_secs / f.bare_secs;
    let dm = w.dm(REVIEWER1).context("the bare loop made no DM")?;
    f.bare_posts = check_roots(&w, &bare_ids, &[w.channel_id.clone(), dm]);
    Ok(())
}

/// `bench --rate-limited`: Mattermost's default rate limit on (10 requests/s, burst 100 per
/// client address) and a burst of `n` requests × 2 recipients, from a full allowance: the
/// time against the limit's floor, the 429s the service still received, and whether it gave
/// up on any request.
pub async fn rate_limited(n: usize) -> anyhow::Result<RateLimitedFigures> {
    use teleport_mattermost_sim::mattermost::RateLimit;
    let bin = std::env::current_exe().context("finding this binary")?;
    let limit = RateLimit::default();
    progress("rate limited: starting the simulators (the default rate limit on) and the service");
    let w = start_world().await?;
    w.mm.faults().set_rate_limit(Some(limit.clone()));
    let (config, http, log) = write_config(&w, "rate-limited")?;
    let mut svc = ServiceProcess::spawn(&bin, &config, http, &[], Some(&log))?;
    if let Err(e) = svc.wait_ready(READY).await {
        return Err(anyhow::Error::new(e).context(format!("the service's log:\n{}", tail(&log))));
    }
    // Start from a full allowance: the start-up's calls are paid back after burst / rate.
    let refill = Duration::from_secs_f64(f64::from(limit.max_burst + 1) / f64::from(limit.per_sec));
    tokio::time::sleep(refill + Duration::from_secs(1)).await;
    let posts = 2 * n;
    let minimum_secs =
        posts.saturating_sub(limit.max_burst as usize) as f64 / f64::from(limit.per_sec);
    progress(&format!(
        "rate limited: a burst of {n} requests ({posts} posts; at least {minimum_secs:.0} s at the limit)"
    ));
    let requests_before = w.mm.requests().len();
    let log_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let timeout = Duration::from_secs_f64(minimum_secs * 3.0 + 60.0);
    let burst = measure::burst(&w, n, timeout).await?;
    let requests = w.mm.requests();
    let during = &requests[requests_before.min(requests.len())..];
    let logged: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .skip(log_before)
        .map(str::to_string)
        .collect();
    let gave_up = logged
        .iter()
        .filter(|l| l.contains("giving up on this event") || l.contains("gave up waiting"))
        .count();
    let posts_failed = svc
        .metric(r#"teleport_mattermost_posts_total{kind="root",outcome="error"}"#)
        .await
        .unwrap_or(0.0);
    let dm = w
        .dm(REVIEWER1)
        .context("the suggested reviewer's DM was never created")?;
    let check = check_roots(&w, &burst.ids, &[w.channel_id.clone(), dm]);
    svc.terminate(STOP).await?;
    Ok(RateLimitedFigures {
        requests: n,
        per_sec: limit.per_sec,
        max_burst: limit.max_burst,
        burst_secs: burst.elapsed.as_secs_f64(),
        minimum_secs,
        mattermost_requests: during.len(),
        refused_429: during.iter().filter(|r| r.status == 429).count(),
        gave_up,
        posts_failed,
        warn_lines: logged.len(),
        posts: check,
    })
}
