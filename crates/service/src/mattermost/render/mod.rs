//! What the service posts: the root post of an access request (upstream's fields and wording,
//! plus resources, cluster, duration and review progress, and optional buttons), review thread
//! replies and the requester's direct message. Input is [`RequestView`], which the bridge
//! builds from its domain types; every user-supplied string is escaped here.

pub mod escape;
mod post;
mod remind;
mod reply;

use super::model::Props;
use time::OffsetDateTime;
use url::Url;

pub use escape::{REASON_LIMIT, markdown_escape};
pub use post::{human, root_message, root_post, root_props};
pub use remind::{Ending, expiry_notice, reminder_reply};
pub use reply::{requester_dm, review_reply};

/// Our posts stay under Mattermost's oldest limit (4000 runes; current servers allow 16383),
/// so they fit on any server.
pub const MAX_POST_CHARS: usize = 4000;

/// An access request as the renderer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub id: String,
    /// The requesting Teleport user.
    pub user: String,
    pub roles: Vec<String>,
    /// Friendly resource names (`node/web-1`), when the request is for resources.
    pub resources: Vec<String>,
    pub request_reason: Option<String>,
    pub cluster: Option<String>,
    pub created: OffsetDateTime,
    /// When the granted access would end.
    pub access_expires: Option<OffsetDateTime>,
    /// The requested end of elevated sessions, when set; shown instead of `access_expires`.
    pub max_duration: Option<OffsetDateTime>,
    pub status: Status,
    pub resolve_reason: Option<String>,
    /// Reviews so far and the thresholds; shown once there is at least one review.
    pub reviews: Option<ReviewProgress>,
    /// `https://<proxy>/web/requests/<id>`; without it the post shows `tsh` commands.
    pub link: Option<Url>,
    /// Approve/Deny buttons (message attachment actions); `None` removes them.
    pub buttons: Option<Vec<ActionButton>>,
    /// For a promoted request: the access list it was promoted to.
    pub promoted_list_title: Option<String>,
    /// Pending this long at the last reminder: `⏰ waiting 2h` beside the status.
    pub waiting: Option<time::Duration>,
    /// Posted to the escalation recipients too: `escalated` beside the status.
    pub escalated: bool,
}

/// The request state shown in posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    Promoted,
}

impl Status {
    /// Upstream's emoji; PROMOTED has none.
    pub fn emoji(self) -> Option<&'static str> {
        match self {
            Status::Pending => Some("⏳"),
            Status::Approved => Some("✅"),
            Status::Denied => Some("❌"),
            Status::Expired => Some("⌛"),
            Status::Promoted => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Approved => "APPROVED",
            Status::Denied => "DENIED",
            Status::Expired => "EXPIRED",
            Status::Promoted => "PROMOTED",
        }
    }

    /// `✅ APPROVED`, or just `PROMOTED`.
    pub fn text(self) -> String {
        match self.emoji() {
            Some(e) => format!("{e} {}", self.label()),
            None => self.label().to_string(),
        }
    }

    /// The colour of the root post's attachment: the state at a glance.
    fn color(self) -> &'static str {
        match self {
            Status::Pending => "#F2A900",
            Status::Approved => "#2EB886",
            Status::Denied => "#D24B4E",
            Status::Expired => "#8A8A8A",
            Status::Promoted => "#2389D7",
        }
    }
}

/// Review counts against the thresholds (`None` when the threshold is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReviewProgress {
    pub approvals: u32,
    pub approvals_needed: Option<u32>,
    pub denials: u32,
    pub denials_needed: Option<u32>,
}

/// A button on the root post. `context` comes back verbatim in the click request (signed by
/// the caller; Mattermost keeps it from clients but does not sign it).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionButton {
    /// Letters and digits only (others are dropped), unique in the post.
    pub id: String,
    pub name: String,
    pub style: ButtonStyle,
    /// Where Mattermost POSTs the click.
    pub url: Url,
    pub context: Props,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonStyle {
    Default,
    Primary,
    Success,
    Good,
    Warning,
    Danger,
}

impl ButtonStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            ButtonStyle::Default => "default",
            ButtonStyle::Primary => "primary",
            ButtonStyle::Success => "success",
            ButtonStyle::Good => "good",
            ButtonStyle::Warning => "warning",
            ButtonStyle::Danger => "danger",
        }
    }
}

/// A review as shown in a thread reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewView {
    pub author: String,
    pub created: OffsetDateTime,
    /// The state the review proposes (approved or denied).
    pub proposed: Status,
    pub reason: Option<String>,
    /// Reviews proposing the same state so far, this one included.
    pub count: u32,
    /// How many such reviews resolve the request, when known.
    pub needed: Option<u32>,
}

/// A root post ready to send: `message` for the text, `props` for attachments (an empty
/// object when there are no buttons, so an update also removes old buttons).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPost {
    pub message: String,
    pub props: Props,
}

impl RenderedPost {
    /// The create-post body for `channel_id`.
    pub fn new_post(&self, channel_id: &str) -> super::model::NewPost {
        super::model::NewPost::new(channel_id, self.message.clone()).with_props(self.props.clone())
    }

    /// The `PUT /posts/{id}` body: message and props together, as the endpoint requires.
    pub fn update(&self, post_id: &str) -> super::model::PostUpdate {
        super::model::PostUpdate {
            id: post_id.to_string(),
            message: self.message.clone(),
            props: Some(self.props.clone()),
        }
    }
}

/// Go's RFC822 layout (`02 Jan 06 15:04 MST`), in UTC, as upstream prints review times.
pub fn rfc822(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[day] [month repr:short] [year repr:last_two] [hour]:[minute] UTC"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests;
