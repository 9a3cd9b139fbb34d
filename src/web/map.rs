//! The map page (`/manage/map`): the caller's outlines, grids, buildings, facilities and drawn
//! features on the configured base layer, with drawing (areas, points, grid outlines, moving a
//! building).
//!
//! The page carries the base layer's settings (`[map]` in the configuration) and its coordinate
//! system; `web/static/map.js` asks `/api/v1/map/layers?crs=…` for the layers already in that
//! system and sends drawings back in it, naming it — the server converts (never the browser).
//! The default base, `offline`, loads nothing but Anxin's own data: no tile, no font, no request
//! off this server. `local` adds raster tiles from a directory, served here at `/tiles/…`. An
//! online base adds exactly its tile host to the page's `img-src`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::json;

use anxin_store::maps;

use crate::app::App;
use crate::config::{MapBase, MapConfig};
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::web::{error_page, i18n, refused, render, Ui};

pub fn routes() -> Table {
    Table::new()
        .route("/manage/map", &["GET"], Serves::Own, get(map))
        .route("/tiles/{z}/{x}/{y}", &["GET"], Serves::Own, get(tile))
}

/// A tile of the `local` base layer from `[map] tiles_dir`, for a signed-in staff member. The
/// path is built from parsed numbers and a fixed extension only, so nothing outside the
/// directory can be named.
async fn tile(
    State(app): State<App>,
    _staff: Staff,
    Path((z, x, y)): Path<(String, String, String)>,
) -> Response {
    let cfg = &app.config.map;
    let not_found = || StatusCode::NOT_FOUND.into_response();
    if cfg.base != MapBase::Local || cfg.tiles_dir.as_os_str().is_empty() {
        return not_found();
    }
    let Some((y, ext)) = y.split_once('.') else {
        return not_found();
    };
    let ty = match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return not_found(),
    };
    let (Ok(z), Ok(x), Ok(y)) = (z.parse::<u8>(), x.parse::<u32>(), y.parse::<u32>()) else {
        return not_found();
    };
    if z > 22 {
        return not_found();
    }
    let file = cfg
        .tiles_dir
        .join(z.to_string())
        .join(x.to_string())
        .join(format!("{y}.{ext}"));
    match tokio::fs::read(&file).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, ty),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

/// The texts map.js shows, in the page language.
const TEXT_KEYS: &[&str] = &[
    "map.facilities",
    "map.buildings",
    "map.grids",
    "map.outlines",
    "map.features",
    "map.count",
    "map.draw_hint_area",
    "map.draw_hint_point",
    "map.draw_hint_grid",
    "map.draw_hint_move",
    "map.move_pick",
    "map.saved",
    "map.save_failed",
    "map.need_name",
    "map.need_points",
    "map.need_grid",
    "map.scale",
];

/// The origin of a tile URL template for the CSP, `{s}` subdomains as a wildcard label.
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?']).next()?;
    if host.is_empty() || !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = if host.contains('{') {
        let (_, tail) = host.split_once('.')?;
        format!("*.{tail}")
    } else {
        host.to_owned()
    };
    if host.contains(['{', '}', ' ', ';', '\'']) {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// What the page tells map.js about the base layer.
fn base_json(cfg: &MapConfig) -> serde_json::Value {
    let kind = match cfg.base {
        MapBase::Offline => "offline",
        MapBase::Tianditu => "tianditu",
        MapBase::Gcj02 => "gcj02",
        MapBase::Custom => "custom",
        MapBase::Local => "local",
    };
    let (tiles, subdomains) = cfg.tiles().unwrap_or_default();
    json!({
        "base": kind,
        "crs": cfg.display_crs().as_str(),
        "tiles": tiles,
        "subdomains": subdomains,
        "attribution": cfg.attribution,
        "center": [cfg.center_lat, cfg.center_lon],
        "zoom": cfg.zoom,
    })
}

async fn map(State(app): State<App>, ui: Ui, s: Result<Staff, AuthError>) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let caller = s.caller().clone();
    let nodes = match app
        .store
        .read(move |c, _| maps::writable_nodes(c, &caller))
        .await
    {
        Ok(n) => n,
        Err(e) => return error_page(&ui, &e.into()),
    };
    let cfg = &app.config.map;
    let texts: serde_json::Map<String, serde_json::Value> = TEXT_KEYS
        .iter()
        .map(|k| {
            (
                k.trim_start_matches("map.").to_owned(),
                i18n::t(ui.lang, k).into(),
            )
        })
        .collect();
    let kinds: Vec<_> = maps::FEATURE_KINDS
        .iter()
        .map(|k| json!({ "value": k, "label": i18n::t(ui.lang, &format!("map.kind.{k}")) }))
        .collect();
    let base_hint = i18n::t(
        ui.lang,
        match cfg.base {
            MapBase::Offline => "map.offline",
            MapBase::Tianditu => "map.base_tianditu",
            MapBase::Gcj02 => "map.base_gcj02",
            MapBase::Custom => "map.base_custom",
            MapBase::Local => "map.base_local",
        },
    );
    let mut r = render(
        &ui,
        StatusCode::OK,
        "map.html",
        context! {
            me => crate::web::manage::who_ctx(&s),
            texts => serde_json::Value::Object(texts).to_string(),
            base => base_json(cfg).to_string(),
            base_name => base_hint,
            crs => cfg.display_crs().as_str(),
            nodes => minijinja::Value::from_serialize(&nodes),
            kinds => minijinja::Value::from_serialize(&kinds),
        },
    );
    // An online base layer's tiles are images from its host; nothing else is allowed off-site.
    if let Some(origin) = cfg.tiles().and_then(|(url, _)| tile_origin(&url)) {
        let csp = format!(
            "default-src 'self'; img-src 'self' data: {origin}; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    r.into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::tile_origin;

    #[test]
    fn tile_origin_wildcards_subdomains() {
        assert_eq!(
            tile_origin("https://t{s}.tianditu.gov.cn/vec_w/wmts?x={x}").as_deref(),
            Some("https://*.tianditu.gov.cn")
        );
        assert_eq!(
            tile_origin("http://127.0.0.1:8081/{z}/{x}/{y}.png").as_deref(),
            Some("http://127.0.0.1:8081")
        );
        assert_eq!(tile_origin("javascript:alert(1)"), None);
    }
}
