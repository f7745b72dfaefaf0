//! Reviewing from Mattermost: signed buttons and dialogs, the `/teleport` slash command, and
//! submitting reviews on behalf of the clicker's Teleport user (Teleport decides).
//!
//! - [`command`]: the slash command's parser; [`slash`]: running it.
//! - [`buttons`]: clicks and reason dialogs; [`identity`]: Mattermost user → Teleport user.
//! - [`service`]: shared state and on-behalf submission; [`outcome`]: results and their texts.

pub mod buttons;
pub mod command;
pub mod identity;
pub mod metrics;
pub mod outcome;
pub mod service;
pub mod slash;

pub use metrics::{ReviewMetrics, Source};
pub use outcome::Outcome;
pub use service::{ClusterFacts, ReviewParts, ReviewService};

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
