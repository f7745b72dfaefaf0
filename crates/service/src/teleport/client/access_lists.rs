//! Access lists (`teleport.accesslist.v1.AccessListService/ListAccessLists`), paged with
//! bounds like the other listings, mapped to [`AccessList`].

use std::time::Duration;

use super::TeleportClient;
use crate::access::AccessList;
use crate::teleport::TeleportError;
use crate::teleport::convert;
use crate::teleport::wire::teleport::accesslist::v1 as al;

/// Page size asked for; Teleport caps it at its own maximum.
const PAGE_SIZE: i32 = 200;
/// A bound on pages, so a server that keeps returning tokens cannot loop us forever.
const MAX_PAGES: usize = 1000;
/// `AccessListOwner.membership_kind` of an owner that is itself an access list.
const MEMBERSHIP_KIND_LIST: i32 = 2;

impl TeleportClient {
    /// One page of access lists and the next page's token (empty after the last page).
    /// `Unimplemented` when the cluster has no access list API.
    pub async fn list_access_lists_page(
        &self,
        page_size: i32,
        token: &str,
    ) -> Result<(Vec<AccessList>, String), TeleportError> {
        let mut c = self.access_lists.clone();
        let req = al::ListAccessListsRequest {
            page_size,
            next_token: token.into(),
        };
        let page = self
            .unary("ListAccessLists", c.list_access_lists(self.req(req)))
            .await?;
        Ok((
            page.access_lists
                .iter()
                .map(access_list_from_proto)
                .collect(),
            page.next_token,
        ))
    }

    /// Every access list, following pages. Needs `list`+`read` on `access_list`.
    pub async fn list_access_lists(&self) -> Result<Vec<AccessList>, TeleportError> {
        self.all_pages("ListAccessLists", MAX_PAGES, |token| async move {
            self.list_access_lists_page(PAGE_SIZE, &token).await
        })
        .await
    }
}

/// The parts of a list the reminders use; an unset duration or date reads as none.
pub fn access_list_from_proto(l: &al::AccessList) -> AccessList {
    let name = l
        .header
        .as_ref()
        .and_then(|h| h.metadata.as_ref())
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let spec = l.spec.clone().unwrap_or_default();
    let audit = spec.audit.unwrap_or_default();
    let notify_before = audit
        .notifications
        .and_then(|n| n.start)
        .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
        .unwrap_or_default();
    AccessList {
        name,
        title: spec.title,
        owners: spec
            .owners
            .into_iter()
            .filter(|o| o.membership_kind != MEMBERSHIP_KIND_LIST && !o.name.is_empty())
            .map(|o| o.name)
            .collect(),
        next_audit_date: convert::ts_from(audit.next_audit_date.as_ref()),
        notify_before,
        member_count: l.status.as_ref().and_then(|s| s.member_count),
    }
}
