//! The demo's providers (owner: providers): 成都锦安应急物资有限公司, registered at the demo
//! community's street and serving it, spoken for by the demo account `provider` (made with the
//! other demo accounts by the security administrator's path), with offers of masks, water and
//! instant noodles, and one order of the demo community in progress (confirmed, partly
//! delivered).

use anxin_store::places::{self as pl, FacilityInput, NewFacility};
use anxin_store::scope::Caller;
use anxin_store::supplies::providers::{
    self as pv, AccountLinkInput, OfferInput, OrderInput, OrderStepInput, ProviderInput, Step,
};
use anxin_store::{params, WriteCtx};
use uuid::Uuid;

use crate::app::App;

/// The demo provider's 统一社会信用代码 without its check character (computed).
const CREDIT_17: &str = "91510104MA6C8K2N7";
const NAME: &str = "成都锦安应急物资有限公司";

/// Returns how many records it wrote (0 when already present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let code = pv::with_check_char(CREDIT_17)
        .ok_or_else(|| anyhow::anyhow!("demo provider credit code"))?;
    let c = code.clone();
    let present = app
        .store
        .read(move |conn, _| {
            conn.query_i64(
                "SELECT count(*) FROM providers WHERE credit_code = $1",
                &params![c],
            )
        })
        .await?;
    if present > 0 {
        return Ok(0);
    }
    let n = app
        .store
        .write(WriteCtx::system("demo-providers"), move |tx| {
            let sys = Caller::system();
            let now = tx.now();
            let mut n = 0;
            let street: Uuid = tx
                .query_one(
                    "SELECT parent_id FROM nodes WHERE id = $1",
                    &params![demo_community],
                )?
                .and_then(|r| r.get::<Option<Uuid>>("parent_id").ok().flatten())
                .unwrap_or(demo_community);
            let p = pv::create_provider(
                tx,
                &sys,
                &ProviderInput {
                    node_id: Some(street),
                    name: Some(NAME.into()),
                    credit_code: Some(code),
                    contact_name: Some("陈志远".into()),
                    contact_phone: Some("13880012345".into()),
                    address: Some("成都市锦江区东大街下东大街段88号".into()),
                    served_node_ids: Some(vec![street]),
                    status: None,
                },
            )?;
            n += 2;
            let account: Option<Uuid> = tx
                .query_one("SELECT id FROM users WHERE username = 'provider'", &[])?
                .map(|r| r.get("id"))
                .transpose()?;
            let Some(account) = account else {
                return Ok(n);
            };
            pv::link_account(
                tx,
                &sys,
                p.id,
                &AccountLinkInput {
                    account_id: Some(account),
                    username: None,
                },
            )?;
            n += 1;
            let speaker = Caller::load(tx.conn(), account, now)?;
            let until = (now + chrono::Duration::days(90))
                .with_timezone(&anxin_domain::SHANGHAI)
                .date_naive()
                .to_string();
            let mut offers = Vec::new();
            for (item, qty, fen, hours, note) in [
                ("mask", 20_000, 45, 24, "医用外科口罩，50只/盒，整盒起订"),
                ("water", 3_000, 150, 12, "550ml瓶装饮用水，24瓶/箱"),
                ("noodles", 500, 4_800, 24, "方便面整箱，24包/箱"),
            ] {
                offers.push(pv::create_offer(
                    tx,
                    &speaker,
                    &OfferInput {
                        item_code: Some(item.into()),
                        quantity_available: Some(qty),
                        unit_price_fen: Some(fen),
                        lead_time_hours: Some(hours),
                        valid_until: Some(until.clone()),
                        note: Some(note.into()),
                        ..OfferInput::default()
                    },
                )?);
                n += 1;
            }
            // The demo community's depot (the reserves demo makes one; else one is made here).
            let depot: Option<Uuid> = tx
                .query_one(
                    "SELECT id FROM facilities WHERE node_id = $1 AND kind = 'supply_depot' \
                     AND status = 'active' ORDER BY created_at, id LIMIT 1",
                    &params![demo_community],
                )?
                .map(|r| r.get("id"))
                .transpose()?;
            let depot = match depot {
                Some(d) => d,
                None => {
                    n += 1;
                    pl::create_facility(
                        tx,
                        &sys,
                        &NewFacility::parse(FacilityInput {
                            node_id: Some(demo_community),
                            kind: Some("supply_depot".into()),
                            name: Some("水井坊社区应急物资储备点".into()),
                            ..FacilityInput::default()
                        })?,
                    )?
                    .id
                }
            };
            let worker: Option<Uuid> = tx
                .query_one("SELECT id FROM users WHERE username = 'worker'", &[])?
                .map(|r| r.get("id"))
                .transpose()?;
            let orderer = match worker {
                Some(w) => Caller::load(tx.conn(), w, now)?,
                None => sys.clone(),
            };
            let wanted = (now + chrono::Duration::days(3))
                .with_timezone(&anxin_domain::SHANGHAI)
                .date_naive()
                .to_string();
            let noodles = offers
                .iter()
                .find(|o| o.item_code == "noodles")
                .map(|o| o.id);
            let order = pv::place_order(
                tx,
                &orderer,
                &OrderInput {
                    offer_id: noodles,
                    depot_id: Some(depot),
                    quantity: Some(200),
                    wanted_by: Some(wanted),
                    note: Some("汛期安置点备餐".into()),
                },
            )?;
            pv::step(
                tx,
                &speaker,
                order.id,
                Step::Confirm,
                &OrderStepInput {
                    note: Some("已备货，分两批送达".into()),
                    ..OrderStepInput::default()
                },
            )?;
            pv::step(
                tx,
                &speaker,
                order.id,
                Step::Deliver,
                &OrderStepInput {
                    quantity: Some(120),
                    note: Some("第一批120箱".into()),
                    ..OrderStepInput::default()
                },
            )?;
            n += 4;
            Ok(n)
        })
        .await?;
    Ok(n)
}
