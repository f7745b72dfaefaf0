//! What the processor needs rendered; the Mattermost renderer implements it.

use std::time::Duration;

use time::OffsetDateTime;

use super::ports::Body;
use super::work::Summary;
use crate::access::Review;
use crate::mattermost::render::Ending;

pub trait Renderer: Send + Sync + 'static {
    /// The root posts for these channels, in order: one message for all, the buttons
    /// signed per channel.
    fn roots(&self, summary: &Summary, channel_ids: &[&str]) -> Vec<Body>;
    /// A thread reply for the last of `reviews` (the earlier ones give its progress).
    fn reply(&self, summary: &Summary, reviews: &[Review]) -> Body;
    /// The requester's DM once the request is resolved or expired.
    fn outcome(&self, summary: &Summary) -> Body;
    /// A reminder in a thread: waiting `waited` so far; `mentions` are Mattermost usernames.
    fn reminder(
        &self,
        summary: &Summary,
        waited: Duration,
        mentions: &[String],
        here: bool,
    ) -> Body;
    /// The requester's DM: their pending request expires, or their access ends, at `at`.
    fn expiry_notice(&self, summary: &Summary, ending: Ending, at: OffsetDateTime) -> Body;
}
