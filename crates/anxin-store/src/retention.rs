//! Retention: how long each kind of operational row is kept, and the purge that enforces it.
//!
//! Each kind declares a [`RetentionRule`]: its table, the time column that ages it, how long it
//! is kept and an optional extra condition (only finished jobs, only sent or failed deliveries).
//! The purge deletes in batches, each its own short write, so SQLite's single writer is never
//! held for long. Rows that own a data key (`key_column`) have it shredded with them.
//!
//! The audit log is hash-chained: its purge goes through `audit::purge_before`, which moves the
//! chain's anchor so verification still covers every entry kept ([`purge_audit`]).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::params;
use crate::tx::{Tx, WriteCtx};
use crate::Store;

/// Rows deleted per write.
pub const BATCH: i64 = 1000;
/// The audit log is never kept for less than this (等保: six months).
pub const AUDIT_MIN_DAYS: i64 = 180;

/// One kind of row and how long it is kept.
#[derive(Debug, Clone)]
pub struct RetentionRule {
    /// Name in reports and logs (`sessions`).
    pub kind: &'static str,
    pub table: &'static str,
    /// The instant the age is measured from; rows where it is NULL are kept.
    pub time_column: &'static str,
    pub keep: Duration,
    /// More SQL that a row must match to go (`status IN ('done', 'failed')`); no parameters.
    pub extra: Option<&'static str>,
    /// A column holding the row's own data key, shredded with the row.
    pub key_column: Option<&'static str>,
    /// The row's unique key, used to delete in batches.
    pub id_column: &'static str,
    /// For a logged table (records written through `Tx`): its change-log kind. The row's
    /// change-log entries are deleted with it (whereabouts must not outlive their period there).
    pub log_kind: Option<&'static str>,
}

/// Rules for the platform's operational tables, given the configured periods in days.
pub fn platform_rules(
    sessions_days: i64,
    notifications_days: i64,
    jobs_days: i64,
) -> Vec<RetentionRule> {
    vec![
        RetentionRule {
            kind: "sessions",
            table: "sessions",
            time_column: "last_seen",
            keep: Duration::days(sessions_days),
            extra: None,
            key_column: None,
            id_column: "id",
            log_kind: None,
        },
        RetentionRule {
            kind: "login_codes",
            table: "login_codes",
            time_column: "expires_at",
            keep: Duration::days(sessions_days),
            extra: None,
            key_column: None,
            id_column: "id",
            log_kind: None,
        },
        RetentionRule {
            kind: "jobs",
            table: "jobs",
            time_column: "finished_at",
            keep: Duration::days(jobs_days),
            extra: Some("status IN ('done', 'failed')"),
            key_column: None,
            id_column: "id",
            log_kind: None,
        },
        RetentionRule {
            kind: "notifications",
            table: "notifications",
            time_column: "created_at",
            keep: Duration::days(notifications_days),
            extra: Some("status IN ('sent', 'failed')"),
            key_column: Some("key_id"),
            id_column: "id",
            log_kind: None,
        },
        // Replies to messages (sealed text): kept as long as the messages.
        RetentionRule {
            kind: "notification_replies",
            table: "notification_replies",
            time_column: "received_at",
            keep: Duration::days(notifications_days),
            extra: None,
            key_column: Some("key_id"),
            id_column: "id",
            log_kind: None,
        },
    ]
}

/// What one rule removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub kind: String,
    pub rows: u64,
    pub keys_shredded: u64,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Delete the rows of `rule` older than `now - keep`, batch by batch.
pub async fn purge(store: &Store, rule: &RetentionRule, now: DateTime<Utc>) -> Result<Purged> {
    if let Some(kind) = rule.log_kind {
        if !crate::changelog::LOGGED_TABLES.contains(&kind) || kind != rule.table {
            return Err(StoreError::Backend(format!(
                "retention rule {}: {kind} is not the rule's logged table",
                rule.kind
            )));
        }
    }
    for name in [rule.table, rule.time_column, rule.id_column]
        .into_iter()
        .chain(rule.key_column)
    {
        if !is_ident(name) {
            return Err(StoreError::Backend(format!(
                "retention rule {}: bad name {name}",
                rule.kind
            )));
        }
    }
    let cutoff = now - rule.keep;
    let mut total = Purged {
        kind: rule.kind.to_owned(),
        ..Purged::default()
    };
    loop {
        let r = rule.clone();
        let env = store.env().clone();
        let (rows, keys) = store
            .write(
                WriteCtx::system(format!("retention.{}", rule.kind)),
                move |tx| purge_batch(tx, &env, &r, cutoff),
            )
            .await?;
        total.rows += rows;
        total.keys_shredded += keys;
        if rows < BATCH.unsigned_abs() {
            break;
        }
    }
    Ok(total)
}

fn purge_batch(
    tx: &mut Tx,
    env: &crate::Env,
    r: &RetentionRule,
    cutoff: DateTime<Utc>,
) -> Result<(u64, u64)> {
    let extra = r.extra.map(|e| format!(" AND ({e})")).unwrap_or_default();
    let key_sel = r
        .key_column
        .map(|k| format!(", {k} AS purge_key"))
        .unwrap_or_default();
    let rows = tx.query(
        &format!(
            "SELECT {id} AS purge_id{key_sel} FROM {t} WHERE {tc} < $1{extra} ORDER BY {tc} LIMIT $2",
            id = r.id_column,
            t = r.table,
            tc = r.time_column
        ),
        &params![cutoff, BATCH],
    )?;
    let mut keys = 0;
    let mut deleted = 0;
    for row in &rows {
        let id = row.raw("purge_id")?.clone();
        deleted += match r.log_kind {
            // A logged table: the record and its whole history go together, around `Tx` on
            // purpose (a purge is not a change to log).
            Some(kind) => {
                tx.conn().execute(
                    "DELETE FROM change_log WHERE kind = $1 AND record_id = $2",
                    &[kind.into(), id.clone()],
                )?;
                tx.conn().execute(
                    &format!("DELETE FROM {} WHERE {} = $1", r.table, r.id_column),
                    &[id],
                )?
            }
            None => tx.execute_unlogged(
                &format!("DELETE FROM {} WHERE {} = $1", r.table, r.id_column),
                &[id],
            )?,
        };
        if r.key_column.is_some() {
            if let Some(k) = row.get::<Option<Uuid>>("purge_key")? {
                env.keys.shred(tx.conn(), k)?;
                keys += 1;
            }
        }
    }
    Ok((deleted, keys))
}

/// Purge audit entries older than `keep_days` (never fewer than [`AUDIT_MIN_DAYS`]), through
/// the audit module, which keeps the chain verifiable by moving its anchor (`audit_head`).
pub async fn purge_audit(store: &Store, keep_days: i64, now: DateTime<Utc>) -> Result<Purged> {
    let cutoff = now - Duration::days(keep_days.max(AUDIT_MIN_DAYS));
    let rows = store
        .write(WriteCtx::system("retention.audit_log"), move |tx| {
            crate::audit::purge_before(tx, cutoff)
        })
        .await?;
    Ok(Purged {
        kind: "audit_log".into(),
        rows,
        keys_shredded: 0,
    })
}
