//! Stories of emergency operations: passes and access records (出入管理). Gates of a compound
//! and of a community, passes issued only during an active incident (one per household), gate
//! check-in by code and by ID card, refusals (wrong, revoked, expired codes), counts, the contact
//! look-up (right people, refused to a grid worker and after the incident closed, audited) and
//! the retention purge of gate records with their change-log entries.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::{Clock, Role, Scope, ScopeKind};
use anxin_store::ops::passes::{self, CheckInput, CheckResult, GateInput, IssueInput, IssueReport};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, StoreError, WriteCtx};
use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, World};

/// A valid ID number nobody holds (checksum computed).
fn stranger_id() -> String {
    let first = "51010419850101123";
    format!(
        "{first}{}",
        anxin_domain::gb11643_check_digit(first).unwrap()
    )
}

const NO_PHONE_ID: &str = "510104194501011237";

fn no_phone_id() -> String {
    let first = &NO_PHONE_ID[..17];
    format!(
        "{first}{}",
        anxin_domain::gb11643_check_digit(first).unwrap()
    )
}

/// An active incident of a plan of its own for `node` (the activation engine is another part's).
pub async fn active_incident(store: &Store, node: Uuid, name: &str) -> Uuid {
    let name = name.to_owned();
    store
        .write(WriteCtx::system("passes-incident"), move |tx| {
            let now = tx.now();
            let plan = tx.new_id();
            tx.insert(
                "plans",
                &[
                    ("id", plan.into()),
                    ("node_id", node.into()),
                    ("name", name.as_str().into()),
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
                    ("body", "{}".into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let id = tx.new_id();
            tx.insert(
                "incidents",
                &[
                    ("id", id.into()),
                    ("node_id", node.into()),
                    ("plan_id", plan.into()),
                    ("plan_version_id", version.into()),
                    ("title", name.as_str().into()),
                    ("exercise", false.into()),
                    ("status", "active".into()),
                    ("trigger_kind", "manual".into()),
                    ("activated_at", now.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(id)
        })
        .await
        .unwrap()
}

async fn close_incident(store: &Store, id: Uuid) {
    store
        .write(WriteCtx::system("passes-close"), move |tx| {
            let now = tx.now();
            tx.update(
                "incidents",
                id,
                &[
                    ("status", "closed".into()),
                    ("closed_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )
            .map(drop)
        })
        .await
        .unwrap();
}

/// The compound A1苑 of community A (grid A1): hA1 lives there, and a new household whose one
/// member (an old man without a phone) has only his ID card. Gates: the compound's east gate
/// (staffed by grid A1) and the community's north gate.
struct Site {
    compound: Uuid,
    hh_old: Uuid,
    person_old: Uuid,
    east: Uuid,
    north: Uuid,
}

async fn site(store: &Store, w: &World) -> Site {
    let (comm_a, grid_a1, hh_a1) = (w.comm_a, w.grid_a1, w.hh_a1);
    let doc = no_phone_id();
    store
        .write(WriteCtx::system("passes-site"), move |tx| {
            use anxin_store::places::{self as pl, *};
            let sys = Caller::system();
            let compound = anxin_store::tree::create_compound(tx, &sys, comm_a, "锦苑")?;
            let b = pl::create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(compound),
                    grid_id: Some(grid_a1),
                    name: Some("锦苑1栋".into()),
                    ..BuildingInput::default()
                })?,
            )?;
            let mut dwelling = |n: &str| {
                pl::create_dwelling(
                    tx,
                    &sys,
                    b.id,
                    &NewDwelling::parse(DwellingInput {
                        number: Some(n.into()),
                        ..DwellingInput::default()
                    })?,
                )
                .map(|d| d.id)
            };
            let d1 = dwelling("101")?;
            let d2 = dwelling("102")?;
            tx.update("households", hh_a1, &[("dwelling_id", d1.into())])?;
            let hh_old = anxin_store::people::create_household(
                tx,
                &sys,
                comm_a,
                Some(grid_a1),
                Some(d2),
                "锦苑1-102",
            )?
            .id;
            let person_old = anxin_store::people::create_person(
                tx,
                &sys,
                &anxin_store::people::NewPerson::parse(&world::person_input(
                    "赵六",
                    Some(&doc),
                    None,
                    comm_a,
                    grid_a1,
                    hh_old,
                ))?,
            )?
            .id;
            let east = passes::create_gate(
                tx,
                &sys,
                &GateInput {
                    node_id: Some(compound),
                    grid_id: Some(grid_a1),
                    name: Some("东门".into()),
                },
            )?
            .id;
            let north = passes::create_gate(
                tx,
                &sys,
                &GateInput {
                    node_id: Some(comm_a),
                    grid_id: None,
                    name: Some("北门".into()),
                },
            )?
            .id;
            Ok(Site {
                compound,
                hh_old,
                person_old,
                east,
                north,
            })
        })
        .await
        .unwrap()
}

async fn issue(store: &Store, caller: Caller, i: IssueInput) -> Result<IssueReport, StoreError> {
    store
        .write(WriteCtx::system("passes-issue"), move |tx| {
            passes::issue_passes(tx, &caller, &i)
        })
        .await
}

async fn check(
    store: &Store,
    caller: Caller,
    gate: Uuid,
    code: Option<&str>,
    id_number: Option<&str>,
    direction: &str,
) -> Result<CheckResult, StoreError> {
    let i = CheckInput {
        code: code.map(Into::into),
        id_number: id_number.map(Into::into),
        direction: Some(direction.into()),
    };
    store
        .write(WriteCtx::system("passes-check"), move |tx| {
            passes::check_in(tx, &caller, gate, &i)
        })
        .await
}

fn conflict_code(e: &StoreError) -> &'static str {
    match e {
        StoreError::Conflict { code, .. } => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn volunteer_a(w: &World) -> Caller {
    world::caller(Role::Volunteer, ScopeKind::Node, w.comm_a)
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store.read(move |c, _| c.query_i64(sql, &[])).await.unwrap()
}

both_stores!(
    passes_only_in_an_active_incident_one_per_household,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = site(t.store(), &w).await;
        let all = || IssueInput {
            node_id: Some(s.compound),
            ..IssueInput::default()
        };
        // No incident: refused with its own code.
        let e = issue(t.store(), w.worker_a(), all()).await.unwrap_err();
        assert_eq!(conflict_code(&e), "pass.no_active_incident");
        // An incident on the street (an ancestor of the compound) opens issuing.
        let inc = active_incident(t.store(), w.street, "防汛预案").await;
        let r = issue(t.store(), w.worker_a(), all()).await.unwrap();
        assert_eq!(r.incident_id, inc);
        assert_eq!((r.issued.len(), r.skipped), (2, 0), "{r:?}");
        let codes: Vec<String> = r.issued.iter().map(|p| p.code.clone().unwrap()).collect();
        assert_ne!(codes[0], codes[1]);
        for c in &codes {
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(passes::normalize_code(&c.to_lowercase()).unwrap().len(), 10);
        }
        let mut households: Vec<Uuid> = r.issued.iter().map(|p| p.household_id).collect();
        households.sort();
        let mut want = vec![w.hh_a1, s.hh_old];
        want.sort();
        assert_eq!(
            households, want,
            "the compound's households, not its neighbours"
        );
        // Again: nothing new, one pass per household.
        let r = issue(t.store(), w.worker_a(), all()).await.unwrap();
        assert_eq!((r.issued.len(), r.skipped), (0, 2));
        let e = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                household_id: Some(w.hh_a1),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(conflict_code(&e), "pass.exists");
        // The whole community: only the household without one gets a new pass.
        let r = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                node_id: Some(w.comm_a),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((r.issued.len(), r.skipped), (1, 2));
        assert_eq!(r.issued[0].household_id, w.hh_a1n);
        // Outsiders: another community's worker, a grid worker of another grid.
        for c in [w.worker_b(), w.grid_worker_a2(), w.resident_a1()] {
            let e = issue(t.store(), c, all()).await.unwrap_err();
            assert!(matches!(e, StoreError::NotFound), "{e:?}");
        }
        // A street is not a place with households of its own.
        let e = issue(
            t.store(),
            Caller::system(),
            IssueInput {
                node_id: Some(w.street),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    code: "pass.node_level",
                    ..
                }
            ),
            "{e:?}"
        );
        // Codes are not in clear anywhere: sealed rows, sealed change-log images.
        assert_eq!(count(t.store(), "SELECT count(*) FROM passes").await, 3);
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM change_log WHERE kind = 'passes' AND (after IS NOT NULL OR after_ct IS NULL)"
            )
            .await,
            0
        );
        // The list (no codes) and one pass (its code back).
        let now = t.clock.now();
        let id = r.issued[0].id;
        let (list, one) = t
            .store()
            .read(move |c, env| {
                let l = passes::list_passes(c, &w.worker_a(), &Default::default(), now)?;
                let o = passes::get_pass(c, env, &w.worker_a(), id, now)?;
                Ok((l, o))
            })
            .await
            .unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.iter().all(|p| p.code.is_none() && p.valid));
        assert_eq!(one.code, r.issued[0].code);
        // The incident's timeline says what happened, without codes.
        let log = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT summary FROM incident_log WHERE incident_id = $1 AND kind = 'passes.issued'",
                    &params![inc],
                )
            })
            .await
            .unwrap();
        assert_eq!(log.len(), 2);
        for l in &log {
            let s: String = l.get("summary").unwrap();
            assert!(codes.iter().all(|c| !s.contains(c.as_str())), "{s}");
        }
    }
);

both_stores!(
    gate_checkin_by_code_and_id_card_with_refusals_and_counts,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = site(t.store(), &w).await;
        // Outside an incident the gate takes no one.
        let e = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some("AAAAA-AAAAA"),
            None,
            "in",
        )
        .await
        .unwrap_err();
        assert_eq!(conflict_code(&e), "gate.no_active_incident");
        active_incident(t.store(), w.street, "防汛预案").await;
        let r = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                node_id: Some(s.compound),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        let code_of = |h: Uuid| {
            r.issued
                .iter()
                .find(|p| p.household_id == h)
                .unwrap()
                .code
                .clone()
                .unwrap()
        };
        let code_a1 = code_of(w.hh_a1);
        // By code, typed loosely: in and out, at the compound's gate and the community's.
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(&code_a1.to_lowercase().replace('-', " ")),
            None,
            "in",
        )
        .await
        .unwrap();
        assert!(got.allowed, "{got:?}");
        assert_eq!(got.names, vec!["张**".to_owned()], "masked names only");
        // A second plan activated for the community meanwhile: passes of the first still open
        // the gate (both incidents are active and cover it).
        active_incident(t.store(), w.comm_a, "疫情防控预案").await;
        t.clock.advance(Duration::minutes(5));
        let got = check(
            t.store(),
            w.grid_worker_a1(),
            s.east,
            Some(&code_a1),
            None,
            "out",
        )
        .await
        .unwrap();
        assert!(got.allowed);
        let got = check(t.store(), w.worker_a(), s.north, Some(&code_a1), None, "in")
            .await
            .unwrap();
        assert!(got.allowed);
        // By ID card, for the man without a phone.
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            None,
            Some(&no_phone_id()),
            "in",
        )
        .await
        .unwrap();
        assert!(got.allowed, "{got:?}");
        assert_eq!(got.method, "id_card");
        assert_eq!(got.names, vec!["赵*".to_owned()]);
        // Refusals, each recorded with its reason.
        let refused = |r: CheckResult| {
            assert!(!r.allowed, "{r:?}");
            r.reason.unwrap()
        };
        let unknown_code = if code_a1.starts_with('A') {
            "BBBBB-BBBBB"
        } else {
            "AAAAA-AAAAA"
        };
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(unknown_code),
            None,
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.unknown");
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            None,
            Some(&stranger_id()),
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "gate.person_unknown");
        // 李四 of hA1n lives outside the compound and holds no pass.
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            None,
            Some("510104199001011230"),
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.none");
        // hA1n's pass (for the community) does not open the compound's gate.
        let r2 = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                household_id: Some(w.hh_a1n),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        let code_n = r2.issued[0].code.clone().unwrap();
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(&code_n),
            None,
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.wrong_place");
        // Revoked.
        let old_pass = r
            .issued
            .iter()
            .find(|p| p.household_id == s.hh_old)
            .unwrap()
            .id;
        let code_old = code_of(s.hh_old);
        let worker = w.worker_a();
        t.store()
            .write(WriteCtx::system("revoke"), move |tx| {
                passes::revoke_pass(tx, &worker, old_pass)
            })
            .await
            .unwrap();
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(&code_old),
            None,
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.revoked");
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            None,
            Some(&no_phone_id()),
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.revoked");
        // Expired: a new pass valid for an hour, two hours later.
        let until = t.clock.now() + Duration::hours(1);
        let r3 = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                household_id: Some(s.hh_old),
                valid_until: Some(until),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        let code_new = r3.issued[0].code.clone().unwrap();
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(&code_new),
            None,
            "in",
        )
        .await
        .unwrap();
        assert!(got.allowed);
        t.clock.advance(Duration::hours(2));
        let got = check(
            t.store(),
            volunteer_a(&w),
            s.east,
            Some(&code_new),
            None,
            "in",
        )
        .await
        .unwrap();
        assert_eq!(refused(got), "pass.expired");
        // Input errors name the field.
        for (code, id, field) in [
            (None, None, "code"),
            (None, Some("123"), "id_number"),
            (Some("AAAAA-AAAAA"), Some(NO_PHONE_ID), "id_number"),
        ] {
            let e = check(t.store(), volunteer_a(&w), s.east, code, id, "in")
                .await
                .unwrap_err();
            assert!(
                matches!(&e, StoreError::Invalid { field: f, .. } if f == field),
                "{e:?}"
            );
        }
        // Who may not staff this gate: a grid worker of another grid, another community.
        for c in [w.grid_worker_a2(), w.worker_b(), w.resident_a1()] {
            let e = check(t.store(), c, s.east, Some(&code_a1), None, "in")
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::NotFound), "{e:?}");
        }
        // Counts at the east gate: today, per hour.
        let now = t.clock.now();
        let east = s.east;
        let worker = w.worker_a();
        let c = t
            .store()
            .read(move |c, _| passes::gate_counts(c, &worker, east, now))
            .await
            .unwrap();
        assert_eq!((c.entered, c.left, c.refused), (3, 1, 7), "{c:?}");
        assert_eq!(
            c.hours
                .iter()
                .map(|h| h.entered + h.left + h.refused)
                .sum::<i64>(),
            11
        );
        assert_eq!(c.hours.len(), 2, "two hours apart: {:?}", c.hours);
        // Whereabouts are sealed: no ID number, person or household in clear, sealed images.
        let leak = t
            .store()
            .read(move |c, _| {
                let rows = c.query("SELECT * FROM gate_records", &[])?;
                Ok(rows
                    .iter()
                    .map(|r| r.to_json().to_string())
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap();
        assert_eq!(leak.len(), 12);
        for r in &leak {
            for secret in [
                no_phone_id(),
                stranger_id(),
                s.person_old.to_string(),
                w.hh_a1.to_string(),
                s.hh_old.to_string(),
            ] {
                assert!(!r.contains(&secret), "{secret} in clear in {r}");
            }
        }
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM change_log WHERE kind = 'gate_records' AND (after IS NOT NULL OR after_ct IS NULL)"
            )
            .await,
            0
        );
    }
);

/// A passage at `gate` at the clock's time.
async fn pass_at(t: &TestApp, w: &World, gate: Uuid, code: Option<&str>, id: Option<&str>) {
    let r = check(t.store(), volunteer_a(w), gate, code, id, "in")
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
}

async fn contacts_call(base: &str, u: &world::User, incident: Uuid, body: Value) -> (u16, Value) {
    let r = crate::support::client()
        .post(format!("{base}/api/v1/incidents/{incident}/contacts"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

both_stores!(
    contact_lookup_finds_the_right_people_refused_and_audited,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = site(t.store(), &w).await;
        let inc = active_incident(t.store(), w.street, "疫情防控预案").await;
        let r = issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                node_id: Some(w.comm_a),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        let code = |h: Uuid| {
            r.issued
                .iter()
                .find(|p| p.household_id == h)
                .unwrap()
                .code
                .clone()
                .unwrap()
        };
        // The case (张三丰, hA1) passes the east gate; 赵六 ten minutes later: a contact. 李四
        // passes the north gate at the same time (another gate); the case passes the north gate
        // two hours later (outside a 30-minute window, inside a 180-minute one).
        pass_at(&t, &w, s.east, Some(&code(w.hh_a1)), None).await;
        pass_at(&t, &w, s.north, Some(&code(w.hh_a1n)), None).await;
        t.clock.advance(Duration::minutes(10));
        pass_at(&t, &w, s.east, None, Some(&no_phone_id())).await;
        t.clock.advance(Duration::hours(2));
        pass_at(&t, &w, s.north, Some(&code(w.hh_a1)), None).await;

        let base = t.serve().await;
        let staff =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let grid = world::staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let (st, b) = contacts_call(
            &base,
            &staff,
            inc,
            json!({ "person_id": w.person_a1, "window_minutes": 30 }),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["case_passages"], 2, "{b}");
        let contacts = b["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 1, "{b}");
        assert_eq!(contacts[0]["names"], json!(["赵*"]));
        assert_eq!(contacts[0]["gate_name"], "东门");
        assert_eq!(contacts[0]["minutes_apart"], 10);
        assert!(!b.to_string().contains("赵六") && !b.to_string().contains(&no_phone_id()));
        // By ID number: the same; a window of 180 minutes also finds 李四 (phone masked).
        let (st, b) = contacts_call(
            &base,
            &staff,
            inc,
            json!({ "id_number": world::PERSON_A1_ID_NUMBER, "window_minutes": 180 }),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        let contacts = b["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 2, "{b}");
        let li = contacts
            .iter()
            .find(|c| c["names"] == json!(["李*"]))
            .unwrap();
        assert_eq!(li["phones"], json!(["139****0001"]));
        assert_eq!(
            (li["gate_name"].as_str(), li["minutes_apart"].as_i64()),
            (Some("北门"), Some(130))
        );
        // The reverse: 赵六's contacts include the case's household.
        let (_, b) = contacts_call(
            &base,
            &staff,
            inc,
            json!({ "person_id": s.person_old, "window_minutes": 30 }),
        )
        .await;
        assert_eq!(b["contacts"][0]["names"], json!(["张**"]), "{b}");
        // Bad input names the field.
        let (st, b) = contacts_call(&base, &staff, inc, json!({ "window_minutes": 30 })).await;
        assert_eq!(
            (st, b["error"]["details"]["field"].as_str()),
            (422, Some("person_id"))
        );
        let (st, b) = contacts_call(
            &base,
            &staff,
            inc,
            json!({ "person_id": w.person_a1, "window_minutes": 0 }),
        )
        .await;
        assert_eq!(
            (st, b["error"]["details"]["field"].as_str()),
            (422, Some("window_minutes"))
        );
        // A grid worker may not look up contacts: answered like a missing incident.
        let (st, b) = contacts_call(&base, &grid, inc, json!({ "person_id": w.person_a1 })).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (404, Some("record.not_found"))
        );
        // After the incident closed: refused.
        close_incident(t.store(), inc).await;
        let (st, b) = contacts_call(&base, &staff, inc, json!({ "person_id": w.person_a1 })).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (409, Some("contact.incident_not_active"))
        );
        // Every look-up is audited, refused ones too; no clear identifier in the entries.
        let rows = t
            .store()
            .read(move |c, _| {
                c.query(
                    "SELECT actor, detail FROM audit_log WHERE action = 'sensitive_read' AND target_id = $1 ORDER BY seq",
                    &params![inc],
                )
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 7);
        let details: Vec<Value> = rows
            .iter()
            .map(|r| serde_json::from_str(&r.get::<String>("detail").unwrap()).unwrap())
            .collect();
        assert_eq!(details[0]["found"], 1);
        assert_eq!(details[1]["found"], 2);
        assert_ne!(
            details[0]["case"], details[2]["case"],
            "another case, another hash"
        );
        assert!(details[0]["case"].as_str().is_some_and(|c| c.len() == 24));
        assert_eq!(details[3]["refused"], "contact.case_required");
        assert_eq!(details[5]["refused"], "record.not_found");
        assert_eq!(details[6]["refused"], "contact.incident_not_active");
        let all = details.iter().map(Value::to_string).collect::<String>();
        for secret in [
            world::PERSON_A1_ID_NUMBER.to_owned(),
            w.person_a1.to_string(),
            s.person_old.to_string(),
        ] {
            assert!(!all.contains(&secret), "{secret} in the audit log");
        }
    }
);

both_stores!(
    gate_records_purged_after_retention_with_their_change_log,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = site(t.store(), &w).await;
        active_incident(t.store(), w.comm_a, "出入管理预案").await;
        issue(
            t.store(),
            w.worker_a(),
            IssueInput {
                node_id: Some(s.compound),
                ..IssueInput::default()
            },
        )
        .await
        .unwrap();
        pass_at(&t, &w, s.east, None, Some(&no_phone_id())).await;
        let old_key: Uuid = t
            .store()
            .read(|c, _| {
                c.query_one("SELECT key_id FROM gate_records", &[])?
                    .unwrap()
                    .get("key_id")
            })
            .await
            .unwrap();
        t.clock.advance(Duration::days(20));
        pass_at(&t, &w, s.east, None, Some(&no_phone_id())).await;
        t.clock.advance(Duration::days(9));
        assert_eq!(t.config.retention.gate_records_days, 28);
        let report = anxin::platform::retention::purge(&t.app).await.unwrap();
        assert_eq!(report.rows("gate_records"), 1, "{report:?}");
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM gate_records").await,
            1
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM change_log WHERE kind = 'gate_records'"
            )
            .await,
            1
        );
        let shredded = t
            .store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM data_keys WHERE id = $1",
                    &params![old_key],
                )
            })
            .await
            .unwrap();
        assert_eq!(shredded, 0, "the purged record's key is shredded");
        // The one kept is still readable: its passage shows in the counts.
        t.clock.advance(Duration::days(30));
        anxin::platform::retention::purge(&t.app).await.unwrap();
        assert_eq!(
            count(t.store(), "SELECT count(*) FROM gate_records").await,
            0
        );
        assert_eq!(
            count(
                t.store(),
                "SELECT count(*) FROM change_log WHERE kind = 'gate_records'"
            )
            .await,
            0
        );
        // Gates and passes are records, not whereabouts: kept.
        assert_eq!(count(t.store(), "SELECT count(*) FROM gates").await, 2);
    }
);

/// A page request as `u` (a form when `form` is given); returns status, `Location` and body.
async fn send(
    base: &str,
    u: &world::User,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String, String) {
    let c = crate::support::client();
    let req = match form {
        Some(f) => {
            let mut f = f.to_vec();
            f.push(("_csrf", &u.csrf));
            c.post(format!("{base}{path}")).form(&f)
        }
        None => c.get(format!("{base}{path}")),
    };
    let r = req.header("cookie", &u.cookie).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, loc, r.text().await.unwrap())
}

both_stores!(
    pages_gate_keeper_passes_contacts_and_the_residents_pass,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = site(t.store(), &w).await;
        let base = t.serve().await;
        let staff =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let vol = world::staff(&t, "volunteer", Role::Volunteer, Scope::Node(w.comm_a)).await;
        let resident = world::user(
            &t,
            "resident_a1",
            anxin_store::accounts::UserKind::Resident,
            None,
            Some(w.person_a1),
        )
        .await;
        // The index lists the gates and offers the places.
        let (st, _, body) = send(&base, &staff, "/manage/gates", None).await;
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("东门") && body.contains("锦苑"), "{body}");
        // A new gate from the form; a bad one names its field.
        let compound = s.compound.to_string();
        let (st, loc, _) = send(
            &base,
            &staff,
            "/manage/gates",
            Some(&[("node_id", compound.as_str()), ("name", "西门")]),
        )
        .await;
        assert_eq!(st, 303);
        assert!(loc.starts_with("/manage/gates/"));
        let (st, _, body) = send(
            &base,
            &staff,
            "/manage/gates",
            Some(&[("node_id", compound.as_str()), ("name", "")]),
        )
        .await;
        assert_eq!(st, 422);
        assert!(body.contains("此项必填"), "{body}");
        // Issuing outside an incident: the page says why.
        let (st, _, body) = send(
            &base,
            &staff,
            "/manage/passes",
            Some(&[("node_id", compound.as_str())]),
        )
        .await;
        assert_eq!(st, 409);
        assert!(body.contains("当前没有启动中的应急事件"), "{body}");
        let inc = active_incident(t.store(), w.street, "防汛预案").await;
        let (st, _, body) = send(
            &base,
            &staff,
            "/manage/passes",
            Some(&[("node_id", compound.as_str())]),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("本次发放：2"), "{body}");
        // The resident sees the household's pass: a QR code and the code in text.
        let (st, _, body) = send(&base, &resident, "/resident/pass", None).await;
        assert_eq!(st, 200, "{body}");
        assert!(
            body.contains("src=\"data:image") && body.contains("base64,"),
            "{body}"
        );
        let code = body
            .split("pass-code\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(
            passes::normalize_code(&code).map(|c| c.len()),
            Some(10),
            "{code}"
        );
        // The same through the API: the resident's passes, a volunteer's check-in, the counts.
        let api = crate::support::client();
        let mine: Value = api
            .get(format!("{base}/api/v1/resident/passes"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(mine[0]["code"].as_str(), Some(code.as_str()), "{mine}");
        assert_eq!(mine[0]["household_id"], json!(w.hh_a1));
        let r = api
            .post(format!("{base}/api/v1/gates/{}/checkin", s.north))
            .header("cookie", &vol.cookie)
            .header("x-csrf-token", &vol.csrf)
            .json(&json!({ "code": code, "direction": "out" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let got: Value = r.json().await.unwrap();
        assert_eq!(
            (got["allowed"].as_bool(), got["direction"].as_str()),
            (Some(true), Some("out"))
        );
        let counts: Value = api
            .get(format!("{base}/api/v1/gates/{}", s.north))
            .header("cookie", &vol.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (counts["left"].as_i64(), counts["entered"].as_i64()),
            (Some(1), Some(0)),
            "{counts}"
        );
        // The gate keeper (a volunteer) types the code: 放行; a wrong code: 不予放行 + reason.
        let east = format!("/manage/gates/{}", s.east);
        let (st, _, body) = send(&base, &vol, &east, None).await;
        assert_eq!(st, 200, "{body}");
        let checkin = format!("{east}/checkin");
        let (st, _, body) = send(
            &base,
            &vol,
            &checkin,
            Some(&[("code", code.as_str()), ("direction", "in")]),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        assert!(
            body.contains("放行") && body.contains("张**") && !body.contains("张三丰"),
            "{body}"
        );
        assert!(body.contains("data-allowed=\"true\""), "{body}");
        let (_, _, body) = send(
            &base,
            &vol,
            &checkin,
            Some(&[("code", "22222-22222"), ("direction", "in")]),
        )
        .await;
        assert!(
            body.contains("不予放行") && body.contains("通行码无效"),
            "{body}"
        );
        // The same box takes an ID-card number.
        let id = no_phone_id();
        let (_, _, body) = send(
            &base,
            &vol,
            &checkin,
            Some(&[("code", id.as_str()), ("direction", "in")]),
        )
        .await;
        assert!(
            body.contains("data-allowed=\"true\"") && body.contains("赵*"),
            "{body}"
        );
        assert!(body.contains("id=\"count-in\">2<"), "{body}");
        // The passes list and one pass (its code, a QR code); revoke from the page.
        let (st, _, body) = send(&base, &staff, "/manage/passes", None).await;
        assert_eq!(st, 200);
        let pass_id = body
            .split("/manage/passes/")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        let (st, _, body) = send(&base, &staff, &format!("/manage/passes/{pass_id}"), None).await;
        assert_eq!(st, 200);
        assert!(body.contains("class=\"qr\""), "{body}");
        let (st, loc, _) = send(
            &base,
            &staff,
            &format!("/manage/passes/{pass_id}/revoke"),
            Some(&[]),
        )
        .await;
        assert_eq!(
            (st, loc.as_str()),
            (303, format!("/manage/passes/{pass_id}").as_str())
        );
        // A volunteer has no passes page; another community's worker no gate.
        let (st, _, _) = send(&base, &vol, &format!("/manage/passes/{pass_id}"), None).await;
        assert_eq!(st, 404);
        // The contact look-up page: masked results; refused to a volunteer like a missing page.
        let contacts = format!("/manage/incidents/{inc}/contacts");
        let (st, _, body) = send(&base, &staff, &contacts, None).await;
        assert_eq!(st, 200, "{body}");
        let (st, _, body) = send(
            &base,
            &staff,
            &contacts,
            Some(&[
                ("id_number", world::PERSON_A1_ID_NUMBER),
                ("window_minutes", "30"),
            ]),
        )
        .await;
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("赵*") && !body.contains("赵六"), "{body}");
        let (st, _, _) = send(&base, &vol, &contacts, None).await;
        assert_eq!(st, 404);
        let (st, _, body) = send(&base, &staff, &contacts, Some(&[("window_minutes", "30")])).await;
        assert_eq!(st, 422);
        assert!(body.contains("请填写确诊人员"), "{body}");
    }
);

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a gate of community A staffed by grid A1, and a pass of
/// household hA1 in an active incident of community A (also the matrix's incident when no
/// earlier part made one).
pub async fn a1(
    store: &Store,
    w: &World,
    so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let inc = active_incident(store, w.comm_a, "出入管理矩阵预案").await;
    let (comm_a, grid_a1, hh_a1) = (w.comm_a, w.grid_a1, w.hh_a1);
    let (gate, pass) = store
        .write(WriteCtx::system("passes-a1"), move |tx| {
            let sys = Caller::system();
            let gate = passes::create_gate(
                tx,
                &sys,
                &GateInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    name: Some("矩阵门".into()),
                },
            )?
            .id;
            let pass = passes::issue_passes(
                tx,
                &sys,
                &IssueInput {
                    household_id: Some(hh_a1),
                    incident_id: Some(inc),
                    ..IssueInput::default()
                },
            )?
            .issued[0]
                .id;
            Ok((gate, pass))
        })
        .await
        .unwrap();
    let mut m = HashMap::from([("gates", gate), ("passes", pass)]);
    if !so_far.contains_key("incidents") {
        m.insert("incidents", inc);
    }
    m
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/gates" | "/manage/gates" => {
            json!({ "node_id": w.comm_a.to_string(), "name": "闯入门" })
        }
        "/api/v1/gates/{id}/checkin" | "/manage/gates/{id}/checkin" => {
            json!({ "code": "AAAAA-AAAAA", "direction": "in" })
        }
        "/api/v1/passes" | "/manage/passes" => json!({ "household_id": w.hh_a1.to_string() }),
        "/api/v1/passes/{id}/revoke" | "/manage/passes/{id}/revoke" => json!({}),
        "/api/v1/incidents/{id}/contacts" | "/manage/incidents/{id}/contacts" => {
            json!({ "person_id": w.person_a1.to_string(), "window_minutes": 30 })
        }
        _ => return None,
    })
}
