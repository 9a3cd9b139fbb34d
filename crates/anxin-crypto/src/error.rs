//! The one error type of this crate.
//!
//! Messages and `Debug` output carry only non-secret context (key ids,
//! algorithm names, fixed reasons) so an error can be logged as is: never key
//! bytes, plaintext, passwords or the configuration string a key came from.

use uuid::Uuid;

/// Errors from every module of this crate; [`CryptoError::code`] gives a
/// stable string for API responses and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A wrapped key names a master key that the key ring does not hold.
    #[error("unknown master key id '{id}'")]
    UnknownKey {
        /// The missing master key id.
        id: String,
    },
    /// An algorithm name or number this crate does not know.
    #[error("unknown encryption algorithm")]
    UnknownAlgorithm,
    /// The bytes are not one of this crate's formats (bad magic, version,
    /// algorithm or length).
    #[error("ciphertext is malformed or of an unsupported format")]
    BadCiphertext,
    /// The ciphertext was made with another data key than the one given.
    #[error("ciphertext is for data key {found}, not {expected}")]
    WrongKey {
        /// Id of the data key passed in.
        expected: Uuid,
        /// Id written in the ciphertext header.
        found: Uuid,
    },
    /// Authentication failed: wrong key, wrong context (AAD) or tampering.
    #[error("decryption failed: wrong key, wrong context or tampered data")]
    DecryptFailed,
    /// The AEAD refused to encrypt (only possible for absurdly long input).
    #[error("encryption failed")]
    EncryptFailed,
    /// A master key (KEK) definition is invalid.
    #[error("invalid master key: {reason}")]
    BadMasterKey {
        /// What is wrong, without any key material.
        reason: String,
    },
    /// A key ring definition is invalid (missing current key, duplicate ids).
    #[error("invalid key ring: {reason}")]
    BadKeyRing {
        /// What is wrong.
        reason: String,
    },
    /// A data key has the wrong length for its algorithm.
    #[error("invalid data key: {reason}")]
    BadDataKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// A new password fails the password policy.
    #[error("password too weak: {reason}")]
    PasswordTooWeak {
        /// Which rule failed, suitable to show to the user.
        reason: &'static str,
    },
    /// A password longer than [`crate::password::MAX_PASSWORD_BYTES`].
    #[error("password too long")]
    PasswordTooLong,
    /// Argon2 could not hash (bad parameters).
    #[error("password hashing failed")]
    PasswordHash,
    /// A TOTP secret shorter than RFC 4226's 128-bit minimum.
    #[error("invalid TOTP secret")]
    BadTotpSecret,
}

impl CryptoError {
    /// Stable machine-readable code, e.g. `"crypto.unknown_key"`.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::UnknownKey { .. } => "crypto.unknown_key",
            CryptoError::UnknownAlgorithm => "crypto.unknown_algorithm",
            CryptoError::BadCiphertext => "crypto.bad_ciphertext",
            CryptoError::WrongKey { .. } => "crypto.wrong_key",
            CryptoError::DecryptFailed => "crypto.decrypt_failed",
            CryptoError::EncryptFailed => "crypto.encrypt_failed",
            CryptoError::BadMasterKey { .. } => "crypto.bad_master_key",
            CryptoError::BadKeyRing { .. } => "crypto.bad_key_ring",
            CryptoError::BadDataKey { .. } => "crypto.bad_data_key",
            CryptoError::PasswordTooWeak { .. } => "password.too_weak",
            CryptoError::PasswordTooLong => "password.too_long",
            CryptoError::PasswordHash => "password.hash_failed",
            CryptoError::BadTotpSecret => "totp.bad_secret",
        }
    }
}
