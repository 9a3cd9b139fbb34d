//! Pages for the working-day calendar, the risk register and the risk map (owner: calendar &
//! risks).
//!
//! - `/manage/risks`: the register — the 5×5 matrix (counts per cell, coloured by level: 蓝 low,
//!   黄 medium, 橙 high, 红 extreme), filters (type, level, overdue review), the list, and the form
//!   to register a risk.
//! - `/manage/risks/{id}`: a risk — details, the edit form, the review form (scores now, note,
//!   next review) and its reviews and reminders.
//! - `/manage/risk-map`: Leaflet on the offline base (or the configured WGS-84 tiles) with two
//!   layers — risks from `/api/v1/risks.geojson` and hazards from `/api/v1/hazards.geojson` (a
//!   layer that is not there yet draws nothing) — coloured by level / grade and filtered without
//!   reload by `/manage/risk-map.js`; the same risks listed under the map for screen readers.
//! - `/manage/calendar`: the working-day calendar of a year as twelve month grids, holidays and
//!   调休 working days marked, with the add / remove forms (administrators).
//!
//! Every step goes through `anxin_store::hazards`, which checks permission and scope.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, Days, NaiveDate};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_domain::calendar::{is_weekend, WorkCalendar};
use anxin_store::hazards::calendar::{self, DayInput};
use anxin_store::hazards::risks::{
    self, Risk, RiskInput, RiskQuery, RiskReviewInput, LEVELS, RISK_TYPES,
};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{text, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

/// The risk map's script.
const MAP_JS: &str = include_str!("../../web/static/riskmap.js");

pub fn routes() -> Table {
    let r = Serves::Records("risks");
    Table::new()
        .route(
            "/manage/risks",
            &["GET", "POST"],
            r,
            get(list_page).post(create),
        )
        .route(
            "/manage/risks/{id}",
            &["GET", "POST"],
            r,
            get(show).post(edit),
        )
        .route("/manage/risks/{id}/reviews", &["POST"], r, post(review))
        .route("/manage/risk-map", &["GET"], r, get(map_page))
        .route("/manage/risk-map.js", &["GET"], Serves::Public, get(map_js))
        .route(
            "/manage/calendar",
            &["GET", "POST"],
            Serves::Admin,
            get(calendar_page).post(calendar_add),
        )
        .route(
            "/manage/calendar/remove",
            &["POST"],
            Serves::Admin,
            post(calendar_remove),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn en(ui: &Ui) -> bool {
    ui.lang == i18n::Lang::En
}

use crate::web::forms::local_minute as local;

/// The text colour on a level's colour (contrast at least 4.5:1).
pub fn level_ink(level: &str) -> &'static str {
    match level {
        "medium" | "high" => "#111",
        _ => "#fff",
    }
}

/// The colour of a level (蓝 黄 橙 红) as CSS.
pub fn level_colour(level: &str) -> &'static str {
    match level {
        "low" => "#2f6fb5",
        "medium" => "#e0b100",
        "high" => "#e06c00",
        _ => "#c0161b",
    }
}

fn type_label(ui: &Ui, code: &str) -> String {
    RISK_TYPES.iter().find(|(c, ..)| *c == code).map_or_else(
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

fn level_label(ui: &Ui, code: &str) -> String {
    LEVELS.iter().find(|(c, ..)| *c == code).map_or_else(
        || code.to_owned(),
        |(_, zh, e, _)| {
            if en(ui) {
                (*e).to_owned()
            } else {
                (*zh).to_owned()
            }
        },
    )
}

fn types(ui: &Ui) -> Vec<Json> {
    RISK_TYPES
        .iter()
        .map(|(c, ..)| json!({ "value": c, "label": type_label(ui, c) }))
        .collect()
}

fn levels(ui: &Ui) -> Vec<Json> {
    LEVELS
        .iter()
        .map(|(c, ..)| {
            json!({
                "value": c, "label": level_label(ui, c),
                "colour": level_colour(c), "ink": level_ink(c),
            })
        })
        .collect()
}

fn risk_row(ui: &Ui, r: &Risk) -> Json {
    json!({
        "id": r.id, "title": r.title, "node": r.node_name,
        "type": type_label(ui, &r.risk_type), "risk_type": r.risk_type,
        "likelihood": r.likelihood, "consequence": r.consequence, "score": r.score,
        "level": r.level, "level_text": level_label(ui, &r.level), "colour": level_colour(&r.level),
        "ink": level_ink(&r.level),
        "owner": r.owner_label, "next_review": r.next_review_on.to_string(),
        "overdue": r.review_overdue, "place": r.place_label,
        "status": r.status,
    })
}

use crate::web::forms::{
    error_field as field_of, error_with_field as error_text, shown_on_form as form_error,
};

fn int(f: &Fields, k: &str) -> Result<Option<i64>, ApiError> {
    crate::web::forms::int(f, k)
}

fn float(f: &Fields, k: &str) -> Result<Option<f64>, ApiError> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("value.invalid", k, format!("{k} is not a number"))),
    }
}

fn uuid(f: &Fields, k: &str) -> Result<Option<Uuid>, ApiError> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse::<Uuid>().map(Some).map_err(|_| {
            ApiError::invalid("value.invalid", k, format!("{k} is not a valid value"))
        }),
    }
}

/// A risk form's fields as the store's input (a patch leaves out what was not sent).
fn risk_input(f: &Fields) -> Result<RiskInput, ApiError> {
    Ok(RiskInput {
        node_id: uuid(f, "node_id")?,
        risk_type: text(f, "risk_type"),
        title: f.get("title").map(|s| s.trim().to_owned()),
        description: f.get("description").cloned(),
        likelihood: int(f, "likelihood")?,
        consequence: int(f, "consequence")?,
        controls: f.get("controls").cloned(),
        owner_user_id: uuid(f, "owner_user_id")?,
        lon: float(f, "lon")?,
        lat: float(f, "lat")?,
        place_label: f.get("place_label").cloned(),
        next_review_on: text(f, "next_review_on"),
        status: text(f, "status"),
    })
}

// ---- the register ------------------------------------------------------------------------------

fn query_of(q: &HashMap<String, String>) -> RiskQuery {
    let get = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    RiskQuery {
        node_id: get("node_id").and_then(|s| s.parse().ok()),
        risk_type: get("risk_type")
            .filter(|s| RISK_TYPES.iter().any(|(c, ..)| c == s))
            .map(str::to_owned),
        level: get("level")
            .filter(|s| LEVELS.iter().any(|(c, ..)| c == s))
            .map(str::to_owned),
        status: get("status")
            .filter(|s| matches!(*s, "active" | "retired"))
            .map(str::to_owned),
        overdue: get("overdue").map(|s| s == "1" || s == "true"),
    }
}

type Owners = Vec<(Uuid, String, Vec<(Uuid, String)>)>;

async fn list_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = staff!(ui, s);
    page_list(&ui, &app, &s, &q, None, &Fields::new()).await
}

async fn page_list(
    ui: &Ui,
    app: &App,
    s: &Staff,
    q: &HashMap<String, String>,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let filter = query_of(q);
    let got = app
        .store
        .read(move |c, _| {
            let list = risks::list(c, &caller, &filter, now)?;
            let nodes = risks::risk_nodes(c, &caller)?;
            let mut owners: Owners = Vec::new();
            for (id, name) in nodes.iter().take(20) {
                owners.push((*id, name.clone(), risks::owner_options(c, *id, now)?));
            }
            Ok((list, nodes, owners))
        })
        .await;
    let (list, nodes, owners) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let m = risks::matrix(&list);
    // Rows: likelihood 5 (top) to 1; columns: consequence 1 to 5.
    let matrix: Vec<Json> = (1..=5)
        .rev()
        .map(|l: i64| {
            let cells: Vec<Json> = (1..=5)
                .map(|c: i64| {
                    let level = risks::level_of(l * c);
                    json!({
                        "count": m[(l - 1) as usize][(c - 1) as usize],
                        "score": l * c, "level": level, "colour": level_colour(level),
                        "ink": level_ink(level),
                        "level_text": level_label(ui, level),
                    })
                })
                .collect();
            json!({ "likelihood": l, "cells": cells })
        })
        .collect();
    let rows: Vec<Json> = list.iter().map(|r| risk_row(ui, r)).collect();
    let nodes: Vec<Json> = nodes
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let owners: Vec<Json> = owners
        .iter()
        .map(|(id, name, users)| {
            json!({
                "node_id": id, "node": name,
                "users": users.iter().map(|(u, l)| json!({ "id": u, "label": l })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "risks.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => minijinja::Value::from_serialize(&rows),
            matrix => minijinja::Value::from_serialize(&matrix),
            nodes => minijinja::Value::from_serialize(&nodes),
            owners => minijinja::Value::from_serialize(&owners),
            types => minijinja::Value::from_serialize(types(ui)),
            levels => minijinja::Value::from_serialize(levels(ui)),
            filter => minijinja::Value::from_serialize(q),
            max_months => app.config.risks.max_review_months,
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

async fn create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match risk_input(&f) {
        Ok(i) => i,
        Err(e) => return page_list(&ui, &app, &s, &HashMap::new(), Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let months = app.config.risks.max_review_months;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            risks::create(tx, &caller, &input, months)
        })
        .await;
    match r {
        Ok(r) => see_other(&format!("/manage/risks/{}", r.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_list(&ui, &app, &s, &HashMap::new(), Some(&e), &f).await
        }
    }
}

// ---- a risk ------------------------------------------------------------------------------------

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    page_risk(&ui, &app, &s, id, None, &Fields::new()).await
}

async fn page_risk(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let r = risks::get(c, &caller, id, now)?;
            let reviews = risks::reviews(c, &caller, id, now)?;
            let owners = risks::owner_options(c, r.node_id, now)?;
            let reminders = risks::reminders_of(c, id)?;
            let can_write = caller
                .reach(anxin_domain::Permission::ManageRisks)
                .contains_node(c, r.node_id)?;
            Ok((r, reviews, owners, reminders, can_write))
        })
        .await;
    let (r, reviews, owners, reminders, can_write) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rev: Vec<Json> = reviews
        .iter()
        .map(|v| {
            json!({
                "at": local(v.reviewed_at), "by": v.reviewer_label,
                "likelihood": v.likelihood, "consequence": v.consequence, "score": v.score,
                "level_text": level_label(ui, &v.level), "colour": level_colour(&v.level),
                "ink": level_ink(&v.level),
                "note": v.note, "next": v.next_review_on.to_string(),
            })
        })
        .collect();
    let owners: Vec<Json> = owners
        .iter()
        .map(|(u, l)| json!({ "id": u, "label": l }))
        .collect();
    let reminders: Vec<Json> = reminders
        .iter()
        .map(|(k, d)| json!({ "kind": t(ui, &format!("risk.reminder.{k}")), "due": d.to_string() }))
        .collect();
    let latest = risks::latest_review(risks::local_day(now), app.config.risks.max_review_months);
    let mut risk = risk_row(ui, &r);
    risk["description"] = json!(r.description);
    risk["controls"] = json!(r.controls);
    risk["owner_user_id"] = json!(r.owner_user_id);
    risk["lon"] = json!(r.lon);
    risk["lat"] = json!(r.lat);
    risk["last_reviewed"] = json!(r.last_reviewed_at.map(local));
    risk["created"] = json!(local(r.created_at));
    risk["place_label"] = json!(r.place_label);
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "risk.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            risk => minijinja::Value::from_serialize(&risk),
            reviews => minijinja::Value::from_serialize(&rev),
            owners => minijinja::Value::from_serialize(&owners),
            reminders => minijinja::Value::from_serialize(&reminders),
            types => minijinja::Value::from_serialize(types(ui)),
            can_write => can_write,
            latest => latest.to_string(),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

async fn edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match risk_input(&f) {
        Ok(i) => i,
        Err(e) => return page_risk(&ui, &app, &s, id, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let months = app.config.risks.max_review_months;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            risks::edit(tx, &caller, id, &input, months)
        })
        .await;
    match r {
        Ok(r) => see_other(&format!("/manage/risks/{}", r.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_risk(&ui, &app, &s, id, Some(&e), &f).await
        }
    }
}

async fn review(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match (int(&f, "likelihood"), int(&f, "consequence")) {
        (Ok(likelihood), Ok(consequence)) => RiskReviewInput {
            likelihood,
            consequence,
            note: f.get("note").cloned(),
            next_review_on: text(&f, "next_review_on"),
        },
        (Err(e), _) | (_, Err(e)) => return page_risk(&ui, &app, &s, id, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let months = app.config.risks.max_review_months;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            risks::review(tx, &caller, id, &input, months)
        })
        .await;
    match r {
        Ok(_) => see_other(&format!("/manage/risks/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_risk(&ui, &app, &s, id, Some(&e), &f).await
        }
    }
}

// ---- the risk map ------------------------------------------------------------------------------

/// Page texts the map script uses.
const MAP_TEXT_KEYS: &[&str] = &[
    "riskmap.risks",
    "riskmap.hazards",
    "riskmap.shown",
    "riskmap.no_hazards",
    "risk.score",
    "risk.next_review",
    "risk.review_overdue",
    "riskmap.grade.minor",
    "riskmap.grade.major",
    "riskmap.overdue",
    "riskmap.fix_due",
    "riskmap.state.reported",
    "riskmap.state.assigned",
    "riskmap.state.remediating",
    "riskmap.state.fixed",
    "riskmap.state.accepted",
    "riskmap.state.closed",
];

async fn map_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| risks::list(c, &caller, &RiskQuery::default(), now))
        .await;
    let list = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = list.iter().map(|r| risk_row(&ui, r)).collect();
    let mut texts: BTreeMap<String, String> = MAP_TEXT_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), t(&ui, k)))
        .collect();
    for (c, ..) in RISK_TYPES {
        texts.insert(format!("type.{c}"), type_label(&ui, c));
    }
    for (c, ..) in LEVELS {
        texts.insert(format!("level.{c}"), level_label(&ui, c));
    }
    let colours: BTreeMap<&str, &str> =
        LEVELS.iter().map(|(c, ..)| (*c, level_colour(c))).collect();
    let cfg = &app.config.map;
    // Risks and hazards are WGS-84: an online base in WGS-84 (天地图) is drawn under them; a
    // GCJ-02 base would shift them by hundreds of metres, so the page stays on the offline base.
    let tiles = match cfg.display_crs() {
        anxin_domain::geo::Crs::Wgs84 => cfg
            .tiles()
            .map(|(u, s)| json!({ "url": u, "subdomains": s })),
        _ => None,
    };
    let base = json!({
        "center": [cfg.center_lat, cfg.center_lon],
        "zoom": cfg.zoom,
        "tiles": tiles,
        "attribution": cfg.attribution,
        "colours": colours,
    });
    let mut r = render(
        &ui,
        StatusCode::OK,
        "risk_map.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            rows => minijinja::Value::from_serialize(&rows),
            types => minijinja::Value::from_serialize(types(&ui)),
            levels => minijinja::Value::from_serialize(levels(&ui)),
            texts => serde_json::to_string(&texts).unwrap_or_default(),
            base => base.to_string(),
        },
    );
    if let Some(origin) = tiles
        .as_ref()
        .and_then(|t| t["url"].as_str())
        .and_then(tile_origin)
    {
        let csp = format!(
            "default-src 'self'; img-src 'self' data: {origin}; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    r
}

/// `https://{s}.host/…` → `https://*.host` for the CSP (None when it does not look like a URL).
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split('/').next()?;
    let host = host.replace("{s}", "*");
    if host.is_empty() || host.contains(['{', '}', ' ', ';', '\'']) {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

async fn map_js() -> Response {
    let mut r = MAP_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

// ---- the calendar ------------------------------------------------------------------------------

fn year_of(app: &App, q: &HashMap<String, String>) -> i32 {
    q.get("year")
        .and_then(|y| y.trim().parse::<i32>().ok())
        .filter(|y| calendar::YEARS.contains(y))
        .unwrap_or_else(|| app.clock.local_now().year())
}

async fn calendar_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = staff!(ui, s);
    let year = year_of(&app, &q);
    page_calendar(&ui, &app, &s, year, None, &Fields::new()).await
}

async fn page_calendar(
    ui: &Ui,
    app: &App,
    s: &Staff,
    year: i32,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let days = calendar::list(c, &caller, year)?;
            let years = calendar::years(c)?;
            let cal = calendar::load(c)?;
            Ok((days, years, cal))
        })
        .await;
    let (days, mut years, cal) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    for y in [year - 1, year, year + 1] {
        if !years.contains(&y) && calendar::YEARS.contains(&y) {
            years.push(y);
        }
    }
    years.sort_unstable();
    let list: Vec<Json> = days
        .iter()
        .map(|d| {
            json!({
                "date": d.date.to_string(), "kind": d.kind,
                "kind_text": t(ui, &format!("cal.kind.{}", d.kind)),
                "name": d.name, "shipped": d.shipped,
                "weekday": t(ui, &format!("cal.wd.{}", d.weekday)),
            })
        })
        .collect();
    let months = month_grids(ui, &cal, year);
    let working = NaiveDate::from_ymd_opt(year, 1, 1)
        .map(|d| {
            d.iter_days()
                .take_while(|d| d.year() == year)
                .filter(|d| cal.is_working_day(*d))
                .count()
        })
        .unwrap_or(0);
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "calendar.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            year => year,
            years => years,
            days => minijinja::Value::from_serialize(&list),
            months => minijinja::Value::from_serialize(&months),
            working => working,
            weekdays => (1..=7).map(|i| t(ui, &format!("cal.wd.{i}"))).collect::<Vec<_>>(),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

/// Twelve month grids (weeks Monday first) with each day's state: work, off (weekend), holiday,
/// adjusted (working weekend).
fn month_grids(ui: &Ui, cal: &WorkCalendar, year: i32) -> Vec<Json> {
    (1..=12)
        .filter_map(|m| {
            let first = NaiveDate::from_ymd_opt(year, m, 1)?;
            let lead = first.weekday().num_days_from_monday() as usize;
            let mut cells: Vec<Json> = vec![Json::Null; lead];
            let mut d = first;
            while d.month() == m {
                let (state, name) = match cal.special(d) {
                    Some((anxin_domain::calendar::DayKind::Holiday, n)) => {
                        ("holiday", n.to_owned())
                    }
                    Some((anxin_domain::calendar::DayKind::Workday, n)) => {
                        ("adjusted", n.to_owned())
                    }
                    None if is_weekend(d) => ("off", String::new()),
                    None => ("work", String::new()),
                };
                cells.push(
                    json!({ "day": d.day(), "date": d.to_string(), "state": state, "name": name }),
                );
                d = d + Days::new(1);
            }
            while cells.len() % 7 != 0 {
                cells.push(Json::Null);
            }
            let weeks: Vec<Vec<Json>> = cells.chunks(7).map(<[Json]>::to_vec).collect();
            Some(json!({ "month": m, "title": t(ui, &format!("cal.month.{m}")), "weeks": weeks }))
        })
        .collect()
}

async fn calendar_add(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = DayInput {
        date: text(&f, "date"),
        kind: text(&f, "kind"),
        name: text(&f, "name"),
    };
    let year = input
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| d.year())
        .filter(|y| calendar::YEARS.contains(y))
        .unwrap_or_else(|| app.clock.local_now().year());
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| calendar::add(tx, &caller, &input))
        .await;
    match r {
        Ok(d) => see_other(&format!("/manage/calendar?year={}", d.date.year())),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_calendar(&ui, &app, &s, year, Some(&e), &f).await
        }
    }
}

async fn calendar_remove(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let date = match calendar::parse_date(text(&f, "date").as_deref()) {
        Ok(d) => d,
        Err(e) => {
            let year = app.clock.local_now().year();
            return page_calendar(&ui, &app, &s, year, Some(&ApiError::from(e)), &f).await;
        }
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| calendar::remove(tx, &caller, date))
        .await;
    match r {
        Ok(()) => see_other(&format!("/manage/calendar?year={}", date.year())),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}
