//! Pages for volunteers, call-outs and welfare checks (owner: volunteers & welfare).
//!
//! Management end: the volunteer registry (list filtered by skill and availability, detail with
//! call-outs and hours, create and edit forms), and an incident's 不漏一人 board
//! (`/manage/incidents/{id}/welfare`: per compound how many remain of how many, and the list; it
//! refreshes itself every few seconds with htmx and works without script on reload), where
//! whoever may record a check can do it.
//!
//! Volunteer end (mobile-first; volunteers sign in with a phone code like residents):
//! `/resident/callouts` 「我的召集」 — accept or decline, check in and out, and the welfare checks
//! of their accepted incidents with big 平安 / 需要帮助 / 已转移 buttons. Every form posts with the
//! `_csrf` field and works without script; every store call takes the caller.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::roles::Permission;
use anxin_domain::SHANGHAI;
use anxin_store::ops::volunteers::{
    self as vol, CalloutQuery, Certificate, CheckIn, ManualCallout, Volunteer, VolunteerInput,
    VolunteerQuery, AVAILABILITY, KINDS,
};
use anxin_store::ops::welfare::{self, CheckQuery, RecordInput};

use crate::app::App;
use crate::http::guard::{AuthError, Authenticated, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{
    self, answer, fact, form_page, opts, text, Field, Fields, FormPage, RecordPage, Section,
};
use crate::web::{error_page, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let v = Serves::Records("volunteers");
    let c = Serves::Records("callouts");
    let w = Serves::Records("welfare_checks");
    let i = Serves::Records("incidents");
    Table::new()
        .route("/manage/volunteers", &["GET"], v, get(list_page))
        .route(
            "/manage/nodes/{id}/volunteers/new",
            &["GET", "POST"],
            Serves::Records("nodes"),
            get(new_page).post(create),
        )
        .route("/manage/volunteers/{id}", &["GET"], v, get(show))
        .route(
            "/manage/volunteers/{id}/edit",
            &["GET", "POST"],
            v,
            get(edit_page).post(edit),
        )
        .route(
            "/manage/incidents/{id}/welfare",
            &["GET"],
            i,
            get(board_page),
        )
        .route(
            "/manage/incidents/{id}/callouts",
            &["GET", "POST"],
            i,
            get(callouts_page).post(hand_call_out),
        )
        .route(
            "/manage/welfare/{id}/record",
            &["POST"],
            w,
            post(staff_record),
        )
        .route(
            "/resident/callouts",
            &["GET"],
            Serves::Own,
            get(my_callouts),
        )
        .route(
            "/resident/callouts/{id}/accept",
            &["POST"],
            c,
            post(my_accept),
        )
        .route(
            "/resident/callouts/{id}/decline",
            &["POST"],
            c,
            post(my_decline),
        )
        .route(
            "/resident/callouts/{id}/check-in",
            &["POST"],
            c,
            post(my_check_in),
        )
        .route(
            "/resident/callouts/{id}/check-out",
            &["POST"],
            c,
            post(my_check_out),
        )
        .route(
            "/resident/welfare/{id}/record",
            &["POST"],
            w,
            post(my_record),
        )
}

macro_rules! guard {
    ($ui:expr, $s:expr) => {
        match $s {
            Ok(s) => s,
            Err(e) => return refused(&$ui, e),
        }
    };
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

/// Asia/Shanghai, to the minute.
fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&SHANGHAI).format("%m-%d %H:%M").to_string()
}

fn hours(minutes: i64) -> String {
    format!("{}:{:02}", minutes / 60, minutes % 60)
}

// ---- the registry ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    /// The search box: a skill.
    q: Option<String>,
    availability: Option<String>,
    /// "Register in": go to that community's form.
    new_in: Option<Uuid>,
}

async fn list_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = guard!(ui, s);
    let q = q.map(|Query(q)| q).unwrap_or_default();
    if let Some(node) = q.new_in {
        return see_other(&format!("/manage/nodes/{node}/volunteers/new"));
    }
    let caller = s.caller().clone();
    let query = VolunteerQuery {
        skill: q.q.clone().filter(|x| !x.trim().is_empty()),
        availability: q.availability.clone().filter(|x| !x.is_empty()),
        node_id: None,
    };
    let list = match app
        .store
        .read(move |c, _| {
            Ok((
                vol::list_volunteers(c, &caller, &query)?,
                vol::home_communities(c, &caller)?,
            ))
        })
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let (list, communities) = list;
    let communities: Vec<_> = communities
        .into_iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let rows: Vec<_> = list
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "href": format!("/manage/volunteers/{}", v.id),
                "cells": [
                    v.name_mask,
                    t(&ui, &format!("vol.kind.{}", v.kind)),
                    v.community_name,
                    v.skills.join("、"),
                    t(&ui, &format!("vol.availability.{}", v.availability)),
                    v.phone_mask.clone().unwrap_or_default(),
                    hours(v.total_minutes),
                ],
            })
        })
        .collect();
    let cols: Vec<String> = [
        "vol.name",
        "vol.kind",
        "vol.community",
        "vol.skills",
        "vol.availability",
        "vol.phone",
        "vol.hours",
    ]
    .iter()
    .map(|k| t(&ui, k))
    .collect();
    render(
        &ui,
        StatusCode::OK,
        "volunteers.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            q => q.q.clone().unwrap_or_default(),
            availability => q.availability.clone().unwrap_or_default(),
            availabilities => opts(&ui, "vol.availability", AVAILABILITY),
            communities => communities,
            total_text => t(&ui, "vol.count").replace("{n}", &list.len().to_string()),
            rows => minijinja::Value::from_serialize(&rows),
            cols => cols,
        },
    )
}

fn fields(ui: &Ui, editing: bool) -> Vec<Field> {
    let mut name = Field::text(ui, "name", "vol.name");
    let mut phone = Field::new(ui, "phone", "vol.phone", "tel");
    if editing {
        name = name.hint(ui, "vol.keep_hint");
        phone = phone.hint(ui, "vol.keep_hint");
    } else {
        name = name.required();
    }
    vec![
        Field::select(ui, "kind", "vol.kind", opts(ui, "vol.kind", KINDS)).required(),
        name,
        phone,
        Field::text(ui, "skills", "vol.skills").hint(ui, "vol.skills_hint"),
        Field::new(ui, "certificates", "vol.certificates", "textarea")
            .hint(ui, "vol.certificates_hint"),
        Field::select(
            ui,
            "availability",
            "vol.availability",
            opts(ui, "vol.availability", AVAILABILITY),
        )
        .required(),
        Field::text(ui, "user_id", "vol.user_id").hint(ui, "vol.user_id_hint"),
        Field::new(ui, "notes", "vol.notes", "textarea"),
    ]
}

/// Form fields → the store's input (the store validates the values).
fn input_of(f: &Fields, community: Option<Uuid>) -> Result<VolunteerInput, ApiError> {
    let skills = text(f, "skills").map(|s| {
        s.split([',', '，', '、', ';', '；'])
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    });
    let certificates = match f.get("certificates") {
        None => None,
        Some(raw) => {
            let mut out = Vec::new();
            for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let mut parts = line.split(['|', '｜']).map(str::trim);
                let name = parts.next().unwrap_or_default().to_owned();
                let number = parts.next().unwrap_or_default().to_owned();
                let valid_until = match parts.next().filter(|s| !s.is_empty()) {
                    Some(d) => Some(d.parse().map_err(|_| {
                        ApiError::from(anxin_store::StoreError::invalid(
                            "value.invalid",
                            "certificates",
                        ))
                    })?),
                    None => None,
                };
                out.push(Certificate {
                    name,
                    number,
                    valid_until,
                });
            }
            Some(out)
        }
    };
    Ok(VolunteerInput {
        kind: text(f, "kind"),
        community_id: community,
        user_id: forms::uuid(f, "user_id")?,
        unlink_user: false,
        name: text(f, "name"),
        phone: text(f, "phone"),
        skills,
        certificates,
        availability: text(f, "availability"),
        notes: f.get("notes").map(|s| s.trim().to_owned()),
    })
}

fn values_of(v: &Volunteer) -> Fields {
    let mut f = Fields::new();
    f.insert("kind".into(), v.kind.clone());
    f.insert("skills".into(), v.skills.join("，"));
    f.insert(
        "certificates".into(),
        v.certificates
            .iter()
            .map(|c| {
                format!(
                    "{}|{}|{}",
                    c.name,
                    c.number,
                    c.valid_until.map(|d| d.to_string()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    f.insert("availability".into(), v.availability.clone());
    f.insert(
        "user_id".into(),
        v.user_id.map(|u| u.to_string()).unwrap_or_default(),
    );
    f.insert("notes".into(), v.notes.clone());
    f
}

async fn new_form(ui: &Ui, app: &App, s: &Staff, node: Uuid) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let name = app
        .store
        .read(move |c, _| {
            if !caller
                .reach(Permission::ManageVolunteers)
                .contains_node(c, node)?
            {
                return Err(anxin_store::StoreError::NotFound);
            }
            c.query_one(
                "SELECT name FROM nodes WHERE id = $1",
                &anxin_store::params![node],
            )?
            .ok_or(anxin_store::StoreError::NotFound)?
            .get::<String>("name")
        })
        .await?;
    Ok(FormPage {
        title: format!("{}：{name}", t(ui, "vol.new")),
        action: format!("/manage/nodes/{node}/volunteers/new"),
        cancel: "/manage/volunteers".into(),
        fields: fields(ui, false),
    })
}

async fn new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    let mut v = Fields::new();
    v.insert("kind".into(), "volunteer".into());
    v.insert("availability".into(), "available".into());
    match new_form(&ui, &app, &s, node).await {
        Ok(p) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let r = match input_of(&f, Some(node)) {
        Ok(i) => app
            .store
            .write(s.write_ctx(), move |tx| {
                vol::create_volunteer(tx, &caller, &i)
            })
            .await
            .map(|x| format!("/manage/volunteers/{}", x.id))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    answer(&ui, &s, r, new_form(&ui, &app, &s, node), &f).await
}

async fn load(app: &App, s: &Staff, id: Uuid) -> Result<Volunteer, ApiError> {
    let caller = s.caller().clone();
    Ok(app
        .store
        .read(move |c, _| vol::get_volunteer(c, &caller, id))
        .await?)
}

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    let v = match load(&app, &s, id).await {
        Ok(v) => v,
        Err(e) => return error_page(&ui, &e),
    };
    let caller = s.caller().clone();
    let callouts = app
        .store
        .read(move |c, _| {
            vol::list_callouts(
                c,
                &caller,
                &CalloutQuery {
                    volunteer_id: Some(id),
                    ..CalloutQuery::default()
                },
            )
        })
        .await
        .unwrap_or_default();
    let mut sec = Section::new(
        &ui,
        "callouts",
        "vol.callouts",
        &["vol.incident", "vol.status", "vol.called_at", "vol.hours"],
    );
    for c in &callouts {
        sec.row(
            None,
            vec![
                c.incident_title.clone(),
                t(&ui, &format!("vol.callout.{}", c.status)),
                local(c.called_at),
                hours(c.minutes),
            ],
        );
    }
    let certs = v
        .certificates
        .iter()
        .map(|c| match c.valid_until {
            Some(d) => format!("{}（{}）", c.name, d),
            None => c.name.clone(),
        })
        .collect::<Vec<_>>()
        .join("、");
    forms::record_page(
        &ui,
        &s,
        RecordPage {
            title: v.name_mask.clone(),
            tag: t(&ui, &format!("vol.kind.{}", v.kind)),
            facts: vec![
                fact(&ui, "vol.community", v.community_name.clone()),
                fact(&ui, "vol.phone", v.phone_mask.clone().unwrap_or_default()),
                fact(&ui, "vol.skills", v.skills.join("、")),
                fact(&ui, "vol.certificates", certs),
                fact(
                    &ui,
                    "vol.availability",
                    t(&ui, &format!("vol.availability.{}", v.availability)),
                ),
                fact(&ui, "vol.hours", hours(v.total_minutes)),
                fact(&ui, "vol.notes", v.notes.clone()),
            ],
            actions: vec![forms::action(
                &ui,
                "rec.edit",
                format!("/manage/volunteers/{id}/edit"),
            )],
            sections: vec![sec],
        },
    )
}

async fn edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let v = load(app, s, id).await?;
    Ok((
        FormPage {
            title: format!("{}：{}", t(ui, "vol.edit"), v.name_mask),
            action: format!("/manage/volunteers/{id}/edit"),
            cancel: format!("/manage/volunteers/{id}"),
            fields: fields(ui, true),
        },
        values_of(&v),
    ))
}

async fn edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    match edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let r = match input_of(&f, None) {
        Ok(i) => app
            .store
            .write(s.write_ctx(), move |tx| {
                vol::update_volunteer(tx, &caller, id, &i)
            })
            .await
            .map(|_| format!("/manage/volunteers/{id}"))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let form = async { edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

// ---- an incident's call-outs ----------------------------------------------------------------

async fn callouts_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let inc = anxin_store::ops::get_incident(c, &caller, id)?;
            let list = vol::incident_callouts(c, &caller, id)?;
            let called: std::collections::HashSet<Uuid> =
                list.callouts.iter().map(|x| x.volunteer_id).collect();
            let candidates: Vec<Volunteer> = if caller.has(Permission::ManageVolunteers) {
                vol::list_volunteers(c, &caller, &VolunteerQuery::default())?
                    .into_iter()
                    .filter(|v| v.availability != "unavailable" && !called.contains(&v.id))
                    .collect()
            } else {
                Vec::new()
            };
            Ok((inc, list, candidates))
        })
        .await;
    let (inc, list, candidates) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = list
        .callouts
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.volunteer_name_mask,
                "status_text": t(&ui, &format!("vol.callout.{}", c.status)),
                "called_at": local(c.called_at),
                "place": c.place.clone().unwrap_or_default(),
                "hours": hours(c.minutes),
            })
        })
        .collect();
    let options: Vec<_> = candidates
        .iter()
        .map(|v| {
            json!({
                "id": v.id,
                "label": format!("{}（{}；{}）", v.name_mask, v.community_name, v.skills.join("、")),
            })
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "volunteer_callouts.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            incident => json!({ "id": inc.id, "title": inc.title, "active": inc.status == "active" }),
            counts => json!({
                "called": list.called, "accepted": list.accepted, "declined": list.declined,
                "ended": list.ended, "checked_in": list.checked_in,
                "hours": hours(list.total_minutes),
            }),
            rows => rows,
            options => options,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct HandCallForm {
    #[serde(default)]
    volunteer_id: Option<String>,
}

async fn hand_call_out(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<HandCallForm>,
) -> Response {
    let s = guard!(ui, s);
    let volunteer_id = match form_id(f.volunteer_id.as_deref(), "volunteer_id") {
        Ok(Some(v)) => v,
        Ok(None) => {
            return error_page(
                &ui,
                &ApiError::from(anxin_store::StoreError::invalid(
                    "value.required",
                    "volunteer_id",
                )),
            )
        }
        Err(e) => return error_page(&ui, &e),
    };
    let caller = s.caller().clone();
    let m = ManualCallout {
        incident_id: id,
        volunteer_id,
    };
    match app
        .store
        .write(s.write_ctx(), move |tx| vol::call_out(tx, &caller, &m))
        .await
    {
        Ok(c) => {
            if let Err(e) = crate::ops::welfare::notify_callout(&app, c.id).await {
                tracing::warn!(callout = %c.id, error = %format!("{e:#}"), "call-out not notified");
            }
            see_other(&format!("/manage/incidents/{id}/callouts"))
        }
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

// ---- the board ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct BoardQuery {
    status: Option<String>,
    compound_id: Option<Uuid>,
}

/// Rows the board page lists at most (the counts are always complete; filters narrow the list).
const BOARD_ROWS: usize = 500;

fn check_row(ui: &Ui, c: &welfare::WelfareCheck) -> serde_json::Value {
    json!({
        "id": c.id,
        "name": c.name_mask,
        "compound": c.compound_name.clone().unwrap_or_else(|| t(ui, "welfare.no_compound")),
        "address": c.address,
        "assignee": c.assignee_name.clone().unwrap_or_else(|| t(ui, &format!("welfare.level.{}", c.level))),
        "status": c.status,
        "status_text": t(ui, &format!("welfare.status.{}", c.status)),
        "level_text": t(ui, &format!("welfare.level.{}", c.level)),
        "due": local(c.due_at),
        "open": c.status == "open",
    })
}

async fn board_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    q: Result<Query<BoardQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = guard!(ui, s);
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let caller = s.caller().clone();
    let status = q.status.clone().filter(|x| !x.is_empty());
    let compound = q.compound_id;
    let query = CheckQuery {
        status: status.clone(),
        compound_id: compound,
        ..CheckQuery::default()
    };
    let got = app
        .store
        .read(move |c, _| {
            let inc = anxin_store::ops::get_incident(c, &caller, id)?;
            let board = welfare::board(c, &caller, id)?;
            let list = welfare::incident_checks(c, &caller, id, &query)?;
            Ok((inc, board, list))
        })
        .await;
    let (inc, board, list) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let listed = list.len();
    let rows: Vec<_> = list
        .iter()
        .take(BOARD_ROWS)
        .map(|c| check_row(&ui, c))
        .collect();
    let more = (listed > BOARD_ROWS).then(|| {
        t(&ui, "welfare.more")
            .replace("{n}", &BOARD_ROWS.to_string())
            .replace("{total}", &listed.to_string())
    });
    let compounds: Vec<_> = board
        .compounds
        .iter()
        .map(|l| {
            json!({
                "id": l.compound_id,
                "name": l.compound_name.clone().unwrap_or_else(|| t(&ui, "welfare.no_compound")),
                "remaining": l.remaining,
                "total": l.total,
                "done": l.total - l.remaining,
            })
        })
        .collect();
    let statuses: Vec<_> = ["open", "safe", "need_help", "moved", "closed_unchecked"]
        .iter()
        .map(|v| json!({ "value": v, "label": t(&ui, &format!("welfare.status.{v}")) }))
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "welfare.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            incident => json!({ "id": inc.id, "title": inc.title, "exercise": inc.exercise,
                                "active": inc.status == "active" }),
            board => minijinja::Value::from_serialize(&board),
            compounds => compounds,
            rows => minijinja::Value::from_serialize(&rows),
            status => status.unwrap_or_default(),
            compound_id => compound.map(|c| c.to_string()).unwrap_or_default(),
            more => more,
            statuses => statuses,
            can_record => s.caller().has(Permission::RecordWelfare),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct RecordForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    place: Option<String>,
    #[serde(default)]
    facility_id: Option<String>,
    #[serde(default)]
    note: Option<String>,
    /// Where to go back to (a local path).
    #[serde(default)]
    next: Option<String>,
}

fn record_input(f: &RecordForm) -> Result<RecordInput, ApiError> {
    let facility_id = form_id(f.facility_id.as_deref(), "facility_id")?;
    Ok(RecordInput {
        outcome: f.outcome.clone(),
        facility_id,
        place: f.place.clone(),
        note: f.note.clone(),
    })
}

async fn do_record(
    app: &App,
    auth: &crate::http::guard::Session,
    id: Uuid,
    f: &RecordForm,
) -> Result<welfare::WelfareCheck, ApiError> {
    let input = record_input(f)?;
    let caller = auth.caller().clone();
    Ok(app
        .store
        .write(auth.write_ctx(), move |tx| {
            welfare::record(tx, &caller, id, &input)
        })
        .await?)
}

async fn staff_record(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<RecordForm>,
) -> Response {
    let s = guard!(ui, s);
    match do_record(&app, &s, id, &f).await {
        Ok(c) => {
            see_other(&crate::web::local_path(Some(f.next.as_deref().unwrap_or(
                &format!("/manage/incidents/{}/welfare", c.incident_id),
            ))))
        }
        Err(e) => error_page(&ui, &e),
    }
}

// ---- the volunteer's end --------------------------------------------------------------------

async fn my_callouts(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let callouts = vol::list_callouts(
                c,
                &caller,
                &CalloutQuery {
                    mine: true,
                    ..CalloutQuery::default()
                },
            )?;
            let checks = welfare::list_checks(
                c,
                &caller,
                &CheckQuery {
                    mine: true,
                    ..CheckQuery::default()
                },
            )?;
            let mut shelters = std::collections::HashMap::new();
            for i in callouts
                .iter()
                .filter(|c| c.status == "accepted")
                .map(|c| c.incident_id)
                .chain(checks.iter().map(|w| w.incident_id))
            {
                if let std::collections::hash_map::Entry::Vacant(e) = shelters.entry(i) {
                    e.insert(vol::open_shelters(c, i)?);
                }
            }
            Ok((callouts, checks, shelters))
        })
        .await;
    let (callouts, checks, shelters) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let cards: Vec<_> = callouts
        .iter()
        .map(|c| {
            let active = c.incident_status == "active";
            json!({
                "id": c.id,
                "title": c.incident_title,
                "exercise": c.exercise,
                "status": c.status,
                "status_text": t(&ui, &format!("vol.callout.{}", c.status)),
                "called_at": local(c.called_at),
                "hours": hours(c.minutes),
                "place": c.place,
                "checked_in": c.checked_in_at.is_some(),
                "can_answer": active && c.status == "called",
                "can_decline": active && c.status == "accepted" && c.checked_in_at.is_none(),
                "can_check_in": active && c.status == "accepted" && c.checked_in_at.is_none(),
                "can_check_out": c.checked_in_at.is_some(),
                "shelters": shelters.get(&c.incident_id).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let rows: Vec<_> = checks
        .iter()
        .map(|c| {
            let mut r = check_row(&ui, c);
            r["shelters"] = json!(shelters.get(&c.incident_id).cloned().unwrap_or_default());
            r
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "volunteer_home.html",
        context! {
            csrf => s.csrf().unwrap_or_default(),
            callouts => cards,
            checks => rows,
        },
    )
}

async fn my_answer(app: &App, s: &Authenticated, id: Uuid, yes: bool) -> Result<(), ApiError> {
    let caller = s.caller().clone();
    app.store
        .write(s.write_ctx(), move |tx| vol::respond(tx, &caller, id, yes))
        .await?;
    Ok(())
}

fn back(ui: &Ui, r: Result<(), ApiError>) -> Response {
    match r {
        Ok(()) => see_other("/resident/callouts"),
        Err(e) => error_page(ui, &e),
    }
}

async fn my_accept(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    back(&ui, my_answer(&app, &s, id, true).await)
}

async fn my_decline(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    back(&ui, my_answer(&app, &s, id, false).await)
}

#[derive(Debug, Default, Deserialize)]
struct CheckInForm {
    #[serde(default)]
    place: Option<String>,
    #[serde(default)]
    facility_id: Option<String>,
}

/// An optional id from a form field; anything but empty or an id is refused for `field`.
fn form_id(raw: Option<&str>, field: &'static str) -> Result<Option<Uuid>, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<Uuid>()
            .map(Some)
            .map_err(|_| ApiError::from(anxin_store::StoreError::invalid("value.invalid", field))),
        None => Ok(None),
    }
}

async fn my_check_in(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<CheckInForm>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let facility_id = match form_id(f.facility_id.as_deref(), "facility_id") {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &e),
    };
    let at = CheckIn {
        facility_id,
        place: f.place,
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| vol::check_in(tx, &caller, id, &at))
        .await
        .map(|_| ())
        .map_err(ApiError::from);
    back(&ui, r)
}

async fn my_check_out(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = guard!(ui, s);
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| vol::check_out(tx, &caller, id))
        .await
        .map(|_| ())
        .map_err(ApiError::from);
    back(&ui, r)
}

async fn my_record(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<RecordForm>,
) -> Response {
    let s = guard!(ui, s);
    let r = do_record(&app, &s, id, &f).await.map(|_| ());
    back(&ui, r)
}
