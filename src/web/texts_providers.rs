//! zh-CN and English texts for providers, their offers, orders and receiving (owner: providers): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    ("prov.nav", "服务商与订单", "Providers & orders"),
    ("prov.portal_nav", "我的供货", "My offers & orders"),
];
