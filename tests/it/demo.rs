//! The demo city: a small `anxin demo --people N` over the whole of 锦江区, checked for shape,
//! plausibility (locations inside the district, rates near the cited ones) and idempotence.

use anxin::app::{App, OpenOptions};

use crate::support;

#[test]
fn demo_fills_jinjiang_plausibly_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let config = support::config_for(&url, dir.path());
    let first = anxin::demo::build_seeded_with(&config, 3_000).unwrap();
    assert!(first.contains("3000 people"), "{first}");
    let second = anxin::demo::build_seeded_with(&config, 3_000).unwrap();
    assert!(second.starts_with("demo already present"), "{second}");

    let app = App::open(config, OpenOptions::default()).unwrap();
    let q = |sql: &'static str| {
        app.store
            .read_blocking(move |c, _| c.query_i64(sql, &[]))
            .unwrap()
    };
    assert_eq!(q("SELECT count(*) FROM people"), 3_000);
    // Every community of 锦江区 (510104) has at least three grids and its people.
    // 76 communities under 锦江区 in the 2023 division list.
    let communities = 76;
    let with_grids = q("SELECT count(DISTINCT community_id) FROM grids");
    assert_eq!(with_grids, communities);
    assert!(q("SELECT min(n) FROM (SELECT count(*) AS n FROM grids GROUP BY community_id) t") >= 3);
    // Everyone lives in a household in a dwelling.
    assert_eq!(
        q("SELECT count(*) FROM people WHERE household_id IS NULL"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM households WHERE dwelling_id IS NULL"),
        0
    );
    // Household size near Chengdu's 2.3.
    let households = q("SELECT count(*) FROM households");
    let size = 3_000.0 / households as f64;
    assert!((2.0..2.6).contains(&size), "{size}");
    // Floating population near the cited share (38% of households), well away from 0 and 1.
    let floating =
        q("SELECT count(*) FROM people WHERE population_type = 'floating'") as f64 / 3_000.0;
    assert!((0.25..0.5).contains(&floating), "{floating}");
    // Vulnerable people (categories are sealed): disability 6.34% plus elderly living alone
    // and pregnancies, so between 5% and 15% of people.
    let vulnerable = q("SELECT count(*) FROM vulnerable") as f64 / 3_000.0;
    assert!((0.05..0.15).contains(&vulnerable), "{vulnerable}");
    // Buildings and facilities sit inside 锦江区's extent; every community has a shelter with a
    // capacity.
    assert_eq!(
        q("SELECT count(*) FROM buildings WHERE lon < 104.06 OR lon > 104.14 OR lat < 30.57 OR lat > 30.67"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM facilities WHERE lon < 104.06 OR lon > 104.14 OR lat < 30.57 OR lat > 30.67"),
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM facilities WHERE kind = 'shelter' AND capacity > 0"),
        communities
    );
    // Every grid has an outline, and every building with a point stands inside its grid's.
    assert_eq!(q("SELECT count(*) FROM grids WHERE geometry IS NULL"), 0);
    let outside = app
        .store
        .read_blocking(|c, _| {
            let rows = c.query(
                "SELECT b.lon, b.lat, g.geometry FROM buildings b JOIN grids g ON g.id = b.grid_id \
                 WHERE b.lon IS NOT NULL",
                &[],
            )?;
            let mut outside = 0;
            for r in &rows {
                let (lon, lat): (f64, f64) = (r.get("lon")?, r.get("lat")?);
                let g: serde_json::Value =
                    serde_json::from_str(&r.get::<String>("geometry")?).unwrap();
                let ring = g["coordinates"][0].as_array().unwrap();
                let xs: Vec<f64> = ring.iter().map(|p| p[0].as_f64().unwrap()).collect();
                let ys: Vec<f64> = ring.iter().map(|p| p[1].as_f64().unwrap()).collect();
                let within = |v: f64, a: &[f64]| {
                    v >= a.iter().copied().fold(f64::MAX, f64::min) - 1e-9
                        && v <= a.iter().copied().fold(f64::MIN, f64::max) + 1e-9
                };
                if !(within(lon, &xs) && within(lat, &ys)) {
                    outside += 1;
                }
            }
            Ok(outside)
        })
        .unwrap();
    assert_eq!(outside, 0, "buildings outside their grid's outline");
    // One account per role.
    assert_eq!(
        q("SELECT count(*) FROM users"),
        anxin::demo::DEMO_ACCOUNTS.len() as i64
    );
}

/// The demo's gauges take a replayed rainstorm over the device API: the deepest gauge raises a
/// critical alarm at once and the readings land in the readings store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_gauges_take_a_replayed_rainstorm() {
    let t = support::TestApp::new(support::Backend::Sqlite).await;
    let summary = anxin::demo::build_with(&t.app, 300).await.unwrap();
    assert!(summary.contains("3 sensors"), "{summary}");
    let base = t.serve().await;
    anxin::demo_monitor::replay(&base, 20, std::time::Duration::ZERO)
        .await
        .unwrap();
    let alarms: Vec<(String, String, bool)> = t
        .store()
        .read(|c, _| {
            c.query(
                "SELECT d.code, a.alarm_type, a.active FROM alarms a JOIN devices d ON d.id = a.device_id \
                 ORDER BY d.code, a.alarm_type",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get("code")?, r.get("alarm_type")?, r.get("active")?)))
            .collect()
        })
        .await
        .unwrap();
    assert!(
        alarms
            .iter()
            .any(|(c, a, _)| c == "demo-sjf-water-1" && a == "deep_water"),
        "{alarms:?}"
    );
    // The storm recedes below the clear line by the end: the deep-water alarm is cleared.
    assert!(
        alarms
            .iter()
            .all(|(c, a, active)| !(c == "demo-sjf-water-1" && a == "deep_water" && *active)),
        "{alarms:?}"
    );
    assert_eq!(t.app.monitor.readings.count(None).unwrap(), 60);
    // A second build adds no second set.
    let again = anxin::demo::build_with(&t.app, 300).await.unwrap();
    assert!(again.starts_with("demo already present"), "{again}");
}

/// `anxin demo --replay flood`: the scripted incident runs from a red warning through the
/// plan's confirmed activation, a volunteer's accepted call-out and welfare checks, a published
/// situation report and the stand-down to a review whose lesson proposes a plan revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flood_incident_runs_from_warning_to_review() {
    let t = support::TestApp::new(support::Backend::Sqlite).await;
    let summary = anxin::demo::build_with(&t.app, 1500).await.unwrap();
    assert!(
        summary.contains("14 plan and volunteer records"),
        "{summary}"
    );
    let base = t.serve().await;
    anxin::demo_ops::replay_flood(&base).await.unwrap();
    let q = |sql: &'static str| {
        let store = t.store().clone();
        async move { store.read(move |c, _| c.query_i64(sql, &[])).await.unwrap() }
    };
    assert_eq!(
        q("SELECT count(*) FROM incidents WHERE status = 'reviewed' AND trigger_kind = 'warning'")
            .await,
        1
    );
    assert_eq!(
        q("SELECT count(*) FROM callouts WHERE user_id IS NOT NULL AND responded_at IS NOT NULL")
            .await,
        1,
        "the volunteer account answered its call-out"
    );
    assert_eq!(q("SELECT count(*) FROM callout_attendance").await, 1);
    let checks = q("SELECT count(*) FROM welfare_checks").await;
    let safe = q("SELECT count(*) FROM welfare_checks WHERE status = 'safe'").await;
    assert!(checks > 0, "the community's vulnerable people get checks");
    assert_eq!(safe, checks.min(3));
    assert_eq!(
        q("SELECT count(*) FROM welfare_checks WHERE status = 'open'").await,
        0,
        "stand-down closes every open check"
    );
    assert_eq!(
        q("SELECT count(*) FROM incident_sitreps WHERE status = 'published'").await,
        1
    );
    assert_eq!(
        q("SELECT count(*) FROM plan_versions WHERE status = 'proposed' AND review_id IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        q("SELECT count(*) FROM facilities WHERE status = 'open'").await,
        0,
        "the shelter is back in normal service"
    );
}
