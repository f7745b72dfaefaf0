//! Pending requests do not wait forever (`[reminders]`): at each configured delay the
//! service replies in the thread of every root post, after `escalate_after` it posts the
//! request to the escalation recipients, and it tells the requester before their pending
//! request expires or their access ends.
//!
//! - [`schedule`]: what is due when, pure functions of the config, the request's own times
//!   and what its plugin data says was sent (`notices`), so replicas and restarts agree;
//! - [`timer`]: one timer for all open requests, fed by the watcher (events and catch-up);
//!   when a request is due it is fetched and handed to the processor's queue like an event.
//!
//! The processor sends the notices (`bridge/processor/notices.rs`) under its claim, with its
//! compare-and-swap and its retries: each one goes out once across replicas and restarts.

pub mod schedule;
pub mod timer;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::access::plugin_data::Notices;
use crate::access::{AccessRequest, RequestState};
use crate::access_lists::Clock;
use crate::bridge::queue::KeyedQueue;
use crate::bridge::work::Work;
use crate::config::RemindersConfig;
use crate::teleport::TeleportClient;
use schedule::{Due, Plan, Times};
use timer::Timer;

/// A due request that could not be fetched is looked at again this much later.
const FETCH_RETRY: Duration = Duration::from_secs(30);
/// Woken this much after a due time, so the wall clock has surely passed it too.
const MARGIN: Duration = Duration::from_millis(50);

/// The validated `[reminders]` section with what it is computed against.
#[derive(Debug, Clone)]
pub struct Reminders {
    pub config: RemindersConfig,
    /// `[mattermost] notify_requester`: the requester's notices are sent.
    pub requester: bool,
    pub clock: Clock,
}

impl Reminders {
    pub fn plan(&self, r: &AccessRequest) -> Plan {
        schedule::plan(&self.config, &r.roles)
    }

    /// `None` for a request without a creation time (nothing counts from it).
    pub fn times(r: &AccessRequest) -> Option<Times> {
        Some(Times {
            state: r.state,
            created: r.created?,
            pending_expires: r.pending_expires,
            access_ends: r.expires,
        })
    }

    /// What is due for `r` now and not recorded in `sent`.
    pub fn due(&self, r: &AccessRequest, sent: &Notices) -> Due {
        match Self::times(r) {
            Some(t) => schedule::due(&self.plan(r), &t, sent, self.clock.now(), self.requester),
            None => Due::default(),
        }
    }

    /// When the timer should next look at `r`.
    pub fn next(&self, r: &AccessRequest) -> Option<OffsetDateTime> {
        let t = Self::times(r)?;
        schedule::next(&self.plan(r), &t, self.clock.now(), self.requester)
    }

    /// `/teleport explain`'s lines about the schedule (markdown, ids in code spans).
    pub fn explain(&self, r: &AccessRequest, sent: &Notices) -> Vec<String> {
        let Some(t) = Self::times(r) else {
            return vec!["**Reminders**: none (the request has no creation time).".into()];
        };
        if r.state != RequestState::Pending && r.state != RequestState::Approved {
            return vec!["**Reminders**: none, the request is no longer pending.".into()];
        }
        let plan = self.plan(r);
        let now = self.clock.now();
        let when = |at: OffsetDateTime| {
            let left = (at - now).max(time::Duration::ZERO);
            format!(
                "{} (in {})",
                crate::mattermost::render::rfc822(at),
                crate::mattermost::render::human(left)
            )
        };
        let mut lines = Vec::new();
        if r.state == RequestState::Pending {
            let next = plan
                .remind_after
                .iter()
                .map(|d| {
                    (
                        d,
                        t.created + time::Duration::try_from(*d).unwrap_or_default(),
                    )
                })
                .find(|(d, at)| *at > now && sent.reminded.is_none_or(|s| s < d.as_secs()));
            lines.push(match (plan.remind_after.is_empty(), next) {
                (true, _) => "**Next reminder**: none configured for these roles.".into(),
                (false, None) => "**Next reminder**: none left.".into(),
                (false, Some((_, at))) => format!(
                    "**Next reminder**: {}, in the thread of each post{}.",
                    when(at),
                    if plan.mention_channel {
                        ", with @here"
                    } else {
                        ""
                    }
                ),
            });
            lines.push(match plan.escalate_after {
                _ if sent.escalated => "**Escalation**: done.".into(),
                None => "**Escalation**: none configured for these roles.".into(),
                Some(d) => {
                    let to: Vec<String> =
                        plan.escalate_to.iter().map(|x| format!("`{x}`")).collect();
                    format!(
                        "**Escalation**: {} to {}.",
                        when(t.created + time::Duration::try_from(d).unwrap_or_default()),
                        to.join(", ")
                    )
                }
            });
        }
        if self.requester {
            let (end, sent_already, what) = match r.state {
                RequestState::Pending => (t.pending_expires, sent.expiring, "the request expires"),
                _ => (t.access_ends, sent.ending, "the access ends"),
            };
            let at =
                end.map(|e| e - time::Duration::try_from(plan.expiry_notice).unwrap_or_default());
            lines.push(match at {
                _ if sent_already => "**Requester notice**: sent.".into(),
                Some(at) if at >= t.created && at > now => format!(
                    "**Requester notice**: {}, {} before {what}.",
                    when(at),
                    crate::mattermost::render::human(
                        time::Duration::try_from(plan.expiry_notice).unwrap_or_default()
                    )
                ),
                _ => "**Requester notice**: none due.".into(),
            });
        }
        lines
    }
}

/// The timer with the rules that fill it: tracks every request the watcher sees.
pub struct Scheduler {
    pub reminders: Arc<Reminders>,
    timer: Timer,
    /// `teleport_mattermost_reminders_scheduled`.
    scheduled: prometheus::IntGauge,
}

impl Scheduler {
    pub fn new(reminders: Arc<Reminders>, scheduled: prometheus::IntGauge) -> Self {
        Self {
            reminders,
            timer: Timer::default(),
            scheduled,
        }
    }

    fn set(&self, id: &str, at: Option<tokio::time::Instant>) {
        self.timer.set(id, at);
        self.scheduled.set(self.timer.len() as i64);
    }

    /// Schedules `r` for its next point after now, or drops it when none is left.
    pub fn track(&self, r: &AccessRequest) {
        let at = self.reminders.next(r).map(|at| {
            let wait = (at - self.reminders.clock.now()).max(time::Duration::ZERO);
            tokio::time::Instant::now() + Duration::try_from(wait).unwrap_or_default() + MARGIN
        });
        self.set(&r.id, at);
    }

    pub fn forget(&self, id: &str) {
        self.set(id, None);
    }

    /// Requests with a scheduled notice.
    pub fn scheduled(&self) -> usize {
        self.timer.len()
    }

    /// Until shutdown: each due request is read again and queued like an event, so the
    /// processor sends what is due (under its claim) and the request is scheduled anew.
    pub async fn run(
        &self,
        teleport: TeleportClient,
        queue: KeyedQueue<String, Work>,
        shutdown: CancellationToken,
    ) {
        loop {
            let ids = tokio::select! {
                ids = self.timer.due() => ids,
                _ = shutdown.cancelled() => return,
            };
            self.scheduled.set(self.timer.len() as i64);
            for id in ids {
                match teleport.get_access_request(&id).await {
                    Ok(Some(r)) => {
                        self.track(&r);
                        queue.submit(id, Work::put(r));
                    }
                    // Deleted: the watch reports it and the processor updates the posts.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(request_id = %id, error = %e, retry_in_s = FETCH_RETRY.as_secs(), "could not read a request a reminder is due for; trying again");
                        self.set(&id, Some(tokio::time::Instant::now() + FETCH_RETRY));
                    }
                }
            }
        }
    }
}
