//! The demo's funds (owner: fund ledger). SCAFFOLD.

use uuid::Uuid;

use crate::app::App;

/// Returns how many records it wrote (0 when already present).
pub async fn build(_app: &App, _demo_community: Uuid) -> anyhow::Result<usize> {
    Ok(0)
}
