//! The processor's reminders (see [`crate::remind`]): what is due, sent while the claim is
//! held and recorded in plugin data's `notices` with the same progress write as the posts,
//! so each reminder, the escalation and each requester notice goes out once.

use std::time::Duration;

use futures_util::future::join_all;

use super::cas::Leave;
use super::{Held, Processor, retry};
use crate::access::{AccessRequest, PluginData, SentMessage};
use crate::bridge::ports::{Chat, Marker, MarkerKind, NewPost, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;
use crate::bridge::work::{Summary, Work};
use crate::mattermost::render::Ending;
use crate::remind::schedule::Plan;
use crate::route::Recipient;

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    /// Whether a notice is due that `data` does not record as sent (then the claim is
    /// taken even when the posts are current).
    pub(super) fn notices_due(&self, work: &Work, data: &PluginData) -> bool {
        match (&self.reminders, work) {
            (Some(rem), Work::Put(r, _)) => rem.due(r, &data.notices).any(),
            _ => false,
        }
    }

    /// Sends what is due and records it in `held` (saved by the caller's final write).
    pub(super) async fn send_notices(
        &self,
        id: &str,
        work: &Work,
        summary: &Summary,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let (Some(rem), Work::Put(r, _)) = (&self.reminders, work) else {
            return Ok(());
        };
        let due = rem.due(r, &held.data.notices);
        if !due.any() {
            return Ok(());
        }
        self.renew(id, held).await?;
        let plan = rem.plan(r);
        if let Some(point) = due.reminder {
            self.remind(id, r, summary, point, &plan, held).await?;
            held.data.notices.reminded = Some(point.as_secs());
        }
        if due.escalate {
            self.escalate(id, summary, &plan, held).await?;
            held.data.notices.escalated = true;
        }
        if due.reminder.is_some() || due.escalate {
            // The roots show how long the request has waited; cosmetic, so not retried.
            let s = summary.clone().with_notices(&held.data.notices);
            if let Err(o) = self.update_roots(id, &s, held).await {
                tracing::debug!(request_id = %id, outcome = ?o, "could not mark the posts as waiting");
            }
        }
        for (on, ending, at) in [
            (due.expiring, Ending::Request, r.pending_expires),
            (due.ending, Ending::Access, r.expires),
        ] {
            if let (true, Some(at)) = (on, at) {
                self.tell_requester(id, summary, ending, at, held).await?;
                match ending {
                    Ending::Request => held.data.notices.expiring = true,
                    Ending::Access => held.data.notices.ending = true,
                }
            }
        }
        Ok(())
    }

    /// A reply in the thread of every root post.
    async fn remind(
        &self,
        id: &str,
        r: &AccessRequest,
        summary: &Summary,
        point: Duration,
        plan: &Plan,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let mentions = join_all(
            r.suggested_reviewers
                .iter()
                .map(|u| self.call(self.chat.username(u))),
        )
        .await
        .into_iter()
        .filter_map(|u| u.ok().flatten())
        .collect::<Vec<_>>();
        let body = self
            .render
            .reminder(summary, point, &mentions, plan.mention_channel);
        let kind = MarkerKind::Reminder {
            after: point.as_secs(),
        };
        // After a takeover, the threads say where the interrupted holder already reminded.
        let made = match held.recover {
            Some(_) => match self.thread_markers(id, &held.data.messages).await {
                Ok(made) => made,
                Err(e) => {
                    let leave = Leave::Recover { wait: false };
                    return Err(self.save_then(id, held, leave, retry(e)).await);
                }
            },
            None => Default::default(),
        };
        let due: Vec<SentMessage> = held
            .data
            .messages
            .iter()
            .filter(|m| !made.contains(&(m.channel_id.clone(), kind)))
            .cloned()
            .collect();
        let posts = due.iter().map(|m| {
            self.call(self.chat.post(NewPost {
                channel_id: m.channel_id.clone(),
                root_id: Some(m.post_id.clone()),
                body: Marker::new(id, &m.channel_id, kind).mark(body.clone()),
                idempotency_key: format!("tm:{id}:remind:{}:{}", point.as_secs(), m.channel_id),
            }))
        });
        let (mut failure, mut sent, mut uncertain) = (None, false, false);
        for r in join_all(posts).await {
            match r {
                Ok(_) => {
                    self.metrics.reminded("reminder", "sent");
                    sent = true;
                }
                Err(e) if e.is_temporary() => {
                    self.metrics.reminded("reminder", failed(&e));
                    uncertain |= matches!(e, PortError::Uncertain(_));
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    self.metrics.reminded("reminder", "failed");
                    tracing::warn!(request_id = %id, error = %e, "Failed to post a reminder; skipping it");
                }
            }
        }
        if let Some(e) = failure {
            // Not recorded, so it is sent again; where part of it went out (or may have), the
            // claim is left so the retry reads the threads first instead of repeating it.
            let leave = match (uncertain, sent) {
                (true, _) => Leave::Recover { wait: true },
                (false, true) => Leave::Recover { wait: false },
                (false, false) => Leave::Release,
            };
            return Err(self.save_then(id, held, leave, retry(e)).await);
        }
        tracing::info!(request_id = %id, after_s = point.as_secs(), threads = held.data.messages.len(), "reminded the reviewers");
        Ok(())
    }

    /// The request posted to the escalation recipients, as a root post like the others
    /// (buttons, updates on resolution: it joins `messages`).
    async fn escalate(
        &self,
        id: &str,
        summary: &Summary,
        plan: &Plan,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let mut channels: Vec<String> = Vec::new();
        for to in &plan.escalate_to {
            match self.resolve(to).await {
                Ok(Some(ch)) => {
                    let known = held.data.messages.iter().any(|m| m.channel_id == ch);
                    if !known && !channels.contains(&ch) {
                        channels.push(ch);
                    }
                }
                Ok(None) => {
                    self.metrics.reminded("escalation", "skipped");
                    tracing::warn!(request_id = %id, recipient = %to, "escalation recipient does not resolve to a Mattermost channel; skipping it");
                }
                Err(e) => {
                    return Err(self.save_then(id, held, Leave::Release, retry(e)).await);
                }
            }
        }
        if let Some(window) = held.recover
            && !channels.is_empty()
        {
            // Escalation posts are roots in their channels: adopted the way roots are.
            let mut missing: Vec<(String, String)> =
                channels.iter().map(|c| (c.clone(), c.clone())).collect();
            if let Err(e) = self.adopt_roots(id, window, &mut missing, held).await? {
                let leave = Leave::Recover { wait: false };
                return Err(self.save_then(id, held, leave, retry(e)).await);
            }
            channels = missing.into_iter().map(|(c, _)| c).collect();
        }
        let mut s = summary.clone().with_notices(&held.data.notices);
        s.escalated = true;
        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
        let bodies = self.render.roots(&s, &names);
        let posts = channels.iter().zip(bodies).map(|(ch, body)| {
            self.call(self.chat.post(NewPost {
                channel_id: ch.clone(),
                root_id: None,
                body: Marker::new(id, ch, MarkerKind::Root).mark(body),
                idempotency_key: format!("tm:{id}:escalate:{ch}"),
            }))
        });
        let mut failure = None;
        for (ch, r) in channels.iter().zip(join_all(posts).await) {
            match r {
                Ok(post_id) => {
                    self.metrics.reminded("escalation", "sent");
                    held.data.messages.push(SentMessage {
                        channel_id: ch.clone(),
                        post_id,
                    });
                }
                Err(e) => {
                    self.metrics.reminded("escalation", failed(&e));
                    tracing::warn!(request_id = %id, channel_id = %ch, error = %e, "Failed to post an escalation");
                    // A refusal (bot not in the channel) would fail the same way again.
                    if e.is_temporary() {
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            // The posts made are recorded; the retry posts only to the channels missing (and
            // looks for one that got no answer first).
            let leave = match e {
                PortError::Uncertain(_) => Leave::Recover { wait: true },
                _ => Leave::Release,
            };
            return Err(self.save_then(id, held, leave, retry(e)).await);
        }
        tracing::info!(request_id = %id, channels = channels.len(), "escalated the request");
        Ok(())
    }

    /// The requester's DM before their request expires or their access ends, by e-mail as
    /// the outcome DM; as there, a request nobody was told about gets none.
    async fn tell_requester(
        &self,
        id: &str,
        summary: &Summary,
        ending: Ending,
        at: time::OffsetDateTime,
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let key = match ending {
            Ending::Request => "expiring",
            Ending::Access => "ending",
        };
        if held.data.messages.is_empty() || !crate::route::recipient::is_email(&summary.user) {
            self.metrics.reminded("expiry_notice", "skipped");
            return Ok(());
        }
        let recipient = Recipient::Email(summary.user.to_lowercase());
        let channel = match self.resolve(&recipient).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                self.metrics.reminded("expiry_notice", "skipped");
                tracing::debug!(request_id = %id, "requester has no Mattermost account by e-mail; no expiry notice");
                return Ok(());
            }
            Err(e) => {
                return Err(self.save_then(id, held, Leave::Release, retry(e)).await);
            }
        };
        let marker = Marker::new(
            id,
            &channel,
            MarkerKind::Expiry {
                access: matches!(ending, Ending::Access),
            },
        );
        if let Some(window) = held.recover {
            match self
                .renewing(id, held, self.adopt_one(&marker, window))
                .await?
            {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => {
                    let leave = Leave::Recover { wait: false };
                    return Err(self.save_then(id, held, leave, retry(e)).await);
                }
            }
        }
        let post = NewPost {
            channel_id: channel,
            root_id: None,
            body: marker.mark(self.render.expiry_notice(summary, ending, at)),
            idempotency_key: format!("tm:{id}:{key}"),
        };
        match self.call(self.chat.post(post)).await {
            Ok(_) => {
                self.metrics.reminded("expiry_notice", "sent");
                tracing::info!(request_id = %id, notice = key, "told the requester before the expiry");
                Ok(())
            }
            Err(e) if e.is_temporary() => {
                self.metrics.reminded("expiry_notice", failed(&e));
                let leave = match e {
                    PortError::Uncertain(_) => Leave::Recover { wait: true },
                    _ => Leave::Release,
                };
                Err(self.save_then(id, held, leave, retry(e)).await)
            }
            Err(e) => {
                self.metrics.reminded("expiry_notice", "failed");
                tracing::warn!(request_id = %id, error = %e, "could not send the requester's expiry notice");
                Ok(())
            }
        }
    }
}

/// The metric outcome of a notice that was not sent: held back by Mattermost's rate limit is
/// no failure (it is sent in its turn).
fn failed(e: &PortError) -> &'static str {
    match e {
        PortError::Throttled { .. } => "throttled",
        _ => "failed",
    }
}
