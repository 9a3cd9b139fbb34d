//! PostgreSQL backend: a pool of blocking clients, each with its own prepared-statement cache.
//!
//! Writes run in ordinary transactions; PostgreSQL serialises what must be serialised. The
//! change-log sequence row is locked only at the very end of a write (see `changelog`), so
//! concurrent writers hold it for the length of a commit, not of their work.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{GenericClient, NoTls, Statement};

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::pool::Pool;
use crate::value::{time_text, Row, Value};

pub(crate) struct PgEntry {
    pub client: postgres::Client,
    pub stmts: HashMap<String, Statement>,
}

pub(crate) struct PgConn<'a, C: GenericClient> {
    pub client: &'a mut C,
    pub stmts: &'a mut HashMap<String, Statement>,
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::UUID => uuid::Uuid::parse_str(s)?.to_sql(ty, out),
                Type::JSON | Type::JSONB => {
                    serde_json::from_str::<serde_json::Value>(s)?.to_sql(ty, out)
                }
                Type::TIMESTAMPTZ => chrono::DateTime::parse_from_rfc3339(s)?
                    .with_timezone(&chrono::Utc)
                    .to_sql(ty, out),
                Type::DATE => s.parse::<chrono::NaiveDate>()?.to_sql(ty, out),
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Bytes(b) => b.as_slice().to_sql(ty, out),
            Value::Bool(b) => match *ty {
                Type::INT8 => i64::from(*b).to_sql(ty, out),
                _ => b.to_sql(ty, out),
            },
            Value::Uuid(u) => match *ty {
                Type::TEXT | Type::VARCHAR => u.to_string().to_sql(ty, out),
                _ => u.to_sql(ty, out),
            },
            Value::Time(t) => match *ty {
                Type::TEXT | Type::VARCHAR => time_text(t).to_sql(ty, out),
                _ => t.to_sql(ty, out),
            },
            Value::Date(d) => d.to_sql(ty, out),
            Value::Json(j) => match *ty {
                Type::TEXT | Type::VARCHAR => j.to_string().to_sql(ty, out),
                _ => j.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn read_value(row: &postgres::Row, i: usize) -> Result<Value> {
    fn get<'a, T: postgres::types::FromSql<'a>>(
        row: &'a postgres::Row,
        i: usize,
    ) -> Result<Option<T>> {
        row.try_get::<_, Option<T>>(i).map_err(StoreError::from)
    }
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::BOOL => get::<bool>(row, i)?.map_or(Value::Null, Value::Bool),
        Type::INT2 => get::<i16>(row, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT4 => get::<i32>(row, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT8 => get::<i64>(row, i)?.map_or(Value::Null, Value::Int),
        Type::FLOAT4 => get::<f32>(row, i)?.map_or(Value::Null, |v| Value::Real(v.into())),
        Type::FLOAT8 => get::<f64>(row, i)?.map_or(Value::Null, Value::Real),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map_or(Value::Null, Value::Bytes),
        Type::UUID => get::<uuid::Uuid>(row, i)?.map_or(Value::Null, Value::Uuid),
        Type::TIMESTAMPTZ => {
            get::<chrono::DateTime<chrono::Utc>>(row, i)?.map_or(Value::Null, Value::Time)
        }
        Type::DATE => get::<chrono::NaiveDate>(row, i)?.map_or(Value::Null, Value::Date),
        Type::JSON | Type::JSONB => {
            get::<serde_json::Value>(row, i)?.map_or(Value::Null, Value::Json)
        }
        _ => get::<String>(row, i)?.map_or(Value::Null, Value::Text),
    })
}

impl<C: GenericClient> PgConn<'_, C> {
    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        // A bounded cache: ad-hoc statements must not grow it forever.
        if self.stmts.len() > 256 {
            self.stmts.clear();
        }
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient> Conn for PgConn<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let stmt = self.prepare(sql)?;
        let rows = self.client.query(&stmt, &refs(params))?;
        let cols: Arc<[String]> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut vals = Vec::with_capacity(cols.len());
            for i in 0..cols.len() {
                vals.push(read_value(r, i)?);
            }
            out.push(Row::new(cols.clone(), vals));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let stmt = self.prepare(sql)?;
        Ok(self.client.execute(&stmt, &refs(params))?)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    // Bulk load (import): binary COPY, the column types taken from the table itself.
    fn copy_in(&mut self, table: &str, cols: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let list = cols.join(", ");
        let probe = self.prepare(&format!("SELECT {list} FROM {table} LIMIT 0"))?;
        let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
        let copy = format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)");
        let sink = self.client.copy_in(copy.as_str())?;
        let mut w = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        for r in rows {
            if r.len() != types.len() {
                return Err(StoreError::Backend(format!("copy {table}: ragged row")));
            }
            w.write(&refs(r))?;
        }
        Ok(w.finish()?)
    }
    // end of bulk load
}

pub(crate) struct PgEngine {
    pub pool: Pool<PgEntry>,
}

impl Drop for PgEngine {
    /// The blocking client closes through its own runtime, which must not happen on an async
    /// worker thread: close the idle connections on a plain thread.
    fn drop(&mut self) {
        let conns = self.pool.drain();
        if conns.is_empty() {
            return;
        }
        if let Ok(h) = std::thread::Builder::new()
            .name("anxin-pg-close".into())
            .spawn(move || drop(conns))
        {
            let _ = h.join();
        }
    }
}

impl PgEngine {
    pub fn open(url: &str, max: usize) -> Result<Self> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Backend(format!("database url: {e}")))?;
        let pool = Pool::new(
            max,
            move || {
                let client = config.connect(NoTls)?;
                Ok(PgEntry {
                    client,
                    stmts: HashMap::new(),
                })
            },
            |e: &mut PgEntry| !e.client.is_closed(),
        );
        Ok(Self { pool })
    }
}
