//! The `[warnings]` section.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::dsig::PublicKey;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarningsConfig {
    /// This platform's CAP `sender` (no spaces, commas, `<` or `&`).
    pub sender: String,
    /// CAP senders trusted by name alone. Imports from any other sender land as drafts needing
    /// approval; even trusted imports are drafts here: an outside warning never goes out without
    /// a person issuing it. Anyone can write a name: prefer `[[warnings.trusted]]` with a key.
    pub trusted_senders: Vec<String>,
    /// Trusted CAP senders with the key their alerts are signed with (XML-DSig, CAP 1.2
    /// §3.3.4.1). An alert naming such a sender is trusted only when its signature verifies
    /// with this key; otherwise it lands as an untrusted draft and says why.
    pub trusted: Vec<TrustedSender>,
    /// Largest CAP document accepted on import (bytes).
    pub cap_max_bytes: usize,
}

impl Default for WarningsConfig {
    fn default() -> Self {
        Self {
            sender: "anxin.local".into(),
            trusted_senders: Vec::new(),
            trusted: Vec::new(),
            cap_max_bytes: 512 * 1024,
        }
    }
}

/// One `[[warnings.trusted]]` entry: a sender and its public key or X.509 certificate in PEM
/// (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN CERTIFICATE-----`; RSA or ECDSA P-256), inline
/// (`key_pem`) or in a file (`key_file`), exactly one of the two. A certificate is used as a
/// pinned key: its dates and issuer are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedSender {
    pub sender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// How the configuration trusts a sender.
#[derive(Debug)]
pub enum SenderTrust {
    /// Not on any list.
    Untrusted,
    /// On `trusted_senders` (or a `[[warnings.trusted]]` entry without a key).
    ByName,
    /// Its alerts must carry a signature made with this key (or why the key could not be read).
    Key(Result<PublicKey, String>),
}

impl TrustedSender {
    /// The configured key, read and parsed; errors name the field.
    pub fn key(&self, i: usize) -> Option<Result<PublicKey, String>> {
        let field = |f: &str| format!("warnings.trusted[{i}].{f}");
        match (&self.key_pem, &self.key_file) {
            (None, None) => None,
            (Some(_), Some(_)) => Some(Err(format!(
                "{}: give key_pem or key_file, not both",
                field("key_file")
            ))),
            (Some(pem), None) => {
                Some(PublicKey::from_pem(pem).map_err(|e| format!("{}: {e}", field("key_pem"))))
            }
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|pem| PublicKey::from_pem(&pem))
                    .map_err(|e| format!("{}: {e}", field("key_file"))),
            ),
        }
    }
}

impl WarningsConfig {
    /// Check what types cannot: sender names, one entry per sender, readable keys.
    pub fn validate(&self) -> Result<(), String> {
        for (i, t) in self.trusted.iter().enumerate() {
            if !anxin_domain::warning::cap_token_ok(&t.sender) {
                return Err(format!(
                    "warnings.trusted[{i}].sender: a CAP sender is needed (no spaces, commas, < or &)"
                ));
            }
            if self.trusted[..i].iter().any(|o| o.sender == t.sender) {
                return Err(format!(
                    "warnings.trusted[{i}].sender: {} is listed twice",
                    t.sender
                ));
            }
            if let Some(Err(e)) = t.key(i) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// How `sender` is trusted. A keyed `[[warnings.trusted]]` entry wins over the plain list.
    pub fn trust_for(&self, sender: &str) -> SenderTrust {
        if let Some((i, t)) = self
            .trusted
            .iter()
            .enumerate()
            .find(|(_, t)| t.sender == sender)
        {
            return match t.key(i) {
                Some(k) => SenderTrust::Key(k),
                None => SenderTrust::ByName,
            };
        }
        if self.trusted_senders.iter().any(|s| s == sender) {
            SenderTrust::ByName
        } else {
            SenderTrust::Untrusted
        }
    }
}
