//! Plans and their versions (owner: plans & activation). SCAFFOLD.
