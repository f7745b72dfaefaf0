//! Turns the loose file contents into a typed `Config`, collecting every problem with its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Dict, Value};
use figment::{Figment, Profile, Source};
use url::Url;

use super::raw::{FREE_TABLES, RawConfig, SECTIONS};
use super::*;

const DEFAULT_ADDR: &str = "localhost:3025";
const DEFAULT_LISTEN: &str = "0.0.0.0:8081";
const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_MM_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: usize = 128;
const DEFAULT_RESYNC: Duration = Duration::from_secs(300);
/// Below this an HMAC key is guessable; 32 bytes is what `openssl rand -hex 32` prints.
const MIN_SIGNING_SECRET: usize = 32;

pub fn from_figment(figment: &Figment) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();
    let dict: Dict = match figment.extract() {
        Ok(d) => d,
        Err(e) => return Err(e.into_iter().map(|e| e.to_string()).collect()),
    };
    unknown_keys(figment, &dict, &mut problems);
    let raw: RawConfig = match figment.extract() {
        Ok(r) => r,
        Err(e) => {
            problems.extend(e.into_iter().map(|e| e.to_string()));
            return Err(problems);
        }
    };
    let mut v = Validator {
        problems,
        warnings: Vec::new(),
    };
    let config = v.build(raw);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(v.problems)
    }
}

fn unknown_keys(figment: &Figment, dict: &Dict, problems: &mut Vec<String>) {
    for (top, value) in dict {
        if FREE_TABLES.contains(&top.as_str()) {
            continue;
        }
        let Some((_, keys)) = SECTIONS.iter().find(|(s, _)| *s == top) else {
            let known: Vec<&str> = SECTIONS
                .iter()
                .map(|(s, _)| *s)
                .chain(FREE_TABLES.iter().copied())
                .collect();
            problems.push(format!(
                "unknown key `{top}`{}: remove it or fix its spelling (known sections: {})",
                origin(figment, &[top]),
                known.join(", ")
            ));
            continue;
        };
        let Value::Dict(_, section) = value else {
            problems.push(format!(
                "`{top}`{} must be a table: write it as a [{top}] section",
                origin(figment, &[top])
            ));
            continue;
        };
        for key in section.keys() {
            if !keys.contains(&key.as_str()) {
                problems.push(format!(
                    "unknown key `{top}.{key}`{}: remove it or fix its spelling (known keys of [{top}]: {})",
                    origin(figment, &[top, key]),
                    keys.join(", ")
                ));
            }
        }
    }
}

/// " in /etc/x.toml" or " in environment variable TELEPORT_MATTERMOST_X__Y".
fn origin(figment: &Figment, path: &[&str]) -> String {
    let Some(md) = figment.find_metadata(&path.join(".")) else {
        return String::new();
    };
    match &md.source {
        Some(Source::File(p)) => format!(" in {}", p.display()),
        _ => {
            let keys: Vec<&str> = path.to_vec();
            format!(
                " in {} {}",
                md.name,
                md.interpolate(&Profile::Default, &keys)
            )
        }
    }
}

struct Validator {
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// Empty strings count as unset, as in the upstream Go config.
fn set(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Validator {
    fn problem(&mut self, key: &str, msg: impl fmt::Display) {
        self.problems.push(format!("`{key}` {msg}"));
    }

    fn build(&mut self, raw: RawConfig) -> Config {
        let teleport = self.teleport(raw.teleport);
        let mattermost = self.mattermost(&raw.mattermost);
        let role_to_recipients =
            self.role_to_recipients(raw.role_to_recipients, raw.mattermost.recipients);
        let log = self.log(raw.log);
        let http = self.http(raw.http);
        let review = self.review(raw.review, &http);
        let concurrency = match raw.bridge.concurrency {
            None => DEFAULT_CONCURRENCY,
            Some(n) if (1..=10_000).contains(&n) => n as usize,
            Some(n) => {
                self.problem(
                    "bridge.concurrency",
                    format!("is {n}; use a number from 1 to 10000 (default {DEFAULT_CONCURRENCY})"),
                );
                DEFAULT_CONCURRENCY
            }
        };
        let resync_interval = self
            .duration("bridge.resync_interval", raw.bridge.resync_interval)
            .unwrap_or(DEFAULT_RESYNC);
        Config {
            teleport,
            mattermost,
            role_to_recipients,
            log,
            http,
            review,
            bridge: BridgeConfig {
                concurrency,
                resync_interval,
            },
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn teleport(&mut self, t: super::raw::RawTeleport) -> TeleportConfig {
        let addr = match (set(t.addr), set(t.auth_server)) {
            (Some(a), _) => a,
            (None, Some(a)) => {
                self.warnings.push(
                    "`teleport.auth_server` is deprecated: rename it to `teleport.addr`".into(),
                );
                a
            }
            (None, None) => DEFAULT_ADDR.to_string(),
        };
        if !addr.contains(':') || addr.contains("://") {
            self.problem(
                "teleport.addr",
                format!("is {addr:?}; write host:port, e.g. auth.example.com:3025 or tenant.teleport.sh:443"),
            );
        }
        let identity = set(t.identity);
        let trio = [
            ("client_key", set(t.client_key)),
            ("client_crt", set(t.client_crt)),
            ("root_cas", set(t.root_cas)),
        ];
        let given: Vec<&str> = trio
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        let missing: Vec<&str> = trio
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        let refresh = t.refresh_identity.unwrap_or(false);
        let credentials = if identity.is_some() && !given.is_empty() {
            self.problem(
                "teleport.identity",
                "is mutually exclusive with `teleport.client_key`, `teleport.client_crt` and `teleport.root_cas`: keep one kind of credentials",
            );
            None
        } else if let Some(id) = identity {
            self.readable("teleport.identity", &id);
            Some(Credentials::IdentityFile(PathBuf::from(id)))
        } else if !given.is_empty() && !missing.is_empty() {
            self.problems.push(format!(
                "teleport setting(s) {} are provided but setting(s) {} are missing: set all three of client_key, client_crt and root_cas, or use `teleport.identity`",
                list(&given),
                list(&missing)
            ));
            None
        } else if given.len() == 3 {
            for (k, v) in &trio {
                self.readable(&format!("teleport.{k}"), v.as_deref().unwrap_or_default());
            }
            let [key, cert, cas] = trio.map(|(_, v)| PathBuf::from(v.unwrap_or_default()));
            Some(Credentials::KeyPair { key, cert, cas })
        } else {
            self.problem(
                "teleport.identity",
                "is not set and neither are client_key/client_crt/root_cas: no credentials configured; export an identity with tbot or `tctl auth sign --user=access-plugin --format=file --out=auth_id` and set `teleport.identity`",
            );
            None
        };
        if refresh && !matches!(credentials, Some(Credentials::IdentityFile(_)) | None) {
            self.problem(
                "teleport.refresh_identity",
                "requires that `teleport.identity` be set",
            );
        }
        let interval = self
            .duration(
                "teleport.refresh_identity_interval",
                t.refresh_identity_interval,
            )
            .unwrap_or(DEFAULT_REFRESH);
        let proxy_ca = set(t.proxy_ca)
            .map(|p| self.pem_certs("teleport.proxy_ca", &p))
            .unwrap_or_default();
        TeleportConfig {
            addr,
            credentials: credentials.unwrap_or(Credentials::IdentityFile(PathBuf::new())),
            refresh_identity: refresh,
            refresh_identity_interval: interval,
            proxy_ca,
        }
    }

    fn mattermost(&mut self, m: &super::raw::RawMattermost) -> MattermostConfig {
        let token = match set(m.token.clone()) {
            None => {
                self.problem(
                    "mattermost.token",
                    "is missing: set the bot's access token, or a path (starting with /) to a file holding it",
                );
                None
            }
            Some(t) => match secret::load(&t) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.problem("mattermost.token", e);
                    None
                }
            },
        };
        let url = match set(m.url.clone()) {
            None => {
                self.problem(
                    "mattermost.url",
                    "is missing: set it to your Mattermost base URL, e.g. https://mattermost.example.com",
                );
                None
            }
            Some(u) => self.http_url("mattermost.url", &u),
        };
        let timeout = self
            .duration("mattermost.timeout", m.timeout.clone())
            .unwrap_or(DEFAULT_MM_TIMEOUT);
        MattermostConfig {
            url: url.unwrap_or_else(|| Url::parse("http://invalid").expect("static URL")),
            token: token.unwrap_or_else(|| secrecy::SecretString::from(String::new())),
            timeout,
        }
    }

    fn role_to_recipients(
        &mut self,
        table: BTreeMap<String, Value>,
        mm_recipients: Vec<String>,
    ) -> BTreeMap<String, Vec<Recipient>> {
        let mut out = BTreeMap::new();
        for (role, value) in table {
            let key = format!("role_to_recipients.{role:?}");
            let Some(list) = self.strings(&key, value) else {
                continue;
            };
            out.insert(role, self.recipients(&key, &list));
        }
        if !mm_recipients.is_empty() {
            let list = self.recipients("mattermost.recipients", &mm_recipients);
            if !out.is_empty() {
                self.warnings.push(
                    "`mattermost.recipients` replaces the whole `role_to_recipients` table (as upstream does): keep only one of them".into(),
                );
            }
            out = BTreeMap::from([("*".to_string(), list)]);
        }
        out
    }

    fn recipients(&mut self, key: &str, raw: &[String]) -> Vec<Recipient> {
        let mut out = Vec::new();
        for r in raw {
            match Recipient::parse(r) {
                Ok(r) => out.push(r),
                Err(e) => self.problem(key, format!("has a bad entry: {e}")),
            }
        }
        out
    }

    /// A string or a list of strings.
    fn strings(&mut self, key: &str, value: Value) -> Option<Vec<String>> {
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

    fn log(&mut self, l: super::raw::RawLog) -> LogConfig {
        let output_raw = set(l.output);
        let output = match output_raw.as_deref().map(str::to_lowercase).as_deref() {
            None | Some("stderr") | Some("error") | Some("2") => LogOutput::Stderr,
            Some("stdout") | Some("out") | Some("1") => LogOutput::Stdout,
            Some(_) => LogOutput::File(PathBuf::from(output_raw.unwrap_or_default())),
        };
        let severity = match set(l.severity).map(|s| s.to_lowercase()).as_deref() {
            None | Some("info") => tracing::Level::INFO,
            Some("err") | Some("error") => tracing::Level::ERROR,
            Some("warn") | Some("warning") => tracing::Level::WARN,
            Some("debug") => tracing::Level::DEBUG,
            Some("trace") => tracing::Level::TRACE,
            Some(other) => {
                self.problem(
                    "log.severity",
                    format!("is {other:?}: use one of info, warn, error, debug, trace"),
                );
                tracing::Level::INFO
            }
        };
        let format = match set(l.format).map(|s| s.to_lowercase()).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.problem(
                    "log.format",
                    format!("is {other:?}: use \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        };
        LogConfig {
            output,
            severity,
            format,
        }
    }

    fn http(&mut self, h: super::raw::RawHttp) -> HttpConfig {
        let listen = set(h.listen_addr).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen_addr = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            self.problem(
                "http.listen_addr",
                format!("is {listen:?}: write ip:port, e.g. {DEFAULT_LISTEN}"),
            );
            DEFAULT_LISTEN.parse().expect("static address")
        });
        let public_addr = set(h.public_addr).and_then(|u| self.http_url("http.public_addr", &u));
        let mut sources = Vec::new();
        for s in &h.callback_allowed_sources {
            match IpNet::parse(s) {
                Some(n) => sources.push(n),
                None => self.problem(
                    "http.callback_allowed_sources",
                    format!("has {s:?}, which is not a CIDR network: write e.g. \"10.0.0.0/8\" or \"192.0.2.7\""),
                ),
            }
        }
        HttpConfig {
            listen_addr,
            public_addr,
            callback_allowed_sources: sources,
        }
    }

    fn review(&mut self, r: super::raw::RawReview, http: &HttpConfig) -> ReviewConfig {
        let mut out = ReviewConfig::disabled();
        out.enabled = r.enabled.unwrap_or(false);
        if let Some(t) = set(r.user_id_trait) {
            out.user_id_trait = t;
        }
        out.allow_email_username_match = r.allow_email_username_match.unwrap_or(false);
        out.link_only_roles = r.link_only_roles;
        out.require_reason = match set(r.require_reason).map(|s| s.to_lowercase()).as_deref() {
            None | Some("deny") => RequireReason::Deny,
            Some("never") => RequireReason::Never,
            Some("always") => RequireReason::Always,
            Some(other) => {
                self.problem(
                    "review.require_reason",
                    format!("is {other:?}: use \"never\", \"deny\" or \"always\""),
                );
                RequireReason::Deny
            }
        };
        if let Some(s) = set(r.signing_secret) {
            match secret::load(&s) {
                Ok(secret) => {
                    use secrecy::ExposeSecret;
                    if secret.expose_secret().len() < MIN_SIGNING_SECRET {
                        self.problem(
                            "review.signing_secret",
                            format!("is shorter than {MIN_SIGNING_SECRET} characters: generate one with `openssl rand -hex 32`"),
                        );
                    }
                    out.signing_secret = Some(secret);
                }
                Err(e) => self.problem("review.signing_secret", e),
            }
        }
        if let Some(v) = r.command_token {
            for t in self.strings("review.command_token", v).unwrap_or_default() {
                match secret::load(&t) {
                    Ok(s) => out.command_tokens.push(s),
                    Err(e) => self.problem("review.command_token", e),
                }
            }
        }
        if out.enabled {
            if out.signing_secret.is_none() {
                self.problem(
                    "review.signing_secret",
                    "is required when `review.enabled = true`: generate one with `openssl rand -hex 32`",
                );
            }
            if http.public_addr.is_none() {
                self.problem(
                    "http.public_addr",
                    "is required when `review.enabled = true`: set the URL Mattermost uses to reach this service, e.g. https://teleport-mattermost.internal:8081",
                );
            }
        }
        out
    }

    fn http_url(&mut self, key: &str, raw: &str) -> Option<Url> {
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

    fn duration(&mut self, key: &str, v: Option<Value>) -> Option<Duration> {
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

    fn pem_certs(
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

    fn readable(&mut self, key: &str, path: &str) {
        if let Err(e) = std::fs::File::open(path) {
            self.problem(
                key,
                format!("points to {path}, which cannot be read: {e}; check the path and that the service's user may read it"),
            );
        }
    }
}

fn list(keys: &[&str]) -> String {
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
