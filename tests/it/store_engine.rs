//! The storage engine on both backends: writes are logged, group commit under concurrency,
//! encryption round trips.

use anxin_store::{params, WriteCtx};

both_stores!(
    write_logs_every_change,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let id = store
            .write(WriteCtx::system("test"), |tx| {
                let id = tx.new_id();
                let now = tx.now();
                tx.insert(
                    "nodes",
                    &[
                        ("id", id.into()),
                        ("level", "city".into()),
                        ("name", "成都市".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                tx.update("nodes", id, &[("name", "成都".into())])?;
                Ok(id)
            })
            .await
            .unwrap();
        let (n, image) = store
            .read(move |c, _| {
                let n = c.query_i64(
                    "SELECT count(*) FROM change_log WHERE record_id = $1",
                    &params![id],
                )?;
                let row = c.query_one(
                    "SELECT after FROM change_log WHERE record_id = $1 ORDER BY pos DESC LIMIT 1",
                    &params![id],
                )?;
                let image: serde_json::Value = row.unwrap().get("after")?;
                Ok((n, image))
            })
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(image["name"], "成都");
    }
);

both_stores!(
    concurrent_writers_never_see_locked,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let mut handles = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            handles.push(tokio::spawn(async move {
                s.write(WriteCtx::system(format!("w{i}")), move |tx| {
                    let id = tx.new_id();
                    let now = tx.now();
                    tx.insert(
                        "nodes",
                        &[
                            ("id", id.into()),
                            ("level", "city".into()),
                            ("name", format!("city {i}").into()),
                            ("created_at", now.into()),
                            ("updated_at", now.into()),
                        ],
                    )?;
                    Ok(())
                })
                .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let (nodes, positions) = store
            .read(|c, _| {
                Ok((
                    c.query_i64("SELECT count(*) FROM nodes", &[])?,
                    c.query_i64(
                        "SELECT max(pos) - min(pos) + 1 - count(*) FROM change_log",
                        &[],
                    )?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(nodes, 200);
        assert_eq!(positions, 0, "change-log positions are gap-free");
    }
);

both_stores!(
    failed_write_leaves_nothing,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        // What the migrations wrote (the shipped checklists and their change-log entries).
        let (nodes0, log0) = store
            .read(|c, _| {
                Ok((
                    c.query_i64("SELECT count(*) FROM nodes", &[])?,
                    c.query_i64("SELECT count(*) FROM change_log", &[])?,
                ))
            })
            .await
            .unwrap();
        let r = store
            .write(WriteCtx::system("bad"), |tx| {
                let id = tx.new_id();
                let now = tx.now();
                tx.insert(
                    "nodes",
                    &[
                        ("id", id.into()),
                        ("level", "city".into()),
                        ("name", "x".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                // A second row breaking the level check: the whole write must vanish.
                tx.insert(
                    "nodes",
                    &[
                        ("id", tx.new_id().into()),
                        ("level", "planet".into()),
                        ("name", "y".into()),
                        ("created_at", now.into()),
                        ("updated_at", now.into()),
                    ],
                )?;
                Ok(())
            })
            .await;
        assert!(r.is_err());
        let (nodes, log) = store
            .read(|c, _| {
                Ok((
                    c.query_i64("SELECT count(*) FROM nodes", &[])?,
                    c.query_i64("SELECT count(*) FROM change_log", &[])?,
                ))
            })
            .await
            .unwrap();
        assert_eq!((nodes, log), (nodes0, log0));
    }
);

both_stores!(
    unlogged_writes_to_records_are_refused,
    |t: crate::support::TestApp| async move {
        let r = t
            .store()
            .write(WriteCtx::system("sneaky"), |tx| {
                tx.execute_unlogged("UPDATE nodes SET name = 'x' WHERE 1 = 0", &[])
            })
            .await;
        assert!(r.is_err());
    }
);
