//! Mattermost REST v4 JSON shapes: what the client reads (decoded leniently, since real
//! servers send more fields than the API description lists) and the bodies it sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Post props as sent: JSON text serialized once from typed data, copied as is into each
/// request body. (A `Value` tree costs an allocation per key and node to build, serialize
/// and drop, and the bridge sends props with every root post and update.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Props(Box<RawValue>);

impl Props {
    /// `{}`: replaces stored props with none (an update that removes old buttons).
    pub fn empty() -> Self {
        Self(RawValue::from_string("{}".to_owned()).expect("`{}` is JSON"))
    }

    /// Serializes `value`; fails only for data JSON cannot hold (e.g. non-string map keys).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON text, moved out without copying.
    pub fn into_json(self) -> String {
        Box::<str>::from(self.0).into()
    }

    /// Takes JSON text as is (checked to be JSON, not re-serialized).
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(Self)
    }

    /// As a `Value`, for inspection.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl Default for Props {
    fn default() -> Self {
        Self::empty()
    }
}

/// Equal when the JSON is equal (key order and spacing aside).
impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl From<Value> for Props {
    fn from(v: Value) -> Self {
        // A `Value`'s keys are strings, so it always serializes.
        Self::of(&v).unwrap_or_else(|_| Self::empty())
    }
}

/// `model.User` (the fields this service uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub username: String,
    /// Empty when the server hides e-mail addresses from the bot.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub nickname: String,
    pub is_bot: bool,
    pub roles: String,
    /// Non-zero for deactivated users.
    pub delete_at: i64,
}

/// `model.Team`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `O` (open) or `I` (invite only).
    #[serde(rename = "type")]
    pub kind: String,
    pub delete_at: i64,
}

/// `model.Channel`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Channel {
    pub id: String,
    /// Empty for direct and group channels.
    pub team_id: String,
    /// `O` open, `P` private, `D` direct, `G` group.
    #[serde(rename = "type")]
    pub kind: String,
    /// For a direct channel: `<user id>__<user id>`, sorted.
    pub name: String,
    pub display_name: String,
    pub delete_at: i64,
}

/// `model.Post`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Post {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    pub user_id: String,
    pub channel_id: String,
    /// The thread root for a reply, empty for a root post.
    pub root_id: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Free-form; `attachments` holds message attachments with buttons.
    pub props: Value,
    /// Echoed on a fresh create; empty when the server answers a duplicate from its cache.
    pub pending_post_id: String,
    pub is_pinned: bool,
}

/// `PostList`: posts by id, and their order (newest first).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PostList<P = Post> {
    pub order: Vec<String>,
    pub posts: std::collections::HashMap<String, P>,
}

/// A post as a takeover's listing reads it: who made it, when, and this service's marker
/// (props key `teleport_mattermost`), nothing else. The rest of a post (message, attachments
/// with buttons) is skipped unparsed, which matters when a busy channel is paged through.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ListedPost {
    pub id: String,
    pub create_at: i64,
    pub delete_at: i64,
    pub user_id: String,
    pub props: ListedProps,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ListedProps {
    /// The marker as JSON, decoded by its owner (the bridge).
    pub teleport_mattermost: Option<serde_json::Value>,
}

/// A post to create with `POST /api/v4/posts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewPost {
    pub channel_id: String,
    pub message: String,
    /// Makes the post a thread reply; must be the id of a root post.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<Props>,
    /// Mattermost's de-duplication key. Leave `None` and the client generates one per
    /// logical post, reused across its retries; set it to keep one key across your own retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_post_id: Option<String>,
}

impl NewPost {
    pub fn new(channel_id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            message: message.into(),
            ..Self::default()
        }
    }

    pub fn reply_to(mut self, root_id: impl Into<String>) -> Self {
        self.root_id = Some(root_id.into());
        self
    }

    pub fn with_props(mut self, props: impl Into<Props>) -> Self {
        self.props = Some(props.into());
        self
    }
}

/// Body of `PUT /api/v4/posts/{id}`: the server blanks omitted fields, so the message is always
/// sent; `props: None` keeps the stored props, `Some` replaces them whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostUpdate {
    pub id: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<Props>,
}

/// Body of `PUT /api/v4/posts/{id}/patch`: only the given fields change (`props` whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PostPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<Props>,
}

/// Body of `POST /api/v4/actions/dialogs/open`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenDialog {
    /// From a button click or slash command; valid for 30 s.
    pub trigger_id: String,
    /// Where Mattermost posts the submission.
    pub url: String,
    pub dialog: Dialog,
}

/// An interactive dialog (docs/mattermost-api.md, "Interactive dialogs").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dialog {
    pub callback_id: String,
    /// At most 24 characters.
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub introduction_text: String,
    pub elements: Vec<DialogElement>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub submit_label: String,
    pub notify_on_cancel: bool,
    /// Echoed back by the client: visible and forgeable, so it must carry its own signature.
    pub state: String,
}

/// One input of a dialog.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DialogElement {
    pub display_name: String,
    pub name: String,
    /// `text`, `textarea`, `select`, `bool`, `radio`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub placeholder: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub help_text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default: String,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// Body of `POST /api/v4/reactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewReaction {
    pub user_id: String,
    pub post_id: String,
    pub emoji_name: String,
}

/// A message attachment (Slack style) in `props.attachments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub fallback: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

/// A button of an attachment. Mattermost strips `integration` before sending a post to clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Action {
    /// Letters and digits only, unique in the post.
    pub id: String,
    /// `button` (or `select`).
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// `default`, `primary`, `success`, `good`, `warning`, `danger` or `#rrggbb`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub style: String,
    pub integration: Integration,
}

/// Where Mattermost posts a click, and the context it sends back verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Integration {
    pub url: String,
    pub context: Props,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_post_with_unknown_fields_and_null_props() {
        let p: Post = serde_json::from_str(
            r#"{"id":"p1","channel_id":"c1","message":"hi","props":null,"reply_count":3,"metadata":{}}"#,
        )
        .unwrap();
        assert_eq!(p.id, "p1");
        assert!(p.props.is_null());
    }

    #[test]
    fn a_reply_body_carries_root_id_and_omits_unset_fields() {
        let body = serde_json::to_value(NewPost::new("c1", "m").reply_to("r1")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"channel_id":"c1","message":"m","root_id":"r1"})
        );
    }
}
