//! Taking over interrupted work. A holder that died (or got no answer to a post, or could
//! not record its progress) may have made posts nobody recorded. Its successor looks for
//! the bot's posts made since the interrupted claim's `since`, recognises them by their
//! [`Marker`], and records them instead of posting again. Only a takeover lists; the common
//! path never does. Mattermost's `pending_post_id` cache stays as a second line of defence.
//!
//! A busy channel may hold thousands of posts in the window, so one listing of a channel is
//! shared by every takeover of this replica that it covers (one at a time per channel): a
//! replica killed mid-burst leaves many requests to take over at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use super::{Held, Processor};
use crate::access::SentMessage;
use crate::bridge::claim::now_ms;
use crate::bridge::ports::{Chat, Marker, MarkerKind, Place, PortError, Store};
use crate::bridge::queue::Outcome;
use crate::bridge::render::Renderer;

/// Mattermost stamps posts with its own clock; claims carry the replica's. Looking this much
/// further back covers the skew between NTP-synchronised hosts many times over.
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// How far back a new listing of a channel reaches at least.
const REACH_BACK: Duration = Duration::from_secs(60);

/// A channel's listing is extended while its start is younger than this; an older one is
/// dropped and listed anew (so what a replica remembers of a channel stays small).
const KEEP_SCAN: Duration = Duration::from_secs(600);

/// Longest a takeover waits for its channel listings (paging through a busy channel, or
/// waiting for another takeover's listing of it). The claim is renewed meanwhile.
const SCAN_BUDGET: Duration = Duration::from_secs(60);

/// What a takeover must look through: posts made since `since` (Unix ms, the interrupted
/// claim's) and before `until`, when that claim ran out (a holder posts nothing after its
/// lease: it renews before every batch, and a batch ends within the lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub since: u64,
    pub until: u64,
}

/// One listing of a channel: the markers of the bot's posts made since `from`, listed at
/// `at` (Unix ms, before the request was sent).
struct Scan {
    from: u64,
    at: u64,
    found: HashMap<Marker, String>,
}

impl Scan {
    /// Whether this listing shows everything a takeover of `window` needs: it reaches back
    /// far enough, and it was made after the interrupted holder could last post.
    fn covers(&self, window: Window, from: u64) -> bool {
        self.from <= from && self.at >= window.until
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Scan>>>;

/// This replica's latest listing of each channel a takeover looked in.
#[derive(Default)]
pub struct Scans(Mutex<HashMap<String, Slot>>);

impl Scans {
    fn slot(&self, channel_id: &str) -> Slot {
        crate::sync::lock(&self.0)
            .entry(channel_id.to_string())
            .or_default()
            .clone()
    }
}

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    /// The post `marker` names, if the bot made it in its channel within `window`.
    pub(super) async fn adopt_one(
        &self,
        marker: &Marker,
        window: Window,
    ) -> Result<Option<String>, PortError> {
        let from = window.since.saturating_sub(CLOCK_SKEW.as_millis() as u64);
        let slot = self.scans.slot(&marker.channel_id);
        let mut scan = slot.lock().await;
        let now = now_ms();
        // A listing that reaches back far enough is brought up to date with the posts made
        // since it (a few, even in a busy channel); otherwise the channel is listed anew.
        let since = match scan.as_ref() {
            Some(s) if s.covers(window, from) => None,
            Some(s)
                if s.from <= from && now.saturating_sub(s.from) < KEEP_SCAN.as_millis() as u64 =>
            {
                Some(s.at.saturating_sub(CLOCK_SKEW.as_millis() as u64))
            }
            _ => {
                // A new listing reaches back at least a minute: the takeovers that follow a
                // replica's death have windows a little older or younger than this one's, and
                // one deeper listing serves them all where each would otherwise start anew.
                *scan = None;
                Some(from.min(now.saturating_sub(REACH_BACK.as_millis() as u64)))
            }
        };
        if let Some(since) = since {
            let listing = self.chat.find(Place::Channel {
                channel_id: &marker.channel_id,
                since,
            });
            let found = self.observe(
                tokio::time::timeout(SCAN_BUDGET, listing)
                    .await
                    .unwrap_or_else(|_| {
                        Err(PortError::Retry {
                            reason: format!(
                                "listing the channel's recent posts took longer than {}s",
                                SCAN_BUDGET.as_secs()
                            ),
                            after: None,
                        })
                    }),
            )?;
            tracing::info!(channel_id = %marker.channel_id, since, posts = found.len(), took_ms = now_ms().saturating_sub(now), "listed the channel's recent posts for a takeover");
            let s = scan.get_or_insert_with(|| Scan {
                from: since,
                at: now,
                found: HashMap::new(),
            });
            s.at = now;
            s.found
                .extend(found.into_iter().map(|f| (f.marker, f.post_id)));
        }
        let adopted = scan.as_ref().and_then(|s| s.found.get(marker).cloned());
        if let Some(post_id) = &adopted {
            self.metrics
                .adopted
                .with_label_values(&[marker.kind.label()])
                .inc();
            tracing::info!(request_id = %marker.request_id, channel_id = %marker.channel_id, post_id, kind = marker.kind.label(), "adopted a post an interrupted replica made but did not record");
        }
        Ok(adopted)
    }

    /// Records the roots found among the `missing` channels and removes them from it. The
    /// listings may take long in a busy channel: the claim is renewed while they run.
    pub(super) async fn adopt_roots(
        &self,
        id: &str,
        window: Window,
        missing: &mut Vec<(String, String)>,
        held: &mut Held,
    ) -> Result<Result<(), PortError>, Outcome> {
        let markers: Vec<Marker> = missing
            .iter()
            .map(|(ch, _)| Marker::new(id, ch, MarkerKind::Root))
            .collect();
        let lookups = join_all(markers.iter().map(|m| self.adopt_one(m, window)));
        let found = self.renewing(id, held, lookups).await?;
        for (m, r) in markers.iter().zip(found) {
            let r = match r {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(post_id) = r {
                held.data.messages.push(SentMessage {
                    channel_id: m.channel_id.clone(),
                    post_id,
                });
                missing.retain(|(ch, _)| ch != &m.channel_id);
            }
        }
        Ok(Ok(()))
    }

    /// Runs `work` while keeping the claim fresh, so a long listing does not let it run out.
    pub(super) async fn renewing<T>(
        &self,
        id: &str,
        held: &mut Held,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Outcome> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = tokio::time::sleep(super::FRESH) => self.renew(id, held).await?,
            }
        }
    }
}
