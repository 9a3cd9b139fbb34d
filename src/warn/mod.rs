//! Warnings to people: workflow, targeting, channels, reach and CAP 1.2.

pub mod config;
