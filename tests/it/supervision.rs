//! Stories of supervision (红黄牌): the figures of a small hand-built ledger checked against
//! numbers computed by hand (on-time share, overdue, inspections as scheduled, plans started
//! late), thresholds to cards with their reasons, ranking, who sees what, rounds on demand and
//! the quarterly job running once per quarter on the manual clock.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::{Clock, Role, ScopeKind, SHANGHAI};
use anxin_store::hazards::supervision::{self as sup, Line, RoundInput, TableQuery, Thresholds};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, StoreError, Value as V, WriteCtx};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, caller, staff, World};

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): an on-demand round under community A and A's score in it.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    store
        .write(WriteCtx::system("supervision-a1"), move |tx| {
            let r = sup::run_round(
                tx,
                &Caller::system(),
                &RoundInput {
                    node_id: comm_a,
                    quarter: None,
                },
                &Thresholds::default(),
            )?;
            let score: Uuid = tx
                .query_one(
                    "SELECT id FROM supervision_scores WHERE round_id = $1",
                    &params![r.id],
                )?
                .unwrap()
                .get("id")?;
            Ok(HashMap::from([
                ("supervision_rounds", r.id),
                ("supervision_scores", score),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    match path {
        "/api/v1/supervision/rounds" | "/manage/supervision" => {
            Some(json!({ "node_id": w.comm_a }))
        }
        _ => None,
    }
}

/// Local (Asia/Shanghai) time.
fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    SHANGHAI
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// A hazard as the ledger leaves it.
struct H {
    grade: &'static str,
    state: &'static str,
    found: DateTime<Utc>,
    due: DateTime<Utc>,
    plan_due: Option<DateTime<Utc>>,
    plan_started: Option<DateTime<Utc>>,
    closed: Option<DateTime<Utc>>,
    on_time: Option<bool>,
}

fn minor(due: DateTime<Utc>, closed: Option<DateTime<Utc>>, on_time: Option<bool>) -> H {
    H {
        grade: "minor",
        state: if closed.is_some() {
            "closed"
        } else {
            "remediating"
        },
        found: due - chrono::Duration::days(3),
        due,
        plan_due: None,
        plan_started: None,
        closed,
        on_time,
    }
}

async fn hazards(store: &Store, node: Uuid, list: Vec<H>) {
    store
        .write(WriteCtx::system("sup-test"), move |tx| {
            for h in &list {
                let id = tx.new_id();
                let now = tx.now();
                tx.insert(
                    "hazards",
                    &[
                        ("id", id.into()),
                        ("node_id", node.into()),
                        ("place_kind", "node".into()),
                        ("place_id", node.into()),
                        ("place_label", "社区".into()),
                        ("source", "staff".into()),
                        ("finding", "燃气软管老化".into()),
                        ("grade", h.grade.into()),
                        ("state", h.state.into()),
                        ("found_at", h.found.into()),
                        ("fix_due_at", h.due.into()),
                        ("plan_due_at", h.plan_due.into()),
                        ("plan_started_at", h.plan_started.into()),
                        ("fixed_at", h.closed.into()),
                        ("closed_at", h.closed.into()),
                        ("closed_on_time", h.on_time.into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// Three shelters in community A inspected monthly from 2026-01-01: in 2026-07 all three, in
/// 2026-08 two (one of them twice), in 2026-09 one (and one still in progress).
async fn shelter_schedule(store: &Store, comm: Uuid) {
    store
        .write(WriteCtx::system("sup-test"), move |tx| {
            let now = tx.now();
            let mut shelters = Vec::new();
            for i in 0..3 {
                let id = tx.new_id();
                tx.insert(
                    "facilities",
                    &[
                        ("id", id.into()),
                        ("node_id", comm.into()),
                        ("kind", "shelter".into()),
                        ("name", format!("避难场所{i}").into()),
                        ("status", "normal".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                shelters.push(id);
            }
            let template = tx.new_id();
            tx.insert(
                "inspection_templates",
                &[
                    ("id", template.into()),
                    ("node_id", comm.into()),
                    ("name", "避难场所月检".into()),
                    ("target_kind", "facility".into()),
                    ("facility_kind", "shelter".into()),
                    ("status", "active".into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let schedule = tx.new_id();
            tx.insert(
                "inspection_schedules",
                &[
                    ("id", schedule.into()),
                    ("node_id", comm.into()),
                    ("template_id", template.into()),
                    ("name", "避难场所每月检查".into()),
                    ("target_kind", "facility".into()),
                    ("period", "monthly".into()),
                    (
                        "starts_on",
                        V::Date(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
                    ),
                    ("active", true.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let done = [
                ("2026-07", 0, "done"),
                ("2026-07", 1, "done"),
                ("2026-07", 2, "done"),
                ("2026-08", 0, "done"),
                ("2026-08", 0, "done"),
                ("2026-08", 1, "done"),
                ("2026-09", 2, "done"),
                ("2026-09", 1, "in_progress"),
            ];
            for (key, target, status) in done {
                let id = tx.new_id();
                let when = at(2026, key[5..].parse().unwrap(), 10, 10);
                tx.insert(
                    "inspections",
                    &[
                        ("id", id.into()),
                        ("node_id", comm.into()),
                        ("template_id", template.into()),
                        ("schedule_id", schedule.into()),
                        ("period_key", key.into()),
                        ("target_kind", "facility".into()),
                        ("target_id", shelters[target].into()),
                        ("place_label", "避难场所".into()),
                        ("status", status.into()),
                        ("started_at", when.into()),
                        ("done_at", (status == "done").then_some(when).into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// A third community under the street, with nothing to score.
async fn community_c(store: &Store, street: Uuid) -> Uuid {
    store
        .write(WriteCtx::system("sup-test"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "nodes",
                &[
                    ("id", id.into()),
                    ("parent_id", street.into()),
                    ("level", "community".into()),
                    ("name", "静安社区".into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(id)
        })
        .await
        .unwrap()
}

/// The hand-built ledger (see each line for what it counts as in 2026-Q3 and, as of the test
/// clock 2026-11-02 09:00, in 2026-Q4).
async fn ledger(t: &TestApp, w: &World) -> Uuid {
    let s = t.store();
    hazards(
        s,
        w.comm_a,
        vec![
            // Q3: due, closed on time.
            minor(at(2026, 7, 10, 23), Some(at(2026, 7, 9, 15)), Some(true)),
            // Q3: due, closed late.
            minor(at(2026, 8, 10, 23), Some(at(2026, 8, 12, 15)), Some(false)),
            // Q3: due, still open: overdue at Q3's end and now.
            minor(at(2026, 9, 5, 23), None, None),
            // Q3: due, closed only in October: not on time, overdue at Q3's end, not now.
            minor(at(2026, 9, 20, 23), Some(at(2026, 10, 5, 9)), Some(false)),
            // Due in Q2 and still open: overdue at Q3's end and now, not due in Q3.
            minor(at(2026, 6, 20, 23), None, None),
            // Q4: due 10 October, open: due and overdue now.
            minor(at(2026, 10, 10, 23), None, None),
            // Q4: due 20 November, open: not yet counted.
            minor(at(2026, 11, 20, 23), None, None),
            // Q4: due 25 November, already closed on time: counted.
            minor(at(2026, 11, 25, 23), Some(at(2026, 11, 1, 9)), Some(true)),
            // Q3, major: plan due 2 August, started 3 August (late); fixed in time but not
            // on time because of the plan.
            H {
                grade: "major",
                state: "closed",
                found: at(2026, 8, 1, 10),
                due: at(2026, 8, 12, 23),
                plan_due: Some(at(2026, 8, 2, 10)),
                plan_started: Some(at(2026, 8, 3, 9)),
                closed: Some(at(2026, 8, 11, 9)),
                on_time: Some(false),
            },
            // Q3, major: plan started in time, still being fixed within its deadline in Q4.
            H {
                grade: "major",
                state: "remediating",
                found: at(2026, 9, 29, 10),
                due: at(2026, 11, 9, 23),
                plan_due: Some(at(2026, 9, 30, 10)),
                plan_started: Some(at(2026, 9, 29, 20)),
                closed: None,
                on_time: None,
            },
        ],
    )
    .await;
    // Community B: one hazard due in Q3, closed on time.
    hazards(
        s,
        w.comm_b,
        vec![minor(
            at(2026, 7, 15, 23),
            Some(at(2026, 7, 14, 9)),
            Some(true),
        )],
    )
    .await;
    shelter_schedule(s, w.comm_a).await;
    community_c(s, w.street).await
}

fn street_officer(w: &World) -> Caller {
    caller(Role::StreetOfficer, ScopeKind::Node, w.street)
}

async fn table(t: &TestApp, c: Caller, node: Option<Uuid>, quarter: &str) -> sup::Table {
    let now = t.clock.now();
    let q = TableQuery {
        node,
        quarter: Some(quarter.to_owned()),
    };
    t.store()
        .read(move |conn, _| sup::table(conn, &c, &q, now, &Thresholds::default()))
        .await
        .unwrap()
}

fn line(tb: &sup::Table, id: Uuid) -> &Line {
    tb.lines.iter().find(|l| l.community_id == id).unwrap()
}

both_stores!(figures_match_the_hand_count, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let comm_c = ledger(&t, &w).await;
    let tb = table(&t, street_officer(&w), Some(w.street), "2026-Q3").await;
    assert_eq!(tb.quarter, "2026-Q3");
    assert!(!tb.running);
    assert_eq!(tb.as_of, at(2026, 10, 1, 0));
    // A: due 5 (10 Jul, 10 Aug, 5 Sep, 20 Sep, the major of 12 Aug), on time 1; overdue at the
    // quarter's end 3 (5 Sep, 20 Sep closed only in October, 20 Jun); one plan started late;
    // shelters 3 × 3 months expected, 3 + 2 + 1 done.
    let a = line(&tb, w.comm_a);
    assert_eq!(
        (a.figures.hazards_due, a.figures.closed_on_time),
        (5, 1),
        "{a:?}"
    );
    assert_eq!(a.figures.overdue, 3);
    assert_eq!(a.figures.plan_late, 1);
    assert_eq!(
        (a.figures.inspections_expected, a.figures.inspections_done),
        (9, 6)
    );
    assert_eq!(a.on_time_share, Some(0.2));
    assert_eq!(a.card.as_deref(), Some("red"));
    let texts: Vec<&str> = a.reasons.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "按期整改率 20% < 70%",
            "逾期隐患 3 项 ≥ 3",
            "按期巡检率 66% < 70%",
            "重大隐患预案未按时启动 1 项 ≥ 1"
        ]
    );
    let levels: Vec<&str> = a.reasons.iter().map(|r| r.level.as_str()).collect();
    assert_eq!(levels, ["red", "yellow", "red", "yellow"]);
    // B: one due, on time: a clean card. C: nothing to score, no card.
    let b = line(&tb, w.comm_b);
    assert_eq!((b.figures.hazards_due, b.figures.closed_on_time), (1, 1));
    assert_eq!(b.card.as_deref(), Some("none"));
    assert!(b.reasons.is_empty());
    let c = line(&tb, comm_c);
    assert_eq!(c.card, None);
    assert!(c.nothing_to_score);
    assert_eq!(c.on_time_share, None);
    // Worst first.
    let order: Vec<Uuid> = tb.lines.iter().map(|l| l.community_id).collect();
    assert_eq!(order, [w.comm_a, w.comm_b, comm_c]);
    assert_eq!(
        tb.lines.iter().map(|l| l.rank).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        (tb.red, tb.yellow, tb.clean, tb.nothing_to_score),
        (1, 0, 1, 1)
    );

    // The running quarter, as of 2026-11-02 09:00: due 10 Oct (open) and 25 Nov (closed on
    // time) count, 20 Nov (open, not yet due) and 9 Nov (major, not yet due) do not; overdue
    // now: 5 Sep, 20 Jun, 10 Oct; October's shelter checks: 3 expected, none done.
    let tb = table(&t, street_officer(&w), None, "2026-Q4").await;
    assert!(tb.running);
    let a = line(&tb, w.comm_a);
    assert_eq!((a.figures.hazards_due, a.figures.closed_on_time), (2, 1));
    assert_eq!(a.figures.overdue, 3);
    assert_eq!(a.figures.plan_late, 0);
    assert_eq!(
        (a.figures.inspections_expected, a.figures.inspections_done),
        (3, 0)
    );
    // B's Q4 has nothing: no card, said so.
    assert!(line(&tb, w.comm_b).nothing_to_score);
});

both_stores!(
    thresholds_come_from_configuration,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        ledger(&t, &w).await;
        let c = street_officer(&w);
        let now = t.clock.now();
        // Laxer thresholds: only the overdue count trips (red at 3).
        let lax = Thresholds {
            yellow_on_time_below: 0.1,
            red_on_time_below: 0.05,
            yellow_overdue_at_least: 2,
            red_overdue_at_least: 3,
            yellow_inspections_below: 0.5,
            red_inspections_below: 0.4,
            yellow_plan_late_at_least: 0,
            red_plan_late_at_least: 0,
        };
        let comm_a = w.comm_a;
        let l = t
            .store()
            .read(move |conn, _| sup::community(conn, &c, comm_a, Some("2026-Q3"), now, &lax))
            .await
            .unwrap();
        assert_eq!(l.card.as_deref(), Some("red"));
        assert_eq!(l.reasons.len(), 1);
        assert_eq!(l.reasons[0].metric, "overdue");
        assert_eq!(l.reasons[0].text, "逾期隐患 3 项 ≥ 3");
        assert_eq!(l.reasons[0].text_en, "Overdue hazards 3 ≥ 3");
    }
);

both_stores!(who_sees_what, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let comm_c = ledger(&t, &w).await;
    // The street officer: every community below, ranked.
    let tb = table(&t, street_officer(&w), None, "2026-Q3").await;
    assert_eq!(tb.lines.len(), 3);
    // The district officer too.
    let tb = table(&t, w.district_officer(), Some(w.district), "2026-Q3").await;
    assert_eq!(tb.lines.len(), 3);
    // A community worker: their own only, even when asking for the street.
    let tb = table(&t, w.worker_a(), None, "2026-Q3").await;
    let ids: Vec<Uuid> = tb.lines.iter().map(|l| l.community_id).collect();
    assert_eq!(ids, [w.comm_a]);
    let (worker_a, street) = (w.worker_a(), w.street);
    let now = t.clock.now();
    let tq = TableQuery {
        node: Some(street),
        quarter: None,
    };
    let r = t
        .store()
        .read(move |c, _| sup::table(c, &worker_a, &tq, now, &Thresholds::default()))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Another community's figures are not found, like a missing one.
    let (worker_b, comm_a) = (w.worker_b(), w.comm_a);
    let r = t
        .store()
        .read(move |c, _| sup::community(c, &worker_b, comm_a, None, now, &Thresholds::default()))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Grid grants and the third-party inspector read no community figures.
    assert!(table(&t, w.grid_worker_a1(), None, "2026-Q3")
        .await
        .lines
        .is_empty());
    assert!(table(&t, w.inspector(), None, "2026-Q3")
        .await
        .lines
        .is_empty());
    // Only a supervisor may store a round; not a community worker.
    let (worker_a, comm_a) = (w.worker_a(), w.comm_a);
    let r = t
        .store()
        .write(WriteCtx::system("t"), move |tx| {
            sup::run_round(
                tx,
                &worker_a,
                &RoundInput {
                    node_id: comm_a,
                    quarter: None,
                },
                &Thresholds::default(),
            )
        })
        .await;
    assert!(matches!(r, Err(StoreError::Forbidden(_))), "{r:?}");
    // A street officer's round covers the street's communities; the community worker lists it
    // with their own community only.
    let so = street_officer(&w);
    let round = t
        .store()
        .write(WriteCtx::system("t"), move |tx| {
            sup::run_round(
                tx,
                &so,
                &RoundInput {
                    node_id: street,
                    quarter: Some("2026-Q3".into()),
                },
                &Thresholds::default(),
            )
        })
        .await
        .unwrap();
    assert_eq!((round.communities, round.red), (3, 1));
    let worker_a = w.worker_a();
    let seen = t
        .store()
        .read(move |c, _| sup::list_rounds(c, &worker_a, 10))
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].communities, seen[0].red), (1, 1));
    let gw = w.grid_worker_a1();
    let seen = t
        .store()
        .read(move |c, _| sup::list_rounds(c, &gw, 10))
        .await
        .unwrap();
    assert!(seen.is_empty());
    let _ = comm_c;
});

both_stores!(
    quarterly_job_scores_each_quarter_once,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        ledger(&t, &w).await;
        // 2026-11-02: Q3 has ended and is scored once, however often the job runs.
        let r = anxin::hazards::supervision::run(&t.app)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.quarter, "2026-Q3");
        assert_eq!(r.cause, "quarterly");
        assert_eq!(r.as_of, at(2026, 10, 1, 0));
        assert!(anxin::hazards::supervision::run(&t.app)
            .await
            .unwrap()
            .is_none());
        // The store refuses a second quarterly round of the same quarter outright.
        let again = t
            .store()
            .write(WriteCtx::system("t"), |tx| {
                sup::quarterly(tx, &Thresholds::default())
            })
            .await
            .unwrap();
        assert!(again.is_none());
        // Into 2027: 00:30 on 1 January in Shanghai is still 31 December in UTC.
        t.clock
            .set(at(2027, 1, 1, 0) + chrono::Duration::minutes(30));
        let r = anxin::hazards::supervision::run(&t.app)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.quarter, "2026-Q4");
        assert!(anxin::hazards::supervision::run(&t.app)
            .await
            .unwrap()
            .is_none());
        let n = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT count(*) FROM supervision_rounds WHERE cause = 'quarterly'",
                    &[],
                )
            })
            .await
            .unwrap();
        assert_eq!(n, 2);
        // The trend is the stored rounds, then the running quarter computed now.
        let tb = table(&t, street_officer(&w), None, "2027-Q1").await;
        let a = line(&tb, w.comm_a);
        let quarters: Vec<(&str, bool)> = a
            .trend
            .iter()
            .map(|p| (p.quarter.as_str(), p.live))
            .collect();
        assert_eq!(
            quarters,
            [("2026-Q3", false), ("2026-Q4", false), ("2027-Q1", true)]
        );
        assert_eq!(a.trend[0].card.as_deref(), Some("red"));
        assert_eq!(a.trend[0].on_time_share, Some(0.2));
        // Every stored score is in the change log.
        let logged = t
            .store()
            .read(|c, _| {
                c.query_i64(
                    "SELECT count(*) FROM change_log WHERE kind = 'supervision_scores'",
                    &[],
                )
            })
            .await
            .unwrap();
        assert!(logged >= 6, "{logged}");
    }
);

both_stores!(api_table_rounds_and_errors, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    ledger(&t, &w).await;
    let base = t.serve().await;
    let officer = staff(
        &t,
        "street_officer",
        Role::StreetOfficer,
        anxin_domain::Scope::Node(w.street),
    )
    .await;
    let worker = staff(
        &t,
        "worker_a",
        Role::CommunityWorker,
        anxin_domain::Scope::Node(w.comm_a),
    )
    .await;
    let (s, b) = call(
        &base,
        &officer,
        "GET",
        "/api/v1/supervision?quarter=2026-Q3",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["lines"][0]["community_id"], json!(w.comm_a));
    assert_eq!(b["lines"][0]["card"], "red");
    assert_eq!(b["lines"][0]["reasons"][0]["text"], "按期整改率 20% < 70%");
    assert_eq!(b["lines"][0]["hazards_due"], 5);
    let (s, b) = call(
        &base,
        &officer,
        "GET",
        "/api/v1/supervision?quarter=2026-13",
        None,
    )
    .await;
    assert_eq!((s, world::code(&b)), (422, "supervision.quarter_invalid"));
    assert_eq!(b["error"]["details"]["field"], "quarter");
    let (s, b) = call(
        &base,
        &officer,
        "GET",
        "/api/v1/supervision?quarter=2027-Q2",
        None,
    )
    .await;
    assert_eq!((s, world::code(&b)), (422, "supervision.quarter_future"));
    // On demand.
    let (s, b) = call(
        &base,
        &officer,
        "POST",
        "/api/v1/supervision/rounds",
        Some(json!({ "node_id": w.street, "quarter": "2026-Q4" })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["communities"], 3);
    let round = b["id"].clone();
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/supervision/rounds",
        Some(json!({ "node_id": w.comm_a })),
    )
    .await;
    assert_eq!(
        (s, world::code(&b)),
        (403, "supervision.not_supervisor"),
        "{b}"
    );
    let (s, b) = call(&base, &worker, "GET", "/api/v1/supervision/rounds", None).await;
    assert_eq!(s, 200);
    assert_eq!(b[0]["id"], round);
    assert_eq!(b[0]["communities"], 1);
    let (s, b) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/supervision/communities/{}", w.comm_a),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["trend"].as_array().unwrap().len(), 1);
    let (s, _) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/supervision/communities/{}", w.comm_b),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // The page: the community's own figures under stable ids, zh-CN by default.
    let (s, html) = call(
        &base,
        &worker,
        "GET",
        "/manage/supervision?quarter=2026-Q3",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let html = html.as_str().unwrap().to_owned();
    assert!(
        html.contains(r#"id="sup-on-time" data-value="20%""#),
        "{html}"
    );
    assert!(html.contains("按期整改率 20% &lt; 70%"), "{html}");
    let (_, html) = call(
        &base,
        &officer,
        "GET",
        "/manage/supervision?quarter=2026-Q3&lang=en",
        None,
    )
    .await;
    let html = html.as_str().unwrap().to_owned();
    assert!(html.contains("On-time closure 20% &lt; 70%"), "{html}");
    assert!(html.contains(r#"id="sup-run""#));
});

/// The demo's year of history: inspections on schedule, hazards from failed items with their
/// events and positions, majors linked to a real incident of the flood plan and accepted by the
/// inspector, some late and a few still open, four quarterly rounds, and cards of every colour.
#[test]
fn demo_year_gives_the_cards_something_real() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let config = crate::support::config_for(&url, dir.path());
    let started = std::time::Instant::now();
    let out = anxin::demo::build_seeded_with(&config, 3_000).unwrap();
    assert!(out.contains("inspection and hazard records"), "{out}");
    let took = started.elapsed();
    eprintln!("{out} ({took:?})");
    let app = anxin::app::App::open(config, anxin::app::OpenOptions::default()).unwrap();
    let q = |sql: &'static str| {
        app.store
            .read_blocking(move |c, _| c.query_i64(sql, &[]))
            .unwrap()
    };
    // 30 dwellings × 52 weeks of gas checks, most done; 76 shelters × 12 months.
    let gas = q("SELECT count(*) FROM inspections i JOIN inspection_templates t ON t.id = i.template_id WHERE t.code = 'gas_household'");
    assert!(
        (1_200..=1_560).contains(&gas),
        "{gas} gas checks ({took:?})"
    );
    // The risk map has the demo community's register to show, placed.
    assert_eq!(
        q("SELECT count(*) FROM risks WHERE lon IS NOT NULL AND status = 'active'"),
        6
    );
    let shelter = q("SELECT count(*) FROM inspections i JOIN inspection_templates t ON t.id = i.template_id WHERE t.code = 'shelter'");
    assert!((500..=912).contains(&shelter), "{shelter}");
    // Every done inspection has all its answers; a failed answer names its hazard.
    assert_eq!(
        q("SELECT count(*) FROM inspections i WHERE (SELECT count(*) FROM inspection_answers a WHERE a.inspection_id = i.id) = 0"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM inspection_answers a WHERE a.passed = 0 AND a.hazard_id IS NULL"),
        0
    );
    let hazards = q("SELECT count(*) FROM hazards");
    assert!(hazards > 300, "{hazards}");
    assert_eq!(q("SELECT count(*) FROM hazards WHERE lon IS NULL"), 0);
    // Most closed on time, some late, a few open past their deadline.
    let on_time =
        q("SELECT count(*) FROM hazards WHERE closed_on_time = 1") as f64 / hazards as f64;
    assert!((0.6..0.95).contains(&on_time), "{on_time}");
    assert!(q("SELECT count(*) FROM hazards WHERE closed_on_time = 0") > 10);
    let open_overdue =
        q("SELECT count(*) FROM hazards WHERE state <> 'closed' AND fix_due_at < '2026-01-05'");
    assert!((3..hazards / 5).contains(&open_overdue), "{open_overdue}");
    // Majors: only where a plan exists, each started through a real incident of it, closed
    // ones accepted by the demo inspector.
    let majors = q("SELECT count(*) FROM hazards WHERE grade = 'major'");
    assert!(majors > 0);
    assert_eq!(
        q("SELECT count(*) FROM hazards h WHERE h.grade = 'major' AND h.plan_started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM incidents i JOIN plans p ON p.id = i.plan_id WHERE i.id = h.incident_id AND p.node_id = h.node_id)"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM hazards h WHERE h.grade = 'major' AND h.state = 'closed' AND (h.accepted_by IS NULL OR h.accepted_by <> (SELECT id FROM users WHERE username = 'inspector'))"),
        0
    );
    // Every hazard's events start with its report and end in its state.
    assert_eq!(
        q("SELECT count(*) FROM hazards h WHERE (SELECT to_state FROM hazard_events e WHERE e.hazard_id = h.id AND e.to_state IS NOT NULL ORDER BY seq DESC LIMIT 1) <> h.state"),
        0
    );
    // Four quarterly rounds, cards of every colour in the last.
    assert_eq!(
        q("SELECT count(*) FROM supervision_rounds WHERE cause = 'quarterly'"),
        4
    );
    for card in ["red", "yellow", "none"] {
        let n = app
            .store
            .read_blocking(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM supervision_scores WHERE quarter = '2025-Q4' AND card = $1",
                    &anxin_store::params![card],
                )
            })
            .unwrap();
        assert!(n > 0, "no {card} card in 2025-Q4");
    }
}

// The isolation matrix's rules on this part's routes alone (the shared matrix walks every
// route): community A's worker sees A, no outsider sees or changes anything of A, and an
// outsider cannot tell A's community apart from a missing one.
both_stores!(
    outsiders_see_nothing_of_community_a,
    |t: TestApp| async move {
        use anxin_store::accounts::UserKind;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let records = a1(t.store(), &w, &HashMap::new()).await;
        let round = records["supervision_rounds"].to_string();
        let comm_a = w.comm_a.to_string();
        let insider = staff(
            &t,
            "worker_a",
            Role::CommunityWorker,
            anxin_domain::Scope::Node(w.comm_a),
        )
        .await;
        let outsiders = vec![
            staff(
                &t,
                "worker_b",
                Role::CommunityWorker,
                anxin_domain::Scope::Node(w.comm_b),
            )
            .await,
            staff(
                &t,
                "grid_worker_a2",
                Role::GridWorker,
                anxin_domain::Scope::Grid(w.grid_a2),
            )
            .await,
            world::user(
                &t,
                "resident_a1n",
                UserKind::Resident,
                None,
                Some(w.person_a1n),
            )
            .await,
            staff(
                &t,
                "provider",
                Role::Provider,
                anxin_domain::Scope::Node(w.comm_a),
            )
            .await,
            staff(
                &t,
                "inspector",
                Role::Inspector,
                anxin_domain::Scope::Node(w.comm_a),
            )
            .await,
        ];
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (path, id) in [
            ("/api/v1/supervision", &comm_a),
            ("/api/v1/supervision/rounds", &round),
            ("/manage/supervision", &comm_a),
        ] {
            let (s, b) = call(&base, &insider, "GET", path, None).await;
            assert_eq!(s, 200, "insider GET {path}: {b}");
            assert!(
                text(&b).contains(id.as_str()),
                "insider's {path} lacks {id}"
            );
            for u in &outsiders {
                let (_, b) = call(&base, u, "GET", path, None).await;
                assert!(
                    !text(&b).contains(id.as_str()),
                    "{} sees {id} in {path}",
                    u.name
                );
            }
        }
        let real = format!("/api/v1/supervision/communities/{comm_a}");
        let missing = format!("/api/v1/supervision/communities/{}", Uuid::now_v7());
        let (s, _) = call(&base, &insider, "GET", &real, None).await;
        assert_eq!(s, 200);
        for u in &outsiders {
            let (a, ab) = call(&base, u, "GET", &real, None).await;
            let (b, bb) = call(&base, u, "GET", &missing, None).await;
            assert!(!(200..300).contains(&a), "{} reads {real}", u.name);
            assert_eq!(
                (a, world::code(&ab)),
                (b, world::code(&bb)),
                "{} tells A apart",
                u.name
            );
        }
        for path in ["/api/v1/supervision/rounds", "/manage/supervision"] {
            for u in &outsiders {
                let (s, b) = call(&base, u, "POST", path, sample_body(path, &w)).await;
                assert!(
                    !(200..400).contains(&s),
                    "{} could POST {path}: {s} {b}",
                    u.name
                );
            }
        }
        let n = t
            .store()
            .read(|c, _| c.query_i64("SELECT count(*) FROM supervision_rounds", &[]))
            .await
            .unwrap();
        assert_eq!(n, 1, "an outsider's round landed");
    }
);
