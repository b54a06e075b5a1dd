//! Serving HTTP within bounds that a slow, idle or greedy client cannot outlast.
//!
//! Each connection must send a request's headers within [`HttpLimits::header_timeout`]
//! (an idle keep-alive connection is closed after as long), its body within
//! [`HttpLimits::body_timeout`], and at most [`HttpLimits::max_connections`] are open at once:
//! past that, new connections wait in the kernel's queue until one closes, so a flood of
//! connections cannot use up the process's open files.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds of the HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// connection stays open.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The answer to a request whose handler panicked.
fn panicked() -> axum::response::Response {
    tracing::error!("a request handler panicked");
    let body = serde_json::json!({"status": 500, "error": "Internal Server Error",
        "message": "the server failed on this request; it is logged"});
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// Serves `app` on `listener` until `stop` resolves, then lets the requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of open files or memory for a moment: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            let mut app = app.clone();
            let answer = tower_service::Service::call(&mut app, req.map(axum::body::Body::new));
            // A bug that panics answers 500 instead of dropping the connection unanswered.
            async move {
                match std::panic::AssertUnwindSafe(answer).catch_unwind().await {
                    Ok(answer) => answer,
                    Err(_) => Ok(panicked()),
                }
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_and_the_server_goes_on() {
        let app = Router::new()
            .route("/boom", axum::routing::get(boom))
            .route("/fine", axum::routing::get(|| async { "fine" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            serve(listener, app, &HttpLimits::default(), async {
                let _ = stopped.await;
            })
            .await;
        });
        let boom = reqwest::get(format!("{base}/boom")).await.expect("answered");
        assert_eq!(boom.status(), reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        let fine = reqwest::get(format!("{base}/fine")).await.expect("answered");
        assert_eq!(fine.text().await.expect("body"), "fine");
        let _ = stop.send(());
        server.await.expect("stopped");
    }
}
