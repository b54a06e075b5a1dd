//! What every request must be before a handler sees it: its body sent in time and within the
//! size, and no text the databases cannot store.
//!
//! The body is read here, whole, within the body timeout, so a client sending it slowly holds
//! no handler. PostgreSQL refuses a NUL character in any text value, so a process name, a
//! business key, a filter or a failure reason carrying one would fail the commit of the whole
//! group it joined, and with it the requests of other clients. Such text is a client's mistake:
//! it gets a 400 in its dialect's shape here, whatever route it was sent to. Binary bodies
//! (multipart uploads, `application/octet-stream`) are not searched: their bytes are stored as
//! bytes.

use super::{ApiError, MAX_BODY_BYTES, in_dialect};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;

/// What is wrong with a request's text, if anything.
fn nul_in_uri(uri: &axum::http::Uri) -> Option<&'static str> {
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0');
    if has_nul(uri.path()) {
        Some("the path holds a NUL character (%00), which no text may hold")
    } else if uri.query().is_some_and(has_nul) {
        Some("the query holds a NUL character (%00), which no text may hold")
    } else {
        None
    }
}

/// Whether JSON or other text holds a NUL: a raw zero byte, or a `\u0000` escape (a
/// backslash that is itself escaped does not start one).
fn nul_in_text(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            0 => return true,
            b'\\' if body[i + 1..].starts_with(b"u0000") => return true,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    false
}

/// Whether a body of this content type is stored as bytes rather than read as text.
fn binary(req: &Request) -> bool {
    let kind = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let kind = kind.trim_start().to_ascii_lowercase();
    kind.starts_with("multipart/") || kind.starts_with("application/octet-stream")
}

/// The middleware: reads the body within `timeout`; a request whose path, query or textual
/// body holds a NUL is answered 400, one whose body is too slow 408, too large 413.
pub(crate) async fn intake(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(problem) = nul_in_uri(req.uri()) {
        return in_dialect(&path, ApiError::bad_request(problem));
    }
    let textual = !binary(&req);
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let status = if too_large { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            return in_dialect(&path, ApiError::with_status(status, format!("cannot read the body: {e}")));
        }
        Err(_) => {
            let message = format!("the body did not arrive within {} s", timeout.as_secs_f64());
            return in_dialect(&path, ApiError::with_status(StatusCode::REQUEST_TIMEOUT, message));
        }
    };
    if textual && nul_in_text(&bytes) {
        return in_dialect(
            &path,
            ApiError::bad_request("the body holds a NUL character (\\u0000), which no text may hold"),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_raw_or_escaped_but_not_in_an_escaped_backslash() {
        assert!(nul_in_text(b"{\"name\": \"a\\u0000b\"}"));
        assert!(nul_in_text(b"a\0b"));
        assert!(nul_in_text(b"\\\\\\u0000"), "an escaped backslash, then an escape");
        assert!(!nul_in_text(b"{\"path\": \"C:\\\\u0000\"}"), "the text `\\u0000`, not a NUL");
        assert!(!nul_in_text(b"{\"a\": \"\\u0001\", \"b\": \"plain\"}"));
        assert!(!nul_in_text(b"ends with a backslash \\"));
    }

    #[test]
    fn nul_in_the_path_or_query_is_found() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().expect("uri");
        assert!(nul_in_uri(&uri("/process/a%00b")).is_some());
        assert!(nul_in_uri(&uri("/task?processInstanceId=%00")).is_some());
        assert!(nul_in_uri(&uri("/task?name=100%25")).is_none());
    }
}
