//! The emergency fund ledger (owner: fund ledger). SCAFFOLD.
