//! Flowable REST against its own OpenAPI document, through the real server on SQLite and
//! PostgreSQL: every answer of a deployment's, an instance's, a task's and an identity's life
//! fits the schema its operation documents for its status, with no field the schema does not
//! name.

mod common;

use common::{TestServer, conforms, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="documented" name="Documented"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="check"/>
  <userTask id="check" name="Check"/><sequenceFlow sourceRef="check" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// The server and its document, to call an operation and check the answer against it.
struct Documented {
    s: TestServer,
    doc: Value,
}

impl Documented {
    /// Calls `method` on `path` (an instance of the documented `template`, both under the
    /// service root), expects `status`, and checks the answer against the document.
    async fn call(&self, method: Method, template: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, answer) = self.s.call(method.clone(), &format!("{SERVICE}/{path}"), body).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {answer}");
        self.fits(&method, template, status, &answer);
        answer
    }

    async fn get(&self, template: &str, path: &str, status: u16) -> Value {
        self.call(Method::GET, template, path, None, status).await
    }

    async fn delete(&self, template: &str, path: &str, status: u16) -> Value {
        self.call(Method::DELETE, template, path, None, status).await
    }

    async fn send(&self, method: Method, template: &str, path: &str, body: Value, status: u16) -> Value {
        self.call(method, template, path, Some(body), status).await
    }

    fn fits(&self, method: &Method, template: &str, status: u16, answer: &Value) {
        let op = &self.doc["paths"][format!("{SERVICE}/{template}")][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let documented = &op["responses"][status.to_string()];
        assert!(documented.is_object(), "{method} {template}: {status} is not documented");
        let schema = &documented["content"]["application/json"]["schema"];
        if schema.is_object() {
            if let Err(e) = conforms(&self.doc, schema, answer, template) {
                panic!("{method} {template}: the answer does not fit the document: {e}\n{answer}");
            }
        } else {
            assert!(answer.as_str().is_some_and(str::is_empty) || answer.is_null(), "{method} {template}: {answer}");
        }
    }
}

async fn flowable_answers_fit_the_openapi_document(s: TestServer) {
    let doc = must(must(reqwest::get(format!("{}/openapi.json", s.base)).await).json::<Value>().await);
    let d = Documented { s, doc };

    // The repository.
    let form = reqwest::multipart::Form::new()
        .text("deploymentName", "docs")
        .part("file", reqwest::multipart::Part::text(MODEL).file_name("documented.bpmn20.xml"));
    let url = format!("{}{SERVICE}/repository/deployments", d.s.base);
    let resp = must(d.s.client.post(url).multipart(form).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let deployment: Value = must(resp.json().await);
    d.fits(&Method::POST, "repository/deployments", 201, &deployment);
    let dep = id_of(&deployment);
    d.get("repository/deployments", "repository/deployments?sort=name", 200).await;
    d.get("repository/deployments/{id}", &format!("repository/deployments/{dep}"), 200).await;
    let resources = format!("repository/deployments/{dep}/resources");
    d.get("repository/deployments/{id}/resources", &resources, 200).await;
    let one = "repository/deployments/{id}/resources/{resource}";
    d.get(one, &format!("{resources}/documented.bpmn20.xml"), 200).await;
    d.get(one, &format!("{resources}/nothing.bpmn"), 404).await;
    let definitions = "repository/process-definitions";
    let found = d.get(definitions, &format!("{definitions}?key=documented"), 200).await;
    let definition = format!("{definitions}/{}", id_of(&found["data"][0]));
    d.get("repository/process-definitions/{id}", &definition, 200).await;
    d.send(Method::PUT, "repository/process-definitions/{id}", &definition, json!({"category": "x"}), 501).await;

    // An instance, its variables, executions and history.
    let instances = "runtime/process-instances";
    let start = json!({"processDefinitionKey": "documented", "variables": [{"name": "n", "value": 1}], "returnVariables": true});
    let id = id_of(&d.send(Method::POST, instances, instances, start, 201).await);
    let running = format!("{instances}/{id}");
    d.get("runtime/process-instances/{id}", &running, 200).await;
    d.get(instances, &format!("{instances}?includeProcessVariables=true&processInstanceId={id}"), 200).await;
    d.send(Method::POST, "query/process-instances", "query/process-instances", json!({"id": id}), 200).await;
    let vars = format!("{running}/variables");
    let template = "runtime/process-instances/{id}/variables";
    d.send(Method::POST, template, &vars, json!([{"name": "m", "type": "string", "value": "x"}]), 201).await;
    d.send(Method::POST, template, &vars, json!([{"name": "m", "value": "y"}]), 409).await;
    d.send(Method::PUT, template, &vars, json!([{"name": "m", "value": "y"}]), 201).await;
    d.get(template, &vars, 200).await;
    let (var, template) = (format!("{vars}/m"), "runtime/process-instances/{id}/variables/{name}");
    d.get(template, &var, 200).await;
    d.send(Method::PUT, template, &var, json!({"name": "m", "value": 3}), 200).await;
    d.delete(template, &var, 204).await;
    d.get(template, &var, 404).await;
    let executions = d.get("runtime/executions", &format!("runtime/executions?processInstanceId={id}"), 200).await;
    let execution = format!("runtime/executions/{}", id_of(&executions["data"][0]));
    d.get("runtime/executions/{id}", &execution, 200).await;
    d.get("runtime/executions/{id}/activities", &format!("{execution}/activities"), 200).await;
    d.send(Method::POST, "query/executions", "query/executions", json!({"processInstanceId": id}), 200).await;
    let activities = "history/historic-activity-instances";
    d.get(activities, &format!("{activities}?processInstanceId={id}"), 200).await;

    // Its user task and everything on it.
    let tasks = d
        .get("runtime/tasks", &format!("runtime/tasks?processInstanceId={id}&includeProcessVariables=true"), 200)
        .await;
    let task = id_of(&tasks["data"][0]);
    let at = format!("runtime/tasks/{task}");
    d.get("runtime/tasks/{id}", &at, 200).await;
    d.send(Method::PUT, "runtime/tasks/{id}", &at, json!({"priority": 80, "dueDate": "2030-01-01T00:00:00Z"}), 200)
        .await;
    let filtered = json!({"processInstanceVariables": [{"name": "n", "value": 1}]});
    d.send(Method::POST, "query/tasks", "query/tasks", filtered, 200).await;
    let template = "runtime/tasks/{id}/variables";
    d.send(Method::POST, template, &format!("{at}/variables"), json!([{"name": "l", "value": true}]), 201).await;
    d.get(template, &format!("{at}/variables"), 200).await;
    d.get("runtime/tasks/{id}/variables/{name}", &format!("{at}/variables/l"), 200).await;
    let (links, link) = (format!("{at}/identitylinks"), json!({"groupId": "sales", "type": "candidate"}));
    d.send(Method::POST, "runtime/tasks/{id}/identitylinks", &links, link, 201).await;
    d.get("runtime/tasks/{id}/identitylinks", &links, 200).await;
    d.get("runtime/tasks/{id}/identitylinks/{family}", &format!("{links}/groups"), 200).await;
    let (comments, said) = (format!("{at}/comments"), json!({"message": "fine", "saveProcessInstanceId": true}));
    let comment = id_of(&d.send(Method::POST, "runtime/tasks/{id}/comments", &comments, said, 201).await);
    d.get("runtime/tasks/{id}/comments/{comment}", &format!("{comments}/{comment}"), 200).await;
    let events = d.get("runtime/tasks/{id}/events", &format!("{at}/events"), 200).await;
    d.get("runtime/tasks/{id}/events/{event}", &format!("{at}/events/{}", id_of(&events[0])), 200).await;
    let (files, file) =
        (format!("{at}/attachments"), json!({"name": "spec", "externalUrl": "https://example.org/spec"}));
    let attachment = id_of(&d.send(Method::POST, "runtime/tasks/{id}/attachments", &files, file, 201).await);
    d.get("runtime/tasks/{id}/attachments", &files, 200).await;
    d.get("runtime/tasks/{id}/attachments/{attachment}", &format!("{files}/{attachment}"), 200).await;
    d.send(Method::POST, "runtime/tasks/{id}", &at, json!({"action": "fly"}), 400).await;
    d.send(Method::POST, "runtime/tasks/{id}", &at, json!({"action": "complete"}), 200).await;
    d.get("runtime/tasks/{id}", &at, 404).await;
    let ended = "history/historic-task-instances";
    let with_vars = "includeTaskLocalVariables=true&includeProcessVariables=true";
    d.get(ended, &format!("{ended}?processInstanceId={id}&{with_vars}"), 200).await;
    d.get("history/historic-task-instances/{id}", &format!("{ended}/{task}"), 200).await;
    d.send(
        Method::POST,
        "query/historic-task-instances",
        "query/historic-task-instances",
        json!({"finished": true}),
        200,
    )
    .await;
    let history = "history/historic-process-instances";
    d.get("history/historic-process-instances/{id}", &format!("{history}/{id}"), 200).await;
    d.get(history, &format!("{history}?finished=true"), 200).await;
    let listed = d.get(history, &format!("{history}?sort=startTime&order=desc"), 200).await;
    assert_eq!((listed["sort"].as_str(), listed["data"][0]["id"].as_str()), (Some("startTime"), Some(id.as_str())));
    d.get(instances, &format!("{instances}?sort=duration"), 400).await;
    let query = "query/historic-process-instances";
    d.send(Method::POST, query, query, json!({"includeProcessVariables": true}), 200).await;

    // A standalone task, and identities.
    let alone = id_of(&d.send(Method::POST, "runtime/tasks", "runtime/tasks", json!({"name": "alone"}), 201).await);
    d.delete("runtime/tasks/{id}", &format!("runtime/tasks/{alone}"), 204).await;
    let (users, groups) = ("identity/users", "identity/groups");
    d.send(Method::POST, users, users, json!({"id": "gonzo", "firstName": "Gonzo"}), 201).await;
    d.get(users, &format!("{users}?firstNameLike=Go%25"), 200).await;
    d.send(Method::PUT, "identity/users/{id}", &format!("{users}/gonzo"), json!({"email": "g@example.org"}), 200).await;
    d.get("identity/users/{id}/picture", &format!("{users}/gonzo/picture"), 501).await;
    d.send(Method::POST, groups, groups, json!({"id": "muppets", "name": "Muppets"}), 201).await;
    let members = format!("{groups}/muppets/members");
    d.send(Method::POST, "identity/groups/{id}/members", &members, json!({"userId": "gonzo"}), 201).await;
    d.get(groups, &format!("{groups}?member=gonzo"), 200).await;
    d.get("identity/groups/{id}", &format!("{groups}/muppets"), 200).await;
    d.delete("identity/groups/{id}/members/{user}", &format!("{members}/gonzo"), 204).await;
    d.delete("identity/users/{id}", &format!("{users}/gonzo"), 204).await;
    d.get("identity/users/{id}", &format!("{users}/gonzo"), 404).await;
}

/// The `id` of an answer.
fn id_of(answer: &Value) -> String {
    answer["id"].as_str().unwrap_or_default().to_owned()
}

/// A user task with an hour's interrupting boundary timer, as Flowable's `JobResourceTest`
/// deploys it.
const TIMED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="timerProcess"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="task"/><userTask id="task"/>
  <boundaryEvent id="escalationTimer" name="Escalation" attachedToRef="task">
    <timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
  <sequenceFlow sourceRef="escalationTimer" targetRef="afterTimer"/><userTask id="afterTimer"/>
  <sequenceFlow sourceRef="task" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// Starts the timed process through Flowable REST; its instance id.
async fn start_timed(d: &Documented) -> String {
    let start = json!({"processDefinitionKey": "timerProcess"});
    id_of(&d.send(Method::POST, "runtime/process-instances", "runtime/process-instances", start, 201).await)
}

/// Timer jobs: listed with where they wait and when they are due, moved (fired now) or
/// deleted (never fired), every answer as the document says.
async fn timer_jobs_are_listed_moved_and_deleted_as_documented(s: TestServer) {
    let doc = must(must(reqwest::get(format!("{}/openapi.json", s.base)).await).json::<Value>().await);
    let d = Documented { s, doc };
    d.s.deploy(TIMED).await;
    let id = start_timed(&d).await;
    let listed = d.get("management/timer-jobs", &format!("management/timer-jobs?processInstanceId={id}"), 200).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let job = &listed["data"][0];
    assert_eq!((job["elementId"].as_str(), job["elementName"].as_str()), (Some("escalationTimer"), Some("Escalation")));
    let due = job["dueDate"].as_str().and_then(flowstone_engine::parse_instant).unwrap_or_default();
    let ahead = due - jiff::Timestamp::now().as_millisecond();
    assert!((3_500_000..=3_600_000).contains(&ahead), "due in an hour: {job}");
    let at = format!("management/timer-jobs/{}", id_of(job));
    d.get("management/timer-jobs/{id}", &at, 200).await;
    d.get("management/jobs", "management/jobs", 200).await;
    d.get("management/jobs/{id}", &format!("management/jobs/{}", id_of(job)), 404).await;
    d.get("management/deadletter-jobs", "management/deadletter-jobs", 200).await;
    d.get("management/deadletter-jobs/{id}", &format!("management/deadletter-jobs/{}", id_of(job)), 404).await;
    d.get("management/timer-jobs", "management/timer-jobs?tenantId=x", 400).await;
    let refused = d.send(Method::POST, "management/timer-jobs/{id}", &at, json!({"action": "execute"}), 400).await;
    assert_eq!(refused["exception"], "Invalid action, only 'move' is supported.");
    d.send(Method::POST, "management/timer-jobs/{id}", &at, json!({"action": "move"}), 204).await;
    d.get("management/timer-jobs/{id}", &at, 404).await;
    let tasks = d.get("runtime/tasks", &format!("runtime/tasks?processInstanceId={id}"), 200).await;
    assert_eq!(tasks["data"][0]["taskDefinitionKey"], "afterTimer", "the timer fired: {tasks}");
    let activities = "history/historic-activity-instances";
    let fired =
        d.get(activities, &format!("{activities}?processInstanceId={id}&activityId=escalationTimer"), 200).await;
    assert_eq!(fired["data"][0]["activityType"], "boundaryEvent", "{fired}");

    let other = start_timed(&d).await;
    let listed = d.get("management/timer-jobs", &format!("management/timer-jobs?processInstanceId={other}"), 200).await;
    let at = format!("management/timer-jobs/{}", id_of(&listed["data"][0]));
    d.delete("management/timer-jobs/{id}", &at, 204).await;
    d.delete("management/timer-jobs/{id}", &at, 404).await;
    let tasks = d.get("runtime/tasks", &format!("runtime/tasks?processInstanceId={other}"), 200).await;
    assert_eq!(tasks["data"][0]["taskDefinitionKey"], "task", "the task goes on: {tasks}");

    // A timer start event's timer is a job of its process definition and of no instance:
    // moved, it starts an instance and waits for its next time; deleted, the schedule ends.
    d.s.deploy(SCHEDULED).await;
    let definitions = d.get("repository/process-definitions", "repository/process-definitions?key=nightly", 200).await;
    let definition = id_of(&definitions["data"][0]);
    let jobs = format!("management/timer-jobs?processDefinitionId={definition}");
    let listed = d.get("management/timer-jobs", &jobs, 200).await;
    let job = &listed["data"][0];
    assert_eq!((job["processInstanceId"].is_null(), job["elementId"].as_str()), (true, Some("midnight")), "{listed}");
    let at = format!("management/timer-jobs/{}", id_of(job));
    d.send(Method::POST, "management/timer-jobs/{id}", &at, json!({"action": "move"}), 204).await;
    let started =
        d.get("runtime/process-instances", "runtime/process-instances?processDefinitionKey=nightly", 200).await;
    assert_eq!(started["total"], 1, "the move started an instance: {started}");
    let next = d.get("management/timer-jobs/{id}", &at, 200).await;
    assert_ne!(next["dueDate"], job["dueDate"], "it waits for its next time: {next}");
    d.delete("management/timer-jobs/{id}", &at, 204).await;
    assert_eq!(d.get("management/timer-jobs", &jobs, 200).await["total"], 0, "the schedule ended");
}

const SCHEDULED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="nightly"><startEvent id="midnight"><timerEventDefinition><timeCycle>0 0 0 * * ?</timeCycle></timerEventDefinition></startEvent>
  <sequenceFlow sourceRef="midnight" targetRef="task"/><userTask id="task"/>
  <sequenceFlow sourceRef="task" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

backend_tests!(server = TestServer::start;
    flowable_answers_fit_the_openapi_document,
    timer_jobs_are_listed_moved_and_deleted_as_documented,
);
