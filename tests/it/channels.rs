//! Notification channels against local HTTP servers that speak the providers' documented
//! formats: Tencent Cloud SMS (TC3-HMAC-SHA256, checked by the server), a generic SMS gateway,
//! voice, WeChat template messages (access token, template send), WeCom and DingTalk robots
//! (DingTalk's sign checked by the server). Each provider answers success, a 5xx then success
//! (retried with backoff) and a refusal (permanent). Receipts and replies posted to the callback
//! endpoints update the records; a bad token or signature is refused. Both stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use anxin::config::{RobotConfig, SmsConfig, VoiceConfig, WechatConfig};
use anxin::platform::channels::anxin_signature;
use anxin::platform::notify::{self, ChannelKind, Outcome, Outgoing};
use anxin_crypto::Secret;
use anxin_domain::{Clock, Phone};
use anxin_store::notify as store_notify;
use anxin_store::params;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{client, Backend, TestApp};

const CALLBACK_SECRET: &str = "cb-secret-0123456789";
const TC_ID: &str = "AKIDtest0000";
const TC_KEY: &str = "tencent-secret-key";
const GENERIC_KEY: &str = "generic-gateway-key";
const DING_SECRET: &str = "SECtest-dingtalk";

// ---- a provider on loopback ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
    fn query_param(&self, name: &str) -> Option<String> {
        reqwest::Url::parse(&format!("http://x/?{}", self.query))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Default)]
struct MockState {
    seen: Vec<Seen>,
    /// Answers to give, per path, before the default.
    script: HashMap<String, VecDeque<(u16, Value)>>,
    default: HashMap<String, (u16, Value)>,
    /// Check TC3 signatures with this key (Tencent answers AuthFailure.SignatureFailure).
    tc3_key: Option<String>,
    /// Check DingTalk signs with this secret (DingTalk answers errcode 310000).
    ding_secret: Option<String>,
}

#[derive(Clone, Default)]
struct Mock(Arc<Mutex<MockState>>);

impl Mock {
    async fn start() -> (Mock, String) {
        let m = Mock::default();
        let router = axum::Router::new()
            .fallback(serve_mock)
            .with_state(m.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (m, format!("http://{addr}"))
    }
    fn default_answer(&self, path: &str, status: u16, body: Value) {
        self.0
            .lock()
            .unwrap()
            .default
            .insert(path.into(), (status, body));
    }
    fn then(&self, path: &str, status: u16, body: Value) {
        self.0
            .lock()
            .unwrap()
            .script
            .entry(path.into())
            .or_default()
            .push_back((status, body));
    }
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// Tencent's side of TC3-HMAC-SHA256, written from the "Signature v3" document: recompute the
/// signature from the request as received.
fn tc3_expected(seen: &Seen, key: &str) -> String {
    let ts: i64 = seen.header("x-tc-timestamp").parse().unwrap();
    let date = chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let host = seen.header("host");
    let ct = seen.header("content-type");
    let canonical = format!(
        "POST\n/\n\ncontent-type:{ct}\nhost:{host}\n\ncontent-type;host\n{}",
        hex::encode(Sha256::digest(&seen.body))
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac256(format!("TC3{key}").as_bytes(), date.as_bytes());
    let k = hmac256(&k, b"sms");
    let k = hmac256(&k, b"tc3_request");
    hex::encode(hmac256(&k, to_sign.as_bytes()))
}

async fn serve_mock(
    State(m): State<Mock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body: body.to_vec(),
    };
    let mut st = m.0.lock().unwrap();
    st.seen.push(seen.clone());
    // Tencent: a wrong signature is refused whatever the script says.
    if let (Some(key), Some(auth)) = (&st.tc3_key, seen.headers.get("authorization")) {
        let auth = auth.to_str().unwrap_or("");
        if auth.starts_with("TC3-HMAC-SHA256")
            && !auth.ends_with(&format!("Signature={}", tc3_expected(&seen, key)))
        {
            return (
                StatusCode::OK,
                Json(
                    json!({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "The provided credentials could not be validated."}, "RequestId": "r-0"}}),
                ),
            );
        }
    }
    // DingTalk: sign = base64(hmac_sha256(secret, "ts\nsecret")) over the received timestamp.
    if let Some(secret) = &st.ding_secret {
        if seen.path == "/robot/send" {
            let ts = seen.query_param("timestamp").unwrap_or_default();
            let want = base64::engine::general_purpose::STANDARD.encode(hmac256(
                secret.as_bytes(),
                format!("{ts}\n{secret}").as_bytes(),
            ));
            if seen.query_param("sign").as_deref() != Some(want.as_str()) {
                return (
                    StatusCode::OK,
                    Json(json!({"errcode": 310000, "errmsg": "sign not match"})),
                );
            }
        }
    }
    let path = seen.path.clone();
    let answer = st
        .script
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .or_else(|| st.default.get(&path).cloned())
        .unwrap_or((404, json!({"error": "no such path"})));
    (StatusCode::from_u16(answer.0).unwrap(), Json(answer.1))
}

fn tencent_ok(serial: &str, fee: i64) -> Value {
    json!({"Response": {"SendStatusSet": [{"SerialNo": serial, "PhoneNumber": "+8613800138000", "Fee": fee, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}})
}

fn secret(s: &str) -> Option<Secret<String>> {
    Some(Secret::new(s.to_owned()))
}

fn params(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn state(t: &TestApp, id: uuid::Uuid) -> store_notify::NotificationState {
    store_notify::state(t.store(), id).await.unwrap().unwrap()
}

// ---- SMS: Tencent Cloud ----------------------------------------------------------------------

both_backends!(
    tencent_sms_signed_retried_refused_receipts_and_replies,
    |backend: Backend| async move {
        let (mock, base) = Mock::start().await;
        mock.0.lock().unwrap().tc3_key = Some(TC_KEY.into());
        let endpoint = format!("{base}/");
        let t = TestApp::with_config(backend, move |c| {
            c.notify.sms = Some(SmsConfig {
                provider: "tencent".into(),
                endpoint,
                region: "ap-guangzhou".into(),
                app_id: "1400000001".into(),
                sign_name: "安心社区".into(),
                secret_id: TC_ID.into(),
                secret_key: secret(TC_KEY),
                templates: [("login_code".to_owned(), "100001".to_owned())].into(),
                timeout_seconds: 5,
            });
            c.notify.callback_secret = secret(CALLBACK_SECRET);
        })
        .await;
        let phone = Phone::parse("138 0013 8000").unwrap();

        // A 5xx, then success after the backoff.
        mock.then("/", 502, json!({}));
        mock.then("/", 200, tencent_ok("2433:1045710669157053657849499619", 1));
        let id = notify::send_sms(
            &t.app,
            &phone,
            "login_code",
            &[("code", "482913"), ("minutes", "5")],
        )
        .await
        .unwrap();
        let first = notify::deliver_one(&t.app, id).await.unwrap().unwrap();
        assert_eq!(
            first,
            Outcome::RetryAt(t.clock.now() + store_notify::backoff(1))
        );
        assert_eq!(
            state(&t, id).await.last_error.as_deref(),
            Some("tencent-sms: HTTP 502")
        );
        t.clock.advance(store_notify::backoff(1));
        assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);
        let st = state(&t, id).await;
        assert_eq!((st.status.as_str(), st.attempts), ("sent", 2));
        assert_eq!(
            st.provider_ref.as_deref(),
            Some("2433:1045710669157053657849499619")
        );
        assert_eq!(st.segments, Some(1));

        // The request as Tencent documents it.
        let reqs = mock.seen("/");
        assert_eq!(reqs.len(), 2);
        let r = &reqs[1];
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("x-tc-action"), "SendSms");
        assert_eq!(r.header("x-tc-version"), "2021-01-11");
        assert_eq!(r.header("x-tc-region"), "ap-guangzhou");
        assert_eq!(
            r.header("x-tc-timestamp"),
            t.clock.now().timestamp().to_string()
        );
        assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
        let date = t.clock.now().format("%Y-%m-%d").to_string();
        assert!(r.header("authorization").starts_with(&format!(
        "TC3-HMAC-SHA256 Credential={TC_ID}/{date}/sms/tc3_request, SignedHeaders=content-type;host, Signature="
    )));
        let b = r.json();
        assert_eq!(b["PhoneNumberSet"], json!(["+8613800138000"]));
        assert_eq!(b["SmsSdkAppId"], "1400000001");
        assert_eq!(b["SignName"], "安心社区");
        assert_eq!(b["TemplateId"], "100001");
        assert_eq!(b["TemplateParamSet"], json!(["482913", "5"]));

        // A refusal (a bad number) is permanent, and so is a wrong signature.
        mock.then("/", 200, json!({"Response": {"Error": {"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "incorrect number"}, "RequestId": "r-1"}}));
        let bad = notify::send_sms(
            &t.app,
            &phone,
            "login_code",
            &[("code", "1"), ("minutes", "5")],
        )
        .await
        .unwrap();
        assert_eq!(
            notify::deliver_one(&t.app, bad).await.unwrap(),
            Some(Outcome::Failed)
        );
        let st = state(&t, bad).await;
        assert_eq!(st.status, "failed");
        assert_eq!(
            st.last_error.as_deref(),
            Some("tencent-sms: InvalidParameterValue.IncorrectPhoneNumber")
        );
        mock.0.lock().unwrap().tc3_key = Some("another key".into());
        mock.default_answer("/", 200, tencent_ok("never", 1));
        let wrong = notify::send_sms(
            &t.app,
            &phone,
            "login_code",
            &[("code", "2"), ("minutes", "5")],
        )
        .await
        .unwrap();
        assert_eq!(
            notify::deliver_one(&t.app, wrong).await.unwrap(),
            Some(Outcome::Failed)
        );
        assert_eq!(
            state(&t, wrong).await.last_error.as_deref(),
            Some("tencent-sms: AuthFailure.SignatureFailure")
        );

        // Receipts: Tencent's callback body, with the token in the callback address.
        let app_base = t.serve().await;
        let http = client();
        let receipt = json!([{
            "user_receive_time": "2026-11-02 09:00:05",
            "nationcode": "86",
            "mobile": "13800138000",
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": "2433:1045710669157053657849499619"
        }]);
        let url = format!("{app_base}/api/v1/notify/sms/receipts");
        let refused = http
            .post(format!("{url}?token=wrong"))
            .json(&receipt)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        let e: Value = refused.json().await.unwrap();
        assert_eq!(e["error"]["code"], "notify.callback_unauthorized");
        assert_eq!(state(&t, id).await.receipt_status, None);
        let unsigned = http.post(&url).json(&receipt).send().await.unwrap();
        assert_eq!(unsigned.status(), 401);

        let ok = http
            .post(format!("{url}?token={CALLBACK_SECRET}"))
            .json(&receipt)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let a: Value = ok.json().await.unwrap();
        assert_eq!(
            (a["result"].as_i64(), a["recorded"].as_i64()),
            (Some(0), Some(1))
        );
        let st = state(&t, id).await;
        assert_eq!(st.receipt_status.as_deref(), Some("delivered"));
        assert_eq!(st.receipt_code.as_deref(), Some("DELIVRD"));
        assert_eq!(
            st.receipt_at.unwrap().to_rfc3339(),
            "2026-11-02T01:00:05+00:00",
            "user_receive_time is Beijing time"
        );
        // A receipt for a message nobody sent changes nothing; a malformed one names its field.
        let a: Value = http
            .post(format!("{url}?token={CALLBACK_SECRET}"))
            .json(&json!({"sid": "unknown", "report_status": "FAIL", "errmsg": "UNDELIV"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (a["recorded"].as_i64(), a["unmatched"].as_i64()),
            (Some(0), Some(1))
        );
        let bad_receipt = http
            .post(format!("{url}?token={CALLBACK_SECRET}"))
            .json(&json!({"report_status": "SUCCESS"}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad_receipt.status(), 422);
        let e: Value = bad_receipt.json().await.unwrap();
        assert_eq!(e["error"]["code"], "notify.callback_invalid");
        assert_eq!(e["error"]["details"]["field"], "message_id");

        // A reply (Tencent's 上行 body), signed; linked by the sender's phone.
        let reply = serde_json::to_vec(&json!({
            "extend": "", "mobile": "13800138000", "nationcode": "86", "sign": "安心社区",
            "text": "我很安全，谢谢", "time": t.clock.now().timestamp() + 30
        }))
        .unwrap();
        let replies_url = format!("{app_base}/api/v1/notify/sms/replies");
        let ts = t.clock.now().timestamp();
        let forged = http
            .post(&replies_url)
            .header("content-type", "application/json")
            .header("x-anxin-timestamp", ts.to_string())
            .header(
                "x-anxin-signature",
                anxin_signature("not the secret", ts, &reply),
            )
            .body(reply.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
        let stale = http
            .post(&replies_url)
            .header("content-type", "application/json")
            .header("x-anxin-timestamp", (ts - 3600).to_string())
            .header(
                "x-anxin-signature",
                anxin_signature(CALLBACK_SECRET, ts - 3600, &reply),
            )
            .body(reply.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            stale.status(),
            401,
            "a replayed hour-old callback is refused"
        );
        assert!(store_notify::replies(t.store(), id)
            .await
            .unwrap()
            .is_empty());
        let ok = http
            .post(&replies_url)
            .header("content-type", "application/json")
            .header("x-anxin-timestamp", ts.to_string())
            .header(
                "x-anxin-signature",
                anxin_signature(CALLBACK_SECRET, ts, &reply),
            )
            .body(reply.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let a: Value = ok.json().await.unwrap();
        assert_eq!(a["recorded"].as_i64(), Some(1));
        // The latest message sent to that phone is the one answered: `id` (the others failed).
        let rs = store_notify::replies(t.store(), id).await.unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].text, "我很安全，谢谢");
        assert_eq!(rs[0].sender_mask.as_deref(), Some("138****8000"));
        assert_eq!(
            state(&t, id).await.replied_at,
            Some(t.clock.now() + chrono::Duration::seconds(30))
        );
        // At rest: neither the text nor the number in clear.
        let (text_ct, bidx) = t
            .store()
            .read(|c, _| {
                let r = c
                    .query_one("SELECT text_ct, sender_bidx FROM notification_replies", &[])?
                    .unwrap();
                Ok((
                    r.get::<Vec<u8>>("text_ct")?,
                    r.get::<Vec<u8>>("sender_bidx")?,
                ))
            })
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&text_ct).contains("安全"));
        assert!(!String::from_utf8_lossy(&bidx).contains("13800138000"));
    }
);

// ---- SMS: generic gateway, and voice ---------------------------------------------------------

both_backends!(
    generic_sms_and_voice_are_signed_retried_and_refused,
    |backend: Backend| async move {
        let (mock, base) = Mock::start().await;
        let (sms_url, voice_url) = (format!("{base}/sms/send"), format!("{base}/voice/call"));
        let t = TestApp::with_config(backend, move |c| {
            c.notify.sms = Some(SmsConfig {
                provider: "generic".into(),
                endpoint: sms_url,
                region: String::new(),
                app_id: String::new(),
                sign_name: String::new(),
                secret_id: String::new(),
                secret_key: secret(GENERIC_KEY),
                templates: BTreeMap::new(),
                timeout_seconds: 5,
            });
            c.notify.voice = Some(VoiceConfig {
                endpoint: voice_url,
                api_key: secret(GENERIC_KEY),
                templates: [("login_code".to_owned(), "TTS_0001".to_owned())].into(),
                repeat: 2,
                timeout_seconds: 5,
            });
            c.notify.callback_secret = secret(CALLBACK_SECRET);
        })
        .await;
        let phone = Phone::parse("13900139000").unwrap();

        // Generic SMS: a long Chinese text is three UCS-2 parts.
        mock.default_answer("/sms/send", 200, json!({"message_id": "gw-77"}));
        let long = "今晚暴雨，低洼地区居民请注意防范，".repeat(8);
        let id = notify::enqueue(
            &t.app,
            ChannelKind::Sms,
            phone.as_str().to_owned(),
            anxin_domain::mask_phone(&phone),
            "login_code",
            params(&[("code", &long), ("minutes", "5")]),
        )
        .await
        .unwrap();
        assert_eq!(
            notify::deliver_one(&t.app, id).await.unwrap(),
            Some(Outcome::Sent)
        );
        let r = &mock.seen("/sms/send")[0];
        assert_eq!(r.header("authorization"), format!("Bearer {GENERIC_KEY}"));
        let ts: i64 = r.header("x-anxin-timestamp").parse().unwrap();
        assert_eq!(ts, t.clock.now().timestamp());
        assert_eq!(
            r.header("x-anxin-signature"),
            hex::encode(hmac256(
                GENERIC_KEY.as_bytes(),
                &[format!("{ts}\n").as_bytes(), &r.body].concat()
            ))
        );
        let b = r.json();
        assert_eq!(b["id"], id.to_string());
        assert_eq!(b["to"], "+8613900139000");
        assert_eq!(b["template"], "login_code");
        assert_eq!(b["params"]["minutes"], "5");
        let text = b["text"].as_str().unwrap();
        let units = text.encode_utf16().count();
        let parts = i64::try_from(units.div_ceil(67)).unwrap();
        assert!(parts >= 3, "{units}");
        assert_eq!(b["segments"].as_i64(), Some(parts));
        let st = state(&t, id).await;
        assert_eq!(
            (st.provider_ref.as_deref(), st.segments),
            (Some("gw-77"), Some(parts))
        );

        // Voice: a 4xx is permanent.
        mock.then("/voice/call", 400, json!({"error": "bad template"}));
        let v1 = notify::enqueue(
            &t.app,
            ChannelKind::Voice,
            phone.as_str().to_owned(),
            anxin_domain::mask_phone(&phone),
            "login_code",
            params(&[("code", "1234"), ("minutes", "5")]),
        )
        .await
        .unwrap();
        assert_eq!(
            notify::deliver_one(&t.app, v1).await.unwrap(),
            Some(Outcome::Failed)
        );
        assert_eq!(
            state(&t, v1).await.last_error.as_deref(),
            Some("voice: HTTP 400")
        );
        // A 503, then accepted.
        mock.then("/voice/call", 503, json!({}));
        mock.then("/voice/call", 200, json!({"call_id": "call-9"}));
        let v2 = notify::enqueue(
            &t.app,
            ChannelKind::Voice,
            phone.as_str().to_owned(),
            anxin_domain::mask_phone(&phone),
            "login_code",
            params(&[("code", "5678"), ("minutes", "5")]),
        )
        .await
        .unwrap();
        assert!(matches!(
            notify::deliver_one(&t.app, v2).await.unwrap(),
            Some(Outcome::RetryAt(_))
        ));
        t.clock.advance(store_notify::backoff(1));
        assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 1);
        let st = state(&t, v2).await;
        assert_eq!(
            (st.status.as_str(), st.provider_ref.as_deref()),
            ("sent", Some("call-9"))
        );
        let calls = mock.seen("/voice/call");
        let b = calls.last().unwrap().json();
        assert_eq!(b["tts_template"], "TTS_0001");
        assert_eq!(b["repeat"], 2);
        assert!(
            !b["text"].as_str().unwrap().starts_with('【'),
            "the signature is not spoken"
        );
        assert!(b["text"].as_str().unwrap().contains("5678"));

        // The voice provider's receipt (generic shape, signed): the call was not answered.
        let app_base = t.serve().await;
        let body = serde_json::to_vec(&json!([{
            "message_id": "call-9", "status": "failed", "code": "NO_ANSWER", "channel": "voice",
            "at": "2026-11-02T01:05:00Z"
        }]))
        .unwrap();
        let ts = t.clock.now().timestamp();
        let r = client()
            .post(format!("{app_base}/api/v1/notify/sms/receipts"))
            .header("content-type", "application/json")
            .header("x-anxin-timestamp", ts.to_string())
            .header(
                "x-anxin-signature",
                anxin_signature(CALLBACK_SECRET, ts, &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let st = state(&t, v2).await;
        assert_eq!(
            (st.receipt_status.as_deref(), st.receipt_code.as_deref()),
            (Some("failed"), Some("NO_ANSWER"))
        );
        // The generic SMS gateway's reply quoting the message id.
        let body = serde_json::to_vec(&json!({"message_id": "gw-77", "text": "收到"})).unwrap();
        let r = client()
            .post(format!("{app_base}/api/v1/notify/sms/replies"))
            .header("x-anxin-token", CALLBACK_SECRET)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rs = store_notify::replies(t.store(), id).await.unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!(
            (rs[0].text.as_str(), rs[0].sender_mask.as_deref()),
            ("收到", None)
        );
    }
);

// ---- WeChat ----------------------------------------------------------------------------------

both_backends!(
    wechat_template_messages_with_a_cached_token,
    |backend: Backend| async move {
        let (mock, base) = Mock::start().await;
        let t = TestApp::with_config(backend, move |c| {
            c.notify.wechat = Some(WechatConfig {
                app_id: "wx0123456789abcdef".into(),
                app_secret: secret("wechat-app-secret"),
                api_base: base,
                templates: [("notice".to_owned(), "TPL-notice-1".to_owned())].into(),
                url: Some("https://anxin.example.gov.cn/r".into()),
                oauth_base: "https://open.weixin.qq.com".into(),
                oauth_redirect: None,
                timeout_seconds: 5,
            });
        })
        .await;
        mock.then(
            "/cgi-bin/token",
            200,
            json!({"access_token": "TOKEN-1", "expires_in": 7200}),
        );
        mock.then(
            "/cgi-bin/token",
            200,
            json!({"access_token": "TOKEN-2", "expires_in": 7200}),
        );
        mock.default_answer(
            "/cgi-bin/message/template/send",
            200,
            json!({"errcode": 0, "errmsg": "ok", "msgid": 200228332}),
        );
        let send = |openid: &'static str| {
            let app = t.app.clone();
            async move {
                let id = notify::enqueue(
                    &app,
                    ChannelKind::Wechat,
                    openid.into(),
                    "o***abc".into(),
                    "notice",
                    params(&[("title", "防汛提醒"), ("body", "今晚有暴雨，请关好门窗。")]),
                )
                .await
                .unwrap();
                (id, notify::deliver_one(&app, id).await.unwrap())
            }
        };
        let (a, out) = send("oOPENID-a").await;
        assert_eq!(out, Some(Outcome::Sent));
        let (_, out) = send("oOPENID-b").await;
        assert_eq!(out, Some(Outcome::Sent));
        assert_eq!(mock.seen("/cgi-bin/token").len(), 1, "the token is cached");
        let tok = &mock.seen("/cgi-bin/token")[0];
        assert_eq!(tok.method, "GET");
        assert_eq!(
            tok.query_param("grant_type").as_deref(),
            Some("client_credential")
        );
        assert_eq!(
            tok.query_param("appid").as_deref(),
            Some("wx0123456789abcdef")
        );
        assert_eq!(
            tok.query_param("secret").as_deref(),
            Some("wechat-app-secret")
        );
        let sends = mock.seen("/cgi-bin/message/template/send");
        assert_eq!(
            sends[0].query_param("access_token").as_deref(),
            Some("TOKEN-1")
        );
        let b = sends[0].json();
        assert_eq!(b["touser"], "oOPENID-a");
        assert_eq!(b["template_id"], "TPL-notice-1");
        assert_eq!(b["url"], "https://anxin.example.gov.cn/r");
        assert_eq!(b["data"]["title"]["value"], "防汛提醒");
        assert_eq!(b["data"]["body"]["value"], "今晚有暴雨，请关好门窗。");
        assert_eq!(
            state(&t, a).await.provider_ref.as_deref(),
            Some("200228332")
        );

        // An expired token: fetched again and the message sent at once.
        mock.then(
            "/cgi-bin/message/template/send",
            200,
            json!({"errcode": 42001, "errmsg": "access_token expired"}),
        );
        let (_, out) = send("oOPENID-c").await;
        assert_eq!(out, Some(Outcome::Sent));
        assert_eq!(mock.seen("/cgi-bin/token").len(), 2);
        let sends = mock.seen("/cgi-bin/message/template/send");
        assert_eq!(
            sends.last().unwrap().query_param("access_token").as_deref(),
            Some("TOKEN-2")
        );

        // Busy (-1) is retried; a resident who does not follow the account (43004) is permanent.
        mock.then(
            "/cgi-bin/message/template/send",
            200,
            json!({"errcode": -1, "errmsg": "system error"}),
        );
        let (_, out) = send("oOPENID-d").await;
        assert!(matches!(out, Some(Outcome::RetryAt(_))));
        mock.then(
            "/cgi-bin/message/template/send",
            200,
            json!({"errcode": 43004, "errmsg": "require subscribe"}),
        );
        let (e, out) = send("oOPENID-e").await;
        assert_eq!(out, Some(Outcome::Failed));
        assert_eq!(
            state(&t, e).await.last_error.as_deref(),
            Some("wechat: errcode 43004")
        );
        // A token that expires by the app's clock is fetched again.
        t.clock.advance(chrono::Duration::hours(2));
        mock.then(
            "/cgi-bin/token",
            200,
            json!({"access_token": "TOKEN-3", "expires_in": 7200}),
        );
        let (_, out) = send("oOPENID-f").await;
        assert_eq!(out, Some(Outcome::Sent));
        assert_eq!(mock.seen("/cgi-bin/token").len(), 3);
    }
);

// ---- group robots ----------------------------------------------------------------------------

both_backends!(wecom_and_dingtalk_robots, |backend: Backend| async move {
    let (mock, base) = Mock::start().await;
    mock.0.lock().unwrap().ding_secret = Some(DING_SECRET.into());
    let (wecom_hook, ding_hook) = (
        format!("{base}/cgi-bin/webhook/send?key=wecom-key-1"),
        format!("{base}/robot/send?access_token=ding-token-1"),
    );
    let t = TestApp::with_config(backend, move |c| {
        c.notify.robots = vec![
            RobotConfig {
                name: "duty-wecom".into(),
                kind: "wecom".into(),
                webhook: secret(&wecom_hook),
                secret: None,
                format: "markdown".into(),
                timeout_seconds: 5,
            },
            RobotConfig {
                name: "duty-ding".into(),
                kind: "dingtalk".into(),
                webhook: secret(&ding_hook),
                secret: secret(DING_SECRET),
                format: "markdown".into(),
                timeout_seconds: 5,
            },
        ];
    })
    .await;
    let send = |kind: ChannelKind, robot: &'static str| {
        let app = t.app.clone();
        async move {
            let id = notify::enqueue(
                &app,
                kind,
                robot.into(),
                robot.into(),
                "notice",
                params(&[
                    ("title", "橙色预警"),
                    ("body", "河道水位超警戒，请值班人员到岗。"),
                ]),
            )
            .await
            .unwrap();
            (id, notify::deliver_one(&app, id).await.unwrap())
        }
    };
    // WeCom markdown.
    mock.default_answer(
        "/cgi-bin/webhook/send",
        200,
        json!({"errcode": 0, "errmsg": "ok"}),
    );
    let (_, out) = send(ChannelKind::Wecom, "duty-wecom").await;
    assert_eq!(out, Some(Outcome::Sent));
    let r = &mock.seen("/cgi-bin/webhook/send")[0];
    assert_eq!(r.query_param("key").as_deref(), Some("wecom-key-1"));
    let b = r.json();
    assert_eq!(b["msgtype"], "markdown");
    let content = b["markdown"]["content"].as_str().unwrap();
    assert!(
        content.contains("橙色预警") && content.contains("河道水位超警戒"),
        "{content}"
    );
    // Rate limited (45009) is retried; a wrong key (93000) is permanent.
    mock.then(
        "/cgi-bin/webhook/send",
        200,
        json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
    );
    let (_, out) = send(ChannelKind::Wecom, "duty-wecom").await;
    assert!(matches!(out, Some(Outcome::RetryAt(_))));
    mock.then(
        "/cgi-bin/webhook/send",
        200,
        json!({"errcode": 93000, "errmsg": "invalid webhook url"}),
    );
    let (_, out) = send(ChannelKind::Wecom, "duty-wecom").await;
    assert_eq!(out, Some(Outcome::Failed));

    // DingTalk, signed: the server checks timestamp and sign.
    mock.default_answer("/robot/send", 200, json!({"errcode": 0, "errmsg": "ok"}));
    let (d, out) = send(ChannelKind::Dingtalk, "duty-ding").await;
    assert_eq!(
        out,
        Some(Outcome::Sent),
        "{:?}",
        state(&t, d).await.last_error
    );
    let r = &mock.seen("/robot/send")[0];
    assert_eq!(
        r.query_param("access_token").as_deref(),
        Some("ding-token-1")
    );
    assert_eq!(
        r.query_param("timestamp").unwrap(),
        t.clock.now().timestamp_millis().to_string()
    );
    let b = r.json();
    assert_eq!(b["msgtype"], "markdown");
    assert_eq!(b["markdown"]["title"], "【安心社区】橙色预警");
    assert!(b["markdown"]["text"]
        .as_str()
        .unwrap()
        .contains("河道水位超警戒"));
    // HTTP 500 then success; send too fast (130101) retried.
    mock.then("/robot/send", 500, json!({}));
    let (d2, out) = send(ChannelKind::Dingtalk, "duty-ding").await;
    assert!(matches!(out, Some(Outcome::RetryAt(_))));
    t.clock.advance(store_notify::backoff(1));
    assert_eq!(
        notify::deliver_one(&t.app, d2).await.unwrap(),
        Some(Outcome::Sent)
    );
    mock.then(
        "/robot/send",
        200,
        json!({"errcode": 130101, "errmsg": "send too fast"}),
    );
    let (_, out) = send(ChannelKind::Dingtalk, "duty-ding").await;
    assert!(matches!(out, Some(Outcome::RetryAt(_))));
    // A wrong secret: DingTalk refuses the sign (310000), permanently.
    mock.0.lock().unwrap().ding_secret = Some("SECanother".into());
    let (bad, out) = send(ChannelKind::Dingtalk, "duty-ding").await;
    assert_eq!(out, Some(Outcome::Failed));
    assert_eq!(
        state(&t, bad).await.last_error.as_deref(),
        Some("dingtalk: errcode 310000")
    );
    // A robot that is not configured is refused at enqueue, naming the recipient.
    let e = notify::enqueue(
        &t.app,
        ChannelKind::Dingtalk,
        "no-such-robot".into(),
        "no-such-robot".into(),
        "notice",
        params(&[("title", "x"), ("body", "y")]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("recipient: no dingtalk robot named no-such-robot"),
        "{e}"
    );
    assert_eq!(
        t.app.notifier.robot_names(ChannelKind::Wecom),
        ["duty-wecom"]
    );
});

// ---- bulk ------------------------------------------------------------------------------------

both_stores!(enqueue_many_records_all_or_none, |t: TestApp| async move {
    let phones: Vec<Phone> = (0..3)
        .map(|i| Phone::parse(&format!("1380013800{i}")).unwrap())
        .collect();
    let item = |p: &Phone, params: BTreeMap<String, String>| Outgoing {
        channel: ChannelKind::Sms,
        recipient: p.as_str().to_owned(),
        recipient_mask: anxin_domain::mask_phone(p),
        template_id: "login_code".into(),
        params,
    };
    let good = params(&[("code", "1"), ("minutes", "5")]);
    // One bad message: nothing recorded, and the error says which.
    let err = notify::enqueue_many(
        &t.app,
        vec![
            item(&phones[0], good.clone()),
            item(&phones[1], params(&[("code", "1")])),
        ],
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("message 1"), "{err:#}");
    let n = t
        .store()
        .read(|c, _| c.query_i64("SELECT count(*) FROM notifications", &[]))
        .await
        .unwrap();
    assert_eq!(n, 0);
    let ids = notify::enqueue_many(
        &t.app,
        phones.iter().map(|p| item(p, good.clone())).collect(),
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(state(&t, *id).await.status, "pending");
    }
    assert_eq!(notify::deliver_due(&t.app).await.unwrap(), 3);
    let out = notify::outbox_messages(&t.app, ChannelKind::Sms)
        .await
        .unwrap();
    let mut to: Vec<&str> = out.iter().map(|m| m.to.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["+8613800138000", "+8613800138001", "+8613800138002"]);
    for id in &ids {
        assert_eq!(state(&t, *id).await.segments, Some(1));
    }
    // Recipients' phones are blind-indexed, not stored in clear.
    let first = ids[0];
    let bidx = t
        .store()
        .read(move |c, _| {
            c.query_one(
                "SELECT recipient_bidx FROM notifications WHERE id = $1",
                &params![first],
            )?
            .unwrap()
            .get::<Vec<u8>>("recipient_bidx")
        })
        .await
        .unwrap();
    assert!(!bidx.is_empty() && !String::from_utf8_lossy(&bidx).contains("1380013800"));
});

// ---- every channel has a name ----------------------------------------------------------------

#[test]
fn channel_kinds_round_trip() {
    for k in ChannelKind::ALL {
        assert_eq!(ChannelKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(ChannelKind::parse("fax"), None);
    assert!(ChannelKind::Wecom.is_group() && !ChannelKind::Sms.is_group());
}

#[test]
fn provider_configuration_is_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::support::config_for("sqlite://x.db", dir.path());
    let sms = SmsConfig {
        provider: "aliyun".into(),
        endpoint: "https://sms.example.com".into(),
        region: "ap-guangzhou".into(),
        app_id: "1".into(),
        sign_name: "安心社区".into(),
        secret_id: "id".into(),
        secret_key: secret("k"),
        templates: BTreeMap::new(),
        timeout_seconds: 5,
    };
    let mut c = base.clone();
    c.notify.sms = Some(sms.clone());
    let e = notify::Notifier::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("notify.sms.provider"), "{e}");
    let mut c = base.clone();
    c.notify.sms = Some(SmsConfig {
        provider: "tencent".into(),
        secret_key: None,
        ..sms.clone()
    });
    let e = notify::Notifier::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("secret_key"), "{e}");
    let mut c = base.clone();
    c.notify.robots = vec![RobotConfig {
        name: "g".into(),
        kind: "slack".into(),
        webhook: secret("https://example.com/hook"),
        secret: None,
        format: "markdown".into(),
        timeout_seconds: 5,
    }];
    let e = notify::Notifier::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("wecom or dingtalk"), "{e}");
    // Templates: notify.sms.templates, with the older sms_login_template as a fallback.
    let mut c = base;
    c.notify.sms_login_template = Some("OLD".into());
    let n = notify::Notifier::from_config(&c).unwrap();
    assert_eq!(
        n.provider_template(ChannelKind::Sms, "login_code")
            .as_deref(),
        Some("OLD")
    );
    c.notify.sms = Some(SmsConfig {
        provider: "generic".into(),
        templates: [("login_code".to_owned(), "NEW".to_owned())].into(),
        ..sms
    });
    let n = notify::Notifier::from_config(&c).unwrap();
    assert_eq!(
        n.provider_template(ChannelKind::Sms, "login_code")
            .as_deref(),
        Some("NEW")
    );
    assert_eq!(n.channel(ChannelKind::Sms).unwrap().name(), "generic-sms");
    assert_eq!(n.channel(ChannelKind::Wecom).unwrap().name(), "outbox");
}

#[test]
fn channel_configuration_reads_from_toml() {
    let toml = r#"
[notify]
robots = [{ name = "duty", kind = "wecom", webhook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" }]
[notify.sms]
provider = "tencent"
endpoint = "https://sms.tencentcloudapi.com"
app_id = "1400000001"
sign_name = "安心社区"
secret_id = "AKID"
secret_key = "sk"
[notify.sms.templates]
login_code = "100001"
"#;
    let c: anxin::config::Config = toml::from_str(toml).unwrap();
    let sms = c.notify.sms.as_ref().unwrap();
    assert_eq!(
        (sms.region.as_str(), sms.timeout_seconds),
        ("ap-guangzhou", 10)
    );
    assert_eq!(sms.templates["login_code"], "100001");
    assert_eq!(c.notify.robots[0].format, "markdown");
    // Secrets never reach the generated example.
    let out = toml::to_string(&c).unwrap();
    assert!(!out.contains("sk\"") && !out.contains("key=k"), "{out}");
    assert!(toml::from_str::<anxin::config::Config>(
        "[notify.sms]\nprovider = \"x\"\nendpoint = \"y\"\nbogus = 1\n"
    )
    .is_err());
}

/// A measurement, not a check: `cargo nextest run -p anxin --test it --run-ignored only
/// enqueue_many_5000 --no-capture` prints how long recording 5,000 SMS takes in one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn enqueue_many_5000_timing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let t = TestApp::new(backend).await;
        let items: Vec<Outgoing> = (0..5000)
            .map(|i| {
                let p = Phone::parse(&format!("139{i:08}")).unwrap();
                Outgoing {
                    channel: ChannelKind::Sms,
                    recipient: p.as_str().to_owned(),
                    recipient_mask: anxin_domain::mask_phone(&p),
                    template_id: "login_code".into(),
                    params: params(&[("code", "1"), ("minutes", "5")]),
                }
            })
            .collect();
        let start = std::time::Instant::now();
        let ids = notify::enqueue_many(&t.app, items).await.unwrap();
        let took = start.elapsed();
        assert_eq!(ids.len(), 5000);
        println!("{backend:?}: enqueue_many of 5000 SMS in {took:?}");
    }
}

// ---- residents' own channels carry warnings ----------------------------------------------------

/// The code in the latest e-mail of template `channel_code` to `to` (from the outbox).
async fn emailed_code(t: &TestApp, to: &str) -> String {
    notify::deliver_due(&t.app).await.unwrap();
    let out = notify::outbox_messages(&t.app, ChannelKind::Email)
        .await
        .unwrap();
    let m = out
        .iter()
        .rev()
        .find(|m| m.template == "channel_code" && m.to == to)
        .expect("a code e-mail");
    assert!(
        !m.subject
            .as_deref()
            .unwrap_or("")
            .contains(&m.params["code"]),
        "the code stays out of the subject"
    );
    assert!(m.body.contains(&m.params["code"]));
    m.params["code"].clone()
}

both_backends!(
    residents_own_channels_carry_warnings,
    |backend: Backend| async move {
        use crate::world::{self, call, staff, user};
        use anxin_domain::{Role, Scope};
        use anxin_store::accounts::UserKind;
        use anxin_store::WriteCtx;

        let (mock, api_base) = Mock::start().await;
        let t = TestApp::with_config(backend, move |c| {
            c.notify.wechat = Some(WechatConfig {
                app_id: "wx0123456789abcdef".into(),
                app_secret: secret("wechat-app-secret"),
                api_base,
                templates: [("warning".to_owned(), "TPL-warning-1".to_owned())].into(),
                url: None,
                oauth_base: "https://open.weixin.qq.com".into(),
                oauth_redirect: Some(
                    "https://anxin.example.gov.cn/resident/channels/wechat/callback".into(),
                ),
                timeout_seconds: 5,
            });
        })
        .await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let resident = user(
            &t,
            "resident_a1",
            UserKind::Resident,
            None,
            Some(w.person_a1),
        )
        .await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        // person_a1 (who has a phone) asked to be phoned: a vulnerable person, contact by call.
        let p = w.person_a1;
        t.store()
            .write(WriteCtx::system("vulnerable"), move |tx| {
                anxin_store::people::add_vulnerable(
                    tx,
                    &anxin_store::scope::Caller::system(),
                    &anxin_store::people::VulnerableInput {
                        person_id: p,
                        category: "elderly_alone".into(),
                        helper_user_id: None,
                        contact_channel: "phone_call".into(),
                        notes: None,
                    },
                )
            })
            .await
            .unwrap();

        // ---- e-mail: a bad address is named; a good one gets a code; the code verifies it.
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            "/api/v1/me/channels/email/code",
            Some(json!({"address": "zhang at example"})),
        )
        .await;
        assert_eq!(
            (
                s,
                b["error"]["code"].as_str(),
                b["error"]["details"]["field"].as_str()
            ),
            (422, Some("channel.email_invalid"), Some("address")),
            "{b}"
        );
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            "/api/v1/me/channels/email/code",
            Some(json!({"address": "Zhang.San@Example.com"})),
        )
        .await;
        assert_eq!(s, 202, "{b}");
        assert_eq!(b["channel"]["address_mask"], "Z***@example.com");
        assert_eq!(b["channel"]["verified"], false);
        // A second code within the minute is refused.
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            "/api/v1/me/channels/email/code",
            Some(json!({"address": "zhang.san@example.com"})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (429, Some("rate.limited")),
            "{b}"
        );
        let code = emailed_code(&t, "Zhang.San@example.com").await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            "/api/v1/me/channels/email/confirm",
            Some(json!({"code": wrong})),
        )
        .await;
        assert_eq!(
            (
                s,
                b["error"]["code"].as_str(),
                b["error"]["details"]["field"].as_str()
            ),
            (422, Some("channel.code_wrong"), Some("code")),
            "{b}"
        );
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            "/api/v1/me/channels/email/confirm",
            Some(json!({"code": code})),
        )
        .await;
        assert_eq!(
            (s, b["channel"]["verified"].as_bool()),
            (200, Some(true)),
            "{b}"
        );
        // The address is sealed at rest: not in the row, not in the change log.
        let plain: i64 = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT (SELECT count(*) FROM resident_channels WHERE address_mask LIKE '%Zhang.San%') \
                     + (SELECT count(*) FROM change_log WHERE kind = 'resident_channels' AND (CAST(after AS TEXT) LIKE '%example.com%' OR after_ct IS NULL))",
                    &[],
                )
            })
            .await
            .unwrap();
        assert_eq!(plain, 0, "the address is stored only sealed");

        // ---- WeChat through OAuth: the state ties the callback to this session.
        let nofollow = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = nofollow
            .get(format!("{base}/resident/channels/wechat"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "off to WeChat");
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx0123456789abcdef&redirect_uri=https%3A%2F%2Fanxin.example.gov.cn%2Fresident%2Fchannels%2Fwechat%2Fcallback&response_type=code&scope=snsapi_base&state="), "{to}");
        let state = to
            .split("state=")
            .nth(1)
            .unwrap()
            .split('#')
            .next()
            .unwrap()
            .to_owned();
        let callback = |q: String| {
            let (nofollow, base, cookie) =
                (nofollow.clone(), base.clone(), resident.cookie.clone());
            async move {
                let r = nofollow
                    .get(format!("{base}/resident/channels/wechat/callback?{q}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                r.headers()["location"].to_str().unwrap().to_owned()
            }
        };
        assert_eq!(
            callback(format!("code=CODE-1&state=forged{state}")).await,
            "/resident/channels?error=channel.wechat_failed"
        );
        assert!(
            mock.seen("/sns/oauth2/access_token").is_empty(),
            "a forged state never reaches WeChat"
        );
        mock.then("/sns/oauth2/access_token", 200, json!({"access_token": "AT", "expires_in": 7200, "openid": "oRESIDENT-a1-openid", "scope": "snsapi_base"}));
        assert_eq!(
            callback(format!("code=CODE-2&state={state}")).await,
            "/resident/channels?done=wechat"
        );
        let ex = &mock.seen("/sns/oauth2/access_token")[0];
        assert_eq!(ex.query_param("code").as_deref(), Some("CODE-2"));
        assert_eq!(
            ex.query_param("secret").as_deref(),
            Some("wechat-app-secret")
        );
        assert_eq!(
            ex.query_param("grant_type").as_deref(),
            Some("authorization_code")
        );
        let (s, b) = call(&base, &resident, "GET", "/api/v1/me/channels", None).await;
        assert_eq!(s, 200, "{b}");
        let kinds: Vec<(&str, &str, bool)> = b["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["kind"].as_str().unwrap(),
                    c["address_mask"].as_str().unwrap(),
                    c["verified"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("email", "Z***@example.com", true),
                ("wechat", "oRES***id", true)
            ]
        );
        // The page shows them masked.
        let page = client()
            .get(format!("{base}/resident/channels"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Z***@example.com")
                && page.contains("oRES***id")
                && !page.contains("oRESIDENT-a1-openid"),
            "{page}"
        );

        // ---- a warning over community A reaches person_a1 in-app, by SMS, e-mail, WeChat and a
        // voice call (they asked to be phoned).
        mock.default_answer(
            "/cgi-bin/token",
            200,
            json!({"access_token": "TOKEN-1", "expires_in": 7200}),
        );
        mock.default_answer(
            "/cgi-bin/message/template/send",
            200,
            json!({"errcode": 0, "errmsg": "ok", "msgid": 1}),
        );
        let draft = json!({
            "node_id": w.comm_a, "level": "red", "category": "flood",
            "headline": "洪水红色预警", "description": "河水超警戒。",
            "instruction": "请立即转移到高处。", "expires_at": "2026-11-02T13:00:00Z",
            "area": {"nodes": [w.comm_a]}, "crs": "wgs84"
        });
        let (s, d) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/warnings",
            Some(draft.clone()),
        )
        .await;
        assert_eq!(s, 201, "{d}");
        let id = d["id"].as_str().unwrap().to_owned();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/approve"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (
                b["email"].as_u64(),
                b["wechat"].as_u64(),
                b["voice"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{b}"
        );
        notify::deliver_due(&t.app).await.unwrap();
        let mails = notify::outbox_messages(&t.app, ChannelKind::Email)
            .await
            .unwrap();
        let mail: Vec<_> = mails.iter().filter(|m| m.template == "warning").collect();
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].to, "Zhang.San@example.com");
        assert!(
            mail[0].subject.as_deref().unwrap().contains("红色"),
            "{:?}",
            mail[0].subject
        );
        assert!(
            mail[0].body.contains("洪水红色预警") && mail[0].body.contains("请立即转移到高处"),
            "{}",
            mail[0].body
        );
        let sends = mock.seen("/cgi-bin/message/template/send");
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].json()["touser"], "oRESIDENT-a1-openid");
        assert_eq!(sends[0].json()["template_id"], "TPL-warning-1");
        let calls = notify::outbox_messages(&t.app, ChannelKind::Voice)
            .await
            .unwrap();
        let call_to: Vec<_> = calls
            .iter()
            .filter(|m| m.template == "warning")
            .map(|m| m.to.clone())
            .collect();
        assert_eq!(call_to, vec![format!("+86{}", world::PERSON_A1_PHONE)]);
        // The reach board counts them as delivered.
        let (s, r) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{id}/reach"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{r}");
        for ch in ["email", "wechat", "voice", "sms"] {
            let row = r["by_channel"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["channel"] == ch)
                .unwrap_or_else(|| panic!("{ch} in {r}"));
            // One e-mail, WeChat message and call (person_a1); an SMS to each resident with a phone.
            assert_eq!(row["delivered"], row["deliveries"], "{ch}: {row}");
            if ch != "sms" {
                assert_eq!(row["delivered"], 1, "{ch}: {row}");
            }
        }

        // ---- a removed channel gets nothing.
        let (s, _) = call(
            &base,
            &resident,
            "DELETE",
            "/api/v1/me/channels/email",
            None,
        )
        .await;
        assert_eq!(s, 204);
        let (s, b) = call(
            &base,
            &resident,
            "DELETE",
            "/api/v1/me/channels/email",
            None,
        )
        .await;
        assert_eq!(s, 404, "{b}");
        let (s, b) = call(&base, &resident, "DELETE", "/api/v1/me/channels/fax", None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("channel.kind_unknown")),
            "{b}"
        );
        let (s, d) = call(&base, &worker, "POST", "/api/v1/warnings", Some(draft)).await;
        assert_eq!(s, 201, "{d}");
        let id2 = d["id"].as_str().unwrap().to_owned();
        call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id2}/approve"),
            None,
        )
        .await;
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id2}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (b["email"].as_u64(), b["wechat"].as_u64()),
            (Some(0), Some(1)),
            "{b}"
        );
        // Staff have no such channels.
        let (s, _) = call(&base, &worker, "GET", "/api/v1/me/channels", None).await;
        assert_eq!(s, 403);
    }
);
