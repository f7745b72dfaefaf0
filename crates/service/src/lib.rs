//! teleport-mattermost, the service: Teleport Access Requests in Mattermost. The binary
//! package (`main`, `cli`, `demo`, `bench`) and the simulator crate sit beside it; this
//! library never depends on the simulators.
//!
//! # Layout
//! - [`check`]: the live self-test behind `teleport-mattermost check`.
//! - [`config`]: typed config from TOML + `TELEPORT_MATTERMOST_*` environment overrides.
//! - [`app`]: the startable, stoppable application; [`signals`]: SIGTERM/SIGINT/SIGHUP.
//! - [`http`]: axum router (health, readiness, metrics, Mattermost callbacks);
//!   [`health`]: the readiness flag the bridge sets and `/readyz` reports.
//! - [`sync`]: the one lock-poisoning policy.
//! - [`metrics`]: the non-global Prometheus registry; [`logging`]: tracing setup.
//! - [`route`]: recipients (config, access monitoring rules, suggested reviewers).
//! - [`bridge`]: events → posts; [`retry`]: bounded jittered backoff.
//! - [`review`]: buttons, dialogs and `/teleport`, submitted on behalf of the reviewer.
//! - [`signing`]: HMAC button contexts and dialog states (the bridge signs, review verifies).
//! - [`teleport`]: Teleport Auth client (identity files, mTLS, typed gRPC calls, watch events).
//! - [`access`]: access-request domain types and the plugin data's encoding (written with
//!   compare-and-swap by the bridge's processor through its one `Store` port).
//! - [`access_lists`]: access list review reminders to the lists' owners (plugin data on
//!   the list, written through the same `Store` port).
//! - [`remind`]: reminders, escalation and requester notices for pending requests (sent
//!   by the bridge's processor, recorded in the request's plugin data).
//! - [`mattermost`]: REST v4 client (retries, typed errors, recipient cache) and post rendering.

pub mod access;
pub mod access_lists;
pub mod app;
pub mod bridge;
pub mod check;
pub mod config;
pub mod health;
pub mod http;
pub mod logging;
pub mod mattermost;
pub mod metrics;
pub mod remind;
pub mod retry;
pub mod review;
pub mod route;
pub mod signals;
pub mod signing;
pub mod sync;
pub mod teleport;
pub mod version;

/// Installs rustls' ring provider as the process default, once. Every TLS config in the
/// crate is built from this provider; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
