//! Stories of items, depots, lots, movements, balances, norms, the gap report, expiry and
//! dispatch plans (owner: reserves & dispatch): the ledger is append-only and the kept balances
//! equal the ledger's; a movement that would go below zero is refused and writes nothing; issue
//! takes the first-expiring lots; transfers; norms inherited from the street and overridden by a
//! community, with the gap report's figures; expiry warnings once per lot; a dispatch plan that
//! covers the gap at the least travel, executes as transfers and is refused when stock moved;
//! community B's worker neither sees nor moves community A's stock.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use anxin_domain::supplies::MovementKind;
use anxin_domain::{Clock, Role, Scope};
use anxin_store::scope::Caller;
use anxin_store::supplies::dispatch;
use anxin_store::supplies::reserves::{self, MovementInput, NewMovement, NormInput};
use anxin_store::{params, Store, StoreError, WriteCtx};
use chrono::NaiveDate;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, code, staff, World};

/// A facility of `node` to hold stock.
async fn depot(store: &Store, node: Uuid, name: &str, at: Option<(f64, f64)>) -> Uuid {
    let name = name.to_owned();
    store
        .write(WriteCtx::system("depot"), move |tx| {
            use anxin_store::places::{self as pl, FacilityInput, LocationInput, NewFacility};
            let f = pl::create_facility(
                tx,
                &Caller::system(),
                &NewFacility::parse(FacilityInput {
                    node_id: Some(node),
                    kind: Some("supply_depot".into()),
                    name: Some(name),
                    location: at.map(|(lon, lat)| LocationInput {
                        lon: Some(lon),
                        lat: Some(lat),
                        crs: Some("wgs84".into()),
                    }),
                    ..FacilityInput::default()
                })?,
            )?;
            Ok(f.id)
        })
        .await
        .unwrap()
}

async fn item(store: &Store, code: &'static str) -> Uuid {
    store
        .read(move |c, _| reserves::item_by_code(c, None, code))
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn post(store: &Store, m: NewMovement) -> Result<Vec<Uuid>, StoreError> {
    store
        .write(WriteCtx::system("stock"), move |tx| reserves::post(tx, &m))
        .await
}

async fn receive(store: &Store, item: Uuid, depot: Uuid, q: i64, exp: Option<NaiveDate>) -> Uuid {
    let mut m = NewMovement::new(MovementKind::Receive, item, depot, q);
    m.expires_on = exp;
    let ids = post(store, m).await.unwrap();
    assert_eq!(ids.len(), 1);
    ids[0]
}

async fn bal(store: &Store, depot: Uuid, item: Uuid) -> i64 {
    store
        .read(move |c, _| reserves::balance(c, depot, item))
        .await
        .unwrap()
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store.read(move |c, _| c.query_i64(sql, &[])).await.unwrap()
}

/// The kept balances equal the ledger's sums, lot by lot.
async fn ledger_agrees(store: &Store) {
    let (kept, truth) = store
        .read(|c, _| Ok((reserves::kept_balances(c)?, reserves::recompute(c)?)))
        .await
        .unwrap();
    assert_eq!(kept, truth, "kept balances differ from the ledger");
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn today(t: &TestApp) -> NaiveDate {
    t.clock.local_now().date_naive()
}

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a community item, a depot's lot expiring soon with its receipt,
/// a norm, and a dispatch plan moving stock between two depots of A.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    let street = w.street;
    let dep = depot(store, comm_a, "A1物资点", Some((104.09, 30.66))).await;
    let dep2 = depot(store, comm_a, "A1二号物资点", None).await;
    let mask = item(store, "mask").await;
    store
        .write(WriteCtx::system("supplies-a1"), move |tx| {
            let sys = Caller::system();
            let own = reserves::create_item(
                tx,
                &sys,
                &reserves::ItemInput {
                    node_id: Some(comm_a),
                    code: Some("sandbag_large".into()),
                    name: Some("大号沙袋".into()),
                    unit: Some("个".into()),
                    category: Some("flood".into()),
                    shelf_life_days: None,
                },
            )?;
            let today = anxin_store::hazards::risks::local_day(tx.now());
            let mut m = NewMovement::new(MovementKind::Receive, mask, dep, 100);
            m.expires_on = today.checked_add_days(chrono::Days::new(10));
            let mv = reserves::post(tx, &m)?[0];
            let lot: Uuid = tx
                .query_one(
                    "SELECT lot_id FROM stock_movements WHERE id = $1",
                    &params![mv],
                )?
                .unwrap()
                .get("lot_id")?;
            let norm = reserves::set_norm(
                tx,
                &sys,
                &NormInput {
                    node_id: Some(comm_a),
                    item_id: Some(mask),
                    per_thousand: Some(1000),
                },
            )?;
            // A plan at the street moving stock inside A only (B's worker must not see it).
            let plan = tx.new_id();
            let now = tx.now();
            tx.insert(
                "dispatch_plans",
                &[
                    ("id", plan.into()),
                    ("node_id", street.into()),
                    ("status", "proposed".into()),
                    ("total_quantity", 1i64.into()),
                    ("total_need", 1i64.into()),
                    ("cost_km", 0.0f64.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            let line = tx.new_id();
            tx.insert(
                "dispatch_lines",
                &[
                    ("id", line.into()),
                    ("plan_id", plan.into()),
                    ("node_id", street.into()),
                    ("item_id", mask.into()),
                    ("from_depot_id", dep.into()),
                    ("from_community_id", comm_a.into()),
                    ("to_community_id", comm_a.into()),
                    ("to_depot_id", dep2.into()),
                    ("quantity", 1i64.into()),
                    ("distance_km", 0.0f64.into()),
                    ("source_balance", 100i64.into()),
                    ("created_at", now.into()),
                ],
            )?;
            Ok(HashMap::from([
                ("supply_items", own.id),
                ("stock_lots", lot),
                ("stock_movements", mv),
                ("stock_norms", norm.id),
                ("dispatch_plans", plan),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    match path {
        "/api/v1/supply-items" => Some(json!({
            "node_id": w.comm_a, "code": "intruder_item", "name": "闯入物资", "unit": "个"
        })),
        "/api/v1/depots/{id}/movements" => Some(json!({
            "kind": "receive", "item_id": "01940000-0017-7000-8000-000000000001", "quantity": 5
        })),
        "/manage/supplies/depots/{id}" => Some(json!({
            "kind": "receive", "item_id": "01940000-0017-7000-8000-000000000001", "quantity": "5"
        })),
        "/manage/dispatch" => Some(json!({ "node_id": w.street.to_string() })),
        "/manage/dispatch/{id}/execute" => Some(json!({})),
        "/api/v1/stock/norms" => Some(json!({
            "node_id": w.comm_a, "item_id": "01940000-0017-7000-8000-000000000001", "per_thousand": 7
        })),
        "/api/v1/dispatch/plans" => Some(json!({ "node_id": w.street })),
        "/api/v1/dispatch/plans/{id}/execute" => Some(json!({})),
        _ => None,
    }
}

// ---- the ledger --------------------------------------------------------------------------------

both_stores!(
    ledger_is_append_only_and_balances_match,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let dep = depot(s, w.comm_a, "一号仓", None).await;
        let water = item(s, "water").await;
        let later = receive(s, water, dep, 100, Some(d("2027-06-30"))).await;
        receive(s, water, dep, 50, Some(d("2027-01-31"))).await;
        receive(s, water, dep, 10, None).await;
        assert_eq!(bal(s, dep, water).await, 160);
        // First expiry, first out: 70 takes the 50 expiring in January, then 20 of June's.
        let ids = post(s, NewMovement::new(MovementKind::Issue, water, dep, 70))
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        let lots = s
            .read(move |c, _| reserves::depot_lots(c, &Caller::system(), dep))
            .await
            .unwrap();
        let left: Vec<(Option<NaiveDate>, i64)> =
            lots.iter().map(|l| (l.expires_on, l.quantity)).collect();
        assert_eq!(left, vec![(Some(d("2027-06-30")), 80), (None, 10)]);
        // A correction is an adjust (signed), a write-off takes from a named lot.
        post(s, NewMovement::new(MovementKind::Adjust, water, dep, -5))
            .await
            .unwrap();
        let lot: Uuid = s
            .read(move |c, _| {
                c.query_one(
                    "SELECT lot_id FROM stock_movements WHERE id = $1",
                    &params![later],
                )?
                .unwrap()
                .get("lot_id")
            })
            .await
            .unwrap();
        let mut wo = NewMovement::new(MovementKind::WriteOff, water, dep, 5);
        wo.lot_id = Some(lot);
        post(s, wo).await.unwrap();
        assert_eq!(bal(s, dep, water).await, 80);
        ledger_agrees(s).await;
        // The ledger refuses any change or removal of a movement, whoever asks.
        let err = s
            .write(WriteCtx::system("tamper"), move |tx| {
                tx.update("stock_movements", later, &[("quantity", 1000i64.into())])
            })
            .await;
        assert!(err.is_err(), "a movement was updated");
        let err = s
            .write(WriteCtx::system("tamper"), move |tx| {
                tx.delete("stock_movements", later)
            })
            .await;
        assert!(err.is_err(), "a movement was deleted");
        assert_eq!(bal(s, dep, water).await, 80);
        ledger_agrees(s).await;
        // Every movement has its change-log entry.
        let logged = count(
            s,
            "SELECT count(*) FROM change_log WHERE kind = 'stock_movements'",
        )
        .await;
        let moves = count(s, "SELECT count(*) FROM stock_movements").await;
        assert_eq!(logged, moves);
        assert_eq!(moves, 7);
        // The catalogue ships with its change-log entries and the codes other parts rely on.
        let cat = count(
        s,
        "SELECT count(*) FROM change_log WHERE kind = 'supply_items' AND request_id = 'migration-0017'",
    )
    .await;
        assert!(cat >= 20, "catalogue entries in the log: {cat}");
        let mask = s
            .read(|c, _| reserves::item_by_code(c, None, "mask"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (mask.name.as_str(), mask.unit.as_str()),
            ("医用外科口罩", "只")
        );
    }
);

both_stores!(
    insufficient_stock_is_refused_and_writes_nothing,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let dep = depot(s, w.comm_a, "一号仓", None).await;
        let tent = item(s, "tent").await;
        receive(s, tent, dep, 3, None).await;
        receive(s, tent, dep, 2, None).await;
        let before = count(s, "SELECT count(*) FROM stock_movements").await;
        let log_before = count(s, "SELECT count(*) FROM change_log").await;
        for m in [
            NewMovement::new(MovementKind::Issue, tent, dep, 6),
            NewMovement::new(MovementKind::WriteOff, tent, dep, 6),
            NewMovement::new(MovementKind::TransferOut, tent, dep, 6),
            NewMovement::new(MovementKind::Adjust, tent, dep, -6),
        ] {
            match post(s, m).await {
                Err(StoreError::Invalid { code, field }) => {
                    assert_eq!((code, field.as_str()), ("stock.insufficient", "quantity"));
                }
                other => panic!("expected stock.insufficient, got {other:?}"),
            }
        }
        for (k, q) in [
            (MovementKind::Issue, 0),
            (MovementKind::Receive, -1),
            (MovementKind::Adjust, 0),
        ] {
            match post(s, NewMovement::new(k, tent, dep, q)).await {
                Err(StoreError::Invalid { code, .. }) => assert_eq!(code, "stock.quantity_invalid"),
                other => panic!("expected stock.quantity_invalid, got {other:?}"),
            }
        }
        assert_eq!(
            count(s, "SELECT count(*) FROM stock_movements").await,
            before
        );
        assert_eq!(
            count(s, "SELECT count(*) FROM change_log").await,
            log_before
        );
        assert_eq!(bal(s, dep, tent).await, 5);
        // Exactly what is there can go.
        post(s, NewMovement::new(MovementKind::Issue, tent, dep, 5))
            .await
            .unwrap();
        assert_eq!(bal(s, dep, tent).await, 0);
        ledger_agrees(s).await;
    }
);

both_stores!(
    transfer_between_depots_keeps_expiry,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let a = depot(s, w.comm_a, "一号仓", None).await;
        let b = depot(s, w.comm_a, "二号仓", None).await;
        let noodles = item(s, "noodles").await;
        receive(s, noodles, a, 4, Some(d("2027-03-01"))).await;
        receive(s, noodles, a, 10, Some(d("2027-05-01"))).await;
        let worker = w.worker_a();
        let ids = s
            .write(WriteCtx::system("transfer"), move |tx| {
                reserves::post_checked(
                    tx,
                    &worker,
                    a,
                    &MovementInput {
                        kind: Some("transfer".into()),
                        item_id: Some(noodles),
                        quantity: Some(6),
                        to_depot_id: Some(b),
                        ..MovementInput::default()
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(ids.len(), 4, "two lots out, two lots in");
        assert_eq!(bal(s, a, noodles).await, 8);
        assert_eq!(bal(s, b, noodles).await, 6);
        let lots = s
            .read(move |c, _| reserves::depot_lots(c, &Caller::system(), b))
            .await
            .unwrap();
        let got: Vec<(Option<NaiveDate>, i64)> =
            lots.iter().map(|l| (l.expires_on, l.quantity)).collect();
        assert_eq!(
            got,
            vec![(Some(d("2027-03-01")), 4), (Some(d("2027-05-01")), 2)]
        );
        // Too much refused, nothing moved.
        let worker = w.worker_a();
        let err = s
            .write(WriteCtx::system("transfer"), move |tx| {
                reserves::post_checked(
                    tx,
                    &worker,
                    a,
                    &MovementInput {
                        kind: Some("transfer".into()),
                        item_id: Some(noodles),
                        quantity: Some(9),
                        to_depot_id: Some(b),
                        ..MovementInput::default()
                    },
                )
            })
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Invalid {
                code: "stock.insufficient",
                ..
            }
        ));
        assert_eq!((bal(s, a, noodles).await, bal(s, b, noodles).await), (8, 6));
        ledger_agrees(s).await;
    }
);

// ---- norms and the gap report ------------------------------------------------------------------

async fn set_norm(s: &Store, node: Uuid, item: Uuid, per: i64) {
    s.write(WriteCtx::system("norm"), move |tx| {
        reserves::set_norm(
            tx,
            &Caller::system(),
            &NormInput {
                node_id: Some(node),
                item_id: Some(item),
                per_thousand: Some(per),
            },
        )
    })
    .await
    .unwrap();
}

both_stores!(
    norms_inherit_and_the_gap_report_adds_up,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let residents = |c: Uuid| async move {
            s.read(move |cn, _| {
                cn.query_i64(
                    "SELECT count(*) FROM people WHERE community_id = $1",
                    &params![c],
                )
            })
            .await
            .unwrap()
        };
        let (ra, rb) = (residents(w.comm_a).await, residents(w.comm_b).await);
        assert!(ra > 0 && rb > 0);
        let tent = item(s, "tent").await;
        let da = depot(s, w.comm_a, "A仓", None).await;
        let db = depot(s, w.comm_b, "B仓", None).await;
        // 1,500 tents per 1,000 at the street: A needs ⌈1.5·ra⌉; B sets its own 3,000.
        set_norm(s, w.street, tent, 1500).await;
        set_norm(s, w.comm_b, tent, 3000).await;
        receive(s, tent, da, 1, None).await;
        receive(s, tent, db, 20, None).await;
        let none = BTreeMap::new();
        let street = w.street;
        let rep = s
            .read(move |c, _| reserves::gap_report(c, &Caller::system(), street, &none))
            .await
            .unwrap();
        let line = |c: Uuid| {
            rep.lines
                .iter()
                .find(|l| l.community_id == c && l.item_id == tent)
                .unwrap()
                .clone()
        };
        let a = line(w.comm_a);
        let need_a = (ra * 1500 + 999) / 1000;
        assert_eq!(
            (
                a.residents,
                a.per_thousand,
                a.norm_node_id,
                a.need,
                a.balance
            ),
            (ra, 1500, Some(w.street), need_a, 1)
        );
        assert_eq!(
            (a.gap, a.surplus),
            ((need_a - 1).max(0), (1 - need_a).max(0))
        );
        let b = line(w.comm_b);
        assert_eq!(
            (
                b.per_thousand,
                b.norm_node_id,
                b.need,
                b.balance,
                b.gap,
                b.surplus
            ),
            (3000, Some(w.comm_b), rb * 3, 20, 0, 20 - rb * 3)
        );
        let total = rep.totals.iter().find(|x| x.item_id == tent).unwrap();
        assert_eq!(
            (total.need, total.balance, total.gap, total.surplus),
            (a.need + b.need, 21, a.gap + b.gap, a.surplus + b.surplus)
        );
        // The community's own report, and the configured default for an item nobody set.
        let mut defaults = BTreeMap::new();
        defaults.insert("mask".to_owned(), 2000);
        let comm_a = w.comm_a;
        let rep = s
            .read(move |c, _| reserves::gap_report(c, &Caller::system(), comm_a, &defaults))
            .await
            .unwrap();
        let mask = rep.lines.iter().find(|l| l.item_code == "mask").unwrap();
        assert_eq!(
            (mask.need, mask.norm_node_id, mask.gap),
            (ra * 2, None, ra * 2)
        );
        assert!(rep.lines.iter().all(|l| l.community_id == w.comm_a));
        // B's worker may not read A's report.
        let worker_b = w.worker_b();
        let err = s
            .read(move |c, _| reserves::gap_report(c, &worker_b, comm_a, &BTreeMap::new()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound));
    }
);

// ---- expiry warnings ---------------------------------------------------------------------------

/// A community worker of `node` with a duty phone there.
async fn keeper(store: &Store, node: Uuid, name: &str, phone: &str) -> Uuid {
    world::staff_on_duty(store, name, Role::CommunityWorker, node, "物资管理", phone).await
}

both_stores!(expiry_is_warned_once_per_lot, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let s = t.store();
    keeper(s, w.comm_a, "stock_keeper", "13600000017").await;
    let dep = depot(s, w.comm_a, "一号仓", None).await;
    let water = item(s, "water").await;
    let day0 = today(&t);
    let warn = t.app.config.supplies.expiry_warn_days as u64;
    // One lot inside the window, one just outside, one empty (issued) inside, one without expiry.
    receive(
        s,
        water,
        dep,
        12,
        day0.checked_add_days(chrono::Days::new(5)),
    )
    .await;
    receive(
        s,
        water,
        dep,
        8,
        day0.checked_add_days(chrono::Days::new(warn + 1)),
    )
    .await;
    receive(s, water, dep, 20, None).await;
    let run = || async {
        anxin::supplies::reserves::warn_expiring(&t.app)
            .await
            .unwrap()
    };
    let r = run().await;
    assert_eq!((r.warned, r.notified), (1, 1));
    let r = run().await;
    assert_eq!((r.warned, r.notified), (0, 0), "warned once");
    // Two days on the second lot enters the window: warned once too.
    t.clock.advance(chrono::Duration::days(2));
    assert_eq!(run().await.warned, 1);
    assert_eq!(run().await.warned, 0);
    let sms = count(
        s,
        "SELECT count(*) FROM notifications WHERE template = 'stock_expiry'",
    )
    .await;
    assert_eq!(sms, 2);
    assert_eq!(
        count(s, "SELECT count(*) FROM stock_expiry_warnings").await,
        2
    );
    // The expiring list shows both (and not the lot without expiry).
    let until = today(&t).checked_add_days(chrono::Days::new(warn)).unwrap();
    let lots = s
        .read(move |c, _| reserves::expiring(c, &Caller::system(), until, None))
        .await
        .unwrap();
    assert_eq!(
        lots.iter().map(|l| l.quantity).collect::<Vec<_>>(),
        vec![12, 8]
    );
});

// ---- dispatch ----------------------------------------------------------------------------------

both_stores!(
    dispatch_plan_covers_gaps_at_least_travel_and_executes,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let blanket = item(s, "blanket").await;
        // A needs blankets; B has spare ones in two depots, one near A and one far; the street's own
        // depot has a few too.
        let a = depot(s, w.comm_a, "A仓", Some((104.000, 30.600))).await;
        let b_near = depot(s, w.comm_b, "B近仓", Some((104.010, 30.600))).await;
        let b_far = depot(s, w.comm_b, "B远仓", Some((104.300, 30.600))).await;
        let st = depot(s, w.street, "街道仓", Some((104.200, 30.600))).await;
        let ra = s
            .read({
                let c = w.comm_a;
                move |cn, _| {
                    cn.query_i64(
                        "SELECT count(*) FROM people WHERE community_id = $1",
                        &params![c],
                    )
                }
            })
            .await
            .unwrap();
        // 5,000 per 1,000: A needs 5·ra, B needs 5·rb.
        set_norm(s, w.street, blanket, 5000).await;
        let rb = s
            .read({
                let c = w.comm_b;
                move |cn, _| {
                    cn.query_i64(
                        "SELECT count(*) FROM people WHERE community_id = $1",
                        &params![c],
                    )
                }
            })
            .await
            .unwrap();
        let need_a = 5 * ra;
        receive(s, blanket, b_near, 5 * rb + 2, None).await; // spare 2 near (B's own need covered here first)
        receive(s, blanket, b_far, 50, None).await;
        receive(s, blanket, st, 3, None).await;
        // Default norms would add other items; this plan is about blankets only.
        let officer = world::caller(
            Role::StreetOfficer,
            anxin_domain::roles::ScopeKind::Node,
            w.street,
        );
        let street = w.street;
        let plan = s
            .write(WriteCtx::system("plan"), move |tx| {
                dispatch::propose(tx, &officer, street, &BTreeMap::new())
            })
            .await
            .unwrap();
        assert_eq!(plan.status, "proposed");
        let moved: i64 = plan.lines.iter().map(|l| l.quantity).sum();
        assert_eq!(moved, need_a, "the whole gap is covered");
        assert_eq!(plan.total_quantity, need_a);
        assert!(plan
            .lines
            .iter()
            .all(|l| l.to_depot_id == a && l.item_id == blanket));
        // Least travel: the cheapest sources first. B's spare is spread largest depot first, so the
        // far depot holds B's spare; the near one gives nothing beyond B's own need if far covers it.
        let cost: f64 = plan
            .lines
            .iter()
            .map(|l| l.distance_km * l.quantity as f64)
            .sum();
        assert!((cost - plan.cost_km).abs() < 0.01);
        // Compare with every split of the need over the sources the plan could use.
        let spare_far = 50 + 5 * rb + 2 - 5 * rb; // B's spare, all counted at the larger depot first
        let km = |x: f64| ((x - 104.0) * 111.32 * (30.6f64).to_radians().cos()).abs();
        let mut best = f64::MAX;
        for from_st in 0..=3.min(need_a) {
            let rest = need_a - from_st;
            if rest <= spare_far.min(50) {
                best = best.min(from_st as f64 * km(104.2) + rest as f64 * km(104.3));
            }
        }
        assert!(
            plan.cost_km <= best + 0.05,
            "plan {} vs best {}",
            plan.cost_km,
            best
        );
        // Executing moves the stock as transfers, once.
        let officer = world::caller(
            Role::StreetOfficer,
            anxin_domain::roles::ScopeKind::Node,
            w.street,
        );
        let id = plan.id;
        let before_b = bal(s, b_far, blanket).await
            + bal(s, b_near, blanket).await
            + bal(s, st, blanket).await;
        let done = s
            .write(WriteCtx::system("exec"), move |tx| {
                dispatch::execute(tx, &officer, id)
            })
            .await
            .unwrap();
        assert_eq!(done.status, "executed");
        assert_eq!(bal(s, a, blanket).await, need_a);
        let after_b = bal(s, b_far, blanket).await
            + bal(s, b_near, blanket).await
            + bal(s, st, blanket).await;
        assert_eq!(before_b - after_b, need_a);
        let refs = s
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM stock_movements WHERE reference_kind = 'dispatch' AND reference_id = $1",
                &params![id],
            )
        })
        .await
        .unwrap();
        assert_eq!(refs as usize, 2 * plan.lines.len());
        let officer = world::caller(
            Role::StreetOfficer,
            anxin_domain::roles::ScopeKind::Node,
            w.street,
        );
        let again = s
            .write(WriteCtx::system("exec"), move |tx| {
                dispatch::execute(tx, &officer, id)
            })
            .await
            .unwrap_err();
        assert!(matches!(
            again,
            StoreError::Conflict {
                code: "dispatch.not_proposed",
                ..
            }
        ));
        // Nothing left to do: a new plan moves nothing.
        let officer = world::caller(
            Role::StreetOfficer,
            anxin_domain::roles::ScopeKind::Node,
            w.street,
        );
        let plan2 = s
            .write(WriteCtx::system("plan"), move |tx| {
                dispatch::propose(tx, &officer, street, &BTreeMap::new())
            })
            .await
            .unwrap();
        assert_eq!(plan2.total_quantity, 0);
        ledger_agrees(s).await;
    }
);

both_stores!(dispatch_refuses_when_stock_moved, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let s = t.store();
    let tent = item(s, "tent").await;
    let _a = depot(s, w.comm_a, "A仓", Some((104.0, 30.6))).await;
    let b = depot(s, w.comm_b, "B仓", Some((104.1, 30.6))).await;
    set_norm(s, w.street, tent, 1000).await;
    receive(s, tent, b, 40, None).await;
    let officer = world::caller(
        Role::StreetOfficer,
        anxin_domain::roles::ScopeKind::Node,
        w.street,
    );
    let street = w.street;
    let plan = s
        .write(WriteCtx::system("plan"), move |tx| {
            dispatch::propose(tx, &officer, street, &BTreeMap::new())
        })
        .await
        .unwrap();
    assert!(plan.total_quantity > 0);
    // Someone issues from B meanwhile.
    post(s, NewMovement::new(MovementKind::Issue, tent, b, 1))
        .await
        .unwrap();
    let moves = count(s, "SELECT count(*) FROM stock_movements").await;
    let officer = world::caller(
        Role::StreetOfficer,
        anxin_domain::roles::ScopeKind::Node,
        w.street,
    );
    let id = plan.id;
    let err = s
        .write(WriteCtx::system("exec"), move |tx| {
            dispatch::execute(tx, &officer, id)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                code: "dispatch.stock_changed",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        count(s, "SELECT count(*) FROM stock_movements").await,
        moves
    );
    assert_eq!(bal(s, b, tent).await, 39);
    let p = s
        .read(move |c, _| dispatch::get(c, &Caller::system(), id))
        .await
        .unwrap();
    assert_eq!(p.status, "proposed");
    // A community worker can neither plan for the street nor execute its plan.
    let worker = w.worker_a();
    let err = s
        .write(WriteCtx::system("plan"), move |tx| {
            dispatch::propose(tx, &worker, street, &BTreeMap::new())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let worker = w.worker_a();
    let err = s
        .write(WriteCtx::system("plan"), move |tx| {
            dispatch::propose(tx, &worker, w.comm_a, &BTreeMap::new())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                code: "dispatch.node_level",
                ..
            }
        ),
        "{err:?}"
    );
});

// ---- scope, over HTTP --------------------------------------------------------------------------

both_stores!(
    worker_of_b_neither_sees_nor_moves_a_stock,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let base = t.serve().await;
        let dep = depot(s, w.comm_a, "A仓", None).await;
        let mask = item(s, "mask").await;
        let wa = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let path = format!("/api/v1/depots/{dep}/movements");
        let exp = (today(&t) + chrono::Days::new(3)).to_string();
        let (st, body) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({"kind": "receive", "item_id": mask, "quantity": 500, "expires_on": exp})),
        )
        .await;
        assert_eq!(st, 201, "{body}");
        let (st, body) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({"kind": "issue", "item_id": mask, "quantity": 501})),
        )
        .await;
        assert_eq!((st, code(&body)), (422, "stock.insufficient"), "{body}");
        let (st, body) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({"kind": "issue", "item_id": mask, "quantity": 20, "note": "发放"})),
        )
        .await;
        assert_eq!(st, 201, "{body}");
        let (st, body) = call(&base, &wa, "GET", &format!("/api/v1/depots/{dep}"), None).await;
        assert_eq!(st, 200);
        assert_eq!(body["depot"]["items"][0]["quantity"], 480);
        let (st, body) = call(&base, &wa, "GET", &format!("{path}?limit=1"), None).await;
        assert_eq!(st, 200);
        assert_eq!(
            (
                body["total"].as_i64(),
                body["movements"].as_array().unwrap().len()
            ),
            (Some(2), 1)
        );
        assert_eq!(body["movements"][0]["quantity"], -20);
        let (_, body) = call(&base, &wa, "GET", "/api/v1/stock/expiring", None).await;
        assert!(body.to_string().contains(&dep.to_string()));
        // B's worker: not found, not listed, cannot move.
        for p in [format!("/api/v1/depots/{dep}"), path.clone()] {
            let (st, body) = call(&base, &wb, "GET", &p, None).await;
            assert_eq!(st, 404, "{p}: {body}");
        }
        let (st, _) = call(
            &base,
            &wb,
            "POST",
            &path,
            Some(json!({"kind": "issue", "item_id": mask, "quantity": 1})),
        )
        .await;
        assert_eq!(st, 404);
        let (_, body) = call(&base, &wb, "GET", "/api/v1/depots", None).await;
        assert!(!body.to_string().contains(&dep.to_string()));
        let (_, body) = call(&base, &wb, "GET", "/api/v1/stock/expiring", None).await;
        assert!(!body.to_string().contains(&dep.to_string()));
        let (st, _) = call(
            &base,
            &wb,
            "GET",
            &format!("/api/v1/stock/gaps/{}", w.comm_a),
            None,
        )
        .await;
        assert_eq!(st, 404);
        assert_eq!(bal(s, dep, mask).await, 480);
        // Unknown fields and bad values name the field.
        let (st, body) = call(
        &base,
        &wa,
        "POST",
        &path,
        Some(json!({"kind": "receive", "item_id": mask, "quantity": 1, "expires_on": "2027-13-01"})),
    )
    .await;
        assert_eq!((st, code(&body)), (422, "value.date"), "{body}");
        let (st, body) = call(
            &base,
            &wa,
            "POST",
            &path,
            Some(json!({"kind": "steal", "item_id": mask, "quantity": 1})),
        )
        .await;
        assert_eq!((st, code(&body)), (422, "stock.kind_invalid"), "{body}");
        ledger_agrees(s).await;
    }
);

// ---- pages -------------------------------------------------------------------------------------

async fn page(
    base: &str,
    u: &crate::world::User,
    method: &str,
    path: &str,
    form: &[(&str, String)],
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
        let mut f: Vec<(&str, String)> = form.to_vec();
        f.push(("_csrf", u.csrf.clone()));
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
    pages_post_movements_and_run_a_plan,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let s = t.store();
        let a = depot(s, w.comm_a, "A仓", Some((104.0, 30.6))).await;
        let b = depot(s, w.comm_b, "B仓", Some((104.02, 30.6))).await;
        let tent = item(s, "tent").await;
        set_norm(s, w.street, tent, 1000).await;
        let base = t.serve().await;
        let wa = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wb = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let officer = staff(
            &t,
            "street_officer",
            Role::StreetOfficer,
            Scope::Node(w.street),
        )
        .await;
        // Worker B receives tents through the form (expiry left empty: tents have no shelf life).
        let form = |q: &str| {
            vec![
                ("kind", "receive".to_owned()),
                ("item_id", tent.to_string()),
                ("quantity", q.to_owned()),
            ]
        };
        let (st, loc, _) = page(
            &base,
            &wb,
            "POST",
            &format!("/manage/supplies/depots/{b}"),
            &form("30"),
        )
        .await;
        assert_eq!(
            (st, loc.as_str()),
            (303, format!("/manage/supplies/depots/{b}").as_str())
        );
        let (st, _, html) = page(
            &base,
            &wb,
            "POST",
            &format!("/manage/supplies/depots/{b}"),
            &form("0"),
        )
        .await;
        assert_eq!(st, 422);
        assert!(
            html.contains(r#"data-code="stock.quantity_invalid""#),
            "{html}"
        );
        let (st, _, html) = page(
            &base,
            &wb,
            "GET",
            &format!("/manage/supplies/depots/{b}"),
            &[],
        )
        .await;
        assert_eq!(st, 200);
        assert!(
            html.contains("出入库台账") && html.contains("30 顶"),
            "{html}"
        );
        let (_, _, en) = page(
            &base,
            &wb,
            "GET",
            &format!("/manage/supplies/depots/{b}?lang=en"),
            &[],
        )
        .await;
        assert!(en.contains("Ledger"));
        // A's worker cannot open B's depot or post there.
        let (st, _, _) = page(
            &base,
            &wa,
            "GET",
            &format!("/manage/supplies/depots/{b}"),
            &[],
        )
        .await;
        assert_eq!(st, 404);
        let (st, _, _) = page(
            &base,
            &wa,
            "POST",
            &format!("/manage/supplies/depots/{b}"),
            &form("1"),
        )
        .await;
        assert_eq!(st, 404);
        assert_eq!(bal(s, b, tent).await, 30);
        // The home page and the street's gap report (and its CSV).
        let (st, _, html) = page(&base, &officer, "GET", "/manage/supplies", &[]).await;
        assert_eq!(st, 200);
        assert!(html.contains(&b.to_string()) && html.contains(&a.to_string()));
        let (st, _, html) = page(
            &base,
            &officer,
            "GET",
            &format!("/manage/supplies/gaps/{}", w.street),
            &[],
        )
        .await;
        assert_eq!(st, 200);
        assert!(
            html.contains(&format!(
                r#"data-community="{}" data-item="tent""#,
                w.comm_a
            )),
            "{html}"
        );
        let (st, _, csv) = page(
            &base,
            &officer,
            "GET",
            &format!("/manage/supplies/gaps/{}.csv", w.street),
            &[],
        )
        .await;
        assert_eq!(st, 200);
        assert!(csv.contains("帐篷"));
        // The officer proposes a plan and executes it from the page.
        let (st, loc, _) = page(
            &base,
            &officer,
            "POST",
            "/manage/dispatch",
            &[("node_id", w.street.to_string())],
        )
        .await;
        assert_eq!(st, 303);
        let (st, _, html) = page(&base, &officer, "GET", &loc, &[]).await;
        assert_eq!(st, 200);
        assert!(html.contains("执行调拨"), "{html}");
        let (st, loc2, _) = page(&base, &officer, "POST", &format!("{loc}/execute"), &[]).await;
        assert_eq!((st, loc2.as_str()), (303, loc.as_str()));
        let ra = s
            .read({
                let c = w.comm_a;
                move |cn, _| {
                    cn.query_i64(
                        "SELECT count(*) FROM people WHERE community_id = $1",
                        &params![c],
                    )
                }
            })
            .await
            .unwrap();
        assert_eq!(bal(s, a, tent).await, ra);
        let (st, _, html) = page(&base, &officer, "POST", &format!("{loc}/execute"), &[]).await;
        assert_eq!(st, 409);
        assert!(
            html.contains(r#"data-code="dispatch.not_proposed""#),
            "{html}"
        );
        // A's worker sees the plan that sent to A, but may not run plans.
        let (st, _, _) = page(&base, &wa, "GET", &loc, &[]).await;
        assert_eq!(st, 200);
    }
);
