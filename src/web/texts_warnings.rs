//! zh-CN and English texts for warnings, their channels, deliveries and CAP: page labels and error codes
//! (`area.reason`), in the shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[];
