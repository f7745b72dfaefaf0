//! Metrics of in-chat review: reviews attempted from Mattermost by source and outcome, and
//! callbacks refused before any work (bad signature, token or source), for alerting on abuse.

use prometheus::{IntCounterVec, Opts};

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

#[derive(Clone)]
pub struct ReviewMetrics {
    reviews: IntCounterVec,
    refused: IntCounterVec,
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
        }
    }

    pub fn review(&self, source: Source, outcome: &str) {
        self.reviews
            .with_label_values(&[source.as_str(), outcome])
            .inc();
    }

    pub fn refused(&self, route: &str, reason: &str) {
        self.refused.with_label_values(&[route, reason]).inc();
    }
}
