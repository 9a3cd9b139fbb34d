//! Places: buildings, their units and dwellings, facilities, and the duty list (职责清单).
//!
//! Every function takes the caller and scopes by the record's place in the tree: reads need
//! [`Permission::ReadBase`], writes [`Permission::WriteBase`]. A record outside reach is
//! [`StoreError::NotFound`], exactly like a missing one; a reference (node, grid, unit, user) the
//! caller cannot reach is an invalid reference, exactly like one that does not exist.
//!
//! Input is parsed, not validated: raw input (`…Input`, `…Patch`, `…Query`, as they arrive from
//! HTTP or an import) becomes a `New…`/filter value through `parse`, which names the field of
//! any error. Nothing unparsed reaches SQL. What needs the database (is the node a community, is
//! the grid in it, is it within reach) is checked in the write itself.
//!
//! Locations arrive in the coordinate system the client declares (WGS84, CGCS2000, GCJ-02 from
//! AMap/Tencent, BD-09 from Baidu) and are stored in WGS84 with the declared system remembered in
//! `source_crs`.
//!
//! A duty holder's phone is personal data: sealed with the duty's own data key (`key_id`), shown
//! as a mask; the plaintext is an unmask and needs [`Permission::Unmask`] on the duty's node.

use anxin_domain::geo::{self, Crs, LonLat};
use anxin_domain::roles::Permission;
use anxin_domain::{mask_phone, DomainError, FacilityKind, FacilityStatus, Phone};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Env;

/// Page size when the caller names none, and the most one page may hold.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// The most facilities one map layer carries.
pub const MAX_LAYER: i64 = 10_000;

const NAME_MAX: usize = 100;
const ADDRESS_MAX: usize = 200;
const UNIT_NAME_MAX: usize = 50;
const NUMBER_MAX: usize = 30;
const DUTY_MAX: usize = 500;
const RESPONSIBLE_MAX: usize = 50;
const QUERY_MAX: usize = 50;
const ATTRS_MAX_BYTES: usize = 8192;
const FLOORS_MAX: i64 = 300;
const FLOOR_MIN: i64 = -20;

const PHONE_FIELD: &str = "duties.phone";

// ---------------------------------------------------------------------------------------------
// Field parsers: each takes the raw value (absent as `None`) and the field name for errors.

/// Read a JSON field that may be absent, null or a value: `None`, `Some(None)`, `Some(Some(v))`.
/// A PATCH body needs the three apart (absent: unchanged; null: cleared).
pub fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn text_required(field: &str, raw: Option<String>, max: usize) -> Result<String> {
    match text_optional(field, raw, max)? {
        Some(s) => Ok(s),
        None => Err(StoreError::invalid("value.required", field)),
    }
}

fn text_optional(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    let Some(s) = raw else { return Ok(None) };
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(StoreError::invalid("value.too_long", field));
    }
    if s.chars().any(char::is_control) {
        return Err(StoreError::invalid("value.invalid", field));
    }
    Ok(Some(s.to_owned()))
}

fn required<T>(field: &str, raw: Option<T>) -> Result<T> {
    raw.ok_or_else(|| StoreError::invalid("value.required", field))
}

fn int_in(
    field: &str,
    raw: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>> {
    match raw {
        Some(v) if !range.contains(&v) => Err(StoreError::invalid("value.invalid", field)),
        v => Ok(v),
    }
}

fn area(field: &str, raw: Option<f64>) -> Result<Option<f64>> {
    match raw {
        Some(v) if !v.is_finite() || v < 0.0 => Err(StoreError::invalid("value.invalid", field)),
        v => Ok(v),
    }
}

fn domain(field_prefix: &str, e: &DomainError) -> StoreError {
    let field = match e.field() {
        Some(f) if !field_prefix.is_empty() => format!("{field_prefix}.{f}"),
        Some(f) => f.to_owned(),
        None => field_prefix.to_owned(),
    };
    StoreError::invalid(e.code(), field)
}

fn parse_enum<T: std::str::FromStr<Err = DomainError>>(field: &str, raw: &str) -> Result<T> {
    raw.parse::<T>()
        .map_err(|e| StoreError::invalid(e.code(), field))
}

/// A location as it arrives: coordinates in the system the client declares.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// `wgs84`, `cgcs2000`, `gcj02` or `bd09`. Required: a coordinate without its system is a
    /// few hundred metres wrong in China half the time.
    pub crs: Option<String>,
}

/// A stored location: WGS84, and the system it was given in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Location {
    pub lon: f64,
    pub lat: f64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub source_crs: Crs,
}

fn location(raw: Option<LocationInput>) -> Result<Option<Location>> {
    let Some(raw) = raw else { return Ok(None) };
    let crs_raw = required("location.crs", raw.crs)?;
    let crs: Crs = parse_enum("location.crs", &crs_raw)?;
    let lon = required("location.lon", raw.lon)?;
    let lat = required("location.lat", raw.lat)?;
    let p = LonLat::new(lon, lat).map_err(|e| domain("location", &e))?;
    let w = geo::to_wgs84(crs, p);
    Ok(Some(Location {
        lon: w.lon(),
        lat: w.lat(),
        source_crs: crs,
    }))
}

fn location_from_row(r: &Row) -> Result<Option<Location>> {
    let lon: Option<f64> = r.get("lon")?;
    let lat: Option<f64> = r.get("lat")?;
    let (Some(lon), Some(lat)) = (lon, lat) else {
        return Ok(None);
    };
    let crs: String = r.get("source_crs")?;
    let source_crs = crs
        .parse()
        .map_err(|_| StoreError::Backend(format!("stored source_crs {crs} unknown")))?;
    Ok(Some(Location {
        lon,
        lat,
        source_crs,
    }))
}

fn location_cols(l: Option<Location>) -> [(&'static str, Value); 3] {
    match l {
        Some(l) => [
            ("lon", l.lon.into()),
            ("lat", l.lat.into()),
            ("source_crs", l.source_crs.as_str().into()),
        ],
        None => [
            ("lon", Value::Null),
            ("lat", Value::Null),
            ("source_crs", Crs::Wgs84.as_str().into()),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Lists.

/// Paging as it arrives.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageInput {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    limit: i64,
    offset: i64,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Paging {
    pub fn parse(raw: PageInput) -> Result<Self> {
        let limit = match raw.limit {
            None => DEFAULT_LIMIT,
            Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
            Some(_) => return Err(StoreError::invalid("value.invalid", "limit")),
        };
        let offset = match raw.offset {
            None => 0,
            Some(o) if o >= 0 => o,
            Some(_) => return Err(StoreError::invalid("value.invalid", "offset")),
        };
        Ok(Self { limit, offset })
    }
    pub fn limit(self) -> i64 {
        self.limit
    }
    pub fn offset(self) -> i64 {
        self.offset
    }
}

/// One page of a list and how many records match in all.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// A name search term: trimmed, at most [`QUERY_MAX`] characters, matched as a substring
/// (Chinese included), case-insensitively for Latin letters.
fn search_term(raw: Option<String>) -> Result<Option<String>> {
    text_optional("q", raw, QUERY_MAX)
}

/// `LIKE` pattern for a substring, with the wildcards of the term itself escaped.
fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The WHERE clauses of a list, with their parameters numbered as they are added.
pub(crate) struct Where {
    parts: Vec<String>,
    pub(crate) params: Vec<Value>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Self {
            parts: Vec::new(),
            params: Vec::new(),
        }
    }
    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> usize {
        self.params.push(v.into());
        self.params.len()
    }
    pub(crate) fn push(&mut self, part: String) {
        self.parts.push(part);
    }
    pub(crate) fn scope(&mut self, conn: &dyn Conn, reach: &Reach, cols: ScopeCols<'_>) {
        let p = reach.predicate(conn.dialect(), cols, &mut self.params);
        self.parts.push(p);
    }
    pub(crate) fn under(&mut self, col: &str, node: Uuid) {
        let n = self.bind(node);
        self.parts.push(format!(
            "{col} IN (WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = ${n} \
             UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)"
        ));
    }
    pub(crate) fn name_like(&mut self, cols: &[&str], term: &str) {
        let n = self.bind(like_pattern(term));
        let any: Vec<String> = cols
            .iter()
            .map(|c| format!("lower({c}) LIKE lower(${n}) ESCAPE '\\'"))
            .collect();
        self.parts.push(format!("({})", any.join(" OR ")));
    }
    pub(crate) fn sql(&self) -> String {
        if self.parts.is_empty() {
            "1 = 1".into()
        } else {
            self.parts.join(" AND ")
        }
    }
}

/// Run a list: the count, then one page in `order`.
pub(crate) fn page<T>(
    conn: &mut dyn Conn,
    from: &str,
    cols: &str,
    w: Where,
    order: &str,
    paging: Paging,
    map: impl Fn(&Row) -> Result<T>,
) -> Result<Page<T>> {
    let cond = w.sql();
    let total = conn.query_i64(
        &format!("SELECT count(*) FROM {from} WHERE {cond}"),
        &w.params,
    )?;
    let mut params = w.params;
    params.push(paging.limit.into());
    let l = params.len();
    params.push(paging.offset.into());
    let o = params.len();
    let rows = conn.query(
        &format!("SELECT {cols} FROM {from} WHERE {cond} ORDER BY {order} LIMIT ${l} OFFSET ${o}"),
        &params,
    )?;
    Ok(Page {
        items: rows.iter().map(map).collect::<Result<_>>()?,
        total,
        limit: paging.limit,
        offset: paging.offset,
    })
}

// ---------------------------------------------------------------------------------------------
// Placement checks shared by the writes.

struct NodeInfo {
    level: String,
    parent_id: Option<Uuid>,
}

/// An active node within `reach`; anything else is an invalid reference in `field`.
fn reachable_node(conn: &mut dyn Conn, reach: &Reach, id: Uuid, field: &str) -> Result<NodeInfo> {
    node_info(conn, reach, id, field, false)
}

/// [`reachable_node`], optionally accepting a retired node: a record whose node a division
/// merge retired stays editable where it is until someone moves it.
fn node_info(
    conn: &mut dyn Conn,
    reach: &Reach,
    id: Uuid,
    field: &str,
    allow_retired: bool,
) -> Result<NodeInfo> {
    if !reach.contains_node(conn, id)? {
        return Err(StoreError::invalid("record.reference_invalid", field));
    }
    let sql = if allow_retired {
        "SELECT level, parent_id FROM nodes WHERE id = $1"
    } else {
        "SELECT level, parent_id FROM nodes WHERE id = $1 AND status = 'active'"
    };
    let row = conn
        .query_one(sql, &[Value::from(id)])?
        .ok_or_else(|| StoreError::invalid("record.reference_invalid", field))?;
    Ok(NodeInfo {
        level: row.get("level")?,
        parent_id: row.get("parent_id")?,
    })
}

/// A building hangs off a community or a compound; its community follows from that node. A grid,
/// when given, must be one of that community's. A caller whose reach is a grid may place
/// buildings in that grid only. `unmoved`: the building already hangs off this node (which may
/// have been retired since).
fn place_building(
    conn: &mut dyn Conn,
    reach: &Reach,
    node_id: Uuid,
    grid_id: Option<Uuid>,
    unmoved: bool,
) -> Result<Uuid> {
    let by_grid = grid_id.is_some_and(|g| reach.grids.contains(&g));
    let everywhere = Reach {
        all: true,
        ..Reach::default()
    };
    let reach = if by_grid { &everywhere } else { reach };
    let node = node_info(conn, reach, node_id, "node_id", unmoved)?;
    let community_id = match node.level.as_str() {
        "community" => node_id,
        "compound" => node
            .parent_id
            .ok_or_else(|| StoreError::Backend("compound without a parent".into()))?,
        _ => return Err(StoreError::invalid("building.node_level", "node_id")),
    };
    if let Some(g) = grid_id {
        let n = conn.query_i64(
            "SELECT count(*) FROM grids WHERE id = $1 AND community_id = $2",
            &[Value::from(g), Value::from(community_id)],
        )?;
        if n == 0 {
            return Err(StoreError::invalid("grid.not_in_community", "grid_id"));
        }
    }
    Ok(community_id)
}

fn ensure_none(conn: &mut dyn Conn, sql: &str, id: Uuid, code: &'static str) -> Result<()> {
    if conn.query_i64(sql, &[Value::from(id)])? > 0 {
        return Err(StoreError::Conflict {
            code,
            detail: format!("{code}: {id}"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Buildings.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Building {
    pub id: Uuid,
    pub node_id: Uuid,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub name: String,
    pub address: Option<String>,
    pub floors: Option<i64>,
    pub location: Option<Location>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const BUILDING_COLS: &str =
    "b.id, b.node_id, b.community_id, b.grid_id, b.name, b.address, b.floors, \
    b.lon, b.lat, b.source_crs, b.created_at, b.updated_at";

impl Building {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            community_id: r.get("community_id")?,
            grid_id: r.get("grid_id")?,
            name: r.get("name")?,
            address: r.get("address")?,
            floors: r.get("floors")?,
            location: location_from_row(r)?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A building as it arrives.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildingInput {
    /// A community, or a compound (小区) under one.
    pub node_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub floors: Option<i64>,
    pub location: Option<LocationInput>,
}

/// Changes to a building: an absent field stays, `null` clears it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildingPatch {
    #[serde(default, deserialize_with = "present")]
    pub node_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub grid_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub floors: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub location: Option<Option<LocationInput>>,
}

/// A parsed building: every field valid on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBuilding {
    node_id: Uuid,
    grid_id: Option<Uuid>,
    name: String,
    address: Option<String>,
    floors: Option<i64>,
    location: Option<Location>,
}

impl NewBuilding {
    pub fn parse(raw: BuildingInput) -> Result<Self> {
        Ok(Self {
            node_id: required("node_id", raw.node_id)?,
            grid_id: raw.grid_id,
            name: text_required("name", raw.name, NAME_MAX)?,
            address: text_optional("address", raw.address, ADDRESS_MAX)?,
            floors: int_in("floors", raw.floors, 1..=FLOORS_MAX)?,
            location: location(raw.location)?,
        })
    }

    fn from_building(b: &Building) -> Self {
        Self {
            node_id: b.node_id,
            grid_id: b.grid_id,
            name: b.name.clone(),
            address: b.address.clone(),
            floors: b.floors,
            location: b.location,
        }
    }

    fn patched(mut self, p: BuildingPatch) -> Result<Self> {
        if let Some(v) = p.node_id {
            self.node_id = required("node_id", v)?;
        }
        if let Some(v) = p.grid_id {
            self.grid_id = v;
        }
        if let Some(v) = p.name {
            self.name = text_required("name", v, NAME_MAX)?;
        }
        if let Some(v) = p.address {
            self.address = text_optional("address", v, ADDRESS_MAX)?;
        }
        if let Some(v) = p.floors {
            self.floors = int_in("floors", v, 1..=FLOORS_MAX)?;
        }
        if let Some(v) = p.location {
            self.location = location(v)?;
        }
        Ok(self)
    }

    fn cols(&self, community_id: Uuid) -> Vec<(&'static str, Value)> {
        let mut c = vec![
            ("node_id", self.node_id.into()),
            ("community_id", community_id.into()),
            ("grid_id", self.grid_id.into()),
            ("name", self.name.as_str().into()),
            ("address", self.address.clone().into()),
            ("floors", self.floors.into()),
        ];
        c.extend(location_cols(self.location));
        c
    }
}

const BUILDING_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "b.node_id",
    grid: Some("b.grid_id"),
    household: None,
};

fn load_building(
    conn: &mut dyn Conn,
    caller: &Caller,
    p: Permission,
    id: Uuid,
) -> Result<Building> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("b.id = ${n}"));
    w.scope(conn, &caller.reach(p), BUILDING_SCOPE);
    let row = conn
        .query_one(
            &format!("SELECT {BUILDING_COLS} FROM buildings b WHERE {}", w.sql()),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Building::from_row(&row)
}

pub fn create_building(tx: &mut Tx, caller: &Caller, new: &NewBuilding) -> Result<Building> {
    let reach = caller.reach(Permission::WriteBase);
    let community_id = place_building(tx.conn(), &reach, new.node_id, new.grid_id, false)?;
    let id = tx.new_id();
    let now = tx.now();
    let mut cols = vec![("id", id.into())];
    cols.extend(new.cols(community_id));
    cols.push(("created_at", now.into()));
    cols.push(("updated_at", now.into()));
    let row = tx.insert("buildings", &cols)?;
    Building::from_row(&row)
}

pub fn get_building(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Building> {
    load_building(conn, caller, Permission::ReadBase, id)
}

pub fn update_building(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: BuildingPatch,
) -> Result<Building> {
    let current = load_building(tx.conn(), caller, Permission::WriteBase, id)?;
    let next = NewBuilding::from_building(&current).patched(patch)?;
    let reach = caller.reach(Permission::WriteBase);
    let unmoved = next.node_id == current.node_id;
    let community_id = place_building(tx.conn(), &reach, next.node_id, next.grid_id, unmoved)?;
    let mut cols = next.cols(community_id);
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("buildings", id, &cols)?;
    Building::from_row(&row)
}

/// Delete an empty building; one with units, dwellings or households is a conflict.
pub fn delete_building(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_building(tx.conn(), caller, Permission::WriteBase, id)?;
    ensure_none(
        tx.conn(),
        "SELECT (SELECT count(*) FROM units WHERE building_id = $1) + \
         (SELECT count(*) FROM dwellings WHERE building_id = $1)",
        id,
        "building.not_empty",
    )?;
    tx.delete("buildings", id)
}

/// A building list query as it arrives.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BuildingQuery {
    /// Any node: buildings in its subtree (e.g. every building of a street).
    pub under: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    /// Name or address substring.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildingFilter {
    pub under: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub q: Option<String>,
    pub paging: Paging,
}

impl BuildingFilter {
    pub fn parse(raw: BuildingQuery) -> Result<Self> {
        Ok(Self {
            under: raw.under,
            grid_id: raw.grid_id,
            q: search_term(raw.q)?,
            paging: Paging::parse(PageInput {
                limit: raw.limit,
                offset: raw.offset,
            })?,
        })
    }
}

pub fn list_buildings(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &BuildingFilter,
) -> Result<Page<Building>> {
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadBase), BUILDING_SCOPE);
    if let Some(u) = f.under {
        w.under("b.node_id", u);
    }
    if let Some(g) = f.grid_id {
        let n = w.bind(g);
        w.push(format!("b.grid_id = ${n}"));
    }
    if let Some(q) = &f.q {
        w.name_like(&["b.name", "b.address"], q);
    }
    page(
        conn,
        "buildings b",
        BUILDING_COLS,
        w,
        "b.name, b.id",
        f.paging,
        Building::from_row,
    )
}

// ---------------------------------------------------------------------------------------------
// Units (单元).

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unit {
    pub id: Uuid,
    pub building_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const UNIT_COLS: &str = "u.id, u.building_id, u.name, u.created_at, u.updated_at";

impl Unit {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            building_id: r.get("building_id")?,
            name: r.get("name")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUnit {
    name: String,
}

impl NewUnit {
    pub fn parse(raw: UnitInput) -> Result<Self> {
        Ok(Self {
            name: text_required("name", raw.name, UNIT_NAME_MAX)?,
        })
    }
}

fn load_unit(conn: &mut dyn Conn, caller: &Caller, p: Permission, id: Uuid) -> Result<Unit> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("u.id = ${n}"));
    w.scope(conn, &caller.reach(p), BUILDING_SCOPE);
    let row = conn
        .query_one(
            &format!(
                "SELECT {UNIT_COLS} FROM units u JOIN buildings b ON b.id = u.building_id WHERE {}",
                w.sql()
            ),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Unit::from_row(&row)
}

pub fn create_unit(tx: &mut Tx, caller: &Caller, building_id: Uuid, new: &NewUnit) -> Result<Unit> {
    load_building(tx.conn(), caller, Permission::WriteBase, building_id)?;
    let id = tx.new_id();
    let now = tx.now();
    let row = tx.insert(
        "units",
        &[
            ("id", id.into()),
            ("building_id", building_id.into()),
            ("name", new.name.as_str().into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Unit::from_row(&row)
}

pub fn get_unit(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Unit> {
    load_unit(conn, caller, Permission::ReadBase, id)
}

/// Rename a unit (a unit never moves between buildings).
pub fn update_unit(tx: &mut Tx, caller: &Caller, id: Uuid, new: &NewUnit) -> Result<Unit> {
    load_unit(tx.conn(), caller, Permission::WriteBase, id)?;
    let now = tx.now();
    let row = tx.update(
        "units",
        id,
        &[
            ("name", new.name.as_str().into()),
            ("updated_at", now.into()),
        ],
    )?;
    Unit::from_row(&row)
}

/// Delete a unit without dwellings.
pub fn delete_unit(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_unit(tx.conn(), caller, Permission::WriteBase, id)?;
    ensure_none(
        tx.conn(),
        "SELECT count(*) FROM dwellings WHERE unit_id = $1",
        id,
        "unit.not_empty",
    )?;
    tx.delete("units", id)
}

/// The units of a building, by name.
pub fn list_units(conn: &mut dyn Conn, caller: &Caller, building_id: Uuid) -> Result<Vec<Unit>> {
    load_building(conn, caller, Permission::ReadBase, building_id)?;
    let rows = conn.query(
        &format!("SELECT {UNIT_COLS} FROM units u WHERE u.building_id = $1 ORDER BY u.name, u.id"),
        &[Value::from(building_id)],
    )?;
    rows.iter().map(Unit::from_row).collect()
}

// ---------------------------------------------------------------------------------------------
// Dwellings (户/房屋).

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dwelling {
    pub id: Uuid,
    pub building_id: Uuid,
    pub unit_id: Option<Uuid>,
    pub number: String,
    pub floor: Option<i64>,
    pub area_m2: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const DWELLING_COLS: &str =
    "d.id, d.building_id, d.unit_id, d.number, d.floor, d.area_m2, d.created_at, d.updated_at";

impl Dwelling {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            building_id: r.get("building_id")?,
            unit_id: r.get("unit_id")?,
            number: r.get("number")?,
            floor: r.get("floor")?,
            area_m2: r.get("area_m2")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DwellingInput {
    pub unit_id: Option<Uuid>,
    /// The door number as written (`301`, `2-1-301`).
    pub number: Option<String>,
    /// Negative for basements.
    pub floor: Option<i64>,
    pub area_m2: Option<f64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DwellingPatch {
    #[serde(default, deserialize_with = "present")]
    pub unit_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub number: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub floor: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub area_m2: Option<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDwelling {
    unit_id: Option<Uuid>,
    number: String,
    floor: Option<i64>,
    area_m2: Option<f64>,
}

impl NewDwelling {
    pub fn parse(raw: DwellingInput) -> Result<Self> {
        Ok(Self {
            unit_id: raw.unit_id,
            number: text_required("number", raw.number, NUMBER_MAX)?,
            floor: int_in("floor", raw.floor, FLOOR_MIN..=FLOORS_MAX)?,
            area_m2: area("area_m2", raw.area_m2)?,
        })
    }

    fn patched(mut self, p: DwellingPatch) -> Result<Self> {
        if let Some(v) = p.unit_id {
            self.unit_id = v;
        }
        if let Some(v) = p.number {
            self.number = text_required("number", v, NUMBER_MAX)?;
        }
        if let Some(v) = p.floor {
            self.floor = int_in("floor", v, FLOOR_MIN..=FLOORS_MAX)?;
        }
        if let Some(v) = p.area_m2 {
            self.area_m2 = area("area_m2", v)?;
        }
        Ok(self)
    }

    fn cols(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("unit_id", self.unit_id.into()),
            ("number", self.number.as_str().into()),
            ("floor", self.floor.into()),
            ("area_m2", self.area_m2.into()),
        ]
    }
}

fn check_unit_in(conn: &mut dyn Conn, unit_id: Option<Uuid>, building_id: Uuid) -> Result<()> {
    if let Some(u) = unit_id {
        let n = conn.query_i64(
            "SELECT count(*) FROM units WHERE id = $1 AND building_id = $2",
            &[Value::from(u), Value::from(building_id)],
        )?;
        if n == 0 {
            return Err(StoreError::invalid("unit.not_in_building", "unit_id"));
        }
    }
    Ok(())
}

fn load_dwelling(
    conn: &mut dyn Conn,
    caller: &Caller,
    p: Permission,
    id: Uuid,
) -> Result<Dwelling> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("d.id = ${n}"));
    w.scope(conn, &caller.reach(p), BUILDING_SCOPE);
    let row = conn
        .query_one(
            &format!(
                "SELECT {DWELLING_COLS} FROM dwellings d JOIN buildings b ON b.id = d.building_id WHERE {}",
                w.sql()
            ),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Dwelling::from_row(&row)
}

pub fn create_dwelling(
    tx: &mut Tx,
    caller: &Caller,
    building_id: Uuid,
    new: &NewDwelling,
) -> Result<Dwelling> {
    load_building(tx.conn(), caller, Permission::WriteBase, building_id)?;
    check_unit_in(tx.conn(), new.unit_id, building_id)?;
    let id = tx.new_id();
    let now = tx.now();
    let mut cols = vec![("id", id.into()), ("building_id", building_id.into())];
    cols.extend(new.cols());
    cols.push(("created_at", now.into()));
    cols.push(("updated_at", now.into()));
    let row = tx.insert("dwellings", &cols)?;
    Dwelling::from_row(&row)
}

pub fn get_dwelling(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Dwelling> {
    load_dwelling(conn, caller, Permission::ReadBase, id)
}

pub fn update_dwelling(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: DwellingPatch,
) -> Result<Dwelling> {
    let cur = load_dwelling(tx.conn(), caller, Permission::WriteBase, id)?;
    let next = NewDwelling {
        unit_id: cur.unit_id,
        number: cur.number.clone(),
        floor: cur.floor,
        area_m2: cur.area_m2,
    }
    .patched(patch)?;
    check_unit_in(tx.conn(), next.unit_id, cur.building_id)?;
    let mut cols = next.cols();
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("dwellings", id, &cols)?;
    Dwelling::from_row(&row)
}

/// Delete a dwelling no household lives in.
pub fn delete_dwelling(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_dwelling(tx.conn(), caller, Permission::WriteBase, id)?;
    ensure_none(
        tx.conn(),
        "SELECT count(*) FROM households WHERE dwelling_id = $1",
        id,
        "dwelling.in_use",
    )?;
    tx.delete("dwellings", id)
}

/// A building's dwellings, optionally of one unit, by floor and number.
pub fn list_dwellings(
    conn: &mut dyn Conn,
    caller: &Caller,
    building_id: Uuid,
    unit_id: Option<Uuid>,
    paging: Paging,
) -> Result<Page<Dwelling>> {
    load_building(conn, caller, Permission::ReadBase, building_id)?;
    let mut w = Where::new();
    let n = w.bind(building_id);
    w.push(format!("d.building_id = ${n}"));
    if let Some(u) = unit_id {
        let n = w.bind(u);
        w.push(format!("d.unit_id = ${n}"));
    }
    page(
        conn,
        "dwellings d",
        DWELLING_COLS,
        w,
        "d.floor, d.number, d.id",
        paging,
        Dwelling::from_row,
    )
}

// ---------------------------------------------------------------------------------------------
// Facilities.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Facility {
    pub id: Uuid,
    pub node_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: FacilityKind,
    pub name: String,
    pub location: Option<Location>,
    pub capacity: Option<i64>,
    pub area_m2: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: FacilityStatus,
    /// Kind-specific details (a hydrant's pressure class, a depot's keeper): a JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attrs: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const FACILITY_COLS: &str =
    "f.id, f.node_id, f.kind, f.name, f.lon, f.lat, f.source_crs, f.capacity, \
    f.area_m2, f.status, f.attrs, f.created_at, f.updated_at";

impl Facility {
    fn from_row(r: &Row) -> Result<Self> {
        let kind: String = r.get("kind")?;
        let status: String = r.get("status")?;
        let attrs = match r.get::<Option<serde_json::Value>>("attrs")? {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            kind: kind
                .parse()
                .map_err(|_| StoreError::Backend(format!("stored facility kind {kind} unknown")))?,
            name: r.get("name")?,
            location: location_from_row(r)?,
            capacity: r.get("capacity")?,
            area_m2: r.get("area_m2")?,
            status: status.parse().map_err(|_| {
                StoreError::Backend(format!("stored facility status {status} unknown"))
            })?,
            attrs,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityInput {
    pub node_id: Option<Uuid>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub location: Option<LocationInput>,
    /// People it holds (shelters: required).
    pub capacity: Option<i64>,
    pub area_m2: Option<f64>,
    /// Defaults to `active`.
    pub status: Option<String>,
    pub attrs: Option<serde_json::Value>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityPatch {
    #[serde(default, deserialize_with = "present")]
    pub node_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub kind: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub location: Option<Option<LocationInput>>,
    #[serde(default, deserialize_with = "present")]
    pub capacity: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub area_m2: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub attrs: Option<Option<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewFacility {
    node_id: Uuid,
    kind: FacilityKind,
    name: String,
    location: Option<Location>,
    capacity: Option<i64>,
    area_m2: Option<f64>,
    status: FacilityStatus,
    attrs: serde_json::Map<String, serde_json::Value>,
}

fn facility_kind(raw: Option<String>) -> Result<FacilityKind> {
    parse_enum("kind", &required("kind", raw)?)
}

fn facility_status(raw: Option<String>) -> Result<FacilityStatus> {
    match raw {
        None => Ok(FacilityStatus::Active),
        Some(s) => parse_enum("status", &s),
    }
}

fn attrs(raw: Option<serde_json::Value>) -> Result<serde_json::Map<String, serde_json::Value>> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(m)) => {
            if serde_json::Value::Object(m.clone()).to_string().len() > ATTRS_MAX_BYTES {
                return Err(StoreError::invalid("value.too_long", "attrs"));
            }
            Ok(m)
        }
        Some(_) => Err(StoreError::invalid("value.invalid", "attrs")),
    }
}

impl NewFacility {
    pub fn parse(raw: FacilityInput) -> Result<Self> {
        Self {
            node_id: required("node_id", raw.node_id)?,
            kind: facility_kind(raw.kind)?,
            name: text_required("name", raw.name, NAME_MAX)?,
            location: location(raw.location)?,
            capacity: int_in("capacity", raw.capacity, 0..=i64::MAX)?,
            area_m2: area("area_m2", raw.area_m2)?,
            status: facility_status(raw.status)?,
            attrs: attrs(raw.attrs)?,
        }
        .checked()
    }

    /// The rules across fields, checked after parsing and after every patch.
    fn checked(self) -> Result<Self> {
        if self.kind == FacilityKind::Shelter && self.capacity.is_none_or(|c| c <= 0) {
            return Err(StoreError::invalid(
                "facility.shelter_capacity_required",
                "capacity",
            ));
        }
        Ok(self)
    }

    fn from_facility(f: &Facility) -> Self {
        Self {
            node_id: f.node_id,
            kind: f.kind,
            name: f.name.clone(),
            location: f.location,
            capacity: f.capacity,
            area_m2: f.area_m2,
            status: f.status,
            attrs: f.attrs.clone(),
        }
    }

    fn patched(mut self, p: FacilityPatch) -> Result<Self> {
        if let Some(v) = p.node_id {
            self.node_id = required("node_id", v)?;
        }
        if let Some(v) = p.kind {
            self.kind = facility_kind(v)?;
        }
        if let Some(v) = p.name {
            self.name = text_required("name", v, NAME_MAX)?;
        }
        if let Some(v) = p.location {
            self.location = location(v)?;
        }
        if let Some(v) = p.capacity {
            self.capacity = int_in("capacity", v, 0..=i64::MAX)?;
        }
        if let Some(v) = p.area_m2 {
            self.area_m2 = area("area_m2", v)?;
        }
        if let Some(v) = p.status {
            // Absent means active on a new facility; in a patch, null is not a status.
            self.status = facility_status(Some(required("status", v)?))?;
        }
        if let Some(v) = p.attrs {
            self.attrs = attrs(v)?;
        }
        self.checked()
    }

    fn cols(&self) -> Vec<(&'static str, Value)> {
        let mut c = vec![
            ("node_id", self.node_id.into()),
            ("kind", self.kind.as_str().into()),
            ("name", self.name.as_str().into()),
            ("capacity", self.capacity.into()),
            ("area_m2", self.area_m2.into()),
            ("status", self.status.as_str().into()),
            (
                "attrs",
                serde_json::Value::Object(self.attrs.clone()).into(),
            ),
        ];
        c.extend(location_cols(self.location));
        c
    }
}

const FACILITY_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "f.node_id",
    grid: None,
    household: None,
};

fn load_facility(
    conn: &mut dyn Conn,
    caller: &Caller,
    p: Permission,
    id: Uuid,
) -> Result<Facility> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("f.id = ${n}"));
    w.scope(conn, &caller.reach(p), FACILITY_SCOPE);
    let row = conn
        .query_one(
            &format!("SELECT {FACILITY_COLS} FROM facilities f WHERE {}", w.sql()),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Facility::from_row(&row)
}

pub fn create_facility(tx: &mut Tx, caller: &Caller, new: &NewFacility) -> Result<Facility> {
    reachable_node(
        tx.conn(),
        &caller.reach(Permission::WriteBase),
        new.node_id,
        "node_id",
    )?;
    let id = tx.new_id();
    let now = tx.now();
    let mut cols = vec![("id", id.into())];
    cols.extend(new.cols());
    cols.push(("created_at", now.into()));
    cols.push(("updated_at", now.into()));
    let row = tx.insert("facilities", &cols)?;
    Facility::from_row(&row)
}

pub fn get_facility(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Facility> {
    load_facility(conn, caller, Permission::ReadBase, id)
}

pub fn update_facility(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: FacilityPatch,
) -> Result<Facility> {
    let cur = load_facility(tx.conn(), caller, Permission::WriteBase, id)?;
    let next = NewFacility::from_facility(&cur).patched(patch)?;
    if next.node_id != cur.node_id {
        reachable_node(
            tx.conn(),
            &caller.reach(Permission::WriteBase),
            next.node_id,
            "node_id",
        )?;
    }
    let mut cols = next.cols();
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("facilities", id, &cols)?;
    Facility::from_row(&row)
}

pub fn delete_facility(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_facility(tx.conn(), caller, Permission::WriteBase, id)?;
    tx.delete("facilities", id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FacilityQuery {
    pub under: Option<Uuid>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FacilityFilter {
    pub under: Option<Uuid>,
    pub kind: Option<FacilityKind>,
    pub status: Option<FacilityStatus>,
    pub q: Option<String>,
    pub paging: Paging,
}

impl FacilityFilter {
    pub fn parse(raw: FacilityQuery) -> Result<Self> {
        Ok(Self {
            under: raw.under,
            kind: raw
                .kind
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_enum("kind", &s))
                .transpose()?,
            status: raw
                .status
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_enum("status", &s))
                .transpose()?,
            q: search_term(raw.q)?,
            paging: Paging::parse(PageInput {
                limit: raw.limit,
                offset: raw.offset,
            })?,
        })
    }
}

fn facility_where(conn: &dyn Conn, caller: &Caller, f: &FacilityFilter) -> Where {
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadBase), FACILITY_SCOPE);
    if let Some(u) = f.under {
        w.under("f.node_id", u);
    }
    if let Some(k) = f.kind {
        let n = w.bind(k.as_str());
        w.push(format!("f.kind = ${n}"));
    }
    if let Some(s) = f.status {
        let n = w.bind(s.as_str());
        w.push(format!("f.status = ${n}"));
    }
    if let Some(q) = &f.q {
        w.name_like(&["f.name"], q);
    }
    w
}

pub fn list_facilities(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &FacilityFilter,
) -> Result<Page<Facility>> {
    let w = facility_where(conn, caller, f);
    page(
        conn,
        "facilities f",
        FACILITY_COLS,
        w,
        "f.name, f.id",
        f.paging,
        Facility::from_row,
    )
}

/// The facilities with a location, for a map layer: the filter without its paging, at most
/// [`MAX_LAYER`] of them (`truncated` says when there were more).
pub fn facility_layer(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &FacilityFilter,
) -> Result<(Vec<Facility>, bool)> {
    let mut w = facility_where(conn, caller, f);
    w.push("f.lon IS NOT NULL AND f.lat IS NOT NULL".into());
    let p = page(
        conn,
        "facilities f",
        FACILITY_COLS,
        w,
        "f.kind, f.name, f.id",
        Paging {
            limit: MAX_LAYER,
            offset: 0,
        },
        Facility::from_row,
    )?;
    let truncated = p.total > MAX_LAYER;
    Ok((p.items, truncated))
}

// ---------------------------------------------------------------------------------------------
// Duties (职责清单).

/// Who is responsible for what at a node; the phone only as a mask (see [`unmask_duty`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Duty {
    pub id: Uuid,
    pub node_id: Uuid,
    pub duty: String,
    pub responsible: String,
    pub user_id: Option<Uuid>,
    pub phone_mask: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const DUTY_COLS: &str = "d.id, d.key_id, d.node_id, d.duty, d.responsible, d.user_id, d.phone_ct, \
    d.phone_mask, d.created_at, d.updated_at";

impl Duty {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            duty: r.get("duty")?,
            responsible: r.get("responsible")?,
            user_id: r.get("user_id")?,
            phone_mask: r.get("phone_mask")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyInput {
    pub node_id: Option<Uuid>,
    /// What the duty is (`防汛值班`, `燃气安全巡查`).
    pub duty: Option<String>,
    /// The person responsible, by name.
    pub responsible: Option<String>,
    /// Their account, when they have one.
    pub user_id: Option<Uuid>,
    pub phone: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyPatch {
    #[serde(default, deserialize_with = "present")]
    pub node_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub duty: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub responsible: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub user_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDuty {
    node_id: Uuid,
    duty: String,
    responsible: String,
    user_id: Option<Uuid>,
    phone: Option<Phone>,
}

fn phone(raw: Option<String>) -> Result<Option<Phone>> {
    match raw {
        Some(s) if !s.trim().is_empty() => Phone::parse(&s).map(Some).map_err(|e| domain("", &e)),
        _ => Ok(None),
    }
}

impl NewDuty {
    pub fn parse(raw: DutyInput) -> Result<Self> {
        Ok(Self {
            node_id: required("node_id", raw.node_id)?,
            duty: text_required("duty", raw.duty, DUTY_MAX)?,
            responsible: text_required("responsible", raw.responsible, RESPONSIBLE_MAX)?,
            user_id: raw.user_id,
            phone: phone(raw.phone)?,
        })
    }
}

fn check_user(conn: &mut dyn Conn, user_id: Option<Uuid>) -> Result<()> {
    if let Some(u) = user_id {
        if conn.query_i64(
            "SELECT count(*) FROM users WHERE id = $1",
            &[Value::from(u)],
        )? == 0
        {
            return Err(StoreError::invalid("record.reference_invalid", "user_id"));
        }
    }
    Ok(())
}

/// Seal a phone for a duty: ciphertext and mask, or nulls.
fn sealed_phone(
    tx: &mut Tx,
    key_id: Uuid,
    p: Option<&Phone>,
) -> Result<[(&'static str, Value); 2]> {
    Ok(match p {
        Some(p) => [
            (
                "phone_ct",
                tx.seal(key_id, PHONE_FIELD, p.as_str().as_bytes())?.into(),
            ),
            ("phone_mask", mask_phone(p).into()),
        ],
        None => [("phone_ct", Value::Null), ("phone_mask", Value::Null)],
    })
}

const DUTY_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "d.node_id",
    grid: None,
    household: None,
};

fn load_duty_row(conn: &mut dyn Conn, caller: &Caller, p: Permission, id: Uuid) -> Result<Row> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("d.id = ${n}"));
    w.scope(conn, &caller.reach(p), DUTY_SCOPE);
    conn.query_one(
        &format!("SELECT {DUTY_COLS} FROM duties d WHERE {}", w.sql()),
        &w.params,
    )?
    .ok_or(StoreError::NotFound)
}

/// Create a duty; its phone is sealed under a data key of its own.
pub fn create_duty(tx: &mut Tx, caller: &Caller, new: &NewDuty) -> Result<Duty> {
    reachable_node(
        tx.conn(),
        &caller.reach(Permission::WriteBase),
        new.node_id,
        "node_id",
    )?;
    check_user(tx.conn(), new.user_id)?;
    let id = tx.new_id();
    let now = tx.now();
    let key_id = tx.new_data_key()?;
    let phone = sealed_phone(tx, key_id, new.phone.as_ref())?;
    let mut cols = vec![
        ("id", id.into()),
        ("key_id", key_id.into()),
        ("node_id", new.node_id.into()),
        ("duty", new.duty.as_str().into()),
        ("responsible", new.responsible.as_str().into()),
        ("user_id", new.user_id.into()),
    ];
    cols.extend(phone);
    cols.push(("created_at", now.into()));
    cols.push(("updated_at", now.into()));
    let row = tx.insert("duties", &cols)?;
    Duty::from_row(&row)
}

/// One duty, its phone masked.
pub fn get_duty(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Duty> {
    Duty::from_row(&load_duty_row(conn, caller, Permission::ReadBase, id)?)
}

/// A duty holder's phone in clear.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnmaskedDuty {
    pub phone: Option<String>,
}

/// The plaintext phone of a duty. Needs [`Permission::Unmask`] on the duty's node
/// (`Forbidden("duty.unmask_not_allowed")` when the duty is visible but that is missing); the
/// caller of this function must audit it.
pub fn unmask_duty(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    id: Uuid,
) -> Result<UnmaskedDuty> {
    let row = load_duty_row(conn, caller, Permission::ReadBase, id)?;
    let node: Uuid = row.get("node_id")?;
    if !caller.reach(Permission::Unmask).contains_node(conn, node)? {
        return Err(StoreError::Forbidden("duty.unmask_not_allowed"));
    }
    let phone = match row.get::<Option<Vec<u8>>>("phone_ct")? {
        Some(ct) => Some(env.keys.open_string(conn, PHONE_FIELD, &ct)?),
        None => None,
    };
    Ok(UnmaskedDuty { phone })
}

pub fn update_duty(tx: &mut Tx, caller: &Caller, id: Uuid, patch: DutyPatch) -> Result<Duty> {
    let row = load_duty_row(tx.conn(), caller, Permission::WriteBase, id)?;
    let cur = Duty::from_row(&row)?;
    let key_id: Uuid = row.get("key_id")?;
    let mut cols: Vec<(&'static str, Value)> = Vec::new();
    if let Some(v) = patch.node_id {
        let node = required("node_id", v)?;
        if node != cur.node_id {
            reachable_node(
                tx.conn(),
                &caller.reach(Permission::WriteBase),
                node,
                "node_id",
            )?;
        }
        cols.push(("node_id", node.into()));
    }
    if let Some(v) = patch.duty {
        cols.push(("duty", text_required("duty", v, DUTY_MAX)?.into()));
    }
    if let Some(v) = patch.responsible {
        cols.push((
            "responsible",
            text_required("responsible", v, RESPONSIBLE_MAX)?.into(),
        ));
    }
    if let Some(v) = patch.user_id {
        check_user(tx.conn(), v)?;
        cols.push(("user_id", v.into()));
    }
    if let Some(v) = patch.phone {
        let p = phone(v)?;
        cols.extend(sealed_phone(tx, key_id, p.as_ref())?);
    }
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("duties", id, &cols)?;
    Duty::from_row(&row)
}

/// Delete a duty and shred its data key: the holder's phone goes with it, from the change-log
/// history too.
pub fn delete_duty(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    let row = load_duty_row(tx.conn(), caller, Permission::WriteBase, id)?;
    let key_id: Uuid = row.get("key_id")?;
    tx.delete("duties", id)?;
    tx.env().keys.shred(tx.conn(), key_id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DutyQuery {
    pub under: Option<Uuid>,
    /// Substring of the duty or the responsible person's name.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DutyFilter {
    pub under: Option<Uuid>,
    pub q: Option<String>,
    pub paging: Paging,
}

impl DutyFilter {
    pub fn parse(raw: DutyQuery) -> Result<Self> {
        Ok(Self {
            under: raw.under,
            q: search_term(raw.q)?,
            paging: Paging::parse(PageInput {
                limit: raw.limit,
                offset: raw.offset,
            })?,
        })
    }
}

/// Duties in reach, phones masked.
pub fn list_duties(conn: &mut dyn Conn, caller: &Caller, f: &DutyFilter) -> Result<Page<Duty>> {
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadBase), DUTY_SCOPE);
    if let Some(u) = f.under {
        w.under("d.node_id", u);
    }
    if let Some(q) = &f.q {
        w.name_like(&["d.duty", "d.responsible"], q);
    }
    page(
        conn,
        "duties d",
        DUTY_COLS,
        w,
        "d.node_id, d.duty, d.id",
        f.paging,
        Duty::from_row,
    )
}

// ---------------------------------------------------------------------------------------------
// Whole lists for exports.

/// A dwelling with what an export shows beside it: its building's name and location (the point a
/// map or GeoJSON places it at) and its unit's name.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedDwelling {
    pub dwelling: Dwelling,
    pub building_name: String,
    pub unit_name: Option<String>,
    pub location: Option<Location>,
}

/// Every dwelling within the caller's read reach (optionally under a node), by building, floor
/// and number, one page at a time (`limit` up to [`MAX_LAYER`]).
pub fn list_all_dwellings(
    conn: &mut dyn Conn,
    caller: &Caller,
    under: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Page<ListedDwelling>> {
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadBase), BUILDING_SCOPE);
    if let Some(u) = under {
        w.under("b.node_id", u);
    }
    page(
        conn,
        "dwellings d JOIN buildings b ON b.id = d.building_id LEFT JOIN units u ON u.id = d.unit_id",
        &format!(
            "{DWELLING_COLS}, b.name AS building_name, b.lon, b.lat, b.source_crs, u.name AS unit_name"
        ),
        w,
        "b.name, b.id, d.floor, d.number, d.id",
        Paging {
            limit: limit.clamp(1, MAX_LAYER),
            offset: offset.max(0),
        },
        |r| {
            Ok(ListedDwelling {
                dwelling: Dwelling::from_row(r)?,
                building_name: r.get("building_name")?,
                unit_name: r.get("unit_name")?,
                location: location_from_row(r)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> (&'static str, String) {
        match r {
            Err(StoreError::Invalid { code, field }) => (code, field),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("1号楼"), "%1号楼%");
        assert_eq!(like_pattern("50%_\\"), "%50\\%\\_\\\\%");
    }

    #[test]
    fn location_names_its_fields() {
        let l = |lon, lat, crs: Option<&str>| {
            location(Some(LocationInput {
                lon,
                lat,
                crs: crs.map(str::to_owned),
            }))
        };
        assert_eq!(
            err_of(l(Some(1.0), Some(1.0), None)),
            ("value.required", "location.crs".into())
        );
        assert_eq!(
            err_of(l(Some(1.0), Some(1.0), Some("mars"))),
            ("value.invalid", "location.crs".into())
        );
        assert_eq!(
            err_of(l(None, Some(1.0), Some("wgs84"))),
            ("value.required", "location.lon".into())
        );
        assert_eq!(
            err_of(l(Some(1.0), Some(91.0), Some("wgs84"))),
            ("geo.out_of_range", "location.lat".into())
        );
        let ok = l(Some(104.0657), Some(30.6595), Some("cgcs2000"))
            .expect("valid")
            .expect("some");
        assert_eq!(
            (ok.lon, ok.lat, ok.source_crs),
            (104.0657, 30.6595, Crs::Cgcs2000)
        );
    }

    #[test]
    fn facility_rules() {
        let base = || FacilityInput {
            node_id: Some(Uuid::nil()),
            kind: Some("shelter".into()),
            name: Some("社区广场".into()),
            capacity: Some(300),
            ..FacilityInput::default()
        };
        assert!(NewFacility::parse(base()).is_ok());
        let mut r = base();
        r.capacity = None;
        assert_eq!(
            err_of(NewFacility::parse(r)),
            ("facility.shelter_capacity_required", "capacity".into())
        );
        let mut r = base();
        r.capacity = Some(-1);
        assert_eq!(
            err_of(NewFacility::parse(r)),
            ("value.invalid", "capacity".into())
        );
        let mut r = base();
        r.attrs = Some(serde_json::json!([1, 2]));
        assert_eq!(
            err_of(NewFacility::parse(r)),
            ("value.invalid", "attrs".into())
        );
        let mut r = base();
        r.kind = Some("volcano".into());
        assert_eq!(
            err_of(NewFacility::parse(r)),
            ("value.invalid", "kind".into())
        );
        let mut r = base();
        r.area_m2 = Some(f64::NAN);
        assert_eq!(
            err_of(NewFacility::parse(r)),
            ("value.invalid", "area_m2".into())
        );
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let p: BuildingPatch =
            serde_json::from_str(r#"{"address": null, "name": "2号楼"}"#).expect("parses");
        assert_eq!(p.address, Some(None));
        assert_eq!(p.name, Some(Some("2号楼".into())));
        assert_eq!(p.floors, None);
        assert!(serde_json::from_str::<BuildingPatch>(r#"{"adress": "x"}"#).is_err());
    }

    #[test]
    fn paging_bounds() {
        assert_eq!(
            Paging::parse(PageInput::default()).expect("ok"),
            Paging::default()
        );
        assert_eq!(
            err_of(Paging::parse(PageInput {
                limit: Some(MAX_LIMIT + 1),
                offset: None
            })),
            ("value.invalid", "limit".into())
        );
        assert_eq!(
            err_of(Paging::parse(PageInput {
                limit: None,
                offset: Some(-1)
            })),
            ("value.invalid", "offset".into())
        );
    }
}
