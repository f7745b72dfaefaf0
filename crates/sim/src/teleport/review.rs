//! SubmitAccessReview with Teleport's checks, in Teleport's order: who may submit for whom
//! (author = caller, or v18.11+ on-behalf with `submit_for_users`), the author's own review
//! rights, review compatibility, then thresholds and resolution.

use time::OffsetDateTime;
use tonic::Status;

use super::model::{RequestState, Review, Threshold, version_triple};
use super::state::{ReviewAudit, State};
use super::wire;
use teleport_mattermost_proto::types;

/// The first Teleport version that accepts reviews submitted on behalf of another user.
pub const ON_BEHALF_MIN_VERSION: (u64, u64, u64) = (18, 11, 0);

impl State {
    pub fn submit_review(
        &mut self,
        caller: &str,
        sub: types::AccessReviewSubmission,
    ) -> Result<types::AccessRequestV3, Status> {
        let mut rev = sub.review.unwrap_or_default();
        let proposed = RequestState::from_number(rev.proposed_state);
        if proposed == RequestState::Promoted {
            return Err(Status::invalid_argument(
                "state promoted can be only set when promoting to access list",
            ));
        }
        let on_behalf_supported =
            version_triple(&self.info.server_version) >= ON_BEHALF_MIN_VERSION;
        if !on_behalf_supported {
            // Fields 11 and 12 do not exist before v18.11: an older server never sees them.
            rev.submitted_by.clear();
            rev.submitted_on_behalf_of_author = false;
        }
        if rev.author.is_empty() {
            rev.author = caller.to_string();
        }
        let caller_roles = self.role_set(caller)?;
        let cannot_submit_for = || {
            Status::permission_denied(format!(
                "user {caller:?} cannot submit reviews on behalf of {:?}",
                rev.author
            ))
        };
        if rev.submitted_on_behalf_of_author || !rev.submitted_by.is_empty() {
            let ok = rev.submitted_on_behalf_of_author
                && rev.submitted_by == caller
                && (rev.author == caller || caller_roles.can_submit_for(&rev.author));
            if !ok {
                return Err(cannot_submit_for());
            }
        } else if rev.author != caller {
            return Err(cannot_submit_for());
        } else if !caller_roles.may_review_anything() {
            return Err(Status::permission_denied(format!(
                "user {caller:?} cannot submit reviews"
            )));
        }

        let author = rev.author.clone();
        if !self.users.contains_key(&author) {
            return Err(Status::not_found(format!("user {author:?} is not found")));
        }
        let author_roles = self.role_set(&author)?;
        let id = sub.request_id.clone();
        let stored = self.request(&id)?;
        if !author_roles.can_review(&author, &stored.req) {
            return Err(Status::permission_denied(format!(
                "user {author:?} cannot review request {id:?}"
            )));
        }
        if !matches!(proposed, RequestState::Approved | RequestState::Denied) {
            return Err(Status::invalid_argument(format!(
                "invalid state proposal: {proposed} (expected approval/denial)"
            )));
        }
        if stored.req.reviews.iter().any(|r| r.author == author) {
            return Err(Status::permission_denied(format!(
                "user {author:?} has already reviewed this request"
            )));
        }
        if !rev.roles.is_empty() && rev.roles.len() != stored.req.roles.len() {
            return Err(Status::unimplemented(
                "role subselection is not yet supported in reviews, try omitting role list",
            ));
        }
        if rev
            .annotations
            .as_ref()
            .is_some_and(|a| !a.values.is_empty())
        {
            return Err(Status::unimplemented(
                "annotations are not yet supported in reviews, try omitting annotations field",
            ));
        }
        if stored.req.state.is_resolved() {
            return Err(Status::permission_denied(format!(
                "the access request has been already {}",
                stored.req.state.name().to_lowercase()
            )));
        }

        let mut review = wire::review_from_proto(&rev);
        if review.created.is_none() {
            review.created = Some(OffsetDateTime::now_utc());
        }
        let stored = self.requests.get_mut(&id).expect("looked up above");
        let all: Vec<u32> = (0..stored.req.thresholds.len() as u32).collect();
        stored.req.reviews.push(review.clone());
        stored.review_indexes.push(all);
        if let Some((state, reason)) = resolution(&stored.req.thresholds, &stored.req.reviews) {
            stored.req.state = state;
            stored.req.resolve_reason = reason;
        }
        let out = stored.to_proto();
        self.audit.push(ReviewAudit {
            request_id: id.clone(),
            author,
            submitted_by: caller.to_string(),
            on_behalf: review.on_behalf,
            proposed_state: proposed,
            reason: review.reason,
        });
        self.emit_request_put(&id);
        Ok(out)
    }
}

/// Teleport's review-based resolution, with every threshold applying to every role (the
/// simulator has no threshold filters): reviews are counted in order; the first denial
/// threshold reached denies, the first approval threshold reached approves, and the
/// deciding review's reason becomes the resolve reason.
pub(crate) fn resolution(
    thresholds: &[Threshold],
    reviews: &[Review],
) -> Option<(RequestState, String)> {
    let mut approvals = vec![0u32; thresholds.len()];
    let mut denials = vec![0u32; thresholds.len()];
    for r in reviews {
        for i in 0..thresholds.len() {
            match r.proposed_state {
                RequestState::Approved => approvals[i] += 1,
                RequestState::Denied => denials[i] += 1,
                _ => {}
            }
        }
        let hit = |counts: &[u32], need: fn(&Threshold) -> u32| {
            thresholds
                .iter()
                .zip(counts)
                .any(|(t, c)| need(t) != 0 && *c >= need(t))
        };
        if hit(&denials, |t| t.deny) {
            return Some((RequestState::Denied, r.reason.clone()));
        }
        if hit(&approvals, |t| t.approve) {
            return Some((RequestState::Approved, r.reason.clone()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(state: RequestState, reason: &str) -> Review {
        Review {
            author: reason.into(),
            proposed_state: state,
            reason: reason.into(),
            created: None,
            submitted_by: String::new(),
            on_behalf: false,
        }
    }

    #[test]
    fn thresholds_resolve_on_the_deciding_review_with_its_reason() {
        let two = [Threshold {
            name: "t".into(),
            approve: 2,
            deny: 2,
        }];
        let a = RequestState::Approved;
        let d = RequestState::Denied;
        assert_eq!(resolution(&two, &[rev(a, "okay")]), None);
        assert_eq!(
            resolution(&two, &[rev(a, "okay"), rev(a, "finally okay")]),
            Some((a, "finally okay".into()))
        );
        assert_eq!(
            resolution(
                &two,
                &[rev(d, "no"), rev(a, "yes"), rev(d, "finally not okay")]
            ),
            Some((d, "finally not okay".into()))
        );
        let one = [Threshold::default_single()];
        assert_eq!(
            resolution(&one, &[rev(d, "nope")]),
            Some((d, "nope".into()))
        );
    }
}
