//! The demo's year of inspections and hazards (owner: supervision).
//!
//! `anxin demo` gives 锦江区 the calendar year 2025 of history, ending just before the demo's
//! fixed clock (2026-01-05), so the ledger, the map and the supervision cards show something
//! real across the district:
//! - **Gas checks** (燃气入户周检) in the demo community: a sample of [`GAS_SAMPLE`] dwellings,
//!   each on a weekly schedule of the shipped `gas_household` checklist (12 indicators), done by
//!   the demo's grid worker most weeks (a sample, not every household every week, which keeps
//!   `anxin demo` a few seconds longer only).
//! - **Shelter checks** (避难场所月检) in every community of the district: its shelter on a monthly
//!   schedule of the shipped `shelter` checklist, done more or less faithfully per community.
//! - **Hazards** from failed items (linked to the inspection, its answer, the place and its
//!   position from the building or facility), plus hazards staff report (fire exits blocked,
//!   drains, e-bikes charging in stairwells). Rates are assumptions, not published figures: we
//!   found no published per-visit rate for household gas checks (national campaigns report
//!   totals of hidden dangers, not rates per visit), so about 4.5% of gas checks find one
//!   failed item, weighted towards hose age and missing alarms, and about 10% of shelter checks.
//! - **Outcomes**: each community has a diligence (0.55–0.98; the demo community 0.9): most
//!   hazards are closed on time, some late, a few stay open past their deadline. Deadlines come
//!   from `[hazards] grades` and the working-day calendar; major hazards (gas leaks at joints,
//!   flues, tampering — only in the demo community, the one with a flood plan) start the
//!   community's plan (a real, closed incident of the demo flood plan, linked to the hazard),
//!   mostly within the 24 hours, and are accepted by the demo `inspector` before they close.
//!   Every change has its event (who, when, from which state to which).
//! - **Rounds**: the four quarters of 2025 are scored as the quarterly job would have, so the
//!   cards have a trend.
//!
//! Deterministic: ids from the app's id generator, times from fixed dates, choices from a
//! ChaCha generator seeded per community. Idempotent: nothing is written when the demo
//! community's gas schedules exist.

use std::sync::Arc;

use anxin_domain::calendar::{due, WorkCalendar};
use anxin_domain::hazard::{GradeRule, HazardGrade};
use anxin_domain::SHANGHAI;
use anxin_store::hazards::supervision::{self as sup, Quarter};
use anxin_store::{params, Tx, Value, WriteCtx};
use anyhow::{anyhow, Context};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::app::App;
use crate::demo::DEMO_SEED;

/// Dwellings of the demo community on a weekly gas check.
pub const GAS_SAMPLE: usize = 30;
const GAS_SCHEDULE_PREFIX: &str = "燃气入户周检";
/// Share of gas checks with a failed item, and of shelter checks (assumptions, see the doc).
const GAS_FAIL: f64 = 0.045;
const SHELTER_FAIL: f64 = 0.10;
/// The history ends where the demo's clock stands.
const YEAR: i32 = 2025;

/// Items of the gas checklist by how often they fail (hose age and alarms most, the major
/// ones — joints, flues, tampering — rarely).
const GAS_WEIGHTS: &[(&str, u32)] = &[
    ("hose_age", 30),
    ("leak_alarm", 24),
    ("hose_clamps", 10),
    ("valves", 8),
    ("ventilation", 7),
    ("meter", 5),
    ("flameout_protection", 5),
    ("hose_length", 3),
    ("joint_sealing", 3),
    ("heater_flue", 3),
    ("no_tampering", 2),
];

/// What staff report outside checklists: (category, finding).
const STAFF_FINDINGS: &[(&str, &str)] = &[
    ("fire_exit", "楼道堆放杂物，疏散通道宽度不足"),
    ("fire_exit", "电动自行车在楼梯间停放充电"),
    ("fire_exit", "安全出口被锁闭"),
    ("drain", "小区雨水篦子堵塞，积水风险"),
    ("drain", "地下车库排水沟淤积"),
    ("elevator", "电梯使用标志过期未更换"),
    ("structure", "外墙瓷砖空鼓有脱落风险"),
    ("electric", "公共区域私拉电线"),
];

#[derive(Debug, Clone)]
struct Item {
    id: Uuid,
    position: i64,
    code: String,
    text: String,
    answer_type: String,
    spec: serde_json::Value,
    fail_grade: String,
}

#[derive(Debug, Clone)]
struct Template {
    id: Uuid,
    name: String,
    items: Vec<Item>,
}

/// A place inspected or where a hazard was found.
#[derive(Debug, Clone)]
struct Place {
    kind: &'static str,
    id: Uuid,
    label: String,
    grid: Option<Uuid>,
    lon: Option<f64>,
    lat: Option<f64>,
}

#[derive(Debug, Clone)]
struct Community {
    id: Uuid,
    name: String,
    shelter: Option<Place>,
    buildings: Vec<Place>,
}

/// Who does what in the demo.
#[derive(Debug, Clone, Copy)]
struct People {
    grid: Uuid,
    worker: Uuid,
    inspector: Uuid,
}

/// The demo community's flood plan and its version in force.
#[derive(Debug, Clone, Copy)]
struct Plan {
    id: Uuid,
    version: Uuid,
}

fn local(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    SHANGHAI
        .from_local_datetime(&d.and_hms_opt(h, m, 0).unwrap_or_default())
        .single()
        .map_or_else(|| DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Build the history for the demo district; returns how many records it wrote (0 when present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let there = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM inspection_schedules WHERE node_id = $1 AND name LIKE '燃气入户周检%'",
                &params![demo_community],
            )
        })
        .await?;
    if there > 0 {
        return Ok(0);
    }
    let now = app.clock.now();
    let rules = app.config.hazards.grades.clone();
    let loaded = app
        .store
        .read(move |c, _| {
            let cal = anxin_store::hazards::calendar::load(c)?;
            let gas = template(c, "gas_household")?;
            let shelter = template(c, "shelter")?;
            let user =
                |c: &mut dyn anxin_store::Conn, name: &str| -> anxin_store::Result<Option<Uuid>> {
                    c.query_one("SELECT id FROM users WHERE username = $1", &params![name])?
                        .map(|r| r.get::<Uuid>("id"))
                        .transpose()
                };
            let people = match (user(c, "grid")?, user(c, "worker")?, user(c, "inspector")?) {
                (Some(grid), Some(worker), Some(inspector)) => Some(People {
                    grid,
                    worker,
                    inspector,
                }),
                _ => None,
            };
            let plan = c
                .query_one(
                    "SELECT p.id, v.id AS version FROM plans p JOIN plan_versions v \
                     ON v.plan_id = p.id AND v.status = 'current' \
                     WHERE p.node_id = $1 AND p.name = $2",
                    &params![demo_community, crate::demo_ops::PLAN_NAME],
                )?
                .map(|r| -> anxin_store::Result<Plan> {
                    Ok(Plan {
                        id: r.get("id")?,
                        version: r.get("version")?,
                    })
                })
                .transpose()?;
            let communities = communities(c, demo_community)?;
            let gas_places = gas_sample(c, demo_community)?;
            Ok((cal, gas, shelter, people, plan, communities, gas_places))
        })
        .await?;
    let (cal, gas, shelter, people, plan, communities, gas_places) = loaded;
    let people = people.ok_or_else(|| anyhow!("demo accounts missing"))?;
    let plan = plan.ok_or_else(|| anyhow!("demo flood plan missing"))?;
    let (gas, shelter) = (Arc::new(gas), Arc::new(shelter));
    let cal = Arc::new(cal);
    let rules = Arc::new(rules);
    let mut written = 0usize;
    let demo_places: Vec<Place> = communities
        .iter()
        .filter(|c| c.id == demo_community)
        .flat_map(|c| c.shelter.iter().chain(c.buildings.iter()).cloned())
        .filter(|p| p.lon.is_some() && p.lat.is_some())
        .collect();
    for (index, community) in communities.into_iter().enumerate() {
        let is_demo = community.id == demo_community;
        let mut rng =
            ChaCha20Rng::seed_from_u64(DEMO_SEED ^ 0x6A2D_0006 ^ ((index as u64 + 1) * 7919));
        let diligence = if is_demo {
            0.9
        } else {
            rng.gen_range(0.55..0.98)
        };
        let history = History {
            rng,
            community,
            diligence,
            people,
            plan: is_demo.then_some(plan),
            gas: gas.clone(),
            shelter: shelter.clone(),
            gas_places: if is_demo {
                gas_places.clone()
            } else {
                Vec::new()
            },
            cal: cal.clone(),
            rules: rules.clone(),
            now,
        };
        let n = app
            .store
            .write(WriteCtx::system("demo-hazards"), move |tx| {
                let mut h = history;
                h.write(tx)
            })
            .await
            .context("demo hazards")?;
        written += n;
    }
    let max_months = app.config.risks.max_review_months;
    let worker = people.worker;
    written += app
        .store
        .write(WriteCtx::system("demo-risks"), move |tx| {
            demo_risks(tx, demo_community, worker, &demo_places, max_months)
        })
        .await
        .context("demo risks")?;
    let t = app.config.supervision.thresholds();
    let rounds = app
        .store
        .write(WriteCtx::system("demo-hazards"), move |tx| {
            let mut n = 0;
            for q in 1..=4 {
                if let Some(r) = sup::quarterly_for(tx, Quarter { year: YEAR, q }, &t)? {
                    n += 1 + r.communities as usize;
                }
            }
            Ok(n)
        })
        .await?;
    if app.store.dialect() == anxin_store::Dialect::Postgres {
        app.store.read(|c, _| c.batch("ANALYZE hazards")).await?;
    }
    Ok(written + rounds)
}

/// The demo community's risk register: what a community on the 府河 in the old town would list
/// (type, risk, likelihood 1–5, consequence 1–5, controls, where), owned by its community worker
/// and placed on its shelter and buildings so the risk map has them.
const RISKS: &[(&str, &str, i64, i64, &str, &str)] = &[
    (
        "flood",
        "汛期府河水位上涨，沿河低洼院落内涝",
        3,
        4,
        "汛期河道巡查；沙袋、抽水泵预置；防汛应急预案",
        "沿河低洼院落",
    ),
    (
        "gas",
        "老旧居民楼燃气胶管老化、私接引发泄漏",
        3,
        5,
        "燃气入户周检；加装燃气泄漏报警器",
        "老旧居民楼",
    ),
    (
        "fire",
        "电动自行车楼道停放、入户充电引发火灾",
        4,
        4,
        "集中充电桩；楼道巡查清理；消防宣传",
        "楼道及架空层",
    ),
    (
        "structural",
        "老旧房屋外墙饰面脱落",
        2,
        3,
        "房屋安全巡查；危险区域围挡",
        "老旧楼栋外立面",
    ),
    (
        "public_health",
        "高温天气独居老人中暑",
        3,
        3,
        "高温预警后入户探访；社区纳凉点",
        "独居老人住户",
    ),
    (
        "traffic",
        "学校周边上下学时段人车混行",
        2,
        2,
        "护学岗；错峰放学",
        "小学门口路段",
    ),
];

fn demo_risks(
    tx: &mut Tx<'_>,
    community: Uuid,
    owner: Uuid,
    places: &[Place],
    max_months: u32,
) -> anxin_store::Result<usize> {
    use anxin_store::hazards::risks::{self, RiskInput};
    let sys = anxin_store::scope::Caller::system();
    for (i, (kind, title, likelihood, consequence, controls, label)) in RISKS.iter().enumerate() {
        let at = (!places.is_empty()).then(|| &places[(i * 7) % places.len()]);
        risks::create(
            tx,
            &sys,
            &RiskInput {
                node_id: Some(community),
                risk_type: Some((*kind).into()),
                title: Some((*title).into()),
                likelihood: Some(*likelihood),
                consequence: Some(*consequence),
                controls: Some((*controls).into()),
                owner_user_id: Some(owner),
                lon: at.and_then(|p| p.lon),
                lat: at.and_then(|p| p.lat),
                place_label: Some((*label).into()),
                ..RiskInput::default()
            },
            max_months,
        )?;
    }
    Ok(RISKS.len())
}

fn template(c: &mut dyn anxin_store::Conn, code: &str) -> anxin_store::Result<Option<Template>> {
    let Some((id, name)) = c
        .query_one(
            "SELECT id, name FROM inspection_templates WHERE code = $1",
            &params![code],
        )?
        .map(|r| -> anxin_store::Result<(Uuid, String)> { Ok((r.get("id")?, r.get("name")?)) })
        .transpose()?
    else {
        return Ok(None);
    };
    let rows = c.query(
        "SELECT id, position, code, text, answer_type, answer_spec, fail_grade \
         FROM inspection_items WHERE template_id = $1 ORDER BY position",
        &params![id],
    )?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        let spec: String = r.get("answer_spec")?;
        items.push(Item {
            id: r.get("id")?,
            position: r.get("position")?,
            code: r.get("code")?,
            text: r.get("text")?,
            answer_type: r.get("answer_type")?,
            spec: serde_json::from_str(&spec).unwrap_or_default(),
            fail_grade: r.get("fail_grade")?,
        });
    }
    Ok(Some(Template { id, name, items }))
}

/// 锦江区's communities (the demo community's district), each with its shelter and buildings.
fn communities(c: &mut dyn anxin_store::Conn, demo: Uuid) -> anxin_store::Result<Vec<Community>> {
    let rows = c.query(
        "SELECT n.id, n.name FROM nodes n JOIN nodes s ON s.id = n.parent_id \
         WHERE n.level = 'community' AND s.parent_id = \
           (SELECT st.parent_id FROM nodes cm JOIN nodes st ON st.id = cm.parent_id WHERE cm.id = $1) \
         ORDER BY n.name, n.id",
        &params![demo],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.get("id")?;
        let shelter = c
            .query_one(
                "SELECT id, name, lon, lat FROM facilities WHERE node_id = $1 AND kind = 'shelter' \
                 ORDER BY name, id LIMIT 1",
                &params![id],
            )?
            .map(|f| -> anxin_store::Result<Place> {
                Ok(Place {
                    kind: "facility",
                    id: f.get("id")?,
                    label: f.get("name")?,
                    grid: None,
                    lon: f.get("lon")?,
                    lat: f.get("lat")?,
                })
            })
            .transpose()?;
        let buildings = c
            .query(
                "SELECT id, name, grid_id, lon, lat FROM buildings WHERE community_id = $1 \
                 ORDER BY name, id",
                &params![id],
            )?
            .iter()
            .map(|b| {
                Ok(Place {
                    kind: "building",
                    id: b.get("id")?,
                    label: b.get("name")?,
                    grid: b.get("grid_id")?,
                    lon: b.get("lon")?,
                    lat: b.get("lat")?,
                })
            })
            .collect::<anxin_store::Result<Vec<_>>>()?;
        out.push(Community {
            id,
            name: r.get("name")?,
            shelter,
            buildings,
        });
    }
    Ok(out)
}

/// [`GAS_SAMPLE`] dwellings of the demo community spread over its buildings.
fn gas_sample(c: &mut dyn anxin_store::Conn, demo: Uuid) -> anxin_store::Result<Vec<Place>> {
    let rows = c.query(
        "SELECT d.id, d.number, b.name, b.grid_id, b.lon, b.lat FROM dwellings d \
         JOIN buildings b ON b.id = d.building_id WHERE b.community_id = $1 \
         ORDER BY b.name, d.number, d.id",
        &params![demo],
    )?;
    let step = (rows.len() / GAS_SAMPLE).max(1);
    rows.iter()
        .step_by(step)
        .take(GAS_SAMPLE)
        .map(|r| {
            let building: String = r.get("name")?;
            let number: String = r.get("number")?;
            Ok(Place {
                kind: "dwelling",
                id: r.get("id")?,
                label: format!("{building} {number}"),
                grid: r.get("grid_id")?,
                lon: r.get("lon")?,
                lat: r.get("lat")?,
            })
        })
        .collect()
}

/// One community's year, written in one transaction.
struct History {
    rng: ChaCha20Rng,
    community: Community,
    diligence: f64,
    people: People,
    /// The flood plan, in the demo community only: its major hazards start it.
    plan: Option<Plan>,
    gas: Arc<Option<Template>>,
    shelter: Arc<Option<Template>>,
    gas_places: Vec<Place>,
    cal: Arc<WorkCalendar>,
    rules: Arc<Vec<GradeRule>>,
    now: DateTime<Utc>,
}

/// Rows gathered for multi-row inserts.
#[derive(Default)]
struct Rows {
    schedules: Vec<Vec<Value>>,
    inspections: Vec<Vec<Value>>,
    answers: Vec<Vec<Value>>,
    hazards: Vec<Vec<Value>>,
    events: Vec<Vec<Value>>,
    incidents: Vec<Vec<Value>>,
}

/// An event of a hazard: when, who, what, from which state to which, the note.
type Event<'a> = (
    DateTime<Utc>,
    Option<Uuid>,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    String,
);

/// A finding to turn into a hazard.
struct Finding<'a> {
    place: &'a Place,
    source: &'static str,
    inspection: Option<Uuid>,
    answer: Option<Uuid>,
    category: String,
    finding: String,
    grade: HazardGrade,
    found: DateTime<Utc>,
    reporter: Option<Uuid>,
}

impl History {
    fn write(&mut self, tx: &mut Tx) -> anxin_store::Result<usize> {
        let mut rows = Rows::default();
        let gas = self.gas.clone();
        let shelter = self.shelter.clone();
        if let Some(gas) = gas.as_ref() {
            let places = std::mem::take(&mut self.gas_places);
            for p in &places {
                self.schedule(tx, &mut rows, gas, p, "weekly", GAS_FAIL, Some(GAS_WEIGHTS));
            }
        }
        if let (Some(t), Some(p)) = (shelter.as_ref(), self.community.shelter.clone()) {
            self.schedule(tx, &mut rows, t, &p, "monthly", SHELTER_FAIL, None);
        }
        self.staff_reports(tx, &mut rows);
        let n = rows.schedules.len()
            + rows.inspections.len()
            + rows.hazards.len()
            + rows.incidents.len();
        tx.insert_many(
            "inspection_schedules",
            &[
                "id",
                "node_id",
                "template_id",
                "name",
                "target_kind",
                "target_id",
                "period",
                "assignee_user_id",
                "starts_on",
                "active",
                "created_by",
                "created_at",
                "updated_at",
            ],
            &rows.schedules,
        )?;
        tx.insert_many(
            "inspections",
            &[
                "id",
                "node_id",
                "grid_id",
                "template_id",
                "schedule_id",
                "period_key",
                "target_kind",
                "target_id",
                "place_label",
                "lon",
                "lat",
                "inspector_user_id",
                "status",
                "failed_count",
                "started_at",
                "done_at",
                "created_at",
                "updated_at",
            ],
            &rows.inspections,
        )?;
        tx.insert_many(
            "incidents",
            &[
                "id",
                "node_id",
                "plan_id",
                "plan_version_id",
                "title",
                "exercise",
                "status",
                "trigger_kind",
                "activated_by",
                "activated_at",
                "closed_by",
                "closed_at",
                "created_at",
                "updated_at",
            ],
            &rows.incidents,
        )?;
        tx.insert_many(
            "hazards",
            &[
                "id",
                "node_id",
                "grid_id",
                "place_kind",
                "place_id",
                "place_label",
                "lon",
                "lat",
                "source",
                "inspection_id",
                "answer_id",
                "category",
                "finding",
                "grade",
                "state",
                "responsible_party",
                "assignee_user_id",
                "found_at",
                "plan_due_at",
                "fix_due_at",
                "incident_id",
                "plan_started_at",
                "fixed_at",
                "accepted_by",
                "accepted_at",
                "closed_at",
                "closed_on_time",
                "created_by",
                "created_at",
                "updated_at",
            ],
            &rows.hazards,
        )?;
        unlogged_many(
            tx,
            "INSERT INTO inspection_answers (id, inspection_id, item_id, position, item_text, \
             answer, passed, note, hazard_id, created_at) VALUES ",
            &rows.answers,
        )?;
        unlogged_many(
            tx,
            "INSERT INTO hazard_events (id, hazard_id, seq, at, actor, kind, from_state, \
             to_state, note, evidence) VALUES ",
            &rows.events,
        )?;
        Ok(n)
    }

    /// A schedule of `template` for `place` from 1 January, and its inspections through the
    /// year (each period done with the community's diligence, a bit better than its fixes).
    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &mut self,
        tx: &mut Tx,
        rows: &mut Rows,
        template: &Template,
        place: &Place,
        period: &'static str,
        fail: f64,
        weights: Option<&[(&str, u32)]>,
    ) {
        let id = tx.new_id();
        let start = date(YEAR, 1, 1);
        let created = local(start, 9, 0);
        let (name, target_id) = if period == "weekly" {
            (
                format!("{GAS_SCHEDULE_PREFIX} · {}", place.label),
                Some(place.id),
            )
        } else {
            (format!("避难场所月检 · {}", self.community.name), None)
        };
        let assignee = self.plan.map(|_| self.people.grid);
        rows.schedules.push(vec![
            Value::Uuid(id),
            Value::Uuid(self.community.id),
            Value::Uuid(template.id),
            Value::Text(name),
            Value::Text(place.kind.into()),
            target_id.into(),
            Value::Text(period.into()),
            assignee.into(),
            Value::Date(start),
            Value::Bool(true),
            Value::Null,
            Value::Time(created),
            Value::Time(created),
        ]);
        // (period key, the day it is done)
        let mut slots: Vec<(String, NaiveDate)> = Vec::new();
        if period == "weekly" {
            let mut monday = date(YEAR, 1, 6);
            while monday <= date(YEAR, 12, 29) {
                let w = monday.iso_week();
                let day = monday + Duration::days(self.rng.gen_range(0..5));
                slots.push((format!("{}-W{:02}", w.year(), w.week()), day));
                monday += Duration::days(7);
            }
        } else {
            for m in 1..=12 {
                let day = date(YEAR, m, self.rng.gen_range(2..26));
                slots.push((format!("{YEAR}-{m:02}"), day));
            }
        }
        let done_rate = (self.diligence + 0.06).min(0.99);
        let inspector = self.plan.map(|_| self.people.grid);
        for (key, day) in slots {
            if !self.rng.gen_bool(done_rate) {
                continue;
            }
            let started = local(day, self.rng.gen_range(9..17), self.rng.gen_range(0..60));
            let done = started + Duration::minutes(self.rng.gen_range(8..25));
            if done >= self.now {
                continue;
            }
            let iid = tx.new_id();
            let failed: Option<usize> = if self.rng.gen_bool(fail) {
                Some(pick_item(&mut self.rng, template, weights))
            } else {
                None
            };
            for (i, item) in template.items.iter().enumerate() {
                let aid = tx.new_id();
                let fails = failed == Some(i);
                let (answer, passed) = answer_for(item, fails);
                let hazard = if fails {
                    let grade = if item.fail_grade == "major" && self.plan.is_some() {
                        HazardGrade::Major
                    } else {
                        HazardGrade::Minor
                    };
                    Some(self.hazard(
                        tx,
                        rows,
                        Finding {
                            place,
                            source: "inspection",
                            inspection: Some(iid),
                            answer: Some(aid),
                            category: template.name.clone(),
                            finding: format!("{}：{answer}", item.text),
                            grade,
                            found: done,
                            reporter: inspector,
                        },
                    ))
                } else {
                    None
                };
                rows.answers.push(vec![
                    Value::Uuid(aid),
                    Value::Uuid(iid),
                    Value::Uuid(item.id),
                    Value::Int(item.position),
                    Value::Text(item.text.clone()),
                    Value::Text(answer),
                    passed.into(),
                    Value::Text(String::new()),
                    hazard.into(),
                    Value::Time(done),
                ]);
            }
            rows.inspections.push(vec![
                Value::Uuid(iid),
                Value::Uuid(self.community.id),
                place.grid.into(),
                Value::Uuid(template.id),
                Value::Uuid(id),
                Value::Text(key),
                Value::Text(place.kind.into()),
                Value::Uuid(place.id),
                Value::Text(place.label.clone()),
                place.lon.into(),
                place.lat.into(),
                inspector.into(),
                Value::Text("done".into()),
                Value::Int(i64::from(failed.is_some())),
                Value::Time(started),
                Value::Time(done),
                Value::Time(started),
                Value::Time(done),
            ]);
        }
    }

    /// Hazards staff report by walking the community: one to five a quarter.
    fn staff_reports(&mut self, tx: &mut Tx, rows: &mut Rows) {
        if self.community.buildings.is_empty() {
            return;
        }
        let buildings = self.community.buildings.clone();
        for q in 0..4u32 {
            for _ in 0..self.rng.gen_range(1..=5) {
                let day = date(YEAR, q * 3 + 1, 1) + Duration::days(self.rng.gen_range(0..88));
                let found = local(day, self.rng.gen_range(8..18), self.rng.gen_range(0..60));
                if found >= self.now {
                    continue;
                }
                let b = &buildings[self.rng.gen_range(0..buildings.len())];
                let (category, finding) =
                    STAFF_FINDINGS[self.rng.gen_range(0..STAFF_FINDINGS.len())];
                let reporter = self.plan.map(|_| self.people.worker);
                self.hazard(
                    tx,
                    rows,
                    Finding {
                        place: b,
                        source: "staff",
                        inspection: None,
                        answer: None,
                        category: category.into(),
                        finding: finding.into(),
                        grade: HazardGrade::Minor,
                        found,
                        reporter,
                    },
                );
            }
        }
    }

    /// A hazard, its life to the demo's day, and its events; returns its id.
    fn hazard(&mut self, tx: &mut Tx, rows: &mut Rows, f: Finding<'_>) -> Uuid {
        let id = tx.new_id();
        let rule = self.rules.iter().find(|r| r.grade == f.grade).cloned();
        let (fix_term, plan_term, responsible) = match &rule {
            Some(r) => (r.fix_within, r.plan_within, r.responsible.clone()),
            None => (
                anxin_domain::calendar::Term::Days(3),
                None,
                "物业服务企业".to_owned(),
            ),
        };
        let fix_due = due(f.found, fix_term, &self.cal);
        let plan_due = plan_term.map(|t| due(f.found, t, &self.cal));
        let mut events: Vec<Event<'_>> = vec![(
            f.found,
            f.reporter,
            "reported",
            None,
            Some("reported"),
            f.finding.clone(),
        )];
        let assigned = f.found + Duration::hours(1);
        let remediating = f.found + Duration::hours(3);
        let mut state = "reported";
        if assigned < self.now {
            events.push((
                assigned,
                f.reporter,
                "assigned",
                Some("reported"),
                Some("assigned"),
                responsible.clone(),
            ));
            state = "assigned";
        }
        if remediating < self.now {
            events.push((
                remediating,
                None,
                "remediating",
                Some("assigned"),
                Some("remediating"),
                String::new(),
            ));
            state = "remediating";
        }
        // The plan's start, by linking a real activation of the flood plan.
        let mut incident = None;
        let mut plan_started = None;
        if let (Some(plan), Some(pd)) = (self.plan, plan_due) {
            let late = !self.rng.gen_bool(0.85);
            let at = if late {
                pd + Duration::hours(self.rng.gen_range(2..16))
            } else {
                f.found + Duration::hours(self.rng.gen_range(1..20))
            };
            if at < self.now {
                let iid = tx.new_id();
                let closed = (at + Duration::days(8)).min(self.now - Duration::hours(1));
                rows.incidents.push(vec![
                    Value::Uuid(iid),
                    Value::Uuid(self.community.id),
                    Value::Uuid(plan.id),
                    Value::Uuid(plan.version),
                    Value::Text(format!("重大燃气隐患处置 · {}", f.place.label)),
                    Value::Bool(false),
                    Value::Text("closed".into()),
                    Value::Text("manual".into()),
                    Value::Uuid(self.people.worker),
                    Value::Time(at),
                    Value::Uuid(self.people.worker),
                    Value::Time(closed),
                    Value::Time(at),
                    Value::Time(closed),
                ]);
                events.push((
                    at,
                    Some(self.people.worker),
                    "plan_started",
                    None,
                    None,
                    "启动社区防汛应急预案（燃气抢修）".into(),
                ));
                incident = Some(iid);
                plan_started = Some(at);
            }
        }
        // The fix: on time with the community's diligence, else late or not yet.
        let r: f64 = self.rng.gen();
        let earliest = remediating + Duration::hours(1);
        let fixed = if r < self.diligence {
            let span = (fix_due - earliest).num_minutes().max(1);
            Some(earliest + Duration::minutes(self.rng.gen_range(0..span)))
        } else if r < self.diligence + (1.0 - self.diligence) * 0.75 {
            Some(fix_due + Duration::hours(self.rng.gen_range(6..240)))
        } else {
            None
        };
        let fixed = fixed.filter(|t| *t < self.now - Duration::hours(6));
        let major = f.grade == HazardGrade::Major;
        let (mut accepted_by, mut accepted_at, mut closed_at) = (None, None, None);
        if let Some(fx) = fixed {
            events.push((
                fx,
                None,
                "fixed",
                Some("remediating"),
                Some("fixed"),
                "整改完成".into(),
            ));
            state = "fixed";
            let accept = fx + Duration::hours(self.rng.gen_range(2..30));
            if major {
                if accept < self.now {
                    events.push((
                        accept,
                        Some(self.people.inspector),
                        "accepted",
                        Some("fixed"),
                        Some("accepted"),
                        "第三方验收合格".into(),
                    ));
                    state = "accepted";
                    accepted_by = Some(self.people.inspector);
                    accepted_at = Some(accept);
                    let close = accept + Duration::hours(2);
                    if close < self.now {
                        events.push((
                            close,
                            Some(self.people.worker),
                            "closed",
                            Some("accepted"),
                            Some("closed"),
                            "销号".into(),
                        ));
                        state = "closed";
                        closed_at = Some(close);
                    }
                }
            } else {
                let close = fx + Duration::hours(2);
                if close < self.now {
                    events.push((
                        close,
                        f.reporter,
                        "closed",
                        Some("fixed"),
                        Some("closed"),
                        "复查合格，销号".into(),
                    ));
                    state = "closed";
                    closed_at = Some(close);
                }
            }
        }
        let on_time = closed_at.map(|_| {
            fixed.is_some_and(|fx| fx <= fix_due)
                && match (plan_due, plan_started) {
                    (Some(pd), Some(ps)) => ps <= pd,
                    (Some(_), None) => false,
                    _ => true,
                }
        });
        for (seq, (at, actor, kind, from, to, note)) in events.into_iter().enumerate() {
            rows.events.push(vec![
                Value::Uuid(tx.new_id()),
                Value::Uuid(id),
                Value::Int(seq as i64 + 1),
                Value::Time(at),
                actor.into(),
                Value::Text(kind.into()),
                from.into(),
                to.into(),
                Value::Text(note),
                Value::Text("[]".into()),
            ]);
        }
        let updated = closed_at.or(accepted_at).or(fixed).unwrap_or(f.found);
        rows.hazards.push(vec![
            Value::Uuid(id),
            Value::Uuid(self.community.id),
            f.place.grid.into(),
            Value::Text(f.place.kind.into()),
            Value::Uuid(f.place.id),
            Value::Text(f.place.label.clone()),
            f.place.lon.into(),
            f.place.lat.into(),
            Value::Text(f.source.into()),
            f.inspection.into(),
            f.answer.into(),
            Value::Text(f.category),
            Value::Text(f.finding),
            Value::Text(f.grade.as_str().into()),
            Value::Text(state.into()),
            Value::Text(responsible),
            Value::Null,
            Value::Time(f.found),
            plan_due.into(),
            Value::Time(fix_due),
            incident.into(),
            plan_started.into(),
            fixed.into(),
            accepted_by.into(),
            accepted_at.into(),
            closed_at.into(),
            on_time.into(),
            f.reporter.into(),
            Value::Time(f.found),
            Value::Time(updated),
        ]);
        id
    }
}

/// An item to fail: by `weights` (item codes), else any item that can fail.
fn pick_item(rng: &mut ChaCha20Rng, t: &Template, weights: Option<&[(&str, u32)]>) -> usize {
    if let Some(w) = weights {
        let total: u32 = w.iter().map(|(_, n)| n).sum();
        let mut x = rng.gen_range(0..total.max(1));
        for (code, n) in w {
            if x < *n {
                if let Some(i) = t.items.iter().position(|it| it.code == *code) {
                    return i;
                }
            }
            x = x.saturating_sub(*n);
        }
    }
    let can_fail: Vec<usize> = t
        .items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.answer_type != "text")
        .map(|(i, _)| i)
        .collect();
    if can_fail.is_empty() {
        0
    } else {
        can_fail[rng.gen_range(0..can_fail.len())]
    }
}

/// The answer a worker gives to `item`, passing or failing, and whether it passed.
fn answer_for(item: &Item, fails: bool) -> (String, Option<bool>) {
    match item.answer_type.as_str() {
        "pass_fail" => (if fails { "fail" } else { "pass" }.into(), Some(!fails)),
        "choice" => {
            let failing: Vec<&str> = item.spec["failing"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let options: Vec<&str> = item.spec["options"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let pick = if fails {
                failing.first().copied()
            } else {
                options.iter().copied().find(|o| !failing.contains(o))
            };
            (pick.unwrap_or_default().to_owned(), Some(!fails))
        }
        "number" => {
            let (min, max) = (
                item.spec["min"].as_f64().unwrap_or(0.0),
                item.spec["max"].as_f64().unwrap_or(100.0),
            );
            let v = if fails {
                max + (max - min).abs().max(1.0)
            } else {
                (min + max) / 2.0
            };
            (format!("{v}"), Some(!fails))
        }
        _ => ("无".into(), None),
    }
}

/// Multi-row inserts into an operational table, in chunks under both backends' limits.
fn unlogged_many(tx: &mut Tx, head: &str, rows: &[Vec<Value>]) -> anxin_store::Result<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    for part in rows.chunks((30_000 / width.max(1)).clamp(1, 1000)) {
        let mut sql = String::from(head);
        let mut params = Vec::with_capacity(part.len() * width);
        for (i, row) in part.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for j in 0..width {
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", params.len() + j + 1));
            }
            sql.push(')');
            params.extend(row.iter().cloned());
        }
        tx.execute_unlogged(&sql, &params)?;
    }
    Ok(())
}
