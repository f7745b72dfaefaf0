//! Per-key work queue: work for one access request runs in order (one at a time), different
//! requests run in parallel up to a limit. Processing reconciles to the request's latest
//! state, so a newer item for a key replaces one not yet started ("latest wins"), and a
//! failed item is retried with bounded, jittered backoff unless something newer arrives.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use crate::retry::Backoff;
use crate::sync;

/// What a handler says about an item it could not finish.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Worth trying again (Teleport or Mattermost unavailable, someone else's fresh claim).
    /// `after` overrides the backoff, e.g. a Mattermost `Retry-After`.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help (bad data); logged and dropped.
    Fail(String),
    /// Another replica holds the request's claim: come back after `after`. Not a failure of
    /// ours, so it does not use up the retry budget (claims expire, so this ends).
    Wait {
        reason: String,
        after: Duration,
    },
    /// Mattermost's rate limit has the next call wait its turn: come back after `after`.
    /// Neither a failure nor a wait for someone who may be gone, so it counts against no
    /// budget and never makes the event give up: the turn comes.
    Throttled {
        after: Duration,
    },
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// How items of one key combine while waiting: the default keeps the newest.
pub trait Supersede: Sized {
    fn supersede(self, newer: Self) -> Self {
        newer
    }
}

pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Backoff,
    /// Bound on waits for other replicas' claims (a safety net; claims expire by themselves).
    pub waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 12,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(10)),
            waits: 300,
        }
    }
}

struct Slot<V> {
    pending: Option<V>,
    /// Woken when `pending` is replaced, to cut a retry wait short.
    newer: Arc<Notify>,
}

struct State<K, V> {
    slots: HashMap<K, Slot<V>>,
    /// Keys with work and no worker yet, oldest first. A burst of events costs one slot per
    /// request here, not one task each: workers exist only up to the concurrency limit (plus
    /// those waiting to retry), and a worker done with its key takes the next one.
    ready: VecDeque<K>,
}

struct Inner<K, V> {
    state: Mutex<State<K, V>>,
    /// One permit per handler allowed to run. A permit is only ever released under the
    /// `state` lock, after looking at `ready` (see [`release`]), so a key queued there is
    /// never left without a worker while a permit sits unused.
    permits: Arc<Semaphore>,
    active: watch::Sender<usize>,
    handler: Box<dyn Fn(K, V) -> HandlerFuture + Send + Sync>,
    policy: RetryPolicy,
}

/// Cheap to clone; all clones share the queue.
pub struct KeyedQueue<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for KeyedQueue<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> KeyedQueue<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + std::fmt::Display + 'static,
    V: Supersede + Clone + Send + 'static,
{
    pub fn new(
        concurrency: usize,
        policy: RetryPolicy,
        handler: impl Fn(K, V) -> HandlerFuture + Send + Sync + 'static,
    ) -> Self {
        let (active, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    slots: HashMap::new(),
                    ready: VecDeque::new(),
                }),
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                active,
                handler: Box::new(handler),
                policy,
            }),
        }
    }

    /// Queues `value` for `key`; starts a worker for the key unless one is running or the
    /// concurrency limit is reached (the key then waits its turn in `ready`).
    pub fn submit(&self, key: K, value: V) {
        let mut st = sync::lock(&self.inner.state);
        if let Some(slot) = st.slots.get_mut(&key) {
            slot.pending = Some(match slot.pending.take() {
                Some(old) => old.supersede(value),
                None => value,
            });
            slot.newer.notify_one();
            return;
        }
        st.slots.insert(
            key.clone(),
            Slot {
                pending: Some(value),
                newer: Arc::new(Notify::new()),
            },
        );
        self.inner.active.send_modify(|n| *n += 1);
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                drop(st);
                tokio::spawn(worker(self.inner.clone(), key, permit));
            }
            Err(_) => st.ready.push_back(key),
        }
    }

    /// Keys with work queued or running.
    pub fn active(&self) -> usize {
        *self.inner.active.borrow()
    }

    /// Resolves when no key has work (tests, benchmark, shutdown drain).
    pub async fn idle(&self) {
        let mut rx = self.inner.active.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Gives up a worker's permit: to the oldest key waiting in `ready` (in a new worker), or
/// back to the semaphore. Under the state lock, so `submit` never queues a key in `ready`
/// while a permit is on its way back.
fn release<K, V>(inner: &Arc<Inner<K, V>>, permit: &mut Option<OwnedSemaphorePermit>)
where
    K: Eq + Hash + Clone + Send + Sync + std::fmt::Display + 'static,
    V: Supersede + Clone + Send + 'static,
{
    let Some(p) = permit.take() else { return };
    let mut st = sync::lock(&inner.state);
    match st.ready.pop_front() {
        Some(next) => {
            drop(st);
            tokio::spawn(worker(inner.clone(), next, p));
        }
        None => {
            drop(p);
            drop(st);
        }
    }
}

/// Runs `key`'s work, then the next waiting key's with the same permit, until none waits.
async fn worker<K, V>(inner: Arc<Inner<K, V>>, mut key: K, permit: OwnedSemaphorePermit)
where
    K: Eq + Hash + Clone + Send + Sync + std::fmt::Display + 'static,
    V: Supersede + Clone + Send + 'static,
{
    let mut permit = Some(permit);
    loop {
        run_key(&inner, &key, &mut permit).await;
        let mut st = sync::lock(&inner.state);
        match st.ready.pop_front() {
            Some(next) if permit.is_some() => key = next,
            next => {
                // Without a permit (never expected: a key ends right after its handler ran)
                // the waiting key stays first in line for the next permit released.
                if let Some(next) = next {
                    st.ready.push_front(next);
                }
                drop(permit.take());
                return;
            }
        }
    }
}

/// Processes `key` until it has no work left, then removes its slot. Holds `permit` while
/// the handler runs and gives it up while waiting to retry.
async fn run_key<K, V>(inner: &Arc<Inner<K, V>>, key: &K, permit: &mut Option<OwnedSemaphorePermit>)
where
    K: Eq + Hash + Clone + Send + Sync + std::fmt::Display + 'static,
    V: Supersede + Clone + Send + 'static,
{
    let mut attempt = 0u32;
    let mut waits = 0u32;
    let mut current: Option<V> = None;
    loop {
        let newer = {
            let mut st = sync::lock(&inner.state);
            let Some(slot) = st.slots.get_mut(key) else {
                return;
            };
            if let Some(v) = slot.pending.take() {
                current = Some(v);
                attempt = 0;
                waits = 0;
            }
            match &current {
                Some(_) => slot.newer.clone(),
                None => {
                    st.slots.remove(key);
                    drop(st);
                    inner.active.send_modify(|n| *n -= 1);
                    return;
                }
            }
        };
        let value = current.clone().expect("checked above");
        if permit.is_none() {
            *permit = Some(
                inner
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed"),
            );
        }
        let outcome = (inner.handler)(key.clone(), value).await;
        match outcome {
            Outcome::Done => current = None,
            Outcome::Fail(why) => {
                tracing::error!(request_id = %key, error = %why, "Failed to process request; dropping this event");
                current = None;
            }
            Outcome::Wait { reason, after } => {
                waits += 1;
                if waits >= inner.policy.waits {
                    tracing::error!(request_id = %key, error = %reason, "gave up waiting for another replica; the next event or resync picks it up");
                    current = None;
                    continue;
                }
                tracing::debug!(request_id = %key, reason = %reason, retry_in_ms = after.as_millis() as u64, "waiting for another replica");
                release(inner, permit);
                tokio::select! {
                    _ = tokio::time::sleep(after) => {}
                    _ = newer.notified() => {}
                }
            }
            Outcome::Throttled { after } => {
                tracing::debug!(request_id = %key, retry_in_ms = after.as_millis() as u64, "waiting for a turn under Mattermost's rate limit");
                tokio::select! {
                    _ = tokio::time::sleep(after) => {}
                    _ = newer.notified() => {}
                }
            }
            Outcome::Retry { reason, after } => {
                attempt += 1;
                if attempt >= inner.policy.attempts {
                    tracing::error!(request_id = %key, error = %reason, attempts = attempt, "giving up on this event after retries; the next event or reconcile will pick it up");
                    current = None;
                    continue;
                }
                let wait = after.unwrap_or_else(|| inner.policy.backoff.delay(attempt));
                tracing::warn!(request_id = %key, error = %reason, retry_in_ms = wait.as_millis() as u64, "event failed; retrying");
                release(inner, permit);
                // A newer event for this request replaces the failed one at once.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = newer.notified() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
