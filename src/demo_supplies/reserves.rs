//! The demo's reserves (owner: reserves & dispatch): stock at the demo community's facilities
//! (some of it expiring within the warning period), the community's own mask norm, and a
//! neighbouring community under the same street with a depot holding surplus, so the gap report
//! shows gaps and the dispatch page proposes transfers.

use anxin_domain::supplies::MovementKind;
use anxin_store::params;
use anxin_store::places::{self as pl, FacilityInput, LocationInput, NewFacility};
use anxin_store::scope::Caller;
use anxin_store::supplies::reserves::{self, NewMovement, NormInput};
use anxin_store::WriteCtx;
use uuid::Uuid;

use crate::app::App;

/// The neighbouring community the demo adds when the street has none.
const NEIGHBOUR: &str = "锦安社区";

/// Returns how many records it wrote (0 when already present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let there = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM stock_lots l JOIN facilities f ON f.id = l.depot_id \
                 WHERE f.node_id = $1",
                &params![demo_community],
            )
        })
        .await?;
    if there > 0 {
        return Ok(0);
    }
    let today = app.clock.local_now().date_naive();
    let n = app
        .store
        .write(WriteCtx::system("demo-reserves"), move |tx| {
            let sys = Caller::system();
            let mut n = 0usize;
            let comm = tx
                .query_one(
                    "SELECT parent_id, lon, lat FROM nodes WHERE id = $1",
                    &params![demo_community],
                )?
                .ok_or(anxin_store::StoreError::NotFound)?;
            let street: Option<Uuid> = comm.get("parent_id")?;
            let lon: Option<f64> = comm.get("lon")?;
            let lat: Option<f64> = comm.get("lat")?;
            let facilities: Vec<Uuid> = tx
                .query(
                    "SELECT id FROM facilities WHERE node_id = $1 ORDER BY CASE kind \
                     WHEN 'supply_depot' THEN 0 WHEN 'shelter' THEN 1 ELSE 2 END, name, id LIMIT 2",
                    &params![demo_community],
                )?
                .iter()
                .map(|r| r.get("id"))
                .collect::<anxin_store::Result<_>>()?;
            let (lon, lat) = (lon.unwrap_or(104.08), lat.unwrap_or(30.66));
            let depot = |tx: &mut anxin_store::Tx,
                         node: Uuid,
                         name: &str,
                         at: (f64, f64)|
             -> anxin_store::Result<Uuid> {
                let f = pl::create_facility(
                    tx,
                    &sys,
                    &NewFacility::parse(FacilityInput {
                        node_id: Some(node),
                        kind: Some("supply_depot".into()),
                        name: Some(name.into()),
                        location: Some(LocationInput {
                            lon: Some(at.0),
                            lat: Some(at.1),
                            crs: Some("wgs84".into()),
                        }),
                        ..FacilityInput::default()
                    })?,
                )?;
                Ok(f.id)
            };
            let main = match facilities.first() {
                Some(f) => *f,
                None => {
                    n += 1;
                    depot(tx, demo_community, "社区应急物资储备点", (lon, lat))?
                }
            };
            let second = facilities.get(1).copied();
            let code = |tx: &mut anxin_store::Tx, c: &str| -> anxin_store::Result<Uuid> {
                Ok(reserves::item_by_code(tx.conn(), None, c)?
                    .ok_or(anxin_store::StoreError::NotFound)?
                    .id)
            };
            let days = |d: u64| today.checked_add_days(chrono::Days::new(d));
            // The demo community: some of everything, masks and water expiring soon.
            let stock: &[(&str, i64, Option<u64>, bool)] = &[
                ("mask", 600, Some(20), false),
                ("mask", 1000, Some(700), false),
                ("water", 240, Some(12), false),
                ("noodles", 8, Some(90), false),
                ("blanket", 6, None, false),
                ("tent", 2, None, false),
                ("flashlight", 15, None, true),
                ("first_aid", 6, Some(500), true),
                ("raincoat", 20, None, true),
                ("life_jacket", 4, None, true),
                ("sandbag", 200, None, true),
            ];
            for (c, q, exp, at_second) in stock {
                let item = code(tx, c)?;
                let dep = if *at_second {
                    second.unwrap_or(main)
                } else {
                    main
                };
                let mut m = NewMovement::new(MovementKind::Receive, item, dep, *q);
                m.expires_on = exp.and_then(days);
                m.note = Some("演示：年度储备入库".into());
                n += reserves::post(tx, &m)?.len() * 2;
            }
            // A few issued already, so the ledger has both directions.
            let mask = code(tx, "mask")?;
            let mut m = NewMovement::new(MovementKind::Issue, mask, main, 120);
            m.note = Some("演示：防汛值守领用".into());
            n += reserves::post(tx, &m)?.len();
            // The community's own mask norm (above the platform default).
            reserves::set_norm(
                tx,
                &sys,
                &NormInput {
                    node_id: Some(demo_community),
                    item_id: Some(mask),
                    per_thousand: Some(1500),
                },
            )?;
            n += 1;
            // A neighbour under the same street with spare stock.
            let Some(street) = street else {
                return Ok(n);
            };
            let neighbour: Uuid = match tx.query_one(
                "SELECT id FROM nodes WHERE parent_id = $1 AND level = 'community' AND id <> $2 \
                 AND status = 'active' ORDER BY name, id LIMIT 1",
                &params![street, demo_community],
            )? {
                Some(r) => r.get("id")?,
                None => {
                    let id = tx.new_id();
                    let now = tx.now();
                    tx.insert(
                        "nodes",
                        &[
                            ("id", id.into()),
                            ("parent_id", street.into()),
                            ("level", "community".into()),
                            ("name", NEIGHBOUR.into()),
                            ("lon", (lon + 0.018).into()),
                            ("lat", (lat - 0.011).into()),
                            ("created_at", now.into()),
                            ("updated_at", now.into()),
                        ],
                    )?;
                    n += 1;
                    id
                }
            };
            let far = depot(
                tx,
                neighbour,
                "锦安社区物资仓库",
                (lon + 0.018, lat - 0.011),
            )?;
            n += 1;
            for (c, q, exp) in [
                ("tent", 40, None),
                ("blanket", 300, None),
                ("water", 5000, Some(400)),
                ("noodles", 200, Some(150)),
                ("mask", 8000, Some(900)),
                ("first_aid", 60, Some(800)),
            ] {
                let item = code(tx, c)?;
                let mut m = NewMovement::new(MovementKind::Receive, item, far, q);
                m.expires_on = exp.and_then(days);
                m.note = Some("演示：街道统一采购分储".into());
                n += reserves::post(tx, &m)?.len() * 2;
            }
            Ok(n)
        })
        .await?;
    Ok(n)
}
