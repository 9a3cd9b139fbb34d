//! Emergency operations (issue 5): plans, one-step activation, incidents, volunteers, welfare
//! checks, passes.
//!
//! Activation is one transaction: [`activation`] creates the incident and then runs every
//! [`ActivationStep`] of [`STEPS`] in order inside the same `Tx`, so a failure half-way leaves
//! nothing behind. A capability adds its own step by implementing the trait and listing it in
//! [`STEPS`] (the supplies capability adds its distribution campaigns this way). Deactivation
//! runs the steps' `deactivate` in reverse order, then closes the incident.
//!
//! Modules: `plans` (plans and versions, review flags, trigger matching), `activation` (the
//! engine, the incident/task/shelter steps, confirmation of triggered activations), `incidents`
//! (log, tasks, situation reports, shelter stays, close and after-action review), `volunteers`
//! (registry, call-outs, attendance and hours), `welfare` (不漏一人: the checks, escalation, the
//! board), `passes` (entry passes, gate records, contact look-up).

pub mod activation;
pub mod incidents;
pub mod passes;
pub mod plans;
pub mod volunteers;
pub mod welfare;

use anxin_domain::plan::PlanBody;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

/// What an activation step is given: the incident being created and the plan version's body.
#[derive(Debug, Clone)]
pub struct Activation<'a> {
    pub incident_id: Uuid,
    /// The node the plan is activated for (a community, a street, a district).
    pub node_id: Uuid,
    pub plan_id: Uuid,
    pub plan_version_id: Uuid,
    pub body: &'a PlanBody,
    /// A drill: everything is created the same way, marked as exercise by the incident.
    pub exercise: bool,
    pub at: DateTime<Utc>,
    /// Who activated (or confirmed); `None` for the platform.
    pub actor: Option<Uuid>,
    /// `node_id` and every node below it, expanded once for all steps.
    pub nodes: &'a [Uuid],
}

/// One thing activation creates (and deactivation closes). Runs inside the activation's
/// transaction: an error rolls back the whole activation.
pub trait ActivationStep: Sync {
    /// Stable name: the key of this step's counts in `incidents.summary`.
    fn name(&self) -> &'static str;
    /// Create what the step creates for `a`; returns its counts for the summary.
    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value>;
    /// Close what the step created for `incident_id` (called in reverse order of [`STEPS`]).
    fn deactivate(
        &self,
        tx: &mut Tx,
        incident_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<serde_json::Value>;
}

/// Every activation step, in the order they run (deactivation: the reverse).
pub static STEPS: &[&dyn ActivationStep] = &[
    &activation::TaskStep,
    &volunteers::CalloutStep,
    &welfare::WelfareStep,
    &activation::ShelterStep,
];

/// An incident: one activation of a plan version for a node.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: Uuid,
    pub node_id: Uuid,
    pub plan_id: Uuid,
    pub plan_version_id: Uuid,
    pub title: String,
    pub exercise: bool,
    /// pending, declined, active, closed, reviewed
    pub status: String,
    /// manual, warning, alarm
    pub trigger_kind: String,
    pub trigger_id: Option<Uuid>,
    /// Counts of each activation step.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub summary: serde_json::Value,
    pub activated_by: Option<Uuid>,
    pub activated_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<Uuid>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Incident {
    pub fn from_row(r: &Row) -> Result<Self> {
        let summary: String = r.get("summary")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            plan_id: r.get("plan_id")?,
            plan_version_id: r.get("plan_version_id")?,
            title: r.get("title")?,
            exercise: r.get("exercise")?,
            status: r.get("status")?,
            trigger_kind: r.get("trigger_kind")?,
            trigger_id: r.get("trigger_id")?,
            summary: serde_json::from_str(&summary)
                .map_err(|e| StoreError::Backend(format!("stored summary: {e}")))?,
            activated_by: r.get("activated_by")?,
            activated_at: r.get("activated_at")?,
            confirmed_by: r.get("confirmed_by")?,
            confirmed_at: r.get("confirmed_at")?,
            closed_by: r.get("closed_by")?,
            closed_at: r.get("closed_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// Incidents (and what hangs off them) are placed by their node.
pub const INCIDENT_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "i.node_id",
    grid: None,
    household: None,
};

/// Who may see incidents: everyone who works on them.
pub fn incident_reach(caller: &Caller) -> Reach {
    use anxin_domain::roles::Permission as P;
    let mut r = caller.reach(P::RunIncidents);
    r.merge(caller.reach(P::ActivatePlans));
    r.merge(caller.reach(P::ApproveReports));
    r
}

/// An incident within `reach`; `NotFound` outside it, exactly like a missing one.
pub fn load_incident(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Incident> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), INCIDENT_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT i.* FROM incidents i WHERE i.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Incident::from_row(&row)
}

/// An incident the caller may see.
pub fn get_incident(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Incident> {
    load_incident(conn, &incident_reach(caller), id)
}

/// Append a line to an incident's timeline. `summary` carries no personal data in clear
/// (masked names at most); `reference` names the record it is about.
pub fn log(
    tx: &mut Tx,
    incident_id: Uuid,
    kind: &str,
    summary: &str,
    reference: Option<(&str, Uuid)>,
) -> Result<()> {
    let id = tx.new_id();
    let at = tx.now();
    let actor = tx.ctx().actor;
    let (ref_kind, ref_id) = match reference {
        Some((k, i)) => (Some(k.to_owned()), Some(i)),
        None => (None, None),
    };
    tx.execute_unlogged(
        "INSERT INTO incident_log (id, incident_id, at, actor, kind, summary, ref_kind, ref_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &params![id, incident_id, at, actor, kind, summary, ref_kind, ref_id],
    )?;
    Ok(())
}
