//! Cryptography for Anxin's personal data.
//!
//! Personal data (ID numbers, phones, vulnerable-people categories, images
//! in change logs) is encrypted at rest, as PIPL and MLPS 2.0 (等保 2.0)
//! level 3 require. This crate owns every primitive the rest of Anxin uses
//! so that choices are made in one place, always through well-reviewed
//! RustCrypto crates rather than hand-written primitives:
//!
//! * [`secret`]: [`Secret`], redacted in output and zeroized on drop;
//! * [`envelope`]: master keys from config wrap random data keys, which
//!   encrypt fields with AES-256-GCM or SM4-GCM;
//! * [`blind`]: HMAC blind indexes for exact-match search on encrypted fields;
//! * [`password`]: Argon2id hashes and the password policy;
//! * [`totp`]: RFC 6238 codes for administrators;
//! * [`token`]: session/API/CSRF tokens and numeric one-time codes.
//!
//! Errors are one [`CryptoError`] with stable [`CryptoError::code`]s; no
//! error or `Debug` output ever contains key material or plaintext.

#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::expect_used)]

pub mod blind;
pub mod envelope;
mod error;
pub mod password;
mod rng;
pub mod secret;
pub mod token;
pub mod totp;

pub use blind::BlindIndexKey;
pub use envelope::{
    decrypt, encrypt, peek_key_id, Algorithm, DataKey, KeyRing, MasterKey, WrappedKey,
};
pub use error::CryptoError;
pub use password::{
    check_password_policy, hash_password, hash_password_with, password_needs_rehash,
    verify_password, PasswordHasherConfig,
};
pub use secret::Secret;
pub use token::{constant_time_eq, hash_token, new_numeric_code, new_token};
pub use totp::{
    new_totp_secret, otpauth_url, totp_code, totp_secret_base32, verify_totp, verify_totp_step,
};
