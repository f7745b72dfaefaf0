//! In-chat review end to end: the Mattermost simulator clicks buttons, submits dialogs and
//! runs `/teleport` exactly as Mattermost would; the service submits on behalf of the human
//! and the Teleport simulator applies their rights (its audit shows author and submitter).

use serde_json::{Value, json};
use teleport_mattermost_sim::mattermost::{CommandOutcome, SimPost};
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2};
use teleport_mattermost_sim::teleport::{Method, NewRequest};
use teleport_mattermost_sim::teleport::{RequestState, Threshold};

use crate::harness::{COMMAND_TOKEN, ReviewSetup, Service, WAIT, World};

/// Creates a request for `editor` by the requester; `threshold` approvals/denials resolve it.
pub(crate) fn request(w: &World, user: &str, threshold: u32) -> String {
    let mut req = NewRequest::new(user, &["editor"]).reason("deploy hotfix");
    req.thresholds = Some(vec![Threshold {
        name: "t".into(),
        approve: threshold,
        deny: threshold,
    }]);
    w.tp.create_request(req).id
}

/// The request's root post in the shared channel, once it has buttons and the plugin data
/// records it (a click before that is refused as not ours).
pub(crate) async fn root_with_buttons(w: &World, id: &str) -> SimPost {
    let post =
        w.mm.wait_for(WAIT, |sim| {
            sim.posts_in(&w.channel_id).into_iter().find(|p| {
                p.root_id.is_empty() && p.message.contains(id) && p.actions().count() == 2
            })
        })
        .await
        .expect("a root post with buttons");
    recorded(w, id, &post.id).await;
    post
}

async fn recorded(w: &World, id: &str, post_id: &str) {
    w.data_when(id, |d| d.messages.iter().any(|x| x.post_id == post_id))
        .await;
}

/// Waits until the post's message satisfies `pred`.
pub(crate) async fn post_when(
    w: &World,
    post_id: &str,
    pred: impl Fn(&SimPost) -> bool,
) -> SimPost {
    let id = post_id.to_string();
    w.mm.wait_for(WAIT, move |sim| sim.post(&id).filter(|p| pred(p)))
        .await
        .unwrap_or_else(|_| panic!("post {post_id} never matched: {:?}", w.mm.post(post_id)))
}

pub(crate) fn mm(w: &World, user: &str) -> String {
    w.mm_users[user].clone()
}

/// The signed context of one of a post's buttons.
pub(crate) fn context(post: &SimPost, action: &str) -> Value {
    post.actions()
        .find(|a| a["id"] == action)
        .map(|a| a["integration"]["context"].clone())
        .expect("the button exists")
}

/// POSTs a click with Mattermost's exact payload but our own `context`: what a replayed or
/// forged callback looks like. Returns the status and the body.
pub(crate) async fn raw_click(
    svc: &Service,
    w: &World,
    post: &SimPost,
    user: &str,
    ctx: Value,
) -> (u16, Value) {
    raw_click_as(svc, w, post, user, ctx, "application/json").await
}

/// [`raw_click`] sent with another content type (Mattermost always sends JSON).
pub(crate) async fn raw_click_as(
    svc: &Service,
    w: &World,
    post: &SimPost,
    user: &str,
    ctx: Value,
    content_type: &str,
) -> (u16, Value) {
    let user_id = mm(w, user);
    let body = json!({
        "user_id": user_id,
        "user_name": user,
        "channel_id": post.channel_id,
        "channel_name": "channel-llama",
        "team_id": "",
        "team_domain": "team-llama",
        "post_id": post.id,
        "trigger_id": w.mm.issue_trigger(&user_id, &post.channel_id),
        "type": "button",
        "data_source": "",
        "context": ctx,
    });
    let r = reqwest::Client::new()
        .post(svc.url("action"))
        .header("content-type", content_type)
        .body(body.to_string())
        .timeout(WAIT)
        .send()
        .await
        .expect("the service answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `user` clicks and gets an ephemeral answer; returns its text.
pub(crate) async fn click_text(w: &World, post: &SimPost, action: &str, user: &str) -> String {
    let out =
        w.mm.click(&post.id, action, &mm(w, user))
            .await
            .unwrap_or_else(|e| panic!("click by {user}: {e}"));
    assert!(out.response.get("update").is_none(), "never an update");
    out.ephemeral
        .unwrap_or_else(|| panic!("no ephemeral answer: {:?}", out.response))
        .message
}

pub(crate) async fn slash(w: &World, svc: &Service, user: &str, text: &str) -> CommandOutcome {
    w.mm.run_slash_command(
        &svc.url("command"),
        COMMAND_TOKEN,
        &mm(w, user),
        &w.channel_id,
        text,
    )
    .await
    .unwrap_or_else(|e| panic!("/teleport {text}: {e}"))
}

pub(crate) fn answer(out: &CommandOutcome) -> String {
    assert_eq!(out.response["response_type"], "ephemeral");
    out.ephemeral
        .as_ref()
        .expect("an ephemeral answer")
        .message
        .clone()
}

fn approved_without_buttons(p: &SimPost) -> bool {
    p.message.contains("APPROVED") && p.actions().count() == 0
}

#[tokio::test]
async fn approve_button_submits_on_behalf_of_the_clicker_and_the_post_turns_approved() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    let button = post.actions().next().unwrap().clone();
    assert_eq!(button["integration"]["url"], svc.url("action"));

    let text = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(text.contains("You approved request"), "{text}");
    assert!(text.contains("now **APPROVED**"), "{text}");
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].author, REVIEWER1);
    assert_eq!(audit[0].submitted_by, PLUGIN_USER);
    assert!(audit[0].on_behalf);
    assert_eq!(audit[0].proposed_state, RequestState::Approved);
    // The post changes from Teleport's event, not from the click answer.
    post_when(&w, &post.id, approved_without_buttons).await;
    let metrics = svc.metrics.render();
    assert!(
        metrics.contains(
            "teleport_mattermost_reviews_total{outcome=\"submitted\",source=\"button\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn deny_button_opens_a_reason_dialog_whose_submission_denies() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;

    let out =
        w.mm.click(&post.id, "deny", &mm(&w, REVIEWER1))
            .await
            .unwrap();
    assert_eq!(out.response, json!({}));
    assert!(out.ephemeral.is_none());
    let dialogs = w.mm.dialogs();
    assert_eq!(dialogs.len(), 1);
    let d = &dialogs[0];
    assert_eq!(d.user_id, mm(&w, REVIEWER1));
    assert_eq!(d.url, svc.url("dialog"));
    let reason = &d.dialog["elements"][0];
    assert_eq!(reason["name"], "reason");
    assert_eq!(reason["type"], "textarea");
    assert_eq!(reason["optional"], false);
    assert_eq!(reason["max_length"], 1000);
    assert!(
        w.tp.review_audit().is_empty(),
        "nothing submitted before the dialog"
    );

    let empty =
        w.mm.submit_dialog(d, &mm(&w, REVIEWER1), json!({"reason": "  "}), false)
            .await
            .unwrap();
    let errors = empty.field_errors().expect("field errors");
    assert!(errors["reason"].as_str().unwrap().contains("required"));

    let done =
        w.mm.submit_dialog(
            d,
            &mm(&w, REVIEWER1),
            json!({"reason": "not during the freeze"}),
            false,
        )
        .await
        .unwrap();
    assert!(
        done.error().is_none() && done.field_errors().is_none(),
        "{:?}",
        done.body
    );
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].author, REVIEWER1);
    assert_eq!(audit[0].submitted_by, PLUGIN_USER);
    assert_eq!(audit[0].proposed_state, RequestState::Denied);
    assert_eq!(audit[0].reason, "not during the freeze");
    post_when(&w, &post.id, |p| {
        p.message.contains("DENIED") && p.actions().count() == 0
    })
    .await;
    assert!(
        svc.metrics.render().contains(
            "teleport_mattermost_reviews_total{outcome=\"submitted\",source=\"dialog\"} 1"
        )
    );
}

#[tokio::test]
async fn threshold_two_needs_two_different_people_and_a_warm_index_lists_users_once() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 2);
    let post = root_with_buttons(&w, &id).await;

    let first = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(first.contains("approvals 1/2"), "{first}");
    let again = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(again.contains("already reviewed"), "{again}");
    assert_eq!(w.tp.review_audit().len(), 1, "one review per person");
    assert_eq!(w.tp.request(&id).unwrap().state, RequestState::Pending);

    let out = slash(&w, &svc, REVIEWER2, &format!("approve {} lgtm", &id[..8])).await;
    let text = answer(&out);
    assert!(text.contains("now **APPROVED**"), "{text}");
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].author, REVIEWER2);
    assert_eq!(audit[1].submitted_by, PLUGIN_USER);
    assert_eq!(audit[1].reason, "lgtm");
    post_when(&w, &post.id, approved_without_buttons).await;
    assert_eq!(
        w.tp.faults().calls(Method::ListUsers),
        1,
        "no listing per click"
    );
}

#[tokio::test]
async fn simultaneous_clicks_on_two_replicas_submit_one_review_per_person() {
    let w = World::start().await;
    let a = w.review_service().await;
    let b = w.review_service().await;
    let id = request(&w, REQUESTER, 2);
    let post = root_with_buttons(&w, &id).await;
    let ctx = context(&post, "approve");
    let (ra, rb) = tokio::join!(
        raw_click(&a, &w, &post, REVIEWER1, ctx.clone()),
        raw_click(&b, &w, &post, REVIEWER1, ctx),
    );
    assert_eq!((ra.0, rb.0), (200, 200));
    let texts = [ra.1, rb.1].map(|v| v["ephemeral_text"].as_str().unwrap().to_string());
    assert_eq!(
        texts.iter().filter(|t| t.contains("approvals 1/2")).count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("already reviewed"))
            .count(),
        1,
        "{texts:?}"
    );
    assert_eq!(w.tp.review_audit().len(), 1);
}

#[tokio::test]
async fn an_unreachable_teleport_asks_to_try_again_and_submits_nothing() {
    let w = World::start().await;
    let _svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    w.tp.faults().fail_next(
        Method::SubmitAccessReview,
        1,
        tonic::Code::Unavailable,
        "auth is restarting",
    );
    let text = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(
        text.contains("unreachable") && text.contains("Try again"),
        "{text}"
    );
    assert!(w.tp.review_audit().is_empty());
    // The next click goes through.
    let text = click_text(&w, &post, "approve", REVIEWER1).await;
    assert!(text.contains("You approved"), "{text}");
}

#[tokio::test]
async fn require_reason_never_denies_at_once_and_always_asks_even_to_approve() {
    let w = World::start().await;
    let never = w
        .review_service_with(ReviewSetup {
            review: "require_reason = \"never\"".into(),
            ..Default::default()
        })
        .await;
    let id = request(&w, REQUESTER, 2);
    let post = root_with_buttons(&w, &id).await;
    let text = click_text(&w, &post, "deny", REVIEWER1).await;
    assert!(text.contains("You denied"), "{text}");
    assert!(w.mm.dialogs().is_empty());
    never.stop().await.unwrap();

    let always = w
        .review_service_with(ReviewSetup {
            review: "require_reason = \"always\"".into(),
            ..Default::default()
        })
        .await;
    let (status, body) = raw_click(&always, &w, &post, REVIEWER2, context(&post, "approve")).await;
    assert_eq!((status, body), (200, json!({})));
    let dialog = w.mm.dialogs().remove(0);
    assert_eq!(dialog.dialog["elements"][0]["optional"], false);
    assert_eq!(dialog.dialog["submit_label"], "Approve");
    let done =
        w.mm.submit_dialog(&dialog, &mm(&w, REVIEWER2), json!({"reason": "ok"}), false)
            .await
            .unwrap();
    assert!(done.error().is_none(), "{:?}", done.body);
    let audit = w.tp.review_audit();
    assert_eq!(audit.len(), 2);
    assert_eq!(
        (audit[1].author.as_str(), audit[1].proposed_state),
        (REVIEWER2, RequestState::Approved)
    );
}

#[tokio::test]
async fn the_exact_dialog_sent_to_mattermost() {
    let w = World::start().await;
    let svc = w.review_service().await;
    let id = request(&w, REQUESTER, 1);
    let post = root_with_buttons(&w, &id).await;
    w.mm.clear_requests();
    w.mm.click(&post.id, "deny", &mm(&w, REVIEWER1))
        .await
        .unwrap();
    let sent =
        w.mm.requests()
            .into_iter()
            .find(|r| r.path == "/api/v4/actions/dialogs/open")
            .expect("the service opened a dialog");
    assert_eq!(sent.auth_scheme.as_deref(), Some("Bearer"));
    let mut body = sent.json();
    assert_eq!(body["url"], svc.url("dialog"));
    let state: Value = serde_json::from_str(body["dialog"]["state"].as_str().unwrap()).unwrap();
    assert_eq!(state["request_id"], id);
    assert_eq!(state["post_id"], post.id);
    assert_eq!(state["user_id"], mm(&w, REVIEWER1));
    assert_eq!(state["action"], "deny");
    // Per-run values out, so the snapshot holds only what is fixed.
    body["trigger_id"] = json!("[trigger id]");
    body["url"] = json!("[service]/mattermost/dialog");
    body["dialog"]["state"] = json!("[signed state]");
    let intro = body["dialog"]["introduction_text"]
        .as_str()
        .unwrap()
        .replace(&id, "[request id]");
    body["dialog"]["introduction_text"] = json!(intro);
    insta::assert_json_snapshot!(body);
}
