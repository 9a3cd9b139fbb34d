//! Overdue hazards escalate up the tree and notify its officers (owner: hazard ledger). SCAFFOLD.

use crate::app::App;

pub async fn run(_app: &App) -> anyhow::Result<()> {
    Ok(())
}
