//! What Mattermost sends to this service and what it accepts back: button clicks
//! (`PostActionIntegrationRequest`/`Response`), dialog submissions and slash commands
//! (docs/mattermost-api.md: buttons, dialogs, slash command). Mattermost signs none of them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model::Attachment;

/// The JSON body Mattermost POSTs to a button's `integration.url`. `user_id` is set by the
/// server from the clicker's session; `context` is the button's, returned verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostActionRequest {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub channel_name: String,
    /// Empty in direct and group channels.
    pub team_id: String,
    pub team_domain: String,
    pub post_id: String,
    /// Opens a dialog within 30 s.
    pub trigger_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data_source: String,
    pub context: Value,
}

/// The reply to a click. `update` replaces the post's message and (unless `props` is null) its
/// props; `ephemeral_text` is shown to the clicker only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostActionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<PostActionUpdate>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ephemeral_text: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_slack_parsing: bool,
}

/// The post replacement in a click reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostActionUpdate {
    pub message: String,
    /// `None` keeps the stored props; `{}` clears them; anything else replaces them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<Value>,
}

/// The JSON body Mattermost POSTs to a dialog's `url`. `callback_id` and `state` come back
/// from the browser and may be forged; `user_id` is server-set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogSubmission {
    #[serde(rename = "type")]
    pub kind: String,
    pub callback_id: String,
    pub state: String,
    pub user_id: String,
    pub channel_id: String,
    pub team_id: String,
    pub submission: Map<String, Value>,
    pub cancelled: bool,
}

/// The reply to a dialog submission: empty closes the dialog; `errors` marks fields;
/// `error` shows a general error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogSubmissionReply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub errors: Map<String, Value>,
}

/// The form fields of a custom slash command request (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandRequest {
    pub token: String,
    pub team_id: String,
    pub team_domain: String,
    pub channel_id: String,
    pub channel_name: String,
    pub user_id: String,
    pub user_name: String,
    pub command: String,
    pub text: String,
    pub trigger_id: String,
    pub response_url: String,
}

/// The JSON reply to a slash command. There is no `update` here (that exists only for clicks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandResponse {
    /// `ephemeral` (default, only the caller sees it) or `in_channel`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub response_type: String,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub goto_location: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_slack_parsing: bool,
}
