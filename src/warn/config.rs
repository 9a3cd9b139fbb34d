//! The `[warnings]` section.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarningsConfig {
    /// This platform's CAP `sender` (no spaces, commas, `<` or `&`).
    pub sender: String,
    /// CAP senders whose alerts are trusted. Imports from any other sender land as drafts needing
    /// approval; even trusted imports are drafts here: an outside warning never goes out without
    /// a person issuing it.
    pub trusted_senders: Vec<String>,
    /// Largest CAP document accepted on import (bytes).
    pub cap_max_bytes: usize,
}

impl Default for WarningsConfig {
    fn default() -> Self {
        Self {
            sender: "anxin.local".into(),
            trusted_senders: Vec::new(),
            cap_max_bytes: 512 * 1024,
        }
    }
}
