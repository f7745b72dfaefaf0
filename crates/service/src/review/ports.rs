//! What the review pipeline needs from outside, as small traits: Teleport's reads and the
//! on-behalf submission, and the directory that names the Teleport user behind a
//! Mattermost user. The real clients implement them; the pipeline is unit-tested on fakes.

use std::future::Future;

use super::outcome::Outcome;
use crate::access::AccessRequest;
use crate::teleport::client::NewReview;
use crate::teleport::{TeleportClient, TeleportError};

/// Teleport's access requests, as the pipeline reads and reviews them.
pub trait Requests: Send + Sync + 'static {
    /// The request with this id (`None` when it does not exist).
    fn get(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<AccessRequest>, TeleportError>> + Send;
    /// Submits a review; Teleport applies the author's rights and answers with the request
    /// after it.
    fn submit(
        &self,
        request_id: &str,
        review: &NewReview,
    ) -> impl Future<Output = Result<AccessRequest, TeleportError>> + Send;
}

/// Who a Mattermost user is in Teleport.
pub trait Directory: Send + Sync + 'static {
    /// The one Teleport user bound to `chat_user_id`, or the outcome to show instead
    /// (unlinked, ambiguous, Teleport unreachable).
    fn identify(&self, chat_user_id: &str) -> impl Future<Output = Result<String, Outcome>> + Send;
}

impl Requests for TeleportClient {
    async fn get(&self, request_id: &str) -> Result<Option<AccessRequest>, TeleportError> {
        self.get_access_request(request_id).await
    }

    async fn submit(
        &self,
        request_id: &str,
        review: &NewReview,
    ) -> Result<AccessRequest, TeleportError> {
        self.submit_review(request_id, review).await
    }
}
