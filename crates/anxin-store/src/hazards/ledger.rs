//! The hazard ledger (隐患台账).
//!
//! [`report`] is the one way a hazard comes to be (inspections call it for a failed item, staff
//! through the API with [`report_by`]): it computes the deadlines from the grade's rule and the
//! calendar ([`anxin_domain::calendar::due`] with [`super::calendar::load`]), writes the hazard and
//! its first event in the caller's transaction, and returns its id.
//!
//! Hazards are placed by their community (`node_id`) and grid ([`HAZARD_SCOPE`]); whoever holds
//! `read_hazards`, `handle_hazards` or `accept_hazards` there sees them ([`hazard_reach`]); a
//! hazard outside that reach is `NotFound`, like a missing one. Every change ([`act`]) is one
//! step of the state machine ([`anxin_domain::hazard::step`]), needs the action's permission
//! where the hazard lives (`Forbidden("hazard.forbidden")` otherwise), writes the hazard through
//! [`Tx`] and appends a `hazard_events` row (who, when, from, to, note, evidence).
//!
//! - The plan's start is recorded by linking a real incident: one of a plan activated for the
//!   hazard's node, a node above it or a node below it, that is active or was active (closed,
//!   reviewed) — never a pending or declined one; `plan_started_at` is the incident's activation
//!   (confirmation) time. A second link is refused.
//! - Close sets `closed_on_time`: fixed by `fix_due_at` and, under a plan rule, the plan started by
//!   `plan_due_at`.
//! - Reopen keeps the trail, clears the fix, the acceptance and the close; deadlines stay.
//! - Overdue: not closed and past `fix_due_at`, or a plan rule's `plan_due_at` passed with no
//!   plan started ([`Hazard::overdue`], [`OVERDUE_SQL`]).

use anxin_domain::calendar::due;
use anxin_domain::clock::SHANGHAI;
use anxin_domain::hazard::{
    closed_on_time, step, GradeRule, HazardAction, HazardGrade, HazardSource, HazardState,
    PlaceKind, Standing,
};
use anxin_domain::mask_name;
use anxin_domain::roles::Permission;
use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

const FINDING_MAX: usize = 1_000;
const LABEL_MAX: usize = 200;
const CATEGORY_MAX: usize = 50;
const PARTY_MAX: usize = 100;
const NOTE_MAX: usize = 1_000;
const EVIDENCE_MAX: usize = 20;
const PAGE_MAX: i64 = 200;
/// The most rows the map layer and the export hold.
pub const BULK_MAX: i64 = 10_000;

/// A hazard to report. The place is resolved by the caller (node, grid, label, position).
#[derive(Debug, Clone)]
pub struct NewHazard {
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub place_kind: PlaceKind,
    pub place_id: Uuid,
    pub place_label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub source: HazardSource,
    pub inspection_id: Option<Uuid>,
    pub answer_id: Option<Uuid>,
    pub category: String,
    pub finding: String,
    pub grade: HazardGrade,
    pub responsible_party: Option<String>,
    pub found_at: DateTime<Utc>,
    /// Photos already stored as attachments, linked to the hazard as its first evidence.
    pub evidence: Vec<Uuid>,
}

/// Hazards are placed by their community and grid.
pub const HAZARD_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "h.node_id",
    grid: Some("h.grid_id"),
    household: None,
};

/// Who sees hazards: whoever reads, handles or accepts them.
pub fn hazard_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::ReadHazards);
    r.merge(caller.reach(Permission::HandleHazards));
    r.merge(caller.reach(Permission::AcceptHazards));
    r
}

/// Open and past a deadline at `$n` (the fix's, or a plan rule's with no plan started).
pub fn overdue_sql(n: usize) -> String {
    format!(
        "(h.state <> 'closed' AND (h.fix_due_at < ${n} OR (h.plan_due_at IS NOT NULL \
         AND h.plan_started_at IS NULL AND h.plan_due_at < ${n})))"
    )
}

/// [`overdue_sql`] over `$1`.
pub const OVERDUE_SQL: &str =
    "(h.state <> 'closed' AND (h.fix_due_at < $1 OR (h.plan_due_at IS NOT NULL \
     AND h.plan_started_at IS NULL AND h.plan_due_at < $1)))";

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

/// Trimmed text: `value.required` when empty and required, `value.too_long`, `value.invalid` for
/// control characters (line breaks allowed when `multiline`).
fn clean(field: &str, raw: &str, max: usize, required: bool, multiline: bool) -> Result<String> {
    let s = raw.trim();
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

/// The rule of `grade` among `rules`.
pub fn rule_for(rules: &[GradeRule], grade: HazardGrade) -> Result<&GradeRule> {
    rules
        .iter()
        .find(|r| r.grade == grade)
        .ok_or_else(|| bad("hazard.no_rule", "grade"))
}

/// Report a hazard inside `tx` (see the module doc). `rules` come from configuration.
pub fn report(
    tx: &mut Tx<'_>,
    actor: Option<Uuid>,
    rules: &[GradeRule],
    hazard: &NewHazard,
) -> Result<Uuid> {
    let rule = rule_for(rules, hazard.grade)?.clone();
    let finding = clean("finding", &hazard.finding, FINDING_MAX, true, true)?;
    let label = clean("place_label", &hazard.place_label, LABEL_MAX, true, false)?;
    let category = clean("category", &hazard.category, CATEGORY_MAX, false, false)?;
    let party = match hazard.responsible_party.as_deref() {
        Some(p) if !p.trim().is_empty() => clean("responsible_party", p, PARTY_MAX, false, false)?,
        _ => rule.responsible.clone(),
    };
    match (hazard.lon, hazard.lat) {
        (None, None) => {}
        (Some(lon), Some(lat)) => {
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                return Err(bad("value.invalid", "lon"));
            }
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                return Err(bad("value.invalid", "lat"));
            }
        }
        (None, Some(_)) => return Err(bad("value.required", "lon")),
        (Some(_), None) => return Err(bad("value.required", "lat")),
    }
    let now = tx.now();
    if hazard.found_at > now + chrono::Duration::minutes(5) {
        return Err(bad("hazard.found_in_future", "found_at"));
    }
    let level: Option<String> = tx
        .query_one(
            "SELECT level FROM nodes WHERE id = $1",
            &params![hazard.node_id],
        )?
        .map(|r| r.get("level"))
        .transpose()?;
    if level.is_none() {
        return Err(bad("value.invalid", "node_id"));
    }
    if let Some(g) = hazard.grid_id {
        let n = tx.conn().query_i64(
            "SELECT count(*) FROM grids WHERE id = $1 AND community_id = $2",
            &params![g, hazard.node_id],
        )?;
        if n == 0 {
            return Err(bad("hazard.grid_not_in_node", "grid_id"));
        }
    }
    check_evidence(tx.conn(), hazard.node_id, &hazard.evidence)?;
    let cal = super::calendar::load(tx.conn())?;
    let fix_due_at = due(hazard.found_at, rule.fix_within, &cal);
    let plan_due_at = rule.plan_within.map(|t| due(hazard.found_at, t, &cal));
    let id = tx.new_id();
    tx.insert(
        "hazards",
        &[
            ("id", id.into()),
            ("node_id", hazard.node_id.into()),
            ("grid_id", hazard.grid_id.into()),
            ("place_kind", hazard.place_kind.as_str().into()),
            ("place_id", hazard.place_id.into()),
            ("place_label", label.into()),
            ("lon", hazard.lon.into()),
            ("lat", hazard.lat.into()),
            ("source", hazard.source.as_str().into()),
            ("inspection_id", hazard.inspection_id.into()),
            ("answer_id", hazard.answer_id.into()),
            ("category", category.into()),
            ("finding", finding.into()),
            ("grade", hazard.grade.as_str().into()),
            ("state", HazardState::Reported.as_str().into()),
            ("responsible_party", party.into()),
            ("found_at", hazard.found_at.into()),
            ("plan_due_at", plan_due_at.into()),
            ("fix_due_at", fix_due_at.into()),
            ("escalation_level", 0i64.into()),
            ("reopened_count", 0i64.into()),
            ("created_by", actor.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    append_event(
        tx,
        id,
        actor,
        "reported",
        None,
        Some(HazardState::Reported),
        "",
        &hazard.evidence,
    )?;
    Ok(id)
}

/// Attachments named as evidence must exist and belong to the hazard's node or a node below it.
fn check_evidence(conn: &mut dyn Conn, node: Uuid, ids: &[Uuid]) -> Result<()> {
    if ids.len() > EVIDENCE_MAX {
        return Err(bad("value.too_long", "evidence"));
    }
    let scope = Reach {
        nodes: vec![node],
        ..Reach::default()
    };
    for (i, id) in ids.iter().enumerate() {
        let mut p = vec![Value::from(*id)];
        let pred = scope.predicate(
            conn.dialect(),
            ScopeCols {
                node: "a.node_id",
                grid: None,
                household: None,
            },
            &mut p,
        );
        let n = conn.query_i64(
            &format!("SELECT count(*) FROM attachments a WHERE a.id = $1 AND {pred}"),
            &p,
        )?;
        if n == 0 {
            return Err(bad("hazard.evidence_unknown", format!("evidence[{i}]")));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn append_event(
    tx: &mut Tx<'_>,
    hazard: Uuid,
    actor: Option<Uuid>,
    kind: &str,
    from: Option<HazardState>,
    to: Option<HazardState>,
    note: &str,
    evidence: &[Uuid],
) -> Result<()> {
    let id = tx.new_id();
    let at = tx.now();
    let evidence = serde_json::to_string(evidence)
        .map_err(|e| StoreError::Backend(format!("evidence: {e}")))?;
    tx.execute_unlogged(
        "INSERT INTO hazard_events (seq, id, hazard_id, at, actor, kind, from_state, to_state, note, evidence) \
         VALUES ((SELECT COALESCE(max(seq), 0) + 1 FROM hazard_events WHERE hazard_id = $2), \
         $1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &params![
            id,
            hazard,
            at,
            actor,
            kind,
            from.map(HazardState::as_str),
            to.map(HazardState::as_str),
            note,
            evidence
        ],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// A hazard as the ledger shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hazard {
    pub id: Uuid,
    /// The community.
    pub node_id: Uuid,
    pub node_name: String,
    pub grid_id: Option<Uuid>,
    pub grid_name: Option<String>,
    /// dwelling, building, facility, node
    pub place_kind: String,
    pub place_id: Uuid,
    /// The place as a worker reads it (楼栋 3-2-401).
    pub place_label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// inspection, staff, resident
    pub source: String,
    pub inspection_id: Option<Uuid>,
    pub answer_id: Option<Uuid>,
    pub category: String,
    pub finding: String,
    /// minor, major
    pub grade: String,
    /// reported, assigned, remediating, fixed, accepted, closed
    pub state: String,
    /// Who fixes it (e.g. 物业服务企业).
    pub responsible_party: String,
    pub assignee_user_id: Option<Uuid>,
    /// The assignee's display name, masked.
    pub assignee_name: Option<String>,
    pub found_at: DateTime<Utc>,
    /// The plan must be started by then (grades with a plan rule).
    pub plan_due_at: Option<DateTime<Utc>>,
    /// The fix must be done by then.
    pub fix_due_at: DateTime<Utc>,
    /// The incident (an activation of a plan) recorded as the plan's start.
    pub incident_id: Option<Uuid>,
    pub plan_started_at: Option<DateTime<Utc>>,
    pub fixed_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<Uuid>,
    /// The accepting inspector's display name, masked.
    pub accepted_by_name: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Set at close: fixed by its deadline and (plan rule) the plan started by its deadline.
    pub closed_on_time: Option<bool>,
    /// Not closed and past a deadline, at the time of reading.
    pub overdue: bool,
    /// Levels of the tree above the community it has been escalated to.
    pub escalation_level: i64,
    pub escalated_at: Option<DateTime<Utc>>,
    pub reopened_count: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const HAZARD_SQL: &str = "SELECT h.*, n.name AS node_name, g.name AS grid_name, \
     ua.display_name AS assignee_name, uc.display_name AS accepted_by_name FROM hazards h \
     JOIN nodes n ON n.id = h.node_id LEFT JOIN grids g ON g.id = h.grid_id \
     LEFT JOIN users ua ON ua.id = h.assignee_user_id LEFT JOIN users uc ON uc.id = h.accepted_by";

impl Hazard {
    fn from_row(r: &Row, now: DateTime<Utc>) -> Result<Self> {
        let state: String = r.get("state")?;
        let fix_due_at: DateTime<Utc> = r.get("fix_due_at")?;
        let plan_due_at: Option<DateTime<Utc>> = r.get("plan_due_at")?;
        let plan_started_at: Option<DateTime<Utc>> = r.get("plan_started_at")?;
        let overdue = state != "closed"
            && (now > fix_due_at
                || (plan_started_at.is_none() && plan_due_at.is_some_and(|d| now > d)));
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get("node_name")?,
            grid_id: r.get("grid_id")?,
            grid_name: r.get("grid_name")?,
            place_kind: r.get("place_kind")?,
            place_id: r.get("place_id")?,
            place_label: r.get("place_label")?,
            lon: r.get("lon")?,
            lat: r.get("lat")?,
            source: r.get("source")?,
            inspection_id: r.get("inspection_id")?,
            answer_id: r.get("answer_id")?,
            category: r.get("category")?,
            finding: r.get("finding")?,
            grade: r.get("grade")?,
            state,
            responsible_party: r.get("responsible_party")?,
            assignee_user_id: r.get("assignee_user_id")?,
            assignee_name: r
                .get::<Option<String>>("assignee_name")?
                .map(|n| mask_name(&n)),
            found_at: r.get("found_at")?,
            plan_due_at,
            fix_due_at,
            incident_id: r.get("incident_id")?,
            plan_started_at,
            fixed_at: r.get("fixed_at")?,
            accepted_by: r.get("accepted_by")?,
            accepted_by_name: r
                .get::<Option<String>>("accepted_by_name")?
                .map(|n| mask_name(&n)),
            accepted_at: r.get("accepted_at")?,
            closed_at: r.get("closed_at")?,
            closed_on_time: r.get("closed_on_time")?,
            overdue,
            escalation_level: r.get("escalation_level")?,
            escalated_at: r.get("escalated_at")?,
            reopened_count: r.get("reopened_count")?,
            created_by: r.get("created_by")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    /// Its standing for the state machine.
    pub fn standing(&self) -> Result<Standing> {
        Ok(Standing {
            state: self
                .state
                .parse()
                .map_err(|_| StoreError::Backend(format!("stored state {}", self.state)))?,
            accepted: self.accepted_at.is_some(),
            plan_started: self.incident_id.is_some(),
        })
    }

    pub fn grade(&self) -> Result<HazardGrade> {
        self.grade
            .parse()
            .map_err(|_| StoreError::Backend(format!("stored grade {}", self.grade)))
    }
}

/// A hazard within `reach`; `NotFound` outside it, exactly like a missing one.
fn load(conn: &mut dyn Conn, reach: &Reach, id: Uuid, now: DateTime<Utc>) -> Result<Hazard> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), HAZARD_SCOPE, &mut params);
    let row = conn
        .query_one(&format!("{HAZARD_SQL} WHERE h.id = $1 AND {pred}"), &params)?
        .ok_or(StoreError::NotFound)?;
    Hazard::from_row(&row, now)
}

/// One hazard the caller may see.
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid, now: DateTime<Utc>) -> Result<Hazard> {
    load(conn, &hazard_reach(caller), id, now)
}

/// Whether `reach` covers the hazard `id`.
fn covers(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<bool> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), HAZARD_SCOPE, &mut params);
    Ok(conn.query_i64(
        &format!("SELECT count(*) FROM hazards h WHERE h.id = $1 AND {pred}"),
        &params,
    )? > 0)
}

/// A line of a hazard's trail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HazardEvent {
    pub id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Option<Uuid>,
    /// The actor's display name, masked.
    pub actor_name: Option<String>,
    /// reported, assigned, remediating, fixed, accepted, closed, reopened, plan_started,
    /// escalated, note
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub note: String,
    /// Attachment ids (photos and other evidence).
    pub evidence: Vec<Uuid>,
}

/// The trail of a hazard in reach, oldest first.
pub fn events(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Vec<HazardEvent>> {
    if !covers(conn, &hazard_reach(caller), id)? {
        return Err(StoreError::NotFound);
    }
    trail(conn, id)
}

fn trail(conn: &mut dyn Conn, id: Uuid) -> Result<Vec<HazardEvent>> {
    let rows = conn.query(
        "SELECT e.*, u.display_name FROM hazard_events e LEFT JOIN users u ON u.id = e.actor \
         WHERE e.hazard_id = $1 ORDER BY e.seq",
        &params![id],
    )?;
    rows.iter()
        .map(|r| {
            let evidence: String = r.get("evidence")?;
            Ok(HazardEvent {
                id: r.get("id")?,
                seq: r.get("seq")?,
                at: r.get("at")?,
                actor: r.get("actor")?,
                actor_name: r
                    .get::<Option<String>>("display_name")?
                    .map(|n| mask_name(&n)),
                kind: r.get("kind")?,
                from_state: r.get("from_state")?,
                to_state: r.get("to_state")?,
                note: r.get("note")?,
                evidence: serde_json::from_str(&evidence).unwrap_or_default(),
            })
        })
        .collect()
}

/// A hazard with its trail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct HazardDetail {
    #[serde(flatten)]
    pub hazard: Hazard,
    pub events: Vec<HazardEvent>,
}

/// One hazard with its trail.
pub fn detail(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<HazardDetail> {
    let hazard = get(conn, caller, id, now)?;
    let events = trail(conn, id)?;
    Ok(HazardDetail { hazard, events })
}

/// List filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HazardFilter {
    /// reported, assigned, remediating, fixed, accepted, closed; or `open` (anything not closed).
    pub state: Option<String>,
    /// minor or major.
    pub grade: Option<String>,
    /// Only overdue hazards (`true`) or only those that are not (`false`).
    pub overdue: Option<bool>,
    /// Any node: hazards in its subtree.
    pub node: Option<Uuid>,
    pub grid: Option<Uuid>,
    /// inspection, staff or resident.
    pub source: Option<String>,
    /// Text in the finding or the place.
    pub q: Option<String>,
    /// Rows per page (default 50, at most 200).
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page (keyset paging, newest found first).
    pub after: Option<String>,
}

/// A page of hazards, newest found first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct HazardPage {
    pub items: Vec<Hazard>,
    pub limit: i64,
    /// Cursor of the next page (pass as `after`); absent on the last page.
    pub next: Option<String>,
}

fn cursor(found_at: DateTime<Utc>, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{id}{}", crate::value::time_text(&found_at)))
}

fn parse_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid)> {
    use base64::Engine;
    let bad = || bad("value.invalid", "after");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, at) = (
        text.get(..36).ok_or_else(bad)?,
        text.get(36..).ok_or_else(bad)?,
    );
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn some_text(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The WHERE of a filtered read within the caller's reach.
fn conditions(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &HazardFilter,
    now: DateTime<Utc>,
    params: &mut Vec<Value>,
) -> Result<Vec<String>> {
    let d = conn.dialect();
    let mut parts = vec![hazard_reach(caller).predicate(d, HAZARD_SCOPE, params)];
    if let Some(s) = some_text(&f.state) {
        if s == "open" {
            parts.push("h.state <> 'closed'".into());
        } else {
            let st: HazardState = s.parse().map_err(|_| bad("value.invalid", "state"))?;
            params.push(st.as_str().into());
            parts.push(format!("h.state = ${}", params.len()));
        }
    }
    if let Some(g) = some_text(&f.grade) {
        let g: HazardGrade = g.parse().map_err(|_| bad("value.invalid", "grade"))?;
        params.push(g.as_str().into());
        parts.push(format!("h.grade = ${}", params.len()));
    }
    if let Some(s) = some_text(&f.source) {
        let s: HazardSource = s.parse().map_err(|_| bad("value.invalid", "source"))?;
        params.push(s.as_str().into());
        parts.push(format!("h.source = ${}", params.len()));
    }
    if let Some(o) = f.overdue {
        params.push(now.into());
        let sql = overdue_sql(params.len());
        parts.push(if o { sql } else { format!("NOT {sql}") });
    }
    if let Some(n) = f.node {
        let sub = Reach {
            nodes: vec![n],
            ..Reach::default()
        };
        parts.push(sub.predicate(
            d,
            ScopeCols {
                node: "h.node_id",
                grid: None,
                household: None,
            },
            params,
        ));
    }
    if let Some(g) = f.grid {
        params.push(g.into());
        parts.push(format!("h.grid_id = ${}", params.len()));
    }
    if let Some(q) = some_text(&f.q) {
        if q.chars().count() > 100 {
            return Err(bad("value.too_long", "q"));
        }
        params.push(format!("%{}%", escape_like(q)).into());
        let n = params.len();
        parts.push(format!(
            "(h.finding LIKE ${n} ESCAPE '\\' OR h.place_label LIKE ${n} ESCAPE '\\')"
        ));
    }
    Ok(parts)
}

/// One page of hazards in the caller's reach, newest found first.
pub fn list(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &HazardFilter,
    now: DateTime<Utc>,
) -> Result<HazardPage> {
    let limit = f.limit.unwrap_or(50);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(bad("value.invalid", "limit"));
    }
    let after = some_text(&f.after).map(parse_cursor).transpose()?;
    let mut params = Vec::new();
    let mut parts = conditions(conn, caller, f, now, &mut params)?;
    if let Some((at, id)) = after {
        params.push(at.into());
        params.push(id.into());
        let (a, b) = (params.len() - 1, params.len());
        parts.push(format!(
            "(h.found_at < ${a} OR (h.found_at = ${a} AND h.id < ${b}))"
        ));
    }
    params.push(limit.into());
    let rows = conn.query(
        &format!(
            "{HAZARD_SQL} WHERE {} ORDER BY h.found_at DESC, h.id DESC LIMIT ${}",
            parts.join(" AND "),
            params.len()
        ),
        &params,
    )?;
    let items: Vec<Hazard> = rows
        .iter()
        .map(|r| Hazard::from_row(r, now))
        .collect::<Result<_>>()?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|h| cursor(h.found_at, h.id)))
        .flatten();
    Ok(HazardPage { items, limit, next })
}

/// Every hazard of the filter in reach (at most [`BULK_MAX`]), newest found first: the map layer
/// and the export.
pub fn all(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &HazardFilter,
    now: DateTime<Utc>,
) -> Result<Vec<Hazard>> {
    let mut params = Vec::new();
    let parts = conditions(conn, caller, f, now, &mut params)?;
    params.push(BULK_MAX.into());
    let rows = conn.query(
        &format!(
            "{HAZARD_SQL} WHERE {} ORDER BY h.found_at DESC, h.id DESC LIMIT ${}",
            parts.join(" AND "),
            params.len()
        ),
        &params,
    )?;
    rows.iter().map(|r| Hazard::from_row(r, now)).collect()
}

/// The hazards in reach that have a position, as a GeoJSON FeatureCollection (WGS84): properties
/// id, grade, state, overdue, finding, place_label, fix_due_at.
pub fn geojson(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &HazardFilter,
    now: DateTime<Utc>,
) -> Result<serde_json::Value> {
    let features: Vec<serde_json::Value> = all(conn, caller, f, now)?
        .into_iter()
        .filter_map(|h| {
            let (lon, lat) = (h.lon?, h.lat?);
            Some(serde_json::json!({
                "type": "Feature",
                "id": h.id,
                "geometry": { "type": "Point", "coordinates": [lon, lat] },
                "properties": {
                    "id": h.id,
                    "grade": h.grade,
                    "state": h.state,
                    "overdue": h.overdue,
                    "finding": h.finding,
                    "place_label": h.place_label,
                    "fix_due_at": h.fix_due_at,
                }
            }))
        })
        .collect();
    Ok(serde_json::json!({ "type": "FeatureCollection", "features": features }))
}

// ---------------------------------------------------------------------------------------------
// Staff reports.

/// A hazard reported by staff.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HazardInput {
    /// The community.
    pub node_id: Option<Uuid>,
    /// A grid of that community (grid workers must name their grid).
    pub grid_id: Option<Uuid>,
    /// Where (楼栋 3-2-401, 2号楼消防通道).
    pub place_label: Option<String>,
    /// WGS84 longitude (with `lat`).
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// gas, fire, structural, … (free text, at most 50 characters).
    pub category: Option<String>,
    /// What is wrong.
    pub finding: Option<String>,
    /// minor or major.
    pub grade: Option<String>,
    /// Who fixes it; the grade's rule names one when empty.
    pub responsible_party: Option<String>,
    /// When it was found (default now; not in the future).
    pub found_at: Option<DateTime<Utc>>,
    /// Attachment ids (photos) of the hazard's community.
    pub evidence: Option<Vec<Uuid>>,
}

/// A staff member reports a hazard (needs `handle_hazards` where it is). Returns it.
pub fn report_by(
    tx: &mut Tx<'_>,
    caller: &Caller,
    rules: &[GradeRule],
    input: &HazardInput,
) -> Result<Hazard> {
    if !caller.has(Permission::HandleHazards) {
        return Err(StoreError::Forbidden("hazard.forbidden"));
    }
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let grade: HazardGrade = input
        .grade
        .as_deref()
        .ok_or_else(|| bad("value.required", "grade"))?
        .parse()
        .map_err(|_| bad("value.invalid", "grade"))?;
    let reach = caller.reach(Permission::HandleHazards);
    // A node outside reach answers like a missing one (a grid worker's grid is checked below).
    if reach.grids.is_empty() && !reach.contains_node(tx.conn(), node)? {
        return Err(bad("value.invalid", "node_id"));
    }
    let now = tx.now();
    let id = report(
        tx,
        caller.user_id,
        rules,
        &NewHazard {
            node_id: node,
            grid_id: input.grid_id,
            place_kind: PlaceKind::Node,
            place_id: node,
            place_label: input.place_label.clone().unwrap_or_default(),
            lon: input.lon,
            lat: input.lat,
            source: HazardSource::Staff,
            inspection_id: None,
            answer_id: None,
            category: input.category.clone().unwrap_or_default(),
            finding: input.finding.clone().unwrap_or_default(),
            grade,
            responsible_party: input.responsible_party.clone(),
            found_at: input.found_at.unwrap_or(now),
            evidence: input.evidence.clone().unwrap_or_default(),
        },
    )?;
    // The record as written must sit inside the reporter's reach (a grid worker: their grid);
    // otherwise the whole write rolls back.
    if !covers(tx.conn(), &reach, id)? {
        return Err(bad("value.invalid", "node_id"));
    }
    load(
        tx.conn(),
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
        now,
    )
}

// ---------------------------------------------------------------------------------------------
// Actions.

/// One action on a hazard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HazardActionInput {
    /// assign, start_remediation, mark_fixed, accept, close, reopen, record_plan_start, note
    pub action: Option<String>,
    /// Why, what was done (required for `note` without evidence and for `reopen`).
    pub note: Option<String>,
    /// `assign`: a staff user who may handle hazards where this one is.
    pub assignee_user_id: Option<Uuid>,
    /// `assign`: who fixes it (物业服务企业 …).
    pub responsible_party: Option<String>,
    /// `record_plan_start`: the incident (an activation of a plan) that started the plan.
    pub incident_id: Option<Uuid>,
    /// Attachment ids (photos) of the hazard's community.
    pub evidence: Option<Vec<Uuid>>,
}

/// Take one action on a hazard (see the module doc). Returns the hazard as it now stands.
pub fn act(
    tx: &mut Tx<'_>,
    caller: &Caller,
    rules: &[GradeRule],
    id: Uuid,
    input: &HazardActionInput,
) -> Result<Hazard> {
    let now = tx.now();
    let h = load(tx.conn(), &hazard_reach(caller), id, now)?;
    let action: HazardAction = input
        .action
        .as_deref()
        .ok_or_else(|| bad("value.required", "action"))?
        .parse()
        .map_err(|_| bad("value.invalid", "action"))?;
    if !covers(tx.conn(), &caller.reach(action.permission()), id)? {
        return Err(StoreError::Forbidden("hazard.forbidden"));
    }
    let rule = rule_for(rules, h.grade()?)?.clone();
    let before = h.standing()?;
    let after = step(&rule, before, action).map_err(|e| StoreError::Conflict {
        code: e.code,
        detail: e.to_string(),
    })?;
    let note = clean(
        "note",
        input.note.as_deref().unwrap_or(""),
        NOTE_MAX,
        false,
        true,
    )?;
    let evidence = input.evidence.clone().unwrap_or_default();
    check_evidence(tx.conn(), h.node_id, &evidence)?;
    let actor = caller.user_id;
    let mut cols: Vec<(&str, Value)> = Vec::new();
    let mut note_out = note.clone();
    match action {
        HazardAction::Assign => {
            if input.assignee_user_id.is_none() && some_text(&input.responsible_party).is_none() {
                return Err(bad("value.required", "assignee_user_id"));
            }
            if let Some(u) = input.assignee_user_id {
                if !may_handle(tx.conn(), u, id, now)? {
                    return Err(bad("hazard.assignee_invalid", "assignee_user_id"));
                }
                cols.push(("assignee_user_id", u.into()));
            }
            if let Some(p) = some_text(&input.responsible_party) {
                cols.push((
                    "responsible_party",
                    clean("responsible_party", p, PARTY_MAX, true, false)?.into(),
                ));
            }
        }
        HazardAction::StartRemediation => {}
        HazardAction::MarkFixed => {
            cols.push(("fixed_at", now.into()));
            cols.push(("accepted_by", Value::Null));
            cols.push(("accepted_at", Value::Null));
        }
        HazardAction::Accept => {
            cols.push(("accepted_by", actor.into()));
            cols.push(("accepted_at", now.into()));
        }
        HazardAction::Close => {
            cols.push(("closed_at", now.into()));
            cols.push((
                "closed_on_time",
                closed_on_time(h.fixed_at, h.fix_due_at, h.plan_due_at, h.plan_started_at).into(),
            ));
        }
        HazardAction::Reopen => {
            if note.is_empty() {
                return Err(bad("value.required", "note"));
            }
            for c in [
                "fixed_at",
                "accepted_by",
                "accepted_at",
                "closed_at",
                "closed_on_time",
            ] {
                cols.push((c, Value::Null));
            }
            cols.push(("reopened_count", (h.reopened_count + 1).into()));
        }
        HazardAction::RecordPlanStart => {
            let inc = input
                .incident_id
                .ok_or_else(|| bad("value.required", "incident_id"))?;
            let (started, title) = plan_start(tx.conn(), h.node_id, inc)?;
            cols.push(("incident_id", inc.into()));
            cols.push(("plan_started_at", started.into()));
            note_out = if note.is_empty() {
                title
            } else {
                format!("{title}：{note}")
            };
        }
        HazardAction::Note => {
            if note.is_empty() && evidence.is_empty() {
                return Err(bad("value.required", "note"));
            }
        }
    }
    if after.state != before.state {
        cols.push(("state", after.state.as_str().into()));
    }
    if !cols.is_empty() {
        cols.push(("updated_at", now.into()));
        tx.update("hazards", id, &cols)?;
    }
    let (from, to) = if after.state != before.state {
        (Some(before.state), Some(after.state))
    } else {
        (None, None)
    };
    append_event(
        tx,
        id,
        actor,
        action.event_kind(),
        from,
        to,
        &note_out,
        &evidence,
    )?;
    load(
        tx.conn(),
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
        now,
    )
}

/// Whether user `u` holds, now, a grant that may handle hazard `id`.
fn may_handle(conn: &mut dyn Conn, u: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let staff = conn.query_i64(
        "SELECT count(*) FROM users WHERE id = $1 AND kind = 'staff' AND disabled = $2",
        &params![u, false],
    )?;
    if staff == 0 {
        return Ok(false);
    }
    let who = Caller::load(conn, u, now)?;
    covers(conn, &who.reach(Permission::HandleHazards), id)
}

/// The incident recorded as a plan's start for a hazard of `node`: it must be an activation of a
/// plan for `node`, a node above it or one below it, that is or was active. Returns its
/// activation (confirmation) time and its title. Every refusal reads the same
/// (`hazard.incident_invalid`), so nothing is told about incidents out of place.
fn plan_start(conn: &mut dyn Conn, node: Uuid, incident: Uuid) -> Result<(DateTime<Utc>, String)> {
    let refuse = || bad("hazard.incident_invalid", "incident_id");
    let Some(r) = conn.query_one(
        "SELECT node_id, status, title, activated_at, confirmed_at FROM incidents WHERE id = $1",
        &params![incident],
    )?
    else {
        return Err(refuse());
    };
    let status: String = r.get("status")?;
    let inc_node: Uuid = r.get("node_id")?;
    let activated: Option<DateTime<Utc>> = r.get("activated_at")?;
    let confirmed: Option<DateTime<Utc>> = r.get("confirmed_at")?;
    if !matches!(status.as_str(), "active" | "closed" | "reviewed") {
        return Err(refuse());
    }
    let Some(started) = confirmed.or(activated) else {
        return Err(refuse());
    };
    let above = inc_node == node
        || crate::monitor::ancestors(conn, node)?
            .iter()
            .any(|(id, _)| *id == inc_node);
    let below = Reach {
        nodes: vec![node],
        ..Reach::default()
    }
    .contains_node(conn, inc_node)?;
    if !(above || below) {
        return Err(refuse());
    }
    Ok((started, r.get("title")?))
}

/// Incidents a hazard may record as its plan's start: active ones for its node, above or below.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PlanStartChoice {
    pub incident_id: Uuid,
    pub title: String,
    pub node_name: String,
    pub activated_at: Option<DateTime<Utc>>,
    pub exercise: bool,
}

/// The active incidents a hazard in reach could link (for the plan-start form).
pub fn plan_start_choices(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<PlanStartChoice>> {
    let h = get(conn, caller, id, now)?;
    let mut nodes: Vec<Uuid> = vec![h.node_id];
    nodes.extend(
        crate::monitor::ancestors(conn, h.node_id)?
            .into_iter()
            .map(|(n, _)| n),
    );
    let sub = Reach {
        nodes: vec![h.node_id],
        ..Reach::default()
    };
    let mut params = Vec::new();
    let pred = sub.predicate(
        conn.dialect(),
        ScopeCols {
            node: "i.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let mut ors = vec![pred];
    for n in nodes {
        params.push(n.into());
        ors.push(format!("i.node_id = ${}", params.len()));
    }
    let rows = conn.query(
        &format!(
            "SELECT i.id, i.title, i.exercise, i.activated_at, n.name AS node_name FROM incidents i \
             JOIN nodes n ON n.id = i.node_id WHERE i.status = 'active' AND ({}) \
             ORDER BY i.activated_at DESC, i.id LIMIT 100",
            ors.join(" OR ")
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(PlanStartChoice {
                incident_id: r.get("id")?,
                title: r.get("title")?,
                node_name: r.get("node_name")?,
                activated_at: r.get("activated_at")?,
                exercise: r.get("exercise")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Escalation (the timer's job lives in the binary: `hazards::escalation`).

/// An open hazard past a deadline.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub id: Uuid,
    pub node_id: Uuid,
    pub finding: String,
    pub place_label: String,
    pub grade: String,
    /// The deadline it missed first.
    pub missed: DateTime<Utc>,
    pub escalation_level: i64,
}

/// Every open hazard past a deadline at `now`.
pub fn overdue(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<Vec<Overdue>> {
    let rows = conn.query(
        &format!(
            "SELECT h.id, h.node_id, h.finding, h.place_label, h.grade, h.fix_due_at, \
             h.plan_due_at, h.plan_started_at, h.escalation_level FROM hazards h \
             WHERE {OVERDUE_SQL} ORDER BY h.fix_due_at, h.id"
        ),
        &params![now],
    )?;
    rows.iter()
        .map(|r| {
            let fix: DateTime<Utc> = r.get("fix_due_at")?;
            let plan: Option<DateTime<Utc>> = r.get("plan_due_at")?;
            let started: Option<DateTime<Utc>> = r.get("plan_started_at")?;
            let missed = match (plan, started) {
                (Some(p), None) if p < fix => p,
                _ => fix,
            };
            Ok(Overdue {
                id: r.get("id")?,
                node_id: r.get("node_id")?,
                finding: r.get("finding")?,
                place_label: r.get("place_label")?,
                grade: r.get("grade")?,
                missed,
                escalation_level: r.get("escalation_level")?,
            })
        })
        .collect()
}

/// Record that hazard `id` went up to `level` (only upwards, and only while open), with an
/// `escalated` event naming the node. Returns whether it changed.
pub fn escalate(tx: &mut Tx<'_>, id: Uuid, level: i64, node_name: &str) -> Result<bool> {
    let Some(r) = tx.query_one(
        "SELECT escalation_level, state FROM hazards WHERE id = $1",
        &params![id],
    )?
    else {
        return Ok(false);
    };
    let cur: i64 = r.get("escalation_level")?;
    let state: String = r.get("state")?;
    if state == "closed" || cur >= level {
        return Ok(false);
    }
    let now = tx.now();
    tx.update(
        "hazards",
        id,
        &[
            ("escalation_level", level.into()),
            ("escalated_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    append_event(
        tx,
        id,
        None,
        "escalated",
        None,
        None,
        &format!("逾期升级至{node_name}（第{level}级）"),
        &[],
    )?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// What the pages need.

/// Photos stored after the report (the report page's uploads) become the first event's evidence.
pub fn set_report_evidence(tx: &mut Tx<'_>, hazard: Uuid, evidence: &[Uuid]) -> Result<()> {
    let node: Uuid = tx
        .query_one(
            "SELECT node_id FROM hazards WHERE id = $1",
            &params![hazard],
        )?
        .ok_or(StoreError::NotFound)?
        .get("node_id")?;
    check_evidence(tx.conn(), node, evidence)?;
    let evidence = serde_json::to_string(evidence)
        .map_err(|e| StoreError::Backend(format!("evidence: {e}")))?;
    tx.execute_unlogged(
        "UPDATE hazard_events SET evidence = $1 WHERE hazard_id = $2 AND seq = 1",
        &params![evidence, hazard],
    )?;
    Ok(())
}

/// A community where the caller may report, with the grids they may report in.
#[derive(Debug, Clone, Serialize)]
pub struct ReportPlace {
    pub node_id: Uuid,
    pub node_name: String,
    /// (grid id, grid name)
    pub grids: Vec<(Uuid, String)>,
}

/// Where the caller may report hazards (communities by node grants; grids by grid grants).
pub fn report_places(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<ReportPlace>> {
    let reach = caller.reach(Permission::HandleHazards);
    let d = conn.dialect();
    let mut params = Vec::new();
    let node_pred = Reach {
        grids: Vec::new(),
        ..reach.clone()
    }
    .predicate(
        d,
        ScopeCols {
            node: "g.community_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let grid_pred = Reach {
        grids: reach.grids.clone(),
        ..Reach::default()
    }
    .predicate(
        d,
        ScopeCols {
            node: "g.community_id",
            grid: Some("g.id"),
            household: None,
        },
        &mut params,
    );
    let mut out: Vec<ReportPlace> = Vec::new();
    let mut push = |id: Uuid, name: String, grid: Option<(Uuid, String)>| {
        let i = match out.iter().position(|p| p.node_id == id) {
            Some(i) => i,
            None => {
                out.push(ReportPlace {
                    node_id: id,
                    node_name: name,
                    grids: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(g) = grid {
            out[i].grids.push(g);
        }
    };
    let mut nparams = Vec::new();
    let npred = Reach {
        grids: Vec::new(),
        ..reach.clone()
    }
    .predicate(
        d,
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut nparams,
    );
    for r in conn.query(
        &format!(
            "SELECT n.id, n.name FROM nodes n WHERE n.level = 'community' AND {npred} \
             ORDER BY n.name, n.id LIMIT 200"
        ),
        &nparams,
    )? {
        push(r.get("id")?, r.get("name")?, None);
    }
    for r in conn.query(
        &format!(
            "SELECT g.id, g.name, g.community_id, n.name AS node_name FROM grids g \
             JOIN nodes n ON n.id = g.community_id WHERE ({node_pred} OR {grid_pred}) \
             ORDER BY n.name, g.name, g.id LIMIT 1000"
        ),
        &params,
    )? {
        push(
            r.get("community_id")?,
            r.get("node_name")?,
            Some((r.get("id")?, r.get("name")?)),
        );
    }
    Ok(out)
}

/// Staff who may be assigned a hazard: holders, now, of a grant that may handle it.
pub fn assignees(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>> {
    let h = get(conn, caller, id, now)?;
    let mut nodes = vec![h.node_id];
    nodes.extend(
        crate::monitor::ancestors(conn, h.node_id)?
            .into_iter()
            .map(|(n, _)| n),
    );
    let mut params: Vec<Value> = vec![now.into(), false.into()];
    let mut ors = Vec::new();
    for n in nodes {
        params.push(n.into());
        ors.push(format!(
            "(g.scope_kind = 'node' AND g.scope_id = ${})",
            params.len()
        ));
    }
    if let Some(g) = h.grid_id {
        params.push(g.into());
        ors.push(format!(
            "(g.scope_kind = 'grid' AND g.scope_id = ${})",
            params.len()
        ));
    }
    let rows = conn.query(
        &format!(
            "SELECT DISTINCT u.id, u.display_name, g.role FROM grants g JOIN users u ON u.id = g.user_id \
             WHERE g.revoked_at IS NULL AND g.valid_from <= $1 AND (g.valid_to IS NULL OR g.valid_to > $1) \
             AND u.disabled = $2 AND u.kind = 'staff' AND ({}) ORDER BY u.display_name, u.id LIMIT 200",
            ors.join(" OR ")
        ),
        &params,
    )?;
    let mut out: Vec<(Uuid, String)> = Vec::new();
    for r in rows {
        let role: String = r.get("role")?;
        let Ok(role) = role.parse::<anxin_domain::Role>() else {
            continue;
        };
        if !role.permissions().contains(&Permission::HandleHazards) {
            continue;
        }
        let id: Uuid = r.get("id")?;
        if !out.iter().any(|(u, _)| *u == id) {
            let name: String = r.get("display_name")?;
            out.push((id, mask_name(&name)));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The XLSX shape community workers file (the binary writes the workbook, neutralising formulas).

/// The export's columns.
pub const XLSX_HEADERS: [&str; 10] = [
    "地点",
    "隐患描述",
    "等级",
    "发现时间",
    "整改期限",
    "责任单位",
    "状态",
    "销号时间",
    "验收人",
    "编号",
];

/// One hazard as a row of the export.
pub fn xlsx_row(h: &Hazard) -> Vec<String> {
    let opt = |t: Option<DateTime<Utc>>| t.map(local_time).unwrap_or_default();
    let grade = h
        .grade
        .parse::<HazardGrade>()
        .map(|g| g.zh().to_owned())
        .unwrap_or_else(|_| h.grade.clone());
    let mut state = h
        .state
        .parse::<HazardState>()
        .map(|s| s.zh().to_owned())
        .unwrap_or_else(|_| h.state.clone());
    if h.overdue {
        state.push_str("（逾期）");
    }
    let place = match &h.grid_name {
        Some(g) => format!("{} {} {}", h.node_name, g, h.place_label),
        None => format!("{} {}", h.node_name, h.place_label),
    };
    vec![
        place,
        h.finding.clone(),
        grade,
        local_time(h.found_at),
        deadline_text(h.fix_due_at),
        h.responsible_party.clone(),
        state,
        opt(h.closed_at),
        h.accepted_by_name.clone().unwrap_or_default(),
        h.id.to_string(),
    ]
}

/// A time in Asia/Shanghai: `2026-12-03 14:05`.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&SHANGHAI)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A deadline in Asia/Shanghai; one ending at midnight reads as 24:00 of its last day
/// (`2026-12-10 24:00`, not `2026-12-11 00:00`).
pub fn deadline_text(t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&SHANGHAI);
    if l.hour() == 0 && l.minute() == 0 && l.second() == 0 {
        let day = l.date_naive().pred_opt().unwrap_or(l.date_naive());
        format!("{} 24:00", day.format("%Y-%m-%d"))
    } else {
        local_time(t)
    }
}
