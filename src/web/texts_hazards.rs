//! zh-CN and English texts for the hazard ledger (owner: hazard ledger): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[("hz.nav", "隐患台账", "Hazard ledger")];
