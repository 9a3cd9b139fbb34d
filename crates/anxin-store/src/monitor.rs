//! Devices, profiles and rules, rule state and alarms.
//!
//! Devices, device profiles and alarms are records (logged through [`Tx`]); alarm notes too hang
//! off an alarm but are operational (not logged). Readings and per-device rule state live in the
//! readings store ([`crate::readings`]).
//!
//! Scope: a device sits at a node (and optionally a grid and a building); an alarm carries its
//! device's node. Reads need `ReadMonitor`, device and profile writes `ManageDevices`, alarm
//! handling (ack, assign, notes, clear) `HandleAlarms` — each scoped by [`Reach`] like places.
//!
//! The pipeline applies rule events to alarms through [`apply_many`] (many devices in one
//! transaction, set-based; [`apply_events`] is one device's), idempotently: every event of a
//! device carries a number, and an alarm remembers the last number applied to it, so events
//! replayed after a crash change nothing twice.

use std::collections::HashMap;

use anxin_domain::alarm::Severity;
use anxin_domain::roles::Permission;
use anxin_domain::rules::{Event, ProfileSpec};
use anxin_domain::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::places::{page, present, Page, PageInput, Paging, Where};
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

const NAME_MAX: usize = 100;
const CODE_MAX: usize = 64;
const NOTE_MAX: usize = 2000;

fn text_required(field: &str, raw: Option<String>, max: usize) -> Result<String> {
    let Some(s) = raw else {
        return Err(StoreError::invalid("value.required", field));
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(StoreError::invalid("value.required", field));
    }
    if s.chars().count() > max {
        return Err(StoreError::invalid("value.too_long", field));
    }
    if s.chars().any(char::is_control) {
        return Err(StoreError::invalid("value.invalid", field));
    }
    Ok(s.to_owned())
}

fn required<T>(field: &str, raw: Option<T>) -> Result<T> {
    raw.ok_or_else(|| StoreError::invalid("value.required", field))
}

/// A device code: what stands in its MQTT topic, so one topic level of `[A-Za-z0-9_.-]`.
fn device_code(raw: Option<String>) -> Result<String> {
    let s = text_required("code", raw, CODE_MAX)?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(StoreError::invalid("device.code_invalid", "code"));
    }
    Ok(s)
}

/// WGS84 coordinates inside China's bounding box, both or neither.
fn lon_lat(lon: Option<f64>, lat: Option<f64>) -> Result<(Option<f64>, Option<f64>)> {
    match (lon, lat) {
        (None, None) => Ok((None, None)),
        (Some(x), Some(y)) => {
            if !(73.0..=136.0).contains(&x) || !x.is_finite() {
                return Err(StoreError::invalid("value.invalid", "lon"));
            }
            if !(3.0..=54.0).contains(&y) || !y.is_finite() {
                return Err(StoreError::invalid("value.invalid", "lat"));
            }
            Ok((Some(x), Some(y)))
        }
        (None, Some(_)) => Err(StoreError::invalid("value.required", "lon")),
        (Some(_), None) => Err(StoreError::invalid("value.required", "lat")),
    }
}

fn domain_field(prefix: &str, e: &DomainError) -> StoreError {
    let field = match e.field() {
        Some(f) => format!("{prefix}.{f}"),
        None => prefix.to_owned(),
    };
    StoreError::invalid(e.code(), field)
}

/// An active node within `reach`; anything else is an invalid reference in `field`.
fn reachable_node(conn: &mut dyn Conn, reach: &Reach, id: Uuid, field: &str) -> Result<()> {
    if !reach.contains_node(conn, id)? {
        return Err(StoreError::invalid("record.reference_invalid", field));
    }
    let n = conn.query_i64(
        "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
        &params![id],
    )?;
    if n == 0 {
        return Err(StoreError::invalid("record.reference_invalid", field));
    }
    Ok(())
}

/// Whether `node` is `ancestor` or below it.
fn node_under(conn: &mut dyn Conn, node: Uuid, ancestor: Uuid) -> Result<bool> {
    Ok(conn.query_i64(
        "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE id = $1 \
         UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) \
         SELECT count(*) FROM up WHERE id = $2",
        &params![node, ancestor],
    )? > 0)
}

// ---------------------------------------------------------------------------------------------
// Device kinds.

/// What a device measures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Smoke,
    Gas,
    WaterLevel,
    Manhole,
    Tilt,
    Elevator,
    Generic,
}

impl DeviceKind {
    pub const ALL: &'static [DeviceKind] = &[
        DeviceKind::Smoke,
        DeviceKind::Gas,
        DeviceKind::WaterLevel,
        DeviceKind::Manhole,
        DeviceKind::Tilt,
        DeviceKind::Elevator,
        DeviceKind::Generic,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Smoke => "smoke",
            DeviceKind::Gas => "gas",
            DeviceKind::WaterLevel => "water_level",
            DeviceKind::Manhole => "manhole",
            DeviceKind::Tilt => "tilt",
            DeviceKind::Elevator => "elevator",
            DeviceKind::Generic => "generic",
        }
    }
    pub fn zh(self) -> &'static str {
        match self {
            DeviceKind::Smoke => "烟感",
            DeviceKind::Gas => "可燃气体",
            DeviceKind::WaterLevel => "水位",
            DeviceKind::Manhole => "井盖",
            DeviceKind::Tilt => "倾斜",
            DeviceKind::Elevator => "电梯",
            DeviceKind::Generic => "通用",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

// ---------------------------------------------------------------------------------------------
// Device profiles.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceProfile {
    pub id: Uuid,
    pub node_id: Uuid,
    pub name: String,
    /// The rules (`anxin_domain::rules::ProfileSpec`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub rules: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PROFILE_COLS: &str = "p.id, p.node_id, p.name, p.rules, p.created_at, p.updated_at";

impl DeviceProfile {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            name: r.get("name")?,
            rules: json_col(r, "rules")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
    /// The rules as the domain reads them.
    pub fn spec(&self) -> Result<ProfileSpec> {
        serde_json::from_value(self.rules.clone())
            .map_err(|e| StoreError::Backend(format!("stored profile rules: {e}")))
    }
}

/// A JSON column: PostgreSQL gives JSON, SQLite text.
fn json_col(r: &Row, col: &str) -> Result<serde_json::Value> {
    match r.raw(col)? {
        Value::Text(s) => {
            serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("column {col}: {e}")))
        }
        _ => r.get(col),
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub node_id: Option<Uuid>,
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub rules: Option<serde_json::Value>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub rules: Option<serde_json::Value>,
}

/// Parse and validate a profile's rules; every problem names its field (`rules.rules[0].raise…`).
pub fn parse_rules(raw: serde_json::Value) -> Result<ProfileSpec> {
    let spec: ProfileSpec = serde_json::from_value(raw).map_err(|e| {
        tracing::debug!(error = %e, "profile rules do not parse");
        StoreError::invalid("rules.shape_invalid", "rules")
    })?;
    spec.validate().map_err(|e| domain_field("rules", &e))?;
    Ok(spec)
}

#[derive(Debug, Clone)]
pub struct NewProfile {
    node_id: Uuid,
    name: String,
    spec: ProfileSpec,
}

impl NewProfile {
    pub fn parse(raw: ProfileInput) -> Result<Self> {
        Ok(Self {
            node_id: required("node_id", raw.node_id)?,
            name: text_required("name", raw.name, NAME_MAX)?,
            spec: parse_rules(required("rules", raw.rules)?)?,
        })
    }
}

const PROFILE_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "p.node_id",
    grid: None,
    household: None,
};

fn load_profile(
    conn: &mut dyn Conn,
    caller: &Caller,
    p: Permission,
    id: Uuid,
) -> Result<DeviceProfile> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("p.id = ${n}"));
    w.scope(conn, &caller.reach(p), PROFILE_SCOPE);
    let row = conn
        .query_one(
            &format!(
                "SELECT {PROFILE_COLS} FROM device_profiles p WHERE {}",
                w.sql()
            ),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    DeviceProfile::from_row(&row)
}

fn spec_json(spec: &ProfileSpec) -> Result<Value> {
    Ok(Value::Json(serde_json::to_value(spec).map_err(|e| {
        StoreError::Backend(format!("profile rules: {e}"))
    })?))
}

pub fn create_profile(tx: &mut Tx, caller: &Caller, new: &NewProfile) -> Result<DeviceProfile> {
    let reach = caller.reach(Permission::ManageDevices);
    reachable_node(tx.conn(), &reach, new.node_id, "node_id")?;
    let id = tx.new_id();
    let now = tx.now();
    let row = tx.insert(
        "device_profiles",
        &[
            ("id", id.into()),
            ("node_id", new.node_id.into()),
            ("name", new.name.as_str().into()),
            ("rules", spec_json(&new.spec)?),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    DeviceProfile::from_row(&row)
}

pub fn get_profile(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<DeviceProfile> {
    load_profile(conn, caller, Permission::ReadMonitor, id)
}

pub fn update_profile(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: ProfilePatch,
) -> Result<DeviceProfile> {
    load_profile(tx.conn(), caller, Permission::ManageDevices, id)?;
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if let Some(n) = patch.name {
        cols.push(("name", text_required("name", Some(n), NAME_MAX)?.into()));
    }
    if let Some(r) = patch.rules {
        cols.push(("rules", spec_json(&parse_rules(r)?)?));
    }
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("device_profiles", id, &cols)?;
    DeviceProfile::from_row(&row)
}

/// Delete a profile no device uses.
pub fn delete_profile(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_profile(tx.conn(), caller, Permission::ManageDevices, id)?;
    if tx.conn().query_i64(
        "SELECT count(*) FROM devices WHERE profile_id = $1",
        &params![id],
    )? > 0
    {
        return Err(StoreError::Conflict {
            code: "profile.in_use",
            detail: format!("profile {id} in use"),
        });
    }
    tx.delete("device_profiles", id)
}

pub fn list_profiles(
    conn: &mut dyn Conn,
    caller: &Caller,
    paging: Paging,
) -> Result<Page<DeviceProfile>> {
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadMonitor), PROFILE_SCOPE);
    page(
        conn,
        "device_profiles p",
        PROFILE_COLS,
        w,
        "p.name, p.id",
        paging,
        DeviceProfile::from_row,
    )
}

// ---------------------------------------------------------------------------------------------
// Devices.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Device {
    pub id: Uuid,
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub kind: DeviceKind,
    /// The device key in its MQTT topic `anxin/v1/devices/{code}/readings`.
    pub code: String,
    pub name: String,
    /// WGS84.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub profile_id: Option<Uuid>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const DEVICE_COLS: &str = "d.id, d.node_id, d.grid_id, d.building_id, d.kind, d.code, d.name, \
    d.lon, d.lat, d.profile_id, d.enabled, d.created_at, d.updated_at";

impl Device {
    fn from_row(r: &Row) -> Result<Self> {
        let kind: String = r.get("kind")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            grid_id: r.get("grid_id")?,
            building_id: r.get("building_id")?,
            kind: DeviceKind::parse(&kind)
                .ok_or_else(|| StoreError::Backend(format!("device kind {kind}")))?,
            code: r.get("code")?,
            name: r.get("name")?,
            lon: r.get("lon")?,
            lat: r.get("lat")?,
            profile_id: r.get("profile_id")?,
            enabled: r.get("enabled")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A new device and its token, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CreatedDevice {
    #[serde(flatten)]
    pub device: Device,
    /// The device's bearer token for HTTP ingest (and its broker password); stored only hashed.
    pub token: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    pub node_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub kind: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub profile_id: Option<Uuid>,
    pub enabled: Option<bool>,
}

/// Changes to a device: an absent field stays, `null` clears it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    #[serde(default, deserialize_with = "present")]
    pub grid_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    pub building_id: Option<Option<Uuid>>,
    pub name: Option<String>,
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub lon: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub lat: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub profile_id: Option<Option<Uuid>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDevice {
    node_id: Uuid,
    grid_id: Option<Uuid>,
    building_id: Option<Uuid>,
    kind: DeviceKind,
    code: String,
    name: String,
    lon: Option<f64>,
    lat: Option<f64>,
    profile_id: Option<Uuid>,
    enabled: bool,
}

fn kind(raw: Option<String>) -> Result<DeviceKind> {
    let s = required("kind", raw)?;
    DeviceKind::parse(s.trim()).ok_or_else(|| StoreError::invalid("value.invalid", "kind"))
}

impl NewDevice {
    pub fn parse(raw: DeviceInput) -> Result<Self> {
        let (lon, lat) = lon_lat(raw.lon, raw.lat)?;
        Ok(Self {
            node_id: required("node_id", raw.node_id)?,
            grid_id: raw.grid_id,
            building_id: raw.building_id,
            kind: kind(raw.kind)?,
            code: device_code(raw.code)?,
            name: text_required("name", raw.name, NAME_MAX)?,
            lon,
            lat,
            profile_id: raw.profile_id,
            enabled: raw.enabled.unwrap_or(true),
        })
    }

    fn from_device(d: &Device) -> Self {
        Self {
            node_id: d.node_id,
            grid_id: d.grid_id,
            building_id: d.building_id,
            kind: d.kind,
            code: d.code.clone(),
            name: d.name.clone(),
            lon: d.lon,
            lat: d.lat,
            profile_id: d.profile_id,
            enabled: d.enabled,
        }
    }

    fn patched(mut self, p: DevicePatch) -> Result<Self> {
        if let Some(v) = p.grid_id {
            self.grid_id = v;
        }
        if let Some(v) = p.building_id {
            self.building_id = v;
        }
        if let Some(v) = p.name {
            self.name = text_required("name", Some(v), NAME_MAX)?;
        }
        if let Some(v) = p.kind {
            self.kind = kind(Some(v))?;
        }
        let lon = p.lon.unwrap_or(self.lon);
        let lat = p.lat.unwrap_or(self.lat);
        (self.lon, self.lat) = lon_lat(lon, lat)?;
        if let Some(v) = p.profile_id {
            self.profile_id = v;
        }
        if let Some(v) = p.enabled {
            self.enabled = v;
        }
        Ok(self)
    }

    /// References must be inside the caller's reach and fit together.
    fn check(&self, conn: &mut dyn Conn, reach: &Reach) -> Result<()> {
        if let Some(g) = self.grid_id {
            let row = conn
                .query_one("SELECT community_id FROM grids WHERE id = $1", &params![g])?
                .ok_or_else(|| StoreError::invalid("record.reference_invalid", "grid_id"))?;
            let community: Uuid = row.get("community_id")?;
            if !node_under(conn, self.node_id, community)?
                && !node_under(conn, community, self.node_id)?
            {
                return Err(StoreError::invalid("record.reference_invalid", "grid_id"));
            }
        }
        if let Some(b) = self.building_id {
            let row = conn
                .query_one("SELECT node_id FROM buildings WHERE id = $1", &params![b])?
                .ok_or_else(|| StoreError::invalid("record.reference_invalid", "building_id"))?;
            let bnode: Uuid = row.get("node_id")?;
            if !node_under(conn, bnode, self.node_id)? && !node_under(conn, self.node_id, bnode)? {
                return Err(StoreError::invalid(
                    "record.reference_invalid",
                    "building_id",
                ));
            }
        }
        if let Some(p) = self.profile_id {
            let row = conn
                .query_one(
                    "SELECT node_id FROM device_profiles WHERE id = $1",
                    &params![p],
                )?
                .ok_or_else(|| StoreError::invalid("record.reference_invalid", "profile_id"))?;
            // A profile is usable at its node and below it, and anywhere the caller reaches.
            let pnode: Uuid = row.get("node_id")?;
            if !node_under(conn, self.node_id, pnode)? && !reach.contains_node(conn, pnode)? {
                return Err(StoreError::invalid(
                    "record.reference_invalid",
                    "profile_id",
                ));
            }
        }
        Ok(())
    }

    fn cols(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("node_id", self.node_id.into()),
            ("grid_id", self.grid_id.into()),
            ("building_id", self.building_id.into()),
            ("kind", self.kind.as_str().into()),
            ("code", self.code.as_str().into()),
            ("name", self.name.as_str().into()),
            ("lon", self.lon.into()),
            ("lat", self.lat.into()),
            ("profile_id", self.profile_id.into()),
            ("enabled", self.enabled.into()),
        ]
    }
}

const DEVICE_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "d.node_id",
    grid: Some("d.grid_id"),
    household: None,
};

fn load_device(conn: &mut dyn Conn, caller: &Caller, p: Permission, id: Uuid) -> Result<Device> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("d.id = ${n}"));
    w.scope(conn, &caller.reach(p), DEVICE_SCOPE);
    let row = conn
        .query_one(
            &format!("SELECT {DEVICE_COLS} FROM devices d WHERE {}", w.sql()),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Device::from_row(&row)
}

/// The stored form of a device token: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(anxin_crypto::hash_token(token))
}

pub fn create_device(tx: &mut Tx, caller: &Caller, new: &NewDevice) -> Result<CreatedDevice> {
    let reach = caller.reach(Permission::ManageDevices);
    reachable_node(tx.conn(), &reach, new.node_id, "node_id")?;
    new.check(tx.conn(), &reach)?;
    if tx.conn().query_i64(
        "SELECT count(*) FROM devices WHERE code = $1",
        &params![new.code.as_str()],
    )? > 0
    {
        return Err(StoreError::Conflict {
            code: "device.code_taken",
            detail: "device code taken".into(),
        });
    }
    let token = anxin_crypto::new_token();
    let id = tx.new_id();
    let now = tx.now();
    let mut cols = vec![("id", id.into())];
    cols.extend(new.cols());
    cols.push(("token_hash", token_hash(&token).into()));
    cols.push(("created_at", now.into()));
    cols.push(("updated_at", now.into()));
    let row = tx.insert("devices", &cols)?;
    Ok(CreatedDevice {
        device: Device::from_row(&row)?,
        token,
    })
}

pub fn get_device(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Device> {
    load_device(conn, caller, Permission::ReadMonitor, id)
}

pub fn update_device(tx: &mut Tx, caller: &Caller, id: Uuid, patch: DevicePatch) -> Result<Device> {
    let current = load_device(tx.conn(), caller, Permission::ManageDevices, id)?;
    let next = NewDevice::from_device(&current).patched(patch)?;
    let reach = caller.reach(Permission::ManageDevices);
    next.check(tx.conn(), &reach)?;
    let mut cols = next.cols();
    cols.push(("updated_at", tx.now().into()));
    let row = tx.update("devices", id, &cols)?;
    Device::from_row(&row)
}

/// Delete a device that never raised an alarm; one with alarms is a conflict (disable it).
pub fn delete_device(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    load_device(tx.conn(), caller, Permission::ManageDevices, id)?;
    if tx.conn().query_i64(
        "SELECT count(*) FROM alarms WHERE device_id = $1",
        &params![id],
    )? > 0
    {
        return Err(StoreError::Conflict {
            code: "device.has_alarms",
            detail: format!("device {id} has alarms"),
        });
    }
    tx.delete("devices", id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviceQuery {
    /// Any node: devices in its subtree.
    pub under: Option<Uuid>,
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub fn list_devices(conn: &mut dyn Conn, caller: &Caller, q: DeviceQuery) -> Result<Page<Device>> {
    let paging = Paging::parse(PageInput {
        limit: q.limit,
        offset: q.offset,
    })?;
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadMonitor), DEVICE_SCOPE);
    if let Some(u) = q.under {
        w.under("d.node_id", u);
    }
    if let Some(k) = q.kind {
        let k = kind(Some(k))?;
        let n = w.bind(k.as_str());
        w.push(format!("d.kind = ${n}"));
    }
    page(
        conn,
        "devices d",
        DEVICE_COLS,
        w,
        "d.name, d.id",
        paging,
        Device::from_row,
    )
}

// ---------------------------------------------------------------------------------------------
// What the pipeline needs (the platform itself, no caller).

/// A device as the pipeline sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub id: Uuid,
    pub node_id: Uuid,
    pub code: String,
    pub token_hash: String,
    pub enabled: bool,
    pub profile_id: Option<Uuid>,
}

impl DeviceInfo {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            code: r.get("code")?,
            token_hash: r.get("token_hash")?,
            enabled: r.get("enabled")?,
            profile_id: r.get("profile_id")?,
        })
    }
}

const INFO_COLS: &str = "id, node_id, code, token_hash, enabled, profile_id";

pub fn device_by_code(conn: &mut dyn Conn, code: &str) -> Result<Option<DeviceInfo>> {
    conn.query_one(
        &format!("SELECT {INFO_COLS} FROM devices WHERE code = $1"),
        &params![code],
    )?
    .as_ref()
    .map(DeviceInfo::from_row)
    .transpose()
}

pub fn device_by_token(conn: &mut dyn Conn, token: &str) -> Result<Option<DeviceInfo>> {
    conn.query_one(
        &format!("SELECT {INFO_COLS} FROM devices WHERE token_hash = $1"),
        &params![token_hash(token)],
    )?
    .as_ref()
    .map(DeviceInfo::from_row)
    .transpose()
}

pub fn device_by_id(conn: &mut dyn Conn, id: Uuid) -> Result<Option<DeviceInfo>> {
    conn.query_one(
        &format!("SELECT {INFO_COLS} FROM devices WHERE id = $1"),
        &params![id],
    )?
    .as_ref()
    .map(DeviceInfo::from_row)
    .transpose()
}

/// Enabled devices with a profile: `(device, profile)`, for the rule ticks.
pub fn profiled_devices(conn: &mut dyn Conn) -> Result<Vec<(Uuid, Uuid)>> {
    conn.query(
        "SELECT id, profile_id FROM devices WHERE enabled = $1 AND profile_id IS NOT NULL",
        &params![true],
    )?
    .iter()
    .map(|r| Ok((r.get("id")?, r.get("profile_id")?)))
    .collect()
}

/// A profile's rules by id (for the pipeline's compiled-profile cache).
pub fn profile_spec(conn: &mut dyn Conn, id: Uuid) -> Result<Option<(ProfileSpec, DateTime<Utc>)>> {
    let Some(row) = conn.query_one(
        "SELECT id, node_id, name, rules, created_at, updated_at FROM device_profiles WHERE id = $1",
        &params![id],
    )?
    else {
        return Ok(None);
    };
    let p = DeviceProfile::from_row(&row)?;
    Ok(Some((p.spec()?, p.updated_at)))
}

/// One rule event of a device, numbered in the device's order (see [`apply_events`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberedEvent {
    pub no: i64,
    pub event: Event,
}

/// What applying events changed: alarms opened, updated, cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub raised: Vec<Uuid>,
    pub updated: u64,
    pub cleared: Vec<Uuid>,
    pub skipped: u64,
}

/// Apply a device's rule events to its alarms, in order and idempotently: an event whose number
/// is not above the highest number any alarm of the device has applied is skipped. `Raise`
/// opens an alarm unless one of the rule is active (then it updates it); `Update` updates the
/// active alarm; `Clear` clears it. One device's [`apply_many`].
pub fn apply_events(tx: &mut Tx, device: &DeviceInfo, events: &[NumberedEvent]) -> Result<Applied> {
    let mut nodes = HashMap::new();
    nodes.insert(device.id, device.node_id);
    Ok(apply_known(tx, &nodes, &[(device.id, events.to_vec())])?.0)
}

/// What [`apply_many`] did: per device the highest event number it was given (applied or
/// skipped: what the outbox may forget), the alarms it changed, and the raised ones as plan
/// triggers see them.
#[derive(Debug, Clone, Default)]
pub struct AppliedMany {
    pub done: Vec<(Uuid, i64)>,
    pub applied: Applied,
    pub raised: Vec<crate::ops::plans::RaisedAlarm>,
}

/// Device ids per `IN (…)` list, largest first: a list is cut into these sizes so the statement
/// texts repeat (prepared once, then cached) however many devices a write has.
const ID_CHUNKS: [usize; 4] = [128, 32, 8, 1];

/// `ids` in [`ID_CHUNKS`] pieces.
fn id_chunks(ids: &[Uuid]) -> Vec<&[Uuid]> {
    let mut out = Vec::new();
    let mut rest = ids;
    for size in ID_CHUNKS {
        while rest.len() >= size {
            let (head, tail) = rest.split_at(size);
            out.push(head);
            rest = tail;
        }
    }
    out
}

/// `$from, $from+1, …` (`n` placeholders).
fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Apply the rule events of several devices (each device's in number order) to their alarms, in
/// the caller's transaction, set-based: the devices, their highest applied event numbers and
/// their active alarms are read with one statement per [`ID_CHUNKS`] piece, the events are
/// applied in memory in order (exactly as [`apply_events`] would one by one), then the new
/// alarms are inserted with multi-row statements and each changed alarm is updated once, to
/// its final state (one change-log entry per alarm and write). Events of a device that no
/// longer exists are dropped (reported in `done`, so the outbox forgets them).
pub fn apply_many(tx: &mut Tx, events: &[(Uuid, Vec<NumberedEvent>)]) -> Result<AppliedMany> {
    let mut ids: Vec<Uuid> = events.iter().map(|(d, _)| *d).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut nodes: HashMap<Uuid, Uuid> = HashMap::with_capacity(ids.len());
    let mut kinds: HashMap<Uuid, String> = HashMap::with_capacity(ids.len());
    for part in id_chunks(&ids) {
        let sql = format!(
            "SELECT id, node_id, kind FROM devices WHERE id IN ({})",
            marks(1, part.len())
        );
        let params: Vec<Value> = part.iter().map(|d| Value::from(*d)).collect();
        for r in tx.conn().query(&sql, &params)? {
            let id: Uuid = r.get("id")?;
            nodes.insert(id, r.get("node_id")?);
            kinds.insert(id, r.get("kind")?);
        }
    }
    let mut done: Vec<(Uuid, i64)> = Vec::with_capacity(ids.len());
    let mut at: HashMap<Uuid, usize> = HashMap::with_capacity(ids.len());
    for (d, evs) in events {
        let Some(upto) = evs.last().map(|e| e.no) else {
            continue;
        };
        match at.get(d) {
            Some(&i) => done[i].1 = done[i].1.max(upto),
            None => {
                at.insert(*d, done.len());
                done.push((*d, upto));
            }
        }
    }
    let (applied, fresh) = apply_known(tx, &nodes, events)?;
    let raised = fresh
        .into_iter()
        .map(
            |(id, device, rule_id, alarm_type)| crate::ops::plans::RaisedAlarm {
                id,
                node_id: nodes.get(&device).copied().unwrap_or_default(),
                device_type: kinds.get(&device).cloned().unwrap_or_default(),
                rule_id,
                alarm_type,
            },
        )
        .collect();
    Ok(AppliedMany {
        done,
        applied,
        raised,
    })
}

/// A raised alarm: `(id, device, rule, alarm type)`.
type Fresh = (Uuid, Uuid, String, String);

/// An alarm this write changes: opened now (`fresh`) or active before it.
struct Touched {
    id: Uuid,
    fresh: bool,
    device_id: Uuid,
    rule_id: String,
    active: bool,
    updates: i64,
    last_at: Option<DateTime<Utc>>,
    last_value: Option<Option<f64>>,
    cleared_at: Option<DateTime<Utc>>,
    last_event_no: i64,
    /// A fresh alarm's columns fixed when it was raised.
    raised: Option<(String, Severity, DateTime<Utc>, Option<f64>)>,
}

/// [`apply_many`] for devices whose node is known (`nodes`; devices not in it are skipped).
fn apply_known(
    tx: &mut Tx,
    nodes: &HashMap<Uuid, Uuid>,
    events: &[(Uuid, Vec<NumberedEvent>)],
) -> Result<(Applied, Vec<Fresh>)> {
    let mut out = Applied::default();
    let mut fresh = Vec::new();
    let mut ids: Vec<Uuid> = events
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| nodes.contains_key(d))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok((out, fresh));
    }
    // The highest event number applied per device, and the active alarm per device and rule
    // (the newest, should there ever be two).
    let mut high: HashMap<Uuid, i64> = HashMap::with_capacity(ids.len());
    let mut open: HashMap<(Uuid, String), (Uuid, i64, DateTime<Utc>)> = HashMap::new();
    for part in id_chunks(&ids) {
        let params: Vec<Value> = part.iter().map(|d| Value::from(*d)).collect();
        let sql = format!(
            "SELECT device_id, max(last_event_no) AS high FROM alarms \
             WHERE device_id IN ({}) GROUP BY device_id",
            marks(1, part.len())
        );
        for r in tx.conn().query(&sql, &params)? {
            let h: Option<i64> = r.get("high")?;
            high.insert(r.get("device_id")?, h.unwrap_or(0));
        }
        let sql = format!(
            "SELECT id, device_id, rule_id, updates, raised_at FROM alarms \
             WHERE device_id IN ({}) AND active = ${}",
            marks(1, part.len()),
            part.len() + 1
        );
        let mut params = params;
        params.push(Value::from(true));
        for r in tx.conn().query(&sql, &params)? {
            let key: (Uuid, String) = (r.get("device_id")?, r.get("rule_id")?);
            let row: (Uuid, i64, DateTime<Utc>) =
                (r.get("id")?, r.get("updates")?, r.get("raised_at")?);
            match open.get(&key) {
                Some(have) if have.2 >= row.2 => {}
                _ => {
                    open.insert(key, row);
                }
            }
        }
    }
    // Apply in memory, in order. `current`: the alarm an event of (device, rule) acts on, as an
    // index into `touched`; an alarm cleared here leaves it.
    let mut touched: Vec<Touched> = Vec::new();
    let mut current: HashMap<(Uuid, String), Option<usize>> = HashMap::new();
    for (device_id, evs) in events {
        if !nodes.contains_key(device_id) {
            continue;
        }
        let h = high.entry(*device_id).or_insert(0);
        for ne in evs {
            if ne.no <= *h {
                out.skipped += 1;
                continue;
            }
            *h = ne.no;
            let key = (*device_id, ne.event.rule_id().to_owned());
            let slot = match current.get(&key) {
                Some(s) => *s,
                None => {
                    let s = open.get(&key).map(|(id, updates, _)| {
                        touched.push(Touched {
                            id: *id,
                            fresh: false,
                            device_id: *device_id,
                            rule_id: key.1.clone(),
                            active: true,
                            updates: *updates,
                            last_at: None,
                            last_value: None,
                            cleared_at: None,
                            last_event_no: 0,
                            raised: None,
                        });
                        touched.len() - 1
                    });
                    current.insert(key.clone(), s);
                    s
                }
            };
            match (&ne.event, slot) {
                (
                    Event::Raise {
                        alarm_type,
                        severity,
                        at,
                        value,
                        ..
                    },
                    None,
                ) => {
                    touched.push(Touched {
                        id: tx.new_id(),
                        fresh: true,
                        device_id: *device_id,
                        rule_id: key.1.clone(),
                        active: true,
                        updates: 0,
                        last_at: Some(*at),
                        last_value: Some(*value),
                        cleared_at: None,
                        last_event_no: ne.no,
                        raised: Some((alarm_type.clone(), *severity, *at, *value)),
                    });
                    current.insert(key, Some(touched.len() - 1));
                }
                (Event::Raise { at, value, .. } | Event::Update { at, value, .. }, Some(i)) => {
                    let t = &mut touched[i];
                    t.last_at = Some(*at);
                    t.last_value = Some(*value);
                    t.updates += 1;
                    t.last_event_no = ne.no;
                    out.updated += 1;
                }
                (Event::Clear { at, value, .. }, Some(i)) => {
                    let t = &mut touched[i];
                    t.active = false;
                    t.cleared_at = Some(*at);
                    if let Some(v) = value {
                        t.last_value = Some(Some(*v));
                    }
                    t.last_event_no = ne.no;
                    current.insert(key, None);
                }
                // An update or clear with no active alarm (cleared by hand meanwhile): nothing.
                (Event::Update { .. } | Event::Clear { .. }, None) => out.skipped += 1,
            }
        }
    }
    let now = tx.now();
    const COLS: [&str; 17] = [
        "id",
        "device_id",
        "node_id",
        "rule_id",
        "alarm_type",
        "severity",
        "active",
        "acknowledged",
        "raised_at",
        "last_at",
        "last_value",
        "updates",
        "escalated_level",
        "last_event_no",
        "cleared_at",
        "created_at",
        "updated_at",
    ];
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for t in &touched {
        if !t.fresh {
            continue;
        }
        let Some((alarm_type, severity, raised_at, first_value)) = &t.raised else {
            continue;
        };
        let node = nodes.get(&t.device_id).copied().unwrap_or_default();
        rows.push(vec![
            t.id.into(),
            t.device_id.into(),
            node.into(),
            t.rule_id.as_str().into(),
            alarm_type.as_str().into(),
            severity.as_str().into(),
            t.active.into(),
            false.into(),
            (*raised_at).into(),
            t.last_at.unwrap_or(*raised_at).into(),
            t.last_value.unwrap_or(*first_value).into(),
            t.updates.into(),
            0i64.into(),
            t.last_event_no.into(),
            t.cleared_at.into(),
            now.into(),
            now.into(),
        ]);
        out.raised.push(t.id);
        fresh.push((t.id, t.device_id, t.rule_id.clone(), alarm_type.clone()));
        if !t.active {
            out.cleared.push(t.id);
        }
    }
    tx.insert_many("alarms", &COLS, &rows)?;
    for t in &touched {
        if t.fresh || t.last_event_no == 0 {
            continue;
        }
        let mut cols: Vec<(&str, Value)> = Vec::with_capacity(8);
        if let Some(at) = t.last_at {
            cols.push(("last_at", at.into()));
            cols.push(("updates", t.updates.into()));
        }
        if let Some(v) = t.last_value {
            cols.push(("last_value", v.into()));
        }
        if !t.active {
            cols.push(("active", false.into()));
            cols.push(("cleared_at", t.cleared_at.into()));
            out.cleared.push(t.id);
        }
        cols.push(("last_event_no", t.last_event_no.into()));
        cols.push(("updated_at", now.into()));
        tx.update("alarms", t.id, &cols)?;
    }
    Ok((out, fresh))
}

// ---------------------------------------------------------------------------------------------
// Alarms.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alarm {
    pub id: Uuid,
    pub device_id: Uuid,
    pub device_code: String,
    pub device_name: String,
    pub node_id: Uuid,
    pub rule_id: String,
    pub alarm_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    /// `active_unacked`, `active_acked`, `cleared_unacked` or `cleared_acked`.
    pub status: String,
    pub active: bool,
    pub acknowledged: bool,
    pub raised_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub last_value: Option<f64>,
    pub updates: i64,
    pub acked_at: Option<DateTime<Utc>>,
    pub acked_by: Option<Uuid>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub assignee: Option<Uuid>,
    pub escalated_level: i64,
    pub escalated_at: Option<DateTime<Utc>>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

const ALARM_COLS: &str = "a.id, a.device_id, d.code AS device_code, d.name AS device_name, \
    a.node_id, a.rule_id, a.alarm_type, a.severity, a.active, a.acknowledged, a.raised_at, \
    a.last_at, a.last_value, a.updates, a.acked_at, a.acked_by, a.cleared_at, a.assignee, \
    a.escalated_level, a.escalated_at, d.lon, d.lat";

const ALARM_FROM: &str = "alarms a JOIN devices d ON d.id = a.device_id";

impl Alarm {
    fn from_row(r: &Row) -> Result<Self> {
        let sev: String = r.get("severity")?;
        let active: bool = r.get("active")?;
        let acknowledged: bool = r.get("acknowledged")?;
        let status = anxin_domain::alarm::AlarmStatus {
            active,
            acknowledged,
        };
        Ok(Self {
            id: r.get("id")?,
            device_id: r.get("device_id")?,
            device_code: r.get("device_code")?,
            device_name: r.get("device_name")?,
            node_id: r.get("node_id")?,
            rule_id: r.get("rule_id")?,
            alarm_type: r.get("alarm_type")?,
            severity: Severity::parse(&sev)
                .map_err(|_| StoreError::Backend(format!("severity {sev}")))?,
            status: status.as_str().to_owned(),
            active,
            acknowledged,
            raised_at: r.get("raised_at")?,
            last_at: r.get("last_at")?,
            last_value: r.get("last_value")?,
            updates: r.get("updates")?,
            acked_at: r.get("acked_at")?,
            acked_by: r.get("acked_by")?,
            cleared_at: r.get("cleared_at")?,
            assignee: r.get("assignee")?,
            escalated_level: r.get("escalated_level")?,
            escalated_at: r.get("escalated_at")?,
            lon: r.get("lon")?,
            lat: r.get("lat")?,
        })
    }
    pub fn status(&self) -> anxin_domain::alarm::AlarmStatus {
        anxin_domain::alarm::AlarmStatus {
            active: self.active,
            acknowledged: self.acknowledged,
        }
    }
}

const ALARM_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "a.node_id",
    grid: Some("d.grid_id"),
    household: None,
};

fn load_alarm(conn: &mut dyn Conn, caller: &Caller, p: Permission, id: Uuid) -> Result<Alarm> {
    let mut w = Where::new();
    let n = w.bind(id);
    w.push(format!("a.id = ${n}"));
    w.scope(conn, &caller.reach(p), ALARM_SCOPE);
    let row = conn
        .query_one(
            &format!("SELECT {ALARM_COLS} FROM {ALARM_FROM} WHERE {}", w.sql()),
            &w.params,
        )?
        .ok_or(StoreError::NotFound)?;
    Alarm::from_row(&row)
}

pub fn get_alarm(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Alarm> {
    load_alarm(conn, caller, Permission::ReadMonitor, id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlarmQuery {
    /// Only active (true) or only cleared (false) alarms.
    pub active: Option<bool>,
    /// Only unacknowledged (true) or only acknowledged (false) alarms.
    pub unacked: Option<bool>,
    /// Any node: alarms in its subtree.
    pub node: Option<Uuid>,
    pub alarm_type: Option<String>,
    pub device_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub fn list_alarms(conn: &mut dyn Conn, caller: &Caller, q: AlarmQuery) -> Result<Page<Alarm>> {
    let paging = Paging::parse(PageInput {
        limit: q.limit,
        offset: q.offset,
    })?;
    let mut w = Where::new();
    w.scope(conn, &caller.reach(Permission::ReadMonitor), ALARM_SCOPE);
    if let Some(a) = q.active {
        let n = w.bind(a);
        w.push(format!("a.active = ${n}"));
    }
    if let Some(u) = q.unacked {
        let n = w.bind(!u);
        w.push(format!("a.acknowledged = ${n}"));
    }
    if let Some(node) = q.node {
        w.under("a.node_id", node);
    }
    if let Some(t) = q.alarm_type {
        let t = text_required("alarm_type", Some(t), 40)?;
        let n = w.bind(t);
        w.push(format!("a.alarm_type = ${n}"));
    }
    if let Some(d) = q.device_id {
        let n = w.bind(d);
        w.push(format!("a.device_id = ${n}"));
    }
    page(
        conn,
        ALARM_FROM,
        ALARM_COLS,
        w,
        "a.raised_at DESC, a.id",
        paging,
        Alarm::from_row,
    )
}

fn status_err(code: &'static str, e: &DomainError) -> StoreError {
    StoreError::Conflict {
        code,
        detail: e.to_string(),
    }
}

/// Acknowledge an alarm (active or cleared).
pub fn ack_alarm(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Alarm> {
    let a = load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)?;
    let next = a
        .status()
        .ack()
        .map_err(|e| status_err("alarm.already_acknowledged", &e))?;
    let now = tx.now();
    tx.update(
        "alarms",
        id,
        &[
            ("acknowledged", next.acknowledged.into()),
            ("acked_at", now.into()),
            ("acked_by", caller.user_id.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)
}

/// Clear an alarm by hand (the sensor will not: e.g. it was removed). A new raise of the rule
/// opens a new alarm.
pub fn clear_alarm(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Alarm> {
    let a = load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)?;
    let next = a
        .status()
        .clear()
        .map_err(|e| status_err("alarm.already_cleared", &e))?;
    let now = tx.now();
    tx.update(
        "alarms",
        id,
        &[
            ("active", next.active.into()),
            ("cleared_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    /// A staff user who may handle alarms here; `null` unassigns.
    pub assignee: Option<Uuid>,
}

pub fn assign_alarm(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    assignee: Option<Uuid>,
) -> Result<Alarm> {
    let a = load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)?;
    if let Some(u) = assignee {
        // The assignee must hold a grant that reaches the alarm's node and may handle alarms.
        let now = tx.now();
        let who = Caller::load(tx.conn(), u, now)?;
        let reach = who.reach(Permission::HandleAlarms);
        if reach.is_empty() || !reach.contains_node(tx.conn(), a.node_id)? {
            return Err(StoreError::invalid("alarm.assignee_invalid", "assignee"));
        }
    }
    let now = tx.now();
    tx.update(
        "alarms",
        id,
        &[("assignee", assignee.into()), ("updated_at", now.into())],
    )?;
    load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmNote {
    pub id: Uuid,
    pub alarm_id: Uuid,
    pub author: Option<Uuid>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub body: Option<String>,
}

pub fn add_note(tx: &mut Tx, caller: &Caller, id: Uuid, input: NoteInput) -> Result<AlarmNote> {
    let body = text_required_multiline("body", input.body, NOTE_MAX)?;
    load_alarm(tx.conn(), caller, Permission::HandleAlarms, id)?;
    let note_id = tx.new_id();
    let now = tx.now();
    tx.execute_unlogged(
        "INSERT INTO alarm_notes (id, alarm_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        &params![note_id, id, caller.user_id, body.as_str(), now],
    )?;
    Ok(AlarmNote {
        id: note_id,
        alarm_id: id,
        author: caller.user_id,
        body,
        created_at: now,
    })
}

fn text_required_multiline(field: &str, raw: Option<String>, max: usize) -> Result<String> {
    let s = required(field, raw)?;
    let s = s.trim();
    if s.is_empty() {
        return Err(StoreError::invalid("value.required", field));
    }
    if s.chars().count() > max {
        return Err(StoreError::invalid("value.too_long", field));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(StoreError::invalid("value.invalid", field));
    }
    Ok(s.to_owned())
}

pub fn list_notes(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Vec<AlarmNote>> {
    load_alarm(conn, caller, Permission::ReadMonitor, id)?;
    conn.query(
        "SELECT id, alarm_id, author, body, created_at FROM alarm_notes WHERE alarm_id = $1 \
         ORDER BY created_at, id",
        &params![id],
    )?
    .iter()
    .map(|r| {
        Ok(AlarmNote {
            id: r.get("id")?,
            alarm_id: r.get("alarm_id")?,
            author: r.get("author")?,
            body: r.get("body")?,
            created_at: r.get("created_at")?,
        })
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Escalation.

/// An unacknowledged alarm that may need escalating.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub id: Uuid,
    pub node_id: Uuid,
    pub device_code: String,
    pub alarm_type: String,
    pub severity: String,
    pub raised_at: DateTime<Utc>,
    pub escalated_level: i64,
}

pub fn unacked_alarms(conn: &mut dyn Conn) -> Result<Vec<Unacked>> {
    conn.query(
        "SELECT a.id, a.node_id, d.code, a.alarm_type, a.severity, a.raised_at, a.escalated_level \
         FROM alarms a JOIN devices d ON d.id = a.device_id WHERE a.acknowledged = $1 \
         ORDER BY a.raised_at",
        &params![false],
    )?
    .iter()
    .map(|r| {
        Ok(Unacked {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            device_code: r.get("code")?,
            alarm_type: r.get("alarm_type")?,
            severity: r.get("severity")?,
            raised_at: r.get("raised_at")?,
            escalated_level: r.get("escalated_level")?,
        })
    })
    .collect()
}

/// The chain of ancestors of `node`, nearest first (not including `node`).
pub fn ancestors(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<(Uuid, String)>> {
    let mut out = Vec::new();
    let mut cur = node;
    for _ in 0..16 {
        let Some(r) = conn.query_one(
            "SELECT p.id, p.name FROM nodes n JOIN nodes p ON p.id = n.parent_id WHERE n.id = $1",
            &params![cur],
        )?
        else {
            break;
        };
        cur = r.get("id")?;
        out.push((cur, r.get("name")?));
    }
    Ok(out)
}

/// Record that an alarm was escalated to `level` (only upwards, and only if still unacked).
/// Returns whether it changed.
pub fn set_escalated(tx: &mut Tx, id: Uuid, level: i64) -> Result<bool> {
    let Some(r) = tx.conn().query_one(
        "SELECT escalated_level, acknowledged FROM alarms WHERE id = $1",
        &params![id],
    )?
    else {
        return Ok(false);
    };
    let cur: i64 = r.get("escalated_level")?;
    let acked: bool = r.get("acknowledged")?;
    if acked || cur >= level {
        return Ok(false);
    }
    let now = tx.now();
    tx.update(
        "alarms",
        id,
        &[
            ("escalated_level", level.into()),
            ("escalated_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(true)
}

/// An officer to notify at a node: a user whose active grant at exactly this node has the
/// permission asked for (handle alarms, handle hazards), with the phone of their duty entry
/// there (sealed; opened for sending only). Alarm and hazard escalation both ask here.
#[derive(Debug, Clone)]
pub struct Officer {
    pub user_id: Uuid,
    pub phone: Option<String>,
    pub phone_mask: Option<String>,
}

pub fn officers_at(
    conn: &mut dyn Conn,
    env: &crate::Env,
    node: Uuid,
    now: DateTime<Utc>,
    permission: Permission,
) -> Result<Vec<Officer>> {
    let rows = conn.query(
        "SELECT DISTINCT g.user_id, g.role FROM grants g JOIN users u ON u.id = g.user_id \
         WHERE g.scope_kind = 'node' AND g.scope_id = $1 AND g.revoked_at IS NULL \
         AND g.valid_from <= $2 AND (g.valid_to IS NULL OR g.valid_to > $2) AND u.disabled = $3 \
         ORDER BY g.user_id",
        &params![node, now, false],
    )?;
    let mut out: Vec<Officer> = Vec::new();
    for r in rows {
        let role: String = r.get("role")?;
        let Ok(role) = role.parse::<anxin_domain::Role>() else {
            continue;
        };
        if !role.permissions().contains(&permission) {
            continue;
        }
        let user_id: Uuid = r.get("user_id")?;
        if out.iter().any(|o| o.user_id == user_id) {
            continue;
        }
        let duty = conn.query_one(
            "SELECT phone_ct, phone_mask FROM duties WHERE node_id = $1 AND user_id = $2 \
             AND phone_ct IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
            &params![node, user_id],
        )?;
        let (phone, phone_mask) = match duty {
            Some(d) => {
                let ct: Vec<u8> = d.get("phone_ct")?;
                (
                    Some(env.keys.open_string(conn, "duties.phone", &ct)?),
                    d.get("phone_mask")?,
                )
            }
            None => (None, None),
        };
        out.push(Officer {
            user_id,
            phone,
            phone_mask,
        });
    }
    Ok(out)
}
