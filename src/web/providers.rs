//! Pages for providers, their offers, orders and receiving (owner: providers). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
