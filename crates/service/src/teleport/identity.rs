//! Teleport credentials: an identity file (`tctl auth sign --format=file`, tbot) or a key,
//! certificate and CA file triple (`--format=tls`), parsed strictly with errors that say
//! which line is wrong and how to get a good file, plus the expiry check done at start.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use crate::config::Credentials;

mod text;

pub(crate) use text::parse_identity_text;

/// A parsed identity. The private key never appears in `Debug` or errors.
pub struct Identity {
    /// Where it came from (for messages and the renew hint).
    pub credentials: Credentials,
    key: PrivateKeyDer<'static>,
    /// The TLS client certificate first, then any intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Trust anchors for the Auth Service's certificate (the cluster's Host CA).
    pub cas: Vec<CertificateDer<'static>>,
    /// The SSH certificate line, kept for completeness (the gRPC client does not use it).
    pub ssh_cert: Option<String>,
    /// `@cert-authority` known_hosts lines.
    pub ssh_cas: Vec<String>,
    /// The Teleport user: the client certificate's subject common name.
    pub username: String,
    /// The client certificate's serial number, lowercase hex.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("credentials", &self.credentials)
            .field("key", &"[redacted]")
            .field("username", &self.username)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("cas", &self.cas.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {problem}. An identity file holds, in this order: the private key (PEM), the SSH \
         certificate line, the TLS certificate (PEM), `@cert-authority` lines, the TLS CA \
         certificates (PEM); export a fresh one with `tctl auth sign --format=file` or tbot"
    )]
    Malformed { path: PathBuf, problem: String },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error(
        "the Teleport {what} in {path} expired at {} (user {user:?}); {renew}",
        rfc3339(*.expired_at)
    )]
    Expired {
        path: PathBuf,
        what: &'static str,
        user: String,
        expired_at: OffsetDateTime,
        renew: String,
    },
    #[error("cannot use the identity in {path} for TLS: {detail}")]
    Tls { path: PathBuf, detail: String },
}

impl Identity {
    /// Reads and parses the configured credentials.
    pub fn load(creds: &Credentials) -> Result<Self, IdentityError> {
        match creds {
            Credentials::IdentityFile(path) => {
                let text = read(path)?;
                Self::from_identity_file(creds.clone(), path, &text)
            }
            Credentials::KeyPair { key, cert, cas } => {
                let key_text = read(key)?;
                let key_der = PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| {
                    invalid(key, format!("no usable PEM private key ({e}); expected the `.key` file of `tctl auth sign --format=tls`"))
                })?;
                let chain = certs(cert, &read(cert)?, "client certificate")?;
                let cas_der = certs(cas, &read(cas)?, "CA certificate")?;
                Self::assemble(
                    creds.clone(),
                    cert,
                    key_der,
                    chain,
                    cas_der,
                    None,
                    Vec::new(),
                )
            }
        }
    }

    /// Parses identity-file text (see [`IdentityError::Malformed`] for the layout).
    pub fn from_identity_file(
        credentials: Credentials,
        path: &Path,
        text: &str,
    ) -> Result<Self, IdentityError> {
        let parts = parse_identity_text(text).map_err(|problem| IdentityError::Malformed {
            path: path.to_path_buf(),
            problem,
        })?;
        let key = PrivateKeyDer::from_pem_slice(parts.key.as_bytes()).map_err(|e| {
            malformed(
                path,
                format!("the private key block is not valid PEM ({e})"),
            )
        })?;
        let tls = CertificateDer::from_pem_slice(parts.tls_cert.as_bytes()).map_err(|e| {
            malformed(
                path,
                format!("the TLS certificate block is not valid PEM ({e})"),
            )
        })?;
        let mut cas = Vec::new();
        for (i, block) in parts.tls_cas.iter().enumerate() {
            cas.push(
                CertificateDer::from_pem_slice(block.as_bytes()).map_err(|e| {
                    malformed(
                        path,
                        format!("TLS CA certificate #{} is not valid PEM ({e})", i + 1),
                    )
                })?,
            );
        }
        Self::assemble(
            credentials,
            path,
            key,
            vec![tls],
            cas,
            parts.ssh_cert,
            parts.ssh_cas,
        )
    }

    fn assemble(
        credentials: Credentials,
        path: &Path,
        key: PrivateKeyDer<'static>,
        cert_chain: Vec<CertificateDer<'static>>,
        cas: Vec<CertificateDer<'static>>,
        ssh_cert: Option<String>,
        ssh_cas: Vec<String>,
    ) -> Result<Self, IdentityError> {
        let leaf = CertInfo::parse(&cert_chain[0]).map_err(|e| {
            invalid(
                path,
                format!("the TLS client certificate cannot be read: {e}"),
            )
        })?;
        for (i, ca) in cas.iter().enumerate() {
            CertInfo::parse(ca).map_err(|e| {
                invalid(
                    path,
                    format!("CA certificate #{} cannot be read: {e}", i + 1),
                )
            })?;
        }
        if leaf.common_name.is_empty() {
            return Err(invalid(
                path,
                "the TLS client certificate has no subject common name (the Teleport user); \
                 is this a Teleport identity?"
                    .into(),
            ));
        }
        Ok(Self {
            credentials,
            key,
            cert_chain,
            cas,
            ssh_cert,
            ssh_cas,
            username: leaf.common_name,
            serial: leaf.serial,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        })
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The file to name in messages (the certificate for key-pair credentials).
    pub fn path(&self) -> &Path {
        match &self.credentials {
            Credentials::IdentityFile(p) => p,
            Credentials::KeyPair { cert, .. } => cert,
        }
    }

    /// Fatal when the client certificate or every CA certificate has expired; otherwise the
    /// returned warnings (some CAs expired, not valid yet) should be logged.
    pub fn check_expiry(&self, now: OffsetDateTime) -> Result<Vec<String>, IdentityError> {
        let mut warnings = Vec::new();
        if self.not_after <= now {
            return Err(self.expired("TLS certificate", self.not_after));
        }
        if self.not_before > now {
            warnings.push(format!(
                "the Teleport certificate in {} is valid only from {}: check this machine's clock",
                self.path().display(),
                rfc3339(self.not_before)
            ));
        }
        let infos: Vec<CertInfo> = self
            .cas
            .iter()
            .filter_map(|c| CertInfo::parse(c).ok())
            .collect();
        let expired: Vec<&CertInfo> = infos.iter().filter(|c| c.not_after <= now).collect();
        if !infos.is_empty() && expired.len() == infos.len() {
            let last = infos.iter().map(|c| c.not_after).max().unwrap_or(now);
            return Err(self.expired("CA certificates (all of them)", last));
        }
        if !expired.is_empty() {
            warnings.push(format!(
                "{} of {} CA certificates in {} expired (first at {}); the others are still used. \
                 Re-export the identity to drop them",
                expired.len(),
                infos.len(),
                self.path().display(),
                rfc3339(expired.iter().map(|c| c.not_after).min().unwrap_or(now))
            ));
        }
        Ok(warnings)
    }

    fn expired(&self, what: &'static str, at: OffsetDateTime) -> IdentityError {
        IdentityError::Expired {
            path: self.path().to_path_buf(),
            what,
            user: self.username.clone(),
            expired_at: at,
            renew: renew_hint(&self.credentials, &self.username),
        }
    }
}

/// A time as RFC 3339 (UTC), for messages.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// How to get fresh credentials of the same kind.
pub fn renew_hint(creds: &Credentials, user: &str) -> String {
    match creds {
        Credentials::IdentityFile(p) => format!(
            "renew it with Machine ID (`tbot`, which keeps it fresh) or run \
             `tctl auth sign --user={user} --format=file --out={}`",
            p.display()
        ),
        Credentials::KeyPair { cert, .. } => format!(
            "renew it with `tctl auth sign --user={user} --format=tls --out=<prefix>` and point \
             client_key/client_crt/root_cas at the new files (current certificate: {})",
            cert.display()
        ),
    }
}

/// What we read from an X.509 certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub common_name: String,
    /// Lowercase hex of the serial number's bytes.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let v = cert.validity();
        Ok(Self {
            common_name,
            serial: hex::encode(cert.raw_serial()),
            not_before: v.not_before.to_datetime(),
            not_after: v.not_after.to_datetime(),
        })
    }
}

fn read(path: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(path: &Path, problem: String) -> IdentityError {
    IdentityError::Malformed {
        path: path.to_path_buf(),
        problem,
    }
}

fn invalid(path: &Path, problem: String) -> IdentityError {
    IdentityError::Invalid {
        path: path.to_path_buf(),
        problem,
    }
}

fn certs(
    path: &Path,
    text: &str,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let out: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(text.as_bytes()).collect();
    let out = out.map_err(|e| invalid(path, format!("invalid PEM ({e})")))?;
    if out.is_empty() {
        return Err(invalid(
            path,
            format!("no {what} (PEM `CERTIFICATE` block) found"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
