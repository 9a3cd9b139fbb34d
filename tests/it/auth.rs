//! Signing in and out, over real HTTP on both stores: sessions, lockout, idle timeout, TOTP for
//! administrators, CSRF, API tokens, residents' codes, rate limits, the audit chain, separation of
//! duties and grant validity. Time moves only through the manual clock.
#![allow(clippy::unwrap_used)]

use crate::world::code;
use anxin::http::admin::create_staff_user;
use anxin::platform::notify::{outbox_messages, ChannelKind};
use anxin_domain::roles::{Role, Scope};
use anxin_domain::Clock;
use anxin_store::audit::{self, AuditEntry};
use anxin_store::people::{self, NewPerson};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use chrono::Duration;
use reqwest::header::{RETRY_AFTER, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world::{self, World, PERSON_A1_PHONE};

const PASSWORD: &str = "Correct-Horse-9-battery";

/// A browser: keeps the cookie, and sends the CSRF token once it has one.
struct Browser {
    base: String,
    http: reqwest::Client,
    csrf: Option<String>,
    bearer: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: crate::support::client(),
            csrf: None,
            bearer: None,
        }
    }

    fn with_bearer(base: &str, token: &str) -> Self {
        Self {
            bearer: Some(token.to_owned()),
            ..Self::new(base)
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.csrf {
            r = r.header("X-CSRF-Token", c);
        }
        if let Some(b) = &self.bearer {
            r = r.bearer_auth(b);
        }
        r
    }

    async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        Self::send(self.req(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        Self::send(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        Self::send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// Sign in with a password (and a TOTP code); keeps the CSRF token on success.
    async fn login(
        &mut self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "username": username, "password": password });
        if let Some(c) = totp {
            body["totp"] = json!(c);
        }
        let (s, v) = self.post("/api/v1/auth/login", body).await;
        if s == StatusCode::OK {
            self.csrf = v["csrf"].as_str().map(str::to_owned);
        }
        (s, v)
    }
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

fn totp_now(t: &TestApp, secret: &[u8]) -> String {
    anxin_crypto::totp_code(secret, t.clock.now().timestamp() as u64).unwrap()
}

async fn staff(t: &TestApp, username: &str, grants: Vec<(Role, Scope)>) -> Uuid {
    create_staff_user(
        &t.app,
        username,
        &format!("{username} 姓名"),
        PASSWORD,
        grants,
    )
    .await
    .unwrap()
}

/// An administrator signed in with TOTP enrolled and confirmed; returns the browser and secret.
async fn admin(
    t: &TestApp,
    base: &str,
    username: &str,
    role: Role,
    node: Uuid,
) -> (Browser, Vec<u8>, Uuid) {
    let id = staff(t, username, vec![(role, Scope::Node(node))]).await;
    let mut b = Browser::new(base);
    let (s, v) = b.login(username, PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["mfa"],
        json!({ "required": true, "enrolled": false, "satisfied": false })
    );
    let (s, v) = b.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let secret = base32_decode(v["secret"].as_str().unwrap());
    let (s, v) = b
        .post(
            "/api/v1/auth/totp/confirm",
            json!({ "code": totp_now(t, &secret) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (b, secret, id)
}

both_stores!(staff_login_me_logout, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let uid = staff(
        &t,
        "worker.a",
        vec![(Role::CommunityWorker, Scope::Node(w.comm_a))],
    )
    .await;
    let mut b = Browser::new(&base);

    let resp = b
        .http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "Worker.A", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("anxin_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "not configured for HTTPS");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["user"]["id"], json!(uid));
    assert_eq!(v["mfa"]["required"], json!(false));
    b.csrf = v["csrf"].as_str().map(str::to_owned);

    let (s, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], "worker.a");
    assert_eq!(me["user"]["display_name"], "worker.a 姓名");
    assert_eq!(me["via"], "cookie");
    assert_eq!(me["csrf"], json!(b.csrf));
    let grants = me["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["role"], "community_worker");
    assert_eq!(
        grants[0]["scope"],
        json!({ "kind": "node", "id": w.comm_a })
    );

    // The session works for area routes too.
    let (s, _) = b.get("/api/v1/people").await;
    assert_eq!(s, StatusCode::OK);

    let (s, _) = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = b.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&v), "auth.required");

    // No session at all.
    let (s, v) = Browser::new(&base).get("/api/v1/people").await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "auth.required"));
});

both_stores!(lockout_and_unlock, |t: TestApp| async move {
    let base = t.serve().await;
    let uid = staff(&t, "clerk", vec![]).await;
    let mut b = Browser::new(&base);
    let threshold = t.config.auth.lockout_threshold;
    for _ in 1..threshold {
        let (s, v) = b.login("clerk", "wrong-Password-1", None).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "auth.invalid_credentials")
        );
    }
    // An unknown account answers exactly like a wrong password.
    let (s, v) = b.login("nobody", "wrong-Password-1", None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "auth.invalid_credentials")
    );

    let (s, v) = b.login("clerk", "wrong-Password-1", None).await;
    assert_eq!((s, code(&v)), (StatusCode::LOCKED, "auth.locked"), "{v}");
    let (s, v) = b.login("clerk", PASSWORD, None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::LOCKED, "auth.locked"),
        "still locked with the right password"
    );

    t.clock
        .advance(Duration::minutes(t.config.auth.lockout_minutes) - Duration::seconds(1));
    let (s, _) = b.login("clerk", PASSWORD, None).await;
    assert_eq!(s, StatusCode::LOCKED);
    t.clock.advance(Duration::seconds(2));
    let (s, v) = b.login("clerk", PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The story is in the audit log.
    let actions: Vec<String> = t
        .store()
        .read(move |c, _| {
            Ok(c.query(
                "SELECT action FROM audit_log WHERE target_id = $1 ORDER BY seq",
                &params![uid],
            )?
            .iter()
            .map(|r| r.get::<String>("action").unwrap())
            .collect())
        })
        .await
        .unwrap();
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("auth.login_failed"), threshold as usize + 2);
    assert_eq!(count("auth.lockout"), 1);
    assert_eq!(actions.last().map(String::as_str), Some("auth.login"));
});

both_stores!(idle_timeout, |t: TestApp| async move {
    let base = t.serve().await;
    staff(&t, "clerk", vec![]).await;
    let mut b = Browser::new(&base);
    assert_eq!(b.login("clerk", PASSWORD, None).await.0, StatusCode::OK);
    let idle = t.config.auth.session_idle_minutes;
    // Each use keeps the session alive.
    for _ in 0..3 {
        t.clock.advance(Duration::minutes(idle - 1));
        let (s, v) = b.get("/api/v1/auth/me").await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    t.clock
        .advance(Duration::minutes(idle) + Duration::seconds(1));
    let (s, v) = b.get("/api/v1/auth/me").await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "auth.required"));
    // Ended for good, not only refused.
    t.clock.set(t.clock.now() - Duration::minutes(idle * 2));
    assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
});

both_stores!(administrators_need_totp, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let sec = staff(&t, "sec", vec![(Role::SecurityAdmin, Scope::Node(w.city))]).await;
    let mut b = Browser::new(&base);
    let (s, v) = b.login("sec", PASSWORD, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["mfa"],
        json!({ "required": true, "enrolled": false, "satisfied": false })
    );
    // Until enrolled, only enrolment, me and sign-out.
    let (s, v) = b.get(&format!("/api/v1/admin/users/{sec}")).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.mfa_required"));
    let (s, v) = b.get("/api/v1/people").await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.mfa_required"));
    assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::OK);

    let (s, v) = b.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let secret = base32_decode(v["secret"].as_str().unwrap());
    let (s, v) = b
        .post("/api/v1/auth/totp/confirm", json!({ "code": "000000" }))
        .await;
    if totp_now(&t, &secret) != "000000" {
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "totp.invalid")
        );
    }
    let first = totp_now(&t, &secret);
    let (s, v) = b
        .post("/api/v1/auth/totp/confirm", json!({ "code": first }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = b.get(&format!("/api/v1/admin/users/{sec}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["totp_enrolled"], json!(true));
    // Shown once: a second enrolment is refused.
    let (s, v) = b.post("/api/v1/auth/totp/enroll", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "totp.enrolled"));

    assert_eq!(
        b.post("/api/v1/auth/logout", json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let mut b = Browser::new(&base);
    let (s, v) = b.login("sec", PASSWORD, None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "auth.totp_required")
    );
    // The code used to confirm cannot be replayed.
    let (s, v) = b.login("sec", PASSWORD, Some(&first)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "auth.totp_invalid")
    );
    t.clock.advance(Duration::seconds(30));
    let (s, v) = b.login("sec", PASSWORD, Some(&totp_now(&t, &secret))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["mfa"],
        json!({ "required": true, "enrolled": true, "satisfied": true })
    );
    assert_eq!(
        b.get(&format!("/api/v1/admin/users/{sec}")).await.0,
        StatusCode::OK
    );
});

/// Serve the app with the router-wide layers of the guard module (the form CSRF field and the
/// per-address limit in front of every route, health included).
async fn serve_layered(t: &TestApp) -> String {
    use anxin::http::guard::form_csrf;
    use anxin::platform::ratelimit::by_address;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, _) = anxin::http::table().into_parts();
    let router = router
        .layer(axum::middleware::from_fn(form_csrf))
        .layer(axum::middleware::from_fn_with_state(
            t.app.clone(),
            by_address,
        ))
        .with_state(t.app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}")
}

both_stores!(csrf_on_cookie_requests, |t: TestApp| async move {
    let base = t.serve().await;
    staff(&t, "clerk", vec![]).await;
    let mut b = Browser::new(&base);
    assert_eq!(b.login("clerk", PASSWORD, None).await.0, StatusCode::OK);
    let token = b.csrf.take().unwrap();
    // Reads need none.
    assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::OK);
    let (s, v) = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.csrf"));
    b.csrf = Some("not-the-token".into());
    let (s, v) = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.csrf"));
    assert_eq!(
        b.get("/api/v1/auth/me").await.0,
        StatusCode::OK,
        "refused requests change nothing"
    );
    b.csrf = Some(token);
    let (s, _) = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // An HTML form carries the token as the `_csrf` field instead.
    let base = serve_layered(&t).await;
    let mut b = Browser::new(&base);
    assert_eq!(b.login("clerk", PASSWORD, None).await.0, StatusCode::OK);
    let token = b.csrf.take().unwrap();
    let form = |body: String| {
        b.req(reqwest::Method::POST, "/api/v1/auth/logout")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let (s, v) = Browser::send(form("_csrf=wrong".into())).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.csrf"));
    let (s, _) = Browser::send(form(format!("a=1&_csrf={token}"))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
});

both_stores!(api_tokens, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let (sec, _, _) = admin(&t, &base, "sec", Role::SecurityAdmin, w.city).await;
    let (s, bot) = sec
        .post(
            "/api/v1/admin/users",
            json!({ "username": "sync-bot", "display_name": "同步程序", "kind": "integration" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bot}");
    let bot_id = bot["id"].as_str().unwrap().to_owned();
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{bot_id}/grants"),
            json!({ "role": "community_worker", "scope": { "kind": "node", "id": w.comm_a } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{bot_id}/tokens"),
            json!({ "name": "nightly sync" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let token_id = v["api_token"]["id"].as_str().unwrap().to_owned();
    assert!(v["api_token"].get("token_hash").is_none());
    // Staff accounts get no tokens: a token would skip their password and second factor.
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{}/tokens", sec_id(&sec).await),
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "token.user_invalid")
    );

    let api = Browser::with_bearer(&base, &token);
    let (s, me) = api.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["via"], "token");
    assert_eq!(me["user"]["id"].as_str(), Some(bot_id.as_str()));
    let (s, page) = api.get("/api/v1/people").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page["total"].as_i64().unwrap() > 0,
        "the grant reaches community A"
    );
    // State-changing requests need no CSRF token with a bearer token.
    assert_eq!(
        api.post("/api/v1/auth/logout", json!({})).await.0,
        StatusCode::NO_CONTENT
    );

    let (s, v) = sec
        .delete(&format!("/api/v1/admin/tokens/{token_id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string());
    let (s, v) = api.get("/api/v1/auth/me").await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "auth.required"));
    let (s, _) = Browser::with_bearer(&base, "anx_made-up")
        .get("/api/v1/auth/me")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
});

async fn sec_id(b: &Browser) -> String {
    b.get("/api/v1/auth/me").await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The sign-in codes sent to `e164`, from the development outbox, by message id.
async fn sent_codes(t: &TestApp, e164: &str) -> Vec<(Uuid, String)> {
    outbox_messages(&t.app, ChannelKind::Sms)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.to == e164 && m.template == "login_code")
        .map(|m| (m.id, m.params["code"].clone()))
        .collect()
}

/// The one code sent to `e164` that is not among `seen`.
async fn new_code(t: &TestApp, e164: &str, seen: &[(Uuid, String)]) -> Option<String> {
    let fresh: Vec<_> = sent_codes(t, e164)
        .await
        .into_iter()
        .filter(|m| !seen.contains(m))
        .collect();
    assert!(fresh.len() <= 1, "{fresh:?}");
    fresh.into_iter().next().map(|(_, c)| c)
}

both_stores!(resident_code_with_shared_phone, |t: TestApp| async move {
    let w: World = world::build(t.store()).await;
    // A child registered with the parent's phone.
    let (comm, grid, hh) = (w.comm_a, w.grid_a1, w.hh_a1);
    let child = t
        .store()
        .write(WriteCtx::system("test"), move |tx| {
            let i = world::person_input("张小明", None, Some(PERSON_A1_PHONE), comm, grid, hh);
            people::create_person(tx, &Caller::system(), &NewPerson::parse(&i)?).map(|p| p.id)
        })
        .await
        .unwrap();
    let base = t.serve().await;
    let mut b = Browser::new(&base);

    let (s_known, v_known) = b
        .post("/api/v1/auth/code", json!({ "phone": PERSON_A1_PHONE }))
        .await;
    let (s_unknown, v_unknown) = b
        .post("/api/v1/auth/code", json!({ "phone": "137 0000 0000" }))
        .await;
    assert_eq!(s_known, StatusCode::ACCEPTED);
    assert_eq!((s_known, v_known), (s_unknown, v_unknown), "no enumeration");
    assert_eq!(new_code(&t, "+8613700000000", &[]).await, None);
    let code_sent = new_code(&t, "+8613812345678", &[])
        .await
        .expect("code sent");
    assert_eq!(code_sent.len(), 6);

    let wrong = if code_sent == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (s, v) = b
        .post(
            "/api/v1/auth/code/verify",
            json!({ "phone": PERSON_A1_PHONE, "code": wrong }),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "auth.code_invalid")
    );
    let (s, v) = b
        .post(
            "/api/v1/auth/code/verify",
            json!({ "phone": "+86 138 1234 5678", "code": code_sent }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    b.csrf = v["csrf"].as_str().map(str::to_owned);
    assert_eq!(v["user"]["kind"], "resident");
    assert!(v["person"].is_null(), "two people: the resident chooses");
    let people: Vec<(String, String)> = v["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["person_id"].as_str().unwrap().to_owned(),
                p["name_masked"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(people.len(), 2);
    assert!(
        people.contains(&(w.person_a1.to_string(), "张**".to_owned())),
        "{people:?}"
    );
    assert!(
        people.contains(&(child.to_string(), "张**".to_owned())),
        "{people:?}"
    );
    assert!(!v.to_string().contains("三丰"), "names are masked");

    // A spent code does not work twice.
    let (s, _) = Browser::new(&base)
        .post(
            "/api/v1/auth/code/verify",
            json!({ "phone": PERSON_A1_PHONE, "code": code_sent }),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, v) = b
        .post("/api/v1/auth/choose", json!({ "person_id": w.person_b1 }))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "record.not_found"),
        "not linked"
    );
    let (s, v) = b
        .post("/api/v1/auth/choose", json!({ "person_id": child }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["person"]["person_id"], json!(child));
    assert_eq!(me["person"]["household_id"], json!(w.hh_a1));
    // The chosen person's household is in reach: they read their own household, not others.
    let (s, _) = b.get(&format!("/api/v1/households/{}", w.hh_a1)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = b.get(&format!("/api/v1/households/{}", w.hh_a1n)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A second sign-in reuses the account.
    let seen = sent_codes(&t, "+8613812345678").await;
    b.post("/api/v1/auth/code", json!({ "phone": PERSON_A1_PHONE }))
        .await;
    let again = new_code(&t, "+8613812345678", &seen).await.unwrap();
    let (s, v) = Browser::new(&base)
        .post(
            "/api/v1/auth/code/verify",
            json!({ "phone": PERSON_A1_PHONE, "code": again }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["id"], me["user"]["id"]);

    // Codes expire.
    b.post("/api/v1/auth/code", json!({ "phone": "13900000002" }))
        .await;
    let late = new_code(&t, "+8613900000002", &[]).await.unwrap();
    t.clock
        .advance(Duration::minutes(t.config.auth.code_ttl_minutes) + Duration::seconds(1));
    let (s, v) = Browser::new(&base)
        .post(
            "/api/v1/auth/code/verify",
            json!({ "phone": "13900000002", "code": late }),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "auth.code_invalid")
    );
});

both_stores!(sign_in_rate_limited_per_account, |t: TestApp| async move {
    let base = t.serve().await;
    let mut b = Browser::new(&base);
    let limit = t.config.auth.rate_per_minute_per_account;
    for _ in 0..limit {
        let (s, _) = b.login("someone", "wrong-Password-1", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let resp = b
        .http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "someone", "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "rate.limited");
    // Another account is not affected; the limited one recovers when the window ends.
    assert_eq!(
        b.login("other", "wrong-Password-1", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    t.clock.advance(Duration::seconds(retry as i64));
    assert_eq!(
        b.login("someone", "wrong-Password-1", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Codes too, per phone.
    for _ in 0..limit {
        assert_eq!(
            b.post("/api/v1/auth/code", json!({ "phone": "13700000000" }))
                .await
                .0,
            StatusCode::ACCEPTED
        );
    }
    let (s, v) = b
        .post("/api/v1/auth/code", json!({ "phone": "+8613700000000" }))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate.limited")
    );
});

async fn rate_limited_per_address(backend: crate::support::Backend) {
    let t = TestApp::with_config(backend, |c| c.server.rate_per_minute_per_address = 5).await;
    let base = t.serve().await;
    let b = Browser::new(&base);
    for _ in 0..5 {
        assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = b.get("/api/v1/auth/me").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate.limited")
    );
    let (s, _) = b
        .post("/api/v1/auth/code", json!({ "phone": "13700000000" }))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "all endpoints count");
    t.clock.advance(Duration::minutes(1));
    assert_eq!(b.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);

    // With the router-wide middleware every route counts, and once per request.
    t.clock.advance(Duration::minutes(1));
    let layered = Browser::new(&serve_layered(&t).await);
    for _ in 0..2 {
        assert_eq!(layered.get("/healthz").await.0, StatusCode::OK);
    }
    for _ in 0..3 {
        assert_eq!(
            layered.get("/api/v1/auth/me").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = layered
        .http
        .get(format!("{}/healthz", layered.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key(RETRY_AFTER));
}

mod rate_limited_per_address {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::rate_limited_per_address(crate::support::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::rate_limited_per_address(crate::support::Backend::Postgres).await;
    }
}

both_stores!(
    audit_chain_verifies_and_detects_tampering,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let (auditor, _, auditor_id) = admin(&t, &base, "auditor", Role::AuditAdmin, w.city).await;
        let (sec, _, _) = admin(&t, &base, "sec", Role::SecurityAdmin, w.city).await;
        // Concurrent appends never fork the chain.
        let mut handles = Vec::new();
        for i in 0..40 {
            let s = t.store().clone();
            handles.push(tokio::spawn(async move {
                s.write(WriteCtx::system(format!("c{i}")), move |tx| {
                    audit::record(
                        tx,
                        AuditEntry::new(audit::action::EXPORT).detail(json!({ "n": i })),
                    )
                })
                .await
                .unwrap()
            }));
        }
        for h in handles {
            h.await.unwrap();
        }

        let (s, v) = auditor.get("/api/v1/audit/verify").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["ok"], json!(true), "{v}");
        let entries = v["entries"].as_i64().unwrap();
        assert!(entries > 40);

        // Only the audit administrator sees the log; to others it does not exist.
        let (s, _) = sec.get("/api/v1/audit").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            sec.get("/api/v1/audit/verify").await.0,
            StatusCode::NOT_FOUND
        );

        let (s, page) = auditor
            .get(&format!(
                "/api/v1/audit?actor={auditor_id}&action=auth.login"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["action"], "auth.login");
        let (s, page) = auditor.get("/api/v1/audit?limit=5").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(page["items"].as_array().unwrap().len(), 5);
        let before = page["next_before_seq"].as_i64().unwrap();
        let (_, older) = auditor
            .get(&format!("/api/v1/audit?limit=5&before_seq={before}"))
            .await;
        assert!(older["items"][0]["seq"].as_i64().unwrap() < before);

        // Tamper with one entry behind the application's back.
        let n = t
            .store()
            .write(WriteCtx::system("tamper"), |tx| {
                tx.execute_unlogged(
                    "UPDATE audit_log SET detail = '{\"n\":999}' WHERE seq = $1",
                    &params![7i64],
                )
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        let (s, v) = auditor.get("/api/v1/audit/verify").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["ok"], json!(false));
        assert_eq!(v["first_bad_seq"], json!(7));
    }
);

both_stores!(audit_chain_direct, |t: TestApp| async move {
    let store = t.store().clone();
    let report = store.read(|c, _| audit::verify(c)).await.unwrap();
    assert_eq!((report.entries, report.first_bad_seq), (0, None));
    for i in 0..5 {
        store
            .write(WriteCtx::system("a"), move |tx| {
                audit::record(
                    tx,
                    AuditEntry::new(audit::action::SENSITIVE_READ).detail(json!({ "i": i })),
                )
            })
            .await
            .unwrap();
    }
    assert!(store.read(|c, _| audit::verify(c)).await.unwrap().ok());
    // The newest entry removed: the head no longer matches.
    store
        .write(WriteCtx::system("t"), |tx| {
            tx.execute_unlogged("DELETE FROM audit_log WHERE seq = 5", &[])
        })
        .await
        .unwrap();
    let r = store.read(|c, _| audit::verify(c)).await.unwrap();
    assert_eq!(r.first_bad_seq, Some(5));
    // A gap in the middle.
    store
        .write(WriteCtx::system("t"), |tx| {
            tx.execute_unlogged("DELETE FROM audit_log WHERE seq = 2", &[])
        })
        .await
        .unwrap();
    let r = store.read(|c, _| audit::verify(c)).await.unwrap();
    assert_eq!(r.first_bad_seq, Some(2));
    // Retention keeps the remainder verifiable.
    let fresh = TestApp::new(t.backend).await;
    let s2 = fresh.store().clone();
    for _ in 0..3 {
        s2.write(WriteCtx::system("a"), |tx| {
            audit::record(tx, AuditEntry::new(audit::action::EXPORT))
        })
        .await
        .unwrap();
        fresh.clock.advance(Duration::days(1));
    }
    let cut = fresh.clock.now() - Duration::days(2);
    let gone = s2
        .write(WriteCtx::system("r"), move |tx| {
            audit::purge_before(tx, cut)
        })
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let r = s2.read(|c, _| audit::verify(c)).await.unwrap();
    assert_eq!((r.entries, r.first_bad_seq), (2, None));
});

both_stores!(separation_of_duties, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let (sec, _, sec_uid) = admin(&t, &base, "sec", Role::SecurityAdmin, w.city).await;
    let grant = |role: &str, kind: &str, id: Uuid| json!({ "role": role, "scope": { "kind": kind, "id": id } });

    // No one grants to themselves, the audit role least of all.
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{sec_uid}/grants"),
            grant("audit_admin", "node", w.city),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "grant.self"));

    // A second security administrator cannot also be made auditor, nor the reverse.
    let other = staff(&t, "sec2", vec![(Role::SecurityAdmin, Scope::Node(w.city))]).await;
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{other}/grants"),
            grant("audit_admin", "node", w.city),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "grant.separation_of_duties")
    );
    let aud = staff(&t, "aud2", vec![(Role::AuditAdmin, Scope::Node(w.city))]).await;
    let (s, v) = sec
        .post(
            &format!("/api/v1/admin/users/{aud}/grants"),
            grant("security_admin", "node", w.district),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "grant.separation_of_duties")
    );
    let both = create_staff_user(
        &t.app,
        "both",
        "两者",
        PASSWORD,
        vec![
            (Role::SecurityAdmin, Scope::Node(w.city)),
            (Role::AuditAdmin, Scope::Node(w.city)),
        ],
    )
    .await;
    assert!(both.is_err());

    // Grants must fit the role and an existing scope inside the granter's reach.
    let worker = staff(&t, "worker", vec![]).await;
    let path = format!("/api/v1/admin/users/{worker}/grants");
    let (s, v) = sec
        .post(&path, grant("grid_worker", "node", w.comm_a))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.scope_kind")
    );
    let (s, v) = sec
        .post(&path, grant("community_worker", "node", w.district))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.scope_level")
    );
    let (s, v) = sec
        .post(&path, grant("community_worker", "node", Uuid::now_v7()))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.scope_not_found")
    );
    let (s, v) = sec
        .post(&path, grant("resident", "household", w.hh_a1))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.user_kind")
    );
    let (s, v) = sec
        .post(&path, grant("grid_worker", "grid", w.grid_a1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = sec
        .post(&path, grant("grid_worker", "grid", w.grid_a1))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "grant.duplicate"));

    // A street's security administrator cannot grant above its street.
    let (street_sec, _, _) = admin(&t, &base, "street.sec", Role::SecurityAdmin, w.street).await;
    let (s, v) = street_sec
        .post(&path, grant("district_officer", "node", w.district))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.scope_not_found")
    );
    let (s, v) = street_sec
        .post(&path, grant("community_worker", "node", w.comm_b))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Without ManageAccounts no accounts are made, and the page per user does not exist.
    let mut wb = Browser::new(&base);
    assert_eq!(wb.login("worker", PASSWORD, None).await.0, StatusCode::OK);
    let (s, v) = wb
        .post(
            "/api/v1/admin/users",
            json!({ "username": "x1", "display_name": "x", "password": PASSWORD }),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "auth.forbidden"));
    let (s, _) = wb.get(&format!("/api/v1/admin/users/{worker}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The security administrator makes staff, with the password policy enforced.
    let (s, v) = sec
        .post(
            "/api/v1/admin/users",
            json!({ "username": "new.worker", "display_name": "新人", "password": "short" }),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "password.too_weak")
    );
    let (s, v) = sec
        .post(
            "/api/v1/admin/users",
            json!({ "username": "new.worker", "display_name": "新人", "password": PASSWORD }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = sec
        .post(
            "/api/v1/admin/users",
            json!({ "username": "NEW.worker", "display_name": "新人", "password": PASSWORD }),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "user.username_taken"));

    // Disabling ends the sessions at once.
    let (s, _) = sec
        .post(&format!("/api/v1/admin/users/{worker}/disable"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(wb.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wb.login("worker", PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
});

both_stores!(grant_validity, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let (sec, _, _) = admin(&t, &base, "sec", Role::SecurityAdmin, w.city).await;
    let worker = staff(&t, "seconded", vec![]).await;
    let now = t.clock.now();
    let (s, g) = sec
        .post(
            &format!("/api/v1/admin/users/{worker}/grants"),
            json!({
                "role": "community_worker",
                "scope": { "kind": "node", "id": w.comm_a },
                "valid_to": now + Duration::hours(2),
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["active"], json!(true));
    let (s, g2) = sec
        .post(
            &format!("/api/v1/admin/users/{worker}/grants"),
            json!({
                "role": "community_worker",
                "scope": { "kind": "node", "id": w.comm_b },
                "valid_from": now + Duration::minutes(10),
                "valid_to": now + Duration::minutes(5),
            }),
        )
        .await;
    assert_eq!(
        (s, code(&g2)),
        (StatusCode::UNPROCESSABLE_ENTITY, "grant.validity")
    );

    let mut b = Browser::new(&base);
    assert_eq!(b.login("seconded", PASSWORD, None).await.0, StatusCode::OK);
    let (_, page) = b.get("/api/v1/people").await;
    assert!(page["total"].as_i64().unwrap() > 0, "{page}");

    t.clock.advance(Duration::hours(2));
    let mut b = Browser::new(&base);
    assert_eq!(b.login("seconded", PASSWORD, None).await.0, StatusCode::OK);
    let (_, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(me["grants"], json!([]), "{me}");
    let (s, page) = b.get("/api/v1/people").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["total"], json!(0), "an ended grant gives nothing");

    // The page per user still shows it, inactive; revoking is recorded.
    let (sec, _, _) = admin(&t, &base, "sec.b", Role::SecurityAdmin, w.city).await;
    let (s, v) = sec.get(&format!("/api/v1/admin/users/{worker}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["grants"][0]["active"], json!(false));
    let gid = g["id"].as_str().unwrap();
    let (s, v) = sec.delete(&format!("/api/v1/admin/grants/{gid}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string());
});
