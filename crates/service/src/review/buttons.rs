//! Button clicks (`POST /mattermost/action`) and reason dialogs (`POST /mattermost/dialog`):
//! the signature is checked on the raw body before anything else, the click is bound to one
//! of our request posts (the dialog state to its clicker), then the review pipeline decides.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::metrics::{ReviewMetrics, Source};
use super::outcome::{Outcome, code};
use super::pipeline::{Attempt, Decision, MAX_REASON_CHARS};
use super::service::LivePipeline;
use super::{CallbackError, unauthorized};
use crate::access::{AccessRequest, PluginData};
use crate::mattermost::MattermostClient;
use crate::mattermost::integration::{
    DialogSubmission, DialogSubmissionReply, PostActionRequest, PostActionResponse,
};
use crate::mattermost::model::{Dialog, DialogElement, OpenDialog};
use crate::route::PLUGIN_NAME;
use crate::signing::{Action, ButtonContext, DialogState, SignatureError, Signer};
use crate::teleport::TeleportClient;

/// How long a reason dialog may stay open before its state is refused.
pub const DIALOG_TTL_SECS: i64 = 15 * 60;

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn ephemeral(text: String) -> PostActionResponse {
    PostActionResponse {
        ephemeral_text: text,
        ..Default::default()
    }
}

/// The one field read before the signature is checked.
#[derive(Deserialize)]
struct ContextOnly {
    #[serde(default)]
    context: Value,
}

#[derive(Deserialize)]
struct StateOnly {
    #[serde(default)]
    state: String,
}

/// The button and dialog callbacks.
pub struct ButtonCallbacks {
    pub(super) pipeline: Arc<LivePipeline>,
    /// Reads plugin data, to bind a click to one of the request's posts.
    pub(super) teleport: TeleportClient,
    /// Opens reason dialogs.
    pub(super) mattermost: MattermostClient,
    pub(super) signer: Signer,
    /// `<public_addr>/mattermost/dialog`.
    pub(super) dialog_url: Url,
    pub(super) metrics: ReviewMetrics,
}

impl ButtonCallbacks {
    /// Parses only `context` and checks its signature and expiry.
    fn verified_button(&self, body: &[u8], now: i64) -> Result<ButtonContext, CallbackError> {
        let outer: ContextOnly = serde_json::from_slice(body)
            .map_err(|_| CallbackError::BadRequest("the body is not a JSON object".into()))?;
        let ctx: ButtonContext = serde_json::from_value(outer.context)
            .map_err(|_| unauthorized(&self.metrics, "action", "malformed_context"))?;
        self.signer
            .verify_button(&ctx, now)
            .map_err(|e| unauthorized(&self.metrics, "action", signature_reason(&e)))?;
        Ok(ctx)
    }

    /// A button click. Answers with an ephemeral text, or `{}` after opening the dialog;
    /// never with `update` (the post is updated from Teleport's event on every replica).
    pub async fn on_action(&self, body: &[u8]) -> Result<PostActionResponse, CallbackError> {
        let ctx = self.verified_button(body, unix_now())?;
        let click: PostActionRequest = serde_json::from_slice(body)
            .map_err(|e| CallbackError::BadRequest(format!("unexpected click payload: {e}")))?;
        if click.user_id.is_empty() || click.post_id.is_empty() {
            return Err(CallbackError::BadRequest(
                "the click has no user_id or post_id".into(),
            ));
        }
        if let Some(outcome) = self.bound_post(&ctx, &click).await? {
            self.metrics.review(Source::Button, outcome.label());
            return Ok(ephemeral(outcome.text()));
        }
        let attempt = Attempt {
            chat_user_id: click.user_id.clone(),
            request_id: ctx.request_id.clone(),
            action: ctx.action,
            reason: String::new(),
            source: Source::Button,
        };
        match self.pipeline.decide(&attempt).await {
            Decision::Done(outcome) => Ok(ephemeral(outcome.text())),
            Decision::NeedsReason {
                request, author, ..
            } => Ok(self
                .open_reason_dialog(&ctx, &click, &request, &author)
                .await),
        }
    }

    /// `None` once the clicked post is known to be one of the request's root posts; else
    /// the outcome to answer with (plugin data gone or unreadable). The context binds the
    /// channel; the post id comes from Mattermost, so together they name exactly one post.
    async fn bound_post(
        &self,
        ctx: &ButtonContext,
        click: &PostActionRequest,
    ) -> Result<Option<Outcome>, CallbackError> {
        let raw = match self
            .teleport
            .get_plugin_data(PLUGIN_NAME, &ctx.request_id)
            .await
        {
            Ok(Some(raw)) => raw,
            // Plugin data outlives its request by an hour, then it is gone too.
            Ok(None) => return Ok(Some(Outcome::Gone)),
            Err(e) if e.is_transient() => return Ok(Some(Outcome::Unavailable)),
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "reading plugin data for a click failed");
                return Ok(Some(Outcome::Failed(e.message().to_string())));
            }
        };
        let data = match PluginData::decode(&raw) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "plugin data of a clicked request is unreadable");
                return Ok(Some(Outcome::Failed(
                    "the service cannot read its records of this request".into(),
                )));
            }
        };
        let ours = click.channel_id == ctx.channel_id
            && data
                .messages
                .iter()
                .any(|m| m.channel_id == ctx.channel_id && m.post_id == click.post_id);
        if !ours {
            self.metrics.refused("action", "foreign_post");
            tracing::warn!(
                request_id = %ctx.request_id,
                mattermost.post_id = %click.post_id,
                "refused a click on a post that is not a root post of its request"
            );
            return Err(CallbackError::Forbidden(
                "this button does not belong to the request's post",
            ));
        }
        Ok(None)
    }

    async fn open_reason_dialog(
        &self,
        ctx: &ButtonContext,
        click: &PostActionRequest,
        request: &AccessRequest,
        author: &str,
    ) -> PostActionResponse {
        let required = self.pipeline.policy().reason_required(ctx.action);
        let state = self.signer.dialog(
            &ctx.request_id,
            ctx.action,
            &click.post_id,
            &click.user_id,
            unix_now() + DIALOG_TTL_SECS,
        );
        let (title, label) = match ctx.action {
            Action::Approve => ("Approve access request", "Approve"),
            Action::Deny => ("Deny access request", "Deny"),
        };
        let roles = request.roles.iter().map(|r| code(r)).collect::<Vec<_>>();
        let open = OpenDialog {
            trigger_id: click.trigger_id.clone(),
            url: self.dialog_url.to_string(),
            dialog: Dialog {
                callback_id: format!("review:{}", ctx.action.as_str()),
                title: title.into(),
                introduction_text: format!(
                    "Request {} by {} for {}. Your review is submitted as Teleport user {}; Teleport checks your rights.",
                    code(&ctx.request_id),
                    code(&request.user),
                    roles.join(", "),
                    code(author)
                ),
                elements: vec![DialogElement {
                    display_name: "Reason".into(),
                    name: "reason".into(),
                    kind: "textarea".into(),
                    placeholder: "Why?".into(),
                    help_text: "Shown to the requester and recorded in Teleport's audit log."
                        .into(),
                    optional: !required,
                    max_length: Some(MAX_REASON_CHARS as u32),
                    ..Default::default()
                }],
                submit_label: label.into(),
                notify_on_cancel: false,
                state: serde_json::to_string(&state).expect("a dialog state serializes"),
            },
        };
        match self.mattermost.open_dialog(&open).await {
            Ok(()) => PostActionResponse::default(),
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "opening the reason dialog failed");
                ephemeral(format!(
                    "The reason dialog could not be opened (Mattermost did not accept it in time). Nothing was submitted; click again, or use {}.",
                    code(&format!(
                        "/teleport {} {} <reason>",
                        ctx.action.as_str(),
                        ctx.request_id
                    ))
                ))
            }
        }
    }

    /// A reason dialog submission: `{}` closes it, `errors`/`error` keep it open.
    pub async fn on_dialog(&self, body: &[u8]) -> Result<DialogSubmissionReply, CallbackError> {
        let outer: StateOnly = serde_json::from_slice(body)
            .map_err(|_| CallbackError::BadRequest("the body is not a JSON object".into()))?;
        let state: DialogState = serde_json::from_str(&outer.state)
            .map_err(|_| unauthorized(&self.metrics, "dialog", "malformed_state"))?;
        self.signer
            .verify_dialog(&state, unix_now())
            .map_err(|e| unauthorized(&self.metrics, "dialog", signature_reason(&e)))?;
        let sub: DialogSubmission = serde_json::from_slice(body)
            .map_err(|e| CallbackError::BadRequest(format!("unexpected dialog submission: {e}")))?;
        // The state is visible to the browser: it only counts for the user it was made for.
        if sub.user_id != state.user_id {
            return Err(unauthorized(&self.metrics, "dialog", "other_user"));
        }
        if sub.cancelled {
            return Ok(DialogSubmissionReply::default());
        }
        let reason = sub
            .submission
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        let attempt = Attempt {
            chat_user_id: state.user_id,
            request_id: state.request_id,
            action: state.action,
            reason,
            source: Source::Dialog,
        };
        Ok(match self.pipeline.decide(&attempt).await {
            Decision::Done(outcome) if outcome.is_success() => DialogSubmissionReply::default(),
            Decision::Done(outcome) => dialog_error(outcome.text()),
            Decision::NeedsReason { problem, .. } => {
                let mut errors = Map::new();
                errors.insert("reason".into(), Value::String(problem));
                DialogSubmissionReply {
                    errors,
                    ..Default::default()
                }
            }
        })
    }
}
fn dialog_error(text: String) -> DialogSubmissionReply {
    DialogSubmissionReply {
        error: Some(text),
        ..Default::default()
    }
}

fn signature_reason(e: &SignatureError) -> &'static str {
    match e {
        SignatureError::Malformed(_) => "malformed_signature",
        SignatureError::BadSignature => "bad_signature",
        SignatureError::Expired => "expired",
    }
}
