//! The simulator acting as Mattermost toward the service: it POSTs button clicks, dialog
//! submissions and slash commands with exactly the payloads in docs/mattermost-api.md
//! (buttons, dialogs, slash command), and applies the answers the way the server does (post updates, ephemeral messages).

use serde_json::{Map, Value, json};

use super::ids::now_ms;
use super::model::{EphemeralPost, OpenedDialog, PostRevision, SimPost};
use super::{MattermostSim, Shared};

/// Why a simulated integration call failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no post {0}")]
    NoSuchPost(String),
    #[error("post {post} has no button with id {action:?}")]
    NoSuchAction { post: String, action: String },
    #[error("no user {0}")]
    NoSuchUser(String),
    #[error("no channel {0}")]
    NoSuchChannel(String),
    #[error("user {user} cannot read channel {channel}")]
    NotAMember { user: String, channel: String },
    /// The integration answered non-200 or with a body Mattermost would not accept; the
    /// user would see `api.post.do_action.action_integration.app_error` (or the command's
    /// failure text).
    #[error("the integration answered {status}: {body}")]
    Integration { status: u16, body: String },
    #[error("calling the integration: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the simulator refused the change: {0}")]
    Refused(String),
}

/// A click and what came of it.
#[derive(Debug, Clone)]
pub struct ClickOutcome {
    /// The trigger id sent with the click (valid 30 s for opening a dialog).
    pub trigger_id: String,
    /// The integration's JSON answer (`{}` for an empty body).
    pub response: Value,
    /// The post after applying `update`, when the answer had one.
    pub updated: Option<SimPost>,
    /// The ephemeral message shown to the clicker, when the answer had one.
    pub ephemeral: Option<EphemeralPost>,
}

/// A dialog submission and its answer.
#[derive(Debug, Clone)]
pub struct DialogOutcome {
    /// False when the user cancelled a dialog without `notify_on_cancel` (nothing is sent).
    pub sent: bool,
    /// The answer's JSON (`Null` for an empty body, which closes the dialog).
    pub body: Value,
}

impl DialogOutcome {
    /// `{"errors": {field: text}}`: the dialog stays open with these field errors.
    pub fn field_errors(&self) -> Option<&Map<String, Value>> {
        self.body.get("errors").and_then(Value::as_object)
    }

    /// `{"error": "..."}`: the dialog stays open with this error.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }
}

/// A slash command and its answer.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub trigger_id: String,
    /// The CommandResponse JSON (a plain-text answer becomes `{"text": ...}`).
    pub response: Value,
    /// Posted in the channel (`response_type: in_channel`).
    pub posted: Option<SimPost>,
    /// Shown to the caller only (the default).
    pub ephemeral: Option<EphemeralPost>,
}

impl Shared {
    /// Shows a CommandResponse as Mattermost does: in the channel as the caller, or as an
    /// ephemeral message; an empty ephemeral answer shows nothing.
    pub(crate) fn apply_command_response(
        &self,
        user_id: &str,
        channel_id: &str,
        response: &Value,
    ) -> Result<(Option<SimPost>, Option<EphemeralPost>), SimError> {
        let text = response.get("text").and_then(Value::as_str).unwrap_or("");
        let attachments = response
            .get("attachments")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()));
        let mut props = json!({});
        if let Some(a) = attachments {
            props["attachments"] = a.clone();
        }
        if response.get("response_type").and_then(Value::as_str) == Some("in_channel") {
            let body = json!({"channel_id": channel_id, "message": text, "props": props});
            let now = tokio::time::Instant::now();
            let post = self
                .mutate(|s| s.create_post(user_id, &body, now))
                .map_err(|e| SimError::Refused(format!("{}: {}", e.id, e.message)))?;
            let id = post["id"].as_str().unwrap_or_default().to_string();
            return Ok((self.store().posts.get(&id).cloned(), None));
        }
        if text.is_empty() && attachments.is_none() {
            return Ok((None, None));
        }
        let ephemeral = EphemeralPost {
            user_id: user_id.into(),
            channel_id: channel_id.into(),
            root_id: String::new(),
            message: text.into(),
            props,
            create_at: now_ms(),
        };
        self.mutate(|s| {
            s.ephemeral.push(ephemeral.clone());
            Ok::<_, SimError>(())
        })?;
        Ok((None, Some(ephemeral)))
    }
}

impl MattermostSim {
    /// `user_id` clicks button `action_id` of post `post_id`: Mattermost POSTs the
    /// `PostActionIntegrationRequest` to the button's `integration.url` and applies the answer
    /// (`update` replaces message and props, `ephemeral_text` goes to the clicker).
    pub async fn click(
        &self,
        post_id: &str,
        action_id: &str,
        user_id: &str,
    ) -> Result<ClickOutcome, SimError> {
        let now = tokio::time::Instant::now();
        let (url, body, trigger_id, channel_id, thread_root) = {
            let mut s = self.shared.store();
            let post = s
                .posts
                .get(post_id)
                .filter(|p| p.delete_at == 0)
                .ok_or_else(|| SimError::NoSuchPost(post_id.into()))?
                .clone();
            let action = post
                .actions()
                .find(|a| a.get("id").and_then(Value::as_str) == Some(action_id))
                .cloned()
                .ok_or_else(|| SimError::NoSuchAction {
                    post: post_id.into(),
                    action: action_id.into(),
                })?;
            let user = s
                .users
                .get(user_id)
                .cloned()
                .ok_or_else(|| SimError::NoSuchUser(user_id.into()))?;
            if !s.is_member(&post.channel_id, user_id) {
                return Err(SimError::NotAMember {
                    user: user_id.into(),
                    channel: post.channel_id.clone(),
                });
            }
            let channel = s.channels[&post.channel_id].clone();
            let (team_id, team_domain) = s
                .teams
                .get(&channel.team_id)
                .map(|t| (t.id.clone(), t.name.clone()))
                .unwrap_or_default();
            let trigger_id = s.issue_trigger(user_id, &post.channel_id, now);
            let integration = action.get("integration").cloned().unwrap_or(Value::Null);
            let url = integration
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let body = json!({
                "user_id": user.id,
                "user_name": user.username,
                "channel_id": channel.id,
                "channel_name": channel.name,
                "team_id": team_id,
                "team_domain": team_domain,
                "post_id": post.id,
                "trigger_id": trigger_id,
                "type": action.get("type").and_then(Value::as_str).unwrap_or("button"),
                "data_source": action.get("data_source").and_then(Value::as_str).unwrap_or(""),
                "context": integration.get("context").cloned().unwrap_or(json!({})),
            });
            let root = if post.root_id.is_empty() {
                post.id.clone()
            } else {
                post.root_id.clone()
            };
            (url, body, trigger_id, channel.id, root)
        };
        let response = self
            .shared
            .http
            .post(&url)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != 200 {
            return Err(SimError::Integration { status, body: text });
        }
        let answer: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| SimError::Integration { status, body: text })?
        };
        let updated = match answer.get("update").filter(|u| u.is_object()) {
            Some(update) => Some(self.apply_update(post_id, update)?),
            None => None,
        };
        let ephemeral = match answer.get("ephemeral_text").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                let e = EphemeralPost {
                    user_id: user_id.into(),
                    channel_id,
                    root_id: thread_root,
                    message: t.into(),
                    props: json!({}),
                    create_at: now_ms(),
                };
                self.shared.mutate(|s| {
                    s.ephemeral.push(e.clone());
                    Ok::<_, SimError>(())
                })?;
                Some(e)
            }
            _ => None,
        };
        Ok(ClickOutcome {
            trigger_id,
            response: answer,
            updated,
            ephemeral,
        })
    }

    /// Mattermost's rules for `update` in a click answer: the message is replaced; `props`
    /// null keeps the old ones, an object replaces them but keeps `from_webhook`,
    /// `override_username` and `override_icon_url`; pinned and reactions stay.
    fn apply_update(&self, post_id: &str, update: &Value) -> Result<SimPost, SimError> {
        self.shared.mutate(|s| {
            let post = s
                .posts
                .get_mut(post_id)
                .ok_or_else(|| SimError::NoSuchPost(post_id.into()))?;
            post.history.push(PostRevision {
                message: post.message.clone(),
                props: post.props.clone(),
                edit_at: post.edit_at,
            });
            let at = now_ms();
            let message = update.get("message").and_then(Value::as_str).unwrap_or("");
            if message != post.message {
                post.message = message.into();
                post.edit_at = at;
            }
            if let Some(Value::Object(new_props)) = update.get("props") {
                let mut props = new_props.clone();
                for keep in ["from_webhook", "override_username", "override_icon_url"] {
                    match post.props.get(keep) {
                        Some(v) => props.insert(keep.into(), v.clone()),
                        None => props.remove(keep),
                    };
                }
                post.props = Value::Object(props);
            }
            post.update_at = at;
            Ok(post.clone())
        })
    }

    /// `user_id` submits (or cancels) a dialog: Mattermost POSTs the `dialog_submission` JSON
    /// to the dialog's `url`. Build an [`OpenedDialog`] by hand to forge a submission.
    pub async fn submit_dialog(
        &self,
        dialog: &OpenedDialog,
        user_id: &str,
        submission: Value,
        cancelled: bool,
    ) -> Result<DialogOutcome, SimError> {
        let notify_on_cancel = dialog
            .dialog
            .get("notify_on_cancel")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if cancelled && !notify_on_cancel {
            return Ok(DialogOutcome {
                sent: false,
                body: Value::Null,
            });
        }
        let team_id = {
            let s = self.shared.store();
            s.channels
                .get(&dialog.channel_id)
                .map(|c| c.team_id.clone())
                .unwrap_or_default()
        };
        let field = |k: &str| {
            dialog
                .dialog
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let body = json!({
            "type": "dialog_submission",
            "callback_id": field("callback_id"),
            "state": field("state"),
            "user_id": user_id,
            "channel_id": dialog.channel_id,
            "team_id": team_id,
            "submission": if cancelled { json!({}) } else { submission },
            "cancelled": cancelled,
        });
        let response = self
            .shared
            .http
            .post(&dialog.url)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != 200 {
            return Err(SimError::Integration { status, body: text });
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| SimError::Integration { status, body: text })?
        };
        Ok(DialogOutcome { sent: true, body })
    }

    /// `user_id` types `/teleport <text>` in `channel_id`: Mattermost POSTs the form-encoded
    /// command with `Authorization: Token <token>` to `url` and shows the answer.
    pub async fn run_slash_command(
        &self,
        url: &str,
        token: &str,
        user_id: &str,
        channel_id: &str,
        text: &str,
    ) -> Result<CommandOutcome, SimError> {
        let now = tokio::time::Instant::now();
        let (form, trigger_id) = {
            let mut s = self.shared.store();
            let user = s
                .users
                .get(user_id)
                .cloned()
                .ok_or_else(|| SimError::NoSuchUser(user_id.into()))?;
            let channel = s
                .channels
                .get(channel_id)
                .cloned()
                .ok_or_else(|| SimError::NoSuchChannel(channel_id.into()))?;
            let (team_id, team_domain) = s
                .teams
                .get(&channel.team_id)
                .map(|t| (t.id.clone(), t.name.clone()))
                .unwrap_or_default();
            let trigger_id = s.issue_trigger(user_id, channel_id, now);
            let hook = super::ids::new_id();
            s.command_hooks
                .insert(hook.clone(), (user_id.into(), channel_id.into()));
            let response_url = format!("{}hooks/commands/{hook}", self.shared.url);
            let form = vec![
                ("token", token.to_string()),
                ("team_id", team_id),
                ("team_domain", team_domain),
                ("channel_id", channel.id),
                ("channel_name", channel.name),
                ("user_id", user.id),
                ("user_name", user.username),
                ("command", "/teleport".to_string()),
                ("text", text.to_string()),
                ("trigger_id", trigger_id.clone()),
                ("response_url", response_url),
            ];
            (form, trigger_id)
        };
        let mut request = self
            .shared
            .http
            .post(url)
            .header("accept", "application/json")
            .header("user-agent", "Mattermost-Bot/1.1")
            .form(&form);
        if !token.is_empty() {
            request = request.header("authorization", format!("Token {token}"));
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let is_json = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = response.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != 200 {
            return Err(SimError::Integration { status, body: text });
        }
        let answer = if is_json {
            serde_json::from_slice(&bytes)
                .map_err(|_| SimError::Integration { status, body: text })?
        } else {
            json!({ "text": text })
        };
        let (posted, ephemeral) = self
            .shared
            .apply_command_response(user_id, channel_id, &answer)?;
        Ok(CommandOutcome {
            trigger_id,
            response: answer,
            posted,
            ephemeral,
        })
    }
}
