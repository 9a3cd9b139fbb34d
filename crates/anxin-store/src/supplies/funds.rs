//! The emergency fund ledger (应急资金) (owner: fund ledger).
//!
//! **Accounts.** One fund account per community (or street), opened by whoever manages funds
//! there. `published` puts it on the public page (居务公开); an account not published is seen by
//! staff only.
//!
//! **Entries.** Income by source kind and spending by category (`anxin_domain::fund`), each with
//! an amount in fen (1 fen to 10 million yuan), the date it happened (Asia/Shanghai, not in the
//! future), a description, the payer or payee, the role the recorder acted in, and optionally the
//! incident or supplies order it belongs to (checked to exist within the caller's reach). A
//! donation may be anonymous (匿名: the donor's name never leaves the staff view) and may carry the
//! donor's phone, which is personal data: sealed under the entry's own data key, shown masked.
//!
//! **Append-only.** No entry is edited or deleted. A mistake is corrected by a reversal: an entry
//! of the same direction and kind with the amount negated, naming the entry it reverses and why
//! (`reverses_id`, `reason`). An entry is reversed at most once (`fund.already_reversed`); a
//! reversal is never reversed (`fund.reversal_of_reversal`): the original is recorded again.
//!
//! **Balances** are sums over the entries: income − spending, per kind and per month. A write that
//! would take the balance below zero is refused (`fund.insufficient`, nothing written) unless the
//! configuration allows overdraft. Every entry bumps its account's `last_seq`, which numbers the
//! entry (凭证号) and, by locking the account row, keeps two concurrent spendings from both
//! passing the balance check.
//!
//! **Attachments.** Invoices and receipts are stored by `hazards::attachments` (owner kind
//! `fund_entry`, JPEG/PNG/WebP/PDF by content, at most 8 MiB) and linked to the entry with an
//! `is_public` flag (default: public for spending, private for income, whose papers may name a
//! donor). Public receipts of published accounts are served without sign-in.
//!
//! **Who.** Reading needs `ReadFunds` or `ManageFunds` in reach; writing needs `ManageFunds` at
//! the account's node. Anything outside answers like a missing record. The public view
//! ([`public_view`]) needs no caller and carries no personal data: anonymous donors are 匿名, no
//! phone, the recorder is a role, never a name.

use anxin_domain::fund::{self, Direction, MAX_AMOUNT_FEN};
use anxin_domain::roles::{Permission, ScopeKind};
use anxin_domain::{mask_phone, Phone, SHANGHAI};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::hazards::attachments::{self, Attachment};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

const NAME_MAX: usize = 60;
const DESCRIPTION_MAX: usize = 500;
const COUNTERPARTY_MAX: usize = 100;
const REASON_MAX: usize = 500;
/// The owner kind of fund receipts in `attachments`.
pub const OWNER_KIND: &str = "fund_entry";
const CONTACT_FIELD: &str = "fund_entries.contact";
/// Entries further back than this are refused as a typing slip (`fund.date_too_old`).
const OLDEST_YEAR: i32 = 2000;

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&SHANGHAI).date_naive()
}

/// Where the caller may read the ledger.
pub fn read_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::ReadFunds);
    r.merge(caller.reach(Permission::ManageFunds));
    r
}

const ACCOUNT_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "a.node_id",
    grid: None,
    household: None,
};
const ENTRY_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "e.node_id",
    grid: None,
    household: None,
};
const LINK_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "l.node_id",
    grid: None,
    household: None,
};

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

// ---- accounts ----------------------------------------------------------------------------------

/// A fund account with its totals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct FundAccount {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub name: String,
    /// Shown on the public page (居务公开).
    pub published: bool,
    /// Income − spending, in fen.
    pub balance_fen: i64,
    pub income_fen: i64,
    pub spending_fen: i64,
    /// Entries recorded (reversals included).
    pub entry_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ACCOUNT_COLS: &str = "a.id, a.node_id, a.name, a.published, a.last_seq, a.created_at, \
     a.updated_at, (SELECT n.name FROM nodes n WHERE n.id = a.node_id) AS node_name, \
     (SELECT CAST(COALESCE(SUM(e.amount_fen), 0) AS BIGINT) FROM fund_entries e \
       WHERE e.account_id = a.id AND e.direction = 'income') AS income_fen, \
     (SELECT CAST(COALESCE(SUM(e.amount_fen), 0) AS BIGINT) FROM fund_entries e \
       WHERE e.account_id = a.id AND e.direction = 'spending') AS spending_fen";

impl FundAccount {
    fn from_row(r: &Row) -> Result<Self> {
        let income: i64 = r.get("income_fen")?;
        let spending: i64 = r.get("spending_fen")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
            name: r.get("name")?,
            published: r.get("published")?,
            balance_fen: income - spending,
            income_fen: income,
            spending_fen: spending,
            entry_count: r.get("last_seq")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A new account, or what to change of one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// The community or street (where the caller manages funds); fixed once opened.
    pub node_id: Option<Uuid>,
    /// Default: the node's name + 应急资金.
    pub name: Option<String>,
    /// Shown on the public page (default false).
    pub published: Option<bool>,
}

fn load_account(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<FundAccount> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), ACCOUNT_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {ACCOUNT_COLS} FROM fund_accounts a WHERE a.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    FundAccount::from_row(&row)
}

fn all() -> Reach {
    Reach {
        all: true,
        ..Reach::default()
    }
}

/// An account the caller may read.
pub fn get_account(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<FundAccount> {
    load_account(conn, &read_reach(caller), id)
}

/// Accounts the caller may read, by node name.
pub fn list_accounts(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<FundAccount>> {
    let mut params = Vec::new();
    let pred = read_reach(caller).predicate(conn.dialect(), ACCOUNT_SCOPE, &mut params);
    conn.query(
        &format!(
            "SELECT {ACCOUNT_COLS} FROM fund_accounts a WHERE {pred} ORDER BY node_name, a.id \
             LIMIT 1000"
        ),
        &params,
    )?
    .iter()
    .map(FundAccount::from_row)
    .collect()
}

/// The account of a node, if it has one and the caller may read it.
pub fn account_of_node(
    conn: &mut dyn Conn,
    caller: &Caller,
    node: Uuid,
) -> Result<Option<FundAccount>> {
    let mut params = vec![Value::from(node)];
    let pred = read_reach(caller).predicate(conn.dialect(), ACCOUNT_SCOPE, &mut params);
    conn.query_one(
        &format!("SELECT {ACCOUNT_COLS} FROM fund_accounts a WHERE a.node_id = $1 AND {pred}"),
        &params,
    )?
    .map(|r| FundAccount::from_row(&r))
    .transpose()
}

fn may_manage(conn: &mut dyn Conn, caller: &Caller, node: Uuid) -> Result<bool> {
    caller
        .reach(Permission::ManageFunds)
        .contains_node(conn, node)
}

/// Communities and streets where the caller may open an account and has none yet, by name.
pub fn account_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let mut params = Vec::new();
    let pred = caller.reach(Permission::ManageFunds).predicate(
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
             AND n.level IN ('street', 'community') AND {pred} \
             AND NOT EXISTS (SELECT 1 FROM fund_accounts a WHERE a.node_id = n.id) \
             ORDER BY n.name LIMIT 500"
        ),
        &params,
    )?
    .iter()
    .map(|r| Ok((r.get("id")?, r.get("name")?)))
    .collect()
}

/// Open the fund account of a community or street (one per node: `fund.account_exists`).
pub fn create_account(tx: &mut Tx, caller: &Caller, input: &AccountInput) -> Result<FundAccount> {
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let row = tx.conn().query_one(
        "SELECT name, level FROM nodes WHERE id = $1 AND status = 'active'",
        &params![node],
    )?;
    let Some(row) = row else {
        return Err(bad("record.reference_invalid", "node_id"));
    };
    if !may_manage(tx.conn(), caller, node)? {
        return Err(bad("record.reference_invalid", "node_id"));
    }
    let level: String = row.get("level")?;
    if !matches!(level.as_str(), "community" | "street") {
        return Err(bad("fund.node_level", "node_id"));
    }
    if tx.conn().query_i64(
        "SELECT count(*) FROM fund_accounts WHERE node_id = $1",
        &params![node],
    )? > 0
    {
        return Err(StoreError::Conflict {
            code: "fund.account_exists",
            detail: "this node has a fund account".into(),
        });
    }
    let node_name: String = row.get("name")?;
    let name = text(input.name.as_deref(), "name", NAME_MAX, false)?;
    let name = if name.is_empty() {
        format!("{node_name}应急资金")
    } else {
        name
    };
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "fund_accounts",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("name", name.into()),
            ("published", input.published.unwrap_or(false).into()),
            ("last_seq", 0i64.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_account(tx.conn(), &all(), id)
}

/// Rename an account or publish / withdraw it from the public page.
pub fn edit_account(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: &AccountInput,
) -> Result<FundAccount> {
    let a = get_account(tx.conn(), caller, id)?;
    if !may_manage(tx.conn(), caller, a.node_id)? {
        return Err(StoreError::Forbidden("fund.not_allowed"));
    }
    if patch.node_id.is_some_and(|n| n != a.node_id) {
        return Err(bad("fund.node_fixed", "node_id"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.name.is_some() {
        cols.push((
            "name",
            text(patch.name.as_deref(), "name", NAME_MAX, true)?.into(),
        ));
    }
    if let Some(p) = patch.published {
        cols.push(("published", p.into()));
    }
    cols.push(("updated_at", tx.now().into()));
    tx.update("fund_accounts", id, &cols)?;
    load_account(tx.conn(), &all(), id)
}

// ---- entries -----------------------------------------------------------------------------------

/// A receipt or invoice linked to an entry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct FundAttachment {
    /// The link's id (what the attachment routes take).
    pub id: Uuid,
    pub entry_id: Uuid,
    pub attachment_id: Uuid,
    pub filename: String,
    /// image/jpeg, image/png, image/webp or application/pdf.
    pub mime: String,
    pub size: i64,
    pub sha256: String,
    /// Shown on the public page (when the account is published).
    pub is_public: bool,
    pub created_at: DateTime<Utc>,
}

const LINK_COLS: &str = "l.id, l.entry_id, l.attachment_id, l.is_public, l.created_at, \
     t.filename, t.mime, t.size, t.sha256";

impl FundAttachment {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            entry_id: r.get("entry_id")?,
            attachment_id: r.get("attachment_id")?,
            filename: r.get("filename")?,
            mime: r.get("mime")?,
            size: r.get("size")?,
            sha256: r.get("sha256")?,
            is_public: r.get("is_public")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// One entry of the ledger.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct FundEntry {
    pub id: Uuid,
    pub account_id: Uuid,
    pub node_id: Uuid,
    /// The entry's number in its account (凭证号), from 1.
    pub seq: i64,
    /// income or spending
    pub direction: String,
    /// A source kind (income: fiscal, donation, property_fees, recycling, other) or a spending
    /// category (purchase, maintenance, drills, volunteers, other).
    pub kind: String,
    /// Signed: negative for a reversal.
    pub amount_fen: i64,
    /// The date it happened (Asia/Shanghai).
    pub occurred_on: NaiveDate,
    pub description: String,
    /// The payer (income) or payee (spending).
    pub counterparty: String,
    /// A donor who asked not to be named.
    pub anonymous: bool,
    /// The donor's phone, masked.
    pub contact_mask: Option<String>,
    pub incident_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    /// The entry this one reverses.
    pub reverses_id: Option<Uuid>,
    /// The reversal of this entry, if any.
    pub reversed_by: Option<Uuid>,
    /// Why it was reversed (on a reversal).
    pub reason: String,
    pub recorded_by: Option<Uuid>,
    /// The recorder's username and masked name.
    pub recorder_label: String,
    /// The role the recorder acted in (community_worker, street_officer, …).
    pub recorder_role: String,
    pub created_at: DateTime<Utc>,
    pub attachments: Vec<FundAttachment>,
}

const ENTRY_COLS: &str =
    "e.id, e.account_id, e.node_id, e.seq, e.direction, e.kind, e.amount_fen, \
     e.occurred_on, e.description, e.counterparty, e.anonymous, e.contact_mask, e.incident_id, \
     e.order_id, e.reverses_id, e.reason, e.recorded_by, e.recorder_role, e.created_at, \
     (SELECT r.id FROM fund_entries r WHERE r.reverses_id = e.id) AS reversed_by, \
     (SELECT u.username FROM users u WHERE u.id = e.recorded_by) AS recorder_username, \
     (SELECT u.display_name FROM users u WHERE u.id = e.recorded_by) AS recorder_name";

impl FundEntry {
    fn from_row(r: &Row) -> Result<Self> {
        let username: Option<String> = r.get("recorder_username").unwrap_or(None);
        let name: Option<String> = r.get("recorder_name").unwrap_or(None);
        Ok(Self {
            id: r.get("id")?,
            account_id: r.get("account_id")?,
            node_id: r.get("node_id")?,
            seq: r.get("seq")?,
            direction: r.get("direction")?,
            kind: r.get("kind")?,
            amount_fen: r.get("amount_fen")?,
            occurred_on: r.get("occurred_on")?,
            description: r.get("description")?,
            counterparty: r.get("counterparty")?,
            anonymous: r.get("anonymous")?,
            contact_mask: r.get("contact_mask")?,
            incident_id: r.get("incident_id")?,
            order_id: r.get("order_id")?,
            reverses_id: r.get("reverses_id")?,
            reversed_by: r.get("reversed_by")?,
            reason: r.get("reason")?,
            recorded_by: r.get("recorded_by")?,
            recorder_label: match username {
                Some(u) => format!(
                    "{u}（{}）",
                    anxin_domain::mask_name(&name.unwrap_or_default())
                ),
                None => String::new(),
            },
            recorder_role: r.get("recorder_role")?,
            created_at: r.get("created_at")?,
            attachments: Vec::new(),
        })
    }
}

fn attach_links(conn: &mut dyn Conn, entries: &mut [FundEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids = serde_json::json!(entries.iter().map(|e| e.id.to_string()).collect::<Vec<_>>());
    let rows = conn.query(
        &format!(
            "SELECT {LINK_COLS} FROM fund_attachments l JOIN attachments t ON t.id = l.attachment_id \
             WHERE {} ORDER BY l.created_at, l.id",
            conn.dialect().in_json_list("l.entry_id", 1)
        ),
        &[Value::Json(ids)],
    )?;
    for r in &rows {
        let a = FundAttachment::from_row(r)?;
        if let Some(e) = entries.iter_mut().find(|e| e.id == a.entry_id) {
            e.attachments.push(a);
        }
    }
    Ok(())
}

fn load_entry(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<FundEntry> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), ENTRY_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {ENTRY_COLS} FROM fund_entries e WHERE e.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let mut e = vec![FundEntry::from_row(&row)?];
    attach_links(conn, &mut e)?;
    Ok(e.remove(0))
}

/// An entry the caller may read, with its attachments.
pub fn get_entry(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<FundEntry> {
    load_entry(conn, &read_reach(caller), id)
}

/// List filter (every field optional).
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// One account's entries.
    pub account_id: Option<Uuid>,
    /// income or spending.
    pub direction: Option<String>,
    /// One source kind or spending category.
    pub kind: Option<String>,
    /// One month, `YYYY-MM` (by the date it happened).
    pub month: Option<String>,
}

/// The first day of a `YYYY-MM` month and of the month after it.
pub fn month_range(raw: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (y, m) = raw.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    Some((first, next))
}

fn all_kinds() -> Vec<&'static str> {
    let mut k = Direction::Income.kinds();
    k.extend(Direction::Spending.kinds());
    k
}

/// Entries the caller may read, newest first (at most 2,000).
pub fn list_entries(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &EntryQuery,
) -> Result<Vec<FundEntry>> {
    let mut params = Vec::new();
    let mut parts = vec![read_reach(caller).predicate(conn.dialect(), ENTRY_SCOPE, &mut params)];
    if let Some(a) = q.account_id {
        params.push(a.into());
        parts.push(format!("e.account_id = ${}", params.len()));
    }
    if let Some(d) = q.direction.as_deref() {
        let d: Direction = d.parse().map_err(|_| bad("value.invalid", "direction"))?;
        params.push(d.as_str().into());
        parts.push(format!("e.direction = ${}", params.len()));
    }
    if let Some(k) = q.kind.as_deref() {
        let k = k.trim();
        if !all_kinds().contains(&k) {
            return Err(bad("value.invalid", "kind"));
        }
        params.push(k.into());
        parts.push(format!("e.kind = ${}", params.len()));
    }
    if let Some(m) = q.month.as_deref() {
        let (from, to) = month_range(m).ok_or_else(|| bad("value.invalid", "month"))?;
        params.push(from.into());
        parts.push(format!("e.occurred_on >= ${}", params.len()));
        params.push(to.into());
        parts.push(format!("e.occurred_on < ${}", params.len()));
    }
    let rows = conn.query(
        &format!(
            "SELECT {ENTRY_COLS} FROM fund_entries e WHERE {} \
             ORDER BY e.occurred_on DESC, e.seq DESC LIMIT 2000",
            parts.join(" AND ")
        ),
        &params,
    )?;
    let mut out = rows
        .iter()
        .map(FundEntry::from_row)
        .collect::<Result<Vec<_>>>()?;
    attach_links(conn, &mut out)?;
    Ok(out)
}

/// A new income or spending entry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    pub account_id: Option<Uuid>,
    /// income or spending.
    pub direction: Option<String>,
    /// Income: fiscal, donation, property_fees, recycling, other. Spending: purchase,
    /// maintenance, drills, volunteers, other.
    pub kind: Option<String>,
    /// Fen, 1 to 1,000,000,000 (ten million yuan).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub amount_fen: Option<i64>,
    /// `YYYY-MM-DD`, not in the future (Asia/Shanghai); default today.
    pub occurred_on: Option<String>,
    /// What it was for (required).
    pub description: Option<String>,
    /// The payer (income) or payee (spending).
    pub counterparty: Option<String>,
    /// A donor who asked not to be named (donations only).
    pub anonymous: Option<bool>,
    /// The donor's phone (kept sealed, shown masked; never public).
    pub contact_phone: Option<String>,
    /// The incident the money went to (within the caller's reach).
    pub incident_id: Option<Uuid>,
    /// The supplies order it paid (within the caller's reach).
    pub order_id: Option<Uuid>,
}

/// A reversal's reason.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseInput {
    /// Why the entry is wrong (required).
    pub reason: Option<String>,
}

/// The role the caller acts in at `node` when it manages funds there (the public page shows
/// this, not the name).
fn acting_role(conn: &mut dyn Conn, caller: &Caller, node: Uuid) -> Result<String> {
    if caller.is_system() {
        return Ok("system".into());
    }
    for g in &caller.grants {
        if !g.role.has(Permission::ManageFunds) || g.scope_kind != ScopeKind::Node {
            continue;
        }
        let r = Reach {
            nodes: vec![g.scope_id],
            ..Reach::default()
        };
        if r.contains_node(conn, node)? {
            return Ok(g.role.as_str().to_owned());
        }
    }
    Ok(String::new())
}

/// The balance of an account now, in fen.
fn balance(conn: &mut dyn Conn, account: Uuid) -> Result<i64> {
    conn.query_i64(
        "SELECT CAST(COALESCE(SUM(CASE WHEN direction = 'income' THEN amount_fen \
         ELSE -amount_fen END), 0) AS BIGINT) FROM fund_entries WHERE account_id = $1",
        &params![account],
    )
}

/// Lock the account for this write (bumping its entry counter) and return the entry's number.
fn next_seq(tx: &mut Tx, account: Uuid) -> Result<i64> {
    let now = tx.now();
    let row = tx
        .conn()
        .query_one(
            "SELECT last_seq FROM fund_accounts WHERE id = $1",
            &params![account],
        )?
        .ok_or(StoreError::NotFound)?;
    let seq: i64 = row.get::<i64>("last_seq")? + 1;
    tx.update(
        "fund_accounts",
        account,
        &[("last_seq", seq.into()), ("updated_at", now.into())],
    )?;
    Ok(seq)
}

fn check_reference(
    conn: &mut dyn Conn,
    caller: &Caller,
    table: &str,
    id: Uuid,
    field: &'static str,
) -> Result<()> {
    let row = conn.query_one(
        &format!("SELECT node_id FROM {table} WHERE id = $1"),
        &params![id],
    )?;
    let Some(row) = row else {
        return Err(bad("record.reference_invalid", field));
    };
    let node: Uuid = row.get("node_id")?;
    if !read_reach(caller).contains_node(conn, node)? {
        return Err(bad("record.reference_invalid", field));
    }
    Ok(())
}

/// The table of supplies orders (the providers part's), whose rows carry `node_id`.
const ORDER_TABLE: &str = "supply_orders";

/// Record an income or a spending entry. `allow_overdraft`: the configuration's.
pub fn record(
    tx: &mut Tx,
    caller: &Caller,
    input: &EntryInput,
    allow_overdraft: bool,
) -> Result<FundEntry> {
    let now = tx.now();
    let account_id = input
        .account_id
        .ok_or_else(|| bad("value.required", "account_id"))?;
    let account = load_account(tx.conn(), &read_reach(caller), account_id)
        .map_err(|_| bad("record.reference_invalid", "account_id"))?;
    if !may_manage(tx.conn(), caller, account.node_id)? {
        return Err(bad("record.reference_invalid", "account_id"));
    }
    let direction: Direction = input
        .direction
        .as_deref()
        .ok_or_else(|| bad("value.required", "direction"))?
        .parse()
        .map_err(|_| bad("value.invalid", "direction"))?;
    let kind = input
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("value.required", "kind"))?;
    if direction.kind_zh(kind).is_none() {
        return Err(bad("fund.kind_invalid", "kind"));
    }
    let amount = input
        .amount_fen
        .ok_or_else(|| bad("value.required", "amount_fen"))?;
    if amount <= 0 {
        return Err(bad("fund.amount_positive", "amount_fen"));
    }
    if amount > MAX_AMOUNT_FEN {
        return Err(bad("fund.amount_too_large", "amount_fen"));
    }
    let today = today(now);
    let occurred = match input
        .occurred_on
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => today,
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| bad("value.invalid", "occurred_on"))?,
    };
    if occurred > today {
        return Err(bad("fund.date_in_future", "occurred_on"));
    }
    if occurred.year() < OLDEST_YEAR {
        return Err(bad("fund.date_too_old", "occurred_on"));
    }
    let description = text(
        input.description.as_deref(),
        "description",
        DESCRIPTION_MAX,
        true,
    )?;
    let counterparty = text(
        input.counterparty.as_deref(),
        "counterparty",
        COUNTERPARTY_MAX,
        false,
    )?;
    let donation = direction == Direction::Income && kind == "donation";
    let anonymous = input.anonymous.unwrap_or(false);
    if anonymous && !donation {
        return Err(bad("fund.anonymous_donation_only", "anonymous"));
    }
    let phone = match input
        .contact_phone
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(_) if !donation => return Err(bad("fund.contact_donation_only", "contact_phone")),
        Some(s) => Some(Phone::parse(s).map_err(|_| bad("value.invalid", "contact_phone"))?),
    };
    if let Some(i) = input.incident_id {
        check_reference(tx.conn(), caller, "incidents", i, "incident_id")?;
    }
    if let Some(o) = input.order_id {
        check_reference(tx.conn(), caller, ORDER_TABLE, o, "order_id")?;
    }
    // Lock the account first: the balance read below then sees every earlier entry.
    let seq = next_seq(tx, account_id)?;
    let bal = balance(tx.conn(), account_id)?;
    if fund::balance_after(bal, direction, amount, allow_overdraft).is_none() {
        return Err(StoreError::Conflict {
            code: "fund.insufficient",
            detail: format!("balance {bal} fen, spending {amount} fen"),
        });
    }
    let role = acting_role(tx.conn(), caller, account.node_id)?;
    let id = tx.new_id();
    let key_id = tx.new_data_key()?;
    let (contact_ct, contact_mask) = match &phone {
        Some(p) => (
            Value::from(tx.seal(key_id, CONTACT_FIELD, p.as_str().as_bytes())?),
            Value::from(mask_phone(p)),
        ),
        None => (Value::Null, Value::Null),
    };
    tx.insert(
        "fund_entries",
        &[
            ("id", id.into()),
            ("account_id", account_id.into()),
            ("node_id", account.node_id.into()),
            ("seq", seq.into()),
            ("direction", direction.as_str().into()),
            ("kind", kind.into()),
            ("amount_fen", amount.into()),
            ("occurred_on", occurred.into()),
            ("description", description.into()),
            ("counterparty", counterparty.into()),
            ("anonymous", anonymous.into()),
            ("key_id", key_id.into()),
            ("contact_ct", contact_ct),
            ("contact_mask", contact_mask),
            ("incident_id", input.incident_id.into()),
            ("order_id", input.order_id.into()),
            ("reverses_id", Value::Null),
            ("reason", "".into()),
            ("recorded_by", caller.user_id.into()),
            ("recorder_role", role.into()),
            ("created_at", now.into()),
        ],
    )?;
    load_entry(tx.conn(), &all(), id)
}

/// Reverse an entry: a new entry of the same direction and kind with the amount negated. Refused:
/// a reversal (`fund.reversal_of_reversal`), an entry already reversed (`fund.already_reversed`),
/// a reversal of income that would overdraw the account (`fund.insufficient`).
pub fn reverse(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    input: &ReverseInput,
    allow_overdraft: bool,
) -> Result<FundEntry> {
    let now = tx.now();
    let orig = get_entry(tx.conn(), caller, id)?;
    if !may_manage(tx.conn(), caller, orig.node_id)? {
        return Err(StoreError::Forbidden("fund.not_allowed"));
    }
    let reason = text(input.reason.as_deref(), "reason", REASON_MAX, true)?;
    if orig.reverses_id.is_some() {
        return Err(StoreError::Conflict {
            code: "fund.reversal_of_reversal",
            detail: "a reversal is not reversed; record the original again".into(),
        });
    }
    let seq = next_seq(tx, orig.account_id)?;
    if tx.conn().query_i64(
        "SELECT count(*) FROM fund_entries WHERE reverses_id = $1",
        &params![id],
    )? > 0
    {
        return Err(StoreError::Conflict {
            code: "fund.already_reversed",
            detail: "this entry has been reversed".into(),
        });
    }
    let direction: Direction = orig
        .direction
        .parse()
        .map_err(|_| StoreError::Backend("fund entry direction".into()))?;
    let amount = -orig.amount_fen;
    let bal = balance(tx.conn(), orig.account_id)?;
    if fund::balance_after(bal, direction, amount, allow_overdraft).is_none() {
        return Err(StoreError::Conflict {
            code: "fund.insufficient",
            detail: format!("balance {bal} fen, reversal {amount} fen"),
        });
    }
    let role = acting_role(tx.conn(), caller, orig.node_id)?;
    let new_id = tx.new_id();
    let key_id = tx.new_data_key()?;
    tx.insert(
        "fund_entries",
        &[
            ("id", new_id.into()),
            ("account_id", orig.account_id.into()),
            ("node_id", orig.node_id.into()),
            ("seq", seq.into()),
            ("direction", orig.direction.as_str().into()),
            ("kind", orig.kind.as_str().into()),
            ("amount_fen", amount.into()),
            ("occurred_on", today(now).into()),
            (
                "description",
                format!("冲销第{}号：{}", orig.seq, orig.description)
                    .chars()
                    .take(DESCRIPTION_MAX)
                    .collect::<String>()
                    .into(),
            ),
            ("counterparty", orig.counterparty.as_str().into()),
            ("anonymous", orig.anonymous.into()),
            ("key_id", key_id.into()),
            ("contact_ct", Value::Null),
            ("contact_mask", Value::Null),
            ("incident_id", orig.incident_id.into()),
            ("order_id", orig.order_id.into()),
            ("reverses_id", id.into()),
            ("reason", reason.into()),
            ("recorded_by", caller.user_id.into()),
            ("recorder_role", role.into()),
            ("created_at", now.into()),
        ],
    )?;
    load_entry(tx.conn(), &all(), new_id)
}

// ---- attachments -------------------------------------------------------------------------------

/// Store a receipt or invoice for an entry the caller manages. `is_public` defaults to true for
/// spending and false for income.
pub fn add_attachment(
    tx: &mut Tx,
    caller: &Caller,
    entry_id: Uuid,
    filename: &str,
    bytes: &[u8],
    is_public: Option<bool>,
) -> Result<FundAttachment> {
    let entry = get_entry(tx.conn(), caller, entry_id)?;
    if !may_manage(tx.conn(), caller, entry.node_id)? {
        return Err(StoreError::Forbidden("fund.not_allowed"));
    }
    // The fund's own permission was checked; the attachments store checks type and size.
    let att = attachments::store(
        tx,
        &Caller::system(),
        entry.node_id,
        OWNER_KIND,
        entry.id,
        filename,
        bytes,
    )?;
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "fund_attachments",
        &[
            ("id", id.into()),
            ("entry_id", entry.id.into()),
            ("attachment_id", att.into()),
            ("node_id", entry.node_id.into()),
            (
                "is_public",
                is_public.unwrap_or(entry.direction == "spending").into(),
            ),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_link(tx.conn(), &all(), id)
}

fn load_link(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<FundAttachment> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), LINK_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!(
                "SELECT {LINK_COLS} FROM fund_attachments l JOIN attachments t \
                 ON t.id = l.attachment_id WHERE l.id = $1 AND {pred}"
            ),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    FundAttachment::from_row(&row)
}

/// A receipt's description, when the caller may read the ledger where it is.
pub fn get_attachment_info(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
) -> Result<FundAttachment> {
    load_link(conn, &read_reach(caller), id)
}

/// A receipt's description and bytes, when the caller may read the ledger where it is.
pub fn get_attachment(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
) -> Result<(Attachment, Vec<u8>)> {
    let link = load_link(conn, &read_reach(caller), id)?;
    attachments::get(conn, &Caller::system(), link.attachment_id)
}

/// Publish or withdraw a receipt from the public page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentPatch {
    /// Shown on the public page.
    pub is_public: Option<bool>,
}

/// Publish or withdraw a receipt (the one part of the ledger that changes: what is shown).
pub fn edit_attachment(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: &AttachmentPatch,
) -> Result<FundAttachment> {
    let link = get_attachment_info(tx.conn(), caller, id)?;
    let node: Uuid = tx
        .conn()
        .query_one(
            "SELECT node_id FROM fund_attachments WHERE id = $1",
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("node_id")?;
    if !may_manage(tx.conn(), caller, node)? {
        return Err(StoreError::Forbidden("fund.not_allowed"));
    }
    let p = patch
        .is_public
        .ok_or_else(|| bad("value.required", "is_public"))?;
    if p != link.is_public {
        let now = tx.now();
        tx.update(
            "fund_attachments",
            id,
            &[("is_public", p.into()), ("updated_at", now.into())],
        )?;
    }
    load_link(tx.conn(), &all(), id)
}

// ---- balances ----------------------------------------------------------------------------------

/// A total of one source kind or spending category.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct KindTotal {
    pub kind: String,
    /// The Chinese label (财政拨款 …).
    pub label: String,
    pub amount_fen: i64,
}

/// One month's totals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct MonthTotal {
    /// `YYYY-MM`
    pub month: String,
    pub income_fen: i64,
    pub spending_fen: i64,
    /// The balance at the end of the month.
    pub closing_fen: i64,
}

/// An account's balances: overall, per kind and per month.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct FundBalances {
    pub account: FundAccount,
    pub balance_fen: i64,
    pub income_fen: i64,
    pub spending_fen: i64,
    /// Income per source kind (every kind, zero included).
    pub income_by_kind: Vec<KindTotal>,
    /// Spending per category (every category, zero included).
    pub spending_by_kind: Vec<KindTotal>,
    /// Months with entries, oldest first.
    pub months: Vec<MonthTotal>,
}

/// Totals from (direction, kind, signed amount, date) rows.
fn totals(account: FundAccount, rows: &[(Direction, String, i64, NaiveDate)]) -> FundBalances {
    let mut t = fund::Totals::default();
    let by = |d: Direction| {
        d.kinds()
            .into_iter()
            .map(|k| KindTotal {
                kind: k.to_owned(),
                label: d.kind_zh(k).unwrap_or_default().to_owned(),
                amount_fen: 0,
            })
            .collect::<Vec<_>>()
    };
    let mut income = by(Direction::Income);
    let mut spending = by(Direction::Spending);
    let mut months: Vec<MonthTotal> = Vec::new();
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by_key(|r| r.3);
    for (d, k, amt, on) in sorted {
        t.add(*d, *amt);
        let list = match d {
            Direction::Income => &mut income,
            Direction::Spending => &mut spending,
        };
        if let Some(x) = list.iter_mut().find(|x| &x.kind == k) {
            x.amount_fen += amt;
        }
        let m = on.format("%Y-%m").to_string();
        if months.last().is_none_or(|l| l.month != m) {
            months.push(MonthTotal {
                month: m,
                income_fen: 0,
                spending_fen: 0,
                closing_fen: 0,
            });
        }
        if let Some(last) = months.last_mut() {
            match d {
                Direction::Income => last.income_fen += amt,
                Direction::Spending => last.spending_fen += amt,
            }
            last.closing_fen = t.balance_fen();
        }
    }
    FundBalances {
        account,
        balance_fen: t.balance_fen(),
        income_fen: t.income_fen,
        spending_fen: t.spending_fen,
        income_by_kind: income,
        spending_by_kind: spending,
        months,
    }
}

fn entry_rows(
    conn: &mut dyn Conn,
    account: Uuid,
) -> Result<Vec<(Direction, String, i64, NaiveDate)>> {
    conn.query(
        "SELECT direction, kind, amount_fen, occurred_on FROM fund_entries WHERE account_id = $1",
        &params![account],
    )?
    .iter()
    .map(|r| {
        let d: String = r.get("direction")?;
        Ok((
            d.parse()
                .map_err(|_| StoreError::Backend("fund entry direction".into()))?,
            r.get("kind")?,
            r.get("amount_fen")?,
            r.get("occurred_on")?,
        ))
    })
    .collect()
}

/// The balances of an account the caller may read.
pub fn balances(conn: &mut dyn Conn, caller: &Caller, account: Uuid) -> Result<FundBalances> {
    let a = get_account(conn, caller, account)?;
    let rows = entry_rows(conn, a.id)?;
    Ok(totals(a, &rows))
}

// ---- the public view ---------------------------------------------------------------------------

/// An entry as the public page shows it: no names of anonymous donors, no phone, no person.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PublicEntry {
    pub seq: i64,
    pub direction: String,
    pub kind: String,
    pub kind_label: String,
    pub amount_fen: i64,
    pub occurred_on: NaiveDate,
    pub description: String,
    /// The payer or payee; 匿名 for a donor who asked not to be named.
    pub counterparty: String,
    /// The entry number this one reverses, and why.
    pub reverses_seq: Option<i64>,
    pub reason: String,
    /// The office that recorded it (社区工作者 …), never a person's name.
    pub recorded_by: String,
    /// Public receipts: (link id, file name, type).
    pub receipts: Vec<PublicReceipt>,
}

/// A published receipt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PublicReceipt {
    pub id: Uuid,
    pub filename: String,
    pub mime: String,
}

/// One month of the public page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PublicMonth {
    pub totals: MonthTotal,
    /// The month's entries, newest first.
    pub entries: Vec<PublicEntry>,
}

/// The public view of a published account (居务公开).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct PublicFunds {
    pub community: String,
    pub account: String,
    pub balance_fen: i64,
    pub income_fen: i64,
    pub spending_fen: i64,
    pub income_by_kind: Vec<KindTotal>,
    pub spending_by_kind: Vec<KindTotal>,
    /// Newest month first.
    pub months: Vec<PublicMonth>,
    /// When the figures were read.
    pub as_of: DateTime<Utc>,
}

/// The node whose active 12-digit code is `code` (`None` for anything else).
pub fn node_of_code(conn: &mut dyn Conn, code: &str) -> Result<Option<Uuid>> {
    if code.len() != 12 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    conn.query_one(
        "SELECT node_id FROM node_codes WHERE code = $1 AND valid_to IS NULL",
        &params![code],
    )?
    .map(|r| r.get("node_id"))
    .transpose()
}

/// The public view of `node`'s account, `None` unless it has one and it is published. Reads
/// the last `max_months` months of entries (the totals are over everything).
pub fn public_view(
    conn: &mut dyn Conn,
    node: Uuid,
    max_months: usize,
    now: DateTime<Utc>,
) -> Result<Option<PublicFunds>> {
    let Some(row) = conn.query_one(
        &format!("SELECT {ACCOUNT_COLS} FROM fund_accounts a WHERE a.node_id = $1 AND a.published = TRUE"),
        &params![node],
    )?
    else {
        return Ok(None);
    };
    let account = FundAccount::from_row(&row)?;
    let rows = entry_rows(conn, account.id)?;
    let b = totals(account.clone(), &rows);
    let shown: Vec<&MonthTotal> = b.months.iter().rev().take(max_months).collect();
    let since = shown
        .last()
        .and_then(|m| month_range(&m.month))
        .map(|(from, _)| from);
    let mut entries = match since {
        None => Vec::new(),
        Some(from) => conn
            .query(
                &format!(
                    "SELECT {ENTRY_COLS}, (SELECT o.seq FROM fund_entries o WHERE o.id = e.reverses_id) \
                     AS reverses_seq FROM fund_entries e WHERE e.account_id = $1 \
                     AND e.occurred_on >= $2 ORDER BY e.occurred_on DESC, e.seq DESC LIMIT 5000"
                ),
                &params![account.id, from],
            )?
            .iter()
            .map(|r| Ok((FundEntry::from_row(r)?, r.get::<Option<i64>>("reverses_seq")?)))
            .collect::<Result<Vec<_>>>()?,
    };
    {
        let mut plain: Vec<FundEntry> = entries.iter().map(|(e, _)| e.clone()).collect();
        attach_links(conn, &mut plain)?;
        for ((e, _), p) in entries.iter_mut().zip(plain) {
            e.attachments = p.attachments;
        }
    }
    let months = shown
        .into_iter()
        .map(|m| PublicMonth {
            totals: m.clone(),
            entries: entries
                .iter()
                .filter(|(e, _)| e.occurred_on.format("%Y-%m").to_string() == m.month)
                .map(|(e, rseq)| public_entry(e, *rseq))
                .collect(),
        })
        .collect();
    Ok(Some(PublicFunds {
        community: account.node_name.clone(),
        account: account.name.clone(),
        balance_fen: b.balance_fen,
        income_fen: b.income_fen,
        spending_fen: b.spending_fen,
        income_by_kind: b.income_by_kind,
        spending_by_kind: b.spending_by_kind,
        months,
        as_of: now,
    }))
}

fn public_entry(e: &FundEntry, reverses_seq: Option<i64>) -> PublicEntry {
    let direction: Direction = e.direction.parse().unwrap_or(Direction::Income);
    PublicEntry {
        seq: e.seq,
        direction: e.direction.clone(),
        kind: e.kind.clone(),
        kind_label: direction.kind_zh(&e.kind).unwrap_or_default().to_owned(),
        amount_fen: e.amount_fen,
        occurred_on: e.occurred_on,
        description: e.description.clone(),
        counterparty: if e.anonymous {
            "匿名".into()
        } else {
            e.counterparty.clone()
        },
        reverses_seq,
        reason: e.reason.clone(),
        recorded_by: match e.recorder_role.parse::<anxin_domain::Role>() {
            Ok(r) => r.zh().to_owned(),
            Err(_) => "工作人员".into(),
        },
        receipts: e
            .attachments
            .iter()
            .filter(|a| a.is_public)
            .map(|a| PublicReceipt {
                id: a.id,
                filename: a.filename.clone(),
                mime: a.mime.clone(),
            })
            .collect(),
    }
}

/// A public receipt's bytes: the link is public and its account published; else `NotFound`.
pub fn public_attachment(conn: &mut dyn Conn, id: Uuid) -> Result<(Attachment, Vec<u8>)> {
    let ok = conn.query_i64(
        "SELECT count(*) FROM fund_attachments l JOIN fund_entries e ON e.id = l.entry_id \
         JOIN fund_accounts a ON a.id = e.account_id \
         WHERE l.id = $1 AND l.is_public = TRUE AND a.published = TRUE",
        &params![id],
    )? > 0;
    if !ok {
        return Err(StoreError::NotFound);
    }
    let att: Uuid = conn
        .query_one(
            "SELECT attachment_id FROM fund_attachments WHERE id = $1",
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("attachment_id")?;
    attachments::get(conn, &Caller::system(), att)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse() {
        assert_eq!(
            month_range("2026-12"),
            Some((
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
            ))
        );
        assert_eq!(month_range("2026-13"), None);
        assert_eq!(month_range("2026-1"), None);
        assert_eq!(month_range("x"), None);
    }
}
