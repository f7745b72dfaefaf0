//! The service as its own process (the real binary with `start --config`), as in production:
//! wait for readiness, read its resident memory, scrape a metric, stop it with SIGTERM or
//! kill it with SIGKILL. Used by the benchmark and the multi-process tests.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {bin}: {source}")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the service exited during start-up ({0}); see its log")]
    Exited(ExitStatus),
    #[error("the service was not ready within {0:?}")]
    NotReady(Duration),
    #[error("the service did not stop within {0:?} of SIGTERM")]
    NoStop(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A free loopback port, for a child's `http.listen_addr` (the child binds it soon after;
/// nothing else on a test machine races for it in practice).
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

pub struct ServiceProcess {
    child: Child,
    pid: u32,
    http: SocketAddr,
    client: reqwest::Client,
}

impl ServiceProcess {
    /// Runs `bin start --config <config>` (plus `args`); its stdout and stderr go to `output`
    /// when given, else nowhere. The child is killed if this handle is dropped.
    pub fn spawn(
        bin: &Path,
        config: &Path,
        http: SocketAddr,
        args: &[&str],
        output: Option<&Path>,
    ) -> Result<Self, ProcessError> {
        Self::spawn_with_env(bin, config, http, args, &[], output)
    }

    /// [`ServiceProcess::spawn`] with extra environment variables (e.g. `RUST_LOG`).
    pub fn spawn_with_env(
        bin: &Path,
        config: &Path,
        http: SocketAddr,
        args: &[&str],
        envs: &[(&str, &str)],
        output: Option<&Path>,
    ) -> Result<Self, ProcessError> {
        let (stdout, stderr) = match output {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                (Stdio::from(f.try_clone()?), Stdio::from(f))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(bin)
            .arg("start")
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProcessError::Spawn {
                bin: bin.display().to_string(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            child,
            pid,
            http,
            client,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// Waits until `/readyz` answers 200 (the watch on Teleport is established).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), ProcessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("http://{}/readyz", self.http);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(ProcessError::Exited(status));
            }
            if let Ok(r) = self.client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProcessError::NotReady(timeout));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether the process has ended (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `VmRSS` from /proc/<pid>/status, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// CPU seconds the service has used so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(&self.pid.to_string())
    }

    /// `VmHWM` (peak resident memory) from /proc/<pid>/status, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// The value of an unlabelled sample (e.g. a histogram's `_count`) from `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .client
            .get(format!("http://{}/metrics", self.http))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metric_value(&text, name)
    }

    /// SIGTERM, then waits for the exit (the service drains within its grace period).
    pub async fn terminate(mut self, timeout: Duration) -> Result<ExitStatus, ProcessError> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // No signal API without `unsafe` or another crate: the `kill` utility sends it.
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(ProcessError::NoStop(timeout))
            }
        }
    }

    /// SIGKILL (`kill -9`): no drain, no clean-up, whatever was in flight is cut off.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// User plus system CPU time a process has used, from /proc/<pid>/stat (`"self"` for this
/// process). Clock ticks are taken as 100 a second, the value on every Linux build we run.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Finds `name value` in Prometheus text (a sample without labels).
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_unlabelled_sample_and_not_a_longer_name() {
        let text = "# HELP x_count c\nx_count_total 9\nx_count 42\nx_sum 1.5\n";
        assert_eq!(metric_value(text, "x_count"), Some(42.0));
        assert_eq!(metric_value(text, "x_sum"), Some(1.5));
        assert_eq!(metric_value(text, "y"), None);
    }

    #[test]
    fn reads_this_process_cpu_time() {
        let before = cpu_secs("self").unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(120) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_secs("self").unwrap() > before);
    }

    #[test]
    fn reads_this_process_resident_memory() {
        let kib = proc_status_kib(std::process::id(), "VmRSS:").unwrap();
        assert!(kib > 100, "{kib}");
    }
}
