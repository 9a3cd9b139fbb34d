//! The hazard ledger (owner: hazard ledger). SCAFFOLD.
//!
//! [`report`] is the one way a hazard comes to be (inspections call it for a failed item, staff
//! through the API): it computes the deadlines from the grade's rule and the calendar, writes
//! the hazard and its first event in the caller's transaction, and returns its id.

use anxin_domain::hazard::{GradeRule, HazardGrade, HazardSource, PlaceKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::tx::Tx;

/// A hazard to report. The place is resolved by the caller (node, grid, label, position).
#[derive(Debug, Clone)]
pub struct NewHazard {
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub place_kind: PlaceKind,
    pub place_id: Uuid,
    pub place_label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub source: HazardSource,
    pub inspection_id: Option<Uuid>,
    pub answer_id: Option<Uuid>,
    pub category: String,
    pub finding: String,
    pub grade: HazardGrade,
    pub responsible_party: Option<String>,
    pub found_at: DateTime<Utc>,
    /// Photos already stored as attachments, linked to the hazard as its first evidence.
    pub evidence: Vec<Uuid>,
}

/// Report a hazard inside `tx` (see the module doc). `rules` come from configuration.
pub fn report(
    _tx: &mut Tx<'_>,
    _actor: Option<Uuid>,
    _rules: &[GradeRule],
    _hazard: &NewHazard,
) -> Result<Uuid> {
    Err(crate::error::StoreError::Unavailable(
        "hazard ledger not built yet".into(),
    ))
}
