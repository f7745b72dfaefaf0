//! How the client retries: bounded attempts, exponential backoff with jitter for 5xx and
//! transport errors, and the server's own wait (`Retry-After`, `X-RateLimit-Reset`) for 429;
//! and the client-wide [`Pacer`] that keeps calls under Mattermost's rate limit instead of
//! sending them to be refused (the limiter it mirrors is described in
//! `docs/mattermost-api.md`, "Rate limiting").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use crate::logging::{Throttle, Verdict};

/// Retry bounds of every Mattermost call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles with each further retry.
    pub base_delay: Duration,
    /// Backoff ceiling.
    pub max_delay: Duration,
    /// The longest 429 wait honoured; a server asking for more fails the call at once with
    /// `RateLimited`, so a caller is never parked for minutes.
    pub max_rate_limit_wait: Duration,
    /// The longest a call waits in the pacer's queue for its turn under the rate limit. A call
    /// whose turn is further away is handed back at once as `RateLimited` with the wait, its
    /// turn kept for it: the bridge bounds each call by half a claim lease, and an event that
    /// steps aside while it waits neither holds a worker nor spends its retry budget.
    pub max_queue_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_secs(30),
            max_queue_wait: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all (tests of single-attempt behaviour, `check`).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 = first retry): the service's shared
    /// exponential backoff with equal jitter, between `base_delay` and `max_delay`.
    pub fn backoff(&self, retry: u32) -> Duration {
        crate::retry::Backoff::new(self.base_delay, self.max_delay).delay(retry)
    }
}

/// Kept from the end of a caller's deadline for the request itself: waits (a turn, a 429, a
/// backoff) end this long before it, so a caller that cancels the call at its deadline never
/// cuts off a request in flight (a post made whose id never arrives).
pub(crate) const SEND_ALLOWANCE: Duration = Duration::from_secs(1);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `calls` with a deadline every Mattermost call made inside them honours: a call that
/// cannot get its turn (or wait out a 429) in time is handed back as `RateLimited` instead of
/// waiting on, and nothing is sent later than [`SEND_ALLOWANCE`] before it. The bridge bounds
/// each call by half a claim lease this way.
pub async fn within<F: std::future::Future>(budget: Duration, calls: F) -> F::Output {
    DEADLINE.scope(Instant::now() + budget, calls).await
}

/// The deadline of a call started at `started`: its own `give_up_after` or the caller's
/// [`within`], whichever comes first.
pub(crate) fn deadline(started: Instant, give_up_after: Option<Duration>) -> Option<Instant> {
    let own = give_up_after.map(|d| started + d);
    let caller = DEADLINE.try_with(|d| *d).ok();
    match (own, caller) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The rate-limit headers of one answer (Mattermost sends them on every answer while its
/// limiter is on, 429 or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    /// `X-RateLimit-Limit`: requests a client may send at once (the burst plus one).
    pub limit: u32,
    /// `X-RateLimit-Remaining`: requests it may still send at once.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: whole seconds (rounded up) until the allowance is full again.
    pub reset_secs: u32,
}

impl RateHeaders {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let int = |name: &str| header_int::<u32>(headers, name);
        Some(Self {
            limit: int("x-ratelimit-limit").filter(|l| *l > 0)?,
            remaining: int("x-ratelimit-remaining")?,
            reset_secs: int("x-ratelimit-reset")?,
        })
    }
}

/// What the pacer tells a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Send after this wait (zero: at once).
    Go(Duration),
    /// The turn is this far at least (and within the call's wait): sleep, then ask again
    /// (the turn is kept, and moves if the pace is learned better meanwhile).
    Step(Duration),
    /// The turn is further away than the call may wait: come back after this long (the turn
    /// is kept for a call with the same fingerprint).
    Defer(Duration),
    /// Nothing is known about the limit yet and the first call is on its way: ask again once
    /// the probe generation differs from this one (its answer tells whether there is a limit).
    AwaitProbe(u64),
}

/// How long calls wait for the first call's answer before sending one themselves.
const PROBE_PATIENCE: Duration = Duration::from_secs(2);
/// A longer wait for a turn is taken in steps of this (see [`Pacer::admit`]).
const QUANTUM: Duration = Duration::from_millis(200);
/// How soon a call handed back comes again while the pace is not settled.
const UNSURE_BACK: Duration = Duration::from_secs(1);
/// Reserved turns are dropped this long after they passed unclaimed.
const RESERVATION_GRACE: Duration = Duration::from_secs(30);
/// The throttling summary is logged at warn at most this often.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// One pacer per client: a copy of the server's GCRA limiter (a theoretical arrival time
/// advanced by one emission interval per request, with a tolerance of `limit` intervals)
/// that hands out send times instead of refusals. It knows nothing until an answer carries
/// `X-RateLimit-*` headers, and forgets everything when answers stop carrying them (the
/// limiter was turned off), so a server without a limit costs one lock per call.
pub(crate) struct Pacer {
    state: Mutex<PaceState>,
    /// Bumped whenever a probe ends (answered or not), waking the calls queued behind it.
    probes: tokio::sync::watch::Sender<u64>,
    /// When the throttling summary is due at warn.
    summary_log: Throttle,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            probes: tokio::sync::watch::channel(0).0,
            summary_log: Throttle::new(SUMMARY_EVERY),
        }
    }
}

impl PaceState {
    /// The interval estimate changed by `ratio`: the queue's turns (given at the old pace)
    /// move to where the new pace puts them, in the same order.
    fn rescale(&mut self, ratio: f64, now: Instant) {
        let scale = |t: &mut Instant| {
            if *t > now {
                *t = now + (*t - now).mul_f64(ratio);
            }
        };
        if let Some(m) = self.model.as_mut() {
            scale(&mut m.tat);
        }
        self.reserved.values_mut().for_each(scale);
    }
}

#[derive(Default)]
struct PaceState {
    /// Whether any answer came back yet. Until one does, a single call is sent (the probe) and
    /// the others wait for it, so a cold start does not send a burst past the limit.
    answered: bool,
    /// When the call out finding that out was sent.
    probing: Option<Instant>,
    model: Option<Model>,
    /// A `Retry-After` from a server (or proxy) that sends no rate-limit headers: nobody
    /// sends before then.
    blocked_until: Option<Instant>,
    /// Turns kept for calls that were told to come back, by call fingerprint.
    reserved: HashMap<u64, Instant>,
    summary: Summary,
}

/// The refill of the allowance is measured over at least this long.
const MEASURE_OVER: Duration = Duration::from_secs(1);
/// Calls are paced this much slower than the measured rate, against its rounding.
const MARGIN: f64 = 1.01;
/// The smallest share of the allowance a client keeps for itself (see [`Model::share`]).
const MIN_SHARE: f64 = 1.0 / 16.0;

/// The server's limiter as learned from its headers.
#[derive(Debug, Clone, Copy)]
struct Model {
    limit: u32,
    /// Hard bounds on the server's emission interval in seconds, from the headers alone:
    /// tight when the allowance takes several seconds to refill (the default: 10.1 s).
    interval_lo: f64,
    interval_hi: f64,
    /// The interval measured from how fast the allowance refills (seconds): what tells a
    /// fast limit apart when the whole-second `Reset` cannot.
    measured: Option<f64>,
    /// Where the refill measurement started: when, the remaining allowance then, and how
    /// many answers had been let through by then.
    mark: Option<(Instant, u32, u64)>,
    /// Answers let through (not 429) since the model was made.
    allowed: u64,
    /// The theoretical arrival time after every call sent or given a turn.
    tat: Instant,
    /// The part of the server's rate this client paces itself at. The allowance is per client
    /// address, so replicas behind one address (or a NAT) share it, and each answer's headers
    /// show the allowance, not who used it: a 429 for a call the model let go means others
    /// use it too, and the share halves (at most once a second); every answer let through
    /// gives a little back, and a full allowance while calls wait gives it all back.
    share: f64,
    /// When the share was last halved.
    cut: Option<Instant>,
}

impl Model {
    fn new(limit: u32, now: Instant) -> Self {
        Self {
            limit,
            interval_lo: 0.0,
            interval_hi: f64::INFINITY,
            measured: None,
            mark: None,
            allowed: 0,
            tat: now,
            share: 1.0,
            cut: None,
        }
    }

    /// The interval this client paces its own calls at: the server's, divided by its share.
    fn pace(&self) -> f64 {
        self.interval() / self.share
    }

    /// The interval paced at: the measured one (a little slower) within the hard bounds;
    /// before any measurement the upper bound; with no upper bound yet (only the first answer
    /// seen, the allowance nearly full), as if the allowance refilled in a second: the answers
    /// to the calls it lets through narrow the bounds long before it is used up, and queued
    /// turns are rescaled when they do.
    fn interval(&self) -> f64 {
        let within = |i: f64| {
            let i = i.max(self.interval_lo);
            if self.interval_hi.is_finite() {
                i.min(self.interval_hi)
            } else {
                i
            }
        };
        match self.measured {
            Some(m) => within(m * MARGIN),
            None if self.interval_hi.is_finite() => self.interval_hi,
            None => within(1.0 / f64::from(self.limit.max(1))),
        }
    }

    /// Whether the pace is known well enough to hand out turns far ahead: measured, or the
    /// headers' bounds within a tenth of each other.
    fn settled(&self) -> bool {
        self.measured.is_some() || self.interval_hi <= self.interval_lo * 1.1
    }

    /// Narrows the interval bounds with one answer. With `L` the limit, `R` remaining and the
    /// time to full `t` (seconds, `Reset` = ⌈t⌉): `R = ⌊L − t/i⌋`, so `(L−R−1)·i < t ≤ (L−R)·i`
    /// and `Reset−1 < t ≤ Reset`. A 429 fits the same with `R = 0`.
    fn narrow(&mut self, h: RateHeaders) {
        let (l, r, reset) = (
            f64::from(h.limit),
            f64::from(h.remaining.min(h.limit)),
            f64::from(h.reset_secs),
        );
        let lo = (reset - 1.0).max(0.0) / (l - r).max(1.0);
        let hi = if l - r - 1.0 >= 1.0 {
            reset / (l - r - 1.0)
        } else {
            f64::INFINITY
        };
        let (new_lo, new_hi) = (self.interval_lo.max(lo), self.interval_hi.min(hi));
        if new_lo <= new_hi && h.limit == self.limit {
            self.interval_lo = new_lo;
            self.interval_hi = new_hi;
        } else {
            // The limit was reconfigured (or the answers do not fit a GCRA): start over.
            *self = Self::new(h.limit, self.tat);
            self.interval_lo = lo;
            self.interval_hi = hi;
        }
    }

    /// Measures the refill: between two answers at least [`MEASURE_OVER`] apart, the
    /// allowance regained what the answers let through in between plus the change in
    /// `Remaining`. Not while the allowance is full (the refill stops there).
    fn measure(&mut self, h: RateHeaders, now: Instant) {
        let r = h.remaining.min(h.limit);
        if r + 1 >= h.limit {
            self.mark = None;
            return;
        }
        match self.mark {
            None => self.mark = Some((now, r, self.allowed)),
            Some((at, r0, allowed0)) if now - at >= MEASURE_OVER => {
                let regained = f64::from(r) - f64::from(r0) + (self.allowed - allowed0) as f64;
                if regained >= 1.0 {
                    let m = (now - at).as_secs_f64() / regained;
                    self.measured = Some(self.measured.map_or(m, |old| (old + m) / 2.0));
                }
                self.mark = Some((now, r, self.allowed));
            }
            Some(_) => {}
        }
    }

    /// Learns from one answer; `let_through` is false for a 429. Keeps the arrival time no
    /// earlier than the headers prove the server's to be (`t > Reset − 1` and
    /// `t > (L−R−1)·lo`), never later: a too-early one costs a 429, a too-late one idles.
    fn learn(&mut self, h: RateHeaders, now: Instant, let_through: bool) {
        self.narrow(h);
        if let_through {
            self.allowed += 1;
        }
        self.measure(h, now);
        if let_through {
            self.share = (self.share + 1.0 / f64::from(h.limit.max(1))).min(1.0);
        } else if self.settled() && self.cut.is_none_or(|t| now - t >= MEASURE_OVER) {
            // (While the pace is still being learned, a 429 says more about the guess.)
            self.share = (self.share / 2.0).max(MIN_SHARE);
            self.cut = Some(now);
        }
        let i = Duration::from_secs_f64(self.pace());
        if h.remaining.saturating_add(1) >= h.limit && self.tat > now + i * 2 && self.share < 1.0 {
            // Nobody else is using the allowance after all.
            self.share = 1.0;
        } else if h.remaining.saturating_add(1) >= h.limit && self.tat > now + i * 2 {
            // The allowance is full while calls wait their turn: the pace is too slow (the
            // headers alone cannot tell a fast limit with a small burst). Go twice as fast
            // from here (the queued turns move up with the pace); the hard bounds and the next
            // refill measurement catch an overshoot.
            self.measured = Some(self.interval() / 2.0);
        }
        let used = f64::from(h.limit.saturating_sub(h.remaining.min(h.limit)));
        let at_least = (f64::from(h.reset_secs) - 1.0).max((used - 1.0) * self.interval_lo);
        self.tat = self
            .tat
            .max(now + Duration::from_secs_f64(at_least.max(0.0)));
    }
}

/// Throttling since the last warn line.
#[derive(Default)]
struct Summary {
    queued: u64,
    queued_for: Duration,
    deferred: u64,
    refused: u64,
}

/// What the pacer saw happen to a call, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttled {
    /// Waited its turn in the queue this long.
    Queued(Duration),
    /// Handed back to come again later.
    Deferred,
    /// Refused by the server (429).
    Refused,
}

impl Throttled {
    /// The `outcome` label of `teleport_mattermost_mattermost_throttled_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Throttled::Queued(_) => "queued",
            Throttled::Deferred => "deferred",
            Throttled::Refused => "refused",
        }
    }
}

impl Pacer {
    fn with<T>(&self, f: impl FnOnce(&mut PaceState) -> T) -> T {
        f(&mut crate::sync::lock(&self.state))
    }

    /// A turn for the call with this fingerprint: now, after a wait of at most `max_wait`, or
    /// later (deferred, the turn kept). `max_wait_blocked` bounds a wait the server imposed
    /// with `Retry-After` instead.
    pub(crate) fn admit(
        &self,
        fingerprint: impl FnOnce() -> u64,
        now: Instant,
        max_wait: Duration,
        max_wait_blocked: Duration,
    ) -> Admission {
        self.with(|s| {
            if !s.answered {
                // A probe that has not answered within the patience (cancelled, or slow) is
                // replaced by this call, so no call waits on one forever.
                if s.probing.is_some_and(|at| now < at + PROBE_PATIENCE) {
                    return Admission::AwaitProbe(*self.probes.borrow());
                }
                s.probing = Some(now);
                return Admission::Go(Duration::ZERO);
            }
            let blocked = s.blocked_until.filter(|t| *t > now);
            if s.model.is_none() && blocked.is_none() && s.reserved.is_empty() {
                return Admission::Go(Duration::ZERO);
            }
            s.reserved.retain(|_, at| *at + RESERVATION_GRACE > now);
            let fingerprint = fingerprint();
            let turn = match s.reserved.remove(&fingerprint) {
                Some(turn) => turn,
                None => match s.model.as_mut() {
                    Some(m) => {
                        let i = Duration::from_secs_f64(m.interval());
                        // One interval of the burst is held back against the headers' rounding.
                        let tolerance = i * m.limit.saturating_sub(1);
                        m.tat = m.tat.max(now) + Duration::from_secs_f64(m.pace());
                        m.tat.checked_sub(tolerance).unwrap_or(now).max(now)
                    }
                    None => now,
                },
            };
            let turn = blocked.map_or(turn, |b| turn.max(b));
            let wait = turn - now;
            let limit = if blocked.is_some_and(|b| b >= turn) {
                max_wait_blocked
            } else {
                max_wait
            };
            if wait <= QUANTUM {
                Admission::Go(wait)
            } else if wait <= limit {
                // Waited in short steps with the turn kept, so it moves with the pace when the
                // pace is learned better meanwhile.
                s.reserved.insert(fingerprint, turn);
                Admission::Step(QUANTUM)
            } else {
                s.reserved.insert(fingerprint, turn);
                // Come back a little early; the rest of the wait is taken in the queue. While
                // the pace is still a guess, sooner: the turn may move up a lot meanwhile.
                let back = wait - max_wait / 2;
                let sure = s.model.is_some_and(|m| m.settled());
                Admission::Defer(if sure { back } else { back.min(UNSURE_BACK) })
            }
        })
    }

    /// Waits until the probe generation moves past `seen`; false when `max` passed first.
    pub(crate) async fn await_probe(&self, seen: u64, max: Duration) -> bool {
        let mut rx = self.probes.subscribe();
        tokio::time::timeout(max, rx.wait_for(|g| *g != seen))
            .await
            .is_ok()
    }

    /// A call got no answer (transport error): if it was the probe, another call becomes it.
    pub(crate) fn no_answer(&self) {
        if self.with(|s| s.probing.take().is_some()) {
            self.probes.send_modify(|g| *g += 1);
        }
    }

    /// Learns from an answer's headers (any status but 429). An answer without them means
    /// the limiter is off: the model is dropped.
    pub(crate) fn observe(&self, headers: &HeaderMap, now: Instant) {
        self.learn(RateHeaders::from_headers(headers), now, true);
    }

    /// A 429: learns from it like any answer; without rate-limit headers, every call waits
    /// out the `Retry-After`.
    pub(crate) fn refused(&self, headers: &HeaderMap, wait: Option<Duration>, now: Instant) {
        let rate = RateHeaders::from_headers(headers);
        self.learn(rate, now, false);
        if rate.is_none()
            && let Some(wait) = wait
        {
            self.with(|s| {
                let until = now + wait;
                s.blocked_until = Some(s.blocked_until.map_or(until, |b| b.max(until)));
            });
        }
    }

    fn learn(&self, rate: Option<RateHeaders>, now: Instant, let_through: bool) {
        let first = self.with(|s| {
            s.probing = None;
            let first = !std::mem::replace(&mut s.answered, true);
            match (rate, s.model.as_mut()) {
                (None, _) if let_through => s.model = None,
                (None, _) => {}
                (Some(h), Some(m)) => {
                    let before = m.pace();
                    m.learn(h, now, let_through);
                    let after = m.pace();
                    if (after / before - 1.0).abs() > 0.001 {
                        s.rescale(after / before, now);
                    }
                }
                (Some(h), None) => {
                    let mut m = Model::new(h.limit, now);
                    m.learn(h, now, let_through);
                    s.model = Some(m);
                }
            }
            first
        });
        if first {
            self.probes.send_modify(|g| *g += 1);
        }
    }

    /// Counts a throttled call; returns the summary line's figures when one is due (at the
    /// first throttling and then at most once a minute while it lasts).
    pub(crate) fn note(&self, what: Throttled, now: Instant) -> Option<ThrottleSummary> {
        let due = self
            .summary_log
            .note_at(("mattermost", "rate_limit"), now.into_std())
            != Verdict::Quiet;
        self.with(|s| {
            let sum = &mut s.summary;
            match what {
                Throttled::Queued(d) => {
                    sum.queued += 1;
                    sum.queued_for += d;
                }
                Throttled::Deferred => sum.deferred += 1,
                Throttled::Refused => sum.refused += 1,
            }
            if !due {
                return None;
            }
            let out = ThrottleSummary {
                queued: sum.queued,
                queued_for: sum.queued_for,
                deferred: sum.deferred,
                refused: sum.refused,
                limit: s.model.map(|m| m.limit),
                per_sec: s.model.map(|m| 1.0 / m.pace()),
            };
            *sum = Summary::default();
            Some(out)
        })
    }
}

/// Throttling since the previous summary line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrottleSummary {
    pub queued: u64,
    pub queued_for: Duration,
    pub deferred: u64,
    pub refused: u64,
    pub limit: Option<u32>,
    pub per_sec: Option<f64>,
}

/// The wait a 429 asks for: `Retry-After` (seconds), else `X-RateLimit-Reset` (seconds until
/// the bucket is full again; Mattermost sends relative seconds, not an epoch).
pub(crate) fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| header_int::<u64>(headers, name).map(Duration::from_secs);
    seconds("retry-after").or_else(|| seconds("x-ratelimit-reset"))
}

/// A header holding a whole number (the rate limiter's headers all do).
fn header_int<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let third = p.backoff(3);
            assert!((200..=400).contains(&third.as_millis()), "{third:?}");
            let capped = p.backoff(30);
            assert!((500..=1000).contains(&capped.as_millis()), "{capped:?}");
        }
    }

    fn rate(limit: u32, remaining: u32, reset: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", limit.into());
        h.insert("x-ratelimit-remaining", remaining.into());
        h.insert("x-ratelimit-reset", reset.into());
        h
    }

    const LONG: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn without_rate_limit_headers_calls_go_at_once_after_the_first_answer() {
        let p = Pacer::default();
        let now = Instant::now();
        assert_eq!(
            p.admit(|| 1, now, LONG, LONG),
            Admission::Go(Duration::ZERO)
        );
        // The first call is still out: the next waits for its answer.
        assert_eq!(p.admit(|| 2, now, LONG, LONG), Admission::AwaitProbe(0));
        p.observe(&HeaderMap::new(), now);
        for i in 0..1000 {
            assert_eq!(
                p.admit(|| i, now, LONG, LONG),
                Admission::Go(Duration::ZERO)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_limit_is_learned_from_its_headers_and_turns_come_one_interval_apart() {
        let p = Pacer::default();
        let now = Instant::now();
        p.admit(|| 0, now, LONG, LONG);
        // The answers to 101 calls made at once against 10/s with a burst of 100, as the
        // server words them.
        for k in 1..=101u32 {
            p.observe(&rate(101, 101 - k, k.div_ceil(10)), now);
        }
        // The allowance is used up: each new call is handed a turn 100 ms after the previous
        // (the first ones, due within a step, go at once).
        let turns: Vec<Duration> = (1..=20)
            .filter_map(|i| match p.admit(|| i, now, Duration::ZERO, LONG) {
                Admission::Defer(wait) => Some(wait),
                Admission::Go(wait) if wait <= QUANTUM => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(turns.len() >= 17, "{turns:?}");
        for pair in turns.windows(2) {
            let gap = (pair[1] - pair[0]).as_secs_f64();
            assert!(
                (0.1..=0.102).contains(&gap),
                "{gap} between turns: {turns:?}"
            );
        }
        // A call handed back gets its own turn again, not a new one at the end.
        assert_eq!(
            p.admit(|| 20, now, Duration::ZERO, LONG),
            Admission::Defer(turns[turns.len() - 1])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_headers_holds_every_call_for_its_retry_after() {
        let p = Pacer::default();
        let now = Instant::now();
        p.admit(|| 0, now, LONG, LONG);
        p.refused(&HeaderMap::new(), Some(Duration::from_secs(3)), now);
        // Waited in steps (within the bound for server-imposed waits), not handed back.
        assert_eq!(
            p.admit(|| 1, now, Duration::from_secs(2), LONG),
            Admission::Step(QUANTUM)
        );
        let later = now + Duration::from_secs(3);
        assert_eq!(
            p.admit(|| 1, later, LONG, LONG),
            Admission::Go(Duration::ZERO)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_summarised_at_most_once_a_minute() {
        let p = Pacer::default();
        let now = Instant::now();
        assert!(
            p.note(Throttled::Refused, now).is_some(),
            "the first one is reported"
        );
        for s in 1..60 {
            let at = now + Duration::from_secs(s);
            assert!(p.note(Throttled::Deferred, at).is_none());
        }
        let summary = p
            .note(Throttled::Refused, now + Duration::from_secs(60))
            .unwrap();
        assert_eq!((summary.deferred, summary.refused), (59, 1));
    }

    #[test]
    fn retry_after_wins_over_rate_limit_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "7".parse().unwrap());
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(2)));
        assert_eq!(rate_limit_wait(&HeaderMap::new()), None);
    }
}
