//! The Mattermost callback routes: `POST /mattermost/action` (buttons), `POST
//! /mattermost/dialog` (reason dialogs) and `POST|GET /mattermost/command` (`/teleport`).
//! They exist from start-up: 404 when review is disabled, 403 outside the allowed sources,
//! 503 until the review service is ready; then the raw body goes to [`ReviewService`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::BODY_LIMIT;
use crate::config::IpNet;
use crate::mattermost::integration::CommandRequest;
use crate::review::{CallbackError, ReviewMetrics, ReviewService};

/// Shared by the three routes; [`Callbacks::set_ready`] hands over the service once
/// Teleport and Mattermost are connected.
#[derive(Clone)]
pub struct Callbacks {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    allowed: Vec<IpNet>,
    metrics: Option<ReviewMetrics>,
    service: tokio::sync::OnceCell<ReviewService>,
}

impl Callbacks {
    /// Routes that serve once [`Callbacks::set_ready`] is called; `metrics` counts refused
    /// callbacks.
    pub fn enabled(allowed: Vec<IpNet>, metrics: ReviewMetrics) -> Self {
        Self::new(true, allowed, Some(metrics))
    }

    fn new(enabled: bool, allowed: Vec<IpNet>, metrics: Option<ReviewMetrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled,
                allowed,
                metrics,
                service: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Routes that answer 404 (in-chat review is off).
    pub fn disabled() -> Self {
        Self::new(false, Vec::new(), None)
    }

    /// Start-up finished: the routes now serve. A second call is ignored.
    pub fn set_ready(&self, service: ReviewService) {
        if self.inner.service.set(service).is_err() {
            tracing::warn!("the review service was already set; keeping the first");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.inner.service.initialized()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/mattermost/action", post(action))
            .route("/mattermost/dialog", post(dialog))
            .route("/mattermost/command", post(command).get(command))
            .with_state(self.clone())
    }

    /// The checks every callback passes before its body is read.
    fn gate(&self, route: &'static str, req: &Request) -> Result<&ReviewService, Closed> {
        let i = &self.inner;
        if !i.enabled {
            return Err(Closed::Disabled);
        }
        if !i.allowed.is_empty() {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            if !peer.is_some_and(|ip| i.allowed.iter().any(|n| n.contains(ip))) {
                self.refused(route, "source");
                tracing::warn!(http.route = route, peer = ?peer, "refused a callback from outside `http.callback_allowed_sources`");
                return Err(Closed::Source);
            }
        }
        i.service.get().ok_or_else(|| {
            self.refused(route, "not_ready");
            Closed::Starting
        })
    }

    fn refused(&self, route: &str, reason: &str) {
        if let Some(m) = &self.inner.metrics {
            m.refused(route, reason);
        }
    }
}

/// Why a callback route is closed to this request.
#[derive(Debug, Clone, Copy)]
enum Closed {
    Disabled,
    Source,
    Starting,
}

impl IntoResponse for Closed {
    fn into_response(self) -> Response {
        match self {
            Closed::Disabled => (
                StatusCode::NOT_FOUND,
                "in-chat review is disabled (`review.enabled = false`)\n",
            )
                .into_response(),
            Closed::Source => (StatusCode::FORBIDDEN, "forbidden\n").into_response(),
            Closed::Starting => (
                StatusCode::SERVICE_UNAVAILABLE,
                "starting: not connected to Teleport and Mattermost yet; try again in a few seconds\n",
            )
                .into_response(),
        }
    }
}

fn refusal(e: CallbackError) -> Response {
    match e {
        CallbackError::BadRequest(m) => (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
        CallbackError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response(),
        CallbackError::Forbidden(m) => (StatusCode::FORBIDDEN, format!("{m}\n")).into_response(),
    }
}

async fn body(req: Request) -> Result<Bytes, Response> {
    axum::body::to_bytes(req.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large or unreadable\n",
            )
                .into_response()
        })
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

/// The two JSON callbacks: a button click and a dialog submission.
#[derive(Clone, Copy)]
enum JsonRoute {
    Action,
    Dialog,
}

async fn action(State(cb): State<Callbacks>, req: Request) -> Response {
    signed_json(cb, JsonRoute::Action, req).await
}

async fn dialog(State(cb): State<Callbacks>, req: Request) -> Response {
    signed_json(cb, JsonRoute::Dialog, req).await
}

/// Gate (source, readiness), read the body, and hand it to the service, which verifies the
/// signature before it parses anything else.
async fn signed_json(cb: Callbacks, route: JsonRoute, req: Request) -> Response {
    let name = match route {
        JsonRoute::Action => "action",
        JsonRoute::Dialog => "dialog",
    };
    let svc = match cb.gate(name, &req) {
        Ok(s) => s,
        Err(closed) => return closed.into_response(),
    };
    let bytes = match body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let reply = match route {
        JsonRoute::Action => svc.on_action(&bytes).await.map(|r| json(&r)),
        JsonRoute::Dialog => svc.on_dialog(&bytes).await.map(|r| json(&r)),
    };
    reply.unwrap_or_else(refusal)
}

/// Mattermost sends the form as the body (POST) or the query string (GET).
async fn command(State(cb): State<Callbacks>, req: Request) -> Response {
    let svc = match cb.gate("command", &req) {
        Ok(s) => s,
        Err(closed) => return closed.into_response(),
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let form = if req.method() == Method::GET {
        Bytes::from(req.uri().query().unwrap_or("").to_string())
    } else {
        match body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    if let Err(e) = svc.authorize_command(authorization.as_deref(), &form) {
        return refusal(e);
    }
    let request: CommandRequest = match serde_urlencoded::from_bytes(&form) {
        Ok(r) => r,
        Err(e) => {
            return refusal(CallbackError::BadRequest(format!(
                "unexpected command form: {e}"
            )));
        }
    };
    json(&svc.on_command(&request).await)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::metrics::Metrics;

    fn request(path: &str, peer: &str) -> Request {
        let mut r = Request::builder()
            .method("POST")
            .uri(path)
            .body(Body::from("{}"))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        r
    }

    async fn status(cb: &Callbacks, path: &str, peer: &str) -> StatusCode {
        cb.router()
            .oneshot(request(path, peer))
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn routes_answer_404_when_review_is_disabled() {
        let cb = Callbacks::disabled();
        for path in [
            "/mattermost/action",
            "/mattermost/dialog",
            "/mattermost/command",
        ] {
            assert_eq!(
                status(&cb, path, "127.0.0.1:5000").await,
                StatusCode::NOT_FOUND
            );
        }
    }

    #[tokio::test]
    async fn routes_answer_503_until_the_service_is_ready() {
        let metrics = Metrics::new();
        let cb = Callbacks::enabled(vec![], ReviewMetrics::new(&metrics));
        for path in [
            "/mattermost/action",
            "/mattermost/dialog",
            "/mattermost/command",
        ] {
            assert_eq!(
                status(&cb, path, "127.0.0.1:5000").await,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        assert!(metrics.render().contains(
            "teleport_mattermost_callbacks_refused_total{reason=\"not_ready\",route=\"action\"} 1"
        ));
    }

    #[tokio::test]
    async fn peers_outside_the_allowed_sources_get_403_even_before_start_up() {
        let nets = vec![
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("2001:db8::/32").unwrap(),
        ];
        let cb = Callbacks::enabled(nets, ReviewMetrics::new(&Metrics::new()));
        assert_eq!(
            status(&cb, "/mattermost/action", "192.0.2.1:5000").await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&cb, "/mattermost/command", "[2001:db9::1]:5000").await,
            StatusCode::FORBIDDEN
        );
        // Inside: passes the source check, then waits for start-up.
        assert_eq!(
            status(&cb, "/mattermost/action", "10.1.2.3:5000").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(&cb, "/mattermost/dialog", "[2001:db8::7]:5000").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Without peer information the allow-list fails closed.
        let bare = Request::builder()
            .method("POST")
            .uri("/mattermost/action")
            .body(Body::empty())
            .unwrap();
        let r = cb.router().oneshot(bare).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_openapi_description_covers_every_callback_route() {
        let spec = include_str!("../../../../openapi/openapi.yaml");
        for route in [
            "/mattermost/action:",
            "/mattermost/dialog:",
            "/mattermost/command:",
        ] {
            assert!(
                spec.contains(route),
                "{route} is not in openapi/openapi.yaml"
            );
        }
        assert!(spec.contains("application/x-www-form-urlencoded"));
    }
}
