//! When each notice of a request is due: pure functions of the configured schedule, the
//! request's own times and what its plugin data says was sent, so every replica and every
//! restart computes the same answer.

use std::time::Duration;

use time::OffsetDateTime;

use crate::access::RequestState;
use crate::access::plugin_data::Notices;
use crate::config::{ReminderSchedule, RemindersConfig};

/// The schedule of one request: the most urgent value of each key among its roles (the
/// same keys as a configured schedule).
pub type Plan = ReminderSchedule;

/// The request's times that notices count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub state: RequestState,
    pub created: OffsetDateTime,
    /// When a pending request expires unreviewed.
    pub pending_expires: Option<OffsetDateTime>,
    /// When granted access ends.
    pub access_ends: Option<OffsetDateTime>,
}

/// What is due now and not yet sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// The delay of the reminder to send (the latest one passed: missed ones are not
    /// caught up one by one).
    pub reminder: Option<Duration>,
    pub escalate: bool,
    /// Tell the requester their pending request is about to expire.
    pub expiring: bool,
    /// Tell the requester their access is about to end.
    pub ending: bool,
}

impl Due {
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Each key's most urgent value among the schedules of `roles` (a role without its own
/// table has the default): the reminder list that reminds first, the earliest escalation
/// (with that schedule's recipients), `@here` if any asks for it, the longest notice.
pub fn plan(config: &RemindersConfig, roles: &[String]) -> Plan {
    let mut schedules: Vec<&ReminderSchedule> = roles
        .iter()
        .map(|r| config.roles.get(r).unwrap_or(&config.default))
        .collect();
    if schedules.is_empty() {
        schedules.push(&config.default);
    }
    let remind_after = schedules
        .iter()
        .map(|s| &s.remind_after)
        .filter(|l| !l.is_empty())
        .min()
        .cloned()
        .unwrap_or_default();
    let escalation = schedules
        .iter()
        .filter_map(|s| s.escalate_after.map(|d| (d, &s.escalate_to)))
        .min_by_key(|(d, _)| *d);
    Plan {
        remind_after,
        escalate_after: escalation.map(|(d, _)| d),
        escalate_to: escalation.map(|(_, to)| to.clone()).unwrap_or_default(),
        mention_channel: schedules.iter().any(|s| s.mention_channel),
        expiry_notice: schedules
            .iter()
            .map(|s| s.expiry_notice)
            .max()
            .unwrap_or_default(),
    }
}

fn after(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t + time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

fn before(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t - time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Whether a point in a pending request's life is still in it (before it expires).
fn alive(t: &Times, at: OffsetDateTime) -> bool {
    t.pending_expires.is_none_or(|x| at < x)
}

/// When to tell the requester before `end`: `notice` earlier, unless that is before the
/// request was even created (a short request would be told at once, which says nothing).
fn notice_at(t: &Times, end: Option<OffsetDateTime>, notice: Duration) -> Option<OffsetDateTime> {
    end.map(|e| before(e, notice)).filter(|n| *n >= t.created)
}

/// What is due at `now` and not yet recorded in `sent`. `requester` says whether the
/// requester's notices are on (`[mattermost] notify_requester`).
pub fn due(plan: &Plan, t: &Times, sent: &Notices, now: OffsetDateTime, requester: bool) -> Due {
    let mut due = Due::default();
    match t.state {
        RequestState::Pending => {
            if t.pending_expires.is_some_and(|x| now >= x) {
                return due;
            }
            let last = plan
                .remind_after
                .iter()
                .copied()
                .filter(|d| after(t.created, *d) <= now)
                .max();
            due.reminder = last.filter(|d| sent.reminded.is_none_or(|s| s < d.as_secs()));
            due.escalate = !sent.escalated
                && plan
                    .escalate_after
                    .is_some_and(|d| after(t.created, d) <= now && !plan.escalate_to.is_empty());
            due.expiring = requester
                && !sent.expiring
                && notice_at(t, t.pending_expires, plan.expiry_notice).is_some_and(|n| n <= now);
        }
        RequestState::Approved => {
            due.ending = requester
                && !sent.ending
                && t.access_ends.is_some_and(|e| now < e)
                && notice_at(t, t.access_ends, plan.expiry_notice).is_some_and(|n| n <= now);
        }
        _ => {}
    }
    due
}

/// Every time something may become due for the request, in no order: the timer wakes at
/// the earliest one after now.
pub fn points(plan: &Plan, t: &Times, requester: bool) -> Vec<OffsetDateTime> {
    let mut out = Vec::new();
    match t.state {
        RequestState::Pending => {
            out.extend(plan.remind_after.iter().map(|d| after(t.created, *d)));
            if !plan.escalate_to.is_empty() {
                out.extend(plan.escalate_after.map(|d| after(t.created, d)));
            }
            if requester {
                out.extend(notice_at(t, t.pending_expires, plan.expiry_notice));
            }
            out.retain(|p| alive(t, *p));
        }
        RequestState::Approved if requester => {
            out.extend(notice_at(t, t.access_ends, plan.expiry_notice));
        }
        _ => {}
    }
    out
}

/// The first point strictly after `now`: what the timer waits for. Points at or before
/// `now` are the reconcile's that just ran (or runs now).
pub fn next(
    plan: &Plan,
    t: &Times,
    now: OffsetDateTime,
    requester: bool,
) -> Option<OffsetDateTime> {
    points(plan, t, requester)
        .into_iter()
        .filter(|p| *p > now)
        .min()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::route::Recipient;

    const MIN: Duration = Duration::from_secs(60);
    const T0: OffsetDateTime = datetime!(2026-12-02 02:00 UTC);

    fn schedule(remind: &[u64], escalate: Option<u64>, notice: u64) -> ReminderSchedule {
        ReminderSchedule {
            remind_after: remind.iter().map(|m| MIN * *m as u32).collect(),
            escalate_after: escalate.map(|m| MIN * m as u32),
            escalate_to: vec![Recipient::parse("team/oncall").unwrap()],
            mention_channel: false,
            expiry_notice: MIN * notice as u32,
        }
    }

    fn config() -> RemindersConfig {
        let mut tight = schedule(&[10], Some(15), 15);
        tight.escalate_to = vec![Recipient::parse("@lead").unwrap()];
        RemindersConfig {
            default: schedule(&[30, 120], Some(60), 15),
            roles: BTreeMap::from([("prod-admin".into(), tight)]),
        }
    }

    fn pending() -> Times {
        Times {
            state: RequestState::Pending,
            created: T0,
            pending_expires: Some(T0 + time::Duration::hours(4)),
            access_ends: Some(T0 + time::Duration::hours(4)),
        }
    }

    fn at(minutes: i64) -> OffsetDateTime {
        T0 + time::Duration::minutes(minutes)
    }

    #[test]
    fn the_most_urgent_role_wins_key_by_key() {
        let c = config();
        let p = plan(&c, &["editor".into()]);
        assert_eq!(p.remind_after, vec![MIN * 30, MIN * 120]);
        assert_eq!(p.escalate_after, Some(MIN * 60));
        let p = plan(&c, &["editor".into(), "prod-admin".into()]);
        assert_eq!(p.remind_after, vec![MIN * 10]);
        assert_eq!(p.escalate_after, Some(MIN * 15));
        assert_eq!(p.escalate_to, vec![Recipient::parse("@lead").unwrap()]);
        assert_eq!(plan(&c, &[]), plan(&c, &["editor".into()]));
    }

    #[test]
    fn each_reminder_is_due_at_its_delay_once() {
        let p = plan(&config(), &["editor".into()]);
        let t = pending();
        let mut sent = Notices::default();
        assert_eq!(due(&p, &t, &sent, at(29), true), Due::default());
        let d = due(&p, &t, &sent, at(30), true);
        assert_eq!(d.reminder, Some(MIN * 30));
        sent.reminded = Some(30 * 60);
        assert!(!due(&p, &t, &sent, at(59), true).any());
        assert!(due(&p, &t, &sent, at(60), true).escalate);
        sent.escalated = true;
        assert!(!due(&p, &t, &sent, at(119), true).any());
        assert_eq!(due(&p, &t, &sent, at(120), true).reminder, Some(MIN * 120));
        sent.reminded = Some(120 * 60);
        assert!(!due(&p, &t, &sent, at(200), true).any());
    }

    #[test]
    fn reminders_missed_while_down_are_sent_once_late() {
        let p = plan(&config(), &["editor".into()]);
        let d = due(&p, &pending(), &Notices::default(), at(180), true);
        assert_eq!(d.reminder, Some(MIN * 120), "only the latest, not both");
        assert!(d.escalate);
    }

    #[test]
    fn nothing_once_the_request_left_pending_or_expired() {
        let p = plan(&config(), &["editor".into()]);
        let none = Notices::default();
        for state in [RequestState::Denied, RequestState::Promoted] {
            let t = Times { state, ..pending() };
            assert!(!due(&p, &t, &none, at(200), true).any());
            assert!(points(&p, &t, true).is_empty());
        }
        let approved = Times {
            state: RequestState::Approved,
            ..pending()
        };
        assert!(!due(&p, &approved, &none, at(200), true).any());
        assert!(!due(&p, &pending(), &none, at(240), true).any(), "expired");
        assert!(
            !due(&p, &approved, &none, at(240), true).any(),
            "access ended"
        );
    }

    #[test]
    fn requester_notices_before_expiry_and_only_when_on() {
        let p = plan(&config(), &["editor".into()]);
        let mut sent = Notices {
            reminded: Some(120 * 60),
            escalated: true,
            ..Notices::default()
        };
        assert!(!due(&p, &pending(), &sent, at(224), true).expiring);
        assert!(due(&p, &pending(), &sent, at(225), true).expiring);
        assert!(!due(&p, &pending(), &sent, at(225), false).expiring);
        sent.expiring = true;
        assert!(!due(&p, &pending(), &sent, at(230), true).any());
        let approved = Times {
            state: RequestState::Approved,
            ..pending()
        };
        assert!(due(&p, &approved, &sent, at(225), true).ending);
        assert!(!due(&p, &approved, &sent, at(225), false).ending);
        sent.ending = true;
        assert!(!due(&p, &approved, &sent, at(230), true).any());
        // A request shorter than the notice gets none (it would come at creation).
        let short = Times {
            pending_expires: Some(at(10)),
            ..pending()
        };
        assert!(!due(&p, &short, &Notices::default(), at(5), true).expiring);
    }

    #[test]
    fn the_timer_waits_for_the_next_point_only() {
        let p = plan(&config(), &["editor".into()]);
        let t = pending();
        assert_eq!(next(&p, &t, at(0), true), Some(at(30)));
        assert_eq!(next(&p, &t, at(30), true), Some(at(60)));
        assert_eq!(next(&p, &t, at(60), true), Some(at(120)));
        assert_eq!(next(&p, &t, at(120), true), Some(at(225)));
        assert_eq!(next(&p, &t, at(120), false), None);
        assert_eq!(next(&p, &t, at(225), true), None);
        let approved = Times {
            state: RequestState::Approved,
            ..t
        };
        assert_eq!(next(&p, &approved, at(0), true), Some(at(225)));
        assert_eq!(next(&Plan::default(), &t, at(0), false), None);
    }
}
