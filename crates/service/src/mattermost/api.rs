//! The typed Mattermost calls the service makes, each with its logical name (the metric
//! label), the object it is about (for error texts) and whether it may be retried.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::Serialize;

use super::client::{Call, MattermostClient, Retry};
use super::error::{MattermostError, Target, UserKey};
use super::model::{
    Channel, ListedPost, NewPost, NewReaction, OpenDialog, Post, PostList, PostPatch, PostUpdate,
    Team, User,
};

/// Most posts `GET /channels/{id}/posts?since=` answers (the server's limit for that form).
const SINCE_CAP: usize = 1000;
/// Page size of the paged form (the server's maximum).
const PAGE: usize = 200;

/// The listed posts created at or after `since` (the `since` form also lists older posts
/// edited since; a page lists older ones too).
fn created_since(list: PostList<ListedPost>, since: u64) -> Vec<ListedPost> {
    list.posts
        .into_values()
        .filter(|p| p.create_at >= since as i64)
        .collect()
}

/// Mattermost remembers a `pending_post_id` for 30 s; retries of one create stop a little
/// earlier so a late retry cannot land after the server forgot the first attempt.
const CREATE_POST_DEDUP_WINDOW: Duration = Duration::from_secs(25);

fn json_body<T: Serialize>(value: &T) -> Option<Bytes> {
    Some(Bytes::from(
        serde_json::to_vec(value).expect("request bodies are plain data"),
    ))
}

impl MattermostClient {
    fn get(&self, name: &'static str, segments: &[&str], target: Target) -> Call {
        Call {
            name,
            method: Method::GET,
            url: self.endpoint(segments),
            body: None,
            target,
            retry: Retry::Always,
            give_up_after: None,
        }
    }

    /// `GET /users/me`: the health check. Checks the token and records the bot's identity.
    pub async fn me(&self) -> Result<User, MattermostError> {
        let me: User = self
            .json(self.get("get_me", &["users", "me"], Target::Bot))
            .await?;
        let _ = self.inner.bot.set(me.clone());
        Ok(me)
    }

    /// The bot's user, fetched once.
    pub async fn bot(&self) -> Result<User, MattermostError> {
        self.inner
            .bot
            .get_or_try_init(|| async {
                self.json(self.get("get_me", &["users", "me"], Target::Bot))
                    .await
            })
            .await
            .cloned()
    }

    pub async fn bot_id(&self) -> Result<String, MattermostError> {
        Ok(self.bot().await?.id)
    }

    /// `GET /users/{id}`, cached for the client's TTL (callers map clicks to people with it).
    pub async fn user_by_id(&self, user_id: &str) -> Result<User, MattermostError> {
        let key = user_id.to_string();
        let (user, hit) = self
            .inner
            .users
            .get_or_fetch(&key, || {
                self.json(self.get(
                    "get_user",
                    &["users", user_id],
                    Target::User(UserKey::Id(user_id.into())),
                ))
            })
            .await?;
        self.inner.metrics.cache("users", hit);
        Ok(user)
    }

    /// Drops a cached user, e.g. after a review was refused for a renamed account.
    pub fn invalidate_user(&self, user_id: &str) {
        self.inner.users.invalidate(&user_id.to_string());
    }

    /// `GET /users/email/{email}`. Mattermost stores e-mails lower-case and rejects upper-case
    /// ones, so the address is lower-cased first. 403 when the server hides e-mails.
    pub async fn user_by_email(&self, email: &str) -> Result<User, MattermostError> {
        let email = email.trim().to_lowercase();
        self.json(self.get(
            "get_user_by_email",
            &["users", "email", &email],
            Target::User(UserKey::Email(email.clone())),
        ))
        .await
    }

    /// `GET /users/username/{username}` (without the `@`).
    pub async fn user_by_username(&self, username: &str) -> Result<User, MattermostError> {
        let username = username.trim().trim_start_matches('@').to_lowercase();
        self.json(self.get(
            "get_user_by_username",
            &["users", "username", &username],
            Target::User(UserKey::Username(username.clone())),
        ))
        .await
    }

    /// `GET /teams/name/{name}`.
    pub async fn team_by_name(&self, team: &str) -> Result<Team, MattermostError> {
        self.json(self.get(
            "get_team_by_name",
            &["teams", "name", team],
            Target::Team(team.into()),
        ))
        .await
    }

    /// `GET /teams/name/{team}/channels/name/{channel}` (names as in URLs, not display names).
    pub async fn channel_by_name(
        &self,
        team: &str,
        channel: &str,
    ) -> Result<Channel, MattermostError> {
        self.json(self.get(
            "get_channel_by_name",
            &["teams", "name", team, "channels", "name", channel],
            Target::Channel {
                team: team.into(),
                channel: channel.into(),
            },
        ))
        .await
    }

    /// `GET /channels/{channel_id}/members/{user_id}`: whether the user is in the channel
    /// (`false` on Mattermost's 404 for a missing membership).
    pub async fn is_channel_member(
        &self,
        channel_id: &str,
        user_id: &str,
    ) -> Result<bool, MattermostError> {
        let call = self.get(
            "get_channel_member",
            &["channels", channel_id, "members", user_id],
            Target::ChannelId {
                id: channel_id.into(),
                display: None,
            },
        );
        match self.execute(call).await {
            Ok(_) => Ok(true),
            Err(MattermostError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /channels/direct` with `[bot_id, user_id]`: the bot's direct channel with a user,
    /// created on first use and returned unchanged afterwards (so retries are harmless).
    pub async fn direct_channel(&self, user_id: &str) -> Result<Channel, MattermostError> {
        let bot_id = self.bot_id().await?;
        self.json(Call {
            name: "create_direct_channel",
            method: Method::POST,
            url: self.endpoint(&["channels", "direct"]),
            body: json_body(&[bot_id.as_str(), user_id]),
            target: Target::DirectChannel {
                user_id: user_id.into(),
            },
            retry: Retry::Always,
            give_up_after: None,
        })
        .await
    }

    /// `POST /posts`. Carries a `pending_post_id` (generated here unless given), the same on
    /// every retry, so a retry after a timeout returns the post already made instead of
    /// posting twice.
    pub async fn create_post(&self, post: &NewPost) -> Result<Post, MattermostError> {
        self.send_post(post).await
    }

    /// [`MattermostClient::create_post`] reading only the new post's id from the answer:
    /// Mattermost echoes the whole post, props (attachments, signed buttons) included, which
    /// the bridge would otherwise parse into a JSON tree per post only to drop it.
    pub async fn create_post_id(&self, post: &NewPost) -> Result<String, MattermostError> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        self.send_post::<Created>(post).await.map(|c| c.id)
    }

    async fn send_post<T: serde::de::DeserializeOwned>(
        &self,
        post: &NewPost,
    ) -> Result<T, MattermostError> {
        // Copied only when a key must be added: the body (props with buttons) is large.
        let mut post = std::borrow::Cow::Borrowed(post);
        if post.pending_post_id.is_none() {
            let bot_id = self.bot_id().await?;
            post.to_mut().pending_post_id = Some(self.next_pending_post_id(&bot_id));
        }
        self.json(Call {
            name: if post.root_id.is_some() {
                "create_reply"
            } else {
                "create_post"
            },
            method: Method::POST,
            url: self.endpoint(&["posts"]),
            body: json_body(&*post),
            target: Target::ChannelId {
                id: post.channel_id.clone(),
                display: None,
            },
            retry: Retry::Always,
            give_up_after: Some(CREATE_POST_DEDUP_WINDOW),
        })
        .await
    }

    /// `PUT /posts/{id}`: replaces the message, and the props when given (omitted fields are
    /// blanked by the server, which is why the message is always sent).
    pub async fn update_post(&self, update: &PostUpdate) -> Result<Post, MattermostError> {
        self.json(Call {
            name: "update_post",
            method: Method::PUT,
            url: self.endpoint(&["posts", &update.id]),
            body: json_body(update),
            target: Target::Post(update.id.clone()),
            retry: Retry::Always,
            give_up_after: None,
        })
        .await
    }

    /// `PUT /posts/{id}/patch`: changes only the given fields (`props` as a whole).
    pub async fn patch_post(
        &self,
        post_id: &str,
        patch: &PostPatch,
    ) -> Result<Post, MattermostError> {
        self.json(Call {
            name: "patch_post",
            method: Method::PUT,
            url: self.endpoint(&["posts", post_id, "patch"]),
            body: json_body(patch),
            target: Target::Post(post_id.into()),
            retry: Retry::Always,
            give_up_after: None,
        })
        .await
    }

    /// `GET /posts/{id}`.
    pub async fn get_post(&self, post_id: &str) -> Result<Post, MattermostError> {
        self.json(self.get(
            "get_post",
            &["posts", post_id],
            Target::Post(post_id.into()),
        ))
        .await
    }

    /// The channel's posts (replies included) created at or after `since` (Unix ms), newest
    /// first. One `GET /channels/{id}/posts?since=` answers when the channel is quiet; the
    /// server caps that form at 1000 posts changed since then (edits count), so a full answer
    /// is read again page by page (`page`/`per_page`, newest first) back to `since`.
    pub async fn channel_posts_since(
        &self,
        channel_id: &str,
        since: u64,
    ) -> Result<Vec<ListedPost>, MattermostError> {
        // `GET /channels/{id}/posts` with `query`, under the call's metric name.
        let listing = |name: &'static str, query: &[(&str, String)]| {
            let mut call = self.get(
                name,
                &["channels", channel_id, "posts"],
                Target::ChannelId {
                    id: channel_id.into(),
                    display: None,
                },
            );
            call.url.query_pairs_mut().extend_pairs(query);
            call
        };
        let call = listing("get_channel_posts_since", &[("since", since.to_string())]);
        let list: PostList<ListedPost> = self.json(call).await?;
        if list.order.len() < SINCE_CAP {
            return Ok(created_since(list, since));
        }
        let mut all = Vec::new();
        for page in 0.. {
            let call = listing(
                "get_channel_posts",
                &[("page", page.to_string()), ("per_page", PAGE.to_string())],
            );
            let list: PostList<ListedPost> = self.json(call).await?;
            let full = list.order.len() >= PAGE;
            let oldest = list
                .order
                .last()
                .and_then(|id| list.posts.get(id))
                .map_or(0, |p| p.create_at);
            all.extend(created_since(list, since));
            if !full || oldest < since as i64 {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /posts/{id}/thread`: the thread's root and every reply.
    pub async fn thread(&self, post_id: &str) -> Result<Vec<ListedPost>, MattermostError> {
        let list: PostList<ListedPost> = self
            .json(self.get(
                "get_post_thread",
                &["posts", post_id, "thread"],
                Target::Post(post_id.into()),
            ))
            .await?;
        Ok(list.posts.into_values().collect())
    }

    /// `POST /actions/dialogs/open`. Not retried after the request may have arrived: a second
    /// attempt could show the dialog twice, and the trigger id expires in 30 s anyway.
    pub async fn open_dialog(&self, dialog: &OpenDialog) -> Result<(), MattermostError> {
        self.execute(Call {
            name: "open_dialog",
            method: Method::POST,
            url: self.endpoint(&["actions", "dialogs", "open"]),
            body: json_body(dialog),
            target: Target::Dialog,
            retry: Retry::IfNotSent,
            give_up_after: None,
        })
        .await
        .map(drop)
    }

    /// `POST /reactions` as the bot (an upsert on the server, so retries are harmless).
    pub async fn add_reaction(
        &self,
        post_id: &str,
        emoji_name: &str,
    ) -> Result<(), MattermostError> {
        let reaction = NewReaction {
            user_id: self.bot_id().await?,
            post_id: post_id.into(),
            emoji_name: emoji_name.to_lowercase(),
        };
        self.execute(Call {
            name: "add_reaction",
            method: Method::POST,
            url: self.endpoint(&["reactions"]),
            body: json_body(&reaction),
            target: Target::Post(post_id.into()),
            retry: Retry::Always,
            give_up_after: None,
        })
        .await
        .map(drop)
    }
}
