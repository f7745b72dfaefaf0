//! Taking over interrupted work: a holder that died (or whose progress write failed) between
//! creating a post and recording it left a post nobody knows about. Its successor looks for
//! the bot's posts made since the claim began, recognises them by their [`Marker`], and
//! records them instead of posting again. Only a takeover lists; the common path never does.
//! Mattermost's `pending_post_id` cache (30 s, per node) stays as a second line of defence.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join_all;

use super::{Held, Processor};
use crate::access::SentMessage;
use crate::bridge::ports::{Chat, Found, Marker, MarkerKind, Place, PortError, Store};
use crate::bridge::render::Renderer;

/// Mattermost stamps posts with its own clock; the claim's time is the replica's. Looking
/// this much further back covers the skew between NTP-synchronised hosts many times over,
/// while keeping the listing of a busy channel short.
const CLOCK_SKEW: Duration = Duration::from_secs(10);

fn kind_label(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::Root => "root",
        MarkerKind::Reply { .. } => "reply",
        MarkerKind::Requester => "requester",
    }
}

impl<S: Store, C: Chat, R: Renderer> Processor<S, C, R> {
    /// The post `marker` names, if the bot made it in its channel since `since`.
    pub(super) async fn adopt_one(
        &self,
        marker: &Marker,
        since: u64,
    ) -> Result<Option<String>, PortError> {
        let since = since.saturating_sub(CLOCK_SKEW.as_millis() as u64);
        let found = self
            .call(self.chat.find(Place::ChannelSince {
                channel_id: &marker.channel_id,
                since,
            }))
            .await?;
        let adopted = found
            .into_iter()
            .find(|f| &f.marker == marker)
            .map(|f| f.post_id);
        if let Some(post_id) = &adopted {
            self.metrics
                .adopted
                .with_label_values(&[kind_label(marker.kind)])
                .inc();
            tracing::info!(request_id = %marker.request_id, channel_id = %marker.channel_id, post_id, kind = kind_label(marker.kind), "adopted a post an interrupted replica made but did not record");
        }
        Ok(adopted)
    }

    /// Records the roots found among `missing` channels and removes them from it.
    pub(super) async fn adopt_roots(
        &self,
        id: &str,
        since: u64,
        missing: &mut Vec<(String, String)>,
        held: &mut Held,
    ) -> Result<(), PortError> {
        let markers: Vec<Marker> = missing
            .iter()
            .map(|(ch, _)| Marker::new(id, ch, MarkerKind::Root))
            .collect();
        let found = join_all(markers.iter().map(|m| self.adopt_one(m, since))).await;
        let mut adopted = BTreeSet::new();
        for (m, r) in markers.iter().zip(found) {
            if let Some(post_id) = r? {
                held.data.messages.push(SentMessage {
                    channel_id: m.channel_id.clone(),
                    post_id,
                });
                adopted.insert(m.channel_id.clone());
            }
        }
        missing.retain(|(ch, _)| !adopted.contains(ch));
        Ok(())
    }

    /// `(channel, review index)` of the replies already under the request's roots.
    pub(super) async fn replies_made(
        &self,
        id: &str,
        roots: &[SentMessage],
    ) -> Result<BTreeSet<(String, u32)>, PortError> {
        let threads = join_all(roots.iter().map(|m| {
            self.call(self.chat.find(Place::Thread {
                root_id: &m.post_id,
            }))
        }))
        .await;
        let mut made = BTreeSet::new();
        for (m, found) in roots.iter().zip(threads) {
            let found = match found {
                Ok(f) => f,
                // A deleted root has no replies to find.
                Err(PortError::NotFound) => Vec::new(),
                Err(e) => return Err(e),
            };
            for Found { marker, .. } in found {
                if let MarkerKind::Reply { review } = marker.kind
                    && marker.request_id == id
                    && marker.channel_id == m.channel_id
                {
                    made.insert((m.channel_id.clone(), review));
                }
            }
        }
        Ok(made)
    }
}
