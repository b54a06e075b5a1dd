//! `repository/deployments` and `repository/process-definitions`: Flowable's view of the
//! models. A process definition is a stored model version; models deployed here and through
//! the platform API are the same models.
//!
//! Their lists are filtered, sorted and paged by the database (`DeploymentQuery`,
//! `ModelQuery`): a page reads one page of rows.

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
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
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

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
        .route(&at("process-definitions/{id}/image"), get(definition_image))
}

/// The repository's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_deployments,
        create_deployment,
        get_deployment,
        delete_deployment,
        list_resources,
        get_resource,
        resource_data,
        list_definitions,
        get_definition,
        change_definition,
        definition_data,
        definition_image
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
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

/// A deployment: the model files deployed together.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Deployment {
    id: String,
    name: Option<String>,
    deployment_time: Option<String>,
    category: Option<String>,
    parent_deployment_id: String,
    url: String,
    tenant_id: Option<String>,
}

impl Deployment {
    fn of(origin: &str, d: &DeploymentRow) -> Deployment {
        Deployment {
            id: d.id.clone(),
            name: d.name.clone(),
            deployment_time: iso_time(d.deployed_at),
            category: d.category.clone(),
            parent_deployment_id: d.id.clone(),
            url: service_url(origin, &format!("repository/deployments/{}", d.id)),
            tenant_id: d.tenant_id.clone(),
        }
    }
}

/// A process definition: one version of a model.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Definition {
    id: String,
    url: String,
    key: String,
    version: i64,
    name: Option<String>,
    #[schema(value_type = Option<String>)]
    description: (),
    /// Its deployment's tenant.
    tenant_id: Option<String>,
    deployment_id: String,
    deployment_url: String,
    /// Where its source is described.
    resource: String,
    #[schema(value_type = Option<String>)]
    diagram_resource: (),
    #[schema(value_type = Option<String>)]
    category: (),
    graphical_notation_defined: bool,
    /// Always false: nothing is suspended here.
    suspended: bool,
    start_form_defined: bool,
}

impl Definition {
    fn of(origin: &str, m: &ModelRow, tenant: Option<String>) -> Definition {
        let resource = format!("repository/deployments/{}/resources/{}", m.deployment_id, encoded(&m.resource));
        Definition {
            id: m.id.clone(),
            url: service_url(origin, &format!("repository/process-definitions/{}", m.id)),
            key: m.key.clone(),
            version: m.version,
            name: m.name.clone(),
            description: (),
            tenant_id: tenant,
            deployment_id: m.deployment_id.clone(),
            deployment_url: service_url(origin, &format!("repository/deployments/{}", m.deployment_id)),
            resource: service_url(origin, &resource),
            diagram_resource: (),
            category: (),
            graphical_notation_defined: false,
            suspended: false,
            start_form_defined: false,
        }
    }
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

/// The tenant filters of the repository's lists.
const TENANT_FILTERS: [Filter; 3] = [
    filter("tenantId", Kind::Text, "Only those of this tenant"),
    filter("tenantIdLike", Kind::Text, "Only those of a tenant like this (`%` any run, `_` any character)"),
    filter("withoutTenantId", Kind::Flag, "Only those of no tenant"),
];

const DEPLOYMENT_SORTS: [&str; 4] = ["id", "name", "deployTime", "tenantId"];

/// The filters of the deployment list.
const DEPLOYMENT_FILTERS: [Filter; 4] = [
    filter("name", Kind::Text, "Only deployments of this name"),
    filter("nameLike", Kind::Text, "Only deployments of a name like this"),
    filter("category", Kind::Text, "Only deployments of this category"),
    filter("categoryNotEquals", Kind::Text, "Only deployments of another category"),
];

described!(
    /// The filters of the deployment list.
    DeploymentFilters: DEPLOYMENT_FILTERS, TENANT_FILTERS, PAGING, [sort(&DEPLOYMENT_SORTS)]
);

const DEFINITION_SORTS: [&str; 7] = ["name", "id", "key", "category", "deploymentId", "version", "tenantId"];

/// The filters of the process definition list.
const DEFINITION_FILTERS: [Filter; 12] = [
    filter("version", Kind::Whole, "Only definitions of this version"),
    filter("name", Kind::Text, "Only definitions of this name"),
    filter("nameLike", Kind::Text, "Only definitions of a name like this"),
    filter("key", Kind::Text, "Only definitions of this key"),
    filter("keyLike", Kind::Text, "Only definitions of a key like this"),
    filter("resourceName", Kind::Text, "Only definitions from this file"),
    filter("resourceNameLike", Kind::Text, "Only definitions from a file like this"),
    filter("deploymentId", Kind::Text, "Only definitions of this deployment"),
    filter("latest", Kind::Flag, "Only the newest version of each key"),
    filter("suspended", Kind::Flag, "true: only suspended ones (none: nothing is suspended here)"),
    filter("category", Kind::Text, "Only definitions of this category (none has one)"),
    filter("categoryLike", Kind::Text, "Only definitions of a category like this (none has one)"),
];

described!(
    /// The filters of the process definition list.
    DefinitionFilters: DEFINITION_FILTERS, TENANT_FILTERS, PAGING, [sort(&DEFINITION_SORTS)]
);

/// The query's parameters, held to the caller's tenant when they have one.
fn within_tenant(caller: &Caller, q: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let mut params = query_map(q)?;
    if let Some(tenant) = caller.tenant_limit() {
        params.insert("tenantId".into(), Value::String(tenant.to_owned()));
    }
    Ok(params)
}

#[utoipa::path(get, path = "/flowable-rest/service/repository/deployments", tag = "flowable-repository", params(DeploymentFilters),
    responses(
        (status = 200, description = "A page of the deployments the filters leave", body = Listed<Deployment>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_deployments(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Deployment>>> {
    let params = within_tenant(&caller, q.as_deref())?;
    let p = Params(&params);
    let paging = Paging::read(&p, &DEPLOYMENT_SORTS)?;
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
    Ok(Json(paging.envelope(rows.iter().map(|d| Deployment::of(&origin, d)).collect(), total)))
}

/// The path parameter naming a deployment.
const DEPLOYMENT: &str = "The deployment";

/// The answer when no deployment has the id.
const NO_DEPLOYMENT: &str = "No deployment of this id";

#[utoipa::path(get, path = "/flowable-rest/service/repository/deployments/{id}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEPLOYMENT)),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 404, description = NO_DEPLOYMENT, body = FlowableErrorBody),
    ))]
async fn get_deployment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Deployment>> {
    let d = rt.store().deployment(&id).await?.ok_or_else(|| deployment_not_found(&id))?;
    Ok(Json(Deployment::of(&origin(&headers), &d)))
}

/// `POST repository/deployments`: a multipart body of `.bpmn20.xml` / `.bpmn` files, with
/// `deploymentName`, `category` and `tenantId` as form fields or query parameters.
#[utoipa::path(post, path = "/flowable-rest/service/repository/deployments", tag = "flowable-repository",
    params(
        ("deploymentName" = Option<String>, Query, description = "Its name (the first file's name)"),
        ("category" = Option<String>, Query, description = "Its category"),
        ("tenantId" = Option<String>, Query, description = "Its tenant"),
    ),
    request_body(content_type = "multipart/form-data",
        description = "The `.bpmn20.xml` or `.bpmn` files, and `deploymentName`, `category` and `tenantId` fields"),
    responses(
        (status = 201, description = "The deployment made", body = Deployment),
        (status = 400, description = "Not a multipart body, no file, a file that is not BPMN, or a model that does \
            not hold", body = FlowableErrorBody),
    ))]
async fn create_deployment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Deployment>)> {
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
    Ok((StatusCode::CREATED, Json(Deployment::of(&origin, &d))))
}

/// Deletes a deployment and its models; with `cascade`, their instances too.
#[utoipa::path(delete, path = "/flowable-rest/service/repository/deployments/{id}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEPLOYMENT),
        ("cascade" = Option<bool>, Query, description = "Delete its models' instances too")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = NO_DEPLOYMENT, body = FlowableErrorBody),
        (status = 409, description = "Its models have instances, and cascade was not asked", body = FlowableErrorBody),
    ))]
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

/// A file of a deployment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Resource {
    /// Its file name.
    id: String,
    url: String,
    content_url: String,
    data_url: String,
    /// Always `text/xml`.
    media_type: &'static str,
    /// Always `processDefinition`.
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Resource {
    fn of(origin: &str, deployment: &str, name: &str) -> Resource {
        let path = format!("repository/deployments/{deployment}");
        let data = service_url(origin, &format!("{path}/resourcedata/{}", encoded(name)));
        Resource {
            id: name.to_owned(),
            url: service_url(origin, &format!("{path}/resources/{}", encoded(name))),
            content_url: data.clone(),
            data_url: data,
            media_type: "text/xml",
            kind: "processDefinition",
        }
    }
}

#[utoipa::path(get, path = "/flowable-rest/service/repository/deployments/{id}/resources", tag = "flowable-repository",
    params(("id" = String, Path, description = DEPLOYMENT)),
    responses(
        (status = 200, description = "Its files", body = Vec<Resource>),
        (status = 404, description = NO_DEPLOYMENT, body = FlowableErrorBody),
    ))]
async fn list_resources(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Resource>>> {
    let origin = origin(&headers);
    let list = resources(&rt, &id).await?;
    Ok(Json(list.iter().map(|(name, _)| Resource::of(&origin, &id, name)).collect()))
}

async fn one_resource(rt: &Runtime, id: &str, resource: &str) -> Result<String, ApiError> {
    resources(rt, id).await?.into_iter().find(|(name, _)| name == resource).map(|(_, source)| source).ok_or_else(|| {
        ApiError::not_found(format!("Could not find a resource with id '{resource}' in deployment '{id}'."))
    })
}

/// The answer when a deployment has no such file.
const NO_RESOURCE: &str = "No deployment of this id, or no such file in it";

#[utoipa::path(get, path = "/flowable-rest/service/repository/deployments/{id}/resources/{resource}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEPLOYMENT), ("resource" = String, Path, description = "The file name")),
    responses(
        (status = 200, description = "The file", body = Resource),
        (status = 404, description = NO_RESOURCE, body = FlowableErrorBody),
    ))]
async fn get_resource(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, resource)): Path<(String, String)>,
) -> FlowableResult<Json<Resource>> {
    one_resource(&rt, &id, &resource).await?;
    Ok(Json(Resource::of(&origin(&headers), &id, &resource)))
}

fn xml(source: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], source).into_response()
}

#[utoipa::path(get, path = "/flowable-rest/service/repository/deployments/{id}/resourcedata/{resource}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEPLOYMENT), ("resource" = String, Path, description = "The file name")),
    responses(
        (status = 200, description = "The file's text", body = String, content_type = "text/xml"),
        (status = 404, description = NO_RESOURCE, body = FlowableErrorBody),
    ))]
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

#[utoipa::path(get, path = "/flowable-rest/service/repository/process-definitions", tag = "flowable-repository", params(DefinitionFilters),
    responses(
        (status = 200, description = "A page of the process definitions the filters leave", body = Listed<Definition>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_definitions(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Definition>>> {
    let params = within_tenant(&caller, q.as_deref())?;
    let p = Params(&params);
    let paging = Paging::read(&p, &DEFINITION_SORTS)?;
    // Every parameter is read (and a malformed one refused) before any answer is chosen.
    let suspended = p.flag("suspended")? == Some(true);
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
    // No definition is ever suspended, nor has a category.
    if suspended || p.text("category").is_some() || p.text("categoryLike").is_some() {
        return Ok(Json(paging.envelope(Vec::new(), 0)));
    }
    let (rows, total) = rt.store().query_models(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(rows.iter().map(|m| Definition::of(&origin, m, m.tenant_id.clone())).collect(), total)))
}

/// A model and its deployment's tenant.
async fn definition(rt: &Runtime, id: &str) -> Result<(ModelRow, Option<String>), ApiError> {
    let model = rt.model(id).await?.ok_or_else(|| definition_not_found(id))?;
    let tenant = rt.store().deployment(&model.deployment_id).await?.and_then(|d| d.tenant_id);
    Ok(((*model).clone(), tenant))
}

/// The process definition `id` if the caller may see its tenant's, else Flowable's 404.
pub(super) async fn visible_definition(
    rt: &Runtime,
    caller: &Caller,
    id: &str,
) -> Result<std::sync::Arc<ModelRow>, ApiError> {
    let model = rt.model(id).await?;
    model.filter(|m| caller.within(m.tenant_id.as_deref())).ok_or_else(|| definition_not_found(id))
}

/// The path parameter naming a process definition.
const DEFINITION: &str = "The process definition";

/// The answer when no process definition has the id.
const NO_DEFINITION: &str = "No process definition of this id";

#[utoipa::path(get, path = "/flowable-rest/service/repository/process-definitions/{id}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEFINITION)),
    responses(
        (status = 200, description = "The process definition", body = Definition),
        (status = 404, description = NO_DEFINITION, body = FlowableErrorBody),
    ))]
async fn get_definition(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Definition>> {
    let (model, tenant) = definition(&rt, &id).await?;
    Ok(Json(Definition::of(&origin(&headers), &model, tenant)))
}

/// Categories and suspension of definitions are not kept.
#[utoipa::path(put, path = "/flowable-rest/service/repository/process-definitions/{id}", tag = "flowable-repository",
    params(("id" = String, Path, description = DEFINITION)),
    responses(
        (status = 404, description = NO_DEFINITION, body = FlowableErrorBody),
        (status = 501, description = "Definitions are not suspended, nor their categories changed", body = FlowableErrorBody),
    ))]
async fn change_definition(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<()> {
    definition(&rt, &id).await?;
    Err(ApiError::not_implemented("Flowstone does not suspend process definitions or change their category").into())
}

#[utoipa::path(get, path = "/flowable-rest/service/repository/process-definitions/{id}/resourcedata", tag = "flowable-repository",
    params(("id" = String, Path, description = DEFINITION)),
    responses(
        (status = 200, description = "Its BPMN source", body = String, content_type = "text/xml"),
        (status = 404, description = NO_DEFINITION, body = FlowableErrorBody),
    ))]
async fn definition_data(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Response> {
    Ok(xml(definition(&rt, &id).await?.0.source))
}

#[utoipa::path(get, path = "/flowable-rest/service/repository/process-definitions/{id}/image", tag = "flowable-repository",
    params(("id" = String, Path, description = DEFINITION)),
    responses(
        (status = 200, description = "Its diagram: from its BPMN DI, or laid out in columns where it has none", body = Vec<u8>, content_type = "image/png"),
        (status = 404, description = NO_DEFINITION, body = FlowableErrorBody),
    ))]
async fn definition_image(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Response> {
    let model = rt.model(&id).await?.ok_or_else(|| definition_not_found(&id))?;
    let def = rt.definition(&model)?;
    let drawn = crate::console::diagram::svg(&def, &std::collections::HashMap::new());
    Ok(png(crate::console::image::png(drawn).await?))
}

/// A PNG image as an answer.
pub(super) fn png(image: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], image).into_response()
}
