//! When owners are reminded (upstream's rule, `integrations/access/accesslist/app.go`): the
//! reminders open at `next_audit_date − notifications.start`; from then on time is cut into
//! weekly windows, and each owner is reminded at most once per window.

use std::time::Duration;

use time::OffsetDateTime;

use crate::access::AccessList;

pub const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// The start of the weekly window `now` falls in; `None` before reminders open, or when the
/// list has no review date.
pub fn window_start(list: &AccessList, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let opens = list.next_audit_date? - list.notify_before;
    if now < opens {
        return None;
    }
    let week = time::Duration::try_from(WEEK).ok()?;
    let weeks = ((now - opens).whole_seconds() / week.whole_seconds()) as i32;
    Some(opens + week * weeks)
}

/// Whether someone last reminded at `last` (`None`: never) is due in the window starting at
/// `start`: only when the window began after that reminder.
pub fn is_due(start: OffsetDateTime, last: Option<OffsetDateTime>) -> bool {
    last.is_none_or(|last| start > last)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn list() -> AccessList {
        AccessList {
            name: "l".into(),
            next_audit_date: Some(datetime!(2026-12-31 00:00 UTC)),
            notify_before: Duration::from_secs(14 * 24 * 3600),
            ..Default::default()
        }
    }

    #[test]
    fn windows_open_before_the_due_date_and_repeat_weekly() {
        let l = list();
        assert_eq!(window_start(&l, datetime!(2026-12-16 23:59 UTC)), None);
        let opens = datetime!(2026-12-17 00:00 UTC);
        assert_eq!(window_start(&l, opens), Some(opens));
        assert_eq!(
            window_start(&l, datetime!(2026-12-23 23:59 UTC)),
            Some(opens)
        );
        assert_eq!(
            window_start(&l, datetime!(2026-12-24 00:00 UTC)),
            Some(datetime!(2026-12-24 00:00 UTC))
        );
        // Overdue lists keep their weekly rhythm.
        assert_eq!(
            window_start(&l, datetime!(2027-01-08 12:00 UTC)),
            Some(datetime!(2027-01-07 00:00 UTC))
        );
        let none = AccessList::default();
        assert_eq!(window_start(&none, opens), None);
    }

    #[test]
    fn one_reminder_per_window() {
        let start = datetime!(2026-12-17 00:00 UTC);
        assert!(is_due(start, None));
        assert!(is_due(start, Some(datetime!(0001-01-01 00:00 UTC))));
        assert!(is_due(start, Some(datetime!(2026-12-16 23:00 UTC))));
        assert!(!is_due(start, Some(start)));
        assert!(!is_due(start, Some(datetime!(2026-12-18 00:00 UTC))));
    }
}
