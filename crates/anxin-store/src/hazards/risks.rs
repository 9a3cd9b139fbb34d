//! The risk register (owner: calendar & risks).
//!
//! A risk belongs to a node (a community, or a street for its own). It has a type, a title and
//! description, a likelihood and a consequence on a 5×5 matrix, the controls in place, an owner
//! (an account holding a grant inside the node's subtree), an optional position on the map, and
//! the date of its next review.
//!
//! **Score and level** (the banding, after the 5×5 matrices of GB/T 27921-2023 《风险管理 风险评估
//! 技术》 and the four colours of 安全风险分级管控: 红橙黄蓝): score = likelihood × consequence,
//! 1–25;
//! - 1–4: low (低, 蓝),
//! - 5–9: medium (一般, 黄),
//! - 10–16: high (较大, 橙),
//! - 20–25: extreme (重大, 红).
//!
//! (No product of two numbers 1–5 falls in 17–19.)
//!
//! **Reviews**: a risk is reviewed at least every `risks.max_review_months` months (six by
//! default). On creation and at each review the next review date is set: by default that many
//! months on, never later (`risk.review_too_late`, field `next_review_on`), never before today
//! (`risk.review_in_past`). A review records who, when, the scores then and a note, and may
//! re-score the risk. [`due_reminders`] lists what the reminder job owes owners: once
//! `remind_days_before` days before the date (due_soon) and once when it has passed (overdue),
//! each once per review date ([`record_reminders`]).
//!
//! **Who**: reading the register needs `ManageRisks` or `Supervise` in scope (the third-party
//! inspector reads hazards, not the register); writing needs `ManageRisks` at the risk's node.
//! A risk outside the caller's reach answers like a missing one.

use anxin_domain::roles::Permission;
use anxin_domain::SHANGHAI;
use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::ops::plans::{holders, subtree};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Conn;

const TITLE_MAX: usize = 80;
const TEXT_MAX: usize = 2_000;
const LABEL_MAX: usize = 80;

/// (code, zh-CN, English) of each risk type.
pub const RISK_TYPES: &[(&str, &str, &str)] = &[
    ("flood", "洪涝", "Flood"),
    ("fire", "火灾", "Fire"),
    ("gas", "燃气", "Gas"),
    ("structural", "房屋结构", "Structural"),
    ("public_health", "公共卫生", "Public health"),
    ("geological", "地质灾害", "Geological"),
    ("traffic", "交通", "Traffic"),
    ("other", "其他", "Other"),
];

/// (code, zh-CN, English, colour) of each level, lowest first.
pub const LEVELS: &[(&str, &str, &str, &str)] = &[
    ("low", "低风险", "Low", "blue"),
    ("medium", "一般风险", "Medium", "yellow"),
    ("high", "较大风险", "High", "orange"),
    ("extreme", "重大风险", "Extreme", "red"),
];

/// The level of a score (see the module doc for the banding).
pub fn level_of(score: i64) -> &'static str {
    match score {
        ..=4 => "low",
        5..=9 => "medium",
        10..=16 => "high",
        _ => "extreme",
    }
}

/// Today in Asia/Shanghai.
pub fn local_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&SHANGHAI).date_naive()
}

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

/// A risk with its score, level and review state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    /// flood, fire, gas, structural, public_health, geological, traffic, other
    pub risk_type: String,
    pub title: String,
    pub description: String,
    /// 1–5
    pub likelihood: i64,
    /// 1–5
    pub consequence: i64,
    /// likelihood × consequence
    pub score: i64,
    /// low, medium, high, extreme
    pub level: String,
    pub controls: String,
    pub owner_user_id: Uuid,
    /// The owner's username and masked name.
    pub owner_label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub place_label: String,
    /// active, retired
    pub status: String,
    pub last_reviewed_at: Option<DateTime<Utc>>,
    pub next_review_on: NaiveDate,
    /// The next review date has passed.
    pub review_overdue: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Risk {
    fn from_row(r: &Row, today: NaiveDate) -> Result<Self> {
        let next: NaiveDate = r.get("next_review_on")?;
        let status: String = r.get("status")?;
        let username: Option<String> = r.get("owner_username").unwrap_or(None);
        let owner_name: Option<String> = r.get("owner_name").unwrap_or(None);
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
            risk_type: r.get("risk_type")?,
            title: r.get("title")?,
            description: r.get("description")?,
            likelihood: r.get("likelihood")?,
            consequence: r.get("consequence")?,
            score: r.get("score")?,
            level: r.get("level")?,
            controls: r.get("controls")?,
            owner_user_id: r.get("owner_user_id")?,
            owner_label: format!(
                "{}（{}）",
                username.unwrap_or_default(),
                anxin_domain::mask_name(&owner_name.unwrap_or_default())
            ),
            lon: r.get("lon")?,
            lat: r.get("lat")?,
            place_label: r.get("place_label")?,
            review_overdue: status == "active" && next < today,
            status,
            last_reviewed_at: r.get("last_reviewed_at")?,
            next_review_on: next,
            created_by: r.get("created_by")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// One review of a risk.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct RiskReview {
    pub id: Uuid,
    pub risk_id: Uuid,
    pub reviewed_by: Option<Uuid>,
    /// The reviewer's username and masked name.
    pub reviewer_label: String,
    pub reviewed_at: DateTime<Utc>,
    pub likelihood: i64,
    pub consequence: i64,
    pub score: i64,
    pub level: String,
    pub note: String,
    pub next_review_on: NaiveDate,
}

impl RiskReview {
    fn from_row(r: &Row) -> Result<Self> {
        let username: Option<String> = r.get("username").unwrap_or(None);
        let name: Option<String> = r.get("display_name").unwrap_or(None);
        Ok(Self {
            id: r.get("id")?,
            risk_id: r.get("risk_id")?,
            reviewed_by: r.get("reviewed_by")?,
            reviewer_label: match username {
                Some(u) => format!(
                    "{u}（{}）",
                    anxin_domain::mask_name(&name.unwrap_or_default())
                ),
                None => String::new(),
            },
            reviewed_at: r.get("reviewed_at")?,
            likelihood: r.get("likelihood")?,
            consequence: r.get("consequence")?,
            score: r.get("score")?,
            level: r.get("level")?,
            note: r.get("note")?,
            next_review_on: r.get("next_review_on")?,
        })
    }
}

pub const RISK_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "r.node_id",
    grid: None,
    household: None,
};

/// Who may read the register: those who keep it and those who supervise.
pub fn read_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::ManageRisks);
    r.merge(caller.reach(Permission::Supervise));
    r
}

const RISK_COLS: &str = "r.*, (SELECT n.name FROM nodes n WHERE n.id = r.node_id) AS node_name, \
     (SELECT u.username FROM users u WHERE u.id = r.owner_user_id) AS owner_username, \
     (SELECT u.display_name FROM users u WHERE u.id = r.owner_user_id) AS owner_name";

fn load(conn: &mut dyn Conn, reach: &Reach, id: Uuid, today: NaiveDate) -> Result<Risk> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), RISK_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {RISK_COLS} FROM risks r WHERE r.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Risk::from_row(&row, today)
}

fn all() -> Reach {
    Reach {
        all: true,
        ..Reach::default()
    }
}

/// A risk the caller may read.
pub fn get(conn: &mut dyn Conn, caller: &Caller, id: Uuid, now: DateTime<Utc>) -> Result<Risk> {
    load(conn, &read_reach(caller), id, local_day(now))
}

/// The caller reads the risk; may it write it? `Forbidden` when not.
fn check_write(conn: &mut dyn Conn, caller: &Caller, risk: &Risk) -> Result<()> {
    if caller
        .reach(Permission::ManageRisks)
        .contains_node(conn, risk.node_id)?
    {
        Ok(())
    } else {
        Err(StoreError::Forbidden("risk.not_allowed"))
    }
}

/// List filter (every field optional).
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskQuery {
    /// Risks of this node's subtree only.
    pub node_id: Option<Uuid>,
    /// One risk type.
    pub risk_type: Option<String>,
    /// One level.
    pub level: Option<String>,
    /// active (default) or retired.
    pub status: Option<String>,
    /// Only risks whose review is overdue (true) or not (false).
    pub overdue: Option<bool>,
}

/// Risks the caller may read, highest score first.
pub fn list(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &RiskQuery,
    now: DateTime<Utc>,
) -> Result<Vec<Risk>> {
    let today = local_day(now);
    let mut params = Vec::new();
    let mut parts = vec![read_reach(caller).predicate(conn.dialect(), RISK_SCOPE, &mut params)];
    let status = q.status.as_deref().unwrap_or("active");
    if !matches!(status, "active" | "retired") {
        return Err(bad("value.invalid", "status"));
    }
    params.push(status.into());
    parts.push(format!("r.status = ${}", params.len()));
    if let Some(t) = q.risk_type.as_deref() {
        if !RISK_TYPES.iter().any(|(c, ..)| *c == t) {
            return Err(bad("value.invalid", "risk_type"));
        }
        params.push(t.into());
        parts.push(format!("r.risk_type = ${}", params.len()));
    }
    if let Some(l) = q.level.as_deref() {
        if !LEVELS.iter().any(|(c, ..)| *c == l) {
            return Err(bad("value.invalid", "level"));
        }
        params.push(l.into());
        parts.push(format!("r.level = ${}", params.len()));
    }
    if let Some(o) = q.overdue {
        params.push(today.into());
        parts.push(format!(
            "r.next_review_on {} ${}",
            if o { "<" } else { ">=" },
            params.len()
        ));
    }
    if let Some(n) = q.node_id {
        let sub = Reach {
            nodes: vec![n],
            ..Reach::default()
        };
        parts.push(sub.predicate(conn.dialect(), RISK_SCOPE, &mut params));
    }
    let rows = conn.query(
        &format!(
            "SELECT {RISK_COLS} FROM risks r WHERE {} \
             ORDER BY r.score DESC, r.next_review_on, r.id LIMIT 2000",
            parts.join(" AND ")
        ),
        &params,
    )?;
    rows.iter().map(|r| Risk::from_row(r, today)).collect()
}

/// The 5×5 matrix of `risks`: `counts[likelihood - 1][consequence - 1]`.
pub fn matrix(risks: &[Risk]) -> [[usize; 5]; 5] {
    let mut m = [[0usize; 5]; 5];
    for r in risks {
        let (l, c) = (r.likelihood - 1, r.consequence - 1);
        if (0..5).contains(&l) && (0..5).contains(&c) {
            m[l as usize][c as usize] += 1;
        }
    }
    m
}

/// A new risk, or what to change of one (a patch: only what is given).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskInput {
    /// The node the risk belongs to (where the caller may manage risks); fixed once created.
    pub node_id: Option<Uuid>,
    /// flood, fire, gas, structural, public_health, geological, traffic, other
    pub risk_type: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// 1–5
    pub likelihood: Option<i64>,
    /// 1–5
    pub consequence: Option<i64>,
    /// The measures in place.
    pub controls: Option<String>,
    /// An account holding a grant inside the node's subtree.
    pub owner_user_id: Option<Uuid>,
    /// WGS-84 longitude (with `lat`).
    pub lon: Option<f64>,
    /// WGS-84 latitude (with `lon`).
    pub lat: Option<f64>,
    /// Where, in words (河道沿线, 3号楼地下车库 …).
    pub place_label: Option<String>,
    /// `YYYY-MM-DD`; at most `risks.max_review_months` months after the last review (or today).
    pub next_review_on: Option<String>,
    /// In a patch: active or retired.
    pub status: Option<String>,
}

fn text(raw: Option<&str>, field: &'static str, max: usize, required: bool) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() && required {
        return Err(bad("value.required", field));
    }
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

fn score_part(v: Option<i64>, field: &'static str) -> Result<i64> {
    match v {
        None => Err(bad("value.required", field)),
        Some(n) if (1..=5).contains(&n) => Ok(n),
        Some(_) => Err(bad("risk.score_range", field)),
    }
}

fn risk_type(raw: Option<&str>) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(bad("value.required", "risk_type"));
    }
    if !RISK_TYPES.iter().any(|(c, ..)| *c == s) {
        return Err(bad("value.invalid", "risk_type"));
    }
    Ok(s.to_owned())
}

fn position(lon: Option<f64>, lat: Option<f64>) -> Result<(Option<f64>, Option<f64>)> {
    match (lon, lat) {
        (None, None) => Ok((None, None)),
        (Some(x), Some(y)) => {
            if !x.is_finite() || !(-180.0..=180.0).contains(&x) {
                return Err(bad("value.invalid", "lon"));
            }
            if !y.is_finite() || !(-90.0..=90.0).contains(&y) {
                return Err(bad("value.invalid", "lat"));
            }
            Ok((Some(x), Some(y)))
        }
        (Some(_), None) => Err(bad("value.required", "lat")),
        (None, Some(_)) => Err(bad("value.required", "lon")),
    }
}

/// The latest next-review date allowed when the last review (or creation) was on `from`.
pub fn latest_review(from: NaiveDate, max_months: u32) -> NaiveDate {
    from.checked_add_months(Months::new(max_months))
        .unwrap_or(from)
}

/// The next review date from input: default `from` + max months; never later, never before
/// `today`.
fn next_review(
    raw: Option<&str>,
    from: NaiveDate,
    today: NaiveDate,
    max_months: u32,
) -> Result<NaiveDate> {
    let latest = latest_review(from, max_months);
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(latest);
    };
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| bad("value.invalid", "next_review_on"))?;
    if d > latest {
        return Err(bad("risk.review_too_late", "next_review_on"));
    }
    if d < today {
        return Err(bad("risk.review_in_past", "next_review_on"));
    }
    Ok(d)
}

/// `owner` holds a grant valid now inside `node`'s subtree.
fn check_owner(conn: &mut dyn Conn, node: Uuid, owner: Uuid, now: DateTime<Utc>) -> Result<()> {
    if holders(conn, node, now)?.iter().any(|h| h.user_id == owner) {
        Ok(())
    } else {
        Err(bad("risk.owner_out_of_scope", "owner_user_id"))
    }
}

/// Accounts that may own a risk of `node` (for the form).
pub fn owner_options(
    conn: &mut dyn Conn,
    node: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, String)>> {
    Ok(holders(conn, node, now)?
        .into_iter()
        .map(|h| (h.user_id, h.label))
        .collect())
}

/// Nodes where the caller may create risks: its ManageRisks grant nodes and their subtrees
/// (communities and streets), by name; at most 500.
pub fn risk_nodes(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let reach = caller.reach(Permission::ManageRisks);
    let mut params = Vec::new();
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
        &format!(
            "SELECT n.id, n.name FROM nodes n WHERE n.status = 'active' \
             AND n.level IN ('street', 'community') AND {pred} ORDER BY n.name LIMIT 500"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| Ok((r.get("id")?, r.get("name")?)))
        .collect()
}

/// Create a risk at a node where the caller may manage risks.
pub fn create(tx: &mut Tx, caller: &Caller, input: &RiskInput, max_months: u32) -> Result<Risk> {
    let now = tx.now();
    let today = local_day(now);
    let node = input
        .node_id
        .ok_or_else(|| bad("value.required", "node_id"))?;
    let active = tx.conn().query_i64(
        "SELECT count(*) FROM nodes WHERE id = $1 AND status = 'active'",
        &params![node],
    )? > 0;
    if !active
        || !caller
            .reach(Permission::ManageRisks)
            .contains_node(tx.conn(), node)?
    {
        return Err(bad("record.reference_invalid", "node_id"));
    }
    let rtype = risk_type(input.risk_type.as_deref())?;
    let title = text(input.title.as_deref(), "title", TITLE_MAX, true)?;
    let description = text(input.description.as_deref(), "description", TEXT_MAX, false)?;
    let likelihood = score_part(input.likelihood, "likelihood")?;
    let consequence = score_part(input.consequence, "consequence")?;
    let controls = text(input.controls.as_deref(), "controls", TEXT_MAX, false)?;
    let owner = input
        .owner_user_id
        .ok_or_else(|| bad("value.required", "owner_user_id"))?;
    check_owner(tx.conn(), node, owner, now)?;
    let (lon, lat) = position(input.lon, input.lat)?;
    let place_label = text(
        input.place_label.as_deref(),
        "place_label",
        LABEL_MAX,
        false,
    )?;
    let next = next_review(input.next_review_on.as_deref(), today, today, max_months)?;
    if input.status.as_deref().is_some_and(|s| s != "active") {
        return Err(bad("value.invalid", "status"));
    }
    let score = likelihood * consequence;
    let id = tx.new_id();
    tx.insert(
        "risks",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("risk_type", rtype.into()),
            ("title", title.into()),
            ("description", description.into()),
            ("likelihood", likelihood.into()),
            ("consequence", consequence.into()),
            ("score", score.into()),
            ("level", level_of(score).into()),
            ("controls", controls.into()),
            ("owner_user_id", owner.into()),
            ("lon", lon.into()),
            ("lat", lat.into()),
            ("place_label", place_label.into()),
            ("status", "active".into()),
            ("next_review_on", next.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load(tx.conn(), &all(), id, today)
}

/// Change what is given of a risk (re-scoring it sets the level; the next review date stays
/// within the allowed months of the last review).
pub fn edit(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: &RiskInput,
    max_months: u32,
) -> Result<Risk> {
    let now = tx.now();
    let today = local_day(now);
    let risk = get(tx.conn(), caller, id, now)?;
    check_write(tx.conn(), caller, &risk)?;
    if patch.node_id.is_some_and(|n| n != risk.node_id) {
        return Err(bad("risk.node_fixed", "node_id"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if patch.risk_type.is_some() {
        cols.push(("risk_type", risk_type(patch.risk_type.as_deref())?.into()));
    }
    if patch.title.is_some() {
        cols.push((
            "title",
            text(patch.title.as_deref(), "title", TITLE_MAX, true)?.into(),
        ));
    }
    if patch.description.is_some() {
        cols.push((
            "description",
            text(patch.description.as_deref(), "description", TEXT_MAX, false)?.into(),
        ));
    }
    if patch.controls.is_some() {
        cols.push((
            "controls",
            text(patch.controls.as_deref(), "controls", TEXT_MAX, false)?.into(),
        ));
    }
    let likelihood = match patch.likelihood {
        Some(_) => score_part(patch.likelihood, "likelihood")?,
        None => risk.likelihood,
    };
    let consequence = match patch.consequence {
        Some(_) => score_part(patch.consequence, "consequence")?,
        None => risk.consequence,
    };
    if patch.likelihood.is_some() || patch.consequence.is_some() {
        let score = likelihood * consequence;
        cols.push(("likelihood", likelihood.into()));
        cols.push(("consequence", consequence.into()));
        cols.push(("score", score.into()));
        cols.push(("level", level_of(score).into()));
    }
    if let Some(owner) = patch.owner_user_id {
        check_owner(tx.conn(), risk.node_id, owner, now)?;
        cols.push(("owner_user_id", owner.into()));
    }
    if patch.lon.is_some() || patch.lat.is_some() {
        let (lon, lat) = position(patch.lon, patch.lat)?;
        cols.push(("lon", lon.into()));
        cols.push(("lat", lat.into()));
    }
    if patch.place_label.is_some() {
        cols.push((
            "place_label",
            text(
                patch.place_label.as_deref(),
                "place_label",
                LABEL_MAX,
                false,
            )?
            .into(),
        ));
    }
    if patch.next_review_on.is_some() {
        let from = local_day(risk.last_reviewed_at.unwrap_or(risk.created_at));
        let d = next_review(patch.next_review_on.as_deref(), from, today, max_months)?;
        cols.push(("next_review_on", d.into()));
    }
    if let Some(s) = patch.status.as_deref() {
        if !matches!(s, "active" | "retired") {
            return Err(bad("value.invalid", "status"));
        }
        cols.push(("status", s.into()));
    }
    cols.push(("updated_at", now.into()));
    tx.update("risks", id, &cols)?;
    load(tx.conn(), &all(), id, today)
}

/// A review: the scores found now (the risk's current ones when not given), a note, and the next
/// review date (default: max months from today).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskReviewInput {
    /// 1–5
    pub likelihood: Option<i64>,
    /// 1–5
    pub consequence: Option<i64>,
    /// What was checked and found.
    pub note: Option<String>,
    /// `YYYY-MM-DD`, at most `risks.max_review_months` months from today.
    pub next_review_on: Option<String>,
}

/// Record a review of a risk; re-scores it and sets its next review date.
pub fn review(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    input: &RiskReviewInput,
    max_months: u32,
) -> Result<(Risk, RiskReview)> {
    let now = tx.now();
    let today = local_day(now);
    let risk = get(tx.conn(), caller, id, now)?;
    check_write(tx.conn(), caller, &risk)?;
    if risk.status != "active" {
        return Err(StoreError::Conflict {
            code: "risk.retired",
            detail: "a retired risk is not reviewed".into(),
        });
    }
    let likelihood = match input.likelihood {
        Some(_) => score_part(input.likelihood, "likelihood")?,
        None => risk.likelihood,
    };
    let consequence = match input.consequence {
        Some(_) => score_part(input.consequence, "consequence")?,
        None => risk.consequence,
    };
    let note = text(input.note.as_deref(), "note", TEXT_MAX, false)?;
    let next = next_review(input.next_review_on.as_deref(), today, today, max_months)?;
    let score = likelihood * consequence;
    let rid = tx.new_id();
    tx.insert(
        "risk_reviews",
        &[
            ("id", rid.into()),
            ("risk_id", id.into()),
            ("node_id", risk.node_id.into()),
            ("reviewed_by", caller.user_id.into()),
            ("reviewed_at", now.into()),
            ("likelihood", likelihood.into()),
            ("consequence", consequence.into()),
            ("score", score.into()),
            ("level", level_of(score).into()),
            ("note", note.into()),
            ("next_review_on", next.into()),
            ("created_at", now.into()),
        ],
    )?;
    tx.update(
        "risks",
        id,
        &[
            ("likelihood", likelihood.into()),
            ("consequence", consequence.into()),
            ("score", score.into()),
            ("level", level_of(score).into()),
            ("last_reviewed_at", now.into()),
            ("next_review_on", next.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let risk = load(tx.conn(), &all(), id, today)?;
    let rev = reviews(tx.conn(), caller, id, now)?
        .into_iter()
        .find(|r| r.id == rid)
        .ok_or(StoreError::NotFound)?;
    Ok((risk, rev))
}

/// A risk's reviews, newest first.
pub fn reviews(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<RiskReview>> {
    get(conn, caller, id, now)?;
    conn.query(
        "SELECT v.*, u.username, u.display_name FROM risk_reviews v \
         LEFT JOIN users u ON u.id = v.reviewed_by WHERE v.risk_id = $1 \
         ORDER BY v.reviewed_at DESC, v.id DESC LIMIT 500",
        &params![id],
    )?
    .iter()
    .map(RiskReview::from_row)
    .collect()
}

// ---- reminders --------------------------------------------------------------------------------

/// A reminder owed to a risk's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub risk_id: Uuid,
    /// due_soon or overdue
    pub kind: &'static str,
    pub due_on: NaiveDate,
    pub owner_user_id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub title: String,
}

/// Reminders owed at `now`: for each active risk, `due_soon` when its review is due within
/// `days_before` days, `overdue` once it has passed; none already recorded for that review date.
pub fn due_reminders(
    conn: &mut dyn Conn,
    now: DateTime<Utc>,
    days_before: u32,
    limit: i64,
) -> Result<Vec<Reminder>> {
    let today = local_day(now);
    let soon = today + chrono::Days::new(u64::from(days_before));
    let rows = conn.query(
        "SELECT r.id, r.owner_user_id, r.node_id, r.title, r.next_review_on, \
         (SELECT n.name FROM nodes n WHERE n.id = r.node_id) AS node_name, \
         CASE WHEN r.next_review_on < $1 THEN 'overdue' ELSE 'due_soon' END AS kind \
         FROM risks r WHERE r.status = 'active' AND r.next_review_on <= $2 \
         AND NOT EXISTS (SELECT 1 FROM risk_reminders m WHERE m.risk_id = r.id \
           AND m.due_on = r.next_review_on \
           AND m.kind = CASE WHEN r.next_review_on < $1 THEN 'overdue' ELSE 'due_soon' END) \
         ORDER BY r.next_review_on, r.id LIMIT $3",
        &params![today, soon, limit],
    )?;
    rows.iter()
        .map(|r| {
            let kind: String = r.get("kind")?;
            Ok(Reminder {
                risk_id: r.get("id")?,
                kind: if kind == "overdue" {
                    "overdue"
                } else {
                    "due_soon"
                },
                due_on: r.get("next_review_on")?,
                owner_user_id: r.get("owner_user_id")?,
                node_id: r.get("node_id")?,
                node_name: r.get::<Option<String>>("node_name")?.unwrap_or_default(),
                title: r.get("title")?,
            })
        })
        .collect()
}

/// Record that `reminders` were sent (a second record of the same one is ignored); returns how
/// many were new.
pub fn record_reminders(tx: &mut Tx, reminders: &[Reminder]) -> Result<usize> {
    let mut n = 0;
    let now = tx.now();
    for r in reminders {
        let id = tx.new_id();
        n += tx.execute_unlogged(
            "INSERT INTO risk_reminders (id, risk_id, kind, due_on, owner_user_id, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &params![id, r.risk_id, r.kind, r.due_on, r.owner_user_id, now],
        )? as usize;
    }
    Ok(n)
}

/// The owner's duty phone at the risk's node (or any node), opened, with its mask.
pub fn owner_phone(
    conn: &mut dyn Conn,
    env: &crate::Env,
    owner: Uuid,
    node: Uuid,
) -> Result<Option<(String, String)>> {
    let duty = conn.query_one(
        "SELECT phone_ct, phone_mask FROM duties WHERE user_id = $1 AND phone_ct IS NOT NULL \
         ORDER BY CASE WHEN node_id = $2 THEN 0 ELSE 1 END, updated_at DESC LIMIT 1",
        &params![owner, node],
    )?;
    match duty {
        Some(d) => {
            let ct: Vec<u8> = d.get("phone_ct")?;
            let mask: String = d.get("phone_mask")?;
            Ok(Some((
                env.keys.open_string(conn, "duties.phone", &ct)?,
                mask,
            )))
        }
        None => Ok(None),
    }
}

/// Reminders sent for a risk: (kind, review date), oldest first.
pub fn reminders_of(conn: &mut dyn Conn, risk: Uuid) -> Result<Vec<(String, NaiveDate)>> {
    conn.query(
        "SELECT kind, due_on FROM risk_reminders WHERE risk_id = $1 ORDER BY sent_at, kind",
        &params![risk],
    )?
    .iter()
    .map(|r| Ok((r.get("kind")?, r.get("due_on")?)))
    .collect()
}

/// The subtree of a node (for the map's filter by node).
pub fn nodes_below(conn: &mut dyn Conn, node: Uuid) -> Result<Vec<Uuid>> {
    subtree(conn, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banding_covers_the_matrix() {
        let mut seen = std::collections::BTreeMap::new();
        for l in 1..=5 {
            for c in 1..=5 {
                let s: i64 = l * c;
                *seen.entry(level_of(s)).or_insert(0) += 1;
            }
        }
        assert_eq!(level_of(4), "low");
        assert_eq!(level_of(5), "medium");
        assert_eq!(level_of(9), "medium");
        assert_eq!(level_of(10), "high");
        assert_eq!(level_of(16), "high");
        assert_eq!(level_of(20), "extreme");
        assert_eq!(level_of(25), "extreme");
        // Cells per level of the 5×5 matrix.
        assert_eq!(seen["low"], 8);
        assert_eq!(seen["medium"], 7);
        assert_eq!(seen["high"], 7);
        assert_eq!(seen["extreme"], 3);
    }

    #[test]
    fn the_latest_review_date() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(latest_review(d(2026, 12, 3), 6), d(2027, 6, 3));
        // Month ends clamp.
        assert_eq!(latest_review(d(2026, 8, 31), 6), d(2027, 2, 28));
        let today = d(2026, 12, 3);
        assert_eq!(next_review(None, today, today, 6).unwrap(), d(2027, 6, 3));
        assert!(matches!(
            next_review(Some("2027-06-04"), today, today, 6),
            Err(StoreError::Invalid {
                code: "risk.review_too_late",
                ..
            })
        ));
        assert!(matches!(
            next_review(Some("2026-12-02"), today, today, 6),
            Err(StoreError::Invalid {
                code: "risk.review_in_past",
                ..
            })
        ));
    }
}
