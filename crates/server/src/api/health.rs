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
use serde_json::{Value, json};

/// The paths that need no credentials.
pub(crate) const PATHS: [&str; 3] = ["/health", "/health/live", "/health/ready"];

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route("/health", get(live)).route("/health/live", get(live)).route("/health/ready", get(ready))
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok", "version": VERSION}))
}

async fn ready(State(rt): State<Runtime>) -> (StatusCode, Json<Value>) {
    match rt.unready().await {
        None => (StatusCode::OK, Json(json!({"status": "ready", "version": VERSION}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": reason, "version": VERSION})),
        ),
    }
}
