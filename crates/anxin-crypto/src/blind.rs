//! Keyed blind indexes: exact-match lookup on encrypted fields.
//!
//! Field ciphertexts are randomized, so equal values encrypt differently and
//! cannot be searched. Next to each searchable encrypted column the store
//! keeps a blind index:
//!
//! ```text
//! index = HMAC-SHA256(blind_key, context || 0x00 || normalized_value)[..16]
//! ```
//!
//! * `context` names the column (e.g. `"people.doc_number"`), so equal
//!   values in different columns get unrelated indexes. It must not contain
//!   NUL, which makes the concatenation unambiguous.
//! * `normalized_value` is the caller's canonical form (trimmed, upper-cased
//!   ID number, E.164 phone, ...): normalization is a domain decision, so it
//!   happens before this module.
//! * 16 bytes keep accidental collisions negligible (2^-64 at 2^32 rows)
//!   while revealing less than the full MAC.
//!
//! Without the key, an index reveals only equality between rows, which is
//! what exact-match search needs; low-entropy values (categories with a
//! handful of options) should not get a blind index at all.
//!
//! # Storing the key
//!
//! The blind-index key is random, stored in the database wrapped by the
//! master key exactly like a data key, via
//! [`KeyRing::wrap_blind_index_key`](crate::KeyRing::wrap_blind_index_key) /
//! [`KeyRing::unwrap_blind_index_key`](crate::KeyRing::unwrap_blind_index_key)
//! (wrapped-key kind byte `0x80`). Rotating the master key only re-wraps it
//! with [`KeyRing::rewrap`](crate::KeyRing::rewrap), so the key bytes, and
//! therefore every stored index, stay the same. Replacing the blind-index
//! key itself requires recomputing all indexes.

use std::fmt;

use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::rng;
use crate::secret::Secret;

/// Length of a blind-index key.
pub const BLIND_INDEX_KEY_LEN: usize = 32;
/// Length of a blind index.
pub const BLIND_INDEX_LEN: usize = 16;

/// SHA-256's block size, the length HMAC pads every key to.
const HMAC_SHA256_BLOCK: usize = 64;

/// The secret key behind all blind indexes of an installation.
#[derive(Clone)]
pub struct BlindIndexKey(Secret<[u8; BLIND_INDEX_KEY_LEN]>);

impl BlindIndexKey {
    /// A fresh random key from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut key = Secret::new([0u8; BLIND_INDEX_KEY_LEN]);
        rng::fill(key.expose_mut());
        BlindIndexKey(key)
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; BLIND_INDEX_KEY_LEN]) -> Self {
        BlindIndexKey(Secret::new(bytes))
    }

    pub(crate) fn expose_bytes(&self) -> &[u8] {
        self.0.expose()
    }

    /// The blind index of `normalized_value` in column `context`.
    pub fn index(&self, context: &str, normalized_value: &str) -> [u8; BLIND_INDEX_LEN] {
        debug_assert!(
            !context.contains('\0'),
            "blind-index context must not contain NUL"
        );
        let mut mac = self.mac();
        mac.update(context.as_bytes());
        mac.update(&[0x00]);
        mac.update(normalized_value.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; BLIND_INDEX_LEN];
        out.copy_from_slice(&full[..BLIND_INDEX_LEN]);
        out
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC (RFC 2104) right-pads a short key with zeros to the block
        // size, so handing it the padded key is the same function; doing it
        // here uses the infallible constructor instead of a `Result` that
        // could never be `Err`.
        let mut block = Zeroizing::new([0u8; HMAC_SHA256_BLOCK]);
        block[..BLIND_INDEX_KEY_LEN].copy_from_slice(self.0.expose());
        <Hmac<Sha256> as hmac::digest::KeyInit>::new(GenericArray::from_slice(&block[..]))
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey([redacted])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn padded_key_equals_standard_hmac() {
        let key = BlindIndexKey::from_bytes([7u8; 32]);
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).unwrap();
        reference.update(b"people.phone\x0013800138000");
        let expected = reference.finalize().into_bytes();
        assert_eq!(key.index("people.phone", "13800138000"), expected[..16]);
    }

    #[test]
    fn rfc4231_case_2_through_the_padded_constructor() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut block = [0u8; HMAC_SHA256_BLOCK];
        block[..4].copy_from_slice(b"Jefe");
        let mut mac =
            <Hmac<Sha256> as hmac::digest::KeyInit>::new(GenericArray::from_slice(&block));
        mac.update(b"what do ya want for nothing?");
        let out = mac.finalize().into_bytes();
        let expected = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
            0x64, 0xec, 0x38, 0x43,
        ];
        assert_eq!(out[..], expected[..]);
    }

    #[test]
    fn deterministic_per_key() {
        let key = BlindIndexKey::generate();
        assert_eq!(
            key.index("people.doc_number", "110101199003077777"),
            key.index("people.doc_number", "110101199003077777")
        );
    }

    #[test]
    fn differs_across_keys_contexts_and_values() {
        let a = BlindIndexKey::generate();
        let b = BlindIndexKey::generate();
        let v = "13800138000";
        assert_ne!(a.index("people.phone", v), b.index("people.phone", v));
        assert_ne!(a.index("people.phone", v), a.index("contacts.phone", v));
        assert_ne!(
            a.index("people.phone", v),
            a.index("people.phone", "13800138001")
        );
    }

    #[test]
    fn separator_prevents_boundary_shifts() {
        let k = BlindIndexKey::generate();
        assert_ne!(k.index("ab", "c"), k.index("a", "bc"));
    }

    #[test]
    fn debug_is_redacted() {
        let k = BlindIndexKey::from_bytes([0xAB; 32]);
        let s = format!("{k:?}");
        assert!(!s.contains("171") && !s.to_lowercase().contains("ab, "));
        assert_eq!(s, "BlindIndexKey([redacted])");
    }
}
