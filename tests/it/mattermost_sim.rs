//! The Mattermost simulator's own fidelity: the payloads it sends for clicks, dialogs and
//! slash commands (docs/mattermost-api.md: buttons, dialogs, slash command), how it applies the answers, its error bodies,
//! its rate limiter, and waiting for posts without polling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use teleport_mattermost::mattermost::MattermostError;
use teleport_mattermost::mattermost::model::NewPost;
use teleport_mattermost_sim::mattermost::{RateLimit, SimConfig, SimError};

use crate::mattermost::{client, fixture};

/// What a fake integration received: headers and body of each request.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A stand-in for the service: records requests and answers each with `answer`.
async fn integration(answer: (u16, &'static str, String)) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            let answer = answer.clone();
            async move {
                recorded.lock().unwrap().push((headers, body));
                (
                    axum::http::StatusCode::from_u16(answer.0).unwrap(),
                    [("content-type", answer.1)],
                    answer.2,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn buttons(url: &str) -> Value {
    json!({"from_webhook": "true", "attachments": [{"text": "", "actions": [
        {"id": "approve", "type": "button", "name": "Approve", "integration": {"url": url, "context": {"request_id": "r1", "sig": "s"}}},
        {"id": "deny", "type": "button", "name": "Deny", "integration": {"url": url, "context": {"request_id": "r1", "action": "deny"}}}
    ]}]})
}

#[tokio::test]
async fn a_click_posts_mattermosts_payload_and_applies_the_update_and_ephemeral_text() {
    let fx = fixture(SimConfig::default()).await;
    let answer = json!({"update": {"message": "approved", "props": {"attachments": []}}, "ephemeral_text": "You approved r1"});
    let (url, seen) = integration((200, "application/json", answer.to_string())).await;
    let c = client(&fx.sim);
    let post = c
        .create_post(&NewPost::new(&fx.channel, "pending").with_props(buttons(&url)))
        .await
        .unwrap();

    let outcome = fx
        .sim
        .click(&post.id, "approve", &fx.reviewer1)
        .await
        .unwrap();

    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    let team = fx.sim.channel(&fx.channel).unwrap().team_id;
    assert_eq!(
        body,
        json!({
            "user_id": fx.reviewer1, "user_name": "reviewer1",
            "channel_id": fx.channel, "channel_name": "channel-llama",
            "team_id": team, "team_domain": "team-llama",
            "post_id": post.id, "trigger_id": outcome.trigger_id,
            "type": "button", "data_source": "",
            "context": {"request_id": "r1", "sig": "s"},
        })
    );
    let updated = fx.sim.post(&post.id).unwrap();
    assert_eq!(updated.message, "approved");
    assert_eq!(updated.props["attachments"], json!([]));
    assert_eq!(updated.props["from_webhook"], "true", "kept by the server");
    assert!(updated.props.get("from_bot").is_none(), "replaced");
    assert_eq!(updated.history[0].message, "pending");
    let e = fx.sim.ephemeral_posts();
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].user_id.as_str(), e[0].message.as_str()),
        (fx.reviewer1.as_str(), "You approved r1")
    );
    assert_eq!(e[0].root_id, post.id);
    assert_eq!(outcome.ephemeral.unwrap().message, "You approved r1");
}

#[tokio::test]
async fn a_click_answer_with_null_props_keeps_them_and_an_empty_body_changes_nothing() {
    let fx = fixture(SimConfig::default()).await;
    let (url, _) = integration((
        200,
        "application/json",
        json!({"update": {"message": "m2"}}).to_string(),
    ))
    .await;
    let c = client(&fx.sim);
    let post = c
        .create_post(&NewPost::new(&fx.channel, "m1").with_props(buttons(&url)))
        .await
        .unwrap();
    fx.sim.click(&post.id, "deny", &fx.reviewer1).await.unwrap();
    let p = fx.sim.post(&post.id).unwrap();
    assert_eq!(p.message, "m2");
    assert_eq!(p.actions().count(), 2, "props kept");

    let (url, _) = integration((200, "text/plain", String::new())).await;
    let post = c
        .create_post(&NewPost::new(&fx.channel, "m1").with_props(buttons(&url)))
        .await
        .unwrap();
    let outcome = fx
        .sim
        .click(&post.id, "approve", &fx.reviewer1)
        .await
        .unwrap();
    assert!(outcome.updated.is_none() && outcome.ephemeral.is_none());
    assert_eq!(fx.sim.post(&post.id).unwrap().message, "m1");
}

#[tokio::test]
async fn a_failing_integration_or_a_non_member_click_is_an_error() {
    let fx = fixture(SimConfig::default()).await;
    let (url, _) = integration((500, "text/plain", "boom".into())).await;
    let c = client(&fx.sim);
    let post = c
        .create_post(&NewPost::new(&fx.channel, "m").with_props(buttons(&url)))
        .await
        .unwrap();
    let err = fx
        .sim
        .click(&post.id, "approve", &fx.reviewer1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SimError::Integration { status: 500, .. }),
        "{err}"
    );
    let err = fx
        .sim
        .click(&post.id, "approve", &fx.reviewer2)
        .await
        .unwrap_err();
    assert!(matches!(err, SimError::NotAMember { .. }), "{err}");
    let err = fx
        .sim
        .click(&post.id, "nope", &fx.reviewer1)
        .await
        .unwrap_err();
    assert!(matches!(err, SimError::NoSuchAction { .. }), "{err}");
}

#[tokio::test]
async fn a_dialog_opened_from_a_click_is_submitted_with_mattermosts_payload() {
    let fx = fixture(SimConfig::default()).await;
    let (url, seen) = integration((
        200,
        "application/json",
        json!({"errors": {"reason": "too short"}}).to_string(),
    ))
    .await;
    let c = client(&fx.sim);
    let trigger_id = fx.sim.issue_trigger(&fx.reviewer1, &fx.channel);
    c.open_dialog(&teleport_mattermost::mattermost::model::OpenDialog {
        trigger_id,
        url: url.clone(),
        dialog: teleport_mattermost::mattermost::model::Dialog {
            callback_id: "cb".into(),
            title: "Deny request".into(),
            elements: vec![teleport_mattermost::mattermost::model::DialogElement {
                display_name: "Reason".into(),
                name: "reason".into(),
                kind: "textarea".into(),
                ..Default::default()
            }],
            notify_on_cancel: true,
            state: "r1.sig".into(),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let dialog = fx.sim.dialogs().pop().unwrap();
    let outcome = fx
        .sim
        .submit_dialog(&dialog, &fx.reviewer1, json!({"reason": "no"}), false)
        .await
        .unwrap();
    assert_eq!(outcome.field_errors().unwrap()["reason"], "too short");
    let body: Value = serde_json::from_slice(&seen.lock().unwrap()[0].1).unwrap();
    let team = fx.sim.channel(&fx.channel).unwrap().team_id;
    assert_eq!(
        body,
        json!({"type": "dialog_submission", "callback_id": "cb", "state": "r1.sig",
               "user_id": fx.reviewer1, "channel_id": fx.channel, "team_id": team,
               "submission": {"reason": "no"}, "cancelled": false})
    );
    let cancelled = fx
        .sim
        .submit_dialog(&dialog, &fx.reviewer1, json!({"reason": "x"}), true)
        .await
        .unwrap();
    assert!(cancelled.sent);
    let body: Value = serde_json::from_slice(&seen.lock().unwrap()[1].1).unwrap();
    assert_eq!(
        (body["cancelled"].clone(), body["submission"].clone()),
        (json!(true), json!({}))
    );
}

#[tokio::test]
async fn a_slash_command_is_form_encoded_with_a_token_header_and_its_answer_is_shown() {
    let fx = fixture(SimConfig::default()).await;
    let answer = json!({"response_type": "in_channel", "text": "Request r1 approved"});
    let (url, seen) = integration((200, "application/json", answer.to_string())).await;
    let outcome = fx
        .sim
        .run_slash_command(
            &url,
            "cmdtoken",
            &fx.reviewer1,
            &fx.channel,
            "approve r1 looks fine",
        )
        .await
        .unwrap();
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Token cmdtoken");
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(headers["user-agent"], "Mattermost-Bot/1.1");
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(&body).unwrap();
    assert_eq!(form["token"], "cmdtoken");
    assert_eq!(form["command"], "/teleport");
    assert_eq!(form["text"], "approve r1 looks fine");
    assert_eq!(form["user_name"], "reviewer1");
    assert_eq!(form["channel_name"], "channel-llama");
    assert_eq!(form["team_domain"], "team-llama");
    assert_eq!(form["trigger_id"], outcome.trigger_id);
    assert!(form["response_url"].starts_with(&format!("{}hooks/commands/", fx.sim.url())));
    let posted = outcome.posted.unwrap();
    assert_eq!(
        (posted.user_id, posted.message),
        (fx.reviewer1.clone(), "Request r1 approved".into())
    );

    // The response_url accepts a later answer, shown to the caller only.
    let reply = raw_post_json(&form["response_url"], json!({"text": "done later"})).await;
    assert_eq!(reply, 200);
    assert_eq!(
        fx.sim.ephemeral_posts().last().unwrap().message,
        "done later"
    );
}

async fn raw_post_json(url: &str, body: Value) -> u16 {
    let (host, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer[9..12].parse().unwrap()
}

#[tokio::test]
async fn error_answers_carry_mattermosts_app_error_body() {
    let fx = fixture(SimConfig::default()).await;
    let raw = raw_get(&fx.sim.url(), "api/v4/users/me", "Bearer wrong").await;
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    let body: Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["id"], "api.context.session_expired.app_error");
    assert_eq!(body["status_code"], 401);
    assert_eq!(body["detailed_error"], "");
    assert_eq!(body["request_id"].as_str().unwrap().len(), 26);
    let token = format!("BEARER {}", fx.sim.bot_token());
    let raw = raw_get(&fx.sim.url(), "api/v4/nowhere", &token).await;
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
    assert!(raw.contains("api.context.404.app_error"), "{raw}");
}

async fn raw_get(base: &url::Url, path: &str, auth: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = format!("{}:{}", base.host_str().unwrap(), base.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn the_rate_limiter_answers_plain_text_429_with_headers() {
    let fx = fixture(SimConfig {
        rate_limit: Some(RateLimit::new(1, 1)),
        ..SimConfig::default()
    })
    .await;
    let token = format!("Bearer {}", fx.sim.bot_token());
    // A burst of 1 lets two requests through at once (the limit the headers give is burst + 1);
    // allowed answers carry the counters but no Retry-After.
    let first = raw_get(&fx.sim.url(), "api/v4/users/me", &token).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("x-ratelimit-limit: 2"), "{first}");
    assert!(first.contains("x-ratelimit-remaining: 1"), "{first}");
    assert!(first.contains("x-ratelimit-reset: 1"), "{first}");
    assert!(!first.contains("retry-after"), "{first}");
    raw_get(&fx.sim.url(), "api/v4/users/me", &token).await;
    let refused = raw_get(&fx.sim.url(), "api/v4/users/me", &token).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.contains("content-type: text/plain; charset=utf-8"),
        "{refused}"
    );
    assert!(
        refused.contains("x-content-type-options: nosniff"),
        "{refused}"
    );
    assert!(refused.contains("x-ratelimit-limit: 2"), "{refused}");
    assert!(refused.contains("x-ratelimit-remaining: 0"), "{refused}");
    assert!(refused.contains("x-ratelimit-reset: 2"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(refused.ends_with("limit exceeded\n"), "{refused}");
}

#[tokio::test(start_paused = true)]
async fn the_client_rides_out_the_rate_limiter() {
    let fx = fixture(SimConfig {
        rate_limit: Some(RateLimit::new(5, 3)),
        ..SimConfig::default()
    })
    .await;
    let c = client(&fx.sim);
    for i in 0..10 {
        c.create_post(&NewPost::new(&fx.channel, format!("post {i}")))
            .await
            .unwrap();
    }
    assert_eq!(fx.sim.post_count(), 10);
    // The pacer learned the limit from the first answer's headers and kept the others under it.
    let refused = fx.sim.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 0, "{:?}", fx.sim.requests());
}

#[tokio::test]
async fn waits_for_posts_without_polling() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let waiter = {
        let sim = fx.sim.clone();
        tokio::spawn(async move { sim.wait_for_posts(3, Duration::from_secs(5)).await })
    };
    for i in 0..3 {
        c.create_post(&NewPost::new(&fx.channel, format!("{i}")))
            .await
            .unwrap();
    }
    let posts = waiter.await.unwrap().unwrap();
    assert_eq!(posts.len(), 3);
    let none = fx.sim.wait_for_posts(4, Duration::from_millis(50)).await;
    assert!(none.is_err());
}

#[tokio::test]
async fn a_channel_removal_turns_posting_into_forbidden() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    c.create_post(&NewPost::new(&fx.channel, "in"))
        .await
        .unwrap();
    fx.sim.remove_channel_member(&fx.channel, fx.sim.bot_id());
    let err = c
        .create_post(&NewPost::new(&fx.channel, "out"))
        .await
        .unwrap_err();
    assert!(matches!(err, MattermostError::Forbidden { .. }), "{err}");
    assert_eq!(
        err.app_error_id(),
        Some("api.context.permissions.app_error")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_thousands_of_posts_without_slowing_down() {
    let fx = fixture(SimConfig {
        log_bodies: false,
        ..SimConfig::default()
    })
    .await;
    let c = client(&fx.sim);
    c.me().await.unwrap();
    let round = |n: usize| {
        let c = c.clone();
        let channel = fx.channel.clone();
        async move {
            let start = std::time::Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..32 {
                let c = c.clone();
                let channel = channel.clone();
                tasks.spawn(async move {
                    for i in 0..n / 32 {
                        let root = c
                            .create_post(&NewPost::new(&channel, format!("{w}-{i}")))
                            .await
                            .unwrap();
                        c.create_post(&NewPost::new(&channel, "reply").reply_to(&root.id))
                            .await
                            .unwrap();
                    }
                });
            }
            tasks.join_all().await;
            start.elapsed()
        }
    };
    let first = round(1024).await;
    let second = round(1024).await;
    assert_eq!(fx.sim.post_count(), 4096);
    eprintln!("2048 posts: {first:?}, then {second:?}");
    // No work grows with the number of stored posts: the second round is not much slower.
    assert!(
        second < first * 3 + Duration::from_millis(200),
        "{first:?} then {second:?}"
    );
}

#[tokio::test]
async fn without_dedup_a_repeated_pending_post_id_posts_again_and_since_lists_what_changed() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let mut post = NewPost::new(&fx.channel, "first");
    post.pending_post_id = Some("tm:r1:root:x".into());
    let first = c.create_post(&post).await.unwrap();
    assert_eq!(
        c.create_post(&post).await.unwrap().id,
        first.id,
        "de-duplicated by default"
    );
    fx.sim.set_pending_post_dedup(false);
    let second = c.create_post(&post).await.unwrap();
    assert_ne!(second.id, first.id);
    // `since` lists the posts changed after it.
    let ids = |posts: Vec<teleport_mattermost::mattermost::model::ListedPost>| {
        let mut ids: Vec<String> = posts.into_iter().map(|p| p.id).collect();
        ids.sort();
        ids
    };
    let all = c.channel_posts_since(&fx.channel, 1).await.unwrap();
    let mut both = vec![second.id.clone(), first.id.clone()];
    both.sort();
    assert_eq!(ids(all), both);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = c
        .create_post(&NewPost::new(&fx.channel, "later"))
        .await
        .unwrap();
    let since = c
        .channel_posts_since(&fx.channel, later.create_at as u64 - 1)
        .await
        .unwrap();
    assert_eq!(ids(since), vec![later.id.clone()]);
}

#[tokio::test]
async fn a_listing_past_the_servers_1000_post_cap_is_read_again_page_by_page() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let bot = fx.sim.bot_id().to_string();
    let before = fx.sim.post_as(&bot, &fx.channel, "", "older").unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..1100 {
        fx.sim
            .post_as(&bot, &fx.channel, "", &format!("post {i}"))
            .unwrap();
    }
    let since = fx
        .sim
        .posts_in(&fx.channel)
        .iter()
        .find(|p| p.message == "post 0")
        .unwrap()
        .create_at as u64;
    let listed = c.channel_posts_since(&fx.channel, since).await.unwrap();
    assert_eq!(listed.len(), 1100, "all of them, not the first 1000");
    assert!(listed.iter().all(|p| p.id != before.id));
    assert!(
        fx.sim
            .request_count("GET", &format!("/api/v4/channels/{}/posts", fx.channel))
            >= 7
    );
}
