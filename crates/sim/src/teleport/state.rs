//! The simulated backend: users, roles, access requests, plugin data and monitoring rules,
//! with every change broadcast to watchers while the state lock is held (so watchers see
//! changes in commit order).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;
use tonic::Status;

use super::access_lists::AccessListTable;
use super::model::{
    AccessMonitoringRule, AccessRequest, KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_PLUGIN_DATA,
    KIND_ACCESS_REQUEST, RequestKind, RequestState, ResourceId, Threshold, User,
};
use super::plugin_data::PluginDataTable;
use super::rbac::{RoleSet, SimRole};
use super::wire;
use teleport_mattermost_proto::{proto, types};

/// What `Ping` reports; changeable at runtime.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub cluster_name: String,
    pub server_version: String,
    pub advanced_access_workflows: bool,
    pub proxy_public_addr: String,
}

/// An access request to create through the admin API.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    /// Defaults to a fresh UUIDv7, like newer Teleport servers.
    pub id: Option<String>,
    pub user: String,
    pub roles: Vec<String>,
    pub reason: String,
    pub suggested_reviewers: Vec<String>,
    pub resources: Vec<ResourceId>,
    pub system_annotations: BTreeMap<String, Vec<String>>,
    /// When the granted access would end; defaults to one hour from now.
    pub access_expiry: Option<OffsetDateTime>,
    pub max_duration: Option<OffsetDateTime>,
    pub kind: RequestKind,
    /// Overrides the thresholds of the requester's roles (default one approval/denial).
    pub thresholds: Option<Vec<Threshold>>,
}

impl NewRequest {
    pub fn new(user: &str, roles: &[&str]) -> Self {
        Self {
            user: user.into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.into();
        self
    }

    pub fn suggested_reviewers(mut self, reviewers: &[&str]) -> Self {
        self.suggested_reviewers = reviewers.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// One submitted review as the audit log would record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewAudit {
    pub request_id: String,
    pub author: String,
    /// The authenticated caller that submitted it.
    pub submitted_by: String,
    pub on_behalf: bool,
    pub proposed_state: RequestState,
    pub reason: String,
}

pub(crate) struct StoredRequest {
    pub req: AccessRequest,
    /// Threshold indexes per review (Teleport's `ThresholdIndexes`).
    pub review_indexes: Vec<Vec<u32>>,
}

impl StoredRequest {
    pub fn to_proto(&self) -> types::AccessRequestV3 {
        wire::request_to_proto(&self.req, &self.review_indexes)
    }
}

/// A change, pre-encoded once for all watchers.
pub(crate) struct SimEvent {
    pub kind: &'static str,
    /// For access-request PUTs: (id, user, state), what watch filters look at.
    pub request: Option<(String, String, RequestState)>,
    pub is_put: bool,
    pub event: proto::Event,
}

pub(crate) struct State {
    pub info: ClusterInfo,
    pub roles: HashMap<String, SimRole>,
    pub users: HashMap<String, User>,
    pub requests: BTreeMap<String, StoredRequest>,
    pub plugin_data: PluginDataTable,
    pub rules: BTreeMap<String, AccessMonitoringRule>,
    pub audit: Vec<ReviewAudit>,
    pub access_lists: AccessListTable,
    events: broadcast::Sender<Arc<SimEvent>>,
}

impl State {
    pub fn new(info: ClusterInfo, events: broadcast::Sender<Arc<SimEvent>>) -> Self {
        Self {
            info,
            roles: HashMap::new(),
            users: HashMap::new(),
            requests: BTreeMap::new(),
            plugin_data: PluginDataTable::default(),
            rules: BTreeMap::new(),
            audit: Vec::new(),
            access_lists: AccessListTable::default(),
            events,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SimEvent>> {
        self.events.subscribe()
    }

    /// The roles of a user; a caller whose user is gone is denied.
    pub fn role_set(&self, user: &str) -> Result<RoleSet, Status> {
        let u = self.users.get(user).ok_or_else(|| {
            Status::permission_denied(format!("access denied: user {user:?} is not found"))
        })?;
        Ok(RoleSet(
            u.roles
                .iter()
                .filter_map(|r| self.roles.get(r).cloned())
                .collect(),
        ))
    }

    pub fn request(&self, id: &str) -> Result<&StoredRequest, Status> {
        self.requests
            .get(id)
            .ok_or_else(|| Status::not_found(format!("access request {id:?} not found")))
    }

    fn send(&self, ev: SimEvent) {
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(Arc::new(ev));
    }

    pub fn emit_request_put(&self, id: &str) {
        if let Some(s) = self.requests.get(id) {
            self.send(SimEvent {
                kind: KIND_ACCESS_REQUEST,
                request: Some((s.req.id.clone(), s.req.user.clone(), s.req.state)),
                is_put: true,
                event: proto::Event {
                    r#type: proto::Operation::Put as i32,
                    resource: Some(proto::event::Resource::AccessRequest(s.to_proto())),
                },
            });
        }
    }

    fn emit_delete(&self, kind: &'static str, version: &str, name: &str) {
        self.send(SimEvent {
            kind,
            request: None,
            is_put: false,
            event: proto::Event {
                r#type: proto::Operation::Delete as i32,
                resource: Some(proto::event::Resource::ResourceHeader(
                    types::ResourceHeader {
                        kind: kind.into(),
                        sub_kind: String::new(),
                        version: version.into(),
                        metadata: Some(types::Metadata {
                            name: name.into(),
                            namespace: "default".into(),
                            ..Default::default()
                        }),
                    },
                )),
            },
        });
    }

    pub fn create_request(&mut self, n: NewRequest) -> AccessRequest {
        let now = OffsetDateTime::now_utc();
        let thresholds = n.thresholds.clone().unwrap_or_else(|| {
            let from_roles = self
                .role_set(&n.user)
                .map(|rs| rs.thresholds())
                .unwrap_or_default();
            if from_roles.is_empty() {
                vec![Threshold::default_single()]
            } else {
                from_roles
            }
        });
        let expires = n.access_expiry.unwrap_or(now + Duration::from_secs(3600));
        let req = AccessRequest {
            id: n.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            user: n.user,
            roles: n.roles,
            state: RequestState::Pending,
            created: Some(now),
            expires: Some(expires),
            max_duration: n.max_duration,
            session_ttl: Some(expires),
            request_reason: n.reason,
            resolve_reason: String::new(),
            system_annotations: n.system_annotations,
            thresholds,
            reviews: Vec::new(),
            suggested_reviewers: n.suggested_reviewers,
            resources: n.resources,
            promoted_access_list_title: None,
            kind: n.kind,
        };
        let id = req.id.clone();
        self.requests.insert(
            id.clone(),
            StoredRequest {
                req: req.clone(),
                review_indexes: Vec::new(),
            },
        );
        self.emit_request_put(&id);
        req
    }

    /// Admin resolution (`tctl request approve/deny`).
    pub fn set_state(
        &mut self,
        id: &str,
        state: RequestState,
        reason: &str,
    ) -> Result<AccessRequest, Status> {
        if !state.is_resolved() {
            return Err(Status::invalid_argument(format!(
                "cannot set request state to {state}: expected APPROVED, DENIED or PROMOTED"
            )));
        }
        let stored = self
            .requests
            .get_mut(id)
            .ok_or_else(|| Status::not_found(format!("access request {id:?} not found")))?;
        if stored.req.state.is_resolved() {
            return Err(Status::invalid_argument(format!(
                "the access request has been already {}",
                stored.req.state.name().to_lowercase()
            )));
        }
        stored.req.state = state;
        stored.req.resolve_reason = reason.into();
        let out = stored.req.clone();
        self.emit_request_put(id);
        Ok(out)
    }

    /// Deletes a request (expiry); its plugin data stays until it expires.
    pub fn delete_request(&mut self, id: &str) -> bool {
        let existed = self.requests.remove(id).is_some();
        if existed {
            self.emit_delete(KIND_ACCESS_REQUEST, "v3", id);
        }
        existed
    }

    pub fn upsert_rule(&mut self, rule: AccessMonitoringRule) {
        let event = proto::Event {
            r#type: proto::Operation::Put as i32,
            resource: Some(proto::event::Resource::AccessMonitoringRule(
                wire::rule_to_proto(&rule),
            )),
        };
        self.rules.insert(rule.name.clone(), rule);
        self.send(SimEvent {
            kind: KIND_ACCESS_MONITORING_RULE,
            request: None,
            is_put: true,
            event,
        });
    }

    pub fn delete_rule(&mut self, name: &str) -> bool {
        let existed = self.rules.remove(name).is_some();
        if existed {
            self.emit_delete(KIND_ACCESS_MONITORING_RULE, "v1", name);
        }
        existed
    }

    /// `UpdatePluginData` (RBAC already checked): new data needs an existing request and
    /// expires one hour after the request's access expiry.
    pub fn update_plugin_data(&mut self, p: &types::PluginDataUpdateParams) -> Result<(), Status> {
        let requests = &self.requests;
        self.plugin_data.update(p, || {
            requests
                .get(&p.resource)
                .map(|r| r.req.expires.map(|e| e + Duration::from_secs(3600)))
                .ok_or_else(|| {
                    Status::not_found(format!("access request {:?} not found", p.resource))
                })
        })
    }

    /// Requests `caller` may see: all with list+read, else its own and those it may review.
    pub fn visible_requests(
        &self,
        caller: &str,
        roles: &RoleSet,
        filter: &types::AccessRequestFilter,
    ) -> Vec<types::AccessRequestV3> {
        let see_all =
            roles.allows(KIND_ACCESS_REQUEST, "list") && roles.allows(KIND_ACCESS_REQUEST, "read");
        let state = RequestState::from_number(filter.state);
        let candidates: Box<dyn Iterator<Item = &StoredRequest>> = if filter.id.is_empty() {
            Box::new(self.requests.values())
        } else {
            Box::new(self.requests.get(&filter.id).into_iter())
        };
        candidates
            .filter(|s| filter.user.is_empty() || s.req.user == filter.user)
            .filter(|s| state == RequestState::None || s.req.state == state)
            .filter(|s| see_all || s.req.user == caller || roles.can_review(caller, &s.req))
            .map(StoredRequest::to_proto)
            .collect()
    }
}

/// The RBAC of the plugin-data RPCs: rights on `access_request`, or else on the rule-only
/// `access_plugin_data` (whose error is the one reported).
pub(crate) fn check_plugin_data(roles: &RoleSet, verbs: &[&str]) -> Result<(), Status> {
    if verbs.iter().all(|v| roles.allows(KIND_ACCESS_REQUEST, v)) {
        return Ok(());
    }
    roles.check(KIND_ACCESS_PLUGIN_DATA, verbs)
}
