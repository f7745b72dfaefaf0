//! Listings kept in their wire encoding until somebody needs them decoded: every access
//! request (`GetAccessRequestsV2`) and every request's plugin data (`GetPluginData` without a
//! resource). The periodic resync lists both for every open request, reads a digest of what
//! its decision needs from each (without decoding the rest), and decodes only the requests
//! whose digest changed since the last run (see `bridge::unchanged`); the field numbers used
//! here are in `docs/teleport-wire.md`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::{RequestFilter, TeleportClient};
use crate::access::{AccessRequest, KIND_ACCESS_REQUEST, RawData};
use crate::teleport::TeleportError;
use crate::teleport::convert;
use crate::teleport::wire::types;

/// One listed resource (an `AccessRequestV3` or a `PluginDataV3`) as it came off the wire.
#[derive(Clone)]
pub struct Encoded(Bytes);

/// `metadata` (field 4) of an `AccessRequestV3` or `PluginDataV3` and nothing else: the
/// other fields are skipped unread, so finding a resource's name costs no decoding of it.
#[derive(Clone, PartialEq, Message)]
struct NameOnly {
    #[prost(message, optional, tag = "4")]
    metadata: Option<MetadataName>,
}

/// `Metadata.name` (field 1).
#[derive(Clone, PartialEq, Message)]
struct MetadataName {
    #[prost(string, tag = "1")]
    name: String,
}

/// `PluginDataSeq` with each `plugin_data` (field 1) kept encoded.
#[derive(Clone, PartialEq, Message)]
struct EncodedSeq {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    plugin_data: Vec<Bytes>,
}

/// What the catch-up's decision reads of an `AccessRequestV3` (field numbers in
/// `docs/teleport-wire.md`): its id and pending expiry (`metadata`), and its roles, state,
/// times and how many reviews it has (`spec`). Maps are left out on purpose: Teleport's
/// encoder writes map entries in no fixed order, so equal requests can differ in bytes.
#[derive(Clone, PartialEq, Message)]
struct RequestView {
    #[prost(message, optional, tag = "4")]
    metadata: Option<MetadataView>,
    #[prost(message, optional, tag = "5")]
    spec: Option<SpecView>,
}

#[derive(Clone, PartialEq, Message)]
struct MetadataView {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "6")]
    expires: Option<prost_types::Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
struct SpecView {
    #[prost(string, repeated, tag = "2")]
    roles: Vec<String>,
    #[prost(int32, tag = "3")]
    state: i32,
    #[prost(message, optional, tag = "4")]
    created: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "5")]
    expires: Option<prost_types::Timestamp>,
    /// Counted, not read.
    #[prost(bytes = "bytes", repeated, tag = "12")]
    reviews: Vec<Bytes>,
}

/// `PluginDataV3.spec` (field 5) → `entries` (field 1), each plugin's `data` (field 1) kept
/// as its encoded key/value pairs.
#[derive(Clone, PartialEq, Message)]
struct PluginDataView {
    #[prost(message, optional, tag = "5")]
    spec: Option<PluginSpecView>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginSpecView {
    #[prost(map = "string, message", tag = "1")]
    entries: HashMap<String, PluginEntryView>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginEntryView {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    data: Vec<Bytes>,
}

fn hasher() -> foldhash::quality::FoldHasher {
    foldhash::quality::FixedState::with_seed(DIGEST_SEED).build_hasher()
}

fn write_time(h: &mut impl Hasher, t: Option<&prost_types::Timestamp>) {
    match t {
        Some(t) => {
            h.write_u8(1);
            h.write_i64(t.seconds);
            h.write_i32(t.nanos);
        }
        None => h.write_u8(0),
    }
}

impl Encoded {
    /// The resource's name (a request's id; for plugin data, the id of its request).
    pub fn name(&self) -> Result<String, prost::DecodeError> {
        Ok(NameOnly::decode(self.0.clone())?
            .metadata
            .unwrap_or_default()
            .name)
    }

    /// An access request's id, and a 64-bit digest of what the catch-up's decision reads
    /// of it (see [`RequestView`]): equal for requests that decide alike, in this process.
    pub fn request_digest(&self) -> Result<(String, u64), prost::DecodeError> {
        let v = RequestView::decode(self.0.clone())?;
        let (metadata, spec) = (v.metadata.unwrap_or_default(), v.spec.unwrap_or_default());
        let mut h = hasher();
        h.write(metadata.name.as_bytes());
        write_time(&mut h, metadata.expires.as_ref());
        h.write_usize(spec.roles.len());
        for role in &spec.roles {
            h.write_usize(role.len());
            h.write(role.as_bytes());
        }
        h.write_i32(spec.state);
        write_time(&mut h, spec.created.as_ref());
        write_time(&mut h, spec.expires.as_ref());
        h.write_usize(spec.reviews.len());
        Ok((metadata.name, h.finish()))
    }

    /// A 64-bit digest of `plugin`'s key/value pairs in this plugin data, whatever order
    /// they were encoded in (`None`'s digest when the plugin has no entry).
    pub fn plugin_digest(&self, plugin: &str) -> Result<Option<u64>, prost::DecodeError> {
        let v = PluginDataView::decode(self.0.clone())?;
        let Some(entry) = v.spec.and_then(|mut s| s.entries.remove(plugin)) else {
            return Ok(None);
        };
        if entry.data.is_empty() {
            return Ok(None);
        }
        // A sum of each pair's digest: the same pairs in any order give the same digest.
        let sum = entry.data.iter().fold(0u64, |acc, pair| {
            let mut h = hasher();
            h.write(pair);
            acc.wrapping_add(h.finish())
        });
        Ok(Some(sum ^ (entry.data.len() as u64).rotate_left(32)))
    }

    /// Decoded as an access request.
    pub fn request(&self) -> Result<AccessRequest, prost::DecodeError> {
        types::AccessRequestV3::decode(self.0.clone()).map(convert::request_from_proto)
    }

    /// Decoded as plugin data: `plugin`'s entry, `None` when it has none (or an empty one).
    pub fn plugin_data(&self, plugin: &str) -> Result<Option<RawData>, prost::DecodeError> {
        let d = types::PluginDataV3::decode(self.0.clone())?;
        Ok(plugin_entry(d, plugin))
    }
}

/// Any fixed seed: digests are only compared within one process.
const DIGEST_SEED: u64 = 0x7465_6c65_706f_7274;

/// `plugin`'s non-empty entry of one resource's plugin data.
pub(super) fn plugin_entry(d: types::PluginDataV3, plugin: &str) -> Option<RawData> {
    let data: RawData = d.spec?.entries.remove(plugin)?.data.into_iter().collect();
    (!data.is_empty()).then_some(data)
}

/// Sends the request message encoded with prost and hands back each answer message's bytes
/// undecoded.
#[derive(Clone, Copy, Default)]
struct RawCodec<E>(std::marker::PhantomData<E>);

struct RawEncoder<E>(std::marker::PhantomData<E>);
struct RawDecoder;

impl<E: Message + Send + 'static> Codec for RawCodec<E> {
    type Encode = E;
    type Decode = Bytes;
    type Encoder = RawEncoder<E>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl<E: Message> Encoder for RawEncoder<E> {
    type Item = E;
    type Error = tonic::Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("encoding the request: {e}")))
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

const GET_ACCESS_REQUESTS: &str = "/proto.AuthService/GetAccessRequestsV2";
const GET_PLUGIN_DATA: &str = "/proto.AuthService/GetPluginData";

impl TeleportClient {
    /// Hands every access request matching `filter` to `f` as it arrives, still encoded, so
    /// a listing of many requests is never held whole. Returns how many there were. On an
    /// error, `f` has seen only part of the listing.
    pub async fn each_encoded_request(
        &self,
        filter: &RequestFilter,
        mut f: impl FnMut(Encoded) + Send,
    ) -> Result<usize, TeleportError> {
        let mut grpc = self.raw.clone();
        let wire = types::AccessRequestFilter {
            id: filter.id.clone().unwrap_or_default(),
            user: filter.user.clone().unwrap_or_default(),
            state: filter.state.unwrap_or_default().to_i32(),
        };
        let budget = self.opts.list_timeout;
        let collect = async move {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static(GET_ACCESS_REQUESTS);
            let mut stream = grpc
                .server_streaming(tonic::Request::new(wire), path, RawCodec::default())
                .await?
                .into_inner();
            let mut n = 0;
            while let Some(r) = stream.next().await {
                f(Encoded(r?));
                n += 1;
            }
            Ok::<_, tonic::Status>(n)
        };
        match tokio::time::timeout(budget, collect).await {
            Ok(r) => r.map_err(TeleportError::from),
            Err(_) => Err(TeleportError::timeout("GetAccessRequestsV2", budget)),
        }
    }

    /// Every request's plugin data (of every plugin), still encoded, by request id: what the
    /// catch-up compares against the requests' listing.
    pub async fn list_encoded_plugin_data(
        &self,
        plugin: &str,
    ) -> Result<HashMap<String, Encoded>, TeleportError> {
        let mut grpc = self.raw.clone();
        let filter = types::PluginDataFilter {
            kind: KIND_ACCESS_REQUEST.into(),
            resource: String::new(),
            plugin: plugin.into(),
        };
        let req = self.req(filter);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static(GET_PLUGIN_DATA);
            let body = grpc.unary(req, path, RawCodec::default()).await?;
            // What tonic answers for a message its codec cannot decode.
            let seq = EncodedSeq::decode(body.into_inner())
                .map_err(|e| tonic::Status::internal(format!("unreadable plugin data: {e}")))?;
            Ok(tonic::Response::new(seq))
        };
        let seq = self.unary("GetPluginData", call).await?;
        let mut out = HashMap::with_capacity(seq.plugin_data.len());
        for d in seq.plugin_data {
            let d = Encoded(d);
            match d.name() {
                Ok(id) => {
                    out.insert(id, d);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "skipping unreadable plugin data in the listing")
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, user: &str) -> Encoded {
        let r = types::AccessRequestV3 {
            kind: "access_request".into(),
            version: "v3".into(),
            metadata: Some(types::Metadata {
                name: id.into(),
                revision: "r1".into(),
                ..Default::default()
            }),
            spec: Some(types::AccessRequestSpecV3 {
                user: user.into(),
                roles: vec!["editor".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        Encoded(r.encode_to_vec().into())
    }

    #[test]
    fn the_name_is_read_without_the_rest_and_matches_the_full_decoding() {
        let e = request("req-1", "alice");
        assert_eq!(e.name().unwrap(), "req-1");
        let r = e.request().unwrap();
        assert_eq!((r.id.as_str(), r.user.as_str()), ("req-1", "alice"));
    }

    #[test]
    fn a_request_digest_follows_what_the_decision_reads_and_nothing_else() {
        let digest = |e: Encoded| e.request_digest().unwrap();
        let (id, d) = digest(request("a", "u"));
        assert_eq!(id, "a");
        assert_eq!(d, digest(request("a", "u")).1);
        // The user is not read by the decision; the id, roles, state and reviews are.
        assert_eq!(d, digest(request("a", "v")).1);
        assert_ne!(d, digest(request("b", "u")).1);
        let with = |f: &dyn Fn(&mut types::AccessRequestV3)| {
            let mut r = types::AccessRequestV3::decode(request("a", "u").0).unwrap();
            f(&mut r);
            digest(Encoded(r.encode_to_vec().into())).1
        };
        assert_ne!(d, with(&|r| r.spec.as_mut().unwrap().state = 2));
        assert_ne!(
            d,
            with(&|r| r.spec.as_mut().unwrap().roles.push("admin".into()))
        );
        assert_ne!(
            d,
            with(&|r| r.spec.as_mut().unwrap().reviews.push(Default::default()))
        );
        assert_ne!(
            d,
            with(
                &|r| r.spec.as_mut().unwrap().created = Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0
                })
            )
        );
        assert_ne!(
            d,
            with(&|r| r.metadata.as_mut().unwrap().expires = Some(Default::default()))
        );
    }

    #[test]
    fn a_plugin_digest_ignores_the_order_pairs_came_in_but_not_their_values() {
        // Two encodings of the same map in both orders, as Go's map iteration may write them.
        let pair = |k: &str, v: &str| {
            let mut b = Vec::new();
            prost::encoding::string::encode(1, &k.to_string(), &mut b);
            prost::encoding::string::encode(2, &v.to_string(), &mut b);
            b
        };
        let data = |pairs: &[(&str, &str)]| {
            let mut entry = Vec::new();
            for (k, v) in pairs {
                prost::encoding::bytes::encode(1, &pair(k, v), &mut entry);
            }
            let mut map_entry = Vec::new();
            prost::encoding::string::encode(1, &"mattermost".to_string(), &mut map_entry);
            prost::encoding::bytes::encode(2, &entry, &mut map_entry);
            let mut spec = Vec::new();
            prost::encoding::bytes::encode(1, &map_entry, &mut spec);
            let mut out = Vec::new();
            prost::encoding::bytes::encode(5, &spec, &mut out);
            Encoded(out.into())
        };
        let ab = data(&[("a", "1"), ("b", "2")])
            .plugin_digest("mattermost")
            .unwrap();
        let ba = data(&[("b", "2"), ("a", "1")])
            .plugin_digest("mattermost")
            .unwrap();
        assert!(ab.is_some());
        assert_eq!(ab, ba);
        let changed = data(&[("a", "1"), ("b", "3")])
            .plugin_digest("mattermost")
            .unwrap();
        assert_ne!(ab, changed);
        let fewer = data(&[("a", "1")]).plugin_digest("mattermost").unwrap();
        assert_ne!(ab, fewer);
        assert_eq!(data(&[("a", "1")]).plugin_digest("slack").unwrap(), None);
        // And the generated types read the same bytes as the same map.
        let full = data(&[("b", "2"), ("a", "1")])
            .plugin_data("mattermost")
            .unwrap()
            .unwrap();
        assert_eq!(full.len(), 2);
    }

    #[test]
    fn a_listing_keeps_each_entry_encoded_and_its_plugins_entry_decodes() {
        let entry = |id: &str, value: &str| types::PluginDataV3 {
            kind: "plugin_data".into(),
            sub_kind: "access_request".into(),
            metadata: Some(types::Metadata {
                name: id.into(),
                ..Default::default()
            }),
            spec: Some(types::PluginDataSpecV3 {
                entries: [(
                    "mattermost".to_string(),
                    types::PluginDataEntry {
                        data: [("user".to_string(), value.to_string())].into(),
                    },
                )]
                .into(),
            }),
            ..Default::default()
        };
        let seq = crate::teleport::wire::proto::PluginDataSeq {
            plugin_data: vec![entry("r1", "alice"), entry("r2", "bob")],
        };
        let listed = EncodedSeq::decode(Bytes::from(seq.encode_to_vec())).unwrap();
        let names: Vec<String> = listed
            .plugin_data
            .into_iter()
            .map(|b| {
                let e = Encoded(b);
                let data = e.plugin_data("mattermost").unwrap().unwrap();
                assert!(e.plugin_data("slack").unwrap().is_none());
                format!("{}={}", e.name().unwrap(), data["user"])
            })
            .collect();
        assert_eq!(names, ["r1=alice", "r2=bob"]);
    }
}
