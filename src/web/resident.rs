//! The resident end (mobile-first, 适老化): sign in with a phone code, choose who one is when
//! several people share the phone, see one's own household and correct a member's name or phone.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::accounts;
use anxin_store::people::{self, PersonPatch};

use crate::app::App;
use crate::http::guard::{AuthError, Authenticated, Resident, Session};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::manage::{authenticated_person, field_error, person_view_ctx};
use crate::web::{error_page, forward, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route("/resident/login", &["GET"], Serves::Public, get(login_page))
        .route("/resident/code", &["POST"], Serves::Public, post(send_code))
        .route("/resident/verify", &["POST"], Serves::Public, post(verify))
        .route(
            "/resident/choose",
            &["GET", "POST"],
            Serves::Own,
            get(choose_page).post(choose),
        )
        .route("/resident/logout", &["POST"], Serves::Own, post(logout))
        .route("/resident", &["GET"], Serves::Own, get(home))
        .route(
            "/resident/people/{id}/edit",
            &["GET", "POST"],
            Serves::Records("people"),
            get(edit_page).post(edit),
        )
}

/// The banner's answer form. Registered with the warnings API (`crate::http::warnings`), so the
/// isolation matrix covers it with the other warning routes.
pub fn warning_routes() -> Table {
    Table::new().route(
        "/resident/warnings/{id}/ack",
        &["POST"],
        Serves::Records("warnings"),
        post(ack_warning),
    )
}

#[derive(Debug, Default, Deserialize)]
struct AckForm {
    #[serde(default)]
    answer: Option<String>,
}

/// The banner's "I am safe" / "I need help" buttons (a plain form: works without script).
async fn ack_warning(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<AckForm>,
) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => return refused(&ui, e),
    };
    let (p, h) = (r.person_id(), r.household_id());
    let answer = f.answer.clone();
    let res = app
        .store
        .write(r.write_ctx(), move |tx| {
            anxin_store::warnings::acknowledge(tx, p, h, id, answer.as_deref())
        })
        .await;
    match res {
        Ok(()) => see_other("/resident#warnings"),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

fn with_cookies(mut r: Response, a: &forward::Answer) -> Response {
    for c in a.cookies() {
        r.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    r
}

#[derive(Debug, Default, Deserialize)]
struct PhoneForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: String,
}

async fn login_page(ui: Ui) -> Response {
    render(
        &ui,
        StatusCode::OK,
        "resident_login.html",
        context! { phone => "" },
    )
}

async fn send_code(ui: Ui, State(app): State<App>, Input(f): Input<PhoneForm>) -> Response {
    let body = json!({ "phone": f.phone.trim() });
    let a = match forward::post(&app, &ui, "/api/v1/auth/code", None, &body).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    if !a.status.is_success() {
        let code = a.code().unwrap_or("internal").to_owned();
        return render(
            &ui,
            a.status,
            "resident_login.html",
            context! { phone => f.phone, error => i18n::t(ui.lang, &code), error_code => code },
        );
    }
    let minutes = a.body["expires_in_minutes"].as_i64().unwrap_or(10);
    render(
        &ui,
        StatusCode::OK,
        "resident_code.html",
        context! {
            phone => f.phone.trim(),
            sent => i18n::t(ui.lang, "resident.code_sent").replace("{m}", &minutes.to_string()),
        },
    )
}

async fn verify(ui: Ui, State(app): State<App>, Input(f): Input<PhoneForm>) -> Response {
    let body = json!({ "phone": f.phone.trim(), "code": f.code.trim() });
    let a = match forward::post(&app, &ui, "/api/v1/auth/code/verify", None, &body).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    if !a.status.is_success() {
        let code = a.code().unwrap_or("internal").to_owned();
        return render(
            &ui,
            a.status,
            "resident_code.html",
            context! { phone => f.phone.trim(), error => i18n::t(ui.lang, &code), error_code => code },
        );
    }
    let to = if a.body["person"].is_null() {
        "/resident/choose"
    } else {
        "/resident"
    };
    with_cookies(see_other(to), &a)
}

async fn choose_page(ui: Ui, State(app): State<App>, s: Result<Session, AuthError>) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let uid = s.user_id();
    let got = app
        .store
        .read(move |c, _| accounts::linked_people(c, uid))
        .await;
    let people = match got {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let people: Vec<_> = people
        .iter()
        .map(|p| {
            json!({
                "id": p.person_id,
                "label": i18n::t(ui.lang, "resident.choose_button").replace("{name}", &p.name_masked),
            })
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "resident_choose.html",
        context! { csrf => s.csrf().unwrap_or_default(), people => minijinja::Value::from_serialize(&people) },
    )
}

#[derive(Debug, Default, Deserialize)]
struct ChooseForm {
    #[serde(default)]
    person_id: Option<Uuid>,
}

async fn choose(
    ui: Ui,
    State(app): State<App>,
    s: Result<Session, AuthError>,
    Input(f): Input<ChooseForm>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let body = json!({ "person_id": f.person_id });
    match forward::post(&app, &ui, "/api/v1/auth/choose", s.csrf(), &body).await {
        Ok(a) if a.status.is_success() => see_other("/resident"),
        Ok(a) => {
            let code = static_code(a.code().unwrap_or("internal"));
            error_page(&ui, &ApiError::new(a.status, code, code))
        }
        Err(e) => error_page(&ui, &e),
    }
}

/// The `'static` key of a known code (error pages keep codes as `&'static str`).
fn static_code(code: &str) -> &'static str {
    i18n::keys().find(|k| *k == code).unwrap_or("internal")
}

async fn logout(ui: Ui, State(app): State<App>, s: Result<Session, AuthError>) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let r = see_other("/resident/login");
    match forward::post(&app, &ui, "/api/v1/auth/logout", s.csrf(), &json!({})).await {
        Ok(a) => with_cookies(r, &a),
        Err(_) => r,
    }
}

async fn home(ui: Ui, State(app): State<App>, r: Result<Resident, AuthError>) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => return refused(&ui, e),
    };
    let me = r.person_id();
    let caller = r.caller().clone();
    let hh = r.household_id();
    let got = app
        .store
        .read(move |c, _| {
            let person = people::get_person(c, &caller, me)?;
            let members = match hh {
                Some(h) => people::get_household(c, &caller, h)?.1,
                None => Vec::new(),
            };
            Ok((person, members))
        })
        .await;
    let (person, members) = match got {
        Ok(g) => g,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    // Warnings in force for the household: the live banner (it refreshes itself; the page
    // reports each one as displayed once the browser shows it).
    if let Err(e) = crate::warn::workflow::expire_due(&app).await {
        return error_page(&ui, &ApiError::from(e));
    }
    let warnings = match app
        .store
        .read(move |c, _| anxin_store::warnings::for_resident(c, me, hh))
        .await
    {
        Ok(w) => w,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let warnings: Vec<_> = warnings
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "level": w.level,
                "title": format!("{}{}预警", w.level_zh, w.category_zh),
                "headline": w.headline,
                "description": w.description,
                "instruction": w.instruction,
                "change_summary": w.change_summary,
                "expires": w.expires_at.with_timezone(&anxin_domain::SHANGHAI).format("%Y-%m-%d %H:%M").to_string(),
                "answer": w.answer,
            })
        })
        .collect();
    let members: Vec<_> = members
        .iter()
        .map(|m| {
            json!({
                "role": i18n::t(ui.lang, &format!("role.{}", m.role)),
                "person": person_view_ctx(&ui, &m.person),
            })
        })
        .collect();
    render(
        &ui,
        StatusCode::OK,
        "resident_home.html",
        context! {
            csrf => r.csrf().unwrap_or_default(),
            me => minijinja::Value::from_serialize(person_view_ctx(&ui, &person)),
            members => minijinja::Value::from_serialize(&members),
            warnings => minijinja::Value::from_serialize(&warnings),
            saved => ui.path.contains("saved=1"),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct CorrectForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

async fn edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let p = match authenticated_person(&app, &s, id).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    render(
        &ui,
        StatusCode::OK,
        "resident_edit.html",
        context! {
            csrf => s.csrf().unwrap_or_default(),
            p => minijinja::Value::from_serialize(person_view_ctx(&ui, &p)),
            name => p.name,
        },
    )
}

async fn edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Authenticated, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<CorrectForm>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let phone = f
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let patch = PersonPatch {
        name: f.name.clone(),
        phone,
        ..PersonPatch::default()
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            people::update_person(tx, &caller, id, &patch)
        })
        .await;
    let e = match r {
        Ok(_) => return see_other("/resident?saved=1"),
        Err(e) => ApiError::from(e),
    };
    if e.status != StatusCode::UNPROCESSABLE_ENTITY {
        return error_page(&ui, &e);
    }
    let p = match authenticated_person(&app, &s, id).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let (field, text) = field_error(&ui, &e);
    render(
        &ui,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resident_edit.html",
        context! {
            csrf => s.csrf().unwrap_or_default(),
            p => minijinja::Value::from_serialize(person_view_ctx(&ui, &p)),
            name => f.name.unwrap_or_default(),
            phone => f.phone.unwrap_or_default(),
            errors => minijinja::Value::from_serialize(json!({ field: text })),
            error_code => e.code,
        },
    )
}
