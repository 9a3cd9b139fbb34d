//! The division re-import diff.
//!
//! Division codes are attributes, not keys. Tree nodes are keyed by UUID, and households,
//! buildings, grants and history hang off those ids. When the statistical division list is
//! imported again (yearly, or after a 区划调整), divisions have been renamed, recoded, merged and
//! split; the plan computed here keeps every node that still exists on its id, so nothing hanging
//! off it is orphaned, and says what happened to every one that does not.
//!
//! # Input
//! - `existing`: the active coded nodes of the scope being re-imported (city, districts, streets,
//!   communities). Compounds and below have no statistical code and are left out: they follow
//!   their community's id, which survives recoding.
//! - `incoming`: the complete new list for the same scope. Every `parent_code` must be in the list
//!   (include the scope's root), codes must be unique, and each node's level must be its code's
//!   level and lie below its parent's.
//!
//! An existing node whose parent is not among `existing` (the scope root, hanging off something
//! outside) is a root; an incoming node without `parent_code` is a root. A root stays where it is.
//!
//! # Matching, level by level from the top
//! 1. **By code.** An incoming node with the code of an existing one is that node: `Renamed` if the
//!    name differs, `Moved` if its parent is now another node.
//! 2. **By name under the same parent.** An unmatched incoming node whose parent is known (matched
//!    or fed, see 4) takes an unmatched existing node of the same level and name under that
//!    parent, or under any of the old nodes feeding it: `Recoded` (and `Moved` when the parent
//!    changed). Among namesakes the lowest codes pair first.
//! 3. **Transfers.** A street or community still unmatched pairs with an unmatched existing one of
//!    the same level and name in the same county (same GB/T 2260 prefix), when that name is unique
//!    among the unmatched on both sides: a community handed from one street to another.
//! 4. **By children's names.** Remaining nodes are linked across old and new by the overlap of
//!    their children's names (a child matched by code counts as shared with its old parent). A link
//!    needs at least one shared child and at least half of the smaller child list shared, so one
//!    common name such as 新村社区 links nothing. Links between two nodes both already matched are
//!    ignored. Each connected group of links is then:
//!    - one new node and one old node, both unmatched: the same node, recoded (and perhaps renamed
//!      or moved);
//!    - otherwise the unmatched new nodes are created and the unmatched old ones retired, and the
//!      group is reported: a new node fed by two or more old ones (counting the node it matched,
//!      if any) is `Merged`; an old node feeding two or more new ones (counting its own match) is
//!      `Split`. Matching the children of a fed node (step 2) looks among the children of all the
//!      old nodes feeding it, so communities keep their ids through merges and splits.
//! 5. **What is left**: incoming nodes are `Added`, existing ones `Retired`.
//!
//! # The plan
//! Structure changes only through `Added`, `Renamed`, `Recoded`, `Moved` and `Retired`; `Merged`
//! and `Split` explain a group of those and change nothing themselves (see [`apply`]). The order
//! is safe to execute one change at a time: level by level from the top, `Added` first (so a
//! parent is created before any child refers to it through [`ParentRef::New`]), then the changes to
//! matched nodes, then the reports; all `Retired` come last, deepest level first, after every
//! surviving child has moved away. No code is ever held by two active nodes at once: a code an
//! incoming node takes was held by no existing node, or it would have matched in step 1.

use crate::division::{DivisionCode, Level};
use crate::error::DomainError;
use crate::ids::IdGen;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// A coded node as it stands in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingNode {
    pub id: Uuid,
    pub parent: Option<Uuid>,
    pub level: Level,
    pub code: DivisionCode,
    pub name: String,
}

/// A row of the division list being imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingNode {
    pub code: DivisionCode,
    pub name: String,
    pub parent_code: Option<DivisionCode>,
    pub level: Level,
}

/// A parent in a plan: a node that exists, or one the plan adds earlier (by its code).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "ref", rename_all = "snake_case")]
pub enum ParentRef {
    Existing(Uuid),
    New(DivisionCode),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum DivisionChange {
    /// A node to create; `parent` is `None` for a root.
    Added {
        code: DivisionCode,
        name: String,
        level: Level,
        parent: Option<ParentRef>,
    },
    Renamed {
        id: Uuid,
        from: String,
        to: String,
    },
    Recoded {
        id: Uuid,
        from: DivisionCode,
        to: DivisionCode,
    },
    /// `to_parent` is `None` when the node becomes a root of the scope.
    Moved {
        id: Uuid,
        from_parent: Option<Uuid>,
        to_parent: Option<ParentRef>,
    },
    /// Report: the nodes in `from` now form the node with code `into`. Those of them not matched
    /// to `into` are retired by their own `Retired` changes; a new `into` was `Added` before.
    Merged {
        from: Vec<Uuid>,
        into: DivisionCode,
    },
    /// Report: the node `from` was divided into the nodes with codes `into`; if it survives as one
    /// of them it is matched to that one, otherwise a `Retired` follows.
    Split {
        from: Uuid,
        into: Vec<DivisionCode>,
    },
    Retired {
        id: Uuid,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivisionPlan {
    pub changes: Vec<DivisionChange>,
    /// Incoming nodes matched to an existing node with nothing to change.
    pub unchanged: usize,
}

impl DivisionPlan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compute the plan that turns `existing` into `incoming`; see the module documentation.
pub fn diff(
    existing: &[ExistingNode],
    incoming: &[IncomingNode],
) -> Result<DivisionPlan, DomainError> {
    let mut d = Differ::new(existing, incoming)?;
    for &level in Level::ALL {
        d.match_level(level);
    }
    Ok(d.plan())
}

fn level_index(l: Level) -> usize {
    l as usize
}

struct Differ<'a> {
    ex: &'a [ExistingNode],
    inc: &'a [IncomingNode],
    inc_parent: Vec<Option<usize>>,
    inc_children: Vec<Vec<usize>>,
    /// Existing index of the parent; `None` for roots of the scope.
    ex_parent: Vec<Option<usize>>,
    ex_children: Vec<Vec<usize>>,
    /// Indices per level, sorted by code, so every choice below is deterministic.
    inc_by_level: Vec<Vec<usize>>,
    ex_by_level: Vec<Vec<usize>>,
    m_in: Vec<Option<usize>>,
    m_ex: Vec<Option<usize>>,
    /// Per incoming node: the old nodes whose children its children may be (its match, and the
    /// old nodes linked to it by step 4).
    feeders: Vec<Vec<usize>>,
    links_in: Vec<Vec<usize>>,
    links_ex: Vec<Vec<usize>>,
}

impl<'a> Differ<'a> {
    fn new(ex: &'a [ExistingNode], inc: &'a [IncomingNode]) -> Result<Self, DomainError> {
        let mut inc_by_code: HashMap<&DivisionCode, usize> = HashMap::new();
        for (i, n) in inc.iter().enumerate() {
            if inc_by_code.insert(&n.code, i).is_some() {
                return Err(DomainError::DivisionDuplicateCode {
                    code: n.code.clone(),
                });
            }
            if n.level != n.code.level() {
                return Err(DomainError::DivisionLevelMismatch {
                    code: n.code.clone(),
                });
            }
        }
        let mut inc_parent = vec![None; inc.len()];
        let mut inc_children = vec![Vec::new(); inc.len()];
        for (i, n) in inc.iter().enumerate() {
            let Some(pc) = &n.parent_code else { continue };
            let Some(&p) = inc_by_code.get(pc) else {
                return Err(DomainError::DivisionParentMissing {
                    code: n.code.clone(),
                });
            };
            if inc[p].level >= n.level {
                return Err(DomainError::DivisionLevelMismatch {
                    code: n.code.clone(),
                });
            }
            inc_parent[i] = Some(p);
            inc_children[p].push(i);
        }

        let mut ex_by_code: HashSet<&DivisionCode> = HashSet::new();
        let mut ex_by_id: HashMap<Uuid, usize> = HashMap::new();
        for (e, n) in ex.iter().enumerate() {
            if !ex_by_code.insert(&n.code) {
                return Err(DomainError::DivisionDuplicateCode {
                    code: n.code.clone(),
                });
            }
            if n.level != n.code.level() {
                return Err(DomainError::DivisionLevelMismatch {
                    code: n.code.clone(),
                });
            }
            if ex_by_id.insert(n.id, e).is_some() {
                return Err(DomainError::DivisionPlanInvalid {
                    reason: "an existing node id appears twice",
                });
            }
        }
        let ex_parent: Vec<Option<usize>> = ex
            .iter()
            .map(|n| n.parent.and_then(|p| ex_by_id.get(&p).copied()))
            .collect();
        let mut ex_children = vec![Vec::new(); ex.len()];
        for (e, p) in ex_parent.iter().enumerate() {
            if let Some(p) = p {
                ex_children[*p].push(e);
            }
        }

        let mut inc_by_level = vec![Vec::new(); Level::ALL.len()];
        for (i, n) in inc.iter().enumerate() {
            inc_by_level[level_index(n.level)].push(i);
        }
        let mut ex_by_level = vec![Vec::new(); Level::ALL.len()];
        for (e, n) in ex.iter().enumerate() {
            ex_by_level[level_index(n.level)].push(e);
        }
        for v in &mut inc_by_level {
            v.sort_by(|&a, &b| inc[a].code.cmp(&inc[b].code));
        }
        for v in &mut ex_by_level {
            v.sort_by(|&a, &b| ex[a].code.cmp(&ex[b].code));
        }

        // Step 1: by code.
        let mut m_in = vec![None; inc.len()];
        let mut m_ex = vec![None; ex.len()];
        let ex_code_index: HashMap<&DivisionCode, usize> =
            ex.iter().enumerate().map(|(e, n)| (&n.code, e)).collect();
        for (i, n) in inc.iter().enumerate() {
            if let Some(&e) = ex_code_index.get(&n.code) {
                m_in[i] = Some(e);
                m_ex[e] = Some(i);
            }
        }

        Ok(Differ {
            ex,
            inc,
            inc_parent,
            inc_children,
            ex_parent,
            ex_children,
            inc_by_level,
            ex_by_level,
            m_in,
            m_ex,
            feeders: vec![Vec::new(); inc.len()],
            links_in: vec![Vec::new(); inc.len()],
            links_ex: vec![Vec::new(); ex.len()],
        })
    }

    fn pair(&mut self, i: usize, e: usize) {
        self.m_in[i] = Some(e);
        self.m_ex[e] = Some(i);
    }

    fn match_level(&mut self, level: Level) {
        let li = level_index(level);
        let ins = self.inc_by_level[li].clone();
        self.match_by_name_under_parent(level, &ins);
        if matches!(level, Level::Street | Level::Community) {
            self.match_transfers(level, &ins);
        }
        self.link_by_children(level, &ins);
        for &i in &ins {
            let mut f: Vec<usize> = self.m_in[i].into_iter().collect();
            f.extend(self.links_in[i].iter().copied());
            f.sort_by(|&a, &b| self.ex[a].code.cmp(&self.ex[b].code));
            f.dedup();
            self.feeders[i] = f;
        }
    }

    /// Step 2.
    fn match_by_name_under_parent(&mut self, level: Level, ins: &[usize]) {
        let li = level_index(level);
        for &i in ins {
            if self.m_in[i].is_some() {
                continue;
            }
            let candidates: Vec<usize> = match self.inc_parent[i] {
                None => self.ex_by_level[li]
                    .iter()
                    .copied()
                    .filter(|&e| self.ex_parent[e].is_none())
                    .collect(),
                Some(p) => self.feeders[p]
                    .iter()
                    .flat_map(|&f| self.ex_children[f].iter().copied())
                    .collect(),
            };
            let name = &self.inc[i].name;
            let best = candidates
                .into_iter()
                .filter(|&e| {
                    self.m_ex[e].is_none() && self.ex[e].level == level && &self.ex[e].name == name
                })
                .min_by(|&a, &b| self.ex[a].code.cmp(&self.ex[b].code));
            if let Some(e) = best {
                self.pair(i, e);
            }
        }
    }

    /// Step 3.
    fn match_transfers(&mut self, level: Level, ins: &[usize]) {
        let li = level_index(level);
        let mut inc_groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
        for &i in ins {
            if self.m_in[i].is_none() {
                let n = &self.inc[i];
                inc_groups
                    .entry((n.name.as_str(), n.code.gb2260()))
                    .or_default()
                    .push(i);
            }
        }
        let mut ex_groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for &e in &self.ex_by_level[li] {
            if self.m_ex[e].is_none() {
                let n = &self.ex[e];
                ex_groups
                    .entry((n.name.as_str(), n.code.gb2260()))
                    .or_default()
                    .push(e);
            }
        }
        let mut pairs = Vec::new();
        for (key, is) in &inc_groups {
            if let (&[i], Some(&[e])) = (is.as_slice(), ex_groups.get(key).map(Vec::as_slice)) {
                pairs.push((i, e));
            }
        }
        for (i, e) in pairs {
            self.pair(i, e);
        }
    }

    /// Step 4.
    fn link_by_children(&mut self, level: Level, ins: &[usize]) {
        let li = level_index(level);
        // Old nodes of this level by the names of their children.
        let mut by_child_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for &e in &self.ex_by_level[li] {
            for &x in &self.ex_children[e] {
                by_child_name
                    .entry(self.ex[x].name.as_str())
                    .or_default()
                    .push(e);
            }
        }
        let mut adj_in: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut adj_ex: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &n in ins {
            let children = &self.inc_children[n];
            if children.is_empty() {
                continue;
            }
            let mut hits: BTreeMap<usize, usize> = BTreeMap::new();
            for &c in children {
                let mut hit: Vec<usize> = by_child_name
                    .get(self.inc[c].name.as_str())
                    .cloned()
                    .unwrap_or_default();
                if let Some(pe) = self.m_in[c].and_then(|x| self.ex_parent[x]) {
                    if self.ex[pe].level == level {
                        hit.push(pe);
                    }
                }
                hit.sort_unstable();
                hit.dedup();
                for e in hit {
                    *hits.entry(e).or_default() += 1;
                }
            }
            for (e, h) in hits {
                if self.m_in[n] == Some(e) || (self.m_in[n].is_some() && self.m_ex[e].is_some()) {
                    continue;
                }
                let smaller = children.len().min(self.ex_children[e].len());
                if h >= 1 && 2 * h >= smaller {
                    adj_in.entry(n).or_default().push(e);
                    adj_ex.entry(e).or_default().push(n);
                }
            }
        }

        let mut seen_in: HashSet<usize> = HashSet::new();
        let starts: Vec<usize> = adj_in.keys().copied().collect();
        for start in starts {
            if seen_in.contains(&start) {
                continue;
            }
            // Breadth-first over the bipartite graph of links.
            let (mut ns, mut es) = (vec![start], Vec::new());
            seen_in.insert(start);
            let mut seen_ex: HashSet<usize> = HashSet::new();
            let mut k = 0;
            while k < ns.len() {
                for &e in adj_in.get(&ns[k]).map(Vec::as_slice).unwrap_or(&[]) {
                    if seen_ex.insert(e) {
                        es.push(e);
                        for &n in adj_ex.get(&e).map(Vec::as_slice).unwrap_or(&[]) {
                            if seen_in.insert(n) {
                                ns.push(n);
                            }
                        }
                    }
                }
                k += 1;
            }
            if let (&[n], &[e]) = (ns.as_slice(), es.as_slice()) {
                if self.m_in[n].is_none() && self.m_ex[e].is_none() {
                    self.pair(n, e);
                    continue;
                }
            }
            for &n in &ns {
                self.links_in[n] = adj_in.get(&n).cloned().unwrap_or_default();
            }
            for &e in &es {
                self.links_ex[e] = adj_ex.get(&e).cloned().unwrap_or_default();
            }
        }
    }

    fn parent_ref(&self, i: usize) -> Option<ParentRef> {
        let p = self.inc_parent[i]?;
        Some(match self.m_in[p] {
            Some(e) => ParentRef::Existing(self.ex[e].id),
            None => ParentRef::New(self.inc[p].code.clone()),
        })
    }

    fn plan(&self) -> DivisionPlan {
        let mut changes = Vec::new();
        let mut unchanged = 0;
        for &level in Level::ALL {
            let li = level_index(level);
            let ins = &self.inc_by_level[li];
            for &i in ins {
                if self.m_in[i].is_none() {
                    let n = &self.inc[i];
                    changes.push(DivisionChange::Added {
                        code: n.code.clone(),
                        name: n.name.clone(),
                        level: n.level,
                        parent: self.parent_ref(i),
                    });
                }
            }
            for &i in ins {
                let Some(e) = self.m_in[i] else { continue };
                let (n, x) = (&self.inc[i], &self.ex[e]);
                let before = changes.len();
                if n.code != x.code {
                    changes.push(DivisionChange::Recoded {
                        id: x.id,
                        from: x.code.clone(),
                        to: n.code.clone(),
                    });
                }
                if n.name != x.name {
                    changes.push(DivisionChange::Renamed {
                        id: x.id,
                        from: x.name.clone(),
                        to: n.name.clone(),
                    });
                }
                let target = self.parent_ref(i);
                let moved = match &target {
                    None => self.ex_parent[e].is_some(),
                    Some(ParentRef::Existing(p)) => x.parent != Some(*p),
                    Some(ParentRef::New(_)) => true,
                };
                if moved {
                    changes.push(DivisionChange::Moved {
                        id: x.id,
                        from_parent: x.parent,
                        to_parent: target,
                    });
                }
                if changes.len() == before {
                    unchanged += 1;
                }
            }
            for &i in ins {
                if self.links_in[i].is_empty() {
                    continue;
                }
                let from = &self.feeders[i];
                if from.len() >= 2 {
                    changes.push(DivisionChange::Merged {
                        from: from.iter().map(|&e| self.ex[e].id).collect(),
                        into: self.inc[i].code.clone(),
                    });
                }
            }
            for &e in &self.ex_by_level[li] {
                if self.links_ex[e].is_empty() {
                    continue;
                }
                let mut into: Vec<DivisionCode> = self.m_ex[e]
                    .into_iter()
                    .chain(self.links_ex[e].iter().copied())
                    .map(|i| self.inc[i].code.clone())
                    .collect();
                into.sort();
                into.dedup();
                if into.len() >= 2 {
                    changes.push(DivisionChange::Split {
                        from: self.ex[e].id,
                        into,
                    });
                }
            }
        }
        for &level in Level::ALL.iter().rev() {
            for &e in &self.ex_by_level[level_index(level)] {
                if self.m_ex[e].is_none() {
                    changes.push(DivisionChange::Retired { id: self.ex[e].id });
                }
            }
        }
        DivisionPlan { changes, unchanged }
    }
}

/// Execute a plan on a list of nodes, one change at a time in order, checking what a store would
/// enforce: parents exist when referred to, no two active nodes share a code, no node is retired
/// while it still has children. The reference for store implementations, and how the tests prove
/// plans are executable. `ids` names the added nodes; the result lists the surviving nodes in their
/// original order, then the added ones.
pub fn apply(
    existing: &[ExistingNode],
    plan: &DivisionPlan,
    ids: &dyn IdGen,
) -> Result<Vec<ExistingNode>, DomainError> {
    let invalid = |reason| DomainError::DivisionPlanInvalid { reason };
    let mut order: Vec<Uuid> = existing.iter().map(|n| n.id).collect();
    let mut nodes: HashMap<Uuid, ExistingNode> =
        existing.iter().map(|n| (n.id, n.clone())).collect();
    let mut codes: HashMap<DivisionCode, Uuid> =
        existing.iter().map(|n| (n.code.clone(), n.id)).collect();
    let mut added: HashMap<DivisionCode, Uuid> = HashMap::new();

    let resolve = |nodes: &HashMap<Uuid, ExistingNode>,
                   added: &HashMap<DivisionCode, Uuid>,
                   r: &Option<ParentRef>|
     -> Result<Option<Uuid>, DomainError> {
        match r {
            None => Ok(None),
            Some(ParentRef::Existing(id)) if nodes.contains_key(id) => Ok(Some(*id)),
            Some(ParentRef::Existing(_)) => Err(invalid("parent is not an active node")),
            Some(ParentRef::New(code)) => added
                .get(code)
                .copied()
                .map(Some)
                .ok_or(invalid("parent is not added before its child")),
        }
    };

    for change in &plan.changes {
        match change {
            DivisionChange::Added {
                code,
                name,
                level,
                parent,
            } => {
                let parent = resolve(&nodes, &added, parent)?;
                if codes.contains_key(code) {
                    return Err(invalid("added code is held by an active node"));
                }
                let id = ids.new_id();
                if nodes.contains_key(&id) {
                    return Err(invalid("the id generator returned an id in use"));
                }
                codes.insert(code.clone(), id);
                added.insert(code.clone(), id);
                order.push(id);
                nodes.insert(
                    id,
                    ExistingNode {
                        id,
                        parent,
                        level: *level,
                        code: code.clone(),
                        name: name.clone(),
                    },
                );
            }
            DivisionChange::Renamed { id, to, .. } => {
                nodes
                    .get_mut(id)
                    .ok_or(invalid("renamed node is not active"))?
                    .name = to.clone();
            }
            DivisionChange::Recoded { id, to, .. } => {
                if codes.contains_key(to) {
                    return Err(invalid("new code is held by an active node"));
                }
                let node = nodes
                    .get_mut(id)
                    .ok_or(invalid("recoded node is not active"))?;
                codes.remove(&node.code);
                codes.insert(to.clone(), *id);
                node.code = to.clone();
            }
            DivisionChange::Moved { id, to_parent, .. } => {
                let parent = resolve(&nodes, &added, to_parent)?;
                nodes
                    .get_mut(id)
                    .ok_or(invalid("moved node is not active"))?
                    .parent = parent;
            }
            DivisionChange::Retired { id } => {
                if nodes.values().any(|n| n.parent == Some(*id)) {
                    return Err(invalid("retired node still has children"));
                }
                let node = nodes
                    .remove(id)
                    .ok_or(invalid("retired node is not active"))?;
                codes.remove(&node.code);
            }
            DivisionChange::Merged { .. } | DivisionChange::Split { .. } => {}
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|id| nodes.remove(&id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::SeededIdGen;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::sync::Arc;
    use DivisionChange as C;

    fn code(s: &str) -> DivisionCode {
        DivisionCode::parse(s).expect("valid code")
    }

    /// Each use gets its own seed: two generators with one seed would hand out the same ids.
    fn ids() -> SeededIdGen {
        static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let seed = SEED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        SeededIdGen::new(Arc::new(ManualClock::new(t)), seed)
    }

    /// An incoming list from (code, name) rows; parents by code.
    fn incoming(rows: &[(&str, &str)]) -> Vec<IncomingNode> {
        let codes: HashSet<DivisionCode> = rows.iter().map(|(c, _)| code(c)).collect();
        rows.iter()
            .map(|(c, name)| {
                let c = code(c);
                let parent_code = c.parent().filter(|p| codes.contains(p));
                IncomingNode {
                    level: c.level(),
                    code: c,
                    name: name.to_string(),
                    parent_code,
                }
            })
            .collect()
    }

    /// The tree as it stands after importing `rows` onto nothing.
    fn existing(rows: &[(&str, &str)]) -> Vec<ExistingNode> {
        let plan = diff(&[], &incoming(rows)).expect("valid");
        apply(&[], &plan, &ids()).expect("applies")
    }

    fn id_of(nodes: &[ExistingNode], c: &str) -> Uuid {
        let c = code(c);
        nodes
            .iter()
            .find(|n| n.code == c)
            .map(|n| n.id)
            .expect("present")
    }

    fn check_converges(old: &[ExistingNode], new: &[IncomingNode], plan: &DivisionPlan) {
        let applied = apply(old, plan, &ids()).expect("plan applies");
        let again = diff(&applied, new).expect("valid");
        assert!(again.is_empty(), "{:?}", again.changes);
        assert_eq!(again.unchanged, new.len());
    }

    const BASE: &[(&str, &str)] = &[
        ("5101", "成都市"),
        ("510104", "锦江区"),
        ("510104001", "督院街街道"),
        ("510104001001", "东御街社区"),
        ("510104001002", "梓潼桥社区"),
        ("510104002", "盐市口街道"),
        ("510104002001", "锦官驿社区"),
        ("510104002002", "红墙巷社区"),
        ("510104002003", "水井坊社区"),
        ("510105", "青羊区"),
        ("510105001", "少城街道"),
        ("510105001001", "宽巷子社区"),
    ];

    #[test]
    fn import_onto_nothing_adds_everything_parents_first() {
        let new = incoming(BASE);
        let plan = diff(&[], &new).expect("valid");
        assert_eq!(plan.unchanged, 0);
        assert_eq!(plan.changes.len(), BASE.len());
        let mut added: HashSet<DivisionCode> = HashSet::new();
        for c in &plan.changes {
            let C::Added { code, parent, .. } = c else {
                panic!("{c:?}")
            };
            match parent {
                None => assert_eq!(code.level(), Level::City),
                Some(ParentRef::New(p)) => assert!(added.contains(p), "{p} after {code}"),
                Some(ParentRef::Existing(_)) => panic!("nothing exists"),
            }
            added.insert(code.clone());
        }
        check_converges(&[], &new, &plan);
    }

    #[test]
    fn same_data_again_changes_nothing() {
        let old = existing(BASE);
        let plan = diff(&old, &incoming(BASE)).expect("valid");
        assert!(plan.is_empty(), "{:?}", plan.changes);
        assert_eq!(plan.unchanged, BASE.len());
    }

    #[test]
    fn rename() {
        let old = existing(BASE);
        let mut rows = BASE.to_vec();
        rows[3].1 = "东御河沿社区";
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        assert_eq!(
            plan.changes,
            vec![C::Renamed {
                id: id_of(&old, "510104001001"),
                from: "东御街社区".into(),
                to: "东御河沿社区".into()
            }]
        );
        assert_eq!(plan.unchanged, BASE.len() - 1);
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn recode_keeps_ids_down_the_subtree() {
        let old = existing(BASE);
        // 督院街街道 becomes 010; its communities follow.
        let rows: Vec<(&str, &str)> = BASE
            .iter()
            .map(|&(c, n)| match c {
                "510104001" => ("510104010", n),
                "510104001001" => ("510104010001", n),
                "510104001002" => ("510104010002", n),
                _ => (c, n),
            })
            .collect();
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        assert_eq!(
            plan.changes,
            vec![
                C::Recoded {
                    id: id_of(&old, "510104001"),
                    from: code("510104001"),
                    to: code("510104010")
                },
                C::Recoded {
                    id: id_of(&old, "510104001001"),
                    from: code("510104001001"),
                    to: code("510104010001")
                },
                C::Recoded {
                    id: id_of(&old, "510104001002"),
                    from: code("510104001002"),
                    to: code("510104010002")
                },
            ]
        );
        assert_eq!(plan.unchanged, BASE.len() - 3);
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn merge_into_a_new_street_keeps_the_communities() {
        let old = existing(BASE);
        let mut rows: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(c, _)| !c.starts_with("510104"))
            .collect();
        rows.extend([
            ("510104", "锦江区"),
            ("510104020", "春熙路街道"),
            ("510104020001", "东御街社区"),
            ("510104020002", "梓潼桥社区"),
            ("510104020003", "锦官驿社区"),
            ("510104020004", "红墙巷社区"),
            ("510104020005", "水井坊社区"),
        ]);
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        let a = id_of(&old, "510104001");
        let b = id_of(&old, "510104002");
        let new_street = ParentRef::New(code("510104020"));
        assert_eq!(
            plan.changes[0],
            C::Added {
                code: code("510104020"),
                name: "春熙路街道".into(),
                level: Level::Street,
                parent: Some(ParentRef::Existing(id_of(&old, "510104")))
            }
        );
        assert_eq!(
            plan.changes[1],
            C::Merged {
                from: vec![a, b],
                into: code("510104020")
            }
        );
        for (from, to) in [
            ("510104001001", "510104020001"),
            ("510104001002", "510104020002"),
            ("510104002001", "510104020003"),
            ("510104002002", "510104020004"),
            ("510104002003", "510104020005"),
        ] {
            let id = id_of(&old, from);
            assert!(plan.changes.contains(&C::Recoded {
                id,
                from: code(from),
                to: code(to)
            }));
            assert!(plan.changes.contains(&C::Moved {
                id,
                from_parent: Some(if from.starts_with("510104001") { a } else { b }),
                to_parent: Some(new_street.clone())
            }));
        }
        let n = plan.changes.len();
        assert_eq!(
            plan.changes[n - 2..],
            [C::Retired { id: a }, C::Retired { id: b }]
        );
        assert_eq!(n, 2 + 5 * 2 + 2);
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn absorbed_street_reports_a_merge_into_the_survivor() {
        // 撤销盐市口街道，并入督院街街道: the survivor keeps its code, the absorbed communities get
        // new codes under it.
        let old = existing(BASE);
        let rows: Vec<(&str, &str)> = BASE
            .iter()
            .map(|&(c, n)| match c {
                "510104002" => ("", ""),
                "510104002001" => ("510104001003", n),
                "510104002002" => ("510104001004", n),
                "510104002003" => ("510104001005", n),
                _ => (c, n),
            })
            .filter(|(c, _)| !c.is_empty())
            .collect();
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        let a = id_of(&old, "510104001");
        let b = id_of(&old, "510104002");
        assert!(plan.changes.contains(&C::Merged {
            from: vec![a, b],
            into: code("510104001")
        }));
        assert!(plan.changes.contains(&C::Moved {
            id: id_of(&old, "510104002003"),
            from_parent: Some(b),
            to_parent: Some(ParentRef::Existing(a))
        }));
        assert_eq!(plan.changes.last(), Some(&C::Retired { id: b }));
        assert!(!plan.changes.iter().any(|c| matches!(c, C::Added { .. })));
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn split_into_two_new_streets() {
        let old = existing(BASE);
        let mut rows: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(c, _)| !c.starts_with("510104002"))
            .collect();
        rows.extend([
            ("510104031", "锦官驿街道"),
            ("510104031001", "锦官驿社区"),
            ("510104031002", "红墙巷社区"),
            ("510104032", "水井坊街道"),
            ("510104032001", "水井坊社区"),
        ]);
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        let b = id_of(&old, "510104002");
        assert!(plan.changes.contains(&C::Split {
            from: b,
            into: vec![code("510104031"), code("510104032")]
        }));
        let added: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| matches!(c, C::Added { .. }))
            .collect();
        assert_eq!(added.len(), 2);
        assert!(plan.changes.contains(&C::Moved {
            id: id_of(&old, "510104002003"),
            from_parent: Some(b),
            to_parent: Some(ParentRef::New(code("510104032")))
        }));
        assert_eq!(plan.changes.last(), Some(&C::Retired { id: b }));
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn county_becomes_district_recoded_and_renamed() {
        // 双流县 (510122) became 双流区 (510116): every code below changes, every id stays.
        let rows_old = [
            ("5101", "成都市"),
            ("510122", "双流县"),
            ("510122001", "东升街道"),
            ("510122001001", "棠湖社区"),
            ("510122001002", "三里坝社区"),
        ];
        let rows_new = [
            ("5101", "成都市"),
            ("510116", "双流区"),
            ("510116001", "东升街道"),
            ("510116001001", "棠湖社区"),
            ("510116001002", "三里坝社区"),
        ];
        let old = existing(&rows_old);
        let new = incoming(&rows_new);
        let plan = diff(&old, &new).expect("valid");
        let county = id_of(&old, "510122");
        assert_eq!(
            plan.changes[..2],
            [
                C::Recoded {
                    id: county,
                    from: code("510122"),
                    to: code("510116")
                },
                C::Renamed {
                    id: county,
                    from: "双流县".into(),
                    to: "双流区".into()
                }
            ]
        );
        assert_eq!(plan.changes.len(), 5);
        assert!(plan
            .changes
            .iter()
            .all(|c| matches!(c, C::Recoded { .. } | C::Renamed { .. })));
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn community_transferred_between_streets() {
        let old = existing(BASE);
        let rows: Vec<(&str, &str)> = BASE
            .iter()
            .map(|&(c, n)| match c {
                "510104002003" => ("510104001003", n),
                _ => (c, n),
            })
            .collect();
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        let id = id_of(&old, "510104002003");
        assert_eq!(
            plan.changes,
            vec![
                C::Recoded {
                    id,
                    from: code("510104002003"),
                    to: code("510104001003")
                },
                C::Moved {
                    id,
                    from_parent: Some(id_of(&old, "510104002")),
                    to_parent: Some(ParentRef::Existing(id_of(&old, "510104001")))
                },
            ]
        );
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn added_and_retired() {
        let old = existing(BASE);
        let mut rows: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(c, _)| *c != "510105001001")
            .collect();
        rows.push(("510105001002", "泡桐树社区"));
        let new = incoming(&rows);
        let plan = diff(&old, &new).expect("valid");
        assert_eq!(
            plan.changes,
            vec![
                C::Added {
                    code: code("510105001002"),
                    name: "泡桐树社区".into(),
                    level: Level::Community,
                    parent: Some(ParentRef::Existing(id_of(&old, "510105001")))
                },
                C::Retired {
                    id: id_of(&old, "510105001001")
                },
            ]
        );
        check_converges(&old, &new, &plan);
    }

    #[test]
    fn invalid_input_is_refused() {
        let mut dup = incoming(BASE);
        dup.push(dup[3].clone());
        assert_eq!(
            diff(&[], &dup).err().map(|e| e.code()),
            Some("division.duplicate_code")
        );
        let orphan = incoming(&[("510104001", "督院街街道")]);
        let mut orphan = orphan;
        orphan[0].parent_code = Some(code("510104"));
        assert_eq!(
            diff(&[], &orphan).err().map(|e| e.code()),
            Some("division.parent_missing")
        );
        let mut wrong = incoming(BASE);
        wrong[1].level = Level::Street;
        assert_eq!(
            diff(&[], &wrong).err().map(|e| e.code()),
            Some("division.level_mismatch")
        );
    }

    #[test]
    fn plan_serialises_for_preview() {
        let old = existing(BASE);
        let mut rows = BASE.to_vec();
        rows[3].1 = "东御河沿社区";
        let plan = diff(&old, &incoming(&rows)).expect("valid");
        let json = serde_json::to_value(&plan).expect("ser");
        assert_eq!(json["changes"][0]["change"], "renamed");
        let added = C::Added {
            code: code("5101"),
            name: "成都市".into(),
            level: Level::City,
            parent: Some(ParentRef::New(code("510104"))),
        };
        let json = serde_json::to_value(&added).expect("ser");
        assert_eq!(json["parent"]["kind"], "new");
        assert_eq!(json["parent"]["ref"], "510104000000");
    }

    const DISTRICTS: [&str; 4] = ["锦江区", "青羊区", "金牛区", "武侯区"];
    const STREETS: [&str; 5] = [
        "春熙路街道",
        "督院街街道",
        "盐市口街道",
        "书院街街道",
        "合江亭街道",
    ];
    const COMMUNITIES: [&str; 6] = [
        "东御街社区",
        "梓潼桥社区",
        "锦官驿社区",
        "红墙巷社区",
        "水井坊社区",
        "新村社区",
    ];

    /// Random trees on a small code and name space, so two of them overlap in every way at once:
    /// shared codes, shared names under new codes, namesakes, moves.
    fn rows() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            (1usize..=4, 1usize..=4, 1usize..=4, 0usize..5, 0usize..6),
            0..24,
        )
        .prop_map(|items| {
            let mut m: BTreeMap<String, String> = BTreeMap::new();
            m.insert("5101".into(), "成都市".into());
            for (d, s, c, sn, cn) in items {
                let dc = format!("5101{d:02}");
                m.entry(dc.clone())
                    .or_insert_with(|| DISTRICTS[d - 1].into());
                let sc = format!("{dc}{s:03}");
                m.entry(sc.clone()).or_insert_with(|| STREETS[sn].into());
                m.insert(format!("{sc}{c:03}"), COMMUNITIES[cn].into());
            }
            m.into_iter().collect()
        })
    }

    fn as_refs(rows: &[(String, String)]) -> Vec<(&str, &str)> {
        rows.iter().map(|(c, n)| (c.as_str(), n.as_str())).collect()
    }

    proptest! {
        #[test]
        fn applying_the_plan_converges(old_rows in rows(), new_rows in rows()) {
            let old = existing(&as_refs(&old_rows));
            let new = incoming(&as_refs(&new_rows));
            let plan = diff(&old, &new).expect("valid");
            let applied = apply(&old, &plan, &ids());
            prop_assert!(applied.is_ok(), "{:?}", applied.err());
            let applied = applied.expect("checked");
            let again = diff(&applied, &new).expect("valid");
            prop_assert!(again.is_empty(), "{:?}", again.changes);
            prop_assert_eq!(again.unchanged, new.len());

            // Every existing node is either kept (on its id) or retired, never both.
            let retired: HashSet<Uuid> = plan.changes.iter().filter_map(|c| match c {
                C::Retired { id } => Some(*id), _ => None }).collect();
            let kept: HashSet<Uuid> = applied.iter().map(|n| n.id).collect();
            for n in &old {
                prop_assert!(retired.contains(&n.id) != kept.contains(&n.id));
            }
            let added = plan.changes.iter().filter(|c| matches!(c, C::Added { .. })).count();
            prop_assert_eq!(added + old.len() - retired.len(), new.len());
        }

        #[test]
        fn diff_against_itself_is_empty(rows in rows()) {
            let rows = as_refs(&rows);
            let plan = diff(&existing(&rows), &incoming(&rows)).expect("valid");
            prop_assert!(plan.is_empty());
            prop_assert_eq!(plan.unchanged, rows.len());
        }
    }
}
