//! Incident operations: the timeline, tasks, situation reports, shelter stays, and the
//! after-action review (复盘) that turns lessons into proposed plan versions.
//!
//! Everything hangs off an incident and is placed by its node ([`super::INCIDENT_SCOPE`]): an
//! incident outside the caller's reach ([`super::incident_reach`]) is `NotFound`, like a missing
//! one; seeing it but lacking the step's permission is `Forbidden`. Tasks, reports, stays and
//! reviews are records (logged through [`Tx`]); every change also goes to the incident log with
//! no personal data in clear (names masked).
//!
//! - Tasks (`incident_tasks`): created by activation and by welfare checks needing help, or by
//!   hand ([`add_task`], `run_incidents`; the assignee is a staff user with a grant in the
//!   incident's scope). Status open → in_progress → done, or cancelled ([`set_task_status`]);
//!   only while the incident is active; the assignee may move their own task.
//! - Situation reports (`incident_sitreps`): draft (`run_incidents`), figures taken from the
//!   records at that moment ([`figures`]; other capabilities add theirs through [`FIGURES`]) →
//!   approved (`approve_reports`, not by the author) → published.
//! - Shelter stays (`shelter_stays`): check-in of a resident in scope or a walk-in (name and
//!   phone sealed under the stay's data key, masks in clear) at an open shelter in the
//!   incident's scope; refused over capacity (`shelter.full`); check-out.
//! - Review (`incident_reviews`): once the incident is closed; each lesson may carry a revised
//!   plan body, stored as a `proposed` plan version (version = max + 1, `review_id` the review,
//!   `change_summary` the lesson) for the plans page to adopt or reject. The incident becomes
//!   `reviewed`.

use anxin_domain::plan::PlanBody;
use anxin_domain::roles::Permission;
use anxin_domain::{mask_name, mask_phone, Phone};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::{incident_reach, load_incident, log, Incident, INCIDENT_SCOPE};
use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

const TITLE_MAX: usize = 100;
const TEXT_MAX: usize = 4_000;
const NOTE_MAX: usize = 1_000;
const NAME_MAX: usize = 50;
const LESSONS_MAX: usize = 50;
const LOG_PAGE_MAX: i64 = 1_000;

/// Sealing context of a walk-in's name and phone.
const NAME_FIELD: &str = "shelter_stays.name";
const PHONE_FIELD: &str = "shelter_stays.phone";

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

/// Trimmed text: `value.required` when empty and required, `value.too_long`, `value.invalid` for
/// control characters (line breaks allowed when `multiline`).
fn clean(
    field: &str,
    raw: Option<&str>,
    max: usize,
    required: bool,
    multiline: bool,
) -> Result<String> {
    let s = raw.unwrap_or_default().trim();
    if s.is_empty() && required {
        return Err(bad("value.required", field));
    }
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

/// Whether the caller holds `p` where the incident lives; `Forbidden(code)` otherwise.
fn require(
    conn: &mut dyn Conn,
    caller: &Caller,
    p: Permission,
    inc: &Incident,
    code: &'static str,
) -> Result<()> {
    if within(conn, &caller.reach(p), inc.id)? {
        Ok(())
    } else {
        Err(StoreError::Forbidden(code))
    }
}

fn within(conn: &mut dyn Conn, reach: &Reach, incident: Uuid) -> Result<bool> {
    let mut params = vec![Value::from(incident)];
    let pred = reach.predicate(conn.dialect(), INCIDENT_SCOPE, &mut params);
    Ok(conn.query_i64(
        &format!("SELECT count(*) FROM incidents i WHERE i.id = $1 AND {pred}"),
        &params,
    )? > 0)
}

fn must_be_active(inc: &Incident) -> Result<()> {
    if inc.status == "active" {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            code: "incident.must_be_active",
            detail: format!("incident is {}", inc.status),
        })
    }
}

/// The incident's node and everything below it.
fn subtree(inc: &Incident) -> Reach {
    Reach {
        nodes: vec![inc.node_id],
        ..Reach::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Incidents and the timeline.

const STATUSES: &[&str] = &["pending", "declined", "active", "closed", "reviewed"];

/// List filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncidentQuery {
    /// `pending`, `declined`, `active`, `closed` or `reviewed`.
    pub status: Option<String>,
    /// Only drills (`true`) or only real incidents (`false`).
    pub exercise: Option<bool>,
}

/// An incident with the names a list shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct IncidentItem {
    #[serde(flatten)]
    pub incident: Incident,
    pub plan_name: String,
    pub node_name: String,
}

fn item(r: &Row) -> Result<IncidentItem> {
    Ok(IncidentItem {
        incident: Incident::from_row(r)?,
        plan_name: r.get("plan_name")?,
        node_name: r.get("node_name")?,
    })
}

const ITEM_SQL: &str = "SELECT i.*, p.name AS plan_name, n.name AS node_name FROM incidents i \
     JOIN plans p ON p.id = i.plan_id JOIN nodes n ON n.id = i.node_id";

/// Incidents in the caller's reach: active first, then pending, closed, the rest; newest first
/// within each (at most 500).
pub fn list(conn: &mut dyn Conn, caller: &Caller, q: &IncidentQuery) -> Result<Vec<IncidentItem>> {
    let mut params = Vec::new();
    let mut parts =
        vec![incident_reach(caller).predicate(conn.dialect(), INCIDENT_SCOPE, &mut params)];
    if let Some(s) = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s) {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        parts.push(format!("i.status = ${}", params.len()));
    }
    if let Some(e) = q.exercise {
        params.push(e.into());
        parts.push(format!("i.exercise = ${}", params.len()));
    }
    let rows = conn.query(
        &format!(
            "{ITEM_SQL} WHERE {} ORDER BY CASE i.status WHEN 'active' THEN 0 WHEN 'pending' THEN 1 \
             WHEN 'closed' THEN 2 ELSE 3 END, i.created_at DESC, i.id DESC LIMIT 500",
            parts.join(" AND ")
        ),
        &params,
    )?;
    rows.iter().map(item).collect()
}

/// One incident with its plan's and node's names.
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<IncidentItem> {
    let inc = load_incident(conn, &incident_reach(caller), id)?;
    let row = conn
        .query_one(&format!("{ITEM_SQL} WHERE i.id = $1"), &params![inc.id])?
        .ok_or(StoreError::NotFound)?;
    item(&row)
}

/// A line of the timeline.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: Option<Uuid>,
    /// The actor's display name, masked.
    pub actor_name: Option<String>,
    pub kind: String,
    pub summary: String,
    pub ref_kind: Option<String>,
    pub ref_id: Option<Uuid>,
}

/// Paging of the timeline.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    /// Lines to skip (default 0).
    pub offset: Option<i64>,
    /// Lines per page (default 200, at most 1,000).
    pub limit: Option<i64>,
}

/// A page of the timeline, oldest first (newest last).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<i64>,
    /// Lines in the whole timeline.
    pub total: i64,
}

/// The incident's timeline, oldest first.
pub fn timeline(conn: &mut dyn Conn, caller: &Caller, id: Uuid, q: &LogQuery) -> Result<LogPage> {
    let inc = load_incident(conn, &incident_reach(caller), id)?;
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(bad("value.invalid", "offset"));
    }
    let limit = q.limit.unwrap_or(200);
    if !(1..=LOG_PAGE_MAX).contains(&limit) {
        return Err(bad("value.invalid", "limit"));
    }
    let rows = conn.query(
        "SELECT l.*, u.display_name FROM incident_log l LEFT JOIN users u ON u.id = l.actor \
         WHERE l.incident_id = $1 ORDER BY l.seq LIMIT $2 OFFSET $3",
        &params![inc.id, limit + 1, offset],
    )?;
    let more = rows.len() as i64 > limit;
    let lines = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            Ok(LogLine {
                id: r.get("id")?,
                at: r.get("at")?,
                actor: r.get("actor")?,
                actor_name: r
                    .get::<Option<String>>("display_name")?
                    .map(|n| mask_name(&n)),
                kind: r.get("kind")?,
                summary: r.get("summary")?,
                ref_kind: r.get("ref_kind")?,
                ref_id: r.get("ref_id")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let total = conn.query_i64(
        "SELECT count(*) FROM incident_log WHERE incident_id = $1",
        &params![inc.id],
    )?;
    Ok(LogPage {
        lines,
        next_offset: more.then_some(offset + limit),
        total,
    })
}

// ---------------------------------------------------------------------------------------------
// Tasks.

/// A task of an incident (`IncidentTask` in the API document: warnings have their own `Task`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = IncidentTask))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub incident_title: String,
    pub node_id: Uuid,
    pub title: String,
    pub description: String,
    pub role_key: String,
    pub assignee_user_id: Option<Uuid>,
    /// The assignee's display name, masked.
    pub assignee_name: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// open, in_progress, done, cancelled
    pub status: String,
    pub notes: String,
    /// plan, welfare, manual
    pub source: String,
    pub source_id: Option<Uuid>,
    pub done_by: Option<Uuid>,
    pub done_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TASK_SQL: &str = "SELECT t.*, i.title AS incident_title, u.display_name AS assignee_name \
     FROM incident_tasks t JOIN incidents i ON i.id = t.incident_id \
     LEFT JOIN users u ON u.id = t.assignee_user_id";

impl Task {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            incident_title: r.get("incident_title")?,
            node_id: r.get("node_id")?,
            title: r.get("title")?,
            description: r.get("description")?,
            role_key: r.get("role_key")?,
            assignee_user_id: r.get("assignee_user_id")?,
            assignee_name: r
                .get::<Option<String>>("assignee_name")?
                .map(|n| mask_name(&n)),
            due_at: r.get("due_at")?,
            status: r.get("status")?,
            notes: r.get("notes")?,
            source: r.get("source")?,
            source_id: r.get("source_id")?,
            done_by: r.get("done_by")?,
            done_at: r.get("done_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

const TASK_ORDER: &str = "ORDER BY CASE t.status WHEN 'in_progress' THEN 0 WHEN 'open' THEN 1 \
     WHEN 'done' THEN 2 ELSE 3 END, t.due_at, t.created_at, t.id";

/// The tasks of an incident in reach: in progress, open, done, cancelled; by deadline.
pub fn tasks(conn: &mut dyn Conn, caller: &Caller, incident: Uuid) -> Result<Vec<Task>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    let rows = conn.query(
        &format!("{TASK_SQL} WHERE t.incident_id = $1 {TASK_ORDER}"),
        &params![inc.id],
    )?;
    rows.iter().map(Task::from_row).collect()
}

/// The signed-in user's tasks in active incidents (open and in progress first).
pub fn my_tasks(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Task>> {
    let Some(me) = caller.user_id else {
        return Ok(Vec::new());
    };
    let rows = conn.query(
        &format!(
            "{TASK_SQL} WHERE t.assignee_user_id = $1 AND i.status = 'active' {TASK_ORDER} LIMIT 500"
        ),
        &params![me],
    )?;
    rows.iter().map(Task::from_row).collect()
}

/// A task added by hand.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    pub title: Option<String>,
    pub description: Option<String>,
    /// A staff user with a grant in the incident's scope.
    pub assignee_user_id: Option<Uuid>,
    pub due_at: Option<DateTime<Utc>>,
}

/// A staff user a task may be given to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assignee {
    pub user_id: Uuid,
    pub username: Option<String>,
    /// The display name, masked.
    pub name: String,
}

/// Staff users (enabled) holding a grant valid at `now`, other than a resident's, whose scope
/// meets the incident's: a node above or inside its node, or a grid of a community inside it.
fn assignees_of(
    conn: &mut dyn Conn,
    inc: &Incident,
    now: DateTime<Utc>,
    only: Option<Uuid>,
) -> Result<Vec<Assignee>> {
    let mut params = vec![Value::from(inc.node_id), Value::from(now)];
    let one = match only {
        Some(u) => {
            params.push(u.into());
            " AND u.id = $3"
        }
        None => "",
    };
    let rows = conn.query(
        &format!(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = $1 \
               UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id), \
             up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE id = $1 \
               UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) \
             SELECT DISTINCT u.id, u.username, u.display_name FROM users u \
             JOIN grants g ON g.user_id = u.id \
             WHERE u.kind = 'staff' AND u.disabled = FALSE AND g.role <> 'resident' \
               AND g.revoked_at IS NULL AND g.valid_from <= $2 \
               AND (g.valid_to IS NULL OR g.valid_to > $2){one} \
               AND ((g.scope_kind = 'node' AND (g.scope_id IN (SELECT id FROM sub) \
                       OR g.scope_id IN (SELECT id FROM up))) \
                 OR (g.scope_kind = 'grid' AND g.scope_id IN \
                       (SELECT gr.id FROM grids gr WHERE gr.community_id IN (SELECT id FROM sub)))) \
             ORDER BY u.username, u.id LIMIT 500"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Assignee {
                user_id: r.get("id")?,
                username: r.get("username")?,
                name: mask_name(&r.get::<String>("display_name")?),
            })
        })
        .collect()
}

/// Who a task of the incident may be given to at `now` (`run_incidents`).
pub fn assignees(
    conn: &mut dyn Conn,
    caller: &Caller,
    incident: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Assignee>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    require(
        conn,
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    assignees_of(conn, &inc, now, None)
}

fn task_by_id(conn: &mut dyn Conn, id: Uuid) -> Result<Task> {
    let row = conn
        .query_one(&format!("{TASK_SQL} WHERE t.id = $1"), &params![id])?
        .ok_or(StoreError::NotFound)?;
    Task::from_row(&row)
}

/// Add a task by hand (`run_incidents`), while the incident is active.
pub fn add_task(tx: &mut Tx, caller: &Caller, incident: Uuid, input: TaskInput) -> Result<Task> {
    let inc = load_incident(tx.conn(), &incident_reach(caller), incident)?;
    require(
        tx.conn(),
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    must_be_active(&inc)?;
    let title = clean("title", input.title.as_deref(), TITLE_MAX, true, false)?;
    let description = clean(
        "description",
        input.description.as_deref(),
        TEXT_MAX,
        false,
        true,
    )?;
    let now = tx.now();
    if let Some(u) = input.assignee_user_id {
        if assignees_of(tx.conn(), &inc, now, Some(u))?.is_empty() {
            return Err(bad("task.assignee_invalid", "assignee_user_id"));
        }
    }
    if input.due_at.is_some_and(|d| d <= now) {
        return Err(bad("task.due_in_past", "due_at"));
    }
    let id = tx.new_id();
    tx.insert(
        "incident_tasks",
        &[
            ("id", id.into()),
            ("incident_id", inc.id.into()),
            ("node_id", inc.node_id.into()),
            ("title", title.clone().into()),
            ("description", description.into()),
            ("role_key", "".into()),
            ("assignee_user_id", input.assignee_user_id.into()),
            ("due_at", input.due_at.into()),
            ("status", "open".into()),
            ("notes", "".into()),
            ("source", "manual".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "task.added",
        &format!("新增任务：{title}"),
        Some(("incident_tasks", id)),
    )?;
    task_by_id(tx.conn(), id)
}

/// A change of a task's status, with a note.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskStatusInput {
    /// `open`, `in_progress`, `done` or `cancelled`.
    pub status: Option<String>,
    /// Appended to the task's notes.
    pub notes: Option<String>,
}

const TASK_STATUSES: &[&str] = &["open", "in_progress", "done", "cancelled"];

fn task_status_zh(s: &str) -> &'static str {
    match s {
        "open" => "待办",
        "in_progress" => "进行中",
        "done" => "已完成",
        _ => "已取消",
    }
}

/// Move a task (`run_incidents` in the incident's scope, or its assignee): open ⇄ in_progress,
/// either → done or cancelled; done and cancelled are final. Only while the incident is active.
pub fn set_task_status(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    input: TaskStatusInput,
) -> Result<Task> {
    let task = task_by_id(tx.conn(), id)?;
    let mine = task.assignee_user_id.is_some() && task.assignee_user_id == caller.user_id;
    let inc = if mine {
        super::load_incident(
            tx.conn(),
            &Reach {
                all: true,
                ..Reach::default()
            },
            task.incident_id,
        )?
    } else {
        let inc = load_incident(tx.conn(), &incident_reach(caller), task.incident_id)?;
        require(
            tx.conn(),
            caller,
            Permission::RunIncidents,
            &inc,
            "incident.ops_not_allowed",
        )?;
        inc
    };
    must_be_active(&inc)?;
    let to = input
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("value.required", "status"))?;
    if !TASK_STATUSES.contains(&to) {
        return Err(bad("value.invalid", "status"));
    }
    let note = clean("notes", input.notes.as_deref(), NOTE_MAX, false, true)?;
    let from = task.status.as_str();
    let allowed = match from {
        "open" | "in_progress" => to != from || !note.is_empty(),
        _ => false,
    };
    if !allowed {
        return Err(StoreError::Conflict {
            code: "task.wrong_status",
            detail: format!("{from} cannot become {to}"),
        });
    }
    let now = tx.now();
    let mut notes = task.notes.clone();
    if !note.is_empty() {
        if !notes.is_empty() {
            notes.push('\n');
        }
        notes.push_str(&note);
    }
    let finished = matches!(to, "done" | "cancelled");
    tx.update(
        "incident_tasks",
        id,
        &[
            ("status", to.into()),
            ("notes", notes.into()),
            (
                "done_by",
                if finished { caller.user_id } else { None }.into(),
            ),
            ("done_at", if finished { Some(now) } else { None }.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let summary = if to == from {
        format!("任务「{}」添加说明", task.title)
    } else {
        format!(
            "任务「{}」：{} → {}{}",
            task.title,
            task_status_zh(from),
            task_status_zh(to),
            if note.is_empty() {
                ""
            } else {
                "（附说明）"
            }
        )
    };
    log(
        tx,
        inc.id,
        &format!("task.{to}"),
        &summary,
        Some(("incident_tasks", id)),
    )?;
    task_by_id(tx.conn(), id)
}

// ---------------------------------------------------------------------------------------------
// Situation reports.

/// A figure another capability adds to situation reports (call-outs, welfare checks
/// remaining, …): its key and value for the incident, or `None` when it has nothing to say.
/// The volunteers and welfare part lists its figures in [`FIGURES`].
pub type Figure = fn(&mut dyn Conn, &Incident) -> Result<Option<(&'static str, Json)>>;

/// Figures added by other capabilities, in order.
pub static FIGURES: &[Figure] = &[];

/// The figures of an incident now: tasks by status, shelters (open, occupancy, capacity), the
/// activation's counts, and each of [`FIGURES`].
pub fn figures(conn: &mut dyn Conn, inc: &Incident, at: DateTime<Utc>) -> Result<Json> {
    let mut tasks = serde_json::Map::new();
    for s in TASK_STATUSES {
        tasks.insert((*s).into(), json!(0));
    }
    for r in conn.query(
        "SELECT status, count(*) AS n FROM incident_tasks WHERE incident_id = $1 GROUP BY status",
        &params![inc.id],
    )? {
        tasks.insert(r.get("status")?, json!(r.get::<i64>("n")?));
    }
    let shelters = shelters_of(conn, inc)?;
    let capacity: i64 = shelters.iter().filter_map(|s| s.capacity).sum();
    let occupancy: i64 = shelters.iter().map(|s| s.occupancy).sum();
    let sheltered = conn.query_i64(
        "SELECT count(*) FROM shelter_stays WHERE incident_id = $1 AND checked_out_at IS NULL",
        &params![inc.id],
    )?;
    let mut out = serde_json::Map::new();
    out.insert("at".into(), json!(at));
    out.insert("tasks".into(), Json::Object(tasks));
    out.insert(
        "shelters".into(),
        json!({ "open": shelters.len(), "occupancy": occupancy, "capacity": capacity,
                "sheltered_in_incident": sheltered }),
    );
    out.insert("activation".into(), inc.summary.clone());
    // The people-on-the-ground part's records, when its tables are there: checks by status
    // (`open` is who remains), call-outs by status.
    for (key, table) in [("welfare", "welfare_checks"), ("callouts", "callouts")] {
        if let Some(counts) = counts_by_status(conn, table, inc.id)? {
            out.insert(key.into(), counts);
        }
    }
    for f in FIGURES {
        if let Some((k, v)) = f(conn, inc)? {
            out.insert(k.into(), v);
        }
    }
    Ok(Json::Object(out))
}

/// Whether a table exists (another part's, read defensively).
fn table_exists(conn: &mut dyn Conn, table: &str) -> Result<bool> {
    let sql = match conn.dialect() {
        Dialect::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Dialect::Postgres => {
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    Ok(conn.query_i64(sql, &params![table])? > 0)
}

/// `{status: count}` of an incident's rows in `table` (a fixed name of ours), or `None` when
/// the table does not exist.
fn counts_by_status(
    conn: &mut dyn Conn,
    table: &'static str,
    incident: Uuid,
) -> Result<Option<Json>> {
    if !table_exists(conn, table)? {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for r in conn.query(
        &format!(
            "SELECT status, count(*) AS n FROM {table} WHERE incident_id = $1 GROUP BY status"
        ),
        &params![incident],
    )? {
        m.insert(r.get("status")?, json!(r.get::<i64>("n")?));
    }
    Ok(Some(Json::Object(m)))
}

/// A situation report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sitrep {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub node_id: Uuid,
    /// 1, 2, … within the incident.
    pub seq: i64,
    /// draft, approved, published
    pub status: String,
    pub title: String,
    pub body: String,
    /// The figures when it was drafted.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub figures: Json,
    pub created_by: Option<Uuid>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTime<Utc>>,
    pub published_by: Option<Uuid>,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Sitrep {
    fn from_row(r: &Row) -> Result<Self> {
        let figures: String = r.get("figures")?;
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            node_id: r.get("node_id")?,
            seq: r.get("seq")?,
            status: r.get("status")?,
            title: r.get("title")?,
            body: r.get("body")?,
            figures: serde_json::from_str(&figures)
                .map_err(|e| StoreError::Backend(format!("stored figures: {e}")))?,
            created_by: r.get("created_by")?,
            approved_by: r.get("approved_by")?,
            approved_at: r.get("approved_at")?,
            published_by: r.get("published_by")?,
            published_at: r.get("published_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A report's text; its figures are taken from the records.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SitrepInput {
    /// Default: 第N期情况报告.
    pub title: Option<String>,
    pub body: Option<String>,
}

/// The reports of an incident, in order.
pub fn sitreps(conn: &mut dyn Conn, caller: &Caller, incident: Uuid) -> Result<Vec<Sitrep>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    let rows = conn.query(
        "SELECT * FROM incident_sitreps WHERE incident_id = $1 ORDER BY seq",
        &params![inc.id],
    )?;
    rows.iter().map(Sitrep::from_row).collect()
}

/// One report with its incident, in reach.
pub fn sitrep(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<(Sitrep, Incident)> {
    let row = conn
        .query_one("SELECT * FROM incident_sitreps WHERE id = $1", &params![id])?
        .ok_or(StoreError::NotFound)?;
    let s = Sitrep::from_row(&row)?;
    let inc = load_incident(conn, &incident_reach(caller), s.incident_id)?;
    Ok((s, inc))
}

/// Draft a report (`run_incidents`) while the incident is active or closed.
pub fn draft_sitrep(
    tx: &mut Tx,
    caller: &Caller,
    incident: Uuid,
    input: SitrepInput,
) -> Result<Sitrep> {
    let inc = load_incident(tx.conn(), &incident_reach(caller), incident)?;
    require(
        tx.conn(),
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    if !matches!(inc.status.as_str(), "active" | "closed") {
        return Err(StoreError::Conflict {
            code: "incident.must_be_active",
            detail: format!("incident is {}", inc.status),
        });
    }
    let body = clean("body", input.body.as_deref(), TEXT_MAX, true, true)?;
    let seq = tx.conn().query_i64(
        "SELECT max(seq) FROM incident_sitreps WHERE incident_id = $1",
        &params![inc.id],
    )? + 1;
    let title = clean("title", input.title.as_deref(), TITLE_MAX, false, false)?;
    let title = if title.is_empty() {
        format!("第{seq}期情况报告")
    } else {
        title
    };
    let now = tx.now();
    let figures = figures(tx.conn(), &inc, now)?;
    let id = tx.new_id();
    let row = tx.insert(
        "incident_sitreps",
        &[
            ("id", id.into()),
            ("incident_id", inc.id.into()),
            ("node_id", inc.node_id.into()),
            ("seq", seq.into()),
            ("status", "draft".into()),
            ("title", title.clone().into()),
            ("body", body.into()),
            ("figures", figures.to_string().into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "sitrep.drafted",
        &format!("起草情况报告：{title}"),
        Some(("incident_sitreps", id)),
    )?;
    Sitrep::from_row(&row)
}

/// Approve a draft (`approve_reports`; the author may not approve their own report).
pub fn approve_sitrep(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Sitrep> {
    let (s, inc) = sitrep(tx.conn(), caller, id)?;
    require(
        tx.conn(),
        caller,
        Permission::ApproveReports,
        &inc,
        "sitrep.not_allowed",
    )?;
    if s.status != "draft" {
        return Err(StoreError::Conflict {
            code: "sitrep.wrong_status",
            detail: format!("{} cannot be approved", s.status),
        });
    }
    if s.created_by.is_some() && s.created_by == caller.user_id {
        return Err(StoreError::Forbidden("sitrep.author_cannot_approve"));
    }
    let now = tx.now();
    let row = tx.update(
        "incident_sitreps",
        id,
        &[
            ("status", "approved".into()),
            ("approved_by", caller.user_id.into()),
            ("approved_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "sitrep.approved",
        &format!("审核通过情况报告：{}", s.title),
        Some(("incident_sitreps", id)),
    )?;
    Sitrep::from_row(&row)
}

/// Publish an approved report (`approve_reports` or `run_incidents`).
pub fn publish_sitrep(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Sitrep> {
    let (s, inc) = sitrep(tx.conn(), caller, id)?;
    let mut reach = caller.reach(Permission::ApproveReports);
    reach.merge(caller.reach(Permission::RunIncidents));
    if !within(tx.conn(), &reach, inc.id)? {
        return Err(StoreError::Forbidden("sitrep.not_allowed"));
    }
    if s.status != "approved" {
        return Err(StoreError::Conflict {
            code: "sitrep.wrong_status",
            detail: format!("{} cannot be published", s.status),
        });
    }
    let now = tx.now();
    let row = tx.update(
        "incident_sitreps",
        id,
        &[
            ("status", "published".into()),
            ("published_by", caller.user_id.into()),
            ("published_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "sitrep.published",
        &format!("发布情况报告：{}", s.title),
        Some(("incident_sitreps", id)),
    )?;
    Sitrep::from_row(&row)
}

// ---------------------------------------------------------------------------------------------
// Shelters and stays.

/// An open shelter in the incident's scope and how full it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Shelter {
    pub facility_id: Uuid,
    pub name: String,
    /// shelter, convertible_space
    pub kind: String,
    /// `None`: no stated capacity.
    pub capacity: Option<i64>,
    /// People checked in and not out (in any incident).
    pub occupancy: i64,
}

const SHELTER_KINDS: &str = "f.kind IN ('shelter', 'convertible_space') AND f.status = 'open'";

fn shelters_of(conn: &mut dyn Conn, inc: &Incident) -> Result<Vec<Shelter>> {
    let mut params = Vec::new();
    let pred = subtree(inc).predicate(
        conn.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let rows = conn.query(
        &format!(
            "SELECT f.id, f.name, f.kind, f.capacity, \
               (SELECT count(*) FROM shelter_stays s WHERE s.facility_id = f.id \
                  AND s.checked_out_at IS NULL) AS occupancy \
             FROM facilities f WHERE {SHELTER_KINDS} AND {pred} ORDER BY f.name, f.id"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Shelter {
                facility_id: r.get("id")?,
                name: r.get("name")?,
                kind: r.get("kind")?,
                capacity: r.get("capacity")?,
                occupancy: r.get("occupancy")?,
            })
        })
        .collect()
}

/// The open shelters of an incident in reach.
pub fn shelters(conn: &mut dyn Conn, caller: &Caller, incident: Uuid) -> Result<Vec<Shelter>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    shelters_of(conn, &inc)
}

/// A stay, masked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stay {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub facility_id: Uuid,
    pub facility_name: String,
    /// A resident's person record; `None` for a walk-in.
    pub person_id: Option<Uuid>,
    /// Masked.
    pub name: String,
    /// Masked.
    pub phone: Option<String>,
    pub checked_in_at: DateTime<Utc>,
    pub checked_out_at: Option<DateTime<Utc>>,
}

const STAY_SQL: &str = "SELECT s.id, s.incident_id, s.facility_id, f.name AS facility_name, \
     s.person_id, s.name_mask, s.phone_mask, s.checked_in_at, s.checked_out_at \
     FROM shelter_stays s JOIN facilities f ON f.id = s.facility_id";

impl Stay {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            facility_id: r.get("facility_id")?,
            facility_name: r.get("facility_name")?,
            person_id: r.get("person_id")?,
            name: r.get("name_mask")?,
            phone: r.get("phone_mask")?,
            checked_in_at: r.get("checked_in_at")?,
            checked_out_at: r.get("checked_out_at")?,
        })
    }
}

/// List filter for stays.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StayQuery {
    /// Only people still checked in.
    pub present: Option<bool>,
}

/// The stays of an incident in reach, newest first.
pub fn stays(
    conn: &mut dyn Conn,
    caller: &Caller,
    incident: Uuid,
    q: &StayQuery,
) -> Result<Vec<Stay>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    let present = if q.present.unwrap_or(false) {
        " AND s.checked_out_at IS NULL"
    } else {
        ""
    };
    let rows = conn.query(
        &format!(
            "{STAY_SQL} WHERE s.incident_id = $1{present} \
             ORDER BY s.checked_in_at DESC, s.id DESC LIMIT 2000"
        ),
        &params![inc.id],
    )?;
    rows.iter().map(Stay::from_row).collect()
}

/// Who checks in: a resident (`person_id`) or a walk-in (`name`, optional `phone`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInInput {
    pub facility_id: Option<Uuid>,
    pub person_id: Option<Uuid>,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// Check a person in at an open shelter of the incident (`run_incidents`, incident active);
/// refused over capacity (`shelter.full`) and for a resident already in a shelter.
pub fn check_in(tx: &mut Tx, caller: &Caller, incident: Uuid, input: CheckInInput) -> Result<Stay> {
    let inc = load_incident(tx.conn(), &incident_reach(caller), incident)?;
    require(
        tx.conn(),
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    must_be_active(&inc)?;
    let facility = input
        .facility_id
        .ok_or_else(|| bad("value.required", "facility_id"))?;
    // Lock the facility row (PostgreSQL) so two check-ins cannot both take the last place.
    let lock = match tx.dialect() {
        Dialect::Postgres => " FOR UPDATE OF f",
        Dialect::Sqlite => "",
    };
    let mut params = vec![Value::from(facility)];
    let pred = subtree(&inc).predicate(
        tx.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let f = tx
        .query_one(
            &format!(
                "SELECT f.id, f.name, f.capacity FROM facilities f \
                 WHERE f.id = $1 AND {SHELTER_KINDS} AND {pred}{lock}"
            ),
            &params,
        )?
        .ok_or_else(|| bad("shelter.not_open", "facility_id"))?;
    let facility_name: String = f.get("name")?;
    let capacity: Option<i64> = f.get("capacity")?;
    let name_in = clean("name", input.name.as_deref(), NAME_MAX, false, false)?;
    let phone_in = clean("phone", input.phone.as_deref(), 40, false, false)?;
    let key_id = tx.new_data_key()?;
    let (person, name_ct, name_mask, phone_ct, phone_mask) = match input.person_id {
        Some(p) => {
            if !name_in.is_empty() || !phone_in.is_empty() {
                return Err(bad("shelter.person_or_walk_in", "name"));
            }
            let mut params = vec![Value::from(p)];
            let pred = subtree(&inc).predicate(
                tx.dialect(),
                ScopeCols {
                    node: "p.community_id",
                    grid: None,
                    household: None,
                },
                &mut params,
            );
            let row = tx
                .query_one(
                    &format!("SELECT p.name FROM people p WHERE p.id = $1 AND {pred}"),
                    &params,
                )?
                .ok_or_else(|| bad("record.reference_invalid", "person_id"))?;
            let inside = tx.conn().query_i64(
                "SELECT count(*) FROM shelter_stays WHERE person_id = $1 AND checked_out_at IS NULL",
                &params![p],
            )? > 0;
            if inside {
                return Err(StoreError::Conflict {
                    code: "shelter.already_checked_in",
                    detail: "the person is checked in at a shelter".into(),
                });
            }
            let name: String = row.get("name")?;
            (Some(p), None, mask_name(&name), None, None)
        }
        None => {
            if name_in.is_empty() {
                return Err(bad("value.required", "name"));
            }
            let name_ct = tx.seal(key_id, NAME_FIELD, name_in.as_bytes())?;
            let (phone_ct, phone_mask) = if phone_in.is_empty() {
                (None, None)
            } else {
                let ph = Phone::parse(&phone_in).map_err(|e| bad(e.code(), "phone"))?;
                (
                    Some(tx.seal(key_id, PHONE_FIELD, ph.as_str().as_bytes())?),
                    Some(mask_phone(&ph)),
                )
            };
            (
                None,
                Some(name_ct),
                mask_name(&name_in),
                phone_ct,
                phone_mask,
            )
        }
    };
    let occupancy = tx.conn().query_i64(
        "SELECT count(*) FROM shelter_stays WHERE facility_id = $1 AND checked_out_at IS NULL",
        &params![facility],
    )?;
    if capacity.is_some_and(|c| occupancy >= c) {
        return Err(StoreError::Conflict {
            code: "shelter.full",
            detail: format!("{occupancy} of {} places taken", capacity.unwrap_or(0)),
        });
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "shelter_stays",
        &[
            ("id", id.into()),
            ("key_id", key_id.into()),
            ("incident_id", inc.id.into()),
            ("node_id", inc.node_id.into()),
            ("facility_id", facility.into()),
            ("person_id", person.into()),
            ("name_ct", name_ct.into()),
            ("name_mask", name_mask.clone().into()),
            ("phone_ct", phone_ct.into()),
            ("phone_mask", phone_mask.into()),
            ("checked_in_at", now.into()),
            ("checked_in_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "shelter.check_in",
        &format!("{name_mask} 入住 {facility_name}"),
        Some(("shelter_stays", id)),
    )?;
    stay_by_id(tx.conn(), id)
}

fn stay_by_id(conn: &mut dyn Conn, id: Uuid) -> Result<Stay> {
    let row = conn
        .query_one(&format!("{STAY_SQL} WHERE s.id = $1"), &params![id])?
        .ok_or(StoreError::NotFound)?;
    Stay::from_row(&row)
}

/// Check a person out (`run_incidents`).
pub fn check_out(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Stay> {
    let stay = stay_by_id(tx.conn(), id)?;
    let inc = load_incident(tx.conn(), &incident_reach(caller), stay.incident_id)?;
    require(
        tx.conn(),
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    if stay.checked_out_at.is_some() {
        return Err(StoreError::Conflict {
            code: "shelter.already_checked_out",
            detail: "the stay has ended".into(),
        });
    }
    let now = tx.now();
    tx.update(
        "shelter_stays",
        id,
        &[
            ("checked_out_at", now.into()),
            ("checked_out_by", caller.user_id.into()),
            ("updated_at", now.into()),
        ],
    )?;
    log(
        tx,
        inc.id,
        "shelter.check_out",
        &format!("{} 离开 {}", stay.name, stay.facility_name),
        Some(("shelter_stays", id)),
    )?;
    stay_by_id(tx.conn(), id)
}

// ---------------------------------------------------------------------------------------------
// After-action review.

/// A lesson of a review; a revised plan body makes it a proposed plan version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LessonInput {
    pub text: Option<String>,
    /// The whole plan body as it should become (`anxin_domain::plan::PlanBody`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub revision: Option<Json>,
}

/// A review as submitted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub went_well: Option<String>,
    pub went_badly: Option<String>,
    #[serde(default)]
    pub lessons: Vec<LessonInput>,
}

/// A lesson as stored: its text and the plan version it proposed, if any.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lesson {
    pub text: String,
    pub plan_version_id: Option<Uuid>,
    pub version: Option<i64>,
}

/// An after-action review.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Review {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub node_id: Uuid,
    pub went_well: String,
    pub went_badly: String,
    pub lessons: Vec<Lesson>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Review {
    fn from_row(r: &Row) -> Result<Self> {
        let lessons: String = r.get("lessons")?;
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            node_id: r.get("node_id")?,
            went_well: r.get("went_well")?,
            went_badly: r.get("went_badly")?,
            lessons: serde_json::from_str(&lessons)
                .map_err(|e| StoreError::Backend(format!("stored lessons: {e}")))?,
            created_by: r.get("created_by")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A review with its incident, in reach.
pub fn review(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<(Review, Incident)> {
    let row = conn
        .query_one("SELECT * FROM incident_reviews WHERE id = $1", &params![id])?
        .ok_or(StoreError::NotFound)?;
    let r = Review::from_row(&row)?;
    let inc = load_incident(conn, &incident_reach(caller), r.incident_id)?;
    Ok((r, inc))
}

/// The review of an incident in reach, if it has one.
pub fn review_of(conn: &mut dyn Conn, caller: &Caller, incident: Uuid) -> Result<Option<Review>> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    conn.query_one(
        "SELECT * FROM incident_reviews WHERE incident_id = $1",
        &params![inc.id],
    )?
    .map(|r| Review::from_row(&r))
    .transpose()
}

/// The plan body a revision starts from: the plan's current version, or the version the
/// incident ran when none has been adopted since; and that version's number.
pub fn current_body(
    conn: &mut dyn Conn,
    caller: &Caller,
    incident: Uuid,
) -> Result<(PlanBody, i64)> {
    let inc = load_incident(conn, &incident_reach(caller), incident)?;
    current_body_of(conn, &inc)
}

fn current_body_of(conn: &mut dyn Conn, inc: &Incident) -> Result<(PlanBody, i64)> {
    let row = conn
        .query_one(
            "SELECT v.body, v.version FROM plan_versions v JOIN plans p ON p.id = v.plan_id \
             WHERE v.plan_id = $1 AND v.version = p.current_version",
            &params![inc.plan_id],
        )?
        .map_or_else(
            || {
                conn.query_one(
                    "SELECT body, version FROM plan_versions WHERE id = $1",
                    &params![inc.plan_version_id],
                )
            },
            |r| Ok(Some(r)),
        )?
        .ok_or(StoreError::NotFound)?;
    let body: String = row.get("body")?;
    let body = serde_json::from_str(&body)
        .map_err(|e| StoreError::Backend(format!("stored plan body: {e}")))?;
    Ok((body, row.get("version")?))
}

/// A revised body, checked: it parses as a plan body and its tasks name roles of the plan.
pub fn parse_revision(raw: &Json, field: &str) -> Result<PlanBody> {
    let body: PlanBody = serde_json::from_value(raw.clone())
        .map_err(|_| bad("review.revision_invalid", field.to_owned()))?;
    if body.risks.is_empty() {
        return Err(bad("value.required", format!("{field}.risks")));
    }
    for (j, t) in body.tasks.iter().enumerate() {
        if t.title.trim().is_empty() {
            return Err(bad("value.required", format!("{field}.tasks[{j}].title")));
        }
        if !body.roles.iter().any(|r| r.key == t.role) {
            return Err(bad(
                "review.revision_role_unknown",
                format!("{field}.tasks[{j}].role"),
            ));
        }
    }
    Ok(body)
}

/// Submit the review of a closed incident (`run_incidents`): the lessons with a revision become
/// proposed plan versions; the incident becomes `reviewed`.
pub fn submit_review(
    tx: &mut Tx,
    caller: &Caller,
    incident: Uuid,
    input: ReviewInput,
) -> Result<Review> {
    let inc = load_incident(tx.conn(), &incident_reach(caller), incident)?;
    require(
        tx.conn(),
        caller,
        Permission::RunIncidents,
        &inc,
        "incident.ops_not_allowed",
    )?;
    match inc.status.as_str() {
        "closed" => {}
        "reviewed" => {
            return Err(StoreError::Conflict {
                code: "review.exists",
                detail: "the incident has been reviewed".into(),
            })
        }
        other => {
            return Err(StoreError::Conflict {
                code: "incident.must_be_closed",
                detail: format!("incident is {other}"),
            })
        }
    }
    let went_well = clean(
        "went_well",
        input.went_well.as_deref(),
        TEXT_MAX,
        true,
        true,
    )?;
    let went_badly = clean(
        "went_badly",
        input.went_badly.as_deref(),
        TEXT_MAX,
        true,
        true,
    )?;
    if input.lessons.len() > LESSONS_MAX {
        return Err(bad("review.too_many_lessons", "lessons"));
    }
    let mut parsed = Vec::with_capacity(input.lessons.len());
    for (i, l) in input.lessons.iter().enumerate() {
        let text = clean(
            &format!("lessons[{i}].text"),
            l.text.as_deref(),
            NOTE_MAX,
            true,
            true,
        )?;
        let body = match &l.revision {
            Some(raw) => Some(parse_revision(raw, &format!("lessons[{i}].revision"))?),
            None => None,
        };
        parsed.push((text, body));
    }
    let id = tx.new_id();
    let now = tx.now();
    let plan_node: Uuid = tx
        .query_one(
            "SELECT node_id FROM plans WHERE id = $1",
            &params![inc.plan_id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("node_id")?;
    let mut lessons = Vec::with_capacity(parsed.len());
    for (text, body) in parsed {
        let Some(body) = body else {
            lessons.push(Lesson {
                text,
                plan_version_id: None,
                version: None,
            });
            continue;
        };
        let version = tx.conn().query_i64(
            "SELECT max(version) FROM plan_versions WHERE plan_id = $1",
            &params![inc.plan_id],
        )? + 1;
        let vid = tx.new_id();
        let body_text = serde_json::to_string(&body)
            .map_err(|e| StoreError::Backend(format!("plan body: {e}")))?;
        tx.insert(
            "plan_versions",
            &[
                ("id", vid.into()),
                ("plan_id", inc.plan_id.into()),
                ("node_id", plan_node.into()),
                ("version", version.into()),
                ("status", "proposed".into()),
                ("body", body_text.into()),
                ("change_summary", text.clone().into()),
                ("review_id", id.into()),
                ("created_by", caller.user_id.into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )?;
        log(
            tx,
            inc.id,
            "review.revision_proposed",
            &format!("复盘提出预案修订：第{version}版"),
            Some(("plan_versions", vid)),
        )?;
        lessons.push(Lesson {
            text,
            plan_version_id: Some(vid),
            version: Some(version),
        });
    }
    let lessons_text = serde_json::to_string(&lessons)
        .map_err(|e| StoreError::Backend(format!("lessons: {e}")))?;
    let row = tx.insert(
        "incident_reviews",
        &[
            ("id", id.into()),
            ("incident_id", inc.id.into()),
            ("node_id", inc.node_id.into()),
            ("went_well", went_well.into()),
            ("went_badly", went_badly.into()),
            ("lessons", lessons_text.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    tx.update(
        "incidents",
        inc.id,
        &[("status", "reviewed".into()), ("updated_at", now.into())],
    )?;
    log(
        tx,
        inc.id,
        "review.submitted",
        &format!("完成复盘，经验教训 {} 条", lessons.len()),
        Some(("incident_reviews", id)),
    )?;
    Review::from_row(&row)
}
