//! Pages for the emergency fund ledger and its public view (owner: fund ledger).
//!
//! - `/manage/funds`: the accounts in reach with their balances, and the form to open one.
//! - `/manage/funds/{id}`: an account's ledger — balance, income by source kind, spending by
//!   category, each month's totals, the entries (filter by direction, kind, month) with their
//!   receipts, the forms to record income or spending, reverse an entry, upload a receipt
//!   (`multipart/form-data`) and publish or withdraw it, and the account's settings (name,
//!   published). Every form works without JavaScript.
//! - `/resident/funds`: the signed-in resident's community's public view (mobile-first).
//! - `/public/funds/{code}`: the same, by the community's 12-digit division code, with no
//!   sign-in (居务公开栏): the balance, income by source, spending by category, each month's
//!   entries with their published receipts; no personal data (anonymous donors are 匿名, no
//!   phones, the recorder as a role). Receipts are served by `/api/v1/public/funds/attachments`.
//!
//! Every step goes through `anxin_store::supplies::funds`, which checks permission and scope.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use anxin_domain::fund::{format_yuan, parse_yuan, Direction};
use anxin_domain::SHANGHAI;
use anxin_store::supplies::funds::{
    self, AccountInput, AttachmentPatch, EntryInput, EntryQuery, FundEntry, PublicFunds,
    ReverseInput,
};

use crate::app::App;
use crate::http::guard::{AuthError, Resident, Staff};
use crate::http::inspections::{file_response, MAX_UPLOAD_BYTES};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{text, Fields};
use crate::web::{error_page, i18n, render, see_other, Input, Ui};

pub fn routes() -> Table {
    let a = Serves::Records("fund_accounts");
    let e = Serves::Records("fund_entries");
    let f = Serves::Records("fund_attachments");
    Table::new()
        .route(
            "/manage/funds",
            &["GET", "POST"],
            a,
            get(accounts_page).post(open_account),
        )
        .route(
            "/manage/funds/{id}",
            &["GET", "POST"],
            a,
            get(account_page).post(edit_account),
        )
        .route("/manage/funds/{id}/entries", &["POST"], a, post(add_entry))
        .route(
            "/manage/funds/entries/{id}/reverse",
            &["POST"],
            e,
            post(reverse),
        )
        .route(
            "/manage/funds/entries/{id}/attachments",
            &["POST"],
            e,
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route(
            "/manage/funds/attachments/{id}",
            &["GET", "POST"],
            f,
            get(download).post(publish_receipt),
        )
        .route("/resident/funds", &["GET"], Serves::Own, get(resident_page))
        .route(
            "/public/funds/{code}",
            &["GET"],
            Serves::Public,
            get(public_page),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn en(ui: &Ui) -> bool {
    ui.lang == i18n::Lang::En
}

fn kind_label(ui: &Ui, direction: &str, kind: &str) -> String {
    let key = format!("fund.kind.{kind}");
    let s = t(ui, &key);
    if s == key {
        direction
            .parse::<Direction>()
            .ok()
            .and_then(|d| d.kind_zh(kind))
            .unwrap_or(kind)
            .to_owned()
    } else {
        s
    }
}

fn kinds(ui: &Ui, d: Direction) -> Vec<Json> {
    d.kinds()
        .into_iter()
        .map(|k| json!({ "value": k, "label": kind_label(ui, d.as_str(), k) }))
        .collect()
}

use crate::web::forms::{
    error_field as field_of, error_with_field as error_text, shown_on_form as form_error,
};

fn yuan(fen: i64) -> String {
    format_yuan(fen)
}

use crate::web::forms::local_minute as local;

fn role_label(ui: &Ui, role: &str) -> String {
    match role.parse::<anxin_domain::Role>() {
        Ok(r) if en(ui) => r.as_str().replace('_', " "),
        Ok(r) => r.zh().to_owned(),
        Err(_) => t(ui, "fund.staff"),
    }
}

// ---- accounts ----------------------------------------------------------------------------------

async fn accounts_page(ui: Ui, State(app): State<App>, s: Result<Staff, AuthError>) -> Response {
    let s = staff!(ui, s);
    page_accounts(&ui, &app, &s, None, &Fields::new()).await
}

async fn page_accounts(
    ui: &Ui,
    app: &App,
    s: &Staff,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            Ok((
                funds::list_accounts(c, &caller)?,
                funds::account_nodes(c, &caller)?,
            ))
        })
        .await;
    let (list, nodes) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let rows: Vec<Json> = list
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "node": a.node_name, "published": a.published,
                "balance": yuan(a.balance_fen), "income": yuan(a.income_fen),
                "spending": yuan(a.spending_fen), "entries": a.entry_count,
                "negative": a.balance_fen < 0,
            })
        })
        .collect();
    let nodes: Vec<Json> = nodes
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "funds.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            rows => minijinja::Value::from_serialize(&rows),
            nodes => minijinja::Value::from_serialize(&nodes),
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

fn uuid_field(f: &Fields, k: &str) -> Result<Option<Uuid>, ApiError> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse::<Uuid>().map(Some).map_err(|_| {
            ApiError::invalid("value.invalid", k, format!("{k} is not a valid value"))
        }),
    }
}

fn flag(f: &Fields, k: &str) -> Option<bool> {
    f.get(k)
        .map(|v| matches!(v.trim(), "1" | "true" | "on" | "yes"))
}

async fn open_account(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match uuid_field(&f, "node_id") {
        Ok(node_id) => AccountInput {
            node_id,
            name: text(&f, "name"),
            published: flag(&f, "published"),
        },
        Err(e) => return page_accounts(&ui, &app, &s, Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            funds::create_account(tx, &caller, &input)
        })
        .await;
    match r {
        Ok(a) => see_other(&format!("/manage/funds/{}", a.id)),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(&ui, &e);
            }
            page_accounts(&ui, &app, &s, Some(&e), &f).await
        }
    }
}

// ---- an account's ledger -----------------------------------------------------------------------

fn entry_row(ui: &Ui, e: &FundEntry, can_write: bool) -> Json {
    json!({
        "id": e.id, "seq": e.seq, "direction": e.direction,
        "direction_text": t(ui, &format!("fund.direction.{}", e.direction)),
        "kind": kind_label(ui, &e.direction, &e.kind),
        "amount": yuan(e.amount_fen), "negative": e.amount_fen < 0,
        "on": e.occurred_on.to_string(), "description": e.description,
        "counterparty": e.counterparty, "anonymous": e.anonymous,
        "contact": e.contact_mask, "reverses": e.reverses_id, "reversed_by": e.reversed_by,
        "reason": e.reason, "recorder": e.recorder_label,
        "role": role_label(ui, &e.recorder_role), "at": local(e.created_at),
        "can_reverse": can_write && e.reverses_id.is_none() && e.reversed_by.is_none(),
        "can_upload": can_write,
        "attachments": e.attachments.iter().map(|a| json!({
            "id": a.id, "filename": a.filename, "public": a.is_public,
        })).collect::<Vec<_>>(),
    })
}

async fn account_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = staff!(ui, s);
    page_account(&ui, &app, &s, id, &q, None, &Fields::new()).await
}

fn query_of(id: Uuid, q: &HashMap<String, String>) -> EntryQuery {
    let get = |k: &str| q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    EntryQuery {
        account_id: Some(id),
        direction: get("direction")
            .filter(|s| s.parse::<Direction>().is_ok())
            .map(str::to_owned),
        kind: get("kind")
            .filter(|k| {
                Direction::Income.kind_zh(k).is_some() || Direction::Spending.kind_zh(k).is_some()
            })
            .map(str::to_owned),
        month: get("month")
            .filter(|m| funds::month_range(m).is_some())
            .map(str::to_owned),
    }
}

#[allow(clippy::too_many_arguments)]
async fn page_account(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
    q: &HashMap<String, String>,
    error: Option<&ApiError>,
    values: &Fields,
) -> Response {
    let caller = s.caller().clone();
    let filter = query_of(id, q);
    let got = app
        .store
        .read(move |c, _| {
            let b = funds::balances(c, &caller, id)?;
            let entries = funds::list_entries(c, &caller, &filter)?;
            let can_write = caller
                .reach(anxin_domain::Permission::ManageFunds)
                .contains_node(c, b.account.node_id)?;
            Ok((b, entries, can_write))
        })
        .await;
    let (b, entries, can_write) = match got {
        Ok(x) => x,
        Err(e) => return error_page(ui, &ApiError::from(e)),
    };
    let totals = |list: &[funds::KindTotal], d: Direction| -> Vec<Json> {
        list.iter()
            .map(|k| {
                json!({ "label": kind_label(ui, d.as_str(), &k.kind), "amount": yuan(k.amount_fen) })
            })
            .collect()
    };
    let months: Vec<Json> = b
        .months
        .iter()
        .rev()
        .map(|m| {
            json!({ "month": m.month, "income": yuan(m.income_fen),
                    "spending": yuan(m.spending_fen), "closing": yuan(m.closing_fen) })
        })
        .collect();
    let rows: Vec<Json> = entries
        .iter()
        .map(|e| entry_row(ui, e, can_write))
        .collect();
    let today = app
        .clock
        .now()
        .with_timezone(&SHANGHAI)
        .date_naive()
        .to_string();
    let mut all_kinds = kinds(ui, Direction::Income);
    all_kinds.extend(kinds(ui, Direction::Spending));
    render(
        ui,
        error.map_or(StatusCode::OK, |e| e.status),
        "fund.html",
        context! {
            me => crate::web::manage::who_ctx(s),
            account => json!({
                "id": b.account.id, "name": b.account.name, "node": b.account.node_name,
                "published": b.account.published,
            }),
            balance => yuan(b.balance_fen),
            negative => b.balance_fen < 0,
            income => yuan(b.income_fen),
            spending => yuan(b.spending_fen),
            income_by_kind => totals(&b.income_by_kind, Direction::Income),
            spending_by_kind => totals(&b.spending_by_kind, Direction::Spending),
            months => months,
            rows => rows,
            income_kinds => kinds(ui, Direction::Income),
            spending_kinds => kinds(ui, Direction::Spending),
            all_kinds => all_kinds,
            filter => minijinja::Value::from_serialize(q),
            can_write => can_write,
            today => today,
            error => error.map(|e| error_text(ui, e)),
            error_code => error.map(|e| e.code),
            error_field => error.map(field_of),
            values => minijinja::Value::from_serialize(values),
        },
    )
}

async fn edit_account(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = AccountInput {
        node_id: None,
        name: f.get("name").cloned(),
        published: flag(&f, "published"),
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            funds::edit_account(tx, &caller, id, &input)
        })
        .await;
    after(&ui, &app, &s, id, r.map(|_| ()), &f).await
}

/// After a form on the account page: back to it, or the page with the error.
async fn after(
    ui: &Ui,
    app: &App,
    s: &Staff,
    account: Uuid,
    r: Result<(), anxin_store::StoreError>,
    f: &Fields,
) -> Response {
    match r {
        Ok(()) => see_other(&format!("/manage/funds/{account}")),
        Err(e) => {
            let e = ApiError::from(e);
            if !form_error(&e) {
                return error_page(ui, &e);
            }
            page_account(ui, app, s, account, &HashMap::new(), Some(&e), f).await
        }
    }
}

fn entry_input(account: Uuid, f: &Fields) -> Result<EntryInput, ApiError> {
    let amount = match text(f, "amount") {
        None => None,
        Some(s) => Some(parse_yuan(&s).ok_or_else(|| {
            ApiError::invalid("fund.amount_format", "amount", "amount: yuan, two decimals")
        })?),
    };
    Ok(EntryInput {
        account_id: Some(account),
        direction: text(f, "direction"),
        kind: text(f, "kind"),
        amount_fen: amount,
        occurred_on: text(f, "occurred_on"),
        description: f.get("description").cloned(),
        counterparty: f.get("counterparty").cloned(),
        anonymous: flag(f, "anonymous"),
        contact_phone: text(f, "contact_phone"),
        incident_id: uuid_field(f, "incident_id")?,
        order_id: uuid_field(f, "order_id")?,
    })
}

async fn add_entry(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let input = match entry_input(id, &f) {
        Ok(i) => i,
        Err(e) => return page_account(&ui, &app, &s, id, &HashMap::new(), Some(&e), &f).await,
    };
    let caller = s.caller().clone();
    let overdraft = app.config.funds.allow_overdraft;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            funds::record(tx, &caller, &input, overdraft)
        })
        .await;
    after(&ui, &app, &s, id, r.map(|_| ()), &f).await
}

/// The account of an entry the caller may read (for the redirect and the error page).
async fn account_of_entry(app: &App, s: &Staff, entry: Uuid) -> Result<Uuid, ApiError> {
    let caller = s.caller().clone();
    Ok(app
        .store
        .read(move |c, _| funds::get_entry(c, &caller, entry))
        .await?
        .account_id)
}

async fn reverse(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let account = match account_of_entry(&app, &s, id).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    let input = ReverseInput {
        reason: f.get("reason").cloned(),
    };
    let caller = s.caller().clone();
    let overdraft = app.config.funds.allow_overdraft;
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            funds::reverse(tx, &caller, id, &input, overdraft)
        })
        .await;
    after(&ui, &app, &s, account, r.map(|_| ()), &f).await
}

async fn upload(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let s = staff!(ui, s);
    let account = match account_of_entry(&app, &s, id).await {
        Ok(a) => a,
        Err(e) => return error_page(&ui, &e),
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("multipart/form-data") {
        return error_page(
            &ui,
            &ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.body_invalid",
                "expected multipart/form-data",
            ),
        );
    }
    let parts = match crate::http::inspections::multipart_parts(&headers, bytes).await {
        Ok(p) => p,
        Err(e) => return error_page(&ui, &e),
    };
    let (filename, data, is_public) = match crate::http::funds::receipt_parts(parts) {
        Ok(x) => x,
        Err(e) => {
            return page_account(
                &ui,
                &app,
                &s,
                account,
                &HashMap::new(),
                Some(&e),
                &Fields::new(),
            )
            .await
        }
    };
    let caller = s.caller().clone();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            funds::add_attachment(tx, &caller, id, &filename, &data, is_public)
        })
        .await;
    after(&ui, &app, &s, account, r.map(|_| ()), &Fields::new()).await
}

async fn download(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    match app
        .store
        .read(move |c, _| funds::get_attachment(c, &caller, id))
        .await
    {
        Ok((a, data)) => file_response(&a, data),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

async fn publish_receipt(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let patch = AttachmentPatch {
        is_public: flag(&f, "is_public"),
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            let link = funds::edit_attachment(tx, &caller, id, &patch)?;
            Ok(funds::get_entry(tx.conn(), &caller, link.entry_id)?.account_id)
        })
        .await;
    match r {
        Ok(account) => see_other(&format!("/manage/funds/{account}")),
        Err(e) => error_page(&ui, &ApiError::from(e)),
    }
}

// ---- the public view ---------------------------------------------------------------------------

fn public_ctx(ui: &Ui, v: &PublicFunds) -> Json {
    let totals = |list: &[funds::KindTotal], d: Direction| -> Vec<Json> {
        list.iter()
            .map(|k| {
                json!({ "label": kind_label(ui, d.as_str(), &k.kind), "amount": yuan(k.amount_fen),
                        "zero": k.amount_fen == 0 })
            })
            .collect()
    };
    json!({
        "community": v.community, "account": v.account,
        "balance": yuan(v.balance_fen), "negative": v.balance_fen < 0,
        "income": yuan(v.income_fen), "spending": yuan(v.spending_fen),
        "income_by_kind": totals(&v.income_by_kind, Direction::Income),
        "spending_by_kind": totals(&v.spending_by_kind, Direction::Spending),
        "as_of": local(v.as_of),
        "months": v.months.iter().map(|m| json!({
            "month": m.totals.month, "income": yuan(m.totals.income_fen),
            "spending": yuan(m.totals.spending_fen), "closing": yuan(m.totals.closing_fen),
            "entries": m.entries.iter().map(|e| json!({
                "seq": e.seq, "direction": e.direction,
                "direction_text": t(ui, &format!("fund.direction.{}", e.direction)),
                "kind": kind_label(ui, &e.direction, &e.kind),
                "amount": yuan(e.amount_fen), "on": e.occurred_on.to_string(),
                "description": e.description, "counterparty": e.counterparty,
                "reverses": e.reverses_seq, "reason": e.reason,
                "recorded_by": if en(ui) { t(ui, "fund.staff") } else { e.recorded_by.clone() },
                "receipts": e.receipts.iter().map(|r| json!({
                    "id": r.id, "filename": r.filename,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn public_render(ui: &Ui, v: Option<&PublicFunds>, csrf: Option<&str>, resident: bool) -> Response {
    render(
        ui,
        if v.is_some() || resident {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        "fund_public.html",
        context! {
            fund => v.map(|v| public_ctx(ui, v)),
            csrf => csrf,
            resident => resident,
        },
    )
}

async fn resident_page(ui: Ui, State(app): State<App>, r: Result<Resident, AuthError>) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => return crate::web::refused(&ui, e),
    };
    match crate::http::funds::public_by_node(&app, r.community_id()).await {
        Ok(v) => public_render(&ui, v.as_ref(), r.csrf(), true),
        Err(e) => error_page(&ui, &e),
    }
}

async fn public_page(ui: Ui, State(app): State<App>, Path(code): Path<String>) -> Response {
    match crate::http::funds::public_by_code(&app, code).await {
        Ok(v) => public_render(&ui, v.as_ref(), None, false),
        Err(e) => error_page(&ui, &e),
    }
}
