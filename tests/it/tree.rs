//! The community tree: importing Chengdu's real division list, re-importing it unchanged, and
//! re-importing a list with a rename, a recode, a merge and a split.

use std::path::Path;

use anxin_store::params;
use anxin_store::scope::Caller;
use anxin_store::tree::TreeStore;

fn chengdu() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/divisions/chengdu"
    ))
}

async fn level_counts(t: &crate::support::TestApp) -> Vec<(String, i64)> {
    t.store()
        .read(|c, _| {
            let rows = c.query(
                "SELECT level, count(*) AS n FROM nodes WHERE status = 'active' GROUP BY level ORDER BY level",
                &[],
            )?;
            rows.iter().map(|r| Ok((r.get("level")?, r.get("n")?))).collect()
        })
        .await
        .unwrap()
}

both_stores!(
    chengdu_import_is_exact_and_idempotent,
    |t: crate::support::TestApp| async move {
        let rep = anxin::divisions::import(&t.app, chengdu(), None, "nbs-2023")
            .await
            .unwrap();
        assert_eq!(rep.added, 1 + 20 + 261 + 3047);
        assert_eq!(
            level_counts(&t).await,
            vec![
                ("city".into(), 1),
                ("community".into(), 3047),
                ("district".into(), 20),
                ("street".into(), 261)
            ]
        );
        let city = t
            .store()
            .read(|c, _| c.find_by_code(&Caller::system(), "5101"))
            .await
            .unwrap();
        assert_eq!(city.name, "成都市");
        let below = t
            .store()
            .read(move |c, _| c.count_below(&Caller::system(), city.id))
            .await
            .unwrap();
        assert!(below.contains(&("district".into(), 20)));
        assert!(below.contains(&("street".into(), 261)));
        assert!(below.contains(&("community".into(), 3047)));
        let log_before = t
            .store()
            .read(|c, _| c.query_i64("SELECT count(*) FROM change_log", &[]))
            .await
            .unwrap();

        let again = anxin::divisions::import(&t.app, chengdu(), None, "nbs-2023")
            .await
            .unwrap();
        assert!(!again.changed());
        assert_eq!(again.unchanged, 3329);
        let log_after = t
            .store()
            .read(|c, _| c.query_i64("SELECT count(*) FROM change_log", &[]))
            .await
            .unwrap();
        assert_eq!(
            log_before, log_after,
            "an unchanged re-import writes nothing"
        );
    }
);

/// Copy the Chengdu files, applying `edit` to each file's lines.
fn edited_copy(dir: &Path, edit: impl Fn(&str, Vec<String>) -> Vec<String>) {
    for f in ["areas-5101.csv", "streets-5101.csv", "villages-5101.csv"] {
        let text = std::fs::read_to_string(chengdu().join(f)).unwrap();
        let lines = edit(f, text.lines().map(str::to_owned).collect());
        std::fs::write(dir.join(f), lines.join("\n") + "\n").unwrap();
    }
}

both_stores!(
    reimport_applies_rename_recode_merge_split,
    |t: crate::support::TestApp| async move {
        anxin::divisions::import(&t.app, chengdu(), None, "nbs-2023")
            .await
            .unwrap();
        let id_of = |code: &'static str| {
            let s = t.store().clone();
            async move {
                s.read(move |c, _| c.find_by_code(&Caller::system(), code))
                    .await
                    .unwrap()
                    .id
            }
        };
        // Before: 锦江区 streets 510104017 锦官驿街道 and 510104018 东湖街道; a community of each.
        let shuijingfang = id_of("510104017001").await;
        let street_017 = id_of("510104017").await;
        let street_018 = id_of("510104018").await;
        let dir = tempfile::tempdir().unwrap();
        edited_copy(dir.path(), |f, lines| {
            lines
                .into_iter()
                .filter_map(|l| {
                    let mut l = l;
                    if f.starts_with("villages") {
                        // Rename: 水井坊社区居委会 → 水井坊历史街区社区居委会 (same code).
                        l = l.replace("\"水井坊社区居委会\"", "\"水井坊历史街区社区居委会\"");
                        // Merge: the communities of 510104018 move under street 510104017 with new codes.
                        if l.starts_with("510104018") {
                            let (code, rest) = l.split_once(',').unwrap();
                            let new_code =
                                format!("510104017{}", 500 + code[9..].parse::<u32>().unwrap());
                            l = format!(
                                "{new_code},{}",
                                rest.replacen("510104018", "510104017", 1)
                            );
                        }
                    }
                    if f.starts_with("streets") && l.starts_with("510104018,") {
                        return None; // street 510104018 merged away
                    }
                    Some(l)
                })
                .collect()
        });
        let rep = anxin::divisions::import(&t.app, dir.path(), None, "nbs-2024")
            .await
            .unwrap();
        assert_eq!(rep.renamed, 1, "{:?}", rep.lines);
        assert!(rep.merged >= 1, "{:?}", rep.lines);
        assert!(rep.recoded >= 1);
        assert_eq!(
            rep.retired, 1,
            "only the merged-away street retires: {:?}",
            rep.lines
        );
        // Ids survive: the renamed community, and the merged street's communities under their new codes.
        let renamed = t
            .store()
            .read(move |c, _| c.node(&Caller::system(), shuijingfang))
            .await
            .unwrap();
        assert_eq!(renamed.name, "水井坊历史街区社区居委会");
        let (moved_parent, retired) = t
        .store()
        .read(move |c, _| {
            let p: Option<uuid::Uuid> = c
                .query_one(
                    "SELECT n.parent_id FROM nodes n JOIN node_codes k ON k.node_id = n.id AND k.valid_to IS NULL \
                     WHERE k.code = '510104017501'",
                    &[],
                )?
                .unwrap()
                .get("parent_id")?;
            let r = c.query_one("SELECT status, merged_into FROM nodes WHERE id = $1", &params![street_018])?.unwrap();
            Ok((p, (r.get::<String>("status")?, r.get::<Option<uuid::Uuid>>("merged_into")?)))
        })
        .await
        .unwrap();
        assert_eq!(moved_parent, Some(street_017));
        assert_eq!(retired, ("retired".into(), Some(street_017)));
        // The old code is kept as history, closed.
        let history = t
        .store()
        .read(|c, _| c.query_i64("SELECT count(*) FROM node_codes WHERE code = '510104018001' AND valid_to IS NOT NULL", &[]))
        .await
        .unwrap();
        assert_eq!(history, 1);
        // And a second run of the same list changes nothing.
        let again = anxin::divisions::import(&t.app, dir.path(), None, "nbs-2024")
            .await
            .unwrap();
        assert!(!again.changed(), "{:?}", again.lines);
    }
);

#[tokio::test]
async fn bad_rows_are_reported_and_nothing_is_written() {
    let t = crate::support::TestApp::new(crate::support::Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    edited_copy(dir.path(), |f, mut lines| {
        if f.starts_with("villages") {
            lines[5] = "51010401700X,\"坏社区\",510104017,51,5101,510104".into();
            lines[9] = "510104099001,\"孤儿社区\",510104099,51,5101,510104".into();
        }
        lines
    });
    let err = anxin::divisions::import(&t.app, dir.path(), None, "x")
        .await
        .unwrap_err();
    let anxin::divisions::ImportError::Rows(rows) = err else {
        panic!("expected row errors")
    };
    assert!(
        rows.iter()
            .any(|r| r.file == "villages-5101.csv" && r.row == 6 && r.column == "code"),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.reason.contains("parent")), "{rows:?}");
    let n = t
        .store()
        .read(|c, _| c.query_i64("SELECT count(*) FROM nodes", &[]))
        .await
        .unwrap();
    assert_eq!(n, 0);
}
