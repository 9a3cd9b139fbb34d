//! Timer jobs of reserves (owner: reserves & dispatch). SCAFFOLD.

use crate::app::App;

pub async fn run(_app: &App) -> anyhow::Result<()> {
    Ok(())
}
