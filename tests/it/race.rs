//! Upstream's TestRace (skipped there as flaky), with replicas: three service instances share
//! one Teleport and one Mattermost; many requests, each with two suggested reviewers who
//! approve as soon as their post arrives. Exactly one post per reviewer, one reply per
//! review, every post ends APPROVED, the requester is told once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use teleport_mattermost::app::Options;
use teleport_mattermost_sim::mattermost::SimPost;
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER1, REVIEWER2};
use teleport_mattermost_sim::teleport::{NewReview, RequestState, Threshold};

use crate::harness::{Service, World, request_id};

const REQUESTS: usize = 20;
const REPLICAS: usize = 3;
const CONVERGE: Duration = Duration::from_secs(30);

fn roots(w: &World, channel: &Option<String>) -> Vec<SimPost> {
    channel
        .as_ref()
        .map(|c| w.mm.posts_in(c))
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.root_id.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_post_once_and_resolve_every_request_when_reviewers_race() {
    let w = World::start().await;
    // No role table: the suggested reviewers' DMs are the only recipients.
    let mut services = Vec::new();
    for i in 1..=REPLICAS {
        let options = Options {
            fail_fast: false,
            replica: Some(format!("r{i}")),
            ..Options::default()
        };
        services.push(Service::start(w.config(""), options).await);
    }
    for s in &services {
        s.ready().await;
    }

    let ids: BTreeSet<String> = (0..REQUESTS)
        .map(|i| {
            let mut req = NewRequest::new(REQUESTER, &["editor"])
                .reason(&format!("race {i}"))
                .suggested_reviewers(&[REVIEWER1, REVIEWER2]);
            req.thresholds = Some(vec![Threshold {
                name: "two".into(),
                approve: 2,
                deny: 2,
            }]);
            w.tp.create_request(req).id
        })
        .collect();

    // Each reviewer approves every request as soon as its post shows up in their DM.
    let mut reviewed: BTreeSet<(&str, String)> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while reviewed.len() < 2 * REQUESTS {
        let todo: Vec<(&str, String)> =
            w.mm.wait_for(deadline - tokio::time::Instant::now(), |_| {
                let new: Vec<(&str, String)> = [REVIEWER1, REVIEWER2]
                    .into_iter()
                    .flat_map(|r| {
                        roots(&w, &w.dm(r))
                            .iter()
                            .filter_map(request_id)
                            .map(move |id| (r, id))
                            .collect::<Vec<_>>()
                    })
                    .filter(|k| !reviewed.contains(k))
                    .collect();
                (!new.is_empty()).then_some(new)
            })
            .await
            .unwrap_or_else(|_| panic!("only {} reviews made: posts missing", reviewed.len()));
        for (reviewer, id) in todo {
            assert!(ids.contains(&id), "a post for an unknown request {id}");
            let review = NewReview {
                author: reviewer.into(),
                proposed_state: RequestState::Approved,
                reason: format!("ok from {reviewer}"),
                on_behalf: false,
            };
            w.tp.submit_review_as(reviewer, &id, &review)
                .unwrap_or_else(|e| panic!("review of {id} by {reviewer}: {e}"));
            reviewed.insert((reviewer, id));
        }
    }

    // Converged: every root shows APPROVED with two replies, every requester DM is there.
    let requester_dm = || w.dm(REQUESTER);
    let settled =
        w.mm.wait_for(CONVERGE, |sim| {
            let roots: Vec<SimPost> = [REVIEWER1, REVIEWER2]
                .iter()
                .flat_map(|r| roots(&w, &w.dm(r)))
                .collect();
            let done = roots.len() >= 2 * REQUESTS
                && roots.iter().all(|p| {
                    p.message.contains("✅ APPROVED") && sim.thread_replies(&p.id).len() >= 2
                })
                && requester_dm().is_some_and(|c| sim.posts_in(&c).len() >= REQUESTS);
            done.then_some(roots)
        })
        .await;
    let roots = settled.unwrap_or_else(|_| {
        panic!(
            "not converged: {} posts, {} requests approved in Teleport",
            w.mm.post_count(),
            w.tp.requests()
                .iter()
                .filter(|r| r.state == RequestState::Approved)
                .count()
        )
    });
    // Let late duplicates (if any) land before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(roots.len(), 2 * REQUESTS, "exactly 2N root posts");
    let mut per_request: BTreeMap<String, usize> = BTreeMap::new();
    for p in &roots {
        *per_request.entry(request_id(p).unwrap()).or_default() += 1;
        let replies = w.mm.thread_replies(&p.id);
        assert_eq!(replies.len(), 2, "two review replies under {}", p.id);
        let authors: BTreeSet<bool> = replies
            .iter()
            .map(|r| r.message.contains("reviewer1@example.com"))
            .collect();
        assert_eq!(authors.len(), 2, "one reply per reviewer under {}", p.id);
        assert!(
            w.mm.post(&p.id).unwrap().message.contains("✅ APPROVED"),
            "{}",
            p.message
        );
    }
    assert_eq!(per_request.keys().cloned().collect::<BTreeSet<_>>(), ids);
    assert!(per_request.values().all(|&n| n == 2), "{per_request:?}");
    let told = w.mm.posts_in(&requester_dm().unwrap());
    assert_eq!(
        told.len(),
        REQUESTS,
        "the requester is told once per request"
    );
    for r in w.tp.requests() {
        assert_eq!(r.state, RequestState::Approved, "{}", r.id);
    }
    // Only the two DM channels and the requester's DM hold posts: 2N roots, 4N replies, N DMs.
    assert_eq!(w.mm.post_count(), 2 * REQUESTS + 4 * REQUESTS + REQUESTS);
    let conflicts: Vec<String> = services
        .iter()
        .map(|s| {
            s.metrics
                .render()
                .lines()
                .find(|l| l.starts_with("teleport_mattermost_cas_conflicts_total"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    println!(
        "race: {REQUESTS} requests × 2 reviewers on {REPLICAS} replicas: {} roots, {} posts in all; per replica {conflicts:?}",
        roots.len(),
        w.mm.post_count()
    );
    for s in services {
        s.stop().await.unwrap();
    }
}
