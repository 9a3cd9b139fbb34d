//! Pages for plans and activation (owner: plans & activation). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
