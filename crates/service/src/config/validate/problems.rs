//! Where validation collects every problem (each naming its key) and warning, and the
//! value parsers the sections share: string lists, URLs, durations, PEM files, readable paths.

use std::time::Duration;

use figment::value::Value;
use url::Url;

/// Every problem and warning found so far; validation goes on after a problem so the
/// operator sees all of them at once.
#[derive(Debug, Default)]
pub(super) struct Problems {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Empty strings count as unset, as in the upstream Go config.
pub(super) fn set(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Problems {
    pub fn problem(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.problems.push(format!("`{key}` {msg}"));
    }

    /// A string or a list of strings.
    pub fn strings(&mut self, key: &str, value: Value) -> Option<Vec<String>> {
        match value {
            Value::String(_, s) => Some(vec![s]),
            Value::Array(_, items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(_, s) => out.push(s),
                        other => {
                            self.problem(
                                key,
                                format!("has a non-string entry ({}): use strings", kind(&other)),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => {
                self.problem(
                    key,
                    format!("is a {}: use a string or a list of strings", kind(&other)),
                );
                None
            }
        }
    }

    pub fn http_url(&mut self, key: &str, raw: &str) -> Option<Url> {
        match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(u) => {
                self.problem(
                    key,
                    format!(
                        "is {raw:?} with scheme {:?}: use an http:// or https:// URL",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("is {raw:?}, not a URL ({e}): write e.g. https://host.example.com"),
                );
                None
            }
        }
    }

    pub fn duration(&mut self, key: &str, v: Option<Value>) -> Option<Duration> {
        match v? {
            Value::String(_, s) if s.trim().is_empty() => None,
            Value::String(_, s) => match humantime::parse_duration(s.trim()) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    self.problem(
                        key,
                        format!("is {s:?}: write a duration such as \"30s\" or \"5m\""),
                    );
                    None
                }
            },
            other => {
                self.problem(
                    key,
                    format!(
                        "is a {}: write a duration string such as \"30s\" or \"5m\"",
                        kind(&other)
                    ),
                );
                None
            }
        }
    }

    pub fn pem_certs(
        &mut self,
        key: &str,
        path: &str,
    ) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        use rustls_pki_types::pem::PemObject;
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.problem(
                    key,
                    format!("points to {path}, which cannot be read: {e}; check the path"),
                );
                return Vec::new();
            }
        };
        let certs: Result<Vec<_>, _> =
            rustls_pki_types::CertificateDer::pem_slice_iter(&bytes).collect();
        match certs {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => {
                self.problem(key, format!("file {path} holds no PEM certificate: give the CA bundle that signed the Proxy's web certificate"));
                Vec::new()
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("file {path} is not a PEM certificate bundle ({e})"),
                );
                Vec::new()
            }
        }
    }

    pub fn readable(&mut self, key: &str, path: &str) {
        if let Err(e) = std::fs::File::open(path) {
            self.problem(
                key,
                format!("points to {path}, which cannot be read: {e}; check the path and that the service's user may read it"),
            );
        }
    }
}

pub(super) fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(..) => "string",
        Value::Char(..) => "character",
        Value::Bool(..) => "boolean",
        Value::Num(..) => "number",
        Value::Empty(..) => "empty value",
        Value::Dict(..) => "table",
        Value::Array(..) => "list",
    }
}
