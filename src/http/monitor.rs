//! /api/v1/devices, device profiles, readings, alarms, and the HTTP ingest.
//!
//! Staff routes are scoped like places: reading needs `ReadMonitor`, devices and profiles
//! `ManageDevices`, alarm handling `HandleAlarms`. A device's token is shown once, when it is
//! created. `POST /api/v1/ingest/readings` is for devices: `Authorization: Bearer <device token>`,
//! the payload of the MQTT topic (docs/MONITORING.md); it answers after the readings are
//! committed and their alarms written.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anxin_store::monitor::{
    self as sm, Alarm, AlarmNote, AlarmQuery, AssignInput, CreatedDevice, Device, DeviceInput,
    DevicePatch, DeviceProfile, DeviceQuery, NewDevice, NewProfile, NoteInput, ProfileInput,
    ProfilePatch,
};
use anxin_store::places::{Page, PageInput, Paging};
use anxin_store::readings::{RawReading, Rollup, Step};

use crate::app::App;
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::monitor::pipeline::{self, Incoming, Outcome, Source};
use crate::monitor::Reject;

pub fn routes() -> Table {
    let d = Serves::Records("devices");
    let p = Serves::Records("device_profiles");
    let a = Serves::Records("alarms");
    Table::new()
        .route(
            "/api/v1/devices",
            &["GET", "POST"],
            d,
            get(list_devices).post(create_device),
        )
        .route(
            "/api/v1/devices/{id}",
            &["GET", "PATCH", "DELETE"],
            d,
            get(show_device).patch(update_device).delete(delete_device),
        )
        .route(
            "/api/v1/devices/{id}/readings",
            &["GET"],
            d,
            get(device_readings),
        )
        .route(
            "/api/v1/device-profiles",
            &["GET", "POST"],
            p,
            get(list_profiles).post(create_profile),
        )
        .route(
            "/api/v1/device-profiles/{id}",
            &["GET", "PATCH", "DELETE"],
            p,
            get(show_profile)
                .patch(update_profile)
                .delete(delete_profile),
        )
        .route("/api/v1/alarms", &["GET"], a, get(list_alarms))
        .route("/api/v1/alarms/{id}", &["GET"], a, get(show_alarm))
        .route("/api/v1/alarms/{id}/ack", &["POST"], a, post(ack_alarm))
        .route("/api/v1/alarms/{id}/clear", &["POST"], a, post(clear_alarm))
        .route(
            "/api/v1/alarms/{id}/warning",
            &["POST"],
            a,
            post(promote_alarm),
        )
        .route(
            "/api/v1/alarms/{id}/assign",
            &["POST"],
            a,
            post(assign_alarm),
        )
        .route(
            "/api/v1/alarms/{id}/notes",
            &["GET", "POST"],
            a,
            get(list_notes).post(add_note),
        )
        .route(
            "/api/v1/ingest/readings",
            &["POST"],
            Serves::Public,
            post(ingest),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_devices,
    create_device,
    show_device,
    update_device,
    delete_device,
    device_readings,
    list_profiles,
    create_profile,
    show_profile,
    update_profile,
    delete_profile,
    list_alarms,
    show_alarm,
    ack_alarm,
    clear_alarm,
    promote_alarm,
    assign_alarm,
    list_notes,
    add_note,
    ingest
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// --- devices -----------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/devices", tag = "monitor",
    params(DeviceQuery),
    responses((status = 200, body = Page<Device>))
)]
async fn list_devices(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<DeviceQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::list_devices(c, &caller, q))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/devices", tag = "monitor",
    request_body = DeviceInput,
    responses((status = 201, body = CreatedDevice, description = "the device and its token, shown this once"))
)]
async fn create_device(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<DeviceInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewDevice::parse(body(b)?)?;
    let v = config_write(&app, &staff, move |tx, c| sm::create_device(tx, c, &new)).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(v),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/devices/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "device id")),
    responses((status = 200, body = Device))
)]
async fn show_device(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::get_device(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/devices/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "device id")),
    request_body = DevicePatch,
    responses((status = 200, body = Device))
)]
async fn update_device(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<DevicePatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    let v = config_write(&app, &staff, move |tx, c| {
        sm::update_device(tx, c, id, patch)
    })
    .await?;
    Ok(Json(v))
}

#[utoipa::path(
    delete, path = "/api/v1/devices/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "device id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_device(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    config_write(&app, &staff, move |tx, c| sm::delete_device(tx, c, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A write to devices or profiles by the caller, then the pipeline's caches forgotten at once
/// (other servers learn of it from the change log).
async fn config_write<T: Send + 'static>(
    app: &App,
    staff: &Staff,
    f: impl FnOnce(&mut anxin_store::Tx, &anxin_store::scope::Caller) -> anxin_store::Result<T>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| f(tx, &caller))
        .await?;
    app.monitor.invalidate();
    Ok(v)
}

/// A readings query as it arrives.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// RFC 3339; default: 24 hours before `to`.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    pub to: Option<String>,
    /// `raw` (default), `minute` or `hour`.
    pub step: Option<String>,
    /// At most this many rows (default and maximum 10,000).
    pub limit: Option<i64>,
}

/// Readings of a device: raw, or rolled up per minute or hour.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readings {
    pub device_id: Uuid,
    pub step: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub raw: Vec<RawReading>,
    pub rollups: Vec<Rollup>,
}

fn time_param(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::invalid("value.invalid", field, format!("invalid {field}")))
    })
    .transpose()
}

#[utoipa::path(
    get, path = "/api/v1/devices/{id}/readings", tag = "monitor",
    params(("id" = Uuid, Path, description = "device id"), ReadingsQuery),
    responses((status = 200, body = Readings))
)]
async fn device_readings(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<ReadingsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let to = time_param("to", q.to.as_deref())?.unwrap_or_else(|| app.clock.now());
    let from =
        time_param("from", q.from.as_deref())?.unwrap_or_else(|| to - chrono::Duration::hours(24));
    if from >= to {
        return Err(ApiError::invalid(
            "value.invalid",
            "from",
            "from must be before to",
        ));
    }
    let limit = match q.limit {
        None => 10_000,
        Some(l) if (1..=10_000).contains(&l) => l,
        Some(_) => return Err(ApiError::invalid("value.invalid", "limit", "invalid limit")),
    };
    let step = match q.step.as_deref().unwrap_or("raw") {
        "raw" => None,
        "minute" => Some(Step::Minute),
        "hour" => Some(Step::Hour),
        _ => return Err(ApiError::invalid("value.invalid", "step", "invalid step")),
    };
    let caller = staff.caller().clone();
    app.store
        .read(move |c, _| sm::get_device(c, &caller, id))
        .await?;
    let readings = app.monitor.readings.clone();
    let (raw, rollups) = tokio::task::spawn_blocking(move || -> anxin_store::Result<_> {
        Ok(match step {
            None => (readings.raw(id, from, to, limit)?, Vec::new()),
            Some(s) => (Vec::new(), readings.rollups(id, s, from, to, limit)?),
        })
    })
    .await
    .map_err(|e| anxin_store::StoreError::Unavailable(e.to_string()))??;
    Ok(Json(Readings {
        device_id: id,
        step: step.map_or("raw", Step::as_str).to_owned(),
        from,
        to,
        raw,
        rollups,
    }))
}

// --- profiles ----------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/device-profiles", tag = "monitor",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Page<DeviceProfile>))
)]
async fn list_profiles(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<PageInput>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let paging = Paging::parse(query(q)?)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::list_profiles(c, &caller, paging))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/device-profiles", tag = "monitor",
    request_body = ProfileInput,
    responses((status = 201, body = DeviceProfile))
)]
async fn create_profile(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<ProfileInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewProfile::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            sm::create_profile(tx, &caller, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/device-profiles/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "profile id")),
    responses((status = 200, body = DeviceProfile))
)]
async fn show_profile(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::get_profile(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/device-profiles/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "profile id")),
    request_body = ProfilePatch,
    responses((status = 200, body = DeviceProfile))
)]
async fn update_profile(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ProfilePatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    let v = config_write(&app, &staff, move |tx, c| {
        sm::update_profile(tx, c, id, patch)
    })
    .await?;
    Ok(Json(v))
}

#[utoipa::path(
    delete, path = "/api/v1/device-profiles/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "profile id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_profile(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    config_write(&app, &staff, move |tx, c| sm::delete_profile(tx, c, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- alarms ------------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/alarms", tag = "monitor",
    params(AlarmQuery),
    responses((status = 200, body = Page<Alarm>))
)]
async fn list_alarms(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<AlarmQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::list_alarms(c, &caller, q))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/alarms/{id}", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    responses((status = 200, body = Alarm))
)]
async fn show_alarm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::get_alarm(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/alarms/{id}/ack", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    responses((status = 200, body = Alarm))
)]
async fn ack_alarm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| sm::ack_alarm(tx, &caller, id))
            .await?,
    ))
}

/// Promote the alarm to a draft warning, its fields filled in from the alarm and its device
/// (category from the kind of device, level from the severity, a circle around the device); the
/// draft then goes through approval and issue like any other.
#[utoipa::path(
    post, path = "/api/v1/alarms/{id}/warning", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    responses((status = 201, body = anxin_store::warnings::Warning))
)]
async fn promote_alarm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let w =
        crate::warn::promote::draft_from_alarm(&app, staff.caller(), staff.write_ctx(), id).await?;
    Ok((axum::http::StatusCode::CREATED, Json(w)))
}

#[utoipa::path(
    post, path = "/api/v1/alarms/{id}/clear", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    responses((status = 200, body = Alarm))
)]
async fn clear_alarm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| sm::clear_alarm(tx, caller, id))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/alarms/{id}/assign", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    request_body = AssignInput,
    responses((status = 200, body = Alarm))
)]
async fn assign_alarm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<AssignInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                sm::assign_alarm(tx, caller, id, input.assignee)
            })
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/alarms/{id}/notes", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    responses((status = 200, body = [AlarmNote]))
)]
async fn list_notes(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sm::list_notes(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/alarms/{id}/notes", tag = "monitor",
    params(("id" = Uuid, Path, description = "alarm id")),
    request_body = NoteInput,
    responses((status = 201, body = AlarmNote))
)]
async fn add_note(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<NoteInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            sm::add_note(tx, &caller, id, input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

// --- ingest ------------------------------------------------------------------------------------

/// What the ingest did with a message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestResult {
    /// Readings stored now.
    pub stored: usize,
    /// Readings already stored before (same device and `seq`): recognised, not evaluated again.
    pub duplicates: usize,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[utoipa::path(
    post, path = "/api/v1/ingest/readings", tag = "monitor",
    request_body(content = Object, description = "{\"seq\": u64, \"ts\": RFC 3339, \"values\": {\"metric\": number, …}} or {\"readings\": [ … ]}"),
    responses(
        (status = 200, body = IngestResult),
    )
)]
async fn ingest(
    State(app): State<App>,
    headers: HeaderMap,
    payload: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(token) = bearer(&headers).map(str::to_owned) else {
        app.monitor.count_reject(Reject::BadToken);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ingest.token_invalid",
            "device token required",
        ));
    };
    let device = app
        .store
        .read(move |c, _| sm::device_by_token(c, &token))
        .await?;
    let Some(device) = device else {
        app.monitor.count_reject(Reject::BadToken);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ingest.token_invalid",
            "unknown device token",
        ));
    };
    let outcome = pipeline::process(
        &app,
        vec![Incoming {
            source: Source::Device(device),
            payload: payload.to_vec(),
        }],
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "ingest failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service.unavailable",
            "try again shortly",
        )
    })?;
    match outcome.into_iter().next() {
        Some(Outcome::Stored { fresh, duplicates }) => Ok(Json(IngestResult {
            stored: fresh,
            duplicates,
        })),
        Some(Outcome::Rejected(Reject::DisabledDevice)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ingest.device_disabled",
            "device disabled",
        )),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ingest.payload_invalid",
            "payload must be {\"seq\", \"ts\", \"values\"} with 1 to 32 numeric values",
        )),
    }
}

#[cfg(test)]
mod tests {
    /// Every route here is in this module's part of the API document (merged by openapi.rs).
    #[test]
    fn every_route_is_documented() {
        let doc = super::api();
        for e in super::routes().entries() {
            let item = doc
                .paths
                .paths
                .get(e.path)
                .unwrap_or_else(|| panic!("{} not documented", e.path));
            let op = match e.method {
                "GET" => item.get.is_some(),
                "POST" => item.post.is_some(),
                "PATCH" => item.patch.is_some(),
                "DELETE" => item.delete.is_some(),
                _ => false,
            };
            assert!(op, "{} {} not documented", e.method, e.path);
        }
    }

    /// Merged into the whole document, every `$ref` of this part resolves.
    #[test]
    fn refs_resolve_in_the_whole_document() {
        fn walk(doc: &serde_json::Value, v: &serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        let ptr = r.trim_start_matches('#');
                        assert!(doc.pointer(ptr).is_some(), "dangling {r}");
                    }
                    m.values().for_each(|x| walk(doc, x));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(doc, x)),
                _ => {}
            }
        }
        let mut doc = crate::http::openapi::document();
        doc.merge(super::api());
        let json = serde_json::to_value(&doc).unwrap_or_default();
        walk(&json, &json);
    }
}
