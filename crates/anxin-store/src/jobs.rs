//! Durable jobs: a table of work to do, taken under a lease so that several server processes
//! share it and each job runs once, and a job whose worker died is taken over when its lease
//! runs out.
//!
//! Life of a job: `queued` (waiting for `run_at`) → `running` (claimed: `lease_owner` holds it
//! until `lease_until`) → `done`, or back to `queued` with a later `run_at` after a failure, or
//! `failed` once `max_attempts` claims have failed. A claim counts as an attempt, so a job that
//! crashes its worker every time also ends `failed` instead of looping forever.
//!
//! Claiming is atomic on both backends: PostgreSQL locks the chosen row with `FOR UPDATE SKIP
//! LOCKED` (concurrent claimers skip it instead of waiting), SQLite's single writer makes the
//! select-then-update inside one write atomic. Jobs live in an operational table: they are not
//! records and do not go through the change log.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::conn::Dialect;
use crate::error::{Result, StoreError};
use crate::params;
use crate::tx::{Tx, WriteCtx};
use crate::value::Row;
use crate::Store;

/// Claims a job may take before it is marked failed, unless the enqueuer says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
/// First retry delay; each further failure doubles it, up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::seconds(10);
pub const MAX_BACKOFF: Duration = Duration::hours(1);
/// `last_error` is cut to this many characters: it is for operators, not a log dump.
const ERROR_MAX_CHARS: usize = 500;

/// A job as claimed by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: String,
    pub lease_until: DateTime<Utc>,
    pub unique_key: Option<String>,
}

impl Job {
    fn from_row(r: &Row) -> Result<Job> {
        let payload: String = r.get("payload")?;
        Ok(Job {
            id: r.get("id")?,
            kind: r.get("kind")?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| StoreError::Backend(format!("job payload: {e}")))?,
            run_at: r.get("run_at")?,
            attempts: r.get("attempts")?,
            max_attempts: r.get("max_attempts")?,
            lease_owner: r.get::<Option<String>>("lease_owner")?.unwrap_or_default(),
            lease_until: r
                .get::<Option<DateTime<Utc>>>("lease_until")?
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            unique_key: r.get("unique_key")?,
        })
    }
}

/// A job to add, for callers that need more than [`enqueue`] offers.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    /// Names one occurrence (`retention.purge:2026-11-23`): a second job with the same key is
    /// not added, whoever tries, for as long as the first one's row is kept.
    pub unique_key: Option<&'a str>,
    pub max_attempts: i64,
}

/// Add a job inside the caller's write. Returns its id, or `None` when a job with the same
/// `unique_key` exists already.
pub fn enqueue(
    tx: &mut Tx,
    kind: &str,
    payload: &serde_json::Value,
    run_at: DateTime<Utc>,
    unique_key: Option<&str>,
) -> Result<Option<Uuid>> {
    enqueue_job(
        tx,
        &NewJob {
            kind,
            payload: payload.clone(),
            run_at,
            unique_key,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        },
    )
}

pub fn enqueue_job(tx: &mut Tx, job: &NewJob<'_>) -> Result<Option<Uuid>> {
    if job.max_attempts < 1 {
        return Err(StoreError::invalid("job.max_attempts", "max_attempts"));
    }
    let id = tx.new_id();
    let now = tx.now();
    // ON CONFLICT instead of catching the unique violation: on PostgreSQL a violation would
    // abort the caller's whole transaction.
    let n = tx.execute_unlogged(
        "INSERT INTO jobs (id, kind, payload, run_at, status, attempts, max_attempts, unique_key, \
         created_at) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7) ON CONFLICT (unique_key) DO NOTHING",
        &params![
            id,
            job.kind,
            job.payload.to_string(),
            job.run_at,
            job.max_attempts,
            job.unique_key,
            now
        ],
    )?;
    Ok((n == 1).then_some(id))
}

/// Take one due job for `owner` until `now + lease`: a queued job whose time has come, or a
/// running one whose lease has run out (its worker is presumed dead). Oldest `run_at` first.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<Job>> {
    let owner = owner.to_owned();
    store
        .write(WriteCtx::system("jobs.claim"), move |tx| {
            claim_in(tx, &owner, now, lease)
        })
        .await
}

fn claim_in(tx: &mut Tx, owner: &str, now: DateTime<Utc>, lease: Duration) -> Result<Option<Job>> {
    // A job whose lease ran out after its last allowed attempt is not taken over again.
    tx.execute_unlogged(
        "UPDATE jobs SET status = 'failed', finished_at = $1, lease_owner = NULL, lease_until = NULL, \
         last_error = coalesce(last_error, 'lease expired: the worker stopped without finishing') \
         WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts",
        &params![now],
    )?;
    let due = |n: usize| {
        format!(
            "(status = 'queued' AND run_at <= ${n}) OR (status = 'running' AND lease_until < ${n})"
        )
    };
    let until = now + lease;
    let row = match tx.dialect() {
        Dialect::Postgres => tx.query_one(
            &format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, \
                 lease_until = $2 WHERE id = (SELECT id FROM jobs WHERE {} ORDER BY run_at, id \
                 LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
                due(3)
            ),
            &params![owner, until, now],
        )?,
        Dialect::Sqlite => {
            let Some(r) = tx.query_one(
                &format!(
                    "SELECT id FROM jobs WHERE {} ORDER BY run_at, id LIMIT 1",
                    due(1)
                ),
                &params![now],
            )?
            else {
                return Ok(None);
            };
            let id: Uuid = r.get("id")?;
            tx.query_one(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, \
                 lease_until = $2 WHERE id = $3 RETURNING *",
                &params![owner, until, id],
            )?
        }
    };
    row.as_ref().map(Job::from_row).transpose()
}

/// Mark a job done. `false` when `owner` no longer held it (its lease ran out and another
/// worker took it over): the caller's result is then not recorded.
pub async fn complete(store: &Store, id: Uuid, owner: &str, now: DateTime<Utc>) -> Result<bool> {
    let owner = owner.to_owned();
    store
        .write(WriteCtx::system("jobs.complete"), move |tx| {
            let n = tx.execute_unlogged(
                "UPDATE jobs SET status = 'done', finished_at = $1, lease_owner = NULL, lease_until = NULL, \
                 last_error = NULL WHERE id = $2 AND status = 'running' AND lease_owner = $3",
                &params![now, id, owner],
            )?;
            Ok(n == 1)
        })
        .await
}

/// Inside the caller's write: record the progress of a running job that `owner` still holds
/// (its payload: where a handler that runs again should go on). `false` when the lease was lost,
/// and the caller should then roll its write back: whatever it did belongs to the new holder.
pub fn set_payload(
    tx: &mut Tx,
    id: Uuid,
    owner: &str,
    payload: &serde_json::Value,
) -> Result<bool> {
    let n = tx.execute_unlogged(
        "UPDATE jobs SET payload = $1 WHERE id = $2 AND status = 'running' AND lease_owner = $3",
        &params![payload.to_string(), id, owner],
    )?;
    Ok(n == 1)
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again for this time.
    Retry(DateTime<Utc>),
    /// Out of attempts: failed for good.
    Failed,
    /// The caller no longer held the job.
    LeaseLost,
}

/// The delay before retry number `attempts` (1 after the first failure): doubling from
/// [`BASE_BACKOFF`], capped at [`MAX_BACKOFF`].
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let secs = BASE_BACKOFF.num_seconds().saturating_mul(1_i64 << exp);
    Duration::seconds(secs).min(MAX_BACKOFF)
}

/// Record a failure: retry after [`backoff`] while attempts remain, else mark the job failed.
/// `error` is kept for operators: it must not carry personal data.
pub async fn fail(
    store: &Store,
    id: Uuid,
    owner: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<FailOutcome> {
    let owner = owner.to_owned();
    let error: String = error.chars().take(ERROR_MAX_CHARS).collect();
    store
        .write(WriteCtx::system("jobs.fail"), move |tx| {
            let Some(r) = tx.query_one(
                "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND status = 'running' AND lease_owner = $2",
                &params![id, owner.clone()],
            )?
            else {
                return Ok(FailOutcome::LeaseLost);
            };
            let attempts: i64 = r.get("attempts")?;
            let max: i64 = r.get("max_attempts")?;
            if attempts >= max {
                tx.execute_unlogged(
                    "UPDATE jobs SET status = 'failed', finished_at = $1, lease_owner = NULL, \
                     lease_until = NULL, last_error = $2 WHERE id = $3",
                    &params![now, error, id],
                )?;
                Ok(FailOutcome::Failed)
            } else {
                let at = now + backoff(attempts);
                tx.execute_unlogged(
                    "UPDATE jobs SET status = 'queued', run_at = $1, lease_owner = NULL, lease_until = NULL, \
                     last_error = $2 WHERE id = $3",
                    &params![at, error, id],
                )?;
                Ok(FailOutcome::Retry(at))
            }
        })
        .await
}

/// Push a running job's lease out to `until` (a long job's heartbeat). `false` when `owner` no
/// longer holds it.
pub async fn extend(store: &Store, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool> {
    let owner = owner.to_owned();
    store
        .write(WriteCtx::system("jobs.extend"), move |tx| {
            let n = tx.execute_unlogged(
                "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND status = 'running' AND lease_owner = $3",
                &params![until, id, owner],
            )?;
            Ok(n == 1)
        })
        .await
}

/// A job's state, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    /// As enqueued, or as the handler last recorded its progress ([`set_payload`]).
    pub payload: serde_json::Value,
}

pub async fn state(store: &Store, id: Uuid) -> Result<Option<JobState>> {
    store
        .read(move |c, _| {
            c.query_one(
                "SELECT id, kind, status, attempts, run_at, last_error, unique_key, payload FROM jobs \
                 WHERE id = $1",
                &params![id],
            )?
            .map(|r| {
                Ok(JobState {
                    id: r.get("id")?,
                    kind: r.get("kind")?,
                    status: r.get("status")?,
                    attempts: r.get("attempts")?,
                    run_at: r.get("run_at")?,
                    last_error: r.get("last_error")?,
                    unique_key: r.get("unique_key")?,
                    payload: serde_json::from_str(&r.get::<String>("payload")?)
                        .map_err(|e| StoreError::Backend(format!("job payload: {e}")))?,
                })
            })
            .transpose()
        })
        .await
}

/// The next time a queued job becomes due, if any: lets an idle worker sleep until then.
pub async fn next_due(store: &Store) -> Result<Option<DateTime<Utc>>> {
    store
        .read(|c, _| {
            let r = c.query_one(
                "SELECT run_at FROM jobs WHERE status = 'queued' ORDER BY run_at LIMIT 1",
                &[],
            )?;
            r.map(|r| r.get("run_at")).transpose()
        })
        .await
}
