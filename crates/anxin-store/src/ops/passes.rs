//! Entry passes, gate records and contact look-up (出入管理).
//!
//! - **Gates** belong to a compound or a community (东门, 北门); a gate may name the grid whose
//!   workers staff it. Workers with `ManagePasses` create them; `CheckGates` (grid and community
//!   workers, volunteers) staffs them.
//! - **Passes**: while an incident is *active* for the compound or one of its ancestors, a worker
//!   with `ManagePasses` issues one pass per household (all households of a compound or
//!   community within reach in one go, or one household). Each has a random code (50 bits, not
//!   guessable), stored as a blind index for look-up and sealed with the pass's own data key for
//!   showing it back. A pass is valid while its incident is active, it is not revoked and
//!   `valid_until` (when set) has not passed.
//! - **Gate records**: one per passage or refused attempt, by pass code or by ID-card number
//!   (for people without phones). Who passed is whereabouts: the subject (household, person,
//!   any ID number typed) is sealed with the record's own data key; look-ups go through blind
//!   indexes; the change-log image is sealed (the row has a `key_id`); the retention registry
//!   ([`gate_records_rule`]) deletes rows and their change-log entries and shreds their keys.
//! - **Contact look-up**: who passed the same gates within a window of a confirmed case's
//!   passages, only while the incident is active and only for `ContactLookup`; the HTTP layer
//!   audits every look-up, refused ones included. Results are masked.

use std::collections::{BTreeMap, HashMap, HashSet};

use anxin_domain::roles::Permission;
use anxin_domain::{mask_name, DocType, Document, SHANGHAI};
use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::people::BIDX_DOCUMENT;
use crate::retention::RetentionRule;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::{make_data_key, Tx};
use crate::value::{Row, Value};
use crate::Env;

/// Blind-index context of pass codes.
pub const BIDX_CODE: &str = "passes.code";
/// Blind-index contexts of a gate record's subject.
pub const BIDX_HOUSEHOLD: &str = "gate.household";
pub const BIDX_PERSON: &str = "gate.person";
/// The sealed fields.
const FIELD_CODE: &str = "passes.code";
const FIELD_SUBJECT: &str = "gate_records.subject";

/// Characters of a pass code: digits and capitals without 0/1/I/O (read aloud at a gate).
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters per code: 10 × 5 bits = 50 bits.
const CODE_LEN: usize = 10;
const NAME_MAX: usize = 40;
/// The longest contact window, in minutes.
pub const WINDOW_MAX: i64 = 24 * 60;
pub const WINDOW_DEFAULT: i64 = 30;

const GATE_COLS: ScopeCols<'static> = ScopeCols {
    node: "g.node_id",
    grid: Some("g.grid_id"),
    household: None,
};
const PASS_COLS: ScopeCols<'static> = ScopeCols {
    node: "s.node_id",
    grid: Some("s.grid_id"),
    household: None,
};
const HH_COLS: ScopeCols<'static> = ScopeCols {
    node: "h.community_id",
    grid: Some("h.grid_id"),
    household: None,
};

fn bad(code: &'static str, field: &str) -> StoreError {
    StoreError::invalid(code, field)
}

fn conflict(code: &'static str, detail: &str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: detail.to_owned(),
    }
}

/// Where gates are seen: whoever staffs them or manages passes.
fn gate_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::CheckGates);
    r.merge(caller.reach(Permission::ManagePasses));
    r
}

/// The retention rule of gate records: aged by the passage, deleted with their change-log
/// entries, their data keys shredded.
pub fn gate_records_rule(days: i64) -> RetentionRule {
    RetentionRule {
        kind: "gate_records",
        table: "gate_records",
        time_column: "at",
        keep: Duration::days(days),
        extra: None,
        key_column: Some("key_id"),
        id_column: "id",
        log_kind: Some("gate_records"),
    }
}

// ---------------------------------------------------------------------------------------------
// Codes.

/// A new random pass code, `XXXXX-XXXXX`.
pub fn new_code() -> String {
    let random = anxin_crypto::hash_token(&anxin_crypto::new_token());
    let mut s = String::with_capacity(CODE_LEN + 1);
    for (i, b) in random.iter().take(CODE_LEN).enumerate() {
        if i == CODE_LEN / 2 {
            s.push('-');
        }
        s.push(char::from(ALPHABET[usize::from(b % 32)]));
    }
    s
}

/// A typed code in its one form (capitals, no spaces or dashes); `None` when it cannot be a code.
pub fn normalize_code(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

// ---------------------------------------------------------------------------------------------
// Nodes and incidents.

/// `up`: `$1` and its ancestors.
const UP: &str =
    "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE id = $1 \
                  UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) ";

/// The active incident for `node` (on the node or one of its ancestors): the one named, or the
/// latest activated.
fn covering_incident(
    conn: &mut dyn Conn,
    node: Uuid,
    incident: Option<Uuid>,
) -> Result<Option<Row>> {
    let (extra, params) = match incident {
        Some(i) => (" AND i.id = $2", params![node, i].to_vec()),
        None => ("", params![node].to_vec()),
    };
    conn.query_one(
        &format!(
            "{UP}SELECT i.id, i.node_id, i.activated_at, i.created_at FROM incidents i \
             WHERE i.status = 'active' AND i.node_id IN (SELECT id FROM up){extra} \
             ORDER BY i.activated_at DESC, i.id DESC LIMIT 1"
        ),
        &params,
    )
}

fn node_level(conn: &mut dyn Conn, node: Uuid) -> Result<Option<(String, Option<Uuid>)>> {
    conn.query_one(
        "SELECT level, parent_id FROM nodes WHERE id = $1",
        &params![node],
    )?
    .map(|r| Ok((r.get("level")?, r.get("parent_id")?)))
    .transpose()
}

/// The nodes a household lives under that can have gates: its community, and the compound (or
/// community) of its dwelling's building.
fn home_nodes(conn: &mut dyn Conn, household: Uuid) -> Result<Vec<Uuid>> {
    let Some(r) = conn.query_one(
        "SELECT h.community_id, b.node_id AS building_node FROM households h \
         LEFT JOIN dwellings d ON d.id = h.dwelling_id LEFT JOIN buildings b ON b.id = d.building_id \
         WHERE h.id = $1",
        &params![household],
    )?
    else {
        return Ok(Vec::new());
    };
    let mut out = vec![r.get::<Uuid>("community_id")?];
    if let Some(b) = r.get::<Option<Uuid>>("building_node")? {
        if !out.contains(&b) {
            out.push(b);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Gates.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateInput {
    /// A compound or a community.
    pub node_id: Option<Uuid>,
    /// The grid whose workers staff the gate (of the gate's community).
    pub grid_id: Option<Uuid>,
    /// 东门, 北门, …
    pub name: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub name: String,
    /// open, closed
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl Gate {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get("node_name")?,
            community_id: r.get("community_id")?,
            grid_id: r.get("grid_id")?,
            name: r.get("name")?,
            status: r.get("status")?,
            created_at: r.get("created_at")?,
        })
    }
}

const GATE_SELECT: &str = "SELECT g.id, g.node_id, n.name AS node_name, g.community_id, g.grid_id, \
                           g.name, g.status, g.created_at FROM gates g JOIN nodes n ON n.id = g.node_id";

/// Create a gate of a compound or community (needs `ManagePasses` there).
pub fn create_gate(tx: &mut Tx, caller: &Caller, i: &GateInput) -> Result<Gate> {
    let node = i.node_id.ok_or_else(|| bad("value.required", "node_id"))?;
    let name = i.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(bad("value.required", "name"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(bad("value.too_long", "name"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("value.invalid", "name"));
    }
    let reach = caller.reach(Permission::ManagePasses);
    let in_grid = i.grid_id.is_some_and(|g| reach.grids.contains(&g));
    let (level, parent) = node_level(tx.conn(), node)?.ok_or(StoreError::NotFound)?;
    let community = match level.as_str() {
        "community" => node,
        "compound" => parent.ok_or(StoreError::NotFound)?,
        _ => return Err(bad("gate.node_level", "node_id")),
    };
    if !caller.is_system() && !in_grid && !reach.contains_node(tx.conn(), node)? {
        return Err(StoreError::NotFound);
    }
    if let Some(g) = i.grid_id {
        let ok = tx.conn().query_i64(
            "SELECT count(*) FROM grids WHERE id = $1 AND community_id = $2",
            &params![g, community],
        )?;
        if ok == 0 {
            return Err(bad("grid.not_in_community", "grid_id"));
        }
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "gates",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("community_id", community.into()),
            ("grid_id", i.grid_id.into()),
            ("name", name.into()),
            ("status", "open".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_gate(
        tx.conn(),
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
    )
}

fn load_gate(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Gate> {
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), GATE_COLS, &mut params);
    let r = conn
        .query_one(
            &format!("{GATE_SELECT} WHERE g.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Gate::from_row(&r)
}

/// A gate the caller staffs or manages.
pub fn get_gate(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Gate> {
    load_gate(conn, &gate_reach(caller), id)
}

/// Gates within reach, by node and name.
pub fn list_gates(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Gate>> {
    let mut params = Vec::new();
    let pred = gate_reach(caller).predicate(conn.dialect(), GATE_COLS, &mut params);
    conn.query(
        &format!("{GATE_SELECT} WHERE {pred} ORDER BY n.name, g.name, g.id"),
        &params,
    )?
    .iter()
    .map(Gate::from_row)
    .collect()
}

/// Passages in one hour (Asia/Shanghai) at a gate.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HourCount {
    /// 0–23, Asia/Shanghai.
    pub hour: u32,
    pub entered: i64,
    pub left: i64,
    pub refused: i64,
}

/// A gate's counts for today (Asia/Shanghai).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct GateCounts {
    pub gate: Option<Gate>,
    /// Allowed in today.
    pub entered: i64,
    /// Allowed out today.
    pub left: i64,
    pub refused: i64,
    /// Hours with any passage, in order.
    pub hours: Vec<HourCount>,
}

/// Today's counts at a gate the caller sees.
pub fn gate_counts(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<GateCounts> {
    let gate = get_gate(conn, caller, id)?;
    let local = now.with_timezone(&SHANGHAI);
    let midnight = local
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(SHANGHAI).single())
        .map_or(now, |m| m.with_timezone(&Utc));
    let rows = conn.query(
        "SELECT at, direction, outcome FROM gate_records WHERE gate_id = $1 AND at >= $2 AND at <= $3",
        &params![id, midnight, now],
    )?;
    let mut hours: BTreeMap<u32, HourCount> = BTreeMap::new();
    let mut c = GateCounts::default();
    for r in rows {
        let at: DateTime<Utc> = r.get("at")?;
        let hour = at.with_timezone(&SHANGHAI).hour();
        let h = hours.entry(hour).or_insert_with(|| HourCount {
            hour,
            ..HourCount::default()
        });
        let outcome: String = r.get("outcome")?;
        let direction: String = r.get("direction")?;
        match (outcome.as_str(), direction.as_str()) {
            ("allowed", "in") => {
                h.entered += 1;
                c.entered += 1;
            }
            ("allowed", _) => {
                h.left += 1;
                c.left += 1;
            }
            _ => {
                h.refused += 1;
                c.refused += 1;
            }
        }
    }
    c.hours = hours.into_values().collect();
    c.gate = Some(gate);
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Passes.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// The compound (or community) whose households get passes; with `household_id`: where the
    /// pass is for (default: the household's compound, else its community).
    pub node_id: Option<Uuid>,
    /// One household only.
    pub household_id: Option<Uuid>,
    /// The active incident (default: the latest active one for the node or an ancestor).
    pub incident_id: Option<Uuid>,
    /// Valid until (default: until the incident closes).
    pub valid_until: Option<DateTime<Utc>>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub household_id: Uuid,
    pub household_label: String,
    /// valid, revoked
    pub status: String,
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether it lets its household through now (not revoked, incident active, not expired).
    pub valid: bool,
    pub created_at: DateTime<Utc>,
    /// The code, shown back on a single pass only (`XXXXX-XXXXX`).
    pub code: Option<String>,
}

const PASS_SELECT: &str =
    "SELECT s.id, s.incident_id, s.node_id, n.name AS node_name, s.household_id, \
     h.label AS household_label, s.status, s.valid_until, s.created_at, s.code_ct, \
     i.status AS incident_status FROM passes s JOIN nodes n ON n.id = s.node_id \
     JOIN households h ON h.id = s.household_id JOIN incidents i ON i.id = s.incident_id";

impl Pass {
    fn from_row(r: &Row, now: DateTime<Utc>) -> Result<Self> {
        let status: String = r.get("status")?;
        let valid_until: Option<DateTime<Utc>> = r.get("valid_until")?;
        let incident_status: String = r.get("incident_status")?;
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            node_id: r.get("node_id")?,
            node_name: r.get("node_name")?,
            household_id: r.get("household_id")?,
            household_label: r.get("household_label")?,
            valid: status == "valid"
                && incident_status == "active"
                && valid_until.is_none_or(|u| u > now),
            status,
            valid_until,
            created_at: r.get("created_at")?,
            code: None,
        })
    }
}

/// What an issue made.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct IssueReport {
    pub incident_id: Uuid,
    /// The passes made, with their codes (to print for households without phones).
    pub issued: Vec<Pass>,
    /// Households that already held a valid pass of this incident.
    pub skipped: usize,
}

/// Issue passes during an active incident: for every household of a compound or community
/// within reach, or for one household. Refused (`pass.no_active_incident`) outside an active
/// incident for the node or one of its ancestors.
pub fn issue_passes(tx: &mut Tx, caller: &Caller, i: &IssueInput) -> Result<IssueReport> {
    let reach = caller.reach(Permission::ManagePasses);
    if reach.is_empty() {
        return Err(StoreError::NotFound);
    }
    let now = tx.now();
    if i.valid_until.is_some_and(|u| u <= now) {
        return Err(bad("pass.valid_until_past", "valid_until"));
    }
    // The households, within reach.
    let mut params = Vec::new();
    let pred = reach.predicate(tx.dialect(), HH_COLS, &mut params);
    let (node, households) = match (i.household_id, i.node_id) {
        (Some(h), node) => {
            params.push(h.into());
            let n = params.len();
            let row = tx
                .query_one(
                    &format!(
                        "SELECT h.id, h.community_id, h.grid_id FROM households h WHERE h.id = ${n} AND {pred}"
                    ),
                    &params,
                )?
                .ok_or(StoreError::NotFound)?;
            let homes = home_nodes(tx.conn(), h)?;
            let node = match node {
                Some(n) if homes.contains(&n) => n,
                Some(_) => return Err(bad("pass.household_not_in_node", "node_id")),
                None => *homes.last().ok_or(StoreError::NotFound)?,
            };
            (node, vec![row])
        }
        (None, Some(node)) => {
            let (level, _) = node_level(tx.conn(), node)?.ok_or(StoreError::NotFound)?;
            params.push(node.into());
            let n = params.len();
            let sql = match level.as_str() {
                "community" => format!(
                    "SELECT h.id, h.community_id, h.grid_id FROM households h \
                     WHERE h.community_id = ${n} AND {pred} ORDER BY h.label, h.id"
                ),
                "compound" => format!(
                    "SELECT h.id, h.community_id, h.grid_id FROM households h \
                     JOIN dwellings d ON d.id = h.dwelling_id JOIN buildings b ON b.id = d.building_id \
                     WHERE b.node_id = ${n} AND {pred} ORDER BY h.label, h.id"
                ),
                _ => return Err(bad("pass.node_level", "node_id")),
            };
            let rows = tx.query(&sql, &params)?;
            if rows.is_empty() && !caller.is_system() && !reach.contains_node(tx.conn(), node)? {
                return Err(StoreError::NotFound);
            }
            (node, rows)
        }
        (None, None) => return Err(bad("value.required", "node_id")),
    };
    let incident = covering_incident(tx.conn(), node, i.incident_id)?.ok_or_else(|| {
        conflict(
            "pass.no_active_incident",
            "no active incident for this node or above",
        )
    })?;
    let incident_id: Uuid = incident.get("id")?;
    // Households already holding a valid pass of this incident keep it.
    let held: HashSet<Uuid> = tx
        .query(
            "SELECT household_id FROM passes WHERE incident_id = $1 AND status = 'valid'",
            &params![incident_id],
        )?
        .iter()
        .map(|r| r.get("household_id"))
        .collect::<Result<_>>()?;
    let todo: Vec<&Row> = households
        .iter()
        .filter(|r| r.get::<Uuid>("id").is_ok_and(|h| !held.contains(&h)))
        .collect();
    let skipped = households.len() - todo.len();
    if todo.is_empty() && i.household_id.is_some() {
        return Err(conflict("pass.exists", "the household holds a valid pass"));
    }
    let env = tx.env();
    let mut keys = Vec::with_capacity(todo.len());
    let mut ids = Vec::with_capacity(todo.len());
    for _ in &todo {
        let key_id = tx.new_id();
        keys.push(make_data_key(env, key_id)?);
        ids.push((tx.new_id(), key_id));
    }
    tx.add_data_keys(keys)?;
    let actor = tx.ctx().actor;
    let mut rows = Vec::with_capacity(todo.len());
    let mut codes = HashMap::new();
    for (h, (id, key_id)) in todo.iter().zip(&ids) {
        let code = new_code();
        let norm = normalize_code(&code).unwrap_or_default();
        let ct = tx.seal(*key_id, FIELD_CODE, code.as_bytes())?;
        codes.insert(*id, code);
        rows.push(vec![
            Value::Uuid(*id),
            Value::Uuid(*key_id),
            Value::Uuid(incident_id),
            Value::Uuid(node),
            h.raw("community_id")?.clone(),
            h.raw("grid_id")?.clone(),
            h.raw("id")?.clone(),
            Value::Bytes(env.keys.blind(BIDX_CODE, &norm)),
            Value::Bytes(ct),
            i.valid_until.into(),
            "valid".into(),
            actor.into(),
            now.into(),
            now.into(),
        ]);
    }
    tx.insert_many(
        "passes",
        &[
            "id",
            "key_id",
            "incident_id",
            "node_id",
            "community_id",
            "grid_id",
            "household_id",
            "code_bidx",
            "code_ct",
            "valid_until",
            "status",
            "issued_by",
            "created_at",
            "updated_at",
        ],
        &rows,
    )?;
    let mut issued = Vec::with_capacity(ids.len());
    if !ids.is_empty() {
        let list = Value::Json(json!(ids
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()));
        let sql = format!(
            "{PASS_SELECT} WHERE {} ORDER BY h.label, s.id",
            tx.dialect().in_json_list("s.id", 1)
        );
        for r in tx.query(&sql, &[list])? {
            let mut p = Pass::from_row(&r, now)?;
            p.code = codes.remove(&p.id);
            issued.push(p);
        }
        super::log(
            tx,
            incident_id,
            "passes.issued",
            &format!("发放通行证 {} 张", issued.len()),
            (issued.len() == 1).then(|| ("passes", issued[0].id)),
        )?;
    }
    Ok(IssueReport {
        incident_id,
        issued,
        skipped,
    })
}

/// Which passes to list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PassQuery {
    pub incident_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
}

/// Passes within reach (`ManagePasses`), newest first, without codes.
pub fn list_passes(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &PassQuery,
    now: DateTime<Utc>,
) -> Result<Vec<Pass>> {
    let mut params = Vec::new();
    let pred =
        caller
            .reach(Permission::ManagePasses)
            .predicate(conn.dialect(), PASS_COLS, &mut params);
    let mut sql = format!("{PASS_SELECT} WHERE {pred}");
    if let Some(i) = q.incident_id {
        params.push(i.into());
        sql.push_str(&format!(" AND s.incident_id = ${}", params.len()));
    }
    if let Some(h) = q.household_id {
        params.push(h.into());
        sql.push_str(&format!(" AND s.household_id = ${}", params.len()));
    }
    sql.push_str(" ORDER BY s.created_at DESC, h.label, s.id LIMIT 2000");
    conn.query(&sql, &params)?
        .iter()
        .map(|r| Pass::from_row(r, now))
        .collect()
}

fn with_code(conn: &mut dyn Conn, env: &Env, r: &Row, now: DateTime<Utc>) -> Result<Pass> {
    let mut p = Pass::from_row(r, now)?;
    let ct: Vec<u8> = r.get("code_ct")?;
    p.code = Some(env.keys.open_string(conn, FIELD_CODE, &ct)?);
    Ok(p)
}

/// One pass within reach, with its code.
pub fn get_pass(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Pass> {
    let mut params = params![id].to_vec();
    let pred =
        caller
            .reach(Permission::ManagePasses)
            .predicate(conn.dialect(), PASS_COLS, &mut params);
    let r = conn
        .query_one(
            &format!("{PASS_SELECT} WHERE s.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    with_code(conn, env, &r, now)
}

/// Revoke a pass: its code lets no one through any more.
pub fn revoke_pass(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Pass> {
    let now = tx.now();
    let mut params = params![id].to_vec();
    let pred =
        caller
            .reach(Permission::ManagePasses)
            .predicate(tx.dialect(), PASS_COLS, &mut params);
    let r = tx
        .query_one(
            &format!("{PASS_SELECT} WHERE s.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let p = Pass::from_row(&r, now)?;
    if p.status == "revoked" {
        return Err(conflict("pass.revoked", "already revoked"));
    }
    tx.update(
        "passes",
        id,
        &[
            ("status", "revoked".into()),
            ("revoked_by", tx.ctx().actor.into()),
            ("revoked_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    super::log(
        tx,
        p.incident_id,
        "passes.revoked",
        "吊销通行证 1 张",
        Some(("passes", id)),
    )?;
    let r = tx
        .query_one(&format!("{PASS_SELECT} WHERE s.id = $1"), &params![id])?
        .ok_or(StoreError::NotFound)?;
    Pass::from_row(&r, now)
}

/// The household's passes that are valid now, with their codes: for the resident end.
pub fn resident_passes(
    conn: &mut dyn Conn,
    env: &Env,
    household: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Pass>> {
    let Some(h) = household else {
        return Ok(Vec::new());
    };
    let rows = conn.query(
        &format!(
            "{PASS_SELECT} WHERE s.household_id = $1 AND s.status = 'valid' AND i.status = 'active' \
             ORDER BY s.created_at DESC"
        ),
        &params![h],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let p = with_code(conn, env, r, now)?;
        if p.valid {
            out.push(p);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Gate check-in.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// The pass code shown on the resident's phone or printed (`XXXXX-XXXXX`).
    pub code: Option<String>,
    /// Or an ID-card number, for people without a phone.
    pub id_number: Option<String>,
    /// `in` or `out`.
    pub direction: Option<String>,
}

/// The answer at the gate.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// 放行 (true) / 不予放行 (false).
    pub allowed: bool,
    /// Why not: an error code (`pass.unknown`, `pass.revoked`, `pass.expired`,
    /// `pass.wrong_place`, `pass.none`, `gate.person_unknown`).
    pub reason: Option<String>,
    pub record_id: Uuid,
    pub gate_id: Uuid,
    pub direction: String,
    /// `code` or `id_card`.
    pub method: String,
    pub at: DateTime<Utc>,
    /// Masked names of the household members (by code) or of the person (by ID card).
    pub names: Vec<String>,
}

/// What was found for the typed code or number.
struct Subject {
    household: Option<Uuid>,
    person: Option<Uuid>,
    doc: Option<Document>,
    names: Vec<String>,
    refused: Option<&'static str>,
}

fn masked_members(conn: &mut dyn Conn, household: Uuid) -> Result<Vec<String>> {
    conn.query(
        "SELECT name FROM people WHERE household_id = $1 ORDER BY name",
        &params![household],
    )?
    .iter()
    .map(|r| Ok(mask_name(&r.get::<String>("name")?)))
    .collect()
}

/// Whether `pass` (a row of `passes`) lets its household through `gate_node` now: not revoked,
/// its incident active and covering the gate's place, not past `valid_until`, and the household
/// living under the gate's compound or community.
fn pass_refusal(
    conn: &mut dyn Conn,
    pass: &Row,
    gate_node: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>> {
    let status: String = pass.get("status")?;
    if status == "revoked" {
        return Ok(Some("pass.revoked"));
    }
    let until: Option<DateTime<Utc>> = pass.get("valid_until")?;
    let inc_status: String = pass.get("incident_status")?;
    if inc_status != "active" || until.is_some_and(|u| u <= now) {
        return Ok(Some("pass.expired"));
    }
    let household: Uuid = pass.get("household_id")?;
    if !home_nodes(conn, household)?.contains(&gate_node)
        || covering_incident(conn, gate_node, Some(pass.get("incident_id")?))?.is_none()
    {
        return Ok(Some("pass.wrong_place"));
    }
    Ok(None)
}

/// Record a passage at a gate (needs `CheckGates` or `ManagePasses` for the gate), by pass code
/// or by ID-card number. Every attempt is recorded, refused ones with their reason; outside an
/// active incident for the gate's node the gate takes no one (`gate.no_active_incident`).
pub fn check_in(
    tx: &mut Tx,
    caller: &Caller,
    gate_id: Uuid,
    i: &CheckInput,
) -> Result<CheckResult> {
    let gate = load_gate(tx.conn(), &gate_reach(caller), gate_id)?;
    let direction = match i.direction.as_deref().map(str::trim) {
        Some("in") | None | Some("") => "in",
        Some("out") => "out",
        Some(_) => return Err(bad("value.invalid", "direction")),
    };
    let code = i.code.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let id_number = i
        .id_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let doc = match id_number {
        Some(n) => {
            Some(Document::parse(DocType::MainlandId, n).map_err(|e| bad(e.code(), "id_number"))?)
        }
        None => None,
    };
    let method = match (code, &doc) {
        (Some(_), None) => "code",
        (None, Some(_)) => "id_card",
        (None, None) => return Err(bad("gate.code_or_id_required", "code")),
        (Some(_), Some(_)) => return Err(bad("gate.code_or_id_only_one", "id_number")),
    };
    if gate.status != "open" {
        return Err(conflict("gate.closed", "the gate is closed"));
    }
    let incident = covering_incident(tx.conn(), gate.node_id, None)?.ok_or_else(|| {
        conflict(
            "gate.no_active_incident",
            "no active incident for this gate's place",
        )
    })?;
    let incident_id: Uuid = incident.get("id")?;
    let now = tx.now();
    let env = tx.env();
    let subject = match (code, doc) {
        (Some(c), _) => {
            let found = match normalize_code(c) {
                Some(norm) => tx.query_one(
                    &format!("{PASS_SELECT} WHERE s.code_bidx = $1"),
                    &params![env.keys.blind(BIDX_CODE, &norm)],
                )?,
                None => None,
            };
            match found {
                None => Subject {
                    household: None,
                    person: None,
                    doc: None,
                    names: Vec::new(),
                    refused: Some("pass.unknown"),
                },
                Some(p) => {
                    let h: Uuid = p.get("household_id")?;
                    Subject {
                        household: Some(h),
                        person: None,
                        doc: None,
                        names: masked_members(tx.conn(), h)?,
                        refused: pass_refusal(tx.conn(), &p, gate.node_id, now)?,
                    }
                }
            }
        }
        (None, Some(d)) => {
            let person = tx.query_one(
                "SELECT id, name, household_id FROM people WHERE doc_bidx = $1",
                &params![env.keys.blind(BIDX_DOCUMENT, &d.normalized())],
            )?;
            match person {
                None => Subject {
                    household: None,
                    person: None,
                    doc: Some(d),
                    names: Vec::new(),
                    refused: Some("gate.person_unknown"),
                },
                Some(p) => {
                    let household: Option<Uuid> = p.get("household_id")?;
                    let names = vec![mask_name(&p.get::<String>("name")?)];
                    // Any pass of the household that lets it through; else why the newest
                    // does not.
                    let mut refused = Some("pass.none");
                    if let Some(h) = household {
                        let passes = tx.query(
                            &format!(
                                "{PASS_SELECT} WHERE s.household_id = $1 \
                                 ORDER BY s.created_at DESC, s.id DESC"
                            ),
                            &params![h],
                        )?;
                        let mut first = None;
                        for pass in &passes {
                            match pass_refusal(tx.conn(), pass, gate.node_id, now)? {
                                None => {
                                    first = None;
                                    refused = None;
                                    break;
                                }
                                Some(r) => {
                                    first.get_or_insert(r);
                                }
                            }
                        }
                        if let Some(r) = first {
                            refused = Some(r);
                        }
                    }
                    Subject {
                        household,
                        person: Some(p.get("id")?),
                        doc: Some(d),
                        names,
                        refused,
                    }
                }
            }
        }
        (None, None) => return Err(bad("gate.code_or_id_required", "code")),
    };
    // The record, its subject sealed under its own key.
    let key_id = tx.new_data_key()?;
    let sealed = json!({
        "household_id": subject.household,
        "person_id": subject.person,
        "doc_number": subject.doc.as_ref().map(Document::number),
    });
    let subject_ct = tx.seal(key_id, FIELD_SUBJECT, sealed.to_string().as_bytes())?;
    let id = tx.new_id();
    let keys = &env.keys;
    let hh_bidx = subject
        .household
        .map(|h| keys.blind(BIDX_HOUSEHOLD, &h.to_string()));
    let person_bidx = subject
        .person
        .map(|p| keys.blind(BIDX_PERSON, &p.to_string()));
    let doc_bidx = subject
        .doc
        .as_ref()
        .map(|d| keys.blind(BIDX_DOCUMENT, &d.normalized()));
    let outcome = if subject.refused.is_none() {
        "allowed"
    } else {
        "refused"
    };
    tx.insert(
        "gate_records",
        &[
            ("id", id.into()),
            ("key_id", key_id.into()),
            ("gate_id", gate.id.into()),
            ("node_id", gate.node_id.into()),
            ("community_id", gate.community_id.into()),
            ("grid_id", gate.grid_id.into()),
            ("incident_id", incident_id.into()),
            ("at", now.into()),
            ("direction", direction.into()),
            ("method", method.into()),
            ("outcome", outcome.into()),
            ("reason", subject.refused.into()),
            ("subject_ct", subject_ct.into()),
            ("household_bidx", hh_bidx.into()),
            ("person_bidx", person_bidx.into()),
            ("doc_bidx", doc_bidx.into()),
            ("recorded_by", tx.ctx().actor.into()),
            ("created_at", now.into()),
        ],
    )?;
    Ok(CheckResult {
        allowed: subject.refused.is_none(),
        reason: subject.refused.map(str::to_owned),
        record_id: id,
        gate_id: gate.id,
        direction: direction.to_owned(),
        method: method.to_owned(),
        at: now,
        names: subject.names,
    })
}

// ---------------------------------------------------------------------------------------------
// Contact look-up.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// The confirmed case, by person id …
    pub person_id: Option<Uuid>,
    /// … or by ID-card number.
    pub id_number: Option<String>,
    /// Minutes either side of each of the case's passages (1–1440, default 30).
    pub window_minutes: Option<i64>,
}

/// Someone who passed a gate near one of the case's passages (masked).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub gate_id: Uuid,
    pub gate_name: String,
    /// Their passage nearest to the case's.
    pub at: DateTime<Utc>,
    /// Minutes between that passage and the case's.
    pub minutes_apart: i64,
    /// Masked names (a household passing by code: its members).
    pub names: Vec<String>,
    /// Masked phones.
    pub phones: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ContactReport {
    pub incident_id: Uuid,
    pub window_minutes: i64,
    /// The case's own passages found.
    pub case_passages: usize,
    pub contacts: Vec<Contact>,
}

/// A keyed hash of the case for the audit log (no clear identifier there).
pub fn case_hash(env: &Env, i: &ContactInput) -> Option<String> {
    let key = match (&i.person_id, i.id_number.as_deref().map(str::trim)) {
        (Some(p), _) => format!("person:{p}"),
        (None, Some(n)) if !n.is_empty() => format!(
            "doc:{}",
            Document::parse(DocType::MainlandId, n)
                .map_or_else(|_| n.to_uppercase(), |d| d.normalized())
        ),
        _ => return None,
    };
    Some(hex::encode(
        &env.keys.blind("audit.contact_case", &key)[..12],
    ))
}

/// The incident `id` if the caller may look up contacts in it: its node inside the caller's
/// `ContactLookup` reach, or above one of the caller's nodes (an activation for a street seen
/// by its community staff).
fn lookup_incident(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Row> {
    if reach.is_empty() {
        return Err(StoreError::NotFound);
    }
    let r = conn
        .query_one(
            "SELECT id, node_id, status, activated_at, created_at FROM incidents WHERE id = $1",
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    let node: Uuid = r.get("node_id")?;
    if reach.contains_node(conn, node)? {
        return Ok(r);
    }
    for n in &reach.nodes {
        let above = conn.query_i64(
            &format!("{UP}SELECT count(*) FROM up WHERE id = $2"),
            &params![*n, node],
        )?;
        if above > 0 {
            return Ok(r);
        }
    }
    Err(StoreError::NotFound)
}

/// Who passed the same gates within `window_minutes` of the case's passages in this incident.
/// Only while the incident is active (`contact.incident_not_active`), only for `ContactLookup`;
/// gates limited to the incident's area and the caller's reach. Results masked.
pub fn contacts(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    incident_id: Uuid,
    i: &ContactInput,
) -> Result<ContactReport> {
    let reach = caller.reach(Permission::ContactLookup);
    let inc = lookup_incident(conn, &reach, incident_id)?;
    if inc.get::<String>("status")? != "active" {
        return Err(conflict(
            "contact.incident_not_active",
            "contact look-up only during an active incident",
        ));
    }
    let window = i.window_minutes.unwrap_or(WINDOW_DEFAULT);
    if !(1..=WINDOW_MAX).contains(&window) {
        return Err(bad("contact.window_range", "window_minutes"));
    }
    let id_number = i
        .id_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    // The case's blind indexes.
    let mut case: Vec<(&str, Vec<u8>)> = Vec::new();
    let person = match (i.person_id, id_number) {
        (Some(_), Some(_)) => return Err(bad("contact.case_only_one", "id_number")),
        (None, None) => return Err(bad("contact.case_required", "person_id")),
        (Some(p), None) => Some(p),
        (None, Some(n)) => {
            let d =
                Document::parse(DocType::MainlandId, n).map_err(|e| bad(e.code(), "id_number"))?;
            let bidx = env.keys.blind(BIDX_DOCUMENT, &d.normalized());
            let p = conn
                .query_one(
                    "SELECT id FROM people WHERE doc_bidx = $1",
                    &params![bidx.clone()],
                )?
                .map(|r| r.get::<Uuid>("id"))
                .transpose()?;
            case.push(("doc_bidx", bidx));
            p
        }
    };
    if let Some(p) = person {
        let row = conn
            .query_one(
                "SELECT community_id, household_id, doc_bidx FROM people WHERE id = $1",
                &params![p],
            )?
            .ok_or_else(|| bad("contact.case_unknown", "person_id"))?;
        let community: Uuid = row.get("community_id")?;
        if !reach.contains_node(conn, community)? && i.person_id.is_some() {
            return Err(bad("contact.case_unknown", "person_id"));
        }
        case.push(("person_bidx", env.keys.blind(BIDX_PERSON, &p.to_string())));
        if let Some(h) = row.get::<Option<Uuid>>("household_id")? {
            case.push((
                "household_bidx",
                env.keys.blind(BIDX_HOUSEHOLD, &h.to_string()),
            ));
        }
        if let Some(d) = row.get::<Option<Vec<u8>>>("doc_bidx")? {
            if !case.iter().any(|(c, _)| *c == "doc_bidx") {
                case.push(("doc_bidx", d));
            }
        }
    }
    // Gates of the incident's area within the caller's reach.
    let since: DateTime<Utc> = inc
        .get::<Option<DateTime<Utc>>>("activated_at")?
        .map_or_else(|| inc.get("created_at"), Ok)?;
    let inc_node: Uuid = inc.get("node_id")?;
    let mut params = vec![Value::Uuid(inc_node), Value::Time(since)];
    let pred = reach.predicate(conn.dialect(), GATE_COLS, &mut params);
    let mut matches = Vec::new();
    for (col, b) in &case {
        params.push(Value::Bytes(b.clone()));
        matches.push(format!("r.{col} = ${}", params.len()));
    }
    let case_rows = conn.query(
        &format!(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = $1 UNION ALL \
             SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) \
             SELECT r.id, r.gate_id, r.at, g.name AS gate_name FROM gate_records r JOIN gates g ON g.id = r.gate_id \
             WHERE r.outcome = 'allowed' AND r.at >= $2 AND g.node_id IN (SELECT id FROM sub) AND {pred} \
             AND ({}) ORDER BY r.at",
            matches.join(" OR ")
        ),
        &params,
    )?;
    let case_ids: HashSet<Uuid> = case_rows
        .iter()
        .map(|r| r.get("id"))
        .collect::<Result<_>>()?;
    let case_bidx: HashSet<Vec<u8>> = case.iter().map(|(_, b)| b.clone()).collect();
    // Nearby passages, grouped by who passed (their first blind index).
    let w = Duration::minutes(window);
    let mut by_subject: BTreeMap<Vec<u8>, (i64, Row, String)> = BTreeMap::new();
    for c in &case_rows {
        let at: DateTime<Utc> = c.get("at")?;
        let gate: Uuid = c.get("gate_id")?;
        let near = conn.query(
            "SELECT id, gate_id, at, subject_ct, household_bidx, person_bidx, doc_bidx FROM gate_records \
             WHERE gate_id = $1 AND outcome = 'allowed' AND at >= $2 AND at <= $3",
            &params![gate, at - w, at + w],
        )?;
        for r in near {
            let id: Uuid = r.get("id")?;
            if case_ids.contains(&id) {
                continue;
            }
            let bidxs: Vec<Vec<u8>> = ["household_bidx", "person_bidx", "doc_bidx"]
                .iter()
                .filter_map(|c| r.get::<Option<Vec<u8>>>(c).ok().flatten())
                .collect();
            if bidxs.iter().any(|b| case_bidx.contains(b)) {
                continue;
            }
            let Some(key) = bidxs.first().cloned() else {
                continue;
            };
            let their: DateTime<Utc> = r.get("at")?;
            let apart = (their - at).num_minutes().abs();
            let gate_name: String = c.get("gate_name")?;
            match by_subject.get(&key) {
                Some((a, _, _)) if *a <= apart => {}
                _ => {
                    by_subject.insert(key, (apart, r, gate_name));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(by_subject.len());
    for (_, (apart, r, gate_name)) in by_subject {
        let ct: Vec<u8> = r.get("subject_ct")?;
        let subject: serde_json::Value =
            serde_json::from_slice(&env.keys.open(conn, FIELD_SUBJECT, &ct)?)
                .map_err(|e| StoreError::Backend(format!("gate record subject: {e}")))?;
        let uuid = |k: &str| subject[k].as_str().and_then(|s| Uuid::parse_str(s).ok());
        let people = match (uuid("person_id"), uuid("household_id")) {
            (Some(p), _) => conn.query(
                "SELECT name, phone_mask FROM people WHERE id = $1",
                &params![p],
            )?,
            (None, Some(h)) => conn.query(
                "SELECT name, phone_mask FROM people WHERE household_id = $1 ORDER BY name",
                &params![h],
            )?,
            (None, None) => Vec::new(),
        };
        let mut names = Vec::new();
        let mut phones = Vec::new();
        for p in &people {
            names.push(mask_name(&p.get::<String>("name")?));
            if let Some(m) = p.get::<Option<String>>("phone_mask")? {
                phones.push(m);
            }
        }
        out.push(Contact {
            gate_id: r.get("gate_id")?,
            gate_name,
            at: r.get("at")?,
            minutes_apart: apart,
            names,
            phones,
        });
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.gate_id.cmp(&b.gate_id)));
    Ok(ContactReport {
        incident_id,
        window_minutes: window,
        case_passages: case_rows.len(),
        contacts: out,
    })
}

// ---------------------------------------------------------------------------------------------
// What the pages offer.

/// A place that can have gates and passes (a community or compound).
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    pub id: Uuid,
    pub name: String,
    /// community, compound
    pub level: String,
}

/// Communities and compounds where the caller manages passes (node grants), by name.
pub fn gate_places(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Place>> {
    let mut params = Vec::new();
    let pred = caller.reach(Permission::ManagePasses).predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT n.id, n.name, n.level FROM nodes n WHERE n.level IN ('community', 'compound') \
             AND n.status = 'active' AND {pred} ORDER BY n.level, n.name, n.id LIMIT 500"
        ),
        &params,
    )?
    .iter()
    .map(|r| {
        Ok(Place {
            id: r.get("id")?,
            name: r.get("name")?,
            level: r.get("level")?,
        })
    })
    .collect()
}

/// An incident as the contact look-up page names it.
#[derive(Debug, Clone, Serialize)]
pub struct LookupIncident {
    pub id: Uuid,
    pub title: String,
    pub node_name: String,
    pub status: String,
    pub exercise: bool,
}

fn lookup_incident_from(r: &Row) -> Result<LookupIncident> {
    Ok(LookupIncident {
        id: r.get("id")?,
        title: r.get("title")?,
        node_name: r.get("node_name")?,
        status: r.get("status")?,
        exercise: r.get("exercise")?,
    })
}

const LOOKUP_SELECT: &str = "SELECT i.id, i.title, n.name AS node_name, i.status, i.exercise \
                             FROM incidents i JOIN nodes n ON n.id = i.node_id";

/// One incident the caller may look up contacts in (any status: the page says when it is not
/// active).
pub fn contact_incident(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<LookupIncident> {
    lookup_incident(conn, &caller.reach(Permission::ContactLookup), id)?;
    let r = conn
        .query_one(&format!("{LOOKUP_SELECT} WHERE i.id = $1"), &params![id])?
        .ok_or(StoreError::NotFound)?;
    lookup_incident_from(&r)
}

/// Active incidents the caller may look up contacts in, newest first.
pub fn contact_incidents(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<LookupIncident>> {
    let reach = caller.reach(Permission::ContactLookup);
    if reach.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn.query(
        &format!("{LOOKUP_SELECT} WHERE i.status = 'active' ORDER BY i.activated_at DESC, i.id LIMIT 200"),
        &[],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        if lookup_incident(conn, &reach, r.get("id")?).is_ok() {
            out.push(lookup_incident_from(r)?);
        }
    }
    Ok(out)
}
