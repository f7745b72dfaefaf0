//! The one review decision. A button click, a dialog submission and `/teleport approve|deny`
//! each verify their own input and hand over one [`Attempt`]; [`Pipeline::decide`] checks it
//! in one order and submits it on behalf of the reviewer, so Teleport applies their rights,
//! thresholds and audit.
//!
//! The checks, in this order (the first that refuses answers):
//! 1. the request exists and is still pending (read from Teleport, the authority);
//! 2. it may be reviewed from chat: the cluster takes on-behalf reviews (18.11+), the request
//!    is short-term and asks for no `review.link_only_roles` role;
//! 3. the Mattermost user is bound to exactly one Teleport user;
//! 4. that user is not the requester;
//! 5. the reason meets `review.require_reason` and the length limit (a missing reason is
//!    asked for: the button opens a dialog, the dialog keeps its field open, the command
//!    says where to write it).
//!
//! Only then is the review submitted; a refusal is re-read and classified into [`Outcome`].

use url::Url;

use super::metrics::{ReviewMetrics, Source};
use super::outcome::{Outcome, classify};
use super::ports::{Directory, Requests};
use crate::access::{AccessRequest, RequestState};
use crate::config::RequireReason;
use crate::signing::Action;
use crate::teleport::client::{NewReview, PingInfo};

/// Longest reason accepted (the dialog's `max_length` and the command's limit).
pub const MAX_REASON_CHARS: usize = 1000;

/// One review attempt from Mattermost, whatever its entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The Mattermost user who clicked, submitted or typed.
    pub chat_user_id: String,
    pub request_id: String,
    pub action: Action,
    /// Trimmed; empty when none was given (a button click).
    pub reason: String,
    pub source: Source,
}

/// What came of an [`Attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A check refused, or the review was submitted: `Outcome::text` is the answer.
    Done(Outcome),
    /// Checks 1–4 passed but the reason does not meet the policy; nothing was submitted.
    /// `request` and `author` let the button open a dialog that names them.
    NeedsReason {
        problem: String,
        request: Box<AccessRequest>,
        author: String,
    },
}

/// What the cluster told us at start-up.
#[derive(Debug, Clone)]
pub struct ClusterFacts {
    pub version: String,
    /// Teleport 18.11+: reviews on behalf of another user are accepted.
    pub on_behalf: bool,
    /// `https://<proxy>/web/requests/`, when known.
    pub link_base: Option<Url>,
}

impl ClusterFacts {
    pub fn from_ping(ping: &PingInfo, link_base: Option<Url>) -> Self {
        Self {
            version: ping.server_version.clone(),
            on_behalf: ping.supports_on_behalf_reviews(),
            link_base,
        }
    }

    pub fn link(&self, request_id: &str) -> Option<Url> {
        self.link_base
            .as_ref()
            .and_then(|b| b.join(request_id).ok())
    }
}

/// The settings the checks apply besides Teleport's own rules.
#[derive(Debug, Clone)]
pub struct Policy {
    pub require_reason: RequireReason,
    pub link_only_roles: Vec<String>,
    pub cluster: ClusterFacts,
}

impl Policy {
    /// Whether this action needs a reason (`review.require_reason`).
    pub fn reason_required(&self, action: Action) -> bool {
        match self.require_reason {
            RequireReason::Never => false,
            RequireReason::Always => true,
            RequireReason::Deny => action == Action::Deny,
        }
    }

    /// What is wrong with a reason under `review.require_reason`, if anything.
    pub fn reason_problem(&self, action: Action, reason: &str) -> Option<String> {
        if reason.is_empty() && self.reason_required(action) {
            return Some(format!(
                "A reason is required to {} this request.",
                action.as_str()
            ));
        }
        let n = reason.chars().count();
        (n > MAX_REASON_CHARS).then(|| {
            format!("The reason has {n} characters; at most {MAX_REASON_CHARS} are allowed.")
        })
    }

    /// Why this request cannot be reviewed from chat at all, if so.
    pub fn in_teleport_only(
        &self,
        request_id: &str,
        roles: &[String],
        long_term: bool,
        action: Action,
    ) -> Option<Outcome> {
        let why = if !self.cluster.on_behalf {
            format!(
                "In-chat review needs Teleport 18.11 or newer (reviews on behalf of a user); this cluster runs {}.",
                self.cluster.version
            )
        } else if long_term {
            "This is a long-term (access list) request, which is reviewed in Teleport only.".into()
        } else if let Some(r) = roles.iter().find(|r| self.link_only_roles.contains(r)) {
            format!("Requests for the role `{r}` are reviewed in Teleport only.")
        } else {
            return None;
        };
        Some(Outcome::ReviewInTeleport {
            why,
            request_id: request_id.to_string(),
            action,
            link: self.cluster.link(request_id),
        })
    }
}

/// The checks and the submission, over a Teleport port and a directory port.
pub struct Pipeline<T, D> {
    teleport: T,
    directory: D,
    policy: Policy,
    metrics: ReviewMetrics,
}

impl<T: Requests, D: Directory> Pipeline<T, D> {
    pub fn new(teleport: T, directory: D, policy: Policy, metrics: ReviewMetrics) -> Self {
        Self {
            teleport,
            directory,
            policy,
            metrics,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The Teleport user bound to a Mattermost user (what `pending`, `show` and `explain`
    /// need before they answer), or the outcome to show instead.
    pub async fn identify(&self, chat_user_id: &str) -> Result<String, Outcome> {
        self.directory.identify(chat_user_id).await
    }

    /// Runs the checks in the order of the module header, then submits. Every answer but
    /// [`Decision::NeedsReason`] is counted in the reviews metric by source and outcome.
    pub async fn decide(&self, attempt: &Attempt) -> Decision {
        let (request, author) = match self.check(attempt).await {
            Ok(passed) => passed,
            Err(refused) => {
                self.metrics.review(attempt.source, refused.label());
                return Decision::Done(refused);
            }
        };
        if let Some(problem) = self.policy.reason_problem(attempt.action, &attempt.reason) {
            return Decision::NeedsReason {
                problem,
                request: Box::new(request),
                author,
            };
        }
        Decision::Done(self.submit(attempt, &author).await)
    }

    /// Checks 1–4: the request as read, and the reviewer's Teleport user.
    async fn check(&self, a: &Attempt) -> Result<(AccessRequest, String), Outcome> {
        let request = match self.teleport.get(&a.request_id).await {
            Ok(Some(r)) => r,
            // Teleport deletes a request when it expires.
            Ok(None) => return Err(Outcome::Gone),
            Err(e) if e.is_transient() => return Err(Outcome::Unavailable),
            Err(e) => {
                tracing::warn!(request_id = %a.request_id, error = %e, "reading a request to review failed");
                return Err(Outcome::Failed(e.message().to_string()));
            }
        };
        if request.state.is_resolved() {
            return Err(Outcome::Resolved {
                state: request.state,
            });
        }
        if let Some(refused) = self.policy.in_teleport_only(
            &request.id,
            &request.roles,
            request.is_long_term(),
            a.action,
        ) {
            return Err(refused);
        }
        let author = self.directory.identify(&a.chat_user_id).await?;
        if author == request.user {
            return Err(Outcome::SelfReview);
        }
        Ok((request, author))
    }

    /// Submits `author`'s review on their behalf and classifies Teleport's answer. Never
    /// retried: a second attempt after a lost answer would only meet "already reviewed".
    async fn submit(&self, a: &Attempt, author: &str) -> Outcome {
        let review = NewReview {
            author: author.to_string(),
            proposed_state: match a.action {
                Action::Approve => RequestState::Approved,
                Action::Deny => RequestState::Denied,
            },
            reason: a.reason.trim().to_string(),
            on_behalf: true,
        };
        let outcome = match self.teleport.submit(&a.request_id, &review).await {
            Ok(request) => Outcome::Reviewed {
                author: author.to_string(),
                action: a.action,
                request: Box::new(request),
            },
            Err(e) if e.is_transient() => {
                tracing::warn!(request_id = %a.request_id, error = %e, "submitting a review failed: Teleport unreachable");
                Outcome::Unavailable
            }
            Err(e) => {
                // Re-read the request so the reviewer hears "already approved" or "your own
                // request" whatever Teleport's wording.
                let current = self.teleport.get(&a.request_id).await.ok();
                classify(&e, author, current.as_ref().map(Option::as_ref))
            }
        };
        self.metrics.review(a.source, outcome.label());
        tracing::info!(
            request_id = %a.request_id,
            teleport.author = %author,
            review.action = a.action.as_str(),
            review.source = a.source.as_str(),
            review.outcome = outcome.label(),
            "review from Mattermost"
        );
        outcome
    }
}
