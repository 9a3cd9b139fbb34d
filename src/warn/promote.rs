//! An alarm promoted to a draft warning: the fields an officer would otherwise type, filled in
//! from the alarm and its device — category from the kind of device, level from the severity,
//! the area a circle around the device (or its node when it has no location), the times in
//! Asia/Shanghai. The draft still goes through approval and issue like any other.

use anxin_domain::warning::{WarningCategory, WarningLevel};
use anxin_domain::{Permission, SHANGHAI};
use anxin_store::monitor::{self, Alarm, DeviceKind};
use anxin_store::scope::Caller;
use anxin_store::warnings::{self, Warning, WarningInput};
use anxin_store::{params, StoreError, WriteCtx};
use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::http::ApiError;

/// Metres around the device a promoted warning covers.
pub const RADIUS_M: f64 = 500.0;

/// Hours a promoted warning is in force unless the reviewer changes it.
pub const EXPIRES_HOURS: i64 = 6;

pub fn category(kind: DeviceKind) -> WarningCategory {
    match kind {
        DeviceKind::WaterLevel | DeviceKind::Manhole => WarningCategory::Flood,
        DeviceKind::Gas => WarningCategory::Gas,
        DeviceKind::Smoke => WarningCategory::Fire,
        DeviceKind::Tilt => WarningCategory::Geological,
        _ => WarningCategory::Other,
    }
}

pub fn level(a: &Alarm) -> WarningLevel {
    match a.severity {
        anxin_domain::alarm::Severity::Critical => WarningLevel::Orange,
        anxin_domain::alarm::Severity::Major => WarningLevel::Yellow,
        anxin_domain::alarm::Severity::Minor => WarningLevel::Blue,
    }
}

fn texts(a: &Alarm, cat: WarningCategory) -> (String, String, String) {
    let at = a
        .raised_at
        .with_timezone(&SHANGHAI)
        .format("%Y-%m-%d %H:%M");
    let value = a
        .last_value
        .map(|v| format!("，最近读数 {v:.2}"))
        .unwrap_or_default();
    let headline = format!("{}{}预警", a.device_name, cat.zh());
    let description = format!(
        "监测设备“{}”（{}）于 {at} 触发告警（{}）{value}。",
        a.device_name, a.device_code, a.alarm_type
    );
    let instruction = match cat {
        WarningCategory::Flood => "请远离低洼地带和地下空间，转移车辆，听从社区工作人员安排。",
        WarningCategory::Gas => {
            "请立即关闭燃气阀门，开窗通风，勿开关电器，撤离后拨打燃气抢修电话。"
        }
        WarningCategory::Fire => "请立即沿安全出口撤离，勿乘电梯，拨打 119。",
        WarningCategory::Geological => "请远离建筑物和边坡，到空旷处避险。",
        _ => "请注意安全，听从社区工作人员安排。",
    };
    (headline, description, instruction.to_owned())
}

async fn load(app: &App, caller: &Caller, id: Uuid) -> Result<(Alarm, DeviceKind), ApiError> {
    let caller = caller.clone();
    Ok(app
        .store
        .read(move |c, _| {
            let a = monitor::get_alarm(c, &caller, id)?;
            let d = monitor::get_device(c, &caller, a.device_id)?;
            Ok((a, d.kind))
        })
        .await?)
}

/// The draft's fields for the alarm.
pub fn input(a: &Alarm, kind: DeviceKind) -> WarningInput {
    let cat = category(kind);
    let (headline, description, instruction) = texts(a, cat);
    let area = match (a.lon, a.lat) {
        (Some(lon), Some(lat)) => {
            json!({ "circles": [{ "lon": lon, "lat": lat, "radius_m": RADIUS_M }] })
        }
        _ => json!({ "nodes": [a.node_id] }),
    };
    WarningInput {
        node_id: Some(a.node_id),
        level: Some(level(a).as_str().to_owned()),
        category: Some(cat.as_str().to_owned()),
        headline: Some(headline),
        description: Some(description),
        instruction: Some(instruction),
        area: Some(area),
        crs: Some("wgs84".to_owned()),
        ..WarningInput::default()
    }
}

/// The draft's fields for alarm `id` in the caller's reach (the form opened from the board).
pub async fn input_for(app: &App, caller: &Caller, id: Uuid) -> Result<WarningInput, ApiError> {
    let (a, kind) = load(app, caller, id).await?;
    Ok(input(&a, kind))
}

/// Check that the caller may draft in `node` and find the grid they draft in: none for node
/// grants (the node must be in their subtree); with `by_grid`, a grid worker's grid of that
/// community. Outside reach: not found, like a missing node. (The node pages pass `by_grid =
/// false`: a grid worker's reach is their grids, not the community's pages.)
pub async fn draft_place(
    app: &App,
    caller: &Caller,
    node: Uuid,
    by_grid: bool,
) -> Result<Option<Uuid>, ApiError> {
    let mut reach = caller.reach(Permission::DraftWarning);
    if !by_grid {
        reach.grids.clear();
    }
    Ok(app
        .store
        .read(move |c, _| {
            if reach.contains_node(c, node)? {
                return Ok(None);
            }
            for g in &reach.grids {
                let community: Option<Uuid> = c
                    .query_one("SELECT community_id FROM grids WHERE id = $1", &params![*g])?
                    .map(|r| r.get("community_id"))
                    .transpose()?;
                if community == Some(node) {
                    return Ok(Some(*g));
                }
            }
            Err(StoreError::NotFound)
        })
        .await?)
}

/// The node a caller's drafts start in on the pages: their first node grant (grid workers
/// draft from an alarm of their grid).
pub fn home_node(caller: &Caller) -> Option<Uuid> {
    caller
        .reach(Permission::DraftWarning)
        .nodes
        .first()
        .copied()
}

/// Promote alarm `id` (in the caller's reach) to a draft warning in one step. The draft is
/// made in the alarm's node; for a grid worker, in their grid of it.
pub async fn draft_from_alarm(
    app: &App,
    caller: &Caller,
    ctx: WriteCtx,
    id: Uuid,
) -> Result<Warning, ApiError> {
    if !caller.has(Permission::DraftWarning) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            "may not draft warnings",
        ));
    }
    let (a, kind) = load(app, caller, id).await?;
    let mut fields = input(&a, kind);
    fields.grid_id = draft_place(app, caller, a.node_id, true).await?;
    fields.expires_at = Some(app.clock.now() + chrono::TimeDelta::hours(EXPIRES_HOURS));
    let caller = caller.clone();
    let sender = app.config.warnings.sender.clone();
    Ok(app
        .store
        .write(ctx, move |tx| {
            warnings::draft_from(tx, &caller, fields, &sender)
        })
        .await?)
}
