//! How the client retries: bounded attempts, exponential backoff with jitter for 5xx and
//! transport errors, and the server's own wait (`Retry-After`, `X-RateLimit-Reset`) for 429.

use std::time::Duration;

use http::HeaderMap;

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_secs(30),
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

/// The wait a 429 asks for: `Retry-After` (seconds), else `X-RateLimit-Reset` (seconds until
/// the bucket is full again; Mattermost sends relative seconds, not an epoch).
pub(crate) fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    };
    seconds("retry-after").or_else(|| seconds("x-ratelimit-reset"))
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
