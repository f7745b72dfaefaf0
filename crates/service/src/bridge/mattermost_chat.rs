//! The bridge's chat port over the Mattermost client.

use super::ports::{Body, Chat, Found, NewPost, Place, PortError};
use crate::mattermost::error::Target;
use crate::mattermost::model::{self, Props};
use crate::mattermost::{MattermostClient, MattermostError};
use crate::route::Recipient;

/// How a Mattermost error affects an event: retry (with the server's wait), gone, or give up.
fn port_error(e: MattermostError) -> PortError {
    match e {
        MattermostError::RateLimited { wait, .. } => PortError::Throttled { after: wait },
        // Sent, and no answer: the call may have taken effect.
        MattermostError::Transport { ref error, .. } if !error.is_connect() => {
            PortError::Uncertain(e.to_string())
        }
        e @ MattermostError::Unauthorized { .. } => PortError::Unauthorized(e.to_string()),
        e if e.is_transient() => PortError::Retry {
            reason: e.to_string(),
            after: None,
        },
        MattermostError::NotFound { .. } => PortError::NotFound,
        e => PortError::Fatal(e.to_string()),
    }
}

/// The port's props (JSON text) as Mattermost props; the renderer only produces JSON, so a
/// failure is a bug, reported as a refusal rather than retried.
fn props(json: Option<String>) -> Result<Option<Props>, PortError> {
    json.map(Props::from_json)
        .transpose()
        .map_err(|e| PortError::Fatal(format!("post props are not JSON: {e}")))
}

/// Each call's future is boxed where it is made: the client's futures (request, retries,
/// pacing, answer) run to a few kilobytes, and the bridge moves its own futures around
/// (collected into `join_all`, spawned), so unboxed they were copied several times per call
/// (memmove was the largest single item of a burst's profile).
impl Chat for MattermostClient {
    async fn resolve(&self, recipient: &Recipient) -> Result<Option<String>, PortError> {
        match Box::pin(MattermostClient::resolve(self, recipient)).await {
            Ok(r) => Ok(Some(r.channel_id)),
            // A person without a Mattermost account is skipped, as upstream.
            Err(
                e @ MattermostError::NotFound {
                    target: Target::User(_),
                    ..
                },
            ) => {
                tracing::warn!(recipient = %recipient, error = %e, "recipient does not resolve; skipping it");
                Ok(None)
            }
            // A missing channel, or one the bot may not use, is a refusal: the caller decides
            // (the bridge keeps it owed until fixed); the text names the fix. A 404 here is
            // not "the request is gone".
            Err(e @ MattermostError::NotFound { .. }) => Err(PortError::Fatal(e.to_string())),
            Err(e) => Err(port_error(e)),
        }
    }

    async fn post(&self, p: NewPost) -> Result<String, PortError> {
        // Moved, not cloned: the body is the bulk of every post (props hold the buttons).
        let post = model::NewPost {
            channel_id: p.channel_id,
            message: p.body.message,
            root_id: p.root_id,
            props: props(p.body.props)?,
            pending_post_id: Some(p.idempotency_key),
        };
        Box::pin(self.create_post_id(&post))
            .await
            .map_err(port_error)
    }

    async fn find(&self, place: Place<'_>) -> Result<Vec<Found>, PortError> {
        let posts = match place {
            Place::Channel { channel_id, since } => {
                self.channel_posts_since(channel_id, since).await
            }
            Place::Thread { root_id } => self.thread(root_id).await,
        }
        .map_err(port_error)?;
        let bot = self.bot_id().await.map_err(port_error)?;
        Ok(posts
            .into_iter()
            .filter(|p| p.user_id == bot && p.delete_at == 0)
            .filter_map(|p| {
                Some(Found {
                    marker: serde_json::from_value(p.props.teleport_mattermost?).ok()?,
                    post_id: p.id,
                })
            })
            .collect())
    }

    async fn update(&self, _channel_id: &str, post_id: &str, body: Body) -> Result<(), PortError> {
        let update = model::PostUpdate {
            id: post_id.to_string(),
            message: body.message,
            // Always sent: an update without buttons must remove the old ones.
            props: Some(props(body.props)?.unwrap_or_default()),
        };
        Box::pin(self.update_post(&update))
            .await
            .map(|_| ())
            .map_err(port_error)
    }

    async fn username(&self, teleport_user: &str) -> Result<Option<String>, PortError> {
        let user = if crate::route::recipient::is_email(teleport_user) {
            self.user_by_email(&teleport_user.to_lowercase()).await
        } else {
            self.user_by_username(teleport_user).await
        };
        match user {
            Ok(u) => Ok(Some(u.username)),
            Err(e) if e.is_transient() => Err(port_error(e)),
            Err(_) => Ok(None),
        }
    }

    async fn react(&self, post_id: &str, emoji: &str) -> Result<(), PortError> {
        self.add_reaction(post_id, emoji).await.map_err(port_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_props_pass_through_as_the_same_json_and_non_json_is_refused() {
        let json = r#"{"attachments":[{"text":"hi"}]}"#.to_string();
        let p = props(Some(json.clone())).unwrap().unwrap();
        assert_eq!(p.as_str(), json);
        assert_eq!(p.into_json(), json);
        assert_eq!(props(None).unwrap(), None);
        assert!(matches!(
            props(Some("{not json".into())),
            Err(PortError::Fatal(_))
        ));
    }
}
