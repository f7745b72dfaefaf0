//! The application: built from a `Config`, it binds its listener, then runs until the
//! shutdown token is cancelled or a fatal error stops it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, HttpState, Readiness};
use crate::metrics::Metrics;
use crate::signals::Signals;

/// How long in-flight work may take after a shutdown request (upstream's value).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

pub struct Application {
    #[allow(dead_code)]
    config: Config,
    listener: TcpListener,
    state: HttpState,
}

impl Application {
    /// Binds the HTTP listener; nothing talks to Teleport or Mattermost yet.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http.listen_addr)
            .await
            .with_context(|| {
                format!(
                    "binding the HTTP listener on {} (`http.listen_addr`)",
                    config.http.listen_addr
                )
            })?;
        let state = HttpState::new(Readiness::default(), Metrics::new());
        Ok(Self {
            config,
            listener,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn readiness(&self) -> Readiness {
        self.state.readiness.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.state.metrics.clone()
    }

    /// Serves until `signals.shutdown` is cancelled, then drains within `SHUTDOWN_GRACE`.
    pub async fn run_until_stopped(self, signals: Signals) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let router = http::router(self.state.clone(), Router::new());
        let token = signals.shutdown.clone();
        tracing::info!(http.addr = %addr, "HTTP server listening");
        let server = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await });
        let server = tokio::spawn(async move { server.await });
        signals.shutdown.cancelled().await;
        self.state.readiness.set(false);
        match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
            Ok(Ok(Ok(()))) => {
                tracing::info!("Successfully shut down");
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(e).context("HTTP server failed"),
            Ok(Err(e)) => Err(e).context("HTTP server task panicked"),
            Err(_) => anyhow::bail!(
                "shutdown took longer than {}s; stopping anyway",
                SHUTDOWN_GRACE.as_secs()
            ),
        }
    }
}
