//! Pages for the emergency fund ledger and its public view (owner: fund ledger). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
