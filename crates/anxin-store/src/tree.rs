//! The community tree: city → district → street → community → compound, and grids.
//!
//! Nodes are keyed by id; statistical and GB/T 2260 codes are dated attributes in `node_codes`.
//! A division re-import computes a plan with `anxin_domain::divdiff` and applies it here in one
//! write, so renames, recodes, merges and splits keep every node's id (and all that hangs off it).

use std::collections::HashMap;

use anxin_domain::divdiff::{
    self, DivisionChange, DivisionPlan, ExistingNode, IncomingNode, ParentRef,
};
use anxin_domain::roles::Permission;
use anxin_domain::{DivisionCode, Level};
use serde::Serialize;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Node {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub level: String,
    pub name: String,
    pub code: Option<String>,
    pub rural: bool,
    pub status: String,
}

impl Node {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            parent_id: r.get("parent_id")?,
            level: r.get("level")?,
            name: r.get("name")?,
            code: r.get("code")?,
            rural: r.get("rural")?,
            status: r.get("status")?,
        })
    }
}

const NODE_COLS: &str = "n.id, n.parent_id, n.level, n.name, n.rural, n.status, \
    (SELECT c.code FROM node_codes c WHERE c.node_id = n.id AND c.valid_to IS NULL AND c.scheme = 'stats12') AS code";

/// What a division import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DivisionReport {
    pub added: usize,
    pub renamed: usize,
    pub recoded: usize,
    pub moved: usize,
    pub merged: usize,
    pub split: usize,
    pub retired: usize,
    pub unchanged: usize,
    /// Human-readable lines, one per change (names and codes only).
    pub lines: Vec<String>,
}

impl DivisionReport {
    pub fn changed(&self) -> bool {
        self.added + self.renamed + self.recoded + self.moved + self.retired > 0
    }
}

/// The active coded nodes whose code starts with `prefix` (the scope of a re-import).
pub fn coded_nodes(conn: &mut dyn Conn, prefix: &str) -> Result<Vec<ExistingNode>> {
    let rows = conn.query(
        "SELECT n.id, n.parent_id, n.level, n.name, c.code FROM nodes n \
         JOIN node_codes c ON c.node_id = n.id AND c.valid_to IS NULL AND c.scheme = 'stats12' \
         WHERE n.status = 'active' AND c.code LIKE $1",
        &params![format!("{prefix}%")],
    )?;
    rows.iter()
        .map(|r| {
            let level: String = r.get("level")?;
            let code: String = r.get("code")?;
            Ok(ExistingNode {
                id: r.get("id")?,
                parent: r.get("parent_id")?,
                level: level
                    .parse()
                    .map_err(|_| StoreError::Backend(format!("bad level {level}")))?,
                code: DivisionCode::parse(&code)
                    .map_err(|e| StoreError::Backend(format!("stored code {code}: {e}")))?,
                name: r.get("name")?,
            })
        })
        .collect()
}

fn insert_code(tx: &mut Tx, node: Uuid, code: &DivisionCode, source: &str) -> Result<()> {
    let now = tx.now();
    let mut codes = vec![("stats12", code.as_str().to_owned())];
    if matches!(code.level(), Level::City | Level::District) {
        codes.push(("gbt2260", code.gb2260().to_owned()));
    }
    for (scheme, c) in codes {
        let id = tx.new_id();
        tx.insert(
            "node_codes",
            &[
                ("id", id.into()),
                ("node_id", node.into()),
                ("scheme", scheme.into()),
                ("code", c.into()),
                ("valid_from", now.into()),
                ("valid_to", Value::Null),
                ("source", source.into()),
            ],
        )?;
    }
    Ok(())
}

fn close_codes(tx: &mut Tx, node: Uuid) -> Result<()> {
    let now = tx.now();
    let ids = tx.query(
        "SELECT id FROM node_codes WHERE node_id = $1 AND valid_to IS NULL",
        &params![node],
    )?;
    for r in ids {
        let id: Uuid = r.get("id")?;
        tx.update("node_codes", id, &[("valid_to", now.into())])?;
    }
    Ok(())
}

fn is_rural(name: &str) -> bool {
    name.ends_with("村委会") || name.ends_with("村民委员会")
}

/// Compute and apply the plan turning the nodes under `prefix` into `incoming`, in this write.
pub fn import_divisions(
    tx: &mut Tx,
    prefix: &str,
    incoming: &[IncomingNode],
    source: &str,
) -> Result<DivisionReport> {
    let existing = coded_nodes(tx.conn(), prefix)?;
    let plan = divdiff::diff(&existing, incoming)
        .map_err(|e| StoreError::invalid(e.code(), e.to_string()))?;
    apply_plan(tx, &existing, &plan, source)
}

fn apply_plan(
    tx: &mut Tx,
    existing: &[ExistingNode],
    plan: &DivisionPlan,
    source: &str,
) -> Result<DivisionReport> {
    let names: HashMap<Uuid, &ExistingNode> = existing.iter().map(|n| (n.id, n)).collect();
    let label = |id: &Uuid| {
        names.get(id).map_or_else(
            || id.to_string(),
            |n| format!("{} {}", n.code.short(), n.name),
        )
    };
    let mut added: HashMap<DivisionCode, Uuid> = HashMap::new();
    let mut merged_into: HashMap<Uuid, DivisionCode> = HashMap::new();
    let mut rep = DivisionReport {
        unchanged: plan.unchanged,
        ..DivisionReport::default()
    };
    let now = tx.now();
    let resolve =
        |p: &Option<ParentRef>, added: &HashMap<DivisionCode, Uuid>| -> Result<Option<Uuid>> {
            match p {
                None => Ok(None),
                Some(ParentRef::Existing(id)) => Ok(Some(*id)),
                Some(ParentRef::New(code)) => added.get(code).copied().map(Some).ok_or_else(|| {
                    StoreError::Backend(format!("plan refers to {code:?} before adding it"))
                }),
            }
        };
    for ch in &plan.changes {
        match ch {
            DivisionChange::Added {
                code,
                name,
                level,
                parent,
            } => {
                let id = tx.new_id();
                let parent = resolve(parent, &added)?;
                tx.insert(
                    "nodes",
                    &[
                        ("id", id.into()),
                        ("parent_id", parent.into()),
                        ("level", level.as_str().into()),
                        ("name", name.as_str().into()),
                        ("rural", is_rural(name).into()),
                        ("status", "active".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                insert_code(tx, id, code, source)?;
                added.insert(code.clone(), id);
                rep.added += 1;
                rep.lines.push(format!("added {} {name}", code.short()));
            }
            DivisionChange::Renamed { id, from, to } => {
                tx.update(
                    "nodes",
                    *id,
                    &[("name", to.as_str().into()), ("updated_at", now.into())],
                )?;
                rep.renamed += 1;
                rep.lines.push(format!("renamed {from} → {to}"));
            }
            DivisionChange::Recoded { id, from, to } => {
                close_codes(tx, *id)?;
                insert_code(tx, *id, to, source)?;
                tx.update("nodes", *id, &[("updated_at", now.into())])?;
                rep.recoded += 1;
                rep.lines
                    .push(format!("recoded {} → {}", from.short(), to.short()));
            }
            DivisionChange::Moved { id, to_parent, .. } => {
                let parent = resolve(to_parent, &added)?;
                tx.update(
                    "nodes",
                    *id,
                    &[("parent_id", parent.into()), ("updated_at", now.into())],
                )?;
                rep.moved += 1;
                rep.lines.push(format!("moved {}", label(id)));
            }
            DivisionChange::Merged { from, into } => {
                for f in from {
                    merged_into.insert(*f, into.clone());
                }
                rep.merged += 1;
                let from: Vec<String> = from.iter().map(&label).collect();
                rep.lines
                    .push(format!("merged {} into {}", from.join(", "), into.short()));
            }
            DivisionChange::Split { from, into } => {
                rep.split += 1;
                let into: Vec<&str> = into.iter().map(DivisionCode::short).collect();
                rep.lines
                    .push(format!("split {} into {}", label(from), into.join(", ")));
            }
            DivisionChange::Retired { id } => {
                close_codes(tx, *id)?;
                let into = merged_into.get(id).and_then(|c| {
                    added
                        .get(c)
                        .copied()
                        .or_else(|| existing.iter().find(|n| &n.code == c).map(|n| n.id))
                });
                tx.update(
                    "nodes",
                    *id,
                    &[
                        ("status", "retired".into()),
                        ("merged_into", into.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                rep.retired += 1;
                rep.lines.push(format!("retired {}", label(id)));
            }
        }
    }
    Ok(rep)
}

/// Tree reads, scoped to the caller: a node outside the caller's subtrees is not found.
pub trait TreeStore {
    fn node(&mut self, caller: &Caller, id: Uuid) -> Result<Node>;
    fn children(&mut self, caller: &Caller, id: Uuid) -> Result<Vec<Node>>;
    /// The caller's top nodes: the roots of their grants (for navigation).
    fn roots(&mut self, caller: &Caller) -> Result<Vec<Node>>;
    fn find_by_code(&mut self, caller: &Caller, code: &str) -> Result<Node>;
    /// Direct children per level under a node, e.g. 20 districts, 261 streets.
    fn count_below(&mut self, caller: &Caller, id: Uuid) -> Result<Vec<(String, i64)>>;
}

fn visible(
    conn: &mut dyn Conn,
    caller: &Caller,
    extra: &str,
    mut params: Vec<Value>,
) -> Result<Vec<Node>> {
    let reach = caller.reach(Permission::ReadBase);
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let rows = conn.query(
        &format!("SELECT {NODE_COLS} FROM nodes n WHERE {extra} AND {pred} ORDER BY code, n.name"),
        &params,
    )?;
    rows.iter().map(Node::from_row).collect()
}

impl TreeStore for dyn Conn + '_ {
    fn node(&mut self, caller: &Caller, id: Uuid) -> Result<Node> {
        visible(self, caller, "n.id = $1", params![id].to_vec())?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    fn children(&mut self, caller: &Caller, id: Uuid) -> Result<Vec<Node>> {
        self.node(caller, id)?;
        visible(
            self,
            caller,
            "n.parent_id = $1 AND n.status = 'active'",
            params![id].to_vec(),
        )
    }

    fn roots(&mut self, caller: &Caller) -> Result<Vec<Node>> {
        if caller.is_system() {
            return visible(
                self,
                caller,
                "n.parent_id IS NULL AND n.status = 'active'",
                vec![],
            );
        }
        let reach = caller.reach(Permission::ReadBase);
        let mut out = Vec::new();
        for id in reach.nodes {
            if let Ok(n) = self.node(caller, id) {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn find_by_code(&mut self, caller: &Caller, code: &str) -> Result<Node> {
        let code = DivisionCode::parse(code).map_err(|e| StoreError::invalid(e.code(), "code"))?;
        visible(
            self,
            caller,
            "n.id IN (SELECT node_id FROM node_codes WHERE code = $1 AND valid_to IS NULL)",
            params![code.as_str()].to_vec(),
        )?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)
    }

    fn count_below(&mut self, caller: &Caller, id: Uuid) -> Result<Vec<(String, i64)>> {
        self.node(caller, id)?;
        let rows = self.query(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE parent_id = $1 AND status = 'active' \
             UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id WHERE c.status = 'active') \
             SELECT n.level AS level, count(*) AS n FROM nodes n JOIN sub ON sub.id = n.id GROUP BY n.level ORDER BY n.level",
            &params![id],
        )?;
        rows.iter()
            .map(|r| Ok((r.get("level")?, r.get("n")?)))
            .collect()
    }
}

/// A grid (网格): a group of a community's buildings with its grid workers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub id: Uuid,
    pub community_id: Uuid,
    pub name: String,
}

pub fn create_grid(tx: &mut Tx, caller: &Caller, community_id: Uuid, name: &str) -> Result<Grid> {
    let reach = caller.reach(Permission::WriteBase);
    if !reach.contains_node(tx.conn(), community_id)? {
        return Err(StoreError::NotFound);
    }
    let level = tx
        .query_one(
            "SELECT level FROM nodes WHERE id = $1",
            &params![community_id],
        )?
        .ok_or(StoreError::NotFound)?
        .get::<String>("level")?;
    if level != "community" {
        return Err(StoreError::invalid(
            "grid.community_required",
            "community_id",
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "grids",
        &[
            ("id", id.into()),
            ("community_id", community_id.into()),
            ("name", name.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(Grid {
        id,
        community_id,
        name: name.to_owned(),
    })
}

pub fn list_grids(conn: &mut dyn Conn, caller: &Caller, community_id: Uuid) -> Result<Vec<Grid>> {
    let reach = caller.reach(Permission::ReadBase);
    let mut params = params![community_id].to_vec();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "g.community_id",
            grid: Some("g.id"),
            household: None,
        },
        &mut params,
    );
    let rows = conn.query(
        &format!("SELECT g.id, g.community_id, g.name FROM grids g WHERE g.community_id = $1 AND {pred} ORDER BY g.name"),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Grid {
                id: r.get("id")?,
                community_id: r.get("community_id")?,
                name: r.get("name")?,
            })
        })
        .collect()
}

/// Create a compound (小区) under a community.
pub fn create_compound(
    tx: &mut Tx,
    caller: &Caller,
    community_id: Uuid,
    name: &str,
) -> Result<Uuid> {
    let reach = caller.reach(Permission::WriteBase);
    if !reach.contains_node(tx.conn(), community_id)? {
        return Err(StoreError::NotFound);
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "nodes",
        &[
            ("id", id.into()),
            ("parent_id", community_id.into()),
            ("level", "compound".into()),
            ("name", name.into()),
            ("rural", false.into()),
            ("status", "active".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(id)
}

/// One grid, within the caller's reach (a grid outside it is [`StoreError::NotFound`]).
pub fn get_grid(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Grid> {
    let reach = caller.reach(Permission::ReadBase);
    let mut params = params![id].to_vec();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "g.community_id",
            grid: Some("g.id"),
            household: None,
        },
        &mut params,
    );
    let r = conn
        .query_one(
            &format!("SELECT g.id, g.community_id, g.name FROM grids g WHERE g.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Ok(Grid {
        id: r.get("id")?,
        community_id: r.get("community_id")?,
        name: r.get("name")?,
    })
}

/// Rename a grid in the caller's write reach (outside it: [`StoreError::NotFound`]).
pub fn rename_grid(tx: &mut Tx, caller: &Caller, id: Uuid, name: &str) -> Result<Grid> {
    let reach = caller.reach(Permission::WriteBase);
    let mut params = params![id].to_vec();
    let pred = reach.predicate(
        tx.dialect(),
        ScopeCols {
            node: "g.community_id",
            grid: Some("g.id"),
            household: None,
        },
        &mut params,
    );
    let community_id: Uuid = tx
        .query_one(
            &format!("SELECT g.community_id FROM grids g WHERE g.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?
        .get("community_id")?;
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    let now = tx.now();
    tx.update(
        "grids",
        id,
        &[("name", name.into()), ("updated_at", now.into())],
    )?;
    Ok(Grid {
        id,
        community_id,
        name: name.to_owned(),
    })
}

/// Rename a compound (小区, a node of level `compound`) in the caller's write reach. Official
/// divisions keep the names of their statistical codes: renaming those is the division
/// re-import's job, so any other level is [`StoreError::NotFound`] here.
pub fn rename_compound(tx: &mut Tx, caller: &Caller, id: Uuid, name: &str) -> Result<()> {
    let reach = caller.reach(Permission::WriteBase);
    let level = tx
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![id])?
        .map(|r| r.get::<String>("level"))
        .transpose()?;
    if level.as_deref() != Some("compound") || !reach.contains_node(tx.conn(), id)? {
        return Err(StoreError::NotFound);
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    let now = tx.now();
    tx.update(
        "nodes",
        id,
        &[("name", name.into()), ("updated_at", now.into())],
    )?;
    Ok(())
}
