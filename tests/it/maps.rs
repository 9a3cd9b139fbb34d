//! Maps: the configured base layer reaches the page; drawings made on a GCJ-02 base are stored
//! in WGS84; bad geometry is refused naming its field and writes nothing; layers are scoped; and
//! the offline default asks nothing of any host but this one.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin::config::{Config, MapBase};
use anxin_domain::geo::{self, Crs, LonLat};
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::maps::{self, FeatureInput, Geometry, NewFeature};
use anxin_store::places::{self, BuildingInput, LocationInput, NewBuilding};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{Backend, TestApp};
use crate::world::{self, user, User, World};

/// A small square (WGS84) in 锦江区 around (lon, lat).
fn square(lon: f64, lat: f64) -> Vec<[f64; 2]> {
    let d = 0.002;
    vec![
        [lon, lat],
        [lon + d, lat],
        [lon + d, lat + d],
        [lon, lat + d],
        [lon, lat],
    ]
}

fn polygon(ring: &[[f64; 2]]) -> Value {
    json!({ "type": "Polygon", "coordinates": [ring] })
}

/// A map feature and grid A1, for the isolation matrix (`tests/it/isolation.rs`).
pub async fn a1_map_records(t: &TestApp, w: &World) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    let feature = t
        .store()
        .write(WriteCtx::system("matrix-map"), move |tx| {
            let f = NewFeature::parse(FeatureInput {
                node_id: Some(comm_a),
                kind: Some("risk_area".into()),
                name: Some("A1易涝点".into()),
                geometry: Some(polygon(&square(104.09, 30.66))),
                crs: Some("wgs84".into()),
            })?;
            maps::create_feature(tx, &Caller::system(), &f)
        })
        .await
        .unwrap();
    HashMap::from([("map_features", feature.id), ("grids", w.grid_a1)])
}

async fn post(base: &str, u: &User, path: &str, body: &Value) -> (u16, Value) {
    send(base, u, reqwest::Method::POST, path, Some(body)).await
}

async fn get(base: &str, u: &User, path: &str) -> (u16, Value) {
    send(base, u, reqwest::Method::GET, path, None).await
}

async fn send(
    base: &str,
    u: &User,
    m: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = crate::support::client()
        .request(m, format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ring_of(geometry: &Value) -> Vec<[f64; 2]> {
    geometry["coordinates"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
        .collect()
}

fn assert_close(got: &[[f64; 2]], want: &[[f64; 2]], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g[0] - w[0]).abs() < tol && (g[1] - w[1]).abs() < tol,
            "{what}: {g:?} is not within {tol}° of {w:?}"
        );
    }
}

async fn worker_a(t: &TestApp, w: &World) -> User {
    user(
        t,
        "map_worker_a",
        UserKind::Staff,
        Some((Role::CommunityWorker, Scope::Node(w.comm_a))),
        None,
    )
    .await
}

both_stores!(gcj02_drawing_is_stored_as_wgs84, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker_a(&t, &w).await;
    // The true outline in WGS84, and what a user sees and clicks on an AMap base: GCJ-02.
    let truth = square(104.081, 30.652);
    let drawn: Vec<[f64; 2]> = truth
        .iter()
        .map(|p| {
            let g = geo::from_wgs84(Crs::Gcj02, LonLat::new(p[0], p[1]).unwrap());
            [g.lon(), g.lat()]
        })
        .collect();
    assert!(
        (drawn[0][0] - truth[0][0]).abs() > 1e-3,
        "the shift is real (hundreds of metres)"
    );
    let (s, f) = post(
        &base,
        &u,
        "/api/v1/map/features",
        &json!({ "node_id": w.comm_a, "kind": "flood_zone", "name": "东湖易涝区",
                 "geometry": polygon(&drawn), "crs": "gcj02" }),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(f["source_crs"], "gcj02");
    assert_close(&ring_of(&f["geometry"]), &truth, 1e-6, "stored feature");
    // What is in the database is WGS84, and the change log has it.
    let id: Uuid = f["id"].as_str().unwrap().parse().unwrap();
    let (stored, logged) = t
        .store()
        .read(move |c, _| {
            let g: String = c
                .query_one(
                    "SELECT geometry FROM map_features WHERE id = $1",
                    &params![id],
                )?
                .unwrap()
                .get("geometry")?;
            let n = c.query_i64(
                "SELECT count(*) FROM change_log WHERE kind = 'map_features' AND record_id = $1",
                &params![id],
            )?;
            Ok((g, n))
        })
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_close(&ring_of(&stored), &truth, 1e-6, "database row");
    assert_eq!(logged, 1);

    // A grid outline drawn on GCJ-02 too.
    let (s, g) = post(
        &base,
        &u,
        &format!("/api/v1/map/grids/{}/outline", w.grid_a1),
        &json!({ "geometry": polygon(&drawn), "crs": "gcj02" }),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["geometry_crs"], "gcj02");
    assert_close(&ring_of(&g["geometry"]), &truth, 1e-6, "grid outline");

    // Shown on a GCJ-02 base, both come back where they were drawn.
    let (s, layers) = get(&base, &u, "/api/v1/map/layers?crs=gcj02").await;
    assert_eq!(s, 200, "{layers}");
    for layer in ["feature", "grid"] {
        let f = layers["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["properties"]["layer"] == layer)
            .unwrap_or_else(|| panic!("no {layer} in {layers}"));
        assert_close(&ring_of(&f["geometry"]), &drawn, 1e-6, layer);
    }
    // And on WGS84 (offline), at the true place.
    let (_, layers) = get(&base, &u, "/api/v1/map/layers").await;
    let grid = layers["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["layer"] == "grid")
        .unwrap();
    assert_close(&ring_of(&grid["geometry"]), &truth, 1e-6, "grid on wgs84");

    // A point, and moving it by PATCH with a new geometry.
    let p = geo::from_wgs84(Crs::Gcj02, LonLat::new(104.085, 30.655).unwrap());
    let (s, pt) = post(
        &base,
        &u,
        "/api/v1/map/features",
        &json!({ "node_id": w.comm_a, "kind": "assembly_point", "name": "集合点一",
                 "geometry": { "type": "Point", "coordinates": [p.lon(), p.lat()] }, "crs": "gcj02" }),
    )
    .await;
    assert_eq!(s, 201, "{pt}");
    let c = &pt["geometry"]["coordinates"];
    assert!((c[0].as_f64().unwrap() - 104.085).abs() < 1e-6);
    assert!((c[1].as_f64().unwrap() - 30.655).abs() < 1e-6);
});

both_stores!(
    bad_geometry_is_refused_and_nothing_written,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let u = worker_a(&t, &w).await;
        let ok = square(104.08, 30.65);
        let mut open = ok.clone();
        open.pop();
        let bowtie = vec![
            [104.08, 30.65],
            [104.09, 30.66],
            [104.09, 30.65],
            [104.08, 30.66],
            [104.08, 30.65],
        ];
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                polygon(&open),
                "geometry.ring_not_closed",
                "geometry.coordinates[0]",
            ),
            (
                polygon(&bowtie),
                "geometry.self_intersecting",
                "geometry.coordinates[0]",
            ),
            (
                polygon(&square(2.35, 48.85)),
                "geometry.out_of_bounds",
                "geometry.coordinates[0][0]",
            ),
            (
                json!({ "type": "Polygon", "coordinates": [[[104.08, 30.65], [104.09, "x"], [104.09, 30.66], [104.08, 30.65]]] }),
                "geometry.invalid",
                "geometry.coordinates[0][1]",
            ),
            (
                polygon(&[[104.08, 30.65], [104.09, 30.65], [104.08, 30.65]]),
                "geometry.too_few_points",
                "geometry.coordinates[0]",
            ),
            (
                json!({ "type": "LineString", "coordinates": [[104.08, 30.65], [104.09, 30.65]] }),
                "geometry.type_unsupported",
                "geometry.type",
            ),
            (json!("POLYGON((1 2))"), "geometry.invalid", "geometry"),
        ];
        for (geometry, code, field) in &cases {
            let (s, e) = post(
            &base,
            &u,
            "/api/v1/map/features",
            &json!({ "node_id": w.comm_a, "kind": "area", "name": "坏图形", "geometry": geometry, "crs": "wgs84" }),
        )
        .await;
            assert_eq!(s, 422, "{geometry}: {e}");
            assert_eq!(e["error"]["code"], *code, "{geometry}: {e}");
            assert_eq!(e["error"]["details"]["field"], *field, "{geometry}: {e}");
            let (s, e) = post(
                &base,
                &u,
                &format!("/api/v1/map/grids/{}/outline", w.grid_a1),
                &json!({ "geometry": geometry, "crs": "wgs84" }),
            )
            .await;
            assert_eq!(s, 422, "outline {geometry}: {e}");
            assert_eq!(e["error"]["code"], *code);
        }
        // Fields other than the geometry are named too.
        for (body, field) in [
            (
                json!({ "node_id": w.comm_a, "kind": "area", "name": "x", "geometry": polygon(&ok) }),
                "crs",
            ),
            (
                json!({ "node_id": w.comm_a, "kind": "lake", "name": "x", "geometry": polygon(&ok), "crs": "wgs84" }),
                "kind",
            ),
            (
                json!({ "node_id": w.comm_a, "kind": "area", "name": " ", "geometry": polygon(&ok), "crs": "wgs84" }),
                "name",
            ),
            (
                json!({ "node_id": w.comm_b, "kind": "area", "name": "x", "geometry": polygon(&ok), "crs": "wgs84" }),
                "node_id",
            ),
        ] {
            let (s, e) = post(&base, &u, "/api/v1/map/features", &body).await;
            assert_eq!(s, 422, "{body}: {e}");
            assert_eq!(e["error"]["details"]["field"], field, "{body}: {e}");
        }
        // A grid outline must be a polygon.
        let (s, e) = post(
        &base,
        &u,
        &format!("/api/v1/map/grids/{}/outline", w.grid_a1),
        &json!({ "geometry": { "type": "Point", "coordinates": [104.08, 30.65] }, "crs": "wgs84" }),
    )
    .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (422, Some("geometry.polygon_required"))
        );
        let written = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT (SELECT count(*) FROM map_features) + \
                 (SELECT count(*) FROM grids WHERE geometry IS NOT NULL) + \
                 (SELECT count(*) FROM change_log WHERE kind = 'map_features')",
                    &[],
                )
            })
            .await
            .unwrap();
        assert_eq!(written, 0, "a refused drawing wrote something");
    }
);

both_stores!(layers_are_scoped, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let (comm_a, comm_b, grid_a1, grid_a2) = (w.comm_a, w.comm_b, w.grid_a1, w.grid_a2);
    let ids = t
        .store()
        .write(WriteCtx::system("map-scope"), move |tx| {
            let sys = Caller::system();
            let mut out = HashMap::new();
            for (name, node, grid, lon) in [
                ("A1楼", comm_a, Some(grid_a1), 104.080),
                ("A2楼", comm_a, Some(grid_a2), 104.084),
                ("A3楼", comm_a, None, 104.088),
                ("B1楼", comm_b, None, 104.120),
            ] {
                let b = places::create_building(
                    tx,
                    &sys,
                    &NewBuilding::parse(BuildingInput {
                        node_id: Some(node),
                        grid_id: grid,
                        name: Some(name.into()),
                        location: Some(LocationInput {
                            lon: Some(lon),
                            lat: Some(30.65 + (lon - 104.08)),
                            crs: Some("wgs84".into()),
                        }),
                        ..BuildingInput::default()
                    })?,
                )?;
                out.insert(name, b.id);
            }
            for (grid, lon) in [(grid_a1, 104.079), (grid_a2, 104.083)] {
                let g = maps::parse_outline(maps::OutlineInput {
                    geometry: Some(polygon(&square(lon, 30.649))),
                    crs: Some("wgs84".into()),
                })?;
                maps::set_grid_outline(tx, &sys, grid, &g)?;
            }
            let f = NewFeature::parse(FeatureInput {
                node_id: Some(comm_a),
                kind: Some("risk_area".into()),
                name: Some("A社区风险区".into()),
                geometry: Some(polygon(&square(104.085, 30.66))),
                crs: Some("wgs84".into()),
            })?;
            out.insert("feature", maps::create_feature(tx, &sys, &f)?.id);
            Ok(out)
        })
        .await
        .unwrap();
    let layer_ids = |fc: &Value, layer: &str| -> Vec<String> {
        fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["properties"]["layer"] == layer)
            .map(|f| f["properties"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let s = |u: Uuid| u.to_string();
    let read = |caller: Caller| {
        t.store()
            .read(move |c, _| maps::layers(c, &caller, Crs::Wgs84))
    };

    // A grid worker: their grid and its buildings; no other grid, no community outline, no
    // community-level drawing.
    let fc = read(w.grid_worker_a1()).await.unwrap();
    assert_eq!(layer_ids(&fc, "grid"), vec![s(grid_a1)]);
    assert_eq!(layer_ids(&fc, "building"), vec![s(ids["A1楼"])]);
    assert!(layer_ids(&fc, "outline").is_empty(), "{fc}");
    assert!(layer_ids(&fc, "feature").is_empty(), "{fc}");

    // The community worker: both grids, A's buildings, the derived outline and the drawing.
    let fc = read(w.worker_a()).await.unwrap();
    let mut grids = layer_ids(&fc, "grid");
    grids.sort();
    let mut want = vec![s(grid_a1), s(grid_a2)];
    want.sort();
    assert_eq!(grids, want);
    assert_eq!(layer_ids(&fc, "building").len(), 3);
    assert!(!fc.to_string().contains(&s(ids["B1楼"])));
    assert_eq!(layer_ids(&fc, "outline"), vec![s(comm_a)], "{fc}");
    assert_eq!(layer_ids(&fc, "feature"), vec![s(ids["feature"])]);

    // The neighbouring community sees nothing of A, and A's drawing is "not found" to it.
    let fc = read(w.worker_b()).await.unwrap();
    let text = fc.to_string();
    for id in [
        s(grid_a1),
        s(grid_a2),
        s(ids["A1楼"]),
        s(ids["feature"]),
        s(comm_a),
    ] {
        assert!(!text.contains(&id), "worker B sees {id}: {text}");
    }
    let fid = ids["feature"];
    let wb = w.worker_b();
    let r = t
        .store()
        .read(move |c, _| maps::get_feature(c, &wb, fid))
        .await;
    assert!(matches!(r, Err(anxin_store::StoreError::NotFound)), "{r:?}");
    // A drawn outline replaces the derived one.
    t.store()
        .write(WriteCtx::system("map-outline"), move |tx| {
            let f = NewFeature::parse(FeatureInput {
                node_id: Some(comm_a),
                kind: Some("outline".into()),
                name: Some("水井坊社区边界".into()),
                geometry: Some(polygon(&square(104.07, 30.64))),
                crs: Some("cgcs2000".into()),
            })?;
            maps::create_feature(tx, &Caller::system(), &f)
        })
        .await
        .unwrap();
    let fc = read(w.worker_a()).await.unwrap();
    assert!(
        layer_ids(&fc, "outline").is_empty(),
        "derived outline kept: {fc}"
    );
});

/// A session for a staff user on `t`'s server, and the page at `path`.
async fn page(base: &str, u: &User, path: &str) -> (String, String) {
    let r = crate::support::client()
        .get(format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let csp = r
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.text().await.unwrap(), csp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_selects_the_base_layer_and_the_page_carries_it() {
    let t = TestApp::with_config(Backend::Sqlite, |c| {
        c.map.base = MapBase::Gcj02;
    })
    .await;
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker_a(&t, &w).await;
    let (html, csp) = page(&base, &u, "/manage/map").await;
    let attr = html
        .split("data-base=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let cfg: Value = serde_json::from_str(&attr).unwrap_or_else(|e| panic!("{e}: {attr}"));
    assert_eq!(cfg["base"], "gcj02");
    assert_eq!(cfg["crs"], "gcj02");
    assert!(
        cfg["tiles"].as_str().unwrap().contains("autonavi.com"),
        "{cfg}"
    );
    assert!(
        csp.contains("img-src 'self' data: https://*.is.autonavi.com"),
        "{csp}"
    );
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    // The writable nodes are offered for drawings.
    assert!(html.contains(&w.comm_a.to_string()));
    assert!(!html.contains(&w.comm_b.to_string()));
}

/// With the default (offline) base, neither the page nor its script names any host but this
/// one: nothing for a browser with no network to wait for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_default_references_no_external_host() {
    let t = TestApp::new(Backend::Sqlite).await;
    assert_eq!(t.app.config.map.base, MapBase::Offline);
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker_a(&t, &w).await;
    let (html, csp) = page(&base, &u, "/manage/map").await;
    assert!(
        html.contains("&quot;base&quot;:&quot;offline&quot;"),
        "{html}"
    );
    assert!(!csp.contains("http"), "{csp}");
    let js = crate::support::client()
        .get(format!("{base}/static/map.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, text) in [("page", html.as_str()), ("map.js", js.as_str())] {
        let text = text.replace("&#x2f;", "/");
        for (i, _) in text.match_indices("//") {
            let before = &text[..i];
            if !(before.ends_with("http:") || before.ends_with("https:")) {
                continue;
            }
            let host: String = text[i + 2..]
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                })
                .collect();
            assert!(
                host.starts_with("127.0.0.1")
                    || host.starts_with("localhost")
                    || host.starts_with("[::1]"),
                "{name} names an outside host: {host}"
            );
        }
    }
    // The layers it asks for answer without any tile service.
    let (s, fc) = get(&base, &u, "/api/v1/map/layers").await;
    assert_eq!(s, 200);
    assert_eq!(fc["type"], "FeatureCollection");
}

/// `ANXIN_MAP__…` reaches the `[map]` section; the 天地图 key is a secret.
#[test]
fn environment_selects_the_map_base() {
    std::env::set_var("ANXIN_MAP__BASE", "tianditu");
    std::env::set_var("ANXIN_MAP__TIANDITU_KEY", "tk-secret-123");
    let c = Config::load(None).unwrap();
    assert_eq!(c.map.base, MapBase::Tianditu);
    assert_eq!(c.map.display_crs(), Crs::Cgcs2000);
    c.validate().unwrap();
    let (url, subs) = c.map.tiles().unwrap();
    assert!(
        url.contains("tianditu.gov.cn") && url.contains("tk=tk-secret-123"),
        "{url}"
    );
    assert_eq!(subs, "01234567");
    assert!(!format!("{c:?}").contains("tk-secret-123"));
    std::env::set_var("ANXIN_MAP__BASE", "custom");
    let c = Config::load(None).unwrap();
    assert!(c.validate().is_err(), "custom without tile_url");
    std::env::set_var(
        "ANXIN_MAP__TILE_URL",
        "http://127.0.0.1:8081/{z}/{x}/{y}.png",
    );
    std::env::set_var("ANXIN_MAP__CRS", "gcj02");
    let c = Config::load(None).unwrap();
    c.validate().unwrap();
    assert_eq!(c.map.display_crs(), Crs::Gcj02);
}

/// The store's parser agrees with the HTTP answers on a ring drawn in BD-09 too.
#[test]
fn bd09_ring_converts_back() {
    let truth = square(104.06, 30.67);
    let drawn: Vec<[f64; 2]> = truth
        .iter()
        .map(|p| {
            let b = geo::from_wgs84(Crs::Bd09, LonLat::new(p[0], p[1]).unwrap());
            [b.lon(), b.lat()]
        })
        .collect();
    let g = Geometry::parse(&polygon(&drawn), Crs::Bd09).unwrap();
    assert_close(&ring_of(&g.to_geojson()), &truth, 1e-6, "bd09");
}

/// `local`: tiles from a directory, served by Anxin itself to signed-in staff; nothing else can
/// be read through the route, and the page names no other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_tiles_are_served_by_anxin() {
    let tiles = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tiles.path().join("15/26000")).unwrap();
    let png: &[u8] = b"\x89PNG\r\n\x1a\nnot-really-a-tile";
    std::fs::write(tiles.path().join("15/26000/13500.png"), png).unwrap();
    std::fs::write(tiles.path().join("secret.txt"), b"no").unwrap();
    let dir = tiles.path().to_owned();
    let t = TestApp::with_config(Backend::Sqlite, move |c| {
        c.map.base = MapBase::Local;
        c.map.tiles_dir = dir;
    })
    .await;
    t.app.config.validate().unwrap();
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker_a(&t, &w).await;
    let c = crate::support::client();
    let r = c
        .get(format!("{base}/tiles/15/26000/13500.png"))
        .header("cookie", &u.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(&r.bytes().await.unwrap()[..], png);
    for path in [
        "/tiles/15/26000/13501.png",
        "/tiles/15/26000/..%2F..%2Fsecret.txt",
        "/tiles/15/26000/13500.txt",
        "/tiles/15/x/13500.png",
    ] {
        let r = c
            .get(format!("{base}{path}"))
            .header("cookie", &u.cookie)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    let r = c
        .get(format!("{base}/tiles/15/26000/13500.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "tiles need a session");
    let (html, csp) = page(&base, &u, "/manage/map").await;
    assert!(
        html.contains("&quot;base&quot;:&quot;local&quot;"),
        "{html}"
    );
    assert!(!csp.contains("http"), "{csp}");
}
