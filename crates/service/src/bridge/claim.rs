//! The `claim` plugin-data key: a short lease that makes one replica the only writer of a
//! request's Mattermost posts while it works. It is written with compare-and-swap together
//! with the upstream keys; upstream decoders ignore it. A replica that dies leaves a claim
//! that expires, and the next one to see the request takes over: it first adopts what its
//! predecessor posted since its last claim write (found by the posts' markers, see
//! `processor::recover`), then redoes what is still missing. Deterministic
//! `pending_post_id`s are the second line of defence (Mattermost drops re-sent posts for
//! 30 s, where its nodes share that cache).
//!
//! A claim is only ever left in plugin data by a holder that was interrupted: every attempt
//! ends by recording its progress and releasing the claim, failures included (what is still
//! to post is then the `owed_recipients` key's business). So a claim found is a takeover.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const KEY: &str = "claim";

/// Shorter than Mattermost's 30 s `pending_post_id` window, so a takeover's re-sent posts are
/// still deduplicated; renewed at every progress write.
pub const LEASE: Duration = Duration::from_secs(12);

/// What the claim holder was doing, so a takeover knows whether root posts may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Posting the root messages (some may be missing).
    Post,
    /// Replies and status updates; everything else is derivable from the request.
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub owner: String,
    /// Unix milliseconds.
    pub until: u64,
    pub phase: Phase,
    /// Since when (Unix ms) anything posted under this claim may be unrecorded: when its
    /// holder took the request, or the start of an interrupted predecessor's window it
    /// took over and has not yet finished checking. `None` in claims written before this
    /// field existed.
    pub since: Option<u64>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Claim {
    pub fn new(owner: &str, phase: Phase, since: u64) -> Self {
        Self {
            owner: owner.to_string(),
            until: now_ms() + LEASE.as_millis() as u64,
            phase,
            since: Some(since),
        }
    }

    /// A claim that has already run out: the holder could not tell whether everything it
    /// posted was made, and leaves the request to the next attempt (its own included), which
    /// takes over at once and looks for those posts first.
    pub fn expired_now(owner: &str, phase: Phase, since: u64) -> Self {
        Self {
            owner: owner.to_string(),
            until: now_ms(),
            phase,
            since: Some(since),
        }
    }

    /// `<owner>;<since ms>;<until ms>;<post|update>` (or `<owner>;<until ms>;<post|update>`
    /// as first written); anything unreadable counts as an expired claim, so a corrupt value
    /// can never block a request forever. Read from the right, so the owner may contain `;`,
    /// and a reader of the three-part form takes `<owner>;<since>` for the owner: another
    /// replica, which is what it is.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() {
            return None;
        }
        let mut parts = raw.rsplitn(3, ';');
        let phase = match parts.next() {
            Some("post") => Some(Phase::Post),
            Some("update") => Some(Phase::Update),
            _ => None,
        };
        let until = parts.next().and_then(|u| u.parse().ok());
        let rest = parts.next();
        match (rest, until, phase) {
            (Some(rest), Some(until), Some(phase)) => {
                let (owner, since) = match rest.rsplit_once(';') {
                    Some((o, s)) if s.parse::<u64>().is_ok() => (o, s.parse().ok()),
                    _ => (rest, None),
                };
                Some(Self {
                    owner: owner.into(),
                    until,
                    phase,
                    since,
                })
            }
            _ => Some(Self {
                owner: String::new(),
                until: 0,
                phase: Phase::Post,
                since: None,
            }),
        }
    }

    pub fn encode(&self) -> String {
        let phase = match self.phase {
            Phase::Post => "post",
            Phase::Update => "update",
        };
        match self.since {
            Some(since) => format!("{};{since};{};{phase}", self.owner, self.until),
            None => format!("{};{};{phase}", self.owner, self.until),
        }
    }

    /// When the interrupted work began, for a successor's search of the posts it made: the
    /// recorded start, else the last renewal (a claim is renewed before every batch of
    /// posts, so anything unrecorded was made after it).
    pub fn began(&self) -> u64 {
        self.since
            .unwrap_or_else(|| self.until.saturating_sub(LEASE.as_millis() as u64))
    }

    pub fn expired(&self, now: u64) -> bool {
        now >= self.until
    }

    pub fn remaining(&self, now: u64) -> Duration {
        Duration::from_millis(self.until.saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_owner_may_contain_separators() {
        let c = Claim {
            owner: "host;a:1".into(),
            until: 42,
            phase: Phase::Update,
            since: Some(7),
        };
        assert_eq!(Claim::parse(&c.encode()), Some(c));
        assert_eq!(Claim::parse(""), None);
    }

    #[test]
    fn the_first_format_without_since_still_reads() {
        let c = Claim::parse("mm-0:3f9a2c1e;1795960800123;update").unwrap();
        assert_eq!(c.owner, "mm-0:3f9a2c1e");
        assert_eq!(
            (c.until, c.phase, c.since),
            (1795960800123, Phase::Update, None)
        );
        assert_eq!(c.began(), 1795960800123 - LEASE.as_millis() as u64);
    }

    #[test]
    fn garbage_is_an_expired_post_claim() {
        let c = Claim::parse("nonsense").unwrap();
        assert!(c.expired(1));
        assert_eq!(c.phase, Phase::Post);
    }

    proptest::proptest! {
        /// The claim value comes from plugin data any writer may have touched: whatever it
        /// holds, parsing never panics, and anything but `<owner>;<u64>;post|update` is an
        /// expired claim (so it can never block a request).
        #[test]
        fn any_stored_value_parses_without_panicking(
            owner in "\\PC{0,20}",
            until in proptest::prop_oneof!["[0-9]{1,20}", "\\PC{0,12}"],
            phase in proptest::prop_oneof!["post", "update", "\\PC{0,8}"],
            raw in "\\PC{0,80}",
        ) {
            for value in [format!("{owner};{until};{phase}"), raw] {
                let c = Claim::parse(&value);
                let mut parts = value.rsplitn(3, ';');
                let (p, u, o) = (parts.next(), parts.next(), parts.next());
                let well_formed = matches!(p, Some("post" | "update"))
                    && u.is_some_and(|u| u.parse::<u64>().is_ok())
                    && o.is_some();
                match c {
                    None => proptest::prop_assert!(value.is_empty()),
                    Some(c) => proptest::prop_assert!(well_formed || (c.expired(0) && c.owner.is_empty()), "{value:?} → {c:?}"),
                }
            }
        }

        #[test]
        fn every_claim_round_trips(owner in "\\PC{0,40}", until in proptest::prelude::any::<u64>(), update in proptest::prelude::any::<bool>(), since in proptest::prelude::any::<u64>()) {
            let c = Claim { owner, until, phase: if update { Phase::Update } else { Phase::Post }, since: Some(since) };
            proptest::prop_assert_eq!(Claim::parse(&c.encode()), Some(c));
        }
    }

    #[test]
    fn a_new_claim_lasts_the_lease() {
        let c = Claim::new("me", Phase::Post, now_ms());
        let now = now_ms();
        assert!(!c.expired(now));
        assert!(c.remaining(now) <= LEASE);
        assert!(c.expired(now + LEASE.as_millis() as u64 + 1));
    }
}
