//! Places on the management end: the buildings and facilities lists (search, pages).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use anxin_store::places::{self, BuildingFilter, BuildingQuery, FacilityFilter, FacilityQuery};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::{error_page, i18n, refused, render, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/buildings",
            &["GET"],
            Serves::Records("buildings"),
            get(buildings),
        )
        .route(
            "/manage/facilities",
            &["GET"],
            Serves::Records("facilities"),
            get(facilities),
        )
}

const PAGE_SIZE: i64 = 20;

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    kind: Option<String>,
    /// A node: only places in its subtree (the tree page links here).
    under: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
    fn under(&self) -> Option<uuid::Uuid> {
        self.under.as_deref().and_then(|u| u.trim().parse().ok())
    }
    fn kind(&self) -> Option<String> {
        self.kind
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
    fn q(&self) -> Option<String> {
        self.q
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

#[allow(clippy::too_many_arguments)]
fn list_page(
    ui: &Ui,
    s: &Staff,
    title: &str,
    path: &str,
    q: &ListQuery,
    total: i64,
    rows: Vec<serde_json::Value>,
    cols: &[&str],
    kinds: Vec<serde_json::Value>,
) -> Response {
    let page = q.page();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let cols: Vec<String> = cols.iter().map(|c| i18n::t(ui.lang, c)).collect();
    render(
        ui,
        StatusCode::OK,
        "places.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            title => i18n::t(ui.lang, title),
            action => path,
            q => q.q().unwrap_or_default(),
            kind => q.kind().unwrap_or_default(),
            under => q.under(),
            kinds => minijinja::Value::from_serialize(&kinds),
            rows => minijinja::Value::from_serialize(&rows),
            cols => cols,
            page => page,
            pages => pages,
            total_text => i18n::t(ui.lang, "places.total").replace("{n}", &total.to_string()),
            page_text => i18n::t(ui.lang, "people.page").replace("{p}", &page.to_string()).replace("{n}", &pages.to_string()),
        },
    )
}

async fn buildings(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let raw = BuildingQuery {
        q: q.q(),
        under: q.under(),
        limit: Some(PAGE_SIZE),
        offset: Some((q.page() - 1).saturating_mul(PAGE_SIZE)),
        ..BuildingQuery::default()
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| places::list_buildings(c, &caller, &BuildingFilter::parse(raw)?))
        .await;
    let list = match got {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let rows = list
        .items
        .iter()
        .map(|b| {
            json!({
                "id": b.id,
                "href": format!("/manage/buildings/{}", b.id),
                "cells": [b.name, b.address.clone().unwrap_or_default(), b.floors.map(|f| f.to_string()).unwrap_or_default(),
                          b.location.as_ref().map(|l| format!("{:.5}, {:.5}", l.lat, l.lon)).unwrap_or_default()],
            })
        })
        .collect();
    list_page(
        &ui,
        &s,
        "places.buildings",
        "/manage/buildings",
        &q,
        list.total,
        rows,
        &[
            "places.name",
            "places.address",
            "places.floors",
            "places.location",
        ],
        Vec::new(),
    )
}

async fn facilities(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let raw = FacilityQuery {
        q: q.q(),
        kind: q.kind(),
        under: q.under(),
        limit: Some(PAGE_SIZE),
        offset: Some((q.page() - 1).saturating_mul(PAGE_SIZE)),
        ..FacilityQuery::default()
    };
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| places::list_facilities(c, &caller, &FacilityFilter::parse(raw)?))
        .await;
    let list = match got {
        Ok(l) => l,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    let rows = list
        .items
        .iter()
        .map(|f| {
            let kind = serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            json!({
                "id": f.id,
                "href": format!("/manage/facilities/{}", f.id),
                "cells": [f.name, i18n::t(ui.lang, &format!("facility.{kind}")), f.capacity.map(|c| c.to_string()).unwrap_or_default(),
                          f.location.as_ref().map(|l| format!("{:.5}, {:.5}", l.lat, l.lon)).unwrap_or_default()],
            })
        })
        .collect();
    list_page(
        &ui,
        &s,
        "places.facilities",
        "/manage/facilities",
        &q,
        list.total,
        rows,
        &[
            "places.name",
            "places.kind",
            "places.capacity",
            "places.location",
        ],
        anxin_domain::people::FacilityKind::ALL
            .iter()
            .map(|k| json!({ "value": k.as_str(), "label": i18n::t(ui.lang, &format!("facility.{}", k.as_str())) }))
            .collect(),
    )
}
