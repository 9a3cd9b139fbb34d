//! Warnings, their targets and per-recipient deliveries.
