//! Retention: the job that deletes operational rows once they are older than configured.
//!
//! The rules come from `[retention]` (see `anxin_store::retention` for how each kind is aged).
//! The audit log keeps at least 180 days whatever the configuration says, and its purge keeps
//! the hash chain verifiable. Records (people, households, …) are not purged here: what happens
//! to them is a decision of their own area.

use anxin_store::retention::{self as store_retention, Purged, RetentionRule};
use serde::Serialize;

use crate::app::App;
use crate::config::RetentionConfig;
use crate::platform::jobs::Jobs;

/// The job kind that runs [`purge`].
pub const JOB_KIND: &str = "retention.purge";
/// When it runs, Asia/Shanghai: the quietest hour.
pub const HOUR: u32 = 3;

/// The rules for the configured periods.
pub fn rules(c: &RetentionConfig) -> Vec<RetentionRule> {
    let mut rules =
        store_retention::platform_rules(c.sessions_days, c.notifications_days, c.jobs_days);
    rules.push(anxin_store::ops::passes::gate_records_rule(
        c.gate_records_days,
    ));
    rules
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub purged: Vec<Purged>,
}

impl RetentionReport {
    pub fn rows(&self, kind: &str) -> u64 {
        self.purged
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.rows)
            .sum()
    }
}

/// Apply every rule now.
pub async fn purge(app: &App) -> anyhow::Result<RetentionReport> {
    let now = app.clock.now();
    let mut report = RetentionReport::default();
    for rule in rules(&app.config.retention) {
        let p = store_retention::purge(&app.store, &rule, now).await?;
        report.purged.push(p);
    }
    report.purged.push(
        store_retention::purge_audit(&app.store, app.config.retention.audit_days, now).await?,
    );
    for p in &report.purged {
        if p.rows > 0 {
            tracing::info!(retention.kind = %p.kind, rows = p.rows, keys_shredded = p.keys_shredded, "purged");
        }
    }
    Ok(report)
}

/// Register the purge job and its nightly schedule.
pub fn register(jobs: &Jobs) {
    jobs.register(JOB_KIND, |app, _job| async move {
        purge(&app).await.map(|_| ())
    });
    if let Err(e) = jobs.daily(JOB_KIND, HOUR, 0, serde_json::json!({})) {
        tracing::error!(error = %e, "retention schedule not set");
    }
}
