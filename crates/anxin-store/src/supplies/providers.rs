//! Providers (服务商), their offers and the orders communities place with them (owner:
//! providers).
//!
//! **Providers** are organisations (a supermarket, a farm, a pharmacy, a logistics firm) that staff
//! with `ManageSupplies` register at a node of theirs, with the 统一社会信用代码 checked
//! ([`CreditCode`], GB 32100-2015), a contact whose name and phone are sealed under the
//! provider's data key and shown masked, and the nodes it serves. Which accounts speak for a
//! provider is recorded in `provider_accounts`: staff link an account that the security
//! administrator created with a `provider` grant and nothing else; an account speaks for at most
//! one provider.
//!
//! **Two sides, two scopes.** Community staff read by the tree: the providers serving a node in
//! (or above) their `ReadSupplies` reach and those registered inside it, their offers, and the
//! orders whose depot is inside it. A provider's account reads by `provider_accounts`, never by
//! the tree: its own provider, its own offers and the orders placed with it; no people, no stock
//! balances, nobody else's offers or orders. Anything outside a caller's side answers like a
//! missing record.
//!
//! **Offers**: a catalogue item, the quantity available, the unit price in fen, the lead time in
//! hours and the last day it holds; the provider edits or withdraws them. Placing an order lowers
//! the quantity available (so two orders cannot take the same goods); cancelling or declining
//! gives it back.
//!
//! **Orders**: `placed` → `confirmed` | `declined` (provider) | `cancelled` (community, before
//! confirmation) → `partially_delivered` / `delivered` (provider, in parts) → `received`
//! (community, in parts: each receipt books stock into the depot through
//! [`crate::supplies::reserves::post`] in the same transaction) → `closed` (community; also a
//! short delivery once all that came is received). A step by the wrong side is
//! `order.wrong_side` (403), a step the state does not allow `order.wrong_state` (409). Every
//! step is an event: who, when, how much and the note.

use anxin_domain::roles::Permission;
use anxin_domain::supplies::MovementKind;
use anxin_domain::{mask_name, mask_phone, Phone, SHANGHAI};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::supplies::reserves::{self, NewMovement};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

const NAME_MAX: usize = 100;
const TEXT_MAX: usize = 500;
const MAX_QUANTITY: i64 = 100_000_000;
const MAX_PRICE_FEN: i64 = 100_000_000_000;
/// A year.
const MAX_LEAD_HOURS: i64 = 8_760;
const CONTACT_NAME_FIELD: &str = "providers.contact_name";
const CONTACT_PHONE_FIELD: &str = "providers.contact_phone";

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn conflict(code: &'static str, detail: &str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: detail.into(),
    }
}

/// Today in Asia/Shanghai.
fn local_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&SHANGHAI).date_naive()
}

// ---- the unified social credit code ------------------------------------------------------------

/// A 统一社会信用代码 (GB 32100-2015): 18 characters from the 31 the standard allows (digits and
/// capitals without I, O, Z, S, V): registration authority, organisation type, the 6-digit
/// division code of the registering office, the 9-character organisation code and a check
/// character computed over the first 17 with weights 3^i mod 31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditCode(String);

const CREDIT_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

impl CreditCode {
    /// Parse a code (surrounding spaces ignored, lower case accepted); `provider.credit_code_invalid`
    /// for the wrong length or characters, `provider.credit_code_check` for a wrong check
    /// character.
    pub fn parse(raw: &str) -> Result<CreditCode> {
        let s = raw.trim().to_ascii_uppercase();
        let field = "credit_code";
        if s.chars().count() != 18 {
            return Err(bad("provider.credit_code_invalid", field));
        }
        let values: Vec<u32> = s
            .chars()
            .map(|c| CREDIT_CHARS.find(c).map(|i| i as u32))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("provider.credit_code_invalid", field))?;
        // The registering office's division code is six digits.
        if !s[2..8].chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("provider.credit_code_invalid", field));
        }
        if check_value(&values[..17]) != values[17] {
            return Err(bad("provider.credit_code_check", field));
        }
        Ok(CreditCode(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check character's value for the first 17 characters' values.
fn check_value(first: &[u32]) -> u32 {
    let sum: u32 = first.iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
    (31 - sum % 31) % 31
}

/// Complete 17 characters with their check character (for demo and test data).
pub fn with_check_char(first17: &str) -> Option<String> {
    let values: Vec<u32> = first17
        .chars()
        .map(|c| CREDIT_CHARS.find(c).map(|i| i as u32))
        .collect::<Option<_>>()?;
    if values.len() != 17 {
        return None;
    }
    let c = CREDIT_CHARS.chars().nth(check_value(&values) as usize)?;
    Some(format!("{first17}{c}"))
}

// ---- text checks -------------------------------------------------------------------------------

fn text(raw: Option<&str>, field: &'static str, max: usize, required: bool) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() && required {
        return Err(bad("value.required", field));
    }
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

fn date(raw: Option<&str>, field: &'static str) -> Result<Option<NaiveDate>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| bad("value.invalid", field)),
    }
}

fn quantity(v: Option<i64>, field: &'static str) -> Result<i64> {
    match v {
        None => Err(bad("value.required", field)),
        Some(n) if (1..=MAX_QUANTITY).contains(&n) => Ok(n),
        Some(_) => Err(bad("value.out_of_range", field)),
    }
}

// ---- who sees what -----------------------------------------------------------------------------

/// The providers the caller's account speaks for (none unless it holds `Provide`).
pub fn own_providers(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Uuid>> {
    let Some(user) = caller.user_id else {
        return Ok(Vec::new());
    };
    if !caller.has(Permission::Provide) {
        return Ok(Vec::new());
    }
    conn.query(
        "SELECT provider_id FROM provider_accounts WHERE account_id = $1",
        &params![user],
    )?
    .iter()
    .map(|r| r.get("provider_id"))
    .collect()
}

/// The one provider the caller speaks for, for writes on the provider's side.
fn speaking_for(conn: &mut dyn Conn, caller: &Caller) -> Result<Uuid> {
    own_providers(conn, caller)?
        .into_iter()
        .next()
        .ok_or(StoreError::Forbidden("provider.not_linked"))
}

/// The nodes of `nodes` and every node above them.
fn with_ancestors(conn: &mut dyn Conn, nodes: &[Uuid]) -> Result<Vec<Uuid>> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let d = conn.dialect();
    let list = json_ids(nodes);
    conn.query(
        &format!(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE {} \
             UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) \
             SELECT DISTINCT id FROM up",
            d.in_json_list("id", 1)
        ),
        &[list],
    )?
    .iter()
    .map(|r| r.get("id"))
    .collect()
}

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

/// A predicate over the provider id column `col`: providers the caller may read (its own, or on
/// the community side those serving a node in or above its `ReadSupplies` reach and those
/// registered inside it).
fn provider_pred(
    conn: &mut dyn Conn,
    caller: &Caller,
    col: &str,
    params: &mut Vec<Value>,
) -> Result<String> {
    let d = conn.dialect();
    let mut parts = Vec::new();
    let own = own_providers(conn, caller)?;
    if !own.is_empty() {
        params.push(json_ids(&own));
        parts.push(d.in_json_list(col, params.len()));
    }
    let reach = caller.reach(Permission::ReadSupplies);
    if reach.all {
        return Ok("1 = 1".into());
    }
    if !reach.nodes.is_empty() {
        let registered = reach.predicate(
            d,
            ScopeCols {
                node: "pp.node_id",
                grid: None,
                household: None,
            },
            params,
        );
        let served_below = reach.predicate(
            d,
            ScopeCols {
                node: "pn.node_id",
                grid: None,
                household: None,
            },
            params,
        );
        params.push(json_ids(&with_ancestors(conn, &reach.nodes)?));
        let above = d.in_json_list("pn.node_id", params.len());
        parts.push(format!(
            "{col} IN (SELECT pp.id FROM providers pp WHERE {registered} \
             UNION SELECT pn.provider_id FROM provider_nodes pn WHERE {served_below} OR {above})"
        ));
    }
    Ok(if parts.is_empty() {
        "1 = 0".into()
    } else {
        format!("({})", parts.join(" OR "))
    })
}

/// A predicate over an order alias `o`: the provider's own orders, or orders whose depot is in
/// the caller's `ReadSupplies` reach.
fn order_pred(conn: &mut dyn Conn, caller: &Caller, params: &mut Vec<Value>) -> Result<String> {
    let d = conn.dialect();
    let mut parts = Vec::new();
    let own = own_providers(conn, caller)?;
    if !own.is_empty() {
        params.push(json_ids(&own));
        parts.push(d.in_json_list("o.provider_id", params.len()));
    }
    let reach = caller.reach(Permission::ReadSupplies);
    if !reach.is_empty() {
        parts.push(reach.predicate(
            d,
            ScopeCols {
                node: "o.node_id",
                grid: None,
                household: None,
            },
            params,
        ));
    }
    Ok(if parts.is_empty() {
        "1 = 0".into()
    } else {
        format!("({})", parts.join(" OR "))
    })
}

fn manage_reach(caller: &Caller) -> Reach {
    caller.reach(Permission::ManageSupplies)
}

// ---- providers ---------------------------------------------------------------------------------

/// A node a provider serves.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ServedNode {
    pub id: Uuid,
    pub name: String,
    pub level: String,
}

/// A provider, its contact masked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    pub id: Uuid,
    /// Where it was registered.
    pub node_id: Uuid,
    pub node_name: String,
    pub name: String,
    /// 统一社会信用代码.
    pub credit_code: String,
    /// The contact person's name, masked.
    pub contact_name: String,
    /// The contact phone, masked.
    pub contact_phone: String,
    pub address: String,
    /// active, suspended
    pub status: String,
    pub served: Vec<ServedNode>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PROVIDER_COLS: &str = "p.id, p.node_id, p.name, p.credit_code, p.contact_name_mask, \
    p.contact_phone_mask, p.address, p.status, p.created_at, p.updated_at, \
    (SELECT n.name FROM nodes n WHERE n.id = p.node_id) AS node_name";

fn served_of(conn: &mut dyn Conn, provider: Uuid) -> Result<Vec<ServedNode>> {
    conn.query(
        "SELECT n.id, n.name, n.level FROM provider_nodes pn JOIN nodes n ON n.id = pn.node_id \
         WHERE pn.provider_id = $1 ORDER BY n.name, n.id",
        &params![provider],
    )?
    .iter()
    .map(|r| {
        Ok(ServedNode {
            id: r.get("id")?,
            name: r.get("name")?,
            level: r.get("level")?,
        })
    })
    .collect()
}

fn provider_from_row(conn: &mut dyn Conn, r: &Row) -> Result<Provider> {
    let id: Uuid = r.get("id")?;
    Ok(Provider {
        id,
        node_id: r.get("node_id")?,
        node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
        name: r.get("name")?,
        credit_code: r.get("credit_code")?,
        contact_name: r.get("contact_name_mask")?,
        contact_phone: r.get("contact_phone_mask")?,
        address: r.get("address")?,
        status: r.get("status")?,
        served: served_of(conn, id)?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// A provider the caller may read.
pub fn get_provider(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Provider> {
    let mut params = vec![Value::Uuid(id)];
    let pred = provider_pred(conn, caller, "p.id", &mut params)?;
    let row = conn
        .query_one(
            &format!("SELECT {PROVIDER_COLS} FROM providers p WHERE p.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    provider_from_row(conn, &row)
}

/// Providers the caller may read, by name.
pub fn list_providers(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Provider>> {
    let mut params = Vec::new();
    let pred = provider_pred(conn, caller, "p.id", &mut params)?;
    let rows = conn.query(
        &format!(
            "SELECT {PROVIDER_COLS} FROM providers p WHERE {pred} ORDER BY p.name, p.id LIMIT 1000"
        ),
        &params,
    )?;
    rows.iter().map(|r| provider_from_row(conn, r)).collect()
}

/// A new provider, or what to change of one (a patch: only what is given).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Where it is registered: a node where the caller has `manage_supplies`; fixed once created.
    pub node_id: Option<Uuid>,
    pub name: Option<String>,
    /// 统一社会信用代码: 18 characters with a valid check character.
    pub credit_code: Option<String>,
    /// The contact person (sealed; shown masked).
    pub contact_name: Option<String>,
    /// The contact phone, 11-digit mobile or landline (sealed; shown masked).
    pub contact_phone: Option<String>,
    pub address: Option<String>,
    /// The nodes it serves, each where the caller has `manage_supplies` (replaces the list).
    pub served_node_ids: Option<Vec<Uuid>>,
    /// In a patch: active or suspended (a suspended provider's offers cannot be ordered).
    pub status: Option<String>,
}

fn check_served(tx: &mut Tx, caller: &Caller, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    if ids.is_empty() {
        return Err(bad("value.required", "served_node_ids"));
    }
    if ids.len() > 200 {
        return Err(bad("value.too_long", "served_node_ids"));
    }
    let mut out: Vec<Uuid> = Vec::new();
    let reach = manage_reach(caller);
    for id in ids {
        let active = tx.conn().query_i64(
            "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
            &params![*id],
        )? > 0;
        if !active || !reach.contains_node(tx.conn(), *id)? {
            return Err(bad("record.reference_invalid", "served_node_ids"));
        }
        if !out.contains(id) {
            out.push(*id);
        }
    }
    Ok(out)
}

fn set_served(tx: &mut Tx, provider: Uuid, ids: &[Uuid]) -> Result<()> {
    let old = tx.query(
        "SELECT id, node_id FROM provider_nodes WHERE provider_id = $1",
        &params![provider],
    )?;
    let now = tx.now();
    for r in &old {
        let node: Uuid = r.get("node_id")?;
        if !ids.contains(&node) {
            tx.delete("provider_nodes", r.get("id")?)?;
        }
    }
    for n in ids {
        let present = old
            .iter()
            .any(|r| r.get::<Uuid>("node_id").is_ok_and(|x| x == *n));
        if !present {
            let id = tx.new_id();
            tx.insert(
                "provider_nodes",
                &[
                    ("id", id.into()),
                    ("provider_id", provider.into()),
                    ("node_id", (*n).into()),
                    ("created_at", now.into()),
                ],
            )?;
        }
    }
    Ok(())
}

fn sealed_contact(
    tx: &mut Tx,
    key_id: Uuid,
    name: Option<&str>,
    phone: Option<&str>,
) -> Result<Vec<(&'static str, Value)>> {
    let mut cols = Vec::new();
    if let Some(n) = name {
        let n = text(Some(n), "contact_name", 50, false)?;
        if n.is_empty() {
            cols.push(("contact_name_ct", Value::Null));
            cols.push(("contact_name_mask", "".into()));
        } else {
            cols.push((
                "contact_name_ct",
                tx.seal(key_id, CONTACT_NAME_FIELD, n.as_bytes())?.into(),
            ));
            cols.push(("contact_name_mask", mask_name(&n).into()));
        }
    }
    if let Some(p) = phone {
        let p = p.trim();
        if p.is_empty() {
            cols.push(("contact_phone_ct", Value::Null));
            cols.push(("contact_phone_mask", "".into()));
        } else {
            let phone = Phone::parse(p).map_err(|_| bad("value.invalid", "contact_phone"))?;
            cols.push((
                "contact_phone_ct",
                tx.seal(key_id, CONTACT_PHONE_FIELD, phone.as_str().as_bytes())?
                    .into(),
            ));
            cols.push(("contact_phone_mask", mask_phone(&phone).into()));
        }
    }
    Ok(cols)
}

fn credit_taken(tx: &mut Tx, code: &str, except: Option<Uuid>) -> Result<()> {
    let n = tx.conn().query_i64(
        "SELECT count(*) FROM providers WHERE credit_code = $1 AND id <> $2",
        &params![code, except.unwrap_or_else(Uuid::nil)],
    )?;
    if n > 0 {
        return Err(conflict(
            "provider.credit_code_taken",
            "a provider with this credit code is registered",
        ));
    }
    Ok(())
}

/// Register a provider at a node where the caller has `ManageSupplies`.
pub fn create_provider(tx: &mut Tx, caller: &Caller, input: &ProviderInput) -> Result<Provider> {
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let active = tx.conn().query_i64(
        "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
        &params![node],
    )? > 0;
    if !active || !manage_reach(caller).contains_node(tx.conn(), node)? {
        return Err(bad("record.reference_invalid", "node_id"));
    }
    let name = text(input.name.as_deref(), "name", NAME_MAX, true)?;
    let code = CreditCode::parse(
        input
            .credit_code
            .as_deref()
            .ok_or_else(|| bad("value.required", "credit_code"))?,
    )?;
    let address = text(input.address.as_deref(), "address", TEXT_MAX, false)?;
    if input.status.as_deref().is_some_and(|s| s != "active") {
        return Err(bad("value.invalid", "status"));
    }
    let served = check_served(
        tx,
        caller,
        input.served_node_ids.as_deref().unwrap_or(&[node]),
    )?;
    credit_taken(tx, code.as_str(), None)?;
    let key_id = tx.new_data_key()?;
    let contact = sealed_contact(
        tx,
        key_id,
        Some(input.contact_name.as_deref().unwrap_or("")),
        Some(input.contact_phone.as_deref().unwrap_or("")),
    )?;
    let id = tx.new_id();
    let now = tx.now();
    let mut cols: Vec<(&str, Value)> = vec![
        ("id", id.into()),
        ("key_id", key_id.into()),
        ("node_id", node.into()),
        ("name", name.into()),
        ("credit_code", code.as_str().into()),
        ("address", address.into()),
        ("status", "active".into()),
        ("created_by", caller.user_id.into()),
        ("created_at", now.into()),
        ("updated_at", now.into()),
    ];
    cols.extend(contact);
    tx.insert("providers", &cols)?;
    set_served(tx, id, &served)?;
    get_provider(tx.conn(), &Caller::system(), id)
}

/// Nodes where the caller may register a provider or name one served: streets and communities
/// in its `ManageSupplies` reach, by name (at most 500).
pub fn node_options(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let mut params = Vec::new();
    let pred = manage_reach(caller).predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT n.id, n.name FROM nodes n WHERE n.status = 'active' \
             AND n.level IN ('district', 'street', 'community') AND {pred} ORDER BY n.name LIMIT 500"
        ),
        &params,
    )?
    .iter()
    .map(|r| Ok((r.get("id")?, r.get("name")?)))
    .collect()
}

/// Whether the caller may order to, cancel, receive and close orders at `node`.
pub fn manages(conn: &mut dyn Conn, caller: &Caller, node: Uuid) -> Result<bool> {
    manage_reach(caller).contains_node(conn, node)
}

/// Staff may change the provider when it was registered inside their `ManageSupplies` reach.
fn check_manage_provider(tx: &mut Tx, caller: &Caller, p: &Provider) -> Result<()> {
    if manage_reach(caller).contains_node(tx.conn(), p.node_id)? {
        Ok(())
    } else {
        Err(StoreError::Forbidden("provider.not_allowed"))
    }
}

/// Change what is given of a provider.
pub fn edit_provider(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: &ProviderInput,
) -> Result<Provider> {
    let p = get_provider(tx.conn(), caller, id)?;
    check_manage_provider(tx, caller, &p)?;
    if patch.node_id.is_some_and(|n| n != p.node_id) {
        return Err(bad("provider.node_fixed", "node_id"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.name.is_some() {
        cols.push((
            "name",
            text(patch.name.as_deref(), "name", NAME_MAX, true)?.into(),
        ));
    }
    if let Some(c) = patch.credit_code.as_deref() {
        let code = CreditCode::parse(c)?;
        credit_taken(tx, code.as_str(), Some(id))?;
        cols.push(("credit_code", code.as_str().into()));
    }
    if patch.address.is_some() {
        cols.push((
            "address",
            text(patch.address.as_deref(), "address", TEXT_MAX, false)?.into(),
        ));
    }
    if let Some(s) = patch.status.as_deref() {
        if !matches!(s, "active" | "suspended") {
            return Err(bad("value.invalid", "status"));
        }
        cols.push(("status", s.into()));
    }
    let served = match patch.served_node_ids.as_deref() {
        Some(ids) => Some(check_served(tx, caller, ids)?),
        None => None,
    };
    if patch.contact_name.is_some() || patch.contact_phone.is_some() {
        let key_id: Uuid = tx
            .query_one("SELECT key_id FROM providers WHERE id = $1", &params![id])?
            .ok_or(StoreError::NotFound)?
            .get("key_id")?;
        cols.extend(sealed_contact(
            tx,
            key_id,
            patch.contact_name.as_deref(),
            patch.contact_phone.as_deref(),
        )?);
    }
    cols.push(("updated_at", tx.now().into()));
    tx.update("providers", id, &cols)?;
    if let Some(s) = served {
        set_served(tx, id, &s)?;
    }
    get_provider(tx.conn(), &Caller::system(), id)
}

/// An account that speaks for a provider.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ProviderAccount {
    /// The link's id.
    pub id: Uuid,
    pub provider_id: Uuid,
    pub account_id: Uuid,
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// Which account to link: by id or by username.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLinkInput {
    pub account_id: Option<Uuid>,
    pub username: Option<String>,
}

/// The accounts that speak for a provider the caller may read.
pub fn provider_accounts(
    conn: &mut dyn Conn,
    caller: &Caller,
    provider: Uuid,
) -> Result<Vec<ProviderAccount>> {
    get_provider(conn, caller, provider)?;
    conn.query(
        "SELECT a.id, a.provider_id, a.account_id, a.created_at, u.username FROM provider_accounts a \
         JOIN users u ON u.id = a.account_id WHERE a.provider_id = $1 ORDER BY u.username",
        &params![provider],
    )?
    .iter()
    .map(|r| {
        Ok(ProviderAccount {
            id: r.get("id")?,
            provider_id: r.get("provider_id")?,
            account_id: r.get("account_id")?,
            username: r.get::<Option<String>>("username")?.unwrap_or_default(),
            created_at: r.get("created_at")?,
        })
    })
    .collect()
}

/// Link an account to a provider. The account is made by the security administrator, as any
/// account: it must be a staff account holding a valid `provider` grant and no other role
/// (`provider.account_not_provider`), and speak for no other provider
/// (`provider.account_linked`).
pub fn link_account(
    tx: &mut Tx,
    caller: &Caller,
    provider: Uuid,
    input: &AccountLinkInput,
) -> Result<ProviderAccount> {
    let p = get_provider(tx.conn(), caller, provider)?;
    check_manage_provider(tx, caller, &p)?;
    let row = match (input.account_id, input.username.as_deref()) {
        (Some(id), _) => tx.query_one("SELECT id, kind FROM users WHERE id = $1", &params![id])?,
        (None, Some(u)) if !u.trim().is_empty() => tx.query_one(
            "SELECT id, kind FROM users WHERE username = $1",
            &params![u.trim()],
        )?,
        _ => return Err(bad("value.required", "username")),
    };
    let field = if input.account_id.is_some() {
        "account_id"
    } else {
        "username"
    };
    let row = row.ok_or_else(|| bad("record.reference_invalid", field))?;
    let account: Uuid = row.get("id")?;
    let kind: String = row.get("kind")?;
    let now = tx.now();
    let roles: Vec<String> = tx
        .query(
            "SELECT DISTINCT role FROM grants WHERE user_id = $1 AND revoked_at IS NULL \
             AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
            &params![account, now],
        )?
        .iter()
        .map(|r| r.get("role"))
        .collect::<Result<_>>()?;
    if kind != "staff" || roles.is_empty() || roles.iter().any(|r| r != "provider") {
        return Err(bad("provider.account_not_provider", field));
    }
    let taken = tx.conn().query_i64(
        "SELECT count(*) FROM provider_accounts WHERE account_id = $1",
        &params![account],
    )?;
    if taken > 0 {
        return Err(conflict(
            "provider.account_linked",
            "the account already speaks for a provider",
        ));
    }
    let id = tx.new_id();
    tx.insert(
        "provider_accounts",
        &[
            ("id", id.into()),
            ("provider_id", provider.into()),
            ("account_id", account.into()),
            ("node_id", p.node_id.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
        ],
    )?;
    provider_accounts(tx.conn(), &Caller::system(), provider)?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or(StoreError::NotFound)
}

/// Unlink an account (the link's id).
pub fn unlink_account(tx: &mut Tx, caller: &Caller, link: Uuid) -> Result<()> {
    let provider: Uuid = tx
        .query_one(
            "SELECT provider_id FROM provider_accounts WHERE id = $1",
            &params![link],
        )?
        .ok_or(StoreError::NotFound)?
        .get("provider_id")?;
    let p = get_provider(tx.conn(), caller, provider)?;
    check_manage_provider(tx, caller, &p)?;
    tx.delete("provider_accounts", link)
}

// ---- offers ------------------------------------------------------------------------------------

/// An offer: what a provider can supply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub provider_name: String,
    pub item_id: Uuid,
    /// The catalogue code (mask, water, noodles …).
    pub item_code: String,
    pub item_name: String,
    pub item_unit: String,
    pub quantity_available: i64,
    /// Unit price in fen (分).
    pub unit_price_fen: i64,
    pub lead_time_hours: i64,
    /// The last day the offer holds.
    pub valid_until: NaiveDate,
    /// The last day has passed.
    pub expired: bool,
    pub note: String,
    /// active, withdrawn
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const OFFER_COLS: &str = "f.id, f.provider_id, f.item_id, f.quantity_available, f.unit_price_fen, \
    f.lead_time_hours, f.valid_until, f.note, f.status, f.created_at, f.updated_at, \
    p.name AS provider_name, i.code AS item_code, i.name AS item_name, i.unit AS item_unit";
const OFFER_FROM: &str = "supply_offers f JOIN providers p ON p.id = f.provider_id \
    JOIN supply_items i ON i.id = f.item_id";

fn offer_from_row(r: &Row, today: NaiveDate) -> Result<Offer> {
    let until: NaiveDate = r.get("valid_until")?;
    Ok(Offer {
        id: r.get("id")?,
        provider_id: r.get("provider_id")?,
        provider_name: r.get("provider_name")?,
        item_id: r.get("item_id")?,
        item_code: r.get("item_code")?,
        item_name: r.get("item_name")?,
        item_unit: r.get("item_unit")?,
        quantity_available: r.get("quantity_available")?,
        unit_price_fen: r.get("unit_price_fen")?,
        lead_time_hours: r.get("lead_time_hours")?,
        valid_until: until,
        expired: until < today,
        note: r.get("note")?,
        status: r.get("status")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// An offer the caller may read.
pub fn get_offer(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer> {
    let mut params = vec![Value::Uuid(id)];
    let pred = provider_pred(conn, caller, "f.provider_id", &mut params)?;
    let row = conn
        .query_one(
            &format!("SELECT {OFFER_COLS} FROM {OFFER_FROM} WHERE f.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    offer_from_row(&row, local_day(now))
}

/// Offer list filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfferQuery {
    /// One provider's offers.
    pub provider_id: Option<Uuid>,
    /// One catalogue item (its code).
    pub item_code: Option<String>,
    /// active (default), withdrawn or all.
    pub status: Option<String>,
}

/// Offers the caller may read: its own (a provider) or those of providers serving its nodes.
pub fn list_offers(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &OfferQuery,
    now: DateTime<Utc>,
) -> Result<Vec<Offer>> {
    let mut params = Vec::new();
    let mut parts = vec![provider_pred(conn, caller, "f.provider_id", &mut params)?];
    match q.status.as_deref().unwrap_or("active") {
        "all" => {}
        s @ ("active" | "withdrawn") => {
            params.push(s.into());
            parts.push(format!("f.status = ${}", params.len()));
        }
        _ => return Err(bad("value.invalid", "status")),
    }
    if let Some(p) = q.provider_id {
        params.push(p.into());
        parts.push(format!("f.provider_id = ${}", params.len()));
    }
    if let Some(c) = q.item_code.as_deref() {
        params.push(text(Some(c), "item_code", 50, true)?.into());
        parts.push(format!("i.code = ${}", params.len()));
    }
    let today = local_day(now);
    conn.query(
        &format!(
            "SELECT {OFFER_COLS} FROM {OFFER_FROM} WHERE {} \
             ORDER BY i.code, f.unit_price_fen, f.id LIMIT 2000",
            parts.join(" AND ")
        ),
        &params,
    )?
    .iter()
    .map(|r| offer_from_row(r, today))
    .collect()
}

/// A new offer, or what to change of one (a patch: only what is given).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    /// A catalogue item by id …
    pub item_id: Option<Uuid>,
    /// … or by code (mask, water, noodles …); fixed once created.
    pub item_code: Option<String>,
    /// 0–100,000,000.
    pub quantity_available: Option<i64>,
    /// Unit price in fen, 0–100,000,000,000.
    pub unit_price_fen: Option<i64>,
    /// Hours from confirmation to delivery, 0–8,760.
    pub lead_time_hours: Option<i64>,
    /// `YYYY-MM-DD`, not before today.
    pub valid_until: Option<String>,
    pub note: Option<String>,
}

fn catalogue_item(tx: &mut Tx, input: &OfferInput) -> Result<Uuid> {
    let (row, field) = match (input.item_id, input.item_code.as_deref()) {
        (Some(id), _) => (
            tx.query_one(
                "SELECT id FROM supply_items WHERE id = $1 AND node_id IS NULL",
                &params![id],
            )?,
            "item_id",
        ),
        (None, Some(c)) => (
            tx.query_one(
                "SELECT id FROM supply_items WHERE code = $1 AND node_id IS NULL",
                &params![c.trim()],
            )?,
            "item_code",
        ),
        (None, None) => return Err(bad("value.required", "item_code")),
    };
    row.ok_or_else(|| bad("record.reference_invalid", field))?
        .get("id")
}

fn range(v: Option<i64>, field: &'static str, max: i64) -> Result<i64> {
    match v {
        None => Err(bad("value.required", field)),
        Some(n) if (0..=max).contains(&n) => Ok(n),
        Some(_) => Err(bad("value.out_of_range", field)),
    }
}

fn valid_until(raw: Option<&str>, today: NaiveDate) -> Result<NaiveDate> {
    let d = date(raw, "valid_until")?.ok_or_else(|| bad("value.required", "valid_until"))?;
    if d < today {
        return Err(bad("offer.valid_until_past", "valid_until"));
    }
    Ok(d)
}

/// Publish an offer for the provider the caller speaks for.
pub fn create_offer(tx: &mut Tx, caller: &Caller, input: &OfferInput) -> Result<Offer> {
    let provider = speaking_for(tx.conn(), caller)?;
    let row = tx
        .query_one(
            "SELECT node_id, status FROM providers WHERE id = $1",
            &params![provider],
        )?
        .ok_or(StoreError::NotFound)?;
    if row.get::<String>("status")? != "active" {
        return Err(StoreError::Forbidden("provider.suspended"));
    }
    let node: Uuid = row.get("node_id")?;
    let item = catalogue_item(tx, input)?;
    let now = tx.now();
    let qty = range(input.quantity_available, "quantity_available", MAX_QUANTITY)?;
    let price = range(input.unit_price_fen, "unit_price_fen", MAX_PRICE_FEN)?;
    let lead = range(input.lead_time_hours, "lead_time_hours", MAX_LEAD_HOURS)?;
    let until = valid_until(input.valid_until.as_deref(), local_day(now))?;
    let note = text(input.note.as_deref(), "note", TEXT_MAX, false)?;
    let id = tx.new_id();
    tx.insert(
        "supply_offers",
        &[
            ("id", id.into()),
            ("provider_id", provider.into()),
            ("node_id", node.into()),
            ("item_id", item.into()),
            ("quantity_available", qty.into()),
            ("unit_price_fen", price.into()),
            ("lead_time_hours", lead.into()),
            ("valid_until", until.into()),
            ("note", note.into()),
            ("status", "active".into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    get_offer(tx.conn(), caller, id, now)
}

/// The offer, read by the caller, must be its provider's own to change.
fn own_offer(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Offer> {
    let now = tx.now();
    let offer = get_offer(tx.conn(), caller, id, now)?;
    if !own_providers(tx.conn(), caller)?.contains(&offer.provider_id) {
        return Err(StoreError::Forbidden("offer.not_own"));
    }
    Ok(offer)
}

/// Change what is given of an offer (its own provider only; not a withdrawn one).
pub fn edit_offer(tx: &mut Tx, caller: &Caller, id: Uuid, patch: &OfferInput) -> Result<Offer> {
    let offer = own_offer(tx, caller, id)?;
    if offer.status != "active" {
        return Err(conflict(
            "offer.withdrawn",
            "a withdrawn offer is not changed",
        ));
    }
    if patch.item_id.is_some_and(|i| i != offer.item_id)
        || patch
            .item_code
            .as_deref()
            .is_some_and(|c| c.trim() != offer.item_code)
    {
        return Err(bad("offer.item_fixed", "item_code"));
    }
    let now = tx.now();
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.quantity_available.is_some() {
        cols.push((
            "quantity_available",
            range(patch.quantity_available, "quantity_available", MAX_QUANTITY)?.into(),
        ));
    }
    if patch.unit_price_fen.is_some() {
        cols.push((
            "unit_price_fen",
            range(patch.unit_price_fen, "unit_price_fen", MAX_PRICE_FEN)?.into(),
        ));
    }
    if patch.lead_time_hours.is_some() {
        cols.push((
            "lead_time_hours",
            range(patch.lead_time_hours, "lead_time_hours", MAX_LEAD_HOURS)?.into(),
        ));
    }
    if patch.valid_until.is_some() {
        cols.push((
            "valid_until",
            valid_until(patch.valid_until.as_deref(), local_day(now))?.into(),
        ));
    }
    if patch.note.is_some() {
        cols.push((
            "note",
            text(patch.note.as_deref(), "note", TEXT_MAX, false)?.into(),
        ));
    }
    cols.push(("updated_at", now.into()));
    tx.update("supply_offers", id, &cols)?;
    get_offer(tx.conn(), caller, id, now)
}

/// Withdraw an offer (orders already placed stand).
pub fn withdraw_offer(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Offer> {
    let offer = own_offer(tx, caller, id)?;
    if offer.status != "active" {
        return Err(conflict(
            "offer.withdrawn",
            "the offer is already withdrawn",
        ));
    }
    let now = tx.now();
    tx.update(
        "supply_offers",
        id,
        &[("status", "withdrawn".into()), ("updated_at", now.into())],
    )?;
    get_offer(tx.conn(), caller, id, now)
}

// ---- orders ------------------------------------------------------------------------------------

/// (code, zh-CN, English) of each order state.
pub const ORDER_STATES: &[(&str, &str, &str)] = &[
    ("placed", "已下单", "Placed"),
    ("confirmed", "已确认", "Confirmed"),
    ("declined", "已拒绝", "Declined"),
    ("cancelled", "已取消", "Cancelled"),
    ("partially_delivered", "部分送达", "Partly delivered"),
    ("delivered", "已送达", "Delivered"),
    ("received", "已入库", "Received"),
    ("closed", "已关闭", "Closed"),
];

/// One step of an order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct OrderEvent {
    pub id: Uuid,
    /// place, confirm, decline, cancel, deliver, receive, close
    pub action: String,
    pub quantity: Option<i64>,
    pub note: String,
    pub actor: Option<Uuid>,
    /// The actor's username.
    pub actor_username: String,
    pub at: DateTime<Utc>,
}

/// An order placed with a provider.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: Uuid,
    pub offer_id: Uuid,
    pub provider_id: Uuid,
    pub provider_name: String,
    /// The ordering node (the depot's).
    pub node_id: Uuid,
    pub node_name: String,
    /// The depot (a facility) it is delivered to.
    pub depot_id: Uuid,
    pub depot_name: String,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub item_unit: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    /// quantity × unit price.
    pub total_fen: i64,
    pub delivered_quantity: i64,
    pub received_quantity: i64,
    pub wanted_by: NaiveDate,
    /// placed, confirmed, declined, cancelled, partially_delivered, delivered, received, closed
    pub status: String,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The steps so far, oldest first (in a single order; empty in lists).
    pub events: Vec<OrderEvent>,
}

const ORDER_COLS: &str = "o.id, o.offer_id, o.provider_id, o.node_id, o.depot_id, o.item_id, \
    o.quantity, o.unit_price_fen, o.delivered_quantity, o.received_quantity, o.wanted_by, \
    o.status, o.note, o.created_at, o.updated_at, p.name AS provider_name, \
    n.name AS node_name, fa.name AS depot_name, i.code AS item_code, i.name AS item_name, \
    i.unit AS item_unit";
const ORDER_FROM: &str = "supply_orders o JOIN providers p ON p.id = o.provider_id \
    JOIN nodes n ON n.id = o.node_id JOIN facilities fa ON fa.id = o.depot_id \
    JOIN supply_items i ON i.id = o.item_id";

fn order_from_row(r: &Row) -> Result<Order> {
    let quantity: i64 = r.get("quantity")?;
    let price: i64 = r.get("unit_price_fen")?;
    Ok(Order {
        id: r.get("id")?,
        offer_id: r.get("offer_id")?,
        provider_id: r.get("provider_id")?,
        provider_name: r.get("provider_name")?,
        node_id: r.get("node_id")?,
        node_name: r.get("node_name")?,
        depot_id: r.get("depot_id")?,
        depot_name: r.get("depot_name")?,
        item_id: r.get("item_id")?,
        item_code: r.get("item_code")?,
        item_name: r.get("item_name")?,
        item_unit: r.get("item_unit")?,
        quantity,
        unit_price_fen: price,
        total_fen: quantity.saturating_mul(price),
        delivered_quantity: r.get("delivered_quantity")?,
        received_quantity: r.get("received_quantity")?,
        wanted_by: r.get("wanted_by")?,
        status: r.get("status")?,
        note: r.get("note")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        events: Vec::new(),
    })
}

fn events_of(conn: &mut dyn Conn, order: Uuid) -> Result<Vec<OrderEvent>> {
    conn.query(
        "SELECT e.*, u.username FROM supply_order_events e LEFT JOIN users u ON u.id = e.actor \
         WHERE e.order_id = $1 ORDER BY e.seq",
        &params![order],
    )?
    .iter()
    .map(|r| {
        Ok(OrderEvent {
            id: r.get("id")?,
            action: r.get("action")?,
            quantity: r.get("quantity")?,
            note: r.get("note")?,
            actor: r.get("actor")?,
            actor_username: r.get::<Option<String>>("username")?.unwrap_or_default(),
            at: r.get("at")?,
        })
    })
    .collect()
}

/// An order the caller may read, with its steps.
pub fn get_order(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Order> {
    let mut params = vec![Value::Uuid(id)];
    let pred = order_pred(conn, caller, &mut params)?;
    let row = conn
        .query_one(
            &format!("SELECT {ORDER_COLS} FROM {ORDER_FROM} WHERE o.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let mut o = order_from_row(&row)?;
    o.events = events_of(conn, id)?;
    Ok(o)
}

/// Order list filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// One state.
    pub status: Option<String>,
    /// Only open orders (not declined, cancelled or closed).
    pub open: Option<bool>,
    pub provider_id: Option<Uuid>,
}

/// Orders the caller may read, newest first.
pub fn list_orders(conn: &mut dyn Conn, caller: &Caller, q: &OrderQuery) -> Result<Vec<Order>> {
    let mut params = Vec::new();
    let mut parts = vec![order_pred(conn, caller, &mut params)?];
    if let Some(s) = q.status.as_deref() {
        if !ORDER_STATES.iter().any(|(c, ..)| *c == s) {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        parts.push(format!("o.status = ${}", params.len()));
    }
    if let Some(open) = q.open {
        parts.push(format!(
            "o.status {} ('declined', 'cancelled', 'closed')",
            if open { "NOT IN" } else { "IN" }
        ));
    }
    if let Some(p) = q.provider_id {
        params.push(p.into());
        parts.push(format!("o.provider_id = ${}", params.len()));
    }
    conn.query(
        &format!(
            "SELECT {ORDER_COLS} FROM {ORDER_FROM} WHERE {} \
             ORDER BY o.created_at DESC, o.id DESC LIMIT 2000",
            parts.join(" AND ")
        ),
        &params,
    )?
    .iter()
    .map(order_from_row)
    .collect()
}

/// A new order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// An active, unexpired offer of a provider serving the depot's node.
    pub offer_id: Option<Uuid>,
    /// A supply depot (facility) where the caller has `manage_supplies`.
    pub depot_id: Option<Uuid>,
    /// 1 … the offer's quantity available.
    pub quantity: Option<i64>,
    /// `YYYY-MM-DD`, not before today.
    pub wanted_by: Option<String>,
    pub note: Option<String>,
}

/// Supply depots where the caller may order to: (id, name, node name).
pub fn depot_options(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let mut params = Vec::new();
    let pred = manage_reach(caller).predicate(
        conn.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT f.id, f.name, n.name AS node_name FROM facilities f JOIN nodes n ON n.id = f.node_id \
             WHERE f.kind = 'supply_depot' AND f.status = 'active' AND {pred} \
             ORDER BY n.name, f.name LIMIT 500"
        ),
        &params,
    )?
    .iter()
    .map(|r| {
        let name: String = r.get("name")?;
        let node: String = r.get("node_name")?;
        Ok((r.get("id")?, format!("{node} · {name}")))
    })
    .collect()
}

fn add_event(
    tx: &mut Tx,
    caller: &Caller,
    order: &Order,
    action: &str,
    qty: Option<i64>,
    note: &str,
) -> Result<()> {
    let id = tx.new_id();
    let now = tx.now();
    let seq = tx.conn().query_i64(
        "SELECT count(*) FROM supply_order_events WHERE order_id = $1",
        &params![order.id],
    )? + 1;
    tx.insert(
        "supply_order_events",
        &[
            ("id", id.into()),
            ("order_id", order.id.into()),
            ("seq", seq.into()),
            ("node_id", order.node_id.into()),
            ("action", action.into()),
            ("quantity", qty.into()),
            ("note", note.into()),
            ("actor", caller.user_id.into()),
            ("at", now.into()),
        ],
    )?;
    Ok(())
}

/// Place an order from an offer, delivered to a depot of the caller's.
pub fn place_order(tx: &mut Tx, caller: &Caller, input: &OrderInput) -> Result<Order> {
    let now = tx.now();
    let today = local_day(now);
    let offer_id = input
        .offer_id
        .ok_or_else(|| bad("value.required", "offer_id"))?;
    let offer = match get_offer(tx.conn(), caller, offer_id, now) {
        Ok(o) => o,
        Err(StoreError::NotFound) => return Err(bad("record.reference_invalid", "offer_id")),
        Err(e) => return Err(e),
    };
    let depot_id = input
        .depot_id
        .ok_or_else(|| bad("value.required", "depot_id"))?;
    let depot = tx.query_one(
        "SELECT node_id FROM facilities WHERE id = $1 AND kind = 'supply_depot' AND status = 'active'",
        &params![depot_id],
    )?;
    let depot_node: Uuid = match depot {
        Some(r) => r.get("node_id")?,
        None => return Err(bad("record.reference_invalid", "depot_id")),
    };
    if !manage_reach(caller).contains_node(tx.conn(), depot_node)? {
        return Err(bad("record.reference_invalid", "depot_id"));
    }
    let qty = quantity(input.quantity, "quantity")?;
    let wanted = date(input.wanted_by.as_deref(), "wanted_by")?
        .ok_or_else(|| bad("value.required", "wanted_by"))?;
    if wanted < today {
        return Err(bad("order.wanted_by_past", "wanted_by"));
    }
    let note = text(input.note.as_deref(), "note", TEXT_MAX, false)?;
    let served: Vec<Uuid> = served_of(tx.conn(), offer.provider_id)?
        .iter()
        .map(|s| s.id)
        .collect();
    let serves = Reach {
        nodes: served,
        ..Reach::default()
    };
    if !serves.contains_node(tx.conn(), depot_node)? {
        return Err(bad("order.depot_not_served", "depot_id"));
    }
    let status: String = tx
        .query_one(
            "SELECT status FROM providers WHERE id = $1",
            &params![offer.provider_id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("status")?;
    if status != "active" {
        return Err(conflict("provider.suspended", "the provider is suspended"));
    }
    if offer.status != "active" {
        return Err(conflict("offer.withdrawn", "the offer is withdrawn"));
    }
    if offer.expired {
        return Err(conflict("offer.expired", "the offer's last day has passed"));
    }
    if qty > offer.quantity_available {
        return Err(bad("order.over_available", "quantity"));
    }
    // Take the goods from the offer only if they are still there (a concurrent order may have
    // taken them since the read).
    let taken = tx.update_where(
        "supply_offers",
        &[
            (
                "quantity_available",
                (offer.quantity_available - qty).into(),
            ),
            ("updated_at", now.into()),
        ],
        "id = $1 AND quantity_available = $2",
        &params![offer_id, offer.quantity_available],
    )?;
    if taken.is_empty() {
        return Err(bad("order.over_available", "quantity"));
    }
    let id = tx.new_id();
    tx.insert(
        "supply_orders",
        &[
            ("id", id.into()),
            ("offer_id", offer_id.into()),
            ("provider_id", offer.provider_id.into()),
            ("node_id", depot_node.into()),
            ("depot_id", depot_id.into()),
            ("item_id", offer.item_id.into()),
            ("quantity", qty.into()),
            ("unit_price_fen", offer.unit_price_fen.into()),
            ("delivered_quantity", 0i64.into()),
            ("received_quantity", 0i64.into()),
            ("wanted_by", wanted.into()),
            ("status", "placed".into()),
            ("note", note.clone().into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let order = get_order(tx.conn(), &Caller::system(), id)?;
    add_event(tx, caller, &order, "place", Some(qty), &note)?;
    get_order(tx.conn(), &Caller::system(), id)
}

/// A step on an order: a note, and for deliveries and receipts how much (default: all that is
/// left) and, for a receipt, the lot's expiry date.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderStepInput {
    pub note: Option<String>,
    /// deliver: 1 … what is left to deliver; receive: 1 … delivered and not yet received.
    pub quantity: Option<i64>,
    /// receive: the lot's expiry date, `YYYY-MM-DD` (default: the item's shelf life from today).
    pub expires_on: Option<String>,
}

/// The steps of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Confirm,
    Decline,
    Deliver,
    Cancel,
    Receive,
    Close,
}

impl Step {
    pub fn action(self) -> &'static str {
        match self {
            Step::Confirm => "confirm",
            Step::Decline => "decline",
            Step::Deliver => "deliver",
            Step::Cancel => "cancel",
            Step::Receive => "receive",
            Step::Close => "close",
        }
    }

    /// Whether the provider's side takes this step (else the community's).
    pub fn by_provider(self) -> bool {
        matches!(self, Step::Confirm | Step::Decline | Step::Deliver)
    }
}

/// Take a step on an order, as the side it belongs to.
pub fn step(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    step: Step,
    input: &OrderStepInput,
) -> Result<Order> {
    let order = get_order(tx.conn(), caller, id)?;
    let right_side = if step.by_provider() {
        own_providers(tx.conn(), caller)?.contains(&order.provider_id)
    } else {
        manage_reach(caller).contains_node(tx.conn(), order.node_id)?
    };
    if !right_side {
        return Err(StoreError::Forbidden("order.wrong_side"));
    }
    let note = text(input.note.as_deref(), "note", TEXT_MAX, false)?;
    if input.quantity.is_some() && !matches!(step, Step::Deliver | Step::Receive) {
        return Err(bad("value.invalid", "quantity"));
    }
    if input.expires_on.is_some() && step != Step::Receive {
        return Err(bad("value.invalid", "expires_on"));
    }
    let wrong_state = || {
        conflict(
            "order.wrong_state",
            "the order's state does not allow this step",
        )
    };
    let now = tx.now();
    let s = order.status.as_str();
    let mut cols: Vec<(&str, Value)> = Vec::new();
    let mut qty = None;
    match step {
        Step::Confirm | Step::Decline | Step::Cancel => {
            if s != "placed" {
                return Err(wrong_state());
            }
            let to = match step {
                Step::Confirm => "confirmed",
                Step::Decline => "declined",
                _ => "cancelled",
            };
            cols.push(("status", to.into()));
            if to != "confirmed" {
                give_back(tx, &order)?;
            }
        }
        Step::Deliver => {
            if !matches!(s, "confirmed" | "partially_delivered") {
                return Err(wrong_state());
            }
            let left = order.quantity - order.delivered_quantity;
            let q = input.quantity.unwrap_or(left);
            if q < 1 {
                return Err(bad("value.out_of_range", "quantity"));
            }
            if q > left {
                return Err(bad("order.over_delivery", "quantity"));
            }
            let delivered = order.delivered_quantity + q;
            cols.push(("delivered_quantity", delivered.into()));
            cols.push((
                "status",
                if delivered == order.quantity {
                    "delivered"
                } else {
                    "partially_delivered"
                }
                .into(),
            ));
            qty = Some(q);
        }
        Step::Receive => {
            let waiting = order.delivered_quantity - order.received_quantity;
            if !matches!(s, "partially_delivered" | "delivered") || waiting == 0 {
                return Err(wrong_state());
            }
            let q = input.quantity.unwrap_or(waiting);
            if q < 1 {
                return Err(bad("value.out_of_range", "quantity"));
            }
            if q > waiting {
                return Err(bad("order.over_receipt", "quantity"));
            }
            let expires = date(input.expires_on.as_deref(), "expires_on")?;
            let received = order.received_quantity + q;
            cols.push(("received_quantity", received.into()));
            if received == order.quantity {
                cols.push(("status", "received".into()));
            }
            book_receipt(tx, &order, q, expires, &note)?;
            qty = Some(q);
        }
        Step::Close => {
            // Closed once all is received, or short: all that came is received and the provider
            // delivers no more.
            let short_done = matches!(s, "partially_delivered")
                && order.received_quantity == order.delivered_quantity;
            if s != "received" && !short_done {
                return Err(wrong_state());
            }
            cols.push(("status", "closed".into()));
        }
    }
    cols.push(("updated_at", now.into()));
    // Only from the state read above: a step that raced this one and landed first makes this
    // one a conflict, not a second step on stale quantities.
    let changed = tx.update_where(
        "supply_orders",
        &cols,
        "id = $1 AND status = $2 AND delivered_quantity = $3 AND received_quantity = $4",
        &params![
            id,
            order.status.as_str(),
            order.delivered_quantity,
            order.received_quantity
        ],
    )?;
    if changed.is_empty() {
        return Err(wrong_state());
    }
    add_event(tx, caller, &order, step.action(), qty, &note)?;
    get_order(tx.conn(), &Caller::system(), id)
}

/// A cancelled or declined order's quantity goes back to its offer.
fn give_back(tx: &mut Tx, order: &Order) -> Result<()> {
    let now = tx.now();
    let current: i64 = tx
        .query_one(
            "SELECT quantity_available FROM supply_offers WHERE id = $1",
            &params![order.offer_id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("quantity_available")?;
    tx.update(
        "supply_offers",
        order.offer_id,
        &[
            (
                "quantity_available",
                current
                    .saturating_add(order.quantity)
                    .min(MAX_QUANTITY)
                    .into(),
            ),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(())
}

/// Book a receipt into the order's depot: a receive movement referencing the order, in this
/// transaction.
fn book_receipt(
    tx: &mut Tx,
    order: &Order,
    qty: i64,
    expires_on: Option<NaiveDate>,
    note: &str,
) -> Result<()> {
    let expires_on = match expires_on {
        Some(d) => Some(d),
        // Default: the item's shelf life from today (goods without one have no expiry).
        None => {
            let days: Option<i64> = tx
                .query_one(
                    "SELECT shelf_life_days FROM supply_items WHERE id = $1",
                    &params![order.item_id],
                )?
                .ok_or(StoreError::NotFound)?
                .get("shelf_life_days")?;
            let today = local_day(tx.now());
            days.and_then(|d| u64::try_from(d).ok())
                .and_then(|d| today.checked_add_days(chrono::Days::new(d)))
        }
    };
    let mut m = NewMovement::new(MovementKind::Receive, order.item_id, order.depot_id, qty);
    m.expires_on = expires_on;
    m.reference_kind = Some("order");
    m.reference_id = Some(order.id);
    m.note = (!note.is_empty()).then(|| note.to_owned());
    reserves::post(tx, &m)?;
    Ok(())
}

// ---- notices (read after commit by `anxin::supplies::notices`) ---------------------------------

/// An order as its notices describe it (no scope check: the caller has just taken a step on it).
pub fn notice_order(conn: &mut dyn Conn, id: Uuid) -> Result<Order> {
    get_order(conn, &Caller::system(), id)
}

/// Phones that reach a provider: the duty phone of each account linked to it, one per account
/// (username order); when no account has one, the provider's registered contact phone. (phone,
/// mask) pairs, opened.
pub fn provider_phones(
    conn: &mut dyn Conn,
    env: &crate::Env,
    provider: Uuid,
) -> Result<Vec<(String, String)>> {
    let accounts = conn.query(
        "SELECT a.account_id FROM provider_accounts a JOIN users u ON u.id = a.account_id \
         WHERE a.provider_id = $1 AND u.disabled = $2 ORDER BY u.username, a.account_id",
        &params![provider, false],
    )?;
    let mut out: Vec<(String, String)> = Vec::new();
    for r in accounts {
        let user: Uuid = r.get("account_id")?;
        let Some(duty) = conn.query_one(
            "SELECT phone_ct, phone_mask FROM duties WHERE user_id = $1 AND phone_ct IS NOT NULL \
             ORDER BY updated_at DESC, id LIMIT 1",
            &params![user],
        )?
        else {
            continue;
        };
        let ct: Vec<u8> = duty.get("phone_ct")?;
        let phone = env.keys.open_string(conn, "duties.phone", &ct)?;
        if out.iter().all(|(p, _)| *p != phone) {
            let mask: Option<String> = duty.get("phone_mask")?;
            out.push((phone, mask.unwrap_or_default()));
        }
    }
    if out.is_empty() {
        if let Some(r) = conn.query_one(
            "SELECT contact_phone_ct, contact_phone_mask FROM providers WHERE id = $1 \
             AND status = 'active' AND contact_phone_ct IS NOT NULL",
            &params![provider],
        )? {
            let ct: Vec<u8> = r.get("contact_phone_ct")?;
            out.push((
                env.keys.open_string(conn, CONTACT_PHONE_FIELD, &ct)?,
                r.get("contact_phone_mask")?,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes() {
        // Published examples with valid check characters.
        let ok = with_check_char("91510104MA6CXXXX0").expect("17 valid characters");
        assert!(CreditCode::parse(&ok).is_ok());
        assert_eq!(
            CreditCode::parse(&ok.to_ascii_lowercase())
                .expect("lower case")
                .as_str(),
            ok
        );
        // Change the check character: refused as a wrong check.
        let mut wrong = ok[..17].to_owned();
        let last = ok.chars().last().expect("18");
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            CreditCode::parse(&wrong),
            Err(StoreError::Invalid {
                code: "provider.credit_code_check",
                ..
            })
        ));
        for bad_code in ["", "9151010", "91510104MA6CXXXXOX", "9151A104MA6CXXXX01"] {
            assert!(matches!(
                CreditCode::parse(bad_code),
                Err(StoreError::Invalid {
                    code: "provider.credit_code_invalid",
                    ..
                })
            ));
        }
        // A known real-world code (a public company's published code) passes.
        assert!(CreditCode::parse("91350100M000100Y43").is_ok());
    }

    #[test]
    fn steps_belong_to_one_side() {
        for s in [Step::Confirm, Step::Decline, Step::Deliver] {
            assert!(s.by_provider());
        }
        for s in [Step::Cancel, Step::Receive, Step::Close] {
            assert!(!s.by_provider());
        }
    }
}
