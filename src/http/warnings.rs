//! /api/v1/warnings: the workflow (draft, edit, approve, issue, update, cancel; expiry by the
//! clock), the reach board, in-person tasks, CAP 1.2 and the Atom feed; and the resident side
//! (/api/v1/resident/warnings: the banner's list, "displayed", acknowledgement).
//!
//! Every step checks its permission in the caller's scope (`anxin_domain::warning`); a warning
//! outside the caller's reach is answered like a missing one.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anxin_store::warnings::{
    self, AckInput, NewWarning, Origin, ReachBoard, ResidentWarning, Task, UpdateInput, Warning,
    WarningInput, WarningQuery,
};

use crate::app::App;
use crate::http::guard::{Resident, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::warn::{cap, dsig, workflow};

pub fn routes() -> Table {
    let w = Serves::Records("warnings");
    crate::web::resident::warning_routes()
        .route(
            "/api/v1/warnings",
            &["GET", "POST"],
            w,
            get(list).post(create),
        )
        .route("/api/v1/warnings/feed.atom", &["GET"], w, get(feed))
        .route("/api/v1/warnings/cap", &["POST"], w, post(import_cap))
        .route(
            "/api/v1/warnings/{id}",
            &["GET", "PATCH"],
            w,
            get(show).patch(edit),
        )
        .route("/api/v1/warnings/{id}/approve", &["POST"], w, post(approve))
        .route("/api/v1/warnings/{id}/issue", &["POST"], w, post(issue))
        .route("/api/v1/warnings/{id}/update", &["POST"], w, post(update))
        .route("/api/v1/warnings/{id}/cancel", &["POST"], w, post(cancel))
        .route("/api/v1/warnings/{id}/reach", &["GET"], w, get(reach))
        .route("/api/v1/warnings/{id}/tasks", &["GET"], w, get(tasks))
        .route(
            "/api/v1/warnings/{id}/tasks/done",
            &["POST"],
            w,
            post(task_done),
        )
        .route("/api/v1/warnings/{id}/cap.xml", &["GET"], w, get(cap_xml))
        .route(
            "/api/v1/resident/warnings",
            &["GET"],
            Serves::Own,
            get(resident_list),
        )
        .route(
            "/api/v1/resident/warnings/stream",
            &["GET"],
            Serves::Own,
            get(resident_stream),
        )
        .route(
            "/api/v1/resident/warnings/{id}/displayed",
            &["POST"],
            w,
            post(displayed),
        )
        .route(
            "/api/v1/resident/warnings/{id}/ack",
            &["POST"],
            w,
            post(ack),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        create,
        feed,
        import_cap,
        show,
        edit,
        approve,
        issue,
        update,
        cancel,
        reach,
        tasks,
        task_done,
        cap_xml,
        resident_list,
        resident_stream,
        displayed,
        ack
    ),
    components(schemas(
        Warning,
        WarningInput,
        UpdateInput,
        CancelInput,
        Issued,
        ReachBoard,
        Task,
        TaskDone,
        ResidentWarning,
        AckInput
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

#[utoipa::path(
    get, path = "/api/v1/warnings", tag = "warnings",
    params(WarningQuery),
    responses((status = 200, body = Vec<Warning>))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<WarningQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    workflow::expire_due(&app).await?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| warnings::list(c, &caller, &q))
            .await?,
    ))
}

/// Create a draft. The area is given in `crs` (the base map's system) and stored in WGS84.
#[utoipa::path(
    post, path = "/api/v1/warnings", tag = "warnings",
    request_body = WarningInput,
    responses((status = 201, body = Warning))
)]
async fn create(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<WarningInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewWarning::parse(body(b)?, app.clock.now())?;
    let caller = staff.caller().clone();
    let origin = Origin::local(&app.config.warnings.sender);
    let w = app
        .store
        .write(staff.write_ctx(), move |tx| {
            warnings::create_draft(tx, &caller, &new, &origin)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(w)))
}

#[utoipa::path(
    get, path = "/api/v1/warnings/{id}", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    responses((status = 200, body = Warning))
)]
async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    workflow::expire_due(&app).await?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| warnings::get(c, &caller, id))
            .await?,
    ))
}

/// Edit a draft (needs `draft_warning`).
#[utoipa::path(
    patch, path = "/api/v1/warnings/{id}", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    request_body = WarningInput,
    responses((status = 200, body = Warning))
)]
async fn edit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<WarningInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                warnings::edit_draft(tx, caller, id, patch)
            })
            .await?,
    ))
}

/// Approve a draft (needs `approve_warning`: community staff and officers, not grid workers).
#[utoipa::path(
    post, path = "/api/v1/warnings/{id}/approve", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    responses((status = 200, body = Warning))
)]
async fn approve(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| warnings::approve(tx, caller, id))
            .await?,
    ))
}

/// What a step sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Issued {
    pub warning: Option<Warning>,
    pub recipients: usize,
    pub in_app: usize,
    pub sms: usize,
    pub in_person: usize,
    /// E-mail to residents' verified addresses.
    pub email: usize,
    /// WeChat template messages to residents' bound accounts.
    pub wechat: usize,
    /// Voice calls to vulnerable people who asked to be phoned.
    pub voice: usize,
}

fn issued(f: warnings::Fanout) -> Issued {
    Issued {
        recipients: f.recipients,
        in_app: f.in_app,
        sms: f.sms.len(),
        in_person: f.in_person,
        email: f.count("email"),
        wechat: f.count("wechat"),
        voice: f.count("voice"),
        warning: f.warning,
    }
}

/// Issue an approved warning: targets residents and sends on every channel.
#[utoipa::path(
    post, path = "/api/v1/warnings/{id}/issue", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    responses((status = 200, body = Issued))
)]
async fn issue(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let f = workflow::issue(&app, staff.caller().clone(), staff.write_ctx(), id).await?;
    Ok(Json(issued(f)))
}

/// Update an issued warning: a new version referring to the original, saying what changed.
#[utoipa::path(
    post, path = "/api/v1/warnings/{id}/update", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id (the current version)")),
    request_body = UpdateInput,
    responses((status = 200, body = Issued))
)]
async fn update(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<UpdateInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let u = body(b)?;
    let f = workflow::update(&app, staff.caller().clone(), staff.write_ctx(), id, u).await?;
    Ok(Json(issued(f)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub reason: Option<String>,
}

/// Cancel: withdraw a draft, or send the cancellation of an issued warning.
#[utoipa::path(
    post, path = "/api/v1/warnings/{id}/cancel", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    request_body = CancelInput,
    responses((status = 200, body = Issued))
)]
async fn cancel(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<CancelInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let c = body(b)?;
    let f = workflow::cancel(
        &app,
        staff.caller().clone(),
        staff.write_ctx(),
        id,
        c.reason,
    )
    .await?;
    Ok(Json(issued(f)))
}

/// Delivered and acknowledged counts by compound and channel; vulnerable residents who have not
/// acknowledged (masked). Needs `issue_warning`.
#[utoipa::path(
    get, path = "/api/v1/warnings/{id}/reach", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    responses((status = 200, body = ReachBoard))
)]
async fn reach(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| warnings::reach(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/warnings/{id}/tasks", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
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
            .read(move |c, _| warnings::tasks(c, &caller, id))
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDone {
    pub task_id: Option<Uuid>,
}

/// The helper or grid worker has told the person: the in-person delivery counts as delivered.
#[utoipa::path(
    post, path = "/api/v1/warnings/{id}/tasks/done", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    request_body = TaskDone,
    responses((status = 204))
)]
async fn task_done(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<TaskDone>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let task = body(b)?
        .task_id
        .ok_or_else(|| ApiError::invalid("value.required", "task_id", "task_id required"))?;
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            warnings::get(tx.conn(), &caller, id)?;
            warnings::complete_task(tx, &caller, task)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The CAP 1.2 document of an issued (or later) version.
#[utoipa::path(
    get, path = "/api/v1/warnings/{id}/cap.xml", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning id")),
    responses((status = 200, description = "CAP 1.2 alert", content_type = "application/cap+xml", body = String))
)]
async fn cap_xml(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let (w, prev, codes) = app
        .store
        .read(move |c, _| {
            let w = warnings::get(c, &caller, id)?;
            let prev = warnings::previous(c, &w)?;
            let codes = warnings::geocodes(c, &w)?;
            Ok((w, prev, codes))
        })
        .await?;
    if w.issued_at.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "warning.not_issued",
            "only issued warnings have a CAP document",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")],
        cap::to_cap(&w, prev.as_ref(), &codes),
    ))
}

/// Issued warnings in the caller's reach as an Atom feed, each entry linking its CAP document.
#[utoipa::path(
    get, path = "/api/v1/warnings/feed.atom", tag = "warnings",
    responses((status = 200, description = "Atom 1.0", content_type = "application/atom+xml", body = String))
)]
async fn feed(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let list = app
        .store
        .read(move |c, _| warnings::issued_in_reach(c, &caller))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        cap::atom(&list, app.clock.now(), &app.config.warnings.sender),
    ))
}

/// Warnings in force for the signed-in resident's household (the home page banner).
#[utoipa::path(
    get, path = "/api/v1/resident/warnings", tag = "warnings",
    responses((status = 200, body = Vec<ResidentWarning>))
)]
async fn resident_list(State(app): State<App>, r: Resident) -> Result<impl IntoResponse, ApiError> {
    workflow::expire_due(&app).await?;
    let (p, h) = (r.person_id(), r.household_id());
    Ok(Json(
        app.store
            .read(move |c, _| warnings::for_resident(c, p, h))
            .await?,
    ))
}

/// The resident's page displayed the warning: the in-app delivery counts as delivered.
#[utoipa::path(
    post, path = "/api/v1/resident/warnings/{id}/displayed", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning version id")),
    responses((status = 204))
)]
async fn displayed(
    State(app): State<App>,
    r: Resident,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let (p, h) = (r.person_id(), r.household_id());
    app.store
        .write(r.write_ctx(), move |tx| warnings::displayed(tx, p, h, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "I am safe" / "I need help".
#[utoipa::path(
    post, path = "/api/v1/resident/warnings/{id}/ack", tag = "warnings",
    params(("id" = Uuid, Path, description = "warning version id")),
    request_body = AckInput,
    responses((status = 204))
)]
async fn ack(
    State(app): State<App>,
    r: Resident,
    Path(id): Path<Uuid>,
    b: Result<Json<AckInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let a = body(b)?;
    let (p, h) = (r.person_id(), r.household_id());
    app.store
        .write(r.write_ctx(), move |tx| {
            warnings::acknowledge(tx, p, h, id, a.answer.as_deref())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where an imported alert is issued from.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The issuing node; default: the node of the alert's first `GB/T 2260` geocode.
    pub node_id: Option<Uuid>,
}

/// Import a CAP 1.2 alert (XML body). It is validated against the CAP 1.2 rules (errors name the
/// element); a DTD or an entity reference is refused. It becomes a draft (`source` `cap_import`),
/// approved when the sender is trusted: by name (`trusted_senders`) or, for a sender configured
/// with a key (`[[warnings.trusted]]`), by a valid XML-DSig enveloped signature (CAP 1.2
/// §3.3.4.1). A missing or failing signature lands as an untrusted draft; `trust` says why. A
/// malformed signature is refused (`dsig.malformed`, `dsig.unsupported`, naming the element).
/// A person issues it.
#[utoipa::path(
    post, path = "/api/v1/warnings/cap", tag = "warnings",
    params(ImportQuery),
    request_body(content = String, content_type = "application/cap+xml", description = "a CAP 1.2 alert"),
    responses((status = 201, body = Warning))
)]
async fn import_cap(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<ImportQuery>, QueryRejection>,
    xml: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let cfg = &app.config.warnings;
    if xml.len() > cfg.cap_max_bytes {
        return Err(ApiError::invalid(
            "cap.too_large",
            "document",
            "CAP document too large",
        ));
    }
    let text = std::str::from_utf8(&xml)
        .map_err(|_| ApiError::invalid("cap.xml_invalid", "document", "not UTF-8"))?;
    let alert = cap::parse(text).map_err(cap_error)?;
    // A sender configured with a key is trusted only with a valid signature; otherwise the
    // import lands as an untrusted draft and `trust` says why.
    let judged = dsig::judge(cfg, text, &alert.sender).map_err(|e| {
        let msg = format!(
            "XML signature refused: {} at {}: {}",
            e.code, e.field, e.why
        );
        ApiError::invalid(e.code, &e.field, msg)
    })?;
    let caller = staff.caller().clone();
    let origin = Origin {
        source: "cap_import",
        sender: alert.sender.clone(),
        cap_identifier: Some(alert.identifier.clone()),
    };
    let w = app
        .store
        .write(staff.write_ctx(), move |tx| {
            let codes: Vec<String> = alert
                .areas
                .iter()
                .flat_map(|a| a.geocodes.iter().cloned())
                .collect();
            let nodes = warnings::nodes_for_codes(tx.conn(), &codes, "alert.info.area.geocode")?;
            let node_id = q
                .node_id
                .or(nodes.first().copied())
                .ok_or_else(|| anxin_store::StoreError::invalid("value.required", "node_id"))?;
            let new = cap::to_new_warning(&alert, node_id, nodes).map_err(|e| {
                anxin_store::StoreError::Invalid {
                    code: e.code,
                    field: e.field,
                }
            })?;
            warnings::import_draft(tx, &caller, &new, &origin, judged.trusted, judged.trust)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(w)))
}

fn cap_error(e: cap::CapError) -> ApiError {
    let msg = format!("CAP refused: {} at {}", e.code, e.field);
    ApiError::invalid(e.code, &e.field, msg)
}

type Stream = (
    App,
    Uuid,
    Option<Uuid>,
    tokio::sync::broadcast::Receiver<anxin_store::ChangeEvent>,
    Option<String>,
    String,
);

async fn resident_json(app: &App, p: Uuid, h: Option<Uuid>) -> Result<String, ApiError> {
    workflow::expire_due(app).await?;
    let list = app
        .store
        .read(move |c, _| warnings::for_resident(c, p, h))
        .await?;
    serde_json::to_string(&list).map_err(|e| {
        tracing::error!(error = %e, "resident warnings");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

/// The household's warnings in force as Server-Sent Events named `warnings`: the whole list
/// (as `GET /api/v1/resident/warnings`) when the stream opens and again whenever it changes
/// (a warning issued, updated, cancelled or expired).
#[utoipa::path(
    get, path = "/api/v1/resident/warnings/stream", tag = "warnings",
    responses((status = 200, description = "Server-Sent Events named `warnings`, each the JSON list of the household's warnings in force", content_type = "text/event-stream", body = String))
)]
async fn resident_stream(
    State(app): State<App>,
    r: Resident,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let (p, h) = (r.person_id(), r.household_id());
    let rx = app.store.subscribe();
    let first = resident_json(&app, p, h).await?;
    let state: Stream = (app, p, h, rx, Some(first), String::new());
    let s = futures_util::stream::unfold(state, |(app, p, h, mut rx, pending, last)| async move {
        let event = |json: &str| Ok(Event::default().event("warnings").data(json));
        if let Some(json) = pending {
            return Some((event(&json), (app, p, h, rx, None, json)));
        }
        loop {
            // A change to any warning, or every 30 s (expiry), looks again.
            match tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await {
                Ok(Ok(ev)) if ev.kind != "warnings" => continue,
                Ok(Err(RecvError::Closed)) => return None,
                _ => {}
            }
            let Ok(json) = resident_json(&app, p, h).await else {
                continue;
            };
            if json != last {
                return Some((event(&json), (app, p, h, rx, None, json)));
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))))
}
