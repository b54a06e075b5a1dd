//! The console at `/console`: server-rendered pages for operators, signed in by a session
//! cookie on top of the identity users. The cookie is a bearer token of the user's (stored
//! hashed, as `POST /auth/tokens` makes them), `HttpOnly` and `SameSite=Strict`, and it opens
//! the console's pages only — never the APIs, which read the `Authorization` header alone, so
//! a page elsewhere cannot make a browser call them. Every form that changes something
//! carries the session's CSRF token, derived from the session's token.

mod actions;
pub(crate) mod diagram;
mod forms;
mod html;
pub(crate) mod image;
mod inbox;
mod models;
mod operations;
mod pages;

use crate::api::App;
use crate::auth::{Authenticator, Caller, new_token, token_hash};
use crate::error::ApiError;
use crate::runtime::{Runtime, now_ms};
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use flowstone_store::TokenRow;
use std::sync::Arc;

/// The instance `id`, or a 404 naming it.
async fn found(rt: &Runtime, id: &str) -> Result<flowstone_store::InstanceRow, ApiError> {
    rt.instance(id).await?.ok_or_else(|| ApiError::not_found(format!("no instance {id}")))
}

/// The session cookie's name.
const COOKIE: &str = "flowstone_session";
/// How long a console session lasts.
const SESSION_SECONDS: i64 = 12 * 3600;

/// Whether `path` is the console's: it signs in by its cookie, not by the APIs' header.
pub(crate) fn is_console(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with("/console/")
}

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(pages::instances))
        .route("/console/inbox", get(inbox::list))
        .route("/console/incidents", get(operations::incidents))
        .route("/console/stones", get(operations::stones))
        .route("/console/inbox/{task}/{action}", post(inbox::act))
        .route("/console/models", get(models::list).post(models::deploy))
        .route("/console/models/{id}", get(models::one))
        .route("/console/models/{id}/start", post(models::start))
        .route("/console/instances/{id}", get(pages::instance))
        .route("/console/instances/{id}/live", get(pages::live))
        .route("/console/instances/{id}/variables", post(actions::set_variables))
        .route("/console/instances/{id}/{action}", post(actions::on_instance))
        .route("/console/bulk", post(actions::bulk))
        .route("/console/tasks/{record}/{action}", post(actions::on_task))
        .route("/console/instances/{id}/events", get(pages::events))
        .route(
            "/console/console.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], html::SCRIPT) }),
        )
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route(
            "/console/console.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], html::CSS) }),
        )
}

/// A signed-in operator's session.
pub(crate) struct Session {
    caller: Caller,
    /// The token every changing form carries.
    csrf: String,
}

impl Session {
    fn who(&self) -> Option<(&str, &str)> {
        Some((&self.caller.user, &self.csrf))
    }

    /// An error as a page of this session.
    fn error(&self, e: ApiError) -> Response {
        let who = self.who();
        e.respond(|status, message| html::error_page(status, &message, who))
    }

    /// The fields of a changing form, read once; refused unless it carries this session's CSRF
    /// token.
    fn form_of(&self, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
        let fields = form(body);
        self.check(field(&fields, "csrf"))?;
        Ok(fields)
    }

    /// Refuses a changing form whose CSRF token is not this session's.
    fn check(&self, csrf: Option<&str>) -> Result<(), ApiError> {
        match csrf {
            Some(csrf) if csrf == self.csrf => Ok(()),
            _ => Err(ApiError::with_status(
                StatusCode::FORBIDDEN,
                "this form did not come from this console session (its CSRF token is missing or wrong)",
            )),
        }
    }
}

/// The CSRF token of a session token: not the token, and not its stored hash.
fn csrf_of(token: &str) -> String {
    token_hash(&format!("console-csrf\0{token}"))
}

/// The session cookie of a request, if it sent one.
fn cookie(parts: &Parts) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
    })
}

/// The session of a request's cookie, whoever signed in; else the way to sign in.
async fn signed_in(parts: &Parts, app: &App) -> Result<Session, Response> {
    let to_sign_in = || Redirect::to("/console/sign-in").into_response();
    let token = cookie(parts).filter(|t| !t.is_empty()).ok_or_else(to_sign_in)?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| to_sign_in())?;
    let auth: Arc<Authenticator> = axum::extract::FromRef::from_ref(app);
    let caller = auth.authenticate(Some(&bearer), None).await.map_err(|_| to_sign_in())?;
    if let Some(who) = parts.extensions.get::<crate::access_log::Who>() {
        who.set(&caller.user);
    }
    Ok(Session { csrf: csrf_of(&token), caller })
}

/// Whether a caller sees every instance: the console's pages other than the inbox are theirs.
fn operates_everything(caller: &Caller) -> bool {
    caller.operates() && caller.tenant_limit().is_none()
}

/// An operator's session: the pages of instances, models and their buttons.
impl FromRequestParts<App> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let session = signed_in(parts, app).await?;
        if !operates_everything(&session.caller) {
            let message = format!(
                "these pages are for operators and administrators of every tenant; {} is neither: their tasks are in the inbox (/console/inbox)",
                session.caller.user
            );
            return Err(html::error_page(StatusCode::FORBIDDEN, &message, session.who()));
        }
        Ok(session)
    }
}

/// Anyone's session: the tasks inbox.
pub(crate) struct Person(Session);

impl FromRequestParts<App> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        signed_in(parts, app).await.map(Person)
    }
}

fn sign_in_form(message: Option<&str>) -> axum::response::Html<String> {
    let error = message.map_or(String::new(), |m| format!("<p class=\"error\">{}</p>", html::escape(m)));
    let body = format!(
        "<form class=\"signin\" method=\"post\" action=\"/console/sign-in\"><h1>Sign in</h1>{error}\
<label for=\"user\">User</label><input id=\"user\" name=\"user\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>"
    );
    html::page("Sign in", None, &body)
}

async fn sign_in_page() -> axum::response::Html<String> {
    sign_in_form(None)
}

/// A form's fields.
fn form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The address a request came from, when the listener recorded it: the sign-in back-off
/// counts failures per address as well as per user.
struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let connected = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Peer(connected.map(|c| c.0.ip())))
    }
}

/// `POST /console/sign-in`: checks the password as HTTP Basic does (with its back-off), and
/// starts a session.
async fn sign_in(
    State(rt): State<Runtime>,
    State(auth): State<Arc<Authenticator>>,
    Peer(from): Peer,
    body: axum::body::Bytes,
) -> Response {
    use base64::Engine;
    let fields = form(&body);
    let (Some(user), Some(password)) = (field(&fields, "user"), field(&fields, "password")) else {
        return (StatusCode::BAD_REQUEST, sign_in_form(Some("give a user and a password"))).into_response();
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let caller = match HeaderValue::from_str(&format!("Basic {basic}")) {
        Ok(header) => auth.authenticate(Some(&header), from).await,
        Err(_) => Err(ApiError::bad_request("the user name or password holds characters a header cannot")),
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(e) => return e.respond(|status, message| (status, sign_in_form(Some(&message))).into_response()),
    };
    let started = async {
        let token = new_token()?;
        let now = now_ms();
        let row = TokenRow {
            hash: token_hash(&token),
            user_id: caller.user.clone(),
            created_at: now,
            expires_at: now + SESSION_SECONDS * 1000,
        };
        rt.store().create_token(&row).await?;
        Ok::<_, ApiError>(token)
    };
    match started.await {
        Ok(token) => {
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}");
            let home = if operates_everything(&caller) { "/console" } else { "/console/inbox" };
            ([(header::SET_COOKIE, cookie)], Redirect::to(home)).into_response()
        }
        Err(e) => e.respond(|status, message| (status, sign_in_form(Some(&message))).into_response()),
    }
}

/// `POST /console/sign-out`: ends the session (its token is revoked) when the form carries
/// its CSRF token.
async fn sign_out(
    State(rt): State<Runtime>,
    State(auth): State<Arc<Authenticator>>,
    Person(session): Person,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = session.form_of(&body) {
        return session.error(e);
    }
    if let Some(hash) = &session.caller.token
        && let Err(e) = rt.store().delete_token(hash).await
    {
        return session.error(e.into());
    }
    auth.forget();
    let cleared = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cleared)], Redirect::to("/console/sign-in")).into_response()
}
