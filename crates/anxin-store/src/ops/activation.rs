//! The activation engine (owner: plans & activation).
//!
//! [`activate`] is one transaction: it checks `activate_plans` on the plan's node, expands the
//! node's subtree once, inserts the incident and runs every step of [`super::STEPS`] in order
//! with the same [`Activation`]; the summary holds each step's counts and the timeline one line
//! per step. Any step's error rolls the whole activation back: nothing is left behind.
//!
//! Triggered activations ([`trigger`]) are `pending` until a person confirms ([`confirm`], which
//! runs the steps then) or declines ([`decline`]); when confirmation is configured away they run
//! at once. [`deactivate`] runs the steps' `deactivate` in reverse order and closes the incident.

use std::collections::HashMap;

use anxin_domain::plan::PlanBody;
use anxin_domain::roles::Permission;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::plans::{self, Plan};
use super::{get_incident, log, Activation, ActivationStep, Incident, Prepared, STEPS};
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::Caller;
use crate::tx::Tx;
use crate::value::Value;

const TITLE_MAX: usize = 140;

fn conflict(code: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        code,
        detail: detail.into(),
    }
}

/// The partial unique indexes of `incidents`, by either backend's spelling.
fn map_incident_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { detail, .. }
            if detail.contains("incidents_running")
                || detail.contains("incidents.plan_id, incidents.node_id") =>
        {
            conflict("incident.already_running", detail)
        }
        StoreError::Conflict { detail, .. }
            if detail.contains("incidents_trigger")
                || detail.contains("incidents.plan_id, incidents.trigger_kind") =>
        {
            conflict("incident.already_triggered", detail)
        }
        other => other,
    }
}

/// How an activation starts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateOpts {
    /// A drill: created the same way, marked as exercise.
    #[serde(default)]
    pub exercise: bool,
    /// Default: the plan's name.
    pub title: Option<String>,
}

fn title_text(raw: Option<&str>, plan: &Plan) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Ok(plan.name.clone());
    }
    if s.chars().count() > TITLE_MAX {
        return Err(StoreError::invalid("value.too_long", "title"));
    }
    if s.chars().any(char::is_control) {
        return Err(StoreError::invalid("value.invalid", "title"));
    }
    Ok(s.to_owned())
}

/// The plan's adopted body, or `plan.no_current_version`.
fn current_body(tx: &mut Tx, plan: &Plan) -> Result<(Uuid, PlanBody)> {
    if plan.status != "active" {
        return Err(conflict("plan.retired", "a retired plan is not activated"));
    }
    let v = plans::current_version(tx.conn(), plan)?
        .ok_or_else(|| conflict("plan.no_current_version", "no version adopted"))?;
    Ok((v.id, v.plan_body()?))
}

fn check_not_running(tx: &mut Tx, plan: &Plan) -> Result<()> {
    let n = tx.conn().query_i64(
        "SELECT count(*) FROM incidents WHERE plan_id = $1 AND node_id = $2 \
         AND status IN ('pending', 'active')",
        &params![plan.id, plan.node_id],
    )?;
    if n > 0 {
        return Err(conflict(
            "incident.already_running",
            "the plan is already running for this node",
        ));
    }
    Ok(())
}

struct NewIncident<'a> {
    plan: &'a Plan,
    version_id: Uuid,
    title: String,
    exercise: bool,
    status: &'static str,
    trigger_kind: &'static str,
    trigger_id: Option<Uuid>,
    actor: Option<Uuid>,
}

fn insert_incident(tx: &mut Tx, n: &NewIncident<'_>) -> Result<Uuid> {
    let id = tx.new_id();
    let now = tx.now();
    let active = n.status == "active";
    tx.insert(
        "incidents",
        &[
            ("id", id.into()),
            ("node_id", n.plan.node_id.into()),
            ("plan_id", n.plan.id.into()),
            ("plan_version_id", n.version_id.into()),
            ("title", n.title.clone().into()),
            ("exercise", n.exercise.into()),
            ("status", n.status.into()),
            ("trigger_kind", n.trigger_kind.into()),
            ("trigger_id", n.trigger_id.into()),
            ("summary", "{}".into()),
            ("activated_by", if active { n.actor } else { None }.into()),
            ("activated_at", if active { Some(now) } else { None }.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .map_err(map_incident_conflict)?;
    Ok(id)
}

/// Run every step for an incident that exists (status active), write the summary and one log
/// line per step. `pre`: the people in scope read before this write, used when still current.
#[allow(clippy::too_many_arguments)]
fn run_steps(
    tx: &mut Tx,
    incident_id: Uuid,
    plan: &Plan,
    version_id: Uuid,
    body: &PlanBody,
    exercise: bool,
    actor: Option<Uuid>,
    pre: Option<Prepared>,
) -> Result<Json> {
    let started = std::time::Instant::now();
    let (nodes, found) = match pre {
        Some(p) if p.still_current(tx.conn(), plan.node_id)? => {
            (p.nodes, std::cell::OnceCell::from(p.vulnerable))
        }
        other => {
            if other.is_some() {
                tracing::debug!("activation: people changed since prepared; read again");
            }
            (
                plans::subtree(tx.conn(), plan.node_id)?,
                std::cell::OnceCell::new(),
            )
        }
    };
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1000.0,
        prepared = found.get().is_some(),
        "activation: scope"
    );
    let a = Activation {
        incident_id,
        node_id: plan.node_id,
        plan_id: plan.id,
        plan_version_id: version_id,
        body,
        exercise,
        at: tx.now(),
        actor,
        nodes: &nodes,
        found,
    };
    let mut summary = serde_json::Map::new();
    let all_started = std::time::Instant::now();
    for step in STEPS {
        let started = std::time::Instant::now();
        let counts = step.activate(tx, &a)?;
        tracing::debug!(
            step = step.name(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "activation step"
        );
        log(
            tx,
            incident_id,
            &format!("activation.{}", step.name()),
            &super::describe_step(step.name(), super::Phase::Activate, &counts, false),
            None,
        )?;
        summary.insert(step.name().to_owned(), counts);
    }
    tracing::debug!(
        ms = all_started.elapsed().as_secs_f64() * 1000.0,
        "activation steps done"
    );
    let summary = Json::Object(summary);
    tx.update(
        "incidents",
        incident_id,
        &[
            ("summary", summary.to_string().into()),
            ("updated_at", tx.now().into()),
        ],
    )?;
    Ok(summary)
}

/// What to read before activating `plan_id` as `caller` ([`super::prepare`] for the plan's
/// node), on a reader connection; `None` when the caller may not activate it (the write then
/// answers why).
pub fn prepare_activation(
    conn: &mut dyn crate::Conn,
    caller: &Caller,
    plan_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Prepared>> {
    let Ok(plan) = plans::get_plan(conn, caller, plan_id, now) else {
        return Ok(None);
    };
    if !caller
        .reach(Permission::ActivatePlans)
        .contains_node(conn, plan.node_id)?
    {
        return Ok(None);
    }
    super::prepare(conn, plan.node_id).map(Some)
}

/// What to read before confirming the pending incident `id` (see [`prepare_activation`]).
pub fn prepare_confirm(
    conn: &mut dyn crate::Conn,
    caller: &Caller,
    id: Uuid,
) -> Result<Option<Prepared>> {
    let Ok(i) = get_incident(conn, caller, id) else {
        return Ok(None);
    };
    if i.status != "pending"
        || !caller
            .reach(Permission::ActivatePlans)
            .contains_node(conn, i.node_id)?
    {
        return Ok(None);
    }
    super::prepare(conn, i.node_id).map(Some)
}

/// Activate a plan by hand (or as a drill): the incident and everything the steps create, in
/// the caller's transaction. `pre`: the people in scope read before the write
/// ([`prepare_activation`]), read again inside it if anything they came from changed since.
pub fn activate(
    tx: &mut Tx,
    caller: &Caller,
    plan_id: Uuid,
    opts: &ActivateOpts,
    pre: Option<Prepared>,
) -> Result<Incident> {
    let now = tx.now();
    let plan = plans::get_plan(tx.conn(), caller, plan_id, now)?;
    if !caller
        .reach(Permission::ActivatePlans)
        .contains_node(tx.conn(), plan.node_id)?
    {
        return Err(StoreError::Forbidden("plan.not_allowed"));
    }
    let title = title_text(opts.title.as_deref(), &plan)?;
    let (version_id, body) = current_body(tx, &plan)?;
    check_not_running(tx, &plan)?;
    let id = insert_incident(
        tx,
        &NewIncident {
            plan: &plan,
            version_id,
            title,
            exercise: opts.exercise,
            status: "active",
            trigger_kind: "manual",
            trigger_id: None,
            actor: caller.user_id,
        },
    )?;
    log(
        tx,
        id,
        if opts.exercise {
            "drill.activated"
        } else {
            "activated"
        },
        &format!("预案启动（第{}版）", plan.current_version),
        Some(("plans", plan.id)),
    )?;
    run_steps(
        tx,
        id,
        &plan,
        version_id,
        &body,
        opts.exercise,
        caller.user_id,
        pre,
    )?;
    get_incident(tx.conn(), &Caller::system(), id)
}

/// What a trigger asks for.
#[derive(Debug, Clone)]
pub struct TriggerInput {
    pub plan_id: Uuid,
    /// warning or alarm
    pub kind: &'static str,
    /// The warning's original id, or the alarm's id.
    pub trigger_id: Uuid,
    pub title: String,
    /// Wait for a person's confirmation (`pending`) or run at once.
    pub pending: bool,
}

/// Start a plan from a trigger, as the platform. A trigger already seen for this plan, or a plan
/// already running for its node, is a no-op (`None`). `pre`: the people in scope read before the
/// write ([`super::prepare`] for the plan's node; used only when it runs at once and they are
/// still current).
pub fn trigger(tx: &mut Tx, t: &TriggerInput, pre: Option<Prepared>) -> Result<Option<Incident>> {
    let now = tx.now();
    let plan = plans::get_plan_unscoped(tx.conn(), t.plan_id, now)?;
    let (version_id, body) = current_body(tx, &plan)?;
    let seen = tx.conn().query_i64(
        "SELECT count(*) FROM incidents WHERE plan_id = $1 AND trigger_kind = $2 AND trigger_id = $3",
        &params![plan.id, t.kind, t.trigger_id],
    )?;
    if seen > 0 || check_not_running(tx, &plan).is_err() {
        return Ok(None);
    }
    let mut title: String = t.title.trim().chars().take(TITLE_MAX).collect();
    if title.is_empty() {
        title = plan.name.clone();
    }
    let id = insert_incident(
        tx,
        &NewIncident {
            plan: &plan,
            version_id,
            title,
            exercise: false,
            status: if t.pending { "pending" } else { "active" },
            trigger_kind: t.kind,
            trigger_id: Some(t.trigger_id),
            actor: None,
        },
    )?;
    let reference = match t.kind {
        "alarm" => ("alarms", t.trigger_id),
        _ => ("warnings", t.trigger_id),
    };
    if t.pending {
        log(tx, id, "triggered", "预案触发，待确认启动", Some(reference))?;
    } else {
        log(tx, id, "triggered", "预案触发，自动启动", Some(reference))?;
        run_steps(tx, id, &plan, version_id, &body, false, None, pre)?;
    }
    get_incident(tx.conn(), &Caller::system(), id).map(Some)
}

/// The incident the caller may see and act on with `p` (`Forbidden` when seen but not allowed).
fn incident_for(tx: &mut Tx, caller: &Caller, id: Uuid, p: Permission) -> Result<Incident> {
    let i = get_incident(tx.conn(), caller, id)?;
    if !caller.reach(p).contains_node(tx.conn(), i.node_id)? {
        return Err(StoreError::Forbidden("incident.not_allowed"));
    }
    Ok(i)
}

fn wrong_status(i: &Incident, action: &str) -> StoreError {
    conflict(
        "incident.wrong_status",
        format!("{} cannot {action}", i.status),
    )
}

/// Confirm a pending (triggered) incident: the steps run now, in this transaction. `pre`: the
/// people in scope read before the write ([`prepare_confirm`]).
pub fn confirm(tx: &mut Tx, caller: &Caller, id: Uuid, pre: Option<Prepared>) -> Result<Incident> {
    let i = incident_for(tx, caller, id, Permission::ActivatePlans)?;
    if i.status != "pending" {
        return Err(wrong_status(&i, "be confirmed"));
    }
    let now = tx.now();
    let plan = plans::get_plan_unscoped(tx.conn(), i.plan_id, now)?;
    // The version triggered, even if a newer one was adopted since.
    let v = tx
        .conn()
        .query_one(
            "SELECT * FROM plan_versions WHERE id = $1",
            &params![i.plan_version_id],
        )?
        .ok_or(StoreError::NotFound)?;
    let body = plans::PlanVersion::from_row(&v)?.plan_body()?;
    tx.update(
        "incidents",
        id,
        &[
            ("status", "active".into()),
            ("activated_by", caller.user_id.into()),
            ("activated_at", now.into()),
            ("confirmed_by", caller.user_id.into()),
            ("confirmed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        id,
        "confirmed",
        "确认启动预案",
        Some(("plans", plan.id)),
    )?;
    run_steps(
        tx,
        id,
        &plan,
        i.plan_version_id,
        &body,
        i.exercise,
        caller.user_id,
        pre,
    )?;
    get_incident(tx.conn(), &Caller::system(), id)
}

/// Decline a pending incident: nothing is created; who decided is recorded as who closed it.
pub fn decline(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Incident> {
    let i = incident_for(tx, caller, id, Permission::ActivatePlans)?;
    if i.status != "pending" {
        return Err(wrong_status(&i, "be declined"));
    }
    let now = tx.now();
    tx.update(
        "incidents",
        id,
        &[
            ("status", "declined".into()),
            ("closed_by", caller.user_id.into()),
            ("closed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(tx, id, "declined", "不启动预案", None)?;
    get_incident(tx.conn(), &Caller::system(), id)
}

/// Deactivate an active incident: every step's `deactivate` in reverse order, then closed.
pub fn deactivate(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Incident> {
    let i = incident_for(tx, caller, id, Permission::ActivatePlans)?;
    if i.status != "active" {
        return Err(wrong_status(&i, "be deactivated"));
    }
    let now = tx.now();
    // In the order run (the reverse of STEPS), each step with its counts.
    let mut closed = Vec::with_capacity(STEPS.len());
    for step in STEPS.iter().rev() {
        let counts = step.deactivate(tx, id, now)?;
        log(
            tx,
            id,
            &format!("deactivation.{}", step.name()),
            &super::describe_step(step.name(), super::Phase::Deactivate, &counts, false),
            None,
        )?;
        closed.push(json!({ "step": step.name(), "counts": counts }));
    }
    let mut summary = i.summary.clone();
    if let Some(m) = summary.as_object_mut() {
        m.insert("deactivated".into(), Json::Array(closed));
    }
    tx.update(
        "incidents",
        id,
        &[
            ("status", "closed".into()),
            ("summary", summary.to_string().into()),
            ("closed_by", caller.user_id.into()),
            ("closed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(tx, id, "deactivated", "预案结束，转入平时状态", None)?;
    get_incident(tx.conn(), &Caller::system(), id)
}

/// Pending (triggered) incidents the caller may confirm or decline.
pub fn pending(conn: &mut dyn crate::Conn, caller: &Caller) -> Result<Vec<Incident>> {
    let reach = caller.reach(Permission::ActivatePlans);
    let mut params = Vec::new();
    let pred = reach.predicate(conn.dialect(), super::INCIDENT_SCOPE, &mut params);
    let rows = conn.query(
        &format!(
            "SELECT i.* FROM incidents i WHERE i.status = 'pending' AND {pred} \
             ORDER BY i.created_at DESC, i.id LIMIT 200"
        ),
        &params,
    )?;
    rows.iter().map(Incident::from_row).collect()
}

/// Incidents of one plan the caller may see (activations and drills), newest first.
pub fn of_plan(
    conn: &mut dyn crate::Conn,
    caller: &Caller,
    plan_id: Uuid,
) -> Result<Vec<Incident>> {
    let reach = super::incident_reach(caller);
    let mut params = vec![Value::from(plan_id)];
    let pred = reach.predicate(conn.dialect(), super::INCIDENT_SCOPE, &mut params);
    let rows = conn.query(
        &format!(
            "SELECT i.* FROM incidents i WHERE i.plan_id = $1 AND {pred} \
             ORDER BY i.created_at DESC, i.id LIMIT 200"
        ),
        &params,
    )?;
    rows.iter().map(Incident::from_row).collect()
}

/// A task to notify after commit: its assignee and title.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub task_id: Uuid,
    pub user_id: Uuid,
    pub title: String,
}

/// The open plan tasks of an incident with an assignee (for notifications after commit).
pub fn assigned_tasks(conn: &mut dyn crate::Conn, incident_id: Uuid) -> Result<Vec<Assigned>> {
    conn.query(
        "SELECT id, assignee_user_id, title FROM incident_tasks WHERE incident_id = $1 \
         AND source = 'plan' AND status = 'open' AND assignee_user_id IS NOT NULL ORDER BY id",
        &params![incident_id],
    )?
    .iter()
    .map(|r| {
        Ok(Assigned {
            task_id: r.get("id")?,
            user_id: r.get("assignee_user_id")?,
            title: r.get("title")?,
        })
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Steps.

/// Creates the plan's tasks, assigned to the role holders (the activating user for a role
/// nobody fills), due `due_minutes` after activation.
pub struct TaskStep;

impl ActivationStep for TaskStep {
    fn name(&self) -> &'static str {
        "tasks"
    }
    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value> {
        let cols = [
            "id",
            "incident_id",
            "node_id",
            "title",
            "description",
            "role_key",
            "assignee_user_id",
            "due_at",
            "status",
            "source",
            "source_id",
            "created_at",
            "updated_at",
        ];
        let mut rows = Vec::with_capacity(a.body.tasks.len());
        let mut unassigned = 0;
        for t in &a.body.tasks {
            let assignee = a.body.role_holder(&t.role).or(a.actor);
            if assignee.is_none() {
                unassigned += 1;
            }
            rows.push(vec![
                Value::from(tx.new_id()),
                a.incident_id.into(),
                a.node_id.into(),
                t.title.trim().into(),
                t.description.trim().into(),
                t.role.clone().into(),
                assignee.into(),
                (a.at + Duration::minutes(i64::from(t.due_minutes))).into(),
                "open".into(),
                "plan".into(),
                a.plan_version_id.into(),
                a.at.into(),
                a.at.into(),
            ]);
        }
        let n = tx.insert_many("incident_tasks", &cols, &rows)?;
        Ok(json!({ "created": n, "unassigned": unassigned }))
    }
    fn deactivate(&self, tx: &mut Tx, id: Uuid, at: DateTime<Utc>) -> Result<serde_json::Value> {
        let cancelled = tx
            .update_where(
                "incident_tasks",
                &[("status", "cancelled".into()), ("updated_at", at.into())],
                "incident_id = $1 AND status IN ('open', 'in_progress')",
                &params![id],
            )?
            .len();
        Ok(json!({ "cancelled": cancelled }))
    }
}

/// Opens the plan's shelters (status `open`). A listed shelter that is gone, outside the
/// activated scope, closed or under maintenance fails the activation. Deactivation returns the
/// shelters this incident opened to `active`.
pub struct ShelterStep;

impl ActivationStep for ShelterStep {
    fn name(&self) -> &'static str {
        "shelters"
    }
    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value> {
        if a.body.shelters.is_empty() {
            return Ok(json!({ "opened": 0, "already_open": 0, "ids": Vec::<Uuid>::new() }));
        }
        // One read for every listed shelter, checked in the plan's order (the first bad one
        // names its place in the list), then one update and one set of timeline lines.
        let d = tx.dialect();
        let found: HashMap<Uuid, (Uuid, String, String)> = tx
            .query(
                &format!(
                    "SELECT id, node_id, kind, status FROM facilities WHERE {}",
                    d.in_json_list("id", 1)
                ),
                &[super::volunteers::json_ids(&a.body.shelters)],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.get("id")?,
                    (r.get("node_id")?, r.get("kind")?, r.get("status")?),
                ))
            })
            .collect::<Result<_>>()?;
        let mut opened: Vec<Uuid> = Vec::new();
        let mut already = 0;
        for (i, s) in a.body.shelters.iter().enumerate() {
            let Some((node, kind, status)) = found.get(s) else {
                return Err(conflict(
                    "activation.shelter_missing",
                    format!("shelters[{i}]"),
                ));
            };
            if !a.nodes.contains(node) || !matches!(kind.as_str(), "shelter" | "convertible_space")
            {
                return Err(conflict(
                    "activation.shelter_out_of_scope",
                    format!("shelters[{i}]"),
                ));
            }
            match status.as_str() {
                // Listed twice: open after its first mention.
                "active" if opened.contains(s) => already += 1,
                "active" => opened.push(*s),
                "open" => already += 1,
                _ => {
                    return Err(conflict(
                        "activation.shelter_unavailable",
                        format!("shelters[{i}]: {status}"),
                    ))
                }
            }
        }
        if !opened.is_empty() {
            let n = tx
                .update_where(
                    "facilities",
                    &[("status", "open".into()), ("updated_at", a.at.into())],
                    &format!("{} AND status = 'active'", d.in_json_list("id", 1)),
                    &[super::volunteers::json_ids(&opened)],
                )?
                .len();
            if n != opened.len() {
                return Err(StoreError::Backend(format!(
                    "shelters: {n} of {} opened",
                    opened.len()
                )));
            }
            let refs: Vec<(&str, Uuid)> = opened.iter().map(|f| ("facilities", *f)).collect();
            super::log_many(tx, a.incident_id, "shelter.opened", "避难场所开放", &refs)?;
        }
        Ok(json!({ "opened": opened.len(), "already_open": already, "ids": opened }))
    }
    fn deactivate(&self, tx: &mut Tx, id: Uuid, at: DateTime<Utc>) -> Result<serde_json::Value> {
        let summary: String = tx
            .query_one("SELECT summary FROM incidents WHERE id = $1", &params![id])?
            .ok_or(StoreError::NotFound)?
            .get("summary")?;
        let summary: Json = serde_json::from_str(&summary).unwrap_or_default();
        let ids: Vec<Uuid> = summary["shelters"]["ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                    .collect()
            })
            .unwrap_or_default();
        let mut closed = 0;
        for f in ids {
            // Still open (not closed by hand meanwhile) and not used by another running incident.
            let open = tx.conn().query_i64(
                "SELECT count(*) FROM facilities WHERE id = $1 AND status = 'open'",
                &params![f],
            )? > 0;
            if !open {
                continue;
            }
            tx.update(
                "facilities",
                f,
                &[("status", "active".into()), ("updated_at", at.into())],
            )?;
            closed += 1;
        }
        Ok(json!({ "closed": closed }))
    }
}

/// One message to an assignee after an activation commits: their open plan tasks of the
/// incident, and the phone on their duty record (plaintext: never logged; Debug shows the mask).
#[derive(Clone)]
pub struct TaskNotice {
    pub user_id: Uuid,
    pub phone: String,
    pub phone_mask: String,
    pub tasks: usize,
    pub first_due: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TaskNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskNotice")
            .field("user_id", &self.user_id)
            .field("phone_mask", &self.phone_mask)
            .field("tasks", &self.tasks)
            .finish()
    }
}

/// The assignees of an incident's open plan tasks who have a phone on a duty record, one notice
/// each (assignees without a phone see their tasks when they sign in).
pub fn task_notices(
    conn: &mut dyn crate::Conn,
    env: &crate::Env,
    incident_id: Uuid,
) -> Result<Vec<TaskNotice>> {
    let rows = conn.query(
        "SELECT assignee_user_id, count(*) AS n, MIN(due_at) AS first_due FROM incident_tasks \
         WHERE incident_id = $1 AND source = 'plan' AND status = 'open' \
         AND assignee_user_id IS NOT NULL GROUP BY assignee_user_id ORDER BY assignee_user_id",
        &params![incident_id],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let user_id: Uuid = r.get("assignee_user_id")?;
        let n: i64 = r.get("n")?;
        let first_due: Option<DateTime<Utc>> = r.get("first_due")?;
        let Some(duty) = conn.query_one(
            "SELECT phone_ct, phone_mask FROM duties WHERE user_id = $1 \
             AND phone_ct IS NOT NULL ORDER BY updated_at DESC, id LIMIT 1",
            &params![user_id],
        )?
        else {
            continue;
        };
        let ct: Vec<u8> = duty.get("phone_ct")?;
        out.push(TaskNotice {
            user_id,
            phone: env.keys.open_string(conn, "duties.phone", &ct)?,
            phone_mask: duty
                .get::<Option<String>>("phone_mask")?
                .unwrap_or_default(),
            tasks: usize::try_from(n).unwrap_or_default(),
            first_due,
        });
    }
    Ok(out)
}
