//! Maps over HTTP: the layers of the map page (GeoJSON, scoped to the caller, in the coordinate
//! system the base layer needs), features drawn on the map, and grid outlines.
//!
//! Coordinates are converted here on the server only: a layer is asked for in a `crs` (default
//! WGS84) and answered in it; a drawing names the `crs` it was drawn in and is stored in WGS84
//! with that system remembered (`anxin_store::maps`). Staff only.

use crate::http::error::{body, query};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use uuid::Uuid;

use anxin_domain::geo::Crs;
use anxin_store::maps::{
    self, Feature, FeatureInput, FeaturePatch, FeatureQuery, GridShape, NewFeature, OutlineInput,
};

use crate::app::App;
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

/// Every map route. The layers carry facilities among the rest, so the isolation matrix checks
/// them as a facilities route (its A1 building has no location to show).
pub fn routes() -> Table {
    let feat = Serves::Records("map_features");
    Table::new()
        .route(
            "/api/v1/map/layers",
            &["GET"],
            Serves::Records("facilities"),
            get(layers),
        )
        .route(
            "/api/v1/map/features",
            &["GET", "POST"],
            feat,
            get(list_features).post(create_feature),
        )
        .route(
            "/api/v1/map/features/{id}",
            &["GET", "PATCH", "DELETE"],
            feat,
            get(show_feature)
                .patch(update_feature)
                .delete(delete_feature),
        )
        .route(
            "/api/v1/map/grids",
            &["GET"],
            Serves::Records("grids"),
            get(list_grids),
        )
        .route(
            "/api/v1/map/grids/{id}/outline",
            &["POST"],
            Serves::Records("grids"),
            post(set_outline),
        )
}

/// The coordinate system to answer a layer in.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LayerQuery {
    /// `wgs84` (default), `cgcs2000`, `gcj02` or `bd09`: the base layer's system.
    pub crs: Option<String>,
}

/// Every layer in the caller's reach as one FeatureCollection.
#[utoipa::path(
    get, path = "/api/v1/map/layers", tag = "map",
    params(LayerQuery),
    responses((status = 200, description = "outlines (drawn, or derived from grids and buildings), grid outlines, buildings, facilities and drawn features in the caller's reach, as one GeoJSON FeatureCollection in the asked `crs`; `properties.layer` says which; `truncated` names layers that hit their cap", content_type = "application/geo+json", body = Object))
)]
async fn layers(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<LayerQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let crs = match query(q)?.crs {
        Some(c) => c
            .parse::<Crs>()
            .map_err(|e| ApiError::invalid(e.code(), "crs", "unknown coordinate system"))?,
        None => Crs::Wgs84,
    };
    let caller = staff.caller().clone();
    let fc = app
        .store
        .read(move |c, _| maps::layers(c, &caller, crs))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        fc.to_string(),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/map/features", tag = "map",
    params(FeatureQuery),
    responses((status = 200, body = Vec<Feature>))
)]
async fn list_features(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<FeatureQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| maps::list_features(c, &caller, &q))
            .await?,
    ))
}

/// Save a drawn area or point. The geometry is in `crs` (the base layer's system); it is stored
/// in WGS84 with `source_crs` remembering what it was drawn in.
#[utoipa::path(
    post, path = "/api/v1/map/features", tag = "map",
    request_body = FeatureInput,
    responses((status = 201, body = Feature))
)]
async fn create_feature(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<FeatureInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewFeature::parse(body(b)?)?;
    let caller = staff.caller().clone();
    let v = app
        .store
        .write(staff.write_ctx(), move |tx| {
            maps::create_feature(tx, &caller, &new)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/map/features/{id}", tag = "map",
    params(("id" = Uuid, Path, description = "feature id")),
    responses((status = 200, body = Feature))
)]
async fn show_feature(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| maps::get_feature(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/map/features/{id}", tag = "map",
    params(("id" = Uuid, Path, description = "feature id")),
    request_body = FeaturePatch,
    responses((status = 200, body = Feature))
)]
async fn update_feature(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<FeaturePatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                maps::update_feature(tx, caller, id, patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/map/features/{id}", tag = "map",
    params(("id" = Uuid, Path, description = "feature id")),
    responses((status = 204, description = "deleted"))
)]
async fn delete_feature(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            maps::delete_feature(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/map/grids", tag = "map",
    responses((status = 200, body = Vec<GridShape>))
)]
async fn list_grids(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| maps::list_grid_shapes(c, &caller))
            .await?,
    ))
}

/// Set a grid's outline, drawn in `crs`; stored in WGS84.
#[utoipa::path(
    post, path = "/api/v1/map/grids/{id}/outline", tag = "map",
    params(("id" = Uuid, Path, description = "grid id")),
    request_body = OutlineInput,
    responses((status = 200, body = GridShape))
)]
async fn set_outline(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OutlineInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let outline = maps::parse_outline(body(b)?)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                maps::set_grid_outline(tx, caller, id, &outline)
            })
            .await?,
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    layers,
    list_features,
    create_feature,
    show_feature,
    update_feature,
    delete_feature,
    list_grids,
    set_outline
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
