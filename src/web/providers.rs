//! Pages for providers, their offers, orders and receiving (owner: providers).
//!
//! - `/manage/orders` (community staff): offers of the providers serving them with the order
//!   form, their orders, the providers they see and the form to register one.
//! - `/manage/orders/{id}`: an order — its lines, its steps (who, when, how much, note) and the
//!   step forms of the caller's side (`/manage/orders/{id}/step`).
//! - `/manage/providers/{id}`: a provider — contact (masked), served nodes, the accounts that
//!   speak for it and the form to link one.
//! - `/manage/provider` (the provider's own portal): its offers with edit and withdraw forms,
//!   the form to publish one, and the orders placed with it to confirm and deliver.
//!
//! Forms work without JavaScript; every step goes through `anxin_store::supplies::providers`,
//! which checks the side and the scope.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_store::supplies::providers::{
    self as pv, AccountLinkInput, Offer, OfferInput, OfferQuery, Order, OrderInput, OrderQuery,
    OrderStepInput, ProviderInput, Step, ORDER_STATES,
};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{int, text, uuid, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let o = Serves::Records("supply_orders");
    let p = Serves::Records("providers");
    Table::new()
        .route(
            "/manage/orders",
            &["GET", "POST"],
            o,
            get(orders_page).post(place),
        )
        .route("/manage/orders/{id}", &["GET"], o, get(order_page))
        .route("/manage/orders/{id}/step", &["POST"], o, post(step))
        .route("/manage/providers", &["POST"], p, post(register))
        .route("/manage/providers/{id}", &["GET"], p, get(provider_page))
        .route("/manage/providers/{id}/accounts", &["POST"], p, post(link))
        // The provider's own portal: what it shows is the caller's own provider.
        .route(
            "/manage/provider",
            &["GET", "POST"],
            Serves::Own,
            get(portal).post(publish),
        )
        .route(
            "/manage/provider/offers/{id}",
            &["POST"],
            Serves::Records("supply_offers"),
            post(offer_change),
        )
}

fn en(ui: &Ui) -> bool {
    ui.lang == i18n::Lang::En
}

use crate::web::forms::local_minute as local;

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

fn state_label(ui: &Ui, code: &str) -> String {
    ORDER_STATES.iter().find(|(c, ..)| *c == code).map_or_else(
        || code.to_owned(),
        |(_, zh, e)| {
            if en(ui) {
                (*e).to_owned()
            } else {
                (*zh).to_owned()
            }
        },
    )
}

use crate::web::forms::{error_field as field_of, error_with_field as error_text};

/// A step refused to this side (`order.wrong_side`, 403) is shown on the form too.
fn form_error(e: &ApiError) -> bool {
    crate::web::forms::shown_on_form(e) || e.status == StatusCode::FORBIDDEN
}

/// After a form's write: `Ok` with the way on (to the address `to` gives, or the error page);
/// `Err` with an error that belongs on the form, for the caller to show its page again.
fn after_write<T>(
    ui: &Ui,
    r: Result<T, anxin_store::StoreError>,
    to: impl FnOnce(T) -> String,
) -> Result<Response, ApiError> {
    match r {
        Ok(v) => Ok(see_other(&to(v))),
        Err(e) => {
            let e = ApiError::from(e);
            if form_error(&e) {
                Err(e)
            } else {
                Ok(error_page(ui, &e))
            }
        }
    }
}

fn offer_row(ui: &Ui, o: &Offer) -> Json {
    json!({
        "id": o.id, "provider": o.provider_name, "provider_id": o.provider_id,
        "item": o.item_name, "item_code": o.item_code, "unit": o.item_unit,
        "quantity": o.quantity_available, "price": yuan(o.unit_price_fen),
        "price_fen": o.unit_price_fen, "lead": o.lead_time_hours,
        "valid_until": o.valid_until.to_string(), "expired": o.expired, "note": o.note,
        "status": o.status,
        "status_text": if o.status == "active" { i18n::t(ui.lang, "prov.offer_active") } else { i18n::t(ui.lang, "prov.offer_withdrawn") },
    })
}

fn order_row(ui: &Ui, o: &Order) -> Json {
    json!({
        "id": o.id, "provider": o.provider_name, "node": o.node_name, "depot": o.depot_name,
        "item": o.item_name, "unit": o.item_unit, "quantity": o.quantity,
        "delivered": o.delivered_quantity, "received": o.received_quantity,
        "price": yuan(o.unit_price_fen), "total": yuan(o.total_fen),
        "wanted_by": o.wanted_by.to_string(), "status": o.status,
        "status_text": state_label(ui, &o.status), "note": o.note,
        "created": local(o.created_at),
    })
}

fn err_ctx(
    ui: &Ui,
    error: Option<&ApiError>,
) -> (Option<String>, Option<&'static str>, Option<String>) {
    (
        error.map(|e| error_text(ui, e)),
        error.map(|e| e.code),
        error.map(field_of),
    )
}

// ---- the community's page ----------------------------------------------------------------------

async fn orders_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    page_orders(&ui, &app, &s, None, &Fields::new()).await
}

async fn page_orders(
    ui: &Ui,
    app: &App,
    s: &Staff,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let offers = pv::list_offers(c, &caller, &OfferQuery::default(), now)?;
            let orders = pv::list_orders(c, &caller, &OrderQuery::default())?;
            let providers = pv::list_providers(c, &caller)?;
            let depots = pv::depot_options(c, &caller)?;
            let nodes = pv::node_options(c, &caller)?;
            Ok((offers, orders, providers, depots, nodes))
        })
        .await;
    let (offers, orders, providers, depots, nodes) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let offers: Vec<Json> = offers.iter().map(|o| offer_row(ui, o)).collect();
    let orders: Vec<Json> = orders.iter().map(|o| order_row(ui, o)).collect();
    let providers: Vec<Json> = providers
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "name": p.name, "credit_code": p.credit_code, "node": p.node_name,
                "served": p.served.iter().map(|n| n.name.clone()).collect::<Vec<_>>().join("、"),
                "status": p.status,
            })
        })
        .collect();
    let depots: Vec<Json> = depots
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let nodes: Vec<Json> = nodes
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let (error, error_code, error_field) = err_ctx(ui, error);
    render(
        ui,
        status,
        "orders.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            offers => minijinja::Value::from_serialize(&offers),
            orders => minijinja::Value::from_serialize(&orders),
            providers => minijinja::Value::from_serialize(&providers),
            depots => minijinja::Value::from_serialize(&depots),
            nodes => minijinja::Value::from_serialize(&nodes),
            error, error_code, error_field,
            form => values.get("_form").cloned().unwrap_or_default(),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

fn order_input(f: &Fields) -> Result<OrderInput, ApiError> {
    Ok(OrderInput {
        offer_id: uuid(f, "offer_id")?,
        depot_id: uuid(f, "depot_id")?,
        quantity: int(f, "quantity")?,
        wanted_by: text(f, "wanted_by"),
        note: f.get("note").cloned(),
    })
}

async fn place(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(mut f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    f.insert("_form".into(), "order".into());
    let input = match order_input(&f) {
        Ok(i) => i,
        Err(e) => return page_orders(&ui, &app, &s, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            pv::place_order(tx, &caller, &input)
        })
        .await;
    if let Ok(o) = &r {
        crate::supplies::notices::after_order(&app, o, None).await;
    }
    match after_write(&ui, r, |o| format!("/manage/orders/{}", o.id)) {
        Ok(done) => done,
        Err(e) => page_orders(&ui, &app, &s, Some(&e), &f).await,
    }
}

async fn register(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(mut f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    f.insert("_form".into(), "provider".into());
    let input = match (uuid(&f, "node_id"), uuid(&f, "served_node_id")) {
        (Ok(node), Ok(served)) => ProviderInput {
            node_id: node,
            name: text(&f, "name"),
            credit_code: text(&f, "credit_code"),
            contact_name: text(&f, "contact_name"),
            contact_phone: text(&f, "contact_phone"),
            address: text(&f, "address"),
            served_node_ids: Some(served.or(node).into_iter().collect()),
            status: None,
        },
        (Err(e), _) | (_, Err(e)) => return page_orders(&ui, &app, &s, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            pv::create_provider(tx, &caller, &input)
        })
        .await;
    match after_write(&ui, r, |p| format!("/manage/providers/{}", p.id)) {
        Ok(done) => done,
        Err(e) => page_orders(&ui, &app, &s, Some(&e), &f).await,
    }
}

// ---- an order ----------------------------------------------------------------------------------

async fn order_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    page_order(&ui, &app, &s, id, None).await
}

async fn page_order(ui: &Ui, app: &App, s: &Staff, id: Uuid, error: Option<&ApiError>) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let o = pv::get_order(c, &caller, id)?;
            let provider_side = pv::own_providers(c, &caller)?.contains(&o.provider_id);
            let community_side = pv::manages(c, &caller, o.node_id)?;
            Ok((o, provider_side, community_side))
        })
        .await;
    let (o, provider_side, community_side) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let s_ = o.status.as_str();
    let waiting = o.delivered_quantity - o.received_quantity;
    // The steps the caller's side may take now.
    let mut steps: Vec<&str> = Vec::new();
    if provider_side {
        if s_ == "placed" {
            steps.extend(["confirm", "decline"]);
        }
        if matches!(s_, "confirmed" | "partially_delivered") {
            steps.push("deliver");
        }
    }
    if community_side {
        if s_ == "placed" {
            steps.push("cancel");
        }
        if matches!(s_, "partially_delivered" | "delivered") && waiting > 0 {
            steps.push("receive");
        }
        if s_ == "received" || (s_ == "partially_delivered" && waiting == 0) {
            steps.push("close");
        }
    }
    let events: Vec<Json> = o
        .events
        .iter()
        .map(|e| {
            json!({
                "at": local(e.at), "action": i18n::t(ui.lang, &format!("prov.step.{}", e.action)),
                "quantity": e.quantity, "note": e.note, "by": e.actor_username,
            })
        })
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let (error, error_code, error_field) = err_ctx(ui, error);
    render(
        ui,
        status,
        "order.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            o => minijinja::Value::from_serialize(order_row(ui, &o)),
            events => minijinja::Value::from_serialize(&events),
            steps => minijinja::Value::from_serialize(&steps),
            left => o.quantity - o.delivered_quantity,
            waiting,
            provider_side, community_side,
            error, error_code, error_field,
        },
    )
}

async fn step(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let which = match text(&f, "step").as_deref() {
        Some("confirm") => Step::Confirm,
        Some("decline") => Step::Decline,
        Some("deliver") => Step::Deliver,
        Some("cancel") => Step::Cancel,
        Some("receive") => Step::Receive,
        Some("close") => Step::Close,
        _ => {
            let e = ApiError::invalid("value.invalid", "step", "unknown step");
            return page_order(&ui, &app, &s, id, Some(&e)).await;
        }
    };
    let quantity = match int(&f, "quantity") {
        Ok(q) => q,
        Err(e) => return page_order(&ui, &app, &s, id, Some(&e)).await,
    };
    let input = OrderStepInput {
        note: text(&f, "note"),
        quantity: quantity.filter(|_| matches!(which, Step::Deliver | Step::Receive)),
        expires_on: text(&f, "expires_on").filter(|_| which == Step::Receive),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            pv::step(tx, &caller, id, which, &input)
        })
        .await;
    if let Ok(o) = &r {
        crate::supplies::notices::after_order(&app, o, Some(which)).await;
    }
    match after_write(&ui, r, |_| format!("/manage/orders/{id}")) {
        Ok(done) => done,
        Err(e) => page_order(&ui, &app, &s, id, Some(&e)).await,
    }
}

// ---- a provider --------------------------------------------------------------------------------

async fn provider_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    page_provider(&ui, &app, &s, id, None).await
}

async fn page_provider(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let p = pv::get_provider(c, &caller, id)?;
            let accounts = pv::provider_accounts(c, &caller, id)?;
            let offers = pv::list_offers(
                c,
                &caller,
                &OfferQuery {
                    provider_id: Some(id),
                    ..OfferQuery::default()
                },
                now,
            )?;
            let can_manage = pv::manages(c, &caller, p.node_id)?;
            Ok((p, accounts, offers, can_manage))
        })
        .await;
    let (p, accounts, offers, can_manage) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let offers: Vec<Json> = offers.iter().map(|o| offer_row(ui, o)).collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let (error, error_code, error_field) = err_ctx(ui, error);
    render(
        ui,
        status,
        "provider.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            p => minijinja::Value::from_serialize(&p),
            accounts => minijinja::Value::from_serialize(&accounts),
            offers => minijinja::Value::from_serialize(&offers),
            can_manage,
            error, error_code, error_field,
        },
    )
}

async fn link(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = AccountLinkInput {
        account_id: None,
        username: text(&f, "username"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            pv::link_account(tx, &caller, id, &input)
        })
        .await;
    match after_write(&ui, r, |_| format!("/manage/providers/{id}")) {
        Ok(done) => done,
        Err(e) => page_provider(&ui, &app, &s, id, Some(&e)).await,
    }
}

// ---- the provider's portal ---------------------------------------------------------------------

async fn portal(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    page_portal(&ui, &app, &s, None, &Fields::new()).await
}

async fn page_portal(
    ui: &Ui,
    app: &App,
    s: &Staff,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let own = pv::own_providers(c, &caller)?;
            let provider = match own.first() {
                Some(id) => Some(pv::get_provider(c, &caller, *id)?),
                None => None,
            };
            let offers = pv::list_offers(
                c,
                &caller,
                &OfferQuery {
                    status: Some("all".into()),
                    ..OfferQuery::default()
                },
                now,
            )?;
            let orders = pv::list_orders(c, &caller, &OrderQuery::default())?;
            Ok((provider, offers, orders))
        })
        .await;
    let (provider, offers, orders) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    // Without a provider of its own the portal shows nothing (staff see their offers and
    // orders at /manage/orders).
    let (offers, orders): (Vec<Json>, Vec<Json>) = if provider.is_some() {
        (
            offers.iter().map(|o| offer_row(ui, o)).collect(),
            orders.iter().map(|o| order_row(ui, o)).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let (error, error_code, error_field) = err_ctx(ui, error);
    render(
        ui,
        status,
        "provider_portal.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            provider => provider.as_ref().map(minijinja::Value::from_serialize),
            offers => minijinja::Value::from_serialize(&offers),
            orders => minijinja::Value::from_serialize(&orders),
            items => minijinja::Value::from_serialize(json!([
                {"code": "mask"}, {"code": "water"}, {"code": "noodles"}, {"code": "biscuits"},
                {"code": "blanket"}, {"code": "tent"}, {"code": "first_aid"}, {"code": "raincoat"},
                {"code": "sandbag"}, {"code": "disinfectant"}, {"code": "flashlight"}, {"code": "batteries"}
            ])),
            error, error_code, error_field,
            values => minijinja::Value::from_serialize(values),
        },
    )
}

fn offer_input(f: &Fields) -> Result<OfferInput, ApiError> {
    Ok(OfferInput {
        item_id: None,
        item_code: text(f, "item_code"),
        quantity_available: int(f, "quantity_available")?,
        unit_price_fen: yuan_to_fen(f, "unit_price")?,
        lead_time_hours: int(f, "lead_time_hours")?,
        valid_until: text(f, "valid_until"),
        note: f.get("note").cloned(),
    })
}

/// A price in yuan as typed (`1.5`, `12`, `0.05`) in fen.
fn yuan_to_fen(f: &Fields, k: &str) -> Result<Option<i64>, ApiError> {
    let Some(s) = text(f, k) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("value.invalid", k, "not a price");
    let (whole, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return Err(bad());
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fr: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    if w < 0 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    w.checked_mul(100)
        .and_then(|x| x.checked_add(fr))
        .map(Some)
        .ok_or_else(bad)
}

async fn publish(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match offer_input(&f) {
        Ok(i) => i,
        Err(e) => return page_portal(&ui, &app, &s, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            pv::create_offer(tx, &caller, &input)
        })
        .await;
    match after_write(&ui, r, |_| "/manage/provider".to_owned()) {
        Ok(done) => done,
        Err(e) => page_portal(&ui, &app, &s, Some(&e), &f).await,
    }
}

/// Edit (quantity, price, lead time, last day, note) or withdraw (`action=withdraw`) an offer.
async fn offer_change(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let withdraw = text(&f, "action").as_deref() == Some("withdraw");
    let patch = match offer_input(&f) {
        Ok(mut p) => {
            p.item_code = None;
            p
        }
        Err(e) => return page_portal(&ui, &app, &s, Some(&e), &HashMap::new()).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            if withdraw {
                pv::withdraw_offer(tx, &caller, id)
            } else {
                pv::edit_offer(tx, &caller, id, &patch)
            }
        })
        .await;
    match after_write(&ui, r, |_| "/manage/provider".to_owned()) {
        Ok(done) => done,
        Err(e) => page_portal(&ui, &app, &s, Some(&e), &HashMap::new()).await,
    }
}
