//! Supervision (红黄牌, owner: supervision): every community scored on its hazard ledger and its
//! inspections, per Asia/Shanghai quarter; thresholds give a yellow or a red card, and a card
//! names its reasons.
//!
//! # The figures, per community and quarter
//!
//! A quarter runs from 00:00 Asia/Shanghai on its first day to 00:00 on the first day of the next.
//! Its figures are taken **as of** the quarter's end, or as of now for the running quarter (a
//! quarter that has not begun cannot be scored). `hazards.node_id` is the community.
//!
//! - **Hazards due** (`hazards_due`): hazards whose fix deadline (`fix_due_at`) falls in the
//!   quarter and that are settled or due by the as-of time: the deadline has passed, or the hazard
//!   was closed by then. (For an ended quarter that is every hazard due in it; in the running
//!   quarter a hazard due next week that is still open does not count yet.)
//! - **Closed on time** (`closed_on_time`): of those, the ones closed by the as-of time with
//!   `closed_on_time` set by the ledger (fixed by the deadline and, for a major hazard, its plan
//!   started in time). The **on-time share** is closed on time / due, and there is none when
//!   nothing was due.
//! - **Overdue** (`overdue`): hazards whose deadline had passed at the as-of time while they were
//!   still open (not closed, or closed only later), whatever quarter the deadline fell in.
//! - **Plan late** (`plan_late`): major hazards whose plan deadline (`plan_due_at`) falls in the
//!   quarter and had passed by the as-of time, and whose plan was started after it or not at all.
//! - **Inspections as scheduled**: for each active schedule of the community (its node the
//!   community or one of its compounds), each period of the schedule (day, ISO week, month,
//!   quarter) that ends inside the quarter, ended by the as-of time, and does not end before the
//!   schedule starts: expected = the schedule's targets (its one `target_id`, else every
//!   dwelling, building or facility of the kind under its node), done = distinct targets with a
//!   `done` inspection of that schedule and `period_key`, at most the expected count. The share
//!   is done / expected over all of them, and there is none when nothing was expected.
//!
//! # Cards
//!
//! Each figure is held against its thresholds ([`Thresholds`], from `[supervision]`): an on-time
//! share or an inspections share *below* a threshold, an overdue or plan-late count *at least* a
//! threshold. Each figure that trips gives one reason at its worst level ("按期整改率 62% < 70%");
//! the card is red if any reason is red, else yellow if any is yellow, else `none` (a clean
//! card). A community with nothing to score — no hazard due, none overdue, no plan deadline, no
//! scheduled inspection — gets no card at all (`card` null, `nothing_to_score`), which is not a
//! perfect score.
//!
//! # Rounds
//!
//! A round stores every community's figures and card for one quarter: on demand (a street or
//! district officer, `Supervise` over the node) or once per ended quarter by the job
//! ([`quarterly`], a partial unique index makes a second run, on this server or another, a
//! no-op). The trend of a community is its stored rounds, the latest per quarter.
//!
//! # Who sees what
//!
//! Figures are a community's, so they are read through node grants only: the reach of
//! `ReadHazards` (community staff see their own community, street and district officers every
//! community below them), less the accredited third party's grants (it accepts fixes; it is
//! not part of the government's assessment). Grid grants give none.
//!
//! # Speed
//!
//! The table is computed set-based over the whole subtree: one query lists the communities, one
//! aggregates their hazards (GROUP BY community with CASE sums), one lists the active schedules
//! with their target counts, one counts done inspections per schedule and period, one reads the
//! stored trend; nothing runs per community.

use std::collections::HashMap;

use anxin_domain::roles::{Permission, Role};
use anxin_domain::SHANGHAI;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::Value;

/// How many quarters of stored rounds the trend shows before the quarter asked for.
pub const TREND_QUARTERS: usize = 4;

// ---------------------------------------------------------------- quarters

/// An Asia/Shanghai calendar quarter, written `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub q: u32,
}

impl Quarter {
    /// `2026-Q4`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Quarter> {
        let (y, q) = s.trim().split_once("-Q")?;
        if y.len() != 4 || q.len() != 1 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let q: u32 = q.parse().ok()?;
        ((1..=4).contains(&q) && (2000..=2100).contains(&year)).then_some(Quarter { year, q })
    }

    /// The quarter a local date falls in.
    pub fn of_date(d: NaiveDate) -> Quarter {
        Quarter {
            year: d.year(),
            q: (d.month() - 1) / 3 + 1,
        }
    }

    /// The quarter an instant falls in, in Asia/Shanghai.
    pub fn containing(t: DateTime<Utc>) -> Quarter {
        Self::of_date(t.with_timezone(&SHANGHAI).date_naive())
    }

    /// The first local day of the quarter.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.q - 1) * 3 + 1, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The first local day of the next quarter.
    pub fn end_day(self) -> NaiveDate {
        self.next().first_day()
    }

    /// 00:00 Asia/Shanghai on the first day.
    pub fn start(self) -> DateTime<Utc> {
        local_midnight(self.first_day())
    }

    /// 00:00 Asia/Shanghai on the first day of the next quarter (exclusive end).
    pub fn end(self) -> DateTime<Utc> {
        local_midnight(self.end_day())
    }

    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    pub fn prev(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }

    /// The time its figures are taken at: the quarter's end once it is over, else `now`; `None`
    /// for a quarter that has not begun.
    pub fn as_of(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if now < self.start() {
            None
        } else if now >= self.end() {
            Some(self.end())
        } else {
            Some(now)
        }
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-Q{}", self.year, self.q)
    }
}

fn local_midnight(d: NaiveDate) -> DateTime<Utc> {
    SHANGHAI
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map_or_else(|| DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

/// Schedule periods (`anxin_domain::hazard::Period`) counted in a quarter: each with its key
/// (`inspections.period_key`) and its exclusive local end day.
pub fn periods_in(
    period: &str,
    quarter: Quarter,
    starts_on: NaiveDate,
    as_of: DateTime<Utc>,
) -> Vec<String> {
    let (first, end) = (quarter.first_day(), quarter.end_day());
    let mut out = Vec::new();
    // (key, first day, exclusive end day) of each period whose last day lies in the quarter.
    let mut push = |key: String, end_excl: NaiveDate| {
        if end_excl > starts_on && local_midnight(end_excl) <= as_of {
            out.push(key);
        }
    };
    match period {
        "daily" => {
            let mut d = first;
            while d < end {
                let next = d.succ_opt().unwrap_or(d);
                push(d.format("%Y-%m-%d").to_string(), next);
                d = next;
            }
        }
        "weekly" => {
            // Mondays whose Sunday lies in the quarter.
            let mut monday =
                first - Duration::days(i64::from(first.weekday().num_days_from_monday()));
            while monday < end {
                let sunday = monday + Duration::days(6);
                if sunday >= first && sunday < end {
                    let w = monday.iso_week();
                    push(
                        format!("{}-W{:02}", w.year(), w.week()),
                        monday + Duration::days(7),
                    );
                }
                monday += Duration::days(7);
            }
        }
        "monthly" => {
            for i in 0..3 {
                let m = (quarter.q - 1) * 3 + 1 + i;
                let start = NaiveDate::from_ymd_opt(quarter.year, m, 1).unwrap_or(first);
                let next = if m == 12 {
                    NaiveDate::from_ymd_opt(quarter.year + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(quarter.year, m + 1, 1)
                }
                .unwrap_or(end);
                push(start.format("%Y-%m").to_string(), next);
            }
        }
        "quarterly" => push(quarter.to_string(), end),
        _ => {}
    }
    out
}

// ---------------------------------------------------------------- figures and cards

/// The thresholds of the cards (`[supervision]` in configuration).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionThresholds))]
pub struct Thresholds {
    pub yellow_on_time_below: f64,
    pub red_on_time_below: f64,
    pub yellow_overdue_at_least: i64,
    pub red_overdue_at_least: i64,
    pub yellow_inspections_below: f64,
    pub red_inspections_below: f64,
    pub yellow_plan_late_at_least: i64,
    pub red_plan_late_at_least: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            yellow_on_time_below: 0.9,
            red_on_time_below: 0.7,
            yellow_overdue_at_least: 3,
            red_overdue_at_least: 10,
            yellow_inspections_below: 0.9,
            red_inspections_below: 0.7,
            yellow_plan_late_at_least: 1,
            red_plan_late_at_least: 3,
        }
    }
}

/// A community's raw figures for one quarter (see the module doc).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub hazards_due: i64,
    pub closed_on_time: i64,
    pub overdue: i64,
    pub plan_late: i64,
    pub inspections_expected: i64,
    pub inspections_done: i64,
}

impl Figures {
    /// Closed on time / due; `None` when nothing was due.
    pub fn on_time_share(&self) -> Option<f64> {
        (self.hazards_due > 0).then(|| self.closed_on_time as f64 / self.hazards_due as f64)
    }
    /// Done / expected; `None` when nothing was expected.
    pub fn inspections_share(&self) -> Option<f64> {
        (self.inspections_expected > 0)
            .then(|| self.inspections_done as f64 / self.inspections_expected as f64)
    }
    /// Whether there is anything to score at all.
    pub fn scoreable(&self) -> bool {
        self.hazards_due > 0
            || self.overdue > 0
            || self.plan_late > 0
            || self.inspections_expected > 0
    }
}

/// Why a card was given: one per figure that tripped a threshold, at its worst level.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionReason))]
pub struct Reason {
    /// on_time, overdue, inspections, plan_late
    pub metric: String,
    /// yellow or red
    pub level: String,
    /// The figure: a share (0..1) or a count.
    pub value: f64,
    /// The threshold it was held against.
    pub threshold: f64,
    /// The reason in Chinese, e.g. "按期整改率 62% < 70%".
    pub text: String,
    /// The reason in English, e.g. "On-time closure 62% < 70%".
    pub text_en: String,
}

/// Percent, rounded down, from a fraction of integers: 0.625 is 62%, never a rounded-up 70%
/// that reads as if it met a 70% threshold.
fn pct(num: i64, den: i64) -> i64 {
    if den <= 0 {
        0
    } else {
        num * 100 / den
    }
}

fn pct_f(x: f64) -> i64 {
    (x * 100.0).round() as i64
}

/// The card and its reasons for `f` under `t` (see the module doc). `None`: nothing to score.
pub fn card(f: &Figures, t: &Thresholds) -> (Option<&'static str>, Vec<Reason>) {
    if !f.scoreable() {
        return (None, Vec::new());
    }
    let mut reasons = Vec::new();
    let share_reason = |metric: &str,
                        num: i64,
                        den: i64,
                        red: f64,
                        yellow: f64,
                        zh: &str,
                        en: &str|
     -> Option<Reason> {
        if den <= 0 {
            return None;
        }
        let share = num as f64 / den as f64;
        // Exact: num < threshold × den, so 0.7 is not below 70%.
        let (level, threshold) = if (num as f64) < red * den as f64 {
            ("red", red)
        } else if (num as f64) < yellow * den as f64 {
            ("yellow", yellow)
        } else {
            return None;
        };
        let (p, tp) = (pct(num, den), pct_f(threshold));
        Some(Reason {
            metric: metric.into(),
            level: level.into(),
            value: share,
            threshold,
            text: format!("{zh} {p}% < {tp}%"),
            text_en: format!("{en} {p}% < {tp}%"),
        })
    };
    let count_reason =
        |metric: &str, n: i64, red: i64, yellow: i64, zh: &str, en: &str| -> Option<Reason> {
            let (level, threshold) = if red > 0 && n >= red {
                ("red", red)
            } else if yellow > 0 && n >= yellow {
                ("yellow", yellow)
            } else {
                return None;
            };
            Some(Reason {
                metric: metric.into(),
                level: level.into(),
                value: n as f64,
                threshold: threshold as f64,
                text: format!("{zh} {n} 项 ≥ {threshold}"),
                text_en: format!("{en} {n} ≥ {threshold}"),
            })
        };
    reasons.extend(share_reason(
        "on_time",
        f.closed_on_time,
        f.hazards_due,
        t.red_on_time_below,
        t.yellow_on_time_below,
        "按期整改率",
        "On-time closure",
    ));
    reasons.extend(count_reason(
        "overdue",
        f.overdue,
        t.red_overdue_at_least,
        t.yellow_overdue_at_least,
        "逾期隐患",
        "Overdue hazards",
    ));
    reasons.extend(share_reason(
        "inspections",
        f.inspections_done.min(f.inspections_expected),
        f.inspections_expected,
        t.red_inspections_below,
        t.yellow_inspections_below,
        "按期巡检率",
        "Inspections as scheduled",
    ));
    reasons.extend(count_reason(
        "plan_late",
        f.plan_late,
        t.red_plan_late_at_least,
        t.yellow_plan_late_at_least,
        "重大隐患预案未按时启动",
        "Major hazards, plan not started in time",
    ));
    let card = if reasons.iter().any(|r| r.level == "red") {
        "red"
    } else if reasons.is_empty() {
        "none"
    } else {
        "yellow"
    };
    (Some(card), reasons)
}

fn card_rank(card: Option<&str>) -> u8 {
    match card {
        Some("red") => 0,
        Some("yellow") => 1,
        Some(_) => 2,
        None => 3,
    }
}

// ---------------------------------------------------------------- reach

/// Where the caller may read supervision figures: node grants of roles that read hazards, less
/// the third-party inspector's (see the module doc).
pub fn reach(caller: &Caller) -> Reach {
    if caller.is_system() {
        return caller.reach(Permission::ReadHazards);
    }
    let mut r = Reach::default();
    for g in &caller.grants {
        if g.role != Role::Inspector
            && g.role.permissions().contains(&Permission::ReadHazards)
            && g.scope_kind == anxin_domain::roles::ScopeKind::Node
        {
            r.nodes.push(g.scope_id);
        }
    }
    r
}

// ---------------------------------------------------------------- the table

/// One community's line of the table.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionLine))]
pub struct Line {
    /// 1 is the worst.
    pub rank: i64,
    pub community_id: Uuid,
    pub community_name: String,
    pub street_id: Option<Uuid>,
    pub street_name: Option<String>,
    pub quarter: String,
    pub as_of: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
    pub on_time_share: Option<f64>,
    pub inspections_share: Option<f64>,
    /// none, yellow, red; null when there is nothing to score.
    pub card: Option<String>,
    pub nothing_to_score: bool,
    pub reasons: Vec<Reason>,
    /// Stored rounds of the quarters before, oldest first, then this quarter as computed now.
    pub trend: Vec<TrendPoint>,
}

/// A quarter of a community's trend: the latest stored round of that quarter (or, for the
/// quarter asked for, the figures computed now: `score_id` null, `live`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub quarter: String,
    pub live: bool,
    pub score_id: Option<Uuid>,
    pub round_id: Option<Uuid>,
    pub as_of: DateTime<Utc>,
    pub card: Option<String>,
    pub on_time_share: Option<f64>,
    pub inspections_share: Option<f64>,
    pub overdue: i64,
}

/// The ranked table for a node and a quarter.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionTable))]
pub struct Table {
    /// The node asked for; null: everywhere the caller reaches.
    pub node_id: Option<Uuid>,
    pub quarter: String,
    pub as_of: DateTime<Utc>,
    /// Whether the quarter is still running (its figures move until it ends).
    pub running: bool,
    pub red: i64,
    pub yellow: i64,
    pub clean: i64,
    pub nothing_to_score: i64,
    /// Worst first: red, yellow, clean, then those with nothing to score.
    pub lines: Vec<Line>,
}

/// What the table is asked for.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableQuery {
    /// A node (street, district, city or a community); default: everything the caller reaches.
    pub node: Option<Uuid>,
    /// `2026-Q4`; default: the running quarter.
    pub quarter: Option<String>,
}

/// Parse the quarter asked for (default: the running one); a quarter not yet begun is refused.
pub fn quarter_arg(s: Option<&str>, now: DateTime<Utc>) -> Result<(Quarter, DateTime<Utc>)> {
    let q = match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Quarter::containing(now),
        Some(s) => Quarter::parse(s)
            .ok_or_else(|| StoreError::invalid("supervision.quarter_invalid", "quarter"))?,
    };
    let as_of = q
        .as_of(now)
        .ok_or_else(|| StoreError::invalid("supervision.quarter_future", "quarter"))?;
    Ok((q, as_of))
}

struct Community {
    id: Uuid,
    name: String,
    parent_id: Option<Uuid>,
    parent_name: Option<String>,
}

fn ids_json(ids: impl IntoIterator<Item = Uuid>) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.into_iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

/// `col IN (the ids of the JSON array at $n)`, typed so PostgreSQL compares uuids (an index can
/// serve it) rather than casting every row to text.
fn in_ids(d: Dialect, col: &str, n: usize) -> String {
    match d {
        Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each(${n}))"),
        Dialect::Postgres => {
            format!("{col} IN (SELECT v::uuid FROM jsonb_array_elements_text(${n}::jsonb) AS v)")
        }
    }
}

/// The active communities under `node` (all, when `None`) within the caller's reach.
fn communities(conn: &mut dyn Conn, reach: &Reach, node: Option<Uuid>) -> Result<Vec<Community>> {
    let mut params: Vec<Value> = Vec::new();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let sub = match node {
        Some(id) => {
            params.push(Value::Uuid(id));
            format!(
                "AND n.id IN (WITH RECURSIVE s(id) AS (SELECT id FROM nodes WHERE id = ${} \
                 UNION ALL SELECT c.id FROM nodes c JOIN s ON c.parent_id = s.id) SELECT id FROM s)",
                params.len()
            )
        }
        None => String::new(),
    };
    let rows = conn.query(
        &format!(
            "SELECT n.id, n.name, p.id AS parent_id, p.name AS parent_name FROM nodes n \
             LEFT JOIN nodes p ON p.id = n.parent_id \
             WHERE n.level = 'community' AND n.status = 'active' AND {pred} {sub} ORDER BY n.name, n.id"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Community {
                id: r.get("id")?,
                name: r.get("name")?,
                parent_id: r.get("parent_id")?,
                parent_name: r.get("parent_name")?,
            })
        })
        .collect()
}

/// Above this many communities the hazard query reads the quarter's rows for everyone and
/// keeps the asked-for communities in memory; below it, it reads each community's rows through
/// its index. Either way the rows come from index ranges, not a scan of the whole ledger.
const FILTER_IN_MEMORY_FROM: usize = 200;

/// The hazard figures of `ids` for the quarter, as of `as_of`: one GROUP BY over four index
/// ranges of the ledger (deadline in the quarter; open past its deadline; closed only after the
/// as-of time though due before it; plan deadline in the quarter), each counting what it is
/// about, so a ledger of years costs what one quarter's rows cost (see `0016_supervision.sql`
/// for the covering indexes).
fn hazard_figures(
    conn: &mut dyn Conn,
    ids: &[Uuid],
    quarter: Quarter,
    as_of: DateTime<Utc>,
    out: &mut HashMap<Uuid, Figures>,
) -> Result<()> {
    let d = conn.dialect();
    let wanted: std::collections::HashSet<Uuid> = ids.iter().copied().collect();
    let mut params = vec![
        Value::Time(quarter.start()),
        Value::Time(quarter.end()),
        Value::Time(as_of),
    ];
    let only = if ids.len() < FILTER_IN_MEMORY_FROM {
        params.push(ids_json(ids.iter().copied()));
        format!("AND {}", in_ids(d, "h.node_id", 4))
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT node_id, COALESCE(sum(due), 0) AS due, COALESCE(sum(on_time), 0) AS on_time,          COALESCE(sum(overdue), 0) AS overdue, COALESCE(sum(plan_late), 0) AS plan_late FROM (            SELECT h.node_id,              CASE WHEN h.fix_due_at <= $3 OR (h.state = 'closed' AND h.closed_at <= $3)                   THEN 1 ELSE 0 END AS due,              CASE WHEN h.state = 'closed' AND h.closed_at <= $3 AND h.closed_on_time = TRUE                   THEN 1 ELSE 0 END AS on_time,              CASE WHEN h.fix_due_at < $3 AND (h.state <> 'closed' OR h.closed_at > $3)                   THEN 1 ELSE 0 END AS overdue,              0 AS plan_late            FROM hazards h WHERE h.fix_due_at >= $1 AND h.fix_due_at < $2 {only}            UNION ALL            SELECT h.node_id, 0, 0, 1, 0 FROM hazards h            WHERE h.state IN ('reported', 'assigned', 'remediating', 'fixed', 'accepted')              AND h.fix_due_at < $1 {only}            UNION ALL            SELECT h.node_id, 0, 0, 1, 0 FROM hazards h            WHERE h.closed_at > $3 AND h.fix_due_at < $1 AND h.state = 'closed' {only}            UNION ALL            SELECT h.node_id, 0, 0, 0, 1 FROM hazards h            WHERE h.plan_due_at >= $1 AND h.plan_due_at < $2 AND h.plan_due_at <= $3              AND h.grade = 'major'              AND (h.plan_started_at IS NULL OR h.plan_started_at > h.plan_due_at) {only}          ) x GROUP BY node_id"
    );
    for r in conn.query(&sql, &params)? {
        let node: Uuid = r.get("node_id")?;
        if !wanted.contains(&node) {
            continue;
        }
        let f = out.entry(node).or_default();
        f.hazards_due = r.get("due")?;
        f.closed_on_time = r.get("on_time")?;
        f.overdue = r.get("overdue")?;
        f.plan_late = r.get("plan_late")?;
    }
    Ok(())
}

/// Inspections as scheduled for `ids`: schedules with their target counts (one query), done
/// targets per schedule and period (one query), periods counted in Rust.
fn inspection_figures(
    conn: &mut dyn Conn,
    ids: &[Uuid],
    quarter: Quarter,
    as_of: DateTime<Utc>,
    out: &mut HashMap<Uuid, Figures>,
) -> Result<()> {
    let d = conn.dialect();
    let community = "CASE WHEN n.level = 'compound' THEN n.parent_id ELSE n.id END";
    let sql = format!(
        "SELECT s.id, s.period, s.starts_on, {community} AS community_id, \
         CASE WHEN s.target_id IS NOT NULL THEN 1 \
              WHEN s.target_kind = 'dwelling' THEN (SELECT count(*) FROM dwellings dw \
                  JOIN buildings b ON b.id = dw.building_id \
                  WHERE b.node_id = s.node_id OR b.community_id = s.node_id) \
              WHEN s.target_kind = 'building' THEN (SELECT count(*) FROM buildings b \
                  WHERE b.node_id = s.node_id OR b.community_id = s.node_id) \
              WHEN s.target_kind = 'facility' THEN (SELECT count(*) FROM facilities f \
                  WHERE (f.node_id = s.node_id OR f.node_id IN \
                      (SELECT c.id FROM nodes c WHERE c.parent_id = s.node_id)) \
                  AND (t.facility_kind IS NULL OR f.kind = t.facility_kind)) \
              ELSE 1 END AS targets \
         FROM inspection_schedules s JOIN nodes n ON n.id = s.node_id \
         JOIN inspection_templates t ON t.id = s.template_id \
         WHERE s.active = TRUE AND s.starts_on < $2 AND {}",
        in_ids(d, &format!("({community})"), 1)
    );
    let end_day = Value::Date(quarter.end_day());
    let rows = conn.query(&sql, &[ids_json(ids.iter().copied()), end_day])?;
    // schedule → (community, targets, the period keys it is expected in)
    let mut schedules: HashMap<Uuid, (Uuid, i64, Vec<String>)> = HashMap::new();
    let mut all_keys = std::collections::BTreeSet::new();
    for r in rows {
        let period: String = r.get("period")?;
        let starts_on: NaiveDate = r.get("starts_on")?;
        let keys = periods_in(&period, quarter, starts_on, as_of);
        if keys.is_empty() {
            continue;
        }
        let targets: i64 = r.get("targets")?;
        let community: Uuid = r.get("community_id")?;
        out.entry(community).or_default().inspections_expected += targets * keys.len() as i64;
        all_keys.extend(keys.iter().cloned());
        schedules.insert(r.get("id")?, (community, targets, keys));
    }
    if schedules.is_empty() {
        return Ok(());
    }
    let keys_json = Value::Json(serde_json::Value::Array(
        all_keys
            .into_iter()
            .map(serde_json::Value::String)
            .collect(),
    ));
    let sql = format!(
        "SELECT i.schedule_id, i.period_key, count(DISTINCT i.target_id) AS done \
         FROM inspections i WHERE i.status = 'done' AND i.done_at <= $3 AND {} AND {} \
         GROUP BY i.schedule_id, i.period_key",
        in_ids(d, "i.schedule_id", 1),
        d.in_json_list("i.period_key", 2)
    );
    let params = vec![
        ids_json(schedules.keys().copied()),
        keys_json,
        Value::Time(as_of),
    ];
    for r in conn.query(&sql, &params)? {
        let sid: Uuid = r.get("schedule_id")?;
        let key: String = r.get("period_key")?;
        let done: i64 = r.get("done")?;
        if let Some((community, targets, keys)) = schedules.get(&sid) {
            if keys.contains(&key) {
                out.entry(*community).or_default().inspections_done += done.min(*targets);
            }
        }
    }
    Ok(())
}

/// The stored trend of `ids` for the `TREND_QUARTERS` quarters before `quarter`: the latest
/// score of each community and quarter.
fn stored_trend(
    conn: &mut dyn Conn,
    ids: &[Uuid],
    quarter: Quarter,
) -> Result<HashMap<Uuid, Vec<TrendPoint>>> {
    let mut quarters = Vec::new();
    let mut q = quarter;
    for _ in 0..TREND_QUARTERS {
        q = q.prev();
        quarters.push(q.to_string());
    }
    let d = conn.dialect();
    let sql = format!(
        "SELECT id, round_id, node_id, quarter, as_of, card, hazards_due, closed_on_time, \
         overdue, plan_late, inspections_expected, inspections_done FROM supervision_scores \
         WHERE {} AND {} ORDER BY created_at, id",
        in_ids(d, "node_id", 1),
        d.in_json_list("quarter", 2)
    );
    let params = vec![
        ids_json(ids.iter().copied()),
        Value::Json(serde_json::json!(quarters)),
    ];
    // Later rows overwrite earlier ones: the latest round of each quarter wins.
    let mut latest: HashMap<(Uuid, String), TrendPoint> = HashMap::new();
    for r in conn.query(&sql, &params)? {
        let f = Figures {
            hazards_due: r.get("hazards_due")?,
            closed_on_time: r.get("closed_on_time")?,
            overdue: r.get("overdue")?,
            plan_late: r.get("plan_late")?,
            inspections_expected: r.get("inspections_expected")?,
            inspections_done: r.get("inspections_done")?,
        };
        let node: Uuid = r.get("node_id")?;
        let quarter: String = r.get("quarter")?;
        latest.insert(
            (node, quarter.clone()),
            TrendPoint {
                quarter,
                live: false,
                score_id: Some(r.get("id")?),
                round_id: Some(r.get("round_id")?),
                as_of: r.get("as_of")?,
                card: r.get("card")?,
                on_time_share: f.on_time_share(),
                inspections_share: f.inspections_share(),
                overdue: f.overdue,
            },
        );
    }
    let mut out: HashMap<Uuid, Vec<TrendPoint>> = HashMap::new();
    for ((node, _), p) in latest {
        out.entry(node).or_default().push(p);
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.quarter.cmp(&b.quarter));
    }
    Ok(out)
}

fn line(c: &Community, quarter: Quarter, as_of: DateTime<Utc>, f: Figures, t: &Thresholds) -> Line {
    let (card, reasons) = card(&f, t);
    Line {
        rank: 0,
        community_id: c.id,
        community_name: c.name.clone(),
        street_id: c.parent_id,
        street_name: c.parent_name.clone(),
        quarter: quarter.to_string(),
        as_of,
        figures: f,
        on_time_share: f.on_time_share(),
        inspections_share: f.inspections_share(),
        card: card.map(str::to_owned),
        nothing_to_score: card.is_none(),
        reasons,
        trend: Vec::new(),
    }
}

/// Worst first: red, yellow, clean, nothing to score; within a card, the lower on-time share,
/// the more overdue, the lower inspections share, then by name.
fn rank(lines: &mut [Line]) {
    lines.sort_by(|a, b| {
        card_rank(a.card.as_deref())
            .cmp(&card_rank(b.card.as_deref()))
            .then(
                a.on_time_share
                    .unwrap_or(2.0)
                    .total_cmp(&b.on_time_share.unwrap_or(2.0)),
            )
            .then(b.figures.overdue.cmp(&a.figures.overdue))
            .then(
                a.inspections_share
                    .unwrap_or(2.0)
                    .total_cmp(&b.inspections_share.unwrap_or(2.0)),
            )
            .then(a.community_name.cmp(&b.community_name))
    });
    for (i, l) in lines.iter_mut().enumerate() {
        l.rank = i as i64 + 1;
    }
}

/// Compute the lines (no trend) for the communities under `node` in `reach`.
fn compute(
    conn: &mut dyn Conn,
    reach: &Reach,
    node: Option<Uuid>,
    quarter: Quarter,
    as_of: DateTime<Utc>,
    t: &Thresholds,
) -> Result<Vec<Line>> {
    if let Some(n) = node {
        if !reach.contains_node(conn, n)? {
            return Err(StoreError::NotFound);
        }
    }
    let started = std::time::Instant::now();
    let cs = communities(conn, reach, node)?;
    let ids: Vec<Uuid> = cs.iter().map(|c| c.id).collect();
    let listed = started.elapsed();
    let mut figs = HashMap::with_capacity(ids.len());
    if !ids.is_empty() {
        hazard_figures(conn, &ids, quarter, as_of, &mut figs)?;
    }
    let hazards = started.elapsed();
    if !ids.is_empty() {
        inspection_figures(conn, &ids, quarter, as_of, &mut figs)?;
    }
    let inspections = started.elapsed();
    let mut lines: Vec<Line> = cs
        .iter()
        .map(|c| {
            line(
                c,
                quarter,
                as_of,
                figs.get(&c.id).copied().unwrap_or_default(),
                t,
            )
        })
        .collect();
    rank(&mut lines);
    tracing::debug!(
        supervision.quarter = %quarter,
        supervision.communities = lines.len(),
        communities_ms = listed.as_millis() as u64,
        hazards_ms = (hazards - listed).as_millis() as u64,
        inspections_ms = (inspections - hazards).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "supervision figures computed"
    );
    Ok(lines)
}

/// The ranked table for a node and quarter, computed now, with each line's stored trend.
pub fn table(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &TableQuery,
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Result<Table> {
    let (quarter, as_of) = quarter_arg(q.quarter.as_deref(), now)?;
    let r = reach(caller);
    let mut lines = compute(conn, &r, q.node, quarter, as_of, t)?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.community_id).collect();
    let mut trend = if ids.is_empty() {
        HashMap::new()
    } else {
        stored_trend(conn, &ids, quarter)?
    };
    for l in &mut lines {
        let mut points = trend.remove(&l.community_id).unwrap_or_default();
        points.push(TrendPoint {
            quarter: l.quarter.clone(),
            live: true,
            score_id: None,
            round_id: None,
            as_of,
            card: l.card.clone(),
            on_time_share: l.on_time_share,
            inspections_share: l.inspections_share,
            overdue: l.figures.overdue,
        });
        l.trend = points;
    }
    let count = |c: Option<&str>| lines.iter().filter(|l| l.card.as_deref() == c).count() as i64;
    Ok(Table {
        node_id: q.node,
        quarter: quarter.to_string(),
        as_of,
        running: as_of < quarter.end(),
        red: count(Some("red")),
        yellow: count(Some("yellow")),
        clean: count(Some("none")),
        nothing_to_score: count(None),
        lines,
    })
}

/// A community's own page: its line for the quarter (computed now) and its stored trend.
pub fn community(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    quarter: Option<&str>,
    now: DateTime<Utc>,
    t: &Thresholds,
) -> Result<Line> {
    let level: Option<String> = conn
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![id])?
        .map(|r| r.get("level"))
        .transpose()?;
    if level.as_deref() != Some("community") {
        return Err(StoreError::NotFound);
    }
    let q = TableQuery {
        node: Some(id),
        quarter: quarter.map(str::to_owned),
    };
    table(conn, caller, &q, now, t)?
        .lines
        .into_iter()
        .find(|l| l.community_id == id)
        .ok_or(StoreError::NotFound)
}

// ---------------------------------------------------------------- rounds

/// A stored round; the counts are of the communities the reader reaches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionRound))]
pub struct Round {
    pub id: Uuid,
    /// The node scored under; null: everywhere (the quarterly job).
    pub node_id: Option<Uuid>,
    pub quarter: String,
    /// quarterly or on_demand
    pub cause: String,
    pub as_of: DateTime<Utc>,
    pub communities: i64,
    pub red: i64,
    pub yellow: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// An on-demand round.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(as = SupervisionRoundInput))]
pub struct RoundInput {
    /// The node to score under (a street, district or city where the caller supervises).
    pub node_id: Uuid,
    /// `2026-Q4`; default: the running quarter.
    #[serde(default)]
    pub quarter: Option<String>,
}

fn store_round(
    tx: &mut Tx,
    node: Option<Uuid>,
    quarter: Quarter,
    as_of: DateTime<Utc>,
    cause: &str,
    lines: &[Line],
    t: &Thresholds,
) -> Result<Round> {
    let id = tx.new_id();
    let now = tx.now();
    let by = tx.ctx().actor;
    let red = lines
        .iter()
        .filter(|l| l.card.as_deref() == Some("red"))
        .count() as i64;
    let yellow = lines
        .iter()
        .filter(|l| l.card.as_deref() == Some("yellow"))
        .count() as i64;
    tx.insert(
        "supervision_rounds",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("quarter", quarter.to_string().into()),
            ("cause", cause.into()),
            ("as_of", as_of.into()),
            ("communities", (lines.len() as i64).into()),
            ("red", red.into()),
            ("yellow", yellow.into()),
            (
                "thresholds",
                serde_json::to_string(t).unwrap_or_default().into(),
            ),
            ("created_by", by.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let rows: Vec<Vec<Value>> = lines
        .iter()
        .map(|l| {
            vec![
                Value::Uuid(tx.new_id()),
                Value::Uuid(id),
                Value::Uuid(l.community_id),
                Value::Text(quarter.to_string()),
                Value::Time(as_of),
                Value::Int(l.figures.hazards_due),
                Value::Int(l.figures.closed_on_time),
                Value::Int(l.figures.overdue),
                Value::Int(l.figures.plan_late),
                Value::Int(l.figures.inspections_expected),
                Value::Int(l.figures.inspections_done),
                l.card.clone().into(),
                Value::Text(serde_json::to_string(&l.reasons).unwrap_or_else(|_| "[]".into())),
                Value::Time(now),
                Value::Time(now),
            ]
        })
        .collect();
    tx.insert_many(
        "supervision_scores",
        &[
            "id",
            "round_id",
            "node_id",
            "quarter",
            "as_of",
            "hazards_due",
            "closed_on_time",
            "overdue",
            "plan_late",
            "inspections_expected",
            "inspections_done",
            "card",
            "reasons",
            "created_at",
            "updated_at",
        ],
        &rows,
    )?;
    Ok(Round {
        id,
        node_id: node,
        quarter: quarter.to_string(),
        cause: cause.into(),
        as_of,
        communities: lines.len() as i64,
        red,
        yellow,
        created_by: by,
        created_at: now,
    })
}

/// Score every community under `input.node_id` now and store the round. Needs `Supervise`
/// over the node (a node outside the caller's reach is not found).
pub fn run_round(
    tx: &mut Tx,
    caller: &Caller,
    input: &RoundInput,
    t: &Thresholds,
) -> Result<Round> {
    let (quarter, as_of) = quarter_arg(input.quarter.as_deref(), tx.now())?;
    if !caller.has(Permission::Supervise) {
        return Err(StoreError::Forbidden("supervision.not_supervisor"));
    }
    let sup = caller.reach(Permission::Supervise);
    if !sup.contains_node(tx.conn(), input.node_id)? {
        return Err(StoreError::NotFound);
    }
    let lines = compute(tx.conn(), &sup, Some(input.node_id), quarter, as_of, t)?;
    store_round(
        tx,
        Some(input.node_id),
        quarter,
        as_of,
        "on_demand",
        &lines,
        t,
    )
}

/// The quarterly job's step: once the quarter before `tx.now()`'s has ended, score it for every
/// community, once. `None` when it was already scored (here or on another server).
pub fn quarterly(tx: &mut Tx, t: &Thresholds) -> Result<Option<Round>> {
    let quarter = Quarter::containing(tx.now()).prev();
    quarterly_for(tx, quarter, t)
}

/// Score an ended `quarter` for every community as the quarterly round, unless it has one
/// (the demo stores its year of history this way). A quarter not yet over is refused.
pub fn quarterly_for(tx: &mut Tx, quarter: Quarter, t: &Thresholds) -> Result<Option<Round>> {
    if tx.now() < quarter.end() {
        return Err(StoreError::invalid("supervision.quarter_future", "quarter"));
    }
    let done = tx.conn().query_i64(
        "SELECT count(*) FROM supervision_rounds WHERE cause = 'quarterly' AND quarter = $1",
        &params![quarter.to_string()],
    )?;
    if done > 0 {
        return Ok(None);
    }
    let all = Caller::system().reach(Permission::ReadHazards);
    let lines = compute(tx.conn(), &all, None, quarter, quarter.end(), t)?;
    store_round(tx, None, quarter, quarter.end(), "quarterly", &lines, t).map(Some)
}

/// Rounds that scored a community the caller reaches, newest first, counted over those
/// communities only.
pub fn list_rounds(conn: &mut dyn Conn, caller: &Caller, limit: i64) -> Result<Vec<Round>> {
    let r = reach(caller);
    let mut params: Vec<Value> = Vec::new();
    let pred = r.predicate(
        conn.dialect(),
        ScopeCols {
            node: "s.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    params.push(Value::Int(limit.clamp(1, 500)));
    let rows = conn.query(
        &format!(
            "SELECT r.id, r.node_id, r.quarter, r.cause, r.as_of, r.created_by, r.created_at, \
             count(*) AS communities, \
             COALESCE(sum(CASE WHEN s.card = 'red' THEN 1 ELSE 0 END), 0) AS red, \
             COALESCE(sum(CASE WHEN s.card = 'yellow' THEN 1 ELSE 0 END), 0) AS yellow \
             FROM supervision_rounds r JOIN supervision_scores s ON s.round_id = r.id \
             WHERE {pred} \
             GROUP BY r.id, r.node_id, r.quarter, r.cause, r.as_of, r.created_by, r.created_at \
             ORDER BY r.created_at DESC, r.id DESC LIMIT ${}",
            params.len()
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(Round {
                id: r.get("id")?,
                node_id: r.get("node_id")?,
                quarter: r.get("quarter")?,
                cause: r.get("cause")?,
                as_of: r.get("as_of")?,
                communities: r.get("communities")?,
                red: r.get("red")?,
                yellow: r.get("yellow")?,
                created_by: r.get("created_by")?,
                created_at: r.get("created_at")?,
            })
        })
        .collect()
}

/// The nodes the caller supervises (its `Supervise` grants), for the on-demand round's choice.
pub fn supervised_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let r = caller.reach(Permission::Supervise);
    if r.nodes.is_empty() {
        return Ok(Vec::new());
    }
    let d = conn.dialect();
    let rows = conn.query(
        &format!(
            "SELECT id, name FROM nodes WHERE {} ORDER BY name, id",
            in_ids(d, "id", 1)
        ),
        &[ids_json(r.nodes.iter().copied())],
    )?;
    rows.iter()
        .map(|r| Ok((r.get("id")?, r.get("name")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_are_local() {
        let q = Quarter::parse("2026-Q4").unwrap();
        assert_eq!(q.start().to_rfc3339(), "2026-09-30T16:00:00+00:00");
        assert_eq!(q.end().to_rfc3339(), "2026-12-31T16:00:00+00:00");
        assert_eq!(q.next().to_string(), "2027-Q1");
        assert_eq!(Quarter::parse("2027-Q1").unwrap().prev(), q);
        // 23:30 UTC on 30 September is already 1 October in Shanghai.
        let t = Utc.with_ymd_and_hms(2026, 9, 30, 23, 30, 0).unwrap();
        assert_eq!(Quarter::containing(t), q);
        assert!(Quarter::parse("2026-Q5").is_none());
        assert!(Quarter::parse("2026Q4").is_none());
    }

    #[test]
    fn periods_end_inside_the_quarter() {
        let q = Quarter::parse("2026-Q4").unwrap();
        let end = q.end();
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let weeks = periods_in("weekly", q, start, end);
        // Sundays 4 October .. 27 December 2026: 13 weeks; W53 ends 3 January 2027 (Q1).
        assert_eq!(weeks.first().unwrap(), "2026-W40");
        assert_eq!(weeks.last().unwrap(), "2026-W52");
        assert_eq!(weeks.len(), 13);
        assert_eq!(
            periods_in("monthly", q, start, end),
            ["2026-10", "2026-11", "2026-12"]
        );
        assert_eq!(periods_in("daily", q, start, end).len(), 92);
        assert_eq!(periods_in("quarterly", q, start, end), ["2026-Q4"]);
        // Running quarter: only periods ended by now; a schedule starting mid-quarter.
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 4, 0, 0).unwrap();
        assert_eq!(periods_in("monthly", q, start, now), ["2026-10"]);
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert!(periods_in("monthly", q, from, now).is_empty());
        assert_eq!(periods_in("monthly", q, from, end), ["2026-11", "2026-12"]);
    }

    #[test]
    fn cards_name_their_reasons() {
        let t = Thresholds::default();
        let f = Figures {
            hazards_due: 8,
            closed_on_time: 5,
            overdue: 12,
            ..Figures::default()
        };
        let (c, r) = card(&f, &t);
        assert_eq!(c, Some("red"));
        let texts: Vec<&str> = r.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["按期整改率 62% < 70%", "逾期隐患 12 项 ≥ 10"]);
        // Exactly at a threshold is not below it.
        let f = Figures {
            hazards_due: 10,
            closed_on_time: 9,
            inspections_expected: 10,
            inspections_done: 7,
            ..Figures::default()
        };
        let (c, r) = card(&f, &t);
        assert_eq!(c, Some("yellow"));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].text, "按期巡检率 70% < 90%");
        assert_eq!(r[0].text_en, "Inspections as scheduled 70% < 90%");
        // Clean, and nothing to score.
        let f = Figures {
            hazards_due: 4,
            closed_on_time: 4,
            ..Figures::default()
        };
        assert_eq!(card(&f, &t), (Some("none"), vec![]));
        assert_eq!(card(&Figures::default(), &t), (None, vec![]));
    }
}
