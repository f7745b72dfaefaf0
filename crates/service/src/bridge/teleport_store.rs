//! The bridge's plugin-data port over the Teleport client.

use super::ports::{PortError, Store};
use crate::access::RawData;
use crate::teleport::{PluginDataClient, TeleportError};

/// How a Teleport error affects an event: conflict (re-read), gone, retry later (by
/// [`TeleportError::is_transient`]), or give up.
fn port_error(e: TeleportError) -> PortError {
    match e {
        TeleportError::CompareFailed(_) => PortError::Conflict,
        TeleportError::NotFound(_) => PortError::NotFound,
        e if e.is_transient() => PortError::Retry {
            reason: e.message().to_string(),
            after: None,
        },
        e => PortError::Fatal(e.to_string()),
    }
}

/// Boxed where they are made, like the chat port's calls (`bridge/mattermost_chat.rs`): a
/// gRPC call's future is kilobytes, and the processor's futures move.
impl Store for PluginDataClient {
    async fn get(&self, request_id: &str) -> Result<Option<RawData>, PortError> {
        Box::pin(
            self.client
                .get_plugin_data_of(self.kind, &self.plugin, request_id),
        )
        .await
        .map_err(port_error)
    }

    async fn update(
        &self,
        request_id: &str,
        set: RawData,
        expect: RawData,
    ) -> Result<(), PortError> {
        Box::pin(self.client.update_plugin_data_of(
            self.kind,
            &self.plugin,
            request_id,
            set,
            expect,
        ))
        .await
        .map_err(port_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teleport_errors_become_port_errors_by_the_one_classifier() {
        let port = |code| port_error(TeleportError::from(tonic::Status::new(code, "why")));
        assert_eq!(port(tonic::Code::FailedPrecondition), PortError::Conflict);
        assert_eq!(port(tonic::Code::NotFound), PortError::NotFound);
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Cancelled,
            tonic::Code::Internal,
        ] {
            assert_eq!(
                port(code),
                PortError::Retry {
                    reason: "why".into(),
                    after: None
                },
                "{code:?}"
            );
        }
        for code in [tonic::Code::PermissionDenied, tonic::Code::InvalidArgument] {
            assert!(matches!(port(code), PortError::Fatal(_)), "{code:?}");
        }
    }
}
