//! Button clicks (`POST /mattermost/action`) and reason dialogs (`POST /mattermost/dialog`):
//! the signature is checked on the raw body before anything else, the click is bound to one
//! of our request posts, the clicker to one Teleport user, then the review is submitted.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::CallbackError;
use super::metrics::Source;
use super::outcome::{Outcome, code};
use super::service::{DIALOG_TTL_SECS, MAX_REASON_CHARS, ReviewService};
use super::signing::{Action, ButtonContext, DialogState};
use crate::access::{PluginData, RequestState, Resolution};
use crate::mattermost::integration::{
    DialogSubmission, DialogSubmissionReply, PostActionRequest, PostActionResponse,
};
use crate::mattermost::model::{Dialog, DialogElement, OpenDialog};
use crate::route::PLUGIN_NAME;

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn ephemeral(text: String) -> PostActionResponse {
    PostActionResponse {
        ephemeral_text: text,
        ..Default::default()
    }
}

/// Whether a click is on one of the request's posts.
enum PostCheck {
    Ours(PluginData),
    /// Answer the clicker with this instead (request gone, Teleport unreachable, ...).
    Show(Outcome),
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

impl ReviewService {
    /// Parses only `context` and checks its signature and expiry.
    fn verified_button(&self, body: &[u8], now: i64) -> Result<ButtonContext, CallbackError> {
        let outer: ContextOnly = serde_json::from_slice(body)
            .map_err(|_| CallbackError::BadRequest("the body is not a JSON object".into()))?;
        let ctx: ButtonContext = serde_json::from_value(outer.context)
            .map_err(|_| self.unauthorized("action", "malformed_context"))?;
        self.signer
            .verify_button(&ctx, now)
            .map_err(|e| self.unauthorized("action", signature_reason(&e)))?;
        Ok(ctx)
    }

    pub(crate) fn unauthorized(&self, route: &str, reason: &'static str) -> CallbackError {
        self.metrics.refused(route, reason);
        tracing::warn!(
            http.route = route,
            reason,
            "refused an unauthenticated Mattermost callback (bad or expired signature, wrong token, or another user's dialog)"
        );
        CallbackError::Unauthorized
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
        let data = match self.bound_post(&ctx, &click).await? {
            PostCheck::Ours(data) => data,
            PostCheck::Show(outcome) => return Ok(self.refuse(Source::Button, outcome)),
        };
        if let Some(outcome) = resolved(data.resolution) {
            return Ok(self.refuse(Source::Button, outcome));
        }
        if let Some(outcome) =
            self.in_teleport_only(&ctx.request_id, &data.roles, false, ctx.action)
        {
            return Ok(self.refuse(Source::Button, outcome));
        }
        let author = match self.identify(&click.user_id).await {
            Ok(a) => a,
            Err(outcome) => return Ok(self.refuse(Source::Button, outcome)),
        };
        if author == data.user {
            return Ok(self.refuse(Source::Button, Outcome::SelfReview));
        }
        if self.reason_required(ctx.action) {
            return Ok(self.open_reason_dialog(&ctx, &click, &data, &author).await);
        }
        let outcome = self
            .submit(Source::Button, &ctx.request_id, &author, ctx.action, "")
            .await;
        Ok(ephemeral(outcome.text()))
    }

    fn refuse(&self, source: Source, outcome: Outcome) -> PostActionResponse {
        self.record(source, &outcome);
        ephemeral(outcome.text())
    }

    /// The request's plugin data, once the clicked post is known to be one of its root
    /// posts. The context binds the channel; the post id comes from Mattermost, so together
    /// they name exactly one of our posts.
    async fn bound_post(
        &self,
        ctx: &ButtonContext,
        click: &PostActionRequest,
    ) -> Result<PostCheck, CallbackError> {
        let raw = match self
            .teleport
            .get_plugin_data(PLUGIN_NAME, &ctx.request_id)
            .await
        {
            Ok(Some(raw)) => raw,
            // Plugin data outlives its request by an hour, then it is gone too.
            Ok(None) => return Ok(PostCheck::Show(Outcome::Gone)),
            Err(e) if e.is_transient() => return Ok(PostCheck::Show(Outcome::Unavailable)),
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "reading plugin data for a click failed");
                return Ok(PostCheck::Show(Outcome::Failed(e.message().to_string())));
            }
        };
        let data = match PluginData::decode(&raw) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e, "plugin data of a clicked request is unreadable");
                return Ok(PostCheck::Show(Outcome::Failed(
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
        Ok(PostCheck::Ours(data))
    }

    async fn open_reason_dialog(
        &self,
        ctx: &ButtonContext,
        click: &PostActionRequest,
        data: &PluginData,
        author: &str,
    ) -> PostActionResponse {
        let required = self.reason_required(ctx.action);
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
        let roles = data.roles.iter().map(|r| code(r)).collect::<Vec<_>>();
        let open = OpenDialog {
            trigger_id: click.trigger_id.clone(),
            url: self.dialog_url.to_string(),
            dialog: Dialog {
                callback_id: format!("review:{}", ctx.action.as_str()),
                title: title.into(),
                introduction_text: format!(
                    "Request {} by {} for {}. Your review is submitted as Teleport user {}; Teleport checks your rights.",
                    code(&ctx.request_id),
                    code(&data.user),
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
            .map_err(|_| self.unauthorized("dialog", "malformed_state"))?;
        self.signer
            .verify_dialog(&state, unix_now())
            .map_err(|e| self.unauthorized("dialog", signature_reason(&e)))?;
        let sub: DialogSubmission = serde_json::from_slice(body)
            .map_err(|e| CallbackError::BadRequest(format!("unexpected dialog submission: {e}")))?;
        // The state is visible to the browser: it only counts for the user it was made for.
        if sub.user_id != state.user_id {
            return Err(self.unauthorized("dialog", "other_user"));
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
        if let Some(problem) = self.reason_problem(state.action, &reason) {
            let mut errors = Map::new();
            errors.insert("reason".into(), Value::String(problem));
            return Ok(DialogSubmissionReply {
                errors,
                ..Default::default()
            });
        }
        let author = match self.identify(&state.user_id).await {
            Ok(a) => a,
            Err(outcome) => {
                self.record(Source::Dialog, &outcome);
                return Ok(dialog_error(outcome.text()));
            }
        };
        let outcome = self
            .submit(
                Source::Dialog,
                &state.request_id,
                &author,
                state.action,
                &reason,
            )
            .await;
        if outcome.is_success() {
            Ok(DialogSubmissionReply::default())
        } else {
            Ok(dialog_error(outcome.text()))
        }
    }

    /// What is wrong with a reason under `review.require_reason`, if anything.
    pub fn reason_problem(&self, action: Action, reason: &str) -> Option<String> {
        if reason.is_empty() && self.reason_required(action) {
            return Some(format!(
                "A reason is required to {} this request.",
                action.as_str()
            ));
        }
        let n = reason.chars().count();
        (n > MAX_REASON_CHARS).then(|| {
            format!("The reason has {n} characters; at most {MAX_REASON_CHARS} are allowed.")
        })
    }
}

fn dialog_error(text: String) -> DialogSubmissionReply {
    DialogSubmissionReply {
        error: Some(text),
        ..Default::default()
    }
}

/// What plugin data says about a request that no longer takes reviews.
fn resolved(r: Resolution) -> Option<Outcome> {
    let state = match r {
        Resolution::Unresolved => return None,
        Resolution::Expired => return Some(Outcome::Gone),
        Resolution::Approved => RequestState::Approved,
        Resolution::Denied => RequestState::Denied,
        Resolution::Promoted => RequestState::Promoted,
    };
    Some(Outcome::Resolved { state })
}

fn signature_reason(e: &super::signing::SignatureError) -> &'static str {
    match e {
        super::signing::SignatureError::Malformed(_) => "malformed_signature",
        super::signing::SignatureError::BadSignature => "bad_signature",
        super::signing::SignatureError::Expired => "expired",
    }
}
