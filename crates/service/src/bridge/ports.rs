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
    /// Sent, but no answer came (a timeout, a lost connection): it may have taken effect.
    /// A create that ends so is looked for (see [`Marker`]) before it is sent again.
    #[error("no answer, the outcome is unknown: {0}")]
    Uncertain(String),
    /// Mattermost refused the bot token (401): nothing works until the token is fixed (or a
    /// proxy in front of Mattermost recovers), so the work is retried with backoff and the
    /// service reports itself not ready meanwhile.
    #[error("{0}")]
    Unauthorized(String),
    /// Retrying will not help (permission, bad request, too large).
    #[error("{0}")]
    Fatal(String),
}

impl PortError {
    /// Whether trying again soon may succeed without anyone changing anything (a refused
    /// token counts: it is usually a rotation or a proxy's hiccup). The others wait for the
    /// next event or resync.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            PortError::Retry { .. }
                | PortError::Throttled { .. }
                | PortError::Uncertain(_)
                | PortError::Unauthorized(_)
                | PortError::Conflict
        )
    }
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

/// Post props key of the [`Marker`].
pub const MARKER_KEY: &str = "teleport_mattermost";

/// Which post of which request a post is: written into every post's props (and kept by every
/// update), so a replica that takes over interrupted work recognises the posts its
/// predecessor made but never recorded, and adopts them instead of posting again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub request_id: String,
    /// The channel the post is for.
    pub channel_id: String,
    #[serde(flatten)]
    pub kind: MarkerKind,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MarkerKind {
    Root,
    /// The thread reply for the request's `review`-th review (from 0).
    Reply {
        review: u32,
    },
    /// The direct message telling the requester the outcome.
    Requester,
    /// The thread reply reminding the reviewers `after` seconds after the request was made.
    Reminder {
        after: u64,
    },
    /// The requester's direct message before their request expires (`access: false`) or
    /// their access ends (`access: true`).
    Expiry {
        access: bool,
    },
}

impl MarkerKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            MarkerKind::Root => "root",
            MarkerKind::Reply { .. } => "reply",
            MarkerKind::Requester => "requester",
            MarkerKind::Reminder { .. } => "reminder",
            MarkerKind::Expiry { .. } => "expiry_notice",
        }
    }
}

impl Marker {
    pub fn new(request_id: &str, channel_id: &str, kind: MarkerKind) -> Self {
        Self {
            request_id: request_id.into(),
            channel_id: channel_id.into(),
            kind,
        }
    }

    /// `body` with this marker added to its props. Spliced into the JSON text: props are
    /// large (attachments with buttons) and always an object, so no parse and re-encode.
    pub fn mark(&self, mut body: Body) -> Body {
        let value = serde_json::to_string(self).expect("a marker is plain data");
        let member = format!("\"{MARKER_KEY}\":{value}");
        body.props = Some(match body.props.as_deref().map(str::trim_start) {
            Some(props) if props.starts_with('{') => {
                let rest = props[1..].trim_start();
                if rest.starts_with('}') {
                    format!("{{{member}}}")
                } else {
                    format!("{{{member},{rest}")
                }
            }
            _ => format!("{{{member}}}"),
        });
        body
    }

    /// The marker in a post's props, if it has one.
    pub fn of_props(props: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(props.get(MARKER_KEY)?.clone()).ok()
    }
}

/// A marked post of the bot's, found by [`Chat::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub post_id: String,
    pub marker: Marker,
}

/// Where [`Chat::find`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// The channel's posts created at or after `since` (Unix milliseconds).
    Channel { channel_id: &'a str, since: u64 },
    /// The replies in a thread.
    Thread { root_id: &'a str },
}

pub trait Chat: Send + Sync + 'static {
    /// The channel id for a recipient; `Ok(None)` when it does not exist (skipped with a warning).
    fn resolve(
        &self,
        recipient: &Recipient,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// Creates a post and returns its id.
    fn post(&self, post: NewPost) -> impl Future<Output = Result<String, PortError>> + Send;
    /// The bot's marked posts in a place. Only a replica taking over interrupted work looks:
    /// never the common path.
    fn find(&self, place: Place<'_>) -> impl Future<Output = Result<Vec<Found>, PortError>> + Send;
    /// Replaces a post's message and props.
    fn update(
        &self,
        channel_id: &str,
        post_id: &str,
        body: Body,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The Mattermost username of a Teleport user (by e-mail when the name is one, else the
    /// same name), for `@mentions`; `None` when they have no account. Cosmetic: the default
    /// mentions nobody.
    fn username(
        &self,
        _teleport_user: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send {
        async { Ok(None) }
    }
    /// Adds the bot's reaction (an emoji name such as `white_check_mark`) to a post.
    fn react(
        &self,
        post_id: &str,
        emoji: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
