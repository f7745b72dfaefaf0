//! Watches Teleport for access requests and access monitoring rules, feeds request events to
//! the work queue, keeps the rule cache current, and catches up after every (re)connect by
//! listing requests (Teleport replays nothing after INIT). Readiness follows the watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::metrics::BridgeMetrics;
use super::processor::settled;
use super::queue::KeyedQueue;
use super::unchanged::{self, Unchanged};
use super::work::Work;
use crate::access::{AccessMonitoringRule, PluginData, RawData, RequestState, Resolution};
use crate::health::Readiness;
use crate::retry::Backoff;
use crate::route::{PLUGIN_NAME, Routing, RuleSpec};
use crate::teleport::client::{Encoded, RequestFilter};
use crate::teleport::events::{WatchEvent, WatchRequest};
use crate::teleport::{TeleportClient, TeleportError};

/// Upstream waits this long for the INIT event before calling the watch broken.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Reconnect backoff bounds (upstream's watcher job values).
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(20), Duration::from_secs(5));
/// A watch that lasted this long resets the reconnect backoff.
const STABLE: Duration = Duration::from_secs(30);
/// How long before a lost watch was noticed it may already have stopped delivering events
/// (a stalled connection), plus clock skew with Teleport.
const UNNOTICED: Duration = Duration::from_secs(60);

const KIND_REQUEST: &str = "access_request";
const KIND_RULE: &str = "access_monitoring_rule";

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "Teleport refused the watch: {0}. Give the plugin's role `read` and `list` on `access_request` (rules: resources [access_request], verbs [list, read])"
    )]
    PermissionDenied(String),
    #[error(
        "failed to initialize watcher for all the required resources: Teleport did not confirm `access_request`"
    )]
    KindNotConfirmed,
    #[error("the watch on Teleport ended and TELEPORT_PLUGIN_FAIL_FAST is set: {0}")]
    FailFast(String),
    #[error("the watch on Teleport failed: {0}")]
    Other(String),
}

pub struct Watcher {
    pub client: TeleportClient,
    pub queue: KeyedQueue<String, Work>,
    pub routing: Arc<Routing>,
    pub readiness: Readiness,
    pub metrics: BridgeMetrics,
    /// `TELEPORT_PLUGIN_FAIL_FAST=true`: a lost watch ends the process (Kubernetes restarts it).
    pub fail_fast: bool,
    /// How often the catch-up runs again while the watch is up.
    pub resync: Duration,
    /// `[reminders]`: every request seen is scheduled for its next notice.
    pub reminders: Option<Arc<crate::remind::Scheduler>>,
    /// What the last catch-up found settled, so the next one skips what did not change.
    pub unchanged: Unchanged,
}

impl Watcher {
    /// Runs until `shutdown`; returns an error only for what retrying cannot fix.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), WatchError> {
        let mut attempt = 0u32;
        let mut gap = Gap::default();
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                r = self.session(&shutdown, &mut gap) => r,
                _ = shutdown.cancelled() => Ok(()),
            };
            if gap.watched {
                gap.since
                    .get_or_insert_with(|| OffsetDateTime::now_utc() - UNNOTICED);
            }
            self.readiness.set(false);
            self.metrics.watch_up.set(0);
            let err = match result {
                Ok(()) if shutdown.is_cancelled() => return Ok(()),
                Ok(()) => End::Teleport(TeleportError::ConnectionProblem(
                    "the watch stream ended".into(),
                )),
                Err(e) => e,
            };
            let err = match err {
                End::Fatal(e) => return Err(e),
                // Without `read` on any kind Teleport answers BadParameter "none of the
                // requested kinds can be watched": the same fix as a plain refusal.
                End::Teleport(TeleportError::PermissionDenied(m))
                | End::Teleport(TeleportError::BadParameter(m)) => {
                    return Err(WatchError::PermissionDenied(m));
                }
                End::Teleport(e) if !e.is_transient() => {
                    return Err(WatchError::Other(e.to_string()));
                }
                End::Teleport(e) => e,
            };
            if self.fail_fast {
                return Err(WatchError::FailFast(err.to_string()));
            }
            if started.elapsed() > STABLE {
                attempt = 0;
            }
            attempt += 1;
            let wait = RECONNECT.delay(attempt);
            self.metrics.watch_reconnects.inc();
            tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "watch on Teleport lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    async fn session(&self, shutdown: &CancellationToken, gap: &mut Gap) -> Result<(), End> {
        let mut stream = self.client.watch(WatchRequest::plugin()).await?;
        let first = tokio::time::timeout(INIT_TIMEOUT, stream.next())
            .await
            .map_err(|_| {
                TeleportError::ConnectionProblem(format!(
                    "no INIT event within {}s",
                    INIT_TIMEOUT.as_secs()
                ))
            })?;
        let kinds = match first {
            Some(Ok(WatchEvent::Init { confirmed_kinds })) => {
                tracing::debug!("request watcher connected");
                confirmed_kinds
            }
            Some(Ok(other)) => {
                return Err(TeleportError::ConnectionProblem(format!(
                    "expected INIT as the first event, got {other:?}"
                ))
                .into());
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(
                    TeleportError::ConnectionProblem("watch ended before INIT".into()).into(),
                );
            }
        };
        // Very old servers confirm nothing explicitly: assume what we asked for.
        let confirmed = |k: &str| kinds.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
        if !confirmed(KIND_REQUEST) {
            return Err(End::Fatal(WatchError::KindNotConfirmed));
        }
        if confirmed(KIND_RULE) {
            let rules = self
                .client
                .list_access_monitoring_rules(PLUGIN_NAME)
                .await?;
            self.routing
                .rules
                .replace_all(rules.into_iter().map(rule_spec));
            tracing::info!(
                rules = self.routing.rules.len(),
                "access monitoring rules loaded"
            );
        } else {
            self.routing.rules.replace_all([]);
            tracing::info!(
                "access monitoring rules are off: the plugin's role cannot read access_monitoring_rule"
            );
        }
        self.metrics.rules.set(self.routing.rules.len() as i64);
        self.readiness.set(true);
        self.metrics.watch_up.set(1);
        tracing::info!("Plugin is ready");
        gap.watched = true;
        let catch_up = self.catch_up(shutdown.child_token(), gap.since);
        tokio::pin!(catch_up);
        let mut catching_up = true;
        let mut resync =
            tokio::time::interval_at(tokio::time::Instant::now() + self.resync, self.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                covered = &mut catch_up, if catching_up => {
                    catching_up = false;
                    if covered {
                        gap.since = None;
                    }
                }
                _ = resync.tick(), if !catching_up => {
                    tracing::debug!("periodic resync: reconciling every request");
                    catch_up.set(self.catch_up(shutdown.child_token(), gap.since));
                    catching_up = true;
                }
                ev = stream.next() => match ev {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(ev)) => self.dispatch(ev),
                },
            }
        }
    }

    fn dispatch(&self, ev: WatchEvent) {
        match ev {
            WatchEvent::RequestPut(r) => {
                self.metrics
                    .events
                    .with_label_values(&["put", r.state.as_str()])
                    .inc();
                if !matches!(r.state, RequestState::Pending) && !r.state.is_resolved() {
                    tracing::warn!(request_id = %r.id, request_state = r.state.as_str(), "Unknown request state");
                    return;
                }
                if let Some(s) = &self.reminders {
                    s.track(&r);
                }
                self.queue.submit(r.id.clone(), Work::put(*r));
            }
            WatchEvent::RequestDelete { id } => {
                self.metrics.events.with_label_values(&["delete", ""]).inc();
                if let Some(s) = &self.reminders {
                    s.forget(&id);
                }
                self.queue.submit(id, Work::Deleted);
            }
            WatchEvent::RulePut(rule) => {
                self.routing.rules.put(rule_spec(rule));
                self.metrics.rules.set(self.routing.rules.len() as i64);
            }
            WatchEvent::RuleDelete { name } => {
                self.routing.rules.delete(&name);
                self.metrics.rules.set(self.routing.rules.len() as i64);
            }
            WatchEvent::Init { .. } => tracing::debug!("ignoring a repeated INIT event"),
        }
    }

    /// Teleport replays nothing after INIT, so list what may have changed while we were not
    /// watching: every request, each reconciled like an event (posting what is missing,
    /// updating what was resolved). A resolved request created after `unwatched_since` may
    /// never have been seen pending here, so it is posted like one (with its final status)
    /// unless it already has posts. Returns whether the requests were listed (the gap is
    /// covered).
    ///
    /// Compared cheaply: every request's plugin data comes in one listing, and a request
    /// whose plugin data already shows its state is not queued at all (see [`settled`]), so
    /// a catch-up over requests that did not change costs the two listings and nothing more.
    /// Whether a reminder or notice came due that `stored` does not record as sent (while
    /// the service was down, say): the timer only wakes for points still to come.
    fn notices_due(&self, work: &Work, stored: Option<&RawData>) -> bool {
        let (Some(s), Work::Put(r, _), Some(raw)) = (&self.reminders, work, stored) else {
            return false;
        };
        crate::access::PluginData::decode(raw).is_ok_and(|d| s.reminders.due(r, &d.notices).any())
    }

    /// Now, on the reminders' clock when there are reminders (tests set it).
    fn now(&self) -> OffsetDateTime {
        self.reminders
            .as_ref()
            .map_or_else(OffsetDateTime::now_utc, |s| s.reminders.clock.now())
    }

    /// Until when a settled request's decision holds with its digest unchanged: its next
    /// reminder point, if it has one.
    fn recheck_at(&self, work: &Work) -> Option<i64> {
        let (Some(s), Work::Put(r, _)) = (&self.reminders, work) else {
            return None;
        };
        s.reminders.next(r).map(|t| t.unix_timestamp())
    }

    async fn catch_up(
        &self,
        cancel: CancellationToken,
        unwatched_since: Option<OffsetDateTime>,
    ) -> bool {
        let started = Instant::now();
        // Plugin data first, requests second: ids are never reused, so a request in the first
        // snapshot and missing from the later one was deleted. (The other order would take a
        // request created between the two listings for a deleted one.) Plugin data only moves
        // forward, so data that already covers the later listing's request stays covering it.
        let data = tokio::select! {
            r = self.client.list_encoded_plugin_data(PLUGIN_NAME) => r,
            _ = cancel.cancelled() => return false,
        };
        let mut data: Option<HashMap<String, Encoded>> = match data {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "catch-up: could not list plugin data; every request is reconciled one by one, and requests deleted while the service was down keep their old status");
                None
            }
        };
        // Skipping by digest needs the plugin data, and a decision that depends on nothing
        // else (see `unchanged`).
        let mut pass = self
            .unchanged
            .begin(unwatched_since.is_none() && data.is_some());
        let now = self.now().unix_timestamp();
        let (mut queued, mut unseen, mut unreadable) = (0, 0, 0);
        let every = RequestFilter::default();
        let listing = self.client.each_encoded_request(&every, |listed| {
            let Ok((id, request_digest)) = listed.request_digest() else {
                unreadable += 1;
                return;
            };
            // `None`: the plugin data is unknown (its listing failed).
            let stored: Option<Option<Encoded>> = data.as_mut().map(|d| d.remove(&id));
            let digest = match &stored {
                Some(Some(e)) => e.plugin_digest(PLUGIN_NAME).ok(),
                Some(None) => Some(None),
                None => None,
            }
            .map(|d| unchanged::digest(request_digest, d));
            if digest.is_some_and(|d| pass.skip(&id, d, now)) {
                return;
            }
            let Ok(r) = listed.request() else {
                unreadable += 1;
                return;
            };
            if let Some(s) = &self.reminders {
                s.track(&r);
            }
            // Plugin data that cannot be read is left to the processor, like unknown data.
            let stored: Option<Option<RawData>> = match stored {
                Some(Some(e)) => e.plugin_data(PLUGIN_NAME).ok(),
                Some(None) => Some(None),
                None => None,
            };
            let work = if r.state == RequestState::Pending {
                Work::put(r)
            } else if r.state.is_resolved() {
                let missed = unwatched_since.is_some_and(|t| r.created.is_some_and(|c| c >= t));
                unseen += usize::from(missed);
                Work::resolved(r, missed)
            } else {
                if let Some(d) = digest {
                    pass.settled(&id, d, None);
                }
                return;
            };
            if let Some(stored) = stored
                && settled(&work, stored.as_ref())
                && !self.notices_due(&work, stored.as_ref())
            {
                if let Some(d) = digest {
                    pass.settled(&id, d, self.recheck_at(&work));
                }
                return;
            }
            let Work::Put(r, _) = &work else { return };
            self.queue.submit(r.id.clone(), work);
            queued += 1;
        });
        let n = tokio::select! {
            r = listing => r,
            _ = cancel.cancelled() => return false,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "catch-up listing failed; new events are still processed");
                return false;
            }
        };
        if unreadable > 0 {
            // As when the listing itself fails: a request that cannot be read cannot be told
            // from a deleted one, so the gap stays open and nothing is marked expired.
            tracing::warn!(
                unreadable,
                "catch-up listing had access requests that could not be decoded; new events are still processed"
            );
            return false;
        }
        let unchanged = pass.skipped;
        self.unchanged.end(pass);
        // What is left of the plugin data belongs to requests that no longer exist.
        let gone = data.map_or(0, |d| self.deleted_while_away(d));
        self.metrics.catch_ups.inc();
        self.metrics.catch_up_queued.set((queued + gone) as i64);
        self.metrics.catch_up_unchanged.set(unchanged as i64);
        tracing::info!(
            requests = n,
            unchanged,
            queued,
            deleted = gone,
            resolved_while_away = unseen,
            took_ms = started.elapsed().as_millis() as u64,
            "catch-up: listed every request; queued those whose posts lag behind, and those deleted while away, for reconciliation"
        );
        true
    }

    /// Requests deleted while nobody watched: their plugin data (kept by Teleport for an hour
    /// after the access expiry) still says they are open, and no DELETE will come again.
    fn deleted_while_away(&self, data: HashMap<String, Encoded>) -> usize {
        let mut n = 0;
        for (id, encoded) in data {
            // Data this plugin cannot read would fail the same way in the processor.
            let Some(data) = encoded
                .plugin_data(PLUGIN_NAME)
                .ok()
                .flatten()
                .and_then(|raw| PluginData::decode(&raw).ok())
            else {
                tracing::debug!(request_id = %id, "catch-up: no readable plugin data of a deleted request; leaving it");
                continue;
            };
            let open = data.resolution == Resolution::Unresolved;
            if open && !data.messages.is_empty() {
                self.queue.submit(id, Work::Deleted);
                n += 1;
            }
        }
        n
    }
}

/// Time this replica was not watching, for the catch-up to cover.
#[derive(Default)]
struct Gap {
    /// A watch was established once. Before that there is no gap: a first start posts only
    /// requests still pending (no history), as upstream.
    watched: bool,
    /// Since when no watch has delivered events, until a catch-up has listed the requests.
    since: Option<OffsetDateTime>,
}

/// How a watch session ended.
enum End {
    Teleport(TeleportError),
    Fatal(WatchError),
}

impl From<TeleportError> for End {
    fn from(e: TeleportError) -> Self {
        End::Teleport(e)
    }
}

pub fn rule_spec(r: AccessMonitoringRule) -> RuleSpec {
    RuleSpec {
        name: r.name,
        subjects: r.subjects,
        condition: r.condition,
        notification_name: r.notification.name,
        recipients: r.notification.recipients,
    }
}
