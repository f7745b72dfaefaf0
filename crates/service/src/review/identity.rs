//! Who clicked: a Mattermost user id is bound to exactly one Teleport user through a user
//! trait (default `mattermost_user_id`), looked up in a briefly cached index of all users, or
//! by e-mail = Teleport user name when the admin explicitly allows it. [`TeleportDirectory`]
//! is the review pipeline's directory port over both clients.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::Outcome;
use super::ports::Directory;
use crate::access::User;
use crate::mattermost::MattermostClient;
use crate::sync;
use crate::teleport::{TeleportClient, TeleportError};

/// How long a listing of users answers lookups; a removed trait stops working within this.
pub const INDEX_TTL: Duration = Duration::from_secs(60);
/// A lookup that misses reloads the index at most this often, so unknown users clicking
/// cannot make us list all users on every click.
pub const MISS_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The outcome of binding one Mattermost user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// Exactly one Teleport user: the review author.
    User(String),
    /// No Teleport user is bound to this Mattermost user.
    Unlinked,
    /// Several Teleport users claim this Mattermost user: refuse rather than guess.
    Ambiguous(Vec<String>),
}

/// One listing of Teleport users, indexed for lookups.
#[derive(Debug)]
pub struct Snapshot {
    /// Trait value (a Mattermost user id) → Teleport users carrying it, sorted.
    by_chat_id: HashMap<String, Vec<String>>,
    /// Teleport user name → the trait values it carries (empty when unbound).
    bound: HashMap<String, Vec<String>>,
    loaded: Instant,
}

impl Snapshot {
    pub fn build(trait_name: &str, users: &[User], loaded: Instant) -> Self {
        let mut by_chat_id: HashMap<String, Vec<String>> = HashMap::new();
        let mut bound = HashMap::with_capacity(users.len());
        for u in users {
            let values: Vec<String> = u
                .traits
                .get(trait_name)
                .into_iter()
                .flatten()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            for v in &values {
                let names = by_chat_id.entry(v.clone()).or_default();
                if !names.contains(&u.name) {
                    names.push(u.name.clone());
                }
            }
            bound.insert(u.name.clone(), values);
        }
        by_chat_id.values_mut().for_each(|v| v.sort());
        Self {
            by_chat_id,
            bound,
            loaded,
        }
    }

    /// The Teleport user whose trait holds `chat_user_id`.
    pub fn by_trait(&self, chat_user_id: &str) -> Binding {
        match self.by_chat_id.get(chat_user_id).map(Vec::as_slice) {
            None | Some([]) => Binding::Unlinked,
            Some([one]) => Binding::User(one.clone()),
            Some(many) => Binding::Ambiguous(many.to_vec()),
        }
    }

    /// The Teleport user named exactly `email` (lower-cased, as Mattermost stores it), unless
    /// that user is explicitly bound to another Mattermost account through the trait.
    pub fn by_email(&self, email: &str, chat_user_id: &str) -> Binding {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return Binding::Unlinked;
        }
        match self.bound.get(&email) {
            Some(ids) if ids.is_empty() || ids.iter().any(|i| i == chat_user_id) => {
                Binding::User(email)
            }
            _ => Binding::Unlinked,
        }
    }

    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.loaded)
    }
}

/// The cached index. Lookups that hit cost nothing; a stale index, or a miss on an index
/// older than [`MISS_REFRESH_INTERVAL`], lists the users again (one listing at a time).
#[derive(Debug)]
pub struct UserIndex {
    trait_name: String,
    ttl: Duration,
    miss_refresh: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl UserIndex {
    pub fn new(trait_name: &str) -> Self {
        Self::with_timing(trait_name, INDEX_TTL, MISS_REFRESH_INTERVAL)
    }

    pub fn with_timing(trait_name: &str, ttl: Duration, miss_refresh: Duration) -> Self {
        Self {
            trait_name: trait_name.to_string(),
            ttl,
            miss_refresh,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn trait_name(&self) -> &str {
        &self.trait_name
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        sync::read(&self.current).clone()
    }

    /// A snapshot good enough to look up `chat_user_id`, listing users with `list` when the
    /// cached one is stale, or misses and may be refreshed.
    pub async fn snapshot<F, Fut>(
        &self,
        chat_user_id: &str,
        list: F,
    ) -> Result<Arc<Snapshot>, TeleportError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<User>, TeleportError>>,
    {
        let usable = |s: &Snapshot, now: Instant| {
            let age = s.age(now);
            age < self.ttl && (s.by_chat_id.contains_key(chat_user_id) || age < self.miss_refresh)
        };
        let seen = self.cached();
        if let Some(s) = &seen
            && usable(s, Instant::now())
        {
            return Ok(s.clone());
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(s) = self.cached()
            && seen.as_ref().is_none_or(|old| !Arc::ptr_eq(old, &s))
            && usable(&s, Instant::now())
        {
            return Ok(s);
        }
        let users = list().await?;
        let fresh = Arc::new(Snapshot::build(&self.trait_name, &users, Instant::now()));
        tracing::debug!(
            users = users.len(),
            bound = fresh.by_chat_id.len(),
            "loaded the Teleport user index"
        );
        *sync::write(&self.current) = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The directory in production: the trait index over Teleport's users, then, when
/// `review.allow_email_username_match` allows it, the clicker's Mattermost e-mail.
pub struct TeleportDirectory {
    index: UserIndex,
    teleport: TeleportClient,
    mattermost: MattermostClient,
    allow_email: bool,
}

impl TeleportDirectory {
    pub fn new(
        teleport: TeleportClient,
        mattermost: MattermostClient,
        trait_name: &str,
        allow_email: bool,
    ) -> Self {
        Self {
            index: UserIndex::new(trait_name),
            teleport,
            mattermost,
            allow_email,
        }
    }

    async fn by_email(&self, snapshot: &Snapshot, chat_user_id: &str) -> Result<Binding, Outcome> {
        match self.mattermost.user_by_id(chat_user_id).await {
            Ok(u) if u.is_bot || u.delete_at != 0 => Ok(Binding::Unlinked),
            Ok(u) => Ok(snapshot.by_email(&u.email, chat_user_id)),
            Err(e) if e.is_transient() => Err(Outcome::Unavailable),
            Err(e) => {
                tracing::warn!(mattermost.user_id = %chat_user_id, error = %e, "looking up a reviewer's e-mail in Mattermost failed");
                Ok(Binding::Unlinked)
            }
        }
    }
}

impl Directory for TeleportDirectory {
    async fn identify(&self, chat_user_id: &str) -> Result<String, Outcome> {
        let teleport = &self.teleport;
        let snapshot = self
            .index
            .snapshot(chat_user_id, || teleport.list_users())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "listing Teleport users to identify a reviewer failed");
                if e.is_transient() {
                    Outcome::Unavailable
                } else {
                    Outcome::Failed(format!(
                        "the service cannot list Teleport users ({}); ask an admin to give its role `list` and `read` on `user`",
                        e.message()
                    ))
                }
            })?;
        let binding = match snapshot.by_trait(chat_user_id) {
            Binding::Unlinked if self.allow_email => self.by_email(&snapshot, chat_user_id).await?,
            b => b,
        };
        let trait_name = self.index.trait_name();
        match binding {
            Binding::User(name) => Ok(name),
            Binding::Unlinked => Err(Outcome::Unlinked {
                chat_user_id: chat_user_id.to_string(),
                trait_name: trait_name.to_string(),
                email_allowed: self.allow_email,
            }),
            Binding::Ambiguous(users) => {
                tracing::warn!(mattermost.user_id = %chat_user_id, teleport.users = ?users, "several Teleport users carry the same Mattermost user id; refusing the review");
                Err(Outcome::Ambiguous {
                    users,
                    trait_name: trait_name.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn user(name: &str, ids: &[&str]) -> User {
        let mut traits = BTreeMap::new();
        if !ids.is_empty() {
            traits.insert(
                "mattermost_user_id".to_string(),
                ids.iter().map(|s| s.to_string()).collect(),
            );
        }
        User {
            name: name.into(),
            roles: vec![],
            traits,
        }
    }

    fn cast() -> Vec<User> {
        vec![
            user("alice", &["mm-a"]),
            user("bob", &["mm-b", "mm-b2"]),
            user("carol@example.com", &[]),
            user("dave@example.com", &["mm-d"]),
            user("eve", &["mm-shared"]),
            user("mallory", &["mm-shared"]),
        ]
    }

    #[test]
    fn a_trait_binds_exactly_one_user_or_is_refused() {
        let s = Snapshot::build("mattermost_user_id", &cast(), Instant::now());
        assert_eq!(s.by_trait("mm-a"), Binding::User("alice".into()));
        assert_eq!(s.by_trait("mm-b2"), Binding::User("bob".into()));
        assert_eq!(s.by_trait("mm-zzz"), Binding::Unlinked);
        assert_eq!(
            s.by_trait("mm-shared"),
            Binding::Ambiguous(vec!["eve".into(), "mallory".into()])
        );
        // Another trait name binds nobody.
        let other = Snapshot::build("slack_uid", &cast(), Instant::now());
        assert_eq!(other.by_trait("mm-a"), Binding::Unlinked);
    }

    #[test]
    fn an_email_matches_an_exact_user_name_not_bound_to_someone_else() {
        let s = Snapshot::build("mattermost_user_id", &cast(), Instant::now());
        assert_eq!(
            s.by_email("Carol@Example.com", "mm-c"),
            Binding::User("carol@example.com".into())
        );
        // dave is bound to another Mattermost account: his e-mail does not match mm-x.
        assert_eq!(s.by_email("dave@example.com", "mm-x"), Binding::Unlinked);
        assert_eq!(
            s.by_email("dave@example.com", "mm-d"),
            Binding::User("dave@example.com".into())
        );
        assert_eq!(s.by_email("nobody@example.com", "mm-n"), Binding::Unlinked);
        assert_eq!(s.by_email("", "mm-n"), Binding::Unlinked);
    }

    async fn lookup(index: &UserIndex, id: &str, calls: &AtomicUsize) -> Binding {
        index
            .snapshot(id, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(cast())
            })
            .await
            .unwrap()
            .by_trait(id)
    }

    #[tokio::test(start_paused = true)]
    async fn hits_cost_no_listing_until_the_index_is_stale() {
        let index = UserIndex::new("mattermost_user_id");
        let calls = AtomicUsize::new(0);
        assert_eq!(
            lookup(&index, "mm-a", &calls).await,
            Binding::User("alice".into())
        );
        for _ in 0..10 {
            lookup(&index, "mm-b", &calls).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(INDEX_TTL).await;
        lookup(&index, "mm-a", &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn misses_refresh_at_most_once_per_interval() {
        let index = UserIndex::new("mattermost_user_id");
        let calls = AtomicUsize::new(0);
        lookup(&index, "mm-a", &calls).await;
        for _ in 0..10 {
            assert_eq!(lookup(&index, "mm-new", &calls).await, Binding::Unlinked);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "misses within the interval"
        );
        tokio::time::advance(MISS_REFRESH_INTERVAL).await;
        lookup(&index, "mm-new", &calls).await;
        lookup(&index, "mm-new", &calls).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_share_one_listing() {
        let index = Arc::new(UserIndex::new("mattermost_user_id"));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (index, calls) = (index.clone(), calls.clone());
                tokio::spawn(async move {
                    index
                        .snapshot("mm-a", || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(cast())
                        })
                        .await
                        .map(|s| s.by_trait("mm-a"))
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Binding::User("alice".into()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_listing_is_reported_and_not_cached() {
        let index = UserIndex::new("mattermost_user_id");
        let err = index
            .snapshot("mm-a", || async {
                Err(TeleportError::ConnectionProblem("down".into()))
            })
            .await
            .unwrap_err();
        assert!(err.is_transient());
        let calls = AtomicUsize::new(0);
        assert_eq!(
            lookup(&index, "mm-a", &calls).await,
            Binding::User("alice".into())
        );
    }
}
