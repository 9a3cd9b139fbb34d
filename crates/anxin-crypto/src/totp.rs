//! RFC 6238 TOTP second factor for administrators.
//!
//! Fixed to what every authenticator app supports: HMAC-SHA1, 6 digits,
//! 30-second steps, and one step of clock skew either way. The current time
//! is always passed in (`unix_time`, seconds), so callers can inject a clock
//! and tests are deterministic.
//!
//! A code stays valid for up to 90 seconds. To stop an observed code from
//! being replayed, use [`verify_totp_step`] and store the returned step per
//! account, refusing any code whose step is not greater than the stored one.
//!
//! Secrets are 20 random bytes (RFC 4226's recommended 160 bits); store them
//! encrypted like any other personal secret.

use subtle::ConstantTimeEq;
use totp_rs::{Rfc6238, TOTP};

use crate::error::CryptoError;
use crate::rng;

/// Issuer shown by authenticator apps.
pub const TOTP_ISSUER: &str = "Anxin";
/// Length of secrets from [`new_totp_secret`].
pub const TOTP_SECRET_LEN: usize = 20;
/// Digits per code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds per step.
pub const TOTP_STEP_SECS: u64 = 30;

/// A new random 20-byte TOTP secret.
pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; TOTP_SECRET_LEN];
    rng::fill(&mut secret);
    secret
}

/// RFC 4648 base32 without padding, as authenticator apps expect for
/// manual entry.
pub fn totp_secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::Raw(secret.to_vec())
        .to_encoded()
        .to_string()
}

/// The `otpauth://totp/...` URI to show as a QR code, in the Key URI
/// format understood by Google Authenticator, FreeOTP, Microsoft
/// Authenticator and others. `issuer` is normally [`TOTP_ISSUER`].
pub fn otpauth_url(secret: &[u8], account: &str, issuer: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECS}",
        account = percent_encode(account),
        secret = totp_secret_base32(secret),
    )
}

/// The code for `unix_time`. Fails only for secrets under 16 bytes.
pub fn totp_code(secret: &[u8], unix_time: u64) -> Result<String, CryptoError> {
    Ok(totp(secret)?.generate(unix_time))
}

/// Whether `code` is valid at `unix_time` (± one step). Spaces in the code
/// are ignored because apps display it as `123 456`.
pub fn verify_totp(secret: &[u8], code: &str, unix_time: u64) -> bool {
    verify_totp_step(secret, code, unix_time).is_some()
}

/// Like [`verify_totp`], but returns the matching time step
/// (`unix_time / 30` of the code's window) for replay protection.
pub fn verify_totp_step(secret: &[u8], code: &str, unix_time: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret).ok()?;
    let now = unix_time / TOTP_STEP_SECS;
    // totp-rs's own `check` underflows for times in the first step and does
    // not say which step matched, so the ±1 window is walked here.
    let mut matched = None;
    for step in [now.checked_sub(1), Some(now), now.checked_add(1)]
        .into_iter()
        .flatten()
    {
        let Some(t) = step.checked_mul(TOTP_STEP_SECS) else {
            continue;
        };
        let candidate = totp.generate(t);
        if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

fn totp(secret: &[u8]) -> Result<TOTP, CryptoError> {
    // `Rfc6238::with_defaults` (SHA1, 6 digits, skew 1, 30 s) has the same
    // signature whether or not another crate in the build enables totp-rs's
    // "otpauth" feature, unlike `TOTP::new`.
    let rfc = Rfc6238::with_defaults(secret.to_vec()).map_err(|_| CryptoError::BadTotpSecret)?;
    TOTP::from_rfc6238(rfc).map_err(|_| CryptoError::BadTotpSecret)
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors_truncated_to_six_digits() {
        // RFC 6238 Appendix B gives 8-digit codes; 6 digits are their last 6.
        for (t, code8) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code(RFC_SECRET, t).unwrap(), code8[2..], "t={t}");
        }
        assert_eq!(totp_code(RFC_SECRET, 59).unwrap(), "287082");
    }

    #[test]
    fn verify_accepts_one_step_of_skew() {
        assert!(verify_totp(RFC_SECRET, "287082", 59));
        assert!(verify_totp(RFC_SECRET, "287 082", 59));
        assert!(verify_totp(RFC_SECRET, "287082", 59 + 30));
        assert!(verify_totp(RFC_SECRET, "287082", 59 - 30));
        assert!(!verify_totp(RFC_SECRET, "287082", 59 + 60));
        assert!(!verify_totp(RFC_SECRET, "287083", 59));
        assert!(!verify_totp(RFC_SECRET, "28708", 59));
        assert!(!verify_totp(RFC_SECRET, "2870822", 59));
        assert!(!verify_totp(RFC_SECRET, "", 59));
    }

    #[test]
    fn verify_returns_the_matching_step() {
        assert_eq!(verify_totp_step(RFC_SECRET, "287082", 59), Some(1));
        assert_eq!(verify_totp_step(RFC_SECRET, "287082", 89), Some(1));
        assert_eq!(verify_totp_step(RFC_SECRET, "287082", u64::MAX), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            totp_code(b"short", 59).unwrap_err().code(),
            "totp.bad_secret"
        );
        assert!(!verify_totp(b"short", "000000", 59));
    }

    #[test]
    fn new_secrets_work() {
        let s = new_totp_secret();
        assert_eq!(s.len(), 20);
        let now = 1_700_000_000;
        let code = totp_code(&s, now).unwrap();
        assert!(verify_totp(&s, &code, now));
    }

    #[test]
    fn base32_and_url() {
        assert_eq!(
            totp_secret_base32(RFC_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            otpauth_url(RFC_SECRET, "王伟 admin@example.org", TOTP_ISSUER),
            "otpauth://totp/Anxin:%E7%8E%8B%E4%BC%9F%20admin%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Anxin&algorithm=SHA1&digits=6&period=30"
        );
    }
}
