//! Teleport Auth Service client: credentials ([`identity`]), mTLS ([`tls`]), transport
//! ([`connect`], through a Proxy: [`proxy`]), the typed client ([`client`]) and its watch events ([`events`]); wire
//! messages are generated from `proto/` into [`wire`] and mapped to [`crate::access`] types
//! in [`convert`].

pub mod client;
pub mod connect;
pub mod convert;
mod error;
pub mod events;
pub mod identity;
mod params;
pub mod proxy;
pub mod tls;
/// Generated messages and stubs (the `teleport-mattermost-proto` crate).
pub use teleport_mattermost_proto as wire;

pub use client::{
    API_VERSION, ClientOptions, NewReview, PingInfo, PluginDataClient, RequestFilter,
    TeleportClient, version_at_least,
};
pub use connect::{ChannelOptions, Dialer, DirectDialer};
pub use error::TeleportError;
pub use events::{EventStream, WatchEvent, WatchKind, WatchRequest};
pub use identity::{Identity, IdentityError};
pub use proxy::{AutoDialer, ConnectPath, ProxyInfo, ProxyOptions, Reachability};
pub use tls::{TlsIdentity, TlsSource};
