//! Monitoring stories: devices, readings over MQTT and HTTP, rules, alarms, escalation.
//!
//! MQTT tests talk to the Mosquitto on 127.0.0.1:1883 (each with its own device code, topic and
//! client ids), the broker-restart test to a private Mosquitto it starts (with persistence) on a
//! free port, and the second-broker test to aedes (npm) started by `scripts/services`' install.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anxin::monitor::{self, pipeline, Reject};
use anxin_domain::{Clock, Role, Scope};
use anxin_store::monitor::{
    self as sm, Alarm, AlarmQuery, DeviceInput, NewDevice, NewProfile, ProfileInput,
};
use anxin_store::scope::Caller;
use anxin_store::WriteCtx;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, World};

/// A threshold rule: level above 3 raises, and clears when no longer above.
fn level_high() -> Value {
    json!({"rules": [{
        "id": "high", "name": "水位高", "alarm_type": "water_level_high", "severity": "major",
        "raise": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}
    }]})
}

struct Dev {
    id: Uuid,
    code: String,
    token: String,
}

/// A profile with `rules` and a device using it, in community A, grid A1.
async fn device(t: &TestApp, w: &World, rules: Value) -> Dev {
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    let code = format!("t-{}", Uuid::now_v7().simple());
    let c = code.clone();
    let created = t
        .store()
        .write(WriteCtx::system("test"), move |tx| {
            let sys = Caller::system();
            let p = sm::create_profile(
                tx,
                &sys,
                &NewProfile::parse(ProfileInput {
                    node_id: Some(comm_a),
                    name: Some("测试模板".into()),
                    rules: Some(rules),
                })?,
            )?;
            sm::create_device(
                tx,
                &sys,
                &NewDevice::parse(DeviceInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    kind: Some("water_level".into()),
                    code: Some(c),
                    name: Some("测试水位计".into()),
                    profile_id: Some(p.id),
                    ..DeviceInput::default()
                })?,
            )
        })
        .await
        .unwrap();
    Dev {
        id: created.device.id,
        code,
        token: created.token,
    }
}

async fn alarms(t: &TestApp, device: Uuid) -> Vec<Alarm> {
    t.store()
        .read(move |c, _| {
            sm::list_alarms(
                c,
                &Caller::system(),
                AlarmQuery {
                    device_id: Some(device),
                    ..AlarmQuery::default()
                },
            )
        })
        .await
        .unwrap()
        .items
}

fn ts(t: &TestApp, offset_s: i64) -> String {
    (t.clock.now() + chrono::Duration::seconds(offset_s)).to_rfc3339()
}

fn reading(seq: u64, at: &str, level: f64) -> Vec<u8> {
    json!({"seq": seq, "ts": at, "values": {"level": level, "battery": 3.6}})
        .to_string()
        .into_bytes()
}

async fn post(base: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = crate::support::client()
        .post(format!("{base}/api/v1/ingest/readings"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

// ---- HTTP ingest ------------------------------------------------------------------------------

both_stores!(
    http_ingest_raises_updates_and_clears,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let d = device(&t, &w, level_high()).await;
        let base = t.serve().await;

        let (s, b) = post(&base, Some(&d.token), reading(1, &ts(&t, 0), 1.0)).await;
        assert_eq!((s, b["stored"].as_u64()), (200, Some(1)), "{b}");
        assert!(alarms(&t, d.id).await.is_empty());

        let (s, _) = post(&base, Some(&d.token), reading(2, &ts(&t, 10), 4.0)).await;
        assert_eq!(s, 200);
        let a = alarms(&t, d.id).await;
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].status.as_str(), a[0].last_value),
            ("active_unacked", Some(4.0))
        );

        // While active, a match updates the alarm; it never opens a second one.
        let (s, _) = post(&base, Some(&d.token), reading(3, &ts(&t, 20), 5.0)).await;
        assert_eq!(s, 200);
        // A redelivered duplicate (same seq) is recognised and not evaluated again.
        let (s, b) = post(&base, Some(&d.token), reading(3, &ts(&t, 20), 5.0)).await;
        assert_eq!(
            (s, b["stored"].as_u64(), b["duplicates"].as_u64()),
            (200, Some(0), Some(1))
        );
        let a = alarms(&t, d.id).await;
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].updates, a[0].last_value), (1, Some(5.0)));

        // Bad tokens and malformed payloads: answered in the error shape, counted, nothing stored.
        let (s, b) = post(&base, Some("not-a-token"), reading(4, &ts(&t, 30), 9.0)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (401, Some("ingest.token_invalid"))
        );
        let (s, _) = post(&base, None, reading(4, &ts(&t, 30), 9.0)).await;
        assert_eq!(s, 401);
        assert_eq!(t.app.monitor.counters.rejected(Reject::BadToken), 2);
        for bad in [
            b"{not json".to_vec(),
            json!({"seq": 4, "ts": "yesterday", "values": {"level": 1}})
                .to_string()
                .into_bytes(),
            json!({"seq": 4, "ts": ts(&t, 30), "values": {}})
                .to_string()
                .into_bytes(),
            json!({"seq": -4, "ts": ts(&t, 30), "values": {"level": 1}})
                .to_string()
                .into_bytes(),
            json!({"seq": 4, "ts": ts(&t, 30), "values": {"level": "high"}})
                .to_string()
                .into_bytes(),
        ] {
            let (s, b) = post(&base, Some(&d.token), bad).await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (400, Some("ingest.payload_invalid"))
            );
        }
        assert_eq!(t.app.monitor.counters.rejected(Reject::Malformed), 5);
        let rd = t.app.monitor.readings.clone();
        let id = d.id;
        let n = tokio::task::spawn_blocking(move || rd.count(Some(id)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 3);

        // The pipeline keeps going: a batch of two readings back below clears the alarm.
        let batch = json!({"readings": [
            {"seq": 5, "ts": ts(&t, 40), "values": {"level": 2.0}},
            {"seq": 6, "ts": ts(&t, 50), "values": {"level": 1.5}}
        ]});
        let (s, b) = post(&base, Some(&d.token), batch.to_string().into_bytes()).await;
        assert_eq!((s, b["stored"].as_u64()), (200, Some(2)), "{b}");
        let a = alarms(&t, d.id).await;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].status, "cleared_unacked");

        // A disabled device is refused.
        let id = d.id;
        t.store()
            .write(WriteCtx::system("test"), move |tx| {
                sm::update_device(
                    tx,
                    &Caller::system(),
                    id,
                    serde_json::from_value(json!({"enabled": false})).unwrap(),
                )
            })
            .await
            .unwrap();
        t.app.monitor.invalidate();
        let (s, b) = post(&base, Some(&d.token), reading(7, &ts(&t, 60), 9.0)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (403, Some("ingest.device_disabled"))
        );
    }
);

both_stores!(
    api_devices_readings_and_alarm_handling,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let base = t.serve().await;
        let http = crate::support::client();
        let call = |m: reqwest::Method, path: &str, body: Option<Value>| {
            let mut r = http
                .request(m, format!("{base}{path}"))
                .header("cookie", &worker.cookie)
                .header("x-csrf-token", &worker.csrf);
            if let Some(b) = body {
                r = r.json(&b);
            }
            async move {
                let r = r.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        // Validation names the field, down into the rules.
        let (s, b) = call(
        reqwest::Method::POST,
        "/api/v1/device-profiles",
        Some(json!({"node_id": w.comm_a, "name": "坏模板", "rules": {"rules": [{
            "id": "x", "name": "x", "alarm_type": "x", "severity": "major",
            "raise": {"kind": "sustained", "seconds": 10,
                      "cond": {"kind": "threshold", "metric": "", "op": "above", "value": 1}}
        }]}})),
    )
    .await;
        assert_eq!(s, 422, "{b}");
        assert!(
            b["error"]["details"]["field"]
                .as_str()
                .unwrap()
                .starts_with("rules.rules[0].raise"),
            "{b}"
        );
        let (s, p) = call(
            reqwest::Method::POST,
            "/api/v1/device-profiles",
            Some(json!({"node_id": w.comm_a, "name": "水位", "rules": level_high()})),
        )
        .await;
        assert_eq!(s, 201, "{p}");
        let (s, b) = call(
            reqwest::Method::POST,
            "/api/v1/devices",
            Some(json!({"node_id": w.comm_a, "kind": "boiler", "code": "x1", "name": "x"})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("kind"))
        );
        let (s, d) = call(
            reqwest::Method::POST,
            "/api/v1/devices",
            Some(
                json!({"node_id": w.comm_a, "grid_id": w.grid_a1, "kind": "water_level",
                    "code": "jjq-sjf-001", "name": "一号水位计", "lon": 104.09, "lat": 30.66,
                    "profile_id": p["id"]}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{d}");
        let token = d["token"].as_str().unwrap().to_owned();
        let (s, b) = call(
        reqwest::Method::POST,
        "/api/v1/devices",
        Some(json!({"node_id": w.comm_a, "kind": "water_level", "code": "jjq-sjf-001", "name": "重复"})),
    )
    .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (409, Some("device.code_taken"))
        );
        let dev = d["id"].as_str().unwrap().to_owned();
        let (s, got) = call(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{dev}"),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert!(
            got.get("token").is_none(),
            "the token is shown only at creation"
        );

        for (i, level) in [1.0, 3.5, 4.5].iter().enumerate() {
            let (s, _) = post(
                &base,
                Some(&token),
                reading(i as u64 + 1, &ts(&t, i as i64 * 30), *level),
            )
            .await;
            assert_eq!(s, 200);
        }
        let (s, r) = call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/devices/{dev}/readings?from={}&to={}",
                urlenc(&ts(&t, -60)),
                urlenc(&ts(&t, 120))
            ),
            None,
        )
        .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["raw"].as_array().unwrap().len(), 3, "{r}");
        let (s, r) = call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/devices/{dev}/readings?step=minute&from={}&to={}",
                urlenc(&ts(&t, -60)),
                urlenc(&ts(&t, 120))
            ),
            None,
        )
        .await;
        assert_eq!(s, 200, "{r}");
        let level: Vec<&Value> = r["rollups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["metric"] == "level")
            .collect();
        let total: i64 = level.iter().map(|x| x["count"].as_i64().unwrap()).sum();
        assert_eq!(total, 3, "{r}");
        let (s, b) = call(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{dev}/readings?step=week"),
            None,
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("step"))
        );

        let (s, list) = call(
            reqwest::Method::GET,
            "/api/v1/alarms?active=true&unacked=true",
            None,
        )
        .await;
        assert_eq!(s, 200);
        let mine: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["device_id"] == dev.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{list}");
        let alarm = mine[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(mine[0]["updates"], 1);

        let (s, n) = call(
            reqwest::Method::POST,
            &format!("/api/v1/alarms/{alarm}/notes"),
            Some(json!({"body": "已派人查看"})),
        )
        .await;
        assert_eq!(s, 201, "{n}");
        let (s, b) = call(
            reqwest::Method::POST,
            &format!("/api/v1/alarms/{alarm}/notes"),
            Some(json!({"body": "  "})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("body"))
        );
        let (s, a) = call(
            reqwest::Method::POST,
            &format!("/api/v1/alarms/{alarm}/ack"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, a["status"].as_str()),
            (200, Some("active_acked")),
            "{a}"
        );
        let (s, b) = call(
            reqwest::Method::POST,
            &format!("/api/v1/alarms/{alarm}/ack"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (409, Some("alarm.already_acknowledged"))
        );
        let (s, a) = call(
            reqwest::Method::POST,
            &format!("/api/v1/alarms/{alarm}/clear"),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (s, a["status"].as_str()),
            (200, Some("cleared_acked")),
            "{a}"
        );
        // Closed: the next raise of the rule opens a new alarm.
        let (s, _) = post(&base, Some(&token), reading(10, &ts(&t, 200), 1.0)).await;
        assert_eq!(s, 200);
        let (s, _) = post(&base, Some(&token), reading(11, &ts(&t, 230), 6.0)).await;
        assert_eq!(s, 200);
        let id: Uuid = dev.parse().unwrap();
        assert_eq!(alarms(&t, id).await.len(), 2);
    }
);

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

// ---- rules end to end -------------------------------------------------------------------------

async fn ingest(t: &TestApp, d: &Dev, seq: u64, at_offset: i64, level: f64) -> pipeline::Outcome {
    let info = {
        let id = d.id;
        t.store()
            .read(move |c, _| sm::device_by_id(c, id))
            .await
            .unwrap()
            .unwrap()
    };
    pipeline::process(
        &t.app,
        vec![pipeline::Incoming {
            source: pipeline::Source::Device(info),
            payload: reading(seq, &ts(t, at_offset), level),
        }],
    )
    .await
    .unwrap()
    .remove(0)
}

/// One message of device `d` (source given directly, as the HTTP ingest does).
fn incoming(info: &sm::DeviceInfo, seq: u64, at: &str, level: f64) -> pipeline::Incoming {
    pipeline::Incoming {
        source: pipeline::Source::Device(info.clone()),
        payload: reading(seq, at, level),
    }
}

both_stores!(
    big_batches_store_each_reading_once_and_evaluate_in_order,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let (a, b) = (
            device(&t, &w, level_high()).await,
            device(&t, &w, level_high()).await,
        );
        let info = |id: Uuid| {
            let store = t.store().clone();
            async move {
                store
                    .read(move |c, _| sm::device_by_id(c, id))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let (ia, ib) = (info(a.id).await, info(b.id).await);
        // Level 5 (raises) at k % 50 == 10, 1 (clears) at k % 50 == 20, else 2: three alarms per
        // device over 150 readings, all cleared. Interleaved, with five repeats inside the batch:
        // 305 messages in one batch (more than one multi-row statement's worth).
        let level = |k: u64| match k % 50 {
            10 => 5.0,
            20 => 1.0,
            _ => 2.0,
        };
        let mut items = Vec::new();
        for k in 1..=150u64 {
            let at = ts(&t, i64::try_from(k).unwrap() - 200);
            items.push(incoming(&ia, k, &at, level(k)));
            items.push(incoming(&ib, k, &at, level(k)));
            if k % 30 == 0 {
                items.push(incoming(&ia, k, &at, level(k)));
            }
        }
        assert_eq!(items.len(), 305);
        let out = pipeline::process(&t.app, items).await.unwrap();
        let stored = |o: &pipeline::Outcome| {
            matches!(
                o,
                pipeline::Outcome::Stored {
                    fresh: 1,
                    duplicates: 0
                }
            )
        };
        let dup = |o: &pipeline::Outcome| {
            matches!(
                o,
                pipeline::Outcome::Stored {
                    fresh: 0,
                    duplicates: 1
                }
            )
        };
        assert_eq!(out.iter().filter(|o| stored(o)).count(), 300);
        assert_eq!(out.iter().filter(|o| dup(o)).count(), 5);
        // The repeat comes after the original: the original is the one stored.
        assert!(stored(&out[58]) && dup(&out[60]), "{:?}", &out[58..61]);
        for d in [&a, &b] {
            assert_eq!(readings_count(&t, d.id).await, 150);
            let al = alarms(&t, d.id).await;
            assert_eq!(al.len(), 3, "one alarm per crossing");
            assert!(al.iter().all(|x| !x.active), "each cleared in order");
        }
        // A second batch repeating the last 20 of each device and 10 new ones: only the new ones
        // are stored and evaluated (a raise at k = 160).
        let mut items = Vec::new();
        for k in 131..=160u64 {
            let at = ts(&t, i64::try_from(k).unwrap() - 200);
            items.push(incoming(&ia, k, &at, level(k)));
            items.push(incoming(&ib, k, &at, level(k)));
        }
        let out = pipeline::process(&t.app, items).await.unwrap();
        assert_eq!(out.iter().filter(|o| stored(o)).count(), 20);
        assert_eq!(out.iter().filter(|o| dup(o)).count(), 40);
        for d in [&a, &b] {
            assert_eq!(readings_count(&t, d.id).await, 160);
            let al = alarms(&t, d.id).await;
            assert_eq!((al.len(), al.iter().filter(|x| x.active).count()), (4, 1));
        }
        // Rollups: every stored reading counted once per metric.
        let rd = t.app.monitor.readings.clone();
        let (id, from, to) = (
            a.id,
            t.clock.now() - chrono::Duration::hours(2),
            t.clock.now() + chrono::Duration::hours(2),
        );
        let ups = tokio::task::spawn_blocking(move || {
            rd.rollups(id, anxin_store::readings::Step::Minute, from, to, 1000)
        })
        .await
        .unwrap()
        .unwrap();
        let n: i64 = ups
            .iter()
            .filter(|r| r.metric == "level")
            .map(|r| r.count)
            .sum();
        assert_eq!(n, 160);
        let max = ups
            .iter()
            .filter(|r| r.metric == "battery")
            .map(|r| r.max)
            .fold(f64::MIN, f64::max);
        assert!((max - 3.6).abs() < 1e-9);
    }
);

both_stores!(
    one_alarm_write_for_many_devices_applies_each_in_order,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let (a, b, c) = (
            device(&t, &w, level_high()).await,
            device(&t, &w, level_high()).await,
            device(&t, &w, level_high()).await,
        );
        let info = |id: Uuid| {
            let store = t.store().clone();
            async move {
                store
                    .read(move |c, _| sm::device_by_id(c, id))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let (ia, ib, ic) = (info(a.id).await, info(b.id).await, info(c.id).await);
        // a's alarm is open before the write.
        pipeline::process(&t.app, vec![incoming(&ia, 1, &ts(&t, -100), 5.0)])
            .await
            .unwrap();
        // One batch, one alarm write: a updates then clears its open alarm; b raises and updates
        // the alarm it raised; c raises, clears and raises again.
        let items = vec![
            incoming(&ia, 2, &ts(&t, -90), 6.0),
            incoming(&ib, 1, &ts(&t, -90), 5.0),
            incoming(&ic, 1, &ts(&t, -90), 5.0),
            incoming(&ib, 2, &ts(&t, -80), 7.0),
            incoming(&ic, 2, &ts(&t, -80), 1.0),
            incoming(&ia, 3, &ts(&t, -70), 1.0),
            incoming(&ic, 3, &ts(&t, -70), 8.0),
        ];
        pipeline::process(&t.app, items).await.unwrap();
        let al = alarms(&t, a.id).await;
        assert_eq!((al.len(), al[0].active, al[0].updates), (1, false, 1));
        let al = alarms(&t, b.id).await;
        assert_eq!(
            (al.len(), al[0].active, al[0].updates, al[0].last_value),
            (1, true, 1, Some(7.0))
        );
        let al = alarms(&t, c.id).await;
        let open: Vec<&Alarm> = al.iter().filter(|x| x.active).collect();
        assert_eq!(
            (al.len(), open.len(), open[0].last_value),
            (2, 1, Some(8.0))
        );
        // The same messages again (a redelivery): nothing new, no second alarm.
        let again = vec![
            incoming(&ib, 1, &ts(&t, -90), 5.0),
            incoming(&ic, 3, &ts(&t, -70), 8.0),
        ];
        pipeline::process(&t.app, again).await.unwrap();
        assert_eq!(alarms(&t, b.id).await.len(), 1);
        assert_eq!(alarms(&t, c.id).await.len(), 2);
        assert_eq!(pipeline::drain_outbox(&t.app).await.unwrap(), 0);
    }
);

both_stores!(
    queued_alarm_writes_keep_their_order_with_ticks,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let d = device(&t, &w, level_high()).await;
        let info = {
            let id = d.id;
            t.store()
                .read(move |c, _| sm::device_by_id(c, id))
                .await
                .unwrap()
                .unwrap()
        };
        // Committed (and, over MQTT, acknowledged) but the alarm write not yet run: a raise.
        let out = pipeline::store(&t.app, &[incoming(&info, 1, &ts(&t, 0), 5.0)])
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![pipeline::Outcome::Stored {
                fresh: 1,
                duplicates: 0
            }]
        );
        assert!(alarms(&t, d.id).await.is_empty(), "not written yet");
        // A clear, committed behind it, also waiting.
        pipeline::store(&t.app, &[incoming(&info, 2, &ts(&t, 5), 1.0)])
            .await
            .unwrap();
        // A rule tick comes first: it writes the waiting events in their order (raise, then
        // clear), not the clear alone.
        pipeline::tick(&t.app).await.unwrap();
        let a = alarms(&t, d.id).await;
        assert_eq!((a.len(), a[0].active), (1, false));
        // The alarm writer's turn afterwards changes nothing; a new raise opens a second alarm.
        assert_eq!(pipeline::flush_alarms(&t.app).await, 0);
        pipeline::store(&t.app, &[incoming(&info, 3, &ts(&t, 9), 6.0)])
            .await
            .unwrap();
        assert_eq!(pipeline::flush_alarms(&t.app).await, 1);
        let a = alarms(&t, d.id).await;
        assert_eq!((a.len(), a.iter().filter(|x| x.active).count()), (2, 1));
        // Draining the outbox (what a start does) replays nothing, then finds it empty.
        pipeline::drain_outbox(&t.app).await.unwrap();
        assert_eq!(pipeline::drain_outbox(&t.app).await.unwrap(), 0);
        assert_eq!(alarms(&t, d.id).await.len(), 2);
    }
);

both_stores!(
    sustained_rule_survives_an_anxin_restart,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let d = device(
        &t,
        &w,
        json!({"rules": [{
            "id": "high_long", "name": "水位持续偏高", "alarm_type": "water_level_high", "severity": "critical",
            "raise": {"kind": "sustained", "seconds": 60,
                      "cond": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}}
        }]}),
    )
    .await;
        ingest(&t, &d, 1, 0, 4.0).await;
        t.clock.advance(chrono::Duration::seconds(30));
        ingest(&t, &d, 2, 0, 4.2).await;
        assert!(
            alarms(&t, d.id).await.is_empty(),
            "30 s is not sustained yet"
        );

        // Restart: a second app on the same database files, the first one gone.
        let config = t.config.clone();
        let clock = t.clock.clone();
        let app2 = tokio::task::spawn_blocking(move || {
            anxin::app::App::open(
                config,
                anxin::app::OpenOptions {
                    clock: std::sync::Arc::new(clock),
                    ids: None,
                    migrate_upto: None,
                },
            )
            .unwrap()
        })
        .await
        .unwrap();
        t.clock.advance(chrono::Duration::seconds(31));
        // Time alone completes the sustained run that started before the restart.
        let n = pipeline::tick(&app2).await.unwrap();
        assert_eq!(n, 1);
        let a = alarms(&t, d.id).await;
        assert_eq!((a.len(), a[0].severity.as_str()), (1, "critical"));
        // And a tick again changes nothing.
        assert_eq!(pipeline::tick(&app2).await.unwrap(), 0);
        assert_eq!(alarms(&t, d.id).await[0].updates, 0);
    }
);

both_stores!(repeated_and_silence_rules, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let d = device(
        &t,
        &w,
        json!({"rules": [
            {"id": "gas_spikes", "name": "燃气浓度反复超标", "alarm_type": "gas_repeated", "severity": "major",
             "raise": {"kind": "repeated", "count": 3, "window_seconds": 300,
                       "cond": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}}},
            {"id": "silent", "name": "设备离线", "alarm_type": "device_silent", "severity": "minor",
             "raise": {"kind": "silent", "seconds": 600}}
        ]}),
    )
    .await;
    let by_rule = |a: &[Alarm], r: &str| a.iter().filter(|x| x.rule_id == r).count();
    for (seq, level) in [(1, 4.0), (2, 1.0), (3, 5.0)] {
        ingest(&t, &d, seq, seq as i64 * 10, level).await;
    }
    assert_eq!(
        by_rule(&alarms(&t, d.id).await, "gas_spikes"),
        0,
        "two hits are not three"
    );
    ingest(&t, &d, 4, 40, 6.0).await;
    assert_eq!(by_rule(&alarms(&t, d.id).await, "gas_spikes"), 1);

    // Silence: nothing for ten minutes raises on the tick; the next reading clears it.
    t.clock.advance(chrono::Duration::seconds(40 + 599));
    pipeline::tick(&t.app).await.unwrap();
    assert_eq!(by_rule(&alarms(&t, d.id).await, "silent"), 0);
    t.clock.advance(chrono::Duration::seconds(2));
    pipeline::tick(&t.app).await.unwrap();
    let a = alarms(&t, d.id).await;
    let silent: Vec<&Alarm> = a.iter().filter(|x| x.rule_id == "silent").collect();
    assert_eq!((silent.len(), silent[0].active), (1, true));
    ingest(&t, &d, 5, 0, 1.0).await;
    let a = alarms(&t, d.id).await;
    assert!(a
        .iter()
        .filter(|x| x.rule_id == "silent")
        .all(|x| !x.active));
});

both_stores!(events_left_by_a_crash_apply_once, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let d = device(&t, &w, level_high()).await;
    // The readings commit happened, the alarm write did not (a crash in between).
    let spec: anxin_domain::rules::ProfileSpec = serde_json::from_value(level_high()).unwrap();
    let profile = std::sync::Arc::new(spec.compile().unwrap());
    let rd = t.app.monitor.readings.clone();
    let (id, now) = (d.id, t.clock.now());
    let out = tokio::task::spawn_blocking(move || {
        rd.commit_batch(
            vec![anxin_store::readings::DeviceBatch {
                device_id: id,
                profile: Some(profile),
                readings: vec![
                    anxin_store::readings::NewReading {
                        seq: 1,
                        at: now,
                        values: vec![("level".into(), 5.0)],
                    },
                    anxin_store::readings::NewReading {
                        seq: 2,
                        at: now + chrono::Duration::seconds(5),
                        values: vec![("level".into(), 1.0)],
                    },
                    anxin_store::readings::NewReading {
                        seq: 3,
                        at: now + chrono::Duration::seconds(9),
                        values: vec![("level".into(), 7.0)],
                    },
                ],
            }],
            now,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.events[0].1.len(), 3, "raise, clear, raise");
    assert!(alarms(&t, d.id).await.is_empty());
    // Next start: the outbox is applied…
    assert_eq!(pipeline::drain_outbox(&t.app).await.unwrap(), 3);
    let a = alarms(&t, d.id).await;
    assert_eq!(a.len(), 2);
    assert_eq!(a.iter().filter(|x| x.active).count(), 1);
    // …and applying the same events again (a crash before the outbox was emptied) is a no-op.
    let evs = out.events.clone();
    let applied = t
        .store()
        .write(WriteCtx::system("test"), move |tx| {
            let info = sm::device_by_id(tx.conn(), id)?.unwrap();
            sm::apply_events(tx, &info, &evs[0].1)
        })
        .await
        .unwrap();
    assert_eq!((applied.raised.len(), applied.skipped), (0, 3));
    assert_eq!(alarms(&t, d.id).await.len(), 2);
    assert_eq!(pipeline::drain_outbox(&t.app).await.unwrap(), 0);
});

// ---- escalation -------------------------------------------------------------------------------

both_stores!(
    unacknowledged_alarm_escalates_with_the_clock,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        world::staff(
            &t,
            "street_officer",
            Role::StreetOfficer,
            Scope::Node(w.street),
        )
        .await;
        let street = w.street;
        t.store()
            .write(WriteCtx::system("test"), move |tx| {
                let uid: Uuid = tx
                    .conn()
                    .query_one(
                        "SELECT id FROM users WHERE username = 'street_officer'",
                        &[],
                    )?
                    .unwrap()
                    .get("id")?;
                anxin_store::places::create_duty(
                    tx,
                    &Caller::system(),
                    &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                        node_id: Some(street),
                        duty: Some("应急值班".into()),
                        responsible: Some("街道值班员".into()),
                        user_id: Some(uid),
                        phone: Some("13700000007".into()),
                    })?,
                )
            })
            .await
            .unwrap();
        let d = device(&t, &w, level_high()).await;
        ingest(&t, &d, 1, 0, 9.0).await;
        let sms = |t: &TestApp| {
            let store = t.store().clone();
            async move {
                store
                    .read(|c, _| {
                        c.query_i64(
                            "SELECT count(*) FROM notifications WHERE template = 'alarm_escalated'",
                            &[],
                        )
                    })
                    .await
                    .unwrap()
            }
        };
        t.clock.advance(chrono::Duration::minutes(14));
        assert_eq!(monitor::escalation::run(&t.app).await.unwrap().escalated, 0);
        t.clock.advance(chrono::Duration::minutes(1));
        let r = monitor::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (1, 1));
        assert_eq!(sms(&t).await, 1);
        let a = &alarms(&t, d.id).await[0];
        assert_eq!(a.escalated_level, 1);
        // Running again at the same time does nothing more.
        assert_eq!(monitor::escalation::run(&t.app).await.unwrap().escalated, 0);
        // Another 15 minutes: the district (no officer with a phone there: escalated, not notified).
        t.clock.advance(chrono::Duration::minutes(15));
        let r = monitor::escalation::run(&t.app).await.unwrap();
        assert_eq!((r.escalated, r.notified), (1, 0));
        assert_eq!(alarms(&t, d.id).await[0].escalated_level, 2);
        // The cap (two levels) holds.
        t.clock.advance(chrono::Duration::minutes(60));
        assert_eq!(monitor::escalation::run(&t.app).await.unwrap().escalated, 0);
        assert_eq!(sms(&t).await, 1);
    }
);

// ---- MQTT -------------------------------------------------------------------------------------

/// A subscriber for one device's topic on `port`, with its own client id.
async fn subscribe(
    t: &TestApp,
    code: &str,
    port: u16,
) -> (tokio::sync::watch::Sender<bool>, monitor::mqtt::Running) {
    let mut cfg = t.app.config.monitor.mqtt.clone();
    cfg.enabled = true;
    cfg.port = port;
    cfg.client_id = format!("anxin-it-{}", Uuid::now_v7().simple());
    cfg.topic = format!("anxin/v1/devices/{code}/readings");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut running = monitor::mqtt::start(t.app.clone(), cfg, rx);
    tokio::time::timeout(Duration::from_secs(20), running.ready.wait_for(|r| *r))
        .await
        .expect("subscribed in time")
        .unwrap();
    (stop, running)
}

/// A publishing device: QoS 1, a persistent session, its event loop polled until dropped.
fn publisher(port: u16) -> (rumqttc::AsyncClient, tokio::task::JoinHandle<()>) {
    let mut o = rumqttc::MqttOptions::new(
        format!("dev-it-{}", Uuid::now_v7().simple()),
        "127.0.0.1",
        port,
    );
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(5));
    let (c, mut el) = rumqttc::AsyncClient::new(o, 1000);
    let h = tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    (c, h)
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn readings_count(t: &TestApp, d: Uuid) -> i64 {
    let rd = t.app.monitor.readings.clone();
    tokio::task::spawn_blocking(move || rd.count(Some(d)))
        .await
        .unwrap()
        .unwrap()
}

/// The happy path over a broker on `port`: readings → alarm; malformed and unknown-device
/// messages are counted and acknowledged without stopping the stream.
async fn mqtt_happy_path(t: TestApp, port: u16) {
    let w = world::build(t.store()).await;
    let d = device(&t, &w, level_high()).await;
    let (stop, running) = subscribe(&t, &d.code, port).await;
    let (pubc, ph) = publisher(port);
    let topic = format!("anxin/v1/devices/{}/readings", d.code);
    let q = rumqttc::QoS::AtLeastOnce;
    pubc.publish(&topic, q, false, reading(1, &ts(&t, 0), 1.0))
        .await
        .unwrap();
    pubc.publish(&topic, q, false, b"{\"seq\": \"one\"}".to_vec())
        .await
        .unwrap();
    pubc.publish(&topic, q, false, reading(2, &ts(&t, 10), 4.0))
        .await
        .unwrap();
    pubc.publish(&topic, q, false, reading(3, &ts(&t, 20), 4.5))
        .await
        .unwrap();
    pubc.publish(&topic, q, false, reading(3, &ts(&t, 20), 4.5))
        .await
        .unwrap();
    wait_until("three readings", || async {
        readings_count(&t, d.id).await == 3
    })
    .await;
    wait_until("the alarm", || async {
        alarms(&t, d.id)
            .await
            .first()
            .is_some_and(|a| a.updates == 1)
    })
    .await;
    assert_eq!(
        alarms(&t, d.id).await.len(),
        1,
        "a duplicate raises nothing"
    );
    assert_eq!(t.app.monitor.counters.rejected(Reject::Malformed), 1);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    ph.abort();
}

both_stores!(
    mqtt_readings_raise_an_alarm_on_mosquitto,
    |t: TestApp| async move {
        mqtt_happy_path(t, 1883).await;
    }
);

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private Mosquitto with persistence that saves on every change.
struct Broker {
    child: std::process::Child,
    conf: std::path::PathBuf,
}

impl Broker {
    fn start(dir: &std::path::Path, port: u16) -> Broker {
        // Started as root, Mosquitto drops to its own user, which must be able to write here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 1\nautosave_on_changes true\n\
                 max_queued_messages 100000\nmax_inflight_messages 100\n",
                dir.display()
            ),
        )
        .unwrap();
        Self::spawn(conf)
    }
    fn spawn(conf: std::path::PathBuf) -> Broker {
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto installed (scripts/services)");
        Broker { child, conf }
    }
    async fn wait_listening(port: u16) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("broker did not start on {port}");
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

both_stores!(
    broker_restart_mid_stream_loses_no_reading,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let d = device(&t, &w, level_high()).await;
        let bdir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut broker = Broker::start(bdir.path(), port);
        Broker::wait_listening(port).await;
        let (stop, running) = subscribe(&t, &d.code, port).await;
        let (pubc, ph) = publisher(port);
        let topic = format!("anxin/v1/devices/{}/readings", d.code);
        const N: u64 = 120;
        for seq in 1..=N {
            if seq == 50 {
                // Kill the broker mid-stream (no clean shutdown), then start it again on its files.
                broker.kill();
                tokio::time::sleep(Duration::from_millis(300)).await;
                broker = Broker::spawn(broker.conf.clone());
                Broker::wait_listening(port).await;
            }
            let level = if seq % 2 == 0 { 5.0 } else { 4.0 };
            pubc.publish(
                &topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                reading(seq, &ts(&t, seq as i64), level),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..300 {
            if readings_count(&t, d.id).await == N as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = readings_count(&t, d.id).await;
        let rd = t.app.monitor.readings.clone();
        let id = d.id;
        let t0 = t.clock.now();
        let seqs: Vec<i64> = tokio::task::spawn_blocking(move || {
            rd.raw(
                id,
                t0 - chrono::Duration::hours(1),
                t0 + chrono::Duration::hours(1),
                1000,
            )
        })
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
        let missing: Vec<u64> = (1..=N).filter(|s| !seqs.contains(&(*s as i64))).collect();
        assert_eq!(got, N as i64, "missing seqs: {missing:?}");
        let a = alarms(&t, d.id).await;
        assert_eq!(a.len(), 1, "one alarm however often a reading came again");
        wait_until("all updates", || async {
            alarms(&t, d.id).await[0].updates == N as i64 - 1
        })
        .await;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
        ph.abort();
        drop(broker);
    }
);

/// The second, independent broker: aedes (npm), installed by `scripts/services` into
/// tests/brokers/aedes, run by node on a free port.
struct Aedes(std::process::Child);

impl Aedes {
    async fn start(port: u16) -> Aedes {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/brokers/aedes");
        assert!(
            dir.join("node_modules/aedes").is_dir(),
            "aedes is not installed: run scripts/services (npm ci in tests/brokers/aedes)"
        );
        let child = std::process::Command::new("node")
            .arg(dir.join("broker.js"))
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node installed");
        Broker::wait_listening(port).await;
        Aedes(child)
    }
}

impl Drop for Aedes {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

both_stores!(
    mqtt_readings_raise_an_alarm_on_aedes,
    |t: TestApp| async move {
        let port = free_port();
        let broker = Aedes::start(port).await;
        mqtt_happy_path(t, port).await;
        drop(broker);
    }
);
