//! The watch API in domain terms: which kinds to watch, and the typed events that come back
//! (INIT with the confirmed kinds, PUT/DELETE of access requests and monitoring rules).

use std::collections::BTreeMap;
use std::pin::Pin;

use futures_util::{Stream, StreamExt};

use super::convert;
use super::error::TeleportError;
use super::wire::proto::{self, event::Resource};
use super::wire::types;
use crate::access::{
    AccessMonitoringRule, AccessRequest, KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST,
};

/// One kind to watch, with optional server-side filters (`id`, `user`, `state` for
/// access requests; they apply to PUT events only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchKind {
    pub kind: String,
    pub filter: BTreeMap<String, String>,
}

impl WatchKind {
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            filter: BTreeMap::new(),
        }
    }

    pub fn with_filter(mut self, key: &str, value: &str) -> Self {
        self.filter.insert(key.into(), value.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    pub kinds: Vec<WatchKind>,
    /// Drop kinds the caller may not watch instead of failing; INIT says what was granted.
    pub allow_partial_success: bool,
}

impl WatchRequest {
    /// What the plugin watches: access requests and access monitoring rules, with partial
    /// success (rules need a newer server and an extra permission).
    pub fn plugin() -> Self {
        Self {
            kinds: vec![
                WatchKind::new(KIND_ACCESS_REQUEST),
                WatchKind::new(KIND_ACCESS_MONITORING_RULE),
            ],
            allow_partial_success: true,
        }
    }

    /// The `proto.Watch` message sent.
    pub fn to_wire(&self) -> proto::Watch {
        proto::Watch {
            kinds: self
                .kinds
                .iter()
                .map(|k| types::WatchKind {
                    kind: k.kind.clone(),
                    filter: k.filter.clone().into_iter().collect(),
                    ..Default::default()
                })
                .collect(),
            allow_partial_success: self.allow_partial_success,
        }
    }
}

/// A watch event a plugin acts on. Events of other kinds are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Always first. `confirmed_kinds` is `None` when the server (very old) did not say.
    Init {
        confirmed_kinds: Option<Vec<String>>,
    },
    /// Boxed: a request is far larger than the other events.
    RequestPut(Box<AccessRequest>),
    /// Teleport deletes requests when they expire.
    RequestDelete {
        id: String,
    },
    RulePut(AccessMonitoringRule),
    RuleDelete {
        name: String,
    },
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, TeleportError>> + Send>>;

/// Maps the raw stream: errors end it (after being yielded once), unknown events are skipped.
pub(crate) fn typed(stream: tonic::codec::Streaming<proto::Event>) -> EventStream {
    let mut failed = false;
    Box::pin(
        stream
            .take_while(move |item| {
                let go = !failed;
                failed |= item.is_err();
                std::future::ready(go)
            })
            .filter_map(|item| {
                std::future::ready(match item {
                    Ok(ev) => from_wire(ev).map(Ok),
                    Err(status) => Some(Err(TeleportError::from(status))),
                })
            }),
    )
}

/// Decodes one event; `None` for kinds and shapes a plugin does not use.
pub fn from_wire(ev: proto::Event) -> Option<WatchEvent> {
    let op = proto::Operation::try_from(ev.r#type).ok()?;
    match (op, ev.resource) {
        (proto::Operation::Init, Some(Resource::WatchStatus(s))) => Some(WatchEvent::Init {
            confirmed_kinds: Some(
                s.spec
                    .map(|s| s.kinds.into_iter().map(|k| k.kind).collect())
                    .unwrap_or_default(),
            ),
        }),
        (proto::Operation::Init, _) => Some(WatchEvent::Init {
            confirmed_kinds: None,
        }),
        (proto::Operation::Put, Some(Resource::AccessRequest(r))) => Some(WatchEvent::RequestPut(
            Box::new(convert::request_from_proto(r)),
        )),
        (proto::Operation::Put, Some(Resource::AccessMonitoringRule(r))) => {
            Some(WatchEvent::RulePut(convert::rule_from_proto(&r)))
        }
        (proto::Operation::Delete, Some(Resource::ResourceHeader(h))) => {
            let name = h.metadata.map(|m| m.name).unwrap_or_default();
            match h.kind.as_str() {
                KIND_ACCESS_REQUEST => Some(WatchEvent::RequestDelete { id: name }),
                KIND_ACCESS_MONITORING_RULE => Some(WatchEvent::RuleDelete { name }),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: &str, name: &str) -> Option<Resource> {
        Some(Resource::ResourceHeader(types::ResourceHeader {
            kind: kind.into(),
            version: "v3".into(),
            metadata: Some(types::Metadata {
                name: name.into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    #[test]
    fn delete_events_are_told_apart_by_header_kind() {
        let ev = |resource| proto::Event {
            r#type: proto::Operation::Delete as i32,
            resource,
        };
        assert_eq!(
            from_wire(ev(header("access_request", "r1"))),
            Some(WatchEvent::RequestDelete { id: "r1".into() })
        );
        assert_eq!(
            from_wire(ev(header("access_monitoring_rule", "amr"))),
            Some(WatchEvent::RuleDelete { name: "amr".into() })
        );
        assert_eq!(from_wire(ev(header("node", "n"))), None);
    }

    #[test]
    fn an_init_without_watch_status_has_unknown_confirmed_kinds() {
        let ev = proto::Event {
            r#type: proto::Operation::Init as i32,
            resource: None,
        };
        assert_eq!(
            from_wire(ev),
            Some(WatchEvent::Init {
                confirmed_kinds: None
            })
        );
        let unknown_op = proto::Event {
            r#type: 7,
            resource: None,
        };
        assert_eq!(from_wire(unknown_op), None);
    }
}
