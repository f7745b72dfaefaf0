//! Parameters and results of [`super::TeleportClient`] calls that callers build or inspect:
//! Ping results and version checks, request filters, reviews to submit.

use time::OffsetDateTime;

use super::convert;
use super::wire::types;
use crate::access::{RequestState, Review};

/// The first Teleport version that accepts reviews submitted on behalf of another user.
pub const ON_BEHALF_MIN_VERSION: (u64, u64, u64) = (18, 11, 0);

/// What `Ping` tells about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingInfo {
    pub cluster_name: String,
    pub server_version: String,
    /// `host:port` of the web proxy; links to requests are built from it.
    pub proxy_public_addr: String,
    /// Enterprise feature flag; upstream shows request links only when set.
    pub advanced_access_workflows: bool,
}

impl PingInfo {
    /// True when the server (v18.11+) accepts reviews submitted on behalf of another user.
    pub fn supports_on_behalf_reviews(&self) -> bool {
        version_at_least(&self.server_version, ON_BEHALF_MIN_VERSION)
    }
}

/// `major.minor.patch` comparison; a pre-release suffix is ignored, garbage is "too old".
pub fn version_at_least(version: &str, min: (u64, u64, u64)) -> bool {
    let core = version
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or("");
    let mut it = core.split('.').map(|p| p.parse::<u64>());
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) >= min,
        _ => false,
    }
}

/// Which requests to list. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub id: Option<String>,
    pub user: Option<String>,
    pub state: Option<RequestState>,
}

impl RequestFilter {
    pub fn state(state: RequestState) -> Self {
        Self {
            state: Some(state),
            ..Default::default()
        }
    }
}

/// A review to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    /// The Teleport user whose review this is.
    pub author: String,
    /// APPROVED or DENIED.
    pub proposed_state: RequestState,
    pub reason: String,
    /// Submit on behalf of `author` (Teleport v18.11+): sets `SubmittedBy` to this client's
    /// own user and `submitted_on_behalf_of_author`. Only set these when asked, because
    /// older servers reject an author other than the caller anyway.
    pub on_behalf: bool,
}

/// The wire form of a review: `Created` always set; fields 11/12 only for on-behalf reviews.
pub fn review_submission(
    request_id: &str,
    review: &NewReview,
    submitted_by: &str,
    now: OffsetDateTime,
) -> types::AccessReviewSubmission {
    let domain = Review {
        author: review.author.clone(),
        proposed_state: review.proposed_state,
        reason: review.reason.clone(),
        created: Some(now),
        submitted_by: if review.on_behalf {
            submitted_by.to_string()
        } else {
            String::new()
        },
        on_behalf: review.on_behalf,
    };
    types::AccessReviewSubmission {
        request_id: request_id.into(),
        review: Some(convert::review_to_proto(&domain, Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_and_garbage_is_too_old() {
        let min = ON_BEHALF_MIN_VERSION;
        assert!(version_at_least("18.11.0", min));
        assert!(version_at_least("v18.11.3-dev.1", min));
        assert!(version_at_least("19.0.0", min));
        assert!(!version_at_least("18.9.9", min));
        assert!(!version_at_least("18.2.10", min));
        assert!(!version_at_least("17.99.0", min));
        assert!(!version_at_least("eighteen", min));
        assert!(!version_at_least("", min));
    }

    #[test]
    fn on_behalf_fields_are_only_set_when_asked() {
        let now = OffsetDateTime::now_utc();
        let mut review = NewReview {
            author: "bob".into(),
            proposed_state: RequestState::Approved,
            reason: "ok".into(),
            on_behalf: false,
        };
        let plain = review_submission("id", &review, "access-plugin", now);
        let r = plain.review.unwrap();
        assert_eq!(r.submitted_by, "");
        assert!(!r.submitted_on_behalf_of_author);
        assert_eq!(r.created.unwrap().seconds, now.unix_timestamp());
        review.on_behalf = true;
        let r = review_submission("id", &review, "access-plugin", now)
            .review
            .unwrap();
        assert_eq!(r.submitted_by, "access-plugin");
        assert!(r.submitted_on_behalf_of_author);
    }
}
