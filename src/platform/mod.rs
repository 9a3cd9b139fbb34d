//! Services every capability uses.

pub mod metrics;
