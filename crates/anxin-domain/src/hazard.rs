//! Hazards (隐患) and inspections: the closed vocabularies and the grade rules.
//!
//! A hazard moves reported → assigned → remediating → fixed → accepted (major only) → closed,
//! and may be reopened. The grade decides the deadlines and whether a third party must accept
//! the fix; the rules per grade are configuration ([`GradeRule`]), not code.
//!
//! The state machine ([`step`]): every action a hazard may take, the states it is allowed from,
//! the permission it needs ([`HazardAction::permission`]), and the rule that nothing closes a
//! hazard whose grade needs acceptance without an acceptance after its last fix. Illegal actions
//! are refused with a stable code ([`TransitionError::code`]).
//!
//! | action              | from                                   | to          | permission     |
//! |---------------------|----------------------------------------|-------------|----------------|
//! | `assign`            | reported, assigned                     | assigned    | handle_hazards |
//! | `start_remediation` | reported, assigned                     | remediating | handle_hazards |
//! | `mark_fixed`        | remediating                            | fixed       | handle_hazards |
//! | `accept`            | fixed (grades needing acceptance only) | accepted    | accept_hazards |
//! | `close`             | fixed (no acceptance needed), accepted | closed      | handle_hazards |
//! | `reopen`            | fixed, accepted, closed                | remediating | handle_hazards |
//! | `record_plan_start` | any but closed (grades with a plan rule, once) | (same)  | handle_hazards |
//! | `note`              | any                                    | (same)      | handle_hazards |

use serde::{Deserialize, Serialize};

use crate::calendar::Term;
use crate::roles::Permission;

string_enum! {
    pub enum HazardGrade: "grade" {
        /// 一般隐患: the responsible party fixes it within the rule's term.
        Minor = "minor", "一般隐患",
        /// 重大隐患: the plan must be started, the fix done, and a third party accept it.
        Major = "major", "重大隐患",
    }
}

string_enum! {
    pub enum HazardState: "state" {
        Reported = "reported", "已上报",
        Assigned = "assigned", "已交办",
        Remediating = "remediating", "整改中",
        Fixed = "fixed", "已整改",
        /// Accepted by the third party (验收): major hazards only.
        Accepted = "accepted", "已验收",
        /// 销号.
        Closed = "closed", "已销号",
    }
}

string_enum! {
    pub enum HazardSource: "source" {
        Inspection = "inspection", "巡检发现",
        Staff = "staff", "工作人员上报",
        Resident = "resident", "居民报告",
    }
}

string_enum! {
    /// What an inspection or a hazard is about.
    pub enum PlaceKind: "place_kind" {
        Dwelling = "dwelling", "住户",
        Building = "building", "楼栋",
        Facility = "facility", "设施",
        /// A compound or community node (drains of a compound, a community's fire exits).
        Node = "node", "区域",
    }
}

string_enum! {
    /// How a checklist item is answered.
    pub enum AnswerType: "answer_type" {
        /// 合格 / 不合格.
        PassFail = "pass_fail", "合格/不合格",
        /// A number, passing within [min, max].
        Number = "number", "数值",
        /// One of the item's options; the failing ones are listed.
        Choice = "choice", "单选",
        /// Free text (never fails by itself).
        Text = "text", "文字",
    }
}

string_enum! {
    /// Photo evidence an item asks for.
    pub enum PhotoRule: "photo" {
        None = "none", "不需要",
        Optional = "optional", "可选",
        /// Required when the answer fails.
        OnFail = "on_fail", "不合格时必须",
        Required = "required", "必须",
    }
}

string_enum! {
    /// How often a schedule expects an inspection of each of its targets. Periods are local
    /// (Asia/Shanghai): day `2026-12-03`, ISO week `2026-W49`, month `2026-12`, quarter `2026-Q4`
    /// (these strings are `inspections.period_key`).
    pub enum Period: "period" {
        Daily = "daily", "每天",
        Weekly = "weekly", "每周",
        Monthly = "monthly", "每月",
        Quarterly = "quarterly", "每季度",
    }
}

/// What a grade requires, from configuration (`[hazards] grades`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeRule {
    pub grade: HazardGrade,
    /// Who fixes it, as shown on the hazard when none is named (e.g. 物业服务企业).
    #[serde(default)]
    pub responsible: String,
    /// The fix must be done within this term of the hazard being found.
    pub fix_within: Term,
    /// The relevant plan must be started within this term (recorded by linking an activation).
    #[serde(default)]
    pub plan_within: Option<Term>,
    /// A third party must accept the fix before the hazard can close.
    #[serde(default)]
    pub needs_acceptance: bool,
}

/// The rules the platform ships: minor fixed by the property manager within 3 days; major: plan
/// started within 24 hours, fixed within 7 working days, accepted by a third party.
pub fn default_grade_rules() -> Vec<GradeRule> {
    vec![
        GradeRule {
            grade: HazardGrade::Minor,
            responsible: "物业服务企业".into(),
            fix_within: Term::Days(3),
            plan_within: None,
            needs_acceptance: false,
        },
        GradeRule {
            grade: HazardGrade::Major,
            responsible: "物业服务企业".into(),
            fix_within: Term::WorkingDays(7),
            plan_within: Some(Term::Hours(24)),
            needs_acceptance: true,
        },
    ]
}

string_enum! {
    /// What can be done to a hazard (each writes one `hazard_events` row).
    pub enum HazardAction: "action" {
        /// 交办: name who fixes it (a user and/or the responsible party).
        Assign = "assign", "交办",
        /// 开始整改.
        StartRemediation = "start_remediation", "开始整改",
        /// 整改完成, with evidence.
        MarkFixed = "mark_fixed", "整改完成",
        /// 验收 by the third party (grades needing acceptance only).
        Accept = "accept", "验收通过",
        /// 销号.
        Close = "close", "销号",
        /// 重新打开: the fix did not hold; history is kept, the fix, acceptance and close reset.
        Reopen = "reopen", "重新打开",
        /// 记录预案启动: link a real activation of a plan (grades with a plan rule).
        RecordPlanStart = "record_plan_start", "记录预案启动",
        /// 备注: a note (and evidence) without a change of state.
        Note = "note", "备注",
    }
}

impl HazardAction {
    /// The permission the action needs where the hazard lives.
    pub const fn permission(self) -> Permission {
        match self {
            HazardAction::Accept => Permission::AcceptHazards,
            _ => Permission::HandleHazards,
        }
    }

    /// The `hazard_events.kind` this action writes.
    pub const fn event_kind(self) -> &'static str {
        match self {
            HazardAction::Assign => "assigned",
            HazardAction::StartRemediation => "remediating",
            HazardAction::MarkFixed => "fixed",
            HazardAction::Accept => "accepted",
            HazardAction::Close => "closed",
            HazardAction::Reopen => "reopened",
            HazardAction::RecordPlanStart => "plan_started",
            HazardAction::Note => "note",
        }
    }
}

/// Where a hazard stands, as far as the state machine needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Standing {
    pub state: HazardState,
    /// Accepted by the third party since the last fix.
    pub accepted: bool,
    /// The plan's start has been recorded (an activation linked).
    pub plan_started: bool,
}

impl Standing {
    /// A hazard just reported.
    pub const fn reported() -> Self {
        Self {
            state: HazardState::Reported,
            accepted: false,
            plan_started: false,
        }
    }
}

/// Why an action was refused: a stable code (translated by the pages) and the state it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{code} (in state {state})")]
pub struct TransitionError {
    pub code: &'static str,
    pub state: HazardState,
}

/// Every code [`step`] refuses with.
pub const TRANSITION_CODES: &[&str] = &[
    "hazard.action_not_allowed",
    "hazard.acceptance_not_needed",
    "hazard.needs_acceptance",
    "hazard.plan_not_required",
    "hazard.plan_already_linked",
];

/// Take `action` on a hazard of a grade ruled by `rule` standing at `s`: its standing after, or
/// why not. Permissions are checked by the caller ([`HazardAction::permission`]).
pub fn step(
    rule: &GradeRule,
    s: Standing,
    action: HazardAction,
) -> Result<Standing, TransitionError> {
    use HazardState as S;
    let refuse = |code: &'static str| TransitionError {
        code,
        state: s.state,
    };
    let not_allowed = || refuse("hazard.action_not_allowed");
    let to = |state: HazardState| Standing { state, ..s };
    match action {
        HazardAction::Assign => match s.state {
            S::Reported | S::Assigned => Ok(to(S::Assigned)),
            _ => Err(not_allowed()),
        },
        HazardAction::StartRemediation => match s.state {
            S::Reported | S::Assigned => Ok(to(S::Remediating)),
            _ => Err(not_allowed()),
        },
        HazardAction::MarkFixed => match s.state {
            S::Remediating => Ok(Standing {
                state: S::Fixed,
                accepted: false,
                ..s
            }),
            _ => Err(not_allowed()),
        },
        HazardAction::Accept => {
            if !rule.needs_acceptance {
                return Err(refuse("hazard.acceptance_not_needed"));
            }
            match s.state {
                S::Fixed => Ok(Standing {
                    state: S::Accepted,
                    accepted: true,
                    ..s
                }),
                _ => Err(not_allowed()),
            }
        }
        HazardAction::Close => match s.state {
            S::Fixed if rule.needs_acceptance => Err(refuse("hazard.needs_acceptance")),
            S::Fixed => Ok(to(S::Closed)),
            S::Accepted if s.accepted => Ok(to(S::Closed)),
            S::Accepted => Err(refuse("hazard.needs_acceptance")),
            _ => Err(not_allowed()),
        },
        HazardAction::Reopen => match s.state {
            S::Fixed | S::Accepted | S::Closed => Ok(Standing {
                state: S::Remediating,
                accepted: false,
                ..s
            }),
            _ => Err(not_allowed()),
        },
        HazardAction::RecordPlanStart => {
            if rule.plan_within.is_none() {
                return Err(refuse("hazard.plan_not_required"));
            }
            if s.plan_started {
                return Err(refuse("hazard.plan_already_linked"));
            }
            match s.state {
                S::Closed => Err(not_allowed()),
                _ => Ok(Standing {
                    plan_started: true,
                    ..s
                }),
            }
        }
        HazardAction::Note => Ok(s),
    }
}

/// The actions `step` would allow now (for the pages' buttons).
pub fn allowed(rule: &GradeRule, s: Standing) -> Vec<HazardAction> {
    HazardAction::ALL
        .iter()
        .copied()
        .filter(|a| step(rule, s, *a).is_ok())
        .collect()
}

/// Whether a hazard closed at all is closed on time: fixed by its deadline and, under a plan
/// rule, the plan started by its deadline.
pub fn closed_on_time(
    fixed_at: Option<chrono::DateTime<chrono::Utc>>,
    fix_due_at: chrono::DateTime<chrono::Utc>,
    plan_due_at: Option<chrono::DateTime<chrono::Utc>>,
    plan_started_at: Option<chrono::DateTime<chrono::Utc>>,
) -> bool {
    let fixed = fixed_at.is_some_and(|f| f <= fix_due_at);
    let plan = match plan_due_at {
        None => true,
        Some(due) => plan_started_at.is_some_and(|p| p <= due),
    };
    fixed && plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};

    #[test]
    fn vocabularies_round_trip() {
        crate::string_enum::check_round_trip(HazardAction::ALL);
        crate::string_enum::check_round_trip(HazardState::ALL);
        crate::string_enum::check_round_trip(HazardGrade::ALL);
    }

    fn rules() -> Vec<GradeRule> {
        let mut r = default_grade_rules();
        // A third shape: acceptance without a plan rule.
        r.push(GradeRule {
            grade: HazardGrade::Major,
            responsible: String::new(),
            fix_within: Term::Days(1),
            plan_within: None,
            needs_acceptance: true,
        });
        r
    }

    #[test]
    fn the_major_path_and_its_refusals() {
        let major = &default_grade_rules()[1];
        let minor = &default_grade_rules()[0];
        let mut s = Standing::reported();
        for a in [
            HazardAction::Assign,
            HazardAction::RecordPlanStart,
            HazardAction::StartRemediation,
            HazardAction::MarkFixed,
        ] {
            s = step(major, s, a).unwrap();
        }
        assert_eq!(s.state, HazardState::Fixed);
        assert_eq!(
            step(major, s, HazardAction::Close).unwrap_err().code,
            "hazard.needs_acceptance"
        );
        assert_eq!(
            step(major, s, HazardAction::RecordPlanStart)
                .unwrap_err()
                .code,
            "hazard.plan_already_linked"
        );
        s = step(major, s, HazardAction::Accept).unwrap();
        s = step(major, s, HazardAction::Close).unwrap();
        assert_eq!(s.state, HazardState::Closed);
        // Minor: no acceptance, no plan.
        let m = step(minor, Standing::reported(), HazardAction::RecordPlanStart);
        assert_eq!(m.unwrap_err().code, "hazard.plan_not_required");
        let fixed = Standing {
            state: HazardState::Fixed,
            ..Standing::reported()
        };
        assert_eq!(
            step(minor, fixed, HazardAction::Accept).unwrap_err().code,
            "hazard.acceptance_not_needed"
        );
        assert_eq!(
            step(minor, fixed, HazardAction::Close).unwrap().state,
            HazardState::Closed
        );
        assert_eq!(HazardAction::Accept.permission(), Permission::AcceptHazards);
        for a in HazardAction::ALL
            .iter()
            .filter(|a| **a != HazardAction::Accept)
        {
            assert_eq!(a.permission(), Permission::HandleHazards, "{a}");
        }
    }

    #[test]
    fn on_time_needs_the_fix_and_the_plan_by_their_deadlines() {
        let t = |h: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(h);
        assert!(closed_on_time(Some(t(5)), t(5), None, None));
        assert!(!closed_on_time(Some(t(6)), t(5), None, None));
        assert!(!closed_on_time(Some(t(1)), t(5), Some(t(2)), None));
        assert!(!closed_on_time(Some(t(1)), t(5), Some(t(2)), Some(t(3))));
        assert!(closed_on_time(Some(t(1)), t(5), Some(t(2)), Some(t(2))));
        assert!(!closed_on_time(None, t(5), None, None));
    }

    #[test]
    fn every_state_is_reachable() {
        for rule in rules() {
            let mut seen = HashSet::new();
            let mut queue = VecDeque::from([Standing::reported()]);
            while let Some(s) = queue.pop_front() {
                if !seen.insert(s) {
                    continue;
                }
                for a in HazardAction::ALL {
                    if let Ok(n) = step(&rule, s, *a) {
                        queue.push_back(n);
                    }
                }
            }
            let states: HashSet<HazardState> = seen.iter().map(|s| s.state).collect();
            for st in HazardState::ALL {
                let expect = rule.needs_acceptance || *st != HazardState::Accepted;
                assert_eq!(states.contains(st), expect, "{st} under {rule:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Over any sequence of actions: a grade needing acceptance never closes without an accept
        /// after its last fix; a reopen clears acceptance; illegal actions leave the standing as it
        /// was and are refused with a known code.
        #[test]
        fn no_path_closes_without_acceptance(
            which in 0usize..3,
            actions in proptest::collection::vec(0usize..HazardAction::ALL.len(), 0..40),
        ) {
            let rule = &rules()[which];
            let mut s = Standing::reported();
            // Model: accepted since the last fix (independent of `Standing::accepted`).
            let mut accepted_since_fix = false;
            for i in actions {
                let a = HazardAction::ALL[i];
                match step(rule, s, a) {
                    Ok(n) => {
                        match a {
                            HazardAction::MarkFixed | HazardAction::Reopen => accepted_since_fix = false,
                            HazardAction::Accept => accepted_since_fix = true,
                            _ => {}
                        }
                        if a == HazardAction::Reopen {
                            prop_assert!(!n.accepted);
                            prop_assert_eq!(n.state, HazardState::Remediating);
                        }
                        if n.state == HazardState::Closed && s.state != HazardState::Closed {
                            prop_assert!(!rule.needs_acceptance || accepted_since_fix,
                                "closed without acceptance under {:?}", rule);
                        }
                        if n.state == HazardState::Accepted {
                            prop_assert!(rule.needs_acceptance);
                        }
                        if !matches!(a, HazardAction::RecordPlanStart) {
                            prop_assert_eq!(n.plan_started, s.plan_started);
                        }
                        s = n;
                    }
                    Err(e) => {
                        prop_assert!(TRANSITION_CODES.contains(&e.code), "{}", e.code);
                        prop_assert_eq!(e.state, s.state);
                        // Refusals are stable: the same action refused again the same way.
                        prop_assert_eq!(step(rule, s, a).unwrap_err(), e);
                    }
                }
            }
        }
    }
}
