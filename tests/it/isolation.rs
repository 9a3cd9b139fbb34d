//! The isolation matrix, generated from the route table: every route is tried as users of a
//! sibling community, a sibling grid, a neighbouring household, a provider and another community's
//! inspector against records of community A / grid A1 / household hA1. A record outside the
//! caller's grants must answer exactly like a missing one, lists must not leak it, writes must not
//! land. The test fails when a route is not covered (a new path parameter or a POST without a
//! sample body).

use std::collections::HashMap;

use anxin::http::routes::Serves;
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, user, User, World};

async fn call(
    base: &str,
    u: &User,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = crate::support::client()
        .request(m, format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    // A spreadsheet export is a zip: read its cells so the leak checks see what it holds.
    let text = match anxin::io::sheet::read_raw(&bytes, anxin::io::Format::Xlsx) {
        Ok(sheet) if path.contains(".xlsx") => {
            let mut t = sheet.headers.join(",");
            for (_, cells) in sheet.rows {
                t.push('\n');
                t.push_str(&cells.join(","));
            }
            t
        }
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    (status, text)
}

fn error_code(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?["error"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// The record of each kind that lives in community A, grid A1, household hA1.
async fn a1_records(t: &TestApp, w: &World) -> HashMap<&'static str, Uuid> {
    let (p, h, c) = (w.person_a1, w.hh_a1, w.comm_a);
    let membership: Uuid = t
        .store()
        .read(move |conn, _| {
            conn.query_one(
                "SELECT id FROM memberships WHERE person_id = $1",
                &params![p],
            )?
            .unwrap()
            .get("id")
        })
        .await
        .unwrap();
    let vulnerable: Uuid = t
        .store()
        .read(move |conn, _| {
            conn.query_one(
                "SELECT id FROM vulnerable WHERE person_id = $1",
                &params![p],
            )?
            .unwrap()
            .get("id")
        })
        .await
        .unwrap();
    HashMap::from([
        ("people", p),
        ("households", h),
        ("memberships", membership),
        ("nodes", c),
        ("grids", w.grid_a1),
        ("vulnerable", vulnerable),
        ("warnings", w.warning_a1),
    ])
}

/// A building (grid A1) with a unit and a dwelling, a located facility and a duty with a phone,
/// all in community A.
async fn a1_places(t: &TestApp, w: &World) -> HashMap<&'static str, Uuid> {
    use anxin_store::places::{self as pl, *};
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    t.store()
        .write(WriteCtx::system("matrix-places"), move |tx| {
            let sys = Caller::system();
            let b = pl::create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    name: Some("A1栋".into()),
                    ..BuildingInput::default()
                })?,
            )?;
            let u = pl::create_unit(
                tx,
                &sys,
                b.id,
                &NewUnit::parse(UnitInput {
                    name: Some("1单元".into()),
                })?,
            )?;
            let d = pl::create_dwelling(
                tx,
                &sys,
                b.id,
                &NewDwelling::parse(DwellingInput {
                    unit_id: Some(u.id),
                    number: Some("101".into()),
                    ..DwellingInput::default()
                })?,
            )?;
            let f = pl::create_facility(
                tx,
                &sys,
                &NewFacility::parse(FacilityInput {
                    node_id: Some(comm_a),
                    kind: Some("shelter".into()),
                    name: Some("A1广场".into()),
                    capacity: Some(100),
                    location: Some(LocationInput {
                        lon: Some(104.09),
                        lat: Some(30.66),
                        crs: Some("gcj02".into()),
                    }),
                    ..FacilityInput::default()
                })?,
            )?;
            let du = pl::create_duty(
                tx,
                &sys,
                &NewDuty::parse(DutyInput {
                    node_id: Some(comm_a),
                    duty: Some("防汛值班".into()),
                    responsible: Some("张三".into()),
                    phone: Some("13812345678".into()),
                    ..DutyInput::default()
                })?,
            )?;
            let compound = anxin_store::tree::create_compound(tx, &sys, comm_a, "A1苑")?;
            Ok(HashMap::from([
                ("compounds", compound),
                ("buildings", b.id),
                ("units", u.id),
                ("dwellings", d.id),
                ("facilities", f.id),
                ("duties", du.id),
            ]))
        })
        .await
        .unwrap()
}

/// A body for creating something inside community A, per collection path.
fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/people" => json!({
            "name": "闯入者", "population_type": "registered", "doc_type": "none",
            "community_id": w.comm_a, "grid_id": w.grid_a1, "household_id": w.hh_a1
        }),
        "/api/v1/households" => {
            json!({ "community_id": w.comm_a, "grid_id": w.grid_a1, "label": "9-9-999" })
        }
        "/api/v1/vulnerable" => {
            json!({ "person_id": w.person_a1, "category": "disabled", "contact_channel": "sms" })
        }
        "/api/v1/households/{id}/members" => json!({ "person_id": w.person_a1n, "role": "tenant" }),
        "/api/v1/nodes/{id}/grids" | "/api/v1/nodes/{id}/compounds" => {
            json!({ "name": "闯入网格" })
        }
        "/api/v1/people/{id}/unmask" => json!({}),
        "/api/v1/import/people"
        | "/api/v1/import/buildings"
        | "/api/v1/import/dwellings"
        | "/api/v1/import/vulnerable"
        | "/api/v1/import/facilities"
        | "/manage/import" => json!({}),
        "/manage/people/{id}/unmask" => json!({}),
        "/manage/people/{id}/edit" | "/resident/people/{id}/edit" => json!({ "name": "改名" }),
        "/api/v1/buildings" => {
            json!({ "node_id": w.comm_a, "grid_id": w.grid_a1, "name": "闯入楼" })
        }
        "/api/v1/buildings/{id}" => json!({ "name": "闯入楼" }),
        "/api/v1/buildings/{id}/units" | "/api/v1/units/{id}" => json!({ "name": "闯入单元" }),
        "/api/v1/buildings/{id}/dwellings" | "/api/v1/dwellings/{id}" => json!({ "number": "999" }),
        "/api/v1/facilities" => {
            json!({ "node_id": w.comm_a, "kind": "hydrant", "name": "闯入设施" })
        }
        "/api/v1/facilities/{id}" => json!({ "name": "闯入设施" }),
        "/api/v1/duties" => {
            json!({ "node_id": w.comm_a, "duty": "闯入", "responsible": "闯入者" })
        }
        "/api/v1/duties/{id}" => json!({ "duty": "闯入" }),
        "/api/v1/duties/{id}/unmask" => json!({}),
        "/api/v1/grids/{id}" | "/api/v1/compounds/{id}" => json!({ "name": "闯入改名" }),
        "/api/v1/households/{id}" => json!({ "label": "闯入" }),
        "/api/v1/devices" => json!({
            "node_id": w.comm_a, "grid_id": w.grid_a1, "kind": "water_level",
            "code": "intruder-device", "name": "闯入设备"
        }),
        "/api/v1/devices/{id}" => json!({ "name": "闯入设备" }),
        "/api/v1/device-profiles" => {
            json!({ "node_id": w.comm_a, "name": "闯入模板", "rules": { "rules": [] } })
        }
        "/api/v1/device-profiles/{id}" => json!({ "name": "闯入模板" }),
        "/api/v1/alarms/{id}/ack" | "/api/v1/alarms/{id}/clear" | "/api/v1/alarms/{id}/warning" => {
            json!({})
        }
        "/api/v1/alarms/{id}/assign" => json!({ "assignee": null }),
        "/api/v1/alarms/{id}/notes" => json!({ "body": "闯入" }),
        "/manage/alarms/{id}/ack" | "/manage/alarms/{id}/clear" | "/manage/alarms/{id}/warning" => {
            json!({})
        }
        "/manage/nodes/{id}/warnings/new" => {
            json!({ "level": "red", "category": "flood", "headline": "闯入",
            "description": "闯入", "expires_at": "2030-01-01T00:00", "whole_node": "1" })
        }
        "/manage/warnings/{id}/approve"
        | "/manage/warnings/{id}/issue"
        | "/manage/warnings/{id}/cancel" => json!({}),
        "/api/v1/warnings" => json!({
            "node_id": w.comm_a, "grid_id": w.grid_a1, "level": "red", "category": "flood",
            "headline": "闯入预警", "description": "闯入", "expires_at": "2026-11-03T00:00:00Z",
            "area": { "nodes": [w.comm_a] }
        }),
        "/api/v1/warnings/{id}" => json!({ "headline": "闯入预警" }),
        "/api/v1/warnings/{id}/update" => {
            json!({ "headline": "闯入预警", "change_summary": "闯入" })
        }
        "/api/v1/warnings/{id}/approve"
        | "/api/v1/warnings/{id}/issue"
        | "/api/v1/warnings/{id}/cancel"
        | "/api/v1/warnings/cap"
        | "/api/v1/resident/warnings/{id}/displayed" => json!({}),
        "/api/v1/warnings/{id}/tasks/done" => json!({ "task_id": Uuid::now_v7() }),
        "/api/v1/resident/warnings/{id}/ack" | "/resident/warnings/{id}/ack" => {
            json!({ "answer": "safe" })
        }
        // Management pages (src/web/records.rs, admin.rs): form fields as strings.
        "/manage/buildings/{id}/edit" | "/manage/nodes/{id}/buildings/new" => {
            json!({ "name": "闯入楼", "floors": "3" })
        }
        "/manage/buildings/{id}/units/new" | "/manage/units/{id}/edit" => {
            json!({ "name": "闯入单元" })
        }
        "/manage/buildings/{id}/dwellings/new" | "/manage/dwellings/{id}/edit" => {
            json!({ "number": "999" })
        }
        "/manage/facilities/{id}/edit" | "/manage/nodes/{id}/facilities/new" => {
            json!({ "name": "闯入设施", "kind": "hydrant", "status": "active" })
        }
        "/manage/nodes/{id}/grids/new"
        | "/manage/nodes/{id}/compounds/new"
        | "/manage/grids/{id}/edit"
        | "/manage/compounds/{id}/edit" => {
            json!({ "name": "闯入网格" })
        }
        "/manage/households/{id}/edit" => json!({ "label": "9-9-997" }),
        "/manage/nodes/{id}/duties/new" | "/manage/duties/{id}/edit" => {
            json!({ "duty": "闯入", "responsible": "闯入者" })
        }
        "/manage/users/{id}/grants" => {
            json!({ "role": "grid_worker", "scope_kind": "grid", "scope_id": w.grid_a1.to_string() })
        }
        "/manage/grants/{id}/revoke" | "/manage/totp" | "/manage/totp/confirm" => json!({}),
        "/manage/nodes/{id}/households/new" => json!({ "label": "9-9-998" }),
        "/manage/households/{id}/people/new" => json!({
            "name": "闯入者", "population_type": "registered", "doc_type": "none", "household_role": "tenant"
        }),
        "/manage/households/{id}/members" => {
            json!({ "person_id": w.person_a1n.to_string(), "role": "tenant" })
        }
        "/manage/memberships/{id}/end" => json!({}),
        "/manage/people/{id}/vulnerable/new" => {
            json!({ "category": "disabled", "contact_channel": "sms" })
        }
        "/api/v1/people/{id}" => json!({ "name": "改名" }),
        "/api/v1/map/features" => json!({
            "node_id": w.comm_a, "kind": "area", "name": "闯入区域", "crs": "wgs84",
            "geometry": { "type": "Polygon", "coordinates": [[[104.08, 30.65], [104.082, 30.65], [104.082, 30.652], [104.08, 30.65]]] }
        }),
        "/api/v1/map/features/{id}" => json!({ "name": "闯入区域" }),
        "/api/v1/map/grids/{id}/outline" => json!({
            "crs": "wgs84",
            "geometry": { "type": "Polygon", "coordinates": [[[104.08, 30.65], [104.082, 30.65], [104.082, 30.652], [104.08, 30.65]]] }
        }),
        _ => {
            return crate::plans::sample_body(path, w)
                .or_else(|| crate::volunteers::sample_body(path, w))
                .or_else(|| crate::incidents::sample_body(path, w))
                .or_else(|| crate::passes::sample_body(path, w))
                .or_else(|| crate::inspections::sample_body(path, w))
                .or_else(|| crate::hazards::sample_body(path, w))
                .or_else(|| crate::risks::sample_body(path, w))
                .or_else(|| crate::supervision::sample_body(path, w))
                .or_else(|| crate::supplies::sample_body(path, w))
                .or_else(|| crate::campaigns::sample_body(path, w))
                .or_else(|| crate::providers::sample_body(path, w))
                .or_else(|| crate::funds::sample_body(path, w))
        }
    })
}

/// A query string for collection reads that need one.
fn sample_query(path: &str) -> &'static str {
    match path {
        "/api/v1/people/search" => "?phone=13812345678",
        _ => "",
    }
}

/// Read an SSE stream from change-log position `after` for `window`; returns what arrived.
async fn read_stream(
    base: &str,
    u: &User,
    path: &str,
    after: i64,
    window: std::time::Duration,
) -> String {
    let mut resp = crate::support::client()
        .get(format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("last-event-id", after.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{} opening {path}", u.name);
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    got
}

/// A change to an A1 record reaches the insider's stream and no outsider's.
async fn live_matrix(
    t: &TestApp,
    base: &str,
    path: &str,
    insider: &User,
    outsiders: &[User],
    person: Uuid,
) {
    let after = t
        .store()
        .read(|c, _| c.query_i64("SELECT max(pos) FROM change_log", &[]))
        .await
        .unwrap();
    t.store()
        .write(WriteCtx::system("live-matrix"), move |tx| {
            anxin_store::people::update_person(
                tx,
                &Caller::system(),
                person,
                &anxin_store::people::PersonPatch {
                    name: Some("张三丰二".into()),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    let id = person.to_string();
    let seen = read_stream(
        base,
        insider,
        path,
        after,
        std::time::Duration::from_millis(800),
    )
    .await;
    assert!(
        seen.contains(&id),
        "insider's live stream misses the change: {seen}"
    );
    for u in outsiders {
        let seen = read_stream(base, u, path, after, std::time::Duration::from_millis(300)).await;
        assert!(
            !seen.contains(&id),
            "{} hears about A1 record {id} on {path}",
            u.name
        );
    }
}

/// Run the matrix against `base` for one backend.
async fn matrix(t: &TestApp) {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let (p, comm_a) = (w.person_a1, w.comm_a);
    t.store()
        .write(WriteCtx::system("matrix-setup"), move |tx| {
            anxin_store::people::add_vulnerable(
                tx,
                &Caller::system(),
                &anxin_store::people::VulnerableInput {
                    person_id: p,
                    category: "elderly_alone".into(),
                    helper_user_id: None,
                    contact_channel: "no_smartphone".into(),
                    notes: None,
                },
            )?;
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "node_codes",
                &[
                    ("id", id.into()),
                    ("node_id", comm_a.into()),
                    ("scheme", "stats12".into()),
                    ("code", "510104017001".into()),
                    ("valid_from", now.into()),
                    ("source", "test".into()),
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let mut records = a1_records(t, &w).await;
    records.extend(a1_places(t, &w).await);
    records.extend(crate::maps::a1_map_records(t, &w).await);
    records.extend(crate::world::monitoring_a1(t.store(), &w).await);
    records.extend(crate::world::operations_a1(t.store(), &w).await);
    records.extend(crate::world::hazards_a1(t.store(), &w).await);
    records.extend(crate::world::supplies_a1(t.store(), &w).await);

    let insider = user(
        t,
        "worker_a",
        UserKind::Staff,
        Some((Role::CommunityWorker, Scope::Node(w.comm_a))),
        None,
    )
    .await;
    let outsiders = vec![
        user(
            t,
            "worker_b",
            UserKind::Staff,
            Some((Role::CommunityWorker, Scope::Node(w.comm_b))),
            None,
        )
        .await,
        user(
            t,
            "grid_worker_a2",
            UserKind::Staff,
            Some((Role::GridWorker, Scope::Grid(w.grid_a2))),
            None,
        )
        .await,
        user(
            t,
            "resident_a1n",
            UserKind::Resident,
            None,
            Some(w.person_a1n),
        )
        .await,
        user(
            t,
            "provider",
            UserKind::Staff,
            Some((Role::Provider, Scope::Node(w.comm_a))),
            None,
        )
        .await,
        user(
            t,
            "inspector",
            UserKind::Staff,
            Some((Role::Inspector, Scope::Node(w.comm_b))),
            None,
        )
        .await,
    ];

    let table = anxin::http::table();
    let mut tried = 0;
    for e in table.entries() {
        // The matrix sends more requests than one client address may in a minute and the test
        // clock stands still: move it on a little per route, so rate windows turn over.
        t.clock.advance(chrono::Duration::seconds(2));
        let path = e.path;
        let kind = match e.serves {
            Serves::Public => continue,
            Serves::Live => {
                live_matrix(t, &base, path, &insider, &outsiders, w.person_a1).await;
                tried += 1;
                continue;
            }
            Serves::Records(kind) => kind,
            Serves::Own | Serves::Admin => {
                // Not tree-scoped: none of these users may administer, and "own" routes answer
                // about the caller only; both are covered by the auth tests. Here: no admin
                // route answers 2xx to them.
                if e.serves == Serves::Admin && !path.contains('{') && e.method == "GET" {
                    for u in &outsiders {
                        let (s, _) = call(&base, u, e.method, path, None).await;
                        assert!(
                            !(200..300).contains(&s),
                            "{} reached admin route {path}",
                            u.name
                        );
                    }
                }
                tried += 1;
                continue;
            }
        };
        let params: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        assert!(
            params.iter().all(|p| *p == "id" || *p == "code"),
            "route {} {path}: the matrix does not know how to fill {params:?}",
            e.method
        );
        let with = |id: &str| path.replace("{id}", id).replace("{code}", "510104017001");
        let missing = Uuid::now_v7().to_string();
        let body = match e.method {
            "POST" | "PATCH" => Some(
                sample_body(path, &w)
                    .unwrap_or_else(|| panic!("no sample body for {} {path}", e.method)),
            ),
            _ => None,
        };
        if path.contains("{id}") || path.contains("{code}") {
            let target = records
                .get(kind)
                .unwrap_or_else(|| panic!("no A1 record of kind {kind} for {path}"))
                .to_string();
            let real = with(&target);
            let (missing_path, check_missing) = if path.contains("{id}") {
                (with(&missing), true)
            } else {
                (real.clone(), false)
            };
            for u in &outsiders {
                let (s, b) = call(&base, u, e.method, &real, body.as_ref()).await;
                assert!(
                    !(200..300).contains(&s),
                    "{} got {s} on {} {real}: {b}",
                    u.name,
                    e.method
                );
                if check_missing {
                    let (ms, mb) = call(&base, u, e.method, &missing_path, body.as_ref()).await;
                    assert_eq!(
                        (s, error_code(&b)),
                        (ms, error_code(&mb)),
                        "{} tells {} {path} apart from a missing record",
                        u.name,
                        e.method
                    );
                }
            }
            if e.method == "GET" {
                let (s, b) = call(&base, &insider, "GET", &real, None).await;
                assert_eq!(s, 200, "insider GET {real}: {b}");
            }
        } else if e.method == "GET" {
            let id = records
                .get(kind)
                .unwrap_or_else(|| panic!("no A1 record of kind {kind} for {path}"))
                .to_string();
            let qpath = format!("{path}{}", sample_query(path));
            let (s, b) = call(&base, &insider, "GET", &qpath, None).await;
            assert_eq!(s, 200, "insider GET {qpath}: {b}");
            assert!(
                b.contains(id.as_str()),
                "insider's {path} should list the A1 record {id}: {b}"
            );
            for u in &outsiders {
                let (_, b) = call(&base, u, "GET", &qpath, None).await;
                assert!(
                    !b.contains(id.as_str()),
                    "{} sees A1 record {id} in {path}",
                    u.name
                );
            }
        } else {
            for u in &outsiders {
                let (s, b) = call(&base, u, e.method, path, body.as_ref()).await;
                assert!(
                    !(200..300).contains(&s),
                    "{} could {} {path}: {s} {b}",
                    u.name,
                    e.method
                );
            }
        }
        tried += 1;
    }
    assert!(tried >= 10, "only {tried} routes tried");
    // Nothing the outsiders sent landed.
    let n = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT count(*) FROM people WHERE name = '闯入者' OR name = '改名'",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT (SELECT count(*) FROM buildings WHERE name = '闯入楼') \
                 + (SELECT count(*) FROM units WHERE name = '闯入单元') \
                 + (SELECT count(*) FROM dwellings WHERE number = '999') \
                 + (SELECT count(*) FROM facilities WHERE name = '闯入设施') \
                 + (SELECT count(*) FROM duties WHERE duty = '闯入')",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 0, "an outsider's write landed in places");
    let n = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT (SELECT count(*) FROM map_features WHERE name = '闯入区域') \
                 + (SELECT count(*) FROM grids WHERE geometry IS NOT NULL)",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 0, "an outsider's drawing landed on the map");
    let wa = w.warning_a1;
    let n = t
        .store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT (SELECT count(*) FROM warnings WHERE headline = '闯入预警') \
                 + (SELECT count(*) FROM warnings WHERE id = $1 AND status <> 'issued') \
                 + (SELECT count(*) FROM warning_acks)",
                &params![wa],
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 0, "an outsider's warning step landed");
}

/// The matrix sends more requests from one address than a minute allows (the clock is manual, so
/// the window never ends): each backend's app raises the per-address limit.
mod route_matrix {
    use super::*;
    use crate::support::Backend;

    async fn app(backend: Backend) -> TestApp {
        TestApp::with_config(backend, |c| {
            c.server.rate_per_minute_per_address = 1_000_000;
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        matrix(&app(Backend::Sqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        matrix(&app(Backend::Postgres).await).await;
    }
}
