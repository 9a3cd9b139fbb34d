//! /api/v1 routes for the emergency fund ledger and its public view (owner: fund ledger).
//!
//! - `/api/v1/funds/accounts` (list, open one), `/api/v1/funds/accounts/{id}` (get; patch the
//!   name or whether it is published), `/api/v1/funds/accounts/{id}/balances` (overall, per kind,
//!   per month).
//! - `/api/v1/funds/entries` (list with filters: account, direction, kind, month; record income
//!   or spending), `/api/v1/funds/entries/{id}` (get), `/api/v1/funds/entries/{id}/reverse`
//!   (the one way to correct an entry), `/api/v1/funds/entries/{id}/attachments` (upload a
//!   receipt, `multipart/form-data`: `file`, optional `is_public`).
//! - `/api/v1/funds/attachments/{id}` (the bytes; patch `is_public`).
//! - `/api/v1/public/funds/{code}`: the public summary of a published account by the community's
//!   12-digit code, no sign-in (rate limited per address like every route);
//!   `/api/v1/public/funds/attachments/{id}`: a published receipt; `/api/v1/resident/funds`: the
//!   signed-in resident's community's public summary.
//!
//! Every rule is in `anxin_store::supplies::funds`; a record outside the caller's reach answers
//! like a missing one.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use uuid::Uuid;

use anxin_store::supplies::funds::{
    self, AccountInput, AttachmentPatch, EntryInput, EntryQuery, FundAccount, FundAttachment,
    FundBalances, FundEntry, KindTotal, MonthTotal, PublicEntry, PublicFunds, PublicMonth,
    PublicReceipt, ReverseInput,
};

use crate::app::App;
use crate::http::error::{body, query};
use crate::http::guard::{Resident, Staff};
use crate::http::inspections::{file_response, multipart_parts, MAX_UPLOAD_BYTES};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    let a = Serves::Records("fund_accounts");
    let e = Serves::Records("fund_entries");
    let f = Serves::Records("fund_attachments");
    Table::new()
        .route(
            "/api/v1/funds/accounts",
            &["GET", "POST"],
            a,
            get(list_accounts).post(create_account),
        )
        .route(
            "/api/v1/funds/accounts/{id}",
            &["GET", "PATCH"],
            a,
            get(show_account).patch(edit_account),
        )
        .route(
            "/api/v1/funds/accounts/{id}/balances",
            &["GET"],
            a,
            get(balances),
        )
        .route(
            "/api/v1/funds/entries",
            &["GET", "POST"],
            e,
            get(list_entries).post(record),
        )
        .route("/api/v1/funds/entries/{id}", &["GET"], e, get(show_entry))
        .route(
            "/api/v1/funds/entries/{id}/reverse",
            &["POST"],
            e,
            post(reverse),
        )
        .route(
            "/api/v1/funds/entries/{id}/attachments",
            &["POST"],
            e,
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route(
            "/api/v1/funds/attachments/{id}",
            &["GET", "PATCH"],
            f,
            get(download).patch(edit_attachment),
        )
        .route(
            "/api/v1/public/funds/{code}",
            &["GET"],
            Serves::Public,
            get(public_summary),
        )
        .route(
            "/api/v1/public/funds/attachments/{id}",
            &["GET"],
            Serves::Public,
            get(public_download),
        )
        .route(
            "/api/v1/resident/funds",
            &["GET"],
            Serves::Own,
            get(resident_summary),
        )
}

/// A receipt upload (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ReceiptUpload {
    /// The invoice or receipt: JPEG, PNG, WebP or PDF, at most 8 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `true` or `false`: shown on the public page (default: true for spending, false for
    /// income).
    is_public: Option<bool>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_accounts,
        create_account,
        show_account,
        edit_account,
        balances,
        list_entries,
        record,
        show_entry,
        reverse,
        upload,
        download,
        edit_attachment,
        public_summary,
        public_download,
        resident_summary
    ),
    components(schemas(
        FundAccount,
        AccountInput,
        FundBalances,
        KindTotal,
        MonthTotal,
        FundEntry,
        FundAttachment,
        EntryInput,
        ReverseInput,
        AttachmentPatch,
        ReceiptUpload,
        PublicFunds,
        PublicMonth,
        PublicEntry,
        PublicReceipt
    ))
)]
struct Api;

pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

// ---- accounts ----------------------------------------------------------------------------------

/// Fund accounts in the caller's reach, with their totals.
#[utoipa::path(
    get, path = "/api/v1/funds/accounts", tag = "funds",
    responses((status = 200, body = Vec<FundAccount>))
)]
async fn list_accounts(
    State(app): State<App>,
    staff: Staff,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| funds::list_accounts(c, &caller))
            .await?,
    ))
}

/// Open the fund account of a community or street where the caller manages funds (one per node).
#[utoipa::path(
    post, path = "/api/v1/funds/accounts", tag = "funds",
    request_body = AccountInput,
    responses((status = 201, body = FundAccount))
)]
async fn create_account(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<AccountInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let a = app
        .store
        .write(staff.write_ctx(), move |tx| {
            funds::create_account(tx, &caller, &input)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(
    get, path = "/api/v1/funds/accounts/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "account id")),
    responses((status = 200, body = FundAccount))
)]
async fn show_account(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| funds::get_account(c, &caller, id))
            .await?,
    ))
}

/// Rename the account, or publish it on (or withdraw it from) the public page.
#[utoipa::path(
    patch, path = "/api/v1/funds/accounts/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "account id")),
    request_body = AccountInput,
    responses((status = 200, body = FundAccount))
)]
async fn edit_account(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<AccountInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                funds::edit_account(tx, caller, id, &patch)
            })
            .await?,
    ))
}

/// The account's balance, income per source kind, spending per category and each month's totals
/// with its closing balance.
#[utoipa::path(
    get, path = "/api/v1/funds/accounts/{id}/balances", tag = "funds",
    params(("id" = Uuid, Path, description = "account id")),
    responses((status = 200, body = FundBalances))
)]
async fn balances(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| funds::balances(c, &caller, id))
            .await?,
    ))
}

// ---- entries -----------------------------------------------------------------------------------

/// Entries in the caller's reach, newest first; filter by account, direction, kind and month.
#[utoipa::path(
    get, path = "/api/v1/funds/entries", tag = "funds",
    params(EntryQuery),
    responses((status = 200, body = Vec<FundEntry>))
)]
async fn list_entries(
    State(app): State<App>,
    staff: Staff,
    q: Result<Query<EntryQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| funds::list_entries(c, &caller, &q))
            .await?,
    ))
}

/// Record income (by source kind) or spending (by category). A spending beyond the balance is
/// refused with 409 `fund.insufficient` unless the configuration allows overdraft.
#[utoipa::path(
    post, path = "/api/v1/funds/entries", tag = "funds",
    request_body = EntryInput,
    responses((status = 201, body = FundEntry))
)]
async fn record(
    State(app): State<App>,
    staff: Staff,
    b: Result<Json<EntryInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let overdraft = app.config.funds.allow_overdraft;
    let e = app
        .store
        .write(staff.write_ctx(), move |tx| {
            funds::record(tx, &caller, &input, overdraft)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(
    get, path = "/api/v1/funds/entries/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "entry id")),
    responses((status = 200, body = FundEntry))
)]
async fn show_entry(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = staff.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| funds::get_entry(c, &caller, id))
            .await?,
    ))
}

/// Reverse an entry (the ledger is append-only): a new entry with the amount negated, naming the
/// one it reverses and why. A reversal is not reversed (409 `fund.reversal_of_reversal`); an
/// entry is reversed once (409 `fund.already_reversed`).
#[utoipa::path(
    post, path = "/api/v1/funds/entries/{id}/reverse", tag = "funds",
    params(("id" = Uuid, Path, description = "entry id")),
    request_body = ReverseInput,
    responses((status = 201, body = FundEntry))
)]
async fn reverse(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<ReverseInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = body(b)?;
    let caller = staff.caller().clone();
    let overdraft = app.config.funds.allow_overdraft;
    let e = app
        .store
        .write(staff.write_ctx(), move |tx| {
            funds::reverse(tx, &caller, id, &input, overdraft)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// The `file` and `is_public` parts of a receipt upload.
pub fn receipt_parts(
    parts: Vec<(String, Option<String>, Bytes)>,
) -> Result<(String, Bytes, Option<bool>), ApiError> {
    let mut file = None;
    let mut is_public = None;
    for (name, filename, data) in parts {
        match name.as_str() {
            "file" => file = Some((filename.unwrap_or_default(), data)),
            "is_public" => {
                is_public = match String::from_utf8_lossy(&data).trim() {
                    "" => None,
                    "true" | "1" | "on" => Some(true),
                    "false" | "0" | "off" => Some(false),
                    _ => {
                        return Err(ApiError::invalid(
                            "value.invalid",
                            "is_public",
                            "is_public: true or false",
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    let (filename, data) =
        file.ok_or_else(|| ApiError::invalid("value.required", "file", "file required"))?;
    Ok((filename, data, is_public))
}

/// Add an invoice or receipt to an entry (`multipart/form-data`: `file`, optional `is_public`).
/// JPEG, PNG, WebP or PDF only (recognised by content), at most 8 MiB.
#[utoipa::path(
    post, path = "/api/v1/funds/entries/{id}/attachments", tag = "funds",
    params(("id" = Uuid, Path, description = "entry id")),
    request_body(content = ReceiptUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = FundAttachment))
)]
async fn upload(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let parts = multipart_parts(&headers, bytes).await?;
    let (filename, data, is_public) = receipt_parts(parts)?;
    let caller = staff.caller().clone();
    let a = app
        .store
        .write(staff.write_ctx(), move |tx| {
            funds::add_attachment(tx, &caller, id, &filename, &data, is_public)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// The bytes of a receipt in the caller's reach.
#[utoipa::path(
    get, path = "/api/v1/funds/attachments/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "receipt link id")),
    responses((status = 200, description = "the file",
        content((String = "image/jpeg"), (String = "image/png"), (String = "image/webp"),
                (String = "application/pdf"))))
)]
async fn download(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let caller = staff.caller().clone();
    let (a, data) = app
        .store
        .read(move |c, _| funds::get_attachment(c, &caller, id))
        .await?;
    Ok(file_response(&a, data))
}

/// Publish a receipt on the public page or withdraw it (`is_public`).
#[utoipa::path(
    patch, path = "/api/v1/funds/attachments/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "receipt link id")),
    request_body = AttachmentPatch,
    responses((status = 200, body = FundAttachment))
)]
async fn edit_attachment(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<Uuid>,
    b: Result<Json<AttachmentPatch>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = body(b)?;
    Ok(Json(
        staff
            .store_write(&app, move |tx, caller| {
                funds::edit_attachment(tx, caller, id, &patch)
            })
            .await?,
    ))
}

// ---- the public view ---------------------------------------------------------------------------

/// The public view of a node by its 12-digit code, `None` when it has no published account.
pub async fn public_by_code(app: &App, code: String) -> Result<Option<PublicFunds>, ApiError> {
    let months = app.config.funds.public_months;
    let now = app.clock.now();
    Ok(app
        .store
        .read(move |c, _| match funds::node_of_code(c, &code)? {
            Some(node) => funds::public_view(c, node, months, now),
            None => Ok(None),
        })
        .await?)
}

/// The public view of a community's account, `None` when it has no published one.
pub async fn public_by_node(app: &App, node: Uuid) -> Result<Option<PublicFunds>, ApiError> {
    let months = app.config.funds.public_months;
    let now = app.clock.now();
    Ok(app
        .store
        .read(move |c, _| funds::public_view(c, node, months, now))
        .await?)
}

/// The public summary of a community's published fund account (居务公开), by its 12-digit
/// division code; no sign-in. Anonymous donors are shown as 匿名; no phone numbers and no names
/// of staff (the recorder is a role). 404 when the code is unknown or the account not published.
#[utoipa::path(
    get, path = "/api/v1/public/funds/{code}", tag = "funds",
    params(("code" = String, Path, description = "the community's 12-digit division code")),
    responses((status = 200, body = PublicFunds))
)]
async fn public_summary(
    State(app): State<App>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let v = public_by_code(&app, code)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut r = Json(v).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(r)
}

/// A published receipt of a published account; no sign-in. 404 otherwise.
#[utoipa::path(
    get, path = "/api/v1/public/funds/attachments/{id}", tag = "funds",
    params(("id" = Uuid, Path, description = "receipt link id")),
    responses((status = 200, description = "the file",
        content((String = "image/jpeg"), (String = "image/png"), (String = "image/webp"),
                (String = "application/pdf"))))
)]
async fn public_download(
    State(app): State<App>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let (a, data) = app
        .store
        .read(move |c, _| funds::public_attachment(c, id))
        .await?;
    Ok(file_response(&a, data))
}

/// The signed-in resident's community's public fund summary (404 when it publishes none).
#[utoipa::path(
    get, path = "/api/v1/resident/funds", tag = "funds",
    responses((status = 200, body = PublicFunds))
)]
async fn resident_summary(
    State(app): State<App>,
    resident: Resident,
) -> Result<impl IntoResponse, ApiError> {
    let v = public_by_node(&app, resident.community_id())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(v))
}
