//! Stories of distribution campaigns (物资发放) (owner: campaigns): no over-reservation under
//! concurrent requests, one reservation per household (a retry answers the same code), 代办
//! recorded as such, single-use pickup codes, delivery orders for vulnerable households assigned
//! to their helper and marked delivered, the lottery's winners, campaigns opened by a plan's
//! activation (atomically) and closed by its stand-down, and scope isolation.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::scope::Caller;
use anxin_store::supplies::campaigns::{self as sc, CampaignInput, SlotInput};
use anxin_store::{params, Store, WriteCtx};
use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, call, code, staff, user, User, World};

/// Records of community A for the isolation matrix, by change-log kind (`so_far`: what the
/// parts before this one made): an open mask campaign for households with vulnerable people
/// (person A1 is one in the matrix, so household A1 gets a delivery order; household A1n, the
/// matrix's resident, is not offered the campaign).
pub async fn a1(
    store: &Store,
    w: &World,
    _so_far: &HashMap<&'static str, Uuid>,
) -> HashMap<&'static str, Uuid> {
    let comm_a = w.comm_a;
    let (campaign, order) = store
        .write(WriteCtx::system("campaigns-a1"), move |tx| {
            let now = tx.now();
            let sys = Caller::system();
            let mut i = input(comm_a, 10, now);
            i.eligibility = Some("vulnerable".into());
            let d = sc::create(tx, &sys, &i)?;
            sc::open(tx, &sys, d.campaign.id)?;
            let order: Option<Uuid> = tx
                .query_one(
                    "SELECT id FROM campaign_reservations WHERE campaign_id = $1",
                    &params![d.campaign.id],
                )?
                .map(|r| r.get("id"))
                .transpose()?;
            Ok((d.campaign.id, order))
        })
        .await
        .unwrap();
    let mut m = HashMap::from([("campaigns", campaign)]);
    if let Some(o) = order {
        m.insert("campaign_reservations", o);
    }
    m
}

/// A body for the isolation matrix's POST/PATCH to `path`, or `None` when not ours.
pub fn sample_body(path: &str, w: &World) -> Option<Value> {
    Some(match path {
        "/api/v1/campaigns" => json!({
            "node_id": w.comm_a, "title": "闯入发放", "item_code": "mask", "stock": 5,
            "slots": [{ "place_label": "门口", "starts_at": "2026-11-02T01:00:00Z",
                        "ends_at": "2026-11-02T09:00:00Z", "capacity": 5 }]
        }),
        "/manage/campaigns" => json!({
            "node_id": w.comm_a.to_string(), "title": "闯入发放", "item_code": "mask", "stock": "5",
            "place_label": "门口", "starts_at": "2026-11-02T09:00", "ends_at": "2026-11-02T17:00",
            "capacity": "5"
        }),
        "/manage/campaigns/{id}/open"
        | "/manage/campaigns/{id}/close"
        | "/manage/campaigns/{id}/cancel"
        | "/manage/campaigns/{id}/draw" => json!({}),
        "/manage/campaigns/{id}/redeem" => json!({ "code": "23456-789AB" }),
        "/api/v1/campaigns/{id}/open"
        | "/api/v1/campaigns/{id}/close"
        | "/api/v1/campaigns/{id}/cancel"
        | "/api/v1/campaigns/{id}/draw" => json!({}),
        "/api/v1/campaigns/{id}/reservations" => {
            json!({ "household_id": w.hh_a1, "on_behalf": true })
        }
        "/api/v1/campaigns/{id}/redeem" => json!({ "code": "23456-789AB" }),
        "/api/v1/delivery-orders/{id}/assign" => json!({ "user_id": null }),
        "/api/v1/delivery-orders/{id}/delivered" => json!({ "note": "闯入" }),
        _ => return None,
    })
}

/// A mask campaign of `node` (draft): `stock` masks, one per household, one slot today with
/// room for every unit.
fn input(node: Uuid, stock: i64, now: chrono::DateTime<chrono::Utc>) -> CampaignInput {
    CampaignInput {
        node_id: node,
        title: "口罩发放".into(),
        item_code: "mask".into(),
        quantity_per_household: Some(1),
        fulfilment: Some("pickup".into()),
        eligibility: None,
        mode: None,
        draw_at: None,
        stock,
        compounds: vec![],
        depot_id: None,
        note: None,
        slots: vec![SlotInput {
            facility_id: None,
            place_label: Some("社区居委会".into()),
            starts_at: now,
            ends_at: now + Duration::hours(8),
            capacity: stock.max(1),
        }],
    }
}

/// `n` households of community A, each with one member: (household, person).
async fn households(t: &TestApp, w: &World, n: usize) -> Vec<(Uuid, Uuid)> {
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    t.store()
        .write(WriteCtx::system("households"), move |tx| {
            let sys = Caller::system();
            let mut out = Vec::new();
            for k in 0..n {
                let h = anxin_store::people::create_household(
                    tx,
                    &sys,
                    comm_a,
                    Some(grid_a1),
                    None,
                    &format!("9-{k}"),
                )?
                .id;
                let p = anxin_store::people::create_person(
                    tx,
                    &sys,
                    &anxin_store::people::NewPerson::parse(&world::person_input(
                        &format!("住户{k}"),
                        None,
                        None,
                        comm_a,
                        grid_a1,
                        h,
                    ))?,
                )?
                .id;
                out.push((h, p));
            }
            Ok(out)
        })
        .await
        .unwrap()
}

async fn resident(t: &TestApp, name: &str, person: Uuid) -> User {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    user(t, name, UserKind::Resident, None, Some(person)).await
}

/// Create and open a campaign through the API; returns its id and its detail.
async fn start(base: &str, u: &User, body: Value) -> (String, Value) {
    let (s, d) = call(base, u, "POST", "/api/v1/campaigns", Some(body)).await;
    assert_eq!(s, 201, "{d}");
    let id = d["campaign"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["campaign"]["status"], "draft");
    let (s, o) = call(
        base,
        u,
        "POST",
        &format!("/api/v1/campaigns/{id}/open"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["campaign"]["status"], "open", "{o}");
    (id, o)
}

fn mask_body(w: &World, stock: i64, capacity: i64) -> Value {
    json!({
        "node_id": w.comm_a, "title": "口罩发放", "item_code": "mask", "stock": stock,
        "quantity_per_household": 1,
        "slots": [{ "place_label": "社区居委会", "starts_at": "2026-11-02T01:00:00Z",
                    "ends_at": "2026-11-03T09:00:00Z", "capacity": capacity }]
    })
}

async fn one(t: &TestApp, sql: &'static str, id: Uuid) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &params![id]))
        .await
        .unwrap()
}

// ---- stories ----------------------------------------------------------------------------------

both_stores!(
    no_over_reservation_under_concurrent_requests,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let hs = households(&t, &w, 50).await;
        let mut residents = Vec::new();
        for (k, (_, p)) in hs.iter().enumerate() {
            residents.push(resident(&t, &format!("r{k}"), *p).await);
        }
        let (id, _) = start(&base, &worker, mask_body(&w, 20, 50)).await;
        let path = format!("/api/v1/campaigns/{id}/reservations");
        let mut tasks = Vec::new();
        for r in residents {
            let (base, path) = (base.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                call(&base, &r, "POST", &path, Some(json!({}))).await
            }));
        }
        let mut ok = Vec::new();
        let mut sold_out = 0;
        for task in tasks {
            let (s, b) = task.await.unwrap();
            match s {
                201 => ok.push(b),
                409 if code(&b) == "campaign.sold_out" => sold_out += 1,
                _ => panic!("unexpected answer {s}: {b}"),
            }
        }
        assert_eq!((ok.len(), sold_out), (20, 30));
        let mut codes: Vec<&str> = ok.iter().map(|b| b["code"].as_str().unwrap()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 20, "codes must differ");
        assert!(ok.iter().all(|b| b["status"] == "reserved"
            && b["slot"]["place"] == "社区居委会"
            && b["code"].as_str().unwrap().len() == 11));
        let cid: Uuid = id.parse().unwrap();
        assert_eq!(
            one(&t, "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1 AND status = 'reserved'", cid).await,
            20
        );
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
            20
        );
        let (s, d) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{id}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(
            (
                d["campaign"]["reserved"].as_i64(),
                d["campaign"]["remaining"].as_i64()
            ),
            (Some(20), Some(0))
        );
        assert_eq!(d["slots"][0]["reserved"], 20);
        assert_eq!(d["slots"][0]["remaining"], 30);
    }
);

both_stores!(
    one_reservation_per_household_and_on_behalf_is_recorded,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let r = resident(&t, "resident_a1", w.person_a1).await;
        let (id, _) = start(&base, &worker, mask_body(&w, 10, 10)).await;
        let path = format!("/api/v1/campaigns/{id}/reservations");
        let (s, first) = call(&base, &r, "POST", &path, Some(json!({}))).await;
        assert_eq!(s, 201, "{first}");
        // A retry (a lost answer, a double tap) gets the same reservation and code back.
        let (s, again) = call(
            &base,
            &r,
            "POST",
            &path,
            Some(json!({ "request_key": "k2" })),
        )
        .await;
        assert_eq!(s, 201, "{again}");
        assert_eq!(first["reservation_id"], again["reservation_id"]);
        assert_eq!(first["code"], again["code"]);
        let cid: Uuid = id.parse().unwrap();
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
            1,
            "a retry took a second unit"
        );
        // The resident sees it with the code.
        let (s, mine) = call(&base, &r, "GET", "/api/v1/resident/campaigns", None).await;
        assert_eq!(s, 200);
        assert_eq!(mine[0]["mine"]["code"], first["code"], "{mine}");
        // A resident may not reserve on behalf or for another household.
        let (s, b) = call(
            &base,
            &r,
            "POST",
            &path,
            Some(json!({ "household_id": w.hh_a1n })),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "campaign.household_not_own"), "{b}");
        let (s, b) = call(&base, &r, "POST", &path, Some(json!({ "on_behalf": true }))).await;
        assert_eq!((s, code(&b)), (422, "campaign.on_behalf_staff_only"), "{b}");
        // 代办: a worker for household A1n (an old man without a phone); must say so.
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &path,
            Some(json!({ "household_id": w.hh_a1n })),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "campaign.on_behalf_required"), "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &path,
            Some(json!({ "household_id": w.hh_a1n, "on_behalf": true })),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let rid: Uuid = b["reservation_id"].as_str().unwrap().parse().unwrap();
        let row = t
            .store()
            .read(move |c, _| {
                c.query_one(
                    "SELECT r.on_behalf, u.username FROM campaign_reservations r JOIN users u ON u.id = r.actor WHERE r.id = $1",
                    &params![rid],
                )
            })
            .await
            .unwrap()
            .unwrap();
        assert!(row.get::<bool>("on_behalf").unwrap());
        assert_eq!(row.get::<String>("username").unwrap(), "worker_a");
        // A worker of community B cannot reserve here (the campaign is not theirs).
        let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let (s, _) = call(
            &base,
            &worker_b,
            "POST",
            &path,
            Some(json!({ "household_id": w.hh_b1, "on_behalf": true })),
        )
        .await;
        assert_eq!(s, 404);
        assert_eq!(
            one(
                &t,
                "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
                cid
            )
            .await,
            2
        );
    }
);

both_stores!(code_is_single_use, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let r = resident(&t, "resident_a1", w.person_a1).await;
    let (id, _) = start(&base, &worker, mask_body(&w, 10, 10)).await;
    let (s, res) = call(
        &base,
        &r,
        "POST",
        &format!("/api/v1/campaigns/{id}/reservations"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{res}");
    let code_shown = res["code"].as_str().unwrap().to_owned();
    let redeem = format!("/api/v1/campaigns/{id}/redeem");
    // Another community's worker cannot redeem here.
    let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let (s, _) = call(
        &base,
        &worker_b,
        "POST",
        &redeem,
        Some(json!({ "code": code_shown })),
    )
    .await;
    assert_eq!(s, 404);
    // A resident cannot redeem.
    let (s, _) = call(
        &base,
        &r,
        "POST",
        &redeem,
        Some(json!({ "code": code_shown })),
    )
    .await;
    assert_eq!(s, 403);
    // Typed in lower case without the dash: the same code.
    let typed = code_shown.replace('-', "").to_lowercase();
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &redeem,
        Some(json!({ "code": typed })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["redeemed"], true);
    assert_eq!(b["reservation"]["status"], "redeemed");
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &redeem,
        Some(json!({ "code": code_shown })),
    )
    .await;
    assert_eq!((s, code(&b)), (409, "campaign.code_used"), "{b}");
    assert!(b["error"]["details"]["redeemed_at"].is_string(), "{b}");
    assert_eq!(b["error"]["details"]["redeemed_by"], "w*******");
    // Unknown and malformed codes.
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &redeem,
        Some(json!({ "code": "22222-22222" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "campaign.code_unknown"), "{b}");
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &redeem,
        Some(json!({ "code": "nope" })),
    )
    .await;
    assert_eq!((s, code(&b)), (422, "campaign.code_invalid"), "{b}");
    let cid: Uuid = id.parse().unwrap();
    assert_eq!(
        one(&t, "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1 AND status = 'redeemed'", cid).await,
        1
    );
    let (_, d) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(d["slots"][0]["redeemed"], 1);
});

both_stores!(
    vulnerable_households_get_delivery_orders,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let helper = staff(&t, "helper_a", Role::Volunteer, Scope::Node(w.comm_a)).await;
        let (p, p2) = (w.person_a1, w.person_a1n);
        t.store()
            .write(WriteCtx::system("vulnerable"), move |tx| {
                let helper: Uuid = tx
                    .query_one("SELECT id FROM users WHERE username = 'helper_a'", &[])?
                    .unwrap()
                    .get("id")?;
                for (person, h) in [(p, Some(helper)), (p2, None)] {
                    anxin_store::people::add_vulnerable(
                        tx,
                        &Caller::system(),
                        &anxin_store::people::VulnerableInput {
                            person_id: person,
                            category: "elderly_alone".into(),
                            helper_user_id: h,
                            contact_channel: "no_smartphone".into(),
                            notes: None,
                        },
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        // Stock too small for the two delivery orders: opening is refused, nothing changes.
        let (s, d) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/campaigns",
            Some(mask_body(&w, 1, 1)),
        )
        .await;
        assert_eq!(s, 201);
        let small = d["campaign"]["id"].as_str().unwrap().to_owned();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/campaigns/{small}/open"),
            None,
        )
        .await;
        assert_eq!(
            (s, code(&b)),
            (409, "campaign.stock_below_deliveries"),
            "{b}"
        );
        assert_eq!(
            one(
                &t,
                "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
                small.parse().unwrap()
            )
            .await,
            0
        );

        let (id, o) = start(&base, &worker, mask_body(&w, 10, 10)).await;
        assert_eq!(
            (o["deliveries"].as_i64(), o["to_helpers"].as_i64()),
            (Some(2), Some(1)),
            "{o}"
        );
        let (_, d) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{id}"),
            None,
        )
        .await;
        assert_eq!(
            (
                d["deliveries_open"].as_i64(),
                d["deliveries_unassigned"].as_i64(),
                d["campaign"]["reserved"].as_i64()
            ),
            (Some(2), Some(1), Some(2)),
            "{d}"
        );
        // The helper sees the order assigned to them and marks it delivered.
        let (s, mine) = call(&base, &helper, "GET", "/api/v1/delivery-orders", None).await;
        assert_eq!(s, 200);
        let orders = mine.as_array().unwrap();
        assert_eq!(orders.len(), 1, "{mine}");
        assert_eq!(orders[0]["household_id"], json!(w.hh_a1));
        let oid = orders[0]["id"].as_str().unwrap().to_owned();
        let (s, b) = call(
            &base,
            &helper,
            "POST",
            &format!("/api/v1/delivery-orders/{oid}/delivered"),
            Some(json!({ "note": "已送到老人手中" })),
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("delivered")), "{b}");
        let (s, b) = call(
            &base,
            &helper,
            "POST",
            &format!("/api/v1/delivery-orders/{oid}/delivered"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "campaign.delivery_done"), "{b}");
        // The unassigned order goes to the helper by the worker; a community-B volunteer may not
        // take it.
        let (_, list) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{id}/reservations?kind=delivery&status=reserved"),
            None,
        )
        .await;
        let other = list[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(list[0]["household_id"], json!(w.hh_a1n));
        staff(&t, "vol_b", Role::Volunteer, Scope::Node(w.comm_b)).await;
        let vol_b: Uuid = t
            .store()
            .read(|c, _| c.query_one("SELECT id FROM users WHERE username = 'vol_b'", &[]))
            .await
            .unwrap()
            .unwrap()
            .get("id")
            .unwrap();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/delivery-orders/{other}/assign"),
            Some(json!({ "user_id": vol_b })),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "campaign.assignee_outside"), "{b}");
        // The household sees its delivery order, not a code.
        let r = resident(&t, "resident_a1", w.person_a1).await;
        let (_, mine) = call(&base, &r, "GET", "/api/v1/resident/campaigns", None).await;
        assert_eq!(mine[0]["mine"]["status"], "delivered", "{mine}");
        assert_eq!(mine[0]["mine"]["code"], "");
    }
);

both_stores!(
    lottery_draws_min_of_stock_and_applicants,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let hs = households(&t, &w, 8).await;
        for (stock, applicants) in [(5i64, 8usize), (5, 3)] {
            let mut body = mask_body(&w, stock, 20);
            body["mode"] = json!("lottery");
            body["draw_at"] = json!("2026-11-02T12:00:00Z");
            let (id, _) = start(&base, &worker, body).await;
            let path = format!("/api/v1/campaigns/{id}/reservations");
            for (h, _) in hs.iter().take(applicants) {
                let (s, b) = call(
                    &base,
                    &worker,
                    "POST",
                    &path,
                    Some(json!({ "household_id": h, "on_behalf": true })),
                )
                .await;
                assert_eq!(
                    (s, b["status"].as_str(), b["code"].as_str()),
                    (201, Some("applied"), Some("")),
                    "{b}"
                );
            }
            let cid: Uuid = id.parse().unwrap();
            assert_eq!(
                one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
                0,
                "applications take no stock"
            );
            let (s, d) = call(
                &base,
                &worker,
                "POST",
                &format!("/api/v1/campaigns/{id}/draw"),
                None,
            )
            .await;
            assert_eq!(s, 200, "{d}");
            let want = (stock as usize).min(applicants) as i64;
            assert_eq!(d["winners"].as_i64(), Some(want), "{d}");
            assert_eq!(d["lost"].as_i64(), Some(applicants as i64 - want));
            assert!(!d["seed"].as_str().unwrap().is_empty());
            assert_eq!(
                one(&t, "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1 AND status = 'reserved' AND code_bidx IS NOT NULL", cid).await,
                want
            );
            assert_eq!(
                one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
                want
            );
            let (s, b) = call(
                &base,
                &worker,
                "POST",
                &format!("/api/v1/campaigns/{id}/draw"),
                None,
            )
            .await;
            assert_eq!((s, code(&b)), (409, "campaign.already_drawn"));
            // A winner's retry answers with the code now.
            let (_, again) = call(
                &base,
                &worker,
                "POST",
                &path,
                Some(json!({ "household_id": hs[0].0, "on_behalf": true })),
            )
            .await;
            let st = again["status"].as_str().unwrap();
            assert!(st == "reserved" || st == "lost", "{again}");
            assert_eq!(
                st == "reserved",
                !again["code"].as_str().unwrap().is_empty()
            );
        }
    }
);

both_stores!(
    activation_opens_campaigns_atomically_and_stand_down_closes_them,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let plan = |supplies: Value| {
            json!({
                "risks": ["public_health"], "triggers": [], "roles": [],
                "tasks": [],
                "shelters": [], "welfare_checks": false, "supplies": supplies
            })
        };
        let adopt = |name: &'static str, body: Value| {
            let (base, worker, comm_a) = (base.clone(), &worker, w.comm_a);
            async move {
                let (s, p) = call(
                    &base,
                    worker,
                    "POST",
                    "/api/v1/plans",
                    Some(json!({ "node_id": comm_a, "name": name, "review_period_days": 30 })),
                )
                .await;
                assert_eq!(s, 201, "{p}");
                let plan = p["id"].as_str().unwrap().to_owned();
                let (s, v) = call(
                    &base,
                    worker,
                    "POST",
                    &format!("/api/v1/plans/{plan}/versions"),
                    Some(json!({ "body": body, "change_summary": "首版" })),
                )
                .await;
                assert_eq!(s, 201, "{v}");
                let version = v["id"].as_str().unwrap().to_owned();
                let (s, a) = call(
                    &base,
                    worker,
                    "POST",
                    &format!("/api/v1/plan-versions/{version}/adopt"),
                    None,
                )
                .await;
                assert_eq!(s, 200, "{a}");
                plan
            }
        };
        // An entry naming an item nobody has: the last step fails, nothing of the activation
        // is left (incident, tasks, log, campaigns).
        let bad = adopt("坏预案", plan(json!([{ "item": "unicorn", "stock": 10 }]))).await;
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{bad}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, code(&b)), (422, "campaign.item_unknown"), "{b}");
        let left = t.store().read(|c, _| c.query_i64(
            "SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM incident_tasks) \
             + (SELECT count(*) FROM incident_log) + (SELECT count(*) FROM campaigns) \
             + (SELECT count(*) FROM campaign_slots) + (SELECT count(*) FROM campaign_counters)", &[])).await.unwrap();
        assert_eq!(left, 0, "a failed activation left something behind");

        let good = adopt(
            "口罩发放预案",
            plan(json!([
                { "item": "mask", "quantity_per_household": 2, "stock": 200, "place": "社区卫生站" }
            ])),
        )
        .await;
        let (s, inc) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{good}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, inc["status"].as_str()), (201, Some("active")), "{inc}");
        let incident = inc["id"].as_str().unwrap().to_owned();
        let (_, list) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns?incident_id={incident}"),
            None,
        )
        .await;
        let list = list.as_array().unwrap().clone();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["status"], "open");
        assert_eq!(list[0]["stock"], 200);
        assert_eq!(list[0]["quantity_per_household"], 2);
        let cid = list[0]["id"].as_str().unwrap().to_owned();
        let (_, d) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{cid}"),
            None,
        )
        .await;
        assert_eq!(d["slots"][0]["place"], "社区卫生站");
        assert_eq!(d["slots"][0]["capacity"], 100);
        let iid: Uuid = incident.parse().unwrap();
        assert_eq!(
            one(&t, "SELECT count(*) FROM incident_log WHERE incident_id = $1 AND kind = 'campaigns.opened'", iid).await,
            1
        );
        // A resident reserves two masks.
        let r = resident(&t, "resident_a1", w.person_a1).await;
        let (s, b) = call(
            &base,
            &r,
            "POST",
            &format!("/api/v1/campaigns/{cid}/reservations"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(
            one(
                &t,
                "SELECT used FROM campaign_counters WHERE id = $1",
                cid.parse().unwrap()
            )
            .await,
            2
        );
        // Stand-down closes the campaign.
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/incidents/{incident}/deactivate"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (_, d) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{cid}"),
            None,
        )
        .await;
        assert_eq!(d["campaign"]["status"], "closed", "{d}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/campaigns/{cid}/reservations"),
            Some(json!({ "household_id": w.hh_a1n, "on_behalf": true })),
        )
        .await;
        assert_eq!((s, code(&b)), (409, "campaign.not_open"), "{b}");
    }
);

both_stores!(campaigns_stay_in_their_scope, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let worker_b = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    // A worker cannot configure a campaign for another community.
    let mut body = mask_body(&w, 5, 5);
    body["node_id"] = json!(w.comm_b);
    let (s, b) = call(&base, &worker, "POST", "/api/v1/campaigns", Some(body)).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (422, Some("node_id")),
        "{b}"
    );
    // Validation names the field.
    let mut body = mask_body(&w, 5, 5);
    body["slots"][0]["capacity"] = json!(0);
    let (s, b) = call(&base, &worker, "POST", "/api/v1/campaigns", Some(body)).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (422, Some("slots[0].capacity")),
        "{b}"
    );
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        "/api/v1/campaigns",
        Some(mask_body(&w, 10, 5)),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let small = b["campaign"]["id"].as_str().unwrap().to_owned();
    let (s, b) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/campaigns/{small}/open"),
        None,
    )
    .await;
    assert_eq!((s, code(&b)), (409, "campaign.capacity_below_stock"), "{b}");

    let (id, _) = start(&base, &worker, mask_body(&w, 5, 5)).await;
    let (s, _) = call(
        &base,
        &worker_b,
        "GET",
        &format!("/api/v1/campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, l) = call(&base, &worker_b, "GET", "/api/v1/campaigns", None).await;
    assert!(!l.to_string().contains(&id));
    // A resident of community B is not offered it and cannot reserve.
    let rb = resident(&t, "resident_b1", w.person_b1).await;
    let (_, mine) = call(&base, &rb, "GET", "/api/v1/resident/campaigns", None).await;
    assert_eq!(mine, json!([]));
    let (s, _) = call(
        &base,
        &rb,
        "POST",
        &format!("/api/v1/campaigns/{id}/reservations"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        one(
            &t,
            "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
            id.parse().unwrap()
        )
        .await,
        0
    );
});

// ---- the rush: set-based batches, the naive side, the session cache (owner: rush) -------------

/// The id of a user by username (staff) or by linked person (residents).
async fn user_id_of(t: &TestApp, username: Option<&'static str>, person: Option<Uuid>) -> Uuid {
    t.store()
        .read(move |c, _| {
            let r = match (username, person) {
                (Some(u), _) => {
                    c.query_one("SELECT id FROM users WHERE username = $1", &params![u])?
                }
                (None, Some(p)) => c.query_one(
                    "SELECT user_id AS id FROM user_people WHERE person_id = $1",
                    &params![p],
                )?,
                _ => None,
            };
            r.unwrap().get::<Uuid>("id")
        })
        .await
        .unwrap()
}

fn req(campaign: Uuid, household: Uuid, slot: Option<Uuid>, actor: Uuid) -> sc::ReserveRequest {
    sc::ReserveRequest {
        campaign_id: campaign,
        household_id: household,
        slot_id: slot,
        actor,
        on_behalf: true,
        request_key: None,
    }
}

both_stores!(
    reserve_many_decides_a_batch_set_based,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let hs = households(&t, &w, 6).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let actor = user_id_of(&t, Some(worker.name), None).await;
        let comm_a = w.comm_a;
        // Stock 3; slot 1 serves one household, slot 2 five.
        let (cid, s1, s2) = t
            .store()
            .write(WriteCtx::system("rush-batch"), move |tx| {
                let now = tx.now();
                let sys = Caller::system();
                let mut i = input(comm_a, 3, now);
                i.slots[0].capacity = 1;
                i.slots.push(SlotInput {
                    facility_id: None,
                    place_label: Some("小区南门".into()),
                    starts_at: now + Duration::hours(1),
                    ends_at: now + Duration::hours(9),
                    capacity: 5,
                });
                let d = sc::create(tx, &sys, &i)?;
                sc::open(tx, &sys, d.campaign.id)?;
                Ok((d.campaign.id, d.slots[0].id, d.slots[1].id))
            })
            .await
            .unwrap();
        let hh: Vec<Uuid> = hs.iter().map(|x| x.0).collect();
        let h = |k: usize| hh[k];
        let (h0, h1, h2, h4) = (h(0), h(1), h(2), h(4));
        let reqs = vec![
            req(cid, h(0), Some(s1), actor),
            req(cid, h(1), Some(s1), actor), // slot 1 is full
            req(cid, h(0), Some(s1), actor), // the same household again in the batch
            req(cid, h(2), Some(s2), actor),
            req(cid, h(3), Some(s2), actor),
            req(cid, h(4), Some(s2), actor), // the stock is gone
            req(cid, Uuid::now_v7(), Some(s2), actor),
            req(cid, h(5), None, actor), // two slots: one must be chosen
            req(Uuid::now_v7(), h(5), None, actor),
        ];
        let answers = t
            .store()
            .write(WriteCtx::system("rush-batch"), move |tx| {
                sc::reserve_many(tx, &reqs)
            })
            .await
            .unwrap();
        assert_eq!(answers.len(), 9);
        let ok = |k: usize| answers[k].as_ref().unwrap();
        let err = |k: usize| match &answers[k] {
            Err(anxin_store::StoreError::Conflict { code, .. }) => code.to_string(),
            Err(anxin_store::StoreError::Invalid { code, .. }) => code.to_string(),
            Err(anxin_store::StoreError::NotFound) => "not_found".into(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(ok(0).status, "reserved");
        assert_eq!(ok(0).code.len(), 11);
        assert_eq!(ok(0).slot.as_ref().unwrap().place, "社区居委会");
        assert_eq!(err(1), "campaign.slot_full");
        assert_eq!(ok(2).reservation_id, ok(0).reservation_id);
        assert_eq!(ok(2).code, ok(0).code);
        assert_eq!(ok(3).slot.as_ref().unwrap().place, "小区南门");
        assert_eq!(ok(4).slot_id, Some(s2));
        assert_ne!(ok(3).code, ok(4).code);
        assert_eq!(err(5), "campaign.sold_out");
        assert_eq!(err(6), "campaign.household_unknown");
        assert_eq!(err(7), "value.required");
        assert_eq!(err(8), "not_found");
        // The slot counts in the answers are as of the batch.
        assert_eq!(ok(4).slot.as_ref().unwrap().reserved, 2);
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
            3
        );
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", s1).await,
            1
        );
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", s2).await,
            2
        );
        assert_eq!(
            one(
                &t,
                "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
                cid
            )
            .await,
            3
        );
        // Every reservation has its change-log entry (the multi-row insert logs each).
        assert_eq!(
        one(
            &t,
            "SELECT count(*) FROM change_log l JOIN campaign_reservations r ON r.id = l.record_id \
             WHERE r.campaign_id = $1 AND l.kind = 'campaign_reservations'",
            cid
        )
        .await,
        3
    );
        // A retry in a later batch answers the same reservation and code, taking nothing.
        let first = ok(3).clone();
        let again = t
            .store()
            .write(WriteCtx::system("rush-batch"), move |tx| {
                sc::reserve_many(
                    tx,
                    &[req(cid, h2, Some(s2), actor), req(cid, h4, Some(s2), actor)],
                )
            })
            .await
            .unwrap();
        let a0 = again[0].as_ref().unwrap();
        assert_eq!(
            (a0.reservation_id, &a0.code),
            (first.reservation_id, &first.code)
        );
        assert!(again[1].is_err());
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
            3
        );
        // A lottery campaign: applications take no stock and show no code until the draw.
        let lot = t
            .store()
            .write(WriteCtx::system("rush-lottery"), move |tx| {
                let now = tx.now();
                let sys = Caller::system();
                let mut i = input(comm_a, 1, now);
                i.mode = Some("lottery".into());
                i.draw_at = Some(now + Duration::hours(1));
                i.slots[0].capacity = 5;
                let d = sc::create(tx, &sys, &i)?;
                sc::open(tx, &sys, d.campaign.id)?;
                Ok(d.campaign.id)
            })
            .await
            .unwrap();
        let applied = t
            .store()
            .write(WriteCtx::system("rush-lottery"), move |tx| {
                sc::reserve_many(tx, &[req(lot, h0, None, actor), req(lot, h1, None, actor)])
            })
            .await
            .unwrap();
        for a in &applied {
            let a = a.as_ref().unwrap();
            assert_eq!((a.status.as_str(), a.code.as_str()), ("applied", ""));
        }
        assert_eq!(
            one(&t, "SELECT used FROM campaign_counters WHERE id = $1", lot).await,
            0
        );
    }
);

/// The naive side (`campaigns.batch = false`: one transaction per request, written alone)
/// keeps every guarantee under concurrent requests.
async fn naive_side(backend: crate::support::Backend) {
    let t = TestApp::with_config(backend, |c| c.campaigns.batch = false).await;
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let hs = households(&t, &w, 12).await;
    let mut residents = Vec::new();
    for (k, (_, p)) in hs.iter().enumerate() {
        residents.push(resident(&t, &format!("n{k}"), *p).await);
    }
    let (id, _) = start(&base, &worker, mask_body(&w, 5, 12)).await;
    let path = format!("/api/v1/campaigns/{id}/reservations");
    let mut tasks = Vec::new();
    for r in residents {
        let (base, path) = (base.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            // Each resident taps twice at once.
            let a = call(&base, &r, "POST", &path, Some(json!({}))).await;
            let b = call(&base, &r, "POST", &path, Some(json!({}))).await;
            (a, b)
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        let ((s1, b1), (s2, b2)) = task.await.unwrap();
        assert_eq!(s1, s2, "{b1} {b2}");
        if s1 == 201 {
            assert_eq!(b1["code"], b2["code"]);
            assert_eq!(b1["slot"]["place"], "社区居委会");
            codes.push(b1["code"].as_str().unwrap().to_owned());
        } else {
            assert_eq!((s1, code(&b1)), (409, "campaign.sold_out"), "{b1}");
        }
    }
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 5);
    let cid: Uuid = id.parse().unwrap();
    assert_eq!(
        one(&t, "SELECT used FROM campaign_counters WHERE id = $1", cid).await,
        5
    );
    assert_eq!(
        one(
            &t,
            "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
            cid
        )
        .await,
        5
    );
    assert_eq!(
        t.app
            .rush
            .stats()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

mod naive_side_keeps_the_guarantees {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::naive_side(crate::support::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::naive_side(crate::support::Backend::Postgres).await;
    }
}

both_stores!(writes_alone_commit_alone, |t: TestApp| async move {
    // Writes that run alone see no other write's changes in their transaction: each reads the
    // rows committed before it, never one of a write queued beside it (on SQLite the writer
    // would otherwise put them in one transaction). The marker: a write's own transaction id
    // (PostgreSQL), or on SQLite that all of them succeed with distinct commits.
    let store = t.store().clone();
    let mut tasks = Vec::new();
    for k in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write_alone(WriteCtx::system(format!("alone-{k}")), move |tx| {
                if tx.dialect() == anxin_store::Dialect::Postgres {
                    tx.query_one("SELECT txid_current()::text AS x", &[])?
                        .unwrap()
                        .get::<String>("x")
                } else {
                    Ok(format!("{k}"))
                }
            })
            .await
            .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16);
});

/// Reach a resident's own page; the status.
async fn page(base: &str, u: &User) -> u16 {
    call(base, u, "GET", "/api/v1/resident/campaigns", None)
        .await
        .0
}

both_stores!(
    session_cache_follows_every_change_at_once,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let r1 = resident(&t, "resident_a1", w.person_a1).await;
        let (id, _) = start(&base, &worker, mask_body(&w, 10, 10)).await;
        let path = format!("/api/v1/campaigns/{id}/reservations");
        assert_eq!(page(&base, &r1).await, 200);
        assert!(t.app.sessions.len() >= 2, "resolved sessions are cached");
        // Reads and reservations leave the cache's generation alone.
        let g0 = t.store().auth_generation();
        let (s, a) = call(&base, &r1, "POST", &path, Some(json!({}))).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(a["household_id"], w.hh_a1.to_string());
        assert_eq!(page(&base, &r1).await, 200);
        assert_eq!(t.store().auth_generation(), g0);

        // The linked person moves to another household: the next request acts for the new one.
        let (comm_a, grid_a1, p1) = (w.comm_a, w.grid_a1, w.person_a1);
        let hh_new = t
            .store()
            .write(WriteCtx::system("move"), move |tx| {
                let sys = Caller::system();
                let h = anxin_store::people::create_household(
                    tx,
                    &sys,
                    comm_a,
                    Some(grid_a1),
                    None,
                    "9-new",
                )?
                .id;
                tx.update("people", p1, &[("household_id", h.into())])?;
                Ok(h)
            })
            .await
            .unwrap();
        assert!(t.store().auth_generation() > g0);
        let (s, a) = call(&base, &r1, "POST", &path, Some(json!({}))).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(
            a["household_id"],
            hh_new.to_string(),
            "the cached person was used"
        );

        // A revoked grant stops working at once.
        let show = format!("/api/v1/campaigns/{id}");
        assert_eq!(call(&base, &worker, "GET", &show, None).await.0, 200);
        let wid = user_id_of(&t, Some("worker_a"), None).await;
        t.store()
            .write(WriteCtx::system("revoke"), move |tx| {
                let g: Uuid = tx
                    .query_one("SELECT id FROM grants WHERE user_id = $1", &params![wid])?
                    .unwrap()
                    .get("id")?;
                anxin_store::accounts::revoke_grant(tx, &Caller::system(), g).map(|_| ())
            })
            .await
            .unwrap();
        let (s, b) = call(&base, &worker, "GET", &show, None).await;
        assert!(s == 403 || s == 404, "revoked grant still used: {s} {b}");

        // A password change is seen at once (the generation moves).
        let w2 = staff(&t, "worker_p", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        assert_eq!(call(&base, &w2, "GET", &show, None).await.0, 200);
        let w2id = user_id_of(&t, Some("worker_p"), None).await;
        let g1 = t.store().auth_generation();
        t.store()
            .write(WriteCtx::system("password"), move |tx| {
                anxin_store::accounts::set_password_hash(
                    tx,
                    w2id,
                    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
                )
            })
            .await
            .unwrap();
        assert!(t.store().auth_generation() > g1);
        assert_eq!(call(&base, &w2, "GET", &show, None).await.0, 200);

        // Sign-out ends the session at once.
        let (s, _) = call(&base, &w2, "POST", "/api/v1/auth/logout", None).await;
        assert_eq!(s, 204);
        assert_eq!(call(&base, &w2, "GET", &show, None).await.0, 401);

        // Disabling an account ends its sessions at once.
        let r2 = resident(&t, "resident_a1n", w.person_a1n).await;
        assert_eq!(page(&base, &r2).await, 200);
        let r2id = user_id_of(&t, None, Some(w.person_a1n)).await;
        t.store()
            .write(WriteCtx::system("disable"), move |tx| {
                anxin_store::accounts::disable_user(tx, &Caller::system(), r2id).map(|_| ())
            })
            .await
            .unwrap();
        assert_eq!(page(&base, &r2).await, 401);

        // Revoking every session of a user (what an administrator does) ends them at once.
        let hs = households(&t, &w, 1).await;
        let r3 = resident(&t, "resident_x", hs[0].1).await;
        assert_eq!(page(&base, &r3).await, 200);
        let r3id = user_id_of(&t, None, Some(hs[0].1)).await;
        t.store()
            .write(WriteCtx::system("revoke-sessions"), move |tx| {
                anxin_store::accounts::end_user_sessions(tx, r3id).map(|_| ())
            })
            .await
            .unwrap();
        assert_eq!(page(&base, &r3).await, 401);
        // Unlinking the person: the resident no longer acts as them.
        assert_eq!(page(&base, &r1).await, 200);
        t.store()
            .write(WriteCtx::system("unlink"), move |tx| {
                tx.execute_unlogged("DELETE FROM user_people WHERE person_id = $1", &params![p1])
                    .map(|_| ())
            })
            .await
            .unwrap();
        assert_eq!(page(&base, &r1).await, 403);
    }
);

both_stores!(
    session_cache_honours_expiry_and_touches,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let wid = user_id_of(&t, Some("worker_a"), None).await;
        let last_seen = || async {
            t.store()
                .read(move |c, _| {
                    c.query_one(
                        "SELECT last_seen FROM sessions WHERE user_id = $1",
                        &params![wid],
                    )?
                    .unwrap()
                    .get::<chrono::DateTime<chrono::Utc>>("last_seen")
                })
                .await
                .unwrap()
        };
        let list = "/api/v1/campaigns";
        let start_seen = last_seen().await;
        assert_eq!(call(&base, &worker, "GET", list, None).await.0, 200);
        t.clock.advance(Duration::seconds(5));
        assert_eq!(call(&base, &worker, "GET", list, None).await.0, 200);
        assert_eq!(last_seen().await, start_seen, "touched before a minute");
        let g = t.store().auth_generation();
        // Two minutes later: the once-a-minute touch still happens…
        t.clock.advance(Duration::minutes(2));
        assert_eq!(call(&base, &worker, "GET", list, None).await.0, 200);
        let touched = last_seen().await;
        assert_eq!(touched, anxin_domain::Clock::now(&t.clock));
        assert_eq!(
            t.store().auth_generation(),
            g,
            "a touch is not a change of the session"
        );
        // …and the cached session knows it: no second touch a second later.
        t.clock.advance(Duration::seconds(1));
        assert_eq!(call(&base, &worker, "GET", list, None).await.0, 200);
        assert_eq!(last_seen().await, touched);
        // Idle longer than auth.session_idle_minutes: the cached session has ended too.
        t.clock.advance(Duration::minutes(31));
        assert_eq!(call(&base, &worker, "GET", list, None).await.0, 401);
    }
);

both_stores!(
    session_cache_off_resolves_every_request,
    |t: TestApp| async move {
        // `auth.session_cache_ms = 0` keeps nothing (set on a copy of the app's configuration).
        let mut app = t.app.clone();
        let mut config = (*app.config).clone();
        config.auth.session_cache_ms = 0;
        app.config = std::sync::Arc::new(config);
        app.sessions = std::sync::Arc::default();
        let w = world::build(t.store()).await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = anxin::http::router(app.clone());
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        assert_eq!(
            call(&base, &worker, "GET", "/api/v1/campaigns", None)
                .await
                .0,
            200
        );
        assert!(app.sessions.is_empty());
    }
);

both_stores!(
    session_reader_answers_each_miss_its_own,
    |t: TestApp| async move {
        // Residents' first requests all at once: their sessions miss the cache and are read
        // together by the session reader; each request must act for its own household.
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let (id, _) = start(&base, &worker, mask_body(&w, 100, 100)).await;
        let path = format!("/api/v1/campaigns/{id}/reservations");
        let hs = households(&t, &w, 24).await;
        let mut people = Vec::new();
        for (k, (h, p)) in hs.iter().enumerate() {
            people.push((*h, resident(&t, &format!("reader_{k}"), *p).await));
        }
        let cached = t.app.sessions.len();
        let mut tasks = Vec::new();
        for (h, u) in people {
            let (base, path) = (base.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let (s, a) = call(&base, &u, "POST", &path, Some(json!({}))).await;
                (h, s, a)
            }));
        }
        for task in tasks {
            let (h, s, a) = task.await.unwrap();
            assert_eq!(s, 201, "{a}");
            assert_eq!(a["household_id"], h.to_string(), "another's session: {a}");
        }
        assert!(
            t.app.sessions.len() >= cached + 24,
            "every session read was cached"
        );
    }
);
