//! A write: a transaction that logs every record change it makes.

use std::collections::HashMap;
use std::sync::Arc;

use anxin_crypto::{DataKey, WrappedKey};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::changelog::{self, ChangeEvent, Op, Pending, LOGGED_TABLES};
use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::params;
use crate::value::{Row, Value};
use crate::Env;

/// Who is writing and on behalf of which request: stamped on every change-log entry.
#[derive(Debug, Clone, Default)]
pub struct WriteCtx {
    pub actor: Option<Uuid>,
    pub request_id: String,
}

impl WriteCtx {
    pub fn system(request_id: impl Into<String>) -> Self {
        Self {
            actor: None,
            request_id: request_id.into(),
        }
    }
    pub fn by(actor: Uuid, request_id: impl Into<String>) -> Self {
        Self {
            actor: Some(actor),
            request_id: request_id.into(),
        }
    }
}

pub struct Tx<'a> {
    pub(crate) conn: &'a mut dyn Conn,
    ctx: &'a WriteCtx,
    pub(crate) env: &'a Env,
    now: DateTime<Utc>,
    pub(crate) pending: Vec<Pending>,
    /// Data keys made by this write through [`Tx::add_data_keys`]: sealing under them (fields and
    /// change-log images) needs no lookup and no unwrap.
    pub(crate) made_keys: HashMap<Uuid, Arc<DataKey>>,
    /// This write changed sessions or person links (see [`Tx::touches_auth`]).
    pub(crate) auth: bool,
    /// The bulk-load path's state, once [`Tx::bulk_begin`] has run (see `bulk.rs`).
    pub(crate) bulk: Option<Box<crate::bulk::Bulk>>,
}

/// A new data key and its wrapping under the current master key, made outside a write (the
/// bulk paths make them on several threads) and stored by [`Tx::add_data_keys`].
pub fn make_data_key(env: &Env, id: Uuid) -> Result<(Arc<DataKey>, WrappedKey)> {
    let dk = DataKey::generate(id, env.data_key_alg);
    let w = env.keys.ring().wrap(&dk)?;
    Ok((Arc::new(dk), w))
}

/// Bind parameters one statement may carry: under SQLite's 32,766 and PostgreSQL's 65,535.
fn max_params(d: Dialect) -> usize {
    match d {
        Dialect::Sqlite => 32_000,
        Dialect::Postgres => 65_000,
    }
}
/// Rows per multi-row statement, whatever the width: larger statements stop paying off.
const MAX_ROWS_PER_STATEMENT: usize = 1_000;
/// Change-log entries below this count are appended one statement each (as always).
const BATCH_LOG_FROM: usize = 16;

/// A statement (lower case) that changes sessions or person links, other than a session's touch
/// or a new session (session cache invalidation, rush).
fn touches_sessions(lower: &str) -> bool {
    let l = lower.trim_start();
    (l.contains("sessions") || l.contains("user_people"))
        && !l.starts_with("select")
        && !l.starts_with("insert into sessions")
        && !l.starts_with("update sessions set last_seen")
}

pub(crate) fn logged(table: &str) -> Result<&'static str> {
    LOGGED_TABLES
        .iter()
        .find(|t| **t == table)
        .copied()
        .ok_or_else(|| StoreError::Backend(format!("{table} is not a logged table")))
}

impl<'a> Tx<'a> {
    pub(crate) fn new(conn: &'a mut dyn Conn, ctx: &'a WriteCtx, env: &'a Env) -> Self {
        let now = env.clock.now();
        Self {
            conn,
            ctx,
            env,
            now,
            pending: Vec::new(),
            made_keys: HashMap::new(),
            auth: false,
            bulk: None,
        }
    }

    /// The time of this write: one instant for everything it stamps.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
    pub fn new_id(&self) -> Uuid {
        self.env.ids.new_id()
    }
    pub fn ctx(&self) -> &WriteCtx {
        self.ctx
    }
    /// The environment; its lifetime is the transaction's, not this borrow's, so
    /// `tx.env().keys.seal(tx.conn(), …)` works.
    pub fn env(&self) -> &'a Env {
        self.env
    }
    /// A new data key for a new personal record.
    pub fn new_data_key(&mut self) -> Result<Uuid> {
        let id = self.new_id();
        let now = self.now;
        self.env.keys.new_data_key(&mut *self.conn, id, now)
    }
    /// Seal `plaintext` for `field` under data key `key_id`.
    pub fn seal(&mut self, key_id: Uuid, field: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let dk = self.key_for(key_id)?;
        Ok(anxin_crypto::encrypt(&dk, plaintext, field.as_bytes())?)
    }

    fn key_for(&mut self, key_id: Uuid) -> Result<Arc<DataKey>> {
        match self.made_keys.get(&key_id) {
            Some(k) => Ok(k.clone()),
            None => self.env.keys.data_key(&mut *self.conn, key_id),
        }
    }

    /// The `data_keys` rows of `keys` (`id, kek_id, wrapped, created_at`), stored now.
    pub(crate) fn data_key_rows(&self, keys: &[(Arc<DataKey>, WrappedKey)]) -> Vec<Vec<Value>> {
        keys.iter()
            .map(|(dk, w)| {
                vec![
                    Value::Uuid(dk.id()),
                    Value::Text(w.kek_id.clone()),
                    Value::Bytes(w.bytes.clone()),
                    Value::Time(self.now),
                ]
            })
            .collect()
    }

    /// Store data keys made by [`make_data_key`] (one multi-row statement per chunk).
    pub fn add_data_keys(&mut self, keys: Vec<(Arc<DataKey>, WrappedKey)>) -> Result<()> {
        let rows = self.data_key_rows(&keys);
        self.values_many(
            "INSERT INTO data_keys (id, kek_id, wrapped, created_at) VALUES ",
            4,
            "",
            &rows,
        )?;
        self.keep_keys(keys);
        Ok(())
    }

    /// Keep keys this write made, so sealing with them needs no unwrap.
    pub(crate) fn keep_keys(&mut self, keys: Vec<(Arc<DataKey>, WrappedKey)>) {
        for (dk, _) in keys {
            self.made_keys.insert(dk.id(), dk);
        }
    }

    /// Run `head VALUES (…), (…) tail` over `rows` in chunks that fit the backend's parameter
    /// limit; returns the rows any `RETURNING` gives back.
    fn values_many(
        &mut self,
        head: &str,
        width: usize,
        tail: &str,
        rows: &[Vec<Value>],
    ) -> Result<Vec<Row>> {
        let per = (max_params(self.conn.dialect()) / width.max(1)).clamp(1, MAX_ROWS_PER_STATEMENT);
        let mut out = Vec::new();
        for part in rows.chunks(per) {
            let mut sql = String::with_capacity(head.len() + part.len() * width * 6);
            sql.push_str(head);
            let mut params = Vec::with_capacity(part.len() * width);
            for (i, row) in part.iter().enumerate() {
                if row.len() != width {
                    return Err(StoreError::Backend("insert_many: ragged row".into()));
                }
                sql.push_str(if i == 0 { "(" } else { ", (" });
                for j in 0..width {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&(params.len() + j + 1).to_string());
                }
                sql.push(')');
                params.extend(row.iter().cloned());
            }
            sql.push_str(tail);
            if tail.is_empty() {
                self.conn.execute(&sql, &params)?;
            } else {
                out.extend(self.conn.query(&sql, &params)?);
            }
        }
        Ok(out)
    }
    pub fn open_string(&mut self, field: &str, ciphertext: &[u8]) -> Result<String> {
        self.env
            .keys
            .open_string(&mut *self.conn, field, ciphertext)
    }
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }
    /// The connection, for reads inside the transaction.
    pub fn conn(&mut self) -> &mut dyn Conn {
        &mut *self.conn
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.conn.query(sql, params)
    }
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.conn.query_one(sql, params)
    }

    /// A statement on an operational table. Refuses to touch a logged table, so nothing can
    /// change a record without its change-log entry.
    pub fn execute_unlogged(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let lower = sql.to_ascii_lowercase();
        for t in LOGGED_TABLES {
            for verb in ["insert into", "update", "delete from"] {
                if lower.contains(&format!("{verb} {t} "))
                    || lower.contains(&format!("{verb} {t}("))
                {
                    return Err(StoreError::Backend(format!(
                        "refused: {t} is logged; write it through Tx::insert/update/delete"
                    )));
                }
            }
        }
        if touches_sessions(&lower) {
            self.auth = true;
        }
        self.conn.execute(sql, params)
    }

    // Session cache invalidation (rush): whether this write changes what resolving a session
    // gives — a session ended or changed (not its once-a-minute touch, not a new one), a person
    // link, or a record of users, grants, API tokens or people (a linked person's household).
    // `Store::write` bumps `Store::auth_generation` after such a write has committed.
    pub(crate) fn touches_auth(&self) -> bool {
        self.auth
            || self
                .pending
                .iter()
                .any(|p| matches!(p.kind, "users" | "grants" | "api_tokens" | "people"))
    }
    // end of session cache invalidation

    /// Insert a record and log its after-image (the row exactly as stored).
    pub fn insert(&mut self, table: &str, cols: &[(&str, Value)]) -> Result<Row> {
        let kind = logged(table)?;
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({}) RETURNING *",
            names.join(", "),
            marks.join(", ")
        );
        let vals: Vec<Value> = cols.iter().map(|(_, v)| v.clone()).collect();
        let row = self
            .conn
            .query_one(&sql, &vals)?
            .ok_or_else(|| StoreError::Backend("insert returned nothing".into()))?;
        self.log(kind, Op::Insert, &row)?;
        if kind == "people" {
            self.put_grams(std::slice::from_ref(&row))?;
        }
        Ok(row)
    }

    /// Insert many records of one table with multi-row statements; each gets its change-log
    /// entry exactly as [`Tx::insert`] gives it (its after-image as stored, sealed when it has a
    /// `key_id`). `rows` hold the values of `cols`, in order. Returns how many were inserted.
    pub fn insert_many(
        &mut self,
        table: &str,
        cols: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<usize> {
        let kind = logged(table)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let head = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let stored = self.values_many(&head, cols.len(), " RETURNING *", rows)?;
        if stored.len() != rows.len() {
            return Err(StoreError::Backend(format!(
                "insert_many {table}: {} of {} rows came back",
                stored.len(),
                rows.len()
            )));
        }
        for row in &stored {
            self.log(kind, Op::Insert, row)?;
        }
        if kind == "people" {
            self.put_grams(&stored)?;
        }
        Ok(stored.len())
    }

    /// Write the name grams of people rows (as stored) after removing any they had.
    fn put_grams(&mut self, people: &[Row]) -> Result<()> {
        let mut rows = Vec::new();
        for p in people {
            let id: Uuid = p.get("id")?;
            let name: String = p.get("name")?;
            let community: Uuid = p.get("community_id")?;
            for g in crate::people::name_grams(&name) {
                rows.push(vec![
                    Value::Text(g),
                    Value::Text(name.clone()),
                    Value::Uuid(id),
                    Value::Uuid(community),
                ]);
            }
        }
        self.values_many(
            "INSERT INTO person_name_grams (gram, name, person_id, community_id) VALUES ",
            4,
            " ON CONFLICT DO NOTHING",
            &rows,
        )
        .map(|_| ())
    }

    fn drop_grams(&mut self, person: Uuid) -> Result<()> {
        self.conn.execute(
            "DELETE FROM person_name_grams WHERE person_id = $1",
            &params![person],
        )?;
        Ok(())
    }

    /// Update some columns of one record; `NotFound` when there is no such record.
    pub fn update(&mut self, table: &str, id: Uuid, cols: &[(&str, Value)]) -> Result<Row> {
        let kind = logged(table)?;
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE {table} SET {} WHERE id = ${} RETURNING *",
            sets.join(", "),
            cols.len() + 1
        );
        let mut vals: Vec<Value> = cols.iter().map(|(_, v)| v.clone()).collect();
        vals.push(Value::Uuid(id));
        let row = self
            .conn
            .query_one(&sql, &vals)?
            .ok_or(StoreError::NotFound)?;
        self.log(kind, Op::Update, &row)?;
        if kind == "people"
            && cols
                .iter()
                .any(|(c, _)| *c == "name" || *c == "community_id")
        {
            self.drop_grams(id)?;
            self.put_grams(std::slice::from_ref(&row))?;
        }
        Ok(row)
    }

    /// Update `cols` of every record of `table` that `filter` selects (SQL over the table's
    /// columns, its own placeholders numbered from `$1`), in one statement; each record gets its
    /// change-log entry exactly as with [`Tx::update`]. Returns the records as stored. Not for
    /// `people` (their name grams are kept one by one by [`Tx::update`]).
    pub fn update_where(
        &mut self,
        table: &str,
        cols: &[(&str, Value)],
        filter: &str,
        filter_params: &[Value],
    ) -> Result<Vec<Row>> {
        let kind = logged(table)?;
        if kind == "people" {
            return Err(StoreError::Backend(
                "update_where on people: use Tx::update".into(),
            ));
        }
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE {table} SET {} WHERE {} RETURNING *",
            sets.join(", "),
            shift_placeholders(filter, cols.len())
        );
        let mut vals: Vec<Value> = cols.iter().map(|(_, v)| v.clone()).collect();
        vals.extend_from_slice(filter_params);
        let rows = self.conn.query(&sql, &vals)?;
        for row in &rows {
            self.log(kind, Op::Update, row)?;
        }
        Ok(rows)
    }

    /// Delete one record; the log keeps an entry without an image.
    pub fn delete(&mut self, table: &str, id: Uuid) -> Result<()> {
        let kind = logged(table)?;
        let sql = format!("DELETE FROM {table} WHERE id = $1 RETURNING *");
        let row = self
            .conn
            .query_one(&sql, &params![id])?
            .ok_or(StoreError::NotFound)?;
        if kind == "people" {
            self.drop_grams(id)?;
        }
        self.pending.push(Pending {
            kind,
            record_id: id,
            op: Op::Delete,
            after: None,
            after_ct: None,
            key_id: None,
            place: changelog::Place::of_image(kind, &row.to_json()),
        });
        Ok(())
    }

    pub(crate) fn log(&mut self, kind: &'static str, op: Op, row: &Row) -> Result<()> {
        let record_id: Uuid = row.get("id")?;
        let image = row.to_json();
        let key_id = row
            .columns()
            .iter()
            .any(|c| c == "key_id")
            .then(|| row.get::<Option<Uuid>>("key_id"))
            .transpose()?
            .flatten();
        let place = changelog::Place::of_image(kind, &image);
        let (after, after_ct) = match key_id {
            Some(k) => {
                let bytes = serde_json::to_vec(&image)
                    .map_err(|e| StoreError::Backend(format!("image: {e}")))?;
                let ct = self.seal(k, "change_log.after", &bytes)?;
                (None, Some(ct))
            }
            None => (Some(image), None),
        };
        self.pending.push(Pending {
            kind,
            record_id,
            op,
            after,
            after_ct,
            key_id,
            place,
        });
        Ok(())
    }

    /// Append the gathered entries; called once, just before commit.
    pub(crate) fn finish(self) -> Result<Vec<ChangeEvent>> {
        if self.bulk.is_some() {
            return crate::bulk::finish(self);
        }
        if self.pending.len() >= BATCH_LOG_FROM {
            return append_batched(
                self.conn,
                &self.env.origin,
                self.ctx.actor,
                &self.ctx.request_id,
                self.now,
                self.env.ids.as_ref(),
                self.pending,
            );
        }
        changelog::append(
            self.conn,
            &self.env.origin,
            self.ctx.actor,
            &self.ctx.request_id,
            self.now,
            self.env.ids.as_ref(),
            self.pending,
        )
    }
}

/// [`changelog::append`] with multi-row statements, for writes with many entries: the same
/// entries (positions from one locked counter update, so gap-free and in commit order; ids drawn
/// in entry order), fewer round trips.
fn append_batched(
    conn: &mut dyn Conn,
    origin: &str,
    actor: Option<Uuid>,
    request_id: &str,
    at: DateTime<Utc>,
    ids: &dyn anxin_domain::IdGen,
    pending: Vec<Pending>,
) -> Result<Vec<ChangeEvent>> {
    const WIDTH: usize = 13;
    let n = i64::try_from(pending.len()).unwrap_or(i64::MAX);
    let last = conn.query_i64(
        "UPDATE log_counter SET last = last + $1 WHERE id = 1 RETURNING last",
        &params![n],
    )?;
    let mut pos = last - n;
    let per = (max_params(conn.dialect()) / WIDTH).min(MAX_ROWS_PER_STATEMENT);
    let mut events = Vec::with_capacity(pending.len());
    let mut it = pending.into_iter().peekable();
    while it.peek().is_some() {
        let mut sql = String::from(
            "INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, after_ct, \
             key_id, actor, request_id, at) VALUES ",
        );
        let mut vals: Vec<Value> = Vec::with_capacity(per * WIDTH);
        for (i, p) in it.by_ref().take(per).enumerate() {
            pos += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            let b = vals.len();
            sql.push('(');
            for j in 1..=WIDTH {
                if j > 1 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(b + j).to_string());
            }
            sql.push(')');
            vals.extend([
                Value::Int(pos),
                Value::Uuid(ids.new_id()),
                Value::Text(origin.to_owned()),
                Value::Int(pos),
                Value::Text(p.kind.to_owned()),
                Value::Uuid(p.record_id),
                Value::Text(p.op.as_str().to_owned()),
                Value::from(p.after),
                Value::from(p.after_ct),
                Value::from(p.key_id),
                Value::from(actor),
                Value::Text(request_id.to_owned()),
                Value::Time(at),
            ]);
            events.push(ChangeEvent {
                pos,
                kind: p.kind.to_owned(),
                record_id: p.record_id,
                op: p.op,
                at,
                place: p.place,
            });
        }
        conn.execute(&sql, &vals)?;
    }
    Ok(events)
}

/// `$1 … $n` in `sql` renumbered to `$(1 + by) … $(n + by)`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut n = 0usize;
        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
            n = n * 10 + d as usize;
            chars.next();
        }
        out.push('$');
        out.push_str(&(n + by).to_string());
    }
    out
}

#[cfg(test)]
mod shift_tests {
    #[test]
    fn placeholders_shift_past_the_set_values() {
        assert_eq!(
            super::shift_placeholders("a = $1 AND b IN ($2, $10) AND c = '$x'", 3),
            "a = $4 AND b IN ($5, $13) AND c = '$x'"
        );
    }
}
