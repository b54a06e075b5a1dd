//! Bearer tokens: a signed-in user asks for one, and revokes the one they call with.

use super::input::{Body, json_object};
use crate::auth::{Caller, new_token};
use crate::error::ApiError;
use crate::runtime::{Runtime, now_ms};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use flowstone_store::TokenRow;
use serde_json::{Value, json};

/// How long a token works unless asked otherwise: a day.
const DEFAULT_LIFETIME_S: i64 = 24 * 3600;
/// The longest a token may work: a year.
const MAX_LIFETIME_S: i64 = 365 * 24 * 3600;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route("/auth/tokens", post(issue)).route("/auth/tokens/current", delete(revoke))
}

/// `POST /auth/tokens` `{"expiresInSeconds": n}` (optional): a new token for the caller.
async fn issue(
    State(runtime): State<Runtime>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = json_object(&body.0, true)?;
    let lifetime = match body.get("expiresInSeconds") {
        None | Some(Value::Null) => DEFAULT_LIFETIME_S,
        Some(v) => v.as_i64().filter(|s| (1..=MAX_LIFETIME_S).contains(s)).ok_or_else(|| {
            ApiError::bad_request(format!(
                "expiresInSeconds must be a whole number from 1 to {MAX_LIFETIME_S}, not {v}"
            ))
        })?,
    };
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
    Ok((StatusCode::CREATED, Json(json!({"token": token, "userId": caller.user, "expiresAt": expires}))))
}

/// `DELETE /auth/tokens/current`: revokes the token this request came with.
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
