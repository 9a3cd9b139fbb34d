//! Request guards: axum extractors that say in a handler's signature who may call it.
//!
//! Layers, each built on the one before:
//! - [`Session`]: a signed-in caller, from the `anxin_session` cookie or an
//!   `Authorization: Bearer` API token, with their grants valid now as an
//!   [`anxin_store::scope::Caller`]. Cookie requests with an unsafe method must carry the
//!   session's CSRF token (`X-CSRF-Token` header or `_csrf` form field); bearer requests need
//!   none, as a browser never attaches them by itself. An administrator who has not yet given a
//!   second factor passes this layer: only sign-out, `me` and TOTP enrolment take it.
//! - [`Authenticated`]: a [`Session`] whose second factor is satisfied when its grants require one.
//!   What area handlers take.
//! - [`Staff`]: an authenticated staff or integration user.
//! - [`Resident`]: an authenticated resident acting as a chosen person.
//!
//! Failures: no or dead session `401 auth.required`, bad CSRF `403 auth.csrf`, second factor
//! missing `403 auth.mfa_required`, wrong kind of user `403 auth.forbidden`, over the per-address
//! limit `429 rate.limited` with `Retry-After`. The guard resolves once per request (the result is
//! kept in the request's extensions).

use std::ops::Deref;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use uuid::Uuid;

use anxin_domain::roles::{Role, ScopeKind};
use anxin_store::accounts::{self, User, UserKind};
use anxin_store::audit::AuditEntry;
use anxin_store::scope::{ActiveGrant, Caller};
use anxin_store::{StoreError, WriteCtx};

use crate::app::App;
use crate::http::ApiError;
use crate::platform::ratelimit::{self, Limited};

pub const SESSION_COOKIE: &str = "anxin_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FORM_FIELD: &str = "_csrf";
/// Form bodies read to find `_csrf`, at most.
const FORM_LIMIT: usize = 1 << 20;

/// A guard's refusal: the JSON error, plus `Retry-After` when rate limited.
#[derive(Debug)]
pub struct AuthError {
    pub error: ApiError,
    pub retry_after: Option<u64>,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut r = self.error.into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

impl From<ApiError> for AuthError {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<anxin_domain::DomainError> for AuthError {
    fn from(e: anxin_domain::DomainError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<Limited> for AuthError {
    fn from(l: Limited) -> Self {
        Self {
            error: ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate.limited",
                "too many requests; try again later",
            )
            .with_details(serde_json::json!({ "retry_after": l.retry_after_secs })),
            retry_after: Some(l.retry_after_secs),
        }
    }
}

pub fn forbidden(code: &'static str, message: &str) -> AuthError {
    ApiError::new(StatusCode::FORBIDDEN, code, message.to_owned()).into()
}

/// How the request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Cookie {
        session_id: Uuid,
        csrf: String,
        /// The second factor was given in this session.
        mfa: bool,
        person_id: Option<Uuid>,
    },
    Token {
        token_id: Uuid,
    },
}

/// A signed-in caller; see the module documentation.
#[derive(Debug, Clone)]
pub struct Session {
    user: User,
    caller: Caller,
    via: Via,
    ip: Option<String>,
    request_id: String,
    /// The chosen person's household and community (residents).
    person: Option<accounts::LinkedPerson>,
}

impl Session {
    pub fn user(&self) -> &User {
        &self.user
    }
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }
    /// The caller's scope, for area stores.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }
    pub fn via(&self) -> &Via {
        &self.via
    }
    /// The client address, for audit entries.
    pub fn ip(&self) -> Option<String> {
        self.ip.clone()
    }
    /// This request's id, for `WriteCtx` and logs.
    pub fn request_id(&self) -> String {
        self.request_id.clone()
    }
    pub fn session_id(&self) -> Option<Uuid> {
        match &self.via {
            Via::Cookie { session_id, .. } => Some(*session_id),
            Via::Token { .. } => None,
        }
    }
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Cookie { csrf, .. } => Some(csrf),
            Via::Token { .. } => None,
        }
    }
    /// The person a resident session acts as.
    pub fn person(&self) -> Option<&accounts::LinkedPerson> {
        self.person.as_ref()
    }
    /// Whether the caller's grants require a second factor.
    pub fn mfa_required(&self) -> bool {
        self.user.kind == UserKind::Staff && accounts::needs_second_factor(&self.caller)
    }
    /// Whether the second factor requirement is met. API tokens are issued by a security
    /// administrator and stand on their own.
    pub fn mfa_satisfied(&self) -> bool {
        match &self.via {
            Via::Token { .. } => true,
            Via::Cookie { mfa, .. } => *mfa || !self.mfa_required(),
        }
    }
    /// A write on behalf of this caller.
    pub fn write_ctx(&self) -> WriteCtx {
        WriteCtx::by(self.user.id, self.request_id.clone())
    }
    /// One store write as this caller: `f` gets the transaction and the caller's scope.
    pub async fn store_write<T: Send + 'static>(
        &self,
        app: &App,
        f: impl FnOnce(&mut anxin_store::Tx, &Caller) -> anxin_store::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let caller = self.caller.clone();
        app.store
            .write(self.write_ctx(), move |tx| f(tx, &caller))
            .await
    }
    /// An audit entry with this caller as actor and their address.
    pub fn audit(&self, action: &'static str) -> AuditEntry {
        AuditEntry::new(action)
            .actor(Some(self.user.id))
            .ip(self.ip.clone())
    }
}

/// An anonymous caller, for the sign-in endpoints: counted against the per-address limit, with
/// the address and request id audit entries need.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<String>,
    pub request_id: String,
}

impl FromRequestParts<App> for Client {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        ratelimit::check_address(app, &mut parts.extensions)?;
        Ok(Client {
            ip: client_ip(parts),
            request_id: request_id(parts),
        })
    }
}

/// The request id: the client's `X-Request-Id` when it is short and plain, else a new one.
pub fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)
}

/// The client address as text, for audit entries (no proxy headers are trusted).
pub fn client_ip(parts: &Parts) -> Option<String> {
    ratelimit::client_addr(&parts.extensions).map(|a| a.ip().to_string())
}

/// The value of the session cookie, if sent.
pub fn session_cookie(parts: &Parts) -> Option<String> {
    for v in parts.headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for c in cookie::Cookie::split_parse(s).flatten() {
            if c.name() == SESSION_COOKIE && !c.value().is_empty() {
                return Some(c.value().to_owned());
            }
        }
    }
    None
}

fn bearer(parts: &Parts) -> Option<Option<String>> {
    let v = parts.headers.get(header::AUTHORIZATION)?;
    let token = v
        .to_str()
        .ok()
        .and_then(|s| {
            s.strip_prefix("Bearer ")
                .or_else(|| s.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    Some(token)
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `_csrf` field of a form body, put in the request's extensions by [`form_csrf`].
#[derive(Debug, Clone)]
struct FormCsrf(String);

/// Middleware: for form posts without the CSRF header, read `_csrf` from the body (and put the
/// body back) so the guard can check it. URL-encoded forms and, for signed-in browsers (a
/// session cookie), `multipart/form-data` uploads — so the import page works without script.
pub async fn form_csrf(req: Request, next: Next) -> Response {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let urlencoded = ct.starts_with("application/x-www-form-urlencoded");
    let has_session = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains(SESSION_COOKIE));
    let multipart = ct.starts_with("multipart/form-data") && has_session;
    if is_safe(req.method())
        || !(urlencoded || multipart)
        || req.headers().contains_key(CSRF_HEADER)
    {
        return next.run(req).await;
    }
    let limit = if multipart {
        crate::http::io::MAX_IMPORT_BYTES
    } else {
        FORM_LIMIT
    };
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                "form too large",
            )
            .into_response()
        }
    };
    let token = if multipart {
        multipart_fields(&ct, bytes.clone())
            .await
            .and_then(|fields| {
                fields
                    .into_iter()
                    .find(|(n, _)| n == CSRF_FORM_FIELD)
                    .and_then(|(_, v)| String::from_utf8(v.to_vec()).ok())
            })
    } else {
        form_field(&bytes, CSRF_FORM_FIELD)
    };
    if let Some(v) = token {
        parts.extensions.insert(FormCsrf(v));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Why a body could not be read as `multipart/form-data`.
#[derive(Debug)]
pub enum MultipartError {
    /// The content type is not multipart (or has no boundary).
    NotMultipart,
    /// The body breaks the format.
    Broken(multer::Error),
}

/// The parts of a whole `multipart/form-data` body, in order: (field name, file name, bytes).
/// The one multipart reader (with `multer`, the parser axum's own extractor uses): the CSRF
/// guard, imports and photo uploads all read bodies here.
pub async fn multipart_parts(
    content_type: &str,
    body: axum::body::Bytes,
) -> Result<Vec<(String, Option<String>, axum::body::Bytes)>, MultipartError> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|_| MultipartError::NotMultipart)?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut m = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(field) = m.next_field().await.map_err(MultipartError::Broken)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        out.push((
            name,
            filename,
            field.bytes().await.map_err(MultipartError::Broken)?,
        ));
    }
    Ok(out)
}

/// The fields of a whole `multipart/form-data` body, in order, without file names; `None` when
/// it is not a readable multipart body.
pub async fn multipart_fields(
    content_type: &str,
    body: axum::body::Bytes,
) -> Option<Vec<(String, axum::body::Bytes)>> {
    let parts = multipart_parts(content_type, body).await.ok()?;
    Some(parts.into_iter().map(|(n, _, b)| (n, b)).collect())
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_csrf(parts: &Parts, expected: &str) -> Result<(), AuthError> {
    if is_safe(&parts.method) {
        return Ok(());
    }
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.extensions.get::<FormCsrf>().map(|f| f.0.clone()));
    match given {
        Some(g) if anxin_crypto::constant_time_eq(g.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(forbidden("auth.csrf", "missing or wrong CSRF token")),
    }
}

/// A resident's own household as a grant, so area stores reach it like any other scope.
fn with_own_household(caller: Caller, person: Option<&accounts::LinkedPerson>) -> Caller {
    let Some(hh) = person.and_then(|p| p.household_id) else {
        return caller;
    };
    let Some(user_id) = caller.user_id else {
        return caller;
    };
    let mut grants = caller.grants;
    let own = |g: &ActiveGrant| {
        g.role == Role::Resident && g.scope_kind == ScopeKind::Household && g.scope_id == hh
    };
    if !grants.iter().any(own) {
        grants.push(ActiveGrant {
            grant_id: None,
            role: Role::Resident,
            scope_kind: ScopeKind::Household,
            scope_id: hh,
        });
    }
    Caller::user(user_id, grants)
}

async fn resolve(parts: &mut Parts, app: &App) -> Result<Session, AuthError> {
    ratelimit::check_address(app, &mut parts.extensions)?;
    let ip = client_ip(parts);
    let request_id = request_id(parts);
    let now = app.clock.now();

    if let Some(token) = bearer(parts) {
        let token = token.ok_or_else(ApiError::unauthenticated)?;
        let found = app
            .store
            .read(move |c, _| {
                let Some((t, user)) = accounts::user_by_api_token(c, &token, now)? else {
                    return Ok(None);
                };
                let caller = Caller::load(c, user.id, now)?;
                Ok(Some((t, user, caller)))
            })
            .await?;
        let (t, user, caller) = found.ok_or_else(ApiError::unauthenticated)?;
        return Ok(Session {
            user,
            caller,
            via: Via::Token { token_id: t.id },
            ip,
            request_id,
            person: None,
        });
    }

    let token = session_cookie(parts).ok_or_else(ApiError::unauthenticated)?;
    let key = anxin_crypto::hash_token(&token);
    let ttl = app.config.auth.session_cache_ms;
    let cached = app
        .sessions
        .get(&key, app.store.auth_generation(), now, ttl);
    let (s, caller, person) = match cached {
        Some(hit) => hit,
        None => {
            // Read by the session reader, with the generation read before the read (a change
            // committed while reading makes the entry stale at once).
            let (generation, found) = app.sessions.load(&app.store, token, now).await?;
            let (s, caller, person) = found.ok_or_else(ApiError::unauthenticated)?;
            app.sessions
                .put(key, generation, now, ttl, &s, &caller, &person);
            (s, caller, person)
        }
    };
    let idle = Duration::minutes(app.config.auth.session_idle_minutes);
    if s.user.disabled || s.idle_at(now, idle) {
        app.sessions.forget(&key);
        let id = s.id;
        app.store
            .write(WriteCtx::system(request_id.clone()), move |tx| {
                accounts::end_session(tx, id)
            })
            .await?;
        return Err(ApiError::unauthenticated().into());
    }
    check_csrf(parts, &s.csrf)?;
    if s.needs_touch(now) {
        let id = s.id;
        let touched = app
            .store
            .write(WriteCtx::by(s.user.id, request_id.clone()), move |tx| {
                accounts::touch_session(tx, id)?;
                Ok(tx.now())
            })
            .await?;
        app.sessions.touched(&key, touched);
    }
    let caller = with_own_household(caller, person.as_ref());
    Ok(Session {
        user: s.user,
        caller,
        via: Via::Cookie {
            session_id: s.id,
            csrf: s.csrf,
            mfa: s.mfa,
            person_id: s.person_id,
        },
        ip,
        request_id,
        person,
    })
}

// Session cache (rush).
/// Resolved cookie sessions kept in memory (`auth.session_cache_ms`), keyed by the SHA-256 of the
/// session token, so a request need not read its session, grants and linked person again.
///
/// An entry is used only while all of these hold:
/// - the store's [`anxin_store::Store::auth_generation`] is the one read before the entry was
///   filled: every write of this process that ends or changes a session (sign-out, revocation,
///   the second factor, choosing a person), changes a person link, or changes users (disabling,
///   a password or TOTP change), grants, API tokens or people bumps it once committed, so such
///   a change takes effect at once here;
/// - it is younger than the TTL, by the monotonic clock and by the app's clock (so a grant's
///   validity window, a change made by another server sharing the PostgreSQL database or by an
///   `anxin admin` command takes effect here within the TTL at most).
///
/// Idleness and the disabled flag are still checked on every request, and the once-a-minute touch
/// still writes `last_seen` (the entry then takes the new value).
///
/// Sessions that miss the cache are read by one **session reader** per app (a task started on
/// first use): it takes every miss queued, up to [`SESSION_READ_BATCH`], and reads them all in one
/// blocking read on one reader connection, instead of one blocking-pool hop, one thread switch
/// and one cold page cache per request (a rush's first request of each phone misses: measured at
/// a third of the server's CPU, `docs/BENCHMARKS.md`, "Reservation rush"). Each session is read
/// exactly as before; should the reader be gone, the miss is read directly.
#[derive(Debug, Default)]
pub struct SessionCache {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedSession>>,
    reader: std::sync::OnceLock<tokio::sync::mpsc::Sender<SessionMiss>>,
}

/// A session token that missed the cache, waiting for the session reader.
#[derive(Debug)]
struct SessionMiss {
    token: String,
    now: chrono::DateTime<chrono::Utc>,
    done: tokio::sync::oneshot::Sender<Result<(u64, Option<Resolved>), StoreError>>,
}

/// Misses read in one blocking read, at most.
const SESSION_READ_BATCH: usize = 256;

/// One session as the guard needs it: the row, the caller's grants valid `now`, the chosen person.
fn read_session(
    c: &mut dyn anxin_store::Conn,
    token: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Resolved>, StoreError> {
    let Some(s) = accounts::session_by_token(c, token)? else {
        return Ok(None);
    };
    let caller = Caller::load(c, s.user.id, now)?;
    let person = match s.person_id {
        Some(p) => accounts::linked_people(c, s.user.id)?
            .into_iter()
            .find(|l| l.person_id == p),
        None => None,
    };
    Ok(Some((s, caller, person)))
}

/// The session reader: batches of misses until the cache (its app) is dropped.
async fn read_sessions(
    store: anxin_store::Store,
    mut rx: tokio::sync::mpsc::Receiver<SessionMiss>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < SESSION_READ_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // The generation before the read: a change committed while reading makes the entries
        // stale at once.
        let generation = store.auth_generation();
        let asks: Vec<_> = batch
            .iter_mut()
            .map(|m| (std::mem::take(&mut m.token), m.now))
            .collect();
        let read = store
            .read(move |c, _| {
                Ok(asks
                    .iter()
                    .map(|(token, now)| read_session(c, token, *now))
                    .collect::<Vec<_>>())
            })
            .await;
        match read {
            Ok(found) => {
                for (m, f) in batch.into_iter().zip(found) {
                    let _ = m.done.send(f.map(|f| (generation, f)));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for m in batch {
                    let _ = m.done.send(Err(StoreError::Unavailable(e.clone())));
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CachedSession {
    row: accounts::SessionRow,
    caller: Caller,
    person: Option<accounts::LinkedPerson>,
    generation: u64,
    filled: std::time::Instant,
    filled_at: chrono::DateTime<chrono::Utc>,
}

type Resolved = (accounts::SessionRow, Caller, Option<accounts::LinkedPerson>);

/// Entries kept at most; when full, stale entries are dropped, then all if still full.
const SESSION_CACHE_MAX: usize = 250_000;

impl SessionCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], CachedSession>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh(
        e: &CachedSession,
        generation: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl_ms: u64,
    ) -> bool {
        let ttl = std::time::Duration::from_millis(ttl_ms);
        e.generation == generation
            && e.filled.elapsed() < ttl
            && now >= e.filled_at
            && (now - e.filled_at).to_std().is_ok_and(|age| age < ttl)
    }

    fn get(
        &self,
        key: &[u8; 32],
        generation: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl_ms: u64,
    ) -> Option<Resolved> {
        if ttl_ms == 0 {
            return None;
        }
        let mut map = self.lock();
        let e = map.get(key)?;
        if Self::fresh(e, generation, now, ttl_ms) {
            return Some((e.row.clone(), e.caller.clone(), e.person.clone()));
        }
        map.remove(key);
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        key: [u8; 32],
        generation: u64,
        now: chrono::DateTime<chrono::Utc>,
        ttl_ms: u64,
        row: &accounts::SessionRow,
        caller: &Caller,
        person: &Option<accounts::LinkedPerson>,
    ) {
        if ttl_ms == 0 {
            return;
        }
        let mut map = self.lock();
        if map.len() >= SESSION_CACHE_MAX {
            map.retain(|_, e| Self::fresh(e, generation, now, ttl_ms));
            if map.len() >= SESSION_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(
            key,
            CachedSession {
                row: row.clone(),
                caller: caller.clone(),
                person: person.clone(),
                generation,
                filled: std::time::Instant::now(),
                filled_at: now,
            },
        );
    }

    /// Read the session of `token` (a miss) through the session reader; the generation is the
    /// one read before the read, for [`SessionCache::put`].
    async fn load(
        &self,
        store: &anxin_store::Store,
        token: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(u64, Option<Resolved>), StoreError> {
        let queue = self.reader.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * SESSION_READ_BATCH);
            tokio::spawn(read_sessions(store.clone(), rx));
            tx
        });
        let (done, answer) = tokio::sync::oneshot::channel();
        let miss = SessionMiss {
            token: token.clone(),
            now,
            done,
        };
        if queue.send(miss).await.is_ok() {
            if let Ok(found) = answer.await {
                return found;
            }
        }
        // The reader is gone (its runtime stopped): read directly.
        let generation = store.auth_generation();
        let found = store.read(move |c, _| read_session(c, &token, now)).await?;
        Ok((generation, found))
    }

    /// The session was touched: keep its new `last_seen`.
    fn touched(&self, key: &[u8; 32], at: chrono::DateTime<chrono::Utc>) {
        if let Some(e) = self.lock().get_mut(key) {
            e.row.last_seen = at;
        }
    }

    fn forget(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Entries held (tests, metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
// end of session cache (rush)

impl FromRequestParts<App> for Session {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let s = resolve(parts, app).await?;
        parts.extensions.insert(s.clone());
        Ok(s)
    }
}

macro_rules! layered {
    ($name:ident) => {
        impl Deref for $name {
            type Target = Session;
            fn deref(&self) -> &Session {
                &self.0
            }
        }
    };
}

/// A signed-in caller whose second factor is satisfied when required: what area handlers take.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Session);
layered!(Authenticated);

impl Authenticated {
    pub fn into_session(self) -> Session {
        self.0
    }
}

impl FromRequestParts<App> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let s = Session::from_request_parts(parts, app).await?;
        if !s.mfa_satisfied() {
            return Err(forbidden(
                "auth.mfa_required",
                "confirm a second factor (TOTP) first",
            ));
        }
        Ok(Authenticated(s))
    }
}

/// An authenticated staff (or integration) user.
#[derive(Debug, Clone)]
pub struct Staff(pub Session);
layered!(Staff);

impl FromRequestParts<App> for Staff {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Authenticated(s) = Authenticated::from_request_parts(parts, app).await?;
        match s.user.kind {
            UserKind::Staff | UserKind::Integration => Ok(Staff(s)),
            UserKind::Resident => Err(forbidden(accounts::FORBIDDEN, "staff only")),
        }
    }
}

/// An authenticated resident acting as the person chosen at sign-in.
#[derive(Debug, Clone)]
pub struct Resident {
    session: Session,
    person_id: Uuid,
    household_id: Option<Uuid>,
    community_id: Uuid,
}

impl Deref for Resident {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Resident {
    pub fn person_id(&self) -> Uuid {
        self.person_id
    }
    pub fn household_id(&self) -> Option<Uuid> {
        self.household_id
    }
    pub fn community_id(&self) -> Uuid {
        self.community_id
    }
}

impl FromRequestParts<App> for Resident {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Authenticated(s) = Authenticated::from_request_parts(parts, app).await?;
        if s.user.kind != UserKind::Resident {
            return Err(forbidden(accounts::FORBIDDEN, "residents only"));
        }
        let Some(p) = s.person.clone() else {
            return Err(forbidden(
                "auth.person_required",
                "choose the person you act as first",
            ));
        };
        Ok(Resident {
            session: s,
            person_id: p.person_id,
            household_id: p.household_id,
            community_id: p.community_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields() {
        assert_eq!(
            form_field(b"a=1&_csrf=x%2Dy_z&b=2", "_csrf").as_deref(),
            Some("x-y_z")
        );
        assert_eq!(form_field(b"a=1", "_csrf"), None);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a+b%41"), "a bA");
    }
}
