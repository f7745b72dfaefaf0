//! Teleport Auth Service client: identity files, mTLS, the typed gRPC client.

mod error;
pub mod wire;

pub use error::TeleportError;
