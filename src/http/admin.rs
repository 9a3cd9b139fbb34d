//! Administration over HTTP: accounts, grants and API tokens for the security administrator; the
//! audit log for the audit administrator. Also [`create_staff_user`], which the command line uses
//! to bootstrap the first administrator.
//!
//! Permissions are checked by the store (`ManageAccounts`, `ManageGrants` over the grant's scope,
//! `ReadAudit`); these handlers add only what must happen before the store is reached (refusing
//! early, before hashing a password). Every change, and every read of the audit log, is audited in
//! the same transaction as what it records.

use anyhow::Context;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::roles::{Permission, Role, Scope, Validity};
use anxin_store::accounts::{self, ApiToken, Grant, NewGrant, NewUser, User, UserKind};
use anxin_store::audit::{self, action, AuditEntry, AuditFilter, AuditPage, AuditPageReq};
use anxin_store::scope::Caller;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::http::guard::{self, AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    Table::new()
        .route(
            "/api/v1/admin/users",
            &["POST"],
            Serves::Admin,
            post(create_user),
        )
        .route(
            "/api/v1/admin/users/{id}",
            &["GET"],
            Serves::Admin,
            get(show_user),
        )
        .route(
            "/api/v1/admin/users/{id}/disable",
            &["POST"],
            Serves::Admin,
            post(disable_user),
        )
        .route(
            "/api/v1/admin/users/{id}/grants",
            &["POST"],
            Serves::Admin,
            post(create_grant),
        )
        .route(
            "/api/v1/admin/users/{id}/tokens",
            &["POST"],
            Serves::Admin,
            post(create_token),
        )
        .route(
            "/api/v1/admin/grants/{id}",
            &["DELETE"],
            Serves::Admin,
            delete(revoke_grant),
        )
        .route(
            "/api/v1/admin/tokens/{id}",
            &["DELETE"],
            Serves::Admin,
            delete(revoke_token),
        )
        .route("/api/v1/audit", &["GET"], Serves::Admin, get(list_audit))
        .route(
            "/api/v1/audit/verify",
            &["GET"],
            Serves::Admin,
            get(verify_audit),
        )
}

fn require(s: &Staff, p: Permission) -> Result<(), AuthError> {
    if s.caller().has(p) {
        Ok(())
    } else {
        Err(guard::forbidden(accounts::FORBIDDEN, "not allowed"))
    }
}

async fn hash_password(password: String) -> Result<String, AuthError> {
    anxin_crypto::check_password_policy(&password)
        .map_err(|e| ApiError::invalid(e.code(), "password", e.to_string()))?;
    tokio::task::spawn_blocking(move || anxin_crypto::hash_password(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })?
        .map_err(|e| ApiError::invalid(e.code(), "password", e.to_string()).into())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    display_name: String,
    /// Staff only; integration users sign in with API tokens alone.
    #[serde(default)]
    password: Option<String>,
    /// `staff` (default) or `integration`. Resident accounts come from signing in by phone.
    #[serde(default)]
    kind: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/admin/users", tag = "admin",
    request_body = NewUserBody,
    responses((status = 201, body = User))
)]
async fn create_user(
    State(app): State<App>,
    s: Staff,
    Json(b): Json<NewUserBody>,
) -> Result<impl IntoResponse, AuthError> {
    require(&s, Permission::ManageAccounts)?;
    let kind = UserKind::parse(b.kind.as_deref().unwrap_or("staff"))?;
    let password_hash = match (kind, b.password) {
        (UserKind::Staff, Some(p)) => Some(hash_password(p).await?),
        (UserKind::Staff, None) => {
            return Err(ApiError::invalid(
                "user.credentials_required",
                "password",
                "a password is required",
            )
            .into())
        }
        (UserKind::Integration, None) => None,
        _ => return Err(ApiError::invalid("user.kind_invalid", "kind", "not allowed here").into()),
    };
    let new = NewUser {
        kind,
        username: Some(b.username),
        display_name: b.display_name,
        password_hash,
        phone: None,
    };
    let caller = s.caller().clone();
    let entry = s.audit(action::USER_CREATE);
    let user = app
        .store
        .write(s.write_ctx(), move |tx| {
            let u = accounts::create_user(tx, &caller, &new)?;
            audit::record(
                tx,
                entry.target("user", u.id).detail(json!({ "kind": u.kind })),
            )?;
            Ok(u)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// A user with their grants (active or not) and tokens: the page per user.
#[utoipa::path(
    get, path = "/api/v1/admin/users/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = UserDetail))
)]
async fn show_user(
    State(app): State<App>,
    s: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, AuthError> {
    let c = s.caller();
    if !(c.has(Permission::ManageAccounts) || c.has(Permission::ManageGrants)) {
        return Err(ApiError::not_found().into());
    }
    let now = app.clock.now();
    let (user, grants, tokens) = app
        .store
        .read(move |c, _| {
            Ok((
                accounts::get_user(c, id)?,
                accounts::list_grants(c, id, now)?,
                accounts::list_api_tokens(c, id)?,
            ))
        })
        .await?;
    Ok(Json(
        json!({ "user": user, "grants": grants, "tokens": tokens }),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/admin/users/{id}/disable", tag = "admin",
    params(("id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = User))
)]
async fn disable_user(
    State(app): State<App>,
    s: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, AuthError> {
    let caller = s.caller().clone();
    let entry = s.audit(action::USER_DISABLE).target("user", id);
    let user = app
        .store
        .write(s.write_ctx(), move |tx| {
            let u = accounts::disable_user(tx, &caller, id)?;
            audit::record(tx, entry)?;
            Ok(u)
        })
        .await?;
    Ok(Json(user))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[schema(value_type = String)]
    role: Role,
    #[schema(value_type = anxin_store::accounts::ScopeDoc)]
    scope: Scope,
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_to: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post, path = "/api/v1/admin/users/{id}/grants", tag = "admin",
    params(("id" = Uuid, Path, description = "user id")),
    request_body = GrantBody,
    responses((status = 201, body = Grant))
)]
async fn create_grant(
    State(app): State<App>,
    s: Staff,
    Path(user_id): Path<Uuid>,
    Json(b): Json<GrantBody>,
) -> Result<impl IntoResponse, AuthError> {
    let validity = Validity::new(b.valid_from.unwrap_or_else(|| app.clock.now()), b.valid_to)?;
    let g = NewGrant {
        role: b.role,
        scope: b.scope,
        validity,
        source_ref: None,
    };
    let caller = s.caller().clone();
    let entry = s.audit(action::GRANT_CREATE);
    let grant = app
        .store
        .write(s.write_ctx(), move |tx| {
            let g = accounts::create_grant(tx, &caller, user_id, &g)?;
            audit::record(tx, grant_entry(entry, &g))?;
            Ok(g)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

fn grant_entry(e: AuditEntry, g: &accounts::Grant) -> AuditEntry {
    e.target("grant", g.id).detail(json!({
        "user_id": g.user_id,
        "role": g.role,
        "scope": g.scope,
        "valid_from": g.valid_from,
        "valid_to": g.valid_to,
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/grants/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "grant id")),
    responses((status = 200, description = "the revoked grant", body = Grant))
)]
async fn revoke_grant(
    State(app): State<App>,
    s: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, AuthError> {
    let caller = s.caller().clone();
    let entry = s.audit(action::GRANT_REVOKE);
    let grant = app
        .store
        .write(s.write_ctx(), move |tx| {
            let g = accounts::revoke_grant(tx, &caller, id)?;
            audit::record(tx, grant_entry(entry, &g))?;
            Ok(g)
        })
        .await?;
    Ok(Json(grant))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// Issue an API token; the token is in this answer and nowhere else, ever.
#[utoipa::path(
    post, path = "/api/v1/admin/users/{id}/tokens", tag = "admin",
    params(("id" = Uuid, Path, description = "integration user id")),
    request_body = TokenBody,
    responses((status = 201, description = "the token is in this answer and nowhere else, ever", body = TokenCreated))
)]
async fn create_token(
    State(app): State<App>,
    s: Staff,
    Path(user_id): Path<Uuid>,
    Json(b): Json<TokenBody>,
) -> Result<impl IntoResponse, AuthError> {
    let caller = s.caller().clone();
    let entry = s.audit(action::TOKEN_CREATE);
    let (t, token) = app
        .store
        .write(s.write_ctx(), move |tx| {
            let (t, token) =
                accounts::create_api_token(tx, &caller, user_id, &b.name, b.expires_at)?;
            audit::record(
                tx,
                entry
                    .target("api_token", t.id)
                    .detail(json!({ "user_id": user_id, "expires_at": t.expires_at })),
            )?;
            Ok((t, token))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "api_token": t, "token": token })),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/tokens/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "token id")),
    responses((status = 200, description = "the revoked token", body = ApiToken))
)]
async fn revoke_token(
    State(app): State<App>,
    s: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, AuthError> {
    let caller = s.caller().clone();
    let entry = s.audit(action::TOKEN_REVOKE).target("api_token", id);
    let t = app
        .store
        .write(s.write_ctx(), move |tx| {
            let t = accounts::revoke_api_token(tx, &caller, id)?;
            audit::record(tx, entry.detail(json!({ "user_id": t.user_id })))?;
            Ok(t)
        })
        .await?;
    Ok(Json(t))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<Uuid>,
    action: Option<String>,
    target_id: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    before_seq: Option<i64>,
    limit: Option<i64>,
}

/// The audit log, newest first, for the audit administrator; to anyone else it does not exist.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "the audit log, newest first (audit administrator; audited)", body = AuditPage))
)]
async fn list_audit(
    State(app): State<App>,
    s: Staff,
    Query(q): Query<AuditQuery>,
) -> Result<impl IntoResponse, AuthError> {
    let caller = s.caller().clone();
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target_id: q.target_id,
        from: q.from,
        until: q.until,
    };
    let page = AuditPageReq {
        before_seq: q.before_seq,
        limit: q.limit,
    };
    let detail = json!({ "filter": {
        "actor": filter.actor, "action": filter.action, "target_id": filter.target_id,
        "from": filter.from, "until": filter.until, "before_seq": page.before_seq,
    }});
    let result = app
        .store
        .read(move |c, _| audit::list(c, &caller, &filter, page))
        .await?;
    let entry = s.audit(action::AUDIT_READ).detail(detail);
    app.store
        .write(s.write_ctx(), move |tx| audit::record(tx, entry))
        .await?;
    Ok(Json(result))
}

/// Check the whole chain. Audit administrator only.
#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerified))
)]
async fn verify_audit(State(app): State<App>, s: Staff) -> Result<impl IntoResponse, AuthError> {
    if !s.caller().has(Permission::ReadAudit) {
        return Err(ApiError::not_found().into());
    }
    let report = app.store.read(|c, _| audit::verify(c)).await?;
    let entry = s.audit(action::AUDIT_VERIFY).detail(json!({
        "entries": report.entries,
        "first_bad_seq": report.first_bad_seq,
    }));
    app.store
        .write(s.write_ctx(), move |tx| audit::record(tx, entry))
        .await?;
    Ok(Json(json!({
        "ok": report.ok(),
        "entries": report.entries,
        "first_bad_seq": report.first_bad_seq,
    })))
}

/// Create a staff user with grants starting now, as the platform itself (no caller checks):
/// the command line's bootstrap of the first administrator. The password policy still applies,
/// and so does separation of duties between the grants given. Audited with no actor.
pub async fn create_staff_user(
    app: &App,
    username: &str,
    display_name: &str,
    password: &str,
    grants: Vec<(Role, Scope)>,
) -> anyhow::Result<Uuid> {
    anxin_crypto::check_password_policy(password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pw = password.to_owned();
    let phc = tokio::task::spawn_blocking(move || anxin_crypto::hash_password(&pw))
        .await
        .context("hashing the password")?
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    let now = app.clock.now();
    let new = NewUser {
        kind: UserKind::Staff,
        username: Some(username.to_owned()),
        display_name: display_name.to_owned(),
        password_hash: Some(phc),
        phone: None,
    };
    let id = app
        .store
        .write(WriteCtx::system("cli.create_staff_user"), move |tx| {
            let system = Caller::system();
            let u = accounts::create_user(tx, &system, &new)?;
            audit::record(
                tx,
                AuditEntry::new(action::USER_CREATE)
                    .target("user", u.id)
                    .detail(json!({ "kind": u.kind, "by": "system" })),
            )?;
            for (role, scope) in grants {
                let g = accounts::create_grant(
                    tx,
                    &system,
                    u.id,
                    &NewGrant {
                        role,
                        scope,
                        validity: Validity::starting(now),
                        source_ref: None,
                    },
                )?;
                audit::record(tx, grant_entry(AuditEntry::new(action::GRANT_CREATE), &g))?;
            }
            Ok(u.id)
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the user: {e}"))?;
    Ok(id)
}

// ---- the API document ---------------------------------------------------------------------

/// `GET /api/v1/admin/users/{id}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UserDetail {
    user: User,
    grants: Vec<Grant>,
    tokens: Vec<ApiToken>,
}

/// `POST /api/v1/admin/users/{id}/tokens`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenCreated {
    api_token: ApiToken,
    /// Send as `Authorization: Bearer …`.
    token: String,
}

/// `GET /api/v1/audit/verify`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AuditVerified {
    ok: bool,
    entries: i64,
    first_bad_seq: Option<i64>,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_user,
    show_user,
    disable_user,
    create_grant,
    revoke_grant,
    create_token,
    revoke_token,
    list_audit,
    verify_audit
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
