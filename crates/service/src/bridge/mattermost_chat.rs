//! The bridge's chat port over the Mattermost client.

use super::ports::{Body, Chat, NewPost, PortError};
use crate::mattermost::{MattermostClient, MattermostError, model};
use crate::route::Recipient;

/// How a Mattermost error affects an event: retry (with the server's wait), gone, or give up.
pub fn port_error(e: MattermostError) -> PortError {
    match e {
        MattermostError::RateLimited { wait, .. } => PortError::Throttled { after: wait },
        e if e.is_transient() => PortError::Retry {
            reason: e.to_string(),
            after: None,
        },
        MattermostError::NotFound { .. } => PortError::NotFound,
        e => PortError::Fatal(e.to_string()),
    }
}

impl Chat for MattermostClient {
    async fn resolve(&self, recipient: &Recipient) -> Result<Option<String>, PortError> {
        match MattermostClient::resolve(self, recipient).await {
            Ok(r) => Ok(Some(r.channel_id)),
            Err(e) if e.is_transient() => Err(port_error(e)),
            // A missing user or channel, or one the bot may not use, is skipped (upstream
            // posted to an empty channel id instead); the error text names the fix.
            Err(e) => {
                tracing::warn!(recipient = %recipient, error = %e, "recipient does not resolve; skipping it");
                Ok(None)
            }
        }
    }

    async fn post(&self, p: NewPost) -> Result<String, PortError> {
        // Moved, not cloned: the body is the bulk of every post (props hold the buttons).
        let post = model::NewPost {
            channel_id: p.channel_id,
            message: p.body.message,
            root_id: p.root_id,
            props: p.body.props,
            pending_post_id: Some(p.idempotency_key),
        };
        self.create_post(&post)
            .await
            .map(|p| p.id)
            .map_err(port_error)
    }

    async fn update(&self, _channel_id: &str, post_id: &str, body: Body) -> Result<(), PortError> {
        let update = model::PostUpdate {
            id: post_id.to_string(),
            message: body.message,
            // Always sent: an update without buttons must remove the old ones.
            props: Some(body.props.unwrap_or_default()),
        };
        self.update_post(&update)
            .await
            .map(|_| ())
            .map_err(port_error)
    }
}
