//! Access requests over `AuthService`: watch, list, get, and submit a review.

use time::OffsetDateTime;

use super::{NewReview, RequestFilter, TeleportClient, review_submission};
use crate::access::AccessRequest;
use crate::teleport::TeleportError;
use crate::teleport::convert;
use crate::teleport::events::{self, EventStream, WatchRequest};

impl TeleportClient {
    /// Opens a watch. The first event is `Init`; the stream ends with an error when the
    /// server drops it (re-watch on [`TeleportError::is_transient`]).
    pub async fn watch(&self, req: WatchRequest) -> Result<EventStream, TeleportError> {
        let mut c = self.auth.clone();
        let wire = req.to_wire();
        let resp = self
            .unary("WatchEvents", c.watch_events(tonic::Request::new(wire)))
            .await?;
        Ok(events::typed(resp))
    }

    /// All access requests matching `filter` (GetAccessRequestsV2, streamed).
    pub async fn list_access_requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<AccessRequest>, TeleportError> {
        let mut out = Vec::new();
        self.each_access_request(filter, |r| out.push(r)).await?;
        Ok(out)
    }

    /// Hands every access request matching `filter` to `f` as it arrives (decoded from
    /// [`TeleportClient::each_encoded_request`]). Returns how many there were; a request that
    /// cannot be decoded ends the listing with an error, as tonic's own decoding would.
    pub async fn each_access_request(
        &self,
        filter: &RequestFilter,
        mut f: impl FnMut(AccessRequest) + Send,
    ) -> Result<usize, TeleportError> {
        let mut failed = None;
        let n = self
            .each_encoded_request(filter, |e| match e.request() {
                Ok(r) if failed.is_none() => f(r),
                Ok(_) => {}
                Err(e) => failed = Some(e),
            })
            .await?;
        match failed {
            Some(e) => {
                Err(tonic::Status::internal(format!("unreadable access request: {e}")).into())
            }
            None => Ok(n),
        }
    }

    /// One request by id, or `None`.
    pub async fn get_access_request(
        &self,
        id: &str,
    ) -> Result<Option<AccessRequest>, TeleportError> {
        let filter = RequestFilter {
            id: Some(id.to_string()),
            ..Default::default()
        };
        Ok(self.list_access_requests(&filter).await?.into_iter().next())
    }

    /// Submits a review; returns the request as it is after the review.
    pub async fn submit_review(
        &self,
        request_id: &str,
        review: &NewReview,
    ) -> Result<AccessRequest, TeleportError> {
        let submitted_by = if review.on_behalf {
            self.identity().username.clone()
        } else {
            String::new()
        };
        let wire = review_submission(request_id, review, &submitted_by, OffsetDateTime::now_utc());
        let mut c = self.auth.clone();
        let r = self
            .unary("SubmitAccessReview", c.submit_access_review(self.req(wire)))
            .await?;
        Ok(convert::request_from_proto(r))
    }
}
