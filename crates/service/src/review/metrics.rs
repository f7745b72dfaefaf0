//! Metrics of in-chat review: reviews attempted from Mattermost by source and outcome, and
//! callbacks refused before any work (bad signature, token or source), for alerting on abuse.

use prometheus::{IntCounterVec, Opts};

use crate::logging::{Throttle, Verdict};
use crate::metrics::Metrics;

/// Where a review came from (`source` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Button,
    Dialog,
    Command,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Button => "button",
            Source::Dialog => "dialog",
            Source::Command => "command",
        }
    }
}

/// Refused callbacks are logged once per route and reason, then summarised this often: an
/// outsider can send them at will, and each must not cost a log line.
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub struct ReviewMetrics {
    reviews: IntCounterVec,
    refused: IntCounterVec,
    refusal_log: std::sync::Arc<Throttle>,
}

impl ReviewMetrics {
    /// Registers the families on `metrics` (once per service).
    pub fn new(metrics: &Metrics) -> Self {
        let reviews = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_reviews_total",
                "Reviews attempted from Mattermost, by source (button, dialog, command) and outcome.",
            ),
            &["source", "outcome"],
        )
        .expect("static metric definition");
        let refused = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_callbacks_refused_total",
                "Mattermost callbacks refused before any work, by route and reason.",
            ),
            &["route", "reason"],
        )
        .expect("static metric definition");
        Self {
            reviews: metrics.register(&reviews),
            refused: metrics.register(&refused),
            refusal_log: std::sync::Arc::new(Throttle::new(REFUSAL_LOG_INTERVAL)),
        }
    }

    pub fn review(&self, source: Source, outcome: &str) {
        self.reviews
            .with_label_values(&[source.as_str(), outcome])
            .inc();
    }

    /// Counts a refused callback; logs the first per route and reason, then one summary
    /// per interval.
    pub fn refused(&self, route: &str, reason: &str) {
        self.refused.with_label_values(&[route, reason]).inc();
        match self.refusal_log.note((route, reason)) {
            Verdict::First => tracing::warn!(
                http.route = route,
                reason,
                "refused a Mattermost callback: {}; further refusals of this kind are counted in teleport_mattermost_callbacks_refused_total and summarised every {}s",
                why(reason),
                self.refusal_log.interval().as_secs()
            ),
            Verdict::Summary(n) => tracing::warn!(
                http.route = route,
                reason,
                count = n,
                "refused {n} more Mattermost callbacks ({}) in the last {}s or so",
                why(reason),
                self.refusal_log.interval().as_secs()
            ),
            Verdict::Quiet => {}
        }
    }
}

/// What a refusal reason means, for the log.
fn why(reason: &str) -> &'static str {
    match reason {
        "source" => "the peer is outside `http.callback_allowed_sources`",
        "content_type" => "the content type is not the one Mattermost sends",
        "not_ready" => "the service is still starting",
        "bad_token" => "wrong slash command token",
        "other_user" => "a dialog state replayed by another user",
        "expired" => "an expired signature",
        "foreign_post" => "a click on a post that is not a root post of its request",
        _ => "bad or missing signature",
    }
}
