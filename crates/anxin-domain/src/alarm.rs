//! The alarm lifecycle: active/cleared × unacknowledged/acknowledged.
