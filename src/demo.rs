//! `anxin demo`: a deterministic demo data set on the real Chengdu tree.
//!
//! Deterministic: the demo opens the store with a seeded id generator and a fixed clock, and every
//! random choice comes from a ChaCha generator seeded per community, so the same command gives the
//! same records (ids included) on every machine. Idempotent: a community that has grids is
//! skipped, as are accounts that exist, so a second run does nothing. Each community is written
//! as one write for its structure (grids, compounds, buildings, dwellings, facilities) and then
//! writes of [`HOUSEHOLDS_PER_WRITE`] households (people, memberships, vulnerable people); a run
//! interrupted in the middle of a community leaves that community partial (start from a fresh
//! database then).
//!
//! It builds the whole of 锦江区 (510104: every street and community of the 2023 statistical
//! division list in `fixtures/divisions/chengdu`) with [`DEFAULT_PEOPLE`] people, or
//! `anxin demo --people N`. Rates, with their sources (all approximate, rounded; the demo is
//! illustrative, not a statistical model of any real community):
//! - Size: 锦江区's resident population was 902,933 in the 2020 census (成都市第七次全国人口普查
//!   公报, 2021); the default demo is about one ninth of it, spread over the district's
//!   communities with weights 0.6–1.4.
//! - Household size: Chengdu's average family household size was about 2.3 people in the 2020
//!   census (成都市第七次全国人口普查公报: 2.30); the size mix below (28% one person, 34% two,
//!   24% three, 9% four, 5% five) has mean ≈2.29.
//! - Age structure: Chengdu 2020 census, 0–14 ≈13.3%, 15–59 ≈68.7%, 60+ ≈18.0% of which 65+
//!   ≈13.6% (成都市第七次全国人口普查公报).
//! - Floating population: the same bulletin counts about 8.45 million 流动人口 in a resident
//!   population of 20,937,757 (≈40%); central districts such as 锦江 are near that share, we use
//!   38% of households (people registered elsewhere, documents from other regions), plus 4%
//!   寄住人口 (registered in Chengdu, living here).
//! - Disability: 第二次全国残疾人抽样调查 (2006) prevalence 6.34%; we flag 6.34% of people as
//!   `disabled`, with a higher rate for the elderly (the survey found most disabled people are
//!   60+): 3.5% under 60, 15% at 60+, which averages ≈6.3% on the age structure above.
//! - Elderly living alone: every one-person household whose member is 65+ (the 2020 census
//!   counts such households separately; nationally they were ≈6% of family households, which our
//!   household and age mix reproduces approximately).
//! - Pregnancy: Chengdu's 2020 birth rate was about 6.9‰; a pregnancy lasts ≈0.75 year, so about
//!   5‰ of people are pregnant at any time: we flag women aged 20–44 with probability 2.7%.
//! - Facilities per community: one shelter (capacity ≈ 1 place per 2 residents, within the
//!   1.5 m²/person of GB 21734-2008 for a community shelter's area), one supply depot, one medical
//!   point (社区卫生服务站), one convertible (平急两用) space, and two hydrants per compound
//!   (GB 50974-2014 spaces outdoor hydrants at most 120 m apart).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anxin_domain::{gb11643_check_digit, ManualClock, SeededIdGen};
use anxin_store::people::{self, PersonInput};
use anxin_store::places::{self, BuildingInput, DwellingInput, FacilityInput, LocationInput};
use anxin_store::scope::Caller;
use anxin_store::tree::{self, TreeStore};
use anxin_store::{Value, WriteCtx};
use chrono::{Datelike, NaiveDate, TimeZone};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::app::{App, OpenOptions};
use crate::config::Config;

pub const DEMO_SEED: u64 = 20_260_101;
/// People in the default demo (about one ninth of 锦江区's 902,933 residents).
pub const DEFAULT_PEOPLE: usize = 100_000;
/// The district the demo fills.
pub const DEMO_DISTRICT_CODE: &str = "510104";
/// The password of every demo account (listed in the README). Demo data only.
pub const DEMO_PASSWORD: &str = "Anxin-demo-2026";

/// One account per staff role: (username, display name, role, where the grant applies).
pub const DEMO_ACCOUNTS: &[(&str, &str, &str, &str)] = &[
    ("sysadmin", "系统管理员", "system_admin", "5101"),
    ("secadmin", "安全管理员", "security_admin", "5101"),
    ("auditor", "审计管理员", "audit_admin", "5101"),
    ("district", "锦江区应急管理局", "district_officer", "510104"),
    ("street", "锦官驿街道应急办", "street_officer", "510104017"),
    (
        "worker",
        "水井坊社区工作者",
        "community_worker",
        DEMO_COMMUNITY_CODE,
    ),
    ("grid", "一网格网格员", "grid_worker", "grid"),
    ("provider", "服务商", "provider", DEMO_COMMUNITY_CODE),
    ("volunteer", "志愿者", "volunteer", DEMO_COMMUNITY_CODE),
    ("inspector", "第三方验收机构", "inspector", "510104"),
];
pub const DEMO_COMMUNITY_CODE: &str = "510104017001";
/// The grid of 水井坊社区 the `grid` account works on.
pub const DEMO_GRID_NAME: &str = "一网格";

/// 锦江区's approximate extent (WGS84): every demo location lies inside.
const LON: (f64, f64) = (104.06, 104.14);
const LAT: (f64, f64) = (30.57, 30.67);

/// Common surnames, most frequent first (weights roughly follow their national frequency).
const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 71),
    ("张", 68),
    ("刘", 54),
    ("陈", 46),
    ("杨", 32),
    ("黄", 24),
    ("赵", 20),
    ("吴", 20),
    ("周", 19),
    ("徐", 15),
    ("孙", 15),
    ("马", 12),
    ("朱", 12),
    ("胡", 12),
    ("郭", 11),
    ("何", 11),
    ("林", 10),
    ("罗", 10),
    ("高", 10),
    ("郑", 9),
    ("梁", 8),
    ("谢", 8),
    ("宋", 7),
    ("唐", 7),
    ("许", 7),
    ("韩", 6),
    ("冯", 6),
    ("邓", 6),
    ("曹", 6),
    ("彭", 5),
    ("曾", 5),
    ("肖", 5),
    ("田", 5),
    ("董", 5),
    ("袁", 4),
    ("潘", 4),
    ("蒋", 4),
    ("蔡", 4),
    ("余", 4),
    ("杜", 4),
    ("叶", 4),
    ("程", 4),
    ("魏", 3),
    ("苏", 3),
    ("吕", 3),
    ("丁", 3),
    ("任", 3),
    ("廖", 3),
    ("雷", 3),
    ("欧阳", 1),
    ("司马", 1),
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "兰", "霞", "平", "刚", "桂", "建", "华", "志", "晓", "东", "雨", "桐", "子",
    "涵", "浩", "然", "欣", "怡", "宇", "轩", "梓", "萱", "思", "睿", "博", "文", "俊", "嘉", "佳",
    "琪", "晨", "阳", "婷", "雪", "梅", "玉", "红", "海", "波", "林", "鹏", "辉", "斌", "鑫", "宁",
    "凤", "琴", "云", "蓉", "川", "成", "锦", "蜀", "德", "安", "康",
];
const COMPOUND_SUFFIX: &[&str] = &["小区", "苑", "花园", "公寓", "院落", "家园"];
const COMPOUND_STEM: &[&str] = &[
    "锦华", "春熙", "东湖", "合江", "望江", "府河", "芙蓉", "锦城", "水井", "莲桂", "书院", "盐市",
    "牛沙", "双桂", "静居", "柳江", "三圣", "成龙", "狮子", "沙河",
];
/// Regions floating residents come from (county-level GB/T 2260 codes): Sichuan and neighbours.
const ORIGINS: &[&str] = &[
    "511302", "511304", "510704", "511102", "511602", "513401", "510502", "511502", "510302",
    "511702", "511902", "500101", "500112", "530102", "520102", "420102", "610102", "620102",
];
/// Household size mix (mean ≈2.29; see the module comment).
const HH_SIZES: &[(usize, u32)] = &[(1, 28), (2, 34), (3, 24), (4, 9), (5, 5)];
/// Age bands (from, to inclusive, weight ‰) after the Chengdu 2020 census structure.
const AGE_BANDS: &[(u32, u32, u32)] = &[
    (0, 14, 133),
    (15, 29, 210),
    (30, 44, 260),
    (45, 59, 217),
    (60, 64, 44),
    (65, 79, 106),
    (80, 99, 30),
];
/// The year "now" is in (the demo's fixed clock).
const NOW_YEAR: i32 = 2026;

fn demo_start() -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 5, 1, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("demo start time"))
}

/// Build the default demo with its own seeded app (fixed clock and ids), then close it.
pub fn build_seeded(config: &Config) -> anyhow::Result<String> {
    build_seeded_with(config, DEFAULT_PEOPLE)
}

/// Build a demo of `people` people with its own seeded app (fixed clock and ids), then close it.
pub fn build_seeded_with(config: &Config, people: usize) -> anyhow::Result<String> {
    let clock = ManualClock::new(demo_start()?);
    let ids = Arc::new(SeededIdGen::new(Arc::new(clock.clone()), DEMO_SEED));
    let app = App::open(
        config.clone(),
        OpenOptions {
            clock: Arc::new(clock),
            ids: Some(ids),
            migrate_upto: None,
        },
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(build_with(&app, people));
    drop(rt);
    drop(app);
    out
}

/// Build the default demo on an open app (idempotent).
pub async fn build(app: &App) -> anyhow::Result<String> {
    build_with(app, DEFAULT_PEOPLE).await
}

/// One community to build.
struct Target {
    id: Uuid,
    code: String,
    name: String,
    people: usize,
    center: (f64, f64),
}

/// Build a demo of about `total_people` people on an open app (idempotent).
pub async fn build_with(app: &App, total_people: usize) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/divisions/chengdu");
    let dir = if Path::new("fixtures/divisions/chengdu").exists() {
        Path::new("fixtures/divisions/chengdu").to_path_buf()
    } else {
        dir
    };
    let rep = crate::divisions::import(app, &dir, None, "nbs-2023")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let targets = targets(app, total_people).await?;
    // Document numbers must be unique: the sequence digits come from one counter per
    // (region, birth date), advanced in community order, so they are deterministic too.
    let mut seq: HashMap<(&'static str, NaiveDate), u32> = HashMap::new();
    let (mut built, mut skipped, mut people_n, mut households_n) = (0usize, 0usize, 0usize, 0usize);
    for (k, t) in targets.iter().enumerate() {
        let cid = t.id;
        let existing = app
            .store
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM grids WHERE community_id = $1",
                    &anxin_store::params![cid],
                )
            })
            .await?;
        let plan = plan_community(t, k as u64, &mut seq);
        if existing > 0 {
            skipped += 1;
            continue;
        }
        people_n += plan
            .households
            .iter()
            .map(|h| h.members.len())
            .sum::<usize>();
        households_n += plan.households.len();
        // The structure in one write, then households in small writes: SQLite's cost per
        // statement grows with the size of the open write (its savepoint), so many small
        // writes are much faster than one large one.
        let plan = Arc::new(plan);
        let p = plan.clone();
        let ids = app
            .store
            .write(WriteCtx::system("demo"), move |tx| write_structure(tx, &p))
            .await
            .map_err(|e| anyhow::anyhow!("demo community {}: {e}", t.code))?;
        let ids = Arc::new(ids);
        let mut from = 0;
        while from < plan.households.len() {
            let to = (from + HOUSEHOLDS_PER_WRITE).min(plan.households.len());
            let (p, i) = (plan.clone(), ids.clone());
            app.store
                .write(WriteCtx::system("demo"), move |tx| {
                    write_households(tx, &p, &i, from..to)
                })
                .await
                .map_err(|e| anyhow::anyhow!("demo community {}: {e}", t.code))?;
            from = to;
        }
        built += 1;
        if built % 10 == 0 {
            tracing::info!(built, people = people_n, "demo communities built");
        }
    }
    if built > 0 && app.store.dialect() == anxin_store::Dialect::Postgres {
        // The demo is a bulk load: give PostgreSQL's planner the new table sizes now rather than
        // whenever autovacuum gets to it (the list plans depend on them).
        app.store.read(|c, _| c.batch("ANALYZE")).await?;
    }
    let (demo_cid, demo_center) = targets
        .iter()
        .find(|t| t.code == DEMO_COMMUNITY_CODE)
        .map(|t| (t.id, t.center))
        .ok_or_else(|| anyhow::anyhow!("demo community {DEMO_COMMUNITY_CODE} missing"))?;
    let grid = app
        .store
        .read(move |c, _| {
            Ok(tree::list_grids(c, &Caller::system(), demo_cid)?
                .into_iter()
                .find(|g| g.name == DEMO_GRID_NAME)
                .map(|g| g.id))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("demo grid missing"))?;
    let mut accounts = 0;
    for (username, display, role, scope) in DEMO_ACCOUNTS {
        let name = (*username).to_owned();
        let exists = app
            .store
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM users WHERE username = $1",
                    &anxin_store::params![name],
                )
            })
            .await?;
        if exists > 0 {
            continue;
        }
        let role: anxin_domain::Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let scope = if *scope == "grid" {
            anxin_domain::Scope::Grid(grid)
        } else {
            crate::cli::resolve_scope(app, scope).await?
        };
        crate::http::admin::create_staff_user(
            app,
            username,
            display,
            DEMO_PASSWORD,
            vec![(role, scope)],
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo account {username}: {e:#}"))?;
        accounts += 1;
    }
    let devices = crate::demo_monitor::build(app, demo_cid, grid, demo_center).await?;
    let operations = crate::demo_ops::build(app, demo_cid).await?;
    let hazards = crate::demo_hazards::build(app, demo_cid).await?;
    let supplies = crate::demo_supplies::build(app, demo_cid).await?;
    if built == 0
        && accounts == 0
        && devices == 0
        && operations == 0
        && hazards == 0
        && supplies == 0
    {
        return Ok(format!(
            "demo already present ({} division changes applied)",
            rep.added + rep.renamed + rep.recoded
        ));
    }
    Ok(format!(
        "demo ready in {:.1} s: {} division changes, 锦江区 {built} communities built ({skipped} already there), {households_n} households, {people_n} people, {accounts} accounts, {devices} sensors, {operations} plan and volunteer records, {hazards} inspection and hazard records, {supplies} supplies records",
        started.elapsed().as_secs_f64(),
        rep.added + rep.renamed + rep.recoded,
    ))
}

/// 锦江区's communities in code order, each with its share of the people and a centre.
async fn targets(app: &App, total: usize) -> anyhow::Result<Vec<Target>> {
    let district = DEMO_DISTRICT_CODE;
    let rows = app
        .store
        .read(move |c, _| {
            let d = c.find_by_code(&Caller::system(), district)?;
            let mut out = Vec::new();
            for street in c.children(&Caller::system(), d.id)? {
                for comm in c.children(&Caller::system(), street.id)? {
                    out.push((
                        comm.id,
                        comm.code.clone().unwrap_or_default(),
                        comm.name.clone(),
                    ));
                }
            }
            Ok(out)
        })
        .await?;
    let mut rows = rows;
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    if rows.is_empty() {
        anyhow::bail!("no communities under {district}");
    }
    let mut rng = ChaCha20Rng::seed_from_u64(DEMO_SEED);
    let weights: Vec<f64> = rows.iter().map(|_| rng.gen_range(0.6..1.4)).collect();
    let sum: f64 = weights.iter().sum();
    // Street centres spread over the district, communities around their street's centre.
    let mut street_centres: HashMap<String, (f64, f64)> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    let mut assigned = 0usize;
    for (i, (id, code, name)) in rows.into_iter().enumerate() {
        let street = code.get(..9).unwrap_or(&code).to_owned();
        let sc = *street_centres.entry(street).or_insert_with(|| {
            (
                rng.gen_range(LON.0 + 0.012..LON.1 - 0.012),
                rng.gen_range(LAT.0 + 0.012..LAT.1 - 0.012),
            )
        });
        let center = (
            (sc.0 + rng.gen_range(-0.008..0.008)).clamp(LON.0 + 0.004, LON.1 - 0.004),
            (sc.1 + rng.gen_range(-0.008..0.008)).clamp(LAT.0 + 0.004, LAT.1 - 0.004),
        );
        let people = if i + 1 == weights.len() {
            total.saturating_sub(assigned)
        } else {
            ((total as f64) * weights[i] / sum).round() as usize
        };
        assigned += people;
        out.push(Target {
            id,
            code,
            name,
            people,
            center,
        });
    }
    Ok(out)
}

struct PersonPlan {
    name: String,
    doc: String,
    phone: Option<String>,
    population_type: &'static str,
    role: &'static str,
    vulnerable: Vec<(&'static str, &'static str, Option<&'static str>)>,
}

struct HouseholdPlan {
    grid: usize,
    building: usize,
    dwelling: usize,
    label: String,
    members: Vec<PersonPlan>,
}

struct BuildingPlan {
    compound: usize,
    grid: usize,
    name: String,
    address: String,
    floors: i64,
    lon: f64,
    lat: f64,
    /// (door number, floor, area m²)
    dwellings: Vec<(String, i64, f64)>,
}

struct FacilityPlan {
    kind: &'static str,
    name: String,
    lon: f64,
    lat: f64,
    capacity: Option<i64>,
    area_m2: Option<f64>,
}

struct CommunityPlan {
    community_id: Uuid,
    grids: Vec<String>,
    /// Each grid's outline (WGS84, a closed ring): the community's area cut into strips from
    /// west to east, so a building's grid is the strip it stands in.
    grid_outlines: Vec<Vec<(f64, f64)>>,
    compounds: Vec<String>,
    buildings: Vec<BuildingPlan>,
    households: Vec<HouseholdPlan>,
    facilities: Vec<FacilityPlan>,
}

fn pick_weighted<T: Copy>(rng: &mut impl Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (v, w) in items {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    items[0].0
}

fn age(rng: &mut impl Rng, adult: bool) -> u32 {
    loop {
        let total: u32 = AGE_BANDS.iter().map(|b| b.2).sum();
        let mut x = rng.gen_range(0..total);
        for &(from, to, w) in AGE_BANDS {
            if x < w {
                let a = rng.gen_range(from..=to);
                if !adult || a >= 18 {
                    return a;
                }
                break;
            }
            x -= w;
        }
    }
}

fn chinese_number(n: usize) -> String {
    const D: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => D[n].to_owned(),
        10 => "十".to_owned(),
        11..=19 => format!("十{}", D[n % 10]),
        20..=99 => format!(
            "{}十{}",
            D[n / 10],
            if n % 10 == 0 { "" } else { D[n % 10] }
        ),
        _ => n.to_string(),
    }
}

/// Everything one community gets, from its own seeded generator (pure: no I/O).
fn plan_community(
    t: &Target,
    index: u64,
    seq: &mut HashMap<(&'static str, NaiveDate), u32>,
) -> CommunityPlan {
    let mut rng = ChaCha20Rng::seed_from_u64(DEMO_SEED ^ (index + 1).wrapping_mul(0x9E37_79B9));
    let short = t
        .name
        .trim_end_matches("居委会")
        .trim_end_matches("社区")
        .to_owned();
    // Households first (sizes from the census mix until the community's people are placed).
    let mut sizes = Vec::new();
    let mut placed = 0usize;
    while placed < t.people {
        let s = pick_weighted(&mut rng, HH_SIZES).min(t.people - placed);
        sizes.push(s);
        placed += s;
    }
    let n_households = sizes.len();
    // A grid serves roughly 300 households in Chengdu's urban grids; at least three per
    // community, at most twelve.
    let n_grids = (n_households / 300).clamp(3, 12);
    let grids: Vec<String> = (1..=n_grids)
        .map(|i| format!("{}网格", chinese_number(i)))
        .collect();
    // Buildings: old 6–7 storey blocks and newer 18–33 storey towers, 2–4 doors a floor; about
    // 8% of dwellings stand empty.
    let n_compounds = (n_households / 250).clamp(2, 12);
    let compounds: Vec<String> = (0..n_compounds)
        .map(|i| {
            format!(
                "{}{}{}",
                short,
                COMPOUND_STEM[(index as usize * 7 + i) % COMPOUND_STEM.len()],
                COMPOUND_SUFFIX[rng.gen_range(0..COMPOUND_SUFFIX.len())]
            )
        })
        .collect();
    let compound_centres: Vec<(f64, f64)> = (0..n_compounds)
        .map(|_| {
            (
                (t.center.0 + rng.gen_range(-0.004..0.004)).clamp(LON.0, LON.1),
                (t.center.1 + rng.gen_range(-0.004..0.004)).clamp(LAT.0, LAT.1),
            )
        })
        .collect();
    // Buildings stand within SPREAD of the centre (compound ±0.004°, building ±0.0015°); the
    // grids are equal west-to-east strips of that square.
    const SPREAD: f64 = 0.0055;
    let west = t.center.0 - SPREAD;
    let width = 2.0 * SPREAD / n_grids as f64;
    let strip_of = |lon: f64| (((lon - west) / width).floor().max(0.0) as usize).min(n_grids - 1);
    let (south, north) = (t.center.1 - SPREAD, t.center.1 + SPREAD);
    let grid_outlines: Vec<Vec<(f64, f64)>> = (0..n_grids)
        .map(|g| {
            let (w, e) = (west + g as f64 * width, west + (g + 1) as f64 * width);
            vec![(w, south), (e, south), (e, north), (w, north), (w, south)]
        })
        .collect();
    let needed = (n_households as f64 * 1.08).ceil() as usize;
    let mut buildings: Vec<BuildingPlan> = Vec::new();
    let mut doors = 0usize;
    while doors < needed || buildings.is_empty() {
        let i = buildings.len();
        let compound = i % n_compounds;
        let tower = rng.gen_bool(0.35);
        let floors: i64 = if tower {
            rng.gen_range(18..=33)
        } else {
            rng.gen_range(6..=7)
        };
        let per_floor: i64 = rng.gen_range(2..=4);
        let (cx, cy) = compound_centres[compound];
        let dwellings: Vec<(String, i64, f64)> = (1..=floors)
            .flat_map(|f| (1..=per_floor).map(move |d| (f, d)))
            .map(|(f, d)| (format!("{f}{d:02}"), f, f64::from(rng_area(f, d))))
            .collect();
        doors += dwellings.len();
        let n = i / n_compounds + 1;
        let lon = (cx + rng.gen_range(-0.0015..0.0015)).clamp(LON.0, LON.1);
        let lat = (cy + rng.gen_range(-0.0015..0.0015)).clamp(LAT.0, LAT.1);
        buildings.push(BuildingPlan {
            compound,
            grid: strip_of(lon),
            name: format!("{}{n}栋", compounds[compound]),
            address: format!("成都市锦江区{}{n}栋", compounds[compound]),
            floors,
            lon,
            lat,
            dwellings,
        });
    }
    // Households fill dwellings building by building, skipping about 8% left empty.
    let mut slots = Vec::with_capacity(doors);
    for (bi, b) in buildings.iter().enumerate() {
        for di in 0..b.dwellings.len() {
            slots.push((bi, di));
        }
    }
    let mut households = Vec::with_capacity(n_households);
    let mut slot_i = 0usize;
    for size in sizes {
        while slot_i + 1 < slots.len() && rng.gen_bool(0.07) {
            slot_i += 1;
        }
        let (bi, di) = slots[slot_i.min(slots.len() - 1)];
        slot_i += 1;
        let b = &buildings[bi];
        let label = format!("{}-{}", b.name, b.dwellings[di].0);
        let floating = rng.gen_bool(0.38);
        let lodging = !floating && rng.gen_bool(0.04);
        let origin: &'static str = if floating {
            ORIGINS[rng.gen_range(0..ORIGINS.len())]
        } else {
            "510104"
        };
        let ptype = if floating {
            "floating"
        } else if lodging {
            "resident"
        } else {
            "registered"
        };
        let surname = pick_weighted(&mut rng, SURNAMES);
        let mut ages: Vec<u32> = (0..size).map(|m| age(&mut rng, m == 0)).collect();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        if ages[0] < 18 {
            ages[0] = age(&mut rng, true);
        }
        let head_age = ages[0];
        let mut members = Vec::with_capacity(size);
        let mut spouse_taken = false;
        for (m, &a) in ages.iter().enumerate() {
            let role = if m == 0 {
                "head"
            } else if !spouse_taken && a >= 18 && head_age.abs_diff(a) <= 10 {
                spouse_taken = true;
                "spouse"
            } else if head_age >= a + 40 {
                "grandchild"
            } else if head_age >= a + 16 {
                "child"
            } else if a >= head_age + 16 {
                "parent"
            } else if floating {
                "tenant"
            } else {
                "relative"
            };
            // Children take the head's surname; spouses their own.
            let sn = if role == "spouse" || role == "parent" || role == "tenant" {
                pick_weighted(&mut rng, SURNAMES)
            } else {
                surname
            };
            let g1 = GIVEN[rng.gen_range(0..GIVEN.len())];
            let name = if rng.gen_bool(0.7) {
                format!("{sn}{g1}{}", GIVEN[rng.gen_range(0..GIVEN.len())])
            } else {
                format!("{sn}{g1}")
            };
            let female = rng.gen_bool(0.5);
            let year = NOW_YEAR - 1 - a as i32;
            let birth = NaiveDate::from_ymd_opt(year, rng.gen_range(1..=12), rng.gen_range(1..=28))
                .unwrap_or_default();
            let counter = seq.entry((origin, birth)).or_insert(0);
            let s = *counter;
            *counter += 1;
            let doc = id_number(origin, birth, s, female);
            let phone = (a >= 12).then(|| {
                format!(
                    "1{}{:09}",
                    ["3", "5", "8", "9"][rng.gen_range(0..4)],
                    rng.gen_range(0..1_000_000_000u32)
                )
            });
            let mut vulnerable = Vec::new();
            let disabled_rate = if a >= 60 { 0.15 } else { 0.035 };
            if rng.gen_bool(disabled_rate) {
                vulnerable.push(("disabled", "phone_call", None));
            }
            if size == 1 && a >= 65 {
                vulnerable.push(("elderly_alone", "home_visit", Some("每日电话问候")));
            }
            if female && (20..=44).contains(&a) && rng.gen_bool(0.027) {
                vulnerable.push(("pregnant", "sms", Some("产检提醒")));
            }
            members.push(PersonPlan {
                name,
                doc,
                phone,
                population_type: ptype,
                role,
                vulnerable,
            });
        }
        households.push(HouseholdPlan {
            grid: b.grid,
            building: bi,
            dwelling: di,
            label,
            members,
        });
    }
    let residents = t.people as i64;
    let mut facilities = vec![
        FacilityPlan {
            kind: "shelter",
            name: format!("{short}社区应急避难场所"),
            lon: t.center.0 + 0.0008,
            lat: t.center.1 + 0.0006,
            capacity: Some((residents / 2).max(50)),
            area_m2: Some(((residents / 2).max(50) as f64) * 1.5),
        },
        FacilityPlan {
            kind: "supply_depot",
            name: format!("{short}社区应急物资储备点"),
            lon: t.center.0 - 0.0006,
            lat: t.center.1 + 0.0004,
            capacity: None,
            area_m2: Some(60.0),
        },
        FacilityPlan {
            kind: "medical_point",
            name: format!("{short}社区卫生服务站"),
            lon: t.center.0 + 0.0005,
            lat: t.center.1 - 0.0007,
            capacity: None,
            area_m2: Some(150.0),
        },
        FacilityPlan {
            kind: "convertible_space",
            name: format!("{short}社区平急两用活动中心"),
            lon: t.center.0 - 0.0009,
            lat: t.center.1 - 0.0005,
            capacity: Some((residents / 10).max(20)),
            area_m2: Some(300.0),
        },
    ];
    for (ci, (cx, cy)) in compound_centres.iter().enumerate() {
        for h in 1..=2 {
            facilities.push(FacilityPlan {
                kind: "hydrant",
                name: format!("{}{h}号消火栓", compounds[ci]),
                lon: (cx + rng.gen_range(-0.001..0.001)).clamp(LON.0, LON.1),
                lat: (cy + rng.gen_range(-0.001..0.001)).clamp(LAT.0, LAT.1),
                capacity: None,
                area_m2: None,
            });
        }
    }
    CommunityPlan {
        community_id: t.id,
        grids,
        grid_outlines,
        compounds,
        buildings,
        households,
        facilities,
    }
}

/// A plausible floor area: smaller flats in the end doors, larger ones high up.
fn rng_area(floor: i64, door: i64) -> u16 {
    let base = 55 + ((floor * 7 + door * 13) % 70);
    base as u16
}

fn wgs84(lon: f64, lat: f64) -> Option<LocationInput> {
    Some(LocationInput {
        lon: Some(lon),
        lat: Some(lat),
        crs: Some("wgs84".into()),
    })
}

/// Households written per `store.write` (a few thousand people, as multi-row inserts).
const HOUSEHOLDS_PER_WRITE: usize = 2_000;

/// The ids a community's households hang off.
struct StructureIds {
    grids: Vec<Uuid>,
    dwellings: Vec<Vec<Uuid>>,
}

/// Write one community's grids, compounds, buildings, dwellings and facilities.
fn write_structure(
    tx: &mut anxin_store::Tx,
    plan: &CommunityPlan,
) -> anxin_store::Result<StructureIds> {
    let sys = Caller::system();
    let cid = plan.community_id;
    let grids: Vec<Uuid> = plan
        .grids
        .iter()
        .map(|n| tree::create_grid(tx, &sys, cid, n).map(|g| g.id))
        .collect::<anxin_store::Result<_>>()?;
    let now = tx.now();
    for (id, ring) in grids.iter().zip(&plan.grid_outlines) {
        let ring: Vec<[f64; 2]> = ring.iter().map(|&(lon, lat)| [lon, lat]).collect();
        let outline = serde_json::json!({ "type": "Polygon", "coordinates": [ring] });
        tx.update(
            "grids",
            *id,
            &[
                ("geometry", outline.to_string().into()),
                ("geometry_crs", "wgs84".into()),
                ("updated_at", now.into()),
            ],
        )?;
    }
    let compounds: Vec<Uuid> = plan
        .compounds
        .iter()
        .map(|n| tree::create_compound(tx, &sys, cid, n))
        .collect::<anxin_store::Result<_>>()?;
    let mut dwellings: Vec<Vec<Uuid>> = Vec::with_capacity(plan.buildings.len());
    for b in &plan.buildings {
        let nb = places::NewBuilding::parse(BuildingInput {
            node_id: Some(compounds[b.compound]),
            grid_id: Some(grids[b.grid]),
            name: Some(b.name.clone()),
            address: Some(b.address.clone()),
            floors: Some(b.floors),
            location: wgs84(b.lon, b.lat),
        })?;
        let building = places::create_building(tx, &sys, &nb)?;
        // The building was just made in this community: its dwellings go in as one multi-row
        // insert (each still validated and logged), not one checked insert each.
        let now = tx.now();
        let mut ds = Vec::with_capacity(b.dwellings.len());
        let mut rows = Vec::with_capacity(b.dwellings.len());
        for (number, floor, area) in &b.dwellings {
            places::NewDwelling::parse(DwellingInput {
                unit_id: None,
                number: Some(number.clone()),
                floor: Some(*floor),
                area_m2: Some(*area),
            })?;
            let id = tx.new_id();
            ds.push(id);
            rows.push(vec![
                id.into(),
                building.id.into(),
                Value::Null,
                number.as_str().into(),
                (*floor).into(),
                (*area).into(),
                now.into(),
                now.into(),
            ]);
        }
        tx.insert_many(
            "dwellings",
            &[
                "id",
                "building_id",
                "unit_id",
                "number",
                "floor",
                "area_m2",
                "created_at",
                "updated_at",
            ],
            &rows,
        )?;
        dwellings.push(ds);
    }
    for f in &plan.facilities {
        let nf = places::NewFacility::parse(FacilityInput {
            node_id: Some(cid),
            kind: Some(f.kind.into()),
            name: Some(f.name.clone()),
            location: wgs84(f.lon, f.lat),
            capacity: f.capacity,
            area_m2: f.area_m2,
            status: None,
            attrs: None,
        })?;
        places::create_facility(tx, &sys, &nf)?;
    }
    Ok(StructureIds { grids, dwellings })
}

/// Write a range of a community's households. Every person is parsed as any input is
/// (`NewPerson::parse`) and written as `people::create_person` + `join_household` +
/// `add_vulnerable` write it (own data key, sealed fields, blind indexes, masks, a change-log
/// entry per row), but as multi-row inserts (`Tx::insert_many`): the community, grids and
/// dwellings were made by this demo, and document numbers are unique by construction.
fn write_households(
    tx: &mut anxin_store::Tx,
    plan: &CommunityPlan,
    ids: &StructureIds,
    range: std::ops::Range<usize>,
) -> anxin_store::Result<usize> {
    use anxin_domain::{mask_document, mask_phone, DocType, Sex};
    use anxin_store::people::{BIDX_CATEGORY, BIDX_DOCUMENT, BIDX_PHONE};
    let env = tx.env();
    let cid = plan.community_id;
    let now = tx.now();
    let today = now.date_naive();
    let seal = |dk: &anxin_crypto::DataKey, field: &str, pt: &str| -> anxin_store::Result<Value> {
        Ok(Value::Bytes(anxin_crypto::encrypt(
            dk,
            pt.as_bytes(),
            field.as_bytes(),
        )?))
    };
    let (mut hh_rows, mut people_rows, mut member_rows, mut vuln_rows, mut keys) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for h in &plan.households[range] {
        let grid = ids.grids[h.grid];
        let dwelling = ids.dwellings[h.building][h.dwelling];
        let hh = tx.new_id();
        hh_rows.push(vec![
            hh.into(),
            cid.into(),
            grid.into(),
            dwelling.into(),
            h.label.as_str().into(),
            now.into(),
            now.into(),
        ]);
        for m in &h.members {
            let p = people::NewPerson::parse(&PersonInput {
                name: m.name.clone(),
                population_type: m.population_type.into(),
                doc_type: "mainland_id".into(),
                doc_number: Some(m.doc.clone()),
                phone: m.phone.clone(),
                community_id: cid,
                grid_id: Some(grid),
                household_id: Some(hh),
                household_role: Some(m.role.into()),
                ..PersonInput::default()
            })?;
            let id = tx.new_id();
            let (dk, wrapped) = anxin_store::tx::make_data_key(env, tx.new_id())?;
            let key_id = dk.id();
            let doc = &p.document;
            let (doc_ct, doc_bidx, doc_mask) = if doc.doc_type() == DocType::None {
                (Value::Null, Value::Null, Value::Null)
            } else {
                (
                    seal(&dk, "people.doc_number", doc.number())?,
                    Value::Bytes(env.keys.blind(BIDX_DOCUMENT, &doc.normalized())),
                    Value::Text(mask_document(doc)),
                )
            };
            let (phone_ct, phone_bidx, phone_mask) = match &p.phone {
                Some(ph) => (
                    seal(&dk, "people.phone", ph.as_str())?,
                    Value::Bytes(env.keys.blind(BIDX_PHONE, ph.as_str())),
                    Value::Text(mask_phone(ph)),
                ),
                None => (Value::Null, Value::Null, Value::Null),
            };
            people_rows.push(vec![
                id.into(),
                key_id.into(),
                cid.into(),
                grid.into(),
                hh.into(),
                p.name.as_str().into(),
                p.sex.map(Sex::as_str).into(),
                p.birth_date.into(),
                p.population_type.as_str().into(),
                p.nationality.clone().into(),
                doc.doc_type().as_str().into(),
                doc_ct,
                doc_bidx,
                doc_mask,
                phone_ct,
                phone_bidx,
                phone_mask,
                now.into(),
                now.into(),
            ]);
            let role = p.household.map_or("other", |(_, r)| r.as_str());
            member_rows.push(vec![
                tx.new_id().into(),
                key_id.into(),
                hh.into(),
                id.into(),
                role.into(),
                today.into(),
                Value::Null,
                now.into(),
                now.into(),
            ]);
            for (category, channel, notes) in &m.vulnerable {
                let category: anxin_domain::VulnerableCategory = category
                    .parse()
                    .map_err(|_| anxin_store::StoreError::invalid("value.invalid", "category"))?;
                let channel: anxin_domain::ContactChannel = channel.parse().map_err(|_| {
                    anxin_store::StoreError::invalid("value.invalid", "contact_channel")
                })?;
                vuln_rows.push(vec![
                    tx.new_id().into(),
                    key_id.into(),
                    id.into(),
                    cid.into(),
                    grid.into(),
                    seal(&dk, "vulnerable.category", category.as_str())?,
                    Value::Bytes(env.keys.blind(BIDX_CATEGORY, category.as_str())),
                    Value::Null,
                    channel.as_str().into(),
                    match notes {
                        Some(n) => seal(&dk, "vulnerable.notes", n)?,
                        None => Value::Null,
                    },
                    now.into(),
                    now.into(),
                ]);
            }
            keys.push((dk, wrapped));
        }
    }
    let count = people_rows.len();
    tx.add_data_keys(keys)?;
    tx.insert_many(
        "households",
        &[
            "id",
            "community_id",
            "grid_id",
            "dwelling_id",
            "label",
            "created_at",
            "updated_at",
        ],
        &hh_rows,
    )?;
    tx.insert_many(
        "people",
        &[
            "id",
            "key_id",
            "community_id",
            "grid_id",
            "household_id",
            "name",
            "sex",
            "birth_date",
            "population_type",
            "nationality",
            "doc_type",
            "doc_ct",
            "doc_bidx",
            "doc_mask",
            "phone_ct",
            "phone_bidx",
            "phone_mask",
            "created_at",
            "updated_at",
        ],
        &people_rows,
    )?;
    tx.insert_many(
        "memberships",
        &[
            "id",
            "key_id",
            "household_id",
            "person_id",
            "role",
            "valid_from",
            "valid_to",
            "created_at",
            "updated_at",
        ],
        &member_rows,
    )?;
    tx.insert_many(
        "vulnerable",
        &[
            "id",
            "key_id",
            "person_id",
            "community_id",
            "grid_id",
            "category_ct",
            "category_bidx",
            "helper_user_id",
            "contact_channel",
            "notes_ct",
            "created_at",
            "updated_at",
        ],
        &vuln_rows,
    )?;
    Ok(count)
}

/// A valid mainland ID number (GB 11643 check digit): region, birth date, a sequence number
/// whose last digit is odd for men and even for women, check digit.
fn id_number(region: &str, birth: NaiveDate, seq: u32, female: bool) -> String {
    let s = (seq % 500) * 2 + u32::from(!female);
    let body = format!(
        "{region}{:04}{:02}{:02}{s:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let check = gb11643_check_digit(&body).unwrap_or('0');
    format!("{body}{check}")
}
