use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use super::*;

#[derive(Clone, Debug)]
struct Item(u32);
impl Supersede for Item {}

fn fast_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        waits: 50,
    }
}

/// A handler that sleeps one second per item and records (key, item, start time).
fn sleeper(
    log: Arc<Mutex<Vec<(String, u32, Duration)>>>,
    t0: Instant,
) -> impl Fn(String, Item) -> HandlerFuture + Send + Sync {
    move |k, v| {
        let log = log.clone();
        Box::pin(async move {
            log.lock().unwrap().push((k, v.0, t0.elapsed()));
            tokio::time::sleep(Duration::from_secs(1)).await;
            Outcome::Done
        })
    }
}

#[tokio::test(start_paused = true)]
async fn different_requests_run_in_parallel() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let q = KeyedQueue::new(128, fast_policy(3), sleeper(log.clone(), t0));
    for k in ["a", "b", "c", "d"] {
        q.submit(k.to_string(), Item(1));
    }
    q.idle().await;
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_millis(1100),
        "4 x 1 s took {elapsed:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn one_request_runs_in_order_and_the_latest_state_wins() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let q = KeyedQueue::new(128, fast_policy(3), sleeper(log.clone(), t0));
    q.submit("a".to_string(), Item(1));
    tokio::task::yield_now().await;
    // While item 1 runs, 2, 3 and 4 arrive: only the newest is processed next.
    for i in 2..=4 {
        q.submit("a".to_string(), Item(i));
    }
    q.idle().await;
    let log = log.lock().unwrap();
    let items: Vec<u32> = log.iter().map(|(_, i, _)| *i).collect();
    assert_eq!(items, vec![1, 4]);
    assert!(
        log[1].2 >= Duration::from_secs(1),
        "second run started before the first ended"
    );
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_holds() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let q = KeyedQueue::new(3, fast_policy(3), move |_k: String, _v: Item| {
        let (r, p) = (r.clone(), p.clone());
        Box::pin(async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Outcome::Done
        }) as HandlerFuture
    });
    for k in 0..20 {
        q.submit(k.to_string(), Item(0));
    }
    q.idle().await;
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn failed_items_are_retried_then_given_up_after_the_bound() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, _v: Item| {
        let c = c.clone();
        Box::pin(async move {
            // Fails twice, then succeeds.
            if c.fetch_add(1, Ordering::SeqCst) < 2 {
                Outcome::Retry {
                    reason: "unavailable".into(),
                    after: None,
                }
            } else {
                Outcome::Done
            }
        }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(0));
    q.idle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, _v: Item| {
        c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            Outcome::Retry {
                reason: "down".into(),
                after: None,
            }
        }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(0));
    q.idle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 5, "bounded at 5 attempts");
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_as_told_unless_something_newer_arrives() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let t0 = Instant::now();
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, v: Item| {
        s.lock().unwrap().push((v.0, t0.elapsed()));
        Box::pin(async move {
            if v.0 == 1 {
                Outcome::Retry {
                    reason: "429".into(),
                    after: Some(Duration::from_secs(30)),
                }
            } else {
                Outcome::Done
            }
        }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    q.submit("a".to_string(), Item(2));
    q.idle().await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].0, 2);
    assert!(
        seen[1].1 < Duration::from_secs(3),
        "the newer item waited for the old retry: {:?}",
        seen[1].1
    );
}

#[tokio::test(start_paused = true)]
async fn fail_drops_the_item_without_retrying() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, _v: Item| {
        c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Outcome::Fail("bad data".into()) }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(0));
    q.idle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(q.active(), 0);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_another_replica_does_not_use_up_the_retry_budget() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    // Busy 20 times (more than the 5 attempts), then done.
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, _v: Item| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < 20 {
                Outcome::Wait {
                    reason: "claimed".into(),
                    after: Duration::from_secs(1),
                }
            } else {
                Outcome::Done
            }
        }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(0));
    q.idle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 21);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_turn_under_the_rate_limit_never_gives_up() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    // Throttled more often than both the attempts (5) and the waits (50) allow, then done.
    let q = KeyedQueue::new(4, fast_policy(5), move |_k: String, _v: Item| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n < 100 {
                Outcome::Throttled {
                    after: Duration::from_millis(500),
                }
            } else {
                Outcome::Done
            }
        }) as HandlerFuture
    });
    q.submit("a".to_string(), Item(0));
    q.idle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 101);
}

#[tokio::test(start_paused = true)]
async fn a_burst_costs_a_task_per_running_request_not_per_queued_one() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    let q = KeyedQueue::new(3, fast_policy(3), move |_k: String, _v: Item| {
        let g = g.clone();
        Box::pin(async move {
            let _ = g.acquire().await;
            Outcome::Done
        }) as HandlerFuture
    });
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for k in 0..1000 {
        q.submit(k.to_string(), Item(0));
    }
    tokio::task::yield_now().await;
    assert_eq!(q.active(), 1000);
    assert!(
        metrics.num_alive_tasks() - before <= 3,
        "{} tasks for 1000 queued requests",
        metrics.num_alive_tasks() - before
    );
    gate.add_permits(1000);
    q.idle().await;
}
