//! Emergency reserves (issue 7) (owner: reserves & dispatch): stock movement kinds, reserve norms
//! per 1,000 residents, and the dispatch problem (gaps and depot stocks → transfers) solved as a
//! minimum-cost maximum flow.
//!
//! **The solver.** No well-kept crate fits: `pathfinding` has max-flow (Edmonds–Karp, Dinic) but
//! no costs; `petgraph` has neither min-cost flow nor LP; the LP crates (`good_lp`, `minilp`) solve
//! in floating point and would need rounding back to whole units, which loses the exactness the
//! brute-force tests check. The problem is small (a street: tens of depots × tens of communities
//! per item), so [`solve`] is a plain successive-shortest-path min-cost flow over integers
//! (Bellman–Ford on the residual graph, which has negative reverse edges): augmenting along
//! cheapest paths keeps each intermediate flow the cheapest of its value, so at maximum flow the
//! cost is the least among all maximum flows. Costs are whole metres, so ties are exact.

use serde::{Deserialize, Serialize};

string_enum! {
    /// What a stock movement is. The kind gives the sign of the quantity: receive and transfer_in
    /// add, issue, transfer_out and write_off take away; an adjust (a stock count's correction)
    /// goes either way.
    pub enum MovementKind: "kind" {
        Receive = "receive", "入库",
        Issue = "issue", "出库",
        TransferOut = "transfer_out", "调出",
        TransferIn = "transfer_in", "调入",
        Adjust = "adjust", "盘点调整",
        WriteOff = "write_off", "报废核销",
    }
}

impl MovementKind {
    /// The signed quantity of a movement of `quantity` units (positive for every kind but
    /// adjust, whose quantity is already signed).
    pub fn signed(self, quantity: i64) -> i64 {
        match self {
            MovementKind::Receive | MovementKind::TransferIn | MovementKind::Adjust => quantity,
            MovementKind::Issue | MovementKind::TransferOut | MovementKind::WriteOff => -quantity,
        }
    }

    /// Whether the quantity given for this kind is acceptable: > 0, or != 0 for adjust.
    pub fn quantity_ok(self, quantity: i64) -> bool {
        match self {
            MovementKind::Adjust => quantity != 0,
            _ => quantity > 0,
        }
    }
}

string_enum! {
    /// What a movement refers to.
    pub enum ReferenceKind: "reference_kind" {
        Order = "order", "订单",
        Campaign = "campaign", "发放活动",
        Dispatch = "dispatch", "调度方案",
        Transfer = "transfer", "调拨",
    }
}

/// Units used by the catalogue (a community's own items may use others).
pub const UNITS: &[&str] = &[
    "只", "个", "件", "箱", "瓶", "顶", "床", "副", "台", "节", "根", "张", "具", "条", "袋", "套",
];

/// Categories of items: (code, zh-CN, English).
pub const CATEGORIES: &[(&str, &str, &str)] = &[
    ("food", "食品饮水", "Food and water"),
    ("protection", "防护用品", "Protection"),
    ("medical", "医疗防疫", "Medical"),
    ("shelter", "安置生活", "Shelter"),
    ("tools", "工具照明", "Tools and light"),
    ("flood", "防汛", "Flood"),
    ("fire", "消防", "Fire"),
    ("other", "其他", "Other"),
];

/// What a community should hold of an item: `residents × per_thousand / 1000`, rounded up (a
/// norm of 10 tents per 1,000 asks 1 tent of a community of 1).
pub fn norm_need(residents: i64, per_thousand: i64) -> i64 {
    if residents <= 0 || per_thousand <= 0 {
        return 0;
    }
    residents.saturating_mul(per_thousand).saturating_add(999) / 1000
}

/// The dispatch problem of one item: sources (depots with a surplus), sinks (communities with a
/// gap) and the cost of moving one unit from a source to a sink (`None`: not allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Units each source can give.
    pub supply: Vec<i64>,
    /// Units each sink needs.
    pub need: Vec<i64>,
    /// `cost[source][sink]`: cost of one unit (whole metres), or `None`.
    pub cost: Vec<Vec<Option<i64>>>,
}

/// One transfer of a solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub source: usize,
    pub sink: usize,
    pub quantity: i64,
}

/// A solution: the transfers, the need they cover and their total cost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Solution {
    pub flows: Vec<Flow>,
    pub covered: i64,
    pub cost: i64,
}

struct Edge {
    to: usize,
    cap: i64,
    cost: i64,
}

/// Cover the most need at the least cost: a minimum-cost maximum flow (see the module doc).
/// Negative supplies, needs and costs count as 0.
pub fn solve(p: &Problem) -> Solution {
    let ns = p.supply.len();
    let nk = p.need.len();
    let s = ns + nk;
    let t = s + 1;
    let n = t + 1;
    let mut edges: Vec<Edge> = Vec::new();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut add = |edges: &mut Vec<Edge>, a: usize, b: usize, cap: i64, cost: i64| {
        adj[a].push(edges.len());
        edges.push(Edge { to: b, cap, cost });
        adj[b].push(edges.len());
        edges.push(Edge {
            to: a,
            cap: 0,
            cost: -cost,
        });
    };
    for (i, &q) in p.supply.iter().enumerate() {
        add(&mut edges, s, i, q.max(0), 0);
    }
    for (j, &q) in p.need.iter().enumerate() {
        add(&mut edges, ns + j, t, q.max(0), 0);
    }
    let mut pair_edges = Vec::new();
    for i in 0..ns {
        for j in 0..nk {
            if let Some(c) = p.cost.get(i).and_then(|r| r.get(j)).copied().flatten() {
                let cap = p.supply[i].max(0).min(p.need[j].max(0));
                if cap > 0 {
                    pair_edges.push((i, j, edges.len()));
                    add(&mut edges, i, ns + j, cap, c.max(0));
                }
            }
        }
    }
    let mut covered = 0i64;
    let mut cost = 0i64;
    loop {
        // Bellman–Ford from s over edges with capacity left.
        let mut dist = vec![i64::MAX; n];
        let mut via = vec![usize::MAX; n];
        dist[s] = 0;
        for _ in 0..n {
            let mut changed = false;
            for u in 0..n {
                if dist[u] == i64::MAX {
                    continue;
                }
                for &e in &adj[u] {
                    let ed = &edges[e];
                    if ed.cap > 0 && dist[u] + ed.cost < dist[ed.to] {
                        dist[ed.to] = dist[u] + ed.cost;
                        via[ed.to] = e;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        if dist[t] == i64::MAX {
            break;
        }
        let mut push = i64::MAX;
        let mut v = t;
        while v != s {
            let e = via[v];
            push = push.min(edges[e].cap);
            v = edges[e ^ 1].to;
        }
        let mut v = t;
        while v != s {
            let e = via[v];
            edges[e].cap -= push;
            edges[e ^ 1].cap += push;
            v = edges[e ^ 1].to;
        }
        covered += push;
        cost += push * dist[t];
    }
    let flows = pair_edges
        .into_iter()
        .filter_map(|(i, j, e)| {
            let q = edges[e ^ 1].cap;
            (q > 0).then_some(Flow {
                source: i,
                sink: j,
                quantity: q,
            })
        })
        .collect();
    Solution {
        flows,
        covered,
        cost,
    }
}

/// Metres between two points as a whole number (the solver's unit of cost).
pub fn cost_metres(km: f64) -> i64 {
    (km * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kinds_round_trip_and_signs() {
        crate::string_enum::check_round_trip(MovementKind::ALL);
        crate::string_enum::check_round_trip(ReferenceKind::ALL);
        assert_eq!(MovementKind::Issue.signed(3), -3);
        assert_eq!(MovementKind::Receive.signed(3), 3);
        assert_eq!(MovementKind::Adjust.signed(-2), -2);
        assert!(!MovementKind::Issue.quantity_ok(0));
        assert!(!MovementKind::Issue.quantity_ok(-1));
        assert!(MovementKind::Adjust.quantity_ok(-1));
        assert!(!MovementKind::Adjust.quantity_ok(0));
    }

    #[test]
    fn norm_need_rounds_up() {
        assert_eq!(norm_need(1, 10), 1);
        assert_eq!(norm_need(1000, 10), 10);
        assert_eq!(norm_need(1001, 10), 11);
        assert_eq!(norm_need(0, 10), 0);
        assert_eq!(norm_need(2500, 0), 0);
    }

    #[test]
    fn greedy_would_be_wrong() {
        // Source 0 is nearest to both sinks; greedy sends it to sink 0 and leaves sink 1 uncovered
        // because source 1 cannot reach sink 1. The flow sends source 0 to sink 1.
        let p = Problem {
            supply: vec![1, 1],
            need: vec![1, 1],
            cost: vec![vec![Some(1), Some(2)], vec![Some(5), None]],
        };
        let s = solve(&p);
        assert_eq!(s.covered, 2);
        assert_eq!(s.cost, 7);
    }

    /// Every integer allocation within supplies and needs: (covered, least cost at that cover).
    fn brute(p: &Problem) -> (i64, i64) {
        let ns = p.supply.len();
        let nk = p.need.len();
        let cells: Vec<(usize, usize, i64)> = (0..ns)
            .flat_map(|i| (0..nk).map(move |j| (i, j)))
            .filter_map(|(i, j)| p.cost[i][j].map(|c| (i, j, c)))
            .collect();
        let mut best = (0i64, 0i64);
        fn go(
            k: usize,
            cells: &[(usize, usize, i64)],
            sup: &mut Vec<i64>,
            need: &mut Vec<i64>,
            covered: i64,
            cost: i64,
            best: &mut (i64, i64),
        ) {
            if k == cells.len() {
                if covered > best.0 || (covered == best.0 && cost < best.1) {
                    *best = (covered, cost);
                }
                return;
            }
            let (i, j, c) = cells[k];
            let max = sup[i].min(need[j]);
            for q in 0..=max {
                sup[i] -= q;
                need[j] -= q;
                go(k + 1, cells, sup, need, covered + q, cost + q * c, best);
                sup[i] += q;
                need[j] += q;
            }
        }
        go(
            0,
            &cells,
            &mut p.supply.clone(),
            &mut p.need.clone(),
            0,
            0,
            &mut best,
        );
        best
    }

    fn problems() -> impl Strategy<Value = Problem> {
        (1usize..=3, 1usize..=3).prop_flat_map(|(ns, nk)| {
            (
                proptest::collection::vec(0i64..=3, ns),
                proptest::collection::vec(0i64..=3, nk),
                proptest::collection::vec(
                    proptest::collection::vec(proptest::option::weighted(0.85, 0i64..=20), nk),
                    ns,
                ),
            )
                .prop_map(|(supply, need, cost)| Problem { supply, need, cost })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// On small cases the solver's cover is the largest any allocation reaches, and its cost
        /// the least among allocations reaching it; its flows are feasible and add up.
        #[test]
        fn optimal_against_brute_force(p in problems()) {
            let s = solve(&p);
            let (covered, cost) = brute(&p);
            prop_assert_eq!(s.covered, covered);
            prop_assert_eq!(s.cost, cost);
            let mut out = vec![0i64; p.supply.len()];
            let mut inn = vec![0i64; p.need.len()];
            let mut c = 0;
            for f in &s.flows {
                prop_assert!(f.quantity > 0);
                let unit = p.cost[f.source][f.sink];
                prop_assert!(unit.is_some());
                c += f.quantity * unit.unwrap_or(0);
                out[f.source] += f.quantity;
                inn[f.sink] += f.quantity;
            }
            for (i, o) in out.iter().enumerate() { prop_assert!(*o <= p.supply[i]); }
            for (j, x) in inn.iter().enumerate() { prop_assert!(*x <= p.need[j]); }
            prop_assert_eq!(inn.iter().sum::<i64>(), s.covered);
            prop_assert_eq!(c, s.cost);
        }
    }
}
