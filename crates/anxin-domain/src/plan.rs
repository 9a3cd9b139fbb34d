//! Emergency plans (预案): what a community has decided to do when a risk hits, and the rules
//! that say when a plan applies.
//!
//! A plan is written by the community for itself (seed 001: plans copied from above fail), and
//! versioned: the body below is one version. Activation (in `anxin-store` `ops::activation`)
//! reads the body and creates, in one transaction, the incident, its tasks, the volunteer
//! call-outs, the welfare checks and the shelters opened; a later capability (supplies) adds its
//! own step there and reads its own part of the body (`supplies`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::warning::WarningLevel;

/// One version of a plan: everything activation needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// The risks the plan covers (flood, fire, gas, structural, public_health, …).
    pub risks: Vec<String>,
    /// When the plan applies; empty means by hand only.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Roles of the plan (指挥长, 联络员, …) and who fills them.
    #[serde(default)]
    pub roles: Vec<PlanRole>,
    /// Tasks created at activation, each for a role, due a number of minutes after it.
    #[serde(default)]
    pub tasks: Vec<TaskTemplate>,
    /// Facilities (shelters) opened at activation.
    #[serde(default)]
    pub shelters: Vec<Uuid>,
    /// Volunteers called out at activation.
    #[serde(default)]
    pub volunteers: Option<VolunteerCall>,
    /// Whether every vulnerable person in scope gets a welfare check.
    #[serde(default)]
    pub welfare_checks: bool,
    /// Minutes an unchecked welfare check waits before it escalates.
    #[serde(default = "default_welfare_escalation")]
    pub welfare_escalate_minutes: u32,
    /// Supplies to release: read by the supplies capability's activation step.
    #[serde(default)]
    pub supplies: Vec<serde_json::Value>,
}

fn default_welfare_escalation() -> u32 {
    30
}

/// What starts a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An issued warning at this level or higher, of one of these categories (empty: any).
    Warning {
        min_level: WarningLevel,
        #[serde(default)]
        categories: Vec<String>,
    },
    /// An alarm raised on a device of one of these types (empty: any) by a rule of these names
    /// (empty: any).
    Alarm {
        #[serde(default)]
        device_types: Vec<String>,
        #[serde(default)]
        rules: Vec<String>,
    },
}

/// A role in the plan and the account that fills it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRole {
    /// Stable key tasks refer to (`commander`, `liaison`, …).
    pub key: String,
    /// Its name as the community calls it (指挥长).
    pub name: String,
    /// Who fills it; a task of an unfilled role goes to the activating user.
    pub user_id: Option<Uuid>,
}

/// A task created at activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The plan role that owns it.
    pub role: String,
    /// Due this many minutes after activation.
    pub due_minutes: u32,
}

/// Volunteers to call: how many, with which skills (empty: any), from the activated scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolunteerCall {
    pub count: u32,
    #[serde(default)]
    pub skills: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation, trigger matching, review due.

use crate::warning::WarningCategory;
use chrono::{DateTime, Duration, Utc};

/// The longest a task may be due after activation (a week).
pub const MAX_DUE_MINUTES: u32 = 7 * 24 * 60;
/// The most volunteers one plan calls out.
pub const MAX_VOLUNTEERS: u32 = 10_000;
/// Bounds of the welfare escalation timer, in minutes.
pub const WELFARE_ESCALATE_RANGE: std::ops::RangeInclusive<u32> = 5..=1440;
const TEXT_MAX: usize = 140;
const DESCRIPTION_MAX: usize = 2_000;
const KEY_MAX: usize = 40;
/// The longest review period a plan may have (three years).
pub const MAX_REVIEW_PERIOD_DAYS: i64 = 3 * 366;

/// A refused plan body: the code and the field it is about (`tasks[2].role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInvalid {
    pub code: &'static str,
    pub field: String,
}

fn invalid(code: &'static str, field: impl Into<String>) -> PlanInvalid {
    PlanInvalid {
        code,
        field: field.into(),
    }
}

/// A short text: required, at most `max` characters, no control characters.
fn check_text(field: &str, s: &str, max: usize, required: bool) -> Result<(), PlanInvalid> {
    let t = s.trim();
    if t.is_empty() {
        return if required {
            Err(invalid("value.required", field))
        } else {
            Ok(())
        };
    }
    if t.chars().count() > max {
        return Err(invalid("value.too_long", field));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(invalid("value.invalid", field));
    }
    Ok(())
}

/// A stable key: lower-case ASCII letters, digits and `_`, starting with a letter.
fn check_key(field: &str, s: &str) -> Result<(), PlanInvalid> {
    if s.is_empty() {
        return Err(invalid("value.required", field));
    }
    let ok = s.len() <= KEY_MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid("plan.key_invalid", field))
    }
}

impl PlanBody {
    /// Check the body on its own (what needs no database): every error names its field.
    /// References to users and facilities are checked by the store against the plan's node.
    pub fn validate(&self) -> Result<(), PlanInvalid> {
        if self.risks.is_empty() {
            return Err(invalid("plan.no_risks", "risks"));
        }
        for (i, r) in self.risks.iter().enumerate() {
            check_text(&format!("risks[{i}]"), r, KEY_MAX, true)?;
            if self.risks[..i].iter().any(|o| o.trim() == r.trim()) {
                return Err(invalid("plan.duplicate", format!("risks[{i}]")));
            }
        }
        for (i, t) in self.triggers.iter().enumerate() {
            match t {
                Trigger::Warning { categories, .. } => {
                    for (j, c) in categories.iter().enumerate() {
                        if c.parse::<WarningCategory>().is_err() {
                            return Err(invalid(
                                "value.invalid",
                                format!("triggers[{i}].categories[{j}]"),
                            ));
                        }
                    }
                }
                Trigger::Alarm {
                    device_types,
                    rules,
                } => {
                    for (j, d) in device_types.iter().enumerate() {
                        check_key(&format!("triggers[{i}].device_types[{j}]"), d)?;
                    }
                    for (j, r) in rules.iter().enumerate() {
                        check_text(&format!("triggers[{i}].rules[{j}]"), r, KEY_MAX, true)?;
                    }
                }
            }
        }
        for (i, r) in self.roles.iter().enumerate() {
            check_key(&format!("roles[{i}].key"), &r.key)?;
            if self.roles[..i].iter().any(|o| o.key == r.key) {
                return Err(invalid("plan.duplicate", format!("roles[{i}].key")));
            }
            check_text(&format!("roles[{i}].name"), &r.name, KEY_MAX, true)?;
        }
        for (i, t) in self.tasks.iter().enumerate() {
            check_text(&format!("tasks[{i}].title"), &t.title, TEXT_MAX, true)?;
            check_text(
                &format!("tasks[{i}].description"),
                &t.description,
                DESCRIPTION_MAX,
                false,
            )?;
            if !self.roles.iter().any(|r| r.key == t.role) {
                return Err(invalid("plan.unknown_role", format!("tasks[{i}].role")));
            }
            if t.due_minutes > MAX_DUE_MINUTES {
                return Err(invalid(
                    "plan.out_of_range",
                    format!("tasks[{i}].due_minutes"),
                ));
            }
        }
        for (i, s) in self.shelters.iter().enumerate() {
            if self.shelters[..i].contains(s) {
                return Err(invalid("plan.duplicate", format!("shelters[{i}]")));
            }
        }
        if let Some(v) = &self.volunteers {
            if v.count == 0 || v.count > MAX_VOLUNTEERS {
                return Err(invalid("plan.out_of_range", "volunteers.count"));
            }
            for (i, s) in v.skills.iter().enumerate() {
                check_text(&format!("volunteers.skills[{i}]"), s, KEY_MAX, true)?;
            }
        }
        if !WELFARE_ESCALATE_RANGE.contains(&self.welfare_escalate_minutes) {
            return Err(invalid("plan.out_of_range", "welfare_escalate_minutes"));
        }
        Ok(())
    }

    /// The account filling a role, if any.
    pub fn role_holder(&self, key: &str) -> Option<Uuid> {
        self.roles
            .iter()
            .find(|r| r.key == key)
            .and_then(|r| r.user_id)
    }

    /// Whether an issued warning of this level and category starts the plan.
    pub fn matches_warning(&self, level: WarningLevel, category: &str) -> bool {
        self.triggers
            .iter()
            .any(|t| t.matches_warning(level, category))
    }

    /// Whether an alarm raised by a rule on a device of this type starts the plan.
    pub fn matches_alarm(&self, device_type: &str, rule: &str, alarm_type: &str) -> bool {
        self.triggers
            .iter()
            .any(|t| t.matches_alarm(device_type, rule, alarm_type))
    }
}

impl Trigger {
    /// A warning trigger matches a warning at its level or higher, of a listed category (or any
    /// when none is listed).
    pub fn matches_warning(&self, level: WarningLevel, category: &str) -> bool {
        match self {
            Trigger::Warning {
                min_level,
                categories,
            } => {
                level >= *min_level
                    && (categories.is_empty() || categories.iter().any(|c| c == category))
            }
            Trigger::Alarm { .. } => false,
        }
    }

    /// An alarm trigger matches an alarm on a listed device type (any when none is listed) by a
    /// listed rule (any when none): a rule is named by its id or by the alarm type it raises.
    pub fn matches_alarm(&self, device_type: &str, rule: &str, alarm_type: &str) -> bool {
        match self {
            Trigger::Alarm {
                device_types,
                rules,
            } => {
                (device_types.is_empty() || device_types.iter().any(|d| d == device_type))
                    && (rules.is_empty() || rules.iter().any(|r| r == rule || r == alarm_type))
            }
            Trigger::Warning { .. } => false,
        }
    }
}

/// When a plan is next due for review: `period_days` after its last review (adopting a version
/// counts as one), or after it was written when it has never been reviewed.
pub fn review_due(
    last_reviewed: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    period_days: i64,
) -> DateTime<Utc> {
    last_reviewed.unwrap_or(created) + Duration::days(period_days)
}

/// Whether a plan is overdue for review at `now`.
pub fn review_overdue(
    last_reviewed: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    period_days: i64,
    now: DateTime<Utc>,
) -> bool {
    now > review_due(last_reviewed, created, period_days)
}

/// Check a review period (days, 1 ..= three years).
pub fn check_review_period(days: i64) -> Result<(), PlanInvalid> {
    if (1..=MAX_REVIEW_PERIOD_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(invalid("plan.out_of_range", "review_period_days"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn body() -> PlanBody {
        PlanBody {
            risks: vec!["flood".into()],
            triggers: vec![Trigger::Warning {
                min_level: WarningLevel::Orange,
                categories: vec!["flood".into(), "rainstorm".into()],
            }],
            roles: vec![
                PlanRole {
                    key: "commander".into(),
                    name: "指挥长".into(),
                    user_id: None,
                },
                PlanRole {
                    key: "liaison".into(),
                    name: "联络员".into(),
                    user_id: None,
                },
            ],
            tasks: vec![TaskTemplate {
                title: "转移低洼住户".into(),
                description: String::new(),
                role: "commander".into(),
                due_minutes: 30,
            }],
            shelters: vec![],
            volunteers: Some(VolunteerCall {
                count: 5,
                skills: vec![],
            }),
            welfare_checks: true,
            welfare_escalate_minutes: 30,
            supplies: vec![],
        }
    }

    #[test]
    fn a_good_body_passes() {
        assert_eq!(body().validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_field() {
        let mut b = body();
        b.tasks.push(TaskTemplate {
            title: "x".into(),
            description: String::new(),
            role: "nobody".into(),
            due_minutes: 1,
        });
        assert_eq!(
            b.validate(),
            Err(invalid("plan.unknown_role", "tasks[1].role"))
        );
        let mut b = body();
        b.roles[1].key = "commander".into();
        assert_eq!(b.validate(), Err(invalid("plan.duplicate", "roles[1].key")));
        let mut b = body();
        b.roles[0].key = "指挥".into();
        assert_eq!(
            b.validate(),
            Err(invalid("plan.key_invalid", "roles[0].key"))
        );
        let mut b = body();
        b.risks.clear();
        assert_eq!(b.validate(), Err(invalid("plan.no_risks", "risks")));
        let mut b = body();
        b.triggers = vec![Trigger::Warning {
            min_level: WarningLevel::Red,
            categories: vec!["meteor".into()],
        }];
        assert_eq!(
            b.validate(),
            Err(invalid("value.invalid", "triggers[0].categories[0]"))
        );
        let mut b = body();
        b.tasks[0].due_minutes = MAX_DUE_MINUTES + 1;
        assert_eq!(
            b.validate(),
            Err(invalid("plan.out_of_range", "tasks[0].due_minutes"))
        );
        let mut b = body();
        b.volunteers = Some(VolunteerCall {
            count: 0,
            skills: vec![],
        });
        assert_eq!(
            b.validate(),
            Err(invalid("plan.out_of_range", "volunteers.count"))
        );
        let mut b = body();
        b.welfare_escalate_minutes = 1;
        assert_eq!(
            b.validate(),
            Err(invalid("plan.out_of_range", "welfare_escalate_minutes"))
        );
        let mut b = body();
        let s = Uuid::nil();
        b.shelters = vec![s, s];
        assert_eq!(b.validate(), Err(invalid("plan.duplicate", "shelters[1]")));
    }

    #[test]
    fn body_json_refuses_unknown_fields() {
        let v = serde_json::json!({ "risks": ["flood"], "bogus": 1 });
        assert!(serde_json::from_value::<PlanBody>(v).is_err());
        let v = serde_json::json!({ "risks": ["flood"] });
        let b: PlanBody = serde_json::from_value(v).unwrap();
        assert_eq!(b.welfare_escalate_minutes, 30);
        assert_eq!(b.validate(), Ok(()));
    }

    #[test]
    fn warning_triggers_match_level_and_category() {
        let b = body();
        assert!(b.matches_warning(WarningLevel::Red, "flood"));
        assert!(b.matches_warning(WarningLevel::Orange, "rainstorm"));
        assert!(!b.matches_warning(WarningLevel::Yellow, "flood"));
        assert!(!b.matches_warning(WarningLevel::Red, "fire"));
        assert!(!b.matches_alarm("water_level", "high", "high"));
        let any = Trigger::Warning {
            min_level: WarningLevel::Blue,
            categories: vec![],
        };
        assert!(any.matches_warning(WarningLevel::Blue, "fire"));
    }

    #[test]
    fn alarm_triggers_match_type_and_rule() {
        let t = Trigger::Alarm {
            device_types: vec!["water_level".into()],
            rules: vec!["high_water".into()],
        };
        assert!(t.matches_alarm("water_level", "high_water", "x"));
        assert!(t.matches_alarm("water_level", "r1", "high_water"));
        assert!(!t.matches_alarm("smoke", "high_water", "x"));
        assert!(!t.matches_alarm("water_level", "other", "other"));
        assert!(!t.matches_warning(WarningLevel::Red, "flood"));
        let any = Trigger::Alarm {
            device_types: vec![],
            rules: vec![],
        };
        assert!(any.matches_alarm("gas", "r", "t"));
    }

    #[test]
    fn review_due_counts_from_the_last_review() {
        let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let reviewed = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(
            review_due(None, created, 30),
            Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap()
        );
        assert_eq!(
            review_due(Some(reviewed), created, 30),
            Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap()
        );
        let due = review_due(Some(reviewed), created, 30);
        assert!(!review_overdue(Some(reviewed), created, 30, due));
        assert!(review_overdue(
            Some(reviewed),
            created,
            30,
            due + Duration::seconds(1)
        ));
        assert!(check_review_period(0).is_err());
        assert!(check_review_period(365).is_ok());
    }

    fn level() -> impl Strategy<Value = WarningLevel> {
        prop::sample::select(WarningLevel::ALL.to_vec())
    }

    proptest! {
        /// Raising a warning's level never stops a trigger from matching.
        #[test]
        fn matching_is_monotone_in_level(min in level(), a in level(), b in level()) {
            let t = Trigger::Warning { min_level: min, categories: vec![] };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            if t.matches_warning(lo, "flood") {
                prop_assert!(t.matches_warning(hi, "flood"));
            }
            prop_assert_eq!(t.matches_warning(a, "flood"), a >= min);
        }

        /// Overdue exactly when now is past the due time.
        #[test]
        fn overdue_iff_past_due(period in 1i64..1000, offset in -5000i64..5000) {
            let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            let now = created + Duration::days(period) + Duration::hours(offset);
            prop_assert_eq!(review_overdue(None, created, period, now), offset > 0);
        }
    }
}
