//! The processor's Mattermost side: root posts to every routed channel (only those still
//! missing; what cannot be posted stays owed), root updates, and the requester's DM on
//! resolution.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::cas::Leave;
use super::{Held, Processor, retry};
use crate::access::{Resolution, SentMessage};
use crate::bridge::claim::Phase;
use crate::bridge::ports::{Chat, Marker, MarkerKind, NewPost, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;
use crate::bridge::work::{Summary, Work};
use crate::route::{Env, Recipient};

/// Longest a root's reaction may take: it is cosmetic, so it gets no long retries.
const REACTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Recipients left without a root post in one attempt, and whether the attempt should be
/// retried soon (temporary failure, refused token) rather than at the next event or resync.
#[derive(Default)]
struct Owed {
    recipients: Vec<String>,
    retry: Option<PortError>,
    /// A create got no answer: the post may exist after all.
    uncertain: bool,
}

impl Owed {
    fn add<S, C, R>(&mut self, p: &Processor<S, C, R>, id: &str, recipient: &str, e: PortError) {
        if let PortError::Throttled { .. } = e {
            // Its turn under the rate limit comes later: not a failure (a failure found in
            // the same attempt decides how it is retried).
            tracing::debug!(request_id = %id, recipient, error = %e, "root post waits for its turn");
            self.retry.get_or_insert(e);
            self.recipients.push(recipient.to_string());
            return;
        }
        // A failure to retry decides how the attempt is retried; a refusal leaves a throttled
        // recipient's turn as it is.
        if e.is_temporary() && matches!(self.retry, Some(PortError::Throttled { .. })) {
            self.retry = None;
        }
        let reason = match &e {
            PortError::Unauthorized(_) => "unauthorized",
            e if e.is_temporary() => "temporary",
            _ => "refused",
        };
        p.metrics.owed.with_label_values(&[reason]).inc();
        if e.is_temporary() {
            self.uncertain |= matches!(e, PortError::Uncertain(_));
            tracing::warn!(request_id = %id, recipient, error = %e, "Failed to post a message; retrying");
            self.retry.get_or_insert(e);
        } else {
            tracing::warn!(request_id = %id, recipient, error = %e, "Failed to post a message; it stays owed and is posted at the next event or resync once fixed");
        }
        self.recipients.push(recipient.to_string());
    }
}

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    pub(super) async fn post_roots(
        &self,
        id: &str,
        work: &Work,
        summary: &Summary,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let Work::Put(req, _) = work else {
            // Deleted before the roots were posted: nothing to post any more.
            held.owed.clear();
            return Ok(());
        };
        let routed = self.routing.recipients(&Env::from(req.as_ref()));
        if routed.is_empty() {
            tracing::warn!(request_id = %id, "No channel to post: no access monitoring rule, role_to_recipients entry or suggested reviewer matched");
        }
        let resolved = join_all(
            routed
                .iter()
                .map(|r| self.call(self.chat.resolve(&r.recipient))),
        )
        .await;
        let mut owed = Owed::default();
        // (channel, recipient) still lacking a root.
        let mut missing: Vec<(String, String)> = Vec::new();
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
                        missing.push((ch, r.recipient.to_string()));
                    }
                }
                // No Mattermost account: skipped (the adapter warned), as upstream.
                Ok(None) => {}
                Err(e) => owed.add(self, id, &r.recipient.to_string(), e),
            }
        }
        if let Some(window) = held.recover
            && !missing.is_empty()
            && let Err(e) = self.adopt_roots(id, window, &mut missing, held).await?
        {
            let leave = Leave::Recover { wait: false };
            return Err(self.save_then(id, held, leave, retry(e)).await);
        }
        // Records what was adopted, before anything is posted.
        self.renew(id, held).await?;
        let channels: Vec<&str> = missing.iter().map(|(ch, _)| ch.as_str()).collect();
        let bodies = self.render.roots(summary, &channels);
        let posts = missing.iter().zip(bodies).map(|((ch, _), body)| {
            self.call(self.chat.post(NewPost {
                channel_id: ch.clone(),
                root_id: None,
                body: Marker::new(id, ch, MarkerKind::Root).mark(body),
                idempotency_key: format!("tm:{id}:root:{ch}"),
            }))
        });
        for ((ch, recipient), r) in missing.iter().zip(join_all(posts).await) {
            match r {
                Ok(post_id) => {
                    self.metrics.sent("root", true);
                    if held.data.reviews_count > 0 {
                        held.late.insert(ch.clone());
                    }
                    held.data.messages.push(SentMessage {
                        channel_id: ch.clone(),
                        post_id,
                    });
                }
                Err(e) => {
                    if !matches!(e, PortError::Throttled { .. }) {
                        self.metrics.sent("root", false);
                    }
                    owed.add(self, id, recipient, e);
                }
            }
        }
        held.owed = owed.recipients;
        if let Some(e) = owed.retry {
            // Everything posted is recorded and the rest is owed: the retry (or the next
            // event, or resync) posts only to the channels still missing. A post that got
            // no answer may exist: the claim stays, so the next attempt looks for it first.
            let leave = if owed.uncertain {
                Leave::Recover { wait: true }
            } else if held.late.is_empty() {
                Leave::Release
            } else {
                // Late roots still owe their replies: recovery reads the threads.
                Leave::Recover { wait: false }
            };
            return Err(self.save_then(id, held, leave, retry(e)).await);
        }
        held.phase = Phase::Update;
        Ok(())
    }

    pub(super) async fn update_roots(
        &self,
        id: &str,
        summary: &Summary,
        held: &Held,
    ) -> Result<(), Outcome> {
        let names: Vec<&str> = held
            .data
            .messages
            .iter()
            .map(|m| m.channel_id.as_str())
            .collect();
        let bodies = self.render.roots(summary, &names);
        let updates = held.data.messages.iter().zip(bodies).map(|(m, body)| {
            // Props are replaced whole: the marker goes with every update.
            let body = Marker::new(id, &m.channel_id, MarkerKind::Root).mark(body);
            self.call(self.chat.update(&m.channel_id, &m.post_id, body))
        });
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

    pub(super) async fn resolve(&self, r: &Recipient) -> Result<Option<String>, PortError> {
        match self.call(self.chat.resolve(r)).await {
            Err(PortError::NotFound) | Err(PortError::Fatal(_)) => Ok(None),
            other => other,
        }
    }

    /// A ✅ or ❌ on every root post once the request is approved or denied. Cosmetic: a
    /// failure (the bot may not react) is logged at debug and never holds up the request,
    /// and a crash before it only loses the reaction.
    pub(super) async fn react_roots(
        &self,
        id: &str,
        resolution: Resolution,
        roots: &[SentMessage],
    ) {
        let emoji = match resolution {
            Resolution::Approved => "white_check_mark",
            Resolution::Denied => "x",
            _ => return,
        };
        let reactions = roots
            .iter()
            .map(|m| tokio::time::timeout(REACTION_BUDGET, self.chat.react(&m.post_id, emoji)));
        for (m, r) in roots.iter().zip(join_all(reactions).await) {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(request_id = %id, post_id = %m.post_id, error = %e, "could not react to the post")
                }
                Err(_) => {
                    tracing::debug!(request_id = %id, post_id = %m.post_id, "reacting to the post took too long; leaving it")
                }
            }
        }
    }

    /// The requester's DM channel, when they are to be told the outcome: their Teleport
    /// name is an e-mail with a Mattermost account, the DMs are on, and the request was
    /// posted to someone (as upstream, a request nobody was told about gets no message).
    /// Held back by the rate limit, it hands back the wait: the message is still owed.
    async fn requester_channel(
        &self,
        id: &str,
        summary: &Summary,
        held: &Held,
    ) -> Result<Option<String>, PortError> {
        if !self.notify_requester || !crate::route::recipient::is_email(&summary.user) {
            return Ok(None);
        }
        if held.data.messages.is_empty() {
            tracing::debug!(request_id = %id, "request was never posted; not notifying the requester");
            return Ok(None);
        }
        let recipient = Recipient::Email(summary.user.to_lowercase());
        match self.resolve(&recipient).await {
            Ok(Some(channel)) => Ok(Some(channel)),
            Err(e @ PortError::Throttled { .. }) => Err(e),
            _ => {
                tracing::debug!(request_id = %id, "requester has no Mattermost account by e-mail; not notifying them");
                Ok(None)
            }
        }
    }

    /// After a takeover, before the resolution is recorded: whether the interrupted holder
    /// already told the requester (its message is adopted, not sent again).
    pub(super) async fn requester_told(
        &self,
        id: &str,
        summary: &Summary,
        held: &mut Held,
    ) -> Result<bool, Outcome> {
        let Some(window) = held.recover else {
            return Ok(false);
        };
        let channel = match self.requester_channel(id, summary, held).await {
            Ok(Some(channel)) => channel,
            Ok(None) => return Ok(false),
            Err(e) => {
                let leave = Leave::Recover { wait: false };
                return Err(self.save_then(id, held, leave, retry(e)).await);
            }
        };
        let marker = Marker::new(id, &channel, MarkerKind::Requester);
        match self
            .renewing(id, held, self.adopt_one(&marker, window))
            .await?
        {
            Ok(found) => Ok(found.is_some()),
            Err(e) => {
                let leave = Leave::Recover { wait: false };
                Err(self.save_then(id, held, leave, retry(e)).await)
            }
        }
    }

    /// Tells the requester the outcome (see [`Self::requester_channel`]) unless `told`.
    /// Held back by the rate limit, it hands back the wait: the message is still owed.
    pub(super) async fn notify_requester(
        &self,
        id: &str,
        summary: &Summary,
        held: &Held,
        told: bool,
    ) -> Result<(), Outcome> {
        if told {
            return Ok(());
        }
        let channel = match self.requester_channel(id, summary, held).await {
            Ok(Some(channel)) => channel,
            Ok(None) => return Ok(()),
            Err(e) => return Err(retry(e)),
        };
        let post = NewPost {
            body: Marker::new(id, &channel, MarkerKind::Requester)
                .mark(self.render.outcome(summary)),
            channel_id: channel,
            root_id: None,
            idempotency_key: format!("tm:{id}:outcome"),
        };
        match self.call(self.chat.post(post)).await {
            Ok(_) => {
                self.metrics.sent("requester", true);
                tracing::info!(request_id = %id, "Successfully notified user");
            }
            Err(e @ PortError::Throttled { .. }) => return Err(retry(e)),
            Err(e) => {
                self.metrics.sent("requester", false);
                tracing::warn!(request_id = %id, error = %e, "could not notify the requester");
            }
        }
        Ok(())
    }
}
