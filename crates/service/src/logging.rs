//! tracing setup: text or JSON, to stdout, stderr or a file, at the configured severity.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::{LogConfig, LogFormat, LogOutput};

/// Installs the global subscriber. `RUST_LOG`, when set, refines the filter (e.g. for
/// debugging one module); otherwise our crate logs at `severity` and dependencies at warn.
pub fn init(cfg: &LogConfig, force_debug: bool) -> anyhow::Result<()> {
    let level = if force_debug {
        tracing::Level::DEBUG
    } else {
        cfg.severity
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::new(format!(
            "warn,teleport_mattermost={}",
            level.as_str().to_lowercase()
        )),
    };
    let writer = match &cfg.output {
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
        LogOutput::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "opening log file {} (`log.output`): {e}; check the directory exists and is writable",
                        path.display()
                    )
                })?;
            BoxMakeWriter::new(Mutex::new(file))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    let result = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(
                matches!(cfg.output, LogOutput::Stdout | LogOutput::Stderr) && is_tty(&cfg.output),
            )
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    if force_debug {
        tracing::debug!("DEBUG logging enabled");
    }
    Ok(())
}

fn is_tty(output: &LogOutput) -> bool {
    use std::io::IsTerminal;
    match output {
        LogOutput::Stdout => std::io::stdout().is_terminal(),
        LogOutput::Stderr => std::io::stderr().is_terminal(),
        LogOutput::File(_) => false,
    }
}
