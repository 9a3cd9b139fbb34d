//! Escalation: an alarm not acknowledged within `monitor.escalation_minutes` of being raised goes
//! up one level of the tree (community → street → district …, at most
//! `monitor.escalation_max_levels`), and the officers there — users whose grant at that node may
//! handle alarms and who have a phone on the node's duty list — get an SMS (template
//! `alarm_escalated`). The level is computed from the raise time alone
//! ([`anxin_domain::alarm::escalation_level`]), and stored; the store only moves it upwards, so a
//! run that comes late, twice, or on two servers escalates each level once.

use std::collections::BTreeMap;

use anxin_domain::alarm::escalation_level;
use anxin_domain::Permission;
use anxin_store::monitor as store_monitor;
use anxin_store::WriteCtx;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// Template of the escalation message.
pub const TEMPLATE: &str = "alarm_escalated";

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub escalated: usize,
    pub notified: usize,
}

/// Escalate every alarm due at the app clock's now.
pub async fn run(app: &App) -> anyhow::Result<Report> {
    let cfg = &app.config.monitor;
    let now = app.clock.now();
    let alarms = app
        .store
        .read(|c, _| store_monitor::unacked_alarms(c))
        .await?;
    let mut report = Report::default();
    for a in alarms {
        let level = escalation_level(
            a.raised_at,
            false,
            cfg.escalation_minutes,
            cfg.escalation_max_levels,
            now,
        );
        let level = i64::from(level);
        if level <= a.escalated_level {
            continue;
        }
        let node = a.node_id;
        let chain = app
            .store
            .read(move |c, _| store_monitor::ancestors(c, node))
            .await?;
        // Never above the root: cap at the chain's length.
        let level = level.min(chain.len() as i64);
        if level <= a.escalated_level {
            continue;
        }
        let id = a.id;
        let changed = app
            .store
            .write(WriteCtx::system("monitor.escalate"), move |tx| {
                store_monitor::set_escalated(tx, id, level)
            })
            .await?;
        if !changed {
            continue;
        }
        report.escalated += 1;
        tracing::info!(alarm = %a.id, level, "alarm escalated");
        for l in (a.escalated_level + 1)..=level {
            let Some((target, target_name)) = chain.get((l - 1) as usize).cloned() else {
                continue;
            };
            let officers = app
                .store
                .read(move |c, env| {
                    store_monitor::officers_at(c, env, target, now, Permission::HandleAlarms)
                })
                .await?;
            for o in officers {
                let (Some(phone), Some(mask)) = (o.phone, o.phone_mask) else {
                    tracing::info!(user = %o.user_id, "officer without a duty phone; not notified by SMS");
                    continue;
                };
                let mut params = BTreeMap::new();
                params.insert("node".to_owned(), target_name.clone());
                params.insert("device".to_owned(), a.device_code.clone());
                params.insert("alarm".to_owned(), a.alarm_type.clone());
                params.insert(
                    "minutes".to_owned(),
                    (i64::from(cfg.escalation_minutes) * l).to_string(),
                );
                notify::enqueue(app, ChannelKind::Sms, phone, mask, TEMPLATE, params).await?;
                report.notified += 1;
            }
        }
    }
    Ok(report)
}
