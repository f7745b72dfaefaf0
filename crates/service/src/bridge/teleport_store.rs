//! The bridge's plugin-data port over the Teleport client.

use super::ports::{Map, PortError, Store};
use crate::access::cas::PluginDataStore;
use crate::teleport::TeleportError;
use crate::teleport::client::PluginDataClient;

/// How a Teleport error affects an event: retry, conflict, gone, or give up.
pub fn port_error(e: TeleportError) -> PortError {
    match e {
        TeleportError::CompareFailed(_) => PortError::Conflict,
        TeleportError::NotFound(_) => PortError::NotFound,
        TeleportError::ConnectionProblem(m) => PortError::Retry {
            reason: m,
            after: None,
        },
        TeleportError::Other {
            code:
                tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::ResourceExhausted
                | tonic::Code::Aborted,
            message,
        } => PortError::Retry {
            reason: message,
            after: None,
        },
        other => PortError::Fatal(other.to_string()),
    }
}

impl Store for PluginDataClient {
    async fn get(&self, request_id: &str) -> Result<Option<Map>, PortError> {
        PluginDataStore::get(self, request_id)
            .await
            .map_err(port_error)
    }

    async fn update(&self, request_id: &str, set: Map, expect: Map) -> Result<(), PortError> {
        PluginDataStore::update(self, request_id, set, expect)
            .await
            .map_err(port_error)
    }
}
