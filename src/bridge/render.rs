//! What the processor needs rendered; the Mattermost renderer implements it.

use super::ports::Body;
use super::work::Summary;
use crate::access::Review;

pub trait Renderer: Send + Sync + 'static {
    /// The root post for one channel (buttons are signed per channel).
    fn root(&self, summary: &Summary, channel_id: &str) -> Body;
    /// The root posts for several channels, in order. A renderer may share the work between
    /// them (the message is the same everywhere; only the signed buttons differ).
    fn roots(&self, summary: &Summary, channel_ids: &[&str]) -> Vec<Body> {
        channel_ids.iter().map(|c| self.root(summary, c)).collect()
    }
    /// A thread reply for one review.
    fn reply(&self, summary: &Summary, review: &Review) -> Body;
    /// The requester's DM once the request is resolved or expired.
    fn outcome(&self, summary: &Summary) -> Body;
}
