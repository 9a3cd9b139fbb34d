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
