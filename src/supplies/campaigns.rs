//! Timer jobs of campaigns (owner: campaigns). SCAFFOLD.

use crate::app::App;

pub async fn run(_app: &App) -> anyhow::Result<()> {
    Ok(())
}
