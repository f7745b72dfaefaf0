//! One unit of work for a request (its latest known state, or its deletion) and the summary
//! the posts are rendered from — built from the request when it exists, else from plugin data.

use std::sync::Arc;

use time::OffsetDateTime;

use super::queue::Supersede;
use crate::access::plugin_data::Notices;
use crate::access::{AccessRequest, PluginData, RequestState, Resolution, Review};

#[derive(Debug, Clone)]
pub enum Work {
    /// The request's latest state, and whether it was ever seen pending: coalescing may
    /// replace a PENDING event with a later APPROVED one, and such a request must still be
    /// posted, while a request that was already resolved when first listed is not.
    /// Shared, not copied: the queue keeps the latest state while a handler runs with it.
    Put(Arc<AccessRequest>, bool),
    /// Teleport deleted the request (it expired, or an admin deleted it).
    Deleted,
}

impl Work {
    pub fn put(request: AccessRequest) -> Self {
        let pending = request.state == RequestState::Pending;
        Work::Put(Arc::new(request), pending)
    }

    /// A resolved request; `missed` when it was created while nobody watched, so it may
    /// have been pending only while no replica could see it (it is then posted if it has
    /// no posts yet).
    pub fn resolved(request: AccessRequest, missed: bool) -> Self {
        Work::Put(Arc::new(request), missed)
    }

    /// Whether the request should be posted when it has no posts yet.
    pub fn was_pending(&self) -> bool {
        matches!(self, Work::Put(_, true))
    }

    /// How far the request has come; requests only move forward (reviews are appended,
    /// pending becomes resolved, then it is deleted), so more progress means newer.
    fn progress(&self) -> (u8, usize) {
        match self {
            Work::Deleted => (2, usize::MAX),
            Work::Put(r, _) if r.state.is_resolved() => (1, r.reviews.len()),
            Work::Put(r, _) => (0, r.reviews.len()),
        }
    }
}

impl Supersede for Work {
    /// A listing made at start-up can arrive after a newer event for the same request; the
    /// one that has come further wins, so an older snapshot never replaces a newer one.
    fn supersede(self, newer: Self) -> Self {
        let seen_pending = self.was_pending() || newer.was_pending();
        let mut kept = if newer.progress() >= self.progress() {
            newer
        } else {
            self
        };
        if let Work::Put(_, p) = &mut kept {
            *p = seen_pending;
        }
        kept
    }
}

/// What the posts show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub id: String,
    pub user: String,
    pub roles: Vec<String>,
    pub resources: Vec<String>,
    pub request_reason: String,
    pub status: Resolution,
    pub resolve_reason: String,
    pub created: Option<OffsetDateTime>,
    /// When granted access would end.
    pub expires: Option<OffsetDateTime>,
    pub max_duration: Option<OffsetDateTime>,
    pub approvals: u32,
    pub denials: u32,
    /// Approvals and denials needed (the strictest threshold), once known.
    pub needed: Option<(u32, u32)>,
    pub promoted_title: Option<String>,
    /// False for long-term (access list) requests: link only, never buttons.
    pub short_term: bool,
    /// Waiting this long at the last reminder sent (from plugin data's `notices`).
    pub waiting: Option<std::time::Duration>,
    /// Posted to the escalation recipients too.
    pub escalated: bool,
}

pub fn resolution_of(state: RequestState) -> Resolution {
    match state {
        RequestState::Approved => Resolution::Approved,
        RequestState::Denied => Resolution::Denied,
        RequestState::Promoted => Resolution::Promoted,
        RequestState::Pending | RequestState::None => Resolution::Unresolved,
    }
}

impl Summary {
    pub fn from_request(r: &AccessRequest) -> Self {
        let count =
            |s: RequestState| r.reviews.iter().filter(|v| v.proposed_state == s).count() as u32;
        let needed = r
            .thresholds
            .iter()
            .map(|t| (t.approve.max(1), t.deny.max(1)))
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)));
        Self {
            id: r.id.clone(),
            user: r.user.clone(),
            roles: r.roles.clone(),
            resources: r.resources.iter().map(ToString::to_string).collect(),
            request_reason: r.request_reason.clone(),
            status: resolution_of(r.state),
            resolve_reason: r.resolve_reason.clone(),
            created: r.created,
            expires: r.expires,
            max_duration: r.max_duration,
            approvals: count(RequestState::Approved),
            denials: count(RequestState::Denied),
            needed,
            promoted_title: r.promoted_access_list_title.clone(),
            short_term: !r.is_long_term(),
            waiting: None,
            escalated: false,
        }
    }

    /// With what the reminders recorded: the root posts show it (`⏰ waiting 2h`).
    pub fn with_notices(mut self, n: &Notices) -> Self {
        self.waiting = n.reminded.map(std::time::Duration::from_secs);
        self.escalated = n.escalated;
        self
    }

    /// For a deleted request, whose details survive only in plugin data.
    pub fn from_plugin_data(id: &str, d: &PluginData) -> Self {
        Self {
            id: id.to_string(),
            user: d.user.clone(),
            roles: d.roles.clone(),
            resources: d.resources.clone(),
            request_reason: d.request_reason.clone(),
            status: d.resolution,
            resolve_reason: d.resolve_reason.clone(),
            max_duration: d.max_duration,
            short_term: true,
            ..Self::default()
        }
        .with_notices(&d.notices)
    }
}

/// The reviews of a request, for thread replies.
pub fn reviews(work: &Work) -> &[Review] {
    match work {
        Work::Put(r, _) => &r.reviews,
        Work::Deleted => &[],
    }
}
