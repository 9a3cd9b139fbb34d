//! The HTTP edge. Handlers take request guards that state the role they need
//! (`guard::Staff`, `guard::Resident`, …), call area stores with the caller's scope, and return
//! `Result<_, ApiError>`: the one place where errors become statuses and the JSON error shape
//! `{"error":{"code","message","details"}}`.

pub mod error;
pub mod health;

use axum::Router;

use crate::app::App;

pub use error::ApiError;

/// Every route of the application. The isolation matrix test reads this table.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(health::routes())
        .with_state(app)
}
