//! The review service: what the Mattermost callbacks share (clients, signer, user index,
//! settings), identifying the person behind a Mattermost user id, and submitting a review on
//! their behalf so that Teleport applies their rights, thresholds and audit.

use std::sync::Arc;

use url::Url;

use super::identity::{Binding, UserIndex};
use super::metrics::{ReviewMetrics, Source};
use super::outcome::{Outcome, classify};
use super::signing::{Action, Signer};
use crate::access::{AccessRequest, RequestState};
use crate::config::{RequireReason, ReviewConfig};
use crate::mattermost::MattermostClient;
use crate::route::Routing;
use crate::teleport::client::{NewReview, PingInfo};
use crate::teleport::{TeleportClient, TeleportError};

/// How long a reason dialog may stay open before its state is refused.
pub const DIALOG_TTL_SECS: i64 = 15 * 60;
/// Longest reason accepted (the dialog's `max_length` and the command's limit).
pub const MAX_REASON_CHARS: usize = 1000;

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

/// Everything [`ReviewService::new`] needs.
pub struct ReviewParts {
    pub teleport: TeleportClient,
    pub mattermost: MattermostClient,
    pub config: ReviewConfig,
    /// `<public_addr>/mattermost/dialog`.
    pub dialog_url: Url,
    /// The bridge's routing (live rule cache), for `/teleport explain`.
    pub routing: Arc<Routing>,
    pub cluster: ClusterFacts,
    pub metrics: ReviewMetrics,
}

/// Cheap to share: the HTTP handlers hold it behind an `Arc`.
pub struct ReviewService {
    pub(crate) teleport: TeleportClient,
    pub(crate) mattermost: MattermostClient,
    pub(crate) signer: Signer,
    pub(crate) config: ReviewConfig,
    pub(crate) dialog_url: Url,
    pub(crate) routing: Arc<Routing>,
    pub(crate) cluster: ClusterFacts,
    pub(crate) index: UserIndex,
    pub(crate) metrics: ReviewMetrics,
}

impl std::fmt::Debug for ReviewService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewService")
            .field("cluster", &self.cluster)
            .field("dialog_url", &self.dialog_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The review service cannot run without a signing secret (config validation requires one
/// when review is enabled).
#[derive(Debug, thiserror::Error)]
#[error("`review.signing_secret` is not set; it is required when `review.enabled = true`")]
pub struct MissingSecret;

impl ReviewService {
    pub fn new(parts: ReviewParts) -> Result<Self, MissingSecret> {
        let signer = Signer::new(parts.config.signing_secret.clone().ok_or(MissingSecret)?);
        Ok(Self {
            index: UserIndex::new(&parts.config.user_id_trait),
            teleport: parts.teleport,
            mattermost: parts.mattermost,
            signer,
            config: parts.config,
            dialog_url: parts.dialog_url,
            routing: parts.routing,
            cluster: parts.cluster,
            metrics: parts.metrics,
        })
    }

    pub fn metrics(&self) -> &ReviewMetrics {
        &self.metrics
    }

    /// Whether this action needs a reason (`review.require_reason`).
    pub fn reason_required(&self, action: Action) -> bool {
        match self.config.require_reason {
            RequireReason::Never => false,
            RequireReason::Always => true,
            RequireReason::Deny => action == Action::Deny,
        }
    }

    /// The Teleport user bound to a Mattermost user id, or the outcome to show instead.
    pub async fn identify(&self, chat_user_id: &str) -> Result<String, Outcome> {
        let teleport = &self.teleport;
        let snapshot = self
            .index
            .snapshot(chat_user_id, || teleport.list_users())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "listing Teleport users to identify a reviewer failed");
                if e.is_transient() {
                    Outcome::Unavailable
                } else {
                    Outcome::Failed(format!(
                        "the service cannot list Teleport users ({}); ask an admin to give its role `list` and `read` on `user`",
                        e.message()
                    ))
                }
            })?;
        let binding = match snapshot.by_trait(chat_user_id) {
            Binding::Unlinked if self.config.allow_email_username_match => {
                self.by_email(&snapshot, chat_user_id).await?
            }
            b => b,
        };
        match binding {
            Binding::User(name) => Ok(name),
            Binding::Unlinked => Err(Outcome::Unlinked {
                chat_user_id: chat_user_id.to_string(),
                trait_name: self.config.user_id_trait.clone(),
                email_allowed: self.config.allow_email_username_match,
            }),
            Binding::Ambiguous(users) => {
                tracing::warn!(mattermost.user_id = %chat_user_id, teleport.users = ?users, "several Teleport users carry the same Mattermost user id; refusing the review");
                Err(Outcome::Ambiguous {
                    users,
                    trait_name: self.config.user_id_trait.clone(),
                })
            }
        }
    }

    async fn by_email(
        &self,
        snapshot: &super::identity::Snapshot,
        chat_user_id: &str,
    ) -> Result<Binding, Outcome> {
        match self.mattermost.user_by_id(chat_user_id).await {
            Ok(u) if u.is_bot || u.delete_at != 0 => Ok(Binding::Unlinked),
            Ok(u) => Ok(snapshot.by_email(&u.email, chat_user_id)),
            Err(e) if e.is_transient() => Err(Outcome::Unavailable),
            Err(e) => {
                tracing::warn!(mattermost.user_id = %chat_user_id, error = %e, "looking up a reviewer's e-mail in Mattermost failed");
                Ok(Binding::Unlinked)
            }
        }
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
        } else if let Some(r) = roles
            .iter()
            .find(|r| self.config.link_only_roles.contains(r))
        {
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

    /// Submits `author`'s review on their behalf and classifies Teleport's answer. Never
    /// retried: a second attempt after a lost answer would only meet "already reviewed".
    pub async fn submit(
        &self,
        source: Source,
        request_id: &str,
        author: &str,
        action: Action,
        reason: &str,
    ) -> Outcome {
        let review = NewReview {
            author: author.to_string(),
            proposed_state: match action {
                Action::Approve => RequestState::Approved,
                Action::Deny => RequestState::Denied,
            },
            reason: reason.trim().to_string(),
            on_behalf: true,
        };
        let outcome = match self.teleport.submit_review(request_id, &review).await {
            Ok(request) => Outcome::Reviewed {
                author: author.to_string(),
                action,
                request: Box::new(request),
            },
            Err(e) => self.explain_refusal(&e, request_id, author).await,
        };
        self.record(source, &outcome);
        tracing::info!(
            request_id = %request_id,
            teleport.author = %author,
            review.action = action.as_str(),
            review.source = source.as_str(),
            review.outcome = outcome.label(),
            "review from Mattermost"
        );
        outcome
    }

    pub fn record(&self, source: Source, outcome: &Outcome) {
        self.metrics.review(source, outcome.label());
    }

    async fn explain_refusal(&self, e: &TeleportError, request_id: &str, author: &str) -> Outcome {
        if e.is_transient() {
            tracing::warn!(request_id = %request_id, error = %e, "submitting a review failed: Teleport unreachable");
            return Outcome::Unavailable;
        }
        // Re-read the request so the reviewer hears "already approved" or "your own
        // request" whatever Teleport's wording.
        let current = self.teleport.get_access_request(request_id).await.ok();
        classify(e, author, current.as_ref().map(Option::as_ref))
    }

    /// The request with this id (`None` when it does not exist).
    pub async fn request(&self, id: &str) -> Result<Option<AccessRequest>, TeleportError> {
        self.teleport.get_access_request(id).await
    }
}
