//! `repository/deployments` and `repository/process-definitions`: Flowable's view of the
//! models. A process definition is a stored model version; models deployed here and through
//! the platform API are the same models.
//!
//! Deployments and definitions are few, so their lists are filtered, sorted and paged here
//! over everything stored.

use super::{FlowableResult, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Extension, FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_store::{DeploymentRow, ModelRow, NewDeployment, Page};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Everything, for the lists filtered here.
const ALL: Page = Page { offset: 0, limit: u64::MAX / 2 };

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

use super::tasks::like;

/// Compares two optional texts, absent ones first.
fn by_text(a: Option<&str>, b: Option<&str>) -> Ordering {
    a.unwrap_or_default().cmp(b.unwrap_or_default())
}

/// One page of `rows` after sorting with `cmp`, in Flowable's envelope.
fn paged<T>(
    paging: &Paging<'_>,
    mut rows: Vec<T>,
    cmp: impl Fn(&T, &T) -> Ordering,
    show: impl Fn(&T) -> Value,
) -> Value {
    rows.sort_by(|a, b| if paging.descending { cmp(b, a) } else { cmp(a, b) });
    let total = rows.len() as u64;
    let data = rows.iter().skip(paging.start as usize).take(paging.size as usize).map(show).collect();
    paging.envelope(data, total)
}

/// Whether `value` passes the parameter `param` (equal) and `{param}Like` (a `LIKE` pattern).
fn text_filters(p: &Params<'_>, param: &str, value: Option<&str>) -> bool {
    p.text(param).is_none_or(|wanted| value == Some(wanted.as_str()))
        && p.text(&format!("{param}Like")).is_none_or(|pattern| like(value.unwrap_or_default(), &pattern))
}

/// Whether a tenant passes `tenantId`, `tenantIdLike` and `withoutTenantId`.
fn tenant_filters(p: &Params<'_>, tenant: Option<&str>) -> Result<bool, ApiError> {
    Ok(text_filters(p, "tenantId", tenant) && (p.flag("withoutTenantId")? != Some(true) || tenant.is_none()))
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
    let (all, _) = rt.store().list_deployments(ALL).await?;
    let mut rows = Vec::new();
    for d in all {
        let keep = text_filters(&p, "name", d.name.as_deref())
            && p.text("category").is_none_or(|c| d.category.as_deref() == Some(c.as_str()))
            && p.text("categoryNotEquals").is_none_or(|c| d.category.as_deref() != Some(c.as_str()))
            && tenant_filters(&p, d.tenant_id.as_deref())?;
        if keep {
            rows.push(d);
        }
    }
    let origin = origin(&headers);
    let sort = paging.sort;
    let cmp = |a: &DeploymentRow, b: &DeploymentRow| match sort {
        "name" => by_text(a.name.as_deref(), b.name.as_deref()),
        "deployTime" => a.deployed_at.cmp(&b.deployed_at),
        "tenantId" => by_text(a.tenant_id.as_deref(), b.tenant_id.as_deref()),
        _ => a.id.cmp(&b.id),
    };
    Ok(Json(paged(&paging, rows, cmp, |d| deployment_json(&origin, d))))
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

/// The tenant of each model met, read once per request.
pub(super) struct Tenants {
    by_deployment: HashMap<String, Option<String>>,
}

impl Tenants {
    pub(super) async fn read(rt: &Runtime) -> Result<Tenants, ApiError> {
        Ok(Tenants { by_deployment: tenants(rt).await? })
    }

    pub(super) async fn of_model(&self, rt: &Runtime, model_id: &str) -> Result<Option<String>, ApiError> {
        let model = rt.model(model_id).await?;
        Ok(model.and_then(|m| self.by_deployment.get(&m.deployment_id).cloned().flatten()))
    }
}

/// The tenants of deployments, by deployment id.
pub(super) async fn tenants(rt: &Runtime) -> Result<HashMap<String, Option<String>>, ApiError> {
    Ok(rt.store().list_deployments(ALL).await?.0.into_iter().map(|d| (d.id, d.tenant_id)).collect())
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
    let tenants = tenants(&rt).await?;
    let (all, _) = rt.store().list_models(None, None, ALL).await?;
    let latest_only = p.flag("latest")? == Some(true);
    let mut newest: HashMap<String, i64> = HashMap::new();
    for m in &all {
        let v = newest.entry(m.key.clone()).or_insert(m.version);
        *v = (*v).max(m.version);
    }
    let version = p.int("version")?;
    let tenant_of = |m: &ModelRow| tenants.get(&m.deployment_id).cloned().flatten();
    let mut rows = Vec::new();
    for m in all {
        let tenant = tenant_of(&m);
        let keep = version.is_none_or(|v| m.version == v)
            && text_filters(&p, "name", m.name.as_deref())
            && text_filters(&p, "key", Some(&m.key))
            && text_filters(&p, "resourceName", Some(&m.resource))
            && p.text("category").is_none()
            && p.text("categoryLike").is_none()
            && p.text("deploymentId").is_none_or(|d| m.deployment_id == d)
            && tenant_filters(&p, tenant.as_deref())?
            && (!latest_only || newest.get(&m.key) == Some(&m.version));
        if keep {
            rows.push(m);
        }
    }
    let origin = origin(&headers);
    let sort = paging.sort;
    let cmp = |a: &ModelRow, b: &ModelRow| match sort {
        "id" => a.id.cmp(&b.id),
        "key" => a.key.cmp(&b.key),
        "deploymentId" => a.deployment_id.cmp(&b.deployment_id),
        "version" => a.version.cmp(&b.version),
        "tenantId" => by_text(tenant_of(a).as_deref(), tenant_of(b).as_deref()),
        _ => by_text(a.name.as_deref(), b.name.as_deref()).then_with(|| a.id.cmp(&b.id)),
    };
    Ok(Json(paged(&paging, rows, cmp, |m| definition_json(&origin, m, tenant_of(m).as_deref()))))
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
