//! Pages for volunteers, call-outs and welfare checks (owner: volunteers & welfare). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
