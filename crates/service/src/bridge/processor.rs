//! Brings a request's Mattermost posts up to date with its latest state, exactly once across
//! replicas: claim the request in plugin data (compare-and-swap), post root messages, thread
//! replies for new reviews, update the roots and tell the requester on resolution, then
//! record the progress and release the claim in one write.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::join_all;

use super::claim::{self, Claim, Phase};
use super::metrics::BridgeMetrics;
use super::ports::{Chat, Map, NewPost, PortError, Store};
use super::queue::Outcome;
use super::render::Renderer;
use super::work::{Summary, Work, resolution_of, reviews};
use crate::access::{PluginData, Resolution, SentMessage};
use crate::route::{Env, PLUGIN_NAME, Recipient, Routing};

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
    pub metrics: BridgeMetrics,
}

/// The claim we hold and the plugin data as we last wrote it (the next write's `Expect`).
struct Held {
    data: PluginData,
    written: Map,
    phase: Phase,
    /// When the claim was last written (renewed).
    renewed: std::time::Instant,
}

fn retry(e: PortError) -> Outcome {
    match e {
        PortError::Retry { reason, after } => Outcome::Retry { reason, after },
        PortError::Throttled { after } => Outcome::Wait {
            reason: "Mattermost's rate limit".into(),
            after,
        },
        PortError::Conflict => Outcome::Retry {
            reason: "plugin data changed concurrently".into(),
            after: None,
        },
        PortError::NotFound => Outcome::Done,
        PortError::Fatal(m) => Outcome::Fail(m),
    }
}

fn encode(data: &PluginData, claim: Option<&Claim>) -> Map {
    let mut m = data.encode();
    m.insert(
        claim::KEY.into(),
        claim.map(Claim::encode).unwrap_or_default(),
    );
    m
}

/// `Expect` for a write of `set` over `stored`: the values exactly as read (not re-encoded,
/// so data written by the Go plugin with other formatting still compares equal), and ""
/// for keys we add.
fn as_stored(stored: &Map, set: &Map) -> Map {
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

/// What the target resolution is, if the request is finished.
fn target(work: &Work) -> Resolution {
    match work {
        Work::Put(r, _) => resolution_of(r.state),
        Work::Deleted => Resolution::Expired,
    }
}

/// Whether `data` lags behind `work` (something to post or update).
fn behind(work: &Work, data: &PluginData) -> bool {
    if data.resolution != Resolution::Unresolved {
        // A resolved request is final: repeated events and a later deletion are no-ops.
        return false;
    }
    let new_reviews = reviews(work).len() > data.reviews_count as usize;
    let resolved = target(work) != Resolution::Unresolved;
    resolved || (new_reviews && !data.messages.is_empty())
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

    /// Takes the claim when there is work; `None` when the posts are already current.
    async fn acquire(&self, id: &str, work: &Work) -> Result<Option<Held>, Acquire> {
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
            let c = Claim::new(&self.owner, Phase::Post);
            let set = encode(&data, Some(&c));
            let expect = set.keys().map(|k| (k.clone(), String::new())).collect();
            return match self.store.update(id, set.clone(), expect).await {
                Ok(()) => Ok(Some(Held {
                    data,
                    written: set,
                    phase: Phase::Post,
                    renewed: std::time::Instant::now(),
                })),
                Err(PortError::Conflict) => Err(Acquire::Again),
                Err(e) => Err(Acquire::Stop(retry(e))),
            };
        };
        let data =
            PluginData::decode(&stored).map_err(|e| Acquire::Stop(Outcome::Fail(e.to_string())))?;
        let held_claim = stored.get(claim::KEY).and_then(|c| Claim::parse(c));
        if let Some(c) = &held_claim
            && c.owner != self.owner
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
        let phase = held_claim.as_ref().map_or(Phase::Update, |c| c.phase);
        if phase == Phase::Update && !behind(work, &data) {
            if held_claim.is_none() {
                return Ok(None);
            }
            // A stale claim with nothing left to do: just release it.
            let set = encode(&data, None);
            let expect = as_stored(&stored, &set);
            return match self.store.update(id, set, expect).await {
                Ok(()) | Err(PortError::NotFound) => Ok(None),
                Err(PortError::Conflict) => Err(Acquire::Again),
                Err(e) => Err(Acquire::Stop(retry(e))),
            };
        }
        if held_claim.is_some() {
            tracing::info!(request_id = %id, "taking over an expired claim on this request");
        }
        let c = Claim::new(&self.owner, phase);
        let set = encode(&data, Some(&c));
        let expect = as_stored(&stored, &set);
        match self.store.update(id, set.clone(), expect).await {
            Ok(()) => Ok(Some(Held {
                data,
                written: set,
                phase,
                renewed: std::time::Instant::now(),
            })),
            Err(PortError::Conflict) => Err(Acquire::Again),
            Err(e) => Err(Acquire::Stop(retry(e))),
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
            for (i, review) in all.iter().enumerate().skip(from) {
                if let Err(o) = self.renew(id, &mut held).await {
                    return o;
                }
                let body = self.render.reply(&summary, review);
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
                        Err(e @ PortError::Throttled { .. }) => {
                            return self
                                .save_then(id, &mut held, Some(Phase::Update), retry(e))
                                .await;
                        }
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
                self.notify_requester(id, &final_summary).await;
            }
        }
        self.save_then(id, &mut held, None, Outcome::Done).await
    }

    async fn post_roots(
        &self,
        id: &str,
        work: &Work,
        summary: &Summary,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let Work::Put(req, _) = work else {
            // Deleted before the roots were posted: nothing to post any more.
            return Ok(());
        };
        let env = Env {
            user: req.user.clone(),
            roles: req.roles.clone(),
            suggested_reviewers: req.suggested_reviewers.clone(),
            system_annotations: req.system_annotations.clone(),
            request_reason: req.request_reason.clone(),
            creation_time: req
                .created
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            expiry: req
                .expires
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            plugin_name: PLUGIN_NAME.into(),
        };
        let routed = self.routing.recipients(&env);
        if routed.is_empty() {
            tracing::warn!(request_id = %id, "No channel to post: no access monitoring rule, role_to_recipients entry or suggested reviewer matched");
        }
        let resolved = join_all(routed.iter().map(|r| self.resolve(&r.recipient))).await;
        let mut channels = Vec::new();
        let mut seen: BTreeSet<String> = held
            .data
            .messages
            .iter()
            .map(|m| m.channel_id.clone())
            .collect();
        for (r, res) in routed.iter().zip(resolved) {
            match res {
                Ok(Some(ch)) => {
                    if seen.insert(ch.clone()) {
                        channels.push(ch);
                    }
                }
                Ok(None) => {
                    tracing::warn!(request_id = %id, recipient = %r.recipient, "recipient does not resolve to a Mattermost channel; skipping it")
                }
                Err(e) => return Err(self.save_then(id, held, Some(Phase::Post), retry(e)).await),
            }
        }
        self.renew(id, held).await?;
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let bodies = self.render.roots(summary, &names);
        let posts = channels.iter().zip(bodies).map(|(ch, body)| {
            bounded(self.chat.post(NewPost {
                channel_id: ch.clone(),
                root_id: None,
                body,
                idempotency_key: format!("tm:{id}:root:{ch}"),
            }))
        });
        let mut failure = None;
        for (ch, r) in channels.iter().zip(join_all(posts).await) {
            match r {
                Ok(post_id) => {
                    self.metrics.sent("root", true);
                    held.data.messages.push(SentMessage {
                        channel_id: ch.clone(),
                        post_id,
                    });
                }
                // Its turn under the rate limit comes later: not a failure.
                Err(e @ PortError::Throttled { .. }) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    self.metrics.sent("root", false);
                    tracing::warn!(request_id = %id, channel_id = %ch, error = %e, "Failed to post a message");
                    // Only temporary failures are retried; a refusal (bot not in the channel,
                    // message rejected) would fail the same way again.
                    if matches!(e, PortError::Retry { .. }) {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            // Keep the Post phase: the retry posts only to the channels still missing.
            return Err(self.save_then(id, held, Some(Phase::Post), retry(e)).await);
        }
        held.phase = Phase::Update;
        Ok(())
    }

    async fn update_roots(&self, id: &str, summary: &Summary, held: &Held) -> Result<(), Outcome> {
        let names: Vec<&str> = held
            .data
            .messages
            .iter()
            .map(|m| m.channel_id.as_str())
            .collect();
        let bodies = self.render.roots(summary, &names);
        let updates = held
            .data
            .messages
            .iter()
            .zip(bodies)
            .map(|(m, body)| bounded(self.chat.update(&m.channel_id, &m.post_id, body)));
        let mut failure = None;
        for (m, r) in held.data.messages.iter().zip(join_all(updates).await) {
            match r {
                Ok(()) => self.metrics.updated(true),
                // A deleted post cannot be updated; the others still are.
                Err(PortError::NotFound) => {
                    tracing::warn!(request_id = %id, post_id = %m.post_id, "post no longer exists; not updating it")
                }
                Err(e @ PortError::Throttled { .. }) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    self.metrics.updated(false);
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), |e| Err(retry(e)))
    }

    async fn resolve(&self, r: &Recipient) -> Result<Option<String>, PortError> {
        match bounded(self.chat.resolve(r)).await {
            Err(PortError::NotFound) | Err(PortError::Fatal(_)) => Ok(None),
            other => other,
        }
    }

    /// The requester gets a DM with the outcome when their Teleport name is an e-mail.
    async fn notify_requester(&self, id: &str, summary: &Summary) {
        if !crate::route::recipient::is_email(&summary.user) {
            return;
        }
        let recipient = Recipient::Email(summary.user.to_lowercase());
        let Ok(Some(channel)) = self.resolve(&recipient).await else {
            tracing::debug!(request_id = %id, "requester has no Mattermost account by e-mail; not notifying them");
            return;
        };
        let post = NewPost {
            channel_id: channel,
            root_id: None,
            body: self.render.outcome(summary),
            idempotency_key: format!("tm:{id}:outcome"),
        };
        match bounded(self.chat.post(post)).await {
            Ok(_) => {
                self.metrics.sent("requester", true);
                tracing::info!(request_id = %id, "Successfully notified user");
            }
            Err(e) => {
                self.metrics.sent("requester", false);
                tracing::warn!(request_id = %id, error = %e, "could not notify the requester");
            }
        }
    }

    /// Makes sure the claim is ours and fresh before a batch of Mattermost writes (fencing):
    /// a replica that stalled past its lease learns it here, before writing anything stale.
    /// Records the progress so far with it.
    async fn renew(&self, id: &str, held: &mut Held) -> Result<(), Outcome> {
        if held.renewed.elapsed() < FRESH {
            return Ok(());
        }
        match self.write(id, held, Some(held.phase)).await {
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

    /// The one compare-and-swap write of a held request: its progress, with the claim renewed
    /// (`Some(phase)`) or released (`None`), expecting exactly what we wrote last.
    async fn write(
        &self,
        id: &str,
        held: &mut Held,
        claim: Option<Phase>,
    ) -> Result<(), PortError> {
        let c = claim.map(|p| Claim::new(&self.owner, p));
        let set = encode(&held.data, c.as_ref());
        self.store
            .update(id, set.clone(), held.written.clone())
            .await?;
        held.written = set;
        held.renewed = std::time::Instant::now();
        Ok(())
    }

    /// Records progress; `keep` renews the claim (work remains), `None` releases it.
    async fn save_then(
        &self,
        id: &str,
        held: &mut Held,
        keep: Option<Phase>,
        then: Outcome,
    ) -> Outcome {
        match self.write(id, held, keep).await {
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

enum Acquire {
    Again,
    Stop(Outcome),
}
