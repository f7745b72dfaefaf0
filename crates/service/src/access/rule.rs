//! Access monitoring rules (routing of notifications) and Teleport users.

use std::collections::BTreeMap;

/// Where a matching rule sends notifications.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleNotification {
    /// The plugin the rule is for (e.g. "mattermost"); empty means any.
    pub name: String,
    pub recipients: Vec<String>,
}

/// An access monitoring rule (`teleport.accessmonitoringrules.v1.AccessMonitoringRule`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessMonitoringRule {
    pub name: String,
    /// Resource kinds the rule applies to, e.g. `access_request`.
    pub subjects: Vec<String>,
    pub states: Vec<String>,
    /// A Teleport predicate expression, evaluated client-side.
    pub condition: String,
    pub notification: RuleNotification,
}

/// A Teleport user: its roles and traits (e.g. `mattermost_user_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub name: String,
    pub roles: Vec<String>,
    pub traits: BTreeMap<String, Vec<String>>,
}
