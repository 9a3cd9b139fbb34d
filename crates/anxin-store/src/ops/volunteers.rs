//! Volunteers: registry, call-outs, attendance and hours (owner: volunteers & welfare). SCAFFOLD.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Activation, ActivationStep};
use crate::error::Result;
use crate::tx::Tx;

/// Calls out volunteers.
pub struct CalloutStep;

impl ActivationStep for CalloutStep {
    fn name(&self) -> &'static str {
        "callouts"
    }
    fn activate(&self, _tx: &mut Tx, _a: &Activation<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn deactivate(&self, _tx: &mut Tx, _id: Uuid, _at: DateTime<Utc>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
}
