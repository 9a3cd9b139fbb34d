//! Import and export of every part-1 list. People: a file with bad rows writes nothing and its
//! report names row, column and reason; "import the valid rows" writes exactly those; an XLSX
//! export imports back into another community; exported cells cannot run as formulas; templates
//! parse back; another community's worker can neither import into nor export from community A.
//! Buildings, dwellings, facilities, vulnerable people (and households, export only): the same
//! stories, plus GeoJSON with WGS84 points, rows naming records outside the caller's community
//! rejected as unknown, and the import page running the import in the background.
#![allow(clippy::unwrap_used)]

use anxin::io::{self, Format};
use anxin_domain::{Role, Scope};
use anxin_store::accounts::UserKind;
use anxin_store::people::{self, PeopleFilter};
use anxin_store::scope::Caller;
use anxin_store::WriteCtx;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{client, TestApp};
use crate::world::{self, user, User, PERSON_A1_ID_NUMBER};

const HEAD: &str = "姓名,性别,出生日期,人口类型,证件类型,证件号码,联系电话,户号,与户主关系,网格";

/// Valid GB 11643 numbers (checksums computed here, so the test data explains itself).
fn id_number(region: &str, birth: &str, seq: u32) -> String {
    let body = format!("{region}{birth}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

async fn worker(t: &TestApp, name: &'static str, community: Uuid) -> User {
    user(
        t,
        name,
        UserKind::Staff,
        Some((Role::CommunityWorker, Scope::Node(community))),
        None,
    )
    .await
}

async fn post_file(
    base: &str,
    u: &User,
    community: Uuid,
    valid_only: bool,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = client()
        .post(format!(
            "{base}/api/v1/import/people?community_id={community}&valid_only={}",
            u8::from(valid_only)
        ))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn get_bytes(base: &str, u: Option<&User>, path: &str) -> (u16, Vec<u8>) {
    let mut req = client().get(format!("{base}{path}"));
    if let Some(u) = u {
        req = req.header("cookie", &u.cookie);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.bytes().await.unwrap().to_vec())
}

async fn count_named(t: &TestApp, like: &str) -> i64 {
    let like = like.to_owned();
    t.store()
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM people WHERE name LIKE $1",
                &anxin_store::params![like],
            )
        })
        .await
        .unwrap()
}

fn has_error(report: &Value, row: u64, column: &str, code: &str) -> bool {
    report["errors"].as_array().unwrap().iter().any(|e| {
        e["row"] == row && e["column"] == column && e["code"] == code && e["message"].is_string()
    })
}

fn bad_file() -> String {
    let ok1 = id_number("510104", "19800101", 11);
    let ok2 = id_number("510104", "19820202", 12);
    let mut bad = id_number("510104", "19900303", 13);
    let last = if bad.ends_with('0') { '1' } else { '0' };
    bad.pop();
    bad.push(last);
    let ok3 = id_number("510104", "19700404", 14);
    [
        HEAD.to_owned(),
        format!("测试甲,男,,户籍,居民身份证,{ok1},13800000001,9-9-901,户主,一网格"), // row 2 ok
        format!("测试乙,女,,流动,身份证,{ok2},13800000002,9-9-901,配偶,一网格"),     // row 3 ok
        format!("测试丙,,,户籍,居民身份证,{bad},,,,"), // row 4 checksum
        format!("测试丁,,,户籍,居民身份证,{ok1},,,,"), // row 5 dup in file
        format!("测试戊,,,户籍,居民身份证,{PERSON_A1_ID_NUMBER},,,,"), // row 6 taken
        format!("测试己,,,外星,居民身份证,{ok3},,,,"), // row 7 pop type
        format!(
            "测试庚,,,户籍,居民身份证,{},12345,,,",
            id_number("510104", "19600505", 15)
        ), // row 8 phone
        "".to_owned(),                                 // row 9 blank
        format!(
            "测试辛,,,户籍,居民身份证,{},,,,不存在网格",
            id_number("510104", "19500606", 16)
        ), // row 10 grid
    ]
    .join("\n")
}

both_stores!(bad_rows_write_nothing, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker(&t, "worker_a", w.comm_a).await;
    let (s, body) = post_file(
        &base,
        &u,
        w.comm_a,
        false,
        "text/csv",
        bad_file().into_bytes(),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let rep = &body["report"];
    assert_eq!(rep["written"], false, "{rep}");
    assert_eq!(rep["rows"], 8, "the blank row is not counted");
    assert!(has_error(rep, 4, "证件号码", "document.checksum"), "{rep}");
    assert!(
        has_error(rep, 5, "证件号码", "import.duplicate_in_file"),
        "{rep}"
    );
    assert!(
        has_error(rep, 6, "证件号码", "person.document_taken"),
        "{rep}"
    );
    assert!(has_error(rep, 7, "人口类型", "value.invalid"), "{rep}");
    assert!(has_error(rep, 8, "联系电话", "phone.format"), "{rep}");
    assert!(has_error(rep, 10, "网格", "import.grid_unknown"), "{rep}");
    assert_eq!(rep["errors"].as_array().unwrap().len(), 6, "{rep}");
    assert_eq!(count_named(&t, "测试%").await, 0);
    // The job's progress and report are there for the one who started it.
    let job = body["job"].as_str().unwrap();
    let (s, p) = get_bytes(&base, Some(&u), &format!("/api/v1/import/jobs/{job}")).await;
    assert_eq!(s, 200);
    let p: Value = serde_json::from_slice(&p).unwrap();
    assert_eq!(
        (p["total"].as_u64(), p["done"].as_bool()),
        (Some(8), Some(true))
    );
});

both_stores!(valid_only_imports_the_valid_rows, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker(&t, "worker_a", w.comm_a).await;
    let (s, body) = post_file(
        &base,
        &u,
        w.comm_a,
        true,
        "text/csv",
        bad_file().into_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let rep = &body["report"];
    assert_eq!(
        (rep["imported"].as_u64(), rep["valid"].as_u64()),
        (Some(2), Some(2)),
        "{rep}"
    );
    assert_eq!(rep["households_created"], 1);
    assert_eq!(count_named(&t, "测试%").await, 2);
    // Row 2 and 3 share household 9-9-901 with their roles, in grid 一网格.
    let sys = Caller::system();
    let page = t
        .store()
        .read(move |c, _| {
            people::list_people(
                c,
                &sys,
                &PeopleFilter {
                    q: Some("测试".into()),
                    ..PeopleFilter::default()
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let hh = page.items[0].household_id.unwrap();
    assert!(page
        .items
        .iter()
        .all(|p| p.household_id == Some(hh) && p.grid_id == Some(w.grid_a1)));
    let n = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT count(*) FROM audit_log WHERE action = 'import'",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
});

both_stores!(xlsx_round_trip, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let ua = worker(&t, "worker_a", w.comm_a).await;
    let ub = worker(&t, "worker_b", w.comm_b).await;
    let rows = [
        HEAD.to_owned(),
        format!(
            "回环甲,男,1975-05-05,户籍人口,居民身份证,{},13911112222,R-1,户主,一网格",
            id_number("510104", "19750505", 21)
        ),
        format!(
            "回环乙,女,,寄住,居民身份证,{},,R-1,子女,一网格",
            id_number("510104", "20100606", 22)
        ),
        "回环丙,,,境外人员,护照,E12345678,+85291234567,,,".to_owned(),
    ]
    .join("\n");
    let (s, body) = post_file(&base, &ua, w.comm_a, false, "text/csv", rows.into_bytes()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["report"]["imported"], 3, "{body}");
    let list = |c: Uuid| {
        let sys = Caller::system();
        let store = t.store().clone();
        async move {
            store
                .read(move |conn, _| {
                    people::list_people(
                        conn,
                        &sys,
                        &PeopleFilter {
                            node: Some(c),
                            q: Some("回环".into()),
                            ..PeopleFilter::default()
                        },
                    )
                })
                .await
                .unwrap()
                .items
        }
    };
    let before = list(w.comm_a).await;
    assert_eq!(before.len(), 3);
    let (s, xlsx) = get_bytes(
        &base,
        Some(&ua),
        "/api/v1/export/people.xlsx?q=回环&unmask=1",
    )
    .await;
    assert_eq!(s, 200);
    assert!(xlsx.starts_with(b"PK"));
    // Move them: erase in A, import the export into B.
    let ids: Vec<Uuid> = before.iter().map(|p| p.id).collect();
    t.store()
        .write(WriteCtx::system("erase"), move |tx| {
            for id in &ids {
                people::erase_person(tx, &Caller::system(), *id)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let (s, body) = post_file(&base, &ub, w.comm_b, false, io::XLSX_TYPE, xlsx).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["report"]["imported"], 3, "{body}");
    let after = list(w.comm_b).await;
    let key = |v: &Vec<people::PersonView>| {
        let mut k: Vec<_> = v
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.sex.clone(),
                    p.birth_date,
                    p.population_type.clone(),
                    p.doc_type.clone(),
                    p.doc_mask.clone(),
                    p.phone_mask.clone(),
                    p.household_id.is_some(),
                )
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(key(&before), key(&after));
    assert!(after.iter().all(|p| p.community_id == w.comm_b));
    let exports = t
        .store()
        .read(|c, _| {
            c.query_i64(
                "SELECT count(*) FROM audit_log WHERE action = 'export'",
                &[],
            )
        })
        .await
        .unwrap();
    assert_eq!(exports, 1);
});

both_stores!(formula_injection_neutralised, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker(&t, "worker_a", w.comm_a).await;
    let evil = "=HYPERLINK(\"http://x\",\"点我\")";
    let rows = format!(
        "{HEAD}\n\"{}\",,,户籍,居民身份证,{},,@SUM(1),,\n",
        evil.replace('"', "\"\""),
        id_number("510104", "19880808", 31)
    );
    let (s, body) = post_file(&base, &u, w.comm_a, false, "text/csv", rows.into_bytes()).await;
    assert_eq!(s, 200, "{body}");
    for (ext, fmt) in [("csv", Format::Csv), ("xlsx", Format::Xlsx)] {
        let (s, bytes) = get_bytes(&base, Some(&u), &format!("/api/v1/export/people.{ext}")).await;
        assert_eq!(s, 200);
        if fmt == Format::Csv {
            assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "CSV has a BOM");
        }
        let sheet = io::sheet::read_raw(&bytes, fmt).unwrap();
        let cells: Vec<&String> = sheet.rows.iter().flat_map(|(_, r)| r.iter()).collect();
        assert!(
            cells.iter().any(|c| **c == format!("'{evil}")),
            "{ext}: {cells:?}"
        );
        assert!(cells.iter().any(|c| *c == "'@SUM(1)"), "{ext}");
        assert!(
            cells.iter().all(|c| !c.starts_with(['=', '+', '-', '@'])),
            "{ext}: a cell starts with a formula character"
        );
        // Masked: the A1 person's document is not in the clear.
        assert!(
            cells.iter().all(|c| !c.contains(PERSON_A1_ID_NUMBER)),
            "{ext}"
        );
    }
});

both_stores!(templates_parse_back, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let u = worker(&t, "worker_a", w.comm_a).await;
    for (ext, fmt, ct) in [
        ("csv", Format::Csv, "text/csv"),
        ("xlsx", Format::Xlsx, io::XLSX_TYPE),
    ] {
        let (s, bytes) = get_bytes(
            &base,
            None,
            &format!("/api/v1/import/people/template.{ext}"),
        )
        .await;
        assert_eq!(s, 200);
        let sheet = io::sheet::read(&bytes, fmt).unwrap();
        let want: Vec<String> = io::people::COLUMNS
            .iter()
            .map(|c| c.zh.to_owned())
            .collect();
        assert_eq!(sheet.headers, want, "{ext}");
        assert_eq!(sheet.rows.len(), 1, "{ext}: one example row");
        // The example is valid in every respect but one: its document is A1's, already here.
        let (s, body) = post_file(&base, &u, w.comm_a, false, ct, bytes).await;
        assert_eq!(s, 422, "{body}");
        let errs = body["report"]["errors"].as_array().unwrap();
        assert_eq!(errs.len(), 1, "{ext}: {body}");
        assert_eq!(errs[0]["code"], "person.document_taken");
        assert_eq!(errs[0]["row"], 2);
    }
});

both_stores!(outsider_cannot_import_or_export, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let ub = worker(&t, "worker_b", w.comm_b).await;
    let rows = format!(
        "{HEAD}\n闯入者,,,户籍,居民身份证,{},,,,\n",
        id_number("510104", "19990909", 41)
    );
    for valid_only in [false, true] {
        let (s, body) = post_file(
            &base,
            &ub,
            w.comm_a,
            valid_only,
            "text/csv",
            rows.clone().into_bytes(),
        )
        .await;
        assert_eq!(s, 404, "{body}");
    }
    assert_eq!(count_named(&t, "闯入者").await, 0);
    for ext in ["csv", "xlsx"] {
        let (s, bytes) = get_bytes(
            &base,
            Some(&ub),
            &format!("/api/v1/export/people.{ext}?node={}", w.comm_a),
        )
        .await;
        assert_eq!(s, 200);
        let fmt = if ext == "csv" {
            Format::Csv
        } else {
            Format::Xlsx
        };
        let sheet = io::sheet::read(&bytes, fmt).unwrap();
        assert!(sheet.rows.is_empty(), "{ext}: {:?}", sheet.rows);
        let (_, bytes) = get_bytes(&base, Some(&ub), &format!("/api/v1/export/people.{ext}")).await;
        let sheet = io::sheet::read(&bytes, fmt).unwrap();
        let a1 = w.person_a1.to_string();
        assert!(sheet.rows.iter().all(|(_, r)| !r.contains(&a1)), "{ext}");
    }
    // Unmasking needs Unmask: a district officer has ExportData but not Unmask.
    let officer = crate::world::staff(
        &t,
        "officer",
        Role::DistrictOfficer,
        Scope::Node(w.district),
    )
    .await;
    let (s, _) = get_bytes(&base, Some(&officer), "/api/v1/export/people.csv?unmask=1").await;
    assert_eq!(s, 403);
});

// ---------------------------------------------------------------------------------------------
// Buildings, dwellings, facilities, vulnerable people and households.

async fn post_kind(
    base: &str,
    u: &User,
    kind: &str,
    community: Uuid,
    valid_only: bool,
    csv: &str,
) -> (u16, Value) {
    post_kind_as(
        base,
        u,
        kind,
        community,
        valid_only,
        "text/csv",
        csv.as_bytes().to_vec(),
    )
    .await
}

async fn post_kind_as(
    base: &str,
    u: &User,
    kind: &str,
    community: Uuid,
    valid_only: bool,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = client()
        .post(format!(
            "{base}/api/v1/import/{kind}?community_id={community}&valid_only={}",
            u8::from(valid_only)
        ))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

const BUILDINGS: &str = "楼栋名称,网格,地址,层数,经度,纬度,坐标系\n\
    甲栋,一网格,水井街1号,6,104.0817,30.6520,WGS84\n\
    乙栋,一网格,水井街3号,18,104.0880,30.6490,GCJ-02\n";

both_stores!(buildings_round_trip_and_geojson, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let ua = worker(&t, "worker_a", w.comm_a).await;
    let ub = worker(&t, "worker_b", w.comm_b).await;
    let (s, body) = post_kind(&base, &ua, "buildings", w.comm_a, false, BUILDINGS).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["report"]["imported"], 2, "{body}");
    // Importing the same names again: each row is an existing building, nothing written.
    let (s, body) = post_kind(&base, &ua, "buildings", w.comm_a, false, BUILDINGS).await;
    assert_eq!(s, 422, "{body}");
    assert!(
        has_error(&body["report"], 2, "楼栋名称", "import.already_exists"),
        "{body}"
    );
    assert_eq!(count(&t, "SELECT count(*) FROM buildings").await, 2);

    // Export (CSV and XLSX) → import into community B: the same buildings there.
    let (s, csv) = get_bytes(&base, Some(&ua), "/api/v1/export/buildings.csv").await;
    assert_eq!(s, 200);
    let (s, xlsx) = get_bytes(&base, Some(&ua), "/api/v1/export/buildings.xlsx").await;
    assert_eq!(s, 200);
    let sheet = io::sheet::read(&xlsx, Format::Xlsx).unwrap();
    assert_eq!(sheet.rows.len(), 2);
    assert_eq!(sheet.headers[0], "楼栋名称");
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("甲栋") && csv.contains("水井街3号"), "{csv}");
    let (s, body) = post_kind(&base, &ub, "buildings", w.comm_b, false, &csv).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["report"]["imported"], 2, "{body}");
    let in_b = count(
        &t,
        "SELECT count(*) FROM buildings WHERE name IN ('甲栋','乙栋')",
    )
    .await;
    assert_eq!(in_b, 4);
    // B's export has its own two and nothing of A's.
    let (_, b_csv) = get_bytes(&base, Some(&ub), "/api/v1/export/buildings.csv").await;
    let b_sheet = io::sheet::read(&b_csv, Format::Csv).unwrap();
    assert_eq!(b_sheet.rows.len(), 2);

    // GeoJSON: a FeatureCollection of WGS84 points; the GCJ-02 input was shifted to WGS84.
    let (s, geo) = get_bytes(&base, Some(&ua), "/api/v1/export/buildings.geojson").await;
    assert_eq!(s, 200);
    let geo: Value = serde_json::from_slice(&geo).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    let feats = geo["features"].as_array().unwrap();
    assert_eq!(feats.len(), 2);
    for f in feats {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Point");
        let c = f["geometry"]["coordinates"].as_array().unwrap();
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(
            (103.0..105.0).contains(&lon) && (30.0..31.5).contains(&lat),
            "{f}"
        );
        if f["properties"]["楼栋名称"] == "乙栋" {
            // GCJ-02 → WGS84 moves Chengdu a few hundred metres south-west.
            assert!(lon < 104.0880 - 0.001 && lat > 30.6490 - 0.01, "{f}");
        } else {
            assert!(
                (lon - 104.0817).abs() < 1e-6 && (lat - 30.6520).abs() < 1e-6,
                "{f}"
            );
        }
    }
});

both_stores!(
    dwellings_bad_rows_then_valid_only,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let ua = worker(&t, "worker_a", w.comm_a).await;
        let ub = worker(&t, "worker_b", w.comm_b).await;
        let (s, _) = post_kind(&base, &ua, "buildings", w.comm_a, false, "楼栋名称\n甲栋\n").await;
        assert_eq!(s, 200);
        let (s, _) = post_kind(&base, &ub, "buildings", w.comm_b, false, "楼栋名称\n乙栋\n").await;
        assert_eq!(s, 200);
        let file = "楼栋名称,门牌号,楼层,建筑面积（平方米）\n\
        甲栋,101,1,89.5\n\
        丙栋,102,1,80\n\
        甲栋,201,abc,80\n\
        乙栋,101,1,80\n\
        甲栋,,2,80\n\
        甲栋,101,1,60\n";
        let (s, body) = post_kind(&base, &ua, "dwellings", w.comm_a, false, file).await;
        assert_eq!(s, 422, "{body}");
        let rep = &body["report"];
        assert_eq!(rep["written"], false);
        assert!(
            has_error(rep, 3, "楼栋名称", "import.building_unknown"),
            "{rep}"
        );
        assert!(has_error(rep, 4, "楼层", "value.number"), "{rep}");
        // Community B's building is as unknown to A's import as a missing one.
        assert!(
            has_error(rep, 5, "楼栋名称", "import.building_unknown"),
            "{rep}"
        );
        assert!(has_error(rep, 6, "门牌号", "value.required"), "{rep}");
        assert!(
            has_error(rep, 7, "门牌号", "import.already_exists"),
            "{rep}"
        );
        assert_eq!(rep["errors"].as_array().unwrap().len(), 5, "{rep}");
        assert_eq!(count(&t, "SELECT count(*) FROM dwellings").await, 0);
        let (s, body) = post_kind(&base, &ua, "dwellings", w.comm_a, true, file).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["report"]["imported"], 1);
        assert_eq!(count(&t, "SELECT count(*) FROM dwellings").await, 1);
        // The export names the building and round-trips into an empty building elsewhere.
        let (s, csv) = get_bytes(&base, Some(&ua), "/api/v1/export/dwellings.csv").await;
        assert_eq!(s, 200);
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.contains("甲栋") && csv.contains("101"), "{csv}");
        let (s, geo) = get_bytes(&base, Some(&ua), "/api/v1/export/dwellings.geojson").await;
        assert_eq!(s, 200);
        let geo: Value = serde_json::from_slice(&geo).unwrap();
        assert_eq!(geo["features"].as_array().unwrap().len(), 1);
        let (_, b_csv) = get_bytes(&base, Some(&ub), "/api/v1/export/dwellings.csv").await;
        assert!(io::sheet::read(&b_csv, Format::Csv)
            .unwrap()
            .rows
            .is_empty());
        // Round trip: B gets a building of the same name, then A's export imports there.
        let (s, _) = post_kind(&base, &ub, "buildings", w.comm_b, false, "楼栋名称\n甲栋\n").await;
        assert_eq!(s, 200);
        let (s, body) = post_kind(&base, &ub, "dwellings", w.comm_b, false, &csv).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["report"]["imported"], 1, "{body}");
    }
);

both_stores!(
    facilities_and_vulnerable_import_export,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let ua = worker(&t, "worker_a", w.comm_a).await;
        let fac = "设施类型,设施名称,容纳人数,经度,纬度,坐标系\n\
        应急避难场所,水井坊广场,500,104.08,30.65,百度\n\
        应急避难场所,无容量点,,,,\n\
        消火栓,一号消火栓,,104.08,,WGS84\n";
        let (s, body) = post_kind(&base, &ua, "facilities", w.comm_a, false, fac).await;
        assert_eq!(s, 422, "{body}");
        let rep = &body["report"];
        assert!(
            has_error(rep, 3, "容纳人数", "facility.shelter_capacity_required"),
            "{rep}"
        );
        assert!(has_error(rep, 4, "纬度", "value.required"), "{rep}");
        assert_eq!(count(&t, "SELECT count(*) FROM facilities").await, 0);
        let (s, body) = post_kind(&base, &ua, "facilities", w.comm_a, true, fac).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["report"]["imported"], 1);
        let (s, geo) = get_bytes(&base, Some(&ua), "/api/v1/export/facilities.geojson").await;
        assert_eq!(s, 200);
        let geo: Value = serde_json::from_slice(&geo).unwrap();
        let f = &geo["features"][0];
        assert_eq!(f["properties"]["设施类型"], "应急避难场所");
        let lon = f["geometry"]["coordinates"][0].as_f64().unwrap();
        assert!(lon < 104.08 - 0.001, "BD-09 input stored as WGS84: {f}");
        // Round trip into community B: the same facility, at the same WGS84 point.
        let ub = worker(&t, "worker_b", w.comm_b).await;
        let (_, fcsv) = get_bytes(&base, Some(&ua), "/api/v1/export/facilities.xlsx").await;
        let (s, body) = post_kind_as(
            &base,
            &ub,
            "facilities",
            w.comm_b,
            false,
            io::XLSX_TYPE,
            fcsv,
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let (_, bgeo) = get_bytes(&base, Some(&ub), "/api/v1/export/facilities.geojson").await;
        let bgeo: Value = serde_json::from_slice(&bgeo).unwrap();
        let blon = bgeo["features"][0]["geometry"]["coordinates"][0]
            .as_f64()
            .unwrap();
        assert!((blon - lon).abs() < 1e-6, "{bgeo}");

        // Vulnerable people: by document number or person id, only within the community.
        let vul = format!(
            "姓名,证件号码,人员编号,类别,联系方式\n\
         张三丰,{PERSON_A1_ID_NUMBER},,独居老人,电话\n\
         王五,,{},残疾人,短信\n\
         李四,,{},外星人,短信\n\
         ,,,独居老人,电话\n",
            w.person_b1, w.person_a1n
        );
        let (s, body) = post_kind(&base, &ua, "vulnerable", w.comm_a, false, &vul).await;
        assert_eq!(s, 422, "{body}");
        let rep = &body["report"];
        assert!(
            has_error(rep, 3, "人员编号", "import.person_unknown"),
            "{rep}"
        );
        assert!(has_error(rep, 4, "类别", "value.invalid"), "{rep}");
        assert!(
            has_error(rep, 5, "证件号码", "vulnerable.person_or_document"),
            "{rep}"
        );
        assert_eq!(count(&t, "SELECT count(*) FROM vulnerable").await, 0);
        let (s, body) = post_kind(&base, &ua, "vulnerable", w.comm_a, true, &vul).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["report"]["imported"], 1);
        let (s, csv) = get_bytes(&base, Some(&ua), "/api/v1/export/vulnerable.csv").await;
        assert_eq!(s, 200);
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.contains("独居老人") && csv.contains("张三丰"), "{csv}");
        assert!(
            !csv.contains(PERSON_A1_ID_NUMBER),
            "full document number exported: {csv}"
        );
        // The export imports again: the pair exists already, so nothing is written twice.
        let (s, body) = post_kind(&base, &ua, "vulnerable", w.comm_a, false, &csv).await;
        assert_eq!(s, 422, "{body}");
        assert!(
            has_error(&body["report"], 2, "类别", "import.already_exists"),
            "{body}"
        );

        // Households: A's worker exports A's households only.
        let (s, hh) = get_bytes(&base, Some(&ua), "/api/v1/export/households.csv").await;
        assert_eq!(s, 200);
        let hh = String::from_utf8(hh).unwrap();
        assert!(hh.contains("1-1-101") && !hh.contains("2-1-101"), "{hh}");
        let (s, _) = get_bytes(&base, Some(&ua), "/api/v1/export/households.xlsx").await;
        assert_eq!(s, 200);
    }
);

both_stores!(place_exports_are_neutralised, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    let ua = worker(&t, "worker_a", w.comm_a).await;
    let file = "楼栋名称,地址\n\"=HYPERLINK(\"\"http://x\"\")\",@SUM(1)\n+1栋,-2号\n";
    let (s, body) = post_kind(&base, &ua, "buildings", w.comm_a, false, file).await;
    assert_eq!(s, 200, "{body}");
    let (_, csv) = get_bytes(&base, Some(&ua), "/api/v1/export/buildings.csv").await;
    let raw = io::sheet::read_raw(&csv, Format::Csv).unwrap();
    for (_, r) in &raw.rows {
        for c in r {
            assert!(!c.starts_with(['=', '+', '-', '@']), "{c}");
        }
    }
    let (_, xlsx) = get_bytes(&base, Some(&ua), "/api/v1/export/buildings.xlsx").await;
    let raw = io::sheet::read_raw(&xlsx, Format::Xlsx).unwrap();
    assert!(raw
        .rows
        .iter()
        .any(|(_, r)| r.contains(&"'=HYPERLINK(\"http://x\")".to_owned())));
    // and they read back as they were
    let back = io::sheet::read(&csv, Format::Csv).unwrap();
    assert!(
        back.rows
            .iter()
            .any(|(_, r)| r[0] == "+1栋" && r[3] == "-2号"),
        "{:?}",
        back.rows
    );
});

both_stores!(place_templates_and_outsiders, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let base = t.serve().await;
    for kind in ["buildings", "dwellings", "vulnerable", "facilities"] {
        for ext in ["csv", "xlsx"] {
            let (s, bytes) = get_bytes(
                &base,
                None,
                &format!("/api/v1/import/{kind}/template.{ext}"),
            )
            .await;
            assert_eq!(s, 200, "{kind} {ext}");
            let fmt = if ext == "csv" {
                Format::Csv
            } else {
                Format::Xlsx
            };
            let sheet = io::sheet::read(&bytes, fmt).unwrap();
            assert_eq!(sheet.rows.len(), 1, "{kind} {ext}: one example row");
            assert!(
                sheet.headers.iter().all(|h| !h.is_ascii()),
                "{kind}: Chinese headers"
            );
        }
    }
    // Another community's worker cannot import into A.
    let ub = worker(&t, "worker_b", w.comm_b).await;
    for kind in ["buildings", "facilities", "vulnerable", "dwellings"] {
        let (s, body) = post_kind(&base, &ub, kind, w.comm_a, true, "楼栋名称,设施类型,设施名称,类别,联系方式,门牌号\n闯入楼,消火栓,闯入设施,残疾人,短信,999\n").await;
        assert_eq!(s, 404, "{kind}: {body}");
    }
    assert_eq!(count(&t, "SELECT count(*) FROM buildings").await, 0);
    assert_eq!(count(&t, "SELECT count(*) FROM facilities").await, 0);
    // The template's example row imports (buildings into A, whose grid 一网格 exists).
    let ua = worker(&t, "worker_a", w.comm_a).await;
    let (_, tpl) = get_bytes(&base, None, "/api/v1/import/buildings/template.csv").await;
    let (s, body) = post_kind(
        &base,
        &ua,
        "buildings",
        w.comm_a,
        false,
        &String::from_utf8(tpl).unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
});

both_stores!(
    import_page_runs_in_the_background,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let ua = worker(&t, "worker_a", w.comm_a).await;
        let (s, page) = get_bytes(&base, Some(&ua), "/manage/import?kind=buildings").await;
        assert_eq!(s, 200);
        let page = String::from_utf8(page).unwrap().replace("&#x2f;", "/");
        assert!(
            page.contains("导入与导出") && page.contains("仅导入有效行"),
            "{page}"
        );
        assert!(
            page.contains("/api/v1/import/buildings/template.csv"),
            "{page}"
        );
        assert!(page.contains(&w.comm_a.to_string()) && !page.contains(&w.comm_b.to_string()));
        let file = "楼栋名称,层数\n页面甲栋,6\n页面乙栋,很多\n";
        // With script (htmx): the CSRF token in a header, a fragment back. Without script: the
        // token as the form's `_csrf` field, a redirect to the job's page.
        let multipart = |valid_only: bool, csrf_field: bool| {
            let mut b = String::new();
            let mut fields = vec![
                ("kind", "buildings".to_owned()),
                ("community", w.comm_a.to_string()),
                ("valid_only", if valid_only { "1" } else { "" }.to_owned()),
            ];
            if csrf_field {
                fields.insert(0, ("_csrf", ua.csrf.clone()));
            }
            for (k, v) in fields {
                b.push_str(&format!(
                    "--B0undary\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                ));
            }
            b.push_str(&format!(
                "--B0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.csv\"\r\n\
                 Content-Type: text/csv\r\n\r\n{file}\r\n--B0undary--\r\n"
            ));
            b
        };
        // Without the token anywhere: refused, nothing written.
        let r = client()
            .post(format!("{base}/manage/import"))
            .header("cookie", &ua.cookie)
            .header("content-type", "multipart/form-data; boundary=B0undary")
            .body(multipart(true, false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        for valid_only in [false, true] {
            let scripted = !valid_only;
            let mut req = client()
                .post(format!("{base}/manage/import"))
                .header("cookie", &ua.cookie)
                .header("content-type", "multipart/form-data; boundary=B0undary")
                .body(multipart(valid_only, !scripted));
            if scripted {
                req = req
                    .header("x-csrf-token", &ua.csrf)
                    .header("hx-request", "true");
            }
            let r = req.send().await.unwrap();
            let id = if scripted {
                assert_eq!(r.status().as_u16(), 200);
                let frag = r.text().await.unwrap().replace("&#x2f;", "/");
                frag.split("/manage/import/jobs/")
                    .nth(1)
                    .map(|s| s[..36].to_owned())
                    .unwrap_or_else(|| frag.split("job-").nth(1).unwrap()[..36].to_owned())
            } else {
                assert_eq!(r.status().as_u16(), 303);
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let id = loc.strip_prefix("/manage/import/jobs/").unwrap().to_owned();
                // The job's page is a whole page that reloads itself while the job runs.
                let (_, b) = get_bytes(&base, Some(&ua), &loc).await;
                let page = String::from_utf8(b).unwrap();
                assert!(page.starts_with("<!doctype html>"), "{page}");
                id
            };
            let mut html = String::new();
            for _ in 0..200 {
                let (s, b) =
                    get_bytes(&base, Some(&ua), &format!("/manage/import/jobs/{id}")).await;
                assert_eq!(s, 200);
                html = String::from_utf8(b).unwrap().replace("&#x2f;", "/");
                if html.contains("class=\"summary\"") {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(html.contains("<td>3</td><td>层数</td>"), "{html}");
            let built = count(&t, "SELECT count(*) FROM buildings WHERE name LIKE '页面%'").await;
            assert_eq!(built, i64::from(valid_only), "{html}");
            // Someone else's job is not found.
            let (s, _) = get_bytes(&base, None, &format!("/manage/import/jobs/{id}")).await;
            assert_ne!(s, 200);
        }
    }
);

both_stores!(
    english_headers_and_xlsx_for_places,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let ua = worker(&t, "worker_a", w.comm_a).await;
        let head = ["kind", "name", "capacity", "lon", "lat", "crs", "status"];
        let rows = vec![
            vec![
                "shelter".to_owned(),
                "English Square".to_owned(),
                "300".to_owned(),
                "104.07".to_owned(),
                "30.66".to_owned(),
                "wgs84".to_owned(),
                "open".to_owned(),
            ],
            vec![
                "hydrant".to_owned(),
                "H-1".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "broken".to_owned(),
            ],
        ];
        let xlsx = io::sheet::write_xlsx("facilities", &head, &rows).unwrap();
        let (s, body) = post_kind_as(
            &base,
            &ua,
            "facilities",
            w.comm_a,
            false,
            io::XLSX_TYPE,
            xlsx,
        )
        .await;
        assert_eq!(s, 422, "{body}");
        // The report names the column as the file has it.
        assert!(
            has_error(&body["report"], 3, "status", "value.invalid"),
            "{body}"
        );
        let e = &body["report"]["errors"][0];
        assert!(
            e["message_en"].as_str().is_some_and(|m| !m.is_empty()),
            "{e}"
        );
        assert_eq!(count(&t, "SELECT count(*) FROM facilities").await, 0);
    }
);
