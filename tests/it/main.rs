//! The one integration-test binary (one link, not many). Story tests run against both stores
//! through `both_stores!`; see `support`.

#[macro_use]
mod support;

mod integrity;
mod isolation;
mod people;
mod store_engine;
mod tree;
mod world;
