//! Who gets a post: recipients from matching access monitoring rules (they win), otherwise
//! `role_to_recipients` (a role's entry, or `"*"`) plus suggested reviewers — upstream's order.
//! Each recipient carries the reasons it was chosen, for `/teleport explain`.

pub mod predicate;
pub mod recipient;
pub mod rules;

use std::collections::BTreeMap;
use std::fmt;

pub use predicate::{Env, Predicate, PredicateError};
pub use recipient::{Recipient, RecipientError};
pub use rules::{PLUGIN_NAME, RuleCache, RuleSpec};

/// Why a recipient was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// An access monitoring rule matched.
    Rule(String),
    /// `role_to_recipients` has an entry for this requested role.
    Role(String),
    /// A requested role has no entry, so `role_to_recipients."*"` applied.
    Wildcard(String),
    /// The requester named this reviewer.
    SuggestedReviewer,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule(r) => write!(f, "access monitoring rule {r:?} matched"),
            Reason::Role(r) => write!(f, "role_to_recipients entry for role {r:?}"),
            Reason::Wildcard(r) => write!(f, "role_to_recipients \"*\" (no entry for role {r:?})"),
            Reason::SuggestedReviewer => f.write_str("suggested reviewer"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub recipient: Recipient,
    pub reasons: Vec<Reason>,
}

/// The routing table: the config's role map plus the live rule cache.
#[derive(Debug, Default)]
pub struct Routing {
    role_map: BTreeMap<String, Vec<Recipient>>,
    pub rules: RuleCache,
}

impl Routing {
    pub fn new(role_map: BTreeMap<String, Vec<Recipient>>) -> Self {
        Self {
            role_map,
            rules: RuleCache::default(),
        }
    }

    /// Recipients for a request, deduplicated, in a stable order.
    pub fn recipients(&self, env: &Env) -> Vec<Routed> {
        let mut out = Collector::default();
        for (rule, recipients) in self.rules.matching(env) {
            for r in recipients {
                out.add(r, Reason::Rule(rule.clone()));
            }
        }
        if !out.list.is_empty() {
            return out.list;
        }
        for role in &env.roles {
            match self.role_map.get(role).filter(|l| !l.is_empty()) {
                Some(list) => list
                    .iter()
                    .for_each(|r| out.add(r.clone(), Reason::Role(role.clone()))),
                None => self
                    .role_map
                    .get("*")
                    .into_iter()
                    .flatten()
                    .for_each(|r| out.add(r.clone(), Reason::Wildcard(role.clone()))),
            }
        }
        for reviewer in &env.suggested_reviewers {
            if recipient::is_email(reviewer) {
                out.add(
                    Recipient::Email(reviewer.to_lowercase()),
                    Reason::SuggestedReviewer,
                );
            } else {
                tracing::warn!(reviewer = %reviewer, "suggested reviewer is not an e-mail address; not notifying them");
            }
        }
        out.list
    }
}

#[derive(Default)]
struct Collector {
    list: Vec<Routed>,
}

impl Collector {
    fn add(&mut self, recipient: Recipient, reason: Reason) {
        match self.list.iter_mut().find(|r| r.recipient == recipient) {
            Some(r) if !r.reasons.contains(&reason) => r.reasons.push(reason),
            Some(_) => {}
            None => self.list.push(Routed {
                recipient,
                reasons: vec![reason],
            }),
        }
    }
}

#[cfg(test)]
mod tests;
