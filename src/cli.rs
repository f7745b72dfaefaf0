//! Command line: upstream's `start`, `configure` and `version`, plus `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use teleport_mattermost::config::{self, Config};

#[derive(Debug, Parser)]
#[command(
    name = "teleport-mattermost",
    about = "Teleport plugin for access requests approval via Mattermost.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Start {
        /// Path to the TOML config file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Log at debug level, whatever the config says.
        #[arg(short, long)]
        debug: bool,
    },
    /// Print a complete, commented example config to stdout.
    Configure,
    /// Print the version.
    Version,
    /// Run the service against the built-in Teleport and Mattermost simulators and play a
    /// scripted story: request, posts, reviews from Mattermost, approval, expiry, metrics.
    Demo {
        /// Leave everything running afterwards and print the addresses and the config.
        #[arg(long)]
        keep_running: bool,
    },
    /// Validate the config, then test Teleport, Mattermost and every recipient live;
    /// one line per check with the fix for each failure; exit 0 only if all pass.
    Check {
        /// Path to the TOML config file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Print the results as JSON (for machines).
        #[arg(long)]
        json: bool,
        /// Only what needs no network: the config and the identity files.
        #[arg(long)]
        offline: bool,
    },
    /// Measure latency, throughput, memory and restart reconcile against the simulators.
    Bench(crate::bench::BenchArgs),
}

/// Parses the arguments; exit code 1 on a usage error (as upstream), 0 for `--help`.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        ExitCode::from(code)
    })
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Configure => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", teleport_mattermost::version::line());
            ExitCode::SUCCESS
        }
        Command::Check {
            config,
            json,
            offline,
        } => check(&config, json, offline),
        Command::Demo { keep_running } => demo(keep_running),
        Command::Start { config, debug } => start(&config, debug),
        Command::Bench(args) => crate::bench::run(args),
    }
}

fn check(path: &std::path::Path, json: bool, offline: bool) -> ExitCode {
    let cfg = match Config::load(path, std::env::vars()) {
        Ok(cfg) => cfg,
        Err(e) => {
            if json {
                let lines: Vec<_> = e
                    .problems
                    .iter()
                    .map(|p| serde_json::json!({"status": "fail", "check": "config", "detail": p}))
                    .collect();
                println!("{}", serde_json::json!({ "ok": false, "lines": lines }));
            } else {
                println!(
                    "✘ config {} has {} problem(s):",
                    path.display(),
                    e.problems.len()
                );
                for p in &e.problems {
                    println!("✘ {p}");
                }
            }
            return ExitCode::FAILURE;
        }
    };
    if !json {
        println!("✔ config {} is valid", path.display());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    let report = if offline {
        teleport_mattermost::check::run_offline(&cfg)
    } else {
        runtime.block_on(teleport_mattermost::check::run(&cfg))
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": report.ok(), "lines": report.lines })
        );
    } else {
        print!("{}", report.text());
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn demo(keep_running: bool) -> ExitCode {
    // Only warnings from the service: the transcript on stdout is the point.
    let log = teleport_mattermost::config::LogConfig {
        output: teleport_mattermost::config::LogOutput::Stderr,
        severity: tracing::Level::WARN,
        format: teleport_mattermost::config::LogFormat::Text,
    };
    if let Err(e) = teleport_mattermost::logging::init(&log, false) {
        return fatal(&*e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    match runtime.block_on(crate::demo::run(keep_running)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("teleport-mattermost demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(path: &std::path::Path, debug: bool) -> ExitCode {
    let cfg = match Config::load(path, std::env::vars()) {
        Ok(c) => c,
        Err(e) => return fatal(&e),
    };
    if let Err(e) = teleport_mattermost::logging::init(&cfg.log, debug) {
        return fatal(&*e);
    }
    for w in cfg.warnings.iter().chain(&cfg.skipped_recipients) {
        tracing::warn!("{w}");
    }
    let addr_key = cfg.teleport_addr_key;
    let logs_to_stderr = cfg.log.output == teleport_mattermost::config::LogOutput::Stderr;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    let result = runtime.block_on(async move {
        tracing::info!(
            version = teleport_mattermost::version::VERSION,
            git_ref = teleport_mattermost::version::GIT_REF.unwrap_or(""),
            "Starting Teleport Access Mattermost Plugin"
        );
        let signals = teleport_mattermost::signals::install()?;
        let app = teleport_mattermost::app::Application::build(
            cfg,
            teleport_mattermost::app::Options::from_env(),
        )
        .await?;
        app.run_until_stopped(signals).await
    });
    // Do not wait for stray blocking tasks: the grace period already bounded shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages deep in the service say `teleport.addr`; name the key the operator wrote.
            let msg = format!("{e:#}").replace("teleport.addr", addr_key);
            tracing::error!("Terminating with fatal error: {msg}");
            // Printed once: the log line is on stderr already unless the log goes elsewhere.
            if !logs_to_stderr {
                eprintln!("teleport-mattermost: {msg}");
            }
            ExitCode::FAILURE
        }
    }
}

fn fatal(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("teleport-mattermost: {msg}");
    ExitCode::FAILURE
}
