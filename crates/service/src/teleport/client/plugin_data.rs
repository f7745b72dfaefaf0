//! Plugin data over `AuthService`: one resource's entry, every request's entries, and the
//! compare-and-swap update. Access requests by default; access lists (the review
//! reminders) through [`TeleportClient::plugin_data_of`].

use std::collections::HashMap;

use super::TeleportClient;
use crate::access::{KIND_ACCESS_REQUEST, RawData};
use crate::teleport::TeleportError;
use crate::teleport::wire::types;

impl TeleportClient {
    /// `plugin`'s data for request `id`; `None` when it has none.
    pub async fn get_plugin_data(
        &self,
        plugin: &str,
        id: &str,
    ) -> Result<Option<RawData>, TeleportError> {
        self.get_plugin_data_of(KIND_ACCESS_REQUEST, plugin, id)
            .await
    }

    /// `plugin`'s data for the resource `id` of `kind`; `None` when it has none.
    pub async fn get_plugin_data_of(
        &self,
        kind: &str,
        plugin: &str,
        id: &str,
    ) -> Result<Option<RawData>, TeleportError> {
        let mut c = self.auth.clone();
        let filter = types::PluginDataFilter {
            kind: kind.into(),
            resource: id.into(),
            plugin: plugin.into(),
        };
        let seq = self
            .unary("GetPluginData", c.get_plugin_data(self.req(filter)))
            .await?;
        Ok(seq
            .plugin_data
            .into_iter()
            .find(|d| d.metadata.as_ref().is_some_and(|m| m.name == id))
            .and_then(|d| super::encoded::plugin_entry(d, plugin)))
    }

    /// Compare-and-swap write of `plugin`'s data (`""` in `set` deletes, `""` in `expect`
    /// means absent). A failed expectation is [`TeleportError::CompareFailed`].
    pub async fn update_plugin_data(
        &self,
        plugin: &str,
        id: &str,
        set: RawData,
        expect: RawData,
    ) -> Result<(), TeleportError> {
        self.update_plugin_data_of(KIND_ACCESS_REQUEST, plugin, id, set, expect)
            .await
    }

    /// [`TeleportClient::update_plugin_data`] on a resource of `kind`.
    pub async fn update_plugin_data_of(
        &self,
        kind: &str,
        plugin: &str,
        id: &str,
        set: RawData,
        expect: RawData,
    ) -> Result<(), TeleportError> {
        let mut c = self.auth.clone();
        let params = types::PluginDataUpdateParams {
            kind: kind.into(),
            resource: id.into(),
            plugin: plugin.into(),
            set: set.into_iter().collect::<HashMap<_, _>>(),
            expect: expect.into_iter().collect::<HashMap<_, _>>(),
        };
        self.unary("UpdatePluginData", c.update_plugin_data(self.req(params)))
            .await
    }

    /// `plugin`'s data of access requests over this client: the bridge's plugin-data port.
    pub fn plugin_data(&self, plugin: &str) -> PluginDataClient {
        self.plugin_data_of(KIND_ACCESS_REQUEST, plugin)
    }

    /// `plugin`'s data of resources of `kind` (e.g. `access_list`), through the same port.
    pub fn plugin_data_of(&self, kind: &'static str, plugin: &str) -> PluginDataClient {
        PluginDataClient {
            client: self.clone(),
            kind,
            plugin: plugin.to_string(),
        }
    }
}

/// One plugin's data over a [`TeleportClient`]; the bridge's `Store` port is implemented
/// on it (`bridge::teleport_store`).
#[derive(Debug, Clone)]
pub struct PluginDataClient {
    pub(crate) client: TeleportClient,
    /// The resource kind the data hangs on (`access_request`, `access_list`).
    pub(crate) kind: &'static str,
    pub(crate) plugin: String,
}
