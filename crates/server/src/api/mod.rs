//! HTTP: one router module per dialect over the same runtime.

mod bk_sops;
mod error;
mod flowable;
mod format;
mod input;
mod platform;
mod tokens;
mod worker;

pub(crate) use error::{ApiError, FlowableError};

use crate::runtime::Runtime;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

/// Where the bk-sops API lives; it takes app credentials instead of a user's.
pub(crate) const BK_SOPS_PREFIX: &str = "/api/c/compapi/";

/// The largest request body accepted (a large BPMN model fits; anything bigger is refused).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The whole HTTP API.
pub fn router(runtime: Runtime) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .merge(platform::routes())
        .merge(worker::routes())
        .merge(flowable::routes())
        .merge(tokens::routes())
        .merge(bk_sops::routes())
        .fallback(
            |uri: axum::http::Uri| async move { error::ApiError::not_found(format!("no endpoint at {}", uri.path())) },
        )
        .layer(axum::middleware::from_fn_with_state(runtime.clone(), crate::auth::require))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(runtime)
}
