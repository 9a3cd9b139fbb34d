//! The web pages: server-rendered HTML for the management end (`/manage/…`) and the resident end
//! (`/resident/…`), plus the static files they use (`/static/…`), all served by Anxin itself.
//!
//! - Templates are `web/templates/*.html`, rendered with `minijinja`: compiled into the binary
//!   with `include_str!`, auto-escaped (`.html`), no proc-macro build cost (askama would
//!   recompile Rust on every template edit and put the templates' types in our compile time);
//!   minijinja's errors name the template line. They are parsed once per process.
//! - Texts come from [`i18n`] (zh-CN by default; English by the `anxin_lang` cookie or
//!   `?lang=en`); error pages show the error code's text in the page language.
//! - Pages take the same guards as the API (`Staff`, `Resident`, `Authenticated`) and call the
//!   same store functions with the caller, so a record outside the caller's reach answers exactly
//!   like a missing one (the same 404 page). Sign-in, sign-out and choosing a person are handed to
//!   the API's own handlers ([`forward`]), so lockout, rate limits and audit stay in one place.
//! - Forms post `application/x-www-form-urlencoded` with the session's `_csrf` field (checked by
//!   `http::guard`); every page POST also accepts the same fields as JSON ([`Input`]), which is
//!   how the isolation matrix calls it.
//! - Front-end libraries (htmx, Leaflet) are embedded from `web/node_modules` at the versions
//!   pinned in `web/package-lock.json` (see `build.rs`) and served from `/static/vendor/`.

/// The staff guard's result, or the page that refuses (sign-in for no session, 403 otherwise).
/// Defined before the page modules so each of them can use it.
macro_rules! staff {
    ($ui:expr, $s:expr) => {
        match $s {
            Ok(s) => s,
            Err(e) => return crate::web::refused(&$ui, e),
        }
    };
}

pub mod admin;
pub mod alarms;
pub mod assets;
pub mod campaigns;
pub mod channels;
pub mod devices;
pub mod forms;
pub mod forward;
pub mod funds;
pub mod hazards;
pub mod households;
pub mod i18n;
pub mod incidents;
pub mod inspections;
pub mod io;
pub mod manage;
pub mod map;
pub mod passes;
pub mod places;
pub mod plans;
pub mod providers;
pub mod records;
pub mod resident;
pub mod risks;
pub mod supervision;
pub mod supplies;
pub mod texts_campaigns;
pub mod texts_channels;
pub mod texts_funds;
pub mod texts_hazards;
pub mod texts_incidents;
pub mod texts_inspections;
pub mod texts_monitor;
pub mod texts_passes;
pub mod texts_plans;
pub mod texts_providers;
pub mod texts_risks;
pub mod texts_supervision;
pub mod texts_supplies;
pub mod texts_volunteers;
pub mod texts_warnings;
pub mod volunteers;
pub mod warnings;

use std::sync::OnceLock;

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json};
use minijinja::{context, Environment, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::app::App;
use crate::http::guard::{self, AuthError};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub use i18n::Lang;

pub const LANG_COOKIE: &str = "anxin_lang";
pub const LARGE_COOKIE: &str = "anxin_large";

/// Every page route; merged into `http::table()`.
pub fn routes() -> Table {
    Table::new()
        .route("/", &["GET"], Serves::Public, get(home))
        .route("/prefs", &["GET"], Serves::Public, get(prefs))
        .route(
            "/static/{*path}",
            &["GET"],
            Serves::Public,
            get(assets::serve),
        )
        .merge(manage::routes())
        .merge(map::routes())
        .merge(places::routes())
        .merge(records::routes())
        .merge(admin::routes())
        .merge(households::routes())
        .merge(io::routes())
        .merge(resident::routes())
        .merge(channels::routes())
        .merge(alarms::routes())
        .merge(devices::routes())
        .merge(warnings::routes())
        .merge(plans::routes())
        .merge(volunteers::routes())
        .merge(incidents::routes())
        .merge(passes::routes())
        .merge(inspections::routes())
        .merge(hazards::routes())
        .merge(risks::routes())
        .merge(supervision::routes())
        .merge(supplies::routes())
        .merge(campaigns::routes())
        .merge(providers::routes())
        .merge(funds::routes())
}

/// What every page needs from the request: language, large-text mode, the path (for the
/// language switch), the session cookie and the request's extensions (for [`forward`]).
#[derive(Debug, Clone)]
pub struct Ui {
    pub lang: Lang,
    pub large: bool,
    pub path: String,
    pub session_cookie: Option<String>,
    pub ext: Extensions,
}

fn cookie_value(parts: &Parts, name: &str) -> Option<String> {
    for v in parts.headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for c in cookie::Cookie::split_parse(s).flatten() {
            if c.name() == name {
                return Some(c.value().to_owned());
            }
        }
    }
    None
}

fn query_value(parts: &Parts, name: &str) -> Option<String> {
    let q = parts.uri.query()?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let lang = query_value(parts, "lang")
            .and_then(|l| Lang::parse(&l))
            .or_else(|| cookie_value(parts, LANG_COOKIE).and_then(|l| Lang::parse(&l)))
            .unwrap_or_default();
        let large = cookie_value(parts, LARGE_COOKIE).is_some_and(|v| v == "1");
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Ui {
            lang,
            large,
            path,
            session_cookie: guard::session_cookie(parts),
            ext: parts.extensions.clone(),
        })
    }
}

/// A form body, or the same fields as JSON.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for Input<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            Json::<T>::from_request(req, state)
                .await
                .map(|Json(t)| Input(t))
                .map_err(IntoResponse::into_response)
        } else {
            Form::<T>::from_request(req, state)
                .await
                .map(|Form(t)| Input(t))
                .map_err(IntoResponse::into_response)
        }
    }
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env.add_function("t", |state: &minijinja::State, key: &str| -> String {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().and_then(Lang::parse))
                .unwrap_or_default();
            i18n::t(lang, key)
        });
        env
    })
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../web/templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "error.html",
    "login.html",
    "node.html",
    "people.html",
    "person.html",
    "person_edit.html",
    "household.html",
    "map.html",
    "resident_login.html",
    "resident_code.html",
    "resident_choose.html",
    "resident_home.html",
    "resident_edit.html",
    "staff_nav.html",
    "resident_nav.html",
    "places.html",
    "form.html",
    "record.html",
    "audit.html",
    "users.html",
    "user.html",
    "totp.html",
    "list.html",
    "import.html",
    "import_job.html",
    "import_job_page.html",
    "alarms.html",
    "alarms_results.html",
    "warnings.html",
    "device.html",
    // emergency operations: each part lists its own templates in its block
    // plans & activation
    "plans.html",
    "plan.html",
    "plan_version.html",
    // volunteers & welfare
    "welfare.html",
    "volunteer_home.html",
    "volunteer_callouts.html",
    "volunteers.html",
    // incident operations
    "incidents.html",
    "incident.html",
    "incident_task_rows.html",
    "incident_tasks.html",
    "sitrep.html",
    "review.html",
    // passes
    "gates.html",
    "gate.html",
    "passes.html",
    "pass.html",
    "pass_contacts.html",
    "pass_resident.html",
    "resident_channels.html",
    // hazards (issue 6): each part lists its own templates in its block
    // inspections
    "inspections.html",
    "inspection.html",
    "inspection_templates.html",
    "inspection_template.html",
    "inspection_schedules.html",
    "inspection_schedule.html",
    // hazard ledger
    "hazards.html",
    "hazard.html",
    // calendar & risks
    "risks.html",
    "risk.html",
    "risk_map.html",
    "calendar.html",
    // supervision
    "supervision.html",
    // supplies (issue 7): each part lists its own templates in its block
    // reserves & dispatch
    "stock.html",
    "stock_depot.html",
    "stock_gaps.html",
    "dispatch.html",
    "dispatch_plan.html",
    // campaigns
    "campaigns.html",
    "campaign.html",
    "campaign_redeem.html",
    "campaign_resident.html",
    "campaign_deliveries.html",
    // providers
    "orders.html",
    "order.html",
    "provider.html",
    "provider_portal.html",
    // fund ledger
    "funds.html",
    "fund.html",
    "fund_public.html",
];

/// Render `name` with `ctx` plus what every page needs.
pub fn render(ui: &Ui, status: StatusCode, name: &str, ctx: Value) -> Response {
    let other = ui.lang.other();
    let full = context! {
        lang => ui.lang.code(),
        lang_tag => ui.lang.tag(),
        other_lang => other.code(),
        large => ui.large,
        path => ui.path.clone(),
        assets_ok => assets::OK,
        ..ctx
    };
    let out = env().get_template(name).and_then(|t| t.render(full));
    match out {
        Ok(html) => {
            let mut r = (status, Html(html)).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                     frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
                ),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        Err(e) => {
            tracing::error!(template = name, error = %format!("{e:#}"), "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The error page for `e`, in the page language; the same page for a missing record and one
/// outside the caller's reach.
pub fn error_page(ui: &Ui, e: &ApiError) -> Response {
    let message = if e.code == "record.not_found" {
        i18n::t(ui.lang, "error.not_found_page")
    } else {
        i18n::lookup(ui.lang, e.code).map_or_else(|| e.message.clone(), str::to_owned)
    };
    render(
        ui,
        e.status,
        "error.html",
        context! { code => e.code, message => message },
    )
}

/// A guard's refusal as a page: not signed in goes to the sign-in page of that end.
pub fn refused(ui: &Ui, e: AuthError) -> Response {
    let code = e.error.code;
    let login = if ui.path.starts_with("/resident") {
        "/resident/login"
    } else {
        "/manage/login"
    };
    match code {
        "auth.required" => Redirect::to(login).into_response(),
        "auth.person_required" => Redirect::to("/resident/choose").into_response(),
        // An administrator whose second factor is not yet set up: enrol first.
        "auth.mfa_required" if login == "/manage/login" => {
            Redirect::to("/manage/totp").into_response()
        }
        _ => {
            let mut r = error_page(ui, &e.error);
            if let Some(s) = e.retry_after {
                if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            r
        }
    }
}

/// Redirect after a successful POST.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A local path to go back to; anything else (another site, `//host`) becomes `/`.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn home(ui: Ui) -> Response {
    let to = if ui.session_cookie.is_some() {
        "/manage"
    } else {
        "/manage/login"
    };
    see_other(to)
}

#[derive(Debug, Deserialize)]
struct PrefsQuery {
    lang: Option<String>,
    large: Option<String>,
    next: Option<String>,
}

/// Display preferences (language, large text) as cookies, then back to the page.
async fn prefs(State(app): State<App>, Query(q): Query<PrefsQuery>) -> Response {
    let mut r = see_other(&local_path(q.next.as_deref()));
    let secure = app.config.server.secure_cookies;
    let mut set = |name: &'static str, value: String| {
        let c = cookie::Cookie::build((name, value))
            .path("/")
            .same_site(cookie::SameSite::Lax)
            .secure(secure)
            .max_age(cookie::time::Duration::days(365))
            .build();
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    };
    if let Some(l) = q.lang.as_deref().and_then(Lang::parse) {
        set(LANG_COOKIE, l.code().to_owned());
    }
    if let Some(l) = q.large {
        set(LARGE_COOKIE, if l == "1" { "1" } else { "0" }.to_owned());
    }
    r
}

/// Whether the embedded front-end libraries are real (npm was available at build time).
pub fn assets_ok() -> bool {
    assets::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                panic!("{name}: {e:#}");
            }
        }
    }

    #[test]
    fn local_paths_only() {
        assert_eq!(local_path(Some("/manage?x=1")), "/manage?x=1");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(None), "/");
    }
}
