//! The readings store: raw readings and rollups, apart from the main store.
