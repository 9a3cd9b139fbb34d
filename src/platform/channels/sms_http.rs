//! SMS through a provider's HTTP API.
//!
//! [`TencentSms`]: Tencent Cloud SMS `SendSms` (API version 2021-01-11), signed with
//! TC3-HMAC-SHA256 as Tencent Cloud's "Signature v3" documents it: a canonical request of the
//! method, `/`, the empty query, the `content-type` and `host` headers and the SHA-256 of the
//! body; a string to sign with the timestamp and the `date/sms/tc3_request` scope; a key derived
//! from `"TC3" + SecretKey` through the date, the service and `tc3_request`. The template
//! parameters go positionally (`TemplateParamSet`) in the order the Anxin template declares
//! them. The answer's `SerialNo` is the message's reference, which delivery receipts quote as
//! `sid`.
//!
//! [`GenericSms`]: a JSON POST for self-hosted gateways, documented in docs/CHANNELS.md.

use std::collections::BTreeMap;

use anxin_crypto::Secret;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{anxin_signature, client, hmac_sha256, sha256_hex, sms_segments, status_error};
use super::{transport_error, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::config::SmsConfig;
use crate::platform::notify::{Channel, DeliverFuture, Delivery, DeliveryError, Message};

pub const TENCENT_SMS_VERSION: &str = "2021-01-11";
const TENCENT_SERVICE: &str = "sms";
const JSON_CT: &str = "application/json; charset=utf-8";

/// The parts of a TC3-HMAC-SHA256 signature over a JSON POST to `/` (what `SendSms` is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3 {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

/// Sign a POST of `payload` (sent with `content-type` [`JSON_CT`] to `host`) for `service` at
/// `timestamp`, with the signed headers `content-type;host`.
pub fn tc3_sign(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    host: &str,
    timestamp: i64,
    payload: &[u8],
) -> Tc3 {
    let date = DateTime::<Utc>::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let signed_headers = "content-type;host";
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{JSON_CT}\nhost:{}\n\n{signed_headers}\n{}",
        host.to_ascii_lowercase(),
        sha256_hex(payload)
    );
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Tc3 {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// `host[:port]` of an endpoint, as the `Host` header carries it.
fn host_of(url: &reqwest::Url) -> anyhow::Result<String> {
    let host = url.host_str().context("the endpoint has no host")?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

fn secret(s: &Option<Secret<String>>) -> String {
    s.as_ref().map(|s| s.expose().clone()).unwrap_or_default()
}

/// Tencent Cloud SMS.
pub struct TencentSms {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    host: String,
    region: String,
    app_id: String,
    sign_name: String,
    secret_id: String,
    secret_key: String,
}

impl std::fmt::Debug for TencentSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentSms")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl TencentSms {
    pub fn new(c: &SmsConfig) -> anyhow::Result<Self> {
        let endpoint: reqwest::Url = c
            .endpoint
            .parse()
            .context("notify.sms.endpoint is not a URL")?;
        let secret_key = secret(&c.secret_key);
        if c.secret_id.is_empty() || secret_key.is_empty() {
            anyhow::bail!("notify.sms: provider tencent needs secret_id and secret_key");
        }
        if c.app_id.is_empty() {
            anyhow::bail!("notify.sms: provider tencent needs app_id (SmsSdkAppId)");
        }
        Ok(Self {
            client: client(c.timeout_seconds)?,
            host: host_of(&endpoint)?,
            endpoint,
            region: c.region.clone(),
            app_id: c.app_id.clone(),
            sign_name: c.sign_name.clone(),
            secret_id: c.secret_id.clone(),
            secret_key,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TencentAnswer {
    response: TencentResponse,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TencentResponse {
    #[serde(default)]
    error: Option<TencentError>,
    #[serde(default)]
    send_status_set: Vec<TencentStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TencentError {
    code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TencentStatus {
    #[serde(default)]
    serial_no: String,
    #[serde(default)]
    fee: Option<i64>,
    code: String,
}

/// Tencent error codes worth another try: the service's own trouble and rate limits.
fn tencent_retryable(code: &str) -> bool {
    code.starts_with("InternalError")
        || code.starts_with("RequestLimitExceeded")
        || code.starts_with("LimitExceeded")
        || code == "AuthFailure.SignatureExpire"
        || code == "ResourceUnavailable.ServiceUnavailable"
}

fn tencent_refused(code: &str) -> DeliveryError {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
        .take(80)
        .collect();
    if tencent_retryable(&code) {
        DeliveryError::retryable(format!("tencent-sms: {code}"))
    } else {
        DeliveryError::permanent(format!("tencent-sms: {code}"))
    }
}

/// The positional parameters of a template, in its declared order.
fn positional(msg: &Message) -> Vec<String> {
    msg.template
        .params
        .iter()
        .map(|p| msg.params.get(*p).cloned().unwrap_or_default())
        .collect()
}

impl Channel for TencentSms {
    fn name(&self) -> &'static str {
        "tencent-sms"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let template_id = msg.provider_template.clone().ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "tencent-sms: no provider template for {}",
                    msg.template.id
                ))
            })?;
            let body = json!({
                "PhoneNumberSet": [msg.recipient],
                "SmsSdkAppId": self.app_id,
                "SignName": self.sign_name,
                "TemplateId": template_id,
                "TemplateParamSet": positional(msg),
                "SessionContext": msg.id.to_string(),
            });
            let payload = serde_json::to_vec(&body)
                .map_err(|_| DeliveryError::permanent("tencent-sms: cannot encode"))?;
            let ts = msg.now.timestamp();
            let sig = tc3_sign(
                &self.secret_id,
                &self.secret_key,
                TENCENT_SERVICE,
                &self.host,
                ts,
                &payload,
            );
            let resp = self
                .client
                .post(self.endpoint.clone())
                .header("Authorization", sig.authorization)
                .header("Content-Type", JSON_CT)
                .header("X-TC-Action", "SendSms")
                .header("X-TC-Version", TENCENT_SMS_VERSION)
                .header("X-TC-Timestamp", ts.to_string())
                .header("X-TC-Region", &self.region)
                .body(payload)
                .send()
                .await
                .map_err(|e| transport_error("tencent-sms", &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(status_error("tencent-sms", status));
            }
            let answer: TencentAnswer = resp
                .json()
                .await
                .map_err(|_| DeliveryError::retryable("tencent-sms: unreadable answer"))?;
            if let Some(e) = answer.response.error {
                return Err(tencent_refused(&e.code));
            }
            let st = answer
                .response
                .send_status_set
                .into_iter()
                .next()
                .ok_or_else(|| DeliveryError::retryable("tencent-sms: no send status"))?;
            if !st.code.eq_ignore_ascii_case("ok") {
                return Err(tencent_refused(&st.code));
            }
            let segments = st
                .fee
                .unwrap_or_else(|| i64::from(sms_segments(&msg.rendered.body).parts));
            Ok(Delivery {
                provider_ref: Some(st.serial_no).filter(|s| !s.is_empty()),
                segments: Some(segments),
            })
        })
    }
}

/// A self-hosted gateway speaking Anxin's JSON format.
pub struct GenericSms {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    key: String,
}

impl std::fmt::Debug for GenericSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericSms").finish_non_exhaustive()
    }
}

impl GenericSms {
    pub fn new(c: &SmsConfig) -> anyhow::Result<Self> {
        let endpoint: reqwest::Url = c
            .endpoint
            .parse()
            .context("notify.sms.endpoint is not a URL")?;
        let key = secret(&c.secret_key);
        if key.is_empty() {
            anyhow::bail!(
                "notify.sms: provider generic needs secret_key (bearer key and signing secret)"
            );
        }
        Ok(Self {
            client: client(c.timeout_seconds)?,
            endpoint,
            key,
        })
    }
}

#[derive(Debug, Deserialize)]
struct GenericAnswer {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    segments: Option<i64>,
}

/// POST a signed JSON body to a generic provider; the answer's `message_id` (or the id given
/// by `id_field`) is the reference. Shared by the generic SMS gateway and the voice provider.
pub(crate) async fn post_signed(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    key: &str,
    provider: &str,
    now: DateTime<Utc>,
    body: &serde_json::Value,
) -> Result<serde_json::Value, DeliveryError> {
    let payload = serde_json::to_vec(body)
        .map_err(|_| DeliveryError::permanent(format!("{provider}: cannot encode")))?;
    let ts = now.timestamp();
    let resp = client
        .post(endpoint.clone())
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, anxin_signature(key, ts, &payload))
        .body(payload)
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(status_error(provider, status));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| DeliveryError::retryable(format!("{provider}: unreadable answer")))
}

impl Channel for GenericSms {
    fn name(&self) -> &'static str {
        "generic-sms"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let segments = sms_segments(&msg.rendered.body).parts;
            let params: BTreeMap<&str, &str> = msg
                .params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = json!({
                "id": msg.id,
                "to": msg.recipient,
                "template": msg.provider_template.clone().unwrap_or_else(|| msg.template.id.to_owned()),
                "params": params,
                "text": msg.rendered.body,
                "segments": segments,
            });
            let answer = post_signed(
                &self.client,
                &self.endpoint,
                &self.key,
                "generic-sms",
                msg.now,
                &body,
            )
            .await?;
            let answer: GenericAnswer = serde_json::from_value(answer).unwrap_or(GenericAnswer {
                message_id: None,
                segments: None,
            });
            Ok(Delivery {
                provider_ref: Some(answer.message_id.unwrap_or_else(|| msg.id.to_string())),
                segments: Some(answer.segments.unwrap_or(i64::from(segments))),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Tencent Cloud's "Signature v3" document (CVM `DescribeInstances`).
    #[test]
    fn tc3_matches_the_documented_example() {
        let payload = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        assert_eq!(
            sha256_hex(payload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let s = tc3_sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            "cvm.tencentcloudapi.com",
            1_551_113_065,
            payload,
        );
        assert_eq!(
            s.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            s.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            s.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            s.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tencent_codes_classified() {
        assert!(tencent_refused("LimitExceeded.PhoneNumberThirtySecondLimit").retryable);
        assert!(tencent_refused("InternalError.Timeout").retryable);
        assert!(!tencent_refused("InvalidParameterValue.IncorrectPhoneNumber").retryable);
        assert!(!tencent_refused("AuthFailure.SignatureFailure").retryable);
    }
}
