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
