//! Static files under `/static/…`, embedded in the binary: our CSS and JavaScript from
//! `web/static/`, and the npm libraries copied by `build.rs` from `web/node_modules` at the
//! versions pinned in `web/package-lock.json`. Nothing is loaded from anywhere else.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Whether `web/node_modules` was there when the binary was built (else the vendor files are
/// stubs that say so).
pub const OK: bool = include!(concat!(env!("OUT_DIR"), "/assets_ok.rs"));

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/app.js"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/map.js"),
    ),
    (
        "alarms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/alarms.js"),
    ),
    (
        "device.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/device.js"),
    ),
    (
        "vendor/echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/echarts.min.js")),
    ),
    (
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/htmx.min.js")),
    ),
    (
        "vendor/leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/leaflet.js")),
    ),
    (
        "vendor/leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/leaflet.css")),
    ),
];

/// The embedded file at `path`, if any.
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    FILES
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|(_, ty, body)| (*ty, *body))
}

pub async fn serve(Path(path): Path<String>) -> Response {
    match get(&path) {
        Some((ty, body)) => {
            let mut r = body.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
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
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
