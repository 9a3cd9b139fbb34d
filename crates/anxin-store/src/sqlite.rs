//! SQLite backend: one writer thread with group commit, a pool of readers.
//!
//! SQLite allows one writer at a time. Instead of letting many connections race for the lock
//! (and fail with "database is locked" under an import or a reservation rush), every write is a
//! job sent to one thread. The thread drains whatever jobs are waiting, runs each inside its own
//! savepoint of one transaction and commits them together: one fsync for many writes. A job that
//! fails rolls back to its savepoint without touching the others. Callers are answered only after
//! the commit, so an acknowledged write is on disk (WAL, `synchronous=FULL`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::OpenFlags;

use crate::conn::{sqlite_placeholders, Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::pool::Pool;
use crate::value::{time_text, Row, Value};

/// How many queued writes one commit may carry.
const MAX_GROUP: usize = 512;

pub(crate) struct SqliteConn<'a>(pub &'a rusqlite::Connection);

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as V;
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Owned(V::Null),
            Value::Int(i) => ToSqlOutput::Owned(V::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Owned(V::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Bool(b) => ToSqlOutput::Owned(V::Integer(i64::from(*b))),
            Value::Uuid(u) => ToSqlOutput::Owned(V::Text(u.to_string())),
            Value::Time(t) => ToSqlOutput::Owned(V::Text(time_text(t))),
            Value::Date(d) => ToSqlOutput::Owned(V::Text(d.to_string())),
            Value::Json(j) => ToSqlOutput::Owned(V::Text(j.to_string())),
        })
    }
}

fn read_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let sql = sqlite_placeholders(sql);
        let mut stmt = self.0.prepare_cached(&sql)?;
        let cols: Arc<[String]> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let n = cols.len();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(Param)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(n);
            for i in 0..n {
                vals.push(read_value(r.get_ref(i)?));
            }
            out.push(Row::new(cols.clone(), vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let sql = sqlite_placeholders(sql);
        let mut stmt = self.0.prepare_cached(&sql)?;
        let n = stmt.execute(rusqlite::params_from_iter(params.iter().map(Param)))?;
        Ok(n as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }
}

fn open_conn(path: &Path, write: bool) -> Result<rusqlite::Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let c = rusqlite::Connection::open_with_flags(path, flags)?;
    c.busy_timeout(Duration::from_secs(10))?;
    // WAL lets readers run beside the writer; FULL makes each commit durable before we answer.
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32000;",
    )?;
    if write {
        // The one writer keeps the hot index pages of a large database (a million people: name
        // order, blind indexes, name grams, change log) in memory; with the default 32 MB, bulk
        // writes spent most of their time re-reading evicted pages. Readers share the OS cache.
        c.execute_batch("PRAGMA cache_size=-262144;")?;
    }
    c.set_prepared_statement_cache_capacity(128);
    Ok(c)
}

/// The outcome of one write job, reported back to the writer loop.
pub(crate) struct JobOutcome {
    pub ok: bool,
    pub events: Vec<crate::changelog::ChangeEvent>,
    /// Called once the group's commit has succeeded or failed.
    pub finish: Box<dyn FnOnce(Result<()>) + Send>,
}

pub(crate) type WriteJob = Box<dyn FnOnce(&mut dyn Conn) -> JobOutcome + Send>;

// Writes that run alone (rush): `Store::write_alone` needs a transaction and a commit of its
// own — the reservation benchmark's naive side, one transaction per request — which the group
// commit below would otherwise share with whatever else is queued. A job sent with
// `send_alone` is never grouped: the writer commits the group before it, runs it as the only
// job of its transaction, then goes on.
pub(crate) struct Queued {
    job: WriteJob,
    alone: bool,
}

/// The writer thread's queue.
pub(crate) struct Writer(mpsc::SyncSender<Queued>);

impl Writer {
    /// Queue a write; it may share its transaction (group commit).
    pub fn send(&self, job: WriteJob) -> std::result::Result<(), ()> {
        self.0.send(Queued { job, alone: false }).map_err(|_| ())
    }
    /// Queue a write that gets a transaction and a commit of its own.
    pub fn send_alone(&self, job: WriteJob) -> std::result::Result<(), ()> {
        self.0.send(Queued { job, alone: true }).map_err(|_| ())
    }
}
// end of writes that run alone (rush)

pub(crate) struct SqliteEngine {
    pub path: PathBuf,
    pub writer: Writer,
    pub readers: Pool<rusqlite::Connection>,
}

impl SqliteEngine {
    /// Open (creating if needed) the database file and start its writer thread. `migrate` runs on
    /// the writer connection before any job is accepted.
    pub fn open(
        path: &Path,
        on_commit: impl Fn(Vec<crate::changelog::ChangeEvent>) + Send + 'static,
        migrate: impl FnOnce(&mut dyn Conn) -> Result<()>,
    ) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Backend(format!("create {}: {e}", dir.display())))?;
            }
        }
        let wconn = open_conn(path, true)?;
        migrate(&mut SqliteConn(&wconn))?;
        let (tx, rx) = mpsc::sync_channel::<Queued>(4096);
        std::thread::Builder::new()
            .name("anxin-sqlite-writer".into())
            .spawn(move || writer_loop(&wconn, &rx, &on_commit))
            .map_err(|e| StoreError::Backend(format!("spawn writer: {e}")))?;
        let rpath = path.to_path_buf();
        let readers = Pool::new(
            8,
            move || open_conn(&rpath, false),
            |_c: &mut rusqlite::Connection| true,
        );
        Ok(Self {
            path: path.to_path_buf(),
            writer: Writer(tx),
            readers,
        })
    }
}

fn writer_loop(
    conn: &rusqlite::Connection,
    rx: &mpsc::Receiver<Queued>,
    on_commit: &dyn Fn(Vec<crate::changelog::ChangeEvent>),
) {
    // A job that must run alone, taken off the queue while a group was being gathered.
    let mut carried: Option<Queued> = None;
    loop {
        let first = match carried.take() {
            Some(q) => q,
            None => match rx.recv() {
                Ok(q) => q,
                Err(_) => return,
            },
        };
        let alone = first.alone;
        let mut batch = vec![first.job];
        while !alone && batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(q) if q.alone => {
                    carried = Some(q);
                    break;
                }
                Ok(q) => batch.push(q.job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs unblocks their callers with "write aborted".
            tracing::error!(error = %e, group.size = size, "sqlite begin failed");
            drop(batch);
            continue;
        }
        let mut outcomes = Vec::with_capacity(size);
        if size == 1 {
            // Alone in its group, a write needs no savepoint: if it fails, rolling back the whole
            // transaction undoes exactly it. Savepoints are not free: inside one, every statement
            // keeps a statement journal, which made big writes (imports, the demo) slow down
            // row by row.
            for job in batch {
                let out = run_alone(conn, job);
                if !out.ok {
                    let _ = conn.execute_batch("ROLLBACK");
                    (out.finish)(Ok(()));
                    continue;
                }
                outcomes.push(out);
            }
            if outcomes.is_empty() {
                continue;
            }
        } else {
            for job in batch {
                outcomes.push(run_isolated(conn, job));
            }
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                tracing::trace!(group.size = size, "sqlite group committed");
                let mut events = Vec::new();
                for o in outcomes {
                    if o.ok {
                        events.extend(o.events);
                    }
                    (o.finish)(Ok(()));
                }
                if !events.is_empty() {
                    on_commit(events);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, group.size = size, "sqlite group commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                for o in outcomes {
                    (o.finish)(Err(StoreError::Backend(format!("commit: {msg}"))));
                }
            }
        }
    }
}

/// Run the only job of a group directly in the transaction; the caller rolls back on failure.
fn run_alone(conn: &rusqlite::Connection, job: WriteJob) -> JobOutcome {
    let mut c = SqliteConn(conn);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c))) {
        Ok(o) => o,
        Err(_) => {
            tracing::error!("write job panicked; rolled back");
            JobOutcome {
                ok: false,
                events: Vec::new(),
                finish: Box::new(|_| {}),
            }
        }
    }
}

/// Run one job inside its own savepoint; a failure or panic undoes only this job.
fn run_isolated(conn: &rusqlite::Connection, job: WriteJob) -> JobOutcome {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let msg = e.to_string();
        return JobOutcome {
            ok: false,
            events: Vec::new(),
            finish: Box::new(move |_| {
                drop(job);
                tracing::error!(error = %msg, "savepoint failed");
            }),
        };
    }
    let mut c = SqliteConn(conn);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c)));
    match outcome {
        Ok(o) if o.ok => {
            let _ = conn.execute_batch("RELEASE job");
            o
        }
        Ok(o) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            o
        }
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            tracing::error!("write job panicked; rolled back");
            JobOutcome {
                ok: false,
                events: Vec::new(),
                finish: Box::new(|_| {}),
            }
        }
    }
}

// Writes that run alone (rush): the writer never groups them.
#[cfg(test)]
mod alone_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    fn job(started: Option<mpsc::Sender<()>>, gate: Option<mpsc::Receiver<()>>) -> WriteJob {
        Box::new(move |_conn| {
            if let Some(s) = started {
                let _ = s.send(());
            }
            if let Some(g) = gate {
                let _ = g.recv();
            }
            JobOutcome {
                ok: true,
                events: vec![crate::changelog::ChangeEvent {
                    pos: 0,
                    kind: "test".into(),
                    record_id: uuid::Uuid::nil(),
                    op: crate::changelog::Op::Insert,
                    at: chrono::Utc::now(),
                    place: Default::default(),
                }],
                finish: Box::new(|_| {}),
            }
        })
    }

    #[test]
    fn alone_writes_get_a_commit_of_their_own() {
        let path = std::env::temp_dir().join(format!("anxin-alone-{}.db", uuid::Uuid::now_v7()));
        let groups = Arc::new(Mutex::new(Vec::new()));
        let seen = groups.clone();
        let e = SqliteEngine::open(
            &path,
            move |evs| seen.lock().unwrap().push(evs.len()),
            |_| Ok(()),
        )
        .unwrap();
        // Hold the writer inside a write while the others queue up.
        let (started_tx, started) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        e.writer.send(job(Some(started_tx), Some(gate))).unwrap();
        started.recv().unwrap();
        e.writer.send(job(None, None)).unwrap();
        e.writer.send(job(None, None)).unwrap();
        e.writer.send_alone(job(None, None)).unwrap();
        e.writer.send(job(None, None)).unwrap();
        e.writer.send(job(None, None)).unwrap();
        e.writer.send_alone(job(None, None)).unwrap();
        e.writer.send_alone(job(None, None)).unwrap();
        open.send(()).unwrap();
        for _ in 0..500 {
            if groups.lock().unwrap().iter().sum::<usize>() == 8 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*groups.lock().unwrap(), vec![1, 2, 1, 2, 1, 1]);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
