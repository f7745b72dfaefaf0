//! The identity-file layout: private key, SSH certificate line, TLS certificate,
//! `@cert-authority` lines, TLS CA certificates, in that order.

/// The sections of an identity file, still as text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IdentityParts {
    pub key: String,
    pub ssh_cert: Option<String>,
    pub tls_cert: String,
    pub ssh_cas: Vec<String>,
    pub tls_cas: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Start,
    Key,
    SshCert,
    TlsCert,
    SshCas,
    TlsCas,
}

/// Splits identity-file text into its sections, in order. Lines are trimmed (CRLF and stray
/// whitespace are fine), blank lines skipped; anything else out of place is an error naming
/// the line. Never echoes line contents, which could be key material.
pub fn parse_identity_text(text: &str) -> Result<IdentityParts, String> {
    let lines: Vec<&str> = text.split('\n').map(str::trim).collect();
    let mut parts = IdentityParts::default();
    let mut stage = Stage::Start;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let n = i + 1;
        i += 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            let Some(label) = rest.strip_suffix("-----") else {
                return Err(format!("line {n}: broken PEM header"));
            };
            let end = format!("-----END {label}-----");
            let mut block = vec![line];
            loop {
                let Some(next) = lines.get(i) else {
                    return Err(format!(
                        "the PEM block `{label}` starting at line {n} has no `{end}` line (truncated file?)"
                    ));
                };
                i += 1;
                block.push(next);
                if *next == end {
                    break;
                }
                if next.starts_with("-----") {
                    return Err(format!(
                        "line {}: expected `{end}` to close the block of line {n}",
                        i
                    ));
                }
            }
            let pem = block.join("\n") + "\n";
            if label.ends_with("PRIVATE KEY") {
                if stage != Stage::Start {
                    return Err(format!(
                        "line {n}: a private key may only come first in the file"
                    ));
                }
                parts.key = pem;
                stage = Stage::Key;
            } else if label == "CERTIFICATE" {
                match stage {
                    Stage::Start => {
                        return Err(format!(
                            "line {n}: found a certificate where the private key must come first"
                        ));
                    }
                    Stage::Key | Stage::SshCert => {
                        parts.tls_cert = pem;
                        stage = Stage::TlsCert;
                    }
                    _ => {
                        parts.tls_cas.push(pem);
                        stage = Stage::TlsCas;
                    }
                }
            } else {
                return Err(format!(
                    "line {n}: unexpected PEM block `{label}` (only private keys and certificates belong here)"
                ));
            }
        } else if line.starts_with("@cert-authority") {
            if !(stage == Stage::TlsCert || stage == Stage::SshCas) {
                return Err(format!(
                    "line {n}: an `@cert-authority` line must follow the TLS certificate"
                ));
            }
            parts.ssh_cas.push(line.to_string());
            stage = Stage::SshCas;
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|t| t.ends_with("-cert-v01@openssh.com"))
        {
            if stage != Stage::Key {
                return Err(format!(
                    "line {n}: the SSH certificate line must directly follow the private key"
                ));
            }
            parts.ssh_cert = Some(line.to_string());
            stage = Stage::SshCert;
        } else {
            return Err(format!(
                "line {n}: unexpected content (not a PEM block, SSH certificate or `@cert-authority` line)"
            ));
        }
    }
    match stage {
        Stage::Start => Err("no private key found (empty file?)".into()),
        Stage::Key | Stage::SshCert => Err("no TLS certificate found after the private key".into()),
        Stage::TlsCert | Stage::SshCas => {
            Err("no TLS CA certificate found (needed to verify the Auth Service)".into())
        }
        Stage::TlsCas => Ok(parts),
    }
}
