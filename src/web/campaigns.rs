//! Pages for distribution campaigns, slots, reservations (the rush), pickup codes, delivery orders (owner: campaigns). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
