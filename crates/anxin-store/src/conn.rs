//! One connection interface over both backends, and the SQL dialect differences.
//!
//! Area code writes SQL once with `$1` placeholders; [`Dialect`] supplies the few fragments that
//! differ (list membership, case-insensitive match). The SQLite connection rewrites `$N` to `?N`.

use crate::error::Result;
use crate::value::{Row, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `col IN (the JSON array bound at $n)`: one parameter however long the list.
    pub fn in_json_list(self, col: &str, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each(${n}))"),
            Dialect::Postgres => {
                format!("{col}::text IN (SELECT jsonb_array_elements_text(${n}::jsonb))")
            }
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// A connection or open transaction of either backend.
pub trait Conn {
    fn dialect(&self) -> Dialect;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;
    /// Several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Bulk load (PostgreSQL only): `rows` (values of `cols`, in order) into `table` with one
    /// binary `COPY … FROM STDIN`. Used by the store's bulk path (`bulk.rs`).
    fn copy_in(&mut self, table: &str, cols: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        let _ = (table, cols, rows);
        Err(crate::error::StoreError::Backend(
            "COPY is a PostgreSQL bulk path".into(),
        ))
    }

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
    /// A single integer (`count(*)`, `max(...)`), null as zero.
    fn query_i64(&mut self, sql: &str, params: &[Value]) -> Result<i64> {
        let row = self.query_one(sql, params)?;
        match row.as_ref().and_then(|r| r.values().first()) {
            Some(Value::Int(i)) => Ok(*i),
            _ => Ok(0),
        }
    }
}

/// Rewrite `$N` placeholders as SQLite's numbered `?N`, leaving string literals alone.
pub fn sqlite_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_str = !in_str;
        }
        if c == '$' && !in_str && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_strings_only() {
        assert_eq!(
            sqlite_placeholders("SELECT '$1', $2 WHERE a = $10"),
            "SELECT '$1', ?2 WHERE a = ?10"
        );
    }
}
