//! Pages for checklist templates, schedules, the to-do list and inspections (owner:
//! inspections).
//!
//! - `/manage/inspections`: the signed-in worker's list for today and what is overdue (each
//!   with a 开始 button), recent inspections, and links to templates and schedules for managers.
//! - `/manage/inspections/{id}`: the phone checklist. One form, `multipart/form-data`, working
//!   without script: per item `answer.<code>` (radio buttons pass/fail, a number, a choice or a
//!   text), `note.<code>`, `grade.<code>` (a checkbox `major` on failable minor items) and
//!   `photo.<code>` (`<input type=file accept="image/*" capture="environment">`, several
//!   allowed); `notes`; and two buttons `action=save` (保存) and `action=finish` (完成巡检).
//!   Saving stores the answers and photos; finishing then checks and reports a hazard per
//!   failed item. A refused finish shows the error next to the item and keeps what was saved.
//! - `/manage/inspection-templates[/{id}]`: the checklists, a node's own to create and edit
//!   (items as lines of text, no JSON), and a form to start an inspection of a chosen target.
//! - `/manage/inspection-schedules[/{id}]`: the schedules, create and edit.
//!
//! Every rule is in `anxin_store::hazards::inspections`; a record outside the caller's reach is
//! the same page as a missing one.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::NaiveDate;
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_domain::hazard::{AnswerType, HazardGrade, Period, PhotoRule, PlaceKind};
use anxin_domain::Permission;
use anxin_store::hazards::inspections::{
    self as insp, AnswerInput, AnswersInput, FinishInput, InspectionQuery, InspectionSheet,
    ItemInput, ScheduleInput, ScheduleQuery, StartInput, Template, TemplateInput, TemplateQuery,
};

use crate::app::App;
use crate::http::guard::{AuthError, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

/// The largest checklist form: several photos of at most 8 MiB each.
const MAX_SHEET_BYTES: usize = 96 * 1024 * 1024;
/// Targets offered in the start form of a template.
const TARGETS_MAX: usize = 500;

pub fn routes() -> Table {
    let t = Serves::Records("inspection_templates");
    let s = Serves::Records("inspection_schedules");
    let i = Serves::Records("inspections");
    Table::new()
        .route(
            "/manage/inspections",
            &["GET", "POST"],
            i,
            get(home_page).post(start),
        )
        .route(
            "/manage/inspections/{id}",
            &["GET", "POST"],
            i,
            get(sheet_page)
                .post(sheet_post)
                .layer(DefaultBodyLimit::max(MAX_SHEET_BYTES)),
        )
        .route(
            "/manage/inspection-templates",
            &["GET", "POST"],
            t,
            get(templates_page).post(create_template),
        )
        .route(
            "/manage/inspection-templates/{id}",
            &["GET", "POST"],
            t,
            get(template_page).post(edit_template),
        )
        .route(
            "/manage/inspection-schedules",
            &["GET", "POST"],
            s,
            get(schedules_page).post(create_schedule),
        )
        .route(
            "/manage/inspection-schedules/{id}",
            &["GET", "POST"],
            s,
            get(schedule_page).post(edit_schedule),
        )
}

/// Asia/Shanghai, to the minute.
use crate::web::forms::local_minute as local;

fn form_error(ui: &Ui, e: &ApiError) -> Json {
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

fn may_manage(s: &Session) -> bool {
    s.caller().has(Permission::ManageInspections)
}

fn kind_label(ui: &Ui, kind: &str) -> String {
    match kind.parse::<PlaceKind>() {
        Ok(k) => forms::enum_label(ui, k.zh(), kind),
        Err(_) => kind.to_owned(),
    }
}

fn period_label(ui: &Ui, p: &str) -> String {
    match p.parse::<Period>() {
        Ok(x) => forms::enum_label(ui, x.zh(), p),
        Err(_) => p.to_owned(),
    }
}

// ---- the worker's home ----------------------------------------------------------------------

async fn home_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    home_view(&ui, &app, &s.0, None).await
}

async fn home_view(ui: &Ui, app: &App, s: &Session, error: Option<&ApiError>) -> Response {
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                insp::todo(c, &caller, now)?,
                insp::list_inspections(
                    c,
                    &caller,
                    &InspectionQuery {
                        limit: Some(50),
                        ..InspectionQuery::default()
                    },
                )?,
            ))
        })
        .await;
    let (todo, recent) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let row = |t: &insp::TodoItem| {
        json!({
            "schedule_id": t.schedule_id, "schedule_name": t.schedule_name,
            "template_id": t.template_id, "template_name": t.template_name,
            "target_id": t.target_id, "place": t.place_label,
            "kind": kind_label(ui, &t.target_kind), "period": period_label(ui, &t.period),
            "period_key": t.period_key, "missed": t.missed_period_key,
            "in_progress_id": t.in_progress_id,
        })
    };
    let recent: Vec<Json> = recent
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "place": i.place_label, "template": i.template_name,
                "status": i.status, "failed": i.failed_count,
                "inspector": i.inspector_name.clone().unwrap_or_default(),
                "started": local(i.started_at), "done": i.done_at.map(local),
            })
        })
        .collect();
    let status = error.map_or(StatusCode::OK, |e| e.status);
    render(
        ui,
        status,
        "inspections.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            date => todo.date.map(|d| d.to_string()),
            today => todo.today.iter().map(row).collect::<Vec<_>>(),
            overdue => todo.overdue.iter().map(row).collect::<Vec<_>>(),
            recent => recent,
            manage => may_manage(s),
            inspect => s.caller().has(Permission::Inspect),
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

/// Start (or resume) an inspection: from the to-do list (`schedule_id`, `target_id`) or a
/// template's page (`template_id`, `target_id`).
async fn start(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match (
        forms::uuid(&f, "template_id"),
        forms::uuid(&f, "schedule_id"),
        forms::uuid(&f, "target_id"),
    ) {
        (Ok(template_id), Ok(schedule_id), Ok(target_id)) => StartInput {
            template_id,
            schedule_id,
            target_kind: forms::text(&f, "target_kind"),
            target_id,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return home_view(&ui, &app, &s.0, Some(&e)).await
        }
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| insp::start(tx, &caller, &input))
        .await
    {
        Ok(sheet) => see_other(&format!("/manage/inspections/{}", sheet.inspection.id)),
        Err(e) => {
            let e = ApiError::from(e);
            home_view(&ui, &app, &s.0, Some(&e)).await
        }
    }
}

// ---- the phone checklist --------------------------------------------------------------------

async fn sheet_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    match app
        .store
        .read(move |c, _| insp::get_inspection(c, &caller, id))
        .await
    {
        Ok(sheet) => sheet_view(&ui, &s.0, &sheet, None, &Fields::new(), StatusCode::OK),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

fn sheet_view(
    ui: &Ui,
    s: &Session,
    sheet: &InspectionSheet,
    error: Option<&ApiError>,
    posted: &Fields,
    status: StatusCode,
) -> Response {
    let error = error.map(|e| form_error(ui, e));
    let err_field = error
        .as_ref()
        .and_then(|e| e["field"].as_str())
        .unwrap_or("")
        .to_owned();
    let items: Vec<Json> = sheet
        .items
        .iter()
        .map(|it| {
            let code = &it.item.code;
            let kind = it.item.answer_type.parse().unwrap_or(AnswerType::Text);
            let current = posted
                .get(&format!("answer.{code}"))
                .cloned()
                .or_else(|| it.answer.clone())
                .unwrap_or_default();
            let options: Vec<String> = it.item.answer_spec["options"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let spec = &it.item.answer_spec;
            let photo = it.item.photo.parse().unwrap_or(PhotoRule::Optional);
            let minor = it.item.fail_grade == HazardGrade::Minor.as_str();
            json!({
                "code": code,
                "item_id": it.item.id,
                "position": it.item.position,
                "text": it.item.text,
                "guidance": it.item.guidance,
                "type": kind.as_str(),
                "options": options,
                "min": spec["min"], "max": spec["max"], "unit": spec["unit"],
                "answer": current,
                "passed": it.passed,
                "note": posted.get(&format!("note.{code}")).cloned().unwrap_or_else(|| it.note.clone()),
                "raised": it.grade.as_deref() == Some("major") && minor
                    || posted.get(&format!("grade.{code}")).is_some_and(|g| g == "major"),
                "minor": minor,
                "grade": it.grade,
                "photo": photo.as_str(),
                "photo_label": i18n::t(ui.lang, &format!("insp.photo.{}", photo.as_str())),
                "photos": it.photos.iter().map(|p| json!({"id": p.id, "name": p.filename})).collect::<Vec<_>>(),
                "hazard_id": it.hazard_id,
                "error": err_field == format!("answers.{code}") || err_field == format!("answers.{code}.photo")
                    || err_field.starts_with(&format!("answers[{}]", it.item.position - 1)),
            })
        })
        .collect();
    let i = &sheet.inspection;
    let answered = sheet.items.iter().filter(|x| x.answer.is_some()).count();
    render(
        ui,
        status,
        "inspection.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            i => json!({
                "id": i.id, "place": i.place_label, "template": i.template_name,
                "status": i.status, "failed": i.failed_count, "notes": i.notes,
                "period_key": i.period_key, "started": local(i.started_at),
                "done": i.done_at.map(local), "kind": kind_label(ui, &i.target_kind),
                "inspector": i.inspector_name.clone().unwrap_or_default(),
                "description": sheet.template_description,
            }),
            items => items,
            answered => answered,
            total => sheet.items.len(),
            photos => sheet.photos.iter().map(|p| json!({"id": p.id, "name": p.filename})).collect::<Vec<_>>(),
            open => i.status == "in_progress",
            error => error,
        },
    )
}

/// The posted checklist: text fields and files (`photo.<code>`, `photo`).
struct Posted {
    fields: Fields,
    files: Vec<(String, String, Vec<u8>)>,
}

async fn read_posted(app: &App, req: Request) -> Result<Posted, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if ct.starts_with("multipart/form-data") {
        let headers = req.headers().clone();
        let bytes = axum::body::to_bytes(req.into_body(), MAX_SHEET_BYTES)
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
        let mut files = Vec::new();
        for (name, filename, data) in parts {
            match filename {
                Some(f) => {
                    if !data.is_empty() {
                        files.push((name, f, data.to_vec()));
                    }
                }
                None => {
                    fields.insert(name, String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
        Ok(Posted { fields, files })
    } else {
        let Input(fields) = Input::<Fields>::from_request(req, app).await.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.body_invalid",
                "unreadable form",
            )
        })?;
        Ok(Posted {
            fields,
            files: Vec::new(),
        })
    }
}

async fn sheet_post(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    req: Request,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let sheet = match app
        .store
        .read(move |c, _| insp::get_inspection(c, &caller, id))
        .await
    {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let posted = match read_posted(&app, req).await {
        Ok(p) => p,
        Err(e) => return sheet_view(&ui, &s.0, &sheet, Some(&e), &Fields::new(), e.status),
    };
    let f = &posted.fields;
    // Answers of the items given a value; photos by item code.
    let mut answers = Vec::new();
    for it in &sheet.items {
        let code = &it.item.code;
        let Some(a) = forms::text(f, &format!("answer.{code}")) else {
            continue;
        };
        answers.push(AnswerInput {
            item_id: Some(it.item.id),
            code: None,
            answer: Some(a),
            note: f.get(&format!("note.{code}")).cloned(),
            grade: forms::text(f, &format!("grade.{code}")),
        });
    }
    let by_code: HashMap<&str, Uuid> = sheet
        .items
        .iter()
        .map(|it| (it.item.code.as_str(), it.item.id))
        .collect();
    let mut photos = Vec::new();
    for (name, filename, data) in posted.files {
        let item = match name.strip_prefix("photo.") {
            Some(code) => match by_code.get(code) {
                Some(i) => Some(*i),
                None => continue,
            },
            None if name == "photo" => None,
            None => continue,
        };
        photos.push((item, filename, data));
    }
    let input = AnswersInput {
        answers,
        notes: f.get("notes").cloned(),
    };
    let caller = s.caller().clone();
    let saved = app
        .store
        .write(s.write_ctx(), move |tx| {
            for (item, filename, data) in &photos {
                insp::add_photo(tx, &caller, id, *item, filename, data)?;
            }
            insp::answer(tx, &caller, id, &input)
        })
        .await;
    let saved = match saved {
        Ok(x) => x,
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            return sheet_view(&ui, &s.0, &sheet, Some(&e), f, e.status);
        }
    };
    if forms::text(f, "action").as_deref() == Some("finish") {
        let done =
            crate::http::inspections::finish_inspection(&app, &s, id, FinishInput { notes: None })
                .await;
        if let Err(e) = done {
            return sheet_view(&ui, &s.0, &saved, Some(&e), &Fields::new(), e.status);
        }
    }
    see_other(&format!("/manage/inspections/{id}"))
}

// ---- templates ------------------------------------------------------------------------------

/// Items as lines: `code | text | answer type | photo | grade | guidance | spec`; spec for a
/// choice: options separated by `;`, failing ones marked `!`; for a number: `min..max unit`.
fn items_text(t: &Template) -> String {
    t.items
        .iter()
        .map(|it| {
            let spec = match it.answer_type.as_str() {
                "choice" => {
                    let failing: Vec<&str> = it.answer_spec["failing"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    it.answer_spec["options"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str())
                                .map(|o| {
                                    if failing.contains(&o) {
                                        format!("!{o}")
                                    } else {
                                        o.to_owned()
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(";")
                        })
                        .unwrap_or_default()
                }
                "number" => {
                    let n = |k: &str| {
                        it.answer_spec[k]
                            .as_f64()
                            .map(|x| x.to_string())
                            .unwrap_or_default()
                    };
                    format!(
                        "{}..{} {}",
                        n("min"),
                        n("max"),
                        it.answer_spec["unit"].as_str().unwrap_or_default()
                    )
                    .trim()
                    .to_owned()
                }
                _ => String::new(),
            };
            let mut cols = vec![
                it.code.clone(),
                it.text.clone(),
                it.answer_type.clone(),
                it.photo.clone(),
                it.fail_grade.clone(),
                it.guidance.replace(['\n', '\r', '|'], " "),
            ];
            if !spec.is_empty() {
                cols.push(spec);
            }
            cols.join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse the item lines back; a line that cannot be read names its row (`items[2]`).
fn parse_items_text(raw: &str) -> Result<Vec<ItemInput>, ApiError> {
    let mut out = Vec::new();
    for (n, line) in raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let col = |i: usize| {
            cols.get(i)
                .filter(|c| !c.is_empty())
                .map(|c| (*c).to_owned())
        };
        let answer_type = col(2);
        let spec = match (answer_type.as_deref(), col(6)) {
            (Some("choice"), Some(s)) => {
                let mut options = Vec::new();
                let mut failing = Vec::new();
                for o in s.split(';').map(str::trim).filter(|o| !o.is_empty()) {
                    match o.strip_prefix('!') {
                        Some(f) => {
                            options.push(f.trim().to_owned());
                            failing.push(f.trim().to_owned());
                        }
                        None => options.push(o.to_owned()),
                    }
                }
                Some(json!({ "options": options, "failing": failing }))
            }
            (Some("number"), Some(s)) => {
                let (range, unit) = s.split_once(' ').unwrap_or((s.as_str(), ""));
                let (a, b) = range.split_once("..").ok_or_else(|| {
                    ApiError::invalid(
                        "inspection.spec_bounds",
                        &format!("items[{n}].answer_spec"),
                        "number range as min..max",
                    )
                })?;
                let num = |x: &str| -> Result<Json, ApiError> {
                    if x.trim().is_empty() {
                        return Ok(Json::Null);
                    }
                    x.trim().parse::<f64>().map(|v| json!(v)).map_err(|_| {
                        ApiError::invalid(
                            "inspection.spec_bounds",
                            &format!("items[{n}].answer_spec"),
                            "number range as min..max",
                        )
                    })
                };
                Some(json!({ "min": num(a)?, "max": num(b)?, "unit": unit.trim() }))
            }
            _ => None,
        };
        out.push(ItemInput {
            code: col(0),
            text: col(1),
            answer_type,
            photo: col(3),
            fail_grade: col(4),
            guidance: col(5),
            answer_spec: spec,
        });
    }
    Ok(out)
}

/// Nodes the caller manages inspections at (for the create forms).
async fn managed_nodes(app: &App, s: &Session) -> Vec<Json> {
    let reach = s.caller().reach(Permission::ManageInspections);
    let ids = reach.nodes.clone();
    app.store
        .read(move |c, _| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(r) = c.query_one(
                    "SELECT id, name FROM nodes WHERE id = $1",
                    &anxin_store::params![id],
                )? {
                    let id: Uuid = r.get("id")?;
                    let name: String = r.get("name")?;
                    out.push(json!({ "id": id, "name": name }));
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
}

async fn templates_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    templates_view(&ui, &app, &s.0, None, &Fields::new()).await
}

async fn templates_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    error: Option<&ApiError>,
    posted: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let list = match app
        .store
        .read(move |c, _| insp::list_templates(c, &caller, &TemplateQuery::default()))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = list
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "name": t.name, "shipped": t.shipped, "status": t.status,
                "kind": kind_label(ui, &t.target_kind), "items": t.items.len(),
                "node": t.node_name,
            })
        })
        .collect();
    let nodes = if may_manage(s) {
        managed_nodes(app, s).await
    } else {
        Vec::new()
    };
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "inspection_templates.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            templates => rows,
            nodes => nodes,
            kinds => forms::opts(ui, "insp.kind", &["dwelling", "building", "facility", "node"]),
            v => posted,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn create_template(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match (
        forms::uuid(&f, "node_id"),
        parse_items_text(f.get("items").map_or("", String::as_str)),
    ) {
        (Ok(node_id), Ok(items)) => TemplateInput {
            node_id,
            name: forms::text(&f, "name"),
            target_kind: forms::text(&f, "target_kind"),
            facility_kind: forms::text(&f, "facility_kind"),
            description: f.get("description").cloned(),
            status: None,
            items: Some(items),
        },
        (Err(e), _) | (_, Err(e)) => return templates_view(&ui, &app, &s.0, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            insp::create_template(tx, &caller, &input)
        })
        .await
    {
        Ok(t) => see_other(&format!("/manage/inspection-templates/{}", t.id)),
        Err(e) => {
            let e = ApiError::from(e);
            templates_view(&ui, &app, &s.0, Some(&e), &f).await
        }
    }
}

async fn template_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    template_view(&ui, &app, &s.0, id, None, None).await
}

async fn template_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    error: Option<&ApiError>,
    posted: Option<&Fields>,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let t = insp::get_template(c, &caller, id)?;
            let targets = insp::startable_targets(c, &caller, id, TARGETS_MAX)?;
            Ok((t, targets))
        })
        .await;
    let (t, targets) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let mut v = Fields::new();
    v.insert("name".into(), t.name.clone());
    v.insert("description".into(), t.description.clone());
    v.insert("items".into(), items_text(&t));
    if let Some(p) = posted {
        v.extend(p.clone());
    }
    let items: Vec<Json> = t
        .items
        .iter()
        .map(|it| {
            json!({
                "code": it.code, "text": it.text, "guidance": it.guidance,
                "type": i18n::t(ui.lang, &format!("insp.type.{}", it.answer_type)),
                "photo": i18n::t(ui.lang, &format!("insp.photo.{}", it.photo)),
                "grade": i18n::t(ui.lang, &format!("insp.grade.{}", it.fail_grade)),
                "spec": it.answer_spec.to_string(),
            })
        })
        .collect();
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "inspection_template.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            tpl => json!({
                "id": t.id, "name": t.name, "description": t.description, "shipped": t.shipped,
                "status": t.status, "kind": kind_label(ui, &t.target_kind), "node": t.node_name,
                "code": t.code, "facility_kind": t.facility_kind,
            }),
            items => items,
            targets => targets.iter().map(|(id, label)| json!({"id": id, "label": label})).collect::<Vec<_>>(),
            editable => !t.shipped && may_manage(s),
            inspect => s.caller().has(Permission::Inspect),
            v => v,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn edit_template(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let items = match f.get("items") {
        Some(raw) => match parse_items_text(raw) {
            Ok(i) => Some(i),
            Err(e) => return template_view(&ui, &app, &s.0, id, Some(&e), Some(&f)).await,
        },
        None => None,
    };
    let input = TemplateInput {
        name: f.get("name").cloned(),
        description: f.get("description").cloned(),
        status: forms::text(&f, "status"),
        items,
        ..TemplateInput::default()
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            insp::edit_template(tx, &caller, id, &input)
        })
        .await
    {
        Ok(_) => see_other(&format!("/manage/inspection-templates/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            template_view(&ui, &app, &s.0, id, Some(&e), Some(&f)).await
        }
    }
}

// ---- schedules ------------------------------------------------------------------------------

fn schedule_input(f: &Fields, create: bool) -> Result<ScheduleInput, ApiError> {
    let date = |k: &str| -> Result<Option<NaiveDate>, ApiError> {
        forms::text(f, k)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid("value.invalid", k, "a date: YYYY-MM-DD"))
            })
            .transpose()
    };
    let opt_uuid = |k: &str| -> Result<Option<Option<Uuid>>, ApiError> {
        if !f.contains_key(k) {
            return Ok(None);
        }
        Ok(Some(forms::uuid(f, k)?))
    };
    Ok(ScheduleInput {
        node_id: if create {
            forms::uuid(f, "node_id")?
        } else {
            None
        },
        template_id: if create {
            forms::uuid(f, "template_id")?
        } else {
            None
        },
        name: f.get("name").cloned(),
        target_kind: None,
        target_id: opt_uuid("target_id")?,
        period: forms::text(f, "period"),
        assignee_user_id: opt_uuid("assignee_user_id")?,
        starts_on: date("starts_on")?,
        active: if create {
            None
        } else {
            match f.get("active") {
                Some(a) => Some(a == "true" || a == "1" || a == "on"),
                // An unticked box sends nothing: the form says it was there.
                None => f.contains_key("active_present").then_some(false),
            }
        },
    })
}

async fn schedules_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    schedules_view(&ui, &app, &s.0, None, &Fields::new()).await
}

async fn schedules_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    error: Option<&ApiError>,
    posted: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                insp::list_schedules(c, &caller, &ScheduleQuery::default())?,
                insp::list_templates(
                    c,
                    &caller,
                    &TemplateQuery {
                        status: Some("active".into()),
                        ..TemplateQuery::default()
                    },
                )?,
            ))
        })
        .await;
    let (list, templates) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = list
        .iter()
        .map(|x| {
            json!({
                "id": x.id, "name": x.name, "node": x.node_name, "template": x.template_name,
                "period": period_label(ui, &x.period), "active": x.active,
                "assignee": x.assignee_name, "starts_on": x.starts_on.to_string(),
                "kind": kind_label(ui, &x.target_kind), "one": x.target_id.is_some(),
            })
        })
        .collect();
    let nodes = if may_manage(s) {
        managed_nodes(app, s).await
    } else {
        Vec::new()
    };
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "inspection_schedules.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            schedules => rows,
            nodes => nodes,
            templates => templates.iter().map(|t| json!({"id": t.id, "name": t.name, "kind": kind_label(ui, &t.target_kind)})).collect::<Vec<_>>(),
            periods => forms::opts(ui, "insp.period", &["daily", "weekly", "monthly", "quarterly"]),
            v => posted,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn create_schedule(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match schedule_input(&f, true) {
        Ok(i) => i,
        Err(e) => return schedules_view(&ui, &app, &s.0, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            insp::create_schedule(tx, &caller, &input)
        })
        .await
    {
        Ok(x) => see_other(&format!("/manage/inspection-schedules/{}", x.id)),
        Err(e) => {
            let e = ApiError::from(e);
            schedules_view(&ui, &app, &s.0, Some(&e), &f).await
        }
    }
}

async fn schedule_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    schedule_view(&ui, &app, &s.0, id, None, None).await
}

async fn schedule_view(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    error: Option<&ApiError>,
    posted: Option<&Fields>,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let x = insp::get_schedule(c, &caller, id)?;
            let done = insp::list_inspections(
                c,
                &caller,
                &InspectionQuery {
                    schedule_id: Some(id),
                    limit: Some(50),
                    ..InspectionQuery::default()
                },
            )?;
            Ok((x, done))
        })
        .await;
    let (x, done) = match got {
        Ok(v) => v,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let mut v = Fields::new();
    v.insert("name".into(), x.name.clone());
    v.insert("period".into(), x.period.clone());
    v.insert("starts_on".into(), x.starts_on.to_string());
    forms::put(&mut v, "target_id", x.target_id);
    forms::put(&mut v, "assignee_user_id", x.assignee_user_id);
    if let Some(p) = posted {
        v.extend(p.clone());
    }
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "inspection_schedule.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            x => json!({
                "id": x.id, "name": x.name, "node": x.node_name, "template": x.template_name,
                "template_id": x.template_id, "period": period_label(ui, &x.period),
                "active": x.active, "assignee": x.assignee_name, "kind": kind_label(ui, &x.target_kind),
                "starts_on": x.starts_on.to_string(), "target_id": x.target_id,
            }),
            inspections => done.iter().map(|i| json!({
                "id": i.id, "place": i.place_label, "status": i.status, "period_key": i.period_key,
                "failed": i.failed_count, "done": i.done_at.map(local),
            })).collect::<Vec<_>>(),
            periods => forms::opts(ui, "insp.period", &["daily", "weekly", "monthly", "quarterly"]),
            editable => may_manage(s),
            v => v,
            error => error.map(|e| form_error(ui, e)),
        },
    )
}

async fn edit_schedule(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match schedule_input(&f, false) {
        Ok(i) => i,
        Err(e) => return schedule_view(&ui, &app, &s.0, id, Some(&e), Some(&f)).await,
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            insp::edit_schedule(tx, &caller, id, &input)
        })
        .await
    {
        Ok(_) => see_other(&format!("/manage/inspection-schedules/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::NOT_FOUND {
                return error_page(&ui, &e);
            }
            schedule_view(&ui, &app, &s.0, id, Some(&e), Some(&f)).await
        }
    }
}
