//! Administration pages of the management end: the audit log (audit administrator), users and
//! their grants (security administrator: role × scope × validity, grant and revoke), and TOTP
//! enrolment for the administrator roles.
//!
//! Who may see what is decided where the API decides it: `audit::list` answers "not found" to
//! anyone without `ReadAudit`, the grant functions of `accounts` enforce separated duties, and
//! enrolment is the API's own handler ([`forward`]). Reading the audit log is itself audited,
//! as in the API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use anxin_domain::roles::{Permission, Role, Scope, Validity};
use anxin_domain::SHANGHAI;
use anxin_store::accounts::{self, NewGrant};
use anxin_store::audit::{self, action, AuditFilter, AuditPageReq};

use crate::app::App;
use crate::http::guard::{AuthError, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{enum_label, Fields};
use crate::web::manage::who_ctx;
use crate::web::{error_page, forward, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route("/manage/audit", &["GET"], Serves::Admin, get(audit_page))
        .route("/manage/users", &["GET"], Serves::Admin, get(users_page))
        .route(
            "/manage/users/{id}",
            &["GET"],
            Serves::Admin,
            get(user_page),
        )
        .route(
            "/manage/users/{id}/grants",
            &["POST"],
            Serves::Admin,
            post(grant),
        )
        .route(
            "/manage/grants/{id}/revoke",
            &["POST"],
            Serves::Admin,
            post(revoke),
        )
        .route(
            "/manage/totp",
            &["GET", "POST"],
            Serves::Own,
            get(totp_page).post(totp_start),
        )
        .route(
            "/manage/totp/confirm",
            &["POST"],
            Serves::Own,
            post(totp_confirm),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn shanghai(at: DateTime<Utc>) -> String {
    at.with_timezone(&SHANGHAI)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A date typed on a page, in Shanghai time, as the instant it starts.
fn day_start(raw: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    let d = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid("value.date", field, "not a date (YYYY-MM-DD)"))?;
    let local = d
        .and_hms_opt(0, 0, 0)
        .and_then(|n| SHANGHAI.from_local_datetime(&n).single())
        .ok_or_else(|| ApiError::invalid("value.date", field, "not a date"))?;
    Ok(local.with_timezone(&Utc))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn role_label(ui: &Ui, r: Role) -> String {
    enum_label(ui, r.zh(), r.as_str())
}

// ---- audit log ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, Serialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    until: Option<String>,
    before: Option<String>,
}

const AUDIT_PAGE: i64 = 50;

/// The actions a filter offers (the stable names of `audit::action`).
const ACTIONS: &[&str] = &[
    action::LOGIN,
    action::LOGIN_FAILED,
    action::LOGOUT,
    action::LOCKOUT,
    action::TOTP_ENROLLED,
    action::PERSON_CHOSEN,
    action::USER_CREATE,
    action::USER_DISABLE,
    action::GRANT_CREATE,
    action::GRANT_REVOKE,
    action::TOKEN_CREATE,
    action::TOKEN_REVOKE,
    action::AUDIT_READ,
    action::AUDIT_VERIFY,
    action::UNMASK,
    action::EXPORT,
    // The import pages' entries (`src/web/io.rs`, `src/http/io.rs`).
    "import",
    action::SENSITIVE_READ,
];

fn action_label(ui: &Ui, a: &str) -> String {
    i18n::lookup(ui.lang, &format!("audit_action.{a}")).map_or_else(|| a.to_owned(), str::to_owned)
}

async fn audit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    // Anyone but the audit administrator: there is no audit log (as the API answers).
    if !s.caller().has(Permission::ReadAudit) {
        return error_page(&ui, &ApiError::not_found());
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let mut error = None;
    let mut filter = AuditFilter {
        action: non_empty(&q.action),
        ..AuditFilter::default()
    };
    if let Some(f) = non_empty(&q.from) {
        match day_start(&f, "from") {
            Ok(d) => filter.from = Some(d),
            Err(e) => error = Some(e),
        }
    }
    if let Some(u) = non_empty(&q.until) {
        match day_start(&u, "until") {
            Ok(d) => filter.until = Some(d + chrono::Duration::days(1)),
            Err(e) => error = Some(e),
        }
    }
    let actor_raw = non_empty(&q.actor);
    let before_seq = non_empty(&q.before).and_then(|b| b.parse::<i64>().ok());
    let caller = s.caller().clone();
    let f2 = filter.clone();
    let got = app
        .store
        .read(move |c, _| {
            let mut f = f2;
            // The actor by username, or by account id.
            let mut unknown_actor = false;
            if let Some(a) = &actor_raw {
                match a.parse::<Uuid>() {
                    Ok(id) => f.actor = Some(id),
                    Err(_) => match accounts::user_by_username(c, a)? {
                        Some((u, _)) => f.actor = Some(u.id),
                        None => unknown_actor = true,
                    },
                }
            }
            let page = if unknown_actor {
                audit::AuditPage {
                    items: Vec::new(),
                    next_before_seq: None,
                }
            } else {
                audit::list(
                    c,
                    &caller,
                    &f,
                    AuditPageReq {
                        before_seq,
                        limit: Some(AUDIT_PAGE),
                    },
                )?
            };
            let mut names = std::collections::HashMap::new();
            for e in &page.items {
                if let Some(a) = e.actor {
                    if let std::collections::hash_map::Entry::Vacant(v) = names.entry(a) {
                        let u = accounts::get_user(c, a).ok();
                        v.insert(u.map(|u| u.username.unwrap_or(u.display_name)));
                    }
                }
            }
            Ok((page, names))
        })
        .await;
    let (page, names) = match got {
        Ok(g) => g,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    // Reading the log is itself an entry, as in the API.
    let entry = s.audit(action::AUDIT_READ).detail(json!({ "filter": {
        "actor": filter.actor, "action": filter.action, "from": filter.from,
        "until": filter.until, "before_seq": before_seq, "via": "page",
    }}));
    if let Err(e) = app
        .store
        .write(s.write_ctx(), move |tx| audit::record(tx, entry))
        .await
    {
        return error_page(&ui, &ApiError::from(e));
    }
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|e| {
            let actor = e.actor.map(|a| {
                names
                    .get(&a)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| a.to_string())
            });
            json!({
                "seq": e.seq,
                "at": shanghai(e.at),
                "actor": actor.unwrap_or_else(|| t(&ui, "audit.system")),
                "action": action_label(&ui, &e.action),
                "action_code": e.action,
                "target": match (&e.target_kind, e.target_id) {
                    (Some(k), Some(id)) => format!("{k} {id}"),
                    (Some(k), None) => k.clone(),
                    _ => String::new(),
                },
                "ip": e.ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    let actions: Vec<_> = ACTIONS
        .iter()
        .map(|a| json!({ "value": a, "label": action_label(&ui, a) }))
        .collect();
    // Links keep the filter; the next page adds `before`.
    let mut keep = Vec::new();
    for (k, v) in [
        ("actor", &q.actor),
        ("action", &q.action),
        ("from", &q.from),
        ("until", &q.until),
    ] {
        if let Some(v) = non_empty(v) {
            keep.push((k, v));
        }
    }
    let (status, error_text, error_field) = match &error {
        Some(e) => (
            e.status,
            i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned),
            e.details["field"].as_str().unwrap_or("").to_owned(),
        ),
        None => (StatusCode::OK, String::new(), String::new()),
    };
    render(
        &ui,
        status,
        "audit.html",
        context! {
            me => who_ctx(&s),
            q => minijinja::Value::from_serialize(&q),
            rows => minijinja::Value::from_serialize(&rows),
            actions => minijinja::Value::from_serialize(&actions),
            keep => minijinja::Value::from_serialize(&keep),
            next => page.next_before_seq,
            paged => before_seq.is_some(),
            error => error_text,
            error_field => error_field,
        },
    )
}

// ---- users and grants ---------------------------------------------------------------------

fn may_manage(s: &Session) -> bool {
    let c = s.caller();
    c.has(Permission::ManageAccounts) || c.has(Permission::ManageGrants)
}

#[derive(Debug, Default, Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<String>,
}

const USERS_PAGE: i64 = 50;

async fn users_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    if !may_manage(&s) {
        return error_page(&ui, &ApiError::not_found());
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let page: i64 = q
        .page
        .as_deref()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let caller = s.caller().clone();
    let term = non_empty(&q.q);
    let got = app
        .store
        .read(move |c, _| {
            accounts::list_staff_users(
                c,
                &caller,
                term.as_deref(),
                USERS_PAGE,
                (page - 1).saturating_mul(USERS_PAGE),
            )
        })
        .await;
    let (users, total) = match got {
        Ok(g) => g,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let pages = ((total + USERS_PAGE - 1) / USERS_PAGE).max(1);
    render(
        &ui,
        StatusCode::OK,
        "users.html",
        context! {
            me => who_ctx(&s),
            users => minijinja::Value::from_serialize(&users),
            q => q.q.clone().unwrap_or_default(),
            page => page,
            pages => pages,
            total_text => t(&ui, "places.total").replace("{n}", &total.to_string()),
            page_text => t(&ui, "people.page").replace("{p}", &page.to_string()).replace("{n}", &pages.to_string()),
        },
    )
}

async fn show_user(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    form: &Fields,
    error: Option<&ApiError>,
) -> Response {
    if !may_manage(s) {
        return error_page(ui, &ApiError::not_found());
    }
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let u = accounts::get_user(c, id)?;
            let grants = accounts::list_grants(c, id, now)?;
            let mut labels = Vec::with_capacity(grants.len());
            for g in &grants {
                labels.push(accounts::scope_label(c, g.scope)?);
            }
            Ok((u, grants, labels))
        })
        .await;
    let (u, grants, labels) = match got {
        Ok(g) => g,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = grants
        .iter()
        .zip(labels)
        .map(|(g, label)| {
            let (kind, sid) = match g.scope {
                Scope::Node(i) => ("node", i),
                Scope::Grid(i) => ("grid", i),
                Scope::Household(i) => ("household", i),
            };
            json!({
                "id": g.id,
                "role": role_label(ui, g.role),
                "role_code": g.role.as_str(),
                "scope_kind": t(ui, &format!("grants.scope_{kind}")),
                "scope": label.unwrap_or_else(|| sid.to_string()),
                "scope_id": sid,
                "from": shanghai(g.valid_from),
                "to": g.valid_to.map(shanghai).unwrap_or_else(|| t(ui, "grants.open_ended")),
                "active": g.active,
                "revoked": g.revoked_at.is_some(),
                "state": if g.revoked_at.is_some() { t(ui, "grants.revoked") } else if g.active { t(ui, "grants.active") } else { t(ui, "grants.inactive") },
            })
        })
        .collect();
    let roles: Vec<_> = Role::ALL
        .iter()
        .filter(|r| **r != Role::Resident)
        .map(|r| json!({ "value": r.as_str(), "label": role_label(ui, *r) }))
        .collect();
    let (status, err_text, err_field, err_code) = match error {
        Some(e) => (
            e.status,
            i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned),
            e.details["field"].as_str().unwrap_or("").to_owned(),
            e.code,
        ),
        None => (StatusCode::OK, String::new(), String::new(), ""),
    };
    render(
        ui,
        status,
        "user.html",
        context! {
            me => who_ctx(s),
            u => minijinja::Value::from_serialize(&u),
            grants => minijinja::Value::from_serialize(&rows),
            roles => minijinja::Value::from_serialize(&roles),
            f => minijinja::Value::from_serialize(form),
            error => err_text,
            error_field => err_field,
            error_code => err_code,
        },
    )
}

async fn user_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    show_user(&ui, &app, &s, id, &Fields::new(), None).await
}

/// The grant form's fields as a grant: role, scope (kind and id), validity in Shanghai dates.
fn parse_grant(app: &App, f: &Fields) -> Result<NewGrant, ApiError> {
    let text = |k: &str| crate::web::forms::text(f, k);
    let role: Role = text("role")
        .ok_or_else(|| ApiError::invalid("value.required", "role", "choose a role"))?
        .parse()
        .map_err(|_| ApiError::invalid("value.invalid", "role", "unknown role"))?;
    let id: Uuid = text("scope_id")
        .ok_or_else(|| ApiError::invalid("value.required", "scope_id", "give the scope"))?
        .parse()
        .map_err(|_| ApiError::invalid("value.invalid", "scope_id", "not an id"))?;
    let scope = match text("scope_kind").as_deref() {
        Some("grid") => Scope::Grid(id),
        Some("household") => Scope::Household(id),
        _ => Scope::Node(id),
    };
    let from = match text("valid_from") {
        Some(d) => day_start(&d, "valid_from")?,
        None => app.clock.now(),
    };
    let to = text("valid_to")
        .map(|d| day_start(&d, "valid_to").map(|t| t + chrono::Duration::days(1)))
        .transpose()?;
    let validity = Validity::new(from, to).map_err(ApiError::from)?;
    Ok(NewGrant {
        role,
        scope,
        validity,
        source_ref: None,
    })
}

fn grant_entry(e: audit::AuditEntry, g: &accounts::Grant) -> audit::AuditEntry {
    e.target("grant", g.id).detail(json!({
        "user_id": g.user_id,
        "role": g.role,
        "scope": g.scope,
        "valid_from": g.valid_from,
        "valid_to": g.valid_to,
    }))
}

async fn grant(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(user_id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let r = match parse_grant(&app, &f) {
        Ok(g) => {
            let caller = s.caller().clone();
            let entry = s.audit(action::GRANT_CREATE);
            app.store
                .write(s.write_ctx(), move |tx| {
                    let g = accounts::create_grant(tx, &caller, user_id, &g)?;
                    audit::record(tx, grant_entry(entry, &g))?;
                    Ok(g)
                })
                .await
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => see_other(&format!("/manage/users/{user_id}")),
        Err(e)
            if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT =>
        {
            show_user(&ui, &app, &s, user_id, &f, Some(&e)).await
        }
        Err(e) => error_page(&ui, &e),
    }
}

async fn revoke(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    _f: Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let entry = s.audit(action::GRANT_REVOKE);
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            let g = accounts::revoke_grant(tx, &caller, id)?;
            audit::record(tx, grant_entry(entry, &g))?;
            Ok(g)
        })
        .await;
    match r {
        Ok(g) => see_other(&format!("/manage/users/{}", g.user_id)),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

// ---- TOTP enrolment -----------------------------------------------------------------------

/// The otpauth URI as a QR code: an SVG image inline as a `data:` URI (the page's CSP allows
/// `img-src data:`), so nothing leaves the server and no script draws it.
pub(crate) fn qr_data_uri(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

#[derive(Default)]
struct TotpView {
    uri: Option<String>,
    secret: Option<String>,
    error: Option<String>,
    error_code: &'static str,
}

fn totp_render(ui: &Ui, s: &Session, status: StatusCode, v: TotpView) -> Response {
    let qr = v.uri.as_deref().and_then(qr_data_uri);
    render(
        ui,
        status,
        "totp.html",
        context! {
            me => who_ctx(s),
            enrolled => s.user().totp_enrolled,
            required => s.mfa_required(),
            satisfied => s.mfa_satisfied(),
            qr => qr,
            uri => v.uri,
            secret => v.secret,
            error => v.error,
            error_code => v.error_code,
        },
    )
}

async fn totp_page(ui: Ui, s: Result<Session, AuthError>) -> Response {
    let s = staff!(ui, s);
    totp_render(&ui, &s, StatusCode::OK, TotpView::default())
}

fn pending_view(uri_account: &str, secret: &[u8]) -> TotpView {
    TotpView {
        uri: Some(anxin_crypto::otpauth_url(
            secret,
            uri_account,
            anxin_crypto::totp::TOTP_ISSUER,
        )),
        secret: Some(anxin_crypto::totp_secret_base32(secret)),
        ..TotpView::default()
    }
}

/// Start enrolment: the API makes and keeps a new secret and answers it once.
async fn totp_start(
    ui: Ui,
    State(app): State<App>,
    s: Result<Session, AuthError>,
    _f: Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let a = match forward::post(&app, &ui, "/api/v1/auth/totp/enroll", s.csrf(), &json!({})).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    if !a.status.is_success() {
        let code = a.code().unwrap_or("internal").to_owned();
        let v = TotpView {
            error: Some(t(&ui, &code)),
            ..TotpView::default()
        };
        return totp_render(&ui, &s, a.status, v);
    }
    let v = TotpView {
        uri: a.body["otpauth_url"].as_str().map(str::to_owned),
        secret: a.body["secret"].as_str().map(str::to_owned),
        ..TotpView::default()
    };
    totp_render(&ui, &s, StatusCode::OK, v)
}

/// Confirm with a current code; a wrong code shows the same pending secret again.
async fn totp_confirm(
    ui: Ui,
    State(app): State<App>,
    s: Result<Session, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let code = crate::web::forms::text(&f, "code").unwrap_or_default();
    let a = match forward::post(
        &app,
        &ui,
        "/api/v1/auth/totp/confirm",
        s.csrf(),
        &json!({ "code": code }),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    if a.status.is_success() {
        return see_other("/manage");
    }
    let err_code = match a.code() {
        Some("totp.invalid") => "totp.invalid",
        Some("auth.csrf") => "auth.csrf",
        _ => "internal",
    };
    if err_code != "totp.invalid" {
        let e = ApiError::new(a.status, err_code, "refused");
        return error_page(&ui, &e);
    }
    let uid = s.user_id();
    let pending = app
        .store
        .read(move |c, env| accounts::pending_totp_secret(c, env, uid))
        .await
        .ok()
        .flatten();
    let account = s.user().username.clone().unwrap_or_else(|| uid.to_string());
    let mut v = pending
        .map(|p| pending_view(&account, &p))
        .unwrap_or_default();
    v.error = Some(t(&ui, "totp.invalid"));
    v.error_code = "totp.invalid";
    totp_render(&ui, &s, a.status, v)
}
