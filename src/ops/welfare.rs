//! The welfare-check escalation job and call-out notifications (owner: volunteers & welfare).
//!
//! - [`run`]: open welfare checks past due go up one level (helper → grid workers → community
//!   workers → street officers, `anxin_store::ops::welfare::escalate_due`), each with a new due
//!   time and an incident-log line; the holders of the new level get one SMS per incident and
//!   level (template `welfare_escalated`, to their duty phone) saying how many are waiting. The
//!   state is in the checks themselves (level, due time), so a run that comes late, twice, or on
//!   two servers moves each check once per due time. Started on the monitoring timer, next to
//!   the alarm escalation.
//! - [`notify_callouts`]: after an activation commits, every volunteer called out gets an SMS
//!   (template `callout`) when the registry has their phone; volunteers with an account also see
//!   the call-out on their page (「我的召集」), which is the in-app notice.

use std::collections::{BTreeMap, HashMap};

use anxin_store::ops::{volunteers as store_vol, welfare as store_welfare};
use anxin_store::WriteCtx;
use uuid::Uuid;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// Template of the escalation message.
pub const ESCALATED_TEMPLATE: &str = "welfare_escalated";
/// Template of the call-out message.
pub const CALLOUT_TEMPLATE: &str = "callout";

/// Checks escalated per write.
const BATCH: i64 = 500;

/// Escalated checks are told per (incident, new level, community, grid).
type GroupKey = (Uuid, i64, Uuid, Option<Uuid>);

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub escalated: usize,
    pub notified: usize,
}

/// Escalate every open check due at the app clock's now and tell the new level's holders.
pub async fn run(app: &App) -> anyhow::Result<Report> {
    let now = app.clock.now();
    if !app
        .store
        .read(move |c, _| store_welfare::any_due(c, now))
        .await?
    {
        return Ok(Report::default());
    }
    let mut report = Report::default();
    // (incident, level, community, grid) → (title, how many)
    let mut groups: BTreeMap<GroupKey, (String, usize)> = BTreeMap::new();
    loop {
        let moved = app
            .store
            .write(WriteCtx::system("welfare.escalate"), |tx| {
                store_welfare::escalate_due(tx, BATCH)
            })
            .await?;
        report.escalated += moved.len();
        let done = (moved.len() as i64) < BATCH;
        for e in moved {
            let g = groups
                .entry((e.incident_id, e.level, e.community_id, e.grid_id))
                .or_insert_with(|| (e.incident_title.clone(), 0));
            g.1 += 1;
        }
        if done {
            break;
        }
    }
    if report.escalated > 0 {
        tracing::info!(checks = report.escalated, "welfare checks escalated");
    }
    let mut items = Vec::new();
    for ((_, level, community, grid), (title, count)) in groups {
        let (node, holders) = app
            .store
            .read(move |c, env| store_welfare::level_holders(c, env, level, community, grid, now))
            .await?;
        for h in holders {
            let Some((phone, mask)) = h.phone else {
                tracing::info!(user = %h.user_id, "level holder without a duty phone; not notified by SMS");
                continue;
            };
            let mut params = BTreeMap::new();
            params.insert("incident".to_owned(), title.clone());
            params.insert("node".to_owned(), node.clone());
            params.insert("count".to_owned(), count.to_string());
            params.insert(
                "level".to_owned(),
                store_welfare::level_text(level).to_owned(),
            );
            items.push(notify::Outgoing {
                channel: ChannelKind::Sms,
                recipient: phone,
                recipient_mask: mask,
                template_id: ESCALATED_TEMPLATE.to_owned(),
                params,
            });
        }
    }
    report.notified = items.len();
    if !items.is_empty() {
        notify::enqueue_many(app, items).await?;
    }
    Ok(report)
}

/// SMS every volunteer of an incident still waiting to answer a call-out (after the activation
/// commits; the activation engine calls this). Returns how many messages were enqueued.
pub async fn notify_callouts(app: &App, incident_id: Uuid) -> anyhow::Result<usize> {
    let notices = app
        .store
        .read(move |c, _| store_vol::pending_notices(c, incident_id))
        .await?;
    send(app, notices).await
}

/// SMS the volunteer of one call-out (a call-out made by hand).
pub async fn notify_callout(app: &App, callout_id: Uuid) -> anyhow::Result<usize> {
    let notices = app
        .store
        .read(move |c, _| store_vol::notice(c, callout_id))
        .await?;
    send(app, notices).await
}

async fn send(app: &App, notices: Vec<store_vol::CalloutNotice>) -> anyhow::Result<usize> {
    if notices.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = notices.iter().map(|n| n.volunteer_id).collect();
    let phones: HashMap<Uuid, (String, String)> = app
        .store
        .read(move |c, env| {
            let mut out = HashMap::new();
            for id in ids {
                if let Some(p) = store_vol::volunteer_phone(c, env, id)? {
                    out.insert(id, p);
                }
            }
            Ok(out)
        })
        .await?;
    let mut items = Vec::new();
    for n in notices {
        let Some((phone, mask)) = phones.get(&n.volunteer_id).cloned() else {
            continue;
        };
        let mut params = BTreeMap::new();
        let title = if n.exercise {
            format!("【演练】{}", n.incident_title)
        } else {
            n.incident_title.clone()
        };
        params.insert("incident".to_owned(), title);
        params.insert("community".to_owned(), n.community_name.clone());
        items.push(notify::Outgoing {
            channel: ChannelKind::Sms,
            recipient: phone,
            recipient_mask: mask,
            template_id: CALLOUT_TEMPLATE.to_owned(),
            params,
        });
    }
    let n = items.len();
    if n > 0 {
        notify::enqueue_many(app, items).await?;
    }
    Ok(n)
}
