//! Compare-and-swap over Teleport plugin data: create once, then read-modify-write with
//! `Expect`, retrying on conflicts with decorrelated-jitter backoff. This is what makes
//! replicas safe: of two writers that read the same data, exactly one write succeeds.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::plugin_data::{DecodeError, LEGACY_KEYS, PluginData};
use crate::teleport::TeleportError;

/// Raw plugin data of one plugin for one request.
pub type RawData = BTreeMap<String, String>;

/// Plugin-data access for one plugin name (e.g. `"mattermost"`).
pub trait PluginDataStore: Send + Sync {
    /// The plugin's entry for the request, or `None` when there is none (or it is empty).
    fn get(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<RawData>, TeleportError>> + Send;

    /// `UpdatePluginData`: apply `set` if every `expect` key matches (`""` = absent), else
    /// fail with [`TeleportError::CompareFailed`].
    fn update(
        &self,
        request_id: &str,
        set: RawData,
        expect: RawData,
    ) -> impl Future<Output = Result<(), TeleportError>> + Send;
}

/// Teleport's server-side update rule (spec teleport-wire.md §5), shared by the simulator
/// and the in-memory test store: check `expect` key by key against the current entry
/// (`""` = absent; with no entry every expected value must be `""`), then apply `set`
/// (`""` deletes). Returns the new entry (`None` when it ended up empty) or the first
/// key whose expectation failed.
pub fn apply_update(
    current: Option<&RawData>,
    set: &RawData,
    expect: &RawData,
) -> Result<Option<RawData>, String> {
    for (k, want) in expect {
        let have = current
            .and_then(|c| c.get(k))
            .map(String::as_str)
            .unwrap_or("");
        if have != want {
            return Err(k.clone());
        }
    }
    let mut next = current.cloned().unwrap_or_default();
    for (k, v) in set {
        if v.is_empty() {
            next.remove(k);
        } else {
            next.insert(k.clone(), v.clone());
        }
    }
    Ok((!next.is_empty()).then_some(next))
}

/// The text Teleport uses for a failed expectation.
pub fn expectation_failed_message(key: &str) -> String {
    format!("expectations not met for field {key:?}")
}

/// What a modify closure decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived return value; boxing would only burden every closure"
)]
pub enum Step {
    /// Write this data (CAS against what was read).
    Write(PluginData),
    /// Nothing to change: stop without writing.
    Keep,
    /// The data is in a transient state: back off, re-read and call the closure again.
    Retry,
}

/// The outcome of a successful [`Cas::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    Written(PluginData),
    Unchanged(PluginData),
}

impl Updated {
    pub fn data(&self) -> &PluginData {
        match self {
            Self::Written(d) | Self::Unchanged(d) => d,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CasError<E: fmt::Debug + fmt::Display = Infallible> {
    #[error("no plugin data for access request {id}")]
    NotFound { id: String },
    /// Data was already there (on create). `current` is what was found (`None` if it could not
    /// be decoded). A create that lost a race to another writer also lands here.
    #[error("plugin data for access request {id} already exists")]
    AlreadyExists {
        id: String,
        current: Option<Box<PluginData>>,
    },
    /// The modify closure refused; `current` is the data it was given (never a zero value).
    #[error("{error}")]
    Rejected { error: E, current: Box<PluginData> },
    #[error("cannot read plugin data of access request {id}: {error}")]
    Decode { id: String, error: DecodeError },
    #[error("plugin data of access request {id}: {error}")]
    Teleport { id: String, error: TeleportError },
    /// Other writers kept winning until the attempt cap or the deadline.
    #[error(
        "gave up updating plugin data of access request {id} after {attempts} conflicting attempts"
    )]
    Contention { id: String, attempts: u32 },
}

/// Bounds of the retry loop.
#[derive(Debug, Clone, Copy)]
pub struct CasOptions {
    pub max_attempts: u32,
    /// Total time budget of one `update` (reads, writes and sleeps).
    pub deadline: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for CasOptions {
    /// Upstream's backoff (1 ms … 1 s); attempts and a deadline bound what upstream left to
    /// the caller's context.
    fn default() -> Self {
        Self {
            max_attempts: 20,
            deadline: Duration::from_secs(10),
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(1),
        }
    }
}

/// Decorrelated jitter: each sleep is uniform in `[base, 3 × previous]`, capped.
#[derive(Debug, Clone)]
pub struct Jitter {
    base: Duration,
    cap: Duration,
    prev: Duration,
}

impl Jitter {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            prev: base,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let lo = self.base.as_nanos() as u64;
        let hi = (self.prev.as_nanos() as u64).saturating_mul(3).max(lo);
        let pick = rand::rng().random_range(lo..=hi);
        self.prev = Duration::from_nanos(pick).min(self.cap);
        self.prev
    }
}

/// Compare-and-swap helpers over a [`PluginDataStore`].
#[derive(Debug, Clone)]
pub struct Cas<S> {
    store: S,
    opts: CasOptions,
}

impl<S: PluginDataStore> Cas<S> {
    pub fn new(store: S) -> Self {
        Self::with_options(store, CasOptions::default())
    }

    pub fn with_options(store: S, opts: CasOptions) -> Self {
        Self { store, opts }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads and decodes the data; `None` when there is none.
    pub async fn get(&self, id: &str) -> Result<Option<PluginData>, CasError> {
        match self.store.get(id).await {
            Ok(Some(raw)) => PluginData::decode(&raw)
                .map(Some)
                .map_err(|error| CasError::Decode {
                    id: id.into(),
                    error,
                }),
            Ok(None) => Ok(None),
            Err(error) => Err(CasError::Teleport {
                id: id.into(),
                error,
            }),
        }
    }

    /// Writes `data` only if the request has no data yet. The write's `Expect` is the
    /// all-empty encoding, so of racing creators exactly one succeeds; the losers get
    /// `AlreadyExists` with the winner's data (re-read after the failed compare).
    pub async fn create(&self, id: &str, data: &PluginData) -> Result<PluginData, CasError> {
        if let Some(raw) = self.raw_get(id).await? {
            return Err(already_exists(id, &raw));
        }
        let expect = PluginData::default().encode();
        match self.store.update(id, data.encode(), expect).await {
            Ok(()) => Ok(data.clone()),
            Err(TeleportError::CompareFailed(_)) => {
                let raw = self.raw_get(id).await?.unwrap_or_default();
                Err(already_exists(id, &raw))
            }
            Err(error) => Err(CasError::Teleport {
                id: id.into(),
                error,
            }),
        }
    }

    /// Read, `modify`, write with `Expect` = exactly what was read; on a conflict back off
    /// and start again from the read. An error from `modify` is returned at once together
    /// with the data it was given.
    pub async fn update<E, F>(&self, id: &str, mut modify: F) -> Result<Updated, CasError<E>>
    where
        E: fmt::Debug + fmt::Display,
        F: FnMut(&PluginData) -> Result<Step, E>,
    {
        let deadline = tokio::time::Instant::now() + self.opts.deadline;
        let mut jitter = Jitter::new(self.opts.base_delay, self.opts.max_delay);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let raw = self
                .raw_get(id)
                .await
                .map_err(widen)?
                .ok_or_else(|| CasError::NotFound { id: id.into() })?;
            let old = PluginData::decode(&raw).map_err(|error| CasError::Decode {
                id: id.into(),
                error,
            })?;
            match modify(&old) {
                Err(error) => {
                    return Err(CasError::Rejected {
                        error,
                        current: Box::new(old),
                    });
                }
                Ok(Step::Keep) => return Ok(Updated::Unchanged(old)),
                Ok(Step::Retry) => {}
                Ok(Step::Write(new)) => {
                    let (set, expect) = swap_maps(&raw, &new);
                    match self.store.update(id, set, expect).await {
                        Ok(()) => return Ok(Updated::Written(new)),
                        Err(TeleportError::CompareFailed(msg)) => {
                            tracing::debug!(
                                request.id = id,
                                attempt = attempts,
                                "plugin data conflict: {msg}"
                            );
                        }
                        Err(error) => {
                            return Err(CasError::Teleport {
                                id: id.into(),
                                error,
                            });
                        }
                    }
                }
            }
            let delay = jitter.next_delay();
            if attempts >= self.opts.max_attempts || tokio::time::Instant::now() + delay > deadline
            {
                return Err(CasError::Contention {
                    id: id.into(),
                    attempts,
                });
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn raw_get(&self, id: &str) -> Result<Option<RawData>, CasError> {
        self.store
            .get(id)
            .await
            .map(|r| r.filter(|m| !m.is_empty()))
            .map_err(|error| CasError::Teleport {
                id: id.into(),
                error,
            })
    }
}

fn already_exists(id: &str, raw: &RawData) -> CasError {
    CasError::AlreadyExists {
        id: id.into(),
        current: PluginData::decode(raw).ok().map(Box::new),
    }
}

/// Lifts an error of the closure-free paths into any `CasError<E>`.
fn widen<E: fmt::Debug + fmt::Display>(e: CasError) -> CasError<E> {
    match e {
        CasError::NotFound { id } => CasError::NotFound { id },
        CasError::AlreadyExists { id, current } => CasError::AlreadyExists { id, current },
        CasError::Decode { id, error } => CasError::Decode { id, error },
        CasError::Teleport { id, error } => CasError::Teleport { id, error },
        CasError::Contention { id, attempts } => CasError::Contention { id, attempts },
        CasError::Rejected { error, .. } => match error {},
    }
}

/// `Set` = the new encoding, plus deletion of migrated legacy keys; `Expect` = the raw map
/// as read, plus "must be absent" for every key we set that was not there.
fn swap_maps(raw: &RawData, new: &PluginData) -> (RawData, RawData) {
    let mut set = new.encode();
    for k in LEGACY_KEYS {
        if raw.contains_key(k) {
            set.insert(k.to_string(), String::new());
        }
    }
    let mut expect = raw.clone();
    for k in set.keys() {
        expect.entry(k.clone()).or_default();
    }
    (set, expect)
}

#[cfg(test)]
mod tests;
