//! /api/v1 routes for passes and access records (出入管理): gates and their counts, gate
//! check-in by pass code or ID-card number, entry passes (issue, list, show, revoke), the
//! resident's own pass, and the contact look-up of an incident.
//!
//! Every rule is in `anxin_store::ops::passes`; a record outside the caller's reach answers like
//! a missing one. Every contact look-up, refused ones included, is written to the audit log in the
//! same write as the look-up (who, which incident, a keyed hash of the case, how many found).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde_json::json;
use uuid::Uuid;

use anxin_store::audit::{self, action};
use anxin_store::ops::passes::{
    self, CheckInput, CheckResult, Contact, ContactInput, ContactReport, Gate, GateCounts,
    GateInput, HourCount, IssueInput, IssueReport, Pass, PassQuery,
};
use anxin_store::StoreError;

use crate::app::App;
use crate::http::guard::{Authenticated, Resident, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let g = Serves::Records("gates");
    let p = Serves::Records("passes");
    Table::new()
        .route(
            "/api/v1/gates",
            &["GET", "POST"],
            g,
            get(list_gates).post(create_gate),
        )
        .route("/api/v1/gates/{id}", &["GET"], g, get(show_gate))
        .route("/api/v1/gates/{id}/checkin", &["POST"], g, post(checkin))
        .route(
            "/api/v1/passes",
            &["GET", "POST"],
            p,
            get(list_passes).post(issue),
        )
        .route("/api/v1/passes/{id}", &["GET"], p, get(show_pass))
        .route("/api/v1/passes/{id}/revoke", &["POST"], p, post(revoke))
        .route(
            "/api/v1/incidents/{id}/contacts",
            &["POST"],
            Serves::Records("incidents"),
            post(contacts),
        )
        .route(
            "/api/v1/resident/passes",
            &["GET"],
            Serves::Own,
            get(resident_passes),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_gates,
        create_gate,
        show_gate,
        checkin,
        list_passes,
        issue,
        show_pass,
        revoke,
        contacts,
        resident_passes
    ),
    components(schemas(
        Gate,
        GateInput,
        GateCounts,
        HourCount,
        CheckInput,
        CheckResult,
        IssueInput,
        IssueReport,
        Pass,
        ContactInput,
        ContactReport,
        Contact
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Gates the caller staffs or manages.
#[utoipa::path(
    get, path = "/api/v1/gates", tag = "passes",
    responses((status = 200, body = Vec<Gate>))
)]
async fn list_gates(
    State(app): State<App>,
    auth: Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| passes::list_gates(c, &caller))
            .await?,
    ))
}

/// Create a gate of a compound or community (needs `manage_passes` there).
#[utoipa::path(
    post, path = "/api/v1/gates", tag = "passes",
    request_body = GateInput,
    responses((status = 201, body = Gate))
)]
async fn create_gate(
    State(app): State<App>,
    staff: Staff,
    Json(i): Json<GateInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let g = app
        .store
        .write(staff.write_ctx(), move |tx| {
            passes::create_gate(tx, &caller, &i)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(g)))
}

/// A gate and today's counts (Asia/Shanghai), in total and per hour.
#[utoipa::path(
    get, path = "/api/v1/gates/{id}", tag = "passes",
    params(("id" = Uuid, Path, description = "gate id")),
    responses((status = 200, body = GateCounts))
)]
async fn show_gate(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| passes::gate_counts(c, &caller, id, now))
            .await?,
    ))
}

/// A passage at the gate, by pass code or ID-card number (needs `check_gates`). Refused attempts
/// are recorded too and answered 200 with `allowed: false` and the reason.
#[utoipa::path(
    post, path = "/api/v1/gates/{id}/checkin", tag = "passes",
    params(("id" = Uuid, Path, description = "gate id")),
    request_body = CheckInput,
    responses((status = 200, body = CheckResult))
)]
async fn checkin(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<CheckInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        auth.store_write(&app, move |tx, caller| passes::check_in(tx, caller, id, &i))
            .await?,
    ))
}

/// Passes within reach, newest first (codes are shown on a single pass only).
#[utoipa::path(
    get, path = "/api/v1/passes", tag = "passes",
    params(PassQuery),
    responses((status = 200, body = Vec<Pass>))
)]
async fn list_passes(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<PassQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| passes::list_passes(c, &caller, &q, now))
            .await?,
    ))
}

/// Issue passes during an active incident: every household of a compound or community within
/// reach, or one household (needs `manage_passes`). Outside an active incident: 409
/// `pass.no_active_incident`.
#[utoipa::path(
    post, path = "/api/v1/passes", tag = "passes",
    request_body = IssueInput,
    responses((status = 201, body = IssueReport))
)]
async fn issue(
    State(app): State<App>,
    staff: Staff,
    Json(i): Json<IssueInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| {
            passes::issue_passes(tx, &caller, &i)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(
    get, path = "/api/v1/passes/{id}", tag = "passes",
    params(("id" = Uuid, Path, description = "pass id")),
    responses((status = 200, body = Pass))
)]
async fn show_pass(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, env| passes::get_pass(c, env, &caller, id, now))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/passes/{id}/revoke", tag = "passes",
    params(("id" = Uuid, Path, description = "pass id")),
    responses((status = 200, body = Pass))
)]
async fn revoke(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| passes::revoke_pass(tx, caller, id))
            .await?,
    ))
}

/// The code a refused look-up answers with, for its audit entry.
fn refusal_code(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound => "record.not_found",
        StoreError::Conflict { code, .. } | StoreError::Invalid { code, .. } => code,
        StoreError::Forbidden(code) => code,
        _ => "internal",
    }
}

/// Run a contact look-up and audit it, refused or not, in one write. The error (if any) is
/// returned after the audit entry has committed.
pub async fn contact_lookup(
    app: &App,
    auth: &Session,
    incident: Uuid,
    i: ContactInput,
) -> Result<ContactReport, ApiError> {
    let caller = auth.caller().clone();
    let entry = auth
        .audit(action::SENSITIVE_READ)
        .target("incident", incident);
    let r = app
        .store
        .write(auth.write_ctx(), move |tx| {
            let case = passes::case_hash(tx.env(), &i);
            let env = tx.env();
            let r = passes::contacts(tx.conn(), env, &caller, incident, &i);
            let detail = match &r {
                Ok(rep) => json!({
                    "lookup": "contacts", "case": case, "window_minutes": rep.window_minutes,
                    "found": rep.contacts.len(), "refused": null
                }),
                Err(e) => json!({
                    "lookup": "contacts", "case": case, "found": 0,
                    "refused": refusal_code(e)
                }),
            };
            audit::record(tx, entry.detail(detail))?;
            Ok(r)
        })
        .await?;
    r.map_err(|e: StoreError| ApiError::from(e))
}

/// Who passed the same gates within the window of a confirmed case's passages: only while the
/// incident is active, only for `contact_lookup` (community staff, officers). Masked; every
/// look-up and every refused one is audited.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/contacts", tag = "passes",
    params(("id" = Uuid, Path, description = "incident id")),
    request_body = ContactInput,
    responses((status = 200, body = ContactReport))
)]
async fn contacts(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    Json(i): Json<ContactInput>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(contact_lookup(&app, &staff.0, id, i).await?))
}

/// The resident's household's valid passes, with their codes.
#[utoipa::path(
    get, path = "/api/v1/resident/passes", tag = "passes",
    responses((status = 200, body = Vec<Pass>))
)]
async fn resident_passes(
    State(app): State<App>,
    r: Resident,
) -> Result<impl IntoResponse, ApiError> {
    let h = r.household_id();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, env| passes::resident_passes(c, env, h, now))
            .await?,
    ))
}
