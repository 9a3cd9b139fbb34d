//! zh-CN and English texts for supervision (红黄牌) (owner: supervision): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[("sup.nav", "督导考核", "Supervision")];
