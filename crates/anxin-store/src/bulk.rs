//! The bulk-load path (people import, issue 3): the same records, data keys, name grams and
//! change-log entries as `Tx::insert`/`Tx::insert_many` write, with less work per row.
//!
//! - No `RETURNING`: a record's change-log image is built from the values written, in the
//!   table's own column order and in the form the backend gives back (so it is the image
//!   `Tx::insert` logs; the bulk tests compare the two).
//! - PostgreSQL: binary `COPY … FROM STDIN` for data keys, records and grams; change-log entries
//!   are staged by `COPY` in a temporary table and moved into `change_log` with one
//!   `INSERT … SELECT` just before commit, positions taken from the counter row only then (so the
//!   counter is locked for the length of a commit, as for every other write).
//! - SQLite: one prepared single-row statement per table (no statement parsing of large
//!   multi-row statements, no statement journal); the writer holds the only write lock, so the
//!   entries of each chunk are appended as they come ([`Tx::bulk_flush_log`]), positions from the
//!   counter row then: still gap-free and in commit order. When the import is at least as large
//!   as the `people` table already is, the secondary indexes of the tables it fills are dropped
//!   inside the transaction and built again (by sorting) just before commit: the write stays one
//!   transaction, readers (WAL) keep seeing the old snapshot with its indexes, and a failure rolls
//!   the drop back with everything else.
//!
//! Everything runs inside the caller's one write (`Store::write_alone`): all or nothing.

use std::collections::HashMap;
use std::sync::Arc;

use anxin_crypto::{DataKey, WrappedKey};

use crate::changelog::{ChangeEvent, Op};
use crate::conn::Dialect;
use crate::error::{Result, StoreError};
use crate::params;
use crate::tx::{logged, Tx};
use crate::value::{Row, Value};

/// Tables the people import fills whose secondary indexes SQLite may rebuild at the end.
const REBUILT_TABLES: &[&str] = &[
    "people",
    "memberships",
    "person_name_grams",
    "change_log",
    "data_keys",
];
/// PostgreSQL: where a bulk write stages its change-log entries until commit.
const STAGE: &str = "anxin_bulk_log";
/// SQLite: where a large bulk write stages name grams until commit.
const GRAMS: &str = "temp.anxin_bulk_grams";

#[derive(Default)]
pub(crate) struct Bulk {
    /// SQLite: `CREATE INDEX` statements of the indexes dropped by `bulk_begin`.
    dropped: Vec<String>,
    /// SQLite, with the indexes dropped: name grams wait in a temporary table and go into
    /// `person_name_grams` (whose key is its table) in key order at the end.
    staged_grams: bool,
    /// Events of the entries already appended (SQLite) or staged (PostgreSQL: positions are
    /// filled in at finish).
    events: Vec<ChangeEvent>,
    /// Column names of tables, in table order.
    columns: HashMap<String, Arc<[String]>>,
}

/// A value as the backend gives it back (what `Tx::insert` logs): SQLite returns booleans as
/// integers and JSON as text; UUIDs, times and dates come back as their canonical text, which is
/// what [`Value::to_json`] writes for them anyway.
fn stored(d: Dialect, v: &Value) -> Value {
    match (d, v) {
        (Dialect::Sqlite, Value::Bool(b)) => Value::Int(i64::from(*b)),
        (Dialect::Sqlite, Value::Json(j)) => Value::Text(j.to_string()),
        _ => v.clone(),
    }
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tx<'_> {
    /// Switch this write to the bulk path, for about `rows` new people. Call once, before the
    /// bulk inserts; the write's entries are then appended by [`Tx::bulk_flush_log`] and at the
    /// end as the bulk path does it.
    pub fn bulk_begin(&mut self, rows: usize) -> Result<()> {
        if self.bulk.is_some() {
            return Ok(());
        }
        let mut b = Bulk::default();
        match self.conn.dialect() {
            Dialect::Sqlite => {
                let have = self.conn.query_i64("SELECT count(*) FROM people", &[])?;
                if i64::try_from(rows).unwrap_or(i64::MAX) >= have.max(1) {
                    for t in REBUILT_TABLES {
                        let idx = self.conn.query(
                            "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
                             AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name",
                            &params![*t],
                        )?;
                        for r in idx {
                            let name: String = r.get("name")?;
                            let sql: String = r.get("sql")?;
                            self.conn.batch(&format!("DROP INDEX \"{name}\""))?;
                            b.dropped.push(sql);
                        }
                    }
                    self.conn.batch(&format!(
                        "CREATE TEMP TABLE {GRAMS} (gram TEXT NOT NULL, name TEXT NOT NULL, \
                         person_id TEXT NOT NULL, community_id TEXT NOT NULL)"
                    ))?;
                    b.staged_grams = true;
                }
            }
            Dialect::Postgres => {
                self.conn.batch(&format!(
                    "CREATE TEMP TABLE {STAGE} (ord BIGINT NOT NULL, id UUID NOT NULL, \
                     kind TEXT NOT NULL, record_id UUID NOT NULL, op TEXT NOT NULL, after JSONB, \
                     after_ct BYTEA, key_id UUID) ON COMMIT DROP"
                ))?;
            }
        }
        self.bulk = Some(Box::new(b));
        Ok(())
    }

    fn bulk_state(&mut self) -> Result<&mut Bulk> {
        self.bulk
            .as_deref_mut()
            .ok_or_else(|| StoreError::Backend("bulk write without bulk_begin".into()))
    }

    /// The columns of `table`, in the table's order.
    fn table_columns(&mut self, table: &str) -> Result<Arc<[String]>> {
        if let Some(c) = self.bulk_state()?.columns.get(table) {
            return Ok(c.clone());
        }
        let rows = match self.conn.dialect() {
            Dialect::Sqlite => self.conn.query(
                "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
                &params![table],
            )?,
            Dialect::Postgres => self.conn.query(
                "SELECT column_name::text AS name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &params![table],
            )?,
        };
        let cols: Arc<[String]> = rows
            .iter()
            .map(|r| r.get::<String>("name"))
            .collect::<Result<Vec<_>>>()?
            .into();
        self.bulk_state()?
            .columns
            .insert(table.to_owned(), cols.clone());
        Ok(cols)
    }

    /// Rows into an unlogged table the bulk path fills (data keys, name grams).
    fn bulk_rows(&mut self, table: &str, cols: &[&str], rows: &[Vec<Value>]) -> Result<()> {
        match self.conn.dialect() {
            Dialect::Sqlite => {
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    placeholders(cols.len())
                );
                for r in rows {
                    self.conn.execute(&sql, r)?;
                }
            }
            Dialect::Postgres => {
                self.conn.copy_in(table, cols, rows)?;
            }
        }
        Ok(())
    }

    /// [`Tx::add_data_keys`] on the bulk path.
    pub fn bulk_add_data_keys(&mut self, keys: Vec<(Arc<DataKey>, WrappedKey)>) -> Result<()> {
        let rows = self.data_key_rows(&keys);
        self.bulk_rows(
            "data_keys",
            &["id", "kek_id", "wrapped", "created_at"],
            &rows,
        )?;
        self.keep_keys(keys);
        Ok(())
    }

    /// Insert new records of a logged table on the bulk path: every column of the table must be
    /// given (`rows` hold the values of `cols`, in order). Each record gets the change-log entry
    /// [`Tx::insert`] would give it, and people their name grams. Returns how many were inserted.
    pub fn bulk_insert(
        &mut self,
        table: &str,
        cols: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<usize> {
        let kind = logged(table)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let d = self.conn.dialect();
        let table_cols = self.table_columns(table)?;
        if table_cols.len() != cols.len() {
            return Err(StoreError::Backend(format!(
                "bulk_insert {table}: {} columns given, the table has {}",
                cols.len(),
                table_cols.len()
            )));
        }
        let order: Vec<usize> = table_cols
            .iter()
            .map(|c| {
                cols.iter().position(|g| g == c).ok_or_else(|| {
                    StoreError::Backend(format!("bulk_insert {table}: column {c} not given"))
                })
            })
            .collect::<Result<_>>()?;
        if rows.iter().any(|r| r.len() != cols.len()) {
            return Err(StoreError::Backend(format!(
                "bulk_insert {table}: ragged row"
            )));
        }
        self.bulk_state()?;
        match d {
            Dialect::Sqlite => {
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    placeholders(cols.len())
                );
                for r in rows {
                    self.conn.execute(&sql, r)?;
                }
            }
            Dialect::Postgres => {
                self.conn.copy_in(table, cols, rows)?;
            }
        }
        for r in rows {
            let image = Row::new(
                table_cols.clone(),
                order.iter().map(|&i| stored(d, &r[i])).collect(),
            );
            self.log(kind, Op::Insert, &image)?;
        }
        if kind == "people" {
            self.bulk_grams(cols, rows)?;
        }
        if matches!(kind, "users" | "grants" | "api_tokens" | "people") {
            self.auth = true;
        }
        Ok(rows.len())
    }

    /// The name grams of new people rows (values of `cols`), in key order.
    fn bulk_grams(&mut self, cols: &[&str], rows: &[Vec<Value>]) -> Result<()> {
        let at = |c: &str| {
            cols.iter()
                .position(|g| *g == c)
                .ok_or_else(|| StoreError::Backend(format!("bulk people: no {c}")))
        };
        let (id, name, community) = (at("id")?, at("name")?, at("community_id")?);
        let mut grams: Vec<(String, String, Value, Value)> = Vec::with_capacity(rows.len() * 6);
        for r in rows {
            let Value::Text(n) = &r[name] else {
                return Err(StoreError::Backend("bulk people: name is not text".into()));
            };
            for g in crate::people::name_grams(n) {
                grams.push((g, n.clone(), r[id].clone(), r[community].clone()));
            }
        }
        let key = |v: &Value| match v {
            Value::Uuid(u) => *u,
            _ => uuid::Uuid::nil(),
        };
        grams.sort_unstable_by(|a, b| (&a.0, &a.1, key(&a.2)).cmp(&(&b.0, &b.1, key(&b.2))));
        let rows: Vec<Vec<Value>> = grams
            .into_iter()
            .map(|(g, n, p, c)| vec![Value::Text(g), Value::Text(n), p, c])
            .collect();
        let table = if self.bulk_state()?.staged_grams {
            GRAMS
        } else {
            "person_name_grams"
        };
        self.bulk_rows(table, &["gram", "name", "person_id", "community_id"], &rows)
    }

    /// Append (SQLite) or stage (PostgreSQL) the entries gathered so far, and forget the data
    /// keys made for them (later sealing under them reads them back from this transaction).
    pub fn bulk_flush_log(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.made_keys.clear();
        if pending.is_empty() {
            return Ok(());
        }
        let env = self.env;
        let (ids, origin) = (env.ids.as_ref(), env.origin.clone());
        let (actor, request_id, at) = (self.ctx().actor, self.ctx().request_id.clone(), self.now());
        let n = pending.len();
        match self.conn.dialect() {
            Dialect::Sqlite => {
                let last = self.conn.query_i64(
                    "UPDATE log_counter SET last = last + ?1 WHERE id = 1 RETURNING last",
                    &params![i64::try_from(n).unwrap_or(i64::MAX)],
                )?;
                let mut pos = last - i64::try_from(n).unwrap_or(i64::MAX);
                let mut events = Vec::with_capacity(n);
                for p in pending {
                    pos += 1;
                    self.conn.execute(
                        "INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, \
                         after, after_ct, key_id, actor, request_id, at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                        &[
                            Value::Int(pos),
                            Value::Uuid(ids.new_id()),
                            Value::Text(origin.clone()),
                            Value::Int(pos),
                            Value::Text(p.kind.to_owned()),
                            Value::Uuid(p.record_id),
                            Value::Text(p.op.as_str().to_owned()),
                            stored(Dialect::Sqlite, &Value::from(p.after)),
                            Value::from(p.after_ct),
                            Value::from(p.key_id),
                            Value::from(actor),
                            Value::Text(request_id.clone()),
                            Value::Time(at),
                        ],
                    )?;
                    events.push(ChangeEvent {
                        pos,
                        kind: p.kind.to_owned(),
                        record_id: p.record_id,
                        op: p.op,
                        at,
                        place: p.place,
                    });
                }
                self.bulk_state()?.events.extend(events);
            }
            Dialect::Postgres => {
                let first = self.bulk_state()?.events.len();
                let mut rows = Vec::with_capacity(n);
                let mut events = Vec::with_capacity(n);
                for (i, p) in pending.into_iter().enumerate() {
                    rows.push(vec![
                        Value::Int(i64::try_from(first + i + 1).unwrap_or(i64::MAX)),
                        Value::Uuid(ids.new_id()),
                        Value::Text(p.kind.to_owned()),
                        Value::Uuid(p.record_id),
                        Value::Text(p.op.as_str().to_owned()),
                        Value::from(p.after),
                        Value::from(p.after_ct),
                        Value::from(p.key_id),
                    ]);
                    events.push(ChangeEvent {
                        pos: 0,
                        kind: p.kind.to_owned(),
                        record_id: p.record_id,
                        op: p.op,
                        at,
                        place: p.place,
                    });
                }
                self.conn.copy_in(
                    STAGE,
                    &[
                        "ord",
                        "id",
                        "kind",
                        "record_id",
                        "op",
                        "after",
                        "after_ct",
                        "key_id",
                    ],
                    &rows,
                )?;
                self.bulk_state()?.events.extend(events);
            }
        }
        Ok(())
    }
}

/// The end of a bulk write, just before commit: the last entries, the rebuilt indexes (SQLite),
/// the staged entries moved into the log with their positions (PostgreSQL).
pub(crate) fn finish(mut tx: Tx<'_>) -> Result<Vec<ChangeEvent>> {
    tx.bulk_flush_log()?;
    let (actor, request_id, at) = (tx.ctx().actor, tx.ctx().request_id.clone(), tx.now());
    let origin = tx.env.origin.clone();
    let mut b = tx
        .bulk
        .take()
        .ok_or_else(|| StoreError::Backend("bulk finish without bulk_begin".into()))?;
    match tx.conn.dialect() {
        Dialect::Sqlite => {
            if b.staged_grams {
                tx.conn.batch(&format!(
                    "INSERT INTO person_name_grams (gram, name, person_id, community_id) \
                     SELECT gram, name, person_id, community_id FROM {GRAMS} \
                     ORDER BY gram, name, person_id; DROP TABLE {GRAMS};"
                ))?;
            }
            for sql in &b.dropped {
                tx.conn.batch(sql)?;
            }
        }
        Dialect::Postgres => {
            let n = i64::try_from(b.events.len()).unwrap_or(i64::MAX);
            if n > 0 {
                let last = tx.conn.query_i64(
                    "UPDATE log_counter SET last = last + $1 WHERE id = 1 RETURNING last",
                    &params![n],
                )?;
                let base = last - n;
                tx.conn.execute(
                    &format!(
                        "INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, \
                         after_ct, key_id, actor, request_id, at) \
                         SELECT $1::bigint + ord, id, $2::text, $1::bigint + ord, kind, record_id, op, \
                         after, after_ct, key_id, $3::uuid, $4::text, $5::timestamptz FROM {STAGE} ORDER BY ord"
                    ),
                    &params![base, origin, actor, request_id, at],
                )?;
                for (i, ev) in b.events.iter_mut().enumerate() {
                    ev.pos = base + i64::try_from(i + 1).unwrap_or(i64::MAX);
                }
            }
        }
    }
    Ok(b.events)
}
