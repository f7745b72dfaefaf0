//! The HTTP server: health, readiness and metrics endpoints, plus the Mattermost callback
//! routes that the review feature adds, behind one set of limits and tracing layers.

mod callbacks;
mod health;
mod observe;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::HeaderName;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

pub use callbacks::Callbacks;
pub use observe::HttpMetrics;

use crate::health::Readiness;
use crate::metrics::Metrics;

/// Mattermost callbacks and slash commands are a few KiB; anything bigger is not for us.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Mattermost gives integrations 30 s; we answer well before that or not at all.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct HttpState {
    pub readiness: Readiness,
    pub metrics: Metrics,
    http_metrics: HttpMetrics,
}

impl HttpState {
    /// Registers the HTTP metric families on `metrics`, once per service.
    pub fn new(readiness: Readiness, metrics: Metrics) -> Self {
        let http_metrics = HttpMetrics::new(&metrics);
        Self {
            readiness,
            metrics,
            http_metrics,
        }
    }
}

/// The whole router. `extra` carries routes added by other features (already given their
/// state); they share the limits and layers below.
pub fn router(state: HttpState, extra: Router) -> Router {
    let http_metrics = state.http_metrics.clone();
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
        .merge(extra)
        // Router::layer wraps every route, so the innermost layer comes first here.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            observe::observe,
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

#[cfg(test)]
mod tests;
