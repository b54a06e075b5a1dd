//! `identity/users`, `identity/groups` and group members: the people tasks are assigned to
//! and who sign in.
//!
//! Anyone signed in may read them; changing them takes the `admin` user, except that users
//! may change their own record (their password, say).

use super::{FlowableResult, Paging, Params, SERVICE, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::auth::{ADMIN, Caller, hash_password};
use crate::auth::{ADMIN_GROUP, Role};
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use flowstone_store::{GroupRow, IdentityColumn, IdentityQuery, UserRow};
use serde_json::{Map, Value, json};

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/identity/{path}");
    Router::new()
        .route(&at("users"), get(list_users).post(create_user))
        .route(&at("users/{id}"), get(get_user).put(update_user).delete(delete_user))
        .route(&at("users/{id}/picture"), get(not_kept).put(not_kept))
        .route(&at("users/{id}/info"), get(not_kept).post(not_kept))
        .route(&at("users/{id}/info/{key}"), get(not_kept).put(not_kept).delete(not_kept))
        .route(&at("groups"), get(list_groups).post(create_group))
        .route(&at("groups/{id}"), get(get_group).put(update_group).delete(delete_group))
        .route(&at("groups/{id}/members"), post(add_member))
        .route(&at("groups/{id}/members/{user}"), delete(remove_member))
}

/// Pictures and info entries of users are not kept.
async fn not_kept() -> FlowableResult<()> {
    Err(ApiError::not_implemented("Flowstone keeps no user pictures or info entries; see the README's known gaps")
        .into())
}

/// Only `admin` changes users and groups; a user may change their own record.
fn may_change(caller: &Caller, own: Option<&str>) -> Result<(), ApiError> {
    if caller.role == Role::Admin || own == Some(caller.user.as_str()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "User '{}' may not change users and groups; only administrators ('{ADMIN}' and members of '{ADMIN_GROUP}') may",
            caller.user
        )))
    }
}

fn user_json(origin: &str, u: &UserRow) -> Value {
    json!({
        "id": u.id,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "displayName": u.display_name,
        "url": service_url(origin, &format!("identity/users/{}", u.id)),
        "email": u.email,
        "tenantId": u.tenant_id,
        "pictureUrl": null,
    })
}

fn group_json(origin: &str, g: &GroupRow) -> Value {
    json!({
        "id": g.id,
        "url": service_url(origin, &format!("identity/groups/{}", g.id)),
        "name": g.name,
        "type": g.kind,
    })
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a user with id '{id}'."))
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a group with id '{id}'."))
}

/// The text of an optional field: a string, null or absent.
fn text(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!("'{field}' must be text, not {other}"))),
    }
}

/// A required, non-empty id field.
fn required_id(body: &Map<String, Value>, field: &str, what: &str) -> Result<String, ApiError> {
    text(body, field)?
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("Id cannot be null for {what}.")))
}

/// Copies the fields present in `body` onto a user; a password is hashed.
async fn apply_user(user: &mut UserRow, body: &Map<String, Value>) -> Result<(), ApiError> {
    copy_present(
        body,
        [
            ("firstName", &mut user.first_name),
            ("lastName", &mut user.last_name),
            ("displayName", &mut user.display_name),
            ("email", &mut user.email),
            ("tenantId", &mut user.tenant_id),
        ],
    )?;
    if body.contains_key("password") {
        user.password_hash = match text(body, "password")? {
            Some(password) if !password.is_empty() => {
                Some(hash_password(password).await.map_err(ApiError::unavailable)?)
            }
            _ => None,
        };
    }
    Ok(())
}

async fn get_user(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let user = rt.store().user(&id).await?.ok_or_else(|| user_not_found(&id))?;
    Ok(Json(user_json(&origin(&headers), &user)))
}

/// Filters of `GET identity/users`: (parameter, column, is a `LIKE`).
const USER_FILTERS: [(&str, IdentityColumn, bool); 7] = [
    ("id", IdentityColumn::Id, false),
    ("firstName", IdentityColumn::FirstName, false),
    ("lastName", IdentityColumn::LastName, false),
    ("email", IdentityColumn::Email, false),
    ("firstNameLike", IdentityColumn::FirstName, true),
    ("lastNameLike", IdentityColumn::LastName, true),
    ("emailLike", IdentityColumn::Email, true),
];

/// Filters of `GET identity/groups`.
const GROUP_FILTERS: [(&str, IdentityColumn, bool); 4] = [
    ("id", IdentityColumn::Id, false),
    ("name", IdentityColumn::Name, false),
    ("type", IdentityColumn::Type, false),
    ("nameLike", IdentityColumn::Name, true),
];

/// The paging and query of a list's query string: `filters`, the membership parameter
/// `member`, and a sort among `sorts` (parameter, column).
fn list_query(
    q: Option<&str>,
    filters: &[(&str, IdentityColumn, bool)],
    member: &str,
    sorts: &[(&'static str, IdentityColumn)],
) -> Result<(Paging<'static>, IdentityQuery), ApiError> {
    let params = query_map(q)?;
    let p = Params(&params);
    if p.text("potentialStarter").is_some() {
        return Err(ApiError::not_implemented(
            "'potentialStarter' needs candidate starters, which Flowstone does not keep",
        ));
    }
    let names: Vec<&'static str> = sorts.iter().map(|(name, _)| *name).collect();
    let paging = Paging::read(&p, &names)?;
    let mut query = IdentityQuery { member: p.text(member), ..IdentityQuery::default() };
    for (param, column, like) in filters {
        if let Some(value) = p.text(param) {
            if *like { query.like.push((*column, value)) } else { query.equal.push((*column, value)) }
        }
    }
    let column = sorts.iter().find(|(name, _)| *name == paging.sort).map_or(IdentityColumn::Id, |(_, c)| *c);
    query.order = (column, paging.descending);
    Ok((paging, query))
}

const USER_SORTS: [(&str, IdentityColumn); 4] = [
    ("id", IdentityColumn::Id),
    ("firstName", IdentityColumn::FirstName),
    ("lastName", IdentityColumn::LastName),
    ("email", IdentityColumn::Email),
];

const GROUP_SORTS: [(&str, IdentityColumn); 3] =
    [("id", IdentityColumn::Id), ("name", IdentityColumn::Name), ("type", IdentityColumn::Type)];

async fn list_users(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    let (paging, query) = list_query(q.as_deref(), &USER_FILTERS, "memberOfGroup", &USER_SORTS)?;
    let (users, total) = rt.store().list_users(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(users.iter().map(|u| user_json(&origin, u)).collect(), total)))
}

async fn create_user(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    let mut user = UserRow { id: required_id(&body, "id", "user creation")?, ..UserRow::default() };
    apply_user(&mut user, &body).await?;
    if !rt.store().create_user(&user).await? {
        return Err(ApiError::conflict(format!("A user with id '{}' already exists.", user.id)).into());
    }
    Ok((StatusCode::CREATED, Json(user_json(&origin(&headers), &user))))
}

async fn update_user(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    may_change(&caller, Some(&id))?;
    let body = json_object(&body, false)?;
    if body.contains_key("tenantId") && caller.role != Role::Admin {
        return Err(ApiError::forbidden(format!(
            "User '{}' may not change the tenant of a user; only administrators may",
            caller.user
        ))
        .into());
    }
    let mut user = rt.store().user(&id).await?.ok_or_else(|| user_not_found(&id))?;
    apply_user(&mut user, &body).await?;
    if !rt.store().update_user(&user).await? {
        return Err(ApiError::conflict(format!("User '{id}' was deleted while it was being changed.")).into());
    }
    if body.contains_key("password") {
        // A new password ends every session the old one opened.
        rt.store().delete_user_tokens(&id).await?;
    }
    auth.forget();
    Ok(Json(user_json(&origin(&headers), &user)))
}

async fn delete_user(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> FlowableResult<StatusCode> {
    may_change(&caller, None)?;
    if !rt.store().delete_user(&id).await? {
        return Err(user_not_found(&id).into());
    }
    auth.forget();
    Ok(StatusCode::NO_CONTENT)
}

async fn get_group(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let group = rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    Ok(Json(group_json(&origin(&headers), &group)))
}

async fn list_groups(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    let (paging, query) = list_query(q.as_deref(), &GROUP_FILTERS, "member", &GROUP_SORTS)?;
    let (groups, total) = rt.store().list_groups(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(groups.iter().map(|g| group_json(&origin, g)).collect(), total)))
}

/// Copies the fields present in `body` onto a group.
fn apply_group(group: &mut GroupRow, body: &Map<String, Value>) -> Result<(), ApiError> {
    copy_present(body, [("name", &mut group.name), ("type", &mut group.kind)])
}

/// Sets each slot whose field is present in `body` (null clears it).
fn copy_present<const N: usize>(
    body: &Map<String, Value>,
    slots: [(&str, &mut Option<String>); N],
) -> Result<(), ApiError> {
    for (field, slot) in slots {
        if body.contains_key(field) {
            *slot = text(body, field)?;
        }
    }
    Ok(())
}

async fn create_group(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    let mut group = GroupRow { id: required_id(&body, "id", "group creation")?, ..GroupRow::default() };
    apply_group(&mut group, &body)?;
    if !rt.store().create_group(&group).await? {
        return Err(ApiError::conflict(format!("A group with id '{}' already exists.", group.id)).into());
    }
    Ok((StatusCode::CREATED, Json(group_json(&origin(&headers), &group))))
}

async fn update_group(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    let mut group = rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    apply_group(&mut group, &body)?;
    if !rt.store().update_group(&group).await? {
        return Err(ApiError::conflict(format!("Group '{id}' was deleted while it was being changed.")).into());
    }
    Ok(Json(group_json(&origin(&headers), &group)))
}

async fn delete_group(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> FlowableResult<StatusCode> {
    may_change(&caller, None)?;
    if !rt.store().delete_group(&id).await? {
        return Err(group_not_found(&id).into());
    }
    // Roles and candidate groups come from memberships.
    auth.forget();
    Ok(StatusCode::NO_CONTENT)
}

fn member_json(origin: &str, group: &str, user: &str) -> Value {
    json!({
        "userId": user,
        "groupId": group,
        "url": service_url(origin, &format!("identity/groups/{group}/members/{user}")),
    })
}

async fn add_member(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    let user = text(&body, "userId")?
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("UserId cannot be null."))?;
    if !rt.store().add_member(&id, &user).await? {
        return Err(ApiError::conflict(format!("User '{user}' is already part of group '{id}'.")).into());
    }
    auth.forget();
    Ok((StatusCode::CREATED, Json(member_json(&origin(&headers), &id, &user))))
}

async fn remove_member(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    Path((id, user)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    may_change(&caller, None)?;
    rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    if !rt.store().remove_member(&id, &user).await? {
        return Err(ApiError::not_found(format!("User '{user}' is not part of group '{id}'.")).into());
    }
    auth.forget();
    Ok(StatusCode::NO_CONTENT)
}
