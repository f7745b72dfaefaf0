//! teleport-mattermost: Teleport Access Requests in Mattermost.
//!
//! # Layout
//! - [`cli`]: subcommands (`start`, `configure`, `version`, `check`).
//! - [`config`]: typed config from TOML + `TELEPORT_MATTERMOST_*` environment overrides.
//! - [`app`]: the startable, stoppable application; [`signals`]: SIGTERM/SIGINT/SIGHUP.
//! - [`http`]: axum router (health, readiness, metrics, Mattermost callbacks).
//! - [`metrics`]: the non-global Prometheus registry; [`logging`]: tracing setup.
//! - [`route`]: recipients (config, access monitoring rules, suggested reviewers).
//! - [`mattermost`]: REST v4 client (retries, typed errors, recipient cache) and post rendering.
//! - [`sim`]: simulators (a Mattermost REST server) for tests, the benchmark and `demo`.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod mattermost;
pub mod metrics;
pub mod route;
pub mod signals;
pub mod sim;
pub mod version;

/// Installs rustls' ring provider as the process default, once. Every TLS config in the
/// crate is built from this provider; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
