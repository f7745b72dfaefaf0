//! Trigger ids (issued with clicks and slash commands, valid 30 s) and the dialogs opened
//! with them.

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::errors::ApiError;
use super::ids::new_id;
use super::model::OpenedDialog;
use super::store::{Store, Trigger, str_field};

impl Store {
    /// A trigger id for a click or slash command by `user_id` in `channel_id`.
    pub(crate) fn issue_trigger(
        &mut self,
        user_id: &str,
        channel_id: &str,
        now: Instant,
    ) -> String {
        let id = format!("{}{}", new_id(), new_id());
        // Kept well past expiry, so a late dialog gets "expired" rather than "unknown", as the
        // server (which decodes the signed id) answers.
        let keep = self.rules.trigger_ttl * 10;
        while let Some((issued, old)) = self.trigger_order.front() {
            if now.duration_since(*issued) <= keep {
                break;
            }
            self.triggers.remove(old);
            self.trigger_order.pop_front();
        }
        self.trigger_order.push_back((now, id.clone()));
        self.triggers.insert(
            id.clone(),
            Trigger {
                user_id: user_id.into(),
                channel_id: channel_id.into(),
                issued: now,
            },
        );
        id
    }

    /// `POST /actions/dialogs/open`: authenticated by the trigger id alone.
    pub(crate) fn open_dialog(&mut self, body: &Value, now: Instant) -> Result<Value, ApiError> {
        let trigger_id = str_field(body, "trigger_id").unwrap_or("");
        let trigger = self.triggers.get(trigger_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "interactive_message.decode_trigger_id.verify_signature_failed",
                "Failed to verify signature of trigger ID for interactive dialog.",
            )
        })?;
        if now.duration_since(trigger.issued) > self.rules.trigger_ttl {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "interactive_message.decode_trigger_id.expired",
                format!(
                    "Trigger ID for interactive dialog is expired. Trigger IDs live for a maximum of {}s.",
                    self.rules.trigger_ttl.as_secs()
                ),
            ));
        }
        let url = str_field(body, "url").unwrap_or("");
        if url.is_empty() {
            return Err(ApiError::invalid_body_param("url"));
        }
        let dialog = body.get("dialog").filter(|d| d.is_object());
        let title = dialog.and_then(|d| str_field(d, "title")).unwrap_or("");
        let elements = dialog
            .and_then(|d| d.get("elements"))
            .and_then(Value::as_array);
        if title.is_empty() || title.chars().count() > 24 {
            return Err(ApiError::invalid_body_param("dialog.title"));
        }
        let Some(elements) = elements else {
            return Err(ApiError::invalid_body_param("dialog.elements"));
        };
        for e in elements {
            let name_ok = str_field(e, "display_name").is_some_and(|n| n.chars().count() <= 24)
                && str_field(e, "name").is_some_and(|n| !n.is_empty() && n.len() <= 300);
            let kind_ok = matches!(
                str_field(e, "type"),
                Some("text" | "textarea" | "select" | "bool" | "radio" | "date" | "datetime")
            );
            if !name_ok || !kind_ok {
                return Err(ApiError::invalid_body_param("dialog.elements"));
            }
        }
        self.dialogs.push(OpenedDialog {
            trigger_id: trigger_id.into(),
            user_id: trigger.user_id.clone(),
            channel_id: trigger.channel_id.clone(),
            url: url.into(),
            dialog: dialog.cloned().unwrap_or(Value::Null),
        });
        Ok(json!({"status": "OK"}))
    }
}
