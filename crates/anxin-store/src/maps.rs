//! Maps: grid outlines, features drawn on the map (named areas and points), and the layers the
//! map page shows.
//!
//! Geometry arrives as a GeoJSON geometry object in the coordinate system of the base layer it
//! was drawn on (WGS84/CGCS2000 for 天地图 and offline layers, GCJ-02 for AMap and Tencent). It is
//! parsed into [`Geometry`] — validated (numbers, a closed ring, no self-intersection, inside
//! China) and converted to WGS84 with `anxin_domain::geo` — before anything is written. What is
//! stored is WGS84 GeoJSON text plus the system it was drawn in. Layers go out in the system the
//! base layer needs ([`Geometry::to_crs`]), so the browser never converts coordinates itself.
//!
//! Scope: a feature belongs to a node and is read and written like the node's other base
//! records (`ReadBase`/`WriteBase` on its subtree); a grid's outline like the grid. Outside reach
//! is [`StoreError::NotFound`].
//!
//! A node without a drawn outline (a feature of kind `outline`) gets a derived one: the convex
//! hull of its grids' outlines and its buildings' and facilities' points. The hull is ~30 lines
//! here ([`convex_hull`]); the `geo` crate would bring a concave hull too, but also a large
//! dependency tree (rstar, robust, spade…) for one function on a two-core build machine. The
//! self-intersection check is the plain O(n²) segment test: rings are capped at
//! [`MAX_VERTICES`], so it stays under a few milliseconds.

use std::collections::BTreeMap;

use anxin_domain::geo::{self, Crs, LonLat};
use anxin_domain::roles::Permission;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::places::{self, FacilityFilter, FacilityQuery};
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

/// The most vertices one ring may have: a hand-drawn grid has tens; a surveyed one hundreds.
pub const MAX_VERTICES: usize = 2_000;
/// The most records of one kind a layer carries.
pub const MAX_LAYER: i64 = 10_000;
const NAME_MAX: usize = 100;

/// What a drawn feature is for. `outline` replaces the derived outline of its node.
pub const FEATURE_KINDS: &[&str] = &[
    "area",
    "outline",
    "risk_area",
    "flood_zone",
    "evacuation_area",
    "assembly_point",
    "point",
];

/// A validated geometry in WGS84: a point, or a polygon with one closed outer ring.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Point(LonLat),
    /// The ring, closed (first position repeated last).
    Polygon(Vec<LonLat>),
}

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn position(raw: &Json, field: &str, crs: Crs) -> Result<LonLat> {
    let arr = raw
        .as_array()
        .filter(|a| a.len() == 2 || a.len() == 3)
        .ok_or_else(|| bad("geometry.invalid", field))?;
    let lon = arr[0]
        .as_f64()
        .ok_or_else(|| bad("geometry.invalid", field))?;
    let lat = arr[1]
        .as_f64()
        .ok_or_else(|| bad("geometry.invalid", field))?;
    let p = LonLat::new(lon, lat).map_err(|_| bad("geometry.invalid", field))?;
    let w = geo::to_wgs84(crs, p);
    if !geo::in_china_box(w) {
        return Err(bad("geometry.out_of_bounds", field));
    }
    Ok(w)
}

fn orient(a: LonLat, b: LonLat, c: LonLat) -> f64 {
    (b.lon() - a.lon()) * (c.lat() - a.lat()) - (b.lat() - a.lat()) * (c.lon() - a.lon())
}

fn on_segment(a: LonLat, b: LonLat, p: LonLat) -> bool {
    p.lon() >= a.lon().min(b.lon())
        && p.lon() <= a.lon().max(b.lon())
        && p.lat() >= a.lat().min(b.lat())
        && p.lat() <= a.lat().max(b.lat())
}

/// Whether segments `ab` and `cd` share any point (touching counts).
fn segments_meet(a: LonLat, b: LonLat, c: LonLat, d: LonLat) -> bool {
    let (o1, o2, o3, o4) = (
        orient(a, b, c),
        orient(a, b, d),
        orient(c, d, a),
        orient(c, d, b),
    );
    if ((o1 > 0.0 && o2 < 0.0) || (o1 < 0.0 && o2 > 0.0))
        && ((o3 > 0.0 && o4 < 0.0) || (o3 < 0.0 && o4 > 0.0))
    {
        return true;
    }
    (o1 == 0.0 && on_segment(a, b, c))
        || (o2 == 0.0 && on_segment(a, b, d))
        || (o3 == 0.0 && on_segment(c, d, a))
        || (o4 == 0.0 && on_segment(c, d, b))
}

/// A closed ring (first = last) crosses or touches itself: any two edges that are not
/// neighbours meet, or two neighbours fold back onto each other.
fn self_intersects(ring: &[LonLat]) -> bool {
    let n = ring.len() - 1;
    for i in 0..n {
        let (a, b) = (ring[i], ring[i + 1]);
        for j in (i + 1)..n {
            let (c, d) = (ring[j], ring[j + 1]);
            let neighbours = j == i + 1 || (i == 0 && j == n - 1);
            if neighbours {
                // They share one vertex; they must not overlap beyond it (a spike back).
                let shared_is_b = j == i + 1;
                let (far, other) = if shared_is_b { (d, a) } else { (c, b) };
                let pivot = if shared_is_b { b } else { a };
                if orient(a, b, far) == 0.0
                    && orient(c, d, other) == 0.0
                    && ((far.lon() - pivot.lon()) * (other.lon() - pivot.lon())
                        + (far.lat() - pivot.lat()) * (other.lat() - pivot.lat()))
                        > 0.0
                {
                    return true;
                }
            } else if segments_meet(a, b, c, d) {
                return true;
            }
        }
    }
    false
}

impl Geometry {
    /// Parse a GeoJSON geometry object given in `crs`. Errors name the field
    /// (`geometry.coordinates[0][3]`) and say what is wrong.
    pub fn parse(raw: &Json, crs: Crs) -> Result<Geometry> {
        let obj = raw
            .as_object()
            .ok_or_else(|| bad("geometry.invalid", "geometry"))?;
        let ty = obj
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("geometry.invalid", "geometry.type"))?;
        let coords = obj
            .get("coordinates")
            .ok_or_else(|| bad("geometry.invalid", "geometry.coordinates"))?;
        match ty {
            "Point" => Ok(Geometry::Point(position(
                coords,
                "geometry.coordinates",
                crs,
            )?)),
            "Polygon" => {
                let rings = coords
                    .as_array()
                    .ok_or_else(|| bad("geometry.invalid", "geometry.coordinates"))?;
                match rings.len() {
                    0 => return Err(bad("geometry.invalid", "geometry.coordinates")),
                    1 => {}
                    _ => return Err(bad("geometry.holes_unsupported", "geometry.coordinates")),
                }
                let field = "geometry.coordinates[0]";
                let raw_ring = rings[0]
                    .as_array()
                    .ok_or_else(|| bad("geometry.invalid", field))?;
                if raw_ring.len() > MAX_VERTICES + 1 {
                    return Err(bad("geometry.too_many_points", field));
                }
                if raw_ring.len() < 4 {
                    return Err(bad("geometry.too_few_points", field));
                }
                if raw_ring.first() != raw_ring.last() {
                    return Err(bad("geometry.ring_not_closed", field));
                }
                let mut ring: Vec<LonLat> = Vec::with_capacity(raw_ring.len());
                for (i, p) in raw_ring.iter().enumerate() {
                    let p = position(p, &format!("{field}[{i}]"), crs)?;
                    // A double click repeats its vertex: drop exact repeats.
                    if ring.last() != Some(&p) {
                        ring.push(p);
                    }
                }
                if ring.len() < 4 {
                    return Err(bad("geometry.too_few_points", field));
                }
                if self_intersects(&ring) {
                    return Err(bad("geometry.self_intersecting", field));
                }
                Ok(Geometry::Polygon(ring))
            }
            _ => Err(bad("geometry.type_unsupported", "geometry.type")),
        }
    }

    /// The same geometry in `crs` (for a base layer in GCJ-02).
    pub fn to_crs(&self, crs: Crs) -> Geometry {
        match self {
            Geometry::Point(p) => Geometry::Point(geo::from_wgs84(crs, *p)),
            Geometry::Polygon(r) => {
                Geometry::Polygon(r.iter().map(|p| geo::from_wgs84(crs, *p)).collect())
            }
        }
    }

    pub fn to_geojson(&self) -> Json {
        let pos = |p: &LonLat| json!([p.lon(), p.lat()]);
        match self {
            Geometry::Point(p) => json!({ "type": "Point", "coordinates": pos(p) }),
            Geometry::Polygon(r) => json!({
                "type": "Polygon",
                "coordinates": [r.iter().map(pos).collect::<Vec<_>>()],
            }),
        }
    }

    fn points(&self) -> &[LonLat] {
        match self {
            Geometry::Point(p) => std::slice::from_ref(p),
            Geometry::Polygon(r) => r,
        }
    }

    /// Read stored WGS84 GeoJSON (written by this module).
    fn stored(text: &str) -> Result<Geometry> {
        let v: Json = serde_json::from_str(text)
            .map_err(|e| StoreError::Backend(format!("stored geometry is not JSON: {e}")))?;
        Geometry::parse(&v, Crs::Wgs84)
            .map_err(|e| StoreError::Backend(format!("stored geometry invalid: {e}")))
    }
}

/// The convex hull (Andrew's monotone chain), closed; `None` under three non-collinear points.
pub fn convex_hull(points: &[LonLat]) -> Option<Vec<LonLat>> {
    let mut pts: Vec<LonLat> = points.to_vec();
    pts.sort_by(|a, b| {
        a.lon()
            .total_cmp(&b.lon())
            .then(a.lat().total_cmp(&b.lat()))
    });
    pts.dedup();
    if pts.len() < 3 {
        return None;
    }
    let mut hull: Vec<LonLat> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &LonLat>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && orient(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    if hull.len() < 3 {
        return None;
    }
    let first = hull[0];
    hull.push(first);
    Some(hull)
}

// ---------------------------------------------------------------------------------------------
// Drawn features.

fn parse_crs(raw: Option<&str>) -> Result<Crs> {
    let raw = raw.ok_or_else(|| bad("value.required", "crs"))?;
    raw.parse::<Crs>()
        .map_err(|e| StoreError::invalid(e.code(), "crs"))
}

fn text(field: &str, raw: Option<&str>) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(bad("value.required", field));
    }
    if s.chars().count() > NAME_MAX {
        return Err(bad("value.too_long", field));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

fn kind(raw: Option<&str>) -> Result<String> {
    let k = raw.map(str::trim).unwrap_or_default();
    if k.is_empty() {
        return Err(bad("value.required", "kind"));
    }
    FEATURE_KINDS
        .iter()
        .find(|x| **x == k)
        .map(|x| (*x).to_owned())
        .ok_or_else(|| bad("value.invalid", "kind"))
}

/// A feature as it arrives from the map: geometry in the system of the base layer it was drawn
/// on, which `crs` names.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureInput {
    pub node_id: Option<Uuid>,
    /// `area`, `outline`, `risk_area`, `flood_zone`, `evacuation_area`, `assembly_point`, `point`.
    pub kind: Option<String>,
    pub name: Option<String>,
    /// A GeoJSON geometry object: `Point`, or `Polygon` with one closed ring.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub geometry: Option<Json>,
    /// `wgs84`, `cgcs2000`, `gcj02` or `bd09`: the system the geometry was drawn in.
    pub crs: Option<String>,
}

/// A change to a feature: name and kind; geometry only together with its `crs`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePatch {
    pub kind: Option<String>,
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub geometry: Option<Json>,
    pub crs: Option<String>,
}

/// A parsed feature, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeature {
    pub node_id: Uuid,
    pub kind: String,
    pub name: String,
    pub geometry: Geometry,
    pub source_crs: Crs,
}

impl NewFeature {
    pub fn parse(raw: FeatureInput) -> Result<Self> {
        let node_id = raw
            .node_id
            .ok_or_else(|| bad("value.required", "node_id"))?;
        let kind = kind(raw.kind.as_deref())?;
        let name = text("name", raw.name.as_deref())?;
        let source_crs = parse_crs(raw.crs.as_deref())?;
        let g = raw
            .geometry
            .ok_or_else(|| bad("value.required", "geometry"))?;
        let geometry = Geometry::parse(&g, source_crs)?;
        Ok(Self {
            node_id,
            kind,
            name,
            geometry,
            source_crs,
        })
    }
}

/// A stored feature; geometry in WGS84 GeoJSON.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Feature {
    pub id: Uuid,
    pub node_id: Uuid,
    pub kind: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub geometry: Json,
    /// The system it was drawn in (stored coordinates are WGS84).
    pub source_crs: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Feature {
    fn from_row(r: &Row) -> Result<Self> {
        let text: String = r.get("geometry")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            kind: r.get("kind")?,
            name: r.get("name")?,
            geometry: Geometry::stored(&text)?.to_geojson(),
            source_crs: r.get("source_crs")?,
            created_by: r.get("created_by")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

const FEATURE_COLS: &str = "m.id, m.node_id, m.kind, m.name, m.geometry, m.source_crs, \
                            m.created_by, m.created_at, m.updated_at";

const FEATURE_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "m.node_id",
    grid: None,
    household: None,
};

const GRID_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "g.community_id",
    grid: Some("g.id"),
    household: None,
};

const BUILDING_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "b.node_id",
    grid: Some("b.grid_id"),
    household: None,
};

fn load_feature(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Feature> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), FEATURE_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {FEATURE_COLS} FROM map_features m WHERE m.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Feature::from_row(&row)
}

/// A node the caller may write under, active; anything else is an invalid reference.
fn writable_node(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<()> {
    let ok = reach.contains_node(conn, id)?
        && conn.query_i64(
            "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
            &[Value::from(id)],
        )? > 0;
    if ok {
        Ok(())
    } else {
        Err(bad("record.reference_invalid", "node_id"))
    }
}

pub fn create_feature(tx: &mut Tx, caller: &Caller, new: &NewFeature) -> Result<Feature> {
    let reach = caller.reach(Permission::WriteBase);
    writable_node(tx.conn(), &reach, new.node_id)?;
    let id = tx.new_id();
    let now = tx.now();
    let row = tx.insert(
        "map_features",
        &[
            ("id", id.into()),
            ("node_id", new.node_id.into()),
            ("kind", new.kind.clone().into()),
            ("name", new.name.clone().into()),
            ("geometry", new.geometry.to_geojson().to_string().into()),
            ("source_crs", new.source_crs.as_str().into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Feature::from_row(&row)
}

pub fn get_feature(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Feature> {
    load_feature(conn, &caller.reach(Permission::ReadBase), id)
}

pub fn update_feature(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: FeaturePatch,
) -> Result<Feature> {
    let reach = caller.reach(Permission::WriteBase);
    load_feature(tx.conn(), &reach, id)?;
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.kind.is_some() {
        cols.push(("kind", kind(patch.kind.as_deref())?.into()));
    }
    if patch.name.is_some() {
        cols.push(("name", text("name", patch.name.as_deref())?.into()));
    }
    match (patch.geometry, patch.crs.as_deref()) {
        (Some(g), crs) => {
            let crs = parse_crs(crs)?;
            let g = Geometry::parse(&g, crs)?;
            cols.push(("geometry", g.to_geojson().to_string().into()));
            cols.push(("source_crs", crs.as_str().into()));
        }
        (None, Some(_)) => return Err(bad("value.required", "geometry")),
        (None, None) => {}
    }
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("map_features", id, &cols)?;
    Feature::from_row(&row)
}

pub fn delete_feature(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_feature(tx.conn(), &caller.reach(Permission::WriteBase), id)?;
    tx.delete("map_features", id)
}

/// Features list as it arrives.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeatureQuery {
    /// Any node: features in its subtree.
    pub under: Option<Uuid>,
    pub kind: Option<String>,
}

/// The features in reach (at most [`MAX_LAYER`]), by kind and name.
pub fn list_features(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &FeatureQuery,
) -> Result<Vec<Feature>> {
    let kind = match q.kind.as_deref() {
        Some(k) => Some(kind(Some(k))?),
        None => None,
    };
    let mut params = Vec::new();
    let mut parts = vec![reach_pred(
        conn,
        &caller.reach(Permission::ReadBase),
        FEATURE_SCOPE,
        &mut params,
    )];
    if let Some(u) = q.under {
        params.push(u.into());
        parts.push(under("m.node_id", params.len()));
    }
    if let Some(k) = kind {
        params.push(k.into());
        parts.push(format!("m.kind = ${}", params.len()));
    }
    params.push(MAX_LAYER.into());
    let rows = conn.query(
        &format!(
            "SELECT {FEATURE_COLS} FROM map_features m WHERE {} ORDER BY m.kind, m.name, m.id LIMIT ${}",
            parts.join(" AND "),
            params.len()
        ),
        &params,
    )?;
    rows.iter().map(Feature::from_row).collect()
}

fn reach_pred(
    conn: &dyn Conn,
    reach: &Reach,
    cols: ScopeCols<'_>,
    params: &mut Vec<Value>,
) -> String {
    reach.predicate(conn.dialect(), cols, params)
}

fn under(col: &str, n: usize) -> String {
    format!(
        "{col} IN (WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = ${n} \
         UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)"
    )
}

// ---------------------------------------------------------------------------------------------
// Grid outlines.

/// A grid's outline as it arrives.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutlineInput {
    /// A GeoJSON `Polygon` with one closed ring.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub geometry: Option<Json>,
    /// The system it was drawn in.
    pub crs: Option<String>,
}

/// A grid with its outline (WGS84), as the map shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GridShape {
    pub id: Uuid,
    pub community_id: Uuid,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub geometry: Option<Json>,
    pub geometry_crs: Option<String>,
}

struct GridRow {
    id: Uuid,
    community_id: Uuid,
    name: String,
    geometry: Option<Geometry>,
    geometry_crs: Option<String>,
}

impl GridRow {
    fn from_row(r: &Row) -> Result<Self> {
        let text: Option<String> = r.get("geometry")?;
        Ok(Self {
            id: r.get("id")?,
            community_id: r.get("community_id")?,
            name: r.get("name")?,
            geometry: text.as_deref().map(Geometry::stored).transpose()?,
            geometry_crs: r.get("geometry_crs")?,
        })
    }
    fn shape(&self) -> GridShape {
        GridShape {
            id: self.id,
            community_id: self.community_id,
            name: self.name.clone(),
            geometry: self.geometry.as_ref().map(Geometry::to_geojson),
            geometry_crs: self.geometry_crs.clone(),
        }
    }
}

const GRID_COLS: &str = "g.id, g.community_id, g.name, g.geometry, g.geometry_crs";

/// Parse an outline: it must be a polygon.
pub fn parse_outline(raw: OutlineInput) -> Result<(Geometry, Crs)> {
    let crs = parse_crs(raw.crs.as_deref())?;
    let g = raw
        .geometry
        .ok_or_else(|| bad("value.required", "geometry"))?;
    let g = Geometry::parse(&g, crs)?;
    if !matches!(g, Geometry::Polygon(_)) {
        return Err(bad("geometry.polygon_required", "geometry.type"));
    }
    Ok((g, crs))
}

/// Set a grid's outline. A grid outside the caller's write reach is not found.
pub fn set_grid_outline(
    tx: &mut Tx,
    caller: &Caller,
    grid_id: Uuid,
    outline: &(Geometry, Crs),
) -> Result<GridShape> {
    let reach = caller.reach(Permission::WriteBase);
    let mut params = vec![Value::from(grid_id)];
    let pred = reach.predicate(tx.dialect(), GRID_SCOPE, &mut params);
    tx.query_one(
        &format!("SELECT g.id FROM grids g WHERE g.id = $1 AND {pred}"),
        &params,
    )?
    .ok_or(StoreError::NotFound)?;
    let now = tx.now();
    let row = tx.update(
        "grids",
        grid_id,
        &[
            ("geometry", outline.0.to_geojson().to_string().into()),
            ("geometry_crs", outline.1.as_str().into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(GridRow::from_row(&row)?.shape())
}

// ---------------------------------------------------------------------------------------------
// Layers.

/// Every layer of the map in the caller's reach, as one GeoJSON FeatureCollection with the
/// coordinates in `display` (the base layer's system). Each feature's `properties.layer` is
/// `outline`, `grid`, `building`, `facility` or `feature`; `truncated` names layers that hit
/// [`MAX_LAYER`].
pub fn layers(conn: &mut dyn Conn, caller: &Caller, display: Crs) -> Result<Json> {
    let reach = caller.reach(Permission::ReadBase);
    let mut out: Vec<Json> = Vec::new();
    let mut truncated: Vec<&str> = Vec::new();
    let feature = |g: &Geometry, props: Json| json!({ "type": "Feature", "geometry": g.to_crs(display).to_geojson(), "properties": props });

    // Grids.
    let mut params = Vec::new();
    let pred = reach_pred(conn, &reach, GRID_SCOPE, &mut params);
    params.push((MAX_LAYER + 1).into());
    let grids = conn
        .query(
            &format!(
                "SELECT {GRID_COLS} FROM grids g WHERE {pred} ORDER BY g.name, g.id LIMIT ${}",
                params.len()
            ),
            &params,
        )?
        .iter()
        .map(GridRow::from_row)
        .collect::<Result<Vec<_>>>()?;
    if grids.len() as i64 > MAX_LAYER {
        truncated.push("grid");
    }

    // Buildings with a point.
    let mut params = Vec::new();
    let pred = reach_pred(conn, &reach, BUILDING_SCOPE, &mut params);
    params.push((MAX_LAYER + 1).into());
    let buildings = conn.query(
        &format!(
            "SELECT b.id, b.name, b.community_id, b.grid_id, b.lon, b.lat, b.source_crs FROM buildings b \
             WHERE b.lon IS NOT NULL AND b.lat IS NOT NULL AND {pred} ORDER BY b.name, b.id LIMIT ${}",
            params.len()
        ),
        &params,
    )?;
    if buildings.len() as i64 > MAX_LAYER {
        truncated.push("building");
    }

    // Outlines: drawn (`outline` features) first, else derived, for the communities and streets
    // the caller reaches as nodes (a grid worker sees their grid, not the community's shape).
    let node_reach = Reach {
        grids: Vec::new(),
        households: Vec::new(),
        ..reach.clone()
    };
    let mut hull_points: BTreeMap<Uuid, Vec<LonLat>> = BTreeMap::new();
    if !node_reach.is_empty() {
        for g in grids.iter().filter(|g| g.geometry.is_some()) {
            if let Some(geom) = &g.geometry {
                hull_points
                    .entry(g.community_id)
                    .or_default()
                    .extend_from_slice(geom.points());
            }
        }
        let mut params = Vec::new();
        let pred = reach_pred(
            conn,
            &node_reach,
            ScopeCols {
                node: "b.node_id",
                grid: None,
                household: None,
            },
            &mut params,
        );
        params.push(MAX_LAYER.into());
        for r in conn.query(
            &format!(
                "SELECT b.community_id, b.lon, b.lat FROM buildings b WHERE b.lon IS NOT NULL \
                 AND b.lat IS NOT NULL AND {pred} LIMIT ${}",
                params.len()
            ),
            &params,
        )? {
            let p = LonLat::new(r.get("lon")?, r.get("lat")?)
                .map_err(|e| StoreError::Backend(format!("stored building point: {e}")))?;
            hull_points
                .entry(r.get("community_id")?)
                .or_default()
                .push(p);
        }
        // Facilities of a community or its compounds count too.
        let mut params = Vec::new();
        let pred = reach_pred(
            conn,
            &node_reach,
            ScopeCols {
                node: "f.node_id",
                grid: None,
                household: None,
            },
            &mut params,
        );
        params.push(MAX_LAYER.into());
        for r in conn.query(
            &format!(
                "SELECT CASE WHEN n.level = 'compound' THEN n.parent_id ELSE n.id END AS community_id, \
                 f.lon, f.lat FROM facilities f JOIN nodes n ON n.id = f.node_id \
                 WHERE f.lon IS NOT NULL AND f.lat IS NOT NULL \
                 AND n.level IN ('community', 'compound') AND {pred} LIMIT ${}",
                params.len()
            ),
            &params,
        )? {
            let p = LonLat::new(r.get("lon")?, r.get("lat")?)
                .map_err(|e| StoreError::Backend(format!("stored facility point: {e}")))?;
            if let Some(c) = r.get::<Option<Uuid>>("community_id")? {
                hull_points.entry(c).or_default().push(p);
            }
        }
        // Only communities the caller reaches as nodes.
        let mut params = Vec::new();
        let pred = reach_pred(
            conn,
            &node_reach,
            ScopeCols {
                node: "n.id",
                grid: None,
                household: None,
            },
            &mut params,
        );
        let nodes = conn.query(
            &format!(
                "SELECT n.id, n.parent_id, n.level, n.name FROM nodes n WHERE n.status = 'active' \
                 AND n.level IN ('street', 'community') AND {pred}"
            ),
            &params,
        )?;
        let drawn: Vec<Feature> = list_features(
            conn,
            caller,
            &FeatureQuery {
                under: None,
                kind: Some("outline".into()),
            },
        )?;
        let mut by_street: BTreeMap<Uuid, Vec<LonLat>> = BTreeMap::new();
        let mut streets: Vec<(Uuid, String)> = Vec::new();
        for n in &nodes {
            let id: Uuid = n.get("id")?;
            let level: String = n.get("level")?;
            let name: String = n.get("name")?;
            if level == "street" {
                streets.push((id, name));
                continue;
            }
            let pts = hull_points.get(&id).cloned().unwrap_or_default();
            if let Some(parent) = n.get::<Option<Uuid>>("parent_id")? {
                by_street
                    .entry(parent)
                    .or_default()
                    .extend(pts.iter().copied());
            }
            if drawn.iter().any(|f| f.node_id == id) {
                continue;
            }
            if let Some(h) = convex_hull(&pts) {
                out.push(feature(
                    &Geometry::Polygon(h),
                    json!({ "layer": "outline", "id": id, "name": name, "level": "community", "derived": true }),
                ));
            }
        }
        for (id, name) in streets {
            if drawn.iter().any(|f| f.node_id == id) {
                continue;
            }
            if let Some(h) = by_street.get(&id).and_then(|p| convex_hull(p)) {
                out.push(feature(
                    &Geometry::Polygon(h),
                    json!({ "layer": "outline", "id": id, "name": name, "level": "street", "derived": true }),
                ));
            }
        }
    }

    for g in grids.iter().take(MAX_LAYER as usize) {
        if let Some(geom) = &g.geometry {
            out.push(feature(
                geom,
                json!({ "layer": "grid", "id": g.id, "name": g.name, "community_id": g.community_id }),
            ));
        }
    }
    for r in buildings.iter().take(MAX_LAYER as usize) {
        let p = LonLat::new(r.get("lon")?, r.get("lat")?)
            .map_err(|e| StoreError::Backend(format!("stored building point: {e}")))?;
        let id: Uuid = r.get("id")?;
        let name: String = r.get("name")?;
        let grid: Option<Uuid> = r.get("grid_id")?;
        out.push(feature(
            &Geometry::Point(p),
            json!({ "layer": "building", "id": id, "name": name, "grid_id": grid }),
        ));
    }
    let (facilities, f_truncated) = places::facility_layer(
        conn,
        caller,
        &FacilityFilter::parse(FacilityQuery::default())?,
    )?;
    if f_truncated {
        truncated.push("facility");
    }
    for f in facilities {
        let Some(l) = f.location else { continue };
        let p = LonLat::new(l.lon, l.lat)
            .map_err(|e| StoreError::Backend(format!("stored facility point: {e}")))?;
        out.push(feature(
            &Geometry::Point(p),
            json!({ "layer": "facility", "id": f.id, "name": f.name, "kind": f.kind }),
        ));
    }
    let features = list_features(conn, caller, &FeatureQuery::default())?;
    if features.len() as i64 >= MAX_LAYER {
        truncated.push("feature");
    }
    for f in features {
        let g = Geometry::parse(&f.geometry, Crs::Wgs84)?;
        out.push(feature(
            &g,
            json!({ "layer": "feature", "id": f.id, "name": f.name, "kind": f.kind, "node_id": f.node_id, "source_crs": f.source_crs }),
        ));
    }
    Ok(json!({
        "type": "FeatureCollection",
        "crs_name": display.as_str(),
        "features": out,
        "truncated": truncated,
    }))
}

/// The grids in reach with their outlines (for choosing which grid to draw).
pub fn list_grid_shapes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<GridShape>> {
    let mut params = Vec::new();
    let pred = reach_pred(
        conn,
        &caller.reach(Permission::ReadBase),
        GRID_SCOPE,
        &mut params,
    );
    params.push(MAX_LAYER.into());
    conn.query(
        &format!(
            "SELECT {GRID_COLS} FROM grids g WHERE {pred} ORDER BY g.name, g.id LIMIT ${}",
            params.len()
        ),
        &params,
    )?
    .iter()
    .map(|r| Ok(GridRow::from_row(r)?.shape()))
    .collect()
}

/// A node a drawing may belong to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeChoice {
    pub id: Uuid,
    pub level: String,
    pub name: String,
}

/// The streets, communities and compounds the caller may draw for (at most 1,000), for the
/// map page's node choice.
pub fn writable_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<NodeChoice>> {
    let mut params = Vec::new();
    let pred = reach_pred(
        conn,
        &caller.reach(Permission::WriteBase),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT n.id, n.level, n.name FROM nodes n WHERE n.status = 'active' \
             AND n.level IN ('street', 'community', 'compound') AND {pred} \
             ORDER BY CASE n.level WHEN 'street' THEN 0 WHEN 'community' THEN 1 ELSE 2 END, n.name, n.id \
             LIMIT 1000"
        ),
        &params,
    )?
    .iter()
    .map(|r| {
        Ok(NodeChoice {
            id: r.get("id")?,
            level: r.get("level")?,
            name: r.get("name")?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn poly(coords: &[[f64; 2]]) -> Json {
        json!({ "type": "Polygon", "coordinates": [coords] })
    }

    fn code(r: Result<Geometry>) -> &'static str {
        match r {
            Err(StoreError::Invalid { code, .. }) => code,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn square_parses_bowtie_and_open_ring_do_not() {
        let sq = [
            [104.0, 30.0],
            [104.01, 30.0],
            [104.01, 30.01],
            [104.0, 30.01],
            [104.0, 30.0],
        ];
        assert!(Geometry::parse(&poly(&sq), Crs::Wgs84).is_ok());
        let bow = [
            [104.0, 30.0],
            [104.01, 30.01],
            [104.01, 30.0],
            [104.0, 30.01],
            [104.0, 30.0],
        ];
        assert_eq!(
            code(Geometry::parse(&poly(&bow), Crs::Wgs84)),
            "geometry.self_intersecting"
        );
        let open = [
            [104.0, 30.0],
            [104.01, 30.0],
            [104.01, 30.01],
            [104.0, 30.01],
        ];
        assert_eq!(
            code(Geometry::parse(&poly(&open), Crs::Wgs84)),
            "geometry.ring_not_closed"
        );
        let spike = [
            [104.0, 30.0],
            [104.02, 30.0],
            [104.01, 30.0],
            [104.01, 30.01],
            [104.0, 30.0],
        ];
        assert_eq!(
            code(Geometry::parse(&poly(&spike), Crs::Wgs84)),
            "geometry.self_intersecting"
        );
        let paris = [[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.0]];
        assert_eq!(
            code(Geometry::parse(&poly(&paris), Crs::Wgs84)),
            "geometry.out_of_bounds"
        );
    }

    #[test]
    fn hull_of_square_with_inner_point() {
        let pts: Vec<LonLat> = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]]
            .iter()
            .map(|p| LonLat::new(p[0], p[1]).unwrap())
            .collect();
        let h = convex_hull(&pts).unwrap();
        assert_eq!(h.len(), 5);
        assert!(!h.contains(&LonLat::new(0.5, 0.5).unwrap()));
        assert!(convex_hull(&pts[..2]).is_none());
    }
}
