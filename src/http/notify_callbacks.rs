//! Provider callbacks: SMS delivery receipts and replies (`POST /api/v1/notify/sms/receipts`,
//! `POST /api/v1/notify/sms/replies`).
//!
//! No session: the provider authenticates with `notify.callback_secret`, either as a token
//! (`?token=…` in the callback address configured at the provider, or the `X-Anxin-Token`
//! header) or as a signature (`X-Anxin-Timestamp` and `X-Anxin-Signature` =
//! hex(HMAC-SHA256(secret, timestamp + "\n" + body)), the timestamp within five minutes of the
//! server's clock). While no secret is configured every callback is refused.
//!
//! Bodies are Tencent Cloud SMS's documented callback JSON (a receipt array of
//! `{sid, report_status, errmsg, user_receive_time, …}`; a reply `{mobile, nationcode, text,
//! time, …}`) or the generic shape (`{message_id, status, code, at, channel}`;
//! `{phone, text, message_id, at, channel}`), one object or an array of them. Receipts are matched
//! by the provider's message id; replies by it when given, else by the sender's phone (blind
//! index). Logs carry ids and masked numbers, never a number or a reply's text.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use anxin_domain::Phone;
use anxin_store::notify::{self as store_notify, NewReply, ReceiptStatus};

use crate::app::App;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::platform::channels::{verify_anxin_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub const RECEIPTS_PATH: &str = "/api/v1/notify/sms/receipts";
pub const REPLIES_PATH: &str = "/api/v1/notify/sms/replies";
const TOKEN_HEADER: &str = "x-anxin-token";
/// How far a signed callback's timestamp may be from the server's clock, in seconds.
const MAX_SKEW_SECONDS: i64 = 300;
/// Items in one callback at most.
const MAX_ITEMS: usize = 1000;

pub fn routes() -> Table {
    Table::new()
        .route(RECEIPTS_PATH, &["POST"], Serves::Public, post(receipts))
        .route(REPLIES_PATH, &["POST"], Serves::Public, post(replies))
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "notify.callback_unauthorized",
        "callback not authenticated",
    )
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::invalid("notify.callback_invalid", field, message)
}

fn query_token(q: Option<&str>) -> Option<String> {
    let q = q?;
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// The caller knows the callback secret: by signature, or by token.
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let secret = app
        .config
        .notify
        .callback_secret
        .as_ref()
        .map(|s| s.expose().as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(unauthorized)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(sig) = header(SIGNATURE_HEADER) {
        let ts: i64 = header(TIMESTAMP_HEADER)
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(unauthorized)?;
        if (app.clock.now().timestamp() - ts).abs() > MAX_SKEW_SECONDS
            || !verify_anxin_signature(secret, ts, body, sig)
        {
            return Err(unauthorized());
        }
        return Ok(());
    }
    let token = header(TOKEN_HEADER)
        .map(str::to_owned)
        .or_else(|| query_token(query))
        .ok_or_else(unauthorized)?;
    // Compare digests, so the time taken says nothing about the secret.
    if Sha256::digest(token.as_bytes()) == Sha256::digest(secret.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// One object or an array of them.
fn items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| invalid("body", "the body is not JSON"))?;
    let list = match v {
        Value::Array(a) => a,
        Value::Object(_) => vec![v],
        _ => return Err(invalid("body", "expected an object or an array of objects")),
    };
    if list.len() > MAX_ITEMS {
        return Err(invalid("body", "too many items"));
    }
    Ok(list)
}

fn channel_of(c: Option<&str>) -> Result<&'static str, ApiError> {
    match c.unwrap_or("sms") {
        "sms" => Ok("sms"),
        "voice" => Ok("voice"),
        _ => Err(invalid("channel", "channel must be sms or voice")),
    }
}

/// Tencent's `2015-10-17 08:03:04` is Beijing time.
fn beijing_time(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(naive.and_utc() - chrono::Duration::hours(8))
}

#[derive(Debug, Deserialize)]
struct ReceiptItem {
    #[serde(default, alias = "sid")]
    message_id: Option<String>,
    #[serde(default, alias = "report_status")]
    status: Option<String>,
    #[serde(default, alias = "errmsg")]
    code: Option<String>,
    #[serde(default)]
    user_receive_time: Option<String>,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    channel: Option<String>,
}

/// A delivery receipt, as the API document shows it (Tencent's field names are accepted too).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ReceiptDoc {
    /// The provider's message id (`sid`).
    message_id: String,
    /// `delivered`/`SUCCESS` or `failed`/`FAIL` (`report_status`).
    status: String,
    /// The provider's status code (`errmsg`, e.g. `DELIVRD`).
    code: Option<String>,
    /// When the handset received it (`user_receive_time`, Beijing time).
    at: Option<String>,
    /// `sms` (default) or `voice`.
    channel: Option<String>,
}

/// A reply, as the API document shows it (Tencent's `mobile`/`nationcode`/`time` accepted too).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ReplyDoc {
    /// The sender's phone; or `mobile` with `nationcode`.
    phone: Option<String>,
    text: String,
    /// The provider's id of the message answered, when it gives one.
    message_id: Option<String>,
    at: Option<String>,
    channel: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct CallbackAnswer {
    /// 0: accepted (the answer Tencent Cloud expects).
    result: i64,
    errmsg: String,
    /// Items recorded against a message.
    recorded: i64,
    /// Items with no matching message (kept for replies, ignored for receipts).
    unmatched: i64,
}

fn status_of(s: Option<&str>) -> Result<ReceiptStatus, ApiError> {
    match s.map(str::to_ascii_lowercase).as_deref() {
        Some("delivered" | "success" | "delivrd") => Ok(ReceiptStatus::Delivered),
        Some("failed" | "fail" | "undeliv") => Ok(ReceiptStatus::Failed),
        _ => Err(invalid("status", "status must be delivered or failed")),
    }
}

#[utoipa::path(
    post, path = "/api/v1/notify/sms/receipts", tag = "notify",
    request_body(content = Vec<ReceiptDoc>, description = "one receipt or an array of them"),
    params(("token" = Option<String>, Query, description = "the callback secret, unless the body is signed")),
    responses((status = 200, body = CallbackAnswer))
)]
async fn receipts(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers, query.as_deref(), &body)?;
    let mut parsed = Vec::new();
    for v in items(&body)? {
        let r: ReceiptItem =
            serde_json::from_value(v).map_err(|_| invalid("body", "not a receipt"))?;
        let id = r
            .message_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| invalid("message_id", "message_id (sid) is required"))?;
        let status = status_of(r.status.as_deref())?;
        let at = match (&r.at, &r.user_receive_time) {
            (Some(t), _) => *t,
            (None, Some(s)) => beijing_time(s)
                .ok_or_else(|| invalid("user_receive_time", "expected YYYY-MM-DD HH:MM:SS"))?,
            (None, None) => app.clock.now(),
        };
        parsed.push((channel_of(r.channel.as_deref())?, id, status, r.code, at));
    }
    let (mut recorded, mut unmatched) = (0, 0);
    for (channel, id, status, code, at) in parsed {
        match store_notify::record_receipt(&app.store, channel, &id, status, code, at).await? {
            Some(n) => {
                recorded += 1;
                tracing::info!(notification.id = %n, receipt = status.as_str(), "delivery receipt recorded");
            }
            None => unmatched += 1,
        }
    }
    if unmatched > 0 {
        tracing::info!(unmatched, "delivery receipts for unknown messages ignored");
    }
    Ok(Json(
        json!({ "result": 0, "errmsg": "OK", "recorded": recorded, "unmatched": unmatched }),
    ))
}

#[derive(Debug, Deserialize)]
struct ReplyItem {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    nationcode: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "sid")]
    message_id: Option<String>,
    /// Unix seconds (Tencent).
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    channel: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/notify/sms/replies", tag = "notify",
    request_body(content = Vec<ReplyDoc>, description = "one reply or an array of them"),
    params(("token" = Option<String>, Query, description = "the callback secret, unless the body is signed")),
    responses((status = 200, body = CallbackAnswer))
)]
async fn replies(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate(&app, &headers, query.as_deref(), &body)?;
    let mut parsed = Vec::new();
    for v in items(&body)? {
        let r: ReplyItem = serde_json::from_value(v).map_err(|_| invalid("body", "not a reply"))?;
        let raw_phone = match (&r.phone, &r.mobile) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(m)) => Some(format!(
                "+{}{}",
                r.nationcode
                    .as_deref()
                    .unwrap_or("86")
                    .trim_start_matches('+'),
                m
            )),
            (None, None) => None,
        };
        let phone = raw_phone
            .map(|p| Phone::parse(&p).map_err(|_| invalid("mobile", "not a phone number")))
            .transpose()?;
        let text = r
            .text
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("text", "text is required"))?;
        let message_id = r.message_id.filter(|s| !s.trim().is_empty());
        if phone.is_none() && message_id.is_none() {
            return Err(invalid("phone", "phone (mobile) or message_id is required"));
        }
        let at = match (r.at, r.time) {
            (Some(t), _) => t,
            (None, Some(secs)) => DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| invalid("time", "not a Unix time"))?,
            (None, None) => app.clock.now(),
        };
        parsed.push(NewReply {
            channel: channel_of(r.channel.as_deref())?.to_owned(),
            provider_ref: message_id,
            sender_mask: phone.as_ref().map(anxin_domain::mask_phone),
            sender: phone.map(|p| p.as_str().to_owned()),
            text,
            received_at: at,
        });
    }
    let (mut recorded, mut unmatched) = (0, 0);
    for r in parsed {
        let mask = r.sender_mask.clone().unwrap_or_default();
        let done = store_notify::record_reply(&app.store, r).await?;
        match done.notification_id {
            Some(n) => {
                recorded += 1;
                tracing::info!(reply.id = %done.id, notification.id = %n, sender = %mask, "reply recorded");
            }
            None => {
                unmatched += 1;
                tracing::info!(reply.id = %done.id, sender = %mask, "reply recorded, no message found for it");
            }
        }
    }
    Ok(Json(
        json!({ "result": 0, "errmsg": "OK", "recorded": recorded, "unmatched": unmatched }),
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(receipts, replies))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_is_eight_hours_ahead() {
        let t = beijing_time("2015-10-17 08:03:04").unwrap();
        assert_eq!(t.to_rfc3339(), "2015-10-17T00:03:04+00:00");
        assert!(beijing_time("yesterday").is_none());
    }

    #[test]
    fn token_from_query() {
        assert_eq!(query_token(Some("a=1&token=x%2By")).as_deref(), Some("x+y"));
        assert_eq!(query_token(Some("a=1")), None);
        assert_eq!(query_token(None), None);
    }
}
