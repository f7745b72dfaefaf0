//! In-chat review refuses what it cannot attribute or authenticate: forged, tampered, expired
//! or replayed button contexts, buttons copied onto other posts, dialog states submitted by
//! someone else, unlinked users, self-review, reviewers without rights, disallowed sources,
//! and clusters too old for on-behalf reviews. Nothing reaches Teleport's audit in those cases.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use teleport_mattermost::access::Resolution;
use teleport_mattermost::mattermost::model::NewPost;
use teleport_mattermost::mattermost::{ClientOptions, MattermostClient};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::signing::{Action, Signer};
use teleport_mattermost_sim::mattermost::SimError;
use teleport_mattermost_sim::teleport::fixtures::{
    ADMIN, BYSTANDER, REQUESTER, REVIEWER1, REVIEWER2,
};
use teleport_mattermost_sim::teleport::{Method, SimOptions};

use crate::harness::{ReviewSetup, SIGNING_SECRET, WAIT, World};
use crate::review::{
    answer, click_text, context, mm, post_when, raw_click, request, root_with_buttons, slash,
};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn integration_status(r: Result<impl std::fmt::Debug, SimError>) -> u16 {
    match r {
        Err(SimError::Integration { status, .. }) => status,
        other => panic!("expected an integration error, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_tampered_and_expired_contexts_get_401_and_submit_nothing() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let other = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let real = context(&post, "approve");
    let channel = post.channel_id.clone();

    let forged = serde_json::to_value(
        Signer::new(SecretString::from(
            "another-secret-another-secret-xx".to_string(),
        ))
        .button(&id, Action::Approve, &channel, now() + 600),
    )
    .unwrap();
    let mut tampered_id = real.clone();
    tampered_id["request_id"] = json!(other);
    let mut tampered_action = context(&post, "deny");
    tampered_action["action"] = json!("approve");
    let ours = Signer::new(SecretString::from(SIGNING_SECRET.to_string()));
    let expired =
        serde_json::to_value(ours.button(&id, Action::Approve, &channel, now() - 60)).unwrap();
    for (what, ctx) in [
        ("forged", forged),
        ("tampered request id", tampered_id),
        ("tampered action", tampered_action),
        ("expired", expired),
        ("missing", json!({})),
        ("unsigned", json!({"request_id": id, "action": "approve"})),
    ] {
        let (status, body) = raw_click(&svc, &w, &post, REVIEWER1, ctx).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body, json!("unauthorized\n"), "{what}: no details");
    }
    assert!(w.tp.review_audit().is_empty());
    let metrics = svc.metrics.render();
    assert!(
        metrics.contains(
            "teleport_mattermost_callbacks_refused_total{reason=\"expired\",route=\"action\"} 1"
        ),
        "{metrics}"
    );
    // The same click with a context this service signed goes through.
    let fresh =
        serde_json::to_value(ours.button(&id, Action::Approve, &channel, now() + 600)).unwrap();
    let (status, body) = raw_click(&svc, &w, &post, REVIEWER1, fresh).await;
    assert_eq!(status, 200);
    assert!(
        body["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("You approved"),
        "{body}"
    );
    assert_eq!(w.tp.review_audit().len(), 1);
}

#[tokio::test]
async fn a_replayed_click_after_resolution_changes_nothing() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let saved = context(&post, "approve");
    click_text(&w, &post, "approve", REVIEWER1).await;
    post_when(&w, &post.id, |p| p.actions().count() == 0).await;
    w.data_when(&id, |d| d.resolution == Resolution::Approved)
        .await;
    let (status, body) = raw_click(&svc, &w, &post, REVIEWER2, saved).await;
    assert_eq!(status, 200);
    let text = body["ephemeral_text"].as_str().unwrap();
    assert!(text.contains("already **APPROVED**"), "{text}");
    assert_eq!(w.tp.review_audit().len(), 1);
}

#[tokio::test]
async fn a_signed_button_copied_onto_another_post_is_refused() {
    let w = World::start().await;
    let _svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    // Anyone holding the bot token could post our (signed) buttons elsewhere.
    let bot = MattermostClient::new(
        ClientOptions::new(w.mm.url(), SecretString::from(w.mm.bot_token().to_string())),
        &Metrics::new(),
    )
    .unwrap();
    let copy = bot
        .create_post(&NewPost::new(&w.channel_id, "copy").with_props(post.props.clone()))
        .await
        .unwrap();
    let reply = bot
        .create_post(
            &NewPost::new(&w.channel_id, "reply")
                .reply_to(&post.id)
                .with_props(post.props.clone()),
        )
        .await
        .unwrap();
    for p in [&copy.id, &reply.id] {
        let r = w.mm.click(p, "approve", &mm(&w, REVIEWER1)).await;
        assert_eq!(integration_status(r), 403);
    }
    assert!(w.tp.review_audit().is_empty());
}

#[tokio::test]
async fn a_dialog_state_only_counts_for_the_user_it_was_opened_for() {
    let w = World::start().await;
    let _svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    w.mm.click(&post.id, "deny", &mm(&w, REVIEWER1))
        .await
        .unwrap();
    let dialog = w.mm.dialogs().remove(0);
    let reason = json!({"reason": "no"});
    let stolen =
        w.mm.submit_dialog(&dialog, &mm(&w, REVIEWER2), reason.clone(), false)
            .await;
    assert_eq!(integration_status(stolen), 401);
    let mut forged = dialog.clone();
    let mut state: Value = serde_json::from_str(forged.dialog["state"].as_str().unwrap()).unwrap();
    state["action"] = json!("approve");
    forged.dialog["state"] = json!(state.to_string());
    let r =
        w.mm.submit_dialog(&forged, &mm(&w, REVIEWER1), reason.clone(), false)
            .await;
    assert_eq!(integration_status(r), 401);
    assert!(w.tp.review_audit().is_empty());
    let ok =
        w.mm.submit_dialog(&dialog, &mm(&w, REVIEWER1), reason, false)
            .await
            .unwrap();
    assert!(ok.error().is_none(), "{:?}", ok.body);
    assert_eq!(w.tp.review_audit().len(), 1);
}

#[tokio::test]
async fn an_unlinked_mattermost_user_is_told_how_to_link_their_account() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    // The Mattermost user `admin` has no Teleport user carrying its id.
    let text = click_text(&w, &post, "approve", ADMIN).await;
    assert!(text.contains("not linked to a Teleport user"), "{text}");
    assert!(text.contains("`mattermost_user_id`"), "{text}");
    assert!(text.contains(&mm(&w, ADMIN)), "{text}");
    let out = slash(&w, &svc, ADMIN, &format!("approve {id}")).await;
    assert!(answer(&out).contains("not linked"));
    assert!(w.tp.review_audit().is_empty());
}

#[tokio::test]
async fn an_email_match_binds_only_when_allowed() {
    let w = World::start().await;
    // reviewer1's Teleport user loses its trait; its name is its Mattermost e-mail.
    w.tp.set_user_traits(REVIEWER1, BTreeMap::new());
    let strict = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let text = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(text.contains("not linked"), "{text}");
    assert!(w.tp.review_audit().is_empty());
    strict.stop().await.unwrap();

    let lenient = w
        .review_service_with(ReviewSetup {
            review: "allow_email_username_match = true".into(),
            ..Default::default()
        })
        .await;
    let (status, body) = raw_click(&lenient, &w, &post, REVIEWER1, context(&post, "approve")).await;
    assert_eq!(status, 200);
    assert!(
        body["ephemeral_text"]
            .as_str()
            .unwrap()
            .contains("You approved"),
        "{body}"
    );
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].author, REVIEWER1);
}

#[tokio::test]
async fn reviewing_ones_own_request_is_refused() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REVIEWER1, 1);
    let post = root_with_buttons(&w, &id).await;
    let text = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(text.contains("your own access request"), "{text}");
    let out = slash(&w, &svc, REVIEWER1, &format!("approve {id}")).await;
    assert!(answer(&out).contains("your own access request"));
    assert!(w.tp.review_audit().is_empty());
    assert!(svc.metrics.render().contains(
        "teleport_mattermost_reviews_total{outcome=\"self_review\",source=\"button\"} 1"
    ));
}

#[tokio::test]
async fn a_reviewer_without_rights_gets_teleports_reason() {
    let w = World::start().await;
    let _svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let text = click_text(&w, &post, "approve", BYSTANDER).await;
    assert!(
        text.contains("does not allow `bystander@example.com`"),
        "{text}"
    );
    assert!(
        text.contains("cannot review request"),
        "Teleport's reason: {text}"
    );
    assert!(w.tp.review_audit().is_empty());
}

#[tokio::test]
async fn callbacks_from_outside_the_allowed_sources_get_403() {
    let w = World::start().await;
    let svc = w
        .review_service_with(ReviewSetup {
            allowed_sources: "[\"10.0.0.0/8\"]".into(),
            ..Default::default()
        })
        .await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let r = w.mm.click(&post.id, "approve", &mm(&w, REVIEWER1)).await;
    assert_eq!(integration_status(r), 403);
    let r =
        w.mm.run_slash_command(
            &svc.url("command"),
            crate::harness::COMMAND_TOKEN,
            &mm(&w, REVIEWER1),
            &w.channel_id,
            "help",
        )
        .await;
    assert_eq!(integration_status(r), 403);
    assert!(w.tp.review_audit().is_empty());
}

#[tokio::test]
async fn callbacks_answer_503_during_start_up_and_404_when_review_is_off() {
    let w = World::start().await;
    w.tp.faults()
        .delay_next(Method::Ping, 1, Duration::from_millis(800));
    let starting = w.review_service_unready(ReviewSetup::default()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(starting.url("action"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    starting.ready().await;
    let r = http
        .post(starting.url("action"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "ready: now the signature is checked");

    let off = w.service("").await;
    for route in ["action", "dialog", "command"] {
        let r = http.post(off.url(route)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 404, "{route}");
    }
}

#[tokio::test]
async fn an_old_cluster_gets_no_buttons_and_the_command_explains_why() {
    let w = World::start_with(SimOptions {
        server_version: "18.10.0".into(),
        ..Default::default()
    })
    .await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post =
        w.mm.wait_for(WAIT, |sim| {
            sim.posts_in(&w.channel_id)
                .into_iter()
                .find(|p| p.message.contains(&id))
        })
        .await
        .unwrap();
    assert_eq!(post.actions().count(), 0, "no buttons before 18.11");
    let out = slash(&w, &svc, REVIEWER1, &format!("approve {}", &id[..8])).await;
    let text = answer(&out);
    assert!(
        text.contains("needs Teleport 18.11") && text.contains("18.10.0"),
        "{text}"
    );
    assert!(
        text.contains(&format!("`tsh request review --approve {id}`")),
        "{text}"
    );
    assert!(
        text.contains(&format!("https://teleport.sim.test/web/requests/{id}")),
        "{text}"
    );
    assert!(w.tp.review_audit().is_empty());
}

#[tokio::test]
async fn a_dialog_submitted_after_the_request_was_resolved_runs_the_checks_and_submits_nothing() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    w.mm.click(&post.id, "deny", &mm(&w, REVIEWER1))
        .await
        .unwrap();
    let dialog = w.mm.dialogs().remove(0);
    // While reviewer1 writes a reason, reviewer2 approves and the request is resolved.
    click_text(&w, &post, "approve", REVIEWER2).await;
    let submits = w.tp.faults().calls(Method::SubmitAccessReview);
    let out =
        w.mm.submit_dialog(&dialog, &mm(&w, REVIEWER1), json!({"reason": "no"}), false)
            .await
            .unwrap();
    let text = out.error().expect("the dialog shows why").to_string();
    assert!(text.contains("already **APPROVED**"), "{text}");
    assert_eq!(
        w.tp.faults().calls(Method::SubmitAccessReview),
        submits,
        "refused before reaching Teleport"
    );
    assert_eq!(w.tp.review_audit().len(), 1);
    assert!(
        svc.metrics.render().contains(
            "teleport_mattermost_reviews_total{outcome=\"resolved\",source=\"dialog\"} 1"
        )
    );
}
