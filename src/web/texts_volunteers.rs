//! zh-CN and English texts for volunteers, call-outs and welfare checks (owner: volunteers & welfare): page labels and error codes, in the shape of
//! [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[];
