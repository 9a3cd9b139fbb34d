//! The API document: served at `/api/openapi.json`, OpenAPI 3, the one error shape, and the same
//! routes as the router, both ways. (`scripts/schemathesis` then tests the running API against it.)

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{client, Backend, TestApp};

/// Routes not in the document yet: none. (Kept as the place to name one while its handler
/// is being annotated; nothing may stay missing from the document.)
const NOT_YET_DOCUMENTED: &[(&str, &str)] = &[];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn served() -> (TestApp, String, Value) {
    let t = TestApp::new(Backend::Sqlite).await;
    let base = t.serve().await;
    let r = client()
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    (t, base, doc)
}

/// Every `$ref` in `v` points at something in `doc`.
fn check_refs(doc: &Value, v: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    let r = x.as_str().unwrap();
                    let ptr = r.strip_prefix('#').expect("local reference");
                    assert!(doc.pointer(ptr).is_some(), "{at}: dangling {r}");
                } else {
                    check_refs(doc, x, &format!("{at}/{k}"));
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| check_refs(doc, x, at)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_openapi_3_with_the_error_shape() {
    // One name, one schema: a clash would validate one part's answers against another's type.
    assert_eq!(
        anxin::http::openapi::component_clashes(),
        Vec::<String>::new(),
        "component schemas defined differently under one name"
    );
    let (_t, _, doc) = served().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    check_refs(&doc, &doc, "");

    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let detail = &error["properties"]["error"];
    let detail = match detail.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => detail,
    };
    let req: BTreeSet<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        ["code", "message", "details"]
            .iter()
            .all(|f| req.contains(f) && detail["properties"].get(*f).is_some()),
        "{detail}"
    );

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "anxin_session");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["token"]["scheme"], "bearer");

    // Every operation: a unique id, a success answer, and its error answers in the one shape.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{m} {path}: no success answer"
            );
            if !path.starts_with("/api/") {
                continue;
            }
            for want in ["400", "422", "429"] {
                assert!(responses.contains_key(want), "{m} {path}: no {want}");
            }
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            if !public {
                for want in ["401", "403", "404"] {
                    assert!(responses.contains_key(want), "{m} {path}: no {want}");
                }
            }
            if *m != "get" {
                assert!(responses.contains_key("409"), "{m} {path}: no 409");
            }
            for (status, r) in responses {
                if !status.starts_with('4') {
                    continue;
                }
                let r = match r.get("$ref").and_then(Value::as_str) {
                    Some(p) => doc.pointer(p.trim_start_matches('#')).unwrap(),
                    None => r,
                };
                // The error shape, or (an import's 422 with its row report) one of the
                // alternatives.
                let schema = &r["content"]["application/json"]["schema"];
                let error = Value::from("#/components/schemas/Error");
                let is_error = schema["$ref"] == error
                    || schema["oneOf"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["$ref"] == error));
                assert!(is_error, "{m} {path} {status}: {schema}");
            }
        }
    }

    // Bodies that refuse unknown fields say so.
    let schemas = &doc["components"]["schemas"];
    for name in ["PersonInput", "BuildingInput", "LoginBody", "GrantBody"] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            Value::Bool(false),
            "{name}: {}",
            schemas[name]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_and_route_table_list_the_same_api_routes() {
    let (_t, _, doc) = served().await;
    let table = anxin::http::table();
    let routes: BTreeSet<(String, String)> = table
        .entries()
        .iter()
        .filter(|e| e.path.starts_with("/api/v1/"))
        .map(|e| (e.method.to_lowercase(), e.path.to_owned()))
        .filter(|(m, p)| !NOT_YET_DOCUMENTED.contains(&(m.as_str(), p.as_str())))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(*m).is_some() {
                documented.insert((m.to_string(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
    // Every documented operation is a route (the operations endpoints included).
    let all: BTreeSet<(String, String)> = table
        .entries()
        .iter()
        .map(|e| (e.method.to_lowercase(), e.path.to_owned()))
        .collect();
    let extra: Vec<_> = documented.difference(&all).collect();
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    // Public routes need no credentials; the others take the cookie or a token.
    for e in table
        .entries()
        .iter()
        .filter(|e| e.path.starts_with("/api/v1/"))
    {
        let lower = e.method.to_lowercase();
        if NOT_YET_DOCUMENTED.contains(&(lower.as_str(), e.path)) {
            continue;
        }
        let op = &doc["paths"][e.path][e.method.to_lowercase()];
        let security = op["security"].as_array().unwrap();
        if e.serves == anxin::http::routes::Serves::Public {
            assert!(security.is_empty(), "{} {}", e.method, e.path);
        } else {
            let names: BTreeSet<String> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().cloned())
                .collect();
            assert!(
                names.contains("session") && names.contains("token"),
                "{} {}: {security:?}",
                e.method,
                e.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_answer_in_the_error_shape() {
    let (_t, base, _) = served().await;
    let c = client();
    let cases = [
        // Not JSON at all: 415.
        c.post(format!("{base}/api/v1/auth/login"))
            .header("content-type", "text/plain")
            .body("x"),
        // JSON of the wrong form: 422.
        c.post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({ "user": 1 })),
        // Broken JSON: 400.
        c.post(format!("{base}/api/v1/auth/code"))
            .header("content-type", "application/json")
            .body("{"),
        // A method the route does not have: 405.
        c.put(format!("{base}/api/v1/auth/login")),
    ];
    for (req, want) in cases.into_iter().zip([415, 422, 400, 405]) {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["code"]
                .as_str()
                .unwrap()
                .starts_with("request."),
            "{body}"
        );
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}
