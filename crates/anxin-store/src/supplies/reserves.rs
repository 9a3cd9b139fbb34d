//! Reserves (owner: reserves & dispatch). SCAFFOLD.
