//! `teleport-mattermost check`: a live self-test, one line per check with the fix for each
//! failure — config, identity, Teleport reachability and the plugin role's permissions,
//! Mattermost token and bot, every configured recipient, and in-chat review prerequisites.
//! Permission probes use a random request id, so they never change anything.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Config;
use crate::mattermost::{ClientOptions as MmOptions, MattermostClient, MattermostError};
use crate::metrics::Metrics;
use crate::route::{PLUGIN_NAME, Recipient};
use crate::signals::Signals;
use crate::teleport::client::{ClientOptions as TpOptions, NewReview, PingInfo, RequestFilter};
use crate::teleport::events::{WatchEvent, WatchRequest};
use crate::teleport::{Identity, TeleportClient, TeleportError};

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but something optional is off.
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.lines.push(Line {
            status: Status::Pass,
            check,
            detail: detail.into(),
            fix: None,
        });
    }

    fn warn(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(Line {
            status: Status::Warn,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(Line {
            status: Status::Fail,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    pub fn ok(&self) -> bool {
        self.lines.iter().all(|l| l.status != Status::Fail)
    }

    /// `✔ detail`, `! detail (fix)`, `✘ detail — fix: …`, one line each.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let line = match (&l.status, &l.fix) {
                (Status::Pass, _) => format!("✔ {}", l.detail),
                (Status::Warn, Some(f)) => format!("! {} — {f}", l.detail),
                (Status::Fail, Some(f)) => format!("✘ {} — fix: {f}", l.detail),
                (_, None) => format!("✘ {}", l.detail),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Runs every check against the live systems. Never panics; each problem becomes a line.
pub async fn run(cfg: &Config) -> Report {
    let mut r = Report::default();
    for w in &cfg.warnings {
        r.warn("config", w.clone(), "see the key named above");
    }
    let teleport = teleport_checks(cfg, &mut r).await;
    mattermost_checks(cfg, &mut r).await;
    review_checks(cfg, teleport.as_ref(), &mut r).await;
    r
}

/// What can be checked without the network: the config (already loaded) and the identity
/// files (readable, parseable, unexpired). For CI pipelines and pre-install hooks.
pub fn run_offline(cfg: &Config) -> Report {
    let mut r = Report::default();
    for w in &cfg.warnings {
        r.warn("config", w.clone(), "see the key named above");
    }
    identity_checks(cfg, &mut r);
    r
}

fn identity_checks(cfg: &Config, r: &mut Report) -> bool {
    let id = match Identity::load(&cfg.teleport.credentials) {
        Ok(id) => id,
        Err(e) => {
            r.fail("identity", format!("Teleport identity unusable: {e}"), "export a fresh identity with tbot or `tctl auth sign --format=file` and point `teleport.identity` at it");
            return false;
        }
    };
    let now = OffsetDateTime::now_utc();
    match id.check_expiry(now) {
        Ok(warnings) => {
            let days = (id.not_after - now).whole_days();
            r.pass(
                "identity",
                format!(
                    "identity {} readable, user {}, expires in {days} day(s) ({})",
                    id.path().display(),
                    id.username,
                    id.not_after.date()
                ),
            );
            for w in warnings {
                r.warn("identity", w, "renew the identity");
            }
            if days < 7 && !cfg.teleport.refresh_identity {
                r.warn(
                    "identity",
                    format!("the identity expires in {days} day(s) and `refresh_identity` is off"),
                    "renew it, or let tbot renew it and set `teleport.refresh_identity = true`",
                );
            }
        }
        Err(e) => {
            r.fail(
                "identity",
                e.to_string(),
                "renew the identity (tbot, or `tctl auth sign --format=file`)",
            );
            return false;
        }
    }
    true
}

async fn teleport_checks(cfg: &Config, r: &mut Report) -> Option<(TeleportClient, PingInfo)> {
    if !identity_checks(cfg, r) {
        return None;
    }
    let signals = Signals::manual(tokio_util::sync::CancellationToken::new());
    let client = match TeleportClient::connect(&cfg.teleport, &signals, TpOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            r.fail("teleport", e.to_string(), "fix the identity");
            return None;
        }
    };
    let ping = match tokio::time::timeout(STEP_TIMEOUT, client.ping()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            r.fail("teleport", format!("Teleport not reachable at {}: {e}", cfg.teleport.addr), "check `teleport.addr` (Auth :3025, Proxy :443/:3080) and that the identity was issued by this cluster");
            return None;
        }
        Err(_) => {
            r.fail(
                "teleport",
                format!(
                    "Teleport at {} did not answer within {}s",
                    cfg.teleport.addr,
                    STEP_TIMEOUT.as_secs()
                ),
                "check `teleport.addr` and the network path",
            );
            return None;
        }
    };
    r.pass(
        "teleport",
        format!(
            "Teleport reachable via {} ({}), cluster {}, v{}",
            path_label(&client),
            cfg.teleport.addr,
            ping.cluster_name,
            ping.server_version
        ),
    );
    let user = client.identity().username.clone();
    permission_checks(&client, &user, r).await;
    Some((client, ping))
}

/// How the client reached Teleport (direct Auth, or one of the Proxy paths).
fn path_label(client: &TeleportClient) -> String {
    client
        .path()
        .map_or_else(|| "an unknown path".into(), |p| p.to_string())
}

async fn permission_checks(client: &TeleportClient, user: &str, r: &mut Report) {
    let role_fix = |rule: &str| {
        format!(
            "give the role of Teleport user {user:?} the rule {rule} (see the setup guide, step 2)"
        )
    };
    // Watch: INIT tells which kinds the role may read.
    match tokio::time::timeout(STEP_TIMEOUT, watch_kinds(client)).await {
        Ok(Ok(kinds)) => {
            let has = |k: &str| kinds.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
            if has("access_request") {
                r.pass("permissions", "may watch access requests");
            } else {
                r.fail(
                    "permissions",
                    "may not watch access requests",
                    role_fix("resources [access_request], verbs [list, read]"),
                );
            }
            if has("access_monitoring_rule") {
                r.pass("permissions", "may watch access monitoring rules");
            } else {
                r.warn(
                    "permissions",
                    "may not read access monitoring rules: rule routing is off",
                    role_fix("resources [access_monitoring_rule], verbs [list, read]"),
                );
            }
        }
        Ok(Err(TeleportError::PermissionDenied(m)) | Err(TeleportError::BadParameter(m))) => {
            r.fail(
                "permissions",
                format!("may not watch access requests: {m}"),
                role_fix("resources [access_request], verbs [list, read]"),
            );
        }
        Ok(Err(e)) => r.fail(
            "permissions",
            format!("the watch failed: {e}"),
            "check the Teleport logs",
        ),
        Err(_) => r.fail(
            "permissions",
            "no INIT event from the watch",
            "check the Teleport Auth Service health",
        ),
    }
    match client
        .list_access_requests(&RequestFilter {
            id: Some(probe_id()),
            ..Default::default()
        })
        .await
    {
        Ok(_) => r.pass("permissions", "may list and read access requests"),
        Err(e) => r.fail(
            "permissions",
            format!("may not list access requests: {e}"),
            role_fix("resources [access_request], verbs [list, read]"),
        ),
    }
    let probe = std::collections::BTreeMap::from([("check".to_string(), "probe".to_string())]);
    match client
        .update_plugin_data(PLUGIN_NAME, &probe_id(), probe, Default::default())
        .await
    {
        Ok(()) | Err(TeleportError::NotFound(_)) => r.pass("permissions", "may update plugin data"),
        Err(e) => r.fail(
            "permissions",
            format!("may not update plugin data: {e}"),
            role_fix("resources [access_plugin_data], verbs [update]"),
        ),
    }
}

async fn watch_kinds(client: &TeleportClient) -> Result<Option<Vec<String>>, TeleportError> {
    let mut stream = client.watch(WatchRequest::plugin()).await?;
    match stream.next().await {
        Some(Ok(WatchEvent::Init { confirmed_kinds })) => Ok(confirmed_kinds),
        Some(Ok(other)) => Err(TeleportError::ConnectionProblem(format!(
            "first event was {other:?}, not INIT"
        ))),
        Some(Err(e)) => Err(e),
        None => Err(TeleportError::ConnectionProblem(
            "the watch ended before INIT".into(),
        )),
    }
}

/// A request id that cannot exist: probes get NotFound when allowed, PermissionDenied when not.
fn probe_id() -> String {
    format!(
        "00000000-0000-4000-8000-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn mattermost_checks(cfg: &Config, r: &mut Report) {
    let client =
        match MattermostClient::new(MmOptions::from_config(&cfg.mattermost), &Metrics::new()) {
            Ok(c) => c,
            Err(e) => {
                r.fail("mattermost", e.to_string(), "fix `mattermost.url`");
                return;
            }
        };
    let bot = match tokio::time::timeout(STEP_TIMEOUT, client.me()).await {
        Ok(Ok(bot)) => bot,
        Ok(Err(e @ MattermostError::Unauthorized { .. })) => {
            r.fail(
                "mattermost",
                format!("Mattermost at {} rejected the token", cfg.mattermost.url),
                e.to_string(),
            );
            return;
        }
        Ok(Err(e)) => {
            r.fail(
                "mattermost",
                format!("Mattermost not usable at {}: {e}", cfg.mattermost.url),
                "check `mattermost.url` and that this host can reach it",
            );
            return;
        }
        Err(_) => {
            r.fail(
                "mattermost",
                format!(
                    "Mattermost at {} did not answer within {}s",
                    cfg.mattermost.url,
                    STEP_TIMEOUT.as_secs()
                ),
                "check `mattermost.url`",
            );
            return;
        }
    };
    r.pass(
        "mattermost",
        format!(
            "Mattermost reachable at {}, token valid, bot @{}",
            cfg.mattermost.url, bot.username
        ),
    );
    let mut seen = std::collections::BTreeSet::new();
    for recipient in cfg.role_to_recipients.values().flatten() {
        if seen.insert(recipient.clone()) {
            recipient_check(&client, &bot.id, &bot.username, recipient, r).await;
        }
    }
}

async fn recipient_check(
    client: &MattermostClient,
    bot_id: &str,
    bot: &str,
    recipient: &Recipient,
    r: &mut Report,
) {
    let result = match recipient {
        Recipient::Channel { team, channel } => match client.channel_by_name(team, channel).await {
            Ok(ch) => match client.is_channel_member(&ch.id, bot_id).await {
                Ok(true) => Ok(format!(
                    "recipient {recipient}: channel exists and @{bot} is a member"
                )),
                Ok(false) => Err((
                    format!("recipient {recipient}: @{bot} is not a member of the channel"),
                    format!("run `/invite @{bot}` in ~{channel}"),
                )),
                Err(e) => Err((
                    format!("recipient {recipient}: {e}"),
                    "check the bot's access to the channel".into(),
                )),
            },
            Err(e) => Err((
                format!("recipient {recipient}: {e}"),
                "fix the team/channel name (as in the channel's URL) or add the bot to the team"
                    .into(),
            )),
        },
        Recipient::Email(email) => client
            .user_by_email(email)
            .await
            .map(|u| format!("recipient {recipient}: user @{}", u.username))
            .map_err(|e| {
                (
                    format!("recipient {recipient}: {e}"),
                    "fix the e-mail, or use @username if e-mails are hidden".into(),
                )
            }),
        Recipient::Username(name) => client
            .user_by_username(name)
            .await
            .map(|u| format!("recipient {recipient}: user {}", u.email))
            .map_err(|e| {
                (
                    format!("recipient {recipient}: {e}"),
                    "fix the username".into(),
                )
            }),
    };
    match result {
        Ok(d) => r.pass("recipients", d),
        Err((d, fix)) => r.fail("recipients", d, fix),
    }
}

async fn review_checks(
    cfg: &Config,
    teleport: Option<&(TeleportClient, PingInfo)>,
    r: &mut Report,
) {
    let Some(review) = &cfg.review else {
        return;
    };
    r.pass(
        "review",
        format!("buttons and dialogs call back to {}", review.public_addr),
    );
    if review.command_tokens.is_empty() {
        r.warn(
            "review",
            "no `review.command_token`: the /teleport slash command is refused",
            "create the slash command in Mattermost and copy its token",
        );
    }
    let Some((client, ping)) = teleport else {
        return;
    };
    if !ping.supports_on_behalf_reviews() {
        r.fail("review", format!("Teleport {} cannot take reviews on behalf of users (needs 18.11+): posts will carry links only", ping.server_version), "upgrade Teleport, or set `review.enabled = false`");
        return;
    }
    match client.list_users().await {
        Ok(users) => {
            let linked = users
                .iter()
                .filter(|u| {
                    u.traits
                        .get(&review.user_id_trait)
                        .is_some_and(|v| !v.is_empty())
                })
                .count();
            r.pass(
                "review",
                format!(
                    "may list users: {linked} of {} carry the trait `{}`",
                    users.len(),
                    review.user_id_trait
                ),
            );
            if linked == 0 {
                r.warn("review", format!("no Teleport user carries the trait `{}`: nobody can review from Mattermost yet", review.user_id_trait), "set each reviewer's Mattermost user id in that trait (setup guide, step 1)");
            }
        }
        Err(e) => r.fail(
            "review",
            format!("may not list users (needed to find the reviewer by trait): {e}"),
            "add `resources [user], verbs [list, read]` to the plugin's role",
        ),
    }
    // On-behalf probe: authorization comes before the request lookup.
    let review = NewReview {
        author: "teleport-mattermost-check-probe".into(),
        proposed_state: crate::access::RequestState::Approved,
        reason: String::new(),
        on_behalf: true,
    };
    match client.submit_review(&probe_id(), &review).await {
        Err(TeleportError::PermissionDenied(m)) if m.contains("on behalf") => r.fail(
            "review",
            format!("may not submit reviews for users: {m}"),
            "add `review_requests: {submit_for_users: [\"*\"]}` to the plugin's role (or use the preset role access-plugin-with-review)",
        ),
        _ => r.pass("review", format!("Teleport {} accepts reviews submitted for users", ping.server_version)),
    }
}
