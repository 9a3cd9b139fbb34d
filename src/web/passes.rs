//! Pages for passes and access records (出入管理): the gates of the caller's places (new gate,
//! issue passes, active incidents for the contact look-up), the gate keeper's page (type a code
//! or an ID number, a big 放行 / 不予放行 with the reason, today's counts), the passes with their
//! codes (printable, with a QR code, for households without phones), the contact look-up of an
//! incident, and the resident's "我的通行证".
//!
//! Every rule is in `anxin_store::ops::passes`; a record outside the caller's reach is the same
//! page as a missing one. Forms post with `_csrf` and work without script.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use minijinja::context;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::SHANGHAI;
use anxin_store::ops::passes::{
    self, CheckInput, CheckResult, ContactInput, GateInput, IssueInput, Pass, PassQuery,
};

use crate::app::App;
use crate::http::guard::{AuthError, Authenticated, Resident, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, Fields};
use crate::web::{error_page, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let g = Serves::Records("gates");
    let p = Serves::Records("passes");
    Table::new()
        .route(
            "/manage/gates",
            &["GET", "POST"],
            g,
            get(gates_page).post(create_gate),
        )
        .route("/manage/gates/{id}", &["GET"], g, get(gate_page))
        .route(
            "/manage/gates/{id}/checkin",
            &["POST"],
            g,
            axum::routing::post(checkin),
        )
        .route(
            "/manage/passes",
            &["GET", "POST"],
            p,
            get(passes_page).post(issue),
        )
        .route("/manage/passes/{id}", &["GET"], p, get(pass_page))
        .route(
            "/manage/passes/{id}/revoke",
            &["POST"],
            p,
            axum::routing::post(revoke),
        )
        .route(
            "/manage/incidents/{id}/contacts",
            &["GET", "POST"],
            Serves::Records("incidents"),
            get(contacts_page).post(contacts_lookup),
        )
        .route("/resident/pass", &["GET"], Serves::Own, get(resident_pass))
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

/// An error shown on the page it came from (a missing record is the error page, as always).
fn form_error(ui: &Ui, e: &ApiError) -> Option<serde_json::Value> {
    let field = e
        .details
        .get("field")
        .and_then(|f| f.as_str())
        .unwrap_or("");
    Some(json!({
        "code": e.code,
        "field": field,
        "text": i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned),
    }))
}

fn field_error(code: &'static str, field: &str) -> ApiError {
    ApiError::invalid(code, field, format!("invalid {field}"))
}

// ---- gates ----------------------------------------------------------------------------------

async fn gates_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = guarded!(ui, s);
    gates_view(&ui, &app, &s.0, None, StatusCode::OK).await
}

async fn gates_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    error: Option<&ApiError>,
    status: StatusCode,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                passes::list_gates(c, &caller)?,
                passes::gate_places(c, &caller)?,
                passes::contact_incidents(c, &caller)?,
            ))
        })
        .await;
    let (gates, places, incidents) = match got {
        Ok(g) => g,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let places: Vec<_> = places
        .iter()
        .map(|p| {
            json!({ "id": p.id, "label": format!("{}（{}）", p.name, i18n::t(ui.lang, &format!("pass.level.{}", p.level))) })
        })
        .collect();
    render(
        ui,
        status,
        "gates.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            gates => minijinja::Value::from_serialize(&gates),
            places => minijinja::Value::from_serialize(&places),
            incidents => minijinja::Value::from_serialize(&incidents),
            error => error.and_then(|e| form_error(ui, e)),
        },
    )
}

async fn create_gate(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let input = match (forms::uuid(&f, "node_id"), forms::uuid(&f, "grid_id")) {
        (Ok(node_id), Ok(grid_id)) => GateInput {
            node_id,
            grid_id,
            name: forms::text(&f, "name"),
        },
        (Err(e), _) | (_, Err(e)) => {
            return gates_view(&ui, &app, &s.0, Some(&e), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            passes::create_gate(tx, &caller, &input)
        })
        .await;
    match r {
        Ok(g) => see_other(&format!("/manage/gates/{}", g.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            gates_view(&ui, &app, &s.0, Some(&e), e.status).await
        }
    }
}

async fn gate_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    gate_view(&ui, &app, &s.0, id, None, None).await
}

async fn gate_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    result: Option<&CheckResult>,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let counts = match app
        .store
        .read(move |c, _| passes::gate_counts(c, &caller, id, now))
        .await
    {
        Ok(c) => c,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let result = result.map(|r| {
        json!({
            "allowed": r.allowed,
            "reason": r.reason.as_deref().map(|c| i18n::t(ui.lang, c)),
            "reason_code": r.reason,
            "names": r.names.join("、"),
            "direction": i18n::t(ui.lang, &format!("gate.direction.{}", r.direction)),
            "at": local(r.at),
        })
    });
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "gate.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            counts => minijinja::Value::from_serialize(&counts),
            result => result,
            error => error.and_then(|e| form_error(ui, e)),
        },
    )
}

async fn checkin(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    // One box takes either: an 18-character ID number or a pass code.
    let typed = forms::text(&f, "code").unwrap_or_default();
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let looks_like_id = compact.len() == 18 && compact[..17].bytes().all(|b| b.is_ascii_digit());
    let input = CheckInput {
        code: (!typed.is_empty() && !looks_like_id).then(|| typed.clone()),
        id_number: forms::text(&f, "id_number").or_else(|| looks_like_id.then_some(compact)),
        direction: forms::text(&f, "direction"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            passes::check_in(tx, &caller, id, &input)
        })
        .await;
    match r {
        Ok(r) => gate_view(&ui, &app, &s.0, id, Some(&r), None).await,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            gate_view(&ui, &app, &s.0, id, None, Some(&e)).await
        }
    }
}

// ---- passes ---------------------------------------------------------------------------------

fn pass_ctx(ui: &Ui, p: &Pass) -> serde_json::Value {
    json!({
        "id": p.id,
        "node_name": p.node_name,
        "household_label": p.household_label,
        "status": i18n::t(ui.lang, &format!("pass.status.{}", p.status)),
        "revoked": p.status == "revoked",
        "valid": p.valid,
        "valid_until": p.valid_until.map_or_else(|| i18n::t(ui.lang, "pass.until_closed"), local),
        "issued": local(p.created_at),
        "code": p.code,
        "qr": p.code.as_deref().and_then(crate::web::admin::qr_data_uri),
    })
}

async fn passes_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = guarded!(ui, s);
    passes_view(&ui, &app, &s.0, None, None).await
}

async fn passes_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    issued: Option<&passes::IssueReport>,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                passes::list_passes(c, &caller, &PassQuery::default(), now)?,
                passes::gate_places(c, &caller)?,
            ))
        })
        .await;
    let (list, places) = match got {
        Ok(l) => l,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = list.iter().map(|p| pass_ctx(ui, p)).collect();
    let places: Vec<_> = places
        .iter()
        .map(|p| json!({ "id": p.id, "label": format!("{}（{}）", p.name, i18n::t(ui.lang, &format!("pass.level.{}", p.level))) }))
        .collect();
    let issued = issued.map(|r| {
        json!({
            "count": r.issued.len(),
            "skipped": r.skipped,
            "passes": r.issued.iter().map(|p| pass_ctx(ui, p)).collect::<Vec<_>>(),
        })
    });
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "passes.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => minijinja::Value::from_serialize(&rows),
            places => minijinja::Value::from_serialize(&places),
            issued => issued,
            error => error.and_then(|e| form_error(ui, e)),
        },
    )
}

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

async fn issue(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let parsed = (|| {
        let valid_until = match forms::text(&f, "valid_until") {
            Some(v) => {
                Some(local_input(&v).ok_or_else(|| field_error("value.invalid", "valid_until"))?)
            }
            None => None,
        };
        Ok::<_, ApiError>(IssueInput {
            node_id: forms::uuid(&f, "node_id")?,
            household_id: forms::uuid(&f, "household_id")?,
            incident_id: forms::uuid(&f, "incident_id")?,
            valid_until,
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return passes_view(&ui, &app, &s.0, None, Some(&e)).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            passes::issue_passes(tx, &caller, &input)
        })
        .await;
    match r {
        Ok(r) => passes_view(&ui, &app, &s.0, Some(&r), None).await,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            passes_view(&ui, &app, &s.0, None, Some(&e)).await
        }
    }
}

async fn pass_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    let caller = s.caller().clone();
    let now = app.clock.now();
    match app
        .store
        .read(move |c, env| passes::get_pass(c, env, &caller, id, now))
        .await
    {
        Ok(p) => render(
            &ui,
            StatusCode::OK,
            "pass.html",
            context! {
                me => crate::web::manage::who_ctx(&s.0),
                pass => pass_ctx(&ui, &p),
            },
        ),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

async fn revoke(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            passes::revoke_pass(tx, &caller, id)
        })
        .await
    {
        Ok(_) => see_other(&format!("/manage/passes/{id}")),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

// ---- contact look-up ------------------------------------------------------------------------

async fn contacts_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guarded!(ui, s);
    contacts_view(&ui, &app, &s.0, id, None, None, &Fields::new()).await
}

async fn contacts_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    report: Option<&passes::ContactReport>,
    error: Option<&ApiError>,
    f: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let incident = match app
        .store
        .read(move |c, _| passes::contact_incident(c, &caller, id))
        .await
    {
        Ok(i) => i,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let report = report.map(|r| {
        json!({
            "case_passages": r.case_passages,
            "window": r.window_minutes,
            "contacts": r.contacts.iter().map(|c| json!({
                "gate": c.gate_name, "at": local(c.at), "apart": c.minutes_apart,
                "names": c.names.join("、"), "phones": c.phones.join("、"),
            })).collect::<Vec<_>>(),
        })
    });
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "pass_contacts.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            incident => minijinja::Value::from_serialize(&incident),
            active => incident.status == "active",
            report => report,
            error => error.and_then(|e| form_error(ui, e)),
            window => forms::text(f, "window_minutes").unwrap_or_else(|| passes::WINDOW_DEFAULT.to_string()),
        },
    )
}

async fn contacts_lookup(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guarded!(ui, s);
    let parsed = (|| {
        Ok::<_, ApiError>(ContactInput {
            person_id: forms::uuid(&f, "person_id")?,
            id_number: forms::text(&f, "id_number"),
            window_minutes: forms::int(&f, "window_minutes")?,
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return contacts_view(&ui, &app, &s.0, id, None, Some(&e), &f).await,
    };
    match crate::http::passes::contact_lookup(&app, &s.0, id, input).await {
        Ok(r) => contacts_view(&ui, &app, &s.0, id, Some(&r), None, &f).await,
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&ui, &e),
        Err(e) => contacts_view(&ui, &app, &s.0, id, None, Some(&e), &f).await,
    }
}

// ---- the resident's pass --------------------------------------------------------------------

async fn resident_pass(ui: Ui, State(app): State<App>, r: Result<Resident, AuthError>) -> Response {
    let r = guarded!(ui, r);
    let h = r.household_id();
    let now = app.clock.now();
    match app
        .store
        .read(move |c, env| passes::resident_passes(c, env, h, now))
        .await
    {
        Ok(list) => render(
            &ui,
            StatusCode::OK,
            "pass_resident.html",
            context! {
                csrf => r.csrf(),
                passes => list.iter().map(|p| pass_ctx(&ui, p)).collect::<Vec<_>>(),
            },
        ),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}
