//! Thread replies for reviews (upstream's wording) and the direct message to the requester.

use super::escape::{REASON_LIMIT, code_literal, inline, link_url, markdown_escape};
use super::{RequestView, ReviewView, Status, rfc822};

/// `<author> reviewed the request at <RFC822 time>.` / `Review: ✅ approved (1 of 2).` /
/// `Reason: ```…```.` (the last line only when there is a reason). Upstream wrote
/// `Resolution: ✅ APPROVED.` for every review, which read as if one approval of two had
/// resolved the request; the root post is where the resolution shows.
pub fn review_reply(review: &ReviewView) -> String {
    let verb = match review.proposed {
        Status::Denied => "denied",
        _ => "approved",
    };
    let progress = match review.needed {
        Some(n) => format!("{} of {n}", review.count),
        None => format!("{} so far", review.count),
    };
    let mut out = format!(
        "{} reviewed the request at {}.\nReview: {} {verb} ({progress}).",
        inline(&review.author, 200),
        rfc822(review.created),
        review.proposed.emoji().unwrap_or_default(),
    );
    if let Some(reason) = review.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        out.push_str(&format!(
            "\nReason: {}.",
            markdown_escape(reason, REASON_LIMIT)
        ));
    }
    out
}

/// The requester's direct message about their request: the outcome, the roles, the reason,
/// and for an approval the `tsh login --request-id=<id>` that puts the access to use.
pub fn requester_dm(view: &RequestView) -> String {
    let headline = match view.status {
        Status::Pending => "⏳ Your access request was sent to the reviewers.",
        Status::Approved => "✅ Your access request was approved.",
        Status::Denied => "❌ Your access request was denied.",
        Status::Expired => "⌛ Your access request expired before it was approved.",
        Status::Promoted => "Your access request was promoted to an access list.",
    };
    let roles: Vec<String> = view.roles.iter().map(|r| inline(r, 100)).collect();
    let mut lines = vec![
        headline.to_string(),
        format!("**Request ID**: {}", inline(&view.id, 200)),
        format!("**Roles**: {}", roles.join(", ")),
    ];
    if view.status == Status::Promoted
        && let Some(title) = view.promoted_list_title.as_deref()
    {
        lines.push(format!("**Access list**: {}", inline(title, 200)));
    }
    if let Some(reason) = view
        .resolve_reason
        .as_deref()
        .filter(|r| !r.trim().is_empty())
    {
        lines.push(format!(
            "**Resolution reason**: {}",
            markdown_escape(reason, REASON_LIMIT)
        ));
    }
    match view.status {
        Status::Approved => lines.push(format!(
            "Use it with: `tsh login --request-id={}`",
            code_literal(&view.id)
        )),
        Status::Pending => {
            if let Some(url) = &view.link {
                let url = link_url(url);
                lines.push(format!("**Link**: [{url}]({url})"));
            }
        }
        _ => {}
    }
    // Role lists can be long; keep the DM within the post limit whatever happens.
    let text = lines.join("\n");
    if text.chars().count() > super::MAX_POST_CHARS {
        lines[2] = format!("**Roles**: {} roles", view.roles.len());
        return lines.join("\n");
    }
    text
}
