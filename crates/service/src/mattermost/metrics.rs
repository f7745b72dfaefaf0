//! Metric families of the Mattermost client: call latency by logical call and outcome,
//! retries by reason, throttling by the rate limit (apart from failures), and recipient-cache
//! hits, registered on the service's registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::metrics::Metrics;

#[derive(Clone)]
pub(crate) struct ClientMetrics {
    duration: HistogramVec,
    retries: IntCounterVec,
    throttled: IntCounterVec,
    cache: IntCounterVec,
}

impl ClientMetrics {
    pub(crate) fn new(metrics: &Metrics) -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "teleport_mattermost_mattermost_call_duration_seconds",
                "Latency of one Mattermost API request (each attempt), by logical call and outcome.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["call", "outcome"],
        )
        .expect("static metric definition");
        let retries = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_mattermost_retries_total",
                "Mattermost API requests retried, by logical call and reason.",
            ),
            &["call", "reason"],
        )
        .expect("static metric definition");
        let throttled = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_mattermost_throttled_total",
                "Mattermost calls held back by the rate limit, by logical call and outcome: queued (waited for their turn), deferred (handed back to come again), refused (a 429 answer, waited out). None of these is a failure.",
            ),
            &["call", "outcome"],
        )
        .expect("static metric definition");
        let cache = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_mattermost_cache_lookups_total",
                "Lookups in the client's recipient and user caches, by cache and result (hit or miss).",
            ),
            &["cache", "result"],
        )
        .expect("static metric definition");
        Self {
            duration: metrics.register(&duration),
            retries: metrics.register(&retries),
            throttled: metrics.register(&throttled),
            cache: metrics.register(&cache),
        }
    }

    pub(crate) fn observe(&self, call: &str, outcome: &str, seconds: f64) {
        self.duration
            .with_label_values(&[call, outcome])
            .observe(seconds);
    }

    pub(crate) fn retry(&self, call: &str, reason: &str) {
        self.retries.with_label_values(&[call, reason]).inc();
    }

    pub(crate) fn throttled(&self, call: &str, outcome: &str) {
        self.throttled.with_label_values(&[call, outcome]).inc();
    }

    pub(crate) fn cache(&self, cache: &str, hit: bool) {
        self.cache
            .with_label_values(&[cache, if hit { "hit" } else { "miss" }])
            .inc();
    }
}
