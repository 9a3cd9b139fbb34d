//! Hand a page's action to the API's own handler in-process (sign-in, sign-out, codes, choosing
//! a person), so lockout, rate limits, audit and session cookies are decided in one place.
//! The request keeps the original request's extensions (client address, the per-address count
//! already taken) and carries the session cookie and CSRF token when given.

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt;

use crate::app::App;
use crate::http::guard::{CSRF_HEADER, SESSION_COOKIE};
use crate::web::Ui;

/// What the API answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    /// The error code of a failed answer.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
    /// The `Set-Cookie` headers, to pass on to the browser.
    pub fn cookies(&self) -> impl Iterator<Item = &axum::http::HeaderValue> {
        self.headers.get_all(header::SET_COOKIE).iter()
    }
}

/// POST `body` as JSON to the auth API at `path`.
pub async fn post(
    app: &App,
    ui: &Ui,
    path: &str,
    csrf: Option<&str>,
    body: &serde_json::Value,
) -> Result<Answer, crate::http::ApiError> {
    let internal = || {
        crate::http::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    };
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = &ui.session_cookie {
        req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={c}"));
    }
    if let Some(t) = csrf {
        req = req.header(CSRF_HEADER, t);
    }
    let mut req = req
        .body(Body::from(body.to_string()))
        .map_err(|_| internal())?;
    *req.extensions_mut() = ui.ext.clone();
    let (router, _) = crate::http::auth::routes().into_parts();
    let resp = router
        .with_state(app.clone())
        .oneshot(req)
        .await
        .map_err(|_| internal())?;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| internal())?;
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
