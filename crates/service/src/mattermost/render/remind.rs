//! Reminder replies in the threads of a pending request, and the requester's notices before
//! their request expires or their access ends.

use super::escape::{code_literal, inline};
use super::post::human;
use super::{MAX_POST_CHARS, RequestView, rfc822};

/// Mattermost usernames are these characters only; anything else is not mentioned.
fn username(u: &str) -> Option<&str> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then_some(u)
}

/// `what`: the roles, or the resources of a resource request.
fn what(view: &RequestView) -> String {
    if view.resources.is_empty() {
        let roles: Vec<String> = view.roles.iter().map(|r| inline(r, 100)).collect();
        format!("roles {}", roles.join(", "))
    } else {
        let n = view.resources.len();
        let first = inline(&view.resources[0], 200);
        match n {
            1 => format!("resource {first}"),
            _ => format!("{n} resources ({first}, …)"),
        }
    }
}

fn within_limit(text: String) -> String {
    if text.chars().count() <= MAX_POST_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_POST_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `⏰ Reminder: <user> has been waiting 2h for roles editor (request <id>).`, then the
/// suggested reviewers `@mentioned` (their Mattermost usernames) and `@here` when asked.
pub fn reminder_reply(
    view: &RequestView,
    waited: time::Duration,
    mentions: &[String],
    here: bool,
) -> String {
    let mut out = format!(
        "⏰ **Reminder**: {} has been waiting {} for {} (request `{}`).",
        inline(&view.user, 200),
        human(waited),
        what(view),
        code_literal(&view.id),
    );
    let mut who: Vec<String> = mentions
        .iter()
        .filter_map(|m| username(m))
        .map(|m| format!("@{m}"))
        .collect();
    if here {
        who.push("@here".into());
    }
    if !who.is_empty() {
        out.push_str(&format!("\n{} please review.", who.join(" ")));
    }
    within_limit(out)
}

/// Which end a requester is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The pending request expires unreviewed.
    Request,
    /// Access that was granted ends.
    Access,
}

/// The requester's notice: what ends, when, and the `tsh request create` command that asks
/// again for the same roles (and resources).
pub fn expiry_notice(
    view: &RequestView,
    ending: Ending,
    at: time::OffsetDateTime,
    left: time::Duration,
) -> String {
    let headline = match ending {
        Ending::Request => format!(
            "⌛ Your access request `{}` expires in {} ({}) and nobody has reviewed it yet.",
            code_literal(&view.id),
            human(left),
            rfc822(at)
        ),
        Ending::Access => format!(
            "⌛ The access granted by request `{}` ends in {} ({}).",
            code_literal(&view.id),
            human(left),
            rfc822(at)
        ),
    };
    let mut command = String::from("tsh request create");
    if !view.roles.is_empty() {
        let roles: Vec<String> = view.roles.iter().map(|r| code_literal(r)).collect();
        command.push_str(&format!(" --roles {}", roles.join(",")));
    }
    for r in &view.resources {
        command.push_str(&format!(" --resource /{}", code_literal(r)));
    }
    within_limit(format!(
        "{headline}\n**Roles**: {}\nTo ask again: `{command}`",
        what(view)
    ))
}
