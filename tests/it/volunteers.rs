//! Stories of emergency operations: volunteers, call-outs and welfare checks (不漏一人).
#![allow(clippy::unwrap_used)]

use crate::world::{call, code};
use std::collections::HashMap;

use anxin_domain::plan::PlanBody;
use anxin_domain::Clock;
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::ops::volunteers::{self as vol, CalloutStep, VolunteerInput};
use anxin_store::ops::welfare::WelfareStep;
use anxin_store::ops::{Activation, ActivationStep};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{client, TestApp};
use crate::world::{self, staff, user, User, World};

// ---- helpers --------------------------------------------------------------------------------

fn body(v: Value) -> PlanBody {
    serde_json::from_value(v).unwrap()
}

/// A plan, its current version with `body` and an active incident for `node`, with the
/// call-out and welfare steps run as activation runs them (the activation engine is another
/// part's; this exercises the steps alone).
pub async fn start_incident(store: &Store, node: Uuid, b: PlanBody) -> Uuid {
    store
        .write(WriteCtx::system("vol-incident"), move |tx| {
            let (plan, pv, inc) = (tx.new_id(), tx.new_id(), tx.new_id());
            let now = tx.now();
            tx.insert(
                "plans",
                &[
                    ("id", plan.into()),
                    ("node_id", node.into()),
                    ("name", format!("志愿者测试预案{plan}").into()),
                    ("status", "active".into()),
                    ("current_version", 1i64.into()),
                    ("review_period_days", 365i64.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            tx.insert(
                "plan_versions",
                &[
                    ("id", pv.into()),
                    ("plan_id", plan.into()),
                    ("node_id", node.into()),
                    ("version", 1i64.into()),
                    ("status", "current".into()),
                    ("body", serde_json::to_string(&b).unwrap().into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            tx.insert(
                "incidents",
                &[
                    ("id", inc.into()),
                    ("node_id", node.into()),
                    ("plan_id", plan.into()),
                    ("plan_version_id", pv.into()),
                    ("title", "暴雨内涝".into()),
                    ("exercise", false.into()),
                    ("status", "active".into()),
                    ("trigger_kind", "manual".into()),
                    ("summary", "{}".into()),
                    ("activated_at", now.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let nodes = anxin_store::ops::plans::subtree(tx.conn(), node)?;
            let a = Activation {
                incident_id: inc,
                node_id: node,
                plan_id: plan,
                plan_version_id: pv,
                body: &b,
                exercise: false,
                at: now,
                actor: None,
                nodes: &nodes,
                found: Default::default(),
            };
            CalloutStep.activate(tx, &a)?;
            WelfareStep.activate(tx, &a)?;
            Ok(inc)
        })
        .await
        .unwrap()
}

/// Close an incident as deactivation does: the steps' `deactivate` in reverse order.
async fn deactivate(store: &Store, inc: Uuid) -> (Value, Value) {
    store
        .write(WriteCtx::system("vol-deactivate"), move |tx| {
            let now = tx.now();
            let w = WelfareStep.deactivate(tx, inc, now)?;
            let c = CalloutStep.deactivate(tx, inc, now)?;
            tx.update(
                "incidents",
                inc,
                &[("status", "closed".into()), ("closed_at", now.into())],
            )?;
            Ok((w, c))
        })
        .await
        .unwrap()
}

async fn add_volunteer(
    store: &Store,
    community: Uuid,
    name: &str,
    skills: &[&str],
    availability: &str,
    user_id: Option<Uuid>,
) -> Uuid {
    let i = VolunteerInput {
        community_id: Some(community),
        name: Some(name.into()),
        phone: Some("13700000009".into()),
        skills: Some(skills.iter().map(|s| (*s).to_owned()).collect()),
        availability: Some(availability.into()),
        user_id,
        ..VolunteerInput::default()
    };
    store
        .write(WriteCtx::system("vol"), move |tx| {
            vol::create_volunteer(tx, &Caller::system(), &i)
        })
        .await
        .unwrap()
        .id
}

async fn user_id(store: &Store, name: &'static str) -> Uuid {
    store
        .read(move |c, _| {
            c.query_one(
                "SELECT id FROM users WHERE display_name = $1",
                &params![name],
            )?
            .unwrap()
            .get("id")
        })
        .await
        .unwrap()
}

async fn get(base: &str, u: &User, path: &str) -> (u16, Value) {
    call(base, u, "GET", path, None).await
}

async fn post(base: &str, u: &User, path: &str, b: Value) -> (u16, Value) {
    call(base, u, "POST", path, Some(b)).await
}

/// Let `minutes` pass on the clock, the users active every 20 minutes (sessions idle out at 30).
async fn pass(t: &TestApp, base: &str, users: &[&User], minutes: i64) {
    let mut left = minutes;
    while left > 0 {
        let step = left.min(20);
        t.clock.advance(chrono::Duration::minutes(step));
        left -= step;
        for u in users {
            get(base, u, "/api/v1/callouts?mine=true").await;
        }
    }
}

/// Vulnerable people: 张三丰 (A1, two categories, in a compound's building), 李四 (A1, with a
/// helper), 王五 (community B). Returns the compound.
async fn vulnerable_world(store: &Store, w: &World, helper: Option<Uuid>) -> Uuid {
    let (comm_a, grid_a1, hh_a1) = (w.comm_a, w.grid_a1, w.hh_a1);
    let (pa, pn, pb) = (w.person_a1, w.person_a1n, w.person_b1);
    store
        .write(WriteCtx::system("vulnerable"), move |tx| {
            use anxin_store::people::{add_vulnerable, VulnerableInput};
            use anxin_store::places::{self as pl, BuildingInput, DwellingInput, NewBuilding};
            let sys = Caller::system();
            let compound = anxin_store::tree::create_compound(tx, &sys, comm_a, "望江苑")?;
            let b = pl::create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(compound),
                    grid_id: Some(grid_a1),
                    name: Some("3栋".into()),
                    ..BuildingInput::default()
                })?,
            )?;
            let d = pl::create_dwelling(
                tx,
                &sys,
                b.id,
                &pl::NewDwelling::parse(DwellingInput {
                    number: Some("201".into()),
                    ..DwellingInput::default()
                })?,
            )?;
            tx.update("households", hh_a1, &[("dwelling_id", d.id.into())])?;
            for (p, cat, h) in [
                (pa, "elderly_alone", None),
                (pa, "disabled", None),
                (pn, "disabled", helper),
                (pb, "elderly_alone", None),
            ] {
                add_vulnerable(
                    tx,
                    &sys,
                    &VulnerableInput {
                        person_id: p,
                        category: cat.into(),
                        helper_user_id: h,
                        contact_channel: "no_smartphone".into(),
                        notes: None,
                    },
                )?;
            }
            Ok(compound)
        })
        .await
        .unwrap()
}

fn welfare_body(minutes: u32) -> PlanBody {
    body(json!({
        "risks": ["flood"],
        "volunteers": { "count": 3, "skills": [] },
        "welfare_checks": true,
        "welfare_escalate_minutes": minutes,
    }))
}

async fn called(store: &Store, inc: Uuid) -> Vec<Uuid> {
    store
        .read(move |c, _| {
            c.query(
                "SELECT volunteer_id FROM callouts WHERE incident_id = $1 AND status = 'called' ORDER BY called_at, id",
                &params![inc],
            )?
            .iter()
            .map(|r| r.get::<Uuid>("volunteer_id"))
            .collect::<anxin_store::Result<Vec<_>>>()
        })
        .await
        .unwrap()
}

async fn check_state(
    store: &Store,
    inc: Uuid,
    person: Uuid,
) -> (i64, Option<Uuid>, chrono::DateTime<chrono::Utc>) {
    store
        .read(move |c, _| {
            let r = c
                .query_one(
                    "SELECT level, assignee_user_id, due_at FROM welfare_checks WHERE incident_id = $1 AND person_id = $2",
                    &params![inc, person],
                )?
                .unwrap();
            Ok((r.get("level")?, r.get("assignee_user_id")?, r.get("due_at")?))
        })
        .await
        .unwrap()
}

// ---- the isolation matrix -------------------------------------------------------------------

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a volunteer of A, a call-out of them in an incident of A, and a
/// welfare check of 张三丰 (made vulnerable by the matrix's setup).
pub async fn a1(
    store: &Store,
    w: &World,
    so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let v = add_volunteer(store, w.comm_a, "赵志愿", &["first_aid"], "available", None).await;
    let inc = start_incident(
        store,
        w.comm_a,
        body(json!({
            "risks": ["flood"],
            "volunteers": { "count": 1, "skills": ["first_aid"] },
            "welfare_checks": true,
        })),
    )
    .await;
    let p = w.person_a1;
    let (callout, check): (Uuid, Uuid) = store
        .read(move |c, _| {
            let co = c
                .query_one(
                    "SELECT id FROM callouts WHERE incident_id = $1 AND volunteer_id = $2",
                    &params![inc, v],
                )?
                .unwrap()
                .get("id")?;
            let ck = c
                .query_one(
                    "SELECT id FROM welfare_checks WHERE incident_id = $1 AND person_id = $2",
                    &params![inc, p],
                )?
                .unwrap()
                .get("id")?;
            Ok((co, ck))
        })
        .await
        .unwrap();
    let mut m = HashMap::from([
        ("volunteers", v),
        ("callouts", callout),
        ("welfare_checks", check),
    ]);
    if !so_far.contains_key("incidents") {
        m.insert("incidents", inc);
    }
    m
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/volunteers" => {
            json!({ "community_id": w.comm_a, "name": "闯入者", "availability": "available" })
        }
        "/api/v1/volunteers/{id}" | "/manage/volunteers/{id}/edit" => json!({ "notes": "闯入" }),
        "/manage/nodes/{id}/volunteers/new" => {
            json!({ "kind": "volunteer", "name": "闯入者", "availability": "available" })
        }
        "/api/v1/callouts" => {
            json!({ "incident_id": Uuid::now_v7(), "volunteer_id": Uuid::now_v7() })
        }
        "/manage/incidents/{id}/callouts" => json!({ "volunteer_id": Uuid::now_v7().to_string() }),
        "/api/v1/callouts/{id}/accept"
        | "/api/v1/callouts/{id}/decline"
        | "/api/v1/callouts/{id}/check-out"
        | "/resident/callouts/{id}/accept"
        | "/resident/callouts/{id}/decline"
        | "/resident/callouts/{id}/check-out" => json!({}),
        "/api/v1/callouts/{id}/check-in" | "/resident/callouts/{id}/check-in" => {
            json!({ "place": "闯入" })
        }
        "/api/v1/welfare/{id}/record"
        | "/manage/welfare/{id}/record"
        | "/resident/welfare/{id}/record" => json!({ "outcome": "safe" }),
        _ => return None,
    })
}

// ---- stories --------------------------------------------------------------------------------

both_stores!(
    registry_validates_and_keeps_phones_sealed,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let ok = json!({
            "community_id": w.comm_a, "name": "陈志愿", "phone": "13711112222",
            "skills": ["First_Aid", "swimming", "first_aid"],
            "certificates": [{ "name": "红十字救护员证", "number": "HS-001", "valid_until": "2028-01-01" }],
            "availability": "available"
        });
        for (patch, field, want) in [
            (json!({ "name": " " }), "name", "value.required"),
            (json!({ "phone": "12345" }), "phone", ""),
            (
                json!({ "availability": "sometimes" }),
                "availability",
                "value.invalid",
            ),
            (json!({ "kind": "hero" }), "kind", "value.invalid"),
            (json!({ "community_id": w.street }), "", "record.not_found"),
            (
                json!({ "certificates": [{ "name": "" }] }),
                "certificates[0].name",
                "value.required",
            ),
            (json!({ "skills": ["a,b"] }), "skills", "value.invalid"),
        ] {
            let mut b = ok.clone();
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            let (s, r) = post(&base, &worker, "/api/v1/volunteers", b).await;
            assert!(s == 422 || s == 404, "{field}: {s} {r}");
            if !want.is_empty() {
                assert_eq!(code(&r), want, "{field}: {r}");
            } else {
                assert!(code(&r).starts_with("phone"), "{field}: {r}");
            }
            if !field.is_empty() {
                assert_eq!(r["error"]["details"]["field"], field, "{r}");
            }
        }
        // Another community's worker and a grid worker may not register in A.
        let (s, _) = post(&base, &worker_b, "/api/v1/volunteers", ok.clone()).await;
        assert_eq!(s, 404);
        let (s, _) = post(&base, &grid, "/api/v1/volunteers", ok.clone()).await;
        assert_eq!(s, 404);

        let (s, v) = post(&base, &worker, "/api/v1/volunteers", ok.clone()).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["name_mask"], "陈**");
        assert_eq!(v["phone_mask"], "137****2222");
        assert_eq!(v["skills"], json!(["first_aid", "swimming"]));
        let text = v.to_string();
        assert!(
            !text.contains("13711112222") && !text.contains("陈志愿"),
            "{text}"
        );
        let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();

        // At rest: the phone is ciphertext, found by blind index; the change log is sealed.
        let (ct, bidx, sealed): (Vec<u8>, bool, bool) = t
            .store()
            .read(move |c, _| {
                let r = c
                    .query_one("SELECT phone_ct, phone_bidx FROM volunteers WHERE id = $1", &params![id])?
                    .unwrap();
                let l = c
                    .query_one(
                        "SELECT after, after_ct FROM change_log WHERE kind = 'volunteers' AND record_id = $1",
                        &params![id],
                    )?
                    .unwrap();
                Ok((
                    r.get("phone_ct")?,
                    r.get::<Option<Vec<u8>>>("phone_bidx")?.is_some(),
                    l.get::<Option<Value>>("after")?.is_none()
                        && l.get::<Option<Vec<u8>>>("after_ct")?.is_some(),
                ))
            })
            .await
            .unwrap();
        assert!(!ct.windows(11).any(|x| x == b"13711112222"));
        assert!(bidx);
        assert!(sealed, "change-log image in clear");

        // The list: scoped, filtered by skill and availability.
        add_volunteer(t.store(), w.comm_a, "周干部", &["driving"], "limited", None).await;
        add_volunteer(
            t.store(),
            w.comm_b,
            "吴志愿",
            &["first_aid"],
            "available",
            None,
        )
        .await;
        let (s, l) = get(&base, &worker, "/api/v1/volunteers").await;
        assert_eq!(s, 200);
        assert_eq!(l.as_array().unwrap().len(), 2, "{l}");
        let (_, l) = get(&base, &worker, "/api/v1/volunteers?skill=FIRST_AID").await;
        assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
        assert_eq!(l[0]["id"], v["id"]);
        let (_, l) = get(&base, &worker, "/api/v1/volunteers?availability=limited").await;
        assert_eq!(l.as_array().unwrap().len(), 1);
        assert_eq!(l[0]["name_mask"], "周**");
        let (_, l) = get(&base, &worker_b, "/api/v1/volunteers").await;
        assert!(!l.to_string().contains(&id.to_string()));
        let (s, _) = get(&base, &worker_b, &format!("/api/v1/volunteers/{id}")).await;
        assert_eq!(s, 404);

        // Edit: availability, and an account must hold a Volunteer grant.
        let (s, e) = call(
            &base,
            &worker,
            "PATCH",
            &format!("/api/v1/volunteers/{id}"),
            Some(json!({ "availability": "unavailable" })),
        )
        .await;
        assert_eq!(
            (s, e["availability"].as_str()),
            (200, Some("unavailable")),
            "{e}"
        );
        let plain = user_id(t.store(), "worker_b").await;
        let (s, e) = call(
            &base,
            &worker,
            "PATCH",
            &format!("/api/v1/volunteers/{id}"),
            Some(json!({ "user_id": plain })),
        )
        .await;
        assert_eq!((s, code(&e)), (422, "volunteer.user_not_volunteer"), "{e}");

        // The pages: list, detail, the create form (with a field error shown in place).
        let page = client()
            .get(format!("{base}/manage/volunteers"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("陈**") && !html.contains("13711112222"),
            "{html}"
        );
        assert!(
            html.contains("水井坊社区"),
            "the register-in choice: {html}"
        );
        let r = client()
            .get(format!("{base}/manage/volunteers?new_in={}", w.comm_a))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        let form = client()
            .get(format!("{base}/manage/nodes/{}/volunteers/new", w.comm_a))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(form.status().as_u16(), 200);
        let form = client()
            .get(format!("{base}/manage/nodes/{}/volunteers/new", w.comm_a))
            .header("cookie", &worker_b.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(form.status().as_u16(), 404);
        let (s, html) = post(
            &base,
            &worker,
            &format!("/manage/nodes/{}/volunteers/new", w.comm_a),
            json!({ "kind": "volunteer", "name": "", "availability": "available" }),
        )
        .await;
        assert_eq!(s, 422, "{html}");
        assert!(html.as_str().unwrap().contains("此项必填"));
    }
);

both_stores!(
    callouts_pick_available_skilled_volunteers_in_scope,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let v1 = add_volunteer(
            s,
            w.comm_a,
            "一号",
            &["first_aid", "swimming"],
            "available",
            None,
        )
        .await;
        let _v2 = add_volunteer(s, w.comm_a, "二号", &["first_aid"], "available", None).await;
        let _v3 = add_volunteer(
            s,
            w.comm_a,
            "三号",
            &["first_aid", "swimming"],
            "unavailable",
            None,
        )
        .await;
        let _v4 = add_volunteer(
            s,
            w.comm_b,
            "四号",
            &["first_aid", "swimming"],
            "available",
            None,
        )
        .await;
        let v5 = add_volunteer(
            s,
            w.comm_a,
            "五号",
            &["swimming", "first_aid", "driving"],
            "limited",
            None,
        )
        .await;
        let v6 = add_volunteer(
            s,
            w.comm_a,
            "六号",
            &["Swimming", "first_aid"],
            "available",
            None,
        )
        .await;
        let _ = v5;
        // Two swimmers with first aid, available, in A: 一号 and 六号 (in registry order).
        let inc = start_incident(
            s,
            w.comm_a,
            body(json!({ "risks": ["flood"], "volunteers": { "count": 5, "skills": ["swimming", "first_aid"] } })),
        )
        .await;
        let mut got = called(s, inc).await;
        got.sort();
        let mut want = vec![v1, v6];
        want.sort();
        assert_eq!(got, want);
        // At most `count`: the first registered.
        let inc2 = start_incident(
            s,
            w.comm_a,
            body(json!({ "risks": ["flood"], "volunteers": { "count": 1, "skills": ["first_aid"] } })),
        )
        .await;
        assert_eq!(called(s, inc2).await, vec![v1]);
        // A street-wide activation reaches B's volunteers too; no call without a `volunteers` part.
        let inc3 = start_incident(
            s,
            w.street,
            body(json!({ "risks": ["flood"], "volunteers": { "count": 10, "skills": ["swimming"] } })),
        )
        .await;
        assert_eq!(called(s, inc3).await.len(), 3);
        let inc4 = start_incident(s, w.comm_a, body(json!({ "risks": ["flood"] }))).await;
        assert!(called(s, inc4).await.is_empty());
    }
);

both_stores!(
    vulnerable_records_follow_a_person_who_moves,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        vulnerable_world(s, &w, None).await;
        // 王五 (vulnerable, community B) moves into a household of community A.
        let (pb, hh_a1, comm_a) = (w.person_b1, w.hh_a1, w.comm_a);
        s.write(WriteCtx::system("move"), move |tx| {
            anxin_store::people::join_household(
                tx,
                &Caller::system(),
                hh_a1,
                pb,
                anxin_domain::HouseholdRole::Relative,
                chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            )
        })
        .await
        .unwrap();
        let (community, grid, logged): (Uuid, Option<Uuid>, i64) = s
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT community_id, grid_id FROM vulnerable WHERE person_id = $1",
                        &params![pb],
                    )?
                    .unwrap();
                let n = c.query_i64(
                    "SELECT count(*) FROM change_log WHERE kind = 'vulnerable' AND op = 'update'",
                    &[],
                )?;
                Ok((r.get("community_id")?, r.get("grid_id")?, n))
            })
            .await
            .unwrap();
        assert_eq!(community, comm_a, "the record follows the person");
        assert_eq!(
            grid,
            Some(w.grid_a1),
            "and from their old grid to the new one"
        );
        assert!(logged >= 2, "the moves are in the change log");
        // Welfare checks go to where the person lives now: A's activation checks 王五, B's not.
        let checked = |inc: Uuid| async move {
            s.read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM welfare_checks WHERE incident_id = $1 AND person_id = $2",
                    &params![inc, pb],
                )
            })
            .await
            .unwrap()
        };
        let in_a = start_incident(s, w.comm_a, welfare_body(30)).await;
        let in_b = start_incident(s, w.comm_b, welfare_body(30)).await;
        assert_eq!(checked(in_a).await, 1);
        assert_eq!(checked(in_b).await, 0);
    }
);

both_stores!(
    volunteers_answer_check_in_and_hours_are_totalled,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let volu = user(
            &t,
            "vol_a",
            UserKind::Resident,
            Some((Role::Volunteer, Scope::Node(w.comm_a))),
            Some(w.person_a1n),
        )
        .await;
        let other = staff(&t, "vol_other", Role::Volunteer, Scope::Node(w.comm_a)).await;
        let me = user_id(t.store(), "vol_a").await;
        let v = add_volunteer(
            t.store(),
            w.comm_a,
            "钱志愿",
            &["first_aid"],
            "available",
            Some(me),
        )
        .await;
        let spare = add_volunteer(
            t.store(),
            w.comm_a,
            "孙志愿",
            &["driving"],
            "available",
            None,
        )
        .await;
        let inc = start_incident(
            t.store(),
            w.comm_a,
            body(json!({ "risks": ["flood"], "volunteers": { "count": 1, "skills": ["first_aid"] } })),
        )
        .await;
        let (s, mine) = get(&base, &volu, "/api/v1/callouts?mine=true").await;
        assert_eq!(s, 200, "{mine}");
        assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
        let cid = mine[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(mine[0]["volunteer_id"], v.to_string());
        // Someone else's call-out is not found; a check-in before accepting is refused.
        let (s, _) = post(
            &base,
            &other,
            &format!("/api/v1/callouts/{cid}/accept"),
            json!({}),
        )
        .await;
        assert_eq!(s, 404);
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-in"),
            json!({ "place": "东门" }),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "callout.wrong_status"), "{r}");
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/accept"),
            json!({}),
        )
        .await;
        assert_eq!((s, r["status"].as_str()), (200, Some("accepted")), "{r}");
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-in"),
            json!({}),
        )
        .await;
        assert_eq!((s, code(&r)), (422, "value.required"), "{r}");
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-in"),
            json!({ "place": "东门" }),
        )
        .await;
        assert_eq!((s, r["place"].as_str()), (200, Some("东门")), "{r}");
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-in"),
            json!({ "place": "东门" }),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "callout.already_checked_in"), "{r}");
        pass(&t, &base, &[&volu, &worker], 90).await;
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-out"),
            json!({}),
        )
        .await;
        assert_eq!((s, r["minutes"].as_i64()), (200, Some(90)), "{r}");
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-out"),
            json!({}),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "callout.not_checked_in"), "{r}");
        // Staff call out another by hand; twice is refused. The volunteer is notified by SMS.
        let (s, r) = post(
            &base,
            &worker,
            "/api/v1/callouts",
            json!({ "incident_id": inc, "volunteer_id": spare }),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        let (s, r) = post(
            &base,
            &worker,
            "/api/v1/callouts",
            json!({ "incident_id": inc, "volunteer_id": spare }),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "callout.duplicate"), "{r}");
        let third = add_volunteer(t.store(), w.comm_a, "郑志愿", &[], "limited", None).await;
        let (s, _) = post(
            &base,
            &worker,
            &format!("/manage/incidents/{inc}/callouts"),
            json!({ "volunteer_id": third.to_string() }),
        )
        .await;
        assert_eq!(s, 303);
        let n = anxin::ops::welfare::notify_callouts(&t.app, inc)
            .await
            .unwrap();
        assert_eq!(n, 2, "the hand call-outs are still waiting for an answer");
        let sms = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT count(*) FROM notifications WHERE template = 'callout'",
                    &[],
                )
            })
            .await
            .unwrap();
        assert_eq!(
            sms, 4,
            "one at each hand call-out, one again for each waiting"
        );
        // Back on duty for 30 minutes, then the incident is deactivated: checked out then.
        // An open shelter of the incident's area: check in there (another area's is refused).
        let (comm_a, comm_b) = (w.comm_a, w.comm_b);
        let (shelter, elsewhere) = t
            .store()
            .write(WriteCtx::system("shelter"), move |tx| {
                use anxin_store::places::{create_facility, FacilityInput, NewFacility};
                let mk = |tx: &mut anxin_store::Tx, node, name: &str| {
                    create_facility(
                        tx,
                        &Caller::system(),
                        &NewFacility::parse(FacilityInput {
                            node_id: Some(node),
                            kind: Some("shelter".into()),
                            name: Some(name.into()),
                            capacity: Some(200),
                            status: Some("open".into()),
                            ..FacilityInput::default()
                        })?,
                    )
                    .map(|f| f.id)
                };
                Ok((
                    mk(tx, comm_a, "二号避险点")?,
                    mk(tx, comm_b, "崇德里避险点")?,
                ))
            })
            .await
            .unwrap();
        let path = format!("/api/v1/callouts/{cid}/check-in");
        let (s, r) = post(&base, &volu, &path, json!({ "facility_id": elsewhere })).await;
        assert_eq!((s, code(&r)), (422, "welfare.facility_not_open"), "{r}");
        let (s, r) = post(&base, &volu, &path, json!({ "facility_id": shelter })).await;
        assert_eq!((s, r["place"].as_str()), (200, Some("二号避险点")), "{r}");
        // The volunteer's page offers the shelter and shows where they are.
        let html = client()
            .get(format!("{base}/resident/callouts"))
            .header("cookie", &volu.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("二号避险点") && html.contains("离岗签退"),
            "{html}"
        );
        // The staff page of the incident's call-outs lists them.
        let html = client()
            .get(format!("{base}/manage/incidents/{inc}/callouts"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("钱**") && html.contains("孙**") && html.contains("郑**"),
            "{html}"
        );
        pass(&t, &base, &[&volu, &worker], 30).await;
        let (s, inc_view) = get(&base, &worker, &format!("/api/v1/incidents/{inc}/callouts")).await;
        assert_eq!(s, 200, "{inc_view}");
        assert_eq!(inc_view["checked_in"], 1);
        assert_eq!(inc_view["total_minutes"], 90);
        let (_, c) = deactivate(t.store(), inc).await;
        assert_eq!(c, json!({ "ended": 3, "checked_out": 1 }));
        let (_, r) = get(&base, &volu, &format!("/api/v1/callouts/{cid}")).await;
        assert_eq!(r["status"], "ended");
        assert_eq!(r["minutes"], 120);
        assert!(r["checked_in_at"].is_null());
        let (_, inc_view) = get(&base, &worker, &format!("/api/v1/incidents/{inc}/callouts")).await;
        assert_eq!(inc_view["total_minutes"], 120);
        let (_, vv) = get(&base, &worker, &format!("/api/v1/volunteers/{v}")).await;
        assert_eq!(vv["total_minutes"], 120);
        // A closed incident takes no more answers.
        let (s, r) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/check-in"),
            json!({ "place": "东门" }),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "callout.incident_not_active"), "{r}");
        // The timeline names the volunteer masked only.
        let log: Vec<String> = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT summary FROM incident_log WHERE incident_id = $1",
                    &params![inc],
                )?
                .iter()
                .map(|r| r.get::<String>("summary"))
                .collect()
            })
            .await
            .unwrap();
        let all = log.join("\n");
        assert!(all.contains("钱**") && !all.contains("钱志愿"), "{all}");
    }
);

both_stores!(
    welfare_checks_cover_everyone_in_scope_once,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let _grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let helper = user_id(t.store(), "grid_a1").await;
        let compound = vulnerable_world(t.store(), &w, Some(helper)).await;
        let inc = start_incident(t.store(), w.comm_a, welfare_body(30)).await;
        let (pa, pn) = (w.person_a1, w.person_a1n);
        let rows = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT person_id, compound_id, grid_id, level, assignee_user_id, name_mask, due_at, status \
                     FROM welfare_checks WHERE incident_id = $1 ORDER BY name_mask",
                    &params![inc],
                )
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "one per person in A, none for B");
        let by: HashMap<Uuid, &anxin_store::Row> = rows
            .iter()
            .map(|r| (r.get("person_id").unwrap(), r))
            .collect();
        let a = by[&pa];
        assert_eq!(
            a.get::<Option<Uuid>>("compound_id").unwrap(),
            Some(compound)
        );
        assert_eq!(a.get::<Option<Uuid>>("grid_id").unwrap(), Some(w.grid_a1));
        assert_eq!(
            a.get::<i64>("level").unwrap(),
            1,
            "no helper: open to the grid"
        );
        assert_eq!(a.get::<String>("name_mask").unwrap(), "张**");
        let n = by[&pn];
        assert_eq!(n.get::<i64>("level").unwrap(), 0);
        assert_eq!(
            n.get::<Option<Uuid>>("assignee_user_id").unwrap(),
            Some(helper)
        );
        assert_eq!(
            n.get::<chrono::DateTime<chrono::Utc>>("due_at").unwrap(),
            t.clock.now() + chrono::Duration::minutes(30)
        );
        // No name in clear in the change log of the checks.
        let clear = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT count(*) FROM change_log WHERE kind = 'welfare_checks' AND (after IS NULL OR CAST(after AS TEXT) LIKE '%张三丰%')",
                    &[],
                )
            })
            .await
            .unwrap();
        assert_eq!(clear, 0);
        // A street-wide activation covers B too; a plan without welfare checks creates none.
        let inc2 = start_incident(t.store(), w.street, welfare_body(30)).await;
        let inc3 = start_incident(
            t.store(),
            w.comm_a,
            body(json!({ "risks": ["flood"], "welfare_checks": false })),
        )
        .await;
        let counts = t
            .store()
            .read(move |c, _| {
                Ok((
                    c.query_i64(
                        "SELECT count(*) FROM welfare_checks WHERE incident_id = $1",
                        &params![inc2],
                    )?,
                    c.query_i64(
                        "SELECT count(*) FROM welfare_checks WHERE incident_id = $1",
                        &params![inc3],
                    )?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(counts, (3, 0));
    }
);

both_stores!(
    recording_checks_tasks_board_and_deactivation,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let grid2 = staff(&t, "grid_a2", Role::GridWorker, Scope::Grid(w.grid_a2)).await;
        let volu = user(
            &t,
            "vol_a",
            UserKind::Resident,
            Some((Role::Volunteer, Scope::Node(w.comm_a))),
            Some(w.person_a1n),
        )
        .await;
        let me = user_id(t.store(), "vol_a").await;
        add_volunteer(t.store(), w.comm_a, "钱志愿", &[], "available", Some(me)).await;
        let compound = vulnerable_world(t.store(), &w, None).await;
        // A third vulnerable person in A without a compound.
        let (comm_a, grid_a1, hh) = (w.comm_a, w.grid_a1, w.hh_a1n);
        t.store()
            .write(WriteCtx::system("third"), move |tx| {
                let sys = Caller::system();
                let p = anxin_store::people::create_person(
                    tx,
                    &sys,
                    &anxin_store::people::NewPerson::parse(&world::person_input(
                        "孙七", None, None, comm_a, grid_a1, hh,
                    ))?,
                )?;
                anxin_store::people::add_vulnerable(
                    tx,
                    &sys,
                    &anxin_store::people::VulnerableInput {
                        person_id: p.id,
                        category: "elderly_alone".into(),
                        helper_user_id: None,
                        contact_channel: "no_smartphone".into(),
                        notes: None,
                    },
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let inc = start_incident(t.store(), w.comm_a, welfare_body(30)).await;
        let board = |u: &User| {
            let (base, path) = (
                base.clone(),
                format!("/api/v1/incidents/{inc}/welfare/board"),
            );
            let u = User {
                name: u.name,
                cookie: u.cookie.clone(),
                csrf: u.csrf.clone(),
            };
            async move { get(&base, &u, &path).await.1 }
        };
        let b = board(&worker).await;
        assert_eq!(
            (b["total"].as_i64(), b["open"].as_i64()),
            (Some(3), Some(3)),
            "{b}"
        );
        let c = b["compounds"].as_array().unwrap();
        assert_eq!(c.len(), 2, "{b}");
        assert_eq!(
            c.iter().find(|l| l["compound_name"] == "望江苑").unwrap()["remaining"],
            1
        );

        let (s, list) = get(&base, &worker, &format!("/api/v1/incidents/{inc}/welfare")).await;
        assert_eq!(s, 200);
        let ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(list.to_string().contains("3栋 201"), "{list}");
        assert!(!list.to_string().contains("张三丰"));

        // A grid worker of another grid cannot see or record; the volunteer only after accepting.
        let rec = |i: &str| format!("/api/v1/welfare/{i}/record");
        let (s, _) = post(&base, &grid2, &rec(&ids[0]), json!({ "outcome": "safe" })).await;
        assert_eq!(s, 404);
        let (s, _) = post(&base, &volu, &rec(&ids[0]), json!({ "outcome": "safe" })).await;
        assert_eq!(s, 404);
        let (_, mine) = get(&base, &volu, "/api/v1/welfare?mine=true").await;
        assert_eq!(mine.as_array().unwrap().len(), 0);
        let (_, co) = get(&base, &volu, "/api/v1/callouts?mine=true").await;
        let cid = co[0]["id"].as_str().unwrap().to_owned();
        let (s, _) = post(
            &base,
            &volu,
            &format!("/api/v1/callouts/{cid}/accept"),
            json!({}),
        )
        .await;
        assert_eq!(s, 200);
        let (_, mine) = get(&base, &volu, "/api/v1/welfare?mine=true").await;
        assert_eq!(mine.as_array().unwrap().len(), 3);

        // Validation, then safe by the volunteer (through the page form), need help by the
        // grid worker (a task), moved by the community worker.
        let (s, r) = post(&base, &volu, &rec(&ids[0]), json!({ "outcome": "fine" })).await;
        assert_eq!(
            (s, code(&r), r["error"]["details"]["field"].as_str()),
            (422, "value.invalid", Some("outcome"))
        );
        let (s, r) = post(&base, &worker, &rec(&ids[2]), json!({ "outcome": "moved" })).await;
        assert_eq!((s, code(&r)), (422, "welfare.place_required"), "{r}");
        let (s, r) = post(
            &base,
            &worker,
            &rec(&ids[2]),
            json!({ "outcome": "moved", "facility_id": Uuid::now_v7() }),
        )
        .await;
        assert_eq!((s, code(&r)), (422, "welfare.facility_not_open"), "{r}");
        let (s, _) = post(
            &base,
            &volu,
            &format!("/resident/welfare/{}/record", ids[0]),
            json!({ "outcome": "safe" }),
        )
        .await;
        assert_eq!(s, 303);
        let b = board(&worker).await;
        assert_eq!(
            (b["open"].as_i64(), b["safe"].as_i64()),
            (Some(2), Some(1)),
            "{b}"
        );
        let (s, r) = post(&base, &volu, &rec(&ids[0]), json!({ "outcome": "safe" })).await;
        assert_eq!((s, code(&r)), (409, "welfare.already_recorded"), "{r}");
        let (s, r) = post(
            &base,
            &grid,
            &rec(&ids[1]),
            json!({ "outcome": "need_help", "note": "需要送药" }),
        )
        .await;
        assert_eq!((s, r["status"].as_str()), (200, Some("need_help")), "{r}");
        let task: Uuid = r["task_id"].as_str().unwrap().parse().unwrap();
        let (src, assignee) = t
            .store()
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT source, assignee_user_id FROM incident_tasks WHERE id = $1",
                        &params![task],
                    )?
                    .unwrap();
                Ok((
                    r.get::<String>("source")?,
                    r.get::<Option<Uuid>>("assignee_user_id")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(src, "welfare");
        assert_eq!(assignee, Some(user_id(t.store(), "grid_a1").await));
        let (s, r) = post(
            &base,
            &worker,
            &rec(&ids[2]),
            json!({ "outcome": "moved", "place": "亲戚家" }),
        )
        .await;
        assert_eq!((s, r["moved_place"].as_str()), (200, Some("亲戚家")), "{r}");
        let b = board(&worker).await;
        assert_eq!(
            (
                b["open"].as_i64(),
                b["safe"].as_i64(),
                b["need_help"].as_i64(),
                b["moved"].as_i64()
            ),
            (Some(0), Some(1), Some(1), Some(1)),
            "{b}"
        );
        // The board page renders with the counts; the volunteer's page lists nothing left.
        let html = client()
            .get(format!("{base}/manage/incidents/{inc}/welfare"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("data-remaining=\"0\"") && html.contains("望江苑"),
            "{html}"
        );
        let html = client()
            .get(format!(
                "{base}/manage/incidents/{inc}/welfare?compound_id={compound}"
            ))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("张**") && !html.contains("孙*</td>"),
            "{html}"
        );
        let html = client()
            .get(format!("{base}/resident/callouts"))
            .header("cookie", &volu.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("没有待确认的人员"), "{html}");
        // Every record is on the timeline, masked.
        let log = t
            .store()
            .read(move |c, _| {
                c.query("SELECT kind, summary FROM incident_log WHERE incident_id = $1 AND kind LIKE 'welfare.%'", &params![inc])?
                    .iter()
                    .map(|r| Ok(format!("{} {}", r.get::<String>("kind")?, r.get::<String>("summary")?)))
                    .collect::<anxin_store::Result<Vec<_>>>()
            })
            .await
            .unwrap()
            .join("\n");
        for k in ["welfare.safe", "welfare.need_help", "welfare.moved"] {
            assert!(log.contains(k), "{log}");
        }
        assert!(!log.contains("张三丰") && !log.contains("孙七"), "{log}");

        // A second incident closed with checks still open: closed_unchecked, counted.
        let inc2 = start_incident(t.store(), w.comm_a, welfare_body(30)).await;
        let (wsum, _) = deactivate(t.store(), inc2).await;
        assert_eq!(wsum["closed_unchecked"], 3);
        let (_, b2) = get(
            &base,
            &worker,
            &format!("/api/v1/incidents/{inc2}/welfare/board"),
        )
        .await;
        assert_eq!(
            (b2["open"].as_i64(), b2["closed_unchecked"].as_i64()),
            (Some(0), Some(3)),
            "{b2}"
        );
    }
);

both_stores!(
    unchecked_people_escalate_on_the_clock,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let _helper = staff(&t, "helper_a", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let _cw = staff(&t, "cw_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let helper = user_id(t.store(), "helper_a").await;
        let cw = user_id(t.store(), "cw_a").await;
        let comm_a = w.comm_a;
        // The community worker is on the duty list with a phone.
        t.store()
            .write(WriteCtx::system("duty"), move |tx| {
                anxin_store::places::create_duty(
                    tx,
                    &Caller::system(),
                    &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                        node_id: Some(comm_a),
                        duty: Some("防汛值班".into()),
                        responsible: Some("社区值班员".into()),
                        user_id: Some(cw),
                        phone: Some("13600000001".into()),
                    })?,
                )
            })
            .await
            .unwrap();
        vulnerable_world(t.store(), &w, Some(helper)).await;
        let inc = start_incident(t.store(), w.comm_a, welfare_body(20)).await;
        let pn = w.person_a1n;
        assert_eq!(check_state(t.store(), inc, pn).await.0, 0);
        // The board counts escalations, not where activation put a check (one without a helper
        // starts with the grid).
        let escalated_on_board = || async {
            t.store()
                .read(move |c, _| {
                    anxin_store::ops::welfare::board(c, &Caller::system(), inc).map(|b| b.escalated)
                })
                .await
                .unwrap()
        };
        assert_eq!(escalated_on_board().await, 0);
        // Not yet due: nothing moves.
        t.clock.advance(chrono::Duration::minutes(19));
        let r = anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(r.escalated, 0);
        // Due: helper → grid workers (and 张三丰, already with the grid, → community workers).
        t.clock.advance(chrono::Duration::minutes(2));
        let r = anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(r.escalated, 2);
        assert_eq!(escalated_on_board().await, 2);
        let (l, a, due) = check_state(t.store(), inc, pn).await;
        assert_eq!((l, a), (1, None));
        assert_eq!(due, t.clock.now() + chrono::Duration::minutes(20));
        assert_eq!(r.notified, 1, "the community worker with a duty phone");
        // Running again at once changes nothing.
        let r = anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(r, anxin::ops::welfare::Report::default());
        t.clock.advance(chrono::Duration::minutes(21));
        anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(check_state(t.store(), inc, pn).await.0, 2);
        t.clock.advance(chrono::Duration::minutes(21));
        anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(check_state(t.store(), inc, pn).await.0, 3);
        t.clock.advance(chrono::Duration::minutes(21));
        let r = anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(r.escalated, 0, "street officers are the top");
        assert_eq!(check_state(t.store(), inc, pn).await.0, 3);
        let (logged, sms) = t
            .store()
            .read(move |c, _| {
                Ok((
                    c.query_i64(
                        "SELECT count(*) FROM incident_log WHERE incident_id = $1 AND kind = 'welfare.escalated'",
                        &params![inc],
                    )?,
                    c.query_i64(
                        "SELECT count(*) FROM notifications WHERE template = 'welfare_escalated'",
                        &[],
                    )?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(logged, 5, "李四 three times, 张三丰 twice");
        assert_eq!(sms, 2, "the community worker, once per incident and level");
        // Recording stops it; a closed incident escalates nothing.
        deactivate(t.store(), inc).await;
        t.clock.advance(chrono::Duration::minutes(60));
        let r = anxin::ops::welfare::run(&t.app).await.unwrap();
        assert_eq!(r.escalated, 0);
    }
);
