//! Random tokens: sessions, API tokens, CSRF tokens, one-time sign-in codes.
//!
//! Tokens carry 256 bits from the OS CSPRNG, so the database stores only
//! their SHA-256 ([`hash_token`]): a leaked table cannot be replayed, and no
//! slow hash is needed because there is nothing to brute-force. Look a token
//! up by its hash; compare secrets that are not looked up that way (CSRF
//! double-submit, one-time codes) with [`constant_time_eq`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::rng;

/// Random bytes per token.
pub const TOKEN_BYTES: usize = 32;

/// A new token: 32 random bytes as URL-safe base64 without padding
/// (43 characters).
pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rng::bytes();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of the token's text, the form in which tokens are stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A uniformly random decimal code of `digits` digits; leading zeros are
/// kept, so `"004217"` is possible.
pub fn new_numeric_code(digits: usize) -> String {
    // gen_range rejects out-of-range draws, so each digit is exactly uniform.
    (0..digits)
        .map(|_| char::from(b'0' + OsRng.gen_range(0u8..10)))
        .collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 example.
        assert_eq!(hash_token("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_ne!(hash_token("x"), hash_token("y"));
    }

    #[test]
    fn numeric_codes() {
        assert_eq!(new_numeric_code(0), "");
        let mut seen = [0u32; 10];
        for _ in 0..200 {
            let c = new_numeric_code(6);
            assert_eq!(c.len(), 6);
            for b in c.bytes() {
                assert!(b.is_ascii_digit());
                seen[usize::from(b - b'0')] += 1;
            }
        }
        // 1200 digits: every digit value shows up (chance of a miss ~1e-53).
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    }

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
