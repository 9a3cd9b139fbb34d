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
