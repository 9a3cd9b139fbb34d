//! zh-CN and English texts for plans and activation (owner: plans & activation): page labels and error codes, in the shape of
//! [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[];
