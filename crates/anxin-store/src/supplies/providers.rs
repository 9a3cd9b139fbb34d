//! Providers, offers and orders (owner: providers). SCAFFOLD.
