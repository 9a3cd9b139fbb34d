//! Operations endpoints: liveness, readiness (the database answers), Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::http::routes::{Serves, Table};

use crate::app::App;

pub fn routes() -> Table {
    Table::new()
        .route("/healthz", &["GET"], Serves::Public, get(healthz))
        .route("/readyz", &["GET"], Serves::Public, get(readyz))
        .route("/metrics", &["GET"], Serves::Public, get(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process answers", content_type = "text/plain", body = String))
)]
async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "the database answers", content_type = "text/plain", body = String),
        (status = 503, description = "the database does not answer", content_type = "text/plain", body = String)
    )
)]
async fn readyz(State(app): State<App>) -> impl IntoResponse {
    match app.store.read(|c, _| c.query_i64("SELECT 1", &[])).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String))
)]
async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics_text(&app),
    )
}

/// The registry's metrics with the monitor's ingest counters before the closing `# EOF`.
fn metrics_text(app: &App) -> String {
    let mut text = app.metrics.render();
    let at = text.rfind("# EOF").unwrap_or(text.len());
    text.insert_str(at, &app.monitor.counters.render());
    text
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
