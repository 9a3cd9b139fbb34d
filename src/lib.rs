//! Anxin: community resilience and emergency management.
//!
//! - [`config`]: typed configuration (file + `ANXIN_` environment), the generated example.
//! - [`app`]: building the running application (store, keys, services) from configuration.
//! - [`http`]: the axum edge: routes, request guards, the one error shape.
//! - [`platform`]: services every capability uses: notifications, jobs, live events, retention,
//!   audit, metrics, backup.
//! - [`cli`]: the `anxin` command line.
//!
//! Domain rules live in `anxin-domain`, storage in `anxin-store`, key handling in `anxin-crypto`.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_hazards;
pub mod demo_monitor;
pub mod demo_ops;
pub mod demo_supplies;
pub mod divisions;
pub mod hazards;
pub mod http;
pub mod io;
pub mod monitor;
pub mod ops;
pub mod platform;
pub mod supplies;
pub mod warn;
pub mod web;
