//! Process signals: SIGTERM/SIGINT cancel the shutdown token (a second SIGINT exits at once),
//! SIGHUP asks for a reload instead of killing the process (upstream's systemd unit sent
//! SIGHUP on `reload` and the Go plugin died of it).

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the rest of the service listens to.
#[derive(Clone)]
pub struct Signals {
    pub shutdown: CancellationToken,
    /// Incremented on every SIGHUP; the identity refresher re-reads its file when it changes.
    pub reload: watch::Receiver<u64>,
}

impl Signals {
    /// For tests and `demo`: no OS signals, just the token.
    pub fn manual(shutdown: CancellationToken) -> Self {
        let (_tx, reload) = watch::channel(0);
        Self { shutdown, reload }
    }
}

/// Installs the handlers. Must be called inside a Tokio runtime.
pub fn install() -> std::io::Result<Signals> {
    use tokio::signal::unix::{SignalKind, signal};
    let shutdown = CancellationToken::new();
    let (tx, reload) = watch::channel(0u64);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let token = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM received: shutting down gracefully");
                    token.cancel();
                }
                _ = int.recv() => {
                    if token.is_cancelled() {
                        tracing::warn!("second SIGINT received: exiting now");
                        std::process::exit(1);
                    }
                    tracing::info!("SIGINT received: shutting down gracefully (again to force)");
                    token.cancel();
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP received: reloading the Teleport identity");
                    tx.send_modify(|n| *n += 1);
                }
            }
        }
    });
    Ok(Signals { shutdown, reload })
}

/// The one deadline of a shutdown: `grace` after the shutdown request, the same instant for
/// every part that drains (the request queue, the HTTP connections), so that together they
/// never take longer than `grace`.
#[derive(Clone, Debug)]
pub struct Deadline {
    shutdown: CancellationToken,
    grace: std::time::Duration,
    at: std::sync::Arc<std::sync::OnceLock<tokio::time::Instant>>,
}

impl Deadline {
    pub fn new(shutdown: CancellationToken, grace: std::time::Duration) -> Self {
        Self {
            shutdown,
            grace,
            at: Default::default(),
        }
    }

    /// Waits for the shutdown request, then returns the deadline. The first caller to see
    /// the request fixes the instant; later callers get the same one.
    pub async fn reached(&self) -> tokio::time::Instant {
        self.shutdown.cancelled().await;
        *self
            .at
            .get_or_init(|| tokio::time::Instant::now() + self.grace)
    }

    pub fn grace(&self) -> std::time::Duration {
        self.grace
    }
}
