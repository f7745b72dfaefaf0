//! Access lists in the simulator: `teleport.accesslist.v1.AccessListService/ListAccessLists`
//! with paging and RBAC on `access_list`, and plugin data on kind `access_list` (same
//! compare-and-swap rule as for requests; new data needs the list to exist). A simulator
//! started with [`super::SimOptions::access_lists`] off does not serve the service at all,
//! so calls end `Unimplemented`, as on a cluster without the API.
//!
//! Written from the wire facts (docs/teleport-wire.md, "Access lists") with the generated
//! message types only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use teleport_mattermost_proto::teleport::accesslist::v1 as al;
use teleport_mattermost_proto::teleport::accesslist::v1::access_list_service_server::AccessListService;
use teleport_mattermost_proto::teleport::header::v1 as header;
use teleport_mattermost_proto::types;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::TeleportSim;
use super::plugin_data::PluginDataTable;
use super::server::ConnInfo;
use super::service::Shared;

/// The resource kind (RBAC rules, plugin data).
pub const KIND_ACCESS_LIST: &str = "access_list";
/// Page size when the client asks for none, and the largest served.
const MAX_PAGE: usize = 200;

/// An access list as an admin would create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAccessList {
    pub name: String,
    pub title: String,
    /// Owners that are users.
    pub owners: Vec<String>,
    /// Owners that are nested access lists (`membership_kind` LIST).
    pub list_owners: Vec<String>,
    pub next_audit_date: Option<OffsetDateTime>,
    /// `notifications.start`: how long before the due date reminders begin.
    pub notify_before: Duration,
    pub member_count: Option<u32>,
}

impl SimAccessList {
    /// A list due for review at `due`, reminders starting two weeks before.
    pub fn new(name: &str, owners: &[&str], due: OffsetDateTime) -> Self {
        Self {
            name: name.into(),
            title: String::new(),
            owners: owners.iter().map(|s| s.to_string()).collect(),
            list_owners: Vec::new(),
            next_audit_date: Some(due),
            notify_before: Duration::from_secs(14 * 24 * 3600),
            member_count: None,
        }
    }

    pub fn title(mut self, title: &str) -> Self {
        self.title = title.into();
        self
    }

    pub fn members(mut self, n: u32) -> Self {
        self.member_count = Some(n);
        self
    }

    fn to_proto(&self) -> al::AccessList {
        let ts = |t: OffsetDateTime| prost_types::Timestamp {
            seconds: t.unix_timestamp(),
            nanos: t.nanosecond() as i32,
        };
        // Go sends a zero time for an unset non-nullable timestamp.
        let zero = prost_types::Timestamp {
            seconds: -62_135_596_800,
            nanos: 0,
        };
        let owner = |name: &String, kind: i32| al::AccessListOwner {
            name: name.clone(),
            description: String::new(),
            membership_kind: kind,
        };
        al::AccessList {
            header: Some(header::ResourceHeader {
                kind: KIND_ACCESS_LIST.into(),
                sub_kind: String::new(),
                version: "v1".into(),
                metadata: Some(header::Metadata {
                    name: self.name.clone(),
                    namespace: "default".into(),
                    ..Default::default()
                }),
            }),
            spec: Some(al::AccessListSpec {
                description: String::new(),
                owners: self
                    .owners
                    .iter()
                    .map(|o| owner(o, 1))
                    .chain(self.list_owners.iter().map(|o| owner(o, 2)))
                    .collect(),
                audit: Some(al::AccessListAudit {
                    next_audit_date: Some(self.next_audit_date.map_or(zero, ts)),
                    notifications: Some(al::Notifications {
                        start: Some(prost_types::Duration {
                            seconds: self.notify_before.as_secs() as i64,
                            nanos: self.notify_before.subsec_nanos() as i32,
                        }),
                    }),
                }),
                title: self.title.clone(),
            }),
            status: Some(al::AccessListStatus {
                member_count: self.member_count,
                member_list_count: None,
            }),
        }
    }
}

/// The simulator's access lists and their plugin data.
#[derive(Default)]
pub(crate) struct AccessListTable {
    lists: BTreeMap<String, SimAccessList>,
    plugin_data: PluginDataTable,
}

impl AccessListTable {
    /// `GetPluginData` on kind `access_list`.
    pub fn get_plugin_data(&mut self, f: &types::PluginDataFilter) -> Vec<types::PluginDataV3> {
        let mut out = self.plugin_data.get(f);
        for d in &mut out {
            d.sub_kind = KIND_ACCESS_LIST.into();
        }
        out
    }

    /// `UpdatePluginData` on kind `access_list`: data for a list that does not exist is
    /// `NotFound`; it never expires.
    pub fn update_plugin_data(&mut self, p: &types::PluginDataUpdateParams) -> Result<(), Status> {
        let lists = &self.lists;
        self.plugin_data.update(p, || {
            lists
                .contains_key(&p.resource)
                .then_some(None)
                .ok_or_else(|| {
                    Status::not_found(format!("access_list {:?} is not found", p.resource))
                })
        })
    }
}

/// RBAC of the plugin-data RPCs on access lists: `read` (and `list` for a listing) on
/// `access_list` to read; `update` on `access_list` or on `access_plugin_data` to write.
pub(crate) fn check_plugin_data_rights(
    roles: &super::rbac::RoleSet,
    update: bool,
) -> Result<(), Status> {
    if update {
        if roles.allows(KIND_ACCESS_LIST, "update") {
            return Ok(());
        }
        return roles.check("access_plugin_data", &["update"]);
    }
    roles.check(KIND_ACCESS_LIST, &["list", "read"])
}

#[derive(Clone)]
pub(crate) struct AccessListsSim(pub Arc<Shared>);

#[tonic::async_trait]
impl AccessListService for AccessListsSim {
    async fn list_access_lists(
        &self,
        req: Request<al::ListAccessListsRequest>,
    ) -> Result<Response<al::ListAccessListsResponse>, Status> {
        let who = req
            .extensions()
            .get::<ConnInfo>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let r = req.get_ref();
        let st = self.0.lock();
        st.role_set(&who.user)?
            .check(KIND_ACCESS_LIST, &["list", "read"])?;
        let size = match usize::try_from(r.page_size) {
            Ok(0) | Err(_) => MAX_PAGE,
            Ok(n) => n.min(MAX_PAGE),
        };
        let mut page = st
            .access_lists
            .lists
            .range(r.next_token.clone()..)
            .map(|(_, l)| l);
        let access_lists: Vec<al::AccessList> = page
            .by_ref()
            .take(size)
            .map(SimAccessList::to_proto)
            .collect();
        let next_token = page.next().map(|l| l.name.clone()).unwrap_or_default();
        Ok(Response::new(al::ListAccessListsResponse {
            access_lists,
            next_token,
        }))
    }
}

impl TeleportSim {
    /// Creates or replaces an access list.
    pub fn upsert_access_list(&self, list: SimAccessList) {
        self.shared
            .lock()
            .access_lists
            .lists
            .insert(list.name.clone(), list);
    }

    pub fn access_list(&self, name: &str) -> Option<SimAccessList> {
        self.shared.lock().access_lists.lists.get(name).cloned()
    }

    /// Admin read of one plugin's data on an access list.
    pub fn access_list_plugin_data(
        &self,
        name: &str,
        plugin: &str,
    ) -> Option<BTreeMap<String, String>> {
        self.shared
            .lock()
            .access_lists
            .plugin_data
            .read(name, plugin)
            .map(|d| d.into_iter().collect())
    }
}
