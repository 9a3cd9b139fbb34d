//! The route table: every route is registered through [`Table`], which records its method, path
//! and what it serves, so tests can walk all of them (the isolation matrix fails when a route is
//! not covered) and so can the API document.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

use crate::app::App;
use crate::http::ApiError;

/// What a route serves, for the isolation matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Open to anyone (health, sign-in).
    Public,
    /// Records of one kind; `{id}` in the path names one (kind as in the change log, except
    /// `compounds`: the nodes of level compound, which local staff may rename).
    Records(&'static str),
    /// The caller's own account or session.
    Own,
    /// Administration (accounts, grants, audit): role-gated, not tree-scoped.
    Admin,
    /// A live event stream, filtered to the caller's reach.
    Live,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub method: &'static str,
    pub path: &'static str,
    pub serves: Serves,
}

/// A router that remembers what was registered.
pub struct Table {
    router: Router<App>,
    entries: Vec<Entry>,
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            entries: Vec::new(),
        }
    }

    /// Register `handler` for `methods` (e.g. `&["GET"]`) at `path`.
    pub fn route(
        mut self,
        path: &'static str,
        methods: &[&'static str],
        serves: Serves,
        handler: MethodRouter<App>,
    ) -> Self {
        for m in methods {
            self.entries.push(Entry {
                method: m,
                path,
                serves,
            });
        }
        let handler = if path.starts_with("/api/") {
            handler.layer(axum::middleware::map_response(json_rejections))
        } else {
            handler
        };
        self.router = self.router.route(path, handler);
        self
    }

    pub fn merge(mut self, other: Table) -> Self {
        self.entries.extend(other.entries);
        self.router = self.router.merge(other.router);
        self
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_parts(self) -> (Router<App>, Vec<Entry>) {
        (self.router, self.entries)
    }
}

/// Extractor rejections (a path or query that does not parse, a body that is not JSON of the
/// expected form, a wrong content type, a method the route does not have) answer in plain text;
/// on the API they become the one JSON error shape, keeping their status and headers (`Allow`).
async fn json_rejections(res: Response) -> Response {
    let plain = match res.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let code = match parts.status {
        StatusCode::METHOD_NOT_ALLOWED => "request.method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::PAYLOAD_TOO_LARGE => "request.body_invalid",
        _ => "request.invalid",
    };
    let mut message = String::from_utf8_lossy(&text).into_owned();
    if message.is_empty() {
        message = parts
            .status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_lowercase();
    }
    let mut r = ApiError::new(parts.status, code, message).into_response();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in parts.headers.iter() {
        r.headers_mut().append(k, v.clone());
    }
    r
}
