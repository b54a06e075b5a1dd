//! HTTP: one router module per dialect over the same runtime.

pub(crate) mod access;
mod bk_sops;
mod flowable;
pub(crate) mod format;
pub(crate) mod health;
mod input;
mod intake;
mod openapi;
pub(crate) mod platform;
mod tokens;
mod worker;

pub(crate) use crate::error::{ApiError, FlowableError};

use crate::auth::Authenticator;
use crate::runtime::Runtime;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::FromRef;
use std::sync::Arc;

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

/// A 405 says, in the dialect's shape, which methods the path takes (axum's own is empty),
/// and keeps its `Allow` header.
async fn method_not_allowed(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.run(req).await;
    if response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let allowed = allow.as_ref().and_then(|a| a.to_str().ok()).unwrap_or("none");
    let message = format!("{method} is not allowed on {path}; it takes {allowed}");
    let mut answer = in_dialect(&path, ApiError::with_status(response.status(), message));
    if let Some(allow) = allow {
        answer.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    answer
}

/// The metrics' part of the OpenAPI document.
fn metrics_api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(metrics))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// `GET /metrics`: the counters in the Prometheus text format, to any signed-in user.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "The counters", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
async fn metrics(axum::extract::State(rt): axum::extract::State<Runtime>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let roster = &rt.board().roster;
    rt.metrics().set_workers(roster.len(), &roster.per_topic(100));
    let now = crate::runtime::now_ms();
    match rt.store().waiting_jobs(now).await {
        Ok(waiting) => rt.metrics().set_waiting(&waiting, now),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the jobs waiting"),
    }
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(axum::http::header::CONTENT_TYPE, kind)], rt.metrics().render()).into_response()
}

/// What handlers reach: the runtime, and who may call.
#[derive(Clone)]
pub(crate) struct App {
    runtime: Runtime,
    auth: Arc<Authenticator>,
}

impl FromRef<App> for Runtime {
    fn from_ref(app: &App) -> Runtime {
        app.runtime.clone()
    }
}

impl FromRef<App> for Arc<Authenticator> {
    fn from_ref(app: &App) -> Arc<Authenticator> {
        app.auth.clone()
    }
}

/// The whole HTTP API.
pub fn router(runtime: Runtime, limits: &crate::HttpLimits, anonymous: Option<crate::Anonymous>) -> Router {
    let auth = Arc::new(Authenticator::new(runtime.store().clone(), anonymous));
    let routes = Router::new()
        .merge(health::routes())
        .route("/metrics", axum::routing::get(metrics))
        .merge(platform::routes())
        .merge(worker::routes())
        .merge(flowable::routes())
        .merge(tokens::routes())
        .merge(bk_sops::routes())
        .merge(openapi::routes())
        .merge(crate::console::routes())
        .fallback(|uri: axum::http::Uri| async move {
            let path = uri.path();
            in_dialect(path, ApiError::not_found(format!("no endpoint at {path}")))
        })
        .layer(axum::middleware::from_fn_with_state(runtime.clone(), access::authorize))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), access::require))
        .layer(axum::middleware::from_fn_with_state(limits.body_timeout, intake::intake))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(runtime.clone(), crate::access_log::log))
        .with_state(App { runtime, auth });
    // Around the whole router, where a 405 carries the `Allow` header the router adds.
    Router::new().fallback_service(routes).layer(axum::middleware::from_fn(method_not_allowed))
}
