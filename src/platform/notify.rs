//! Notifications: SMS, e-mail, WeChat, voice calls and group robots from templates, recorded,
//! retried, delivered by sinks.
//!
//! A message is a template id and parameters, never free text: Chinese SMS providers only send
//! templates they have approved, with parameters filled in. E-mail renders the same template to
//! a zh-CN subject and body ([`TEMPLATES`]).
//!
//! Sending is two steps. [`enqueue`] records the delivery (recipient and parameters sealed with
//! the notification's own data key, see `anxin_store::notify`); the dispatcher ([`run_dispatcher`],
//! kicked on every enqueue and polling besides) claims due deliveries and hands each to its
//! channel's sink. A retryable failure is tried again with exponential backoff, a permanent one
//! (a malformed address, a refused template) fails at once.
//!
//! Sinks: [`OutboxSink`] writes each message as JSON under `<data dir>/outbox/<channel>/`, for
//! development and demos (the default for every channel while its provider is not configured);
//! [`SmtpSink`] sends through an SMTP relay; the provider sinks of
//! [`crate::platform::channels`] speak the SMS, WeChat, voice and robot APIs; [`LogSink`] only
//! logs. Channels and their formats are described in docs/CHANNELS.md.
//! Logs name the template, the notification id and the masked recipient, never the phone
//! number, the address or the parameters.
//!
//! [`enqueue_many`] records many messages in one write (a warning to thousands of residents).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anxin_domain::Phone;
use anxin_store::notify::{self as store_notify, AfterFailure, Claimed, NewNotification};
use anyhow::Context;
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::config::{Config, SmtpConfig};
use crate::platform::metrics::KindLabels;

/// Deliveries claimed per round of the dispatcher (and sent concurrently).
const BATCH: i64 = 32;
/// How long the SMTP client waits on the relay.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

// ---- templates -------------------------------------------------------------------------------

/// A message template. Placeholders are `{name}`; every one must be given as a parameter.
#[derive(Debug)]
pub struct Template {
    pub id: &'static str,
    pub params: &'static [&'static str],
    /// The SMS text (what the approved provider template says); `None`: not sent by SMS.
    pub sms: Option<&'static str>,
    pub email_subject: Option<&'static str>,
    pub email_body: Option<&'static str>,
    /// Parameters are secrets (a sign-in code): dropped from the record once delivered.
    pub secret_params: bool,
}

/// The templates. Another capability adds its own here, with its placeholders.
pub const TEMPLATES: &[Template] = &[
    Template {
        id: "login_code",
        params: &["code", "minutes"],
        sms: Some("【安心社区】您的登录验证码为{code}，{minutes}分钟内有效。请勿告诉他人；如非本人操作，请忽略本短信。"),
        email_subject: Some("安心社区登录验证码"),
        email_body: Some(
            "您好：\n\n您的登录验证码为 {code}，{minutes} 分钟内有效。请勿告诉他人。\n如非本人操作，请忽略本邮件。\n\n——安心社区平台（系统邮件，请勿回复）\n",
        ),
        secret_params: true,
    },
    Template {
        id: "warning",
        params: &["action", "level", "category", "headline", "instruction"],
        sms: Some("【安心社区】{level}{category}预警{action}：{headline}。{instruction}"),
        email_subject: Some("【安心社区】{level}{category}预警{action}"),
        email_body: Some("{headline}\n\n{instruction}\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "notice",
        params: &["title", "body"],
        sms: None,
        email_subject: Some("【安心社区】{title}"),
        email_body: Some("{body}\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "alarm_escalated",
        params: &["node", "device", "alarm", "minutes"],
        sms: Some("【安心社区】告警升级：{node}辖区设备{device}的{alarm}告警已{minutes}分钟未确认，请及时处置。"),
        email_subject: Some("【安心社区】告警升级：{alarm}"),
        email_body: Some("{node}辖区设备 {device} 的 {alarm} 告警已 {minutes} 分钟未确认，请及时处置。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // volunteers & welfare (issue 5)
    Template {
        id: "callout",
        params: &["incident", "community"],
        sms: Some("【安心社区】志愿者召集：{incident}。请登录安心社区「我的召集」确认是否响应（{community}）。"),
        email_subject: Some("【安心社区】志愿者召集：{incident}"),
        email_body: Some("{incident}\n\n请登录安心社区「我的召集」确认是否响应（{community}）。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "welfare_escalated",
        params: &["incident", "node", "count", "level"],
        sms: Some("【安心社区】不漏一人：{incident}中{node}有{count}名重点人员的安全确认超时未完成，已升级至{level}，请立即核实。"),
        email_subject: Some("【安心社区】安全确认超时：{count}人"),
        email_body: Some("{incident}中{node}有 {count} 名重点人员的安全确认超时未完成，已升级至{level}，请立即核实。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // plans & activation (issue 5)
    Template {
        id: "incident_tasks",
        params: &["incident", "count", "due"],
        sms: Some("【安心社区】{incident}已启动，您有{count}项处置任务，最早须于{due}前完成。请登录安心社区查看。"),
        email_subject: Some("【安心社区】处置任务：{incident}"),
        email_body: Some("{incident}已启动，您有 {count} 项处置任务，最早须于 {due} 前完成。请登录安心社区查看。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // hazard ledger (issue 6)
    Template {
        id: "hazard_escalated",
        params: &["node", "place", "finding", "hours"],
        sms: Some("【安心社区】隐患逾期升级：{place}的隐患（{finding}）已超过处置期限{hours}小时，已升级至{node}督办，请及时处置。"),
        email_subject: Some("【安心社区】隐患逾期升级：{place}"),
        email_body: Some("{place}的隐患（{finding}）已超过处置期限 {hours} 小时，已升级至{node}督办，请及时处置。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // calendar & risks (issue 6)
    Template {
        id: "risk_review",
        params: &["title", "node", "due", "state"],
        sms: Some("【安心社区】风险评审提醒：{node}的风险“{title}”评审{state}（应于{due}前完成），请登录安心社区完成评审。"),
        email_subject: Some("【安心社区】风险评审{state}：{title}"),
        email_body: Some("{node}的风险“{title}”评审{state}（应于{due}前完成），请登录安心社区完成评审。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // supplies (issue 7), each part in its own block: reserves & dispatch
    Template {
        id: "stock_expiry",
        params: &["item", "quantity", "depot", "node", "expires"],
        sms: Some("【安心社区】物资临期提醒：{node}{depot}的{item}（{quantity}）将于{expires}到期，请及时轮换使用或报废处理。"),
        email_subject: Some("【安心社区】物资临期：{item}"),
        email_body: Some("{node}{depot}的{item}（{quantity}）将于 {expires} 到期，请及时轮换使用或报废处理。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // campaigns
    Template {
        id: "campaign_open",
        params: &["node", "item", "quantity", "mode", "place", "until"],
        sms: Some("【安心社区】{node}发放{item}，每户{quantity}，{mode}。领取：{place}，截至{until}。请登录安心社区「物资发放」预约；不便用手机的可请网格员代办。"),
        email_subject: Some("【安心社区】物资发放：{item}"),
        email_body: Some("{node}正在发放{item}，每户{quantity}，{mode}。\n领取地点和时间：{place}，截至{until}。\n\n请登录安心社区，在「物资发放」中预约并取得领取码；家中无人方便使用手机的，可请网格员代办预约。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "campaign_delivery_home",
        params: &["node", "item", "quantity"],
        sms: Some("【安心社区】{node}发放{item}，每户{quantity}。您家已列入送货上门名单，工作人员或志愿者将上门送达，无需预约。"),
        email_subject: Some("【安心社区】物资送货上门：{item}"),
        email_body: Some("{node}正在发放{item}，每户{quantity}。您家已列入送货上门名单，工作人员或志愿者将上门送达，无需预约。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "campaign_deliveries",
        params: &["campaign", "node", "count"],
        sms: Some("【安心社区】配送任务：{node}「{campaign}」有{count}户待您送货上门。请登录安心社区「我的配送单」查看，送达后登记。"),
        email_subject: Some("【安心社区】配送任务：{campaign}（{count}户）"),
        email_body: Some("{node}「{campaign}」有 {count} 户待您送货上门。请登录安心社区「我的配送单」查看，送达后登记。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "campaign_won",
        params: &["campaign", "place", "slot"],
        sms: Some("【安心社区】「{campaign}」抽签结果：您家已中签。请于{slot}到{place}凭领取码领取（在安心社区「物资发放」中查看，或请网格员协助）。"),
        email_subject: Some("【安心社区】抽签结果：{campaign}（已中签）"),
        email_body: Some("「{campaign}」抽签结果：您家已中签。\n请于{slot}到{place}凭领取码领取。领取码在安心社区「物资发放」中查看，也可请网格员协助。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "campaign_lost",
        params: &["campaign"],
        sms: Some("【安心社区】「{campaign}」抽签结果：很遗憾，您家本次未中签。后续发放将另行通知。"),
        email_subject: Some("【安心社区】抽签结果：{campaign}"),
        email_body: Some("「{campaign}」抽签结果：很遗憾，您家本次未中签。后续发放将另行通知。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // providers
    Template {
        id: "supply_order_placed",
        params: &["node", "item", "quantity", "depot", "wanted_by"],
        sms: Some("【安心社区】新订单：{node}订购{item}{quantity}，送至{depot}，要求{wanted_by}前送达。请登录安心社区服务商端确认或拒绝。"),
        email_subject: Some("【安心社区】新订单：{node}订购{item}"),
        email_body: Some("{node}订购{item}{quantity}，送至{depot}，要求 {wanted_by} 前送达。请登录安心社区服务商端确认或拒绝。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "supply_order_cancelled",
        params: &["node", "item", "quantity"],
        sms: Some("【安心社区】订单取消：{node}已取消订购的{item}{quantity}，无需备货或送货。"),
        email_subject: Some("【安心社区】订单取消：{node}订购的{item}"),
        email_body: Some("{node}已取消订购的{item}{quantity}，无需备货或送货。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    Template {
        id: "supply_order_progress",
        params: &["provider", "state", "item", "quantity", "depot"],
        sms: Some("【安心社区】订单进展：{provider}{state}（{item}{quantity}，送至{depot}）。请登录安心社区「服务商与订单」查看。"),
        email_subject: Some("【安心社区】订单进展：{provider}{state}"),
        email_body: Some("{provider}{state}（{item}{quantity}，送至{depot}）。请登录安心社区「服务商与订单」查看。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: false,
    },
    // residents' own channels (issue 4)
    Template {
        id: "channel_code",
        params: &["code", "minutes"],
        sms: None,
        email_subject: Some("【安心社区】接收预警邮箱验证码"),
        email_body: Some("您正在安心社区添加接收预警的邮箱，验证码：{code}（{minutes}分钟内有效）。如非本人操作，请忽略本邮件。\n\n——安心社区平台（系统邮件，请勿回复）\n"),
        secret_params: true,
    },
];

pub fn template(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}

/// A template filled in for one channel.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: Option<String>,
    pub body: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered([redacted])")
    }
}

/// Why a message cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("unknown template {0}")]
    Unknown(String),
    #[error("template {template} is not sent by {channel}")]
    NotForChannel {
        template: &'static str,
        channel: &'static str,
    },
    #[error("template {template} needs parameter {param}")]
    Missing {
        template: &'static str,
        param: &'static str,
    },
    #[error("template {template} has no parameter {param}")]
    Unexpected {
        template: &'static str,
        param: String,
    },
}

fn fill(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in params {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Check `params` against the template: each declared one given, nothing else.
pub fn check_params(
    t: &'static Template,
    params: &BTreeMap<String, String>,
) -> Result<(), TemplateError> {
    if let Some(p) = t.params.iter().find(|p| !params.contains_key(**p)) {
        return Err(TemplateError::Missing {
            template: t.id,
            param: p,
        });
    }
    if let Some(p) = params.keys().find(|k| !t.params.contains(&k.as_str())) {
        return Err(TemplateError::Unexpected {
            template: t.id,
            param: p.clone(),
        });
    }
    Ok(())
}

pub fn render(
    t: &'static Template,
    channel: ChannelKind,
    params: &BTreeMap<String, String>,
) -> Result<Rendered, TemplateError> {
    check_params(t, params)?;
    let not_for = || TemplateError::NotForChannel {
        template: t.id,
        channel: channel.as_str(),
    };
    match channel {
        ChannelKind::Sms => Ok(Rendered {
            subject: None,
            body: fill(t.sms.ok_or_else(not_for)?, params),
        }),
        ChannelKind::Email => Ok(Rendered {
            subject: Some(fill(t.email_subject.ok_or_else(not_for)?, params)),
            body: fill(t.email_body.ok_or_else(not_for)?, params),
        }),
        // The call speaks the SMS text, without the bracketed signature.
        ChannelKind::Voice => Ok(Rendered {
            subject: None,
            body: strip_sign(&fill(t.sms.ok_or_else(not_for)?, params)),
        }),
        // WeChat and the robots show a title (the e-mail subject) and the SMS text, or the
        // e-mail body for a template without one.
        ChannelKind::Wechat | ChannelKind::Wecom | ChannelKind::Dingtalk => Ok(Rendered {
            subject: t.email_subject.map(|s| fill(s, params)),
            body: fill(t.sms.or(t.email_body).ok_or_else(not_for)?, params),
        }),
    }
}

/// `【安心社区】text` → `text`.
fn strip_sign(text: &str) -> String {
    match text.strip_prefix('【').and_then(|r| r.split_once('】')) {
        Some((_, rest)) => rest.trim_start().to_owned(),
        None => text.to_owned(),
    }
}

// ---- messages and channels -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Sms,
    Email,
    /// A voice call speaking the SMS text (TTS template); the recipient is a phone.
    Voice,
    /// A WeChat service-account template message; the recipient is the resident's openid.
    Wechat,
    /// A WeCom group robot; the recipient is the robot's name in `notify.robots`.
    Wecom,
    /// A DingTalk group robot; the recipient is the robot's name in `notify.robots`.
    Dingtalk,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Sms,
        ChannelKind::Email,
        ChannelKind::Voice,
        ChannelKind::Wechat,
        ChannelKind::Wecom,
        ChannelKind::Dingtalk,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Sms => "sms",
            ChannelKind::Email => "email",
            ChannelKind::Voice => "voice",
            ChannelKind::Wechat => "wechat",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Robot channels send to a group, not a person.
    pub fn is_group(self) -> bool {
        matches!(self, ChannelKind::Wecom | ChannelKind::Dingtalk)
    }
}

/// One message ready for a sink. `Debug` shows only the masked recipient.
#[derive(Clone)]
pub struct Message {
    pub id: Uuid,
    pub channel: ChannelKind,
    pub template: &'static Template,
    /// The provider's id for the template (SMS gateways), when configured.
    pub provider_template: Option<String>,
    /// E.164 phone or e-mail address. Personal data.
    pub recipient: String,
    pub recipient_mask: String,
    /// Personal data.
    pub params: BTreeMap<String, String>,
    pub rendered: Rendered,
    /// When the attempt is made, by the app's clock (request timestamps and signatures).
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("template", &self.template.id)
            .field("recipient", &self.recipient_mask)
            .finish_non_exhaustive()
    }
}

/// A sink accepted the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's id for the message (queue id, file name), when it gives one. Receipts
    /// are matched on it.
    pub provider_ref: Option<String>,
    /// SMS parts the provider billed, when it says (else counted from the text).
    pub segments: Option<i64>,
}

/// A sink could not deliver. `reason` is kept in the delivery record and logged: it must not
/// carry personal data (no address, no server reply that may echo it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub reason: String,
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self {
            retryable: true,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            retryable: false,
            reason: reason.into(),
        }
    }
}

pub type DeliverFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Delivery, DeliveryError>> + Send + 'a>>;

/// Where messages of one channel go.
pub trait Channel: Send + Sync {
    /// For logs and metrics: `outbox`, `smtp`, `log`, …
    fn name(&self) -> &'static str;
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a>;
}

/// Logs each message (template, masked recipient, id) and drops it.
#[derive(Debug, Default)]
pub struct LogSink;

impl Channel for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            tracing::info!(
                notification.id = %msg.id,
                notification.channel = msg.channel.as_str(),
                notification.template = msg.template.id,
                recipient = %msg.recipient_mask,
                "notification logged, not sent"
            );
            Ok(Delivery {
                provider_ref: Some("log".into()),
                segments: None,
            })
        })
    }
}

/// Writes each message as `<dir>/<channel>/<id>.json`, rendered text included: the development
/// and demo stand-in for a gateway. The files hold personal data; the directory lives in the
/// data directory and is created readable by the service account only.
#[derive(Debug)]
pub struct OutboxSink {
    dir: PathBuf,
}

/// A message as the outbox keeps it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub channel: String,
    pub template: String,
    pub provider_template: Option<String>,
    pub to: String,
    pub params: BTreeMap<String, String>,
    pub subject: Option<String>,
    pub body: String,
}

impl OutboxSink {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl Channel for OutboxSink {
    fn name(&self) -> &'static str {
        "outbox"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let dir = self.dir.join(msg.channel.as_str());
            let record = OutboxMessage {
                id: msg.id,
                channel: msg.channel.as_str().into(),
                template: msg.template.id.into(),
                provider_template: msg.provider_template.clone(),
                to: msg.recipient.clone(),
                params: msg.params.clone(),
                subject: msg.rendered.subject.clone(),
                body: msg.rendered.body.clone(),
            };
            let json = serde_json::to_vec_pretty(&record)
                .map_err(|e| DeliveryError::permanent(format!("outbox: {e}")))?;
            let name = format!("{}.json", msg.id);
            let path = dir.join(&name);
            let tmp = dir.join(format!(".{name}.tmp"));
            let io = |e: std::io::Error| DeliveryError::retryable(format!("outbox: {}", e.kind()));
            tokio::fs::create_dir_all(&dir).await.map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    tokio::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                        .await;
            }
            tokio::fs::write(&tmp, json).await.map_err(io)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io)?;
            tracing::info!(
                notification.id = %msg.id,
                notification.template = msg.template.id,
                recipient = %msg.recipient_mask,
                "notification written to the outbox"
            );
            Ok(Delivery {
                provider_ref: Some(format!("outbox:{name}")),
                segments: None,
            })
        })
    }
}

/// Sends e-mail through an SMTP relay (STARTTLS or implicit TLS with rustls; plain only for a
/// relay on loopback).
pub struct SmtpSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink").finish_non_exhaustive()
    }
}

impl SmtpSink {
    pub fn new(c: &SmtpConfig) -> anyhow::Result<Self> {
        let from: Mailbox = c
            .from
            .parse()
            .with_context(|| "notify.smtp.from is not an e-mail address".to_string())?;
        let builder = match c.tls.as_str() {
            "none" => {
                // Mail in clear, and a password with it, only to a relay on this machine.
                let loopback = c.host == "localhost"
                    || c.host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    anyhow::bail!("notify.smtp.tls = \"none\" is only allowed for a relay on loopback; use starttls or tls");
                }
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.as_str())
            }
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                .context("notify.smtp: setting up STARTTLS")?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)
                .context("notify.smtp: setting up TLS")?,
            other => anyhow::bail!("notify.smtp.tls must be none, starttls or tls, not {other}"),
        };
        let mut builder = builder.port(c.port).timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &c.username {
            let password = c
                .password
                .as_ref()
                .map(|p| p.expose().clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

/// A failure as the record may keep it: the status code and kind, never the server's words
/// (a reply may quote the address).
fn smtp_error(e: &lettre::transport::smtp::Error) -> DeliveryError {
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    if e.is_permanent() {
        DeliveryError::permanent(format!("smtp: refused permanently ({code})"))
    } else if e.is_transient() {
        DeliveryError::retryable(format!("smtp: refused for now ({code})"))
    } else if e.is_timeout() {
        DeliveryError::retryable("smtp: timed out")
    } else if e.is_tls() {
        DeliveryError::retryable("smtp: TLS failed")
    } else if e.is_response() {
        DeliveryError::retryable("smtp: unexpected reply")
    } else {
        // Connection errors name the socket error only ("Connection refused").
        DeliveryError::retryable(format!("smtp: {e}"))
    }
}

impl Channel for SmtpSink {
    fn name(&self) -> &'static str {
        "smtp"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let to: Mailbox = msg
                .recipient
                .parse()
                .map_err(|_| DeliveryError::permanent("smtp: the address is not valid"))?;
            let email = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(msg.rendered.subject.clone().unwrap_or_default())
                .header(ContentType::TEXT_PLAIN)
                .body(msg.rendered.body.clone())
                .map_err(|_| DeliveryError::permanent("smtp: the message cannot be built"))?;
            let resp = self
                .transport
                .send(email)
                .await
                .map_err(|e| smtp_error(&e))?;
            let first: String = resp
                .message()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect();
            Ok(Delivery {
                provider_ref: Some(format!("smtp:{} {first}", resp.code()).trim().to_owned()),
                segments: None,
            })
        })
    }
}

// ---- the notifier ----------------------------------------------------------------------------

/// The channels of this process and the dispatcher's wake-up call. Lives in [`App`].
pub struct Notifier {
    channels: HashMap<ChannelKind, Arc<dyn Channel>>,
    outbox: PathBuf,
    /// The provider's template id for each Anxin template, per channel.
    provider_templates: HashMap<ChannelKind, BTreeMap<String, String>>,
    /// The configured robots' names per robot channel (recipients are checked at enqueue).
    robots: HashMap<ChannelKind, Vec<String>>,
    kick: tokio::sync::Notify,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<(&str, &str)> = self
            .channels
            .iter()
            .map(|(k, c)| (k.as_str(), c.name()))
            .collect();
        names.sort_unstable();
        f.debug_struct("Notifier")
            .field("channels", &names)
            .finish_non_exhaustive()
    }
}

/// The data directory: beside the SQLite file, or beside the master-key file on PostgreSQL.
pub fn data_dir(config: &Config) -> PathBuf {
    let base = anxin_store::sqlite_path(&config.database.url)
        .unwrap_or_else(|| config.crypto.master_key_file.clone());
    base.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl Notifier {
    /// Each channel to its configured provider (docs/CHANNELS.md), else to the outbox.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        use crate::platform::channels::{robot, sms_http, voice, wechat};
        let n = &config.notify;
        let outbox = data_dir(config).join("outbox");
        let outbox_sink: Arc<dyn Channel> = Arc::new(OutboxSink::new(&outbox));
        let mut channels: HashMap<ChannelKind, Arc<dyn Channel>> = ChannelKind::ALL
            .into_iter()
            .map(|k| (k, outbox_sink.clone()))
            .collect();
        let mut provider_templates: HashMap<ChannelKind, BTreeMap<String, String>> = HashMap::new();
        if let Some(c) = &n.smtp {
            channels.insert(ChannelKind::Email, Arc::new(SmtpSink::new(c)?));
        }
        let mut sms_templates = BTreeMap::new();
        if let Some(t) = &n.sms_login_template {
            sms_templates.insert("login_code".to_owned(), t.clone());
        }
        if let Some(c) = &n.sms {
            let sink: Arc<dyn Channel> = match c.provider.as_str() {
                "tencent" => Arc::new(sms_http::TencentSms::new(c)?),
                "generic" => Arc::new(sms_http::GenericSms::new(c)?),
                other => {
                    anyhow::bail!("notify.sms.provider must be tencent or generic, not {other}")
                }
            };
            channels.insert(ChannelKind::Sms, sink);
            sms_templates.extend(c.templates.clone());
        }
        provider_templates.insert(ChannelKind::Sms, sms_templates);
        if let Some(c) = &n.wechat {
            channels.insert(ChannelKind::Wechat, Arc::new(wechat::WechatSink::new(c)?));
            provider_templates.insert(ChannelKind::Wechat, c.templates.clone());
        }
        if let Some(c) = &n.voice {
            channels.insert(ChannelKind::Voice, Arc::new(voice::VoiceSink::new(c)?));
            provider_templates.insert(ChannelKind::Voice, c.templates.clone());
        }
        let mut robots: HashMap<ChannelKind, Vec<String>> = HashMap::new();
        for kind in [robot::RobotKind::Wecom, robot::RobotKind::Dingtalk] {
            if let Some(sink) = robot::RobotSink::new(kind, &n.robots)? {
                channels.insert(kind.channel(), Arc::new(sink));
                robots.insert(
                    kind.channel(),
                    n.robots
                        .iter()
                        .filter(|r| robot::RobotKind::parse(&r.kind) == Some(kind))
                        .map(|r| r.name.clone())
                        .collect(),
                );
            }
        }
        Ok(Self {
            channels,
            outbox,
            provider_templates,
            robots,
            kick: tokio::sync::Notify::new(),
        })
    }

    /// Route a channel to another sink (a gateway, or a test double).
    pub fn with_channel(mut self, kind: ChannelKind, sink: Arc<dyn Channel>) -> Self {
        self.channels.insert(kind, sink);
        self
    }

    pub fn channel(&self, kind: ChannelKind) -> Option<&Arc<dyn Channel>> {
        self.channels.get(&kind)
    }

    /// Where [`OutboxSink`] writes.
    pub fn outbox_dir(&self) -> &Path {
        &self.outbox
    }

    /// Wake the dispatcher: something is due now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    async fn kicked(&self) {
        self.kick.notified().await;
    }

    /// Log once at start-up where messages go, so nobody mistakes the outbox for delivery.
    pub fn log_routes(&self) {
        for (kind, ch) in &self.channels {
            if ch.name() == "outbox" {
                tracing::warn!(
                    notification.channel = kind.as_str(),
                    outbox = %self.outbox.display(),
                    "no provider configured: messages are written to the outbox, not delivered"
                );
            }
        }
    }

    /// The names of the robots configured for a robot channel (empty: none, messages go to
    /// the outbox).
    pub fn robot_names(&self, kind: ChannelKind) -> &[String] {
        self.robots.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The provider's id for an Anxin template on a channel, when configured.
    pub fn provider_template(&self, kind: ChannelKind, template: &str) -> Option<String> {
        self.provider_templates
            .get(&kind)
            .and_then(|m| m.get(template))
            .cloned()
    }
}

// ---- sending ---------------------------------------------------------------------------------

fn param_map(params: &[(&str, &str)]) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Record a message for delivery and wake the dispatcher. Checks the template and its
/// parameters first, so a mistake fails here and not in the dispatcher.
pub async fn enqueue(
    app: &App,
    channel: ChannelKind,
    recipient: String,
    recipient_mask: String,
    template_id: &str,
    params: BTreeMap<String, String>,
) -> anyhow::Result<Uuid> {
    let n = checked(
        app,
        Outgoing {
            channel,
            recipient,
            recipient_mask,
            template_id: template_id.to_owned(),
            params,
        },
    )?;
    let id = store_notify::insert(&app.store, n)
        .await
        .context("recording a notification")?;
    app.notifier.kick();
    Ok(id)
}

/// One message for [`enqueue_many`].
#[derive(Clone)]
pub struct Outgoing {
    pub channel: ChannelKind,
    /// Phone (E.164), e-mail address, openid or robot name. Personal data (but a robot name).
    pub recipient: String,
    pub recipient_mask: String,
    pub template_id: String,
    /// Personal data.
    pub params: BTreeMap<String, String>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("channel", &self.channel)
            .field("template", &self.template_id)
            .field("recipient", &self.recipient_mask)
            .finish_non_exhaustive()
    }
}

/// An outgoing message checked against its template and recipient rules, ready to record.
pub(crate) fn checked(app: &App, o: Outgoing) -> anyhow::Result<NewNotification> {
    let t =
        template(&o.template_id).ok_or_else(|| TemplateError::Unknown(o.template_id.clone()))?;
    render(t, o.channel, &o.params)?;
    if o.recipient.trim().is_empty() {
        anyhow::bail!("recipient is empty");
    }
    let robots = app.notifier.robot_names(o.channel);
    if o.channel.is_group() && !robots.is_empty() && !robots.contains(&o.recipient) {
        anyhow::bail!(
            "recipient: no {} robot named {} in notify.robots",
            o.channel.as_str(),
            o.recipient
        );
    }
    Ok(NewNotification {
        channel: o.channel.as_str().into(),
        template: t.id.into(),
        recipient: o.recipient,
        recipient_mask: o.recipient_mask,
        params: serde_json::to_value(&o.params)?,
        due_at: app.clock.now(),
    })
}

/// Record many messages in one write and wake the dispatcher: all are checked first (template,
/// parameters, non-empty recipient), and one bad message records none; the error names its
/// position. Returns the ids in the order given.
pub async fn enqueue_many(app: &App, items: Vec<Outgoing>) -> anyhow::Result<Vec<Uuid>> {
    let mut rows = Vec::with_capacity(items.len());
    for (i, o) in items.into_iter().enumerate() {
        rows.push(checked(app, o).with_context(|| format!("message {i}"))?);
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = store_notify::insert_many(&app.store, rows)
        .await
        .context("recording notifications")?;
    app.notifier.kick();
    Ok(ids)
}

/// Send a resident their sign-in code by SMS (template `login_code`). The first attempt is made
/// before this returns, so the code is on its way (or in the outbox) when the page asks for
/// it; if that attempt fails the dispatcher retries. Errors only when the message could not
/// be recorded.
pub async fn send_login_code(app: &App, phone: &Phone, code: &str) -> anyhow::Result<()> {
    let minutes = app.config.auth.code_ttl_minutes.to_string();
    let id = enqueue(
        app,
        ChannelKind::Sms,
        phone.as_str().to_owned(),
        anxin_domain::mask_phone(phone),
        "login_code",
        param_map(&[("code", code), ("minutes", &minutes)]),
    )
    .await?;
    if let Err(e) = deliver_one(app, id).await {
        tracing::error!(notification.id = %id, error = %format!("{e:#}"), "first delivery attempt failed to run");
    }
    Ok(())
}

/// Mask an e-mail address for lists and logs: `z***@example.com`.
pub fn mask_email(addr: &str) -> String {
    anxin_store::resident_channels::mask_email(addr)
}

/// Send an e-mail from a template; delivered by the dispatcher. Returns the notification id.
pub async fn send_email(
    app: &App,
    to: &str,
    template_id: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<Uuid> {
    let addr: lettre::Address = to
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("not an e-mail address"))?;
    enqueue(
        app,
        ChannelKind::Email,
        addr.to_string(),
        mask_email(addr.as_ref()),
        template_id,
        param_map(params),
    )
    .await
}

/// Send an SMS from a template; delivered by the dispatcher. Returns the notification id.
pub async fn send_sms(
    app: &App,
    to: &Phone,
    template_id: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<Uuid> {
    enqueue(
        app,
        ChannelKind::Sms,
        to.as_str().to_owned(),
        anxin_domain::mask_phone(to),
        template_id,
        param_map(params),
    )
    .await
}

// ---- delivering ------------------------------------------------------------------------------

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    RetryAt(DateTime<Utc>),
    Failed,
}

fn lease(app: &App) -> chrono::Duration {
    chrono::Duration::seconds(app.config.jobs.lease_seconds.max(30))
}

/// Attempt one notification now if it is pending and nobody else holds it; `None` otherwise.
pub async fn deliver_one(app: &App, id: Uuid) -> anyhow::Result<Option<Outcome>> {
    let claimed = store_notify::claim_one(&app.store, id, app.clock.now(), lease(app)).await?;
    match claimed {
        Some(c) => Ok(Some(attempt(app, c).await?)),
        None => Ok(None),
    }
}

/// Attempt every due notification, a batch at a time, the batch concurrently. Returns how
/// many were attempted.
pub async fn deliver_due(app: &App) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let batch = store_notify::claim_due(&app.store, app.clock.now(), lease(app), BATCH).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        let n = batch.len();
        total += n;
        let mut set = tokio::task::JoinSet::new();
        for c in batch {
            let app = app.clone();
            set.spawn(async move { attempt(&app, c).await });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "recording a delivery attempt failed")
                }
                Err(e) => tracing::error!(error = %e, "delivery task failed"),
            }
        }
        if i64::try_from(n).unwrap_or(0) < BATCH {
            return Ok(total);
        }
    }
}

async fn attempt(app: &App, c: Claimed) -> anyhow::Result<Outcome> {
    let result = match prepare(app, &c) {
        Ok((msg, sink)) => sink.deliver(&msg).await.map(|mut d| {
            if msg.channel == ChannelKind::Sms && d.segments.is_none() {
                let parts = crate::platform::channels::sms_segments(&msg.rendered.body).parts;
                d.segments = Some(i64::from(parts));
            }
            (d, msg.template.secret_params)
        }),
        Err(e) => Err(e),
    };
    let labels = KindLabels {
        kind: c.channel.clone(),
    };
    let now = app.clock.now();
    match result {
        Ok((delivery, secret)) => {
            store_notify::mark_sent(
                &app.store,
                c.id,
                now,
                delivery.provider_ref,
                delivery.segments,
                secret,
            )
            .await?;
            app.metrics.notifications_sent.get_or_create(&labels).inc();
            tracing::info!(
                notification.id = %c.id,
                notification.channel = %c.channel,
                notification.template = %c.template,
                recipient = %c.recipient_mask,
                attempts = c.attempts,
                "notification sent"
            );
            Ok(Outcome::Sent)
        }
        Err(e) => {
            app.metrics
                .notifications_failed
                .get_or_create(&labels)
                .inc();
            let after =
                store_notify::record_failure(&app.store, c.id, now, &e.reason, e.retryable).await?;
            tracing::warn!(
                notification.id = %c.id,
                notification.channel = %c.channel,
                notification.template = %c.template,
                recipient = %c.recipient_mask,
                attempts = c.attempts,
                error = %e.reason,
                retry_at = ?match after { AfterFailure::RetryAt(t) => Some(t), AfterFailure::Failed => None },
                "notification attempt failed"
            );
            Ok(match after {
                AfterFailure::RetryAt(t) => Outcome::RetryAt(t),
                AfterFailure::Failed => Outcome::Failed,
            })
        }
    }
}

fn prepare(app: &App, c: &Claimed) -> Result<(Message, Arc<dyn Channel>), DeliveryError> {
    let kind = ChannelKind::parse(&c.channel)
        .ok_or_else(|| DeliveryError::permanent("unknown channel"))?;
    let t = template(&c.template).ok_or_else(|| DeliveryError::permanent("unknown template"))?;
    let params: BTreeMap<String, String> = serde_json::from_value(c.params.clone())
        .map_err(|_| DeliveryError::permanent("parameters are not text"))?;
    let rendered = render(t, kind, &params).map_err(|e| DeliveryError::permanent(e.to_string()))?;
    let sink = app
        .notifier
        .channel(kind)
        .cloned()
        .ok_or_else(|| DeliveryError::retryable("no sink for this channel in this process"))?;
    Ok((
        Message {
            id: c.id,
            channel: kind,
            template: t,
            provider_template: app.notifier.provider_template(kind, t.id),
            recipient: c.recipient.clone(),
            recipient_mask: c.recipient_mask.clone(),
            params,
            rendered,
            now: app.clock.now(),
        },
        sink,
    ))
}

/// The dispatcher: delivers due notifications when kicked and every `jobs.poll_ms`, until
/// `shutdown` turns true.
pub async fn run_dispatcher(app: App, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let poll = Duration::from_millis(app.config.jobs.poll_ms.max(10));
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = deliver_due(&app).await {
            tracing::error!(error = %format!("{e:#}"), "notification dispatch failed");
        }
        tokio::select! {
            () = app.notifier.kicked() => {}
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The messages in the outbox for `channel`, oldest first (ids are time-ordered): for
/// development, the demo and tests.
pub async fn outbox_messages(
    app: &App,
    channel: ChannelKind,
) -> anyhow::Result<Vec<OutboxMessage>> {
    let dir = app.notifier.outbox_dir().join(channel.as_str());
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(&dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = rd.next_entry().await? {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".json") && !name.starts_with('.') {
            let bytes = tokio::fs::read(entry.path()).await?;
            out.push(serde_json::from_slice::<OutboxMessage>(&bytes)?);
        }
    }
    out.sort_by_key(|m| m.id);
    Ok(out)
}
