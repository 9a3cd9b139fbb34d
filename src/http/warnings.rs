//! /api/v1/warnings, deliveries, reach, CAP.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
