//! `teleport-mattermost bench`: the service (this very binary, `start --config`, in its own
//! process) against the simulators (in the bench process) on loopback. One run measures
//! event→post latency, throughput and its ratio to a bare client loop, resident memory and
//! the start-up reconcile, checks every post, and prints a table (or JSON).

pub mod bare;
pub mod measure;
mod phases;
pub use teleport_mattermost_sim::process;
pub mod report;

use std::process::ExitCode;
use std::time::Duration;

/// Used by `--requests` unless given.
pub const DEFAULT_REQUESTS: usize = 10_000;

/// `teleport-mattermost bench [--requests N | --sizes N,N,…] [--latency-samples N] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Requests in the throughput burst (open during the memory and reconcile rows).
    #[arg(long, default_value_t = DEFAULT_REQUESTS)]
    pub requests: usize,
    /// Requests measured one at a time for the latency row.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
    /// Run the whole benchmark once per size (e.g. `--sizes 1000,10000,100000`, overriding
    /// `--requests`), then print one line per size: how the cost scales.
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only the rate-limited row: `--rate-limited-requests` requests against Mattermost's
    /// default rate limit (10 requests/s, burst 100). Takes minutes (the limit's floor).
    #[arg(long)]
    pub rate_limited: bool,
    /// Requests in the rate-limited burst.
    #[arg(long, default_value_t = 1000)]
    pub rate_limited_requests: usize,
    /// Internal: run only the bare client loop from this directory (a child of `bench`).
    #[arg(long, hide = true)]
    pub bare_worker: Option<std::path::PathBuf>,
}

/// Runs the benchmark; exit 1 on a crash or a correctness error, never on a missed target.
pub fn run(args: BenchArgs) -> ExitCode {
    if let Some(dir) = &args.bare_worker {
        return bare::worker_main(dir);
    }
    teleport_mattermost::install_crypto_provider();
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
    if args.rate_limited {
        let result = runtime.block_on(phases::rate_limited(args.rate_limited_requests.max(1)));
        runtime.shutdown_timeout(Duration::from_secs(1));
        return match result {
            Ok(f) if args.json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&f).unwrap_or_else(|e| e.to_string())
                );
                exit_for(f.correct())
            }
            Ok(f) => {
                println!(
                    "{}",
                    header_line(
                        &format!("{} requests against the rate limit", f.requests),
                        &load_average()
                    )
                );
                print!("{}", report::rate_limited_table(&f));
                exit_for(f.correct())
            }
            Err(e) => {
                eprintln!("bench failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let sizes = if args.sizes.is_empty() {
        vec![args.requests]
    } else {
        args.sizes.clone()
    };
    let mut runs = Vec::new();
    for n in sizes {
        let args = BenchArgs {
            requests: n,
            ..args.clone()
        };
        let load_before = load_average();
        progress(&format!("{n} requests (load average {load_before})"));
        match runtime.block_on(phases::bench(&args)) {
            Ok(mut f) => {
                f.load_average = format!("{load_before} → {}", load_average());
                if !args.json {
                    println!("{}", header(&args, &load_before));
                    print!("{}", report::table(&f));
                }
                runs.push(f);
            }
            Err(e) => {
                eprintln!("bench failed: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    if args.json {
        let json = if args.sizes.is_empty() {
            serde_json::to_string_pretty(&runs[0])
        } else {
            serde_json::to_string_pretty(&runs)
        };
        println!("{}", json.unwrap_or_else(|e| e.to_string()));
    } else if !args.sizes.is_empty() {
        println!("{}", report::sizes_table(&runs));
    }
    exit_for(runs.iter().all(report::Figures::correct))
}

/// The 1, 5 and 15 minute load averages, so figures from a busy machine read as such.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Exit 1 only on a correctness error (never on a missed target).
fn exit_for(correct: bool) -> ExitCode {
    if correct {
        ExitCode::SUCCESS
    } else {
        eprintln!("bench: correctness check failed (see the lines under the table)");
        ExitCode::FAILURE
    }
}

pub(crate) fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

fn header(args: &BenchArgs, load_before: &str) -> String {
    header_line(
        &format!(
            "{} requests (2 recipients each: a channel and the suggested reviewer's DM), {} latency samples",
            args.requests, args.latency_samples
        ),
        load_before,
    )
}

fn header_line(what: &str, load_before: &str) -> String {
    let build = if cfg!(debug_assertions) {
        "debug build: figures are not representative, use --release"
    } else {
        "release build"
    };
    format!(
        "teleport-mattermost bench: {what}; {build}\nmachine: {}; load average (1, 5, 15 min) {} before the run, {} after\nservice: this binary (`start --config`) in its own process; Teleport and Mattermost simulators in the bench process; loopback\n",
        machine(),
        load_before,
        load_average()
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
