//! zh-CN and English texts for items, depots, lots, movements, balances, norms, the gap report, expiry, dispatch plans (owner: reserves & dispatch): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[("stock.nav", "应急物资", "Reserves")];
