//! /api/v1/devices, readings, alarms.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
