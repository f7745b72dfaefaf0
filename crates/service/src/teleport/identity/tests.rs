//! Identity parsing: the real layout, CRLF and whitespace, strict ordering, malformed input
//! (property tests: never a panic, always an error naming the problem), and expiry.

use std::sync::LazyLock;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use teleport_mattermost_sim::teleport::pki::{ClusterPki, IssuedIdentity, Validity};

static PKI: LazyLock<ClusterPki> = LazyLock::new(|| ClusterPki::new("example.test"));
static GOOD: LazyLock<IssuedIdentity> = LazyLock::new(|| {
    PKI.issue(
        "access-plugin",
        &["access-plugin".into()],
        Validity::for_ttl(Duration::from_secs(3600)),
    )
});

fn creds() -> Credentials {
    Credentials::IdentityFile("/var/lib/teleport/plugin/identity".into())
}

fn parse(text: &str) -> Result<Identity, IdentityError> {
    Identity::from_identity_file(
        creds(),
        Path::new("/var/lib/teleport/plugin/identity"),
        text,
    )
}

#[test]
fn a_tctl_style_identity_file_parses_with_user_serial_and_expiry() {
    let id = parse(&GOOD.identity_file()).unwrap();
    assert_eq!(id.username, "access-plugin");
    assert_eq!(id.serial, GOOD.serial);
    assert_eq!(id.cas.len(), 1);
    assert_eq!(id.ssh_cas.len(), 1);
    assert!(
        id.ssh_cert
            .as_deref()
            .unwrap()
            .starts_with("ecdsa-sha2-nistp256-cert-v01@openssh.com ")
    );
    assert_eq!(
        id.not_after.unix_timestamp(),
        GOOD.not_after.unix_timestamp()
    );
    assert!(
        id.check_expiry(OffsetDateTime::now_utc())
            .unwrap()
            .is_empty()
    );
    let dbg = format!("{id:?}");
    assert!(
        dbg.contains("[redacted]") && !dbg.contains("PRIVATE"),
        "{dbg}"
    );
}

#[test]
fn crlf_line_endings_and_surrounding_whitespace_are_tolerated() {
    let text = GOOD
        .identity_file()
        .lines()
        .map(|l| format!("  {l}\t\r\n"))
        .collect::<String>();
    let text = format!("\r\n\r\n{text}\r\n\r\n");
    assert_eq!(parse(&text).unwrap().serial, GOOD.serial);
}

#[test]
fn ssh_parts_are_optional_but_order_is_enforced() {
    let minimal = format!("{}{}{}", GOOD.key_pem, GOOD.cert_pem, GOOD.ca_pem);
    assert!(parse(&minimal).is_ok());

    let cases = [
        (
            format!("{}{}{}", GOOD.cert_pem, GOOD.key_pem, GOOD.ca_pem),
            "private key must come first",
        ),
        (
            format!("{}{}", GOOD.key_pem, GOOD.cert_pem),
            "no TLS CA certificate",
        ),
        (GOOD.key_pem.clone(), "no TLS certificate"),
        (String::new(), "no private key"),
        (
            format!(
                "{}{}{}{}",
                GOOD.key_pem, GOOD.key_pem, GOOD.cert_pem, GOOD.ca_pem
            ),
            "only come first",
        ),
        (
            format!(
                "{}hello world\n{}{}",
                GOOD.key_pem, GOOD.cert_pem, GOOD.ca_pem
            ),
            "line 6: unexpected content",
        ),
        (
            format!(
                "@cert-authority x\n{}{}{}",
                GOOD.key_pem, GOOD.cert_pem, GOOD.ca_pem
            ),
            "must follow the TLS certificate",
        ),
        (
            format!(
                "{}{}{}ssh-ed25519-cert-v01@openssh.com AAAA\n",
                GOOD.key_pem, GOOD.cert_pem, GOOD.ca_pem
            ),
            "must directly follow the private key",
        ),
        (
            format!(
                "{}-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                GOOD.key_pem
            ),
            "unexpected PEM block `PUBLIC KEY`",
        ),
    ];
    for (text, want) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "want {want:?} in: {err}");
        assert!(err.contains("tctl auth sign --format=file"), "{err}");
    }
}

#[test]
fn a_truncated_pem_block_is_reported_with_its_line() {
    let full = GOOD.identity_file();
    let cut = &full[..full.len() - 40];
    let err = parse(cut).unwrap_err().to_string();
    assert!(
        err.contains("has no `-----END CERTIFICATE-----` line"),
        "{err}"
    );
}

#[test]
fn errors_never_echo_key_material() {
    let key_line = GOOD.key_pem.lines().nth(1).unwrap();
    let text = format!("{key_line}\n{}", GOOD.identity_file());
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains(key_line), "{err}");
}

#[test]
fn corrupt_base64_inside_a_block_is_an_error_not_a_panic() {
    let text = GOOD.identity_file().replacen("MI", "!!", 1);
    assert!(parse(&text).is_err());
}

#[test]
fn an_expired_identity_is_fatal_and_says_how_to_renew() {
    let old = PKI.issue(
        "access-plugin",
        &[],
        Validity::expired(Duration::from_secs(600)),
    );
    let id = parse(&old.identity_file()).unwrap();
    let err = id.check_expiry(OffsetDateTime::now_utc()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, IdentityError::Expired { .. }));
    assert!(text.contains("expired at"), "{text}");
    assert!(text.contains("tbot"), "{text}");
    assert!(
        text.contains("tctl auth sign --user=access-plugin --format=file --out=/var/lib/teleport/plugin/identity"),
        "{text}"
    );
}

#[test]
fn some_expired_cas_only_warn_and_all_expired_cas_are_fatal() {
    let id = parse(&GOOD.identity_file()).unwrap();
    let ca_expiry = CertInfo::parse(&id.cas[0]).unwrap().not_after;
    // A second CA (the user one stands in) that "expired" relative to a later clock.
    let mut two = parse(&GOOD.identity_file()).unwrap();
    two.cas.push(id.cert_chain[0].clone());
    let later = GOOD.not_after - Duration::from_secs(1);
    assert!(two.check_expiry(later).unwrap().is_empty());
    // Pretend the leaf's expiry is far away, so only the CA expiry matters.
    two.not_after = ca_expiry + Duration::from_secs(86400);
    let warnings = two
        .check_expiry(GOOD.not_after + Duration::from_secs(1))
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("1 of 2 CA certificates"),
        "{warnings:?}"
    );
    let err = two
        .check_expiry(ca_expiry + Duration::from_secs(1))
        .unwrap_err();
    assert!(
        err.to_string().contains("CA certificates (all of them)"),
        "{err}"
    );
}

#[test]
fn key_pair_credentials_load_from_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, cas) = (
        dir.path().join("p.key"),
        dir.path().join("p.crt"),
        dir.path().join("p.cas"),
    );
    std::fs::write(&key, &GOOD.key_pem).unwrap();
    std::fs::write(&cert, &GOOD.cert_pem).unwrap();
    std::fs::write(&cas, &GOOD.ca_pem).unwrap();
    let creds = Credentials::KeyPair {
        key: key.clone(),
        cert: cert.clone(),
        cas: cas.clone(),
    };
    let id = Identity::load(&creds).unwrap();
    assert_eq!(id.username, "access-plugin");
    assert_eq!(id.path(), cert.as_path());

    std::fs::write(&cas, "nothing here").unwrap();
    let err = Identity::load(&creds).unwrap_err().to_string();
    assert!(
        err.contains("p.cas") && err.contains("no CA certificate"),
        "{err}"
    );
    let missing = Credentials::IdentityFile(dir.path().join("nope"));
    let err = Identity::load(&missing).unwrap_err().to_string();
    assert!(err.contains("cannot read") && err.contains("nope"), "{err}");
}

proptest! {
    // 200 cases unless `PROPTEST_CASES` asks for more (the longer run in BENCHMARKS.md).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
    ))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        if let Err(e) = parse(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn damaged_identity_files_never_panic_and_explain_themselves(
        cut in 0usize..4000,
        drop_line in 0usize..40,
        dup_line in 0usize..40,
        garbage in "[ -~]{0,30}",
        at in 0usize..40,
    ) {
        let full = GOOD.identity_file();
        let mut lines: Vec<String> = full.lines().map(str::to_string).collect();
        if drop_line < lines.len() { lines.remove(drop_line); }
        if dup_line < lines.len() { let l = lines[dup_line].clone(); lines.insert(dup_line, l); }
        if at < lines.len() { lines.insert(at, garbage.clone()); }
        let mut text = lines.join("\n");
        text.truncate(text.char_indices().map(|(i, _)| i).find(|&i| i >= cut).unwrap_or(text.len()));
        match parse(&text) {
            Ok(id) => prop_assert_eq!(id.username, "access-plugin"),
            Err(e) => prop_assert!(e.to_string().len() > 20),
        }
    }
}
