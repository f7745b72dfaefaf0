//! The simulator's state (one struct under one lock) and its rules for users, teams, channels
//! and DM channels per user pair; post rules are in `posts.rs`, trigger ids and dialogs in
//! `dialogs.rs`. `routes.rs` only parses and serializes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use super::errors::ApiError;
use super::ids::{is_valid_id, new_id, now_ms};
use super::model::{
    EphemeralPost, OpenedDialog, SimChannel, SimPost, SimReaction, SimTeam, SimUser,
};

/// Server settings the rules depend on.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub max_post_runes: usize,
    pub hide_emails: bool,
    pub dedup_ttl: Duration,
    pub dedup_capacity: usize,
    /// `pending_post_id` de-duplication on (the server's default); off imitates a cluster
    /// whose nodes do not share the cache, or a retry after the 30 s window.
    pub dedup: bool,
    pub trigger_ttl: Duration,
}

pub(super) struct Trigger {
    pub(super) user_id: String,
    pub(super) channel_id: String,
    pub(super) issued: Instant,
}

/// `seen_pending_post_ids`: key → (post id, expiry), bounded like Mattermost's LRU.
#[derive(Default)]
pub(super) struct PendingCache {
    map: HashMap<String, (String, Instant)>,
    order: VecDeque<String>,
}

impl PendingCache {
    pub(super) fn get(&mut self, key: &str, now: Instant) -> Option<String> {
        match self.map.get(key) {
            Some((id, expires)) if *expires > now => Some(id.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(super) fn insert(
        &mut self,
        key: String,
        post_id: String,
        expires: Instant,
        capacity: usize,
    ) {
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
    pub(super) rules: Rules,
    pub(crate) bot_id: String,
    pub(crate) users: HashMap<String, SimUser>,
    pub(super) by_username: HashMap<String, String>,
    pub(super) by_email: HashMap<String, String>,
    pub(super) tokens: HashMap<String, String>,
    pub(crate) teams: HashMap<String, SimTeam>,
    pub(super) team_by_name: HashMap<String, String>,
    pub(crate) channels: HashMap<String, SimChannel>,
    pub(super) channel_by_name: HashMap<(String, String), String>,
    pub(super) team_members: HashSet<(String, String)>,
    pub(super) channel_members: HashSet<(String, String)>,
    pub(super) dms: HashMap<(String, String), String>,
    pub(crate) posts: HashMap<String, SimPost>,
    pub(crate) post_order: Vec<String>,
    /// When each post of `post_order` was stored (same index): the benchmark's latency hook.
    pub(crate) stored_at: Vec<std::time::Instant>,
    pub(crate) channel_posts: HashMap<String, Vec<String>>,
    pub(crate) replies: HashMap<String, Vec<String>>,
    pub(super) pending: PendingCache,
    pub(super) triggers: HashMap<String, Trigger>,
    /// Trigger ids in issue order, so expired ones are dropped in O(1) per issue.
    pub(super) trigger_order: VecDeque<(Instant, String)>,
    pub(crate) dialogs: Vec<OpenedDialog>,
    pub(crate) ephemeral: Vec<EphemeralPost>,
    pub(crate) reactions: Vec<SimReaction>,
    pub(crate) command_hooks: HashMap<String, (String, String)>,
}

pub(super) fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
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
            stored_at: Vec::new(),
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

    pub(super) fn team_named(&self, name: &str) -> Result<&SimTeam, ApiError> {
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

    /// `GET /channels/{channel_id}/members/{user_id}`: the membership, or 404 when the user
    /// is not in the channel (Mattermost's `app.channel.get_member.missing.app_error`).
    pub(crate) fn channel_member(
        &self,
        viewer: &str,
        channel_id: &str,
        user_id: &str,
    ) -> Result<Value, ApiError> {
        let channel = self.channels.get(channel_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "app.channel.get.existing.app_error",
                "Unable to find the existing channel.",
            )
        })?;
        if !self.can_read(&channel.id, viewer) {
            return Err(ApiError::permission("read_channel"));
        }
        if !self.is_member(channel_id, user_id) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "app.channel.get_member.missing.app_error",
                "No channel member found for that user ID and channel ID.",
            ));
        }
        Ok(
            serde_json::json!({"channel_id": channel_id, "user_id": user_id, "roles": "channel_user", "scheme_user": true, "scheme_admin": false}),
        )
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
}

pub(super) fn sorted_pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.into(), b.into())
    } else {
        (b.into(), a.into())
    }
}
