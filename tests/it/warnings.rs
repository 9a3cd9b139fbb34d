//! Warning stories: workflow, targeting, channels, reach, CAP.
#![allow(clippy::unwrap_used)]

use crate::world::call;
use anxin_domain::geo::{self, Crs, LonLat};
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::places::{self as pl, BuildingInput, DwellingInput, LocationInput, NewBuilding};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{client, TestApp};
use crate::world::{self, staff, user, User, World};

/// The square around the building inside the warning (WGS84).
const INSIDE: (f64, f64) = (104.080, 30.650);
const OUTSIDE: (f64, f64) = (104.090, 30.650);

fn square(crs: Crs) -> Value {
    let pts = [
        (104.079, 30.649),
        (104.081, 30.649),
        (104.081, 30.651),
        (104.079, 30.651),
        (104.079, 30.649),
    ];
    let ring: Vec<Value> = pts
        .iter()
        .map(|(x, y)| {
            let p = geo::from_wgs84(crs, LonLat::new(*x, *y).unwrap());
            json!([p.lon(), p.lat()])
        })
        .collect();
    json!({ "polygons": [ring] })
}

/// Two located buildings in community A: hA1 lives in the one inside the square, hA1n in the
/// one outside; a second, phoneless and vulnerable person in hA1 (needs a visit).
async fn places(t: &TestApp, w: &World) -> Uuid {
    let (comm_a, grid_a1, hh_a1, hh_a1n) = (w.comm_a, w.grid_a1, w.hh_a1, w.hh_a1n);
    t.store()
        .write(WriteCtx::system("warn-places"), move |tx| {
            let sys = Caller::system();
            let dwell = |tx: &mut anxin_store::Tx, name: &str, (lon, lat): (f64, f64)| {
                let b = pl::create_building(
                    tx,
                    &sys,
                    &NewBuilding::parse(BuildingInput {
                        node_id: Some(comm_a),
                        grid_id: Some(grid_a1),
                        name: Some(name.into()),
                        location: Some(LocationInput {
                            lon: Some(lon),
                            lat: Some(lat),
                            crs: Some("wgs84".into()),
                        }),
                        ..BuildingInput::default()
                    })?,
                )?;
                let d = pl::create_dwelling(
                    tx,
                    &sys,
                    b.id,
                    &pl::NewDwelling::parse(DwellingInput {
                        number: Some("101".into()),
                        ..DwellingInput::default()
                    })?,
                )?;
                Ok::<_, anxin_store::StoreError>(d.id)
            };
            let din = dwell(tx, "内楼", INSIDE)?;
            let dout = dwell(tx, "外楼", OUTSIDE)?;
            tx.update("households", hh_a1, &[("dwelling_id", din.into())])?;
            tx.update("households", hh_a1n, &[("dwelling_id", dout.into())])?;
            let p = anxin_store::people::create_person(
                tx,
                &sys,
                &anxin_store::people::NewPerson::parse(&world::person_input(
                    "赵六奶奶",
                    None,
                    None,
                    comm_a,
                    grid_a1,
                    hh_a1,
                ))?,
            )?;
            anxin_store::people::add_vulnerable(
                tx,
                &sys,
                &anxin_store::people::VulnerableInput {
                    person_id: p.id,
                    category: "elderly_alone".into(),
                    helper_user_id: None,
                    contact_channel: "home_visit".into(),
                    notes: None,
                },
            )?;
            Ok(p.id)
        })
        .await
        .unwrap()
}

fn draft_body(w: &World, area: Value, crs: &str) -> Value {
    json!({
        "node_id": w.comm_a, "grid_id": w.grid_a1, "level": "orange", "category": "rainstorm",
        "headline": "暴雨橙色预警", "description": "未来3小时有强降雨。",
        "instruction": "请远离低洼地带。", "expires_at": "2026-11-02T13:00:00Z",
        "area": area, "crs": crs
    })
}

async fn count(t: &TestApp, sql: &'static str, id: Uuid) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &params![id]))
        .await
        .unwrap()
}

both_stores!(
    polygon_reaches_exactly_the_residents_inside,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let zhao = places(&t, &w).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let grid = staff(&t, "grid_a1", Role::GridWorker, Scope::Grid(w.grid_a1)).await;
        let resident = user(
            &t,
            "resident_a1",
            UserKind::Resident,
            None,
            Some(w.person_a1),
        )
        .await;
        // The grid worker is 赵六奶奶's helper.
        let helper: Uuid = t
            .store()
            .write(WriteCtx::system("helper"), move |tx| {
                let h: Uuid = tx
                    .query_one("SELECT id FROM users WHERE username = 'grid_a1'", &[])?
                    .unwrap()
                    .get("id")?;
                let v: Uuid = tx
                    .query_one(
                        "SELECT id FROM vulnerable WHERE person_id = $1",
                        &params![zhao],
                    )?
                    .unwrap()
                    .get("id")?;
                tx.update("vulnerable", v, &[("helper_user_id", h.into())])?;
                Ok(h)
            })
            .await
            .unwrap();

        // Validation names the field.
        let mut bad = draft_body(&w, square(Crs::Wgs84), "wgs84");
        bad["headline"] = json!("");
        let (s, b) = call(&base, &grid, "POST", "/api/v1/warnings", Some(bad)).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("headline")),
            "{b}"
        );
        let open =
            json!({ "polygons": [[[104.0, 30.0], [104.1, 30.0], [104.1, 30.1], [104.0, 30.2]]] });
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/warnings",
            Some(draft_body(&w, open, "wgs84")),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("area.polygons[0]")),
            "{b}"
        );

        // The grid worker drafts; cannot approve; the community worker approves and issues.
        let (s, d) = call(
            &base,
            &grid,
            "POST",
            "/api/v1/warnings",
            Some(draft_body(&w, square(Crs::Wgs84), "wgs84")),
        )
        .await;
        assert_eq!(s, 201, "{d}");
        assert_eq!(d["status"], "draft");
        let id = d["id"].as_str().unwrap().to_owned();
        let (s, b) = call(
            &base,
            &grid,
            "POST",
            &format!("/api/v1/warnings/{id}/approve"),
            None,
        )
        .await;
        assert_eq!(s, 403, "grid worker approved: {b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/issue"),
            None,
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (409, Some("warning.wrong_status")),
            "{b}"
        );
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/approve"),
            None,
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("approved")), "{b}");
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        // person_a1 (account + phone) and 赵六奶奶 (no phone: a visit); not hA1n's neighbour outside.
        // Two residents and the helper of the vulnerable one.
        assert_eq!(b["recipients"], 3, "{b}");
        assert_eq!(
            count(&t, "SELECT count(*) FROM warning_recipients WHERE target_kind = 'helper' AND helper_of IS NOT NULL AND target_id = $1", helper).await,
            1
        );
        assert_eq!(
            (
                b["in_app"].as_u64(),
                b["sms"].as_u64(),
                b["in_person"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{b}"
        );
        let wid: Uuid = id.parse().unwrap();
        let targeted = |t: &TestApp, wid: Uuid| {
            let s = t.store().clone();
            async move {
                s.read(move |c, _| {
                let mut v: Vec<Uuid> = c
                    .query("SELECT target_id FROM warning_recipients WHERE warning_id = $1 AND target_kind = 'person'", &params![wid])?
                    .iter()
                    .map(|r| r.get("target_id"))
                    .collect::<anxin_store::Result<_>>()?;
                v.sort();
                Ok(v)
            })
            .await
            .unwrap()
            }
        };
        let mut expect = vec![w.person_a1, zhao];
        expect.sort();
        assert_eq!(targeted(&t, wid).await, expect);
        // SMS went to the notification service with the warning template.
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM notifications WHERE template = 'warning' AND $1 = $1",
                wid
            )
            .await,
            1
        );
        anxin::platform::notify::deliver_due(&t.app).await.unwrap();
        let out = anxin::platform::notify::outbox_messages(
            &t.app,
            anxin::platform::notify::ChannelKind::Sms,
        )
        .await
        .unwrap();
        let sms: Vec<_> = out.iter().filter(|m| m.template == "warning").collect();
        assert_eq!(sms.len(), 1, "one SMS, to person_a1 only");
        assert_eq!(sms[0].to, "+8613812345678");
        assert!(
            sms[0].body.contains("橙色暴雨预警发布：暴雨橙色预警"),
            "{}",
            sms[0].body
        );
        // Issuing again sends nothing twice.
        let (s, _) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 409);
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM warning_deliveries WHERE warning_id = $1",
                wid
            )
            .await,
            3
        );

        // The same square drawn on a GCJ-02 base map targets the same people.
        let (s, g) = call(
            &base,
            &worker,
            "POST",
            "/api/v1/warnings",
            Some(draft_body(&w, square(Crs::Gcj02), "gcj02")),
        )
        .await;
        assert_eq!(s, 201, "{g}");
        let gid: Uuid = g["id"].as_str().unwrap().parse().unwrap();
        let mut same: Vec<Uuid> = t
            .store()
            .read(move |c, _| {
                let gw = anxin_store::warnings::get_unscoped(c, gid)?;
                Ok(anxin_store::warnings::target(c, &gw)?
                    .into_iter()
                    .filter(|x| x.kind == "person")
                    .map(|x| x.id)
                    .collect())
            })
            .await
            .unwrap();
        same.sort();
        assert_eq!(same, expect);

        // The resident sees it, the page reports display, and they answer.
        let (s, list) = call(&base, &resident, "GET", "/api/v1/resident/warnings", None).await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["id"].as_str(), Some(id.as_str()));
        // The home page carries the banner with the display report and the answer buttons.
        let page = client()
            .get(format!("{base}/resident"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("暴雨橙色预警")
                && html.contains(&format!("/api/v1/resident/warnings/{id}/displayed")),
            "{html}"
        );
        assert!(
            html.contains(&format!("action=\"/resident/warnings/{id}/ack\"")),
            "{html}"
        );
        let r = client()
            .post(format!("{base}/resident/warnings/{id}/ack"))
            .header("cookie", &resident.cookie)
            .form(&[("_csrf", resident.csrf.as_str()), ("answer", "need_help")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        let html = client()
            .get(format!("{base}/resident"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains(&format!("action=\"/resident/warnings/{id}/ack\"")),
            "answered, no more buttons"
        );
        let (s, _) = call(
            &base,
            &resident,
            "POST",
            &format!("/api/v1/resident/warnings/{id}/displayed"),
            None,
        )
        .await;
        assert_eq!(s, 204);
        let (s, b) = call(
            &base,
            &resident,
            "POST",
            &format!("/api/v1/resident/warnings/{id}/ack"),
            Some(json!({"answer": "maybe"})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("answer")),
            "{b}"
        );
        let (s, _) = call(
            &base,
            &resident,
            "POST",
            &format!("/api/v1/resident/warnings/{id}/ack"),
            Some(json!({"answer": "safe"})),
        )
        .await;
        assert_eq!(s, 204);

        // The reach board.
        let (s, r) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{id}/reach"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["total"]["recipients"], 2, "{r}");
        assert_eq!(r["total"]["acknowledged"], 1, "{r}");
        assert_eq!(r["total"]["delivered"], 1, "{r}");
        let sms_row = r["by_channel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "sms")
            .unwrap();
        assert_eq!(
            (
                sms_row["deliveries"].as_i64(),
                sms_row["delivered"].as_i64()
            ),
            (Some(1), Some(1)),
            "{r}"
        );
        let app_row = r["by_channel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "in_app")
            .unwrap();
        assert_eq!(app_row["delivered"], 1, "{r}");
        let unack = r["vulnerable_unacknowledged"].as_array().unwrap();
        assert_eq!(unack.len(), 1, "{r}");
        assert_eq!(
            unack[0]["person_id"].as_str(),
            Some(zhao.to_string().as_str())
        );
        assert!(
            !unack[0]["name"].as_str().unwrap().contains("六奶"),
            "name not masked: {r}"
        );
        let grid_reach = call(
            &base,
            &grid,
            "GET",
            &format!("/api/v1/warnings/{id}/reach"),
            None,
        )
        .await
        .0;
        assert_ne!(
            grid_reach, 200,
            "the grid worker may not read the reach board"
        );

        // The in-person task, done, counts as delivered.
        let (s, tasks) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{id}/tasks"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{tasks}");
        let task = tasks[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
        assert_eq!(
            tasks[0]["assignee_user_id"].as_str(),
            Some(helper.to_string().as_str()),
            "the helper visits: {tasks}"
        );
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/tasks/done"),
            Some(json!({"task_id": task})),
        )
        .await;
        assert_eq!(s, 204, "{b}");
        let (_, r) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{id}/reach"),
            None,
        )
        .await;
        assert_eq!(r["total"]["delivered"], 2, "{r}");

        // An update must change something; without words, the summary says what changed.
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/update"),
            Some(json!({"level": "orange"})),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("warning.nothing_changed")),
            "{b}"
        );

        // The resident's live stream: the list now, and again after the update below.
        let mut live = client()
            .get(format!("{base}/api/v1/resident/warnings/stream"))
            .header("cookie", &resident.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(live.status().as_u16(), 200);
        let first = String::from_utf8(live.chunk().await.unwrap().unwrap().to_vec()).unwrap();
        assert!(
            first.starts_with("event: warnings") && first.contains(&id),
            "{first}"
        );

        // An update: a new version referring to the original, saying what changed.
        let (s, u) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/update"),
            Some(json!({"level": "red", "change_summary": "升级为红色预警"})),
        )
        .await;
        assert_eq!(s, 200, "{u}");
        let nid = u["warning"]["id"].as_str().unwrap().to_owned();
        assert_eq!(u["warning"]["refers_to"].as_str(), Some(id.as_str()));
        assert_eq!(u["warning"]["version"], 2);
        let mut got = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !got.contains(&nid) {
            match tokio::time::timeout_at(deadline, live.chunk()).await {
                Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c)),
                _ => break,
            }
        }
        assert!(
            got.contains(&nid) && got.contains("升级为红色预警"),
            "the stream missed the update: {got}"
        );
        drop(live);
        let (_, old) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{id}"),
            None,
        )
        .await;
        assert_eq!(old["status"], "updated");
        let dup = t
        .store()
        .read(|c, _| c.query_i64("SELECT count(*) FROM (SELECT warning_id, target_id, channel FROM warning_deliveries GROUP BY warning_id, target_id, channel HAVING count(*) > 1) x", &[]))
        .await
        .unwrap();
        assert_eq!(dup, 0);

        // CAP 1.2 of the update.
        let r = client()
            .get(format!("{base}/api/v1/warnings/{nid}/cap.xml"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let xml = r.text().await.unwrap();
        for needle in [
            "<severity>Extreme</severity>",
            "<msgType>Update</msgType>",
            "<references>",
            "<polygon>30.649,104.079",
        ] {
            assert!(xml.contains(needle), "{needle} missing in {xml}");
        }
        let (s, feed) = call(&base, &worker, "GET", "/api/v1/warnings/feed.atom", None).await;
        assert_eq!(s, 200);
        assert!(feed.as_str().unwrap().contains(&nid));

        // Expiry by the clock.
        t.clock.advance(chrono::Duration::hours(13));
        // (Sessions time out too: sign in again.)
        let worker = staff(
            &t,
            "worker_a_later",
            Role::CommunityWorker,
            Scope::Node(w.comm_a),
        )
        .await;
        let resident = user(
            &t,
            "resident_a1_later",
            UserKind::Resident,
            None,
            Some(w.person_a1),
        )
        .await;
        let (_, now) = call(
            &base,
            &worker,
            "GET",
            &format!("/api/v1/warnings/{nid}"),
            None,
        )
        .await;
        assert_eq!(now["status"], "expired", "{now}");
        let (_, list) = call(&base, &resident, "GET", "/api/v1/resident/warnings", None).await;
        assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    }
);

async fn post_xml(base: &str, u: &User, path: &str, xml: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .header("content-type", "application/cap+xml")
        .body(xml.to_owned())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"#;

both_stores!(cap_round_trip_and_refusals, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    places(&t, &w).await;
    let comm_a = w.comm_a;
    t.store()
        .write(WriteCtx::system("codes"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            tx.insert(
                "node_codes",
                &[
                    ("id", id.into()),
                    ("node_id", comm_a.into()),
                    ("scheme", "stats12".into()),
                    ("code", "510104017001".into()),
                    ("valid_from", now.into()),
                    ("source", "test".into()),
                ],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let base = t.serve().await;
    let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
    let outsider = staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
    let mut body = draft_body(&w, square(Crs::Wgs84), "wgs84");
    body["area"]["nodes"] = json!([w.comm_a]);
    body["area"]["circles"] = json!([{ "lon": 104.08, "lat": 30.65, "radius_m": 500.0 }]);
    let (s, d) = call(&base, &worker, "POST", "/api/v1/warnings", Some(body)).await;
    assert_eq!(s, 201, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    // Not issued: no CAP document.
    let r = client()
        .get(format!("{base}/api/v1/warnings/{id}/cap.xml"))
        .header("cookie", &worker.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/warnings/{id}/approve"),
        None,
    )
    .await;
    let (s, _) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/warnings/{id}/issue"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let xml = client()
        .get(format!("{base}/api/v1/warnings/{id}/cap.xml"))
        .header("cookie", &worker.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "<severity>Severe</severity>",
        "<msgType>Alert</msgType>",
        "<value>510104017001</value>",
        "<circle>30.65,104.08 0.5</circle>",
        "+08:00</sent>",
    ] {
        assert!(xml.contains(needle), "{needle} missing in {xml}");
    }
    // Re-importing the very same alert is a duplicate.
    let (s, _) = post_xml(&base, &worker, "/api/v1/warnings/cap", &xml).await;
    assert_eq!(s, 409);
    // The round trip: the same alert from another sender comes back as a draft with the same content.
    let other = xml.replace(
        "<sender>anxin.local</sender>",
        "<sender>cma.gov.cn</sender>",
    );
    let (s, back) = post_xml(&base, &worker, "/api/v1/warnings/cap", &other).await;
    assert_eq!(s, 201, "{back}");
    assert_eq!(
        back["status"], "draft",
        "an untrusted import needs approval: {back}"
    );
    assert_eq!(back["source"], "cap_import");
    assert_eq!(
        back["node_id"].as_str(),
        Some(w.comm_a.to_string().as_str())
    );
    for k in [
        "level",
        "category",
        "headline",
        "description",
        "instruction",
        "effective_at",
        "expires_at",
    ] {
        assert_eq!(back[k], d[k], "{k} differs after the round trip");
    }
    assert_eq!(back["area"]["nodes"], d["area"]["nodes"]);
    assert_eq!(back["area"]["circles"], d["area"]["circles"]);
    let (a, b) = (&back["area"]["polygons"][0], &d["area"]["polygons"][0]);
    assert_eq!(a.as_array().unwrap().len(), b.as_array().unwrap().len());
    for (p, q) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        assert!((p[0].as_f64().unwrap() - q[0].as_f64().unwrap()).abs() < 1e-9);
        assert!((p[1].as_f64().unwrap() - q[1].as_f64().unwrap()).abs() < 1e-9);
    }
    // An outsider cannot import into community A (its geocode).
    let third = xml.replace("<sender>anxin.local</sender>", "<sender>elsewhere</sender>");
    let (s, _) = post_xml(&base, &outsider, "/api/v1/warnings/cap", &third).await;
    assert_eq!(s, 422);

    // Invalid CAP: clear errors naming the element.
    let cases: Vec<(String, &str, &str)> = vec![
        (
            xml.replace(
                &xml[xml.find("<sent>").unwrap()..xml.find("</sent>").unwrap() + 7],
                "",
            ),
            "cap.element_missing",
            "alert.sent",
        ),
        (
            xml.replace("+08:00</sent>", "Z</sent>").replace(
                &xml[xml.find("<sent>").unwrap() + 6..xml.find("<sent>").unwrap() + 25],
                "2026-11-02T09:00:00",
            ),
            "cap.datetime_invalid",
            "alert.sent",
        ),
        (
            xml.replace("<severity>Severe</severity>", "<severity>Bad</severity>"),
            "cap.value_invalid",
            "alert.info.severity",
        ),
        (
            xml.replace("<msgType>Alert</msgType>", "<msgType>Shout</msgType>"),
            "cap.value_invalid",
            "alert.msgType",
        ),
        (
            xml.replace("<sender>anxin.local</sender>", "<sender>a b</sender>"),
            "cap.value_invalid",
            "alert.sender",
        ),
        (
            xml.replace(" 30.649,104.079</polygon>", "</polygon>"),
            "cap.polygon_invalid",
            "alert.info.area[0].polygon[0]",
        ),
        (
            xml.replace(
                "<circle>30.65,104.08 0.5</circle>",
                "<circle>30.65,104.08</circle>",
            ),
            "cap.circle_invalid",
            "alert.info.area[0].circle[0]",
        ),
        (
            xml.replace("urn:oasis:names:tc:emergency:cap:1.2", "urn:example"),
            "cap.namespace_invalid",
            "alert",
        ),
        (BILLION_LAUGHS.to_owned(), "cap.dtd_refused", "document"),
        (
            xml.replace("<headline>", "<headline>&custom;"),
            "cap.entity_refused",
            "document",
        ),
        ("<alert".to_owned(), "cap.xml_invalid", "document"),
    ];
    for (doc, code, field) in cases {
        let (s, b) = post_xml(&base, &worker, "/api/v1/warnings/cap", &doc).await;
        assert_eq!(
            (
                s,
                b["error"]["code"].as_str(),
                b["error"]["details"]["field"].as_str()
            ),
            (422, Some(code), Some(field)),
            "{b}"
        );
    }
    // Predefined and character references are plain text, not refused.
    let amp = other
        .replace("cma.gov.cn", "cma2")
        .replace("<headline>", "<headline>A&amp;B&#x4E2D;");
    let (s, b) = post_xml(&base, &worker, "/api/v1/warnings/cap", &amp).await;
    assert_eq!(s, 201, "{b}");
    assert!(b["headline"].as_str().unwrap().starts_with("A&B中"), "{b}");

    // Cancelling the issued warning: a cancellation message referring to the original, to the
    // same recipients (the node area reaches all three people of community A with phones).
    let wid: Uuid = id.parse().unwrap();
    let sms_before = count(
        &t,
        "SELECT count(*) FROM warning_deliveries WHERE channel = 'sms' AND warning_id = $1",
        wid,
    )
    .await;
    assert_eq!(sms_before, 2, "person_a1 and person_a1n have phones");
    let (s, c) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/warnings/{id}/cancel"),
        Some(json!({"reason": "雨势减弱"})),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["warning"]["status"], "cancelled");
    assert_eq!(c["warning"]["refers_to"].as_str(), Some(id.as_str()));
    assert!(c["warning"]["change_summary"]
        .as_str()
        .unwrap()
        .contains("雨势减弱"));
    assert_eq!(c["recipients"], 3, "{c}");
    assert_eq!(c["sms"], 2, "{c}");
    let (_, old) = call(
        &base,
        &worker,
        "GET",
        &format!("/api/v1/warnings/{id}"),
        None,
    )
    .await;
    assert_eq!(old["status"], "cancelled");
    let (s, _) = call(
        &base,
        &worker,
        "POST",
        &format!("/api/v1/warnings/{id}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 409, "cancelled twice");
    let cid = c["warning"]["id"].as_str().unwrap().to_owned();
    let xml = client()
        .get(format!("{base}/api/v1/warnings/{cid}/cap.xml"))
        .header("cookie", &worker.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xml.contains("<msgType>Cancel</msgType>"), "{xml}");
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM notifications WHERE template = 'warning' AND $1 = $1",
            wid
        )
        .await,
        4
    );
});

mod trusted_sender {
    use super::*;
    use crate::support::Backend;

    async fn run(backend: Backend) {
        let t = TestApp::with_config(backend, |c| {
            c.warnings.trusted_senders = vec!["cma.gov.cn".into()];
        })
        .await;
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
<identifier>cma-2026-1102-001</identifier><sender>cma.gov.cn</sender><sent>2026-11-02T09:00:00+08:00</sent>
<status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><category>Met</category><event>暴雨</event><urgency>Immediate</urgency><severity>Extreme</severity>
<certainty>Likely</certainty><expires>2026-11-02T21:00:00+08:00</expires><headline>暴雨红色预警</headline>
<area><areaDesc>锦江区</areaDesc><polygon>30.649,104.079 30.649,104.081 30.651,104.081 30.649,104.079</polygon></area></info>
</alert>"#;
        let (s, b) = post_xml(
            &base,
            &worker,
            &format!("/api/v1/warnings/cap?node_id={}", w.comm_a),
            xml,
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["status"], "approved", "{b}");
        assert_eq!(b["level"], "red");
        assert!(
            b["issued_at"].is_null(),
            "an import never goes out by itself"
        );
        assert_eq!(b["trust"], "sender_listed", "{b}");

        // Issued by a person, then updated: the new version keeps how its sender was judged.
        let id = b["id"].as_str().unwrap().to_owned();
        let (s, b) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/issue"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, u) = call(
            &base,
            &worker,
            "POST",
            &format!("/api/v1/warnings/{id}/update"),
            Some(json!({"level": "orange", "change_summary": "降为橙色预警"})),
        )
        .await;
        assert_eq!(s, 200, "{u}");
        assert_eq!(u["warning"]["version"], 2, "{u}");
        assert_eq!(u["warning"]["trust"], "sender_listed", "{u}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

/// CAP imports from senders configured with a key (`[[warnings.trusted]]`): trusted only with a
/// valid XML-DSig enveloped signature made with that key (fixtures signed by `xmlsec1`, see
/// scripts/cap-dsig-fixtures); otherwise an untrusted draft that says why. A malformed signature
/// is refused naming the element. The plain name list still works.
mod signed_senders {
    use super::*;
    use crate::support::Backend;
    use anxin::warn::config::TrustedSender;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(fixture_path(name)).unwrap()
    }
    fn fixture_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cap")
            .join(name)
    }
    fn without_signature(doc: &str) -> String {
        let (a, b) = (
            doc.find("<Signature").unwrap(),
            doc.find("</Signature>").unwrap(),
        );
        format!("{}{}", &doc[..a], &doc[b + "</Signature>".len()..])
    }

    async fn run(backend: Backend) {
        let t = TestApp::with_config(backend, |c| {
            c.warnings.trusted_senders = vec!["listed.example.gov.cn".into(), "cma.gov.cn".into()];
            c.warnings.trusted = vec![
                TrustedSender {
                    sender: "cma.gov.cn".into(),
                    key_file: Some(fixture_path("cma_rsa_pub.pem")),
                    ..TrustedSender::default()
                },
                TrustedSender {
                    sender: "ec.example.gov.cn".into(),
                    key_pem: Some(fixture("ec_cert.pem")),
                    ..TrustedSender::default()
                },
            ];
        })
        .await;
        t.config.validate().unwrap();
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker = staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let path = format!("/api/v1/warnings/cap?node_id={}", w.comm_a);
        let import = |xml: String| {
            let (base, worker, path) = (base.clone(), &worker, path.clone());
            async move { post_xml(&base, worker, &path, &xml).await }
        };

        // Signed with the sender's key (RSA, and ECDSA with the key from a certificate): trusted.
        for (doc, sender) in [
            ("signed_rsa.xml", "cma.gov.cn"),
            ("signed_ec.xml", "ec.example.gov.cn"),
        ] {
            let (s, b) = import(fixture(doc)).await;
            assert_eq!(s, 201, "{doc}: {b}");
            assert_eq!(b["status"], "approved", "{doc}: {b}");
            assert_eq!(b["trust"], "signature_valid", "{doc}: {b}");
            assert_eq!(b["sender"], sender);
            assert!(
                b["issued_at"].is_null(),
                "an import never goes out by itself"
            );
        }

        // Untrusted drafts that say why: the headline changed after signing, another key's
        // signature, no signature although the sender is keyed (the name list does not help).
        let signed_b = fixture("signed_rsa_b.xml");
        let tampered = signed_b.replace("暴雨红色预警", "暴雨橙色预警");
        assert_ne!(tampered, signed_b);
        let unsigned =
            without_signature(&signed_b).replace("cma-2026-1102-002", "cma-2026-1102-004");
        let mut untrusted = Vec::new();
        for (what, doc, why) in [
            ("tampered", tampered, "signature_digest_mismatch"),
            (
                "other key",
                fixture("signed_other.xml"),
                "signature_invalid",
            ),
            ("unsigned", unsigned, "signature_missing"),
        ] {
            let (s, b) = import(doc).await;
            assert_eq!(s, 201, "{what}: {b}");
            assert_eq!(
                b["status"], "draft",
                "{what}: an untrusted import needs approval: {b}"
            );
            assert_eq!(b["trust"], why, "{what}: {b}");
            assert!(b["approved_at"].is_null(), "{what}: {b}");
            untrusted.push(b["id"].as_str().unwrap().to_owned());
        }
        let tampered_id = &untrusted[0];
        assert_eq!(
            call(
                &base,
                &worker,
                "GET",
                &format!("/api/v1/warnings/{tampered_id}"),
                None
            )
            .await
            .1["trust"],
            "signature_digest_mismatch"
        );
        // the reason is on the warning page
        let page = client()
            .get(format!("{base}/manage/warnings/{tampered_id}"))
            .header("cookie", &worker.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("cma.gov.cn — 签名后内容被改动"), "{page}");

        // The plain name list still works, and an unknown sender needs approval.
        let listed = without_signature(&fixture("signed_rsa.xml"))
            .replace("cma.gov.cn", "listed.example.gov.cn");
        let (s, b) = import(listed.clone()).await;
        assert_eq!(
            (s, &b["status"], &b["trust"]),
            (201, &json!("approved"), &json!("sender_listed")),
            "{b}"
        );
        let stranger = listed.replace("listed.example.gov.cn", "stranger.example.com");
        let (s, b) = import(stranger).await;
        assert_eq!(
            (s, &b["status"], &b["trust"]),
            (201, &json!("draft"), &json!("sender_not_trusted")),
            "{b}"
        );

        // A malformed signature from a keyed sender: refused, naming the element; nothing stored.
        let fresh = fixture("signed_rsa.xml").replace("cma-2026-1102-001", "cma-2026-1102-005");
        for (doc, code, field) in [
            (
                fresh
                    .replace("<SignatureValue>", "<SignatureVal>")
                    .replace("</SignatureValue>", "</SignatureVal>"),
                "dsig.malformed",
                "alert.Signature.SignatureValue",
            ),
            (
                fresh.replace("<DigestValue>", "<DigestValue>%%"),
                "dsig.malformed",
                "alert.Signature.SignedInfo.Reference.DigestValue",
            ),
            (
                fresh.replace(
                    "xml-exc-c14n#\"/>\n</Transforms>",
                    "xml-c14n-20010315\"/>\n</Transforms>",
                ),
                "dsig.unsupported",
                "alert.Signature.SignedInfo.Reference.Transforms.Transform",
            ),
        ] {
            let (s, b) = import(doc).await;
            assert_eq!(
                (
                    s,
                    b["error"]["code"].as_str(),
                    b["error"]["details"]["field"].as_str()
                ),
                (422, Some(code), Some(field)),
                "{b}"
            );
        }
        let sql =
            "SELECT count(*) FROM warnings WHERE cap_identifier = 'cma-2026-1102-005' AND $1 = $1";
        assert_eq!(count(&t, sql, w.comm_a).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

/// Every warnings API route is in the module's API document (merged by `http::openapi`).
#[test]
fn every_warnings_route_is_documented() {
    let doc = serde_json::to_value(anxin::http::warnings::api()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for e in anxin::http::warnings::routes().entries() {
        if !e.path.starts_with("/api/") {
            continue;
        }
        let m = e.method.to_lowercase();
        if paths.get(e.path).and_then(|p| p.get(&m)).is_none() {
            missing.push((m, e.path));
        }
    }
    assert!(missing.is_empty(), "not documented: {missing:?}");
}

/// Each step that reaches residents tells the configured staff group robots once, whatever the
/// number of residents; a draft or an approval tells no one.
mod group_robots {
    use super::*;
    use crate::support::Backend;
    use anxin_domain::Clock;

    async fn run(backend: Backend) {
        let t = TestApp::with_config(backend, |c| {
            c.notify.robots = vec![anxin::config::RobotConfig {
                name: "duty-wecom".into(),
                kind: "wecom".into(),
                // Nothing listens there: the notice is recorded, its sending retried.
                webhook: Some(anxin_crypto::Secret::new(
                    "http://127.0.0.1:9/cgi-bin/webhook/send?key=test".into(),
                )),
                secret: None,
                format: "markdown".into(),
                timeout_seconds: 5,
            }];
        })
        .await;
        let w = world::build(t.store()).await;
        let comm_a = w.comm_a;
        let sys = Caller::system();
        let count = |t: &TestApp| {
            let store = t.store().clone();
            async move {
                store
                    .read(|c, _| {
                        c.query_i64(
                            "SELECT count(*) FROM notifications WHERE channel = 'wecom'",
                            &[],
                        )
                    })
                    .await
                    .unwrap()
            }
        };
        let (s2, now) = (sys.clone(), t.clock.now());
        let draft = t
            .store()
            .write(WriteCtx::system("robots"), move |tx| {
                let d = anxin_store::warnings::draft_from(
                    tx,
                    &s2,
                    anxin_store::warnings::WarningInput {
                        node_id: Some(comm_a),
                        level: Some("orange".into()),
                        category: Some("rainstorm".into()),
                        headline: Some("暴雨橙色预警".into()),
                        description: Some("预计强降雨。".into()),
                        expires_at: Some(now + chrono::TimeDelta::hours(3)),
                        area: Some(json!({ "nodes": [comm_a] })),
                        ..Default::default()
                    },
                    "anxin.test",
                )?;
                anxin_store::warnings::approve(tx, &s2, d.id)
            })
            .await
            .unwrap();
        assert_eq!(count(&t).await, 0, "drafts and approvals tell no group");
        anxin::warn::workflow::issue(&t.app, sys, WriteCtx::system("robots"), draft.id)
            .await
            .unwrap();
        assert_eq!(count(&t).await, 1, "one group notice for the issue");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}
