//! Signing in and out.
//!
//! Staff: `POST /api/v1/auth/login` with username and password, plus a TOTP code when their grants
//! include an administrator role and they have enrolled one. An administrator who has not enrolled
//! gets a session that reaches only `me`, sign-out and enrolment (`/auth/totp/enroll` shows the
//! secret once, `/auth/totp/confirm` activates it and satisfies the session). Wrong passwords
//! count towards a lockout; an unknown username and a wrong password get the same answer
//! (`auth.invalid_credentials`), a locked account a distinct one (`auth.locked`).
//!
//! Residents: `POST /api/v1/auth/code` sends a one-time code to a phone (always `202`, whether or
//! not anyone has that phone: no enumeration); `/auth/code/verify` trades it for a session. When
//! several people share the phone the answer lists them, masked, and `/auth/choose` picks one.
//!
//! Sessions live in the `anxin_session` cookie (HttpOnly, SameSite=Lax, Secure when configured);
//! the CSRF token comes back in the login answer and from `me`. Every sign-in, failure, lockout
//! and sign-out is audited.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::Duration;
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::{json, Value as JsonValue};
use std::sync::OnceLock;
use uuid::Uuid;

use anxin_domain::Phone;
use anxin_store::accounts::{self, LinkedPerson, NewSession, User, UserKind};
use anxin_store::audit::{self, action, AuditEntry};
use anxin_store::scope::Caller;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::http::guard::{self, AuthError, Client, Session, Via};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::platform::ratelimit;

pub fn routes() -> Table {
    Table::new()
        .route("/api/v1/auth/login", &["POST"], Serves::Public, post(login))
        .route("/api/v1/auth/logout", &["POST"], Serves::Own, post(logout))
        .route("/api/v1/auth/me", &["GET"], Serves::Own, get(me))
        .route(
            "/api/v1/auth/totp/enroll",
            &["POST"],
            Serves::Own,
            post(totp_enroll),
        )
        .route(
            "/api/v1/auth/totp/confirm",
            &["POST"],
            Serves::Own,
            post(totp_confirm),
        )
        .route(
            "/api/v1/auth/code",
            &["POST"],
            Serves::Public,
            post(request_code),
        )
        .route(
            "/api/v1/auth/code/verify",
            &["POST"],
            Serves::Public,
            post(verify_code),
        )
        .route("/api/v1/auth/choose", &["POST"], Serves::Own, post(choose))
}

/// Digits in a resident's sign-in code.
const CODE_DIGITS: usize = 6;

fn invalid_credentials() -> AuthError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "auth.invalid_credentials",
        "wrong username or password",
    )
    .into()
}

fn locked(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> AuthError {
    let secs = (until - now).num_seconds().max(1);
    ApiError::new(
        StatusCode::LOCKED,
        "auth.locked",
        "too many failed sign-ins; the account is locked for a while",
    )
    .with_details(json!({ "retry_after": secs }))
    .into()
}

/// The session cookie for `token`.
fn session_cookie(app: &App, token: &str) -> HeaderValue {
    let c = Cookie::build((guard::SESSION_COOKIE, token.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.config.server.secure_cookies)
        .path("/")
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(app: &App) -> HeaderValue {
    let c = Cookie::build((guard::SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.config.server.secure_cookies)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_cookie(status: StatusCode, cookie: HeaderValue, body: JsonValue) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

fn anonymous(client: &Client) -> WriteCtx {
    WriteCtx::system(client.request_id.clone())
}

/// Append one audit entry in its own write.
async fn audit_alone(app: &App, ctx: WriteCtx, entry: AuditEntry) -> Result<(), AuthError> {
    app.store
        .write(ctx, move |tx| audit::record(tx, entry).map(|_| ()))
        .await?;
    Ok(())
}

/// A hash to verify against when the account does not exist, so both answers take as long.
async fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return h;
    }
    let h = tokio::task::spawn_blocking(|| {
        anxin_crypto::hash_password("not the password of anyone").unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    HASH.get_or_init(|| h)
}

/// Argon2 off the async workers.
async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || anxin_crypto::verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

fn mfa_json(required: bool, enrolled: bool, satisfied: bool) -> JsonValue {
    json!({ "required": required, "enrolled": enrolled, "satisfied": satisfied })
}

// ---- staff --------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

enum Second {
    Session(NewSession),
    TotpRequired,
    TotpInvalid(Option<chrono::DateTime<chrono::Utc>>),
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginBody,
    responses((status = 200, description = "signed in; `totp` is needed when the grants include an administrator role and one is enrolled", body = LoginAnswer, headers(("Set-Cookie" = String, description = "the `anxin_session` cookie"))))
)]
async fn login(
    State(app): State<App>,
    client: Client,
    Json(b): Json<LoginBody>,
) -> Result<Response, AuthError> {
    let username = b.username.trim().to_lowercase();
    ratelimit::check_account(&app, &format!("login:{username}"))?;
    let now = app.clock.now();
    let found = app
        .store
        .read(move |c, _| {
            let Some((user, hash)) = accounts::user_by_username(c, &username)? else {
                return Ok(None);
            };
            let state = accounts::login_state(c, user.id)?;
            let caller = Caller::load(c, user.id, now)?;
            Ok(Some((user, hash, state, caller)))
        })
        .await?;
    let (user, hash, state, caller) = match found {
        Some((u, Some(h), st, c)) if u.kind == UserKind::Staff && !u.disabled => (u, h, st, c),
        other => {
            verify_password(b.password, dummy_hash().await.to_owned()).await;
            let mut entry = AuditEntry::new(action::LOGIN_FAILED).ip(client.ip.clone());
            entry = match other {
                Some((u, ..)) => entry.target("user", u.id).detail(
                    json!({ "method": "password", "reason": if u.disabled { "disabled" } else { "no_password" } }),
                ),
                None => entry.detail(json!({ "method": "password", "reason": "unknown_account" })),
            };
            audit_alone(&app, anonymous(&client), entry).await?;
            return Err(invalid_credentials());
        }
    };
    let failed = |reason: &str| {
        AuditEntry::new(action::LOGIN_FAILED)
            .target("user", user.id)
            .ip(client.ip.clone())
            .detail(json!({ "method": "password", "reason": reason }))
    };
    if let Some(until) = state.locked_until.filter(|_| state.locked_at(now)) {
        audit_alone(&app, anonymous(&client), failed("locked")).await?;
        return Err(locked(until, now));
    }
    let threshold = app.config.auth.lockout_threshold;
    let lock_for = Duration::minutes(app.config.auth.lockout_minutes);
    let lockout = AuditEntry::new(action::LOCKOUT)
        .target("user", user.id)
        .ip(client.ip.clone());
    if !verify_password(b.password.clone(), hash.clone()).await {
        let (uid, f, l) = (user.id, failed("password"), lockout);
        let until = app
            .store
            .write(anonymous(&client), move |tx| {
                let until = accounts::record_login_failure(tx, uid, threshold, lock_for)?;
                audit::record(tx, f)?;
                if let Some(u) = until {
                    audit::record(tx, l.detail(json!({ "until": u })))?;
                }
                Ok(until)
            })
            .await?;
        return Err(match until {
            Some(u) => locked(u, now),
            None => invalid_credentials(),
        });
    }

    let mfa_required = accounts::needs_second_factor(&caller);
    let need_totp = mfa_required && user.totp_enrolled;
    let (uid, ip, totp) = (user.id, client.ip.clone(), b.totp.clone());
    let (f, l) = (failed("totp"), lockout);
    let ok = AuditEntry::new(action::LOGIN)
        .actor(Some(user.id))
        .target("user", user.id)
        .ip(client.ip.clone())
        .detail(json!({ "method": "password", "mfa": need_totp }));
    let second = app
        .store
        .write(
            WriteCtx::by(user.id, client.request_id.clone()),
            move |tx| {
                if need_totp {
                    let Some(code) = totp.filter(|c| !c.trim().is_empty()) else {
                        return Ok(Second::TotpRequired);
                    };
                    if !accounts::check_totp(tx, uid, &code)? {
                        let until = accounts::record_login_failure(tx, uid, threshold, lock_for)?;
                        audit::record(tx, f)?;
                        if let Some(u) = until {
                            audit::record(tx, l.detail(json!({ "until": u })))?;
                        }
                        return Ok(Second::TotpInvalid(until));
                    }
                }
                accounts::record_login_success(tx, uid)?;
                let s = accounts::create_session(tx, uid, None, need_totp, ip.as_deref())?;
                audit::record(tx, ok)?;
                Ok(Second::Session(s))
            },
        )
        .await?;
    let s = match second {
        Second::Session(s) => s,
        Second::TotpRequired => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.totp_required",
                "enter the code from your authenticator app",
            )
            .into())
        }
        Second::TotpInvalid(Some(u)) => return Err(locked(u, now)),
        Second::TotpInvalid(None) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.totp_invalid",
                "wrong or already used authenticator code",
            )
            .into())
        }
    };
    if anxin_crypto::password_needs_rehash(&hash) {
        rehash(&app, user.id, b.password).await;
    }
    let body = json!({
        "user": user,
        "csrf": s.csrf,
        "mfa": mfa_json(mfa_required, user.totp_enrolled, need_totp || !mfa_required),
    });
    Ok(with_cookie(
        StatusCode::OK,
        session_cookie(&app, &s.token),
        body,
    ))
}

/// Replace a hash made with weaker parameters than today's. Best effort: sign-in has succeeded.
async fn rehash(app: &App, user_id: Uuid, password: String) {
    let Ok(Ok(phc)) =
        tokio::task::spawn_blocking(move || anxin_crypto::hash_password(&password)).await
    else {
        return;
    };
    let r = app
        .store
        .write(WriteCtx::by(user_id, "rehash"), move |tx| {
            accounts::set_password_hash(tx, user_id, &phc)
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(user.id = %user_id, error = %e, "password rehash failed");
    }
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out; the cookie is cleared"))
)]
async fn logout(State(app): State<App>, s: Session) -> Result<Response, AuthError> {
    if let Some(id) = s.session_id() {
        let entry = s.audit(action::LOGOUT).target("user", s.user_id());
        app.store
            .write(s.write_ctx(), move |tx| {
                accounts::end_session(tx, id)?;
                audit::record(tx, entry).map(|_| ())
            })
            .await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(&app));
    Ok(r)
}

#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeAnswer))
)]
async fn me(State(app): State<App>, s: Session) -> Result<Json<JsonValue>, AuthError> {
    let (uid, now) = (s.user_id(), app.clock.now());
    let resident = s.user().kind == UserKind::Resident;
    let (grants, people) = app
        .store
        .read(move |c, _| {
            let grants: Vec<_> = accounts::list_grants(c, uid, now)?
                .into_iter()
                .filter(|g| g.active)
                .collect();
            let people = if resident {
                accounts::linked_people(c, uid)?
            } else {
                Vec::new()
            };
            Ok((grants, people))
        })
        .await?;
    Ok(Json(json!({
        "user": s.user(),
        "via": match s.via() { Via::Cookie { .. } => "cookie", Via::Token { .. } => "token" },
        "csrf": s.csrf(),
        "grants": grants,
        "person": s.person(),
        "people": people,
        "mfa": mfa_json(s.mfa_required(), s.user().totp_enrolled, s.mfa_satisfied()),
    })))
}

fn cookie_session(s: &Session) -> Result<Uuid, AuthError> {
    s.session_id()
        .ok_or_else(|| guard::forbidden(accounts::FORBIDDEN, "needs a signed-in session"))
}

/// Start TOTP enrolment: a new secret, shown once. Staff only.
#[utoipa::path(
    post, path = "/api/v1/auth/totp/enroll", tag = "auth",
    responses((status = 200, description = "a new secret, shown once", body = TotpSecret))
)]
async fn totp_enroll(State(app): State<App>, s: Session) -> Result<Json<JsonValue>, AuthError> {
    cookie_session(&s)?;
    if s.user().kind != UserKind::Staff {
        return Err(guard::forbidden(accounts::FORBIDDEN, "staff only"));
    }
    let secret = anxin_crypto::new_totp_secret();
    let (uid, sec) = (s.user_id(), secret.clone());
    app.store
        .write(s.write_ctx(), move |tx| accounts::begin_totp(tx, uid, &sec))
        .await?;
    let account = s.user().username.clone().unwrap_or_else(|| uid.to_string());
    Ok(Json(json!({
        "otpauth_url": anxin_crypto::otpauth_url(&secret, &account, anxin_crypto::totp::TOTP_ISSUER),
        "secret": anxin_crypto::totp_secret_base32(&secret),
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

/// Confirm the pending secret with a current code; the session counts as second-factor checked.
#[utoipa::path(
    post, path = "/api/v1/auth/totp/confirm", tag = "auth",
    request_body = CodeBody,
    responses((status = 200, body = MfaAnswer))
)]
async fn totp_confirm(
    State(app): State<App>,
    s: Session,
    Json(b): Json<CodeBody>,
) -> Result<Json<JsonValue>, AuthError> {
    let sid = cookie_session(&s)?;
    let uid = s.user_id();
    let entry = s.audit(action::TOTP_ENROLLED).target("user", uid);
    let ok = app
        .store
        .write(s.write_ctx(), move |tx| {
            if !accounts::confirm_totp(tx, uid, &b.code)? {
                return Ok(false);
            }
            accounts::set_session_mfa(tx, sid)?;
            audit::record(tx, entry)?;
            Ok(true)
        })
        .await?;
    if !ok {
        return Err(ApiError::invalid("totp.invalid", "code", "wrong authenticator code").into());
    }
    Ok(Json(
        json!({ "mfa": mfa_json(s.mfa_required(), true, true) }),
    ))
}

// ---- residents ----------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: String,
}

fn phone_key(prefix: &str, bidx: &[u8]) -> String {
    format!("{prefix}:{}", hex::encode(bidx))
}

/// Send a sign-in code. The answer is the same whether or not the phone is known.
#[utoipa::path(
    post, path = "/api/v1/auth/code", tag = "auth",
    request_body = PhoneBody,
    responses((status = 202, description = "the same answer whether or not the phone is known", body = CodeAccepted))
)]
async fn request_code(
    State(app): State<App>,
    _client: Client,
    Json(b): Json<PhoneBody>,
) -> Result<Response, AuthError> {
    let phone = Phone::parse(&b.phone)?;
    let bidx = accounts::phone_bidx(&app.store.env().keys, &phone);
    ratelimit::check_account(&app, &phone_key("code", &bidx))?;
    let ttl = app.config.auth.code_ttl_minutes;
    let b2 = bidx.clone();
    let known = app
        .store
        .read(move |c, _| accounts::phone_known(c, &b2))
        .await?;
    if known {
        let code = anxin_crypto::new_numeric_code(CODE_DIGITS);
        let c2 = code.clone();
        app.store
            .write(WriteCtx::system("auth.code"), move |tx| {
                accounts::create_login_code(tx, &bidx, &c2, Duration::minutes(ttl))
            })
            .await?;
        if let Err(e) = crate::platform::notify::send_login_code(&app, &phone, &code).await {
            tracing::warn!(error = %format!("{e:#}"), "sign-in code not recorded for sending");
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "expires_in_minutes": ttl })),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    phone: String,
    code: String,
}

type Verified = Option<(User, NewSession, Vec<LinkedPerson>, Option<LinkedPerson>)>;

/// Trade a code for a session. With one person behind the phone it is chosen; with several the
/// answer lists them and `/auth/choose` picks one.
#[utoipa::path(
    post, path = "/api/v1/auth/code/verify", tag = "auth",
    request_body = VerifyBody,
    responses((status = 200, description = "signed in; with several people behind the phone, `person` is null and `/auth/choose` picks one", body = VerifyAnswer, headers(("Set-Cookie" = String, description = "the `anxin_session` cookie"))))
)]
async fn verify_code(
    State(app): State<App>,
    client: Client,
    Json(b): Json<VerifyBody>,
) -> Result<Response, AuthError> {
    let phone = Phone::parse(&b.phone)?;
    let bidx = accounts::phone_bidx(&app.store.env().keys, &phone);
    ratelimit::check_account(&app, &phone_key("verify", &bidx))?;
    let max = app.config.auth.code_max_attempts;
    let ip = client.ip.clone();
    let verified: Verified = app
        .store
        .write(anonymous(&client), move |tx| {
            let fail = |tx: &mut anxin_store::Tx, user: Option<Uuid>| {
                let mut e = AuditEntry::new(action::LOGIN_FAILED)
                    .ip(ip.clone())
                    .detail(json!({ "method": "code", "reason": "code" }));
                if let Some(u) = user {
                    e = e.target("user", u);
                }
                audit::record(tx, e).map(|_| None)
            };
            let existing = accounts::resident_by_phone(tx.conn(), &bidx)?.map(|u| u.id);
            // A wrong guess is counted (the write commits), so it answers Ok, not Err.
            if !accounts::check_login_code(tx, &bidx, &b.code, max)? {
                return fail(tx, existing);
            }
            let Some(user) = accounts::provision_resident(tx, &phone)? else {
                return fail(tx, existing);
            };
            if user.disabled {
                return fail(tx, Some(user.id));
            }
            let people = accounts::linked_people(tx.conn(), user.id)?;
            let chosen = match people.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            };
            let s = accounts::create_session(
                tx,
                user.id,
                chosen.as_ref().map(|p| p.person_id),
                false,
                ip.as_deref(),
            )?;
            accounts::record_login_success(tx, user.id)?;
            audit::record(
                tx,
                AuditEntry::new(action::LOGIN)
                    .actor(Some(user.id))
                    .target("user", user.id)
                    .ip(ip.clone())
                    .detail(json!({ "method": "code", "people": people.len() })),
            )?;
            Ok(Some((user, s, people, chosen)))
        })
        .await?;
    let Some((user, s, people, chosen)) = verified else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth.code_invalid",
            "wrong or expired code",
        )
        .into());
    };
    let body = json!({
        "user": user,
        "csrf": s.csrf,
        "person": chosen,
        "people": people,
    });
    Ok(with_cookie(
        StatusCode::OK,
        session_cookie(&app, &s.token),
        body,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChooseBody {
    person_id: Uuid,
}

/// Act as one of the people linked to the resident's phone.
#[utoipa::path(
    post, path = "/api/v1/auth/choose", tag = "auth",
    request_body = ChooseBody,
    responses((status = 200, body = ChooseAnswer))
)]
async fn choose(
    State(app): State<App>,
    s: Session,
    Json(b): Json<ChooseBody>,
) -> Result<Json<JsonValue>, AuthError> {
    let sid = cookie_session(&s)?;
    if s.user().kind != UserKind::Resident {
        return Err(guard::forbidden(accounts::FORBIDDEN, "residents only"));
    }
    let uid = s.user_id();
    let entry = s.audit(action::PERSON_CHOSEN).target("person", b.person_id);
    let person = app
        .store
        .write(s.write_ctx(), move |tx| {
            let p = accounts::choose_person(tx, sid, uid, b.person_id)?;
            audit::record(tx, entry)?;
            Ok(p)
        })
        .await?;
    Ok(Json(json!({ "person": person })))
}

// ---- the API document ---------------------------------------------------------------------

/// Whether a second factor is required, enrolled and given in this session.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Mfa {
    required: bool,
    enrolled: bool,
    satisfied: bool,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct LoginAnswer {
    user: User,
    /// Send as `X-CSRF-Token` with unsafe methods.
    csrf: String,
    mfa: Mfa,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct MeAnswer {
    user: User,
    /// `cookie` or `token`.
    via: String,
    csrf: Option<String>,
    grants: Vec<anxin_store::accounts::Grant>,
    person: Option<LinkedPerson>,
    people: Vec<LinkedPerson>,
    mfa: Mfa,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TotpSecret {
    otpauth_url: String,
    secret: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct MfaAnswer {
    mfa: Mfa,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct CodeAccepted {
    status: String,
    expires_in_minutes: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct VerifyAnswer {
    user: User,
    csrf: String,
    person: Option<LinkedPerson>,
    people: Vec<LinkedPerson>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ChooseAnswer {
    person: LinkedPerson,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    login,
    logout,
    me,
    totp_enroll,
    totp_confirm,
    request_code,
    verify_code,
    choose
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
