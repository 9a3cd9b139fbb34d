//! zh-CN and English texts for the emergency fund ledger and its public view (owner: fund ledger): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    ("fund.nav", "应急资金", "Emergency fund"),
    ("fund.resident_nav", "资金公开", "Fund accounts"),
];
