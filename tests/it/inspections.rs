//! Stories of checklist templates, schedules, to-do and inspections (owner: inspections): the
//! shipped checklists (12 gas-safety items), a community's own checklist and its validation,
//! schedules and the worker's to-do list across a period boundary (Asia/Shanghai), an
//! inspection with a failed item becoming a hazard linked to inspection, place and photo, a
//! refused finish writing nothing, attachments scoped and sniffed, and the phone page.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::{Role, Scope};
use anxin_store::hazards::inspections::{self as insp, AnswerInput, AnswersInput, StartInput};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, code, staff, User, World};

/// The shipped household gas-safety checklist.
pub const GAS: &str = "01940000-0014-7000-8000-000000000001";
/// The shipped fire-exit checklist (a building checklist with a photo always required).
pub const FIRE_EXIT: &str = "01940000-0014-7000-8000-000000000002";

/// A tiny valid PNG (1×1).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn gas() -> Uuid {
    Uuid::parse_str(GAS).unwrap()
}

/// A compound 锦苑 of community A with building 1 (grid A1) and its dwellings 101 and 102, and
/// building 2 in grid A2 with dwelling 201.
pub struct Site {
    pub compound: Uuid,
    pub building: Uuid,
    pub d101: Uuid,
    pub d102: Uuid,
    pub d201: Uuid,
}

pub async fn site(store: &Store, w: &World) -> Site {
    let (comm_a, grid_a1, grid_a2) = (w.comm_a, w.grid_a1, w.grid_a2);
    store
        .write(WriteCtx::system("insp-site"), move |tx| {
            use anxin_store::places::{self as pl, *};
            let sys = Caller::system();
            let compound = anxin_store::tree::create_compound(tx, &sys, comm_a, "锦苑")?;
            let mut building = |name: &str, grid| {
                pl::create_building(
                    tx,
                    &sys,
                    &NewBuilding::parse(BuildingInput {
                        node_id: Some(compound),
                        grid_id: Some(grid),
                        name: Some(name.into()),
                        ..BuildingInput::default()
                    })?,
                )
                .map(|b| b.id)
            };
            let b1 = building("锦苑1栋", grid_a1)?;
            let b2 = building("锦苑2栋", grid_a2)?;
            let mut dwelling = |b: Uuid, n: &str| {
                pl::create_dwelling(
                    tx,
                    &sys,
                    b,
                    &NewDwelling::parse(DwellingInput {
                        number: Some(n.into()),
                        ..DwellingInput::default()
                    })?,
                )
                .map(|d| d.id)
            };
            Ok(Site {
                compound,
                building: b1,
                d101: dwelling(b1, "101")?,
                d102: dwelling(b1, "102")?,
                d201: dwelling(b2, "201")?,
            })
        })
        .await
        .unwrap()
}

/// A multipart body by hand: fields `(name, file name, bytes)`; returns content type and body.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----anxin-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST a photo to an inspection as `u`.
pub async fn upload(
    base: &str,
    u: &User,
    inspection: Uuid,
    item: Option<Uuid>,
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let item = item.map(|i| i.to_string()).unwrap_or_default();
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("file", Some(name), bytes)];
    if !item.is_empty() {
        parts.push(("item_id", None, item.as_bytes()));
    }
    let (ct, body) = multipart(&parts);
    let r = crate::support::client()
        .post(format!("{base}/api/v1/inspections/{inspection}/photos"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn field(v: &Value) -> &str {
    v["error"]["details"]["field"].as_str().unwrap_or("")
}

/// Every item of a sheet answered `pass` (or the first option / the lower bound), except the
/// codes in `fail`, answered as failing.
fn answers_for(sheet: &Value, fail: &[&str]) -> Value {
    let items = sheet["items"].as_array().unwrap();
    let answers: Vec<Value> = items
        .iter()
        .map(|it| {
            let item = &it["item"];
            let code = item["code"].as_str().unwrap();
            let failing = fail.contains(&code);
            let answer = match item["answer_type"].as_str().unwrap() {
                "pass_fail" => (if failing { "fail" } else { "pass" }).to_owned(),
                "choice" => {
                    let spec = &item["answer_spec"];
                    let failing_opts = spec["failing"].as_array().unwrap();
                    let pick = spec["options"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|o| failing_opts.contains(o) == failing)
                        .unwrap();
                    pick.as_str().unwrap().to_owned()
                }
                "number" => {
                    let max = item["answer_spec"]["max"].as_f64().unwrap_or(0.0);
                    if failing { max + 1.0 } else { max }.to_string()
                }
                _ => "无".to_owned(),
            };
            json!({ "code": code, "answer": answer })
        })
        .collect();
    json!({ "answers": answers })
}

fn item_id(sheet: &Value, code: &str) -> Uuid {
    sheet["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["item"]["code"] == code)
        .and_then(|it| it["item"]["id"].as_str())
        .map(|s| Uuid::parse_str(s).unwrap())
        .unwrap()
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

/// A new session of an existing user at the clock's time (the old one idled out).
async fn fresh(t: &TestApp, username: &'static str) -> User {
    let (token, csrf) = t
        .store()
        .write(WriteCtx::system("insp-fresh"), move |tx| {
            let id: Uuid = tx
                .query_one(
                    "SELECT id FROM users WHERE username = $1",
                    &params![username],
                )?
                .unwrap()
                .get("id")?;
            let s = anxin_store::accounts::create_session(tx, id, None, true, None)?;
            Ok((s.token, s.csrf))
        })
        .await
        .unwrap();
    User {
        name: username,
        cookie: format!("anxin_session={token}"),
        csrf,
    }
}

/// The to-do list of `username` (signed in afresh): target ids due now, overdue, and the body.
async fn todo_as(
    t: &TestApp,
    base: &str,
    username: &'static str,
) -> (Vec<String>, Vec<String>, Value) {
    let u = fresh(t, username).await;
    let (s, b) = call(base, &u, "GET", "/api/v1/inspections/todo", None).await;
    assert_eq!(s, 200, "{b}");
    let ids = |k: &str| -> Vec<String> {
        b[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x["target_id"].as_str().unwrap().to_owned())
            .collect()
    };
    (ids("today"), ids("overdue"), b)
}

// ---- shipped checklists ---------------------------------------------------------------------

both_stores!(
    shipped_checklists_are_there_and_read_only,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let (s, list) = call(&base, &grid, "GET", "/api/v1/inspection-templates", None).await;
        assert_eq!(s, 200, "{list}");
        let codes: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["shipped"] == true)
            .map(|t| t["code"].as_str().unwrap())
            .collect();
        for c in ["gas_household", "fire_exit", "elevator", "drain", "shelter"] {
            assert!(codes.contains(&c), "shipped {c} missing: {codes:?}");
        }
        let (s, g) = call(
            &base,
            &grid,
            "GET",
            &format!("/api/v1/inspection-templates/{GAS}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(g["name"], "燃气安全入户检查");
        assert_eq!(g["target_kind"], "dwelling");
        let items = g["items"].as_array().unwrap();
        assert_eq!(items.len(), 12, "the gas checklist has its 12 indicators");
        let gas_codes: Vec<&str> = items.iter().map(|i| i["code"].as_str().unwrap()).collect();
        for c in [
            "pipe_corrosion",
            "joint_sealing",
            "hose_age",
            "hose_clamps",
            "hose_length",
            "valves",
            "meter",
            "leak_alarm",
            "ventilation",
            "heater_flue",
            "flameout_protection",
            "no_tampering",
        ] {
            assert!(gas_codes.contains(&c), "{c} missing");
        }
        for it in items {
            assert!(
                !it["guidance"].as_str().unwrap().is_empty(),
                "{it} has guidance"
            );
        }
        let hose = items.iter().find(|i| i["code"] == "hose_age").unwrap();
        assert_eq!(hose["answer_type"], "choice");
        assert!(hose["text"].as_str().unwrap().contains("18个月"));
        assert_eq!(
            items.iter().find(|i| i["code"] == "joint_sealing").unwrap()["fail_grade"],
            "major"
        );
        // Read-only for everyone, managers included.
        let (s, b) = call(
            &base,
            &worker,
            "PATCH",
            &format!("/api/v1/inspection-templates/{GAS}"),
            Some(json!({ "name": "改掉" })),
        )
        .await;
        assert_eq!((s, code(&b)), (403, "template.shipped"), "{b}");
        // The other four have real items.
        for tpl in list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["shipped"] == true)
        {
            assert!(
                tpl["items"].as_array().unwrap().len() >= 6,
                "{}",
                tpl["code"]
            );
        }
    }
);

// ---- a community's own checklist ------------------------------------------------------------

both_stores!(own_checklists_validate_and_edit, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
    let good = json!({
        "node_id": w.comm_a, "name": "楼道检查", "target_kind": "building",
        "items": [
            { "code": "corridor", "text": "楼道无杂物", "photo": "on_fail" },
            { "code": "lights", "text": "声控灯", "answer_type": "choice",
              "answer_spec": { "options": ["正常", "损坏"], "failing": ["损坏"] } },
            { "code": "ponding", "text": "积水深度", "answer_type": "number",
              "answer_spec": { "min": 0, "max": 5, "unit": "cm" }, "fail_grade": "major" }
        ]
    });
    let before = count(&t, "SELECT count(*) FROM inspection_templates").await;
    for (patch, want_code, want_field) in [
        (json!({ "name": "" }), "value.required", "name"),
        (
            json!({ "target_kind": "spaceship" }),
            "value.invalid",
            "target_kind",
        ),
        (json!({ "items": [] }), "inspection.items_empty", "items"),
        (
            json!({ "items": [{ "code": "a", "text": "x" }, { "code": "a", "text": "y" }] }),
            "inspection.item_duplicate",
            "items[1].code",
        ),
        (
            json!({ "items": [{ "code": "Bad Code", "text": "x" }] }),
            "inspection.item_code",
            "items[0].code",
        ),
        (
            json!({ "items": [{ "code": "a", "text": "" }] }),
            "value.required",
            "items[0].text",
        ),
        (
            json!({ "items": [{ "code": "a", "text": "x", "answer_type": "choice",
                     "answer_spec": { "options": ["好", "坏"], "failing": ["烂"] } }] }),
            "inspection.spec_failing",
            "items[0].answer_spec.failing[0]",
        ),
        (
            json!({ "items": [{ "code": "a", "text": "x", "answer_type": "number" }] }),
            "inspection.spec_bounds",
            "items[0].answer_spec",
        ),
        (
            json!({ "items": [{ "code": "a", "text": "x", "photo": "sometimes" }] }),
            "value.invalid",
            "items[0].photo",
        ),
    ] {
        let mut body = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/inspection-templates",
            Some(body),
        )
        .await;
        assert_eq!(
            (s, code(&b), field(&b)),
            (422, want_code, want_field),
            "{b}"
        );
    }
    assert_eq!(
        count(&t, "SELECT count(*) FROM inspection_templates").await,
        before,
        "refused checklists wrote nothing"
    );
    // Another community's node, or no right to manage: not found.
    let mut other = good.clone();
    other["node_id"] = json!(w.comm_b);
    let (s, _) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/inspection-templates",
        Some(other),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &base,
        &grid,
        "POST",
        "/api/v1/inspection-templates",
        Some(good.clone()),
    )
    .await;
    assert_eq!(s, 404, "grid workers do not manage checklists");

    let (s, tpl) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/inspection-templates",
        Some(good),
    )
    .await;
    assert_eq!(s, 201, "{tpl}");
    assert_eq!(tpl["items"].as_array().unwrap().len(), 3);
    assert_eq!(tpl["items"][0]["fail_grade"], "minor");
    let id = tpl["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/inspection-templates/{id}");
    let (s, _) = call(&base, &outsider, "GET", &path, None).await;
    assert_eq!(s, 404, "another community's worker does not see it");
    let (s, list) = call(
        &base,
        &outsider,
        "GET",
        "/api/v1/inspection-templates",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(!list.to_string().contains(&id));

    // Edit the items: one changed, one removed, one added, in a new order.
    let (s, e) = call(
        &base,
        &worker,
        "PATCH",
        &path,
        Some(json!({ "name": "楼道与消防检查", "items": [
            { "code": "exits", "text": "安全出口畅通", "fail_grade": "major" },
            { "code": "corridor", "text": "楼道无杂物、无电动车", "photo": "required" }
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let codes: Vec<&str> = e["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["exits", "corridor"]);
    assert_eq!(e["items"][1]["photo"], "required");
    assert_eq!(e["name"], "楼道与消防检查");
    let (s, b) = call(
        &base,
        &worker,
        "PATCH",
        &path,
        Some(json!({ "status": "gone" })),
    )
    .await;
    assert_eq!((s, field(&b)), (422, "status"));
    let (s, b) = call(
        &base,
        &worker,
        "PATCH",
        &path,
        Some(json!({ "target_kind": "dwelling" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "inspection.immutable"));
    // Retire it: no new schedules or inspections with it.
    let (s, r) = call(
        &base,
        &worker,
        "PATCH",
        &path,
        Some(json!({ "status": "retired" })),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("retired")));
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/inspection-schedules",
        Some(json!({ "node_id": w.comm_a, "template_id": id, "name": "周检", "period": "weekly" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "inspection.template_retired"), "{b}");
    // The change log has every template and item change.
    let n = count(
        &t,
        "SELECT count(*) FROM change_log WHERE kind IN ('inspection_templates', 'inspection_items')",
    )
    .await;
    assert!(n >= 8, "{n} change-log entries");
});

// ---- schedules and the to-do list -----------------------------------------------------------

both_stores!(todo_follows_the_periods, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let site = site(t.store(), &w).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let grid_a1 = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
    let grid_a2 = staff(&t, "grid_a2", Role::GridWorker, Scope::Grid(w.grid_a2)).await;
    // Validation names the field.
    for (body, want) in [
        (
            json!({ "template_id": GAS, "name": "x", "period": "weekly" }),
            "node_id",
        ),
        (
            json!({ "node_id": w.comm_a, "template_id": GAS, "name": "x", "period": "hourly" }),
            "period",
        ),
        (
            json!({ "node_id": w.comm_a, "template_id": GAS, "name": "", "period": "weekly" }),
            "name",
        ),
        (
            json!({ "node_id": w.comm_a, "template_id": GAS, "name": "x", "period": "weekly",
                    "target_id": site.building }),
            "target_id",
        ),
        (
            json!({ "node_id": w.comm_a, "template_id": Uuid::now_v7(), "name": "x", "period": "weekly" }),
            "template_id",
        ),
    ] {
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/inspection-schedules",
            Some(body),
        )
        .await;
        assert_eq!((s, field(&b)), (422, want), "{b}");
    }
    // Every dwelling of the compound, weekly, by the grid workers.
    let (s, sched) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/inspection-schedules",
        Some(
            json!({ "node_id": site.compound, "template_id": GAS, "name": "每周入户燃气检查",
                     "period": "weekly", "starts_on": "2026-11-02" }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{sched}");
    assert_eq!(sched["target_kind"], "dwelling");
    let sched_id = sched["id"].as_str().unwrap().to_owned();

    // Monday 2026-11-02 (W45): grid A1 has 101 and 102 to do, grid A2 has 201.
    let todo = |u: &'static str| {
        let name = match u {
            "a1" => "grid_a1",
            "a2" => "grid_a2",
            _ => "worker_a",
        };
        todo_as(&t, &base, name)
    };
    let (today, overdue, b) = todo("a1").await;
    assert_eq!(b["today"][0]["period_key"], "2026-W45");
    assert_eq!(
        (today.len(), overdue.len()),
        (2, 0),
        "grid A1 has two dwellings: {b}"
    );
    assert!(today.contains(&site.d101.to_string()) && today.contains(&site.d102.to_string()));
    let (today2, _, _) = todo("a2").await;
    assert_eq!(today2, vec![site.d201.to_string()]);
    let (todo_w, _, _) = todo("w").await;
    assert!(
        todo_w.is_empty(),
        "staffed grids' dwellings are the grid workers'"
    );

    // Grid A1 inspects 101: everything passes.
    let (s, sheet) = call(
        &base,
        &grid_a1,
        "POST",
        "/api/v1/inspections",
        Some(json!({ "template_id": GAS, "target_id": site.d101 })),
    )
    .await;
    assert_eq!(s, 201, "{sheet}");
    assert_eq!(
        sheet["inspection"]["schedule_id"], sched_id,
        "the covering schedule is found"
    );
    assert_eq!(sheet["inspection"]["place_label"], "锦苑1栋 101");
    let iid = sheet["inspection"]["id"].as_str().unwrap().to_owned();
    // Grid A2 cannot start one in grid A1.
    let (s, _) = call(
        &base,
        &grid_a2,
        "POST",
        "/api/v1/inspections",
        Some(json!({ "template_id": GAS, "target_id": site.d102 })),
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = call(
        &base,
        &grid_a1,
        "POST",
        &format!("/api/v1/inspections/{iid}/answers"),
        Some(answers_for(&sheet, &[])),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, done) = call(
        &base,
        &grid_a1,
        "POST",
        &format!("/api/v1/inspections/{iid}/finish"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["inspection"]["status"], "done");
    assert_eq!(done["inspection"]["period_key"], "2026-W45");
    assert_eq!(done["inspection"]["failed_count"], 0);
    let (today, overdue, _) = todo("a1").await;
    assert_eq!((today, overdue.len()), (vec![site.d102.to_string()], 0));

    // Sunday 2026-11-08 23:59 Shanghai is still W45; a minute later it is W46.
    t.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 8, 15, 59, 0).unwrap());
    let (today, overdue, _) = todo("a1").await;
    assert_eq!((today.len(), overdue.len()), (1, 0));
    t.clock.advance(Duration::minutes(1));
    // Sessions idle that long have ended: sign in again.
    let grid_a1 = fresh(&t, "grid_a1").await;
    let worker = fresh(&t, "worker_a").await;
    let (today, overdue, b) = todo("a1").await;
    assert_eq!(today, vec![site.d101.to_string()], "{b}");
    assert_eq!(overdue, vec![site.d102.to_string()], "102 missed W45: {b}");
    assert_eq!(b["overdue"][0]["missed_period_key"], "2026-W45");
    assert_eq!(b["today"][0]["period_key"], "2026-W46");

    // Inspecting 102 now clears the overdue entry.
    let (s, sheet) = call(
        &base,
        &grid_a1,
        "POST",
        "/api/v1/inspections",
        Some(json!({ "schedule_id": sched_id, "target_id": site.d102 })),
    )
    .await;
    assert_eq!(s, 201, "{sheet}");
    let iid2 = sheet["inspection"]["id"].as_str().unwrap().to_owned();
    call(
        &base,
        &grid_a1,
        "POST",
        &format!("/api/v1/inspections/{iid2}/answers"),
        Some(answers_for(&sheet, &[])),
    )
    .await;
    let (s, d) = call(
        &base,
        &grid_a1,
        "POST",
        &format!("/api/v1/inspections/{iid2}/finish"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["inspection"]["period_key"], "2026-W46");
    let (today, overdue, _) = todo("a1").await;
    assert_eq!((today, overdue.len()), (vec![site.d101.to_string()], 0));

    // A named assignee takes the list over from the grid workers; deactivating empties it.
    let wid = t
        .store()
        .read(|c, _| {
            c.query_one("SELECT id FROM users WHERE username = 'worker_a'", &[])?
                .unwrap()
                .get::<Uuid>("id")
        })
        .await
        .unwrap();
    let (s, e) = call(
        &base,
        &worker,
        "PATCH",
        &format!("/api/v1/inspection-schedules/{sched_id}"),
        Some(json!({ "assignee_user_id": wid })),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    assert!(todo("a1").await.0.is_empty());
    let (today, overdue, b) = todo("w").await;
    assert_eq!(
        (today, overdue),
        (vec![site.d101.to_string()], vec![site.d201.to_string()]),
        "101 and 201 are the assignee's now: {b}"
    );
    let (s, e) = call(
        &base,
        &worker,
        "PATCH",
        &format!("/api/v1/inspection-schedules/{sched_id}"),
        Some(json!({ "assignee_user_id": null, "active": false })),
    )
    .await;
    assert_eq!((s, e["active"].as_bool()), (200, Some(false)), "{e}");
    assert!(todo("a1").await.0.is_empty() && todo("w").await.0.is_empty());
    let (s, l) = call(
        &base,
        &worker,
        "GET",
        "/api/v1/inspection-schedules?active=false",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(l.to_string().contains(&sched_id));
});

// ---- carrying out ---------------------------------------------------------------------------

both_stores!(refused_finish_writes_nothing, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let site = site(t.store(), &w).await;
    let base = t.serve().await;
    let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
    let (s, sheet) = call(
        &base,
        &grid,
        "POST",
        "/api/v1/inspections",
        Some(json!({ "template_id": GAS, "target_id": site.d101 })),
    )
    .await;
    assert_eq!(s, 201, "{sheet}");
    let iid = sheet["inspection"]["id"].as_str().unwrap().to_owned();
    // Starting again resumes the unfinished one.
    let (s, again) = call(
        &base,
        &grid,
        "POST",
        "/api/v1/inspections",
        Some(json!({ "template_id": GAS, "target_id": site.d101 })),
    )
    .await;
    assert_eq!(
        (s, again["inspection"]["id"].as_str()),
        (201, Some(iid.as_str()))
    );
    // Answers are checked against their type and name their row.
    let (s, b) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/answers"),
        Some(json!({ "answers": [
            { "code": "pipe_corrosion", "answer": "pass" },
            { "code": "hose_age", "answer": "大概还行" }
        ]})),
    )
    .await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (422, "inspection.answer_choice", "answers[1].answer")
    );
    let (s, b) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/answers"),
        Some(
            json!({ "answers": [{ "code": "joint_sealing", "answer": "fail", "grade": "minor" }]}),
        ),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (422, "inspection.grade_lower"),
        "a major item stays major"
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM inspection_answers").await,
        0,
        "a refused answer batch wrote nothing"
    );
    // All but one answered: refused, naming the item.
    let mut all = answers_for(&sheet, &["valves"]);
    let missing = all["answers"].as_array_mut().unwrap().remove(11);
    let missing_code = missing["code"].as_str().unwrap().to_owned();
    let (s, b) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/answers"),
        Some(all),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let changes = count(&t, "SELECT count(*) FROM change_log").await;
    let (s, b) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/finish"),
        Some(json!({ "notes": "试试" })),
    )
    .await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (
            422,
            "inspection.unanswered",
            format!("answers.{missing_code}").as_str()
        ),
        "{b}"
    );
    // Now everything is answered, but the failed valve has no photo.
    call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/answers"),
        Some(json!({ "answers": [missing] })),
    )
    .await;
    let changes = changes + 1;
    let (s, b) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/inspections/{iid}/finish"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, code(&b), field(&b)),
        (422, "inspection.photo_required", "answers.valves.photo"),
        "{b}"
    );
    assert_eq!(count(&t, "SELECT count(*) FROM hazards").await, 0);
    assert_eq!(
        count(&t, "SELECT count(*) FROM change_log").await,
        changes,
        "refused finishes logged nothing"
    );
    let (s, got) = call(
        &base,
        &grid,
        "GET",
        &format!("/api/v1/inspections/{iid}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(got["inspection"]["status"], "in_progress");
    assert!(got["inspection"]["done_at"].is_null());
    assert_eq!(got["inspection"]["notes"], "");
});

both_stores!(
    failed_item_becomes_a_linked_hazard,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let site = site(t.store(), &w).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let (_, sheet) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/inspections",
            Some(json!({ "template_id": GAS, "target_id": site.d101 })),
        )
        .await;
        let iid = Uuid::parse_str(sheet["inspection"]["id"].as_str().unwrap()).unwrap();
        let hose = item_id(&sheet, "hose_clamps");
        let (s, photo) = upload(&base, &grid, iid, Some(hose), "管卡.png", PNG).await;
        assert_eq!(s, 201, "{photo}");
        let mut all = answers_for(&sheet, &["hose_clamps"]);
        for a in all["answers"].as_array_mut().unwrap() {
            if a["code"] == "hose_clamps" {
                a["note"] = json!("灶具端管卡缺失");
                a["grade"] = json!("major");
            }
        }
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            &format!("/api/v1/inspections/{iid}/answers"),
            Some(all),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, done) = call(
            &base,
            &grid,
            "POST",
            &format!("/api/v1/inspections/{iid}/finish"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 200, "{done}");
        assert_eq!(done["inspection"]["failed_count"], 1);
        let failed = done["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item"]["code"] == "hose_clamps")
            .unwrap();
        assert_eq!(failed["grade"], "major", "the worker raised it");
        let hazard = Uuid::parse_str(failed["hazard_id"].as_str().expect("a hazard")).unwrap();
        let answer = Uuid::parse_str(failed["answer_id"].as_str().unwrap()).unwrap();
        let photo_id = photo["id"].as_str().unwrap().to_owned();
        let (d101, w_comm) = (site.d101, w.comm_a);
        let row = t
            .store()
            .read(move |c, _| {
                Ok(c.query_one(
                "SELECT inspection_id, answer_id, place_kind, place_id, node_id, grade, source, \
                 finding, place_label FROM hazards WHERE id = $1",
                &params![hazard],
            )?
            .unwrap())
            })
            .await
            .unwrap();
        assert_eq!(row.get::<Uuid>("inspection_id").unwrap(), iid);
        assert_eq!(row.get::<Uuid>("answer_id").unwrap(), answer);
        assert_eq!(row.get::<String>("place_kind").unwrap(), "dwelling");
        assert_eq!(row.get::<Uuid>("place_id").unwrap(), d101);
        assert_eq!(row.get::<Uuid>("node_id").unwrap(), w_comm);
        assert_eq!(row.get::<String>("grade").unwrap(), "major");
        assert_eq!(row.get::<String>("source").unwrap(), "inspection");
        assert!(row
            .get::<String>("finding")
            .unwrap()
            .contains("灶具端管卡缺失"));
        assert_eq!(row.get::<String>("place_label").unwrap(), "锦苑1栋 101");
        let evidence = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT evidence FROM hazard_events WHERE hazard_id = $1",
                    &params![hazard],
                )
            })
            .await
            .unwrap();
        assert!(
            evidence
                .iter()
                .any(|r| r.get::<String>("evidence").unwrap().contains(&photo_id)),
            "the photo is the hazard's evidence"
        );
        // Finished: no more answers or photos.
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            &format!("/api/v1/inspections/{iid}/answers"),
            Some(json!({ "answers": [] })),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "inspection.done"));
        let (s, _) = upload(&base, &grid, iid, None, "x.png", PNG).await;
        assert_eq!(s, 409);
    }
);

// ---- attachments ----------------------------------------------------------------------------

both_stores!(
    attachments_are_scoped_and_sniffed,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let site = site(t.store(), &w).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let grid2 = staff(&t, "grid_a2", Role::GridWorker, Scope::Grid(w.grid_a2)).await;
        let inspector = staff(&t, "inspector", Role::Inspector, Scope::Node(w.comm_a)).await;
        let (_, sheet) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/inspections",
            Some(json!({ "template_id": FIRE_EXIT, "target_id": site.building })),
        )
        .await;
        let iid = Uuid::parse_str(sheet["inspection"]["id"].as_str().expect("started")).unwrap();
        let before = count(&t, "SELECT count(*) FROM attachments").await;
        // Not images: refused by content, whatever the name says.
        for (bytes, want) in [
            (b"GIF89a\x01\x00\x01\x00".to_vec(), "attachment.type"),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
                "attachment.type",
            ),
            (Vec::new(), "attachment.empty"),
            (
                {
                    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
                    v.resize(8 * 1024 * 1024 + 1, 0);
                    v
                },
                "attachment.too_large",
            ),
        ] {
            let (s, b) = upload(&base, &grid, iid, None, "photo.jpg", &bytes).await;
            assert_eq!((s, code(&b), field(&b)), (422, want, "file"), "{b}");
        }
        let (s, b) = upload(&base, &grid, iid, Some(Uuid::now_v7()), "a.png", PNG).await;
        assert_eq!((s, field(&b)), (422, "item_id"));
        assert_eq!(count(&t, "SELECT count(*) FROM attachments").await, before);
        let (s, a) = upload(&base, &grid, iid, None, "../../楼道 照片.png", PNG).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(a["mime"], "image/png");
        assert_eq!(a["filename"], "楼道 照片.png");
        assert_eq!(a["size"], PNG.len());
        assert_eq!(
            a["sha256"].as_str().unwrap(),
            anxin_store::hazards::attachments::sha256_hex(PNG)
        );
        let path = format!("/api/v1/attachments/{}", a["id"].as_str().unwrap());
        for u in [&grid, &worker] {
            let r = crate::support::client()
                .get(format!("{base}{path}"))
                .header("cookie", &u.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "image/png");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
        }
        let missing = format!("/api/v1/attachments/{}", Uuid::now_v7());
        for u in [&outsider, &grid2, &inspector] {
            let (s, b) = call(&base, u, "GET", &path, None).await;
            let (ms, mb) = call(&base, u, "GET", &missing, None).await;
            assert_eq!((s, code(&b)), (404, "record.not_found"), "{}", u.name);
            assert_eq!((s, code(&b)), (ms, code(&mb)));
        }
        // A photo of an item not yet answered: its taker sees it, so does the community.
        let item = item_id(&sheet, "extinguishers");
        let (s, p) = upload(&base, &grid, iid, Some(item), "灭火器.png", PNG).await;
        assert_eq!(s, 201, "{p}");
        let ppath = format!("/api/v1/attachments/{}", p["id"].as_str().unwrap());
        for u in [&grid, &worker] {
            let (s, _) = call(&base, u, "GET", &ppath, None).await;
            assert_eq!(s, 200, "{}", u.name);
        }
        for u in [&outsider, &grid2, &inspector] {
            let (s, _) = call(&base, u, "GET", &ppath, None).await;
            assert_eq!(s, 404, "{}", u.name);
        }
        // Photos of someone else's inspection cannot be added either.
        let (s, _) = upload(&base, &grid2, iid, None, "a.png", PNG).await;
        assert_eq!(s, 404);
    }
);

// ---- the phone page -------------------------------------------------------------------------

both_stores!(
    phone_page_completes_an_inspection,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let site = site(t.store(), &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        call(
            &base,
            &worker,
            "POST",
            "/api/v1/inspection-schedules",
            Some(
                json!({ "node_id": w.comm_a, "template_id": GAS, "name": "每周入户燃气检查",
                     "period": "weekly" }),
            ),
        )
        .await;
        let c = crate::support::client();
        let page = |p: String| {
            c.get(format!("{base}{p}"))
                .header("cookie", &grid.cookie)
                .send()
        };
        let html = page("/manage/inspections".into())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("今日待检") && html.contains("锦苑1栋 101"),
            "{html}"
        );
        let r = c
            .post(format!("{base}/manage/inspections"))
            .header("cookie", &grid.cookie)
            .form(&[
                ("_csrf", grid.csrf.as_str()),
                ("template_id", GAS),
                ("target_id", &site.d101.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        let html = page(to.clone()).await.unwrap().text().await.unwrap();
        assert!(
            html.contains("capture=\"environment\"")
                && html.contains("name=\"answer.pipe_corrosion\"")
        );
        assert!(html.contains("enctype=\"multipart/form-data\""));
        // Everything passes but the leak test, with a photo; finish in one go.
        let mut fields: Vec<(String, Option<String>, Vec<u8>)> = vec![
            ("_csrf".into(), None, grid.csrf.as_bytes().to_vec()),
            ("action".into(), None, b"finish".to_vec()),
        ];
        let gas_sheet = t
            .store()
            .read(|c, _| insp::get_template(c, &Caller::system(), gas()))
            .await
            .unwrap();
        for it in &gas_sheet.items {
            let a = match it.answer_type.as_str() {
                "choice" => {
                    let failing = it.answer_spec["failing"].as_array().unwrap();
                    it.answer_spec["options"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|o| !failing.contains(o))
                        .and_then(|o| o.as_str())
                        .unwrap()
                        .to_owned()
                }
                _ => "pass".to_owned(),
            };
            let a = if it.code == "joint_sealing" {
                "fail".to_owned()
            } else {
                a
            };
            fields.push((format!("answer.{}", it.code), None, a.into_bytes()));
            fields.push((format!("note.{}", it.code), None, Vec::new()));
        }
        fields.push((
            "note.joint_sealing".into(),
            None,
            "表前阀接口冒泡".as_bytes().to_vec(),
        ));
        fields.push((
            "photo.joint_sealing".into(),
            Some("leak.png".into()),
            PNG.to_vec(),
        ));
        fields.push(("photo.meter".into(), Some("".into()), Vec::new()));
        let parts: Vec<(&str, Option<&str>, &[u8])> = fields
            .iter()
            .map(|(n, f, d)| (n.as_str(), f.as_deref(), d.as_slice()))
            .collect();
        let (ct, body) = multipart(&parts);
        let r = c
            .post(format!("{base}{to}"))
            .header("cookie", &grid.cookie)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 303, "{text}");
        let html = page(to.clone()).await.unwrap().text().await.unwrap();
        assert!(html.contains("已完成"), "{html}");
        assert!(
            html.contains("data-hazard="),
            "the failed item links its hazard"
        );
        let n = count(
            &t,
            "SELECT count(*) FROM hazards WHERE source = 'inspection'",
        )
        .await;
        assert_eq!(n, 1);
        // English on request.
        let html = page(format!("{to}?lang=en"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("Failed items"));

        // The manager's pages: checklists (a new one from lines of text) and schedules.
        let wc = crate::support::client();
        let get = |p: String| {
            wc.get(format!("{base}{p}"))
                .header("cookie", &worker.cookie)
                .send()
        };
        for p in [
            "/manage/inspection-templates",
            "/manage/inspection-schedules",
            "/manage/inspections",
        ] {
            let r = get(p.into()).await.unwrap();
            assert_eq!(r.status(), 200, "{p}");
        }
        let html = get(format!("/manage/inspection-templates/{GAS}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("燃气安全入户检查") && html.contains("胶管"),
            "{html}"
        );
        assert!(
            html.contains("锦苑1栋 101"),
            "the start form offers the dwellings"
        );
        let bad = "corridor | 楼道无杂物 | pass_fail\ncorridor | 重复 | pass_fail";
        let r = wc
            .post(format!("{base}/manage/inspection-templates"))
            .header("cookie", &worker.cookie)
            .form(&[
                ("_csrf", worker.csrf.as_str()),
                ("node_id", &w.comm_a.to_string()),
                ("name", "楼道检查"),
                ("target_kind", "building"),
                ("items", bad),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("检查项代码重复") && html.contains("items[1].code"),
            "{html}"
        );
        let good = "corridor | 楼道无杂物 | pass_fail | on_fail | minor | 逐层查看\nlights | 声控灯 | choice | none | minor | 按亮 | 正常;!损坏\nponding | 积水深度 | number | optional | major | 量最深处 | 0..5 cm";
        let r = wc
            .post(format!("{base}/manage/inspection-templates"))
            .header("cookie", &worker.cookie)
            .form(&[
                ("_csrf", worker.csrf.as_str()),
                ("node_id", &w.comm_a.to_string()),
                ("name", "楼道检查"),
                ("target_kind", "building"),
                ("items", good),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        let html = get(to.clone()).await.unwrap().text().await.unwrap();
        assert!(
            html.contains("声控灯") && html.contains("正常;!损坏") && html.contains("0..5 cm"),
            "{html}"
        );
        let id = Uuid::parse_str(to.rsplit('/').next().unwrap()).unwrap();
        let tpl = t
            .store()
            .read(move |c, _| insp::get_template(c, &Caller::system(), id))
            .await
            .unwrap();
        assert_eq!(tpl.items[1].answer_spec["failing"], json!(["损坏"]));
        assert_eq!(tpl.items[2].answer_spec["max"], json!(5.0));
        let sched = t
            .store()
            .read(|c, _| c.query_one("SELECT id FROM inspection_schedules", &[]))
            .await
            .unwrap()
            .unwrap()
            .get::<Uuid>("id")
            .unwrap();
        let r = wc
            .post(format!("{base}/manage/inspection-schedules/{sched}"))
            .header("cookie", &worker.cookie)
            .form(&[
                ("_csrf", worker.csrf.as_str()),
                ("name", "每周燃气检查"),
                ("period", "monthly"),
                ("target_id", ""),
                ("assignee_user_id", ""),
                ("starts_on", "2026-11-02"),
                ("active_present", "1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let html = get(format!("/manage/inspection-schedules/{sched}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("每周燃气检查") && html.contains("已停止"),
            "unticked: deactivated: {html}"
        );
    }
);

// ---- the store layer ------------------------------------------------------------------------

both_stores!(
    store_start_checks_kind_and_answers,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let site = site(t.store(), &w).await;
        let (d101, building) = (site.d101, site.building);
        let grid = Caller::system();
        let r = t
            .store()
            .write(WriteCtx::system("insp-store"), move |tx| {
                let first = insp::start(
                    tx,
                    &grid,
                    &StartInput {
                        template_id: Some(gas()),
                        target_id: Some(d101),
                        ..StartInput::default()
                    },
                )?;
                let wrong = insp::start(
                    tx,
                    &grid,
                    &StartInput {
                        template_id: Some(gas()),
                        target_kind: Some("building".into()),
                        target_id: Some(building),
                        ..StartInput::default()
                    },
                );
                let answered = insp::answer(
                    tx,
                    &grid,
                    first.inspection.id,
                    &AnswersInput {
                        answers: vec![AnswerInput {
                            code: Some("valves".into()),
                            answer: Some("不合格".into()),
                            ..AnswerInput::default()
                        }],
                        notes: None,
                    },
                )?;
                Ok((first, wrong.err().map(|e| e.to_string()), answered))
            })
            .await
            .unwrap();
        assert_eq!(
            r.1.as_deref(),
            Some("invalid target_kind: inspection.target_kind")
        );
        let valves = r.2.items.iter().find(|i| i.item.code == "valves").unwrap();
        assert_eq!(
            (valves.answer.as_deref(), valves.passed),
            (Some("fail"), Some(false))
        );
        assert_eq!(valves.grade.as_deref(), Some("minor"));
    }
);

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a checklist of community A, a schedule, an inspection of a
/// building in grid A1 (in progress) and a photo of it.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    store
        .write(WriteCtx::system("insp-a1"), move |tx| {
            use anxin_store::places::{self as pl, *};
            let sys = Caller::system();
            let b = pl::create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    name: Some("矩阵楼".into()),
                    ..BuildingInput::default()
                })?,
            )?
            .id;
            let t = insp::create_template(
                tx,
                &sys,
                &insp::TemplateInput {
                    node_id: Some(comm_a),
                    name: Some("矩阵检查表".into()),
                    target_kind: Some("building".into()),
                    items: Some(vec![insp::ItemInput {
                        code: Some("corridor".into()),
                        text: Some("楼道无杂物".into()),
                        ..insp::ItemInput::default()
                    }]),
                    ..insp::TemplateInput::default()
                },
            )?
            .id;
            let s = insp::create_schedule(
                tx,
                &sys,
                &insp::ScheduleInput {
                    node_id: Some(comm_a),
                    template_id: Some(t),
                    name: Some("矩阵计划".into()),
                    period: Some("monthly".into()),
                    ..insp::ScheduleInput::default()
                },
            )?
            .id;
            let i = insp::start(
                tx,
                &sys,
                &StartInput {
                    schedule_id: Some(s),
                    target_id: Some(b),
                    ..StartInput::default()
                },
            )?
            .inspection
            .id;
            let a = insp::add_photo(tx, &sys, i, None, "a1.png", PNG)?.id;
            Ok(HashMap::from([
                ("inspection_templates", t),
                ("inspection_schedules", s),
                ("inspections", i),
                ("attachments", a),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/inspection-templates" | "/manage/inspection-templates" => json!({
            "node_id": w.comm_a.to_string(), "name": "闯入检查表", "target_kind": "building",
            "items": [{ "code": "x", "text": "闯入" }]
        }),
        "/api/v1/inspection-templates/{id}" | "/manage/inspection-templates/{id}" => {
            json!({ "name": "闯入检查表" })
        }
        "/api/v1/inspection-schedules" | "/manage/inspection-schedules" => json!({
            "node_id": w.comm_a.to_string(), "template_id": GAS, "name": "闯入计划",
            "period": "weekly"
        }),
        "/api/v1/inspection-schedules/{id}" | "/manage/inspection-schedules/{id}" => {
            json!({ "name": "闯入计划" })
        }
        "/api/v1/inspections" | "/manage/inspections" => {
            json!({ "template_id": GAS, "target_id": w.hh_a1.to_string() })
        }
        "/api/v1/inspections/{id}/answers" => {
            json!({ "answers": [{ "code": "corridor", "answer": "fail" }] })
        }
        "/api/v1/inspections/{id}/finish" | "/manage/inspections/{id}" => json!({}),
        "/api/v1/inspections/{id}/photos" => json!({}),
        _ => return None,
    })
}
