//! Welfare checks, 不漏一人 (owner: volunteers & welfare).
//!
//! Activation ([`WelfareStep`]) creates one check for every vulnerable person whose community is
//! in the activated scope — one per person however many categories they have — with one query
//! over vulnerable → people → household → dwelling → building (→ compound) and one bulk insert.
//! A check is assigned to the person's helper (level 0), else open to the grid (level 1), and due
//! `welfare_escalate_minutes` after activation. It stays open until someone allowed records the
//! person safe, needing help (which creates an incident task, source `welfare`) or moved (to an
//! open shelter or a named place); every record is on the incident log with the masked name.
//! Open checks past due go up one level at a time ([`escalate_due`]: helper → grid workers →
//! community workers → street officers) with a new due time; deactivation closes what is still
//! open as `closed_unchecked`, counted.
//!
//! Who may record: staff holding `RecordWelfare` over the check's community or grid (helpers,
//! grid and community workers), the check's assignee, and a volunteer (Volunteer grant with
//! `RecordWelfare` over the community) holding an accepted call-out in the same incident.

use std::collections::HashMap;

use anxin_domain::plan::PlanBody;
use anxin_domain::roles::Permission;
use anxin_domain::{mask_name, Role};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::volunteers::{clean_text, open_facility};
use super::{Activation, ActivationStep};
use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

/// Escalation levels: who an open check is with.
pub const LEVELS: &[&str] = &["helper", "grid", "community", "street"];
/// The highest level.
pub const TOP_LEVEL: i64 = 3;
pub const OUTCOMES: &[&str] = &["safe", "need_help", "moved"];
const NOTE_MAX: usize = 500;
const PLACE_MAX: usize = 100;

const CHECK_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "w.community_id",
    grid: Some("w.grid_id"),
    household: None,
};

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn conflict(code: &'static str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: code.into(),
    }
}

/// A welfare check as the board and the lists show it (masked name only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct WelfareCheck {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub person_id: Uuid,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub compound_id: Option<Uuid>,
    pub compound_name: Option<String>,
    pub name_mask: String,
    /// Building and dwelling, or the household's label.
    pub address: String,
    /// open, safe, need_help, moved, closed_unchecked
    pub status: String,
    /// 0 helper, 1 grid workers, 2 community workers, 3 street officers.
    pub level: i64,
    pub assignee_user_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    pub due_at: DateTime<Utc>,
    pub recorded_by: Option<Uuid>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub moved_facility_id: Option<Uuid>,
    pub moved_place: String,
    pub note: String,
    pub task_id: Option<Uuid>,
}

const CHECK_COLS: &str = "w.id, w.incident_id, w.person_id, w.community_id, w.grid_id, \
    w.compound_id, cn.name AS compound_name, w.name_mask, \
    COALESCE(b.name || ' ' || d.number, h.label, '') AS address, w.status, w.level, \
    w.assignee_user_id, u.display_name AS assignee_name, w.due_at, w.recorded_by, w.recorded_at, \
    w.moved_facility_id, w.moved_place, w.note, w.task_id";

const CHECK_FROM: &str = "welfare_checks w JOIN people p ON p.id = w.person_id \
    LEFT JOIN households h ON h.id = p.household_id \
    LEFT JOIN dwellings d ON d.id = h.dwelling_id \
    LEFT JOIN buildings b ON b.id = d.building_id \
    LEFT JOIN nodes cn ON cn.id = w.compound_id \
    LEFT JOIN users u ON u.id = w.assignee_user_id";

impl WelfareCheck {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            person_id: r.get("person_id")?,
            community_id: r.get("community_id")?,
            grid_id: r.get("grid_id")?,
            compound_id: r.get("compound_id")?,
            compound_name: r.get("compound_name")?,
            name_mask: r.get("name_mask")?,
            address: r.get("address")?,
            status: r.get("status")?,
            level: r.get("level")?,
            assignee_user_id: r.get("assignee_user_id")?,
            assignee_name: r.get("assignee_name")?,
            due_at: r.get("due_at")?,
            recorded_by: r.get("recorded_by")?,
            recorded_at: r.get("recorded_at")?,
            moved_facility_id: r.get("moved_facility_id")?,
            moved_place: r.get("moved_place")?,
            note: r.get("note")?,
            task_id: r.get("task_id")?,
        })
    }
}

/// `RecordWelfare` reach split by who holds it: staff grants, and Volunteer grants (which count
/// only with an accepted call-out in the check's incident).
fn record_reaches(caller: &Caller) -> (Reach, Reach) {
    if caller.is_system() {
        return (caller.reach(Permission::RecordWelfare), Reach::default());
    }
    let mut staff = Reach::default();
    let mut vol = Reach::default();
    for g in caller
        .grants
        .iter()
        .filter(|g| g.role.has(Permission::RecordWelfare))
    {
        let one = Caller::user(Uuid::nil(), vec![g.clone()]).reach(Permission::RecordWelfare);
        if g.role == Role::Volunteer {
            vol.merge(one);
        } else {
            staff.merge(one);
        }
    }
    (staff, vol)
}

/// The predicate of checks the caller may record (`write`) or see (also: whoever sees the
/// incident: officers' oversight).
fn pred(d: crate::Dialect, caller: &Caller, write: bool, params: &mut Vec<Value>) -> String {
    let (mut staff, vol) = record_reaches(caller);
    if !write {
        staff.merge(super::incident_reach(caller));
    }
    let mut parts = vec![staff.predicate(d, CHECK_SCOPE, params)];
    if let Some(me) = caller.user_id {
        if caller.has(Permission::RecordWelfare) {
            params.push(me.into());
            parts.push(format!("w.assignee_user_id = ${}", params.len()));
        }
        if !vol.is_empty() {
            let v = vol.predicate(d, CHECK_SCOPE, params);
            params.push(me.into());
            parts.push(format!(
                "({v} AND EXISTS (SELECT 1 FROM callouts c WHERE c.incident_id = w.incident_id \
                 AND c.user_id = ${} AND c.status = 'accepted'))",
                params.len()
            ));
        }
    }
    format!("({})", parts.join(" OR "))
}

fn load(conn: &mut dyn Conn, caller: &Caller, id: Uuid, write: bool) -> Result<WelfareCheck> {
    let mut params = vec![Value::from(id)];
    let p = pred(conn.dialect(), caller, write, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {CHECK_COLS} FROM {CHECK_FROM} WHERE w.id = $1 AND {p}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    WelfareCheck::from_row(&row)
}

/// One check the caller may see.
pub fn get_check(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<WelfareCheck> {
    load(conn, caller, id, false)
}

/// Filters of the check lists.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckQuery {
    pub incident_id: Option<Uuid>,
    /// open, safe, need_help, moved, closed_unchecked
    pub status: Option<String>,
    pub compound_id: Option<Uuid>,
    /// Only checks the caller may record (their work list).
    #[serde(default)]
    pub mine: bool,
}

/// Checks the caller may see: open ones first, then by compound and masked name (at most 5,000).
pub fn list_checks(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &CheckQuery,
) -> Result<Vec<WelfareCheck>> {
    let mut params = Vec::new();
    let p = pred(conn.dialect(), caller, q.mine, &mut params);
    let mut sql = format!("SELECT {CHECK_COLS} FROM {CHECK_FROM} WHERE {p}");
    if let Some(i) = q.incident_id {
        params.push(i.into());
        sql.push_str(&format!(" AND w.incident_id = ${}", params.len()));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !["open", "safe", "need_help", "moved", "closed_unchecked"].contains(&s) {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        sql.push_str(&format!(" AND w.status = ${}", params.len()));
    }
    if let Some(c) = q.compound_id {
        params.push(c.into());
        sql.push_str(&format!(" AND w.compound_id = ${}", params.len()));
    }
    if q.mine {
        sql.push_str(" AND w.status = 'open' AND EXISTS (SELECT 1 FROM incidents i WHERE i.id = w.incident_id AND i.status = 'active')");
    }
    sql.push_str(
        " ORDER BY CASE WHEN w.status = 'open' THEN 0 ELSE 1 END, COALESCE(cn.name, ''), w.name_mask, w.id LIMIT 5000",
    );
    conn.query(&sql, &params)?
        .iter()
        .map(WelfareCheck::from_row)
        .collect()
}

/// The checks of one incident the caller may see (the incident must be visible to them).
pub fn incident_checks(
    conn: &mut dyn Conn,
    caller: &Caller,
    incident_id: Uuid,
    q: &CheckQuery,
) -> Result<Vec<WelfareCheck>> {
    super::get_incident(conn, caller, incident_id)?;
    list_checks(
        conn,
        caller,
        &CheckQuery {
            incident_id: Some(incident_id),
            mine: false,
            ..q.clone()
        },
    )
}

/// One compound's line on the board.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CompoundLine {
    /// `None`: people whose dwelling is in no compound.
    pub compound_id: Option<Uuid>,
    pub compound_name: Option<String>,
    pub total: i64,
    /// Still open.
    pub remaining: i64,
}

/// The 不漏一人 board of an incident.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub incident_id: Uuid,
    pub incident_status: String,
    pub total: i64,
    pub open: i64,
    pub safe: i64,
    pub need_help: i64,
    pub moved: i64,
    pub closed_unchecked: i64,
    /// Open checks above the helper level.
    pub escalated: i64,
    pub compounds: Vec<CompoundLine>,
}

/// Counts per status and per compound, within what the caller may see.
pub fn board(conn: &mut dyn Conn, caller: &Caller, incident_id: Uuid) -> Result<Board> {
    let inc = super::get_incident(conn, caller, incident_id)?;
    let mut params = vec![Value::from(incident_id)];
    let p = pred(conn.dialect(), caller, false, &mut params);
    let rows = conn.query(
        &format!(
            "SELECT w.compound_id, cn.name AS compound_name, w.status, \
             CASE WHEN w.escalations > 0 THEN 1 ELSE 0 END AS up, count(*) AS n \
             FROM welfare_checks w LEFT JOIN nodes cn ON cn.id = w.compound_id \
             WHERE w.incident_id = $1 AND {p} GROUP BY w.compound_id, cn.name, w.status, \
             CASE WHEN w.escalations > 0 THEN 1 ELSE 0 END"
        ),
        &params,
    )?;
    let mut b = Board {
        incident_id,
        incident_status: inc.status,
        total: 0,
        open: 0,
        safe: 0,
        need_help: 0,
        moved: 0,
        closed_unchecked: 0,
        escalated: 0,
        compounds: Vec::new(),
    };
    let mut lines: Vec<CompoundLine> = Vec::new();
    for r in rows {
        let compound: Option<Uuid> = r.get("compound_id")?;
        let status: String = r.get("status")?;
        let n: i64 = r.get("n")?;
        let up: i64 = r.get("up")?;
        b.total += n;
        match status.as_str() {
            "open" => {
                b.open += n;
                if up > 0 {
                    b.escalated += n;
                }
            }
            "safe" => b.safe += n,
            "need_help" => b.need_help += n,
            "moved" => b.moved += n,
            _ => b.closed_unchecked += n,
        }
        let line = match lines.iter_mut().find(|l| l.compound_id == compound) {
            Some(l) => l,
            None => {
                lines.push(CompoundLine {
                    compound_id: compound,
                    compound_name: r.get("compound_name")?,
                    total: 0,
                    remaining: 0,
                });
                lines.last_mut().expect("just pushed")
            }
        };
        line.total += n;
        if status == "open" {
            line.remaining += n;
        }
    }
    // Most remaining first; the unnamed line last among equals.
    lines.sort_by(|a, b| {
        b.remaining
            .cmp(&a.remaining)
            .then_with(|| a.compound_name.is_none().cmp(&b.compound_name.is_none()))
            .then_with(|| a.compound_name.cmp(&b.compound_name))
    });
    b.compounds = lines;
    Ok(b)
}

/// What a recorder says about the person.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// `safe`, `need_help` or `moved`.
    pub outcome: String,
    /// Moved to this open shelter.
    pub facility_id: Option<Uuid>,
    /// Moved to this place (when not a shelter).
    pub place: Option<String>,
    /// What was found / what help is needed (no ID numbers or phones).
    pub note: Option<String>,
}

fn outcome_text(o: &str) -> &'static str {
    match o {
        "safe" => "平安",
        "need_help" => "需要帮助",
        "moved" => "已转移",
        _ => "未核实",
    }
}

/// The first grid worker of a grid (by account id), for a need-help task.
fn grid_worker(tx: &mut Tx, grid: Option<Uuid>) -> Result<Option<Uuid>> {
    let Some(grid) = grid else { return Ok(None) };
    let now = tx.now();
    tx.conn()
        .query_one(
            "SELECT g.user_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.role = $1 \
             AND g.scope_kind = 'grid' AND g.scope_id = $2 AND g.revoked_at IS NULL \
             AND g.valid_from <= $3 AND (g.valid_to IS NULL OR g.valid_to > $3) AND u.disabled = $4 \
             ORDER BY g.user_id LIMIT 1",
            &params![Role::GridWorker.as_str(), grid, now, false],
        )?
        .map(|r| r.get("user_id"))
        .transpose()
}

/// Record a check: safe, need help (creates an incident task for the grid worker / community)
/// or moved (to an open shelter or a named place). Only an open check of an active incident.
pub fn record(tx: &mut Tx, caller: &Caller, id: Uuid, i: &RecordInput) -> Result<WelfareCheck> {
    let c = load(tx.conn(), caller, id, true)?;
    let outcome = i.outcome.trim();
    if outcome.is_empty() {
        return Err(bad("value.required", "outcome"));
    }
    if !OUTCOMES.contains(&outcome) {
        return Err(bad("value.invalid", "outcome"));
    }
    let note = clean_text("note", i.note.as_deref(), NOTE_MAX)?;
    let place = clean_text("place", i.place.as_deref(), PLACE_MAX)?;
    let inc = tx
        .conn()
        .query_one(
            "SELECT status, node_id FROM incidents WHERE id = $1",
            &params![c.incident_id],
        )?
        .ok_or(StoreError::NotFound)?;
    if inc.get::<String>("status")? != "active" {
        return Err(conflict("welfare.incident_not_active"));
    }
    if c.status != "open" {
        return Err(conflict("welfare.already_recorded"));
    }
    let now = tx.now();
    let mut cols: Vec<(&str, Value)> = vec![
        ("status", outcome.into()),
        ("recorded_by", caller.user_id.into()),
        ("recorded_at", now.into()),
        ("note", note.clone().into()),
        ("updated_at", now.into()),
    ];
    let mut summary = format!("{}：{}", c.name_mask, outcome_text(outcome));
    match outcome {
        "moved" => {
            let where_ = match i.facility_id {
                Some(f) => open_facility(tx.conn(), inc.get("node_id")?, f, "facility_id")?,
                None if place.is_empty() => return Err(bad("welfare.place_required", "place")),
                None => place.clone(),
            };
            summary.push_str(&format!("（{where_}）"));
            cols.push(("moved_facility_id", i.facility_id.into()));
            cols.push(("moved_place", place.into()));
        }
        "need_help" => {
            let task = tx.new_id();
            let assignee = grid_worker(tx, c.grid_id)?;
            tx.insert(
                "incident_tasks",
                &[
                    ("id", task.into()),
                    ("incident_id", c.incident_id.into()),
                    ("node_id", c.community_id.into()),
                    (
                        "title",
                        format!("协助{}（安全确认：需要帮助）", c.name_mask).into(),
                    ),
                    ("description", note.into()),
                    ("role_key", "".into()),
                    ("assignee_user_id", assignee.into()),
                    ("status", "open".into()),
                    ("notes", "".into()),
                    ("source", "welfare".into()),
                    ("source_id", id.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            cols.push(("task_id", task.into()));
        }
        _ => {}
    }
    tx.update("welfare_checks", id, &cols)?;
    super::log(
        tx,
        c.incident_id,
        &format!("welfare.{outcome}"),
        &summary,
        Some(("welfare_checks", id)),
    )?;
    load(tx.conn(), &Caller::system(), id, false)
}

// ---------------------------------------------------------------------------------------------
// Escalation.

/// An open check past due, as the escalation job sees it.
#[derive(Debug, Clone)]
pub struct Escalated {
    pub check_id: Uuid,
    pub incident_id: Uuid,
    pub incident_title: String,
    pub level: i64,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
}

/// Whether any check is due for escalation at `now`.
pub fn any_due(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<bool> {
    Ok(conn.query_i64(
        "SELECT count(*) FROM welfare_checks w JOIN incidents i ON i.id = w.incident_id \
         WHERE w.status = 'open' AND w.due_at <= $1 AND w.level < $2 AND i.status = 'active'",
        &params![now, TOP_LEVEL],
    )? > 0)
}

fn escalate_minutes(tx: &mut Tx, incident: Uuid) -> Result<i64> {
    let row = tx
        .conn()
        .query_one(
            "SELECT pv.body FROM incidents i JOIN plan_versions pv ON pv.id = i.plan_version_id \
             WHERE i.id = $1",
            &params![incident],
        )?
        .ok_or(StoreError::NotFound)?;
    let body: String = row.get("body")?;
    let b: PlanBody = serde_json::from_str(&body)
        .map_err(|e| StoreError::Backend(format!("stored plan body: {e}")))?;
    Ok(i64::from(b.welfare_escalate_minutes.max(1)))
}

/// Escalate up to `limit` open checks past due at the write's time by one level each (a check
/// without a grid skips the grid level), unassign them (open to everyone at the new level) and
/// give them a new due time. Run twice, a check goes up once per due time. Returns what moved.
pub fn escalate_due(tx: &mut Tx, limit: i64) -> Result<Vec<Escalated>> {
    let now = tx.now();
    let rows = tx.conn().query(
        "SELECT w.id, w.incident_id, i.title, w.level, w.escalations, w.community_id, w.grid_id, w.name_mask \
         FROM welfare_checks w JOIN incidents i ON i.id = w.incident_id \
         WHERE w.status = 'open' AND w.due_at <= $1 AND w.level < $2 AND i.status = 'active' \
         ORDER BY w.due_at, w.id LIMIT $3",
        &params![now, TOP_LEVEL, limit],
    )?;
    let mut minutes: HashMap<Uuid, i64> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.get("id")?;
        let incident: Uuid = r.get("incident_id")?;
        let grid: Option<Uuid> = r.get("grid_id")?;
        let mut level: i64 = r.get::<i64>("level")? + 1;
        if level == 1 && grid.is_none() {
            level = 2;
        }
        let m = match minutes.get(&incident) {
            Some(m) => *m,
            None => {
                let m = escalate_minutes(tx, incident)?;
                minutes.insert(incident, m);
                m
            }
        };
        tx.update(
            "welfare_checks",
            id,
            &[
                ("level", level.into()),
                ("escalations", (r.get::<i64>("escalations")? + 1).into()),
                ("assignee_user_id", Value::Null),
                ("due_at", (now + Duration::minutes(m)).into()),
                ("updated_at", now.into()),
            ],
        )?;
        let name: String = r.get("name_mask")?;
        super::log(
            tx,
            incident,
            "welfare.escalated",
            &format!("{name}：安全确认超时，升级至{}", level_text(level)),
            Some(("welfare_checks", id)),
        )?;
        out.push(Escalated {
            check_id: id,
            incident_id: incident,
            incident_title: r.get("title")?,
            level,
            community_id: r.get("community_id")?,
            grid_id: grid,
        });
    }
    Ok(out)
}

/// The level's holders in words (zh-CN, as the incident log and SMS are written).
pub fn level_text(level: i64) -> &'static str {
    match level {
        0 => "帮扶人",
        1 => "网格员",
        2 => "社区工作者",
        _ => "街道工作人员",
    }
}

/// Someone to tell about escalated checks.
#[derive(Clone)]
pub struct Recipient {
    pub user_id: Uuid,
    /// Duty phone in clear (never logged) and its mask.
    pub phone: Option<(String, String)>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("user_id", &self.user_id)
            .field("phone", &self.phone.as_ref().map(|p| &p.1))
            .finish()
    }
}

/// Who holds a level for a check: grid workers of its grid (1), community workers of its
/// community (2), street officers of the community's street (3); with their duty phone at the
/// community (or street) when the duty list has one. Returns the node's name too.
pub fn level_holders(
    conn: &mut dyn Conn,
    env: &crate::Env,
    level: i64,
    community: Uuid,
    grid: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(String, Vec<Recipient>)> {
    let (role, kind, scope, duty_node) = match level {
        1 => match grid {
            Some(g) => (Role::GridWorker, "grid", g, community),
            None => return Ok((String::new(), Vec::new())),
        },
        2 => (Role::CommunityWorker, "node", community, community),
        _ => {
            let street: Option<Uuid> = conn
                .query_one(
                    "SELECT parent_id FROM nodes WHERE id = $1",
                    &params![community],
                )?
                .map(|r| r.get("parent_id"))
                .transpose()?
                .flatten();
            let Some(s) = street else {
                return Ok((String::new(), Vec::new()));
            };
            (Role::StreetOfficer, "node", s, s)
        }
    };
    let name: String = conn
        .query_one("SELECT name FROM nodes WHERE id = $1", &params![duty_node])?
        .map(|r| r.get("name"))
        .transpose()?
        .unwrap_or_default();
    let users = conn.query(
        "SELECT DISTINCT g.user_id FROM grants g JOIN users u ON u.id = g.user_id \
         WHERE g.role = $1 AND g.scope_kind = $2 AND g.scope_id = $3 AND g.revoked_at IS NULL \
         AND g.valid_from <= $4 AND (g.valid_to IS NULL OR g.valid_to > $4) AND u.disabled = $5 \
         ORDER BY g.user_id",
        &params![role.as_str(), kind, scope, now, false],
    )?;
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        let user_id: Uuid = u.get("user_id")?;
        let duty = conn.query_one(
            "SELECT phone_ct, phone_mask FROM duties WHERE node_id = $1 AND user_id = $2 \
             AND phone_ct IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
            &params![duty_node, user_id],
        )?;
        let phone = match duty {
            Some(d) => {
                let ct: Vec<u8> = d.get("phone_ct")?;
                let mask: String = d.get("phone_mask")?;
                Some((env.keys.open_string(conn, "duties.phone", &ct)?, mask))
            }
            None => None,
        };
        out.push(Recipient { user_id, phone });
    }
    Ok((name, out))
}

// ---------------------------------------------------------------------------------------------
// The activation step.

/// A welfare check for every vulnerable person in scope.
pub struct WelfareStep;

impl ActivationStep for WelfareStep {
    fn name(&self) -> &'static str {
        "welfare"
    }

    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value> {
        if !a.body.welfare_checks || a.nodes.is_empty() {
            return Ok(serde_json::json!({ "checks": 0, "to_helpers": 0 }));
        }
        // Every category row of a person, helper-holding rows first: one check per person,
        // assigned to the first helper found.
        let all = a.vulnerable(tx.conn())?;
        let found = all
            .iter()
            .enumerate()
            .filter(|(i, f)| *i == 0 || all[i - 1].person != f.person)
            .map(|(_, f)| f);
        let started = std::time::Instant::now();
        let due = a.at + Duration::minutes(i64::from(a.body.welfare_escalate_minutes.max(1)));
        let mut to_helpers = 0usize;
        let rows: Vec<Vec<Value>> = found
            .map(|f| {
                let level = match (f.helper, f.grid) {
                    (Some(_), _) => 0i64,
                    (None, Some(_)) => 1,
                    (None, None) => 2,
                };
                if f.helper.is_some() {
                    to_helpers += 1;
                }
                let none: Option<Uuid> = None;
                vec![
                    tx.new_id().into(),
                    a.incident_id.into(),
                    f.person.into(),
                    f.community.into(),
                    f.grid.into(),
                    f.compound.into(),
                    mask_name(&f.name).into(),
                    "open".into(),
                    level.into(),
                    0i64.into(),
                    f.helper.into(),
                    due.into(),
                    none.into(),
                    Option::<DateTime<Utc>>::None.into(),
                    none.into(),
                    "".into(),
                    "".into(),
                    none.into(),
                    a.at.into(),
                    a.at.into(),
                ]
            })
            .collect();
        // Every column (the bulk path writes whole rows): the defaults spelled out.
        let n = super::insert_all(
            tx,
            "welfare_checks",
            &[
                "id",
                "incident_id",
                "person_id",
                "community_id",
                "grid_id",
                "compound_id",
                "name_mask",
                "status",
                "level",
                "escalations",
                "assignee_user_id",
                "due_at",
                "recorded_by",
                "recorded_at",
                "moved_facility_id",
                "moved_place",
                "note",
                "task_id",
                "created_at",
                "updated_at",
            ],
            &rows,
        )?;
        tracing::debug!(
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "welfare: checks inserted"
        );
        super::log(
            tx,
            a.incident_id,
            "welfare.created",
            &format!("不漏一人：为{n}名重点人员建立安全确认，其中{to_helpers}人交帮扶人"),
            None,
        )?;
        Ok(serde_json::json!({ "checks": n, "to_helpers": to_helpers }))
    }

    fn deactivate(&self, tx: &mut Tx, id: Uuid, at: DateTime<Utc>) -> Result<serde_json::Value> {
        // One statement for the whole scope (a district has thousands), each row still logged.
        let n = tx
            .update_where(
                "welfare_checks",
                &[
                    ("status", "closed_unchecked".into()),
                    ("recorded_at", at.into()),
                    ("updated_at", at.into()),
                ],
                "incident_id = $1 AND status = 'open'",
                &params![id],
            )?
            .len();
        let checked = tx.conn().query_i64(
            "SELECT count(*) FROM welfare_checks WHERE incident_id = $1 AND status IN ('safe', 'need_help', 'moved')",
            &params![id],
        )?;
        super::log(
            tx,
            id,
            "welfare.closed",
            &format!("安全确认结束：已核实{checked}人，未核实{n}人"),
            None,
        )?;
        Ok(serde_json::json!({ "closed_unchecked": n, "checked": checked }))
    }
}
