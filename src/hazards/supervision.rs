//! The quarterly supervision round (红黄牌) (owner: supervision). SCAFFOLD.

use crate::app::App;

pub async fn run(_app: &App) -> anyhow::Result<()> {
    Ok(())
}
