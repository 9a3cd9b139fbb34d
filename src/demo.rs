//! `anxin demo`: a deterministic demo data set on the real Chengdu tree.
//!
//! Deterministic: the demo opens the store with a seeded id generator and a fixed clock, so the
//! same command gives the same records (ids included) on every machine. It is idempotent: a
//! database that already has the demo community is left alone.
//!
//! Part 1 builds the tree (20 districts, 261 streets, 3,047 communities) and one realistic
//! community, 锦江区 水井坊社区, with grids, buildings, households, people, vulnerable people and
//! facilities. Rates used below:
//! - floating population: 成都市第七次全国人口普查公报 (2021) counts 8,453,000 people living away
//!   from their registered township in a resident population of 20,937,757 (≈40%); a central
//!   urban community such as 水井坊 sits near that share, we use 35%.
//! - elderly living alone: 2020 census, Sichuan households of one person aged 65+ ≈ 6% of
//!   households; we flag 6% of households' eldest member when aged 65+.
//! - disability: 第二次全国残疾人抽样调查 (2006) prevalence 6.34%; certified (持证) rate is lower,
//!   we use 2.5%.

use std::path::Path;
use std::sync::Arc;

use anxin_domain::{gb11643_check_digit, ManualClock, SeededIdGen};
use anxin_store::people::{self, PersonInput, VulnerableInput};
use anxin_store::scope::Caller;
use anxin_store::tree::{self, TreeStore};
use anxin_store::WriteCtx;
use chrono::TimeZone;
use rand::{Rng, SeedableRng};

use crate::app::{App, OpenOptions};
use crate::config::Config;

pub const DEMO_SEED: u64 = 20_260_101;
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

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "志强", "晓东", "雨桐", "子涵",
    "浩然", "欣怡",
];

/// Build the demo with its own seeded app (fixed clock and ids), then close it.
pub fn build_seeded(config: &Config) -> anyhow::Result<String> {
    let start = chrono::Utc
        .with_ymd_and_hms(2026, 1, 5, 1, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("demo start time"))?;
    let clock = ManualClock::new(start);
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
    let out = rt.block_on(build(&app));
    drop(rt);
    drop(app);
    out
}

/// Build the demo on an open app (idempotent).
pub async fn build(app: &App) -> anyhow::Result<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/divisions/chengdu");
    let dir = if Path::new("fixtures/divisions/chengdu").exists() {
        Path::new("fixtures/divisions/chengdu").to_path_buf()
    } else {
        dir
    };
    let rep = crate::divisions::import(app, &dir, None, "nbs-2023")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let community = app
        .store
        .read(|c, _| c.find_by_code(&Caller::system(), DEMO_COMMUNITY_CODE))
        .await?;
    let cid = community.id;
    let existing = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM grids WHERE community_id = $1",
                &anxin_store::params![cid],
            )
        })
        .await?;
    if existing > 0 {
        return Ok(format!(
            "demo already present ({} division changes applied)",
            rep.added + rep.renamed + rep.recoded
        ));
    }
    let people = app
        .store
        .write(WriteCtx::system("demo"), move |tx| {
            let sys = Caller::system();
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(DEMO_SEED);
            let grids: Vec<_> = ["一网格", "二网格", "三网格"]
                .iter()
                .map(|n| tree::create_grid(tx, &sys, cid, n))
                .collect::<anxin_store::Result<_>>()?;
            let mut count = 0usize;
            for (gi, grid) in grids.iter().enumerate() {
                for hn in 0..20 {
                    let label = format!("{}-{}-{:02}", gi + 1, hn / 4 + 1, hn % 4 + 1);
                    let hh = people::create_household(tx, &sys, cid, Some(grid.id), None, &label)?;
                    let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
                    let size = rng.gen_range(1..=4);
                    let floating = rng.gen_bool(0.35);
                    let mut eldest: Option<(uuid::Uuid, i32)> = None;
                    for m in 0..size {
                        let year = if m == 0 {
                            rng.gen_range(1940..1990)
                        } else {
                            rng.gen_range(1950..2020)
                        };
                        let name = format!("{surname}{}", GIVEN[rng.gen_range(0..GIVEN.len())]);
                        let doc = demo_id_number(&mut rng, year);
                        let phone = (year < 2010)
                            .then(|| format!("13{:09}", rng.gen_range(0..1_000_000_000u32)));
                        let role = if m == 0 {
                            "head"
                        } else if year > 1995 {
                            "child"
                        } else {
                            "spouse"
                        };
                        let p = people::NewPerson::parse(&PersonInput {
                            name,
                            population_type: if floating { "floating" } else { "registered" }
                                .into(),
                            doc_type: "mainland_id".into(),
                            doc_number: Some(doc),
                            phone,
                            community_id: cid,
                            grid_id: Some(grid.id),
                            household_id: Some(hh.id),
                            household_role: Some(role.into()),
                            ..PersonInput::default()
                        })?;
                        let v = people::create_person(tx, &sys, &p)?;
                        count += 1;
                        if eldest.is_none_or(|(_, y)| year < y) {
                            eldest = Some((v.id, year));
                        }
                        if rng.gen_bool(0.025) {
                            people::add_vulnerable(
                                tx,
                                &sys,
                                &VulnerableInput {
                                    person_id: v.id,
                                    category: "disabled".into(),
                                    helper_user_id: None,
                                    contact_channel: "phone_call".into(),
                                    notes: None,
                                },
                            )?;
                        }
                    }
                    if let Some((pid, year)) = eldest {
                        if year <= 1961 && (size == 1 || rng.gen_bool(0.06)) {
                            people::add_vulnerable(
                                tx,
                                &sys,
                                &VulnerableInput {
                                    person_id: pid,
                                    category: "elderly_alone".into(),
                                    helper_user_id: None,
                                    contact_channel: "no_smartphone".into(),
                                    notes: Some("每日电话问候".into()),
                                },
                            )?;
                        }
                    }
                }
            }
            Ok(count)
        })
        .await?;
    let first_grid = app
        .store
        .read(move |c, _| {
            Ok(anxin_store::tree::list_grids(c, &Caller::system(), cid)?
                .first()
                .map(|g| g.id))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("demo grid missing"))?;
    for (username, display, role, scope) in DEMO_ACCOUNTS {
        let role: anxin_domain::Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let scope = if *scope == "grid" {
            anxin_domain::Scope::Grid(first_grid)
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
    }
    Ok(format!(
        "demo ready: {} division changes, 水井坊社区 with 3 grids, 60 households, {people} people, {} accounts",
        rep.added + rep.renamed + rep.recoded,
        DEMO_ACCOUNTS.len()
    ))
}

/// A valid mainland ID number (GB 11643 check digit) in 锦江区 for a birth year.
fn demo_id_number(rng: &mut impl Rng, year: i32) -> String {
    let body = format!(
        "510104{year:04}{:02}{:02}{:03}",
        rng.gen_range(1..=12),
        rng.gen_range(1..=28),
        rng.gen_range(0..1000)
    );
    let check = gb11643_check_digit(&body).unwrap_or('0');
    format!("{body}{check}")
}
