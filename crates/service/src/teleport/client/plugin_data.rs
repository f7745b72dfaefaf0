//! Plugin data over `AuthService`: one request's entry, every request's entries, and the
//! compare-and-swap update.

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
        let mut c = self.auth.clone();
        let filter = types::PluginDataFilter {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: id.into(),
            plugin: plugin.into(),
        };
        let seq = self
            .unary("GetPluginData", c.get_plugin_data(self.req(filter)))
            .await?;
        let data = seq
            .plugin_data
            .into_iter()
            .find(|d| d.metadata.as_ref().is_some_and(|m| m.name == id))
            .and_then(|d| d.spec)
            .and_then(|mut s| s.entries.remove(plugin))
            .map(|e| e.data.into_iter().collect::<RawData>())
            .filter(|m| !m.is_empty());
        Ok(data)
    }

    /// Every request's data of `plugin` (a filter without a resource): for catching up on
    /// requests deleted while the service was not watching.
    pub async fn list_plugin_data(
        &self,
        plugin: &str,
    ) -> Result<Vec<(String, RawData)>, TeleportError> {
        let mut c = self.auth.clone();
        let filter = types::PluginDataFilter {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: String::new(),
            plugin: plugin.into(),
        };
        let seq = self
            .unary("GetPluginData", c.get_plugin_data(self.req(filter)))
            .await?;
        Ok(seq
            .plugin_data
            .into_iter()
            .filter_map(|d| {
                let id = d.metadata.as_ref()?.name.clone();
                let data: RawData = d.spec?.entries.remove(plugin)?.data.into_iter().collect();
                (!data.is_empty()).then_some((id, data))
            })
            .collect())
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
        let mut c = self.auth.clone();
        let params = types::PluginDataUpdateParams {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: id.into(),
            plugin: plugin.into(),
            set: set.into_iter().collect::<HashMap<_, _>>(),
            expect: expect.into_iter().collect::<HashMap<_, _>>(),
        };
        self.unary("UpdatePluginData", c.update_plugin_data(self.req(params)))
            .await
    }

    /// `plugin`'s data over this client: the bridge's plugin-data port.
    pub fn plugin_data(&self, plugin: &str) -> PluginDataClient {
        PluginDataClient {
            client: self.clone(),
            plugin: plugin.to_string(),
        }
    }
}

/// One plugin's data over a [`TeleportClient`]; the bridge's `Store` port is implemented
/// on it (`bridge::teleport_store`).
#[derive(Debug, Clone)]
pub struct PluginDataClient {
    pub(crate) client: TeleportClient,
    pub(crate) plugin: String,
}
