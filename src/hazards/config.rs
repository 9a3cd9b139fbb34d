//! Configuration of hazards, risks and supervision. Each struct has one owner: `HazardsConfig`
//! the hazard ledger, `RisksConfig` calendar & risks, `SupervisionConfig` supervision.

use anxin_domain::hazard::{default_grade_rules, GradeRule};
use serde::{Deserialize, Serialize};

/// The hazard ledger: what each grade requires, and how overdue hazards escalate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HazardsConfig {
    /// Hours past its deadline after which an open hazard goes up one more level of the tree.
    pub escalate_every_hours: u32,
    /// How many levels above the community an overdue hazard may go.
    pub escalation_max_levels: u32,
    /// The rules per grade (minor, major): terms such as "3 days", "7 working days", "24 hours".
    pub grades: Vec<GradeRule>,
}

impl Default for HazardsConfig {
    fn default() -> Self {
        Self {
            escalate_every_hours: 24,
            escalation_max_levels: 2,
            grades: default_grade_rules(),
        }
    }
}

/// The risk register: how often each risk is reviewed and when owners are reminded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RisksConfig {
    /// The longest a risk may go between reviews, in months.
    pub max_review_months: u32,
    /// Days before a review is due that its owner is reminded.
    pub remind_days_before: u32,
}

impl Default for RisksConfig {
    fn default() -> Self {
        Self {
            max_review_months: 6,
            remind_days_before: 14,
        }
    }
}

/// Supervision (红黄牌): the thresholds that give a community a yellow or a red card.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionConfig {
    /// Yellow card when the share of hazards closed on time falls below this.
    pub yellow_on_time_below: f64,
    /// Red card when the share of hazards closed on time falls below this.
    pub red_on_time_below: f64,
    /// Yellow card at this many overdue hazards or more.
    pub yellow_overdue_at_least: u32,
    /// Red card at this many overdue hazards or more.
    pub red_overdue_at_least: u32,
    /// Yellow card when the share of scheduled inspections done falls below this.
    pub yellow_inspections_below: f64,
    /// Red card when the share of scheduled inspections done falls below this.
    pub red_inspections_below: f64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            yellow_on_time_below: 0.9,
            red_on_time_below: 0.7,
            yellow_overdue_at_least: 3,
            red_overdue_at_least: 10,
            yellow_inspections_below: 0.9,
            red_inspections_below: 0.7,
        }
    }
}
