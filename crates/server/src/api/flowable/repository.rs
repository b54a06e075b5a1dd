//! `repository/deployments` and `repository/process-definitions`: Flowable's view of the
//! models. A process definition is a stored model version; models deployed here and through
//! the platform API are the same models.
//!
//! Their lists are filtered, sorted and paged by the database (`DeploymentQuery`,
//! `ModelQuery`): a page reads one page of rows.

use super::{FlowableResult, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Extension, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_store::{
    DeploymentOrder, DeploymentQuery, DeploymentRow, ModelOrder, ModelQuery, ModelRow, NewDeployment, TenantFilter,
    TextFilter,
};
use serde_json::{Map, Value, json};

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/repository/{path}");
    Router::new()
        .route(&at("deployments"), get(list_deployments).post(create_deployment))
        .route(&at("deployments/{id}"), get(get_deployment).delete(delete_deployment))
        .route(&at("deployments/{id}/resources"), get(list_resources))
        .route(&at("deployments/{id}/resources/{*resource}"), get(get_resource))
        .route(&at("deployments/{id}/resourcedata/{*resource}"), get(resource_data))
        .route(&at("process-definitions"), get(list_definitions))
        .route(&at("process-definitions/{id}"), get(get_definition).put(change_definition))
        .route(&at("process-definitions/{id}/resourcedata"), get(definition_data))
}

/// A path segment as it appears in a URL.
fn encoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn deployment_json(origin: &str, d: &DeploymentRow) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "deploymentTime": iso_time(d.deployed_at),
        "category": d.category,
        "parentDeploymentId": d.id,
        "url": service_url(origin, &format!("repository/deployments/{}", d.id)),
        "tenantId": d.tenant_id,
    })
}

/// A process definition as Flowable shows it; `tenant` is its deployment's.
pub(super) fn definition_json(origin: &str, m: &ModelRow, tenant: Option<&str>) -> Value {
    json!({
        "id": m.id,
        "url": service_url(origin, &format!("repository/process-definitions/{}", m.id)),
        "key": m.key,
        "version": m.version,
        "name": m.name,
        "description": null,
        "tenantId": tenant,
        "deploymentId": m.deployment_id,
        "deploymentUrl": service_url(origin, &format!("repository/deployments/{}", m.deployment_id)),
        "resource": service_url(origin, &format!("repository/deployments/{}/resources/{}", m.deployment_id, encoded(&m.resource))),
        "diagramResource": null,
        "category": null,
        "graphicalNotationDefined": false,
        "suspended": false,
        "startFormDefined": false,
    })
}

fn deployment_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a deployment with id '{id}'."))
}

pub(super) fn definition_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a process definition with id '{id}'."))
}

/// A text parameter `param` (equal) and `{param}Like` (a `LIKE` pattern).
fn text_filter(p: &Params<'_>, param: &str) -> TextFilter {
    TextFilter { equals: p.text(param), like: p.text(&format!("{param}Like")) }
}

/// `tenantId`, `tenantIdLike` and `withoutTenantId`.
fn tenant_filter(p: &Params<'_>) -> Result<TenantFilter, ApiError> {
    Ok(TenantFilter { tenant: text_filter(p, "tenantId"), without: p.flag("withoutTenantId")? == Some(true) })
}

/// The query's parameters, held to the caller's tenant when they have one.
fn within_tenant(caller: &Caller, q: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let mut params = query_map(q)?;
    if let Some(tenant) = caller.tenant_limit() {
        params.insert("tenantId".into(), Value::String(tenant.to_owned()));
    }
    Ok(params)
}

async fn list_deployments(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    let params = within_tenant(&caller, q.as_deref())?;
    let p = Params(&params);
    let paging = Paging::read(&p, &["id", "name", "deployTime", "tenantId"])?;
    let query = DeploymentQuery {
        name: text_filter(&p, "name"),
        category: p.text("category"),
        category_not: p.text("categoryNotEquals"),
        tenant: tenant_filter(&p)?,
        order: match paging.sort {
            "name" => DeploymentOrder::Name,
            "deployTime" => DeploymentOrder::DeployTime,
            "tenantId" => DeploymentOrder::TenantId,
            _ => DeploymentOrder::Id,
        },
        descending: paging.descending,
    };
    let (rows, total) = rt.store().query_deployments(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(rows.iter().map(|d| deployment_json(&origin, d)).collect(), total)))
}

async fn get_deployment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let d = rt.store().deployment(&id).await?.ok_or_else(|| deployment_not_found(&id))?;
    Ok(Json(deployment_json(&origin(&headers), &d)))
}

/// `POST repository/deployments`: a multipart body of `.bpmn20.xml` / `.bpmn` files, with
/// `deploymentName`, `category` and `tenantId` as form fields or query parameters.
async fn create_deployment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    let origin = origin(request.headers());
    let mut fields = query_map(q.as_deref())?;
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("multipart/") {
        return Err(ApiError::bad_request("A deployment is a multipart/form-data body with the model files").into());
    }
    let mut form = Multipart::from_request(request, &()).await.map_err(ApiError::rejected)?;
    let malformed =
        |e: axum::extract::multipart::MultipartError| ApiError::bad_request(format!("malformed multipart body: {e}"));
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let file = field.file_name().map(str::to_owned);
        let data = field.bytes().await.map_err(malformed)?;
        match file {
            Some(file) => {
                if !(file.ends_with(".bpmn20.xml") || file.ends_with(".bpmn")) {
                    return Err(ApiError::bad_request(format!(
                        "File '{file}' is not a BPMN model: only .bpmn20.xml and .bpmn resources are deployed"
                    ))
                    .into());
                }
                let text = String::from_utf8(data.to_vec())
                    .map_err(|_| ApiError::bad_request(format!("File '{file}' is not UTF-8 text")))?;
                files.push((file, text));
            }
            None => {
                fields.insert(name, Value::String(String::from_utf8_lossy(&data).into_owned()));
            }
        }
    }
    if files.is_empty() {
        return Err(ApiError::bad_request("No file content was found in the request body.").into());
    }
    let p = Params(&fields);
    let deployment = NewDeployment {
        id: String::new(),
        name: p.text("deploymentName").or_else(|| files.first().map(|(name, _)| name.clone())),
        category: p.text("category"),
        tenant_id: p.text("tenantId").filter(|t| !t.is_empty()),
    };
    let deployment = match (caller.tenant_limit(), &deployment.tenant_id) {
        (Some(mine), Some(asked)) if mine != asked => {
            return Err(ApiError::forbidden(format!(
                "user '{}' may not deploy for tenant '{asked}': they belong to '{mine}'",
                caller.user
            ))
            .into());
        }
        (Some(mine), _) => NewDeployment { tenant_id: Some(mine.to_owned()), ..deployment },
        (None, _) => deployment,
    };
    let models = rt.deploy_files(deployment.clone(), &files).await?;
    let Some(first) = models.first() else {
        return Err(ApiError::bad_request("The files hold no executable process.").into());
    };
    let d = DeploymentRow {
        id: first.deployment_id.clone(),
        name: deployment.name,
        category: deployment.category,
        tenant_id: deployment.tenant_id,
        deployed_at: first.created_at,
    };
    Ok((StatusCode::CREATED, Json(deployment_json(&origin, &d))))
}

async fn delete_deployment(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> FlowableResult<StatusCode> {
    let params = query_map(q.as_deref())?;
    let cascade = Params(&params).flag("cascade")?.unwrap_or(false);
    rt.delete_deployment(&id, cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A deployment's resources: each file once, with the source it holds.
async fn resources(rt: &Runtime, id: &str) -> Result<Vec<(String, String)>, ApiError> {
    rt.store().deployment(id).await?.ok_or_else(|| deployment_not_found(id))?;
    let mut seen: Vec<(String, String)> = Vec::new();
    for m in rt.store().models_of_deployment(id).await? {
        if !seen.iter().any(|(name, _)| *name == m.resource) {
            seen.push((m.resource, m.source));
        }
    }
    seen.sort();
    Ok(seen)
}

fn resource_json(origin: &str, deployment: &str, name: &str) -> Value {
    let path = format!("repository/deployments/{deployment}");
    json!({
        "id": name,
        "url": service_url(origin, &format!("{path}/resources/{}", encoded(name))),
        "contentUrl": service_url(origin, &format!("{path}/resourcedata/{}", encoded(name))),
        "dataUrl": service_url(origin, &format!("{path}/resourcedata/{}", encoded(name))),
        "mediaType": "text/xml",
        "type": "processDefinition",
    })
}

async fn list_resources(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let origin = origin(&headers);
    let list = resources(&rt, &id).await?;
    Ok(Json(Value::Array(list.iter().map(|(name, _)| resource_json(&origin, &id, name)).collect())))
}

async fn one_resource(rt: &Runtime, id: &str, resource: &str) -> Result<String, ApiError> {
    resources(rt, id).await?.into_iter().find(|(name, _)| name == resource).map(|(_, source)| source).ok_or_else(|| {
        ApiError::not_found(format!("Could not find a resource with id '{resource}' in deployment '{id}'."))
    })
}

async fn get_resource(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, resource)): Path<(String, String)>,
) -> FlowableResult<Json<Value>> {
    one_resource(&rt, &id, &resource).await?;
    Ok(Json(resource_json(&origin(&headers), &id, &resource)))
}

fn xml(source: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], source).into_response()
}

async fn resource_data(
    State(rt): State<Runtime>,
    Path((id, resource)): Path<(String, String)>,
) -> FlowableResult<Response> {
    Ok(xml(one_resource(&rt, &id, &resource).await?))
}

/// The tenant of the deployment model `model_id` came in.
pub(super) async fn model_tenant(rt: &Runtime, model_id: &str) -> Result<Option<String>, ApiError> {
    Ok(rt.model(model_id).await?.and_then(|m| m.tenant_id.clone()))
}

async fn list_definitions(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    let params = within_tenant(&caller, q.as_deref())?;
    let p = Params(&params);
    let paging = Paging::read(&p, &["name", "id", "key", "category", "deploymentId", "version", "tenantId"])?;
    if p.flag("suspended")? == Some(true) {
        // No definition is ever suspended.
        return Ok(Json(paging.envelope(Vec::new(), 0)));
    }
    if p.text("category").is_some() || p.text("categoryLike").is_some() {
        // No definition has a category.
        return Ok(Json(paging.envelope(Vec::new(), 0)));
    }
    let query = ModelQuery {
        version: p.int("version")?,
        name: text_filter(&p, "name"),
        key: text_filter(&p, "key"),
        resource_name: text_filter(&p, "resourceName"),
        deployment_id: p.text("deploymentId"),
        tenant: tenant_filter(&p)?,
        latest: p.flag("latest")? == Some(true),
        order: match paging.sort {
            "id" => ModelOrder::Id,
            "key" => ModelOrder::Key,
            "deploymentId" => ModelOrder::DeploymentId,
            "version" => ModelOrder::Version,
            "tenantId" => ModelOrder::TenantId,
            _ => ModelOrder::Name,
        },
        descending: paging.descending,
    };
    let (rows, total) = rt.store().query_models(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(rows.iter().map(|m| definition_json(&origin, m, m.tenant_id.as_deref())).collect(), total)))
}

/// A model and its deployment's tenant.
async fn definition(rt: &Runtime, id: &str) -> Result<(ModelRow, Option<String>), ApiError> {
    let model = rt.model(id).await?.ok_or_else(|| definition_not_found(id))?;
    let tenant = rt.store().deployment(&model.deployment_id).await?.and_then(|d| d.tenant_id);
    Ok(((*model).clone(), tenant))
}

async fn get_definition(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let (model, tenant) = definition(&rt, &id).await?;
    Ok(Json(definition_json(&origin(&headers), &model, tenant.as_deref())))
}

/// Categories and suspension of definitions are not kept.
async fn change_definition(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<()> {
    definition(&rt, &id).await?;
    Err(ApiError::not_implemented("Flowstone does not suspend process definitions or change their category").into())
}

async fn definition_data(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Response> {
    Ok(xml(definition(&rt, &id).await?.0.source))
}
