//! Pages for supervision (红黄牌) (owner: supervision): `/manage/supervision`, the ranked table of
//! the communities under a node for a quarter — worst first, each with its card, the card's
//! reasons and the trend of its stored rounds as a small ECharts line — for street and district
//! officers, and a community's own figures for its staff (the same table, one line, with the
//! figures also under stable ids: `sup-on-time`, `sup-due`, `sup-closed-on-time`, `sup-overdue`,
//! `sup-inspections`, `sup-plan-late`, `sup-card`). The running quarter is computed live on every
//! load. An officer may store a round on demand (the button posts to
//! `/manage/supervision`). Everything goes through `anxin_store::hazards::supervision`,
//! which checks the caller's reach.
//!
//! The chart script is served by this module (`/manage/supervision/trend.js`, same origin, as
//! the CSP asks) and draws each line's trend from its `data-trend` attribute with the ECharts the
//! app serves from `/static/vendor/echarts.min.js`; without script the trend is listed as text.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_store::hazards::supervision::{self as sup, Line, Quarter, RoundInput, TableQuery};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/supervision",
            &["GET", "POST"],
            Serves::Records("nodes"),
            get(page).post(create_round),
        )
        .route(
            "/manage/supervision/trend.js",
            &["GET"],
            Serves::Public,
            get(script),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

use crate::web::forms::local_minute as local;

/// A share as the page shows it: percent rounded down (as the reasons do), or a dash.
fn pct(share: Option<f64>) -> String {
    share.map_or_else(
        || "—".to_owned(),
        |s| format!("{}%", ((s * 100.0) + 1e-9).floor() as i64),
    )
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    node: Option<String>,
    quarter: Option<String>,
    lang: Option<String>,
}

fn line_ctx(ui: &Ui, l: &Line) -> Json {
    let card_key = l.card.as_deref().unwrap_or("unscored");
    let reasons: Vec<&str> = l
        .reasons
        .iter()
        .map(|r| {
            if ui.lang == crate::web::Lang::En {
                r.text_en.as_str()
            } else {
                r.text.as_str()
            }
        })
        .collect();
    let trend: Vec<Json> = l
        .trend
        .iter()
        .map(|p| {
            json!({
                "quarter": p.quarter, "live": p.live,
                "on_time": p.on_time_share.map(|s| (s * 1000.0).round() / 10.0),
                "inspections": p.inspections_share.map(|s| (s * 1000.0).round() / 10.0),
                "overdue": p.overdue, "card": p.card,
                "card_text": t(ui, &format!("sup.card.{}", p.card.as_deref().unwrap_or("unscored"))),
            })
        })
        .collect();
    json!({
        "rank": l.rank,
        "id": l.community_id,
        "name": l.community_name,
        "street": l.street_name,
        "street_id": l.street_id,
        "due": l.figures.hazards_due,
        "closed_on_time": l.figures.closed_on_time,
        "on_time": pct(l.on_time_share),
        "overdue": l.figures.overdue,
        "plan_late": l.figures.plan_late,
        "expected": l.figures.inspections_expected,
        "done": l.figures.inspections_done,
        "inspections": pct(l.inspections_share),
        "card": card_key,
        "card_text": t(ui, &format!("sup.card.{card_key}")),
        "nothing": l.nothing_to_score,
        "reasons": reasons,
        "trend": trend.clone(),
        "trend_json": serde_json::to_string(&trend).unwrap_or_else(|_| "[]".into()),
    })
}

async fn page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Query(q): Query<PageQuery>,
) -> Response {
    let s = staff!(ui, s);
    let _ = q.lang;
    let node = match q.node.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => None,
        Some(n) => match n.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => return error_page(&ui, &ApiError::not_found()),
        },
    };
    let caller = s.caller().clone();
    let now = app.clock.now();
    let th = app.config.supervision.thresholds();
    let tq = TableQuery {
        node,
        quarter: q.quarter.clone(),
    };
    let got = app
        .store
        .read(move |c, _| {
            let table = sup::table(c, &caller, &tq, now, &th)?;
            let rounds = sup::list_rounds(c, &caller, 10)?;
            let supervised = sup::supervised_nodes(c, &caller)?;
            Ok((table, rounds, supervised))
        })
        .await;
    let (table, rounds, supervised) = match got {
        Ok(x) => x,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let lines: Vec<Json> = table.lines.iter().map(|l| line_ctx(&ui, l)).collect();
    let current = Quarter::containing(now);
    let mut quarters = Vec::new();
    let mut qq = current;
    for _ in 0..=sup::TREND_QUARTERS {
        quarters.push(qq.to_string());
        qq = qq.prev();
    }
    let rounds: Vec<Json> = rounds
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "quarter": r.quarter,
                "cause": t(&ui, &format!("sup.cause.{}", r.cause)),
                "at": local(r.created_at), "as_of": local(r.as_of),
                "communities": r.communities, "red": r.red, "yellow": r.yellow,
            })
        })
        .collect();
    let supervised: Vec<Json> = supervised
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    let own = (table.lines.len() == 1).then(|| lines[0].clone());
    render(
        &ui,
        StatusCode::OK,
        "supervision.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            quarter => table.quarter.clone(),
            quarters => quarters,
            running => table.running,
            as_of => local(table.as_of),
            node => node.map(|n| n.to_string()),
            red => table.red,
            yellow => table.yellow,
            clean => table.clean,
            unscored => table.nothing_to_score,
            lines => minijinja::Value::from_serialize(&lines),
            own => minijinja::Value::from_serialize(&own),
            rounds => minijinja::Value::from_serialize(&rounds),
            supervised => minijinja::Value::from_serialize(&supervised),
        },
    )
}

#[derive(Debug, Deserialize)]
struct RoundForm {
    node_id: Option<String>,
    quarter: Option<String>,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

async fn create_round(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<RoundForm>,
) -> Response {
    let s = staff!(ui, s);
    let Some(node_id) = f
        .node_id
        .as_deref()
        .and_then(|n| n.trim().parse::<Uuid>().ok())
    else {
        return error_page(
            &ui,
            &ApiError::invalid("supervision.node_invalid", "node_id", "invalid node_id"),
        );
    };
    let input = RoundInput {
        node_id,
        quarter: f.quarter.filter(|q| !q.trim().is_empty()),
    };
    let caller = s.caller().clone();
    let th = app.config.supervision.thresholds();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            sup::run_round(tx, &caller, &input, &th)
        })
        .await;
    match r {
        Ok(r) => see_other(&format!(
            "/manage/supervision?node={node_id}&quarter={}",
            r.quarter
        )),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

/// Draws each line's trend (on-time share and inspections share per quarter) with ECharts.
const TREND_JS: &str = r#"(function () {
  function draw() {
    if (!window.echarts) { return; }
    // The worst 200 get a chart; a city's thousands of lines keep their text trend.
    document.querySelectorAll('[data-trend]').forEach(function (el, i) {
      if (i >= 200) { return; }
      var pts;
      try { pts = JSON.parse(el.getAttribute('data-trend')); } catch (e) { return; }
      if (!pts.length) { return; }
      var box = document.createElement('div');
      box.className = 'sup-chart';
      box.style.width = '160px';
      box.style.height = '48px';
      el.insertBefore(box, el.firstChild);
      var chart = window.echarts.init(box, null, { renderer: 'svg' });
      chart.setOption({
        animation: false,
        grid: { left: 2, right: 2, top: 4, bottom: 4 },
        tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', show: false, data: pts.map(function (p) { return p.quarter; }) },
        yAxis: { type: 'value', show: false, min: 0, max: 100 },
        series: [
          { name: el.getAttribute('data-on-time-label') || 'on time %', type: 'line', symbolSize: 4,
            data: pts.map(function (p) { return p.on_time; }) },
          { name: el.getAttribute('data-inspections-label') || 'inspections %', type: 'line', symbolSize: 4,
            lineStyle: { type: 'dashed' }, data: pts.map(function (p) { return p.inspections; }) }
        ]
      });
    });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', draw); } else { draw(); }
})();
"#;

async fn script() -> Response {
    let mut r = TREND_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
