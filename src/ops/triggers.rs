//! Issued warnings and raised alarms that match a plan trigger → an activation (owner: plans &
//! activation).
//!
//! When a warning is issued ([`on_warning_issued`]) or alarms are raised ([`on_alarms_raised`]),
//! every active plan whose current version has a matching trigger gets an incident with the
//! trigger's kind and id: `pending` (waiting for a person's confirmation) when `[ops]
//! confirm_triggered` is on (the default) and ALWAYS for a warning imported from outside
//! (`cap_import`); otherwise activated at once. Each plan is its own transaction, so one plan's
//! failure (a shelter under maintenance) does not hold back the others: the failed automatic
//! activation is left `pending` for a person instead. A repeated trigger is a no-op
//! (`incidents_trigger`).
//!
//! These reactions never fail the step that caused them (issuing, the alarm pipeline): errors are
//! logged and the warning or alarm stands.

use anxin_store::ops::activation::{self, ActivateOpts, TriggerInput};
use anxin_store::ops::plans::{self, Candidate};
use anxin_store::ops::Incident;
use anxin_store::scope::Caller;
use anxin_store::warnings::Warning;
use anxin_store::{Result, WriteCtx};
use uuid::Uuid;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// The notification template of an assignee's tasks.
pub const TEMPLATE: &str = "incident_tasks";

/// After an activation commits: the task assignees and the volunteers called out are told.
/// Failures are logged; the activation stands.
pub async fn after_activation(app: &App, i: &Incident) {
    notify_assignees(app, i).await;
    // The distribution campaigns it opened reach their households and delivery assignees:
    // their notices jobs were enqueued by the activation's write.
    app.jobs.kick();
    if i.status == "active" {
        if let Err(e) = crate::ops::welfare::notify_callouts(app, i.id).await {
            tracing::warn!(incident = %i.id, error = %e, "call-out messages not queued");
        }
    }
}

/// After an activation commits: tell each assignee with a duty phone how many tasks they have
/// and the first deadline. Failures are logged; the activation stands.
pub async fn notify_assignees(app: &App, i: &Incident) {
    if i.status != "active" {
        return;
    }
    let id = i.id;
    let notices = match app
        .store
        .read(move |c, env| activation::task_notices(c, env, id))
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(incident.id = %id, error = %e, "task assignees not notified");
            return;
        }
    };
    let items: Vec<notify::Outgoing> = notices
        .into_iter()
        .map(|n| {
            let mut params = std::collections::BTreeMap::new();
            params.insert("incident".to_owned(), i.title.clone());
            params.insert("count".to_owned(), n.tasks.to_string());
            params.insert(
                "due".to_owned(),
                n.first_due
                    .map(|d| {
                        d.with_timezone(&anxin_domain::SHANGHAI)
                            .format("%H:%M")
                            .to_string()
                    })
                    .unwrap_or_default(),
            );
            notify::Outgoing {
                channel: ChannelKind::Sms,
                recipient: n.phone,
                recipient_mask: n.phone_mask,
                template_id: TEMPLATE.to_owned(),
                params,
            }
        })
        .collect();
    if items.is_empty() {
        return;
    }
    if let Err(e) = notify::enqueue_many(app, items).await {
        tracing::warn!(incident.id = %id, error = %format!("{e:#}"), "task assignees not notified");
    }
}

/// Activate a plan by hand (the API and the pages call this). The people in scope are read
/// first on a reader connection, so the write transaction (on SQLite, the one writer every
/// other write waits for) only checks that they are still current and writes.
pub async fn activate(
    app: &App,
    caller: Caller,
    ctx: WriteCtx,
    plan_id: Uuid,
    opts: ActivateOpts,
) -> Result<Incident> {
    let (c2, now) = (caller.clone(), app.clock.now());
    let started = std::time::Instant::now();
    // A failed read only costs the head start: the write reads for itself.
    let pre = app
        .store
        .read(move |c, _| activation::prepare_activation(c, &c2, plan_id, now))
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "activation not prepared");
            None
        });
    let i = app
        .store
        .write(ctx, move |tx| {
            activation::activate(tx, &caller, plan_id, &opts, pre)
        })
        .await?;
    let committed = started.elapsed();
    after_activation(app, &i).await;
    tracing::debug!(
        committed_ms = committed.as_secs_f64() * 1000.0,
        answered_ms = started.elapsed().as_secs_f64() * 1000.0,
        "activation: committed, then notices queued"
    );
    Ok(i)
}

/// Confirm a triggered activation.
pub async fn confirm(app: &App, caller: Caller, ctx: WriteCtx, id: Uuid) -> Result<Incident> {
    let c2 = caller.clone();
    let pre = app
        .store
        .read(move |c, _| activation::prepare_confirm(c, &c2, id))
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "confirmation not prepared");
            None
        });
    let i = app
        .store
        .write(ctx, move |tx| activation::confirm(tx, &caller, id, pre))
        .await?;
    after_activation(app, &i).await;
    Ok(i)
}

/// Start every matching plan for `candidates`, each in its own transaction; returns the
/// incidents created.
async fn start(
    app: &App,
    candidates: Vec<Candidate>,
    kind: &'static str,
    trigger_id: Uuid,
    what: &str,
    pending: bool,
) -> Vec<Incident> {
    let mut out = Vec::new();
    for c in candidates {
        let t = TriggerInput {
            plan_id: c.plan_id,
            kind,
            trigger_id,
            title: format!("{}：{what}", c.name),
            pending,
        };
        let ctx = WriteCtx::system(format!("ops.trigger.{kind}"));
        let t2 = t.clone();
        // Running at once: the people in scope are read before the write (as for `activate`).
        let pre = if pending {
            None
        } else {
            let node = c.node_id;
            app.store
                .read(move |conn, _| anxin_store::ops::prepare(conn, node))
                .await
                .map_err(|e| tracing::debug!(error = %e, "triggered activation not prepared"))
                .ok()
        };
        let r = app
            .store
            .write(ctx.clone(), move |tx| activation::trigger(tx, &t2, pre))
            .await;
        let r = match r {
            Err(e) if !pending => {
                // The automatic activation failed (say a shelter is closed): leave it for a
                // person to confirm once the cause is dealt with.
                tracing::warn!(plan.id = %c.plan_id, error = %e, "automatic activation failed; left pending");
                let t3 = TriggerInput {
                    pending: true,
                    ..t.clone()
                };
                app.store
                    .write(ctx, move |tx| activation::trigger(tx, &t3, None))
                    .await
            }
            other => other,
        };
        match r {
            Ok(Some(i)) => {
                after_activation(app, &i).await;
                out.push(i);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(plan.id = %c.plan_id, error = %e, "plan trigger not recorded")
            }
        }
    }
    out
}

/// A warning was issued (or updated to a new issued version): start the plans it matches.
pub async fn on_warning_issued(app: &App, w: &Warning) -> Vec<Incident> {
    if w.status != "issued" {
        return Vec::new();
    }
    let w2 = w.clone();
    let candidates = match app
        .store
        .read(move |c, _| plans::plans_for_warning(c, &w2))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(warning.id = %w.id, error = %e, "plan triggers not evaluated");
            return Vec::new();
        }
    };
    // Imported warnings always need a person's confirmation.
    let pending = app.config.ops.confirm_triggered || w.source == "cap_import";
    start(
        app,
        candidates,
        "warning",
        w.original(),
        &w.headline,
        pending,
    )
    .await
}

/// Alarms were raised: start the plans they match.
pub async fn on_alarms_raised(app: &App, ids: Vec<Uuid>) -> Vec<Incident> {
    let mut out = Vec::new();
    for id in ids {
        let found = app
            .store
            .read(move |c, _| {
                let Some(a) = plans::raised_alarm(c, id)? else {
                    return Ok(None);
                };
                let cands = plans::plans_for_alarm(c, &a)?;
                Ok(Some((a, cands)))
            })
            .await;
        match found {
            Ok(Some((a, cands))) if !cands.is_empty() => {
                let pending = app.config.ops.confirm_triggered;
                out.extend(start(app, cands, "alarm", a.id, &a.alarm_type, pending).await);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(alarm.id = %id, error = %e, "plan triggers not evaluated"),
        }
    }
    out
}
