//! HTTP: one router module per dialect over the same runtime.

mod bk_sops;
mod error;
mod flowable;
mod format;
pub(crate) mod health;
mod input;
mod intake;
mod platform;
mod tokens;
mod worker;

pub(crate) use error::{ApiError, FlowableError};

use crate::runtime::Runtime;
use axum::Router;
use axum::extract::DefaultBodyLimit;

/// Where the bk-sops API lives; it takes app credentials instead of a user's.
pub(crate) const BK_SOPS_PREFIX: &str = "/api/c/compapi/";

/// Where Flowable REST's APIs live.
pub(crate) const FLOWABLE_PREFIX: &str = "/flowable-rest/";

/// The largest request body accepted (a large BPMN model fits; anything bigger is refused).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// An error answered in the shape of the dialect whose route `path` is: bk-sops' envelope,
/// Flowable's `{message, exception}`, or the platform's.
pub(crate) fn in_dialect(path: &str, e: ApiError) -> axum::response::Response {
    use axum::response::IntoResponse;
    if path.starts_with(BK_SOPS_PREFIX) {
        bk_sops::refusal(e)
    } else if path.starts_with(FLOWABLE_PREFIX) {
        FlowableError(e).into_response()
    } else {
        e.into_response()
    }
}

/// The whole HTTP API.
pub fn router(runtime: Runtime, limits: &crate::HttpLimits) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(platform::routes())
        .merge(worker::routes())
        .merge(flowable::routes())
        .merge(tokens::routes())
        .merge(bk_sops::routes())
        .fallback(
            |uri: axum::http::Uri| async move { error::ApiError::not_found(format!("no endpoint at {}", uri.path())) },
        )
        .layer(axum::middleware::from_fn_with_state(runtime.clone(), crate::access::authorize))
        .layer(axum::middleware::from_fn_with_state(runtime.clone(), crate::auth::require))
        .layer(axum::middleware::from_fn_with_state(limits.body_timeout, intake::intake))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::access_log::log))
        .with_state(runtime)
}
