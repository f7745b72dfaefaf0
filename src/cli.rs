//! Command line: upstream's `start`, `configure` and `version`, plus `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};

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
    /// Validate the config and report every problem found; exit 1 if there is any.
    Check {
        /// Path to the TOML config file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
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
            println!("{}", crate::version::line());
            ExitCode::SUCCESS
        }
        Command::Check { config } => check(&config),
        Command::Start { config, debug } => start(&config, debug),
        Command::Bench(args) => crate::bench::run(args),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path, std::env::vars()) {
        Ok(cfg) => {
            println!("✔ config {} is valid", path.display());
            for w in &cfg.warnings {
                println!("! {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "✘ config {} has {} problem(s):",
                path.display(),
                e.problems.len()
            );
            for p in &e.problems {
                println!("✘ {p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn start(path: &std::path::Path, debug: bool) -> ExitCode {
    let cfg = match Config::load(path, std::env::vars()) {
        Ok(c) => c,
        Err(e) => return fatal(&e),
    };
    if let Err(e) = crate::logging::init(&cfg.log, debug) {
        return fatal(&*e);
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    let result = runtime.block_on(async move {
        tracing::info!(
            version = crate::version::VERSION,
            git_ref = crate::version::GIT_REF.unwrap_or(""),
            "Starting Teleport Access Mattermost Plugin"
        );
        let signals = crate::signals::install()?;
        let app = crate::app::Application::build(cfg, crate::app::Options::from_env()).await?;
        app.run_until_stopped(signals).await
    });
    // Do not wait for stray blocking tasks: the grace period already bounded shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Terminating with fatal error");
            fatal(&*e)
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
