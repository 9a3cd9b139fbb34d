//! /api/v1 routes for providers, their offers, orders and receiving (owner: providers).
//!
//! - `/api/v1/providers` (list, register), `/api/v1/providers/{id}` (get, patch),
//!   `/api/v1/providers/{id}/accounts` (the accounts that speak for it; link one),
//!   `/api/v1/provider-accounts/{id}` (DELETE unlinks): staff with `manage_supplies`.
//! - `/api/v1/supply-offers` (list, publish), `/api/v1/supply-offers/{id}` (get, patch),
//!   `/api/v1/supply-offers/{id}/withdraw`: a provider's account publishes; communities read the
//!   offers of providers serving them.
//! - `/api/v1/supply-orders` (list, place), `/api/v1/supply-orders/{id}` (get, with its steps),
//!   `/api/v1/supply-orders/{id}/{confirm,decline,deliver}` (the provider's side),
//!   `/api/v1/supply-orders/{id}/{cancel,receive,close}` (the community's side; receiving books
//!   stock into the depot).
//!
//! A provider's account reads by `provider_accounts`, never by the tree; anything outside the
//! caller's side answers like a missing record (`anxin_store::supplies::providers`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::supplies::providers::{
    self as pv, AccountLinkInput, Offer, OfferInput, OfferQuery, Order, OrderEvent, OrderInput,
    OrderQuery, OrderStepInput, Provider, ProviderAccount, ProviderInput, ServedNode, Step,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::Staff;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let p = Serves::Records("providers");
    let f = Serves::Records("supply_offers");
    let o = Serves::Records("supply_orders");
    Table::new()
        .route(
            "/api/v1/providers",
            &["GET", "POST"],
            p,
            get(list_providers).post(create_provider),
        )
        .route(
            "/api/v1/providers/{id}",
            &["GET", "PATCH"],
            p,
            get(show_provider).patch(edit_provider),
        )
        .route(
            "/api/v1/providers/{id}/accounts",
            &["GET", "POST"],
            p,
            get(accounts).post(link_account),
        )
        .route(
            "/api/v1/provider-accounts/{id}",
            &["DELETE"],
            Serves::Records("provider_accounts"),
            delete(unlink_account),
        )
        .route(
            "/api/v1/supply-offers",
            &["GET", "POST"],
            f,
            get(list_offers).post(create_offer),
        )
        .route(
            "/api/v1/supply-offers/{id}",
            &["GET", "PATCH"],
            f,
            get(show_offer).patch(edit_offer),
        )
        .route(
            "/api/v1/supply-offers/{id}/withdraw",
            &["POST"],
            f,
            post(withdraw_offer),
        )
        .route(
            "/api/v1/supply-orders",
            &["GET", "POST"],
            o,
            get(list_orders).post(place_order),
        )
        .route("/api/v1/supply-orders/{id}", &["GET"], o, get(show_order))
        .route(
            "/api/v1/supply-orders/{id}/confirm",
            &["POST"],
            o,
            post(confirm),
        )
        .route(
            "/api/v1/supply-orders/{id}/decline",
            &["POST"],
            o,
            post(decline),
        )
        .route(
            "/api/v1/supply-orders/{id}/deliver",
            &["POST"],
            o,
            post(deliver),
        )
        .route(
            "/api/v1/supply-orders/{id}/cancel",
            &["POST"],
            o,
            post(cancel),
        )
        .route(
            "/api/v1/supply-orders/{id}/receive",
            &["POST"],
            o,
            post(receive),
        )
        .route(
            "/api/v1/supply-orders/{id}/close",
            &["POST"],
            o,
            post(close),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_providers,
        create_provider,
        show_provider,
        edit_provider,
        accounts,
        link_account,
        unlink_account,
        list_offers,
        create_offer,
        show_offer,
        edit_offer,
        withdraw_offer,
        list_orders,
        place_order,
        show_order,
        confirm,
        decline,
        deliver,
        cancel,
        receive,
        close
    ),
    components(schemas(
        Provider,
        ServedNode,
        ProviderInput,
        ProviderAccount,
        AccountLinkInput,
        Offer,
        OfferInput,
        Order,
        OrderEvent,
        OrderInput,
        OrderStepInput
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// ---- providers ---------------------------------------------------------------------------------

/// Providers the caller may read: on the community side those serving its nodes or registered
/// there; a provider's account, its own.
#[utoipa::path(
    get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, body = Vec<Provider>))
)]
async fn list_providers(
    State(app): State<App>,
    staff: Staff,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| pv::list_providers(c, &caller))
            .await?,
    ))
}

/// Register a provider at a node where the caller has `manage_supplies` (credit code checked,
/// contact sealed).
#[utoipa::path(
    post, path = "/api/v1/providers", tag = "providers",
    request_body = ProviderInput,
    responses((status = 201, body = Provider))
)]
async fn create_provider(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<ProviderInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let p = app
        .store
        .write(staff.write_ctx(), move |tx| {
            pv::create_provider(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(
    get, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "provider id")),
    responses((status = 200, body = Provider))
)]
async fn show_provider(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| pv::get_provider(c, &caller, id))
            .await?,
    ))
}

/// Change what is given: name, credit code, contact, address, served nodes, status.
#[utoipa::path(
    patch, path = "/api/v1/providers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "provider id")),
    request_body = ProviderInput,
    responses((status = 200, body = Provider))
)]
async fn edit_provider(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ProviderInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                pv::edit_provider(tx, caller, id, &patch)
            })
            .await?,
    ))
}

/// The accounts that speak for the provider.
#[utoipa::path(
    get, path = "/api/v1/providers/{id}/accounts", tag = "providers",
    params(("id" = Uuid, Path, description = "provider id")),
    responses((status = 200, body = Vec<ProviderAccount>))
)]
async fn accounts(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| pv::provider_accounts(c, &caller, id))
            .await?,
    ))
}

/// Link an account (made by the security administrator with a `provider` grant and no other
/// role) to the provider.
#[utoipa::path(
    post, path = "/api/v1/providers/{id}/accounts", tag = "providers",
    params(("id" = Uuid, Path, description = "provider id")),
    request_body = AccountLinkInput,
    responses((status = 201, body = ProviderAccount))
)]
async fn link_account(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<AccountLinkInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let a = app
        .store
        .write(staff.write_ctx(), move |tx| {
            pv::link_account(tx, &caller, id, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Unlink an account from its provider.
#[utoipa::path(
    delete, path = "/api/v1/provider-accounts/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "the link's id")),
    responses((status = 204, description = "unlinked"))
)]
async fn unlink_account(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    app.store
        .write(staff.write_ctx(), move |tx| {
            pv::unlink_account(tx, &caller, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- offers ------------------------------------------------------------------------------------

/// Offers the caller may read: a provider's own, or those of providers serving the caller's
/// nodes.
#[utoipa::path(
    get, path = "/api/v1/supply-offers", tag = "providers",
    params(OfferQuery),
    responses((status = 200, body = Vec<Offer>))
)]
async fn list_offers(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<OfferQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| pv::list_offers(c, &caller, &q, now))
            .await?,
    ))
}

/// Publish an offer for the provider the caller's account speaks for.
#[utoipa::path(
    post, path = "/api/v1/supply-offers", tag = "providers",
    request_body = OfferInput,
    responses((status = 201, body = Offer))
)]
async fn create_offer(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<OfferInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let o = app
        .store
        .write(staff.write_ctx(), move |tx| {
            pv::create_offer(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(o)))
}

#[utoipa::path(
    get, path = "/api/v1/supply-offers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "offer id")),
    responses((status = 200, body = Offer))
)]
async fn show_offer(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    let now = app.clock.now();
    Ok(Json(
        app.store
            .read(move |c, _| pv::get_offer(c, &caller, id, now))
            .await?,
    ))
}

/// Change quantity, price, lead time, last day or note (the provider's own offers only).
#[utoipa::path(
    patch, path = "/api/v1/supply-offers/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "offer id")),
    request_body = OfferInput,
    responses((status = 200, body = Offer))
)]
async fn edit_offer(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OfferInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                pv::edit_offer(tx, caller, id, &patch)
            })
            .await?,
    ))
}

/// Withdraw an offer (orders already placed stand).
#[utoipa::path(
    post, path = "/api/v1/supply-offers/{id}/withdraw", tag = "providers",
    params(("id" = Uuid, Path, description = "offer id")),
    responses((status = 200, body = Offer))
)]
async fn withdraw_offer(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| pv::withdraw_offer(tx, caller, id))
            .await?,
    ))
}

// ---- orders ------------------------------------------------------------------------------------

/// Orders the caller may read: a provider's own, or those of depots in the caller's reach.
#[utoipa::path(
    get, path = "/api/v1/supply-orders", tag = "providers",
    params(OrderQuery),
    responses((status = 200, body = Vec<Order>))
)]
async fn list_orders(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<OrderQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| pv::list_orders(c, &caller, &q))
            .await?,
    ))
}

/// Order from an offer for a depot of the caller's (`manage_supplies`); the quantity is taken
/// from the offer's quantity available.
#[utoipa::path(
    post, path = "/api/v1/supply-orders", tag = "providers",
    request_body = OrderInput,
    responses((status = 201, body = Order))
)]
async fn place_order(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<OrderInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let o = app
        .store
        .write(staff.write_ctx(), move |tx| {
            pv::place_order(tx, &caller, &input)
        })
        .await?;
    // The provider is told after commit.
    crate::supplies::notices::after_order(&app, &o, None).await;
    Ok((StatusCode::CREATED, Json(o)))
}

/// An order with its steps.
#[utoipa::path(
    get, path = "/api/v1/supply-orders/{id}", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    responses((status = 200, body = Order))
)]
async fn show_order(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| pv::get_order(c, &caller, id))
            .await?,
    ))
}

async fn take_step(
    app: App,
    staff: Staff,
    id: Uuid,
    step: Step,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    let input = body(b)?;
    let o = staff
        .store_write(&app, move |tx, caller| {
            pv::step(tx, caller, id, step, &input)
        })
        .await?;
    // The other side is told after commit.
    crate::supplies::notices::after_order(&app, &o, Some(step)).await;
    Ok(Json(o))
}

/// The provider confirms a placed order.
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/confirm", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn confirm(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Confirm, b).await
}

/// The provider declines a placed order (its quantity goes back to the offer).
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/decline", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn decline(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Decline, b).await
}

/// The provider delivers all that is left, or `quantity` of it.
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/deliver", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn deliver(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Deliver, b).await
}

/// The community cancels an order not yet confirmed.
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/cancel", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn cancel(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Cancel, b).await
}

/// The community receives what was delivered (or `quantity` of it): stock is booked into the
/// depot in the same transaction.
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/receive", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn receive(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Receive, b).await
}

/// The community closes a received order (or a short one once all that came is received).
#[utoipa::path(
    post, path = "/api/v1/supply-orders/{id}/close", tag = "providers",
    params(("id" = Uuid, Path, description = "order id")),
    request_body = OrderStepInput,
    responses((status = 200, body = Order))
)]
async fn close(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<OrderStepInput>, JsonRejection>,
) -> Result<Json<Order>, ApiError> {
    take_step(app, staff, id, Step::Close, b).await
}
