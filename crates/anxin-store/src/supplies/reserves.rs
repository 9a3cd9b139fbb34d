//! Reserves (owner: reserves & dispatch): items, depots, lots, the append-only movement ledger and
//! the balances derived from it, reserve norms and the gap report, expiry warnings.
//!
//! **Items**: the platform catalogue (node_id NULL, shipped by migration 0017 with stable codes:
//! `mask`, `water`, `noodles`, `blanket`, `tent`, …) and a community's own items (code unique per
//! node).
//!
//! **Depots** are facilities: any facility in scope can hold stock. A depot counts for the
//! community it lies in (its node, or the community above its compound); a depot at a street
//! belongs to no community's reserve and all of its stock is spare for dispatch.
//!
//! **The ledger**: every change of stock is a row of `stock_movements`, never updated or deleted
//! (a correction is an `adjust`). [`post`] is the one way stock moves (campaigns, provider
//! deliveries and dispatch call it). The balance of each lot is kept in `stock_balances` in the
//! same transaction (operational, for speed); [`recompute`] rebuilds the balances from the ledger
//! and the tests compare both. A balance never goes below zero (`stock.insufficient`, field
//! `quantity`); on PostgreSQL the lots of the depot and item are locked first so two issues
//! cannot both take the last unit.
//!
//! **Norms**: how much of an item per 1,000 residents; a norm at a node applies to every
//! community below unless a nearer node sets its own; items without any stored norm fall back
//! to the configured defaults (`supplies.default_norms`). **The gap report**: residents (people
//! of the community) × norm / 1,000 (rounded up) against the balance of the community's depots.
//!
//! **Who**: reading needs `ReadSupplies` in scope; writing (movements, items, norms) needs
//! `ManageSupplies` at the depot's (item's, norm's) node. A record outside the caller's reach
//! answers like a missing one.

use std::collections::{BTreeMap, HashMap};

use anxin_domain::roles::Permission;
use anxin_domain::supplies::{self as dom, MovementKind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conn::Dialect;
use crate::error::{Result, StoreError};
use crate::ops::plans::subtree;
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

const NAME_MAX: usize = 60;
const CODE_MAX: usize = 40;
const NOTE_MAX: usize = 500;
/// The largest quantity one movement may carry.
pub const QUANTITY_MAX: i64 = 100_000_000;

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Records.

/// An item of the catalogue or of a community.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SupplyItem))]
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: Uuid,
    /// `None`: the platform catalogue.
    pub node_id: Option<Uuid>,
    pub code: String,
    pub name: String,
    pub unit: String,
    /// food, protection, medical, shelter, tools, flood, fire, other
    pub category: String,
    pub shelf_life_days: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Item {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            code: r.get("code")?,
            name: r.get("name")?,
            unit: r.get("unit")?,
            category: r.get("category")?,
            shelf_life_days: r.get("shelf_life_days")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// One movement of the ledger.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockMovement))]
#[derive(Debug, Clone, Serialize)]
pub struct Movement {
    pub id: Uuid,
    /// receive, issue, transfer_out, transfer_in, adjust, write_off
    pub kind: String,
    pub item_id: Uuid,
    pub item_name: String,
    pub unit: String,
    pub depot_id: Uuid,
    pub lot_id: Uuid,
    pub lot_expires_on: Option<NaiveDate>,
    /// Signed: what the movement added (+) or took (−).
    pub quantity: i64,
    /// order, campaign, dispatch, transfer
    pub reference_kind: Option<String>,
    pub reference_id: Option<Uuid>,
    pub note: String,
    pub actor: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl Movement {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            kind: r.get("kind")?,
            item_id: r.get("item_id")?,
            item_name: r.get::<Option<String>>("item_name")?.unwrap_or_default(),
            unit: r.get::<Option<String>>("unit")?.unwrap_or_default(),
            depot_id: r.get("depot_id")?,
            lot_id: r.get("lot_id")?,
            lot_expires_on: r.get("expires_on")?,
            quantity: r.get("quantity")?,
            reference_kind: r.get("reference_kind")?,
            reference_id: r.get("reference_id")?,
            note: r.get("note")?,
            actor: r.get("actor")?,
            at: r.get("at")?,
        })
    }
}

/// The balance of one lot.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockLotBalance))]
#[derive(Debug, Clone, Serialize)]
pub struct LotBalance {
    pub lot_id: Uuid,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    pub depot_id: Uuid,
    pub depot_name: String,
    pub node_id: Uuid,
    pub expires_on: Option<NaiveDate>,
    pub received_at: DateTime<Utc>,
    pub source_ref: String,
    pub quantity: i64,
}

impl LotBalance {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            lot_id: r.get("lot_id")?,
            item_id: r.get("item_id")?,
            item_code: r.get("item_code")?,
            item_name: r.get("item_name")?,
            unit: r.get("unit")?,
            depot_id: r.get("depot_id")?,
            depot_name: r.get("depot_name")?,
            node_id: r.get("node_id")?,
            expires_on: r.get("expires_on")?,
            received_at: r.get("received_at")?,
            source_ref: r.get("source_ref")?,
            quantity: r.get("quantity")?,
        })
    }
}

/// A depot's balance of one item (all lots).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockItemBalance))]
#[derive(Debug, Clone, Serialize)]
pub struct ItemBalance {
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    pub quantity: i64,
    /// The earliest expiry among the lots that still hold some.
    pub next_expiry: Option<NaiveDate>,
}

/// A depot (a facility) with its balances.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockDepot))]
#[derive(Debug, Clone, Serialize)]
pub struct Depot {
    pub id: Uuid,
    pub name: String,
    /// The facility's kind (shelter, warehouse, …).
    pub kind: String,
    pub node_id: Uuid,
    pub node_name: String,
    /// The community the depot counts for (`None`: a depot above the communities).
    pub community_id: Option<Uuid>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub items: Vec<ItemBalance>,
}

// ---------------------------------------------------------------------------------------------
// The one way stock moves.

/// A movement to post (see [`post`]).
#[derive(Debug, Clone)]
pub struct NewMovement {
    pub kind: MovementKind,
    pub item_id: Uuid,
    /// A facility id.
    pub depot_id: Uuid,
    /// `None` on receive (a lot is created), or "oldest expiry first" on issue.
    pub lot_id: Option<Uuid>,
    /// > 0; the kind gives the sign (adjust: signed, != 0).
    pub quantity: i64,
    /// Receive (and transfer_in) only: the new lot's expiry.
    pub expires_on: Option<NaiveDate>,
    /// "order", "campaign", "dispatch", "transfer".
    pub reference_kind: Option<&'static str>,
    pub reference_id: Option<Uuid>,
    pub note: Option<String>,
}

impl NewMovement {
    /// A movement of `kind` with no lot, expiry, reference or note.
    pub fn new(kind: MovementKind, item_id: Uuid, depot_id: Uuid, quantity: i64) -> Self {
        Self {
            kind,
            item_id,
            depot_id,
            lot_id: None,
            quantity,
            expires_on: None,
            reference_kind: None,
            reference_id: None,
            note: None,
        }
    }
}

/// What one posted movement did to one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    pub movement_id: Uuid,
    pub lot_id: Uuid,
    /// Signed.
    pub quantity: i64,
    pub expires_on: Option<NaiveDate>,
}

/// Post one movement (no permission check: the caller checks its own); refuses a balance going
/// below zero (`stock.insufficient`, field "quantity"); issue without a lot takes the lots that
/// expire first (FEFO), possibly several movements; returns the movement ids.
pub fn post(tx: &mut Tx, m: &NewMovement) -> Result<Vec<Uuid>> {
    Ok(post_lots(tx, m)?
        .into_iter()
        .map(|p| p.movement_id)
        .collect())
}

/// [`post`], answering what each movement did to which lot.
pub fn post_lots(tx: &mut Tx, m: &NewMovement) -> Result<Vec<Posted>> {
    if !m.kind.quantity_ok(m.quantity) || m.quantity.unsigned_abs() > QUANTITY_MAX.unsigned_abs() {
        return Err(bad("stock.quantity_invalid", "quantity"));
    }
    if let Some(k) = m.reference_kind {
        if k.parse::<dom::ReferenceKind>().is_err() {
            return Err(bad("stock.reference_invalid", "reference_kind"));
        }
    }
    let note = m.note.as_deref().map(str::trim).unwrap_or_default();
    if note.chars().count() > NOTE_MAX {
        return Err(bad("value.too_long", "note"));
    }
    let depot = tx
        .query_one(
            "SELECT id, node_id FROM facilities WHERE id = $1",
            &params![m.depot_id],
        )?
        .ok_or_else(|| bad("stock.depot_unknown", "depot_id"))?;
    let node: Uuid = depot.get("node_id")?;
    if tx
        .query_one(
            "SELECT id FROM supply_items WHERE id = $1",
            &params![m.item_id],
        )?
        .is_none()
    {
        return Err(bad("stock.item_unknown", "item_id"));
    }
    let adds = m.kind.signed(m.quantity) > 0;
    let base = Base {
        m,
        node,
        note: note.to_owned(),
    };
    match (m.lot_id, adds) {
        (None, true) => {
            let lot = new_lot(tx, &base)?;
            Ok(vec![move_lot(tx, &base, lot, m.kind.signed(m.quantity))?])
        }
        (Some(lot), _) => {
            let have = lock_lots(tx, m.depot_id, m.item_id)?;
            let Some((_, bal)) = have.iter().find(|(l, _)| l.0 == lot) else {
                return Err(bad("stock.lot_unknown", "lot_id"));
            };
            let delta = m.kind.signed(m.quantity);
            if bal + delta < 0 {
                return Err(bad("stock.insufficient", "quantity"));
            }
            let exp = have.iter().find(|(l, _)| l.0 == lot).and_then(|(l, _)| l.1);
            Ok(vec![move_lot(tx, &base, (lot, exp), delta)?])
        }
        (None, false) => {
            // First expiry, first out: lots without an expiry date last, then oldest received.
            let have = lock_lots(tx, m.depot_id, m.item_id)?;
            let total: i64 = have.iter().map(|(_, b)| *b).sum();
            let mut left = m.kind.signed(m.quantity).abs();
            if total < left {
                return Err(bad("stock.insufficient", "quantity"));
            }
            let mut out = Vec::new();
            for (lot, bal) in have {
                if left == 0 {
                    break;
                }
                if bal <= 0 {
                    continue;
                }
                let take = bal.min(left);
                left -= take;
                out.push(move_lot(tx, &base, lot, -take)?);
            }
            Ok(out)
        }
    }
}

struct Base<'a> {
    m: &'a NewMovement,
    node: Uuid,
    note: String,
}

/// A lot and its expiry.
type LotKey = (Uuid, Option<NaiveDate>);

/// The lots of an item at a depot with their balances, first to expire first (locked on
/// PostgreSQL for the rest of the transaction).
fn lock_lots(tx: &mut Tx, depot: Uuid, item: Uuid) -> Result<Vec<(LotKey, i64)>> {
    let lock = match tx.dialect() {
        Dialect::Postgres => " FOR UPDATE OF b",
        Dialect::Sqlite => "",
    };
    let rows = tx.query(
        &format!(
            "SELECT b.lot_id, b.quantity, l.expires_on FROM stock_balances b \
             JOIN stock_lots l ON l.id = b.lot_id WHERE b.depot_id = $1 AND b.item_id = $2 \
             ORDER BY CASE WHEN l.expires_on IS NULL THEN 1 ELSE 0 END, l.expires_on, \
             l.received_at, l.id{lock}"
        ),
        &params![depot, item],
    )?;
    rows.iter()
        .map(|r| Ok(((r.get("lot_id")?, r.get("expires_on")?), r.get("quantity")?)))
        .collect()
}

fn new_lot(tx: &mut Tx, b: &Base<'_>) -> Result<(Uuid, Option<NaiveDate>)> {
    let id = tx.new_id();
    let now = tx.now();
    let source = match (b.m.reference_kind, b.m.reference_id) {
        (Some(k), Some(r)) => format!("{k}:{r}"),
        (Some(k), None) => k.to_owned(),
        _ => String::new(),
    };
    tx.insert(
        "stock_lots",
        &[
            ("id", id.into()),
            ("item_id", b.m.item_id.into()),
            ("depot_id", b.m.depot_id.into()),
            ("node_id", b.node.into()),
            ("expires_on", b.m.expires_on.into()),
            ("received_at", now.into()),
            ("source_ref", source.into()),
            ("created_at", now.into()),
        ],
    )?;
    tx.execute_unlogged(
        "INSERT INTO stock_balances (lot_id, item_id, depot_id, quantity) VALUES ($1, $2, $3, 0)",
        &params![id, b.m.item_id, b.m.depot_id],
    )?;
    Ok((id, b.m.expires_on))
}

fn move_lot(
    tx: &mut Tx,
    b: &Base<'_>,
    (lot, expires_on): (Uuid, Option<NaiveDate>),
    delta: i64,
) -> Result<Posted> {
    let id = tx.new_id();
    let now = tx.now();
    let actor = tx.ctx().actor;
    tx.insert(
        "stock_movements",
        &[
            ("id", id.into()),
            ("kind", b.m.kind.as_str().into()),
            ("item_id", b.m.item_id.into()),
            ("depot_id", b.m.depot_id.into()),
            ("node_id", b.node.into()),
            ("lot_id", lot.into()),
            ("quantity", delta.into()),
            ("reference_kind", b.m.reference_kind.into()),
            ("reference_id", b.m.reference_id.into()),
            ("note", b.note.clone().into()),
            ("actor", actor.into()),
            ("at", now.into()),
        ],
    )?;
    let n = tx.execute_unlogged(
        "UPDATE stock_balances SET quantity = quantity + $1 WHERE lot_id = $2 AND quantity + $1 >= 0",
        &params![delta, lot],
    )?;
    if n != 1 {
        return Err(bad("stock.insufficient", "quantity"));
    }
    Ok(Posted {
        movement_id: id,
        lot_id: lot,
        quantity: delta,
        expires_on,
    })
}

/// A move of stock between two depots (see [`transfer`]).
#[derive(Debug, Clone)]
pub struct Transfer {
    pub item_id: Uuid,
    pub from: Uuid,
    pub to: Uuid,
    /// The lot to take from; `None`: first expiry first.
    pub lot_id: Option<Uuid>,
    pub quantity: i64,
    /// "transfer" or "dispatch", with the id it belongs to.
    pub reference: (&'static str, Option<Uuid>),
    pub note: Option<String>,
}

/// Move `quantity` of an item from one depot to another: transfer_out of the source lots (the
/// given lot, or first expiry first) and a transfer_in of each into a new lot at the target with
/// the same expiry. Returns the movement ids (outs, then ins).
pub fn transfer(tx: &mut Tx, t: &Transfer) -> Result<Vec<Uuid>> {
    let Transfer {
        item_id,
        from,
        to,
        lot_id,
        quantity,
        reference,
        ref note,
    } = *t;
    if from == to {
        return Err(bad("stock.transfer_same_depot", "to_depot_id"));
    }
    if tx
        .query_one("SELECT id FROM facilities WHERE id = $1", &params![to])?
        .is_none()
    {
        return Err(bad("stock.depot_unknown", "to_depot_id"));
    }
    let mut out = NewMovement::new(MovementKind::TransferOut, item_id, from, quantity);
    out.lot_id = lot_id;
    out.reference_kind = Some(reference.0);
    out.reference_id = reference.1;
    out.note = note.clone();
    let outs = post_lots(tx, &out)?;
    let mut ids: Vec<Uuid> = outs.iter().map(|p| p.movement_id).collect();
    for p in &outs {
        let mut inn = NewMovement::new(MovementKind::TransferIn, item_id, to, -p.quantity);
        inn.expires_on = p.expires_on;
        inn.reference_kind = Some(reference.0);
        inn.reference_id = reference.1;
        inn.note = note.clone();
        ids.extend(post(tx, &inn)?);
    }
    Ok(ids)
}

/// The item of `code`: the node's own item when `node` is given and has one, else the
/// catalogue's.
pub fn item_by_code(conn: &mut dyn Conn, node: Option<Uuid>, code: &str) -> Result<Option<Item>> {
    if let Some(n) = node {
        if let Some(r) = conn.query_one(
            "SELECT * FROM supply_items WHERE node_id = $1 AND code = $2",
            &params![n, code],
        )? {
            return Ok(Some(Item::from_row(&r)?));
        }
    }
    conn.query_one(
        "SELECT * FROM supply_items WHERE node_id IS NULL AND code = $1",
        &params![code],
    )?
    .map(|r| Item::from_row(&r))
    .transpose()
}

/// The balance of an item at a depot (all lots).
pub fn balance(conn: &mut dyn Conn, depot_id: Uuid, item_id: Uuid) -> Result<i64> {
    conn.query_i64(
        "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM stock_balances WHERE depot_id = $1 AND item_id = $2",
        &params![depot_id, item_id],
    )
}

/// The balances of every lot as the ledger gives them (lot → sum of its movements).
pub fn recompute(conn: &mut dyn Conn) -> Result<BTreeMap<Uuid, i64>> {
    let rows = conn.query(
        "SELECT l.id, CAST(COALESCE((SELECT SUM(m.quantity) FROM stock_movements m WHERE m.lot_id = l.id), 0) AS BIGINT) AS q \
         FROM stock_lots l",
        &[],
    )?;
    rows.iter()
        .map(|r| Ok((r.get("id")?, r.get("q")?)))
        .collect()
}

/// The kept balances of every lot.
pub fn kept_balances(conn: &mut dyn Conn) -> Result<BTreeMap<Uuid, i64>> {
    let rows = conn.query("SELECT lot_id, quantity FROM stock_balances", &[])?;
    rows.iter()
        .map(|r| Ok((r.get("lot_id")?, r.get("quantity")?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scope and reads.

const FAC_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "f.node_id",
    grid: None,
    household: None,
};

fn reach_read(caller: &Caller) -> Reach {
    caller.reach(Permission::ReadSupplies)
}

/// A depot (facility) within `reach`, with its node; `NotFound` otherwise.
fn depot_in(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Row> {
    let mut ps = vec![Value::Uuid(id)];
    let pred = reach.predicate(conn.dialect(), FAC_SCOPE, &mut ps);
    conn.query_one(
        &format!(
            "SELECT f.id, f.name, f.kind, f.node_id, f.lon, f.lat, n.name AS node_name, \
             CASE WHEN n.level = 'community' THEN n.id WHEN n.level = 'compound' THEN n.parent_id END AS community_id \
             FROM facilities f JOIN nodes n ON n.id = f.node_id WHERE f.id = $1 AND {pred}"
        ),
        &ps,
    )?
    .ok_or(StoreError::NotFound)
}

fn depot_from_row(r: &Row) -> Result<Depot> {
    Ok(Depot {
        id: r.get("id")?,
        name: r.get("name")?,
        kind: r.get("kind")?,
        node_id: r.get("node_id")?,
        node_name: r.get("node_name")?,
        community_id: r.get("community_id")?,
        lon: r.get("lon")?,
        lat: r.get("lat")?,
        items: Vec::new(),
    })
}

fn item_balances(conn: &mut dyn Conn, depots: &[Uuid]) -> Result<Vec<(Uuid, ItemBalance)>> {
    if depots.is_empty() {
        return Ok(Vec::new());
    }
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT b.depot_id, i.id AS item_id, i.code, i.name, i.unit, CAST(SUM(b.quantity) AS BIGINT) AS q, \
             MIN(CASE WHEN b.quantity > 0 THEN l.expires_on END) AS next_expiry \
             FROM stock_balances b JOIN stock_lots l ON l.id = b.lot_id \
             JOIN supply_items i ON i.id = b.item_id WHERE {} \
             GROUP BY b.depot_id, i.id, i.code, i.name, i.unit ORDER BY i.code",
            d.in_json_list("b.depot_id", 1)
        ),
        &[json_ids(depots)],
    )?;
    rows.iter()
        .map(|r| {
            Ok((
                r.get("depot_id")?,
                ItemBalance {
                    item_id: r.get("item_id")?,
                    item_code: r.get("code")?,
                    item_name: r.get("name")?,
                    unit: r.get("unit")?,
                    quantity: r.get("q")?,
                    next_expiry: r.get("next_expiry")?,
                },
            ))
        })
        .collect()
}

/// Facilities within the caller's `ReadSupplies` reach (every one can hold stock), optionally
/// under `node`, with their balances per item.
pub fn list_depots(conn: &mut dyn Conn, caller: &Caller, node: Option<Uuid>) -> Result<Vec<Depot>> {
    let reach = reach_read(caller);
    let mut ps = Vec::new();
    let mut conds = vec![reach.predicate(conn.dialect(), FAC_SCOPE, &mut ps)];
    if let Some(n) = node {
        let below = subtree(conn, n)?;
        ps.push(json_ids(&below));
        conds.push(conn.dialect().in_json_list("f.node_id", ps.len()));
    }
    let rows = conn.query(
        &format!(
            "SELECT f.id, f.name, f.kind, f.node_id, f.lon, f.lat, n.name AS node_name, \
             CASE WHEN n.level = 'community' THEN n.id WHEN n.level = 'compound' THEN n.parent_id END AS community_id \
             FROM facilities f JOIN nodes n ON n.id = f.node_id WHERE {} ORDER BY n.name, f.name, f.id LIMIT 1000",
            conds.join(" AND ")
        ),
        &ps,
    )?;
    let mut depots: Vec<Depot> = rows.iter().map(depot_from_row).collect::<Result<_>>()?;
    let ids: Vec<Uuid> = depots.iter().map(|d| d.id).collect();
    let mut by: HashMap<Uuid, Vec<ItemBalance>> = HashMap::new();
    for (d, b) in item_balances(conn, &ids)? {
        by.entry(d).or_default().push(b);
    }
    for d in &mut depots {
        d.items = by.remove(&d.id).unwrap_or_default();
    }
    Ok(depots)
}

/// One depot with its balances per item; `NotFound` outside the caller's reach.
pub fn get_depot(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Depot> {
    let r = depot_in(conn, &reach_read(caller), id)?;
    let mut d = depot_from_row(&r)?;
    d.items = item_balances(conn, &[id])?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    Ok(d)
}

const LOT_SELECT: &str = "SELECT l.id AS lot_id, l.item_id, i.code AS item_code, i.name AS item_name, i.unit, \
     l.depot_id, f.name AS depot_name, l.node_id, l.expires_on, l.received_at, l.source_ref, b.quantity \
     FROM stock_lots l JOIN stock_balances b ON b.lot_id = l.id JOIN supply_items i ON i.id = l.item_id \
     JOIN facilities f ON f.id = l.depot_id";

/// The lots of a depot that still hold stock, first to expire first.
pub fn depot_lots(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Vec<LotBalance>> {
    depot_in(conn, &reach_read(caller), id)?;
    conn.query(
        &format!(
            "{LOT_SELECT} WHERE l.depot_id = $1 AND b.quantity > 0 ORDER BY i.code, \
             CASE WHEN l.expires_on IS NULL THEN 1 ELSE 0 END, l.expires_on, l.received_at"
        ),
        &params![id],
    )?
    .iter()
    .map(LotBalance::from_row)
    .collect()
}

/// The ledger of a depot, newest first: a page of `limit` (1–200) from `offset`, and the total.
pub fn ledger(
    conn: &mut dyn Conn,
    caller: &Caller,
    depot: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Movement>, i64)> {
    depot_in(conn, &reach_read(caller), depot)?;
    let total = conn.query_i64(
        "SELECT count(*) FROM stock_movements WHERE depot_id = $1",
        &params![depot],
    )?;
    let rows = conn.query(
        "SELECT m.*, i.name AS item_name, i.unit, l.expires_on FROM stock_movements m \
         JOIN supply_items i ON i.id = m.item_id JOIN stock_lots l ON l.id = m.lot_id \
         WHERE m.depot_id = $1 ORDER BY m.at DESC, m.id DESC LIMIT $2 OFFSET $3",
        &params![depot, limit.clamp(1, 200), offset.max(0)],
    )?;
    Ok((
        rows.iter().map(Movement::from_row).collect::<Result<_>>()?,
        total,
    ))
}

/// Lots within the caller's reach that still hold stock and expire on or before `until`
/// (expired ones included), first to expire first.
pub fn expiring(
    conn: &mut dyn Conn,
    caller: &Caller,
    until: NaiveDate,
    node: Option<Uuid>,
) -> Result<Vec<LotBalance>> {
    let reach = reach_read(caller);
    let mut ps = vec![Value::Date(until)];
    let mut conds = vec![
        "l.expires_on IS NOT NULL AND l.expires_on <= $1 AND b.quantity > 0".to_owned(),
        reach.predicate(conn.dialect(), FAC_SCOPE, &mut ps),
    ];
    if let Some(n) = node {
        let below = subtree(conn, n)?;
        ps.push(json_ids(&below));
        conds.push(conn.dialect().in_json_list("l.node_id", ps.len()));
    }
    conn.query(
        &format!(
            "{LOT_SELECT} WHERE {} ORDER BY l.expires_on, f.name LIMIT 500",
            conds.join(" AND ")
        ),
        &ps,
    )?
    .iter()
    .map(LotBalance::from_row)
    .collect()
}

/// Items the caller can use: the catalogue and the own items of the nodes in its reach.
pub fn list_items(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Item>> {
    let reach = reach_read(caller);
    let mut ps = Vec::new();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "s.node_id",
            grid: None,
            household: None,
        },
        &mut ps,
    );
    conn.query(
        &format!(
            "SELECT s.* FROM supply_items s WHERE s.node_id IS NULL OR {pred} \
             ORDER BY CASE WHEN s.node_id IS NULL THEN 0 ELSE 1 END, s.category, s.code LIMIT 1000"
        ),
        &ps,
    )?
    .iter()
    .map(Item::from_row)
    .collect()
}

/// One item the caller can see (the catalogue's, or its reach's own).
pub fn get_item(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Item> {
    let r = conn
        .query_one("SELECT * FROM supply_items WHERE id = $1", &params![id])?
        .ok_or(StoreError::NotFound)?;
    let item = Item::from_row(&r)?;
    if let Some(n) = item.node_id {
        if !reach_read(caller).contains_node(conn, n)? {
            return Err(StoreError::NotFound);
        }
    }
    Ok(item)
}

// ---------------------------------------------------------------------------------------------
// Writes with permission.

/// A community's own item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SupplyItemInput))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    /// The community (or street) the item belongs to; the caller manages supplies there.
    pub node_id: Option<Uuid>,
    /// Lowercase letters, digits and `_`, unique at the node and not a catalogue code.
    pub code: Option<String>,
    pub name: Option<String>,
    /// 只, 个, 件, 箱, 瓶, 顶, 床 …
    pub unit: Option<String>,
    /// food, protection, medical, shelter, tools, flood, fire, other
    pub category: Option<String>,
    /// 1–36500
    pub shelf_life_days: Option<i64>,
}

fn manage_node(conn: &mut dyn Conn, caller: &Caller, node: Uuid) -> Result<()> {
    if caller
        .reach(Permission::ManageSupplies)
        .contains_node(conn, node)?
    {
        return Ok(());
    }
    if reach_read(caller).contains_node(conn, node)? {
        return Err(StoreError::Forbidden("stock.not_allowed"));
    }
    Err(StoreError::NotFound)
}

fn text(v: Option<&str>, field: &str, max: usize) -> Result<String> {
    let s = v.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(bad("value.required", field));
    }
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    Ok(s.to_owned())
}

/// Add a community's own item (`ManageSupplies` at the node); the code is unique per node and
/// must not shadow a catalogue code (`stock.code_taken`).
pub fn create_item(tx: &mut Tx, caller: &Caller, input: &ItemInput) -> Result<Item> {
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    manage_node(tx.conn(), caller, node)?;
    let code = text(input.code.as_deref(), "code", CODE_MAX)?;
    if !code
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(bad("stock.code_invalid", "code"));
    }
    let name = text(input.name.as_deref(), "name", NAME_MAX)?;
    let unit = text(input.unit.as_deref(), "unit", 8)?;
    let category = input
        .category
        .as_deref()
        .unwrap_or("other")
        .trim()
        .to_owned();
    if !dom::CATEGORIES.iter().any(|(c, _, _)| *c == category) {
        return Err(bad("stock.category_invalid", "category"));
    }
    if let Some(d) = input.shelf_life_days {
        if !(1..=36_500).contains(&d) {
            return Err(bad("stock.out_of_range", "shelf_life_days"));
        }
    }
    if tx
        .query_one(
            "SELECT id FROM supply_items WHERE code = $1 AND (node_id IS NULL OR node_id = $2)",
            &params![code.clone(), node],
        )?
        .is_some()
    {
        return Err(StoreError::Conflict {
            code: "stock.code_taken",
            detail: code,
        });
    }
    let id = tx.new_id();
    let now = tx.now();
    let r = tx.insert(
        "supply_items",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("code", code.into()),
            ("name", name.into()),
            ("unit", unit.into()),
            ("category", category.into()),
            ("shelf_life_days", input.shelf_life_days.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Item::from_row(&r)
}

/// A movement asked for over the API or a form.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockMovementInput))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MovementInput {
    /// receive, issue, transfer (to `to_depot_id`), adjust, write_off
    pub kind: Option<String>,
    pub item_id: Option<Uuid>,
    /// The lot to take from (issue, transfer, write_off, adjust); default: first expiry first.
    pub lot_id: Option<Uuid>,
    /// > 0 (adjust: signed, not 0), at most 100,000,000.
    pub quantity: Option<i64>,
    /// Receive or a positive adjust: the new lot's expiry, `YYYY-MM-DD` (default: today plus the
    /// item's shelf life).
    pub expires_on: Option<String>,
    /// Transfers: the receiving depot.
    pub to_depot_id: Option<Uuid>,
    /// At most 500 characters.
    pub note: Option<String>,
}

/// A norm to set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockNormInput))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NormInput {
    /// The node (community, street, …) the norm is set at.
    pub node_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    /// Quantity per 1,000 residents, 0–1,000,000.
    pub per_thousand: Option<i64>,
}

/// Parse a `YYYY-MM-DD` date naming `field` when it is not one.
pub fn parse_date(raw: Option<&str>, field: &str) -> Result<Option<NaiveDate>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| bad("value.date", field)),
    }
}

/// Post a movement at a depot for a caller with `ManageSupplies` at the depot's node (and at the
/// receiving depot's, for a transfer). `kind` "transfer" moves between depots (transfer_out and
/// transfer_in); transfer_in and transfer_out alone are not posted by hand. Returns the movements
/// written.
pub fn post_checked(
    tx: &mut Tx,
    caller: &Caller,
    depot: Uuid,
    input: &MovementInput,
) -> Result<Vec<Uuid>> {
    let d = depot_in(tx.conn(), &reach_read(caller), depot)?;
    let node: Uuid = d.get("node_id")?;
    manage_node(tx.conn(), caller, node)?;
    let kind = input
        .kind
        .as_deref()
        .ok_or_else(|| bad("value.required", "kind"))?;
    let item = input
        .item_id
        .ok_or_else(|| bad("value.required", "item_id"))?;
    let item_row =
        get_item(tx.conn(), caller, item).map_err(|_| bad("stock.item_unknown", "item_id"))?;
    let quantity = input
        .quantity
        .ok_or_else(|| bad("value.required", "quantity"))?;
    let expires_on = parse_date(input.expires_on.as_deref(), "expires_on")?;
    if expires_on.is_some() && kind != "receive" && kind != "adjust" {
        return Err(bad("stock.expiry_not_allowed", "expires_on"));
    }
    if input.to_depot_id.is_some() && kind != "transfer" {
        return Err(bad("stock.target_not_allowed", "to_depot_id"));
    }
    if let Some(l) = input.lot_id {
        let ok = tx
            .query_one(
                "SELECT id FROM stock_lots WHERE id = $1 AND depot_id = $2 AND item_id = $3",
                &params![l, depot, item],
            )?
            .is_some();
        if !ok {
            return Err(bad("stock.lot_unknown", "lot_id"));
        }
    }
    let note = input.note.clone();
    if kind == "transfer" {
        let to = input
            .to_depot_id
            .ok_or_else(|| bad("value.required", "to_depot_id"))?;
        let t = depot_in(tx.conn(), &reach_read(caller), to)
            .map_err(|_| bad("stock.depot_unknown", "to_depot_id"))?;
        let tnode: Uuid = t.get("node_id")?;
        manage_node(tx.conn(), caller, tnode)
            .map_err(|_| bad("stock.depot_unknown", "to_depot_id"))?;
        if !(1..=QUANTITY_MAX).contains(&quantity) {
            return Err(bad("stock.quantity_invalid", "quantity"));
        }
        let tid = tx.new_id();
        return transfer(
            tx,
            &Transfer {
                item_id: item_row.id,
                from: depot,
                to,
                lot_id: input.lot_id,
                quantity,
                reference: ("transfer", Some(tid)),
                note,
            },
        );
    }
    let k: MovementKind = kind
        .parse()
        .map_err(|_| bad("stock.kind_invalid", "kind"))?;
    if matches!(k, MovementKind::TransferIn | MovementKind::TransferOut) {
        return Err(bad("stock.kind_invalid", "kind"));
    }
    let mut m = NewMovement::new(k, item, depot, quantity);
    m.lot_id = input.lot_id;
    m.note = note;
    m.expires_on = expires_on;
    if k == MovementKind::Receive && m.expires_on.is_none() {
        if let Some(days) = item_row.shelf_life_days {
            let today = crate::hazards::risks::local_day(tx.now());
            m.expires_on = today.checked_add_days(chrono::Days::new(days as u64));
        }
    }
    post(tx, &m)
}

// ---------------------------------------------------------------------------------------------
// Norms and the gap report.

/// A norm stored at a node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockNorm))]
#[derive(Debug, Clone, Serialize)]
pub struct Norm {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    pub per_thousand: i64,
}

/// Set (or replace) the norm of an item at a node (`ManageSupplies` at the node).
pub fn set_norm(tx: &mut Tx, caller: &Caller, input: &NormInput) -> Result<Norm> {
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let item = input
        .item_id
        .ok_or_else(|| bad("value.required", "item_id"))?;
    let per_thousand = input
        .per_thousand
        .ok_or_else(|| bad("value.required", "per_thousand"))?;
    manage_node(tx.conn(), caller, node)?;
    get_item(tx.conn(), caller, item).map_err(|_| bad("stock.item_unknown", "item_id"))?;
    if !(0..=1_000_000).contains(&per_thousand) {
        return Err(bad("stock.out_of_range", "per_thousand"));
    }
    let now = tx.now();
    if let Some(r) = tx.query_one(
        "SELECT id FROM stock_norms WHERE node_id = $1 AND item_id = $2",
        &params![node, item],
    )? {
        let id: Uuid = r.get("id")?;
        tx.update(
            "stock_norms",
            id,
            &[
                ("per_thousand", per_thousand.into()),
                ("updated_at", now.into()),
            ],
        )?;
        return norm_by_id(tx.conn(), id);
    }
    let id = tx.new_id();
    let by = tx.ctx().actor;
    tx.insert(
        "stock_norms",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("item_id", item.into()),
            ("per_thousand", per_thousand.into()),
            ("created_by", by.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    norm_by_id(tx.conn(), id)
}

const NORM_SELECT: &str = "SELECT s.id, s.node_id, n.name AS node_name, s.item_id, i.code, i.name, i.unit, s.per_thousand \
     FROM stock_norms s JOIN nodes n ON n.id = s.node_id JOIN supply_items i ON i.id = s.item_id";

fn norm_from_row(r: &Row) -> Result<Norm> {
    Ok(Norm {
        id: r.get("id")?,
        node_id: r.get("node_id")?,
        node_name: r.get("node_name")?,
        item_id: r.get("item_id")?,
        item_code: r.get("code")?,
        item_name: r.get("name")?,
        unit: r.get("unit")?,
        per_thousand: r.get("per_thousand")?,
    })
}

fn norm_by_id(conn: &mut dyn Conn, id: Uuid) -> Result<Norm> {
    let r = conn
        .query_one(&format!("{NORM_SELECT} WHERE s.id = $1"), &params![id])?
        .ok_or(StoreError::NotFound)?;
    norm_from_row(&r)
}

/// The norms stored at the nodes within the caller's reach.
pub fn list_norms(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Norm>> {
    let reach = reach_read(caller);
    let mut ps = Vec::new();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "s.node_id",
            grid: None,
            household: None,
        },
        &mut ps,
    );
    conn.query(
        &format!("{NORM_SELECT} WHERE {pred} ORDER BY n.name, i.code LIMIT 1000"),
        &ps,
    )?
    .iter()
    .map(norm_from_row)
    .collect()
}

/// One line of the gap report: a community's need and balance of an item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockGapLine))]
#[derive(Debug, Clone, Serialize)]
pub struct GapLine {
    pub community_id: Uuid,
    pub community_name: String,
    pub residents: i64,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    /// The norm that applies (per 1,000 residents) and where it is set (`None`: the default).
    pub per_thousand: i64,
    pub norm_node_id: Option<Uuid>,
    pub need: i64,
    pub balance: i64,
    /// need − balance when positive.
    pub gap: i64,
    /// balance − need when positive.
    pub surplus: i64,
}

/// The gap report of a node: one line per community below it and item with a norm or stock.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockGapReport))]
#[derive(Debug, Clone, Serialize)]
pub struct GapReport {
    pub node_id: Uuid,
    pub node_name: String,
    pub lines: Vec<GapLine>,
    /// Per item over every community: (item code, need, balance, gap, surplus).
    pub totals: Vec<GapTotal>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = StockGapTotal))]
#[derive(Debug, Clone, Serialize)]
pub struct GapTotal {
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    pub need: i64,
    pub balance: i64,
    pub gap: i64,
    pub surplus: i64,
}

/// A community below a node, with its position (the node's own, else the mean of its
/// facilities').
#[derive(Debug, Clone)]
pub(crate) struct Community {
    pub id: Uuid,
    pub name: String,
    pub residents: i64,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

pub(crate) fn communities_below(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<Community>> {
    let below = subtree(conn, node)?;
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT n.id, n.name, n.lon, n.lat, \
             (SELECT count(*) FROM people p WHERE p.community_id = n.id) AS residents \
             FROM nodes n WHERE n.level = 'community' AND n.status = 'active' AND {} ORDER BY n.name, n.id",
            d.in_json_list("n.id", 1)
        ),
        &[json_ids(&below)],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Community {
                id: r.get("id")?,
                name: r.get("name")?,
                residents: r.get("residents")?,
                lon: r.get("lon")?,
                lat: r.get("lat")?,
            })
        })
        .collect()
}

/// The nodes from `node` up to the root, nearest first.
fn ancestors(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<Uuid>> {
    let mut out = vec![node];
    let mut cur = node;
    for _ in 0..10 {
        let p = conn.query_one("SELECT parent_id FROM nodes WHERE id = $1", &params![cur])?;
        match p.and_then(|r| r.get::<Option<Uuid>>("parent_id").ok().flatten()) {
            Some(p) => {
                out.push(p);
                cur = p;
            }
            None => break,
        }
    }
    Ok(out)
}

/// The norms that apply at a community: item → (per thousand, node where set; `None` for a
/// default from `defaults`, by item code).
pub fn effective_norms(
    conn: &mut dyn Conn,
    community: Uuid,
    defaults: &BTreeMap<String, i64>,
) -> Result<HashMap<Uuid, (i64, Option<Uuid>)>> {
    let chain = ancestors(conn, community)?;
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT node_id, item_id, per_thousand FROM stock_norms WHERE {}",
            d.in_json_list("node_id", 1)
        ),
        &[json_ids(&chain)],
    )?;
    let mut out: HashMap<Uuid, (i64, Option<Uuid>, usize)> = HashMap::new();
    for r in rows {
        let node: Uuid = r.get("node_id")?;
        let item: Uuid = r.get("item_id")?;
        let per: i64 = r.get("per_thousand")?;
        let depth = chain.iter().position(|n| *n == node).unwrap_or(usize::MAX);
        match out.get(&item) {
            Some((_, _, d)) if *d <= depth => {}
            _ => {
                out.insert(item, (per, Some(node), depth));
            }
        }
    }
    if !defaults.is_empty() {
        let rows = conn.query(
            "SELECT id, code FROM supply_items WHERE node_id IS NULL",
            &[],
        )?;
        for r in rows {
            let id: Uuid = r.get("id")?;
            let code: String = r.get("code")?;
            if let Some(per) = defaults.get(&code) {
                out.entry(id).or_insert((*per, None, usize::MAX));
            }
        }
    }
    Ok(out.into_iter().map(|(k, (p, n, _))| (k, (p, n))).collect())
}

/// Balances per (community, item) of the depots inside each community.
pub(crate) fn community_balances(
    conn: &mut dyn Conn,
    communities: &[Uuid],
) -> Result<HashMap<(Uuid, Uuid), i64>> {
    if communities.is_empty() {
        return Ok(HashMap::new());
    }
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT CASE WHEN n.level = 'community' THEN n.id ELSE n.parent_id END AS community_id, \
             b.item_id, CAST(SUM(b.quantity) AS BIGINT) AS q FROM stock_balances b JOIN facilities f ON f.id = b.depot_id \
             JOIN nodes n ON n.id = f.node_id WHERE n.level IN ('community', 'compound') \
             AND ({} OR {}) GROUP BY 1, 2",
            d.in_json_list("n.id", 1),
            d.in_json_list("n.parent_id", 1)
        ),
        &[json_ids(communities)],
    )?;
    let mut out = HashMap::new();
    for r in rows {
        let c: Uuid = r.get("community_id")?;
        out.insert((c, r.get("item_id")?), r.get("q")?);
    }
    Ok(out)
}

/// The gap report of `node` (a community, street or above within the caller's `ReadSupplies`
/// reach): per community and item, the need by the norm that applies against the balance of
/// its depots.
pub fn gap_report(
    conn: &mut dyn Conn,
    caller: &Caller,
    node: Uuid,
    defaults: &BTreeMap<String, i64>,
) -> Result<GapReport> {
    if !reach_read(caller).contains_node(conn, node)? {
        return Err(StoreError::NotFound);
    }
    gap_report_of(conn, node, defaults)
}

pub(crate) fn gap_report_of(
    conn: &mut dyn Conn,
    node: Uuid,
    defaults: &BTreeMap<String, i64>,
) -> Result<GapReport> {
    let node_name: String = conn
        .query_one("SELECT name FROM nodes WHERE id = $1", &params![node])?
        .ok_or(StoreError::NotFound)?
        .get("name")?;
    let comms = communities_below(conn, node)?;
    let ids: Vec<Uuid> = comms.iter().map(|c| c.id).collect();
    let balances = community_balances(conn, &ids)?;
    let items: HashMap<Uuid, Item> = conn
        .query("SELECT * FROM supply_items", &[])?
        .iter()
        .map(|r| Item::from_row(r).map(|i| (i.id, i)))
        .collect::<Result<_>>()?;
    let mut lines = Vec::new();
    for c in &comms {
        let norms = effective_norms(conn, c.id, defaults)?;
        let mut item_ids: Vec<Uuid> = norms.keys().copied().collect();
        for (cc, i) in balances.keys() {
            if *cc == c.id && !item_ids.contains(i) {
                item_ids.push(*i);
            }
        }
        for i in item_ids {
            let Some(item) = items.get(&i) else { continue };
            let (per, at) = norms.get(&i).copied().unwrap_or((0, None));
            let need = dom::norm_need(c.residents, per);
            let balance = balances.get(&(c.id, i)).copied().unwrap_or(0);
            if need == 0 && balance == 0 {
                continue;
            }
            lines.push(GapLine {
                community_id: c.id,
                community_name: c.name.clone(),
                residents: c.residents,
                item_id: i,
                item_code: item.code.clone(),
                item_name: item.name.clone(),
                unit: item.unit.clone(),
                per_thousand: per,
                norm_node_id: at,
                need,
                balance,
                gap: (need - balance).max(0),
                surplus: (balance - need).max(0),
            });
        }
    }
    lines.sort_by(|a, b| {
        (a.community_name.as_str(), a.item_code.as_str())
            .cmp(&(b.community_name.as_str(), b.item_code.as_str()))
    });
    let mut totals: BTreeMap<String, GapTotal> = BTreeMap::new();
    for l in &lines {
        let t = totals
            .entry(l.item_code.clone())
            .or_insert_with(|| GapTotal {
                item_id: l.item_id,
                item_code: l.item_code.clone(),
                item_name: l.item_name.clone(),
                unit: l.unit.clone(),
                need: 0,
                balance: 0,
                gap: 0,
                surplus: 0,
            });
        t.need += l.need;
        t.balance += l.balance;
        t.gap += l.gap;
        t.surplus += l.surplus;
    }
    Ok(GapReport {
        node_id: node,
        node_name,
        lines,
        totals: totals.into_values().collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Expiry warnings.

/// A lot the expiry job owes a warning.
#[derive(Debug, Clone, Serialize)]
pub struct DueWarning {
    pub lot_id: Uuid,
    pub item_name: String,
    pub unit: String,
    pub depot_name: String,
    pub node_id: Uuid,
    pub node_name: String,
    pub expires_on: NaiveDate,
    pub quantity: i64,
}

/// Lots that still hold stock, expire on or before `until` and were not warned about yet.
pub fn due_warnings(conn: &mut dyn Conn, until: NaiveDate, limit: i64) -> Result<Vec<DueWarning>> {
    conn.query(
        "SELECT l.id, i.name AS item_name, i.unit, f.name AS depot_name, l.node_id, n.name AS node_name, \
         l.expires_on, b.quantity FROM stock_lots l JOIN stock_balances b ON b.lot_id = l.id \
         JOIN supply_items i ON i.id = l.item_id JOIN facilities f ON f.id = l.depot_id \
         JOIN nodes n ON n.id = l.node_id \
         WHERE l.expires_on IS NOT NULL AND l.expires_on <= $1 AND b.quantity > 0 \
         AND NOT EXISTS (SELECT 1 FROM stock_expiry_warnings w WHERE w.lot_id = l.id) \
         ORDER BY l.expires_on, l.id LIMIT $2",
        &params![until, limit],
    )?
    .iter()
    .map(|r| {
        Ok(DueWarning {
            lot_id: r.get("id")?,
            item_name: r.get("item_name")?,
            unit: r.get("unit")?,
            depot_name: r.get("depot_name")?,
            node_id: r.get("node_id")?,
            node_name: r.get("node_name")?,
            expires_on: r.get("expires_on")?,
            quantity: r.get("quantity")?,
        })
    })
    .collect()
}

/// Record that a lot was warned about (once: a second record is ignored). Returns whether this
/// call recorded it.
pub fn record_warning(
    tx: &mut Tx,
    lot: Uuid,
    expires_on: NaiveDate,
    recipients: i64,
) -> Result<bool> {
    let now = tx.now();
    let n = tx.execute_unlogged(
        "INSERT INTO stock_expiry_warnings (lot_id, expires_on, warned_at, recipients) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (lot_id) DO NOTHING",
        &params![lot, expires_on, now, recipients],
    )?;
    Ok(n == 1)
}

/// Whether (and when) a lot was warned about.
pub fn warned_at(conn: &mut dyn Conn, lot: Uuid) -> Result<Option<DateTime<Utc>>> {
    conn.query_one(
        "SELECT warned_at FROM stock_expiry_warnings WHERE lot_id = $1",
        &params![lot],
    )?
    .map(|r| r.get("warned_at"))
    .transpose()
}

/// A duty phone, opened, and its mask.
pub type Phone = (String, String);

/// Staff to warn about a node's stock: users with an active node grant at the node or above
/// whose role manages supplies, with their duty phone there (opened) and its mask.
pub fn stock_keepers(
    conn: &mut dyn Conn,
    env: &crate::Env,
    node: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Option<Phone>)>> {
    let chain = ancestors(conn, node)?;
    let roles: Vec<serde_json::Value> = anxin_domain::roles::Role::ALL
        .iter()
        .filter(|r| r.has(Permission::ManageSupplies))
        .map(|r| serde_json::Value::String(r.as_str().to_owned()))
        .collect();
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT DISTINCT user_id FROM grants WHERE revoked_at IS NULL AND valid_from <= $1 \
             AND (valid_to IS NULL OR valid_to > $1) AND scope_kind = 'node' AND {} AND {} \
             ORDER BY user_id LIMIT 50",
            d.in_json_list("scope_id", 2),
            d.in_json_list("role", 3)
        ),
        &[
            Value::Time(now),
            json_ids(&chain),
            Value::Json(serde_json::Value::Array(roles)),
        ],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let u: Uuid = r.get("user_id")?;
        let phone = crate::hazards::risks::owner_phone(conn, env, u, node)?;
        out.push((u, phone));
    }
    Ok(out)
}
