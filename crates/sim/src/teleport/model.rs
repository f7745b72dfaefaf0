//! The simulator's own model of what Teleport's Auth Service stores: access requests with
//! their reviews and thresholds, users, access monitoring rules. It shares nothing with the
//! service's model on purpose: the two meet only on the wire, so a mistake on one side shows
//! up as a disagreement instead of cancelling out.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// Resource kind of access requests (watch kinds, plugin-data kind, RBAC resource).
pub const KIND_ACCESS_REQUEST: &str = "access_request";
/// Resource kind of access monitoring rules.
pub const KIND_ACCESS_MONITORING_RULE: &str = "access_monitoring_rule";
/// The rule-only RBAC resource that grants plugin-data rights without request rights.
pub const KIND_ACCESS_PLUGIN_DATA: &str = "access_plugin_data";

/// `types.RequestState`; "resolved" = approved, denied or promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestState {
    #[default]
    None,
    Pending,
    Approved,
    Denied,
    Promoted,
}

/// Wire numbers of [`RequestState`], in Teleport's order.
const STATES: [(RequestState, i32, &str); 5] = [
    (RequestState::None, 0, "NONE"),
    (RequestState::Pending, 1, "PENDING"),
    (RequestState::Approved, 2, "APPROVED"),
    (RequestState::Denied, 3, "DENIED"),
    (RequestState::Promoted, 4, "PROMOTED"),
];

impl RequestState {
    pub fn name(self) -> &'static str {
        STATES
            .iter()
            .find(|(s, ..)| *s == self)
            .map_or("NONE", |e| e.2)
    }

    pub fn number(self) -> i32 {
        STATES.iter().find(|(s, ..)| *s == self).map_or(0, |e| e.1)
    }

    /// Numbers Teleport does not define read as `None`.
    pub fn from_number(n: i32) -> Self {
        STATES.iter().find(|e| e.1 == n).map_or(Self::None, |e| e.0)
    }

    pub fn is_resolved(self) -> bool {
        matches!(self, Self::Approved | Self::Denied | Self::Promoted)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A watch filter's `state` value that names no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown request state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for RequestState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::None);
        }
        STATES
            .iter()
            .find(|e| e.2 == s)
            .map(|e| e.0)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// `AccessRequestKind` (newest servers): ordinary or access-list promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestKind {
    #[default]
    Undefined,
    ShortTerm,
    LongTerm,
}

/// One resource of a resource-based request (`types.ResourceID`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceId {
    pub cluster: String,
    pub kind: String,
    pub name: String,
    pub sub_resource: String,
}

/// `AccessReviewThreshold`: how many approvals or denials resolve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    pub name: String,
    pub approve: u32,
    pub deny: u32,
}

impl Threshold {
    /// What Teleport applies when no role sets a threshold: one approval or one denial.
    pub fn default_single() -> Self {
        Self {
            name: "default".into(),
            approve: 1,
            deny: 1,
        }
    }
}

/// A stored review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub author: String,
    pub proposed_state: RequestState,
    pub reason: String,
    pub created: Option<OffsetDateTime>,
    /// v18.11+: who submitted it for `author` (empty for one's own review).
    pub submitted_by: String,
    pub on_behalf: bool,
}

/// A review to submit through the admin API, as a client identity would over gRPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub author: String,
    pub proposed_state: RequestState,
    pub reason: String,
    /// Submitted by the caller on behalf of `author` (v18.11+).
    pub on_behalf: bool,
}

/// An access request as the simulator stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRequest {
    pub id: String,
    pub user: String,
    pub roles: Vec<String>,
    pub state: RequestState,
    pub created: Option<OffsetDateTime>,
    /// When the granted access would end.
    pub expires: Option<OffsetDateTime>,
    /// An absolute time despite the name.
    pub max_duration: Option<OffsetDateTime>,
    pub session_ttl: Option<OffsetDateTime>,
    pub request_reason: String,
    pub resolve_reason: String,
    pub system_annotations: BTreeMap<String, Vec<String>>,
    pub thresholds: Vec<Threshold>,
    pub reviews: Vec<Review>,
    pub suggested_reviewers: Vec<String>,
    pub resources: Vec<ResourceId>,
    /// Only for PROMOTED requests.
    pub promoted_access_list_title: Option<String>,
    pub kind: RequestKind,
}

/// A Teleport user: roles and traits (e.g. `mattermost_user_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub name: String,
    pub roles: Vec<String>,
    pub traits: BTreeMap<String, Vec<String>>,
}

/// The `notification` part of an access monitoring rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleNotification {
    pub name: String,
    pub recipients: Vec<String>,
}

/// An access monitoring rule; the simulator stores it and never evaluates its condition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessMonitoringRule {
    pub name: String,
    pub subjects: Vec<String>,
    pub states: Vec<String>,
    pub condition: String,
    pub notification: RuleNotification,
}

/// `major.minor.patch` of a server version (a `v` prefix and any suffix ignored); garbage is
/// `(0, 0, 0)`.
pub fn version_triple(version: &str) -> (u64, u64, u64) {
    let core = version.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(a), Some(b), Some(c)] => (*a, *b, *c),
        _ => (0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_teleports_names_and_numbers() {
        for (s, n, name) in STATES {
            assert_eq!(RequestState::from_number(n), s);
            assert_eq!(s.number(), n);
            assert_eq!(name.parse::<RequestState>().unwrap(), s);
        }
        assert_eq!(RequestState::from_number(42), RequestState::None);
        assert!("MAYBE".parse::<RequestState>().is_err());
    }

    #[test]
    fn versions_compare_by_their_numeric_core() {
        assert_eq!(version_triple("v18.11.3-dev.1"), (18, 11, 3));
        assert!(version_triple("18.9.9") < (18, 11, 0));
        assert_eq!(version_triple("eighteen"), (0, 0, 0));
    }
}
