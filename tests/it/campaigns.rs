//! Stories of distribution campaigns, slots, reservations (the rush), pickup codes, delivery orders (owner: campaigns). SCAFFOLD.

use std::collections::HashMap;

use anxin_store::Store;
use serde_json::Value;
use uuid::Uuid;

use crate::world::World;

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made).
pub async fn a1(
    _store: &Store,
    _w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    HashMap::new()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(_path: &str, _w: &World) -> Option<Value> {
    None
}
