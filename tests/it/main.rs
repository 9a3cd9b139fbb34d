//! The one integration-test binary (one link, not many). Story tests run against both stores
//! through `both_stores!`; see `support`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod auth;
mod campaign_notices;
mod campaigns;
mod channels;
mod crash;
mod demo;
mod funds;
mod hazards;
mod import_bulk;
mod import_export;
mod incidents;
mod inspections;
mod integrity;
mod isolation;
mod maps;
mod monitor;
mod openapi;
mod ops;
mod passes;
mod people;
mod places;
mod plans;
mod platform;
mod providers;
mod risks;
mod rush_crash;
mod store_engine;
mod supervision;
mod supplies;
mod tree;
mod volunteers;
mod warnings;
mod web;
mod world;
