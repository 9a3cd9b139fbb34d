//! /api/v1 routes for distribution campaigns (物资发放) (owner: campaigns): campaigns (list,
//! configure, open, close, cancel, draw), reservations (the rush, through `app.rush`), pickup-code
//! redemption, delivery orders, and the resident's open campaigns.
//!
//! Every rule is in `anxin_store::supplies::campaigns`; a campaign outside the caller's reach
//! answers like a missing one.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use anxin_store::accounts::UserKind;
use anxin_store::supplies::campaigns::{
    self as sc, Campaign, CampaignDetail, CampaignInput, CampaignOpenReport, CampaignQuery,
    CampaignRedeemInput, CampaignRedemption, CampaignReservation, CampaignReservationQuery,
    CampaignSlot, DeliveryAssignInput, DeliveryDoneInput, LotteryDrawReport, ReserveRequest,
    Reserved, ResidentCampaign, SlotInput,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::{Authenticated, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let c = Serves::Records("campaigns");
    let r = Serves::Records("campaign_reservations");
    Table::new()
        .route(
            "/api/v1/campaigns",
            &["GET", "POST"],
            c,
            get(list).post(create),
        )
        .route("/api/v1/campaigns/{id}", &["GET"], c, get(show))
        .route("/api/v1/campaigns/{id}/open", &["POST"], c, post(open))
        .route("/api/v1/campaigns/{id}/close", &["POST"], c, post(close))
        .route("/api/v1/campaigns/{id}/cancel", &["POST"], c, post(cancel))
        .route("/api/v1/campaigns/{id}/draw", &["POST"], c, post(draw))
        .route(
            "/api/v1/campaigns/{id}/reservations",
            &["GET", "POST"],
            c,
            get(reservations).post(reserve),
        )
        .route("/api/v1/campaigns/{id}/redeem", &["POST"], c, post(redeem))
        .route(
            "/api/v1/delivery-orders",
            &["GET"],
            Serves::Own,
            get(my_deliveries),
        )
        .route(
            "/api/v1/delivery-orders/{id}/assign",
            &["POST"],
            r,
            post(assign),
        )
        .route(
            "/api/v1/delivery-orders/{id}/delivered",
            &["POST"],
            r,
            post(delivered),
        )
        .route(
            "/api/v1/resident/campaigns",
            &["GET"],
            Serves::Own,
            get(resident_campaigns),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list,
        create,
        show,
        open,
        close,
        cancel,
        draw,
        reservations,
        reserve,
        redeem,
        my_deliveries,
        assign,
        delivered,
        resident_campaigns
    ),
    components(schemas(
        Campaign,
        CampaignDetail,
        CampaignInput,
        SlotInput,
        CampaignSlot,
        CampaignOpenReport,
        LotteryDrawReport,
        CampaignReservation,
        Reserved,
        ReserveInput,
        ReserveAnswer,
        CampaignRedeemInput,
        CampaignRedemption,
        DeliveryAssignInput,
        DeliveryDoneInput,
        ResidentCampaign
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Campaigns within reach (`run_campaigns`), newest first.
#[utoipa::path(
    get, path = "/api/v1/campaigns", tag = "campaigns",
    params(CampaignQuery),
    responses((status = 200, body = Vec<Campaign>))
)]
async fn list(
    State(app): State<App>,
    staff: Staff,
    q: Result<axum::extract::Query<CampaignQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store.read(move |c, _| sc::list(c, &caller, &q)).await?,
    ))
}

/// Configure a campaign (a draft): item, scope, quantity, pickup slots or delivery, eligibility,
/// mode, stock. Needs `run_campaigns` at `node_id`.
#[utoipa::path(
    post, path = "/api/v1/campaigns", tag = "campaigns",
    request_body = CampaignInput,
    responses((status = 201, body = CampaignDetail))
)]
async fn create(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<CampaignInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let d = app
        .store
        .write(staff.write_ctx(), move |tx| sc::create(tx, &caller, &input))
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// A campaign with its slots and counts (reserved, redeemed, remaining).
#[utoipa::path(
    get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    responses((status = 200, body = CampaignDetail))
)]
async fn show(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sc::detail(c, &caller, id))
            .await?,
    ))
}

/// Open a draft: checks slot capacity against the stock, creates delivery orders for households
/// with vulnerable people.
#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/open", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    responses((status = 200, body = CampaignOpenReport))
)]
async fn open(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| sc::open(tx, &caller, id))
        .await?;
    // The households in scope and the delivery assignees are told by the notices job the
    // opening enqueued (supplies::notices).
    app.jobs.kick();
    Ok(Json(r))
}

#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/close", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    responses((status = 200, body = Campaign))
)]
async fn close(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| sc::close(tx, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    responses((status = 200, body = Campaign))
)]
async fn cancel(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .write(staff.write_ctx(), move |tx| sc::cancel(tx, &caller, id))
            .await?,
    ))
}

/// Draw a lottery campaign now (the timer draws at `draw_at`); the seed is recorded.
#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/draw", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    responses((status = 200, body = LotteryDrawReport))
)]
async fn draw(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let r = app
        .store
        .write(staff.write_ctx(), move |tx| sc::draw(tx, &caller, id))
        .await?;
    // The applicants are told by the notices job the draw enqueued.
    app.jobs.kick();
    Ok(Json(r))
}

/// A campaign's reservations and delivery orders (households by address label only).
#[utoipa::path(
    get, path = "/api/v1/campaigns/{id}/reservations", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id"), CampaignReservationQuery),
    responses((status = 200, body = Vec<CampaignReservation>))
)]
async fn reservations(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    q: Result<axum::extract::Query<CampaignReservationQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sc::reservations(c, &caller, id, &q))
            .await?,
    ))
}

/// A reservation request. A resident reserves for their own household (leave `household_id`
/// out); a worker with `run_campaigns` reserves for a household without a phone with
/// `household_id` and `on_behalf: true` (代办).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveInput {
    /// The pickup slot (required when the campaign has more than one).
    pub slot_id: Option<Uuid>,
    /// 代办: the household reserved for (workers only).
    pub household_id: Option<Uuid>,
    /// 代办: must be true when a worker reserves.
    pub on_behalf: Option<bool>,
    /// An idempotency key (at most 100 characters); a household's retry answers its first
    /// reservation whatever the key.
    pub request_key: Option<String>,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReserveAnswer {
    pub reservation_id: Uuid,
    pub campaign_id: Uuid,
    pub household_id: Uuid,
    /// The single-use pickup code, `XXXXX-XXXXX` (empty for delivery orders and lottery
    /// applications before the draw).
    pub code: String,
    /// The pickup slot: place and time.
    pub slot: Option<CampaignSlot>,
    /// reserved, applied (lottery), delivery (a delivery order), redeemed, delivered, lost
    pub status: String,
}

/// The request a caller makes: the resident's own household, or a worker's 代办 (checked).
pub async fn reserve_request(
    app: &App,
    s: &Session,
    campaign: Uuid,
    i: ReserveInput,
) -> Result<ReserveRequest, ApiError> {
    if let Some(k) = &i.request_key {
        if k.chars().count() > 100 || k.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "value.invalid",
                "request_key",
                "invalid request_key",
            ));
        }
    }
    let household = if s.user().kind == UserKind::Resident {
        if i.on_behalf == Some(true) {
            return Err(ApiError::invalid(
                "campaign.on_behalf_staff_only",
                "on_behalf",
                "only workers reserve on behalf",
            ));
        }
        let own = s.person().and_then(|p| p.household_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.person_required",
                "choose the person you act as first",
            )
        })?;
        if i.household_id.is_some_and(|h| h != own) {
            return Err(ApiError::invalid(
                "campaign.household_not_own",
                "household_id",
                "residents reserve for their own household",
            ));
        }
        own
    } else {
        let Some(h) = i.household_id else {
            return Err(ApiError::invalid(
                "value.required",
                "household_id",
                "household_id required",
            ));
        };
        if i.on_behalf != Some(true) {
            return Err(ApiError::invalid(
                "campaign.on_behalf_required",
                "on_behalf",
                "a worker's reservation is on behalf (代办)",
            ));
        }
        let caller = s.caller().clone();
        app.store
            .read(move |c, _| sc::check_on_behalf(c, &caller, campaign, h))
            .await?;
        h
    };
    Ok(ReserveRequest {
        campaign_id: campaign,
        household_id: household,
        slot_id: i.slot_id,
        actor: s.user_id(),
        on_behalf: s.user().kind != UserKind::Resident,
        request_key: i.request_key,
    })
}

/// Reserve through the rush and answer with the slot (`reserve_many` returns it: no second read).
pub async fn do_reserve(
    app: &App,
    s: &Session,
    campaign: Uuid,
    i: ReserveInput,
) -> Result<ReserveAnswer, ApiError> {
    let req = reserve_request(app, s, campaign, i).await?;
    let r = app.rush.reserve(app, req, s.request_id()).await?;
    Ok(ReserveAnswer {
        reservation_id: r.reservation_id,
        campaign_id: r.campaign_id,
        household_id: r.household_id,
        code: r.code,
        slot: r.slot,
        status: r.status,
    })
}

/// Reserve (first come first served) or apply (lottery). One per household per campaign: a
/// retry answers the same reservation and code. Refusals: 409 `campaign.sold_out`,
/// `campaign.slot_full`, `campaign.not_open`; 404 when the campaign is not offered to the
/// household (outside its scope, or not eligible).
#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/reservations", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    request_body = ReserveInput,
    responses((status = 201, body = ReserveAnswer))
)]
async fn reserve(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    b: Result<Json<ReserveInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let a = do_reserve(&app, &auth.0, id, input).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Redeem a pickup code (needs `run_campaigns`). Single use: a second redemption answers 409
/// `campaign.code_used` with `details.redeemed_at` and `details.redeemed_by`.
#[utoipa::path(
    post, path = "/api/v1/campaigns/{id}/redeem", tag = "campaigns",
    params(("id" = Uuid, Path, description = "campaign id")),
    request_body = CampaignRedeemInput,
    responses((status = 200, body = CampaignRedemption))
)]
async fn redeem(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<CampaignRedeemInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let r = do_redeem(&app, &staff.0, id, input).await?;
    Ok(Json(r))
}

/// Redeem and turn a second use into the refusal.
pub async fn do_redeem(
    app: &App,
    s: &Session,
    campaign: Uuid,
    i: CampaignRedeemInput,
) -> Result<CampaignRedemption, ApiError> {
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            sc::redeem(tx, &caller, campaign, &i)
        })
        .await?;
    if !r.redeemed {
        return Err(used_error(&r));
    }
    Ok(r)
}

/// 409 `campaign.code_used` naming when and by whom.
pub fn used_error(r: &CampaignRedemption) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "campaign.code_used",
        "this code has been used",
    )
    .with_details(json!({
        "redeemed_at": r.reservation.redeemed_at,
        "redeemed_by": r.reservation.redeemed_by_name,
        "reservation_id": r.reservation.id,
    }))
}

/// Delivery orders assigned to the caller (volunteers and helpers with `deliver_supplies`).
#[utoipa::path(
    get, path = "/api/v1/delivery-orders", tag = "campaigns",
    responses((status = 200, body = Vec<CampaignReservation>))
)]
async fn my_deliveries(
    State(app): State<App>,
    auth: Authenticated,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| sc::my_deliveries(c, &caller))
            .await?,
    ))
}

/// Assign a delivery order to a volunteer or worker of the campaign's area (`run_campaigns`).
#[utoipa::path(
    post, path = "/api/v1/delivery-orders/{id}/assign", tag = "campaigns",
    params(("id" = Uuid, Path, description = "delivery order id")),
    request_body = DeliveryAssignInput,
    responses((status = 200, body = CampaignReservation))
)]
async fn assign(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<DeliveryAssignInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let (order, before) = staff
        .store_write(&app, move |tx, caller| {
            sc::assign_delivery(tx, caller, id, &input)
        })
        .await?;
    // A new assignee is told after commit (never failing the request).
    if let Some(user) = order.assignee_user_id.filter(|u| Some(*u) != before) {
        crate::supplies::notices::after_assign(&app, order.campaign_id, user).await;
    }
    Ok(Json(order))
}

/// Mark a delivery order delivered, with a note (its assignee, or a worker).
#[utoipa::path(
    post, path = "/api/v1/delivery-orders/{id}/delivered", tag = "campaigns",
    params(("id" = Uuid, Path, description = "delivery order id")),
    request_body = DeliveryDoneInput,
    responses((status = 200, body = CampaignReservation))
)]
async fn delivered(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    b: Result<Json<DeliveryDoneInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    Ok(Json(
        auth.store_write(&app, move |tx, caller| {
            sc::mark_delivered(tx, caller, id, &input)
        })
        .await?,
    ))
}

/// The open campaigns offered to the resident's household, with its reservation and code.
#[utoipa::path(
    get, path = "/api/v1/resident/campaigns", tag = "campaigns",
    responses((status = 200, body = Vec<ResidentCampaign>))
)]
async fn resident_campaigns(
    State(app): State<App>,
    r: crate::http::guard::Resident,
) -> Result<impl IntoResponse, ApiError> {
    let h = r.household_id();
    Ok(Json(
        app.store
            .read(move |c, env| sc::resident_campaigns(c, env, h))
            .await?,
    ))
}
