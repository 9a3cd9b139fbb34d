//! Pages for checklist templates, schedules, to-do and inspections (owner: inspections). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
