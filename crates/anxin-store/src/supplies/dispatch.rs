//! Dispatch across communities (owner: reserves & dispatch).
//!
//! [`propose`] plans transfers for the communities below a street or district: for each item, a
//! community's **gap** is its need by the norm that applies (see `reserves`) minus the balance of
//! its depots; a community's **surplus** is its balance above its own need, spread over its depots
//! (largest balance first); a depot above the communities (at the street) has all of its stock
//! spare. Each community with a gap receives at one depot: the one of its depots holding the most
//! stock. The cost of a unit is the straight-line distance (haversine, whole metres) from the
//! sending depot to the receiving depot (each falling back to its community's position, and to
//! [`UNKNOWN_DISTANCE_KM`] when a position is missing). Per item, the transfers are the
//! minimum-cost maximum flow of [`anxin_domain::supplies::solve`]: the most need covered, and the
//! least travel among plans covering that much — not a greedy nearest-first loop.
//!
//! A plan is stored as proposed with the sending depot's balance of each item at planning time;
//! [`execute`] posts a transfer_out and transfer_in for every line in one transaction, and
//! refuses the whole plan (`dispatch.stock_changed`) if any of those balances changed meanwhile.
//! Proposing and executing need `ManageSupplies` at the plan's node; reading needs `ReadSupplies`.

use std::collections::{BTreeMap, HashMap};

use anxin_domain::geo::{distance_m, LonLat};
use anxin_domain::roles::Permission;
use anxin_domain::supplies::{self as dom, Problem};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::ops::plans::subtree;
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::supplies::reserves::{self, communities_below, effective_norms};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

/// Distance assumed when a depot or community has no position on the map.
pub const UNKNOWN_DISTANCE_KM: f64 = 50.0;

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

/// One transfer of a plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DispatchPlanLine))]
#[derive(Debug, Clone, Serialize)]
pub struct PlanLine {
    pub id: Uuid,
    pub item_id: Uuid,
    pub item_code: String,
    pub item_name: String,
    pub unit: String,
    pub from_depot_id: Uuid,
    pub from_depot_name: String,
    pub from_community_id: Uuid,
    pub from_community_name: String,
    pub to_community_id: Uuid,
    pub to_community_name: String,
    pub to_depot_id: Uuid,
    pub to_depot_name: String,
    pub quantity: i64,
    pub distance_km: f64,
    /// The sending depot's balance of the item when planned.
    pub source_balance: i64,
}

/// A dispatch plan.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DispatchPlan))]
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    /// proposed, executed, cancelled
    pub status: String,
    /// Units moved by the plan.
    pub total_quantity: i64,
    /// The communities' total gap when planned (what could be covered at most).
    pub total_need: i64,
    /// Σ quantity × distance (unit·km).
    pub cost_km: f64,
    pub created_by: Option<Uuid>,
    pub executed_by: Option<Uuid>,
    pub executed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<PlanLine>,
}

impl Plan {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
            status: r.get("status")?,
            total_quantity: r.get("total_quantity")?,
            total_need: r.get("total_need")?,
            cost_km: r.get("cost_km")?,
            created_by: r.get("created_by")?,
            executed_by: r.get("executed_by")?,
            executed_at: r.get("executed_at")?,
            created_at: r.get("created_at")?,
            lines: Vec::new(),
        })
    }
}

const PLAN_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "p.node_id",
    grid: None,
    household: None,
};

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

struct DepotPos {
    id: Uuid,
    community: Option<Uuid>,
    pos: Option<LonLat>,
}

fn pos(lon: Option<f64>, lat: Option<f64>) -> Option<LonLat> {
    LonLat::new(lon?, lat?).ok()
}

/// Compute and store a proposed plan for the communities below `node` (a street, district or
/// city the caller has `ManageSupplies` over). `defaults`: the configured default norms by item
/// code.
pub fn propose(
    tx: &mut Tx,
    caller: &Caller,
    node: Uuid,
    defaults: &BTreeMap<String, i64>,
) -> Result<Plan> {
    let manage = caller.reach(Permission::ManageSupplies);
    if !manage.contains_node(tx.conn(), node)? {
        if caller
            .reach(Permission::ReadSupplies)
            .contains_node(tx.conn(), node)?
        {
            return Err(StoreError::Forbidden("dispatch.not_allowed"));
        }
        return Err(StoreError::NotFound);
    }
    let level: String = tx
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![node])?
        .ok_or(StoreError::NotFound)?
        .get("level")?;
    if !matches!(level.as_str(), "street" | "district" | "city") {
        return Err(bad("dispatch.node_level", "node_id"));
    }
    let comms = communities_below(tx.conn(), node)?;
    let comm_pos: HashMap<Uuid, Option<LonLat>> =
        comms.iter().map(|c| (c.id, pos(c.lon, c.lat))).collect();
    // Depots below the node and their balances per item.
    let below = subtree(tx.conn(), node)?;
    let d = tx.dialect();
    let rows = tx.query(
        &format!(
            "SELECT f.id, f.lon, f.lat, CASE WHEN n.level = 'community' THEN n.id \
             WHEN n.level = 'compound' THEN n.parent_id END AS community_id \
             FROM facilities f JOIN nodes n ON n.id = f.node_id WHERE {} ORDER BY f.id",
            d.in_json_list("f.node_id", 1)
        ),
        &[json_ids(&below)],
    )?;
    let mut depots: Vec<DepotPos> = Vec::new();
    for r in &rows {
        let community: Option<Uuid> = r.get("community_id")?;
        let own = pos(r.get("lon")?, r.get("lat")?);
        depots.push(DepotPos {
            id: r.get("id")?,
            community,
            pos: own.or_else(|| community.and_then(|c| comm_pos.get(&c).copied().flatten())),
        });
    }
    let depot_ids: Vec<Uuid> = depots.iter().map(|d| d.id).collect();
    let bal_rows = if depot_ids.is_empty() {
        Vec::new()
    } else {
        tx.query(
            &format!(
                "SELECT depot_id, item_id, CAST(SUM(quantity) AS BIGINT) AS q FROM stock_balances WHERE {} \
                 GROUP BY depot_id, item_id",
                d.in_json_list("depot_id", 1)
            ),
            &[json_ids(&depot_ids)],
        )?
    };
    let mut bal: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    for r in &bal_rows {
        bal.insert((r.get("depot_id")?, r.get("item_id")?), r.get("q")?);
    }
    // The receiving depot of each community: its depot holding the most stock (any item).
    let mut held: HashMap<Uuid, i64> = HashMap::new();
    for ((dep, _), q) in &bal {
        *held.entry(*dep).or_default() += q;
    }
    let mut receiving: HashMap<Uuid, usize> = HashMap::new();
    for (k, dp) in depots.iter().enumerate() {
        let Some(c) = dp.community else { continue };
        let h = held.get(&dp.id).copied().unwrap_or(0);
        match receiving.get(&c) {
            Some(&j) if held.get(&depots[j].id).copied().unwrap_or(0) >= h => {}
            _ => {
                receiving.insert(c, k);
            }
        }
    }
    // Needs per community and item.
    let mut needs: HashMap<(Uuid, Uuid), i64> = HashMap::new();
    let mut items: Vec<Uuid> = Vec::new();
    for c in &comms {
        for (item, (per, _)) in effective_norms(tx.conn(), c.id, defaults)? {
            let n = dom::norm_need(c.residents, per);
            if n > 0 {
                needs.insert((c.id, item), n);
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
    }
    for (_, item) in bal.keys() {
        if !items.contains(item) {
            items.push(*item);
        }
    }
    items.sort();
    let comm_set: std::collections::HashSet<Uuid> = comms.iter().map(|c| c.id).collect();
    let plan_id = tx.new_id();
    let now = tx.now();
    let mut lines: Vec<Vec<Value>> = Vec::new();
    let mut total_q = 0i64;
    let mut total_need = 0i64;
    let mut cost_km = 0f64;
    for item in items {
        // Sinks: communities with a gap and a receiving depot.
        let mut sinks: Vec<(Uuid, usize, i64)> = Vec::new();
        let mut comm_bal: HashMap<Uuid, i64> = HashMap::new();
        for dp in &depots {
            if let Some(c) = dp.community {
                *comm_bal.entry(c).or_default() += bal.get(&(dp.id, item)).copied().unwrap_or(0);
            }
        }
        for c in &comms {
            let need = needs.get(&(c.id, item)).copied().unwrap_or(0);
            let have = comm_bal.get(&c.id).copied().unwrap_or(0);
            let gap = need - have;
            if gap > 0 {
                total_need += gap;
                if let Some(&k) = receiving.get(&c.id) {
                    sinks.push((c.id, k, gap));
                }
            }
        }
        if sinks.is_empty() {
            continue;
        }
        // Sources: depots with spare stock.
        let mut sources: Vec<(usize, i64)> = Vec::new();
        let mut spare_of: HashMap<Uuid, i64> = HashMap::new();
        for c in &comms {
            let need = needs.get(&(c.id, item)).copied().unwrap_or(0);
            let have = comm_bal.get(&c.id).copied().unwrap_or(0);
            spare_of.insert(c.id, (have - need).max(0));
        }
        let mut order: Vec<usize> = (0..depots.len()).collect();
        order.sort_by_key(|&k| {
            (
                -bal.get(&(depots[k].id, item)).copied().unwrap_or(0),
                depots[k].id,
            )
        });
        for k in order {
            let dp = &depots[k];
            let b = bal.get(&(dp.id, item)).copied().unwrap_or(0);
            if b <= 0 {
                continue;
            }
            let spare = match dp.community {
                Some(c) if comm_set.contains(&c) => {
                    let left = spare_of.entry(c).or_default();
                    let s = (*left).min(b);
                    *left -= s;
                    s
                }
                _ => b,
            };
            if spare > 0 {
                sources.push((k, spare));
            }
        }
        if sources.is_empty() {
            continue;
        }
        let km = |a: &DepotPos, b: &DepotPos| -> f64 {
            match (a.pos, b.pos) {
                (Some(p), Some(q)) => distance_m(p, q) / 1000.0,
                _ => UNKNOWN_DISTANCE_KM,
            }
        };
        let problem = Problem {
            supply: sources.iter().map(|s| s.1).collect(),
            need: sinks.iter().map(|s| s.2).collect(),
            cost: sources
                .iter()
                .map(|(k, _)| {
                    sinks
                        .iter()
                        .map(|(c, r, _)| {
                            (depots[*k].community != Some(*c))
                                .then(|| dom::cost_metres(km(&depots[*k], &depots[*r])))
                        })
                        .collect()
                })
                .collect(),
        };
        let sol = dom::solve(&problem);
        for f in sol.flows {
            let (k, _) = sources[f.source];
            let (c, r, _) = sinks[f.sink];
            let from = &depots[k];
            let dist = (km(from, &depots[r]) * 1000.0).round() / 1000.0;
            total_q += f.quantity;
            cost_km += dist * f.quantity as f64;
            let from_comm = from.community.unwrap_or(node);
            lines.push(vec![
                Value::Uuid(tx.new_id()),
                Value::Uuid(plan_id),
                Value::Uuid(node),
                Value::Uuid(item),
                Value::Uuid(from.id),
                Value::Uuid(from_comm),
                Value::Uuid(c),
                Value::Uuid(depots[r].id),
                Value::Int(f.quantity),
                Value::Real(dist),
                Value::Int(bal.get(&(from.id, item)).copied().unwrap_or(0)),
                Value::Time(now),
            ]);
        }
    }
    tx.insert(
        "dispatch_plans",
        &[
            ("id", plan_id.into()),
            ("node_id", node.into()),
            ("status", "proposed".into()),
            ("total_quantity", total_q.into()),
            ("total_need", total_need.into()),
            ("cost_km", ((cost_km * 1000.0).round() / 1000.0).into()),
            ("created_by", tx.ctx().actor.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    tx.insert_many(
        "dispatch_lines",
        &[
            "id",
            "plan_id",
            "node_id",
            "item_id",
            "from_depot_id",
            "from_community_id",
            "to_community_id",
            "to_depot_id",
            "quantity",
            "distance_km",
            "source_balance",
            "created_at",
        ],
        &lines,
    )?;
    load(tx.conn(), &manage, plan_id)
}

/// Plans a reach sees: those at a node within it, and those sending to or from a community
/// within it.
fn plan_pred(d: crate::conn::Dialect, reach: &Reach, ps: &mut Vec<Value>) -> String {
    let own = reach.predicate(d, PLAN_SCOPE, ps);
    let to = reach.predicate(
        d,
        ScopeCols {
            node: "dl.to_community_id",
            grid: None,
            household: None,
        },
        ps,
    );
    let from = reach.predicate(
        d,
        ScopeCols {
            node: "dl.from_community_id",
            grid: None,
            household: None,
        },
        ps,
    );
    format!(
        "({own} OR EXISTS (SELECT 1 FROM dispatch_lines dl WHERE dl.plan_id = p.id AND ({to} OR {from})))"
    )
}

/// A plan to propose.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DispatchPlanInput))]
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// A street, district or city the caller manages supplies over.
    pub node_id: Option<Uuid>,
}

fn load(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Plan> {
    let mut ps = vec![Value::Uuid(id)];
    let pred = plan_pred(conn.dialect(), reach, &mut ps);
    let r = conn
        .query_one(
            &format!(
                "SELECT p.*, n.name AS node_name FROM dispatch_plans p JOIN nodes n ON n.id = p.node_id \
                 WHERE p.id = $1 AND {pred}"
            ),
            &ps,
        )?
        .ok_or(StoreError::NotFound)?;
    let mut plan = Plan::from_row(&r)?;
    plan.lines = conn
        .query(
            "SELECT l.*, i.code, i.name AS item_name, i.unit, fd.name AS from_name, fc.name AS from_comm, \
             tc.name AS to_comm, td.name AS to_name FROM dispatch_lines l \
             JOIN supply_items i ON i.id = l.item_id JOIN facilities fd ON fd.id = l.from_depot_id \
             JOIN nodes fc ON fc.id = l.from_community_id JOIN nodes tc ON tc.id = l.to_community_id \
             JOIN facilities td ON td.id = l.to_depot_id WHERE l.plan_id = $1 \
             ORDER BY i.code, tc.name, fd.name, l.id",
            &params![id],
        )?
        .iter()
        .map(|r| {
            Ok(PlanLine {
                id: r.get("id")?,
                item_id: r.get("item_id")?,
                item_code: r.get("code")?,
                item_name: r.get("item_name")?,
                unit: r.get("unit")?,
                from_depot_id: r.get("from_depot_id")?,
                from_depot_name: r.get("from_name")?,
                from_community_id: r.get("from_community_id")?,
                from_community_name: r.get("from_comm")?,
                to_community_id: r.get("to_community_id")?,
                to_community_name: r.get("to_comm")?,
                to_depot_id: r.get("to_depot_id")?,
                to_depot_name: r.get("to_name")?,
                quantity: r.get("quantity")?,
                distance_km: r.get("distance_km")?,
                source_balance: r.get("source_balance")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(plan)
}

/// One plan within the caller's `ReadSupplies` reach.
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Plan> {
    load(conn, &caller.reach(Permission::ReadSupplies), id)
}

/// Plans within the caller's reach, newest first (without their lines).
pub fn list(conn: &mut dyn Conn, caller: &Caller, limit: i64) -> Result<Vec<Plan>> {
    let reach = caller.reach(Permission::ReadSupplies);
    let mut ps = Vec::new();
    let pred = plan_pred(conn.dialect(), &reach, &mut ps);
    ps.push(limit.clamp(1, 200).into());
    conn.query(
        &format!(
            "SELECT p.*, n.name AS node_name FROM dispatch_plans p JOIN nodes n ON n.id = p.node_id \
             WHERE {pred} ORDER BY p.created_at DESC, p.id DESC LIMIT ${}",
            ps.len()
        ),
        &ps,
    )?
    .iter()
    .map(Plan::from_row)
    .collect()
}

/// Execute a proposed plan: every line becomes a transfer (transfer_out at the sending depot,
/// first expiry first; transfer_in at the receiving depot), all in this transaction. Refused
/// when the plan is not proposed (`dispatch.not_proposed`) or a sending depot's balance of an
/// item changed since planning (`dispatch.stock_changed`): nothing is written then.
pub fn execute(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Plan> {
    let read = caller.reach(Permission::ReadSupplies);
    let plan = load(tx.conn(), &read, id)?;
    if !caller
        .reach(Permission::ManageSupplies)
        .contains_node(tx.conn(), plan.node_id)?
    {
        // Seen through one of its communities, but not the caller's to execute.
        return Err(StoreError::Forbidden("dispatch.not_allowed"));
    }
    if plan.status != "proposed" {
        return Err(StoreError::Conflict {
            code: "dispatch.not_proposed",
            detail: plan.status,
        });
    }
    let mut checked: HashMap<(Uuid, Uuid), ()> = HashMap::new();
    for l in &plan.lines {
        if checked.insert((l.from_depot_id, l.item_id), ()).is_some() {
            continue;
        }
        let now = reserves::balance(tx.conn(), l.from_depot_id, l.item_id)?;
        if now != l.source_balance {
            return Err(StoreError::Conflict {
                code: "dispatch.stock_changed",
                detail: format!(
                    "{} at {}: {} planned, {} now",
                    l.item_code, l.from_depot_name, l.source_balance, now
                ),
            });
        }
    }
    for l in &plan.lines {
        reserves::transfer(
            tx,
            &reserves::Transfer {
                item_id: l.item_id,
                from: l.from_depot_id,
                to: l.to_depot_id,
                lot_id: None,
                quantity: l.quantity,
                reference: ("dispatch", Some(id)),
                note: Some(format!("调度方案 {}", &id.to_string()[..8])),
            },
        )?;
    }
    let now = tx.now();
    tx.update(
        "dispatch_plans",
        id,
        &[
            ("status", "executed".into()),
            ("executed_by", tx.ctx().actor.into()),
            ("executed_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load(tx.conn(), &read, id)
}
