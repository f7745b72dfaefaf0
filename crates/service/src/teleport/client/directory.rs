//! The cluster's directory: access monitoring rules (`AccessMonitoringRulesService`) and
//! users (`AuthService.GetUser`, `UsersService.ListUsers`), paged with bounds.

use super::TeleportClient;
use crate::access::{AccessMonitoringRule, KIND_ACCESS_REQUEST, User};
use crate::teleport::TeleportError;
use crate::teleport::convert;
use crate::teleport::wire::proto;
use crate::teleport::wire::teleport::accessmonitoringrules::v1 as amr;
use crate::teleport::wire::teleport::users::v1 as users;

/// Page size of the access-monitoring-rule listing (upstream's value).
const RULES_PAGE_SIZE: i64 = 1000;
/// A bound on rule pages, so a server that keeps returning tokens cannot loop us forever.
const RULES_MAX_PAGES: usize = 1000;
/// Page size of the user listing (the server caps it too).
const USERS_PAGE_SIZE: i32 = 500;
/// A bound on user pages (500 000 users), for the same reason.
const USERS_MAX_PAGES: usize = 1000;

impl TeleportClient {
    /// Every access monitoring rule for `plugin` (notification name) whose subjects include
    /// `access_request`, following pages of 1000.
    pub async fn list_access_monitoring_rules(
        &self,
        plugin: &str,
    ) -> Result<Vec<AccessMonitoringRule>, TeleportError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let started = tokio::time::Instant::now();
        for _ in 0..RULES_MAX_PAGES {
            let mut c = self.rules.clone();
            let req = amr::ListAccessMonitoringRulesWithFilterRequest {
                page_size: RULES_PAGE_SIZE,
                page_token: token.clone(),
                subjects: vec![KIND_ACCESS_REQUEST.into()],
                notification_name: plugin.into(),
                automatic_review_name: String::new(),
            };
            let page = self
                .unary(
                    "ListAccessMonitoringRulesWithFilter",
                    c.list_access_monitoring_rules_with_filter(self.req(req)),
                )
                .await?;
            out.extend(
                page.rules
                    .iter()
                    .map(convert::rule_from_proto)
                    .filter(|r| r.subjects.iter().any(|s| s == KIND_ACCESS_REQUEST)),
            );
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if page.next_page_token == token || started.elapsed() > self.opts.list_timeout {
                return Err(TeleportError::invalid_response(
                    "ListAccessMonitoringRulesWithFilter",
                    "the page token does not advance",
                ));
            }
            token = page.next_page_token;
        }
        Err(TeleportError::invalid_response(
            "ListAccessMonitoringRulesWithFilter",
            format!("more than {RULES_MAX_PAGES} pages"),
        ))
    }

    /// A user's roles and traits.
    pub async fn get_user(&self, name: &str) -> Result<User, TeleportError> {
        let mut c = self.auth.clone();
        let req = proto::GetUserRequest {
            name: name.into(),
            with_secrets: false,
        };
        let u = self.unary("GetUser", c.get_user(self.req(req))).await?;
        Ok(convert::user_from_proto(&u))
    }

    /// Every user with roles and traits (`teleport.users.v1.UsersService/ListUsers`, pages of
    /// 500), for binding Mattermost users to Teleport users. Needs `list`+`read` on `user`.
    pub async fn list_users(&self) -> Result<Vec<User>, TeleportError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let started = tokio::time::Instant::now();
        for _ in 0..USERS_MAX_PAGES {
            let mut c = self.users.clone();
            let req = users::ListUsersRequest {
                page_size: USERS_PAGE_SIZE,
                page_token: token.clone(),
            };
            let page = self.unary("ListUsers", c.list_users(self.req(req))).await?;
            out.extend(page.users.iter().map(convert::user_from_proto));
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if page.next_page_token == token {
                return Err(TeleportError::invalid_response(
                    "ListUsers",
                    "the page token does not advance",
                ));
            }
            if started.elapsed() > self.opts.list_timeout {
                return Err(TeleportError::timeout("ListUsers", self.opts.list_timeout));
            }
            token = page.next_page_token;
        }
        Err(TeleportError::invalid_response(
            "ListUsers",
            format!("more than {USERS_MAX_PAGES} pages"),
        ))
    }
}
