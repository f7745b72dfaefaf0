//! `teleport.users.v1.UsersService/ListUsers`, which in-chat review uses to find the Teleport
//! user whose trait holds a Mattermost user id: paging, traits on the wire, and RBAC.

use std::collections::BTreeMap;

use teleport_mattermost::teleport::TeleportError;
use teleport_mattermost_sim::teleport::Method;
use teleport_mattermost_sim::teleport::User;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER, REVIEWER1};

use crate::teleport::Env;

#[tokio::test]
async fn list_users_follows_pages_and_carries_traits() {
    let env = Env::start().await;
    for i in 0..1203 {
        env.sim.upsert_user(User {
            name: format!("user-{i:04}"),
            roles: vec!["requester".into()],
            traits: BTreeMap::from([("mattermost_user_id".into(), vec![format!("mm-{i}")])]),
        });
    }
    let client = env.client(PLUGIN_USER);
    let users = client.list_users().await.unwrap();
    let fixtures = 6;
    assert_eq!(users.len(), 1203 + fixtures);
    let mut names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), users.len(), "no user twice across pages");
    let r1 = users.iter().find(|u| u.name == REVIEWER1).unwrap();
    assert_eq!(r1.traits["mattermost_user_id"], vec!["mm-reviewer-1"]);
    assert_eq!(r1.roles, vec!["reviewer"]);
    // 500 per page: three pages.
    assert_eq!(env.sim.faults().calls(Method::ListUsers), 3);
}

#[tokio::test]
async fn list_users_needs_list_and_read_on_user() {
    let env = Env::start().await;
    let err = env.client(REQUESTER).list_users().await.unwrap_err();
    match err {
        TeleportError::PermissionDenied(m) => {
            assert_eq!(m, "access denied to perform action \"list\" on \"user\"")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}
