//! A wrapper for key material and credentials.
//!
//! [`Secret`] exists so that a secret cannot leak through the usual
//! accidental paths:
//!
//! * `Debug` and `Display` print `[redacted]`, so a secret inside a config
//!   struct or an error never reaches a log;
//! * the value is zeroized when dropped, so freed memory does not keep it;
//! * it implements `Deserialize` (configuration can hold one) but **not**
//!   `Serialize`, so it can never be written back out by a derived
//!   serializer, e.g. when a config is echoed or saved.
//!
//! Reading the value takes an explicit [`Secret::expose`], which makes every
//! use greppable.
//!
//! ```
//! fn needs_deserialize<T: serde::de::DeserializeOwned>() {}
//! needs_deserialize::<anxin_crypto::Secret<String>>();
//! ```
//!
//! ```compile_fail
//! // Secrets cannot be serialized.
//! fn needs_serialize<T: serde::Serialize>() {}
//! needs_serialize::<anxin_crypto::Secret<String>>();
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value that is redacted in output and wiped from memory on drop.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Takes ownership of `value`; it is zeroized when the `Secret` drops.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value. Do not copy it into anything that outlives the
    /// borrow without wrapping the copy again.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Lets key constructors fill a buffer in place instead of building the
    /// key elsewhere and leaving a copy behind.
    pub(crate) fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Deserializes transparently as the inner type, so `Secret<String>` reads a
/// plain string from TOML, JSON or environment variables.
impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Config {
        #[allow(dead_code)]
        token: Secret<String>,
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new(String::from("hunter2-very-secret"));
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let c: Config = serde_json::from_str(r#"{"token":"abc123"}"#).unwrap();
        assert_eq!(c.token.expose(), "abc123");
        assert!(!format!("{c:?}").contains("abc123"));
    }

    #[test]
    fn clone_is_independent() {
        let a = Secret::new(vec![1u8, 2, 3]);
        let b = a.clone();
        drop(a);
        assert_eq!(b.expose(), &vec![1u8, 2, 3]);
    }
}
