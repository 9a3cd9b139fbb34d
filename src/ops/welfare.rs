//! The welfare-check escalation job and call-out notifications (owner: volunteers & welfare). SCAFFOLD.
