//! Timer jobs of reserves (owner: reserves & dispatch): expiry warnings ahead of time.
//!
//! [`run`] (on the monitoring timer, with the other supplies jobs): every lot that still holds
//! stock and expires within `supplies.expiry_warn_days` (or has expired) is warned about once:
//! an SMS (template [`EXPIRY_TEMPLATE`]) to the duty phone of each account managing supplies at
//! the lot's node or above, and a record in `stock_expiry_warnings`
//! (`anxin_store::supplies::reserves::record_warning`), so a run that comes late, twice, or on
//! two servers warns once. Staff without a duty phone are not messaged (the page lists the lot
//! as expiring anyway).

use std::collections::BTreeMap;

use anxin_store::supplies::reserves as store_reserves;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// Template of the warning (params: item, quantity, depot, node, expires).
pub const EXPIRY_TEMPLATE: &str = "stock_expiry";

/// Lots handled per round.
const BATCH: i64 = 200;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Lots warned about.
    pub warned: usize,
    /// SMS enqueued.
    pub notified: usize,
}

pub async fn run(app: &App) -> anyhow::Result<()> {
    warn_expiring(app).await.map(|_| ())
}

/// Warn about every lot expiring within the configured days, once each.
pub async fn warn_expiring(app: &App) -> anyhow::Result<Report> {
    let now = app.clock.now();
    let today = app.clock.local_now().date_naive();
    let until = today + chrono::Days::new(app.config.supplies.expiry_warn_days.max(0) as u64);
    let mut report = Report::default();
    loop {
        let due = app
            .store
            .read(move |c, _| store_reserves::due_warnings(c, until, BATCH))
            .await?;
        if due.is_empty() {
            break;
        }
        let nodes: Vec<uuid::Uuid> = due.iter().map(|d| d.node_id).collect();
        let keepers = app
            .store
            .read(move |c, env| {
                nodes
                    .into_iter()
                    .map(|n| store_reserves::stock_keepers(c, env, n, now))
                    .collect::<anxin_store::Result<Vec<_>>>()
            })
            .await?;
        let mut items = Vec::new();
        let mut counts = Vec::new();
        for (d, ks) in due.iter().zip(keepers) {
            let mut n = 0;
            for (_, phone) in ks {
                let Some((phone, mask)) = phone else { continue };
                let mut params = BTreeMap::new();
                params.insert("item".to_owned(), d.item_name.clone());
                params.insert("quantity".to_owned(), format!("{}{}", d.quantity, d.unit));
                params.insert("depot".to_owned(), d.depot_name.clone());
                params.insert("node".to_owned(), d.node_name.clone());
                params.insert(
                    "expires".to_owned(),
                    d.expires_on.format("%Y-%m-%d").to_string(),
                );
                items.push(notify::Outgoing {
                    channel: ChannelKind::Sms,
                    recipient: phone,
                    recipient_mask: mask,
                    template_id: EXPIRY_TEMPLATE.to_owned(),
                    params,
                });
                n += 1;
            }
            counts.push(n);
        }
        // Messages first: if they cannot be recorded, nothing is marked warned and the next run
        // tries again.
        if !items.is_empty() {
            report.notified += items.len();
            notify::enqueue_many(app, items).await?;
        }
        let n = due.len();
        report.warned += app
            .store
            .write(WriteCtx::system("supplies.expiry"), move |tx| {
                let mut k = 0;
                for (d, c) in due.iter().zip(counts) {
                    if store_reserves::record_warning(tx, d.lot_id, d.expires_on, c)? {
                        k += 1;
                    }
                }
                Ok(k)
            })
            .await?;
        if (n as i64) < BATCH {
            break;
        }
    }
    if report.warned > 0 {
        tracing::info!(
            warned = report.warned,
            notified = report.notified,
            "stock expiry warnings"
        );
    }
    Ok(report)
}
