//! Per-request metrics and one access log line, labelled by the matched route (never the raw
//! path, which would let a scanner blow up label cardinality).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_http_requests_total",
                "HTTP requests served, by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("static metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "teleport_mattermost_http_request_duration_seconds",
                "HTTP request latency, by route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            &["route"],
        )
        .expect("static metric definition");
        Self {
            requests: metrics.register(&requests),
            duration: metrics.register(&duration),
        }
    }
}

pub async fn observe(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    let status = response.status();
    m.requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    m.duration
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(
        http.route = %route,
        http.method = %method,
        http.status = status.as_u16(),
        http.request_id = %request_id,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "HTTP request served"
    );
    response
}
