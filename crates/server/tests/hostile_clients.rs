//! Clients that attack the server rather than use it, through the real server: wrong
//! passwords by the hundred, sessions outliving a password, and connections that are slow,
//! idle or too many. Each test shows the attack is bounded and the server still answers.

mod common;

use common::{PASSWORD, TestServer, must, signed_in};
use flowstone_server::HttpLimits;
use reqwest::{Method, StatusCode, header};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn wrong_passwords_make_the_user_name_wait_with_429_and_retry_after(s: TestServer) {
    assert_eq!(s.get("/process").await.0, StatusCode::OK, "the admin signs in before the attack");
    let wrong = signed_in("admin:not-it");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let resp = must(wrong.get(format!("{}/process", s.base)).send().await);
        statuses.push((resp.status(), resp.headers().get(header::RETRY_AFTER).cloned()));
    }
    assert!(statuses[..5].iter().all(|(status, _)| *status == StatusCode::UNAUTHORIZED), "{statuses:?}");
    let (status, retry) = &statuses[7];
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let seconds: u64 = retry.as_ref().and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or_default();
    assert!((1..=60).contains(&seconds), "{retry:?}");
    let (status, body) =
        s.call_with(&signed_in("admin:not-it"), Method::GET, "/flowable-rest/service/runtime/tasks", None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("Too Many Requests")),
        "in Flowable's shape"
    );
    // The signed-in admin's remembered credentials still pass, and another user is not held.
    assert_eq!(s.get("/process").await.0, StatusCode::OK);
    let (status, _) =
        s.post("/flowable-rest/service/identity/users", json!({"id": "kermit", "password": "frog"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(s.call_with(&signed_in("kermit:frog"), Method::GET, "/process", None).await.0, StatusCode::OK);
}

async fn an_address_trying_many_user_names_is_held(s: TestServer) {
    let mut last = StatusCode::OK;
    for i in 0..25 {
        last = s.call_with(&signed_in(&format!("nobody{i}:x")), Method::GET, "/process", None).await.0;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn a_new_password_revokes_the_users_tokens(s: TestServer) {
    let (status, _) =
        s.post("/flowable-rest/service/identity/users", json!({"id": "kermit", "password": "frog"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let kermit = signed_in("kermit:frog");
    let (status, issued) =
        s.call_with(&kermit, Method::POST, "/auth/tokens", Some(json!({"expiresInSeconds": 600}))).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap_or_default();
    let bearer = signed_in_bearer(token);
    assert_eq!(s.call_with(&bearer, Method::GET, "/process", None).await.0, StatusCode::OK);
    let (status, body) = s.put("/flowable-rest/service/identity/users/kermit", Some(json!({"password": "toad"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.call_with(&bearer, Method::GET, "/process", None).await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("unknown or revoked token")));
    assert_eq!(s.call_with(&kermit, Method::GET, "/process", None).await.0, StatusCode::UNAUTHORIZED);
}

fn signed_in_bearer(token: &str) -> reqwest::Client {
    let mut headers = header::HeaderMap::new();
    headers.insert(header::AUTHORIZATION, must(format!("Bearer {token}").parse()));
    must(reqwest::Client::builder().default_headers(headers).build())
}

fn quick() -> HttpLimits {
    HttpLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
    }
}

async fn connect(s: &TestServer) -> TcpStream {
    must(TcpStream::connect(s.base.trim_start_matches("http://")).await)
}

/// Reads what the server sends until it closes the connection (at most 10 s).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut text = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut text)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&text).into_owned()
}

async fn half_sent_headers_and_idle_connections_are_closed(s: TestServer) {
    let mut half = connect(&s).await;
    must(half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await);
    let mut idle = connect(&s).await;
    assert_eq!(s.get("/health").await.0, StatusCode::OK, "others are served meanwhile");
    until_closed(&mut half).await;
    assert_eq!(until_closed(&mut idle).await, "", "an idle connection is closed without an answer");
}

async fn a_body_sent_too_slowly_is_answered_408(s: TestServer) {
    let mut slow = connect(&s).await;
    let head = "POST /process HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n";
    let auth = format!("Authorization: Basic {}\r\n\r\n", base64_of(&format!("admin:{PASSWORD}")));
    must(slow.write_all(format!("{head}{auth}{{\"key\":").as_bytes()).await);
    let answer = until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within"), "{answer}");
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn connections_past_the_limit_wait_until_one_closes(s: TestServer) {
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(&s).await;
        // A request sent and answered keeps the connection open (keep-alive) and counted.
        must(stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await);
        let mut buf = [0u8; 512];
        let n = must(stream.read(&mut buf).await);
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let waiting = tokio::spawn({
        let url = format!("{}/health", s.base);
        async move { must(reqwest::get(url).await).status() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a ninth connection is not served while eight are open");
    drop(held.pop());
    let status = must(tokio::time::timeout(Duration::from_secs(10), waiting).await);
    assert_eq!(must(status), StatusCode::OK, "served once one closed");
}

mod sqlite {
    use super::*;
    use common::Backend::Sqlite;

    #[tokio::test]
    async fn wrong_passwords_make_the_user_name_wait_with_429_and_retry_after() {
        super::wrong_passwords_make_the_user_name_wait_with_429_and_retry_after(
            TestServer::start(Sqlite).await.expect("sqlite"),
        )
        .await;
    }

    #[tokio::test]
    async fn an_address_trying_many_user_names_is_held() {
        super::an_address_trying_many_user_names_is_held(TestServer::start(Sqlite).await.expect("sqlite")).await;
    }

    #[tokio::test]
    async fn a_new_password_revokes_the_users_tokens() {
        super::a_new_password_revokes_the_users_tokens(TestServer::start(Sqlite).await.expect("sqlite")).await;
    }

    #[tokio::test]
    async fn half_sent_headers_and_idle_connections_are_closed() {
        super::half_sent_headers_and_idle_connections_are_closed(
            TestServer::start_http(Sqlite, quick()).await.expect("sqlite"),
        )
        .await;
    }

    #[tokio::test]
    async fn a_body_sent_too_slowly_is_answered_408() {
        super::a_body_sent_too_slowly_is_answered_408(TestServer::start_http(Sqlite, quick()).await.expect("sqlite"))
            .await;
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_until_one_closes() {
        let limits = HttpLimits { header_timeout: Duration::from_secs(30), ..quick() };
        super::connections_past_the_limit_wait_until_one_closes(
            TestServer::start_http(Sqlite, limits).await.expect("sqlite"),
        )
        .await;
    }
}

mod postgres {
    use super::*;
    use common::Backend::Postgres;

    #[tokio::test]
    async fn a_new_password_revokes_the_users_tokens() {
        let Some(s) = TestServer::start(Postgres).await else { return };
        super::a_new_password_revokes_the_users_tokens(s).await;
    }
}
