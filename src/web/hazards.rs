//! Pages for the hazard ledger (owner: hazard ledger).
//!
//! - `/manage/hazards`: the ledger in scope with filters (state, grade, overdue, text) and
//!   overdue flags, the XLSX export link, and the staff "report a hazard" form (community, grid,
//!   place, finding, grade, position, photos).
//! - `/manage/hazards/{id}`: one hazard with its deadlines in Asia/Shanghai, the plan-start link,
//!   the acceptance, the event trail with its evidence, and a form for each action the state
//!   machine allows and the caller's role may take (photos upload as evidence; the plan-start
//!   form lists the active incidents of the hazard's community, above and below it; the
//!   inspector sees the acceptance form).
//!
//! Every step goes through `anxin_store::hazards::ledger`, which checks permission and scope.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_domain::hazard::{allowed, HazardAction};
use anxin_store::hazards::attachments;
use anxin_store::hazards::ledger::{self, Hazard, HazardActionInput, HazardFilter, HazardInput};
use anxin_store::scope::Caller;

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::hazards::{deadline_text, local_time};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{text, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

/// The largest form (photos included) a page posts.
const MAX_FORM_BYTES: usize = 40 * 1024 * 1024;
/// Photos per form.
const MAX_PHOTOS: usize = 10;

pub fn routes() -> Table {
    let h = Serves::Records("hazards");
    Table::new()
        .route(
            "/manage/hazards",
            &["GET", "POST"],
            h,
            get(list_page).post(report),
        )
        .route("/manage/hazards/{id}", &["GET"], h, get(show))
        .route("/manage/hazards/{id}/actions", &["POST"], h, post(act))
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn error_text(ui: &Ui, e: &ApiError) -> String {
    i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned)
}

fn row(ui: &Ui, h: &Hazard) -> Json {
    json!({
        "id": h.id,
        "place": match &h.grid_name {
            Some(g) => format!("{} · {} · {}", h.node_name, g, h.place_label),
            None => format!("{} · {}", h.node_name, h.place_label),
        },
        "finding": h.finding,
        "grade": h.grade,
        "grade_text": t(ui, &format!("hz.grade.{}", h.grade)),
        "state": h.state,
        "state_text": t(ui, &format!("hz.state.{}", h.state)),
        "found": local_time(h.found_at),
        "fix_due": deadline_text(h.fix_due_at),
        "plan_due": h.plan_due_at.map(deadline_text),
        "overdue": h.overdue,
        "responsible": h.responsible_party,
    })
}

// ---- the ledger ---------------------------------------------------------------------------------

fn filter_of(q: &Fields) -> HazardFilter {
    HazardFilter {
        state: text(q, "state"),
        grade: text(q, "grade"),
        overdue: text(q, "overdue").map(|v| v == "1" || v == "true"),
        node: text(q, "node").and_then(|v| v.parse().ok()),
        grid: text(q, "grid").and_then(|v| v.parse().ok()),
        source: text(q, "source"),
        q: text(q, "q"),
        limit: Some(50),
        after: text(q, "after"),
    }
}

async fn list_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Query(q): Query<Fields>,
) -> Response {
    let s = staff!(ui, s);
    page_list(&ui, &app, &s, &q, None, &Fields::new()).await
}

async fn page_list(
    ui: &Ui,
    app: &App,
    s: &Staff,
    q: &Fields,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let f = filter_of(q);
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let page = ledger::list(c, &caller, &f, now)?;
            let places = ledger::report_places(c, &caller)?;
            Ok((page, places))
        })
        .await;
    let (page, places) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = page.items.iter().map(|h| row(ui, h)).collect();
    let opt = |prefix: &str, values: &[&str]| -> Vec<Json> {
        values
            .iter()
            .map(|v| json!({ "value": v, "label": t(ui, &format!("{prefix}.{v}")) }))
            .collect()
    };
    let mut states = vec![json!({ "value": "open", "label": t(ui, "hz.open") })];
    states.extend(opt(
        "hz.state",
        &[
            "reported",
            "assigned",
            "remediating",
            "fixed",
            "accepted",
            "closed",
        ],
    ));
    let next = page.next.as_ref().map(|n| {
        let mut p: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "after")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        p.push(("after".into(), n.clone()));
        p.sort();
        let qs: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("/manage/hazards?{}", qs.join("&"))
    });
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "hazards.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => minijinja::Value::from_serialize(&rows),
            states => minijinja::Value::from_serialize(&states),
            grades => minijinja::Value::from_serialize(opt("hz.grade", &["minor", "major"])),
            q => minijinja::Value::from_serialize(q),
            next => next,
            places => minijinja::Value::from_serialize(&places),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.and_then(|e| e.details["field"].as_str().map(str::to_owned)),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

/// Percent-encoding of a query-string part.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A posted form: its fields and its photos (name, bytes).
struct Posted {
    fields: Fields,
    photos: Vec<(String, Vec<u8>)>,
}

async fn read_posted(app: &App, req: Request) -> Result<Posted, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let unreadable = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.body_invalid",
            "unreadable form",
        )
    };
    if ct.starts_with("multipart/form-data") {
        let headers = req.headers().clone();
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request.too_large",
                    "form too large",
                )
            })?;
        let parts = crate::http::inspections::multipart_parts(&headers, bytes).await?;
        let mut fields = Fields::new();
        let mut photos = Vec::new();
        for (name, filename, data) in parts {
            match filename {
                Some(f) if !data.is_empty() => photos.push((f, data.to_vec())),
                Some(_) => {}
                None => {
                    fields.insert(name, String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
        if photos.len() > MAX_PHOTOS {
            return Err(ApiError::invalid(
                "value.too_long",
                "photo",
                "too many photos",
            ));
        }
        Ok(Posted { fields, photos })
    } else {
        let Input(fields) =
            <Input<Fields> as axum::extract::FromRequest<App>>::from_request(req, app)
                .await
                .map_err(|_| unreadable())?;
        Ok(Posted {
            fields,
            photos: Vec::new(),
        })
    }
}

/// Store the photos as attachments of hazard `id` at `node`. Called inside the write that then
/// reports or acts, which checks the caller's permission on the hazard and rolls the photos back
/// with everything else when refused; so they are stored as the platform (the third-party
/// inspector may add evidence to a hazard without working with attachments otherwise).
fn store_photos(
    tx: &mut anxin_store::Tx<'_>,
    node: Uuid,
    id: Uuid,
    photos: &[(String, Vec<u8>)],
) -> anxin_store::Result<Vec<Uuid>> {
    photos
        .iter()
        .map(|(name, bytes)| {
            attachments::store(tx, &Caller::system(), node, "hazard", id, name, bytes)
        })
        .collect()
}

async fn report(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    req: Request,
) -> Response {
    let s = staff!(ui, s);
    let posted = match read_posted(&app, req).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let f = &posted.fields;
    let num = |k: &str| text(f, k).map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    let input = HazardInput {
        node_id: text(f, "node_id").and_then(|v| v.parse().ok()),
        grid_id: text(f, "grid_id").and_then(|v| v.parse().ok()),
        place_label: text(f, "place_label"),
        lon: num("lon"),
        lat: num("lat"),
        category: text(f, "category"),
        finding: text(f, "finding"),
        grade: text(f, "grade"),
        responsible_party: text(f, "responsible_party"),
        found_at: None,
        evidence: None,
    };
    let caller = s.caller().clone();
    let rules = app.config.hazards.grades.clone();
    let photos = posted.photos;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            let h = ledger::report_by(tx, &caller, &rules, &input)?;
            let ids = store_photos(tx, h.node_id, h.id, &photos)?;
            if !ids.is_empty() {
                ledger::set_report_evidence(tx, h.id, &ids)?;
            }
            Ok(h)
        })
        .await;
    match r {
        Ok(h) => see_other(&format!("/manage/hazards/{}", h.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            page_list(&ui, &app, &s, &Fields::new(), Some(&e), f).await
        }
    }
}

// ---- a hazard -----------------------------------------------------------------------------------

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    page_detail(&ui, &app, &s, id, None).await
}

async fn page_detail(
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
            let d = ledger::detail(c, &caller, id, now)?;
            let incident = match d.hazard.incident_id {
                Some(i) => c
                    .query_one(
                        "SELECT title FROM incidents WHERE id = $1",
                        &anxin_store::params![i],
                    )?
                    .map(|r| r.get::<String>("title"))
                    .transpose()?,
                None => None,
            };
            let choices = if d.hazard.plan_due_at.is_some() && d.hazard.incident_id.is_none() {
                ledger::plan_start_choices(c, &caller, id, now)?
            } else {
                Vec::new()
            };
            let assignees = if caller.has(anxin_domain::Permission::HandleHazards) {
                ledger::assignees(c, &caller, id, now)?
            } else {
                Vec::new()
            };
            Ok((d, incident, choices, assignees))
        })
        .await;
    let (d, incident, choices, assignees) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let h = &d.hazard;
    let rule = h.grade().ok().and_then(|g| {
        ledger::rule_for(&app.config.hazards.grades, g)
            .ok()
            .cloned()
    });
    let actions: Vec<Json> = match (rule, h.standing()) {
        (Some(rule), Ok(st)) => allowed(&rule, st)
            .into_iter()
            .filter(|a| s.caller().has(a.permission()))
            .map(|a| {
                json!({
                    "action": a.as_str(),
                    "label": t(ui, &format!("hz.action.{}", a.as_str())),
                    "needs_note": a == HazardAction::Reopen,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let events: Vec<Json> = d
        .events
        .iter()
        .map(|e| {
            json!({
                "at": local_time(e.at),
                "kind": t(ui, &format!("hz.ev.{}", e.kind)),
                "actor": e.actor_name.clone().unwrap_or_else(|| t(ui, "hz.platform")),
                "change": match (&e.from_state, &e.to_state) {
                    (Some(f), Some(to)) => format!(
                        "{} → {}",
                        t(ui, &format!("hz.state.{f}")),
                        t(ui, &format!("hz.state.{to}"))
                    ),
                    _ => String::new(),
                },
                "note": e.note,
                "evidence": e.evidence,
            })
        })
        .collect();
    let mut hz = row(ui, h);
    if let Some(m) = hz.as_object_mut() {
        let opt = |v: Option<chrono::DateTime<chrono::Utc>>| v.map(local_time);
        m.insert("category".into(), json!(h.category));
        m.insert(
            "source_text".into(),
            json!(t(ui, &format!("hz.source.{}", h.source))),
        );
        m.insert("assignee".into(), json!(h.assignee_name));
        m.insert("incident_id".into(), json!(h.incident_id));
        m.insert("incident".into(), json!(incident));
        m.insert("plan_started".into(), json!(opt(h.plan_started_at)));
        m.insert("fixed_at".into(), json!(opt(h.fixed_at)));
        m.insert("accepted_by".into(), json!(h.accepted_by_name));
        m.insert("accepted_at".into(), json!(opt(h.accepted_at)));
        m.insert("closed_at".into(), json!(opt(h.closed_at)));
        m.insert("closed_on_time".into(), json!(h.closed_on_time));
        m.insert("escalation_level".into(), json!(h.escalation_level));
        m.insert("reopened_count".into(), json!(h.reopened_count));
        m.insert("inspection_id".into(), json!(h.inspection_id));
    }
    let choices: Vec<Json> = choices
        .iter()
        .map(|c| {
            json!({
                "id": c.incident_id,
                "label": format!(
                    "{}（{}，{}）{}",
                    c.title,
                    c.node_name,
                    c.activated_at.map(local_time).unwrap_or_default(),
                    if c.exercise { " [演练]" } else { "" }
                ),
            })
        })
        .collect();
    let assignees: Vec<Json> = assignees
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "hazard.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            h => minijinja::Value::from_serialize(&hz),
            events => minijinja::Value::from_serialize(&events),
            actions => minijinja::Value::from_serialize(&actions),
            choices => minijinja::Value::from_serialize(&choices),
            assignees => minijinja::Value::from_serialize(&assignees),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
        },
    )
}

async fn act(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    req: Request,
) -> Response {
    let s = staff!(ui, s);
    // A hazard out of reach answers like a missing one, whatever the form holds.
    let caller = s.caller().clone();
    let now = app.clock.now();
    let node = match app
        .store
        .read(move |c, _| ledger::get(c, &caller, id, now).map(|h| h.node_id))
        .await
    {
        Ok(n) => n,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let posted = match read_posted(&app, req).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let f = &posted.fields;
    let input = HazardActionInput {
        action: text(f, "action"),
        note: text(f, "note"),
        assignee_user_id: text(f, "assignee_user_id").and_then(|v| v.parse().ok()),
        responsible_party: text(f, "responsible_party"),
        incident_id: text(f, "incident_id").and_then(|v| v.parse().ok()),
        evidence: None,
    };
    let caller = s.caller().clone();
    let rules = app.config.hazards.grades.clone();
    let photos = posted.photos;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            let evidence = store_photos(tx, node, id, &photos)?;
            let input = HazardActionInput {
                evidence: Some(evidence),
                ..input
            };
            ledger::act(tx, &caller, &rules, id, &input)
        })
        .await;
    match r {
        Ok(_) => see_other(&format!("/manage/hazards/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            page_detail(&ui, &app, &s, id, Some(&e)).await
        }
    }
}
