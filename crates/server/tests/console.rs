//! The console through the real server on both backends: signing in makes a session cookie
//! that opens the console's pages and no API; the instance list counts and filters in the
//! store; an instance's page draws its model with each element's state; signing out needs the
//! session's CSRF token and ends the session.

mod common;

use common::{PASSWORD, TestServer, must};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

/// A client that neither follows redirects nor keeps cookies: each test says what it sends.
fn browser() -> Client {
    must(Client::builder().redirect(reqwest::redirect::Policy::none()).build())
}

/// Signs in through the form; answers the session cookie (`name=value`).
async fn sign_in(s: &TestServer, user: &str, password: &str) -> (StatusCode, Option<String>, String) {
    let form = [("user", user), ("password", password)];
    let resp = must(browser().post(format!("{}/console/sign-in", s.base)).form(&form).send().await);
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    (status, cookie, must(resp.text().await))
}

async fn page(s: &TestServer, cookie: &str, path: &str) -> (StatusCode, String, Option<String>) {
    let resp = must(browser().get(format!("{}{path}", s.base)).header(COOKIE, cookie).send().await);
    let status = resp.status();
    let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, must(resp.text().await), location)
}

async fn a_session_opens_the_console_and_no_api_and_signing_out_ends_it(s: TestServer) {
    let root = must(browser().get(format!("{}/", s.base)).send().await);
    assert_eq!(root.headers().get(LOCATION).and_then(|v| v.to_str().ok()), Some("/console"));
    let (status, _, location) = page(&s, "flowstone_session=made-up", "/console").await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/console/sign-in")));

    let (status, cookie, body) = sign_in(&s, "admin", "wrong").await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None), "{body}");
    assert!(body.contains("wrong user name or password"), "{body}");
    let (status, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap_or_else(|| panic!("no session cookie"));

    let (status, body, _) = page(&s, &cookie, "/console").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<h1>Instances</h1>") && body.contains(">admin<"), "{body}");
    let api = must(browser().get(format!("{}/process", s.base)).header(COOKIE, &cookie).send().await);
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "the cookie opens no API");

    let sign_out = |csrf: String| {
        browser().post(format!("{}/console/sign-out", s.base)).header(COOKIE, &cookie).form(&[("csrf", csrf)])
    };
    let forged = must(sign_out("forged".into()).send().await);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a form from elsewhere is refused");
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or_default();
    let out = must(sign_out(csrf.to_owned()).send().await);
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _, location) = page(&s, &cookie, "/console").await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/console/sign-in")), "ended");
}

const REVIEW: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="review" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
    <userTask id="check" name="Check &amp; sign"/><sequenceFlow id="f2" sourceRef="check" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

async fn the_list_counts_and_filters_and_an_instance_shows_its_states_on_its_diagram(s: TestServer) {
    s.deploy(REVIEW).await;
    let waiting =
        s.start_process("review", json!({"amount": 5})).await["processInstanceId"].as_str().map(str::to_owned);
    let waiting = waiting.unwrap_or_else(|| panic!("no instance id"));
    let done = s.start_process("w1_straight", json!({})).await;
    assert_eq!(done["processStatus"], "success", "{done}");
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();

    let (_, list, _) = page(&s, &cookie, "/console").await;
    assert!(list.contains(&format!("/console/instances/{waiting}")), "{list}");
    assert!(list.contains(">running 1</a>") && list.contains(">completed 1</a>"), "{list}");
    let (_, running, _) = page(&s, &cookie, "/console?status=running").await;
    assert!(running.contains(&waiting) && running.contains("<span>page 1</span>"), "{running}");
    assert!(!running.contains("older →") && !running.contains("w1_straight"), "{running}");
    let (_, by_model, _) = page(&s, &cookie, "/console?model=w1_straight").await;
    assert!(!by_model.contains(&waiting) && by_model.contains(">all 1</a>"), "{by_model}");
    let (status, bad, _) = page(&s, &cookie, "/console?status=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad.contains("`sleeping` is no status"), "{bad}");

    // What an instance waits for, its version, when it started, its tenant; each link keeps them.
    let (_, for_person, _) = page(&s, &cookie, "/console?waiting=person").await;
    assert!(for_person.contains(&waiting) && for_person.contains(">all 1</a>"), "{for_person}");
    assert!(for_person.contains(r#"<option value="person" selected>"#), "{for_person}");
    assert!(for_person.contains("/console?status=running&waiting=person"), "{for_person}");
    let (_, for_worker, _) = page(&s, &cookie, "/console?waiting=worker").await;
    assert!(!for_worker.contains(&waiting) && for_worker.contains(">all 0</a>"), "{for_worker}");
    let (_, first, _) = page(&s, &cookie, "/console?model=review&version=1").await;
    assert!(first.contains(&waiting), "{first}");
    let (_, second, _) = page(&s, &cookie, "/console?model=review&version=2").await;
    assert!(second.contains(">all 0</a>"), "no second version: {second}");
    let (_, today, _) = page(&s, &cookie, "/console?from=2000-01-01&to=2999-12-31T23:59").await;
    assert!(today.contains(&waiting) && today.contains(">all 2</a>"), "{today}");
    let (_, later, _) = page(&s, &cookie, "/console?from=2999-01-01").await;
    assert!(later.contains(">all 0</a>") && later.contains(r#"name="from" value="2999-01-01""#), "{later}");
    let (_, tenant, _) = page(&s, &cookie, "/console?tenant=acme").await;
    assert!(tenant.contains(">all 0</a>"), "nothing was deployed for acme: {tenant}");
    for (query, says) in [
        ("waiting=godot", "`godot` is nothing an instance waits for"),
        ("version=1", "give the model key too"),
        ("model=review&version=one", "`one` is not a whole number"),
        ("from=yesterday", "`from` is not a date"),
    ] {
        let (status, bad, _) = page(&s, &cookie, &format!("/console?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {bad}");
        assert!(bad.contains(says), "{query}: {bad}");
    }

    let (status, one, _) = page(&s, &cookie, &format!("/console/instances/{waiting}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert!(one.contains("<svg") && one.contains(r#"<g class="node waiting" data-element="check">"#), "{one}");
    assert!(one.contains(r#"<g class="node done" data-element="s">"#), "the start ran: {one}");
    assert!(one.contains(r#"<g class="node" data-element="e">"#), "the end is not reached: {one}");
    assert!(one.contains(r#"<polyline class="flow taken" data-flow="f1""#), "{one}");
    assert!(one.contains("Check &amp; sign") && one.contains("&quot;amount&quot;: 5"), "{one}");
    let (status, missing, _) = page(&s, &cookie, "/console/instances/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert!(missing.contains("no instance nothing-here"), "{missing}");

    // A multi-instance task: how many of its instances ended, of all.
    s.deploy(&REVIEW.replace("id=\"review\"", "id=\"reviews\"").replace(
        r#"name="Check &amp; sign"/>"#,
        r#"name="Check"><multiInstanceLoopCharacteristics isSequential="false"><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></userTask>"#,
    ))
    .await;
    let many = s.start_process("reviews", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let first = s.tasks(&many).await.into_iter().find(|t| t["status"] == "active");
    let first = first.and_then(|t| t["id"].as_str().map(str::to_owned)).unwrap_or_default();
    let (status, body) = s.put(&format!("/task/{first}/complete"), None).await;
    assert!(status.is_success(), "{body}");
    let (_, drawn, _) = page(&s, &cookie, &format!("/console/instances/{many}")).await;
    assert!(drawn.contains(r#"<g class="node waiting" data-element="check">"#), "two still wait: {drawn}");
    assert!(drawn.contains(">1/3</text>"), "one of three ended: {drawn}");

    // A process and the one it called link each other.
    s.deploy(CALLER).await;
    let caller =
        s.start_process("caller", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let (_, calling, _) = page(&s, &cookie, &format!("/console/instances/{caller}")).await;
    let called =
        calling.split("<th>Called</th><td><a href=\"/console/instances/").nth(1).and_then(|c| c.split('"').next());
    let called = called.unwrap_or_else(|| panic!("no called process: {calling}")).to_owned();
    let (_, child, _) = page(&s, &cookie, &format!("/console/instances/{called}")).await;
    assert!(child.contains(&format!("<th>Works for</th><td><a href=\"/console/instances/{caller}\">")), "{child}");
    assert!(child.contains(r#"data-element="check">"#), "the called model is drawn: {child}");
}

/// Calls [`REVIEW`].
const CALLER: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="caller" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="c"/>
    <callActivity id="c" calledElement="review"/><sequenceFlow id="f2" sourceRef="c" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

async fn an_instance_page_is_told_of_each_committed_change_and_redraws_from_its_live_part(s: TestServer) {
    s.deploy(REVIEW).await;
    let id = s.start_process("review", json!({})).await["processInstanceId"].as_str().map(str::to_owned);
    let id = id.unwrap_or_else(|| panic!("no instance id"));
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let (_, one, _) = page(&s, &cookie, &format!("/console/instances/{id}")).await;
    assert!(one.contains(&format!(r#"data-events="/console/instances/{id}/events?since="#)), "{one}");
    let (status, script, _) = page(&s, &cookie, "/console/console.js").await;
    assert!(status == StatusCode::OK && script.contains("EventSource"), "{script}");

    let mut events =
        must(browser().get(format!("{}/console/instances/{id}/events", s.base)).header(COOKIE, &cookie).send().await);
    assert_eq!(
        events.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let open = s.tasks(&id).await.into_iter().find(|t| t["status"] == "active");
    let task = open.and_then(|t| t["id"].as_str().map(str::to_owned)).unwrap_or_else(|| panic!("no open task"));
    let (status, body) = s.put(&format!("/task/{task}/complete"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut seen = String::new();
    let told = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while let Ok(Some(chunk)) = events.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(told, Ok(true), "the stream said: {seen}");
    let (status, live, _) = page(&s, &cookie, &format!("/console/instances/{id}/live")).await;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert!(live.contains(r#"id="status">completed<"#) && !live.contains("<html"), "{live}");
    assert!(live.contains(r#"<g class="node done" data-element="check">"#), "{live}");
    assert!(live.contains(r#"<g class="node done" data-element="e">"#), "the end reached: {live}");
}

/// The session's CSRF token, as a page carries it.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or_default().to_owned()
}

/// Posts a console form; answers the status and where it leads (or the page it answered).
async fn act(s: &TestServer, cookie: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = must(browser().post(format!("{}{path}", s.base)).header(COOKIE, cookie).form(form).send().await);
    let status = resp.status();
    let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, location.unwrap_or(must(resp.text().await)))
}

async fn buttons_rerun_a_failed_stone_with_edited_parameters_complete_a_user_task_and_cancel(s: TestServer) {
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let body = json!({"key": "cluster", "processName": "debugged", "debug": true, "variables": {
        "slaveNum": "1", "buyNum": "1", "Bingo::RS::FRONT::RSBILLING": {"fail": "no credit"},
        "master-1a": {"instanceType": "m2.large"}, "slave-": {"instanceType": "m2.large"}}});
    let (status, started) = s.post("/process", body).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let id = started["processInstanceId"].as_str().unwrap_or_default().to_owned();
    s.wait_for(&id, "debug").await;
    let (_, one, _) = page(&s, &cookie, &format!("/console/instances/{id}")).await;
    let csrf = csrf_of(&one);
    let failed = s.tasks(&id).await.into_iter().find(|t| t["status"] == "start.failed");
    let task = failed.and_then(|t| t["id"].as_str().map(str::to_owned)).unwrap_or_else(|| panic!("no failed task"));
    let rerun = format!("/console/tasks/{task}/rerun");
    assert!(one.contains(&format!("action=\"{rerun}\"")) && one.contains("no credit"), "{one}");

    let (status, refused) = act(&s, &cookie, &rerun, &[("csrf", "forged"), ("parameters", "{}")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, refused) = act(&s, &cookie, &rerun, &[("csrf", &csrf), ("parameters", "{fail")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("`parameters` is not JSON"), "{refused}");
    let (status, back) =
        act(&s, &cookie, &rerun, &[("csrf", &csrf), ("queueType", ""), ("parameters", r#"{"fail": false}"#)]).await;
    assert_eq!((status, back), (StatusCode::SEE_OTHER, format!("/console/instances/{id}")));
    s.wait_for(&id, "success").await;

    s.deploy(REVIEW).await;
    let review =
        s.start_process("review", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let open = s.tasks(&review).await.into_iter().find(|t| t["status"] == "active");
    let task = open.and_then(|t| t["id"].as_str().map(str::to_owned)).unwrap_or_default();
    // Flowable's actions on the user task, from the instance's page.
    let on = |action: &str| format!("/console/tasks/{task}/{action}");
    let shown = async || page(&s, &cookie, &format!("/console/instances/{review}")).await.1;
    assert!(shown().await.contains("nobody has claimed it") && shown().await.contains(&on("claim")));
    assert_eq!(act(&s, &cookie, &on("claim"), &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
    let claimed = shown().await;
    assert!(claimed.contains("assignee <b>admin</b>") && claimed.contains(&on("unclaim")), "{claimed}");
    let (status, refused) = act(&s, &cookie, &on("delegate"), &[("csrf", &csrf), ("to", " ")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("name the user to delegate to"), "{refused}");
    assert_eq!(act(&s, &cookie, &on("delegate"), &[("csrf", &csrf), ("to", "kermit")]).await.0, StatusCode::SEE_OTHER);
    let delegated = shown().await;
    assert!(delegated.contains("assignee <b>kermit</b>, owner <b>admin</b>, delegation <b>pending</b>"), "{delegated}");
    assert!(delegated.contains(&on("resolve")), "{delegated}");
    assert_eq!(act(&s, &cookie, &on("resolve"), &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
    assert!(shown().await.contains("assignee <b>admin</b>, owner <b>admin</b>, delegation <b>resolved</b>"));
    assert_eq!(act(&s, &cookie, &on("unclaim"), &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
    let complete = [("csrf", csrf.as_str()), ("variables", r#"{"approved": true}"#)];
    let (status, _) = act(&s, &cookie, &format!("/console/tasks/{task}/complete"), &complete).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    s.wait_for(&review, "success").await;
    let (_, ended, _) = page(&s, &cookie, &format!("/console/instances/{review}")).await;
    assert!(ended.contains("&quot;approved&quot;: true"), "the form's variables were set: {ended}");

    let waiting =
        s.start_process("review", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let (status, _) = act(&s, &cookie, &format!("/console/instances/{waiting}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let canceled = s.wait_for(&waiting, "canceled").await;
    let (_, shown, _) = page(&s, &cookie, &format!("/console/instances/{waiting}")).await;
    let cancel = canceled["cancelProcessInstanceId"].as_str().unwrap_or_default();
    assert!(shown.contains(&format!("<th>Cancel</th><td><a href=\"/console/instances/{cancel}\">")), "{shown}");
    let (_, undoing, _) = page(&s, &cookie, &format!("/console/instances/{cancel}")).await;
    assert!(undoing.contains(&format!("<th>Works for</th><td><a href=\"/console/instances/{waiting}\">")), "{undoing}");
    let (status, refused) = act(&s, &cookie, &format!("/console/instances/{waiting}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "a canceled instance is not canceled again: {refused}");
}

async fn models_are_listed_deployed_by_upload_and_started_with_variables(s: TestServer) {
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let (status, models, _) = page(&s, &cookie, "/console/models").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    let csrf = csrf_of(&models);
    let upload = |csrf: &str, file: &str| {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_owned())
            .part("file", reqwest::multipart::Part::text(file.to_owned()).file_name("review.bpmn"));
        browser().post(format!("{}/console/models", s.base)).header(COOKIE, &cookie).multipart(form)
    };
    let forged = must(upload("forged", REVIEW).send().await);
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let broken = must(upload(&csrf, "<definitions").send().await);
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let deployed = must(upload(&csrf, REVIEW).send().await);
    assert_eq!(deployed.status(), StatusCode::SEE_OTHER);
    let model_page = deployed.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(model_page.starts_with("/console/models/"), "{model_page}");

    let (status, model, _) = page(&s, &cookie, &model_page).await;
    assert_eq!(status, StatusCode::OK, "{model}");
    assert!(model.contains(r#"<g class="node" data-element="check">"#) && model.contains("&lt;userTask"), "{model}");
    let start = format!("{model_page}/start");
    let (status, refused) = act(&s, &cookie, &start, &[("csrf", &csrf), ("variables", "[1]")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "from the console"),
        ("businessKey", "order-7"),
        ("variables", r#"{"amount": 3}"#),
    ];
    let (status, instance) = act(&s, &cookie, &start, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{instance}");
    let (_, shown, _) = page(&s, &cookie, &instance).await;
    assert!(shown.contains("<h1>from the console</h1>") && shown.contains("order-7"), "{shown}");
    assert!(
        shown.contains("&quot;amount&quot;: 3") && shown.contains(r#"class="node waiting" data-element="check""#),
        "{shown}"
    );

    // A start event's form properties are fields of the start form, typed and checked.
    let asks = REVIEW.replace(
        r#"<startEvent id="s"/>"#,
        r#"<startEvent id="s"><extensionElements><flowable:formProperty xmlns:flowable="http://flowable.org/bpmn" id="days" name="Days" type="long" required="true"/></extensionElements></startEvent>"#,
    );
    let deployed = must(upload(&csrf, &asks).send().await);
    let model_page = deployed.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (_, model, _) = page(&s, &cookie, &model_page).await;
    assert!(model.contains(r#"<input type="number" step="1" name="form:days" value="" required>"#), "{model}");
    let start = format!("{model_page}/start");
    let (status, refused) = act(&s, &cookie, &start, &[("csrf", &csrf), ("form:days", "")]).await;
    assert!(status == StatusCode::BAD_REQUEST && refused.contains("`Days` is required"), "{refused}");
    let (status, instance) = act(&s, &cookie, &start, &[("csrf", &csrf), ("form:days", "2")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{instance}");
    let (_, shown, _) = page(&s, &cookie, &instance).await;
    assert!(shown.contains("&quot;days&quot;: 2"), "typed as a number: {shown}");
}

async fn a_user_who_does_not_operate_is_refused_the_console(s: TestServer) {
    let (status, body) = s.post(&format!("{SERVICE}/identity/users"), json!({"id": "pat", "password": "pw"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, cookie, _) = sign_in(&s, "pat", "pw").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body, _) = page(&s, &cookie.unwrap_or_default(), "/console").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("these pages are for operators") && body.contains("/console/inbox"), "{body}");
}

const NOBODY: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn" targetNamespace="t">
  <process id="waits" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <serviceTask id="work" name="Work" flowstone:stone="nobody"/><sequenceFlow id="f2" sourceRef="work" targetRef="e"/>
    <endEvent id="e"/></process></definitions>"#;

async fn incidents_list_failed_stones_with_a_rerun_and_the_stones_page_shows_queues_and_workers(s: TestServer) {
    let body = json!({"key": "cluster", "processName": "debugged", "debug": true, "variables": {
        "slaveNum": "1", "buyNum": "1", "Bingo::RS::FRONT::RSBILLING": {"fail": "no credit"},
        "master-1a": {"instanceType": "m2.large"}, "slave-": {"instanceType": "m2.large"}}});
    let (_, started) = s.post("/process", body).await;
    let id = started["processInstanceId"].as_str().unwrap_or_default().to_owned();
    s.wait_for(&id, "debug").await;
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let (status, incidents, _) = page(&s, &cookie, "/console/incidents").await;
    assert_eq!(status, StatusCode::OK, "{incidents}");
    assert!(incidents.contains(&format!("/console/instances/{id}")) && incidents.contains("no credit"), "{incidents}");
    let rerun = incidents.split("action=\"").find(|a| a.contains("/rerun")).and_then(|a| a.split('"').next());
    let rerun = rerun.unwrap_or_else(|| panic!("no reRun button: {incidents}")).to_owned();
    let (status, back) = act(&s, &cookie, &rerun, &[("csrf", &csrf_of(&incidents))]).await;
    assert_eq!((status, back), (StatusCode::SEE_OTHER, format!("/console/instances/{id}")));

    s.deploy(NOBODY).await;
    for _ in 0..3 {
        s.start_process("waits", json!({})).await;
    }
    let (status, fetched) = s.post("/worker/fetch", json!({"workerId": "w-7", "topics": ["elsewhere"]})).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let take = json!({"workerId": "w-8", "topics": ["nobody"], "maxJobs": 2, "lockDuration": 60_000});
    let (status, fetched) = s.post("/worker/fetch", take).await;
    assert_eq!((status, fetched.as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{fetched}");
    // How far a worker is shows on the instance's page, beside the job's parameters.
    let (job, instance) =
        (fetched[0]["id"].as_str().unwrap_or_default(), fetched[0]["processInstanceId"].as_str().unwrap_or_default());
    let (status, body) =
        s.post(&format!("/worker/jobs/{job}/progress"), json!({"workerId": "w-8", "progress": 60})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, working, _) = page(&s, &cookie, &format!("/console/instances/{instance}")).await;
    assert!(working.contains(r#"<progress value="60" max="100">60%</progress>"#), "{working}");
    assert!(working.contains(r#"<details class="data"><summary>show</summary><b>parameters</b><pre>"#), "{working}");
    let (status, stones, _) = page(&s, &cookie, "/console/stones").await;
    assert_eq!(status, StatusCode::OK, "{stones}");
    assert!(stones.contains("<tr><td>nobody</td><td>start</td><td>1</td>"), "one left waiting: {stones}");
    assert!(stones.contains("<td>w-7</td><td>elsewhere</td>"), "{stones}");
    assert!(stones.contains("<tr><td>w-8</td><td>nobody</td><td>2</td><td>"), "the lease holder: {stones}");
    let throughput = stones.split("id=\"throughput\"").nth(1).unwrap_or_default();
    let billing = throughput.split("<tr><td>").find(|row| row.starts_with("BillingStone<"));
    let counts: Vec<u32> = billing
        .unwrap_or_else(|| panic!("no billing stone: {throughput}"))
        .split("<td>")
        .skip(1)
        .take(2)
        .map(|c| c.split('<').next().unwrap_or("").parse().unwrap_or(0))
        .collect();
    // The failed starts count in this minute, or in the one before when the minute turned
    // between them and the page.
    let turned = counts[0] < counts[1];
    assert!(counts[1] >= 1 && (turned || counts[0] == counts[1]), "its failed start, this hour: {counts:?}");
    let newest = if counts[0] > 0 { " (0 min ago)</title>" } else { " (1 min ago)</title>" };
    assert!(
        throughput.contains("<svg class=\"bars\"") && throughput.contains(newest) && !throughput.contains("<title>0 ("),
        "{throughput}"
    );
}

/// Starts a bk-sops task of [`operable`]; answers its process instance once `a` failed.
async fn failed_bk_task(s: &TestServer) -> String {
    let made = s
        .bk_ok(
            "create_template",
            json!({"bk_biz_id": 5, "name": "ops", "pipeline_tree": common::bk_fail_then_callback()}),
        )
        .await;
    let body = json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "run"});
    s.bk_ok("create_and_start_task", body).await;
    let newest = flowstone_store::Page { offset: 0, limit: 1 };
    let filter = flowstone_store::InstanceFilter { kind: Some("process".into()), ..Default::default() };
    let (rows, _) = s.runtime().store().list_instances(&filter, newest).await.unwrap_or_else(|e| panic!("{e}"));
    let id = rows.first().map(|r| r.id.clone()).unwrap_or_else(|| panic!("the task started no instance"));
    s.wait_for(&id, "debug").await;
    id
}

/// The path of the button of the element's latest record doing `action`, once the instance's
/// page shows one.
async fn button_of(s: &TestServer, cookie: &str, id: &str, element: &str, action: &str) -> (String, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, shown, _) = page(s, cookie, &format!("/console/instances/{id}")).await;
        let rows: Vec<&str> =
            shown.split("<tr data-task=").filter(|r| r.contains(&format!("<td>{element}</td>"))).collect();
        let path = rows
            .last()
            .and_then(|r| r.split("action=\"").find(|a| a.contains(&format!("/{action}\""))))
            .and_then(|a| a.split('"').next());
        if let Some(path) = path {
            return (path.to_owned(), csrf_of(&shown));
        }
        assert!(std::time::Instant::now() < deadline, "no {action} for {element}: {shown}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn bk_sops_nodes_are_skipped_retried_called_back_and_failed_from_the_canvas(s: TestServer) {
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let skipped = failed_bk_task(&s).await;
    let (_, canvas, _) = page(&s, &cookie, &format!("/console/instances/{skipped}")).await;
    assert!(canvas.contains(r#"<g class="node failed" data-element="a">"#), "the canvas shows the failure: {canvas}");
    let (skip, csrf) = button_of(&s, &cookie, &skipped, "a", "skip").await;
    assert_eq!(act(&s, &cookie, &skip, &[("csrf", &csrf)]).await.0, StatusCode::SEE_OTHER);
    let (callback, _) = button_of(&s, &cookie, &skipped, "b", "callback").await;
    let (status, _) = act(&s, &cookie, &callback, &[("csrf", &csrf), ("outputs", r#"{"ok": 1}"#)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    s.wait_for(&skipped, "success").await;

    let retried = failed_bk_task(&s).await;
    let (rerun, _) = button_of(&s, &cookie, &retried, "a", "rerun").await;
    let (status, _) = act(&s, &cookie, &rerun, &[("csrf", &csrf), ("parameters", r#"{"fail": null}"#)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (fail, _) = button_of(&s, &cookie, &retried, "b", "forcefail").await;
    let (status, _) = act(&s, &cookie, &fail, &[("csrf", &csrf), ("reason", "not today")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    s.wait_for(&retried, "debug").await;
    let (_, shown, _) = page(&s, &cookie, &format!("/console/instances/{retried}")).await;
    assert!(shown.contains("not today") && shown.contains(r#"<g class="node done" data-element="a">"#), "{shown}");
}

async fn a_selection_is_canceled_in_bulk_and_an_instances_variables_are_set_and_removed(s: TestServer) {
    s.deploy(REVIEW).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            s.start_process("review", json!({})).await["processInstanceId"].as_str().unwrap_or_default().to_owned(),
        );
    }
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let (_, list, _) = page(&s, &cookie, "/console").await;
    assert!(list.contains(&format!(r#"name="id" value="{}""#, ids[0])), "each row can be selected: {list}");
    let csrf = csrf_of(&list);
    let selection =
        [("csrf", csrf.as_str()), ("action", "cancel"), ("id", &ids[0]), ("id", &ids[1]), ("id", "no-such")];
    let (status, done) = act(&s, &cookie, "/console/bulk", &selection).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("cancel: 2 of 3 done") && done.contains("refused (404)"), "{done}");
    s.wait_for(&ids[0], "canceled").await;
    s.wait_for(&ids[1], "canceled").await;
    assert_eq!(s.process(&ids[2]).await["processStatus"], "running", "what was not selected runs on");
    for bad in [
        vec![("csrf", csrf.as_str()), ("action", "explode"), ("id", &ids[2])],
        vec![("csrf", csrf.as_str()), ("action", "cancel")],
    ] {
        let (status, refused) = act(&s, &cookie, "/console/bulk", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    }

    let variables = format!("/console/instances/{}/variables", ids[2]);
    let set = [("csrf", csrf.as_str()), ("variables", r#"{"count": 5, "note": "checked"}"#), ("remove", "")];
    assert_eq!(act(&s, &cookie, &variables, &set).await.0, StatusCode::SEE_OTHER);
    let (_, shown, _) = page(&s, &cookie, &format!("/console/instances/{}", ids[2])).await;
    assert!(
        shown.contains("&quot;count&quot;: 5") && shown.contains("&quot;note&quot;: &quot;checked&quot;"),
        "{shown}"
    );
    let remove = [("csrf", csrf.as_str()), ("variables", ""), ("remove", "count")];
    assert_eq!(act(&s, &cookie, &variables, &remove).await.0, StatusCode::SEE_OTHER);
    let (_, shown, _) = page(&s, &cookie, &format!("/console/instances/{}", ids[2])).await;
    assert!(!shown.contains("&quot;count&quot;") && shown.contains("&quot;note&quot;"), "{shown}");
    let (status, refused) = act(&s, &cookie, &variables, &[("csrf", csrf.as_str()), ("variables", "")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}

const CANDIDATE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
  <process id="approval" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="approve"/>
    <userTask id="approve" name="Approve the order" flowable:candidateUsers="pat" flowable:formKey="approval-form"/><sequenceFlow id="f2" sourceRef="approve" targetRef="e"/>
    <endEvent id="e"/></process></definitions>"#;

async fn a_person_claims_and_completes_their_task_from_the_inbox(s: TestServer) {
    let (status, body) = s.post(&format!("{SERVICE}/identity/users"), json!({"id": "pat", "password": "pw"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.deploy(CANDIDATE).await;
    let order = json!({"count": 2, "urgent": true, "note": "<asap>", "lines": [1, 2]});
    let id = s.start_process("approval", order).await["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let (status, cookie, _) = sign_in(&s, "pat", "pw").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap_or_default();
    let (_, inbox, _) = page(&s, &cookie, "/console/inbox").await;
    assert!(inbox.contains("Approve the order") && inbox.contains(">Claim</button>"), "{inbox}");
    let task = inbox.split("data-task=\"").nth(1).and_then(|t| t.split('"').next()).unwrap_or_default().to_owned();
    let csrf = csrf_of(&inbox);
    let (status, _) = act(&s, &cookie, &format!("/console/inbox/{task}/claim"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, inbox, _) = page(&s, &cookie, "/console/inbox").await;
    assert!(inbox.contains(">Complete</button>") && inbox.contains(">pat<"), "claimed: {inbox}");
    // No form properties: a field for each of the process's variables that holds a scalar,
    // and a word on the form the task names.
    assert!(inbox.contains("form <code>approval-form</code> is not read here"), "{inbox}");
    assert!(inbox.contains(r#"<input type="number" step="1" name="form:count" value="2">"#), "{inbox}");
    assert!(inbox.contains(r#"name="form:urgent" value="true" checked>"#), "{inbox}");
    assert!(inbox.contains(r#"name="form:note" value="&lt;asap&gt;">"#) && !inbox.contains("form:lines"), "{inbox}");
    let done = [
        ("csrf", csrf.as_str()),
        ("form:count", "5"),
        ("form:urgent", "false"),
        ("form:note", "<asap>"),
        ("variables", r#"{"approved": "yes"}"#),
    ];
    let (status, _) = act(&s, &cookie, &format!("/console/inbox/{task}/complete"), &done).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let ended = s.wait_for(&id, "success").await;
    let outputs: Value = serde_json::from_str(ended["nativeOutputs"].as_str().unwrap_or("{}")).unwrap_or_default();
    let set = json!({"count": 5, "urgent": false, "note": "<asap>", "lines": [1, 2], "approved": "yes"});
    assert_eq!(outputs, set, "typed as they were, the box unticked: {ended}");
    let (_, inbox, _) = page(&s, &cookie, "/console/inbox").await;
    assert!(inbox.contains("0 open task(s)"), "{inbox}");
    let (status, refused) = act(&s, &cookie, &format!("/console/inbox/{task}/complete"), &done).await;
    assert_eq!(status, StatusCode::CONFLICT, "a completed task is not completed again: {refused}");
}

/// The data-task id of the first row of a page's table that holds `name`.
fn task_named(page: &str, name: &str) -> String {
    let row = page.split("<tr data-task=\"").skip(1).find(|row| row.split("</tr>").next().unwrap_or("").contains(name));
    row.and_then(|r| r.split('"').next()).unwrap_or_else(|| panic!("no task {name}: {page}")).to_owned()
}

/// Activiti's sales-lead example: the form of its first task, drawn in the inbox and filled
/// in there, sets typed variables; its enum form is filled from the instance's page.
async fn a_models_form_properties_are_drawn_checked_and_set_as_typed_variables(s: TestServer) {
    let Some(shared) = common::shared_dir() else { return };
    let xml = must(std::fs::read_to_string(shared.join("conformance/flowable/activiti5/reviewSalesLead.bpmn20.xml")));
    s.deploy(&xml).await;
    let (_, cookie, _) = sign_in(&s, "admin", PASSWORD).await;
    let cookie = cookie.unwrap_or_default();
    let id = s.start_process("reviewSaledLead", json!({"details": "<big>"})).await["processInstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, inbox, _) = page(&s, &cookie, "/console/inbox").await;
    assert!(
        inbox.contains(
            r#"<label class="field">Customer name * <input type="text" name="form:customerName" value="" required>"#
        ),
        "{inbox}"
    );
    assert!(inbox.contains(r#"<input type="number" step="1" name="form:potentialProfit" value="">"#), "{inbox}");
    assert!(inbox.contains(r#"name="form:details" value="&lt;big&gt;">"#), "the process's value: {inbox}");
    let task = task_named(&inbox, "Provide new sales lead");
    let csrf = csrf_of(&inbox);
    let complete = format!("/console/inbox/{task}/complete");
    let (status, refused) = act(&s, &cookie, &complete, &[("csrf", &csrf), ("form:potentialProfit", "12")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("`Customer name` is required"), "{refused}");
    let wrong = [("csrf", csrf.as_str()), ("form:customerName", "Alfresco"), ("form:potentialProfit", "lots")];
    let (status, refused) = act(&s, &cookie, &complete, &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("`Potential profit` must be a whole number, not `lots`"), "{refused}");
    let filled = [("csrf", csrf.as_str()), ("form:customerName", "Alfresco"), ("form:potentialProfit", "12")];
    assert_eq!(act(&s, &cookie, &complete, &filled).await.0, StatusCode::SEE_OTHER);

    let (_, one, _) = page(&s, &cookie, &format!("/console/instances/{id}")).await;
    assert!(
        one.contains("&quot;potentialProfit&quot;: 12\n")
            && one.contains("&quot;customerName&quot;: &quot;Alfresco&quot;"),
        "typed: {one}"
    );
    assert!(one.contains(r#"<option value="true">No (= request more info)</option>"#), "{one}");
    let review = task_named(&one, "Review profitability");
    let on = format!("/console/tasks/{review}/complete");
    let (status, refused) = act(&s, &cookie, &on, &[("csrf", &csrf), ("form:notEnoughInformation", "maybe")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.contains("must be one of false, true, not `maybe`"), "{refused}");
    let chosen = [("csrf", csrf.as_str()), ("form:notEnoughInformation", "false")];
    assert_eq!(act(&s, &cookie, &on, &chosen).await.0, StatusCode::SEE_OTHER);
    let rating = task_named(&page(&s, &cookie, &format!("/console/instances/{id}")).await.1, "Review customer rating");
    assert_eq!(
        act(&s, &cookie, &format!("/console/tasks/{rating}/complete"), &[("csrf", &csrf)]).await.0,
        StatusCode::SEE_OTHER
    );
    let ended = s.wait_for(&id, "success").await;
    let outputs: Value = serde_json::from_str(ended["nativeOutputs"].as_str().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(outputs["notEnoughInformation"], "false", "{ended}");
}

backend_tests!(server = TestServer::start;
    a_models_form_properties_are_drawn_checked_and_set_as_typed_variables,
    a_session_opens_the_console_and_no_api_and_signing_out_ends_it,
    the_list_counts_and_filters_and_an_instance_shows_its_states_on_its_diagram,
    a_user_who_does_not_operate_is_refused_the_console,
    an_instance_page_is_told_of_each_committed_change_and_redraws_from_its_live_part,
    buttons_rerun_a_failed_stone_with_edited_parameters_complete_a_user_task_and_cancel,
    models_are_listed_deployed_by_upload_and_started_with_variables,
    a_person_claims_and_completes_their_task_from_the_inbox,
    incidents_list_failed_stones_with_a_rerun_and_the_stones_page_shows_queues_and_workers,
    bk_sops_nodes_are_skipped_retried_called_back_and_failed_from_the_canvas,
    a_selection_is_canceled_in_bulk_and_an_instances_variables_are_set_and_removed,
);
