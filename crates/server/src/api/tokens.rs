//! Bearer tokens: a signed-in user asks for one, and revokes the one they call with.

use super::input::{Body, json_object};
use crate::auth::{Caller, new_token};
use crate::error::{ApiError, ErrorBody};
use crate::runtime::{Runtime, now_ms};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use flowstone_store::TokenRow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// How long a token works unless asked otherwise: a day.
const DEFAULT_LIFETIME_S: i64 = 24 * 3600;
/// The longest a token may work: a year.
const MAX_LIFETIME_S: i64 = 365 * 24 * 3600;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route("/auth/tokens", post(issue)).route("/auth/tokens/current", delete(revoke))
}

/// The tokens' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(issue, revoke))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// `POST /auth/tokens`'s body (it may be empty).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
struct TokenRequest {
    /// How long the token works, in seconds: 1 to a year (default a day).
    #[schema(minimum = 1, maximum = 31536000)]
    expires_in_seconds: Option<i64>,
}

impl TokenRequest {
    /// Reads a body that may be empty or `null` (no fields).
    fn read(body: &axum::body::Bytes) -> Result<Self, ApiError> {
        let body = json_object(body, true)?;
        let expires_in_seconds = match body.get("expiresInSeconds") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().filter(|s| (1..=MAX_LIFETIME_S).contains(s)).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "expiresInSeconds must be a whole number from 1 to {MAX_LIFETIME_S}, not {v}"
                ))
            })?),
        };
        Ok(TokenRequest { expires_in_seconds })
    }
}

/// A new bearer token: shown once, kept only as a hash.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct IssuedToken {
    token: String,
    user_id: String,
    /// RFC 3339.
    expires_at: String,
}

/// `POST /auth/tokens` `{"expiresInSeconds": n}` (optional): a new token for the caller.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth", request_body(content = Option<TokenRequest>, content_type = "application/json"),
    responses(
        (status = 201, description = "The token", body = IssuedToken),
        (status = 400, description = "A lifetime outside 1 s to a year, or a malformed body", body = ErrorBody),
    ))]
async fn issue(
    State(runtime): State<Runtime>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let lifetime = TokenRequest::read(&body.0)?.expires_in_seconds.unwrap_or(DEFAULT_LIFETIME_S);
    let token = new_token()?;
    let now = now_ms();
    let row = TokenRow {
        hash: crate::auth::token_hash(&token),
        user_id: caller.user.clone(),
        created_at: now,
        expires_at: now + lifetime * 1000,
    };
    runtime.store().create_token(&row).await?;
    let expires = jiff::Timestamp::from_millisecond(row.expires_at).map(|t| t.to_string()).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(IssuedToken { token, user_id: caller.user, expires_at: expires })))
}

/// `DELETE /auth/tokens/current`: revokes the token this request came with.
#[utoipa::path(delete, path = "/auth/tokens/current", tag = "auth",
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The request signed in with a password, not a token", body = ErrorBody),
    ))]
async fn revoke(
    State(runtime): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    let hash = caller.token.ok_or_else(|| {
        ApiError::bad_request("this request signed in with a password, not a token; call with the token to revoke")
    })?;
    runtime.store().delete_token(&hash).await?;
    auth.forget();
    Ok(StatusCode::NO_CONTENT)
}
