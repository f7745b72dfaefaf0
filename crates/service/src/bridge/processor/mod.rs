//! Brings a request's Mattermost posts up to date with its latest state, exactly once across
//! replicas: claim the request in plugin data (compare-and-swap), post root messages, thread
//! replies for new reviews, update the roots and tell the requester on resolution, then
//! record the progress and release the claim in one write.
//!
//! - this module: the phases in order ([`Processor::handle`]);
//! - [`cas`]: the plugin-data side (take, renew and release the claim, record progress);
//! - [`posts`]: the Mattermost side (root posts, root updates, the requester's DM);
//! - [`recover`]: after an interrupted holder, adopting the posts it made but never recorded.
//!
//! What could not be posted stays owed (the `owed_recipients` key, [`super::owed`]): a
//! refusal for one recipient (403, 404) does not hold up the others, and the next event or
//! resync posts it; a refused token (401) is retried with backoff and reported by `/readyz`.

mod cas;
mod posts;
mod recover;

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::join_all;

use super::claim::{self, Phase};
use super::metrics::BridgeMetrics;
use super::ports::{Chat, Marker, MarkerKind, NewPost, PortError, Store};
use super::queue::Outcome;
use super::render::Renderer;
use super::work::{Summary, Work, resolution_of, reviews};
use crate::access::{PluginData, RawData, Resolution};
use crate::health::Readiness;
use crate::route::Routing;
use cas::Acquire;

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
            Err(PortError::Uncertain(format!(
                "a Mattermost call took longer than {}s",
                CALL_BUDGET.as_secs()
            )))
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
    /// Told when Mattermost refuses the bot token, and when it takes it again.
    pub health: Readiness,
}

/// The claim we hold and the plugin data as we last wrote it (the next write's `Expect`).
struct Held {
    data: PluginData,
    written: RawData,
    phase: Phase,
    /// When the claim was last written (renewed).
    renewed: std::time::Instant,
    /// When the work under the claim began (carried over from an interrupted claim).
    since: u64,
    /// A claim was found when this one was taken: its holder was interrupted and may have
    /// posted without recording it. Posts since this time are looked for before posting.
    recover: Option<u64>,
    /// Recipients still lacking their root post.
    owed: Vec<String>,
    /// Channels whose root was posted in this run after replies were already made under
    /// the other roots: they get those replies too.
    late: BTreeSet<String>,
}

fn retry(e: PortError) -> Outcome {
    match e {
        PortError::Retry { reason, after } => Outcome::Retry { reason, after },
        PortError::Unauthorized(reason) | PortError::Uncertain(reason) => Outcome::Retry {
            reason,
            after: None,
        },
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
    /// One Mattermost call, bounded by [`CALL_BUDGET`]; a refused token is reported to
    /// readiness and the metric, and any success clears that report.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        let r = bounded(call).await;
        match &r {
            Err(PortError::Unauthorized(why)) => {
                self.metrics.token_rejected.set(1);
                self.health.set_mattermost_problem(Some(why.clone()));
            }
            Ok(_) if self.metrics.token_rejected.get() != 0 => {
                self.metrics.token_rejected.set(0);
                self.health.set_mattermost_problem(None);
            }
            _ => {}
        }
        r
    }

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
        let backlog = !held.late.is_empty() && from > 0;
        if (all.len() > from || backlog) && !held.data.messages.is_empty() {
            // Replies an interrupted holder made but did not count are adopted, not re-sent.
            let made = match held.recover {
                Some(_) => match self.replies_made(id, &held.data.messages).await {
                    Ok(made) => made,
                    Err(e) => {
                        let phase = held.phase;
                        return self.save_then(id, &mut held, Some(phase), retry(e)).await;
                    }
                },
                None => BTreeSet::new(),
            };
            for i in 0..all.len() {
                let (due, adopted): (Vec<_>, Vec<_>) = held
                    .data
                    .messages
                    .iter()
                    .filter(|m| i >= from || held.late.contains(&m.channel_id))
                    .cloned()
                    .partition(|m| !made.contains(&(m.channel_id.clone(), i as u32)));
                if !adopted.is_empty() {
                    self.metrics
                        .adopted
                        .with_label_values(&["reply"])
                        .inc_by(adopted.len() as u64);
                    tracing::info!(request_id = %id, review = i, replies = adopted.len(), "adopted thread replies an interrupted replica made but did not record");
                }
                if due.is_empty() {
                    held.data.reviews_count = held.data.reviews_count.max(i as u32 + 1);
                    continue;
                }
                if let Err(o) = self.renew(id, &mut held).await {
                    return o;
                }
                let body = self.render.reply(&summary, &all[..=i]);
                let posts = due.iter().map(|m| {
                    let marker =
                        Marker::new(id, &m.channel_id, MarkerKind::Reply { review: i as u32 });
                    self.call(self.chat.post(NewPost {
                        channel_id: m.channel_id.clone(),
                        root_id: Some(m.post_id.clone()),
                        body: marker.mark(body.clone()),
                        idempotency_key: format!("tm:{id}:review:{i}:{}", m.channel_id),
                    }))
                });
                for r in join_all(posts).await {
                    match r {
                        Ok(_) => self.metrics.sent("reply", true),
                        Err(
                            e @ (PortError::Retry { .. }
                            | PortError::Uncertain(_)
                            | PortError::Unauthorized(_)),
                        ) => {
                            self.metrics.sent("reply", false);
                            // Replies before `i` are recorded; the retry posts the rest. The
                            // claim is kept, so the retry first looks for the replies of `i`
                            // that did go out (and Mattermost drops re-sent ones for 30 s).
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
                held.data.reviews_count = held.data.reviews_count.max(i as u32 + 1);
            }
            held.late.clear();
            roots_changed = all.len() > from;
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
            // A resolved request is final: what could not be posted is no longer owed.
            held.owed.clear();
        }
        if resolving || roots_changed {
            let mut final_summary = summary.clone();
            final_summary.status = held.data.resolution;
            if let Err(o) = self.update_roots(id, &final_summary, &held).await {
                // Not recorded as resolved yet, so the retry updates the posts again. Nothing
                // was created since the last record: the claim is released (a retry that
                // finds a claim would look for unrecorded posts first).
                held.data.resolution = Resolution::Unresolved;
                return self.save_then(id, &mut held, None, o).await;
            }
            if resolving && let Err(o) = self.notify_requester(id, &final_summary, &held).await {
                held.data.resolution = Resolution::Unresolved;
                let phase = held.phase;
                return self.save_then(id, &mut held, Some(phase), o).await;
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
