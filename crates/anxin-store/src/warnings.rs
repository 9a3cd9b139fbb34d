//! Warnings, their targets and per-recipient deliveries.
//!
//! A warning is a record (logged through [`Tx`]); every version is its own row. The workflow
//! (`anxin_domain::warning`) moves a row draft → approved → issued; an update of an issued
//! warning is a new issued row (version + 1, `refers_to` the original, `change_summary` saying
//! what changed) and the old row becomes `updated`; cancelling an issued warning is likewise a new
//! row in status `cancelled` (the cancellation message) and the old row is `cancelled`.
//!
//! Issuing a version targets residents ([`target`]): people whose building (their household's
//! dwelling's building) lies in the area's polygons or circles, or who live under one of the
//! area's nodes, limited to the subtree of the warning's node. Vulnerable residents come first
//! (priority 0), their helpers are recipients too. Recipients, deliveries, acknowledgements and
//! in-person tasks are operational tables, written here with plain statements (not logged): they
//! are many and carry no decision. One delivery per (version, person, channel): issuing twice
//! sends nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use anxin_domain::area::{Circle, PointIndex};
use anxin_domain::geo::{self, Crs, LonLat};
use anxin_domain::roles::Permission;
use anxin_domain::warning::{
    next_status, step_permission, StepRefused, WarningAction, WarningArea, WarningCategory,
    WarningLevel, WarningStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::maps::Geometry;
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Env;

const HEADLINE_MAX: usize = 140;
const TEXT_MAX: usize = 2_000;
/// The longest a warning may stay in force.
const MAX_DURATION_DAYS: i64 = 30;

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

// ---------------------------------------------------------------------------------------------
// Input.

/// A warning as it arrives (create a draft, or edit one: absent fields are kept).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WarningInput {
    /// The issuing node (a community or above); the warning reaches no one outside its subtree.
    pub node_id: Option<Uuid>,
    /// For a grid worker's draft: the grid it is drafted in.
    pub grid_id: Option<Uuid>,
    /// `blue`, `yellow`, `orange` or `red`.
    pub level: Option<String>,
    /// `flood`, `rainstorm`, `typhoon`, `earthquake`, `geological`, `fire`, `gas`, `heat`,
    /// `cold`, `public_health` or `other`.
    pub category: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    /// Default: now.
    pub effective_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `{"polygons": [[[lon, lat], …]], "circles": [{"lon", "lat", "radius_m"}], "nodes": [id]}`,
    /// positions in `crs`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub area: Option<Json>,
    /// The system the area was drawn in: `wgs84` (default), `cgcs2000`, `gcj02`, `bd09`.
    pub crs: Option<String>,
}

/// A validated warning, ready to store (area in WGS84).
#[derive(Debug, Clone, PartialEq)]
pub struct NewWarning {
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub level: WarningLevel,
    pub category: WarningCategory,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub effective_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub area: WarningArea,
    pub area_crs: Crs,
}

fn text(field: &str, raw: Option<&str>, max: usize, required: bool) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return if required {
            Err(bad("value.required", field))
        } else {
            Ok(String::new())
        };
    }
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

fn parse_enum<T: std::str::FromStr>(field: &str, raw: Option<&str>) -> Result<T> {
    let s = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("value.required", field))?;
    s.parse::<T>().map_err(|_| bad("value.invalid", field))
}

/// Parse an area given in `crs` into WGS84, checking every part.
pub fn parse_area(raw: &Json, crs: Crs) -> Result<WarningArea> {
    let obj = raw
        .as_object()
        .ok_or_else(|| bad("value.invalid", "area"))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "polygons" | "circles" | "nodes"))
    {
        return Err(bad("value.unknown_field", format!("area.{k}")));
    }
    let mut area = WarningArea::default();
    if let Some(ps) = obj.get("polygons") {
        let ps = ps
            .as_array()
            .ok_or_else(|| bad("value.invalid", "area.polygons"))?;
        for (i, ring) in ps.iter().enumerate() {
            let g = Geometry::parse(&json!({"type": "Polygon", "coordinates": [ring]}), crs)
                .map_err(|e| match e {
                    StoreError::Invalid { code, field } => StoreError::Invalid {
                        code,
                        field: field.replacen(
                            "geometry.coordinates[0]",
                            &format!("area.polygons[{i}]"),
                            1,
                        ),
                    },
                    other => other,
                })?;
            match g {
                Geometry::Polygon(r) => area
                    .polygons
                    .push(r.iter().map(|p| [p.lon(), p.lat()]).collect()),
                Geometry::Point(_) => {
                    return Err(bad("geometry.invalid", format!("area.polygons[{i}]")))
                }
            }
        }
    }
    if let Some(cs) = obj.get("circles") {
        let cs = cs
            .as_array()
            .ok_or_else(|| bad("value.invalid", "area.circles"))?;
        for (i, c) in cs.iter().enumerate() {
            let f = format!("area.circles[{i}]");
            let num = |k: &str| {
                c.get(k)
                    .and_then(Json::as_f64)
                    .ok_or_else(|| bad("value.invalid", format!("{f}.{k}")))
            };
            let p = LonLat::new(num("lon")?, num("lat")?)
                .map_err(|_| bad("geometry.invalid", f.clone()))?;
            let w = geo::to_wgs84(crs, p);
            if !geo::in_china_box(w) {
                return Err(bad("geometry.out_of_bounds", f));
            }
            area.circles.push(Circle {
                lon: w.lon(),
                lat: w.lat(),
                radius_m: num("radius_m")?,
            });
        }
    }
    if let Some(ns) = obj.get("nodes") {
        let ns = ns
            .as_array()
            .ok_or_else(|| bad("value.invalid", "area.nodes"))?;
        for (i, n) in ns.iter().enumerate() {
            let id = n
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| bad("value.invalid", format!("area.nodes[{i}]")))?;
            if !area.nodes.contains(&id) {
                area.nodes.push(id);
            }
        }
    }
    area.validate().map_err(|e| StoreError::Invalid {
        code: e.code,
        field: e.field,
    })?;
    Ok(area)
}

fn parse_crs(raw: Option<&str>) -> Result<Crs> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Crs::Wgs84),
        Some(s) => s.parse::<Crs>().map_err(|_| bad("value.invalid", "crs")),
    }
}

fn check_times(effective: DateTime<Utc>, expires: DateTime<Utc>) -> Result<()> {
    if expires <= effective {
        return Err(bad("warning.expires_before_effective", "expires_at"));
    }
    if expires - effective > chrono::Duration::days(MAX_DURATION_DAYS) {
        return Err(bad("warning.too_long", "expires_at"));
    }
    Ok(())
}

impl NewWarning {
    /// Validate a new warning; `now` is the default effective time.
    pub fn parse(raw: WarningInput, now: DateTime<Utc>) -> Result<Self> {
        let node_id = raw
            .node_id
            .ok_or_else(|| bad("value.required", "node_id"))?;
        let level = parse_enum::<WarningLevel>("level", raw.level.as_deref())?;
        let category = parse_enum::<WarningCategory>("category", raw.category.as_deref())?;
        let headline = text("headline", raw.headline.as_deref(), HEADLINE_MAX, true)?;
        let description = text("description", raw.description.as_deref(), TEXT_MAX, true)?;
        let instruction = text("instruction", raw.instruction.as_deref(), TEXT_MAX, false)?;
        let effective_at = raw.effective_at.unwrap_or(now);
        let expires_at = raw
            .expires_at
            .ok_or_else(|| bad("value.required", "expires_at"))?;
        check_times(effective_at, expires_at)?;
        let area_crs = parse_crs(raw.crs.as_deref())?;
        let area = parse_area(
            raw.area
                .as_ref()
                .ok_or_else(|| bad("value.required", "area"))?,
            area_crs,
        )?;
        Ok(Self {
            node_id,
            grid_id: raw.grid_id,
            level,
            category,
            headline,
            description,
            instruction,
            effective_at,
            expires_at,
            area,
            area_crs,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Records.

/// A stored warning version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Warning {
    pub id: Uuid,
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub level: String,
    pub level_zh: String,
    pub category: String,
    pub category_zh: String,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub effective_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// WGS84: `{"polygons", "circles", "nodes"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub area: Json,
    /// The system the area was drawn in.
    pub area_crs: String,
    pub status: String,
    pub version: i64,
    /// The original (first) version, for updates and cancellations.
    pub refers_to: Option<Uuid>,
    pub change_summary: Option<String>,
    /// `local` or `cap_import`.
    pub source: String,
    pub sender: String,
    pub cap_identifier: String,
    /// For an imported alert: how its sender was judged (`signature_valid`, `sender_listed`, or
    /// why it is untrusted, e.g. `signature_digest_mismatch`); `None` for local warnings.
    pub trust: Option<String>,
    pub created_by: Option<Uuid>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTime<Utc>>,
    pub issued_by: Option<Uuid>,
    pub issued_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<Uuid>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Warning {
    pub fn from_row(r: &Row) -> Result<Self> {
        let level: String = r.get("level")?;
        let category: String = r.get("category")?;
        let area: String = r.get("area")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            grid_id: r.get("grid_id")?,
            level_zh: level
                .parse::<WarningLevel>()
                .map(|l| l.zh().to_owned())
                .unwrap_or_default(),
            level,
            category_zh: category
                .parse::<WarningCategory>()
                .map(|l| l.zh().to_owned())
                .unwrap_or_default(),
            category,
            headline: r.get("headline")?,
            description: r.get("description")?,
            instruction: r.get("instruction")?,
            effective_at: r.get("effective_at")?,
            expires_at: r.get("expires_at")?,
            area: serde_json::from_str(&area)
                .map_err(|e| StoreError::Backend(format!("stored area: {e}")))?,
            area_crs: r.get("area_crs")?,
            status: r.get("status")?,
            version: r.get("version")?,
            refers_to: r.get("refers_to")?,
            change_summary: r.get("change_summary")?,
            source: r.get("source")?,
            sender: r.get("sender")?,
            cap_identifier: r.get("cap_identifier")?,
            trust: r.get("trust")?,
            created_by: r.get("created_by")?,
            approved_by: r.get("approved_by")?,
            approved_at: r.get("approved_at")?,
            issued_by: r.get("issued_by")?,
            issued_at: r.get("issued_at")?,
            cancelled_by: r.get("cancelled_by")?,
            cancelled_at: r.get("cancelled_at")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    pub fn status(&self) -> WarningStatus {
        self.status.parse().unwrap_or(WarningStatus::Draft)
    }
    pub fn level(&self) -> WarningLevel {
        self.level.parse().unwrap_or(WarningLevel::Blue)
    }
    pub fn category(&self) -> WarningCategory {
        self.category.parse().unwrap_or(WarningCategory::Other)
    }
    /// The original version's id (this one's, for an original).
    pub fn original(&self) -> Uuid {
        self.refers_to.unwrap_or(self.id)
    }
    pub fn area(&self) -> Result<WarningArea> {
        serde_json::from_value(self.area.clone())
            .map_err(|e| StoreError::Backend(format!("stored area: {e}")))
    }
}

pub const SCOPE: ScopeCols<'static> = ScopeCols {
    node: "w.node_id",
    grid: Some("w.grid_id"),
    household: None,
};

/// Who may see warnings: everyone who works on them.
fn read_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::DraftWarning);
    r.merge(caller.reach(Permission::ApproveWarning));
    r.merge(caller.reach(Permission::IssueWarning));
    r
}

fn load(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Warning> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT w.* FROM warnings w WHERE w.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Warning::from_row(&row)
}

pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Warning> {
    load(conn, &read_reach(caller), id)
}

/// A warning by id with no scope (jobs, the resident side after its own check).
pub fn get_unscoped(conn: &mut dyn Conn, id: Uuid) -> Result<Warning> {
    load(
        conn,
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
    )
}

/// Check that the caller holds the permission for `action` where `w` lives. Seeing a warning but
/// lacking the step's permission is `Forbidden`; not seeing it is `NotFound`.
fn check_step(
    conn: &mut dyn Conn,
    caller: &Caller,
    w: &Warning,
    action: WarningAction,
) -> Result<WarningStatus> {
    let from = w.status();
    let perm = step_permission(from, action);
    let reach = caller.reach(perm);
    let mut params = vec![Value::from(w.id)];
    let pred = reach.predicate(conn.dialect(), SCOPE, &mut params);
    let ok = conn.query_i64(
        &format!("SELECT count(*) FROM warnings w WHERE w.id = $1 AND {pred}"),
        &params,
    )? > 0;
    if !ok {
        return Err(StoreError::Forbidden("warning.not_allowed"));
    }
    next_status(from, action).map_err(|StepRefused { .. }| StoreError::Conflict {
        code: StepRefused::CODE,
        detail: format!("{} cannot {}", from.as_str(), action.as_str()),
    })
}

/// Whether the caller may draft at `node_id` (node grant over it) or in `grid_id` (grid grant,
/// the grid in that community).
fn check_draft_place(
    conn: &mut dyn Conn,
    caller: &Caller,
    node_id: Uuid,
    grid_id: Option<Uuid>,
) -> Result<()> {
    let reach = caller.reach(Permission::DraftWarning);
    let active = conn.query_i64(
        "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
        &params![node_id],
    )? > 0;
    if !active {
        return Err(bad("record.reference_invalid", "node_id"));
    }
    if let Some(g) = grid_id {
        let in_node = conn.query_i64(
            "SELECT count(*) FROM grids WHERE id = $1 AND community_id = $2",
            &params![g, node_id],
        )? > 0;
        if !in_node {
            return Err(bad("record.reference_invalid", "grid_id"));
        }
        if reach.all || reach.grids.contains(&g) {
            return Ok(());
        }
    }
    if reach.contains_node(conn, node_id)? {
        return Ok(());
    }
    Err(bad("record.reference_invalid", "node_id"))
}

fn area_text(a: &WarningArea) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "{}".into())
}

/// Where a draft comes from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `local` or `cap_import`.
    pub source: &'static str,
    pub sender: String,
    /// `None`: made up from the id.
    pub cap_identifier: Option<String>,
}

impl Origin {
    pub fn local(sender: &str) -> Self {
        Self {
            source: "local",
            sender: sender.to_owned(),
            cap_identifier: None,
        }
    }
}

/// Create a draft. `sender` is this platform's CAP sender name.
pub fn create_draft(
    tx: &mut Tx,
    caller: &Caller,
    new: &NewWarning,
    origin: &Origin,
) -> Result<Warning> {
    check_draft_place(tx.conn(), caller, new.node_id, new.grid_id)?;
    check_area_nodes(tx.conn(), new.node_id, &new.area)?;
    let id = tx.new_id();
    let now = tx.now();
    let ident = origin
        .cap_identifier
        .clone()
        .unwrap_or_else(|| format!("anxin-{id}"));
    let row = tx.insert(
        "warnings",
        &[
            ("id", id.into()),
            ("node_id", new.node_id.into()),
            ("grid_id", new.grid_id.into()),
            ("level", new.level.as_str().into()),
            ("category", new.category.as_str().into()),
            ("headline", new.headline.clone().into()),
            ("description", new.description.clone().into()),
            ("instruction", new.instruction.clone().into()),
            ("effective_at", new.effective_at.into()),
            ("expires_at", new.expires_at.into()),
            ("area", area_text(&new.area).into()),
            ("area_crs", new.area_crs.as_str().into()),
            ("status", WarningStatus::Draft.as_str().into()),
            ("version", 1i64.into()),
            ("source", origin.source.into()),
            ("sender", origin.sender.clone().into()),
            ("cap_identifier", ident.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Warning::from_row(&row)
}

/// The nodes an area names must be inside the warning's node's subtree.
fn check_area_nodes(conn: &mut dyn Conn, node_id: Uuid, area: &WarningArea) -> Result<()> {
    let sub = Reach {
        nodes: vec![node_id],
        ..Reach::default()
    };
    for (i, n) in area.nodes.iter().enumerate() {
        if !sub.contains_node(conn, *n)? {
            return Err(bad("record.reference_invalid", format!("area.nodes[{i}]")));
        }
    }
    Ok(())
}

/// For the integrator (`POST /api/v1/alarms/{id}/warning`): validate `fields` and store a local
/// draft in one step.
pub fn draft_from(
    tx: &mut Tx,
    caller: &Caller,
    fields: WarningInput,
    sender: &str,
) -> Result<Warning> {
    let new = NewWarning::parse(fields, tx.now())?;
    create_draft(tx, caller, &new, &Origin::local(sender))
}

/// Edit a draft: the fields given replace the stored ones.
pub fn edit_draft(tx: &mut Tx, caller: &Caller, id: Uuid, patch: WarningInput) -> Result<Warning> {
    let w = load(tx.conn(), &read_reach(caller), id)?;
    check_step(tx.conn(), caller, &w, WarningAction::Edit)?;
    if patch.node_id.is_some_and(|n| n != w.node_id) || patch.grid_id.is_some() {
        return Err(bad("warning.node_fixed", "node_id"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.level.is_some() {
        cols.push((
            "level",
            parse_enum::<WarningLevel>("level", patch.level.as_deref())?
                .as_str()
                .into(),
        ));
    }
    if patch.category.is_some() {
        cols.push((
            "category",
            parse_enum::<WarningCategory>("category", patch.category.as_deref())?
                .as_str()
                .into(),
        ));
    }
    if patch.headline.is_some() {
        cols.push((
            "headline",
            text("headline", patch.headline.as_deref(), HEADLINE_MAX, true)?.into(),
        ));
    }
    if patch.description.is_some() {
        cols.push((
            "description",
            text("description", patch.description.as_deref(), TEXT_MAX, true)?.into(),
        ));
    }
    if patch.instruction.is_some() {
        cols.push((
            "instruction",
            text("instruction", patch.instruction.as_deref(), TEXT_MAX, false)?.into(),
        ));
    }
    let eff = patch.effective_at.unwrap_or(w.effective_at);
    let exp = patch.expires_at.unwrap_or(w.expires_at);
    if patch.effective_at.is_some() || patch.expires_at.is_some() {
        check_times(eff, exp)?;
        cols.push(("effective_at", eff.into()));
        cols.push(("expires_at", exp.into()));
    }
    match (patch.area.as_ref(), patch.crs.as_deref()) {
        (Some(a), crs) => {
            let crs = parse_crs(crs)?;
            let area = parse_area(a, crs)?;
            check_area_nodes(tx.conn(), w.node_id, &area)?;
            cols.push(("area", area_text(&area).into()));
            cols.push(("area_crs", crs.as_str().into()));
        }
        (None, Some(_)) => return Err(bad("value.required", "area")),
        (None, None) => {}
    }
    cols.push(("updated_at", tx.now().into()));
    Warning::from_row(&tx.update("warnings", id, &cols)?)
}

pub fn approve(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Warning> {
    let w = load(tx.conn(), &read_reach(caller), id)?;
    let to = check_step(tx.conn(), caller, &w, WarningAction::Approve)?;
    let now = tx.now();
    Warning::from_row(&tx.update(
        "warnings",
        id,
        &[
            ("status", to.as_str().into()),
            ("approved_by", caller.user_id.into()),
            ("approved_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?)
}

/// What issuing (or updating, or cancelling) produced, for the channels that send after commit.
#[derive(Debug, Clone, Default)]
pub struct Fanout {
    pub warning: Option<Warning>,
    pub recipients: usize,
    /// SMS to enqueue: the delivery, the phone (plaintext, never logged) and its mask.
    pub sms: Vec<SmsOut>,
    pub in_app: usize,
    pub in_person: usize,
    /// Messages on the residents' own channels (e-mail, WeChat) and voice calls to vulnerable
    /// people who asked to be phoned: the delivery, the address (plaintext, never logged), its mask.
    pub others: Vec<ChannelOut>,
}

impl Fanout {
    /// How many messages go out on `channel` (`email`, `wechat`, `voice`).
    pub fn count(&self, channel: &str) -> usize {
        self.others.iter().filter(|o| o.channel == channel).count()
    }
}

/// One message on a channel other than SMS and in-app.
#[derive(Clone)]
pub struct ChannelOut {
    pub delivery_id: Uuid,
    /// `email`, `wechat` or `voice`.
    pub channel: &'static str,
    pub address: String,
    pub address_mask: String,
}

impl std::fmt::Debug for ChannelOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOut")
            .field("delivery_id", &self.delivery_id)
            .field("channel", &self.channel)
            .field("address_mask", &self.address_mask)
            .finish()
    }
}

#[derive(Clone)]
pub struct SmsOut {
    pub delivery_id: Uuid,
    pub phone: String,
    pub phone_mask: String,
}

impl std::fmt::Debug for SmsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsOut")
            .field("delivery_id", &self.delivery_id)
            .field("phone_mask", &self.phone_mask)
            .finish()
    }
}

/// Issue an approved warning: status issued, recipients targeted, deliveries recorded. Issuing
/// a warning that is already issued is refused (`warning.wrong_status`): nothing is sent twice.
pub fn issue(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Fanout> {
    let w = load(tx.conn(), &read_reach(caller), id)?;
    let to = check_step(tx.conn(), caller, &w, WarningAction::Issue)?;
    let now = tx.now();
    if w.expires_at <= now {
        return Err(bad("warning.already_expired", "expires_at"));
    }
    let row = tx.update(
        "warnings",
        id,
        &[
            ("status", to.as_str().into()),
            ("issued_by", caller.user_id.into()),
            ("issued_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let w = Warning::from_row(&row)?;
    let targets = target(tx.conn(), &w)?;
    fan_out(tx, &w, &targets, true)
}

/// What changes in an update (absent: kept); at least one thing must change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInput {
    pub level: Option<String>,
    pub headline: Option<String>,
    pub description: Option<String>,
    pub instruction: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub area: Option<Json>,
    pub crs: Option<String>,
    /// What changed, in words residents read (e.g. "升级为红色预警，范围扩大到…"); default: made
    /// up from the changed fields ("级别由橙色调整为红色，范围调整").
    pub change_summary: Option<String>,
}

/// Update an issued warning: a new issued version referring to the original; the old one
/// becomes `updated`. The new version goes to its recipients as a new message.
pub fn update(tx: &mut Tx, caller: &Caller, id: Uuid, u: UpdateInput) -> Result<Fanout> {
    let w = load(tx.conn(), &read_reach(caller), id)?;
    let to_old = check_step(tx.conn(), caller, &w, WarningAction::Update)?;
    let given = text(
        "change_summary",
        u.change_summary.as_deref(),
        TEXT_MAX,
        false,
    )?;
    let level = match u.level.as_deref() {
        Some(l) => parse_enum::<WarningLevel>("level", Some(l))?,
        None => w.level(),
    };
    let headline = match u.headline.as_deref() {
        Some(h) => text("headline", Some(h), HEADLINE_MAX, true)?,
        None => w.headline.clone(),
    };
    let description = match u.description.as_deref() {
        Some(h) => text("description", Some(h), TEXT_MAX, true)?,
        None => w.description.clone(),
    };
    let instruction = match u.instruction.as_deref() {
        Some(h) => text("instruction", Some(h), TEXT_MAX, false)?,
        None => w.instruction.clone(),
    };
    let expires_at = u.expires_at.unwrap_or(w.expires_at);
    check_times(w.effective_at, expires_at)?;
    let (area, crs) = match u.area.as_ref() {
        Some(a) => {
            let crs = parse_crs(u.crs.as_deref())?;
            let area = parse_area(a, crs)?;
            check_area_nodes(tx.conn(), w.node_id, &area)?;
            (area, crs)
        }
        None => (w.area()?, w.area_crs.parse().unwrap_or(Crs::Wgs84)),
    };
    // What changed, in words: the issuer's, or made up from the fields.
    let mut changed: Vec<String> = Vec::new();
    if level != w.level() {
        changed.push(format!("级别由{}调整为{}", w.level().zh(), level.zh()));
    }
    if area != w.area()? {
        changed.push("范围调整".into());
    }
    if expires_at != w.expires_at {
        changed.push("有效期调整".into());
    }
    if headline != w.headline || description != w.description || instruction != w.instruction {
        changed.push("内容更新".into());
    }
    if changed.is_empty() {
        return Err(bad("warning.nothing_changed", "change_summary"));
    }
    let summary = if given.is_empty() {
        changed.join("，")
    } else {
        given
    };
    let new = new_version(
        tx,
        caller,
        &w,
        WarningStatus::Issued,
        &summary,
        NewWarning {
            node_id: w.node_id,
            grid_id: w.grid_id,
            level,
            category: w.category(),
            headline,
            description,
            instruction,
            effective_at: w.effective_at,
            expires_at,
            area,
            area_crs: crs,
        },
    )?;
    let now = tx.now();
    tx.update(
        "warnings",
        w.id,
        &[
            ("status", to_old.as_str().into()),
            ("updated_at", now.into()),
        ],
    )?;
    let targets = target(tx.conn(), &new)?;
    fan_out(tx, &new, &targets, true)
}

fn new_version(
    tx: &mut Tx,
    caller: &Caller,
    old: &Warning,
    status: WarningStatus,
    summary: &str,
    n: NewWarning,
) -> Result<Warning> {
    let id = tx.new_id();
    let now = tx.now();
    let cancelled = status == WarningStatus::Cancelled;
    let row = tx.insert(
        "warnings",
        &[
            ("id", id.into()),
            ("node_id", n.node_id.into()),
            ("grid_id", n.grid_id.into()),
            ("level", n.level.as_str().into()),
            ("category", n.category.as_str().into()),
            ("headline", n.headline.into()),
            ("description", n.description.into()),
            ("instruction", n.instruction.into()),
            ("effective_at", n.effective_at.into()),
            ("expires_at", n.expires_at.into()),
            ("area", area_text(&n.area).into()),
            ("area_crs", n.area_crs.as_str().into()),
            ("status", status.as_str().into()),
            ("version", (old.version + 1).into()),
            ("refers_to", old.original().into()),
            ("change_summary", summary.to_owned().into()),
            ("source", old.source.clone().into()),
            ("sender", old.sender.clone().into()),
            // How an imported original's sender was judged holds for its updates too.
            ("trust", old.trust.clone().into()),
            ("cap_identifier", format!("anxin-{id}").into()),
            ("created_by", caller.user_id.into()),
            ("approved_by", old.approved_by.into()),
            ("approved_at", old.approved_at.into()),
            ("issued_by", caller.user_id.into()),
            ("issued_at", now.into()),
            (
                "cancelled_by",
                if cancelled { caller.user_id } else { None }.into(),
            ),
            (
                "cancelled_at",
                if cancelled { Some(now) } else { None }.into(),
            ),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Warning::from_row(&row)
}

/// Cancel: a draft or approved warning is withdrawn; an issued one gets a cancellation message
/// (a new version in status `cancelled`, referring to the original, to the same recipients).
pub fn cancel(tx: &mut Tx, caller: &Caller, id: Uuid, reason: Option<String>) -> Result<Fanout> {
    let w = load(tx.conn(), &read_reach(caller), id)?;
    let to = check_step(tx.conn(), caller, &w, WarningAction::Cancel)?;
    let reason = text("reason", reason.as_deref(), TEXT_MAX, false)?;
    let now = tx.now();
    let row = tx.update(
        "warnings",
        id,
        &[
            ("status", to.as_str().into()),
            ("cancelled_by", caller.user_id.into()),
            ("cancelled_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let old = Warning::from_row(&row)?;
    if w.status() != WarningStatus::Issued {
        return Ok(Fanout {
            warning: Some(old),
            ..Fanout::default()
        });
    }
    let summary = if reason.is_empty() {
        "预警解除".to_owned()
    } else {
        format!("预警解除：{reason}")
    };
    let new = new_version(
        tx,
        caller,
        &w,
        WarningStatus::Cancelled,
        &summary,
        NewWarning {
            node_id: w.node_id,
            grid_id: w.grid_id,
            level: w.level(),
            category: w.category(),
            headline: w.headline.clone(),
            description: w.description.clone(),
            instruction: w.instruction.clone(),
            effective_at: w.effective_at,
            expires_at: w.expires_at,
            area: w.area()?,
            area_crs: w.area_crs.parse().unwrap_or(Crs::Wgs84),
        },
    )?;
    // The cancellation goes to whoever got the warning, not to a re-targeted set.
    let targets = copy_targets(tx.conn(), w.id)?;
    fan_out(tx, &new, &targets, false)
}

/// Expire issued warnings whose `expires_at` has passed (by the store clock). Returns how many.
pub fn expire_due(tx: &mut Tx) -> Result<usize> {
    let now = tx.now();
    let rows = tx.query(
        "SELECT id FROM warnings WHERE status = 'issued' AND expires_at <= $1",
        &params![now],
    )?;
    for r in &rows {
        let id: Uuid = r.get("id")?;
        tx.update(
            "warnings",
            id,
            &[("status", "expired".into()), ("updated_at", now.into())],
        )?;
    }
    Ok(rows.len())
}

/// Whether any issued warning is past its expiry (cheap check before a write).
pub fn any_due(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<bool> {
    Ok(conn.query_i64(
        "SELECT count(*) FROM warnings WHERE status = 'issued' AND expires_at <= $1",
        &params![now],
    )? > 0)
}

/// List filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WarningQuery {
    /// `draft`, `approved`, `issued`, `updated`, `cancelled`, `expired`.
    pub status: Option<String>,
}

/// Warnings in the caller's reach, newest first (at most 500).
pub fn list(conn: &mut dyn Conn, caller: &Caller, q: &WarningQuery) -> Result<Vec<Warning>> {
    let mut params = Vec::new();
    let mut parts = vec![read_reach(caller).predicate(conn.dialect(), SCOPE, &mut params)];
    if let Some(s) = q.status.as_deref() {
        let s = parse_enum::<WarningStatus>("status", Some(s))?;
        params.push(s.as_str().into());
        parts.push(format!("w.status = ${}", params.len()));
    }
    let rows = conn.query(
        &format!(
            "SELECT w.* FROM warnings w WHERE {} ORDER BY w.created_at DESC, w.id DESC LIMIT 500",
            parts.join(" AND ")
        ),
        &params,
    )?;
    rows.iter().map(Warning::from_row).collect()
}

// ---------------------------------------------------------------------------------------------
// Targeting.

/// One person (or helper) a version targets.
#[derive(Debug, Clone)]
pub struct Target {
    /// `person` or `helper`.
    pub kind: &'static str,
    /// A person id, or a helper's user id.
    pub id: Uuid,
    pub household_id: Option<Uuid>,
    pub community_id: Option<Uuid>,
    pub compound_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub vulnerable: bool,
    pub helper_of: Option<Uuid>,
    pub priority: i64,
    /// Sealed phone, to open only for an SMS.
    phone_ct: Option<Vec<u8>>,
    /// A resident account acts as this person.
    has_account: bool,
    /// Needs someone at the door (no smartphone, visit or call preferred).
    in_person: bool,
    helper_user: Option<Uuid>,
}

fn subtree_sql(d: crate::conn::Dialect, col: &str, n: usize) -> String {
    format!(
        "{col} IN (WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE {} \
         UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)",
        d.in_json_list("id", n)
    )
}

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(Json::Array(
        ids.iter().map(|u| Json::String(u.to_string())).collect(),
    ))
}

/// The residents a version reaches (see the module doc), vulnerable first, and their helpers.
pub fn target(conn: &mut dyn Conn, w: &Warning) -> Result<Vec<Target>> {
    let area = w.area()?;
    let d = conn.dialect();
    // Buildings with a location under the warning's node, in the index.
    let mut building_ids: Vec<Uuid> = Vec::new();
    let geometry = area.geometry();
    if !geometry.is_empty() {
        let rows = conn.query(
            &format!(
                "SELECT b.id, b.lon, b.lat FROM buildings b WHERE b.lon IS NOT NULL AND b.lat IS NOT NULL AND {}",
                subtree_sql(d, "b.community_id", 1)
            ),
            &[json_ids(&[w.node_id])],
        )?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut pts = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            ids.push(r.get::<Uuid>("id")?);
            pts.push((i as u32, r.get::<f64>("lon")?, r.get::<f64>("lat")?));
        }
        let index = PointIndex::build(&pts);
        building_ids = index
            .query(&geometry)
            .into_iter()
            .map(|i| ids[i as usize])
            .collect();
    }
    let mut people: Vec<Row> = Vec::new();
    let cols =
        "p.id, p.household_id, p.community_id, p.grid_id, p.phone_ct, b.node_id AS compound_id";
    let from = "people p LEFT JOIN households h ON h.id = p.household_id \
                LEFT JOIN dwellings dw ON dw.id = h.dwelling_id \
                LEFT JOIN buildings b ON b.id = dw.building_id";
    if !building_ids.is_empty() {
        people.extend(conn.query(
            &format!(
                "SELECT {cols} FROM {from} WHERE {} AND {}",
                d.in_json_list("b.id", 1),
                subtree_sql(d, "p.community_id", 2)
            ),
            &[json_ids(&building_ids), json_ids(&[w.node_id])],
        )?);
    }
    if !area.nodes.is_empty() {
        people.extend(conn.query(
            &format!(
                "SELECT {cols} FROM {from} WHERE ({} OR {}) AND {}",
                subtree_sql(d, "p.community_id", 1),
                subtree_sql(d, "b.node_id", 1),
                subtree_sql(d, "p.community_id", 2)
            ),
            &[json_ids(&area.nodes), json_ids(&[w.node_id])],
        )?);
    }
    let mut seen = HashSet::new();
    let mut out: Vec<Target> = Vec::new();
    for r in &people {
        let id: Uuid = r.get("id")?;
        if !seen.insert(id) {
            continue;
        }
        out.push(Target {
            kind: "person",
            id,
            household_id: r.get("household_id")?,
            community_id: r.get("community_id")?,
            compound_id: r.get("compound_id")?,
            grid_id: r.get("grid_id")?,
            vulnerable: false,
            helper_of: None,
            priority: 2,
            phone_ct: r.get("phone_ct")?,
            has_account: false,
            in_person: false,
            helper_user: None,
        });
    }
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<Uuid> = out.iter().map(|t| t.id).collect();
    let mut by_id: HashMap<Uuid, usize> = out.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    for r in conn.query(
        &format!(
            "SELECT person_id FROM user_people up JOIN users u ON u.id = up.user_id \
             WHERE u.disabled = FALSE AND {}",
            d.in_json_list("up.person_id", 1)
        ),
        &[json_ids(&ids)],
    )? {
        let p: Uuid = r.get("person_id")?;
        if let Some(&i) = by_id.get(&p) {
            out[i].has_account = true;
        }
    }
    let mut helpers: Vec<Target> = Vec::new();
    for r in conn.query(
        &format!(
            "SELECT person_id, helper_user_id, contact_channel FROM vulnerable WHERE {}",
            d.in_json_list("person_id", 1)
        ),
        &[json_ids(&ids)],
    )? {
        let p: Uuid = r.get("person_id")?;
        let Some(&i) = by_id.get(&p) else { continue };
        let channel: String = r.get("contact_channel")?;
        let helper: Option<Uuid> = r.get("helper_user_id")?;
        let t = &mut out[i];
        t.vulnerable = true;
        t.priority = 0;
        if matches!(
            channel.as_str(),
            "home_visit" | "phone_call" | "no_smartphone"
        ) {
            t.in_person = true;
        }
        if channel == "no_smartphone" {
            t.has_account = false;
        }
        if helper.is_some() {
            t.helper_user = helper;
        }
        if let Some(h) = helper {
            helpers.push(Target {
                kind: "helper",
                id: h,
                household_id: None,
                community_id: t.community_id,
                compound_id: t.compound_id,
                grid_id: t.grid_id,
                vulnerable: false,
                helper_of: Some(p),
                priority: 1,
                phone_ct: None,
                // Helpers are reached through the in-person task assigned to them.
                has_account: false,
                in_person: false,
                helper_user: None,
            });
        }
    }
    for t in &mut out {
        if t.phone_ct.is_none() && !t.has_account {
            t.in_person = true;
        }
    }
    let mut seen_helpers = HashSet::new();
    helpers.retain(|h| seen_helpers.insert(h.id));
    out.extend(helpers);
    out.sort_by_key(|t| (t.priority, t.id));
    by_id.clear();
    Ok(out)
}

/// The targets of an earlier version (for its cancellation message).
fn copy_targets(conn: &mut dyn Conn, warning_id: Uuid) -> Result<Vec<Target>> {
    let rows = conn.query(
        "SELECT r.target_kind, r.target_id, r.household_id, r.community_id, r.compound_id, \
         r.grid_id, r.vulnerable, r.helper_of, r.priority, p.phone_ct, \
         (SELECT count(*) FROM warning_deliveries d WHERE d.warning_id = r.warning_id \
            AND d.target_id = r.target_id AND d.channel = 'in_app') AS in_app \
         FROM warning_recipients r LEFT JOIN people p ON p.id = r.target_id \
         WHERE r.warning_id = $1 ORDER BY r.priority, r.target_id",
        &params![warning_id],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kind: String = r.get("target_kind")?;
        out.push(Target {
            kind: if kind == "helper" { "helper" } else { "person" },
            id: r.get("target_id")?,
            household_id: r.get("household_id")?,
            community_id: r.get("community_id")?,
            compound_id: r.get("compound_id")?,
            grid_id: r.get("grid_id")?,
            vulnerable: r.get("vulnerable")?,
            helper_of: r.get("helper_of")?,
            priority: r.get("priority")?,
            phone_ct: r.get("phone_ct")?,
            has_account: r.get::<i64>("in_app")? > 0,
            in_person: false,
            helper_user: None,
        });
    }
    Ok(out)
}

/// Multi-row insert into an operational table, in chunks.
fn insert_rows(tx: &mut Tx, head: &str, width: usize, rows: &[Vec<Value>]) -> Result<()> {
    let per = (30_000 / width).clamp(1, 1_000);
    for part in rows.chunks(per) {
        let mut sql = String::from(head);
        let mut params = Vec::with_capacity(part.len() * width);
        for (i, row) in part.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..width {
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(params.len() + j + 1).to_string());
            }
            sql.push(')');
            params.extend(row.iter().cloned());
        }
        tx.execute_unlogged(&sql, &params)?;
    }
    Ok(())
}

/// Record recipients, deliveries and in-person tasks of version `w`; open phones for SMS.
fn fan_out(tx: &mut Tx, w: &Warning, targets: &[Target], tasks: bool) -> Result<Fanout> {
    let now = tx.now();
    let original = w.original();
    let mut recipients = Vec::with_capacity(targets.len());
    let mut deliveries = Vec::new();
    let mut task_rows = Vec::new();
    let mut out = Fanout {
        recipients: targets.len(),
        ..Fanout::default()
    };
    let env: &Env = tx.env();
    // The residents' own channels (verified, of enabled accounts linked to the people) and the
    // vulnerable people who asked to be phoned: looked up once for the whole fan-out.
    let person_ids: Vec<Uuid> = targets
        .iter()
        .filter(|t| t.kind == "person")
        .map(|t| t.id)
        .collect();
    let mut own: HashMap<Uuid, Vec<crate::resident_channels::PersonChannel>> = HashMap::new();
    for c in crate::resident_channels::verified_for_people(tx.conn(), env, &person_ids)? {
        own.entry(c.person_id).or_default().push(c);
    }
    let mut phoned: HashSet<Uuid> = HashSet::new();
    for chunk in person_ids.chunks(5_000) {
        let d = tx.conn().dialect();
        for r in tx.query(
            &format!(
                "SELECT DISTINCT person_id FROM vulnerable WHERE contact_channel = 'phone_call' AND {}",
                d.in_json_list("person_id", 1)
            ),
            &[json_ids(chunk)],
        )? {
            phoned.insert(r.get("person_id")?);
        }
    }
    // One message per account and channel, however many of the people it acts as are reached.
    let mut sent_to: HashSet<(Uuid, &'static str)> = HashSet::new();
    for t in targets {
        recipients.push(vec![
            w.id.into(),
            original.into(),
            t.kind.into(),
            t.id.into(),
            t.household_id.into(),
            t.community_id.into(),
            t.compound_id.into(),
            t.grid_id.into(),
            t.vulnerable.into(),
            t.helper_of.into(),
            t.priority.into(),
        ]);
        let mut delivery = |channel: &str, task: Option<Uuid>, id: Uuid| {
            deliveries.push(vec![
                id.into(),
                w.id.into(),
                original.into(),
                t.id.into(),
                channel.into(),
                "queued".into(),
                task.into(),
                now.into(),
                now.into(),
            ]);
        };
        if t.has_account {
            delivery("in_app", None, tx.new_id());
            out.in_app += 1;
        }
        if let Some(ct) = &t.phone_ct {
            let phone = env.keys.open_string(tx.conn(), "people.phone", ct)?;
            let id = tx.new_id();
            delivery("sms", None, id);
            let phone_mask = anxin_domain::Phone::parse(&phone)
                .map(|p| anxin_domain::mask_phone(&p))
                .unwrap_or_else(|_| "***".into());
            if t.kind == "person" && phoned.contains(&t.id) {
                let id = tx.new_id();
                delivery("voice", None, id);
                out.others.push(ChannelOut {
                    delivery_id: id,
                    channel: "voice",
                    address: phone.clone(),
                    address_mask: phone_mask.clone(),
                });
            }
            out.sms.push(SmsOut {
                delivery_id: id,
                phone_mask,
                phone,
            });
        }
        if t.kind == "person" {
            for c in own.get(&t.id).map(Vec::as_slice).unwrap_or(&[]) {
                let channel: &'static str = match c.kind.as_str() {
                    "email" => "email",
                    "wechat" => "wechat",
                    _ => continue,
                };
                if !sent_to.insert((c.user_id, channel)) {
                    continue;
                }
                let id = tx.new_id();
                delivery(channel, None, id);
                out.others.push(ChannelOut {
                    delivery_id: id,
                    channel,
                    address: c.address.clone(),
                    address_mask: c.address_mask.clone(),
                });
            }
        }
        if tasks && t.kind == "person" && t.in_person {
            let task = tx.new_id();
            task_rows.push(vec![
                task.into(),
                w.id.into(),
                original.into(),
                t.id.into(),
                t.helper_user.into(),
                t.grid_id.into(),
                t.community_id.unwrap_or(w.node_id).into(),
                "open".into(),
                now.into(),
            ]);
            delivery("in_person", Some(task), tx.new_id());
            out.in_person += 1;
        }
    }
    insert_rows(
        tx,
        "INSERT INTO warning_recipients (warning_id, original_id, target_kind, target_id, household_id, \
         community_id, compound_id, grid_id, vulnerable, helper_of, priority) VALUES ",
        11,
        &recipients,
    )?;
    insert_rows(
        tx,
        "INSERT INTO inperson_tasks (id, warning_id, original_id, person_id, assignee_user_id, grid_id, \
         community_id, status, created_at) VALUES ",
        9,
        &task_rows,
    )?;
    insert_rows(
        tx,
        "INSERT INTO warning_deliveries (id, warning_id, original_id, target_id, channel, status, \
         task_id, created_at, updated_at) VALUES ",
        9,
        &deliveries,
    )?;
    out.warning = Some(w.clone());
    Ok(out)
}

/// Remember the notification that carries an SMS delivery.
pub fn set_notification(tx: &mut Tx, delivery: Uuid, notification: Option<Uuid>) -> Result<()> {
    let now = tx.now();
    let status = if notification.is_some() {
        "sent"
    } else {
        "failed"
    };
    tx.execute_unlogged(
        "UPDATE warning_deliveries SET notification_id = $1, status = $2, attempts = attempts + 1, \
         updated_at = $3 WHERE id = $4",
        &params![notification, status, now, delivery],
    )?;
    Ok(())
}

/// The SMS parameters of a version (template `warning`).
pub fn sms_params(w: &Warning) -> BTreeMap<String, String> {
    let kind = match w.status() {
        WarningStatus::Cancelled => "解除".to_owned(),
        _ if w.refers_to.is_some() => "更新".to_owned(),
        _ => "发布".to_owned(),
    };
    let mut headline = w.headline.clone();
    if let Some(s) = &w.change_summary {
        headline = format!("{headline}（{s}）");
    }
    BTreeMap::from([
        ("action".to_owned(), kind),
        ("level".to_owned(), w.level().zh().to_owned()),
        ("category".to_owned(), w.category().zh().to_owned()),
        ("headline".to_owned(), headline),
        ("instruction".to_owned(), w.instruction.clone()),
    ])
}

// ---------------------------------------------------------------------------------------------
// The resident side.

/// A warning as a resident sees it on their page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResidentWarning {
    pub id: Uuid,
    pub original_id: Uuid,
    pub level: String,
    pub level_zh: String,
    pub category_zh: String,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub status: String,
    pub change_summary: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// The person's answer, if they gave one: `safe` or `need_help`.
    pub answer: Option<String>,
}

/// Active warnings (the latest version of each) that reached `person`'s household.
pub fn for_resident(
    conn: &mut dyn Conn,
    person: Uuid,
    household: Option<Uuid>,
) -> Result<Vec<ResidentWarning>> {
    let rows = conn.query(
        "SELECT DISTINCT w.*, a.answer FROM warnings w \
         JOIN warning_recipients r ON r.warning_id = w.id \
         LEFT JOIN warning_acks a ON a.original_id = r.original_id AND a.person_id = $1 \
         WHERE w.status = 'issued' AND r.target_kind = 'person' \
           AND (r.target_id = $1 OR (r.household_id IS NOT NULL AND r.household_id = $2)) \
         ORDER BY w.issued_at DESC",
        &params![person, household],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let w = Warning::from_row(&r)?;
        out.push(ResidentWarning {
            id: w.id,
            original_id: w.original(),
            level_zh: w.level_zh.clone(),
            level: w.level,
            category_zh: w.category_zh,
            headline: w.headline,
            description: w.description,
            instruction: w.instruction,
            status: w.status,
            change_summary: w.change_summary,
            issued_at: w.issued_at,
            expires_at: w.expires_at,
            answer: r.get("answer")?,
        });
    }
    out.sort_by_key(|w| {
        (
            w.level.parse::<WarningLevel>().map_or(9, |l| l.rank()),
            std::cmp::Reverse(w.issued_at),
        )
    });
    Ok(out)
}

/// The version `id` if it reached `person` (or their household); otherwise `NotFound`.
fn resident_version(
    conn: &mut dyn Conn,
    person: Uuid,
    household: Option<Uuid>,
    id: Uuid,
) -> Result<Warning> {
    let row = conn
        .query_one(
            "SELECT w.* FROM warnings w WHERE w.id = $1 AND EXISTS (SELECT 1 FROM warning_recipients r \
             WHERE r.warning_id = w.id AND r.target_kind = 'person' \
             AND (r.target_id = $2 OR (r.household_id IS NOT NULL AND r.household_id = $3)))",
            &params![id, person, household],
        )?
        .ok_or(StoreError::NotFound)?;
    Warning::from_row(&row)
}

/// The resident's page showed version `id`: their in-app delivery (and their household's, as
/// the page shows the household's warnings) becomes `delivered`.
pub fn displayed(tx: &mut Tx, person: Uuid, household: Option<Uuid>, id: Uuid) -> Result<()> {
    resident_version(tx.conn(), person, household, id)?;
    let now = tx.now();
    tx.execute_unlogged(
        "UPDATE warning_deliveries SET status = 'delivered', updated_at = $1 \
         WHERE warning_id = $2 AND channel = 'in_app' AND status <> 'delivered' AND (target_id = $3 \
         OR target_id IN (SELECT r.target_id FROM warning_recipients r WHERE r.warning_id = $2 \
           AND r.household_id IS NOT NULL AND r.household_id = $4))",
        &params![now, id, person, household],
    )?;
    Ok(())
}

/// A resident's answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AckInput {
    /// `safe` or `need_help`.
    pub answer: Option<String>,
}

/// Record the resident's answer to the warning (its original); the last answer counts.
pub fn acknowledge(
    tx: &mut Tx,
    person: Uuid,
    household: Option<Uuid>,
    id: Uuid,
    answer: Option<&str>,
) -> Result<()> {
    let answer = match answer.map(str::trim) {
        Some(a @ ("safe" | "need_help")) => a.to_owned(),
        Some("") | None => return Err(bad("value.required", "answer")),
        Some(_) => return Err(bad("value.invalid", "answer")),
    };
    let w = resident_version(tx.conn(), person, household, id)?;
    if w.status() != WarningStatus::Issued {
        return Err(StoreError::Conflict {
            code: StepRefused::CODE,
            detail: "warning not in force".into(),
        });
    }
    let now = tx.now();
    let original = w.original();
    tx.execute_unlogged(
        "DELETE FROM warning_acks WHERE original_id = $1 AND person_id = $2",
        &params![original, person],
    )?;
    tx.execute_unlogged(
        "INSERT INTO warning_acks (original_id, person_id, answer, at) VALUES ($1, $2, $3, $4)",
        &params![original, person, answer, now],
    )?;
    // An answer means the warning was seen.
    tx.execute_unlogged(
        "UPDATE warning_deliveries SET status = 'delivered', updated_at = $1 \
         WHERE warning_id = $2 AND target_id = $3 AND channel = 'in_app'",
        &params![now, id, person],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In-person tasks.

/// Mark an in-person task done (the helper or grid worker has told the person).
pub fn complete_task(tx: &mut Tx, caller: &Caller, task: Uuid) -> Result<()> {
    let row = tx
        .query_one(
            "SELECT t.id, t.assignee_user_id, w.id AS wid FROM inperson_tasks t \
             JOIN warnings w ON w.id = t.warning_id WHERE t.id = $1",
            &params![task],
        )?
        .ok_or(StoreError::NotFound)?;
    let wid: Uuid = row.get("wid")?;
    let assignee: Option<Uuid> = row.get("assignee_user_id")?;
    let mine = assignee.is_some() && assignee == caller.user_id;
    if !mine {
        load(tx.conn(), &read_reach(caller), wid)?;
    }
    let now = tx.now();
    tx.execute_unlogged(
        "UPDATE inperson_tasks SET status = 'done', done_at = $1, done_by = $2 WHERE id = $3",
        &params![now, caller.user_id, task],
    )?;
    tx.execute_unlogged(
        "UPDATE warning_deliveries SET status = 'delivered', updated_at = $1 WHERE task_id = $2",
        &params![now, task],
    )?;
    Ok(())
}

/// An in-person task as its assignee sees it (person masked).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub warning_id: Uuid,
    pub person_id: Uuid,
    pub person_name: String,
    pub assignee_user_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// The in-person tasks of a warning (any version), in reach.
pub fn tasks(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Vec<Task>> {
    let w = load(conn, &read_reach(caller), id)?;
    let rows = conn.query(
        "SELECT t.id, t.warning_id, t.person_id, p.name, t.assignee_user_id, t.grid_id, t.status, t.created_at \
         FROM inperson_tasks t JOIN people p ON p.id = t.person_id WHERE t.original_id = $1 \
         ORDER BY t.created_at, t.id",
        &params![w.original()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Task {
                id: r.get("id")?,
                warning_id: r.get("warning_id")?,
                person_id: r.get("person_id")?,
                person_name: anxin_domain::mask_name(&r.get::<String>("name")?),
                assignee_user_id: r.get("assignee_user_id")?,
                grid_id: r.get("grid_id")?,
                status: r.get("status")?,
                created_at: r.get("created_at")?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reach board.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub recipients: i64,
    pub delivered: i64,
    pub acknowledged: i64,
    pub need_help: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChannelCounts {
    pub channel: String,
    pub deliveries: i64,
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompoundCounts {
    /// The compound (the building's node), or the community when the building has none.
    pub node_id: Option<Uuid>,
    pub name: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unacknowledged {
    pub person_id: Uuid,
    /// Masked.
    pub name: String,
    pub grid_id: Option<Uuid>,
    pub helper_user_id: Option<Uuid>,
}

/// The reach of a warning's current version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReachBoard {
    pub warning_id: Uuid,
    pub original_id: Uuid,
    pub total: Counts,
    pub by_compound: Vec<CompoundCounts>,
    pub by_channel: Vec<ChannelCounts>,
    pub vulnerable_unacknowledged: Vec<Unacknowledged>,
}

/// Delivered: an SMS, e-mail, WeChat message or voice call whose notification was sent (a
/// provider's failure receipt turns it back), an in-app warning displayed, an in-person task done.
const DELIVERED: &str = "(d.status = 'delivered' OR (d.channel IN ('sms', 'email', 'wechat', 'voice') AND n.status = 'sent'))";

/// The reach board of version `id` (persons only; helpers are counted by their tasks).
pub fn reach(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<ReachBoard> {
    let w = load(conn, &caller.reach(Permission::IssueWarning), id)?;
    let original = w.original();
    let per_person = format!(
        "SELECT r.target_id, r.compound_id, r.community_id, \
           (SELECT count(*) FROM warning_deliveries d LEFT JOIN notifications n ON n.id = d.notification_id \
             WHERE d.warning_id = r.warning_id AND d.target_id = r.target_id AND {DELIVERED}) AS delivered, \
           a.answer \
         FROM warning_recipients r LEFT JOIN warning_acks a ON a.original_id = r.original_id AND a.person_id = r.target_id \
         WHERE r.warning_id = $1 AND r.target_kind = 'person'"
    );
    let rows = conn.query(&per_person, &params![w.id])?;
    let mut total = Counts::default();
    let mut by: BTreeMap<Option<Uuid>, Counts> = BTreeMap::new();
    for r in &rows {
        let node: Option<Uuid> = r
            .get::<Option<Uuid>>("compound_id")?
            .or(r.get::<Option<Uuid>>("community_id")?);
        let delivered = r.get::<i64>("delivered")? > 0;
        let answer: Option<String> = r.get("answer")?;
        for c in [&mut total, by.entry(node).or_default()] {
            c.recipients += 1;
            c.delivered += i64::from(delivered);
            c.acknowledged += i64::from(answer.is_some());
            c.need_help += i64::from(answer.as_deref() == Some("need_help"));
        }
    }
    let mut by_compound = Vec::with_capacity(by.len());
    for (node, counts) in by {
        let name = match node {
            Some(n) => conn
                .query_one("SELECT name FROM nodes WHERE id = $1", &params![n])?
                .map(|r| r.get::<String>("name"))
                .transpose()?,
            None => None,
        };
        by_compound.push(CompoundCounts {
            node_id: node,
            name,
            counts,
        });
    }
    let mut by_channel = Vec::new();
    for r in conn.query(
        &format!(
            "SELECT d.channel, count(*) AS n, \
             sum(CASE WHEN {DELIVERED} THEN 1 ELSE 0 END) AS delivered, \
             sum(CASE WHEN d.status = 'failed' OR n.status = 'failed' THEN 1 ELSE 0 END) AS failed, \
             sum(CASE WHEN d.status = 'sent' AND (n.status IS NULL OR n.status = 'pending') THEN 1 ELSE 0 END) AS sent, \
             sum(CASE WHEN d.status = 'queued' THEN 1 ELSE 0 END) AS queued \
             FROM warning_deliveries d LEFT JOIN notifications n ON n.id = d.notification_id \
             WHERE d.warning_id = $1 GROUP BY d.channel ORDER BY d.channel"
        ),
        &params![w.id],
    )? {
        by_channel.push(ChannelCounts {
            channel: r.get("channel")?,
            deliveries: r.get("n")?,
            queued: r.get("queued")?,
            sent: r.get("sent")?,
            delivered: r.get("delivered")?,
            failed: r.get("failed")?,
        });
    }
    let mut vulnerable_unacknowledged = Vec::new();
    for r in conn.query(
        "SELECT r.target_id, p.name, p.grid_id, \
           (SELECT v.helper_user_id FROM vulnerable v WHERE v.person_id = r.target_id \
             AND v.helper_user_id IS NOT NULL ORDER BY v.created_at LIMIT 1) AS helper \
         FROM warning_recipients r JOIN people p ON p.id = r.target_id \
         WHERE r.warning_id = $1 AND r.target_kind = 'person' AND r.vulnerable = TRUE \
           AND NOT EXISTS (SELECT 1 FROM warning_acks a WHERE a.original_id = $2 AND a.person_id = r.target_id) \
         ORDER BY p.name, r.target_id",
        &params![w.id, original],
    )? {
        vulnerable_unacknowledged.push(Unacknowledged {
            person_id: r.get("target_id")?,
            name: anxin_domain::mask_name(&r.get::<String>("name")?),
            grid_id: r.get("grid_id")?,
            helper_user_id: r.get("helper")?,
        });
    }
    Ok(ReachBoard {
        warning_id: w.id,
        original_id: original,
        total,
        by_compound,
        by_channel,
        vulnerable_unacknowledged,
    })
}

// ---------------------------------------------------------------------------------------------
// CAP support.

/// The version `w` follows (for CAP `references`): the newest older version of the same original.
pub fn previous(conn: &mut dyn Conn, w: &Warning) -> Result<Option<Warning>> {
    if w.refers_to.is_none() {
        return Ok(None);
    }
    let row = conn.query_one(
        "SELECT w.* FROM warnings w WHERE (w.id = $1 OR w.refers_to = $1) AND w.version < $2 \
         ORDER BY w.version DESC LIMIT 1",
        &params![w.original(), w.version],
    )?;
    row.as_ref().map(Warning::from_row).transpose()
}

/// The active GB/T 2260 (or 12-digit statistical) codes of the nodes a version names, or of its
/// node when it names none.
pub fn geocodes(conn: &mut dyn Conn, w: &Warning) -> Result<Vec<String>> {
    let mut nodes = w.area()?.nodes;
    if nodes.is_empty() {
        nodes.push(w.node_id);
    }
    let rows = conn.query(
        &format!(
            "SELECT code FROM node_codes WHERE valid_to IS NULL AND {} ORDER BY code",
            conn.dialect().in_json_list("node_id", 1)
        ),
        &[json_ids(&nodes)],
    )?;
    rows.iter().map(|r| r.get::<String>("code")).collect()
}

/// Issued versions in the caller's reach (for the Atom feed), newest first.
pub fn issued_in_reach(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Warning>> {
    let mut params = Vec::new();
    let pred = read_reach(caller).predicate(conn.dialect(), SCOPE, &mut params);
    let rows = conn.query(
        &format!(
            "SELECT w.* FROM warnings w WHERE w.status IN ('issued', 'updated', 'cancelled', 'expired') \
             AND w.issued_at IS NOT NULL AND {pred} ORDER BY w.issued_at DESC, w.id DESC LIMIT 200"
        ),
        &params,
    )?;
    rows.iter().map(Warning::from_row).collect()
}

/// The nodes holding these active codes (GB/T 2260 or 12-digit statistical), in the order given;
/// a code no node holds is `record.reference_invalid` on `field[i]`.
pub fn nodes_for_codes(conn: &mut dyn Conn, codes: &[String], field: &str) -> Result<Vec<Uuid>> {
    let mut out = Vec::with_capacity(codes.len());
    for (i, c) in codes.iter().enumerate() {
        let row = conn.query_one(
            "SELECT node_id FROM node_codes WHERE code = $1 AND valid_to IS NULL",
            &params![c.clone()],
        )?;
        match row {
            Some(r) => {
                let id: Uuid = r.get("node_id")?;
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            None => return Err(bad("record.reference_invalid", format!("{field}[{i}]"))),
        }
    }
    Ok(out)
}

/// Store an imported CAP alert as a draft (`source = cap_import`). From a trusted sender it is
/// `approved` (the trust list stands in for the approver) but still needs a person to issue it:
/// nothing from outside goes to residents by itself. `trust` records how the sender was judged
/// (`signature_valid`, `sender_listed`, or why it is untrusted).
pub fn import_draft(
    tx: &mut Tx,
    caller: &Caller,
    new: &NewWarning,
    origin: &Origin,
    trusted: bool,
    trust: &str,
) -> Result<Warning> {
    let w = create_draft(tx, caller, new, origin)?;
    let now = tx.now();
    let mut set: Vec<(&str, Value)> = vec![("trust", trust.to_owned().into())];
    if trusted {
        set.push(("status", WarningStatus::Approved.as_str().into()));
        set.push(("approved_at", now.into()));
        set.push(("updated_at", now.into()));
    }
    Warning::from_row(&tx.update("warnings", w.id, &set)?)
}
