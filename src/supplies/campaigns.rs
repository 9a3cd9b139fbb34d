//! Timer jobs of campaigns (owner: campaigns): lottery draws at the campaign's draw time, and
//! closing pickup campaigns whose every slot has ended.
//!
//! [`run`] (on the monitoring timer, with the other supplies jobs) is safe to run late, twice or
//! on two servers at once: each draw and each close re-checks the campaign inside its write
//! (`draw_due` answers `None` for a campaign drawn meanwhile; `close_ended` for one closed).

use anxin_store::supplies::campaigns as sc;
use anxin_store::WriteCtx;

use crate::app::App;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub drawn: usize,
    pub closed: usize,
}

pub async fn run(app: &App) -> anyhow::Result<()> {
    tick(app).await.map(|_| ())
}

/// Draw every lottery whose time has come; close campaigns whose slots are over.
pub async fn tick(app: &App) -> anyhow::Result<Report> {
    let now = app.clock.now();
    let mut report = Report::default();
    let due = app.store.read(move |c, _| sc::draws_due(c, now)).await?;
    for id in due {
        let r = app
            .store
            .write(WriteCtx::system(format!("campaign-draw-{id}")), move |tx| {
                sc::draw_due(tx, id)
            })
            .await;
        match r {
            Ok(Some(d)) => {
                report.drawn += 1;
                tracing::info!(campaign = %id, winners = d.winners, lost = d.lost, seed = %d.seed, "lottery drawn");
                // The draw enqueued its notices job.
                app.jobs.kick();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(campaign = %id, error = %e, "lottery draw failed"),
        }
    }
    let ended = app.store.read(move |c, _| sc::ended(c, now)).await?;
    for id in ended {
        let r = app
            .store
            .write(
                WriteCtx::system(format!("campaign-close-{id}")),
                move |tx| sc::close_ended(tx, id),
            )
            .await;
        match r {
            Ok(true) => report.closed += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(campaign = %id, error = %e, "closing an ended campaign failed")
            }
        }
    }
    Ok(report)
}
