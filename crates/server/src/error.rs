//! The platform dialect's errors: one status per kind, and a body that says what was wrong.

use crate::runtime::RuntimeError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowstone_engine::EngineError;
use flowstone_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer of the platform API: `{"status": 404, "error": "Not Found", "message": …}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// For a 429: how long the caller must wait (sent as `Retry-After`).
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    /// A 429: the caller must wait `wait` before trying again.
    pub(crate) fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self { retry_after: Some(wait), ..Self::with_status(StatusCode::TOO_MANY_REQUESTS, message) }
    }

    /// Its answer in a dialect's shape: `body` makes the body from the status and message,
    /// and a 429 gets its `Retry-After`.
    pub(crate) fn respond(self, body: impl FnOnce(StatusCode, String) -> Response) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "request failed");
        }
        let wait = self.retry_after;
        let mut response = body(self.status, self.message);
        if let Some(wait) = wait {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.max(1).into());
        }
        response
    }

    /// Its status and message as one line, for a page that lists refusals among successes.
    pub(crate) fn line(&self) -> String {
        format!("refused ({}): {}", self.status.as_u16(), self.message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::CONFLICT, message)
    }

    /// Keeps the status of a request-body rejection (400, 413, 415) with our error body.
    pub(crate) fn rejected(rejection: impl IntoResponse + std::fmt::Display) -> Self {
        let message = rejection.to_string();
        Self::with_status(rejection.into_response().status(), message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn not_implemented(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::NOT_IMPLEMENTED, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::FORBIDDEN, message)
    }

    /// Its status and message, for answers that report several outcomes in one body.
    pub(crate) fn parts(self) -> (StatusCode, String) {
        (self.status, self.message)
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        let status = match &e {
            RuntimeError::Model(_) | RuntimeError::NotValid(_) => StatusCode::BAD_REQUEST,
            RuntimeError::Conflict(EngineError::TooLarge(_)) => StatusCode::BAD_REQUEST,
            RuntimeError::Conflict(EngineError::NotYours { .. }) => StatusCode::FORBIDDEN,
            RuntimeError::InUse(_) | RuntimeError::Exists(_) => StatusCode::CONFLICT,
            RuntimeError::Forbidden(_) => StatusCode::FORBIDDEN,
            RuntimeError::NotFound(_) => StatusCode::NOT_FOUND,
            RuntimeError::Conflict(_) => StatusCode::CONFLICT,
            RuntimeError::Store(_) | RuntimeError::NotCommitted(_) | RuntimeError::Stopped => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RuntimeError::Start(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::with_status(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        RuntimeError::Store(e).into()
    }
}

/// The body of a platform or worker-protocol error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The HTTP status again.
    #[schema(example = 404)]
    status: u16,
    /// Its reason phrase.
    #[schema(example = "Not Found")]
    error: &'static str,
    /// What was wrong, naming the field, id or state.
    #[schema(example = "process instance 0190… not found")]
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(|status, message| {
            let error = status.canonical_reason().unwrap_or_default();
            (status, Json(ErrorBody { status: status.as_u16(), error, message })).into_response()
        })
    }
}

/// The body of a Flowable REST error: the status phrase first and what was wrong second.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowableErrorBody {
    #[schema(example = "Not found")]
    message: &'static str,
    #[schema(example = "Could not find a task with id '42'.")]
    exception: String,
}

/// An error answer in Flowable REST's shape: `{"message": "Not found", "exception": "…"}`,
/// the status phrase first and what was wrong second.
#[derive(Debug)]
pub(crate) struct FlowableError(pub(crate) ApiError);

impl<E: Into<ApiError>> From<E> for FlowableError {
    fn from(e: E) -> Self {
        FlowableError(e.into())
    }
}

impl IntoResponse for FlowableError {
    fn into_response(self) -> Response {
        self.0.respond(|status, exception| {
            let message = match status {
                StatusCode::BAD_REQUEST => "Bad request",
                StatusCode::FORBIDDEN => "Forbidden",
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::CONFLICT => "Conflict",
                other => other.canonical_reason().unwrap_or("Error"),
            };
            (status, Json(FlowableErrorBody { message, exception })).into_response()
        })
    }
}
