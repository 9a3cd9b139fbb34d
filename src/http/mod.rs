//! The HTTP edge. Handlers take request guards that state the role they need
//! (`guard::Staff`, `guard::Resident`, …), call area stores with the caller's scope, and return
//! `Result<_, ApiError>`: the one place where errors become statuses and the JSON error shape
//! `{"error":{"code","message","details"}}`.

pub mod admin;
pub mod auth;
pub mod campaigns;
pub mod error;
pub mod funds;
pub mod guard;
pub mod hazards;
pub mod health;
pub mod incidents;
pub mod inspections;
pub mod io;
pub mod live;
pub mod map;
pub mod monitor;
pub mod notify_callbacks;
pub mod observe;
pub mod openapi;
pub mod passes;
pub mod people;
pub mod places;
pub mod plans;
pub mod providers;
pub mod resident_channels;
pub mod risks;
pub mod routes;
pub mod supervision;
pub mod supplies;
pub mod tree;
pub mod volunteers;
pub mod warnings;

use axum::Router;

use crate::app::App;

pub use error::ApiError;

/// Every route of the application, recorded: the isolation matrix and the API document walk it.
pub fn table() -> routes::Table {
    routes::Table::new()
        .merge(health::routes())
        .merge(tree::routes())
        .merge(people::routes())
        .merge(places::routes())
        .merge(map::routes())
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(live::routes())
        .merge(io::routes())
        .merge(monitor::routes())
        .merge(warnings::routes())
        .merge(plans::routes())
        .merge(volunteers::routes())
        .merge(incidents::routes())
        .merge(passes::routes())
        .merge(inspections::routes())
        .merge(hazards::routes())
        .merge(risks::routes())
        .merge(supervision::routes())
        .merge(supplies::routes())
        .merge(campaigns::routes())
        .merge(providers::routes())
        .merge(funds::routes())
        .merge(resident_channels::routes())
        .merge(notify_callbacks::routes())
        .merge(crate::web::routes())
        .merge(openapi::routes())
}

/// The application's router: every route of [`table`], with the form CSRF check and the
/// per-address rate limit in front of all of them.
pub fn router(app: App) -> Router {
    let (router, _) = table().into_parts();
    router
        .layer(axum::middleware::from_fn(guard::form_csrf))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::platform::ratelimit::by_address,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .with_state(app)
}
