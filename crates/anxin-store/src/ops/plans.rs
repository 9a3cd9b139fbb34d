//! Plans and their versions (owner: plans & activation).
//!
//! A plan belongs to its node (a community, or a street for its own plans). Its versions move
//! draft → current (adopted) → superseded; a review's lessons arrive as `proposed` versions that
//! are adopted or rejected. Adopting a version counts as a review; a plan whose last review is
//! older than its review period is flagged `review_overdue`.
//!
//! Seed 001 (plans copied from above fail): a version names only people and places of the plan's
//! own node subtree. Every role holder must hold a grant inside that subtree, every shelter must
//! be a shelter or convertible space inside it; errors name the field (`roles[1].user_id`).

use anxin_domain::plan::{self as dp, PlanBody, PlanInvalid};
use anxin_domain::roles::Permission;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

const NAME_MAX: usize = 80;
const SUMMARY_MAX: usize = 2_000;

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

impl From<PlanInvalid> for StoreError {
    fn from(e: PlanInvalid) -> Self {
        StoreError::Invalid {
            code: e.code,
            field: e.field,
        }
    }
}

/// A JSON id list for `Dialect::in_json_list`.
pub(crate) fn id_list(ids: &[Uuid]) -> Value {
    Value::Json(Json::Array(
        ids.iter().map(|u| Json::String(u.to_string())).collect(),
    ))
}

/// `node` and every node below it.
pub fn subtree(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<Uuid>> {
    let set = Reach {
        nodes: vec![node],
        ..Reach::default()
    }
    .expand_nodes(conn)?
    .unwrap_or_default();
    Ok(set.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Records.

/// A plan with its review state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: Uuid,
    pub node_id: Uuid,
    /// The node's name.
    pub node_name: String,
    pub name: String,
    /// active, retired
    pub status: String,
    /// The version in force (0: none adopted yet).
    pub current_version: i64,
    pub review_period_days: i64,
    pub last_reviewed_at: Option<DateTime<Utc>>,
    /// When the next review is due.
    pub review_due_at: DateTime<Utc>,
    /// Not reviewed within its review period.
    pub review_overdue: bool,
    /// Drills (exercise activations) held.
    pub drills: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Plan {
    fn from_row(r: &Row, now: DateTime<Utc>) -> Result<Self> {
        let last: Option<DateTime<Utc>> = r.get("last_reviewed_at")?;
        let created: DateTime<Utc> = r.get("created_at")?;
        let period: i64 = r.get("review_period_days")?;
        let drills: Option<i64> = r.get("drills").unwrap_or(None);
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
            name: r.get("name")?,
            status: r.get("status")?,
            current_version: r.get("current_version")?,
            review_period_days: period,
            last_reviewed_at: last,
            review_due_at: dp::review_due(last, created, period),
            review_overdue: dp::review_overdue(last, created, period, now),
            drills: drills.unwrap_or(0),
            created_by: r.get("created_by")?,
            created_at: created,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// One version of a plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PlanVersion {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub node_id: Uuid,
    pub version: i64,
    /// draft, proposed, current, superseded, rejected
    pub status: String,
    /// `anxin_domain::plan::PlanBody`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: Json,
    pub change_summary: String,
    /// The after-action review that proposed it.
    pub review_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub adopted_by: Option<Uuid>,
    pub adopted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlanVersion {
    pub fn from_row(r: &Row) -> Result<Self> {
        let body: String = r.get("body")?;
        Ok(Self {
            id: r.get("id")?,
            plan_id: r.get("plan_id")?,
            node_id: r.get("node_id")?,
            version: r.get("version")?,
            status: r.get("status")?,
            body: serde_json::from_str(&body)
                .map_err(|e| StoreError::Backend(format!("stored plan body: {e}")))?,
            change_summary: r.get("change_summary")?,
            review_id: r.get("review_id")?,
            created_by: r.get("created_by")?,
            adopted_by: r.get("adopted_by")?,
            adopted_at: r.get("adopted_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    /// The typed body.
    pub fn plan_body(&self) -> Result<PlanBody> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| StoreError::Backend(format!("stored plan body: {e}")))
    }
}

pub const PLAN_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "p.node_id",
    grid: None,
    household: None,
};

/// Who may see plans: those who write or activate them.
pub fn read_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::ManagePlans);
    r.merge(caller.reach(Permission::ActivatePlans));
    r
}

const PLAN_COLS: &str = "p.*, (SELECT count(*) FROM incidents d WHERE d.plan_id = p.id \
     AND d.exercise = TRUE AND d.status IN ('active', 'closed', 'reviewed')) AS drills, \
     (SELECT n.name FROM nodes n WHERE n.id = p.node_id) AS node_name";

fn load_plan(conn: &mut dyn Conn, reach: &Reach, id: Uuid, now: DateTime<Utc>) -> Result<Plan> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), PLAN_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {PLAN_COLS} FROM plans p WHERE p.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Plan::from_row(&row, now)
}

/// A plan the caller may see.
pub fn get_plan(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Plan> {
    load_plan(conn, &read_reach(caller), id, now)
}

/// A plan by id with no scope (triggers, jobs).
pub fn get_plan_unscoped(conn: &mut dyn Conn, id: Uuid, now: DateTime<Utc>) -> Result<Plan> {
    load_plan(
        conn,
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
        now,
    )
}

/// The caller sees the plan; may it use `p` on it? `Forbidden` when not.
fn check(conn: &mut dyn Conn, caller: &Caller, plan: &Plan, p: Permission) -> Result<()> {
    if caller.reach(p).contains_node(conn, plan.node_id)? {
        Ok(())
    } else {
        Err(StoreError::Forbidden("plan.not_allowed"))
    }
}

/// List filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Plans of this node's subtree only.
    pub node_id: Option<Uuid>,
    /// active (default) or retired.
    pub status: Option<String>,
}

/// Plans the caller may see, with their review flags.
pub fn list_plans(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &PlanQuery,
    now: DateTime<Utc>,
) -> Result<Vec<Plan>> {
    let mut params = Vec::new();
    let mut parts = vec![read_reach(caller).predicate(conn.dialect(), PLAN_SCOPE, &mut params)];
    let status = q.status.as_deref().unwrap_or("active");
    if !matches!(status, "active" | "retired") {
        return Err(bad("value.invalid", "status"));
    }
    params.push(status.into());
    parts.push(format!("p.status = ${}", params.len()));
    if let Some(n) = q.node_id {
        let sub = Reach {
            nodes: vec![n],
            ..Reach::default()
        };
        parts.push(sub.predicate(conn.dialect(), PLAN_SCOPE, &mut params));
    }
    let rows = conn.query(
        &format!(
            "SELECT {PLAN_COLS} FROM plans p WHERE {} ORDER BY p.name, p.id LIMIT 500",
            parts.join(" AND ")
        ),
        &params,
    )?;
    rows.iter().map(|r| Plan::from_row(r, now)).collect()
}

/// A new plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The node that owns the plan (where the caller may manage plans).
    pub node_id: Option<Uuid>,
    pub name: Option<String>,
    /// Days between reviews (default 365).
    pub review_period_days: Option<i64>,
    /// In a patch: `active` or `retired`.
    pub status: Option<String>,
}

fn name_text(raw: Option<&str>) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(bad("value.required", "name"));
    }
    if s.chars().count() > NAME_MAX {
        return Err(bad("value.too_long", "name"));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("value.invalid", "name"));
    }
    Ok(s.to_owned())
}

fn map_name_taken(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { detail, .. }
            if detail.contains("plans_node_name")
                || detail.contains("plans.node_id, plans.name") =>
        {
            StoreError::Conflict {
                code: "plan.name_taken",
                detail,
            }
        }
        other => other,
    }
}

/// Create a plan at a node where the caller may manage plans.
pub fn create_plan(tx: &mut Tx, caller: &Caller, input: &PlanInput) -> Result<Plan> {
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let name = name_text(input.name.as_deref())?;
    let period = input.review_period_days.unwrap_or(365);
    dp::check_review_period(period)?;
    if input.status.as_deref().is_some_and(|s| s != "active") {
        return Err(bad("value.invalid", "status"));
    }
    let active = tx.conn().query_i64(
        "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
        &params![node],
    )? > 0;
    if !active
        || !caller
            .reach(Permission::ManagePlans)
            .contains_node(tx.conn(), node)?
    {
        return Err(bad("record.reference_invalid", "node_id"));
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "plans",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("name", name.into()),
            ("status", "active".into()),
            ("current_version", 0i64.into()),
            ("review_period_days", period.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .map_err(map_name_taken)?;
    get_plan_unscoped(tx.conn(), id, now)
}

/// Rename, change the review period, retire or reactivate.
pub fn edit_plan(tx: &mut Tx, caller: &Caller, id: Uuid, patch: &PlanInput) -> Result<Plan> {
    let now = tx.now();
    let plan = get_plan(tx.conn(), caller, id, now)?;
    check(tx.conn(), caller, &plan, Permission::ManagePlans)?;
    if patch.node_id.is_some_and(|n| n != plan.node_id) {
        return Err(bad("plan.node_fixed", "node_id"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.name.is_some() {
        cols.push(("name", name_text(patch.name.as_deref())?.into()));
    }
    if let Some(p) = patch.review_period_days {
        dp::check_review_period(p)?;
        cols.push(("review_period_days", p.into()));
    }
    if let Some(s) = patch.status.as_deref() {
        if !matches!(s, "active" | "retired") {
            return Err(bad("value.invalid", "status"));
        }
        cols.push(("status", s.into()));
    }
    cols.push(("updated_at", now.into()));
    tx.update("plans", id, &cols).map_err(map_name_taken)?;
    get_plan_unscoped(tx.conn(), id, now)
}

/// Record that the plan was reviewed and stays as it is.
pub fn review_plan(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Plan> {
    let now = tx.now();
    let plan = get_plan(tx.conn(), caller, id, now)?;
    check(tx.conn(), caller, &plan, Permission::ManagePlans)?;
    if plan.current_version == 0 {
        return Err(StoreError::Conflict {
            code: "plan.no_current_version",
            detail: "nothing adopted to review".into(),
        });
    }
    tx.update(
        "plans",
        id,
        &[("last_reviewed_at", now.into()), ("updated_at", now.into())],
    )?;
    get_plan_unscoped(tx.conn(), id, now)
}

// ---------------------------------------------------------------------------------------------
// Versions.

/// A new version: the body (`anxin_domain::plan::PlanBody`) and what changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInput {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: Option<Json>,
    pub change_summary: Option<String>,
}

/// Parse and check a body on its own (shape and rules; not the references).
pub fn parse_body(raw: &Json) -> Result<PlanBody> {
    let body: PlanBody = serde_json::from_value(raw.clone()).map_err(|e| {
        // serde names no path; the message does ("unknown field `x`", "missing field `risks`").
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .map(|f| format!("body.{f}"))
            .unwrap_or_else(|| "body".into());
        bad("plan.body_invalid", field)
    })?;
    body.validate()?;
    Ok(body)
}

/// Check the references of a body against the plan's node subtree (seed 001): role holders hold
/// a grant valid now inside it, shelters are shelters or convertible spaces inside it, device
/// types are known.
pub fn check_references(
    conn: &mut dyn Conn,
    node: Uuid,
    body: &PlanBody,
    now: DateTime<Utc>,
) -> Result<()> {
    let nodes = id_list(&subtree(conn, node)?);
    let d = conn.dialect();
    for (i, r) in body.roles.iter().enumerate() {
        let Some(u) = r.user_id else { continue };
        let n = conn.query_i64(
            &format!(
                "SELECT count(*) FROM grants g LEFT JOIN grids gr ON g.scope_kind = 'grid' \
                 AND gr.id = g.scope_id \
                 WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.valid_from <= $2 \
                 AND (g.valid_to IS NULL OR g.valid_to > $2) \
                 AND ((g.scope_kind = 'node' AND {}) OR (g.scope_kind = 'grid' AND {}))",
                d.in_json_list("g.scope_id", 3),
                d.in_json_list("gr.community_id", 3)
            ),
            &[Value::from(u), Value::from(now), nodes.clone()],
        )?;
        if n == 0 {
            return Err(bad(
                "plan.role_holder_outside",
                format!("roles[{i}].user_id"),
            ));
        }
    }
    for (i, s) in body.shelters.iter().enumerate() {
        let n = conn.query_i64(
            &format!(
                "SELECT count(*) FROM facilities WHERE id = $1 \
                 AND kind IN ('shelter', 'convertible_space') AND {}",
                d.in_json_list("node_id", 2)
            ),
            &[Value::from(*s), nodes.clone()],
        )?;
        if n == 0 {
            return Err(bad("plan.shelter_invalid", format!("shelters[{i}]")));
        }
    }
    for (i, t) in body.triggers.iter().enumerate() {
        if let dp::Trigger::Alarm { device_types, .. } = t {
            for (j, k) in device_types.iter().enumerate() {
                if crate::monitor::DeviceKind::parse(k).is_none() {
                    return Err(bad(
                        "value.invalid",
                        format!("triggers[{i}].device_types[{j}]"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn load_version(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<PlanVersion> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), PLAN_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT p.* FROM plan_versions p WHERE p.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    PlanVersion::from_row(&row)
}

/// A version the caller may see.
pub fn get_version(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<PlanVersion> {
    load_version(conn, &read_reach(caller), id)
}

/// A plan's versions, newest first.
pub fn versions(
    conn: &mut dyn Conn,
    caller: &Caller,
    plan_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<PlanVersion>> {
    let plan = get_plan(conn, caller, plan_id, now)?;
    let rows = conn.query(
        "SELECT * FROM plan_versions WHERE plan_id = $1 ORDER BY version DESC",
        &params![plan.id],
    )?;
    rows.iter().map(PlanVersion::from_row).collect()
}

/// The version in force.
pub fn current_version(conn: &mut dyn Conn, plan: &Plan) -> Result<Option<PlanVersion>> {
    conn.query_one(
        "SELECT * FROM plan_versions WHERE plan_id = $1 AND status = 'current'",
        &params![plan.id],
    )?
    .map(|r| PlanVersion::from_row(&r))
    .transpose()
}

/// Store a version (validated by the caller of this function) with the next number. Used for
/// drafts here and for the proposals of an after-action review (`status` proposed, `review_id`).
pub fn insert_version(
    tx: &mut Tx,
    plan: &Plan,
    body: &PlanBody,
    status: &str,
    change_summary: &str,
    review_id: Option<Uuid>,
    created_by: Option<Uuid>,
) -> Result<PlanVersion> {
    if !matches!(status, "draft" | "proposed") {
        return Err(bad("value.invalid", "status"));
    }
    let next = tx.conn().query_i64(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM plan_versions WHERE plan_id = $1",
        &params![plan.id],
    )?;
    let id = tx.new_id();
    let now = tx.now();
    let text = serde_json::to_string(body).map_err(|e| StoreError::Backend(e.to_string()))?;
    let row = tx.insert(
        "plan_versions",
        &[
            ("id", id.into()),
            ("plan_id", plan.id.into()),
            ("node_id", plan.node_id.into()),
            ("version", next.into()),
            ("status", status.into()),
            ("body", text.into()),
            ("change_summary", change_summary.into()),
            ("review_id", review_id.into()),
            ("created_by", created_by.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    PlanVersion::from_row(&row)
}

fn summary_text(raw: Option<&str>) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.chars().count() > SUMMARY_MAX {
        return Err(bad("value.too_long", "change_summary"));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(bad("value.invalid", "change_summary"));
    }
    Ok(s.to_owned())
}

/// Write a draft version of a plan (needs `manage_plans` on its node).
pub fn create_version(
    tx: &mut Tx,
    caller: &Caller,
    plan_id: Uuid,
    input: &VersionInput,
) -> Result<PlanVersion> {
    let now = tx.now();
    let plan = get_plan(tx.conn(), caller, plan_id, now)?;
    check(tx.conn(), caller, &plan, Permission::ManagePlans)?;
    let body = parse_body(
        input
            .body
            .as_ref()
            .ok_or_else(|| bad("value.required", "body"))?,
    )?;
    check_references(tx.conn(), plan.node_id, &body, now)?;
    let summary = summary_text(input.change_summary.as_deref())?;
    insert_version(tx, &plan, &body, "draft", &summary, None, caller.user_id)
}

fn wrong_status(v: &PlanVersion, action: &str) -> StoreError {
    StoreError::Conflict {
        code: "plan_version.wrong_status",
        detail: format!("{} cannot {action}", v.status),
    }
}

/// Adopt a draft or proposed version: it becomes current, the previous current one superseded,
/// and the plan counts as reviewed now. The references are checked again (people and places may
/// have changed since the version was written).
pub fn adopt(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<PlanVersion> {
    let now = tx.now();
    let v = get_version(tx.conn(), caller, id)?;
    let plan = get_plan_unscoped(tx.conn(), v.plan_id, now)?;
    check(tx.conn(), caller, &plan, Permission::ManagePlans)?;
    if !matches!(v.status.as_str(), "draft" | "proposed") {
        return Err(wrong_status(&v, "be adopted"));
    }
    let body = v.plan_body()?;
    body.validate()?;
    check_references(tx.conn(), plan.node_id, &body, now)?;
    if let Some(old) = current_version(tx.conn(), &plan)? {
        tx.update(
            "plan_versions",
            old.id,
            &[("status", "superseded".into()), ("updated_at", now.into())],
        )?;
    }
    let row = tx.update(
        "plan_versions",
        id,
        &[
            ("status", "current".into()),
            ("adopted_by", caller.user_id.into()),
            ("adopted_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    tx.update(
        "plans",
        plan.id,
        &[
            ("current_version", v.version.into()),
            ("last_reviewed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    PlanVersion::from_row(&row)
}

/// Reject a proposed version.
pub fn reject(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<PlanVersion> {
    let now = tx.now();
    let v = get_version(tx.conn(), caller, id)?;
    let plan = get_plan_unscoped(tx.conn(), v.plan_id, now)?;
    check(tx.conn(), caller, &plan, Permission::ManagePlans)?;
    if v.status != "proposed" {
        return Err(wrong_status(&v, "be rejected"));
    }
    let row = tx.update(
        "plan_versions",
        id,
        &[("status", "rejected".into()), ("updated_at", now.into())],
    )?;
    PlanVersion::from_row(&row)
}

// ---------------------------------------------------------------------------------------------
// Trigger matching.

/// An active plan with an adopted version: what trigger matching reads.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub plan_id: Uuid,
    pub node_id: Uuid,
    pub name: String,
    pub version_id: Uuid,
    pub body: PlanBody,
}

/// Active plans with a current version whose node is in `nodes`.
fn candidates(conn: &mut dyn Conn, nodes: &[Uuid]) -> Result<Vec<Candidate>> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn.query(
        &format!(
            "SELECT p.id, p.node_id, p.name, v.id AS version_id, v.body FROM plans p \
             JOIN plan_versions v ON v.plan_id = p.id AND v.status = 'current' \
             WHERE p.status = 'active' AND {} ORDER BY p.id",
            conn.dialect().in_json_list("p.node_id", 1)
        ),
        &[id_list(nodes)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: String = r.get("body")?;
        let Ok(body) = serde_json::from_str::<PlanBody>(&body) else {
            tracing::warn!("stored plan body unreadable; skipped in trigger matching");
            continue;
        };
        out.push(Candidate {
            plan_id: r.get("id")?,
            node_id: r.get("node_id")?,
            name: r.get("name")?,
            version_id: r.get("version_id")?,
            body,
        });
    }
    Ok(out)
}

/// Plans an issued warning starts: active plans with a matching warning trigger whose node lies
/// within the warning's node subtree or the subtrees of its area's nodes.
pub fn plans_for_warning(
    conn: &mut dyn Conn,
    w: &crate::warnings::Warning,
) -> Result<Vec<Candidate>> {
    let mut nodes = subtree(conn, w.node_id)?;
    for n in w.area()?.nodes {
        for s in subtree(conn, n)? {
            if !nodes.contains(&s) {
                nodes.push(s);
            }
        }
    }
    let (level, category) = (w.level(), w.category.clone());
    Ok(candidates(conn, &nodes)?
        .into_iter()
        .filter(|c| c.body.matches_warning(level, &category))
        .collect())
}

/// A raised alarm as trigger matching sees it.
#[derive(Debug, Clone)]
pub struct RaisedAlarm {
    pub id: Uuid,
    pub node_id: Uuid,
    pub device_type: String,
    pub rule_id: String,
    pub alarm_type: String,
}

pub fn raised_alarm(conn: &mut dyn Conn, id: Uuid) -> Result<Option<RaisedAlarm>> {
    conn.query_one(
        "SELECT a.id, a.node_id, a.rule_id, a.alarm_type, d.kind FROM alarms a \
         JOIN devices d ON d.id = a.device_id WHERE a.id = $1",
        &params![id],
    )?
    .map(|r| {
        Ok(RaisedAlarm {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            device_type: r.get("kind")?,
            rule_id: r.get("rule_id")?,
            alarm_type: r.get("alarm_type")?,
        })
    })
    .transpose()
}

/// Plans a raised alarm starts: active plans with a matching alarm trigger at the alarm's node
/// or above it (the community's plan covers its compounds' devices).
pub fn plans_for_alarm(conn: &mut dyn Conn, a: &RaisedAlarm) -> Result<Vec<Candidate>> {
    let mut nodes = vec![a.node_id];
    let mut at = a.node_id;
    for _ in 0..8 {
        let parent: Option<Uuid> =
            match conn.query_one("SELECT parent_id FROM nodes WHERE id = $1", &params![at])? {
                Some(r) => r.get("parent_id")?,
                None => None,
            };
        let Some(p) = parent else { break };
        nodes.push(p);
        at = p;
    }
    Ok(candidates(conn, &nodes)?
        .into_iter()
        .filter(|c| {
            c.body
                .matches_alarm(&a.device_type, &a.rule_id, &a.alarm_type)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// What the version form offers.

/// An account that may fill a role of a plan at a node: it holds a grant inside the subtree.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub user_id: Uuid,
    /// The username and the masked display name (no name in clear).
    pub label: String,
}

/// Accounts holding a grant valid now inside `node`'s subtree (what [`check_references`] accepts).
pub fn holders(conn: &mut dyn Conn, node: Uuid, now: DateTime<Utc>) -> Result<Vec<Holder>> {
    let nodes = id_list(&subtree(conn, node)?);
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT DISTINCT u.id, u.username, u.display_name FROM users u \
             JOIN grants g ON g.user_id = u.id LEFT JOIN grids gr ON g.scope_kind = 'grid' \
             AND gr.id = g.scope_id WHERE g.revoked_at IS NULL AND g.valid_from <= $1 \
             AND (g.valid_to IS NULL OR g.valid_to > $1) \
             AND ((g.scope_kind = 'node' AND {}) OR (g.scope_kind = 'grid' AND {})) \
             ORDER BY u.username LIMIT 500",
            d.in_json_list("g.scope_id", 2),
            d.in_json_list("gr.community_id", 2)
        ),
        &[Value::from(now), nodes],
    )?;
    rows.iter()
        .map(|r| {
            let username: Option<String> = r.get("username")?;
            let name: String = r.get("display_name")?;
            Ok(Holder {
                user_id: r.get("id")?,
                label: format!(
                    "{}（{}）",
                    username.unwrap_or_default(),
                    anxin_domain::mask_name(&name)
                ),
            })
        })
        .collect()
}

/// A shelter or convertible space a plan at a node may list.
#[derive(Debug, Clone, Serialize)]
pub struct ShelterOption {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub capacity: Option<i64>,
}

pub fn shelter_options(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<ShelterOption>> {
    let nodes = id_list(&subtree(conn, node)?);
    let rows = conn.query(
        &format!(
            "SELECT id, name, kind, status, capacity FROM facilities \
             WHERE kind IN ('shelter', 'convertible_space') AND {} ORDER BY name, id LIMIT 500",
            conn.dialect().in_json_list("node_id", 1)
        ),
        &[nodes],
    )?;
    rows.iter()
        .map(|r| {
            Ok(ShelterOption {
                id: r.get("id")?,
                name: r.get("name")?,
                kind: r.get("kind")?,
                status: r.get("status")?,
                capacity: r.get("capacity")?,
            })
        })
        .collect()
}

/// The nodes where the caller may write plans (its grants' nodes), with their names.
pub fn plan_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let reach = caller.reach(Permission::ManagePlans);
    if reach.nodes.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn.query(
        &format!(
            "SELECT id, name FROM nodes WHERE status = 'active' AND {} ORDER BY name, id",
            conn.dialect().in_json_list("id", 1)
        ),
        &[id_list(&reach.nodes)],
    )?;
    rows.iter()
        .map(|r| Ok((r.get("id")?, r.get("name")?)))
        .collect()
}
