//! The one integration-test binary (one link, not many). Story tests run against both stores
//! through `both_stores!`; see `support`.

#[macro_use]
mod support;

mod store_engine;
mod tree;
mod people;
mod world;
mod integrity;
