//! Pages for plans and activation (owner: plans & activation): the plan list with review flags,
//! drills held and the activations waiting for confirmation; a plan's page (the version in
//! force in words, versions with adopt/reject, review, the activate button with the drill
//! checkbox, its activations); and the form a community worker writes a version with (risks,
//! triggers, roles with their holders, task rows, shelters to pick, volunteers, welfare checks —
//! no JSON). Every step goes through `anxin_store::ops`, which checks permission and scope.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_domain::plan::{PlanBody, Trigger};
use anxin_domain::warning::{WarningCategory, WarningLevel};
use anxin_domain::Permission;
use anxin_store::monitor::DeviceKind;
use anxin_store::ops::activation::{self, ActivateOpts};
use anxin_store::ops::plans::{self, Plan, PlanInput, PlanQuery, VersionInput};
use anxin_store::ops::Incident;

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{enum_label, text, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

/// Rows the version form offers.
const ROLE_ROWS: usize = 6;
const TASK_ROWS: usize = 10;
/// Role slots of a first version: keys and names a community usually has.
const DEFAULT_ROLES: [(&str, &str); ROLE_ROWS] = [
    ("commander", "指挥长"),
    ("liaison", "联络员"),
    ("rescue", "抢险组"),
    ("transfer", "转移安置组"),
    ("logistics", "后勤保障组"),
    ("medical", "医疗救护组"),
];

pub fn routes() -> Table {
    let p = Serves::Records("plans");
    let v = Serves::Records("plan_versions");
    let i = Serves::Records("incidents");
    Table::new()
        .route(
            "/manage/plans",
            &["GET", "POST"],
            p,
            get(list_page).post(create),
        )
        .route("/manage/plans/{id}", &["GET"], p, get(show))
        .route(
            "/manage/plans/{id}/versions/new",
            &["GET", "POST"],
            p,
            get(version_page).post(create_version),
        )
        .route("/manage/plans/{id}/review", &["POST"], p, post(review))
        .route("/manage/plans/{id}/activate", &["POST"], p, post(activate))
        .route(
            "/manage/plan-versions/{id}/adopt",
            &["POST"],
            v,
            post(adopt),
        )
        .route(
            "/manage/plan-versions/{id}/reject",
            &["POST"],
            v,
            post(reject),
        )
        .route(
            "/manage/incidents/{id}/confirm",
            &["POST"],
            i,
            post(confirm),
        )
        .route(
            "/manage/incidents/{id}/decline",
            &["POST"],
            i,
            post(decline),
        )
        .route(
            "/manage/incidents/{id}/deactivate",
            &["POST"],
            i,
            post(deactivate),
        )
}

use crate::web::forms::local_minute as local;

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn incident_row(ui: &Ui, i: &Incident) -> Json {
    json!({
        "id": i.id, "title": i.title, "exercise": i.exercise,
        "status": t(ui, &format!("plans.istatus.{}", i.status)),
        "trigger": t(ui, &format!("plans.trigger.{}", i.trigger_kind)),
        "at": local(i.activated_at.unwrap_or(i.created_at)),
    })
}

// ---- the list ----------------------------------------------------------------------------------

async fn list_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let list = plans::list_plans(c, &caller, &PlanQuery::default(), now)?;
            let pending = activation::pending(c, &caller)?;
            let nodes = plans::plan_nodes(c, &caller)?;
            Ok((list, pending, nodes))
        })
        .await;
    let (list, pending, nodes) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    page_list(&ui, &s, &list, &pending, &nodes, None, &Fields::new())
}

fn page_list(
    ui: &Ui,
    s: &Staff,
    list: &[Plan],
    pending: &[Incident],
    nodes: &[(Uuid, String)],
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let rows: Vec<Json> = list
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "name": p.name, "node": p.node_name,
                "version": p.current_version, "due": local(p.review_due_at),
                "overdue": p.review_overdue, "drills": p.drills,
            })
        })
        .collect();
    let pending: Vec<Json> = pending.iter().map(|i| incident_row(ui, i)).collect();
    let nodes: Vec<Json> = nodes
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let status = if error.is_some() {
        error.map_or(StatusCode::OK, |e| e.status)
    } else {
        StatusCode::OK
    };
    render(
        ui,
        status,
        "plans.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => minijinja::Value::from_serialize(&rows),
            pending => minijinja::Value::from_serialize(&pending),
            nodes => minijinja::Value::from_serialize(&nodes),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

/// The field an error names (empty when none).
fn field_of(e: &ApiError) -> String {
    e.details["field"].as_str().unwrap_or_default().to_owned()
}

fn error_text(ui: &Ui, e: &ApiError) -> String {
    i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned)
}

async fn create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let input = PlanInput {
        node_id: text(&f, "node_id").and_then(|n| n.parse().ok()),
        name: text(&f, "name"),
        review_period_days: text(&f, "review_period_days").and_then(|n| n.parse().ok()),
        status: None,
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            plans::create_plan(tx, &caller, &input)
        })
        .await;
    match r {
        Ok(p) => see_other(&format!("/manage/plans/{}", p.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status != StatusCode::UNPROCESSABLE_ENTITY && e.status != StatusCode::CONFLICT {
                return error_page(&ui, &e);
            }
            let caller = s.caller().clone();
            let now = app.clock.now();
            let got = app
                .store
                .read(move |c, _| {
                    Ok((
                        plans::list_plans(c, &caller, &PlanQuery::default(), now)?,
                        activation::pending(c, &caller)?,
                        plans::plan_nodes(c, &caller)?,
                    ))
                })
                .await;
            match got {
                Ok((l, p, n)) => page_list(&ui, &s, &l, &p, &n, Some(&e), &f),
                Err(e2) => error_page(&ui, &ApiError::from(e2)),
            }
        }
    }
}

// ---- a plan ------------------------------------------------------------------------------------

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let now = app.clock.now();
    let got = app
        .store
        .read(move |c, _| {
            let p = plans::get_plan(c, &caller, id, now)?;
            let versions = plans::versions(c, &caller, id, now)?;
            let incidents = activation::of_plan(c, &caller, id)?;
            let holders = plans::holders(c, p.node_id, now)?;
            let shelters = plans::shelter_options(c, p.node_id)?;
            Ok((p, versions, incidents, holders, shelters))
        })
        .await;
    let (p, versions, incidents, holders, shelters) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let c = s.caller();
    let manage = c.has(Permission::ManagePlans);
    let vrows: Vec<Json> = versions
        .iter()
        .map(|v| {
            json!({
                "id": v.id, "version": v.version, "status": v.status,
                "status_text": t(&ui, &format!("plans.vstatus.{}", v.status)),
                "summary": v.change_summary, "at": local(v.created_at),
                "can_adopt": manage && matches!(v.status.as_str(), "draft" | "proposed"),
                "can_reject": manage && v.status == "proposed",
            })
        })
        .collect();
    let current = versions
        .iter()
        .find(|v| v.status == "current")
        .and_then(|v| v.plan_body().ok());
    let names: HashMap<Uuid, String> = holders.into_iter().map(|h| (h.user_id, h.label)).collect();
    let shelter_names: HashMap<Uuid, String> =
        shelters.into_iter().map(|f| (f.id, f.name)).collect();
    let body = current
        .as_ref()
        .map(|b| describe(&ui, b, &names, &shelter_names));
    let incidents: Vec<Json> = incidents.iter().map(|i| incident_row(&ui, i)).collect();
    render(
        &ui,
        StatusCode::OK,
        "plan.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            plan => minijinja::Value::from_serialize(json!({
                "id": p.id, "name": p.name, "node": p.node_name, "version": p.current_version,
                "due": local(p.review_due_at), "overdue": p.review_overdue, "drills": p.drills,
                "period": p.review_period_days,
            })),
            versions => minijinja::Value::from_serialize(&vrows),
            body => minijinja::Value::from_serialize(&body),
            incidents => minijinja::Value::from_serialize(&incidents),
            manage => manage,
            activate => c.has(Permission::ActivatePlans) && p.current_version > 0,
        },
    )
}

/// The version in force, in words.
fn describe(
    ui: &Ui,
    b: &PlanBody,
    holders: &HashMap<Uuid, String>,
    shelters: &HashMap<Uuid, String>,
) -> Json {
    let cat = |c: &str| {
        c.parse::<WarningCategory>()
            .map(|x| enum_label(ui, x.zh(), x.as_str()))
            .unwrap_or_else(|_| c.to_owned())
    };
    let triggers: Vec<String> = b
        .triggers
        .iter()
        .map(|tr| match tr {
            Trigger::Warning {
                min_level,
                categories,
            } => {
                let cats: Vec<String> = categories.iter().map(|c| cat(c)).collect();
                format!(
                    "{}：{}+ {}",
                    t(ui, "plans.trigger_warning"),
                    enum_label(ui, min_level.zh(), min_level.as_str()),
                    cats.join("、")
                )
            }
            Trigger::Alarm {
                device_types,
                rules,
            } => {
                let kinds: Vec<String> = device_types
                    .iter()
                    .map(|d| {
                        DeviceKind::parse(d)
                            .map(|k| enum_label(ui, k.zh(), k.as_str()))
                            .unwrap_or_else(|| d.clone())
                    })
                    .collect();
                format!(
                    "{}：{} {}",
                    t(ui, "plans.trigger_alarm"),
                    kinds.join("、"),
                    rules.join("、")
                )
            }
        })
        .collect();
    let role_name = |k: &str| {
        b.roles
            .iter()
            .find(|r| r.key == k)
            .map_or_else(|| k.to_owned(), |r| r.name.clone())
    };
    json!({
        "risks": b.risks.iter().map(|r| cat(r)).collect::<Vec<_>>().join("、"),
        "triggers": triggers,
        "roles": b.roles.iter().map(|r| json!({
            "name": r.name,
            "holder": r.user_id.map(|u| holders.get(&u).cloned().unwrap_or_else(|| "—".into()))
                .unwrap_or_else(|| t(ui, "plans.role_unfilled")),
        })).collect::<Vec<_>>(),
        "tasks": b.tasks.iter().map(|x| json!({
            "title": x.title, "role": role_name(&x.role), "minutes": x.due_minutes,
        })).collect::<Vec<_>>(),
        "shelters": b.shelters.iter().map(|s| shelters.get(s).cloned().unwrap_or_else(|| s.to_string())).collect::<Vec<_>>(),
        "volunteers": b.volunteers.as_ref().map(|v| format!("{}（{}）", v.count, v.skills.join("、"))),
        "welfare": b.welfare_checks,
        "welfare_minutes": b.welfare_escalate_minutes,
    })
}

/// After a step: to `to`; a refusal is the error page (in the page language).
async fn step<T: Send + 'static>(
    ui: &Ui,
    r: anxin_store::Result<T>,
    to: impl FnOnce(&T) -> String,
) -> Response {
    match r {
        Ok(x) => see_other(&to(&x)),
        Err(e) => error_page(ui, &ApiError::from(e)),
    }
}

async fn review(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| plans::review_plan(tx, &caller, id))
        .await;
    step(&ui, r, |p| format!("/manage/plans/{}", p.id)).await
}

async fn activate(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let opts = ActivateOpts {
        exercise: text(&f, "exercise").is_some(),
        title: text(&f, "title"),
    };
    let r = crate::ops::triggers::activate(&app, s.caller().clone(), s.write_ctx(), id, opts).await;
    step(&ui, r, |i| format!("/manage/incidents/{}", i.id)).await
}

async fn adopt(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| plans::adopt(tx, &caller, id))
        .await;
    step(&ui, r, |v| format!("/manage/plans/{}", v.plan_id)).await
}

async fn reject(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| plans::reject(tx, &caller, id))
        .await;
    step(&ui, r, |v| format!("/manage/plans/{}", v.plan_id)).await
}

async fn confirm(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let r = crate::ops::triggers::confirm(&app, s.caller().clone(), s.write_ctx(), id).await;
    step(&ui, r, |i| format!("/manage/incidents/{}", i.id)).await
}

async fn decline(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            activation::decline(tx, &caller, id)
        })
        .await;
    step(&ui, r, |_| "/manage/plans".to_owned()).await
}

/// Stand the plan down: the steps close in reverse order and the incident is closed; the
/// incident page then offers the review.
async fn deactivate(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            activation::deactivate(tx, &caller, id)
        })
        .await;
    step(&ui, r, |i| format!("/manage/incidents/{}", i.id)).await
}

// ---- the version form --------------------------------------------------------------------------

/// Form values from a body (the current version, or the defaults of a first one).
fn values_of(body: Option<&PlanBody>) -> Fields {
    let mut v = Fields::new();
    let Some(b) = body else {
        for (i, (k, n)) in DEFAULT_ROLES.iter().enumerate() {
            v.insert(format!("role{i}_key"), (*k).to_owned());
            if i < 2 {
                v.insert(format!("role{i}_name"), (*n).to_owned());
            }
        }
        v.insert("welfare".into(), "1".into());
        v.insert("welfare_minutes".into(), "30".into());
        v.insert("vol_count".into(), "0".into());
        v.insert("warn_level".into(), "orange".into());
        return v;
    };
    for r in &b.risks {
        v.insert(format!("risk_{r}"), "1".into());
    }
    for tr in &b.triggers {
        match tr {
            Trigger::Warning {
                min_level,
                categories,
            } => {
                v.insert("warn_on".into(), "1".into());
                v.insert("warn_level".into(), min_level.as_str().into());
                for c in categories {
                    v.insert(format!("wcat_{c}"), "1".into());
                }
            }
            Trigger::Alarm {
                device_types,
                rules,
            } => {
                v.insert("alarm_on".into(), "1".into());
                for d in device_types {
                    v.insert(format!("dev_{d}"), "1".into());
                }
                v.insert("alarm_rules".into(), rules.join(", "));
            }
        }
    }
    // Role slots: the version's roles first, then the unused defaults.
    let mut keys: Vec<String> = b.roles.iter().map(|r| r.key.clone()).collect();
    for (k, _) in DEFAULT_ROLES {
        if keys.len() < ROLE_ROWS && !keys.iter().any(|x| x == k) {
            keys.push(k.to_owned());
        }
    }
    for (i, k) in keys.iter().take(ROLE_ROWS).enumerate() {
        v.insert(format!("role{i}_key"), k.clone());
        if let Some(r) = b.roles.iter().find(|r| &r.key == k) {
            v.insert(format!("role{i}_name"), r.name.clone());
            if let Some(u) = r.user_id {
                v.insert(format!("role{i}_user"), u.to_string());
            }
        }
    }
    for (i, x) in b.tasks.iter().take(TASK_ROWS).enumerate() {
        v.insert(format!("task{i}_title"), x.title.clone());
        v.insert(format!("task{i}_role"), x.role.clone());
        v.insert(format!("task{i}_minutes"), x.due_minutes.to_string());
    }
    for s in &b.shelters {
        v.insert(format!("shelter_{s}"), "1".into());
    }
    let (count, skills) = b
        .volunteers
        .as_ref()
        .map_or((0, String::new()), |c| (c.count, c.skills.join(", ")));
    v.insert("vol_count".into(), count.to_string());
    v.insert("vol_skills".into(), skills);
    if b.welfare_checks {
        v.insert("welfare".into(), "1".into());
    }
    v.insert(
        "welfare_minutes".into(),
        b.welfare_escalate_minutes.to_string(),
    );
    v
}

fn list_of(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split([',', '，', '、'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A number field; not a number is refused naming the form field.
fn number(f: &Fields, k: &str, default: i64) -> Result<i64, ApiError> {
    match text(f, k) {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("value.number", k, "not a number")),
    }
}

/// The form as a body (JSON in the shape of `PlanBody`) and, for each body path prefix, the
/// form field it came from (to show an error where it belongs).
fn body_of(f: &Fields, shelters: &[Uuid]) -> Result<(Json, Vec<(String, String)>), ApiError> {
    let mut map: Vec<(String, String)> = vec![
        ("risks".into(), "risks".into()),
        ("triggers".into(), "triggers".into()),
        ("shelters".into(), "shelters".into()),
        ("volunteers".into(), "vol_count".into()),
        ("welfare_escalate_minutes".into(), "welfare_minutes".into()),
    ];
    let risks: Vec<&str> = WarningCategory::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| text(f, &format!("risk_{c}")).is_some())
        .collect();
    let mut triggers = Vec::new();
    if text(f, "warn_on").is_some() {
        let cats: Vec<&str> = WarningCategory::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| text(f, &format!("wcat_{c}")).is_some())
            .collect();
        triggers.push(json!({
            "kind": "warning",
            "min_level": text(f, "warn_level").unwrap_or_else(|| "red".into()),
            "categories": cats,
        }));
    }
    if text(f, "alarm_on").is_some() {
        let kinds: Vec<&str> = DeviceKind::ALL
            .iter()
            .map(|k| k.as_str())
            .filter(|k| text(f, &format!("dev_{k}")).is_some())
            .collect();
        triggers.push(json!({
            "kind": "alarm", "device_types": kinds, "rules": list_of(text(f, "alarm_rules")),
        }));
    }
    let mut roles = Vec::new();
    for i in 0..ROLE_ROWS {
        let Some(name) = text(f, &format!("role{i}_name")) else {
            continue;
        };
        let key = text(f, &format!("role{i}_key")).unwrap_or_else(|| format!("role{}", i + 1));
        let user = text(f, &format!("role{i}_user"))
            .map(|u| {
                u.parse::<Uuid>().map_err(|_| {
                    ApiError::invalid("value.invalid", &format!("role{i}_user"), "not an account")
                })
            })
            .transpose()?;
        let n = roles.len();
        map.push((format!("roles[{n}].user_id"), format!("role{i}_user")));
        map.push((format!("roles[{n}]"), format!("role{i}_name")));
        roles.push(json!({ "key": key, "name": name, "user_id": user }));
    }
    let mut tasks = Vec::new();
    for i in 0..TASK_ROWS {
        let Some(title) = text(f, &format!("task{i}_title")) else {
            continue;
        };
        let minutes = number(f, &format!("task{i}_minutes"), 60)?;
        let n = tasks.len();
        map.push((format!("tasks[{n}].role"), format!("task{i}_role")));
        map.push((
            format!("tasks[{n}].due_minutes"),
            format!("task{i}_minutes"),
        ));
        map.push((format!("tasks[{n}]"), format!("task{i}_title")));
        tasks.push(json!({
            "title": title,
            "role": text(f, &format!("task{i}_role")).unwrap_or_default(),
            "due_minutes": minutes.clamp(0, i64::from(u32::MAX)),
        }));
    }
    let picked: Vec<Uuid> = shelters
        .iter()
        .copied()
        .filter(|s| text(f, &format!("shelter_{s}")).is_some())
        .collect();
    let count = number(f, "vol_count", 0)?;
    let volunteers = (count > 0).then(|| {
        json!({ "count": count.clamp(0, i64::from(u32::MAX)), "skills": list_of(text(f, "vol_skills")) })
    });
    let minutes = number(f, "welfare_minutes", 30)?;
    Ok((
        json!({
            "risks": risks,
            "triggers": triggers,
            "roles": roles,
            "tasks": tasks,
            "shelters": picked,
            "volunteers": volunteers,
            "welfare_checks": text(f, "welfare").is_some(),
            "welfare_escalate_minutes": minutes.clamp(0, i64::from(u32::MAX)),
        }),
        map,
    ))
}

/// The form field a body error belongs to: the longest mapped prefix of its path.
fn form_field(map: &[(String, String)], field: &str) -> String {
    map.iter()
        .filter(|(prefix, _)| field.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or_else(|| field.to_owned(), |(_, f)| f.clone())
}

struct FormData {
    plan: Plan,
    holders: Vec<plans::Holder>,
    shelters: Vec<plans::ShelterOption>,
    current: Option<PlanBody>,
}

async fn form_data(app: &App, s: &Staff, id: Uuid) -> Result<FormData, ApiError> {
    let caller = s.caller().clone();
    let now = app.clock.now();
    app.store
        .read(move |c, _| {
            let plan = plans::get_plan(c, &caller, id, now)?;
            let current = plans::current_version(c, &plan)?
                .map(|v| v.plan_body())
                .transpose()?;
            Ok(FormData {
                holders: plans::holders(c, plan.node_id, now)?,
                shelters: plans::shelter_options(c, plan.node_id)?,
                plan,
                current,
            })
        })
        .await
        .map_err(ApiError::from)
}

fn version_form(
    ui: &Ui,
    s: &Staff,
    d: &FormData,
    values: &Fields,
    error: Option<(&ApiError, String)>,
) -> Response {
    let opts = |all: Vec<(String, String)>, prefix: &str| -> Vec<Json> {
        all.into_iter()
            .map(|(v, l)| json!({ "value": v, "label": l, "name": format!("{prefix}{v}") }))
            .collect()
    };
    let cats = opts(
        WarningCategory::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), enum_label(ui, c.zh(), c.as_str())))
            .collect(),
        "",
    );
    let levels: Vec<Json> = WarningLevel::ALL
        .iter()
        .map(|l| json!({ "value": l.as_str(), "label": enum_label(ui, l.zh(), l.as_str()) }))
        .collect();
    let devices = opts(
        DeviceKind::ALL
            .iter()
            .map(|k| (k.as_str().to_owned(), enum_label(ui, k.zh(), k.as_str())))
            .collect(),
        "dev_",
    );
    let role_rows: Vec<Json> = (0..ROLE_ROWS)
        .map(|i| {
            let key = values
                .get(&format!("role{i}_key"))
                .cloned()
                .unwrap_or_else(|| DEFAULT_ROLES[i].0.to_owned());
            json!({ "i": i, "key": key })
        })
        .collect();
    let role_choices: Vec<Json> = role_rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r["key"].as_str().unwrap_or_default().to_owned();
            let label = values
                .get(&format!("role{i}_name"))
                .filter(|n| !n.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| {
                    DEFAULT_ROLES
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map_or_else(|| key.clone(), |(_, n)| (*n).to_owned())
                });
            json!({ "value": key, "label": label })
        })
        .collect();
    let holders: Vec<Json> = d
        .holders
        .iter()
        .map(|h| json!({ "value": h.user_id, "label": h.label }))
        .collect();
    let shelters: Vec<Json> = d
        .shelters
        .iter()
        .map(|f| {
            json!({
                "name": format!("shelter_{}", f.id), "label": f.name,
                "capacity": f.capacity, "status": f.status,
                "kind": enum_label(ui, f.kind.parse::<anxin_domain::FacilityKind>().map(|k| k.zh()).unwrap_or(""), &f.kind),
            })
        })
        .collect();
    let (status, err_text, err_field, err_code) = match error {
        Some((e, field)) => (e.status, Some(error_text(ui, e)), Some(field), Some(e.code)),
        None => (StatusCode::OK, None, None, None),
    };
    render(
        ui,
        status,
        "plan_version.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            plan => minijinja::Value::from_serialize(json!({ "id": d.plan.id, "name": d.plan.name, "node": d.plan.node_name })),
            values => minijinja::Value::from_serialize(values),
            cats => minijinja::Value::from_serialize(&cats),
            levels => minijinja::Value::from_serialize(&levels),
            devices => minijinja::Value::from_serialize(&devices),
            role_rows => minijinja::Value::from_serialize(&role_rows),
            role_choices => minijinja::Value::from_serialize(&role_choices),
            task_rows => (0..TASK_ROWS).collect::<Vec<_>>(),
            holders => minijinja::Value::from_serialize(&holders),
            shelters => minijinja::Value::from_serialize(&shelters),
            error => err_text,
            error_field => err_field,
            error_code => err_code,
        },
    )
}

async fn version_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match form_data(&app, &s, id).await {
        Ok(d) => {
            let v = values_of(d.current.as_ref());
            version_form(&ui, &s, &d, &v, None)
        }
        Err(e) => error_page(&ui, &e),
    }
}

async fn create_version(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    // The plan first: out of reach is "not found" whatever the form says.
    let d = match form_data(&app, &s, id).await {
        Ok(d) => d,
        Err(e) => return error_page(&ui, &e),
    };
    let ids: Vec<Uuid> = d.shelters.iter().map(|x| x.id).collect();
    let (body, map) = match body_of(&f, &ids) {
        Ok(x) => x,
        Err(e) => {
            let field = field_of(&e);
            return version_form(&ui, &s, &d, &f, Some((&e, field)));
        }
    };
    let input = VersionInput {
        body: Some(body),
        change_summary: text(&f, "change_summary"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            plans::create_version(tx, &caller, id, &input)
        })
        .await;
    match r {
        Ok(_) => see_other(&format!("/manage/plans/{id}")),
        Err(e) => {
            let e = ApiError::from(e);
            if e.status != StatusCode::UNPROCESSABLE_ENTITY && e.status != StatusCode::CONFLICT {
                return error_page(&ui, &e);
            }
            let field = form_field(&map, &field_of(&e));
            version_form(&ui, &s, &d, &f, Some((&e, field)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_a_valid_body_and_back() {
        let shelter = Uuid::now_v7();
        let user = Uuid::now_v7();
        let f = fields(&[
            ("risk_flood", "1"),
            ("warn_on", "1"),
            ("warn_level", "red"),
            ("wcat_flood", "1"),
            ("role0_key", "commander"),
            ("role0_name", "指挥长"),
            ("role0_user", &user.to_string()),
            ("role1_key", "liaison"),
            ("role1_name", ""),
            ("task3_title", "转移低洼住户"),
            ("task3_role", "commander"),
            ("task3_minutes", "30"),
            (&format!("shelter_{shelter}"), "1"),
            ("vol_count", "5"),
            ("vol_skills", "急救，驾驶"),
            ("welfare", "1"),
            ("welfare_minutes", "20"),
        ]);
        let (body, map) = body_of(&f, &[shelter, Uuid::now_v7()]).unwrap();
        let b = plans::parse_body(&body).unwrap();
        assert_eq!(b.risks, vec!["flood"]);
        assert_eq!(b.roles.len(), 1);
        assert_eq!(b.role_holder("commander"), Some(user));
        assert_eq!(b.tasks[0].due_minutes, 30);
        assert_eq!(b.shelters, vec![shelter]);
        assert_eq!(b.volunteers.as_ref().unwrap().skills, vec!["急救", "驾驶"]);
        assert!(b.welfare_checks && b.matches_warning(WarningLevel::Red, "flood"));
        // Errors land on the row they came from.
        assert_eq!(form_field(&map, "tasks[0].role"), "task3_role");
        assert_eq!(form_field(&map, "roles[0].user_id"), "role0_user");
        assert_eq!(form_field(&map, "shelters[0]"), "shelters");
        // And back: the form shows what the body says.
        let v = values_of(Some(&b));
        assert_eq!(
            v.get("task0_title").map(String::as_str),
            Some("转移低洼住户")
        );
        assert_eq!(v.get("warn_level").map(String::as_str), Some("red"));
        assert!(v.contains_key(&format!("shelter_{shelter}")));
        let (again, _) = body_of(&v, &[shelter]).unwrap();
        assert_eq!(plans::parse_body(&again).unwrap(), b);
    }

    #[test]
    fn a_bad_number_names_its_field() {
        let f = fields(&[("task0_title", "x"), ("task0_minutes", "半小时")]);
        let e = body_of(&f, &[]).unwrap_err();
        assert_eq!(field_of(&e), "task0_minutes");
    }
}
