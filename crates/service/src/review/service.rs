//! The review service behind the Mattermost callbacks: one [`Pipeline`] shared by the
//! button and dialog callbacks and the slash command, built once from the validated config.

use std::sync::Arc;

use super::CallbackError;
use super::buttons::ButtonCallbacks;
use super::identity::TeleportDirectory;
use super::metrics::ReviewMetrics;
use super::pipeline::{ClusterFacts, Pipeline, Policy};
use super::slash::SlashCommand;
use crate::config::EnabledReview;
use crate::mattermost::MattermostClient;
use crate::mattermost::integration::{
    CommandRequest, CommandResponse, DialogSubmissionReply, PostActionResponse,
};
use crate::route::Routing;
use crate::signing::Signer;
use crate::teleport::TeleportClient;

/// The pipeline over the real clients.
pub type LivePipeline = Pipeline<TeleportClient, TeleportDirectory>;

/// Everything [`ReviewService::new`] needs.
pub struct ReviewParts {
    pub teleport: TeleportClient,
    pub mattermost: MattermostClient,
    pub config: EnabledReview,
    /// The bridge's routing (live rule cache), for `/teleport explain`.
    pub routing: Arc<Routing>,
    /// `[reminders]`, for `/teleport explain`'s schedule.
    pub reminders: Option<Arc<crate::remind::Reminders>>,
    pub cluster: ClusterFacts,
    pub metrics: ReviewMetrics,
}

/// Cheap to share: the HTTP handlers hold it behind an `Arc`.
pub struct ReviewService {
    buttons: ButtonCallbacks,
    slash: SlashCommand,
    metrics: ReviewMetrics,
}

impl std::fmt::Debug for ReviewService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewService")
            .field("cluster", &self.buttons.pipeline.policy().cluster)
            .field("dialog_url", &self.buttons.dialog_url.as_str())
            .finish_non_exhaustive()
    }
}

impl ReviewService {
    pub fn new(parts: ReviewParts) -> Self {
        let c = parts.config;
        let directory = TeleportDirectory::new(
            parts.teleport.clone(),
            parts.mattermost.clone(),
            &c.user_id_trait,
            c.allow_email_username_match,
        );
        let policy = Policy {
            require_reason: c.require_reason,
            link_only_roles: c.link_only_roles,
            cluster: parts.cluster,
        };
        let pipeline = Arc::new(Pipeline::new(
            parts.teleport.clone(),
            directory,
            policy,
            parts.metrics.clone(),
        ));
        Self {
            buttons: ButtonCallbacks {
                pipeline: pipeline.clone(),
                teleport: parts.teleport.clone(),
                mattermost: parts.mattermost,
                signer: Signer::new(c.signing_secret),
                dialog_url: c.dialog_url,
                metrics: parts.metrics.clone(),
            },
            slash: SlashCommand {
                pipeline,
                teleport: parts.teleport,
                tokens: c.command_tokens,
                user_id_trait: c.user_id_trait,
                routing: parts.routing,
                reminders: parts.reminders,
                metrics: parts.metrics.clone(),
            },
            metrics: parts.metrics,
        }
    }

    pub fn metrics(&self) -> &ReviewMetrics {
        &self.metrics
    }

    /// A button click (`POST /mattermost/action`).
    pub async fn on_action(&self, body: &[u8]) -> Result<PostActionResponse, CallbackError> {
        self.buttons.on_action(body).await
    }

    /// A reason dialog submission (`POST /mattermost/dialog`).
    pub async fn on_dialog(&self, body: &[u8]) -> Result<DialogSubmissionReply, CallbackError> {
        self.buttons.on_dialog(body).await
    }

    /// Checks the slash command's token before anything else of the form is read.
    pub fn authorize_command(
        &self,
        authorization: Option<&str>,
        form: &[u8],
    ) -> Result<(), CallbackError> {
        self.slash.authorize(authorization, form)
    }

    /// Runs an authorized `/teleport` command.
    pub async fn on_command(&self, req: &CommandRequest) -> CommandResponse {
        self.slash.run(req).await
    }
}
