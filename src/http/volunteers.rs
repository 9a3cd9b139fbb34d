//! /api/v1 routes for volunteers, call-outs and welfare checks (owner: volunteers & welfare).
//!
//! - `/api/v1/volunteers`: the registry (`ManageVolunteers` over the home community).
//! - `/api/v1/callouts`: call-outs the caller may see (staff in reach; a volunteer their own),
//!   a call-out by hand, and the volunteer's answers: accept, decline, check in, check out.
//! - `/api/v1/incidents/{id}/callouts|welfare|welfare/board`: an incident's call-outs and hours,
//!   its welfare checks and the 不漏一人 board.
//! - `/api/v1/welfare`: checks the caller may see (`mine=true`: the open ones they may record),
//!   one check, and recording it (safe, need help, moved).
//!
//! Every store function takes the caller; a record outside reach answers like a missing one.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::ops::volunteers::{
    self as vol, Callout, CalloutQuery, Certificate, CheckIn, IncidentCallouts, ManualCallout,
    Volunteer, VolunteerInput, VolunteerQuery,
};
use anxin_store::ops::welfare::{self, Board, CheckQuery, CompoundLine, RecordInput, WelfareCheck};

use crate::app::App;
use crate::http::guard::{Authenticated, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let v = Serves::Records("volunteers");
    let c = Serves::Records("callouts");
    let w = Serves::Records("welfare_checks");
    let i = Serves::Records("incidents");
    Table::new()
        .route(
            "/api/v1/volunteers",
            &["GET", "POST"],
            v,
            get(list_volunteers).post(create_volunteer),
        )
        .route(
            "/api/v1/volunteers/{id}",
            &["GET", "PATCH"],
            v,
            get(show_volunteer).patch(edit_volunteer),
        )
        .route(
            "/api/v1/callouts",
            &["GET", "POST"],
            c,
            get(list_callouts).post(call_out),
        )
        .route("/api/v1/callouts/{id}", &["GET"], c, get(show_callout))
        .route("/api/v1/callouts/{id}/accept", &["POST"], c, post(accept))
        .route("/api/v1/callouts/{id}/decline", &["POST"], c, post(decline))
        .route(
            "/api/v1/callouts/{id}/check-in",
            &["POST"],
            c,
            post(check_in),
        )
        .route(
            "/api/v1/callouts/{id}/check-out",
            &["POST"],
            c,
            post(check_out),
        )
        .route(
            "/api/v1/incidents/{id}/callouts",
            &["GET"],
            i,
            get(incident_callouts),
        )
        .route(
            "/api/v1/incidents/{id}/welfare",
            &["GET"],
            i,
            get(incident_welfare),
        )
        .route(
            "/api/v1/incidents/{id}/welfare/board",
            &["GET"],
            i,
            get(welfare_board),
        )
        .route("/api/v1/welfare", &["GET"], w, get(list_checks))
        .route("/api/v1/welfare/{id}", &["GET"], w, get(show_check))
        .route("/api/v1/welfare/{id}/record", &["POST"], w, post(record))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_volunteers,
        create_volunteer,
        show_volunteer,
        edit_volunteer,
        list_callouts,
        call_out,
        show_callout,
        accept,
        decline,
        check_in,
        check_out,
        incident_callouts,
        incident_welfare,
        welfare_board,
        list_checks,
        show_check,
        record
    ),
    components(schemas(
        Volunteer,
        VolunteerInput,
        Certificate,
        Callout,
        ManualCallout,
        CheckIn,
        IncidentCallouts,
        WelfareCheck,
        Board,
        CompoundLine,
        RecordInput
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// ---- the registry ---------------------------------------------------------------------------

/// The registry within the caller's reach, filtered by skill, availability and node.
#[utoipa::path(
    get, path = "/api/v1/volunteers", tag = "volunteers",
    params(VolunteerQuery),
    responses((status = 200, body = Vec<Volunteer>))
)]
async fn list_volunteers(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<VolunteerQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| vol::list_volunteers(c, &caller, &q))
            .await?,
    ))
}

/// Register a volunteer or a deployed cadre.
#[utoipa::path(
    post, path = "/api/v1/volunteers", tag = "volunteers",
    request_body = VolunteerInput,
    responses((status = 201, body = Volunteer))
)]
async fn create_volunteer(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<VolunteerInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            vol::create_volunteer(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/volunteers/{id}", tag = "volunteers",
    params(("id" = Uuid, Path, description = "volunteer id")),
    responses((status = 200, body = Volunteer))
)]
async fn show_volunteer(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| vol::get_volunteer(c, &caller, id))
            .await?,
    ))
}

/// Edit a volunteer: absent fields are kept.
#[utoipa::path(
    patch, path = "/api/v1/volunteers/{id}", tag = "volunteers",
    params(("id" = Uuid, Path, description = "volunteer id")),
    request_body = VolunteerInput,
    responses((status = 200, body = Volunteer))
)]
async fn edit_volunteer(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<VolunteerInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                vol::update_volunteer(tx, caller, id, &input)
            })
            .await?,
    ))
}

// ---- call-outs ------------------------------------------------------------------------------

/// Call-outs the caller may see (`mine=true`: only their own).
#[utoipa::path(
    get, path = "/api/v1/callouts", tag = "volunteers",
    params(CalloutQuery),
    responses((status = 200, body = Vec<Callout>))
)]
async fn list_callouts(
    State(app): State<App>,
    auth: Authenticated,
    q: Result<Query<CalloutQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| vol::list_callouts(c, &caller, &q))
            .await?,
    ))
}

/// Call out one volunteer by hand during an active incident; the volunteer is notified.
#[utoipa::path(
    post, path = "/api/v1/callouts", tag = "volunteers",
    request_body = ManualCallout,
    responses((status = 201, body = Callout))
)]
async fn call_out(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<ManualCallout>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let m = body(b)?;
    let caller = staff.caller().clone();
    let c = app
        .store
        .write(staff.write_ctx(), move |tx| vol::call_out(tx, &caller, &m))
        .await?;
    if let Err(e) = crate::ops::welfare::notify_callout(&app, c.id).await {
        tracing::warn!(callout = %c.id, error = %format!("{e:#}"), "call-out not notified");
    }
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(
    get, path = "/api/v1/callouts/{id}", tag = "volunteers",
    params(("id" = Uuid, Path, description = "call-out id")),
    responses((status = 200, body = Callout))
)]
async fn show_callout(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| vol::get_callout(c, &caller, id))
            .await?,
    ))
}

async fn answer(app: &App, auth: &Authenticated, id: Uuid, yes: bool) -> Result<Callout, ApiError> {
    let caller = auth.caller().clone();
    Ok(app
        .store
        .write(auth.write_ctx(), move |tx| {
            vol::respond(tx, &caller, id, yes)
        })
        .await?)
}

/// Accept one's own call-out.
#[utoipa::path(
    post, path = "/api/v1/callouts/{id}/accept", tag = "volunteers",
    params(("id" = Uuid, Path, description = "call-out id")),
    responses((status = 200, body = Callout))
)]
async fn accept(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(answer(&app, &auth, id, true).await?))
}

/// Decline one's own call-out.
#[utoipa::path(
    post, path = "/api/v1/callouts/{id}/decline", tag = "volunteers",
    params(("id" = Uuid, Path, description = "call-out id")),
    responses((status = 200, body = Callout))
)]
async fn decline(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(answer(&app, &auth, id, false).await?))
}

/// Check in at an open shelter (`facility_id`) or a named place.
#[utoipa::path(
    post, path = "/api/v1/callouts/{id}/check-in", tag = "volunteers",
    params(("id" = Uuid, Path, description = "call-out id")),
    request_body = CheckIn,
    responses((status = 200, body = Callout))
)]
async fn check_in(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    b: Result<Json<CheckIn>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let at = body(b)?;
    Ok(Json(
        auth.store_write(&app, move |tx, caller| vol::check_in(tx, caller, id, &at))
            .await?,
    ))
}

/// Check out: the minutes since check-in are added to the call-out.
#[utoipa::path(
    post, path = "/api/v1/callouts/{id}/check-out", tag = "volunteers",
    params(("id" = Uuid, Path, description = "call-out id")),
    responses((status = 200, body = Callout))
)]
async fn check_out(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .write(auth.write_ctx(), move |tx| vol::check_out(tx, &caller, id))
            .await?,
    ))
}

/// An incident's call-outs and the hours attended.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/callouts", tag = "volunteers",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = IncidentCallouts))
)]
async fn incident_callouts(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| vol::incident_callouts(c, &caller, id))
            .await?,
    ))
}

// ---- welfare checks -------------------------------------------------------------------------

/// An incident's welfare checks (open first), filtered by status and compound.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/welfare", tag = "welfare",
    params(("id" = Uuid, Path, description = "incident id"), CheckQuery),
    responses((status = 200, body = Vec<WelfareCheck>))
)]
async fn incident_welfare(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<CheckQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| welfare::incident_checks(c, &caller, id, &q))
            .await?,
    ))
}

/// The 不漏一人 board: per compound, how many remain of how many.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/welfare/board", tag = "welfare",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Board))
)]
async fn welfare_board(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| welfare::board(c, &caller, id))
            .await?,
    ))
}

/// Welfare checks the caller may see; `mine=true`: the open ones they may record.
#[utoipa::path(
    get, path = "/api/v1/welfare", tag = "welfare",
    params(CheckQuery),
    responses((status = 200, body = Vec<WelfareCheck>))
)]
async fn list_checks(
    State(app): State<App>,
    auth: Authenticated,
    q: Result<Query<CheckQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| welfare::list_checks(c, &caller, &q))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/welfare/{id}", tag = "welfare",
    params(("id" = Uuid, Path, description = "welfare check id")),
    responses((status = 200, body = WelfareCheck))
)]
async fn show_check(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| welfare::get_check(c, &caller, id))
            .await?,
    ))
}

/// Record a check: safe, need help (creates an incident task) or moved.
#[utoipa::path(
    post, path = "/api/v1/welfare/{id}/record", tag = "welfare",
    params(("id" = Uuid, Path, description = "welfare check id")),
    request_body = RecordInput,
    responses((status = 200, body = WelfareCheck))
)]
async fn record(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    b: Result<Json<RecordInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        auth.store_write(&app, move |tx, caller| {
            welfare::record(tx, caller, id, &input)
        })
        .await?,
    ))
}
