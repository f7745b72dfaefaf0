//! One timer for every open request: an ordered set of (due time, request id), woken by a
//! single `sleep_until` on the earliest entry. No task and no poll per request, so thousands
//! of scheduled requests cost their entries' memory and nothing while idle.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::sync;

/// Ids handed out per wake at most, so a burst never holds the lock long.
const BATCH: usize = 256;

#[derive(Default)]
struct Entries {
    queue: BTreeSet<(Instant, Arc<str>)>,
    at: HashMap<Arc<str>, Instant>,
}

#[derive(Default)]
pub struct Timer {
    entries: Mutex<Entries>,
    /// Woken when the earliest entry may have changed.
    changed: Notify,
}

impl Timer {
    /// Sets (or with `None` removes) the one due time of `id`.
    pub fn set(&self, id: &str, at: Option<Instant>) {
        let mut e = sync::lock(&self.entries);
        let key: Arc<str> = match e.at.remove_entry(id) {
            Some((k, old)) => {
                e.queue.remove(&(old, k.clone()));
                k
            }
            None => Arc::from(id),
        };
        let Some(at) = at else { return };
        let earliest = e.queue.first().is_none_or(|(first, _)| at < *first);
        e.queue.insert((at, key.clone()));
        e.at.insert(key, at);
        drop(e);
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Requests with a due time.
    pub fn len(&self) -> usize {
        sync::lock(&self.entries).at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When `id` is due, if it is scheduled.
    pub fn due_at(&self, id: &str) -> Option<Instant> {
        sync::lock(&self.entries).at.get(id).copied()
    }

    /// Waits until at least one request is due and takes the due ones off the timer (the
    /// caller schedules each again from its fresh state).
    pub async fn due(&self) -> Vec<String> {
        loop {
            let next = {
                let mut e = sync::lock(&self.entries);
                let now = Instant::now();
                let mut out = Vec::new();
                while out.len() < BATCH
                    && let Some((at, _)) = e.queue.first()
                    && *at <= now
                {
                    let (_, id) = e.queue.pop_first().expect("checked above");
                    e.at.remove(&id);
                    out.push(id.to_string());
                }
                if !out.is_empty() {
                    return out;
                }
                e.queue.first().map(|(at, _)| *at)
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn wakes_at_each_due_time_in_order() {
        let t = Timer::default();
        let t0 = Instant::now();
        t.set("b", Some(t0 + S * 3600));
        t.set("a", Some(t0 + S * 1800));
        t.set("c", Some(t0 + S * 7200));
        assert_eq!(t.due().await, ["a"]);
        assert_eq!(Instant::now() - t0, S * 1800);
        assert_eq!(t.due().await, ["b"]);
        assert_eq!(Instant::now() - t0, S * 3600);
        // Rescheduled earlier while waiting: the new time wins.
        t.set("c", Some(t0 + S * 4000));
        assert_eq!(t.due().await, ["c"]);
        assert_eq!(Instant::now() - t0, S * 4000);
        assert!(t.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_entry_set_while_waiting_wakes_the_waiter() {
        let t = Arc::new(Timer::default());
        let t0 = Instant::now();
        t.set("late", Some(t0 + S * 3600));
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { (t.due().await, Instant::now()) }
        });
        tokio::time::sleep(S).await;
        t.set("soon", Some(t0 + S * 10));
        let (ids, woke) = waiter.await.unwrap();
        assert_eq!(ids, ["soon"]);
        assert_eq!(woke - t0, S * 10);
    }

    #[tokio::test(start_paused = true)]
    async fn removed_and_replaced_entries_never_fire() {
        let t = Timer::default();
        let t0 = Instant::now();
        t.set("gone", Some(t0 + S));
        t.set("gone", None);
        t.set("moved", Some(t0 + S));
        t.set("moved", Some(t0 + S * 5));
        t.set("other", Some(t0 + S * 2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.due().await, ["other"]);
        assert_eq!(t.due().await, ["moved"]);
        assert_eq!(Instant::now() - t0, S * 5);
    }

    #[tokio::test(start_paused = true)]
    async fn due_entries_come_together() {
        let t = Timer::default();
        let t0 = Instant::now();
        for i in 0..10 {
            t.set(&format!("r{i}"), Some(t0 + S));
        }
        let mut got = t.due().await;
        got.sort();
        assert_eq!(got.len(), 10);
        assert!(t.is_empty());
    }
}
