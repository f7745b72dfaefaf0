//! Roles and Teleport's RBAC as far as the plugin's RPCs need it: resource rules with verbs
//! (`access denied to perform action "<verb>" on "<resource>"`), `review_requests`, and
//! `submit_for_users` (Teleport v18.11+ on-behalf reviews).

use tonic::Status;

use super::model::{AccessRequest, Threshold};

/// One allow rule: verbs on resources (`*` matches any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRule {
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

/// A role with the parts of Teleport's role spec the simulator enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRole {
    pub name: String,
    /// `allow.rules`.
    pub rules: Vec<SimRule>,
    /// `allow.review_requests.roles`: requested roles this role may review (`*` = any).
    pub review_roles: Vec<String>,
    /// `allow.review_requests.submit_for_users`: users this role may submit reviews for.
    pub submit_for_users: Vec<String>,
    /// `allow.request.thresholds` of requesters holding this role.
    pub request_thresholds: Vec<Threshold>,
}

impl SimRole {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            rules: Vec::new(),
            review_roles: Vec::new(),
            submit_for_users: Vec::new(),
            request_thresholds: Vec::new(),
        }
    }

    pub fn allow(mut self, resources: &[&str], verbs: &[&str]) -> Self {
        self.rules.push(SimRule {
            resources: resources.iter().map(|s| s.to_string()).collect(),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    pub fn review(mut self, roles: &[&str]) -> Self {
        self.review_roles
            .extend(roles.iter().map(|s| s.to_string()));
        self
    }

    pub fn submit_for(mut self, users: &[&str]) -> Self {
        self.submit_for_users
            .extend(users.iter().map(|s| s.to_string()));
        self
    }

    pub fn thresholds(mut self, approve: u32, deny: u32) -> Self {
        self.request_thresholds.push(Threshold {
            name: format!("{}-{approve}-{deny}", self.name),
            approve,
            deny,
        });
        self
    }

    /// Teleport's documented role for the access-request plugin.
    pub fn access_plugin() -> Self {
        Self::new("access-plugin")
            .allow(&["access_request"], &["list", "read", "update"])
            .allow(&["access_plugin_data"], &["update"])
            .allow(&["access_monitoring_rule"], &["list", "read"])
    }

    /// The preset `access-plugin-with-review`: the plugin role plus on-behalf reviews and
    /// reading users (to find the reviewer whose trait holds a Mattermost user id).
    pub fn access_plugin_with_review() -> Self {
        let mut r = Self::access_plugin()
            .allow(&["user"], &["list", "read"])
            .submit_for(&["*"]);
        r.name = "access-plugin-with-review".into();
        r
    }

    /// A reviewer of `roles`.
    pub fn reviewer(name: &str, roles: &[&str]) -> Self {
        Self::new(name).review(roles)
    }

    /// Everything (like the `editor` preset plus review rights on all roles).
    pub fn admin() -> Self {
        Self::new("admin").allow(&["*"], &["*"]).review(&["*"])
    }
}

fn matches(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == "*" || x == item)
}

/// The roles of one caller.
#[derive(Debug, Clone)]
pub struct RoleSet(pub Vec<SimRole>);

impl RoleSet {
    pub fn allows(&self, resource: &str, verb: &str) -> bool {
        self.0.iter().any(|r| {
            r.rules
                .iter()
                .any(|rule| matches(&rule.resources, resource) && matches(&rule.verbs, verb))
        })
    }

    /// Every verb must be allowed; the first missing one is the error.
    pub fn check(&self, resource: &str, verbs: &[&str]) -> Result<(), Status> {
        for verb in verbs {
            if !self.allows(resource, verb) {
                return Err(Status::permission_denied(format!(
                    "access denied to perform action {verb:?} on {resource:?}"
                )));
            }
        }
        Ok(())
    }

    pub fn may_review_anything(&self) -> bool {
        self.0.iter().any(|r| !r.review_roles.is_empty())
    }

    /// Whether `reviewer` (holding these roles) may review `req`: never their own request,
    /// and every requested role must be covered by some `review_requests.roles`.
    pub fn can_review(&self, reviewer: &str, req: &AccessRequest) -> bool {
        req.user != reviewer
            && !req.roles.is_empty()
            && req
                .roles
                .iter()
                .all(|role| self.0.iter().any(|r| matches(&r.review_roles, role)))
    }

    pub fn can_submit_for(&self, author: &str) -> bool {
        self.0.iter().any(|r| matches(&r.submit_for_users, author))
    }

    pub fn thresholds(&self) -> Vec<Threshold> {
        let mut out: Vec<Threshold> = Vec::new();
        for t in self.0.iter().flat_map(|r| r.request_thresholds.iter()) {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user: &str, roles: &[&str]) -> AccessRequest {
        AccessRequest {
            user: user.into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_need_every_verb_and_name_the_missing_one() {
        let set = RoleSet(vec![SimRole::access_plugin()]);
        assert!(set.check("access_request", &["list", "read"]).is_ok());
        let err = set
            .check("access_request", &["read", "delete"])
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            err.message(),
            "access denied to perform action \"delete\" on \"access_request\""
        );
        assert!(RoleSet(vec![SimRole::admin()]).allows("anything", "delete"));
    }

    #[test]
    fn review_rights_cover_all_requested_roles_and_never_self() {
        let set = RoleSet(vec![SimRole::reviewer("rev", &["editor"])]);
        assert!(set.can_review("bob", &req("alice", &["editor"])));
        assert!(!set.can_review("bob", &req("alice", &["editor", "dba"])));
        assert!(!set.can_review("alice", &req("alice", &["editor"])));
        let any = RoleSet(vec![SimRole::reviewer("rev", &["*"])]);
        assert!(any.can_review("bob", &req("alice", &["editor", "dba"])));
    }

    #[test]
    fn submit_for_users_takes_names_or_a_wildcard() {
        assert!(RoleSet(vec![SimRole::access_plugin_with_review()]).can_submit_for("anyone"));
        let some = RoleSet(vec![SimRole::new("x").submit_for(&["bob"])]);
        assert!(some.can_submit_for("bob"));
        assert!(!some.can_submit_for("carol"));
        assert!(!RoleSet(vec![SimRole::access_plugin()]).can_submit_for("bob"));
    }
}
