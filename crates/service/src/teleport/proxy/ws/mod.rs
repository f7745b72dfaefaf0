//! WebSocket (RFC 6455) as Teleport's ALPN connection upgrade uses it: binary frames carrying
//! a TLS stream ([`stream::WsStream`]) over the framing in [`frame`].

pub mod frame;
pub mod stream;

pub use frame::Role;
pub use stream::WsStream;
