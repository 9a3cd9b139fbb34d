//! The change log: every change to a record, appended in the same transaction as the change.
//!
//! Each entry carries id, origin node, per-origin sequence, kind (table), record id, operation,
//! after-image, actor, request id and time. Images of records that carry a `key_id` (personal
//! data) are sealed with that record's data key, so deleting the key makes the record's whole
//! history unreadable (crypto-shredding). Webhooks, timelines, audit views, live updates and the
//! later community-to-city sync read this log; nothing writes around it (see [`LOGGED_TABLES`]
//! and the guard in `Tx::execute_unlogged`).
//!
//! Ordering: `pos` comes from one counter row that a write locks only while appending its entries,
//! just before commit. Positions are therefore gap-free and in commit order on both backends, so
//! a reader that tails `pos > last_seen` never misses an entry committed late.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::Result;
use crate::params;
use crate::value::Row;

/// The tables whose every change goes through the log. Operational tables (sessions, sign-in
/// codes, jobs, deliveries, the audit chain, key material) are not records and are not logged.
pub const LOGGED_TABLES: &[&str] = &[
    "nodes",
    "node_codes",
    "grids",
    "buildings",
    "units",
    "dwellings",
    "households",
    "people",
    "memberships",
    "vulnerable",
    "facilities",
    "duties",
    "users",
    "grants",
    "api_tokens",
    "map_features",
    "device_profiles",
    "devices",
    "alarms",
    "warnings",
    // Emergency operations (0010); volunteers and welfare checks, incident operations and
    // passes add theirs below, each in its own block.
    "plans",
    "plan_versions",
    "incidents",
    "incident_tasks",
    // people on the ground (0011)
    "volunteers",
    "callouts",
    "callout_attendance",
    "welfare_checks",
    // incident operations (0012)
    "incident_sitreps",
    "shelter_stays",
    "incident_reviews",
    // access (0013)
    "gates",
    "passes",
    "gate_records",
    // Hazard inspection and the ledger (0014); the calendar and risks (0015) and supervision
    // (0016) add theirs below, each in its own block.
    "inspection_templates",
    "inspection_items",
    "inspection_schedules",
    "inspections",
    "hazards",
    // calendar & risks (0015)
    "calendar_days",
    "risks",
    "risk_reviews",
    // supervision (0016)
    "supervision_rounds",
    "supervision_scores",
    // Supplies (issue 7), each part in its own block.
    // reserves & dispatch (0017)
    "supply_items",
    "stock_lots",
    "stock_movements",
    "stock_norms",
    "dispatch_plans",
    "dispatch_lines",
    // campaigns (0018)
    "campaigns",
    "campaign_slots",
    "campaign_reservations",
    // providers (0019)
    "providers",
    "provider_nodes",
    "provider_accounts",
    "supply_offers",
    "supply_orders",
    "supply_order_events",
    // fund ledger (0020)
    "fund_accounts",
    "fund_entries",
    "fund_attachments",
    // resident channels (0021)
    "resident_channels",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// What live subscribers are told after a commit: no image, so no personal data.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEvent {
    pub pos: i64,
    pub kind: String,
    pub record_id: Uuid,
    pub op: Op,
    pub at: DateTime<Utc>,
    /// Where the record sits in the tree: live streams filter on it per caller.
    #[serde(flatten)]
    pub place: Place,
}

/// Where a record sits in the tree, read from its image: its node (community or the node it
/// hangs off), its grid and its household, as far as it has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Place {
    pub node_id: Option<Uuid>,
    pub grid_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
}

impl Place {
    pub fn of_image(kind: &str, image: &serde_json::Value) -> Place {
        let get = |col: &str| {
            image
                .get(col)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
        };
        let node_id = if kind == "nodes" {
            get("id")
        } else {
            ["community_id", "node_id", "parent_id"]
                .iter()
                .find_map(|c| get(c))
        };
        Place {
            node_id,
            grid_id: if kind == "grids" {
                get("id")
            } else {
                get("grid_id")
            },
            household_id: if kind == "households" {
                get("id")
            } else {
                get("household_id")
            },
        }
    }
}

/// An entry waiting for its position, gathered during a write.
pub(crate) struct Pending {
    pub kind: &'static str,
    pub record_id: Uuid,
    pub op: Op,
    pub after: Option<serde_json::Value>,
    pub after_ct: Option<Vec<u8>>,
    pub key_id: Option<Uuid>,
    pub place: Place,
}

/// Append the pending entries; returns the events to publish after commit.
pub(crate) fn append(
    conn: &mut dyn Conn,
    origin: &str,
    actor: Option<Uuid>,
    request_id: &str,
    at: DateTime<Utc>,
    ids: &dyn anxin_domain::IdGen,
    pending: Vec<Pending>,
) -> Result<Vec<ChangeEvent>> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let n = i64::try_from(pending.len()).unwrap_or(i64::MAX);
    let last = conn.query_i64(
        "UPDATE log_counter SET last = last + $1 WHERE id = 1 RETURNING last",
        &params![n],
    )?;
    let mut pos = last - n;
    let mut events = Vec::with_capacity(pending.len());
    for p in pending {
        pos += 1;
        conn.execute(
            "INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, after_ct, \
             key_id, actor, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &params![
                pos,
                ids.new_id(),
                origin,
                pos,
                p.kind,
                p.record_id,
                p.op.as_str(),
                p.after,
                p.after_ct,
                p.key_id,
                actor,
                request_id,
                at
            ],
        )?;
        events.push(ChangeEvent {
            pos,
            kind: p.kind.to_owned(),
            record_id: p.record_id,
            op: p.op,
            at,
            place: p.place,
        });
    }
    Ok(events)
}

/// Entries after `after_pos`, oldest first: for tailers (webhooks, sync, live catch-up).
pub fn since(conn: &mut dyn Conn, after_pos: i64, limit: i64) -> Result<Vec<Row>> {
    conn.query(
        "SELECT pos, id, origin, seq, kind, record_id, op, after, after_ct, key_id, actor, \
         request_id, at FROM change_log WHERE pos > $1 ORDER BY pos LIMIT $2",
        &params![after_pos, limit],
    )
}
