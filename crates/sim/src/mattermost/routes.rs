//! The simulated REST v4 routes: authentication, body parsing and status codes; the rules
//! themselves are in `store.rs`. A front layer logs every request and applies the faults.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Shared;
use super::errors::{ApiError, limit_exceeded};
use super::ids::new_id;
use super::model::LoggedRequest;
use super::store::Store;

/// Posts may carry up to 760 000 runes of props; leave room for that.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v4/users/{user_id}", get(get_user))
        .route("/api/v4/users/email/{email}", get(user_by_email))
        .route("/api/v4/users/username/{username}", get(user_by_username))
        .route("/api/v4/teams/name/{team}", get(team_by_name))
        .route(
            "/api/v4/teams/name/{team}/channels/name/{channel}",
            get(channel_by_names),
        )
        .route("/api/v4/channels/direct", post(direct_channel))
        .route(
            "/api/v4/channels/{channel_id}/members/{user_id}",
            get(channel_member),
        )
        .route("/api/v4/channels/{channel_id}/posts", get(channel_posts))
        .route("/api/v4/posts", post(create_post))
        .route("/api/v4/posts/{post_id}", get(get_post).put(update_post))
        .route("/api/v4/posts/{post_id}/patch", put(patch_post))
        .route("/api/v4/posts/{post_id}/thread", get(thread))
        .route("/api/v4/reactions", post(add_reaction))
        .route("/api/v4/actions/dialogs/open", post(open_dialog))
        .route("/hooks/commands/{hook_id}", post(command_hook))
        .fallback(|| async { ApiError::unknown_route() })
        .layer(middleware::from_fn_with_state(shared.clone(), front))
        .with_state(shared)
}

/// Logs the request (never the credential), applies faults and the rate limiter, and delays
/// the answer when told to. The log entry is written before any delay, so a client that gives
/// up waiting still shows up in it.
async fn front(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let remote = request
        .extensions()
        .get::<axum::extract::ConnectInfo<super::PeerAddr>>()
        .map(|c| c.0.0);
    // The rate limiter wraps the whole server on Mattermost: it answers before anything else.
    let rate = shared.faults.rate_limit(
        remote,
        request.headers(),
        request.uri().query().unwrap_or(""),
    );
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_string());
    let auth_scheme = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_string);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let logged_body = (shared.log_bodies && !bytes.is_empty()).then(|| bytes.clone());
    let mut delay = Duration::ZERO;
    let response = match rate {
        Some(verdict) if verdict.limited => limit_exceeded(&verdict),
        _ => {
            let decision = shared.faults.decide(&method, parts.uri.path());
            delay = decision.delay;
            let mut response = match decision.reject {
                Some(r) => r,
                None => {
                    next.run(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            };
            if let Some(verdict) = rate {
                verdict.write_headers(response.headers_mut());
            }
            response
        }
    };
    shared.log_request(LoggedRequest {
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        auth_scheme,
        body: logged_body,
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// The user a request is authenticated as: `Authorization: Bearer <token>` (any case of
/// "bearer", as the server upper-cases it) or `Token <token>`.
fn actor(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") =>
        {
            token.trim()
        }
        _ => return Err(ApiError::unauthorized()),
    };
    shared
        .store()
        .authenticate(token)
        .ok_or_else(ApiError::unauthorized)
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::invalid_body_param("body"))
}

fn ok(status: StatusCode, value: Value) -> Response {
    let mut response = (status, axum::Json(value)).into_response();
    if let Ok(v) = new_id().parse() {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Runs a read under the lock.
fn read(
    shared: &Shared,
    headers: &HeaderMap,
    f: impl FnOnce(&Store, &str) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let actor = actor(shared, headers)?;
    let value = f(&shared.store(), &actor)?;
    Ok(ok(StatusCode::OK, value))
}

/// Runs a change under the lock and wakes waiters when it succeeded.
fn write(
    shared: &Shared,
    headers: &HeaderMap,
    status: StatusCode,
    f: impl FnOnce(&mut Store, &str) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    let actor = actor(shared, headers)?;
    let value = shared.mutate(|store| f(store, &actor))?;
    Ok(ok(status, value))
}

async fn get_user(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.get_user(actor, &id))
}

async fn user_by_email(
    State(s): State<Arc<Shared>>,
    Path(email): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.user_by_email(actor, &email))
}

async fn user_by_username(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.user_by_username(actor, &name))
}

async fn team_by_name(
    State(s): State<Arc<Shared>>,
    Path(team): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.team_by_name(actor, &team))
}

async fn channel_by_names(
    State(s): State<Arc<Shared>>,
    Path((team, channel)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| {
        store.channel_by_names(actor, &team, &channel)
    })
}

async fn channel_member(
    State(s): State<Arc<Shared>>,
    Path((channel_id, user_id)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| {
        store.channel_member(actor, &channel_id, &user_id)
    })
}

async fn direct_channel(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    write(&s, &h, StatusCode::CREATED, |store, actor| {
        store.direct_channel(actor, &body)
    })
}

/// Query parameters the server reads as numbers: a bad one falls back to its default
/// (`page` 0, `per_page` 60), and `per_page` is capped at 200. With `since` (milliseconds),
/// the server answers every post changed after it instead of a page.
#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<String>,
    per_page: Option<String>,
    since: Option<String>,
}

async fn channel_posts(
    State(s): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<usize>().ok());
    if let Some(since) = &q.since {
        let since = since
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| ApiError::invalid_param("since"))?;
        return read(&s, &h, |store, actor| {
            store.channel_posts_since(actor, &channel_id, since)
        });
    }
    let page = number(&q.page).unwrap_or(0);
    let per_page = number(&q.per_page).unwrap_or(60).min(200);
    read(&s, &h, |store, actor| {
        store.channel_page(actor, &channel_id, page, per_page)
    })
}

async fn create_post(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    let now = Instant::now();
    write(&s, &h, StatusCode::CREATED, |store, actor| {
        store.create_post(actor, &body, now)
    })
}

async fn get_post(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.get_post(actor, &id))
}

async fn update_post(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    write(&s, &h, StatusCode::OK, |store, actor| {
        store.edit_post(actor, &id, &body, false)
    })
}

async fn patch_post(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    write(&s, &h, StatusCode::OK, |store, actor| {
        store.edit_post(actor, &id, &body, true)
    })
}

async fn thread(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    read(&s, &h, |store, actor| store.thread(actor, &id))
}

async fn add_reaction(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    // The server answers 200 here although the API description says 201.
    write(&s, &h, StatusCode::OK, |store, actor| {
        store.add_reaction(actor, &body)
    })
}

/// Authenticated by the trigger id alone, as on the real server.
async fn open_dialog(State(s): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse(&body)?;
    let now = Instant::now();
    let value = s.mutate(|store| store.open_dialog(&body, now))?;
    Ok(ok(StatusCode::OK, value))
}

/// A slash command's `response_url`: JSON (a CommandResponse) or plain text.
async fn command_hook(
    State(s): State<Arc<Shared>>,
    Path(hook): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let response = if is_json {
        parse(&body)?
    } else {
        json!({ "text": String::from_utf8_lossy(&body) })
    };
    let target = s.store().command_hooks.get(&hook).cloned();
    let Some((user_id, channel_id)) = target else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "web.command_webhook.invalid.app_error",
            "Invalid webhook.",
        ));
    };
    s.apply_command_response(&user_id, &channel_id, &response)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "web.command_webhook.command.app_error",
                e.to_string(),
            )
        })?;
    Ok((StatusCode::OK, "").into_response())
}
