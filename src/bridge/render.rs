//! What the processor needs rendered; the Mattermost renderer implements it.

use super::ports::Body;
use super::work::Summary;
use crate::access::Review;

pub trait Renderer: Send + Sync + 'static {
    /// The root post for one channel (buttons are signed per channel).
    fn root(&self, summary: &Summary, channel_id: &str) -> Body;
    /// A thread reply for one review.
    fn reply(&self, summary: &Summary, review: &Review) -> Body;
    /// The requester's DM once the request is resolved or expired.
    fn outcome(&self, summary: &Summary) -> Body;
}
