//! Probes for whoever runs the server (a load balancer, Kubernetes, systemd): no credentials,
//! and the version in every answer.
//!
//! `GET /health/live` (and `GET /health`) says the process answers HTTP; `GET /health/ready`
//! says it can take work: its committer runs and the database answers a query (migrations
//! ran before the server listened). Not ready is 503, with the reason.

use crate::runtime::Runtime;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

/// The paths that need no credentials.
pub(crate) const PATHS: [&str; 3] = ["/health", "/health/live", "/health/ready"];

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route("/health", get(live)).route("/health/live", get(live)).route("/health/ready", get(ready))
}

/// The probes' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(live, ready))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// How the server is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` (it answers), `ready` (it takes work) or `unavailable`.
    #[schema(example = "ready")]
    status: &'static str,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The server's version.
    version: &'static str,
}

#[utoipa::path(get, path = "/health/live", tag = "health", security(()),
    responses((status = 200, description = "The process answers HTTP", body = Health)))]
async fn live() -> Json<Health> {
    Json(Health { status: "ok", reason: None, version: VERSION })
}

#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "It takes work: its committer runs and the database answers", body = Health),
        (status = 503, description = "It does not take work, and why", body = Health),
    ))]
async fn ready(State(rt): State<Runtime>) -> (StatusCode, Json<Health>) {
    match rt.unready().await {
        None => (StatusCode::OK, Json(Health { status: "ready", reason: None, version: VERSION })),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "unavailable", reason: Some(reason), version: VERSION }),
        ),
    }
}
