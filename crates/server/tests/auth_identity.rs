//! Signing in (HTTP Basic against the identity users, bearer tokens) on every dialect, and
//! Flowable's `identity/users`, `identity/groups` and group members, through the real server
//! on SQLite and PostgreSQL.

mod common;

use common::{PASSWORD, TestServer, signed_in};
use reqwest::{Client, Method, StatusCode, header};
use serde_json::{Value, json};

const IDENTITY: &str = "/flowable-rest/service/identity";

async fn every_api_but_health_needs_a_signed_in_user(s: TestServer) {
    let nobody = Client::new();
    let (status, _) = s.call_with(&nobody, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "health needs no credentials");
    for path in ["/process", "/model", "/flowable-rest/service/runtime/tasks", "/flowable-rest/external-job-api/jobs"] {
        let resp = match nobody.get(format!("{}{path}", s.base)).send().await {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = resp.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some("Basic realm=\"Flowstone\""), "{path}");
    }
    let (_, platform) = s.call_with(&nobody, Method::GET, "/process", None).await;
    assert_eq!(platform["status"], 401, "the platform's error shape: {platform}");
    let (_, flowable) = s.call_with(&nobody, Method::GET, "/flowable-rest/service/runtime/tasks", None).await;
    assert_eq!(flowable["message"], "Unauthorized", "Flowable's error shape: {flowable}");
    assert!(flowable["exception"].as_str().is_some_and(|e| e.contains("credentials")), "{flowable}");

    let wrong = signed_in("admin:not-the-password");
    let (status, body) = s.call_with(&wrong, Method::GET, "/process", None).await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong user name or password")));
    let unknown = signed_in("nobody:x");
    assert_eq!(s.call_with(&unknown, Method::GET, "/process", None).await.0, StatusCode::UNAUTHORIZED);
    let garbled = must_client(&[(header::AUTHORIZATION, "Basic !!!")]);
    assert_eq!(s.call_with(&garbled, Method::GET, "/process", None).await.0, StatusCode::UNAUTHORIZED);
    let admin = signed_in(&format!("admin:{PASSWORD}"));
    assert_eq!(s.call_with(&admin, Method::GET, "/process", None).await.0, StatusCode::OK);
}

fn must_client(headers: &[(header::HeaderName, &str)]) -> Client {
    let mut map = header::HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.clone(), common::must(value.parse()));
    }
    common::must(Client::builder().default_headers(map).build())
}

async fn a_bearer_token_signs_in_until_it_is_revoked(s: TestServer) {
    let (status, issued) = s.post("/auth/tokens", json!({"expiresInSeconds": 600})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["userId"], "admin");
    let token = issued["token"].as_str().unwrap_or_default();
    let bearer = must_client(&[(header::AUTHORIZATION, &format!("Bearer {token}"))]);
    assert_eq!(s.call_with(&bearer, Method::GET, "/process", None).await.0, StatusCode::OK);
    let (status, _) = s.post("/auth/tokens", json!({"expiresInSeconds": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a token must live at least a second");
    assert_eq!(
        s.call(Method::DELETE, "/auth/tokens/current", None).await.0,
        StatusCode::BAD_REQUEST,
        "basic has no token"
    );
    assert_eq!(s.call_with(&bearer, Method::DELETE, "/auth/tokens/current", None).await.0, StatusCode::NO_CONTENT);
    let (status, body) = s.call_with(&bearer, Method::GET, "/process", None).await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("unknown or revoked token")));
}

async fn users_are_created_listed_updated_and_deleted_with_their_codes(s: TestServer) {
    let users = format!("{IDENTITY}/users");
    let kermit = json!({"id": "kermit", "firstName": "Kermit", "lastName": "the Frog", "email": "k@muppets", "password": "green"});
    let (status, body) = s.post(&users, kermit.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["url"], format!("{}{users}/kermit", s.base));
    assert!(body.get("password").is_none(), "a password is never shown");
    assert_eq!(s.post(&users, kermit).await.0, StatusCode::CONFLICT);
    assert_eq!(s.post(&users, json!({"firstName": "No id"})).await.0, StatusCode::BAD_REQUEST);
    s.post(&users, json!({"id": "gonzo", "firstName": "Gonzo", "email": "g@muppets"})).await;

    let (status, page) = s.get(&format!("{users}?firstNameLike=G%25&sort=id&order=desc")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["data"].as_array().into_iter().flatten().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids, ["gonzo"]);
    let (_, page) = s.get(&format!("{users}?sort=id&order=desc&size=2")).await;
    assert_eq!((page["total"].as_u64(), page["size"].as_u64(), page["sort"].as_str()), (Some(3), Some(2), Some("id")));
    assert_eq!(page["data"][0]["id"], "kermit");
    assert_eq!(s.get(&format!("{users}?sort=color")).await.0, StatusCode::BAD_REQUEST);

    // A user signs in with their password, and may change their own record only.
    let as_kermit = signed_in("kermit:green");
    let (status, me) = s.call_with(&as_kermit, Method::GET, &format!("{users}/kermit"), None).await;
    assert_eq!((status, me["lastName"].as_str()), (StatusCode::OK, Some("the Frog")));
    let (status, _) =
        s.call_with(&as_kermit, Method::PUT, &format!("{users}/gonzo"), Some(json!({"email": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, me) = s
        .call_with(
            &as_kermit,
            Method::PUT,
            &format!("{users}/kermit"),
            Some(json!({"email": null, "password": "blue"})),
        )
        .await;
    assert_eq!((status, &me["email"], &me["firstName"]), (StatusCode::OK, &Value::Null, &json!("Kermit")), "{me}");
    assert_eq!(
        s.call_with(&as_kermit, Method::GET, "/process", None).await.0,
        StatusCode::UNAUTHORIZED,
        "old password"
    );
    assert_eq!(s.call_with(&signed_in("kermit:blue"), Method::GET, "/process", None).await.0, StatusCode::OK);

    assert_eq!(s.put(&format!("{users}/nobody"), Some(json!({}))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("{users}/kermit/picture")).await.0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(s.call(Method::DELETE, &format!("{users}/kermit"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Method::DELETE, &format!("{users}/kermit"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("{users}/kermit")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call_with(&signed_in("kermit:blue"), Method::GET, "/process", None).await.0, StatusCode::UNAUTHORIZED);
}

async fn groups_and_members_with_their_codes(s: TestServer) {
    let groups = format!("{IDENTITY}/groups");
    s.post(&format!("{IDENTITY}/users"), json!({"id": "kermit"})).await;
    let (status, body) = s.post(&groups, json!({"id": "sales", "name": "Sales", "type": "assignment"})).await;
    assert_eq!((status, body["type"].as_str()), (StatusCode::CREATED, Some("assignment")), "{body}");
    assert_eq!(s.post(&groups, json!({"id": "sales"})).await.0, StatusCode::CONFLICT);
    assert_eq!(s.post(&groups, json!({"name": "no id"})).await.0, StatusCode::BAD_REQUEST);
    s.post(&groups, json!({"id": "admins", "name": "Admins", "type": "security-role"})).await;

    let members = format!("{groups}/sales/members");
    let (status, member) = s.post(&members, json!({"userId": "kermit"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(member, json!({"userId": "kermit", "groupId": "sales", "url": format!("{}{members}/kermit", s.base)}));
    assert_eq!(s.post(&members, json!({"userId": "kermit"})).await.0, StatusCode::CONFLICT);
    assert_eq!(s.post(&members, json!({})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.post(&format!("{groups}/nope/members"), json!({"userId": "kermit"})).await.0, StatusCode::NOT_FOUND);

    let (_, of_kermit) = s.get(&format!("{groups}?member=kermit")).await;
    assert_eq!((of_kermit["total"].as_u64(), &of_kermit["data"][0]["id"]), (Some(1), &json!("sales")));
    let (_, in_sales) = s.get(&format!("{IDENTITY}/users?memberOfGroup=sales")).await;
    assert_eq!(in_sales["data"][0]["id"], "kermit");
    let (_, by_type) = s.get(&format!("{groups}?type=security-role&sort=name")).await;
    assert_eq!(by_type["data"][0]["id"], "admins");

    let (status, changed) = s.put(&format!("{groups}/sales"), Some(json!({"name": "Sales team"}))).await;
    assert_eq!(
        (status, changed["name"].as_str(), changed["type"].as_str()),
        (StatusCode::OK, Some("Sales team"), Some("assignment"))
    );
    assert_eq!(s.put(&format!("{groups}/nope"), Some(json!({}))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &format!("{members}/kermit"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Method::DELETE, &format!("{members}/kermit"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &format!("{groups}/sales"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("{groups}/sales")).await.0, StatusCode::NOT_FOUND);
}

async fn the_signed_in_user_authors_comments_and_events_and_starts_processes(s: TestServer) {
    s.post(&format!("{IDENTITY}/users"), json!({"id": "kermit", "password": "green"})).await;
    let kermit = signed_in("kermit:green");
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
        <process id="mine"><startEvent id="s" flowable:initiator="starter"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <userTask id="t" flowable:assignee="${starter}"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>
        </process></definitions>"#,
    )
    .await;
    let start = json!({"key": "mine", "processName": "p", "variables": {}});
    let (status, process) = s.call_with(&kermit, Method::POST, "/process", Some(start)).await;
    assert_eq!(status, StatusCode::OK, "{process}");
    let instance = process["processInstanceId"].as_str().unwrap_or_default();
    let (_, tasks) = s.get(&format!("/flowable-rest/service/runtime/tasks?processInstanceId={instance}")).await;
    assert_eq!(tasks["data"][0]["assignee"], "kermit", "the initiator variable names who started it");
    let task = tasks["data"][0]["id"].as_str().unwrap_or_default();
    let comments = format!("/flowable-rest/service/runtime/tasks/{task}/comments");
    let (status, comment) = s.call_with(&kermit, Method::POST, &comments, Some(json!({"message": "mine"}))).await;
    assert_eq!((status, comment["author"].as_str()), (StatusCode::CREATED, Some("kermit")), "{comment}");
    let (_, events) = s.get(&format!("/flowable-rest/service/runtime/tasks/{task}/events")).await;
    assert_eq!(events[0]["userId"], "kermit", "{events}");
}

backend_tests!(server = TestServer::start;
    every_api_but_health_needs_a_signed_in_user,
    a_bearer_token_signs_in_until_it_is_revoked,
    users_are_created_listed_updated_and_deleted_with_their_codes,
    groups_and_members_with_their_codes,
    the_signed_in_user_authors_comments_and_events_and_starts_processes,
);

#[tokio::test]
async fn requests_without_credentials_act_as_the_chosen_user_only_when_the_operator_says_so() {
    let anonymous = flowstone_server::Anonymous { user: "admin".into(), anywhere: false };
    let s = TestServer::start_anonymous(anonymous).await;
    let nobody = Client::new();
    let start = json!({"key": "w2_usertask", "processName": "x", "variables": {}});
    let (status, started) = s.call_with(&nobody, Method::POST, "/process", Some(start)).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let (status, listed) = s.call_with(&nobody, Method::GET, "/flowable-rest/service/runtime/tasks", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    // Wrong credentials are still refused: only a request without any acts as the user.
    let wrong = signed_in("admin:wrong");
    assert_eq!(s.call_with(&wrong, Method::GET, "/process", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_server_does_not_start_when_requests_without_credentials_would_act_as_no_one() {
    let dir = common::must(tempfile::tempdir());
    let config = flowstone_server::Config {
        listen: common::must("127.0.0.1:0".parse()),
        data_dir: dir.path().to_owned(),
        database: None,
        load_examples: false,
        runtime: flowstone_server::RuntimeOptions::default(),
        admin_password: Some(PASSWORD.into()),
        bk_apps: Vec::new(),
        http: flowstone_server::HttpLimits::default(),
        anonymous: Some(flowstone_server::Anonymous { user: "nobody".into(), anywhere: true }),
    };
    let refused = flowstone_server::Server::start(&config).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().is_some_and(|e| e.contains("nobody")), "{refused:?}");
}
