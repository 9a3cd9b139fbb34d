//! Incident operations on the management end: the list of incidents (active first, drills
//! marked 演练), an incident's page (status, plan, counts, timeline, tasks, situation reports,
//! shelters and stays, and the steps the caller may take), "my tasks", the forms to add a task,
//! draft a report, check someone in and write the after-action review, and the printable
//! report and review. Every step calls `anxin_store::ops::incidents`, which checks the
//! permission in the caller's scope; the pages only offer what it would allow.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::plan::{PlanBody, TaskTemplate};
use anxin_domain::{Permission, SHANGHAI};
use anxin_store::ops::incidents::{
    self as inc, CheckInInput, IncidentQuery, LessonInput, LogQuery, ReviewInput, SitrepInput,
    TaskInput, TaskStatusInput,
};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, text, Field, Fields, FormPage, Opt};
use crate::web::{error_page, i18n, local_path, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let i = Serves::Records("incidents");
    let t = Serves::Records("incident_tasks");
    let s = Serves::Records("incident_sitreps");
    Table::new()
        .route("/manage/incidents", &["GET"], i, get(list_page))
        .route("/manage/incidents/{id}", &["GET"], i, get(show))
        .route(
            "/manage/incidents/{id}/tasks/new",
            &["GET", "POST"],
            i,
            get(task_form).post(task_create),
        )
        .route(
            "/manage/incident-tasks/{id}/status",
            &["POST"],
            t,
            post(task_status),
        )
        .route("/manage/my-tasks", &["GET"], Serves::Own, get(my_tasks))
        .route(
            "/manage/incidents/{id}/sitreps/new",
            &["GET", "POST"],
            i,
            get(sitrep_form).post(sitrep_create),
        )
        .route("/manage/sitreps/{id}", &["GET"], s, get(sitrep_page))
        .route(
            "/manage/sitreps/{id}/approve",
            &["POST"],
            s,
            post(sitrep_approve),
        )
        .route(
            "/manage/sitreps/{id}/publish",
            &["POST"],
            s,
            post(sitrep_publish),
        )
        .route(
            "/manage/incidents/{id}/check-in",
            &["GET", "POST"],
            i,
            get(check_in_form).post(check_in),
        )
        .route(
            "/manage/shelter-stays/{id}/check-out",
            &["POST"],
            Serves::Records("shelter_stays"),
            post(check_out),
        )
        .route(
            "/manage/incidents/{id}/review",
            &["GET", "POST"],
            i,
            get(review_form).post(review_create),
        )
        .route(
            "/manage/reviews/{id}",
            &["GET"],
            Serves::Records("incident_reviews"),
            get(review_page),
        )
}

macro_rules! page_try {
    ($ui:expr, $r:expr) => {
        match $r {
            Ok(x) => x,
            Err(e) => return error_page(&$ui, &ApiError::from(e)),
        }
    };
}

/// Asia/Shanghai, to the minute.
use crate::web::forms::local_minute as local;

fn local_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(local).unwrap_or_default()
}

/// A `datetime-local` field (Asia/Shanghai) as UTC.
fn datetime_field(f: &Fields, field: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = text(f, field) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("value.date", field, "not a date and time");
    let t = NaiveDateTime::parse_from_str(&raw, "%Y-%m-%dT%H:%M").map_err(|_| bad())?;
    SHANGHAI
        .from_local_datetime(&t)
        .single()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(bad)
}

/// Paragraphs of a text, for templates.
fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

fn status_text(ui: &Ui, prefix: &str, status: &str) -> String {
    i18n::t(ui.lang, &format!("{prefix}.{status}"))
}

// ---- the list -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let status = q.status.clone().filter(|s| !s.is_empty());
    let query = IncidentQuery {
        status: status.clone(),
        exercise: None,
    };
    let caller = s.caller().clone();
    let list = page_try!(
        ui,
        app.store
            .read(move |c, _| inc::list(c, &caller, &query))
            .await
    );
    let rows: Vec<_> = list
        .iter()
        .map(|i| {
            let x = &i.incident;
            json!({
                "id": x.id, "title": x.title, "plan": i.plan_name, "node": i.node_name,
                "status": x.status, "status_text": status_text(&ui, "inc.status", &x.status),
                "exercise": x.exercise,
                "activated": local_opt(x.activated_at.or(Some(x.created_at))),
                "closed": local_opt(x.closed_at),
            })
        })
        .collect();
    let statuses: Vec<_> = ["pending", "active", "closed", "reviewed", "declined"]
        .iter()
        .map(|v| json!({ "value": v, "label": status_text(&ui, "inc.status", v) }))
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "incidents.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            rows => minijinja::Value::from_serialize(&rows),
            status => status.unwrap_or_default(),
            statuses => statuses,
        },
    )
}

// ---- an incident's page ---------------------------------------------------------------------

/// The page's timeline: the latest lines, oldest of them first.
const PAGE_LOG_LINES: i64 = 500;

fn latest_lines(
    c: &mut dyn anxin_store::Conn,
    caller: &anxin_store::scope::Caller,
    id: Uuid,
) -> anxin_store::Result<inc::LogPage> {
    let total = inc::timeline(
        c,
        caller,
        id,
        &LogQuery {
            offset: None,
            limit: Some(1),
        },
    )?
    .total;
    inc::timeline(
        c,
        caller,
        id,
        &LogQuery {
            offset: Some((total - PAGE_LOG_LINES).max(0)),
            limit: Some(PAGE_LOG_LINES),
        },
    )
}

fn task_rows(ui: &Ui, tasks: &[inc::Task]) -> Vec<serde_json::Value> {
    tasks
        .iter()
        .map(|t| {
            let next: Vec<_> = match t.status.as_str() {
                "open" => vec!["in_progress", "done", "cancelled"],
                "in_progress" => vec!["done", "open", "cancelled"],
                _ => vec![],
            }
            .into_iter()
            .map(|v| json!({ "value": v, "label": status_text(ui, "inc.task_status", v) }))
            .collect();
            json!({
                "id": t.id, "incident_id": t.incident_id, "incident_title": t.incident_title,
                "title": t.title, "description": t.description,
                "assignee": t.assignee_name.clone().unwrap_or_default(),
                "due": local_opt(t.due_at), "status": t.status,
                "status_text": status_text(ui, "inc.task_status", &t.status),
                "source_text": status_text(ui, "inc.task_source", &t.source),
                "notes": t.notes, "next": next,
            })
        })
        .collect()
}

/// The activation's counts, one sentence per step (and the stand-down's, once closed).
fn summary_lines(ui: &Ui, summary: &serde_json::Value) -> Vec<String> {
    anxin_store::ops::describe_summary(summary, ui.lang == crate::web::Lang::En)
}

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let item = inc::get(c, &caller, id)?;
            let tasks = inc::tasks(c, &caller, id)?;
            let sitreps = inc::sitreps(c, &caller, id)?;
            let shelters = inc::shelters(c, &caller, id)?;
            let stays = inc::stays(
                c,
                &caller,
                id,
                &inc::StayQuery {
                    present: Some(true),
                },
            )?;
            let log = latest_lines(c, &caller, id)?;
            let review = inc::review_of(c, &caller, id)?;
            Ok((item, tasks, sitreps, shelters, stays, log, review))
        })
        .await;
    let (item, tasks, sitreps, shelters, stays, log, review) = page_try!(ui, got);
    let x = &item.incident;
    let c = s.caller();
    let run = c.has(Permission::RunIncidents);
    let st = x.status.as_str();
    let sitrep_rows: Vec<_> = sitreps
        .iter()
        .map(|r| {
            json!({ "id": r.id, "title": r.title, "status_text": status_text(&ui, "inc.sitrep_status", &r.status),
                    "at": local(r.created_at) })
        })
        .collect();
    let shelter_rows: Vec<_> = shelters
        .iter()
        .map(|f| {
            json!({ "name": f.name, "occupancy": f.occupancy,
                    "capacity": f.capacity.map_or_else(|| "—".to_owned(), |c| c.to_string()),
                    "full": f.capacity.is_some_and(|c| f.occupancy >= c) })
        })
        .collect();
    let stay_rows: Vec<_> = stays
        .iter()
        .map(|v| {
            json!({ "id": v.id, "name": v.name, "phone": v.phone.clone().unwrap_or_default(),
                    "facility": v.facility_name, "in": local(v.checked_in_at) })
        })
        .collect();
    let log_rows: Vec<_> = log
        .lines
        .iter()
        .map(|l| {
            json!({ "at": local(l.at), "actor": l.actor_name.clone().unwrap_or_default(),
                    "kind": l.kind, "summary": l.summary })
        })
        .collect();
    let open_tasks = tasks
        .iter()
        .filter(|t| matches!(t.status.as_str(), "open" | "in_progress"))
        .count();
    let done_tasks = tasks.iter().filter(|t| t.status == "done").count();
    let sheltered: i64 = shelters.iter().map(|f| f.occupancy).sum();
    render(
        &ui,
        StatusCode::OK,
        "incident.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            i => minijinja::Value::from_serialize(json!({
                "id": x.id, "title": x.title, "status": st,
                "status_text": status_text(&ui, "inc.status", st),
                "exercise": x.exercise, "plan": item.plan_name, "node": item.node_name,
                "trigger_text": status_text(&ui, "inc.trigger", &x.trigger_kind),
                "activated": local_opt(x.activated_at), "confirmed": local_opt(x.confirmed_at),
                "closed": local_opt(x.closed_at), "created": local(x.created_at),
            })),
            summary => summary_lines(&ui, &x.summary),
            counts => minijinja::Value::from_serialize(json!({
                "open_tasks": open_tasks, "done_tasks": done_tasks,
                "shelters": shelters.len(), "sheltered": sheltered,
                "sitreps": sitreps.len(),
            })),
            tasks => minijinja::Value::from_serialize(task_rows(&ui, &tasks)),
            sitreps => minijinja::Value::from_serialize(&sitrep_rows),
            shelters => minijinja::Value::from_serialize(&shelter_rows),
            stays => minijinja::Value::from_serialize(&stay_rows),
            log => minijinja::Value::from_serialize(&log_rows),
            can_confirm => st == "pending" && c.has(Permission::ActivatePlans),
            can_deactivate => st == "active" && c.has(Permission::ActivatePlans),
            can_run => run && st == "active",
            can_report => run && matches!(st, "active" | "closed"),
            can_review => run && st == "closed",
            review_id => review.map(|r| r.id),
            back => format!("/manage/incidents/{id}"),
        },
    )
}

// ---- tasks ----------------------------------------------------------------------------------

async fn task_page(app: &App, s: &Staff, ui: &Ui, id: Uuid) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let people = app
        .store
        .read(move |c, _| inc::assignees(c, &caller, id, now))
        .await?;
    let opts = people
        .iter()
        .map(|a| {
            let label = match &a.username {
                Some(u) => format!("{}（{u}）", a.name),
                None => a.name.clone(),
            };
            Opt::new(a.user_id, label)
        })
        .collect();
    Ok(FormPage {
        title: i18n::t(ui.lang, "inc.task_new"),
        action: format!("/manage/incidents/{id}/tasks/new"),
        cancel: format!("/manage/incidents/{id}"),
        fields: vec![
            Field::text(ui, "title", "inc.task_title").required(),
            Field::new(ui, "description", "inc.task_description", "textarea"),
            Field::select(ui, "assignee_user_id", "inc.task_assignee", opts),
            Field::new(ui, "due_at", "inc.task_due", "datetime-local")
                .hint(ui, "inc.task_due_hint"),
        ],
    })
}

async fn task_form(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let page = page_try!(ui, task_page(&app, &s, &ui, id).await);
    forms::form_page(&ui, &s, page, &Fields::new(), None)
}

async fn task_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let r = async {
        let input = TaskInput {
            title: text(&f, "title"),
            description: text(&f, "description"),
            assignee_user_id: forms::uuid(&f, "assignee_user_id")?,
            due_at: datetime_field(&f, "due_at")?,
        };
        let caller = s.caller().clone();
        app.store
            .write(s.write_ctx(), move |tx| {
                inc::add_task(tx, &caller, id, input)
            })
            .await
            .map(|_| format!("/manage/incidents/{id}"))
            .map_err(ApiError::from)
    }
    .await;
    forms::answer(&ui, &s, r, task_page(&app, &s, &ui, id), &f).await
}

async fn task_status(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = TaskStatusInput {
        status: text(&f, "status"),
        notes: text(&f, "notes"),
    };
    let caller = s.caller().clone();
    let t = page_try!(
        ui,
        app.store
            .write(s.write_ctx(), move |tx| {
                inc::set_task_status(tx, &caller, id, input)
            })
            .await
    );
    let back = match text(&f, "back") {
        Some(b) => local_path(Some(&b)),
        None => format!("/manage/incidents/{}", t.incident_id),
    };
    see_other(&back)
}

async fn my_tasks(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let tasks = page_try!(
        ui,
        app.store.read(move |c, _| inc::my_tasks(c, &caller)).await
    );
    render(
        &ui,
        StatusCode::OK,
        "incident_tasks.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            tasks => minijinja::Value::from_serialize(task_rows(&ui, &tasks)),
            back => "/manage/my-tasks",
            show_incident => true,
        },
    )
}

// ---- situation reports ------------------------------------------------------------------------

fn sitrep_page_form(ui: &Ui, id: Uuid) -> FormPage {
    FormPage {
        title: i18n::t(ui.lang, "inc.sitrep_new"),
        action: format!("/manage/incidents/{id}/sitreps/new"),
        cancel: format!("/manage/incidents/{id}"),
        fields: vec![
            Field::text(ui, "title", "inc.sitrep_title").hint(ui, "inc.sitrep_title_hint"),
            Field::new(ui, "body", "inc.sitrep_body", "textarea")
                .required()
                .hint(ui, "inc.sitrep_body_hint"),
        ],
    }
}

async fn sitrep_form(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    page_try!(
        ui,
        app.store.read(move |c, _| inc::get(c, &caller, id)).await
    );
    forms::form_page(&ui, &s, sitrep_page_form(&ui, id), &Fields::new(), None)
}

async fn sitrep_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = SitrepInput {
        title: text(&f, "title"),
        body: text(&f, "body"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            inc::draft_sitrep(tx, &caller, id, input)
        })
        .await
        .map(|r| format!("/manage/sitreps/{}", r.id))
        .map_err(ApiError::from);
    let page = sitrep_page_form(&ui, id);
    forms::answer(&ui, &s, r, async { Ok(page) }, &f).await
}

/// The figures of a report as labelled lines.
fn figure_rows(ui: &Ui, f: &serde_json::Value) -> Vec<serde_json::Value> {
    let n = |v: &serde_json::Value| v.as_i64().unwrap_or(0).to_string();
    let mut out = Vec::new();
    for s in ["open", "in_progress", "done", "cancelled"] {
        out.push(json!({
            "label": format!("{}·{}", i18n::t(ui.lang, "inc.tasks"), status_text(ui, "inc.task_status", s)),
            "value": n(&f["tasks"][s]),
        }));
    }
    let sh = &f["shelters"];
    out.push(
        json!({ "label": i18n::t(ui.lang, "inc.fig_shelters_open"), "value": n(&sh["open"]) }),
    );
    out.push(json!({
        "label": i18n::t(ui.lang, "inc.fig_occupancy"),
        "value": format!("{} / {}", n(&sh["occupancy"]), n(&sh["capacity"])),
    }));
    out.push(json!({ "label": i18n::t(ui.lang, "inc.fig_sheltered"), "value": n(&sh["sheltered_in_incident"]) }));
    for line in summary_lines(ui, &f["activation"]) {
        out.push(json!({ "label": i18n::t(ui.lang, "inc.summary"), "value": line }));
    }
    for (key, label, states) in [
        ("welfare", "inc.fig_welfare", "welfare.status."),
        ("callouts", "inc.fig_callouts", "vol.callout."),
    ] {
        if let Some(m) = f[key].as_object() {
            let parts: Vec<String> = m
                .iter()
                .map(|(s, n)| {
                    let name = i18n::lookup(ui.lang, &format!("{states}{s}")).unwrap_or(s);
                    format!("{name} {n}")
                })
                .collect();
            out.push(json!({ "label": i18n::t(ui.lang, label), "value": parts.join("，") }));
        }
    }
    if let Some(m) = f.as_object() {
        for (k, v) in m {
            if !matches!(
                k.as_str(),
                "at" | "tasks" | "shelters" | "activation" | "welfare" | "callouts"
            ) {
                out.push(json!({ "label": k, "value": v.to_string() }));
            }
        }
    }
    out
}

async fn sitrep_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let (r, i) = page_try!(
        ui,
        app.store
            .read(move |c, _| inc::sitrep(c, &caller, id))
            .await
    );
    let c = s.caller();
    let author = r.created_by.is_some() && r.created_by == c.user_id;
    render(
        &ui,
        StatusCode::OK,
        "sitrep.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            r => minijinja::Value::from_serialize(json!({
                "id": r.id, "title": r.title, "body_lines": lines(&r.body), "seq": r.seq,
                "status_text": status_text(&ui, "inc.sitrep_status", &r.status),
                "created": local(r.created_at), "approved": local_opt(r.approved_at),
                "published": local_opt(r.published_at),
                "at": r.figures["at"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).map(local).unwrap_or_default(),
            })),
            incident => minijinja::Value::from_serialize(json!({
                "id": i.id, "title": i.title, "exercise": i.exercise,
            })),
            figures => minijinja::Value::from_serialize(figure_rows(&ui, &r.figures)),
            can_approve => r.status == "draft" && c.has(Permission::ApproveReports) && !author,
            author_waits => r.status == "draft" && author,
            can_publish => r.status == "approved"
                && (c.has(Permission::ApproveReports) || c.has(Permission::RunIncidents)),
        },
    )
}

async fn sitrep_step(ui: Ui, app: App, s: Staff, id: Uuid, publish: bool) -> Response {
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            if publish {
                inc::publish_sitrep(tx, &caller, id)
            } else {
                inc::approve_sitrep(tx, &caller, id)
            }
        })
        .await;
    page_try!(ui, r);
    see_other(&format!("/manage/sitreps/{id}"))
}

async fn sitrep_approve(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    sitrep_step(ui, app, s, id, false).await
}

async fn sitrep_publish(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    sitrep_step(ui, app, s, id, true).await
}

// ---- shelters ---------------------------------------------------------------------------------

async fn check_in_page(app: &App, s: &Staff, ui: &Ui, id: Uuid) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let shelters = app
        .store
        .read(move |c, _| inc::shelters(c, &caller, id))
        .await?;
    let opts = shelters
        .iter()
        .map(|f| {
            let cap = f.capacity.map_or_else(|| "—".to_owned(), |c| c.to_string());
            Opt::new(
                f.facility_id,
                format!("{}（{} / {cap}）", f.name, f.occupancy),
            )
        })
        .collect();
    Ok(FormPage {
        title: i18n::t(ui.lang, "inc.check_in"),
        action: format!("/manage/incidents/{id}/check-in"),
        cancel: format!("/manage/incidents/{id}"),
        fields: vec![
            Field::select(ui, "facility_id", "inc.shelter", opts).required(),
            Field::text(ui, "person_id", "inc.stay_person").hint(ui, "inc.stay_person_hint"),
            Field::text(ui, "name", "inc.stay_name").hint(ui, "inc.stay_name_hint"),
            Field::new(ui, "phone", "inc.stay_phone", "tel"),
        ],
    })
}

async fn check_in_form(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let page = page_try!(ui, check_in_page(&app, &s, &ui, id).await);
    forms::form_page(&ui, &s, page, &Fields::new(), None)
}

async fn check_in(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let r = async {
        let input = CheckInInput {
            facility_id: forms::uuid(&f, "facility_id")?,
            person_id: forms::uuid(&f, "person_id")?,
            name: text(&f, "name"),
            phone: text(&f, "phone"),
        };
        let caller = s.caller().clone();
        app.store
            .write(s.write_ctx(), move |tx| {
                inc::check_in(tx, &caller, id, input)
            })
            .await
            .map(|_| format!("/manage/incidents/{id}"))
            .map_err(ApiError::from)
    }
    .await;
    forms::answer(&ui, &s, r, check_in_page(&app, &s, &ui, id), &f).await
}

async fn check_out(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let stay = page_try!(
        ui,
        app.store
            .write(s.write_ctx(), move |tx| inc::check_out(tx, &caller, id))
            .await
    );
    see_other(&format!("/manage/incidents/{}", stay.incident_id))
}

// ---- the after-action review --------------------------------------------------------------------

/// A plan's tasks as rows of the revision field: `title | role | minutes | description`.
fn task_lines(tasks: &[TaskTemplate]) -> String {
    tasks
        .iter()
        .map(|t| {
            let mut l = format!("{} | {} | {}", t.title, t.role, t.due_minutes);
            if !t.description.is_empty() {
                l.push_str(" | ");
                l.push_str(&t.description);
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows of the revision field back into task templates.
fn parse_task_lines(raw: &str) -> Result<Vec<TaskTemplate>, ApiError> {
    let mut out = Vec::new();
    for (n, line) in raw.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        let bad = || {
            ApiError::invalid(
                "review.task_row_invalid",
                "revision_tasks",
                format!("line {}: title | role | minutes [| description]", n + 1),
            )
        };
        if parts.len() < 3 || parts[0].is_empty() || parts[1].is_empty() {
            return Err(bad());
        }
        let due_minutes = parts[2].parse::<u32>().map_err(|_| bad())?;
        out.push(TaskTemplate {
            title: parts[0].to_owned(),
            role: parts[1].to_owned(),
            due_minutes,
            description: parts.get(3).map(|d| (*d).to_owned()).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn review_page_form(ui: &Ui, id: Uuid, version: i64, roles: &str) -> FormPage {
    FormPage {
        title: i18n::t(ui.lang, "inc.review_new"),
        action: format!("/manage/incidents/{id}/review"),
        cancel: format!("/manage/incidents/{id}"),
        fields: vec![
            Field::new(ui, "went_well", "inc.review_went_well", "textarea").required(),
            Field::new(ui, "went_badly", "inc.review_went_badly", "textarea").required(),
            Field::new(ui, "lessons", "inc.review_lessons", "textarea")
                .hint(ui, "inc.review_lessons_hint"),
            Field::text(ui, "revision_lesson", "inc.review_revision_lesson")
                .hint(ui, "inc.review_revision_lesson_hint"),
            Field {
                hint: Some(
                    i18n::t(ui.lang, "inc.review_revision_tasks_hint")
                        .replace("{version}", &version.to_string())
                        .replace("{roles}", roles),
                ),
                ..Field::new(
                    ui,
                    "revision_tasks",
                    "inc.review_revision_tasks",
                    "textarea",
                )
            },
        ],
    }
}

async fn review_setup(app: &App, s: &Staff, id: Uuid) -> Result<(PlanBody, i64), ApiError> {
    let caller = s.caller().clone();
    Ok(app
        .store
        .read(move |c, _| inc::current_body(c, &caller, id))
        .await?)
}

fn roles_text(body: &PlanBody) -> String {
    body.roles
        .iter()
        .map(|r| format!("{}={}", r.key, r.name))
        .collect::<Vec<_>>()
        .join("，")
}

async fn review_form(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let (body, version) = page_try!(ui, review_setup(&app, &s, id).await);
    let mut v = Fields::new();
    v.insert("revision_tasks".into(), task_lines(&body.tasks));
    forms::form_page(
        &ui,
        &s,
        review_page_form(&ui, id, version, &roles_text(&body)),
        &v,
        None,
    )
}

/// The form as the store's input: one lesson per line; when the task rows differ from the
/// current plan's, the revision lesson carries the revised body.
fn review_input(f: &Fields, current: &PlanBody) -> Result<ReviewInput, ApiError> {
    let mut lessons: Vec<LessonInput> = text(f, "lessons")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| LessonInput {
            text: Some(l.to_owned()),
            revision: None,
        })
        .collect();
    let rows = parse_task_lines(&text(f, "revision_tasks").unwrap_or_default())?;
    if rows != current.tasks {
        let lesson = text(f, "revision_lesson").ok_or_else(|| {
            ApiError::invalid(
                "value.required",
                "revision_lesson",
                "a revision needs the lesson it comes from",
            )
        })?;
        let body = PlanBody {
            tasks: rows,
            ..current.clone()
        };
        let revision = serde_json::to_value(&body).map_err(|e| {
            ApiError::invalid("review.revision_invalid", "revision_tasks", e.to_string())
        })?;
        lessons.retain(|l| l.text.as_deref() != Some(lesson.as_str()));
        lessons.push(LessonInput {
            text: Some(lesson),
            revision: Some(revision),
        });
    }
    Ok(ReviewInput {
        went_well: text(f, "went_well"),
        went_badly: text(f, "went_badly"),
        lessons,
    })
}

async fn review_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let (body, version) = page_try!(ui, review_setup(&app, &s, id).await);
    let r = async {
        let input = review_input(&f, &body)?;
        let caller = s.caller().clone();
        app.store
            .write(s.write_ctx(), move |tx| {
                inc::submit_review(tx, &caller, id, input)
            })
            .await
            .map(|r| format!("/manage/reviews/{}", r.id))
            .map_err(|e| {
                // A lesson's own field: the revision is the task rows, the text the lessons.
                let mut e = ApiError::from(e);
                if let Some(field) = e.details["field"].as_str() {
                    if field.contains(".revision") {
                        e.details["field"] = json!("revision_tasks");
                    } else if field.starts_with("lessons[") {
                        e.details["field"] = json!("lessons");
                    }
                }
                e
            })
    }
    .await;
    let page = review_page_form(&ui, id, version, &roles_text(&body));
    forms::answer(&ui, &s, r, async { Ok(page) }, &f).await
}

async fn review_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let (r, i) = inc::review(c, &caller, id)?;
            let log = latest_lines(c, &caller, i.id)?;
            Ok((r, i, log))
        })
        .await;
    let (r, i, log) = page_try!(ui, got);
    let lessons: Vec<_> = r
        .lessons
        .iter()
        .map(|l| {
            let proposed = l.version.map(|v| {
                i18n::t(ui.lang, "inc.review_proposed_version").replace("{version}", &v.to_string())
            });
            json!({ "text": l.text, "proposed": proposed })
        })
        .collect();
    let log_rows: Vec<_> = log
        .lines
        .iter()
        .map(|l| json!({ "at": local(l.at), "summary": l.summary }))
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "review.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            r => minijinja::Value::from_serialize(json!({
                "went_well_lines": lines(&r.went_well), "went_badly_lines": lines(&r.went_badly),
                "at": local(r.created_at),
            })),
            incident => minijinja::Value::from_serialize(json!({
                "id": i.id, "title": i.title, "exercise": i.exercise,
                "activated": local_opt(i.activated_at), "closed": local_opt(i.closed_at),
            })),
            lessons => minijinja::Value::from_serialize(&lessons),
            log => minijinja::Value::from_serialize(&log_rows),
        },
    )
}
