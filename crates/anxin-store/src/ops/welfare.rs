//! Welfare checks, 不漏一人 (owner: volunteers & welfare). SCAFFOLD.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Activation, ActivationStep};
use crate::error::Result;
use crate::tx::Tx;

/// A welfare check for every vulnerable person in scope.
pub struct WelfareStep;

impl ActivationStep for WelfareStep {
    fn name(&self) -> &'static str {
        "welfare"
    }
    fn activate(&self, _tx: &mut Tx, _a: &Activation<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn deactivate(&self, _tx: &mut Tx, _id: Uuid, _at: DateTime<Utc>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
}
