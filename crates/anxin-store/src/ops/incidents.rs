//! Incident operations: log, tasks, situation reports, shelter stays, close and review (owner: incident operations). SCAFFOLD.
