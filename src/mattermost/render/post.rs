//! The root post of an access request, edited in place as the request changes state.

use serde_json::{Value, json};

use super::escape::{REASON_LIMIT, code_literal, inline, link_url, markdown_escape};
use super::{
    ActionButton, MAX_POST_CHARS, RenderedPost, RequestView, ReviewProgress, Status, rfc822,
};
use crate::mattermost::model::{Action, Attachment, Integration};

/// Longest escaped user name, cluster, id or title.
const NAME_CHARS: usize = 200;
/// Longest escaped role list.
const ROLES_CHARS: usize = 500;
/// Longest escaped resource list.
const RESOURCES_CHARS: usize = 700;

/// Renders the root post: upstream's lines in upstream's order (the pending banner or an empty
/// line, user, roles, request id, reason, status, resolution reason, link or `tsh` commands),
/// with resources, cluster, duration, review progress and access list inserted where they
/// belong. Always at most [`MAX_POST_CHARS`] characters.
pub fn root_post(view: &RequestView) -> RenderedPost {
    let mut message = build_message(view, true);
    if message.chars().count() > MAX_POST_CHARS {
        message = build_message(view, false);
    }
    RenderedPost {
        message,
        props: props(view),
    }
}

fn build_message(view: &RequestView, with_resources: bool) -> String {
    let mut lines: Vec<String> = Vec::with_capacity(16);
    lines.push(match view.status {
        Status::Pending => "*You have new pending request to review!*".into(),
        _ => String::new(),
    });
    lines.push(format!("**User**: {}", inline(&view.user, NAME_CHARS)));
    lines.push(format!("**Roles**: {}", join(&view.roles, ROLES_CHARS)));
    if !view.resources.is_empty() {
        let list = if with_resources {
            join(&view.resources, RESOURCES_CHARS)
        } else {
            format!("{} resources (see Teleport)", view.resources.len())
        };
        lines.push(format!("**Resources**: {list}"));
    }
    if let Some(cluster) = view.cluster.as_deref().filter(|c| !c.trim().is_empty()) {
        lines.push(format!("**Cluster**: {}", inline(cluster, NAME_CHARS)));
    }
    lines.push(format!("**Request ID**: {}", inline(&view.id, NAME_CHARS)));
    lines.push(match non_blank(&view.request_reason) {
        Some(r) => format!("**Reason**: {}", markdown_escape(r, REASON_LIMIT)),
        None => String::new(),
    });
    if let Some(end) = view.max_duration.or(view.access_expires) {
        let span = end - view.created;
        lines.push(if span.is_positive() {
            format!(
                "**Requested duration**: {} (until {})",
                human(span),
                rfc822(end)
            )
        } else {
            format!("**Requested duration**: until {}", rfc822(end))
        });
    }
    lines.push(format!("**Status**: {}", view.status.text()));
    if let Some(p) = view.reviews.filter(|p| p.approvals > 0 || p.denials > 0) {
        lines.push(format!("**Reviews**: {}", progress(p)));
    }
    if view.status == Status::Promoted
        && let Some(title) = view.promoted_list_title.as_deref()
    {
        lines.push(format!("**Access list**: {}", inline(title, NAME_CHARS)));
    }
    lines.push(match non_blank(&view.resolve_reason) {
        Some(r) => format!(
            "**Resolution reason**: {}",
            markdown_escape(r, REASON_LIMIT)
        ),
        None => String::new(),
    });
    match &view.link {
        Some(url) => {
            let url = link_url(url);
            lines.push(format!("**Link**: [{url}]({url})"));
        }
        None if view.status == Status::Pending => {
            let id = code_literal(&view.id);
            lines.push(format!("**Approve**: `tsh request review --approve {id}`"));
            lines.push(format!("**Deny**: `tsh request review --deny {id}`"));
        }
        None => {}
    }
    lines.join("\n")
}

/// Buttons as a message attachment; `{}` without buttons so an update removes old ones.
fn props(view: &RequestView) -> Value {
    let Some(buttons) = view.buttons.as_ref().filter(|b| !b.is_empty()) else {
        return json!({});
    };
    let attachment = Attachment {
        // Shown in notifications; no user-supplied text, so nothing to escape.
        fallback: format!(
            "Teleport access request {}: {}",
            code_literal(&view.id),
            view.status.label()
        ),
        color: view.status.color().into(),
        text: String::new(),
        actions: buttons.iter().map(action).collect(),
        ..Attachment::default()
    };
    json!({ "attachments": [attachment] })
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

/// `8h`, `1h30m`, `2d4h`, `45m` (seconds dropped, at least `1m`).
fn human(d: time::Duration) -> String {
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
