//! The quarterly supervision round (红黄牌, owner: supervision): once a quarter (Asia/Shanghai)
//! has ended, every community is scored on it once and the round is stored, so the trend is the
//! stored rounds. The monitor's timer calls [`run`] often; it is a single cheap read until a
//! quarter ends unscored. The store makes it once-only: the write checks for the quarter's round
//! and a partial unique index (`supervision_rounds_quarterly`) refuses a second one, so a run
//! that comes late, twice, or on two servers at once scores the quarter exactly once.

use anxin_store::hazards::supervision::{self as store_sup, Quarter, Round};
use anxin_store::{StoreError, WriteCtx};

use crate::app::App;

/// Score the quarter that ended last, unless that is done. Returns the round it stored.
pub async fn run(app: &App) -> anyhow::Result<Option<Round>> {
    let quarter = Quarter::containing(app.clock.now()).prev().to_string();
    let q = quarter.clone();
    let done = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM supervision_rounds WHERE cause = 'quarterly' AND quarter = $1",
                &anxin_store::params![q],
            )
        })
        .await?;
    if done > 0 {
        return Ok(None);
    }
    let t = app.config.supervision.thresholds();
    match app
        .store
        .write(WriteCtx::system("supervision.quarterly"), move |tx| {
            store_sup::quarterly(tx, &t)
        })
        .await
    {
        Ok(Some(r)) => {
            tracing::info!(
                supervision.quarter = %r.quarter,
                supervision.communities = r.communities,
                supervision.red = r.red,
                supervision.yellow = r.yellow,
                "quarterly supervision round stored"
            );
            Ok(Some(r))
        }
        Ok(None) => Ok(None),
        // Another server stored it between our check and our write.
        Err(StoreError::Conflict { .. }) => {
            tracing::debug!(supervision.quarter = %quarter, "quarterly round already stored");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
