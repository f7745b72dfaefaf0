//! The processor's Mattermost side: root posts to every routed channel (only those still
//! missing), root updates, and the requester's DM on resolution.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::{Held, Processor, bounded, retry};
use crate::access::{Resolution, SentMessage};
use crate::bridge::claim::Phase;
use crate::bridge::ports::{Chat, NewPost, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;
use crate::bridge::work::{Summary, Work};
use crate::route::{Env, Recipient};

/// Longest a root's reaction may take: it is cosmetic, so it gets no long retries.
const REACTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

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
            return Ok(());
        };
        let routed = self.routing.recipients(&Env::from(req.as_ref()));
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

    pub(super) async fn resolve(&self, r: &Recipient) -> Result<Option<String>, PortError> {
        match bounded(self.chat.resolve(r)).await {
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

    /// The requester gets a DM with the outcome when their Teleport name is an e-mail, the
    /// DMs are on, and the request was posted to someone: as upstream, a request nobody was
    /// told about gets no message at all.
    ///
    /// Held back by the rate limit, it hands back the wait: the message is still owed.
    pub(super) async fn notify_requester(
        &self,
        id: &str,
        summary: &Summary,
        held: &Held,
    ) -> Result<(), Outcome> {
        if !self.notify_requester || !crate::route::recipient::is_email(&summary.user) {
            return Ok(());
        }
        if held.data.messages.is_empty() {
            tracing::debug!(request_id = %id, "request was never posted; not notifying the requester");
            return Ok(());
        }
        let recipient = Recipient::Email(summary.user.to_lowercase());
        let channel = match self.resolve(&recipient).await {
            Ok(Some(channel)) => channel,
            Err(e @ PortError::Throttled { .. }) => return Err(retry(e)),
            _ => {
                tracing::debug!(request_id = %id, "requester has no Mattermost account by e-mail; not notifying them");
                return Ok(());
            }
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
            Err(e @ PortError::Throttled { .. }) => return Err(retry(e)),
            Err(e) => {
                self.metrics.sent("requester", false);
                tracing::warn!(request_id = %id, error = %e, "could not notify the requester");
            }
        }
        Ok(())
    }
}
