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
    /// The vulnerable people of those nodes, read once for every step that needs them
    /// ([`Activation::vulnerable`]).
    pub found: std::cell::OnceCell<Vec<InScope>>,
}

/// One vulnerable-category row of a person in an activation's nodes, with where the person
/// lives and who helps them: what the welfare checks (one per person) and the campaigns'
/// delivery orders (one per household) are made from. A person has a row per category.
#[derive(Debug, Clone)]
pub struct InScope {
    pub vulnerable_id: Uuid,
    pub person: Uuid,
    /// The vulnerable record's community (it follows the person's household).
    pub community: Uuid,
    pub created_at: DateTime<Utc>,
    /// The person's grid, else the household's, else the building's.
    pub grid: Option<Uuid>,
    pub household: Option<Uuid>,
    pub household_community: Option<Uuid>,
    /// The node of the person's building, and whether that node is a compound.
    pub building_node: Option<Uuid>,
    pub compound: Option<Uuid>,
    /// The assigned helper, when the account is enabled.
    pub helper: Option<Uuid>,
    pub name: String,
}

impl Activation<'_> {
    /// The vulnerable people whose records lie in [`Activation::nodes`], ordered by person,
    /// helper-holding rows first, then by registration: read on first use, shared by the steps.
    pub fn vulnerable(&self, conn: &mut dyn Conn) -> Result<&[InScope]> {
        if let Some(v) = self.found.get() {
            return Ok(v);
        }
        let started = std::time::Instant::now();
        let rows = vulnerable_in(conn, self.nodes)?;
        tracing::debug!(
            rows = rows.len(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "activation: vulnerable people read"
        );
        Ok(self.found.get_or_init(|| rows))
    }
}

/// What an activation reads before its write transaction ([`prepare`], on a reader
/// connection): the node's subtree and its vulnerable people. The write uses them only when
/// nothing they were read from has changed since ([`Prepared::still_current`], checked inside
/// the write), else it reads them again itself: the activation sees the same people either way,
/// and the writer (SQLite's only one) is not held while they are read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub node_id: Uuid,
    pub nodes: Vec<Uuid>,
    pub vulnerable: Vec<InScope>,
    /// The change-log position read before everything else: every change the reads saw is at
    /// or below it, every change they did not see above it.
    pub seen: i64,
}

/// The logged tables [`vulnerable_in`] and the subtree read (`nodes` also for the compounds).
const PREPARED_FROM: &[&str] = &[
    "nodes",
    "vulnerable",
    "people",
    "households",
    "dwellings",
    "buildings",
    "users",
];

/// Read, before the write, what an activation for `node_id` needs of the people in scope.
pub fn prepare(conn: &mut dyn Conn, node_id: Uuid) -> Result<Prepared> {
    let started = std::time::Instant::now();
    // First: positions are taken under the counter row just before commit, so a change committed
    // after this read has a larger position, and one before it is seen by the reads below.
    let seen = conn.query_i64("SELECT last FROM log_counter WHERE id = 1", &[])?;
    let nodes = plans::subtree(conn, node_id)?;
    let vulnerable = vulnerable_in(conn, &nodes)?;
    tracing::debug!(
        rows = vulnerable.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "activation: prepared before the write"
    );
    Ok(Prepared {
        node_id,
        nodes,
        vulnerable,
        seen,
    })
}

impl Prepared {
    /// Inside the write: whether these reads still hold for `node_id` (no change to the tables
    /// they came from was logged after [`Prepared::seen`]).
    pub fn still_current(&self, conn: &mut dyn Conn, node_id: Uuid) -> Result<bool> {
        if self.node_id != node_id {
            return Ok(false);
        }
        let kinds = PREPARED_FROM
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let changed = conn
            .query_one(
                &format!(
                    // `kind || ''`: walk the positions after `seen` (few), not the kind index
                    // (SQLite would read every entry of those kinds).
                    "SELECT 1 AS changed FROM change_log WHERE pos > $1 AND (kind || '') IN ({kinds}) LIMIT 1"
                ),
                &params![self.seen],
            )?
            .is_some();
        Ok(!changed)
    }
}

fn vulnerable_in(conn: &mut dyn Conn, nodes: &[Uuid]) -> Result<Vec<InScope>> {
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT v.id, v.person_id, v.community_id, v.created_at, \
             COALESCE(v.grid_id, p.grid_id, h.grid_id, b.grid_id) AS grid_id, \
             p.household_id, h.community_id AS household_community, b.node_id AS building_node, \
             CASE WHEN bn.level = 'compound' THEN b.node_id END AS compound_id, \
             hu.id AS helper, p.name \
             FROM vulnerable v JOIN people p ON p.id = v.person_id \
             LEFT JOIN households h ON h.id = p.household_id \
             LEFT JOIN dwellings d ON d.id = h.dwelling_id \
             LEFT JOIN buildings b ON b.id = d.building_id \
             LEFT JOIN nodes bn ON bn.id = b.node_id \
             LEFT JOIN users hu ON hu.id = v.helper_user_id AND hu.disabled = $2 \
             WHERE {} \
             ORDER BY v.person_id, CASE WHEN hu.id IS NULL THEN 1 ELSE 0 END, v.created_at, v.id",
            d.in_json_list("v.community_id", 1)
        ),
        &[volunteers::json_ids(nodes), false.into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(InScope {
                vulnerable_id: r.get("id")?,
                person: r.get("person_id")?,
                community: r.get("community_id")?,
                created_at: r.get("created_at")?,
                grid: r.get("grid_id")?,
                household: r.get("household_id")?,
                household_community: r.get("household_community")?,
                building_node: r.get("building_node")?,
                compound: r.get("compound_id")?,
                helper: r.get("helper")?,
                name: r.get("name")?,
            })
        })
        .collect()
}

/// Insert many new records of `table`, every column given (`rows` hold the values of `cols`):
/// on PostgreSQL through the store's bulk path (binary `COPY`, no `RETURNING`; the write's
/// change-log entries are staged the same way and moved into the log just before commit), on
/// SQLite with `Tx::insert_many`'s multi-row statements. Either way each record gets the entry
/// `Tx::insert` would give it (its after-image as stored), in this transaction.
pub fn insert_all(tx: &mut Tx, table: &str, cols: &[&str], rows: &[Vec<Value>]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    // Measured at 50,000 people (2026-12-04): on PostgreSQL the bulk path takes 536–568 ms
    // where `insert_many` took 661–882; on SQLite its one-row statements were slower than the
    // multi-row ones (welfare 32 vs 24 ms, campaigns 33 vs 21 ms at 20,000 people).
    match tx.dialect() {
        crate::Dialect::Postgres => {
            // `0`: no index rebuild (that is for loads as large as the people table).
            tx.bulk_begin(0)?;
            tx.bulk_insert(table, cols, rows)
        }
        crate::Dialect::Sqlite => tx.insert_many(table, cols, rows),
    }
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
    &crate::supplies::campaigns::CampaignStep,
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
        "INSERT INTO incident_log (seq, id, incident_id, at, actor, kind, summary, ref_kind, ref_id) \
         VALUES ((SELECT COALESCE(max(seq), 0) + 1 FROM incident_log WHERE incident_id = $2), \
         $1, $2, $3, $4, $5, $6, $7, $8)",
        &params![id, incident_id, at, actor, kind, summary, ref_kind, ref_id],
    )?;
    Ok(())
}

/// Append one timeline line per reference, all of the same `kind` and `summary`, in the order
/// given, with one statement (what [`log`] does line by line: a step that touches many records
/// of one kind).
pub fn log_many(
    tx: &mut Tx,
    incident_id: Uuid,
    kind: &str,
    summary: &str,
    references: &[(&str, Uuid)],
) -> Result<()> {
    if references.is_empty() {
        return Ok(());
    }
    let last = tx.conn().query_i64(
        "SELECT COALESCE(max(seq), 0) FROM incident_log WHERE incident_id = $1",
        &params![incident_id],
    )?;
    let at = tx.now();
    let actor = tx.ctx().actor;
    // $1 incident, $2 at, $3 actor, $4 kind, $5 summary; then (seq, id, ref_kind, ref_id) a line.
    let mut params: Vec<Value> = params![incident_id, at, actor, kind, summary].to_vec();
    let mut sql = String::from(
        "INSERT INTO incident_log (seq, id, incident_id, at, actor, kind, summary, ref_kind, ref_id) VALUES ",
    );
    for (i, (ref_kind, ref_id)) in references.iter().enumerate() {
        let b = params.len();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, $1, $2, $3, $4, $5, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4
        ));
        params.push((last + 1 + i64::try_from(i).unwrap_or(i64::MAX)).into());
        params.push(tx.new_id().into());
        params.push((*ref_kind).into());
        params.push((*ref_id).into());
    }
    tx.execute_unlogged(&sql, &params)?;
    Ok(())
}

/// Whether a step's counts describe its activation or its stand-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Activate,
    Deactivate,
}

/// (step, phase, zh-CN, English): how each step's counts read, `{name}` standing for a count
/// (a list counts its items). A capability that adds a step adds its lines here.
const STEP_TEXTS: &[(&str, Phase, &str, &str)] = &[
    (
        "tasks",
        Phase::Activate,
        "任务：新建 {created} 项（其中 {unassigned} 项角色未指定，交由启动人）",
        "Tasks: {created} created ({unassigned} of unfilled roles, given to whoever activated)",
    ),
    (
        "callouts",
        Phase::Activate,
        "志愿者召集：计划 {requested} 人，已召集 {called} 人",
        "Volunteers: {called} called of {requested} asked for",
    ),
    (
        "welfare",
        Phase::Activate,
        "不漏一人：为 {checks} 位重点人群建立核查（{to_helpers} 位交由其帮扶人）",
        "Welfare checks: {checks} created ({to_helpers} assigned to the person's helper)",
    ),
    (
        "shelters",
        Phase::Activate,
        "避难场所：开放 {opened} 处（此前已开放 {already_open} 处）",
        "Shelters: {opened} opened ({already_open} already open)",
    ),
    (
        "shelters",
        Phase::Deactivate,
        "避难场所：{closed} 处恢复日常使用",
        "Shelters: {closed} back in normal service",
    ),
    (
        "campaigns",
        Phase::Activate,
        "物资发放：开启 {campaigns} 项，配送单 {deliveries} 份",
        "Supplies: {campaigns} distribution campaigns opened, {deliveries} delivery orders",
    ),
    (
        "campaigns",
        Phase::Deactivate,
        "物资发放：结束 {campaigns_closed} 项",
        "Supplies: {campaigns_closed} distribution campaigns closed",
    ),
    (
        "welfare",
        Phase::Deactivate,
        "不漏一人：{checked} 位已核查，{closed_unchecked} 位未核查即结束",
        "Welfare checks: {checked} done, {closed_unchecked} closed unchecked",
    ),
    (
        "callouts",
        Phase::Deactivate,
        "志愿者召集：结束 {ended} 项，签退 {checked_out} 人",
        "Volunteers: {ended} call-outs ended, {checked_out} checked out",
    ),
    (
        "tasks",
        Phase::Deactivate,
        "任务：取消未完成的 {cancelled} 项",
        "Tasks: {cancelled} open tasks cancelled",
    ),
];

/// One step's counts as a sentence (`en`: English, else zh-CN), for the timeline and pages; a
/// step without a sentence reads `step: name n, …`.
pub fn describe_step(step: &str, phase: Phase, counts: &serde_json::Value, en: bool) -> String {
    let count = |k: &str| match &counts[k] {
        serde_json::Value::Array(a) => a.len().to_string(),
        serde_json::Value::Null => "0".to_owned(),
        v => v.to_string(),
    };
    match STEP_TEXTS
        .iter()
        .find(|(s, p, ..)| *s == step && *p == phase)
    {
        Some((_, _, zh, english)) => {
            let mut out = (if en { *english } else { *zh }).to_owned();
            while let Some(start) = out.find('{') {
                let Some(len) = out[start..].find('}') else {
                    break;
                };
                let key = out[start + 1..start + len].to_owned();
                out.replace_range(start..=start + len, &count(&key));
            }
            out
        }
        None => {
            let parts: Vec<String> = counts
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v.is_number())
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect()
                })
                .unwrap_or_default();
            format!("{step}: {}", parts.join(", "))
        }
    }
}

/// An incident's summary (`{"step": counts, …, "deactivated": [{"step", "counts"}, …]}`) as
/// sentences, activation first, then the stand-down in the order it ran.
pub fn describe_summary(summary: &serde_json::Value, en: bool) -> Vec<String> {
    let Some(m) = summary.as_object() else {
        return Vec::new();
    };
    let mut out: Vec<String> = STEPS
        .iter()
        .filter_map(|s| {
            m.get(s.name())
                .map(|c| describe_step(s.name(), Phase::Activate, c, en))
        })
        .collect();
    // Steps no longer listed (an older incident's) still show.
    for (k, c) in m {
        if k != "deactivated" && !STEPS.iter().any(|s| s.name() == k) {
            out.push(describe_step(k, Phase::Activate, c, en));
        }
    }
    if let Some(d) = m.get("deactivated").and_then(|d| d.as_array()) {
        for e in d {
            let step = e["step"].as_str().unwrap_or_default();
            out.push(describe_step(step, Phase::Deactivate, &e["counts"], en));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_sentences() {
        let s = serde_json::json!({
            "tasks": { "created": 3, "unassigned": 0 },
            "shelters": { "opened": 2, "already_open": 0, "ids": ["a", "b"] },
            "deactivated": [{ "step": "shelters", "counts": { "closed": 2 } }],
            "later_step": { "made": 4 }
        });
        let zh = describe_summary(&s, false);
        assert_eq!(zh[0], "任务：新建 3 项（其中 0 项角色未指定，交由启动人）");
        assert_eq!(zh[1], "避难场所：开放 2 处（此前已开放 0 处）");
        assert_eq!(zh[2], "later_step: made 4");
        assert_eq!(zh[3], "避难场所：2 处恢复日常使用");
        let en = describe_summary(&s, true);
        assert_eq!(
            en[0],
            "Tasks: 3 created (0 of unfilled roles, given to whoever activated)"
        );
        for (step, phase, zh, en) in STEP_TEXTS {
            assert!(STEPS.iter().any(|s| s.name() == *step), "{step}");
            assert_eq!(
                zh.matches('{').count(),
                en.matches('{').count(),
                "{step} {phase:?}"
            );
        }
    }
}
