//! Delivery under failure, end to end over real sockets: what Mattermost refused stays owed
//! and is posted once it can be (a refused token, a channel the bot is not in), and a replica
//! killed between creating a post and recording it leaves nothing for its successor to post
//! twice, even when Mattermost's `pending_post_id` cache cannot help.

use std::time::Duration;

use teleport_mattermost::access::{PluginData, Resolution};
use teleport_mattermost::bridge::owed;
use teleport_mattermost_sim::mattermost::{RouteFilter, SimPost};
use teleport_mattermost_sim::process::{ServiceProcess, free_port, metric_value};
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER2};

use crate::harness::{WAIT, World};

/// Two recipients for every `editor` request: reviewer1 by e-mail, reviewer2 as suggested.
const TWO_RECIPIENTS: &str = "[role_to_recipients]\neditor = [\"reviewer1@example.com\"]\n";

fn roots(w: &World) -> Vec<SimPost> {
    w.mm.posts()
        .into_iter()
        .filter(|p| p.root_id.is_empty())
        .collect()
}

fn request(w: &World) -> String {
    w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).suggested_reviewers(&[REVIEWER2]))
        .id
}

async fn readyz(addr: std::net::SocketAddr) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn two_refused_tokens_then_recovery_post_every_recipient() {
    let w = World::start().await;
    let svc = w.service(TWO_RECIPIENTS).await;
    w.mm.faults()
        .fail_next_on(RouteFilter::new("POST", "/api/v4/posts"), 2, 401);
    let id = request(&w);
    let d = w
        .data_within(&id, WAIT, |d, m| {
            d.messages.len() == 2 && !m.contains_key(owed::KEY)
        })
        .await;
    let mut posted: Vec<String> = roots(&w).into_iter().map(|p| p.id).collect();
    let mut recorded: Vec<String> = d.messages.iter().map(|m| m.post_id.clone()).collect();
    posted.sort();
    recorded.sort();
    assert_eq!(posted, recorded, "every recipient posted, once");
    assert_eq!(w.mm.request_count("POST", "/api/v4/posts"), 4);
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_is_retried_with_backoff_and_reported_until_it_works_again() {
    let w = World::start().await;
    let svc = w.service(TWO_RECIPIENTS).await;
    w.mm.faults()
        .fail_always(Some(RouteFilter::new("POST", "/api/v4/posts")), 401);
    let id = request(&w);
    // Reported by /readyz (with the fix) and the metric while the token is refused.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(svc.addr).await;
        if status == 503 {
            assert!(body.contains("mattermost.token"), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        svc.metrics
            .render()
            .contains("teleport_mattermost_mattermost_token_rejected 1")
    );
    let stored = w.plugin_data(&id).unwrap();
    assert!(
        stored
            .get(owed::KEY)
            .is_some_and(|o| o.contains("reviewer1@example.com")),
        "the recipients are owed: {stored:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = w.mm.request_count("POST", "/api/v4/posts");
    assert!(
        (4..40).contains(&attempts),
        "retried with backoff, not hammered: {attempts} attempts in about 0.5 s"
    );
    // The token works again: the queue's next retry posts both, readiness comes back.
    w.mm.faults().clear();
    w.data_within(&id, Duration::from_secs(20), |d, m| {
        d.messages.len() == 2 && !m.contains_key(owed::KEY)
    })
    .await;
    assert_eq!(roots(&w).len(), 2);
    assert_eq!(readyz(svc.addr).await.0, 200);
    assert!(
        svc.metrics
            .render()
            .contains("teleport_mattermost_mattermost_token_rejected 0")
    );
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_channel_the_bot_is_not_in_is_posted_at_the_next_resync_after_the_fix() {
    let w = World::start().await;
    let team = w.mm.add_team("team-closed");
    w.mm.add_team_member(&team, w.mm.bot_id());
    let closed = w.mm.add_channel(&team, "closed");
    let svc = w
        .service(
            "[bridge]\nresync_interval = \"1s\"\n\n[role_to_recipients]\n\"*\" = [\"team-closed/closed\", \"team-llama/channel-llama\"]\n",
        )
        .await;
    let id =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    // The other channel at once; the refused one owed.
    let d = w
        .data_within(&id, WAIT, |d, m| {
            d.messages.len() == 1
                && m.get(owed::KEY)
                    .is_some_and(|o| o.contains("team-closed/closed"))
        })
        .await;
    assert_eq!(d.messages[0].channel_id, w.channel_id);
    // A later request is not held up either.
    let later =
        w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]))
            .id;
    w.data_within(&later, WAIT, |d, _| d.messages.len() == 1)
        .await;
    // The fix (`/invite @teleport`): the next resync posts it, nothing else is posted again.
    w.mm.add_channel_member(&closed, w.mm.bot_id());
    for id in [&id, &later] {
        w.data_within(id, Duration::from_secs(10), |d, m| {
            d.messages.len() == 2 && !m.contains_key(owed::KEY)
        })
        .await;
    }
    assert_eq!(w.mm.posts_in(&closed).len(), 2);
    assert_eq!(w.mm.posts_in(&w.channel_id).len(), 2);
    svc.stop().await.unwrap();
}

const BIN: &str = env!("CARGO_BIN_EXE_teleport-mattermost");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_between_posting_and_recording_is_adopted_by_its_successor() {
    let w = World::start().await;
    // Behind several Mattermost nodes without a shared cache: re-sent posts are new posts.
    w.mm.set_pending_post_dedup(false);
    let http = free_port().unwrap();
    let config = w.dir.path().join("killed.toml");
    let text = w.config_text(TWO_RECIPIENTS).replace(
        "listen_addr = \"127.0.0.1:0\"",
        &format!("listen_addr = \"{http}\""),
    );
    std::fs::write(&config, text).unwrap();
    let log = w.dir.path().join("killed.log");
    let mut killed =
        ServiceProcess::spawn(std::path::Path::new(BIN), &config, http, &[], Some(&log))
            .expect("the service binary starts");
    killed
        .wait_ready(Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    // The posts are made, but their answers (and so the plugin-data write) come late.
    w.mm.faults().delay_next(
        Some(RouteFilter::new("POST", "/api/v4/posts")),
        2,
        Duration::from_secs(4),
    );
    let id = request(&w);
    w.mm.wait_for(WAIT, |sim| {
        (sim.posts().iter().filter(|p| p.root_id.is_empty()).count() == 2).then_some(())
    })
    .await
    .expect("both roots created");
    killed.kill().await;
    let stored = PluginData::decode(&w.plugin_data(&id).unwrap()).unwrap();
    assert!(
        stored.messages.is_empty(),
        "killed before recording: {stored:?}"
    );
    assert!(w.plugin_data(&id).unwrap().contains_key("claim"));

    // The successor takes over once the claim's lease runs out, and adopts.
    let svc = w.service(TWO_RECIPIENTS).await;
    let d = w
        .data_within(&id, Duration::from_secs(30), |d, _| d.messages.len() == 2)
        .await;
    let mut posted: Vec<String> = roots(&w).into_iter().map(|p| p.id).collect();
    let mut recorded: Vec<String> = d.messages.iter().map(|m| m.post_id.clone()).collect();
    posted.sort();
    recorded.sort();
    assert_eq!(
        posted, recorded,
        "one post per recipient, adopted, none re-created"
    );
    assert!(
        svc.metrics
            .render()
            .contains("teleport_mattermost_posts_adopted_total{kind=\"root\"} 2"),
        "{}",
        svc.metrics.render()
    );
    // Updated on resolution.
    w.tp.approve(&id, "okay").unwrap();
    w.data_within(&id, WAIT, |d, _| d.resolution == Resolution::Approved)
        .await;
    for p in &posted {
        assert!(w.mm.post(p).unwrap().message.contains("✅ APPROVED"));
    }
    assert_eq!(roots(&w).len(), 3, "two roots and the requester's message");
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn a_resync_skips_what_did_not_change_and_still_acts_on_what_changed_unannounced() {
    let w = World::start().await;
    let svc = w
        .service(&format!(
            "{TWO_RECIPIENTS}[bridge]\nresync_interval = \"1s\"\n"
        ))
        .await;
    let id = request(&w);
    w.data_within(&id, WAIT, |d, m| {
        d.messages.len() == 2 && !m.contains_key(owed::KEY)
    })
    .await;
    // The resyncs after the one that saw it current skip it undecoded.
    let deadline = tokio::time::Instant::now() + WAIT;
    while unchanged(&svc) != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resync skipped the unchanged request: {:?}",
            unchanged(&svc)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another program marks a recipient owed: no event announces plugin data, so only the
    // resync can notice, by the digest of its pairs that changed.
    let set = [(
        owed::KEY.to_string(),
        r#"["reviewer1@example.com"]"#.to_string(),
    )]
    .into();
    let expect = [(owed::KEY.to_string(), String::new())].into();
    w.other_program()
        .update_plugin_data("mattermost", &id, set, expect)
        .await
        .unwrap();
    w.data_within(&id, Duration::from_secs(5), |d, m| {
        d.messages.len() == 2 && !m.contains_key(owed::KEY)
    })
    .await;
    assert_eq!(roots(&w).len(), 2, "nothing posted twice");
    svc.stop().await.unwrap();
}

/// `teleport_mattermost_catch_up_unchanged` of the service (`None` before the first catch-up).
fn unchanged(svc: &crate::harness::Service) -> Option<f64> {
    metric_value(
        &svc.metrics.render(),
        "teleport_mattermost_catch_up_unchanged",
    )
}
