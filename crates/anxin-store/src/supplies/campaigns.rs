//! Distribution campaigns (owner: campaigns). SCAFFOLD.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::ops::{Activation, ActivationStep};
use crate::tx::Tx;

/// Activation step: a plan's `supplies` entries start their distribution campaigns.
pub struct CampaignStep;

impl ActivationStep for CampaignStep {
    fn name(&self) -> &'static str {
        "campaigns"
    }

    fn activate(&self, _tx: &mut Tx, _a: &Activation<'_>) -> Result<serde_json::Value> {
        Ok(json!({ "campaigns": 0 }))
    }

    fn deactivate(
        &self,
        _tx: &mut Tx,
        _incident_id: Uuid,
        _at: DateTime<Utc>,
    ) -> Result<serde_json::Value> {
        Ok(json!({ "campaigns_closed": 0 }))
    }
}

/// One household's request for a campaign's stock (the resident's own, or a worker's on its
/// behalf: 代办).
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub campaign_id: Uuid,
    pub household_id: Uuid,
    /// The pickup slot asked for (`None`: delivery, or the campaign has one slot).
    pub slot_id: Option<Uuid>,
    /// The account making the request (the resident, or the worker reserving on behalf).
    pub actor: Uuid,
    /// Set when a worker reserves on the household's behalf (代办).
    pub on_behalf: bool,
    /// The client's idempotency key: a retry with the same key answers the first reservation.
    pub request_key: Option<String>,
}

/// A reservation that was committed: what the resident is shown.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reserved {
    pub reservation_id: Uuid,
    pub campaign_id: Uuid,
    pub household_id: Uuid,
    pub slot_id: Option<Uuid>,
    /// The single-use pickup code (shown as a QR code).
    pub code: String,
    /// `reserved` (first come first served), `applied` (lottery, before the draw).
    pub status: String,
}

/// Reserve for each request, in order, inside `tx` (one transaction for the whole batch: the
/// rush batcher's one commit). Each request gets its own answer; a refused request (sold out,
/// already reserved, not eligible) does not abort the others or the transaction. An `Err` of the
/// whole call means the transaction must be rolled back and every request failed.
pub fn reserve_many(
    _tx: &mut Tx,
    reqs: &[ReserveRequest],
) -> Result<Vec<std::result::Result<Reserved, StoreError>>> {
    Ok(reqs
        .iter()
        .map(|_| Err(StoreError::Unavailable("campaigns: not built yet".into())))
        .collect())
}
