//! Places on both stores: coordinates arrive in Chinese map systems and are kept in WGS84, a
//! community worker sees only their own community's buildings, lists filter by subtree, name and
//! page, facility errors name their field, and a duty holder's phone is sealed and masked.
#![allow(clippy::unwrap_used)]

use anxin_domain::geo::{self, Crs, LonLat, INVERSE_TOLERANCE_DEG};
use anxin_domain::{Role, ScopeKind};
use anxin_store::places::{
    self, BuildingFilter, BuildingInput, BuildingPatch, BuildingQuery, DutyFilter, DutyInput,
    DutyPatch, DutyQuery, DwellingInput, FacilityFilter, FacilityInput, FacilityPatch,
    FacilityQuery, LocationInput, NewBuilding, NewDuty, NewDwelling, NewFacility, NewUnit,
    UnitInput,
};
use anxin_store::scope::{ActiveGrant, Caller};
use anxin_store::{Store, StoreError, Tx, Value, WriteCtx};
use uuid::Uuid;

/// A change to an otherwise valid facility input.
type Edit = dyn Fn(&mut FacilityInput);

#[derive(Debug, Clone, Copy)]
struct Tree {
    street: Uuid,
    comm_a: Uuid,
    comm_b: Uuid,
    compound_a: Uuid,
    grid_a: Uuid,
    grid_b: Uuid,
    /// A community under another street.
    comm_far: Uuid,
}

fn node(tx: &mut Tx, parent: Option<Uuid>, level: &str, name: &str) -> anxin_store::Result<Uuid> {
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
    )?;
    Ok(id)
}

/// 成都市 → 锦江区 → 锦官驿街道 → 水井坊社区 (A, with a compound) and 崇德里社区 (B); and
/// 春熙路街道 → 东门社区 elsewhere in the district.
async fn tree(store: &Store) -> Tree {
    store
        .write(WriteCtx::system("places-tree"), |tx| {
            let sys = Caller::system();
            let city = node(tx, None, "city", "成都市")?;
            let district = node(tx, Some(city), "district", "锦江区")?;
            let street = node(tx, Some(district), "street", "锦官驿街道")?;
            let comm_a = node(tx, Some(street), "community", "水井坊社区")?;
            let comm_b = node(tx, Some(street), "community", "崇德里社区")?;
            let compound_a = node(tx, Some(comm_a), "compound", "水井坊小区")?;
            let other_street = node(tx, Some(district), "street", "春熙路街道")?;
            let comm_far = node(tx, Some(other_street), "community", "东门社区")?;
            let grid_a = anxin_store::tree::create_grid(tx, &sys, comm_a, "一网格")?.id;
            let grid_b = anxin_store::tree::create_grid(tx, &sys, comm_b, "一网格")?.id;
            Ok(Tree {
                street,
                comm_a,
                comm_b,
                compound_a,
                grid_a,
                grid_b,
                comm_far,
            })
        })
        .await
        .unwrap()
}

fn caller(role: Role, kind: ScopeKind, scope: Uuid) -> Caller {
    Caller::user(
        Uuid::now_v7(),
        vec![ActiveGrant {
            grant_id: None,
            role,
            scope_kind: kind,
            scope_id: scope,
        }],
    )
}

fn worker(community: Uuid) -> Caller {
    caller(Role::CommunityWorker, ScopeKind::Node, community)
}

fn invalid<T: std::fmt::Debug>(r: anxin_store::Result<T>) -> (&'static str, String) {
    match r {
        Err(StoreError::Invalid { code, field }) => (code, field),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn building_input(node: Uuid, name: &str) -> BuildingInput {
    BuildingInput {
        node_id: Some(node),
        name: Some(name.into()),
        ..BuildingInput::default()
    }
}

async fn add_building(
    store: &Store,
    who: &Caller,
    input: BuildingInput,
) -> anxin_store::Result<places::Building> {
    let who = who.clone();
    let nb = NewBuilding::parse(input)?;
    store
        .write(WriteCtx::system("t"), move |tx| {
            places::create_building(tx, &who, &nb)
        })
        .await
}

both_stores!(
    gcj02_location_is_stored_in_wgs84,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        // 天府广场 in WGS84, and the same point as AMap shows it.
        let wgs = LonLat::new(104.0657, 30.6595).unwrap();
        let gcj = geo::from_wgs84(Crs::Gcj02, wgs);
        assert!(
            (gcj.lon() - wgs.lon()).abs() > 1e-3,
            "GCJ-02 differs visibly"
        );
        let mut input = building_input(tr.compound_a, "水井坊小区1栋");
        input.grid_id = Some(tr.grid_a);
        input.floors = Some(18);
        input.location = Some(LocationInput {
            lon: Some(gcj.lon()),
            lat: Some(gcj.lat()),
            crs: Some("gcj02".into()),
        });
        let b = add_building(&store, &worker(tr.comm_a), input)
            .await
            .unwrap();
        assert_eq!(
            b.community_id, tr.comm_a,
            "community follows from the compound"
        );
        let loc = b.location.unwrap();
        assert_eq!(loc.source_crs, Crs::Gcj02);
        assert!(
            (loc.lon - wgs.lon()).abs() <= INVERSE_TOLERANCE_DEG,
            "{loc:?}"
        );
        assert!(
            (loc.lat - wgs.lat()).abs() <= INVERSE_TOLERANCE_DEG,
            "{loc:?}"
        );

        // What the table holds, not just what the call returned.
        let id = b.id;
        let (lon, lat, crs) = store
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT lon, lat, source_crs FROM buildings WHERE id = $1",
                        &[Value::from(id)],
                    )?
                    .unwrap();
                Ok((
                    r.get::<f64>("lon")?,
                    r.get::<f64>("lat")?,
                    r.get::<String>("source_crs")?,
                ))
            })
            .await
            .unwrap();
        assert!(
            (lon - wgs.lon()).abs() <= INVERSE_TOLERANCE_DEG
                && (lat - wgs.lat()).abs() <= INVERSE_TOLERANCE_DEG
        );
        assert_eq!(crs, "gcj02");

        // A patch that leaves the location alone keeps it and its source system.
        let who = worker(tr.comm_a);
        let patch: BuildingPatch =
            serde_json::from_str(r#"{"name": "水井坊小区一栋", "address": "水井街1号"}"#).unwrap();
        let b2 = store
            .write(WriteCtx::system("t"), move |tx| {
                places::update_building(tx, &who, id, patch)
            })
            .await
            .unwrap();
        assert_eq!(b2.location, b.location);
        assert_eq!(b2.name, "水井坊小区一栋");

        // Placement rules: a street is no place for a building; a grid must be the community's.
        let e = add_building(&store, &Caller::system(), building_input(tr.street, "x")).await;
        assert_eq!(invalid(e), ("building.node_level", "node_id".into()));
        let mut wrong_grid = building_input(tr.comm_a, "x");
        wrong_grid.grid_id = Some(tr.grid_b);
        assert_eq!(
            invalid(add_building(&store, &Caller::system(), wrong_grid).await),
            ("grid.not_in_community", "grid_id".into())
        );
        assert_eq!(
            invalid(NewBuilding::parse(building_input(tr.comm_a, "  "))),
            ("value.required", "name".into())
        );
        let mut no_crs = building_input(tr.comm_a, "x");
        no_crs.location = Some(LocationInput {
            lon: Some(104.0),
            lat: Some(30.0),
            crs: None,
        });
        assert_eq!(
            invalid(NewBuilding::parse(no_crs)),
            ("value.required", "location.crs".into())
        );

        // When a division merge retires the compound, the building there stays editable in
        // place, but nothing new is put there.
        let compound = tr.compound_a;
        store
            .write(WriteCtx::system("t"), move |tx| {
                tx.update("nodes", compound, &[("status", "retired".into())])
                    .map(|_| ())
            })
            .await
            .unwrap();
        let who = worker(tr.comm_a);
        let renamed = store
            .write(WriteCtx::system("t"), move |tx| {
                let patch = BuildingPatch {
                    floors: Some(Some(19)),
                    ..BuildingPatch::default()
                };
                places::update_building(tx, &who, id, patch)
            })
            .await
            .unwrap();
        assert_eq!(renamed.floors, Some(19));
        assert_eq!(
            invalid(
                add_building(
                    &store,
                    &worker(tr.comm_a),
                    building_input(tr.compound_a, "新楼")
                )
                .await
            ),
            ("record.reference_invalid", "node_id".into())
        );
    }
);

both_stores!(
    other_community_is_not_found,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        let a = add_building(&store, &worker(tr.comm_a), building_input(tr.comm_a, "A栋"))
            .await
            .unwrap();
        let b = add_building(&store, &worker(tr.comm_b), building_input(tr.comm_b, "B栋"))
            .await
            .unwrap();
        let wa = worker(tr.comm_a);

        // Reading, changing or deleting B's building answers exactly like a missing id.
        for id in [b.id, Uuid::now_v7()] {
            let w = wa.clone();
            let r = store
                .read(move |c, _| places::get_building(c, &w, id))
                .await;
            assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
            let w = wa.clone();
            let patch = BuildingPatch {
                name: Some(Some("taken over".into())),
                ..BuildingPatch::default()
            };
            let r = store
                .write(WriteCtx::system("t"), move |tx| {
                    places::update_building(tx, &w, id, patch)
                })
                .await;
            assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
            let w = wa.clone();
            let r = store
                .write(WriteCtx::system("t"), move |tx| {
                    places::delete_building(tx, &w, id)
                })
                .await;
            assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
        }
        // Nor can A's worker put a building in B, or move theirs there.
        assert_eq!(
            invalid(add_building(&store, &wa, building_input(tr.comm_b, "x")).await),
            ("record.reference_invalid", "node_id".into())
        );
        let (w, aid, cb) = (wa.clone(), a.id, tr.comm_b);
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                let patch = BuildingPatch {
                    node_id: Some(Some(cb)),
                    ..BuildingPatch::default()
                };
                places::update_building(tx, &w, aid, patch)
            })
            .await;
        assert_eq!(invalid(r), ("record.reference_invalid", "node_id".into()));

        // B's building is untouched; A's list holds only A's.
        let bid = b.id;
        let still = store
            .read(move |c, _| places::get_building(c, &Caller::system(), bid))
            .await
            .unwrap();
        assert_eq!(still, b);
        let w = wa.clone();
        let page = store
            .read(move |c, _| places::list_buildings(c, &w, &BuildingFilter::default()))
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].id, a.id);

        // A grid worker of B sees B's grid only; an officer without write rights cannot write.
        let mut in_grid = building_input(tr.comm_b, "B网格栋");
        in_grid.grid_id = Some(tr.grid_b);
        let gw = caller(Role::GridWorker, ScopeKind::Grid, tr.grid_b);
        let g = add_building(&store, &gw, in_grid).await.unwrap();
        let gw2 = gw.clone();
        let page = store
            .read(move |c, _| places::list_buildings(c, &gw2, &BuildingFilter::default()))
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![g.id]
        );
        let officer = caller(Role::StreetOfficer, ScopeKind::Node, tr.street);
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                places::delete_building(tx, &officer, aid)
            })
            .await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

        // Delete works for the owner, and a building with units is not deleted.
        let w = wa.clone();
        let unit = NewUnit::parse(UnitInput {
            name: Some("1单元".into()),
        })
        .unwrap();
        store
            .write(WriteCtx::system("t"), move |tx| {
                places::create_unit(tx, &w, aid, &unit)
            })
            .await
            .unwrap();
        let w = wa.clone();
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                places::delete_building(tx, &w, aid)
            })
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    code: "building.not_empty",
                    ..
                })
            ),
            "{r:?}"
        );
    }
);

both_stores!(
    list_by_street_name_and_page,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        let sys = Caller::system();
        for i in 1..=5 {
            let node = if i % 2 == 0 { tr.compound_a } else { tr.comm_a };
            add_building(
                &store,
                &sys,
                building_input(node, &format!("幸福里{i}号楼")),
            )
            .await
            .unwrap();
        }
        for i in 1..=2 {
            let mut input = building_input(tr.comm_b, &format!("和平苑{i}号楼"));
            input.grid_id = Some(tr.grid_b);
            add_building(&store, &sys, input).await.unwrap();
        }
        add_building(&store, &sys, building_input(tr.comm_far, "幸福里东门楼"))
            .await
            .unwrap();
        add_building(&store, &sys, building_input(tr.comm_a, "100%纯净楼"))
            .await
            .unwrap();

        let officer = caller(Role::StreetOfficer, ScopeKind::Node, tr.street);
        let list = |q: BuildingQuery| {
            let (s, who) = (store.clone(), officer.clone());
            async move {
                let f = BuildingFilter::parse(q).unwrap();
                s.read(move |c, _| places::list_buildings(c, &who, &f))
                    .await
                    .unwrap()
            }
        };
        let q = |under, q: &str, limit, offset| BuildingQuery {
            under: Some(under),
            q: Some(q.into()),
            limit: Some(limit),
            offset: Some(offset),
            ..BuildingQuery::default()
        };

        let p = list(q(tr.street, "幸福", 2, 0)).await;
        assert_eq!(
            (p.total, p.items.len()),
            (5, 2),
            "the other street's 幸福里 is not under this one"
        );
        let names: Vec<&str> = p.items.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["幸福里1号楼", "幸福里2号楼"]);
        let p = list(q(tr.street, "幸福", 2, 4)).await;
        assert_eq!((p.total, p.items.len()), (5, 1));
        assert_eq!(p.items[0].name, "幸福里5号楼");
        let p = list(q(tr.street, "号楼", 50, 0)).await;
        assert_eq!(p.total, 7);
        let p = list(q(tr.comm_b, "号楼", 50, 0)).await;
        assert_eq!(p.total, 2);
        let p = list(q(tr.compound_a, "", 50, 0)).await;
        assert_eq!(p.total, 2, "compound subtree: 2 and 4");
        let p = list(BuildingQuery {
            grid_id: Some(tr.grid_b),
            ..BuildingQuery::default()
        })
        .await;
        assert_eq!(p.total, 2);
        // Wildcards in the term are literal.
        assert_eq!(list(q(tr.street, "%", 50, 0)).await.total, 1);
        assert_eq!(list(q(tr.street, "_", 50, 0)).await.total, 0);
        // The officer's reach stops at the street even when asked for the whole district.
        let p = list(BuildingQuery::default()).await;
        assert_eq!(p.total, 8);
        assert_eq!(
            invalid(BuildingFilter::parse(BuildingQuery {
                limit: Some(10_000),
                ..BuildingQuery::default()
            })),
            ("value.invalid", "limit".into())
        );
    }
);

both_stores!(
    units_and_dwellings,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        let w = worker(tr.comm_a);
        let b1 = add_building(&store, &w, building_input(tr.comm_a, "1栋"))
            .await
            .unwrap();
        let b2 = add_building(&store, &w, building_input(tr.comm_a, "2栋"))
            .await
            .unwrap();
        let (who, id1, id2) = (w.clone(), b1.id, b2.id);
        let (u1, d) = store
            .write(WriteCtx::system("t"), move |tx| {
                let u1 = places::create_unit(
                    tx,
                    &who,
                    id1,
                    &NewUnit::parse(UnitInput {
                        name: Some("1单元".into()),
                    })?,
                )?;
                let u2 = places::create_unit(
                    tx,
                    &who,
                    id2,
                    &NewUnit::parse(UnitInput {
                        name: Some("1单元".into()),
                    })?,
                )?;
                let d = places::create_dwelling(
                    tx,
                    &who,
                    id1,
                    &NewDwelling::parse(DwellingInput {
                        unit_id: Some(u1.id),
                        number: Some("301".into()),
                        floor: Some(3),
                        area_m2: Some(89.5),
                    })?,
                )?;
                // A unit of another building is refused by name.
                let e = places::create_dwelling(
                    tx,
                    &who,
                    id1,
                    &NewDwelling::parse(DwellingInput {
                        unit_id: Some(u2.id),
                        number: Some("302".into()),
                        ..DwellingInput::default()
                    })?,
                );
                assert_eq!(invalid(e), ("unit.not_in_building", "unit_id".into()));
                Ok((u1, d))
            })
            .await
            .unwrap();
        assert_eq!(
            (d.floor, d.area_m2, d.unit_id),
            (Some(3), Some(89.5), Some(u1.id))
        );
        assert_eq!(
            invalid(NewDwelling::parse(DwellingInput {
                number: Some("1".into()),
                area_m2: Some(-1.0),
                ..DwellingInput::default()
            })),
            ("value.invalid", "area_m2".into())
        );
        let wb = worker(tr.comm_b);
        let (did, uid) = (d.id, u1.id);
        let r = store
            .read(move |c, _| places::get_dwelling(c, &wb, did))
            .await;
        assert!(matches!(r, Err(StoreError::NotFound)));
        let who = w.clone();
        let page = store
            .read(move |c, _| {
                places::list_dwellings(c, &who, id1, Some(uid), places::Paging::default())
            })
            .await
            .unwrap();
        assert_eq!(page.total, 1);
        let who = w.clone();
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                places::delete_unit(tx, &who, uid)
            })
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    code: "unit.not_empty",
                    ..
                })
            ),
            "{r:?}"
        );
    }
);

both_stores!(
    facility_errors_name_the_field,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        let shelter = |f: &dyn Fn(&mut FacilityInput)| {
            let mut i = FacilityInput {
                node_id: Some(tr.comm_a),
                kind: Some("shelter".into()),
                name: Some("水井坊社区广场避难场所".into()),
                capacity: Some(800),
                area_m2: Some(2400.0),
                location: Some(LocationInput {
                    lon: Some(104.0905),
                    lat: Some(30.6594),
                    crs: Some("bd09".into()),
                }),
                attrs: Some(serde_json::json!({ "level": "III类" })),
                ..FacilityInput::default()
            };
            f(&mut i);
            NewFacility::parse(i)
        };
        let cases: Vec<(&Edit, &str, &str)> = vec![
            (
                &|i| i.capacity = None,
                "facility.shelter_capacity_required",
                "capacity",
            ),
            (&|i| i.capacity = Some(-5), "value.invalid", "capacity"),
            (&|i| i.area_m2 = Some(-1.0), "value.invalid", "area_m2"),
            (&|i| i.kind = Some("castle".into()), "value.invalid", "kind"),
            (&|i| i.kind = None, "value.required", "kind"),
            (
                &|i| i.status = Some("burning".into()),
                "value.invalid",
                "status",
            ),
            (&|i| i.name = None, "value.required", "name"),
            (
                &|i| i.attrs = Some(serde_json::json!("flat")),
                "value.invalid",
                "attrs",
            ),
            (
                &|i| {
                    i.location = Some(LocationInput {
                        lon: Some(200.0),
                        lat: Some(30.0),
                        crs: Some("wgs84".into()),
                    })
                },
                "geo.out_of_range",
                "location.lon",
            ),
            (
                &|i| {
                    i.location = Some(LocationInput {
                        lon: Some(104.0),
                        lat: Some(30.0),
                        crs: Some("mars".into()),
                    })
                },
                "value.invalid",
                "location.crs",
            ),
        ];
        for (edit, code, field) in cases {
            assert_eq!(invalid(shelter(edit)), (code, field.to_owned()));
        }

        let nf = shelter(&|_| {}).unwrap();
        let w = worker(tr.comm_a);
        let who = w.clone();
        let f = store
            .write(WriteCtx::system("t"), move |tx| {
                places::create_facility(tx, &who, &nf)
            })
            .await
            .unwrap();
        assert_eq!(f.location.unwrap().source_crs, Crs::Bd09);
        assert_eq!(f.attrs["level"], "III类");
        let bd = LonLat::new(104.0905, 30.6594).unwrap();
        let back = geo::from_wgs84(
            Crs::Bd09,
            LonLat::new(f.location.unwrap().lon, f.location.unwrap().lat).unwrap(),
        );
        assert!((back.lon() - bd.lon()).abs() < 1e-6 && (back.lat() - bd.lat()).abs() < 1e-6);

        // A patch is held to the same rules as a new record, across fields too.
        let (who, id) = (w.clone(), f.id);
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                places::update_facility(
                    tx,
                    &who,
                    id,
                    serde_json::from_str::<FacilityPatch>(r#"{"capacity": null}"#).unwrap(),
                )
            })
            .await;
        assert_eq!(
            invalid(r),
            ("facility.shelter_capacity_required", "capacity".into())
        );
        let who = w.clone();
        let r = store
            .write(WriteCtx::system("t"), move |tx| {
                let patch = serde_json::from_str::<FacilityPatch>(r#"{"status": null}"#).unwrap();
                places::update_facility(tx, &who, id, patch)
            })
            .await;
        assert_eq!(invalid(r), ("value.required", "status".into()));
        let who = w.clone();
        let f2 = store
            .write(WriteCtx::system("t"), move |tx| {
                places::update_facility(
                    tx,
                    &who,
                    id,
                    serde_json::from_str::<FacilityPatch>(
                        r#"{"capacity": 1000, "status": "open"}"#,
                    )
                    .unwrap(),
                )
            })
            .await
            .unwrap();
        assert_eq!((f2.capacity, f2.status.as_str()), (Some(1000), "open"));
        assert_eq!(f2.location, f.location);

        // Lists and the map layer: by kind, in reach only.
        let hydrant = NewFacility::parse(FacilityInput {
            node_id: Some(tr.comm_b),
            kind: Some("hydrant".into()),
            name: Some("崇德里消火栓1".into()),
            ..FacilityInput::default()
        })
        .unwrap();
        store
            .write(WriteCtx::system("t"), move |tx| {
                places::create_facility(tx, &Caller::system(), &hydrant)
            })
            .await
            .unwrap();
        let officer = caller(Role::StreetOfficer, ScopeKind::Node, tr.street);
        let who = officer.clone();
        let shelters = store
            .read(move |c, _| {
                let f = FacilityFilter::parse(FacilityQuery {
                    kind: Some("shelter".into()),
                    ..FacilityQuery::default()
                })?;
                places::list_facilities(c, &who, &f)
            })
            .await
            .unwrap();
        assert_eq!(shelters.total, 1);
        let who = officer.clone();
        let (layer, truncated) = store
            .read(move |c, _| places::facility_layer(c, &who, &FacilityFilter::default()))
            .await
            .unwrap();
        assert_eq!(layer.len(), 1, "the hydrant has no location");
        assert!(!truncated);
        let wb = worker(tr.comm_b);
        let all_b = store
            .read(move |c, _| places::list_facilities(c, &wb, &FacilityFilter::default()))
            .await
            .unwrap();
        assert_eq!(all_b.items.len(), 1);
        assert_eq!(all_b.items[0].kind.as_str(), "hydrant");
    }
);

both_stores!(
    duty_phone_is_sealed_and_masked,
    |t: crate::support::TestApp| async move {
        let store = t.store().clone();
        let tr = tree(&store).await;
        assert_eq!(
            invalid(NewDuty::parse(DutyInput {
                node_id: Some(tr.comm_a),
                duty: Some("防汛值班".into()),
                responsible: Some("张三".into()),
                phone: Some("12345".into()),
                ..DutyInput::default()
            })),
            ("phone.format", "phone".into())
        );
        let nd = NewDuty::parse(DutyInput {
            node_id: Some(tr.comm_a),
            duty: Some("防汛值班".into()),
            responsible: Some("张三".into()),
            phone: Some("138 1234 5678".into()),
            ..DutyInput::default()
        })
        .unwrap();
        let w = worker(tr.comm_a);
        let who = w.clone();
        let d = store
            .write(WriteCtx::system("t"), move |tx| {
                places::create_duty(tx, &who, &nd)
            })
            .await
            .unwrap();
        assert_eq!(d.phone_mask.as_deref(), Some("138****5678"));
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("12345678"), "{json}");

        // At rest: ciphertext without the digits, and a change-log image sealed too.
        let id = d.id;
        let (ct, log_plain, log_sealed) = store
            .read(move |c, _| {
                let r = c
                    .query_one(
                        "SELECT phone_ct FROM duties WHERE id = $1",
                        &[Value::from(id)],
                    )?
                    .unwrap();
                let plain = c.query_i64(
                    "SELECT count(*) FROM change_log WHERE record_id = $1 AND after IS NOT NULL",
                    &[Value::from(id)],
                )?;
                let sealed = c.query_i64(
                    "SELECT count(*) FROM change_log WHERE record_id = $1 AND after_ct IS NOT NULL",
                    &[Value::from(id)],
                )?;
                Ok((r.get::<Vec<u8>>("phone_ct")?, plain, sealed))
            })
            .await
            .unwrap();
        let hay = String::from_utf8_lossy(&ct);
        assert!(!hay.contains("13812345678") && !hay.contains("12345678"));
        assert!(!ct.windows(4).any(|w| w == b"5678"));
        assert_eq!((log_plain, log_sealed), (0, 1));

        // Reads are masked; the plaintext needs Unmask on the node.
        let who = w.clone();
        let got = store
            .read(move |c, _| places::get_duty(c, &who, id))
            .await
            .unwrap();
        assert_eq!(got, d);
        let who = w.clone();
        let list = store
            .read(move |c, _| {
                places::list_duties(
                    c,
                    &who,
                    &DutyFilter::parse(DutyQuery {
                        q: Some("防汛".into()),
                        ..DutyQuery::default()
                    })?,
                )
            })
            .await
            .unwrap();
        assert_eq!(list.total, 1);
        assert_eq!(list.items[0].phone_mask.as_deref(), Some("138****5678"));
        let who = w.clone();
        let clear = store
            .read(move |c, env| places::unmask_duty(c, env, &who, id))
            .await
            .unwrap();
        assert_eq!(clear.phone.as_deref(), Some("+8613812345678"));
        let officer = caller(Role::StreetOfficer, ScopeKind::Node, tr.street);
        let r = store
            .read(move |c, env| places::unmask_duty(c, env, &officer, id))
            .await;
        assert!(matches!(r, Err(StoreError::Forbidden(_))), "{r:?}");
        let wb = worker(tr.comm_b);
        let r = store
            .read(move |c, env| places::unmask_duty(c, env, &wb, id))
            .await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

        // Changing the phone reseals it under the same key; clearing it clears the mask.
        let who = w.clone();
        let d2 = store
            .write(WriteCtx::system("t"), move |tx| {
                places::update_duty(
                    tx,
                    &who,
                    id,
                    DutyPatch {
                        phone: Some(Some("028-85551234".into())),
                        ..DutyPatch::default()
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(d2.phone_mask.as_deref(), Some("+86******1234"));
        let who = w.clone();
        let clear = store
            .read(move |c, env| places::unmask_duty(c, env, &who, id))
            .await
            .unwrap();
        assert_eq!(clear.phone.as_deref(), Some("+862885551234"));
        let who = w.clone();
        let d3 = store
            .write(WriteCtx::system("t"), move |tx| {
                places::update_duty(
                    tx,
                    &who,
                    id,
                    DutyPatch {
                        phone: Some(None),
                        ..DutyPatch::default()
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(d3.phone_mask, None);

        // Deleting the duty shreds its key: the sealed history can no longer be opened.
        let key_id: Uuid = store
            .read(move |c, _| {
                c.query_one(
                    "SELECT key_id FROM duties WHERE id = $1",
                    &[Value::from(id)],
                )?
                .unwrap()
                .get("key_id")
            })
            .await
            .unwrap();
        let who = w.clone();
        store
            .write(WriteCtx::system("t"), move |tx| {
                places::delete_duty(tx, &who, id)
            })
            .await
            .unwrap();
        let (keys_left, ct) = store
            .read(move |c, _| {
                let n = c.query_i64("SELECT count(*) FROM data_keys WHERE id = $1", &[Value::from(key_id)])?;
                let ct: Vec<u8> = c
                    .query_one(
                        "SELECT after_ct FROM change_log WHERE record_id = $1 AND after_ct IS NOT NULL LIMIT 1",
                        &[Value::from(id)],
                    )?
                    .unwrap()
                    .get("after_ct")?;
                Ok((n, ct))
            })
            .await
            .unwrap();
        assert_eq!(keys_left, 0);
        let opened = store
            .read(move |c, env| env.keys.open(c, "change_log.after", &ct))
            .await;
        assert!(matches!(opened, Err(StoreError::Crypto(_))), "{opened:?}");
    }
);

// --- over HTTP -------------------------------------------------------------------------------

struct Http {
    base: String,
    cookie: String,
    csrf: String,
}

/// A signed-in staff user with one grant (second factor given).
async fn staff_session(
    t: &crate::support::TestApp,
    name: &'static str,
    role: Role,
    scope: anxin_domain::Scope,
) -> (String, String) {
    use anxin_store::accounts;
    t.store()
        .write(WriteCtx::system("places-http"), move |tx| {
            let id = crate::world::create_staff(tx, name, role, scope)?;
            let s = accounts::create_session(tx, id, None, true, None)?;
            Ok((format!("anxin_session={}", s.token), s.csrf))
        })
        .await
        .unwrap()
}

/// Serve the places routes alone on a loopback port. (Once `places::routes()` is merged into
/// `anxin::http::table()`, `t.serve()` does the same.)
async fn serve_places(t: &crate::support::TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, _) = anxin::http::places::routes().into_parts();
    let router = router.with_state(t.app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}")
}

impl Http {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, Option<String>, serde_json::Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = crate::support::client()
            .request(m, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = r.text().await.unwrap();
        (
            status,
            ctype,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

both_stores!(places_over_http, |t: crate::support::TestApp| async move {
    use anxin_domain::Scope;
    use serde_json::json;
    let store = t.store().clone();
    let tr = tree(&store).await;
    let base = serve_places(&t).await;
    let (cookie, csrf) = staff_session(
        &t,
        "worker_a",
        Role::CommunityWorker,
        Scope::Node(tr.comm_a),
    )
    .await;
    let a = Http {
        base: base.clone(),
        cookie,
        csrf,
    };
    let (cookie, csrf) = staff_session(
        &t,
        "worker_b",
        Role::CommunityWorker,
        Scope::Node(tr.comm_b),
    )
    .await;
    let b = Http {
        base: base.clone(),
        cookie,
        csrf,
    };
    let (cookie, csrf) =
        staff_session(&t, "officer", Role::StreetOfficer, Scope::Node(tr.street)).await;
    let officer = Http {
        base: base.clone(),
        cookie,
        csrf,
    };

    // A cookie session's write without its CSRF token is refused by the guard.
    let no_csrf = Http {
        base: base.clone(),
        cookie: a.cookie.clone(),
        csrf: "wrong".into(),
    };
    let (s, _, body) = no_csrf
        .call(
            "POST",
            "/api/v1/buildings",
            Some(json!({ "node_id": tr.comm_a, "name": "x" })),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("auth.csrf"))
    );

    let wgs = LonLat::new(104.0905, 30.6594).unwrap();
    let gcj = geo::from_wgs84(Crs::Gcj02, wgs);
    let (s, _, bld) = a
        .call(
            "POST",
            "/api/v1/buildings",
            Some(json!({
                "node_id": tr.compound_a, "grid_id": tr.grid_a, "name": "水井坊小区3栋", "floors": 6,
                "location": { "lon": gcj.lon(), "lat": gcj.lat(), "crs": "gcj02" }
            })),
        )
        .await;
    assert_eq!(s, 201, "{bld}");
    assert_eq!(bld["community_id"], json!(tr.comm_a));
    assert_eq!(bld["location"]["source_crs"], "gcj02");
    assert!((bld["location"]["lon"].as_f64().unwrap() - wgs.lon()).abs() <= INVERSE_TOLERANCE_DEG);
    let bid = bld["id"].as_str().unwrap().to_owned();

    // Errors: one JSON shape, the field named.
    let (s, _, e) = a
        .call(
            "POST",
            "/api/v1/buildings",
            Some(json!({ "node_id": tr.comm_a, "name": "x", "adress": "typo" })),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("request.body_invalid")),
        "{e}"
    );
    let (s, _, e) = a
        .call(
            "POST",
            "/api/v1/facilities",
            Some(json!({ "node_id": tr.comm_a, "kind": "shelter", "name": "广场" })),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(e["error"]["code"], "facility.shelter_capacity_required");
    assert_eq!(e["error"]["details"]["field"], "capacity");
    let (s, _, e) = a.call("GET", "/api/v1/buildings?limit=0", None).await;
    assert_eq!(
        (s, e["error"]["details"]["field"].as_str()),
        (422, Some("limit"))
    );

    // Units and dwellings nest under their building; B's worker cannot tell it from a missing one.
    let (s, _, unit) = a
        .call(
            "POST",
            &format!("/api/v1/buildings/{bid}/units"),
            Some(json!({ "name": "1单元" })),
        )
        .await;
    assert_eq!(s, 201, "{unit}");
    let (s, _, dw) = a
        .call(
            "POST",
            &format!("/api/v1/buildings/{bid}/dwellings"),
            Some(json!({ "unit_id": unit["id"], "number": "101", "floor": 1, "area_m2": 76.5 })),
        )
        .await;
    assert_eq!(s, 201, "{dw}");
    let (s, _, page) = a
        .call("GET", &format!("/api/v1/buildings/{bid}/dwellings"), None)
        .await;
    assert_eq!((s, page["total"].as_i64()), (200, Some(1)));
    for path in [
        format!("/api/v1/buildings/{bid}"),
        format!("/api/v1/buildings/{}", Uuid::now_v7()),
    ] {
        let (s, _, e) = b.call("GET", &path, None).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (404, Some("record.not_found"))
        );
        let (s, _, _) = b
            .call("PATCH", &path, Some(json!({ "name": "占用" })))
            .await;
        assert_eq!(s, 404);
    }
    let (s, _, e) = b
        .call(
            "DELETE",
            &format!("/api/v1/dwellings/{}", dw["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("record.not_found"))
    );

    // The officer lists the street; the map layer is GeoJSON in WGS84.
    let (s, _, page) = officer
        .call(
            "GET",
            &format!("/api/v1/buildings?under={}&q=%E6%B0%B4%E4%BA%95", tr.street),
            None,
        )
        .await;
    assert_eq!((s, page["total"].as_i64()), (200, Some(1)), "{page}");
    let (s, _, fac) = a
        .call(
            "POST",
            "/api/v1/facilities",
            Some(json!({
                "node_id": tr.comm_a, "kind": "shelter", "name": "水井坊广场", "capacity": 500,
                "location": { "lon": gcj.lon(), "lat": gcj.lat(), "crs": "gcj02" },
                "attrs": { "toilets": 4 }
            })),
        )
        .await;
    assert_eq!(s, 201, "{fac}");
    let (s, ctype, layer) = officer
        .call("GET", "/api/v1/facilities.geojson?kind=shelter", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(ctype.as_deref(), Some("application/geo+json"));
    assert_eq!(layer["type"], "FeatureCollection");
    let f = &layer["features"][0];
    assert_eq!(f["id"], fac["id"]);
    assert_eq!(f["geometry"]["type"], "Point");
    let c = f["geometry"]["coordinates"].as_array().unwrap();
    assert!((c[0].as_f64().unwrap() - wgs.lon()).abs() <= INVERSE_TOLERANCE_DEG);
    assert!((c[1].as_f64().unwrap() - wgs.lat()).abs() <= INVERSE_TOLERANCE_DEG);
    assert_eq!(f["properties"]["kind_zh"], "应急避难场所");
    let (_, _, layer_b) = b.call("GET", "/api/v1/facilities.geojson", None).await;
    assert_eq!(layer_b["features"], json!([]));
    let (s, _, f2) = a
        .call(
            "PATCH",
            &format!("/api/v1/facilities/{}", fac["id"].as_str().unwrap()),
            Some(json!({ "status": "open" })),
        )
        .await;
    assert_eq!((s, f2["status"].as_str()), (200, Some("open")));

    // Duties: masked in every read; the plaintext is an audited unmask for those allowed it.
    let (s, _, duty) = a
        .call("POST", "/api/v1/duties", Some(json!({ "node_id": tr.comm_a, "duty": "防汛值班", "responsible": "李四", "phone": "13912345678" })))
        .await;
    assert_eq!(s, 201, "{duty}");
    assert_eq!(duty["phone_mask"], "139****5678");
    assert!(duty.get("phone").is_none());
    let did = duty["id"].as_str().unwrap().to_owned();
    let (s, _, got) = officer
        .call("GET", &format!("/api/v1/duties/{did}"), None)
        .await;
    assert_eq!((s, got["phone_mask"].as_str()), (200, Some("139****5678")));
    assert!(!got.to_string().contains("13912345678"));
    let (s, _, list) = officer.call("GET", "/api/v1/duties", None).await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(1)));
    assert!(!list.to_string().contains("13912345678"));
    let (s, _, e) = officer
        .call(
            "POST",
            &format!("/api/v1/duties/{did}/unmask"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("duty.unmask_not_allowed"))
    );
    let (s, _, e) = b
        .call(
            "POST",
            &format!("/api/v1/duties/{did}/unmask"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("record.not_found"))
    );
    let (s, _, clear) = a
        .call(
            "POST",
            &format!("/api/v1/duties/{did}/unmask"),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, clear["phone"].as_str()), (200, Some("+8613912345678")));
    let did_uuid = Uuid::parse_str(&did).unwrap();
    let audited = store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM audit_log WHERE action = 'unmask' AND target_kind = 'duty' AND target_id = $1",
                &[Value::from(did_uuid)],
            )
        })
        .await
        .unwrap();
    assert_eq!(
        audited, 1,
        "one audited unmask (the refused ones showed nothing)"
    );

    // Deleting: a building with units is a conflict; empty records go.
    let (s, _, e) = a
        .call("DELETE", &format!("/api/v1/buildings/{bid}"), None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("building.not_empty"))
    );
    for path in [
        format!("/api/v1/dwellings/{}", dw["id"].as_str().unwrap()),
        format!("/api/v1/units/{}", unit["id"].as_str().unwrap()),
        format!("/api/v1/buildings/{bid}"),
        format!("/api/v1/duties/{did}"),
    ] {
        let (s, _, e) = a.call("DELETE", &path, None).await;
        assert_eq!(s, 204, "{path}: {e}");
    }
    let (s, _, _) = a
        .call("GET", &format!("/api/v1/buildings/{bid}"), None)
        .await;
    assert_eq!(s, 404);
});
