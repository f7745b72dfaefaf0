//! The simulator's state and the server rules it enforces: who may read or post where, thread
//! roots, the post length limit, `pending_post_id` de-duplication, DM channels per user pair,
//! trigger ids and dialogs. Synchronous methods under one lock; `routes.rs` only parses.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::errors::ApiError;
use super::ids::{is_valid_id, new_id, now_ms};
use super::model::{
    EphemeralPost, OpenedDialog, PostRevision, SimChannel, SimPost, SimReaction, SimTeam, SimUser,
};

/// Server settings the rules depend on.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub max_post_runes: usize,
    pub hide_emails: bool,
    pub dedup_ttl: Duration,
    pub dedup_capacity: usize,
    pub trigger_ttl: Duration,
}

struct Trigger {
    user_id: String,
    channel_id: String,
    issued: Instant,
}

/// `seen_pending_post_ids`: key → (post id, expiry), bounded like Mattermost's LRU.
#[derive(Default)]
struct PendingCache {
    map: HashMap<String, (String, Instant)>,
    order: VecDeque<String>,
}

impl PendingCache {
    fn get(&mut self, key: &str, now: Instant) -> Option<String> {
        match self.map.get(key) {
            Some((id, expires)) if *expires > now => Some(id.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: String, post_id: String, expires: Instant, capacity: usize) {
        while self.map.len() >= capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, (post_id, expires));
    }
}

pub(crate) struct Store {
    rules: Rules,
    pub(crate) bot_id: String,
    pub(crate) users: HashMap<String, SimUser>,
    by_username: HashMap<String, String>,
    by_email: HashMap<String, String>,
    tokens: HashMap<String, String>,
    pub(crate) teams: HashMap<String, SimTeam>,
    team_by_name: HashMap<String, String>,
    pub(crate) channels: HashMap<String, SimChannel>,
    channel_by_name: HashMap<(String, String), String>,
    team_members: HashSet<(String, String)>,
    channel_members: HashSet<(String, String)>,
    dms: HashMap<(String, String), String>,
    pub(crate) posts: HashMap<String, SimPost>,
    pub(crate) post_order: Vec<String>,
    pub(crate) channel_posts: HashMap<String, Vec<String>>,
    pub(crate) replies: HashMap<String, Vec<String>>,
    pending: PendingCache,
    triggers: HashMap<String, Trigger>,
    /// Trigger ids in issue order, so expired ones are dropped in O(1) per issue.
    trigger_order: VecDeque<(Instant, String)>,
    pub(crate) dialogs: Vec<OpenedDialog>,
    pub(crate) ephemeral: Vec<EphemeralPost>,
    pub(crate) reactions: Vec<SimReaction>,
    pub(crate) command_hooks: HashMap<String, (String, String)>,
}

fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

impl Store {
    /// A store with the bot user, whose token is `bot_token`.
    pub(crate) fn new(rules: Rules, bot_username: &str, bot_token: &str) -> Self {
        let mut store = Self {
            rules,
            bot_id: String::new(),
            users: HashMap::new(),
            by_username: HashMap::new(),
            by_email: HashMap::new(),
            tokens: HashMap::new(),
            teams: HashMap::new(),
            team_by_name: HashMap::new(),
            channels: HashMap::new(),
            channel_by_name: HashMap::new(),
            team_members: HashSet::new(),
            channel_members: HashSet::new(),
            dms: HashMap::new(),
            posts: HashMap::new(),
            post_order: Vec::new(),
            channel_posts: HashMap::new(),
            replies: HashMap::new(),
            pending: PendingCache::default(),
            triggers: HashMap::new(),
            trigger_order: VecDeque::new(),
            dialogs: Vec::new(),
            ephemeral: Vec::new(),
            reactions: Vec::new(),
            command_hooks: HashMap::new(),
        };
        let bot = store.add_user(bot_username, &format!("{bot_username}@bots.local"), true);
        store.tokens.insert(bot_token.to_string(), bot.clone());
        store.bot_id = bot;
        store
    }

    // ---- set-up -------------------------------------------------------------------------

    pub(crate) fn add_user(&mut self, username: &str, email: &str, is_bot: bool) -> String {
        let id = new_id();
        let user = SimUser {
            id: id.clone(),
            username: username.to_lowercase(),
            email: email.to_lowercase(),
            first_name: String::new(),
            last_name: String::new(),
            nickname: String::new(),
            is_bot,
            roles: "system_user".into(),
            create_at: now_ms(),
            delete_at: 0,
        };
        self.by_username.insert(user.username.clone(), id.clone());
        self.by_email.insert(user.email.clone(), id.clone());
        self.users.insert(id.clone(), user);
        id
    }

    pub(crate) fn add_token(&mut self, token: &str, user_id: &str) {
        self.tokens.insert(token.into(), user_id.into());
    }

    pub(crate) fn add_team(&mut self, name: &str, open: bool) -> String {
        let id = new_id();
        self.team_by_name.insert(name.into(), id.clone());
        self.teams.insert(
            id.clone(),
            SimTeam {
                id: id.clone(),
                name: name.into(),
                display_name: name.into(),
                open,
                create_at: now_ms(),
            },
        );
        id
    }

    pub(crate) fn add_channel(&mut self, team_id: &str, name: &str, private: bool) -> String {
        let id = new_id();
        self.channel_by_name
            .insert((team_id.into(), name.into()), id.clone());
        self.channels.insert(
            id.clone(),
            SimChannel {
                id: id.clone(),
                team_id: team_id.into(),
                kind: if private { "P" } else { "O" },
                name: name.into(),
                display_name: name.into(),
                creator_id: String::new(),
                create_at: now_ms(),
                last_post_at: 0,
                total_msg_count: 0,
            },
        );
        id
    }

    pub(crate) fn add_team_member(&mut self, team_id: &str, user_id: &str) {
        self.team_members.insert((team_id.into(), user_id.into()));
    }

    /// Adds a channel member (and, as `/invite` requires, a member of its team).
    pub(crate) fn add_channel_member(&mut self, channel_id: &str, user_id: &str) {
        if let Some(team) = self.channels.get(channel_id).map(|c| c.team_id.clone())
            && !team.is_empty()
        {
            self.add_team_member(&team, user_id);
        }
        self.channel_members
            .insert((channel_id.into(), user_id.into()));
    }

    pub(crate) fn remove_channel_member(&mut self, channel_id: &str, user_id: &str) {
        self.channel_members
            .remove(&(channel_id.to_string(), user_id.to_string()));
    }

    pub(crate) fn is_member(&self, channel_id: &str, user_id: &str) -> bool {
        self.channel_members
            .contains(&(channel_id.to_string(), user_id.to_string()))
    }

    pub(crate) fn dm_channel(&self, a: &str, b: &str) -> Option<String> {
        self.dms.get(&sorted_pair(a, b)).cloned()
    }

    // ---- auth ---------------------------------------------------------------------------

    pub(crate) fn authenticate(&self, token: &str) -> Option<String> {
        self.tokens.get(token).cloned()
    }

    fn show_email(&self, viewer: &str, user: &SimUser) -> bool {
        !self.rules.hide_emails
            || viewer == user.id
            || self.users.get(viewer).is_some_and(SimUser::is_admin)
    }

    // ---- users, teams, channels ---------------------------------------------------------

    pub(crate) fn get_user(&self, viewer: &str, id: &str) -> Result<Value, ApiError> {
        let id = if id == "me" { viewer } else { id };
        if !is_valid_id(id) {
            return Err(ApiError::invalid_url_param("user_id"));
        }
        let user = self.users.get(id).ok_or_else(ApiError::missing_account)?;
        Ok(user.to_json(self.show_email(viewer, user)))
    }

    pub(crate) fn user_by_email(&self, viewer: &str, email: &str) -> Result<Value, ApiError> {
        // Mattermost's IsValidEmail refuses upper-case addresses.
        if !email.contains('@') || email.chars().any(|c| c.is_uppercase()) {
            return Err(ApiError::invalid_url_param("email"));
        }
        if self.rules.hide_emails && !self.users.get(viewer).is_some_and(SimUser::is_admin) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "api.user.get_user_by_email.permissions.app_error",
                "Unable to get user by email.",
            ));
        }
        let id = self
            .by_email
            .get(email)
            .ok_or_else(ApiError::missing_account)?;
        Ok(self.users[id].to_json(true))
    }

    pub(crate) fn user_by_username(&self, viewer: &str, name: &str) -> Result<Value, ApiError> {
        let user = self
            .by_username
            .get(&name.to_lowercase())
            .map(|id| &self.users[id])
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "app.user.get_by_username.app_error",
                    "Unable to find an existing account matching your username for this team. This team may require an invite from the team owner to join.",
                )
            })?;
        Ok(user.to_json(self.show_email(viewer, user)))
    }

    fn team_named(&self, name: &str) -> Result<&SimTeam, ApiError> {
        self.team_by_name
            .get(name)
            .map(|id| &self.teams[id])
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "app.team.get_by_name.missing.app_error",
                    "Unable to find the existing team.",
                )
            })
    }

    pub(crate) fn team_by_name(&self, viewer: &str, name: &str) -> Result<Value, ApiError> {
        let team = self.team_named(name)?;
        if !team.open
            && !self
                .team_members
                .contains(&(team.id.clone(), viewer.to_string()))
        {
            return Err(ApiError::permission("view_team"));
        }
        Ok(team.to_json())
    }

    pub(crate) fn channel_by_names(
        &self,
        viewer: &str,
        team: &str,
        channel: &str,
    ) -> Result<Value, ApiError> {
        let team = self.team_named(team)?;
        let channel = self
            .channel_by_name
            .get(&(team.id.clone(), channel.to_string()))
            .map(|id| &self.channels[id])
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "app.channel.get_by_name.missing.app_error",
                    "Channel does not exist.",
                )
            })?;
        let in_team = self
            .team_members
            .contains(&(team.id.clone(), viewer.to_string()));
        let readable = self.is_member(&channel.id, viewer) || (channel.kind == "O" && in_team);
        if !readable {
            return Err(ApiError::permission("read_channel"));
        }
        Ok(channel.to_json())
    }

    /// `POST /channels/direct`: the DM of two users, created once per sorted pair.
    pub(crate) fn direct_channel(&mut self, actor: &str, body: &Value) -> Result<Value, ApiError> {
        let ids: Vec<&str> = body
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.len() != 2 || body.as_array().map(Vec::len) != Some(2) {
            return Err(ApiError::invalid_param("user_ids"));
        }
        if !ids.iter().all(|id| is_valid_id(id)) {
            return Err(ApiError::invalid_param("user_id"));
        }
        if !ids.contains(&actor) {
            return Err(ApiError::permission("manage_system"));
        }
        for id in &ids {
            if !self.users.contains_key(*id) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "api.channel.create_direct_channel.invalid_user.app_error",
                    "Invalid user ID for direct channel creation.",
                ));
            }
        }
        let pair = sorted_pair(ids[0], ids[1]);
        if let Some(id) = self.dms.get(&pair) {
            return Ok(self.channels[id].to_json());
        }
        let id = new_id();
        let channel = SimChannel {
            id: id.clone(),
            team_id: String::new(),
            kind: "D",
            name: format!("{}__{}", pair.0, pair.1),
            display_name: String::new(),
            creator_id: actor.into(),
            create_at: now_ms(),
            last_post_at: 0,
            total_msg_count: 0,
        };
        let json = channel.to_json();
        self.channels.insert(id.clone(), channel);
        self.channel_members.insert((id.clone(), pair.0.clone()));
        self.channel_members.insert((id.clone(), pair.1.clone()));
        self.dms.insert(pair, id);
        Ok(json)
    }

    // ---- posts --------------------------------------------------------------------------

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

    // ---- triggers and dialogs -----------------------------------------------------------

    /// A trigger id for a click or slash command by `user_id` in `channel_id`.
    pub(crate) fn issue_trigger(
        &mut self,
        user_id: &str,
        channel_id: &str,
        now: Instant,
    ) -> String {
        let id = format!("{}{}", new_id(), new_id());
        // Kept well past expiry, so a late dialog gets "expired" rather than "unknown", as the
        // server (which decodes the signed id) answers.
        let keep = self.rules.trigger_ttl * 10;
        while let Some((issued, old)) = self.trigger_order.front() {
            if now.duration_since(*issued) <= keep {
                break;
            }
            self.triggers.remove(old);
            self.trigger_order.pop_front();
        }
        self.trigger_order.push_back((now, id.clone()));
        self.triggers.insert(
            id.clone(),
            Trigger {
                user_id: user_id.into(),
                channel_id: channel_id.into(),
                issued: now,
            },
        );
        id
    }

    /// `POST /actions/dialogs/open`: authenticated by the trigger id alone.
    pub(crate) fn open_dialog(&mut self, body: &Value, now: Instant) -> Result<Value, ApiError> {
        let trigger_id = str_field(body, "trigger_id").unwrap_or("");
        let trigger = self.triggers.get(trigger_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "interactive_message.decode_trigger_id.verify_signature_failed",
                "Failed to verify signature of trigger ID for interactive dialog.",
            )
        })?;
        if now.duration_since(trigger.issued) > self.rules.trigger_ttl {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "interactive_message.decode_trigger_id.expired",
                format!(
                    "Trigger ID for interactive dialog is expired. Trigger IDs live for a maximum of {}s.",
                    self.rules.trigger_ttl.as_secs()
                ),
            ));
        }
        let url = str_field(body, "url").unwrap_or("");
        if url.is_empty() {
            return Err(ApiError::invalid_body_param("url"));
        }
        let dialog = body.get("dialog").filter(|d| d.is_object());
        let title = dialog.and_then(|d| str_field(d, "title")).unwrap_or("");
        let elements = dialog
            .and_then(|d| d.get("elements"))
            .and_then(Value::as_array);
        if title.is_empty() || title.chars().count() > 24 {
            return Err(ApiError::invalid_body_param("dialog.title"));
        }
        let Some(elements) = elements else {
            return Err(ApiError::invalid_body_param("dialog.elements"));
        };
        for e in elements {
            let name_ok = str_field(e, "display_name").is_some_and(|n| n.chars().count() <= 24)
                && str_field(e, "name").is_some_and(|n| !n.is_empty() && n.len() <= 300);
            let kind_ok = matches!(
                str_field(e, "type"),
                Some("text" | "textarea" | "select" | "bool" | "radio" | "date" | "datetime")
            );
            if !name_ok || !kind_ok {
                return Err(ApiError::invalid_body_param("dialog.elements"));
            }
        }
        self.dialogs.push(OpenedDialog {
            trigger_id: trigger_id.into(),
            user_id: trigger.user_id.clone(),
            channel_id: trigger.channel_id.clone(),
            url: url.into(),
            dialog: dialog.cloned().unwrap_or(Value::Null),
        });
        Ok(json!({"status": "OK"}))
    }
}

fn sorted_pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.into(), b.into())
    } else {
        (b.into(), a.into())
    }
}
