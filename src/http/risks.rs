//! /api/v1 routes for the working-day calendar, the risk register and the risk map (owner:
//! calendar & risks).
//!
//! - `/api/v1/calendar` (GET by `year`, POST a day), `/api/v1/calendar/{date}` (GET, PUT sets
//!   the day, DELETE removes it): the exceptions to the weekday rule that deadlines are counted
//!   with; administrators with `ManageConfig` only (`anxin_store::hazards::calendar`).
//! - `/api/v1/risks` (list with filters, create), `/api/v1/risks/{id}` (get, patch),
//!   `/api/v1/risks/{id}/reviews` (list, record one), `/api/v1/risks.geojson` (the located risks
//!   of the caller's reach as a FeatureCollection for the risk map). Scoped to the caller's part
//!   of the tree (`anxin_store::hazards::risks`); a risk outside it answers like a missing one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use anxin_store::hazards::calendar::{self, CalendarDay, DayInput, YearQuery};
use anxin_store::hazards::risks::{self, Risk, RiskInput, RiskQuery, RiskReview, RiskReviewInput};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let r = Serves::Records("risks");
    Table::new()
        .route(
            "/api/v1/calendar",
            &["GET", "POST"],
            Serves::Admin,
            get(calendar_list).post(calendar_add),
        )
        .route(
            "/api/v1/calendar/{date}",
            &["GET", "PUT", "DELETE"],
            Serves::Admin,
            get(calendar_get).put(calendar_set).delete(calendar_remove),
        )
        .route("/api/v1/risks", &["GET", "POST"], r, get(list).post(create))
        .route("/api/v1/risks.geojson", &["GET"], r, get(geojson))
        .route(
            "/api/v1/risks/{id}",
            &["GET", "PATCH"],
            r,
            get(show).patch(edit),
        )
        .route(
            "/api/v1/risks/{id}/reviews",
            &["GET", "POST"],
            r,
            get(reviews).post(review),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        calendar_list,
        calendar_add,
        calendar_get,
        calendar_set,
        calendar_remove,
        list,
        create,
        geojson,
        show,
        edit,
        reviews,
        review
    ),
    components(schemas(
        CalendarDay,
        DayInput,
        Risk,
        RiskInput,
        RiskReview,
        RiskReviewInput,
        RiskReviewed,
        RiskFeatureCollection,
        RiskFeature,
        RiskPoint,
        RiskProperties
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

fn this_year(app: &App) -> i32 {
    use chrono::Datelike;
    app.clock.local_now().year()
}

fn date_param(raw: &str) -> Result<chrono::NaiveDate, ApiError> {
    Ok(calendar::parse_date(Some(raw))?)
}

// ---- the calendar ------------------------------------------------------------------------------

/// The exceptions to the weekday rule in a year: holidays on weekdays and working weekend days
/// (调休). Administrators (`manage_config`) only.
#[utoipa::path(
    get, path = "/api/v1/calendar", tag = "calendar",
    params(YearQuery),
    responses((status = 200, body = Vec<CalendarDay>))
)]
async fn calendar_list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<YearQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let year = q.year.unwrap_or_else(|| this_year(&app));
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| calendar::list(c, &caller, year))
            .await?,
    ))
}

/// Add a day: a holiday on a weekday or a working weekend day (a holiday on a weekend, or a
/// working day on a weekday, is refused naming `date`).
#[utoipa::path(
    post, path = "/api/v1/calendar", tag = "calendar",
    request_body = DayInput,
    responses((status = 201, body = CalendarDay))
)]
async fn calendar_add(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<DayInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let d = app
        .store
        .write(staff.write_ctx(), move |tx| {
            calendar::add(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[utoipa::path(
    get, path = "/api/v1/calendar/{date}", tag = "calendar",
    params(("date" = String, Path, description = "the date, YYYY-MM-DD")),
    responses((status = 200, body = CalendarDay))
)]
async fn calendar_get(
    State(app): State<App>,
    staff: Staff,
    Path(date): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let date = date_param(&date)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| calendar::get(c, &caller, date))
            .await?,
    ))
}

/// Set the day: change its kind or name, or add it when the date has none.
#[utoipa::path(
    put, path = "/api/v1/calendar/{date}", tag = "calendar",
    params(("date" = String, Path, description = "the date, YYYY-MM-DD")),
    request_body = DayInput,
    responses((status = 200, body = CalendarDay))
)]
async fn calendar_set(
    State(app): State<App>,
    staff: Staff,
    Path(date): Path<String>,
    b: Result<Json<DayInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let date = date_param(&date)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                calendar::set(tx, caller, date, &input)
            })
            .await?,
    ))
}

/// Remove the day: the weekday rule applies to it again.
#[utoipa::path(
    delete, path = "/api/v1/calendar/{date}", tag = "calendar",
    params(("date" = String, Path, description = "the date, YYYY-MM-DD")),
    responses((status = 204, description = "removed"))
)]
async fn calendar_remove(
    State(app): State<App>,
    staff: Staff,
    Path(date): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let date = date_param(&date)?;
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            calendar::remove(tx, &caller, date)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- risks -------------------------------------------------------------------------------------

/// Risks in the caller's reach, highest score first; filter by node, type, level, status and
/// overdue review.
#[utoipa::path(
    get, path = "/api/v1/risks", tag = "risks",
    params(RiskQuery),
    responses((status = 200, body = Vec<Risk>))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<RiskQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| risks::list(c, &caller, &q, now))
            .await?,
    ))
}

/// Register a risk at a node where the caller may manage risks: the level follows from
/// likelihood × consequence; the next review is at most `risks.max_review_months` away.
#[utoipa::path(
    post, path = "/api/v1/risks", tag = "risks",
    request_body = RiskInput,
    responses((status = 201, body = Risk))
)]
async fn create(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<RiskInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let months = app.config.risks.max_review_months;
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| {
            risks::create(tx, &caller, &input, months)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[utoipa::path(
    get, path = "/api/v1/risks/{id}", tag = "risks",
    params(("id" = Uuid, Path, description = "risk id")),
    responses((status = 200, body = Risk))
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
            .read(move |c, _| risks::get(c, &caller, id, now))
            .await?,
    ))
}

/// Change what is given: type, title, description, scores, controls, owner, position, next
/// review date, status (retired / active).
#[utoipa::path(
    patch, path = "/api/v1/risks/{id}", tag = "risks",
    params(("id" = Uuid, Path, description = "risk id")),
    request_body = RiskInput,
    responses((status = 200, body = Risk))
)]
async fn edit(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<RiskInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    let caller = staff.caller().clone();
    let months = app.config.risks.max_review_months;
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| {
                risks::edit(tx, &caller, id, &patch, months)
            })
            .await?,
    ))
}

/// A risk's reviews, newest first.
#[utoipa::path(
    get, path = "/api/v1/risks/{id}/reviews", tag = "risks",
    params(("id" = Uuid, Path, description = "risk id")),
    responses((status = 200, body = Vec<RiskReview>))
)]
async fn reviews(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| risks::reviews(c, &caller, id, now))
            .await?,
    ))
}

/// The risk after a review, and the review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RiskReviewed {
    risk: Risk,
    review: RiskReview,
}

/// Record a review: the scores now (default: unchanged), a note, the next review date.
#[utoipa::path(
    post, path = "/api/v1/risks/{id}/reviews", tag = "risks",
    params(("id" = Uuid, Path, description = "risk id")),
    request_body = RiskReviewInput,
    responses((status = 201, body = RiskReviewed))
)]
async fn review(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<RiskReviewInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let months = app.config.risks.max_review_months;
    let (risk, review) = app
        .store
        .write(staff.write_ctx(), move |tx| {
            risks::review(tx, &caller, id, &input, months)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(RiskReviewed { risk, review })))
}

// ---- the map layer -----------------------------------------------------------------------------

/// The located risks as GeoJSON (WGS-84).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RiskFeatureCollection {
    /// FeatureCollection
    #[serde(rename = "type")]
    pub kind: String,
    pub features: Vec<RiskFeature>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RiskFeature {
    /// Feature
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Uuid,
    pub geometry: RiskPoint,
    pub properties: RiskProperties,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RiskPoint {
    /// Point
    #[serde(rename = "type")]
    pub kind: String,
    /// [lon, lat]
    pub coordinates: Vec<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RiskProperties {
    pub id: Uuid,
    pub title: String,
    pub risk_type: String,
    pub level: String,
    pub score: i64,
    pub likelihood: i64,
    pub consequence: i64,
    pub node_name: String,
    pub place_label: String,
    pub next_review_on: chrono::NaiveDate,
    pub review_overdue: bool,
}

/// The caller's located risks (same filters as the list) as a GeoJSON FeatureCollection.
#[utoipa::path(
    get, path = "/api/v1/risks.geojson", tag = "risks",
    params(RiskQuery),
    responses((status = 200, body = RiskFeatureCollection, content_type = "application/geo+json"))
)]
async fn geojson(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<RiskQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    let list = app
        .store
        .read(move |c, _| risks::list(c, &caller, &q, now))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        Json(feature_collection(list)),
    ))
}

/// Risks with a position as features.
pub fn feature_collection(list: Vec<Risk>) -> RiskFeatureCollection {
    RiskFeatureCollection {
        kind: "FeatureCollection".into(),
        features: list
            .into_iter()
            .filter_map(|r| {
                let (lon, lat) = (r.lon?, r.lat?);
                Some(RiskFeature {
                    kind: "Feature".into(),
                    id: r.id,
                    geometry: RiskPoint {
                        kind: "Point".into(),
                        coordinates: vec![lon, lat],
                    },
                    properties: RiskProperties {
                        id: r.id,
                        title: r.title,
                        risk_type: r.risk_type,
                        level: r.level,
                        score: r.score,
                        likelihood: r.likelihood,
                        consequence: r.consequence,
                        node_name: r.node_name,
                        place_label: r.place_label,
                        next_review_on: r.next_review_on,
                        review_overdue: r.review_overdue,
                    },
                })
            })
            .collect(),
    }
}
