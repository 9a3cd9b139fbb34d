//! Request metrics and one structured log line per request. Labels and fields name the matched
//! route pattern (`/api/v1/people/{id}`), never the raw path, so no identifier or personal data
//! reaches metrics or logs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;
use crate::platform::metrics::RouteLabels;

pub async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let labels = RouteLabels {
        method: method.clone(),
        route: route.clone(),
        status,
    };
    app.metrics.http_requests.get_or_create(&labels).inc();
    app.metrics
        .http_seconds
        .get_or_create(&labels)
        .observe(seconds);
    tracing::info!(
        http.method = %method,
        http.route = %route,
        http.status = status,
        duration_ms = seconds * 1000.0,
        "request"
    );
    response
}
