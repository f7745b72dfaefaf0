//! What can go wrong calling Mattermost, classified by what the caller does next: fix the
//! config (401), fix the bot's memberships (403), fix a name (404), wait (429), or retry later.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::teleport::proxy::error::Peer;

/// Mattermost's JSON error body (`model.AppError`). Callers branch on `id`, which is stable;
/// `message` is translated and only shown to people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AppError {
    pub id: String,
    pub message: String,
    pub detailed_error: String,
    pub request_id: String,
    pub status_code: i64,
}

impl AppError {
    /// Decodes an error body; a body that is not an AppError (a proxy's HTML page, the plain
    /// `limit exceeded` of a 429) is kept as the message, cut short.
    pub fn from_body(body: &[u8]) -> Self {
        match serde_json::from_slice::<AppError>(body) {
            Ok(e) if !e.id.is_empty() || !e.message.is_empty() => e,
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                AppError {
                    message: text.chars().take(200).collect(),
                    ..AppError::default()
                }
            }
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.id.is_empty(), self.message.is_empty()) {
            (true, true) => f.write_str("no error details")?,
            (true, false) => write!(f, "{:?}", self.message)?,
            (false, true) => write!(f, "{}", self.id)?,
            (false, false) => write!(f, "{}: {:?}", self.id, self.message)?,
        }
        if !self.detailed_error.is_empty() {
            write!(f, " ({})", self.detailed_error)?;
        }
        if !self.request_id.is_empty() {
            write!(f, " [request_id {}]", self.request_id)?;
        }
        Ok(())
    }
}

/// How a user was looked up, for error texts (and the key of the client's lookup cache).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserKey {
    Id(String),
    Email(String),
    Username(String),
}

/// The Mattermost object a call was about, so an error can name it and say how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `users/me`: the bot itself.
    Bot,
    User(UserKey),
    Team(String),
    /// A channel by team name and channel name, as written in the config.
    Channel {
        team: String,
        channel: String,
    },
    /// A channel by id; `display` is `team/channel` or `@user` when the client resolved it.
    ChannelId {
        id: String,
        display: Option<String>,
    },
    /// The direct channel between the bot and this user.
    DirectChannel {
        user_id: String,
    },
    Post(String),
    /// `actions/dialogs/open`.
    Dialog,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Bot => f.write_str("the bot account (users/me)"),
            Target::User(UserKey::Id(id)) => write!(f, "user with id {id:?}"),
            Target::User(UserKey::Email(e)) => write!(f, "user with e-mail {e:?}"),
            Target::User(UserKey::Username(u)) => write!(f, "user @{u}"),
            Target::Team(t) => write!(f, "team {t:?}"),
            Target::Channel { team, channel } => write!(f, "channel \"{team}/{channel}\""),
            Target::ChannelId {
                id,
                display: Some(d),
            } => write!(f, "channel {d} (id {id})"),
            Target::ChannelId { id, display: None } => write!(f, "channel with id {id}"),
            Target::DirectChannel { user_id } => {
                write!(f, "the direct channel with user id {user_id}")
            }
            Target::Post(id) => write!(f, "post {id}"),
            Target::Dialog => f.write_str("the interactive dialog"),
        }
    }
}

impl Target {
    /// What an operator does about a 404 on this target.
    pub fn not_found_hint(&self) -> &'static str {
        match self {
            Target::Team(_) => {
                "check the team name (the one in the team's URL, not its display name)"
            }
            Target::Channel { .. } => {
                "check the team and channel names (the ones in the channel's URL, not display names)"
            }
            Target::User(UserKey::Email(_)) => {
                "check the e-mail address (or name the user as \"@username\")"
            }
            Target::User(UserKey::Username(_)) => "check the username",
            Target::User(UserKey::Id(_)) => "the account may have been deleted",
            Target::Post(_) => "the post was deleted",
            Target::Bot
            | Target::ChannelId { .. }
            | Target::DirectChannel { .. }
            | Target::Dialog => {
                "check that `mattermost.url` points at the Mattermost server itself"
            }
        }
    }

    /// What an operator does about a 403 on this target. `bot` is the bot's username when known.
    pub fn forbidden_fix(&self, bot: Option<&str>) -> String {
        let bot = bot.map_or_else(|| "<bot username>".to_string(), |b| format!("@{b}"));
        match self {
            Target::Channel { .. } | Target::ChannelId { .. } => format!(
                "the bot is not a member of that channel: run `/invite {bot}` in it (and add the bot to its team first)"
            ),
            Target::Team(_) => format!(
                "the bot is not a member of that team: add {bot} to the team (Main Menu > Add Members to Team)"
            ),
            Target::User(UserKey::Email(_)) => "Mattermost hides e-mail addresses from the bot (System Console > Site Configuration > Users and Teams > Show Email Address = false): use an \"@username\" recipient instead, or allow the bot to see e-mail addresses".to_string(),
            Target::DirectChannel { .. } => format!(
                "the bot may not message this user directly (ServiceSettings.RestrictDirectMessage = team requires a shared team): add {bot} to one of the user's teams"
            ),
            Target::Post(_) => format!(
                "the bot may only read and edit its own posts in channels it belongs to: check that {bot} is still a member of the post's channel"
            ),
            Target::Bot | Target::User(_) | Target::Dialog => {
                "check the bot account's roles and permissions in the System Console".to_string()
            }
        }
    }
}

/// A failed Mattermost call. Variants are what callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum MattermostError {
    /// Bad or revoked token: fatal at start-up.
    #[error(
        "Mattermost rejected the bot token (401 {detail}): set `mattermost.token` to a valid access token of the bot account (System Console > Integrations > Bot Accounts > Create New Token)"
    )]
    Unauthorized { detail: AppError },
    /// The bot may not touch this object; `fix` says what to change in Mattermost.
    #[error("Mattermost refused access to {target} (403 {detail}): {fix}")]
    Forbidden {
        target: Target,
        fix: String,
        detail: AppError,
    },
    #[error("{target} was not found in Mattermost (404 {detail}): {}", target.not_found_hint())]
    NotFound { target: Target, detail: AppError },
    /// Held back by Mattermost's rate limit for longer than the call may wait: the server asked
    /// for more than the client honours, or the call's turn in the client's queue is further
    /// away. `wait` is how long until it may be sent. Not a failure of Mattermost: try again then.
    #[error("Mattermost's rate limit holds back `{call}` (429): try again in {wait:?}")]
    RateLimited { call: &'static str, wait: Duration },
    /// The message is longer than the server accepts.
    #[error("the message is too long for Mattermost (`{call}`: {detail}): shorten it")]
    TooLarge {
        call: &'static str,
        detail: AppError,
    },
    /// Any other 4xx; `detail.id` says which rule the request broke.
    #[error("Mattermost refused `{call}` on {target} ({status} {detail})")]
    BadRequest {
        call: &'static str,
        target: Target,
        status: u16,
        detail: AppError,
    },
    /// 5xx (after the allowed retries, when the call is retried at all; whether anyone
    /// tries again is for the caller to say).
    #[error("Mattermost failed `{call}` with a server error ({status} {detail})")]
    Server {
        call: &'static str,
        status: u16,
        detail: AppError,
    },
    /// Connection refused, reset, TLS failure or timeout, after the allowed retries. The
    /// text says which, the way Teleport dial errors do; the causes are in the text, so the
    /// reqwest error is not also a `source` (chains would print them twice).
    #[error("could not complete `{call}` with Mattermost{}: {}", if *.timed_out { " (timed out)" } else { "" }, why(error))]
    Transport {
        call: &'static str,
        timed_out: bool,
        error: reqwest::Error,
    },
    /// A 2xx whose body is not what the API describes.
    #[error("Mattermost answered `{call}` with an unexpected body: {reason}")]
    InvalidResponse { call: &'static str, reason: String },
}

impl MattermostError {
    /// Mattermost's error id (`api.post.create_post.root_id.app_error`, ...), when it sent one.
    pub fn app_error_id(&self) -> Option<&str> {
        match self {
            MattermostError::Unauthorized { detail }
            | MattermostError::Forbidden { detail, .. }
            | MattermostError::NotFound { detail, .. }
            | MattermostError::TooLarge { detail, .. }
            | MattermostError::BadRequest { detail, .. }
            | MattermostError::Server { detail, .. } => {
                (!detail.id.is_empty()).then_some(detail.id.as_str())
            }
            _ => None,
        }
    }

    /// Whether trying the same thing later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MattermostError::RateLimited { .. }
                | MattermostError::Server { .. }
                | MattermostError::Transport { .. }
        )
    }

    /// The metric label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            MattermostError::Unauthorized { .. } => "unauthorized",
            MattermostError::Forbidden { .. } => "forbidden",
            MattermostError::NotFound { .. } => "not_found",
            MattermostError::RateLimited { .. } => "rate_limited",
            MattermostError::TooLarge { .. } => "too_large",
            MattermostError::BadRequest { .. } => "bad_request",
            MattermostError::Server { .. } => "server_error",
            MattermostError::Transport { .. } => "transport",
            MattermostError::InvalidResponse { .. } => "invalid_response",
        }
    }
}

/// Why a call failed on the way: refused, name not found, TLS (explained), reset...
fn why(e: &reqwest::Error) -> String {
    let host = e.url().and_then(|u| u.host_str()).unwrap_or("the server");
    crate::teleport::proxy::error::http_failure(e, Peer::Mattermost { host })
}

/// Mattermost's id for a message over the post length limit.
pub const MESSAGE_LENGTH_ERROR_ID: &str = "model.post.is_valid.message_length.app_error";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mattermost_app_error_bodies() {
        let e = AppError::from_body(
            br#"{"id":"api.post.create_post.root_id.app_error","message":"Invalid RootId parameter.","detailed_error":"","request_id":"pn7abc","status_code":400}"#,
        );
        assert_eq!(e.id, "api.post.create_post.root_id.app_error");
        assert_eq!(
            e.to_string(),
            "api.post.create_post.root_id.app_error: \"Invalid RootId parameter.\" [request_id pn7abc]"
        );
    }

    #[test]
    fn keeps_a_plain_text_429_body_as_the_message() {
        let e = AppError::from_body(b"limit exceeded\n");
        assert_eq!(e.id, "");
        assert_eq!(e.message, "limit exceeded");
    }

    #[test]
    fn forbidden_on_a_channel_names_it_and_the_invite_fix() {
        let target = Target::Channel {
            team: "team-llama".into(),
            channel: "channel-llama".into(),
        };
        let err = MattermostError::Forbidden {
            fix: target.forbidden_fix(Some("teleport")),
            target,
            detail: AppError::default(),
        };
        let text = err.to_string();
        assert!(
            text.contains("channel \"team-llama/channel-llama\""),
            "{text}"
        );
        assert!(text.contains("/invite @teleport"), "{text}");
    }
}
