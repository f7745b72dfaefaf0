//! The client's TLS configuration: rustls with the ring provider, the platform's trusted roots
//! plus optional extra CA certificates (a private Mattermost CA, or a test CA).

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_platform_verifier::Verifier;

/// Builds the rustls config for reqwest. Fails when no root is available at all (no system CA
/// bundle and no extra CA), which the caller reports with the fix.
pub fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Verifier::new_with_extra_roots(extra_roots.iter().cloned(), provider.clone())?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A config that trusts nothing, for plain-HTTP use on hosts without a CA bundle: HTTP works,
/// any HTTPS handshake fails with an unknown-issuer error.
pub fn no_roots_config() -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_untrusting_config_builds_and_offers_no_roots() {
        let config = super::no_roots_config();
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn a_bad_extra_ca_is_refused() {
        let bad = rustls_pki_types::CertificateDer::from(vec![0u8; 8]);
        assert!(super::client_config(&[bad]).is_err());
    }
}
