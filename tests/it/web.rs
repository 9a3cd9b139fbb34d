//! The web pages over real HTTP (SQLite): sign-in by form, search by part of a Chinese name,
//! unmask (audited), field-named errors in Chinese, the language switch, the resident's phone
//! code, the embedded static files; and every error code the sources use has both texts.
//! The browser tests (`scripts/browser-test`) drive the same pages in chromium.
#![allow(clippy::unwrap_used)]

use anxin::http::admin::create_staff_user;
use anxin::platform::notify::{outbox_messages, ChannelKind};
use anxin::web::i18n::{lookup, Lang};
use anxin_domain::roles::{Role, Scope};
use anxin_domain::Clock;
use reqwest::header::{CONTENT_TYPE, LOCATION};

use crate::support::{Backend, TestApp};
use crate::world::{self, PERSON_A1_PHONE};

const PASSWORD: &str = "Correct-Horse-9-battery";

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn staff_pages_end_to_end() {
    let t = TestApp::new(Backend::Sqlite).await;
    let w = world::build(t.store()).await;
    create_staff_user(
        &t.app,
        "pageworker",
        "页面社工",
        PASSWORD,
        vec![(Role::CommunityWorker, Scope::Node(w.comm_a))],
    )
    .await
    .unwrap();
    let base = t.serve().await;
    let c = crate::support::client();

    // Signed out: pages send you to sign-in; the sign-in page is in Chinese by default.
    let r = c.get(format!("{base}/manage/people")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/manage/login");
    let html = c
        .get(format!("{base}/manage/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("工作人员登录"));
    let en = c
        .get(format!("{base}/manage/login?lang=en"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Staff sign-in"));

    // A wrong password: the code's Chinese text.
    let r = c
        .post(format!("{base}/manage/login"))
        .form(&[("username", "pageworker"), ("password", "nope-nope-nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("用户名或密码错误"));

    let r = c
        .post(format!("{base}/manage/login"))
        .form(&[("username", "pageworker"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_some());

    // Part of a Chinese name, in the middle: 三 finds 张三丰.
    let html = c
        .get(format!("{base}/manage/people?q=%E4%B8%89"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("张三丰"), "{html}");
    assert!(!html.contains("李四"));
    assert!(html.contains(&format!("/manage/people/{}", w.person_a1)));

    // Detail is masked; unmask needs the form's CSRF token and shows plaintext.
    let page = c
        .get(format!("{base}/manage/people/{}", w.person_a1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(PERSON_A1_PHONE));
    let csrf = csrf_of(&page);
    let r = c
        .post(format!("{base}/manage/people/{}/unmask", w.person_a1))
        .form(&[("_csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/manage/people/{}/unmask", w.person_a1))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(PERSON_A1_PHONE));

    // Another community's person answers like a missing one.
    let other = c
        .get(format!("{base}/manage/people/{}", w.person_b1))
        .send()
        .await
        .unwrap();
    let missing = c
        .get(format!("{base}/manage/people/{}", uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (other.status().as_u16(), missing.status().as_u16()),
        (404, 404)
    );

    // An edit with an empty name: the error is on the name field, in Chinese.
    let r = c
        .post(format!("{base}/manage/people/{}/edit", w.person_a1))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", ""),
            ("population_type", "registered"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"name-error\"") && html.contains("此项必填"),
        "{html}"
    );
    let r = c
        .post(format!("{base}/manage/people/{}/edit", w.person_a1))
        .form(&[("_csrf", csrf.as_str()), ("name", "张三丰改")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // The embedded libraries and our files.
    for (path, ty) in [
        ("/static/vendor/htmx.min.js", "text/javascript"),
        ("/static/vendor/leaflet.js", "text/javascript"),
        ("/static/vendor/leaflet.css", "text/css"),
        ("/static/app.css", "text/css"),
        ("/static/map.js", "text/javascript"),
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(ty));
    }
    assert!(
        anxin::web::assets_ok(),
        "web/node_modules was missing at build time"
    );

    // Preferences go back to local paths only.
    let r = c
        .get(format!("{base}/prefs?lang=en&next=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/");
}

#[tokio::test]
async fn resident_pages_phone_code() {
    let t = TestApp::new(Backend::Sqlite).await;
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let c = crate::support::client();

    let r = c
        .post(format!("{base}/resident/code"))
        .form(&[("phone", "123")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("手机号格式不正确"));

    let r = c
        .post(format!("{base}/resident/code"))
        .form(&[("phone", PERSON_A1_PHONE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let msgs = outbox_messages(&t.app, ChannelKind::Sms).await.unwrap();
    let code = msgs.last().unwrap().params["code"].clone();
    let r = c
        .post(format!("{base}/resident/verify"))
        .form(&[("phone", PERSON_A1_PHONE), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/resident");
    let html = c
        .get(format!("{base}/resident"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("张三丰"), "{html}");
    let csrf = csrf_of(&html);
    let r = c
        .post(format!("{base}/resident/people/{}/edit", w.person_a1))
        .form(&[("_csrf", csrf.as_str()), ("name", "张三峰"), ("phone", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Someone else's household is not the resident's to correct.
    let r = c
        .post(format!("{base}/resident/people/{}/edit", w.person_b1))
        .form(&[("_csrf", csrf.as_str()), ("name", "改名")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Error codes as the sources raise them: string literals `"area.reason"` near a constructor.
fn raised_codes() -> std::collections::BTreeSet<String> {
    const MARKERS: &[&str] = &[
        "ApiError::new",
        "ApiError::invalid",
        "forbidden(",
        "StoreError::invalid",
        "Forbidden(",
        "code: \"",
        "Self::",
    ];
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![
        std::path::PathBuf::from("src/http"),
        std::path::PathBuf::from("crates/anxin-store/src"),
        std::path::PathBuf::from("crates/anxin-domain/src/error.rs"),
    ];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let near = lines[i.saturating_sub(3)..=i].join(" ");
            if !MARKERS.iter().any(|m| near.contains(m)) {
                continue;
            }
            for lit in line.split('"').skip(1).step_by(2) {
                let mut parts = lit.split('.');
                let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
                    if !a.is_empty() && !b.is_empty()
                        && lit.bytes().all(|c| c.is_ascii_lowercase() || c == b'_' || c == b'.'));
                if ok {
                    out.insert(lit.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn every_error_code_has_both_texts() {
    let codes = raised_codes();
    assert!(codes.contains("auth.required") && codes.contains("phone.format"));
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| lookup(Lang::Zh, c).is_none() || lookup(Lang::En, c).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "add these codes to src/web/i18n.rs: {missing:?}"
    );
}

/// Sign in through the staff page; returns the client (cookie kept) and the CSRF token.
async fn staff_page_session(base: &str, username: &str) -> (reqwest::Client, String) {
    let c = crate::support::client();
    let r = c
        .post(format!("{base}/manage/login"))
        .form(&[("username", username), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{username} signs in");
    let html = c
        .get(format!("{base}/manage/people"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (c, csrf_of(&html))
}

/// The isolation matrix's rule for the page routes, until `tests/it/isolation.rs` has their
/// sample bodies: outsiders get no 2xx on an A1 record, and the same answer as for a missing one.
#[tokio::test]
async fn pages_answer_outsiders_like_missing_records() {
    // Many page routes, each tried by three callers: above the per-address rate limit.
    let t = TestApp::with_config(Backend::Sqlite, |c| {
        c.server.rate_per_minute_per_address = 1_000_000;
    })
    .await;
    let w = world::build(t.store()).await;
    for (name, role, scope) in [
        ("outsider_b", Role::CommunityWorker, Scope::Node(w.comm_b)),
        ("outsider_grid", Role::GridWorker, Scope::Grid(w.grid_a2)),
        ("insider_a", Role::CommunityWorker, Scope::Node(w.comm_a)),
    ] {
        create_staff_user(&t.app, name, name, PASSWORD, vec![(role, scope)])
            .await
            .unwrap();
    }
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    let (building, facility, unit, dwelling, duty) = t
        .store()
        .write(anxin_store::WriteCtx::system("web-places"), move |tx| {
            use anxin_store::places::*;
            let sys = anxin_store::scope::Caller::system();
            let b = create_building(
                tx,
                &sys,
                &NewBuilding::parse(BuildingInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    name: Some("A1栋".into()),
                    ..BuildingInput::default()
                })?,
            )?;
            let f = create_facility(
                tx,
                &sys,
                &NewFacility::parse(FacilityInput {
                    node_id: Some(comm_a),
                    kind: Some("hydrant".into()),
                    name: Some("A1消火栓".into()),
                    ..FacilityInput::default()
                })?,
            )?;
            let u = create_unit(
                tx,
                &sys,
                b.id,
                &NewUnit::parse(UnitInput {
                    name: Some("1单元".into()),
                })?,
            )?;
            let d = create_dwelling(
                tx,
                &sys,
                b.id,
                &NewDwelling::parse(DwellingInput {
                    unit_id: Some(u.id),
                    number: Some("101".into()),
                    ..DwellingInput::default()
                })?,
            )?;
            let du = create_duty(
                tx,
                &sys,
                &NewDuty::parse(DutyInput {
                    node_id: Some(comm_a),
                    duty: Some("防汛值班".into()),
                    responsible: Some("张三".into()),
                    ..DutyInput::default()
                })?,
            )?;
            Ok((b.id, f.id, u.id, d.id, du.id))
        })
        .await
        .unwrap();
    let p = w.person_a1;
    t.store()
        .write(anxin_store::WriteCtx::system("web-vulnerable"), move |tx| {
            anxin_store::people::add_vulnerable(
                tx,
                &anxin_store::scope::Caller::system(),
                &anxin_store::people::VulnerableInput {
                    person_id: p,
                    category: "elderly_alone".into(),
                    helper_user_id: None,
                    contact_channel: "no_smartphone".into(),
                    notes: None,
                },
            )
        })
        .await
        .unwrap();
    let (membership, vulnerable) = t
        .store()
        .read(move |c, _| {
            let mut id = |sql: &str| -> anxin_store::Result<uuid::Uuid> {
                c.query_one(sql, &[anxin_store::Value::from(p)])?
                    .unwrap()
                    .get("id")
            };
            let m = id("SELECT id FROM memberships WHERE person_id = $1")?;
            let v = id("SELECT id FROM vulnerable WHERE person_id = $1")?;
            Ok((m, v))
        })
        .await
        .unwrap();
    let comm_a = w.comm_a;
    let compound = t
        .store()
        .write(anxin_store::WriteCtx::system("web-compound"), move |tx| {
            anxin_store::tree::create_compound(
                tx,
                &anxin_store::scope::Caller::system(),
                comm_a,
                "A1苑",
            )
        })
        .await
        .unwrap();
    let monitoring = world::monitoring_a1(t.store(), &w).await;
    let mut operations = world::operations_a1(t.store(), &w).await;
    operations.extend(world::hazards_a1(t.store(), &w).await);
    operations.extend(world::supplies_a1(t.store(), &w).await);
    let base = t.serve().await;
    let outsiders = [
        staff_page_session(&base, "outsider_b").await,
        staff_page_session(&base, "outsider_grid").await,
    ];
    let (insider, _) = staff_page_session(&base, "insider_a").await;
    let table = anxin::web::routes();
    let mut tried = 0;
    for e in table.entries() {
        let anxin::http::routes::Serves::Records(kind) = e.serves else {
            continue;
        };
        let id = match kind {
            "people" => w.person_a1,
            "households" => w.hh_a1,
            "nodes" => w.comm_a,
            "buildings" => building,
            "facilities" => facility,
            "units" => unit,
            "dwellings" => dwelling,
            "duties" => duty,
            "grids" => w.grid_a1,
            "memberships" => membership,
            "vulnerable" => vulnerable,
            "compounds" => compound,
            "alarms" => monitoring["alarms"],
            "devices" => monitoring["devices"],
            "warnings" => w.warning_a1,
            other => *operations
                .get(other)
                .unwrap_or_else(|| panic!("no A1 record of kind {other}")),
        };
        let real = e.path.replace("{id}", &id.to_string());
        let missing = e.path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
        if !e.path.contains("{id}") {
            // A create form's POST has no page of its own to read.
            if e.method != "GET" {
                continue;
            }
            let body = insider
                .get(format!("{base}{real}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(body.contains(&id.to_string()), "insider's {real}");
            for (c, _) in &outsiders {
                let body = c
                    .get(format!("{base}{real}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(
                    !body.contains(&id.to_string()),
                    "outsider sees {id} in {real}"
                );
            }
            tried += 1;
            continue;
        }
        for (c, csrf) in &outsiders {
            let call = |path: String| {
                let mut r = c
                    .request(method.clone(), format!("{base}{path}"))
                    .header("x-csrf-token", csrf.as_str());
                if e.method == "POST" {
                    r = r.json(&serde_json::json!({ "name": "闯入者" }));
                }
                r.send()
            };
            let a = call(real.clone()).await.unwrap().status().as_u16();
            let b = call(missing.clone()).await.unwrap().status().as_u16();
            assert!(!(200..300).contains(&a), "{} {real}: {a}", e.method);
            assert_eq!(
                a, b,
                "{} {real} tells a record apart from a missing one",
                e.method
            );
        }
        if e.method == "GET" {
            let s = insider
                .get(format!("{base}{real}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(s, 200, "insider GET {real}");
        }
        tried += 1;
    }
    assert!(tried >= 10, "only {tried} page routes tried");
    // Every page form post needs the session's CSRF token, whatever it posts to.
    let mut posts = 0;
    for e in table.entries() {
        if e.method != "POST" || e.serves == anxin::http::routes::Serves::Public {
            continue;
        }
        let path = e.path.replace("{id}", &w.comm_a.to_string());
        let r = insider
            .post(format!("{base}{path}"))
            .form(&[("name", "无令牌")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "POST {path} without the CSRF token");
        posts += 1;
    }
    assert!(posts >= 15, "only {posts} form posts tried");
}

// ---- record pages (src/web/records.rs) ----------------------------------------------------

async fn page(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// POST a form; returns status, `Location` and body.
async fn post_form(
    c: &reqwest::Client,
    url: String,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, loc, r.text().await.unwrap())
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

both_stores!(record_forms_round_trip, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    for (name, scope) in [("rec_worker", w.comm_a), ("rec_outsider", w.comm_b)] {
        create_staff_user(
            &t.app,
            name,
            "记录社工",
            PASSWORD,
            vec![(Role::CommunityWorker, Scope::Node(scope))],
        )
        .await
        .unwrap();
    }
    let base = t.serve().await;
    let (c, csrf) = staff_page_session(&base, "rec_worker").await;
    let (o, ocsrf) = staff_page_session(&base, "rec_outsider").await;
    let csrf = csrf.as_str();

    // The node page offers the forms; the building form is in Chinese, labelled, with the grids.
    let (s, html) = page(&c, format!("{base}/manage/nodes/{}", w.comm_a)).await;
    assert_eq!(s, 200);
    assert!(
        html.contains(&format!("/manage/nodes/{}/buildings/new", w.comm_a)),
        "{html}"
    );
    assert!(html.contains(&format!("/manage/grids/{}", w.grid_a1)));
    let new_building = format!("{base}/manage/nodes/{}/buildings/new", w.comm_a);
    let (s, html) = page(&c, new_building.clone()).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("新建楼栋") && html.contains("<label for=\"name\">"),
        "{html}"
    );
    assert!(html.contains("一网格") && html.contains("<label for=\"crs\">"));
    // Out of reach: the same answer as a missing node.
    let (s, _) = page(&o, new_building.clone()).await;
    let (m, _) = page(
        &o,
        format!("{base}/manage/nodes/{}/buildings/new", uuid::Uuid::now_v7()),
    )
    .await;
    assert_eq!((s, m), (404, 404));

    // CSRF is required on the form post.
    let (s, _, _) = post_form(&c, new_building.clone(), &[("name", "锦苑1栋")]).await;
    assert_eq!(s, 403);
    // A bad field: its Chinese error next to it, nothing written.
    let (s, _, html) = post_form(
        &c,
        new_building.clone(),
        &[("_csrf", csrf), ("name", "锦苑1栋"), ("floors", "十八")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("id=\"floors-error\"") && html.contains("填写的内容无效"),
        "{html}"
    );
    assert!(
        html.contains("value=\"锦苑1栋\""),
        "the form keeps what was typed"
    );
    let (s, _, html) = post_form(&c, new_building.clone(), &[("_csrf", csrf), ("name", " ")]).await;
    assert_eq!(s, 422);
    assert!(
        html.contains("id=\"name-error\"") && html.contains("此项必填"),
        "{html}"
    );
    // Coordinates without their system: the store's own rule, on the system's field.
    let (s, _, html) = post_form(
        &c,
        new_building.clone(),
        &[
            ("_csrf", csrf),
            ("name", "锦苑1栋"),
            ("lon", "104.08"),
            ("lat", "30.65"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"crs-error\""), "{html}");
    // Floors out of range: the store's code, in Chinese.
    let (s, _, html) = post_form(
        &c,
        new_building.clone(),
        &[("_csrf", csrf), ("name", "锦苑1栋"), ("floors", "0")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"floors-error\""), "{html}");
    assert_eq!(
        count(&t, "SELECT count(*) FROM buildings WHERE name = '锦苑1栋'").await,
        0
    );

    // Created: the detail page shows it, with the grid chosen.
    let grid = w.grid_a1.to_string();
    let (s, loc, _) = post_form(
        &c,
        new_building.clone(),
        &[
            ("_csrf", csrf),
            ("name", "锦苑1栋"),
            ("address", "水井坊街1号"),
            ("floors", "18"),
            ("grid_id", grid.as_str()),
            ("lon", "104.08"),
            ("lat", "30.65"),
            ("crs", "gcj02"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert!(loc.starts_with("/manage/buildings/"), "{loc}");
    let building = loc.trim_start_matches("/manage/buildings/").to_owned();
    let (s, html) = page(&c, format!("{base}{loc}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("锦苑1栋") && html.contains("水井坊街1号") && html.contains("一网格"),
        "{html}"
    );
    // The outsider: not found, like a missing building.
    assert_eq!(page(&o, format!("{base}{loc}")).await.0, 404);

    // Edit: the form is filled in; a rename lands.
    let (s, html) = page(&c, format!("{base}{loc}/edit")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("value=\"锦苑1栋\"") && html.contains("value=\"18\""),
        "{html}"
    );
    let (s, _, _) = post_form(
        &c,
        format!("{base}{loc}/edit"),
        &[
            ("_csrf", csrf),
            ("name", "锦苑一栋"),
            ("floors", "18"),
            ("grid_id", grid.as_str()),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert!(page(&c, format!("{base}{loc}"))
        .await
        .1
        .contains("锦苑一栋"));
    let (s, _, _) = post_form(
        &o,
        format!("{base}{loc}/edit"),
        &[("_csrf", ocsrf.as_str()), ("name", "闯入楼")],
    )
    .await;
    assert_eq!(s, 404);

    // A unit, then a dwelling in it.
    let (s, _, _) = post_form(
        &c,
        format!("{base}{loc}/units/new"),
        &[("_csrf", csrf), ("name", "1单元")],
    )
    .await;
    assert_eq!(s, 303);
    let (s, html) = page(&c, format!("{base}{loc}/dwellings/new")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("新增房屋") && html.contains("1单元"),
        "{html}"
    );
    let unit: String = {
        let at = html.find("<option value=\"").unwrap();
        // The first option after the empty one is the unit.
        let rest = &html[at..];
        let at = rest[1..].find("<option value=\"").unwrap() + 1 + 15;
        rest[at..].split('"').next().unwrap().to_owned()
    };
    let (s, _, html) = post_form(
        &c,
        format!("{base}{loc}/dwellings/new"),
        &[("_csrf", csrf), ("number", "301"), ("floor", "三")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"floor-error\""), "{html}");
    let (s, dloc, _) = post_form(
        &c,
        format!("{base}{loc}/dwellings/new"),
        &[
            ("_csrf", csrf),
            ("number", "301"),
            ("floor", "3"),
            ("unit_id", unit.as_str()),
            ("area_m2", "89.5"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert!(dloc.starts_with("/manage/dwellings/"), "{dloc}");
    let (s, html) = page(&c, format!("{base}{dloc}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("301") && html.contains("1单元") && html.contains("89.5"),
        "{html}"
    );
    assert!(page(&c, format!("{base}{loc}")).await.1.contains("301"));
    assert_eq!(page(&o, format!("{base}{dloc}")).await.0, 404);
    // The outsider cannot add a dwelling to A's building: not found, nothing written.
    let (s, _, _) = post_form(
        &o,
        format!("{base}{loc}/dwellings/new"),
        &[("_csrf", ocsrf.as_str()), ("number", "999")],
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        count(&t, "SELECT count(*) FROM dwellings WHERE number = '999'").await,
        0
    );

    // The grid page lists the building and the grid's people.
    let (s, html) = page(&c, format!("{base}/manage/grids/{}", w.grid_a1)).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("锦苑一栋") && html.contains("张三丰"),
        "{html}"
    );
    assert!(html.contains(&building));
    assert_eq!(
        page(&o, format!("{base}/manage/grids/{}", w.grid_a1))
            .await
            .0,
        404
    );

    // Facilities: a shelter needs a capacity (the store's rule, in Chinese, on that field).
    let new_facility = format!("{base}/manage/nodes/{}/facilities/new", w.comm_a);
    let (s, _, html) = post_form(
        &c,
        new_facility.clone(),
        &[
            ("_csrf", csrf),
            ("name", "水井坊广场"),
            ("kind", "shelter"),
            ("status", "active"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("id=\"capacity-error\"") && html.contains("避难场所必须填写容量"),
        "{html}"
    );
    let (s, floc, _) = post_form(
        &c,
        new_facility.clone(),
        &[
            ("_csrf", csrf),
            ("name", "水井坊广场"),
            ("kind", "shelter"),
            ("status", "active"),
            ("capacity", "500"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    let (s, html) = page(&c, format!("{base}{floc}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("水井坊广场") && html.contains("应急避难场所") && html.contains("500"),
        "{html}"
    );
    let (s, _, _) = post_form(
        &c,
        format!("{base}{floc}/edit"),
        &[
            ("_csrf", csrf),
            ("name", "水井坊广场"),
            ("kind", "shelter"),
            ("status", "open"),
            ("capacity", "800"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert!(page(&c, format!("{base}{floc}")).await.1.contains("800"));
    // The facilities list filters by kind and links to the detail page.
    let (_, html) = page(&c, format!("{base}/manage/facilities?kind=shelter")).await;
    let fid = floc.trim_start_matches("/manage/facilities/");
    assert!(html.contains("水井坊广场") && html.contains(fid), "{html}");
    let (_, html) = page(&c, format!("{base}/manage/facilities?kind=hydrant")).await;
    assert!(!html.contains("水井坊广场"), "{html}");
    let (_, html) = page(&c, format!("{base}/manage/buildings?q=%E9%94%A6%E8%8B%91")).await;
    assert!(
        html.contains("锦苑一栋") && html.contains(&building),
        "{html}"
    );
    assert_eq!(page(&o, format!("{base}{floc}")).await.0, 404);

    // Grids and compounds under the community.
    let (s, _, html) = post_form(
        &c,
        format!("{base}/manage/nodes/{}/grids/new", w.comm_a),
        &[("_csrf", csrf), ("name", "")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"name-error\""), "{html}");
    let (s, _, _) = post_form(
        &c,
        format!("{base}/manage/nodes/{}/grids/new", w.comm_a),
        &[("_csrf", csrf), ("name", "三网格")],
    )
    .await;
    assert_eq!(s, 303);
    let (s, cloc, _) = post_form(
        &c,
        format!("{base}/manage/nodes/{}/compounds/new", w.comm_a),
        &[("_csrf", csrf), ("name", "锦江苑")],
    )
    .await;
    assert_eq!(s, 303);
    let (s, html) = page(&c, format!("{base}{cloc}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("锦江苑") && html.contains("小区"), "{html}");
    let html = page(&c, format!("{base}/manage/nodes/{}", w.comm_a))
        .await
        .1;
    assert!(html.contains("三网格") && html.contains("锦江苑"), "{html}");
    // The tree as navigation: the places under a node.
    let (_, html) = page(&c, format!("{base}/manage/buildings?under={}", w.comm_a)).await;
    assert!(html.contains("锦苑一栋"), "{html}");
    let (_, html) = page(
        &c,
        format!(
            "{base}{}",
            cloc.replace("/manage/nodes/", "/manage/buildings?under=")
        ),
    )
    .await;
    assert!(!html.contains("锦苑一栋"), "{html}");
    let (s, _, _) = post_form(
        &o,
        format!("{base}/manage/nodes/{}/grids/new", w.comm_a),
        &[("_csrf", ocsrf.as_str()), ("name", "闯入网格")],
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        count(&t, "SELECT count(*) FROM grids WHERE name = '闯入网格'").await,
        0
    );

    // Duties: the phone is checked by the store and shown masked only.
    let new_duty = format!("{base}/manage/nodes/{}/duties/new", w.comm_a);
    let (s, _, html) = post_form(
        &c,
        new_duty.clone(),
        &[
            ("_csrf", csrf),
            ("duty", "防汛值班"),
            ("responsible", "李值班"),
            ("phone", "12345"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("手机号格式不正确"), "{html}");
    let (s, _, _) = post_form(
        &c,
        new_duty.clone(),
        &[
            ("_csrf", csrf),
            ("duty", "防汛值班"),
            ("responsible", "李值班"),
            ("phone", "13811112222"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    let (s, html) = page(&c, format!("{base}/manage/nodes/{}/duties", w.comm_a)).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("防汛值班") && html.contains("李值班"),
        "{html}"
    );
    assert!(!html.contains("13811112222"), "the duty phone is masked");
    assert_eq!(
        page(&o, format!("{base}/manage/nodes/{}/duties", w.comm_a))
            .await
            .0,
        404
    );

    // English labels by the switch.
    let (s, html) = page(&c, format!("{base}{loc}?lang=en")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Dwellings") && html.contains("Add a unit"),
        "{html}"
    );
});

// ---- administration pages (src/web/admin.rs) ----------------------------------------------

/// Sign in an administrator through the pages and enrol TOTP on the enrolment page; returns the
/// client (second factor satisfied) and the CSRF token.
async fn admin_page_session(t: &TestApp, base: &str, username: &str) -> (reqwest::Client, String) {
    let c = crate::support::client();
    let (s, loc, _) = post_form(
        &c,
        format!("{base}/manage/login"),
        &[("username", username), ("password", PASSWORD)],
    )
    .await;
    assert_eq!((s, loc.as_str()), (303, "/manage"));
    // Not enrolled yet: every management page leads to enrolment.
    let r = c.get(format!("{base}/manage")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/manage/totp");
    let (s, html) = page(&c, format!("{base}/manage/totp")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("两步验证") && html.contains("生成密钥"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let (s, _, _) = post_form(&c, format!("{base}/manage/totp"), &[]).await;
    assert_eq!(s, 403, "enrolment needs the CSRF token");
    let (s, _, html) = post_form(
        &c,
        format!("{base}/manage/totp"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("src=\"data:image&#x2f;svg+xml;base64,")
            && html.contains("alt=\"两步验证密钥二维码\""),
        "{html}"
    );
    let uid = t
        .store()
        .read({
            let u = username.to_owned();
            move |c, _| {
                Ok(anxin_store::accounts::user_by_username(c, &u)?
                    .unwrap()
                    .0
                    .id)
            }
        })
        .await
        .unwrap();
    let secret = t
        .store()
        .read(move |c, env| anxin_store::accounts::pending_totp_secret(c, env, uid))
        .await
        .unwrap()
        .unwrap();
    let now = t.clock.now().timestamp() as u64;
    let code = anxin_crypto::totp_code(&secret, now).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, _, html) = post_form(
        &c,
        format!("{base}/manage/totp/confirm"),
        &[("_csrf", csrf.as_str()), ("code", wrong)],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("data-code=\"totp.invalid\"")
            && html.contains("src=\"data:image&#x2f;svg+xml"),
        "{html}"
    );
    let (s, loc, _) = post_form(
        &c,
        format!("{base}/manage/totp/confirm"),
        &[("_csrf", csrf.as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!((s, loc.as_str()), (303, "/manage"));
    let (s, html) = page(&c, format!("{base}/manage/totp")).await;
    assert_eq!(s, 200);
    assert!(html.contains("两步验证已启用"), "{html}");
    (c, csrf)
}

both_stores!(audit_and_grant_pages, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    for (name, role) in [
        ("auditor", Role::AuditAdmin),
        ("secadmin", Role::SecurityAdmin),
    ] {
        create_staff_user(
            &t.app,
            name,
            name,
            PASSWORD,
            vec![(role, Scope::Node(w.city))],
        )
        .await
        .unwrap();
    }
    let worker = create_staff_user(
        &t.app,
        "gworker",
        "授权社工",
        PASSWORD,
        vec![(Role::CommunityWorker, Scope::Node(w.comm_a))],
    )
    .await
    .unwrap();
    let base = t.serve().await;
    let (wc, _) = staff_page_session(&base, "gworker").await;
    // A worker: no audit log, no user pages, and no links to them.
    let (s, html) = page(&wc, format!("{base}/manage/people")).await;
    assert_eq!(s, 200);
    assert!(!html.contains("/manage/audit") && !html.contains("/manage/users"));
    assert_eq!(page(&wc, format!("{base}/manage/audit")).await.0, 404);
    assert_eq!(page(&wc, format!("{base}/manage/users")).await.0, 404);
    assert_eq!(
        page(&wc, format!("{base}/manage/users/{worker}")).await.0,
        404
    );

    // The audit administrator: the log, newest first, filterable; reading it is logged.
    let (ac, _) = admin_page_session(&t, &base, "auditor").await;
    let (s, html) = page(&ac, format!("{base}/manage/audit")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("审计日志") && html.contains("登录") && html.contains("启用两步验证"),
        "{html}"
    );
    let (s, html) = page(&ac, format!("{base}/manage/audit?action=grant.create")).await;
    assert_eq!(s, 200);
    assert!(!html.contains("data-action=\"auth.login\""), "{html}");
    let (s, html) = page(
        &ac,
        format!("{base}/manage/audit?actor=gworker&action=auth.login"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("data-action=\"auth.login\"") && html.contains("gworker"),
        "{html}"
    );
    assert!(!html.contains(">auditor<"), "{html}");
    let (s, html) = page(
        &ac,
        format!("{base}/manage/audit?from=2000-01-01&until=2000-01-02"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(!html.contains("data-action="), "{html}");
    let (s, html) = page(&ac, format!("{base}/manage/audit?from=yesterday")).await;
    assert_eq!(s, 422);
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    assert!(
        count(
            &t,
            "SELECT count(*) FROM audit_log WHERE action = 'audit.read'"
        )
        .await
            >= 3
    );
    // …and no user administration for the auditor (separated duties).
    assert_eq!(page(&ac, format!("{base}/manage/users")).await.0, 404);

    // The security administrator: the users, a user's grants, grant and revoke.
    let (sc, csrf) = admin_page_session(&t, &base, "secadmin").await;
    assert_eq!(page(&sc, format!("{base}/manage/audit")).await.0, 404);
    let (s, html) = page(&sc, format!("{base}/manage/users?q=gwork")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("授权社工") && !html.contains(">auditor<"),
        "{html}"
    );
    let (s, html) = page(&sc, format!("{base}/manage/users/{worker}")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("社区工作者") && html.contains("水井坊社区") && html.contains("有效"),
        "{html}"
    );
    let grid = w.grid_a2.to_string();
    let user_url = format!("{base}/manage/users/{worker}/grants");
    let (s, _, _) = post_form(
        &sc,
        user_url.clone(),
        &[
            ("role", "grid_worker"),
            ("scope_kind", "grid"),
            ("scope_id", grid.as_str()),
        ],
    )
    .await;
    assert_eq!(s, 403, "CSRF");
    // A bad scope id is refused on its field, in Chinese.
    let (s, _, html) = post_form(
        &sc,
        user_url.clone(),
        &[
            ("_csrf", csrf.as_str()),
            ("role", "grid_worker"),
            ("scope_kind", "grid"),
            ("scope_id", "not-an-id"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("填写的内容无效"), "{html}");
    let (s, loc, _) = post_form(
        &sc,
        user_url.clone(),
        &[
            ("_csrf", csrf.as_str()),
            ("role", "grid_worker"),
            ("scope_kind", "grid"),
            ("scope_id", grid.as_str()),
            ("valid_to", "2099-12-31"),
        ],
    )
    .await;
    assert_eq!((s, loc.clone()), (303, format!("/manage/users/{worker}")));
    let (_, html) = page(&sc, format!("{base}{loc}")).await;
    assert!(
        html.contains("data-role=\"grid_worker\"") && html.contains("水井坊社区 · 二网格"),
        "{html}"
    );
    // Revoke it: the grant is shown revoked, with no revoke button left for it.
    let at = html.find("data-role=\"grid_worker\"").unwrap();
    let grant_id = html[..at]
        .rsplit("data-grant=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (s, _, _) = post_form(
        &sc,
        format!("{base}/manage/grants/{grant_id}/revoke"),
        &[("_csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(s, 303);
    let (_, html) = page(&sc, format!("{base}{loc}")).await;
    assert!(html.contains("已撤销"), "{html}");
    assert!(
        !html.contains(&format!("/manage/grants/{grant_id}/revoke")),
        "{html}"
    );
    let active = t
        .store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM grants WHERE user_id = $1 AND role = 'grid_worker' AND revoked_at IS NULL",
                &[anxin_store::Value::from(worker)],
            )
        })
        .await
        .unwrap();
    assert_eq!(active, 0);
    // Separated duties hold on the page too: no audit role for the security administrator.
    let (sec_id, city) = (
        t.store()
            .read(|c, _| {
                Ok(anxin_store::accounts::user_by_username(c, "secadmin")?
                    .unwrap()
                    .0
                    .id)
            })
            .await
            .unwrap(),
        w.city.to_string(),
    );
    let (s, _, html) = post_form(
        &sc,
        format!("{base}/manage/users/{sec_id}/grants"),
        &[
            ("_csrf", csrf.as_str()),
            ("role", "audit_admin"),
            ("scope_kind", "node"),
            ("scope_id", city.as_str()),
        ],
    )
    .await;
    assert!(s == 403 || s == 409 || s == 422, "{s}: {html}");
});

// ---- households and vulnerable people (src/web/households.rs) -----------------------------

both_stores!(household_pages_round_trip, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let p = w.person_a1;
    t.store()
        .write(anxin_store::WriteCtx::system("web-vulnerable"), move |tx| {
            anxin_store::people::add_vulnerable(
                tx,
                &anxin_store::scope::Caller::system(),
                &anxin_store::people::VulnerableInput {
                    person_id: p,
                    category: "elderly_alone".into(),
                    helper_user_id: None,
                    contact_channel: "no_smartphone".into(),
                    notes: None,
                },
            )
        })
        .await
        .unwrap();
    for (name, scope) in [("hh_worker", w.comm_a), ("hh_outsider", w.comm_b)] {
        create_staff_user(
            &t.app,
            name,
            "户籍社工",
            PASSWORD,
            vec![(Role::CommunityWorker, Scope::Node(scope))],
        )
        .await
        .unwrap();
    }
    let base = t.serve().await;
    let (c, csrf) = staff_page_session(&base, "hh_worker").await;
    let (o, ocsrf) = staff_page_session(&base, "hh_outsider").await;
    let csrf = csrf.as_str();

    // The list: searchable by part of the label; the outsider does not see A's households.
    let (s, html) = page(&c, format!("{base}/manage/households")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("1-1-101") && html.contains("1-1-102") && html.contains("现有成员"),
        "{html}"
    );
    let (_, html) = page(&c, format!("{base}/manage/households?q=102")).await;
    assert!(
        html.contains("1-1-102") && !html.contains("1-1-101"),
        "{html}"
    );
    let (_, html) = page(&o, format!("{base}/manage/households")).await;
    assert!(
        !html.contains("1-1-101") && html.contains("2-1-101"),
        "{html}"
    );

    // A new household: CSRF, a refused label (in Chinese, on its field), then created.
    let new_hh = format!("{base}/manage/nodes/{}/households/new", w.comm_a);
    let (s, html) = page(&c, new_hh.clone()).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("新建户") && html.contains("<label for=\"label\">"),
        "{html}"
    );
    assert_eq!(page(&o, new_hh.clone()).await.0, 404);
    let grid = w.grid_a1.to_string();
    let (s, _, _) = post_form(&c, new_hh.clone(), &[("label", "3-1-501")]).await;
    assert_eq!(s, 403);
    let (s, _, html) = post_form(
        &c,
        new_hh.clone(),
        &[("_csrf", csrf), ("label", " "), ("grid_id", grid.as_str())],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("id=\"label-error\"") && html.contains("此项必填"),
        "{html}"
    );
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM households WHERE label = '3-1-501'"
        )
        .await,
        0
    );
    let (s, hloc, _) = post_form(
        &c,
        new_hh.clone(),
        &[
            ("_csrf", csrf),
            ("label", "3-1-501"),
            ("grid_id", grid.as_str()),
        ],
    )
    .await;
    assert_eq!(s, 303);
    assert!(hloc.starts_with("/manage/households/"), "{hloc}");

    // A new person in it: a bad ID number is refused on its field, then the person is created.
    let new_person = format!("{base}{hloc}/people/new");
    let (s, html) = page(&c, new_person.clone()).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("登记新成员") && html.contains("<label for=\"doc_number\">"),
        "{html}"
    );
    let person = [
        ("_csrf", csrf),
        ("name", "赵六一"),
        ("population_type", "registered"),
        ("doc_type", "mainland_id"),
        ("household_role", "head"),
    ];
    let mut bad = person.to_vec();
    bad.push(("doc_number", "110105194912310021"));
    let (s, _, html) = post_form(&c, new_person.clone(), &bad).await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"doc_number-error\""), "{html}");
    assert_eq!(
        count(&t, "SELECT count(*) FROM people WHERE name = '赵六一'").await,
        0
    );
    let mut good: Vec<_> = person
        .iter()
        .map(|&(k, v)| if k == "doc_type" { (k, "none") } else { (k, v) })
        .collect();
    good.push(("phone", "13700001111"));
    let (s, ploc, _) = post_form(&c, new_person.clone(), &good).await;
    assert_eq!(s, 303, "{ploc}");
    assert!(ploc.starts_with("/manage/people/"), "{ploc}");
    let (_, html) = page(&c, format!("{base}{hloc}")).await;
    assert!(html.contains("赵六一") && html.contains("户主"), "{html}");
    assert!(!html.contains("13700001111"), "phones stay masked");

    // Add a person of the grid as a tenant, then end the membership.
    let a1n = w.person_a1n.to_string();
    let (s, _, html) = post_form(
        &c,
        format!("{base}{hloc}/members"),
        &[("_csrf", csrf), ("role", "tenant")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("id=\"member-error\"") && html.contains("此项必填"),
        "{html}"
    );
    let (s, _, _) = post_form(
        &c,
        format!("{base}{hloc}/members"),
        &[
            ("_csrf", csrf),
            ("person_id", a1n.as_str()),
            ("role", "tenant"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    let (_, html) = page(&c, format!("{base}{hloc}")).await;
    assert!(html.contains("李四") && html.contains("租户"), "{html}");
    let at = html.find("李四").unwrap();
    let membership = html[..at]
        .rsplit("data-membership=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let hh_id = hloc.trim_start_matches("/manage/households/").to_owned();
    let (s, _, _) = post_form(
        &o,
        format!("{base}/manage/memberships/{membership}/end"),
        &[("_csrf", ocsrf.as_str())],
    )
    .await;
    assert_eq!(s, 404, "the outsider cannot end it");
    let (s, loc, _) = post_form(
        &c,
        format!("{base}/manage/memberships/{membership}/end"),
        &[("_csrf", csrf), ("household", hh_id.as_str())],
    )
    .await;
    assert_eq!((s, loc.as_str()), (303, hloc.as_str()));
    let (_, html) = page(&c, format!("{base}{hloc}")).await;
    assert!(
        !html.contains(&format!("data-membership=\"{membership}\"")),
        "{html}"
    );

    // Vulnerable people: the list, a new one (the helper must be a known account).
    let (s, html) = page(&c, format!("{base}/manage/vulnerable")).await;
    assert_eq!(s, 200);
    assert!(html.contains("张三丰"), "{html}");
    assert!(!page(&o, format!("{base}/manage/vulnerable"))
        .await
        .1
        .contains("张三丰"));
    let new_vul = format!("{base}{ploc}/vulnerable/new");
    let (s, html) = page(&c, new_vul.clone()).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("登记为重点人群") && html.contains("加密保存"),
        "{html}"
    );
    let (s, _, html) = post_form(
        &c,
        new_vul.clone(),
        &[
            ("_csrf", csrf),
            ("category", "disabled"),
            ("contact_channel", "phone_call"),
            ("helper", "nobody"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("id=\"helper-error\""), "{html}");
    let (s, _, _) = post_form(
        &c,
        new_vul.clone(),
        &[
            ("_csrf", csrf),
            ("category", "disabled"),
            ("contact_channel", "phone_call"),
            ("helper", "hh_worker"),
        ],
    )
    .await;
    assert_eq!(s, 303);
    let (_, html) = page(&c, format!("{base}/manage/vulnerable?category=disabled")).await;
    assert!(
        html.contains("赵六一") && html.contains("残疾人") && html.contains("电话"),
        "{html}"
    );
    let (_, html) = page(&c, format!("{base}/manage/vulnerable?q=%E5%85%AD")).await;
    assert!(
        html.contains("赵六一") && !html.contains("张三丰"),
        "{html}"
    );
    assert_eq!(page(&o, new_vul.clone()).await.0, 404);
});

both_stores!(rename_and_household_edit_pages, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let compound = t
        .store()
        .write(anxin_store::WriteCtx::system("web-compound"), move |tx| {
            anxin_store::tree::create_compound(
                tx,
                &anxin_store::scope::Caller::system(),
                w.comm_a,
                "锦绣苑",
            )
        })
        .await
        .unwrap();
    for (name, role, scope) in [
        ("ed_worker", Role::CommunityWorker, Scope::Node(w.comm_a)),
        ("ed_outsider", Role::CommunityWorker, Scope::Node(w.comm_b)),
        ("ed_grid", Role::GridWorker, Scope::Grid(w.grid_a1)),
    ] {
        create_staff_user(&t.app, name, "编辑测试", PASSWORD, vec![(role, scope)])
            .await
            .unwrap();
    }
    let base = t.serve().await;
    let (c, csrf) = staff_page_session(&base, "ed_worker").await;
    let (o, ocsrf) = staff_page_session(&base, "ed_outsider").await;
    let (g, gcsrf) = staff_page_session(&base, "ed_grid").await;

    // A grid: the form shows the current name; a blank name is refused on its field and
    // changes nothing; the outsider's rename is not found; the worker's lands.
    let grid_edit = format!("{base}/manage/grids/{}/edit", w.grid_a1);
    let (s, html) = page(&c, grid_edit.clone()).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("编辑网格") && html.contains("value=\"一网格\""),
        "{html}"
    );
    let (s, _, html) = post_form(&c, grid_edit.clone(), &[("_csrf", &csrf), ("name", " ")]).await;
    assert_eq!(s, 422);
    assert!(html.contains("此项必填"), "{html}");
    assert_eq!(page(&o, grid_edit.clone()).await.0, 404);
    let (s, _, _) = post_form(
        &o,
        grid_edit.clone(),
        &[("_csrf", &ocsrf), ("name", "外人改名")],
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        count(&t, "SELECT count(*) FROM grids WHERE name = '外人改名'").await,
        0
    );
    let (s, loc, _) = post_form(
        &c,
        grid_edit.clone(),
        &[("_csrf", &csrf), ("name", "一网格（东）")],
    )
    .await;
    assert_eq!(
        (s, loc.as_str()),
        (303, format!("/manage/grids/{}", w.grid_a1).as_str())
    );
    assert_eq!(
        count(&t, "SELECT count(*) FROM grids WHERE name = '一网格（东）'").await,
        1
    );
    // A name its community already has is refused.
    let (s, _, html) = post_form(
        &c,
        grid_edit.clone(),
        &[("_csrf", &csrf), ("name", "二网格")],
    )
    .await;
    assert_eq!(s, 409, "{html}");
    assert!(html.contains("网格名称已存在"), "{html}");

    // A compound renames; a community (an official division) is not a compound.
    let (s, loc, _) = post_form(
        &c,
        format!("{base}/manage/compounds/{compound}/edit"),
        &[("_csrf", &csrf), ("name", "锦绣苑二期")],
    )
    .await;
    assert_eq!((s, loc), (303, format!("/manage/nodes/{compound}")));
    assert_eq!(
        count(&t, "SELECT count(*) FROM nodes WHERE name = '锦绣苑二期'").await,
        1
    );
    assert_eq!(
        page(&c, format!("{base}/manage/compounds/{}/edit", w.comm_a))
            .await
            .0,
        404
    );

    // A household moves to the second grid; its members follow. The grid worker of the first
    // grid may relabel but not move it out of their grid.
    let hh_edit = format!("{base}/manage/households/{}/edit", w.hh_a1);
    let a2 = w.grid_a2.to_string();
    let a1 = w.grid_a1.to_string();
    let (s, _, html) = post_form(
        &g,
        hh_edit.clone(),
        &[("_csrf", &gcsrf), ("label", "1-1-101"), ("grid_id", &a2)],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("您只能把住户调整到自己负责的网格"), "{html}");
    let (s, _, _) = post_form(
        &g,
        hh_edit.clone(),
        &[("_csrf", &gcsrf), ("label", "1-1-101室"), ("grid_id", &a1)],
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(
        count(
            &t,
            "SELECT count(*) FROM households WHERE label = '1-1-101室'"
        )
        .await,
        1
    );
    assert_eq!(page(&o, hh_edit.clone()).await.0, 404);
    let (s, _, _) = post_form(
        &c,
        hh_edit.clone(),
        &[("_csrf", &csrf), ("label", "1-1-101室"), ("grid_id", &a2)],
    )
    .await;
    assert_eq!(s, 303);
    let p = w.person_a1;
    let grid_now: uuid::Uuid = t
        .store()
        .read(move |c, _| {
            c.query_one("SELECT grid_id FROM people WHERE id = $1", &[p.into()])?
                .unwrap()
                .get("grid_id")
        })
        .await
        .unwrap();
    assert_eq!(grid_now, w.grid_a2);
});

both_stores!(
    alarm_board_to_an_issued_warning_through_the_pages,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let monitoring = world::monitoring_a1(t.store(), &w).await;
        let alarm = monitoring["alarms"];
        for (name, role, scope) in [
            ("board_a", Role::CommunityWorker, Scope::Node(w.comm_a)),
            ("board_grid", Role::GridWorker, Scope::Grid(w.grid_a1)),
            ("board_b", Role::CommunityWorker, Scope::Node(w.comm_b)),
        ] {
            create_staff_user(&t.app, name, name, PASSWORD, vec![(role, scope)])
                .await
                .unwrap();
        }
        let base = t.serve().await;
        let (c, csrf) = staff_page_session(&base, "board_a").await;
        let get = |c: &reqwest::Client, path: String| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let r = c.get(format!("{base}{path}")).send().await.unwrap();
                let s = r.status().as_u16();
                // Attribute values come escaped (`/` as `&#x2f;`).
                (
                    s,
                    r.text()
                        .await
                        .unwrap()
                        .replace("&#x2f;", "/")
                        .replace("&amp;", "&"),
                )
            }
        };

        // The board lists the active alarm, with a link to a filled-in warning form.
        let (s, html) = get(&c, "/manage/alarms".into()).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("A1水位计") && html.contains(&alarm.to_string()),
            "{html}"
        );
        assert!(html.contains("告警看板"));
        let form_link = format!("/manage/nodes/{}/warnings/new?alarm={alarm}", w.comm_a);
        assert!(html.contains(&form_link), "{html}");
        // The live refresh: only the results.
        let (_, frag) = get(&c, "/manage/alarms?show=active&fragment=1".into()).await;
        assert!(frag.contains(&alarm.to_string()) && !frag.contains("<html"));
        // The sibling community's worker sees none of it.
        let (cb, _) = staff_page_session(&base, "board_b").await;
        let (_, other) = get(&cb, "/manage/alarms".into()).await;
        assert!(!other.contains(&alarm.to_string()));

        // Acknowledge from the board: it stays active, acknowledged.
        let r = c
            .post(format!("{base}/manage/alarms/{alarm}/ack"))
            .form(&[("_csrf", csrf.as_str()), ("show", "unacked")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()[LOCATION], "/manage/alarms?show=unacked");
        let (_, unacked) = get(&c, "/manage/alarms?show=unacked".into()).await;
        assert!(!unacked.contains(&alarm.to_string()), "acknowledged");

        // The form, filled in from the alarm: a flood warning around the device.
        let (s, form) = get(&c, form_link.clone()).await;
        assert_eq!(s, 200);
        assert!(
            form.contains("A1水位计洪涝预警") || form.contains("A1水位计"),
            "{form}"
        );
        // A circle without its radius names the field.
        let new_at = format!("{base}/manage/nodes/{}/warnings/new", w.comm_a);
        let r = c
            .post(&new_at)
            .form(&[
                ("_csrf", csrf.as_str()),
                ("level", "red"),
                ("category", "flood"),
                ("headline", "A1水位红色预警"),
                ("description", "A1 水位超警戒。"),
                ("expires_at", "2026-11-02T20:00"),
                ("lon", "104.09"),
                ("lat", "30.66"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("radius_m-error"), "{html}");
        // The draft, as a community worker of A would make it.
        let r = c
            .post(&new_at)
            .form(&[
                ("_csrf", csrf.as_str()),
                ("level", "red"),
                ("category", "flood"),
                ("headline", "A1水位红色预警"),
                ("description", "A1 水位超警戒。"),
                ("instruction", "请转移到高处。"),
                ("expires_at", "2026-11-02T20:00"),
                ("whole_node", "1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let page = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(page.starts_with("/manage/warnings/"), "{page}");
        let (_, html) = get(&c, page.clone()).await;
        assert!(html.contains("A1水位红色预警") && html.contains("草稿"));
        assert!(html.contains(&format!("{page}/approve")), "approve offered");
        assert!(!html.contains(&format!("{page}/issue")), "not yet issue");

        // A grid worker of A1 may draft (from the alarm, in one step) but not approve.
        let (cg, csrf_g) = staff_page_session(&base, "board_grid").await;
        let r = cg
            .post(format!("{base}/manage/alarms/{alarm}/warning"))
            .form(&[("_csrf", csrf_g.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let grid_draft = r.headers()[LOCATION].to_str().unwrap().to_owned();
        let (_, html) = get(&cg, grid_draft.clone()).await;
        assert!(html.contains("草稿") && !html.contains(&format!("{grid_draft}/approve")));
        let r = cg
            .post(format!("{base}{page}/approve"))
            .form(&[("_csrf", csrf_g.as_str())])
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "grid worker approves: {}",
            r.status()
        );

        // Approve, then issue: the page shows the reach board.
        for step in ["approve", "issue"] {
            let r = c
                .post(format!("{base}{page}/{step}"))
                .form(&[("_csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{step}");
        }
        let (_, html) = get(&c, page.clone()).await;
        assert!(
            html.contains("已发布") && html.contains("触达情况"),
            "{html}"
        );
        assert!(html.contains(&format!("{page}/cancel")));
        // Issued again: refused, nothing sent twice.
        let r = c
            .post(format!("{base}{page}/issue"))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        // The list shows it, in English too.
        let (_, list) = get(&c, "/manage/warnings?status=issued&lang=en".into()).await;
        assert!(
            list.contains("A1水位红色预警") && list.contains("Issued"),
            "{list}"
        );

        // The device's page: its chart (series as JSON too) and its alarms; not for outsiders.
        let device = monitoring["devices"];
        let (_, list) = get(&c, "/manage/devices".into()).await;
        assert!(list.contains("A1水位计") && list.contains(&format!("/manage/devices/{device}")));
        let (s, page) = get(&c, format!("/manage/devices/{device}")).await;
        assert_eq!(s, 200);
        assert!(
            page.contains("device-chart") && page.contains("water_level_high"),
            "{page}"
        );
        let r = c
            .get(format!("{base}/manage/devices/{device}/series.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let series: serde_json::Value = r.json().await.unwrap();
        assert!(series["metrics"].is_object(), "{series}");
        let (s, _) = get(&cb, format!("/manage/devices/{device}")).await;
        assert_eq!(s, 404);

        // The API's one-step promotion: a draft filled in from the alarm and its device.
        let r = c
            .post(format!("{base}/api/v1/alarms/{alarm}/warning"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let d: serde_json::Value = r.json().await.unwrap();
        assert_eq!(d["status"], "draft");
        assert_eq!(d["category"], "flood", "a water-level device: flood");
        assert_eq!(d["level"], "yellow", "a major alarm: yellow");
        assert!(d["headline"].as_str().unwrap().contains("A1水位计"));
        let r = cb
            .post(format!("{base}/api/v1/alarms/{alarm}/warning"))
            .header("x-csrf-token", &csrf_of(&other))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "outside the caller's reach");
    }
);
