//! A write: a transaction that logs every record change it makes.

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
    conn: &'a mut dyn Conn,
    ctx: &'a WriteCtx,
    env: &'a Env,
    now: DateTime<Utc>,
    pending: Vec<Pending>,
}

fn logged(table: &str) -> Result<&'static str> {
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
        self.env
            .keys
            .seal(&mut *self.conn, key_id, field, plaintext)
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
        self.conn.execute(sql, params)
    }

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
        Ok(row)
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
        Ok(row)
    }

    /// Delete one record; the log keeps an entry without an image.
    pub fn delete(&mut self, table: &str, id: Uuid) -> Result<()> {
        let kind = logged(table)?;
        let sql = format!("DELETE FROM {table} WHERE id = $1 RETURNING *");
        let row = self
            .conn
            .query_one(&sql, &params![id])?
            .ok_or(StoreError::NotFound)?;
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

    fn log(&mut self, kind: &'static str, op: Op, row: &Row) -> Result<()> {
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
                let ct = self
                    .env
                    .keys
                    .seal(&mut *self.conn, k, "change_log.after", &bytes)?;
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
