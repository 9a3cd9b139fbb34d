//! Stories of the working-day calendar, the risk register and the risk map (owner: calendar &
//! risks): the calendar as data (CRUD, validation, change log, `load` and deadlines moving with
//! an edit), the shipped years against an independent published calendar, risks on the 5×5
//! matrix, the review-date rule, reviews, reminders once each, and scoping.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::calendar::{self as dc, DayKind, Term, WorkCalendar};
use anxin_domain::{Clock, Role, Scope, SHANGHAI};
use anxin_store::hazards::calendar::{self, DayInput};
use anxin_store::hazards::risks::{self, RiskInput};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, WriteCtx};
use chrono::{NaiveDate, TimeZone};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, code, staff, World};

async fn user_id(store: &Store, username: &str) -> Uuid {
    let u = username.to_owned();
    store
        .read(move |c, _| {
            c.query_one("SELECT id FROM users WHERE username = $1", &params![u])?
                .unwrap()
                .get("id")
        })
        .await
        .unwrap()
}

/// A staff account with a community-worker grant on `node`, made with the store only (for `a1`,
/// which has no app to sign in to).
async fn owner_in(store: &Store, node: Uuid, name: String) -> Uuid {
    store
        .write(WriteCtx::system("risks-owner"), move |tx| {
            world::create_staff(tx, &name, Role::CommunityWorker, Scope::Node(node))
        })
        .await
        .unwrap()
}

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a located risk with one review.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    let owner = owner_in(
        store,
        comm_a,
        format!("risk_owner_{}", Uuid::now_v7().simple()),
    )
    .await;
    store
        .write(WriteCtx::system("risks-a1"), move |tx| {
            let sys = Caller::system();
            let r = risks::create(
                tx,
                &sys,
                &RiskInput {
                    node_id: Some(comm_a),
                    risk_type: Some("flood".into()),
                    title: Some("府河沿线内涝".into()),
                    likelihood: Some(4),
                    consequence: Some(4),
                    owner_user_id: Some(owner),
                    lon: Some(104.09),
                    lat: Some(30.66),
                    ..RiskInput::default()
                },
                6,
            )?;
            let (_, review) = risks::review(
                tx,
                &sys,
                r.id,
                &risks::RiskReviewInput {
                    note: Some("汛前检查".into()),
                    ..risks::RiskReviewInput::default()
                },
                6,
            )?;
            Ok(HashMap::from([
                ("risks", r.id),
                ("risk_reviews", review.id),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/risks" => json!({
            "node_id": w.comm_a, "risk_type": "fire", "title": "闯入风险",
            "likelihood": 2, "consequence": 2, "owner_user_id": Uuid::nil()
        }),
        "/api/v1/risks/{id}" => json!({ "title": "闯入风险" }),
        "/api/v1/risks/{id}/reviews" => json!({ "note": "闯入评审" }),
        "/manage/risks" => json!({
            "node_id": w.comm_a.to_string(), "risk_type": "fire", "title": "闯入风险",
            "likelihood": "2", "consequence": "2", "owner_user_id": Uuid::nil().to_string()
        }),
        "/manage/risks/{id}" => json!({ "title": "闯入风险" }),
        "/manage/risks/{id}/reviews" => json!({ "note": "闯入评审" }),
        "/manage/calendar" => json!({ "date": "2027-01-01", "kind": "holiday", "name": "闯入" }),
        "/manage/calendar/remove" => json!({ "date": "2026-10-01" }),
        "/api/v1/calendar" => json!({ "date": "2027-01-01", "kind": "holiday", "name": "闯入" }),
        "/api/v1/calendar/{date}" => json!({ "name": "闯入" }),
        _ => return None,
    })
}

fn at(y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::Utc> {
    SHANGHAI
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store.read(move |c, _| c.query_i64(sql, &[])).await.unwrap()
}

// ---- the calendar ------------------------------------------------------------------------------

both_stores!(calendar_crud_and_validation, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let admin = staff(&t, "sysadmin", Role::SystemAdmin, Scope::Node(w.city)).await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let base = t.serve().await;

    // The shipped 2026 (国办发明电〔2025〕7号): 19 weekdays off and 6 working weekend days.
    let (s, days) = call(&base, &admin, "GET", "/api/v1/calendar?year=2026", None).await;
    assert_eq!(s, 200, "{days}");
    let days = days.as_array().unwrap().clone();
    assert_eq!(days.len(), 25);
    let oct10 = days.iter().find(|d| d["date"] == "2026-10-10").unwrap();
    assert_eq!(
        (oct10["kind"].as_str(), oct10["weekday"].as_i64()),
        (Some("workday"), Some(6))
    );
    assert_eq!(oct10["shipped"], true);
    // Only administrators read or edit it.
    let (s, b) = call(&base, &worker, "GET", "/api/v1/calendar?year=2026", None).await;
    assert_eq!((s, code(&b)), (403, "calendar.not_allowed"));
    let (s, _) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/calendar",
        Some(json!({ "date": "2027-01-01", "kind": "holiday", "name": "元旦" })),
    )
    .await;
    assert_eq!(s, 403);

    let before = count(t.store(), "SELECT count(*) FROM calendar_days").await;
    // Bad input names the field and writes nothing.
    for (body, status, want, field) in [
        // 2027-01-02 is a Saturday.
        (
            json!({ "date": "2027-01-02", "kind": "holiday", "name": "元旦" }),
            422,
            "calendar.holiday_on_weekend",
            "date",
        ),
        // 2027-01-04 is a Monday.
        (
            json!({ "date": "2027-01-04", "kind": "workday", "name": "元旦" }),
            422,
            "calendar.workday_on_weekday",
            "date",
        ),
        (
            json!({ "date": "2027-13-01", "kind": "holiday", "name": "元旦" }),
            422,
            "value.invalid",
            "date",
        ),
        (
            json!({ "kind": "holiday", "name": "元旦" }),
            422,
            "value.required",
            "date",
        ),
        (
            json!({ "date": "2027-01-01", "kind": "festival", "name": "元旦" }),
            422,
            "value.invalid",
            "kind",
        ),
        (
            json!({ "date": "2027-01-01", "kind": "holiday" }),
            422,
            "value.required",
            "name",
        ),
        (
            json!({ "date": "1999-01-01", "kind": "holiday", "name": "元旦" }),
            422,
            "calendar.year_out_of_range",
            "date",
        ),
        (
            json!({ "date": "2026-10-01", "kind": "holiday", "name": "国庆节" }),
            409,
            "calendar.day_exists",
            "",
        ),
    ] {
        let (s, b) = call(
            &base,
            &admin,
            "POST",
            "/api/v1/calendar",
            Some(body.clone()),
        )
        .await;
        assert_eq!((s, code(&b)), (status, want), "{body}: {b}");
        if !field.is_empty() {
            assert_eq!(b["error"]["details"]["field"], field, "{body}");
        }
    }
    assert_eq!(
        count(t.store(), "SELECT count(*) FROM calendar_days").await,
        before
    );

    // Add, change, set a new one by PUT, remove.
    let (s, d) = call(
        &base,
        &admin,
        "POST",
        "/api/v1/calendar",
        Some(json!({ "date": "2027-01-01", "kind": "holiday", "name": "元旦" })),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(
        (d["kind"].as_str(), d["shipped"].as_bool()),
        (Some("holiday"), Some(false))
    );
    let (s, d) = call(
        &base,
        &admin,
        "PUT",
        "/api/v1/calendar/2027-01-01",
        Some(json!({ "name": "元旦节" })),
    )
    .await;
    assert_eq!((s, d["name"].as_str()), (200, Some("元旦节")), "{d}");
    let (s, b) = call(
        &base,
        &admin,
        "PUT",
        "/api/v1/calendar/2027-01-01",
        Some(json!({ "kind": "workday" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "calendar.workday_on_weekday"), "{b}");
    let (s, d) = call(
        &base,
        &admin,
        "PUT",
        "/api/v1/calendar/2027-02-06",
        Some(json!({ "kind": "workday", "name": "春节" })),
    )
    .await;
    assert_eq!((s, d["weekday"].as_i64()), (200, Some(6)), "{d}");
    let (s, list) = call(&base, &admin, "GET", "/api/v1/calendar?year=2027", None).await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 2), "{list}");
    let (s, _) = call(&base, &admin, "DELETE", "/api/v1/calendar/2027-02-06", None).await;
    assert_eq!(s, 204);
    let (s, b) = call(&base, &admin, "DELETE", "/api/v1/calendar/2027-02-06", None).await;
    assert_eq!((s, code(&b)), (404, "record.not_found"));
    let (s, b) = call(&base, &admin, "GET", "/api/v1/calendar/not-a-date", None).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (422, Some("date"))
    );
    // A shipped day an administrator edits is no longer marked shipped.
    let (s, d) = call(
        &base,
        &admin,
        "PUT",
        "/api/v1/calendar/2026-10-10",
        Some(json!({ "name": "国庆节调休" })),
    )
    .await;
    assert_eq!((s, d["shipped"].as_bool()), (200, Some(false)), "{d}");
    // Every change is in the change log: insert, update, insert, delete, update.
    let logged = count(
        t.store(),
        "SELECT count(*) FROM change_log WHERE kind = 'calendar_days'",
    )
    .await;
    assert_eq!(logged, 5);
    let deleted = count(
        t.store(),
        "SELECT count(*) FROM change_log WHERE kind = 'calendar_days' AND op = 'delete'",
    )
    .await;
    assert_eq!(deleted, 1);
});

both_stores!(
    load_reflects_an_edit_and_deadlines_move,
    |t: TestApp| async move {
        // The seeded store is exactly the shipped calendar.
        let stored = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert_eq!(stored, WorkCalendar::shipped());
        assert_eq!(stored.days().count(), dc::SHIPPED.len());
        // A major hazard found Friday 4 December 2026: 7 working days (Mon 7 … Fri 11, Mon 14,
        // Tue 15) → Tuesday 15 December 24:00.
        let found = at(2026, 12, 4, 15);
        assert_eq!(due(&stored, found), at(2026, 12, 16, 0));
        // An administrator adds a (hypothetical) day off on Wednesday 9 December: one day later.
        t.store()
            .write(WriteCtx::system("cal"), |tx| {
                calendar::add(
                    tx,
                    &Caller::system(),
                    &DayInput {
                        date: Some("2026-12-09".into()),
                        kind: Some("holiday".into()),
                        name: Some("测试假日".into()),
                    },
                )
            })
            .await
            .unwrap();
        let edited = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert!(!edited.is_working_day(NaiveDate::from_ymd_opt(2026, 12, 9).unwrap()));
        assert_eq!(due(&edited, found), at(2026, 12, 17, 0));
        // And a working Saturday on 12 December brings it back.
        t.store()
            .write(WriteCtx::system("cal"), |tx| {
                calendar::set(
                    tx,
                    &Caller::system(),
                    NaiveDate::from_ymd_opt(2026, 12, 12).unwrap(),
                    &DayInput {
                        kind: Some("workday".into()),
                        name: Some("测试调休".into()),
                        ..DayInput::default()
                    },
                )
            })
            .await
            .unwrap();
        let edited = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert_eq!(due(&edited, found), at(2026, 12, 16, 0));
        // Removing both restores the shipped calendar.
        t.store()
            .write(WriteCtx::system("cal"), |tx| {
                let sys = Caller::system();
                calendar::remove(tx, &sys, NaiveDate::from_ymd_opt(2026, 12, 9).unwrap())?;
                calendar::remove(tx, &sys, NaiveDate::from_ymd_opt(2026, 12, 12).unwrap())
            })
            .await
            .unwrap();
        let back = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert_eq!(back, WorkCalendar::shipped());
        // Withdrawing a shipped 调休 (Saturday 10 October 2026) moves the National Day deadline
        // a day on; adding it back restores it.
        let eve = at(2026, 9, 30, 10);
        assert_eq!(due(&back, eve), at(2026, 10, 16, 0));
        let oct10 = NaiveDate::from_ymd_opt(2026, 10, 10).unwrap();
        t.store()
            .write(WriteCtx::system("cal"), move |tx| {
                calendar::remove(tx, &Caller::system(), oct10)
            })
            .await
            .unwrap();
        let withdrawn = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert!(!withdrawn.is_working_day(oct10));
        assert_eq!(due(&withdrawn, eve), at(2026, 10, 17, 0));
        t.store()
            .write(WriteCtx::system("cal"), |tx| {
                calendar::add(
                    tx,
                    &Caller::system(),
                    &DayInput {
                        date: Some("2026-10-10".into()),
                        kind: Some("workday".into()),
                        name: Some("国庆节".into()),
                    },
                )
            })
            .await
            .unwrap();
        let again = t.store().read(|c, _| calendar::load(c)).await.unwrap();
        assert_eq!(again, WorkCalendar::shipped());
        // Every change logged: two added (inserts), both removed (deletes), the shipped day
        // withdrawn (an insert) and added back (an update).
        let logged = count(
            t.store(),
            "SELECT count(*) FROM change_log WHERE kind = 'calendar_days'",
        )
        .await;
        assert_eq!(logged, 6);
    }
);

fn due(cal: &WorkCalendar, found: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    dc::due(found, Term::WorkingDays(7), cal)
}

/// The independent check: the shipped 2025 and 2026, day by day, against the `chinesecalendar`
/// package (PyPI, pinned in scripts/calendar-check, which installs it when missing). Where the
/// package and the State Council's notice disagree, the notice wins: such a day would be listed
/// in `NOTICE_OVERRIDES` with the notice's wording, and the test checks the notice there. For
/// 2025 and 2026 chinesecalendar 1.11.0 agrees with both notices on every day, so the list is
/// empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_calendar_matches_chinesecalendar() {
    /// (date, working day per the notice, the notice's words).
    const NOTICE_OVERRIDES: &[(&str, bool, &str)] = &[];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("scripts/calendar-check"))
        .args(["2025", "2026"])
        .current_dir(root)
        .output()
        .expect("scripts/calendar-check runs");
    assert!(
        out.status.success(),
        "scripts/calendar-check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: HashMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), 365 + 365);
    // The shipped list and the seeded store both.
    let t = TestApp::new(crate::support::Backend::Sqlite).await;
    let stored = t.store().read(|c, _| calendar::load(c)).await.unwrap();
    let shipped = WorkCalendar::shipped();
    assert_eq!(stored, shipped);
    let mut checked = 0;
    for y in dc::SHIPPED_YEARS {
        let mut d = NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        while chrono::Datelike::year(&d) == y {
            let key = d.to_string();
            let pkg = &theirs[&key];
            let mut want = pkg["workday"].as_bool().unwrap();
            if let Some((_, notice, words)) = NOTICE_OVERRIDES.iter().find(|(k, ..)| *k == key) {
                assert_ne!(
                    want, *notice,
                    "{key}: the package now agrees; drop the override"
                );
                eprintln!(
                    "{key}: chinesecalendar differs from the notice ({words}); the notice wins"
                );
                want = *notice;
            }
            assert_eq!(shipped.is_working_day(d), want, "{key}: package {pkg}");
            // An exception of ours is a holiday or an adjusted working day there too.
            match shipped.special(d) {
                Some((DayKind::Holiday, _)) => assert!(pkg["holiday"].as_bool().unwrap(), "{key}"),
                Some((DayKind::Workday, _)) => {
                    assert!(dc::is_weekend(d) && want, "{key}")
                }
                None => {}
            }
            checked += 1;
            d = d.succ_opt().unwrap();
        }
    }
    assert_eq!(checked, 730);
}

// ---- risks -------------------------------------------------------------------------------------

both_stores!(
    risks_on_the_matrix_with_the_review_rule,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let inspector = staff(&t, "inspector_a", Role::Inspector, Scope::Node(w.comm_a)).await;
        let officer = staff(
            &t,
            "street_officer",
            Role::StreetOfficer,
            Scope::Node(w.street),
        )
        .await;
        let me = user_id(t.store(), "worker_a").await;
        let b_user = user_id(t.store(), "worker_b").await;
        let base = t.serve().await;
        // 2026-11-02, Shanghai.
        let today = t.clock.now().with_timezone(&SHANGHAI).date_naive();
        let good = json!({
            "node_id": w.comm_a, "risk_type": "gas", "title": "老旧小区燃气管道腐蚀",
            "description": "3号楼立管锈蚀", "likelihood": 4, "consequence": 5,
            "controls": "每周巡检；安装报警器", "owner_user_id": me,
            "lon": 104.091, "lat": 30.661, "place_label": "3号楼"
        });
        let before = count(t.store(), "SELECT count(*) FROM risks").await;
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            b[k] = v;
            b
        };
        for (body, want, field) in [
            (
                with("likelihood", json!(6)),
                "risk.score_range",
                "likelihood",
            ),
            (
                with("consequence", json!(0)),
                "risk.score_range",
                "consequence",
            ),
            (with("title", json!("  ")), "value.required", "title"),
            (
                with("risk_type", json!("meteor")),
                "value.invalid",
                "risk_type",
            ),
            (
                with("owner_user_id", json!(b_user)),
                "risk.owner_out_of_scope",
                "owner_user_id",
            ),
            (with("lat", Value::Null), "value.required", "lat"),
            (with("lon", json!(200.0)), "value.invalid", "lon"),
            (
                with("next_review_on", json!("2027-05-03")),
                "risk.review_too_late",
                "next_review_on",
            ),
            (
                with("next_review_on", json!("2026-11-01")),
                "risk.review_in_past",
                "next_review_on",
            ),
            (
                with("node_id", json!(w.comm_b)),
                "record.reference_invalid",
                "node_id",
            ),
        ] {
            let (s, b) = call(&base, &worker, "POST", "/api/v1/risks", Some(body.clone())).await;
            assert_eq!((s, code(&b)), (422, want), "{b}");
            assert_eq!(b["error"]["details"]["field"], field, "{b}");
        }
        assert_eq!(count(t.store(), "SELECT count(*) FROM risks").await, before);

        // 4 × 5 = 20: extreme; the next review defaults to six months on.
        let (s, r) = call(&base, &worker, "POST", "/api/v1/risks", Some(good.clone())).await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(
            (r["score"].as_i64(), r["level"].as_str()),
            (Some(20), Some("extreme"))
        );
        assert_eq!(r["next_review_on"], "2027-05-02");
        assert_eq!(r["review_overdue"], false);
        let id = r["id"].as_str().unwrap().to_owned();
        // The latest allowed date is accepted.
        let (s, r2) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/risks",
            Some(json!({
                "node_id": w.comm_a, "risk_type": "flood", "title": "地下车库倒灌",
                "likelihood": 2, "consequence": 2, "owner_user_id": me,
                "next_review_on": risks::latest_review(today, 6).to_string()
            })),
        )
        .await;
        assert_eq!((s, r2["level"].as_str()), (201, Some("low")), "{r2}");
        assert!(r2["lon"].is_null());

        // Re-scoring moves the level: 4 × 2 = 8, medium.
        let path = format!("/api/v1/risks/{id}");
        let (s, r) = call(
            &base,
            &worker,
            "PATCH",
            &path,
            Some(json!({ "consequence": 2 })),
        )
        .await;
        assert_eq!(
            (s, r["score"].as_i64(), r["level"].as_str()),
            (200, Some(8), Some("medium")),
            "{r}"
        );
        let (s, b) = call(
            &base,
            &worker,
            "PATCH",
            &path,
            Some(json!({ "next_review_on": "2027-06-01" })),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "risk.review_too_late"));
        let (s, b) = call(
            &base,
            &worker,
            "PATCH",
            &path,
            Some(json!({ "node_id": w.comm_b })),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "risk.node_fixed"));

        // Filters.
        let (_, l) = call(&base, &worker, "GET", "/api/v1/risks?level=medium", None).await;
        let ids: Vec<&str> = l
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![id.as_str()]);
        let (_, l) = call(&base, &worker, "GET", "/api/v1/risks?risk_type=flood", None).await;
        assert_eq!(l.as_array().unwrap().len(), 1);
        let (s, b) = call(&base, &worker, "GET", "/api/v1/risks?level=purple", None).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("level"))
        );
        // The map layer: only located risks.
        let resp = crate::support::client()
            .get(format!("{base}/api/v1/risks.geojson"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/geo+json"
        );
        let g: Value = resp.json().await.unwrap();
        assert_eq!(g["type"], "FeatureCollection");
        let f = g["features"].as_array().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0]["geometry"]["coordinates"], json!([104.091, 30.661]));
        assert_eq!(f[0]["properties"]["level"], "medium");

        // The street officer reads it (Supervise / ManageRisks above); outsiders and the
        // third-party inspector get a missing record.
        let (s, _) = call(&base, &officer, "GET", &path, None).await;
        assert_eq!(s, 200);
        for u in [&outsider, &inspector] {
            let (s, b) = call(&base, u, "GET", &path, None).await;
            assert_eq!((s, code(&b)), (404, "record.not_found"), "{}", u.name);
            let (s, _) = call(&base, u, "PATCH", &path, Some(json!({ "title": "改" }))).await;
            assert_eq!(s, 404, "{}", u.name);
            let (_, l) = call(&base, u, "GET", "/api/v1/risks", None).await;
            assert!(!l.to_string().contains(&id), "{} lists it", u.name);
            let (_, g) = call(&base, u, "GET", "/api/v1/risks.geojson", None).await;
            assert!(!g.to_string().contains(&id), "{} maps it", u.name);
        }

        // Retire: gone from the default list, shown with status=retired; not reviewed.
        let (s, _) = call(
            &base,
            &worker,
            "PATCH",
            &path,
            Some(json!({ "status": "retired" })),
        )
        .await;
        assert_eq!(s, 200);
        let (_, l) = call(&base, &worker, "GET", "/api/v1/risks", None).await;
        assert!(!l.to_string().contains(&id));
        let (_, l) = call(&base, &worker, "GET", "/api/v1/risks?status=retired", None).await;
        assert!(l.to_string().contains(&id));
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("{path}/reviews"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "risk.retired"));
    }
);

both_stores!(
    reviews_record_scores_and_reset_the_date,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let me = user_id(t.store(), "worker_a").await;
        let base = t.serve().await;
        let (s, r) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/risks",
            Some(json!({
                "node_id": w.comm_a, "risk_type": "structural", "title": "危房",
                "likelihood": 3, "consequence": 4, "owner_user_id": me,
                "next_review_on": "2026-12-01"
            })),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_owned();
        // A month later it is overdue (a new session: the first one has expired).
        t.clock.advance(chrono::Duration::days(31));
        let worker = staff(
            &t,
            "worker_a_later",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let (_, r) = call(&base, &worker, "GET", &format!("/api/v1/risks/{id}"), None).await;
        assert_eq!(r["review_overdue"], true);
        let (_, l) = call(&base, &worker, "GET", "/api/v1/risks?overdue=true", None).await;
        assert_eq!(l.as_array().unwrap().len(), 1);
        // A review re-scores it and sets the next date (default six months from today).
        let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/risks/{id}/reviews"),
        Some(json!({ "likelihood": 5, "consequence": 5, "note": "裂缝扩大", "next_review_on": "2027-07-04" })),
    )
    .await;
        assert_eq!((s, code(&b)), (422, "risk.review_too_late"), "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/risks/{id}/reviews"),
            Some(json!({ "likelihood": 5, "consequence": 5, "note": "裂缝扩大" })),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(
            (
                b["risk"]["level"].as_str(),
                b["risk"]["review_overdue"].as_bool()
            ),
            (Some("extreme"), Some(false))
        );
        assert_eq!(b["risk"]["next_review_on"], "2027-06-03");
        assert_eq!(b["review"]["score"], 25);
        let (s, l) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/risks/{id}/reviews"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let l = l.as_array().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0]["note"].as_str(), l[0]["likelihood"].as_i64()),
            (Some("裂缝扩大"), Some(5))
        );
        assert!(l[0]["reviewer_label"]
            .as_str()
            .unwrap()
            .starts_with("worker_a_later"));
        // Reviews are in the change log.
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM change_log WHERE kind = 'risk_reviews'"
            )
            .await,
            1
        );
    }
);

both_stores!(reminders_go_once_each, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let owner = owner_in(t.store(), w.comm_a, "owner_a".into()).await;
    let comm_a = w.comm_a;
    // 2026-11-02 now; review due 2026-12-01.
    let id = t
        .store()
        .write(WriteCtx::system("risk"), move |tx| {
            risks::create(
                tx,
                &Caller::system(),
                &RiskInput {
                    node_id: Some(comm_a),
                    risk_type: Some("fire".into()),
                    title: Some("电动车楼道充电".into()),
                    likelihood: Some(3),
                    consequence: Some(3),
                    owner_user_id: Some(owner),
                    next_review_on: Some("2026-12-01".into()),
                    ..RiskInput::default()
                },
                6,
            )
            .map(|r| r.id)
        })
        .await
        .unwrap();
    let sent = || async {
        t.store()
            .read(move |c, _| risks::reminders_of(c, id))
            .await
            .unwrap()
            .into_iter()
            .map(|(k, d)| format!("{k} {d}"))
            .collect::<Vec<_>>()
    };
    let run = || async { anxin::hazards::reminders::run(&t.app).await.unwrap() };
    // 29 days ahead: nothing (reminded 14 days before).
    assert_eq!(run().await.reminded, 0);
    // 17 November 09:00: 14 days before → due soon, once.
    t.clock.advance(chrono::Duration::days(15));
    assert_eq!(run().await.reminded, 1);
    assert_eq!(run().await.reminded, 0);
    t.clock.advance(chrono::Duration::days(5));
    assert_eq!(run().await.reminded, 0);
    assert_eq!(sent().await, vec!["due_soon 2026-12-01"]);
    // 1 December is the last day; 2 December it is overdue: once.
    t.clock.advance(chrono::Duration::days(9));
    assert_eq!(run().await.reminded, 0);
    t.clock.advance(chrono::Duration::days(1));
    let r = run().await;
    assert_eq!(
        (r.reminded, r.notified),
        (1, 0),
        "no duty phone: recorded, no SMS"
    );
    assert_eq!(run().await.reminded, 0);
    assert_eq!(
        sent().await,
        vec!["due_soon 2026-12-01", "overdue 2026-12-01"]
    );
    // A review sets a new date; reminders start over for it.
    t.store()
        .write(WriteCtx::system("review"), move |tx| {
            risks::review(
                tx,
                &Caller::system(),
                id,
                &risks::RiskReviewInput::default(),
                1,
            )
        })
        .await
        .unwrap();
    assert_eq!(run().await.reminded, 0);
    t.clock.advance(chrono::Duration::days(20));
    assert_eq!(run().await.reminded, 1);
    assert_eq!(sent().await.len(), 3);
});

both_stores!(reminders_reach_the_owner_by_sms, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let owner = owner_in(t.store(), w.comm_a, "owner_sms".into()).await;
    let comm_a = w.comm_a;
    t.store()
        .write(WriteCtx::system("duty"), move |tx| {
            let sys = Caller::system();
            anxin_store::places::create_duty(
                tx,
                &sys,
                &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                    node_id: Some(comm_a),
                    duty: Some("安全员".into()),
                    responsible: Some("风险责任人".into()),
                    user_id: Some(owner),
                    phone: Some("13600000002".into()),
                })?,
            )?;
            risks::create(
                tx,
                &sys,
                &RiskInput {
                    node_id: Some(comm_a),
                    risk_type: Some("geological".into()),
                    title: Some("边坡".into()),
                    likelihood: Some(2),
                    consequence: Some(5),
                    owner_user_id: Some(owner),
                    next_review_on: Some("2026-11-10".into()),
                    ..RiskInput::default()
                },
                6,
            )
        })
        .await
        .unwrap();
    let r = anxin::hazards::reminders::run(&t.app).await.unwrap();
    assert_eq!((r.reminded, r.notified), (1, 1));
    let r = anxin::hazards::reminders::run(&t.app).await.unwrap();
    assert_eq!((r.reminded, r.notified), (0, 0));
    let sms = count(
        t.store(),
        "SELECT count(*) FROM notifications WHERE template = 'risk_review'",
    )
    .await;
    assert_eq!(sms, 1);
});

// ---- pages -------------------------------------------------------------------------------------

async fn page(
    base: &str,
    u: &crate::world::User,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let c = crate::support::client();
    let mut req = c
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf);
    if method == "POST" {
        let mut f: Vec<(&str, &str)> = form.to_vec();
        f.push(("_csrf", &u.csrf));
        req = req.form(&f);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

both_stores!(
    pages_of_the_register_map_and_calendar,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let rec = a1(t.store(), &w, &HashMap::new()).await;
        let a1_risk = rec["risks"].to_string();
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let grid = staff(&t, "grid_a2", Role::GridWorker, Scope::Grid(w.grid_a2)).await;
        let admin = staff(&t, "sysadmin", Role::SystemAdmin, Scope::Node(w.city)).await;
        let me = user_id(t.store(), "worker_a").await.to_string();
        let base = t.serve().await;

        // The register: the A1 risk (4 × 4, high) in the list and its matrix cell.
        let (s, _, html) = page(&base, &worker, "GET", "/manage/risks", &[]).await;
        assert_eq!(s, 200);
        assert!(html.contains("风险矩阵") && html.contains(&a1_risk));
        assert!(
            html.contains(r#"data-likelihood="4" data-consequence="4" data-count="1""#),
            "{html}"
        );
        assert!(html.contains(r#"data-likelihood="5" data-consequence="5" data-count="0""#));
        let (_, _, en) = page(&base, &worker, "GET", "/manage/risks?lang=en", &[]).await;
        assert!(en.contains("Risk matrix (5×5)"));
        for u in [&outsider, &grid] {
            let (s, _, html) = page(&base, u, "GET", "/manage/risks", &[]).await;
            assert!(s == 200 && !html.contains(&a1_risk), "{}", u.name);
        }
        // A form error names the field; a good form lands on the risk.
        let form = |l: &'static str| {
            vec![
                ("node_id", w.comm_a.to_string()),
                ("risk_type", "fire".to_owned()),
                ("title", "楼道堆物".to_owned()),
                ("likelihood", l.to_owned()),
                ("consequence", "3".to_owned()),
                ("owner_user_id", me.clone()),
                ("lon", "104.08".to_owned()),
                ("lat", "30.65".to_owned()),
            ]
        };
        let bad = form("9");
        let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, _, html) = page(&base, &worker, "POST", "/manage/risks", &bad).await;
        assert_eq!(s, 422);
        assert!(
            html.contains(r#"data-code="risk.score_range" data-field="likelihood""#),
            "{html}"
        );
        let good = form("3");
        let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, to, _) = page(&base, &worker, "POST", "/manage/risks", &good).await;
        assert_eq!(s, 303);
        assert!(to.starts_with("/manage/risks/"));
        let (s, _, html) = page(&base, &worker, "GET", &to, &[]).await;
        assert!(
            s == 200 && html.contains("楼道堆物") && html.contains("一般风险"),
            "{html}"
        );
        // Review by form, and an edit that re-scores it.
        let (s, _, _) = page(
            &base,
            &worker,
            "POST",
            &format!("{to}/reviews"),
            &[
                ("likelihood", "4"),
                ("consequence", "3"),
                ("note", "已清理一半"),
            ],
        )
        .await;
        assert_eq!(s, 303);
        let (_, _, html) = page(&base, &worker, "GET", &to, &[]).await;
        assert!(
            html.contains("已清理一半") && html.contains("较大风险"),
            "{html}"
        );
        let (s, _, html) = page(&base, &worker, "POST", &to, &[("consequence", "7")]).await;
        assert!(s == 422 && html.contains(r#"data-field="consequence""#));
        // Outsiders: a risk answers like a missing one.
        let missing = format!("/manage/risks/{}", Uuid::now_v7());
        for u in [&outsider, &grid] {
            let (a, _, _) = page(&base, u, "GET", &format!("/manage/risks/{a1_risk}"), &[]).await;
            let (b, _, _) = page(&base, u, "GET", &missing, &[]).await;
            assert_eq!((a, b), (404, 404), "{}", u.name);
            let (a, _, _) = page(
                &base,
                u,
                "POST",
                &format!("/manage/risks/{a1_risk}/reviews"),
                &[("note", "x")],
            )
            .await;
            assert_eq!(a, 404, "{}", u.name);
        }
        // The map page lists the risks for screen readers and loads its script.
        let (s, _, html) = page(&base, &worker, "GET", "/manage/risk-map", &[]).await;
        assert!(s == 200 && html.contains(&a1_risk) && html.contains("/manage/risk-map.js"));
        let r = crate::support::client()
            .get(format!("{base}/manage/risk-map.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(r.text().await.unwrap().contains("/api/v1/hazards.geojson"));

        // The calendar: administrators only; the year as month grids.
        let (s, _, _) = page(&base, &worker, "GET", "/manage/calendar", &[]).await;
        assert_eq!(s, 403);
        let (s, _, html) = page(&base, &admin, "GET", "/manage/calendar?year=2026", &[]).await;
        assert_eq!(s, 200);
        assert!(html.contains(r#"data-date="2026-10-10" data-state="adjusted""#));
        assert!(html.contains(r#"data-date="2026-10-01" data-state="holiday""#));
        assert!(html.contains(r#"data-date="2026-10-03" data-state="off""#));
        assert!(html.contains(r#"<strong id="working-days">248</strong>"#));
        let (s, _, html) = page(
            &base,
            &admin,
            "POST",
            "/manage/calendar",
            &[
                ("date", "2027-01-02"),
                ("kind", "holiday"),
                ("name", "元旦"),
            ],
        )
        .await;
        assert_eq!(s, 422);
        assert!(
            html.contains(r#"data-code="calendar.holiday_on_weekend" data-field="date""#),
            "{html}"
        );
        let (s, to, _) = page(
            &base,
            &admin,
            "POST",
            "/manage/calendar",
            &[
                ("date", "2027-01-01"),
                ("kind", "holiday"),
                ("name", "元旦"),
            ],
        )
        .await;
        assert_eq!((s, to.as_str()), (303, "/manage/calendar?year=2027"));
        let (_, _, html) = page(&base, &admin, "GET", &to, &[]).await;
        assert!(html.contains(r#"data-date="2027-01-01" data-state="holiday""#));
        let (s, _, _) = page(
            &base,
            &admin,
            "POST",
            "/manage/calendar/remove",
            &[("date", "2027-01-01")],
        )
        .await;
        assert_eq!(s, 303);
        let (_, _, html) = page(&base, &admin, "GET", "/manage/calendar?year=2027", &[]).await;
        assert!(!html.contains(r#"data-date="2027-01-01" data-state="holiday""#));
    }
);
