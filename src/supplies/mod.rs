//! Supplies on the binary's side (issue 7): what runs on a timer — expiry warnings and the reserve
//! gap report (`reserves`), campaign slots and lottery draws (`campaigns`) — and the
//! configuration (`config`). The records live in `anxin-store` `supplies`.

pub mod campaigns;
pub mod config;
pub mod notices;
pub mod reserves;
pub mod rush;

use crate::app::App;

/// One pass of every supplies job; the monitor's timer calls it. Each part is safe to run late,
/// twice, or on two servers at once.
pub async fn run(app: &App) -> anyhow::Result<()> {
    if let Err(e) = reserves::run(app).await {
        tracing::warn!(error = %e, "reserve jobs failed");
    }
    if let Err(e) = campaigns::run(app).await {
        tracing::warn!(error = %e, "campaign jobs failed");
    }
    Ok(())
}
