//! What the bridge needs from Teleport (plugin data with compare-and-swap) and Mattermost
//! (resolve, post, update), as small traits: the real clients implement them, and the
//! processor's exactly-once logic is unit-tested against in-memory fakes.

use std::future::Future;
use std::time::Duration;

use crate::access::RawData;
use crate::route::Recipient;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Compare-and-swap lost: someone else wrote first.
    #[error("compare-and-swap conflict")]
    Conflict,
    /// The resource (access request, access list) no longer exists.
    #[error("resource not found")]
    NotFound,
    /// Temporary (unavailable, timeout, 5xx); `after` is the server's requested wait.
    #[error("temporary failure: {reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Held back by Mattermost's rate limit until `after` from now: not a failure, so it does
    /// not use up the event's retry budget.
    #[error("held back by Mattermost's rate limit for {after:?}")]
    Throttled { after: Duration },
    /// Retrying will not help (permission, bad request, too large).
    #[error("{0}")]
    Fatal(String),
}

/// Teleport plugin data of one resource (an access request, or an access list for the
/// review reminders), for this plugin: the service's one plugin-data port (every
/// compare-and-swap write goes through it).
pub trait Store: Send + Sync + 'static {
    /// The plugin's entry for the request; `None` when it has none.
    fn get(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<RawData>, PortError>> + Send;
    /// Teleport's `UpdatePluginData`: `expect` is compared key by key (`""` = absent, and
    /// with no entry every expected value must be `""`), a mismatch is
    /// [`PortError::Conflict`]; then `set` is applied (`""` deletes the key).
    fn update(
        &self,
        request_id: &str,
        set: RawData,
        expect: RawData,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A message body: markdown text plus props (attachments with buttons), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub message: String,
    /// Post props as JSON object text, passed through to the chat unchanged (the port
    /// carries no chat model; the Mattermost adapter turns it into its `Props`).
    pub props: Option<String>,
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
    /// Adds the bot's reaction (an emoji name such as `white_check_mark`) to a post.
    fn react(
        &self,
        post_id: &str,
        emoji: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
