//! Ports of upstream's lib/plugindata/cas_test.go against an in-memory store that applies
//! Teleport's update rule, plus the races the replicas rely on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::access::Resolution;

const ID: &str = "req-1";

/// One request's plugin data, with Teleport's Expect semantics and injectable conflicts.
#[derive(Default)]
struct MemStore {
    data: Mutex<Option<RawData>>,
    /// Fail this many updates with CompareFailed before applying any.
    conflicts: AtomicUsize,
    /// Written by a "concurrent writer" between our read and our write, once.
    interloper: Mutex<Option<RawData>>,
    gets: AtomicUsize,
    updates: AtomicUsize,
}

impl MemStore {
    fn with(data: PluginData) -> Self {
        let s = Self::default();
        *s.data.lock().unwrap() = apply_update(None, &data.encode(), &RawData::new()).unwrap();
        s
    }

    fn current(&self) -> PluginData {
        PluginData::decode(&self.data.lock().unwrap().clone().unwrap_or_default()).unwrap()
    }
}

impl PluginDataStore for &MemStore {
    async fn get(&self, _id: &str) -> Result<Option<RawData>, TeleportError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        Ok(self.data.lock().unwrap().clone())
    }

    async fn update(&self, _id: &str, set: RawData, expect: RawData) -> Result<(), TeleportError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        if let Some(other) = self.interloper.lock().unwrap().take() {
            *self.data.lock().unwrap() = Some(other);
        }
        if self
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(TeleportError::CompareFailed(expectation_failed_message(
                "user",
            )));
        }
        let mut data = self.data.lock().unwrap();
        match apply_update(data.as_ref(), &set, &expect) {
            Ok(next) => {
                *data = next;
                Ok(())
            }
            Err(k) => Err(TeleportError::CompareFailed(expectation_failed_message(&k))),
        }
    }
}

fn data(user: &str, count: u32) -> PluginData {
    PluginData {
        user: user.into(),
        reviews_count: count,
        ..Default::default()
    }
}

fn bump(d: &PluginData) -> Result<Step, String> {
    let mut n = d.clone();
    n.reviews_count += 1;
    Ok(Step::Write(n))
}

/// TestModifyFailed, with upstream's bug fixed: the error comes back with the current data.
#[tokio::test(start_paused = true)]
async fn modify_failed_returns_the_error_with_the_current_data() {
    let store = MemStore::with(data("alice", 2));
    let cas = Cas::new(&store);
    let err = cas
        .update(ID, |_| Err::<Step, _>("already resolved".to_string()))
        .await
        .unwrap_err();
    match err {
        CasError::Rejected { error, current } => {
            assert_eq!(error, "already resolved");
            assert_eq!(*current, data("alice", 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.updates.load(Ordering::SeqCst), 0);
}

/// TestModifyCompareFailed: asking for a retry re-reads fresh data.
#[tokio::test(start_paused = true)]
async fn modify_asking_for_retry_is_called_again_with_fresh_data() {
    let store = MemStore::with(data("alice", 0));
    let cas = Cas::new(&store);
    let mut seen = Vec::new();
    let out = cas
        .update(ID, |d| {
            seen.push(d.reviews_count);
            if seen.len() == 1 {
                *store.data.lock().unwrap() = Some(
                    data("alice", 5)
                        .encode()
                        .into_iter()
                        .filter(|(_, v)| !v.is_empty())
                        .collect(),
                );
                return Ok::<_, String>(Step::Retry);
            }
            bump(d)
        })
        .await
        .unwrap();
    assert_eq!(seen, vec![0, 5]);
    assert_eq!(out, Updated::Written(data("alice", 6)));
    assert_eq!(store.current(), data("alice", 6));
}

/// TestModifySuccess.
#[tokio::test(start_paused = true)]
async fn modify_success_writes_once_and_returns_the_new_data() {
    let store = MemStore::with(data("alice", 1));
    let out = Cas::new(&store).update(ID, bump).await.unwrap();
    assert_eq!(out.data(), &data("alice", 2));
    assert_eq!(store.current(), data("alice", 2));
    assert_eq!(store.updates.load(Ordering::SeqCst), 1);
}

/// TestBackoff: a CompareFailed on the write is retried after a backoff.
#[tokio::test(start_paused = true)]
async fn compare_failed_on_write_is_retried_after_backing_off() {
    let store = MemStore::with(data("alice", 1));
    store.conflicts.store(3, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let out = Cas::new(&store).update(ID, bump).await.unwrap();
    assert_eq!(out.data().reviews_count, 2);
    assert_eq!(store.updates.load(Ordering::SeqCst), 4);
    assert_eq!(store.gets.load(Ordering::SeqCst), 4);
    assert!(
        started.elapsed() >= Duration::from_millis(3),
        "{:?}",
        started.elapsed()
    );
}

/// A concurrent writer's change is never overwritten: the CAS re-reads and applies on top.
#[tokio::test(start_paused = true)]
async fn a_concurrent_write_between_read_and_write_is_not_lost() {
    let store = MemStore::with(data("alice", 1));
    let mut other = data("alice", 1);
    other.resolution = Resolution::Approved;
    *store.interloper.lock().unwrap() =
        apply_update(None, &other.encode(), &RawData::new()).unwrap();
    let out = Cas::new(&store).update(ID, bump).await.unwrap();
    assert_eq!(out.data().resolution, Resolution::Approved);
    assert_eq!(store.current().reviews_count, 2);
    assert_eq!(store.current().resolution, Resolution::Approved);
}

/// TestWrongData: undecodable data comes back as a decode error.
#[tokio::test(start_paused = true)]
async fn wrong_data_gives_a_decode_error() {
    let store = MemStore::default();
    *store.data.lock().unwrap() = Some(RawData::from([("reviews_count".into(), "many".into())]));
    let err = Cas::new(&store).update(ID, bump).await.unwrap_err();
    assert!(
        matches!(&err, CasError::Decode { error, .. } if error.key == "reviews_count"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn keep_stops_without_writing_and_missing_data_is_not_found() {
    let store = MemStore::with(data("alice", 1));
    let out = Cas::new(&store)
        .update(ID, |_| Ok::<_, String>(Step::Keep))
        .await
        .unwrap();
    assert_eq!(out, Updated::Unchanged(data("alice", 1)));
    assert_eq!(store.updates.load(Ordering::SeqCst), 0);

    let empty = MemStore::default();
    let err = Cas::new(&empty).update(ID, bump).await.unwrap_err();
    assert!(matches!(err, CasError::NotFound { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn endless_conflicts_end_at_the_attempt_cap() {
    let store = MemStore::with(data("alice", 1));
    store.conflicts.store(usize::MAX, Ordering::SeqCst);
    let opts = CasOptions {
        max_attempts: 5,
        ..Default::default()
    };
    let err = Cas::with_options(&store, opts)
        .update(ID, bump)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CasError::Contention { attempts: 5, .. }),
        "{err:?}"
    );
    assert_eq!(store.updates.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn endless_conflicts_end_at_the_deadline() {
    let store = MemStore::with(data("alice", 1));
    store.conflicts.store(usize::MAX, Ordering::SeqCst);
    let opts = CasOptions {
        max_attempts: u32::MAX,
        deadline: Duration::from_secs(3),
        ..Default::default()
    };
    let started = tokio::time::Instant::now();
    let err = Cas::with_options(&store, opts)
        .update(ID, bump)
        .await
        .unwrap_err();
    assert!(matches!(err, CasError::Contention { .. }), "{err:?}");
    assert!(started.elapsed() <= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn create_writes_once_then_reports_already_exists_with_the_data() {
    let store = MemStore::default();
    let cas = Cas::new(&store);
    assert_eq!(
        cas.create(ID, &data("alice", 0)).await.unwrap(),
        data("alice", 0)
    );
    let err = cas.create(ID, &data("bob", 0)).await.unwrap_err();
    match err {
        CasError::AlreadyExists { current, .. } => assert_eq!(current.unwrap().user, "alice"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.current().user, "alice");
}

#[tokio::test(start_paused = true)]
async fn a_create_that_loses_the_race_reports_already_exists() {
    let store = MemStore::default();
    *store.interloper.lock().unwrap() = Some(RawData::from([("user".into(), "winner".into())]));
    let err = Cas::new(&store)
        .create(ID, &data("loser", 0))
        .await
        .unwrap_err();
    match err {
        CasError::AlreadyExists { current, .. } => assert_eq!(current.unwrap().user, "winner"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn teleport_update_rule_compares_expect_key_by_key_and_deletes_empty_values() {
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
    assert_eq!(
        expectation_failed_message("b"),
        "expectations not met for field \"b\""
    );
}

#[test]
fn jitter_stays_between_base_and_cap_and_grows() {
    let mut j = Jitter::new(Duration::from_millis(1), Duration::from_secs(1));
    let mut max = Duration::ZERO;
    for _ in 0..200 {
        let d = j.next_delay();
        assert!(
            d >= Duration::from_millis(1) && d <= Duration::from_secs(1),
            "{d:?}"
        );
        max = max.max(d);
    }
    assert!(max > Duration::from_millis(10), "{max:?}");
}

#[test]
fn legacy_keys_are_deleted_and_expected_as_read() {
    let raw = RawData::from([
        ("channel_id".into(), "C0".into()),
        ("timestamp".into(), "P0".into()),
        ("user".into(), "u".into()),
    ]);
    let new = PluginData::decode(&raw).unwrap();
    let (set, expect) = swap_maps(&raw, &new);
    assert_eq!(set["channel_id"], "");
    assert_eq!(set["messages"], "C0/P0");
    assert_eq!(expect["channel_id"], "C0");
    assert_eq!(expect["messages"], "");
    assert_eq!(expect["user"], "u");
}
