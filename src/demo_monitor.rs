//! The demo's sensors and a rainstorm to replay through them, so a newcomer sees the whole chain:
//! readings → rules → an alarm on the board → a warning.
//!
//! `anxin demo` puts three water-level gauges (积水监测) at low points of 水井坊社区 under one
//! profile. Their tokens are fixed (`anxin-demo-<code>`; demo only, listed in the README), so
//! `anxin demo --replay rainstorm` can send a rainstorm's readings to a running server over the
//! device HTTP API, in real time: the water rises past the alarm line, stays, and falls.

use std::time::Duration;

use anxin_store::monitor::{self, DeviceInput, NewDevice, NewProfile, ProfileInput};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;

/// (code, name, longitude and latitude offsets from the community's centre in degrees).
pub const GAUGES: &[(&str, &str, f64, f64)] = &[
    (
        "demo-sjf-water-1",
        "水井坊社区下穿隧道积水监测",
        0.0021,
        -0.0012,
    ),
    (
        "demo-sjf-water-2",
        "水井坊社区老旧小区地下车库积水监测",
        -0.0017,
        0.0009,
    ),
    (
        "demo-sjf-water-3",
        "水井坊社区锦江沿岸水位监测",
        0.0005,
        0.0024,
    ),
];

/// The demo token of a gauge (never do this outside the demo: real tokens are random).
pub fn token(code: &str) -> String {
    format!("anxin-demo-{code}")
}

/// The profile: water above 0.30 m for 20 s is a major alarm that clears below 0.15 m
/// (hysteresis); above 0.50 m at once is critical; a gauge silent for 10 minutes is minor.
/// The durations are short so a replay shows them in a minute or two.
pub fn rules() -> serde_json::Value {
    json!({ "rules": [
        { "id": "waterlogging", "name": "积水超警戒", "alarm_type": "waterlogging", "severity": "major",
          "raise": { "kind": "sustained", "seconds": 20,
                     "cond": { "kind": "threshold", "metric": "level", "op": "above", "value": 0.30 } },
          "clear": { "kind": "threshold", "metric": "level", "op": "below", "value": 0.15 } },
        { "id": "deep_water", "name": "深度积水", "alarm_type": "deep_water", "severity": "critical",
          "raise": { "kind": "threshold", "metric": "level", "op": "above", "value": 0.50 },
          "clear": { "kind": "threshold", "metric": "level", "op": "below", "value": 0.40 } },
        { "id": "silent", "name": "设备离线", "alarm_type": "device_silent", "severity": "minor",
          "raise": { "kind": "silent", "seconds": 600 } }
    ]})
}

/// Create the gauges in `community` (centre `center`) unless they are there. Returns how many
/// were created.
pub async fn build(
    app: &App,
    community: Uuid,
    grid: Uuid,
    center: (f64, f64),
) -> anyhow::Result<usize> {
    let first = GAUGES[0].0;
    let there = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM devices WHERE code = $1",
                &params![first],
            )
        })
        .await?;
    if there > 0 {
        return Ok(0);
    }
    app.store
        .write(WriteCtx::system("demo-devices"), move |tx| {
            let sys = Caller::system();
            let profile = monitor::create_profile(
                tx,
                &sys,
                &NewProfile::parse(ProfileInput {
                    node_id: Some(community),
                    name: Some("积水监测".into()),
                    rules: Some(rules()),
                })?,
            )?;
            for (code, name, dlon, dlat) in GAUGES {
                let d = monitor::create_device(
                    tx,
                    &sys,
                    &NewDevice::parse(DeviceInput {
                        node_id: Some(community),
                        grid_id: Some(grid),
                        kind: Some("water_level".into()),
                        code: Some((*code).into()),
                        name: Some((*name).into()),
                        lon: Some(center.0 + dlon),
                        lat: Some(center.1 + dlat),
                        profile_id: Some(profile.id),
                        enabled: Some(true),
                        ..DeviceInput::default()
                    })?,
                )?;
                tx.update(
                    "devices",
                    d.device.id,
                    &[("token_hash", monitor::token_hash(&token(code)).into())],
                )?;
            }
            Ok(GAUGES.len())
        })
        .await
        .map_err(|e| anyhow::anyhow!("demo devices: {e}"))
}

/// The water level (metres) of gauge `g` at step `i` of `steps` of a rainstorm: dry, rising
/// past the alarm line, a peak (the first gauge past the deep-water line), then falling.
pub fn level(g: usize, i: usize, steps: usize) -> f64 {
    let x = i as f64 / steps.max(1) as f64;
    let peak = [0.62, 0.42, 0.36][g % 3];
    let shape = if x < 0.15 {
        0.0
    } else if x < 0.45 {
        (x - 0.15) / 0.30
    } else if x < 0.65 {
        1.0
    } else {
        (1.0 - (x - 0.65) / 0.35).max(0.0)
    };
    (0.02 + peak * shape * 100.0).round() / 100.0
}

/// Send a rainstorm to a running server: one reading per gauge every `interval`, `steps` times,
/// timestamped now. Prints a line per step.
pub async fn replay(base: &str, steps: usize, interval: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/api/v1/ingest/readings", base.trim_end_matches('/'));
    let seq0 = chrono::Utc::now().timestamp_millis() as u64;
    for i in 0..steps {
        let mut line = Vec::new();
        for (g, (code, ..)) in GAUGES.iter().enumerate() {
            let level = level(g, i, steps);
            let body = json!({
                "seq": seq0 + i as u64,
                "ts": chrono::Utc::now().to_rfc3339(),
                "values": { "level": level, "rain_mm_h": (level * 80.0).round(), "battery": 3.6 },
            });
            let r = client
                .post(&url)
                .bearer_auth(token(code))
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                anyhow::bail!(
                    "{code}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
            line.push(format!("{level:.2} m"));
        }
        println!("{:>3}/{steps}  {}", i + 1, line.join("  "));
        tokio::time::sleep(interval).await;
    }
    Ok(())
}
