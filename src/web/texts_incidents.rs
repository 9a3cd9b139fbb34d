//! zh-CN and English texts for incident operations (owner: incident operations): page labels and error codes, in the shape of
//! [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[];
