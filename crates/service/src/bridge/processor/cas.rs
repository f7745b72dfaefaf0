//! The processor's plugin-data writes, all compare-and-swap through the [`Store`] port:
//! take the claim (or see that another replica holds it), renew it before each batch of
//! Mattermost writes, and record progress with the claim released, or left for a takeover
//! when something may have been posted without an answer.

use super::recover::Window;
use super::{BUSY_WAIT, FRESH, Held, Processor, retry, target};
use crate::access::{PluginData, RawData, Resolution};
use crate::bridge::claim::{self, Claim, Phase};
use crate::bridge::owed;
use crate::bridge::ports::{Chat, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;
use crate::bridge::work::{Work, reviews};

fn encode(data: &PluginData, claim: Option<&Claim>, owed: &[String]) -> RawData {
    let mut m = data.encode();
    m.insert(
        claim::KEY.into(),
        claim.map(Claim::encode).unwrap_or_default(),
    );
    m.insert(owed::KEY.into(), owed::encode(owed));
    m
}

fn held(
    data: PluginData,
    written: RawData,
    phase: Phase,
    since: u64,
    recover: Option<Window>,
    owed: Vec<String>,
) -> Held {
    Held {
        data,
        written,
        phase,
        renewed: std::time::Instant::now(),
        since,
        recover,
        owed,
        late: Default::default(),
    }
}

/// How an attempt leaves the claim when it records its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Everything posted is recorded: the claim goes.
    Release,
    /// Kept for the current phase (the lease renewed): work goes on.
    Keep,
    /// Something may have been posted and not recorded (a call sent without an answer, or
    /// a batch that partly failed). The claim stays, so whoever comes next looks for such
    /// posts first; `wait` keeps the full lease (an unanswered post may still land), else
    /// it is left expired and the next attempt may take over at once.
    Recover { wait: bool },
}

/// `Expect` for a write of `set` over `stored`: the values exactly as read (not re-encoded,
/// so data written by the Go plugin with other formatting still compares equal), and ""
/// for keys we add.
fn as_stored(stored: &RawData, set: &RawData) -> RawData {
    let mut expect = stored.clone();
    for k in set.keys() {
        expect.entry(k.clone()).or_default();
    }
    expect
}

/// Plugin data as first written for a new request (upstream keys, from the request).
fn initial_data(work: &Work) -> Option<PluginData> {
    let Work::Put(r, _) = work else { return None };
    Some(PluginData {
        user: r.user.clone(),
        roles: r.roles.clone(),
        resources: r.resources.iter().map(ToString::to_string).collect(),
        request_reason: r.request_reason.clone(),
        system_annotations: r.system_annotations.clone(),
        suggested_reviewers: r.suggested_reviewers.clone(),
        max_duration: r.max_duration,
        ..PluginData::default()
    })
}

/// Whether `data` lags behind `work` (something to post or update).
fn behind(work: &Work, data: &PluginData, owed: &[String]) -> bool {
    if data.resolution != Resolution::Unresolved {
        // A resolved request is final: repeated events and a later deletion are no-ops.
        return false;
    }
    if !owed.is_empty() && matches!(work, Work::Put(..)) {
        return true;
    }
    let new_reviews = reviews(work).len() > data.reviews_count as usize;
    let resolved = target(work) != Resolution::Unresolved;
    resolved || (new_reviews && !data.messages.is_empty())
}

/// Whether [`Processor::acquire`] would find nothing to do for `work` over `stored` (the
/// request's plugin data, `None` when it has none): no claim, and the posts already show
/// everything `work` asks for. The catch-up queues only the requests for which this is false,
/// so a resync of many requests that did not change reads and writes nothing more.
pub fn settled(work: &Work, stored: Option<&RawData>) -> bool {
    let Some(stored) = stored else {
        // Without plugin data only a request seen pending is posted (see `acquire`).
        return !work.was_pending();
    };
    if stored.get(claim::KEY).is_some_and(|c| !c.is_empty()) {
        // Held, or left behind by a replica that died: the processor decides.
        return false;
    }
    let owed = owed::decode(stored.get(owed::KEY));
    PluginData::decode(stored).is_ok_and(|data| !behind(work, &data, &owed))
}

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    /// Takes the claim when there is work; `None` when the posts are already current.
    pub(super) async fn acquire(&self, id: &str, work: &Work) -> Result<Option<Held>, Acquire> {
        let now = claim::now_ms();
        let Some(stored) = self
            .store
            .get(id)
            .await
            .map_err(|e| Acquire::Stop(retry(e)))?
        else {
            let Some(data) = initial_data(work).filter(|_| work.was_pending()) else {
                // Never seen pending (resolved before the first listing, or deleted): there
                // is nothing to post, as upstream, so a first start does not post history.
                return Ok(None);
            };
            let c = Claim::new(&self.owner, Phase::Post, now);
            let set = encode(&data, Some(&c), &[]);
            let expect = set.keys().map(|k| (k.clone(), String::new())).collect();
            return match self.store.update(id, set.clone(), expect).await {
                Ok(()) => Ok(Some(held(data, set, Phase::Post, now, None, Vec::new()))),
                Err(PortError::Conflict) => Err(Acquire::Again),
                Err(e) => Err(Acquire::Stop(retry(e))),
            };
        };
        let data =
            PluginData::decode(&stored).map_err(|e| Acquire::Stop(Outcome::Fail(e.to_string())))?;
        let held_claim = stored.get(claim::KEY).and_then(|c| Claim::parse(c));
        let owed = owed::decode(stored.get(owed::KEY));
        // Every attempt releases its claim, so a live one is another replica at work, or
        // one that may have posted without an answer (this one included): wait out its lease.
        if let Some(c) = &held_claim
            && !c.expired(now)
        {
            // Check back soon: the holder usually finishes in milliseconds, and if it
            // died the lease runs out within the queue's retry budget.
            let wait = c.remaining(now).min(BUSY_WAIT)
                + std::time::Duration::from_millis(rand::random_range(10..100));
            return Err(Acquire::Stop(Outcome::Wait {
                reason: format!("another replica ({}) is updating this request", c.owner),
                after: wait,
            }));
        }
        let phase = match &held_claim {
            Some(c) => c.phase,
            None if !owed.is_empty() && matches!(work, Work::Put(..)) => Phase::Post,
            None => Phase::Update,
        };
        if phase == Phase::Update && !behind(work, &data, &owed) && !self.notices_due(work, &data) {
            if held_claim.is_none() {
                return Ok(None);
            }
            // A stale claim with nothing left to do: its holder recorded all it posted (a
            // reply or the requester's message leaves the request behind until recorded),
            // so it is just released.
            let set = encode(&data, None, &owed);
            let expect = as_stored(&stored, &set);
            return match self.store.update(id, set, expect).await {
                Ok(()) | Err(PortError::NotFound) => Ok(None),
                Err(PortError::Conflict) => Err(Acquire::Again),
                Err(e) => Err(Acquire::Stop(retry(e))),
            };
        }
        // A claim still there means its holder was interrupted (it died, stalled, or could
        // not tell whether a post was made): what it posted since its last claim write may be
        // unrecorded.
        let recover = held_claim.as_ref().map(|c| Window {
            since: c.began(),
            until: c.until,
        });
        if let Some(c) = &held_claim {
            tracing::info!(request_id = %id, holder = %c.owner, "taking over an interrupted claim on this request");
        }
        let since = recover.map_or(now, |w| w.since);
        let c = Claim::new(&self.owner, phase, since);
        let set = encode(&data, Some(&c), &owed);
        let expect = as_stored(&stored, &set);
        match self.store.update(id, set.clone(), expect).await {
            Ok(()) => Ok(Some(held(data, set, phase, since, recover, owed))),
            Err(PortError::Conflict) => Err(Acquire::Again),
            Err(e) => Err(Acquire::Stop(retry(e))),
        }
    }

    /// Makes sure the claim is ours and fresh before a batch of Mattermost writes (fencing):
    /// a replica that stalled past its lease learns it here, before writing anything stale.
    /// Records the progress so far with it.
    pub(super) async fn renew(&self, id: &str, held: &mut Held) -> Result<(), Outcome> {
        if held.renewed.elapsed() < FRESH {
            return Ok(());
        }
        match self.write(id, held, Leave::Keep).await {
            Ok(()) => Ok(()),
            Err(PortError::Conflict) => {
                tracing::warn!(request_id = %id, "this replica's claim on the request expired and another took over; leaving the work to it");
                self.metrics.cas_conflicts.inc();
                Err(Outcome::Done)
            }
            Err(PortError::NotFound) => Err(Outcome::Done),
            Err(e) => Err(retry(e)),
        }
    }

    /// The one compare-and-swap write of a held request: its progress, with the claim as
    /// `leave` says, expecting exactly what we wrote last.
    pub(super) async fn write(
        &self,
        id: &str,
        held: &mut Held,
        leave: Leave,
    ) -> Result<(), PortError> {
        let c = match leave {
            Leave::Release => None,
            Leave::Keep | Leave::Recover { wait: true } => {
                Some(Claim::new(&self.owner, held.phase, held.since))
            }
            Leave::Recover { wait: false } => {
                Some(Claim::expired_now(&self.owner, held.phase, held.since))
            }
        };
        let set = encode(&held.data, c.as_ref(), &held.owed);
        self.store
            .update(id, set.clone(), held.written.clone())
            .await?;
        held.written = set;
        held.renewed = std::time::Instant::now();
        Ok(())
    }

    /// Records progress and leaves the claim as `leave` says; then `then`.
    pub(super) async fn save_then(
        &self,
        id: &str,
        held: &mut Held,
        leave: Leave,
        then: Outcome,
    ) -> Outcome {
        match self.write(id, held, leave).await {
            Ok(()) => then,
            // The request is gone; its plugin data with it. Nothing left to record.
            Err(PortError::NotFound) => then,
            Err(PortError::Conflict) => {
                // Our claim expired and another replica took over: it finishes the work.
                tracing::warn!(request_id = %id, "lost the claim on this request to another replica; leaving the rest to it");
                self.metrics.cas_conflicts.inc();
                match then {
                    Outcome::Done => Outcome::Done,
                    _ => Outcome::Retry {
                        reason: "claim lost".into(),
                        after: None,
                    },
                }
            }
            Err(e) => retry(e),
        }
    }
}

pub(super) enum Acquire {
    Again,
    Stop(Outcome),
}
