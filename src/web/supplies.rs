//! Pages for items, depots, lots, movements, balances, norms, the gap report, expiry, dispatch plans (owner: reserves & dispatch). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
