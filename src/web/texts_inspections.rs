//! zh-CN and English texts for checklist templates, schedules, to-do and inspections (owner: inspections): page labels and error codes, in the
//! shape of [`super::i18n`]'s table.

pub const TEXTS: &[(&str, &str, &str)] = &[("insp.nav", "巡检", "Inspections")];
