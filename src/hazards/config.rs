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

impl HazardsConfig {
    /// Each grade ruled exactly once; escalation steps of at least an hour; a grade's plan
    /// term no longer than its fix term (the plan is started before the fix is due).
    pub fn validate(&self) -> Result<(), String> {
        use anxin_domain::calendar::Term;
        use anxin_domain::hazard::HazardGrade;
        if self.escalate_every_hours == 0 {
            return Err("hazards.escalate_every_hours must be at least 1".into());
        }
        if self.escalation_max_levels > 10 {
            return Err("hazards.escalation_max_levels must be at most 10".into());
        }
        for g in HazardGrade::ALL {
            let n = self.grades.iter().filter(|r| r.grade == *g).count();
            if n != 1 {
                return Err(format!(
                    "hazards.grades must rule grade \"{g}\" exactly once (found {n})"
                ));
            }
        }
        for r in &self.grades {
            if r.responsible.chars().count() > 100 {
                return Err(format!(
                    "hazards.grades ({}): responsible is longer than 100 characters",
                    r.grade
                ));
            }
            if let Some(plan) = r.plan_within {
                // The plan must be due no later than the fix (compared where the units allow).
                let fits = match (plan, r.fix_within) {
                    (Term::Hours(p), Term::Hours(f)) => p <= f,
                    (Term::Hours(p), Term::Days(f) | Term::WorkingDays(f)) => p <= 24 * f,
                    (Term::Days(p), Term::Hours(f)) => 24 * p <= f,
                    (Term::Days(p), Term::Days(f) | Term::WorkingDays(f)) => p <= f,
                    (Term::WorkingDays(p), Term::WorkingDays(f) | Term::Days(f)) => p <= f,
                    (Term::WorkingDays(_), Term::Hours(_)) => false,
                };
                if !fits {
                    return Err(format!(
                        "hazards.grades ({}): plan_within ({plan}) must not be longer than fix_within ({})",
                        r.grade, r.fix_within
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_validate_and_bad_rules_are_named() {
        assert_eq!(HazardsConfig::default().validate(), Ok(()));
        let mut c = HazardsConfig::default();
        c.grades.pop();
        assert!(c.validate().unwrap_err().contains("major"));
        let mut c = HazardsConfig::default();
        c.grades.push(c.grades[0].clone());
        assert!(c.validate().unwrap_err().contains("minor"));
        let mut c = HazardsConfig::default();
        c.grades[1].fix_within = "12 hours".parse().unwrap();
        assert!(c.validate().unwrap_err().contains("plan_within"));
        let c = HazardsConfig {
            escalate_every_hours: 0,
            ..HazardsConfig::default()
        };
        assert!(c.validate().is_err());
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

/// Supervision (红黄牌): the thresholds that give a community a yellow or a red card. A figure
/// that trips a threshold is named on the card as its reason ("按期整改率 62% < 70%").
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
    /// Yellow card at this many major hazards whose plan was not started in time (0: never).
    pub yellow_plan_late_at_least: u32,
    /// Red card at this many major hazards whose plan was not started in time (0: never).
    pub red_plan_late_at_least: u32,
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
            yellow_plan_late_at_least: 1,
            red_plan_late_at_least: 3,
        }
    }
}

impl SupervisionConfig {
    /// The thresholds as the scoring in `anxin_store::hazards::supervision` takes them.
    pub fn thresholds(&self) -> anxin_store::hazards::supervision::Thresholds {
        anxin_store::hazards::supervision::Thresholds {
            yellow_on_time_below: self.yellow_on_time_below,
            red_on_time_below: self.red_on_time_below,
            yellow_overdue_at_least: i64::from(self.yellow_overdue_at_least),
            red_overdue_at_least: i64::from(self.red_overdue_at_least),
            yellow_inspections_below: self.yellow_inspections_below,
            red_inspections_below: self.red_inspections_below,
            yellow_plan_late_at_least: i64::from(self.yellow_plan_late_at_least),
            red_plan_late_at_least: i64::from(self.red_plan_late_at_least),
        }
    }
}
