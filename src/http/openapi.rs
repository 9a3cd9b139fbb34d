//! The OpenAPI 3 document of the HTTP API, `GET /api/openapi.json`, generated from the code.
//!
//! Each handler carries a `#[utoipa::path]` annotation (parameters, body, success answer) and each
//! area module collects its handlers in `api()`. [`document`] merges those and then adds, from the
//! route table, what every route shares:
//! - security: public routes need none; the others take the `anxin_session` cookie (plus the
//!   `X-CSRF-Token` header for unsafe methods) or an API token as `Authorization: Bearer`;
//! - the error answers, all in the one shape `{"error":{"code","message","details"}}` of
//!   [`crate::http::ApiError`];
//! - operation ids unique across modules.
//!
//! `tests/it/openapi.rs` checks that the document and [`crate::http::table`] list the same routes
//! with the same methods, so the document cannot drift from the router.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::{OpenApi as _, ToSchema};

use crate::http::routes::{Entry, Serves, Table};
use crate::http::{admin, auth, health, io, live, people, places, tree};

pub fn routes() -> Table {
    Table::new().route("/api/openapi.json", &["GET"], Serves::Public, get(serve))
}

async fn serve() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| match document().to_json() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "openapi document");
            String::from("{}")
        }
    });
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}

/// The one error shape: every 4xx and 5xx answer of the API.
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// A stable code the user interface translates, e.g. `record.not_found`, `auth.required`.
    code: String,
    /// A developer-facing message; not for display.
    message: String,
    /// More about the error (`{"field": …}` on validation errors), or null.
    #[schema(value_type = Option<Object>, required = true)]
    details: serde_json::Value,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Anxin API",
        description = "The HTTP API of Anxin (安心), community resilience and emergency management. \
            Records outside the caller's scope are answered exactly like missing ones (404).",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody))
)]
struct Base;

/// The parts of the document, one per area of the API.
fn parts() -> Vec<OpenApi> {
    vec![
        health::api(),
        tree::api(),
        people::api(),
        places::api(),
        crate::http::map::api(),
        auth::api(),
        admin::api(),
        live::api(),
        io::api(),
        crate::http::monitor::api(),
        crate::http::notify_callbacks::api(),
        crate::http::warnings::api(),
        crate::http::plans::api(),
        crate::http::volunteers::api(),
        crate::http::incidents::api(),
        crate::http::passes::api(),
        crate::http::inspections::api(),
        crate::http::hazards::api(),
        crate::http::risks::api(),
        crate::http::supervision::api(),
        crate::http::supplies::api(),
        crate::http::campaigns::api(),
        crate::http::providers::api(),
        crate::http::funds::api(),
        crate::http::resident_channels::api(),
    ]
}

/// Component schemas that two parts define differently under one name. Merging keeps the
/// first, so the other part's responses would be validated against the wrong schema: the
/// document test requires this to be empty.
pub fn component_clashes() -> Vec<String> {
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    for part in parts() {
        let Some(c) = part.components else { continue };
        for (name, schema) in c.schemas {
            let json = serde_json::to_string(&schema).unwrap_or_default();
            match seen.get(&name) {
                Some(other) if *other != json => clashes.push(name),
                Some(_) => {}
                None => {
                    seen.insert(name, json);
                }
            }
        }
    }
    clashes
}

/// The generated document.
pub fn document() -> OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for part in parts() {
        doc.merge(part);
    }
    let table = crate::http::table();
    finish(&mut doc, table.entries());
    doc
}

/// The error answers a route may give, by status, with the component name and description.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "a path or query parameter, or the body, does not parse (`request.invalid`)",
    ),
    ("401", "Unauthorized", "sign in required (`auth.required`)"),
    (
        "403",
        "Forbidden",
        "not allowed: wrong role, CSRF token missing (`auth.csrf`), second factor missing",
    ),
    (
        "404",
        "NotFound",
        "no such record, or outside the caller's scope (`record.not_found`)",
    ),
    ("405", "MethodNotAllowed", "the route has no such method"),
    ("409", "Conflict", "conflicts with an existing record"),
    (
        "415",
        "UnsupportedMediaType",
        "the body is not `application/json` (`request.body_invalid`)",
    ),
    (
        "422",
        "Unprocessable",
        "a value is invalid; `details.field` names it",
    ),
    (
        "429",
        "TooManyRequests",
        "over a rate limit (`rate.limited`); see `Retry-After`",
    ),
    (
        "503",
        "Unavailable",
        "the database is unavailable (`service.unavailable`)",
    ),
];

/// Public routes that check a credential of their own (a device token, a provider's callback
/// secret) and so may answer 401 or 403.
const OWN_CREDENTIAL: &[&str] = &[
    "/api/v1/ingest/readings",
    "/api/v1/notify/sms/receipts",
    "/api/v1/notify/sms/replies",
];

fn error_statuses(e: &Entry, has_body: bool) -> Vec<&'static str> {
    let mut s = vec!["400", "405", "422", "429", "503"];
    if e.serves != Serves::Public
        || e.path.starts_with("/api/v1/auth/")
        || OWN_CREDENTIAL.contains(&e.path)
    {
        s.extend(["401", "403", "404"]);
    } else if e.path.starts_with("/api/v1/public/") {
        // Published records read without sign-in: what is not published is missing.
        s.push("404");
    }
    if !matches!(e.method, "GET" | "HEAD") {
        s.push("409");
    }
    if has_body {
        s.push("415");
    }
    s
}

fn finish(doc: &mut OpenApi, entries: &[Entry]) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (status, name, description) in ERRORS {
        let mut r = ResponseBuilder::new().description(*description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        );
        if *status == "429" {
            r = r.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("seconds to wait"))
                    .build(),
            );
        }
        components
            .responses
            .insert((*name).to_owned(), RefOr::T(r.build()));
    }
    components.security_schemes.insert(
        "session".into(),
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::http::guard::SESSION_COOKIE,
            "the session cookie set by sign-in",
        ))),
    );
    components.security_schemes.insert(
        "csrf".into(),
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "the session's CSRF token (from sign-in and `me`), on unsafe methods with the cookie",
        ))),
    );
    components.security_schemes.insert(
        "token".into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("an API token of an integration user"))
                .build(),
        ),
    );

    for e in entries {
        let Some(item) = doc.paths.paths.get_mut(e.path) else {
            continue;
        };
        let op = match e.method {
            "GET" => item.get.as_mut(),
            "POST" => item.post.as_mut(),
            "PUT" => item.put.as_mut(),
            "PATCH" => item.patch.as_mut(),
            "DELETE" => item.delete.as_mut(),
            _ => None,
        };
        let Some(op) = op else { continue };
        complete(op, e);
    }
}

fn complete(op: &mut Operation, e: &Entry) {
    let id: String = e
        .path
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    op.operation_id = Some(format!("{}_{}", e.method.to_lowercase(), id));
    op.security = Some(if e.serves == Serves::Public {
        Vec::new()
    } else {
        let safe = matches!(e.method, "GET" | "HEAD");
        let cookie = if safe {
            SecurityRequirement::new("session", Vec::<String>::new())
        } else {
            SecurityRequirement::new("session", Vec::<String>::new())
                .add("csrf", Vec::<String>::new())
        };
        vec![
            cookie,
            SecurityRequirement::new("token", Vec::<String>::new()),
        ]
    });
    if !e.path.starts_with("/api/") {
        return;
    }
    let has_body = op.request_body.is_some();
    for status in error_statuses(e, has_body) {
        let Some((_, name, _)) = ERRORS.iter().find(|(s, _, _)| *s == status) else {
            continue;
        };
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

/// `{"id": …}`: the id of a record just created.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Created {
    pub id: uuid::Uuid,
}
