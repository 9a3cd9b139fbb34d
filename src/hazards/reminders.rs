//! Risk reviews coming due remind their owners (owner: calendar & risks).
//!
//! [`run`] (on the monitoring timer, with the other hazard jobs): every active risk whose next
//! review is within `risks.remind_days_before` days gets one `due_soon` reminder to its owner,
//! and one `overdue` reminder once the date has passed, each once per review date: what was
//! sent is recorded in `risk_reminders` (`anxin_store::hazards::risks::record_reminders`), so a
//! run that comes late, twice, or on two servers sends each once. A review sets a new date, and
//! the reminders start over for it. The message is an SMS (template [`REVIEW_TEMPLATE`]) to the
//! owner's duty phone, through the notification service like the welfare escalation; an owner
//! without a duty phone is recorded as reminded (the register shows the risk as due) and logged.

use std::collections::BTreeMap;

use anxin_store::hazards::risks as store_risks;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// Template of the reminder (params: title, node, due, state).
pub const REVIEW_TEMPLATE: &str = "risk_review";

/// Reminders handled per round.
const BATCH: i64 = 500;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Reminders recorded (due_soon and overdue).
    pub reminded: usize,
    /// SMS enqueued.
    pub notified: usize,
}

/// Remind the owners of every risk whose review is due soon or overdue at the app clock's now.
pub async fn run(app: &App) -> anyhow::Result<Report> {
    let now = app.clock.now();
    let days = app.config.risks.remind_days_before;
    let mut report = Report::default();
    loop {
        let due = app
            .store
            .read(move |c, _| store_risks::due_reminders(c, now, days, BATCH))
            .await?;
        if due.is_empty() {
            break;
        }
        let ask: Vec<(uuid::Uuid, uuid::Uuid)> =
            due.iter().map(|r| (r.owner_user_id, r.node_id)).collect();
        let phones = app
            .store
            .read(move |c, env| {
                ask.into_iter()
                    .map(|(owner, node)| store_risks::owner_phone(c, env, owner, node))
                    .collect::<anxin_store::Result<Vec<_>>>()
            })
            .await?;
        let mut items = Vec::new();
        for (r, phone) in due.iter().zip(phones) {
            let Some((phone, mask)) = phone else {
                tracing::info!(risk = %r.risk_id, user = %r.owner_user_id, "risk owner without a duty phone; not notified by SMS");
                continue;
            };
            let mut params = BTreeMap::new();
            params.insert("title".to_owned(), r.title.clone());
            params.insert("node".to_owned(), r.node_name.clone());
            params.insert("due".to_owned(), r.due_on.format("%Y-%m-%d").to_string());
            params.insert(
                "state".to_owned(),
                if r.kind == "overdue" {
                    "已逾期".to_owned()
                } else {
                    "即将到期".to_owned()
                },
            );
            items.push(notify::Outgoing {
                channel: ChannelKind::Sms,
                recipient: phone,
                recipient_mask: mask,
                template_id: REVIEW_TEMPLATE.to_owned(),
                params,
            });
        }
        // Messages first: if they cannot be recorded, nothing is marked sent and the next run
        // tries again.
        if !items.is_empty() {
            report.notified += items.len();
            notify::enqueue_many(app, items).await?;
        }
        let n = due.len();
        report.reminded += app
            .store
            .write(WriteCtx::system("risks.remind"), move |tx| {
                store_risks::record_reminders(tx, &due)
            })
            .await?;
        if (n as i64) < BATCH {
            break;
        }
    }
    if report.reminded > 0 {
        tracing::info!(
            reminded = report.reminded,
            notified = report.notified,
            "risk review reminders"
        );
    }
    Ok(report)
}
