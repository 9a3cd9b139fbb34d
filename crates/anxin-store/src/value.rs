//! Values crossing the storage boundary, and rows coming back.
//!
//! Both backends speak [`Value`]: SQLite stores UUIDs and times as canonical text, PostgreSQL as
//! `uuid` and `timestamptz`. Reading converts back, so area code never sees a backend type.

use crate::error::StoreError;
use base64::Engine;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Date(NaiveDate),
    Json(serde_json::Value),
}

/// The one text form of an instant in SQLite: fixed width so text order is time order.
pub fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Value {
    /// The canonical JSON form used in change-log images and logical backups.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(i) => J::from(*i),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Text(s) => J::String(s.clone()),
            Value::Bytes(b) => J::String(format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )),
            Value::Bool(b) => J::Bool(*b),
            Value::Uuid(u) => J::String(u.to_string()),
            Value::Time(t) => J::String(time_text(t)),
            Value::Date(d) => J::String(d.to_string()),
            Value::Json(j) => j.clone(),
        }
    }
}

macro_rules! from_impl {
    ($t:ty, $v:ident, $e:expr) => {
        impl From<$t> for Value {
            fn from($v: $t) -> Self {
                $e
            }
        }
    };
}
from_impl!(i64, v, Value::Int(v));
from_impl!(i32, v, Value::Int(i64::from(v)));
from_impl!(u32, v, Value::Int(i64::from(v)));
from_impl!(f64, v, Value::Real(v));
from_impl!(bool, v, Value::Bool(v));
from_impl!(String, v, Value::Text(v));
from_impl!(&str, v, Value::Text(v.to_owned()));
from_impl!(&String, v, Value::Text(v.clone()));
from_impl!(Vec<u8>, v, Value::Bytes(v));
from_impl!(&[u8], v, Value::Bytes(v.to_vec()));
from_impl!(Uuid, v, Value::Uuid(v));
from_impl!(DateTime<Utc>, v, Value::Time(v));
from_impl!(NaiveDate, v, Value::Date(v));
from_impl!(serde_json::Value, v, Value::Json(v));

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A row: column names shared by all rows of one result.
#[derive(Debug, Clone)]
pub struct Row {
    cols: Arc<[String]>,
    vals: Vec<Value>,
}

impl Row {
    pub fn new(cols: Arc<[String]>, vals: Vec<Value>) -> Self {
        Self { cols, vals }
    }
    pub fn columns(&self) -> &[String] {
        &self.cols
    }
    pub fn values(&self) -> &[Value] {
        &self.vals
    }
    pub fn raw(&self, col: &str) -> Result<&Value, StoreError> {
        self.cols
            .iter()
            .position(|c| c == col)
            .map(|i| &self.vals[i])
            .ok_or_else(|| StoreError::Backend(format!("no column {col} in result")))
    }
    pub fn get<T: FromValue>(&self, col: &str) -> Result<T, StoreError> {
        T::from_value(self.raw(col)?)
            .map_err(|why| StoreError::Backend(format!("column {col}: {why}")))
    }
    /// The row as a JSON object, in column order.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (c, v) in self.cols.iter().zip(&self.vals) {
            m.insert(c.clone(), v.to_json());
        }
        serde_json::Value::Object(m)
    }
}

/// Conversion out of a [`Value`], tolerant of each backend's storage form.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn wrong(v: &Value, want: &str) -> String {
    format!("expected {want}, found {}", kind(v))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Int(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Uuid(_) => "uuid",
        Value::Time(_) => "time",
        Value::Date(_) => "date",
        Value::Json(_) => "json",
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            v => Err(wrong(v, "integer")),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(f) => Ok(*f),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Ok(*i as f64),
            v => Err(wrong(v, "real")),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            v => Err(wrong(v, "bool")),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            Value::Uuid(u) => Ok(u.to_string()),
            Value::Json(j) => Ok(j.to_string()),
            v => Err(wrong(v, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            v => Err(wrong(v, "bytes")),
        }
    }
}

impl FromValue for Uuid {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Uuid(u) => Ok(*u),
            Value::Text(s) => Uuid::parse_str(s).map_err(|e| e.to_string()),
            v => Err(wrong(v, "uuid")),
        }
    }
}

impl FromValue for DateTime<Utc> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Time(t) => Ok(*t),
            Value::Text(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| e.to_string()),
            v => Err(wrong(v, "time")),
        }
    }
}

impl FromValue for NaiveDate {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Date(d) => Ok(*d),
            Value::Text(s) => s.parse().map_err(|e: chrono::ParseError| e.to_string()),
            v => Err(wrong(v, "date")),
        }
    }
}

impl FromValue for serde_json::Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Json(j) => Ok(j.clone()),
            Value::Text(s) => serde_json::from_str(s).map_err(|e| e.to_string()),
            v => Err(wrong(v, "json")),
        }
    }
}

/// Build a parameter list: `&params![a, b, c]` (an array; `.to_vec()` to extend it).
#[macro_export]
macro_rules! params {
    () => { [$crate::Value::Null; 0] };
    ($($v:expr),+ $(,)?) => { [$($crate::Value::from($v)),+] };
}
