//! /api/v1 routes for supervision (红黄牌) (owner: supervision): the ranked table of the
//! communities under a node for a quarter (computed now, with each community's stored trend),
//! the stored rounds (an officer's on-demand round; the quarterly job's), and one community's
//! figures and trend. Figures are read through node grants that read hazards
//! (`anxin_store::hazards::supervision::reach`); an on-demand round needs `Supervise` over its
//! node. A node outside the caller's reach is answered like a missing one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use uuid::Uuid;

use anxin_store::hazards::supervision::{
    self as sup, Figures, Line, Reason, Round, RoundInput, Table, TableQuery, Thresholds,
    TrendPoint,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table as Routes};
use crate::http::ApiError;

pub fn routes() -> Routes {
    // The table and a community's figures are about community nodes.
    let n = Serves::Records("nodes");
    let r = Serves::Records("supervision_rounds");
    Routes::new()
        .route("/api/v1/supervision", &["GET"], n, get(table))
        .route(
            "/api/v1/supervision/rounds",
            &["GET", "POST"],
            r,
            get(rounds).post(create_round),
        )
        .route(
            "/api/v1/supervision/communities/{id}",
            &["GET"],
            n,
            get(community),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(table, rounds, create_round, community),
    components(schemas(
        Table, Line, Figures, Reason, TrendPoint, Round, RoundInput, Thresholds
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// The communities under `node` (default: all the caller reaches), scored for `quarter`
/// (default: the running one, as of now), worst first, each with its card, the card's reasons
/// and the trend of its stored rounds. A quarter not written `2026-Q4` is
/// `supervision.quarter_invalid`, one not yet begun `supervision.quarter_future` (422, field
/// `quarter`); a node outside the caller's reach is not found.
#[utoipa::path(
    get, path = "/api/v1/supervision", tag = "supervision",
    params(TableQuery),
    responses((status = 200, body = Table))
)]
async fn table(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<TableQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    let t = app.config.supervision.thresholds();
    Ok(Json(
        app.store
            .read(move |c, _| sup::table(c, &caller, &q, now, &t))
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RoundsQuery {
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
}

/// Stored rounds that scored a community the caller reaches, newest first; the counts are of
/// those communities only.
#[utoipa::path(
    get, path = "/api/v1/supervision/rounds", tag = "supervision",
    params(RoundsQuery),
    responses((status = 200, body = Vec<Round>))
)]
async fn rounds(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<RoundsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let limit = q.limit.unwrap_or(50);
    Ok(Json(
        app.store
            .read(move |c, _| sup::list_rounds(c, &caller, limit))
            .await?,
    ))
}

/// Score every community under the node now and store the round (needs `Supervise` there:
/// `supervision.not_supervisor`, 403, without it anywhere; a node outside it is not found).
#[utoipa::path(
    post, path = "/api/v1/supervision/rounds", tag = "supervision",
    request_body = RoundInput,
    responses((status = 201, body = Round))
)]
async fn create_round(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<RoundInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let t = app.config.supervision.thresholds();
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| {
            sup::run_round(tx, &caller, &input, &t)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CommunityQuery {
    /// `2026-Q4`; default: the running quarter.
    quarter: Option<String>,
}

/// One community's figures for the quarter (computed now), its card and reasons, and the trend
/// of its stored rounds.
#[utoipa::path(
    get, path = "/api/v1/supervision/communities/{id}", tag = "supervision",
    params(("id" = Uuid, Path, description = "community node id"), CommunityQuery),
    responses((status = 200, body = Line))
)]
async fn community(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<CommunityQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    let t = app.config.supervision.thresholds();
    Ok(Json(
        app.store
            .read(move |c, _| sup::community(c, &caller, id, q.quarter.as_deref(), now, &t))
            .await?,
    ))
}
