//! The reservation rush (owner: rush).
//!
//! - In process, on both stores: many concurrent reservations through the batching writer
//!   (`App::rush`) and through the naive one-transaction-per-request path never oversell, give a
//!   household one code however often it asks, and answer every request.
//! - The crash test: a real `anxin serve` on a private SQLite file is killed (SIGKILL) at random
//!   moments during a reservation rush of 2,000 households for 1,500 units, restarted and
//!   killed again, at least 20 times; then nothing is oversold, every reservation the server
//!   acknowledged is in the store with the code it was given, no household holds two, and an
//!   acknowledged code redeems once and only once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anxin_store::accounts::{self, NewUser, UserKind};
use anxin_store::scope::Caller;
use anxin_store::supplies::campaigns::{self, CampaignInput, ReserveRequest, SlotInput};
use anxin_store::value::Value;
use anxin_store::{Store, StoreError, WriteCtx};
use serde_json::{json, Value as Json};
use uuid::Uuid;

use crate::support::{Backend, TestApp};

/// `n` households in `community`, written as one multi-row insert.
async fn households(store: &Store, community: Uuid, n: usize) -> Vec<Uuid> {
    store
        .write(WriteCtx::system("rush-seed"), move |tx| {
            let now = tx.now();
            let ids: Vec<Uuid> = (0..n).map(|_| tx.new_id()).collect();
            let rows: Vec<Vec<Value>> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    vec![
                        Value::Uuid(*id),
                        Value::Uuid(community),
                        Value::Text(format!("抢购楼{}栋{}号", i / 100 + 1, i % 100 + 1)),
                        Value::Time(now),
                        Value::Time(now),
                    ]
                })
                .collect();
            tx.insert_many(
                "households",
                &["id", "community_id", "label", "created_at", "updated_at"],
                &rows,
            )?;
            Ok(ids)
        })
        .await
        .unwrap()
}

/// An open first-come-first-served mask campaign of `node` with `stock` units and one slot.
async fn open_campaign(store: &Store, node: Uuid, stock: i64) -> Uuid {
    let now = store.env().clock.now();
    store
        .write(WriteCtx::system("rush-seed"), move |tx| {
            let sys = Caller::system();
            let d = campaigns::create(
                tx,
                &sys,
                &CampaignInput {
                    node_id: node,
                    title: "口罩抢购".into(),
                    item_code: "mask".into(),
                    stock,
                    slots: vec![SlotInput {
                        place_label: Some("社区居委会".into()),
                        starts_at: now + chrono::Duration::days(1),
                        ends_at: now + chrono::Duration::days(3),
                        capacity: 100_000,
                        ..SlotInput::default()
                    }],
                    ..CampaignInput::default()
                },
            )?;
            campaigns::open(tx, &sys, d.campaign.id)?;
            Ok(d.campaign.id)
        })
        .await
        .unwrap()
}

/// A staff account to stand as the reservations' actor.
async fn actor(store: &Store) -> Uuid {
    store
        .write(WriteCtx::system("rush-seed"), |tx| {
            let u = accounts::create_user(
                tx,
                &Caller::system(),
                &NewUser {
                    kind: UserKind::Staff,
                    username: Some("rush".into()),
                    display_name: "抢购测试".into(),
                    password_hash: Some(
                        anxin_crypto::hash_password_with(
                            "Rush-test-2026",
                            &anxin_crypto::PasswordHasherConfig::INSECURE_FAST_FOR_TESTS,
                        )
                        .unwrap(),
                    ),
                    phone: None,
                },
            )?;
            Ok(u.id)
        })
        .await
        .unwrap()
}

/// The store's own account of a campaign: (reservation rows, households with a row, units held by
/// the counter, stock).
async fn counts(store: &Store, campaign: Uuid) -> (i64, i64, i64, i64) {
    store
        .read(move |c, _| {
            let rows = c.query_i64(
                "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1",
                &[Value::Uuid(campaign)],
            )?;
            let households = c.query_i64(
                "SELECT count(DISTINCT household_id) FROM campaign_reservations WHERE campaign_id = $1",
                &[Value::Uuid(campaign)],
            )?;
            let used = c.query_i64(
                "SELECT used FROM campaign_counters WHERE id = $1",
                &[Value::Uuid(campaign)],
            )?;
            let cap = c.query_i64(
                "SELECT cap FROM campaign_counters WHERE id = $1",
                &[Value::Uuid(campaign)],
            )?;
            Ok((rows, households, used, cap))
        })
        .await
        .unwrap()
}

/// 2 × `n` concurrent requests (every household twice) for `stock` units through `app.rush`;
/// checks the answers and the store agree and nothing is oversold.
async fn rush_in_process(t: &TestApp, n: usize, stock: i64) {
    let w = crate::world::build(t.store()).await;
    let hh = households(t.store(), w.comm_a, n).await;
    let campaign = open_campaign(t.store(), w.comm_a, stock).await;
    let actor = actor(t.store()).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..2 * n {
        let app = t.app.clone();
        let household = hh[(i * 7919) % n];
        set.spawn(async move {
            let req = ReserveRequest {
                campaign_id: campaign,
                household_id: household,
                slot_id: None,
                actor,
                on_behalf: true,
                request_key: None,
            };
            (
                household,
                app.rush.reserve(&app, req, format!("rush-{i}")).await,
            )
        });
    }
    let mut codes: HashMap<Uuid, HashSet<String>> = HashMap::new();
    let mut refusals: HashMap<String, usize> = HashMap::new();
    let mut answered = 0;
    while let Some(r) = set.join_next().await {
        answered += 1;
        let (household, answer) = r.unwrap();
        match answer {
            Ok(res) => {
                assert_eq!(res.household_id, household);
                assert_eq!(res.status, "reserved");
                assert!(!res.code.is_empty());
                codes.entry(household).or_default().insert(res.code);
            }
            Err(StoreError::Conflict { code, .. }) => {
                *refusals.entry(code.to_owned()).or_default() += 1
            }
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    assert_eq!(answered, 2 * n);
    // Exactly the stock went, one code per household, no code twice.
    assert_eq!(codes.len() as i64, stock.min(n as i64));
    assert!(
        codes.values().all(|c| c.len() == 1),
        "a household got two codes"
    );
    let distinct: HashSet<&String> = codes.values().flatten().collect();
    assert_eq!(
        distinct.len(),
        codes.len(),
        "a code given to two households"
    );
    // Every other request was refused as sold out (a household that holds a unit never is).
    assert!(
        refusals.keys().all(|c| c == "campaign.sold_out"),
        "refusals other than sold out: {refusals:?}"
    );
    let (rows, households_with_row, used, cap) = counts(t.store(), campaign).await;
    assert_eq!(cap, stock);
    assert_eq!(rows, codes.len() as i64);
    assert_eq!(households_with_row, rows);
    assert_eq!(used, rows, "counter and rows disagree");
    assert!(used <= cap, "oversold");
}

both_stores!(rush_batches_never_oversell, |t: TestApp| async move {
    rush_in_process(&t, 300, 120).await;
    let s = t.app.rush.stats();
    let (batches, requests) = (
        s.batches.load(std::sync::atomic::Ordering::Relaxed),
        s.requests.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(requests, 600);
    assert!(
        batches < requests,
        "no request shared a batch ({batches} batches)"
    );
    assert_eq!(s.split.load(std::sync::atomic::Ordering::Relaxed), 0);
});

/// The naive side (`campaigns.batch = false`: one transaction per request) keeps the same rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_naive_never_oversells_sqlite() {
    let t = TestApp::with_config(Backend::Sqlite, |c| c.campaigns.batch = false).await;
    rush_in_process(&t, 200, 90).await;
    assert_eq!(
        t.app
            .rush
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the naive side bypasses the batcher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_naive_never_oversells_postgres() {
    let t = TestApp::with_config(Backend::Postgres, |c| c.campaigns.batch = false).await;
    rush_in_process(&t, 200, 90).await;
}

/// A batch whose write fails as a whole (one of its requests names an actor that is no account:
/// the reservation's foreign key refuses it, and the error aborts the batch's transaction) is
/// retried request by request: every other request is still reserved, the bad one refused, and
/// nothing is left half-written.
async fn failed_batch(backend: Backend) {
    // A long wait so the 40 requests below share one batch.
    let t = TestApp::with_config(backend, |c| c.campaigns.batch_wait_us = 100_000).await;
    let w = crate::world::build(t.store()).await;
    let hh = households(t.store(), w.comm_a, 40).await;
    let campaign = open_campaign(t.store(), w.comm_a, 100).await;
    let actor = actor(t.store()).await;
    let mut set = tokio::task::JoinSet::new();
    for (i, household) in hh.iter().copied().enumerate() {
        let app = t.app.clone();
        set.spawn(async move {
            let req = ReserveRequest {
                campaign_id: campaign,
                household_id: household,
                slot_id: None,
                actor: if i == 17 { Uuid::now_v7() } else { actor },
                on_behalf: true,
                request_key: None,
            };
            (i, app.rush.reserve(&app, req, format!("rush-{i}")).await)
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let (i, answer) = r.unwrap();
        if i == 17 {
            assert!(answer.is_err(), "the bad request was reserved");
        } else {
            answer.unwrap();
            ok += 1;
        }
    }
    assert_eq!(ok, 39);
    let s = t.app.rush.stats();
    assert!(s.split.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let (rows, _, used, _) = counts(t.store(), campaign).await;
    assert_eq!((rows, used), (39, 39));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_failed_batch_is_retried_alone_sqlite() {
    failed_batch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_failed_batch_is_retried_alone_postgres() {
    failed_batch(Backend::Postgres).await;
}

#[test]
fn rush_config_is_validated() {
    let mut c = anxin::config::Config::default();
    assert!(c.campaigns.batch, "batching is the default");
    c.campaigns.batch_max = 0;
    assert!(c.validate().is_err());
    c.campaigns.batch_max = 512;
    c.campaigns.batch_wait_us = 1_000_000;
    assert!(c.validate().is_err());
    c.campaigns.batch_wait_us = 200;
    assert!(c.validate().is_ok());
}

// ---------------------------------------------------------------------------------------------
// The crash test

const PASSWORD: &str = "Rush-crash-2026";
const COMMUNITY_CODE: &str = "510104017001";
const HOUSEHOLDS: usize = 2_000;
const STOCK: i64 = 1_500;
const ROUNDS: usize = 22;
const CLIENTS: usize = 16;

use crate::crash::{anxin, start};

/// The app on the test's file, in this process (seeding before the server starts and checking
/// after it is killed).
fn open_app(dir: &std::path::Path) -> anxin::app::App {
    let mut c = anxin::config::Config::default();
    c.database.url = format!("sqlite://{}", dir.join("anxin.db").display());
    c.crypto.master_key_file = dir.join("master.keys");
    anxin::app::App::open(c, anxin::app::OpenOptions::default()).unwrap()
}

/// What the server acknowledged: household → (reservation id, code), and every code answered.
#[derive(Default)]
struct Acked {
    by_household: HashMap<Uuid, (Uuid, String)>,
    answers: usize,
    problems: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rush_survives_sigkill() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("ANXIN_RUSH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("rush crash test seed {seed} (ANXIN_RUSH_SEED={seed} repeats it)");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/divisions/chengdu");
    assert!(anxin(dir.path())
        .args(["import", "divisions", "--dir", fixtures])
        .status()
        .unwrap()
        .success());
    assert!(anxin(dir.path())
        .env("ANXIN_NEW_PASSWORD", PASSWORD)
        .args([
            "admin",
            "create-user",
            "--username",
            "rush",
            "--display-name",
            "抢购测试",
            "--role",
            "community_worker",
            "--scope",
            COMMUNITY_CODE,
        ])
        .status()
        .unwrap()
        .success());

    // 2,000 households and an open campaign of 1,500 masks, written before the server starts.
    let path = dir.path().to_owned();
    let (households_ids, campaign) = {
        let app = tokio::task::spawn_blocking(move || open_app(&path))
            .await
            .unwrap();
        let community: Uuid = app
            .store
            .read(|c, _| {
                c.query_one(
                    "SELECT node_id FROM node_codes WHERE code = $1",
                    &[Value::Text(COMMUNITY_CODE.into())],
                )?
                .ok_or(StoreError::NotFound)?
                .get("node_id")
            })
            .await
            .unwrap();
        let hh = households(&app.store, community, HOUSEHOLDS).await;
        let campaign = open_campaign(&app.store, community, STOCK).await;
        (hh, campaign)
    };

    // Every household asks twice, in a random order; the list is cycled through the rounds.
    let mut order: Vec<Uuid> = households_ids
        .iter()
        .chain(households_ids.iter())
        .copied()
        .collect();
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
    let order = Arc::new(order);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let url = format!("/api/v1/campaigns/{campaign}/reservations");

    for round in 0..ROUNDS {
        let (mut child, base) = start(dir.path()).await;
        let client = crate::support::client();
        let r: Json = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": "rush", "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let csrf = r["csrf"].as_str().unwrap().to_owned();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (client, csrf, base, url, order, next, acked) = (
                client.clone(),
                csrf.clone(),
                base.clone(),
                url.clone(),
                order.clone(),
                next.clone(),
                acked.clone(),
            );
            clients.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let household = order[i % order.len()];
                    let Ok(r) = client
                        .post(format!("{base}{url}"))
                        .header("x-csrf-token", &csrf)
                        .json(&json!({ "household_id": household, "on_behalf": true }))
                        .send()
                        .await
                    else {
                        return; // the server is gone
                    };
                    let status = r.status().as_u16();
                    let Ok(v) = r.json::<Json>().await else {
                        return;
                    };
                    let mut a = acked.lock().unwrap();
                    match status {
                        201 => {
                            a.answers += 1;
                            let id: Uuid = v["reservation_id"].as_str().unwrap().parse().unwrap();
                            let code = v["code"].as_str().unwrap().to_owned();
                            assert_eq!(v["household_id"], json!(household));
                            match a.by_household.get(&household) {
                                Some((id0, code0)) if (id0, code0) != (&id, &code) => {
                                    let p = format!(
                                        "household {household} was given {code0} and then {code}"
                                    );
                                    a.problems.push(p);
                                }
                                _ => {
                                    a.by_household.insert(household, (id, code));
                                }
                            }
                        }
                        409 if v["error"]["code"] == "campaign.sold_out" => a.answers += 1,
                        _ => a.problems.push(format!("HTTP {status}: {v}")),
                    }
                }
            }));
        }
        // Kill at a random moment of the rush.
        let ms = rng.gen_range(30..350);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        child.wait().unwrap();
        for c in clients {
            c.await.unwrap();
        }
        let a = acked.lock().unwrap();
        eprintln!(
            "round {round}: killed after {ms} ms; {} answers so far, {} households hold a code",
            a.answers,
            a.by_household.len()
        );
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.problems.is_empty(),
        "{:?}",
        &acked.problems[..acked.problems.len().min(10)]
    );
    assert!(
        acked.by_household.len() >= 200,
        "too few reservations acknowledged to mean anything ({})",
        acked.by_household.len()
    );

    // After a last restart: acknowledged codes redeem once and only once (a sample).
    let (mut child, base) = start(dir.path()).await;
    let client = crate::support::client();
    let r: Json = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "rush", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = r["csrf"].as_str().unwrap().to_owned();
    let sample: Vec<&String> = acked
        .by_household
        .values()
        .map(|(_, c)| c)
        .take(60)
        .collect();
    let redeem = format!("{base}/api/v1/campaigns/{campaign}/redeem");
    for code in &sample {
        let r = client
            .post(&redeem)
            .header("x-csrf-token", &csrf)
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "first redemption of {code}");
        let r = client
            .post(&redeem)
            .header("x-csrf-token", &csrf)
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 409, "second redemption of {code}");
        let v: Json = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "campaign.code_used");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The store's own account.
    let path = dir.path().to_owned();
    let app = tokio::task::spawn_blocking(move || open_app(&path))
        .await
        .unwrap();
    let (rows, households_with_row, used, cap) = counts(&app.store, campaign).await;
    assert_eq!(cap, STOCK);
    assert!(rows <= STOCK, "oversold: {rows} reservations for {STOCK}");
    assert_eq!(used, rows, "the stock counter disagrees with the rows");
    assert_eq!(households_with_row, rows, "a household holds two");
    let stored: HashMap<Uuid, (Uuid, String, String)> = app
        .store
        .read(move |c, env| {
            let rows = c.query(
                "SELECT id, household_id, status FROM campaign_reservations WHERE campaign_id = $1",
                &[Value::Uuid(campaign)],
            )?;
            rows.iter()
                .map(|r| {
                    let id: Uuid = r.get("id")?;
                    let code = anxin_domain::campaign::display_code(&campaigns::code_of(env, id));
                    Ok((r.get("household_id")?, (id, code, r.get("status")?)))
                })
                .collect()
        })
        .await
        .unwrap();
    let slot_used: i64 = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT used FROM campaign_counters WHERE campaign_id = $1 AND id <> $1",
                &[Value::Uuid(campaign)],
            )
        })
        .await
        .unwrap();
    assert_eq!(slot_used, rows, "the slot counter disagrees with the rows");
    let mut lost = Vec::new();
    for (household, (id, code)) in &acked.by_household {
        match stored.get(household) {
            Some((sid, scode, _)) if sid == id && scode == code => {}
            other => lost.push(format!(
                "{household}: acknowledged {id} {code}, stored {other:?}"
            )),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged reservations lost or changed: {:?}",
        lost.len(),
        acked.by_household.len(),
        &lost[..lost.len().min(5)]
    );
    let codes: HashSet<&String> = stored.values().map(|(_, c, _)| c).collect();
    assert_eq!(codes.len(), stored.len(), "a code is held twice");
    let redeemed = stored.values().filter(|(_, _, s)| s == "redeemed").count();
    assert_eq!(redeemed, sample.len());
    eprintln!(
        "{ROUNDS} kills: {} answers, {} acknowledged reservations all stored, {rows} reserved of {STOCK}",
        acked.answers,
        acked.by_household.len()
    );
}
