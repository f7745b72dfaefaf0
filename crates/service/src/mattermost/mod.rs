//! Mattermost: the REST v4 client the service posts with (typed errors, bounded retries that
//! honour rate limits, idempotent post creation, cached recipient resolution), the wire types
//! of integrations (buttons, dialogs, slash commands) and the rendering of posts.

mod api;
mod client;
pub mod error;
pub mod integration;
mod metrics;
pub mod model;
pub mod render;
mod resolve;
pub mod retry;
pub mod tls;

pub use client::{ClientBuildError, ClientOptions, MattermostClient};
pub use error::{AppError, MattermostError, Target, UserKey};
pub use resolve::{RecipientKind, ResolvedChannel};
pub use retry::{RetryPolicy, within};
