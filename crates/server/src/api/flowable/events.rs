//! Events in Flowable's words: `runtime/signals` (a signal to every wait for it) and
//! `runtime/event-subscriptions` (what waits for a message, a signal or a trigger, including
//! the message and signal start events of the latest process definitions).

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::variables::{RestVariable, variables};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::Body;
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{EventIn, Runtime};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_store::{SubscriptionQuery, SubscriptionRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/{path}");
    Router::new()
        .route(&at("runtime/signals"), post(signal))
        .route(&at("runtime/event-subscriptions"), get(list_subscriptions))
        .route(&at("runtime/event-subscriptions/{id}"), get(get_subscription))
}

/// The events' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(signal, list_subscriptions, get_subscription))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// `POST runtime/signals`' body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignalRequest {
    /// The signal. Required.
    signal_name: Option<String>,
    /// Only waits and start events of this tenant's models.
    tenant_id: Option<String>,
    /// Answer at once (202) and reach the waits after.
    #[serde(default)]
    r#async: bool,
    /// Variables set where it is caught (not with `async`).
    #[serde(default)]
    variables: Option<Vec<RestVariable>>,
}

#[utoipa::path(post, path = "/flowable-rest/service/runtime/signals", tag = "flowable-instances",
    request_body = SignalRequest,
    responses(
        (status = 204, description = "Every wait for it got it, and its start events started their instances"),
        (status = 202, description = "Accepted: the waits get it after the answer"),
        (status = 400, description = "No signal name, or variables with `async`", body = FlowableErrorBody),
    ))]
async fn signal(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> FlowableResult<StatusCode> {
    let req: SignalRequest = crate::api::worker::parse(&body)?;
    let name =
        req.signal_name.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("signalName is required"))?;
    if req.r#async && req.variables.is_some() {
        return Err(ApiError::bad_request("Async signals cannot take variables as payload").into());
    }
    let tenant = caller.tenant_limit().map(str::to_owned).or(req.tenant_id);
    let signal =
        EventIn { name, variables: variables(req.variables.unwrap_or_default())?, tenant, ..EventIn::default() };
    if req.r#async {
        tokio::spawn(async move {
            if let Err(e) = rt.broadcast(&signal).await {
                tracing::warn!(target: "flowstone::events", name = %signal.name, "async signal not sent: {e}");
            }
        });
        return Ok(StatusCode::ACCEPTED);
    }
    rt.broadcast(&signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A wait for a message, a signal or a trigger.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventSubscription {
    id: String,
    url: String,
    /// `message`, `signal` or `trigger`.
    event_type: String,
    event_name: Option<String>,
    /// The waiting element.
    activity_id: String,
    /// The waiting activity's execution (none for a start event's).
    execution_id: Option<String>,
    process_instance_id: Option<String>,
    process_definition_id: String,
    /// The correlation key its message must carry.
    configuration: Option<String>,
    created: Option<String>,
    tenant_id: Option<String>,
}

impl EventSubscription {
    fn of(origin: &str, s: SubscriptionRow) -> EventSubscription {
        let instance = (!s.instance_id.is_empty()).then_some(s.instance_id);
        EventSubscription {
            url: service_url(origin, &format!("runtime/event-subscriptions/{}", s.record_id)),
            execution_id: instance.as_ref().map(|_| s.record_id.clone()),
            id: s.record_id,
            event_type: s.kind,
            event_name: (!s.name.is_empty()).then_some(s.name),
            activity_id: s.element,
            process_instance_id: instance,
            process_definition_id: s.model_id,
            configuration: s.correlation_key,
            created: iso_time(s.created_at),
            tenant_id: s.tenant_id,
        }
    }
}

const SUBSCRIPTION_SORTS: [&str; 6] =
    ["id", "created", "executionId", "processInstanceId", "processDefinitionId", "tenantId"];

const SUBSCRIPTION_FILTERS: [Filter; 10] = [
    filter("id", Kind::Text, "Only the subscription of this id"),
    filter("eventType", Kind::Text, "Only subscriptions to events of this type: message, signal or trigger"),
    filter("eventName", Kind::Text, "Only subscriptions to events of this name"),
    filter("activityId", Kind::Text, "Only subscriptions of this element"),
    filter("executionId", Kind::Text, "Only the subscription of this execution"),
    filter("processInstanceId", Kind::Text, "Only subscriptions of this process instance"),
    filter("processDefinitionId", Kind::Text, "Only subscriptions of this process definition"),
    filter("createdBefore", Kind::Date, "Only subscriptions made before this instant"),
    filter("createdAfter", Kind::Date, "Only subscriptions made after this instant"),
    filter("tenantId", Kind::Text, "Only subscriptions of this tenant's definitions"),
];

described!(
    /// The filters of the event subscription list.
    checked SubscriptionFilters: SUBSCRIPTION_FILTERS, PAGING, [sort(&SUBSCRIPTION_SORTS)]
);

#[utoipa::path(get, path = "/flowable-rest/service/runtime/event-subscriptions", tag = "flowable-instances",
    params(SubscriptionFilters),
    responses(
        (status = 200, description = "A page of the subscriptions the filters leave", body = Listed<EventSubscription>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_subscriptions(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<EventSubscription>>> {
    let params = query_map(q.as_deref())?;
    SubscriptionFilters::check(&params)?;
    let p = Params(&params);
    let paging = Paging::read(&p, &SUBSCRIPTION_SORTS)?;
    let id = match (p.text("id"), p.text("executionId")) {
        (Some(a), Some(b)) if a != b => return Ok(Json(paging.envelope(Vec::new(), 0))),
        (a, b) => a.or(b),
    };
    let tenant = match (caller.tenant_limit(), p.text("tenantId")) {
        (Some(mine), Some(asked)) if mine != asked => return Ok(Json(paging.envelope(Vec::new(), 0))),
        (Some(mine), _) => Some(mine.to_owned()),
        (None, asked) => asked,
    };
    let query = SubscriptionQuery {
        id,
        kind: p.text("eventType"),
        name: p.text("eventName"),
        element: p.text("activityId"),
        instance_id: p.text("processInstanceId"),
        model_id: p.text("processDefinitionId"),
        tenant_id: tenant,
        created_before: p.date("createdBefore")?,
        created_after: p.date("createdAfter")?,
        order: match paging.sort {
            "created" => "created_at",
            "executionId" | "id" => "record_id",
            "processInstanceId" => "instance_id",
            "processDefinitionId" => "model_id",
            _ => "tenant_id",
        },
        descending: paging.descending,
    };
    let (rows, total) = rt.store().list_subscriptions(&query, paging.page()).await?;
    let origin = origin(&headers);
    Ok(Json(paging.envelope(rows.into_iter().map(|s| EventSubscription::of(&origin, s)).collect(), total)))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/event-subscriptions/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = "The subscription")),
    responses(
        (status = 200, description = "The subscription", body = EventSubscription),
        (status = 404, description = "No subscription of this id", body = FlowableErrorBody),
    ))]
async fn get_subscription(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<EventSubscription>> {
    let row = rt
        .store()
        .subscription(&id)
        .await?
        .filter(|s| caller.within(s.tenant_id.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("Could not find an event subscription with id '{id}'.")))?;
    Ok(Json(EventSubscription::of(&origin(&headers), row)))
}
