//! Access list review reminders: every `[access_lists] interval` (3 h, jittered; the first
//! look soon after start) every access list is read, and for each one whose review window is
//! open ([`window`]) its owners, and the configured extra recipients, get one direct message
//! per weekly window ([`message`]). What was sent is kept in the list's plugin data
//! ([`notifications`], the Go plugin's encoding) and recorded with compare-and-swap *before*
//! the messages go out, so of several replicas only one sends; a send that fails is undone
//! so the next run tries again. A cluster without the access list API stops the loop (once,
//! at info); the rest of the service is untouched.

pub mod message;
pub mod notifications;
pub mod window;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use rand::Rng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::access::{AccessList, KIND_ACCESS_LIST, RawData};
use crate::bridge::ports::{Body, Chat, NewPost, PortError, Store};
use crate::config::AccessListsConfig;
use crate::mattermost::MattermostClient;
use crate::metrics::Metrics;
use crate::review::identity::{Snapshot, UserIndex};
use crate::route::recipient::is_email;
use crate::route::{PLUGIN_NAME, Recipient};
use crate::sync;
use crate::teleport::{PluginDataClient, TeleportClient, TeleportError};
use notifications::Notifications;

/// The first look happens within this long after start (upstream: a full jitter of 30 s).
const FIRST_RUN_WITHIN: Duration = Duration::from_secs(30);
/// Compare-and-swap rounds on one list before giving up until the next run.
const CAS_ATTEMPTS: usize = 5;
/// Remembered "cannot be reached" log lines; cleared past this many.
const LOGGED_LIMIT: usize = 10_000;

/// The wall clock the reminder windows are computed with; tests set their own.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    pub fn new(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(OffsetDateTime::now_utc)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// `teleport_mattermost_access_list_reminders_total{outcome}`: `sent`, `failed` (undone,
/// retried next run) and `unresolved` (an owner with no Mattermost account found).
#[derive(Clone)]
pub struct ReminderMetrics {
    pub reminders: IntCounterVec,
}

impl ReminderMetrics {
    pub fn new(m: &Metrics) -> Self {
        let reminders = IntCounterVec::new(
            Opts::new(
                "teleport_mattermost_access_list_reminders_total",
                "Access list review reminders, by outcome (sent, failed, unresolved).",
            ),
            &["outcome"],
        )
        .expect("static metric");
        Self {
            reminders: m.register(&reminders),
        }
    }

    fn count(&self, outcome: &str) {
        self.reminders.with_label_values(&[outcome]).inc();
    }
}

/// Who one reminder goes to: a list owner (Teleport user) or an extra recipient.
#[derive(Debug, Clone)]
enum Target {
    Owner(String),
    Extra(Recipient),
}

impl Target {
    /// The key in `user_notifications`.
    fn key(&self) -> String {
        match self {
            Target::Owner(o) => o.clone(),
            Target::Extra(r) => r.to_string(),
        }
    }
}

/// Everything the reminder loop needs; built by [`Reminders::new`] in the application.
pub struct Parts {
    pub teleport: TeleportClient,
    pub mattermost: MattermostClient,
    pub config: AccessListsConfig,
    /// The web UI's base URL (`https://<proxy>`), for the review link.
    pub proxy_base: Option<Url>,
    /// The user trait binding Teleport users to Mattermost user ids (`review.user_id_trait`).
    pub user_id_trait: String,
    pub clock: Clock,
    pub metrics: ReminderMetrics,
}

pub struct Reminders {
    parts: Parts,
    store: PluginDataClient,
    users: UserIndex,
    /// (list, owner, window) already logged as unreachable: one line per window.
    logged: Mutex<HashSet<String>>,
}

/// What `check` learns from one look ([`Reminders::survey`]).
#[derive(Debug, Default)]
pub struct Survey {
    pub lists: usize,
    /// Owners of lists with a review date that a reminder reaches.
    pub reachable: usize,
    /// `(list, owner)` pairs no reminder can reach.
    pub unreachable: Vec<(String, String)>,
}

/// A listing that did not produce lists.
#[derive(Debug)]
pub enum Listing {
    Stop(Stop),
    Failed(TeleportError),
}

/// Why a run ended the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The cluster has no access list API (`Unimplemented`).
    Unsupported,
    /// The role may not list access lists and `enabled` was left to the default.
    NotAllowed(String),
}

impl Reminders {
    pub fn new(parts: Parts) -> Self {
        let store = parts.teleport.plugin_data_of(KIND_ACCESS_LIST, PLUGIN_NAME);
        let users = UserIndex::new(&parts.user_id_trait);
        Self {
            parts,
            store,
            users,
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// Starts the loop unless `[access_lists] enabled = false`.
    pub fn spawn(parts: Parts, shutdown: CancellationToken) {
        if parts.config.enabled == Some(false) {
            tracing::info!("access list review reminders are off (`access_lists.enabled = false`)");
            return;
        }
        let me = Self::new(parts);
        tokio::spawn(async move { me.run(shutdown).await });
    }

    /// Looks every interval until shutdown, or until the cluster turns out not to support
    /// (or the role not to allow) access lists.
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = self.parts.config.interval;
        let mut wait = full_jitter(interval.min(FIRST_RUN_WITHIN));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.run_once().await {
                Ok(()) => {}
                Err(Stop::Unsupported) => {
                    tracing::info!(
                        "this Teleport cluster has no access list API (Unimplemented): access list review reminders stop"
                    );
                    return;
                }
                Err(Stop::NotAllowed(why)) => {
                    tracing::info!(error = %why, "access list review reminders are off: the plugin's role may not list access lists (add `access_list: [list, read]` to turn them on)");
                    return;
                }
            }
            wait = seventh_jitter(interval);
        }
    }

    /// One look at every list. Errors other than [`Stop`] are logged and retried next run.
    pub async fn run_once(&self) -> Result<(), Stop> {
        let lists = match self.lists().await {
            Ok(l) => l,
            Err(Listing::Stop(s)) => return Err(s),
            Err(Listing::Failed(e)) => {
                tracing::warn!(error = %e, "listing access lists failed; the next look is in one interval");
                return Ok(());
            }
        };
        tracing::debug!(
            lists = lists.len(),
            "looking for access list reviews to remind"
        );
        let users = self.users().await;
        for list in &lists {
            if let Err(e) = self.remind(list, users.as_deref()).await {
                tracing::warn!(access_list = %list.name, error = %e, "access list reminder failed; retried next run");
            }
        }
        Ok(())
    }

    /// What `check` reports: how many lists, and the owners no reminder could reach (each
    /// as `(list, owner)`), resolved exactly as the reminders resolve them.
    pub async fn survey(&self) -> Result<Survey, Listing> {
        let lists = self.lists().await?;
        let users = self.users().await;
        let mut survey = Survey {
            lists: lists.len(),
            ..Default::default()
        };
        for list in lists.iter().filter(|l| l.next_audit_date.is_some()) {
            for owner in dedup(&list.owners) {
                match self
                    .channel(&Target::Owner(owner.clone()), users.as_deref())
                    .await
                {
                    Ok(Some(_)) => survey.reachable += 1,
                    Ok(None) => survey.unreachable.push((list.name.clone(), owner)),
                    Err(e) => {
                        return Err(Listing::Failed(TeleportError::ConnectionProblem(
                            e.to_string(),
                        )));
                    }
                }
            }
        }
        Ok(survey)
    }

    async fn lists(&self) -> Result<Vec<AccessList>, Listing> {
        match self.parts.teleport.list_access_lists().await {
            Ok(l) => Ok(l),
            Err(TeleportError::Other {
                code: tonic::Code::Unimplemented,
                ..
            }) => Err(Listing::Stop(Stop::Unsupported)),
            Err(TeleportError::PermissionDenied(m)) if self.parts.config.enabled.is_none() => {
                Err(Listing::Stop(Stop::NotAllowed(m)))
            }
            Err(e) => Err(Listing::Failed(e)),
        }
    }

    /// The trait binding's index of Teleport users; without `user` rights, e-mail only.
    async fn users(&self) -> Option<Arc<Snapshot>> {
        let teleport = &self.parts.teleport;
        match self.users.snapshot("", || teleport.list_users()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(error = %e, "no Teleport user index: owners are reached by e-mail only");
                None
            }
        }
    }

    /// Reminds whoever is due for `list` in the current window, exactly once across replicas.
    async fn remind(&self, list: &AccessList, users: Option<&Snapshot>) -> Result<(), PortError> {
        let now = self.parts.clock.now();
        let Some(start) = window::window_start(list, now) else {
            return Ok(());
        };
        let targets: Vec<Target> = dedup(&list.owners)
            .into_iter()
            .map(Target::Owner)
            .chain(
                self.parts
                    .config
                    .recipients
                    .iter()
                    .cloned()
                    .map(Target::Extra),
            )
            .collect();
        for _ in 0..CAS_ATTEMPTS {
            let (before, notes) = match self.read(&list.name).await? {
                Some(x) => x,
                None => return Ok(()),
            };
            let due = targets
                .iter()
                .filter(|t| window::is_due(start, notes.get(&t.key()).copied()));
            let mut ready = Vec::new();
            for t in due {
                match self.channel(t, users).await? {
                    Some(channel) => ready.push((t.clone(), channel)),
                    None => self.unreachable(list, t, start),
                }
            }
            if ready.is_empty() {
                return Ok(());
            }
            let mut next = notes.clone();
            for (t, _) in &ready {
                next.insert(t.key(), now);
            }
            match self.write(&list.name, &before, &next).await {
                Err(PortError::Conflict) => continue,
                r => r?,
            }
            let text = message::reminder(
                list,
                now,
                message::review_link(self.parts.proxy_base.as_ref(), &list.name).as_ref(),
            );
            let mut failed = Vec::new();
            for (t, channel) in ready {
                let post = NewPost {
                    channel_id: channel,
                    root_id: None,
                    body: Body::text(text.clone()),
                    idempotency_key: idempotency_key(&list.name, &t.key(), start),
                };
                match Chat::post(&self.parts.mattermost, post).await {
                    Ok(_) => {
                        self.parts.metrics.count("sent");
                        tracing::info!(access_list = %list.name, to = %t.key(), "sent an access list review reminder");
                    }
                    Err(e) => {
                        self.parts.metrics.count("failed");
                        tracing::warn!(access_list = %list.name, to = %t.key(), error = %e, "an access list review reminder could not be sent; retried next run");
                        failed.push(t.key());
                    }
                }
            }
            if !failed.is_empty() {
                self.undo(&list.name, &failed, &notes, now).await;
            }
            return Ok(());
        }
        Err(PortError::Conflict)
    }

    /// The stored value as read (for `Expect`) and its decoded form; `None` (skip the list)
    /// when it does not parse, so another program's data is never overwritten.
    async fn read(&self, list: &str) -> Result<Option<(String, Notifications)>, PortError> {
        let data = self.store.get(list).await?.unwrap_or_default();
        let before = data.get(notifications::KEY).cloned().unwrap_or_default();
        match notifications::decode(&data) {
            Ok(n) => Ok(Some((before, n))),
            Err(e) => {
                tracing::warn!(access_list = %list, error = %e, "access list skipped: its plugin data cannot be read");
                Ok(None)
            }
        }
    }

    /// Compare-and-swap of `user_notifications`: `before` exactly as read ("" = absent).
    async fn write(&self, list: &str, before: &str, next: &Notifications) -> Result<(), PortError> {
        let set = RawData::from([(notifications::KEY.into(), notifications::encode(next))]);
        let expect = RawData::from([(notifications::KEY.into(), before.to_string())]);
        self.store.update(list, set, expect).await
    }

    /// Puts back the previous time of those whose reminder failed, where it is still ours.
    async fn undo(&self, list: &str, keys: &[String], old: &Notifications, stamp: OffsetDateTime) {
        for _ in 0..CAS_ATTEMPTS {
            let Ok(Some((before, mut notes))) = self.read(list).await else {
                return;
            };
            for k in keys {
                if notes.get(k) == Some(&stamp) {
                    match old.get(k) {
                        Some(t) => notes.insert(k.clone(), *t),
                        None => notes.remove(k),
                    };
                }
            }
            match self.write(list, &before, &notes).await {
                Err(PortError::Conflict) => continue,
                Err(e) => {
                    tracing::warn!(access_list = %list, error = %e, "could not undo the record of a failed reminder; it is sent again next week");
                    return;
                }
                Ok(()) => return,
            }
        }
    }

    /// The channel a target's reminder goes to: an owner through the trait binding when they
    /// have exactly one, else by e-mail when their Teleport name is one; an extra recipient
    /// as configured. `None`: nobody to send to.
    async fn channel(
        &self,
        t: &Target,
        users: Option<&Snapshot>,
    ) -> Result<Option<String>, PortError> {
        let owner = match t {
            Target::Extra(r) => return reachable(Chat::resolve(&self.parts.mattermost, r).await),
            Target::Owner(o) => o,
        };
        if let Some([id]) = users.map(|u| u.chat_ids(owner)) {
            match self.parts.mattermost.direct_channel(id).await {
                Ok(c) => return Ok(Some(c.id)),
                Err(e) if e.is_transient() => {
                    return Err(PortError::Retry {
                        reason: e.to_string(),
                        after: None,
                    });
                }
                Err(e) => {
                    tracing::debug!(owner = %owner, error = %e, "the owner's bound Mattermost user cannot be messaged; trying the e-mail");
                }
            }
        }
        if is_email(owner) {
            return reachable(
                Chat::resolve(
                    &self.parts.mattermost,
                    &Recipient::Email(owner.to_lowercase()),
                )
                .await,
            );
        }
        Ok(None)
    }

    fn unreachable(&self, list: &AccessList, t: &Target, start: OffsetDateTime) {
        let mut logged = sync::lock(&self.logged);
        if logged.len() > LOGGED_LIMIT {
            logged.clear();
        }
        let key = format!("{}\n{}\n{}", list.name, t.key(), start.unix_timestamp());
        if logged.insert(key) {
            self.parts.metrics.count("unresolved");
            tracing::warn!(
                access_list = %list.name,
                owner = %t.key(),
                "an access list owner cannot be reached in Mattermost: no user with that e-mail and no `{}` trait; `check` lists them",
                self.parts.user_id_trait
            );
        }
    }
}

/// Owners in order, each once.
fn dedup(owners: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    owners
        .iter()
        .filter(|o| seen.insert(o.as_str()))
        .cloned()
        .collect()
}

/// Stable per (list, recipient, window), short enough for Mattermost's `pending_post_id`.
fn idempotency_key(list: &str, key: &str, start: OffsetDateTime) -> String {
    let mut h = Sha256::new();
    h.update(list.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(start.unix_timestamp().to_be_bytes());
    format!("tm:al:{}", hex::encode(&h.finalize()[..12]))
}

fn full_jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// `d` minus up to a seventh, so replicas do not look in lockstep (upstream's jitter).
fn seventh_jitter(d: Duration) -> Duration {
    d.mul_f64(1.0 - rand::rng().random_range(0.0..=1.0 / 7.0))
}

/// A recipient Mattermost refuses (a missing channel, one the bot may not use) is nobody to
/// send to this run (logged as unreachable); only a temporary failure ends the run.
fn reachable(r: Result<Option<String>, PortError>) -> Result<Option<String>, PortError> {
    match r {
        Err(PortError::Fatal(e)) => {
            tracing::debug!(error = %e, "access list reminder recipient refused by Mattermost");
            Ok(None)
        }
        Err(PortError::NotFound) => Ok(None),
        other => other,
    }
}
