//! /api/v1 for the hazard ledger (隐患台账): the list and staff reports, one hazard with its
//! trail, actions (one endpoint, the action named in the body), the map layer and the XLSX
//! export in the shape community workers file.
//!
//! Every handler calls `anxin_store::hazards::ledger`, which checks the permission in the
//! caller's scope; a hazard outside the caller's reach answers like a missing one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::hazards::ledger::{
    self, Hazard, HazardActionInput, HazardDetail, HazardEvent, HazardFilter, HazardInput,
    HazardPage,
};
pub use anxin_store::hazards::ledger::{deadline_text, local_time};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub const XLSX_PATH: &str = "/api/v1/hazards/export.xlsx";

pub fn routes() -> Table {
    let h = Serves::Records("hazards");
    Table::new()
        .route(
            "/api/v1/hazards",
            &["GET", "POST"],
            h,
            get(list).post(report),
        )
        .route("/api/v1/hazards.geojson", &["GET"], h, get(geojson))
        .route(XLSX_PATH, &["GET"], h, get(export))
        .route("/api/v1/hazards/{id}", &["GET"], h, get(show))
        .route("/api/v1/hazards/{id}/events", &["GET"], h, get(events))
        .route("/api/v1/hazards/{id}/actions", &["POST"], h, post(act))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, report, show, events, act, geojson, export),
    components(schemas(
        Hazard,
        HazardPage,
        HazardDetail,
        HazardEvent,
        HazardInput,
        HazardActionInput
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Hazards in the caller's reach, newest found first, filtered; keyset paging by `after`.
#[utoipa::path(
    get, path = "/api/v1/hazards", tag = "hazards",
    params(HazardFilter),
    responses((status = 200, description = "one page of hazards in scope; `next` is the cursor of the following page (pass it as `after`)", body = HazardPage))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<HazardFilter>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let f = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| ledger::list(c, &caller, &f, now))
            .await?,
    ))
}

/// Report a hazard (needs `handle_hazards` where it is; a grid worker names their grid). The
/// deadlines are computed from the grade's rule and the working-day calendar.
#[utoipa::path(
    post, path = "/api/v1/hazards", tag = "hazards",
    request_body = HazardInput,
    responses((status = 201, body = Hazard))
)]
async fn report(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<HazardInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let rules = app.config.hazards.grades.clone();
    let h = app
        .store
        .write(staff.write_ctx(), move |tx| {
            ledger::report_by(tx, &caller, &rules, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(h)))
}

/// One hazard with its trail (every change: who, when, from, to, note, evidence).
#[utoipa::path(
    get, path = "/api/v1/hazards/{id}", tag = "hazards",
    params(("id" = Uuid, Path, description = "hazard id")),
    responses((status = 200, body = HazardDetail))
)]
async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| ledger::detail(c, &caller, id, now))
            .await?,
    ))
}

/// The hazard's trail, oldest first.
#[utoipa::path(
    get, path = "/api/v1/hazards/{id}/events", tag = "hazards",
    params(("id" = Uuid, Path, description = "hazard id")),
    responses((status = 200, body = Vec<HazardEvent>))
)]
async fn events(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| ledger::events(c, &caller, id))
            .await?,
    ))
}

/// Take one action on a hazard: `assign` (assignee_user_id and/or responsible_party),
/// `start_remediation`, `mark_fixed`, `accept` (the third-party inspector, grades needing
/// acceptance), `close`, `reopen` (note required), `record_plan_start` (incident_id: an active,
/// or once active, incident of a plan for the hazard's node, above or below it), `note`. Each
/// may carry a note and evidence (attachment ids). A step the state machine does not allow
/// answers 409 with its code (`hazard.action_not_allowed`, `hazard.needs_acceptance`, …); an
/// action the caller's role may not take answers 403 `hazard.forbidden`.
#[utoipa::path(
    post, path = "/api/v1/hazards/{id}/actions", tag = "hazards",
    params(("id" = Uuid, Path, description = "hazard id")),
    request_body = HazardActionInput,
    responses((status = 200, description = "the hazard after the action", body = Hazard))
)]
async fn act(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<HazardActionInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let rules = app.config.hazards.grades.clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| {
                ledger::act(tx, &caller, &rules, id, &input)
            })
            .await?,
    ))
}

/// The hazards in reach that have a position, as a GeoJSON FeatureCollection (WGS84); each
/// feature's properties: id, grade, state, overdue, finding, place_label, fix_due_at. Takes the
/// list's filters (paging aside); at most 10,000 features.
#[utoipa::path(
    get, path = "/api/v1/hazards.geojson", tag = "hazards",
    params(HazardFilter),
    responses((status = 200, description = "a GeoJSON FeatureCollection of Point features", content_type = "application/geo+json", body = Object))
)]
async fn geojson(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<HazardFilter>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let f = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    let fc = app
        .store
        .read(move |c, _| ledger::geojson(c, &caller, &f, now))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        fc.to_string(),
    ))
}

/// The ledger as XLSX, one row per hazard in the shape community workers file: 地点, 隐患描述,
/// 等级, 发现时间, 整改期限, 责任单位, 状态, 销号时间, 验收人 (times in Asia/Shanghai; names
/// masked), and the record's 编号. Takes the list's filters (paging aside); at most 10,000 rows.
#[utoipa::path(
    get, path = "/api/v1/hazards/export.xlsx", tag = "hazards",
    params(HazardFilter),
    responses((status = 200, description = "an XLSX workbook with one sheet 隐患台账", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>))
)]
async fn export(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<HazardFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let f = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    let hazards = app
        .store
        .read(move |c, _| ledger::all(c, &caller, &f, now))
        .await?;
    let rows: Vec<Vec<String>> = hazards.iter().map(ledger::xlsx_row).collect();
    let body =
        crate::io::sheet::write_xlsx("隐患台账", &ledger::XLSX_HEADERS, &rows).map_err(|e| {
            tracing::error!(error = %e, "hazard export failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the file could not be generated",
            )
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, crate::io::XLSX_TYPE.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"hazards.xlsx\"".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}
