//! The console's models: every version with its diagram and source, deploying a BPMN file by
//! upload, and starting an instance with variables (the platform's `POST /process` as a form).

use super::diagram;
use super::html::{escape, page, percent};
use super::{Session, field};
use crate::api::format::platform_date;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use flowstone_engine::StartOptions;
use flowstone_store::Page;
use std::collections::HashMap;
use std::fmt::Write;

/// Model versions listed at most.
const LISTED: u64 = 200;

fn upload_form(csrf: &str) -> String {
    format!(
        "<form class=\"act\" method=\"post\" action=\"/console/models\" enctype=\"multipart/form-data\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"file\" name=\"file\" accept=\".bpmn,.xml,.bpmn20.xml\" required>\
<button>Deploy</button></form>",
        escape(csrf)
    )
}

/// `GET /console/models`: every model version, newest first.
pub(crate) async fn list(State(rt): State<Runtime>, session: Session) -> Response {
    let (models, total) = match rt.store().list_models(None, None, Page { offset: 0, limit: LISTED }).await {
        Ok(found) => found,
        Err(e) => return session.error(e.into()),
    };
    let mut out = format!("<h1>Models</h1>{}", upload_form(&session.csrf));
    out.push_str(
        "<table id=\"models\"><thead><tr><th>Key</th><th>Name</th><th>Version</th><th>Deployed</th><th>Tenant</th></tr></thead><tbody>",
    );
    for m in &models {
        let _ = write!(
            out,
            "<tr><td><a href=\"/console/models/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            percent(&m.id),
            escape(&m.key),
            escape(m.name.as_deref().unwrap_or("")),
            m.version,
            platform_date(m.created_at),
            escape(m.tenant_id.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(out, "</tbody></table><p>{} of {total} versions</p>", models.len());
    page("Models", session.who(), &out).into_response()
}

/// `GET /console/models/{id}`: one version — its diagram, a start form (with its start event's
/// form properties) and its source.
pub(crate) async fn one(State(rt): State<Runtime>, session: Session, Path(id): Path<String>) -> Response {
    let drawn = async {
        let model = rt.model(&id).await?.ok_or_else(|| ApiError::not_found(format!("no model {id}")))?;
        let def = rt.definition(&model)?;
        let start = format!(
            "<form class=\"start\" method=\"post\" action=\"/console/models/{}/start\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label>Name <input name=\"name\" value=\"{}\"></label><label>Business key <input name=\"businessKey\"></label>{}\
<label>Variables (JSON) <textarea name=\"variables\" rows=\"6\">{{}}</textarea></label>\
<label><input type=\"checkbox\" name=\"debug\" value=\"true\"> debug mode (a failed stone waits for reRun or resume)</label>\
<button>Start</button></form>",
            percent(&model.id),
            escape(&session.csrf),
            escape(&model.key),
            super::forms::inputs(&def.start_form, &serde_json::Map::new())
        );
        Ok::<_, ApiError>(format!(
            "<h1>{} <small>version {}</small></h1><h2>Diagram</h2><div class=\"diagram-box\">{}</div><h2>Start an instance</h2>{start}\
<h2>Source</h2><pre id=\"source\">{}</pre>",
            escape(model.name.as_deref().unwrap_or(&model.key)),
            model.version,
            diagram::svg(&def, &HashMap::new()),
            escape(&model.source)
        ))
    };
    match drawn.await {
        Ok(body) => page("Model", session.who(), &body).into_response(),
        Err(e) => session.error(e),
    }
}

/// `POST /console/models/{id}/start`: starts an instance as the signed-in user, and shows it.
pub(crate) async fn start(
    State(rt): State<Runtime>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let started = async {
        let fields = session.form_of(&body)?;
        let model = rt.model(&id).await?.ok_or_else(|| ApiError::not_found(format!("no model {id}")))?;
        // The start event's form first, then the JSON object over it.
        let mut variables = super::forms::read(&rt.definition(&model)?.start_form, &fields)?;
        variables.extend(super::actions::object(&fields, "variables")?);
        let name = field(&fields, "name").map(str::trim).filter(|n| !n.is_empty()).unwrap_or(&model.key).to_owned();
        let business_key = field(&fields, "businessKey").map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
        let options = StartOptions {
            debug: field(&fields, "debug") == Some("true"),
            initiator: Some(session.caller.user.clone()),
            ..StartOptions::default()
        };
        Ok::<_, ApiError>(rt.start_instance(model, name, business_key, variables, options).await?)
    };
    match started.await {
        Ok(row) => Redirect::to(&format!("/console/instances/{}", percent(&row.id))).into_response(),
        Err(e) => session.error(e),
    }
}

/// `POST /console/models` (multipart: `csrf`, `file`): deploys a BPMN file, and shows its
/// first process.
pub(crate) async fn deploy(State(rt): State<Runtime>, session: Session, mut multipart: Multipart) -> Response {
    let deployed = async {
        let (mut csrf, mut file) = (None, None);
        while let Some(part) = multipart.next_field().await.map_err(ApiError::rejected)? {
            match part.name() {
                Some("csrf") => csrf = Some(part.text().await.map_err(ApiError::rejected)?),
                Some("file") => file = Some(part.bytes().await.map_err(ApiError::rejected)?),
                _ => {}
            }
        }
        session.check(csrf.as_deref())?;
        let file =
            file.filter(|f| !f.is_empty()).ok_or_else(|| ApiError::bad_request("choose a BPMN file to deploy"))?;
        let source = std::str::from_utf8(&file).map_err(|_| ApiError::bad_request("the file is not UTF-8 text"))?;
        Ok::<_, ApiError>(rt.deploy(source).await?)
    };
    match deployed.await {
        Ok(models) => {
            let to =
                models.first().map_or("/console/models".to_owned(), |m| format!("/console/models/{}", percent(&m.id)));
            Redirect::to(&to).into_response()
        }
        Err(e) => session.error(e),
    }
}
