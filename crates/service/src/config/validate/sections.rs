//! The plain sections of the config: Teleport credentials, Mattermost, routing, logging,
//! the HTTP listener and the bridge's budgets, each turned into its typed form.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::value::Value;
use url::Url;

use super::problems::{Problems, Range, list, set};
use crate::config::raw::{RawAccessLists, RawBridge, RawHttp, RawLog, RawMattermost, RawTeleport};
use crate::config::{
    AccessListsConfig, BridgeConfig, Credentials, HttpConfig, IpNet, LogConfig, LogFormat,
    LogOutput, MattermostConfig, TeleportConfig, secret,
};
use crate::route::Recipient;

const DEFAULT_ADDR: &str = "localhost:3025";
const DEFAULT_LISTEN: &str = "0.0.0.0:8081";
const DEFAULT_CONCURRENCY: usize = 128;
const MAX_CONCURRENCY: i64 = 10_000;
pub(super) const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
/// Re-reading the identity file: more often than every second burns CPU for nothing.
pub(crate) const REFRESH_IDENTITY_INTERVAL: Range = Range {
    min: secs(1),
    max: secs(24 * 3600),
    default: secs(60),
};
/// One Mattermost API call.
pub(crate) const MATTERMOST_TIMEOUT: Range = Range {
    min: secs(1),
    max: secs(5 * 60),
    default: secs(10),
};
/// A full reconciliation lists every request from Teleport: at most once a second.
pub(crate) const RESYNC_INTERVAL: Range = Range {
    min: secs(1),
    max: secs(24 * 3600),
    default: secs(300),
};
/// Listing every access list: upstream's 3 h by default; 1 s is for trials.
pub(crate) const ACCESS_LIST_INTERVAL: Range = Range {
    min: secs(1),
    max: secs(7 * 24 * 3600),
    default: secs(3 * 3600),
};

/// The Teleport settings, and the key the address was read from (`teleport.addr`, or the
/// deprecated `teleport.auth_server`): messages name the key the operator wrote.
pub(super) fn teleport(p: &mut Problems, t: RawTeleport) -> (TeleportConfig, &'static str) {
    let (addr_key, addr) = match (set(t.addr), set(t.auth_server)) {
        (Some(a), _) => ("teleport.addr", a),
        (None, Some(a)) => {
            p.warnings
                .push("`teleport.auth_server` is deprecated: rename it to `teleport.addr`".into());
            ("teleport.auth_server", a)
        }
        (None, None) => ("teleport.addr", DEFAULT_ADDR.to_string()),
    };
    if !addr.contains(':') || addr.contains("://") {
        p.problem(
            addr_key,
            format!(
                "is {addr:?}; write host:port, e.g. auth.example.com:3025 or tenant.teleport.sh:443"
            ),
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
        p.problem(
            "teleport.identity",
            "is mutually exclusive with `teleport.client_key`, `teleport.client_crt` and `teleport.root_cas`: keep one kind of credentials",
        );
        None
    } else if let Some(id) = identity {
        p.readable("teleport.identity", &id);
        Some(Credentials::IdentityFile(PathBuf::from(id)))
    } else if !given.is_empty() && !missing.is_empty() {
        p.problems.push(format!(
            "teleport setting(s) {} are provided but setting(s) {} are missing: set all three of client_key, client_crt and root_cas, or use `teleport.identity`",
            list(&given),
            list(&missing)
        ));
        None
    } else if given.len() == 3 {
        for (k, v) in &trio {
            p.readable(&format!("teleport.{k}"), v.as_deref().unwrap_or_default());
        }
        let [key, cert, cas] = trio.map(|(_, v)| PathBuf::from(v.unwrap_or_default()));
        Some(Credentials::KeyPair { key, cert, cas })
    } else {
        p.problem(
            "teleport.identity",
            "is not set and neither are client_key/client_crt/root_cas: no credentials configured; export an identity with tbot or `tctl auth sign --user=access-plugin --format=file --out=auth_id` and set `teleport.identity`",
        );
        None
    };
    if refresh && !matches!(credentials, Some(Credentials::IdentityFile(_)) | None) {
        p.problem(
            "teleport.refresh_identity",
            "requires that `teleport.identity` be set",
        );
    }
    let interval = p.duration(
        "teleport.refresh_identity_interval",
        t.refresh_identity_interval,
        &REFRESH_IDENTITY_INTERVAL,
    );
    let proxy_ca = set(t.proxy_ca)
        .map(|path| p.pem_certs("teleport.proxy_ca", &path))
        .unwrap_or_default();
    let config = TeleportConfig {
        addr,
        credentials: credentials.unwrap_or(Credentials::IdentityFile(PathBuf::new())),
        refresh_identity: refresh,
        refresh_identity_interval: interval,
        proxy_ca,
    };
    (config, addr_key)
}

pub(super) fn mattermost(p: &mut Problems, m: &RawMattermost) -> MattermostConfig {
    let token = match set(m.token.clone()) {
        None => {
            p.problem(
                "mattermost.token",
                "is missing: set the bot's access token, or a path (starting with /) to a file holding it",
            );
            None
        }
        Some(t) => match secret::load(&t) {
            Ok(s) => Some(s),
            Err(e) => {
                p.problem("mattermost.token", e);
                None
            }
        },
    };
    let url = match set(m.url.clone()) {
        None => {
            p.problem(
                "mattermost.url",
                "is missing: set it to your Mattermost base URL, e.g. https://mattermost.example.com",
            );
            None
        }
        Some(u) => p.http_url("mattermost.url", &u),
    };
    let timeout = p.duration("mattermost.timeout", m.timeout.clone(), &MATTERMOST_TIMEOUT);
    MattermostConfig {
        url: url.unwrap_or_else(|| Url::parse("http://invalid").expect("static URL")),
        token: token.unwrap_or_else(|| secrecy::SecretString::from(String::new())),
        timeout,
        notify_requester: m.notify_requester.unwrap_or(true),
    }
}

pub(super) fn role_to_recipients(
    p: &mut Problems,
    table: BTreeMap<String, Value>,
    mm_recipients: Vec<String>,
) -> BTreeMap<String, Vec<Recipient>> {
    let mut out = BTreeMap::new();
    for (role, value) in table {
        let key = format!("role_to_recipients.{role:?}");
        let Some(list) = p.strings(&key, value) else {
            continue;
        };
        out.insert(role, recipients(p, &key, &list));
    }
    if !mm_recipients.is_empty() {
        let list = recipients(p, "mattermost.recipients", &mm_recipients);
        if !out.is_empty() {
            p.warnings.push(
                "`mattermost.recipients` replaces the whole `role_to_recipients` table (as upstream does): keep only one of them".into(),
            );
        }
        out = BTreeMap::from([("*".to_string(), list)]);
    }
    out
}

/// Entries that are no recipient (upstream's own test config has `"*" = ["fallback"]`, and
/// placeholders stand in where access monitoring rules route) are skipped, as upstream skips
/// them at lookup: a deployment switching binaries must still start. `check` fails on them.
pub(super) fn recipients(p: &mut Problems, key: &str, raw: &[String]) -> Vec<Recipient> {
    let mut out = Vec::new();
    for r in raw {
        match Recipient::parse(r) {
            Ok(r) => out.push(r),
            Err(e) => p.skipped_recipients.push(format!(
                "`{key}` entry {r:?} is skipped: {why}; write \"team/channel\", an e-mail address or \"@username\", or remove it",
                why = e.why
            )),
        }
    }
    out
}

pub(super) fn log(p: &mut Problems, l: RawLog) -> LogConfig {
    let output_raw = set(l.output);
    let output = match output_raw.as_deref().map(str::to_lowercase).as_deref() {
        None | Some("stderr") | Some("error") | Some("2") => LogOutput::Stderr,
        Some("stdout") | Some("out") | Some("1") => LogOutput::Stdout,
        Some(_) => {
            let path = PathBuf::from(output_raw.unwrap_or_default());
            log_directory(p, &path);
            LogOutput::File(path)
        }
    };
    let severity = match set(l.severity).map(|s| s.to_lowercase()).as_deref() {
        None | Some("info") => tracing::Level::INFO,
        Some("err") | Some("error") => tracing::Level::ERROR,
        Some("warn") | Some("warning") => tracing::Level::WARN,
        Some("debug") => tracing::Level::DEBUG,
        Some("trace") => tracing::Level::TRACE,
        Some(other) => {
            p.problem(
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
            p.problem(
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

/// A log file is created at start-up, so its directory must exist already.
fn log_directory(p: &mut Problems, path: &std::path::Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        p.problem(
            "log.output",
            format!(
                "is {}, in a directory that does not exist ({}): use \"stdout\", \"stderr\" or a file in an existing directory",
                path.display(),
                dir.display()
            ),
        );
    } else if path.is_dir() {
        p.problem(
            "log.output",
            format!(
                "is {}, a directory: name a file in it, or use \"stdout\" or \"stderr\"",
                path.display()
            ),
        );
    }
}

/// The listener settings, and `http.public_addr` (read by in-chat review only).
pub(super) fn http(p: &mut Problems, h: RawHttp) -> (HttpConfig, Option<Url>) {
    let listen = set(h.listen_addr).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen_addr = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        p.problem(
            "http.listen_addr",
            format!("is {listen:?}: write ip:port, e.g. {DEFAULT_LISTEN}"),
        );
        DEFAULT_LISTEN.parse().expect("static address")
    });
    let public_addr = set(h.public_addr).and_then(|u| p.http_url("http.public_addr", &u));
    let mut sources = Vec::new();
    for s in &h.callback_allowed_sources {
        match IpNet::parse(s) {
            Some(n) => sources.push(n),
            None => p.problem(
                "http.callback_allowed_sources",
                format!("has {s:?}, which is not a CIDR network: write e.g. \"10.0.0.0/8\" or \"192.0.2.7\""),
            ),
        }
    }
    let http = HttpConfig {
        listen_addr,
        callback_allowed_sources: sources,
    };
    (http, public_addr)
}

pub(super) fn bridge(p: &mut Problems, b: RawBridge) -> BridgeConfig {
    let concurrency = match b.concurrency {
        None => DEFAULT_CONCURRENCY,
        Some(n) if (1..=MAX_CONCURRENCY).contains(&n) => n as usize,
        Some(n) => {
            p.problem(
                "bridge.concurrency",
                format!("is {n}, out of range: use a number from 1 to {MAX_CONCURRENCY}; the default is {DEFAULT_CONCURRENCY}"),
            );
            DEFAULT_CONCURRENCY
        }
    };
    let resync_interval = p.duration(
        "bridge.resync_interval",
        b.resync_interval,
        &RESYNC_INTERVAL,
    );
    BridgeConfig {
        concurrency,
        resync_interval,
    }
}

pub(super) fn access_lists(p: &mut Problems, a: RawAccessLists) -> AccessListsConfig {
    let interval = p.duration("access_lists.interval", a.interval, &ACCESS_LIST_INTERVAL);
    AccessListsConfig {
        enabled: a.enabled,
        interval,
        recipients: recipients(p, "access_lists.recipients", &a.recipients),
    }
}
