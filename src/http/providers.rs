//! /api/v1 routes for providers, their offers, orders and receiving (owner: providers). SCAFFOLD.

use crate::http::routes::Table;

pub fn routes() -> Table {
    Table::new()
}

#[derive(utoipa::OpenApi)]
#[openapi()]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
