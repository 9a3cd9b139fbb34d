//! The demo's campaigns (owner: campaigns): an open first-come-first-served mask campaign of the
//! demo community (two pickup slots at the community office today and tomorrow), so the workers'
//! and the residents' pages have something to show; households with vulnerable people get their
//! delivery orders when it opens.

use anxin_store::scope::Caller;
use anxin_store::supplies::campaigns::{self as sc, CampaignInput, SlotInput};
use anxin_store::{params, WriteCtx};
use chrono::Duration;
use uuid::Uuid;

use crate::app::App;

/// Returns how many records it wrote (0 when already present).
pub async fn build(app: &App, demo_community: Uuid) -> anyhow::Result<usize> {
    let there = app
        .store
        .read(move |c, _| {
            c.query_i64(
                "SELECT count(*) FROM campaigns WHERE node_id = $1",
                &params![demo_community],
            )
        })
        .await?;
    if there > 0 {
        return Ok(0);
    }
    let now = app.clock.now();
    let n = app
        .store
        .write(WriteCtx::system("demo-campaigns"), move |tx| {
            let sys = Caller::system();
            let slot = |d: i64| SlotInput {
                facility_id: None,
                place_label: Some("社区居委会一楼".into()),
                starts_at: now + Duration::days(d),
                ends_at: now + Duration::days(d) + Duration::hours(8),
                capacity: 1_000,
            };
            let input = CampaignInput {
                node_id: demo_community,
                title: "口罩发放（每户 5 只）".into(),
                item_code: "mask".into(),
                quantity_per_household: Some(5),
                fulfilment: Some("pickup".into()),
                eligibility: Some("all".into()),
                mode: Some("fcfs".into()),
                draw_at: None,
                stock: 5_000,
                compounds: Vec::new(),
                depot_id: None,
                note: Some("演示数据".into()),
                slots: vec![slot(0), slot(1)],
            };
            let d = sc::create(tx, &sys, &input)?;
            let r = sc::open(tx, &sys, d.campaign.id)?;
            Ok(3 + usize::try_from(r.deliveries).unwrap_or(0))
        })
        .await?;
    Ok(n)
}
