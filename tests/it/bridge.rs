//! The bridge end to end, ported from the upstream plugin's suite (TestMattermostMessagePosting,
//! TestApproval, TestDenial, TestExpiration, TestRecipientsConfig, TestReviewComments,
//! TestApprovalByReview, TestDenialByReview) plus rule routing and catch-up.

use std::collections::BTreeMap;

use teleport_mattermost::access::Resolution;
use teleport_mattermost_sim::mattermost::SimPost;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER1, REVIEWER2};
use teleport_mattermost_sim::teleport::{
    AccessMonitoringRule, Method, NewRequest, NewReview, RequestState, RuleNotification, Threshold,
};
use tonic::Code;

use crate::harness::{WAIT, World};

const UPSTREAM_TABLE: &str = "[role_to_recipients]\neditor = [\"reviewer1@example.com\"]\n\"*\" = [\"team-llama/fallback\"]\n";

fn padded(reason: &str, n: usize) -> String {
    format!("{reason} {}", "A".repeat(n))
}

/// The value of a `**Name**: value` field, up to the next field (values may span lines).
fn field(post: &SimPost, name: &str) -> String {
    let key = format!("**{name}**: ");
    let start = post
        .message
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} field in {}", post.message))
        + key.len();
    let rest = &post.message[start..];
    let end = rest
        .find("\n**")
        .or_else(|| rest.find("\n\n"))
        .unwrap_or(rest.len());
    rest[..end].trim_end().to_string()
}

/// Waits until the post's message satisfies `pred`.
async fn updated(w: &World, post_id: &str, pred: impl Fn(&str) -> bool) -> SimPost {
    let id = post_id.to_string();
    w.mm.wait_for(WAIT, move |sim| sim.post(&id).filter(|p| pred(&p.message)))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "post {post_id} never matched; now: {:?}",
                w.mm.post(post_id).map(|p| p.message)
            )
        })
}

/// Roots in a channel (posts that are not replies).
fn roots_in(w: &World, channel: &str) -> Vec<SimPost> {
    w.mm.posts_in(channel)
        .into_iter()
        .filter(|p| p.root_id.is_empty())
        .collect()
}

async fn posted_to_both_reviewers(
    w: &World,
    reason: &str,
    threshold: Option<u32>,
) -> (String, Vec<SimPost>) {
    let mut req = NewRequest::new(REQUESTER, &["editor"])
        .reason(reason)
        .suggested_reviewers(&[REVIEWER2]);
    if let Some(n) = threshold {
        req.thresholds = Some(vec![Threshold {
            name: "two".into(),
            approve: n,
            deny: n,
        }]);
    }
    let id = w.tp.create_request(req).id;
    w.mm.wait_for_posts(2, WAIT).await.expect("two posts");
    let r1 = w.dm(REVIEWER1).expect("DM with reviewer1");
    let r2 = w.dm(REVIEWER2).expect("DM with reviewer2");
    let posts = vec![roots_in(w, &r1).remove(0), roots_in(w, &r2).remove(0)];
    (id, posts)
}

/// Posts a request to both reviewers, approves it in Teleport, and waits until both roots
/// show it: the common start of several scenarios.
async fn posted_then_approved(w: &World) -> (String, Vec<SimPost>) {
    let (id, posts) = posted_to_both_reviewers(w, "because of", None).await;
    w.tp.approve(&id, "okay").unwrap();
    for p in &posts {
        updated(w, &p.id, |m| m.contains("✅ APPROVED")).await;
    }
    (id, posts)
}

#[tokio::test]
async fn message_posting_reaches_role_recipients_and_the_suggested_reviewer() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, &padded("because of", 4000), None).await;
    // Exactly two: the role entry wins over "*", so the fallback channel is never used.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(w.mm.post_count(), 2);
    for p in &posts {
        assert_eq!(field(p, "Request ID"), id);
        assert_eq!(field(p, "User"), "requester@example.com");
        assert_eq!(field(p, "Status"), "⏳ PENDING");
        let reason = field(p, "Reason");
        assert_eq!(
            reason,
            format!("```\nbecause of {}``` (truncated)", "A".repeat(489))
        );
    }
    let d = w.data_when(&id, |d| d.messages.len() == 2).await;
    let mut pairs: Vec<(String, String)> = d
        .messages
        .iter()
        .map(|m| (m.channel_id.clone(), m.post_id.clone()))
        .collect();
    pairs.sort();
    let mut want: Vec<(String, String)> = posts
        .iter()
        .map(|p| (p.channel_id.clone(), p.id.clone()))
        .collect();
    want.sort();
    assert_eq!(pairs, want);
    assert_eq!(d.user, REQUESTER);
    assert_eq!(d.roles, vec!["editor".to_string()]);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn approval_updates_the_same_posts_and_tells_the_requester() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, "because of", None).await;
    w.tp.approve(&id, "okay").unwrap();
    for p in &posts {
        let p = updated(&w, &p.id, |m| m.contains("✅ APPROVED")).await;
        assert_eq!(field(&p, "Resolution reason"), "```\nokay```");
    }
    w.data_when(&id, |d| d.resolution == Resolution::Approved)
        .await;
    let dm =
        w.mm.wait_for(WAIT, |sim| {
            w.dm(REQUESTER)
                .and_then(|c| sim.posts_in(&c).into_iter().next())
        })
        .await
        .unwrap();
    assert!(dm.message.contains("approved"), "{}", dm.message);
    assert!(
        dm.message.contains(&format!("tsh login --request-id={id}")),
        "{}",
        dm.message
    );
    assert_eq!(w.mm.post_count(), 3, "two roots and one requester DM");
    // Each root gets the bot's ✅, added once the approval is recorded.
    let reactions =
        w.mm.wait_for(WAIT, |sim| {
            Some(sim.reactions()).filter(|r| r.len() >= posts.len())
        })
        .await
        .unwrap();
    let mut reacted: Vec<(String, String, String)> = reactions
        .into_iter()
        .map(|r| (r.post_id, r.emoji_name, r.user_id))
        .collect();
    reacted.sort();
    let mut want: Vec<(String, String, String)> = posts
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                "white_check_mark".into(),
                w.mm.bot_id().into(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(reacted, want);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn denial_truncates_the_resolve_reason_by_characters() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, "because of", None).await;
    w.tp.deny(&id, &padded("not okay", 4000)).unwrap();
    for p in &posts {
        let p = updated(&w, &p.id, |m| m.contains("❌ DENIED")).await;
        assert_eq!(
            field(&p, "Resolution reason"),
            format!("```\nnot okay {}``` (truncated)", "A".repeat(491))
        );
    }
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn expiration_by_deletion_marks_the_posts_expired() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, "because of", None).await;
    assert!(w.tp.delete_request(&id));
    for p in &posts {
        updated(&w, &p.id, |m| m.contains("⌛ EXPIRED")).await;
    }
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn recipients_config_posts_to_a_channel_and_a_dm() {
    let w = World::start().await;
    let svc = w
        .service("[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\", \"reviewer1@example.com\"]\n")
        .await;
    let id =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).reason("because of"))
            .id;
    w.mm.wait_for_posts(2, WAIT).await.unwrap();
    assert_eq!(roots_in(&w, &w.channel_id).len(), 1);
    assert_eq!(roots_in(&w, &w.dm(REVIEWER1).unwrap()).len(), 1);
    w.data_when(&id, |d| d.messages.len() == 2).await;
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn review_comments_are_thread_replies_under_every_root() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, "because of", Some(2)).await;
    review(&w, REVIEWER1, &id, RequestState::Approved, "okay");
    for p in &posts {
        let root = p.id.clone();
        let reply =
            w.mm.wait_for(WAIT, move |sim| {
                sim.thread_replies(&root).into_iter().next()
            })
            .await
            .unwrap();
        assert_eq!(reply.channel_id, p.channel_id);
        assert!(
            reply
                .message
                .contains("reviewer1@example.com reviewed the request"),
            "{}",
            reply.message
        );
        assert!(
            reply.message.contains("Review: ✅ approved (1 of 2)."),
            "{}",
            reply.message
        );
        assert!(
            reply.message.contains("Reason: ```\nokay```"),
            "{}",
            reply.message
        );
    }
    review(&w, REVIEWER2, &id, RequestState::Denied, "not okay");
    for p in &posts {
        let root = p.id.clone();
        let replies =
            w.mm.wait_for(WAIT, move |sim| {
                Some(sim.thread_replies(&root)).filter(|r| r.len() == 2)
            })
            .await
            .unwrap();
        assert!(
            replies[1].message.contains("Review: ❌ denied (1 of "),
            "{}",
            replies[1].message
        );
    }
    w.data_when(&id, |d| d.reviews_count == 2).await;
    svc.stop().await.unwrap();
}

fn review(w: &World, who: &str, id: &str, state: RequestState, reason: &str) {
    let r = NewReview {
        author: who.into(),
        proposed_state: state,
        reason: reason.into(),
        on_behalf: false,
    };
    w.tp.submit_review_as(who, id, &r)
        .unwrap_or_else(|e| panic!("review by {who}: {e}"));
}

async fn resolved_by_two_reviews(state: RequestState, reasons: [&str; 2], want: &str) {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, posts) = posted_to_both_reviewers(&w, "because of", Some(2)).await;
    review(&w, REVIEWER1, &id, state, reasons[0]);
    review(&w, REVIEWER2, &id, state, reasons[1]);
    for p in &posts {
        let p = updated(&w, &p.id, |m| m.contains(want)).await;
        assert_eq!(
            field(&p, "Resolution reason"),
            format!("```\n{}```", reasons[1])
        );
        assert_eq!(w.mm.thread_replies(&p.id).len(), 2);
    }
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn approval_by_two_reviews_resolves_with_the_last_reason() {
    resolved_by_two_reviews(
        RequestState::Approved,
        ["okay", "finally okay"],
        "✅ APPROVED",
    )
    .await;
}

#[tokio::test]
async fn denial_by_two_reviews_resolves_with_the_last_reason() {
    resolved_by_two_reviews(
        RequestState::Denied,
        ["not okay", "finally not okay"],
        "❌ DENIED",
    )
    .await;
}

fn rule(name: &str, condition: &str, recipients: &[&str]) -> AccessMonitoringRule {
    AccessMonitoringRule {
        name: name.into(),
        subjects: vec!["access_request".into()],
        states: vec![],
        condition: condition.into(),
        notification: RuleNotification {
            name: "mattermost".into(),
            recipients: recipients.iter().map(|s| s.to_string()).collect(),
        },
    }
}

#[tokio::test]
async fn access_monitoring_rules_route_requests_and_changes_apply_live() {
    let w = World::start().await;
    w.tp.upsert_rule(rule(
        "editors",
        "contains(access_request.spec.roles, \"editor\")",
        &["team-llama/channel-llama"],
    ));
    let svc = w.service(UPSTREAM_TABLE).await;
    // The rule wins over role_to_recipients and suggested reviewers.
    w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).suggested_reviewers(&[REVIEWER2]));
    w.mm.wait_for_posts(1, WAIT).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(w.mm.post_count(), 1);
    assert_eq!(roots_in(&w, &w.channel_id).len(), 1);
    // An updated rule routes to a DM instead.
    w.tp.upsert_rule(rule("editors", "true", &["@reviewer2"]));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]));
    w.mm.wait_for_posts(2, WAIT).await.unwrap();
    assert_eq!(roots_in(&w, &w.dm(REVIEWER2).unwrap()).len(), 1);
    // Deleted: the config table applies again.
    assert!(w.tp.delete_rule("editors"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]));
    w.mm.wait_for_posts(3, WAIT).await.unwrap();
    assert_eq!(roots_in(&w, &w.dm(REVIEWER1).unwrap()).len(), 1);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn catch_up_after_downtime_posts_and_updates_everything_missed() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let approved_later =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    let deleted_later =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.mm.wait_for_posts(2, WAIT).await.unwrap();
    svc.stop().await.unwrap();

    // While the service is down: a new request, an approval, a deletion.
    let created_while_down =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.tp.approve(&approved_later, "done while down").unwrap();
    w.tp.delete_request(&deleted_later);

    let svc = w.service(UPSTREAM_TABLE).await;
    w.mm.wait_for_posts(3 + 1, WAIT)
        .await
        .expect("the missed request is posted, the requester told");
    w.data_when(&created_while_down, |d| d.messages.len() == 1)
        .await;
    let approved = w
        .data_when(&approved_later, |d| d.resolution == Resolution::Approved)
        .await;
    updated(&w, &approved.messages[0].post_id, |m| {
        m.contains("✅ APPROVED")
    })
    .await;
    let expired = w
        .data_when(&deleted_later, |d| d.resolution == Resolution::Expired)
        .await;
    updated(&w, &expired.messages[0].post_id, |m| {
        m.contains("⌛ EXPIRED")
    })
    .await;
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_created_and_resolved_while_the_watch_is_down_is_posted_with_its_outcome() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    // Auth restarts: the watch ends and the next re-watches are refused for a while.
    let faults = w.tp.faults();
    faults.fail_next(
        Method::WatchEvents,
        4,
        Code::Unavailable,
        "auth is restarting",
    );
    faults.end_watch_streams();
    while faults.calls(Method::WatchEvents) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // No replica is watching: this request is pending and approved unseen.
    let quick =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.tp.approve(&quick, "approved at once").unwrap();
    let data = w
        .data_when(&quick, |d| {
            d.resolution == Resolution::Approved && d.messages.len() == 1
        })
        .await;
    for m in &data.messages {
        updated(&w, &m.post_id, |t| t.contains("✅ APPROVED")).await;
    }
    assert!(
        faults.calls(Method::WatchEvents) >= 5,
        "the request was made while re-watches were refused"
    );
    assert_eq!(roots_by_request(&w).values().copied().max(), Some(1));
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_first_start_does_not_post_requests_resolved_before_it() {
    let w = World::start().await;
    let old =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.tp.approve(&old, "before the plugin was installed")
        .unwrap();
    let svc = w.service(UPSTREAM_TABLE).await;
    let fresh =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.data_when(&fresh, |d| d.messages.len() == 1).await;
    // Give a wrong post of the old request time to show up.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    svc.stop().await.unwrap();
    assert!(w.tp.plugin_data(&old, "mattermost").is_none());
    assert_eq!(w.mm.post_count(), 1, "only the new request is posted");
}

#[tokio::test]
async fn readiness_follows_the_watch() {
    let w = World::start().await;
    let svc = w.service("").await;
    let readyz = reqwest::get(format!("http://{}/readyz", svc.addr))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    w.tp.faults().end_watch_streams();
    // The watch is re-established by itself.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    svc.ready().await;
    let metrics = svc.metrics.render();
    assert!(
        metrics.contains("teleport_mattermost_watch_reconnects_total 1"),
        "{metrics}"
    );
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_events_do_not_post_or_update_again() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (_, posts) = posted_then_approved(&w).await;
    let edits: BTreeMap<String, usize> = posts
        .iter()
        .map(|p| (p.id.clone(), w.mm.post(&p.id).unwrap().history.len()))
        .collect();
    // A restart replays the resolved request through catch-up: nothing changes.
    svc.stop().await.unwrap();
    let svc = w.service(UPSTREAM_TABLE).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for (post, n) in edits {
        assert_eq!(
            w.mm.post(&post).unwrap().history.len(),
            n,
            "post {post} was edited again"
        );
    }
    assert_eq!(w.mm.post_count(), 3);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_watch_refused_for_lack_of_permission_is_fatal_and_names_the_rule() {
    use teleport_mattermost_sim::teleport::SimRole;
    let w = World::start().await;
    w.tp.add_role(SimRole::new("no-requests").allow(&["access_plugin_data"], &["update"]));
    w.tp.add_user("weak-plugin", &["no-requests"]);
    w.tp.write_identity("weak-plugin", &w.identity).unwrap();
    let err = w
        .service_unready("")
        .await
        .ended()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Give the plugin's role `read` and `list` on `access_request`"),
        "{err}"
    );
}

#[tokio::test]
async fn fail_fast_ends_the_service_when_the_watch_is_lost() {
    let w = World::start().await;
    let svc = fail_fast_service(&w).await;
    w.tp.faults().end_watch_streams();
    let err = svc.ended().await.unwrap_err().to_string();
    assert!(err.contains("TELEPORT_PLUGIN_FAIL_FAST"), "{err}");
}

#[tokio::test]
async fn start_up_waits_out_an_unavailable_mattermost_even_with_fail_fast() {
    let w = World::start().await;
    // More failures than the client's own retries: start-up itself must retry.
    w.mm.faults().fail_next(7, 503);
    let svc = fail_fast_service(&w).await;
    svc.stop().await.unwrap();
}

/// A ready service started with `TELEPORT_PLUGIN_FAIL_FAST=true`.
async fn fail_fast_service(w: &World) -> crate::harness::Service {
    let options = teleport_mattermost::app::Options {
        fail_fast: true,
        ..Default::default()
    };
    let svc = crate::harness::Service::start(w.config(""), options).await;
    svc.ready().await;
    svc
}

#[tokio::test]
async fn metrics_cover_events_posts_and_both_systems_call_latency() {
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    let (id, _) = posted_then_approved(&w).await;
    w.data_when(&id, |d| d.resolution == Resolution::Approved)
        .await;
    let m = svc.metrics.render();
    for needle in [
        "teleport_mattermost_events_total{op=\"put\",state=\"PENDING\"} 1",
        "teleport_mattermost_events_total{op=\"put\",state=\"APPROVED\"} 1",
        "teleport_mattermost_posts_total{kind=\"root\",outcome=\"ok\"} 2",
        "teleport_mattermost_post_updates_total{outcome=\"ok\"} 2",
        "teleport_mattermost_watch_up 1",
        "teleport_mattermost_teleport_call_duration_seconds_count{call=\"UpdatePluginData\",outcome=\"ok\"}",
        "teleport_mattermost_mattermost_call_duration_seconds_count{call=\"create_post\",outcome=\"ok\"}",
        "teleport_mattermost_event_duration_seconds_count",
    ] {
        assert!(m.contains(needle), "{needle} missing from:\n{m}");
    }
    svc.stop().await.unwrap();
}

/// Roots per (request id, channel), from the posts' `**Request ID**` field.
fn roots_by_request(w: &World) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let requester = w.dm(REQUESTER).unwrap_or_default();
    for p in
        w.mm.posts()
            .into_iter()
            .filter(|p| p.root_id.is_empty() && p.channel_id != requester)
    {
        if let Some(id) = crate::harness::request_id(&p) {
            *out.entry((id, p.channel_id.clone())).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_watch_cuts_and_mattermost_errors_without_loss_or_duplicates() {
    use teleport_mattermost_sim::mattermost::RouteFilter;
    let w = World::start().await;
    let svc = w.service(UPSTREAM_TABLE).await;
    // Mattermost fails 20% of calls with 500 and answers a burst of 429s on posts.
    w.mm.faults().set_error_rate(20.0, 500, 7);
    w.mm.faults()
        .rate_limit_next(Some(RouteFilter::new("POST", "/api/v4/posts")), 5, 1);
    // The watch is cut every second while the burst runs.
    let cutter = {
        let faults = w.tp.faults().clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
                faults.end_watch_streams();
            }
        })
    };
    let mut ids = Vec::new();
    for i in 0..30 {
        let id =
            w.tp.create_request(
                NewRequest::new(REQUESTER, &["editor"]).suggested_reviewers(&[REVIEWER2]),
            )
            .id;
        if i % 3 == 0 {
            w.tp.approve(&id, "burst approval").unwrap();
        }
        ids.push((id, i % 3 == 0));
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    }
    cutter.await.unwrap();
    w.mm.faults().clear();
    // Converges: every request has exactly its two roots; approved ones show it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let roots = roots_by_request(&w);
        let done = ids
            .iter()
            .all(|(id, _)| roots.iter().filter(|((r, _), _)| r == id).count() == 2);
        if done {
            assert!(
                roots.values().all(|n| *n == 1),
                "duplicate roots: {roots:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing roots after the faults: {roots:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (id, approved) in &ids {
        let d = w
            .data_when(id, |d| {
                d.messages.len() == 2 && (!approved || d.resolution == Resolution::Approved)
            })
            .await;
        if *approved {
            for m in &d.messages {
                updated(&w, &m.post_id, |t| t.contains("✅ APPROVED")).await;
            }
        }
    }
    assert_eq!(roots_by_request(&w).len(), 60);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_periodic_resync_reconciles_again_while_connected() {
    use teleport_mattermost_sim::teleport::Method;
    let w = World::start().await;
    // One second is the shortest interval the config accepts.
    let svc = w.service("[bridge]\nresync_interval = \"1s\"\n").await;
    let listings = || w.tp.faults().calls(Method::GetAccessRequestsV2);
    let first = listings();
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    assert!(
        listings() >= first + 2,
        "listings: {first} then {}",
        listings()
    );
    svc.stop().await.unwrap();
}
