//! The demo's emergency operations, and a scripted incident from warning to review.
//!
//! `anxin demo` gives 水井坊社区 its own flood plan (防汛应急预案: triggered by an orange or red
//! flood/rainstorm warning, or by the demo gauges' deep-water alarm; roles filled by the demo's
//! community worker and grid worker; five tasks; the community shelter; twelve volunteers called;
//! welfare checks for every vulnerable person) and a volunteer registry of twelve, the first of
//! them the demo's `volunteer` account.
//!
//! `anxin demo --replay flood` then plays an incident through a running server's API, as the
//! people who would do each step: the community worker issues a red flood warning; the plan's
//! activation waits for confirmation and the worker confirms it; the volunteer accepts the
//! call-out, checks in at the shelter and records three residents safe; the worker writes a
//! situation report that the street officer approves and publishes; the worker stands the plan
//! down and writes the after-action review, whose lesson proposes a revision of the plan.

use anxin_store::ops::plans::{self, PlanInput, VersionInput};
use anxin_store::ops::volunteers::{self, VolunteerInput};
use anxin_store::scope::Caller;
use anxin_store::{params, WriteCtx};
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::App;
use crate::demo::DEMO_PASSWORD;

pub const PLAN_NAME: &str = "水井坊社区防汛应急预案";

/// (name, skills) of the demo's volunteers in 水井坊社区; the first is the `volunteer` account.
const VOLUNTEERS: &[(&str, &[&str])] = &[
    ("周志远", &["急救", "搬运"]),
    ("吴晓梅", &["心理疏导"]),
    ("郑国强", &["驾驶", "搬运"]),
    ("王丽华", &["急救"]),
    ("冯建军", &["水上救援", "搬运"]),
    ("陈雨桐", &["信息登记"]),
    ("褚明亮", &["驾驶"]),
    ("卫秀兰", &["心理疏导", "信息登记"]),
    ("蒋文博", &["搬运"]),
    ("沈佳怡", &["急救", "信息登记"]),
    ("韩志刚", &["电工"]),
    ("杨淑芬", &["做饭", "信息登记"]),
];

async fn user_id(app: &App, username: &'static str) -> anyhow::Result<Uuid> {
    app.store
        .read(move |c, _| {
            c.query_one(
                "SELECT id FROM users WHERE username = $1",
                &params![username],
            )?
            .map(|r| r.get::<Uuid>("id"))
            .transpose()
        })
        .await?
        .ok_or_else(|| anyhow!("demo account {username} missing"))
}

/// The plan's body: what 水井坊社区 has decided to do in a flood.
pub fn plan_body(worker: Uuid, grid: Uuid, shelter: Uuid) -> Value {
    json!({
        "risks": ["flood"],
        "triggers": [
            { "kind": "warning", "min_level": "orange", "categories": ["flood", "rainstorm"] },
            { "kind": "alarm", "device_types": ["water_level"], "rules": ["deep_water"] }
        ],
        "roles": [
            { "key": "commander", "name": "指挥长", "user_id": worker },
            { "key": "liaison", "name": "网格联络员", "user_id": grid }
        ],
        "tasks": [
            { "title": "巡查下穿隧道和地下车库积水", "role": "liaison", "due_minutes": 20 },
            { "title": "转移低洼地带和地下室住户", "role": "commander", "due_minutes": 30 },
            { "title": "开放避难场所并登记入住", "role": "commander", "due_minutes": 45 },
            { "title": "逐户核查独居老人等重点人群", "role": "liaison", "due_minutes": 60 },
            { "title": "向街道报送第一期灾情", "role": "commander", "due_minutes": 90 }
        ],
        "shelters": [shelter],
        "volunteers": { "count": VOLUNTEERS.len(), "skills": [] },
        "welfare_checks": true,
        "welfare_escalate_minutes": 30
    })
}

/// Give the demo community its flood plan and volunteers unless they are there. Returns how
/// many records were created.
pub async fn build(app: &App, community: Uuid) -> anyhow::Result<usize> {
    let there = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM plans WHERE node_id = $1 AND name = $2",
                &params![community, PLAN_NAME],
            )
        })
        .await?;
    if there > 0 {
        return Ok(0);
    }
    let worker = user_id(app, "worker").await?;
    let grid = user_id(app, "grid").await?;
    let volunteer = user_id(app, "volunteer").await?;
    let shelter = app
        .store
        .read(move |c, _| {
            c.query_one(
                "SELECT id FROM facilities WHERE node_id = $1 AND kind = 'shelter' ORDER BY name LIMIT 1",
                &params![community],
            )?
            .map(|r| r.get::<Uuid>("id"))
            .transpose()
        })
        .await?
        .ok_or_else(|| anyhow!("the demo community has no shelter"))?;
    let n = app
        .store
        .write(WriteCtx::system("demo-ops"), move |tx| {
            let sys = Caller::system();
            for (i, (name, skills)) in VOLUNTEERS.iter().enumerate() {
                volunteers::create_volunteer(
                    tx,
                    &sys,
                    &VolunteerInput {
                        kind: Some(if i % 4 == 3 { "cadre" } else { "volunteer" }.into()),
                        community_id: Some(community),
                        user_id: (i == 0).then_some(volunteer),
                        name: Some((*name).into()),
                        phone: Some(format!("1390281{:04}", 1000 + i)),
                        skills: Some(skills.iter().map(|s| (*s).to_owned()).collect()),
                        availability: Some("available".into()),
                        ..VolunteerInput::default()
                    },
                )?;
            }
            let plan = plans::create_plan(
                tx,
                &sys,
                &PlanInput {
                    node_id: Some(community),
                    name: Some(PLAN_NAME.into()),
                    review_period_days: Some(365),
                    status: None,
                },
            )?;
            let v = plans::create_version(
                tx,
                &sys,
                plan.id,
                &VersionInput {
                    body: Some(plan_body(worker, grid, shelter)),
                    change_summary: Some("首版：社区居委会会同物业、网格员共同编制".into()),
                },
            )?;
            plans::adopt(tx, &sys, v.id)?;
            Ok(VOLUNTEERS.len() + 2)
        })
        .await?;
    Ok(n)
}

/// A signed-in API session (cookie + CSRF token) as one of the demo accounts.
struct Session {
    base: String,
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Session {
    async fn sign_in(base: &str, username: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let r = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": DEMO_PASSWORD }))
            .send()
            .await
            .with_context(|| format!("is the server running at {base}?"))?;
        if !r.status().is_success() {
            bail!(
                "sign-in as {username}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        let cookie = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let body: Value = r.json().await?;
        let csrf = body["csrf"].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            base,
            client,
            cookie,
            csrf,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut rq = self
            .client
            .request(m, format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        let r = rq.send().await?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no id in {v}"))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Play the scripted flood incident against a running demo server.
pub async fn replay_flood(base: &str) -> anyhow::Result<()> {
    let say = |s: &str| println!("{s}");
    let worker = Session::sign_in(base, "worker").await?;
    let community = worker
        .call(
            "GET",
            &format!("/api/v1/nodes/by-code/{}", crate::demo::DEMO_COMMUNITY_CODE),
            None,
        )
        .await?;
    let community_id = id_of(&community)?;
    let now = chrono::Utc::now();
    let w = worker
        .call(
            "POST",
            "/api/v1/warnings",
            Some(json!({
                "node_id": community_id,
                "level": "red",
                "category": "flood",
                "headline": "水井坊社区暴雨洪涝红色预警",
                "description": "受强降雨影响，锦江水位快速上涨，社区低洼地带、下穿隧道和地下车库有严重积水风险。",
                "instruction": "请低洼地带和地下室住户立即转移至社区应急避难场所；不要进入下穿隧道和地下车库；独居老人请等待网格员或志愿者上门。",
                "effective_at": now.to_rfc3339(),
                "expires_at": (now + chrono::Duration::hours(12)).to_rfc3339(),
                "area": { "nodes": [community_id] },
            })),
        )
        .await?;
    let wid = id_of(&w)?;
    worker
        .call(
            "POST",
            &format!("/api/v1/warnings/{wid}/approve"),
            Some(json!({})),
        )
        .await?;
    worker
        .call(
            "POST",
            &format!("/api/v1/warnings/{wid}/issue"),
            Some(json!({})),
        )
        .await?;
    say(&format!("1. 社区工作者发布暴雨洪涝红色预警 {wid}"));

    let pending = worker
        .call("GET", "/api/v1/incidents?status=pending", None)
        .await?;
    // The warning's own activation, or one the gauges' deep-water alarm started already (a plan
    // runs once at a time for a node: the warning then joins it).
    let pending = items(&pending);
    let incident = pending
        .iter()
        .find(|i| i["trigger_id"].as_str() == Some(wid.as_str()))
        .or_else(|| {
            pending
                .iter()
                .find(|i| i["node_id"].as_str() == Some(community_id.as_str()))
        })
        .cloned()
        .ok_or_else(|| anyhow!("the warning started no plan (is the demo's flood plan there?)"))?;
    let iid = id_of(&incident)?;
    let confirmed = worker
        .call(
            "POST",
            &format!("/api/v1/incidents/{iid}/confirm"),
            Some(json!({})),
        )
        .await?;
    say(&format!(
        "2. 预案《{PLAN_NAME}》待确认，社区工作者确认启动：{}",
        confirmed
            .get("summary")
            .unwrap_or(&confirmed["incident"]["summary"])
    ));

    let volunteer = Session::sign_in(base, "volunteer").await?;
    let mine = volunteer
        .call(
            "GET",
            &format!("/api/v1/callouts?mine=true&incident_id={iid}"),
            None,
        )
        .await?;
    let callout = items(&mine)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the volunteer was not called out"))?;
    let cid = id_of(&callout)?;
    volunteer
        .call(
            "POST",
            &format!("/api/v1/callouts/{cid}/accept"),
            Some(json!({})),
        )
        .await?;
    volunteer
        .call(
            "POST",
            &format!("/api/v1/callouts/{cid}/check-in"),
            Some(json!({ "place": "水井坊社区党群服务中心" })),
        )
        .await?;
    let checks = volunteer
        .call(
            "GET",
            &format!("/api/v1/welfare?incident_id={iid}&status=open&mine=true"),
            None,
        )
        .await?;
    let checks = items(&checks);
    let mut recorded = 0;
    for c in checks.iter().take(3) {
        volunteer
            .call(
                "POST",
                &format!("/api/v1/welfare/{}/record", id_of(c)?),
                Some(json!({ "outcome": "safe", "note": "上门确认，家中无积水" })),
            )
            .await?;
        recorded += 1;
    }
    let board = worker
        .call(
            "GET",
            &format!("/api/v1/incidents/{iid}/welfare/board"),
            None,
        )
        .await?;
    say(&format!(
        "3. 志愿者接受召集、到岗签到，并上门确认 {recorded} 位重点人群平安；核查看板：{board}"
    ));

    let sitrep = worker
        .call(
            "POST",
            &format!("/api/v1/incidents/{iid}/sitreps"),
            Some(json!({ "body": "社区已启动防汛应急预案，避难场所开放，志愿者到岗，重点人群逐户核查中。" })),
        )
        .await?;
    let sid = id_of(&sitrep)?;
    let street = Session::sign_in(base, "street").await?;
    street
        .call(
            "POST",
            &format!("/api/v1/sitreps/{sid}/approve"),
            Some(json!({})),
        )
        .await?;
    street
        .call(
            "POST",
            &format!("/api/v1/sitreps/{sid}/publish"),
            Some(json!({})),
        )
        .await?;
    say("4. 第一期情况报告由社区起草、街道审核后发布");

    volunteer
        .call(
            "POST",
            &format!("/api/v1/callouts/{cid}/check-out"),
            Some(json!({})),
        )
        .await?;
    worker
        .call(
            "POST",
            &format!("/api/v1/incidents/{iid}/deactivate"),
            Some(json!({})),
        )
        .await?;
    say("5. 雨势减弱，社区解除应急响应：任务、召集、核查和避难场所按顺序关闭");

    let version = worker
        .call(
            "GET",
            &format!(
                "/api/v1/plan-versions/{}",
                incident["plan_version_id"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await?;
    let mut revised = version["body"].clone();
    if let Some(tasks) = revised["tasks"].as_array_mut() {
        tasks.insert(
            0,
            json!({ "title": "预警发布后10分钟内封闭下穿隧道", "role": "liaison", "due_minutes": 10 }),
        );
    }
    let review = worker
        .call(
            "POST",
            &format!("/api/v1/incidents/{iid}/review"),
            Some(json!({
                "went_well": "预警发出后预案一步启动，志愿者半小时内到岗，重点人群全部联系上。",
                "went_badly": "下穿隧道封闭晚于积水上涨，有车辆涉水。",
                "lessons": [{
                    "text": "预警发布后立即封闭下穿隧道，列为预案首项任务",
                    "revision": revised,
                }],
            })),
        )
        .await?;
    say(&format!(
        "6. 复盘完成：{}；经验已形成预案修订稿，待社区采纳。页面：{base}/manage/incidents/{iid}",
        review["id"].as_str().unwrap_or_default()
    ));
    Ok(())
}
