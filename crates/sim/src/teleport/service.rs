//! The gRPC handlers: `proto.AuthService`,
//! `teleport.accessmonitoringrules.v1.AccessMonitoringRulesService` and
//! `teleport.users.v1.UsersService` (ListUsers), each identifying the caller from its
//! certificate, applying the fault switchboard, then Teleport's RBAC.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::access_lists::{KIND_ACCESS_LIST, check_plugin_data_rights};
use super::faults::{Faults, Method};
use super::pki::ClusterPki;
use super::server::ConnInfo;
use super::state::{State, check_plugin_data};
use super::watch;
use super::model::{KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST};
use super::wire;
use teleport_mattermost_proto::proto::auth_service_server::AuthService;
use teleport_mattermost_proto::teleport::accessmonitoringrules::v1 as amr;
use teleport_mattermost_proto::teleport::accessmonitoringrules::v1::access_monitoring_rules_service_server::AccessMonitoringRulesService;
use teleport_mattermost_proto::teleport::users::v1 as users;
use teleport_mattermost_proto::teleport::users::v1::users_service_server::UsersService;
use teleport_mattermost_proto::{proto, types};

/// Largest rule page served, whatever the client asks for.
const MAX_RULE_PAGE: usize = 1000;
/// Largest user page served (and the size of a page when the client asks for none).
const MAX_USER_PAGE: usize = 1000;

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub pki: ClusterPki,
    pub faults: Faults,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock is a simulator bug; keep serving with the data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn enter<T>(&self, method: Method, req: &Request<T>) -> Result<ConnInfo, Status> {
        let info = req
            .extensions()
            .get::<ConnInfo>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        self.faults.enter(method).await?;
        Ok(info)
    }
}

#[derive(Clone)]
pub(crate) struct AuthSim(pub Arc<Shared>);

#[derive(Clone)]
pub(crate) struct RulesSim(pub Arc<Shared>);

#[derive(Clone)]
pub(crate) struct UsersSim(pub Arc<Shared>);

type Stream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AuthService for AuthSim {
    async fn ping(
        &self,
        req: Request<proto::PingRequest>,
    ) -> Result<Response<proto::PingResponse>, Status> {
        let who = self.0.enter(Method::Ping, &req).await?;
        let st = self.0.lock();
        let i = &st.info;
        Ok(Response::new(proto::PingResponse {
            cluster_name: i.cluster_name.clone(),
            server_version: i.server_version.clone(),
            server_features: Some(proto::Features {
                advanced_access_workflows: i.advanced_access_workflows,
            }),
            proxy_public_addr: i.proxy_public_addr.clone(),
            remote_addr: who.peer.to_string(),
            ..Default::default()
        }))
    }

    type WatchEventsStream = Stream<proto::Event>;

    async fn watch_events(
        &self,
        req: Request<proto::Watch>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let who = self.0.enter(Method::WatchEvents, &req).await?;
        let st = self.0.lock();
        let roles = st.role_set(&who.user)?;
        let (granted, init) = watch::authorize(&who.user, &roles, req.get_ref())?;
        let rx = st.subscribe();
        drop(st);
        Ok(Response::new(watch::stream(
            init,
            rx,
            granted,
            self.0.faults.watch_token(),
            self.0.shutdown.clone(),
        )))
    }

    type GetAccessRequestsV2Stream = Stream<types::AccessRequestV3>;

    async fn get_access_requests_v2(
        &self,
        req: Request<types::AccessRequestFilter>,
    ) -> Result<Response<Self::GetAccessRequestsV2Stream>, Status> {
        let who = self.0.enter(Method::GetAccessRequestsV2, &req).await?;
        let items = {
            let st = self.0.lock();
            let roles = st.role_set(&who.user)?;
            st.visible_requests(&who.user, &roles, req.get_ref())
        };
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            items.into_iter().map(Ok),
        ))))
    }

    async fn submit_access_review(
        &self,
        req: Request<types::AccessReviewSubmission>,
    ) -> Result<Response<types::AccessRequestV3>, Status> {
        let who = self.0.enter(Method::SubmitAccessReview, &req).await?;
        let out = self.0.lock().submit_review(&who.user, req.into_inner())?;
        Ok(Response::new(out))
    }

    async fn get_plugin_data(
        &self,
        req: Request<types::PluginDataFilter>,
    ) -> Result<Response<proto::PluginDataSeq>, Status> {
        let who = self.0.enter(Method::GetPluginData, &req).await?;
        let f = req.get_ref();
        if f.kind == KIND_ACCESS_LIST {
            let mut st = self.0.lock();
            check_plugin_data_rights(&st.role_set(&who.user)?, false)?;
            let plugin_data = st.access_lists.get_plugin_data(f);
            return Ok(Response::new(proto::PluginDataSeq { plugin_data }));
        }
        check_kind(&f.kind)?;
        let mut st = self.0.lock();
        check_plugin_data(&st.role_set(&who.user)?, &["list", "read"])?;
        Ok(Response::new(proto::PluginDataSeq {
            plugin_data: st.plugin_data.get(f),
        }))
    }

    async fn update_plugin_data(
        &self,
        req: Request<types::PluginDataUpdateParams>,
    ) -> Result<Response<()>, Status> {
        let who = self.0.enter(Method::UpdatePluginData, &req).await?;
        let p = req.get_ref();
        if p.kind == KIND_ACCESS_LIST {
            let mut st = self.0.lock();
            check_plugin_data_rights(&st.role_set(&who.user)?, true)?;
            st.access_lists.update_plugin_data(p)?;
            return Ok(Response::new(()));
        }
        check_kind(&p.kind)?;
        let mut st = self.0.lock();
        check_plugin_data(&st.role_set(&who.user)?, &["update"])?;
        st.update_plugin_data(p)?;
        Ok(Response::new(()))
    }

    async fn get_user(
        &self,
        req: Request<proto::GetUserRequest>,
    ) -> Result<Response<types::UserV2>, Status> {
        let who = self.0.enter(Method::GetUser, &req).await?;
        let name = &req.get_ref().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("missing username"));
        }
        let st = self.0.lock();
        if *name != who.user {
            st.role_set(&who.user)?.check("user", &["read"])?;
        }
        let user = st
            .users
            .get(name)
            .ok_or_else(|| Status::not_found(format!("user {name:?} is not found")))?;
        Ok(Response::new(wire::user_to_proto(user)))
    }
}

fn check_kind(kind: &str) -> Result<(), Status> {
    if kind == KIND_ACCESS_REQUEST {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported resource kind {kind:?}"
        )))
    }
}

#[tonic::async_trait]
impl AccessMonitoringRulesService for RulesSim {
    async fn list_access_monitoring_rules_with_filter(
        &self,
        req: Request<amr::ListAccessMonitoringRulesWithFilterRequest>,
    ) -> Result<Response<amr::ListAccessMonitoringRulesWithFilterResponse>, Status> {
        let who = self
            .0
            .enter(Method::ListAccessMonitoringRules, &req)
            .await?;
        let r = req.get_ref();
        let st = self.0.lock();
        st.role_set(&who.user)?
            .check(KIND_ACCESS_MONITORING_RULE, &["read", "list"])?;
        let page = match usize::try_from(r.page_size) {
            Ok(n) if n > 0 => n.min(MAX_RULE_PAGE),
            _ => MAX_RULE_PAGE,
        };
        let mut matching = st
            .rules
            .range(r.page_token.clone()..)
            .map(|(_, rule)| rule)
            .filter(|rule| {
                r.subjects.is_empty() || rule.subjects.iter().any(|s| r.subjects.contains(s))
            })
            .filter(|rule| {
                r.notification_name.is_empty() || rule.notification.name == r.notification_name
            });
        let rules: Vec<amr::AccessMonitoringRule> = matching
            .by_ref()
            .take(page)
            .map(wire::rule_to_proto)
            .collect();
        let next_page_token = matching.next().map(|r| r.name.clone()).unwrap_or_default();
        Ok(Response::new(
            amr::ListAccessMonitoringRulesWithFilterResponse {
                rules,
                next_page_token,
            },
        ))
    }
}

#[tonic::async_trait]
impl UsersService for UsersSim {
    /// Users in name order; the page token is the first name of the next page.
    async fn list_users(
        &self,
        req: Request<users::ListUsersRequest>,
    ) -> Result<Response<users::ListUsersResponse>, Status> {
        let who = self.0.enter(Method::ListUsers, &req).await?;
        let r = req.get_ref();
        let st = self.0.lock();
        st.role_set(&who.user)?.check("user", &["list", "read"])?;
        let page = match usize::try_from(r.page_size) {
            Ok(n) if n > 0 => n.min(MAX_USER_PAGE),
            _ => MAX_USER_PAGE,
        };
        let mut names: Vec<&String> = st.users.keys().filter(|n| **n >= r.page_token).collect();
        names.sort();
        let users = names
            .iter()
            .take(page)
            .map(|n| wire::user_to_proto(&st.users[*n]))
            .collect();
        let next_page_token = names.get(page).map(|n| n.to_string()).unwrap_or_default();
        Ok(Response::new(users::ListUsersResponse {
            users,
            next_page_token,
        }))
    }
}
