//! Households and vulnerable people on the management end: the lists (search, filter, pages),
//! a new household under a community, a new person in a household, adding and ending a
//! membership, and recording a vulnerable person (the category is sealed; the store encrypts
//! it). Each form calls the store function the JSON API calls (`src/http/people.rs`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::people::{ContactChannel, HouseholdRole, VulnerableCategory};
use anxin_store::lists::{self, HouseholdFilter};
use anxin_store::people::{self, NewPerson, PeopleFilter, PersonInput, VulnerableInput};
use anxin_store::tree::{self, TreeStore};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, answer, enum_label, form_page, text, Field, Fields, FormPage, Opt};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/households",
            &["GET"],
            Serves::Records("households"),
            get(households),
        )
        .route(
            "/manage/vulnerable",
            &["GET"],
            Serves::Records("vulnerable"),
            get(vulnerable),
        )
        .route(
            "/manage/nodes/{id}/households/new",
            &["GET", "POST"],
            Serves::Records("nodes"),
            get(household_new_page).post(household_create),
        )
        .route(
            "/manage/households/{id}/edit",
            &["GET", "POST"],
            Serves::Records("households"),
            get(household_edit_page).post(household_edit),
        )
        .route(
            "/manage/households/{id}/people/new",
            &["GET", "POST"],
            Serves::Records("households"),
            get(person_new_page).post(person_create),
        )
        .route(
            "/manage/households/{id}/members",
            &["POST"],
            Serves::Records("households"),
            post(member_add),
        )
        .route(
            "/manage/memberships/{id}/end",
            &["POST"],
            Serves::Records("memberships"),
            post(member_end),
        )
        .route(
            "/manage/people/{id}/vulnerable/new",
            &["GET", "POST"],
            Serves::Records("people"),
            get(vulnerable_new_page).post(vulnerable_create),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

const PAGE_SIZE: i64 = 20;

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    grid: Option<String>,
    category: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
    fn get(v: &Option<String>) -> Option<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// A list page (`list.html`): rows of cells, the first linked, a search box, one filter.
#[allow(clippy::too_many_arguments)]
fn list_page(
    ui: &Ui,
    s: &Staff,
    title: String,
    action: &str,
    q: &ListQuery,
    filter: serde_json::Value,
    total: i64,
    rows: Vec<serde_json::Value>,
    cols: &[&str],
) -> Response {
    let page = q.page();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let mut keep = Vec::new();
    for (k, v) in [("q", &q.q), ("grid", &q.grid), ("category", &q.category)] {
        if let Some(v) = ListQuery::get(v) {
            keep.push((k, v));
        }
    }
    render(
        ui,
        StatusCode::OK,
        "list.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            title => title,
            action => action,
            q => ListQuery::get(&q.q).unwrap_or_default(),
            filter => minijinja::Value::from_serialize(&filter),
            rows => minijinja::Value::from_serialize(&rows),
            cols => cols.iter().map(|c| t(ui, c)).collect::<Vec<_>>(),
            keep => minijinja::Value::from_serialize(&keep),
            page => page,
            pages => pages,
            total_text => t(ui, "places.total").replace("{n}", &total.to_string()),
            page_text => t(ui, "people.page").replace("{p}", &page.to_string()).replace("{n}", &pages.to_string()),
        },
    )
}

async fn households(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let f = HouseholdFilter {
        community: None,
        grid: ListQuery::get(&q.grid).and_then(|g| g.parse().ok()),
        q: ListQuery::get(&q.q),
        limit: PAGE_SIZE,
        offset: (q.page() - 1).saturating_mul(PAGE_SIZE),
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let (rows, total) = lists::list_households(c, &caller, &f)?;
            // Grid names for the rows and the filter: the grids of the communities shown.
            let mut grids: Vec<tree::Grid> = Vec::new();
            let mut seen = Vec::new();
            for r in &rows {
                if !seen.contains(&r.community_id) {
                    seen.push(r.community_id);
                    grids.extend(tree::list_grids(c, &caller, r.community_id).unwrap_or_default());
                }
            }
            Ok((rows, total, grids))
        })
        .await;
    let (rows, total, grids) = match got {
        Ok(g) => g,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let grid_name = |g: Option<Uuid>| {
        grids
            .iter()
            .find(|x| Some(x.id) == g)
            .map(|x| x.name.clone())
            .unwrap_or_default()
    };
    let items = rows
        .iter()
        .map(|h| {
            json!({
                "id": h.id,
                "href": format!("/manage/households/{}", h.id),
                "cells": [h.label, grid_name(h.grid_id), h.members.to_string()],
            })
        })
        .collect();
    let options: Vec<Opt> = grids
        .iter()
        .map(|g| Opt::new(g.id, g.name.clone()))
        .collect();
    let filter = json!({
        "name": "grid",
        "label": t(&ui, "rec.grid"),
        "value": ListQuery::get(&q.grid).unwrap_or_default(),
        "options": options,
    });
    list_page(
        &ui,
        &s,
        t(&ui, "hh.list_title"),
        "/manage/households",
        &q,
        filter,
        total,
        items,
        &["hh.label", "rec.grid", "hh.members_now"],
    )
}

fn category_label(ui: &Ui, raw: &str) -> String {
    raw.parse::<VulnerableCategory>()
        .map(|c| enum_label(ui, c.zh(), c.as_str()))
        .unwrap_or_else(|_| raw.to_owned())
}

fn channel_label(ui: &Ui, raw: &str) -> String {
    raw.parse::<ContactChannel>()
        .map(|c| enum_label(ui, c.zh(), c.as_str()))
        .unwrap_or_else(|_| raw.to_owned())
}

/// Vulnerable people in reach (the store opens the sealed category for the list; the search
/// and the pages work on the opened rows, a community's list being small).
async fn vulnerable(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = staff!(ui, s);
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let category = ListQuery::get(&q.category).and_then(|c| c.parse::<VulnerableCategory>().ok());
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, env| people::list_vulnerable(c, env, &caller, category))
        .await;
    let all = match got {
        Ok(v) => v,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let term = ListQuery::get(&q.q);
    let hits: Vec<_> = all
        .iter()
        .filter(|v| term.as_deref().is_none_or(|t| v.name.contains(t)))
        .collect();
    let total = i64::try_from(hits.len()).unwrap_or(i64::MAX);
    let start = usize::try_from((q.page() - 1).saturating_mul(PAGE_SIZE)).unwrap_or(usize::MAX);
    let items = hits
        .iter()
        .skip(start)
        .take(PAGE_SIZE as usize)
        .map(|v| {
            json!({
                "id": v.id,
                "href": format!("/manage/people/{}", v.person_id),
                "cells": [v.name, category_label(&ui, &v.category), channel_label(&ui, &v.contact_channel)],
            })
        })
        .collect();
    let options: Vec<Opt> = VulnerableCategory::ALL
        .iter()
        .map(|c| Opt::new(c.as_str(), enum_label(&ui, c.zh(), c.as_str())))
        .collect();
    let filter = json!({
        "name": "category",
        "label": t(&ui, "vul.category"),
        "value": ListQuery::get(&q.category).unwrap_or_default(),
        "options": options,
    });
    list_page(
        &ui,
        &s,
        t(&ui, "vul.list_title"),
        "/manage/vulnerable",
        &q,
        filter,
        total,
        items,
        &["people.name", "vul.category", "vul.channel"],
    )
}

// ---- a new household ----------------------------------------------------------------------

/// The household's label and grid (a grid of its own community).
fn household_fields(ui: &Ui, grids: &[tree::Grid]) -> Vec<Field> {
    vec![
        Field::text(ui, "label", "hh.label")
            .required()
            .hint(ui, "hh.label_hint"),
        Field::select(
            ui,
            "grid_id",
            "rec.grid",
            grids
                .iter()
                .map(|g| Opt::new(g.id, g.name.clone()))
                .collect(),
        ),
    ]
}

async fn household_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let (h, grids) = app
        .store
        .read(move |c, _| {
            let (h, _) = people::get_household(c, &caller, id)?;
            let grids = tree::list_grids(c, &caller, h.community_id).unwrap_or_default();
            Ok((h, grids))
        })
        .await?;
    let mut v = Fields::new();
    v.insert("label".into(), h.label.clone());
    v.insert(
        "grid_id".into(),
        h.grid_id.map(|g| g.to_string()).unwrap_or_default(),
    );
    let page = FormPage {
        title: format!("{}：{}", t(ui, "rec.edit_household"), h.label),
        action: format!("/manage/households/{id}/edit"),
        cancel: format!("/manage/households/{id}"),
        fields: household_fields(ui, &grids),
    };
    Ok((page, v))
}

async fn household_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match household_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn household_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match forms::uuid(&f, "grid_id") {
        Ok(grid) => {
            let label = f.get("label").cloned().unwrap_or_default();
            app.store
                .write(s.write_ctx(), move |tx| {
                    people::update_household(tx, &caller, id, &label, grid)
                })
                .await
                .map(|h| format!("/manage/households/{}", h.id))
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    let form = async { household_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

async fn household_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    node: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let (n, grids) = app
        .store
        .read(move |c, _| {
            let n = c.node(&caller, node)?;
            let grids = tree::list_grids(c, &caller, node).unwrap_or_default();
            Ok((n, grids))
        })
        .await?;
    Ok(FormPage {
        title: format!("{}：{}", t(ui, "hh.new"), n.name),
        action: format!("/manage/nodes/{node}/households/new"),
        cancel: format!("/manage/nodes/{node}"),
        fields: household_fields(ui, &grids),
    })
}

async fn household_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match household_new_form(&ui, &app, &s, node).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn household_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match forms::uuid(&f, "grid_id") {
        Ok(grid) => {
            let label = f.get("label").cloned().unwrap_or_default();
            app.store
                .write(s.write_ctx(), move |tx| {
                    people::create_household(tx, &caller, node, grid, None, &label)
                })
                .await
                .map(|h| format!("/manage/households/{}", h.id))
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    answer(&ui, &s, r, household_new_form(&ui, &app, &s, node), &f).await
}

// ---- a new person in a household ----------------------------------------------------------

fn person_fields(ui: &Ui) -> Vec<Field> {
    let o = |prefix: &str, vals: &[&str]| forms::opts(ui, prefix, vals);
    let roles = HouseholdRole::ALL
        .iter()
        .map(|r| Opt::new(r.as_str(), t(ui, &format!("role.{}", r.as_str()))))
        .collect();
    vec![
        Field::text(ui, "name", "people.name").required(),
        Field::select(ui, "sex", "people.sex", o("sex", &["male", "female"])),
        Field::new(ui, "birth_date", "people.birth_date", "date"),
        Field::select(
            ui,
            "population_type",
            "people.population_type",
            o("pop", &["registered", "resident", "floating", "foreign"]),
        )
        .required(),
        Field::select(
            ui,
            "doc_type",
            "people.doc_type",
            o(
                "doc",
                &[
                    "mainland_id",
                    "passport",
                    "hk_macao_home_return_permit",
                    "taiwan_compatriot_permit",
                    "hk_macao_residence_permit",
                    "taiwan_residence_permit",
                    "foreign_permanent_residence",
                    "none",
                ],
            ),
        )
        .required(),
        Field::text(ui, "doc_number", "people.doc_number"),
        Field::new(ui, "phone", "people.phone", "tel"),
        Field::text(ui, "nationality", "people.nationality"),
        Field::select(ui, "household_role", "household.role", roles).required(),
    ]
}

async fn person_new_form(ui: &Ui, app: &App, s: &Staff, hh: Uuid) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let (h, _) = app
        .store
        .read(move |c, _| people::get_household(c, &caller, hh))
        .await?;
    Ok(FormPage {
        title: format!("{}：{}", t(ui, "hh.add_person"), h.label),
        action: format!("/manage/households/{hh}/people/new"),
        cancel: format!("/manage/households/{hh}"),
        fields: person_fields(ui),
    })
}

async fn person_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(hh): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let mut v = Fields::new();
    v.insert("population_type".into(), "registered".into());
    v.insert("doc_type".into(), "mainland_id".into());
    v.insert("household_role".into(), "head".into());
    match person_new_form(&ui, &app, &s, hh).await {
        Ok(p) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn person_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(hh): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let f2 = f.clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            // The household decides community and grid (and is the scope check).
            let (h, _) = people::get_household(tx.conn(), &caller, hh)?;
            let input = PersonInput {
                name: f2.get("name").cloned().unwrap_or_default(),
                sex: text(&f2, "sex"),
                birth_date: text(&f2, "birth_date"),
                population_type: f2.get("population_type").cloned().unwrap_or_default(),
                doc_type: f2.get("doc_type").cloned().unwrap_or_else(|| "none".into()),
                doc_number: text(&f2, "doc_number"),
                phone: text(&f2, "phone"),
                nationality: text(&f2, "nationality"),
                community_id: h.community_id,
                grid_id: h.grid_id,
                household_id: Some(hh),
                household_role: text(&f2, "household_role"),
            };
            let p = NewPerson::parse(&input)?;
            people::create_person(tx, &caller, &p)
        })
        .await
        .map(|p| format!("/manage/people/{}", p.id))
        .map_err(ApiError::from);
    answer(&ui, &s, r, person_new_form(&ui, &app, &s, hh), &f).await
}

// ---- memberships --------------------------------------------------------------------------

/// Add a person of the household's grid to the household, from today (or the date given).
async fn member_add(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(hh): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let today = app.clock.local_now().date_naive();
    let parsed = (|| -> Result<_, ApiError> {
        let person = forms::uuid(&f, "person_id")?
            .ok_or_else(|| ApiError::invalid("value.required", "person_id", "choose a person"))?;
        let role: HouseholdRole = text(&f, "role")
            .unwrap_or_default()
            .parse()
            .map_err(|_| ApiError::invalid("value.invalid", "role", "unknown role"))?;
        let from = match text(&f, "valid_from") {
            Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid("value.date", "valid_from", "not a date"))?,
            None => today,
        };
        Ok((person, role, from))
    })();
    let r = match parsed {
        Ok((person, role, from)) => app
            .store
            .write(s.write_ctx(), move |tx| {
                people::join_household(tx, &caller, hh, person, role, from)
            })
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => see_other(&format!("/manage/households/{hh}")),
        Err(e)
            if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT =>
        {
            crate::web::manage::household_with_error(&ui, &app, &s, hh, &f, &e).await
        }
        Err(e) => error_page(&ui, &e),
    }
}

/// End a membership today; back to its household.
async fn member_end(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let today = app.clock.local_now().date_naive();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            people::leave_household(tx, &caller, id, today)
        })
        .await;
    match r {
        Ok(()) => match forms::uuid(&f, "household").ok().flatten() {
            Some(hh) => see_other(&format!("/manage/households/{hh}")),
            None => see_other("/manage/households"),
        },
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

// ---- vulnerable people --------------------------------------------------------------------

fn vulnerable_fields(ui: &Ui) -> Vec<Field> {
    let cats = VulnerableCategory::ALL
        .iter()
        .map(|c| Opt::new(c.as_str(), enum_label(ui, c.zh(), c.as_str())))
        .collect();
    let chans = ContactChannel::ALL
        .iter()
        .map(|c| Opt::new(c.as_str(), enum_label(ui, c.zh(), c.as_str())))
        .collect();
    vec![
        Field::select(ui, "category", "vul.category", cats)
            .required()
            .hint(ui, "vul.category_hint"),
        Field::select(ui, "contact_channel", "vul.channel", chans).required(),
        Field::text(ui, "helper", "vul.helper").hint(ui, "vul.helper_hint"),
        Field::text(ui, "notes", "vul.notes"),
    ]
}

async fn vulnerable_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    person: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let p = app
        .store
        .read(move |c, _| people::get_person(c, &caller, person))
        .await?;
    Ok(FormPage {
        title: format!("{}：{}", t(ui, "vul.new"), p.name),
        action: format!("/manage/people/{person}/vulnerable/new"),
        cancel: format!("/manage/people/{person}"),
        fields: vulnerable_fields(ui),
    })
}

async fn vulnerable_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(person): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match vulnerable_new_form(&ui, &app, &s, person).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn vulnerable_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(person): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let f2 = f.clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            // The helper by username; an unknown one is the store's own "helper unknown".
            let helper_user_id = match text(&f2, "helper") {
                Some(name) => Some(
                    anxin_store::accounts::user_by_username(tx.conn(), &name)?
                        .map(|(u, _)| u.id)
                        .ok_or_else(|| {
                            anxin_store::StoreError::invalid("vulnerable.helper_unknown", "helper")
                        })?,
                ),
                None => None,
            };
            let input = VulnerableInput {
                person_id: person,
                category: f2.get("category").cloned().unwrap_or_default(),
                helper_user_id,
                contact_channel: f2.get("contact_channel").cloned().unwrap_or_default(),
                notes: text(&f2, "notes"),
            };
            people::add_vulnerable(tx, &caller, &input)
        })
        .await
        .map(|_| format!("/manage/people/{person}"))
        .map_err(ApiError::from);
    answer(&ui, &s, r, vulnerable_new_form(&ui, &app, &s, person), &f).await
}

/// People of a grid, for the add-member choice on the household page.
pub(crate) async fn grid_people(
    app: &App,
    s: &Staff,
    grid: Option<Uuid>,
    community: Uuid,
) -> Vec<Opt> {
    let caller = s.caller().clone();
    let f = PeopleFilter {
        grid,
        node: if grid.is_none() {
            Some(community)
        } else {
            None
        },
        limit: Some(200),
        ..PeopleFilter::default()
    };
    app.store
        .read(move |c, _| people::list_people(c, &caller, &f))
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|p| {
                    Opt::new(
                        p.id,
                        format!("{}（{}）", p.name, p.doc_mask.clone().unwrap_or_default()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
