//! The management end: sign-in, the tree as navigation, people (search, filters, pages,
//! detail, unmask, edit), households. The map is `web::map`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use anxin_store::audit::{self, AuditEntry};
use anxin_store::people::{self, PeopleFilter, PersonPatch, PersonView};
use anxin_store::tree::{self, Node, TreeStore};

use crate::app::App;
use crate::http::guard::{AuthError, Authenticated, Session, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::{error_page, forward, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/login",
            &["GET", "POST"],
            Serves::Public,
            get(login_page).post(login),
        )
        .route("/manage/logout", &["POST"], Serves::Own, post(logout))
        .route("/manage", &["GET"], Serves::Own, get(dashboard))
        .route(
            "/manage/nodes/{id}",
            &["GET"],
            Serves::Records("nodes"),
            get(node),
        )
        .route(
            "/manage/people",
            &["GET"],
            Serves::Records("people"),
            get(people_list),
        )
        .route(
            "/manage/people/{id}",
            &["GET"],
            Serves::Records("people"),
            get(person),
        )
        .route(
            "/manage/people/{id}/unmask",
            &["POST"],
            Serves::Records("people"),
            post(unmask),
        )
        .route(
            "/manage/people/{id}/edit",
            &["GET", "POST"],
            Serves::Records("people"),
            get(edit_page).post(edit),
        )
        .route(
            "/manage/households/{id}",
            &["GET"],
            Serves::Records("households"),
            get(household),
        )
}

/// The signed-in staff member, as every management page shows them.
fn who(s: &Session) -> minijinja::Value {
    use anxin_domain::roles::Permission;
    let c = s.caller();
    minijinja::Value::from_serialize(json!({
        "name": s.user().display_name,
        "csrf": s.csrf().unwrap_or_default(),
        // Which administration links the navigation offers (the pages check again).
        "base": c.has(Permission::ReadBase),
        "import": c.has(Permission::ImportData) || c.has(Permission::ExportData),
        "people": c.has(Permission::ReadPeople),
        "vulnerable": c.has(Permission::ReadVulnerable),
        "audit": c.has(Permission::ReadAudit),
        "monitor": c.has(Permission::ReadMonitor),
        "warnings": c.has(Permission::DraftWarning) || c.has(Permission::IssueWarning),
        "plans": c.has(Permission::ManagePlans) || c.has(Permission::ActivatePlans),
        "incidents": c.has(Permission::RunIncidents)
            || c.has(Permission::ActivatePlans)
            || c.has(Permission::ApproveReports),
        "volunteers": c.has(Permission::ManageVolunteers),
        "gates": c.has(Permission::ManagePasses) || c.has(Permission::CheckGates),
        "inspections": c.has(Permission::Inspect) || c.has(Permission::ManageInspections),
        "hazards": c.has(Permission::ReadHazards),
        "calendar": c.has(Permission::ManageConfig),
        "supplies": c.has(Permission::ReadSupplies),
        "campaigns": c.has(Permission::RunCampaigns),
        "provider": c.has(Permission::Provide),
        "funds": c.has(Permission::ReadFunds),
        "users": c.has(Permission::ManageAccounts) || c.has(Permission::ManageGrants),
        "totp": s.mfa_required(),
    }))
}

// ---- sign-in ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

async fn login_page(ui: Ui) -> Response {
    render(
        &ui,
        StatusCode::OK,
        "login.html",
        context! { username => "", totp => false },
    )
}

async fn login(ui: Ui, State(app): State<App>, Input(f): Input<LoginForm>) -> Response {
    let mut body = json!({ "username": f.username, "password": f.password });
    if let Some(t) = f.totp.as_deref().filter(|t| !t.trim().is_empty()) {
        body["totp"] = json!(t.trim());
    }
    let a = match forward::post(&app, &ui, "/api/v1/auth/login", None, &body).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    if a.status.is_success() {
        let mut r = see_other("/manage");
        for c in a.cookies() {
            r.headers_mut()
                .append(axum::http::header::SET_COOKIE, c.clone());
        }
        return r;
    }
    let code = a.code().unwrap_or("internal").to_owned();
    let totp = matches!(code.as_str(), "auth.totp_required" | "auth.totp_invalid");
    render(
        &ui,
        a.status,
        "login.html",
        context! {
            username => f.username,
            totp => totp,
            error => i18n::t(ui.lang, &code),
            error_code => code,
        },
    )
}

async fn logout(ui: Ui, State(app): State<App>, s: Result<Session, AuthError>) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let a = forward::post(&app, &ui, "/api/v1/auth/logout", s.csrf(), &json!({})).await;
    let mut r = see_other("/manage/login");
    if let Ok(a) = a {
        for c in a.cookies() {
            r.headers_mut()
                .append(axum::http::header::SET_COOKIE, c.clone());
        }
    }
    r
}

// ---- tree ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct NodeRow {
    id: Uuid,
    name: String,
    level: String,
    code: Option<String>,
}

fn node_row(n: &Node) -> NodeRow {
    NodeRow {
        id: n.id,
        name: n.name.clone(),
        level: n.level.clone(),
        code: n.code.clone(),
    }
}

async fn dashboard(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    // A provider's account works its offers and orders and reads no base data.
    if !s.caller().has(anxin_domain::roles::Permission::ReadBase)
        && s.caller().has(anxin_domain::roles::Permission::Provide)
    {
        return see_other("/manage/provider");
    }
    let caller = s.caller().clone();
    let roots = match app.store.read(move |c, _| c.roots(&caller)).await {
        Ok(r) => r,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    // One root: go straight to it.
    if let [only] = roots.as_slice() {
        return see_other(&format!("/manage/nodes/{}", only.id));
    }
    let rows: Vec<NodeRow> = roots.iter().map(node_row).collect();
    render(
        &ui,
        StatusCode::OK,
        "node.html",
        context! { me => who(&s), node => (), trail => Vec::<NodeRow>::new(), children => rows, grids => Vec::<u8>::new() },
    )
}

async fn node(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let node = c.node(&caller, id)?;
            let children = c.children(&caller, id)?;
            let grids = if node.level == "community" {
                tree::list_grids(c, &caller, id)?
            } else {
                Vec::new()
            };
            // The way up, as far as the caller reaches.
            let mut trail = Vec::new();
            let mut up = node.parent_id;
            while let Some(p) = up {
                match c.node(&caller, p) {
                    Ok(n) => {
                        up = n.parent_id;
                        trail.push(n);
                    }
                    Err(_) => break,
                }
            }
            trail.reverse();
            Ok((node, children, grids, trail))
        })
        .await;
    let (node, children, grids, trail) = match got {
        Ok(g) => g,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let children: Vec<NodeRow> = children.iter().map(node_row).collect();
    let trail: Vec<NodeRow> = trail.iter().map(node_row).collect();
    render(
        &ui,
        StatusCode::OK,
        "node.html",
        context! {
            me => who(&s),
            node => minijinja::Value::from_serialize(node_row(&node)),
            trail => trail,
            children => children,
            grids => minijinja::Value::from_serialize(&grids),
        },
    )
}

// ---- people -------------------------------------------------------------------------------

const PAGE_SIZE: i64 = 20;

#[derive(Debug, Default, Deserialize)]
struct PeopleQuery {
    q: Option<String>,
    node: Option<String>,
    grid: Option<String>,
    household: Option<String>,
    population_type: Option<String>,
    page: Option<String>,
}

fn uuid_opt(s: &Option<String>) -> Option<Uuid> {
    s.as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A person row as pages show it: labels in the page language.
fn person_ctx(ui: &Ui, p: &PersonView) -> serde_json::Value {
    let label = |prefix: &str, v: &str| i18n::t(ui.lang, &format!("{prefix}.{v}"));
    json!({
        "id": p.id,
        "name": p.name,
        "sex": p.sex.as_deref().map(|s| label("sex", s)),
        "sex_value": p.sex,
        "birth_date": p.birth_date.map(|d| d.to_string()),
        "population_type": label("pop", &p.population_type),
        "population_type_value": p.population_type,
        "doc_type": label("doc", &p.doc_type),
        "doc_type_value": p.doc_type,
        "doc_mask": p.doc_mask,
        "phone_mask": p.phone_mask,
        "nationality": p.nationality,
        "household_id": p.household_id,
        "grid_id": p.grid_id,
        "community_id": p.community_id,
    })
}

async fn people_list(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<PeopleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let page: i64 = q
        .page
        .as_deref()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let filter = PeopleFilter {
        node: uuid_opt(&q.node),
        grid: uuid_opt(&q.grid),
        household: uuid_opt(&q.household),
        q: non_empty(&q.q),
        population_type: non_empty(&q.population_type),
        limit: Some(PAGE_SIZE),
        offset: Some((page - 1).saturating_mul(PAGE_SIZE)),
        after: None,
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, env| people::list_people_cached(c, env, &caller, &filter))
        .await;
    let list = match got {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let pages = ((list.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let items: Vec<_> = list.items.iter().map(|p| person_ctx(&ui, p)).collect();
    // The query without the page, for the pager's links.
    let mut keep = Vec::new();
    for (k, v) in [
        ("q", &q.q),
        ("node", &q.node),
        ("grid", &q.grid),
        ("household", &q.household),
        ("population_type", &q.population_type),
    ] {
        if let Some(v) = non_empty(v) {
            keep.push((k, v));
        }
    }
    let pop_types: Vec<_> = ["registered", "resident", "floating", "foreign"]
        .iter()
        .map(|v| json!({ "value": v, "label": i18n::t(ui.lang, &format!("pop.{v}")) }))
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "people.html",
        context! {
            me => who(&s),
            items => minijinja::Value::from_serialize(&items),
            total => list.total,
            page => page,
            pages => pages,
            q => q.q.clone().unwrap_or_default(),
            population_type => q.population_type.clone().unwrap_or_default(),
            pop_types => minijinja::Value::from_serialize(&pop_types),
            keep => minijinja::Value::from_serialize(&keep),
            // A capped count (more than 1,000 past this page) is shown as "1000+".
            total_text => i18n::t(ui.lang, "people.total").replace("{n}", &format!("{}{}", list.total, if list.total_capped { "+" } else { "" })),
            page_text => i18n::t(ui.lang, "people.page").replace("{p}", &page.to_string()).replace("{n}", &format!("{pages}{}", if list.total_capped { "+" } else { "" })),
        },
    )
}

async fn load_person(app: &App, s: &Session, id: Uuid) -> Result<PersonView, ApiError> {
    let caller = s.caller().clone();
    Ok(app
        .store
        .read(move |c, _| people::get_person(c, &caller, id))
        .await?)
}

async fn show_person(
    ui: &Ui,
    app: &App,
    s: &Session,
    id: Uuid,
    plain: Option<people::Unmasked>,
) -> Response {
    let p = match load_person(app, s, id).await {
        Ok(p) => p,
        Err(e) => return error_page(ui, &e),
    };
    render(
        ui,
        StatusCode::OK,
        "person.html",
        context! {
            me => who(s),
            p => minijinja::Value::from_serialize(person_ctx(ui, &p)),
            plain => minijinja::Value::from_serialize(&plain),
        },
    )
}

async fn person(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    match s {
        Ok(s) => show_person(&ui, &app, &s, id, None).await,
        Err(e) => refused(&ui, e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Empty {}

/// Show the plaintext document and phone: needs `Unmask`, audited before the page answers
/// (and withheld when the audit entry cannot be written).
async fn unmask(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    _form: Input<Empty>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, env| people::unmask_person(c, env, &caller, id))
        .await;
    let plain = match got {
        Ok(u) => u,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let entry = AuditEntry::new("unmask")
        .actor(Some(s.user_id()))
        .ip(s.ip())
        .target("person", id);
    let wrote = app
        .store
        .write(s.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await;
    if let Err(e) = wrote {
        return error_page(&ui, &ApiError::from(e));
    }
    show_person(&ui, &app, &s, id, Some(plain)).await
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EditForm {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    #[serde(default)]
    pub population_type: Option<String>,
    #[serde(default)]
    pub nationality: Option<String>,
    #[serde(default)]
    pub doc_type: Option<String>,
    #[serde(default)]
    pub doc_number: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl EditForm {
    /// A patch that changes what the form names; empty document number and phone keep them.
    pub fn patch(&self) -> PersonPatch {
        let keep_empty = |v: &Option<String>| non_empty(v);
        PersonPatch {
            name: self.name.clone(),
            sex: keep_empty(&self.sex),
            birth_date: keep_empty(&self.birth_date),
            population_type: keep_empty(&self.population_type),
            nationality: keep_empty(&self.nationality),
            doc_type: keep_empty(&self.doc_number).and(keep_empty(&self.doc_type)),
            doc_number: keep_empty(&self.doc_number),
            phone: keep_empty(&self.phone),
            grid_id: None,
        }
    }
}

fn edit_options(ui: &Ui) -> serde_json::Value {
    let opts = |prefix: &str, vals: &[&str]| -> Vec<serde_json::Value> {
        vals.iter()
            .map(|v| json!({ "value": v, "label": i18n::t(ui.lang, &format!("{prefix}.{v}")) }))
            .collect()
    };
    json!({
        "sex": opts("sex", &["male", "female"]),
        "pop": opts("pop", &["registered", "resident", "floating", "foreign"]),
        "doc": opts("doc", &["mainland_id", "passport", "hk_macao_home_return_permit", "taiwan_compatriot_permit", "hk_macao_residence_permit", "taiwan_residence_permit", "foreign_permanent_residence", "none"]),
    })
}

async fn edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let p = match load_person(&app, &s, id).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let form = EditForm {
        name: Some(p.name.clone()),
        sex: p.sex.clone(),
        birth_date: p.birth_date.map(|d| d.to_string()),
        population_type: Some(p.population_type.clone()),
        nationality: p.nationality.clone(),
        doc_type: Some(p.doc_type.clone()),
        doc_number: None,
        phone: None,
    };
    render(
        &ui,
        StatusCode::OK,
        "person_edit.html",
        context! {
            me => who(&s),
            p => minijinja::Value::from_serialize(person_ctx(&ui, &p)),
            f => minijinja::Value::from_serialize(&form),
            opts => minijinja::Value::from_serialize(edit_options(&ui)),
        },
    )
}

/// The field an error is about, and its text in the page language.
pub fn field_error(ui: &Ui, e: &ApiError) -> (String, String) {
    let field = crate::web::forms::form_field(e.details["field"].as_str().unwrap_or("")).to_owned();
    let text = i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned);
    (field, text)
}

async fn edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<EditForm>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let patch = f.patch();
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            people::update_person(tx, &caller, id, &patch)
        })
        .await;
    let e = match r {
        Ok(_) => return see_other(&format!("/manage/people/{id}?saved=1")),
        Err(e) => ApiError::from(e),
    };
    if e.status != StatusCode::UNPROCESSABLE_ENTITY {
        return error_page(&ui, &e);
    }
    let p = match load_person(&app, &s, id).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let (field, text) = field_error(&ui, &e);
    render(
        &ui,
        StatusCode::UNPROCESSABLE_ENTITY,
        "person_edit.html",
        context! {
            me => who(&s),
            p => minijinja::Value::from_serialize(person_ctx(&ui, &p)),
            f => minijinja::Value::from_serialize(&f),
            opts => minijinja::Value::from_serialize(edit_options(&ui)),
            errors => minijinja::Value::from_serialize(json!({ field: text })),
            error_code => e.code,
        },
    )
}

// ---- households ---------------------------------------------------------------------------

async fn household(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    show_household(&ui, &app, &s, id, &Default::default(), None).await
}

/// The household page again with a refused add-member form (its error next to the field).
pub(crate) async fn household_with_error(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    form: &crate::web::forms::Fields,
    e: &ApiError,
) -> Response {
    show_household(ui, app, s, id, form, Some(e)).await
}

/// A household: its members (each with a form to end the membership), a form to add a person
/// of its grid, and the way to record a new person in it.
async fn show_household(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    form: &crate::web::forms::Fields,
    error: Option<&ApiError>,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| people::get_household(c, &caller, id))
        .await;
    let (h, members) = match got {
        Ok(g) => g,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let members: Vec<_> = members
        .iter()
        .map(|m| {
            json!({
                "membership_id": m.membership_id,
                "role": i18n::t(ui.lang, &format!("role.{}", m.role)),
                "since": m.valid_from.to_string(),
                "person": person_ctx(ui, &m.person),
            })
        })
        .collect();
    let candidates = crate::web::households::grid_people(app, s, h.grid_id, h.community_id).await;
    let roles: Vec<_> = anxin_domain::people::HouseholdRole::ALL
        .iter()
        .map(|r| json!({ "value": r.as_str(), "label": i18n::t(ui.lang, &format!("role.{}", r.as_str())) }))
        .collect();
    let (status, err) = match error {
        Some(e) => {
            let (field, text) = field_error(ui, e);
            (
                e.status,
                json!({ "field": field, "text": text, "code": e.code }),
            )
        }
        None => (StatusCode::OK, serde_json::Value::Null),
    };
    render(
        ui,
        status,
        "household.html",
        context! {
            me => who(s),
            h => minijinja::Value::from_serialize(&h),
            members => minijinja::Value::from_serialize(&members),
            candidates => minijinja::Value::from_serialize(&candidates),
            roles => minijinja::Value::from_serialize(&roles),
            f => minijinja::Value::from_serialize(form),
            err => minijinja::Value::from_serialize(&err),
        },
    )
}

/// The signed-in staff member, for other management pages.
pub(crate) fn who_ctx(s: &Session) -> minijinja::Value {
    who(s)
}

/// Used by the resident end too.
pub(crate) fn person_view_ctx(ui: &Ui, p: &PersonView) -> serde_json::Value {
    person_ctx(ui, p)
}

/// Used by the resident end too.
pub(crate) async fn authenticated_person(
    app: &App,
    s: &Authenticated,
    id: Uuid,
) -> Result<PersonView, ApiError> {
    load_person(app, s, id).await
}
