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
use crate::bridge::render::Renderer;

/// Mattermost stamps posts with its own clock; claims carry the replica's. Looking this much
/// further back covers the skew between NTP-synchronised hosts many times over.
const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// What a takeover must look through: posts made since `since` (Unix ms, the interrupted
/// claim's), by a holder whose claim had run out when this one was taken at `taken`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub since: u64,
    pub taken: u64,
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
        self.from <= from && self.at >= window.taken
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
        let from = window
            .since
            .saturating_sub(CLOCK_SKEW.as_millis() as u64);
        let slot = self.scans.slot(&marker.channel_id);
        let mut scan = slot.lock().await;
        if !scan.as_ref().is_some_and(|s| s.covers(window, from)) {
            let at = now_ms();
            let found = self
                .call(self.chat.find(Place::Channel {
                    channel_id: &marker.channel_id,
                    since: from,
                }))
                .await?;
            *scan = Some(Scan {
                from,
                at,
                found: found.into_iter().map(|f| (f.marker, f.post_id)).collect(),
            });
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

    /// Records the roots found among the `missing` channels and removes them from it.
    pub(super) async fn adopt_roots(
        &self,
        id: &str,
        window: Window,
        missing: &mut Vec<(String, String)>,
        held: &mut Held,
    ) -> Result<(), PortError> {
        let markers: Vec<Marker> = missing
            .iter()
            .map(|(ch, _)| Marker::new(id, ch, MarkerKind::Root))
            .collect();
        let found = join_all(markers.iter().map(|m| self.adopt_one(m, window))).await;
        for (m, r) in markers.iter().zip(found) {
            if let Some(post_id) = r? {
                held.data.messages.push(SentMessage {
                    channel_id: m.channel_id.clone(),
                    post_id,
                });
                missing.retain(|(ch, _)| ch != &m.channel_id);
            }
        }
        Ok(())
    }
}
