//! Delivery under failure, against the fakes: what could not be posted stays owed, a refused
//! token is reported and retried, and a takeover adopts what its predecessor posted but never
//! recorded, even where Mattermost forgets `pending_post_id`s.

use super::claim::{self, Claim, Phase};
use super::fakes::{FakeChat, FakeStore};
use super::owed;
use super::ports::PortError;
use super::processor_tests::{ID, chat, processor, reminding, request, stored};
use super::queue::Outcome;
use crate::access::{RequestState, Resolution};

/// Leaves the request as a holder interrupted in `phase` would: its claim still there,
/// run out, and whatever it posted after `since` possibly unrecorded.
fn interrupt(store: &FakeStore, phase: Phase) {
    let mut m = store.get_now(ID).unwrap();
    m.insert(
        claim::KEY.into(),
        Claim {
            owner: "dead".into(),
            until: 1,
            phase,
            since: Some(1),
        }
        .encode(),
    );
    store.data.lock().unwrap().insert(ID.into(), m);
}

fn no_dedup() -> FakeChat {
    let chat = chat();
    *chat.no_dedup.lock().unwrap() = true;
    chat
}

#[tokio::test]
async fn a_refused_channel_does_not_hold_up_the_others_and_is_posted_once_fixed() {
    let (store, chat) = (FakeStore::default(), chat());
    chat.refusing.lock().unwrap().insert(
        "ch-dm-r1".into(),
        PortError::Fatal("403: the bot is not a member".into()),
    );
    let p = processor("a", &store, &chat);
    // A refusal is not retried in a loop: the event is done, the recipient owed.
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 1);
    assert_eq!(
        store.get_now(ID).unwrap()[owed::KEY],
        r#"["reviewer1@example.com"]"#
    );
    // Still refused at the next resync: nothing else changes.
    p.handle(ID, request(RequestState::Pending, &[])).await;
    assert_eq!(chat.roots().len(), 1);
    // Fixed: the next resync posts it, and nothing is owed any more.
    chat.refusing.lock().unwrap().clear();
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 2);
    assert_eq!(stored(&store).messages.len(), 2);
    assert!(!store.get_now(ID).unwrap().contains_key(owed::KEY));
}

#[tokio::test]
async fn a_refused_token_is_retried_reported_and_cleared() {
    let (store, chat) = (FakeStore::default(), chat());
    let refused = PortError::Unauthorized("Mattermost rejected the bot token (401)".into());
    for ch in ["ch-team", "ch-dm-r1"] {
        chat.refusing
            .lock()
            .unwrap()
            .insert(ch.into(), refused.clone());
    }
    let p = processor("a", &store, &chat);
    p.health.set(true);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Retry { .. }
    ));
    assert!(chat.roots().is_empty());
    assert!(p.health.reason().unwrap().contains("401"));
    assert_eq!(p.metrics.token_rejected.get(), 1);
    chat.refusing.lock().unwrap().clear();
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 2);
    assert_eq!(p.metrics.token_rejected.get(), 0);
    assert_eq!(p.health.reason(), None);
}

#[tokio::test]
async fn the_common_path_never_lists_posts() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    p.handle(
        ID,
        request(RequestState::Pending, &[("r1", RequestState::Approved)]),
    )
    .await;
    p.handle(
        ID,
        request(RequestState::Approved, &[("r1", RequestState::Approved)]),
    )
    .await;
    assert_eq!(*chat.finds.lock().unwrap(), 0);
    assert_eq!(
        chat.roots().len(),
        3,
        "two roots and the requester's message"
    );
}

#[tokio::test]
async fn a_takeover_adopts_unrecorded_roots_where_mattermost_forgot_the_pending_post_id() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    // Replica "dead" posted to both channels but recorded only the first before it died.
    processor("dead", &store, &chat)
        .handle(ID, request(RequestState::Pending, &[]))
        .await;
    let mut m = store.get_now(ID).unwrap();
    let mut data = crate::access::PluginData::decode(&m).unwrap();
    data.messages.truncate(1);
    m.extend(data.encode());
    store.data.lock().unwrap().insert(ID.into(), m);
    interrupt(&store, Phase::Post);

    let p = processor("b", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 2, "adopted, not posted again");
    assert_eq!(stored(&store).messages.len(), 2);
    assert_eq!(
        p.metrics.adopted.with_label_values(&["root"]).get(),
        1,
        "the unrecorded root was adopted"
    );
    // Adopted posts are updated on resolution like the others.
    p.handle(ID, request(RequestState::Denied, &[])).await;
    let updated: Vec<String> = chat
        .updates
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    for m in stored(&store).messages {
        assert!(updated.contains(&m.post_id), "{updated:?}");
    }
}

#[tokio::test]
async fn a_post_without_an_answer_is_looked_for_before_it_is_sent_again() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    chat.answer_lost.lock().unwrap().insert("ch-dm-r1".into());
    let p = processor("a", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Retry { .. }
    ));
    // The claim stays for its lease (the post may still land): the retry waits it out.
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Wait { .. }
    ));
    let mut m = store.get_now(ID).unwrap();
    let mut c = Claim::parse(&m[claim::KEY]).unwrap();
    c.until = 1;
    m.insert(claim::KEY.into(), c.encode());
    store.data.lock().unwrap().insert(ID.into(), m);
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &[])).await,
        Outcome::Done
    ));
    assert_eq!(chat.roots().len(), 2, "the unanswered post was adopted");
    assert_eq!(stored(&store).messages.len(), 2);
}

#[tokio::test]
async fn a_takeover_adopts_unrecorded_replies_and_the_requesters_message() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    let reviews = [("r1", RequestState::Approved)];
    let dead = processor("dead", &store, &chat);
    dead.handle(ID, request(RequestState::Pending, &[])).await;
    let before = store.get_now(ID).unwrap();
    // The dead replica replied, resolved and told the requester, and recorded none of it.
    dead.handle(ID, request(RequestState::Approved, &reviews))
        .await;
    store.data.lock().unwrap().insert(ID.into(), before);
    interrupt(&store, Phase::Update);
    let posts = chat.posts.lock().unwrap().len();

    let p = processor("b", &store, &chat);
    assert!(matches!(
        p.handle(ID, request(RequestState::Approved, &reviews))
            .await,
        Outcome::Done
    ));
    assert_eq!(
        chat.posts.lock().unwrap().len(),
        posts,
        "nothing posted twice"
    );
    let data = stored(&store);
    assert_eq!(data.reviews_count, 1);
    assert_eq!(data.resolution, Resolution::Approved);
    assert_eq!(p.metrics.adopted.with_label_values(&["reply"]).get(), 2);
    assert_eq!(p.metrics.adopted.with_label_values(&["requester"]).get(), 1);
}

#[tokio::test]
async fn a_root_posted_late_gets_the_replies_the_others_already_have() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    chat.refusing
        .lock()
        .unwrap()
        .insert("ch-dm-r1".into(), PortError::Fatal("403".into()));
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    let reviews = [("r1", RequestState::Approved)];
    p.handle(ID, request(RequestState::Pending, &reviews)).await;
    assert_eq!(chat.replies().len(), 1);
    chat.refusing.lock().unwrap().clear();
    p.handle(ID, request(RequestState::Pending, &reviews)).await;
    let late_root = &stored(&store).messages[1];
    let replies = chat.replies();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies
            .iter()
            .any(|r| r.root_id.as_deref() == Some(late_root.post_id.as_str()))
    );
}

#[tokio::test]
async fn a_reply_batch_that_partly_failed_is_completed_without_duplicates() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    let p = processor("a", &store, &chat);
    p.handle(ID, request(RequestState::Pending, &[])).await;
    chat.failing.lock().unwrap().insert("ch-dm-r1".into(), 1);
    let reviews = [("r1", RequestState::Approved)];
    assert!(matches!(
        p.handle(ID, request(RequestState::Pending, &reviews)).await,
        Outcome::Retry { .. }
    ));
    assert_eq!(chat.replies().len(), 1);
    p.handle(ID, request(RequestState::Pending, &reviews)).await;
    assert_eq!(chat.replies().len(), 2, "{:?}", chat.replies());
    assert_eq!(stored(&store).reviews_count, 1);
    assert!(!store.get_now(ID).unwrap().contains_key(claim::KEY));
}

#[tokio::test]
async fn a_takeover_adopts_an_unrecorded_reminder_and_escalation() {
    let (store, chat) = (FakeStore::default(), no_dedup());
    let (early, work) = reminding(&store, &chat, 0);
    early.handle(ID, work).await;
    let before = store.get_now(ID).unwrap();
    // 90 minutes on, a replica reminds and escalates, then dies before recording either.
    let (late, work) = reminding(&store, &chat, 90);
    assert!(matches!(late.handle(ID, work.clone()).await, Outcome::Done));
    let posts = chat.posts.lock().unwrap().len();
    store.data.lock().unwrap().insert(ID.into(), before);
    interrupt(&store, Phase::Update);
    // Its successor sends nothing again: the threads hold the reminders, the on-call channel
    // the escalation, and both are recorded.
    let (next, _) = reminding(&store, &chat, 91);
    assert!(matches!(next.handle(ID, work).await, Outcome::Done));
    let now = chat.posts.lock().unwrap().clone();
    assert_eq!(now.len(), posts, "{now:?}");
    let data = stored(&store);
    assert_eq!(data.notices.reminded, Some(1800));
    assert!(data.notices.escalated);
    assert!(data.messages.iter().any(|m| m.channel_id == "ch-oncall"));
}
