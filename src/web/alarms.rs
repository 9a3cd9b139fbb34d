//! The live alarm board (management end): the alarms of the caller's subtree in a list and on a
//! map, refreshed without a reload when the change stream announces an alarm; acknowledge and
//! clear from the board. Reads and writes go through the monitoring store's scoped functions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::monitor::{self, Alarm, AlarmQuery};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::Fields;
use crate::web::{error_page, i18n, refused, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/alarms",
            &["GET"],
            Serves::Records("alarms"),
            get(board),
        )
        .route(
            "/manage/alarms/{id}/ack",
            &["POST"],
            Serves::Records("alarms"),
            post(ack),
        )
        .route(
            "/manage/alarms/{id}/warning",
            &["POST"],
            Serves::Records("alarms"),
            post(promote),
        )
        .route(
            "/manage/alarms/{id}/clear",
            &["POST"],
            Serves::Records("alarms"),
            post(clear),
        )
}

const BOARD_SIZE: i64 = 200;

#[derive(Debug, Default, Deserialize)]
struct BoardQuery {
    /// `active` (default), `unacked` or `all`.
    show: Option<String>,
    /// `1`: only the results section (the board's live refresh).
    fragment: Option<String>,
}

impl BoardQuery {
    fn show(&self) -> &str {
        match self.show.as_deref() {
            Some("all") => "all",
            Some("unacked") => "unacked",
            _ => "active",
        }
    }
}

/// Asia/Shanghai, to the second.
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&anxin_domain::SHANGHAI)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn row(ui: &Ui, a: &Alarm) -> serde_json::Value {
    let status = i18n::t(ui.lang, &format!("alarm.status.{}", a.status));
    json!({
        "id": a.id,
        "device": a.device_name,
        "device_code": a.device_code,
        "device_id": a.device_id,
        "node_id": a.node_id,
        "type": a.alarm_type,
        "severity": a.severity.as_str(),
        "severity_text": i18n::t(ui.lang, &format!("alarm.severity.{}", a.severity.as_str())),
        "status": a.status,
        "status_text": status,
        "active": a.active,
        "acknowledged": a.acknowledged,
        "raised": when(a.raised_at),
        "last": when(a.last_at),
        "value": a.last_value.map(|v| format!("{v:.2}")),
        "updates": a.updates,
        "escalated": a.escalated_level,
        "lon": a.lon,
        "lat": a.lat,
    })
}

async fn board(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<BoardQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let show = q.show().to_owned();
    let query = AlarmQuery {
        active: (show == "active").then_some(true),
        unacked: (show == "unacked").then_some(true),
        limit: Some(BOARD_SIZE),
        ..AlarmQuery::default()
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| monitor::list_alarms(c, &caller, query))
        .await;
    let list = match got {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let rows: Vec<_> = list.items.iter().map(|a| row(&ui, a)).collect();
    let ctx = context! {
        me => crate::web::manage::who_ctx(&s),
        show => show,
        rows => minijinja::Value::from_serialize(&rows),
        total_text => i18n::t(ui.lang, "alarm.total").replace("{n}", &list.total.to_string()),
        handle => s.caller().has(anxin_domain::Permission::HandleAlarms),
        draft => s.caller().has(anxin_domain::Permission::DraftWarning),
        // Node staff open the filled-in form (to set the level); grid workers draft in one step.
        draft_form => crate::warn::promote::home_node(s.caller()).is_some(),
    };
    if q.fragment.as_deref() == Some("1") {
        return render(&ui, StatusCode::OK, "alarms_results.html", ctx);
    }
    render(&ui, StatusCode::OK, "alarms.html", ctx)
}

/// Back to the board as it was shown (`show` from the form), or to the board.
fn back(f: &Fields) -> Response {
    match f.get("show").map(String::as_str) {
        Some(s @ ("all" | "unacked" | "active")) => see_other(&format!("/manage/alarms?show={s}")),
        _ => see_other("/manage/alarms"),
    }
}

async fn ack(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| monitor::ack_alarm(tx, &caller, id))
        .await
    {
        Ok(_) => back(&f),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

async fn clear(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let caller = s.caller().clone();
    match app
        .store
        .write(s.write_ctx(), move |tx| {
            monitor::clear_alarm(tx, &caller, id)
        })
        .await
    {
        Ok(_) => back(&f),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

/// Promote the alarm to a draft warning in one step (grid workers, whose drafts are made in
/// their grid); the draft opens for review.
async fn promote(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    match crate::warn::promote::draft_from_alarm(&app, s.caller(), s.write_ctx(), id).await {
        Ok(w) => see_other(&format!("/manage/warnings/{}", w.id)),
        Err(e) => error_page(&ui, &e),
    }
}
