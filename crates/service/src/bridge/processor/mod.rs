//! Brings a request's Mattermost posts up to date with its latest state, exactly once across
//! replicas: claim the request in plugin data (compare-and-swap), post root messages, thread
//! replies for new reviews, update the roots and tell the requester on resolution, then
//! record the progress and release the claim in one write.
//!
//! - this module: the phases in order ([`Processor::handle`]);
//! - [`cas`]: the plugin-data side (take, renew and release the claim, record progress);
//! - [`posts`]: the Mattermost side (root posts, root updates, the requester's DM).

mod cas;
mod posts;

use std::sync::Arc;

use futures_util::future::join_all;

use super::claim::{self, Phase};
use super::metrics::BridgeMetrics;
use super::ports::{Chat, NewPost, PortError, Store};
use super::queue::Outcome;
use super::render::Renderer;
use super::work::{Summary, Work, resolution_of, reviews};
use crate::access::{PluginData, RawData, Resolution};
use crate::route::Routing;
use cas::Acquire;
pub use cas::settled;

/// Compare-and-swap rounds per event before handing back to the queue's backoff.
const CAS_ROUNDS: u32 = 16;
/// Longest a Mattermost call may take, retries included: half the lease, so a write batch
/// that starts with a fresh claim ends before anyone else may take the request over.
const CALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(claim::LEASE.as_secs() / 2);
/// A claim written more recently than this is fresh enough to start a write batch without
/// renewing it (fresh + CALL_BUDGET stays inside the lease).
const FRESH: std::time::Duration = std::time::Duration::from_secs(claim::LEASE.as_secs() / 4);

/// Bounds one Mattermost call by [`CALL_BUDGET`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, PortError>>,
) -> Result<T, PortError> {
    tokio::time::timeout(CALL_BUDGET, call)
        .await
        .unwrap_or_else(|_| {
            Err(PortError::Retry {
                reason: format!(
                    "a Mattermost call took longer than {}s",
                    CALL_BUDGET.as_secs()
                ),
                after: None,
            })
        })
}

/// Longest wait before looking again at a request another replica has claimed.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Processor<S, C, R> {
    pub store: S,
    pub chat: C,
    pub render: R,
    pub routing: Arc<Routing>,
    /// This replica's name in claims.
    pub owner: String,
    /// `[mattermost] notify_requester`: DM the requester the outcome.
    pub notify_requester: bool,
    pub metrics: BridgeMetrics,
}

/// The claim we hold and the plugin data as we last wrote it (the next write's `Expect`).
struct Held {
    data: PluginData,
    written: RawData,
    phase: Phase,
    /// When the claim was last written (renewed).
    renewed: std::time::Instant,
}

fn retry(e: PortError) -> Outcome {
    match e {
        PortError::Retry { reason, after } => Outcome::Retry { reason, after },
        PortError::Conflict => Outcome::Retry {
            reason: "plugin data changed concurrently".into(),
            after: None,
        },
        PortError::NotFound => Outcome::Done,
        PortError::Fatal(m) => Outcome::Fail(m),
    }
}

/// What the target resolution is, if the request is finished.
fn target(work: &Work) -> Resolution {
    match work {
        Work::Put(r, _) => resolution_of(r.state),
        Work::Deleted => Resolution::Expired,
    }
}

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    pub async fn handle(&self, id: &str, work: Work) -> Outcome {
        for _ in 0..CAS_ROUNDS {
            let held = match self.acquire(id, &work).await {
                Ok(Some(h)) => h,
                Ok(None) => return Outcome::Done,
                Err(Acquire::Again) => {
                    self.metrics.cas_conflicts.inc();
                    continue;
                }
                Err(Acquire::Stop(o)) => return o,
            };
            return self.work(id, &work, held).await;
        }
        Outcome::Retry {
            reason: "too many concurrent plugin data writes".into(),
            after: None,
        }
    }

    async fn work(&self, id: &str, work: &Work, mut held: Held) -> Outcome {
        let summary = match work {
            Work::Put(r, _) => Summary::from_request(r),
            Work::Deleted => Summary::from_plugin_data(id, &held.data),
        };
        if held.phase == Phase::Post
            && let Err(o) = self.post_roots(id, work, &summary, &mut held).await
        {
            return o;
        }
        let all = reviews(work);
        let from = held.data.reviews_count as usize;
        let mut roots_changed = false;
        if all.len() > from && !held.data.messages.is_empty() {
            for i in from..all.len() {
                if let Err(o) = self.renew(id, &mut held).await {
                    return o;
                }
                let body = self.render.reply(&summary, &all[..=i]);
                let posts = held.data.messages.iter().map(|m| {
                    bounded(self.chat.post(NewPost {
                        channel_id: m.channel_id.clone(),
                        root_id: Some(m.post_id.clone()),
                        body: body.clone(),
                        idempotency_key: format!("tm:{id}:review:{i}:{}", m.channel_id),
                    }))
                });
                for r in join_all(posts).await {
                    match r {
                        Ok(_) => self.metrics.sent("reply", true),
                        Err(e @ PortError::Retry { .. }) => {
                            self.metrics.sent("reply", false);
                            // Replies before `i` are recorded; the retry posts the rest
                            // (re-sent ones of `i` are deduplicated by Mattermost).
                            return self
                                .save_then(id, &mut held, Some(Phase::Update), retry(e))
                                .await;
                        }
                        Err(e) => {
                            self.metrics.sent("reply", false);
                            tracing::warn!(request_id = %id, error = %e, "Failed to post a review reply; skipping it");
                        }
                    }
                }
                held.data.reviews_count = i as u32 + 1;
            }
            roots_changed = true;
        }
        let resolution = target(work);
        let resolving =
            resolution != Resolution::Unresolved && held.data.resolution == Resolution::Unresolved;
        // Renewed before the resolution is set in `held`: a renewal records progress, and the
        // resolution may only be recorded once the posts show it.
        if (resolving || roots_changed)
            && let Err(o) = self.renew(id, &mut held).await
        {
            return o;
        }
        if resolving {
            held.data.resolution = resolution;
            if let Work::Put(r, _) = work {
                held.data.resolve_reason = r.resolve_reason.clone();
            }
        }
        if resolving || roots_changed {
            let mut final_summary = summary.clone();
            final_summary.status = held.data.resolution;
            if let Err(o) = self.update_roots(id, &final_summary, &held).await {
                // Not recorded as resolved yet, so the retry updates the posts again.
                held.data.resolution = Resolution::Unresolved;
                return self.save_then(id, &mut held, Some(Phase::Update), o).await;
            }
            if resolving {
                self.notify_requester(id, &final_summary, &held).await;
            }
        }
        // Reactions only once the progress is saved and the claim released: cosmetic calls
        // must not hold the claim (or widen the window in which a crash repeats a post).
        let roots = resolving.then(|| held.data.messages.clone());
        let outcome = self.save_then(id, &mut held, None, Outcome::Done).await;
        if let Some(roots) = roots {
            self.react_roots(id, held.data.resolution, &roots).await;
        }
        outcome
    }
}
