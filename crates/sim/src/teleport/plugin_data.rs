//! Plugin data storage with Teleport's semantics: one object per access request holding an
//! entry per plugin, compare-and-swap updates (`Expect` key by key, `""` = absent or delete),
//! and expiry one hour after the request's access expiry, checked on access.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;
use tonic::Status;

use teleport_mattermost::access::{KIND_ACCESS_REQUEST, RawData};
use teleport_mattermost::teleport::convert;
use teleport_mattermost::teleport::wire::types;

struct StoredData {
    entries: BTreeMap<String, RawData>,
    expires: Option<OffsetDateTime>,
}

#[derive(Default)]
pub(crate) struct PluginDataTable {
    items: HashMap<String, StoredData>,
}

impl PluginDataTable {
    /// `GetPluginData` (RBAC already checked).
    pub fn get(&mut self, f: &types::PluginDataFilter) -> Vec<types::PluginDataV3> {
        let now = OffsetDateTime::now_utc();
        if !f.resource.is_empty() {
            self.expire(&f.resource, now);
        }
        let mut ids: Vec<&String> = if f.resource.is_empty() {
            self.items.keys().collect()
        } else {
            self.items
                .get_key_value(&f.resource)
                .map(|(k, _)| k)
                .into_iter()
                .collect()
        };
        ids.sort();
        ids.into_iter()
            .filter_map(|id| {
                let d = &self.items[id];
                if d.expires.is_some_and(|e| e <= now) {
                    return None;
                }
                if !f.plugin.is_empty() && !d.entries.contains_key(&f.plugin) {
                    return None;
                }
                Some(types::PluginDataV3 {
                    kind: "plugin_data".into(),
                    sub_kind: KIND_ACCESS_REQUEST.into(),
                    version: "v3".into(),
                    metadata: Some(types::Metadata {
                        name: id.clone(),
                        namespace: "default".into(),
                        expires: convert::ts_to(d.expires),
                        ..Default::default()
                    }),
                    spec: Some(types::PluginDataSpecV3 {
                        entries: d
                            .entries
                            .iter()
                            .map(|(p, data)| {
                                (
                                    p.clone(),
                                    types::PluginDataEntry {
                                        data: data.clone().into_iter().collect(),
                                    },
                                )
                            })
                            .collect(),
                    }),
                })
            })
            .collect()
    }

    /// `UpdatePluginData` with Teleport's CAS semantics (RBAC already checked). Data for a
    /// request that no longer exists stays writable until it expires; new data needs the
    /// request.
    pub fn update(
        &mut self,
        p: &types::PluginDataUpdateParams,
        new_expiry: impl FnOnce() -> Result<Option<OffsetDateTime>, Status>,
    ) -> Result<(), Status> {
        self.expire(&p.resource, OffsetDateTime::now_utc());
        let expires = match self.items.get(&p.resource) {
            Some(d) => d.expires,
            None => new_expiry()?,
        };
        let set: RawData = p.set.clone().into_iter().collect();
        let expect: RawData = p.expect.clone().into_iter().collect();
        let current = self
            .items
            .get(&p.resource)
            .and_then(|d| d.entries.get(&p.plugin));
        let next = apply_update(current, &set, &expect)
            .map_err(|key| Status::failed_precondition(expectation_failed_message(&key)))?;
        let data = self
            .items
            .entry(p.resource.clone())
            .or_insert_with(|| StoredData {
                entries: BTreeMap::new(),
                expires,
            });
        match next {
            Some(next) => {
                data.entries.insert(p.plugin.clone(), next);
            }
            None => {
                data.entries.remove(&p.plugin);
            }
        }
        if data.entries.is_empty() {
            self.items.remove(&p.resource);
        }
        Ok(())
    }

    /// Admin read of one plugin's data.
    pub fn read(&self, id: &str, plugin: &str) -> Option<RawData> {
        self.items
            .get(id)
            .and_then(|d| d.entries.get(plugin))
            .cloned()
    }

    /// Drops the data of `id` once past its expiry (checked per access: no global sweeps).
    fn expire(&mut self, id: &str, now: OffsetDateTime) {
        if self
            .items
            .get(id)
            .is_some_and(|d| d.expires.is_some_and(|e| e <= now))
        {
            self.items.remove(id);
        }
    }
}

/// Teleport's server-side update rule (`PluginDataV3.Update` with `checkExpectations`):
/// check `expect` key by key against the current entry (`""` = absent; with no entry every
/// expected value must be `""`), then apply `set` (`""` deletes). Returns the new entry
/// (`None` when it ended up empty) or the first key whose expectation failed.
pub fn apply_update(
    current: Option<&RawData>,
    set: &RawData,
    expect: &RawData,
) -> Result<Option<RawData>, String> {
    for (k, want) in expect {
        let have = current
            .and_then(|c| c.get(k))
            .map(String::as_str)
            .unwrap_or("");
        if have != want {
            return Err(k.clone());
        }
    }
    let mut next = current.cloned().unwrap_or_default();
    for (k, v) in set {
        if v.is_empty() {
            next.remove(k);
        } else {
            next.insert(k.clone(), v.clone());
        }
    }
    Ok((!next.is_empty()).then_some(next))
}

/// The text Teleport uses for a failed expectation.
pub fn expectation_failed_message(key: &str) -> String {
    format!("expectations not met for field {key:?}")
}
