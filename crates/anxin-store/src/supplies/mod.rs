//! Emergency supplies (issue 7): reserves, distribution campaigns, providers, dispatch across
//! communities and the emergency fund ledger.
//!
//! Modules: `reserves` (items, depots, lots, the append-only movement ledger and the balances
//! derived from it, reserve norms and the gap report, expiry warnings; [`reserves::post`] is the
//! one way stock moves, used by campaigns, provider deliveries and dispatch), `dispatch` (transfers
//! across communities proposed by a minimum-cost flow over gaps and depot stocks, executed as
//! transfer movements), `campaigns` (物资发放: campaigns, slots, reservations with single-use pickup
//! codes, delivery orders, the activation step), `providers` (服务商: offers, orders, receiving),
//! `funds` (应急资金: sources, spending with attachments, balances, the public view).

pub mod campaigns;
pub mod dispatch;
pub mod funds;
pub mod providers;
pub mod reserves;
