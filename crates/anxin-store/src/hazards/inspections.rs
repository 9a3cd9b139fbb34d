//! Inspections (巡检) (owner: inspections): checklist templates, schedules, the worker's to-do
//! list and carrying out an inspection.
//!
//! - **Templates**: a checklist of items, each with an answer type (pass/fail, a number within
//!   bounds, one of some options, free text), a photo rule and the grade a failed answer
//!   proposes. The platform ships five (`gas_household` with its 12 indicators, `fire_exit`,
//!   `elevator`, `drain`, `shelter`; migration 0014): read-only to everyone. A node's own
//!   templates are made, edited and retired by whoever holds `ManageInspections` there; items
//!   already answered cannot be removed (answers copy the item's text, so later edits do not
//!   rewrite history).
//! - **Schedules**: every target of the template's kind within a node (or one target) is to be
//!   inspected once per period (day, ISO week, month, quarter, local time Asia/Shanghai). The
//!   period an inspection counts for is `period_key` (`2026-12-03`, `2026-W49`, `2026-12`,
//!   `2026-Q4`) of the day it was done. The assignee is a named user or, when none is named,
//!   the grid worker of the target's grid (community staff when the grid has none, or the
//!   target has no grid).
//! - **To-do**: for the signed-in worker, the targets due in the current period and not yet
//!   inspected; *overdue* ones are those whose previous period ended without an inspection and
//!   that have had none since.
//! - **Carrying out**: start for a target (a schedule covering it is found when none is named),
//!   answer items, add photos, finish. Finishing checks every item is answered and every photo
//!   the rules ask for is there; then each failed answer reports a hazard through
//!   [`crate::hazards::ledger::report`] in the same transaction, its photos as evidence, and
//!   the answer is linked to it. A refused finish writes nothing.
//!
//! Scope: templates and schedules are seen where the caller holds `Inspect` or
//! `ManageInspections` (a node's templates by node grants only); inspections by node grants
//! over their community or a grid grant on their grid. A record outside is `NotFound`.

use std::collections::{HashMap, HashSet};

use anxin_domain::hazard::{
    AnswerType, GradeRule, HazardGrade, HazardSource, Period, PhotoRule, PlaceKind,
};
use anxin_domain::roles::Permission;
use anxin_domain::SHANGHAI;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::hazards::attachments::{self, Attachment};
use crate::hazards::ledger::{self, NewHazard};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

const NAME_MAX: usize = 80;
const TEXT_MAX: usize = 200;
const GUIDANCE_MAX: usize = 1000;
const DESCRIPTION_MAX: usize = 2000;
const NOTE_MAX: usize = 500;
const ANSWER_MAX: usize = 500;
const ITEMS_MAX: usize = 100;
const CODE_MAX: usize = 40;

const INSPECTION_COLS: ScopeCols<'static> = ScopeCols {
    node: "i.node_id",
    grid: Some("i.grid_id"),
    household: None,
};
const TEMPLATE_COLS: ScopeCols<'static> = ScopeCols {
    node: "t.node_id",
    grid: None,
    household: None,
};
const SCHEDULE_COLS: ScopeCols<'static> = ScopeCols {
    node: "s.node_id",
    grid: None,
    household: None,
};

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

fn conflict(code: &'static str, detail: &str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: detail.to_owned(),
    }
}

/// Where the caller reads templates, schedules and inspections.
fn read_reach(caller: &Caller) -> Reach {
    let mut r = caller.reach(Permission::Inspect);
    r.merge(caller.reach(Permission::ManageInspections));
    r
}

/// A stored target kind (the schema's CHECK keeps it one of the four).
fn place_kind(s: &str) -> Result<PlaceKind> {
    s.parse()
        .map_err(|_| StoreError::Backend(format!("unknown target kind {s}")))
}

fn all_reach() -> Reach {
    Reach {
        all: true,
        ..Reach::default()
    }
}

/// A required, trimmed, single-line text of at most `max` characters.
fn required_text(v: Option<&str>, field: &str, max: usize) -> Result<String> {
    let s = v.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(bad("value.required", field));
    }
    checked_text(s, field, max, false)
}

fn checked_text(s: &str, field: &str, max: usize, multiline: bool) -> Result<String> {
    let s = s.trim();
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    if s.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')))
    {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent (PATCH semantics).
fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Periods.

/// The local (Asia/Shanghai) date of an instant.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&SHANGHAI).date_naive()
}

/// The first day of the period containing `d`.
pub fn period_start(p: Period, d: NaiveDate) -> NaiveDate {
    match p {
        Period::Daily => d,
        Period::Weekly => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Period::Monthly => d.with_day(1).unwrap_or(d),
        Period::Quarterly => {
            let m = (d.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(d.year(), m, 1).unwrap_or(d)
        }
    }
}

/// The key of the period containing `d` (see [`Period`]): `2026-12-03`, `2026-W49` (ISO week
/// and its ISO year), `2026-12`, `2026-Q4`.
pub fn period_key(p: Period, d: NaiveDate) -> String {
    match p {
        Period::Daily => d.format("%Y-%m-%d").to_string(),
        Period::Weekly => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Period::Monthly => d.format("%Y-%m").to_string(),
        Period::Quarterly => format!("{}-Q{}", d.year(), d.month0() / 3 + 1),
    }
}

/// The last day of the period before the one containing `d`.
pub fn previous_period_end(p: Period, d: NaiveDate) -> NaiveDate {
    period_start(p, d) - Duration::days(1)
}

// ---------------------------------------------------------------------------------------------
// Templates.

/// A checklist item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: Uuid,
    pub position: i64,
    /// Stable key within the template (pipe_corrosion, …).
    pub code: String,
    pub text: String,
    /// What to look for, shown under the item.
    pub guidance: String,
    /// pass_fail, number, choice, text
    pub answer_type: String,
    /// choice: {"options": [..], "failing": [..]}; number: {"min": x, "max": y, "unit": ".."}.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub answer_spec: serde_json::Value,
    /// none, optional, on_fail, required
    pub photo: String,
    /// minor, major: the grade a failed answer proposes.
    pub fail_grade: String,
}

impl Item {
    fn from_row(r: &Row) -> Result<Self> {
        let spec: String = r.get("answer_spec")?;
        Ok(Self {
            id: r.get("id")?,
            position: r.get("position")?,
            code: r.get("code")?,
            text: r.get("text")?,
            guidance: r.get("guidance")?,
            answer_type: r.get("answer_type")?,
            answer_spec: serde_json::from_str(&spec).unwrap_or_else(|_| serde_json::json!({})),
            photo: r.get("photo")?,
            fail_grade: r.get("fail_grade")?,
        })
    }

    fn answer_type(&self) -> AnswerType {
        self.answer_type.parse().unwrap_or(AnswerType::Text)
    }

    fn photo_rule(&self) -> PhotoRule {
        self.photo.parse().unwrap_or(PhotoRule::Optional)
    }

    fn fail_grade(&self) -> HazardGrade {
        self.fail_grade.parse().unwrap_or(HazardGrade::Minor)
    }
}

/// A checklist template with its items in order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub id: Uuid,
    /// The node whose template it is; null for the templates the platform ships.
    pub node_id: Option<Uuid>,
    pub node_name: Option<String>,
    /// The shipped templates' code (gas_household, fire_exit, elevator, drain, shelter).
    pub code: Option<String>,
    pub name: String,
    /// dwelling, building, facility, node
    pub target_kind: String,
    /// For facility templates, the facility kind it applies to.
    pub facility_kind: Option<String>,
    pub description: String,
    /// active, retired
    pub status: String,
    /// Shipped with the platform: read-only.
    pub shipped: bool,
    pub items: Vec<Item>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Template {
    fn from_row(r: &Row) -> Result<Self> {
        let node_id: Option<Uuid> = r.get("node_id")?;
        Ok(Self {
            id: r.get("id")?,
            node_id,
            node_name: r.get("node_name")?,
            code: r.get("code")?,
            name: r.get("name")?,
            target_kind: r.get("target_kind")?,
            facility_kind: r.get("facility_kind")?,
            description: r.get("description")?,
            status: r.get("status")?,
            shipped: node_id.is_none(),
            items: Vec::new(),
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A template to create, or the fields to change (PATCH: absent fields stay). `items`, when
/// given, is the whole list in order: items are matched by `code`; new codes are added, missing
/// ones removed (refused once answered: `template.item_in_use`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// The node whose template it is (create only).
    pub node_id: Option<Uuid>,
    pub name: Option<String>,
    /// dwelling, building, facility, node (create only).
    pub target_kind: Option<String>,
    /// For facility templates: the facility kind (shelter, …) (create only).
    pub facility_kind: Option<String>,
    pub description: Option<String>,
    /// active, retired (edit only).
    pub status: Option<String>,
    pub items: Option<Vec<ItemInput>>,
}

/// One checklist item of a [`TemplateInput`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    /// Stable key: lowercase letters, digits and `_`, up to 40.
    pub code: Option<String>,
    pub text: Option<String>,
    pub guidance: Option<String>,
    /// pass_fail (default), number, choice, text
    pub answer_type: Option<String>,
    /// choice: {"options": [..], "failing": [..]}; number: {"min": x, "max": y, "unit": ".."}.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub answer_spec: Option<serde_json::Value>,
    /// none, optional, on_fail (default), required
    pub photo: Option<String>,
    /// minor (default), major
    pub fail_grade: Option<String>,
}

/// An item checked and normalised.
struct NewItem {
    code: String,
    text: String,
    guidance: String,
    answer_type: AnswerType,
    spec: serde_json::Value,
    photo: PhotoRule,
    fail_grade: HazardGrade,
}

fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= CODE_MAX
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn parse_spec(
    t: AnswerType,
    spec: Option<&serde_json::Value>,
    f: &str,
) -> Result<serde_json::Value> {
    let field = format!("{f}.answer_spec");
    let empty = serde_json::json!({});
    let spec = spec.unwrap_or(&empty);
    if !spec.is_object() {
        return Err(bad("value.invalid", field));
    }
    match t {
        AnswerType::PassFail | AnswerType::Text => Ok(serde_json::json!({})),
        AnswerType::Number => {
            let num = |k: &str| -> Result<Option<f64>> {
                match spec.get(k) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .filter(|x| x.is_finite())
                        .map(Some)
                        .ok_or_else(|| bad("value.invalid", format!("{field}.{k}"))),
                }
            };
            let (min, max) = (num("min")?, num("max")?);
            if min.is_none() && max.is_none() {
                return Err(bad("inspection.spec_bounds", field));
            }
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    return Err(bad("inspection.spec_bounds", field));
                }
            }
            let unit = match spec.get("unit") {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(u)) => {
                    checked_text(u, &format!("{field}.unit"), 10, false)?
                }
                Some(_) => return Err(bad("value.invalid", format!("{field}.unit"))),
            };
            Ok(serde_json::json!({ "min": min, "max": max, "unit": unit }))
        }
        AnswerType::Choice => {
            let list = |k: &str| -> Result<Vec<String>> {
                match spec.get(k) {
                    None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                    Some(serde_json::Value::Array(a)) => a
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let fld = format!("{field}.{k}[{i}]");
                            match v.as_str().map(str::trim) {
                                Some(s) if !s.is_empty() => checked_text(s, &fld, TEXT_MAX, false),
                                _ => Err(bad("value.invalid", fld)),
                            }
                        })
                        .collect(),
                    Some(_) => Err(bad("value.invalid", format!("{field}.{k}"))),
                }
            };
            let options = list("options")?;
            let failing = list("failing")?;
            if options.len() < 2 {
                return Err(bad("inspection.spec_options", format!("{field}.options")));
            }
            let unique: HashSet<&String> = options.iter().collect();
            if unique.len() != options.len() {
                return Err(bad("inspection.spec_options", format!("{field}.options")));
            }
            if let Some(i) = failing.iter().position(|f| !options.contains(f)) {
                return Err(bad(
                    "inspection.spec_failing",
                    format!("{field}.failing[{i}]"),
                ));
            }
            Ok(serde_json::json!({ "options": options, "failing": failing }))
        }
    }
}

fn parse_items(items: &[ItemInput]) -> Result<Vec<NewItem>> {
    if items.is_empty() {
        return Err(bad("inspection.items_empty", "items"));
    }
    if items.len() > ITEMS_MAX {
        return Err(bad("value.too_long", "items"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let f = format!("items[{i}]");
        let code = it.code.as_deref().map(str::trim).unwrap_or_default();
        if code.is_empty() {
            return Err(bad("value.required", format!("{f}.code")));
        }
        if !valid_code(code) {
            return Err(bad("inspection.item_code", format!("{f}.code")));
        }
        if !seen.insert(code.to_owned()) {
            return Err(bad("inspection.item_duplicate", format!("{f}.code")));
        }
        let text = required_text(it.text.as_deref(), &format!("{f}.text"), TEXT_MAX)?;
        let guidance = checked_text(
            it.guidance.as_deref().unwrap_or_default(),
            &format!("{f}.guidance"),
            GUIDANCE_MAX,
            true,
        )?;
        let answer_type: AnswerType = match it.answer_type.as_deref().map(str::trim) {
            None | Some("") => AnswerType::PassFail,
            Some(s) => s
                .parse()
                .map_err(|_| bad("value.invalid", format!("{f}.answer_type")))?,
        };
        let spec = parse_spec(answer_type, it.answer_spec.as_ref(), &f)?;
        let photo: PhotoRule = match it.photo.as_deref().map(str::trim) {
            None | Some("") => PhotoRule::OnFail,
            Some(s) => s
                .parse()
                .map_err(|_| bad("value.invalid", format!("{f}.photo")))?,
        };
        let fail_grade: HazardGrade = match it.fail_grade.as_deref().map(str::trim) {
            None | Some("") => HazardGrade::Minor,
            Some(s) => s
                .parse()
                .map_err(|_| bad("value.invalid", format!("{f}.fail_grade")))?,
        };
        out.push(NewItem {
            code: code.to_owned(),
            text,
            guidance,
            answer_type,
            spec,
            photo,
            fail_grade,
        });
    }
    Ok(out)
}

/// Query of the template list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// active, retired
    pub status: Option<String>,
    /// dwelling, building, facility, node
    pub target_kind: Option<String>,
}

const TEMPLATE_SELECT: &str = "SELECT t.id, t.node_id, n.name AS node_name, t.code, t.name, \
    t.target_kind, t.facility_kind, t.description, t.status, t.created_at, t.updated_at \
    FROM inspection_templates t LEFT JOIN nodes n ON n.id = t.node_id";

fn with_items(conn: &mut dyn Conn, mut ts: Vec<Template>) -> Result<Vec<Template>> {
    if ts.is_empty() {
        return Ok(ts);
    }
    let ids = serde_json::json!(ts.iter().map(|t| t.id.to_string()).collect::<Vec<_>>());
    let rows = conn.query(
        &format!(
            "SELECT id, template_id, position, code, text, guidance, answer_type, answer_spec, \
             photo, fail_grade FROM inspection_items WHERE {} ORDER BY template_id, position",
            conn.dialect().in_json_list("template_id", 1)
        ),
        &[Value::Json(ids)],
    )?;
    let mut by: HashMap<Uuid, Vec<Item>> = HashMap::new();
    for r in &rows {
        by.entry(r.get("template_id")?)
            .or_default()
            .push(Item::from_row(r)?);
    }
    for t in &mut ts {
        t.items = by.remove(&t.id).unwrap_or_default();
    }
    Ok(ts)
}

/// Load a template the caller sees (shipped ones: anyone who inspects or manages).
fn load_template(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Template> {
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), TEMPLATE_COLS, &mut params);
    let shipped = if reach.is_empty() {
        ""
    } else {
        "t.node_id IS NULL OR "
    };
    let r = conn
        .query_one(
            &format!("{TEMPLATE_SELECT} WHERE t.id = $1 AND ({shipped}{pred})"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let t = Template::from_row(&r)?;
    Ok(with_items(conn, vec![t])?.remove(0))
}

/// A template the caller sees.
pub fn get_template(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Template> {
    load_template(conn, &read_reach(caller), id)
}

/// Templates the caller sees: the shipped ones and those of nodes within reach, by name.
pub fn list_templates(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &TemplateQuery,
) -> Result<Vec<Template>> {
    let reach = read_reach(caller);
    if reach.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = Vec::new();
    let pred = reach.predicate(conn.dialect(), TEMPLATE_COLS, &mut params);
    let mut sql = format!("{TEMPLATE_SELECT} WHERE (t.node_id IS NULL OR {pred})");
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if s != "active" && s != "retired" {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        sql.push_str(&format!(" AND t.status = ${}", params.len()));
    }
    if let Some(k) = q.target_kind.as_deref().filter(|s| !s.is_empty()) {
        let k: PlaceKind = k.parse().map_err(|_| bad("value.invalid", "target_kind"))?;
        params.push(k.as_str().into());
        sql.push_str(&format!(" AND t.target_kind = ${}", params.len()));
    }
    sql.push_str(" ORDER BY (CASE WHEN t.node_id IS NULL THEN 0 ELSE 1 END), t.name, t.id");
    let ts = conn
        .query(&sql, &params)?
        .iter()
        .map(Template::from_row)
        .collect::<Result<Vec<_>>>()?;
    with_items(conn, ts)
}

fn insert_items(tx: &mut Tx<'_>, template: Uuid, items: &[NewItem]) -> Result<()> {
    let now = tx.now();
    for (i, it) in items.iter().enumerate() {
        let id = tx.new_id();
        tx.insert(
            "inspection_items",
            &[
                ("id", id.into()),
                ("template_id", template.into()),
                ("position", i64::try_from(i + 1).unwrap_or(i64::MAX).into()),
                ("code", it.code.as_str().into()),
                ("text", it.text.as_str().into()),
                ("guidance", it.guidance.as_str().into()),
                ("answer_type", it.answer_type.as_str().into()),
                ("answer_spec", it.spec.to_string().into()),
                ("photo", it.photo.as_str().into()),
                ("fail_grade", it.fail_grade.as_str().into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )?;
    }
    Ok(())
}

/// Create a node's template (needs `ManageInspections` over the node).
pub fn create_template(tx: &mut Tx<'_>, caller: &Caller, i: &TemplateInput) -> Result<Template> {
    let node = i.node_id.ok_or_else(|| bad("value.required", "node_id"))?;
    let name = required_text(i.name.as_deref(), "name", NAME_MAX)?;
    let kind: PlaceKind = match i.target_kind.as_deref().map(str::trim) {
        None | Some("") => return Err(bad("value.required", "target_kind")),
        Some(k) => k.parse().map_err(|_| bad("value.invalid", "target_kind"))?,
    };
    let facility_kind = match i.facility_kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) if kind != PlaceKind::Facility => {
            return Err(bad("inspection.facility_kind", "facility_kind"))
        }
        Some(k) => Some(
            k.parse::<anxin_domain::FacilityKind>()
                .map_err(|_| bad("value.invalid", "facility_kind"))?
                .as_str()
                .to_owned(),
        ),
    };
    let description = checked_text(
        i.description.as_deref().unwrap_or_default(),
        "description",
        DESCRIPTION_MAX,
        true,
    )?;
    if i.status.is_some() {
        return Err(bad("value.invalid", "status"));
    }
    let items = parse_items(i.items.as_deref().unwrap_or_default())?;
    if !caller.is_system()
        && !caller
            .reach(Permission::ManageInspections)
            .contains_node(tx.conn(), node)?
    {
        return Err(StoreError::NotFound);
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "inspection_templates",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("name", name.into()),
            ("target_kind", kind.as_str().into()),
            ("facility_kind", facility_kind.into()),
            ("description", description.into()),
            ("status", "active".into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    insert_items(tx, id, &items)?;
    load_template(tx.conn(), &all_reach(), id)
}

/// Edit a node's template: name, description, status (retire / reactivate) and items. Shipped
/// templates are read-only (`template.shipped`, 403).
pub fn edit_template(
    tx: &mut Tx<'_>,
    caller: &Caller,
    id: Uuid,
    i: &TemplateInput,
) -> Result<Template> {
    let t = load_template(tx.conn(), &read_reach(caller), id)?;
    let Some(node) = t.node_id else {
        return Err(StoreError::Forbidden("template.shipped"));
    };
    if !caller.is_system()
        && !caller
            .reach(Permission::ManageInspections)
            .contains_node(tx.conn(), node)?
    {
        return Err(StoreError::NotFound);
    }
    if i.node_id.is_some_and(|n| n != node) {
        return Err(bad("inspection.immutable", "node_id"));
    }
    if i.target_kind.as_deref().is_some_and(|k| k != t.target_kind) {
        return Err(bad("inspection.immutable", "target_kind"));
    }
    if i.facility_kind.is_some() && i.facility_kind != t.facility_kind {
        return Err(bad("inspection.immutable", "facility_kind"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if i.name.is_some() {
        cols.push((
            "name",
            required_text(i.name.as_deref(), "name", NAME_MAX)?.into(),
        ));
    }
    if let Some(d) = &i.description {
        cols.push((
            "description",
            checked_text(d, "description", DESCRIPTION_MAX, true)?.into(),
        ));
    }
    if let Some(s) = &i.status {
        let s = s.trim();
        if s != "active" && s != "retired" {
            return Err(bad("value.invalid", "status"));
        }
        cols.push(("status", s.into()));
    }
    let items = i.items.as_deref().map(parse_items).transpose()?;
    let now = tx.now();
    if let Some(items) = items {
        let by_code: HashMap<String, Uuid> =
            t.items.iter().map(|it| (it.code.clone(), it.id)).collect();
        let keep: HashSet<&str> = items.iter().map(|it| it.code.as_str()).collect();
        for old in t.items.iter().filter(|it| !keep.contains(it.code.as_str())) {
            let used = tx.conn().query_i64(
                "SELECT count(*) FROM inspection_answers WHERE item_id = $1",
                &params![old.id],
            )?;
            if used > 0 {
                return Err(bad("template.item_in_use", format!("items.{}", old.code)));
            }
            tx.delete("inspection_items", old.id)?;
        }
        // Positions move in two steps so no two items share one in between.
        for (n, it) in items.iter().enumerate() {
            let position = i64::try_from(n + 1).unwrap_or(i64::MAX);
            match by_code.get(&it.code) {
                Some(item_id) => {
                    tx.update(
                        "inspection_items",
                        *item_id,
                        &[
                            ("position", position.into()),
                            ("text", it.text.as_str().into()),
                            ("guidance", it.guidance.as_str().into()),
                            ("answer_type", it.answer_type.as_str().into()),
                            ("answer_spec", it.spec.to_string().into()),
                            ("photo", it.photo.as_str().into()),
                            ("fail_grade", it.fail_grade.as_str().into()),
                            ("updated_at", now.into()),
                        ],
                    )?;
                }
                None => {
                    let item_id = tx.new_id();
                    tx.insert(
                        "inspection_items",
                        &[
                            ("id", item_id.into()),
                            ("template_id", id.into()),
                            ("position", position.into()),
                            ("code", it.code.as_str().into()),
                            ("text", it.text.as_str().into()),
                            ("guidance", it.guidance.as_str().into()),
                            ("answer_type", it.answer_type.as_str().into()),
                            ("answer_spec", it.spec.to_string().into()),
                            ("photo", it.photo.as_str().into()),
                            ("fail_grade", it.fail_grade.as_str().into()),
                            ("created_at", now.into()),
                            ("updated_at", now.into()),
                        ],
                    )?;
                }
            }
        }
    }
    cols.push(("updated_at", now.into()));
    tx.update("inspection_templates", id, &cols)?;
    load_template(tx.conn(), &all_reach(), id)
}

// ---------------------------------------------------------------------------------------------
// Targets.

/// A place to inspect, as the inspection records it.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: PlaceKind,
    pub id: Uuid,
    /// The community it belongs to (inspections.node_id).
    pub community: Uuid,
    /// The deepest node it hangs off (compound or community).
    pub node: Uuid,
    pub grid: Option<Uuid>,
    pub label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub facility_kind: Option<String>,
}

const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (SELECT id FROM nodes WHERE id = $1 \
     UNION ALL SELECT c.id FROM nodes c JOIN sub ON c.parent_id = sub.id) ";

/// Targets of `kind`: the one `only`, or every one under `under` (its subtree). Facility
/// targets can be limited to a facility kind.
fn find_targets(
    conn: &mut dyn Conn,
    kind: PlaceKind,
    under: Option<Uuid>,
    only: Option<Uuid>,
    facility_kind: Option<&str>,
) -> Result<Vec<Target>> {
    let mut params: Vec<Value> = Vec::new();
    let mut with = "";
    let mut conds: Vec<String> = Vec::new();
    let node_col = match kind {
        PlaceKind::Dwelling | PlaceKind::Building => "b.node_id",
        PlaceKind::Facility => "f.node_id",
        PlaceKind::Node => "n.id",
    };
    let id_col = match kind {
        PlaceKind::Dwelling => "d.id",
        PlaceKind::Building => "b.id",
        PlaceKind::Facility => "f.id",
        PlaceKind::Node => "n.id",
    };
    if let Some(u) = under {
        params.push(u.into());
        with = SUBTREE;
        conds.push(format!("{node_col} IN (SELECT id FROM sub)"));
    }
    if let Some(o) = only {
        params.push(o.into());
        conds.push(format!("{id_col} = ${}", params.len()));
    }
    if let (PlaceKind::Facility, Some(fk)) = (kind, facility_kind) {
        params.push(fk.into());
        conds.push(format!("f.kind = ${}", params.len()));
    }
    let cond = if conds.is_empty() {
        "1 = 1".to_owned()
    } else {
        conds.join(" AND ")
    };
    let sql = match kind {
        PlaceKind::Dwelling => format!(
            "{with}SELECT d.id, b.community_id AS community, b.node_id AS node, b.grid_id, \
             b.name AS bname, u.name AS uname, d.number, b.lon, b.lat, NULL AS fkind \
             FROM dwellings d JOIN buildings b ON b.id = d.building_id \
             LEFT JOIN units u ON u.id = d.unit_id WHERE {cond} ORDER BY b.name, u.name, d.number, d.id"
        ),
        PlaceKind::Building => format!(
            "{with}SELECT b.id, b.community_id AS community, b.node_id AS node, b.grid_id, \
             b.name AS bname, NULL AS uname, NULL AS number, b.lon, b.lat, NULL AS fkind \
             FROM buildings b WHERE {cond} ORDER BY b.name, b.id"
        ),
        PlaceKind::Facility => format!(
            "{with}SELECT f.id, (CASE WHEN n.level = 'compound' THEN n.parent_id ELSE n.id END) AS community, \
             f.node_id AS node, NULL AS grid_id, f.name AS bname, NULL AS uname, NULL AS number, \
             f.lon, f.lat, f.kind AS fkind FROM facilities f JOIN nodes n ON n.id = f.node_id \
             WHERE {cond} ORDER BY f.name, f.id"
        ),
        PlaceKind::Node => format!(
            "{with}SELECT n.id, (CASE WHEN n.level = 'compound' THEN n.parent_id ELSE n.id END) AS community, \
             n.id AS node, NULL AS grid_id, n.name AS bname, NULL AS uname, NULL AS number, \
             n.lon, n.lat, NULL AS fkind FROM nodes n WHERE {cond} ORDER BY n.name, n.id"
        ),
    };
    conn.query(&sql, &params)?
        .iter()
        .map(|r| {
            let b: String = r.get("bname")?;
            let u: Option<String> = r.get("uname")?;
            let n: Option<String> = r.get("number")?;
            let label = [Some(b), u, n]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Ok(Target {
                kind,
                id: r.get("id")?,
                community: r.get("community")?,
                node: r.get("node")?,
                grid: r.get("grid_id")?,
                label,
                lon: r.get("lon")?,
                lat: r.get("lat")?,
                facility_kind: r.get("fkind")?,
            })
        })
        .collect()
}

fn target(conn: &mut dyn Conn, kind: PlaceKind, id: Uuid) -> Result<Option<Target>> {
    Ok(find_targets(conn, kind, None, Some(id), None)?
        .into_iter()
        .next())
}

/// Whether `reach` covers a target: its node within a node grant, or its grid within a grid grant.
fn reaches_target(conn: &mut dyn Conn, reach: &Reach, t: &Target) -> Result<bool> {
    if t.grid.is_some_and(|g| reach.grids.contains(&g)) {
        return Ok(true);
    }
    reach.contains_node(conn, t.node)
}

fn in_subtree(conn: &mut dyn Conn, node: Uuid, root: Uuid) -> Result<bool> {
    Ok(conn.query_i64(
        &format!("{SUBTREE}SELECT count(*) FROM sub WHERE id = $2"),
        &params![root, node],
    )? > 0)
}

// ---------------------------------------------------------------------------------------------
// Schedules.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    pub id: Uuid,
    pub node_id: Uuid,
    pub node_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub name: String,
    /// dwelling, building, facility, node (the template's).
    pub target_kind: String,
    /// One target; null: every target of the kind within the node.
    pub target_id: Option<Uuid>,
    /// daily, weekly, monthly, quarterly
    pub period: String,
    /// Null: the grid worker of each target's grid.
    pub assignee_user_id: Option<Uuid>,
    pub assignee_name: Option<String>,
    pub starts_on: NaiveDate,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            node_name: r.get("node_name")?,
            template_id: r.get("template_id")?,
            template_name: r.get("template_name")?,
            name: r.get("name")?,
            target_kind: r.get("target_kind")?,
            target_id: r.get("target_id")?,
            period: r.get("period")?,
            assignee_user_id: r.get("assignee_user_id")?,
            assignee_name: r.get("assignee_name")?,
            starts_on: r.get("starts_on")?,
            active: r.get("active")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }

    fn period(&self) -> Period {
        self.period.parse().unwrap_or(Period::Weekly)
    }
}

/// A schedule to create, or the fields to change (PATCH: absent fields stay; `target_id` and
/// `assignee_user_id` may be set to null: every target, the target's grid worker).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// The node whose targets are inspected (create only).
    pub node_id: Option<Uuid>,
    /// The checklist (create only).
    pub template_id: Option<Uuid>,
    pub name: Option<String>,
    /// The template's target kind; given, it must match.
    pub target_kind: Option<String>,
    /// One target within the node; null or absent: every target of the kind within the node.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub target_id: Option<Option<Uuid>>,
    /// daily, weekly, monthly, quarterly
    pub period: Option<String>,
    /// A named user; null or absent: the grid worker of each target's grid.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub assignee_user_id: Option<Option<Uuid>>,
    /// The first day a period counts (default: today, Asia/Shanghai).
    pub starts_on: Option<NaiveDate>,
    /// false deactivates the schedule (edit only).
    pub active: Option<bool>,
}

const SCHEDULE_SELECT: &str = "SELECT s.id, s.node_id, n.name AS node_name, s.template_id, \
    t.name AS template_name, s.name, s.target_kind, s.target_id, s.period, s.assignee_user_id, \
    u.display_name AS assignee_name, s.starts_on, s.active, s.created_at, s.updated_at \
    FROM inspection_schedules s JOIN nodes n ON n.id = s.node_id \
    JOIN inspection_templates t ON t.id = s.template_id LEFT JOIN users u ON u.id = s.assignee_user_id";

fn load_schedule(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Schedule> {
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), SCHEDULE_COLS, &mut params);
    let r = conn
        .query_one(
            &format!("{SCHEDULE_SELECT} WHERE s.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Schedule::from_row(&r)
}

/// A schedule the caller sees (node grants with `Inspect` or `ManageInspections`).
pub fn get_schedule(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Schedule> {
    load_schedule(conn, &read_reach(caller), id)
}

/// Query of the schedule list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleQuery {
    /// Only active (true) or inactive (false) schedules.
    pub active: Option<bool>,
    pub template_id: Option<Uuid>,
}

/// Schedules within reach, by node and name.
pub fn list_schedules(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &ScheduleQuery,
) -> Result<Vec<Schedule>> {
    let mut params = Vec::new();
    let pred = read_reach(caller).predicate(conn.dialect(), SCHEDULE_COLS, &mut params);
    let mut sql = format!("{SCHEDULE_SELECT} WHERE {pred}");
    if let Some(a) = q.active {
        params.push(a.into());
        sql.push_str(&format!(" AND s.active = ${}", params.len()));
    }
    if let Some(t) = q.template_id {
        params.push(t.into());
        sql.push_str(&format!(" AND s.template_id = ${}", params.len()));
    }
    sql.push_str(" ORDER BY n.name, s.name, s.id");
    conn.query(&sql, &params)?
        .iter()
        .map(Schedule::from_row)
        .collect()
}

fn check_assignee(conn: &mut dyn Conn, user: Uuid) -> Result<()> {
    let n = conn.query_i64(
        "SELECT count(*) FROM users WHERE id = $1 AND kind <> 'resident'",
        &params![user],
    )?;
    if n == 0 {
        return Err(bad("inspection.assignee", "assignee_user_id"));
    }
    Ok(())
}

fn check_schedule_target(
    conn: &mut dyn Conn,
    node: Uuid,
    template: &Template,
    target_id: Uuid,
) -> Result<()> {
    let kind = place_kind(&template.target_kind)?;
    let t = find_targets(
        conn,
        kind,
        Some(node),
        Some(target_id),
        template.facility_kind.as_deref(),
    )?;
    if t.is_empty() {
        return Err(bad("inspection.target_outside", "target_id"));
    }
    Ok(())
}

/// Create a schedule (needs `ManageInspections` over the node; the template must be shipped or
/// belong to the node or one above it, and active).
pub fn create_schedule(tx: &mut Tx<'_>, caller: &Caller, i: &ScheduleInput) -> Result<Schedule> {
    let node = i.node_id.ok_or_else(|| bad("value.required", "node_id"))?;
    let template_id = i
        .template_id
        .ok_or_else(|| bad("value.required", "template_id"))?;
    let name = required_text(i.name.as_deref(), "name", NAME_MAX)?;
    let period: Period = match i.period.as_deref().map(str::trim) {
        None | Some("") => return Err(bad("value.required", "period")),
        Some(p) => p.parse().map_err(|_| bad("value.invalid", "period"))?,
    };
    if i.active.is_some() {
        return Err(bad("value.invalid", "active"));
    }
    if !caller.is_system()
        && !caller
            .reach(Permission::ManageInspections)
            .contains_node(tx.conn(), node)?
    {
        return Err(StoreError::NotFound);
    }
    let template =
        load_template(tx.conn(), &read_reach(caller), template_id).map_err(|e| match e {
            StoreError::NotFound => bad("inspection.template_unknown", "template_id"),
            e => e,
        })?;
    if template.status != "active" {
        return Err(bad("inspection.template_retired", "template_id"));
    }
    if let Some(tn) = template.node_id {
        if !in_subtree(tx.conn(), node, tn)? {
            return Err(bad("inspection.template_elsewhere", "template_id"));
        }
    }
    if let Some(k) = i.target_kind.as_deref().filter(|k| !k.is_empty()) {
        if k != template.target_kind {
            return Err(bad("inspection.target_kind", "target_kind"));
        }
    }
    let target_id = i.target_id.flatten();
    if let Some(t) = target_id {
        check_schedule_target(tx.conn(), node, &template, t)?;
    }
    let assignee = i.assignee_user_id.flatten();
    if let Some(u) = assignee {
        check_assignee(tx.conn(), u)?;
    }
    let starts_on = i.starts_on.unwrap_or_else(|| local_date(tx.now()));
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "inspection_schedules",
        &[
            ("id", id.into()),
            ("node_id", node.into()),
            ("template_id", template_id.into()),
            ("name", name.into()),
            ("target_kind", template.target_kind.as_str().into()),
            ("target_id", target_id.into()),
            ("period", period.as_str().into()),
            ("assignee_user_id", assignee.into()),
            ("starts_on", starts_on.into()),
            ("active", true.into()),
            ("created_by", caller.user_id.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    load_schedule(tx.conn(), &all_reach(), id)
}

/// Edit a schedule: name, target, period, assignee, start, active (false deactivates).
pub fn edit_schedule(
    tx: &mut Tx<'_>,
    caller: &Caller,
    id: Uuid,
    i: &ScheduleInput,
) -> Result<Schedule> {
    let s = load_schedule(tx.conn(), &read_reach(caller), id)?;
    if !caller.is_system()
        && !caller
            .reach(Permission::ManageInspections)
            .contains_node(tx.conn(), s.node_id)?
    {
        return Err(StoreError::NotFound);
    }
    if i.node_id.is_some_and(|n| n != s.node_id) {
        return Err(bad("inspection.immutable", "node_id"));
    }
    if i.template_id.is_some_and(|t| t != s.template_id) {
        return Err(bad("inspection.immutable", "template_id"));
    }
    if i.target_kind.as_deref().is_some_and(|k| k != s.target_kind) {
        return Err(bad("inspection.target_kind", "target_kind"));
    }
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if i.name.is_some() {
        cols.push((
            "name",
            required_text(i.name.as_deref(), "name", NAME_MAX)?.into(),
        ));
    }
    if let Some(p) = i.period.as_deref() {
        let p: Period = p
            .trim()
            .parse()
            .map_err(|_| bad("value.invalid", "period"))?;
        cols.push(("period", p.as_str().into()));
    }
    if let Some(t) = i.target_id {
        if let Some(t) = t {
            let template = load_template(tx.conn(), &all_reach(), s.template_id)?;
            check_schedule_target(tx.conn(), s.node_id, &template, t)?;
        }
        cols.push(("target_id", t.into()));
    }
    if let Some(a) = i.assignee_user_id {
        if let Some(u) = a {
            check_assignee(tx.conn(), u)?;
        }
        cols.push(("assignee_user_id", a.into()));
    }
    if let Some(d) = i.starts_on {
        cols.push(("starts_on", d.into()));
    }
    if let Some(a) = i.active {
        cols.push(("active", a.into()));
    }
    cols.push(("updated_at", tx.now().into()));
    tx.update("inspection_schedules", id, &cols)?;
    load_schedule(tx.conn(), &all_reach(), id)
}

/// The active schedules that cover a target with a template, oldest first.
fn covering_schedules(conn: &mut dyn Conn, template: Uuid, t: &Target) -> Result<Vec<Schedule>> {
    let rows = conn.query(
        &format!(
            "{SCHEDULE_SELECT} WHERE s.active = $1 AND s.template_id = $2 AND s.target_kind = $3 \
             AND (s.target_id IS NULL OR s.target_id = $4) ORDER BY s.created_at, s.id"
        ),
        &params![true, template, t.kind.as_str(), t.id],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let s = Schedule::from_row(r)?;
        if in_subtree(conn, t.node, s.node_id)? {
            out.push(s);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The to-do list.

/// A target due for inspection.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct TodoItem {
    pub schedule_id: Uuid,
    pub schedule_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub target_kind: String,
    pub target_id: Uuid,
    pub place_label: String,
    pub grid_id: Option<Uuid>,
    /// daily, weekly, monthly, quarterly
    pub period: String,
    /// The current period (`2026-W49`).
    pub period_key: String,
    /// The previous period ended without an inspection, and none since.
    pub overdue: bool,
    /// The previous period, when overdue.
    pub missed_period_key: Option<String>,
    /// An inspection of it already started and not finished.
    pub in_progress_id: Option<Uuid>,
}

/// The signed-in worker's list for the day.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Default)]
pub struct Todo {
    /// Today, Asia/Shanghai.
    pub date: Option<NaiveDate>,
    /// Due in the current period, not yet inspected (not overdue).
    pub today: Vec<TodoItem>,
    /// Missed the previous period and not inspected since.
    pub overdue: Vec<TodoItem>,
}

/// Grids that have a grid worker now.
fn staffed_grids(conn: &mut dyn Conn, now: DateTime<Utc>) -> Result<HashSet<Uuid>> {
    conn.query(
        "SELECT DISTINCT scope_id FROM grants WHERE role = 'grid_worker' AND scope_kind = 'grid' \
         AND revoked_at IS NULL AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1)",
        &params![now],
    )?
    .iter()
    .map(|r| r.get("scope_id"))
    .collect()
}

/// The communities of the caller's grid grants.
fn grid_communities(conn: &mut dyn Conn, reach: &Reach) -> Result<Vec<Uuid>> {
    if reach.grids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = serde_json::json!(reach
        .grids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>());
    conn.query(
        &format!(
            "SELECT DISTINCT community_id FROM grids WHERE {}",
            conn.dialect().in_json_list("id", 1)
        ),
        &[Value::Json(ids)],
    )?
    .iter()
    .map(|r| r.get("community_id"))
    .collect()
}

/// The nodes above (and at) the caller's grants: node grants and the communities of grid grants.
fn ancestors_of_reach(conn: &mut dyn Conn, reach: &Reach) -> Result<HashSet<Uuid>> {
    let roots: Vec<String> = reach
        .nodes
        .iter()
        .copied()
        .chain(grid_communities(conn, reach)?)
        .map(|u| u.to_string())
        .collect();
    if roots.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM nodes WHERE {} \
         UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN up ON n.id = up.parent_id) \
         SELECT DISTINCT id FROM up",
        conn.dialect().in_json_list("id", 1)
    );
    conn.query(&sql, &[Value::Json(serde_json::json!(roots))])?
        .iter()
        .map(|r| r.get("id"))
        .collect()
}

/// The to-do list of the caller at `now`: targets of active schedules assigned to the caller
/// (by name, or as the grid worker of the target's grid; community staff when the grid has no
/// grid worker or the target no grid) within the caller's `Inspect` reach.
pub fn todo(conn: &mut dyn Conn, caller: &Caller, now: DateTime<Utc>) -> Result<Todo> {
    let today = local_date(now);
    let mut out = Todo {
        date: Some(today),
        ..Todo::default()
    };
    let reach = caller.reach(Permission::Inspect);
    if reach.is_empty() {
        return Ok(out);
    }
    let nodes = reach.expand_nodes(conn)?;
    let node_ok = |n: Uuid| nodes.as_ref().is_none_or(|s| s.contains(&n));
    let staffed = staffed_grids(conn, now)?;
    let me = caller.user_id;
    let schedules: Vec<Schedule> = conn
        .query(
            &format!(
                "{SCHEDULE_SELECT} WHERE s.active = $1 AND s.starts_on <= $2 ORDER BY s.name, s.id"
            ),
            &params![true, today],
        )?
        .iter()
        .map(Schedule::from_row)
        .collect::<Result<_>>()?;
    // Schedules that can reach the caller's places: set at one of them, above or below (for a
    // grid grant: its community's subtree).
    let above = ancestors_of_reach(conn, &reach)?;
    let below_grids = Reach {
        nodes: grid_communities(conn, &reach)?,
        ..Reach::default()
    }
    .expand_nodes(conn)?
    .unwrap_or_default();
    for s in schedules {
        let assigned_to_me = s.assignee_user_id.is_some() && s.assignee_user_id == me;
        if s.assignee_user_id.is_some() && !assigned_to_me {
            continue;
        }
        if !assigned_to_me
            && !node_ok(s.node_id)
            && !above.contains(&s.node_id)
            && !below_grids.contains(&s.node_id)
        {
            continue;
        }
        let kind = place_kind(&s.target_kind)?;
        let template = conn
            .query_one(
                "SELECT facility_kind FROM inspection_templates WHERE id = $1",
                &params![s.template_id],
            )?
            .map(|r| r.get::<Option<String>>("facility_kind"))
            .transpose()?
            .flatten();
        let targets = find_targets(
            conn,
            kind,
            Some(s.node_id),
            s.target_id,
            template.as_deref(),
        )?;
        let period = s.period();
        let key = period_key(period, today);
        let prev_end = previous_period_end(period, today);
        let prev_key = (prev_end >= s.starts_on).then(|| period_key(period, prev_end));
        let mut done: HashSet<(Uuid, String)> = HashSet::new();
        let mut open: HashMap<Uuid, Uuid> = HashMap::new();
        for r in conn.query(
            "SELECT id, target_id, period_key, status FROM inspections WHERE schedule_id = $1 \
             AND (status = 'in_progress' OR period_key = $2 OR period_key = $3)",
            &params![s.id, key.as_str(), prev_key.clone().unwrap_or_default()],
        )? {
            let status: String = r.get("status")?;
            let target: Uuid = r.get("target_id")?;
            if status == "done" {
                done.insert((
                    target,
                    r.get::<Option<String>>("period_key")?.unwrap_or_default(),
                ));
            } else {
                open.insert(target, r.get("id")?);
            }
        }
        for t in targets {
            let in_reach = t.grid.is_some_and(|g| reach.grids.contains(&g)) || node_ok(t.node);
            if !in_reach {
                continue;
            }
            if !assigned_to_me {
                let mine = match t.grid {
                    Some(g) if staffed.contains(&g) => reach.grids.contains(&g),
                    _ => node_ok(t.node),
                };
                if !mine {
                    continue;
                }
            }
            if done.contains(&(t.id, key.clone())) {
                continue;
            }
            let overdue = prev_key
                .as_ref()
                .is_some_and(|pk| !done.contains(&(t.id, pk.clone())));
            let item = TodoItem {
                schedule_id: s.id,
                schedule_name: s.name.clone(),
                template_id: s.template_id,
                template_name: s.template_name.clone(),
                target_kind: s.target_kind.clone(),
                target_id: t.id,
                place_label: t.label.clone(),
                grid_id: t.grid,
                period: s.period.clone(),
                period_key: key.clone(),
                overdue,
                missed_period_key: if overdue { prev_key.clone() } else { None },
                in_progress_id: open.get(&t.id).copied(),
            };
            if overdue {
                out.overdue.push(item);
            } else {
                out.today.push(item);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Inspections.

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub id: Uuid,
    /// The community.
    pub node_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub template_id: Uuid,
    pub template_name: String,
    pub schedule_id: Option<Uuid>,
    /// The schedule's period it counts for (`2026-W49`).
    pub period_key: Option<String>,
    pub target_kind: String,
    pub target_id: Uuid,
    pub place_label: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    pub inspector_user_id: Option<Uuid>,
    pub inspector_name: Option<String>,
    /// in_progress, done
    pub status: String,
    pub failed_count: i64,
    pub notes: String,
    pub started_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl Inspection {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            node_id: r.get("node_id")?,
            grid_id: r.get("grid_id")?,
            template_id: r.get("template_id")?,
            template_name: r.get("template_name")?,
            schedule_id: r.get("schedule_id")?,
            period_key: r.get("period_key")?,
            target_kind: r.get("target_kind")?,
            target_id: r.get("target_id")?,
            place_label: r.get("place_label")?,
            lon: r.get("lon")?,
            lat: r.get("lat")?,
            inspector_user_id: r.get("inspector_user_id")?,
            inspector_name: r.get("inspector_name")?,
            status: r.get("status")?,
            failed_count: r.get("failed_count")?,
            notes: r.get("notes")?,
            started_at: r.get("started_at")?,
            done_at: r.get("done_at")?,
        })
    }
}

/// One item of an inspection with its answer so far.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ItemAnswer {
    pub item: Item,
    /// The answer's id (fixed for the inspection and item, also before it is answered): photos
    /// of the item are attachments of it (`owner_kind` answer).
    pub answer_id: Uuid,
    /// pass_fail: pass or fail; number: the number; choice: the option; text: the text. Null
    /// while unanswered.
    pub answer: Option<String>,
    /// Null while unanswered, and for text answers.
    pub passed: Option<bool>,
    pub note: String,
    /// For a failed answer: the grade its hazard gets (the item's, or raised to major).
    pub grade: Option<String>,
    /// The hazard a failed answer reported (once finished).
    pub hazard_id: Option<Uuid>,
    pub photos: Vec<Attachment>,
}

/// An inspection with its checklist, answers and photos.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct InspectionSheet {
    pub inspection: Inspection,
    pub template_description: String,
    pub items: Vec<ItemAnswer>,
    /// Photos of the inspection as a whole.
    pub photos: Vec<Attachment>,
}

const INSPECTION_SELECT: &str = "SELECT i.id, i.node_id, i.grid_id, i.template_id, \
    t.name AS template_name, i.schedule_id, i.period_key, i.target_kind, i.target_id, \
    i.place_label, i.lon, i.lat, i.inspector_user_id, u.display_name AS inspector_name, i.status, \
    i.failed_count, i.notes, i.started_at, i.done_at FROM inspections i \
    JOIN inspection_templates t ON t.id = i.template_id LEFT JOIN users u ON u.id = i.inspector_user_id";

/// The fixed id of the answer to `item` in `inspection`, known before it is answered so photos
/// can be attached to it first.
pub fn answer_id(inspection: Uuid, item: Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"anxin.inspection_answer");
    h.update(inspection.as_bytes());
    h.update(item.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

fn load_inspection(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Inspection> {
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), INSPECTION_COLS, &mut params);
    let r = conn
        .query_one(
            &format!("{INSPECTION_SELECT} WHERE i.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Inspection::from_row(&r)
}

fn sheet(conn: &mut dyn Conn, i: Inspection) -> Result<InspectionSheet> {
    let t = load_template(conn, &all_reach(), i.template_id)?;
    let rows = conn.query(
        "SELECT id, item_id, answer, passed, note, grade, hazard_id FROM inspection_answers \
         WHERE inspection_id = $1",
        &params![i.id],
    )?;
    let mut answers: HashMap<Uuid, Row> = HashMap::new();
    for r in rows {
        answers.insert(r.get("item_id")?, r);
    }
    let ids: Vec<Uuid> = t.items.iter().map(|it| answer_id(i.id, it.id)).collect();
    let mut photos: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for a in attachments::list_for_many(conn, "answer", &ids)? {
        photos.entry(a.owner_id).or_default().push(a);
    }
    let mut items = Vec::with_capacity(t.items.len());
    for it in t.items {
        let aid = answer_id(i.id, it.id);
        let a = answers.get(&it.id);
        items.push(ItemAnswer {
            answer_id: aid,
            answer: a.map(|r| r.get("answer")).transpose()?,
            passed: a
                .map(|r| r.get::<Option<bool>>("passed"))
                .transpose()?
                .flatten(),
            note: a.map(|r| r.get("note")).transpose()?.unwrap_or_default(),
            grade: a
                .map(|r| r.get::<Option<String>>("grade"))
                .transpose()?
                .flatten(),
            hazard_id: a
                .map(|r| r.get::<Option<Uuid>>("hazard_id"))
                .transpose()?
                .flatten(),
            photos: photos.remove(&aid).unwrap_or_default(),
            item: it,
        });
    }
    let whole = attachments::list_for(conn, "inspection", i.id)?;
    Ok(InspectionSheet {
        inspection: i,
        template_description: t.description,
        items,
        photos: whole,
    })
}

/// An inspection with its checklist, when the caller sees it.
pub fn get_inspection(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<InspectionSheet> {
    let i = load_inspection(conn, &read_reach(caller), id)?;
    sheet(conn, i)
}

/// Query of the inspection list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionQuery {
    /// in_progress, done
    pub status: Option<String>,
    pub schedule_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    /// Only the caller's own inspections.
    pub mine: Option<bool>,
    /// At most this many (default 100, at most 500), newest first.
    pub limit: Option<u32>,
}

/// Inspections within reach, newest first.
pub fn list_inspections(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &InspectionQuery,
) -> Result<Vec<Inspection>> {
    let mut params = Vec::new();
    let pred = read_reach(caller).predicate(conn.dialect(), INSPECTION_COLS, &mut params);
    let mut sql = format!("{INSPECTION_SELECT} WHERE {pred}");
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if s != "in_progress" && s != "done" {
            return Err(bad("value.invalid", "status"));
        }
        params.push(s.into());
        sql.push_str(&format!(" AND i.status = ${}", params.len()));
    }
    if let Some(s) = q.schedule_id {
        params.push(s.into());
        sql.push_str(&format!(" AND i.schedule_id = ${}", params.len()));
    }
    if let Some(t) = q.target_id {
        params.push(t.into());
        sql.push_str(&format!(" AND i.target_id = ${}", params.len()));
    }
    if q.mine == Some(true) {
        params.push(caller.user_id.into());
        sql.push_str(&format!(" AND i.inspector_user_id = ${}", params.len()));
    }
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 500));
    params.push(limit.into());
    sql.push_str(&format!(
        " ORDER BY i.started_at DESC, i.id DESC LIMIT ${}",
        params.len()
    ));
    conn.query(&sql, &params)?
        .iter()
        .map(Inspection::from_row)
        .collect()
}

/// Start an inspection.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// The checklist (or take the schedule's).
    pub template_id: Option<Uuid>,
    /// The schedule it counts for; absent: the first active schedule covering the target with
    /// the template, if any.
    pub schedule_id: Option<Uuid>,
    /// dwelling, building, facility, node (default: the template's).
    pub target_kind: Option<String>,
    pub target_id: Option<Uuid>,
}

/// Start an inspection of a target within the caller's `Inspect` reach. A started, unfinished
/// inspection of the same target with the same template by the same worker is resumed.
pub fn start(tx: &mut Tx<'_>, caller: &Caller, i: &StartInput) -> Result<InspectionSheet> {
    let target_id = i
        .target_id
        .ok_or_else(|| bad("value.required", "target_id"))?;
    let reach = caller.reach(Permission::Inspect);
    let schedule = match i.schedule_id {
        Some(s) => Some(
            tx.conn()
                .query_one(&format!("{SCHEDULE_SELECT} WHERE s.id = $1"), &params![s])?
                .map(|r| Schedule::from_row(&r))
                .transpose()?
                .ok_or_else(|| bad("inspection.schedule_unknown", "schedule_id"))?,
        ),
        None => None,
    };
    let template_id = match (i.template_id, &schedule) {
        (Some(t), Some(s)) if t != s.template_id => {
            return Err(bad("inspection.schedule_template", "template_id"))
        }
        (Some(t), _) => t,
        (None, Some(s)) => s.template_id,
        (None, None) => return Err(bad("value.required", "template_id")),
    };
    let template = load_template(tx.conn(), &all_reach(), template_id)
        .map_err(|_| bad("inspection.template_unknown", "template_id"))?;
    if template.status != "active" {
        return Err(bad("inspection.template_retired", "template_id"));
    }
    let kind: PlaceKind = match i.target_kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => k.parse().map_err(|_| bad("value.invalid", "target_kind"))?,
        None => place_kind(&template.target_kind)?,
    };
    if kind.as_str() != template.target_kind {
        return Err(bad("inspection.target_kind", "target_kind"));
    }
    let t = target(tx.conn(), kind, target_id)?.ok_or(StoreError::NotFound)?;
    if !caller.is_system() && !reaches_target(tx.conn(), &reach, &t)? {
        return Err(StoreError::NotFound);
    }
    if let (Some(fk), Some(tk)) = (&template.facility_kind, &t.facility_kind) {
        if fk != tk {
            return Err(bad("inspection.facility_kind", "target_id"));
        }
    }
    if let Some(tn) = template.node_id {
        if !in_subtree(tx.conn(), t.node, tn)? {
            return Err(bad("inspection.template_elsewhere", "template_id"));
        }
    }
    let schedule = match schedule {
        Some(s) => {
            let covers = s.template_id == template_id
                && s.target_id.is_none_or(|x| x == t.id)
                && in_subtree(tx.conn(), t.node, s.node_id)?;
            if !covers {
                return Err(bad("inspection.schedule_target", "schedule_id"));
            }
            Some(s)
        }
        None => covering_schedules(tx.conn(), template_id, &t)?
            .into_iter()
            .next(),
    };
    let resumed = match caller.user_id {
        Some(me) => tx.conn().query_one(
            "SELECT id FROM inspections WHERE status = 'in_progress' AND target_id = $1 \
             AND template_id = $2 AND inspector_user_id = $3 ORDER BY started_at DESC LIMIT 1",
            &params![t.id, template_id, me],
        )?,
        None => None,
    };
    if let Some(existing) = resumed {
        let id: Uuid = existing.get("id")?;
        let i = load_inspection(tx.conn(), &all_reach(), id)?;
        return sheet(tx.conn(), i);
    }
    let id = tx.new_id();
    let now = tx.now();
    let key = schedule
        .as_ref()
        .map(|s| period_key(s.period(), local_date(now)));
    tx.insert(
        "inspections",
        &[
            ("id", id.into()),
            ("node_id", t.community.into()),
            ("grid_id", t.grid.into()),
            ("template_id", template_id.into()),
            ("schedule_id", schedule.as_ref().map(|s| s.id).into()),
            ("period_key", key.into()),
            ("target_kind", kind.as_str().into()),
            ("target_id", t.id.into()),
            ("place_label", t.label.as_str().into()),
            ("lon", t.lon.into()),
            ("lat", t.lat.into()),
            ("inspector_user_id", caller.user_id.into()),
            ("status", "in_progress".into()),
            ("failed_count", 0i64.into()),
            ("notes", "".into()),
            ("started_at", now.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let i = load_inspection(tx.conn(), &all_reach(), id)?;
    sheet(tx.conn(), i)
}

/// An inspection the caller may work on: within its `Inspect` reach and still in progress.
fn open_inspection(tx: &mut Tx<'_>, caller: &Caller, id: Uuid) -> Result<Inspection> {
    let i = load_inspection(tx.conn(), &caller.reach(Permission::Inspect), id)?;
    if i.status != "in_progress" {
        return Err(conflict("inspection.done", "the inspection is finished"));
    }
    Ok(i)
}

/// Answers to some items.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersInput {
    pub answers: Vec<AnswerInput>,
    /// Notes on the inspection as a whole.
    pub notes: Option<String>,
}

/// One answer: the item by id or code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub item_id: Option<Uuid>,
    pub code: Option<String>,
    /// pass_fail: pass or fail; number: a number; choice: one of the options; text: the text.
    pub answer: Option<String>,
    pub note: Option<String>,
    /// For a failed answer: major raises the item's minor grade (never lowers a major one).
    pub grade: Option<String>,
}

/// Whether an answer passes its item, or why it is not an answer (the error code).
fn judge(item: &Item, answer: &str) -> std::result::Result<(String, Option<bool>), &'static str> {
    let a = answer.trim();
    if a.is_empty() {
        return Err("value.required");
    }
    match item.answer_type() {
        AnswerType::PassFail => match a {
            "pass" | "合格" => Ok(("pass".into(), Some(true))),
            "fail" | "不合格" => Ok(("fail".into(), Some(false))),
            _ => Err("inspection.answer_pass_fail"),
        },
        AnswerType::Number => {
            let x: f64 = a.parse().map_err(|_| "inspection.answer_number")?;
            if !x.is_finite() {
                return Err("inspection.answer_number");
            }
            let min = item
                .answer_spec
                .get("min")
                .and_then(serde_json::Value::as_f64);
            let max = item
                .answer_spec
                .get("max")
                .and_then(serde_json::Value::as_f64);
            let ok = min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m);
            Ok((a.to_owned(), Some(ok)))
        }
        AnswerType::Choice => {
            let has = |k: &str| {
                item.answer_spec
                    .get(k)
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|v| v.iter().any(|o| o.as_str() == Some(a)))
            };
            if !has("options") {
                return Err("inspection.answer_choice");
            }
            Ok((a.to_owned(), Some(!has("failing"))))
        }
        AnswerType::Text => {
            if a.chars().count() > ANSWER_MAX || a.chars().any(|c| c.is_control() && c != '\n') {
                return Err("value.invalid");
            }
            Ok((a.to_owned(), None))
        }
    }
}

/// Record answers (each replaces the item's earlier answer). Refused, naming the field
/// (`answers[2].answer`), for an unknown item or an answer its type does not take.
pub fn answer(
    tx: &mut Tx<'_>,
    caller: &Caller,
    id: Uuid,
    input: &AnswersInput,
) -> Result<InspectionSheet> {
    let ins = open_inspection(tx, caller, id)?;
    let t = load_template(tx.conn(), &all_reach(), ins.template_id)?;
    let now = tx.now();
    for (n, a) in input.answers.iter().enumerate() {
        let f = format!("answers[{n}]");
        let item = match (a.item_id, a.code.as_deref()) {
            (Some(iid), _) => t.items.iter().find(|it| it.id == iid),
            (None, Some(c)) => t.items.iter().find(|it| it.code == c.trim()),
            (None, None) => return Err(bad("value.required", format!("{f}.item_id"))),
        }
        .ok_or_else(|| bad("inspection.item_unknown", format!("{f}.item_id")))?;
        let (text, passed) = judge(item, a.answer.as_deref().unwrap_or_default())
            .map_err(|code| bad(code, format!("{f}.answer")))?;
        let note = checked_text(
            a.note.as_deref().unwrap_or_default(),
            &format!("{f}.note"),
            NOTE_MAX,
            true,
        )?;
        let grade = match a.grade.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
            None => None,
            Some(g) => {
                let g: HazardGrade = g
                    .parse()
                    .map_err(|_| bad("value.invalid", format!("{f}.grade")))?;
                if g < item.fail_grade() {
                    return Err(bad("inspection.grade_lower", format!("{f}.grade")));
                }
                Some(g)
            }
        };
        let grade = (passed == Some(false)).then(|| grade.unwrap_or(item.fail_grade()));
        let aid = answer_id(ins.id, item.id);
        tx.execute_unlogged(
            "DELETE FROM inspection_answers WHERE inspection_id = $1 AND item_id = $2",
            &params![ins.id, item.id],
        )?;
        tx.execute_unlogged(
            "INSERT INTO inspection_answers (id, inspection_id, item_id, position, item_text, \
             answer, passed, note, grade, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &params![
                aid,
                ins.id,
                item.id,
                item.position,
                item.text.as_str(),
                text,
                passed,
                note,
                grade.map(HazardGrade::as_str),
                now
            ],
        )?;
    }
    let mut cols: Vec<(&str, Value)> = vec![("updated_at", now.into())];
    if let Some(n) = &input.notes {
        cols.push((
            "notes",
            checked_text(n, "notes", DESCRIPTION_MAX, true)?.into(),
        ));
    }
    tx.update("inspections", ins.id, &cols)?;
    let i = load_inspection(tx.conn(), &all_reach(), id)?;
    sheet(tx.conn(), i)
}

/// Add a photo to an inspection in progress: of one item (`item_id`), or of the whole.
pub fn add_photo(
    tx: &mut Tx<'_>,
    caller: &Caller,
    id: Uuid,
    item_id: Option<Uuid>,
    filename: &str,
    bytes: &[u8],
) -> Result<Attachment> {
    let ins = open_inspection(tx, caller, id)?;
    let (kind, owner) = match item_id {
        Some(item) => {
            let ok = tx.conn().query_i64(
                "SELECT count(*) FROM inspection_items WHERE id = $1 AND template_id = $2",
                &params![item, ins.template_id],
            )?;
            if ok == 0 {
                return Err(bad("inspection.item_unknown", "item_id"));
            }
            ("answer", answer_id(ins.id, item))
        }
        None => ("inspection", ins.id),
    };
    let aid = attachments::store(tx, caller, ins.node_id, kind, owner, filename, bytes)?;
    tx.update("inspections", ins.id, &[("updated_at", tx.now().into())])?;
    let list = attachments::list_for(tx.conn(), kind, owner)?;
    list.into_iter()
        .find(|a| a.id == aid)
        .ok_or(StoreError::NotFound)
}

/// Finishing an inspection.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinishInput {
    /// Notes on the inspection as a whole (replace earlier ones).
    pub notes: Option<String>,
}

/// Finish an inspection: every item answered (`inspection.unanswered`, field
/// `answers.<code>`), every photo the rules ask for present (`inspection.photo_required`,
/// field `answers.<code>.photo`); then each failed answer reports a hazard in this transaction
/// with its photos as evidence. Nothing is written when refused.
pub fn finish(
    tx: &mut Tx<'_>,
    caller: &Caller,
    id: Uuid,
    rules: &[GradeRule],
    input: &FinishInput,
) -> Result<InspectionSheet> {
    let ins = open_inspection(tx, caller, id)?;
    let notes = match &input.notes {
        Some(n) => Some(checked_text(n, "notes", DESCRIPTION_MAX, true)?),
        None => None,
    };
    let s = sheet(tx.conn(), ins.clone())?;
    for it in &s.items {
        if it.answer.is_none() {
            return Err(bad(
                "inspection.unanswered",
                format!("answers.{}", it.item.code),
            ));
        }
    }
    for it in &s.items {
        let failed = it.passed == Some(false);
        let needs = match it.item.photo_rule() {
            PhotoRule::Required => true,
            PhotoRule::OnFail => failed,
            PhotoRule::None | PhotoRule::Optional => false,
        };
        if needs && it.photos.is_empty() {
            return Err(bad(
                "inspection.photo_required",
                format!("answers.{}.photo", it.item.code),
            ));
        }
    }
    let now = tx.now();
    let template = load_template(tx.conn(), &all_reach(), ins.template_id)?;
    // The checklist's name (燃气安全入户检查), as the ledger shows it.
    let category = template.name.clone();
    let mut failed = 0i64;
    for it in s.items.iter().filter(|it| it.passed == Some(false)) {
        failed += 1;
        let answer = it.answer.clone().unwrap_or_default();
        let shown = match it.item.answer_type() {
            AnswerType::PassFail => "不合格".to_owned(),
            AnswerType::Number => {
                let unit = it
                    .item
                    .answer_spec
                    .get("unit")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                format!("{answer}{unit}")
            }
            _ => answer,
        };
        let mut finding = format!("{}：{}", it.item.text, shown);
        if !it.note.is_empty() {
            finding.push_str(&format!("（{}）", it.note));
        }
        let grade: HazardGrade = it
            .grade
            .as_deref()
            .and_then(|g| g.parse().ok())
            .unwrap_or(it.item.fail_grade());
        let hazard = ledger::report(
            tx,
            caller.user_id,
            rules,
            &NewHazard {
                node_id: ins.node_id,
                grid_id: ins.grid_id,
                place_kind: place_kind(&ins.target_kind)?,
                place_id: ins.target_id,
                place_label: ins.place_label.clone(),
                lon: ins.lon,
                lat: ins.lat,
                source: HazardSource::Inspection,
                inspection_id: Some(ins.id),
                answer_id: Some(it.answer_id),
                category: category.clone(),
                finding,
                grade,
                responsible_party: None,
                found_at: now,
                evidence: it.photos.iter().map(|p| p.id).collect(),
            },
        )?;
        tx.execute_unlogged(
            "UPDATE inspection_answers SET hazard_id = $1 WHERE id = $2",
            &params![hazard, it.answer_id],
        )?;
    }
    let key = match ins.schedule_id {
        Some(sid) => {
            let p: Option<String> = tx
                .conn()
                .query_one(
                    "SELECT period FROM inspection_schedules WHERE id = $1",
                    &params![sid],
                )?
                .map(|r| r.get("period"))
                .transpose()?;
            p.and_then(|p| p.parse::<Period>().ok())
                .map(|p| period_key(p, local_date(now)))
        }
        None => None,
    };
    let mut cols: Vec<(&str, Value)> = vec![
        ("status", "done".into()),
        ("done_at", now.into()),
        ("failed_count", failed.into()),
        ("period_key", key.into()),
        ("updated_at", now.into()),
    ];
    if let Some(n) = notes {
        cols.push(("notes", n.into()));
    }
    tx.update("inspections", ins.id, &cols)?;
    let i = load_inspection(tx.conn(), &all_reach(), id)?;
    sheet(tx.conn(), i)
}

/// Targets the caller may start an inspection of with a template, for the pages' pickers (at
/// most `limit`).
pub fn startable_targets(
    conn: &mut dyn Conn,
    caller: &Caller,
    template_id: Uuid,
    limit: usize,
) -> Result<Vec<(Uuid, String)>> {
    let reach = caller.reach(Permission::Inspect);
    if reach.is_empty() {
        return Ok(Vec::new());
    }
    let t = load_template(conn, &read_reach(caller), template_id)?;
    let kind = place_kind(&t.target_kind)?;
    // Node grants: every target under them; grid grants: the targets on those grids.
    let mut roots: Vec<(Option<Uuid>, bool)> = if reach.all {
        vec![(None, true)]
    } else {
        reach.nodes.iter().map(|n| (Some(*n), true)).collect()
    };
    if !reach.grids.is_empty() {
        let ids = serde_json::json!(reach
            .grids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>());
        for r in conn.query(
            &format!(
                "SELECT DISTINCT community_id FROM grids WHERE {}",
                conn.dialect().in_json_list("id", 1)
            ),
            &[Value::Json(ids)],
        )? {
            roots.push((Some(r.get("community_id")?), false));
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (root, whole) in roots {
        for x in find_targets(conn, kind, root, None, t.facility_kind.as_deref())? {
            if out.len() >= limit {
                return Ok(out);
            }
            let ok = whole || x.grid.is_some_and(|g| reach.grids.contains(&g));
            if ok && seen.insert(x.id) {
                out.push((x.id, x.label));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn period_keys_follow_the_period_doc() {
        let x = d(2026, 12, 3);
        assert_eq!(period_key(Period::Daily, x), "2026-12-03");
        assert_eq!(period_key(Period::Weekly, x), "2026-W49");
        assert_eq!(period_key(Period::Monthly, x), "2026-12");
        assert_eq!(period_key(Period::Quarterly, x), "2026-Q4");
        // ISO week years: 2027-01-01 (a Friday) is in 2026's week 53.
        assert_eq!(period_key(Period::Weekly, d(2027, 1, 1)), "2026-W53");
        assert_eq!(period_key(Period::Weekly, d(2025, 12, 29)), "2026-W01");
    }

    #[test]
    fn previous_periods_end_the_day_before_the_current_starts() {
        let x = d(2026, 12, 3); // Thursday
        assert_eq!(period_start(Period::Weekly, x), d(2026, 11, 30));
        assert_eq!(previous_period_end(Period::Weekly, x), d(2026, 11, 29));
        assert_eq!(previous_period_end(Period::Monthly, x), d(2026, 11, 30));
        assert_eq!(previous_period_end(Period::Quarterly, x), d(2026, 9, 30));
        assert_eq!(previous_period_end(Period::Daily, x), d(2026, 12, 2));
    }

    #[test]
    fn local_dates_are_shanghai() {
        // 2026-12-06 16:30 UTC is 2026-12-07 00:30 in Shanghai: a new ISO week.
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 16, 30, 0).unwrap();
        assert_eq!(local_date(t), d(2026, 12, 7));
        assert_eq!(period_key(Period::Weekly, local_date(t)), "2026-W50");
    }
}
