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
    /// Recipient entries that are skipped (see [`super::sections`]).
    pub skipped_recipients: Vec<String>,
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

    /// An http(s) URL without user info: credentials in a URL would be printed wherever the
    /// URL is, and they replace the bot's Bearer token on the way to Mattermost.
    pub fn http_url(&mut self, key: &str, raw: &str) -> Option<Url> {
        let shown = without_userinfo(raw);
        match Url::parse(raw) {
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.problem(
                    key,
                    format!("carries credentials (user:password@) in {shown:?}: remove them; Mattermost is called with the bot token only"),
                );
                None
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(u) => {
                self.problem(
                    key,
                    format!(
                        "is {shown:?} with scheme {:?}: use an http:// or https:// URL",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("is {shown:?}, not a URL ({e}): write e.g. https://host.example.com"),
                );
                None
            }
        }
    }

    /// A duration within `range`; the default when unset, and after a problem.
    pub fn duration(&mut self, key: &str, v: Option<Value>, range: &Range) -> Duration {
        let Some(v) = v else {
            return range.default;
        };
        let d = match v {
            Value::String(_, s) if s.trim().is_empty() => return range.default,
            Value::String(_, s) => match humantime::parse_duration(s.trim()) {
                Ok(d) => d,
                Err(_) => {
                    self.problem(
                        key,
                        format!("is {s:?}, not a duration: write e.g. \"30s\" or \"5m\" ({range})"),
                    );
                    return range.default;
                }
            },
            other => {
                self.problem(
                    key,
                    format!(
                        "is a {}: write a duration string such as \"30s\" ({range})",
                        kind(&other)
                    ),
                );
                return range.default;
            }
        };
        if d < range.min || d > range.max {
            self.problem(key, format!("is {}, out of range: {range}", show(d)));
            return range.default;
        }
        d
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

/// The sane values of a duration key, as `configure`'s example documents them.
pub(crate) struct Range {
    pub min: Duration,
    pub max: Duration,
    pub default: Duration,
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "use a duration from {} to {}",
            show(self.min),
            show(self.max)
        )?;
        // A zero default: the key has none (unset means off).
        if !self.default.is_zero() {
            write!(f, "; the default is {}", show(self.default))?;
        }
        Ok(())
    }
}

/// `90s` as "90s", `5m` as "5m", `24h` as "24h"; below a second in milliseconds or less.
pub(crate) fn show(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return humantime::format_duration(d).to_string();
    }
    match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub(super) fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `https://user:pw@host/x` as `https://***@host/x`, for messages: never the credentials.
pub(super) fn without_userinfo(raw: &str) -> String {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_string(),
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
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
