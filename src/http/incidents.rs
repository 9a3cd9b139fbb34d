//! /api/v1 for incident operations: incidents and their timeline, tasks (and the caller's own),
//! situation reports, shelters and stays, and the after-action review.
//!
//! Every handler calls `anxin_store::ops::incidents`, which checks the permission in the
//! caller's scope; an incident outside the caller's reach answers like a missing one.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::ops::incidents::{
    self as inc, CheckInInput, IncidentItem, IncidentQuery, Lesson, LessonInput, LogLine, LogPage,
    LogQuery, Review, ReviewInput, Shelter, Sitrep, SitrepInput, Stay, StayQuery, Task, TaskInput,
    TaskStatusInput,
};

use crate::app::App;
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let i = Serves::Records("incidents");
    let t = Serves::Records("incident_tasks");
    let s = Serves::Records("incident_sitreps");
    Table::new()
        .route("/api/v1/incidents", &["GET"], i, get(list))
        .route("/api/v1/incidents/{id}", &["GET"], i, get(show))
        .route("/api/v1/incidents/{id}/log", &["GET"], i, get(timeline))
        .route(
            "/api/v1/incidents/{id}/tasks",
            &["GET", "POST"],
            i,
            get(tasks).post(add_task),
        )
        .route("/api/v1/my-tasks", &["GET"], Serves::Own, get(my_tasks))
        .route(
            "/api/v1/incident-tasks/{id}/status",
            &["POST"],
            t,
            post(task_status),
        )
        .route(
            "/api/v1/incidents/{id}/sitreps",
            &["GET", "POST"],
            i,
            get(sitreps).post(draft_sitrep),
        )
        .route("/api/v1/sitreps/{id}", &["GET"], s, get(sitrep))
        .route("/api/v1/sitreps/{id}/approve", &["POST"], s, post(approve))
        .route("/api/v1/sitreps/{id}/publish", &["POST"], s, post(publish))
        .route(
            "/api/v1/incidents/{id}/shelters",
            &["GET"],
            i,
            get(shelters),
        )
        .route(
            "/api/v1/incidents/{id}/stays",
            &["GET", "POST"],
            i,
            get(stays).post(check_in),
        )
        .route(
            "/api/v1/shelter-stays/{id}/check-out",
            &["POST"],
            Serves::Records("shelter_stays"),
            post(check_out),
        )
        .route(
            "/api/v1/incidents/{id}/review",
            &["POST"],
            i,
            post(submit_review),
        )
        .route(
            "/api/v1/reviews/{id}",
            &["GET"],
            Serves::Records("incident_reviews"),
            get(review),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        show,
        timeline,
        tasks,
        add_task,
        my_tasks,
        task_status,
        sitreps,
        draft_sitrep,
        sitrep,
        approve,
        publish,
        shelters,
        stays,
        check_in,
        check_out,
        submit_review,
        review
    ),
    components(schemas(
        IncidentItem,
        LogLine,
        LogPage,
        Task,
        TaskInput,
        TaskStatusInput,
        Sitrep,
        SitrepInput,
        Shelter,
        Stay,
        CheckInInput,
        Review,
        ReviewInput,
        Lesson,
        LessonInput
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Incidents in the caller's reach: active first; drills are marked `exercise`.
#[utoipa::path(
    get, path = "/api/v1/incidents", tag = "incidents",
    params(IncidentQuery),
    responses((status = 200, body = Vec<IncidentItem>))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::list(c, &caller, &q))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = IncidentItem))
)]
async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store.read(move |c, _| inc::get(c, &caller, id)).await?,
    ))
}

/// The incident's timeline, oldest first (newest last), paged.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/log", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id"), LogQuery),
    responses((status = 200, body = LogPage))
)]
async fn timeline(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::timeline(c, &caller, id, &q))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/tasks", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Vec<Task>))
)]
async fn tasks(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::tasks(c, &caller, id))
            .await?,
    ))
}

/// Add a task by hand (needs `run_incidents`; the incident must be active).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/tasks", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    request_body = TaskInput,
    responses((status = 201, body = Task))
)]
async fn add_task(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<TaskInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let t = app
        .store
        .write(staff.write_ctx(), move |tx| {
            inc::add_task(tx, &caller, id, input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// The signed-in user's tasks in active incidents.
#[utoipa::path(
    get, path = "/api/v1/my-tasks", tag = "incidents",
    responses((status = 200, body = Vec<Task>))
)]
async fn my_tasks(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::my_tasks(c, &caller))
            .await?,
    ))
}

/// Move a task (open, in_progress, done, cancelled) with a note; the assignee may move their own.
#[utoipa::path(
    post, path = "/api/v1/incident-tasks/{id}/status", tag = "incidents",
    params(("id" = Uuid, Path, description = "task id")),
    request_body = TaskStatusInput,
    responses((status = 200, body = Task))
)]
async fn task_status(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<TaskStatusInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                inc::set_task_status(tx, caller, id, input)
            })
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/sitreps", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Vec<Sitrep>))
)]
async fn sitreps(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::sitreps(c, &caller, id))
            .await?,
    ))
}

/// Draft a situation report; its figures are taken from the records now.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/sitreps", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    request_body = SitrepInput,
    responses((status = 201, body = Sitrep))
)]
async fn draft_sitrep(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<SitrepInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let s = app
        .store
        .write(staff.write_ctx(), move |tx| {
            inc::draft_sitrep(tx, &caller, id, input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(
    get, path = "/api/v1/sitreps/{id}", tag = "incidents",
    params(("id" = Uuid, Path, description = "situation report id")),
    responses((status = 200, body = Sitrep))
)]
async fn sitrep(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::sitrep(c, &caller, id).map(|(s, _)| s))
            .await?,
    ))
}

/// Approve a draft (needs `approve_reports`; not by its author).
#[utoipa::path(
    post, path = "/api/v1/sitreps/{id}/approve", tag = "incidents",
    params(("id" = Uuid, Path, description = "situation report id")),
    responses((status = 200, body = Sitrep))
)]
async fn approve(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    sitrep_step(app, staff, id, inc::approve_sitrep).await
}

/// Publish an approved report.
#[utoipa::path(
    post, path = "/api/v1/sitreps/{id}/publish", tag = "incidents",
    params(("id" = Uuid, Path, description = "situation report id")),
    responses((status = 200, body = Sitrep))
)]
async fn publish(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    sitrep_step(app, staff, id, inc::publish_sitrep).await
}

/// One step of a report's workflow, by the signed-in staff member.
async fn sitrep_step(
    app: App,
    staff: Staff,
    id: Uuid,
    step: fn(
        &mut anxin_store::Tx,
        &anxin_store::scope::Caller,
        Uuid,
    ) -> anxin_store::Result<inc::Sitrep>,
) -> Result<Json<inc::Sitrep>, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| step(tx, &caller, id))
            .await?,
    ))
}

/// Open shelters in the incident's scope with their occupancy.
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/shelters", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    responses((status = 200, body = Vec<Shelter>))
)]
async fn shelters(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::shelters(c, &caller, id))
            .await?,
    ))
}

/// Stays at the incident's shelters (names masked).
#[utoipa::path(
    get, path = "/api/v1/incidents/{id}/stays", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id"), StayQuery),
    responses((status = 200, body = Vec<Stay>))
)]
async fn stays(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<StayQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::stays(c, &caller, id, &q))
            .await?,
    ))
}

/// Check a resident (`person_id`) or a walk-in (`name`, `phone`) in at an open shelter;
/// refused over capacity (`shelter.full`).
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/stays", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    request_body = CheckInInput,
    responses((status = 201, body = Stay))
)]
async fn check_in(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<CheckInInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let s = app
        .store
        .write(staff.write_ctx(), move |tx| {
            inc::check_in(tx, &caller, id, input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(
    post, path = "/api/v1/shelter-stays/{id}/check-out", tag = "incidents",
    params(("id" = Uuid, Path, description = "stay id")),
    responses((status = 200, body = Stay))
)]
async fn check_out(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| inc::check_out(tx, &caller, id))
            .await?,
    ))
}

/// The after-action review of a closed incident: lessons with a revised plan body become
/// proposed plan versions; the incident becomes `reviewed`.
#[utoipa::path(
    post, path = "/api/v1/incidents/{id}/review", tag = "incidents",
    params(("id" = Uuid, Path, description = "incident id")),
    request_body = ReviewInput,
    responses((status = 201, body = Review))
)]
async fn submit_review(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ReviewInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| {
            inc::submit_review(tx, &caller, id, input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(
    get, path = "/api/v1/reviews/{id}", tag = "incidents",
    params(("id" = Uuid, Path, description = "review id")),
    responses((status = 200, body = Review))
)]
async fn review(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| inc::review(c, &caller, id).map(|(r, _)| r))
            .await?,
    ))
}
