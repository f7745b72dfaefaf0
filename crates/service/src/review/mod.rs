//! Reviewing from Mattermost: signed buttons and dialogs, the `/teleport` slash command, and
//! submitting reviews on behalf of the clicker's Teleport user (Teleport decides).
//!
//! - [`pipeline`]: the one review decision (checks in one order, then the submission);
//!   [`ports`]: what it needs from Teleport and the user directory.
//! - [`buttons`]: clicks and reason dialogs; [`command`]: the slash command's parser;
//!   [`slash`]: running it. Each verifies its input and hands the pipeline one attempt.
//! - [`identity`]: Mattermost user → Teleport user; [`outcome`]: results and their texts.
//! - [`service`]: the three entry points built from the validated config.

pub mod buttons;
pub mod command;
pub mod identity;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod ports;
pub mod service;
pub mod slash;

#[cfg(test)]
mod pipeline_tests;

pub use metrics::{ReviewMetrics, Source};
pub use outcome::Outcome;
pub use pipeline::{Attempt, ClusterFacts, Decision, Pipeline, Policy};
pub use service::{ReviewParts, ReviewService};

/// Why a callback is refused before any review work; the HTTP layer turns each into a
/// status (400, 401, 403) with a short text that never echoes the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The body is not what Mattermost sends.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Missing, forged or expired signature, a wrong token, or a dialog state replayed by
    /// another user. No details: the caller is not trusted.
    #[error("unauthorized")]
    Unauthorized,
    /// Signed, but not for this post.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
}

/// Counts and logs a callback refused as unauthenticated; the caller learns nothing more.
pub(crate) fn unauthorized(
    metrics: &ReviewMetrics,
    route: &str,
    reason: &'static str,
) -> CallbackError {
    metrics.refused(route, reason);
    tracing::warn!(
        http.route = route,
        reason,
        "refused an unauthenticated Mattermost callback (bad or expired signature, wrong token, or another user's dialog)"
    );
    CallbackError::Unauthorized
}
