//! The HTTP error: a status, a stable code the UI translates, a message and details.
//!
//! Area errors ([`StoreError`]) and domain errors are mapped here and only here. A record outside
//! the caller's scope is reported exactly like a missing one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use anxin_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "record.not_found", "not found")
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "sign in required",
        )
    }
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            .with_details(json!({ "field": field }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "details": self.details }
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict { code, detail } => {
                tracing::info!(error.code = code, detail = %detail, "conflict");
                ApiError::new(
                    StatusCode::CONFLICT,
                    code,
                    "conflicts with an existing record",
                )
            }
            StoreError::Invalid { code, field } => {
                ApiError::invalid(code, &field, format!("invalid {field}"))
            }
            StoreError::Forbidden(code) => {
                ApiError::new(StatusCode::FORBIDDEN, code, "not allowed")
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(reason = %why, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service.unavailable",
                    "try again shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<anxin_domain::DomainError> for ApiError {
    fn from(e: anxin_domain::DomainError) -> Self {
        let field = e.field().unwrap_or("value");
        ApiError::invalid(e.code(), field, e.to_string())
    }
}

/// A JSON body, or the one error shape (`request.body_invalid`) naming what did not parse.
pub fn body<T>(
    b: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    b.map(|axum::Json(v)| v)
        .map_err(|r| ApiError::new(r.status(), "request.body_invalid", r.body_text()))
}

/// Query parameters, or the one error shape (`request.query_invalid`, 400).
pub fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(v)| v).map_err(|r| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "request.query_invalid",
            r.body_text(),
        )
    })
}
