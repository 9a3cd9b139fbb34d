//! Stories of the notices of distribution campaigns and provider orders (owner: notices): a
//! campaign opened for a compound reaches exactly the households in it, once each (one phone of
//! the household, and a member's own WeChat), the delivery assignees get one message each with
//! their count, a lottery draw tells winners and losers, and a provider order reaches the
//! provider while its confirmation reaches the community's supplies managers. SMS go through the
//! generic gateway to an HTTP receiver on loopback. Both stores.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anxin::config::SmsConfig;
use anxin::platform::notify::{self, ChannelKind};
use anxin::supplies::notices;
use anxin_crypto::Secret;
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::jobs::{self as store_jobs, Job};
use anxin_store::scope::Caller;
use anxin_store::supplies::campaigns as sc;
use anxin_store::{Store, WriteCtx};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{Backend, TestApp};
use crate::world::{self, call, user, World};

// ---- an SMS gateway on loopback ----------------------------------------------------------------

/// One SMS the gateway received: (phone, template, text, params).
#[derive(Debug, Clone)]
struct Sms {
    to: String,
    template: String,
    text: String,
    params: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Gateway(Arc<Mutex<Vec<Sms>>>);

impl Gateway {
    fn take(&self) -> Vec<Sms> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn receive(State(g): State<Gateway>, body: axum::body::Bytes) -> Json<Value> {
    let b: Value = serde_json::from_slice(&body).unwrap();
    let params = b["params"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = g.0.lock().unwrap();
    seen.push(Sms {
        to: b["to"].as_str().unwrap().to_owned(),
        template: b["template"].as_str().unwrap().to_owned(),
        text: b["text"].as_str().unwrap().to_owned(),
        params,
    });
    Json(json!({ "message_id": format!("gw-{}", seen.len()) }))
}

/// An app whose SMS go to a fresh gateway on loopback.
async fn app_with_gateway(backend: Backend) -> (TestApp, Gateway) {
    let g = Gateway::default();
    let router = axum::Router::new()
        .route("/sms/send", axum::routing::post(receive))
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let url = format!("http://{addr}/sms/send");
    let t = TestApp::with_config(backend, move |c| {
        c.notify.sms = Some(SmsConfig {
            provider: "generic".into(),
            endpoint: url,
            region: String::new(),
            app_id: String::new(),
            sign_name: String::new(),
            secret_id: String::new(),
            secret_key: Some(Secret::new("notices-gateway-key".to_owned())),
            templates: BTreeMap::new(),
            timeout_seconds: 5,
        });
    })
    .await;
    (t, g)
}

/// Run the jobs due (the notices jobs of campaigns opened or drawn), deliver everything due and
/// answer what the gateway received since the last call.
async fn sent(t: &TestApp, g: &Gateway) -> Vec<Sms> {
    while anxin::platform::jobs::run_one(&t.app, "test-worker")
        .await
        .unwrap()
        .is_some()
    {}
    notify::deliver_due(&t.app).await.unwrap();
    g.take()
}

/// Assign delivery order `order` to `user` (or nobody) as `worker`.
async fn assign(base: &str, worker: &world::User, order: &str, user: Value) {
    let (s, b) = call(
        base,
        worker,
        "POST",
        &format!("/api/v1/delivery-orders/{order}/assign"),
        Some(json!({ "user_id": user })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

/// Notifications of `template` recorded so far (any channel, any state).
async fn recorded(t: &TestApp, template: &'static str) -> i64 {
    t.store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM notifications WHERE template = $1",
                &anxin_store::params![template],
            )
        })
        .await
        .unwrap()
}

/// The SMS of `template`, by phone (the last 11 digits), sorted.
fn to_of(sms: &[Sms], template: &str) -> Vec<String> {
    let mut v: Vec<String> = sms
        .iter()
        .filter(|s| s.template == template)
        .map(|s| s.to[s.to.len().saturating_sub(11)..].to_owned())
        .collect();
    v.sort();
    v
}

// ---- the world ---------------------------------------------------------------------------------

/// A staff account with one grant at `node` and a duty phone there.
async fn with_duty_phone(store: &Store, name: &str, role: Role, node: Uuid, phone: &str) -> Uuid {
    world::staff_on_duty(store, name, role, node, "物资", phone).await
}

/// A household of community A (in `dwelling` when given) whose members are (name, phone,
/// role), in creation order; returns the household and its people.
async fn household(
    store: &Store,
    w: &World,
    dwelling: Option<Uuid>,
    label: &str,
    members: &[(&str, Option<&str>, &str)],
) -> (Uuid, Vec<Uuid>) {
    let (comm, grid, label) = (w.comm_a, w.grid_a1, label.to_owned());
    let members: Vec<(String, Option<String>, String)> = members
        .iter()
        .map(|(n, p, r)| ((*n).to_owned(), p.map(str::to_owned), (*r).to_owned()))
        .collect();
    store
        .write(WriteCtx::system("notices-household"), move |tx| {
            let sys = Caller::system();
            let h = anxin_store::people::create_household(
                tx,
                &sys,
                comm,
                Some(grid),
                dwelling,
                &label,
            )?
            .id;
            let mut people = Vec::new();
            for (name, phone, role) in &members {
                let mut i = world::person_input(name, None, phone.as_deref(), comm, grid, h);
                i.household_role = Some(role.clone());
                people.push(
                    anxin_store::people::create_person(
                        tx,
                        &sys,
                        &anxin_store::people::NewPerson::parse(&i)?,
                    )?
                    .id,
                );
            }
            Ok((h, people))
        })
        .await
        .unwrap()
}

/// A compound of community A with one building and `n` dwellings: (compound, dwellings).
async fn compound(store: &Store, w: &World, n: usize) -> (Uuid, Vec<Uuid>) {
    let (comm, grid) = (w.comm_a, w.grid_a1);
    store
        .write(WriteCtx::system("notices-compound"), move |tx| {
            use anxin_store::places::{self as pl, BuildingInput, DwellingInput, NewBuilding};
            let sys = Caller::system();
            let compound = anxin_store::tree::create_compound(tx, &sys, comm, "锦苑")?;
            let b = pl::create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(compound),
                    grid_id: Some(grid),
                    name: Some("锦苑1栋".into()),
                    ..BuildingInput::default()
                })?,
            )?;
            let mut ds = Vec::new();
            for k in 0..n {
                ds.push(
                    pl::create_dwelling(
                        tx,
                        &sys,
                        b.id,
                        &pl::NewDwelling::parse(DwellingInput {
                            number: Some(format!("{}", 101 + k)),
                            ..DwellingInput::default()
                        })?,
                    )?
                    .id,
                );
            }
            Ok((compound, ds))
        })
        .await
        .unwrap()
}

async fn vulnerable(store: &Store, person: Uuid, helper: Uuid) {
    store
        .write(WriteCtx::system("notices-vulnerable"), move |tx| {
            anxin_store::people::add_vulnerable(
                tx,
                &Caller::system(),
                &anxin_store::people::VulnerableInput {
                    person_id: person,
                    category: "elderly_alone".into(),
                    helper_user_id: Some(helper),
                    contact_channel: "no_smartphone".into(),
                    notes: None,
                },
            )
            .map(drop)
        })
        .await
        .unwrap();
}

fn id_of(v: &Value, path: &str) -> String {
    v.pointer(path).and_then(Value::as_str).unwrap().to_owned()
}

// ---- stories -----------------------------------------------------------------------------------

both_backends!(
    a_compound_campaign_reaches_its_households_once_and_the_assignees,
    |backend: Backend| async move {
        let (t, g) = app_with_gateway(backend).await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let s = t.store();
        let (cpd, ds) = compound(s, &w, 6).await;
        let helper_v =
            with_duty_phone(s, "helper_v", Role::Volunteer, w.comm_a, "13600000009").await;
        let helper_w =
            with_duty_phone(s, "helper_w", Role::Volunteer, w.comm_a, "13600000010").await;
        // Two members with phones: the head is told, not both (the spouse is registered first).
        let (_, _) = household(
            s,
            &w,
            Some(ds[0]),
            "锦苑1-101",
            &[
                ("配偶甲", Some("13700000002"), "spouse"),
                ("户主甲", Some("13700000001"), "head"),
            ],
        )
        .await;
        // A member with a phone and a resident account with WeChat bound: SMS and WeChat.
        let (_, pb) = household(
            s,
            &w,
            Some(ds[1]),
            "锦苑1-102",
            &[("户主乙", Some("13700000003"), "head")],
        )
        .await;
        user(&t, "resident_b", UserKind::Resident, None, Some(pb[0])).await;
        let pb0 = pb[0];
        s.write(WriteCtx::system("notices-wechat"), move |tx| {
            let u: Uuid = tx
                .query_one(
                    "SELECT user_id FROM user_people WHERE person_id = $1",
                    &anxin_store::params![pb0],
                )?
                .unwrap()
                .get("user_id")?;
            anxin_store::resident_channels::bind_wechat(tx, u, "oNoticeOpenid0001").map(drop)
        })
        .await
        .unwrap();
        // Nobody to reach: no message.
        household(s, &w, Some(ds[2]), "锦苑1-103", &[("户主丙", None, "head")]).await;
        // Vulnerable households: a delivery order each, to the helper.
        let (_, pv1) = household(
            s,
            &w,
            Some(ds[3]),
            "锦苑1-104",
            &[("老人一", Some("13700000005"), "head")],
        )
        .await;
        let (_, pv2) = household(
            s,
            &w,
            Some(ds[4]),
            "锦苑1-105",
            &[("老人二", Some("13700000006"), "head")],
        )
        .await;
        let (_, pv3) =
            household(s, &w, Some(ds[5]), "锦苑1-106", &[("老人三", None, "head")]).await;
        vulnerable(s, pv1[0], helper_v).await;
        vulnerable(s, pv2[0], helper_v).await;
        vulnerable(s, pv3[0], helper_w).await;

        let (st, d) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/campaigns",
            Some(json!({
                "node_id": w.comm_a, "title": "锦苑口罩发放", "item_code": "mask", "stock": 20,
                "quantity_per_household": 2, "compounds": [cpd],
                "slots": [{ "place_label": "锦苑物业", "starts_at": "2026-11-02T01:00:00Z",
                            "ends_at": "2026-11-02T09:00:00Z", "capacity": 10 }]
            })),
        )
        .await;
        assert_eq!(st, 201, "{d}");
        let id = id_of(&d, "/campaign/id");
        assert!(sent(&t, &g).await.is_empty(), "a draft tells nobody");
        let (st, o) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/campaigns/{id}/open"),
            None,
        )
        .await;
        assert_eq!(st, 200, "{o}");
        assert_eq!(o["deliveries"], 3, "{o}");
        // The answer did not wait for the notices: the opening's write enqueued their job, and
        // nothing is recorded until a worker runs it.
        assert_eq!(recorded(&t, "campaign_open").await, 0);
        let job = store_jobs::claim(
            s,
            "worker-1",
            t.app.clock.now(),
            chrono::Duration::minutes(5),
        )
        .await
        .unwrap()
        .expect("the opening's notices job");
        assert_eq!(job.kind, sc::NOTICES_JOB);
        // A worker whose lease was lost (another took the job over) records nothing.
        let mut lost = job.clone();
        lost.lease_owner = "worker-0".into();
        assert!(notices::run_notices(&t.app, &lost).await.is_err());
        assert_eq!(recorded(&t, "campaign_open").await, 0);
        // The holder records every page with its progress; run again (its server stopped before
        // marking the job done), it goes on after the last page: nobody is told twice.
        let first = notices::run_notices(&t.app, &job).await.unwrap();
        assert_eq!((first.households, first.assignees), (4, 2), "{first:?}");
        let again = Job {
            payload: store_jobs::state(s, job.id).await.unwrap().unwrap().payload,
            ..job.clone()
        };
        let second = notices::run_notices(&t.app, &again).await.unwrap();
        assert_eq!(second.messages, 0, "{second:?}");
        assert!(
            store_jobs::complete(s, job.id, "worker-1", t.app.clock.now())
                .await
                .unwrap()
        );
        let sms = sent(&t, &g).await;
        // Exactly the compound's households, once each; nobody outside (A1, A1n, B1).
        assert_eq!(
            to_of(&sms, "campaign_open"),
            vec!["13700000001", "13700000003"],
            "{sms:?}"
        );
        assert_eq!(
            to_of(&sms, "campaign_delivery_home"),
            vec!["13700000005", "13700000006"],
            "{sms:?}"
        );
        assert_eq!(
            to_of(&sms, "campaign_deliveries"),
            vec!["13600000009", "13600000010"],
            "{sms:?}"
        );
        assert_eq!(sms.len(), 6, "{sms:?}");
        for s in &sms {
            if s.template == "campaign_deliveries" {
                let want = if s.to.ends_with("13600000009") {
                    "2"
                } else {
                    "1"
                };
                assert_eq!(s.params["count"], want, "{s:?}");
                assert!(s.text.contains(&format!("有{want}户")), "{}", s.text);
            }
            if s.template == "campaign_open" {
                assert!(
                    s.text
                        .starts_with("【安心社区】水井坊社区发放医用外科口罩，每户2只"),
                    "{}",
                    s.text
                );
                assert!(
                    s.text.contains("锦苑物业") && s.text.contains("网格员代办"),
                    "{}",
                    s.text
                );
                assert!(
                    s.text.contains("11月2日 17:00"),
                    "until, local time: {}",
                    s.text
                );
            }
            for personal in ["户主", "老人", world::PERSON_A1_ID_NUMBER] {
                assert!(!s.text.contains(personal), "{}", s.text);
            }
        }
        // The member's own WeChat: one message, in the outbox (WeChat is not configured).
        let wx = notify::outbox_messages(&t.app, ChannelKind::Wechat)
            .await
            .unwrap();
        assert_eq!(wx.len(), 1);
        assert_eq!(wx[0].template, "campaign_open");
        // Nothing more is sent later: the opening was told once.
        assert!(sent(&t, &g).await.is_empty());

        // An order re-assigned by hand: the new assignee is told of one household; assigning it
        // to the person who already has it, or to nobody, tells nobody.
        let (_, list) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/campaigns/{id}/reservations?kind=delivery&status=reserved"),
            None,
        )
        .await;
        let order = list
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["assignee_user_id"] == json!(helper_v))
            .unwrap_or_else(|| panic!("an order of helper_v: {list}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assign(&base, &worker, &order, json!(helper_w)).await;
        let sms = sent(&t, &g).await;
        assert_eq!(
            to_of(&sms, "campaign_deliveries"),
            vec!["13600000010"],
            "{sms:?}"
        );
        assert_eq!(sms.len(), 1, "{sms:?}");
        assert_eq!(sms[0].params["count"], "1", "{sms:?}");
        assign(&base, &worker, &order, json!(helper_w)).await;
        assign(&base, &worker, &order, Value::Null).await;
        assert!(sent(&t, &g).await.is_empty(), "nobody new: nobody told");

        // The pages of the household read are the same households, however small the page.
        let cid: Uuid = id.parse().unwrap();
        let (all, paged) = t
            .store()
            .read(move |c, _| {
                let (camp, _) = sc::notice_campaign(c, cid)?;
                let all = sc::notice_households(c, &camp, None, 1000)?;
                assert!(all.next.is_none());
                let mut paged = Vec::new();
                let mut after = None;
                loop {
                    let p = sc::notice_households(c, &camp, after, 2)?;
                    paged.extend(p.households);
                    match p.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
                Ok((all.households, paged))
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 6, "{all:?}");
        assert_eq!(all, paged);
        assert_eq!(all.iter().filter(|(_, d)| *d).count(), 3);
    }
);

both_backends!(
    a_lottery_draw_tells_winners_and_losers,
    |backend: Backend| async move {
        let (t, g) = app_with_gateway(backend).await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let s = t.store();
        let mut residents = Vec::new();
        for (k, phone) in ["13500000001", "13500000002", "13500000003"]
            .iter()
            .enumerate()
        {
            let (_, p) = household(
                s,
                &w,
                None,
                &format!("8-{k}"),
                &[("申请人", Some(*phone), "head")],
            )
            .await;
            let name: &'static str = Box::leak(format!("applicant{k}").into_boxed_str());
            residents.push(user(&t, name, UserKind::Resident, None, Some(p[0])).await);
        }
        let (st, d) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/campaigns",
            Some(json!({
                "node_id": w.comm_a, "title": "消毒液抽签", "item_code": "mask", "stock": 1,
                "quantity_per_household": 1, "mode": "lottery", "draw_at": "2026-11-02T05:00:00Z",
                "slots": [{ "place_label": "社区居委会", "starts_at": "2026-11-03T01:00:00Z",
                            "ends_at": "2026-11-03T09:00:00Z", "capacity": 1 }]
            })),
        )
        .await;
        assert_eq!(st, 201, "{d}");
        let id = id_of(&d, "/campaign/id");
        let (st, o) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/campaigns/{id}/open"),
            None,
        )
        .await;
        assert_eq!(st, 200, "{o}");
        // The opening tells community A's five households (the world's two and these three).
        let opened = sent(&t, &g).await;
        assert_eq!(to_of(&opened, "campaign_open").len(), 5, "{opened:?}");
        assert!(
            opened[0].text.contains("11月2日 13:00前报名，届时抽签"),
            "{}",
            opened[0].text
        );
        for r in &residents {
            let (st, b) = call(
                &base,
                r,
                "POST",
                &format!("/api/v1/campaigns/{id}/reservations"),
                Some(json!({})),
            )
            .await;
            assert_eq!((st, b["status"].as_str()), (201, Some("applied")), "{b}");
        }
        assert!(sent(&t, &g).await.is_empty(), "applying sends nothing");
        let (st, r) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/campaigns/{id}/draw"),
            None,
        )
        .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(
            (r["winners"].as_i64(), r["lost"].as_i64()),
            (Some(1), Some(2)),
            "{r}"
        );
        let sms = sent(&t, &g).await;
        let won = to_of(&sms, "campaign_won");
        let lost = to_of(&sms, "campaign_lost");
        assert_eq!((won.len(), lost.len(), sms.len()), (1, 2, 3), "{sms:?}");
        let mut all: Vec<String> = won.iter().chain(&lost).cloned().collect();
        all.sort();
        assert_eq!(all, vec!["13500000001", "13500000002", "13500000003"]);
        let w_sms = sms.iter().find(|s| s.template == "campaign_won").unwrap();
        assert!(
            w_sms.text.contains("11月3日 09:00至17:00") && w_sms.text.contains("社区居委会"),
            "{}",
            w_sms.text
        );
        // The winner is the household holding the reservation.
        let cid: Uuid = id.parse().unwrap();
        let winner_phone = won[0].clone();
        let held = t
            .store()
            .read(move |c, env| {
                let rows = sc::draw_outcomes(c, cid)?;
                let h: Vec<Uuid> = rows.iter().filter(|r| r.1).map(|r| r.0).collect();
                sc::household_contacts(c, env, &h)
            })
            .await
            .unwrap();
        assert!(held[0].phone.as_ref().unwrap().0.ends_with(&winner_phone));
    }
);

both_backends!(
    an_order_reaches_the_provider_and_its_confirmation_the_community,
    |backend: Backend| async move {
        let (t, g) = app_with_gateway(backend).await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let s = t.store();
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        // The community's supplies manager with a duty phone; one in community B is not told.
        with_duty_phone(
            s,
            "keeper_a",
            Role::CommunityWorker,
            w.comm_a,
            "13600000021",
        )
        .await;
        with_duty_phone(
            s,
            "keeper_b",
            Role::CommunityWorker,
            w.comm_b,
            "13600000022",
        )
        .await;
        // The provider's account with a duty phone.
        with_duty_phone(s, "prov_one", Role::Provider, w.comm_a, "13600000031").await;
        let prov = world::staff(&t, "prov_login", Role::Provider, Scope::Node(w.comm_a)).await;
        let depot = s
            .write(WriteCtx::system("notices-depot"), move |tx| {
                use anxin_store::places::{self as pl, FacilityInput, NewFacility};
                pl::create_facility(
                    tx,
                    &Caller::system(),
                    &NewFacility::parse(FacilityInput {
                        node_id: Some(w.comm_a),
                        kind: Some("supply_depot".into()),
                        name: Some("水井坊物资储备点".into()),
                        ..FacilityInput::default()
                    })?,
                )
                .map(|f| f.id)
            })
            .await
            .unwrap();
        let credit =
            anxin_store::supplies::providers::with_check_char("91510104MA6CXXXX0").unwrap();
        let (st, p) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/providers",
            Some(
                json!({ "node_id": w.comm_a, "name": "成都锦安应急物资有限公司",
                "credit_code": credit, "contact_name": "刘建国", "contact_phone": "13912345678",
                "served_node_ids": [w.comm_a] }),
            ),
        )
        .await;
        assert_eq!(st, 201, "{p}");
        let pid = id_of(&p, "/id");
        for name in ["prov_one", "prov_login"] {
            let (st, b) = call(
                &base,
                &worker,
                "POST",
                &format!("/api/v1/providers/{pid}/accounts"),
                Some(json!({ "username": name })),
            )
            .await;
            assert_eq!(st, 201, "{b}");
        }
        let (st, offer) = call(
            &base,
            &prov,
            "POST",
            "/api/v1/supply-offers",
            Some(
                json!({ "item_code": "mask", "quantity_available": 1000, "unit_price_fen": 50,
                "lead_time_hours": 24, "valid_until": "2026-12-31" }),
            ),
        )
        .await;
        assert_eq!(st, 201, "{offer}");
        let (st, ord) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/supply-orders",
            Some(
                json!({ "offer_id": id_of(&offer, "/id"), "depot_id": depot, "quantity": 600,
                "wanted_by": "2026-11-10" }),
            ),
        )
        .await;
        assert_eq!(st, 201, "{ord}");
        // The provider's account with a phone is told (not its contact: an account was reached).
        let sms = sent(&t, &g).await;
        assert_eq!(
            to_of(&sms, "supply_order_placed"),
            vec!["13600000031"],
            "{sms:?}"
        );
        assert_eq!(sms.len(), 1);
        assert!(
            sms[0].text.contains("水井坊社区订购医用外科口罩600只")
                && sms[0].text.contains("水井坊物资储备点")
                && sms[0].text.contains("11月10日"),
            "{}",
            sms[0].text
        );
        let oid = id_of(&ord, "/id");
        let (st, b) = call(
            &base,
            &prov,
            "POST",
            &format!("/api/v1/supply-orders/{oid}/confirm"),
            Some(json!({})),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        let sms = sent(&t, &g).await;
        assert_eq!(
            to_of(&sms, "supply_order_progress"),
            vec!["13600000021"],
            "{sms:?}"
        );
        assert_eq!(sms.len(), 1);
        assert!(
            sms[0].text.contains("成都锦安应急物资有限公司已确认订单"),
            "{}",
            sms[0].text
        );
        let (st, b) = call(
            &base,
            &prov,
            "POST",
            &format!("/api/v1/supply-orders/{oid}/deliver"),
            Some(json!({ "quantity": 200 })),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        let sms = sent(&t, &g).await;
        assert_eq!(
            to_of(&sms, "supply_order_progress"),
            vec!["13600000021"],
            "{sms:?}"
        );
        assert!(sms[0].text.contains("已送达200"), "{}", sms[0].text);
        // A refused step sends nothing.
        let (st, _) = call(
            &base,
            &prov,
            "POST",
            &format!("/api/v1/supply-orders/{oid}/confirm"),
            Some(json!({})),
        )
        .await;
        assert_eq!(st, 409);
        assert!(sent(&t, &g).await.is_empty());
    }
);

both_backends!(
    a_campaign_opened_by_an_activation_reaches_the_households,
    |backend: Backend| async move {
        let (t, g) = app_with_gateway(backend).await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let (s, p) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/plans",
            Some(json!({ "node_id": w.comm_a, "name": "口罩发放预案", "review_period_days": 30 })),
        )
        .await;
        assert_eq!(s, 201, "{p}");
        let plan = id_of(&p, "/id");
        let body = json!({
            "risks": ["public_health"], "triggers": [], "roles": [], "tasks": [],
            "shelters": [], "welfare_checks": false,
            "supplies": [{ "item": "mask", "quantity_per_household": 2, "stock": 200,
                           "place": "社区卫生站" }]
        });
        let (s, v) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/versions"),
            Some(json!({ "body": body, "change_summary": "首版" })),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let version = id_of(&v, "/id");
        let (s, a) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plan-versions/{version}/adopt"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{a}");
        assert!(sent(&t, &g).await.is_empty());
        let (s, inc) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/plans/{plan}/activate"),
            Some(json!({})),
        )
        .await;
        assert_eq!((s, inc["status"].as_str()), (201, Some("active")), "{inc}");
        // Community A's two households (A1, A1n), once each; not B1 in community B.
        let sms = sent(&t, &g).await;
        assert_eq!(
            to_of(&sms, "campaign_open"),
            vec!["13812345678", "13900000001"],
            "{sms:?}"
        );
        assert!(sms
            .iter()
            .filter(|s| s.template == "campaign_open")
            .all(|s| s.text.contains("社区卫生站") && s.text.contains("每户2只")));
        assert!(
            !sms.iter().any(|s| s.to.ends_with("13900000002")),
            "{sms:?}"
        );
    }
);
