//! The bridge's metric families.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct BridgeMetrics {
    pub events: IntCounterVec,
    pub sent: IntCounterVec,
    pub updates: IntCounterVec,
    pub adopted: IntCounterVec,
    pub owed: IntCounterVec,
    pub token_rejected: IntGauge,
    pub cas_conflicts: IntCounter,
    pub event_seconds: Histogram,
    pub watch_reconnects: IntCounter,
    pub watch_up: IntGauge,
    pub rules: IntGauge,
    pub reminders: IntCounterVec,
    pub reminders_scheduled: IntGauge,
    pub catch_ups: IntCounter,
    pub catch_up_queued: IntGauge,
    pub catch_up_unchanged: IntGauge,
}

impl BridgeMetrics {
    pub fn new(m: &Metrics) -> Self {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            m.register(&IntCounterVec::new(Opts::new(name, help), labels).expect("static metric"))
        };
        Self {
            events: counter_vec(
                "teleport_mattermost_events_total",
                "Access request events seen, by kind (put/delete) and request state.",
                &["op", "state"],
            ),
            sent: counter_vec(
                "teleport_mattermost_posts_total",
                "Mattermost posts created, by kind (root, reply, requester) and outcome.",
                &["kind", "outcome"],
            ),
            updates: counter_vec(
                "teleport_mattermost_post_updates_total",
                "Mattermost root posts updated in place, by outcome.",
                &["outcome"],
            ),
            adopted: counter_vec(
                "teleport_mattermost_posts_adopted_total",
                "Posts an interrupted replica made but never recorded, found by their marker and adopted instead of posted again, by kind (root, reply, requester).",
                &["kind"],
            ),
            owed: counter_vec(
                "teleport_mattermost_recipients_owed_total",
                "Times a recipient was left without its root post after an attempt (it stays owed and is posted by a later attempt, event or resync), by reason: unauthorized (401), refused (403, 404, 400), temporary.",
                &["reason"],
            ),
            token_rejected: m.register(
                &IntGauge::new(
                    "teleport_mattermost_mattermost_token_rejected",
                    "1 while Mattermost refuses the bot token (401) on the bridge's calls; 0 once a call succeeds.",
                )
                .expect("static metric"),
            ),
            cas_conflicts: m.register(
                &IntCounter::new(
                    "teleport_mattermost_cas_conflicts_total",
                    "Plugin data compare-and-swap conflicts (another replica wrote first).",
                )
                .expect("static metric"),
            ),
            event_seconds: m.register(
                &Histogram::with_opts(
                    HistogramOpts::new(
                        "teleport_mattermost_event_duration_seconds",
                        "Time to process one access request event, retries included.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
                    ]),
                )
                .expect("static metric"),
            ),
            watch_reconnects: m.register(
                &IntCounter::new(
                    "teleport_mattermost_watch_reconnects_total",
                    "Times the watch on Teleport was re-established after it ended.",
                )
                .expect("static metric"),
            ),
            watch_up: m.register(
                &IntGauge::new(
                    "teleport_mattermost_watch_up",
                    "1 while the watch on Teleport is established.",
                )
                .expect("static metric"),
            ),
            rules: m.register(
                &IntGauge::new(
                    "teleport_mattermost_access_monitoring_rules",
                    "Access monitoring rules currently routing requests to Mattermost.",
                )
                .expect("static metric"),
            ),
            reminders: counter_vec(
                "teleport_mattermost_reminders_total",
                "Reminders, escalations and requester expiry notices, by kind (reminder, escalation, expiry_notice) and outcome (sent, failed, skipped).",
                &["kind", "outcome"],
            ),
            reminders_scheduled: m.register(
                &IntGauge::new(
                    "teleport_mattermost_reminders_scheduled",
                    "Requests waiting on the reminder timer for their next notice.",
                )
                .expect("static metric"),
            ),
            catch_ups: m.register(
                &IntCounter::new(
                    "teleport_mattermost_catch_ups_total",
                    "Catch-ups (start-up, after a reconnect, periodic resync) that listed every request.",
                )
                .expect("static metric"),
            ),
            catch_up_queued: m.register(
                &IntGauge::new(
                    "teleport_mattermost_catch_up_queued",
                    "Requests the last catch-up queued for reconciliation (the others were already current).",
                )
                .expect("static metric"),
            ),
            catch_up_unchanged: m.register(
                &IntGauge::new(
                    "teleport_mattermost_catch_up_unchanged",
                    "Requests the last catch-up skipped undecoded: what its decision reads of them and of their plugin data was as an earlier catch-up found it, current.",
                )
                .expect("static metric"),
            ),
        }
    }

    pub fn reminded(&self, kind: &str, outcome: &str) {
        self.reminders.with_label_values(&[kind, outcome]).inc();
    }

    pub fn sent(&self, kind: &str, ok: bool) {
        self.sent
            .with_label_values(&[kind, if ok { "ok" } else { "error" }])
            .inc();
    }

    pub fn updated(&self, ok: bool) {
        self.updates
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }
}
