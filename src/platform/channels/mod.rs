//! Provider sinks for the notification channels beyond e-mail: SMS through a provider's HTTP API
//! ([`sms_http`]: Tencent Cloud SMS with TC3-HMAC-SHA256, or a generic JSON gateway), WeChat
//! service-account template messages ([`wechat`]), voice calls ([`voice`]) and group robots
//! ([`robot`]: WeCom and DingTalk webhooks).
//!
//! Every sink maps a provider's answer onto [`DeliveryError`]: transport failures, timeouts,
//! HTTP 5xx and 429 and the provider's "busy / rate limited" codes are retryable; any other 4xx
//! and refusals (bad number, unknown template, bad signature) are permanent. Reasons name the
//! provider's status or error code only: never the address, the URL (it may hold a key) or the
//! provider's message text (it may quote the number).

pub mod robot;
pub mod sms_http;
pub mod voice;
pub mod wechat;

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::platform::notify::DeliveryError;

/// How long a provider may take before it is given up (retryable).
pub(crate) fn client(timeout_seconds: u64) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_seconds.clamp(1, 120)))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A transport failure: retryable, described without the URL.
pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> DeliveryError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() || e.is_body() {
        "unreadable answer"
    } else {
        "request failed"
    };
    DeliveryError::retryable(format!("{provider}: {what}"))
}

/// An HTTP status other than success: 5xx and 429 retryable, other 4xx permanent.
pub(crate) fn status_error(provider: &str, status: reqwest::StatusCode) -> DeliveryError {
    let code = status.as_u16();
    if status.is_server_error() || code == 429 || code == 408 {
        DeliveryError::retryable(format!("{provider}: HTTP {code}"))
    } else {
        DeliveryError::permanent(format!("{provider}: HTTP {code}"))
    }
}

pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; the error branch cannot happen.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The signature of Anxin's own JSON requests and callbacks:
/// `hex(HMAC-SHA256(secret, timestamp + "\n" + body))`, sent as `X-Anxin-Signature` with the
/// Unix `timestamp` in `X-Anxin-Timestamp`.
pub fn anxin_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}\n").into_bytes();
    msg.extend_from_slice(body);
    hex::encode(hmac_sha256(secret.as_bytes(), &msg))
}

/// Check an [`anxin_signature`] in constant time.
pub fn verify_anxin_signature(secret: &str, timestamp: i64, body: &[u8], given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex.trim()) else {
        return false;
    };
    let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    m.update(format!("{timestamp}\n").as_bytes());
    m.update(body);
    m.verify_slice(&given).is_ok()
}

pub const SIGNATURE_HEADER: &str = "x-anxin-signature";
pub const TIMESTAMP_HEADER: &str = "x-anxin-timestamp";

// ---- SMS segments ----------------------------------------------------------------------------

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: an escape septet plus one, so two each.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// How a message is encoded on the air and how many parts it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// GSM 7-bit (true) or UCS-2 (false: anything outside the GSM alphabet, Chinese included).
    pub gsm7: bool,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub parts: u32,
}

/// Segments of an SMS text: GSM-7 160 in one part, 153 per part when concatenated; UCS-2 70 in
/// one part, 67 per part. The provider's signature (`【安心社区】`) counts: it is part of the
/// text sent. An empty text is still one message.
pub fn sms_segments(text: &str) -> Segments {
    let mut septets = 0usize;
    let mut gsm7 = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm7 = false;
            break;
        }
    }
    let (units, single, multi) = if gsm7 {
        (septets, 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    let parts = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    Segments {
        gsm7,
        units,
        parts: u32::try_from(parts).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_limits() {
        let a160 = "a".repeat(160);
        assert_eq!(sms_segments(&a160).parts, 1);
        assert!(sms_segments(&a160).gsm7);
        assert_eq!(sms_segments(&"a".repeat(161)).parts, 2);
        assert_eq!(sms_segments(&"a".repeat(306)).parts, 2);
        assert_eq!(sms_segments(&"a".repeat(307)).parts, 3);
        assert_eq!(sms_segments("").parts, 1);
    }

    #[test]
    fn gsm7_extension_characters_take_two_septets() {
        let s = format!("{}€", "a".repeat(158));
        let seg = sms_segments(&s);
        assert!(seg.gsm7);
        assert_eq!(seg.units, 160);
        assert_eq!(seg.parts, 1);
        assert_eq!(sms_segments(&format!("{}[", "a".repeat(159))).parts, 2);
    }

    #[test]
    fn ucs2_limits() {
        let zh70 = "安".repeat(70);
        let seg = sms_segments(&zh70);
        assert!(!seg.gsm7);
        assert_eq!(seg.parts, 1);
        assert_eq!(sms_segments(&"安".repeat(71)).parts, 2);
        assert_eq!(sms_segments(&"安".repeat(134)).parts, 2);
        assert_eq!(sms_segments(&"安".repeat(135)).parts, 3);
        // One non-GSM character turns the whole message into UCS-2.
        assert_eq!(sms_segments(&format!("{}安", "a".repeat(69))).parts, 1);
        assert_eq!(sms_segments(&format!("{}安", "a".repeat(70))).parts, 2);
        // A character outside the BMP is two UTF-16 units.
        assert_eq!(sms_segments(&"😀".repeat(35)).units, 70);
        assert_eq!(sms_segments(&"😀".repeat(36)).parts, 2);
    }

    #[test]
    fn login_code_sms_is_one_part() {
        let t = crate::platform::notify::template("login_code").unwrap();
        let text = t.sms.unwrap_or_default();
        assert_eq!(sms_segments(text).parts, 1);
    }

    #[test]
    fn anxin_signature_round_trip() {
        let sig = anxin_signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(verify_anxin_signature(
            "s3cret",
            1_700_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_anxin_signature(
            "s3cret",
            1_700_000_001,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_anxin_signature(
            "other",
            1_700_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_anxin_signature(
            "s3cret",
            1_700_000_000,
            b"{\"a\":1}",
            "zz"
        ));
    }
}
