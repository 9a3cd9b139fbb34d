//! Pages for distribution campaigns (物资发放) (owner: campaigns): the workers' list and configure
//! form, a campaign's page (counts per slot, delivery orders, open/close/cancel/draw), the
//! redeem page (a phone page: type or scan the code, a big ✔ or ✘ with when and by whom it was
//! used); on the resident end the open campaigns with a reserve form and the pickup code as a QR
//! code, and the volunteer's delivery orders.
//!
//! Every rule is in `anxin_store::supplies::campaigns`; reservations go through the same path as
//! the API (`crate::http::campaigns::do_reserve`, the rush). Forms post with `_csrf` and work
//! without script.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use minijinja::context;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::SHANGHAI;
use anxin_store::supplies::campaigns::{
    self as sc, Campaign, CampaignInput, CampaignQuery, CampaignRedeemInput,
    CampaignReservationQuery, CampaignSlot, DeliveryDoneInput, SlotInput,
};

use crate::app::App;
use crate::http::campaigns::{do_redeem, do_reserve, ReserveInput};
use crate::http::guard::{AuthError, Authenticated, Resident, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, Fields};
use crate::web::{error_page, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let c = Serves::Records("campaigns");
    Table::new()
        .route(
            "/manage/campaigns",
            &["GET", "POST"],
            c,
            get(list_page).post(create),
        )
        .route("/manage/campaigns/{id}", &["GET"], c, get(campaign_page))
        .route("/manage/campaigns/{id}/open", &["POST"], c, post(open))
        .route("/manage/campaigns/{id}/close", &["POST"], c, post(close))
        .route("/manage/campaigns/{id}/cancel", &["POST"], c, post(cancel))
        .route("/manage/campaigns/{id}/draw", &["POST"], c, post(draw))
        .route(
            "/manage/campaigns/{id}/redeem",
            &["GET", "POST"],
            c,
            get(redeem_page).post(redeem),
        )
        .route(
            "/resident/supplies",
            &["GET"],
            Serves::Own,
            get(resident_page),
        )
        .route(
            "/resident/supplies/{id}/reserve",
            &["POST"],
            Serves::Own,
            post(resident_reserve),
        )
        .route(
            "/resident/deliveries",
            &["GET"],
            Serves::Own,
            get(deliveries_page),
        )
        .route(
            "/resident/deliveries/{id}/delivered",
            &["POST"],
            Serves::Own,
            post(delivered),
        )
}

macro_rules! guarded {
    ($ui:expr, $s:expr) => {
        match $s {
            Ok(s) => s,
            Err(e) => return refused(&$ui, e),
        }
    };
}

/// Asia/Shanghai, to the minute.
use crate::web::forms::local_minute as local;

/// `2026-11-02T18:00` (Asia/Shanghai, as `datetime-local` sends it) as an instant.
fn local_input(raw: &str) -> Option<DateTime<Utc>> {
    let t = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M"))
        .ok()?;
    SHANGHAI
        .from_local_datetime(&t)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn t(ui: &Ui, k: &str) -> String {
    i18n::t(ui.lang, k)
}

fn form_error(ui: &Ui, e: &ApiError) -> serde_json::Value {
    let field = e
        .details
        .get("field")
        .and_then(|f| f.as_str())
        .unwrap_or("");
    json!({
        "code": e.code,
        "field": field,
        "text": i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned),
    })
}

fn field_error(code: &'static str, field: &str) -> ApiError {
    ApiError::invalid(code, field, format!("invalid {field}"))
}

fn campaign_ctx(ui: &Ui, c: &Campaign) -> serde_json::Value {
    json!({
        "id": c.id,
        "title": c.title,
        "node": c.node_name,
        "item": if c.item_name.is_empty() { c.item_code.clone() } else { c.item_name.clone() },
        "unit": c.item_unit,
        "qty": c.quantity_per_household,
        "fulfilment": t(ui, &format!("camp.fulfilment.{}", c.fulfilment)),
        "mode": t(ui, &format!("camp.mode.{}", c.mode)),
        "is_lottery": c.mode == "lottery",
        "eligibility": t(ui, &format!("camp.eligibility.{}", c.eligibility)),
        "status": c.status,
        "status_text": t(ui, &format!("camp.status.{}", c.status)),
        "stock": c.stock,
        "reserved": c.reserved,
        "remaining": c.remaining,
        "draw_at": c.draw_at.map(local),
        "drawn_at": c.drawn_at.map(local),
        "seed": c.lottery_seed,
        "opened_at": c.opened_at.map(local),
        "closed_at": c.closed_at.map(local),
        "incident_id": c.incident_id,
        "note": c.note,
    })
}

fn slot_ctx(s: &CampaignSlot) -> serde_json::Value {
    json!({
        "id": s.id,
        "place": s.place,
        "starts": local(s.starts_at),
        "ends": local(s.ends_at),
        "capacity": s.capacity,
        "reserved": s.reserved,
        "redeemed": s.redeemed,
        "remaining": s.remaining,
    })
}

// ---- the workers' pages -----------------------------------------------------------------------

async fn list_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = guarded!(ui, s);
    list_view(&ui, &app, &s.0, None, &Fields::new()).await
}

async fn list_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                sc::list(c, &caller, &CampaignQuery::default())?,
                sc::campaign_nodes(c, &caller)?,
            ))
        })
        .await;
    let (rows, nodes) = match got {
        Ok(g) => g,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = rows.iter().map(|c| campaign_ctx(ui, c)).collect();
    let nodes: Vec<_> = nodes
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let now = app.clock.now();
    let v = |k: &str, d: String| values.get(k).cloned().unwrap_or(d);
    let form = json!({
        "node_id": v("node_id", String::new()),
        "title": v("title", t(ui, "camp.default_title")),
        "item_code": v("item_code", "mask".into()),
        "stock": v("stock", String::new()),
        "qty": v("quantity_per_household", "1".into()),
        "fulfilment": v("fulfilment", "pickup".into()),
        "mode": v("mode", "fcfs".into()),
        "eligibility": v("eligibility", "all".into()),
        "draw_at": v("draw_at", String::new()),
        "place_label": v("place_label", t(ui, "camp.default_place")),
        "starts_at": v("starts_at", now.with_timezone(&SHANGHAI).format("%Y-%m-%dT%H:%M").to_string()),
        "ends_at": v("ends_at", (now + chrono::Duration::hours(8)).with_timezone(&SHANGHAI).format("%Y-%m-%dT%H:%M").to_string()),
        "capacity": v("capacity", String::new()),
    });
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "campaigns.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => rows,
            nodes => nodes,
            form => form,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

fn parse_input(f: &Fields) -> Result<CampaignInput, ApiError> {
    let need_int = |k: &str| -> Result<i64, ApiError> {
        forms::int(f, k)?.ok_or_else(|| field_error("value.required", k))
    };
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        forms::text(f, k)
            .map(|v| local_input(&v).ok_or_else(|| field_error("value.invalid", k)))
            .transpose()
    };
    let node_id =
        forms::uuid(f, "node_id")?.ok_or_else(|| field_error("value.required", "node_id"))?;
    let fulfilment = forms::text(f, "fulfilment").unwrap_or_else(|| "pickup".into());
    let slots = if fulfilment == "pickup" {
        vec![SlotInput {
            facility_id: None,
            place_label: forms::text(f, "place_label"),
            starts_at: time("starts_at")?
                .ok_or_else(|| field_error("value.required", "slots[0].starts_at"))?,
            ends_at: time("ends_at")?
                .ok_or_else(|| field_error("value.required", "slots[0].ends_at"))?,
            capacity: need_int("capacity")?,
        }]
    } else {
        Vec::new()
    };
    Ok(CampaignInput {
        node_id,
        title: forms::text(f, "title").unwrap_or_default(),
        item_code: forms::text(f, "item_code").unwrap_or_default(),
        quantity_per_household: forms::int(f, "quantity_per_household")?,
        fulfilment: Some(fulfilment),
        eligibility: forms::text(f, "eligibility"),
        mode: forms::text(f, "mode"),
        draw_at: time("draw_at")?,
        stock: need_int("stock")?,
        compounds: Vec::new(),
        depot_id: None,
        note: forms::text(f, "note"),
        slots,
    })
}

async fn create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let input = match parse_input(&f) {
        Ok(i) => i,
        Err(e) => return list_view(&ui, &app, &s.0, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| sc::create(tx, &caller, &input))
        .await;
    match r {
        Ok(d) => see_other(&format!("/manage/campaigns/{}", d.campaign.id)),
        Err(e) => {
            let e = ApiError::from(e);
            list_view(&ui, &app, &s.0, Some(&e), &f).await
        }
    }
}

async fn campaign_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    campaign_view(&ui, &app, &s.0, id, None).await
}

async fn campaign_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                sc::detail(c, &caller, id)?,
                sc::reservations(
                    c,
                    &caller,
                    id,
                    &CampaignReservationQuery {
                        kind: Some("delivery".into()),
                        status: None,
                    },
                )?,
            ))
        })
        .await;
    let (d, orders) = match got {
        Ok(g) => g,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let c = &d.campaign;
    let orders: Vec<_> = orders
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "household": o.household_label,
                "status": t(ui, &format!("camp.res.{}", o.status)),
                "assignee": o.assignee_name.clone().unwrap_or_else(|| t(ui, "camp.unassigned")),
                "note": o.note,
                "delivered_at": o.delivered_at.map(local),
            })
        })
        .collect();
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "campaign.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            c => campaign_ctx(ui, c),
            slots => d.slots.iter().map(slot_ctx).collect::<Vec<_>>(),
            counts => minijinja::Value::from_serialize(&d.counts),
            deliveries_open => d.deliveries_open,
            deliveries_unassigned => d.deliveries_unassigned,
            orders => orders,
            can_open => c.status == "draft",
            can_close => c.status == "open",
            can_cancel => c.status == "draft" || c.status == "open",
            can_draw => c.status == "open" && c.mode == "lottery" && c.drawn_at.is_none(),
            can_redeem => c.status == "open" && c.fulfilment == "pickup",
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn act(ui: Ui, app: App, s: Staff, id: Uuid, what: &'static str) -> Response {
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| match what {
            "open" => sc::open(tx, &caller, id).map(drop),
            "close" => sc::close(tx, &caller, id).map(drop),
            "cancel" => sc::cancel(tx, &caller, id).map(drop),
            _ => sc::draw(tx, &caller, id).map(drop),
        })
        .await;
    match r {
        Ok(()) => {
            // Opening and drawing enqueued their notices job (the households, the
            // applicants): wake a worker.
            app.jobs.kick();
            see_other(&format!("/manage/campaigns/{id}"))
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            campaign_view(&ui, &app, &s.0, id, Some(&e)).await
        }
    }
}

async fn open(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    act(ui, app, s, id, "open").await
}

async fn close(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    act(ui, app, s, id, "close").await
}

async fn cancel(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    act(ui, app, s, id, "cancel").await
}

async fn draw(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    act(ui, app, s, id, "draw").await
}

async fn redeem_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    redeem_view(&ui, &app, &s.0, id, None, None).await
}

async fn redeem_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    result: Option<serde_json::Value>,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let c = match app.store.read(move |c, _| sc::get(c, &caller, id)).await {
        Ok(c) => c,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "campaign_redeem.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            c => campaign_ctx(ui, &c),
            result => result,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn redeem(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let input = CampaignRedeemInput {
        code: forms::text(&f, "code").unwrap_or_default(),
    };
    match do_redeem(&app, &s.0, id, input).await {
        Ok(r) => {
            let result = json!({
                "ok": true,
                "household": r.reservation.household_label,
                "qty": r.reservation.quantity,
                "place": r.slot.as_ref().map(|x| x.place.clone()),
                "when": r.slot.as_ref().map(|x| format!("{} – {}", local(x.starts_at), local(x.ends_at))),
                "on_behalf": r.reservation.on_behalf,
            });
            redeem_view(&ui, &app, &s.0, id, Some(result), None).await
        }
        Err(e) if e.code == "campaign.code_used" => {
            let at = e.details["redeemed_at"]
                .as_str()
                .and_then(|x| x.parse::<DateTime<Utc>>().ok())
                .map(local)
                .unwrap_or_default();
            let result = json!({
                "ok": false,
                "code": e.code,
                "reason": t(&ui, e.code),
                "used_at": at,
                "used_by": e.details["redeemed_by"].as_str().unwrap_or_default(),
            });
            let mut r = redeem_view(&ui, &app, &s.0, id, Some(result), None).await;
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&ui, &e),
        Err(e) => redeem_view(&ui, &app, &s.0, id, None, Some(&e)).await,
    }
}

// ---- the resident end -----------------------------------------------------------------------

async fn resident_page(ui: Ui, State(app): State<App>, r: Result<Resident, AuthError>) -> Response {
    let r = guarded!(ui, r);
    resident_view(&ui, &app, &r, None, None).await
}

async fn resident_view(
    ui: &Ui,
    app: &App,
    r: &Resident,
    error: Option<&ApiError>,
    error_campaign: Option<Uuid>,
) -> Response {
    let h = r.household_id();
    let list = match app
        .store
        .read(move |c, env| sc::resident_campaigns(c, env, h))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let cards: Vec<_> = list
        .iter()
        .map(|rc| {
            let mine = rc.mine.as_ref().map(|m| {
                json!({
                    "status": m.status,
                    "status_text": t(ui, &format!("camp.res.{}", m.status)),
                    "code": m.code,
                    "qr": (!m.code.is_empty()).then(|| crate::web::admin::qr_data_uri(&m.code)).flatten(),
                    "slot": rc.my_slot.as_ref().map(slot_ctx),
                })
            });
            json!({
                "c": campaign_ctx(ui, &rc.campaign),
                "slots": rc.slots.iter().filter(|s| s.remaining > 0).map(slot_ctx).collect::<Vec<_>>(),
                "mine": mine,
                "can_reserve": rc.mine.is_none() && rc.campaign.status == "open"
                    && (rc.campaign.mode == "lottery" || rc.campaign.remaining > 0),
                "error": (error_campaign == Some(rc.campaign.id)).then(|| error.map(|e| form_error(ui, e))).flatten(),
            })
        })
        .collect();
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "campaign_resident.html",
        context! {
            csrf => r.csrf(),
            cards => cards,
            error => error.filter(|_| error_campaign.is_none()).map(|e| form_error(ui, e)),
        },
    )
}

async fn resident_reserve(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let r = guarded!(ui, r);
    let slot_id = match forms::uuid(&f, "slot_id") {
        Ok(s) => s,
        Err(e) => return resident_view(&ui, &app, &r, Some(&e), Some(id)).await,
    };
    let input = ReserveInput {
        slot_id,
        household_id: None,
        on_behalf: None,
        request_key: forms::text(&f, "request_key"),
    };
    match do_reserve(&app, &r, id, input).await {
        Ok(_) => see_other(&format!("/resident/supplies#c-{id}")),
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&ui, &e),
        Err(e) => resident_view(&ui, &app, &r, Some(&e), Some(id)).await,
    }
}

async fn deliveries_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
) -> Response {
    let s = guarded!(ui, s);
    deliveries_view(&ui, &app, &s.0, None).await
}

async fn deliveries_view(ui: &Ui, app: &App, s: &Session, error: Option<&ApiError>) -> Response {
    let caller = s.caller().clone();
    let list = match app
        .store
        .read(move |c, _| sc::my_deliveries(c, &caller))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = list
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "campaign": o.campaign_title,
                "household": o.household_label,
                "qty": o.quantity,
                "open": o.status == "reserved",
                "status_text": t(ui, &format!("camp.res.{}", o.status)),
                "note": o.note,
                "delivered_at": o.delivered_at.map(local),
            })
        })
        .collect();
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "campaign_deliveries.html",
        context! {
            csrf => s.csrf().unwrap_or_default(),
            rows => rows,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn delivered(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let input = DeliveryDoneInput {
        note: forms::text(&f, "note"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            sc::mark_delivered(tx, &caller, id, &input)
        })
        .await;
    match r {
        Ok(_) => see_other("/resident/deliveries"),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            deliveries_view(&ui, &app, &s.0, Some(&e)).await
        }
    }
}
