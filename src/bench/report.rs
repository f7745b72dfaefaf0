//! The benchmark's figures and how they are shown: a Markdown table (measured figure, target,
//! PASS/MISS) ready to paste into BENCHMARKS.md, or JSON. Targets are never shown as figures.

use serde::Serialize;

use super::measure::PostCheck;

#[derive(Debug, Default, Serialize)]
pub struct Figures {
    pub requests: usize,
    /// The machine's load average (1, 5, 15 min) before → after the run.
    pub load_average: String,
    pub latency_samples: usize,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub throughput_per_sec: f64,
    pub burst_secs: f64,
    /// Creating the burst in the Teleport simulator (part of `burst_secs`).
    pub burst_creating_secs: f64,
    pub bare_per_sec: f64,
    pub bare_secs: f64,
    /// Bridge time over bare-loop time for the same number of requests.
    pub bridge_over_bare: f64,
    /// CPU per request during the burst: the service, and the simulators serving it.
    pub cpu_us_bridge: f64,
    pub cpu_us_sims_bridge: f64,
    /// The same for the bare loop.
    pub cpu_us_bare: f64,
    pub cpu_us_sims_bare: f64,
    pub rss_idle_mb: f64,
    pub rss_open_mb: f64,
    pub rss_peak_mb: f64,
    pub reconcile_secs: f64,
    /// Of `reconcile_secs`: from spawning the process to `/readyz` answering 200.
    pub reconcile_ready_secs: f64,
    /// Service CPU from its start to the end of the start-up reconcile.
    pub reconcile_cpu_secs: f64,
    /// Requests the start-up catch-up queued (the others' posts were already current).
    pub reconcile_queued: f64,
    /// One periodic resync over the same open requests, none changed: service CPU (an upper
    /// bound: the 1 s interval and the benchmark's scrapes of /metrics are in it), time
    /// between two resyncs' ends (the interval included), requests it queued, and requests
    /// it skipped undecoded as unchanged.
    pub resync_cpu_ms: f64,
    pub resync_secs: f64,
    pub resync_queued: f64,
    pub resync_unchanged: f64,
    /// Root posts of the bridge run and of the bare loop run.
    pub bridge_posts: PostCheck,
    pub bare_posts: PostCheck,
    /// Posts made by the restarted service during the reconcile (must be 0).
    pub reconcile_new_posts: usize,
    /// Review round trips (Mattermost → service → Teleport → answer).
    pub slash_p50_ms: f64,
    pub slash_p99_ms: f64,
    pub click_p50_ms: f64,
    pub click_p99_ms: f64,
    /// Requests on the reminder timer in the restarted service, and its idle CPU (% of one
    /// core) and RSS with them.
    pub scheduled: usize,
    pub idle_cpu_pct_scheduled: f64,
    pub rss_scheduled_mb: f64,
}

/// Targets: bridge time over bare-loop time, and service CPU over the bare loop's.
const RATIO: f64 = 1.10;
const CPU_RATIO: f64 = 1.15;
/// Start-up reconcile of every open request (the target is set at 100,000).
const RECONCILE_SECS: f64 = 3.0;
/// Resident memory: idle, and with every request of the run open.
const RSS_IDLE_MB: f64 = 15.0;
const RSS_OPEN_MB: f64 = 64.0;

impl Figures {
    /// Service CPU per request over the bare loop's.
    pub fn cpu_ratio(&self) -> f64 {
        self.cpu_us_bridge / self.cpu_us_bare
    }

    /// Correctness (not speed): every request posted exactly once per recipient, and the
    /// restart posted nothing again.
    pub fn correct(&self) -> bool {
        self.bridge_posts.ok() && self.bare_posts.ok() && self.reconcile_new_posts == 0
    }
}

struct Row {
    name: String,
    figure: String,
    target: &'static str,
    verdict: &'static str,
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn rows(f: &Figures) -> Vec<Row> {
    let row = |name: String, figure: String, target, verdict| Row {
        name,
        figure,
        target,
        verdict,
    };
    let n = f.requests;
    vec![
        row(
            format!(
                "event→post latency p50 ({} requests, one at a time)",
                f.latency_samples
            ),
            format!("{:.2} ms", f.latency_p50_ms),
            "",
            "",
        ),
        row(
            format!("event→post latency p99 (max {:.2} ms)", f.latency_max_ms),
            format!("{:.2} ms", f.latency_p99_ms),
            "≤ 10 ms",
            verdict(f.latency_p99_ms <= 10.0),
        ),
        row(
            format!(
                "throughput, bridge ({n} requests × 2 posts, {:.2} s incl. {:.2} s creating them)",
                f.burst_secs, f.burst_creating_secs
            ),
            format!("{:.0} requests/s", f.throughput_per_sec),
            "≥ 2,000/s",
            verdict(f.throughput_per_sec >= 2000.0),
        ),
        row(
            format!(
                "throughput, bare client loop ({n} requests, {:.2} s)",
                f.bare_secs
            ),
            format!("{:.0} requests/s", f.bare_per_sec),
            "",
            "",
        ),
        row(
            "bridge time / bare loop time".into(),
            format!("{:.2}×", f.bridge_over_bare),
            "≤ 1.10×",
            verdict(f.bridge_over_bare <= RATIO),
        ),
        row(
            format!(
                "CPU per request: service / bare loop ({:.2}×; simulators: {:.0} / {:.0} µs)",
                f.cpu_ratio(),
                f.cpu_us_sims_bridge,
                f.cpu_us_sims_bare
            ),
            format!("{:.0} / {:.0} µs", f.cpu_us_bridge, f.cpu_us_bare),
            "≤ 1.15×",
            verdict(f.cpu_ratio() <= CPU_RATIO),
        ),
        row(
            "service RSS, idle".into(),
            format!("{:.1} MB", f.rss_idle_mb),
            "≤ 15 MB",
            verdict(f.rss_idle_mb <= RSS_IDLE_MB),
        ),
        row(
            format!(
                "service RSS, {} open requests (peak {:.1} MB)",
                n + f.latency_samples,
                f.rss_peak_mb
            ),
            format!("{:.1} MB", f.rss_open_mb),
            "≤ 64 MB",
            verdict(f.rss_open_mb <= RSS_OPEN_MB),
        ),
        row(
            format!(
                "start-up reconcile of {} open requests (ready after {:.2} s, {:.2} s CPU, {} queued)",
                n + f.latency_samples,
                f.reconcile_ready_secs,
                f.reconcile_cpu_secs,
                f.reconcile_queued
            ),
            format!("{:.2} s", f.reconcile_secs),
            "≤ 3 s",
            verdict(f.reconcile_secs <= RECONCILE_SECS),
        ),
        row(
            format!(
                "periodic resync of the same requests, unchanged: service CPU per run ({} queued, {} skipped)",
                f.resync_queued, f.resync_unchanged
            ),
            format!("{:.0} ms", f.resync_cpu_ms),
            "",
            "",
        ),
        row(
            format!(
                "service idle with {} requests scheduled for reminders: CPU / RSS",
                f.scheduled
            ),
            format!(
                "{:.2}% / {:.1} MB",
                f.idle_cpu_pct_scheduled, f.rss_scheduled_mb
            ),
            "≤ 1% / ≤ 64 MB",
            verdict(f.idle_cpu_pct_scheduled <= 1.0 && f.rss_scheduled_mb <= 64.0),
        ),
        row(
            format!(
                "slash command round trip p50/p99 ({} commands)",
                f.latency_samples
            ),
            format!("{:.2} / {:.2} ms", f.slash_p50_ms, f.slash_p99_ms),
            "p99 ≤ 20 ms",
            verdict(f.slash_p99_ms <= 20.0),
        ),
        row(
            format!("button round trip p50/p99 ({} clicks)", f.latency_samples),
            format!("{:.2} / {:.2} ms", f.click_p50_ms, f.click_p99_ms),
            "p99 ≤ 20 ms",
            verdict(f.click_p99_ms <= 20.0),
        ),
    ]
}

fn check_line(name: &str, c: &PostCheck) -> String {
    format!(
        "{name}: {} root posts for {} expected (request, recipient) pairs: {} missing, {} duplicated, {} unexpected — {}",
        c.roots,
        c.expected,
        c.missing,
        c.duplicates,
        c.unexpected,
        if c.ok() { "OK" } else { "WRONG" }
    )
}

/// The Markdown table plus the correctness lines.
pub fn table(f: &Figures) -> String {
    let mut out = markdown(&rows(f));
    out.push('\n');
    out.push_str(&check_line("bridge", &f.bridge_posts));
    out.push('\n');
    out.push_str(&check_line("bare loop", &f.bare_posts));
    out.push('\n');
    out.push_str(&format!(
        "reconcile: {} posts made again by the restarted service — {}\n",
        f.reconcile_new_posts,
        if f.reconcile_new_posts == 0 {
            "OK"
        } else {
            "WRONG"
        }
    ));
    out
}

/// The rows as a Markdown table, columns padded.
fn markdown(rows: &[Row]) -> String {
    let w0 = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.figure.chars().count())
        .max()
        .unwrap_or(0);
    let w2 = rows
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = format!(
        "| {} | {} | {} | result |\n|{}|{}|{}|--------|\n",
        pad("measure", w0),
        pad("figure", w1),
        pad("target", w2),
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2),
        "-".repeat(w2 + 2),
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            pad(&r.name, w0),
            pad(&r.figure, w1),
            pad(r.target, w2),
            pad(r.verdict, 6)
        ));
    }
    out
}

/// `bench --rate-limited`: a burst against Mattermost's default rate limit.
#[derive(Debug, Default, Serialize)]
pub struct RateLimitedFigures {
    pub requests: usize,
    /// The simulator's limit: sustained rate and burst.
    pub per_sec: u32,
    pub max_burst: u32,
    pub burst_secs: f64,
    /// `(posts − burst) / rate`: the limit's floor for this burst.
    pub minimum_secs: f64,
    /// Every Mattermost request the service made during the burst, and the 429s among them.
    pub mattermost_requests: usize,
    pub refused_429: usize,
    /// Requests whose event the service gave up on (its log), and posts it counted as failed.
    pub gave_up: usize,
    pub posts_failed: f64,
    /// Lines the service logged at warn or above during the burst.
    pub warn_lines: usize,
    pub posts: PostCheck,
}

impl RateLimitedFigures {
    pub fn over_minimum(&self) -> f64 {
        self.burst_secs / self.minimum_secs
    }

    /// 429s as a share of the root posts.
    pub fn refused_share(&self) -> f64 {
        self.refused_429 as f64 / self.posts.expected.max(1) as f64
    }

    pub fn correct(&self) -> bool {
        self.posts.ok()
    }
}

/// The rate-limited row (and its detail) as a Markdown table plus the correctness line.
pub fn rate_limited_table(f: &RateLimitedFigures) -> String {
    let pass = f.over_minimum() <= 1.05 && f.refused_share() <= 0.01 && f.gave_up == 0;
    let rows = [
        Row {
            name: format!(
                "rate limited ({}/s, burst {}): {} requests × 2 posts, time (minimum {:.1} s)",
                f.per_sec, f.max_burst, f.requests, f.minimum_secs
            ),
            figure: format!("{:.1} s = {:.3}×", f.burst_secs, f.over_minimum()),
            target: "≤ 1.05×",
            verdict: verdict(f.over_minimum() <= 1.05),
        },
        Row {
            name: format!(
                "429s received, of {} Mattermost requests (share of posts)",
                f.mattermost_requests
            ),
            figure: format!("{} ({:.2} %)", f.refused_429, f.refused_share() * 100.0),
            target: "≤ 1 %",
            verdict: verdict(f.refused_share() <= 0.01),
        },
        Row {
            name: format!(
                "requests given up (posts counted failed: {}, warn lines: {})",
                f.posts_failed, f.warn_lines
            ),
            figure: f.gave_up.to_string(),
            target: "0",
            verdict: verdict(f.gave_up == 0),
        },
    ];
    let mut out = markdown(&rows);
    out.push('\n');
    out.push_str(&check_line("rate limited", &f.posts));
    out.push('\n');
    out.push_str(&format!(
        "rate limited: {}\n",
        if pass { "PASS" } else { "MISS" }
    ));
    out
}

/// One line per run of `bench --sizes`: the scaling table, each target's verdict at the end
/// of its cell.
pub fn sizes_table(runs: &[Figures]) -> String {
    let v = |pass: bool| verdict(pass);
    let mut out = String::from(
        "| N | bridge req/s | bare loop req/s | bridge/bare (≤ 1.10×) | service CPU µs/request (bare loop; ≤ 1.15×) | service RSS with N open (peak; ≤ 64 MB) | idle RSS (≤ 15 MB) | start-up reconcile (CPU; ≤ 3 s) | resync CPU per run | load average before → after |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in runs {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.2}× {} | {:.0} ({:.0}) {:.2}× {} | {:.1} MB ({:.1}) {} | {:.1} MB {} | {:.2} s ({:.2} s) {} | {:.0} ms | {} |\n",
            f.requests,
            f.throughput_per_sec,
            f.bare_per_sec,
            f.bridge_over_bare,
            v(f.bridge_over_bare <= RATIO),
            f.cpu_us_bridge,
            f.cpu_us_bare,
            f.cpu_ratio(),
            v(f.cpu_ratio() <= CPU_RATIO),
            f.rss_open_mb,
            f.rss_peak_mb,
            v(f.rss_open_mb <= RSS_OPEN_MB),
            f.rss_idle_mb,
            v(f.rss_idle_mb <= RSS_IDLE_MB),
            f.reconcile_secs,
            f.reconcile_cpu_secs,
            v(f.reconcile_secs <= RECONCILE_SECS),
            f.resync_cpu_ms,
            f.load_average,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_figures_with_targets_and_verdicts() {
        let f = Figures {
            requests: 100,
            latency_samples: 10,
            latency_p99_ms: 12.5,
            throughput_per_sec: 2500.0,
            bridge_over_bare: 1.1,
            rss_idle_mb: 9.0,
            rss_open_mb: 70.0,
            reconcile_secs: 1.0,
            ..Figures::default()
        };
        let t = table(&f);
        let line = |needle: &str| t.lines().find(|l| l.contains(needle)).unwrap().to_string();
        assert!(line("latency p99").contains("12.50 ms"), "{t}");
        assert!(line("latency p99").contains("MISS"), "{t}");
        assert!(line("throughput, bridge").contains("PASS"), "{t}");
        assert!(line("open requests").contains("MISS"), "{t}");
        assert!(line("slash command").contains(" ms"), "{t}");
        assert!(f.correct());
    }

    #[test]
    fn the_sizes_table_has_a_line_per_run_with_verdicts() {
        let run = |requests, ratio| Figures {
            requests,
            bridge_over_bare: ratio,
            cpu_us_bridge: 110.0,
            cpu_us_bare: 100.0,
            rss_open_mb: 30.0,
            reconcile_secs: 1.0,
            ..Figures::default()
        };
        let t = sizes_table(&[run(1000, 1.3), run(100_000, 1.05)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[2].starts_with("| 1000 |") && lines[2].contains("1.30× MISS"),
            "{t}"
        );
        assert!(
            lines[3].contains("1.05× PASS") && lines[3].contains("1.10× PASS"),
            "{t}"
        );
    }

    #[test]
    fn a_duplicate_post_makes_the_run_incorrect() {
        let f = Figures {
            bridge_posts: PostCheck {
                duplicates: 1,
                ..PostCheck::default()
            },
            ..Figures::default()
        };
        assert!(!f.correct());
        assert!(table(&f).contains("1 duplicated"));
    }
}
