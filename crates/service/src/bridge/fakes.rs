//! In-memory stand-ins with the real systems' semantics that matter here: Teleport's plugin
//! data compare-and-swap and Mattermost's `pending_post_id` dedup.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::ports::{Body, Chat, Found, Marker, NewPost, Place, PortError, Store};
use super::render::Renderer;
use super::work::Summary;
use crate::access::{RawData, Review};
use crate::route::Recipient;

/// Teleport's update rule has one implementation, the simulator's: the fakes apply the same.
pub use teleport_mattermost_sim::teleport::plugin_data::apply_update;

#[derive(Clone, Default)]
pub struct FakeStore {
    pub data: Arc<Mutex<BTreeMap<String, RawData>>>,
    /// Requests that no longer exist (NotFound on first write).
    pub deleted: Arc<Mutex<BTreeSet<String>>>,
    pub writes: Arc<Mutex<u32>>,
    /// Fail this many of the next updates with a conflict before applying any.
    pub conflicts: Arc<Mutex<u32>>,
    /// Written by a "concurrent writer" just before our next update is applied, once.
    pub interloper: Arc<Mutex<Option<RawData>>>,
}

impl FakeStore {
    pub fn get_now(&self, id: &str) -> Option<RawData> {
        self.data.lock().unwrap().get(id).cloned()
    }
}

impl Store for FakeStore {
    async fn get(&self, id: &str) -> Result<Option<RawData>, PortError> {
        tokio::task::yield_now().await;
        Ok(self.get_now(id))
    }

    async fn update(&self, id: &str, set: RawData, expect: RawData) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        let mut data = self.data.lock().unwrap();
        if let Some(other) = self.interloper.lock().unwrap().take() {
            data.insert(id.to_string(), other);
        }
        {
            let mut conflicts = self.conflicts.lock().unwrap();
            if *conflicts > 0 {
                *conflicts -= 1;
                return Err(PortError::Conflict);
            }
        }
        let entry = data.get(id);
        if entry.is_none() && self.deleted.lock().unwrap().contains(id) {
            return Err(PortError::NotFound);
        }
        let next = apply_update(entry, &set, &expect).map_err(|_| PortError::Conflict)?;
        *self.writes.lock().unwrap() += 1;
        match next {
            Some(next) => data.insert(id.to_string(), next),
            None => data.remove(id),
        };
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub id: String,
    pub channel_id: String,
    pub root_id: Option<String>,
    pub message: String,
    pub key: String,
    pub props: Option<String>,
}

impl Posted {
    pub fn marker(&self) -> Option<Marker> {
        let props: serde_json::Value = serde_json::from_str(self.props.as_deref()?).ok()?;
        Marker::of_props(&props)
    }
}

#[derive(Clone, Default)]
pub struct FakeChat {
    /// Recipient (as text) → channel id; missing recipients do not resolve.
    pub channels: Arc<Mutex<BTreeMap<String, String>>>,
    pub posts: Arc<Mutex<Vec<Posted>>>,
    pub updates: Arc<Mutex<Vec<(String, String)>>>,
    /// (post id, emoji name) of every reaction added.
    pub reactions: Arc<Mutex<Vec<(String, String)>>>,
    /// Channels whose next posts fail with a temporary error (a 500: surely not posted).
    pub failing: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Channels whose posts fail with this error until removed.
    pub refusing: Arc<Mutex<BTreeMap<String, PortError>>>,
    /// Mattermost's `pending_post_id` cache forgot everything (another node, or 30 s later).
    pub no_dedup: Arc<Mutex<bool>>,
    /// Channels whose next post is made but its answer lost (a timeout).
    pub answer_lost: Arc<Mutex<BTreeSet<String>>>,
    /// Listings made (takeovers only).
    pub finds: Arc<Mutex<u32>>,
}

impl FakeChat {
    pub fn with(channels: &[(&str, &str)]) -> Self {
        let c = Self::default();
        *c.channels.lock().unwrap() = channels
            .iter()
            .map(|(r, ch)| (r.to_string(), ch.to_string()))
            .collect();
        c
    }

    pub fn roots(&self) -> Vec<Posted> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.root_id.is_none())
            .cloned()
            .collect()
    }

    pub fn replies(&self) -> Vec<Posted> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.root_id.is_some())
            .cloned()
            .collect()
    }
}

impl Chat for FakeChat {
    async fn resolve(&self, r: &Recipient) -> Result<Option<String>, PortError> {
        Ok(self.channels.lock().unwrap().get(&r.to_string()).cloned())
    }

    async fn post(&self, p: NewPost) -> Result<String, PortError> {
        tokio::task::yield_now().await;
        if let Some(n) = self
            .failing
            .lock()
            .unwrap()
            .get_mut(&p.channel_id)
            .filter(|n| **n > 0)
        {
            *n -= 1;
            return Err(PortError::Retry {
                reason: "500 from fake".into(),
                after: None,
            });
        }
        if let Some(e) = self.refusing.lock().unwrap().get(&p.channel_id) {
            return Err(e.clone());
        }
        let mut posts = self.posts.lock().unwrap();
        // Mattermost returns the first post for a repeated pending_post_id.
        if !*self.no_dedup.lock().unwrap()
            && let Some(existing) = posts.iter().find(|x| x.key == p.idempotency_key)
        {
            return Ok(existing.id.clone());
        }
        let id = format!("post-{}", posts.len() + 1);
        let lost = self.answer_lost.lock().unwrap().remove(&p.channel_id);
        posts.push(Posted {
            id: id.clone(),
            channel_id: p.channel_id,
            root_id: p.root_id,
            message: p.body.message,
            key: p.idempotency_key,
            props: p.body.props,
        });
        if lost {
            return Err(PortError::Uncertain("timed out".into()));
        }
        Ok(id)
    }

    async fn find(&self, place: Place<'_>) -> Result<Vec<Found>, PortError> {
        *self.finds.lock().unwrap() += 1;
        let posts = self.posts.lock().unwrap();
        Ok(posts
            .iter()
            .filter(|p| match place {
                Place::Channel { channel_id, .. } => p.channel_id == channel_id,
                Place::Thread { root_id } => p.root_id.as_deref() == Some(root_id),
            })
            .filter_map(|p| {
                Some(Found {
                    post_id: p.id.clone(),
                    marker: p.marker()?,
                })
            })
            .collect())
    }

    async fn update(&self, _channel_id: &str, post_id: &str, body: Body) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        if let Some(p) = self
            .posts
            .lock()
            .unwrap()
            .iter_mut()
            .find(|p| p.id == post_id)
        {
            p.props = body.props;
        }
        self.updates
            .lock()
            .unwrap()
            .push((post_id.to_string(), body.message));
        Ok(())
    }

    async fn react(&self, post_id: &str, emoji: &str) -> Result<(), PortError> {
        self.reactions
            .lock()
            .unwrap()
            .push((post_id.to_string(), emoji.to_string()));
        Ok(())
    }
}

pub struct FakeRender;

impl Renderer for FakeRender {
    fn roots(&self, s: &Summary, channel_ids: &[&str]) -> Vec<Body> {
        channel_ids
            .iter()
            .map(|ch| {
                Body::text(format!(
                    "root {} {:?} a{}/d{} in {ch}",
                    s.id, s.status, s.approvals, s.denials
                ))
            })
            .collect()
    }

    fn reply(&self, _s: &Summary, reviews: &[Review]) -> Body {
        let r = reviews.last().expect("the new review");
        Body::text(format!("reply {} {:?}", r.author, r.proposed_state))
    }

    fn outcome(&self, s: &Summary) -> Body {
        Body::text(format!("outcome {} {:?}", s.id, s.status))
    }

    fn reminder(
        &self,
        s: &Summary,
        waited: std::time::Duration,
        _mentions: &[String],
        _here: bool,
    ) -> Body {
        Body::text(format!("reminder {} {}s", s.id, waited.as_secs()))
    }

    fn expiry_notice(
        &self,
        s: &Summary,
        ending: crate::mattermost::render::Ending,
        _at: time::OffsetDateTime,
    ) -> Body {
        Body::text(format!("notice {} {ending:?}", s.id))
    }
}
