//! Pages for supervision (红黄牌) (owner: supervision). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}
