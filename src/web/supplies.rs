//! Pages for reserves and dispatch (owner: reserves & dispatch).
//!
//! - `/manage/supplies`: the depots in reach with their balances per item, the lots expiring
//!   within `supplies.expiry_warn_days`, links to the gap report of each node the caller holds.
//! - `/manage/supplies/depots/{id}`: a depot — balances, lots (first to expire first), the
//!   ledger (newest first, paged) and the movement form (receive, issue, transfer, adjust,
//!   write-off); works without JavaScript.
//! - `/manage/supplies/gaps/{id}`: the gap report of a node (per community and item: residents,
//!   norm, need, balance, gap, surplus) and `/manage/supplies/gaps/{id}.csv` the same as CSV.
//! - `/manage/dispatch`: the dispatch plans and the form to propose one for a street or
//!   district; `/manage/dispatch/{id}`: a plan's transfers and the button that executes it.
//!
//! Every step goes through `anxin_store::supplies`, which checks permission and scope.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_store::supplies::dispatch::{self, PlanInput};
use anxin_store::supplies::reserves::{self, MovementInput};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{text, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

const PAGE: i64 = 30;

pub fn routes() -> Table {
    let depots = Serves::Records("facilities");
    let plans = Serves::Records("dispatch_plans");
    Table::new()
        .route("/manage/supplies", &["GET"], depots, get(home))
        .route(
            "/manage/supplies/depots/{id}",
            &["GET", "POST"],
            depots,
            get(depot_page).post(depot_post),
        )
        .route(
            "/manage/supplies/gaps/{id}",
            &["GET"],
            Serves::Records("nodes"),
            get(gaps_page),
        )
        .route(
            "/manage/dispatch",
            &["GET", "POST"],
            plans,
            get(plans_page).post(plan_propose),
        )
        .route("/manage/dispatch/{id}", &["GET"], plans, get(plan_page))
        .route(
            "/manage/dispatch/{id}/execute",
            &["POST"],
            plans,
            post(plan_execute),
        )
}

use crate::web::forms::local_minute as local;

use crate::web::forms::{
    error_field as field_of, error_with_field as error_text, shown_on_form as form_error,
};

fn uuid(f: &Fields, k: &str) -> Result<Option<Uuid>, ApiError> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse::<Uuid>().map(Some).map_err(|_| {
            ApiError::invalid("value.invalid", k, format!("{k} is not a valid value"))
        }),
    }
}

fn kind_label(ui: &Ui, kind: &str) -> String {
    i18n::t(ui.lang, &format!("stock.kind.{kind}"))
}

/// Nodes the caller holds a supplies grant on (for the gap report links and the plan form).
fn grant_nodes(s: &Staff) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = s
        .caller()
        .reach(anxin_domain::Permission::ReadSupplies)
        .nodes;
    out.dedup();
    out
}

// ---- home --------------------------------------------------------------------------------------

/// The supplies pages are for staff who read supplies somewhere (not, say, a provider).
fn may_read(ui: &Ui, s: &Staff) -> Option<Response> {
    (!s.caller().has(anxin_domain::Permission::ReadSupplies)).then(|| {
        error_page(
            ui,
            &ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                "supplies are not in your grants",
            ),
        )
    })
}

async fn home(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    if let Some(r) = may_read(&ui, &s) {
        return r;
    }
    let caller = s.caller().clone();
    let days = app.config.supplies.expiry_warn_days;
    let until = app.clock.local_now().date_naive() + chrono::Days::new(days.max(0) as u64);
    let nodes = grant_nodes(&s);
    let got = app
        .store
        .read(move |c, _| {
            let depots = reserves::list_depots(c, &caller, None)?;
            let lots = reserves::expiring(c, &caller, until, None)?;
            let mut named = Vec::new();
            for n in nodes {
                if let Some(r) = c.query_one(
                    "SELECT name, level FROM nodes WHERE id = $1",
                    &anxin_store::params![n],
                )? {
                    let name: String = r.get("name")?;
                    let level: String = r.get("level")?;
                    named.push(json!({ "id": n, "name": name, "level": level }));
                }
            }
            Ok((depots, lots, named))
        })
        .await;
    let (depots, lots, nodes) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    render(
        &ui,
        StatusCode::OK,
        "stock.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            depots => minijinja::Value::from_serialize(&depots),
            lots => minijinja::Value::from_serialize(&lots),
            nodes => minijinja::Value::from_serialize(&nodes),
            days => days,
        },
    )
}

// ---- a depot -----------------------------------------------------------------------------------

async fn depot_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = staff!(ui, s);
    let offset = q
        .get("offset")
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(0, 10_000_000);
    page_depot(&ui, &app, &s, id, offset, None, &Fields::new()).await
}

async fn page_depot(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    offset: i64,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let depot = reserves::get_depot(c, &caller, id)?;
            let lots = reserves::depot_lots(c, &caller, id)?;
            let (moves, total) = reserves::ledger(c, &caller, id, PAGE, offset)?;
            let items = reserves::list_items(c, &caller)?;
            let can_write = caller
                .reach(anxin_domain::Permission::ManageSupplies)
                .contains_node(c, depot.node_id)?;
            let others = if can_write {
                reserves::list_depots(c, &caller, None)?
                    .into_iter()
                    .filter(|d| d.id != id)
                    .map(
                        |d| json!({ "id": d.id, "name": format!("{}（{}）", d.name, d.node_name) }),
                    )
                    .collect()
            } else {
                Vec::new()
            };
            Ok((depot, lots, moves, total, items, can_write, others))
        })
        .await;
    let (depot, lots, moves, total, items, can_write, others) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let moves: Vec<Json> = moves
        .iter()
        .map(|m| {
            json!({
                "at": local(m.at), "kind": kind_label(ui, &m.kind), "item": m.item_name,
                "unit": m.unit, "quantity": m.quantity,
                "expires": m.lot_expires_on.map(|d| d.to_string()),
                "reference": m.reference_kind.as_deref().map(|k| kind_label(ui, &format!("ref.{k}"))),
                "note": m.note,
            })
        })
        .collect();
    let kinds: Vec<Json> = ["receive", "issue", "transfer", "adjust", "write_off"]
        .iter()
        .map(|k| json!({ "value": k, "label": kind_label(ui, k) }))
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "stock_depot.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            depot => minijinja::Value::from_serialize(&depot),
            lots => minijinja::Value::from_serialize(&lots),
            moves => minijinja::Value::from_serialize(&moves),
            total => total,
            offset => offset,
            prev => (offset > 0).then(|| (offset - PAGE).max(0)),
            next => (offset + PAGE < total).then_some(offset + PAGE),
            items => minijinja::Value::from_serialize(&items),
            kinds => minijinja::Value::from_serialize(&kinds),
            others => minijinja::Value::from_serialize(&others),
            can_write => can_write,
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

fn movement_input(f: &Fields) -> Result<MovementInput, ApiError> {
    Ok(MovementInput {
        kind: text(f, "kind"),
        item_id: uuid(f, "item_id")?,
        lot_id: uuid(f, "lot_id")?,
        quantity: crate::web::forms::int(f, "quantity")?,
        expires_on: text(f, "expires_on"),
        to_depot_id: uuid(f, "to_depot_id")?,
        note: text(f, "note"),
    })
}

async fn depot_post(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match movement_input(&f) {
        Ok(i) => i,
        Err(e) => return page_depot(&ui, &app, &s, id, 0, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            reserves::post_checked(tx, &caller, id, &input)
        })
        .await;
    match r {
        Ok(_) => see_other(&format!("/manage/supplies/depots/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_depot(&ui, &app, &s, id, 0, Some(&e), &f).await
        }
    }
}

// ---- the gap report ----------------------------------------------------------------------------

async fn gaps_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(raw): Path<String>,
) -> Response {
    let s = staff!(ui, s);
    let (id, csv) = match raw.strip_suffix(".csv") {
        Some(x) => (x, true),
        None => (raw.as_str(), false),
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return error_page(&ui, &ApiError::from(anxin_store::StoreError::NotFound));
    };
    let caller = s.caller().clone();
    let defaults = app.config.supplies.default_norms.clone();
    let rep = match app
        .store
        .read(move |c, _| reserves::gap_report(c, &caller, id, &defaults))
        .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    if csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let head = [
            "stock.community",
            "stock.residents",
            "stock.item",
            "stock.unit",
            "stock.norm",
            "stock.need",
            "stock.balance",
            "stock.gap",
            "stock.surplus",
        ];
        let _ = w.write_record(head.iter().map(|k| i18n::t(ui.lang, k)));
        for l in &rep.lines {
            let _ = w.write_record([
                l.community_name.clone(),
                l.residents.to_string(),
                l.item_name.clone(),
                l.unit.clone(),
                l.per_thousand.to_string(),
                l.need.to_string(),
                l.balance.to_string(),
                l.gap.to_string(),
                l.surplus.to_string(),
            ]);
        }
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend(w.into_inner().unwrap_or_default());
        let mut resp = (StatusCode::OK, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        resp.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"stock-gaps.csv\""),
        );
        return resp;
    }
    render(
        &ui,
        StatusCode::OK,
        "stock_gaps.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            report => minijinja::Value::from_serialize(&rep),
        },
    )
}

// ---- dispatch ----------------------------------------------------------------------------------

async fn plans_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    if let Some(r) = may_read(&ui, &s) {
        return r;
    }
    page_plans(&ui, &app, &s, None).await
}

async fn page_plans(ui: &Ui, app: &App, s: &Staff, error: Option<&ApiError>) -> Response {
    let caller = s.caller().clone();
    let nodes = s
        .caller()
        .reach(anxin_domain::Permission::ManageSupplies)
        .nodes;
    let got = app
        .store
        .read(move |c, _| {
            let plans = dispatch::list(c, &caller, 50)?;
            let mut named = Vec::new();
            for n in nodes {
                if let Some(r) = c.query_one(
                    "SELECT name, level FROM nodes WHERE id = $1 AND level IN ('street', 'district', 'city')",
                    &anxin_store::params![n],
                )? {
                    let name: String = r.get("name")?;
                    named.push(json!({ "id": n, "name": name }));
                }
            }
            Ok((plans, named))
        })
        .await;
    let (plans, nodes) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = plans
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "node": p.node_name, "status": i18n::t(ui.lang, &format!("dispatch.status.{}", p.status)),
                "quantity": p.total_quantity, "need": p.total_need, "cost_km": format!("{:.1}", p.cost_km),
                "at": local(p.created_at),
            })
        })
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "dispatch.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            plans => minijinja::Value::from_serialize(&rows),
            nodes => minijinja::Value::from_serialize(&nodes),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
        },
    )
}

async fn plan_propose(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match uuid(&f, "node_id") {
        Ok(n) => PlanInput { node_id: n },
        Err(e) => return page_plans(&ui, &app, &s, Some(&e)).await,
    };
    let Some(node) = input.node_id else {
        let e = ApiError::invalid("value.required", "node_id", "node_id is required");
        return page_plans(&ui, &app, &s, Some(&e)).await;
    };
    let caller = s.caller().clone();
    let defaults = app.config.supplies.default_norms.clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            dispatch::propose(tx, &caller, node, &defaults)
        })
        .await;
    match r {
        Ok(p) => see_other(&format!("/manage/dispatch/{}", p.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_plans(&ui, &app, &s, Some(&e)).await
        }
    }
}

async fn plan_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    page_plan(&ui, &app, &s, id, None).await
}

async fn page_plan(ui: &Ui, app: &App, s: &Staff, id: Uuid, error: Option<&ApiError>) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let p = dispatch::get(c, &caller, id)?;
            let can = caller
                .reach(anxin_domain::Permission::ManageSupplies)
                .contains_node(c, p.node_id)?;
            Ok((p, can))
        })
        .await;
    let (plan, can_execute) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let status_text = i18n::t(ui.lang, &format!("dispatch.status.{}", plan.status));
    render(
        ui,
        status,
        "dispatch_plan.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            plan => minijinja::Value::from_serialize(&plan),
            status_text => status_text,
            cost_km => format!("{:.1}", plan.cost_km),
            created => local(plan.created_at),
            executed => plan.executed_at.map(local),
            can_execute => can_execute && plan.status == "proposed",
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
        },
    )
}

async fn plan_execute(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| dispatch::execute(tx, &caller, id))
        .await;
    match r {
        Ok(_) => see_other(&format!("/manage/dispatch/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_plan(&ui, &app, &s, id, Some(&e)).await
        }
    }
}
