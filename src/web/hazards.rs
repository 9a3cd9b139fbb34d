//! Pages for the hazard ledger (owner: hazard ledger). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
