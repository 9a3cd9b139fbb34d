//! /api/v1 routes for reserves and dispatch (owner: reserves & dispatch).
//!
//! - `/api/v1/supply-items` (the catalogue and the own items of the caller's communities; POST a
//!   community's own item), `/api/v1/supply-items/{id}`.
//! - `/api/v1/depots` (facilities in reach with their balances per item),
//!   `/api/v1/depots/{id}` (one, with its lots), `/api/v1/depots/{id}/movements` (GET the
//!   ledger, newest first, paginated; POST a movement: receive, issue, transfer to another depot,
//!   adjust, write_off).
//! - `/api/v1/stock/expiring` (lots expiring within `days`, default `supplies.expiry_warn_days`),
//!   `/api/v1/stock/norms` (GET the norms set in reach, POST set one), `/api/v1/stock/gaps/{id}`
//!   (the gap report of a node: a community, a street or above).
//! - `/api/v1/dispatch/plans` (GET plans, POST propose one for a street or district),
//!   `/api/v1/dispatch/plans/{id}` and `/api/v1/dispatch/plans/{id}/execute`.
//!
//! Reading needs `read_supplies` in scope, writing `manage_supplies` at the node
//! (`anxin_store::supplies::{reserves, dispatch}`); a record outside the caller's reach answers
//! like a missing one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anxin_store::supplies::dispatch::{self, Plan, PlanInput, PlanLine};
use anxin_store::supplies::reserves::{
    self, Depot, GapLine, GapReport, GapTotal, Item, ItemBalance, ItemInput, LotBalance, Movement,
    MovementInput, Norm, NormInput,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let items = Serves::Records("supply_items");
    let depots = Serves::Records("facilities");
    let plans = Serves::Records("dispatch_plans");
    Table::new()
        .route(
            "/api/v1/supply-items",
            &["GET", "POST"],
            items,
            get(items_list).post(item_create),
        )
        .route("/api/v1/supply-items/{id}", &["GET"], items, get(item_show))
        .route("/api/v1/depots", &["GET"], depots, get(depots_list))
        .route("/api/v1/depots/{id}", &["GET"], depots, get(depot_show))
        .route(
            "/api/v1/depots/{id}/movements",
            &["GET", "POST"],
            depots,
            get(ledger).post(movement_post),
        )
        .route(
            "/api/v1/stock/expiring",
            &["GET"],
            Serves::Records("stock_lots"),
            get(expiring),
        )
        .route(
            "/api/v1/stock/norms",
            &["GET", "POST"],
            Serves::Records("stock_norms"),
            get(norms_list).post(norm_set),
        )
        .route(
            "/api/v1/stock/gaps/{id}",
            &["GET"],
            Serves::Records("nodes"),
            get(gaps),
        )
        .route(
            "/api/v1/dispatch/plans",
            &["GET", "POST"],
            plans,
            get(plans_list).post(plan_propose),
        )
        .route(
            "/api/v1/dispatch/plans/{id}",
            &["GET"],
            plans,
            get(plan_show),
        )
        .route(
            "/api/v1/dispatch/plans/{id}/execute",
            &["POST"],
            plans,
            post(plan_execute),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        items_list,
        item_create,
        item_show,
        depots_list,
        depot_show,
        ledger,
        movement_post,
        expiring,
        norms_list,
        norm_set,
        gaps,
        plans_list,
        plan_propose,
        plan_show,
        plan_execute
    ),
    components(schemas(
        Item,
        ItemInput,
        Depot,
        ItemBalance,
        DepotDetail,
        LotBalance,
        Movement,
        MovementInput,
        LedgerPage,
        Posted,
        Norm,
        NormInput,
        GapReport,
        GapLine,
        GapTotal,
        Plan,
        PlanLine,
        PlanInput,
        EmptyBody
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// ---- items -------------------------------------------------------------------------------------

/// The platform catalogue and the caller's communities' own items.
#[utoipa::path(
    get, path = "/api/v1/supply-items", tag = "supplies",
    responses((status = 200, body = Vec<Item>))
)]
async fn items_list(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::list_items(c, &caller))
            .await?,
    ))
}

/// Add a community's own item (code unique at the node, not a catalogue code).
#[utoipa::path(
    post, path = "/api/v1/supply-items", tag = "supplies",
    request_body = ItemInput,
    responses((status = 201, body = Item))
)]
async fn item_create(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<ItemInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let item = app
        .store
        .write(staff.write_ctx(), move |tx| {
            reserves::create_item(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(
    get, path = "/api/v1/supply-items/{id}", tag = "supplies",
    params(("id" = Uuid, Path, description = "item id")),
    responses((status = 200, body = Item))
)]
async fn item_show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::get_item(c, &caller, id))
            .await?,
    ))
}

// ---- depots and the ledger ---------------------------------------------------------------------

/// Depots filter.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DepotQuery {
    /// Only depots in this node's subtree.
    node_id: Option<Uuid>,
}

/// Facilities in the caller's reach (any can hold stock) with their balances per item.
#[utoipa::path(
    get, path = "/api/v1/depots", tag = "supplies",
    params(DepotQuery),
    responses((status = 200, body = Vec<Depot>))
)]
async fn depots_list(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<DepotQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::list_depots(c, &caller, q.node_id))
            .await?,
    ))
}

/// A depot with its balances per item and its lots holding stock.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StockDepotDetail)]
struct DepotDetail {
    depot: Depot,
    lots: Vec<LotBalance>,
}

#[utoipa::path(
    get, path = "/api/v1/depots/{id}", tag = "supplies",
    params(("id" = Uuid, Path, description = "depot (facility) id")),
    responses((status = 200, body = DepotDetail))
)]
async fn depot_show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let (depot, lots) = app
        .store
        .read(move |c, _| {
            let d = reserves::get_depot(c, &caller, id)?;
            let l = reserves::depot_lots(c, &caller, id)?;
            Ok((d, l))
        })
        .await?;
    Ok(Json(DepotDetail { depot, lots }))
}

/// Page of the ledger.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    /// 1–200 (default 50).
    limit: Option<i64>,
    /// From 0.
    offset: Option<i64>,
}

/// One page of a depot's ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StockLedgerPage)]
struct LedgerPage {
    total: i64,
    limit: i64,
    offset: i64,
    movements: Vec<Movement>,
}

/// A depot's ledger, newest first.
#[utoipa::path(
    get, path = "/api/v1/depots/{id}/movements", tag = "supplies",
    params(("id" = Uuid, Path, description = "depot (facility) id"), PageQuery),
    responses((status = 200, body = LedgerPage))
)]
async fn ledger(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let offset = q.offset.unwrap_or(0).max(0);
    let caller = staff.caller().clone();
    let (movements, total) = app
        .store
        .read(move |c, _| reserves::ledger(c, &caller, id, limit, offset))
        .await?;
    Ok(Json(LedgerPage {
        total,
        limit,
        offset,
        movements,
    }))
}

/// The movements a post wrote.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StockPosted)]
struct Posted {
    movement_ids: Vec<Uuid>,
}

/// Post a movement at the depot: receive (a new lot), issue / write_off (from a lot, or first
/// expiry first), adjust (signed), transfer (to `to_depot_id`). A balance never goes below zero
/// (`stock.insufficient`).
#[utoipa::path(
    post, path = "/api/v1/depots/{id}/movements", tag = "supplies",
    params(("id" = Uuid, Path, description = "depot (facility) id")),
    request_body = MovementInput,
    responses((status = 201, body = Posted))
)]
async fn movement_post(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<MovementInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let movement_ids = app
        .store
        .write(staff.write_ctx(), move |tx| {
            reserves::post_checked(tx, &caller, id, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(Posted { movement_ids })))
}

// ---- expiry, norms, gaps -----------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ExpiringQuery {
    /// Days ahead, 0–3650 (default `supplies.expiry_warn_days`).
    days: Option<i64>,
    /// Only lots in this node's subtree.
    node_id: Option<Uuid>,
}

/// Lots holding stock that expire within `days` (expired ones included), first to expire first.
#[utoipa::path(
    get, path = "/api/v1/stock/expiring", tag = "supplies",
    params(ExpiringQuery),
    responses((status = 200, body = Vec<LotBalance>))
)]
async fn expiring(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<ExpiringQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let days = q.days.unwrap_or(app.config.supplies.expiry_warn_days);
    if !(0..=3650).contains(&days) {
        return Err(anxin_store::StoreError::invalid("stock.out_of_range", "days").into());
    }
    let until = app.clock.local_now().date_naive() + chrono::Days::new(days as u64);
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::expiring(c, &caller, until, q.node_id))
            .await?,
    ))
}

/// The norms set at nodes in the caller's reach.
#[utoipa::path(
    get, path = "/api/v1/stock/norms", tag = "supplies",
    responses((status = 200, body = Vec<Norm>))
)]
async fn norms_list(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::list_norms(c, &caller))
            .await?,
    ))
}

/// Set (or replace) a norm per 1,000 residents at a node; it applies to every community below
/// unless a nearer node sets its own.
#[utoipa::path(
    post, path = "/api/v1/stock/norms", tag = "supplies",
    request_body = NormInput,
    responses((status = 201, body = Norm))
)]
async fn norm_set(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<NormInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let n = app
        .store
        .write(staff.write_ctx(), move |tx| {
            reserves::set_norm(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(n)))
}

/// The gap report of a node: per community below it and item, need (residents × norm / 1,000,
/// rounded up) against the balance of its depots.
#[utoipa::path(
    get, path = "/api/v1/stock/gaps/{id}", tag = "supplies",
    params(("id" = Uuid, Path, description = "node id (community, street, district)")),
    responses((status = 200, body = GapReport))
)]
async fn gaps(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let defaults = app.config.supplies.default_norms.clone();
    Ok(Json(
        app.store
            .read(move |c, _| reserves::gap_report(c, &caller, id, &defaults))
            .await?,
    ))
}

// ---- dispatch ----------------------------------------------------------------------------------

/// Dispatch plans in the caller's reach (at its nodes, or sending to or from its communities),
/// newest first, without their lines.
#[utoipa::path(
    get, path = "/api/v1/dispatch/plans", tag = "supplies",
    responses((status = 200, body = Vec<Plan>))
)]
async fn plans_list(State(app): State<App>, staff: Staff) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| dispatch::list(c, &caller, 100))
            .await?,
    ))
}

/// Compute and store a proposed plan for the communities below a street or district: the
/// transfers covering the most need at the least travel (a minimum-cost flow).
#[utoipa::path(
    post, path = "/api/v1/dispatch/plans", tag = "supplies",
    request_body = PlanInput,
    responses((status = 201, body = Plan))
)]
async fn plan_propose(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<PlanInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let node = input
        .node_id
        .ok_or_else(|| anxin_store::StoreError::invalid("value.required", "node_id"))?;
    let caller = staff.caller().clone();
    let defaults = app.config.supplies.default_norms.clone();
    let plan = app
        .store
        .write(staff.write_ctx(), move |tx| {
            dispatch::propose(tx, &caller, node, &defaults)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

#[utoipa::path(
    get, path = "/api/v1/dispatch/plans/{id}", tag = "supplies",
    params(("id" = Uuid, Path, description = "plan id")),
    responses((status = 200, body = Plan))
)]
async fn plan_show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| dispatch::get(c, &caller, id))
            .await?,
    ))
}

/// No fields.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = DispatchExecuteBody)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Execute a proposed plan: every line becomes a transfer, all in one transaction; refused
/// (`dispatch.stock_changed`) when a sending depot's stock changed since planning.
#[utoipa::path(
    post, path = "/api/v1/dispatch/plans/{id}/execute", tag = "supplies",
    params(("id" = Uuid, Path, description = "plan id")),
    request_body(content = Option<EmptyBody>),
    responses((status = 200, body = Plan))
)]
async fn plan_execute(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| dispatch::execute(tx, caller, id))
            .await?,
    ))
}
