//! The caller's scope: what every area method takes, so no query can forget it.
//!
//! A user holds grants (role × scope × validity). For an operation needing permission `P`, the
//! caller's reach is the union of the scopes of the active grants whose role has `P`
//! ([`Caller::reach`]). Area queries turn that reach into one SQL predicate
//! ([`Reach::predicate`]); a record outside it is simply not found.

use anxin_domain::roles::{Permission, Role, ScopeKind};
use uuid::Uuid;

use crate::conn::{Conn, Dialect};
use crate::error::Result;
use crate::params;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    pub grant_id: Option<Uuid>,
    pub role: Role,
    pub scope_kind: ScopeKind,
    pub scope_id: Uuid,
}

/// Who is asking. Built from the session's user and their grants valid now.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Option<Uuid>,
    pub grants: Vec<ActiveGrant>,
    /// The whole platform (command line, jobs, migrations): not reachable from HTTP.
    system: bool,
}

/// Where a caller may act for one permission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub all: bool,
    pub nodes: Vec<Uuid>,
    pub grids: Vec<Uuid>,
    pub households: Vec<Uuid>,
}

/// The columns of a table that place a record in the tree.
#[derive(Debug, Clone, Copy)]
pub struct ScopeCols<'a> {
    /// The node column (community, compound or any level), matched against node subtrees.
    pub node: &'a str,
    pub grid: Option<&'a str>,
    pub household: Option<&'a str>,
}

impl Caller {
    /// The platform itself: the command line and background jobs.
    pub fn system() -> Self {
        Self {
            user_id: None,
            grants: Vec::new(),
            system: true,
        }
    }

    pub fn user(user_id: Uuid, grants: Vec<ActiveGrant>) -> Self {
        Self {
            user_id: Some(user_id),
            grants,
            system: false,
        }
    }

    pub fn is_system(&self) -> bool {
        self.system
    }

    pub fn has(&self, p: Permission) -> bool {
        self.system
            || self
                .grants
                .iter()
                .any(|g| g.role.permissions().contains(&p))
    }

    pub fn has_role(&self, r: Role) -> bool {
        self.grants.iter().any(|g| g.role == r)
    }

    /// Where this caller may use permission `p`.
    pub fn reach(&self, p: Permission) -> Reach {
        if self.system {
            return Reach {
                all: true,
                ..Reach::default()
            };
        }
        let mut r = Reach::default();
        for g in self
            .grants
            .iter()
            .filter(|g| g.role.permissions().contains(&p))
        {
            match g.scope_kind {
                ScopeKind::Node => r.nodes.push(g.scope_id),
                ScopeKind::Grid => r.grids.push(g.scope_id),
                ScopeKind::Household => r.households.push(g.scope_id),
            }
        }
        r
    }

    /// Load the grants of `user_id` valid at `now`.
    pub fn load(
        conn: &mut dyn Conn,
        user_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self> {
        let rows = conn.query(
            "SELECT id, role, scope_kind, scope_id FROM grants WHERE user_id = $1 \
             AND revoked_at IS NULL AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)",
            &params![user_id, now],
        )?;
        let mut grants = Vec::with_capacity(rows.len());
        for r in rows {
            let role: String = r.get("role")?;
            let kind: String = r.get("scope_kind")?;
            // A grant naming a role this build does not know gives nothing.
            let (Ok(role), Ok(scope_kind)) = (role.parse::<Role>(), kind.parse::<ScopeKind>())
            else {
                tracing::warn!(grant.role = %role, "unknown role or scope kind in grant; ignored");
                continue;
            };
            grants.push(ActiveGrant {
                grant_id: Some(r.get("id")?),
                role,
                scope_kind,
                scope_id: r.get("scope_id")?,
            });
        }
        Ok(Self::user(user_id, grants))
    }
}

impl Reach {
    /// Widen this reach by another: where either applies.
    pub fn merge(&mut self, other: Reach) {
        self.all |= other.all;
        self.nodes.extend(other.nodes);
        self.grids.extend(other.grids);
        self.households.extend(other.households);
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.nodes.is_empty() && self.grids.is_empty() && self.households.is_empty()
    }

    /// A SQL predicate that holds for records within reach. Parameters are appended to `params`
    /// and numbered after those already there.
    pub fn predicate(&self, d: Dialect, cols: ScopeCols<'_>, params: &mut Vec<Value>) -> String {
        if self.all {
            return "1 = 1".into();
        }
        let mut parts = Vec::new();
        if !self.nodes.is_empty() {
            params.push(json_ids(&self.nodes));
            let n = params.len();
            parts.push(format!(
                "{} IN (WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE {} \
                 UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)",
                cols.node,
                d.in_json_list("id", n)
            ));
        }
        if let (Some(col), false) = (cols.grid, self.grids.is_empty()) {
            params.push(json_ids(&self.grids));
            parts.push(d.in_json_list(col, params.len()));
        }
        if let (Some(col), false) = (cols.household, self.households.is_empty()) {
            params.push(json_ids(&self.households));
            parts.push(d.in_json_list(col, params.len()));
        }
        if parts.is_empty() {
            "1 = 0".into()
        } else {
            format!("({})", parts.join(" OR "))
        }
    }

    /// Whether a node is inside reach (for records looked up by id before a write).
    pub fn contains_node(&self, conn: &mut dyn Conn, node: Uuid) -> Result<bool> {
        if self.all {
            return Ok(true);
        }
        if self.nodes.is_empty() {
            return Ok(false);
        }
        let mut params = vec![Value::Uuid(node)];
        let pred = self.predicate(
            conn.dialect(),
            ScopeCols {
                node: "n.id",
                grid: None,
                household: None,
            },
            &mut params,
        );
        Ok(conn.query_i64(
            &format!("SELECT count(*) FROM nodes n WHERE n.id = $1 AND {pred}"),
            &params,
        )? > 0)
    }
}

impl Reach {
    /// Every node id inside reach (the subtrees of its node grants), for filtering in memory
    /// (live events). `None` means everything.
    pub fn expand_nodes(
        &self,
        conn: &mut dyn Conn,
    ) -> Result<Option<std::collections::HashSet<Uuid>>> {
        if self.all {
            return Ok(None);
        }
        let mut out = std::collections::HashSet::new();
        if self.nodes.is_empty() {
            return Ok(Some(out));
        }
        let mut params = Vec::new();
        let pred = self.predicate(
            conn.dialect(),
            ScopeCols {
                node: "n.id",
                grid: None,
                household: None,
            },
            &mut params,
        );
        for r in conn.query(&format!("SELECT n.id FROM nodes n WHERE {pred}"), &params)? {
            out.insert(r.get("id")?);
        }
        Ok(Some(out))
    }
}

fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

/// Node reaches expanded to node ids, kept per set of granted nodes and dropped on any change to
/// the tree.
///
/// Each use first asks the store (one statement, two index probes) for the last change-log
/// position and whether a `nodes` entry was logged past the position checked before. Positions
/// are gap-free and in commit order and every write to `nodes` is logged, so a tree edit made by
/// any process (the server, the command line) is seen by the next use, which empties the cache.
/// Writes to other tables leave it alone. An expansion computed while the cache was being emptied
/// is not kept (the epoch check), so a stale set never outlives the edit that made it stale.
#[derive(Debug, Default)]
pub struct ReachCache {
    state: std::sync::Mutex<CacheState>,
    expansions: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct CacheState {
    /// The change-log position up to which the tree is known unchanged since the sets were made.
    checked: Option<i64>,
    /// Bumped whenever the sets are dropped.
    epoch: u64,
    sets: std::collections::HashMap<Vec<Uuid>, std::sync::Arc<[Uuid]>>,
    /// Grant sets whose reach was found not to hold every person (a hint only: dropped with
    /// the sets; a stale entry costs a reach test, never a wrong answer).
    partial: std::collections::HashSet<Vec<Uuid>>,
}

/// Sets kept at most; past that the cache starts over (grant sets are few in practice).
const REACH_CACHE_MAX: usize = 4_096;

impl ReachCache {
    /// Every node id in the subtrees of `roots`, sorted.
    pub fn expand(&self, conn: &mut dyn Conn, roots: &[Uuid]) -> Result<std::sync::Arc<[Uuid]>> {
        let key = root_key(roots);
        if key.is_empty() {
            return Ok(std::sync::Arc::from(Vec::new()));
        }
        let since = self.lock().checked;
        // `+kind` (SQLite) and `kind || ''` (PostgreSQL's generic plan) keep the planner on the
        // position index (a range of the few entries since the last check), not on the
        // (kind, …) index that holds every node entry ever logged.
        let kind = match conn.dialect() {
            Dialect::Sqlite => "+kind",
            Dialect::Postgres => "kind || ''",
        };
        let row = conn.query_one(
            &format!(
                "SELECT (SELECT coalesce(max(pos), 0) FROM change_log) AS last, \
                 (SELECT count(*) FROM (SELECT 1 FROM change_log WHERE pos > $1 \
                 AND {kind} = 'nodes' LIMIT 1) t) AS moved"
            ),
            &[Value::Int(since.unwrap_or(-1))],
        )?;
        let (last, moved): (i64, i64) = match &row {
            Some(r) => (r.get("last")?, r.get("moved")?),
            None => (0, 1),
        };
        let epoch = {
            let mut s = self.lock();
            if moved > 0 || since.is_none() {
                s.sets.clear();
                s.partial.clear();
                s.epoch += 1;
            }
            s.checked = Some(s.checked.map_or(last, |c| c.max(last)));
            if let Some(hit) = s.sets.get(&key) {
                return Ok(hit.clone());
            }
            s.epoch
        };
        let set = expand_subtrees(conn, &key)?;
        self.expansions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.lock();
        if s.epoch == epoch {
            if s.sets.len() >= REACH_CACHE_MAX {
                s.sets.clear();
            }
            s.sets.insert(key, set.clone());
        }
        Ok(set)
    }

    /// Whether the reach of these granted nodes was marked as not holding everyone.
    pub fn known_partial(&self, roots: &[Uuid]) -> bool {
        self.lock().partial.contains(&root_key(roots))
    }

    /// Remember that the reach of these granted nodes does not hold everyone.
    pub fn mark_partial(&self, roots: &[Uuid]) {
        let mut s = self.lock();
        if s.partial.len() >= REACH_CACHE_MAX {
            s.partial.clear();
        }
        s.partial.insert(root_key(roots));
    }

    /// How many expansions went to the store (for tests and diagnostics).
    pub fn expansions(&self) -> u64 {
        self.expansions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state is always consistent between statements: a panic elsewhere cannot poison it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Reach {
    /// The node ids inside reach (the subtrees of its node grants), sorted; `None` means
    /// everything. Through `cache` when given (see [`ReachCache`]), else one recursive query.
    pub fn node_ids(
        &self,
        conn: &mut dyn Conn,
        cache: Option<&ReachCache>,
    ) -> Result<Option<std::sync::Arc<[Uuid]>>> {
        if self.all {
            return Ok(None);
        }
        if self.nodes.is_empty() {
            return Ok(Some(std::sync::Arc::from(Vec::new())));
        }
        match cache {
            Some(c) => c.expand(conn, &self.nodes).map(Some),
            None => expand_subtrees(conn, &self.nodes).map(Some),
        }
    }
}

fn root_key(roots: &[Uuid]) -> Vec<Uuid> {
    let mut key = roots.to_vec();
    key.sort_unstable();
    key.dedup();
    key
}

/// The node ids of the subtrees of `roots`, sorted: one indexed query per tree level (on
/// PostgreSQL a recursive query is estimated so expensive that it is JIT-compiled, ≈30 ms).
fn expand_subtrees(conn: &mut dyn Conn, roots: &[Uuid]) -> Result<std::sync::Arc<[Uuid]>> {
    let d = conn.dialect();
    let uuid_in = |col: &str| match d {
        Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each($1))"),
        Dialect::Postgres => {
            format!("{col} IN (SELECT v::uuid FROM jsonb_array_elements_text($1::jsonb) AS t(v))")
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut level: Vec<Uuid> = Vec::new();
    for r in conn.query(
        &format!("SELECT id FROM nodes WHERE {}", uuid_in("id")),
        &[json_ids(roots)],
    )? {
        let id: Uuid = r.get("id")?;
        if seen.insert(id) {
            level.push(id);
        }
    }
    let children = format!("SELECT id FROM nodes WHERE {}", uuid_in("parent_id"));
    while !level.is_empty() {
        let mut next = Vec::new();
        for r in conn.query(&children, &[json_ids(&level)])? {
            let id: Uuid = r.get("id")?;
            if seen.insert(id) {
                next.push(id);
            }
        }
        level = next;
    }
    let mut ids: Vec<Uuid> = seen.into_iter().collect();
    ids.sort_unstable();
    Ok(ids.into())
}
