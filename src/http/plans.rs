//! /api/v1 routes for plans and activation (owner: plans & activation): plans and their versions
//! (draft, adopt, reject, review), activation by hand or as a drill, and the confirmation,
//! decline and deactivation of incidents. Every step checks its permission in the caller's scope
//! (`anxin_store::ops`); a record outside the caller's reach is answered like a missing one.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::ops::activation::{self, ActivateOpts};
use anxin_store::ops::plans::{self, Plan, PlanInput, PlanQuery, PlanVersion, VersionInput};
use anxin_store::ops::Incident;

use crate::app::App;
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let p = Serves::Records("plans");
    let v = Serves::Records("plan_versions");
    let i = Serves::Records("incidents");
    Table::new()
        .route("/api/v1/plans", &["GET", "POST"], p, get(list).post(create))
        .route(
            "/api/v1/plans/{id}",
            &["GET", "PATCH"],
            p,
            get(show).patch(edit),
        )
        .route(
            "/api/v1/plans/{id}/versions",
            &["GET", "POST"],
            p,
            get(versions).post(create_version),
        )
        .route("/api/v1/plans/{id}/review", &["POST"], p, post(review))
        .route("/api/v1/plans/{id}/activate", &["POST"], p, post(activate))
        .route("/api/v1/plan-versions/{id}", &["GET"], v, get(show_version))
        .route(
            "/api/v1/plan-versions/{id}/adopt",
            &["POST"],
            v,
            post(adopt),
        )
        .route(
            "/api/v1/plan-versions/{id}/reject",
            &["POST"],
            v,
            post(reject),
        )
        .route(
            "/api/v1/incidents/{id}/confirm",
            &["POST"],
            i,
            post(confirm),
        )
        .route(
            "/api/v1/incidents/{id}/decline",
            &["POST"],
            i,
            post(decline),
        )
        .route(
            "/api/v1/incidents/{id}/deactivate",
            &["POST"],
            i,
            post(deactivate),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        create,
        show,
        edit,
        versions,
        create_version,
        review,
        activate,
        show_version,
        adopt,
        reject,
        confirm,
        decline,
        deactivate
    ),
    components(schemas(Plan, PlanInput, PlanVersion, VersionInput, ActivateOpts, Incident))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Plans in the caller's reach, with `review_overdue` and the drills held.
#[utoipa::path(
    get, path = "/api/v1/plans", tag = "plans",
    params(PlanQuery),
    responses((status = 200, body = Vec<Plan>))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| plans::list_plans(c, &caller, &q, now))
            .await?,
    ))
}

/// Create a plan for a node where the caller may manage plans (it starts with no version).
#[utoipa::path(
    post, path = "/api/v1/plans", tag = "plans",
    request_body = PlanInput,
    responses((status = 201, body = Plan))
)]
async fn create(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<PlanInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let p = app
        .store
        .write(staff.write_ctx(), move |tx| {
            plans::create_plan(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(
    get, path = "/api/v1/plans/{id}", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    responses((status = 200, body = Plan))
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
            .read(move |c, _| plans::get_plan(c, &caller, id, now))
            .await?,
    ))
}

/// Rename, change the review period, retire (`status`: retired) or reactivate.
#[utoipa::path(
    patch, path = "/api/v1/plans/{id}", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    request_body = PlanInput,
    responses((status = 200, body = Plan))
)]
async fn edit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<PlanInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                plans::edit_plan(tx, caller, id, &patch)
            })
            .await?,
    ))
}

/// A plan's versions, newest first.
#[utoipa::path(
    get, path = "/api/v1/plans/{id}/versions", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    responses((status = 200, body = Vec<PlanVersion>))
)]
async fn versions(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| plans::versions(c, &caller, id, now))
            .await?,
    ))
}

/// Write a draft version. The body is validated; role holders and shelters must belong to the
/// plan's own node subtree (errors name the field, e.g. `roles[1].user_id`).
#[utoipa::path(
    post, path = "/api/v1/plans/{id}/versions", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    request_body = VersionInput,
    responses((status = 201, body = PlanVersion))
)]
async fn create_version(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<VersionInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            plans::create_version(tx, &caller, id, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Record that the plan was reviewed and stays unchanged.
#[utoipa::path(
    post, path = "/api/v1/plans/{id}/review", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    responses((status = 200, body = Plan))
)]
async fn review(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| plans::review_plan(tx, caller, id))
            .await?,
    ))
}

/// Activate the plan's current version for its node, in one step (a drill with `exercise`).
/// A plan already running for its node is a conflict (`incident.already_running`).
#[utoipa::path(
    post, path = "/api/v1/plans/{id}/activate", tag = "plans",
    params(("id" = Uuid, Path, description = "plan id")),
    request_body = ActivateOpts,
    responses((status = 201, body = Incident))
)]
async fn activate(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ActivateOpts>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let opts = body(b)?;
    let i =
        crate::ops::triggers::activate(&app, staff.caller().clone(), staff.write_ctx(), id, opts)
            .await?;
    Ok((StatusCode::CREATED, Json(i)))
}

#[utoipa::path(
    get, path = "/api/v1/plan-versions/{id}", tag = "plans",
    params(("id" = Uuid, Path, description = "plan version id")),
    responses((status = 200, body = PlanVersion))
)]
async fn show_version(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| plans::get_version(c, &caller, id))
            .await?,
    ))
}

/// Adopt a draft or proposed version: it becomes current, the previous one superseded; counts
/// as a review.
#[utoipa::path(
    post, path = "/api/v1/plan-versions/{id}/adopt", tag = "plans",
    params(("id" = Uuid, Path, description = "plan version id")),
    responses((status = 200, body = PlanVersion))
)]
async fn adopt(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| plans::adopt(tx, &caller, id))
            .await?,
    ))
}

/// Reject a proposed version.
#[utoipa::path(
    post, path = "/api/v1/plan-versions/{id}/reject", tag = "plans",
    params(("id" = Uuid, Path, description = "plan version id")),
    responses((status = 200, body = PlanVersion))
)]
async fn reject(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| plans::reject(tx, &caller, id))
            .await?,
    ))
}

/// Confirm a triggered (pending) activation: everything is created now.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/confirm", tag = "plans",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident))
)]
async fn confirm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        crate::ops::triggers::confirm(&app, staff.caller().clone(), staff.write_ctx(), id).await?,
    ))
}

/// Decline a triggered (pending) activation: nothing is created.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/decline", tag = "plans",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident))
)]
async fn decline(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| activation::decline(tx, caller, id))
            .await?,
    ))
}

/// Deactivate: every step closes what it created, in reverse order; the incident is closed.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/deactivate", tag = "plans",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Incident))
)]
async fn deactivate(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                activation::deactivate(tx, caller, id)
            })
            .await?,
    ))
}
