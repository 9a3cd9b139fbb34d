//! SCAFFOLD (owner: see mod.rs).
