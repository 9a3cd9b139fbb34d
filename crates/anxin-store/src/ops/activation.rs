//! The activation engine (owner: plans & activation). SCAFFOLD: the steps below do nothing yet.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Activation, ActivationStep};
use crate::error::Result;
use crate::tx::Tx;

/// Creates the plan's tasks, assigned to the role holders.
pub struct TaskStep;

impl ActivationStep for TaskStep {
    fn name(&self) -> &'static str {
        "tasks"
    }
    fn activate(&self, _tx: &mut Tx, _a: &Activation<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn deactivate(&self, _tx: &mut Tx, _id: Uuid, _at: DateTime<Utc>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
}

/// Opens the plan's shelters.
pub struct ShelterStep;

impl ActivationStep for ShelterStep {
    fn name(&self) -> &'static str {
        "shelters"
    }
    fn activate(&self, _tx: &mut Tx, _a: &Activation<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn deactivate(&self, _tx: &mut Tx, _id: Uuid, _at: DateTime<Utc>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
}
