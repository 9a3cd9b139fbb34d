//! The people import's bulk path (issue 3): one write, all or nothing. Every person, membership
//! and household it writes has the change-log entry `Tx::insert` would give it (the image equals
//! the record as stored), name grams for the list, positions gap-free; the store's indexes are
//! all there afterwards (SQLite drops and rebuilds them for a large import). An import that fails
//! half-way (a later chunk refused by the database) leaves nothing: no people, households, data
//! keys, grams or change-log entries, and the indexes as they were.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use anxin::io::people::{import, Options};
use anxin::io::{sheet, Format, Progress};
use anxin_store::people::{self, PeopleFilter};
use anxin_store::scope::Caller;
use anxin_store::{Dialect, Row, Value, WriteCtx};
use uuid::Uuid;

use crate::support::TestApp;
use crate::world;

const HEAD: &str = "姓名,性别,出生日期,人口类型,证件类型,证件号码,联系电话,户号,与户主关系,网格";
const N: usize = 40;
const BAD: &str = "批量坏人";

fn id_number(birth: &str, seq: usize) -> String {
    let body = format!("510104{birth}{seq:03}");
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    format!("{body}{check}")
}

/// `N` people in 8 new households; row `bad` (0-based), if any, is named [`BAD`].
fn file(bad: Option<usize>) -> Vec<u8> {
    let mut rows = vec![HEAD.to_owned()];
    for i in 0..N {
        let name = if Some(i) == bad {
            BAD.to_owned()
        } else {
            format!(
                "批量{}号",
                char::from_u32(0x4e00 + u32::try_from(i).unwrap()).unwrap()
            )
        };
        // The first member of each household heads it; households 0, 2, 4, 6 are in a grid.
        let role = if i < 8 { "户主" } else { "子女" };
        let grid = if i % 8 % 2 == 0 { "一网格" } else { "" };
        rows.push(format!(
            "{name},{},1980-01-{:02},户籍,居民身份证,{},1380000{i:04},B-{},{role},{grid}",
            if i % 2 == 1 { "男" } else { "女" },
            i % 28 + 1,
            id_number(&format!("198001{:02}", i % 28 + 1), 100 + i),
            i % 8,
        ));
    }
    rows.join("\n").into_bytes()
}

async fn run(
    t: &TestApp,
    community: Uuid,
    bad: Option<usize>,
) -> Result<anxin::io::Report, String> {
    let sheet = sheet::read(&file(bad), Format::Csv).unwrap();
    let mut opts = Options::new(community, false);
    opts.chunk = 7;
    import(
        t.store(),
        WriteCtx::system("bulk-test"),
        &Caller::system(),
        sheet,
        &opts,
        Arc::new(Progress::default()),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn q(t: &TestApp, sql: &'static str) -> Vec<Row> {
    t.store().read(move |c, _| c.query(sql, &[])).await.unwrap()
}

async fn n(t: &TestApp, sql: &'static str) -> i64 {
    t.store()
        .read(move |c, _| c.query_i64(sql, &[]))
        .await
        .unwrap()
}

/// Every index of the schema, by name.
async fn indexes(t: &TestApp) -> Vec<String> {
    let sql = match t.store().dialect() {
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
        Dialect::Postgres => {
            "SELECT indexname::text AS name FROM pg_indexes \
             WHERE schemaname = current_schema() ORDER BY indexname"
        }
    };
    q(t, sql)
        .await
        .iter()
        .map(|r| r.get::<String>("name").unwrap())
        .collect()
}

/// What the tables the import fills hold.
async fn counts(t: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "SELECT count(*) FROM people",
        "SELECT count(*) FROM households",
        "SELECT count(*) FROM memberships",
        "SELECT count(*) FROM data_keys",
        "SELECT count(*) FROM person_name_grams",
        "SELECT count(*) FROM change_log",
        "SELECT last FROM log_counter",
    ] {
        out.push(n(t, sql).await);
    }
    out
}

/// The JSON an entry's `after` column holds (text on SQLite, JSONB on PostgreSQL).
fn json_of(v: &Value) -> serde_json::Value {
    match v {
        Value::Json(j) => j.clone(),
        Value::Text(s) => serde_json::from_str(s).unwrap(),
        other => panic!("not JSON: {other:?}"),
    }
}

/// The insert entry of each record of `table` whose id `ids` lists equals the record as stored.
async fn images_match(t: &TestApp, table: &'static str, ids: Vec<Uuid>) {
    t.store()
        .read(move |c, env| {
            for id in ids {
                let stored = c
                    .query_one(
                        &format!("SELECT * FROM {table} WHERE id = $1"),
                        &[Value::Uuid(id)],
                    )?
                    .unwrap();
                let entries = c.query(
                    "SELECT after, after_ct, key_id FROM change_log \
                     WHERE kind = $1 AND record_id = $2 AND op = 'insert'",
                    &[Value::Text(table.into()), Value::Uuid(id)],
                )?;
                assert_eq!(entries.len(), 1, "{table} {id}");
                let e = &entries[0];
                let image = match e.raw("after_ct")? {
                    Value::Bytes(ct) => {
                        assert!(e.get::<Option<Uuid>>("key_id")?.is_some());
                        let plain = env.keys.open(c, "change_log.after", ct)?;
                        serde_json::from_slice(&plain).unwrap()
                    }
                    _ => json_of(e.raw("after")?),
                };
                assert_eq!(image, stored.to_json(), "{table} {id}");
            }
            Ok(())
        })
        .await
        .unwrap();
}

both_stores!(bulk_import_logs_as_insert_does, |t: TestApp| async move {
    let w = world::build(t.store()).await;
    let before = counts(&t).await;
    assert!(
        usize::try_from(before[0]).unwrap() <= N,
        "large against the table: SQLite takes the rebuilt-index path"
    );
    let idx = indexes(&t).await;
    let rep = run(&t, w.comm_a, None).await.unwrap();
    assert_eq!(
        (rep.imported, rep.households_created, rep.written),
        (N, 8, true),
        "{rep:?}"
    );
    let after = counts(&t).await;
    // people, households, memberships, data keys: one each (8 households); the log: one entry
    // per record.
    assert_eq!(after[0] - before[0], 40);
    assert_eq!(after[1] - before[1], 8);
    assert_eq!(after[2] - before[2], 40);
    assert_eq!(after[3] - before[3], 40);
    assert_eq!(after[5] - before[5], 88);
    assert_eq!(after[6] - before[6], 88, "positions taken for every entry");
    // Positions gap-free, the counter at the last one.
    assert_eq!(
        n(
            &t,
            "SELECT max(pos) - min(pos) + 1 - count(*) FROM change_log"
        )
        .await,
        0
    );
    assert_eq!(n(&t, "SELECT max(pos) FROM change_log").await, after[6]);
    assert_eq!(indexes(&t).await, idx, "every index is there again");

    let ids = |sql: &'static str| {
        let t = &t;
        async move {
            q(t, sql)
                .await
                .iter()
                .map(|r| r.get::<Uuid>("id").unwrap())
                .collect::<Vec<_>>()
        }
    };
    let people_ids = ids("SELECT id FROM people WHERE name LIKE '批量%'").await;
    assert_eq!(people_ids.len(), N);
    images_match(&t, "people", people_ids).await;
    images_match(
        &t,
        "memberships",
        ids(
            "SELECT m.id FROM memberships m JOIN people p ON p.id = m.person_id \
             WHERE p.name LIKE '批量%'",
        )
        .await,
    )
    .await;
    images_match(
        &t,
        "households",
        ids("SELECT id FROM households WHERE label LIKE 'B-%'").await,
    )
    .await;

    // Name grams: exactly the person's, so the list finds them by any part of the name.
    for r in q(&t, "SELECT id, name FROM people WHERE name LIKE '批量%'").await {
        let (id, name) = (
            r.get::<Uuid>("id").unwrap(),
            r.get::<String>("name").unwrap(),
        );
        let got = t
            .store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM person_name_grams WHERE person_id = $1",
                    &[Value::Uuid(id)],
                )
            })
            .await
            .unwrap();
        assert_eq!(
            usize::try_from(got).unwrap(),
            people::name_grams(&name).len()
        );
    }
    let sys = Caller::system();
    let page = t
        .store()
        .read(move |c, _| {
            people::list_people(
                c,
                &sys,
                &PeopleFilter {
                    q: Some("量一".into()),
                    ..PeopleFilter::default()
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1, "a two-character part of one name");
    // Households take their first member's grid; members follow their household.
    assert_eq!(
        n(
            &t,
            "SELECT count(*) FROM people p JOIN households h ON h.id = p.household_id \
             WHERE p.name LIKE '批量%' \
             AND (p.grid_id = h.grid_id OR (p.grid_id IS NULL AND h.grid_id IS NULL))"
        )
        .await,
        40
    );
    assert_eq!(
        n(
            &t,
            "SELECT count(*) FROM people WHERE name LIKE '批量%' AND grid_id IS NOT NULL"
        )
        .await,
        20
    );
    // The same file again: every document is taken now, nothing is written.
    let again = run(&t, w.comm_a, None).await.unwrap();
    assert!(!again.written && again.errors.len() == N, "{again:?}");
    assert_eq!(counts(&t).await, after);
});

both_stores!(
    bulk_import_failing_half_way_leaves_nothing,
    |t: TestApp| async move {
        let w = world::build(t.store()).await;
        // The database refuses one person in the fourth chunk (7 rows a chunk), after three
        // chunks have been written inside the import's transaction.
        let trigger = match t.store().dialect() {
            Dialect::Sqlite => format!(
                "CREATE TRIGGER bulk_test_refuse BEFORE INSERT ON people WHEN NEW.name = '{BAD}' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ),
            Dialect::Postgres => format!(
                "CREATE FUNCTION bulk_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $f$ \
                 BEGIN IF NEW.name = '{BAD}' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                 RETURN NEW; END $f$; \
                 CREATE TRIGGER bulk_test_refuse BEFORE INSERT ON people FOR EACH ROW \
                 EXECUTE FUNCTION bulk_test_refuse();"
            ),
        };
        t.store()
            .write(WriteCtx::system("test"), move |tx| {
                tx.conn().batch(&trigger)
            })
            .await
            .unwrap();
        let before = counts(&t).await;
        let idx = indexes(&t).await;
        let res = run(&t, w.comm_a, Some(23)).await;
        match &res {
            Err(e) => assert!(e.contains("refused by the test"), "{e}"),
            Ok(rep) => assert!(!rep.written && !rep.errors.is_empty(), "{rep:?}"),
        }
        assert_eq!(counts(&t).await, before, "nothing written");
        assert_eq!(
            n(&t, "SELECT count(*) FROM households WHERE label LIKE 'B-%'").await,
            0
        );
        assert_eq!(indexes(&t).await, idx, "the indexes as they were");
        // Without the refusing trigger the same file goes in whole.
        let drop = match t.store().dialect() {
            Dialect::Sqlite => "DROP TRIGGER bulk_test_refuse",
            Dialect::Postgres => "DROP TRIGGER bulk_test_refuse ON people",
        };
        t.store()
            .write(WriteCtx::system("test"), move |tx| tx.conn().batch(drop))
            .await
            .unwrap();
        let rep = run(&t, w.comm_a, Some(23)).await.unwrap();
        assert_eq!((rep.imported, rep.written), (N, true), "{rep:?}");
        assert_eq!(counts(&t).await[0] - before[0], 40);
    }
);
