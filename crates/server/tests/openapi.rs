//! The OpenAPI document and Swagger UI through the real HTTP server: both are served without
//! credentials and without the network, and the document's answer types have exactly the
//! fields the real answers carry.

mod common;

use common::{Backend, TestServer, must};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The property names of the component schema `name`.
fn properties(doc: &Value, name: &str) -> Vec<String> {
    let schema = &doc["components"]["schemas"][name];
    // A flattened view is an `allOf` of its parts.
    let parts: Vec<&Value> = match schema["allOf"].as_array() {
        Some(all) => all.iter().collect(),
        None => vec![schema],
    };
    let mut names: Vec<String> = parts
        .iter()
        .map(|p| match p["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => *p,
        })
        .flat_map(|p| p["properties"].as_object().into_iter().flat_map(|o| o.keys().cloned()))
        .collect();
    names.sort();
    names
}

fn keys(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn the_document_and_swagger_ui_are_served_without_credentials() {
    let Some(srv) = TestServer::start(Backend::Sqlite).await else { return };
    let anonymous = reqwest::Client::new();
    let doc: Value = must(must(anonymous.get(format!("{}/openapi.json", srv.base)).send().await).json().await);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/process", "/process/{id}/{operate}", "/task/{id}/{operate}", "/worker/fetch", "/worker/events"] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    let refusal = &doc["paths"]["/process/{id}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"];
    assert_eq!(refusal["$ref"], "#/components/schemas/ErrorBody");

    let page = must(anonymous.get(format!("{}/docs/", srv.base)).send().await);
    assert_eq!(page.status(), StatusCode::OK);
    assert!(must(page.text().await).contains("swagger-ui"));
    let script = must(anonymous.get(format!("{}/docs/swagger-ui-bundle.js", srv.base)).send().await);
    assert_eq!(script.status(), StatusCode::OK, "Swagger UI's assets are compiled in");
    let config = must(anonymous.get(format!("{}/docs/swagger-initializer.js", srv.base)).send().await);
    assert!(must(config.text().await).contains("/openapi.json"));

    // Everything else still asks for credentials.
    let process = must(anonymous.get(format!("{}/process", srv.base)).send().await);
    assert_eq!(process.status(), StatusCode::UNAUTHORIZED);
    let near = must(anonymous.get(format!("{}/docsx", srv.base)).send().await);
    assert_eq!(near.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn documented_answers_have_the_fields_of_the_real_answers() {
    let Some(srv) = TestServer::start(Backend::Sqlite).await else { return };
    let (_, doc) = srv.get("/openapi.json").await;
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
      <process id="doc_check"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
      <userTask id="t" name="T"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>"#;
    let deployed = srv.deploy(xml).await;
    assert_eq!(keys(&deployed), properties(&doc, "Deployed"));
    let (_, model) = srv.get(&format!("/model/{}", deployed["modelId"].as_str().unwrap_or_default())).await;
    assert_eq!(keys(&model), properties(&doc, "ModelView"));

    let process = srv.start_process("doc_check", json!({"n": 1})).await;
    let id = process["id"].as_str().unwrap_or_default();
    // One process asked for says what it waits for; a start's answer and lists do not.
    assert_eq!(keys(&srv.process(id).await), properties(&doc, "ProcessView"));
    let mut started = properties(&doc, "ProcessView");
    started.retain(|k| k != "waitingFor");
    assert_eq!(keys(&process), started);
    let (_, listing) = srv.get("/process?page=1&size=5").await;
    assert_eq!(keys(&listing), properties(&doc, "Listing_ProcessView"));
    let tasks = srv.tasks(id).await;
    assert_eq!(keys(&tasks[0]), properties(&doc, "TaskView"));

    let (status, refusal) = srv.get("/process/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(keys(&refusal), properties(&doc, "ErrorBody"));
}
