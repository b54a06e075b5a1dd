//! Process-instance migration, as Flowable's REST API takes it: a migration document naming
//! the target version and activity mappings, for one instance
//! (`runtime/process-instances/{id}/migrate`) or every running instance of a version
//! (`repository/process-definitions/{id}/migrate`). `?dryRun=true` checks and answers what
//! would move, changing nothing (an addition: Flowable validates through its Java API).

use super::repository::definition_not_found;
use super::{FlowableResult, SERVICE};
use crate::api::input::{Body, json_object};
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use flowstone_store::{ModelQuery, ModelRow, Page, TenantFilter, TextFilter};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{SERVICE}/runtime/process-instances/{{id}}/migrate"), post(migrate_instance))
        .route(&format!("{SERVICE}/repository/process-definitions/{{id}}/migrate"), post(migrate_definition))
}

/// The migration endpoints' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(migrate_instance, migrate_definition))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// A migration document, read: the target version and the activity mappings.
struct Document {
    target: Arc<ModelRow>,
    mappings: BTreeMap<String, String>,
}

/// Fields of a migration document that Flowable runs in its JVM or that do not move yet.
const NOT_DONE: [&str; 8] = [
    "preUpgradeScript",
    "preUpgradeJavaDelegate",
    "preUpgradeJavaDelegateExpression",
    "postUpgradeScript",
    "postUpgradeJavaDelegate",
    "postUpgradeJavaDelegateExpression",
    "processInstanceVariables",
    "enableActivityMappingValidation",
];

/// One id from a mapping's `{single}` or a one-element `{many}`.
fn one(mapping: &Map<String, Value>, single: &str, many: &str) -> Result<String, ApiError> {
    let named = match (mapping.get(single), mapping.get(many)) {
        (Some(Value::String(id)), None) => Some(id.clone()),
        (None, Some(Value::Array(ids))) if ids.len() == 1 => ids[0].as_str().map(str::to_owned),
        (None, Some(Value::Array(_))) => {
            return Err(ApiError::bad_request(format!(
                "`{many}` with more than one element (a one-to-many or many-to-one mapping) does not move yet"
            )));
        }
        _ => None,
    };
    named.filter(|id| !id.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request(format!("each of `activityMappings` needs `{single}` (an element id), in {mapping:?}"))
    })
}

async fn document(rt: &Runtime, body: &axum::body::Bytes) -> Result<Document, ApiError> {
    let doc = json_object(body, false)?;
    if let Some(field) = NOT_DONE.iter().find(|f| doc.contains_key(**f)) {
        return Err(ApiError::bad_request(format!("`{field}` of a migration document is not supported")));
    }
    let text = |field: &str| doc.get(field).and_then(Value::as_str).map(str::to_owned);
    let target = match (text("toProcessDefinitionId"), text("toProcessDefinitionKey")) {
        (Some(id), _) => rt.model(&id).await?.ok_or_else(|| definition_not_found(&id))?,
        (None, Some(key)) => match doc.get("toProcessDefinitionVersion") {
            None | Some(Value::Null) => rt.latest_model(&key).await?,
            Some(version) => {
                let wanted = version.as_i64().ok_or_else(|| {
                    ApiError::bad_request(format!("`toProcessDefinitionVersion` must be a number, not {version}"))
                })?;
                let query = ModelQuery {
                    version: Some(wanted),
                    key: TextFilter { equals: Some(key.clone()), like: None },
                    tenant: TenantFilter {
                        tenant: TextFilter { equals: text("toProcessDefinitionTenantId"), like: None },
                        without: false,
                    },
                    ..ModelQuery::default()
                };
                let one = Page { offset: 0, limit: 1 };
                rt.store().query_models(&query, one).await?.0.pop().map(Arc::new)
            }
        }
        .ok_or_else(|| ApiError::not_found(format!("no process definition of key '{key}' and that version")))?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "a migration document names `toProcessDefinitionId`, or `toProcessDefinitionKey` (and `toProcessDefinitionVersion`)",
            ));
        }
    };
    let mut mappings = BTreeMap::new();
    match doc.get("activityMappings") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for mapping in list {
                let Value::Object(mapping) = mapping else {
                    return Err(ApiError::bad_request(format!(
                        "each of `activityMappings` is an object, not {mapping}"
                    )));
                };
                let known = ["fromActivityId", "fromActivityIds", "toActivityId", "toActivityIds"];
                if let Some(other) = mapping.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(ApiError::bad_request(format!("`{other}` of an activity mapping is not supported")));
                }
                mappings.insert(
                    one(mapping, "fromActivityId", "fromActivityIds")?,
                    one(mapping, "toActivityId", "toActivityIds")?,
                );
            }
        }
        Some(other) => return Err(ApiError::bad_request(format!("`activityMappings` is a list, not {other}"))),
    }
    Ok(Document { target, mappings })
}

fn dry_run(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "dryRun=true"))
}

/// What a dry run found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DryRun {
    /// The target process definition.
    to_process_definition_id: String,
    /// Each element the instance stands at and where it goes (one instance), or the
    /// instances that would move (a whole version).
    moves: Vec<Value>,
}

/// `POST runtime/process-instances/{id}/migrate`: moves a running instance to another version
/// of its process definition; its elements go to those of the same id, or as
/// `activityMappings` say.
#[utoipa::path(post, path = "/flowable-rest/service/runtime/process-instances/{id}/migrate", tag = "flowable-instances",
    params(("id" = String, Path, description = "The process instance"), ("dryRun" = Option<bool>, Query, description = "Check only, and answer what would move")),
    request_body(content = Object, description = "A migration document: `toProcessDefinitionId` (or `toProcessDefinitionKey` and `toProcessDefinitionVersion`), `activityMappings` [{fromActivityId, toActivityId}]"),
    responses(
        (status = 200, description = "Moved (no body), or with `dryRun` what would move", body = DryRun),
        (status = 400, description = "It cannot move: every reason, naming the elements; or a malformed document", body = FlowableErrorBody),
        (status = 404, description = "No process instance, or no target definition, of these ids", body = FlowableErrorBody),
    ))]
async fn migrate_instance(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Body(body): Body,
) -> FlowableResult<Response> {
    if rt.instance(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("Could not find a process instance with id '{id}'.")).into());
    }
    let Document { target, mappings } = document(&rt, &body).await?;
    let dry = dry_run(query.as_deref());
    let to = target.id.clone();
    let plan = rt.migrate(&id, target, mappings, dry).await?;
    let moves = plan.moves.into_iter().map(|(from, to)| serde_json::json!({"from": from, "to": to})).collect();
    Ok(answered(dry, to, moves))
}

/// A migration's answer: no body once moved; after a dry run, what would move.
fn answered(dry: bool, to_process_definition_id: String, moves: Vec<Value>) -> Response {
    if dry {
        Json(DryRun { to_process_definition_id, moves }).into_response()
    } else {
        axum::http::StatusCode::OK.into_response()
    }
}

/// `POST repository/process-definitions/{id}/migrate`: moves every running instance of this
/// version to the document's target; all are checked first, and none moves unless each can.
#[utoipa::path(post, path = "/flowable-rest/service/repository/process-definitions/{id}/migrate", tag = "flowable-repository",
    params(("id" = String, Path, description = "The process definition whose instances move"), ("dryRun" = Option<bool>, Query, description = "Check only, and answer which would move")),
    request_body(content = Object, description = "A migration document, as for one instance"),
    responses(
        (status = 200, description = "Moved (no body), or with `dryRun` the instances that would move", body = DryRun),
        (status = 400, description = "Some instance cannot move (each named with why), or a malformed document", body = FlowableErrorBody),
        (status = 404, description = "No process definition of this id, or no target", body = FlowableErrorBody),
    ))]
async fn migrate_definition(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    Body(body): Body,
) -> FlowableResult<Response> {
    if rt.model(&id).await?.is_none() {
        return Err(definition_not_found(&id).into());
    }
    let Document { target, mappings } = document(&rt, &body).await?;
    let dry = dry_run(query.as_deref());
    let to = target.id.clone();
    let moved = rt.migrate_version(&id, target, &mappings, dry).await?;
    Ok(answered(dry, to, moved.into_iter().map(Value::from).collect()))
}
