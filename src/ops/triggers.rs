//! Issued warnings and raised alarms that match a plan trigger → an activation, pending confirmation unless configured away (owner: plans & activation). SCAFFOLD.
