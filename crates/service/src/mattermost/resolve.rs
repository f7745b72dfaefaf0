//! Recipient resolution (`team/channel`, e-mail, `@username` → channel id) behind TTL caches
//! whose concurrent lookups of one key share a single request, so a burst of requests for the
//! same reviewers costs one lookup each: one for the recipient, and under it one per user and
//! per direct channel, so a resolution retried after failing half-way repeats only the step
//! that failed, and an e-mail and a username of the same person share the direct channel.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::client::MattermostClient;
use super::error::{MattermostError, UserKey};
use super::model::User;
use crate::route::Recipient;
use crate::sync;

/// Where a recipient's posts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedChannel {
    pub channel_id: String,
    pub kind: RecipientKind,
    /// `team/channel`, the e-mail or `@username`, for logs and error texts.
    pub display: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// A team channel.
    Channel,
    /// The direct channel between the bot and a user.
    DirectMessage,
}

/// Past this many keys, a lookup first drops the expired ones.
const SWEEP_ABOVE: usize = 4096;

/// A cached value and when it was fetched; empty while the first fetch runs.
type Slot<V> = Arc<OnceCell<(V, Instant)>>;

/// A map of values that expire `ttl` after they were fetched. A key being fetched holds an
/// empty cell that other callers wait on; a failed fetch leaves it empty for the next caller.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the result of `fetch` (shared with concurrent callers of the same
    /// key). The flag says whether the value came from the cache.
    pub(crate) async fn get_or_fetch<F, Fut, E>(&self, key: &K, fetch: F) -> Result<(V, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = sync::lock(&self.slots);
            if slots.len() > SWEEP_ABOVE {
                let ttl = self.ttl;
                slots.retain(|_, s| s.get().is_none_or(|(_, at)| at.elapsed() < ttl));
            }
            match slots.get(key) {
                Some(s) if s.get().is_none_or(|(_, at)| at.elapsed() < self.ttl) => s.clone(),
                _ => {
                    let s = Arc::new(OnceCell::new());
                    slots.insert(key.clone(), s.clone());
                    s
                }
            }
        };
        let mut fetched = false;
        let (value, _) = slot
            .get_or_try_init(|| {
                fetched = true;
                async { fetch().await.map(|v| (v, Instant::now())) }
            })
            .await?;
        Ok((value.clone(), !fetched))
    }

    pub(crate) fn invalidate(&self, key: &K) {
        sync::lock(&self.slots).remove(key);
    }
}

impl MattermostClient {
    /// Resolves a recipient to a channel id: `team/channel` by name, an e-mail or `@username`
    /// to the bot's direct channel with that user. Cached for the client's `cache_ttl`.
    pub async fn resolve(&self, recipient: &Recipient) -> Result<ResolvedChannel, MattermostError> {
        let (resolved, hit) = self
            .inner
            .recipients
            .get_or_fetch(recipient, || self.resolve_uncached(recipient))
            .await?;
        self.inner.metrics.cache("recipients", hit);
        Ok(resolved)
    }

    /// Forgets a resolved recipient (after the channel was archived or the bot removed).
    pub fn invalidate(&self, recipient: &Recipient) {
        self.inner.recipients.invalidate(recipient);
    }

    async fn resolve_uncached(
        &self,
        recipient: &Recipient,
    ) -> Result<ResolvedChannel, MattermostError> {
        let resolved = match recipient {
            Recipient::Channel { team, channel } => {
                let c = self.channel_by_name(team, channel).await?;
                ResolvedChannel {
                    channel_id: c.id,
                    kind: RecipientKind::Channel,
                    display: format!("{team}/{channel}"),
                }
            }
            Recipient::Email(email) => {
                let email = email.trim().to_lowercase();
                let user = self.looked_up(UserKey::Email(email.clone())).await?;
                ResolvedChannel {
                    channel_id: self.direct_channel_id(&user.id).await?,
                    kind: RecipientKind::DirectMessage,
                    display: email,
                }
            }
            Recipient::Username(name) => {
                let name = name.trim().trim_start_matches('@').to_lowercase();
                let user = self.looked_up(UserKey::Username(name)).await?;
                ResolvedChannel {
                    channel_id: self.direct_channel_id(&user.id).await?,
                    kind: RecipientKind::DirectMessage,
                    display: format!("@{}", user.username),
                }
            }
        };
        sync::lock(&self.inner.channel_names)
            .insert(resolved.channel_id.clone(), resolved.display.clone());
        Ok(resolved)
    }
}

impl MattermostClient {
    /// A user by e-mail or username, cached and shared by concurrent resolutions.
    async fn looked_up(&self, key: UserKey) -> Result<User, MattermostError> {
        let (user, hit) = self
            .inner
            .user_lookups
            .get_or_fetch(&key, || async {
                match &key {
                    UserKey::Email(e) => self.user_by_email(e).await,
                    UserKey::Username(u) => self.user_by_username(u).await,
                    UserKey::Id(id) => self.user_by_id(id).await,
                }
            })
            .await?;
        self.inner.metrics.cache("users", hit);
        Ok(user)
    }

    /// The id of the bot's direct channel with a user, cached and shared.
    async fn direct_channel_id(&self, user_id: &str) -> Result<String, MattermostError> {
        let key = user_id.to_string();
        let (id, hit) = self
            .inner
            .direct_channels
            .get_or_fetch(&key, || async {
                self.direct_channel(user_id).await.map(|c| c.id)
            })
            .await?;
        self.inner.metrics.cache("direct_channels", hit);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_of_one_key_fetch_once_and_expire_after_the_ttl() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, ()>(7)
        };
        let (a, b) = tokio::join!(
            cache.get_or_fetch(&"k", fetch),
            cache.get_or_fetch(&"k", fetch)
        );
        assert_eq!(a.unwrap().0, 7);
        assert_eq!(b.unwrap().0, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.get_or_fetch(&"k", fetch).await.unwrap().1, "a hit");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!cache.get_or_fetch(&"k", fetch).await.unwrap().1, "expired");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::from_secs(60));
        let r: Result<_, &str> = cache.get_or_fetch(&"k", || async { Err("boom") }).await;
        assert_eq!(r.unwrap_err(), "boom");
        let r: Result<_, &str> = cache.get_or_fetch(&"k", || async { Ok(1) }).await;
        assert_eq!(r.unwrap(), (1, false));
    }
}
