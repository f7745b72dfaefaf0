//! What came of a review attempt, classified from Teleport's answer, and the message the
//! reviewer sees for each case (every one says what happened and what to do next).

use url::Url;

use crate::access::{AccessRequest, RequestState};
use crate::mattermost::render::escape::inline;
use crate::signing::Action;
use crate::teleport::TeleportError;

/// Teleport's text for a second review by the same person (its plugins match this suffix).
pub const ALREADY_REVIEWED: &str = "has already reviewed this request";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Teleport accepted the review; `request` is the request after it.
    Reviewed {
        author: String,
        action: Action,
        request: Box<AccessRequest>,
    },
    AlreadyReviewed {
        author: String,
    },
    /// The request is already approved, denied or promoted.
    Resolved {
        state: RequestState,
    },
    /// The request no longer exists (Teleport deletes expired requests).
    Gone,
    /// Teleport refused the author's review; `reason` is Teleport's text.
    NotAllowed {
        author: String,
        reason: String,
    },
    SelfReview,
    /// Teleport did not answer: nothing was submitted.
    Unavailable,
    /// The Mattermost user is bound to no Teleport user.
    Unlinked {
        chat_user_id: String,
        trait_name: String,
        email_allowed: bool,
    },
    /// The Mattermost user is bound to several Teleport users.
    Ambiguous {
        users: Vec<String>,
        trait_name: String,
    },
    /// The cluster predates on-behalf reviews (18.11), or the request must be reviewed in
    /// Teleport (long-term or a link-only role): show the link and the `tsh` command.
    ReviewInTeleport {
        why: String,
        request_id: String,
        action: Action,
        link: Option<Url>,
    },
    /// Anything else Teleport refused, with its text.
    Failed(String),
}

impl Outcome {
    /// The `outcome` label of the reviews metric.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Reviewed { .. } => "submitted",
            Outcome::AlreadyReviewed { .. } => "already_reviewed",
            Outcome::Resolved { .. } | Outcome::Gone => "resolved",
            Outcome::NotAllowed { .. } => "not_allowed",
            Outcome::SelfReview => "self_review",
            Outcome::Unavailable => "unavailable",
            Outcome::Unlinked { .. } | Outcome::Ambiguous { .. } => "unlinked",
            Outcome::ReviewInTeleport { .. } => "review_in_teleport",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Reviewed { .. })
    }

    /// The message for the reviewer (Markdown).
    pub fn text(&self) -> String {
        match self {
            Outcome::Reviewed {
                author,
                action,
                request,
            } => {
                let verb = past(*action);
                let id = code(&request.id);
                if request.state.is_resolved() {
                    format!(
                        "You {verb} request {id} as Teleport user {}. The request is now **{}**.",
                        code(author),
                        request.state
                    )
                } else {
                    format!(
                        "You {verb} request {id} as Teleport user {}. Progress: {}. Teleport resolves the request when a threshold is reached.",
                        code(author),
                        progress(request)
                    )
                }
            }
            Outcome::AlreadyReviewed { author } => format!(
                "You (Teleport user {}) have already reviewed this request; Teleport counts one review per person.",
                code(author)
            ),
            Outcome::Resolved { state } => format!(
                "This request is already **{state}**; there is nothing left to review."
            ),
            Outcome::Gone => "This request no longer exists in Teleport: it expired or was deleted. Nothing was submitted.".into(),
            Outcome::NotAllowed { author, reason } => format!(
                "Teleport does not allow {} to review this request: {}. Ask a Teleport admin for review rights (`review_requests` in one of your roles).",
                code(author),
                inline(reason.trim_end_matches('.'), 300)
            ),
            Outcome::SelfReview => "You cannot review your own access request; another reviewer has to decide.".into(),
            Outcome::Unavailable => "Teleport is unreachable right now, so nothing was submitted. Try again in a minute.".into(),
            Outcome::Unlinked {
                chat_user_id,
                trait_name,
                email_allowed,
            } => {
                let mut t = format!(
                    "Your Mattermost account is not linked to a Teleport user, so you cannot review from Mattermost. Ask a Teleport admin to add the trait {} with your Mattermost user id {} to your Teleport user.",
                    code(trait_name),
                    code(chat_user_id)
                );
                if *email_allowed {
                    t.push_str(" (A Teleport user named exactly like your Mattermost e-mail address would also match.)");
                }
                t
            }
            Outcome::Ambiguous { users, trait_name } => format!(
                "Your Mattermost account is linked to several Teleport users ({}) through the trait {}, so the review cannot be attributed. Ask a Teleport admin to keep it on exactly one user.",
                users.iter().map(|u| code(u)).collect::<Vec<_>>().join(", "),
                code(trait_name)
            ),
            Outcome::ReviewInTeleport {
                why,
                request_id,
                action,
                link,
            } => {
                let flag = match action {
                    Action::Approve => "--approve",
                    Action::Deny => "--deny",
                };
                let mut t = format!("{why} Review it in Teleport: ");
                if let Some(l) = link {
                    t.push_str(&format!("{l} or "));
                }
                t.push_str(&code(&format!("tsh request review {flag} {request_id}")));
                t
            }
            Outcome::Failed(msg) => format!(
                "Teleport refused the review: {}",
                inline(msg.trim_end_matches('.'), 300)
            ),
        }
    }
}

/// An inline code span around `s` that `s` cannot end (names, ids, trait values).
pub fn code(s: &str) -> String {
    let inner: String = s
        .chars()
        .take(200)
        .map(|c| if c == '`' || c.is_control() { '\'' } else { c })
        .collect();
    format!("`{inner}`")
}

fn past(a: Action) -> &'static str {
    match a {
        Action::Approve => "approved",
        Action::Deny => "denied",
    }
}

/// `approvals 1/2, denials 0/1` against the strictest threshold (as the posts show it).
pub fn progress(r: &AccessRequest) -> String {
    let count = |s| r.reviews.iter().filter(|v| v.proposed_state == s).count();
    let (approve, deny) = r
        .thresholds
        .iter()
        .map(|t| (t.approve.max(1), t.deny.max(1)))
        .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
        .unwrap_or((1, 1));
    format!(
        "approvals {}/{approve}, denials {}/{deny}",
        count(RequestState::Approved),
        count(RequestState::Denied)
    )
}

/// Classifies a refused submission. `current` is the request as re-read after the refusal
/// (`None` when that read failed too), which tells resolved, deleted and self-review apart
/// whatever Teleport's wording.
pub fn classify(
    err: &TeleportError,
    author: &str,
    current: Option<Option<&AccessRequest>>,
) -> Outcome {
    if err.is_transient() {
        return Outcome::Unavailable;
    }
    if matches!(err, TeleportError::PermissionDenied(m) if m.contains(ALREADY_REVIEWED)) {
        return Outcome::AlreadyReviewed {
            author: author.to_string(),
        };
    }
    match current {
        Some(None) => return Outcome::Gone,
        Some(Some(r)) if r.state.is_resolved() => return Outcome::Resolved { state: r.state },
        Some(Some(r)) if r.user == author => return Outcome::SelfReview,
        Some(Some(r)) if r.reviews.iter().any(|v| v.author == author) => {
            return Outcome::AlreadyReviewed {
                author: author.to_string(),
            };
        }
        _ => {}
    }
    match err {
        TeleportError::PermissionDenied(m) => Outcome::NotAllowed {
            author: author.to_string(),
            reason: m.clone(),
        },
        TeleportError::NotFound(_) if current.is_none() => Outcome::Gone,
        other => Outcome::Failed(other.message().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Review, Threshold};

    fn req(user: &str, state: RequestState) -> AccessRequest {
        AccessRequest {
            id: "0193a2b4-0000".into(),
            user: user.into(),
            state,
            thresholds: vec![Threshold {
                name: "t".into(),
                approve: 2,
                deny: 1,
            }],
            ..Default::default()
        }
    }

    fn denied(m: &str) -> TeleportError {
        TeleportError::PermissionDenied(m.into())
    }

    #[test]
    fn teleport_refusals_become_the_cases_a_reviewer_understands() {
        let pending = req("alice", RequestState::Pending);
        let approved = req("alice", RequestState::Approved);
        assert_eq!(
            classify(
                &denied("user \"bob\" has already reviewed this request"),
                "bob",
                None
            ),
            Outcome::AlreadyReviewed {
                author: "bob".into()
            }
        );
        assert_eq!(
            classify(
                &denied("the access request has been already approved"),
                "bob",
                Some(Some(&approved))
            ),
            Outcome::Resolved {
                state: RequestState::Approved
            }
        );
        assert_eq!(
            classify(&TeleportError::NotFound("x".into()), "bob", Some(None)),
            Outcome::Gone
        );
        assert_eq!(
            classify(&TeleportError::NotFound("x".into()), "bob", None),
            Outcome::Gone
        );
        assert_eq!(
            classify(&denied("cannot review"), "alice", Some(Some(&pending))),
            Outcome::SelfReview
        );
        assert_eq!(
            classify(
                &denied("user \"bob\" cannot review request"),
                "bob",
                Some(Some(&pending))
            ),
            Outcome::NotAllowed {
                author: "bob".into(),
                reason: "user \"bob\" cannot review request".into()
            }
        );
        assert_eq!(
            classify(
                &TeleportError::ConnectionProblem("reset".into()),
                "bob",
                None
            ),
            Outcome::Unavailable
        );
        assert_eq!(
            classify(
                &TeleportError::BadParameter("odd".into()),
                "bob",
                Some(Some(&pending))
            ),
            Outcome::Failed("odd".into())
        );
    }

    #[test]
    fn a_review_reports_progress_against_the_strictest_threshold() {
        let mut r = req("alice", RequestState::Pending);
        r.reviews.push(Review {
            author: "bob".into(),
            proposed_state: RequestState::Approved,
            reason: String::new(),
            created: None,
            submitted_by: "access-plugin".into(),
            on_behalf: true,
        });
        let text = Outcome::Reviewed {
            author: "bob".into(),
            action: Action::Approve,
            request: Box::new(r.clone()),
        }
        .text();
        assert!(text.contains("approvals 1/2, denials 0/1"), "{text}");
        r.state = RequestState::Approved;
        let text = Outcome::Reviewed {
            author: "bob".into(),
            action: Action::Approve,
            request: Box::new(r),
        }
        .text();
        assert!(text.contains("now **APPROVED**"), "{text}");
    }

    #[test]
    fn every_refusal_says_what_to_do() {
        let unlinked = Outcome::Unlinked {
            chat_user_id: "mm1".into(),
            trait_name: "mattermost_user_id".into(),
            email_allowed: false,
        }
        .text();
        assert!(unlinked.contains("`mattermost_user_id`") && unlinked.contains("`mm1`"));
        assert!(Outcome::Unavailable.text().contains("Try again"));
        let old = Outcome::ReviewInTeleport {
            why: "In-chat review needs Teleport 18.11.".into(),
            request_id: "r1".into(),
            action: Action::Deny,
            link: Url::parse("https://tp.example.com/web/requests/r1").ok(),
        }
        .text();
        assert!(
            old.contains("https://tp.example.com/web/requests/r1"),
            "{old}"
        );
        assert!(old.contains("`tsh request review --deny r1`"), "{old}");
    }
}
