//! Warnings on the management end: the list, the draft form (also opened from an alarm with its
//! fields filled in), and a warning's page with the steps the caller may take (approve, issue,
//! cancel) and its reach board. Every step goes through `warn::workflow` and
//! `anxin_store::warnings`, which check the permission in the caller's scope; the pages only
//! offer what those would allow.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{NaiveDateTime, TimeZone};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::warning::{WarningCategory, WarningLevel};
use anxin_domain::{Permission, SHANGHAI};
use anxin_store::warnings::{self, Origin, Warning, WarningInput, WarningQuery};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::warn::{promote, workflow};
use crate::web::forms::{
    self, enum_label, fact, float, form_page, location_fields, text, Field, Fields, FormPage, Opt,
    RecordPage, Section,
};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let w = Serves::Records("warnings");
    Table::new()
        .route("/manage/warnings", &["GET"], w, get(list_page))
        .route(
            "/manage/nodes/{id}/warnings/new",
            &["GET", "POST"],
            Serves::Records("nodes"),
            get(new_page).post(create),
        )
        .route("/manage/warnings/{id}", &["GET"], w, get(show))
        .route("/manage/warnings/{id}/approve", &["POST"], w, post(approve))
        .route("/manage/warnings/{id}/issue", &["POST"], w, post(issue))
        .route("/manage/warnings/{id}/cancel", &["POST"], w, post(cancel))
}

/// Asia/Shanghai, to the minute, as the forms take it.
use crate::web::forms::local_minute as local;

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
    if let Err(e) = workflow::expire_due(&app).await {
        return error_page(&ui, &ApiError::from(e));
    }
    let caller = s.caller().clone();
    let status = q.status.clone().filter(|s| !s.is_empty());
    let query = WarningQuery {
        status: status.clone(),
    };
    let list = match app
        .store
        .read(move |c, _| warnings::list(c, &caller, &query))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let new_at = promote::home_node(s.caller()).map(|n| format!("/manage/nodes/{n}/warnings/new"));
    let rows: Vec<_> = list
        .iter()
        .map(|w| {
            json!({
                "id": w.id, "headline": w.headline, "level": w.level,
                "level_text": level_text(&ui, w), "category_text": category_text(&ui, w),
                "status_text": i18n::t(ui.lang, &format!("warning.status.{}", w.status)),
                "version": w.version, "effective": local(w.effective_at), "expires": local(w.expires_at),
            })
        })
        .collect();
    let statuses: Vec<_> = [
        "draft",
        "approved",
        "issued",
        "updated",
        "cancelled",
        "expired",
    ]
    .iter()
    .map(|s| json!({ "value": s, "label": i18n::t(ui.lang, &format!("warning.status.{s}")) }))
    .collect();
    render(
        &ui,
        StatusCode::OK,
        "warnings.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            rows => minijinja::Value::from_serialize(&rows),
            status => status.unwrap_or_default(),
            statuses => statuses,
            new_at => new_at,
        },
    )
}

fn level_text(ui: &Ui, w: &Warning) -> String {
    let roman = w
        .level
        .parse::<WarningLevel>()
        .map(|l| l.roman())
        .unwrap_or_default();
    format!("{}（{roman}）", enum_label(ui, &w.level_zh, &w.level))
}

fn category_text(ui: &Ui, w: &Warning) -> String {
    enum_label(ui, &w.category_zh, &w.category)
}

fn fields(ui: &Ui) -> Vec<Field> {
    let levels = WarningLevel::ALL
        .iter()
        .map(|l| Opt::new(l.as_str(), enum_label(ui, l.zh(), l.as_str())))
        .collect();
    let cats = WarningCategory::ALL
        .iter()
        .map(|c| Opt::new(c.as_str(), enum_label(ui, c.zh(), c.as_str())))
        .collect();
    let mut f = vec![
        Field::select(ui, "level", "warning.level", levels).required(),
        Field::select(ui, "category", "warning.category", cats).required(),
        Field::text(ui, "headline", "warning.headline").required(),
        Field::new(ui, "description", "warning.description", "textarea").required(),
        Field::new(ui, "instruction", "warning.instruction", "textarea"),
        Field::new(ui, "expires_at", "warning.expires", "datetime-local")
            .required()
            .hint(ui, "warning.expires_hint"),
        Field::select(
            ui,
            "whole_node",
            "warning.whole_node",
            vec![Opt::new("1", i18n::t(ui.lang, "warning.whole_node_yes"))],
        )
        .hint(ui, "warning.whole_node_hint"),
    ];
    f.extend(location_fields(ui));
    f.push(Field::number(ui, "radius_m", "warning.radius").hint(ui, "warning.radius_hint"));
    f
}

fn form(ui: &Ui, node: Uuid) -> FormPage {
    FormPage {
        title: i18n::t(ui.lang, "warning.new"),
        action: format!("/manage/nodes/{node}/warnings/new"),
        cancel: "/manage/warnings".into(),
        fields: fields(ui),
    }
}

/// A draft's fields as form values.
fn values(app: &App, input: Option<WarningInput>) -> Fields {
    let mut v = Fields::new();
    let expires = app.clock.now() + chrono::TimeDelta::hours(promote::EXPIRES_HOURS);
    v.insert("expires_at".into(), local(expires).replace(' ', "T"));
    v.insert("crs".into(), "wgs84".into());
    let Some(i) = input else { return v };
    forms::put(&mut v, "level", i.level);
    forms::put(&mut v, "category", i.category);
    forms::put(&mut v, "headline", i.headline);
    forms::put(&mut v, "description", i.description);
    forms::put(&mut v, "instruction", i.instruction);
    if let Some(area) = i.area {
        if let Some(c) = area["circles"].get(0) {
            forms::put(&mut v, "lon", c["lon"].as_f64().map(|x| format!("{x:.6}")));
            forms::put(&mut v, "lat", c["lat"].as_f64().map(|x| format!("{x:.6}")));
            forms::put(
                &mut v,
                "radius_m",
                c["radius_m"].as_f64().map(|x| x.round() as i64),
            );
        }
        if area["nodes"].as_array().is_some_and(|n| !n.is_empty()) {
            v.insert("whole_node".into(), "1".into());
        }
    }
    v
}

#[derive(Debug, Default, Deserialize)]
struct NewQuery {
    alarm: Option<Uuid>,
}

/// The draft form for node `id`; `?alarm=` fills it in from that alarm (in the caller's reach).
async fn new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    q: Result<Query<NewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    if let Err(e) = promote::draft_place(&app, s.caller(), node, false).await {
        return error_page(&ui, &e);
    }
    let input = match q {
        Ok(Query(NewQuery { alarm: Some(id) })) => {
            match promote::input_for(&app, s.caller(), id).await {
                Ok(i) => Some(i),
                Err(e) => return error_page(&ui, &e),
            }
        }
        _ => None,
    };
    form_page(&ui, &s, form(&ui, node), &values(&app, input), None)
}

fn parse_local(
    f: &Fields,
    field: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(raw) = text(f, field) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("value.date", field, "not a date and time");
    let t = NaiveDateTime::parse_from_str(&raw, "%Y-%m-%dT%H:%M").map_err(|_| bad())?;
    SHANGHAI
        .from_local_datetime(&t)
        .single()
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .ok_or_else(bad)
}

/// The form as the store's input: the area is the circle (centre and radius) and, when chosen,
/// the whole node the draft is made in.
fn input(f: &Fields, node: Uuid, grid: Option<Uuid>) -> Result<WarningInput, ApiError> {
    let mut area = serde_json::Map::new();
    let (lon, lat, r) = (float(f, "lon")?, float(f, "lat")?, float(f, "radius_m")?);
    match (lon, lat, r) {
        (Some(lon), Some(lat), Some(r)) => {
            area.insert(
                "circles".into(),
                json!([{ "lon": lon, "lat": lat, "radius_m": r }]),
            );
        }
        (None, None, None) => {}
        _ => {
            let missing = if lon.is_none() {
                "lon"
            } else if lat.is_none() {
                "lat"
            } else {
                "radius_m"
            };
            return Err(ApiError::invalid(
                "value.required",
                missing,
                "a circle needs its centre and radius",
            ));
        }
    }
    if text(f, "whole_node").is_some() {
        area.insert("nodes".into(), json!([node]));
    }
    Ok(WarningInput {
        node_id: Some(node),
        grid_id: grid,
        level: text(f, "level"),
        category: text(f, "category"),
        headline: text(f, "headline"),
        description: text(f, "description"),
        instruction: text(f, "instruction"),
        effective_at: None,
        expires_at: parse_local(f, "expires_at")?,
        area: Some(serde_json::Value::Object(area)),
        crs: text(f, "crs"),
    })
}

async fn create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let r = async {
        let grid = promote::draft_place(&app, s.caller(), node, false).await?;
        let raw = input(&f, node, grid)?;
        let caller = s.caller().clone();
        let sender = app.config.warnings.sender.clone();
        app.store
            .write(s.write_ctx(), move |tx| {
                let new = warnings::NewWarning::parse(raw, tx.now())?;
                warnings::create_draft(tx, &caller, &new, &Origin::local(&sender))
            })
            .await
            .map(|w| format!("/manage/warnings/{}", w.id))
            .map_err(ApiError::from)
    }
    .await;
    let page = form(&ui, node);
    forms::answer(&ui, &s, r, async { Ok(page) }, &f).await
}

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    if let Err(e) = workflow::expire_due(&app).await {
        return error_page(&ui, &ApiError::from(e));
    }
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let w = warnings::get(c, &caller, id)?;
            let reach = match w.issued_at {
                Some(_) => Some(warnings::reach(c, &caller, id)?),
                None => None,
            };
            Ok((w, reach))
        })
        .await;
    let (w, reach) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let c = s.caller();
    let st = w.status.as_str();
    let mut posts = Vec::new();
    if st == "draft" && c.has(Permission::ApproveWarning) {
        posts.push(forms::action(
            &ui,
            "warning.approve",
            format!("/manage/warnings/{id}/approve"),
        ));
    }
    if st == "approved" && c.has(Permission::IssueWarning) {
        posts.push(forms::action(
            &ui,
            "warning.issue",
            format!("/manage/warnings/{id}/issue"),
        ));
    }
    if matches!(st, "issued" | "updated") && c.has(Permission::IssueWarning) {
        posts.push(forms::action(
            &ui,
            "warning.cancel",
            format!("/manage/warnings/{id}/cancel"),
        ));
    }
    let mut facts = vec![
        fact(&ui, "warning.level", level_text(&ui, &w)),
        fact(&ui, "warning.category", category_text(&ui, &w)),
        fact(
            &ui,
            "warning.status",
            i18n::t(ui.lang, &format!("warning.status.{st}")),
        ),
        fact(&ui, "warning.version", w.version.to_string()),
        fact(&ui, "warning.description", w.description.clone()),
        fact(&ui, "warning.instruction", w.instruction.clone()),
        fact(&ui, "warning.effective", local(w.effective_at)),
        fact(&ui, "warning.expires", local(w.expires_at)),
        fact(&ui, "warning.area", area_text(&ui, &w)),
    ];
    if let Some(ch) = &w.change_summary {
        facts.push(fact(&ui, "warning.changed", ch.clone()));
    }
    // an imported alert: who sent it and how far it is trusted (signature, list, or why not)
    if let Some(tr) = &w.trust {
        facts.push(fact(
            &ui,
            "warning.trust",
            format!(
                "{} — {}",
                w.sender,
                i18n::t(ui.lang, &format!("warning.trust.{tr}"))
            ),
        ));
    }
    let mut sections = Vec::new();
    if let Some(r) = reach {
        let mut total = Section::new(
            &ui,
            "reach-total",
            "warning.reach",
            &[
                "warning.reach_recipients",
                "warning.reach_delivered",
                "warning.reach_acknowledged",
                "warning.reach_need_help",
            ],
        );
        total.row(
            None,
            vec![
                r.total.recipients.to_string(),
                r.total.delivered.to_string(),
                r.total.acknowledged.to_string(),
                r.total.need_help.to_string(),
            ],
        );
        sections.push(total);
        let mut by = Section::new(
            &ui,
            "reach-compounds",
            "warning.reach_by_compound",
            &[
                "warning.reach_compound",
                "warning.reach_recipients",
                "warning.reach_delivered",
                "warning.reach_acknowledged",
                "warning.reach_need_help",
            ],
        );
        for cc in &r.by_compound {
            by.row(
                None,
                vec![
                    cc.name.clone().unwrap_or_else(|| "—".into()),
                    cc.counts.recipients.to_string(),
                    cc.counts.delivered.to_string(),
                    cc.counts.acknowledged.to_string(),
                    cc.counts.need_help.to_string(),
                ],
            );
        }
        sections.push(by);
        let mut ch = Section::new(
            &ui,
            "reach-channels",
            "warning.reach_by_channel",
            &[
                "warning.reach_channel",
                "warning.reach_deliveries",
                "warning.reach_queued",
                "warning.reach_sent",
                "warning.reach_delivered",
                "warning.reach_failed",
            ],
        );
        for x in &r.by_channel {
            ch.row(
                None,
                vec![
                    i18n::t(ui.lang, &format!("warning.channel.{}", x.channel)),
                    x.deliveries.to_string(),
                    x.queued.to_string(),
                    x.sent.to_string(),
                    x.delivered.to_string(),
                    x.failed.to_string(),
                ],
            );
        }
        sections.push(ch);
        let mut un = Section::new(
            &ui,
            "reach-unacked",
            "warning.reach_vulnerable_unacked",
            &["people.name"],
        );
        for u in &r.vulnerable_unacknowledged {
            un.row(
                Some(format!("/manage/people/{}", u.person_id)),
                vec![u.name.clone()],
            );
        }
        sections.push(un);
    }
    forms::record_page_with_posts(
        &ui,
        &s,
        RecordPage {
            title: w.headline.clone(),
            tag: i18n::t(ui.lang, &format!("warning.status.{st}")),
            facts,
            actions: Vec::new(),
            sections,
        },
        posts,
    )
}

/// The area in words: circles, polygons and nodes, counted.
fn area_text(ui: &Ui, w: &Warning) -> String {
    let n = |k: &str| w.area[k].as_array().map_or(0, Vec::len);
    let mut parts = Vec::new();
    for (k, key) in [
        ("polygons", "warning.area_polygons"),
        ("circles", "warning.area_circles"),
        ("nodes", "warning.area_nodes"),
    ] {
        if n(k) > 0 {
            parts.push(i18n::t(ui.lang, key).replace("{n}", &n(k).to_string()));
        }
    }
    parts.join("，")
}

async fn step(ui: Ui, app: App, s: Staff, id: Uuid, what: Step, f: Fields) -> Response {
    let caller = s.caller().clone();
    let ctx = s.write_ctx();
    let r = match what {
        Step::Approve => app
            .store
            .write(ctx, move |tx| warnings::approve(tx, &caller, id))
            .await
            .map(drop),
        Step::Issue => workflow::issue(&app, caller, ctx, id).await.map(drop),
        Step::Cancel => workflow::cancel(&app, caller, ctx, id, text(&f, "reason"))
            .await
            .map(drop),
    };
    match r {
        Ok(()) => see_other(&format!("/manage/warnings/{id}")),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Approve,
    Issue,
    Cancel,
}

async fn approve(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    step(ui, app, s, id, Step::Approve, f).await
}

async fn issue(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    step(ui, app, s, id, Step::Issue, f).await
}

async fn cancel(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    step(ui, app, s, id, Step::Cancel, f).await
}
