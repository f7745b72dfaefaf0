//! The `/teleport` slash command (`POST /mattermost/command`): the token is checked in
//! constant time before anything else is read, then `help`, `pending`, `show`, `approve`,
//! `deny` and `explain` answer with a message only the caller sees.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::command::{Command, USAGE, id_matches};
use super::metrics::{ReviewMetrics, Source};
use super::outcome::{Outcome, code, progress};
use super::pipeline::{Attempt, Decision};
use super::service::LivePipeline;
use super::{CallbackError, unauthorized};
use crate::access::{AccessRequest, PluginData, RequestState};
use crate::mattermost::integration::{CommandRequest, CommandResponse};
use crate::mattermost::render::{REASON_LIMIT, markdown_escape};
use crate::route::{Env, PLUGIN_NAME, Routing};
use crate::signing::Action;
use crate::teleport::{RequestFilter, TeleportClient};

/// Requests listed by `pending` at most; the rest are counted.
const PENDING_SHOWN: usize = 20;
/// Candidates listed for an ambiguous id part.
const CANDIDATES_SHOWN: usize = 10;
/// A full request id (a UUID), looked up directly instead of by listing.
const FULL_ID_LEN: usize = 36;

/// True when `presented` equals one of `tokens`. Both sides are hashed first, so the
/// comparison takes the same time whatever the lengths, and every token is compared.
pub fn token_matches(tokens: &[SecretString], presented: &str) -> bool {
    if presented.is_empty() {
        return false;
    }
    let p = Sha256::digest(presented.as_bytes());
    let hit = tokens.iter().fold(Choice::from(0), |acc, t| {
        acc | Sha256::digest(t.expose_secret().as_bytes()).ct_eq(&p)
    });
    hit.into()
}

#[derive(Deserialize)]
struct TokenOnly {
    #[serde(default)]
    token: String,
}

fn reply(text: impl Into<String>) -> CommandResponse {
    CommandResponse {
        response_type: "ephemeral".into(),
        text: text.into(),
        ..Default::default()
    }
}

/// The `/teleport` command.
pub struct SlashCommand {
    pub(super) pipeline: Arc<LivePipeline>,
    /// Lists and reads requests for `pending`, `show`, `explain` and id prefixes.
    pub(super) teleport: TeleportClient,
    /// `review.command_token`.
    pub(super) tokens: Vec<SecretString>,
    /// `review.user_id_trait`, named by `help`.
    pub(super) user_id_trait: String,
    /// The bridge's routing (live rule cache), for `explain`.
    pub(super) routing: Arc<Routing>,
    /// `[reminders]`, for `explain`'s schedule.
    pub(super) reminders: Option<Arc<crate::remind::Reminders>>,
    pub(super) metrics: ReviewMetrics,
}

impl SlashCommand {
    /// Checks the command token from `Authorization: Token <t>` or, without that header, the
    /// form field `token`, against every configured token. Nothing else is parsed before.
    pub fn authorize(&self, authorization: Option<&str>, form: &[u8]) -> Result<(), CallbackError> {
        let presented = match authorization.and_then(|h| h.strip_prefix("Token ")) {
            Some(t) => t.trim().to_string(),
            None => serde_urlencoded::from_bytes::<TokenOnly>(form)
                .map(|t| t.token)
                .unwrap_or_default(),
        };
        if token_matches(&self.tokens, &presented) {
            Ok(())
        } else {
            Err(unauthorized(&self.metrics, "command", "bad_token"))
        }
    }

    /// Runs an authorized command.
    pub async fn run(&self, req: &CommandRequest) -> CommandResponse {
        let cmd = match Command::parse(&req.text) {
            Ok(c) => c,
            Err(usage) => return reply(usage.to_string()),
        };
        match cmd {
            Command::Help => reply(format!(
                "{USAGE}\nReviews are submitted as your Teleport user (the one whose trait {} holds your Mattermost user id); Teleport decides whether you may review.",
                code(&self.user_id_trait)
            )),
            Command::Pending => self.pending(&req.user_id).await,
            Command::Show(id) => self.show(&req.user_id, &id).await,
            Command::Explain(id) => self.explain(&req.user_id, &id).await,
            Command::Approve { id, reason } => {
                self.review_command(&req.user_id, &id, Action::Approve, &reason)
                    .await
            }
            Command::Deny { id, reason } => {
                self.review_command(&req.user_id, &id, Action::Deny, &reason)
                    .await
            }
        }
    }

    /// The request a full id or a unique part of one names (its short form, a prefix…), or
    /// the text to answer instead; an ambiguous part lists the candidates.
    async fn find(&self, part: &str) -> Result<AccessRequest, String> {
        let unavailable = |_| Outcome::Unavailable.text();
        if part.len() == FULL_ID_LEN {
            return self
                .teleport
                .get_access_request(part)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    format!(
                        "There is no access request {} (it may have expired).",
                        code(part)
                    )
                });
        }
        let all = self
            .teleport
            .list_access_requests(&RequestFilter::default())
            .await
            .map_err(unavailable)?;
        let mut hits: Vec<AccessRequest> = all
            .into_iter()
            .filter(|r| id_matches(&r.id, part))
            .collect();
        match hits.len() {
            0 => Err(format!(
                "No access request id contains {}. `/teleport pending` lists the open ones.",
                code(part)
            )),
            1 => Ok(hits.remove(0)),
            n => {
                hits.sort_by(|a, b| a.id.cmp(&b.id));
                let list: Vec<String> = hits
                    .iter()
                    .take(CANDIDATES_SHOWN)
                    .map(|r| format!("- {} by {} ({})", code(&r.id), code(&r.user), r.state))
                    .collect();
                Err(format!(
                    "{} matches {n} requests; type more of the id (its last 8 characters tell requests apart):\n{}",
                    code(part),
                    list.join("\n")
                ))
            }
        }
    }

    /// `approve`/`deny`: the part names the request, then the pipeline decides.
    async fn review_command(
        &self,
        user_id: &str,
        part: &str,
        action: Action,
        reason: &str,
    ) -> CommandResponse {
        let request = match self.find(part).await {
            Ok(r) => r,
            Err(text) => return reply(text),
        };
        let attempt = Attempt {
            chat_user_id: user_id.to_string(),
            request_id: request.id,
            action,
            reason: reason.trim().to_string(),
            source: Source::Command,
        };
        match self.pipeline.decide(&attempt).await {
            Decision::Done(outcome) => reply(outcome.text()),
            Decision::NeedsReason { problem, .. } => reply(format!(
                "{problem} Write it after the id: {}",
                code(&format!(
                    "/teleport {} {} <reason>",
                    action.as_str(),
                    attempt.request_id
                ))
            )),
        }
    }

    async fn pending(&self, user_id: &str) -> CommandResponse {
        let author = match self.pipeline.identify(user_id).await {
            Ok(a) => a,
            Err(o) => return reply(o.text()),
        };
        let all = match self
            .teleport
            .list_access_requests(&RequestFilter::state(RequestState::Pending))
            .await
        {
            Ok(all) => all,
            Err(_) => return reply(Outcome::Unavailable.text()),
        };
        let mut open: Vec<AccessRequest> = all
            .into_iter()
            .filter(|r| r.user != author && !r.reviews.iter().any(|v| v.author == author))
            .collect();
        if open.is_empty() {
            return reply("No pending access request is waiting for your review.");
        }
        open.sort_by_key(|r| r.created);
        let mut lines = vec![format!(
            "**Pending access requests you have not reviewed** ({}). Teleport checks your review rights when you submit.",
            open.len()
        )];
        for r in open.iter().take(PENDING_SHOWN) {
            let mut line = format!(
                "- {} by {} for {}: {}",
                code(&r.id),
                code(&r.user),
                r.roles
                    .iter()
                    .map(|x| code(x))
                    .collect::<Vec<_>>()
                    .join(", "),
                progress(r)
            );
            if self
                .pipeline
                .policy()
                .in_teleport_only(&r.id, &r.roles, r.is_long_term(), Action::Approve)
                .is_some()
            {
                line.push_str(" (review in Teleport)");
            }
            lines.push(line);
        }
        if open.len() > PENDING_SHOWN {
            lines.push(format!("…and {} more.", open.len() - PENDING_SHOWN));
        }
        lines.push(
            "Review with `/teleport approve <id> [reason]` or `/teleport deny <id> [reason]`."
                .into(),
        );
        reply(lines.join("\n"))
    }

    async fn show(&self, user_id: &str, part: &str) -> CommandResponse {
        if let Err(o) = self.pipeline.identify(user_id).await {
            return reply(o.text());
        }
        let r = match self.find(part).await {
            Ok(r) => r,
            Err(text) => return reply(text),
        };
        let mut lines = vec![
            format!("**Access request** {}", code(&r.id)),
            format!("**User**: {}", code(&r.user)),
            format!(
                "**Roles**: {}",
                r.roles
                    .iter()
                    .map(|x| code(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ];
        if !r.resources.is_empty() {
            let res: Vec<String> = r.resources.iter().map(|x| code(&x.to_string())).collect();
            lines.push(format!("**Resources**: {}", res.join(", ")));
        }
        lines.push(format!(
            "**Reason**: {}",
            markdown_escape(&r.request_reason, REASON_LIMIT)
        ));
        lines.push(format!("**Status**: {}", r.state));
        lines.push(format!("**Reviews**: {}", progress(&r)));
        for v in &r.reviews {
            let verb = if v.proposed_state == RequestState::Denied {
                "denied"
            } else {
                "approved"
            };
            lines.push(format!(
                "- {} {verb}: {}",
                code(&v.author),
                markdown_escape(&v.reason, REASON_LIMIT)
            ));
        }
        if !r.state.is_resolved() {
            match self.pipeline.policy().in_teleport_only(
                &r.id,
                &r.roles,
                r.is_long_term(),
                Action::Approve,
            ) {
                Some(o) => lines.push(o.text()),
                None => lines.push(format!(
                    "Review with {} or {}.",
                    code(&format!("/teleport approve {} [reason]", r.id)),
                    code(&format!("/teleport deny {} [reason]", r.id))
                )),
            }
        }
        reply(lines.join("\n"))
    }

    async fn explain(&self, user_id: &str, part: &str) -> CommandResponse {
        if let Err(o) = self.pipeline.identify(user_id).await {
            return reply(o.text());
        }
        let r = match self.find(part).await {
            Ok(r) => r,
            Err(text) => return reply(text),
        };
        let routed = self.routing.recipients(&Env::from(&r));
        let mut lines = vec![format!(
            "**Who was notified about** {}, and why:",
            code(&r.id)
        )];
        if routed.is_empty() {
            lines.push("- nobody: no access monitoring rule, `role_to_recipients` entry or suggested reviewer matched.".into());
        }
        for x in &routed {
            let why: Vec<String> = x.reasons.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "- {}: {}",
                code(&x.recipient.to_string()),
                crate::mattermost::render::escape::inline(&why.join("; "), 500)
            ));
        }
        let data = match self.teleport.get_plugin_data(PLUGIN_NAME, &r.id).await {
            Ok(Some(raw)) => PluginData::decode(&raw).ok(),
            _ => None,
        };
        if let Some(d) = &data {
            lines.push(format!("Posts made for it: {}.", d.messages.len()));
        }
        match &self.reminders {
            Some(rem) => {
                let sent = data.map(|d| d.notices).unwrap_or_default();
                lines.extend(rem.explain(&r, &sent));
            }
            None => lines.push("**Reminders**: off (no `[reminders]` section).".into()),
        }
        reply(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|t| SecretString::from(t.to_string()))
            .collect()
    }

    #[test]
    fn any_configured_token_matches_and_nothing_else_does() {
        let t = tokens(&["first-token-value", "second-token"]);
        assert!(token_matches(&t, "first-token-value"));
        assert!(token_matches(&t, "second-token"));
        assert!(!token_matches(&t, "second-token "));
        assert!(!token_matches(&t, "first"));
        assert!(!token_matches(&t, ""));
        assert!(!token_matches(&[], "anything"));
        // An empty configured token never matches an empty presented one.
        assert!(!token_matches(&tokens(&[""]), ""));
    }
}
