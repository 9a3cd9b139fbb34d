//! Pages for the working-day calendar, the risk register and the risk map (owner: calendar & risks). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
