//! The demo's year of inspections and hazards (owner: supervision). SCAFFOLD.

use uuid::Uuid;

use crate::app::App;

/// Build the history for the demo district; returns how many records it wrote (0 when present).
pub async fn build(_app: &App, _demo_community: Uuid) -> anyhow::Result<usize> {
    Ok(0)
}
