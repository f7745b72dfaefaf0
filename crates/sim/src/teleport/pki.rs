//! The simulated cluster's certificate authorities: a Host CA that signs the Auth server's
//! certificate (SANs `teleport.cluster.local`, `*.teleport.cluster.local`) and a User CA that
//! signs client certificates (subject CN = Teleport user), and identity files in the real
//! `tctl auth sign --format=file` layout.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// The SAN every Teleport Auth server certificate carries and clients use as SNI.
pub const API_DOMAIN: &str = "teleport.cluster.local";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl Ca {
    fn new(cluster: &str, kind: &str) -> Self {
        let key = KeyPair::generate().expect("ECDSA key generation");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, cluster);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cluster} {kind} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + Duration::from_secs(10 * 365 * 86400);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }
}

/// An identity issued by the simulator.
#[derive(Clone)]
pub struct IssuedIdentity {
    pub user: String,
    /// Lowercase hex of the serial number's bytes (what the Auth simulator records per connection).
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub key_pem: String,
    pub cert_pem: String,
    /// The Host CA: what the client must trust.
    pub ca_pem: String,
    ssh_cert_line: String,
    ssh_ca_line: String,
}

impl std::fmt::Debug for IssuedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedIdentity")
            .field("user", &self.user)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl IssuedIdentity {
    /// The identity file: key, SSH cert line, TLS cert, `@cert-authority`, Host CA.
    pub fn identity_file(&self) -> String {
        format!(
            "{}{}\n{}{}\n{}",
            self.key_pem, self.ssh_cert_line, self.cert_pem, self.ssh_ca_line, self.ca_pem
        )
    }
}

/// Validity of an issued identity.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from a minute ago for `ttl`.
    pub fn for_ttl(ttl: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::from_secs(60),
            not_after: now + ttl,
        }
    }

    /// Already expired `ago`.
    pub fn expired(ago: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - ago - Duration::from_secs(3600),
            not_after: now - ago,
        }
    }
}

/// Both CAs and the server's certificate.
pub struct ClusterPki {
    cluster: String,
    host_ca: Ca,
    user_ca: Ca,
    server_config: Arc<ServerConfig>,
}

impl ClusterPki {
    pub fn new(cluster: &str) -> Self {
        let host_ca = Ca::new(cluster, "host");
        let user_ca = Ca::new(cluster, "user");
        let server_config = server_config(&host_ca, &user_ca, cluster);
        Self {
            cluster: cluster.to_string(),
            host_ca,
            user_ca,
            server_config,
        }
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config.clone()
    }

    pub fn host_ca_pem(&self) -> &str {
        &self.host_ca.pem
    }

    /// A client identity for `user` (subject CN = user, one O per role, like Teleport).
    pub fn issue(&self, user: &str, roles: &[String], validity: Validity) -> IssuedIdentity {
        let key = KeyPair::generate().expect("ECDSA key generation");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, user);
        for r in roles {
            params
                .distinguished_name
                .push(DnType::OrganizationName, r.as_str());
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let serial = random_serial();
        let serial_hex = hex::encode(serial.to_bytes());
        params.serial_number = Some(serial);
        let cert = params
            .signed_by(&key, &self.user_ca.issuer)
            .expect("signing a client certificate");
        IssuedIdentity {
            user: user.to_string(),
            serial: serial_hex,
            not_after: validity.not_after,
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
            ca_pem: self.host_ca.pem.clone(),
            ssh_cert_line: ssh_cert_line(user),
            ssh_ca_line: format!(
                "@cert-authority {c},*.{c} ecdsa-sha2-nistp256 {} type=host",
                ssh_blob("ecdsa-sha2-nistp256"),
                c = self.cluster
            ),
        }
    }
}

fn server_config(host_ca: &Ca, user_ca: &Ca, cluster: &str) -> Arc<ServerConfig> {
    let key = KeyPair::generate().expect("ECDSA key generation");
    let mut params = CertificateParams::new(vec![
        API_DOMAIN.to_string(),
        format!("*.{API_DOMAIN}"),
        "localhost".to_string(),
    ])
    .expect("valid SANs");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, cluster);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("auth.{cluster}"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + Duration::from_secs(365 * 86400);
    let cert = params
        .signed_by(&key, &host_ca.issuer)
        .expect("signing the server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(user_ca.der.clone()).expect("User CA is valid");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone(), host_ca.der.clone()], key_der)
        .expect("server key matches its certificate");
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(cfg)
}

/// A positive, non-zero 16-byte serial.
fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[0] = (b[0] & 0x7f) | 0x10;
    SerialNumber::from_slice(&b)
}

/// An SSH-wire blob starting with the key type, like a real key or certificate (its content
/// is random: the gRPC client never uses the SSH parts).
fn ssh_blob(kind: &str) -> String {
    let mut blob = Vec::new();
    blob.extend_from_slice(&(kind.len() as u32).to_be_bytes());
    blob.extend_from_slice(kind.as_bytes());
    let mut rest = [0u8; 48];
    rand::rng().fill_bytes(&mut rest);
    blob.extend_from_slice(&rest);
    base64::engine::general_purpose::STANDARD.encode(blob)
}

fn ssh_cert_line(user: &str) -> String {
    let kind = "ecdsa-sha2-nistp256-cert-v01@openssh.com";
    format!("{kind} {} {user}", ssh_blob(kind))
}
