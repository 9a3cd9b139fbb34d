//! A resident's own warning channels (issue 4): e-mail (verified by a code sent to the address)
//! and WeChat (bound through the service account's OAuth). Warnings go to verified channels of
//! the accounts linked to the people they reach (`anxin_store::warnings` fan-out).
//!
//! - `GET /api/v1/me/channels`: the caller's channels, masked, and whether WeChat binding is on.
//! - `POST /api/v1/me/channels/email/code` `{address}`: record the address and e-mail it a six-digit
//!   code (`202`); one code a minute per account (`429 rate.limited`).
//! - `POST /api/v1/me/channels/email/confirm` `{code}`: the code back; the address counts from now.
//! - `DELETE /api/v1/me/channels/{kind}`: stop sending there (`204`, `404` when there was none).
//! - `GET /resident/channels/wechat` (browser): off to WeChat's authorize page with a `state`
//!   tied to this session; WeChat comes back to `/resident/channels/wechat/callback` with a code,
//!   which the server trades for the openid at `{api_base}/sns/oauth2/access_token`.
//!
//! Only resident accounts have these channels; staff are reached through their duty phones.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anxin_store::audit;
use anxin_store::resident_channels::{self as rc, Channel, CodeCheck};

use crate::app::App;
use crate::http::error::body;
use crate::http::guard::Resident;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::platform::notify;

/// The e-mail template carrying the code.
pub const CODE_TEMPLATE: &str = "channel_code";
/// Keyed-hash context of the OAuth `state`.
const STATE_CONTEXT: &str = "resident_channels.wechat_state";

pub fn routes() -> Table {
    Table::new()
        .route("/api/v1/me/channels", &["GET"], Serves::Own, get(list))
        .route(
            "/api/v1/me/channels/email/code",
            &["POST"],
            Serves::Own,
            post(start_email),
        )
        .route(
            "/api/v1/me/channels/email/confirm",
            &["POST"],
            Serves::Own,
            post(confirm_email),
        )
        .route(
            "/api/v1/me/channels/{kind}",
            &["DELETE"],
            Serves::Own,
            delete(remove),
        )
        .route(
            "/resident/channels/wechat",
            &["GET"],
            Serves::Own,
            get(wechat_start),
        )
        .route(
            "/resident/channels/wechat/callback",
            &["GET"],
            Serves::Own,
            get(wechat_callback),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, start_email, confirm_email, remove),
    components(schemas(Channels, Channel, EmailInput, CodeInput, ChannelAnswer))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// The caller's channels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Channels {
    pub channels: Vec<Channel>,
    /// Whether this server can bind WeChat (a service account with OAuth is configured).
    pub wechat_available: bool,
}

/// An e-mail address to verify.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailInput {
    pub address: String,
}

/// The code that was e-mailed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    pub code: String,
}

/// The state of a channel after a step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelAnswer {
    pub channel: Channel,
}

fn wechat_available(app: &App) -> bool {
    app.config
        .notify
        .wechat
        .as_ref()
        .is_some_and(|w| w.oauth_redirect.is_some() && w.app_secret.is_some())
}

pub async fn channels_of(app: &App, user: Uuid) -> Result<Channels, ApiError> {
    let channels = app.store.read(move |c, _| rc::list(c, user)).await?;
    Ok(Channels {
        channels,
        wechat_available: wechat_available(app),
    })
}

/// The caller's channels, masked.
#[utoipa::path(get, path = "/api/v1/me/channels", tag = "auth",
    responses((status = 200, body = Channels)))]
async fn list(State(app): State<App>, r: Resident) -> Result<Json<Channels>, ApiError> {
    Ok(Json(channels_of(&app, r.user_id()).await?))
}

/// Record an address and e-mail it a code (the step both the API and the page take).
pub async fn do_start_email(app: &App, r: &Resident, address: &str) -> Result<Channel, ApiError> {
    let user = r.user_id();
    // Validate before counting, so a typo does not cost the minute.
    rc::parse_email(address)?;
    app.limits
        .by_account
        .check(&format!("channel-code:{user}"), 1, app.clock.now())
        .map_err(|l| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate.limited",
                "too many codes; try again later",
            )
            .with_details(serde_json::json!({ "retry_after": l.retry_after_secs }))
        })?;
    let code = anxin_crypto::new_numeric_code(6);
    let (c2, a2) = (code.clone(), address.to_owned());
    let (to, ch) = app
        .store
        .write(r.write_ctx(), move |tx| rc::start_email(tx, user, &a2, &c2))
        .await?;
    let minutes = rc::CODE_MINUTES.to_string();
    notify::send_email(
        app,
        &to,
        CODE_TEMPLATE,
        &[("code", &code), ("minutes", &minutes)],
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "channel code not recorded for sending");
        ApiError::invalid(
            "channel.email_invalid",
            "address",
            "cannot e-mail this address",
        )
    })?;
    Ok(ch)
}

/// Record an e-mail address and send it a code; warnings go there once the code is back.
#[utoipa::path(post, path = "/api/v1/me/channels/email/code", tag = "auth",
    request_body = EmailInput,
    responses((status = 202, body = ChannelAnswer)))]
async fn start_email(
    State(app): State<App>,
    r: Resident,
    b: Result<Json<EmailInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let channel = do_start_email(&app, &r, &input.address).await?;
    Ok((StatusCode::ACCEPTED, Json(ChannelAnswer { channel })))
}

/// Check the e-mailed code (the step both the API and the page take).
pub async fn do_confirm_email(app: &App, r: &Resident, code: &str) -> Result<Channel, ApiError> {
    let user = r.user_id();
    let code = code.trim().to_owned();
    if code.is_empty() || code.len() > 12 {
        return Err(ApiError::invalid(
            "channel.code_wrong",
            "code",
            "wrong code",
        ));
    }
    let entry = r.audit("channel.email_verified");
    let checked = app
        .store
        .write(r.write_ctx(), move |tx| {
            let checked = rc::confirm_email(tx, user, &code)?;
            if matches!(checked, CodeCheck::Verified(_)) {
                audit::record(tx, entry)?;
            }
            Ok(checked)
        })
        .await?;
    match checked {
        CodeCheck::Verified(ch) => Ok(ch),
        CodeCheck::Refused(code) => {
            Err(ApiError::invalid(code, "code", "the code was not accepted"))
        }
    }
}

/// Give back the e-mailed code.
#[utoipa::path(post, path = "/api/v1/me/channels/email/confirm", tag = "auth",
    request_body = CodeInput,
    responses((status = 200, body = ChannelAnswer)))]
async fn confirm_email(
    State(app): State<App>,
    r: Resident,
    b: Result<Json<CodeInput>, JsonRejection>,
) -> Result<Json<ChannelAnswer>, ApiError> {
    let input = body(b)?;
    let channel = do_confirm_email(&app, &r, &input.code).await?;
    Ok(Json(ChannelAnswer { channel }))
}

/// Remove a channel (the step both the API and the page take).
pub async fn do_remove(app: &App, r: &Resident, kind: &str) -> Result<(), ApiError> {
    let user = r.user_id();
    let kind = kind.to_owned();
    let removed = app
        .store
        .write(r.write_ctx(), move |tx| rc::remove(tx, user, &kind))
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such channel",
        ))
    }
}

/// Stop sending warnings to a channel.
#[utoipa::path(delete, path = "/api/v1/me/channels/{kind}", tag = "auth",
    params(("kind" = String, Path, description = "`email` or `wechat`")),
    responses((status = 204)))]
async fn remove(
    State(app): State<App>,
    r: Resident,
    Path(kind): Path<String>,
) -> Result<StatusCode, ApiError> {
    do_remove(&app, &r, &kind).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OAuth `state` of this session: a keyed hash, so the callback can check it came from the
/// same signed-in browser without storing anything.
fn oauth_state(app: &App, r: &Resident) -> String {
    let who = format!(
        "{}:{}",
        r.user_id(),
        r.session_id().map(|s| s.to_string()).unwrap_or_default()
    );
    hex::encode(&app.store.env().keys.blind(STATE_CONTEXT, &who)[..16])
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Off to WeChat's authorize page (silent `snsapi_base`: only the openid is asked for).
async fn wechat_start(State(app): State<App>, r: Resident) -> Response {
    let Some(w) = app
        .config
        .notify
        .wechat
        .as_ref()
        .filter(|_| wechat_available(&app))
    else {
        return Redirect::to("/resident/channels?error=channel.wechat_off").into_response();
    };
    let redirect = w.oauth_redirect.clone().unwrap_or_default();
    let url = format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state={}#wechat_redirect",
        w.oauth_base.trim_end_matches('/'),
        percent_encode(&w.app_id),
        percent_encode(&redirect),
        oauth_state(&app, &r)
    );
    Redirect::to(&url).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    openid: Option<String>,
    errcode: Option<i64>,
}

/// Trade WeChat's code for the openid and bind it.
async fn exchange(app: &App, code: &str) -> anyhow::Result<String> {
    let w = app
        .config
        .notify
        .wechat
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("wechat not configured"))?;
    let secret = w
        .app_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("wechat app secret not configured"))?;
    let client = crate::platform::channels::client(w.timeout_seconds)?;
    let url = format!(
        "{}/sns/oauth2/access_token",
        w.api_base.trim_end_matches('/')
    );
    let answer: TokenAnswer = client
        .get(url)
        .query(&[
            ("appid", w.app_id.as_str()),
            ("secret", secret.expose().as_str()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    match (answer.openid, answer.errcode) {
        (Some(o), None | Some(0)) => Ok(o),
        (_, e) => Err(anyhow::anyhow!("wechat oauth: errcode {}", e.unwrap_or(-1))),
    }
}

async fn wechat_callback(
    State(app): State<App>,
    r: Resident,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let back =
        |code: &str| Redirect::to(&format!("/resident/channels?error={code}")).into_response();
    let expected = oauth_state(&app, &r);
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| anxin_crypto::constant_time_eq(s.as_bytes(), expected.as_bytes()));
    let Some(code) = q
        .code
        .filter(|c| !c.is_empty() && c.len() <= 256 && state_ok)
    else {
        return back("channel.wechat_failed");
    };
    let openid = match exchange(&app, &code).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "wechat binding failed");
            return back("channel.wechat_failed");
        }
    };
    let user = r.user_id();
    match app
        .store
        .write(r.write_ctx(), move |tx| rc::bind_wechat(tx, user, &openid))
        .await
    {
        Ok(_) => Redirect::to("/resident/channels?done=wechat").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "wechat binding not stored");
            back("channel.wechat_failed")
        }
    }
}
