//! Lists for the management pages that the area modules do not have yet: households, with how
//! many members each has now. Scoped like every query: the caller's reach for `ReadPeople`
//! becomes the SQL predicate, so a household outside it is simply not in the list.

use anxin_domain::roles::Permission;
use serde::Serialize;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::Result;
use crate::scope::{Caller, ScopeCols};
use crate::value::Value;

/// A household as a list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HouseholdRow {
    pub id: Uuid,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub dwelling_id: Option<Uuid>,
    pub label: String,
    /// Current members (memberships not ended).
    pub members: i64,
}

/// Which households: all fields combine with AND.
#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    pub community: Option<Uuid>,
    pub grid: Option<Uuid>,
    /// A substring of the label (`1-1-101`).
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

const HH_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "h.community_id",
    grid: Some("h.grid_id"),
    household: Some("h.id"),
};

/// Households in reach, by label, with the total that match.
pub fn list_households(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &HouseholdFilter,
) -> Result<(Vec<HouseholdRow>, i64)> {
    let reach = caller.reach(Permission::ReadPeople);
    let mut ps: Vec<Value> = Vec::new();
    let mut conds = vec![reach.predicate(conn.dialect(), HH_SCOPE, &mut ps)];
    if let Some(c) = f.community {
        ps.push(c.into());
        conds.push(format!("h.community_id = ${}", ps.len()));
    }
    if let Some(g) = f.grid {
        ps.push(g.into());
        conds.push(format!("h.grid_id = ${}", ps.len()));
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let mut pat = String::from("%");
        for c in q.chars().take(50) {
            if matches!(c, '%' | '_' | '\\') {
                pat.push('\\');
            }
            pat.push(c);
        }
        pat.push('%');
        ps.push(pat.into());
        conds.push(format!("h.label LIKE ${} ESCAPE '\\'", ps.len()));
    }
    let wher = conds.join(" AND ");
    let total = conn.query_i64(
        &format!("SELECT count(*) FROM households h WHERE {wher}"),
        &ps,
    )?;
    ps.push(f.limit.clamp(1, 500).into());
    let l = ps.len();
    ps.push(f.offset.max(0).into());
    let o = ps.len();
    let rows = conn.query(
        &format!(
            "SELECT h.id, h.community_id, h.grid_id, h.dwelling_id, h.label, \
             (SELECT count(*) FROM memberships m WHERE m.household_id = h.id AND m.valid_to IS NULL) AS members \
             FROM households h WHERE {wher} ORDER BY h.label, h.id LIMIT ${l} OFFSET ${o}"
        ),
        &ps,
    )?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(HouseholdRow {
                id: r.get("id")?,
                community_id: r.get("community_id")?,
                grid_id: r.get("grid_id")?,
                dwelling_id: r.get("dwelling_id")?,
                label: r.get("label")?,
                members: r.get("members")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok((items, total))
}
