//! Distribution campaigns (物资发放) (owner: campaigns).
//!
//! The rush: [`reserve_many`] decides a whole batch with a few set-based statements per
//! campaign and answers each request with its slot (`Reserved::slot`), so the answer needs no
//! second read.
//!
//! - **Campaigns** belong to a node (a community, or a street/district for everything below it),
//!   optionally narrowed to compounds. A worker with `RunCampaigns` there configures one (item,
//!   quantity per household, pickup or delivery, pickup slots with capacities, eligibility, mode
//!   `fcfs` or `lottery` with a draw time, the stock set aside) as a draft, then opens it.
//!   Opening checks that the slots can serve the stock, creates the counters and gives every
//!   household in scope with a vulnerable person a **delivery order** (taken from the stock like a
//!   reservation), assigned to the person's helper when there is one. `open → closed`;
//!   `draft/open → cancelled`.
//! - **Reservations**: one per household per campaign (unique index); a retry answers the
//!   existing reservation. Stock and slot capacity are counters in `campaign_counters`, taken
//!   with a guarded `UPDATE … SET used = used + n WHERE used + n <= cap` inside the write: the
//!   row lock makes it hold with several servers on one PostgreSQL, the single writer on SQLite.
//!   On PostgreSQL the household's row is locked first (`FOR UPDATE`) so two servers answering
//!   the same household at once serialise instead of one failing on the unique index.
//! - **Codes**: 50 bits, derived from the reservation id with the keyed blind-index HMAC
//!   (`campaigns.code`), so the resident can be shown it again without storing it; only its
//!   keyed hash (`code_bidx`, unique per campaign) is stored, for redemption. A copy of the
//!   database alone gives no usable code; sealing a code per reservation would cost a data key
//!   per reservation in the rush.
//! - **CampaignRedemption** is single use: `UPDATE … WHERE redeemed_at IS NULL`; a second attempt is
//!   answered with when and by whom the code was used.
//! - **Lottery**: requests are `applied` (no stock taken); the draw (timer at `draw_at` or a
//!   worker) shuffles the applicants with a recorded random seed
//!   ([`anxin_domain::campaign::draw`]) and takes winners while stock and their slot allow; the
//!   others are `lost`.

use std::collections::{HashMap, HashSet};

use anxin_domain::campaign::{self as dc, SupplyEntry};
use anxin_domain::roles::Permission;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::ops::{Activation, ActivationStep};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Env;

const TITLE_MAX: usize = 80;
const NOTE_MAX: usize = 500;
const LABEL_MAX: usize = 80;
const SLOTS_MAX: usize = 50;
const COMPOUNDS_MAX: usize = 200;
/// Blind-index context deriving a reservation's code from its id.
const CODE_CONTEXT: &str = "campaigns.code";
/// Blind-index context of a code, for redemption.
const CODE_BIDX: &str = "campaigns.code_bidx";

pub const CAMPAIGN_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "c.node_id",
    grid: None,
    household: None,
};

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn conflict(code: &'static str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: code.into(),
    }
}

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

fn clean(field: &str, raw: Option<&str>, max: usize) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
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

/// The pickup code of a reservation (stored form, no dash).
pub fn code_of(env: &Env, reservation_id: Uuid) -> String {
    dc::code_from_bytes(&env.keys.blind(CODE_CONTEXT, &reservation_id.to_string()))
}

fn code_bidx(env: &Env, code: &str) -> Vec<u8> {
    env.keys.blind(CODE_BIDX, code)
}

// ---------------------------------------------------------------------------------------------
// Records.

/// A pickup slot with its counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CampaignSlot {
    pub id: Uuid,
    pub facility_id: Option<Uuid>,
    /// The place as shown (the facility's name, or the label given).
    pub place: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Households it can serve.
    pub capacity: i64,
    /// Households holding a reservation for it (reserved or redeemed).
    pub reserved: i64,
    pub redeemed: i64,
    pub remaining: i64,
}

/// A campaign with its counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Campaign {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub title: String,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub item_unit: String,
    pub quantity_per_household: i64,
    /// pickup, delivery
    pub fulfilment: String,
    /// all, vulnerable
    pub eligibility: String,
    /// fcfs, lottery
    pub mode: String,
    pub draw_at: Option<DateTime<Utc>>,
    /// Units set aside.
    pub stock: i64,
    /// Units held by reservations and delivery orders.
    pub reserved: i64,
    pub remaining: i64,
    pub compounds: Vec<Uuid>,
    pub depot_id: Option<Uuid>,
    /// draft, open, closed, cancelled
    pub status: String,
    pub incident_id: Option<Uuid>,
    pub lottery_seed: Option<String>,
    pub drawn_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Campaign {
    fn from_row(r: &Row) -> Result<Self> {
        let stock: i64 = r.get("stock")?;
        let used: Option<i64> = r.get("used")?;
        let used = used.unwrap_or(0);
        let compounds: String = r.get("compounds")?;
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
            title: r.get("title")?,
            item_id: r.get("item_id")?,
            item_code: r.get("item_code")?,
            item_name: r.get::<Option<String>>("item_name")?.unwrap_or_default(),
            item_unit: r.get::<Option<String>>("item_unit")?.unwrap_or_default(),
            quantity_per_household: r.get("quantity_per_household")?,
            fulfilment: r.get("fulfilment")?,
            eligibility: r.get("eligibility")?,
            mode: r.get("mode")?,
            draw_at: r.get("draw_at")?,
            stock,
            reserved: used,
            remaining: stock - used,
            compounds: serde_json::from_str(&compounds).unwrap_or_default(),
            depot_id: r.get("depot_id")?,
            status: r.get("status")?,
            incident_id: r.get("incident_id")?,
            lottery_seed: r.get("lottery_seed")?,
            drawn_at: r.get("drawn_at")?,
            opened_at: r.get("opened_at")?,
            closed_at: r.get("closed_at")?,
            note: r.get("note")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

const CAMPAIGN_COLS: &str =
    "c.*, (SELECT n.name FROM nodes n WHERE n.id = c.node_id) AS node_name, \
    (SELECT i.name FROM supply_items i WHERE i.id = c.item_id) AS item_name, \
    (SELECT i.unit FROM supply_items i WHERE i.id = c.item_id) AS item_unit, \
    (SELECT k.used FROM campaign_counters k WHERE k.id = c.id) AS used";

/// A campaign, its slots and its counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CampaignDetail {
    pub campaign: Campaign,
    pub slots: Vec<CampaignSlot>,
    /// Reservations by status (reserved, applied, lost, redeemed, delivered, cancelled), pickup
    /// and delivery together.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub counts: serde_json::Value,
    /// Delivery orders still to deliver, and of them not assigned to anyone.
    pub deliveries_open: i64,
    pub deliveries_unassigned: i64,
}

/// Who may see and run campaigns.
pub fn run_reach(caller: &Caller) -> Reach {
    caller.reach(Permission::RunCampaigns)
}

fn load(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Campaign> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), CAMPAIGN_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE c.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Campaign::from_row(&row)
}

fn all() -> Reach {
    Reach {
        all: true,
        ..Reach::default()
    }
}

/// A campaign the caller may see.
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Campaign> {
    load(conn, &run_reach(caller), id)
}

fn slots_of(conn: &mut dyn Conn, campaign: Uuid) -> Result<Vec<CampaignSlot>> {
    let rows = conn.query(
        "SELECT s.*, f.name AS facility_name, k.used, \
         (SELECT count(*) FROM campaign_reservations r WHERE r.slot_id = s.id AND r.status = 'redeemed') AS redeemed \
         FROM campaign_slots s LEFT JOIN facilities f ON f.id = s.facility_id \
         LEFT JOIN campaign_counters k ON k.id = s.id \
         WHERE s.campaign_id = $1 ORDER BY s.starts_at, s.id",
        &params![campaign],
    )?;
    rows.iter()
        .map(|r| {
            let capacity: i64 = r.get("capacity")?;
            let used: Option<i64> = r.get("used")?;
            let used = used.unwrap_or(0);
            let facility: Option<String> = r.get("facility_name")?;
            let label: String = r.get("place_label")?;
            Ok(CampaignSlot {
                id: r.get("id")?,
                facility_id: r.get("facility_id")?,
                place: facility.filter(|_| label.is_empty()).unwrap_or(label),
                starts_at: r.get("starts_at")?,
                ends_at: r.get("ends_at")?,
                capacity,
                reserved: used,
                redeemed: r.get("redeemed")?,
                remaining: capacity - used,
            })
        })
        .collect()
}

/// A campaign with its slots and counts.
pub fn detail(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<CampaignDetail> {
    let campaign = get(conn, caller, id)?;
    detail_of(conn, campaign)
}

fn detail_of(conn: &mut dyn Conn, campaign: Campaign) -> Result<CampaignDetail> {
    let id = campaign.id;
    let slots = slots_of(conn, id)?;
    let mut counts = serde_json::Map::new();
    for s in [
        "reserved",
        "applied",
        "lost",
        "redeemed",
        "delivered",
        "cancelled",
    ] {
        counts.insert(s.into(), json!(0));
    }
    for r in conn.query(
        "SELECT status, count(*) AS n FROM campaign_reservations WHERE campaign_id = $1 GROUP BY status",
        &params![id],
    )? {
        let s: String = r.get("status")?;
        let n: i64 = r.get("n")?;
        counts.insert(s, json!(n));
    }
    let deliveries_open = conn.query_i64(
        "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1 AND kind = 'delivery' AND status = 'reserved'",
        &params![id],
    )?;
    let deliveries_unassigned = conn.query_i64(
        "SELECT count(*) FROM campaign_reservations WHERE campaign_id = $1 AND kind = 'delivery' \
         AND status = 'reserved' AND assignee_user_id IS NULL",
        &params![id],
    )?;
    Ok(CampaignDetail {
        campaign,
        slots,
        counts: serde_json::Value::Object(counts),
        deliveries_open,
        deliveries_unassigned,
    })
}

/// List filter.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    /// draft, open, closed, cancelled
    pub status: Option<String>,
    /// Campaigns of this incident.
    pub incident_id: Option<Uuid>,
}

/// Campaigns the caller may see, newest first (at most 500).
pub fn list(conn: &mut dyn Conn, caller: &Caller, q: &CampaignQuery) -> Result<Vec<Campaign>> {
    let mut params = Vec::new();
    let mut parts = vec![run_reach(caller).predicate(conn.dialect(), CAMPAIGN_SCOPE, &mut params)];
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !dc::STATES.contains(&s) {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        parts.push(format!("c.status = ${}", params.len()));
    }
    if let Some(i) = q.incident_id {
        params.push(i.into());
        parts.push(format!("c.incident_id = ${}", params.len()));
    }
    conn.query(
        &format!(
            "SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE {} ORDER BY c.created_at DESC, c.id DESC LIMIT 500",
            parts.join(" AND ")
        ),
        &params,
    )?
    .iter()
    .map(Campaign::from_row)
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Configure.

/// A pickup slot as configured.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlotInput {
    /// A facility of the campaign's node (its name is the place).
    pub facility_id: Option<Uuid>,
    /// The place's label (required without a facility), e.g. 社区居委会.
    pub place_label: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Households it can serve (1–100,000).
    pub capacity: i64,
}

/// A campaign as configured (a draft).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// The node (community, or a street/district for all below it).
    pub node_id: Uuid,
    pub title: String,
    /// The item's code in the catalogue (e.g. `mask`).
    pub item_code: String,
    /// Units per household (1–1,000; default 1).
    pub quantity_per_household: Option<i64>,
    /// pickup (default) or delivery.
    pub fulfilment: Option<String>,
    /// all (default) or vulnerable.
    pub eligibility: Option<String>,
    /// fcfs (default) or lottery.
    pub mode: Option<String>,
    /// When the lottery is drawn (lottery only, required there).
    pub draw_at: Option<DateTime<Utc>>,
    /// Units set aside (1–10,000,000).
    pub stock: i64,
    /// Only households of these compounds (nodes of level compound under `node_id`); empty: all.
    #[serde(default)]
    pub compounds: Vec<Uuid>,
    /// The depot (a facility) the stock comes from, for the record.
    pub depot_id: Option<Uuid>,
    pub note: Option<String>,
    /// Pickup slots (pickup only; at least one there).
    #[serde(default)]
    pub slots: Vec<SlotInput>,
}

/// The item of `code` (the node's own, else the catalogue's): (id, name).
fn item(conn: &mut dyn Conn, node: Uuid, code: &str, field: &str) -> Result<(Uuid, String)> {
    let it = crate::supplies::reserves::item_by_code(conn, Some(node), code)?
        .ok_or_else(|| bad("campaign.item_unknown", field))?;
    Ok((it.id, it.name))
}

fn one_of(field: &str, v: Option<&str>, allowed: &[&str], default: &str) -> Result<String> {
    let s = v
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    if allowed.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(bad("value.invalid", field))
    }
}

fn facility_in(conn: &mut dyn Conn, node: Uuid, facility: Uuid, field: &str) -> Result<()> {
    let r = Reach {
        nodes: vec![node],
        ..Reach::default()
    };
    let mut params = vec![Value::from(facility)];
    let pred = r.predicate(
        conn.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    if conn.query_i64(
        &format!("SELECT count(*) FROM facilities f WHERE f.id = $1 AND {pred}"),
        &params,
    )? == 0
    {
        return Err(bad("campaign.facility_outside", field));
    }
    Ok(())
}

/// Create a draft campaign (needs `RunCampaigns` at its node).
pub fn create(tx: &mut Tx, caller: &Caller, i: &CampaignInput) -> Result<CampaignDetail> {
    if !run_reach(caller).contains_node(tx.conn(), i.node_id)? {
        return Err(bad("campaign.node_outside", "node_id"));
    }
    let id = insert_campaign(tx, i, None)?;
    let c = load(tx.conn(), &all(), id)?;
    detail_of(tx.conn(), c)
}

fn insert_campaign(tx: &mut Tx, i: &CampaignInput, incident: Option<Uuid>) -> Result<Uuid> {
    let title = clean("title", Some(&i.title), TITLE_MAX)?;
    if title.is_empty() {
        return Err(bad("value.required", "title"));
    }
    let note = clean("note", i.note.as_deref(), NOTE_MAX)?;
    let code = i.item_code.trim();
    if code.is_empty() {
        return Err(bad("value.required", "item_code"));
    }
    let (item_id, _) = item(tx.conn(), i.node_id, code, "item_code")?;
    let qty = i.quantity_per_household.unwrap_or(1);
    if !(1..=1_000).contains(&qty) {
        return Err(bad("value.out_of_range", "quantity_per_household"));
    }
    if !(1..=10_000_000).contains(&i.stock) {
        return Err(bad("value.out_of_range", "stock"));
    }
    let fulfilment = one_of(
        "fulfilment",
        i.fulfilment.as_deref(),
        dc::FULFILMENTS,
        "pickup",
    )?;
    let eligibility = one_of(
        "eligibility",
        i.eligibility.as_deref(),
        dc::ELIGIBILITIES,
        "all",
    )?;
    let mode = one_of("mode", i.mode.as_deref(), dc::MODES, "fcfs")?;
    let now = tx.now();
    match (mode.as_str(), i.draw_at) {
        ("lottery", None) => return Err(bad("value.required", "draw_at")),
        ("lottery", Some(d)) if d <= now => return Err(bad("campaign.draw_in_past", "draw_at")),
        ("fcfs", Some(_)) => return Err(bad("campaign.draw_only_lottery", "draw_at")),
        _ => {}
    }
    let nodes: HashSet<Uuid> = crate::ops::plans::subtree(tx.conn(), i.node_id)?
        .into_iter()
        .collect();
    if i.compounds.len() > COMPOUNDS_MAX {
        return Err(bad("value.too_long", "compounds"));
    }
    for (k, c) in i.compounds.iter().enumerate() {
        let lvl: Option<String> = tx
            .query_one("SELECT level FROM nodes WHERE id = $1", &params![*c])?
            .map(|r| r.get("level"))
            .transpose()?;
        if !nodes.contains(c) || lvl.as_deref() != Some("compound") {
            return Err(bad("campaign.compound_outside", format!("compounds[{k}]")));
        }
    }
    if let Some(d) = i.depot_id {
        facility_in(tx.conn(), i.node_id, d, "depot_id")?;
    }
    if fulfilment == "pickup" && i.slots.is_empty() {
        return Err(bad("campaign.slots_required", "slots"));
    }
    if fulfilment == "delivery" && !i.slots.is_empty() {
        return Err(bad("campaign.slots_only_pickup", "slots"));
    }
    if i.slots.len() > SLOTS_MAX {
        return Err(bad("value.too_long", "slots"));
    }
    let id = tx.new_id();
    let mut compounds = i.compounds.clone();
    compounds.sort_unstable();
    compounds.dedup();
    let compounds_json =
        serde_json::to_string(&compounds).map_err(|e| StoreError::Backend(e.to_string()))?;
    tx.insert(
        "campaigns",
        &[
            ("id", id.into()),
            ("node_id", i.node_id.into()),
            ("title", title.into()),
            ("item_id", item_id.into()),
            ("item_code", code.into()),
            ("quantity_per_household", qty.into()),
            ("fulfilment", fulfilment.into()),
            ("eligibility", eligibility.into()),
            ("mode", mode.into()),
            ("draw_at", i.draw_at.into()),
            ("stock", i.stock.into()),
            ("compounds", compounds_json.into()),
            ("depot_id", i.depot_id.into()),
            ("status", "draft".into()),
            ("incident_id", incident.into()),
            ("note", note.into()),
            ("created_by", tx.ctx().actor.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    for (k, s) in i.slots.iter().enumerate() {
        let f = |n: &str| format!("slots[{k}].{n}");
        let label = clean(&f("place_label"), s.place_label.as_deref(), LABEL_MAX)?;
        match s.facility_id {
            Some(fac) => facility_in(tx.conn(), i.node_id, fac, &f("facility_id"))?,
            None if label.is_empty() => return Err(bad("value.required", f("place_label"))),
            None => {}
        }
        if s.ends_at <= s.starts_at {
            return Err(bad("campaign.slot_ends_before_start", f("ends_at")));
        }
        if s.ends_at - s.starts_at > Duration::days(31) {
            return Err(bad("value.out_of_range", f("ends_at")));
        }
        if !(1..=100_000).contains(&s.capacity) {
            return Err(bad("value.out_of_range", f("capacity")));
        }
        tx.insert(
            "campaign_slots",
            &[
                ("id", tx.new_id().into()),
                ("campaign_id", id.into()),
                ("node_id", i.node_id.into()),
                ("facility_id", s.facility_id.into()),
                ("place_label", label.into()),
                ("starts_at", s.starts_at.into()),
                ("ends_at", s.ends_at.into()),
                ("capacity", s.capacity.into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )?;
    }
    Ok(id)
}

/// What opening did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CampaignOpenReport {
    pub campaign: Campaign,
    /// Delivery orders created for households with vulnerable people.
    pub deliveries: i64,
    /// Of them, assigned to the person's helper.
    pub to_helpers: i64,
}

fn load_for_write(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Campaign> {
    let reach = run_reach(caller);
    let c = load(tx.conn(), &reach, id)?;
    Ok(c)
}

/// The job that tells the households of a campaign (and the assignees of its delivery orders)
/// what just happened to it: payload `{"campaign": id, "event": "opened" | "drawn"}`, handled by
/// the application's notices (`anxin::supplies::notices`), which records its progress in the
/// payload as it goes.
pub const NOTICES_JOB: &str = "campaign.notices";

/// Enqueue [`NOTICES_JOB`] in the write that opens or draws the campaign: the notices are as
/// durable as the event (a server that stops right after the commit still sends them), and the
/// request does not wait for a district's tens of thousands of messages.
fn notices_job(tx: &mut Tx, campaign: Uuid, event: &str) -> Result<()> {
    let now = tx.now();
    crate::jobs::enqueue(
        tx,
        NOTICES_JOB,
        &serde_json::json!({ "campaign": campaign, "event": event }),
        now,
        Some(&format!("{NOTICES_JOB}.{event}@{campaign}")),
    )
    .map(drop)
}

/// Open a draft campaign: checks, counters, delivery orders.
pub fn open(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<CampaignOpenReport> {
    let c = load_for_write(tx, caller, id)?;
    open_in(tx, c)
}

fn open_in(tx: &mut Tx, c: Campaign) -> Result<CampaignOpenReport> {
    open_with(tx, c, None)
}

/// [`open_in`], given the vulnerable people of the campaign's nodes when an activation has
/// read them already (its welfare step reads the same people).
fn open_with(
    tx: &mut Tx,
    c: Campaign,
    found: Option<&[crate::ops::InScope]>,
) -> Result<CampaignOpenReport> {
    if !dc::can_move(&c.status, "open") {
        return Err(conflict("campaign.not_draft"));
    }
    let now = tx.now();
    let slots = slots_of(tx.conn(), c.id)?;
    if c.fulfilment == "pickup" {
        let households: i64 = slots.iter().map(|s| s.capacity).sum();
        if households.saturating_mul(c.quantity_per_household) < c.stock {
            return Err(conflict("campaign.capacity_below_stock"));
        }
        if slots.iter().all(|s| s.ends_at <= now) {
            return Err(conflict("campaign.slots_over"));
        }
    }
    if c.mode == "lottery" && c.draw_at.is_some_and(|d| d <= now) {
        return Err(conflict("campaign.draw_in_past"));
    }
    tx.execute_unlogged(
        "INSERT INTO campaign_counters (id, campaign_id, cap, used) VALUES ($1, $1, $2, 0)",
        &params![c.id, c.stock],
    )?;
    for s in &slots {
        tx.execute_unlogged(
            "INSERT INTO campaign_counters (id, campaign_id, cap, used) VALUES ($1, $2, $3, 0)",
            &params![s.id, c.id, s.capacity],
        )?;
    }
    // Delivery orders: households in scope with a vulnerable person, helper first.
    let scope = Scope::of(tx.conn(), &c)?;
    let found = match found {
        Some(rows) => households_of(rows, &scope),
        None => vulnerable_households(tx.conn(), &scope)?,
    };
    let need = i64::try_from(found.len()).unwrap_or(i64::MAX) * c.quantity_per_household;
    if need > 0 {
        let n = tx.execute_unlogged(
            "UPDATE campaign_counters SET used = used + $2 WHERE id = $1 AND used + $2 <= cap",
            &params![c.id, need],
        )?;
        if n == 0 {
            return Err(conflict("campaign.stock_below_deliveries"));
        }
    }
    let mut to_helpers = 0i64;
    let rows: Vec<Vec<Value>> = found
        .iter()
        .map(|(h, community, helper)| {
            if helper.is_some() {
                to_helpers += 1;
            }
            let (none, never) = (Option::<Uuid>::None, Option::<DateTime<Utc>>::None);
            vec![
                tx.new_id().into(),
                c.id.into(),
                c.node_id.into(),
                (*h).into(),
                (*community).into(),
                none.into(),
                "delivery".into(),
                "reserved".into(),
                c.quantity_per_household.into(),
                Option::<Vec<u8>>::None.into(),
                false.into(),
                none.into(),
                Option::<String>::None.into(),
                (*helper).into(),
                never.into(),
                none.into(),
                never.into(),
                none.into(),
                "".into(),
                now.into(),
                now.into(),
            ]
        })
        .collect();
    // Every column (an activation's district has thousands: the bulk path on PostgreSQL).
    let deliveries = crate::ops::insert_all(
        tx,
        "campaign_reservations",
        &[
            "id",
            "campaign_id",
            "node_id",
            "household_id",
            "community_id",
            "slot_id",
            "kind",
            "status",
            "quantity",
            "code_bidx",
            "on_behalf",
            "actor",
            "request_key",
            "assignee_user_id",
            "redeemed_at",
            "redeemed_by",
            "delivered_at",
            "delivered_by",
            "note",
            "created_at",
            "updated_at",
        ],
        &rows,
    )?;
    if let Some(depot) = c.depot_id {
        // The stock set aside leaves the depot (oldest expiry first), referenced to the campaign.
        let mut m = crate::supplies::reserves::NewMovement::new(
            anxin_domain::supplies::MovementKind::Issue,
            c.item_id,
            depot,
            c.stock,
        );
        m.reference_kind = Some("campaign");
        m.reference_id = Some(c.id);
        m.note = Some(c.title.clone());
        crate::supplies::reserves::post(tx, &m)?;
    }
    tx.update(
        "campaigns",
        c.id,
        &[
            ("status", "open".into()),
            ("opened_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    notices_job(tx, c.id, "opened")?;
    Ok(CampaignOpenReport {
        campaign: load(tx.conn(), &all(), c.id)?,
        deliveries: i64::try_from(deliveries).unwrap_or(i64::MAX),
        to_helpers,
    })
}

/// Close an open campaign (reservations not picked up stay as they are; no new ones).
pub fn close(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Campaign> {
    let c = load_for_write(tx, caller, id)?;
    move_to(tx, &c, "closed")
}

/// Cancel a draft or open campaign.
pub fn cancel(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Campaign> {
    let c = load_for_write(tx, caller, id)?;
    move_to(tx, &c, "cancelled")
}

fn move_to(tx: &mut Tx, c: &Campaign, to: &str) -> Result<Campaign> {
    if !dc::can_move(&c.status, to) {
        return Err(conflict(if to == "closed" {
            "campaign.not_open"
        } else {
            "campaign.already_ended"
        }));
    }
    let now = tx.now();
    tx.update(
        "campaigns",
        c.id,
        &[
            ("status", to.into()),
            ("closed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load(tx.conn(), &all(), c.id)
}

// ---------------------------------------------------------------------------------------------
// Scope and eligibility.

/// Where a campaign's households are.
struct Scope {
    nodes: HashSet<Uuid>,
    compounds: HashSet<Uuid>,
    vulnerable_only: bool,
}

impl Scope {
    fn of(conn: &mut dyn Conn, c: &Campaign) -> Result<Scope> {
        Ok(Scope {
            nodes: crate::ops::plans::subtree(conn, c.node_id)?
                .into_iter()
                .collect(),
            compounds: c.compounds.iter().copied().collect(),
            vulnerable_only: c.eligibility == "vulnerable",
        })
    }
    fn holds(&self, community: Uuid, compound: Option<Uuid>) -> bool {
        self.nodes.contains(&community)
            && (self.compounds.is_empty() || compound.is_some_and(|c| self.compounds.contains(&c)))
    }
}

/// Households in scope with a vulnerable person: (household, community, first helper).
fn vulnerable_households(
    conn: &mut dyn Conn,
    scope: &Scope,
) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>> {
    let nodes: Vec<Uuid> = scope.nodes.iter().copied().collect();
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT h.id AS household_id, h.community_id, b.node_id AS building_node, hu.id AS helper \
             FROM vulnerable v JOIN people p ON p.id = v.person_id \
             JOIN households h ON h.id = p.household_id \
             LEFT JOIN dwellings dw ON dw.id = h.dwelling_id \
             LEFT JOIN buildings b ON b.id = dw.building_id \
             LEFT JOIN users hu ON hu.id = v.helper_user_id AND hu.disabled = $2 \
             WHERE {} \
             ORDER BY h.id, CASE WHEN hu.id IS NULL THEN 1 ELSE 0 END, v.created_at, v.id",
            d.in_json_list("h.community_id", 1)
        ),
        &[json_ids(&nodes), false.into()],
    )?;
    let mut out: Vec<(Uuid, Uuid, Option<Uuid>)> = Vec::new();
    for r in rows {
        let h: Uuid = r.get("household_id")?;
        if out.last().is_some_and(|(x, ..)| *x == h) {
            continue;
        }
        let community: Uuid = r.get("community_id")?;
        if !scope.holds(community, r.get("building_node")?) {
            continue;
        }
        out.push((h, community, r.get("helper")?));
    }
    Ok(out)
}

/// [`vulnerable_households`] from rows already read: per household in scope, the first
/// helper-holding row (else the first registered).
fn households_of(rows: &[crate::ops::InScope], scope: &Scope) -> Vec<(Uuid, Uuid, Option<Uuid>)> {
    let mut rows: Vec<&crate::ops::InScope> = rows
        .iter()
        .filter(|r| {
            r.household.is_some()
                && r.household_community
                    .is_some_and(|c| scope.holds(c, r.building_node))
        })
        .collect();
    rows.sort_by_key(|r| {
        (
            r.household,
            r.helper.is_none(),
            r.created_at,
            r.vulnerable_id,
        )
    });
    rows.dedup_by_key(|r| r.household);
    rows.into_iter()
        .filter_map(|r| Some((r.household?, r.household_community?, r.helper)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reservations.

/// One household's request for a campaign's stock (the resident's own, or a worker's on its
/// behalf: 代办).
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub campaign_id: Uuid,
    pub household_id: Uuid,
    /// The pickup slot asked for (`None`: delivery, or the campaign has one slot).
    pub slot_id: Option<Uuid>,
    /// The account making the request (the resident, or the worker reserving on behalf).
    pub actor: Uuid,
    /// Set when a worker reserves on the household's behalf (代办).
    pub on_behalf: bool,
    /// The client's idempotency key: a retry with the same key answers the first reservation.
    pub request_key: Option<String>,
}

/// A reservation that was committed: what the resident is shown.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reserved {
    pub reservation_id: Uuid,
    pub campaign_id: Uuid,
    pub household_id: Uuid,
    pub slot_id: Option<Uuid>,
    /// The single-use pickup code (shown as a QR code).
    pub code: String,
    /// `reserved` (first come first served), `applied` (lottery, before the draw).
    pub status: String,
    /// The pickup slot (place, time, counts as of the answer), when there is one.
    pub slot: Option<CampaignSlot>,
}

/// What one batch knows of a campaign.
struct CampInfo {
    status: String,
    mode: String,
    fulfilment: String,
    node_id: Uuid,
    qty: i64,
    slots: Vec<Uuid>,
    scope: Scope,
}

fn camp_info(tx: &mut Tx, id: Uuid) -> Result<Option<CampInfo>> {
    let Some(r) = tx.query_one("SELECT c.* FROM campaigns c WHERE c.id = $1", &params![id])? else {
        return Ok(None);
    };
    let compounds: String = r.get("compounds")?;
    let compounds: Vec<Uuid> = serde_json::from_str(&compounds).unwrap_or_default();
    let node_id: Uuid = r.get("node_id")?;
    let eligibility: String = r.get("eligibility")?;
    let slots = tx
        .query(
            "SELECT id FROM campaign_slots WHERE campaign_id = $1 ORDER BY starts_at, id",
            &params![id],
        )?
        .iter()
        .map(|s| s.get("id"))
        .collect::<Result<Vec<Uuid>>>()?;
    Ok(Some(CampInfo {
        status: r.get("status")?,
        mode: r.get("mode")?,
        fulfilment: r.get("fulfilment")?,
        node_id,
        qty: r.get("quantity_per_household")?,
        slots,
        scope: Scope {
            nodes: crate::ops::plans::subtree(tx.conn(), node_id)?
                .into_iter()
                .collect(),
            compounds: compounds.into_iter().collect(),
            vulnerable_only: eligibility == "vulnerable",
        },
    }))
}

fn answer_of(env: &Env, r: &Row) -> Result<Reserved> {
    let id: Uuid = r.get("id")?;
    let status: String = r.get("status")?;
    let kind: String = r.get("kind")?;
    Ok(answer(
        env,
        id,
        r.get("campaign_id")?,
        r.get("household_id")?,
        r.get("slot_id")?,
        &kind,
        status,
    ))
}

fn answer(
    env: &Env,
    id: Uuid,
    campaign_id: Uuid,
    household_id: Uuid,
    slot_id: Option<Uuid>,
    kind: &str,
    status: String,
) -> Reserved {
    let has_code = kind == "reservation" && matches!(status.as_str(), "reserved" | "redeemed");
    Reserved {
        reservation_id: id,
        campaign_id,
        household_id,
        slot_id,
        code: if has_code {
            dc::display_code(&code_of(env, id))
        } else {
            String::new()
        },
        status: if kind == "delivery" && status == "reserved" {
            "delivery".into()
        } else {
            status
        },
        slot: None,
    }
}

/// `$from, $from+1, …` for `n` values: an `IN (…)` list the indexes serve on both backends.
fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reserve for each request, in order, inside `tx` (one transaction for the whole batch: the
/// rush batcher's one commit). Each request gets its own answer; a refused request (sold out,
/// already reserved, not eligible) does not abort the others or the transaction. An `Err` of the
/// whole call means the transaction must be rolled back and every request failed.
///
/// Set-based per campaign of the batch, whatever the batch's size: on PostgreSQL one statement
/// locks the batch's households (in id order, so two servers cannot deadlock; the same household
/// on two servers at once serialises here), then one reads the existing reservations (a
/// household's retry answers its first reservation and code), one the households (scope), one the
/// vulnerable households (when the campaign is for them only), one locks and reads the counters;
/// the requests are then decided in order in memory against the counters, and the batch ends with
/// one guarded `UPDATE … WHERE used + n <= cap` per counter it takes from (still refusing to
/// oversell should anything have moved: the whole batch then fails and is retried request by
/// request) and one multi-row insert of the reservations with their change-log entries. Each
/// answer carries its pickup slot with the counts as of the batch (one read of the slots).
pub fn reserve_many(
    tx: &mut Tx,
    reqs: &[ReserveRequest],
) -> Result<Vec<std::result::Result<Reserved, StoreError>>> {
    let mut out: Vec<Option<std::result::Result<Reserved, StoreError>>> =
        (0..reqs.len()).map(|_| None).collect();
    let mut campaigns: Vec<Uuid> = Vec::new();
    for q in reqs {
        if !campaigns.contains(&q.campaign_id) {
            campaigns.push(q.campaign_id);
        }
    }
    for cid in campaigns {
        let idx: Vec<usize> = (0..reqs.len())
            .filter(|&i| reqs[i].campaign_id == cid)
            .collect();
        reserve_in_campaign(tx, cid, reqs, &idx, &mut out)?;
    }
    out.into_iter()
        .map(|a| a.ok_or_else(|| StoreError::Backend("reserve_many: request unanswered".into())))
        .collect()
}

/// A reservation decided in memory, to be inserted.
struct NewReservation {
    id: Uuid,
    household: Uuid,
    community: Uuid,
    slot: Option<Uuid>,
    request: usize,
}

fn reserve_in_campaign(
    tx: &mut Tx,
    cid: Uuid,
    reqs: &[ReserveRequest],
    idx: &[usize],
    out: &mut [Option<std::result::Result<Reserved, StoreError>>],
) -> Result<()> {
    let Some(c) = camp_info(tx, cid)? else {
        for &i in idx {
            out[i] = Some(Err(StoreError::NotFound));
        }
        return Ok(());
    };
    let mut households: Vec<Uuid> = Vec::new();
    for &i in idx {
        if !households.contains(&reqs[i].household_id) {
            households.push(reqs[i].household_id);
        }
    }
    let env = tx.env();
    let pg = tx.dialect() == Dialect::Postgres;
    if pg {
        let mut ps: Vec<Value> = households.iter().map(|h| Value::from(*h)).collect();
        ps.sort_by_key(|v| match v {
            Value::Uuid(u) => *u,
            _ => Uuid::nil(),
        });
        tx.query(
            &format!(
                "SELECT id FROM households WHERE id IN ({}) ORDER BY id FOR UPDATE",
                marks(1, ps.len())
            ),
            &ps,
        )?;
    }
    // Existing reservations: a retry answers the first.
    let mut answered: HashMap<Uuid, Reserved> = HashMap::new();
    {
        let mut ps = vec![Value::from(cid)];
        ps.extend(households.iter().map(|h| Value::from(*h)));
        for r in tx.query(
            &format!(
                "SELECT id, campaign_id, household_id, slot_id, kind, status \
                 FROM campaign_reservations WHERE campaign_id = $1 AND household_id IN ({})",
                marks(2, households.len())
            ),
            &ps,
        )? {
            let a = answer_of(env, &r)?;
            answered.insert(a.household_id, a);
        }
    }
    let fresh: Vec<Uuid> = households
        .iter()
        .copied()
        .filter(|h| !answered.contains_key(h))
        .collect();
    // The fresh households: where they are, and (vulnerable-only campaigns) which qualify.
    let mut where_: HashMap<Uuid, (Uuid, Option<Uuid>)> = HashMap::new();
    let mut vulnerable: HashSet<Uuid> = HashSet::new();
    if !fresh.is_empty() {
        let ps: Vec<Value> = fresh.iter().map(|h| Value::from(*h)).collect();
        for r in tx.query(
            &format!(
                "SELECT h.id, h.community_id, b.node_id AS building_node FROM households h \
                 LEFT JOIN dwellings dw ON dw.id = h.dwelling_id \
                 LEFT JOIN buildings b ON b.id = dw.building_id WHERE h.id IN ({})",
                marks(1, fresh.len())
            ),
            &ps,
        )? {
            where_.insert(
                r.get("id")?,
                (r.get("community_id")?, r.get("building_node")?),
            );
        }
        if c.scope.vulnerable_only {
            for r in tx.query(
                &format!(
                    "SELECT DISTINCT p.household_id FROM people p \
                     JOIN vulnerable v ON v.person_id = p.id WHERE p.household_id IN ({})",
                    marks(1, fresh.len())
                ),
                &ps,
            )? {
                vulnerable.insert(r.get("household_id")?);
            }
        }
    }
    let lottery = c.mode == "lottery";
    // The counters (campaign and slots), locked on PostgreSQL in id order.
    let mut counters: HashMap<Uuid, (i64, i64)> = HashMap::new();
    if !lottery && c.status == "open" && !fresh.is_empty() {
        let lock = if pg { " ORDER BY id FOR UPDATE" } else { "" };
        for r in tx.query(
            &format!("SELECT id, cap, used FROM campaign_counters WHERE campaign_id = $1{lock}"),
            &params![cid],
        )? {
            counters.insert(r.get("id")?, (r.get("cap")?, r.get("used")?));
        }
    }
    let mut taken: HashMap<Uuid, i64> = HashMap::new();
    let mut made: Vec<NewReservation> = Vec::new();
    for &i in idx {
        let q = &reqs[i];
        if let Some(a) = answered.get(&q.household_id) {
            out[i] = Some(Ok(a.clone()));
            continue;
        }
        let Some(&(community, building_node)) = where_.get(&q.household_id) else {
            out[i] = Some(Err(bad("campaign.household_unknown", "household_id")));
            continue;
        };
        // A campaign not offered to the household answers like a missing one.
        if !c.scope.holds(community, building_node)
            || (c.scope.vulnerable_only && !vulnerable.contains(&q.household_id))
        {
            out[i] = Some(Err(StoreError::NotFound));
            continue;
        }
        if c.status != "open" {
            out[i] = Some(Err(conflict("campaign.not_open")));
            continue;
        }
        let (kind, slot) = if c.fulfilment == "delivery" {
            if q.slot_id.is_some() {
                out[i] = Some(Err(bad("campaign.slot_not_for_delivery", "slot_id")));
                continue;
            }
            ("delivery", None)
        } else {
            match q.slot_id {
                Some(s) if c.slots.contains(&s) => ("reservation", Some(s)),
                Some(_) => {
                    out[i] = Some(Err(bad("campaign.slot_unknown", "slot_id")));
                    continue;
                }
                None if c.slots.len() == 1 => ("reservation", Some(c.slots[0])),
                None => {
                    out[i] = Some(Err(bad("value.required", "slot_id")));
                    continue;
                }
            }
        };
        if !lottery {
            let left = |k: &HashMap<Uuid, (i64, i64)>, t: &HashMap<Uuid, i64>, id: Uuid| {
                k.get(&id).map_or(0, |(cap, used)| {
                    cap - used - t.get(&id).copied().unwrap_or(0)
                })
            };
            if left(&counters, &taken, cid) < c.qty {
                out[i] = Some(Err(conflict("campaign.sold_out")));
                continue;
            }
            if let Some(s) = slot {
                if left(&counters, &taken, s) < 1 {
                    out[i] = Some(Err(conflict("campaign.slot_full")));
                    continue;
                }
                *taken.entry(s).or_default() += 1;
            }
            *taken.entry(cid).or_default() += c.qty;
        }
        let id = tx.new_id();
        let a = answer(
            env,
            id,
            cid,
            q.household_id,
            slot,
            kind,
            if lottery { "applied" } else { "reserved" }.into(),
        );
        answered.insert(q.household_id, a.clone());
        out[i] = Some(Ok(a));
        made.push(NewReservation {
            id,
            household: q.household_id,
            community,
            slot,
            request: i,
        });
    }
    // One guarded update per counter taken from: never more than the cap, even if something
    // moved (then the whole batch fails and is retried request by request).
    let mut ids: Vec<Uuid> = taken.keys().copied().collect();
    ids.sort();
    for id in ids {
        let n = taken[&id];
        if tx.execute_unlogged(
            "UPDATE campaign_counters SET used = used + $2 WHERE id = $1 AND used + $2 <= cap",
            &params![id, n],
        )? != 1
        {
            return Err(StoreError::Conflict {
                code: "campaign.counter_moved",
                detail: "a campaign counter changed during the batch".into(),
            });
        }
    }
    if !made.is_empty() {
        let now = tx.now();
        let kind = if c.fulfilment == "delivery" {
            "delivery"
        } else {
            "reservation"
        };
        let rows: Vec<Vec<Value>> = made
            .iter()
            .map(|m| {
                let q = &reqs[m.request];
                let bidx = (kind == "reservation" && !lottery)
                    .then(|| code_bidx(env, &code_of(env, m.id)));
                let key = q
                    .request_key
                    .as_deref()
                    .map(|k| k.chars().take(100).collect::<String>());
                vec![
                    m.id.into(),
                    cid.into(),
                    c.node_id.into(),
                    m.household.into(),
                    m.community.into(),
                    m.slot.into(),
                    kind.into(),
                    if lottery { "applied" } else { "reserved" }.into(),
                    c.qty.into(),
                    bidx.into(),
                    q.on_behalf.into(),
                    q.actor.into(),
                    key.into(),
                    "".into(),
                    now.into(),
                    now.into(),
                ]
            })
            .collect();
        tx.insert_many(
            "campaign_reservations",
            &[
                "id",
                "campaign_id",
                "node_id",
                "household_id",
                "community_id",
                "slot_id",
                "kind",
                "status",
                "quantity",
                "code_bidx",
                "on_behalf",
                "actor",
                "request_key",
                "note",
                "created_at",
                "updated_at",
            ],
            &rows,
        )?;
    }
    // The answers' slots, with their counts as of this batch.
    let wants_slot = idx
        .iter()
        .any(|&i| matches!(&out[i], Some(Ok(a)) if a.slot_id.is_some()));
    if wants_slot {
        let slots = slots_of(tx.conn(), cid)?;
        for &i in idx {
            if let Some(Ok(a)) = &mut out[i] {
                a.slot = a
                    .slot_id
                    .and_then(|sid| slots.iter().find(|s| s.id == sid).cloned());
            }
        }
    }
    Ok(())
}

/// A worker's 代办: may `caller` reserve for `household` in `campaign`? (`RunCampaigns` over the
/// household's community, and the campaign visible.)
pub fn check_on_behalf(
    conn: &mut dyn Conn,
    caller: &Caller,
    campaign: Uuid,
    household: Uuid,
) -> Result<()> {
    get(conn, caller, campaign)?;
    let community: Uuid = conn
        .query_one(
            "SELECT community_id FROM households WHERE id = $1",
            &params![household],
        )?
        .ok_or_else(|| bad("campaign.household_unknown", "household_id"))?
        .get("community_id")?;
    if !run_reach(caller).contains_node(conn, community)? {
        return Err(bad("campaign.household_unknown", "household_id"));
    }
    Ok(())
}

/// A reservation or delivery order as lists show it (the household by its label only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReservation {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub campaign_title: String,
    pub household_id: Uuid,
    /// The household's address label (building and dwelling).
    pub household_label: String,
    pub slot_id: Option<Uuid>,
    /// reservation, delivery
    pub kind: String,
    /// reserved, applied, lost, redeemed, delivered, cancelled
    pub status: String,
    pub quantity: i64,
    /// Reserved by a worker on the household's behalf (代办).
    pub on_behalf: bool,
    pub assignee_user_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    pub redeemed_at: Option<DateTime<Utc>>,
    pub redeemed_by_name: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

const RES_COLS: &str = "r.*, c.title AS campaign_title, \
    COALESCE(b.name || ' ' || dw.number, h.label, '') AS household_label, \
    au.display_name AS assignee_name, ru.display_name AS redeemed_by_name";
const RES_FROM: &str = "campaign_reservations r JOIN campaigns c ON c.id = r.campaign_id \
    JOIN households h ON h.id = r.household_id \
    LEFT JOIN dwellings dw ON dw.id = h.dwelling_id LEFT JOIN buildings b ON b.id = dw.building_id \
    LEFT JOIN users au ON au.id = r.assignee_user_id LEFT JOIN users ru ON ru.id = r.redeemed_by";

impl CampaignReservation {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            campaign_id: r.get("campaign_id")?,
            campaign_title: r.get("campaign_title")?,
            household_id: r.get("household_id")?,
            household_label: r.get("household_label")?,
            slot_id: r.get("slot_id")?,
            kind: r.get("kind")?,
            status: r.get("status")?,
            quantity: r.get("quantity")?,
            on_behalf: r.get("on_behalf")?,
            assignee_user_id: r.get("assignee_user_id")?,
            assignee_name: r
                .get::<Option<String>>("assignee_name")?
                .map(|n| anxin_domain::mask_name(&n)),
            redeemed_at: r.get("redeemed_at")?,
            redeemed_by_name: r
                .get::<Option<String>>("redeemed_by_name")?
                .map(|n| anxin_domain::mask_name(&n)),
            delivered_at: r.get("delivered_at")?,
            note: r.get("note")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// Filter of a campaign's reservations.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignReservationQuery {
    /// reservation, delivery
    pub kind: Option<String>,
    /// reserved, applied, lost, redeemed, delivered, cancelled
    pub status: Option<String>,
}

/// A campaign's reservations and delivery orders (at most 2,000; delivery orders first).
pub fn reservations(
    conn: &mut dyn Conn,
    caller: &Caller,
    campaign: Uuid,
    q: &CampaignReservationQuery,
) -> Result<Vec<CampaignReservation>> {
    get(conn, caller, campaign)?;
    let mut params = vec![Value::from(campaign)];
    let mut sql = format!("SELECT {RES_COLS} FROM {RES_FROM} WHERE r.campaign_id = $1");
    if let Some(k) = q.kind.as_deref().filter(|s| !s.is_empty()) {
        if !["reservation", "delivery"].contains(&k) {
            return Err(bad("value.invalid", "kind"));
        }
        params.push(k.into());
        sql.push_str(&format!(" AND r.kind = ${}", params.len()));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if ![
            "reserved",
            "applied",
            "lost",
            "redeemed",
            "delivered",
            "cancelled",
        ]
        .contains(&s)
        {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        sql.push_str(&format!(" AND r.status = ${}", params.len()));
    }
    sql.push_str(" ORDER BY r.kind, r.created_at, r.id LIMIT 2000");
    conn.query(&sql, &params)?
        .iter()
        .map(CampaignReservation::from_row)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The resident's side.

/// An open campaign as a household sees it, with its own reservation if any.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ResidentCampaign {
    pub campaign: Campaign,
    pub slots: Vec<CampaignSlot>,
    /// The household's reservation or delivery order.
    pub mine: Option<Reserved>,
    /// The slot of `mine`, for showing place and time.
    pub my_slot: Option<CampaignSlot>,
}

/// Open campaigns whose scope holds `household` (and that it is eligible for), and closed ones
/// it holds a reservation in; with the household's reservation (code included).
pub fn resident_campaigns(
    conn: &mut dyn Conn,
    env: &Env,
    household: Option<Uuid>,
) -> Result<Vec<ResidentCampaign>> {
    let Some(household) = household else {
        return Ok(Vec::new());
    };
    let Some(h) = conn.query_one(
        "SELECT h.community_id, b.node_id AS building_node FROM households h \
         LEFT JOIN dwellings dw ON dw.id = h.dwelling_id LEFT JOIN buildings b ON b.id = dw.building_id \
         WHERE h.id = $1",
        &params![household],
    )?
    else {
        return Ok(Vec::new());
    };
    let community: Uuid = h.get("community_id")?;
    let building_node: Option<Uuid> = h.get("building_node")?;
    let vulnerable = conn
        .query_one(
            "SELECT v.id FROM people p JOIN vulnerable v ON v.person_id = p.id WHERE p.household_id = $1 LIMIT 1",
            &params![household],
        )?
        .is_some();
    let rows = conn.query(
        &format!(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE id = $1 \
             UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) \
             SELECT {CAMPAIGN_COLS} FROM campaigns c WHERE c.node_id IN (SELECT id FROM up) \
             AND (c.status = 'open' OR EXISTS (SELECT 1 FROM campaign_reservations r \
             WHERE r.campaign_id = c.id AND r.household_id = $2 AND c.status = 'closed')) \
             ORDER BY c.opened_at DESC, c.id LIMIT 50"
        ),
        &params![community, household],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let c = Campaign::from_row(&r)?;
        let in_compounds =
            c.compounds.is_empty() || building_node.is_some_and(|b| c.compounds.contains(&b));
        let mine = conn
            .query_one(
                "SELECT * FROM campaign_reservations WHERE campaign_id = $1 AND household_id = $2",
                &params![c.id, household],
            )?
            .map(|r| answer_of(env, &r))
            .transpose()?;
        if mine.is_none() && (!in_compounds || (c.eligibility == "vulnerable" && !vulnerable)) {
            continue;
        }
        let slots = slots_of(conn, c.id)?;
        let my_slot = mine
            .as_ref()
            .and_then(|m| m.slot_id)
            .and_then(|s| slots.iter().find(|x| x.id == s).cloned());
        out.push(ResidentCampaign {
            campaign: c,
            slots,
            mine,
            my_slot,
        });
    }
    Ok(out)
}

/// One campaign as the household sees it (`NotFound` when it is not offered to it).
pub fn resident_campaign(
    conn: &mut dyn Conn,
    env: &Env,
    household: Option<Uuid>,
    id: Uuid,
) -> Result<ResidentCampaign> {
    resident_campaigns(conn, env, household)?
        .into_iter()
        .find(|c| c.campaign.id == id)
        .ok_or(StoreError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// CampaignRedemption.

/// The answer to a redemption.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRedemption {
    /// True when this call redeemed it; false when it had been used already.
    pub redeemed: bool,
    pub reservation: CampaignReservation,
    /// The slot's place and time, for the worker to check.
    pub slot: Option<CampaignSlot>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignRedeemInput {
    /// The pickup code as scanned or typed (`XXXXX-XXXXX`; case, spaces and dashes ignored).
    pub code: String,
}

/// Redeem a pickup code at the campaign (needs `RunCampaigns` there). Single use: a second
/// attempt answers `redeemed: false` with when and by whom it was used.
pub fn redeem(
    tx: &mut Tx,
    caller: &Caller,
    campaign: Uuid,
    i: &CampaignRedeemInput,
) -> Result<CampaignRedemption> {
    let c = get(tx.conn(), caller, campaign)?;
    let code = dc::normalize_code(&i.code).ok_or_else(|| bad("campaign.code_invalid", "code"))?;
    let bidx = code_bidx(tx.env(), &code);
    let Some(r) = tx.query_one(
        "SELECT id, status FROM campaign_reservations WHERE campaign_id = $1 AND code_bidx = $2",
        &params![campaign, bidx],
    )?
    else {
        return Err(bad("campaign.code_unknown", "code"));
    };
    let id: Uuid = r.get("id")?;
    let status: String = r.get("status")?;
    let first = if status == "reserved" {
        if c.status != "open" {
            return Err(conflict("campaign.not_open"));
        }
        let now = tx.now();
        !tx.update_where(
            "campaign_reservations",
            &[
                ("status", "redeemed".into()),
                ("redeemed_at", now.into()),
                ("redeemed_by", caller.user_id.into()),
                ("updated_at", now.into()),
            ],
            "id = $1 AND redeemed_at IS NULL AND status = 'reserved'",
            &params![id],
        )?
        .is_empty()
    } else if status == "redeemed" {
        false
    } else {
        return Err(conflict("campaign.code_not_valid"));
    };
    let reservation = CampaignReservation::from_row(
        &tx.query_one(
            &format!("SELECT {RES_COLS} FROM {RES_FROM} WHERE r.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?,
    )?;
    let slot = match reservation.slot_id {
        Some(s) => slots_of(tx.conn(), campaign)?
            .into_iter()
            .find(|x| x.id == s),
        None => None,
    };
    Ok(CampaignRedemption {
        redeemed: first,
        reservation,
        slot,
    })
}

// ---------------------------------------------------------------------------------------------
// Lottery.

/// What a draw did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct LotteryDrawReport {
    pub campaign_id: Uuid,
    pub applicants: i64,
    pub winners: i64,
    pub lost: i64,
    /// The random seed (decimal), recorded on the campaign.
    pub seed: String,
}

/// Draw a lottery campaign now (a worker's button); the timer calls [`draw_due`].
pub fn draw(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<LotteryDrawReport> {
    let c = load_for_write(tx, caller, id)?;
    draw_in(tx, &c)
}

fn draw_in(tx: &mut Tx, c: &Campaign) -> Result<LotteryDrawReport> {
    if c.mode != "lottery" {
        return Err(conflict("campaign.not_lottery"));
    }
    if c.status != "open" {
        return Err(conflict("campaign.not_open"));
    }
    if c.drawn_at.is_some() {
        return Err(conflict("campaign.already_drawn"));
    }
    let seed_bytes = anxin_crypto::hash_token(&anxin_crypto::new_token());
    let mut b = [0u8; 8];
    b.copy_from_slice(&seed_bytes[..8]);
    let seed = u64::from_le_bytes(b);
    let applicants = tx.query(
        "SELECT id, slot_id FROM campaign_reservations WHERE campaign_id = $1 AND status = 'applied' ORDER BY id",
        &params![c.id],
    )?;
    let order = dc::draw(applicants.len(), applicants.len(), seed);
    let now = tx.now();
    let env = tx.env();
    let mut winners = 0i64;
    let mut lost = 0i64;
    for k in order {
        let a = &applicants[k];
        let rid: Uuid = a.get("id")?;
        let slot: Option<Uuid> = a.get("slot_id")?;
        let mut won = tx.execute_unlogged(
            "UPDATE campaign_counters SET used = used + $2 WHERE id = $1 AND used + $2 <= cap",
            &params![c.id, c.quantity_per_household],
        )? > 0;
        if won {
            if let Some(s) = slot {
                if tx.execute_unlogged(
                    "UPDATE campaign_counters SET used = used + 1 WHERE id = $1 AND used + 1 <= cap",
                    &params![s],
                )? == 0
                {
                    tx.execute_unlogged(
                        "UPDATE campaign_counters SET used = used - $2 WHERE id = $1",
                        &params![c.id, c.quantity_per_household],
                    )?;
                    won = false;
                }
            }
        }
        let kind: Option<String> = tx
            .query_one(
                "SELECT kind FROM campaign_reservations WHERE id = $1",
                &params![rid],
            )?
            .map(|r| r.get("kind"))
            .transpose()?;
        let mut cols: Vec<(&str, Value)> = vec![
            ("status", if won { "reserved" } else { "lost" }.into()),
            ("updated_at", now.into()),
        ];
        if won && kind.as_deref() == Some("reservation") {
            cols.push(("code_bidx", code_bidx(env, &code_of(env, rid)).into()));
        }
        tx.update("campaign_reservations", rid, &cols)?;
        if won {
            winners += 1;
        } else {
            lost += 1;
        }
    }
    tx.update(
        "campaigns",
        c.id,
        &[
            ("lottery_seed", seed.to_string().into()),
            ("drawn_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    notices_job(tx, c.id, "drawn")?;
    Ok(LotteryDrawReport {
        campaign_id: c.id,
        applicants: winners + lost,
        winners,
        lost,
        seed: seed.to_string(),
    })
}

/// Lottery campaigns whose draw time has come and that are not drawn yet.
pub fn draws_due(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
    conn.query(
        "SELECT id FROM campaigns WHERE status = 'open' AND mode = 'lottery' AND drawn_at IS NULL \
         AND draw_at <= $1 ORDER BY draw_at, id LIMIT 100",
        &params![now],
    )?
    .iter()
    .map(|r| r.get("id"))
    .collect()
}

/// Draw one due campaign (the timer); `None` when it is no longer due (drawn by someone else).
pub fn draw_due(tx: &mut Tx, id: Uuid) -> Result<Option<LotteryDrawReport>> {
    let c = load(tx.conn(), &all(), id)?;
    if c.status != "open" || c.drawn_at.is_some() || c.mode != "lottery" {
        return Ok(None);
    }
    draw_in(tx, &c).map(Some)
}

/// Open pickup campaigns whose every slot has ended (the timer closes them).
pub fn ended(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
    conn.query(
        "SELECT c.id FROM campaigns c WHERE c.status = 'open' AND c.fulfilment = 'pickup' \
         AND EXISTS (SELECT 1 FROM campaign_slots s WHERE s.campaign_id = c.id) \
         AND NOT EXISTS (SELECT 1 FROM campaign_slots s WHERE s.campaign_id = c.id AND s.ends_at > $1) \
         AND (c.mode = 'fcfs' OR c.drawn_at IS NOT NULL) LIMIT 100",
        &params![now],
    )?
    .iter()
    .map(|r| r.get("id"))
    .collect()
}

/// Close a campaign whose slots have ended (the timer).
pub fn close_ended(tx: &mut Tx, id: Uuid) -> Result<bool> {
    let c = load(tx.conn(), &all(), id)?;
    if c.status != "open" {
        return Ok(false);
    }
    move_to(tx, &c, "closed").map(|_| true)
}

// ---------------------------------------------------------------------------------------------
// Delivery orders.

/// Delivery orders assigned to the caller (a volunteer or helper with `DeliverSupplies`), still
/// to deliver first.
pub fn my_deliveries(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<CampaignReservation>> {
    let Some(me) = caller.user_id else {
        return Ok(Vec::new());
    };
    if !caller.has(Permission::DeliverSupplies) {
        return Ok(Vec::new());
    }
    conn.query(
        &format!(
            "SELECT {RES_COLS} FROM {RES_FROM} WHERE r.assignee_user_id = $1 AND r.kind = 'delivery' \
             AND c.status IN ('open', 'closed') \
             ORDER BY CASE WHEN r.status = 'reserved' THEN 0 ELSE 1 END, r.created_at, r.id LIMIT 500"
        ),
        &params![me],
    )?
    .iter()
    .map(CampaignReservation::from_row)
    .collect()
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryAssignInput {
    /// The volunteer or worker who delivers (an account with `DeliverSupplies` in the campaign's
    /// subtree); `null` to unassign.
    pub user_id: Option<Uuid>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryDoneInput {
    /// What happened at the door (no ID numbers or phones).
    pub note: Option<String>,
}

fn load_order(conn: &mut dyn Conn, id: Uuid) -> Result<CampaignReservation> {
    CampaignReservation::from_row(
        &conn
            .query_one(
                &format!(
                    "SELECT {RES_COLS} FROM {RES_FROM} WHERE r.id = $1 AND r.kind = 'delivery'"
                ),
                &params![id],
            )?
            .ok_or(StoreError::NotFound)?,
    )
}

/// Assign a delivery order (needs `RunCampaigns` over the campaign).
///
/// Returns the order as it now is and its assignee before (the caller tells a new assignee).
pub fn assign_delivery(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    i: &DeliveryAssignInput,
) -> Result<(CampaignReservation, Option<Uuid>)> {
    let o = load_order(tx.conn(), id)?;
    let before = o.assignee_user_id;
    let c = get(tx.conn(), caller, o.campaign_id)?;
    if o.status != "reserved" {
        return Err(conflict("campaign.delivery_done"));
    }
    if let Some(u) = i.user_id {
        let now = tx.now();
        let ok = crate::ops::plans::holders(tx.conn(), c.node_id, now)?
            .iter()
            .any(|h| h.user_id == u);
        if !ok {
            return Err(bad("campaign.assignee_outside", "user_id"));
        }
    }
    let now = tx.now();
    tx.update(
        "campaign_reservations",
        id,
        &[
            ("assignee_user_id", i.user_id.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok((load_order(tx.conn(), id)?, before))
}

/// Mark a delivery order delivered: its assignee, or a worker with `RunCampaigns` there.
pub fn mark_delivered(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    i: &DeliveryDoneInput,
) -> Result<CampaignReservation> {
    let o = load_order(tx.conn(), id)?;
    let mine = caller.user_id.is_some()
        && o.assignee_user_id == caller.user_id
        && caller.has(Permission::DeliverSupplies);
    if !mine {
        // Outside the caller's reach it is as missing.
        get(tx.conn(), caller, o.campaign_id)?;
    }
    let note = clean("note", i.note.as_deref(), NOTE_MAX)?;
    if o.status != "reserved" {
        return Err(conflict("campaign.delivery_done"));
    }
    let now = tx.now();
    let n = tx
        .update_where(
            "campaign_reservations",
            &[
                ("status", "delivered".into()),
                ("delivered_at", now.into()),
                ("delivered_by", caller.user_id.into()),
                ("note", note.into()),
                ("updated_at", now.into()),
            ],
            "id = $1 AND status = 'reserved'",
            &params![id],
        )?
        .len();
    if n == 0 {
        return Err(conflict("campaign.delivery_done"));
    }
    load_order(tx.conn(), id)
}

// ---------------------------------------------------------------------------------------------
// Activation.

/// Activation step: a plan's `supplies` entries start their distribution campaigns.
pub struct CampaignStep;

impl ActivationStep for CampaignStep {
    fn name(&self) -> &'static str {
        "campaigns"
    }

    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value> {
        if a.body.supplies.is_empty() {
            return Ok(json!({ "campaigns": 0, "deliveries": 0 }));
        }
        let entries = SupplyEntry::parse_all(&a.body.supplies).map_err(|(c, f)| bad(c, f))?;
        let mut opened = 0i64;
        let mut deliveries = 0i64;
        let mut titles = Vec::new();
        for (k, e) in entries.iter().enumerate() {
            let (_, name) = item(
                tx.conn(),
                a.node_id,
                &e.item,
                &format!("supplies[{k}].item"),
            )?;
            let title = e.title.clone().unwrap_or_else(|| format!("{name}发放"));
            let hours = e.hours.unwrap_or(72);
            let slots = if e.fulfilment == "pickup" {
                let per = e.quantity_per_household.max(1);
                vec![SlotInput {
                    facility_id: None,
                    place_label: Some(e.place.clone().unwrap_or_else(|| "社区居委会".into())),
                    starts_at: a.at,
                    ends_at: a.at + Duration::hours(hours),
                    capacity: ((e.stock + per - 1) / per).clamp(1, 100_000),
                }]
            } else {
                Vec::new()
            };
            let input = CampaignInput {
                node_id: a.node_id,
                title: title.clone(),
                item_code: e.item.clone(),
                quantity_per_household: Some(e.quantity_per_household),
                fulfilment: Some(e.fulfilment.clone()),
                eligibility: e.eligibility.clone(),
                mode: Some(e.mode.clone()),
                draw_at: (e.mode == "lottery").then(|| a.at + Duration::hours(hours.min(24))),
                stock: e.stock,
                compounds: Vec::new(),
                depot_id: None,
                note: None,
                slots,
            };
            let id = insert_campaign(tx, &input, Some(a.incident_id))?;
            let c = load(tx.conn(), &all(), id)?;
            // The campaign covers the activation's nodes: the people the welfare step read.
            let found = a.vulnerable(tx.conn())?;
            let r = open_with(tx, c, Some(found))?;
            opened += 1;
            deliveries += r.deliveries;
            titles.push(format!("{title}（{}）", e.stock));
        }
        crate::ops::log(
            tx,
            a.incident_id,
            "campaigns.opened",
            &format!(
                "物资发放：开启 {opened} 项（{}），为重点人群生成配送单 {deliveries} 份",
                titles.join("、")
            ),
            None,
        )?;
        Ok(json!({ "campaigns": opened, "deliveries": deliveries }))
    }

    fn deactivate(
        &self,
        tx: &mut Tx,
        incident_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<serde_json::Value> {
        let n = tx
            .update_where(
                "campaigns",
                &[
                    ("status", "closed".into()),
                    ("closed_at", at.into()),
                    ("updated_at", at.into()),
                ],
                "incident_id = $1 AND status = 'open'",
                &params![incident_id],
            )?
            .len();
        if n > 0 {
            crate::ops::log(
                tx,
                incident_id,
                "campaigns.closed",
                &format!("物资发放：结束 {n} 项"),
                None,
            )?;
        }
        Ok(json!({ "campaigns_closed": n }))
    }
}

/// A campaign's slots with their counts (no scope check: the caller has the campaign's id from
/// a reservation it made or a campaign it sees).
pub fn slots(conn: &mut dyn Conn, campaign: Uuid) -> Result<Vec<CampaignSlot>> {
    slots_of(conn, campaign)
}

/// The nodes where the caller may run campaigns (its node grants and what lies below, down to
/// communities), for the configure form: (id, name).
pub fn campaign_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let mut params = Vec::new();
    let pred = run_reach(caller).predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!("SELECT n.id, n.name FROM nodes n WHERE n.level IN ('city', 'district', 'street', 'community') AND n.status = 'active' AND {pred} ORDER BY n.name, n.id LIMIT 200"),
        &params,
    )?
    .iter()
    .map(|r| Ok((r.get("id")?, r.get("name")?)))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Notices (read after commit by `anxin::supplies::notices`; no scope check: the caller has just
// opened or drawn the campaign).

/// A campaign with its slots, for its notices.
pub fn notice_campaign(conn: &mut dyn Conn, id: Uuid) -> Result<(Campaign, Vec<CampaignSlot>)> {
    let c = load(conn, &all(), id)?;
    let slots = slots_of(conn, id)?;
    Ok((c, slots))
}

/// Open campaigns an activation started (the incident's), oldest first.
pub fn opened_for_incident(conn: &mut dyn Conn, incident: Uuid) -> Result<Vec<Uuid>> {
    conn.query(
        "SELECT id FROM campaigns WHERE incident_id = $1 AND status = 'open' ORDER BY created_at, id",
        &params![incident],
    )?
    .iter()
    .map(|r| r.get("id"))
    .collect()
}

/// One page of the households a campaign is offered to (its scope and eligibility), in id order.
#[derive(Debug, Clone, Default)]
pub struct NoticePage {
    /// (household, holds a delivery order of the campaign).
    pub households: Vec<(Uuid, bool)>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<Uuid>,
}

/// The households in `c`'s scope (its node's subtree, narrowed to its compounds) that it is
/// offered to (all, or those with a vulnerable person), `limit` rows of households read from
/// after `after`. Paged by household id, so a district's tens of thousands are read a page at a
/// time between short writes.
pub fn notice_households(
    conn: &mut dyn Conn,
    c: &Campaign,
    after: Option<Uuid>,
    limit: i64,
) -> Result<NoticePage> {
    let scope = Scope::of(conn, c)?;
    let nodes: Vec<Uuid> = scope.nodes.iter().copied().collect();
    if nodes.is_empty() {
        return Ok(NoticePage::default());
    }
    let limit = limit.clamp(1, 5_000);
    let mut ps: Vec<Value> = vec![
        c.id.into(),
        after.unwrap_or(Uuid::nil()).into(),
        limit.into(),
    ];
    ps.extend(nodes.iter().map(|n| Value::from(*n)));
    let rows = conn.query(
        &format!(
            "SELECT h.id, h.community_id, b.node_id AS building_node, \
             CASE WHEN EXISTS (SELECT 1 FROM people p JOIN vulnerable v ON v.person_id = p.id \
               WHERE p.household_id = h.id) THEN 1 ELSE 0 END AS vulnerable, \
             CASE WHEN EXISTS (SELECT 1 FROM campaign_reservations r WHERE r.campaign_id = $1 \
               AND r.household_id = h.id AND r.kind = 'delivery' AND r.actor IS NULL) THEN 1 ELSE 0 END AS delivery \
             FROM households h LEFT JOIN dwellings dw ON dw.id = h.dwelling_id \
             LEFT JOIN buildings b ON b.id = dw.building_id \
             WHERE h.id > $2 AND h.community_id IN ({}) ORDER BY h.id LIMIT $3",
            marks(4, nodes.len())
        ),
        &ps,
    )?;
    let next: Option<Uuid> = if i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit {
        None
    } else {
        rows.last().map(|r| r.get("id")).transpose()?
    };
    let mut households = Vec::with_capacity(rows.len());
    for r in rows {
        let vulnerable: i64 = r.get("vulnerable")?;
        if !scope.holds(r.get("community_id")?, r.get("building_node")?)
            || (scope.vulnerable_only && vulnerable == 0)
        {
            continue;
        }
        let delivery: i64 = r.get("delivery")?;
        households.push((r.get("id")?, delivery != 0));
    }
    Ok(NoticePage { households, next })
}

/// How one household is reached: one phone of the household (the head's, else a member's), and
/// the residents' own verified channels (e-mail, WeChat), at most one of each kind.
#[derive(Clone)]
pub struct HouseholdContact {
    pub household_id: Uuid,
    /// (phone, mask). Personal data.
    pub phone: Option<(String, String)>,
    /// (kind `email`/`wechat`, address, mask). Personal data.
    pub own: Vec<(String, String, String)>,
}

impl std::fmt::Debug for HouseholdContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseholdContact")
            .field("household_id", &self.household_id)
            .field("phone", &self.phone.as_ref().map(|p| &p.1))
            .field(
                "own",
                &self.own.iter().map(|o| (&o.0, &o.2)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The contacts of `households` (in the order given; a household nobody can be reached in is
/// left out). Phones are opened here: call it for a page at a time.
pub fn household_contacts(
    conn: &mut dyn Conn,
    env: &Env,
    households: &[Uuid],
) -> Result<Vec<HouseholdContact>> {
    let mut out = Vec::with_capacity(households.len());
    for chunk in households.chunks(1_000) {
        let ps: Vec<Value> = chunk.iter().map(|h| Value::from(*h)).collect();
        let rows = conn.query(
            &format!(
                "SELECT p.id, p.household_id, p.phone_ct, \
                 CASE WHEN EXISTS (SELECT 1 FROM memberships m WHERE m.person_id = p.id \
                   AND m.household_id = p.household_id AND m.role = 'head' AND m.valid_to IS NULL) \
                   THEN 0 ELSE 1 END AS rank \
                 FROM people p WHERE p.household_id IN ({}) ORDER BY p.household_id, rank, p.id",
                marks(1, chunk.len())
            ),
            &ps,
        )?;
        let mut phone: HashMap<Uuid, (String, String)> = HashMap::new();
        let mut person_household: HashMap<Uuid, Uuid> = HashMap::new();
        for r in &rows {
            let h: Uuid = r.get("household_id")?;
            person_household.insert(r.get("id")?, h);
            if phone.contains_key(&h) {
                continue;
            }
            let ct: Option<Vec<u8>> = r.get("phone_ct")?;
            if let Some(ct) = ct {
                let p = env.keys.open_string(conn, "people.phone", &ct)?;
                let mask = anxin_domain::Phone::parse(&p)
                    .map(|x| anxin_domain::mask_phone(&x))
                    .unwrap_or_else(|_| "***".into());
                phone.insert(h, (p, mask));
            }
        }
        let people: Vec<Uuid> = person_household.keys().copied().collect();
        let mut own: HashMap<Uuid, Vec<(String, String, String)>> = HashMap::new();
        let mut channels = crate::resident_channels::verified_for_people(conn, env, &people)?;
        channels.sort_by(|a, b| {
            (a.person_id, a.user_id, &a.kind).cmp(&(b.person_id, b.user_id, &b.kind))
        });
        for ch in channels {
            if !matches!(ch.kind.as_str(), "email" | "wechat") {
                continue;
            }
            let Some(h) = person_household.get(&ch.person_id) else {
                continue;
            };
            let list = own.entry(*h).or_default();
            if list.iter().any(|o| o.0 == ch.kind) {
                continue;
            }
            list.push((ch.kind, ch.address, ch.address_mask));
        }
        for h in chunk {
            let c = HouseholdContact {
                household_id: *h,
                phone: phone.remove(h),
                own: own.remove(h).unwrap_or_default(),
            };
            if c.phone.is_some() || !c.own.is_empty() {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// The delivery orders still to deliver of a campaign, by assignee: (user, how many), in user
/// order.
pub fn delivery_counts(conn: &mut dyn Conn, campaign: Uuid) -> Result<Vec<(Uuid, i64)>> {
    conn.query(
        "SELECT assignee_user_id, count(*) AS n FROM campaign_reservations WHERE campaign_id = $1 \
         AND kind = 'delivery' AND status = 'reserved' AND assignee_user_id IS NOT NULL \
         GROUP BY assignee_user_id ORDER BY assignee_user_id",
        &params![campaign],
    )?
    .iter()
    .map(|r| Ok((r.get("assignee_user_id")?, r.get("n")?)))
    .collect()
}

/// A phone to reach an account that delivers (a worker, volunteer or helper): its duty phone
/// (at `node` first), else its volunteer record's, else that of a person it acts as. (phone,
/// mask), or `None` when none is known.
pub fn account_phone(
    conn: &mut dyn Conn,
    env: &Env,
    user: Uuid,
    node: Uuid,
) -> Result<Option<(String, String)>> {
    if let Some(p) = crate::hazards::risks::owner_phone(conn, env, user, node)? {
        return Ok(Some(p));
    }
    let sources = [
        (
            "SELECT phone_ct, phone_mask FROM volunteers WHERE user_id = $1 AND phone_ct IS NOT NULL \
             ORDER BY updated_at DESC, id LIMIT 1",
            "volunteers.phone",
        ),
        (
            "SELECT p.phone_ct, p.phone_mask FROM user_people up JOIN people p ON p.id = up.person_id \
             WHERE up.user_id = $1 AND p.phone_ct IS NOT NULL ORDER BY p.id LIMIT 1",
            "people.phone",
        ),
    ];
    for (sql, field) in sources {
        if let Some(r) = conn.query_one(sql, &params![user])? {
            let ct: Vec<u8> = r.get("phone_ct")?;
            let mask: Option<String> = r.get("phone_mask")?;
            return Ok(Some((
                env.keys.open_string(conn, field, &ct)?,
                mask.unwrap_or_default(),
            )));
        }
    }
    Ok(None)
}

/// The outcome of a lottery draw by household: (household, won, slot), the households that
/// applied (not the delivery orders made at opening), in household order.
pub fn draw_outcomes(
    conn: &mut dyn Conn,
    campaign: Uuid,
) -> Result<Vec<(Uuid, bool, Option<Uuid>)>> {
    conn.query(
        "SELECT household_id, status, slot_id FROM campaign_reservations WHERE campaign_id = $1 \
         AND actor IS NOT NULL AND status IN ('reserved', 'lost') ORDER BY household_id",
        &params![campaign],
    )?
    .iter()
    .map(|r| {
        let s: String = r.get("status")?;
        Ok((r.get("household_id")?, s == "reserved", r.get("slot_id")?))
    })
    .collect()
}
