//! The `/teleport` slash command end to end: token checks, `approve`/`deny` on behalf of the
//! caller, `pending`, `show`, `explain`, id prefixes and usage errors, as Mattermost sends them.

use teleport_mattermost_sim::mattermost::SimError;
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::RequestState;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2};

use crate::harness::{COMMAND_TOKEN, World};
use crate::review::{answer, mm, post_when, request, root_with_buttons, slash};

#[tokio::test]
async fn deny_by_command_asks_for_a_reason_then_submits_it_on_behalf_of_the_caller() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let prefix = &id[..6];

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("deny {prefix}")).await);
    assert!(text.contains("A reason is required to deny"), "{text}");
    assert!(
        text.contains(&format!("`/teleport deny {id} <reason>`")),
        "{text}"
    );
    assert!(w.tp.review_audit().is_empty());

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("deny {prefix} too broad")).await);
    assert!(text.contains("You denied request"), "{text}");
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].author, REVIEWER1);
    assert_eq!(audit[0].submitted_by, PLUGIN_USER);
    assert!(audit[0].on_behalf);
    assert_eq!(audit[0].proposed_state, RequestState::Denied);
    assert_eq!(audit[0].reason, "too broad");
    post_when(&w, &post.id, |p| {
        p.message.contains("DENIED") && p.actions().count() == 0
    })
    .await;

    let text = answer(&slash(&w, &svc, REVIEWER2, &format!("approve {id}")).await);
    assert!(text.contains("already **DENIED**"), "{text}");
    assert_eq!(w.tp.review_audit().len(), 1);
    assert!(
        svc.metrics.render().contains(
            "teleport_mattermost_reviews_total{outcome=\"submitted\",source=\"command\"} 1"
        )
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_and_the_form_token_or_get_also_work() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let user = mm(&w, REVIEWER1);
    for token in ["wrong-token", ""] {
        let r =
            w.mm.run_slash_command(&svc.url("command"), token, &user, &w.channel_id, "help")
                .await;
        assert!(
            matches!(r, Err(SimError::Integration { status: 401, ref body }) if body == "unauthorized\n"),
            "{token:?}: {r:?}"
        );
    }
    // A wrong header is not rescued by a right form field.
    let http = reqwest::Client::new();
    let form = [
        ("token", COMMAND_TOKEN),
        ("user_id", user.as_str()),
        ("channel_id", w.channel_id.as_str()),
        ("text", "help"),
    ];
    let r = http
        .post(svc.url("command"))
        .header("authorization", "Token nope")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Only the form field (no header), and a GET with the query string, as Mattermost sends.
    let r = http
        .post(svc.url("command"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["text"].as_str().unwrap().contains("Usage"), "{body}");
    let r = http
        .get(svc.url("command"))
        .query(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn pending_lists_what_the_caller_has_not_reviewed_and_not_their_own() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let theirs = request(&w, REQUESTER, 2);
    let own = request(&w, REVIEWER1, 1);
    let text = answer(&slash(&w, &svc, REVIEWER1, "pending").await);
    assert!(text.contains(&theirs), "{text}");
    assert!(!text.contains(&own), "own request listed: {text}");
    assert!(
        text.contains("Teleport checks your review rights"),
        "{text}"
    );
    assert!(text.contains("approvals 0/2"), "{text}");

    answer(&slash(&w, &svc, REVIEWER1, &format!("approve {theirs}")).await);
    let text = answer(&slash(&w, &svc, REVIEWER1, "pending").await);
    assert!(text.contains("No pending access request"), "{text}");
    // reviewer2 still sees both.
    let text = answer(&slash(&w, &svc, REVIEWER2, "pending").await);
    assert!(text.contains(&theirs) && text.contains(&own), "{text}");
}

#[tokio::test]
async fn show_and_explain_describe_the_request_and_its_routing() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let req = NewRequest::new(REQUESTER, &["editor"])
        .reason("rotate the **keys**")
        .suggested_reviewers(&[REVIEWER2]);
    let id = w.tp.create_request(req).id;
    w.mm.wait_for_posts(2, crate::harness::WAIT).await.unwrap();

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("show {}", &id[..10])).await);
    assert!(
        text.contains(&format!("**Access request** `{id}`")),
        "{text}"
    );
    assert!(text.contains("**User**: `requester@example.com`"), "{text}");
    assert!(text.contains("**Roles**: `editor`"), "{text}");
    assert!(text.contains("**Status**: PENDING"), "{text}");
    assert!(
        text.contains("```\nrotate the **keys**```"),
        "escaped reason: {text}"
    );
    assert!(
        text.contains(&format!("`/teleport approve {id} [reason]`")),
        "{text}"
    );

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("explain {id}")).await);
    assert!(
        text.contains("`team-llama/channel-llama`: role\\_to\\_recipients"),
        "{text}"
    );
    assert!(
        text.contains("`reviewer2@example.com`: suggested reviewer"),
        "{text}"
    );
    assert!(text.contains("Posts made for it: 2."), "{text}");
}

/// Pending requests for `editor` with these ids.
fn create_with_ids(w: &World, ids: &[&str]) {
    for id in ids {
        let mut r = NewRequest::new(REQUESTER, &["editor"]);
        r.id = Some(id.to_string());
        w.tp.create_request(r);
    }
}

#[tokio::test]
async fn an_ambiguous_prefix_lists_the_candidates_and_a_full_id_is_exact() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let ids = [
        "abcd0000-0000-7000-8000-000000000001",
        "abcd0000-0000-7000-8000-000000000002",
    ];
    create_with_ids(&w, &ids);
    let text = answer(&slash(&w, &svc, REVIEWER1, "approve abcd").await);
    assert!(text.contains("`abcd` matches 2 requests"), "{text}");
    assert!(text.contains(ids[0]) && text.contains(ids[1]), "{text}");
    assert!(w.tp.review_audit().is_empty());

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("approve {}", ids[1])).await);
    assert!(text.contains("You approved"), "{text}");
    assert_eq!(w.tp.review_audit()[0].request_id, ids[1]);

    let text = answer(&slash(&w, &svc, REVIEWER1, "show ffff").await);
    assert!(
        text.contains("No access request id contains `ffff`"),
        "{text}"
    );
}

#[tokio::test]
async fn two_requests_made_in_the_same_minute_are_told_apart_by_their_short_ids() {
    use teleport_mattermost::review::command::short_id;
    let w = World::start().await;
    let svc = w.review_service().await;
    // UUIDv7 ids of the same minute: the first 8 characters (the timestamp) are shared.
    let ids = [
        "019ae0f1-2c3d-7e4f-8a5b-6c7d8e9f0a1b",
        "019ae0f1-9d8c-7b6a-9f4e-3d2c1b0a9f8e",
    ];
    create_with_ids(&w, &ids);
    assert_ne!(short_id(ids[0]), short_id(ids[1]));
    let text = answer(&slash(&w, &svc, REVIEWER1, "show 019ae0f1").await);
    assert!(text.contains("`019ae0f1` matches 2 requests"), "{text}");
    assert!(text.contains(ids[0]) && text.contains(ids[1]), "{text}");

    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("show {}", short_id(ids[1]))).await);
    assert!(
        text.contains(&format!("**Access request** `{}`", ids[1])),
        "{text}"
    );
    let text = answer(
        &slash(
            &w,
            &svc,
            REVIEWER1,
            &format!("explain {}", short_id(ids[0])),
        )
        .await,
    );
    assert!(text.contains(ids[0]) && !text.contains(ids[1]), "{text}");
    let text = answer(
        &slash(
            &w,
            &svc,
            REVIEWER1,
            &format!("approve {} fine", short_id(ids[1]).to_uppercase()),
        )
        .await,
    );
    assert!(text.contains("You approved"), "{text}");
    let text = answer(&slash(&w, &svc, REVIEWER1, &format!("deny {}", short_id(ids[0]))).await);
    assert!(!text.contains("matches 2"), "{text}");
    assert_eq!(w.tp.review_audit().len(), 1);
    assert_eq!(w.tp.review_audit()[0].request_id, ids[1]);
}

#[tokio::test]
async fn usage_errors_give_the_syntax_and_help_explains_the_binding() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let text = answer(&slash(&w, &svc, REVIEWER1, "approve").await);
    assert!(text.contains("`/teleport approve <request-id>`"), "{text}");
    assert!(text.contains("Usage: `/teleport <command>`"), "{text}");
    let text = answer(&slash(&w, &svc, REVIEWER1, "").await);
    assert!(text.contains("`mattermost_user_id`"), "{text}");
}
