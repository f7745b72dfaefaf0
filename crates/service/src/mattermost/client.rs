//! The Mattermost REST v4 client: one reqwest client (rustls/ring, pooled connections, proxy
//! from the environment, a timeout per request), bearer auth, and the loop every call goes
//! through: its turn from the client-wide pacer (Mattermost's rate limit), then the request,
//! retried on 5xx and transport errors, waited out on 429. The typed calls are in `api.rs`, recipient resolution in `resolve.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rustls_pki_types::CertificateDer;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::error::{AppError, MESSAGE_LENGTH_ERROR_ID, MattermostError, Target, UserKey};
use super::metrics::ClientMetrics;
use super::model::User;
use super::resolve::{ResolvedChannel, TtlCache};
use super::retry::{self, Admission, Pacer, RetryPolicy, Throttled, rate_limit_wait};
use crate::config::MattermostConfig;
use crate::metrics::Metrics;
use crate::route::Recipient;
use crate::sync;

/// Responses larger than this are cut (and then fail to decode): no API answer we use is
/// anywhere near it, and a misdirected URL must not fill memory.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Everything needed to build a client.
#[derive(Clone)]
pub struct ClientOptions {
    /// The Mattermost base URL (`https://chat.example.com`, or with a path prefix).
    pub url: Url,
    pub token: SecretString,
    /// Timeout of one HTTP request (`mattermost.timeout`).
    pub timeout: Duration,
    /// CA certificates trusted in addition to the system's.
    pub extra_root_certs: Vec<CertificateDer<'static>>,
    pub retry: RetryPolicy,
    /// How long resolved recipients and looked-up users are reused.
    pub cache_ttl: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url.as_str())
            .field("token", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("extra_root_certs", &self.extra_root_certs.len())
            .field("retry", &self.retry)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

impl ClientOptions {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

    pub fn new(url: Url, token: SecretString) -> Self {
        Self {
            url,
            token,
            timeout: Self::DEFAULT_TIMEOUT,
            extra_root_certs: Vec::new(),
            retry: RetryPolicy::default(),
            cache_ttl: Self::DEFAULT_CACHE_TTL,
        }
    }

    pub fn from_config(config: &MattermostConfig) -> Self {
        Self {
            timeout: config.timeout,
            ..Self::new(config.url.clone(), config.token.clone())
        }
    }
}

/// Why a client could not be built; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error(
        "`mattermost.url` {0:?} cannot be used as a base URL: write it as http(s)://host[:port][/path]"
    )]
    BadUrl(String),
    #[error(
        "the Mattermost token contains characters not allowed in an HTTP header: check `mattermost.token`"
    )]
    BadToken,
    #[error(
        "no trusted CA certificates for Mattermost ({0}): install the system CA bundle (ca-certificates) or give the Mattermost CA"
    )]
    Tls(#[source] rustls::Error),
    #[error("building the HTTP client for Mattermost: {0}")]
    Http(#[source] reqwest::Error),
}

/// A cheap-to-clone handle; clones share connections, caches and the bot identity.
#[derive(Clone)]
pub struct MattermostClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// `<base>/api/v4/`, with the trailing slash `Url::join` needs.
    api: Url,
    auth: HeaderValue,
    retry: RetryPolicy,
    /// Every call's turn under Mattermost's rate limit, shared by all clones.
    pacer: Pacer,
    pub(crate) metrics: ClientMetrics,
    pub(crate) bot: tokio::sync::OnceCell<User>,
    pub(crate) recipients: TtlCache<Recipient, ResolvedChannel>,
    pub(crate) users: TtlCache<String, User>,
    /// Users looked up by e-mail or username during resolution, and the bot's direct channel
    /// with each user: cached apart from the recipient, so a resolution that failed half-way
    /// (rate limited on the direct channel) does not look the user up again when retried.
    pub(crate) user_lookups: TtlCache<UserKey, User>,
    pub(crate) direct_channels: TtlCache<String, String>,
    /// channel id → `team/channel` or `@user`, so a 403 on a post names the channel.
    pub(crate) channel_names: Mutex<HashMap<String, String>>,
    last_pending_ms: AtomicU64,
}

impl std::fmt::Debug for MattermostClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MattermostClient")
            .field("api", &self.inner.api.as_str())
            .finish_non_exhaustive()
    }
}

/// Whether a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The call is idempotent (reads, PUTs, create-post with a `pending_post_id`).
    Always,
    /// Only when the request surely did not reach the server (connect error) or was refused
    /// by the rate limiter.
    IfNotSent,
}

/// One logical call, sent up to `RetryPolicy::max_attempts` times.
pub(crate) struct Call {
    /// Logical call name, the metric label (`create_post`, not a URL).
    pub name: &'static str,
    pub method: Method,
    pub url: Url,
    pub body: Option<Bytes>,
    pub target: Target,
    pub retry: Retry,
    /// Stop retrying once this much time has passed since the first attempt.
    pub give_up_after: Option<Duration>,
}

enum Outcome {
    /// A 2xx answer's body.
    Done(Bytes),
    /// Worth another attempt after a backoff.
    Retryable {
        error: MattermostError,
        reason: &'static str,
    },
    /// Refused by the rate limiter (429); `wait` is its `Retry-After`, if any.
    Throttled {
        error: MattermostError,
        wait: Option<Duration>,
    },
    Fatal(MattermostError),
}

impl Call {
    /// Identifies the same call made again (a retried event), so it gets back the turn the
    /// pacer kept for it.
    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.method.hash(&mut h);
        self.url.as_str().hash(&mut h);
        self.body.hash(&mut h);
        h.finish()
    }
}

impl MattermostClient {
    /// Builds the client; no request is made (call [`MattermostClient::me`] to check the token).
    pub fn new(options: ClientOptions, metrics: &Metrics) -> Result<Self, ClientBuildError> {
        let mut api = options.url.clone();
        if api.cannot_be_a_base() || !matches!(api.scheme(), "http" | "https") {
            return Err(ClientBuildError::BadUrl(options.url.to_string()));
        }
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        let api = api
            .join("api/v4/")
            .map_err(|_| ClientBuildError::BadUrl(options.url.to_string()))?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", options.token.expose_secret().trim()))
                .map_err(|_| ClientBuildError::BadToken)?;
        auth.set_sensitive(true);
        let tls = match super::tls::client_config(&options.extra_root_certs) {
            Ok(tls) => tls,
            // No CA bundle on this host: fine as long as Mattermost is reached over HTTP.
            Err(_) if options.url.scheme() == "http" && options.extra_root_certs.is_empty() => {
                super::tls::no_roots_config()
            }
            Err(e) => return Err(ClientBuildError::Tls(e)),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .pool_max_idle_per_host(100)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("teleport-mattermost/{}", crate::version::VERSION))
            .build()
            .map_err(ClientBuildError::Http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api,
                auth,
                retry: options.retry,
                pacer: Pacer::default(),
                metrics: ClientMetrics::new(metrics),
                bot: tokio::sync::OnceCell::new(),
                recipients: TtlCache::new(options.cache_ttl),
                users: TtlCache::new(options.cache_ttl),
                user_lookups: TtlCache::new(options.cache_ttl),
                direct_channels: TtlCache::new(options.cache_ttl),
                channel_names: Mutex::new(HashMap::new()),
                last_pending_ms: AtomicU64::new(0),
            }),
        })
    }

    /// The API URL for these path segments, each percent-encoded as one segment.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api.clone();
        url.path_segments_mut()
            .expect("checked at construction: a base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// A `pending_post_id` in the form Mattermost's own clients use, `<user id>:<unix ms>`,
    /// strictly increasing within this process so two posts never share one.
    pub(crate) fn next_pending_post_id(&self, bot_id: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let prev = self
            .inner
            .last_pending_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .expect("the closure always returns Some");
        format!("{bot_id}:{}", now.max(prev + 1))
    }

    /// The display name recorded for a channel id during resolution.
    pub(crate) fn channel_display(&self, channel_id: &str) -> Option<String> {
        sync::lock(&self.inner.channel_names)
            .get(channel_id)
            .cloned()
    }

    /// Sends `call` and decodes the JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, MattermostError> {
        let name = call.name;
        let body = self.execute(call).await?;
        serde_json::from_slice(&body).map_err(|e| MattermostError::InvalidResponse {
            call: name,
            reason: format!("{e}"),
        })
    }

    /// Sends `call` in its turn, with retries; returns the body of the 2xx answer. A 429
    /// never uses up an attempt: it is waited out (the pacer learns from it) as long as the
    /// call's time allows, then handed back as `RateLimited`.
    pub(crate) async fn execute(&self, call: Call) -> Result<Bytes, MattermostError> {
        let started = Instant::now();
        let policy = &self.inner.retry;
        let deadline = retry::deadline(started, call.give_up_after);
        let time_left = || {
            deadline.map(|d| {
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(retry::SEND_ALLOWANCE)
            })
        };
        let mut attempt = 0u32;
        loop {
            self.take_turn(&call, time_left()).await?;
            let sent = Instant::now();
            let result = self.attempt(&call).await;
            let outcome = match result {
                Ok((status, headers, body)) => {
                    if status != StatusCode::TOO_MANY_REQUESTS {
                        self.inner.pacer.observe(&headers, Instant::now());
                    }
                    self.classify(&call, status, &headers, body)
                }
                Err(e) => {
                    self.inner.pacer.no_answer();
                    transport_failure(&call, e)
                }
            };
            let elapsed = sent.elapsed().as_secs_f64();
            let (error, reason) = match outcome {
                Outcome::Done(body) => {
                    self.inner.metrics.observe(call.name, "ok", elapsed);
                    return Ok(body);
                }
                Outcome::Fatal(error) => {
                    self.inner
                        .metrics
                        .observe(call.name, error.outcome(), elapsed);
                    return Err(error);
                }
                Outcome::Throttled { error, wait } => {
                    self.inner
                        .metrics
                        .observe(call.name, error.outcome(), elapsed);
                    self.throttled(call.name, Throttled::Refused);
                    let wait = wait.unwrap_or_default();
                    let out_of_time = time_left().is_some_and(|left| wait > left);
                    if wait > policy.max_rate_limit_wait || out_of_time {
                        return Err(error);
                    }
                    tracing::debug!(
                        mattermost.call = call.name,
                        wait_ms = wait.as_millis() as u64,
                        "Mattermost rate limited the call; waiting it out"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Outcome::Retryable { error, reason } => (error, reason),
            };
            self.inner
                .metrics
                .observe(call.name, error.outcome(), elapsed);
            attempt += 1;
            let wait = policy.backoff(attempt);
            let out_of_time = time_left().is_some_and(|left| wait > left);
            if attempt >= policy.max_attempts || out_of_time {
                return Err(error);
            }
            self.inner.metrics.retry(call.name, reason);
            tracing::warn!(
                mattermost.call = call.name,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "Mattermost call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits for the call's turn under the rate limit, or hands it back as `RateLimited`
    /// when the turn is further away than the call may wait (its turn is kept).
    async fn take_turn(
        &self,
        call: &Call,
        time_left: Option<Duration>,
    ) -> Result<(), MattermostError> {
        let policy = &self.inner.retry;
        let bound = |max: Duration| time_left.map_or(max, |left| left.min(max));
        // Counted once per call, however many steps its wait takes.
        let mut counted = false;
        loop {
            let admission = self.inner.pacer.admit(
                || call.fingerprint(),
                Instant::now(),
                bound(policy.max_queue_wait),
                bound(policy.max_rate_limit_wait),
            );
            let mut queued = |wait: Duration| {
                if !counted && !wait.is_zero() {
                    counted = true;
                    self.throttled(call.name, Throttled::Queued(wait));
                }
            };
            return match admission {
                Admission::Go(wait) => {
                    queued(wait);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    Ok(())
                }
                Admission::Step(wait) => {
                    queued(wait);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Admission::Defer(wait) => {
                    self.throttled(call.name, Throttled::Deferred);
                    Err(MattermostError::RateLimited {
                        call: call.name,
                        wait,
                    })
                }
                // The first call of this client is finding out whether there is a limit; one
                // that takes too long to answer does not hold the others back.
                Admission::AwaitProbe(seen) => {
                    let max = bound(policy.max_queue_wait);
                    if self.inner.pacer.await_probe(seen, max).await {
                        continue;
                    }
                    Ok(())
                }
            };
        }
    }

    /// Counts a throttled call; details at debug, one summary at warn a minute at most.
    fn throttled(&self, call: &'static str, what: Throttled) {
        self.inner.metrics.throttled(call, what.label());
        tracing::debug!(mattermost.call = call, throttled = ?what, "Mattermost rate limit");
        if let Some(s) = self.inner.pacer.note(what, Instant::now()) {
            tracing::warn!(
                limit = s.limit,
                per_sec = s.per_sec.map(|r| (r * 10.0).round() / 10.0),
                queued = s.queued,
                queued_ms = s.queued_for.as_millis() as u64,
                deferred = s.deferred,
                refused_429 = s.refused,
                "Mattermost is rate limiting this service: calls wait for their turn (summary since the last such line, at most one a minute)"
            );
        }
    }

    async fn attempt(&self, call: &Call) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, self.inner.auth.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await? {
            let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok((status, headers, body.freeze()))
    }

    fn classify(
        &self,
        call: &Call,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Outcome {
        if status.is_success() {
            return Outcome::Done(body);
        }
        if status.is_redirection() {
            let to = headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            return Outcome::Fatal(MattermostError::InvalidResponse {
                call: call.name,
                reason: format!(
                    "redirected ({status}) to {to}: set `mattermost.url` to the address Mattermost is served on"
                ),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = rate_limit_wait(headers);
            self.inner.pacer.refused(headers, wait, Instant::now());
            return Outcome::Throttled {
                error: MattermostError::RateLimited {
                    call: call.name,
                    wait: wait.unwrap_or_default(),
                },
                wait,
            };
        }
        let detail = AppError::from_body(&body);
        if status.is_server_error() {
            return Outcome::Retryable {
                error: MattermostError::Server {
                    call: call.name,
                    status: status.as_u16(),
                    detail,
                },
                reason: "server_error",
            };
        }
        let target = self.enrich(call.target.clone());
        let error = match status {
            StatusCode::UNAUTHORIZED => MattermostError::Unauthorized { detail },
            StatusCode::FORBIDDEN => {
                let bot = self.inner.bot.get().map(|u| u.username.as_str());
                MattermostError::Forbidden {
                    fix: target.forbidden_fix(bot),
                    target,
                    detail,
                }
            }
            StatusCode::NOT_FOUND => MattermostError::NotFound { target, detail },
            StatusCode::PAYLOAD_TOO_LARGE => MattermostError::TooLarge {
                call: call.name,
                detail,
            },
            _ if detail.id == MESSAGE_LENGTH_ERROR_ID => MattermostError::TooLarge {
                call: call.name,
                detail,
            },
            _ => MattermostError::BadRequest {
                call: call.name,
                target,
                status: status.as_u16(),
                detail,
            },
        };
        Outcome::Fatal(error)
    }

    /// Adds the resolved display name to a channel-id target.
    fn enrich(&self, target: Target) -> Target {
        match target {
            Target::ChannelId { id, display: None } => {
                let display = self.channel_display(&id);
                Target::ChannelId { id, display }
            }
            other => other,
        }
    }
}

fn transport_failure(call: &Call, error: reqwest::Error) -> Outcome {
    let timed_out = error.is_timeout();
    let retryable = call.retry == Retry::Always || error.is_connect();
    let reason = if timed_out { "timeout" } else { "transport" };
    let error = MattermostError::Transport {
        call: call.name,
        timed_out,
        error,
    };
    if retryable {
        Outcome::Retryable { error, reason }
    } else {
        Outcome::Fatal(error)
    }
}
