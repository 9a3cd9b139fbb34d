//! Import and export of people: a file with bad rows writes nothing and its report names row,
//! column and reason; "import the valid rows" writes exactly those; an XLSX export imports back
//! into another community; exported cells cannot run as formulas; templates parse back; another
//! community's worker can neither import into nor export from community A.
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
    let officer = user(
        &t,
        "officer",
        UserKind::Staff,
        Some((Role::DistrictOfficer, Scope::Node(w.district))),
        None,
    )
    .await;
    let (s, _) = get_bytes(&base, Some(&officer), "/api/v1/export/people.csv?unmask=1").await;
    assert_eq!(s, 403);
});
