//! The demo's supplies (issue 7): depots and stock, a campaign, a provider with offers and an
//! order, and a year of the emergency fund — each part builds its own.

pub mod campaigns;
pub mod funds;
pub mod providers;
pub mod reserves;

use uuid::Uuid;

use crate::app::App;

/// Build the supplies of the demo community; returns how many records it wrote (0 when present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let mut n = reserves::build(app, demo_community).await?;
    n += providers::build(app, demo_community).await?;
    n += campaigns::build(app, demo_community).await?;
    n += funds::build(app, demo_community).await?;
    Ok(n)
}
