//! The reminder's text: which list, when its review is due (days left or overdue), members
//! when known, and where to review it (the web UI's access list page, or `tctl`).

use time::OffsetDateTime;
use url::Url;

use crate::access::AccessList;
use crate::mattermost::render::escape::{code_literal, inline, link_url};

/// Longest title or name shown.
const NAME_LIMIT: usize = 200;

/// The page of a list in the Teleport web UI (`/web/accesslists/<name>`), where owners
/// review it; `None` without a known proxy address.
pub fn review_link(proxy_base: Option<&Url>, list: &str) -> Option<Url> {
    let mut url = proxy_base?.clone();
    url.set_path("/web/accesslists/");
    url.path_segments_mut().ok()?.pop_if_empty().push(list);
    Some(url)
}

pub fn reminder(list: &AccessList, now: OffsetDateTime, link: Option<&Url>) -> String {
    let name = inline(&list.name, NAME_LIMIT);
    let heading = if list.title.trim().is_empty() {
        format!("**{name}**")
    } else {
        format!("**{}** ({name})", inline(&list.title, NAME_LIMIT))
    };
    let mut lines = vec![format!(
        ":clipboard: Access list review reminder: {heading} needs its periodic review."
    )];
    if let Some(due) = list.next_audit_date {
        lines.push(format!("**Due:** {} ({})", due.date(), remaining(due, now)));
    }
    if let Some(n) = list.member_count {
        lines.push(format!("**Members:** {n}"));
    }
    if let Some(link) = link {
        lines.push(format!("**Review it:** [{0}]({0})", link_url(link)));
    }
    lines.push(format!(
        "**Or from a terminal:** `tctl acl reviews create {}`",
        code_literal(&list.name)
    ));
    lines.join("\n")
}

/// "in 3 days", "due today", "overdue by 2 days", counted in whole calendar days (UTC).
fn remaining(due: OffsetDateTime, now: OffsetDateTime) -> String {
    let days = (due.date() - now.date()).whole_days();
    let plural = |n: i64| if n == 1 { "day" } else { "days" };
    match days {
        0 => "due today".into(),
        d if d > 0 => format!("in {d} {}", plural(d)),
        d => format!("overdue by {} {}", -d, plural(-d)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_reminder_names_the_list_the_date_and_both_ways_to_review() {
        let list = AccessList {
            name: "4f1c-list".into(),
            title: "Prod *DB* admins".into(),
            owners: vec!["alice@example.com".into()],
            next_audit_date: Some(datetime!(2026-12-09 00:00 UTC)),
            notify_before: Duration::from_secs(14 * 24 * 3600),
            member_count: Some(12),
        };
        let base = Url::parse("https://teleport.example.com").unwrap();
        let link = review_link(Some(&base), &list.name).unwrap();
        assert_eq!(
            link.as_str(),
            "https://teleport.example.com/web/accesslists/4f1c-list"
        );
        let text = reminder(&list, datetime!(2026-12-02 06:00 UTC), Some(&link));
        assert!(text.contains("Prod \\*DB\\* admins"), "{text}");
        assert!(text.contains("**Due:** 2026-12-09 (in 7 days)"), "{text}");
        assert!(text.contains("**Members:** 12"), "{text}");
        assert!(text.contains("/web/accesslists/4f1c-list"), "{text}");
        assert!(
            text.contains("`tctl acl reviews create 4f1c-list`"),
            "{text}"
        );
    }

    #[test]
    fn days_left_today_and_overdue() {
        let due = datetime!(2026-12-09 00:00 UTC);
        assert_eq!(remaining(due, datetime!(2026-12-08 23:00 UTC)), "in 1 day");
        assert_eq!(remaining(due, datetime!(2026-12-09 18:00 UTC)), "due today");
        assert_eq!(
            remaining(due, datetime!(2026-12-12 01:00 UTC)),
            "overdue by 3 days"
        );
    }
}
