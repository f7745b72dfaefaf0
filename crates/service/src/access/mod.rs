//! Domain types for Teleport access requests, independent of the generated protobuf code:
//! requests and reviews, access monitoring rules, users, and the plugin data kept per request
//! (its encoding; the bridge's processor writes it with compare-and-swap).

pub mod plugin_data;
mod request;
mod rule;

pub use plugin_data::{DecodeError, PluginData, RawData, Resolution, SentMessage};
pub use request::{
    AccessRequest, RequestKind, RequestState, ResourceId, Review, Threshold, UnknownState,
};
pub use rule::{AccessMonitoringRule, RuleNotification, User};

/// The resource kind of access requests (watch kinds, plugin data, RBAC rules).
pub const KIND_ACCESS_REQUEST: &str = "access_request";
/// The resource kind of access monitoring rules.
pub const KIND_ACCESS_MONITORING_RULE: &str = "access_monitoring_rule";
/// The rule-only resource name that grants plugin-data rights without request rights.
pub const KIND_ACCESS_PLUGIN_DATA: &str = "access_plugin_data";
