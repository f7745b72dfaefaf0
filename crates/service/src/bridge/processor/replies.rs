//! Thread replies: one under every root for each review, exactly once. Normally the replies
//! from `reviews_count` on are due (plus, for a root posted late, those before it); after a
//! takeover the threads themselves say which replies exist.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use super::cas::Leave;
use super::{Held, Processor, retry};
use crate::access::Review;
use crate::access::SentMessage;
use crate::bridge::ports::{Chat, Marker, MarkerKind, NewPost, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;
use crate::bridge::work::Summary;

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    /// Posts the replies still due; `Ok(true)` when there were new reviews (the roots show
    /// their counts, so they are updated).
    pub(super) async fn post_replies(
        &self,
        id: &str,
        summary: &Summary,
        all: &[Review],
        held: &mut Held,
    ) -> Result<bool, Outcome> {
        let from = held.data.reviews_count as usize;
        let made = match held.recover {
            Some(_) => match self.thread_markers(id, &held.data.messages).await {
                Ok(made) => Some(made),
                Err(e) => {
                    let leave = Leave::Recover { wait: false };
                    return Err(self.save_then(id, held, leave, retry(e)).await);
                }
            },
            None => None,
        };
        for (i, _) in all.iter().enumerate() {
            let due: Vec<SentMessage> = held
                .data
                .messages
                .iter()
                .filter(|m| match &made {
                    Some(made) => !made
                        .contains(&(m.channel_id.clone(), MarkerKind::Reply { review: i as u32 })),
                    None => i >= from || held.late.contains(&m.channel_id),
                })
                .cloned()
                .collect();
            if let Some(made) = &made {
                let adopted = held.data.messages.len() - due.len();
                if i >= from && adopted > 0 {
                    self.metrics
                        .adopted
                        .with_label_values(&[MarkerKind::Reply { review: 0 }.label()])
                        .inc_by(adopted as u64);
                    tracing::info!(request_id = %id, review = i, replies = adopted, found = made.len(), "adopted thread replies an interrupted replica made but did not record");
                }
            }
            if !due.is_empty() {
                self.renew(id, held).await?;
                self.reply_batch(id, summary, &all[..=i], &due, held)
                    .await?;
            }
            held.data.reviews_count = held.data.reviews_count.max(i as u32 + 1);
        }
        held.late.clear();
        Ok(all.len() > from)
    }

    /// The reply for review `reviews.len() - 1` under each of `due`. A temporary failure
    /// records the progress and ends the attempt; when some replies of the batch were made
    /// (or may have been), the claim is left so the next attempt reads the threads instead
    /// of posting them again.
    async fn reply_batch(
        &self,
        id: &str,
        summary: &Summary,
        reviews: &[Review],
        due: &[SentMessage],
        held: &mut Held,
    ) -> Result<(), Outcome> {
        let i = reviews.len() - 1;
        let body = self.render.reply(summary, reviews);
        let posts = due.iter().map(|m| {
            let marker = Marker::new(id, &m.channel_id, MarkerKind::Reply { review: i as u32 });
            self.call(self.chat.post(NewPost {
                channel_id: m.channel_id.clone(),
                root_id: Some(m.post_id.clone()),
                body: marker.mark(body.clone()),
                idempotency_key: format!("tm:{id}:review:{i}:{}", m.channel_id),
            }))
        });
        let (mut failure, mut made_some, mut uncertain) = (None, false, false);
        for r in join_all(posts).await {
            match r {
                Ok(_) => {
                    self.metrics.sent("reply", true);
                    made_some = true;
                }
                Err(e) if e.is_temporary() => {
                    // Held back by the rate limit is not a failure.
                    if !matches!(e, PortError::Throttled { .. }) {
                        self.metrics.sent("reply", false);
                    }
                    uncertain |= matches!(e, PortError::Uncertain(_));
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    self.metrics.sent("reply", false);
                    tracing::warn!(request_id = %id, error = %e, "Failed to post a review reply; skipping it");
                }
            }
        }
        let Some(e) = failure else { return Ok(()) };
        let leave = if uncertain {
            Leave::Recover { wait: true }
        } else if made_some || !held.late.is_empty() {
            Leave::Recover { wait: false }
        } else {
            Leave::Release
        };
        Err(self.save_then(id, held, leave, retry(e)).await)
    }

    /// `(channel, kind)` of the request's marked replies (reviews, reminders) already in
    /// the threads of its roots: what an interrupted holder may have posted unrecorded.
    pub(super) async fn thread_markers(
        &self,
        id: &str,
        roots: &[SentMessage],
    ) -> Result<BTreeSet<(String, MarkerKind)>, PortError> {
        let threads = join_all(roots.iter().map(|m| {
            self.call(self.chat.find(crate::bridge::ports::Place::Thread {
                root_id: &m.post_id,
            }))
        }))
        .await;
        let mut made = BTreeSet::new();
        for (m, found) in roots.iter().zip(threads) {
            let found = match found {
                Ok(f) => f,
                // A deleted root has no thread to reply in.
                Err(PortError::NotFound) => Vec::new(),
                Err(e) => return Err(e),
            };
            for f in found {
                if f.marker.request_id == id && f.marker.channel_id == m.channel_id {
                    made.insert((m.channel_id.clone(), f.marker.kind));
                }
            }
        }
        Ok(made)
    }
}
