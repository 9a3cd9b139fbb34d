//! /api/v1 routes for checklist templates, schedules, the to-do list and inspections (owner:
//! inspections), and the bytes of attachments.
//!
//! - `inspection-templates`: the shipped checklists (read-only) and a node's own (create, edit
//!   items, retire with `status: retired`).
//! - `inspection-schedules`: what is inspected how often, by whom (create, edit, deactivate with
//!   `active: false`).
//! - `inspections/todo`: the signed-in worker's targets due this period, and the overdue ones.
//! - `inspections`: start, answer, add a photo (`multipart/form-data`: `file`, optional
//!   `item_id`), finish (a failed item reports a hazard in the same write), read, list.
//! - `attachments/{id}`: the bytes of a photo or document, to whoever may see it.
//!
//! Every rule is in `anxin_store::hazards::inspections` and `attachments`; a record outside the
//! caller's reach is answered like a missing one.

use crate::http::guard::MultipartError;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::hazards::attachments::{self, Attachment};
use anxin_store::hazards::inspections::{
    self as insp, AnswerInput, AnswersInput, FinishInput, Inspection, InspectionQuery,
    InspectionSheet, Item, ItemAnswer, ItemInput, Schedule, ScheduleInput, ScheduleQuery,
    StartInput, Template, TemplateInput, TemplateQuery, Todo, TodoItem,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

/// The largest photo upload body: one file of at most 8 MiB and its form fields.
pub const MAX_UPLOAD_BYTES: usize = attachments::MAX_BYTES + 64 * 1024;

pub fn routes() -> Table {
    let t = Serves::Records("inspection_templates");
    let s = Serves::Records("inspection_schedules");
    let i = Serves::Records("inspections");
    Table::new()
        .route(
            "/api/v1/inspection-templates",
            &["GET", "POST"],
            t,
            get(list_templates).post(create_template),
        )
        .route(
            "/api/v1/inspection-templates/{id}",
            &["GET", "PATCH"],
            t,
            get(show_template).patch(edit_template),
        )
        .route(
            "/api/v1/inspection-schedules",
            &["GET", "POST"],
            s,
            get(list_schedules).post(create_schedule),
        )
        .route(
            "/api/v1/inspection-schedules/{id}",
            &["GET", "PATCH"],
            s,
            get(show_schedule).patch(edit_schedule),
        )
        .route("/api/v1/inspections/todo", &["GET"], Serves::Own, get(todo))
        .route(
            "/api/v1/inspections",
            &["GET", "POST"],
            i,
            get(list_inspections).post(start),
        )
        .route(
            "/api/v1/inspections/{id}",
            &["GET"],
            i,
            get(show_inspection),
        )
        .route(
            "/api/v1/inspections/{id}/answers",
            &["POST"],
            i,
            post(answer),
        )
        .route(
            "/api/v1/inspections/{id}/photos",
            &["POST"],
            i,
            post(photo).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route(
            "/api/v1/inspections/{id}/finish",
            &["POST"],
            i,
            post(finish),
        )
        .route(
            "/api/v1/attachments/{id}",
            &["GET"],
            Serves::Records("attachments"),
            get(show_attachment),
        )
}

/// A photo upload (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct PhotoUpload {
    /// The photo: JPEG, PNG or WebP (or a PDF), at most 8 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The checklist item it shows; absent: the inspection as a whole.
    item_id: Option<Uuid>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_templates,
        create_template,
        show_template,
        edit_template,
        list_schedules,
        create_schedule,
        show_schedule,
        edit_schedule,
        todo,
        list_inspections,
        start,
        show_inspection,
        answer,
        photo,
        finish,
        show_attachment
    ),
    components(schemas(
        Template,
        TemplateInput,
        Item,
        ItemInput,
        Schedule,
        ScheduleInput,
        Todo,
        TodoItem,
        Inspection,
        InspectionSheet,
        ItemAnswer,
        StartInput,
        AnswersInput,
        AnswerInput,
        FinishInput,
        Attachment,
        PhotoUpload
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// ---- templates ------------------------------------------------------------------------------

/// The shipped checklists and those of nodes within reach, with their items.
#[utoipa::path(
    get, path = "/api/v1/inspection-templates", tag = "inspections",
    params(TemplateQuery),
    responses((status = 200, body = Vec<Template>))
)]
async fn list_templates(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<TemplateQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::list_templates(c, &caller, &q))
            .await?,
    ))
}

/// Create a node's checklist (needs `manage_inspections` there). Items need a code, a text;
/// answer type, photo rule and failing grade default to pass/fail, on failure, minor.
#[utoipa::path(
    post, path = "/api/v1/inspection-templates", tag = "inspections",
    request_body = TemplateInput,
    responses((status = 201, body = Template))
)]
async fn create_template(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<TemplateInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let t = app
        .store
        .write(staff.write_ctx(), move |tx| {
            insp::create_template(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(
    get, path = "/api/v1/inspection-templates/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "template id")),
    responses((status = 200, body = Template))
)]
async fn show_template(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::get_template(c, &caller, id))
            .await?,
    ))
}

/// Edit a node's checklist: name, description, `status` (retired / active), `items` (the whole
/// list, matched by code). Shipped checklists are read-only (403 `template.shipped`).
#[utoipa::path(
    patch, path = "/api/v1/inspection-templates/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "template id")),
    request_body = TemplateInput,
    responses((status = 200, body = Template))
)]
async fn edit_template(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<TemplateInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                insp::edit_template(tx, caller, id, &input)
            })
            .await?,
    ))
}

// ---- schedules ------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/inspection-schedules", tag = "inspections",
    params(ScheduleQuery),
    responses((status = 200, body = Vec<Schedule>))
)]
async fn list_schedules(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<ScheduleQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::list_schedules(c, &caller, &q))
            .await?,
    ))
}

/// Schedule a checklist for every target of its kind within a node, or one target (needs
/// `manage_inspections` there).
#[utoipa::path(
    post, path = "/api/v1/inspection-schedules", tag = "inspections",
    request_body = ScheduleInput,
    responses((status = 201, body = Schedule))
)]
async fn create_schedule(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<ScheduleInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let s = app
        .store
        .write(staff.write_ctx(), move |tx| {
            insp::create_schedule(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(
    get, path = "/api/v1/inspection-schedules/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "schedule id")),
    responses((status = 200, body = Schedule))
)]
async fn show_schedule(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::get_schedule(c, &caller, id))
            .await?,
    ))
}

/// Edit a schedule; `active: false` deactivates it.
#[utoipa::path(
    patch, path = "/api/v1/inspection-schedules/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "schedule id")),
    request_body = ScheduleInput,
    responses((status = 200, body = Schedule))
)]
async fn edit_schedule(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ScheduleInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                insp::edit_schedule(tx, caller, id, &input)
            })
            .await?,
    ))
}

// ---- the worker's day -----------------------------------------------------------------------

/// The signed-in worker's to-do list: targets due this period and not yet inspected, and the
/// overdue ones (the previous period ended without an inspection, and none since).
#[utoipa::path(
    get, path = "/api/v1/inspections/todo", tag = "inspections",
    responses((status = 200, body = Todo))
)]
async fn todo(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| insp::todo(c, &caller, now))
            .await?,
    ))
}

// ---- inspections ----------------------------------------------------------------------------

/// Inspections within reach, newest first.
#[utoipa::path(
    get, path = "/api/v1/inspections", tag = "inspections",
    params(InspectionQuery),
    responses((status = 200, body = Vec<Inspection>))
)]
async fn list_inspections(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<InspectionQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::list_inspections(c, &caller, &q))
            .await?,
    ))
}

/// Start an inspection of a target within reach (needs `inspect`); an unfinished one of the
/// same target and checklist by the same worker is resumed.
#[utoipa::path(
    post, path = "/api/v1/inspections", tag = "inspections",
    request_body = StartInput,
    responses((status = 201, body = InspectionSheet))
)]
async fn start(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<StartInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let s = app
        .store
        .write(staff.write_ctx(), move |tx| {
            insp::start(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// An inspection with its checklist, answers and photos.
#[utoipa::path(
    get, path = "/api/v1/inspections/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "inspection id")),
    responses((status = 200, body = InspectionSheet))
)]
async fn show_inspection(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| insp::get_inspection(c, &caller, id))
            .await?,
    ))
}

/// Answer items (by `item_id` or `code`); each replaces the item's earlier answer. A failed
/// answer may raise its grade to `major`.
#[utoipa::path(
    post, path = "/api/v1/inspections/{id}/answers", tag = "inspections",
    params(("id" = Uuid, Path, description = "inspection id")),
    request_body = AnswersInput,
    responses((status = 200, body = InspectionSheet))
)]
async fn answer(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<AnswersInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| insp::answer(tx, caller, id, &input))
            .await?,
    ))
}

/// The parts of a multipart body: (field name, file name, bytes), in order, as API errors
/// (415 when not multipart, 400 when broken).
pub async fn multipart_parts(
    headers: &HeaderMap,
    bytes: Bytes,
) -> Result<Vec<(String, Option<String>, Bytes)>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    crate::http::guard::multipart_parts(ct, bytes)
        .await
        .map_err(|e| match e {
            MultipartError::NotMultipart => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.body_invalid",
                "expected multipart/form-data",
            ),
            MultipartError::Broken(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.body_invalid",
                format!("multipart: {e}"),
            ),
        })
}

/// Add a photo to an inspection in progress (`multipart/form-data`: `file`, and `item_id` for
/// a photo of one item). JPEG, PNG, WebP or PDF only (recognised by content), at most 8 MiB.
#[utoipa::path(
    post, path = "/api/v1/inspections/{id}/photos", tag = "inspections",
    params(("id" = Uuid, Path, description = "inspection id")),
    request_body(content = PhotoUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = Attachment))
)]
async fn photo(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let parts = multipart_parts(&headers, bytes).await?;
    let mut file = None;
    let mut item_id = None;
    for (name, filename, data) in parts {
        match name.as_str() {
            "file" => file = Some((filename.unwrap_or_default(), data)),
            "item_id" => {
                let s = String::from_utf8_lossy(&data).trim().to_owned();
                if !s.is_empty() {
                    item_id = Some(Uuid::parse_str(&s).map_err(|_| {
                        ApiError::invalid("value.invalid", "item_id", "invalid item_id")
                    })?);
                }
            }
            _ => {}
        }
    }
    let (filename, data) =
        file.ok_or_else(|| ApiError::invalid("value.required", "file", "file required"))?;
    let caller = staff.caller().clone();
    let a = app
        .store
        .write(staff.write_ctx(), move |tx| {
            insp::add_photo(tx, &caller, id, item_id, &filename, &data)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Finish: every item answered, the photos the rules ask for present; then each failed answer
/// reports a hazard (with its photos as evidence) in the same write. Refused: 422 naming the
/// item (`answers.<code>`, `answers.<code>.photo`), nothing written.
#[utoipa::path(
    post, path = "/api/v1/inspections/{id}/finish", tag = "inspections",
    params(("id" = Uuid, Path, description = "inspection id")),
    request_body = FinishInput,
    responses((status = 200, body = InspectionSheet))
)]
async fn finish(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<FinishInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(finish_inspection(&app, &staff, id, input).await?))
}

/// Finish an inspection with the configured grade rules (the API and the phone page).
pub async fn finish_inspection(
    app: &App,
    staff: &Staff,
    id: Uuid,
    input: FinishInput,
) -> Result<InspectionSheet, ApiError> {
    let caller = staff.caller().clone();
    let rules = app.config.hazards.grades.clone();
    Ok(app
        .store
        .write(staff.write_ctx(), move |tx| {
            insp::finish(tx, &caller, id, &rules, &input)
        })
        .await?)
}

// ---- attachments ----------------------------------------------------------------------------

/// The bytes of a photo or document the caller may see (404 otherwise).
#[utoipa::path(
    get, path = "/api/v1/attachments/{id}", tag = "inspections",
    params(("id" = Uuid, Path, description = "attachment id")),
    responses((status = 200, description = "the file",
        content((String = "image/jpeg"), (String = "image/png"), (String = "image/webp"),
                (String = "application/pdf"))))
)]
async fn show_attachment(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let caller = staff.caller().clone();
    let (a, data) = app
        .store
        .read(move |c, _| attachments::get(c, &caller, id))
        .await?;
    Ok(file_response(&a, data))
}

/// An attachment as a response: its sniffed type, never re-interpreted by the browser, shown
/// inline when it is an image.
pub fn file_response(a: &Attachment, data: Vec<u8>) -> Response {
    let disposition = if a.mime.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let encoded: String = a
        .filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&a.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"attachment\"; filename*=UTF-8''{encoded}"
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", a.sha256)) {
        h.insert(header::ETAG, v);
    }
    r
}
