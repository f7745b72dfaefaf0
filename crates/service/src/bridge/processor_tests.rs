//! The exactly-once logic against in-memory Teleport plugin data and Mattermost.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::claim::{self, Claim, Phase};
use super::fakes::{FakeChat, FakeRender, FakeStore};
use super::metrics::BridgeMetrics;
use super::processor::Processor;
use super::queue::Outcome;
use super::work::Work;
use crate::access::{AccessRequest, PluginData, RequestState, Resolution, Review};
use crate::route::{Recipient, Routing};

pub(super) const ID: &str = "0193a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091";

pub(super) type P = Processor<FakeStore, FakeChat, FakeRender>;

pub(super) fn routing() -> Arc<Routing> {
    Arc::new(Routing::new(BTreeMap::from([(
        "editor".to_string(),
        vec![
            Recipient::parse("team/channel").unwrap(),
            Recipient::parse("reviewer1@example.com").unwrap(),
            Recipient::parse("team/missing").unwrap(),
        ],
    )])))
}

pub(super) fn processor(owner: &str, store: &FakeStore, chat: &FakeChat) -> P {
    Processor {
        store: store.clone(),
        chat: chat.clone(),
        render: FakeRender,
        routing: routing(),
        owner: owner.into(),
        notify_requester: true,
        reminders: None,
        metrics: BridgeMetrics::new(&crate::metrics::Metrics::new()),
        health: Default::default(),
        scans: Default::default(),
    }
}

pub(super) fn chat() -> FakeChat {
    FakeChat::with(&[
        ("team/channel", "ch-team"),
        ("reviewer1@example.com", "ch-dm-r1"),
        ("requester@example.com", "ch-dm-req"),
    ])
}

pub(super) fn request(state: RequestState, reviews: &[(&str, RequestState)]) -> Work {
    Work::put(AccessRequest {
        id: ID.into(),
        user: "requester@example.com".into(),
        roles: vec!["editor".into()],
        state,
        request_reason: "because of".into(),
        resolve_reason: if state.is_resolved() {
            "finally okay".into()
        } else {
            String::new()
        },
        reviews: reviews
            .iter()
            .map(|(a, s)| Review {
                author: a.to_string(),
                proposed_state: *s,
                reason: "ok".into(),
                created: None,
                submitted_by: String::new(),
                on_behalf: false,
            })
            .collect(),
        ..AccessRequest::default()
    })
}

pub(super) fn stored(store: &FakeStore) -> PluginData {
    PluginData::decode(&store.get_now(ID).expect("plugin data exists")).unwrap()
}

#[tokio::test]
async fn a_pending_request_is_posted_once_per_channel_and_recorded() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    let roots = chat.roots();
    assert_eq!(
        roots.len(),
        2,
        "team/missing does not resolve and is skipped"
    );
    let data = stored(&store);
    assert_eq!(data.messages.len(), 2);
    assert_eq!(data.user, "requester@example.com");
    assert_eq!(data.roles, vec!["editor".to_string()]);
    assert!(
        !store.get_now(ID).unwrap().contains_key(claim::KEY),
        "claim released"
    );
    // The same event again changes nothing.
    p.handle(ID, request(RequestState::Pending, &[])).await;
    assert_eq!(chat.roots().len(), 2);
}

/// The catch-up skips what `settled` calls settled, so it must be exactly the cases where
/// the processor reads and does nothing, and false wherever it has work.
#[tokio::test]
async fn settled_agrees_with_what_the_processor_does() {
    use super::processor::settled;
    use crate::access::RawData;
    let pending = || request(RequestState::Pending, &[]);
    let approved = || request(RequestState::Approved, &[("r1", RequestState::Approved)]);
    let reviewed = || request(RequestState::Pending, &[("r1", RequestState::Approved)]);
    let resolved_unseen = || {
        let Work::Put(r, _) = approved() else {
            unreachable!()
        };
        Work::resolved((*r).clone(), false)
    };
    // Plugin data as the processor leaves it after handling `work`.
    let after = |work: Work| async move {
        let (store, chat) = (FakeStore::default(), chat());
        processor("a", &store, &chat).handle(ID, work).await;
        store.get_now(ID)
    };
    let posted = after(pending()).await;
    let resolved = after(approved()).await;
    let mut claimed = posted.clone().unwrap();
    claimed.insert(claim::KEY.into(), "b;0;update".into());
    let cases: Vec<(&str, Work, Option<RawData>, bool)> = vec![
        ("new pending request", pending(), None, false),
        (
            "resolved, never seen pending",
            resolved_unseen(),
            None,
            true,
        ),
        ("deleted, no data", Work::Deleted, None, true),
        ("pending, posted", pending(), posted.clone(), true),
        ("resolved since posted", approved(), posted.clone(), false),
        ("reviewed since posted", reviewed(), posted.clone(), false),
        ("deleted while posted", Work::Deleted, posted.clone(), false),
        (
            "posted, a claim left behind",
            pending(),
            Some(claimed),
            false,
        ),
        ("resolved, recorded", approved(), resolved.clone(), true),
        ("deleted after resolved", Work::Deleted, resolved, true),
    ];
    for (name, work, data, expected) in cases {
        assert_eq!(settled(&work, data.as_ref()), expected, "{name}");
        let (store, chat) = (FakeStore::default(), chat());
        if let Some(d) = data {
            store.data.lock().unwrap().insert(ID.into(), d);
        }
        processor("a", &store, &chat).handle(ID, work).await;
        let idle = *store.writes.lock().unwrap() == 0
            && chat.posts.lock().unwrap().is_empty()
            && chat.updates.lock().unwrap().is_empty();
        assert_eq!(idle, expected, "{name}: the processor did work: {}", !idle);
    }
}

#[tokio::test]
async fn three_replicas_racing_post_each_root_exactly_once() {
    let (store, chat) = (FakeStore::default(), chat());
    let ps: Vec<P> = ["a", "b", "c"]
        .iter()
        .map(|o| processor(o, &store, &chat))
        .collect();
    let work = request(RequestState::Pending, &[]);
    // Losers see a fresh claim and come back later, as the queue would.
    for _ in 0..50 {
        let runs = ps.iter().map(|p| p.handle(ID, work.clone()));
        let outcomes = futures_util::future::join_all(runs).await;
        if outcomes.iter().all(|o| matches!(o, Outcome::Done)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(chat.roots().len(), 2, "{:?}", chat.roots());
    assert_eq!(stored(&store).messages.len(), 2);
}

#[tokio::test]
async fn each_review_gets_one_reply_per_root_even_when_events_repeat() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    let one = request(
        RequestState::Pending,
        &[("reviewer1", RequestState::Approved)],
    );
    p.handle(ID, one.clone()).await;
    p.handle(ID, one).await;
    assert_eq!(
        chat.replies().len(),
        2,
        "one reply under each of the 2 roots"
    );
    assert_eq!(stored(&store).reviews_count, 1);
    let two = request(
        RequestState::Pending,
        &[
            ("reviewer1", RequestState::Approved),
            ("reviewer2", RequestState::Approved),
        ],
    );
    p.handle(ID, two).await;
    assert_eq!(chat.replies().len(), 4);
    let replies = chat.replies();
    let roots: Vec<String> = chat.roots().iter().map(|r| r.id.clone()).collect();
    assert!(
        replies
            .iter()
            .all(|r| roots.contains(r.root_id.as_ref().unwrap()))
    );
    // The roots were refreshed to show the progress.
    assert!(
        chat.updates
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("a2/d0"))
    );
}

#[tokio::test]
async fn resolution_updates_every_root_and_tells_the_requester_once() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    let approved = request(
        RequestState::Approved,
        &[("reviewer1", RequestState::Approved)],
    );
    assert!(matches!(
        p.handle(ID, approved.clone()).await,
        Outcome::Done
    ));
    let data = stored(&store);
    assert_eq!(data.resolution, Resolution::Approved);
    assert_eq!(data.resolve_reason, "finally okay");
    let updates = chat.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|(_, m)| m.contains("Approved")));
    let dms: Vec<_> = chat
        .roots()
        .into_iter()
        .filter(|p| p.channel_id == "ch-dm-req")
        .collect();
    assert_eq!(dms.len(), 1);
    assert!(dms[0].message.contains("outcome"));
    // Repeated resolved event and a later deletion are quiet no-ops.
    p.handle(ID, approved).await;
    p.handle(ID, Work::Deleted).await;
    assert_eq!(chat.updates.lock().unwrap().len(), 2);
    assert_eq!(stored(&store).resolution, Resolution::Approved);
}

/// The DMs that tell the requester the outcome.
fn requester_dms(chat: &FakeChat) -> usize {
    chat.roots()
        .iter()
        .filter(|p| p.channel_id == "ch-dm-req")
        .count()
}

#[tokio::test]
async fn a_resolved_request_gets_a_reaction_on_every_root_once() {
    for (state, emoji) in [
        (RequestState::Approved, "white_check_mark"),
        (RequestState::Denied, "x"),
    ] {
        let (store, chat) = (FakeStore::default(), chat());
        let p = processor("a", &store, &chat);
        p.handle(ID, request(RequestState::Pending, &[])).await;
        assert!(
            chat.reactions.lock().unwrap().is_empty(),
            "none while pending"
        );
        let resolved = request(state, &[("reviewer1", state)]);
        p.handle(ID, resolved.clone()).await;
        p.handle(ID, resolved).await;
        let mut roots: Vec<String> = chat.roots().iter().take(2).map(|r| r.id.clone()).collect();
        let mut reacted: Vec<String> = chat
            .reactions
            .lock()
            .unwrap()
            .iter()
            .map(|(post, e)| {
                assert_eq!(e, emoji);
                post.clone()
            })
            .collect();
        roots.sort();
        reacted.sort();
        assert_eq!(reacted, roots, "{state:?}");
    }
}

#[tokio::test]
async fn notify_requester_off_sends_no_dm() {
    let (store, chat) = (FakeStore::default(), chat());
    let mut p = processor("a", &store, &chat);
    p.notify_requester = false;
    p.handle(ID, request(RequestState::Pending, &[])).await;
    p.handle(ID, request(RequestState::Denied, &[])).await;
    assert_eq!(stored(&store).resolution, Resolution::Denied);
    assert_eq!(requester_dms(&chat), 0);
}

#[tokio::test]
async fn a_request_posted_to_nobody_gets_no_dm_when_resolved() {
    let store = FakeStore::default();
    // No recipient resolves (the requester's DM channel does): nothing is posted.
    let chat = FakeChat::with(&[("requester@example.com", "ch-dm-req")]);
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    assert!(chat.roots().is_empty());
    p.handle(ID, request(RequestState::Approved, &[])).await;
    assert_eq!(stored(&store).resolution, Resolution::Approved);
    assert_eq!(requester_dms(&chat), 0, "nobody was told, so no DM either");
}

#[tokio::test]
async fn deleting_a_pending_request_marks_its_posts_expired_from_plugin_data() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    p.handle(ID, Work::Deleted).await;
    assert_eq!(stored(&store).resolution, Resolution::Expired);
    let updates = chat.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 2);
    assert!(
        updates.iter().all(|(_, m)| m.contains("Expired")),
        "{updates:?}"
    );
}

#[tokio::test]
async fn a_request_resolved_before_it_was_seen_is_not_posted() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Denied, &[])).await,
        Outcome::Done
    ));
    assert!(matches!(p.handle(ID, Work::Deleted).await, Outcome::Done));
    assert!(chat.posts.lock().unwrap().is_empty());
    assert!(store.get_now(ID).is_none());
}

#[tokio::test]
async fn a_fresh_claim_of_another_replica_is_waited_for_briefly() {
    let (store, chat) = (FakeStore::default(), chat());
    let mut m = PluginData::default().encode();
    m.insert(
        claim::KEY.into(),
        Claim::new("other", Phase::Post, claim::now_ms()).encode(),
    );
    store.data.lock().unwrap().insert(ID.into(), m);
    let p = processor("a", &store, &chat);
    match p.handle(ID, request(RequestState::Pending, &[])).await {
        Outcome::Wait { after: d, .. } => {
            assert!(d <= std::time::Duration::from_millis(2100), "{d:?}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(chat.posts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_takeover_after_a_crash_completes_without_duplicates() {
    let (store, chat) = (FakeStore::default(), chat());
    // Replica "dead" posted to both channels but recorded only the first before it died.
    let dead = processor("dead", &store, &chat);
    dead.handle(ID, request(RequestState::Pending, &[])).await;
    let mut m = store.get_now(ID).unwrap();
    let mut data = PluginData::decode(&m).unwrap();
    data.messages.truncate(1);
    m.extend(data.encode());
    m.insert(
        claim::KEY.into(),
        Claim {
            owner: "dead".into(),
            until: 1,
            phase: Phase::Post,
            since: None,
        }
        .encode(),
    );
    store.data.lock().unwrap().insert(ID.into(), m);

    let p = processor("b", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(
        chat.roots().len(),
        2,
        "the re-sent post was deduplicated by its pending_post_id"
    );
    assert_eq!(stored(&store).messages.len(), 2);
    assert!(!store.get_now(ID).unwrap().contains_key(claim::KEY));
}

#[tokio::test]
async fn a_failed_post_keeps_progress_and_the_retry_posts_only_what_is_missing() {
    let (store, chat) = (FakeStore::default(), chat());
    chat.failing.lock().unwrap().insert("ch-dm-r1".into(), 1);
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Retry { .. }
    ));
    assert_eq!(
        stored(&store).messages.len(),
        1,
        "the successful post is recorded"
    );
    // The claim is released; what is missing is owed, so the retry posts it.
    let data = store.get_now(ID).unwrap();
    assert!(!data.contains_key(claim::KEY), "{data:?}");
    assert_eq!(data[super::owed::KEY], r#"["reviewer1@example.com"]"#);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 2);
    assert_eq!(stored(&store).messages.len(), 2);
}

#[tokio::test]
async fn a_request_approved_before_its_pending_event_was_processed_is_still_posted() {
    use super::queue::Supersede;
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    // The queue coalesced PENDING then APPROVED into one item.
    let merged =
        request(RequestState::Pending, &[]).supersede(request(RequestState::Approved, &[]));
    assert!(merged.was_pending());
    assert!(matches!(p.handle(ID, merged).await, Outcome::Done));
    assert_eq!(
        chat.roots()
            .iter()
            .filter(|r| r.channel_id != "ch-dm-req")
            .count(),
        2
    );
    assert!(
        chat.roots().iter().any(|r| r.channel_id == "ch-dm-req"),
        "the requester is told"
    );
    assert_eq!(stored(&store).resolution, Resolution::Approved);
}

#[tokio::test]
async fn a_newer_state_supersedes_an_older_snapshot() {
    use super::queue::Supersede;
    let pending = request(RequestState::Pending, &[("r1", RequestState::Approved)]);
    let older = request(RequestState::Pending, &[]);
    let resolved = request(RequestState::Approved, &[("r1", RequestState::Approved)]);
    let keep = |w: Work| match w {
        Work::Put(r, _) => (r.state, r.reviews.len()),
        Work::Deleted => (RequestState::None, 99),
    };
    assert_eq!(
        keep(pending.clone().supersede(older.clone())),
        (RequestState::Pending, 1)
    );
    assert_eq!(
        keep(older.supersede(resolved.clone())),
        (RequestState::Approved, 1)
    );
    assert_eq!(
        keep(resolved.supersede(pending)),
        (RequestState::Approved, 1)
    );
    assert_eq!(
        keep(Work::Deleted.supersede(request(RequestState::Pending, &[]))),
        (RequestState::None, 99)
    );
}

// The compare-and-swap writes themselves (what upstream's lib/plugindata/cas_test.go checks
// of its CAS helper, here of the processor's one write path).

#[tokio::test]
async fn conflicts_on_the_claim_write_are_retried_from_a_fresh_read() {
    let (store, chat) = (FakeStore::default(), chat());
    *store.conflicts.lock().unwrap() = 3;
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(p.metrics.cas_conflicts.get(), 3);
    assert_eq!(chat.roots().len(), 2, "posted once despite the conflicts");
    assert_eq!(
        *store.writes.lock().unwrap(),
        2,
        "the claim, then the release"
    );
}

#[tokio::test]
async fn endless_conflicts_hand_the_event_back_to_the_queue_after_the_cas_rounds() {
    let (store, chat) = (FakeStore::default(), chat());
    *store.conflicts.lock().unwrap() = u32::MAX;
    let p = processor("a", &store, &chat);
    match p.handle(ID, request(RequestState::Pending, &[])).await {
        Outcome::Retry { reason, .. } => assert!(reason.contains("concurrent"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(p.metrics.cas_conflicts.get(), 16);
    assert!(chat.posts.lock().unwrap().is_empty());
    assert_eq!(*store.writes.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_replica_that_finished_between_our_read_and_our_write_is_not_repeated() {
    let (store, chat) = (FakeStore::default(), chat());
    // The other replica's finished work lands just before our first write.
    let done = PluginData {
        user: "requester@example.com".into(),
        messages: vec![crate::access::SentMessage {
            channel_id: "ch-team".into(),
            post_id: "theirs".into(),
        }],
        ..PluginData::default()
    };
    *store.interloper.lock().unwrap() = Some(
        done.encode()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
    );
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert!(
        chat.posts.lock().unwrap().is_empty(),
        "nothing posted twice"
    );
    assert_eq!(stored(&store), done, "their data is not overwritten");
    assert_eq!(p.metrics.cas_conflicts.get(), 1);
}

#[tokio::test]
async fn undecodable_plugin_data_fails_the_event_without_writing() {
    let (store, chat) = (FakeStore::default(), chat());
    store.data.lock().unwrap().insert(
        ID.into(),
        BTreeMap::from([("reviews_count".into(), "many".into())]),
    );
    let p = processor("a", &store, &chat);
    match p.handle(ID, request(RequestState::Pending, &[])).await {
        Outcome::Fail(why) => assert!(why.contains("reviews_count"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(*store.writes.lock().unwrap(), 0);
    assert!(chat.posts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn writes_keep_keys_they_do_not_own_and_expect_them_as_read() {
    let (store, chat) = (FakeStore::default(), chat());
    // A key of an older encoding (button era) that this plugin neither reads nor migrates.
    let mut m = PluginData {
        user: "requester@example.com".into(),
        ..PluginData::default()
    }
    .encode();
    m.retain(|_, v| !v.is_empty());
    m.insert("post_id".into(), "old-post".into());
    store.data.lock().unwrap().insert(ID.into(), m);
    let p = processor("a", &store, &chat);
    let approved = request(RequestState::Approved, &[]);
    assert!(matches!(p.handle(ID, approved).await, Outcome::Done));
    let raw = store.get_now(ID).unwrap();
    assert_eq!(raw["post_id"], "old-post");
    assert_eq!(stored(&store).resolution, Resolution::Approved);
}

#[tokio::test]
async fn a_request_deleted_before_its_first_write_is_left_alone() {
    let (store, chat) = (FakeStore::default(), chat());
    store.deleted.lock().unwrap().insert(ID.into());
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert!(chat.posts.lock().unwrap().is_empty());
    assert!(store.get_now(ID).is_none());
}

#[tokio::test]
async fn a_stale_claim_with_nothing_left_to_do_is_just_released() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    let mut m = store.get_now(ID).unwrap();
    m.insert(
        claim::KEY.into(),
        Claim {
            owner: "dead".into(),
            until: 1,
            phase: Phase::Update,
            since: None,
        }
        .encode(),
    );
    store.data.lock().unwrap().insert(ID.into(), m);
    let posts = chat.posts.lock().unwrap().len();
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.posts.lock().unwrap().len(), posts);
    assert!(!store.get_now(ID).unwrap().contains_key(claim::KEY));
}

#[tokio::test]
async fn a_resolved_request_is_final_and_later_events_write_nothing() {
    let (store, chat) = (FakeStore::default(), chat());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    p.handle(ID, request(RequestState::Denied, &[])).await;
    let writes = *store.writes.lock().unwrap();
    for work in [
        request(RequestState::Denied, &[]),
        request(RequestState::Approved, &[]),
        Work::Deleted,
    ] {
        assert!(matches!(p.handle(ID, work).await, Outcome::Done));
    }
    assert_eq!(*store.writes.lock().unwrap(), writes);
    assert_eq!(stored(&store).resolution, Resolution::Denied);
}

#[test]
fn the_fake_applies_teleports_update_rule() {
    use super::fakes::apply_update;
    use crate::access::RawData;
    let cur = RawData::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
    let set = RawData::from([("a".into(), "".into()), ("c".into(), "3".into())]);
    let ok = RawData::from([("a".into(), "1".into()), ("z".into(), "".into())]);
    let next = apply_update(Some(&cur), &set, &ok).unwrap().unwrap();
    assert_eq!(
        next,
        RawData::from([("b".into(), "2".into()), ("c".into(), "3".into())])
    );
    let stale = RawData::from([("b".into(), "9".into())]);
    assert_eq!(apply_update(Some(&cur), &set, &stale), Err("b".to_string()));
    // No entry yet: any non-empty expectation fails; empty ones pass.
    assert_eq!(apply_update(None, &set, &stale), Err("b".to_string()));
    assert!(apply_update(None, &set, &RawData::from([("b".into(), "".into())])).is_ok());
    // An entry that ends up empty is removed.
    let clear = RawData::from([("a".into(), "".into()), ("b".into(), "".into())]);
    assert_eq!(apply_update(Some(&cur), &clear, &RawData::new()), Ok(None));
}

/// A processor with `[reminders]`: reminders at 30m and 2h, escalation to `team/oncall`
/// after 1h (`ch-oncall` in `chat`), against a clock fixed at `minutes` after the request's
/// creation.
pub(super) fn reminding(store: &FakeStore, chat: &FakeChat, minutes: i64) -> (P, Work) {
    use crate::config::{ReminderSchedule, RemindersConfig};
    let created = time::macros::datetime!(2026-12-02 02:00 UTC);
    let now = created + time::Duration::minutes(minutes);
    // The escalation recipient resolves like the others.
    chat.channels
        .lock()
        .unwrap()
        .insert("team/oncall".into(), "ch-oncall".into());
    let mut p = processor("a", store, chat);
    p.reminders = Some(Arc::new(crate::remind::Reminders {
        config: RemindersConfig {
            default: ReminderSchedule {
                remind_after: vec![
                    std::time::Duration::from_secs(1800),
                    std::time::Duration::from_secs(7200),
                ],
                escalate_after: Some(std::time::Duration::from_secs(3600)),
                escalate_to: vec![Recipient::parse("team/oncall").unwrap()],
                mention_channel: false,
                expiry_notice: std::time::Duration::from_secs(900),
            },
            roles: BTreeMap::new(),
        },
        requester: true,
        clock: crate::access_lists::Clock::new(move || now),
    }));
    let Work::Put(r, _) = request(RequestState::Pending, &[]) else {
        unreachable!()
    };
    let mut r = (*r).clone();
    r.created = Some(created);
    r.pending_expires = Some(created + time::Duration::hours(6));
    (p, Work::put(r))
}

#[tokio::test]
async fn a_reminder_that_fails_is_not_recorded_and_the_retry_sends_it_once() {
    let (store, chat) = (FakeStore::default(), chat());
    let (early, work) = reminding(&store, &chat, 0);
    assert!(matches!(
        early.handle(ID, work.clone()).await,
        Outcome::Done
    ));
    assert!(chat.replies().is_empty(), "nothing due at creation");
    // Down through the 30 m reminder and the escalation: one late reminder, one escalation.
    let (late, work) = reminding(&store, &chat, 90);
    chat.failing.lock().unwrap().insert("ch-team".into(), 1);
    let first = late.handle(ID, work.clone()).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    assert_eq!(stored(&store).notices, Default::default(), "not recorded");
    assert!(matches!(late.handle(ID, work.clone()).await, Outcome::Done));
    let data = stored(&store);
    assert_eq!(data.notices.reminded, Some(1800));
    assert!(data.notices.escalated);
    assert!(data.messages.iter().any(|m| m.channel_id == "ch-oncall"));
    let reminders: Vec<crate::bridge::fakes::Posted> = chat
        .replies()
        .into_iter()
        .filter(|r| r.message.starts_with("reminder"))
        .collect();
    assert_eq!(reminders.len(), 2, "one per root thread: {reminders:?}");
    // Handled again (a resync): nothing more.
    assert!(matches!(late.handle(ID, work).await, Outcome::Done));
    assert_eq!(chat.posts.lock().unwrap().len(), 2 + 2 + 1);
}
