//! Voice calls through a provider that speaks a registered TTS template: Anxin's generic JSON
//! API (docs/CHANNELS.md). `POST endpoint` with `Authorization: Bearer <api_key>`,
//! `X-Anxin-Timestamp` and `X-Anxin-Signature` (HMAC-SHA256 of `timestamp\nbody` with the key)
//! and the body `{"id", "to", "tts_template", "params", "text", "repeat"}`; a 2xx answer
//! `{"call_id": …}` means the provider accepted the call. Whether it was answered arrives later
//! as a receipt (`POST /api/v1/notify/sms/receipts` with `"channel": "voice"`).

use anyhow::Context;
use serde_json::json;

use super::client;
use super::sms_http::post_signed;
use crate::config::VoiceConfig;
use crate::platform::notify::{Channel, DeliverFuture, Delivery, DeliveryError, Message};

pub struct VoiceSink {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    key: String,
    repeat: u32,
}

impl std::fmt::Debug for VoiceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceSink").finish_non_exhaustive()
    }
}

impl VoiceSink {
    pub fn new(c: &VoiceConfig) -> anyhow::Result<Self> {
        let endpoint: reqwest::Url = c
            .endpoint
            .parse()
            .context("notify.voice.endpoint is not a URL")?;
        let key = c
            .api_key
            .as_ref()
            .map(|k| k.expose().clone())
            .filter(|k| !k.is_empty())
            .context("notify.voice.api_key is not set")?;
        Ok(Self {
            client: client(c.timeout_seconds)?,
            endpoint,
            key,
            repeat: c.repeat.clamp(1, 5),
        })
    }
}

impl Channel for VoiceSink {
    fn name(&self) -> &'static str {
        "voice"
    }
    fn deliver<'a>(&'a self, msg: &'a Message) -> DeliverFuture<'a> {
        Box::pin(async move {
            let tts = msg.provider_template.clone().ok_or_else(|| {
                DeliveryError::permanent(format!("voice: no TTS template for {}", msg.template.id))
            })?;
            let body = json!({
                "id": msg.id,
                "to": msg.recipient,
                "tts_template": tts,
                "params": msg.params,
                "text": msg.rendered.body,
                "repeat": self.repeat,
            });
            let answer = post_signed(
                &self.client,
                &self.endpoint,
                &self.key,
                "voice",
                msg.now,
                &body,
            )
            .await?;
            let call_id = answer
                .get("call_id")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| msg.id.to_string());
            Ok(Delivery {
                provider_ref: Some(call_id),
                segments: None,
            })
        })
    }
}
