//! The measured phases against a running service: event→post latency one request at a time,
//! a burst of requests until every one is fully posted, and the check that each request has
//! exactly one root post per recipient.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use teleport_mattermost::access::PluginData;
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER1};
use teleport_mattermost_sim::world::World as SimWorld;

/// How often completion is polled during a burst (the figure's resolution).
const POLL: Duration = Duration::from_millis(2);

/// A PENDING request with two recipients: the configured channel and the suggested
/// reviewer's DM.
pub fn request() -> NewRequest {
    NewRequest::new(REQUESTER, &["editor"])
        .reason("benchmark")
        .suggested_reviewers(&[REVIEWER1])
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// Whether the service has recorded both posts of `id` and released its claim.
pub fn fully_posted(w: &SimWorld, id: &str, recipients: usize) -> bool {
    let Some(raw) = w.tp.plugin_data(id, "mattermost") else {
        return false;
    };
    if raw.get("claim").is_some_and(|c| !c.is_empty()) {
        return false;
    }
    PluginData::decode(&raw).is_ok_and(|d| d.messages.len() == recipients)
}

/// Creates `samples` requests one at a time; for each, the time from `create_request`
/// returning to the simulator storing the request's last root post.
pub async fn latency(
    w: &SimWorld,
    samples: usize,
) -> Result<Vec<(String, Duration)>, MeasureError> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = w.mm.post_count();
        let id = w.tp.create_request(request()).id;
        let created = Instant::now();
        let timeout = Duration::from_secs(10);
        w.mm.wait_for(timeout, |mm| (mm.post_count() >= before + 2).then_some(()))
            .await
            .map_err(|_| MeasureError::Timeout(timeout, format!("the posts of request {id}")))?;
        let last = w.mm.post_times(before).into_iter().map(|(_, at)| at).max();
        let took = last.map_or(Duration::ZERO, |at| at.saturating_duration_since(created));
        // Let the request finish (plugin data recorded) so the next one runs alone.
        let deadline = Instant::now() + timeout;
        while !fully_posted(w, &id, 2) {
            if Instant::now() > deadline {
                return Err(MeasureError::Timeout(
                    timeout,
                    format!("plugin data of {id}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        out.push((id, took));
    }
    Ok(out)
}

pub struct Burst {
    pub ids: Vec<String>,
    /// From the first `create_request` to the last request fully posted.
    pub elapsed: Duration,
    /// How long creating the requests in the simulator took (inside `elapsed`).
    pub creating: Duration,
}

/// Creates `n` requests at once and waits until every one has both posts stored and its
/// plugin data recorded.
pub async fn burst(w: &SimWorld, n: usize, timeout: Duration) -> Result<Burst, MeasureError> {
    let base = w.mm.post_count();
    let start = Instant::now();
    let ids: Vec<String> = (0..n).map(|_| w.tp.create_request(request()).id).collect();
    let creating = start.elapsed();
    let deadline = start + timeout;
    // Posts first (cheap to count), then the plugin data of each request once.
    while w.mm.post_count() < base + 2 * n {
        if Instant::now() > deadline {
            return Err(MeasureError::Timeout(
                timeout,
                format!(
                    "{} posts ({} stored)",
                    2 * n,
                    w.mm.post_count().saturating_sub(base)
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    let mut remaining: Vec<&String> = ids.iter().collect();
    loop {
        remaining.retain(|id| !fully_posted(w, id, 2));
        if remaining.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(MeasureError::Timeout(
                timeout,
                format!("plugin data of {} requests", remaining.len()),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    let elapsed = start.elapsed();
    Ok(Burst {
        ids,
        elapsed,
        creating,
    })
}

/// Root posts per expected `(request, channel)`: none missing, none twice, nothing else.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PostCheck {
    pub expected: usize,
    pub roots: usize,
    pub missing: usize,
    pub duplicates: usize,
    pub unexpected: usize,
}

impl PostCheck {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.unexpected == 0
    }
}

/// Checks the simulator's root posts against `ids` × `channels`, by the deterministic
/// `pending_post_id` the service gives each root (`tm:<request>:root:<channel>`).
pub fn check_roots(w: &SimWorld, ids: &[String], channels: &[String]) -> PostCheck {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut roots = 0;
    for p in w.mm.posts().into_iter().filter(|p| p.root_id.is_empty()) {
        roots += 1;
        *seen.entry(p.pending_post_id).or_default() += 1;
    }
    let mut check = PostCheck {
        expected: ids.len() * channels.len(),
        roots,
        ..PostCheck::default()
    };
    for id in ids {
        for ch in channels {
            match seen.remove(&format!("tm:{id}:root:{ch}")) {
                None => check.missing += 1,
                Some(n) => check.duplicates += n - 1,
            }
        }
    }
    check.unexpected = seen.values().sum();
    check
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
