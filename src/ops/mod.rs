//! Emergency operations on the binary's side: what reacts to other parts of the system
//! (issued warnings and raised alarms that match a plan's trigger; welfare checks that wait too
//! long) and the notifications that go with it. The records and the one-transaction activation
//! live in `anxin-store` `ops`.

pub mod triggers;
pub mod welfare;
