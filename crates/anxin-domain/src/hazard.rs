//! Hazards (隐患) and inspections: the closed vocabularies and the grade rules.
//!
//! A hazard moves reported → assigned → remediating → fixed → accepted (major only) → closed,
//! and may be reopened. The grade decides the deadlines and whether a third party must accept
//! the fix; the rules per grade are configuration ([`GradeRule`]), not code.
//!
//! OWNER of the state machine (transitions, who may take each, the property tests): the hazard
//! ledger. SCAFFOLD: the vocabularies and the rule shape.

use serde::{Deserialize, Serialize};

use crate::calendar::Term;

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
