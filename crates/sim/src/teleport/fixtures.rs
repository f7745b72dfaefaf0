//! A standard cast, modelled on the upstream plugin's test harness: a requestable `editor`
//! role, reviewers, the plugin's own user, and a requester with a Mattermost trait.

use std::collections::BTreeMap;

use super::model::User;
use super::{SimRole, TeleportSim};

pub const PLUGIN_USER: &str = "access-plugin";
pub const REQUESTER: &str = "requester@example.com";
pub const REVIEWER1: &str = "reviewer1@example.com";
pub const REVIEWER2: &str = "reviewer2@example.com";
/// A reviewer who may review nothing.
pub const BYSTANDER: &str = "bystander@example.com";
pub const ADMIN: &str = "admin";
/// The role requests ask for.
pub const REQUESTED_ROLE: &str = "editor";

/// Adds the roles `editor`, `requester`, `reviewer`, `access-plugin`,
/// `access-plugin-with-review`, `admin` and the users above (the plugin user holds
/// `access-plugin-with-review`). Reviewers carry the trait `mattermost_user_id`.
pub fn standard(sim: &TeleportSim) {
    sim.add_role(SimRole::new(REQUESTED_ROLE));
    sim.add_role(SimRole::new("requester"));
    sim.add_role(SimRole::reviewer("reviewer", &[REQUESTED_ROLE]));
    sim.add_role(SimRole::access_plugin());
    sim.add_role(SimRole::access_plugin_with_review());
    sim.add_role(SimRole::admin());
    sim.add_user(PLUGIN_USER, &["access-plugin-with-review"]);
    sim.add_user(REQUESTER, &["requester"]);
    sim.add_user(BYSTANDER, &["requester"]);
    sim.add_user(ADMIN, &["admin"]);
    for (name, mm) in [(REVIEWER1, "mm-reviewer-1"), (REVIEWER2, "mm-reviewer-2")] {
        sim.upsert_user(User {
            name: name.into(),
            roles: vec!["reviewer".into()],
            traits: BTreeMap::from([("mattermost_user_id".into(), vec![mm.into()])]),
        });
    }
}
