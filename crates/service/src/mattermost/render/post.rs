//! The root post of an access request, edited in place as the request changes state.

use serde::Serialize;

use super::escape::{REASON_LIMIT, code_literal, inline, link_url, markdown_escape};
use super::{
    ActionButton, MAX_POST_CHARS, RenderedPost, RequestView, ReviewProgress, Status, rfc822,
};
use crate::mattermost::model::{Action, Attachment, Integration, Props};

/// Longest escaped user name, cluster, id or title.
const NAME_CHARS: usize = 200;
/// Longest escaped role list.
const ROLES_CHARS: usize = 500;
/// Longest escaped resource list.
const RESOURCES_CHARS: usize = 700;

/// Renders the root post: upstream's lines in upstream's order (the pending banner, user, roles, request id, reason, status, resolution reason, link or `tsh` commands),
/// with resources, cluster, duration, review progress and access list inserted where they
/// belong. Always at most [`MAX_POST_CHARS`] characters.
pub fn root_post(view: &RequestView) -> RenderedPost {
    RenderedPost {
        message: root_message(view),
        props: root_props(view),
    }
}

/// The text of the root post alone; it does not depend on the buttons.
pub fn root_message(view: &RequestView) -> String {
    let message = build_message(view, true);
    if message.chars().count() > MAX_POST_CHARS {
        return build_message(view, false);
    }
    message
}

fn build_message(view: &RequestView, with_resources: bool) -> String {
    // Written into one buffer: this runs for every post, so no String per line.
    let mut lines = Lines(String::with_capacity(1024), false);
    // Upstream leaves an empty first line once the request is resolved; we drop the line.
    if view.status == Status::Pending {
        lines.push(format_args!("*You have a new pending request to review!*"));
    }
    lines.push(format_args!("**User**: {}", inline(&view.user, NAME_CHARS)));
    lines.push(format_args!(
        "**Roles**: {}",
        join(&view.roles, ROLES_CHARS)
    ));
    if !view.resources.is_empty() {
        if with_resources {
            lines.push(format_args!(
                "**Resources**: {}",
                join(&view.resources, RESOURCES_CHARS)
            ));
        } else {
            lines.push(format_args!(
                "**Resources**: {} resources (see Teleport)",
                view.resources.len()
            ));
        }
    }
    if let Some(cluster) = view.cluster.as_deref().filter(|c| !c.trim().is_empty()) {
        lines.push(format_args!("**Cluster**: {}", inline(cluster, NAME_CHARS)));
    }
    lines.push(format_args!(
        "**Request ID**: {}",
        inline(&view.id, NAME_CHARS)
    ));
    match non_blank(&view.request_reason) {
        Some(r) => lines.push(format_args!(
            "**Reason**: {}",
            markdown_escape(r, REASON_LIMIT)
        )),
        None => lines.push(format_args!("")),
    }
    if let Some(end) = view.max_duration.or(view.access_expires) {
        let span = end - view.created;
        if span.is_positive() {
            lines.push(format_args!(
                "**Requested duration**: {} (until {})",
                human(span),
                rfc822(end)
            ));
        } else {
            lines.push(format_args!(
                "**Requested duration**: until {}",
                rfc822(end)
            ));
        }
    }
    match (view.status, view.waiting, view.escalated) {
        (Status::Pending, waiting, escalated) if waiting.is_some() || escalated => {
            let waiting = waiting.map(|w| format!(" · ⏰ waiting {}", human(w)));
            lines.push(format_args!(
                "**Status**: {}{}{}",
                view.status.text(),
                waiting.unwrap_or_default(),
                if escalated { " · 🔺 escalated" } else { "" }
            ));
        }
        _ => lines.push(format_args!("**Status**: {}", view.status.text())),
    }
    if let Some(p) = view.reviews.filter(|p| p.approvals > 0 || p.denials > 0) {
        lines.push(format_args!("**Reviews**: {}", progress(p)));
    }
    if view.status == Status::Promoted
        && let Some(title) = view.promoted_list_title.as_deref()
    {
        lines.push(format_args!(
            "**Access list**: {}",
            inline(title, NAME_CHARS)
        ));
    }
    match non_blank(&view.resolve_reason) {
        Some(r) => lines.push(format_args!(
            "**Resolution reason**: {}",
            markdown_escape(r, REASON_LIMIT)
        )),
        None => lines.push(format_args!("")),
    }
    match &view.link {
        Some(url) => {
            let url = link_url(url);
            lines.push(format_args!("**Link**: [{url}]({url})"));
        }
        None if view.status == Status::Pending => {
            let id = code_literal(&view.id);
            lines.push(format_args!(
                "**Approve**: `tsh request review --approve {id}`"
            ));
            lines.push(format_args!("**Deny**: `tsh request review --deny {id}`"));
        }
        None => {}
    }
    lines.0
}

/// Lines joined by "\n" as they are written (what `Vec<String>::join("\n")` gave); the flag
/// says whether a line was written yet.
struct Lines(String, bool);

impl Lines {
    fn push(&mut self, line: std::fmt::Arguments) {
        use std::fmt::Write;
        if self.1 {
            self.0.push('\n');
        }
        self.1 = true;
        let _ = self.0.write_fmt(line);
    }
}

/// The props of a root post: one message attachment whose colour shows the state, with the
/// buttons while there are any (an update without them removes the old ones). Public on its
/// own for callers that render one message for several channels (the message does not depend
/// on the buttons).
pub fn root_props(view: &RequestView) -> Props {
    let buttons = view.buttons.as_deref().unwrap_or_default();
    let attachment = Attachment {
        // Shown in notifications; no user-supplied text, so nothing to escape.
        fallback: format!(
            "Teleport access request {}: {}",
            code_literal(&view.id),
            view.status.label()
        ),
        color: view.status.color().into(),
        // Fixed words only; an attachment without text or buttons would be an empty stripe.
        text: view.status.text(),
        actions: buttons.iter().map(action).collect(),
        ..Attachment::default()
    };
    #[derive(Serialize)]
    struct Attachments<'a> {
        attachments: [&'a Attachment; 1],
    }
    // Strings and already-serialized contexts only: this cannot fail.
    Props::of(&Attachments {
        attachments: [&attachment],
    })
    .unwrap_or_default()
}

fn action(b: &ActionButton) -> Action {
    Action {
        id: b.id.chars().filter(char::is_ascii_alphanumeric).collect(),
        kind: "button".into(),
        name: b.name.clone(),
        style: b.style.as_str().into(),
        integration: Integration {
            url: b.url.to_string(),
            context: b.context.clone(),
        },
    }
}

/// `a, b, c`, escaped, cut to `max` characters with "and N more".
fn join(items: &[String], max: usize) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    for (i, item) in items.iter().enumerate() {
        let piece = inline(item, NAME_CHARS);
        let len = piece.chars().count() + if i == 0 { 0 } else { 2 };
        if used + len > max {
            out.push_str(&format!(" and {} more", items.len() - i));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&piece);
        used += len;
    }
    out
}

fn progress(p: ReviewProgress) -> String {
    let part = |n: u32, of: Option<u32>, what: &str| match of {
        Some(of) => format!("{what} {n}/{of}"),
        None => format!("{what} {n}"),
    };
    format!(
        "{}, {}",
        part(p.approvals, p.approvals_needed, "approvals"),
        part(p.denials, p.denials_needed, "denials")
    )
}

/// `8h`, `1h30m`, `2d4h`, `45m` (seconds dropped, at least `1m`); under a minute, in
/// seconds (`5s`: compressed reminder schedules in trials).
pub fn human(d: time::Duration) -> String {
    if d < time::Duration::MINUTE {
        return format!("{}s", d.whole_seconds().max(0));
    }
    let minutes = (d.whole_seconds().max(60) / 60) as u64;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let mut out = String::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (mins, "m")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}
