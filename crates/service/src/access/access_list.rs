//! An access list as the review reminders see it: who owns it and when its next review is
//! due. Mapped from `teleport.accesslist.v1.AccessList` in `teleport::client`.

use std::time::Duration;

use time::OffsetDateTime;

/// The resource kind of access lists (plugin data, RBAC rules).
pub const KIND_ACCESS_LIST: &str = "access_list";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    /// The list's resource name (a UUID for lists made in the web UI): its id everywhere.
    pub name: String,
    /// The human title; may be empty.
    pub title: String,
    /// Owners that are users (Teleport user names), in the list's order; owners that are
    /// nested access lists are left out, as nobody can be messaged for them.
    pub owners: Vec<String>,
    /// When the next review is due; `None` when the list has no audit schedule.
    pub next_audit_date: Option<OffsetDateTime>,
    /// How long before the due date reminders start (`notifications.start`).
    pub notify_before: Duration,
    /// Members, when Teleport reported the count with the list.
    pub member_count: Option<u32>,
}
