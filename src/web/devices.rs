//! Devices on the management end: the list of the caller's devices and a device's page with its
//! readings as a chart (ECharts, served by Anxin; the numbers also as a table) and its alarms.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::monitor::{self, AlarmQuery, Device, DeviceQuery};
use anxin_store::readings::{Rollup, Step};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::{error_page, i18n, refused, render, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/devices",
            &["GET"],
            Serves::Records("devices"),
            get(list),
        )
        .route(
            "/manage/devices/{id}",
            &["GET"],
            Serves::Records("devices"),
            get(show),
        )
        .route(
            "/manage/devices/{id}/series.json",
            &["GET"],
            Serves::Records("devices"),
            get(series_json),
        )
}

/// How far back the chart looks, and at what step.
const WINDOW_HOURS: i64 = 24;

use crate::web::forms::local_minute as local;

fn kind_text(ui: &Ui, d: &Device) -> String {
    crate::web::forms::enum_label(ui, d.kind.zh(), d.kind.as_str())
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page: Option<i64>,
}

async fn list(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let page = q
        .ok()
        .and_then(|Query(q)| q.page)
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            monitor::list_devices(
                c,
                &caller,
                DeviceQuery {
                    limit: Some(50),
                    offset: Some((page - 1) * 50),
                    ..DeviceQuery::default()
                },
            )
        })
        .await;
    let list = match got {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let mut sec = crate::web::forms::Section::new(
        &ui,
        "devices",
        "device.title",
        &[
            "device.name",
            "device.code",
            "device.kind",
            "device.enabled",
        ],
    );
    for d in &list.items {
        sec.row(
            Some(format!("/manage/devices/{}", d.id)),
            vec![
                d.name.clone(),
                d.code.clone(),
                kind_text(&ui, d),
                i18n::t(ui.lang, if d.enabled { "device.on" } else { "device.off" }),
            ],
        );
    }
    crate::web::forms::record_page(
        &ui,
        &s,
        crate::web::forms::RecordPage {
            title: i18n::t(ui.lang, "device.title"),
            tag: i18n::t(ui.lang, "device.total").replace("{n}", &list.total.to_string()),
            facts: Vec::new(),
            actions: Vec::new(),
            sections: vec![sec],
        },
    )
}

/// The chart's series from minute rollups: `{"metrics": {name: [[t_ms, avg, min, max], …]}}`.
fn series(rollups: &[Rollup]) -> serde_json::Value {
    let mut metrics = serde_json::Map::new();
    for r in rollups {
        let e = metrics.entry(r.metric.clone()).or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!([r.bucket.timestamp_millis(), r.avg, r.min, r.max]));
        }
    }
    json!({ "metrics": metrics })
}

/// The device (in the caller's reach) and its last day of minute rollups.
async fn load(app: &App, s: &Staff, id: Uuid) -> Result<(Device, Vec<Rollup>), ApiError> {
    let caller = s.caller().clone();
    let d = app
        .store
        .read(move |c, _| monitor::get_device(c, &caller, id))
        .await?;
    let to = app.clock.now();
    let from = to - chrono::TimeDelta::hours(WINDOW_HOURS);
    let readings = app.monitor.readings.clone();
    let rollups =
        tokio::task::spawn_blocking(move || readings.rollups(id, Step::Minute, from, to, 10_000))
            .await
            .map_err(|e| anxin_store::StoreError::Unavailable(e.to_string()))??;
    Ok((d, rollups))
}

async fn series_json(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    match load(&app, &s, id).await {
        Ok((_, r)) => Json(series(&r)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let (d, rollups) = match load(&app, &s, id).await {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &e),
    };
    let caller = s.caller().clone();
    let alarms = match app
        .store
        .read(move |c, _| {
            monitor::list_alarms(
                c,
                &caller,
                AlarmQuery {
                    device_id: Some(id),
                    limit: Some(20),
                    ..AlarmQuery::default()
                },
            )
        })
        .await
    {
        Ok(a) => a.items,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    // The table under the chart: the latest buckets first, at most 60.
    let table: Vec<_> = rollups
        .iter()
        .rev()
        .take(60)
        .map(|r| {
            json!([
                local(r.bucket),
                r.metric,
                format!("{:.2}", r.avg),
                format!("{:.2}", r.min),
                format!("{:.2}", r.max)
            ])
        })
        .collect();
    let alarms: Vec<_> = alarms
        .iter()
        .map(|a| {
            json!({
                "type": a.alarm_type,
                "status": i18n::t(ui.lang, &format!("alarm.status.{}", a.status)),
                "raised": local(a.raised_at),
                "value": a.last_value.map(|v| format!("{v:.2}")),
            })
        })
        .collect();
    let texts = json!({ "empty": i18n::t(ui.lang, "device.no_readings") }).to_string();
    render(
        &ui,
        StatusCode::OK,
        "device.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            d => minijinja::Value::from_serialize(&d),
            kind => kind_text(&ui, &d),
            series => series(&rollups).to_string(),
            texts => texts,
            table => table,
            alarms => alarms,
            hours => WINDOW_HOURS,
        },
    )
}
