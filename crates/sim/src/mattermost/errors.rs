//! Mattermost's error answers as the server sends them: an `AppError` JSON body with a stable
//! `id`, the English `message`, an empty `detailed_error` (developer mode off) and the request id.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the simulated API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            id,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    }

    /// What Mattermost answers whenever a permission check fails (it also masks missing posts).
    pub fn permission(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "api.context.permissions.app_error",
            format!("You do not have the appropriate permissions. (missing {permission})"),
        )
    }

    pub fn invalid_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_param.app_error",
            format!("Invalid {name} parameter."),
        )
    }

    pub fn invalid_body_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_body_param.app_error",
            format!("Invalid or missing {name} in request body."),
        )
    }

    pub fn invalid_url_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_url_param.app_error",
            format!("Invalid or missing {name} parameter in request URL."),
        )
    }

    pub fn missing_account() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "app.user.missing_account.const",
            "Unable to find the user.",
        )
    }

    pub fn unknown_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "api.context.404.app_error",
            "Sorry, we could not find the page.",
        )
    }

    pub fn internal(id: &'static str, message: &str) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, id, message)
    }

    /// The answer, with the request id in the body and the `X-Request-Id` header.
    pub fn into_response_with(self, request_id: &str) -> Response {
        let body = json!({
            "id": self.id,
            "message": self.message,
            "detailed_error": "",
            "request_id": request_id,
            "status_code": self.status.as_u16(),
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(v) = request_id.parse() {
            response.headers_mut().insert("x-request-id", v);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = super::ids::new_id();
        self.into_response_with(&request_id)
    }
}

/// The rate limiter's refusal as Go's `http.Error` writes it: plain text (not an AppError),
/// `nosniff`, and the four rate-limit headers (docs/mattermost-api.md, "Rate limiting").
pub(crate) fn limit_exceeded(verdict: &super::ratelimit::Verdict) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("x-content-type-options", "nosniff"),
        ],
        "limit exceeded\n",
    )
        .into_response();
    verdict.write_headers(response.headers_mut());
    response
}
