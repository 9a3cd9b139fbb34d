//! Entry passes, gate records and contact look-up (owner: passes). SCAFFOLD.
