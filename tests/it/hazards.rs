//! Stories of the hazard ledger (隐患台账): deadlines from the grade rules, the minor and the
//! major lifecycle through the API with the right roles, the plan-start link, acceptance,
//! reopening, escalation of overdue hazards, the XLSX export and the map layer.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::hazard::{HazardGrade, HazardSource, PlaceKind};
use anxin_domain::{Clock, Role, Scope};
use anxin_store::hazards::ledger::{self, NewHazard};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{client, Backend, TestApp};
use crate::world::{self, call, code, staff, World};

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): one minor hazard in grid A1 with a position.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    store
        .write(WriteCtx::system("hazards-a1"), move |tx| {
            let now = tx.now();
            let id = ledger::report(
                tx,
                None,
                &anxin_domain::hazard::default_grade_rules(),
                &NewHazard {
                    lon: Some(104.09),
                    lat: Some(30.66),
                    ..new_hazard(comm_a, Some(grid_a1), HazardGrade::Minor, now)
                },
            )?;
            Ok(HashMap::from([("hazards", id)]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/hazards" | "/manage/hazards" => json!({
            "node_id": w.comm_a, "grid_id": w.grid_a1, "place_label": "闯入地点",
            "finding": "闯入隐患", "grade": "minor"
        }),
        "/api/v1/hazards/{id}/actions" | "/manage/hazards/{id}/actions" => {
            json!({ "action": "note", "note": "闯入" })
        }
        _ => return None,
    })
}

// ---- helpers ----------------------------------------------------------------------------------

fn new_hazard(node: Uuid, grid: Option<Uuid>, grade: HazardGrade, at: DateTime<Utc>) -> NewHazard {
    NewHazard {
        node_id: node,
        grid_id: grid,
        place_kind: PlaceKind::Node,
        place_id: node,
        place_label: "3栋2单元401".into(),
        lon: None,
        lat: None,
        source: HazardSource::Staff,
        inspection_id: None,
        answer_id: None,
        category: "gas".into(),
        finding: "燃气胶管老化龟裂".into(),
        grade,
        responsible_party: None,
        found_at: at,
        evidence: Vec::new(),
    }
}

/// An instant in Asia/Shanghai.
fn sh(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    anxin_domain::clock::SHANGHAI
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn user_id(t: &TestApp, username: &'static str) -> Uuid {
    t.store()
        .read(move |c, _| {
            c.query_one(
                "SELECT id FROM users WHERE username = $1",
                &params![username],
            )?
            .unwrap()
            .get("id")
        })
        .await
        .unwrap()
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

async fn act(base: &str, u: &world::User, id: &str, body: Value) -> (u16, Value) {
    call(
        base,
        u,
        "POST",
        &format!("/api/v1/hazards/{id}/actions"),
        Some(body),
    )
    .await
}

fn major_body(w: &World) -> Value {
    json!({
        "node_id": w.comm_a, "grid_id": w.grid_a1, "place_label": "3栋2单元401",
        "category": "gas", "finding": "燃气管道接口漏气", "grade": "major",
        "lon": 104.081, "lat": 30.651
    })
}

// ---- stories ----------------------------------------------------------------------------------

/// Like `both_stores!`, with sessions that outlive the days a story moves the clock on.
macro_rules! ledger_story {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn app(backend: Backend) -> TestApp {
                TestApp::with_config(backend, |c| {
                    c.auth.session_idle_minutes = 60 * 24 * 60;
                })
                .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(app(Backend::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(app(Backend::Postgres).await).await;
            }
        }
    };
}

both_stores!(deadlines_follow_the_grade_rules, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    // Monday 2026-11-02 09:00 in Shanghai.
    let found = sh(2026, 11, 2, 9, 0);
    assert_eq!(t.clock.now(), found);
    let (comm_a, grid_a1, comm_b) = (w.comm_a, w.grid_a1, w.comm_b);
    let rules = t.config.hazards.grades.clone();
    let (minor, major) = t
        .store()
        .write(WriteCtx::system("deadlines"), move |tx| {
            let minor = ledger::report(
                tx,
                None,
                &rules,
                &new_hazard(comm_a, Some(grid_a1), HazardGrade::Minor, found),
            )?;
            let major = ledger::report(
                tx,
                None,
                &rules,
                &new_hazard(comm_a, None, HazardGrade::Major, found),
            )?;
            Ok((minor, major))
        })
        .await
        .unwrap();
    let now = t.clock.now();
    let (minor, major) = t
        .store()
        .read(move |c, _| {
            let sys = Caller::system();
            Ok((
                ledger::get(c, &sys, minor, now)?,
                ledger::get(c, &sys, major, now)?,
            ))
        })
        .await
        .unwrap();
    // Minor: 3 calendar days, ending at 24:00 Thursday.
    assert_eq!(minor.fix_due_at, sh(2026, 11, 6, 0, 0));
    assert_eq!(minor.plan_due_at, None);
    assert_eq!(minor.responsible_party, "物业服务企业");
    // Major: the plan within 24 clock hours; the fix within 7 working days counted from Tuesday.
    assert_eq!(major.plan_due_at, Some(sh(2026, 11, 3, 9, 0)));
    assert_eq!(major.fix_due_at, sh(2026, 11, 12, 0, 0));
    assert_eq!((major.state.as_str(), major.overdue), ("reported", false));
    // The first event is the report.
    let kinds: Vec<String> = t
        .store()
        .read(move |c, _| ledger::events(c, &Caller::system(), major.id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["reported"]);

    // Bad input names the field and writes nothing.
    let rules = t.config.hazards.grades.clone();
    let cases: Vec<(NewHazard, &str, &str)> = vec![
        (
            NewHazard {
                finding: "  ".into(),
                ..new_hazard(comm_a, None, HazardGrade::Minor, found)
            },
            "value.required",
            "finding",
        ),
        (
            new_hazard(comm_a, Some(w.grid_b1), HazardGrade::Minor, found),
            "hazard.grid_not_in_node",
            "grid_id",
        ),
        (
            NewHazard {
                lat: Some(30.6),
                ..new_hazard(comm_b, None, HazardGrade::Minor, found)
            },
            "value.required",
            "lon",
        ),
        (
            new_hazard(
                comm_b,
                None,
                HazardGrade::Minor,
                found + chrono::Duration::days(1),
            ),
            "hazard.found_in_future",
            "found_at",
        ),
        (
            NewHazard {
                evidence: vec![Uuid::now_v7()],
                ..new_hazard(comm_b, None, HazardGrade::Minor, found)
            },
            "hazard.evidence_unknown",
            "evidence[0]",
        ),
    ];
    for (h, want_code, want_field) in cases {
        let rules = rules.clone();
        let err = t
            .store()
            .write(WriteCtx::system("bad"), move |tx| {
                ledger::report(tx, None, &rules, &h)
            })
            .await
            .unwrap_err();
        match err {
            anxin_store::StoreError::Invalid { code, field } => {
                assert_eq!((code, field.as_str()), (want_code, want_field));
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(count(&t, "SELECT count(*) FROM hazards").await, 2);
    assert_eq!(count(&t, "SELECT count(*) FROM hazard_events").await, 2);
});

ledger_story!(
    major_hazard_lifecycle_through_the_api,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let inspector = staff(&t, "inspector_a", Role::Inspector, Scope::Node(w.comm_a)).await;
        let inspector_b = staff(&t, "inspector_b", Role::Inspector, Scope::Node(w.comm_b)).await;
        let grid_b = staff(&t, "grid_b1", Role::GridWorker, Scope::Grid(w.grid_b1)).await;
        let grid_id = user_id(&t, "grid_a1").await;

        // The grid worker reports a major hazard in their grid; not in another's.
        let mut other = major_body(&w);
        other["grid_id"] = json!(w.grid_a2);
        let (s, b) = call(&base, &grid, "POST", "/api/v1/hazards", Some(other)).await;
        assert_eq!((s, code(&b)), (422, "value.invalid"), "{b}");
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/hazards",
            Some(json!({"node_id": w.comm_a, "grade": "major", "place_label": "x"})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("finding")),
            "{b}"
        );
        assert_eq!(count(&t, "SELECT count(*) FROM hazards").await, 0);
        let (s, h) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/hazards",
            Some(major_body(&w)),
        )
        .await;
        assert_eq!(s, 201, "{h}");
        let id = h["id"].as_str().unwrap().to_owned();
        assert_eq!(h["state"], "reported");
        assert_eq!(h["source"], "staff");
        assert_eq!(at(&h["fix_due_at"]), sh(2026, 11, 12, 0, 0));
        assert_eq!(at(&h["plan_due_at"]), sh(2026, 11, 3, 9, 0));

        // Who sees it: the inspector of A yes; B's inspector and grid worker no (like a missing one).
        let (s, _) = call(
            &base,
            &inspector,
            "GET",
            &format!("/api/v1/hazards/{id}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        for u in [&inspector_b, &grid_b] {
            let (s, b) = call(&base, u, "GET", &format!("/api/v1/hazards/{id}"), None).await;
            assert_eq!((s, code(&b)), (404, "record.not_found"), "{b}");
            let (_, b) = call(&base, u, "GET", "/api/v1/hazards", None).await;
            assert!(!b.to_string().contains(&id));
        }

        // The community worker assigns it to the grid worker.
        let (s, b) = act(
            &base,
            &worker,
            &id,
            json!({"action": "assign", "assignee_user_id": Uuid::now_v7()}),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "hazard.assignee_invalid"), "{b}");
        let (s, b) = act(&base, &worker, &id, json!({"action": "assign", "assignee_user_id": grid_id, "responsible_party": "锦江物业"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (b["state"].as_str(), b["responsible_party"].as_str()),
            (Some("assigned"), Some("锦江物业"))
        );

        // The plan's start: a real activation only.
        let (_, pending) =
            crate::incidents::incident(t.store(), w.comm_a, "燃气预案", "待确认", "pending", false)
                .await;
        let (_, other_comm) =
            crate::incidents::incident(t.store(), w.comm_b, "燃气预案B", "B事件", "active", false)
                .await;
        t.clock.advance(chrono::Duration::hours(2));
        let (_, street) = crate::incidents::incident(
            t.store(),
            w.street,
            "街道燃气预案",
            "街道燃气泄漏处置",
            "active",
            false,
        )
        .await;
        let activated_at = t.clock.now();
        for fake in [Uuid::now_v7(), pending, other_comm] {
            let (s, b) = act(
                &base,
                &worker,
                &id,
                json!({"action": "record_plan_start", "incident_id": fake}),
            )
            .await;
            assert_eq!(
                (s, code(&b), b["error"]["details"]["field"].as_str()),
                (422, "hazard.incident_invalid", Some("incident_id")),
                "{b}"
            );
        }
        t.clock.advance(chrono::Duration::hours(1));
        let (s, b) = act(
            &base,
            &worker,
            &id,
            json!({"action": "record_plan_start", "incident_id": street}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["incident_id"].as_str(), Some(street.to_string().as_str()));
        assert_eq!(at(&b["plan_started_at"]), activated_at);
        let (s, b) = act(
            &base,
            &worker,
            &id,
            json!({"action": "record_plan_start", "incident_id": street}),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "hazard.plan_already_linked"), "{b}");

        // The grid worker remediates and marks it fixed (with a photo of the community as evidence).
        let photo = {
            let comm_a = w.comm_a;
            let hid: Uuid = id.parse().unwrap();
            t.store()
                .write(WriteCtx::system("photo"), move |tx| {
                    anxin_store::hazards::attachments::store(
                        tx,
                        &Caller::system(),
                        comm_a,
                        "hazard",
                        hid,
                        "fix.png",
                        b"\x89PNG\r\n\x1a\n0000000000000000",
                    )
                })
                .await
                .unwrap()
        };
        let (s, b) = act(&base, &grid, &id, json!({"action": "mark_fixed"})).await;
        assert_eq!((s, code(&b)), (409, "hazard.action_not_allowed"), "{b}");
        let (s, _) = act(&base, &grid, &id, json!({"action": "start_remediation"})).await;
        assert_eq!(s, 200);
        t.clock.advance(chrono::Duration::days(2));
        let (s, b) = act(
            &base,
            &grid,
            &id,
            json!({"action": "mark_fixed", "note": "更换接口密封件", "evidence": [photo]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["state"], "fixed");

        // Nothing closes a major hazard without acceptance; the grid worker may not accept.
        let (s, b) = act(&base, &worker, &id, json!({"action": "close"})).await;
        assert_eq!((s, code(&b)), (409, "hazard.needs_acceptance"), "{b}");
        let (s, b) = act(&base, &grid, &id, json!({"action": "accept"})).await;
        assert_eq!((s, code(&b)), (403, "hazard.forbidden"), "{b}");
        let (s, b) = act(&base, &inspector_b, &id, json!({"action": "accept"})).await;
        assert_eq!((s, code(&b)), (404, "record.not_found"), "{b}");
        // The inspector accepts (and may do nothing else).
        let (s, b) = act(&base, &inspector, &id, json!({"action": "close"})).await;
        assert_eq!((s, code(&b)), (403, "hazard.forbidden"), "{b}");
        let (s, b) = act(
            &base,
            &inspector,
            &id,
            json!({"action": "accept", "note": "复查合格"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["state"], "accepted");
        assert!(b["accepted_by_name"].as_str().is_some());
        let (s, b) = act(&base, &worker, &id, json!({"action": "close"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (
                b["state"].as_str(),
                b["closed_on_time"].as_bool(),
                b["overdue"].as_bool()
            ),
            (Some("closed"), Some(true), Some(false))
        );

        // The trail: who, when, from, to, evidence.
        let (s, d) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/hazards/{id}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let kinds: Vec<&str> = d["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "reported",
                "assigned",
                "plan_started",
                "remediating",
                "fixed",
                "accepted",
                "closed"
            ]
        );
        let fixed = &d["events"][4];
        assert_eq!(
            (fixed["from_state"].as_str(), fixed["to_state"].as_str()),
            (Some("remediating"), Some("fixed"))
        );
        assert_eq!(
            fixed["evidence"][0].as_str(),
            Some(photo.to_string().as_str())
        );
        assert_eq!(fixed["note"], "更换接口密封件");
        assert!(d["events"][2]["note"]
            .as_str()
            .unwrap()
            .contains("街道燃气泄漏处置"));

        // Reopen: history kept; fix, acceptance and close reset; deadlines stay.
        let (s, b) = act(&base, &worker, &id, json!({"action": "reopen"})).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("note")),
            "{b}"
        );
        let (s, b) = act(
            &base,
            &worker,
            &id,
            json!({"action": "reopen", "note": "复查发现仍有渗漏"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["state"], "remediating");
        for f in [
            "fixed_at",
            "accepted_by",
            "accepted_at",
            "closed_at",
            "closed_on_time",
        ] {
            assert!(b[f].is_null(), "{f}: {b}");
        }
        assert_eq!(b["reopened_count"], 1);
        assert_eq!(at(&b["fix_due_at"]), sh(2026, 11, 12, 0, 0));
        assert!(b["incident_id"].is_string());
        let (_, ev) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/hazards/{id}/events"),
            None,
        )
        .await;
        assert_eq!(ev.as_array().unwrap().len(), 8);
        // After a reopen it needs a new fix and a new acceptance.
        let (_, _) = act(&base, &grid, &id, json!({"action": "mark_fixed"})).await;
        let (s, b) = act(&base, &worker, &id, json!({"action": "close"})).await;
        assert_eq!((s, code(&b)), (409, "hazard.needs_acceptance"), "{b}");
    }
);

ledger_story!(
    minor_hazard_closes_late_and_shows_overdue,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let inspector = staff(&t, "inspector_a", Role::Inspector, Scope::Node(w.comm_a)).await;
        let mut body = major_body(&w);
        body["grade"] = json!("minor");
        body["finding"] = json!("楼道堆放杂物");
        let (s, h) = call(&base, &grid, "POST", "/api/v1/hazards", Some(body)).await;
        assert_eq!(s, 201, "{h}");
        let id = h["id"].as_str().unwrap().to_owned();
        assert!(h["plan_due_at"].is_null());
        let (s, b) = act(
            &base,
            &worker,
            &id,
            json!({"action": "record_plan_start", "incident_id": Uuid::now_v7()}),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "hazard.plan_not_required"), "{b}");
        let (s, _) = act(&base, &grid, &id, json!({"action": "start_remediation"})).await;
        assert_eq!(s, 200);
        // Past Thursday 24:00 it is overdue, in the list's filter too.
        t.clock.advance(chrono::Duration::days(4));
        let (_, page) = call(&base, &worker, "GET", "/api/v1/hazards?overdue=true", None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["items"][0]["overdue"], true);
        let (_, page) = call(&base, &worker, "GET", "/api/v1/hazards?overdue=false", None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
        let (_, _) = act(&base, &grid, &id, json!({"action": "mark_fixed"})).await;
        let (s, b) = act(&base, &inspector, &id, json!({"action": "accept"})).await;
        assert_eq!((s, code(&b)), (409, "hazard.acceptance_not_needed"), "{b}");
        let (s, b) = act(&base, &grid, &id, json!({"action": "close"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            (b["closed_on_time"].as_bool(), b["overdue"].as_bool()),
            (Some(false), Some(false))
        );
        let (s, b) = act(&base, &grid, &id, json!({"action": "bogus"})).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("action")),
            "{b}"
        );
        let (s, b) = act(&base, &grid, &id, json!({"action": "note"})).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("note")),
            "{b}"
        );
        let (s, _) = act(
            &base,
            &grid,
            &id,
            json!({"action": "note", "note": "已告知住户"}),
        )
        .await;
        assert_eq!(s, 200);
    }
);

both_stores!(list_filters_and_pages, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let officer = staff(&t, "street", Role::StreetOfficer, Scope::Node(w.street)).await;
    let mut ids = Vec::new();
    for (i, (grade, finding, grid)) in [
        ("minor", "楼道堆放杂物", w.grid_a1),
        ("major", "燃气管道接口漏气", w.grid_a2),
        ("minor", "消防通道被占用", w.grid_a1),
    ]
    .into_iter()
    .enumerate()
    {
        t.clock.advance(chrono::Duration::minutes(10));
        let (s, h) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/hazards",
            Some(json!({
                "node_id": w.comm_a, "grid_id": grid, "place_label": format!("{}栋", i + 1),
                "finding": finding, "grade": grade
            })),
        )
        .await;
        assert_eq!(s, 201, "{h}");
        ids.push(h["id"].as_str().unwrap().to_owned());
    }
    let count_of = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, p) = call(&base, &officer, "GET", "/api/v1/hazards?grade=major", None).await;
    assert_eq!(
        (count_of(&p), p["items"][0]["id"].as_str()),
        (1, Some(ids[1].as_str()))
    );
    let (_, p) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/hazards?grid={}", w.grid_a1),
        None,
    )
    .await;
    assert_eq!(count_of(&p), 2);
    let (_, p) = call(
        &base,
        &worker,
        "GET",
        "/api/v1/hazards?q=%E6%B6%88%E9%98%B2",
        None,
    )
    .await;
    assert_eq!(
        (count_of(&p), p["items"][0]["id"].as_str()),
        (1, Some(ids[2].as_str()))
    );
    let (_, p) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/hazards?node={}", w.comm_b),
        None,
    )
    .await;
    assert_eq!(count_of(&p), 0);
    let (_, p) = call(
        &base,
        &worker,
        "GET",
        "/api/v1/hazards?state=open&source=staff",
        None,
    )
    .await;
    assert_eq!(count_of(&p), 3);
    // Keyset pages, newest found first.
    let (_, p1) = call(&base, &worker, "GET", "/api/v1/hazards?limit=2", None).await;
    assert_eq!(count_of(&p1), 2);
    assert_eq!(p1["items"][0]["id"].as_str(), Some(ids[2].as_str()));
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/hazards?limit=2&after={next}"),
        None,
    )
    .await;
    assert_eq!(count_of(&p2), 1);
    assert_eq!(p2["items"][0]["id"].as_str(), Some(ids[0].as_str()));
    assert!(p2["next"].is_null());
    for (q, field) in [
        ("state=lost", "state"),
        ("grade=huge", "grade"),
        ("limit=0", "limit"),
        ("after=%21%21", "after"),
    ] {
        let (s, b) = call(&base, &worker, "GET", &format!("/api/v1/hazards?{q}"), None).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some(field)),
            "{q}: {b}"
        );
    }
});

both_stores!(export_and_map_layer, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let (s, major) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/hazards",
        Some(major_body(&w)),
    )
    .await;
    assert_eq!(s, 201);
    let (s, minor) = call(&base, &worker, "POST", "/api/v1/hazards", Some(json!({
        "node_id": w.comm_a, "place_label": "小区东门", "finding": "=HYPERLINK(\"x\")井盖缺失", "grade": "minor"
    }))).await;
    assert_eq!(s, 201, "{minor}");

    // The map layer: only hazards with a position.
    let (s, fc) = call(&base, &worker, "GET", "/api/v1/hazards.geojson", None).await;
    assert_eq!(s, 200);
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), 1);
    let p = &features[0]["properties"];
    assert_eq!(p["id"], major["id"]);
    assert_eq!(
        (
            p["grade"].as_str(),
            p["state"].as_str(),
            p["overdue"].as_bool()
        ),
        (Some("major"), Some("reported"), Some(false))
    );
    assert_eq!(
        features[0]["geometry"]["coordinates"],
        json!([104.081, 30.651])
    );
    assert_eq!(p["finding"], "燃气管道接口漏气");
    let (_, fc) = call(&base, &worker_b, "GET", "/api/v1/hazards.geojson", None).await;
    assert_eq!(fc["features"].as_array().unwrap().len(), 0);

    // The XLSX: one row per hazard in the filing shape, times in Asia/Shanghai, formulas neutralised.
    let get = |u: &world::User| {
        client()
            .get(format!("{base}{}", anxin::http::hazards::XLSX_PATH))
            .header("cookie", &u.cookie)
            .send()
    };
    let r = get(&worker).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], anxin::io::XLSX_TYPE);
    let bytes = r.bytes().await.unwrap();
    let sheet = anxin::io::sheet::read_raw(&bytes, anxin::io::Format::Xlsx).unwrap();
    assert_eq!(
        sheet.headers,
        [
            "地点",
            "隐患描述",
            "等级",
            "发现时间",
            "整改期限",
            "责任单位",
            "状态",
            "销号时间",
            "验收人",
            "编号"
        ]
    );
    assert_eq!(sheet.rows.len(), 2);
    let row = |id: &Value| {
        sheet
            .rows
            .iter()
            .map(|(_, c)| c)
            .find(|c| c[9] == id.as_str().unwrap())
            .unwrap()
            .clone()
    };
    let m = row(&major["id"]);
    assert_eq!(m[0], "水井坊社区 一网格 3栋2单元401");
    assert_eq!(m[1], "燃气管道接口漏气");
    assert_eq!(m[2], "重大隐患");
    assert_eq!(m[3], "2026-11-02 09:00");
    assert_eq!(m[4], "2026-11-11 24:00");
    assert_eq!(m[5], "物业服务企业");
    assert_eq!(m[6], "已上报");
    assert_eq!((m[7].as_str(), m[8].as_str()), ("", ""));
    let n = row(&minor["id"]);
    assert_eq!(n[0], "水井坊社区 小区东门");
    // Read back raw: the export neutralised the formula.
    assert_eq!(n[1], "'=HYPERLINK(\"x\")井盖缺失");
    assert_eq!(
        (n[2].as_str(), n[4].as_str()),
        ("一般隐患", "2026-11-05 24:00")
    );
    let r = get(&worker_b).await.unwrap();
    let sheet =
        anxin::io::sheet::read_raw(&r.bytes().await.unwrap(), anxin::io::Format::Xlsx).unwrap();
    assert_eq!(sheet.rows.len(), 0);
});

/// Escalation with a 24-hour step and two levels: street officers at 24 h past the deadline,
/// the district's at 48 h, nothing more; each level's officers told once however often it runs.
mod escalation_moves_one_level_per_step {
    use super::*;

    async fn level_of(t: &TestApp, id: Uuid) -> i64 {
        t.store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT escalation_level FROM hazards WHERE id = $1",
                    &params![id],
                )
            })
            .await
            .unwrap()
    }

    async fn notified(t: &TestApp) -> i64 {
        count(
            t,
            "SELECT count(*) FROM notifications WHERE template = 'hazard_escalated'",
        )
        .await
    }

    async fn story(backend: Backend) {
        let t = TestApp::with_config(backend, |c| {
            c.hazards.escalate_every_hours = 24;
            c.hazards.escalation_max_levels = 2;
        })
        .await;
        let w = world::build(t.store()).await;
        let _street = staff(
            &t,
            "street_officer",
            Role::StreetOfficer,
            Scope::Node(w.street),
        )
        .await;
        let _district = staff(
            &t,
            "district_officer",
            Role::DistrictOfficer,
            Scope::Node(w.district),
        )
        .await;
        for (who, node, phone) in [
            ("street_officer", w.street, "13900002222"),
            ("district_officer", w.district, "13900003333"),
        ] {
            let uid = user_id(&t, who).await;
            t.store()
                .write(WriteCtx::system("duty"), move |tx| {
                    anxin_store::places::create_duty(
                        tx,
                        &Caller::system(),
                        &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                            node_id: Some(node),
                            duty: Some("安全生产值班".into()),
                            responsible: Some("值班员".into()),
                            user_id: Some(uid),
                            phone: Some(phone.into()),
                        })?,
                    )
                    .map(drop)
                })
                .await
                .unwrap();
        }
        let (comm_a, rules) = (w.comm_a, t.config.hazards.grades.clone());
        let found = t.clock.now();
        let id = t
            .store()
            .write(WriteCtx::system("report"), move |tx| {
                ledger::report(
                    tx,
                    None,
                    &rules,
                    &new_hazard(comm_a, None, HazardGrade::Minor, found),
                )
            })
            .await
            .unwrap();
        // Due Thursday 24:00 (Friday 00:00); an hour past: overdue, not yet escalated.
        t.clock.set(sh(2026, 11, 6, 1, 0));
        let r = anxin::hazards::escalation::run(&t.app).await.unwrap();
        assert_eq!(r.escalated, 0);
        assert_eq!(level_of(&t, id).await, 0);
        // 24 hours past: the street.
        t.clock.set(sh(2026, 11, 7, 0, 0));
        let r = anxin::hazards::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (1, 1));
        assert_eq!(level_of(&t, id).await, 1);
        // Running again (late, twice) does nothing more.
        t.clock.advance(chrono::Duration::hours(3));
        let r = anxin::hazards::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (0, 0));
        assert_eq!(notified(&t).await, 1);
        // 48 hours past: the district; then the cap.
        t.clock.set(sh(2026, 11, 8, 0, 30));
        let r = anxin::hazards::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (1, 1));
        t.clock.advance(chrono::Duration::days(5));
        let r = anxin::hazards::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (0, 0));
        assert_eq!(level_of(&t, id).await, 2);
        assert_eq!(notified(&t).await, 2);
        let events: Vec<(String, String)> = t
            .store()
            .read(move |c, _| ledger::events(c, &Caller::system(), id))
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.note))
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].0, "escalated");
        assert!(events[1].1.contains("锦官驿街道"), "{events:?}");
        assert!(events[2].1.contains("锦江区"), "{events:?}");
        // A closed hazard escalates no further; an on-time one never escalates.
        let recipients: Vec<String> = t
            .store()
            .read(|c, _| {
                c.query("SELECT recipient_mask FROM notifications WHERE template = 'hazard_escalated' ORDER BY created_at", &[])?
                    .iter()
                    .map(|r| r.get("recipient_mask"))
                    .collect()
            })
            .await
            .unwrap();
        assert_eq!(recipients.len(), 2);
        assert_ne!(recipients[0], recipients[1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        story(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        story(Backend::Postgres).await;
    }
}

/// A page request as `u`: GET, or POST of a URL-encoded form or a multipart body with one photo.
enum Form<'a> {
    None,
    Fields(&'a [(&'a str, &'a str)]),
    WithPhoto(&'a [(&'a str, &'a str)], &'a [u8]),
}

async fn page(
    base: &str,
    u: &world::User,
    method: &str,
    path: &str,
    form: Form<'_>,
) -> (u16, String, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client()
        .request(m, format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf);
    match form {
        Form::None => {}
        Form::Fields(f) => {
            let body: Vec<String> = f
                .iter()
                .map(|(k, v)| format!("{k}={}", urlenc(v)))
                .collect();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.join("&"));
        }
        Form::WithPhoto(f, photo) => {
            let b = "----anxin-test-boundary";
            let mut body: Vec<u8> = Vec::new();
            for (k, v) in f {
                body.extend(
                    format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"fix.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
            body.extend_from_slice(photo);
            body.extend(format!("\r\n--{b}--\r\n").as_bytes());
            req = req
                .header("content-type", format!("multipart/form-data; boundary={b}"))
                .body(body);
        }
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (s, loc, r.text().await.unwrap())
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

ledger_story!(
    pages_report_link_fix_accept_close,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let inspector = staff(&t, "inspector_a", Role::Inspector, Scope::Node(w.comm_a)).await;
        let inspector_b = staff(&t, "inspector_b", Role::Inspector, Scope::Node(w.comm_b)).await;
        let (comm_a, grid_a1) = (w.comm_a.to_string(), w.grid_a1.to_string());

        // The ledger page carries the report form; a bad report names its field and writes nothing.
        let (s, _, html) = page(&base, &grid, "GET", "/manage/hazards", Form::None).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("name=\"finding\"") && html.contains(&grid_a1),
            "{html}"
        );
        let mut fields = vec![
            ("node_id", comm_a.as_str()),
            ("grid_id", grid_a1.as_str()),
            ("place_label", "5栋1单元302"),
            ("finding", ""),
            ("grade", "major"),
        ];
        let (s, _, html) = page(
            &base,
            &grid,
            "POST",
            "/manage/hazards",
            Form::Fields(&fields),
        )
        .await;
        assert_eq!(s, 422);
        assert!(html.contains("data-field=\"finding\""), "{html}");
        assert_eq!(count(&t, "SELECT count(*) FROM hazards").await, 0);
        fields[3] = ("finding", "燃气热水器烟道脱落");
        let (s, loc, _) = page(
            &base,
            &grid,
            "POST",
            "/manage/hazards",
            Form::WithPhoto(&fields, PNG),
        )
        .await;
        assert_eq!(s, 303);
        let id = loc.trim_start_matches("/manage/hazards/").to_owned();
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM attachments WHERE owner_kind = 'hazard'"
            )
            .await,
            1
        );

        // The detail: deadlines in Asia/Shanghai; no active plan yet to link.
        let (s, _, html) = page(&base, &worker, "GET", &loc, Form::None).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("2026-11-11 24:00") && html.contains("2026-11-03 09:00"),
            "{html}"
        );
        assert!(html.contains("id=\"no-incidents\""));
        assert!(html.contains("/api/v1/attachments/"));
        let (_, inc) = crate::incidents::incident(
            t.store(),
            w.comm_a,
            "社区燃气事故预案",
            "3栋燃气泄漏处置",
            "active",
            false,
        )
        .await;
        let (_, _, html) = page(&base, &worker, "GET", &loc, Form::None).await;
        assert!(
            html.contains("3栋燃气泄漏处置") && html.contains("data-action=\"record_plan_start\""),
            "{html}"
        );
        let inc = inc.to_string();
        let (s, _, _) = page(
            &base,
            &worker,
            "POST",
            &format!("{loc}/actions"),
            Form::Fields(&[
                ("action", "record_plan_start"),
                ("incident_id", inc.as_str()),
            ]),
        )
        .await;
        assert_eq!(s, 303);
        let (s, _, _) = page(
            &base,
            &grid,
            "POST",
            &format!("{loc}/actions"),
            Form::Fields(&[("action", "start_remediation")]),
        )
        .await;
        assert_eq!(s, 303);
        let (s, _, _) = page(
            &base,
            &grid,
            "POST",
            &format!("{loc}/actions"),
            Form::WithPhoto(&[("action", "mark_fixed"), ("note", "已更换强排烟道")], PNG),
        )
        .await;
        assert_eq!(s, 303);
        // A refused step re-renders the page with its code.
        let (s, _, html) = page(
            &base,
            &worker,
            "POST",
            &format!("{loc}/actions"),
            Form::Fields(&[("action", "close")]),
        )
        .await;
        assert_eq!(s, 409);
        assert!(
            html.contains("data-code=\"hazard.needs_acceptance\""),
            "{html}"
        );
        // The inspector: the acceptance form, not the others; the other community's sees nothing.
        let (_, _, html) = page(&base, &inspector, "GET", &loc, Form::None).await;
        assert!(
            html.contains("data-action=\"accept\"") && !html.contains("data-action=\"close\""),
            "{html}"
        );
        let (s, _, _) = page(&base, &inspector_b, "GET", &loc, Form::None).await;
        assert_eq!(s, 404);
        let (s, _, _) = page(
            &base,
            &inspector,
            "POST",
            &format!("{loc}/actions"),
            Form::WithPhoto(&[("action", "accept"), ("note", "现场复核合格")], PNG),
        )
        .await;
        assert_eq!(s, 303);
        let (s, _, _) = page(
            &base,
            &worker,
            "POST",
            &format!("{loc}/actions"),
            Form::Fields(&[("action", "close")]),
        )
        .await;
        assert_eq!(s, 303);
        let (_, _, html) = page(&base, &worker, "GET", &loc, Form::None).await;
        assert!(html.contains("data-state=\"closed\""), "{html}");
        let evidence = t
            .store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM hazard_events WHERE hazard_id = $1 AND evidence <> '[]'",
                    &params![id.parse::<Uuid>().unwrap()],
                )
            })
            .await
            .unwrap();
        assert_eq!(evidence, 3, "report, fix and acceptance carry their photos");
        // The list flags nothing overdue; the filter finds it closed.
        let (_, _, html) = page(
            &base,
            &worker,
            "GET",
            "/manage/hazards?state=closed",
            Form::None,
        )
        .await;
        assert!(
            html.contains("燃气热水器烟道脱落") && !html.contains("overdue-flag"),
            "{html}"
        );
    }
);
