//! Risk reviews coming due remind their owners (owner: calendar & risks). SCAFFOLD.

use crate::app::App;

pub async fn run(_app: &App) -> anyhow::Result<()> {
    Ok(())
}
