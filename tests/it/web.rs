//! The web pages over real HTTP (SQLite): sign-in by form, search by part of a Chinese name,
//! unmask (audited), field-named errors in Chinese, the language switch, the resident's phone
//! code, the embedded static files; and every error code the sources use has both texts.
//! The browser tests (`scripts/browser-test`) drive the same pages in chromium.
#![allow(clippy::unwrap_used)]

use anxin::http::admin::create_staff_user;
use anxin::platform::notify::{outbox_messages, ChannelKind};
use anxin::web::i18n::{lookup, Lang};
use anxin_domain::roles::{Role, Scope};
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
    let t = TestApp::new(Backend::Sqlite).await;
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
    let (building, facility) = t
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
            Ok((b.id, f.id))
        })
        .await
        .unwrap();
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
            other => panic!("no A1 record of kind {other}"),
        };
        let real = e.path.replace("{id}", &id.to_string());
        let missing = e.path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
        if !e.path.contains("{id}") {
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
}
