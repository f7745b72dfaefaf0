//! Post rules of the simulated server: membership, the length limit, thread roots,
//! `pending_post_id` de-duplication, edits (PUT blanks, patch keeps) and reactions.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::errors::ApiError;
use super::ids::{is_valid_id, new_id, now_ms};
use super::model::{PostRevision, SimPost, SimReaction};
use super::store::{Store, str_field};

impl Store {
    fn check_length(&self, message: &str) -> Result<(), ApiError> {
        let runes = message.chars().count();
        if runes > self.rules.max_post_runes {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "model.post.is_valid.message_length.app_error",
                format!(
                    "Message length is {runes} characters, more than the maximum of {} characters.",
                    self.rules.max_post_runes
                ),
            ));
        }
        Ok(())
    }

    /// `POST /posts`. Returns the post JSON (201 in every success case, duplicates included).
    pub(crate) fn create_post(
        &mut self,
        actor: &str,
        body: &Value,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let (Some(channel_id), true) = (str_field(body, "channel_id"), body.is_object()) else {
            return Err(ApiError::invalid_body_param("post"));
        };
        let message = str_field(body, "message").unwrap_or("");
        self.check_length(message)?;
        if !self.channels.contains_key(channel_id) || !self.is_member(channel_id, actor) {
            return Err(ApiError::permission("create_post"));
        }
        let pending = str_field(body, "pending_post_id").unwrap_or("").to_string();
        if !pending.is_empty()
            && self.rules.dedup
            && let Some(existing) = self.pending.get(&pending, now)
            && let Some(post) = self.posts.get(&existing)
        {
            return Ok(post.to_json_from_store());
        }
        let root_id = str_field(body, "root_id").unwrap_or("").to_string();
        if !root_id.is_empty() {
            let root = self
                .posts
                .get(&root_id)
                .filter(|r| r.delete_at == 0 && r.root_id.is_empty())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "api.post.create_post.root_id.app_error",
                        "Invalid RootId parameter.",
                    )
                })?;
            if root.channel_id != channel_id {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "api.post.create_post.channel_root_id.app_error",
                    "Invalid ChannelId for RootId parameter.",
                ));
            }
        }
        let mut props = match body.get("props") {
            Some(Value::Object(o)) => Value::Object(o.clone()),
            _ => json!({}),
        };
        if self.users.get(actor).is_some_and(|u| u.is_bot) {
            props["from_bot"] = json!("true");
        }
        let at = now_ms();
        let post = SimPost {
            id: new_id(),
            create_at: at,
            update_at: at,
            edit_at: 0,
            delete_at: 0,
            user_id: actor.into(),
            channel_id: channel_id.into(),
            root_id: root_id.clone(),
            message: message.into(),
            props,
            pending_post_id: pending.clone(),
            is_pinned: false,
            has_reactions: false,
            reply_count: 0,
            history: Vec::new(),
        };
        let json = post.to_json();
        let id = post.id.clone();
        if !root_id.is_empty() {
            self.replies
                .entry(root_id.clone())
                .or_default()
                .push(id.clone());
            if let Some(root) = self.posts.get_mut(&root_id) {
                root.reply_count += 1;
            }
        }
        if let Some(c) = self.channels.get_mut(channel_id) {
            c.last_post_at = at;
            c.total_msg_count += 1;
        }
        self.channel_posts
            .entry(channel_id.into())
            .or_default()
            .push(id.clone());
        self.post_order.push(id.clone());
        self.stored_at.push(std::time::Instant::now());
        self.posts.insert(id.clone(), post);
        if !pending.is_empty() {
            let expires = now + self.rules.dedup_ttl;
            self.pending
                .insert(pending, id, expires, self.rules.dedup_capacity);
        }
        Ok(json)
    }

    pub(crate) fn get_post(&self, actor: &str, id: &str) -> Result<Value, ApiError> {
        let post = self
            .posts
            .get(id)
            .filter(|p| p.delete_at == 0)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "app.post.get.app_error",
                    "Unable to get the post.",
                )
            })?;
        if !self.is_member(&post.channel_id, actor) {
            return Err(ApiError::permission("read_channel"));
        }
        Ok(post.to_json())
    }

    /// `PUT /posts/{id}` (`patch == false`: omitted fields are blanked, `props: null` kept) or
    /// `PUT /posts/{id}/patch` (only given fields change; `props` replaces the whole map).
    pub(crate) fn edit_post(
        &mut self,
        actor: &str,
        id: &str,
        body: &Value,
        patch: bool,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_body_param("post"));
        }
        if !patch && str_field(body, "id") != Some(id) {
            return Err(ApiError::invalid_param("id"));
        }
        let is_bot = self.users.get(actor).is_some_and(|u| u.is_bot);
        let Some(post) = self.posts.get(id).filter(|p| p.delete_at == 0) else {
            // Mattermost checks the permission on the post's channel first, so a missing post
            // is a 403, not a 404.
            return Err(ApiError::permission("edit_post"));
        };
        if !self.is_member(&post.channel_id, actor) {
            return Err(ApiError::permission("edit_post"));
        }
        if post.user_id != actor {
            return Err(ApiError::permission("edit_others_posts"));
        }
        let message = match (patch, str_field(body, "message")) {
            (_, Some(m)) => Some(m.to_string()),
            (false, None) => Some(String::new()),
            (true, None) => None,
        };
        if let Some(m) = &message {
            self.check_length(m)?;
        }
        let post = self.posts.get_mut(id).expect("checked above");
        let at = now_ms();
        post.history.push(PostRevision {
            message: post.message.clone(),
            props: post.props.clone(),
            edit_at: post.edit_at,
        });
        if let Some(m) = message
            && m != post.message
        {
            post.message = m;
            post.edit_at = at;
        }
        if let Some(Value::Object(props)) = body.get("props") {
            let mut props = Value::Object(props.clone());
            if is_bot {
                props["from_bot"] = json!("true");
            }
            post.props = props;
        }
        let flag = |key: &str, old: bool| match (patch, body.get(key).and_then(Value::as_bool)) {
            (_, Some(v)) => v,
            (false, None) => false,
            (true, None) => old,
        };
        post.is_pinned = flag("is_pinned", post.is_pinned);
        post.has_reactions = flag("has_reactions", post.has_reactions);
        post.update_at = at;
        Ok(post.to_json())
    }

    /// `GET /channels/{channel_id}/posts?page=&per_page=`: a page of the channel's posts
    /// (replies included), newest first, as a `PostList`. Like the server, the map also holds
    /// the roots of replies on the page, and the cursors name the posts just outside it.
    pub(crate) fn channel_page(
        &self,
        actor: &str,
        channel_id: &str,
        page: usize,
        per_page: usize,
    ) -> Result<Value, ApiError> {
        if !is_valid_id(channel_id) {
            return Err(ApiError::invalid_url_param("channel_id"));
        }
        // The server checks the permission first: an unknown channel is a 403 as well.
        if !self.can_read(channel_id, actor) {
            return Err(ApiError::permission("read_channel"));
        }
        let newest_first: Vec<&SimPost> = self
            .channel_posts
            .get(channel_id)
            .into_iter()
            .flatten()
            .rev()
            .map(|id| &self.posts[id])
            .filter(|p| p.delete_at == 0)
            .collect();
        let start = page.saturating_mul(per_page).min(newest_first.len());
        let end = start.saturating_add(per_page).min(newest_first.len());
        let shown = &newest_first[start..end];
        let mut posts: Map<String, Value> =
            shown.iter().map(|p| (p.id.clone(), p.to_json())).collect();
        for reply in shown.iter().filter(|p| !p.root_id.is_empty()) {
            if let Some(root) = self.posts.get(&reply.root_id) {
                posts
                    .entry(root.id.clone())
                    .or_insert_with(|| root.to_json());
            }
        }
        let cursor = |i: Option<usize>| {
            i.and_then(|i| newest_first.get(i))
                .map_or_else(String::new, |p| p.id.clone())
        };
        Ok(json!({
            "order": shown.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            "posts": posts,
            "next_post_id": cursor(start.checked_sub(1)),
            "prev_post_id": cursor((end > start).then_some(end)),
            "has_next": end < newest_first.len(),
        }))
    }

    /// `read_channel`: a member, or anyone in the team for an open channel.
    pub(crate) fn can_read(&self, channel_id: &str, viewer: &str) -> bool {
        self.channels.get(channel_id).is_some_and(|c| {
            self.is_member(channel_id, viewer)
                || (c.kind == "O"
                    && self
                        .team_members
                        .contains(&(c.team_id.clone(), viewer.to_string())))
        })
    }

    /// `GET /channels/{id}/posts?since=<ms>` as the server answers it (`GetPostsSince`):
    /// every post of the channel changed after `since` (`update_at > since`), deleted ones
    /// included, newest first, at most 1000, in a `PostList` without paging.
    pub(crate) fn channel_posts_since(
        &self,
        actor: &str,
        channel_id: &str,
        since: i64,
    ) -> Result<Value, ApiError> {
        if !is_valid_id(channel_id) {
            return Err(ApiError::invalid_url_param("channel_id"));
        }
        if !self.can_read(channel_id, actor) {
            return Err(ApiError::permission("read_channel"));
        }
        let mut changed: Vec<&SimPost> = self
            .channel_posts
            .get(channel_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.posts.get(id))
            .filter(|p| p.update_at > since || p.delete_at > since)
            .collect();
        changed.sort_by_key(|p| std::cmp::Reverse(p.create_at));
        changed.truncate(1000);
        let order: Vec<&str> = changed.iter().map(|p| p.id.as_str()).collect();
        let posts: Map<String, Value> = changed
            .iter()
            .map(|p| (p.id.clone(), p.to_json()))
            .collect();
        Ok(
            json!({"order": order, "posts": posts, "next_post_id": "", "prev_post_id": "", "has_next": false}),
        )
    }

    pub(crate) fn thread(&self, actor: &str, id: &str) -> Result<Value, ApiError> {
        self.get_post(actor, id)?;
        let root_id = match self.posts[id].root_id.as_str() {
            "" => id,
            root => root,
        };
        let mut order = vec![root_id.to_string()];
        order.extend(self.replies.get(root_id).cloned().unwrap_or_default());
        let posts: Map<String, Value> = order
            .iter()
            .filter_map(|id| self.posts.get(id).map(|p| (id.clone(), p.to_json())))
            .collect();
        Ok(
            json!({"order": order, "posts": posts, "next_post_id": "", "prev_post_id": "", "has_next": false}),
        )
    }

    pub(crate) fn add_reaction(&mut self, actor: &str, body: &Value) -> Result<Value, ApiError> {
        let (Some(user_id), Some(post_id), Some(emoji)) = (
            str_field(body, "user_id"),
            str_field(body, "post_id"),
            str_field(body, "emoji_name"),
        ) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "api.reaction.save_reaction.invalid.app_error",
                "Reaction is not valid.",
            ));
        };
        if user_id != actor {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "api.reaction.save_reaction.user_id.app_error",
                "You cannot save reaction for the other user.",
            ));
        }
        if emoji.is_empty()
            || !emoji
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '_'))
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "model.reaction.is_valid.emoji_name.app_error",
                "Invalid emoji name.",
            ));
        }
        self.get_post(actor, post_id)?;
        let reaction = SimReaction {
            user_id: actor.into(),
            post_id: post_id.into(),
            emoji_name: emoji.to_lowercase(),
            create_at: now_ms(),
        };
        let json = reaction.to_json();
        if !self.reactions.iter().any(|r| {
            r.user_id == reaction.user_id
                && r.post_id == reaction.post_id
                && r.emoji_name == reaction.emoji_name
        }) {
            self.reactions.push(reaction);
        }
        if let Some(p) = self.posts.get_mut(post_id) {
            p.has_reactions = true;
        }
        Ok(json)
    }
}
