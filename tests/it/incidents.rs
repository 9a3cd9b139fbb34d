//! Stories of emergency operations: incidents — list and detail in scope, the timeline, tasks,
//! situation reports, shelter stays, and the after-action review that proposes a plan version.
//! Incidents are made here directly (plan, version, incident rows); activation is another
//! part's.
#![allow(clippy::unwrap_used)]

use crate::world::{call, code};
use std::collections::HashMap;

use anxin_domain::{Clock, Role, Scope};
use anxin_store::ops::incidents as inc;
use anxin_store::places::{self as pl, FacilityInput, NewFacility};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{client, TestApp};
use crate::world::{self, staff, User, World};

/// The body of the plans made here: two roles, two tasks.
fn plan_body() -> Value {
    json!({
        "risks": ["flood"],
        "roles": [
            { "key": "commander", "name": "指挥长", "user_id": null },
            { "key": "liaison", "name": "联络员", "user_id": null }
        ],
        "tasks": [
            { "title": "转移低洼住户", "role": "commander", "due_minutes": 30 },
            { "title": "联络物业", "role": "liaison", "due_minutes": 15 }
        ],
        "welfare_checks": true
    })
}

/// A plan of `node` with a current version 1 and an incident of it in `status`.
pub async fn incident(
    store: &Store,
    node: Uuid,
    plan_name: &str,
    title: &str,
    status: &'static str,
    exercise: bool,
) -> (Uuid, Uuid) {
    let (plan_name, title) = (plan_name.to_owned(), title.to_owned());
    store
        .write(WriteCtx::system("incident-story"), move |tx| {
            let now = tx.now();
            let plan = tx.new_id();
            tx.insert(
                "plans",
                &[
                    ("id", plan.into()),
                    ("node_id", node.into()),
                    ("name", plan_name.into()),
                    ("status", "active".into()),
                    ("current_version", 1i64.into()),
                    ("review_period_days", 365i64.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let version = tx.new_id();
            tx.insert(
                "plan_versions",
                &[
                    ("id", version.into()),
                    ("plan_id", plan.into()),
                    ("node_id", node.into()),
                    ("version", 1i64.into()),
                    ("status", "current".into()),
                    ("body", plan_body().to_string().into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let id = tx.new_id();
            let closed = matches!(status, "closed" | "reviewed");
            tx.insert(
                "incidents",
                &[
                    ("id", id.into()),
                    ("node_id", node.into()),
                    ("plan_id", plan.into()),
                    ("plan_version_id", version.into()),
                    ("title", title.into()),
                    ("exercise", exercise.into()),
                    ("status", status.into()),
                    ("trigger_kind", "manual".into()),
                    ("summary", r#"{"tasks":{"created":2}}"#.into()),
                    ("activated_at", now.into()),
                    ("closed_at", if closed { Some(now) } else { None }.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            anxin_store::ops::log(tx, id, "activated", "预案启动", None)?;
            Ok((plan, id))
        })
        .await
        .unwrap()
}

async fn set_status(store: &Store, id: Uuid, status: &'static str) {
    store
        .write(WriteCtx::system("incident-story"), move |tx| {
            let now = tx.now();
            tx.update(
                "incidents",
                id,
                &[
                    ("status", status.into()),
                    ("closed_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )
            .map(drop)
        })
        .await
        .unwrap();
}

/// An open shelter of `node` holding `capacity` people.
async fn shelter(store: &Store, node: Uuid, name: &str, capacity: i64) -> Uuid {
    let name = name.to_owned();
    store
        .write(WriteCtx::system("incident-story"), move |tx| {
            pl::create_facility(
                tx,
                &Caller::system(),
                &NewFacility::parse(FacilityInput {
                    node_id: Some(node),
                    kind: Some("shelter".into()),
                    name: Some(name),
                    capacity: Some(capacity),
                    status: Some("open".into()),
                    ..FacilityInput::default()
                })?,
            )
            .map(|f| f.id)
        })
        .await
        .unwrap()
}

async fn user_id(store: &Store, username: &'static str) -> Uuid {
    store
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

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn log_kinds(base: &str, u: &User, id: Uuid) -> Vec<String> {
    let (s, v) = call(base, u, "GET", &format!("/api/v1/incidents/{id}/log"), None).await;
    assert_eq!(s, 200, "{v}");
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_owned())
        .collect()
}

// ---- list, detail, timeline ------------------------------------------------------------------

both_stores!(
    incidents_are_listed_and_shown_in_scope,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (_, a) = incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        let (_, drill) = incident(
            t.store(),
            w.comm_a,
            "燃气预案",
            "燃气泄漏演练",
            "closed",
            true,
        )
        .await;
        let (_, b) = incident(
            t.store(),
            w.comm_b,
            "防汛预案",
            "崇德里内涝",
            "active",
            false,
        )
        .await;
        let wa = staff(&t, "inc_wa", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "inc_wb", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let g2 = staff(&t, "inc_g2", Role::GridWorker, Scope::Grid(w.grid_a2)).await;
        let officer = staff(&t, "inc_do", Role::DistrictOfficer, Scope::Node(w.district)).await;

        let (s, v) = call(&base, &wa, "GET", "/api/v1/incidents", None).await;
        assert_eq!(s, 200, "{v}");
        // Active first, then the closed drill; nothing of B.
        assert_eq!(ids(&v), vec![a.to_string(), drill.to_string()]);
        assert_eq!(v[0]["plan_name"], "防汛预案");
        assert_eq!(v[0]["node_name"], "水井坊社区");
        assert_eq!(v[1]["exercise"], true);
        let (_, v) = call(&base, &wa, "GET", "/api/v1/incidents?exercise=true", None).await;
        assert_eq!(ids(&v), vec![drill.to_string()]);
        let (_, v) = call(&base, &wa, "GET", "/api/v1/incidents?status=active", None).await;
        assert_eq!(ids(&v), vec![a.to_string()]);
        let (s, v) = call(&base, &wa, "GET", "/api/v1/incidents?status=burning", None).await;
        assert_eq!((s, code(&v)), (422, "value.invalid"), "{v}");
        assert_eq!(v["error"]["details"]["field"], "status");

        let (_, v) = call(&base, &officer, "GET", "/api/v1/incidents", None).await;
        assert_eq!(ids(&v).len(), 3, "the district sees both communities");
        let (_, v) = call(&base, &g2, "GET", "/api/v1/incidents", None).await;
        assert!(ids(&v).is_empty(), "a grid worker sees no incidents: {v}");

        let (s, v) = call(&base, &wa, "GET", &format!("/api/v1/incidents/{a}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(v["title"], "暴雨内涝");
        assert_eq!(v["summary"]["tasks"]["created"], 2);
        // B's incident looks exactly like a missing one.
        let (s1, v1) = call(&base, &wa, "GET", &format!("/api/v1/incidents/{b}"), None).await;
        let missing = Uuid::now_v7();
        let (s2, v2) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{missing}"),
            None,
        )
        .await;
        assert_eq!((s1, code(&v1)), (404, "record.not_found"));
        assert_eq!((s1, code(&v1)), (s2, code(&v2)));
        let (s, _) = call(
            &base,
            &wb,
            "GET",
            &format!("/api/v1/incidents/{a}/log"),
            None,
        )
        .await;
        assert_eq!(s, 404);

        // The timeline: oldest first, paged.
        for n in 0..3 {
            t.clock.advance(chrono::Duration::minutes(1));
            let (s, v) = call(
                &base,
                &wa,
                "POST",
                &format!("/api/v1/incidents/{a}/tasks"),
                Some(json!({ "title": format!("巡查{n}") })),
            )
            .await;
            assert_eq!(s, 201, "{v}");
        }
        let (_, v) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{a}/log?limit=2"),
            None,
        )
        .await;
        let lines = v["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "activated");
        assert_eq!(lines[1]["summary"], "新增任务：巡查0");
        assert_eq!(v["next_offset"], 2);
        assert_eq!(v["total"], 4);
        let (_, v) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{a}/log?limit=2&offset=2"),
            None,
        )
        .await;
        let lines = v["lines"].as_array().unwrap();
        assert_eq!(lines[1]["summary"], "新增任务：巡查2", "newest last");
        assert!(v["next_offset"].is_null());
        assert!(
            lines[1]["actor_name"].as_str().unwrap().contains('*'),
            "{v}"
        );
        let (s, v) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{a}/log?limit=0"),
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (422, "value.invalid"));
    }
);

// ---- tasks -----------------------------------------------------------------------------------

both_stores!(
    task_lifecycle_is_logged_and_only_while_active,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (_, a) = incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        let wa = staff(&t, "task_wa", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "task_wb", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let g1 = staff(&t, "task_g1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let g1_id = user_id(t.store(), "task_g1").await;
        let wb_id = user_id(t.store(), "task_wb").await;
        let path = format!("/api/v1/incidents/{a}/tasks");

        // Who may be given a task: staff with a grant in scope, not community B's worker.
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "title": "搬运沙袋", "assignee_user_id": wb_id })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "task.assignee_invalid"), "{v}");
        let (s, v) = call(&base, &wa, "POST", &path, Some(json!({ "title": "  " }))).await;
        assert_eq!((s, code(&v)), (422, "value.required"));
        assert_eq!(v["error"]["details"]["field"], "title");
        let past = t.clock.now() - chrono::Duration::hours(1);
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "title": "搬运沙袋", "due_at": past })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "task.due_in_past"));
        // Outsiders cannot add one.
        let (s, _) = call(&base, &wb, "POST", &path, Some(json!({ "title": "闯入" }))).await;
        assert_eq!(s, 404);

        t.clock.advance(chrono::Duration::seconds(5));
        let (s, task) = call(
        &base,
        &wa,
        "POST",
        &path,
        Some(json!({ "title": "搬运沙袋", "description": "到2栋门口", "assignee_user_id": g1_id })),
    )
    .await;
        assert_eq!(s, 201, "{task}");
        assert_eq!(task["status"], "open");
        assert_eq!(task["source"], "manual");
        let tid = task["id"].as_str().unwrap().to_owned();
        let status = format!("/api/v1/incident-tasks/{tid}/status");

        // The assignee sees it among their tasks and moves it, though the incident is not theirs.
        let (_, mine) = call(&base, &g1, "GET", "/api/v1/my-tasks", None).await;
        assert_eq!(ids(&mine), vec![tid.clone()]);
        assert_eq!(mine[0]["incident_title"], "暴雨内涝");
        let (_, none) = call(&base, &wa, "GET", "/api/v1/my-tasks", None).await;
        assert!(ids(&none).is_empty());
        t.clock.advance(chrono::Duration::seconds(5));
        let (s, v) = call(
            &base,
            &g1,
            "POST",
            &status,
            Some(json!({ "status": "in_progress", "notes": "已出发" })),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["notes"], "已出发");
        // An outsider: not found, like a missing task.
        let (s, v) = call(
            &base,
            &wb,
            "POST",
            &status,
            Some(json!({ "status": "done" })),
        )
        .await;
        assert_eq!((s, code(&v)), (404, "record.not_found"));
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &status,
            Some(json!({ "status": "finished" })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "value.invalid"));
        t.clock.advance(chrono::Duration::seconds(5));
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &status,
            Some(json!({ "status": "done", "notes": "完成200袋" })),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "done");
        assert_eq!(v["notes"], "已出发\n完成200袋");
        assert!(v["done_at"].is_string());
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &status,
            Some(json!({ "status": "open" })),
        )
        .await;
        assert_eq!((s, code(&v)), (409, "task.wrong_status"));

        let (_, list) = call(&base, &wa, "GET", &path, None).await;
        assert_eq!(ids(&list), vec![tid.clone()]);
        assert!(list[0]["assignee_name"].as_str().unwrap().contains('*'));
        let kinds = log_kinds(&base, &wa, a).await;
        assert_eq!(
            kinds,
            vec!["activated", "task.added", "task.in_progress", "task.done"]
        );

        // Closed: no more changes.
        let (s, second) = call(&base, &wa, "POST", &path, Some(json!({ "title": "清淤" }))).await;
        assert_eq!(s, 201);
        set_status(t.store(), a, "closed").await;
        let second = second["id"].as_str().unwrap();
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/incident-tasks/{second}/status"),
            Some(json!({ "status": "done" })),
        )
        .await;
        assert_eq!((s, code(&v)), (409, "incident.must_be_active"));
        let (s, v) = call(&base, &wa, "POST", &path, Some(json!({ "title": "清淤" }))).await;
        assert_eq!((s, code(&v)), (409, "incident.must_be_active"));
        let (_, mine) = call(&base, &g1, "GET", "/api/v1/my-tasks", None).await;
        assert!(
            ids(&mine).is_empty(),
            "my tasks are those of active incidents"
        );
    }
);

// ---- situation reports -------------------------------------------------------------------------

both_stores!(
    sitrep_goes_draft_approved_published_not_by_its_author,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (_, a) = incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        shelter(t.store(), w.comm_a, "水井坊小学", 80).await;
        let author = staff(
            &t,
            "rep_author",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let chief = staff(
            &t,
            "rep_chief",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let g1 = staff(&t, "rep_g1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        for title in ["巡查", "清淤"] {
            call(
                &base,
                &author,
                "POST",
                &format!("/api/v1/incidents/{a}/tasks"),
                Some(json!({ "title": title })),
            )
            .await;
        }
        let backend = t.backend;
        let made_welfare = t
            .store()
            .write(WriteCtx::system("incident-story"), move |tx| {
                let c = tx.conn();
                let exists = c.query_i64(
                    match backend {
                        crate::support::Backend::Sqlite => {
                            "SELECT count(*) FROM sqlite_master WHERE name = 'welfare_checks'"
                        }
                        crate::support::Backend::Postgres => {
                            "SELECT count(*) FROM information_schema.tables \
                             WHERE table_name = 'welfare_checks'"
                        }
                    },
                    &[],
                )? > 0;
                if exists {
                    return Ok(false);
                }
                let ty = match backend {
                    crate::support::Backend::Sqlite => "TEXT",
                    crate::support::Backend::Postgres => "UUID",
                };
                c.execute(
                    &format!(
                        "CREATE TABLE welfare_checks (id {ty} PRIMARY KEY, incident_id {ty}, status TEXT)"
                    ),
                    &[],
                )?;
                for st in ["open", "open", "safe"] {
                    let id = tx.new_id();
                    tx.conn().execute(
                        "INSERT INTO welfare_checks (id, incident_id, status) VALUES ($1, $2, $3)",
                        &params![id, a, st],
                    )?;
                }
                Ok(true)
            })
            .await
            .unwrap();
        let path = format!("/api/v1/incidents/{a}/sitreps");
        let (s, v) = call(&base, &author, "POST", &path, Some(json!({}))).await;
        assert_eq!((s, code(&v)), (422, "value.required"));
        assert_eq!(v["error"]["details"]["field"], "body");
        let (s, r) = call(
            &base,
            &author,
            "POST",
            &path,
            Some(json!({ "body": "积水已退至30厘米。\n转移群众12人。" })),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["status"], "draft");
        assert_eq!(r["title"], "第1期情况报告");
        assert_eq!(r["figures"]["tasks"]["open"], 2);
        assert_eq!(r["figures"]["shelters"]["open"], 1);
        assert_eq!(r["figures"]["shelters"]["capacity"], 80);
        assert_eq!(r["figures"]["activation"]["tasks"]["created"], 2);
        // The people-on-the-ground part's checks are counted by status once its table exists
        // (made here, minimal, when that part is not in this build).
        if made_welfare {
            assert_eq!(r["figures"]["welfare"], json!({ "open": 2, "safe": 1 }));
        } else {
            assert!(r["figures"]["welfare"].is_object(), "{r}");
        }
        let id = r["id"].as_str().unwrap().to_owned();

        let (s, v) = call(
            &base,
            &author,
            "POST",
            &format!("/api/v1/sitreps/{id}/approve"),
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (403, "sitrep.author_cannot_approve"), "{v}");
        let (s, v) = call(
            &base,
            &author,
            "POST",
            &format!("/api/v1/sitreps/{id}/publish"),
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (409, "sitrep.wrong_status"));
        // A grid worker runs tasks but neither sees the report nor approves it.
        let (s, _) = call(
            &base,
            &g1,
            "POST",
            &format!("/api/v1/sitreps/{id}/approve"),
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &base,
            &chief,
            "POST",
            &format!("/api/v1/sitreps/{id}/approve"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "approved");
        let (s, v) = call(
            &base,
            &author,
            "POST",
            &format!("/api/v1/sitreps/{id}/publish"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status"], "published");
        assert!(v["published_at"].is_string());
        let (s, v) = call(
            &base,
            &chief,
            "POST",
            &format!("/api/v1/sitreps/{id}/publish"),
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (409, "sitrep.wrong_status"));

        let (_, second) = call(
            &base,
            &author,
            "POST",
            &path,
            Some(json!({ "body": "第二期" })),
        )
        .await;
        assert_eq!(second["title"], "第2期情况报告");
        let (_, list) = call(&base, &chief, "GET", &path, None).await;
        assert_eq!(list.as_array().unwrap().len(), 2);
        let (s, one) = call(&base, &chief, "GET", &format!("/api/v1/sitreps/{id}"), None).await;
        assert_eq!((s, one["status"].as_str()), (200, Some("published")));
        let kinds = log_kinds(&base, &author, a).await;
        for k in ["sitrep.drafted", "sitrep.approved", "sitrep.published"] {
            assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
        }

        // The printable page: a print stylesheet, approve offered to the chief only.
        let page = |u: &User, p: String| {
            let (cookie, base) = (u.cookie.clone(), base.clone());
            async move {
                let r = client()
                    .get(format!("{base}{p}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let sid = second["id"].as_str().unwrap();
        let (s, html) = page(&author, format!("/manage/sitreps/{sid}")).await;
        assert_eq!(s, 200);
        assert!(html.contains(r#"<style media="print">"#));
        assert!(
            !html.contains("/approve\""),
            "the author is not offered approval"
        );
        let (_, html) = page(&chief, format!("/manage/sitreps/{sid}")).await;
        assert!(html.contains(&format!("/manage/sitreps/{sid}/approve")));
    }
);

// ---- shelters ----------------------------------------------------------------------------------

both_stores!(
    shelter_check_in_refused_over_capacity,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (_, a) = incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        let small = shelter(t.store(), w.comm_a, "社区活动室", 2).await;
        let in_b = shelter(t.store(), w.comm_b, "崇德里广场", 50).await;
        let wa = staff(&t, "sh_wa", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "sh_wb", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let path = format!("/api/v1/incidents/{a}/stays");

        let (s, v) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{a}/shelters"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(ids_of(&v, "facility_id"), vec![small.to_string()]);

        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": in_b, "person_id": w.person_a1 })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "shelter.not_open"));
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "person_id": w.person_b1 })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "record.reference_invalid"));
        assert_eq!(v["error"]["details"]["field"], "person_id");
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small })),
        )
        .await;
        assert_eq!((s, code(&v)), (422, "value.required"));
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "name": "赵六", "phone": "12" })),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["error"]["details"]["field"], "phone");
        let (s, _) = call(
            &base,
            &wb,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "name": "赵六" })),
        )
        .await;
        assert_eq!(s, 404);

        let (s, resident) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "person_id": w.person_a1 })),
        )
        .await;
        assert_eq!(s, 201, "{resident}");
        assert_eq!(resident["name"], "张**");
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "person_id": w.person_a1 })),
        )
        .await;
        assert_eq!((s, code(&v)), (409, "shelter.already_checked_in"));
        let (s, walk_in) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "name": "赵六", "phone": "13911112222" })),
        )
        .await;
        assert_eq!(s, 201, "{walk_in}");
        assert_eq!(walk_in["name"], "赵*");
        assert!(walk_in["phone"].as_str().unwrap().contains('*'));
        // Full: the third person is refused.
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "person_id": w.person_a1n })),
        )
        .await;
        assert_eq!((s, code(&v)), (409, "shelter.full"), "{v}");
        let (_, v) = call(
            &base,
            &wa,
            "GET",
            &format!("/api/v1/incidents/{a}/shelters"),
            None,
        )
        .await;
        assert_eq!(v[0]["occupancy"], 2);

        let rid = resident["id"].as_str().unwrap();
        let (s, _) = call(
            &base,
            &wb,
            "POST",
            &format!("/api/v1/shelter-stays/{rid}/check-out"),
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/shelter-stays/{rid}/check-out"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["checked_out_at"].is_string());
        let (s, v) = call(
            &base,
            &wa,
            "POST",
            &format!("/api/v1/shelter-stays/{rid}/check-out"),
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (409, "shelter.already_checked_out"));
        let (s, _) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({ "facility_id": small, "person_id": w.person_a1n })),
        )
        .await;
        assert_eq!(s, 201, "a place freed by the check-out is taken");
        // Two check-ins racing for the last place of another shelter: one gets it.
        let last = shelter(t.store(), w.comm_a, "单元门厅", 1).await;
        let one = json!({ "facility_id": last, "name": "钱七" });
        let two = json!({ "facility_id": last, "name": "孙八" });
        let ((s1, v1), (s2, v2)) = tokio::join!(
            call(&base, &wa, "POST", &path, Some(one)),
            call(&base, &wa, "POST", &path, Some(two))
        );
        let mut got = [s1, s2];
        got.sort_unstable();
        assert_eq!(got, [201, 409], "{v1} {v2}");
        assert!(code(&v1) == "shelter.full" || code(&v2) == "shelter.full");

        let (_, present) = call(&base, &wa, "GET", &format!("{path}?present=true"), None).await;
        assert_eq!(present.as_array().unwrap().len(), 3);
        let (_, all) = call(&base, &wa, "GET", &path, None).await;
        assert_eq!(all.as_array().unwrap().len(), 4);
        let kinds = log_kinds(&base, &wa, a).await;
        assert_eq!(kinds.iter().filter(|k| *k == "shelter.check_in").count(), 4);
        // The walk-in's name and phone are nowhere in clear: not in the stay, the log or the
        // change log.
        let clear = t
        .store()
        .read(|c, _| {
            let mut n = 0;
            for sql in [
                "SELECT count(*) FROM incident_log WHERE summary LIKE '%赵六%'",
                "SELECT count(*) FROM shelter_stays WHERE name_mask LIKE '%赵六%' OR phone_mask LIKE '%13911112222%'",
            ] {
                n += c.query_i64(sql, &[])?;
            }
            let rows = c.query(
                "SELECT after, after_ct FROM change_log WHERE kind = 'shelter_stays'",
                &[],
            )?;
            assert!(!rows.is_empty());
            for r in rows {
                let after: Option<String> = r.get("after")?;
                let sealed: Option<Vec<u8>> = r.get("after_ct")?;
                assert!(after.is_none() && sealed.is_some(), "stay images are sealed");
                let text = String::from_utf8_lossy(&sealed.unwrap_or_default()).into_owned();
                if text.contains("赵六") || text.contains("13911112222") {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
        .unwrap();
        assert_eq!(clear, 0);
    }
);

fn ids_of(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

// ---- review ------------------------------------------------------------------------------------

both_stores!(
    review_proposes_a_plan_version_from_a_lesson,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (plan, a) =
            incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        let wa = staff(&t, "rev_wa", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "rev_wb", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let path = format!("/api/v1/incidents/{a}/review");
        let mut revised = plan_body();
        revised["tasks"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "title": "提前关闭地下车库", "role": "liaison", "due_minutes": 10 }));
        let review = json!({
            "went_well": "转移及时",
            "went_badly": "地下车库进水",
            "lessons": [
                { "text": "值班电话要张贴到每个单元" },
                { "text": "暴雨前先关闭地下车库", "revision": revised }
            ]
        });

        let (s, v) = call(&base, &wa, "POST", &path, Some(review.clone())).await;
        assert_eq!((s, code(&v)), (409, "incident.must_be_closed"), "{v}");
        set_status(t.store(), a, "closed").await;

        let mut bad = review.clone();
        bad["lessons"][1]["revision"]["tasks"][2]["role"] = json!("mayor");
        let (s, v) = call(&base, &wa, "POST", &path, Some(bad)).await;
        assert_eq!((s, code(&v)), (422, "review.revision_role_unknown"), "{v}");
        assert_eq!(
            v["error"]["details"]["field"],
            "lessons[1].revision.tasks[2].role"
        );
        let mut bad = review.clone();
        bad["lessons"][1]["revision"]["shelters"] = json!("all of them");
        let (s, v) = call(&base, &wa, "POST", &path, Some(bad)).await;
        assert_eq!((s, code(&v)), (422, "review.revision_invalid"));
        let (s, _) = call(&base, &wb, "POST", &path, Some(review.clone())).await;
        assert_eq!(s, 404);

        let (s, r) = call(&base, &wa, "POST", &path, Some(review.clone())).await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["lessons"][0]["plan_version_id"], Value::Null);
        assert_eq!(r["lessons"][1]["version"], 2);
        let rid: Uuid = r["id"].as_str().unwrap().parse().unwrap();
        let (s, again) = call(&base, &wa, "POST", &path, Some(review.clone())).await;
        assert_eq!((s, code(&again)), (409, "review.exists"));

        let (status, version) = t
            .store()
            .read(move |c, _| {
                let i = c
                    .query_one("SELECT status FROM incidents WHERE id = $1", &params![a])?
                    .unwrap();
                let v = c
                .query_one(
                    "SELECT version, status, change_summary, review_id, body FROM plan_versions \
                     WHERE plan_id = $1 AND version = 2",
                    &params![plan],
                )?
                .unwrap();
                Ok((i.get::<String>("status")?, v))
            })
            .await
            .unwrap();
        assert_eq!(status, "reviewed");
        assert_eq!(version.get::<String>("status").unwrap(), "proposed");
        assert_eq!(
            version.get::<String>("change_summary").unwrap(),
            "暴雨前先关闭地下车库"
        );
        assert_eq!(version.get::<Option<Uuid>>("review_id").unwrap(), Some(rid));
        let body: anxin_domain::plan::PlanBody =
            serde_json::from_str(&version.get::<String>("body").unwrap()).unwrap();
        assert_eq!(body.tasks.len(), 3);
        assert_eq!(body.tasks[2].title, "提前关闭地下车库");

        let (s, got) = call(&base, &wa, "GET", &format!("/api/v1/reviews/{rid}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(got["went_badly"], "地下车库进水");
        let (s, _) = call(&base, &wb, "GET", &format!("/api/v1/reviews/{rid}"), None).await;
        assert_eq!(s, 404);
        let kinds = log_kinds(&base, &wa, a).await;
        // Lines written in one step share their instant; both are there.
        for k in ["review.revision_proposed", "review.submitted"] {
            assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
        }
    }
);

// The pages: the list marks drills, the incident page shows tasks and takes a status change
// from its form, and the review form turns changed task rows into a proposed version.
both_stores!(
    incident_pages_work_without_script,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (plan, a) =
            incident(t.store(), w.comm_a, "防汛预案", "暴雨内涝", "active", false).await;
        incident(
            t.store(),
            w.comm_a,
            "燃气预案",
            "燃气泄漏演练",
            "active",
            true,
        )
        .await;
        let wa = staff(&t, "pg_wa", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let get = |p: String| {
            let (cookie, base) = (wa.cookie.clone(), base.clone());
            async move {
                let r = client()
                    .get(format!("{base}{p}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let post = |p: String, form: Vec<(&'static str, String)>| {
            let (cookie, base, csrf) = (wa.cookie.clone(), base.clone(), wa.csrf.clone());
            async move {
                let mut f = form;
                f.push(("_csrf", csrf));
                let r = client()
                    .post(format!("{base}{p}"))
                    .header("cookie", cookie)
                    .form(&f)
                    .send()
                    .await
                    .unwrap();
                let loc = r
                    .headers()
                    .get("location")
                    .map(|l| l.to_str().unwrap().to_owned());
                (r.status().as_u16(), loc, r.text().await.unwrap())
            }
        };
        let (s, html) = get("/manage/incidents".into()).await;
        assert_eq!(s, 200);
        assert!(html.contains("暴雨内涝") && html.contains("演练"), "{html}");
        assert!(html.find("暴雨内涝").is_some());

        let (s, loc, body) = post(
            format!("/manage/incidents/{a}/tasks/new"),
            vec![
                ("title", "疏通雨水口".into()),
                ("due_at", "2030-01-01T08:00".into()),
            ],
        )
        .await;
        assert_eq!(s, 303, "{body}");
        assert_eq!(
            loc.as_deref(),
            Some(format!("/manage/incidents/{a}").as_str())
        );
        let (s, html) = get(format!("/manage/incidents/{a}")).await;
        assert_eq!(s, 200);
        assert!(html.contains("疏通雨水口"));
        assert!(html.contains(&format!("/manage/incidents/{a}/deactivate")));
        assert!(html.contains(&format!("/manage/incidents/{a}/welfare")));
        let (s, html) = get(format!("/manage/incidents/{a}?lang=en")).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("Timeline") && html.contains("Stand down"),
            "{html}"
        );
        let (s, html) = get("/manage/my-tasks".into()).await;
        assert_eq!(s, 200);
        assert!(html.contains("我的任务"));
        let (s, html) = get(format!("/manage/incidents/{a}/check-in")).await;
        assert_eq!(s, 200);
        assert!(html.contains(r#"name="facility_id""#));
        let (s, _) = get(format!("/manage/incidents/{a}/sitreps/new")).await;
        assert_eq!(s, 200);
        // A triggered incident waiting for a person: confirm and decline, no stand-down.
        let (_, pending) = incident(
            t.store(),
            w.comm_a,
            "台风预案",
            "台风待确认",
            "pending",
            false,
        )
        .await;
        let (s, html) = get(format!("/manage/incidents/{pending}")).await;
        assert_eq!(s, 200);
        assert!(html.contains(&format!("/manage/incidents/{pending}/confirm")));
        assert!(html.contains(&format!("/manage/incidents/{pending}/decline")));
        assert!(!html.contains(&format!("/manage/incidents/{pending}/deactivate")));
        let tid = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT id FROM incident_tasks WHERE incident_id = $1",
                    &params![a],
                )?
                .unwrap()
                .get::<Uuid>("id")
            })
            .await
            .unwrap();
        let (s, loc, _) = post(
            format!("/manage/incident-tasks/{tid}/status"),
            vec![
                ("status", "done".into()),
                ("notes", "已疏通".into()),
                ("back", format!("/manage/incidents/{a}")),
            ],
        )
        .await;
        assert_eq!((s, loc), (303, Some(format!("/manage/incidents/{a}"))));
        let (_, html) = get(format!("/manage/incidents/{a}")).await;
        assert!(html.contains("已疏通"));
        // A refused value comes back on the form, in Chinese, next to its field.
        let (s, _, html) = post(
            format!("/manage/incidents/{a}/tasks/new"),
            vec![("title", "".into())],
        )
        .await;
        assert_eq!(s, 422);
        assert!(html.contains("title-error"), "{html}");

        set_status(t.store(), a, "closed").await;
        let (s, html) = get(format!("/manage/incidents/{a}/review")).await;
        assert_eq!(s, 200);
        assert!(html.contains("转移低洼住户 | commander | 30"), "{html}");
        let rows = "转移低洼住户 | commander | 20\n联络物业 | liaison | 15".to_owned();
        let (s, _, html) = post(
            format!("/manage/incidents/{a}/review"),
            vec![
                ("went_well", "响应快".into()),
                ("went_badly", "转移慢".into()),
                ("revision_tasks", rows.clone()),
            ],
        )
        .await;
        assert_eq!(s, 422, "a revision needs its lesson");
        assert!(html.contains("revision_lesson-error"));
        let (s, loc, body) = post(
            format!("/manage/incidents/{a}/review"),
            vec![
                ("went_well", "响应快".into()),
                ("went_badly", "转移慢".into()),
                ("lessons", "提前发布转移通知\n".into()),
                ("revision_lesson", "转移时限缩短到20分钟".into()),
                ("revision_tasks", rows),
            ],
        )
        .await;
        assert_eq!(s, 303, "{body}");
        let loc = loc.unwrap();
        assert!(loc.starts_with("/manage/reviews/"));
        let (s, html) = get(loc).await;
        assert_eq!(s, 200);
        assert!(html.contains("转移时限缩短到20分钟") && html.contains(r#"<style media="print">"#));
        let summary = t
        .store()
        .read(move |c, _| {
            c.query_one(
                "SELECT change_summary, body FROM plan_versions WHERE plan_id = $1 AND status = 'proposed'",
                &params![plan],
            )
            .map(|r| r.unwrap())
        })
        .await
        .unwrap();
        assert_eq!(
            summary.get::<String>("change_summary").unwrap(),
            "转移时限缩短到20分钟"
        );
        assert!(summary
            .get::<String>("body")
            .unwrap()
            .contains("\"due_minutes\":20"));
    }
);

// ---- the isolation matrix ---------------------------------------------------------------------

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): an active incident with a task, a report and a stay, and a
/// reviewed one.
pub async fn a1(
    store: &Store,
    w: &World,
    so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let (_, a) = incident(store, w.comm_a, "A1事件运行预案", "A1内涝", "active", false).await;
    let (_, closed) = incident(store, w.comm_a, "A1复盘预案", "A1复盘事件", "closed", false).await;
    let facility = shelter(store, w.comm_a, "A1避难点", 10).await;
    let person = w.person_a1n;
    let mut m = store
        .write(WriteCtx::system("matrix-incidents"), move |tx| {
            let sys = Caller::system();
            let task = inc::add_task(
                tx,
                &sys,
                a,
                inc::TaskInput {
                    title: Some("A1巡查".into()),
                    ..inc::TaskInput::default()
                },
            )?;
            let sitrep = inc::draft_sitrep(
                tx,
                &sys,
                a,
                inc::SitrepInput {
                    title: None,
                    body: Some("A1情况".into()),
                },
            )?;
            let stay = inc::check_in(
                tx,
                &sys,
                a,
                inc::CheckInInput {
                    facility_id: Some(facility),
                    person_id: Some(person),
                    ..inc::CheckInInput::default()
                },
            )?;
            let review = inc::submit_review(
                tx,
                &sys,
                closed,
                inc::ReviewInput {
                    went_well: Some("好".into()),
                    went_badly: Some("差".into()),
                    lessons: Vec::new(),
                },
            )?;
            Ok(HashMap::from([
                ("incident_tasks", task.id),
                ("incident_sitreps", sitrep.id),
                ("shelter_stays", stay.id),
                ("incident_reviews", review.id),
            ]))
        })
        .await
        .unwrap();
    if !so_far.contains_key("incidents") {
        m.insert("incidents", a);
    }
    m
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/incidents/{id}/tasks" => json!({ "title": "闯入任务" }),
        "/api/v1/incident-tasks/{id}/status" | "/manage/incident-tasks/{id}/status" => {
            json!({ "status": "cancelled", "notes": "闯入" })
        }
        "/api/v1/incidents/{id}/sitreps" => json!({ "body": "闯入报告" }),
        "/api/v1/sitreps/{id}/approve"
        | "/api/v1/sitreps/{id}/publish"
        | "/manage/sitreps/{id}/approve"
        | "/manage/sitreps/{id}/publish"
        | "/api/v1/shelter-stays/{id}/check-out"
        | "/manage/shelter-stays/{id}/check-out" => json!({}),
        "/api/v1/incidents/{id}/stays" => {
            json!({ "name": "闯入者", "facility_id": Uuid::now_v7() })
        }
        "/api/v1/incidents/{id}/review" => {
            json!({ "went_well": "闯入", "went_badly": "闯入", "lessons": [] })
        }
        "/manage/incidents/{id}/tasks/new" => json!({ "title": "闯入任务" }),
        "/manage/incidents/{id}/sitreps/new" => json!({ "body": "闯入报告" }),
        "/manage/incidents/{id}/check-in" => {
            json!({ "name": "闯入者", "person_id": w.person_a1.to_string() })
        }
        "/manage/incidents/{id}/review" => json!({ "went_well": "闯入", "went_badly": "闯入" }),
        _ => return None,
    })
}
