//! `[reminders]` and its per-role tables `[reminders.roles.<role>]`: the same keys, each
//! checked with the key named in full (`reminders.roles.prod-admin.escalate_after`).

use std::collections::BTreeMap;
use std::time::Duration;

use figment::value::Value;

use super::problems::{Problems, Range, kind};
use super::sections::{self, secs};
use crate::config::raw::{RawReminders, SCHEDULE_KEYS};
use crate::config::{ReminderSchedule, RemindersConfig};

/// Reminder and escalation delays: from 1 s (trials, black-box tests) to a week, the
/// longest a request stays pending by default. No default: unset means none.
pub(crate) const REMINDER_DELAY: Range = Range {
    min: secs(1),
    max: secs(7 * 24 * 3600),
    default: Duration::ZERO,
};
/// How long before an expiry the requester is told.
pub(crate) const EXPIRY_NOTICE: Range = Range {
    min: secs(1),
    max: secs(7 * 24 * 3600),
    default: secs(15 * 60),
};

/// The keys of one schedule as written, wherever they were written.
#[derive(Default)]
struct Keys {
    remind_after: Option<Value>,
    escalate_after: Option<Value>,
    escalate_to: Option<Value>,
    mention_channel: Option<Value>,
    expiry_notice: Option<Value>,
}

pub(super) fn reminders(p: &mut Problems, raw: RawReminders) -> RemindersConfig {
    let top = Keys {
        remind_after: raw.remind_after,
        escalate_after: raw.escalate_after,
        escalate_to: raw.escalate_to,
        mention_channel: raw.mention_channel,
        expiry_notice: raw.expiry_notice,
    };
    let default = schedule(p, "reminders", top, &ReminderSchedule::default());
    let mut roles = BTreeMap::new();
    for (role, value) in raw.roles {
        let prefix = format!("reminders.roles.{role}");
        let Value::Dict(_, dict) = value else {
            p.problem(
                &prefix,
                format!(
                    "is a {}: write it as a [{prefix}] table with keys such as escalate_after",
                    kind(&value)
                ),
            );
            continue;
        };
        let mut keys = Keys::default();
        for (k, v) in dict {
            let slot = match k.as_str() {
                "remind_after" => &mut keys.remind_after,
                "escalate_after" => &mut keys.escalate_after,
                "escalate_to" => &mut keys.escalate_to,
                "mention_channel" => &mut keys.mention_channel,
                "expiry_notice" => &mut keys.expiry_notice,
                _ => {
                    p.problems.push(format!(
                        "unknown key `{prefix}.{k}`: remove it or fix its spelling (known keys of [{prefix}]: {})",
                        SCHEDULE_KEYS.join(", ")
                    ));
                    continue;
                }
            };
            *slot = Some(v);
        }
        roles.insert(role, schedule(p, &prefix, keys, &default));
    }
    RemindersConfig { default, roles }
}

/// One schedule; keys left out are `base`'s.
fn schedule(p: &mut Problems, prefix: &str, k: Keys, base: &ReminderSchedule) -> ReminderSchedule {
    let key = |name: &str| format!("{prefix}.{name}");
    let remind_after = match k.remind_after {
        None => base.remind_after.clone(),
        Some(v) => {
            let mut delays: Vec<Duration> = p
                .strings(&key("remind_after"), v)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| delay(p, &key("remind_after"), s))
                .collect();
            delays.sort();
            delays.dedup();
            delays
        }
    };
    let escalate_after = match k.escalate_after {
        None => base.escalate_after,
        Some(v) => {
            let d = p.duration(&key("escalate_after"), Some(v), &REMINDER_DELAY);
            (!d.is_zero()).then_some(d)
        }
    };
    let escalate_to = match k.escalate_to {
        None => base.escalate_to.clone(),
        Some(v) => {
            let list = p.strings(&key("escalate_to"), v).unwrap_or_default();
            let skipped = p.skipped_recipients.len();
            let out = sections::recipients(p, &key("escalate_to"), &list);
            // Unlike routing (kept compatible with upstream), a new key is strict.
            let bad: Vec<String> = p.skipped_recipients.drain(skipped..).collect();
            p.problems.extend(bad);
            out
        }
    };
    let mention_channel = match k.mention_channel {
        None => base.mention_channel,
        Some(Value::Bool(_, b)) => b,
        Some(other) => {
            p.problem(
                &key("mention_channel"),
                format!("is a {}: write true or false", kind(&other)),
            );
            base.mention_channel
        }
    };
    let expiry_notice = match k.expiry_notice {
        None if prefix == "reminders" => EXPIRY_NOTICE.default,
        None => base.expiry_notice,
        Some(v) => p.duration(&key("expiry_notice"), Some(v), &EXPIRY_NOTICE),
    };
    if escalate_after.is_some() && escalate_to.is_empty() {
        p.problem(
            &key("escalate_after"),
            format!(
                "is set but nobody gets the escalation: set `{}` (channels \"team/channel\", e-mails or \"@username\")",
                key("escalate_to")
            ),
        );
    }
    ReminderSchedule {
        remind_after,
        escalate_after,
        escalate_to,
        mention_channel,
        expiry_notice,
    }
}

/// One entry of `remind_after`, with the same words as every duration key.
fn delay(p: &mut Problems, key: &str, s: String) -> Option<Duration> {
    let before = p.problems.len();
    let d = p.duration(key, Some(Value::from(s)), &REMINDER_DELAY);
    (p.problems.len() == before && !d.is_zero()).then_some(d)
}
