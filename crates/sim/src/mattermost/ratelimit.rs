//! Mattermost's optional rate limiter, answered as the server answers it (the facts are in
//! `docs/mattermost-api.md`, "Rate limiting"): the generic cell rate algorithm of the `throttled` library
//! keyed per client (remote address by default), `X-RateLimit-Limit/Remaining/Reset` on every
//! answer it lets through, and a plain-text 429 with `Retry-After` on the ones it refuses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use tokio::time::Instant;

/// `RateLimitSettings`. [`RateLimit::default`] is what an administrator gets by ticking
/// "Enable Rate Limiting" and changing nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// `PerSec`: the sustained rate.
    pub per_sec: u32,
    /// `MaxBurst`: requests allowed on top of the one the rate allows (so a fresh client may
    /// send `max_burst + 1` at once, which is the `X-RateLimit-Limit` it is told).
    pub max_burst: u32,
    /// `MemoryStoreSize`: clients remembered; the least recently seen is forgotten first.
    pub memory_store_size: usize,
    /// `VaryByRemoteAddr`: one allowance per client IP address (the port is ignored).
    pub vary_by_remote_addr: bool,
    /// `VaryByUser`: one allowance per auth token (falling back to the address when a request
    /// carries none and `vary_by_remote_addr` is on).
    pub vary_by_user: bool,
    /// `VaryByHeader`: the value of this header (lower-cased) is appended to the key.
    pub vary_by_header: Option<String>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_sec: 10,
            max_burst: 100,
            memory_store_size: 10_000,
            vary_by_remote_addr: true,
            vary_by_user: false,
            vary_by_header: None,
        }
    }
}

impl RateLimit {
    /// The defaults with another rate and burst.
    pub fn new(per_sec: u32, max_burst: u32) -> Self {
        Self {
            per_sec,
            max_burst,
            ..Self::default()
        }
    }
}

/// What the limiter says about one request; the fields are the four headers' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub limited: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds (rounded up) until the client's allowance is full again.
    pub reset_secs: u64,
    /// Whole seconds (rounded up) until the next request would be let through; only on a 429.
    pub retry_after_secs: Option<u64>,
}

impl Verdict {
    /// A refusal as the default limit sends it, for the fault switchboard's injected 429s.
    pub(crate) fn injected(retry_after_secs: u64) -> Self {
        Self {
            limited: true,
            limit: u64::from(RateLimit::default().max_burst) + 1,
            remaining: 0,
            reset_secs: retry_after_secs,
            retry_after_secs: Some(retry_after_secs),
        }
    }

    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`, and `Retry-After` on a refusal.
    pub(crate) fn write_headers(&self, h: &mut HeaderMap) {
        h.insert("x-ratelimit-limit", self.limit.into());
        h.insert("x-ratelimit-remaining", self.remaining.into());
        h.insert("x-ratelimit-reset", self.reset_secs.into());
        if let Some(secs) = self.retry_after_secs {
            h.insert("retry-after", secs.into());
        }
    }
}

/// The GCRA state: per key, the theoretical arrival time of the next request.
pub(crate) struct Limiter {
    settings: RateLimit,
    /// Time between requests at the sustained rate.
    interval: Duration,
    /// How far ahead of the schedule a client may run: `interval × (burst + 1)`.
    tolerance: Duration,
    /// key → (theoretical arrival time, last use for eviction).
    keys: HashMap<String, (Instant, u64)>,
    uses: u64,
}

impl Limiter {
    pub(crate) fn new(settings: RateLimit) -> Self {
        let interval = Duration::from_secs(1) / settings.per_sec.max(1);
        let tolerance = interval * (settings.max_burst + 1);
        Self {
            settings,
            interval,
            tolerance,
            keys: HashMap::new(),
            uses: 0,
        }
    }

    /// The client key of a request, built as the server builds it.
    pub(crate) fn key(
        &self,
        remote: Option<SocketAddr>,
        headers: &HeaderMap,
        query: &str,
    ) -> String {
        let ip = || remote.map(|a| a.ip().to_string()).unwrap_or_default();
        let mut key = String::new();
        if self.settings.vary_by_user {
            match auth_token(headers, query) {
                Some(token) => key.push_str(&token),
                None if self.settings.vary_by_remote_addr => key.push_str(&ip()),
                None => {}
            }
        } else if self.settings.vary_by_remote_addr {
            key.push_str(&ip());
        }
        if let Some(name) = &self.settings.vary_by_header {
            let value = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            key.push_str(&value.to_lowercase());
        }
        key
    }

    /// Counts one request of `key` at `now` unless it is over the limit.
    pub(crate) fn check(&mut self, key: &str, now: Instant) -> Verdict {
        self.uses += 1;
        let stored = self.keys.get(key).map(|(tat, _)| *tat);
        let tat = stored.map_or(now, |tat| tat.max(now));
        let new_tat = tat + self.interval;
        let allow_at = new_tat.checked_sub(self.tolerance);
        let limited = allow_at.is_some_and(|at| now < at);
        let (ttl, retry_after) = if limited {
            let retry_after = allow_at.expect("limited implies a time") - now;
            (tat - now, Some(retry_after))
        } else {
            if stored.is_none() && self.keys.len() >= self.settings.memory_store_size.max(1) {
                self.evict();
            }
            self.keys.insert(key.to_string(), (new_tat, self.uses));
            (new_tat - now, None)
        };
        if let Some((_, used)) = self.keys.get_mut(key) {
            *used = self.uses;
        }
        // Remaining: whole intervals left in the tolerance (0 once it is used up).
        let left = self.tolerance.saturating_sub(ttl);
        Verdict {
            limited,
            limit: u64::from(self.settings.max_burst) + 1,
            remaining: (left.as_nanos() / self.interval.as_nanos()) as u64,
            reset_secs: ceil_secs(ttl),
            retry_after_secs: retry_after.map(ceil_secs),
        }
    }

    fn evict(&mut self) {
        if let Some(oldest) = self
            .keys
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())
        {
            self.keys.remove(&oldest);
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

/// The session or access token a request authenticates with: the `Authorization` header
/// (`Bearer` or `Token`) or the `access_token` query parameter.
fn auth_token(headers: &HeaderMap, query: &str) -> Option<String> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
        })
        .map(|(_, token)| token.trim().to_string());
    header.or_else(|| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> Option<SocketAddr> {
        Some(format!("{ip}:40000").parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn the_defaults_let_101_through_then_one_per_100_ms() {
        let mut l = Limiter::new(RateLimit::default());
        let now = Instant::now();
        let first = l.check("k", now);
        assert_eq!(
            first,
            Verdict {
                limited: false,
                limit: 101,
                remaining: 100,
                reset_secs: 1,
                retry_after_secs: None
            }
        );
        for _ in 1..101 {
            assert!(!l.check("k", now).limited);
        }
        let refused = l.check("k", now);
        assert!(refused.limited);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_secs, Some(1));
        assert_eq!(refused.reset_secs, 11, "10.1 s until the allowance is full");
        // 100 ms later exactly one more fits.
        let later = now + Duration::from_millis(100);
        assert!(!l.check("k", later).limited);
        assert!(l.check("k", later).limited);
        // Another client has its own allowance.
        assert!(!l.check("other", later).limited);
    }

    #[test]
    fn keys_follow_the_vary_by_settings() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer tok".parse().unwrap());
        h.insert("x-tenant", "ACME".parse().unwrap());
        let by_ip = Limiter::new(RateLimit::default());
        assert_eq!(by_ip.key(addr("10.0.0.7"), &h, ""), "10.0.0.7");
        let by_user = Limiter::new(RateLimit {
            vary_by_user: true,
            vary_by_header: Some("x-tenant".into()),
            ..RateLimit::default()
        });
        assert_eq!(by_user.key(addr("10.0.0.7"), &h, ""), "tokacme");
        assert_eq!(
            by_user.key(addr("10.0.0.7"), &HeaderMap::new(), "access_token=q"),
            "q"
        );
        assert_eq!(
            by_user.key(addr("10.0.0.7"), &HeaderMap::new(), ""),
            "10.0.0.7"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_seen_client_is_forgotten_past_the_store_size() {
        let mut l = Limiter::new(RateLimit {
            per_sec: 1,
            max_burst: 0,
            memory_store_size: 2,
            ..RateLimit::default()
        });
        let now = Instant::now();
        assert!(!l.check("a", now).limited);
        assert!(!l.check("b", now).limited);
        assert!(l.check("a", now).limited, "a is remembered");
        assert!(!l.check("c", now).limited);
        assert!(
            !l.check("b", now).limited,
            "b was forgotten to make room for c"
        );
    }
}
