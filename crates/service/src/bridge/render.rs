//! What the processor needs rendered; the Mattermost renderer implements it.

use super::ports::Body;
use super::work::Summary;
use crate::access::Review;

pub trait Renderer: Send + Sync + 'static {
    /// The root posts for these channels, in order: one message for all, the buttons
    /// signed per channel.
    fn roots(&self, summary: &Summary, channel_ids: &[&str]) -> Vec<Body>;
    /// A thread reply for the last of `reviews` (the earlier ones give its progress).
    fn reply(&self, summary: &Summary, reviews: &[Review]) -> Body;
    /// The requester's DM once the request is resolved or expired.
    fn outcome(&self, summary: &Summary) -> Body;
}
