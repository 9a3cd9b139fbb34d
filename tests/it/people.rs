//! People: sealed, masked, searchable by blind index, scoped to the caller, erasable.

use anxin_domain::{DocType, Document, Phone};
use anxin_store::people::{self, NewPerson, PeopleFilter, PersonPatch};
use anxin_store::scope::Caller;
use anxin_store::{params, StoreError, WriteCtx};

use crate::world::{self, PERSON_A1_ID_NUMBER, PERSON_A1_PHONE};

both_stores!(
    sealed_masked_and_searchable,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let id = w.person_a1;
        let view = t
            .store()
            .read(move |c, _| people::get_person(c, &Caller::system(), id))
            .await
            .unwrap();
        assert_eq!(view.doc_mask.as_deref(), Some("110***********002X"));
        assert_eq!(view.phone_mask.as_deref(), Some("138****5678"));
        assert_eq!(
            view.birth_date.map(|d| d.to_string()).as_deref(),
            Some("1949-12-31")
        );
        // Stored as ciphertext only.
        let raw: Vec<u8> = t
            .store()
            .read(move |c, _| {
                c.query_one("SELECT doc_ct FROM people WHERE id = $1", &params![id])?
                    .unwrap()
                    .get("doc_ct")
            })
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("19491231"));
        // Findable by exact document and phone, in any accepted spelling.
        let doc = Document::parse(DocType::MainlandId, "110105 19491231 002x").unwrap();
        let phone = Phone::parse("+86 138-1234-5678").unwrap();
        let (by_doc, by_phone) = t
            .store()
            .read(move |c, env| {
                Ok((
                    people::find_by_document(c, env, &Caller::system(), &doc)?,
                    people::find_by_phone(c, env, &Caller::system(), &phone)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(by_doc.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);
        assert_eq!(by_phone.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);
        // Chinese substring search on the name.
        let page = t
            .store()
            .read(|c, _| {
                people::list_people(
                    c,
                    &Caller::system(),
                    &PeopleFilter {
                        q: Some("三丰".into()),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].name, "张三丰");
        // Unmask gives the plaintext to those allowed.
        let w2 = w.clone();
        let u = t
            .store()
            .read(move |c, env| people::unmask_person(c, env, &w2.worker_a(), id))
            .await
            .unwrap();
        assert_eq!(u.doc_number.as_deref(), Some(PERSON_A1_ID_NUMBER));
        assert_eq!(u.phone.as_deref(), Some("+8613812345678"));
        // An officer sees the record, masked, but may not unmask.
        let w3 = w.clone();
        let r = t
            .store()
            .read(move |c, env| people::unmask_person(c, env, &w3.district_officer(), id))
            .await;
        assert!(matches!(r, Err(StoreError::Forbidden(_))), "{r:?}");
        let _ = PERSON_A1_PHONE;
    }
);

both_stores!(
    outside_scope_is_not_found,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let id = w.person_a1;
        for (who, caller) in [
            ("sibling community", w.worker_b()),
            ("sibling grid", w.grid_worker_a2()),
            ("neighbouring household", w.resident_a1n()),
            ("provider", w.provider()),
            ("inspector", w.inspector()),
        ] {
            let c2 = caller.clone();
            let r = t
                .store()
                .read(move |c, _| people::get_person(c, &c2, id))
                .await;
            assert!(matches!(r, Err(StoreError::NotFound)), "{who}: {r:?}");
            let c3 = caller.clone();
            let r = t
                .store()
                .write(WriteCtx::system("t"), move |tx| {
                    people::update_person(
                        tx,
                        &c3,
                        id,
                        &PersonPatch {
                            name: Some("x".into()),
                            ..Default::default()
                        },
                    )
                })
                .await;
            assert!(
                matches!(r, Err(StoreError::NotFound)),
                "{who} update: {r:?}"
            );
            let c4 = caller.clone();
            let page = t
                .store()
                .read(move |c, _| people::list_people(c, &c4, &PeopleFilter::default()))
                .await
                .unwrap();
            assert!(
                page.items.iter().all(|p| p.id != id),
                "{who} lists the record"
            );
        }
        // Those inside see it.
        for caller in [
            w.worker_a(),
            w.grid_worker_a1(),
            w.resident_a1(),
            w.district_officer(),
        ] {
            let r = t
                .store()
                .read(move |c, _| people::get_person(c, &caller, id))
                .await;
            assert!(r.is_ok(), "{r:?}");
        }
        // A grid worker lists exactly their grid.
        let gw = w.grid_worker_a1();
        let page = t
            .store()
            .read(move |c, _| people::list_people(c, &gw, &PeopleFilter::default()))
            .await
            .unwrap();
        let mut ids: Vec<_> = page.items.iter().map(|p| p.id).collect();
        ids.sort();
        let mut want = vec![w.person_a1, w.person_a1n];
        want.sort();
        assert_eq!(ids, want);
    }
);

both_stores!(
    one_document_one_person,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let i = world::person_input(
            "张三丰",
            Some(PERSON_A1_ID_NUMBER),
            None,
            w.comm_b,
            w.grid_b1,
            w.hh_b1,
        );
        let r = t
            .store()
            .write(WriteCtx::system("dup"), move |tx| {
                people::create_person(tx, &Caller::system(), &NewPerson::parse(&i)?)
            })
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    code: "person.document_taken",
                    ..
                })
            ),
            "{r:?}"
        );
        // A bad checksum names the field.
        let mut bad = world::person_input(
            "赵六",
            Some("110105194912310021"),
            None,
            w.comm_b,
            w.grid_b1,
            w.hh_b1,
        );
        let e = NewPerson::parse(&bad).unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid { code: "document.checksum", ref field } if field == "document_number" || field == "doc_number"),
            "{e:?}"
        );
        bad.doc_number = None;
        bad.doc_type = "passport".into();
        assert!(NewPerson::parse(&bad).is_err(), "a passport needs a number");
        bad.doc_type = "none".into();
        assert!(
            NewPerson::parse(&bad).is_ok(),
            "nobody is refused for lacking a document"
        );
    }
);

both_stores!(
    erasure_shreds_history,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let id = w.person_a1;
        t.store()
            .write(WriteCtx::system("edit"), move |tx| {
                people::update_person(
                    tx,
                    &Caller::system(),
                    id,
                    &PersonPatch {
                        phone: Some("13800000000".into()),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        let images = t
            .store()
            .read(move |c, _| {
                let rows = c.query(
                    "SELECT after_ct FROM change_log WHERE record_id = $1 AND after_ct IS NOT NULL",
                    &params![id],
                )?;
                rows.iter()
                    .map(|r| r.get::<Vec<u8>>("after_ct"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap();
        assert!(images.len() >= 2);
        let first = images[0].clone();
        let readable = t
            .store()
            .read(move |c, env| env.keys.open(c, "change_log.after", &first))
            .await;
        assert!(readable.is_ok());
        t.store()
            .write(WriteCtx::system("erase"), move |tx| {
                people::erase_person(tx, &Caller::system(), id)
            })
            .await
            .unwrap();
        for ct in images {
            let r = t
                .store()
                .read(move |c, env| env.keys.open(c, "change_log.after", &ct))
                .await;
            assert!(
                matches!(r, Err(StoreError::Crypto(_))),
                "history must be unreadable after erasure"
            );
        }
        let gone = t
            .store()
            .read(move |c, _| people::get_person(c, &Caller::system(), id))
            .await;
        assert!(matches!(gone, Err(StoreError::NotFound)));
    }
);

// ---- bulk writes, keyset paging and name search (issue 3) ----

/// Register people named `names` in community A, grid A1, household hA1n (no documents).
async fn add_named(
    t: &crate::support::TestApp,
    w: &world::World,
    names: &[&str],
) -> Vec<uuid::Uuid> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let (comm, grid, hh) = (w.comm_a, w.grid_a1, w.hh_a1n);
    t.store()
        .write(WriteCtx::system("test"), move |tx| {
            names
                .iter()
                .map(|n| {
                    let p = NewPerson::parse(&world::person_input(n, None, None, comm, grid, hh))?;
                    people::create_person(tx, &Caller::system(), &p).map(|v| v.id)
                })
                .collect()
        })
        .await
        .unwrap()
}

async fn search(t: &crate::support::TestApp, caller: Caller, q: &str) -> Vec<String> {
    let q = q.to_owned();
    let mut page = t
        .store()
        .read(move |c, _| {
            people::list_people(
                c,
                &caller,
                &PeopleFilter {
                    q: Some(q),
                    limit: Some(200),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    let mut names: Vec<String> = page.items.drain(..).map(|p| p.name).collect();
    names.sort();
    names
}

both_stores!(
    insert_many_logs_one_entry_per_row_like_insert,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let comm = w.comm_a;
        let (single, many, person) = t
            .store()
            .write(WriteCtx::system("bulk"), move |tx| {
                let now = tx.now();
                let hh = |tx: &mut anxin_store::Tx, label: String| {
                    vec![
                        tx.new_id().into(),
                        comm.into(),
                        anxin_store::Value::Null,
                        anxin_store::Value::Null,
                        label.into(),
                        now.into(),
                        now.into(),
                    ]
                };
                let cols = [
                    "id",
                    "community_id",
                    "grid_id",
                    "dwelling_id",
                    "label",
                    "created_at",
                    "updated_at",
                ];
                let one = hh(tx, "单条".into());
                let pairs: Vec<(&str, anxin_store::Value)> =
                    cols.iter().copied().zip(one.iter().cloned()).collect();
                let single: uuid::Uuid = tx.insert("households", &pairs)?.get("id")?;
                // More rows than one statement takes on neither backend's limits, and enough
                // entries for the batched change-log append.
                let rows: Vec<Vec<anxin_store::Value>> =
                    (0..40).map(|i| hh(tx, format!("批量-{i}"))).collect();
                assert_eq!(tx.insert_many("households", &cols, &rows)?, 40);
                let many: Vec<uuid::Uuid> = rows
                    .iter()
                    .map(|r| match &r[0] {
                        anxin_store::Value::Uuid(u) => *u,
                        _ => unreachable!(),
                    })
                    .collect();
                // A personal record: its image is sealed with its own data key.
                let (dk, wrapped) = anxin_store::tx::make_data_key(tx.env(), tx.new_id())?;
                let key_id = dk.id();
                tx.add_data_keys(vec![(dk, wrapped)])?;
                let pid = tx.new_id();
                let p = vec![vec![
                    pid.into(),
                    key_id.into(),
                    comm.into(),
                    "欧阳批量".into(),
                    "registered".into(),
                    "none".into(),
                    now.into(),
                    now.into(),
                ]];
                tx.insert_many(
                    "people",
                    &[
                        "id",
                        "key_id",
                        "community_id",
                        "name",
                        "population_type",
                        "doc_type",
                        "created_at",
                        "updated_at",
                    ],
                    &p,
                )?;
                Ok((single, many, pid))
            })
            .await
            .unwrap();
        t.store()
            .read(move |c, env| {
                let entries = c.query(
                    "SELECT pos, kind, record_id, op, after, after_ct, key_id, request_id FROM change_log \
                     WHERE request_id = 'bulk' ORDER BY pos",
                    &[],
                )?;
                assert_eq!(entries.len(), 42, "one entry per row");
                let first: i64 = entries[0].get("pos")?;
                for (i, e) in entries.iter().enumerate() {
                    assert_eq!(e.get::<i64>("pos")?, first + i as i64, "gap-free positions");
                    assert_eq!(e.get::<String>("op")?, "insert");
                }
                let ids: Vec<uuid::Uuid> = entries.iter().map(|e| e.get("record_id")).collect::<Result<_, _>>()?;
                assert_eq!(ids[0], single);
                assert_eq!(&ids[1..41], &many[..], "entries in row order");
                assert_eq!(ids[41], person);
                // Same shape as a single insert: the after-image is the row as stored.
                for e in &entries[..41] {
                    let id: uuid::Uuid = e.get("record_id")?;
                    let row = c.query_one("SELECT * FROM households WHERE id = $1", &params![id])?.unwrap();
                    assert_eq!(e.get::<serde_json::Value>("after")?, row.to_json());
                    assert!(e.get::<Option<Vec<u8>>>("after_ct")?.is_none());
                    assert!(e.get::<Option<uuid::Uuid>>("key_id")?.is_none());
                }
                // The personal record's image is sealed, not in plaintext.
                let e = &entries[41];
                assert!(e.get::<Option<serde_json::Value>>("after")?.is_none());
                let ct: Vec<u8> = e.get::<Option<Vec<u8>>>("after_ct")?.unwrap();
                let row = c.query_one("SELECT * FROM people WHERE id = $1", &params![person])?.unwrap();
                let image: serde_json::Value =
                    serde_json::from_slice(&env.keys.open(c, "change_log.after", &ct)?).unwrap();
                assert_eq!(image, row.to_json());
                assert_eq!(e.get::<Option<uuid::Uuid>>("key_id")?, row.get::<Option<uuid::Uuid>>("key_id")?);
                // Its name grams were written too.
                assert!(c.query_i64("SELECT count(*) FROM person_name_grams WHERE person_id = $1 AND gram = '阳批'", &params![person])? == 1);
                Ok(())
            })
            .await
            .unwrap();
    }
);

both_stores!(
    keyset_pages_neither_skip_nor_repeat,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let mut names = vec!["王芳"; 9];
        names.extend(vec!["李四"; 7]);
        names.extend(vec!["张伟"; 6]);
        names.push("阿");
        add_named(&t, &w, &names).await;
        for (caller, limit) in [
            (w.worker_a(), 4),
            (w.grid_worker_a1(), 3),
            (w.district_officer(), 5),
        ] {
            let c2 = caller.clone();
            let all = t
                .store()
                .read(move |c, _| {
                    people::list_people(
                        c,
                        &c2,
                        &PeopleFilter {
                            limit: Some(200),
                            ..Default::default()
                        },
                    )
                })
                .await
                .unwrap();
            assert!(all.items.len() >= 23);
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (c2, a) = (caller.clone(), after.clone());
                let page = t
                    .store()
                    .read(move |c, _| {
                        people::list_people(
                            c,
                            &c2,
                            &PeopleFilter {
                                limit: Some(limit),
                                after: a,
                                ..Default::default()
                            },
                        )
                    })
                    .await
                    .unwrap();
                assert!(page.items.len() as i64 <= limit);
                seen.extend(page.items.iter().map(|p| p.id));
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            let want: Vec<uuid::Uuid> = all.items.iter().map(|p| p.id).collect();
            assert_eq!(
                seen, want,
                "keyset pages walk the whole list once, in order"
            );
            // The list is in (name, id) order.
            let keys: Vec<(String, uuid::Uuid)> =
                all.items.iter().map(|p| (p.name.clone(), p.id)).collect();
            let mut sorted = keys.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.to_string().cmp(&b.1.to_string())));
            assert_eq!(
                keys.iter().map(|k| &k.0).collect::<Vec<_>>(),
                sorted.iter().map(|k| &k.0).collect::<Vec<_>>()
            );
            // Offsets still work and agree with the cursor walk.
            let c2 = caller.clone();
            let page = t
                .store()
                .read(move |c, _| {
                    people::list_people(
                        c,
                        &c2,
                        &PeopleFilter {
                            limit: Some(5),
                            offset: Some(7),
                            ..Default::default()
                        },
                    )
                })
                .await
                .unwrap();
            assert_eq!(
                page.items.iter().map(|p| p.id).collect::<Vec<_>>(),
                want[7..12].to_vec()
            );
            assert_eq!(page.total, want.len() as i64);
            assert!(!page.total_capped);
        }
        // A malformed cursor is refused, not ignored.
        let err = t
            .store()
            .read(|c, _| {
                people::list_people(
                    c,
                    &Caller::system(),
                    &PeopleFilter {
                        after: Some("%%%".into()),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }
);

both_stores!(
    chinese_search_finds_one_and_two_characters_anywhere,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        add_named(&t, &w, &["欧阳子涵", "李秀英", "王秀", "子涵", "陈建华"]).await;
        let sys = Caller::system();
        assert_eq!(
            search(&t, sys.clone(), "涵").await,
            vec!["子涵", "欧阳子涵"]
        );
        assert_eq!(
            search(&t, sys.clone(), "子涵").await,
            vec!["子涵", "欧阳子涵"]
        );
        assert_eq!(search(&t, sys.clone(), "阳子").await, vec!["欧阳子涵"]);
        assert_eq!(search(&t, sys.clone(), "阳子涵").await, vec!["欧阳子涵"]);
        assert_eq!(search(&t, sys.clone(), "秀").await, vec!["李秀英", "王秀"]);
        assert_eq!(search(&t, sys.clone(), "秀英").await, vec!["李秀英"]);
        assert_eq!(search(&t, sys.clone(), "建").await, vec!["陈建华"]);
        assert!(search(&t, sys.clone(), "英秀").await.is_empty());
        // The same through the narrow plan (a grid worker) and with a grid filter.
        assert_eq!(
            search(&t, w.grid_worker_a1(), "涵").await,
            vec!["子涵", "欧阳子涵"]
        );
        assert_eq!(search(&t, w.worker_a(), "秀英").await, vec!["李秀英"]);
    }
);

both_stores!(
    name_grams_follow_rename_and_erase,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let ids = add_named(&t, &w, &["赵铁柱", "钱多多"]).await;
        let (zhao, qian) = (ids[0], ids[1]);
        assert_eq!(search(&t, Caller::system(), "铁").await, vec!["赵铁柱"]);
        t.store()
            .write(WriteCtx::system("rename"), move |tx| {
                people::update_person(
                    tx,
                    &Caller::system(),
                    zhao,
                    &PersonPatch {
                        name: Some("赵钢蛋".into()),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        assert!(
            search(&t, Caller::system(), "铁").await.is_empty(),
            "old name no longer found"
        );
        assert_eq!(search(&t, Caller::system(), "钢蛋").await, vec!["赵钢蛋"]);
        assert_eq!(search(&t, Caller::system(), "赵").await, vec!["赵钢蛋"]);
        t.store()
            .write(WriteCtx::system("erase"), move |tx| {
                people::erase_person(tx, &Caller::system(), qian)
            })
            .await
            .unwrap();
        assert!(search(&t, Caller::system(), "多").await.is_empty());
        let left = t
            .store()
            .read(move |c, _| {
                c.query_i64(
                    "SELECT count(*) FROM person_name_grams WHERE person_id = $1",
                    &params![qian],
                )
            })
            .await
            .unwrap();
        assert_eq!(left, 0, "an erased person leaves no grams");
    }
);

both_stores!(
    search_stays_within_scope,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        // 张三丰 lives in community A, grid A1; 王五 in community B.
        assert_eq!(search(&t, w.worker_a(), "三丰").await, vec!["张三丰"]);
        assert!(search(&t, w.district_officer(), "三")
            .await
            .contains(&"张三丰".to_owned()));
        assert!(
            search(&t, w.worker_b(), "三丰").await.is_empty(),
            "another community's person"
        );
        assert!(search(&t, w.worker_a(), "王五").await.is_empty());
        assert!(
            search(&t, w.grid_worker_a2(), "三丰").await.is_empty(),
            "another grid's person"
        );
        assert!(
            search(&t, w.resident_a1n(), "三丰").await.is_empty(),
            "a neighbour's household"
        );
        assert_eq!(search(&t, w.resident_a1(), "三丰").await, vec!["张三丰"]);
    }
);

both_stores!(
    offset_past_the_end_gives_the_exact_total,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        let caller = w.grid_worker_a1();
        let page = t
            .store()
            .read(move |c, _| {
                people::list_people(
                    c,
                    &caller,
                    &PeopleFilter {
                        offset: Some(10_000),
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.total, 2, "the grid's two people, not a capped guess");
        assert!(!page.total_capped);
        assert!(page.next.is_none());
    }
);

both_stores!(
    households_grids_and_compounds_edited_over_the_api,
    |t: crate::support::TestApp| async move {
        use anxin_domain::{Role, Scope};
        use serde_json::{json, Value};
        let w = world::build(t.store()).await;
        let base = t.serve().await;
        let worker =
            world::staff(&t, "worker_a", Role::CommunityWorker, Scope::Node(w.comm_a)).await;
        let worker_b =
            world::staff(&t, "worker_b", Role::CommunityWorker, Scope::Node(w.comm_b)).await;
        let patch = |u: &world::User, path: String, body: Value| {
            crate::support::client()
                .patch(format!("{base}{path}"))
                .header("cookie", &u.cookie)
                .header("x-csrf-token", &u.csrf)
                .json(&body)
                .send()
        };
        // The household moves to grid A2 with a new label; its member follows.
        let r = patch(
            &worker,
            format!("/api/v1/households/{}", w.hh_a1),
            json!({ "label": "3-2-201", "grid_id": w.grid_a2 }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let h: Value = r.json().await.unwrap();
        assert_eq!(h["label"], "3-2-201");
        assert_eq!(h["grid_id"], json!(w.grid_a2));
        let p = w.person_a1;
        let grid: Option<uuid::Uuid> = t
            .store()
            .read(move |c, _| {
                c.query_one("SELECT grid_id FROM people WHERE id = $1", &params![p])?
                    .unwrap()
                    .get("grid_id")
            })
            .await
            .unwrap();
        assert_eq!(grid, Some(w.grid_a2), "the member's grid follows");
        // Only the label: the grid stays; null takes it out of any grid.
        let h: Value = patch(
            &worker,
            format!("/api/v1/households/{}", w.hh_a1),
            json!({ "label": "3-2-202" }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(h["grid_id"], json!(w.grid_a2));
        let h: Value = patch(
            &worker,
            format!("/api/v1/households/{}", w.hh_a1),
            json!({ "grid_id": null }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(h["grid_id"], Value::Null);
        assert_eq!(h["label"], "3-2-202");
        // A grid of another community is refused, naming the field.
        let r = patch(
            &worker,
            format!("/api/v1/households/{}", w.hh_a1),
            json!({ "grid_id": w.grid_b1 }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["details"]["field"], "grid_id", "{e}");
        // An empty label is refused.
        let r = patch(
            &worker,
            format!("/api/v1/households/{}", w.hh_a1),
            json!({ "label": " " }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 422);

        // Grid rename; the sibling community's worker cannot see it.
        let r = patch(
            &worker,
            format!("/api/v1/grids/{}", w.grid_a1),
            json!({ "name": "东一网格" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["name"], "东一网格");
        let r = patch(
            &worker_b,
            format!("/api/v1/grids/{}", w.grid_a1),
            json!({ "name": "闯入" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 404);

        // Compounds may be renamed; an official division (the community) may not.
        let (comm_a, sys) = (w.comm_a, Caller::system());
        let compound = t
            .store()
            .write(WriteCtx::system("compound"), move |tx| {
                anxin_store::tree::create_compound(tx, &sys, comm_a, "锦华苑")
            })
            .await
            .unwrap();
        let r = patch(
            &worker,
            format!("/api/v1/compounds/{compound}"),
            json!({ "name": "锦华新苑" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let name: String = t
            .store()
            .read(move |c, _| {
                c.query_one("SELECT name FROM nodes WHERE id = $1", &params![compound])?
                    .unwrap()
                    .get("name")
            })
            .await
            .unwrap();
        assert_eq!(name, "锦华新苑");
        let r = patch(
            &worker,
            format!("/api/v1/compounds/{}", w.comm_a),
            json!({ "name": "改名社区" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
);

/// The ids the district officer lists through the store's reach cache, the same list without
/// the cache, and how many reach expansions the cache has made so far.
async fn district_lists(
    t: &crate::support::TestApp,
    w: &world::World,
) -> (Vec<uuid::Uuid>, Vec<uuid::Uuid>, u64) {
    let caller = w.district_officer();
    t.store()
        .read(move |c, env| {
            let f = PeopleFilter {
                limit: Some(200),
                ..Default::default()
            };
            let mut cached: Vec<_> = people::list_people_cached(c, env, &caller, &f)?
                .items
                .into_iter()
                .map(|p| p.id)
                .collect();
            let mut plain: Vec<_> = people::list_people(c, &caller, &f)?
                .items
                .into_iter()
                .map(|p| p.id)
                .collect();
            cached.sort();
            plain.sort();
            Ok((cached, plain, env.reach_cache.expansions()))
        })
        .await
        .unwrap()
}

both_stores!(
    reach_cache_follows_tree_edits,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        // A second district (青羊区) with a street, a community and one person: outside the
        // district officer's reach (锦江区).
        let (district2, street2, person_c, (comm_d, grid_d, hh_d)) = t
            .store()
            .write(WriteCtx::system("t"), move |tx| {
                let sys = Caller::system();
                let node =
                    |tx: &mut anxin_store::Tx, parent: uuid::Uuid, level: &str, name: &str| {
                        let id = tx.new_id();
                        let now = tx.now();
                        tx.insert(
                            "nodes",
                            &[
                                ("id", id.into()),
                                ("parent_id", parent.into()),
                                ("level", level.into()),
                                ("name", name.into()),
                                ("created_at", now.into()),
                                ("updated_at", now.into()),
                            ],
                        )
                        .map(|_| id)
                    };
                let district2 = node(tx, w.city, "district", "青羊区")?;
                let street2 = node(tx, district2, "street", "少城街道")?;
                let comm_c = node(tx, street2, "community", "宽巷子社区")?;
                let grid = anxin_store::tree::create_grid(tx, &sys, comm_c, "一网格")?.id;
                let hh =
                    people::create_household(tx, &sys, comm_c, Some(grid), None, "3-1-101")?.id;
                let p =
                    NewPerson::parse(&world::person_input("赵六", None, None, comm_c, grid, hh))?;
                let person_c = people::create_person(tx, &sys, &p)?.id;
                // A populated-later community of 青羊区 (empty for now).
                let comm_d = node(tx, district2, "community", "草市街社区")?;
                let grid_d = anxin_store::tree::create_grid(tx, &sys, comm_d, "一网格")?.id;
                let hh_d =
                    people::create_household(tx, &sys, comm_d, Some(grid_d), None, "4-1-101")?.id;
                Ok((district2, street2, person_c, (comm_d, grid_d, hh_d)))
            })
            .await
            .unwrap();
        let mut inside = vec![w.person_a1, w.person_a1n, w.person_b1];
        inside.sort();
        let (cached, plain, first) = district_lists(&t, &w).await;
        assert_eq!(cached, inside);
        assert_eq!(plain, inside);
        assert!(first >= 1, "the first list expands the reach");

        // Listing again, and after a write that is not a tree edit, uses the cached reach.
        let added = add_named(&t, &w, &["孙七"]).await;
        inside.extend(added);
        inside.sort();
        let (cached, plain, n) = district_lists(&t, &w).await;
        assert_eq!(cached, inside);
        assert_eq!(plain, inside);
        assert_eq!(n, first, "no tree edit: the cached reach is used");

        // Moving 青羊区's street under 锦江区 brings its person into reach at once.
        t.store()
            .write(WriteCtx::system("t"), move |tx| {
                tx.update("nodes", street2, &[("parent_id", w.district.into())])
                    .map(|_| ())
            })
            .await
            .unwrap();
        inside.push(person_c);
        inside.sort();
        let (cached, plain, n) = district_lists(&t, &w).await;
        assert_eq!(cached, inside, "a moved subtree joins the cached reach");
        assert_eq!(plain, inside);
        assert!(n > first, "the tree edit dropped the cached reach");

        // Every person is now within 锦江区 (SQLite then skips the per-row reach test); a person
        // added outside it, with no tree edit, must still not be listed.
        let outsider = t
            .store()
            .write(WriteCtx::system("t"), move |tx| {
                let p = NewPerson::parse(&world::person_input(
                    "钱八", None, None, comm_d, grid_d, hh_d,
                ))?;
                people::create_person(tx, &Caller::system(), &p).map(|v| v.id)
            })
            .await
            .unwrap();
        let (cached, plain, _) = district_lists(&t, &w).await;
        assert!(
            !cached.contains(&outsider),
            "a person outside reach is listed"
        );
        assert_eq!(cached, inside);
        assert_eq!(plain, inside);

        // Moving 崇德里社区 out to 青羊区 takes its person out of reach.
        let comm_b = w.comm_b;
        t.store()
            .write(WriteCtx::system("t"), move |tx| {
                tx.update("nodes", comm_b, &[("parent_id", district2.into())])
                    .map(|_| ())
            })
            .await
            .unwrap();
        inside.retain(|id| *id != w.person_b1);
        let (cached, plain, _) = district_lists(&t, &w).await;
        assert_eq!(
            cached, inside,
            "a subtree moved away leaves the cached reach"
        );
        assert_eq!(plain, inside);
    }
);

both_stores!(
    cached_list_matches_the_plain_list,
    |t: crate::support::TestApp| async move {
        let w = world::build(t.store()).await;
        add_named(&t, &w, &["张三", "李张", "欧阳张伟", "王小明", "张伟"]).await;
        let filters = [
            PeopleFilter::default(),
            PeopleFilter {
                q: Some("张".into()),
                ..Default::default()
            },
            PeopleFilter {
                q: Some("张伟".into()),
                limit: Some(1),
                offset: Some(1),
                ..Default::default()
            },
            PeopleFilter {
                q: Some("阳张伟".into()),
                ..Default::default()
            },
            PeopleFilter {
                population_type: Some("registered".into()),
                limit: Some(2),
                offset: Some(3),
                ..Default::default()
            },
            PeopleFilter {
                grid: Some(w.grid_a1),
                limit: Some(2),
                offset: Some(1),
                ..Default::default()
            },
            PeopleFilter {
                node: Some(w.comm_b),
                ..Default::default()
            },
            PeopleFilter {
                limit: Some(3),
                offset: Some(50),
                ..Default::default()
            },
        ];
        for (who, caller) in [
            ("system", Caller::system()),
            ("district", w.district_officer()),
            ("worker_a", w.worker_a()),
            ("worker_b", w.worker_b()),
            ("grid_a1", w.grid_worker_a1()),
            ("resident_a1", w.resident_a1()),
        ] {
            for f in &filters {
                let (c, f2) = (caller.clone(), f.clone());
                let (cached, plain) = t
                    .store()
                    .read(move |conn, env| {
                        Ok((
                            people::list_people_cached(conn, env, &c, &f2)?,
                            people::list_people(conn, &c, &f2)?,
                        ))
                    })
                    .await
                    .unwrap();
                let ids = |p: &people::Page<people::PersonView>| {
                    p.items.iter().map(|v| v.id).collect::<Vec<_>>()
                };
                assert_eq!(ids(&cached), ids(&plain), "{who} {f:?}");
                assert_eq!(
                    (cached.total, cached.total_capped, cached.next.clone()),
                    (plain.total, plain.total_capped, plain.next.clone()),
                    "{who} {f:?}"
                );
            }
        }
        // Spot checks: the district officer sees everyone (all in 锦江区), a community worker
        // only their community, and the offset page is the one after the first.
        let d = w.district_officer();
        let (all, second) = t
            .store()
            .read(move |conn, env| {
                let all = people::list_people_cached(conn, env, &d, &PeopleFilter::default())?;
                let second = people::list_people_cached(
                    conn,
                    env,
                    &d,
                    &PeopleFilter {
                        limit: Some(2),
                        offset: Some(2),
                        ..Default::default()
                    },
                )?;
                Ok((all, second))
            })
            .await
            .unwrap();
        assert_eq!(all.items.len(), 8);
        assert_eq!(all.total, 8);
        assert_eq!(
            second.items.iter().map(|p| p.id).collect::<Vec<_>>(),
            all.items[2..4].iter().map(|p| p.id).collect::<Vec<_>>()
        );
        assert_eq!((second.total, second.total_capped), (8, false));
    }
);
