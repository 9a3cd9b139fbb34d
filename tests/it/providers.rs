//! Stories of providers, their offers, orders and receiving (owner: providers): the full order
//! story (offer → order → confirm → deliver in parts → receive books stock), refusals with their
//! codes and nothing written, and the provider's isolation (it sees only its own offers and
//! orders, and no community data; a community outside a provider's served nodes sees none of its
//! offers).

use std::collections::HashMap;

use anxin_domain::{Role, Scope, ScopeKind, Validity};
use anxin_store::accounts::{self, NewGrant, NewUser, UserKind};
use anxin_store::places::{self as pl, FacilityInput, NewFacility};
use anxin_store::scope::{ActiveGrant, Caller};
use anxin_store::supplies::providers::{self as pv, OfferInput, OrderInput, ProviderInput};
use anxin_store::{params, Store, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, code, staff, World};

/// A valid 统一社会信用代码 from 17 characters.
fn credit(first17: &str) -> String {
    pv::with_check_char(first17).unwrap()
}

/// A supply depot (facility) at `node`.
async fn depot(store: &Store, node: Uuid, name: &'static str) -> Uuid {
    store
        .write(WriteCtx::system("providers-depot"), move |tx| {
            pl::create_facility(
                tx,
                &Caller::system(),
                &NewFacility::parse(FacilityInput {
                    node_id: Some(node),
                    kind: Some("supply_depot".into()),
                    name: Some(name.into()),
                    ..FacilityInput::default()
                })?,
            )
            .map(|f| f.id)
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

async fn balance(t: &TestApp, depot: Uuid, item: Uuid) -> i64 {
    t.store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT CAST(coalesce(sum(quantity), 0) AS BIGINT) FROM stock_balances \
                 WHERE depot_id = $1 AND item_id = $2",
                &params![depot, item],
            )
        })
        .await
        .unwrap()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

both_stores!(the_order_story, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let depot_a = depot(t.store(), w.comm_a, "水井坊物资储备点").await;
    let depot_b = depot(t.store(), w.comm_b, "崇德里物资储备点").await;
    let worker_a = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let p1 = staff(&t, "prov_one", Role::Provider, Scope::Node(w.comm_a)).await;
    let p2 = staff(&t, "prov_two", Role::Provider, Scope::Node(w.comm_a)).await;

    // Registering: the credit code's check character is verified; nothing is written.
    let mut wrong = credit("91510104MA6CXXXX0");
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/providers",
        Some(
            json!({ "node_id": w.comm_a, "name": "成都锦安应急物资有限公司",
            "credit_code": wrong, "served_node_ids": [w.comm_a] }),
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "provider.credit_code_check"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "credit_code");
    assert_eq!(count(&t, "SELECT count(*) FROM providers").await, 0);
    // Community B cannot register a provider at community A.
    let (s, b) = call(
        &base,
        &worker_b,
        "POST",
        "/api/v1/providers",
        Some(json!({ "node_id": w.comm_a, "name": "越权服务商",
            "credit_code": credit("91510104MA62Q8RT1") })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "record.reference_invalid"), "{b}");

    let (s, prov1) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/providers",
        Some(
            json!({ "node_id": w.comm_a, "name": "成都锦安应急物资有限公司",
            "credit_code": credit("91510104MA6CXXXX0"), "contact_name": "刘建国",
            "contact_phone": "13912345678", "address": "锦江区东大街100号",
            "served_node_ids": [w.comm_a] }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{prov1}");
    assert_eq!(prov1["contact_phone"], "139****5678");
    assert!(!prov1.to_string().contains("13912345678"));
    assert!(!prov1.to_string().contains("刘建国"));
    let prov1_id = id_of(&prov1);
    // The same code again is taken.
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/providers",
        Some(json!({ "node_id": w.comm_a, "name": "重复",
            "credit_code": credit("91510104MA6CXXXX0") })),
    )
    .await;
    assert_eq!((s, code(&b)), (409, "provider.credit_code_taken"), "{b}");
    let (s, prov2) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/providers",
        Some(json!({ "node_id": w.comm_a, "name": "四川蜀粮食品有限公司",
            "credit_code": credit("91510104MA62Q8RT1"), "served_node_ids": [w.comm_a] })),
    )
    .await;
    assert_eq!(s, 201, "{prov2}");
    let prov2_id = id_of(&prov2);

    // Linking: only an account holding a provider grant and nothing else.
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &format!("/api/v1/providers/{prov1_id}/accounts"),
        Some(json!({ "username": "worker_b" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "provider.account_not_provider"), "{b}");
    assert_eq!(count(&t, "SELECT count(*) FROM provider_accounts").await, 0);
    for (prov, name) in [(&prov1_id, "prov_one"), (&prov2_id, "prov_two")] {
        let (s, b) = call(
            &base,
            &worker_a,
            "POST",
            &format!("/api/v1/providers/{prov}/accounts"),
            Some(json!({ "username": name })),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &format!("/api/v1/providers/{prov2_id}/accounts"),
        Some(json!({ "username": "prov_one" })),
    )
    .await;
    assert_eq!((s, code(&b)), (409, "provider.account_linked"), "{b}");

    // Offers: community staff cannot publish one; providers publish their own.
    let offer = |code: &str, qty: i64, price: i64| {
        json!({ "item_code": code, "quantity_available": qty, "unit_price_fen": price,
            "lead_time_hours": 24, "valid_until": "2026-12-31", "note": "整箱发货" })
    };
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/supply-offers",
        Some(offer("mask", 10, 50)),
    )
    .await;
    assert_eq!((s, code(&b)), (403, "provider.not_linked"), "{b}");
    let (s, b) = call(
        &base,
        &p1,
        "POST",
        "/api/v1/supply-offers",
        Some(
            json!({ "item_code": "mask", "quantity_available": 10, "unit_price_fen": 50,
            "lead_time_hours": 24, "valid_until": "2026-11-01" }),
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "offer.valid_until_past"), "{b}");
    let (s, offer1) = call(
        &base,
        &p1,
        "POST",
        "/api/v1/supply-offers",
        Some(offer("mask", 1000, 50)),
    )
    .await;
    assert_eq!(s, 201, "{offer1}");
    let offer1_id = id_of(&offer1);
    let item_mask: Uuid = offer1["item_id"].as_str().unwrap().parse().unwrap();
    let (s, offer2) = call(
        &base,
        &p2,
        "POST",
        "/api/v1/supply-offers",
        Some(offer("water", 500, 150)),
    )
    .await;
    assert_eq!(s, 201, "{offer2}");
    let offer2_id = id_of(&offer2);

    // Who sees which offers.
    let (_, list) = call(&base, &worker_a, "GET", "/api/v1/supply-offers", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (_, list) = call(&base, &p1, "GET", "/api/v1/supply-offers", None).await;
    let ids: Vec<String> = list.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![offer1_id.clone()]);
    let (_, list) = call(&base, &worker_b, "GET", "/api/v1/supply-offers", None).await;
    assert_eq!(list, json!([]), "community B is not served");
    let (s, b) = call(
        &base,
        &worker_b,
        "GET",
        &format!("/api/v1/supply-offers/{offer1_id}"),
        None,
    )
    .await;
    assert_eq!((s, code(&b)), (404, "record.not_found"));
    // P1 cannot read or change P2's offer: like a missing one.
    for (m, path, body) in [
        ("GET", format!("/api/v1/supply-offers/{offer2_id}"), None),
        (
            "PATCH",
            format!("/api/v1/supply-offers/{offer2_id}"),
            Some(json!({ "unit_price_fen": 1 })),
        ),
        (
            "POST",
            format!("/api/v1/supply-offers/{offer2_id}/withdraw"),
            None,
        ),
    ] {
        let (s, b) = call(&base, &p1, m, &path, body).await;
        assert_eq!((s, code(&b)), (404, "record.not_found"), "{m} {path}: {b}");
    }
    let (_, o2) = call(
        &base,
        &p2,
        "GET",
        &format!("/api/v1/supply-offers/{offer2_id}"),
        None,
    )
    .await;
    assert_eq!(o2["unit_price_fen"], 150, "P2's offer unchanged");

    // Ordering: over the quantity available is refused and writes nothing.
    let order = |qty: i64, depot: Uuid| {
        json!({ "offer_id": offer1_id, "depot_id": depot, "quantity": qty,
            "wanted_by": "2026-11-10", "note": "防汛备勤" })
    };
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/supply-orders",
        Some(order(1001, depot_a)),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "order.over_available"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "quantity");
    assert_eq!(count(&t, "SELECT count(*) FROM supply_orders").await, 0);
    // Community B sees no offer of P1 and cannot order to A's depot.
    let (s, b) = call(
        &base,
        &worker_b,
        "POST",
        "/api/v1/supply-orders",
        Some(order(10, depot_b)),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "record.reference_invalid"), "{b}");
    assert_eq!(b["error"]["details"]["field"], "offer_id");
    // A provider cannot order.
    let (s, _) = call(
        &base,
        &p1,
        "POST",
        "/api/v1/supply-orders",
        Some(order(10, depot_a)),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(count(&t, "SELECT count(*) FROM supply_orders").await, 0);

    let (s, ord) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/supply-orders",
        Some(order(600, depot_a)),
    )
    .await;
    assert_eq!(s, 201, "{ord}");
    assert_eq!(ord["status"], "placed");
    assert_eq!(ord["total_fen"], 30_000);
    let ord_id = id_of(&ord);
    let (_, o1) = call(
        &base,
        &p1,
        "GET",
        &format!("/api/v1/supply-offers/{offer1_id}"),
        None,
    )
    .await;
    assert_eq!(o1["quantity_available"], 400, "the order took its goods");
    // A second order cannot take more than is left.
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/supply-orders",
        Some(order(401, depot_a)),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "order.over_available"), "{b}");

    let step = |name: &str| format!("/api/v1/supply-orders/{ord_id}/{name}");
    let status_now = || {
        let t = &t;
        let id: Uuid = ord_id.parse().unwrap();
        async move {
            t.store()
                .read(move |c, _| {
                    c.query_one(
                        "SELECT status, delivered_quantity, received_quantity FROM supply_orders WHERE id = $1",
                        &params![id],
                    )
                })
                .await
                .unwrap()
                .map(|r| {
                    (
                        r.get::<String>("status").unwrap(),
                        r.get::<i64>("delivered_quantity").unwrap(),
                        r.get::<i64>("received_quantity").unwrap(),
                    )
                })
                .unwrap()
        }
    };
    // Wrong side: the community cannot confirm or deliver; the provider cannot cancel or
    // receive. Wrong state: nothing is delivered before confirmation.
    for (who, name, want) in [
        (&worker_a, "confirm", (403, "order.wrong_side")),
        (&worker_a, "deliver", (403, "order.wrong_side")),
        (&p1, "cancel", (403, "order.wrong_side")),
        (&p1, "receive", (403, "order.wrong_side")),
        (&p1, "deliver", (409, "order.wrong_state")),
        (&worker_a, "close", (409, "order.wrong_state")),
    ] {
        let (s, b) = call(&base, who, "POST", &step(name), Some(json!({}))).await;
        assert_eq!((s, code(&b)), want, "{} {name}: {b}", who.name);
    }
    // The other provider and the other community: as if there were no such order.
    for (who, name) in [
        (&p2, "confirm"),
        (&p2, "deliver"),
        (&worker_b, "receive"),
        (&worker_b, "cancel"),
    ] {
        let (s, b) = call(&base, who, "POST", &step(name), Some(json!({}))).await;
        assert_eq!(
            (s, code(&b)),
            (404, "record.not_found"),
            "{} {name}",
            who.name
        );
    }
    for who in [&p2, &worker_b] {
        let (s, _) = call(
            &base,
            who,
            "GET",
            &format!("/api/v1/supply-orders/{ord_id}"),
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (_, list) = call(&base, who, "GET", "/api/v1/supply-orders", None).await;
        assert_eq!(list, json!([]), "{} lists no order", who.name);
    }
    assert_eq!(status_now().await, ("placed".into(), 0, 0));
    assert_eq!(
        count(&t, "SELECT count(*) FROM supply_order_events").await,
        1,
        "refused steps wrote no event"
    );

    let (s, b) = call(
        &base,
        &p1,
        "POST",
        &step("confirm"),
        Some(json!({ "note": "明日送达" })),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("confirmed")), "{b}");
    let (s, b) = call(&base, &worker_a, "POST", &step("cancel"), Some(json!({}))).await;
    assert_eq!((s, code(&b)), (409, "order.wrong_state"));
    // Deliver in parts; never more than ordered.
    let (s, b) = call(
        &base,
        &p1,
        "POST",
        &step("deliver"),
        Some(json!({ "quantity": 200 })),
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (200, Some("partially_delivered")),
        "{b}"
    );
    let (s, b) = call(
        &base,
        &p1,
        "POST",
        &step("deliver"),
        Some(json!({ "quantity": 401 })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "order.over_delivery"));
    // Receiving more than came is refused and books nothing.
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &step("receive"),
        Some(json!({ "quantity": 201 })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "order.over_receipt"));
    assert_eq!(balance(&t, depot_a, item_mask).await, 0);
    // Receive what came: the depot's balance rises by exactly that.
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &step("receive"),
        Some(json!({ "note": "点验无误" })),
    )
    .await;
    assert_eq!(
        (s, b["received_quantity"].as_i64()),
        (200, Some(200)),
        "{b}"
    );
    assert_eq!(balance(&t, depot_a, item_mask).await, 200);
    let (s, b) = call(&base, &worker_a, "POST", &step("receive"), Some(json!({}))).await;
    assert_eq!(
        (s, code(&b)),
        (409, "order.wrong_state"),
        "nothing waits: {b}"
    );
    assert_eq!(balance(&t, depot_a, item_mask).await, 200);
    let (s, b) = call(&base, &p1, "POST", &step("deliver"), Some(json!({}))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("delivered")), "{b}");
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &step("receive"),
        Some(json!({ "quantity": 400, "expires_on": "2029-10-31" })),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("received")), "{b}");
    assert_eq!(balance(&t, depot_a, item_mask).await, 600);
    let (s, b) = call(&base, &worker_a, "POST", &step("close"), Some(json!({}))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("closed")), "{b}");
    // Every step recorded: who, when, how much.
    let actions: Vec<&str> = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["place", "confirm", "deliver", "receive", "deliver", "receive", "close"]
    );
    assert_eq!(b["events"][1]["actor_username"], "prov_one");
    assert_eq!(b["events"][1]["note"], "明日送达");
    assert_eq!(b["events"][3]["quantity"], 200);
    let oid: Uuid = ord_id.parse().unwrap();
    let booked = t
        .store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT CAST(coalesce(sum(quantity), 0) AS BIGINT) FROM stock_movements WHERE kind = 'receive' \
                 AND reference_kind = 'order' AND reference_id = $1",
                &params![oid],
            )
        })
        .await
        .unwrap();
    assert_eq!(booked, 600);

    // Cancel before confirmation gives the goods back to the offer.
    let (s, ord2) = call(
        &base,
        &worker_a,
        "POST",
        "/api/v1/supply-orders",
        Some(order(100, depot_a)),
    )
    .await;
    assert_eq!(s, 201);
    let (s, b) = call(
        &base,
        &worker_a,
        "POST",
        &format!("/api/v1/supply-orders/{}/cancel", id_of(&ord2)),
        Some(json!({ "note": "需求变更" })),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("cancelled")));
    let (_, o1) = call(
        &base,
        &p1,
        "GET",
        &format!("/api/v1/supply-offers/{offer1_id}"),
        None,
    )
    .await;
    assert_eq!(o1["quantity_available"], 400);

    // The provider sees no community data: no people, no balances, no other provider.
    let (_, people) = call(&base, &p1, "GET", "/api/v1/people", None).await;
    assert!(
        !people.to_string().contains(&w.person_a1.to_string()),
        "{people}"
    );
    let (_, provs) = call(&base, &p1, "GET", "/api/v1/providers", None).await;
    let ids: Vec<String> = provs.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![prov1_id.clone()]);
    let (s, _) = call(
        &base,
        &p1,
        "GET",
        &format!("/api/v1/providers/{prov2_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // The provider's order view names the depot and nothing of its stock.
    let (_, o) = call(
        &base,
        &p1,
        "GET",
        &format!("/api/v1/supply-orders/{ord_id}"),
        None,
    )
    .await;
    assert_eq!(o["depot_name"], "水井坊物资储备点");
    assert!(o.get("balance").is_none());
});

both_stores!(
    served_nodes_decide_who_sees_offers,
    |t: TestApp| async move {
        // A provider registered by the street serving community B only: A sees nothing, B and the
        // street see its offer.
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let street = staff(&t, "street", Role::StreetOfficer, Scope::Node(w.street)).await;
        let worker_a = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let p = staff(&t, "prov_b", Role::Provider, Scope::Node(w.street)).await;
        let (s, prov) = call(
            &base,
            &street,
            "POST",
            "/api/v1/providers",
            Some(json!({ "node_id": w.street, "name": "锦官驿生鲜超市",
            "credit_code": credit("92510104MA6C8K2N7"), "served_node_ids": [w.comm_b] })),
        )
        .await;
        assert_eq!(s, 201, "{prov}");
        let (s, _) = call(
            &base,
            &street,
            "POST",
            &format!("/api/v1/providers/{}/accounts", id_of(&prov)),
            Some(json!({ "username": "prov_b" })),
        )
        .await;
        assert_eq!(s, 201);
        let (s, off) = call(
            &base,
            &p,
            "POST",
            "/api/v1/supply-offers",
            Some(
                json!({ "item_code": "noodles", "quantity_available": 50, "unit_price_fen": 4800,
            "lead_time_hours": 48, "valid_until": "2026-12-01" }),
            ),
        )
        .await;
        assert_eq!(s, 201, "{off}");
        let off_id = id_of(&off);
        for (who, sees) in [(&worker_a, false), (&worker_b, true), (&street, true)] {
            let (_, list) = call(&base, who, "GET", "/api/v1/supply-offers", None).await;
            assert_eq!(
                list.to_string().contains(&off_id),
                sees,
                "{}: {list}",
                who.name
            );
        }
        // A depot of A is not served: refused naming the depot.
        let depot_a = depot(t.store(), w.comm_a, "A储备点").await;
        let (s, b) = call(
            &base,
            &street,
            "POST",
            "/api/v1/supply-orders",
            Some(
                json!({ "offer_id": off_id, "depot_id": depot_a, "quantity": 5,
            "wanted_by": "2026-11-20" }),
            ),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "order.depot_not_served"), "{b}");
        // The provider withdraws; communities can no longer order.
        let (s, _) = call(
            &base,
            &p,
            "POST",
            &format!("/api/v1/supply-offers/{off_id}/withdraw"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let depot_b = depot(t.store(), w.comm_b, "B储备点").await;
        let (s, b) = call(
            &base,
            &worker_b,
            "POST",
            "/api/v1/supply-orders",
            Some(
                json!({ "offer_id": off_id, "depot_id": depot_b, "quantity": 5,
            "wanted_by": "2026-11-20" }),
            ),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "offer.withdrawn"), "{b}");
        assert_eq!(count(&t, "SELECT count(*) FROM supply_orders").await, 0);
    }
);

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): a provider registered at and serving A with a linked account,
/// its mask offer and an order placed to a depot of A.
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    let depot_a = depot(store, comm_a, "A1物资储备点").await;
    store
        .write(WriteCtx::system("providers-a1"), move |tx| {
            let sys = Caller::system();
            let now = tx.now();
            let p = pv::create_provider(
                tx,
                &sys,
                &ProviderInput {
                    node_id: Some(comm_a),
                    name: Some("A1应急物资供应商".into()),
                    credit_code: pv::with_check_char("91510104MA62A5AP0"),
                    contact_name: Some("赵供货".into()),
                    contact_phone: Some("13700000001".into()),
                    served_node_ids: Some(vec![comm_a]),
                    ..ProviderInput::default()
                },
            )?;
            let u = accounts::create_user(
                tx,
                &sys,
                &NewUser {
                    kind: UserKind::Staff,
                    username: Some(format!("a1_provider_{}", Uuid::now_v7().simple())),
                    display_name: "A1服务商".into(),
                    password_hash: Some(
                        anxin_crypto::hash_password_with(
                            "matrix-Pass-2026",
                            &anxin_crypto::PasswordHasherConfig::INSECURE_FAST_FOR_TESTS,
                        )
                        .unwrap(),
                    ),
                    phone: None,
                },
            )?;
            accounts::create_grant(
                tx,
                &sys,
                u.id,
                &NewGrant {
                    role: Role::Provider,
                    scope: Scope::Node(comm_a),
                    validity: Validity::starting(now),
                    source_ref: None,
                },
            )?;
            let link = pv::link_account(
                tx,
                &sys,
                p.id,
                &pv::AccountLinkInput {
                    account_id: Some(u.id),
                    username: None,
                },
            )?;
            let speaker = Caller::user(
                u.id,
                vec![ActiveGrant {
                    grant_id: None,
                    role: Role::Provider,
                    scope_kind: ScopeKind::Node,
                    scope_id: comm_a,
                }],
            );
            let offer = pv::create_offer(
                tx,
                &speaker,
                &OfferInput {
                    item_code: Some("mask".into()),
                    quantity_available: Some(1000),
                    unit_price_fen: Some(50),
                    lead_time_hours: Some(24),
                    valid_until: Some("2027-06-30".into()),
                    ..OfferInput::default()
                },
            )?;
            let order = pv::place_order(
                tx,
                &sys,
                &OrderInput {
                    offer_id: Some(offer.id),
                    depot_id: Some(depot_a),
                    quantity: Some(100),
                    wanted_by: Some("2026-12-31".into()),
                    note: None,
                },
            )?;
            Ok(HashMap::from([
                ("providers", p.id),
                ("provider_accounts", link.id),
                ("supply_offers", offer.id),
                ("supply_orders", order.id),
            ]))
        })
        .await
        .unwrap()
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/providers" => json!({
            "node_id": w.comm_a, "name": "闯入服务商",
            "credit_code": credit("91510104MA6C8K2N7"), "served_node_ids": [w.comm_a]
        }),
        "/api/v1/providers/{id}" => json!({ "name": "闯入服务商" }),
        "/api/v1/providers/{id}/accounts" => json!({ "username": "provider" }),
        "/api/v1/supply-offers" => json!({
            "item_code": "mask", "quantity_available": 1, "unit_price_fen": 1,
            "lead_time_hours": 1, "valid_until": "2027-01-01", "note": "闯入"
        }),
        "/api/v1/supply-offers/{id}" => json!({ "note": "闯入" }),
        "/api/v1/supply-offers/{id}/withdraw" => json!({}),
        "/api/v1/supply-orders" => json!({
            "offer_id": Uuid::nil(), "depot_id": Uuid::nil(), "quantity": 1,
            "wanted_by": "2027-01-01", "note": "闯入"
        }),
        "/api/v1/supply-orders/{id}/confirm"
        | "/api/v1/supply-orders/{id}/decline"
        | "/api/v1/supply-orders/{id}/deliver"
        | "/api/v1/supply-orders/{id}/cancel"
        | "/api/v1/supply-orders/{id}/receive"
        | "/api/v1/supply-orders/{id}/close" => json!({ "note": "闯入" }),
        // Pages: form fields as strings.
        "/manage/orders" => json!({
            "offer_id": Uuid::nil().to_string(), "depot_id": Uuid::nil().to_string(),
            "quantity": "1", "wanted_by": "2027-01-01"
        }),
        "/manage/orders/{id}/step" => json!({ "step": "confirm", "note": "闯入" }),
        "/manage/providers" => json!({
            "node_id": w.comm_a.to_string(), "name": "闯入服务商",
            "credit_code": credit("91510104MA6C8K2N7")
        }),
        "/manage/providers/{id}/accounts" => json!({ "username": "provider" }),
        "/manage/provider" => json!({
            "item_code": "mask", "quantity_available": "1", "unit_price": "1",
            "lead_time_hours": "1", "valid_until": "2027-01-01"
        }),
        "/manage/provider/offers/{id}" => json!({ "action": "withdraw" }),
        _ => return None,
    })
}

// ---- pages -------------------------------------------------------------------------------------

async fn page(
    base: &str,
    u: &crate::world::User,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = crate::support::client()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
        .header("cookie", &u.cookie);
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

both_stores!(pages_of_both_sides, |t: TestApp| async move {
    // The A1 provider (serving A) with its offer and a placed order; its account signs in.
    let w = world::build(t.store()).await;
    let rec = a1(t.store(), &w, &HashMap::new()).await;
    let (offer, order) = (rec["supply_offers"], rec["supply_orders"]);
    let link = rec["provider_accounts"];
    let account: Uuid = t
        .store()
        .read(move |c, _| {
            c.query_one(
                "SELECT account_id FROM provider_accounts WHERE id = $1",
                &params![link],
            )?
            .unwrap()
            .get("account_id")
        })
        .await
        .unwrap();
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let (token, csrf) = t
        .store()
        .write(WriteCtx::system("pages"), move |tx| {
            let s = accounts::create_session(tx, account, None, true, None)?;
            Ok((s.token, s.csrf))
        })
        .await
        .unwrap();
    let provider = crate::world::User {
        name: "a1_provider",
        cookie: format!("anxin_session={token}"),
        csrf,
    };
    let base = t.serve().await;

    // The community's page lists the offer and the order and offers the order form.
    let (s, _, html) = page(&base, &worker, "GET", "/manage/orders", &[]).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains(&offer.to_string()) && html.contains(&order.to_string()));
    assert!(html.contains("A1应急物资供应商") && html.contains("action=\"/manage/orders\""));
    let (_, _, html) = page(&base, &outsider, "GET", "/manage/orders", &[]).await;
    assert!(!html.contains(&offer.to_string()) && !html.contains(&order.to_string()));
    // The provider's portal: its offer and the order to confirm; the navigation offers it no
    // tree, people or import links.
    let (s, _, html) = page(&base, &provider, "GET", "/manage/provider", &[]).await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains(&offer.to_string()) && html.contains(&order.to_string()));
    for link in [
        "href=\"/manage/people\"",
        "href=\"/manage/import\"",
        "href=\"/manage/orders\"",
    ] {
        assert!(!html.contains(link), "provider nav offers {link}");
    }
    // The order page offers each side its own steps only.
    let path = format!("/manage/orders/{order}");
    let (_, _, html) = page(&base, &provider, "GET", &path, &[]).await;
    assert!(html.contains("value=\"confirm\"") && !html.contains("value=\"cancel\""));
    let (_, _, html) = page(&base, &worker, "GET", &path, &[]).await;
    assert!(html.contains("value=\"cancel\"") && !html.contains("value=\"confirm\""));
    // A wrong-side step through the form is refused with its code; the right side's lands.
    let step = format!("/manage/orders/{order}/step");
    let (s, _, html) = page(&base, &worker, "POST", &step, &[("step", "confirm")]).await;
    assert_eq!(s, 403);
    assert!(html.contains("order.wrong_side"), "{html}");
    let (s, to, _) = page(
        &base,
        &provider,
        "POST",
        &step,
        &[("step", "confirm"), ("note", "收到")],
    )
    .await;
    assert_eq!((s, to.as_str()), (303, path.as_str()));
    let (s, _, _) = page(
        &base,
        &provider,
        "POST",
        &step,
        &[("step", "deliver"), ("quantity", "40")],
    )
    .await;
    assert_eq!(s, 303);
    let (s, _, _) = page(
        &base,
        &worker,
        "POST",
        &step,
        &[("step", "receive"), ("quantity", "40")],
    )
    .await;
    assert_eq!(s, 303);
    let (_, _, html) = page(&base, &worker, "GET", &path, &[]).await;
    assert!(
        html.contains("data-status=\"partially_delivered\""),
        "{html}"
    );
    assert!(html.contains("验收入库") && html.contains("收到"));
    // Publishing through the portal: a price in yuan becomes fen.
    let (s, to, _) = page(
        &base,
        &provider,
        "POST",
        "/manage/provider",
        &[
            ("item_code", "water"),
            ("quantity_available", "300"),
            ("unit_price", "1.5"),
            ("lead_time_hours", "12"),
            ("valid_until", "2026-12-31"),
        ],
    )
    .await;
    assert_eq!((s, to.as_str()), (303, "/manage/provider"));
    let price = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT unit_price_fen FROM supply_offers o JOIN supply_items i ON i.id = o.item_id \
                 WHERE i.code = 'water'",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(price, 150);
    // The outsider's form post on A's order answers like a missing one.
    let (s, _, _) = page(&base, &outsider, "POST", &step, &[("step", "cancel")]).await;
    let missing = format!("/manage/orders/{}/step", Uuid::now_v7());
    let (ms, _, _) = page(&base, &outsider, "POST", &missing, &[("step", "cancel")]).await;
    assert_eq!((s, ms), (404, 404));
});
