//! The simulator's records and their JSON as Mattermost serves it (the same field names and
//! types as `model.User`, `model.Team`, `model.Channel`, `model.Post`).

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    pub id: String,
    pub username: String,
    /// Lower-case, as Mattermost stores it.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub nickname: String,
    pub is_bot: bool,
    /// `system_user` or `system_user system_admin`.
    pub roles: String,
    pub create_at: i64,
    pub delete_at: i64,
}

impl SimUser {
    pub fn is_admin(&self) -> bool {
        self.roles.split(' ').any(|r| r == "system_admin")
    }

    /// The user as served to a viewer; the e-mail is blanked when the server hides e-mails
    /// from that viewer (Mattermost's sanitizing), except for the viewer's own record.
    pub fn to_json(&self, show_email: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": self.delete_at,
            "username": self.username,
            "auth_data": "",
            "auth_service": "",
            "email": if show_email { self.email.as_str() } else { "" },
            "nickname": self.nickname,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "position": "",
            "roles": self.roles,
            "locale": "en",
            "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
            "disable_welcome_email": false,
        });
        if self.is_bot {
            v["is_bot"] = json!(true);
            v["bot_description"] = json!("");
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTeam {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// Open teams (`O`) can be read by anyone; invite-only (`I`) by members only.
    pub open: bool,
    pub create_at: i64,
}

impl SimTeam {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "display_name": self.display_name,
            "name": self.name,
            "description": "",
            "email": "",
            "type": if self.open { "O" } else { "I" },
            "company_name": "",
            "allowed_domains": "",
            "invite_id": "",
            "allow_open_invite": self.open,
            "scheme_id": null,
            "group_constrained": null,
            "policy_id": null,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChannel {
    pub id: String,
    /// Empty for direct channels.
    pub team_id: String,
    /// `O` open, `P` private, `D` direct.
    pub kind: &'static str,
    pub name: String,
    pub display_name: String,
    pub creator_id: String,
    pub create_at: i64,
    pub last_post_at: i64,
    pub total_msg_count: i64,
}

impl SimChannel {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "team_id": self.team_id,
            "type": self.kind,
            "display_name": self.display_name,
            "name": self.name,
            "header": "",
            "purpose": "",
            "last_post_at": self.last_post_at,
            "total_msg_count": self.total_msg_count,
            "extra_update_at": 0,
            "creator_id": self.creator_id,
            "scheme_id": null,
            "props": null,
            "group_constrained": null,
            "shared": null,
            "total_msg_count_root": self.total_msg_count,
            "policy_id": null,
            "last_root_post_at": self.last_post_at,
        })
    }
}

/// A post with its edit history (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct SimPost {
    pub id: String,
    pub create_at: i64,
    pub update_at: i64,
    pub edit_at: i64,
    pub delete_at: i64,
    pub user_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub message: String,
    /// Always a JSON object.
    pub props: Value,
    pub pending_post_id: String,
    pub is_pinned: bool,
    pub has_reactions: bool,
    pub reply_count: i64,
    /// The versions before each edit, oldest first.
    pub history: Vec<PostRevision>,
}

/// A post as it was before one edit.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRevision {
    pub message: String,
    pub props: Value,
    pub edit_at: i64,
}

impl SimPost {
    /// The post as served to API clients. Like Mattermost, button integrations (URL and
    /// context) are never sent out; a `cookie` stands in for them.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "edit_at": self.edit_at,
            "delete_at": self.delete_at,
            "is_pinned": self.is_pinned,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "root_id": self.root_id,
            "original_id": "",
            "message": self.message,
            // Plain API posts keep the type they were given (the service sends none).
            "type": "",
            "props": strip_integrations(&self.props),
            "hashtags": "",
            "pending_post_id": self.pending_post_id,
            "reply_count": self.reply_count,
            "last_reply_at": 0,
            "participants": null,
            "has_reactions": self.has_reactions,
            "metadata": {},
        })
    }

    /// How a post comes back from the de-duplication cache: straight from the database,
    /// without `pending_post_id` or metadata.
    pub fn to_json_from_store(&self) -> Value {
        let mut v = self.to_json();
        v["pending_post_id"] = json!("");
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
        }
        v
    }

    /// The buttons of the post's attachments, as stored (with their integrations).
    pub fn actions(&self) -> impl Iterator<Item = &Value> {
        self.props
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("actions").and_then(Value::as_array))
            .flatten()
    }
}

fn strip_integrations(props: &Value) -> Value {
    let mut props = props.clone();
    if let Some(attachments) = props.get_mut("attachments").and_then(Value::as_array_mut) {
        for a in attachments {
            if let Some(actions) = a.get_mut("actions").and_then(Value::as_array_mut) {
                for action in actions {
                    if let Some(o) = action.as_object_mut()
                        && o.remove("integration").is_some()
                    {
                        o.insert("cookie".into(), json!("sim-encrypted-integration"));
                    }
                }
            }
        }
    }
    props
}

/// A dialog the service opened, as the simulated server pushed it to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedDialog {
    pub trigger_id: String,
    /// The user the trigger id was issued to (who sees the dialog).
    pub user_id: String,
    pub channel_id: String,
    /// Where the submission goes.
    pub url: String,
    /// The `dialog` object as sent (`callback_id`, `title`, `elements`, `state`, ...).
    pub dialog: Value,
}

/// A message only one user sees (click replies, slash command answers).
#[derive(Debug, Clone, PartialEq)]
pub struct EphemeralPost {
    pub user_id: String,
    pub channel_id: String,
    /// The thread it belongs to, when it answers a click on a post.
    pub root_id: String,
    pub message: String,
    pub props: Value,
    /// When it was shown (ms since the epoch), to place it among the channel's posts.
    pub create_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReaction {
    pub user_id: String,
    pub post_id: String,
    pub emoji_name: String,
    pub create_at: i64,
}

impl SimReaction {
    pub fn to_json(&self) -> Value {
        json!({
            "user_id": self.user_id,
            "post_id": self.post_id,
            "emoji_name": self.emoji_name,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "remote_id": null,
            "channel_id": "",
        })
    }
}

/// One request the simulator served.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    /// The `Authorization` scheme sent (`Bearer`, `Token`, ...), never the credential.
    pub auth_scheme: Option<String>,
    /// The request body, when body logging is on.
    pub body: Option<bytes::Bytes>,
}

impl LoggedRequest {
    /// The body parsed as JSON (`Null` when absent or not JSON).
    pub fn json(&self) -> Value {
        self.body
            .as_ref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null)
    }
}
