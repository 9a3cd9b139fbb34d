//! Operations endpoints: liveness, readiness (the database answers), Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::http::routes::{Serves, Table};

use crate::app::App;

pub fn routes() -> Table {
    Table::new()
        .route("/healthz", &["GET"], Serves::Public, get(|| async { "ok" }))
        .route("/readyz", &["GET"], Serves::Public, get(readyz))
        .route("/metrics", &["GET"], Serves::Public, get(metrics))
}

async fn readyz(State(app): State<App>) -> impl IntoResponse {
    match app.store.read(|c, _| c.query_i64("SELECT 1", &[])).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
