//! Stories of emergency operations: plans, their versions and reviews, one-step activation
//! (by hand, by an issued warning with or without confirmation, drills), atomicity and
//! deactivation.
#![allow(clippy::unwrap_used)]

use crate::world::call;
use std::collections::HashMap;

use anxin_domain::{Clock, Role, Scope};
use anxin_store::ops::activation::{self, ActivateOpts};
use anxin_store::ops::plans::{self, PlanInput, VersionInput};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{client, TestApp};
use crate::world::{self, staff, User, World};

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a plan with an adopted version, and an incident of it (active,
/// activated by the platform) with one task.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    store
        .write(WriteCtx::system("plans-a1"), move |tx| {
            let sys = Caller::system();
            let p = plans::create_plan(
                tx,
                &sys,
                &PlanInput {
                    node_id: Some(comm_a),
                    name: Some("水井坊防汛预案".into()),
                    ..PlanInput::default()
                },
            )?;
            let v = plans::create_version(
                tx,
                &sys,
                p.id,
                &VersionInput {
                    body: Some(json!({
                        "risks": ["flood"],
                        "roles": [{ "key": "commander", "name": "指挥长", "user_id": null }],
                        "tasks": [{ "title": "巡查低洼地带", "role": "commander", "due_minutes": 30 }]
                    })),
                    change_summary: None,
                },
            )?;
            plans::adopt(tx, &sys, v.id)?;
            let i = activation::activate(tx, &sys, p.id, &ActivateOpts::default(), None)?;
            let task: Uuid = tx
                .query_one(
                    "SELECT id FROM incident_tasks WHERE incident_id = $1",
                    &params![i.id],
                )?
                .unwrap()
                .get("id")?;
            Ok(HashMap::from([
                ("plans", p.id),
                ("plan_versions", v.id),
                ("incidents", i.id),
                ("incident_tasks", task),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/plans" => json!({ "node_id": w.comm_a, "name": "闯入预案" }),
        "/api/v1/plans/{id}" => json!({ "name": "闯入预案" }),
        "/api/v1/plans/{id}/versions" => json!({ "body": { "risks": ["flood"] } }),
        "/api/v1/plans/{id}/activate" => json!({ "exercise": true }),
        "/manage/plans" => json!({ "node_id": w.comm_a, "name": "闯入预案" }),
        "/manage/plans/{id}/versions/new" => json!({ "risk_flood": "1", "task0_title": "闯入" }),
        "/manage/plans/{id}/review"
        | "/manage/plans/{id}/activate"
        | "/manage/plan-versions/{id}/adopt"
        | "/manage/plan-versions/{id}/reject"
        | "/manage/incidents/{id}/confirm"
        | "/manage/incidents/{id}/decline"
        | "/manage/incidents/{id}/deactivate" => json!({}),
        "/api/v1/plans/{id}/review"
        | "/api/v1/plan-versions/{id}/adopt"
        | "/api/v1/plan-versions/{id}/reject"
        | "/api/v1/incidents/{id}/confirm"
        | "/api/v1/incidents/{id}/decline"
        | "/api/v1/incidents/{id}/deactivate" => json!({}),
        _ => return None,
    })
}

// ---- helpers ----------------------------------------------------------------------------------

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

/// A facility at `node` of `kind` in `status`.
async fn facility(t: &TestApp, node: Uuid, kind: &'static str, status: &'static str) -> Uuid {
    t.store()
        .write(WriteCtx::system("facility"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "facilities",
                &[
                    ("id", id.into()),
                    ("node_id", node.into()),
                    ("kind", kind.into()),
                    ("name", "社区避难点".into()),
                    ("capacity", 200i64.into()),
                    ("status", status.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(id)
        })
        .await
        .unwrap()
}

async fn set_facility_status(t: &TestApp, id: Uuid, status: &'static str) {
    t.store()
        .write(WriteCtx::system("facility"), move |tx| {
            tx.update("facilities", id, &[("status", status.into())])
                .map(drop)
        })
        .await
        .unwrap();
}

async fn facility_status(t: &TestApp, id: Uuid) -> String {
    t.store()
        .read(move |c, _| {
            c.query_one("SELECT status FROM facilities WHERE id = $1", &params![id])?
                .unwrap()
                .get("status")
        })
        .await
        .unwrap()
}

/// Person A1 becomes vulnerable (a welfare check at activation).
async fn vulnerable_a1(t: &TestApp, w: &World) {
    make_vulnerable(t, w.person_a1, "elderly_alone").await;
}

/// `person` becomes vulnerable in `category`, with no smartphone and no helper.
async fn make_vulnerable(t: &TestApp, person: Uuid, category: &'static str) {
    t.store()
        .write(WriteCtx::system("vulnerable"), move |tx| {
            anxin_store::people::add_vulnerable(
                tx,
                &Caller::system(),
                &anxin_store::people::VulnerableInput {
                    person_id: person,
                    category: category.into(),
                    helper_user_id: None,
                    contact_channel: "no_smartphone".into(),
                    notes: None,
                },
            )
            .map(drop)
        })
        .await
        .unwrap();
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

async fn count_for(t: &TestApp, sql: &'static str, id: Uuid) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &params![id]))
        .await
        .unwrap()
}

/// The flood plan of community A: triggered by red flood warnings; a commander (`commander`
/// user) and an unfilled liaison; two tasks; the shelter; welfare checks.
fn flood_body(commander: Uuid, shelter: Uuid) -> Value {
    json!({
        "risks": ["flood"],
        "triggers": [{ "kind": "warning", "min_level": "red", "categories": ["flood", "rainstorm"] }],
        "roles": [
            { "key": "commander", "name": "指挥长", "user_id": commander },
            { "key": "liaison", "name": "联络员", "user_id": null }
        ],
        "tasks": [
            { "title": "转移低洼住户", "role": "commander", "due_minutes": 30 },
            { "title": "联系物业关闭地下车库", "role": "liaison", "due_minutes": 15 }
        ],
        "shelters": [shelter],
        "welfare_checks": true,
        "welfare_escalate_minutes": 20
    })
}

/// Create a plan for community A with `body` and adopt it; returns (plan, version).
async fn adopted_plan(base: &str, u: &User, w: &World, name: &str, body: Value) -> (Uuid, Uuid) {
    let (s, p) = call(
        base,
        u,
        "POST",
        "/api/v1/plans",
        Some(json!({ "node_id": w.comm_a, "name": name, "review_period_days": 30 })),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let plan = p["id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        base,
        u,
        "POST",
        &format!("/api/v1/plans/{plan}/versions"),
        Some(json!({ "body": body, "change_summary": "首版" })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let version = v["id"].as_str().unwrap().to_owned();
    let (s, a) = call(
        base,
        u,
        "POST",
        &format!("/api/v1/plan-versions/{version}/adopt"),
        None,
    )
    .await;
    assert_eq!((s, a["status"].as_str()), (200, Some("current")), "{a}");
    (plan.parse().unwrap(), version.parse().unwrap())
}

/// Draft, approve and issue a warning for community A through the API; returns its id.
async fn issue_warning(base: &str, u: &User, w: &World, level: &str, category: &str) -> Uuid {
    let (s, d) = call(
        base,
        u,
        "POST",
        "/api/v1/warnings",
        Some(json!({
            "node_id": w.comm_a, "level": level, "category": category,
            "headline": "暴雨洪涝预警", "description": "河道水位快速上涨。",
            "expires_at": "2026-11-02T13:00:00Z", "area": { "nodes": [w.comm_a] }
        })),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    let (s, b) = call(
        base,
        u,
        "POST",
        &format!("/api/v1/warnings/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        base,
        u,
        "POST",
        &format!("/api/v1/warnings/{id}/issue"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    id.parse().unwrap()
}

fn field(b: &Value) -> Option<&str> {
    b["error"]["details"]["field"].as_str()
}

fn code(b: &Value) -> Option<&str> {
    b["error"]["code"].as_str()
}

// ---- stories ----------------------------------------------------------------------------------

both_stores!(plan_validation_names_the_field, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
    let worker_b = user_id(&t, "worker_b").await;
    let grid_a1 = user_id(&t, "grid_a1").await;
    let shelter_b = facility(&t, w.comm_b, "shelter", "active").await;
    let hydrant_a = facility(&t, w.comm_a, "hydrant", "active").await;
    let shelter_a = facility(&t, w.comm_a, "shelter", "active").await;

    // A plan for a community the worker does not serve.
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/plans",
        Some(json!({ "node_id": w.comm_b, "name": "抄来的预案" })),
    )
    .await;
    assert_eq!((s, field(&b)), (422, Some("node_id")), "{b}");
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/plans",
        Some(json!({ "node_id": w.comm_a, "name": "防汛预案", "review_period_days": 0 })),
    )
    .await;
    assert_eq!((s, field(&b)), (422, Some("review_period_days")), "{b}");
    let (s, p) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/plans",
        Some(json!({ "node_id": w.comm_a, "name": "防汛预案" })),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/plans",
        Some(json!({ "node_id": w.comm_a, "name": "防汛预案" })),
    )
    .await;
    assert_eq!((s, code(&b)), (409, Some("plan.name_taken")), "{b}");
    let versions = format!("/api/v1/plans/{}/versions", p["id"].as_str().unwrap());

    let cases: Vec<(Value, &str, &str)> = vec![
        // A task of a role the plan does not have.
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["tasks"][1]["role"] = json!("driver");
                b
            },
            "plan.unknown_role",
            "tasks[1].role",
        ),
        // Seed 001: a role holder from the community next door (copied from above/elsewhere).
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["roles"][1]["user_id"] = json!(worker_b);
                b
            },
            "plan.role_holder_outside",
            "roles[1].user_id",
        ),
        // A shelter of another community; a facility that is no shelter.
        (
            flood_body(grid_a1, shelter_b),
            "plan.shelter_invalid",
            "shelters[0]",
        ),
        (
            flood_body(grid_a1, hydrant_a),
            "plan.shelter_invalid",
            "shelters[0]",
        ),
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["triggers"][0]["categories"] = json!(["meteor"]);
                b
            },
            "value.invalid",
            "triggers[0].categories[0]",
        ),
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["triggers"] = json!([{ "kind": "alarm", "device_types": ["toaster"] }]);
                b
            },
            "value.invalid",
            "triggers[0].device_types[0]",
        ),
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["risks"] = json!([]);
                b
            },
            "plan.no_risks",
            "risks",
        ),
        (
            {
                let mut b = flood_body(grid_a1, shelter_a);
                b["surprise"] = json!(true);
                b
            },
            "plan.body_invalid",
            "body.surprise",
        ),
    ];
    for (body, want_code, want_field) in cases {
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &versions,
            Some(json!({ "body": body })),
        )
        .await;
        assert_eq!(
            (s, code(&b), field(&b)),
            (422, Some(want_code), Some(want_field)),
            "{b}"
        );
    }
    // Nothing was stored; the good body is.
    assert_eq!(count(&t, "SELECT count(*) FROM plan_versions").await, 0);
    let (s, v) = call(
        &base,
        &worker,
        "POST",
        &versions,
        Some(json!({ "body": flood_body(grid_a1, shelter_a) })),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str(), v["version"].as_i64()),
        (201, Some("draft"), Some(1)),
        "{v}"
    );
});

both_stores!(
    red_warning_activates_the_plan_after_confirmation,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        vulnerable_a1(&t, &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let grid_id = user_id(&t, "grid_a1").await;
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let (plan, version) =
            adopted_plan(&base, &worker, &w, "防汛预案", flood_body(grid_id, shelter)).await;
        // The commander is on the community's duty list with a phone; the worker is not.
        let comm_a = w.comm_a;
        t.store()
            .write(WriteCtx::system("duty"), move |tx| {
                anxin_store::places::create_duty(
                    tx,
                    &Caller::system(),
                    &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                        node_id: Some(comm_a),
                        duty: Some("防汛值班".into()),
                        responsible: Some("赵网格".into()),
                        user_id: Some(grid_id),
                        phone: Some("13900001111".into()),
                    })?,
                )
                .map(drop)
            })
            .await
            .unwrap();

        // An orange warning does not match (min level red); nothing happens.
        issue_warning(&base, &worker, &w, "orange", "flood").await;
        assert_eq!(count(&t, "SELECT count(*) FROM incidents").await, 0);

        // A red flood warning: the plan is triggered, waiting for confirmation; nothing created yet.
        let warning = issue_warning(&base, &worker, &w, "red", "flood").await;
        let pending: Vec<anxin_store::ops::Incident> = t
            .store()
            .read(|c, _| {
                c.query("SELECT * FROM incidents", &[])?
                    .iter()
                    .map(anxin_store::ops::Incident::from_row)
                    .collect()
            })
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        let inc = &pending[0];
        assert_eq!(
            (
                inc.status.as_str(),
                inc.trigger_kind.as_str(),
                inc.trigger_id,
                inc.plan_id,
                inc.plan_version_id,
                inc.exercise
            ),
            ("pending", "warning", Some(warning), plan, version, false)
        );
        assert_eq!(count(&t, "SELECT count(*) FROM incident_tasks").await, 0);
        assert_eq!(facility_status(&t, shelter).await, "active");
        // The same warning seen again starts nothing new.
        let wid = warning;
        let again = t
            .store()
            .read(move |c, _| anxin_store::warnings::get_unscoped(c, wid))
            .await
            .unwrap();
        assert!(anxin::ops::triggers::on_warning_issued(&t.app, &again)
            .await
            .is_empty());
        assert_eq!(count(&t, "SELECT count(*) FROM incidents").await, 1);

        // A grid worker may not confirm (no activate_plans); the community worker does.
        let id = inc.id;
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            &format!("/api/v1/incidents/{id}/confirm"),
            None,
        )
        .await;
        assert_eq!(s, 404, "{b}");
        t.clock.advance(chrono::Duration::minutes(5));
        let confirmed_at = t.clock.now();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{id}/confirm"),
            None,
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("active")), "{b}");
        assert_eq!(
            b["confirmed_by"].as_str(),
            Some(worker_id.to_string().as_str())
        );
        assert_eq!(b["summary"]["tasks"]["created"], json!(2), "{b}");
        assert_eq!(b["summary"]["shelters"]["opened"], json!(1), "{b}");
        // The timeline has the steps in the order they ran, though one write stamped them all
        // with the same time.
        let (s, log) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/incidents/{id}/log"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{log}");
        let steps: Vec<&str> = log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["kind"].as_str()?.strip_prefix("activation."))
            .collect();
        assert_eq!(
            steps,
            ["tasks", "callouts", "welfare", "shelters", "campaigns"],
            "{log}"
        );
        // Tasks: the commander's to the grid worker, the unfilled liaison's to the confirming user.
        let tasks = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT title, role_key, assignee_user_id, due_at, status FROM incident_tasks \
                 WHERE incident_id = $1 ORDER BY role_key",
                    &params![id],
                )
            })
            .await
            .unwrap();
        assert_eq!(tasks.len(), 2);
        let get = |i: usize| {
            let r = &tasks[i];
            (
                r.get::<String>("role_key").unwrap(),
                r.get::<Option<Uuid>>("assignee_user_id").unwrap(),
                r.get::<chrono::DateTime<chrono::Utc>>("due_at").unwrap(),
                r.get::<String>("status").unwrap(),
            )
        };
        assert_eq!(
            get(0),
            (
                "commander".into(),
                Some(grid_id),
                confirmed_at + chrono::Duration::minutes(30),
                "open".into()
            )
        );
        assert_eq!(
            get(1),
            (
                "liaison".into(),
                Some(worker_id),
                confirmed_at + chrono::Duration::minutes(15),
                "open".into()
            )
        );
        assert_eq!(facility_status(&t, shelter).await, "open");
        // After commit the commander got one message for their task (the worker has no phone).
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM notifications WHERE template = 'incident_tasks'"
            )
            .await,
            1
        );
        assert!(
            count_for(
                &t,
                "SELECT count(*) FROM welfare_checks WHERE incident_id = $1",
                id
            )
            .await
                >= 1
        );
        // One timeline line per step.
        assert_eq!(
        count_for(&t, "SELECT count(*) FROM incident_log WHERE incident_id = $1 AND kind LIKE 'activation.%'", id).await,
        anxin_store::ops::STEPS.len() as i64
    );
        // Confirming twice is refused.
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{id}/confirm"),
            None,
        )
        .await;
        assert_eq!((s, code(&b)), (409, Some("incident.wrong_status")), "{b}");

        // Deactivation closes in reverse order: shelters first, tasks last.
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{id}/deactivate"),
            None,
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("closed")), "{b}");
        assert_eq!(
            b["closed_by"].as_str(),
            Some(worker_id.to_string().as_str())
        );
        assert_eq!(facility_status(&t, shelter).await, "active");
        assert_eq!(
        count_for(&t, "SELECT count(*) FROM incident_tasks WHERE incident_id = $1 AND status = 'cancelled'", id).await,
        2
    );
        // The summary records the steps closed, in the order they ran.
        let order: Vec<String> = b["summary"]["deactivated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            count_for(
                &t,
                "SELECT count(*) FROM incident_log WHERE incident_id = $1 AND kind LIKE 'deactivation.%'",
                id
            )
            .await,
            anxin_store::ops::STEPS.len() as i64
        );
        let mut want: Vec<String> = anxin_store::ops::STEPS
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        want.reverse();
        assert_eq!(order, want);
    }
);

/// The same story with confirmation configured away: a red warning activates at once; a warning
/// imported from outside (CAP) still waits for a person.
mod auto_activation_without_confirmation {
    use super::*;
    use crate::support::Backend;

    async fn story(backend: Backend) {
        let t = TestApp::with_config(backend, |c| c.ops.confirm_triggered = false).await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let (plan, _) = adopted_plan(
            &base,
            &worker,
            &w,
            "防汛预案",
            flood_body(worker_id, shelter),
        )
        .await;

        let warning = issue_warning(&base, &worker, &w, "red", "rainstorm").await;
        let (status, by): (String, Option<Uuid>) = t
            .store()
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT status, activated_by FROM incidents WHERE trigger_id = $1",
                        &params![warning],
                    )?
                    .unwrap();
                Ok((r.get("status")?, r.get("activated_by")?))
            })
            .await
            .unwrap();
        assert_eq!((status.as_str(), by), ("active", None));
        assert_eq!(count(&t, "SELECT count(*) FROM incident_tasks").await, 2);
        // The liaison's task has no one to go to: the platform activated it.
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM incident_tasks WHERE assignee_user_id IS NULL"
            )
            .await,
            1
        );
        assert_eq!(facility_status(&t, shelter).await, "open");
        let id: Uuid = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT id FROM incidents WHERE trigger_id = $1",
                    &params![warning],
                )?
                .unwrap()
                .get("id")
            })
            .await
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{id}/deactivate"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");

        // An imported red warning: pending, nothing created, although confirmation is off.
        let comm_a = w.comm_a;
        let cap: Uuid = t
            .store()
            .write(WriteCtx::system("cap"), move |tx| {
                let new = anxin_store::warnings::NewWarning::parse(
                    anxin_store::warnings::WarningInput {
                        node_id: Some(comm_a),
                        level: Some("red".into()),
                        category: Some("flood".into()),
                        headline: Some("气象台洪水红色预警".into()),
                        description: Some("外部导入".into()),
                        expires_at: Some("2026-11-02T13:00:00Z".parse().unwrap()),
                        area: Some(json!({ "nodes": [comm_a] })),
                        ..Default::default()
                    },
                    tx.now(),
                )?;
                let origin = anxin_store::warnings::Origin {
                    source: "cap_import",
                    sender: "weather.example.cn".into(),
                    cap_identifier: Some("cma-2026-001".into()),
                };
                anxin_store::warnings::create_draft(tx, &Caller::system(), &new, &origin)
                    .map(|w| w.id)
            })
            .await
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{cap}/approve"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{cap}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let status: String = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT status FROM incidents WHERE trigger_id = $1",
                    &params![cap],
                )?
                .unwrap()
                .get("status")
            })
            .await
            .unwrap();
        assert_eq!(status, "pending");
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM incident_tasks WHERE status = 'open'"
            )
            .await,
            0
        );
        // Declined: nothing is created and the plan may run again.
        let pid: Uuid = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT id FROM incidents WHERE trigger_id = $1",
                    &params![cap],
                )?
                .unwrap()
                .get("id")
            })
            .await
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{pid}/decline"),
            None,
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("declined")), "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (201, Some("active")), "{b}");
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

both_stores!(
    activation_is_atomic_when_a_shelter_became_unavailable,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        vulnerable_a1(&t, &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_id = user_id(&t, "worker_a").await;
        // A volunteer of community A, so the call-out step has someone to call.
        let comm_a = w.comm_a;
        t.store()
            .write(WriteCtx::system("volunteer"), move |tx| {
                anxin_store::ops::volunteers::create_volunteer(
                    tx,
                    &Caller::system(),
                    &anxin_store::ops::volunteers::VolunteerInput {
                        community_id: Some(comm_a),
                        name: Some("陈志愿".into()),
                        ..Default::default()
                    },
                )
                .map(drop)
            })
            .await
            .unwrap();
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let mut body = flood_body(worker_id, shelter);
        body["volunteers"] = json!({ "count": 3 });
        let (plan, _) = adopted_plan(&base, &worker, &w, "防汛预案", body).await;

        // After adoption the shelter went under maintenance: the last step fails.
        set_facility_status(&t, shelter, "maintenance").await;
        let tables =
            "SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM incident_tasks) \
         + (SELECT count(*) FROM callouts) + (SELECT count(*) FROM welfare_checks) \
         + (SELECT count(*) FROM incident_log)";
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, code(&b)),
            (409, Some("activation.shelter_unavailable")),
            "{b}"
        );
        assert_eq!(
            count(&t, tables).await,
            0,
            "a failed activation left something behind"
        );
        // Closed, or gone out of scope (moved to community B), fail the same way.
        set_facility_status(&t, shelter, "closed").await;
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, code(&b)),
            (409, Some("activation.shelter_unavailable")),
            "{b}"
        );
        let comm_b = w.comm_b;
        t.store()
            .write(WriteCtx::system("move"), move |tx| {
                tx.update(
                    "facilities",
                    shelter,
                    &[("status", "active".into()), ("node_id", comm_b.into())],
                )
                .map(drop)
            })
            .await
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, code(&b)),
            (409, Some("activation.shelter_out_of_scope")),
            "{b}"
        );
        assert_eq!(
            count(&t, tables).await,
            0,
            "a failed activation left something behind"
        );

        // Back in place: the same plan creates every part (the rollback above was real).
        t.store()
            .write(WriteCtx::system("move"), move |tx| {
                tx.update("facilities", shelter, &[("node_id", comm_a.into())])
                    .map(drop)
            })
            .await
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (201, Some("active")), "{b}");
        assert_eq!(count(&t, "SELECT count(*) FROM incident_tasks").await, 2);
        assert_eq!(count(&t, "SELECT count(*) FROM callouts").await, 1);
        assert!(count(&t, "SELECT count(*) FROM welfare_checks").await >= 1);
        assert_eq!(facility_status(&t, shelter).await, "open");
    }
);

// Activation reads the people in scope before its write (src/ops/triggers.rs): the write uses
// them only if the change log shows nothing they came from changed since.
both_stores!(
    activation_reads_the_people_again_when_they_changed_since_prepared,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        vulnerable_a1(&t, &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let mut body = flood_body(worker_id, shelter);
        body["supplies"] = json!([{ "item": "mask", "quantity_per_household": 2,
            "stock": 100, "fulfilment": "delivery" }]);
        let (plan, _) = adopted_plan(&base, &worker, &w, "防汛预案", body).await;
        let store = t.store().clone();
        let prepare = || {
            let s = store.clone();
            async move {
                s.read(move |c, _| {
                    activation::prepare_activation(c, &Caller::system(), plan, chrono::Utc::now())
                })
                .await
                .unwrap()
                .expect("the platform may activate the plan")
            }
        };
        let activate = |pre: anxin_store::ops::Prepared| {
            let s = store.clone();
            async move {
                s.write(WriteCtx::system("activate"), move |tx| {
                    let opts = ActivateOpts::default();
                    activation::activate(tx, &Caller::system(), plan, &opts, Some(pre))
                })
                .await
                .unwrap()
            }
        };

        // Read before the write; then A1's neighbour becomes vulnerable: the write finds the
        // change in the log, reads again and checks both.
        let pre = prepare().await;
        assert_eq!(pre.vulnerable.len(), 1);
        make_vulnerable(&t, w.person_a1n, "disabled").await;
        let i = activate(pre).await;
        assert_eq!(i.summary["welfare"]["checks"], json!(2), "{}", i.summary);
        assert_eq!(
            i.summary["campaigns"]["deliveries"],
            json!(2),
            "{}",
            i.summary
        );
        // The checks and delivery orders (PostgreSQL: written by COPY, their images built from
        // the values) are logged exactly as stored.
        let id = i.id;
        let imaged = t
            .store()
            .read(move |c, _| {
                let mut n = 0;
                for (table, filter) in [
                    ("welfare_checks", "incident_id = $1"),
                    (
                        "campaign_reservations",
                        "campaign_id IN (SELECT id FROM campaigns WHERE incident_id = $1)",
                    ),
                ] {
                    let sql = format!("SELECT * FROM {table} WHERE {filter}");
                    for row in c.query(&sql, &params![id])? {
                        let rid: Uuid = row.get("id")?;
                        let last = c
                            .query_one(
                                "SELECT after FROM change_log WHERE kind = $1 AND record_id = $2 \
                                 ORDER BY pos DESC LIMIT 1",
                                &params![table, rid],
                            )?
                            .unwrap_or_else(|| panic!("{table} {rid}: no change-log entry"));
                        let image: Value = last.get("after")?;
                        assert_eq!(image, row.to_json(), "{table} {rid}");
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await
            .unwrap();
        assert_eq!(imaged, 4);
        t.store()
            .write(WriteCtx::system("deactivate"), move |tx| {
                activation::deactivate(tx, &Caller::system(), id)
            })
            .await
            .unwrap();

        // Nothing changed since the read: the write takes the people read before it (a list
        // emptied here on purpose, to tell it from a read of its own).
        let mut pre = prepare().await;
        assert_eq!(pre.vulnerable.len(), 2);
        pre.vulnerable.clear();
        let i = activate(pre).await;
        assert_eq!(i.summary["welfare"]["checks"], json!(0), "{}", i.summary);
    }
);

both_stores!(
    activation_with_every_step_is_atomic_when_the_last_step_fails,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        vulnerable_a1(&t, &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let comm_a = w.comm_a;
        t.store()
            .write(WriteCtx::system("volunteer"), move |tx| {
                anxin_store::ops::volunteers::create_volunteer(
                    tx,
                    &Caller::system(),
                    &anxin_store::ops::volunteers::VolunteerInput {
                        community_id: Some(comm_a),
                        name: Some("陈志愿".into()),
                        ..Default::default()
                    },
                )
                .map(drop)
            })
            .await
            .unwrap();
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let everything = |item: &str| {
            let mut body = flood_body(worker_id, shelter);
            body["volunteers"] = json!({ "count": 3 });
            body["supplies"] = json!([{ "item": item, "quantity_per_household": 2,
                "stock": 100, "fulfilment": "delivery" }]);
            body
        };
        // Every step runs and creates its rows; the supplies step, the last, names an item
        // nobody has and fails: the welfare checks, tasks, call-outs, opened shelter and log
        // lines made before it are rolled back with it.
        let (plan, _) = adopted_plan(&base, &worker, &w, "全步骤预案", everything("unicorn")).await;
        let made =
            "SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM incident_tasks) \
             + (SELECT count(*) FROM callouts) + (SELECT count(*) FROM welfare_checks) \
             + (SELECT count(*) FROM incident_log) + (SELECT count(*) FROM campaigns) \
             + (SELECT count(*) FROM campaign_slots) + (SELECT count(*) FROM campaign_counters) \
             + (SELECT count(*) FROM campaign_reservations)";
        let logged = "SELECT count(*) FROM change_log WHERE kind IN ('incidents', \
             'incident_tasks', 'callouts', 'welfare_checks', 'campaigns', 'campaign_reservations')";
        let log_before = count(&t, logged).await;
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, code(&b)), (422, Some("campaign.item_unknown")), "{b}");
        assert_eq!(
            count(&t, made).await,
            0,
            "a failed activation left something behind"
        );
        assert_eq!(
            count(&t, logged).await,
            log_before,
            "change-log entries of a rolled-back activation"
        );
        assert_eq!(facility_status(&t, shelter).await, "active");

        // The same steps with an item that exists: every part is there, one check for A1 with
        // its delivery order.
        let (plan, _) = adopted_plan(&base, &worker, &w, "全步骤预案二", everything("mask")).await;
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (201, Some("active")), "{b}");
        assert_eq!(count(&t, "SELECT count(*) FROM incident_tasks").await, 2);
        assert_eq!(count(&t, "SELECT count(*) FROM callouts").await, 1);
        assert_eq!(count(&t, "SELECT count(*) FROM welfare_checks").await, 1);
        assert_eq!(count(&t, "SELECT count(*) FROM campaigns").await, 1);
        assert_eq!(
            count(&t, "SELECT count(*) FROM campaign_reservations").await,
            1
        );
        assert_eq!(facility_status(&t, shelter).await, "open");
        assert_eq!(
            count_for(
                &t,
                "SELECT count(*) FROM incident_log WHERE kind = 'shelter.opened' AND ref_id = $1",
                shelter
            )
            .await,
            1,
            "one timeline line for the opened shelter"
        );
        assert_eq!(b["summary"]["shelters"]["ids"], json!([shelter]), "{b}");
        assert_eq!(b["summary"]["welfare"]["checks"], 1, "{b}");
        assert_eq!(b["summary"]["campaigns"]["deliveries"], 1, "{b}");
    }
);

both_stores!(drills_conflicts_and_reviews, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let worker_id = user_id(&t, "worker_a").await;
    let shelter = facility(&t, w.comm_a, "convertible_space", "active").await;
    let (plan, v1) = adopted_plan(
        &base,
        &worker,
        &w,
        "防汛预案",
        flood_body(worker_id, shelter),
    )
    .await;

    // Not overdue right after adoption (a review); overdue 31 days later; a review clears it.
    let (s, p) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/plans/{plan}"),
        None,
    )
    .await;
    assert_eq!(
        (
            s,
            p["review_overdue"].as_bool(),
            p["current_version"].as_i64()
        ),
        (200, Some(false), Some(1)),
        "{p}"
    );
    t.clock.advance(chrono::Duration::days(31));
    // (the session has long expired: sign in again)
    let worker = staff(
        &t,
        "worker_a_later",
        Role::CommunityWorker,
        Scope::Node(w.comm_a),
    )
    .await;
    let grid = staff(
        &t,
        "grid_a1_later",
        Role::GridWorker,
        Scope::Grid(w.grid_a1),
    )
    .await;
    let (_, l) = call(&base, &worker, "GET", "/api/v1/plans", None).await;
    assert_eq!(l[0]["review_overdue"].as_bool(), Some(true), "{l}");
    let (s, p) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plans/{plan}/review"),
        None,
    )
    .await;
    assert_eq!(
        (s, p["review_overdue"].as_bool()),
        (200, Some(false)),
        "{p}"
    );
    // Grid workers hold no plan permission: the plan does not exist for them.
    let (s, _) = call(
        &base,
        &grid,
        "POST",
        &format!("/api/v1/plans/{plan}/activate"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);

    // A drill: everything created, marked as exercise; counted as a drill held.
    let (s, d) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plans/{plan}/activate"),
        Some(json!({ "exercise": true, "title": "汛前演练" })),
    )
    .await;
    assert_eq!(
        (s, d["exercise"].as_bool(), d["title"].as_str()),
        (201, Some(true), Some("汛前演练")),
        "{d}"
    );
    assert_eq!(d["summary"]["tasks"]["created"], json!(2));
    // A second activation while it runs conflicts.
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plans/{plan}/activate"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (409, Some("incident.already_running")),
        "{b}"
    );
    let drill = d["id"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/incidents/{drill}/deactivate"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/incidents/{drill}/deactivate"),
        None,
    )
    .await;
    assert_eq!((s, code(&b)), (409, Some("incident.wrong_status")), "{b}");
    let (_, p) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/plans/{plan}"),
        None,
    )
    .await;
    assert_eq!(p["drills"].as_i64(), Some(1), "{p}");

    // A review's lesson arrives as a proposed version: rejected once, adopted the next time.
    let propose = |summary: &'static str| {
        t.store().write(WriteCtx::system("review"), move |tx| {
            let now = tx.now();
            let p = plans::get_plan_unscoped(tx.conn(), plan, now)?;
            let mut body = plans::current_version(tx.conn(), &p)?
                .unwrap()
                .plan_body()?;
            body.tasks[0].due_minutes = 20;
            plans::insert_version(tx, &p, &body, "proposed", summary, None, None).map(|v| v.id)
        })
    };
    let v2 = propose("转移时限缩短为20分钟").await.unwrap();
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plan-versions/{v2}/reject"),
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("rejected")), "{b}");
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plan-versions/{v2}/adopt"),
        None,
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (409, Some("plan_version.wrong_status")),
        "{b}"
    );
    let v3 = propose("转移时限缩短为20分钟").await.unwrap();
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plan-versions/{v3}/adopt"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str(), b["version"].as_i64()),
        (200, Some("current"), Some(3)),
        "{b}"
    );
    let (_, old) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/plan-versions/{v1}"),
        None,
    )
    .await;
    assert_eq!(old["status"].as_str(), Some("superseded"));
    let (_, vs) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/plans/{plan}/versions"),
        None,
    )
    .await;
    assert_eq!(vs.as_array().unwrap().len(), 3);
    // The next activation uses the adopted revision.
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/plans/{plan}/activate"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, b["plan_version_id"].as_str()),
        (201, Some(v3.to_string().as_str())),
        "{b}"
    );
    let id: Uuid = b["id"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = t
        .store()
        .read(move |c, _| {
            c.query_one(
                "SELECT due_at FROM incident_tasks WHERE incident_id = $1 AND role_key = 'commander'",
                &params![id],
            )?
            .unwrap()
            .get("due_at")
        })
        .await
        .unwrap();
    assert_eq!(due, t.clock.now() + chrono::Duration::minutes(20));
});

/// A form post from a signed-in page user; returns status, `Location` and the page.
async fn post_form(
    base: &str,
    u: &User,
    path: &str,
    fields: &[(&str, String)],
) -> (u16, String, String) {
    let mut form: Vec<(&str, String)> = vec![("_csrf", u.csrf.clone())];
    form.extend(fields.iter().cloned());
    let r = client()
        .post(format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

async fn page(base: &str, u: &User, path: &str) -> (u16, String) {
    let r = client()
        .get(format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

both_stores!(
    pages_write_adopt_and_activate_a_plan,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let worker_b = user_id(&t, "worker_b").await;
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;

        let (s, html) = page(&base, &worker, "/manage/plans").await;
        assert_eq!(s, 200);
        assert!(
            html.contains("新建预案") && html.contains("水井坊社区"),
            "{html}"
        );
        let (s, loc, _) = post_form(
            &base,
            &worker,
            "/manage/plans",
            &[
                ("node_id", w.comm_a.to_string()),
                ("name", "防汛预案".into()),
                ("review_period_days", "30".into()),
            ],
        )
        .await;
        assert_eq!(s, 303);
        let plan: Uuid = loc.trim_start_matches("/manage/plans/").parse().unwrap();

        // The form offers the community's people and shelters, never a JSON box.
        let form_path = format!("/manage/plans/{plan}/versions/new");
        let (s, html) = page(&base, &worker, &form_path).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("指挥长") && html.contains(&format!("shelter_{shelter}")),
            "{html}"
        );
        assert!(
            html.contains("worker_a") && !html.contains("worker_b"),
            "only holders in scope are offered"
        );
        assert!(!html.contains("<textarea id=\"body\""));

        let mut fields: Vec<(&str, String)> = vec![
            ("risk_flood", "1".into()),
            ("warn_on", "1".into()),
            ("warn_level", "red".into()),
            ("wcat_flood", "1".into()),
            ("role0_key", "commander".into()),
            ("role0_name", "指挥长".into()),
            ("role0_user", worker_b.to_string()),
            ("role1_key", "liaison".into()),
            ("role1_name", "联络员".into()),
            ("task0_title", "转移低洼住户".into()),
            ("task0_role", "commander".into()),
            ("task0_minutes", "30".into()),
            ("task1_title", "通知物业".into()),
            ("task1_role", "liaison".into()),
            ("task1_minutes", "15".into()),
            ("welfare", "1".into()),
            ("welfare_minutes", "20".into()),
            ("change_summary", "首版".into()),
        ];
        let shelter_key: &'static str = format!("shelter_{shelter}").leak();
        fields.push((shelter_key, "1".into()));
        // A holder from the next community: refused on that row.
        let (s, _, html) = post_form(&base, &worker, &form_path, &fields).await;
        assert_eq!(s, 422, "{html}");
        assert!(
            html.contains("data-field=\"role0_user\"") && html.contains("aria-invalid=\"true\""),
            "{html}"
        );
        assert!(html.contains("负责人须是本辖区的工作人员"), "{html}");
        for f in fields.iter_mut() {
            if f.0 == "role0_user" {
                f.1 = worker_id.to_string();
            }
        }
        let (s, loc, html) = post_form(&base, &worker, &form_path, &fields).await;
        assert_eq!(
            (s, loc.as_str()),
            (303, format!("/manage/plans/{plan}").as_str()),
            "{html}"
        );
        let (version, body): (Uuid, String) = t
            .store()
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT id, body FROM plan_versions WHERE plan_id = $1",
                        &params![plan],
                    )?
                    .unwrap();
                Ok((r.get("id")?, r.get("body")?))
            })
            .await
            .unwrap();
        let body: anxin_domain::plan::PlanBody = serde_json::from_str(&body).unwrap();
        assert_eq!(body.role_holder("commander"), Some(worker_id));
        assert_eq!(body.tasks.len(), 2);
        assert_eq!(body.shelters, vec![shelter]);
        assert!(body.matches_warning(anxin_domain::warning::WarningLevel::Red, "flood"));

        // The plan's page offers adoption; adopted, it offers activation with the drill box.
        let (_, html) = page(&base, &worker, &format!("/manage/plans/{plan}")).await;
        assert!(
            html.contains(&format!("/manage/plan-versions/{version}/adopt")),
            "{html}"
        );
        let (s, _, _) = post_form(
            &base,
            &worker,
            &format!("/manage/plan-versions/{version}/adopt"),
            &[],
        )
        .await;
        assert_eq!(s, 303);
        let (_, html) = page(&base, &worker, &format!("/manage/plans/{plan}")).await;
        assert!(
            html.contains("name=\"exercise\"") && html.contains("转移低洼住户"),
            "{html}"
        );
        let (s, loc, _) = post_form(
            &base,
            &worker,
            &format!("/manage/plans/{plan}/activate"),
            &[("exercise", "1".into())],
        )
        .await;
        assert_eq!(s, 303);
        let incident: Uuid = loc
            .trim_start_matches("/manage/incidents/")
            .parse()
            .unwrap();
        let exercise: bool = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT exercise FROM incidents WHERE id = $1",
                    &params![incident],
                )?
                .unwrap()
                .get("exercise")
            })
            .await
            .unwrap();
        assert!(exercise);
        // A second activation is refused with the reason, in the page language.
        let (s, _, html) = post_form(
            &base,
            &worker,
            &format!("/manage/plans/{plan}/activate"),
            &[],
        )
        .await;
        assert_eq!(s, 409);
        assert!(html.contains("该预案已在本辖区启动"), "{html}");
        // Every label has its text in both languages (a missing one would show its key).
        for lang in ["zh", "en"] {
            for p in [
                "/manage/plans".to_owned(),
                format!("/manage/plans/{plan}"),
                format!("/manage/plans/{plan}/versions/new"),
            ] {
                let (s, html) = page(&base, &worker, &format!("{p}?lang={lang}")).await;
                assert_eq!(s, 200);
                assert!(
                    !html.contains(">plans.")
                        && !html.contains("\"plans.")
                        && !html.contains(" plans."),
                    "{p} {lang}: {html}"
                );
            }
        }
        let (s, html) = page(&base, &worker, "/manage/plans?lang=en").await;
        assert_eq!(s, 200);
        assert!(
            html.contains("Emergency plans") && html.contains("Drills held"),
            "{html}"
        );
    }
);

both_stores!(
    a_raised_alarm_starts_a_matching_plan_once,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_id = user_id(&t, "worker_a").await;
        let shelter = facility(&t, w.comm_a, "shelter", "active").await;
        let mut body = flood_body(worker_id, shelter);
        body["triggers"] = json!([{ "kind": "alarm", "device_types": ["water_level"], "rules": ["water_level_high"] }]);
        let (plan, _) = adopted_plan(&base, &worker, &w, "内涝预案", body).await;
        let mut smoke = flood_body(worker_id, shelter);
        smoke["triggers"] = json!([{ "kind": "alarm", "device_types": ["smoke"] }]);
        adopted_plan(&base, &worker, &w, "火灾预案", smoke).await;
        // The water-level alarm of grid A1 (raised by rule `high`, type water_level_high).
        let alarm = crate::world::monitoring_a1(t.store(), &w).await["alarms"];
        let started = anxin::ops::triggers::on_alarms_raised(&t.app, vec![alarm]).await;
        assert_eq!(started.len(), 1, "only the water-level plan matches");
        let i = &started[0];
        assert_eq!(
            (
                i.plan_id,
                i.status.as_str(),
                i.trigger_kind.as_str(),
                i.trigger_id
            ),
            (plan, "pending", "alarm", Some(alarm))
        );
        assert!(anxin::ops::triggers::on_alarms_raised(&t.app, vec![alarm])
            .await
            .is_empty());
        // The pending activation is offered on the plans page, with its confirm button.
        let (_, html) = page(&base, &worker, "/manage/plans").await;
        assert!(
            html.contains(&format!("/manage/incidents/{}/confirm", i.id)),
            "{html}"
        );
        let (s, loc, _) = post_form(
            &base,
            &worker,
            &format!("/manage/incidents/{}/confirm", i.id),
            &[],
        )
        .await;
        assert_eq!((s, loc), (303, format!("/manage/incidents/{}", i.id)));
        assert_eq!(
            count_for(
                &t,
                "SELECT count(*) FROM incident_tasks WHERE incident_id = $1",
                i.id
            )
            .await,
            2
        );
    }
);
