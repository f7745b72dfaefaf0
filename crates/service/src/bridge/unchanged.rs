//! What the last catch-up found settled, remembered by a digest of what its decision read, so
//! a periodic resync decodes and checks only the requests whose listing or plugin data changed.
//!
//! The catch-up's decision for a request (`processor::settled`, and whether a reminder is
//! due) reads a few fields of the request and this plugin's key/value pairs; the digest
//! covers exactly those (`Encoded::request_digest`, `Encoded::plugin_digest`). Time enters
//! through reminders only: an equal digest gives an equal decision until the request's next
//! reminder point. A request whose digest changed, whose recheck time passed, or that was not
//! settled last time is decoded and judged again. Memory: about 40 bytes per open request.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use crate::sync::lock;

/// Digests of requests found settled by the last complete catch-up.
#[derive(Default)]
pub struct Unchanged {
    last: Mutex<HashMap<u64, Seen>>,
}

/// One settled request: its digest, and until when that decision holds (unix
/// seconds; `None`: until the digest changes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Seen {
    digest: u64,
    recheck_at: Option<i64>,
}

/// One catch-up's use of the memory: what the previous one left, and what this one finds.
pub struct Pass {
    previous: HashMap<u64, Seen>,
    next: HashMap<u64, Seen>,
    /// Whether `previous` may be trusted for this catch-up (see [`Unchanged::begin`]).
    usable: bool,
    /// Requests skipped as unchanged.
    pub skipped: usize,
}

/// One digest of a request's two digests (`data`: `None` when it has no plugin data).
pub fn digest(request: u64, data: Option<u64>) -> u64 {
    let mixed = data.map_or(0, |d| d.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15);
    request.wrapping_mul(0x0100_0000_01b3) ^ mixed
}

fn key(id: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6964).hash_one(id)
}

impl Unchanged {
    /// Starts a catch-up. `usable` is false when its decisions depend on more than the digest
    /// (a catch-up after time without a watch treats a resolved request it never saw as new);
    /// it still records what it finds for the next one.
    pub fn begin(&self, usable: bool) -> Pass {
        let previous = std::mem::take(&mut *lock(&self.last));
        Pass {
            next: HashMap::with_capacity(previous.len()),
            previous,
            usable,
            skipped: 0,
        }
    }

    /// Keeps what a complete catch-up found. A catch-up that did not finish is dropped, and
    /// the next one decodes everything.
    pub fn end(&self, pass: Pass) {
        *lock(&self.last) = pass.next;
    }
}

impl Pass {
    /// Whether request `id`, listed with `digest`, was settled with the same digest last time
    /// and its recheck time (compared with `now`, unix seconds) has not come. It is then
    /// remembered for the next catch-up as well.
    pub fn skip(&mut self, id: &str, digest: u64, now: i64) -> bool {
        if !self.usable {
            return false;
        }
        let k = key(id);
        match self.previous.get(&k) {
            Some(seen) if seen.digest == digest && seen.recheck_at.is_none_or(|t| now < t) => {
                self.next.insert(k, *seen);
                self.skipped += 1;
                true
            }
            _ => false,
        }
    }

    /// Records that request `id`, listed with `digest`, needs nothing until its digest changes
    /// or `recheck_at` (unix seconds) comes.
    pub fn settled(&mut self, id: &str, digest: u64, recheck_at: Option<i64>) {
        self.next.insert(key(id), Seen { digest, recheck_at });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass_after(u: &Unchanged, f: impl FnOnce(&mut Pass)) {
        let mut p = u.begin(true);
        f(&mut p);
        u.end(p);
    }

    #[test]
    fn a_settled_request_is_skipped_while_its_digest_and_time_hold() {
        let u = Unchanged::default();
        pass_after(&u, |p| {
            assert!(!p.skip("a", 1, 100), "nothing is known yet");
            p.settled("a", 1, None);
            p.settled("b", 2, Some(150));
        });
        pass_after(&u, |p| {
            assert!(p.skip("a", 1, 200));
            assert!(!p.skip("a", 9, 200), "another digest");
            assert!(p.skip("b", 2, 149));
            assert_eq!(p.skipped, 2);
        });
        // Skipped requests are remembered again; an unlisted one is forgotten.
        pass_after(&u, |p| {
            assert!(p.skip("a", 1, 300));
            assert!(!p.skip("b", 2, 150), "its recheck time came");
        });
        pass_after(&u, |p| assert!(!p.skip("b", 2, 0), "not listed last time"));
    }

    #[test]
    fn an_unfinished_or_unusable_catch_up_skips_nothing() {
        let u = Unchanged::default();
        pass_after(&u, |p| p.settled("a", 1, None));
        let mut p = u.begin(false);
        assert!(!p.skip("a", 1, 0), "not usable");
        p.settled("a", 1, None);
        u.end(p);
        // Begun and dropped: the next catch-up starts from nothing.
        drop(u.begin(true));
        assert!(!u.begin(true).skip("a", 1, 0));
    }

    #[test]
    fn the_digest_tells_a_missing_plugin_data_from_any_other() {
        assert_ne!(digest(5, None), digest(5, Some(0)));
        assert_ne!(digest(5, Some(1)), digest(5, Some(2)));
        assert_ne!(digest(5, Some(7)), digest(6, Some(7)));
    }
}
