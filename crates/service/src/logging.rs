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

/// Bounds the log lines of something an outsider can repeat at will (refused callbacks): the
/// first occurrence per key is logged, then at most one summary per interval with how many
/// were not. Counting every occurrence is the metrics' job.
#[derive(Debug)]
pub struct Throttle {
    interval: std::time::Duration,
    /// Per key; a handful of routes and reasons, so a list searched without allocating.
    windows: Mutex<Vec<((String, String), Window)>>,
}

#[derive(Debug)]
struct Window {
    since: std::time::Instant,
    quiet: u64,
}

/// What to log for one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first of its kind: log it in full.
    First,
    /// The interval is over: log one line for these occurrences (this one included).
    Summary(u64),
    /// Counted for the next summary.
    Quiet,
}

impl Throttle {
    pub fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            windows: Mutex::new(Vec::new()),
        }
    }

    pub fn interval(&self) -> std::time::Duration {
        self.interval
    }

    /// [`Throttle::note`] for a line that carries its own count: how many occurrences the
    /// line due now stands for (1 for the first), or `None` while quiet.
    pub fn due(&self, key: (&str, &str)) -> Option<u64> {
        match self.note(key) {
            Verdict::First => Some(1),
            Verdict::Summary(n) => Some(n),
            Verdict::Quiet => None,
        }
    }

    pub fn note(&self, key: (&str, &str)) -> Verdict {
        self.note_at(key, std::time::Instant::now())
    }

    pub(crate) fn note_at(&self, (a, b): (&str, &str), now: std::time::Instant) -> Verdict {
        let mut windows = crate::sync::lock(&self.windows);
        let Some((_, w)) = windows.iter_mut().find(|((x, y), _)| x == a && y == b) else {
            let window = Window {
                since: now,
                quiet: 0,
            };
            windows.push(((a.into(), b.into()), window));
            return Verdict::First;
        };
        w.quiet += 1;
        if now.duration_since(w.since) < self.interval {
            return Verdict::Quiet;
        }
        let n = std::mem::take(&mut w.quiet);
        w.since = now;
        Verdict::Summary(n)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_flood_logs_the_first_then_one_summary_per_interval_and_key() {
        let t = Throttle::new(Duration::from_secs(60));
        let start = Instant::now();
        let key = ("action", "bad_signature");
        assert_eq!(t.note_at(key, start), Verdict::First);
        for i in 1..1000 {
            let at = start + Duration::from_millis(i);
            assert_eq!(t.note_at(key, at), Verdict::Quiet);
        }
        // Another key has its own first line.
        assert_eq!(
            t.note_at(("dialog", "bad_signature"), start),
            Verdict::First
        );
        let later = start + Duration::from_secs(61);
        assert_eq!(t.note_at(key, later), Verdict::Summary(1000));
        assert_eq!(t.note_at(key, later), Verdict::Quiet);
        assert_eq!(
            t.note_at(key, later + Duration::from_secs(60)),
            Verdict::Summary(2)
        );
    }
}
