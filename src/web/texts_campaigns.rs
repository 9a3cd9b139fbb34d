//! zh-CN and English texts for distribution campaigns, slots, reservations (the rush), pickup codes, delivery orders (owner: campaigns): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    ("camp.nav", "物资发放", "Distribution"),
    ("camp.resident_nav", "物资预约", "Supplies"),
];
