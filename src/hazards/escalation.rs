//! Overdue hazards escalate up the tree and notify its officers (owner: hazard ledger).
//!
//! An open hazard past a deadline (its fix's, or its plan's with no plan started) goes up one
//! level of the tree — community → street → district … — for every `hazards.escalate_every_hours`
//! past the deadline it missed first, at most `hazards.escalation_max_levels` (and never above
//! the root). The level is computed from the deadline and the clock alone and stored; the store
//! only moves it upwards ([`ledger::escalate`]), so a run that comes late, twice, or on two servers
//! escalates each level once, and writes one `escalated` event per move. The officers at each new
//! level — users whose grant on that node may handle hazards and who have a phone on the node's
//! duty list — get one SMS (template `hazard_escalated`).

use std::collections::BTreeMap;

use anxin_domain::Permission;
use anxin_store::hazards::ledger;
use anxin_store::monitor as store_monitor;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// Template of the escalation message.
pub const TEMPLATE: &str = "hazard_escalated";

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Hazards moved up (each once per run at most).
    pub escalated: usize,
    /// Messages enqueued.
    pub notified: usize,
}

/// The level a hazard that missed its deadline `hours_past` hours ago has reached.
pub fn level_for(hours_past: i64, every_hours: u32, max_levels: u32) -> i64 {
    if hours_past < 0 || every_hours == 0 {
        return 0;
    }
    (hours_past / i64::from(every_hours)).min(i64::from(max_levels))
}

/// Escalate every overdue hazard at the app clock's now.
pub async fn run(app: &App) -> anyhow::Result<Report> {
    let cfg = &app.config.hazards;
    let now = app.clock.now();
    let overdue = app.store.read(move |c, _| ledger::overdue(c, now)).await?;
    let mut report = Report::default();
    for h in overdue {
        let level = level_for(
            (now - h.missed).num_hours(),
            cfg.escalate_every_hours,
            cfg.escalation_max_levels,
        );
        if level <= h.escalation_level {
            continue;
        }
        let node = h.node_id;
        let chain = app
            .store
            .read(move |c, _| anxin_store::monitor::ancestors(c, node))
            .await?;
        // Never above the root.
        let level = level.min(chain.len() as i64);
        if level <= h.escalation_level {
            continue;
        }
        let Some((_, top_name)) = chain.get((level - 1) as usize).cloned() else {
            continue;
        };
        let id = h.id;
        let changed = app
            .store
            .write(WriteCtx::system("hazards.escalate"), move |tx| {
                ledger::escalate(tx, id, level, &top_name)
            })
            .await?;
        if !changed {
            continue;
        }
        report.escalated += 1;
        tracing::info!(hazard = %h.id, level, "hazard escalated");
        for l in (h.escalation_level + 1)..=level {
            let Some((target, target_name)) = chain.get((l - 1) as usize).cloned() else {
                continue;
            };
            let officers = app
                .store
                .read(move |c, env| {
                    store_monitor::officers_at(c, env, target, now, Permission::HandleHazards)
                })
                .await?;
            for o in officers {
                let (Some(phone), Some(mask)) = (o.phone, o.phone_mask) else {
                    tracing::info!(user = %o.user_id, "officer without a duty phone; not notified by SMS");
                    continue;
                };
                let mut params = BTreeMap::new();
                params.insert("node".to_owned(), target_name.clone());
                params.insert("place".to_owned(), h.place_label.clone());
                params.insert("finding".to_owned(), short(&h.finding, 40));
                params.insert(
                    "hours".to_owned(),
                    (now - h.missed).num_hours().max(0).to_string(),
                );
                notify::enqueue(app, ChannelKind::Sms, phone, mask, TEMPLATE, params).await?;
                report.notified += 1;
            }
        }
    }
    Ok(report)
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_level_per_step_up_to_the_cap() {
        assert_eq!(level_for(-1, 24, 2), 0);
        assert_eq!(level_for(0, 24, 2), 0);
        assert_eq!(level_for(23, 24, 2), 0);
        assert_eq!(level_for(24, 24, 2), 1);
        assert_eq!(level_for(47, 24, 2), 1);
        assert_eq!(level_for(48, 24, 2), 2);
        assert_eq!(level_for(480, 24, 2), 2);
        assert_eq!(level_for(480, 0, 2), 0);
    }
}
