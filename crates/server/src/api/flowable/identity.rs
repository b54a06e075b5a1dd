//! `identity/users`, `identity/groups` and group members: the people tasks are assigned to
//! and who sign in.
//!
//! Anyone signed in may read them; changing them takes the `admin` user, except that users
//! may change their own record (their password, say).

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::auth::{ADMIN, Caller, hash_password};
use crate::auth::{ADMIN_GROUP, Role};
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::Runtime;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use flowstone_store::{GroupRow, IdentityColumn, IdentityQuery, UserRow};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};

/// Paths of user parts Flowstone does not keep, and their methods.
const NOT_KEPT: [(&str, &[HttpMethod]); 3] = [
    ("users/{id}/picture", &[HttpMethod::Get, HttpMethod::Put]),
    ("users/{id}/info", &[HttpMethod::Get, HttpMethod::Post]),
    ("users/{id}/info/{key}", &[HttpMethod::Get, HttpMethod::Put, HttpMethod::Delete]),
];

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/identity/{path}");
    Router::new()
        .route(&at("users"), get(list_users).post(create_user))
        .route(&at("users/{id}"), get(get_user).put(update_user).delete(delete_user))
        .route(&at(NOT_KEPT[0].0), get(not_kept).put(not_kept))
        .route(&at(NOT_KEPT[1].0), get(not_kept).post(not_kept))
        .route(&at(NOT_KEPT[2].0), get(not_kept).put(not_kept).delete(not_kept))
        .route(&at("groups"), get(list_groups).post(create_group))
        .route(&at("groups/{id}"), get(get_group).put(update_group).delete(delete_group))
        .route(&at("groups/{id}/members"), post(add_member))
        .route(&at("groups/{id}/members/{user}"), delete(remove_member))
}

/// Identity's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_users,
        create_user,
        get_user,
        update_user,
        delete_user,
        list_groups,
        create_group,
        get_group,
        update_group,
        delete_group,
        add_member,
        remove_member
    ))]
    struct Api;
    let mut doc = <Api as utoipa::OpenApi>::openapi();
    for (path, methods) in NOT_KEPT {
        let refusal = ContentBuilder::new().schema(Some(Ref::from_schema_name("FlowableErrorBody"))).build();
        let answer = ResponseBuilder::new()
            .description("User pictures and info entries are not kept")
            .content("application/json", refusal)
            .build();
        let named = |name: &str, about: &str| {
            let text = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(about))
                .schema(Some(text))
                .build()
        };
        let mut op =
            OperationBuilder::new().tag("flowable-identity").response("501", answer).parameter(named("id", USER));
        if path.ends_with("{key}") {
            op = op.parameter(named("key", "The info entry"));
        }
        let op = op.build();
        doc.paths.add_path_operation(format!("{SERVICE}/identity/{path}"), methods.to_vec(), op);
    }
    doc
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

/// A user.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    url: String,
    email: Option<String>,
    tenant_id: Option<String>,
    #[schema(value_type = Option<String>)]
    picture_url: (),
}

impl User {
    fn of(origin: &str, u: &UserRow) -> User {
        User {
            id: u.id.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: u.display_name.clone(),
            url: service_url(origin, &format!("identity/users/{}", u.id)),
            email: u.email.clone(),
            tenant_id: u.tenant_id.clone(),
            picture_url: (),
        }
    }
}

/// A group.
#[derive(Serialize, ToSchema)]
struct Group {
    id: String,
    url: String,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Group {
    fn of(origin: &str, g: &GroupRow) -> Group {
        let url = service_url(origin, &format!("identity/groups/{}", g.id));
        Group { id: g.id.clone(), url, name: g.name.clone(), kind: g.kind.clone() }
    }
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a user with id '{id}'."))
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a group with id '{id}'."))
}

/// The text of an optional field (the body's table checked that it is text, null or absent).
fn text(body: &Map<String, Value>, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A required, non-empty id field.
fn required_id(body: &Map<String, Value>, field: &str, what: &str) -> Result<String, ApiError> {
    text(body, field)
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
    );
    if body.contains_key("password") {
        user.password_hash = match text(body, "password") {
            Some(password) if !password.is_empty() => {
                Some(hash_password(password).await.map_err(ApiError::unavailable)?)
            }
            _ => None,
        };
    }
    Ok(())
}

/// The path parameter naming a user.
const USER: &str = "The user";

/// The path parameter naming a group.
const GROUP: &str = "The group";

#[utoipa::path(get, path = "/flowable-rest/service/identity/users/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = USER)),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No user of this id", body = FlowableErrorBody),
    ))]
async fn get_user(State(rt): State<Runtime>, headers: HeaderMap, Path(id): Path<String>) -> FlowableResult<Json<User>> {
    let user = rt.store().user(&id).await?.ok_or_else(|| user_not_found(&id))?;
    Ok(Json(User::of(&origin(&headers), &user)))
}

/// Filters of `GET identity/users`.
const USER_FILTERS: [Filter; 8] = [
    filter("id", Kind::Text, "Only the user of this id"),
    filter("firstName", Kind::Text, "Only users of this first name"),
    filter("lastName", Kind::Text, "Only users of this last name"),
    filter("email", Kind::Text, "Only users of this e-mail"),
    filter("firstNameLike", Kind::Text, "Only users of a first name like this (`%` any run, `_` any character)"),
    filter("lastNameLike", Kind::Text, "Only users of a last name like this"),
    filter("emailLike", Kind::Text, "Only users of an e-mail like this"),
    filter("memberOfGroup", Kind::Text, "Only members of this group"),
];

/// Filters of `GET identity/groups`.
const GROUP_FILTERS: [Filter; 5] = [
    filter("id", Kind::Text, "Only the group of this id"),
    filter("name", Kind::Text, "Only groups of this name"),
    filter("type", Kind::Text, "Only groups of this type"),
    filter("nameLike", Kind::Text, "Only groups of a name like this"),
    filter("member", Kind::Text, "Only groups this user is a member of"),
];

/// The column a filter parameter compares, and whether as a `LIKE`.
fn column(param: &str) -> Option<(IdentityColumn, bool)> {
    let like = param.ends_with("Like");
    let column = match param.trim_end_matches("Like") {
        "id" => IdentityColumn::Id,
        "firstName" => IdentityColumn::FirstName,
        "lastName" => IdentityColumn::LastName,
        "email" => IdentityColumn::Email,
        "name" => IdentityColumn::Name,
        "type" => IdentityColumn::Type,
        _ => return None,
    };
    Some((column, like))
}

/// The paging and query of a list's query string: `filters` (the one without a column is the
/// membership), and a sort among `sorts`.
fn list_query(
    q: Option<&str>,
    filters: &[Filter],
    sorts: &[&'static str],
) -> Result<(Paging<'static>, IdentityQuery), ApiError> {
    let params = query_map(q)?;
    let p = Params(&params);
    if p.text("potentialStarter").is_some() {
        return Err(ApiError::not_implemented(
            "'potentialStarter' needs candidate starters, which Flowstone does not keep",
        ));
    }
    let paging = Paging::read(&p, sorts)?;
    let mut query = IdentityQuery::default();
    for f in filters {
        let Some(value) = p.text(f.name) else { continue };
        match column(f.name) {
            Some((column, true)) => query.like.push((column, value)),
            Some((column, false)) => query.equal.push((column, value)),
            None => query.member = Some(value),
        }
    }
    query.order = (column(paging.sort).map_or(IdentityColumn::Id, |(c, _)| c), paging.descending);
    Ok((paging, query))
}

const USER_SORTS: [&str; 4] = ["id", "firstName", "lastName", "email"];

const GROUP_SORTS: [&str; 3] = ["id", "name", "type"];

described!(
    /// The filters of the user list.
    UserFilters: USER_FILTERS, PAGING, [sort(&USER_SORTS)]
);

described!(
    /// The filters of the group list.
    GroupFilters: GROUP_FILTERS, PAGING, [sort(&GROUP_SORTS)]
);

#[utoipa::path(get, path = "/flowable-rest/service/identity/users", tag = "flowable-identity", params(UserFilters),
    responses(
        (status = 200, description = "A page of the users the filters leave", body = Listed<User>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_users(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<User>>> {
    let (paging, query) = list_query(q.as_deref(), &USER_FILTERS, &USER_SORTS)?;
    let (users, total) = rt.store().list_users(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(users.iter().map(|u| User::of(&origin, u)).collect(), total)))
}

/// A user's fields: those present are set (null clears one; an empty password leaves the
/// user unable to sign in).
const USER_FIELDS: [Filter; 7] = [
    filter("id", Kind::Text, "The login name (required to create)"),
    filter("firstName", Kind::Text, "First name"),
    filter("lastName", Kind::Text, "Last name"),
    filter("displayName", Kind::Text, "How the user is shown"),
    filter("email", Kind::Text, "E-mail address"),
    filter("tenantId", Kind::Text, "The tenant they belong to (administrators only)"),
    filter("password", Kind::Text, "Their password (kept hashed)"),
];

described!(
    /// A user to create or change.
    checked UserBody: USER_FIELDS
);

/// The answer when the caller may not change users and groups.
const NOT_ADMIN: &str = "Only administrators change users and groups (a user may change their own record)";

#[utoipa::path(post, path = "/flowable-rest/service/identity/users", tag = "flowable-identity", request_body = UserBody,
    responses(
        (status = 201, description = "The user made", body = User),
        (status = 400, description = "No id, or a field that is not text", body = FlowableErrorBody),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 409, description = "A user of this id exists", body = FlowableErrorBody),
    ))]
async fn create_user(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<User>)> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    UserBody::check(&body)?;
    let mut user = UserRow { id: required_id(&body, "id", "user creation")?, ..UserRow::default() };
    apply_user(&mut user, &body).await?;
    if !rt.store().create_user(&user).await? {
        return Err(ApiError::conflict(format!("A user with id '{}' already exists.", user.id)).into());
    }
    Ok((StatusCode::CREATED, Json(User::of(&origin(&headers), &user))))
}

/// A new password ends every session the old one opened.
#[utoipa::path(put, path = "/flowable-rest/service/identity/users/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = USER)), request_body = UserBody,
    responses(
        (status = 200, description = "The user as changed", body = User),
        (status = 400, description = "A field that is not text", body = FlowableErrorBody),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No user of this id", body = FlowableErrorBody),
    ))]
async fn update_user(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<User>> {
    may_change(&caller, Some(&id))?;
    let body = json_object(&body, false)?;
    UserBody::check(&body)?;
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
    Ok(Json(User::of(&origin(&headers), &user)))
}

#[utoipa::path(delete, path = "/flowable-rest/service/identity/users/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = USER)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No user of this id", body = FlowableErrorBody),
    ))]
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

#[utoipa::path(get, path = "/flowable-rest/service/identity/groups/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = GROUP)),
    responses(
        (status = 200, description = "The group", body = Group),
        (status = 404, description = "No group of this id", body = FlowableErrorBody),
    ))]
async fn get_group(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Group>> {
    let group = rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    Ok(Json(Group::of(&origin(&headers), &group)))
}

#[utoipa::path(get, path = "/flowable-rest/service/identity/groups", tag = "flowable-identity", params(GroupFilters),
    responses(
        (status = 200, description = "A page of the groups the filters leave", body = Listed<Group>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_groups(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Group>>> {
    let (paging, query) = list_query(q.as_deref(), &GROUP_FILTERS, &GROUP_SORTS)?;
    let (groups, total) = rt.store().list_groups(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(groups.iter().map(|g| Group::of(&origin, g)).collect(), total)))
}

/// A group's fields: those present are set (null clears one).
const GROUP_FIELDS: [Filter; 3] = [
    filter("id", Kind::Text, "Its id (required to create)"),
    filter("name", Kind::Text, "Its name"),
    filter("type", Kind::Text, "Its type"),
];

described!(
    /// A group to create or change.
    checked GroupBody: GROUP_FIELDS
);

/// Copies the fields present in `body` onto a group.
fn apply_group(group: &mut GroupRow, body: &Map<String, Value>) {
    copy_present(body, [("name", &mut group.name), ("type", &mut group.kind)]);
}

/// Sets each slot whose field is present in `body` (null clears it).
fn copy_present<const N: usize>(body: &Map<String, Value>, slots: [(&str, &mut Option<String>); N]) {
    for (field, slot) in slots {
        if body.contains_key(field) {
            *slot = text(body, field);
        }
    }
}

#[utoipa::path(post, path = "/flowable-rest/service/identity/groups", tag = "flowable-identity", request_body = GroupBody,
    responses(
        (status = 201, description = "The group made", body = Group),
        (status = 400, description = "No id, or a field that is not text", body = FlowableErrorBody),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 409, description = "A group of this id exists", body = FlowableErrorBody),
    ))]
async fn create_group(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Group>)> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    GroupBody::check(&body)?;
    let mut group = GroupRow { id: required_id(&body, "id", "group creation")?, ..GroupRow::default() };
    apply_group(&mut group, &body);
    if !rt.store().create_group(&group).await? {
        return Err(ApiError::conflict(format!("A group with id '{}' already exists.", group.id)).into());
    }
    Ok((StatusCode::CREATED, Json(Group::of(&origin(&headers), &group))))
}

#[utoipa::path(put, path = "/flowable-rest/service/identity/groups/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = GROUP)), request_body = GroupBody,
    responses(
        (status = 200, description = "The group as changed", body = Group),
        (status = 400, description = "A field that is not text", body = FlowableErrorBody),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No group of this id", body = FlowableErrorBody),
    ))]
async fn update_group(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Group>> {
    may_change(&caller, None)?;
    let body = json_object(&body, false)?;
    GroupBody::check(&body)?;
    let mut group = rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    apply_group(&mut group, &body);
    if !rt.store().update_group(&group).await? {
        return Err(ApiError::conflict(format!("Group '{id}' was deleted while it was being changed.")).into());
    }
    Ok(Json(Group::of(&origin(&headers), &group)))
}

#[utoipa::path(delete, path = "/flowable-rest/service/identity/groups/{id}", tag = "flowable-identity",
    params(("id" = String, Path, description = GROUP)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No group of this id", body = FlowableErrorBody),
    ))]
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

/// A user's membership of a group.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Member {
    user_id: String,
    group_id: String,
    url: String,
}

/// The user to add to a group.
#[derive(serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MemberRequest {
    /// Required.
    user_id: Option<String>,
}

#[utoipa::path(post, path = "/flowable-rest/service/identity/groups/{id}/members", tag = "flowable-identity",
    params(("id" = String, Path, description = GROUP)), request_body = MemberRequest,
    responses(
        (status = 201, description = "The membership made", body = Member),
        (status = 400, description = "No userId", body = FlowableErrorBody),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No group of this id", body = FlowableErrorBody),
        (status = 409, description = "The user is a member already", body = FlowableErrorBody),
    ))]
async fn add_member(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Member>)> {
    may_change(&caller, None)?;
    let req: MemberRequest = crate::api::worker::parse(&body)?;
    rt.store().group(&id).await?.ok_or_else(|| group_not_found(&id))?;
    let user =
        req.user_id.filter(|u| !u.trim().is_empty()).ok_or_else(|| ApiError::bad_request("UserId cannot be null."))?;
    if !rt.store().add_member(&id, &user).await? {
        return Err(ApiError::conflict(format!("User '{user}' is already part of group '{id}'.")).into());
    }
    auth.forget();
    let url = service_url(&origin(&headers), &format!("identity/groups/{id}/members/{user}"));
    Ok((StatusCode::CREATED, Json(Member { user_id: user, group_id: id, url })))
}

#[utoipa::path(delete, path = "/flowable-rest/service/identity/groups/{id}/members/{user}", tag = "flowable-identity",
    params(("id" = String, Path, description = GROUP), ("user" = String, Path, description = USER)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = NOT_ADMIN, body = FlowableErrorBody),
        (status = 404, description = "No group of this id, or the user is not a member", body = FlowableErrorBody),
    ))]
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
