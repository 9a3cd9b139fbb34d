//! The readings store: raw readings and rollups, apart from the main store.
//!
//! For SQLite a separate database file (by default `<main file>.readings.db`) with its own writer
//! thread, so a flood of readings never queues behind (or in front of) the rest of Anxin's writes;
//! for PostgreSQL its own tables in the same database, through its own small pool.
//!
//! One batch is one transaction ([`ReadingsStore::commit_batch`]): each raw reading is inserted
//! keyed `(device_id, seq)` — a redelivered duplicate inserts nothing and is not evaluated again —
//! the per-minute and per-hour rollups of the new readings are merged in, each device's rule
//! state ([`DeviceState`]) is evaluated and written back, and the rule events it produced are
//! numbered and put in the outbox. State, readings and pending events therefore never disagree,
//! whatever crashes when. The pipeline then applies the outbox to the main store's alarms
//! (idempotently, by event number) and removes what it applied ([`ReadingsStore::drop_events`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anxin_domain::rules::{DeviceState, Event, Profile, Reading};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::monitor::NumberedEvent;
use crate::params;
use crate::value::{Row, Value};

const POOL_WAIT: Duration = Duration::from_secs(30);
/// The PostgreSQL schema of the readings tables.
const PG_SCHEMA: &str = "anxin_readings";

// Raw readings carry two indexes besides the table: the key `(device_id, seq)` (duplicates) and
// `at` (retention purge). Each new reading of a device lands on that device's page of every
// device-ordered index, so with many devices each index costs one more page written per reading
// (and per WAL frame); a `(device_id, at)` index was dropped for that reason — a device's raw
// readings are read through the key (its readings in order, filtered by time: devices send
// their sequence in time order), longer ranges through the rollups.
//
// On SQLite the rollups, rule states and outbox are clustered by their key (`WITHOUT ROWID`): a
// rowid table with a primary key is two b-trees (the rows by rowid, the key's index), so each
// upsert touched one more page than needed (measured: 31 → 28–29 µs of server CPU per message in
// `bench/mqtt/run`). Raw readings stay a rowid table: clustered by `(device_id, seq)`, each
// reading would land, whole, on its device's page, which split more and wrote 10.3 KB per
// message instead of 6.5 (measured, slower). Files made before (`user_version` 0) are converted
// when opened ([`SQLITE_CLUSTER`]).
const SCHEMA_SQLITE: &str = "
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
DROP INDEX IF EXISTS readings_device_at;
CREATE INDEX IF NOT EXISTS readings_at ON readings (at);
CREATE TABLE IF NOT EXISTS reading_rollups (
    device_id TEXT NOT NULL,
    step TEXT NOT NULL,
    bucket TEXT NOT NULL,
    metric TEXT NOT NULL,
    vmin REAL NOT NULL,
    vmax REAL NOT NULL,
    vsum REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (device_id, step, bucket, metric)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_rule_state (
    device_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    event_no INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_event_outbox (
    device_id TEXT NOT NULL,
    event_no INTEGER NOT NULL,
    event TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (device_id, event_no)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// A readings file of `user_version` 0 (rowid tables) rewritten as the clustered tables of
/// [`SCHEMA_SQLITE`], rows kept, in one transaction: a failure leaves the file as it was.
const SQLITE_CLUSTER: &str = "
BEGIN IMMEDIATE;
ALTER TABLE reading_rollups RENAME TO reading_rollups_v0;
ALTER TABLE device_rule_state RENAME TO device_rule_state_v0;
ALTER TABLE rule_event_outbox RENAME TO rule_event_outbox_v0;
{SCHEMA}
INSERT INTO reading_rollups SELECT device_id, step, bucket, metric, vmin, vmax, vsum, n
    FROM reading_rollups_v0;
INSERT INTO device_rule_state SELECT device_id, state, event_no, updated_at FROM device_rule_state_v0;
INSERT INTO rule_event_outbox SELECT device_id, event_no, event, created_at FROM rule_event_outbox_v0;
DROP TABLE reading_rollups_v0;
DROP TABLE device_rule_state_v0;
DROP TABLE rule_event_outbox_v0;
COMMIT;
";

/// The readings file's schema on the writer connection: converted from rowid tables if it was
/// made before, else created if new.
fn migrate_sqlite(c: &mut dyn Conn) -> Result<()> {
    let version = c.query_i64("PRAGMA user_version", &[])?;
    let existing = c.query_i64(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'readings'",
        &[],
    )?;
    if version < 1 && existing > 0 {
        let sql = SQLITE_CLUSTER.replace("{SCHEMA}", SCHEMA_SQLITE);
        if let Err(e) = c.batch(&sql) {
            let _ = c.batch("ROLLBACK");
            return Err(e);
        }
        tracing::info!("readings store converted to clustered tables");
    }
    c.batch(SCHEMA_SQLITE)
}

const SCHEMA_PG: &str = "
CREATE TABLE IF NOT EXISTS readings (
    device_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    vals JSONB NOT NULL,
    PRIMARY KEY (device_id, seq)
);
DROP INDEX IF EXISTS readings_device_at;
CREATE INDEX IF NOT EXISTS readings_at ON readings (at);
CREATE TABLE IF NOT EXISTS reading_rollups (
    device_id UUID NOT NULL,
    step TEXT NOT NULL,
    bucket TIMESTAMPTZ NOT NULL,
    metric TEXT NOT NULL,
    vmin DOUBLE PRECISION NOT NULL,
    vmax DOUBLE PRECISION NOT NULL,
    vsum DOUBLE PRECISION NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (device_id, step, bucket, metric)
);
CREATE TABLE IF NOT EXISTS device_rule_state (
    device_id UUID PRIMARY KEY,
    state JSONB NOT NULL,
    event_no BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_event_outbox (
    device_id UUID NOT NULL,
    event_no BIGINT NOT NULL,
    event JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, event_no)
);
";

enum Engine {
    Sqlite(crate::sqlite::SqliteEngine),
    Postgres(crate::pg::PgEngine),
}

/// The readings store. Cheap to clone.
#[derive(Clone)]
pub struct ReadingsStore {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for ReadingsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.engine {
            Engine::Sqlite(e) => write!(f, "ReadingsStore(sqlite {})", e.path.display()),
            Engine::Postgres(_) => f.write_str("ReadingsStore(postgres)"),
        }
    }
}

/// The default file of a SQLite main store's readings: `<main>.readings.db`.
pub fn default_sqlite_path(main: &Path) -> PathBuf {
    let mut s = main.as_os_str().to_owned();
    s.push(".readings.db");
    PathBuf::from(s)
}

/// One reading as the pipeline hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReading {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub values: Vec<(String, f64)>,
}

/// A device's readings of one batch, with its compiled profile (none: stored, not evaluated).
#[derive(Debug, Clone)]
pub struct DeviceBatch {
    pub device_id: Uuid,
    pub profile: Option<Arc<Profile>>,
    pub readings: Vec<NewReading>,
}

/// What a batch did, per device: which readings were new (not duplicates) and the rule events
/// they produced, numbered.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Per device, in the order given: for each reading, whether it was new.
    pub fresh: Vec<Vec<bool>>,
    pub events: Vec<(Uuid, Vec<NumberedEvent>)>,
}

/// A stored reading.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RawReading {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub values: serde_json::Value,
}

/// One rollup bucket of one metric.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rollup {
    pub bucket: DateTime<Utc>,
    pub metric: String,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub count: i64,
}

/// Rollup widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Minute,
    Hour,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Minute => "minute",
            Step::Hour => "hour",
        }
    }
    fn width(self) -> TimeDelta {
        match self {
            Step::Minute => TimeDelta::minutes(1),
            Step::Hour => TimeDelta::hours(1),
        }
    }
}

fn json_col(r: &Row, col: &str) -> Result<serde_json::Value> {
    match r.raw(col)? {
        Value::Text(s) => {
            serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("column {col}: {e}")))
        }
        _ => r.get(col),
    }
}

impl ReadingsStore {
    /// A separate SQLite file.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        let e = crate::sqlite::SqliteEngine::open(
            path,
            |_| {},
            // On the writer connection: the schema, and a checkpoint every 8,000 WAL pages
            // instead of 1,000 — the hot pages (rule states, rollups, each device's last index
            // page) are written back to the file once per checkpoint however often they changed,
            // and the checkpoints stall the commits less often. Durability is unchanged: every
            // commit's WAL frames are synced before it returns (`synchronous=FULL`).
            |c| {
                migrate_sqlite(c)?;
                c.batch("PRAGMA wal_autocheckpoint=8000;")
            },
        )?;
        Ok(Self {
            engine: Arc::new(Engine::Sqlite(e)),
        })
    }

    /// Own tables in the PostgreSQL database at `url` (schema `anxin_readings`, so backups of
    /// the main store do not carry them), through a pool of `max` connections.
    pub fn open_postgres(url: &str, max: usize) -> Result<Self> {
        {
            let setup = crate::pg::PgEngine::open(url, 1)?;
            let mut entry = setup.pool.get(POOL_WAIT)?;
            let crate::pg::PgEntry { client, stmts } = &mut *entry;
            let mut c = crate::pg::PgConn { client, stmts };
            // Several servers may start at once: serialise the schema set-up.
            c.batch("SELECT pg_advisory_lock(7007007)")?;
            let r = c.batch(&format!(
                "CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}; SET search_path TO {PG_SCHEMA}; {SCHEMA_PG}"
            ));
            c.batch("SELECT pg_advisory_unlock(7007007)")?;
            r?;
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let e = crate::pg::PgEngine::open(
            &format!("{url}{sep}options=-c%20search_path%3D{PG_SCHEMA}"),
            max,
        )?;
        Ok(Self {
            engine: Arc::new(Engine::Postgres(e)),
        })
    }

    /// The SQLite file, when this is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match &*self.engine {
            Engine::Sqlite(e) => Some(&e.path),
            Engine::Postgres(_) => None,
        }
    }

    /// Run `f` on a reader connection, blocking.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
        match &*self.engine {
            Engine::Sqlite(e) => {
                let c = e.readers.get(POOL_WAIT)?;
                f(&mut crate::sqlite::SqliteConn(&c))
            }
            Engine::Postgres(e) => {
                let mut entry = e.pool.get(POOL_WAIT)?;
                let crate::pg::PgEntry { client, stmts } = &mut *entry;
                let r = f(&mut crate::pg::PgConn { client, stmts });
                if entry.client.is_closed() {
                    entry.discard();
                }
                r
            }
        }
    }

    /// Run `f` as one transaction, blocking until it committed.
    pub fn write_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match &*self.engine {
            Engine::Sqlite(e) => {
                let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<Result<T>>(1);
                let job: crate::sqlite::WriteJob = Box::new(move |conn| match f(conn) {
                    Ok(v) => crate::sqlite::JobOutcome {
                        ok: true,
                        events: Vec::new(),
                        finish: Box::new(move |r| {
                            let _ = done_tx.send(r.map(|()| v));
                        }),
                    },
                    Err(err) => crate::sqlite::JobOutcome {
                        ok: false,
                        events: Vec::new(),
                        finish: Box::new(move |_| {
                            let _ = done_tx.send(Err(err));
                        }),
                    },
                });
                e.writer
                    .send(job)
                    .map_err(|_| StoreError::Unavailable("readings writer stopped".into()))?;
                done_rx
                    .recv()
                    .map_err(|_| StoreError::Unavailable("readings write aborted".into()))?
            }
            Engine::Postgres(e) => {
                let mut entry = e.pool.get(POOL_WAIT)?;
                let result = (|| -> Result<T> {
                    let crate::pg::PgEntry { client, stmts } = &mut *entry;
                    let mut t = client.transaction()?;
                    let v = {
                        let mut c = crate::pg::PgConn {
                            client: &mut t,
                            stmts,
                        };
                        f(&mut c)?
                    };
                    t.commit()?;
                    Ok(v)
                })();
                if entry.client.is_closed() {
                    entry.discard();
                }
                result
            }
        }
    }

    /// Store a batch of readings and evaluate the new ones, in one transaction (see the module
    /// documentation).
    pub fn commit_batch(
        &self,
        batch: Vec<DeviceBatch>,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        self.commit_batch_after(Vec::new(), batch, now)
    }

    /// [`Self::commit_batch`], first forgetting outbox events already applied to alarms
    /// (`(device, up to event number)`): saves the pipeline a commit of its own for that.
    pub fn commit_batch_after(
        &self,
        applied: Vec<(Uuid, i64)>,
        batch: Vec<DeviceBatch>,
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        self.write_blocking(move |c| {
            drop_events_in(c, &applied)?;
            commit_batch_in(c, &batch, now)
        })
    }

    /// Time passes: tick every given device's rules at `now`, in one transaction. Only devices
    /// that already have state are ticked (a device that never spoke is not silent).
    pub fn tick(
        &self,
        devices: Vec<(Uuid, Arc<Profile>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Vec<NumberedEvent>)>> {
        self.write_blocking(move |c| {
            lock_devices(c, devices.iter().map(|(id, _)| *id).collect())?;
            let mut out = Vec::new();
            for (id, profile) in &devices {
                let Some((mut state, mut no)) = load_state(c, *id)? else {
                    continue;
                };
                let before = state.clone();
                let mut evs = Vec::new();
                profile.tick(&mut state, now, &mut evs);
                if evs.is_empty() && state == before {
                    continue;
                }
                let numbered = number(&mut no, evs);
                save_state(c, *id, &state, no, now)?;
                put_outbox(c, *id, &numbered, now)?;
                if !numbered.is_empty() {
                    out.push((*id, numbered));
                }
            }
            Ok(out)
        })
    }

    /// Rule events not yet applied to alarms (left by a crash), per device in order.
    pub fn pending_events(&self) -> Result<Vec<(Uuid, Vec<NumberedEvent>)>> {
        self.read_blocking(|c| {
            let rows = c.query(
                "SELECT device_id, event_no, event FROM rule_event_outbox ORDER BY device_id, event_no",
                &[],
            )?;
            let mut out: Vec<(Uuid, Vec<NumberedEvent>)> = Vec::new();
            for r in rows {
                let d: Uuid = r.get("device_id")?;
                let no: i64 = r.get("event_no")?;
                let event: Event = serde_json::from_value(json_col(&r, "event")?)
                    .map_err(|e| StoreError::Backend(format!("outbox event: {e}")))?;
                match out.last_mut() {
                    Some((last, v)) if *last == d => v.push(NumberedEvent { no, event }),
                    _ => out.push((d, vec![NumberedEvent { no, event }])),
                }
            }
            Ok(out)
        })
    }

    /// Forget a device's outbox events up to `upto` (they are applied).
    pub fn drop_events(&self, done: Vec<(Uuid, i64)>) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        self.write_blocking(move |c| drop_events_in(c, &done))
    }

    /// A device's rule state as stored (tests, diagnostics).
    pub fn state(&self, device: Uuid) -> Result<Option<DeviceState>> {
        self.read_blocking(|c| Ok(load_state(c, device)?.map(|(s, _)| s)))
    }

    /// Raw readings of a device in `[from, to)`, oldest first, at most `limit`.
    pub fn raw(
        &self,
        device: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RawReading>> {
        self.read_blocking(|c| {
            c.query(
                "SELECT seq, at, vals FROM readings WHERE device_id = $1 AND at >= $2 AND at < $3 \
                 ORDER BY at, seq LIMIT $4",
                &params![device, from, to, limit],
            )?
            .iter()
            .map(|r| {
                Ok(RawReading {
                    seq: r.get("seq")?,
                    at: r.get("at")?,
                    values: json_col(r, "vals")?,
                })
            })
            .collect()
        })
    }

    /// Rollups of a device in `[from, to)`, by bucket then metric.
    pub fn rollups(
        &self,
        device: Uuid,
        step: Step,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Rollup>> {
        self.read_blocking(|c| {
            c.query(
                "SELECT bucket, metric, vmin, vmax, vsum, n FROM reading_rollups \
                 WHERE device_id = $1 AND step = $2 AND bucket >= $3 AND bucket < $4 \
                 ORDER BY bucket, metric LIMIT $5",
                &params![device, step.as_str(), from, to, limit],
            )?
            .iter()
            .map(|r| {
                let n: i64 = r.get("n")?;
                let sum: f64 = r.get("vsum")?;
                Ok(Rollup {
                    bucket: r.get("bucket")?,
                    metric: r.get("metric")?,
                    min: r.get("vmin")?,
                    max: r.get("vmax")?,
                    avg: if n > 0 { sum / n as f64 } else { 0.0 },
                    count: n,
                })
            })
            .collect()
        })
    }

    /// Delete raw readings and minute rollups older than `before` (hour rollups stay).
    pub fn purge(&self, before: DateTime<Utc>) -> Result<u64> {
        self.write_blocking(move |c| {
            let n = c.execute("DELETE FROM readings WHERE at < $1", &params![before])?;
            c.execute(
                "DELETE FROM reading_rollups WHERE step = 'minute' AND bucket < $1",
                &params![before],
            )?;
            Ok(n)
        })
    }

    /// How many raw readings are stored (tests, diagnostics).
    pub fn count(&self, device: Option<Uuid>) -> Result<i64> {
        self.read_blocking(|c| match device {
            Some(d) => c.query_i64(
                "SELECT count(*) FROM readings WHERE device_id = $1",
                &params![d],
            ),
            None => c.query_i64("SELECT count(*) FROM readings", &[]),
        })
    }
}

fn drop_events_in(c: &mut dyn Conn, done: &[(Uuid, i64)]) -> Result<()> {
    for (d, upto) in done {
        c.execute(
            "DELETE FROM rule_event_outbox WHERE device_id = $1 AND event_no <= $2",
            &params![*d, *upto],
        )?;
    }
    Ok(())
}

fn load_state(c: &mut dyn Conn, device: Uuid) -> Result<Option<(DeviceState, i64)>> {
    let Some(r) = c.query_one(
        "SELECT state, event_no FROM device_rule_state WHERE device_id = $1",
        &params![device],
    )?
    else {
        return Ok(None);
    };
    let state: DeviceState = serde_json::from_value(json_col(&r, "state")?).unwrap_or_else(|e| {
        // A state this build cannot read (an older shape): start afresh rather than stop.
        tracing::warn!(device = %device, error = %e, "unreadable rule state; starting afresh");
        DeviceState::default()
    });
    Ok(Some((state, r.get("event_no")?)))
}

fn save_state(
    c: &mut dyn Conn,
    device: Uuid,
    state: &DeviceState,
    event_no: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let json =
        serde_json::to_value(state).map_err(|e| StoreError::Backend(format!("rule state: {e}")))?;
    c.execute(
        "INSERT INTO device_rule_state (device_id, state, event_no, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, \
         event_no = excluded.event_no, updated_at = excluded.updated_at",
        &params![device, json, event_no, now],
    )?;
    Ok(())
}

fn number(no: &mut i64, evs: Vec<Event>) -> Vec<NumberedEvent> {
    evs.into_iter()
        .map(|event| {
            *no += 1;
            NumberedEvent { no: *no, event }
        })
        .collect()
}

fn put_outbox(
    c: &mut dyn Conn,
    device: Uuid,
    evs: &[NumberedEvent],
    now: DateTime<Utc>,
) -> Result<()> {
    for e in evs {
        let json = serde_json::to_value(&e.event)
            .map_err(|e| StoreError::Backend(format!("rule event: {e}")))?;
        c.execute(
            "INSERT INTO rule_event_outbox (device_id, event_no, event, created_at) VALUES ($1, $2, $3, $4)",
            &params![device, e.no, json, now],
        )?;
    }
    Ok(())
}

#[derive(Default)]
struct Agg {
    min: f64,
    max: f64,
    sum: f64,
    n: i64,
}

/// PostgreSQL: take each device's transaction lock, in id order (no deadlock), so two servers
/// never evaluate the same device's state at once. SQLite has one writer anyway.
fn lock_devices(c: &mut dyn Conn, mut ids: Vec<Uuid>) -> Result<()> {
    if c.dialect() != Dialect::Postgres {
        return Ok(());
    }
    ids.sort();
    ids.dedup();
    for id in ids {
        let b = id.as_bytes();
        let key = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            ^ i64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        c.execute("SELECT pg_advisory_xact_lock($1)", &params![key])?;
    }
    Ok(())
}

/// Rows per multi-row statement, largest first. A batch is cut into these sizes, so the
/// statements' texts repeat (prepared once, then cached) however big the batch; 128 rows of at
/// most 8 columns stay far below both backends' parameter limits.
const CHUNKS: [usize; 4] = [128, 32, 8, 1];

/// `(start, len)` pieces of `0..n` in [`CHUNKS`] sizes.
fn chunked(n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    for size in CHUNKS {
        while n - i >= size {
            out.push((i, size));
            i += size;
        }
    }
    out
}

/// `head VALUES ($1, …, $cols), (…) … tail` for `rows` rows, with the dialect's own placeholders
/// (SQLite's `?N` directly: no rewriting of a long statement on every call).
fn values_sql(d: Dialect, head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 0..cols {
            if k > 0 {
                sql.push_str(", ");
            }
            push_placeholder(&mut sql, d, r * cols + k + 1);
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

fn push_placeholder(sql: &mut String, d: Dialect, n: usize) {
    sql.push(match d {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    });
    sql.push_str(&n.to_string());
}

/// `$1, $2, …, $n` (SQLite: `?1, …`).
fn placeholders(d: Dialect, n: usize) -> String {
    let mut sql = String::with_capacity(n * 5);
    for i in 1..=n {
        if i > 1 {
            sql.push_str(", ");
        }
        push_placeholder(&mut sql, d, i);
    }
    sql
}

/// Rule states of the given devices (absent: never evaluated), a few statements for all.
fn load_states(c: &mut dyn Conn, ids: &[Uuid]) -> Result<HashMap<Uuid, (DeviceState, i64)>> {
    let mut out = HashMap::with_capacity(ids.len());
    for (start, len) in chunked(ids.len()) {
        let sql = format!(
            "SELECT device_id, state, event_no FROM device_rule_state WHERE device_id IN ({})",
            placeholders(c.dialect(), len)
        );
        let params: Vec<Value> = ids[start..start + len]
            .iter()
            .map(|d| Value::from(*d))
            .collect();
        for r in c.query(&sql, &params)? {
            let device: Uuid = r.get("device_id")?;
            out.insert(device, (state_of(&r, device)?, r.get("event_no")?));
        }
    }
    Ok(out)
}

/// The rule state of a `device_rule_state` row; one this build cannot read (an older shape)
/// starts afresh rather than stopping the device's evaluation.
fn state_of(r: &Row, device: Uuid) -> Result<DeviceState> {
    let parsed = match r.raw("state")? {
        Value::Text(s) => serde_json::from_str(s),
        _ => serde_json::from_value(json_col(r, "state")?),
    };
    Ok(parsed.unwrap_or_else(|e| {
        tracing::warn!(device = %device, error = %e, "unreadable rule state; starting afresh");
        DeviceState::default()
    }))
}

fn commit_batch_in(
    c: &mut dyn Conn,
    batch: &[DeviceBatch],
    now: DateTime<Utc>,
) -> Result<BatchOutcome> {
    lock_devices(c, batch.iter().map(|b| b.device_id).collect())?;
    let mut out = BatchOutcome::default();

    // 1. Raw readings, several rows per statement; RETURNING names the rows inserted, so a
    //    duplicate (already stored, or twice in this batch) is recognised and not evaluated.
    let all: Vec<(&DeviceBatch, &NewReading)> = batch
        .iter()
        .flat_map(|db| db.readings.iter().map(move |r| (db, r)))
        .collect();
    let mut inserted: HashSet<(Uuid, i64)> = HashSet::with_capacity(all.len());
    for (start, len) in chunked(all.len()) {
        let sql = values_sql(
            c.dialect(),
            "INSERT INTO readings (device_id, seq, at, received_at, vals)",
            5,
            len,
            " ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq",
        );
        let mut params = Vec::with_capacity(len * 5);
        for (db, r) in &all[start..start + len] {
            let vals: serde_json::Map<String, serde_json::Value> = r
                .values
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                .collect();
            params.extend([
                Value::from(db.device_id),
                Value::from(r.seq),
                Value::from(r.at),
                Value::from(now),
                Value::from(serde_json::Value::Object(vals)),
            ]);
        }
        for row in c.query(&sql, &params)? {
            inserted.insert((row.get("device_id")?, row.get("seq")?));
        }
    }

    // 2. Which readings are new (the first of a repeated (device, seq) only), the rollups of the
    //    new ones, and the devices whose rules must run.
    let mut rollups: BTreeMap<(Uuid, &'static str, DateTime<Utc>, &str), Agg> = BTreeMap::new();
    let mut evaluate: Vec<Uuid> = Vec::new();
    for db in batch {
        let mut fresh = Vec::with_capacity(db.readings.len());
        for r in &db.readings {
            let new = inserted.remove(&(db.device_id, r.seq));
            fresh.push(new);
            if !new {
                continue;
            }
            for (m, v) in &r.values {
                if !v.is_finite() {
                    continue;
                }
                for step in [Step::Minute, Step::Hour] {
                    let bucket = r.at.duration_trunc(step.width()).unwrap_or(r.at);
                    let a = rollups
                        .entry((db.device_id, step.as_str(), bucket, m.as_str()))
                        .or_insert(Agg {
                            min: f64::INFINITY,
                            max: f64::NEG_INFINITY,
                            sum: 0.0,
                            n: 0,
                        });
                    a.min = a.min.min(*v);
                    a.max = a.max.max(*v);
                    a.sum += v;
                    a.n += 1;
                }
            }
        }
        if db.profile.is_some() && fresh.iter().any(|f| *f) {
            evaluate.push(db.device_id);
        }
        out.fresh.push(fresh);
    }

    // 3. Rules: every evaluated device's state read in a few statements, the new readings
    //    evaluated in order, the events numbered per device.
    let mut states = load_states(c, &evaluate)?;
    let mut dirty: Vec<(Uuid, DeviceState, i64)> = Vec::with_capacity(evaluate.len());
    let mut outbox: Vec<(Uuid, &NumberedEvent)> = Vec::new();
    for (db, fresh) in batch.iter().zip(&out.fresh) {
        let Some(p) = &db.profile else { continue };
        if !fresh.iter().any(|f| *f) {
            continue;
        }
        let (mut state, mut no) = states.remove(&db.device_id).unwrap_or_default();
        let mut events = Vec::new();
        for (r, new) in db.readings.iter().zip(fresh) {
            if !new {
                continue;
            }
            let pairs: Vec<(&str, f64)> = r.values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let reading = Reading {
                at: r.at,
                values: &pairs,
            };
            let mut evs = Vec::new();
            p.evaluate(&mut state, &reading, &mut evs);
            events.extend(number(&mut no, evs));
        }
        dirty.push((db.device_id, state, no));
        if !events.is_empty() {
            out.events.push((db.device_id, events));
        }
    }
    for (d, evs) in &out.events {
        outbox.extend(evs.iter().map(|e| (*d, e)));
    }

    // 4. The events into the outbox, the states back, the rollups merged: a few statements each.
    for (start, len) in chunked(outbox.len()) {
        let sql = values_sql(
            c.dialect(),
            "INSERT INTO rule_event_outbox (device_id, event_no, event, created_at)",
            4,
            len,
            "",
        );
        let mut params = Vec::with_capacity(len * 4);
        for (d, e) in &outbox[start..start + len] {
            let json = serde_json::to_value(&e.event)
                .map_err(|e| StoreError::Backend(format!("rule event: {e}")))?;
            params.extend([
                Value::from(*d),
                Value::from(e.no),
                Value::from(json),
                Value::from(now),
            ]);
        }
        c.execute(&sql, &params)?;
    }
    for (start, len) in chunked(dirty.len()) {
        let sql = values_sql(
            c.dialect(),
            "INSERT INTO device_rule_state (device_id, state, event_no, updated_at)",
            4,
            len,
            " ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, \
             event_no = excluded.event_no, updated_at = excluded.updated_at",
        );
        let mut params = Vec::with_capacity(len * 4);
        for (d, state, no) in &dirty[start..start + len] {
            let json = serde_json::to_value(state)
                .map_err(|e| StoreError::Backend(format!("rule state: {e}")))?;
            params.extend([
                Value::from(*d),
                Value::from(json),
                Value::from(*no),
                Value::from(now),
            ]);
        }
        c.execute(&sql, &params)?;
    }
    let merge = match c.dialect() {
        Dialect::Sqlite => {
            " ON CONFLICT (device_id, step, bucket, metric) \
             DO UPDATE SET vmin = min(reading_rollups.vmin, excluded.vmin), \
             vmax = max(reading_rollups.vmax, excluded.vmax), \
             vsum = reading_rollups.vsum + excluded.vsum, n = reading_rollups.n + excluded.n"
        }
        Dialect::Postgres => {
            " ON CONFLICT (device_id, step, bucket, metric) \
             DO UPDATE SET vmin = LEAST(reading_rollups.vmin, excluded.vmin), \
             vmax = GREATEST(reading_rollups.vmax, excluded.vmax), \
             vsum = reading_rollups.vsum + excluded.vsum, n = reading_rollups.n + excluded.n"
        }
    };
    let rollups: Vec<_> = rollups.into_iter().collect();
    for (start, len) in chunked(rollups.len()) {
        let sql = values_sql(
            c.dialect(),
            "INSERT INTO reading_rollups (device_id, step, bucket, metric, vmin, vmax, vsum, n)",
            8,
            len,
            merge,
        );
        let mut params = Vec::with_capacity(len * 8);
        for ((d, step, bucket, metric), a) in &rollups[start..start + len] {
            params.extend([
                Value::from(*d),
                Value::from(*step),
                Value::from(*bucket),
                Value::from(*metric),
                Value::from(a.min),
                Value::from(a.max),
                Value::from(a.sum),
                Value::from(a.n),
            ]);
        }
        c.execute(&sql, &params)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A readings file made by a build before the tables were clustered keeps its rows, and
    /// comes out with the rollups, states and outbox `WITHOUT ROWID` and `user_version` 1;
    /// opening it again changes nothing.
    #[test]
    fn a_rowid_readings_file_is_converted_with_its_rows() {
        let dir = std::env::temp_dir().join(format!(
            "anxin-readings-v0-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.db");
        let device = Uuid::from_u128(7);
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            let v0 = SCHEMA_SQLITE
                .replace(" WITHOUT ROWID", "")
                .replace("PRAGMA user_version = 1;", "");
            c.execute_batch(&v0).unwrap();
            c.execute_batch(&format!(
                "INSERT INTO readings VALUES ('{device}', 1, '2026-12-04T00:00:00Z', \
                 '2026-12-04T00:00:01Z', '{{\"level\":3.5}}');
                 INSERT INTO reading_rollups VALUES ('{device}', 'minute', '2026-12-04T00:00:00Z', \
                 'level', 3.5, 3.5, 3.5, 1);
                 INSERT INTO device_rule_state VALUES ('{device}', '{{}}', 4, '2026-12-04T00:00:01Z');
                 INSERT INTO rule_event_outbox VALUES ('{device}', 4, '{{}}', '2026-12-04T00:00:01Z');"
            ))
            .unwrap();
            let rowid: i64 = c
                .query_row("SELECT count(*) FROM readings WHERE rowid > 0", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(rowid, 1, "the old file really has rowid tables");
        }
        for _ in 0..2 {
            let store = ReadingsStore::open_sqlite(&path).unwrap();
            assert_eq!(store.count(Some(device)).unwrap(), 1);
            let (rollups, states, outbox, version, rowid_tables) = store
                .read_blocking(|c| {
                    Ok((
                        c.query_i64("SELECT count(*) FROM reading_rollups", &[])?,
                        c.query_i64("SELECT event_no FROM device_rule_state", &[])?,
                        c.query_i64("SELECT count(*) FROM rule_event_outbox", &[])?,
                        c.query_i64("PRAGMA user_version", &[])?,
                        c.query_i64(
                            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
                             AND name <> 'readings' AND sql NOT LIKE '%WITHOUT ROWID%'",
                            &[],
                        )?,
                    ))
                })
                .unwrap();
            assert_eq!((rollups, states, outbox), (1, 4, 1));
            assert_eq!(version, 1);
            assert_eq!(
                rowid_tables, 0,
                "rollups, states and outbox clustered by their key"
            );
            drop(store);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
