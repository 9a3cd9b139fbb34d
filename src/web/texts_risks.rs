//! zh-CN and English texts for the working-day calendar, the risk register and the risk map (owner: calendar & risks): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[
    ("risk.nav", "风险登记", "Risk register"),
    ("riskmap.nav", "风险地图", "Risk map"),
    ("cal.nav", "工作日历", "Working-day calendar"),
];
