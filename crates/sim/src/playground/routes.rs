//! The playground's HTTP routes: the page, and one form handler per action. Every action
//! answers with a redirect back to the page (POST, redirect, GET), with a note when there is
//! something to say.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::html::{self, View};
use super::{DialogErrors, Play, cluster};

pub(crate) fn router(play: Arc<Play>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/mm/click", post(click))
        .route("/mm/dialog", post(dialog))
        .route("/mm/message", post(message))
        .route("/tp/create", post(create))
        .route("/tp/resolve", post(resolve))
        .route("/tp/delete", post(delete))
        .layer(middleware::from_fn_with_state(play.clone(), same_origin))
        .with_state(play)
}

/// Answers only requests addressed to the playground itself: another site open in the same
/// browser must not drive it (a cross-site form POST carries a foreign `Origin`), nor may a
/// rebound DNS name (a foreign `Host`).
async fn same_origin(State(play): State<Arc<Play>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let localhost = play.authority.replace("127.0.0.1", "localhost");
    let ours = |a: &str| a == play.authority || a == localhost;
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(ours);
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| o.strip_prefix("http://").is_some_and(ours));
    if host_ok && origin_ok {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "the playground only answers its own page",
        )
            .into_response()
    }
}

#[derive(Deserialize, Default)]
struct ViewQuery {
    #[serde(rename = "as")]
    user: Option<String>,
    ch: Option<String>,
    note: Option<String>,
}

/// The view a query names; a channel the user cannot see falls back to the home channel.
fn view<'a>(play: &'a Play, q: &ViewQuery) -> View<'a> {
    let me = play.actor(q.user.as_deref());
    let channels = play.mm.channels_of(&me.mattermost_id);
    let channel =
        q.ch.as_deref()
            .and_then(|id| channels.iter().find(|c| c.id == id))
            .or_else(|| channels.iter().find(|c| c.id == play.home))
            .or(channels.first())
            .cloned()
            .or_else(|| play.mm.channel(&play.home))
            .expect("the home channel exists");
    View {
        me,
        channel,
        note: q.note.clone().filter(|n| !n.is_empty()),
    }
}

async fn page(State(play): State<Arc<Play>>, Query(q): Query<ViewQuery>) -> Response {
    let v = view(&play, &q);
    let mut response = Html(html::page(&play, &v)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a header value"),
    );
    response
}

/// Back to the page, as the same user in the same channel.
fn back(user: &str, channel: &str, note: Option<String>) -> Redirect {
    Redirect::to(&html::href(user, channel, note.as_deref()))
}

#[derive(Deserialize)]
struct ClickForm {
    #[serde(rename = "as")]
    user: String,
    ch: String,
    post: String,
    action: String,
}

/// A button: the simulator POSTs the click to the button's integration URL, as Mattermost does.
async fn click(State(play): State<Arc<Play>>, Form(f): Form<ClickForm>) -> Redirect {
    let me = play.actor(Some(&f.user)).clone();
    let note = match play.mm.click(&f.post, &f.action, &me.mattermost_id).await {
        Ok(outcome) => {
            play.dialogs().ours.insert(outcome.trigger_id);
            None
        }
        Err(e) => Some(format!("Mattermost could not complete the action: {e}")),
    };
    back(&me.username, &f.ch, note)
}

/// A dialog submission (or cancel): the simulator POSTs `dialog_submission` to the dialog's URL.
async fn dialog(
    State(play): State<Arc<Play>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Redirect {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let me = play.actor(Some(get("as"))).clone();
    let (channel, trigger) = (get("ch").to_string(), get("trigger").to_string());
    let cancelled = get("cancel") == "1";
    let Some(opened) = play
        .mm
        .dialogs()
        .into_iter()
        .find(|d| d.trigger_id == trigger && d.user_id == me.mattermost_id)
    else {
        return back(&me.username, &channel, Some("That dialog is gone.".into()));
    };
    let mut submission = Map::new();
    for e in opened
        .dialog
        .get("elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        let value = get(&format!("el.{name}"));
        if e.get("type").and_then(Value::as_str) == Some("bool") {
            submission.insert(name.into(), Value::Bool(value == "true"));
        } else if !value.is_empty() {
            submission.insert(name.into(), Value::String(value.into()));
        }
    }
    let outcome = play
        .mm
        .submit_dialog(
            &opened,
            &me.mattermost_id,
            Value::Object(submission),
            cancelled,
        )
        .await;
    let mut dialogs = play.dialogs();
    let note = match outcome {
        Ok(o) if o.error().is_some() || o.field_errors().is_some() => {
            let errors = DialogErrors {
                error: o.error().unwrap_or_default().to_string(),
                fields: o
                    .field_errors()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
            };
            dialogs.errors.insert(trigger, errors);
            None
        }
        Ok(_) => {
            dialogs.closed.insert(trigger);
            None
        }
        Err(e) => {
            dialogs.closed.insert(trigger);
            Some(format!("Mattermost could not submit the dialog: {e}"))
        }
    };
    back(&me.username, &channel, note)
}

#[derive(Deserialize)]
struct MessageForm {
    #[serde(rename = "as")]
    user: String,
    ch: String,
    text: String,
}

/// The message box: `/teleport …` is the slash command Mattermost sends to the service;
/// anything else is a plain post.
async fn message(State(play): State<Arc<Play>>, Form(f): Form<MessageForm>) -> Redirect {
    let me = play.actor(Some(&f.user)).clone();
    let text = f.text.trim();
    let note = if text.is_empty() {
        None
    } else if let Some(rest) = text
        .strip_prefix("/teleport")
        .filter(|r| r.is_empty() || r.starts_with(' '))
    {
        match play
            .mm
            .run_slash_command(
                &play.command_url,
                &play.command_token,
                &me.mattermost_id,
                &f.ch,
                rest.trim(),
            )
            .await
        {
            Ok(outcome) => {
                play.dialogs().ours.insert(outcome.trigger_id);
                None
            }
            Err(e) => Some(format!("Command failed: {e}")),
        }
    } else if text.starts_with('/') {
        let command = text.split_whitespace().next().unwrap_or(text);
        Some(format!(
            "Command {command} is not registered here; try /teleport help."
        ))
    } else {
        play.mm
            .post_as(&me.mattermost_id, &f.ch, "", text)
            .err()
            .map(|e| format!("Mattermost refused the post: {}", e.message))
    };
    back(&me.username, &f.ch, note)
}

/// The create form. Reviewers come as repeated `reviewer` fields, hence the pair list.
async fn create(
    State(play): State<Arc<Play>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Redirect {
    let all = |k: &'static str| {
        fields
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.trim())
    };
    let one = |k: &'static str| all(k).next().unwrap_or("").to_string();
    let list = |s: String| -> Vec<String> {
        s.split([',', ' '])
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let number = |k| one(k).parse().unwrap_or(1);
    let new = cluster::NewCard {
        user: one("user"),
        roles: list(one("roles")),
        reason: one("reason"),
        reviewers: all("reviewer").flat_map(|r| list(r.to_string())).collect(),
        approve: number("approve"),
        deny: number("deny"),
    };
    let note = match cluster::create(&play.tp, new) {
        Ok(id) => format!("Created access request {id}."),
        Err(e) => format!("Not created: {e}."),
    };
    back(&one("as"), &one("ch"), Some(note))
}

#[derive(Deserialize)]
struct ResolveForm {
    #[serde(rename = "as")]
    user: String,
    ch: String,
    id: String,
    verdict: String,
    #[serde(default)]
    reason: String,
}

async fn resolve(State(play): State<Arc<Play>>, Form(f): Form<ResolveForm>) -> Redirect {
    let approve = f.verdict == "approve";
    let note = match cluster::resolve(&play.tp, &f.id, approve, f.reason.trim()) {
        Ok(()) => format!(
            "Access request {} {} by the admin.",
            f.id,
            if approve { "approved" } else { "denied" }
        ),
        Err(e) => format!("Teleport refused: {e}"),
    };
    back(&f.user, &f.ch, Some(note))
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(rename = "as")]
    user: String,
    ch: String,
    id: String,
}

async fn delete(State(play): State<Arc<Play>>, Form(f): Form<DeleteForm>) -> Redirect {
    let note = match cluster::delete(&play.tp, &f.id) {
        Ok(()) => format!("Access request {} deleted (as when it expires).", f.id),
        Err(e) => e,
    };
    back(&f.user, &f.ch, Some(note))
}
