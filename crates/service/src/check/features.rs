//! The Mattermost side of `check` and the features built on both systems: the token and
//! bot, every configured recipient, in-chat review prerequisites, access list reminders.

use crate::access::KIND_ACCESS_LIST;
use crate::access_lists::{self, Listing, ReminderMetrics, Reminders, Stop};
use crate::config::Config;
use crate::mattermost::{ClientOptions as MmOptions, MattermostClient, MattermostError};
use crate::metrics::Metrics;
use crate::route::{PLUGIN_NAME, Recipient};
use crate::teleport::client::{NewReview, PingInfo};
use crate::teleport::{TeleportClient, TeleportError};

use super::{Report, STEP_TIMEOUT, probe_id};

pub(super) async fn mattermost_checks(cfg: &Config, r: &mut Report) {
    let client =
        match MattermostClient::new(MmOptions::from_config(&cfg.mattermost), &Metrics::new()) {
            Ok(c) => c,
            Err(e) => {
                r.fail("mattermost", e.to_string(), "correct `mattermost.url`");
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
                "use the team and channel names as in the channel's URL, or add the bot to the team"
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
                    "correct the e-mail address, or use @username if e-mails are hidden".into(),
                )
            }),
        Recipient::Username(name) => client
            .user_by_username(name)
            .await
            .map(|u| format!("recipient {recipient}: user {}", u.email))
            .map_err(|e| {
                (
                    format!("recipient {recipient}: {e}"),
                    "correct the username (as shown in the user's profile)".into(),
                )
            }),
    };
    match result {
        Ok(d) => r.pass("recipients", d),
        Err((d, fix)) => r.fail("recipients", d, fix),
    }
}

pub(super) async fn review_checks(
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

/// Access list reminders: on, off and why, the owners they cannot reach, and the right to
/// write their plugin data (probed on a list that cannot exist: nothing is written).
pub(super) async fn access_list_checks(
    cfg: &Config,
    teleport: Option<&(TeleportClient, PingInfo)>,
    r: &mut Report,
) {
    const CHECK: &str = "access lists";
    if cfg.access_lists.enabled == Some(false) {
        r.pass(
            CHECK,
            "review reminders are off (`access_lists.enabled = false`)",
        );
        return;
    }
    let Some((client, ping)) = teleport else {
        return;
    };
    let Ok(mattermost) =
        MattermostClient::new(MmOptions::from_config(&cfg.mattermost), &Metrics::new())
    else {
        return;
    };
    let reminders = Reminders::new(access_lists::Parts {
        teleport: client.clone(),
        mattermost,
        config: cfg.access_lists.clone(),
        proxy_base: None,
        user_id_trait: cfg
            .review
            .as_ref()
            .map_or(crate::config::DEFAULT_USER_ID_TRAIT, |r| &r.user_id_trait)
            .to_string(),
        clock: Default::default(),
        metrics: ReminderMetrics::new(&Metrics::new()),
    });
    let list_fix = "add `resources [access_list], verbs [list, read]` to the plugin's role";
    match reminders.survey().await {
        Err(Listing::Stop(Stop::Unsupported)) => r.pass(
            CHECK,
            format!(
                "Teleport {} has no access list API: review reminders are off",
                ping.server_version
            ),
        ),
        Err(Listing::Stop(Stop::NotAllowed(m))) => r.warn(
            CHECK,
            format!("review reminders are off: the role may not list access lists ({m})"),
            list_fix,
        ),
        Err(Listing::Failed(e)) => {
            r.fail(CHECK, format!("listing access lists failed: {e}"), list_fix)
        }
        Ok(s) => {
            r.pass(
                CHECK,
                format!(
                    "review reminders are on: {} lists, {} owners reachable in Mattermost",
                    s.lists, s.reachable
                ),
            );
            for (list, owner) in &s.unreachable {
                r.warn(
                    CHECK,
                    format!("owner {owner:?} of access list {list:?} cannot be reached in Mattermost"),
                    "give the owner a Mattermost account with that e-mail, or set their Teleport trait to their Mattermost user id",
                );
            }
            let probe =
                std::collections::BTreeMap::from([("check".to_string(), "probe".to_string())]);
            match client
                .update_plugin_data_of(
                    KIND_ACCESS_LIST,
                    PLUGIN_NAME,
                    &probe_id(),
                    probe,
                    Default::default(),
                )
                .await
            {
                Ok(()) | Err(TeleportError::NotFound(_)) => {
                    r.pass(CHECK, "may update plugin data on access lists")
                }
                Err(e) => r.fail(
                    CHECK,
                    format!("may not update plugin data on access lists: {e}"),
                    "add `resources [access_plugin_data], verbs [update]` to the plugin's role",
                ),
            }
        }
    }
}
