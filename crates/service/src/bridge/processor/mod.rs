//! Brings a request's Mattermost posts up to date with its latest state, exactly once across
//! replicas: claim the request in plugin data (compare-and-swap), post root messages, thread
//! replies for new reviews, update the roots and tell the requester on resolution, then
//! record the progress and release the claim in one write.
//!
//! - this module: the phases in order ([`Processor::handle`]);
//! - [`cas`]: the plugin-data side (take, renew and release the claim, record progress);
//! - [`posts`]: the Mattermost side (root posts, replies, root updates, the requester's DM);
//! - [`recover`]: after an interrupted holder, adopting the posts it made but never recorded;
//! - [`notices`]: reminders, escalation and requester notices when [`crate::remind`] says
//!   they are due.
//!
//! What could not be posted stays owed (the `owed_recipients` key, [`super::owed`]): a
//! refusal for one recipient (403, 404) does not hold up the others, and the next event or
//! resync posts it; a refused token (401) is retried with backoff and reported by `/readyz`.

mod cas;
mod notices;
mod posts;
mod recover;
mod replies;

use std::collections::BTreeSet;
use std::sync::Arc;

use super::claim::{self, Phase};
use super::metrics::BridgeMetrics;
use super::ports::{Chat, PortError, Store};
use super::queue::Outcome;
use super::render::Renderer;
use super::work::{Summary, Work, resolution_of, reviews};
use crate::access::{PluginData, RawData, Resolution};
use crate::health::Readiness;
use crate::route::Routing;
pub use cas::settled;
use cas::{Acquire, Leave};
pub use recover::Scans;

/// Compare-and-swap rounds per event before handing back to the queue's backoff.
const CAS_ROUNDS: u32 = 16;
/// Longest a Mattermost call may take, retries included: half the lease, so a write batch
/// that starts with a fresh claim ends before anyone else may take the request over.
const CALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(claim::LEASE.as_secs() / 2);
/// A claim written more recently than this is fresh enough to start a write batch without
/// renewing it (fresh + CALL_BUDGET stays inside the lease).
const FRESH: std::time::Duration = std::time::Duration::from_secs(claim::LEASE.as_secs() / 4);

/// Bounds one Mattermost call by [`CALL_BUDGET`]. The client knows the deadline too, so a call
/// held back by the rate limit is handed back as throttled before it (a wait, not a failure),
/// and the timeout only cuts a Mattermost that is slow to answer.
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, PortError>>,
) -> Result<T, PortError> {
    tokio::time::timeout(CALL_BUDGET, crate::mattermost::within(CALL_BUDGET, call))
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
    /// `[reminders]`, when configured.
    pub reminders: Option<Arc<crate::remind::Reminders>>,
    /// Told when Mattermost refuses the bot token, and when it takes it again.
    pub health: Readiness,
    /// Channel listings shared by the takeovers of this replica (see [`recover`]).
    pub scans: Scans,
}

/// The claim we hold and the plugin data as we last wrote it (the next write's `Expect`).
struct Held {
    data: PluginData,
    written: RawData,
    phase: Phase,
    /// When the claim was last written (renewed).
    renewed: std::time::Instant,
    /// The claim's `since`: when this holder took the request, or the interrupted window it
    /// took over.
    since: u64,
    /// A claim was found when this one was taken: its holder was interrupted and may have
    /// posted without recording it. What it posted after this time (Unix ms) is looked for
    /// before anything is posted again.
    recover: Option<recover::Window>,
    /// Recipients still lacking their root post (the `owed_recipients` key).
    owed: Vec<String>,
    /// Channels whose root was posted in this attempt after replies were already made
    /// under the other roots: they get those replies too.
    late: BTreeSet<String>,
}

fn retry(e: PortError) -> Outcome {
    match e {
        PortError::Retry { reason, after } => Outcome::Retry { reason, after },
        PortError::Throttled { after } => Outcome::Throttled { after },
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

    /// One Mattermost call, bounded by [`CALL_BUDGET`]; a refused token is reported to
    /// readiness and the metric, and any success clears that report.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        self.observe(bounded(call).await)
    }

    /// Reports a refused token to readiness and the metric; any success clears that report.
    fn observe<T>(&self, r: Result<T, PortError>) -> Result<T, PortError> {
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

    async fn work(&self, id: &str, work: &Work, mut held: Held) -> Outcome {
        let summary = match work {
            Work::Put(r, _) => Summary::from_request(r).with_notices(&held.data.notices),
            Work::Deleted => Summary::from_plugin_data(id, &held.data),
        };
        if held.phase == Phase::Post
            && let Err(o) = self.post_roots(id, work, &summary, &mut held).await
        {
            return o;
        }
        let all = reviews(work);
        let mut roots_changed = false;
        if !held.data.messages.is_empty()
            && (all.len() > held.data.reviews_count as usize
                || !held.late.is_empty()
                || held.recover.is_some())
        {
            match self.post_replies(id, &summary, all, &mut held).await {
                Ok(changed) => roots_changed = changed,
                Err(o) => return o,
            }
        }
        let resolution = target(work);
        let resolving =
            resolution != Resolution::Unresolved && held.data.resolution == Resolution::Unresolved;
        // After a takeover, whether the requester was already told is checked while the
        // resolution is not yet in `held` (the check renews the claim, which records it).
        let told = match resolving {
            true => match self.requester_told(id, &summary, &mut held).await {
                Ok(told) => told,
                Err(o) => return o,
            },
            false => false,
        };
        // Renewed before the resolution is set in `held`: a renewal records progress, and the
        // resolution may only be recorded once the posts show it.
        if (resolving || roots_changed)
            && let Err(o) = self.renew(id, &mut held).await
        {
            return o;
        }
        if resolving {
            held.data.resolution = resolution;
            held.owed.clear();
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
                return self.save_then(id, &mut held, Leave::Release, o).await;
            }
            if resolving
                && let Err(o) = self.notify_requester(id, &final_summary, &held, told).await
            {
                // Held back by the rate limit: not recorded as resolved yet, so the retry
                // tells the requester (and re-applies the root updates).
                held.data.resolution = Resolution::Unresolved;
                return self.save_then(id, &mut held, Leave::Release, o).await;
            }
        }
        if let Err(o) = self.send_notices(id, work, &summary, &mut held).await {
            return o;
        }
        // Reactions only once the progress is saved and the claim released: cosmetic calls
        // must not hold the claim (or widen the window in which a crash repeats a post).
        let roots = resolving.then(|| held.data.messages.clone());
        let outcome = self
            .save_then(id, &mut held, Leave::Release, Outcome::Done)
            .await;
        if let Some(roots) = roots {
            self.react_roots(id, held.data.resolution, &roots).await;
        }
        outcome
    }
}
