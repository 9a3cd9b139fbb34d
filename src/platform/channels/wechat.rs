//! WeChat service-account (公众号) template messages.
//!
//! An access token is fetched with `GET {api_base}/cgi-bin/token?grant_type=client_credential`
//! and the app id and secret, and cached until five minutes before its `expires_in` (by the
//! app's clock); a message is `POST {api_base}/cgi-bin/message/template/send?access_token=…`
//! with `touser` (the resident's openid), `template_id` and `data` (`{"param": {"value": …}}`
//! for each of the Anxin template's parameters). An answer of `errcode` 0 means WeChat accepted
//! the message (its `msgid` is the reference); 40001, 40014 and 42001 (token invalid or
//! expired) drop the cached token and are retried at once with a fresh one; -1 (busy) and 45009
//! (over the daily limit) are retryable; any other code is permanent (43004: the resident does
//! not follow the account).

use anxin_crypto::Secret;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{client, status_error, transport_error};
use crate::config::WechatConfig;
use crate::platform::notify::{Channel, DeliverFuture, Delivery, DeliveryError, Message};

/// Refresh the token this long before WeChat says it expires.
const TOKEN_MARGIN: Duration = Duration::minutes(5);

pub struct WechatSink {
    client: reqwest::Client,
    api_base: String,
    app_id: String,
    app_secret: Secret<String>,
    url: Option<String>,
    token: tokio::sync::Mutex<Option<(String, DateTime<Utc>)>>,
}

impl std::fmt::Debug for WechatSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatSink")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    errcode: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SendAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    msgid: Option<serde_json::Value>,
}

fn token_invalid(code: i64) -> bool {
    matches!(code, 40001 | 40014 | 42001)
}

fn refused(code: i64) -> DeliveryError {
    if matches!(code, -1 | 45009 | 45047) {
        DeliveryError::retryable(format!("wechat: errcode {code}"))
    } else {
        DeliveryError::permanent(format!("wechat: errcode {code}"))
    }
}

impl WechatSink {
    pub fn new(c: &WechatConfig) -> anyhow::Result<Self> {
        let app_secret = c
            .app_secret
            .clone()
            .filter(|s| !s.expose().is_empty())
            .context("notify.wechat.app_secret is not set")?;
        let _: reqwest::Url = c
            .api_base
            .parse()
            .context("notify.wechat.api_base is not a URL")?;
        Ok(Self {
            client: client(c.timeout_seconds)?,
            api_base: c.api_base.trim_end_matches('/').to_owned(),
            app_id: c.app_id.clone(),
            app_secret,
            url: c.url.clone(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached access token, or a fresh one.
    async fn token(&self, now: DateTime<Utc>) -> Result<String, DeliveryError> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if now < *until {
                return Ok(t.clone());
            }
        }
        let resp = self
            .client
            .get(format!("{}/cgi-bin/token", self.api_base))
            .query(&[
                ("grant_type", "client_credential"),
                ("appid", self.app_id.as_str()),
                ("secret", self.app_secret.expose().as_str()),
            ])
            .send()
            .await
            .map_err(|e| transport_error("wechat token", &e))?;
        if !resp.status().is_success() {
            return Err(status_error("wechat token", resp.status()));
        }
        let a: TokenAnswer = resp
            .json()
            .await
            .map_err(|_| DeliveryError::retryable("wechat token: unreadable answer"))?;
        match (a.access_token, a.errcode.unwrap_or(0)) {
            (Some(t), 0) if !t.is_empty() => {
                let ttl = Duration::seconds(a.expires_in.unwrap_or(7200));
                *cached = Some((t.clone(), now + ttl - TOKEN_MARGIN));
                Ok(t)
            }
            (_, -1) => Err(DeliveryError::retryable("wechat token: errcode -1")),
            (_, code) => Err(DeliveryError::permanent(format!(
                "wechat token: errcode {code}"
            ))),
        }
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    async fn send_once(
        &self,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<SendAnswer, DeliveryError> {
        let resp = self
            .client
            .post(format!("{}/cgi-bin/message/template/send", self.api_base))
            .query(&[("access_token", token)])
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error("wechat", &e))?;
        if !resp.status().is_success() {
            return Err(status_error("wechat", resp.status()));
        }
        resp.json()
            .await
            .map_err(|_| DeliveryError::retryable("wechat: unreadable answer"))
    }
}

impl Channel for WechatSink {
    fn name(&self) -> &'static str {
        "wechat"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let template_id = msg.provider_template.clone().ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "wechat: no account template for {}",
                    msg.template.id
                ))
            })?;
            let data: serde_json::Map<String, serde_json::Value> = msg
                .params
                .iter()
                .map(|(k, v)| (k.clone(), json!({ "value": v })))
                .collect();
            let mut body = json!({
                "touser": msg.recipient,
                "template_id": template_id,
                "data": data,
            });
            if let Some(url) = &self.url {
                body["url"] = json!(url);
            }
            let mut answer = self.send_once(&self.token(msg.now).await?, &body).await?;
            if token_invalid(answer.errcode) {
                self.forget_token().await;
                answer = self.send_once(&self.token(msg.now).await?, &body).await?;
                if token_invalid(answer.errcode) {
                    self.forget_token().await;
                    return Err(DeliveryError::retryable(format!(
                        "wechat: errcode {}",
                        answer.errcode
                    )));
                }
            }
            if answer.errcode != 0 {
                return Err(refused(answer.errcode));
            }
            let msgid = match answer.msgid {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            Ok(Delivery {
                provider_ref: msgid,
                segments: None,
            })
        })
    }
}
