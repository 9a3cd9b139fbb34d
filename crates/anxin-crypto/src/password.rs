//! Password hashing (Argon2id) and the password policy.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`)
//! that carry their own parameters, so [`verify_password`] checks hashes
//! made with any parameters and the defaults can be raised later; use
//! [`password_needs_rehash`] after a successful login to upgrade old hashes.
//!
//! The default, [`PasswordHasherConfig::OWASP`], is OWASP's Argon2id
//! recommendation (19 MiB, 2 passes, 1 lane), which is also the `argon2`
//! crate's default. Salts are 16 bytes from the OS CSPRNG.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params, Version};

use crate::error::CryptoError;
use crate::rng;

/// Minimum length of a new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer inputs are refused before hashing so a request cannot make the
/// server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHasherConfig {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl PasswordHasherConfig {
    /// OWASP's recommendation: m = 19 MiB, t = 2, p = 1. Use in production.
    pub const OWASP: Self = PasswordHasherConfig {
        m_kib: Params::DEFAULT_M_COST,
        t: Params::DEFAULT_T_COST,
        p: Params::DEFAULT_P_COST,
    };

    /// **Tests only**: the smallest parameters Argon2 accepts, so test
    /// suites creating many users stay fast. Offers no real protection;
    /// [`password_needs_rehash`] reports such hashes as outdated.
    pub const INSECURE_FAST_FOR_TESTS: Self = PasswordHasherConfig {
        m_kib: 8,
        t: 1,
        p: 1,
    };
}

impl Default for PasswordHasherConfig {
    fn default() -> Self {
        Self::OWASP
    }
}

fn argon2(config: &PasswordHasherConfig) -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(config.m_kib, config.t, config.p, None)
        .map_err(|_| CryptoError::PasswordHash)?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        Version::V0x13,
        params,
    ))
}

/// Hashes with the production parameters ([`PasswordHasherConfig::OWASP`]).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    hash_password_with(password, &PasswordHasherConfig::OWASP)
}

/// Hashes with explicit parameters.
pub fn hash_password_with(
    password: &str,
    config: &PasswordHasherConfig,
) -> Result<String, CryptoError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CryptoError::PasswordTooLong);
    }
    let salt_bytes: [u8; 16] = rng::bytes();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| CryptoError::PasswordHash)?;
    let hash = argon2(config)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|_| CryptoError::PasswordHash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. Malformed hashes and
/// over-long passwords give `false`. The comparison is constant-time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
        return false;
    }
    // Parameters come from the PHC string, not from this instance.
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Whether a stored hash is weaker than [`PasswordHasherConfig::OWASP`] (or
/// unreadable) and should be replaced after the next successful login.
pub fn password_needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
        return true;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    let want = PasswordHasherConfig::OWASP;
    params.m_cost() < want.m_kib || params.t_cost() < want.t || params.p_cost() < want.p
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters and at
/// least 3 of the 4 classes lowercase, uppercase, digit, other (symbols,
/// spaces, CJK and other non-Latin characters count as "other").
pub fn check_password_policy(password: &str) -> Result<(), CryptoError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CryptoError::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CryptoError::PasswordTooWeak {
            reason: "must be at least 10 characters",
        });
    }
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    for c in password.chars() {
        if c.is_lowercase() {
            lower = true;
        } else if c.is_uppercase() {
            upper = true;
        } else if c.is_ascii_digit() {
            digit = true;
        } else {
            other = true;
        }
    }
    let classes = [lower, upper, digit, other].iter().filter(|b| **b).count();
    if classes < 3 {
        return Err(CryptoError::PasswordTooWeak {
            reason: "must mix at least 3 of: lowercase, uppercase, digits, symbols",
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FAST: PasswordHasherConfig = PasswordHasherConfig::INSECURE_FAST_FOR_TESTS;

    #[test]
    fn default_matches_owasp() {
        assert_eq!(
            PasswordHasherConfig::default(),
            PasswordHasherConfig {
                m_kib: 19 * 1024,
                t: 2,
                p: 1
            }
        );
    }

    #[test]
    fn hash_and_verify_with_production_params() {
        let phc = hash_password("Correct-Horse-9").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("Correct-Horse-9", &phc));
        assert!(!verify_password("Correct-Horse-8", &phc));
        assert!(!password_needs_rehash(&phc));
    }

    #[test]
    fn fast_hashes_verify_and_need_rehash() {
        let phc = hash_password_with("密码Secret-123", &FAST).unwrap();
        assert!(verify_password("密码Secret-123", &phc));
        assert!(!verify_password("密码secret-123", &phc));
        assert!(password_needs_rehash(&phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password_with("Same-Password-1", &FAST).unwrap();
        let b = hash_password_with("Same-Password-1", &FAST).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn garbage_hashes_do_not_verify() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "$argon2id$garbage"));
        assert!(!verify_password("x", "plaintext-password"));
        assert!(password_needs_rehash("nonsense"));
    }

    #[test]
    fn too_long_is_refused() {
        let long = "aA1!".repeat(300);
        assert_eq!(
            hash_password_with(&long, &FAST).unwrap_err(),
            CryptoError::PasswordTooLong
        );
        assert!(!verify_password(&long, "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    }

    #[test]
    fn policy() {
        for ok in [
            "Abcdefgh12",
            "abcdefgh1!",
            "ABCDEFGH1!",
            "Abcdefghi!",
            "应急管理abcD1234",
        ] {
            assert!(check_password_policy(ok).is_ok(), "{ok}");
        }
        for weak in [
            "Abc12!",
            "abcdefghijkl",
            "abcdefgh12",
            "ABCDEFGHIJ",
            "1234567890!!",
        ] {
            let err = check_password_policy(weak).unwrap_err();
            assert_eq!(err.code(), "password.too_weak", "{weak}");
        }
    }
}
