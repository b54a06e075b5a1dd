//! Who is calling.
//!
//! Every API but `GET /health` and the bk-sops API (which takes app credentials, see
//! [`Authenticator::app`]) answers only an authenticated user: HTTP Basic against the
//! identity users' passwords (kept as Argon2 hashes), or a bearer token issued to a user (kept
//! as its SHA-256). Checking a password costs tens of milliseconds by design, so a credential
//! that passed is remembered, by its hash, for a minute; changing a user or revoking a token
//! on this server forgets them all at once.

mod backoff;

use crate::StartError;
use crate::error::ApiError;
use crate::runtime::{Person, now_ms};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::HeaderValue;
use backoff::{Backoff, Refused, Who};
use base64::Engine;
use flowstone_store::{AppRow, IdentityQuery, Page, Store, UserRow};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a credential that passed is taken without checking it again.
const REMEMBERED: Duration = Duration::from_secs(60);
/// How many passed credentials are remembered at most; beyond, all are forgotten.
const MAX_REMEMBERED: usize = 10_000;
/// The user made at first start.
pub(crate) const ADMIN: &str = "admin";

/// The authenticated user of a request, the hash of the bearer token it came with, and what
/// they may do (see [`crate::access`]).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) token: Option<String>,
    pub(crate) role: Role,
    /// The groups the user is a member of.
    pub(crate) groups: Vec<String>,
    /// For a bk-sops application: the businesses it may reach (none: every business).
    pub(crate) businesses: Option<Vec<String>>,
    /// The tenant the user belongs to.
    pub(crate) tenant: Option<String>,
}

/// Checks credentials and remembers those that passed.
pub(crate) struct Authenticator {
    store: Arc<dyn Store>,
    passed: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
    backoff: Backoff,
    /// A hash no password matches: an unknown user name costs the check a known one costs,
    /// so the time of a refusal does not tell whether a name exists.
    decoy: String,
    /// Who a request without credentials acts as, if anyone.
    anonymous: Option<crate::Anonymous>,
}

impl Authenticator {
    pub(crate) fn new(store: Arc<dyn Store>, anonymous: Option<crate::Anonymous>) -> Self {
        let decoy = random_text::<16>().and_then(|secret| hash(&secret)).unwrap_or_default();
        Self { store, passed: Mutex::default(), backoff: Backoff::new(), decoy, anonymous }
    }

    /// The user a request without credentials from `from` acts as, if the operator chose one.
    fn anonymous_user(&self, from: Option<IpAddr>) -> Option<&str> {
        let anonymous = self.anonymous.as_ref()?;
        (anonymous.anywhere || from.is_some_and(|ip| ip.is_loopback())).then_some(anonymous.user.as_str())
    }

    /// Checks `secret` against `hash` (the decoy when there is none) in the bounded pool,
    /// unless `who` must wait.
    async fn verify(&self, who: &[Who], secret: &str, hash: Option<String>) -> Result<bool, ApiError> {
        let real = hash.is_some();
        let (secret, hash) = (secret.to_owned(), hash.unwrap_or_else(|| self.decoy.clone()));
        let verified =
            self.backoff.check(who, move || verify_password(&secret, &hash)).await.map_err(
                |refused| match refused {
                    Refused::Busy => ApiError::too_many_requests(
                        "too many sign-ins are being checked; try again",
                        Duration::from_secs(1),
                    ),
                    Refused::Wait(wait) => {
                        ApiError::too_many_requests("too many failed sign-ins; wait before trying again", wait)
                    }
                },
            )?;
        Ok(verified && real)
    }

    /// Forgets every remembered credential (after a user changed or a token was revoked).
    pub(crate) fn forget(&self) {
        self.passed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The user an `Authorization` header names, or why it names none.
    pub(crate) async fn authenticate(
        &self,
        header: Option<&HeaderValue>,
        from: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        let Some(header) = header else {
            let user = self.anonymous_user(from).ok_or_else(|| {
                ApiError::unauthorized(
                    "this API needs credentials: HTTP Basic or a bearer token (Authorization header)",
                )
            })?;
            // No header hashes to zeros: the anonymous caller is remembered under a key of its own.
            return self.caller([0; 32], user.to_owned(), None).await;
        };
        let key: [u8; 32] = Sha256::digest(header.as_bytes()).into();
        if let Some(caller) = self.remembered(&key) {
            return Ok(caller);
        }
        let text = header.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let (user, token) = match text.split_once(' ') {
            Some((scheme, value)) if scheme.eq_ignore_ascii_case("basic") => {
                (self.basic(value.trim(), from).await?, None)
            }
            Some((scheme, value)) if scheme.eq_ignore_ascii_case("bearer") => self.bearer(value.trim()).await?,
            _ => return Err(ApiError::unauthorized("the Authorization header must be `Basic …` or `Bearer …`")),
        };
        self.caller(key, user, token).await
    }

    /// The caller `user` signed in as (with `token`), remembered under `key`.
    async fn caller(&self, key: [u8; 32], user: String, token: Option<String>) -> Result<Caller, ApiError> {
        if let Some(caller) = self.remembered(&key) {
            return Ok(caller);
        }
        let groups = self.groups_of(&user).await?;
        let tenant = self.store.user(&user).await?.and_then(|row| row.tenant_id);
        let caller = Caller { role: Role::of(&user, &groups), user, token, groups, businesses: None, tenant };
        self.remember(key, caller.clone());
        Ok(caller)
    }

    fn remember(&self, key: [u8; 32], caller: Caller) {
        let mut passed = self.passed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if passed.len() >= MAX_REMEMBERED {
            passed.clear();
        }
        passed.insert(key, (caller, Instant::now() + REMEMBERED));
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Caller> {
        let passed = self.passed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        passed.get(key).filter(|(_, until)| *until > Instant::now()).map(|(caller, _)| caller.clone())
    }

    async fn basic(&self, value: &str, from: Option<IpAddr>) -> Result<String, ApiError> {
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(value).ok().and_then(|b| String::from_utf8(b).ok());
        let (user, password) = decoded
            .as_deref()
            .and_then(|text| text.split_once(':'))
            .ok_or_else(|| ApiError::unauthorized("HTTP Basic credentials must be base64 of `user:password`"))?;
        let who: Vec<Who> = std::iter::once(Who::User(user.to_owned(), from)).chain(from.map(Who::Address)).collect();
        self.signed_in(user, password, &who).await.map(|()| user.to_owned())
    }

    /// The ids of the groups `user` is a member of.
    async fn groups_of(&self, user: &str) -> Result<Vec<String>, ApiError> {
        let query = IdentityQuery { member: Some(user.to_owned()), ..IdentityQuery::default() };
        let (groups, _) = self.store.list_groups(&query, Page { offset: 0, limit: 10_000 }).await?;
        Ok(groups.into_iter().map(|g| g.id).collect())
    }

    /// Checks a name and its secret (a user's password, an app's secret) with back-off.
    async fn signed_in(&self, name: &str, secret: &str, who: &[Who]) -> Result<(), ApiError> {
        if let Some(wait) = self.backoff.blocked(who, Instant::now()) {
            return Err(ApiError::too_many_requests("too many failed sign-ins; wait before trying again", wait));
        }
        // A name PostgreSQL cannot hold names nobody; it is still checked like any other.
        let hash = match who.first() {
            Some(Who::App(_)) if !name.contains('\0') => self.store.app(name).await?.map(|app| app.secret_hash),
            Some(Who::User(..)) if !name.contains('\0') => {
                self.store.user(name).await?.and_then(|row| row.password_hash)
            }
            _ => None,
        };
        if self.verify(who, secret, hash).await? {
            self.backoff.passed(who);
            Ok(())
        } else {
            self.backoff.failed(who, Instant::now());
            Err(ApiError::unauthorized(match who.first() {
                Some(Who::App(_)) => "wrong bk_app_code or bk_app_secret",
                _ => "wrong user name or password",
            }))
        }
    }

    /// Checks the credentials of a bk-sops API call (`bk_app_code`, `bk_app_secret`); answers
    /// the businesses the application may reach (none: every business).
    pub(crate) async fn app(&self, code: &str, secret: &str) -> Result<Option<Vec<String>>, ApiError> {
        let key: [u8; 32] = Sha256::digest(format!("bk-app\0{code}\0{secret}")).into();
        if let Some(app) = self.remembered(&key) {
            return Ok(app.businesses);
        }
        self.signed_in(code, secret, &[Who::App(code.to_owned())]).await?;
        let businesses = self.store.app(code).await?.and_then(|app| app.businesses);
        let app = Caller {
            user: code.to_owned(),
            token: None,
            role: Role::User,
            groups: Vec::new(),
            businesses: businesses.clone(),
            tenant: None,
        };
        self.remember(key, app);
        Ok(businesses)
    }

    /// The caller a bearer token signs in (bk-sops' `access_token`).
    pub(crate) async fn token_caller(&self, token: &str) -> Result<Caller, ApiError> {
        let key: [u8; 32] = Sha256::digest(format!("bk-token\0{token}")).into();
        if let Some(caller) = self.remembered(&key) {
            return Ok(caller);
        }
        let (user, hash) = self.bearer(token).await?;
        self.caller(key, user, hash).await
    }

    /// The user a bearer token names, and the token's hash.
    async fn bearer(&self, token: &str) -> Result<(String, Option<String>), ApiError> {
        let hash = token_hash(token);
        let row = self.store.token(&hash).await?.ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
        if row.expires_at <= now_ms() {
            return Err(ApiError::unauthorized("the token has expired"));
        }
        Ok((row.user_id, Some(hash)))
    }
}

/// The PHC string of an Argon2 hash of `password` with a fresh salt, computed off the async
/// workers (it takes tens of milliseconds by design).
pub(crate) async fn hash_password(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash(&password)).await.map_err(|e| format!("cannot hash a password: {e}"))?
}

fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash a password: {e}"))
}

fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A new bearer token: 32 random bytes, base64url.
pub(crate) fn new_token() -> Result<String, ApiError> {
    random_text::<32>().map_err(ApiError::unavailable)
}

/// `N` random bytes as base64url text.
fn random_text<const N: usize>() -> Result<String, String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// How a token is stored: the hex SHA-256 of it.
pub(crate) fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An application of the bk-sops API as configured: its `bk_app_code`, its secret, and the
/// businesses it may reach (none: every business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BkApp {
    /// Its `bk_app_code`.
    pub code: String,
    /// Its `bk_app_secret`.
    pub secret: String,
    /// The `bk_biz_id`s it may reach; none: every business.
    pub businesses: Option<Vec<String>>,
}

/// Registers an application of the bk-sops API with the Argon2 hash of its secret; with
/// `replace`, an existing one gets this secret and businesses. Answers whether it was written.
///
/// # Errors
/// A store failure, or no random numbers for the salt.
pub(crate) async fn register_app(store: &dyn Store, app: &BkApp, replace: bool) -> Result<bool, StartError> {
    if app.code.trim().is_empty() || app.secret.is_empty() {
        return Err(StartError::Admin(format!("a bk-sops app needs a code and a secret, got `{}`", app.code)));
    }
    let secret_hash = hash_password(app.secret.clone()).await.map_err(StartError::Admin)?;
    let row = AppRow { secret_hash, businesses: app.businesses.clone() };
    Ok(store.put_app(&app.code, &row, now_ms(), replace).await?)
}

/// Registers a new application of the bk-sops API under `code` and answers its generated
/// secret, which is stored only as a hash (so it is shown once).
///
/// # Errors
/// When an application of that code exists, or the store fails.
pub async fn add_app(store: &dyn Store, code: &str, businesses: Option<Vec<String>>) -> Result<String, StartError> {
    let secret = random_text::<24>().map_err(StartError::Admin)?;
    let app = BkApp { code: code.to_owned(), secret: secret.clone(), businesses };
    if register_app(store, &app, false).await? {
        Ok(secret)
    } else {
        Err(StartError::Admin(format!("an app with the code `{code}` exists already")))
    }
}

/// Makes the user `admin` when the store has no user at all (the first start): with
/// `password`, or a generated one, which is returned so that it can be shown once.
///
/// # Errors
/// A store failure, or no random numbers for the salt or the password.
pub(crate) async fn ensure_admin(store: &dyn Store, password: Option<&str>) -> Result<Option<String>, StartError> {
    if store.list_users(&IdentityQuery::default(), Page { offset: 0, limit: 1 }).await?.1 > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.to_owned(), false),
        None => (random_text::<12>().map_err(StartError::Admin)?, true),
    };
    let hash = hash_password(password.clone()).await.map_err(StartError::Admin)?;
    let admin = UserRow {
        id: ADMIN.into(),
        first_name: Some("Flowstone".into()),
        last_name: Some("Administrator".into()),
        password_hash: Some(hash),
        ..UserRow::default()
    };
    // Another server on the same database may have made it first; then it showed the password.
    let created = store.create_user(&admin).await?;
    Ok((created && generated).then_some(password))
}

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Their own processes and tasks.
    User,
    /// Deploys models; sees and operates every instance and task.
    Operator,
    /// Everything, users and groups included.
    Admin,
}

/// The group whose members are administrators.
pub(crate) const ADMIN_GROUP: &str = "admin";
/// The group whose members are operators.
pub(crate) const OPERATOR_GROUP: &str = "operator";

impl Role {
    /// The role of `user`, a member of `groups`.
    pub(crate) fn of(user: &str, groups: &[String]) -> Role {
        if user == ADMIN || groups.iter().any(|g| g == ADMIN_GROUP) {
            Role::Admin
        } else if groups.iter().any(|g| g == OPERATOR_GROUP) {
            Role::Operator
        } else {
            Role::User
        }
    }
}

impl Caller {
    /// Whether they see and operate everything of their tenant (operators and administrators).
    pub(crate) fn operates(&self) -> bool {
        self.role >= Role::Operator
    }

    /// The tenant they are held to: their own, unless they are an administrator.
    pub(crate) fn tenant_limit(&self) -> Option<&str> {
        self.tenant.as_deref().filter(|_| self.role != Role::Admin)
    }

    /// Whether something of `tenant` is within their reach.
    pub(crate) fn within(&self, tenant: Option<&str>) -> bool {
        self.tenant_limit().is_none_or(|mine| tenant == Some(mine))
    }

    /// For lists of instances: the starter they are limited to (none for operators).
    pub(crate) fn own_instances(&self) -> Option<String> {
        (!self.operates()).then(|| self.user.clone())
    }

    /// For lists of user tasks: the user whose part they are limited to (none for operators).
    pub(crate) fn own_tasks(&self) -> Option<String> {
        (!self.operates()).then(|| self.user.clone())
    }

    /// Who they are to the rules of user tasks.
    pub(crate) fn person(&self) -> Person {
        Person { user: self.user.clone(), groups: self.groups.clone(), admin: self.role == Role::Admin }
    }

    pub(crate) fn forbidden(&self, what: &str) -> ApiError {
        ApiError::forbidden(format!("user '{}' may not {what}", self.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_without_credentials_acts_as_the_anonymous_user_only_from_where_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(flowstone_store::SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        let loopback = Some(IpAddr::from([127, 0, 0, 1]));
        let remote = Some(IpAddr::from([10, 0, 0, 7]));
        let none = Authenticator::new(store.clone(), None);
        assert_eq!((none.anonymous_user(loopback), none.anonymous_user(remote)), (None, None));
        let local = Authenticator::new(store.clone(), Some(crate::Anonymous { user: "u".into(), anywhere: false }));
        assert_eq!((local.anonymous_user(loopback), local.anonymous_user(remote)), (Some("u"), None));
        let anywhere = Authenticator::new(store, Some(crate::Anonymous { user: "u".into(), anywhere: true }));
        assert_eq!((anywhere.anonymous_user(loopback), anywhere.anonymous_user(remote)), (Some("u"), Some("u")));
    }

    #[test]
    fn roles_come_from_the_admin_user_and_the_well_known_groups() {
        assert_eq!(Role::of("admin", &[]), Role::Admin);
        assert_eq!(Role::of("kermit", &["admin".into()]), Role::Admin);
        assert_eq!(Role::of("kermit", &["operator".into(), "muppets".into()]), Role::Operator);
        assert_eq!(Role::of("kermit", &["muppets".into()]), Role::User);
    }

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash("s3cret").unwrap_or_default();
        assert!(hash.starts_with("$argon2"), "{hash}");
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("s3cre", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
        assert_ne!(Ok(hash), super::hash("s3cret"), "each hash has its own salt");
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, b) = (new_token().ok(), new_token().ok());
        assert_ne!(a, b);
        assert_eq!(a.as_ref().map(String::len), Some(43));
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
