//! What the bridge needs from Teleport (plugin data with compare-and-swap) and Mattermost
//! (resolve, post, update), as small traits: the real clients implement them, and the
//! processor's exactly-once logic is unit-tested against in-memory fakes.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::mattermost::model::Props;
use crate::route::Recipient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    /// Compare-and-swap lost: someone else wrote first.
    Conflict,
    /// The access request no longer exists.
    NotFound,
    /// Temporary (unavailable, timeout, 5xx); `after` is the server's requested wait.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Held back by Mattermost's rate limit until `after` from now: not a failure, so it does
    /// not use up the event's retry budget.
    Throttled { after: Duration },
    /// Retrying will not help (permission, bad request, too large).
    Fatal(String),
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortError::Conflict => f.write_str("compare-and-swap conflict"),
            PortError::NotFound => f.write_str("access request not found"),
            PortError::Retry { reason, .. } => write!(f, "temporary failure: {reason}"),
            PortError::Throttled { after } => {
                write!(f, "held back by Mattermost's rate limit for {after:?}")
            }
            PortError::Fatal(m) => f.write_str(m),
        }
    }
}

pub type Map = BTreeMap<String, String>;

/// Teleport plugin data of one access request, for this plugin.
pub trait Store: Send + Sync + 'static {
    fn get(&self, request_id: &str) -> impl Future<Output = Result<Option<Map>, PortError>> + Send;
    /// `expect` is compared key by key ("" = absent); `""` in `set` deletes the key.
    fn update(
        &self,
        request_id: &str,
        set: Map,
        expect: Map,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A message body: markdown text plus props (attachments with buttons), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub message: String,
    pub props: Option<Props>,
}

impl Body {
    pub fn text(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            props: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPost {
    pub channel_id: String,
    pub root_id: Option<String>,
    pub body: Body,
    /// Stable across retries and replicas: Mattermost's `pending_post_id` dedup key.
    pub idempotency_key: String,
}

pub trait Chat: Send + Sync + 'static {
    /// The channel id for a recipient; `Ok(None)` when it does not exist (skipped with a warning).
    fn resolve(
        &self,
        recipient: &Recipient,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// Creates a post and returns its id.
    fn post(&self, post: NewPost) -> impl Future<Output = Result<String, PortError>> + Send;
    /// Replaces a post's message and props.
    fn update(
        &self,
        channel_id: &str,
        post_id: &str,
        body: Body,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
