//! Dispatch across communities (owner: reserves & dispatch). SCAFFOLD.
