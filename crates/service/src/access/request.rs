//! Access requests, their state, reviews and review thresholds.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// The state of an access request. "Resolved" means approved, denied or promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum RequestState {
    #[default]
    None,
    Pending,
    Approved,
    Denied,
    Promoted,
}

impl RequestState {
    /// Teleport's enum name, as used in watch filters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Promoted => "PROMOTED",
        }
    }

    pub fn is_resolved(self) -> bool {
        matches!(self, Self::Approved | Self::Denied | Self::Promoted)
    }

    /// The wire number (`types.RequestState`).
    pub fn to_i32(self) -> i32 {
        match self {
            Self::None => 0,
            Self::Pending => 1,
            Self::Approved => 2,
            Self::Denied => 3,
            Self::Promoted => 4,
        }
    }

    /// Decodes a wire number; values from a newer server that we do not know read as `None`.
    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => Self::Pending,
            2 => Self::Approved,
            3 => Self::Denied,
            4 => Self::Promoted,
            _ => Self::None,
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of NONE, PENDING, APPROVED, DENIED, PROMOTED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown request state {0:?}: expected one of NONE, PENDING, APPROVED, DENIED, PROMOTED")]
pub struct UnknownState(pub String);

impl FromStr for RequestState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NONE" | "" => Ok(Self::None),
            "PENDING" => Ok(Self::Pending),
            "APPROVED" => Ok(Self::Approved),
            "DENIED" => Ok(Self::Denied),
            "PROMOTED" => Ok(Self::Promoted),
            other => Err(UnknownState(other.to_string())),
        }
    }
}

/// Short-term (ordinary) or long-term (access-list promotion) request; newest Teleport only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestKind {
    #[default]
    Undefined,
    ShortTerm,
    LongTerm,
}

impl RequestKind {
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Undefined => 0,
            Self::ShortTerm => 1,
            Self::LongTerm => 2,
        }
    }

    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => Self::ShortTerm,
            2 => Self::LongTerm,
            _ => Self::Undefined,
        }
    }
}

/// One resource of a resource-based request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ResourceId {
    pub cluster: String,
    pub kind: String,
    pub name: String,
    /// Empty when the resource has no sub-resource.
    pub sub_resource: String,
}

impl fmt::Display for ResourceId {
    /// `cluster/kind/name[/sub_resource]`, the form the upstream plugin stores in plugin data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.kind, self.name)?;
        if !self.sub_resource.is_empty() {
            write!(f, "/{}", self.sub_resource)?;
        }
        Ok(())
    }
}

/// A review threshold: how many approvals or denials resolve the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Threshold {
    pub name: String,
    pub approve: u32,
    pub deny: u32,
}

impl Threshold {
    /// Teleport's implicit threshold when no role defines one: one approval or one denial.
    pub fn default_single() -> Self {
        Self {
            name: "default".into(),
            approve: 1,
            deny: 1,
        }
    }
}

/// A review of an access request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The Teleport user whose review this is (the human reviewer for on-behalf reviews).
    pub author: String,
    pub proposed_state: RequestState,
    pub reason: String,
    pub created: Option<OffsetDateTime>,
    /// Teleport v18.11+: the identity that submitted the review for `author`; empty otherwise.
    pub submitted_by: String,
    /// Teleport v18.11+: true when `submitted_by` submitted it on behalf of `author`.
    pub on_behalf: bool,
}

/// An access request as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRequest {
    /// The request id (resource name), a UUID.
    pub id: String,
    /// The requester.
    pub user: String,
    pub roles: Vec<String>,
    pub state: RequestState,
    pub created: Option<OffsetDateTime>,
    /// When the granted access ends (`spec.expires`).
    pub expires: Option<OffsetDateTime>,
    /// When Teleport deletes the request (`metadata.expires`): for a pending request, when
    /// it expires unreviewed.
    pub pending_expires: Option<OffsetDateTime>,
    /// Latest time the access may be extended to (an absolute time).
    pub max_duration: Option<OffsetDateTime>,
    pub session_ttl: Option<OffsetDateTime>,
    pub request_reason: String,
    pub resolve_reason: String,
    /// From the requester's role `request.annotations`; used for routing.
    pub system_annotations: BTreeMap<String, Vec<String>>,
    pub thresholds: Vec<Threshold>,
    pub reviews: Vec<Review>,
    pub suggested_reviewers: Vec<String>,
    pub resources: Vec<ResourceId>,
    /// Title of the access list the request was promoted to (state PROMOTED only).
    pub promoted_access_list_title: Option<String>,
    pub kind: RequestKind,
}

impl AccessRequest {
    /// Long-term requests (access-list promotion) must not be reviewed from chat.
    pub fn is_long_term(&self) -> bool {
        self.kind == RequestKind::LongTerm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip_and_unknown_names_are_rejected() {
        for s in [
            RequestState::None,
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Denied,
            RequestState::Promoted,
        ] {
            assert_eq!(s.as_str().parse::<RequestState>().unwrap(), s);
            assert_eq!(RequestState::from_i32(s.to_i32()), s);
        }
        let err = "MAYBE".parse::<RequestState>().unwrap_err();
        assert!(err.to_string().contains("\"MAYBE\""), "{err}");
        assert_eq!(RequestState::from_i32(99), RequestState::None);
    }

    #[test]
    fn resource_id_displays_like_upstream_plugin_data() {
        let mut r = ResourceId {
            cluster: "cluster-a".into(),
            kind: "node".into(),
            name: "foo".into(),
            sub_resource: String::new(),
        };
        assert_eq!(r.to_string(), "cluster-a/node/foo");
        r.sub_resource = "ns/pod".into();
        assert_eq!(r.to_string(), "cluster-a/node/foo/ns/pod");
    }
}
