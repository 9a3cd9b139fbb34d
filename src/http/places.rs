//! Places over HTTP: buildings with their units and dwellings, facilities (and their map layer
//! in GeoJSON), and the duty list.
//!
//! Staff only. Units and dwellings are nested under their building to create and list
//! (`/buildings/{id}/units`), and addressed on their own once they exist (`/units/{id}`). Bodies
//! and query strings are parsed by the store's `parse` functions, so a bad field comes back as
//! `422` naming it; a body that is not JSON of the right shape is `request.body_invalid`. A duty
//! holder's phone is masked everywhere; `POST /duties/{id}/unmask` shows it in clear, audited
//! before the answer leaves (and withheld if the audit cannot be written).

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::audit::{self, action};
use anxin_store::places::{
    self, BuildingFilter, BuildingInput, BuildingPatch, BuildingQuery, DutyFilter, DutyInput,
    DutyPatch, DutyQuery, DwellingInput, DwellingPatch, Facility, FacilityFilter, FacilityInput,
    FacilityPatch, FacilityQuery, NewBuilding, NewDuty, NewDwelling, NewFacility, NewUnit,
    PageInput, Paging, UnitInput,
};
use anxin_store::places::{Building, Duty, Dwelling, Page, Unit, UnmaskedDuty};

use crate::app::App;
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

/// Every places route; `Serves::Records` names the change-log kind each one serves.
pub fn routes() -> Table {
    let b = Serves::Records("buildings");
    let u = Serves::Records("units");
    let d = Serves::Records("dwellings");
    let f = Serves::Records("facilities");
    let du = Serves::Records("duties");
    Table::new()
        .route(
            "/api/v1/buildings",
            &["GET", "POST"],
            b,
            get(list_buildings).post(create_building),
        )
        .route(
            "/api/v1/buildings/{id}",
            &["GET", "PATCH", "DELETE"],
            b,
            get(show_building)
                .patch(update_building)
                .delete(delete_building),
        )
        .route(
            "/api/v1/buildings/{id}/units",
            &["GET", "POST"],
            b,
            get(list_units).post(create_unit),
        )
        .route(
            "/api/v1/units/{id}",
            &["GET", "PATCH", "DELETE"],
            u,
            get(show_unit).patch(update_unit).delete(delete_unit),
        )
        .route(
            "/api/v1/buildings/{id}/dwellings",
            &["GET", "POST"],
            b,
            get(list_dwellings).post(create_dwelling),
        )
        .route(
            "/api/v1/dwellings/{id}",
            &["GET", "PATCH", "DELETE"],
            d,
            get(show_dwelling)
                .patch(update_dwelling)
                .delete(delete_dwelling),
        )
        .route(
            "/api/v1/facilities",
            &["GET", "POST"],
            f,
            get(list_facilities).post(create_facility),
        )
        .route(
            "/api/v1/facilities.geojson",
            &["GET"],
            f,
            get(facility_layer),
        )
        .route(
            "/api/v1/facilities/{id}",
            &["GET", "PATCH", "DELETE"],
            f,
            get(show_facility)
                .patch(update_facility)
                .delete(delete_facility),
        )
        .route(
            "/api/v1/duties",
            &["GET", "POST"],
            du,
            get(list_duties).post(create_duty),
        )
        .route(
            "/api/v1/duties/{id}",
            &["GET", "PATCH", "DELETE"],
            du,
            get(show_duty).patch(update_duty).delete(delete_duty),
        )
        .route(
            "/api/v1/duties/{id}/unmask",
            &["POST"],
            du,
            post(unmask_duty),
        )
}

/// A JSON body, or the one error shape when it is not JSON of the expected form.

// --- buildings ---------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/buildings", tag = "places",
    params(BuildingQuery),
    responses((status = 200, body = Page<Building>))
)]
async fn list_buildings(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<BuildingQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let f = BuildingFilter::parse(query(q)?)?;
    let caller = staff.caller().clone();
    let page = app
        .store
        .read(move |c, _| places::list_buildings(c, &caller, &f))
        .await?;
    Ok(Json(page))
}

#[utoipa::path(
    post, path = "/api/v1/buildings", tag = "places",
    request_body = BuildingInput,
    responses((status = 201, body = Building))
)]
async fn create_building(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<BuildingInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewBuilding::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            places::create_building(tx, &caller, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/buildings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    responses((status = 200, body = Building))
)]
async fn show_building(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::get_building(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/buildings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    request_body = BuildingPatch,
    responses((status = 200, body = Building))
)]
async fn update_building(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<BuildingPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                places::update_building(tx, caller, id, patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/buildings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_building(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            places::delete_building(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- units -------------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/buildings/{id}/units", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    responses((status = 200, body = [Unit]))
)]
async fn list_units(
    State(app): State<App>,
    staff: Staff,
    Path(building): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::list_units(c, &caller, building))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/buildings/{id}/units", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    request_body = UnitInput,
    responses((status = 201, body = Unit))
)]
async fn create_unit(
    State(app): State<App>,
    staff: Staff,
    Path(building): Path<Uuid>,
    b: Result<Json<UnitInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewUnit::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            places::create_unit(tx, &caller, building, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/units/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "unit id")),
    responses((status = 200, body = Unit))
)]
async fn show_unit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::get_unit(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/units/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "unit id")),
    request_body = UnitInput,
    responses((status = 200, body = Unit))
)]
async fn update_unit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<UnitInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewUnit::parse(body(b)?)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                places::update_unit(tx, caller, id, &new)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/units/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "unit id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_unit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            places::delete_unit(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- dwellings ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DwellingQuery {
    unit_id: Option<Uuid>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/v1/buildings/{id}/dwellings", tag = "places",
    params(("id" = Uuid, Path, description = "building id"), DwellingQuery),
    responses((status = 200, body = Page<Dwelling>))
)]
async fn list_dwellings(
    State(app): State<App>,
    staff: Staff,
    Path(building): Path<Uuid>,
    q: Result<Query<DwellingQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let paging = Paging::parse(PageInput {
        limit: q.limit,
        offset: q.offset,
    })?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::list_dwellings(c, &caller, building, q.unit_id, paging))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/buildings/{id}/dwellings", tag = "places",
    params(("id" = Uuid, Path, description = "building id")),
    request_body = DwellingInput,
    responses((status = 201, body = Dwelling))
)]
async fn create_dwelling(
    State(app): State<App>,
    staff: Staff,
    Path(building): Path<Uuid>,
    b: Result<Json<DwellingInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewDwelling::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            places::create_dwelling(tx, &caller, building, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/dwellings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "dwelling id")),
    responses((status = 200, body = Dwelling))
)]
async fn show_dwelling(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::get_dwelling(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/dwellings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "dwelling id")),
    request_body = DwellingPatch,
    responses((status = 200, body = Dwelling))
)]
async fn update_dwelling(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<DwellingPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                places::update_dwelling(tx, caller, id, patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/dwellings/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "dwelling id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_dwelling(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            places::delete_dwelling(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- facilities --------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/facilities", tag = "places",
    params(FacilityQuery),
    responses((status = 200, body = Page<Facility>))
)]
async fn list_facilities(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<FacilityQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let f = FacilityFilter::parse(query(q)?)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::list_facilities(c, &caller, &f))
            .await?,
    ))
}

/// One facility as a GeoJSON (RFC 7946) feature: a WGS84 point, the rest as properties.
fn feature(f: &Facility) -> Option<serde_json::Value> {
    let loc = f.location?;
    Some(json!({
        "type": "Feature",
        "id": f.id,
        "geometry": { "type": "Point", "coordinates": [loc.lon, loc.lat] },
        "properties": {
            "name": f.name,
            "kind": f.kind,
            "kind_zh": f.kind.zh(),
            "status": f.status,
            "status_zh": f.status.zh(),
            "capacity": f.capacity,
            "area_m2": f.area_m2,
            "node_id": f.node_id,
        },
    }))
}

/// The facilities in scope with a location, as a map layer. Takes the list's filters (`under`,
/// `kind`, `status`, `q`) but no paging; `truncated` says when the layer hit its cap.
#[utoipa::path(
    get, path = "/api/v1/facilities.geojson", tag = "places",
    params(FacilityQuery),
    responses((status = 200, description = "the facilities in scope with a location, as a GeoJSON FeatureCollection (WGS84); `truncated` says when the layer hit its cap", content_type = "application/geo+json", body = Object))
)]
async fn facility_layer(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<FacilityQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let mut raw = query(q)?;
    raw.limit = None;
    raw.offset = None;
    let f = FacilityFilter::parse(raw)?;
    let caller = staff.caller().clone();
    let (items, truncated) = app
        .store
        .read(move |c, _| places::facility_layer(c, &caller, &f))
        .await?;
    let features: Vec<serde_json::Value> = items.iter().filter_map(feature).collect();
    let fc = json!({
        "type": "FeatureCollection",
        "features": features,
        "truncated": truncated,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        fc.to_string(),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/facilities", tag = "places",
    request_body = FacilityInput,
    responses((status = 201, body = Facility))
)]
async fn create_facility(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<FacilityInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewFacility::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            places::create_facility(tx, &caller, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/facilities/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "facility id")),
    responses((status = 200, body = Facility))
)]
async fn show_facility(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::get_facility(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/facilities/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "facility id")),
    request_body = FacilityPatch,
    responses((status = 200, body = Facility))
)]
async fn update_facility(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<FacilityPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                places::update_facility(tx, caller, id, patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/facilities/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "facility id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_facility(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            places::delete_facility(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- duties ------------------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/api/v1/duties", tag = "places",
    params(DutyQuery),
    responses((status = 200, description = "duties in scope, phones masked", body = Page<Duty>))
)]
async fn list_duties(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<DutyQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let f = DutyFilter::parse(query(q)?)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::list_duties(c, &caller, &f))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/duties", tag = "places",
    request_body = DutyInput,
    responses((status = 201, body = Duty))
)]
async fn create_duty(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<DutyInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewDuty::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            places::create_duty(tx, &caller, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/duties/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "duty id")),
    responses((status = 200, body = Duty))
)]
async fn show_duty(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| places::get_duty(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/duties/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "duty id")),
    request_body = DutyPatch,
    responses((status = 200, body = Duty))
)]
async fn update_duty(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<DutyPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                places::update_duty(tx, caller, id, patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/duties/{id}", tag = "places",
    params(("id" = Uuid, Path, description = "duty id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_duty(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            places::delete_duty(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The duty holder's phone in clear: needs `Unmask` on the duty's node; audited before it is
/// returned, and withheld if the audit entry cannot be written.
#[utoipa::path(
    post, path = "/api/v1/duties/{id}/unmask", tag = "places",
    params(("id" = Uuid, Path, description = "duty id")),
    responses((status = 200, description = "the holder's phone in clear (audited)", body = UnmaskedDuty))
)]
async fn unmask_duty(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let clear = app
        .store
        .read(move |c, env| places::unmask_duty(c, env, &caller, id))
        .await?;
    let entry = staff.audit(action::UNMASK).target("duty", id);
    app.store
        .write(staff.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await?;
    Ok(Json(clear))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_buildings,
    create_building,
    show_building,
    update_building,
    delete_building,
    list_units,
    create_unit,
    show_unit,
    update_unit,
    delete_unit,
    list_dwellings,
    create_dwelling,
    show_dwelling,
    update_dwelling,
    delete_dwelling,
    list_facilities,
    facility_layer,
    create_facility,
    show_facility,
    update_facility,
    delete_facility,
    list_duties,
    create_duty,
    show_duty,
    update_duty,
    delete_duty,
    unmask_duty
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
