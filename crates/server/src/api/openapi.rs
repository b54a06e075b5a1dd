//! The OpenAPI 3.1 document, generated from the handlers' request and answer types, served at
//! `/openapi.json`, with Swagger UI at `/docs` (its assets are compiled in: nothing is fetched).
//!
//! Each dialect's module describes its own operations; this module joins them, adds the
//! answers any operation may give whatever it does (a caller not signed in, a body over the
//! limit, too many wrong passwords, a store that does not answer), and names the two ways
//! to sign in.

use crate::error::ErrorBody;
use axum::Router;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document is served.
pub(crate) const DOCUMENT_PATH: &str = "/openapi.json";

/// Where Swagger UI is served (and everything under it).
pub(crate) const UI_PATH: &str = "/docs";

/// Whether `path` is the document or Swagger UI, which need no credentials: they describe the
/// API, and hold nothing of anyone's.
pub(crate) fn is_public(path: &str) -> bool {
    path == DOCUMENT_PATH || path == UI_PATH || path.strip_prefix(UI_PATH).is_some_and(|rest| rest.starts_with('/'))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flowstone",
        description = "A process-orchestration engine: the platform API (models, processes, task records), \
            the worker protocol that stones' workers speak, Flowable REST (user tasks, instances, history, \
            repository, identity, external workers), the bk-sops API, \
            bearer tokens and health probes. Sign in with \
            HTTP Basic (any identity user) or a bearer token from `POST /auth/tokens`; the health probes \
            and this document need neither."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Common),
    tags(
        (name = "platform", description = "Models, processes and their task records (seeds 000–002)"),
        (name = "worker", description = "Fetch-and-lock of stone jobs, and the reports of the workers that hold them"),
        (name = "auth", description = "Bearer tokens"),
        (name = "health", description = "Probes for whoever runs the server"),
        (name = "metrics", description = "Counters in the OpenMetrics text format"),
        (name = "flowable-external-jobs", description = "Flowable's external worker API over the stone jobs: \
            acquire the jobs of a topic, then complete, fail or end them with a BPMN error; errors in Flowable's \
            `{message, exception}` shape"),
        (name = "flowable-tasks", description = "Flowable's user tasks (`runtime/tasks`) with their variables, identity \
            links, comments, events and attachments, and their history; errors in Flowable's shape"),
        (name = "flowable-instances", description = "Flowable's process instances, their variables and executions, \
            and the history of instances and activities"),
        (name = "flowable-repository", description = "Flowable's deployments and process definitions: the models"),
        (name = "flowable-identity", description = "Flowable's users, groups and memberships: who tasks are for \
            and who signs in"),
        (name = "bk-sops", description = "bk-sops' open API at the paths of its ESB gateway: POST with a JSON body (or GET \
            with the same parameters in the query string), the app's credentials among the parameters or in an \
            `X-Bkapi-Authorization` header, every answer in bk-sops' envelope (a refusal too, with HTTP 200)"),
    )
)]
struct Root;

/// The whole document, made once.
pub(crate) fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = Root::openapi();
        for part in [
            super::platform::api(),
            super::worker::api(),
            super::tokens::api(),
            super::health::api(),
            super::metrics_api(),
            super::bk_sops::api(),
            super::flowable::api(),
        ] {
            doc.merge(part);
        }
        Common.modify(&mut doc);
        doc
    })
}

/// `GET /openapi.json` and Swagger UI under `/docs`.
pub(super) fn routes() -> Router<super::App> {
    SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, document().clone()).into()
}

/// The security schemes, and the answers any operation may give.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        doc.security = Some(vec![
            SecurityRequirement::new("basic", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
        for (path, item) in &mut doc.paths.paths {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete].into_iter().flatten() {
                add_common(path, op);
            }
        }
    }
}

/// Adds to `op` (at `path`) the answers it does not describe itself (the bk-sops API answers
/// in its own envelope, and says so itself).
fn add_common(path: &str, op: &mut Operation) {
    if path.starts_with(super::BK_SOPS_PREFIX) {
        return;
    }
    let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &SecurityRequirement::default()));
    let mut common = vec![
        ("405", "The path does not take this method; `Allow` names those it takes"),
        ("503", "The store does not answer, or the server is stopping; try again"),
    ];
    if !public {
        common.extend([
            ("400", "A malformed request; the message names what was wrong"),
            ("401", "No credentials, or wrong ones"),
            ("403", "The caller may not do this (another tenant's, or another user's work)"),
            ("429", "Too many wrong passwords from this address; `Retry-After` says when to try again"),
        ]);
    }
    if op.request_body.is_some() {
        common.push(("413", "The body is larger than 16 MiB"));
    }
    if path.starts_with("/worker/jobs/") {
        // Every report on a job the worker holds.
        common.extend([
            ("404", "No open job with this id"),
            ("409", "Another worker holds the job, or it no longer waits for this report"),
        ]);
    }
    // Flowable REST refuses in its own shape.
    let shape = if path.starts_with(super::FLOWABLE_PREFIX) { "FlowableErrorBody" } else { "ErrorBody" };
    for (status, description) in common {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| refusal(shape, description));
    }
}

fn refusal(shape: &str, description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(shape))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_says_how_it_refuses_and_names_its_answers() {
        let doc = document();
        let mut operations = 0;
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.put, &item.post, &item.delete].into_iter().flatten() {
                operations += 1;
                let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
                // An operation the engine cannot run yet says so (501) instead.
                let answers = statuses.iter().any(|s| s.starts_with('2') || *s == "501");
                assert!(answers, "{path}: no success answer");
                assert!(statuses.contains(&"503"), "{path}: no 503");
                assert!(op.tags.as_ref().is_some_and(|t| !t.is_empty()), "{path}: no tag");
            }
        }
        assert!(operations >= 20, "only {operations} operations");
        let text = serde_json::to_string(doc).unwrap();
        assert!(text.starts_with(r#"{"openapi":"3.1.0""#), "{}", &text[..40]);
    }

    #[test]
    fn only_the_document_and_its_ui_are_public() {
        assert!(is_public("/openapi.json") && is_public("/docs") && is_public("/docs/index.html"));
        assert!(!is_public("/docsx") && !is_public("/openapi.jsonx") && !is_public("/process"));
    }
}
