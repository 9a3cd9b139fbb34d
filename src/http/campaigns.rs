//! /api/v1 routes for distribution campaigns, slots, reservations (the rush), pickup codes, delivery orders (owner: campaigns). SCAFFOLD.

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
