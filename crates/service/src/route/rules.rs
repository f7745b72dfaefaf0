//! The cache of access monitoring rules that route requests to this plugin, kept current
//! from the watch stream (PUT replaces, DELETE removes) and filled by a list at start-up.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use super::predicate::{Env, Predicate, PredicateError};
use super::recipient::Recipient;
use crate::sync;

/// The notification name that addresses a rule to us (upstream's plugin name).
pub const PLUGIN_NAME: &str = "mattermost";
const SUBJECT: &str = "access_request";

/// A rule as the bridge receives it from Teleport (independent of the wire types).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub subjects: Vec<String>,
    pub condition: String,
    pub notification_name: String,
    pub recipients: Vec<String>,
}

#[derive(Debug)]
struct Cached {
    predicate: Result<Predicate, PredicateError>,
    recipients: Vec<Recipient>,
}

/// Rules addressed to this plugin, by name.
#[derive(Debug, Default)]
pub struct RuleCache {
    rules: RwLock<BTreeMap<String, Cached>>,
}

impl RuleCache {
    /// Adds or replaces a rule; a rule no longer addressed to us (other notification name,
    /// subjects without `access_request`) is removed, as upstream does on update.
    pub fn put(&self, rule: RuleSpec) {
        let name = rule.name.clone();
        let ours =
            rule.notification_name == PLUGIN_NAME && rule.subjects.iter().any(|s| s == SUBJECT);
        let mut rules = sync::write(&self.rules);
        if !ours {
            rules.remove(&name);
            return;
        }
        rules.insert(name, compile(rule));
    }

    pub fn delete(&self, name: &str) {
        sync::write(&self.rules).remove(name);
    }

    /// Replaces the whole cache (the list after a (re)connect).
    pub fn replace_all(&self, rules: impl IntoIterator<Item = RuleSpec>) {
        let fresh = RuleCache::default();
        for r in rules {
            fresh.put(r);
        }
        let fresh = fresh
            .rules
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        *sync::write(&self.rules) = fresh;
    }

    pub fn len(&self) -> usize {
        sync::read(&self.rules).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rules whose condition holds for `env`, with their recipients.
    pub fn matching(&self, env: &Env) -> Vec<(String, Vec<Recipient>)> {
        let rules = sync::read(&self.rules);
        let mut out = Vec::new();
        for (name, rule) in rules.iter() {
            let matched = match &rule.predicate {
                Ok(p) => p.matches(env),
                Err(e) => Err(e.clone()),
            };
            match matched {
                Ok(true) => out.push((name.clone(), rule.recipients.clone())),
                Ok(false) => {}
                // Upstream counts a broken rule as not matching; we say which and why.
                Err(e) => {
                    tracing::warn!(rule = %name, error = %e, "access monitoring rule condition failed; treating it as not matching")
                }
            }
        }
        out
    }
}

fn compile(rule: RuleSpec) -> Cached {
    let predicate = Predicate::parse(&rule.condition);
    if let Err(e) = &predicate {
        tracing::warn!(rule = %rule.name, error = %e, "Failed to parse access monitoring notification rule");
    }
    let mut recipients = Vec::new();
    for raw in &rule.recipients {
        match Recipient::parse(raw) {
            Ok(r) => recipients.push(r),
            Err(e) => {
                tracing::warn!(rule = %rule.name, error = %e, "skipping a recipient of an access monitoring rule")
            }
        }
    }
    Cached {
        predicate,
        recipients,
    }
}
