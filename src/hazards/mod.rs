//! Hazards on the binary's side (issue 6): what runs on a timer — overdue hazards escalating up
//! the tree (`escalation`), risk reviews coming due (`reminders`), the quarterly supervision
//! round (`supervision`) — and the configuration of grades, risks and cards (`config`). The
//! records live in `anxin-store` `hazards`.

pub mod config;
pub mod escalation;
pub mod reminders;
pub mod supervision;

use crate::app::App;

/// One pass of every hazard job; the monitor's timer calls it. Each part is safe to run late,
/// twice, or on two servers at once.
pub async fn run(app: &App) -> anyhow::Result<()> {
    if let Err(e) = escalation::run(app).await {
        tracing::warn!(error = %e, "hazard escalation failed");
    }
    if let Err(e) = reminders::run(app).await {
        tracing::warn!(error = %e, "risk review reminders failed");
    }
    if let Err(e) = supervision::run(app).await {
        tracing::warn!(error = %e, "supervision round failed");
    }
    Ok(())
}
