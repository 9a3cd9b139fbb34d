//! The resident's page of their own warning channels (issue 4): `/resident/channels` lists
//! them masked; forms add an e-mail address (a code is e-mailed), give the code back, remove a
//! channel; a link binds WeChat through the service account's OAuth
//! (`/resident/channels/wechat`, in `crate::http::resident_channels`). The steps are the API's.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::guard::{AuthError, Resident};
use crate::http::resident_channels::{channels_of, do_confirm_email, do_remove, do_start_email};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{self, error_field, error_with_field, shown_on_form, Fields};
use crate::web::{error_page, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route("/resident/channels", &["GET"], Serves::Own, get(page))
        .route(
            "/resident/channels/email",
            &["POST"],
            Serves::Own,
            post(add_email),
        )
        .route(
            "/resident/channels/email/confirm",
            &["POST"],
            Serves::Own,
            post(confirm),
        )
        .route(
            "/resident/channels/remove",
            &["POST"],
            Serves::Own,
            post(remove),
        )
}

macro_rules! resident {
    ($ui:expr, $r:expr) => {
        match $r {
            Ok(r) => r,
            Err(e) => return refused(&$ui, e),
        }
    };
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    error: Option<String>,
    done: Option<String>,
}

async fn page(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Query(n): Query<Notice>,
) -> Response {
    let r = resident!(ui, r);
    // Only codes of this page come back through the address bar; anything else is ignored.
    let error = n
        .error
        .filter(|c| c.starts_with("channel.") && c.len() <= 40)
        .and_then(|c| {
            i18n::lookup(ui.lang, &c).map(|t| json!({ "code": c, "text": t, "field": "" }))
        });
    view(&ui, &app, &r, error, n.done.as_deref(), None).await
}

async fn view(
    ui: &Ui,
    app: &App,
    r: &Resident,
    error: Option<serde_json::Value>,
    done: Option<&str>,
    email_typed: Option<&str>,
) -> Response {
    let ch = match channels_of(app, r.user_id()).await {
        Ok(c) => c,
        Err(e) => return error_page(ui, &e),
    };
    let status = error
        .as_ref()
        .and_then(|e| e.get("status").and_then(|s| s.as_u64()))
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let email = ch.channels.iter().find(|c| c.kind == "email");
    let wechat = ch.channels.iter().find(|c| c.kind == "wechat");
    let done_text = done.and_then(|d| match d {
        "email_sent" => i18n::lookup(ui.lang, "channel.done.email_sent"),
        "email" => i18n::lookup(ui.lang, "channel.done.email"),
        "wechat" => i18n::lookup(ui.lang, "channel.done.wechat"),
        "removed" => i18n::lookup(ui.lang, "channel.done.removed"),
        _ => None,
    });
    render(
        ui,
        status,
        "resident_channels.html",
        context! {
            csrf => r.csrf().unwrap_or_default(),
            email => email.map(|c| json!({ "mask": c.address_mask, "verified": c.verified })),
            wechat => wechat.map(|c| json!({ "mask": c.address_mask })),
            wechat_available => ch.wechat_available,
            error => error,
            done => done_text,
            email_typed => email_typed.unwrap_or_default(),
        },
    )
}

fn form_error(ui: &Ui, e: &ApiError) -> serde_json::Value {
    json!({
        "code": e.code,
        "text": error_with_field(ui, e),
        "field": error_field(e),
        "status": e.status.as_u16(),
    })
}

/// The answer to a posted form: on to the page saying what was done, or the page again with
/// the error on it (what was typed into the address kept).
async fn answer<T>(
    ui: &Ui,
    app: &App,
    r: &Resident,
    got: Result<T, ApiError>,
    done: &str,
    typed: Option<&str>,
) -> Response {
    match got {
        Ok(_) => see_other(&format!("/resident/channels?done={done}")),
        Err(e) if shown_on_form(&e) || e.status == StatusCode::TOO_MANY_REQUESTS => {
            let err = form_error(ui, &e);
            view(ui, app, r, Some(err), None, typed).await
        }
        Err(e) => error_page(ui, &e),
    }
}

async fn add_email(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let r = resident!(ui, r);
    let address = forms::text(&f, "address").unwrap_or_default();
    let got = do_start_email(&app, &r, &address).await;
    answer(&ui, &app, &r, got, "email_sent", Some(&address)).await
}

async fn confirm(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let r = resident!(ui, r);
    let code = forms::text(&f, "code").unwrap_or_default();
    let got = do_confirm_email(&app, &r, &code).await;
    answer(&ui, &app, &r, got, "email", None).await
}

async fn remove(
    ui: Ui,
    State(app): State<App>,
    r: Result<Resident, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let r = resident!(ui, r);
    let kind = forms::text(&f, "kind").unwrap_or_default();
    let got = do_remove(&app, &r, &kind).await;
    answer(&ui, &app, &r, got, "removed", None).await
}
