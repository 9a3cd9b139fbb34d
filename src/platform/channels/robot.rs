//! Group robots: WeCom (企业微信) and DingTalk (钉钉) custom-robot webhooks. A robot message goes
//! to a group, not a person: the recipient is the name of a robot in `notify.robots`.
//!
//! WeCom: `POST <webhook>` (`…/cgi-bin/webhook/send?key=…`) with
//! `{"msgtype":"markdown","markdown":{"content":…}}` or `{"msgtype":"text","text":{"content":…}}`.
//! DingTalk: `POST <webhook>` (`…/robot/send?access_token=…`), with `&timestamp=<ms>&sign=<s>`
//! when the robot has a 加签 secret, `s` being Base64(HMAC-SHA256(secret, timestamp + "\n" +
//! secret)) URL-encoded, and `{"msgtype":"markdown","markdown":{"title":…,"text":…}}` or
//! `{"msgtype":"text","text":{"content":…}}`. Both answer `{"errcode":0,"errmsg":"ok"}` when the
//! message was posted to the group; that is what "sent" means here (there are no receipts).
//! Rate limits (WeCom 45009, DingTalk 130101) and -1 (busy) are retried; other codes (a wrong
//! key, a bad signature: DingTalk 310000) are permanent.

use std::collections::HashMap;

use anyhow::Context;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{client, hmac_sha256, status_error, transport_error};
use crate::config::RobotConfig;
use crate::platform::notify::{
    Channel, ChannelKind, DeliverFuture, Delivery, DeliveryError, Message,
};

/// WeCom's limit on a markdown or text message, in bytes.
const WECOM_MAX_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotKind {
    Wecom,
    Dingtalk,
}

impl RobotKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wecom" => Some(RobotKind::Wecom),
            "dingtalk" => Some(RobotKind::Dingtalk),
            _ => None,
        }
    }
    pub fn channel(self) -> ChannelKind {
        match self {
            RobotKind::Wecom => ChannelKind::Wecom,
            RobotKind::Dingtalk => ChannelKind::Dingtalk,
        }
    }
    fn label(self) -> &'static str {
        match self {
            RobotKind::Wecom => "wecom",
            RobotKind::Dingtalk => "dingtalk",
        }
    }
}

struct Robot {
    webhook: reqwest::Url,
    secret: Option<String>,
    markdown: bool,
}

/// The robots of one kind, by name.
pub struct RobotSink {
    kind: RobotKind,
    client: reqwest::Client,
    robots: HashMap<String, Robot>,
}

impl std::fmt::Debug for RobotSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.robots.keys().collect();
        names.sort();
        f.debug_struct("RobotSink")
            .field("kind", &self.kind)
            .field("robots", &names)
            .finish_non_exhaustive()
    }
}

/// DingTalk's signature of a request at `timestamp_ms`: Base64(HMAC-SHA256(secret,
/// "timestamp\nsecret")), before URL encoding.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// The DingTalk webhook with `timestamp` and `sign` appended (URL-encoded).
pub fn dingtalk_url(webhook: &reqwest::Url, secret: &str, timestamp_ms: i64) -> reqwest::Url {
    let mut url = webhook.clone();
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &dingtalk_sign(secret, timestamp_ms));
    url
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: i64,
}

fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl RobotSink {
    /// The sink for the robots of `kind` in `robots`; `None` when there are none.
    pub fn new(kind: RobotKind, robots: &[RobotConfig]) -> anyhow::Result<Option<Self>> {
        let mut map = HashMap::new();
        for r in robots {
            let k = RobotKind::parse(&r.kind).with_context(|| {
                format!("notify.robots.{}: kind must be wecom or dingtalk", r.name)
            })?;
            if k != kind {
                continue;
            }
            let webhook = r
                .webhook
                .as_ref()
                .with_context(|| format!("notify.robots.{}: webhook is not set", r.name))?
                .expose()
                .parse::<reqwest::Url>()
                .with_context(|| format!("notify.robots.{}: webhook is not a URL", r.name))?;
            let markdown = match r.format.as_str() {
                "markdown" => true,
                "text" => false,
                _ => anyhow::bail!("notify.robots.{}: format must be markdown or text", r.name),
            };
            let secret = r
                .secret
                .as_ref()
                .map(|s| s.expose().clone())
                .filter(|s| !s.is_empty());
            if map
                .insert(
                    r.name.clone(),
                    Robot {
                        webhook,
                        secret,
                        markdown,
                    },
                )
                .is_some()
            {
                anyhow::bail!("notify.robots: two robots are named {}", r.name);
            }
        }
        if map.is_empty() {
            return Ok(None);
        }
        let timeout = robots.iter().map(|r| r.timeout_seconds).max().unwrap_or(10);
        Ok(Some(Self {
            kind,
            client: client(timeout)?,
            robots: map,
        }))
    }

    fn body(&self, robot: &Robot, msg: &Message) -> serde_json::Value {
        let title = msg
            .rendered
            .subject
            .clone()
            .unwrap_or_else(|| msg.template.id.to_owned());
        match (self.kind, robot.markdown) {
            (RobotKind::Wecom, true) => json!({
                "msgtype": "markdown",
                "markdown": { "content": truncate_bytes(&format!("**{title}**\n{}", msg.rendered.body), WECOM_MAX_BYTES) },
            }),
            (RobotKind::Wecom, false) => json!({
                "msgtype": "text",
                "text": { "content": truncate_bytes(&format!("{title}\n{}", msg.rendered.body), WECOM_MAX_BYTES) },
            }),
            (RobotKind::Dingtalk, true) => json!({
                "msgtype": "markdown",
                "markdown": { "title": title, "text": format!("#### {title}\n\n{}", msg.rendered.body) },
            }),
            (RobotKind::Dingtalk, false) => json!({
                "msgtype": "text",
                "text": { "content": format!("{title}\n{}", msg.rendered.body) },
            }),
        }
    }

    fn refused(&self, code: i64) -> DeliveryError {
        let label = self.kind.label();
        let busy = code == -1
            || match self.kind {
                RobotKind::Wecom => code == 45009,
                RobotKind::Dingtalk => code == 130_101 || code == 130_102,
            };
        if busy {
            DeliveryError::retryable(format!("{label}: errcode {code}"))
        } else {
            DeliveryError::permanent(format!("{label}: errcode {code}"))
        }
    }
}

impl Channel for RobotSink {
    fn name(&self) -> &'static str {
        self.kind.label()
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let label = self.kind.label();
            let robot = self.robots.get(&msg.recipient).ok_or_else(|| {
                DeliveryError::permanent(format!("{label}: no robot of that name"))
            })?;
            let url = match (&robot.secret, self.kind) {
                (Some(secret), RobotKind::Dingtalk) => {
                    dingtalk_url(&robot.webhook, secret, msg.now.timestamp_millis())
                }
                _ => robot.webhook.clone(),
            };
            let resp = self
                .client
                .post(url)
                .json(&self.body(robot, msg))
                .send()
                .await
                .map_err(|e| transport_error(label, &e))?;
            if !resp.status().is_success() {
                return Err(status_error(label, resp.status()));
            }
            let a: Answer = resp
                .json()
                .await
                .map_err(|_| DeliveryError::retryable(format!("{label}: unreadable answer")))?;
            if a.errcode != 0 {
                return Err(self.refused(a.errcode));
            }
            Ok(Delivery {
                provider_ref: Some(format!("{label}:{}", msg.recipient)),
                segments: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DingTalk's documented recipe (its Python example: `quote_plus(b64encode(hmac_sha256(
    /// secret, f"{timestamp}\n{secret}")))` with the secret "this is secret"), computed
    /// independently for a fixed timestamp.
    #[test]
    fn dingtalk_sign_matches_the_documented_recipe() {
        assert_eq!(
            dingtalk_sign("this is secret", 1_577_262_236_757),
            "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
        );
        let hook: reqwest::Url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
            .parse()
            .unwrap();
        let url = dingtalk_url(&hook, "this is secret", 1_577_262_236_757);
        assert_eq!(
            url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1577262236757&sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
        );
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let s = "安".repeat(2000);
        let t = truncate_bytes(&s, WECOM_MAX_BYTES);
        assert!(t.len() <= WECOM_MAX_BYTES);
        assert!(t.ends_with('…'));
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }
}
