//! The Mattermost client against the simulator over real sockets: every call, every error
//! class, retries (with paused time), idempotent post creation and the recipient cache.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use teleport_mattermost::mattermost::model::{
    Dialog, DialogElement, NewPost, OpenDialog, PostPatch, PostUpdate,
};
use teleport_mattermost::mattermost::{
    ClientOptions, MattermostClient, MattermostError, RecipientKind, RetryPolicy, Target,
};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::route::Recipient;
use teleport_mattermost_sim::mattermost::{MattermostSim, RouteFilter, SimConfig};

/// A simulator with team-llama/channel-llama (the bot is a member), a private channel the bot
/// is not in, and two reviewers.
pub(crate) struct Fixture {
    pub sim: MattermostSim,
    pub channel: String,
    pub private_channel: String,
    pub reviewer1: String,
    pub reviewer2: String,
}

pub(crate) async fn fixture(config: SimConfig) -> Fixture {
    let sim = MattermostSim::start(config).await.unwrap();
    let team = sim.add_team("team-llama");
    let channel = sim.add_channel(&team, "channel-llama");
    sim.add_channel_member(&channel, sim.bot_id());
    let private_channel = sim.add_private_channel(&team, "secret");
    let reviewer1 = sim.add_user("reviewer1", "reviewer1@example.com");
    let reviewer2 = sim.add_user("reviewer2", "reviewer2@example.com");
    sim.add_channel_member(&channel, &reviewer1);
    Fixture {
        sim,
        channel,
        private_channel,
        reviewer1,
        reviewer2,
    }
}

pub(crate) fn client_with(
    sim: &MattermostSim,
    f: impl FnOnce(&mut ClientOptions),
) -> MattermostClient {
    let mut options = ClientOptions::new(sim.url(), SecretString::from(sim.bot_token()));
    f(&mut options);
    MattermostClient::new(options, &Metrics::new()).unwrap()
}

pub(crate) fn client(sim: &MattermostSim) -> MattermostClient {
    client_with(sim, |_| {})
}

fn llama() -> Recipient {
    Recipient::parse("team-llama/channel-llama").unwrap()
}

#[tokio::test]
async fn every_lookup_call_returns_the_simulated_objects() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let me = c.me().await.unwrap();
    assert_eq!(me.id, fx.sim.bot_id());
    assert!(me.is_bot);
    // Once, unless that call was retried (CI once saw two here, on a loaded machine).
    let fetched = fx.sim.request_count("GET", "/api/v4/users/me");
    assert_eq!(c.bot_id().await.unwrap(), fx.sim.bot_id());
    let by_id = c.user_by_id(&fx.reviewer1).await.unwrap();
    assert_eq!(by_id.username, "reviewer1");
    let by_email = c.user_by_email("Reviewer1@Example.COM").await.unwrap();
    assert_eq!(by_email.id, fx.reviewer1, "the e-mail is lower-cased first");
    let by_name = c.user_by_username("@reviewer2").await.unwrap();
    assert_eq!(by_name.id, fx.reviewer2);
    let team = c.team_by_name("team-llama").await.unwrap();
    assert_eq!(team.name, "team-llama");
    let channel = c
        .channel_by_name("team-llama", "channel-llama")
        .await
        .unwrap();
    assert_eq!(channel.id, fx.channel);
    assert_eq!(channel.team_id, team.id);
    // `bot_id` reuses what `me` fetched.
    let calls: Vec<_> = fx
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v4/users/me"))
        .map(|r| (r.method, r.path, r.status))
        .collect();
    assert_eq!(calls.len(), fetched, "{calls:?}");
    assert!((1..=2).contains(&fetched), "{calls:?}");
}

#[tokio::test]
async fn the_direct_channel_is_stable_per_user_pair() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let dm = c.direct_channel(&fx.reviewer1).await.unwrap();
    assert_eq!(dm.kind, "D");
    let mut pair = [fx.sim.bot_id().to_string(), fx.reviewer1.clone()];
    pair.sort();
    assert_eq!(dm.name, format!("{}__{}", pair[0], pair[1]));
    assert_eq!(c.direct_channel(&fx.reviewer1).await.unwrap().id, dm.id);
    assert_eq!(
        fx.sim.dm_channel(&fx.reviewer1, fx.sim.bot_id()),
        Some(dm.id.clone())
    );
    let body = fx
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v4/channels/direct")
        .unwrap()
        .json();
    assert_eq!(body, json!([fx.sim.bot_id(), fx.reviewer1]));
}

#[tokio::test]
async fn posts_replies_edits_and_reads_round_trip() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let props = json!({"attachments": [{"text": "", "actions": [{"id": "approve", "type": "button", "name": "Approve", "integration": {"url": "http://127.0.0.1:1/a", "context": {"k": "v"}}}]}]});
    let root = c
        .create_post(&NewPost::new(&fx.channel, "root").with_props(props.clone()))
        .await
        .unwrap();
    assert_eq!(root.channel_id, fx.channel);
    assert_eq!(root.props["from_bot"], "true");
    assert!(
        root.props["attachments"][0]["actions"][0]
            .get("integration")
            .is_none(),
        "Mattermost never sends integrations back"
    );
    let reply = c
        .create_post(&NewPost::new(&fx.channel, "reply").reply_to(&root.id))
        .await
        .unwrap();
    assert_eq!(reply.root_id, root.id);
    assert_eq!(fx.sim.thread_replies(&root.id)[0].id, reply.id);

    let updated = c
        .update_post(&PostUpdate {
            id: root.id.clone(),
            message: "root, approved".into(),
            props: Some(json!({}).into()),
        })
        .await
        .unwrap();
    assert_eq!(updated.message, "root, approved");
    assert!(
        updated.props.get("attachments").is_none(),
        "props replaced whole"
    );
    let patched = c
        .patch_post(
            &root.id,
            &PostPatch {
                message: None,
                props: Some(json!({"x": "y"}).into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.message, "root, approved", "patch keeps the message");
    assert_eq!(patched.props["x"], "y");
    let read = c.get_post(&root.id).await.unwrap();
    assert_eq!(read.message, "root, approved");
    let stored = fx.sim.post(&root.id).unwrap();
    assert_eq!(stored.history.len(), 2);
    assert_eq!(stored.history[0].message, "root");
    assert!(stored.edit_at > 0);

    c.add_reaction(&root.id, "white_check_mark").await.unwrap();
    assert_eq!(fx.sim.reactions()[0].emoji_name, "white_check_mark");
}

#[tokio::test]
async fn a_reply_to_a_reply_is_refused_with_mattermosts_error_id() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let root = c
        .create_post(&NewPost::new(&fx.channel, "root"))
        .await
        .unwrap();
    let reply = c
        .create_post(&NewPost::new(&fx.channel, "r").reply_to(&root.id))
        .await
        .unwrap();
    let err = c
        .create_post(&NewPost::new(&fx.channel, "rr").reply_to(&reply.id))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MattermostError::BadRequest { status: 400, .. }),
        "{err}"
    );
    assert_eq!(
        err.app_error_id(),
        Some("api.post.create_post.root_id.app_error")
    );
}

#[tokio::test]
async fn opens_a_dialog_with_a_fresh_trigger_id() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let trigger_id = fx.sim.issue_trigger(&fx.reviewer1, &fx.channel);
    let dialog = OpenDialog {
        trigger_id,
        url: "http://127.0.0.1:9/mattermost/dialog".into(),
        dialog: Dialog {
            callback_id: "deny".into(),
            title: "Deny access request".into(),
            elements: vec![DialogElement {
                display_name: "Reason".into(),
                name: "reason".into(),
                kind: "textarea".into(),
                max_length: Some(1000),
                ..DialogElement::default()
            }],
            submit_label: "Deny".into(),
            notify_on_cancel: false,
            state: "req.sig".into(),
            ..Dialog::default()
        },
    };
    c.open_dialog(&dialog).await.unwrap();
    let opened = fx.sim.dialogs();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].user_id, fx.reviewer1);
    assert_eq!(opened[0].dialog["state"], "req.sig");

    let bad = OpenDialog {
        trigger_id: "forged".into(),
        ..dialog
    };
    let err = c.open_dialog(&bad).await.unwrap_err();
    assert_eq!(
        err.app_error_id(),
        Some("interactive_message.decode_trigger_id.verify_signature_failed")
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_trigger_id_cannot_open_a_dialog() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let trigger_id = fx.sim.issue_trigger(&fx.reviewer1, &fx.channel);
    tokio::time::advance(Duration::from_secs(31)).await;
    let err = c
        .open_dialog(&OpenDialog {
            trigger_id,
            url: "http://127.0.0.1:9/d".into(),
            dialog: Dialog {
                title: "Deny".into(),
                ..Dialog::default()
            },
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.app_error_id(),
        Some("interactive_message.decode_trigger_id.expired")
    );
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_at_once_with_the_fix() {
    let fx = fixture(SimConfig::default()).await;
    let secret = "not-the-token-0123456789";
    let c = client_with(&fx.sim, |o| o.token = SecretString::from(secret));
    let err = c.me().await.unwrap_err();
    assert!(matches!(err, MattermostError::Unauthorized { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("mattermost.token"), "{text}");
    assert!(
        text.contains("api.context.session_expired.app_error"),
        "{text}"
    );
    assert!(!text.contains(secret));
    assert!(!format!("{c:?} {err:?}").contains(secret));
    assert_eq!(
        fx.sim.request_count("GET", "/api/v4/users/me"),
        1,
        "not retried"
    );
    let sent = &fx.sim.requests()[0];
    assert_eq!(sent.auth_scheme.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn posting_where_the_bot_is_not_a_member_names_the_channel_and_the_invite_fix() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    // Resolved (public channel, readable by team members), so the error can name it.
    let team = fx.sim.channel(&fx.channel).unwrap().team_id;
    let open = fx.sim.add_channel(&team, "open-but-not-joined");
    let resolved = c
        .resolve(&Recipient::parse("team-llama/open-but-not-joined").unwrap())
        .await
        .unwrap();
    assert_eq!(resolved.channel_id, open);
    c.me().await.unwrap();
    let err = c
        .create_post(&NewPost::new(&open, "hello"))
        .await
        .unwrap_err();
    let MattermostError::Forbidden { target, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        target,
        &Target::ChannelId {
            id: open.clone(),
            display: Some("team-llama/open-but-not-joined".into())
        }
    );
    let text = err.to_string();
    assert!(text.contains("team-llama/open-but-not-joined"), "{text}");
    assert!(text.contains("/invite @teleport"), "{text}");
    assert_eq!(
        fx.sim.request_count("POST", "/api/v4/posts"),
        1,
        "not retried"
    );

    // A private channel the bot is not in cannot even be looked up.
    let _ = &fx.private_channel;
    let err = c.channel_by_name("team-llama", "secret").await.unwrap_err();
    assert!(matches!(err, MattermostError::Forbidden { .. }), "{err}");
    assert!(
        err.to_string().contains("channel \"team-llama/secret\""),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_names_are_not_found_and_named() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let err = c.team_by_name("no-team").await.unwrap_err();
    assert!(matches!(err, MattermostError::NotFound { .. }));
    assert!(err.to_string().contains("team \"no-team\""), "{err}");
    assert_eq!(
        err.app_error_id(),
        Some("app.team.get_by_name.missing.app_error")
    );
    let err = c.channel_by_name("team-llama", "nope").await.unwrap_err();
    assert!(
        err.to_string().contains("channel \"team-llama/nope\""),
        "{err}"
    );
    assert_eq!(
        err.app_error_id(),
        Some("app.channel.get_by_name.missing.app_error")
    );
    let err = c
        .resolve(&Recipient::parse("ghost@example.com").unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("user with e-mail \"ghost@example.com\""),
        "{err}"
    );
    assert_eq!(err.app_error_id(), Some("app.user.missing_account.const"));
    let err = c.user_by_username("ghost").await.unwrap_err();
    assert!(err.to_string().contains("user @ghost"), "{err}");
}

#[tokio::test]
async fn hidden_emails_give_forbidden_with_the_username_advice() {
    let fx = fixture(SimConfig {
        hide_emails: true,
        ..SimConfig::default()
    })
    .await;
    let c = client(&fx.sim);
    let err = c.user_by_email("reviewer1@example.com").await.unwrap_err();
    assert_eq!(
        err.app_error_id(),
        Some("api.user.get_user_by_email.permissions.app_error")
    );
    assert!(err.to_string().contains("@username"), "{err}");
    assert_eq!(
        c.user_by_id(&fx.reviewer1).await.unwrap().email,
        "",
        "sanitized"
    );
}

#[tokio::test]
async fn a_message_over_the_server_limit_is_too_large_and_not_retried() {
    let fx = fixture(SimConfig {
        max_post_runes: 4000,
        ..SimConfig::default()
    })
    .await;
    let c = client(&fx.sim);
    c.create_post(&NewPost::new(&fx.channel, "é".repeat(4000)))
        .await
        .unwrap();
    let err = c
        .create_post(&NewPost::new(&fx.channel, "é".repeat(4001)))
        .await
        .unwrap_err();
    assert!(matches!(err, MattermostError::TooLarge { .. }), "{err}");
    assert_eq!(fx.sim.request_count("POST", "/api/v4/posts"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_as_long_as_the_server_says_then_succeeds() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    c.me().await.unwrap();
    fx.sim
        .faults()
        .rate_limit_next(Some(RouteFilter::new("POST", "/api/v4/posts")), 1, 3);
    let start = tokio::time::Instant::now();
    c.create_post(&NewPost::new(&fx.channel, "hi"))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(fx.sim.post_count(), 1);
    let statuses: Vec<u16> = fx
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v4/posts")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 201]);
}

#[tokio::test(start_paused = true)]
async fn a_429_asking_for_longer_than_the_cap_fails_at_once_with_the_wait() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    fx.sim.faults().rate_limit_next(None, 1, 120);
    let err = c.me().await.unwrap_err();
    let MattermostError::RateLimited { wait, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(wait, Duration::from_secs(120));
    assert_eq!(fx.sim.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff_until_one_succeeds() {
    let fx = fixture(SimConfig::default()).await;
    let metrics = Metrics::new();
    let c = MattermostClient::new(
        ClientOptions::new(fx.sim.url(), SecretString::from(fx.sim.bot_token())),
        &metrics,
    )
    .unwrap();
    c.me().await.unwrap();
    fx.sim
        .faults()
        .fail_next_on(RouteFilter::new("POST", "/api/v4/posts"), 2, 500);
    let start = tokio::time::Instant::now();
    let post = c
        .create_post(&NewPost::new(&fx.channel, "hi"))
        .await
        .unwrap();
    // Backoff 100–200 ms, then 200–400 ms.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited <= Duration::from_millis(700), "{waited:?}");
    assert_eq!(fx.sim.posts().len(), 1);
    assert_eq!(fx.sim.posts()[0].id, post.id);
    assert_eq!(fx.sim.request_count("POST", "/api/v4/posts"), 3);
    let text = metrics.render();
    assert!(
        text.contains(r#"teleport_mattermost_mattermost_retries_total{call="create_post",reason="server_error"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"teleport_mattermost_mattermost_call_duration_seconds_count{call="create_post",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"teleport_mattermost_mattermost_call_duration_seconds_count{call="create_post",outcome="server_error"} 2"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_forever_give_up_after_the_attempt_bound() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    fx.sim.faults().fail_always(None, 503);
    let err = c.me().await.unwrap_err();
    assert!(
        matches!(err, MattermostError::Server { status: 503, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert_eq!(
        fx.sim.requests().len(),
        RetryPolicy::default().max_attempts as usize
    );
}

#[tokio::test(start_paused = true)]
async fn a_create_retried_after_a_timeout_does_not_post_twice() {
    let fx = fixture(SimConfig::default()).await;
    let c = client_with(&fx.sim, |o| o.timeout = Duration::from_secs(1));
    c.me().await.unwrap();
    // The server stores the post but answers too late for the client.
    fx.sim.faults().delay_next(
        Some(RouteFilter::new("POST", "/api/v4/posts")),
        1,
        Duration::from_secs(5),
    );
    let post = c
        .create_post(&NewPost::new(&fx.channel, "once"))
        .await
        .unwrap();
    let posts = fx.sim.posts();
    assert_eq!(posts.len(), 1, "one post despite two attempts");
    assert_eq!(posts[0].id, post.id);
    let attempts: Vec<_> = fx
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v4/posts")
        .collect();
    assert_eq!(attempts.len(), 2);
    let key = attempts[0].json()["pending_post_id"].clone();
    assert_eq!(attempts[1].json()["pending_post_id"], key);
    let key = key.as_str().unwrap();
    assert!(key.starts_with(&format!("{}:", fx.sim.bot_id())), "{key}");
    // The duplicate came from the server's cache, without pending_post_id.
    assert_eq!(post.pending_post_id, "");
}

#[tokio::test]
async fn each_logical_post_gets_its_own_pending_post_id() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    for _ in 0..3 {
        c.create_post(&NewPost::new(&fx.channel, "same text"))
            .await
            .unwrap();
    }
    assert_eq!(fx.sim.post_count(), 3);
    let keys: std::collections::HashSet<String> = fx
        .sim
        .posts()
        .iter()
        .map(|p| p.pending_post_id.clone())
        .collect();
    assert_eq!(keys.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_on_a_read_is_retried_and_reported_as_a_timeout() {
    let fx = fixture(SimConfig::default()).await;
    let c = client_with(&fx.sim, |o| {
        o.timeout = Duration::from_millis(500);
        o.retry.max_attempts = 2;
    });
    fx.sim.faults().delay_next(None, 2, Duration::from_secs(2));
    let err = c.team_by_name("team-llama").await.unwrap_err();
    assert!(
        matches!(
            err,
            MattermostError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(fx.sim.request_count("GET", "/api/v4/teams"), 2);
}

#[tokio::test]
async fn a_connection_refused_is_a_transport_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let mut options = ClientOptions::new(url, SecretString::from("t"));
    options.retry = RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let c = MattermostClient::new(options, &Metrics::new()).unwrap();
    let err = c.me().await.unwrap_err();
    assert!(
        matches!(
            err,
            MattermostError::Transport {
                timed_out: false,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn resolves_the_three_recipient_forms() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let channel = c.resolve(&llama()).await.unwrap();
    assert_eq!(channel.channel_id, fx.channel);
    assert_eq!(channel.kind, RecipientKind::Channel);
    assert_eq!(channel.display, "team-llama/channel-llama");
    let by_email = c
        .resolve(&Recipient::parse("reviewer1@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(by_email.kind, RecipientKind::DirectMessage);
    assert_eq!(
        Some(by_email.channel_id.clone()),
        fx.sim.dm_channel(fx.sim.bot_id(), &fx.reviewer1)
    );
    let by_name = c
        .resolve(&Recipient::parse("@reviewer1").unwrap())
        .await
        .unwrap();
    assert_eq!(by_name.channel_id, by_email.channel_id);
    assert_eq!(by_name.display, "@reviewer1");
}

#[tokio::test(start_paused = true)]
async fn a_second_resolve_makes_no_request_until_the_ttl_expires() {
    let fx = fixture(SimConfig::default()).await;
    let c = client_with(&fx.sim, |o| o.cache_ttl = Duration::from_secs(60));
    let email = Recipient::parse("reviewer2@example.com").unwrap();
    c.resolve(&llama()).await.unwrap();
    c.resolve(&email).await.unwrap();
    let after_first = fx.sim.requests().len();
    c.resolve(&llama()).await.unwrap();
    c.resolve(&email).await.unwrap();
    assert_eq!(
        fx.sim.requests().len(),
        after_first,
        "served from the cache"
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    c.resolve(&llama()).await.unwrap();
    assert_eq!(
        fx.sim.requests().len(),
        after_first + 1,
        "refetched after the TTL"
    );
    c.invalidate(&email);
    c.resolve(&email).await.unwrap();
    assert_eq!(
        fx.sim.requests().len(),
        after_first + 3,
        "user and DM looked up again after invalidation"
    );
}

#[tokio::test]
async fn a_burst_of_resolves_for_one_recipient_makes_one_lookup() {
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    fx.sim.faults().set_latency(Duration::from_millis(20));
    let email = Recipient::parse("reviewer1@example.com").unwrap();
    let all = futures_util::future::join_all((0..20).map(|_| c.resolve(&email))).await;
    assert!(all.iter().all(|r| r.is_ok()));
    assert_eq!(fx.sim.request_count("GET", "/api/v4/users/email/"), 1);
    assert_eq!(fx.sim.request_count("POST", "/api/v4/channels/direct"), 1);
}

#[tokio::test]
async fn the_exact_bodies_sent_for_create_update_and_patch() {
    use teleport_mattermost::mattermost::render::{
        ActionButton, ButtonStyle, RequestView, Status, root_post,
    };
    let fx = fixture(SimConfig::default()).await;
    let c = client(&fx.sim);
    let view = RequestView {
        id: "3f6bd3ab-5e41-4d0e-9b5f-2a7c1c0f4c11".into(),
        user: "alice".into(),
        roles: vec!["editor".into()],
        resources: vec![],
        request_reason: Some("because of".into()),
        cluster: None,
        created: time::macros::datetime!(2026-03-02 14:05 UTC),
        access_expires: None,
        max_duration: None,
        status: Status::Pending,
        resolve_reason: None,
        reviews: None,
        link: None,
        buttons: Some(vec![ActionButton {
            id: "approve".into(),
            name: "Approve".into(),
            style: ButtonStyle::Success,
            url: url::Url::parse("https://tm.example.com/mattermost/action").unwrap(),
            context: json!({"action": "approve"}).into(),
        }]),
        promoted_list_title: None,
        waiting: None,
        escalated: false,
    };
    let root = root_post(&view);
    let created = c.create_post(&root.new_post(&fx.channel)).await.unwrap();
    let resolved = root_post(&RequestView {
        status: Status::Approved,
        buttons: None,
        ..view
    });
    c.update_post(&resolved.update(&created.id)).await.unwrap();
    c.patch_post(
        &created.id,
        &PostPatch {
            message: Some(resolved.message.clone()),
            props: Some(resolved.props.clone()),
        },
    )
    .await
    .unwrap();
    let bodies: Vec<serde_json::Value> = fx
        .sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| {
            let text = serde_json::to_string(
                &json!({"request": format!("{} {}", r.method, r.path), "body": r.json()}),
            )
            .unwrap()
            .replace(&created.id, "<post id>")
            .replace(&fx.channel, "<channel id>")
            .replace(fx.sim.bot_id(), "<bot id>");
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if let Some(p) = v["body"].get_mut("pending_post_id") {
                let s = p.as_str().unwrap();
                assert!(s.starts_with("<bot id>:"), "{s}");
                *p = json!("<bot id>:<unix ms>");
            }
            v
        })
        .collect();
    insta::assert_json_snapshot!(bodies);
    let stored = fx.sim.post(&created.id).unwrap();
    assert_eq!(stored.message, resolved.message);
    let attachments = stored.props["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "one attachment, replaced");
    assert!(attachments[0].get("actions").is_none(), "buttons removed");
    assert_eq!(attachments[0]["color"], "#2EB886", "approved shows green");
}

#[tokio::test]
async fn https_is_trusted_with_the_extra_ca_and_refused_without_it() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "teleport-mattermost test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let tls = teleport_mattermost_sim::mattermost::server_tls_config(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let sim = MattermostSim::start(SimConfig {
        tls: Some(tls),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(sim.url().scheme(), "https");
    let untrusting = client_with(&sim, |o| o.retry = RetryPolicy::none());
    let err = untrusting.me().await.unwrap_err();
    assert!(matches!(err, MattermostError::Transport { .. }), "{err}");
    let trusting = client_with(&sim, |o| o.extra_root_certs = vec![ca_cert.der().clone()]);
    assert_eq!(trusting.me().await.unwrap().id, sim.bot_id());
}

#[tokio::test(start_paused = true)]
async fn create_retries_stop_before_mattermost_forgets_the_pending_post_id() {
    let fx = fixture(SimConfig::default()).await;
    let c = client_with(&fx.sim, |o| {
        o.timeout = Duration::from_secs(10);
        o.retry.max_attempts = 10;
    });
    c.me().await.unwrap();
    fx.sim.faults().delay_next(
        Some(RouteFilter::new("POST", "/api/v4/posts")),
        100,
        Duration::from_secs(12),
    );
    let start = tokio::time::Instant::now();
    let err = c
        .create_post(&NewPost::new(&fx.channel, "slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MattermostError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err}"
    );
    // Attempts start at ~0 s, ~10 s and ~20 s; a fourth would start after the server's
    // 30 s de-duplication window could have closed, so there is none.
    assert_eq!(fx.sim.request_count("POST", "/api/v4/posts"), 3);
    assert!(
        start.elapsed() < Duration::from_secs(31),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        fx.sim.post_count(),
        1,
        "every attempt reached the same post"
    );
}
