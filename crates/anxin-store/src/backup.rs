//! Logical backup and restore, the same on both backends and across them.
//!
//! A backup is JSON lines: a [`Header`] (format, version, schema version, source backend, the
//! tables with their columns and column types, in dependency order), one line per row
//! (`{"t": table, "r": row}` in [`crate::Row::to_json`] form: bytes as `base64:…`, so
//! ciphertexts stay ciphertexts), and a [`Trailer`] with the row counts, whose absence marks a
//! cut-off file. Master keys are not in it: they live in configuration, and a backup is useless
//! without them. `schema_migrations` is not in it either: the target is migrated already.
//!
//! The backup is read inside one read transaction, so it is one consistent snapshot: a SQLite
//! reader holds its WAL snapshot from the first read to `COMMIT`, PostgreSQL runs it
//! `REPEATABLE READ`.
//!
//! A restore loads an empty database of the same schema version, all in one write, converting
//! each JSON value back by the target column's type (SQLite keeps UUIDs, times and JSON as text;
//! PostgreSQL wants them typed), so a SQLite backup restores into PostgreSQL and back. Rows are
//! inserted in dependency order; a column referring to its own table (`nodes.parent_id`) is
//! filled in after the table's rows are in, so the order of rows inside a table does not matter.
//! The running store has the blind-index key it loaded at start-up: reopen it after a restore.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, Write};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::changelog::LOGGED_TABLES;
use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::tx::WriteCtx;
use crate::value::{Row, Value};
use crate::Store;

pub const FORMAT: &str = "anxin-backup";
pub const VERSION: i64 = 1;
/// Rows read per query while backing up.
const PAGE: i64 = 2000;
/// Tables that must be empty for a restore: records, their history and their keys. Other
/// operational tables (seeded by migrations, or the keyring made at start-up) are replaced.
const MUST_BE_EMPTY: &[&str] = &["change_log", "data_keys", "audit_log"];

/// Rows the migrations themselves write (the checklists 0014 ships, with their change-log
/// entries): a freshly migrated target has them and so does every backup of the same schema, so
/// they do not make a target "not empty" (restore clears every restored table first anyway).
const SEEDED: &[(&str, &str)] = &[
    ("change_log", "request_id LIKE 'migration-%'"),
    ("inspection_templates", "node_id IS NULL"),
    (
        "inspection_items",
        "template_id IN (SELECT id FROM inspection_templates WHERE node_id IS NULL)",
    ),
    // The platform's supplies catalogue (migration 0017).
    ("supply_items", "node_id IS NULL"),
];

/// The type of a column, as far as conversion cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColType {
    Int,
    Real,
    Text,
    Bytes,
    Bool,
    Uuid,
    Time,
    Date,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColType,
    #[serde(skip)]
    pub nullable: bool,
    #[serde(skip)]
    pub pk: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: i64,
    pub schema_version: i64,
    pub created_at: DateTime<Utc>,
    /// `sqlite` or `postgres`.
    pub source: String,
    pub origin: String,
    /// In dependency order: a table comes after every table it refers to.
    pub tables: Vec<TableInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trailer {
    pub end: bool,
    pub rows: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    t: String,
    r: serde_json::Map<String, serde_json::Value>,
}

/// Rows per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub schema_version: i64,
    pub tables: BTreeMap<String, u64>,
    pub rows: u64,
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::Backend(msg.into())
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn ident(s: &str) -> Result<&str> {
    if is_ident(s) {
        Ok(s)
    } else {
        Err(bad(format!("unexpected table or column name {s:?}")))
    }
}

// ---- catalog ---------------------------------------------------------------------------------

fn sqlite_type(decl: &str) -> ColType {
    let d = decl.to_ascii_uppercase();
    if d.contains("INT") {
        ColType::Int
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        ColType::Real
    } else if d.contains("BLOB") {
        ColType::Bytes
    } else {
        ColType::Text
    }
}

fn pg_type(data_type: &str) -> ColType {
    match data_type {
        "bigint" | "integer" | "smallint" => ColType::Int,
        "double precision" | "real" | "numeric" => ColType::Real,
        "bytea" => ColType::Bytes,
        "boolean" => ColType::Bool,
        "uuid" => ColType::Uuid,
        "timestamp with time zone" => ColType::Time,
        "date" => ColType::Date,
        "json" | "jsonb" => ColType::Json,
        _ => ColType::Text,
    }
}

/// The database's tables (without `schema_migrations`), with columns, sorted by name.
pub fn tables(conn: &mut dyn Conn) -> Result<Vec<TableInfo>> {
    let names: Vec<String> = match conn.dialect() {
        Dialect::Sqlite => conn.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            &[],
        )?,
        Dialect::Postgres => conn.query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )?,
    }
    .iter()
    .map(|r| r.get::<String>("name"))
    .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| n != "schema_migrations") {
        let columns = columns(conn, &name)?;
        out.push(TableInfo { name, columns });
    }
    Ok(out)
}

fn columns(conn: &mut dyn Conn, table: &str) -> Result<Vec<Column>> {
    match conn.dialect() {
        Dialect::Sqlite => conn
            .query(
                "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_info($1) ORDER BY cid",
                &crate::params![table],
            )?
            .iter()
            .map(|r| {
                Ok(Column {
                    name: r.get("name")?,
                    ty: sqlite_type(&r.get::<String>("type")?),
                    nullable: r.get::<i64>("not_null")? == 0,
                    pk: r.get::<i64>("pk")? > 0,
                })
            })
            .collect(),
        Dialect::Postgres => {
            let pk: BTreeSet<String> = conn
                .query(
                    "SELECT a.attname::text AS name FROM pg_index i JOIN pg_attribute a \
                     ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                     WHERE i.indisprimary AND i.indrelid = (SELECT c.oid FROM pg_class c \
                     WHERE c.relname::text = $1 AND c.relnamespace = current_schema()::regnamespace)",
                    &crate::params![table],
                )?
                .iter()
                .map(|r| r.get::<String>("name"))
                .collect::<Result<_>>()?;
            conn.query(
                "SELECT column_name::text AS name, data_type::text AS type, is_nullable::text AS nullable \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name::text = $1 ORDER BY ordinal_position",
                &crate::params![table],
            )?
            .iter()
            .map(|r| {
                let name: String = r.get("name")?;
                Ok(Column {
                    ty: pg_type(&r.get::<String>("type")?),
                    nullable: r.get::<String>("nullable")? == "YES",
                    pk: pk.contains(&name),
                    name,
                })
            })
            .collect()
        }
    }
}

/// Foreign keys: (table, column, referenced table).
fn foreign_keys(
    conn: &mut dyn Conn,
    tables: &[TableInfo],
) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    match conn.dialect() {
        Dialect::Sqlite => {
            for t in tables {
                for r in conn.query(
                    "SELECT \"table\" AS ref, \"from\" AS col FROM pragma_foreign_key_list($1)",
                    &crate::params![t.name.clone()],
                )? {
                    out.push((t.name.clone(), r.get("col")?, r.get("ref")?));
                }
            }
        }
        Dialect::Postgres => {
            for r in conn.query(
                "SELECT c.conrelid::regclass::text AS tbl, c.confrelid::regclass::text AS ref, \
                 a.attname::text AS col FROM pg_constraint c \
                 CROSS JOIN LATERAL unnest(c.conkey) AS k(attnum) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
                 WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
                &[],
            )? {
                out.push((r.get("tbl")?, r.get("col")?, r.get("ref")?));
            }
        }
    }
    Ok(out)
}

/// Tables in dependency order (referenced tables first; by name among equals). A cycle
/// between tables is an error: no insert order would satisfy it.
fn dependency_order(
    tables: Vec<TableInfo>,
    fks: &[(String, String, String)],
) -> Result<Vec<TableInfo>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = tables
        .iter()
        .map(|t| (t.name.clone(), BTreeSet::new()))
        .collect();
    for (t, _, r) in fks {
        if t != r && deps.contains_key(r) {
            if let Some(d) = deps.get_mut(t) {
                d.insert(r.clone());
            }
        }
    }
    let mut by_name: HashMap<String, TableInfo> =
        tables.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    while !deps.is_empty() {
        let ready: Vec<String> = deps
            .iter()
            .filter(|(_, d)| d.iter().all(|x| done.contains(x)))
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            return Err(bad(format!(
                "tables refer to each other in a cycle: {}",
                deps.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        for n in ready {
            deps.remove(&n);
            done.insert(n.clone());
            if let Some(t) = by_name.remove(&n) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

// ---- backup ----------------------------------------------------------------------------------

/// Write a backup of the whole database to `out`; returns `out` (to be finished by the caller,
/// e.g. a gzip encoder) and the counts.
pub async fn backup<W: Write + Send + 'static>(store: &Store, out: W) -> Result<(W, Counts)> {
    store
        .read(move |conn, env| {
            let mut out = out;
            let begin = match conn.dialect() {
                Dialect::Sqlite => "BEGIN",
                Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            };
            conn.batch(begin)?;
            let r = backup_in(conn, env, &mut out);
            let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let closed = conn.batch(end);
            let counts = r?;
            closed?;
            Ok((out, counts))
        })
        .await
}

fn io(e: std::io::Error) -> StoreError {
    bad(format!("backup output: {e}"))
}

fn backup_in(conn: &mut dyn Conn, env: &crate::Env, out: &mut dyn Write) -> Result<Counts> {
    let schema_version = crate::migrate::current_version(conn)?;
    let all = tables(conn)?;
    let fks = foreign_keys(conn, &all)?;
    let ordered = dependency_order(all, &fks)?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        schema_version,
        created_at: env.clock.now(),
        source: conn.dialect().name().into(),
        origin: env.origin.clone(),
        tables: ordered.clone(),
    };
    let mut line = serde_json::to_vec(&header).map_err(|e| bad(format!("header: {e}")))?;
    line.push(b'\n');
    out.write_all(&line).map_err(io)?;
    let mut counts = Counts {
        schema_version,
        ..Counts::default()
    };
    for t in &ordered {
        let n = dump_table(conn, t, out)?;
        counts.tables.insert(t.name.clone(), n);
        counts.rows += n;
    }
    let trailer = Trailer {
        end: true,
        rows: counts.tables.clone(),
    };
    let mut line = serde_json::to_vec(&trailer).map_err(|e| bad(format!("trailer: {e}")))?;
    line.push(b'\n');
    out.write_all(&line).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(counts)
}

fn dump_table(conn: &mut dyn Conn, t: &TableInfo, out: &mut dyn Write) -> Result<u64> {
    let name = ident(&t.name)?;
    let cols: Vec<&str> = t
        .columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Result<_>>()?;
    let pk: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.pk)
        .map(|c| c.name.as_str())
        .collect();
    let select = cols.join(", ");
    let mut n = 0u64;
    let mut write_rows = |rows: &[Row], out: &mut dyn Write| -> Result<()> {
        for r in rows {
            let serde_json::Value::Object(obj) = r.to_json() else {
                return Err(bad("row is not an object"));
            };
            let mut line = serde_json::to_vec(&Line {
                t: t.name.clone(),
                r: obj,
            })
            .map_err(|e| bad(format!("row: {e}")))?;
            line.push(b'\n');
            out.write_all(&line).map_err(io)?;
            n += 1;
        }
        Ok(())
    };
    if let [key] = pk.as_slice() {
        // Keyset paging: each page starts after the last key seen.
        let mut last: Option<Value> = None;
        loop {
            let rows = match &last {
                None => conn.query(
                    &format!("SELECT {select} FROM {name} ORDER BY {key} LIMIT $1"),
                    &crate::params![PAGE],
                )?,
                Some(k) => conn.query(
                    &format!(
                        "SELECT {select} FROM {name} WHERE {key} > $1 ORDER BY {key} LIMIT $2"
                    ),
                    &[k.clone(), Value::Int(PAGE)],
                )?,
            };
            write_rows(&rows, out)?;
            match rows.last() {
                Some(r) if i64::try_from(rows.len()).unwrap_or(0) == PAGE => {
                    last = Some(r.raw(key)?.clone())
                }
                _ => break,
            }
        }
    } else {
        let order = if pk.is_empty() {
            select.clone()
        } else {
            pk.join(", ")
        };
        let mut offset = 0i64;
        loop {
            let rows = conn.query(
                &format!("SELECT {select} FROM {name} ORDER BY {order} LIMIT $1 OFFSET $2"),
                &crate::params![PAGE, offset],
            )?;
            write_rows(&rows, out)?;
            if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
                break;
            }
            offset += PAGE;
        }
    }
    Ok(n)
}

// ---- restore ---------------------------------------------------------------------------------

/// Read the header line of a backup, to check it before restoring.
pub fn read_header(input: &mut dyn BufRead) -> Result<Header> {
    let mut first = String::new();
    input
        .read_line(&mut first)
        .map_err(|e| bad(format!("reading the backup: {e}")))?;
    let h: Header = serde_json::from_str(&first)
        .map_err(|_| StoreError::invalid("backup.not_a_backup", "header"))?;
    if h.format != FORMAT {
        return Err(StoreError::invalid("backup.not_a_backup", "format"));
    }
    if h.version != VERSION {
        return Err(bad(format!(
            "backup format version {} is not supported (this release reads version {VERSION})",
            h.version
        )));
    }
    Ok(h)
}

/// Restore a backup into this store's database, which must be empty and migrated to the
/// backup's schema version. Everything happens in one write: a failure leaves the database as
/// it was. Reopen the store afterwards (it still holds the blind-index key it started with).
pub async fn restore<R: BufRead + Send + 'static>(store: &Store, input: R) -> Result<Counts> {
    let env = store.env().clone();
    store
        .write(WriteCtx::system("restore"), move |tx| {
            let mut input = input;
            let counts = restore_in(tx.conn(), &mut input)?;
            check_keys(tx.conn(), env.keys.ring())?;
            Ok(counts)
        })
        .await
}

/// The restored keys must open with the configured master keys; otherwise every ciphertext is
/// lost, and the restore is refused (rolled back).
fn check_keys(conn: &mut dyn Conn, ring: &anxin_crypto::KeyRing) -> Result<()> {
    let configured: BTreeSet<&str> = ring.ids().collect();
    let mut missing = BTreeSet::new();
    for r in conn.query(
        "SELECT DISTINCT kek_id FROM data_keys UNION SELECT DISTINCT kek_id FROM keyring",
        &[],
    )? {
        let k: String = r.get("kek_id")?;
        if !configured.contains(k.as_str()) {
            missing.insert(k);
        }
    }
    if !missing.is_empty() {
        return Err(StoreError::Crypto(format!(
            "the backup's keys are wrapped by master key(s) {}, which this configuration lacks",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(r) = conn.query_one(
        "SELECT key_id, kek_id, wrapped FROM keyring WHERE name = 'blind_index'",
        &[],
    )? {
        let w = anxin_crypto::WrappedKey {
            kek_id: r.get("kek_id")?,
            bytes: r.get("wrapped")?,
        };
        ring.unwrap_blind_index_key(r.get("key_id")?, &w)
            .map_err(|_| {
                StoreError::Crypto(
                    "the backup's blind-index key does not open with the configured master key"
                        .into(),
                )
            })?;
    }
    Ok(())
}

fn restore_in(conn: &mut dyn Conn, input: &mut dyn BufRead) -> Result<Counts> {
    let header = read_header(input)?;
    let target_version = crate::migrate::current_version(conn)?;
    if header.schema_version != target_version {
        return Err(bad(format!(
            "the backup has schema version {}, this database {target_version}: restore into a database \
             of version {} (migrate an empty database with the release that wrote the backup), then upgrade",
            header.schema_version, header.schema_version
        )));
    }
    let target: HashMap<String, TableInfo> = tables(conn)?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    for name in LOGGED_TABLES
        .iter()
        .copied()
        .chain(MUST_BE_EMPTY.iter().copied())
    {
        if target.contains_key(name) {
            let seeded = SEEDED
                .iter()
                .find(|(t, _)| *t == name)
                .map_or(String::new(), |(_, w)| format!(" WHERE NOT ({w})"));
            let n = conn.query_i64(
                &format!("SELECT count(*) FROM {}{seeded}", ident(name)?),
                &[],
            )?;
            if n > 0 {
                return Err(StoreError::Conflict {
                    code: "backup.target_not_empty",
                    detail: format!("restore needs an empty database, but {name} has {n} rows"),
                });
            }
        }
    }
    let fks = foreign_keys(conn, &target.values().cloned().collect::<Vec<_>>())?;
    // Every table must come after the tables it refers to, in the file's order.
    let position: HashMap<&str, usize> = header
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    for t in &header.tables {
        if !target.contains_key(&t.name) {
            return Err(bad(format!(
                "the backup has table {} which this database lacks",
                t.name
            )));
        }
        for (_, _, r) in fks
            .iter()
            .filter(|(ft, _, r)| *ft == t.name && *r != t.name)
        {
            let before = position
                .get(r.as_str())
                .is_some_and(|p| *p < position[t.name.as_str()]);
            if !before {
                return Err(bad(format!(
                    "backup lists {} before {r}, which it refers to",
                    t.name
                )));
            }
        }
    }
    // Clear what migrations and start-up put into the tables being restored.
    for t in header.tables.iter().rev() {
        conn.execute(&format!("DELETE FROM {}", ident(&t.name)?), &[])?;
    }

    let mut plans: HashMap<String, Plan> = HashMap::new();
    for t in &header.tables {
        let tgt = &target[&t.name];
        plans.insert(t.name.clone(), Plan::new(t, tgt, &fks)?);
    }
    let mut counts = Counts {
        schema_version: header.schema_version,
        ..Counts::default()
    };
    let mut current: Option<String> = None;
    let mut trailer: Option<Trailer> = None;
    let mut buf = String::new();
    let mut line_no = 1u64;
    loop {
        buf.clear();
        let n = input
            .read_line(&mut buf)
            .map_err(|e| bad(format!("reading the backup: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.trim().is_empty() {
            continue;
        }
        if trailer.is_some() {
            return Err(bad(format!(
                "backup line {line_no}: data after the end marker"
            )));
        }
        if buf.starts_with("{\"end\"") {
            trailer = Some(
                serde_json::from_str(&buf)
                    .map_err(|e| bad(format!("backup line {line_no}: {e}")))?,
            );
            continue;
        }
        let line: Line =
            serde_json::from_str(&buf).map_err(|e| bad(format!("backup line {line_no}: {e}")))?;
        if current.as_deref() != Some(line.t.as_str()) {
            if let Some(prev) = current.take() {
                if let Some(p) = plans.get_mut(&prev) {
                    p.finish(conn)?;
                }
            }
            current = Some(line.t.clone());
        }
        let plan = plans.get_mut(&line.t).ok_or_else(|| {
            bad(format!(
                "backup line {line_no}: table {} is not in the header",
                line.t
            ))
        })?;
        plan.insert(conn, &line.r)
            .map_err(|e| bad(format!("backup line {line_no} ({}): {e}", line.t)))?;
        *counts.tables.entry(line.t).or_default() += 1;
        counts.rows += 1;
    }
    if let Some(prev) = current.take() {
        if let Some(p) = plans.get_mut(&prev) {
            p.finish(conn)?;
        }
    }
    let Some(trailer) = trailer else {
        return Err(bad("the backup is incomplete: its end marker is missing"));
    };
    for (t, n) in &trailer.rows {
        let got = counts.tables.get(t).copied().unwrap_or(0);
        if got != *n {
            return Err(bad(format!(
                "the backup is inconsistent: {t} should have {n} rows, found {got}"
            )));
        }
    }
    Ok(counts)
}

/// How to insert one table's rows.
struct Plan {
    table: String,
    /// (column, source type, target type)
    cols: Vec<(String, ColType, ColType)>,
    insert_sql: String,
    /// Nullable columns referring to this same table: inserted as NULL, set afterwards.
    self_refs: Vec<String>,
    pk: Vec<String>,
    deferred: Vec<(Vec<Value>, String, Value)>,
}

impl Plan {
    fn new(src: &TableInfo, tgt: &TableInfo, fks: &[(String, String, String)]) -> Result<Plan> {
        let mut cols = Vec::new();
        for c in &src.columns {
            let t = tgt
                .columns
                .iter()
                .find(|x| x.name == c.name)
                .ok_or_else(|| {
                    bad(format!(
                        "column {}.{} is missing from this database",
                        src.name, c.name
                    ))
                })?;
            cols.push((ident(&c.name)?.to_owned(), c.ty, t.ty));
        }
        let names: Vec<&str> = cols.iter().map(|(c, _, _)| c.as_str()).collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let insert_sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(&src.name)?,
            names.join(", "),
            marks.join(", ")
        );
        let pk: Vec<String> = tgt
            .columns
            .iter()
            .filter(|c| c.pk)
            .map(|c| c.name.clone())
            .collect();
        let self_refs = fks
            .iter()
            .filter(|(t, _, r)| *t == src.name && *r == src.name)
            .map(|(_, c, _)| c.clone())
            .filter(|c| tgt.columns.iter().any(|x| &x.name == c && x.nullable))
            .filter(|_| !pk.is_empty())
            .collect();
        Ok(Plan {
            table: src.name.clone(),
            cols,
            insert_sql,
            self_refs,
            pk,
            deferred: Vec::new(),
        })
    }

    fn insert(
        &mut self,
        conn: &mut dyn Conn,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let mut vals = Vec::with_capacity(self.cols.len());
        for (name, src, tgt) in &self.cols {
            let j = row.get(name).unwrap_or(&serde_json::Value::Null);
            let v = convert(j, *src, *tgt).map_err(|why| bad(format!("column {name}: {why}")))?;
            vals.push(v);
        }
        if !self.self_refs.is_empty() {
            let key: Vec<Value> = self
                .pk
                .iter()
                .map(|k| {
                    self.cols
                        .iter()
                        .position(|(c, _, _)| c == k)
                        .map(|i| vals[i].clone())
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("{}: primary key not in the backup", self.table)))?;
            for col in &self.self_refs {
                if let Some(i) = self.cols.iter().position(|(c, _, _)| c == col) {
                    if vals[i] != Value::Null {
                        let v = std::mem::replace(&mut vals[i], Value::Null);
                        self.deferred.push((key.clone(), col.clone(), v));
                    }
                }
            }
        }
        conn.execute(&self.insert_sql, &vals)?;
        Ok(())
    }

    /// Fill in the self-references once every row of the table is in.
    fn finish(&mut self, conn: &mut dyn Conn) -> Result<()> {
        let wher: Vec<String> = self
            .pk
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 2))
            .collect();
        for (key, col, v) in std::mem::take(&mut self.deferred) {
            let sql = format!(
                "UPDATE {} SET {col} = $1 WHERE {}",
                self.table,
                wher.join(" AND ")
            );
            let mut params = vec![v];
            params.extend(key);
            conn.execute(&sql, &params)?;
        }
        Ok(())
    }
}

/// A backup's JSON value, written from a column of type `src`, as a value for a column of type
/// `tgt`.
fn convert(
    j: &serde_json::Value,
    src: ColType,
    tgt: ColType,
) -> std::result::Result<Value, String> {
    use serde_json::Value as J;
    if j.is_null() {
        return Ok(Value::Null);
    }
    let text = || {
        j.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("expected text, found {j}"))
    };
    Ok(match tgt {
        ColType::Int => match j {
            J::Number(n) => Value::Int(n.as_i64().ok_or_else(|| format!("not an integer: {n}"))?),
            J::Bool(b) => Value::Int(i64::from(*b)),
            J::String(s) => Value::Int(s.parse().map_err(|_| format!("not an integer: {s}"))?),
            _ => return Err(format!("expected an integer, found {j}")),
        },
        ColType::Real => Value::Real(
            j.as_f64()
                .ok_or_else(|| format!("expected a number, found {j}"))?,
        ),
        ColType::Bool => match j {
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Bool(n.as_i64().is_some_and(|i| i != 0)),
            _ => return Err(format!("expected a boolean, found {j}")),
        },
        ColType::Bytes => {
            let s = text()?;
            let b64 = s
                .strip_prefix("base64:")
                .ok_or("bytes without their base64: prefix")?;
            Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("bad base64: {e}"))?,
            )
        }
        ColType::Uuid => Value::Uuid(uuid::Uuid::parse_str(&text()?).map_err(|e| e.to_string())?),
        ColType::Time => Value::Time(
            DateTime::parse_from_rfc3339(&text()?)
                .map_err(|e| e.to_string())?
                .with_timezone(&Utc),
        ),
        ColType::Date => Value::Date(
            text()?
                .parse()
                .map_err(|e: chrono::ParseError| e.to_string())?,
        ),
        ColType::Json => match (src, j) {
            // SQLite keeps JSON as text: the string is the document.
            (ColType::Text, J::String(s)) => {
                Value::Json(serde_json::from_str(s).unwrap_or_else(|_| j.clone()))
            }
            _ => Value::Json(j.clone()),
        },
        ColType::Text => match (src, j) {
            (ColType::Json, _) => Value::Text(j.to_string()),
            (_, J::String(s)) => Value::Text(s.clone()),
            _ => Value::Text(j.to_string()),
        },
    })
}
