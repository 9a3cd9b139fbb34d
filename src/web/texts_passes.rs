//! zh-CN and English texts for passes and access records (owner: passes): page labels and error codes, in the shape of
//! [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[];
