//! Access requests over `AuthService`: watch, list, get, and submit a review.

use futures_util::StreamExt;
use time::OffsetDateTime;

use super::{NewReview, RequestFilter, TeleportClient, review_submission};
use crate::access::AccessRequest;
use crate::teleport::TeleportError;
use crate::teleport::convert;
use crate::teleport::events::{self, EventStream, WatchRequest};
use crate::teleport::wire::types;

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

    /// Hands every access request matching `filter` to `f` as it arrives, so a listing of
    /// many requests is never held whole (the catch-up keeps only those it must reconcile).
    /// Returns how many there were. On an error, `f` has seen only part of the listing.
    pub async fn each_access_request(
        &self,
        filter: &RequestFilter,
        mut f: impl FnMut(AccessRequest) + Send,
    ) -> Result<usize, TeleportError> {
        let mut c = self.auth.clone();
        let wire = types::AccessRequestFilter {
            id: filter.id.clone().unwrap_or_default(),
            user: filter.user.clone().unwrap_or_default(),
            state: filter.state.unwrap_or_default().to_i32(),
        };
        let budget = self.opts.list_timeout;
        let collect = async move {
            let mut stream = c
                .get_access_requests_v2(tonic::Request::new(wire))
                .await?
                .into_inner();
            let mut n = 0;
            while let Some(r) = stream.next().await {
                f(convert::request_from_proto(r?));
                n += 1;
            }
            Ok::<_, tonic::Status>(n)
        };
        match tokio::time::timeout(budget, collect).await {
            Ok(r) => r.map_err(TeleportError::from),
            Err(_) => Err(TeleportError::timeout("GetAccessRequestsV2", budget)),
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
