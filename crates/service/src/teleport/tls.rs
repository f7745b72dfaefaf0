//! rustls client configuration from an identity (SNI `teleport.cluster.local`, ALPN `h2`,
//! client certificate, only the identity's CAs trusted), held in a `watch` channel that every
//! dial reads, and the refresher that re-reads the identity for the whole process lifetime.

use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::identity::{Identity, IdentityError};
use crate::config::Credentials;

/// The server name every Teleport Auth certificate carries; sent as SNI.
pub const SERVER_NAME: &str = "teleport.cluster.local";

/// The TLS side of the current identity.
#[derive(Clone)]
pub struct TlsIdentity {
    pub config: Arc<ClientConfig>,
    pub username: String,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("username", &self.username)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// What dialers read: always the newest good identity.
pub type TlsSource = watch::Receiver<Arc<TlsIdentity>>;

impl TlsIdentity {
    /// Builds the client config. Uses the ring provider directly, so it works whether or
    /// not the process-wide provider was installed.
    pub fn new(id: &Identity) -> Result<Self, IdentityError> {
        let tls_err = |detail: String| IdentityError::Tls {
            path: id.path().to_path_buf(),
            detail,
        };
        let mut roots = RootCertStore::empty();
        for ca in &id.cas {
            roots
                .add(ca.clone())
                .map_err(|e| tls_err(format!("CA certificate rejected: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(id.cert_chain.clone(), id.private_key())
            .map_err(|e| {
                tls_err(format!(
                    "the private key does not fit the certificate or is unsupported ({e})"
                ))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            username: id.username.clone(),
            serial: id.serial.clone(),
            not_after: id.not_after,
        })
    }

    /// Loads credentials, refusing expired ones, and logs expiry warnings.
    pub fn load(creds: &Credentials) -> Result<Self, IdentityError> {
        let id = Identity::load(creds)?;
        for w in id.check_expiry(OffsetDateTime::now_utc())? {
            tracing::warn!("{w}");
        }
        Self::new(&id)
    }

    /// A source that never changes (tests, tools). Readers only borrow, so the dropped
    /// sender does no harm.
    pub fn fixed(self) -> TlsSource {
        watch::channel(Arc::new(self)).1
    }
}

/// When to re-read the credentials.
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    /// Re-read periodically (`refresh_identity = true`); `None` = only on reload requests.
    pub interval: Option<Duration>,
    /// Re-read whenever this changes (SIGHUP).
    pub reload: Option<watch::Receiver<u64>>,
}

/// Publishes `initial` and keeps re-reading `creds` per `policy` until `shutdown`: a changed
/// identity is published for new connections; a broken or expired file is logged and the
/// current identity kept.
pub fn spawn_refresher(
    creds: Credentials,
    initial: TlsIdentity,
    policy: RefreshPolicy,
    shutdown: CancellationToken,
) -> TlsSource {
    let (tx, rx) = watch::channel(Arc::new(initial));
    tokio::spawn(async move {
        let mut reload = policy.reload;
        let mut ticker = policy.interval.map(|every| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            let why = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => "interval",
                changed = async { reload.as_mut().expect("guarded").changed().await }, if reload.is_some() => {
                    if changed.is_err() {
                        reload = None;
                        continue;
                    }
                    "reload request"
                }
            };
            refresh_once(&creds, &tx, why);
        }
    });
    rx
}

fn refresh_once(creds: &Credentials, tx: &watch::Sender<Arc<TlsIdentity>>, why: &str) {
    match TlsIdentity::load(creds) {
        Ok(new) => {
            let old = tx.borrow().clone();
            if new.serial == old.serial && new.username == old.username {
                tracing::debug!(reason = why, "Teleport identity unchanged");
                return;
            }
            tracing::info!(
                reason = why,
                identity.user = %new.username,
                identity.serial = %new.serial,
                identity.expires = %super::identity::rfc3339(new.not_after),
                "loaded a new Teleport identity; new connections use it"
            );
            tx.send_replace(Arc::new(new));
        }
        Err(e) => {
            tracing::error!(
                reason = why,
                "cannot reload the Teleport identity, keeping the current one: {e}"
            );
        }
    }
}
