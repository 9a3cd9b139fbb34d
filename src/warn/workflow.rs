//! The workflow steps as the HTTP edge (and later the alarm promotion) calls them: each runs one
//! store write (`anxin_store::warnings`), then hands the SMS it produced to the notification
//! service. A delivery is recorded (status `queued`) in the same transaction as the step; the
//! notification is enqueued after commit and the delivery then points at it (`sent`), or is
//! marked `failed` when the template or channel refuses it. In-app deliveries become `delivered`
//! when the resident's page displays them; in-person tasks when the helper marks them done.

use anxin_store::scope::Caller;
use anxin_store::warnings::{self, Fanout, UpdateInput};
use anxin_store::{Result, WriteCtx};
use uuid::Uuid;

use crate::app::App;
use crate::platform::notify::{self, ChannelKind};

/// The notification template every warning SMS uses.
pub const TEMPLATE: &str = "warning";

/// Tell the configured staff group robots (WeCom, DingTalk) about a step that reaches
/// residents: a group notice, not a delivery to a person, so it is not in the reach counts.
async fn notify_groups(
    app: &App,
    w: &warnings::Warning,
    params: &std::collections::BTreeMap<String, String>,
) {
    let items: Vec<_> = app
        .config
        .notify
        .robots
        .iter()
        .filter_map(|r| {
            let channel = ChannelKind::parse(&r.kind).filter(|k| k.is_group())?;
            Some(notify::Outgoing {
                channel,
                recipient: r.name.clone(),
                recipient_mask: r.name.clone(),
                template_id: TEMPLATE.to_owned(),
                params: params.clone(),
            })
        })
        .collect();
    if items.is_empty() {
        return;
    }
    if let Err(e) = notify::enqueue_many(app, items).await {
        tracing::warn!(warning.id = %w.id, error = %format!("{e:#}"), "group robots not notified");
    }
}

/// Enqueue the SMS, e-mail, WeChat messages and voice calls of a step and link each delivery to
/// its notification; tell the group robots.
pub async fn send(app: &App, ctx: &WriteCtx, f: &Fanout) -> Result<()> {
    let Some(w) = &f.warning else { return Ok(()) };
    let params = warnings::sms_params(w);
    notify_groups(app, w, &params).await;
    // One write for the whole fan-out (thousands of recipients); if the batch is refused (a
    // template or parameter problem), every delivery is marked failed.
    let items = f
        .sms
        .iter()
        .map(|s| notify::Outgoing {
            channel: ChannelKind::Sms,
            recipient: s.phone.clone(),
            recipient_mask: s.phone_mask.clone(),
            template_id: TEMPLATE.to_owned(),
            params: params.clone(),
        })
        .collect::<Vec<_>>();
    let ids: Vec<Option<Uuid>> = match notify::enqueue_many(app, items).await {
        Ok(ids) => ids.into_iter().map(Some).collect(),
        Err(e) => {
            tracing::warn!(warning.id = %w.id, error = %format!("{e:#}"), "warning SMS not enqueued");
            vec![None; f.sms.len()]
        }
    };
    let mut links: Vec<(Uuid, Option<Uuid>)> =
        f.sms.iter().map(|s| s.delivery_id).zip(ids).collect();
    // The residents' own channels and voice calls, each channel in one batch: a channel that
    // refuses the template (not configured for it) fails its own deliveries only.
    for channel in [ChannelKind::Email, ChannelKind::Wechat, ChannelKind::Voice] {
        let outs: Vec<_> = f
            .others
            .iter()
            .filter(|o| ChannelKind::parse(o.channel) == Some(channel))
            .collect();
        if outs.is_empty() {
            continue;
        }
        let items = outs
            .iter()
            .map(|o| notify::Outgoing {
                channel,
                recipient: o.address.clone(),
                recipient_mask: o.address_mask.clone(),
                template_id: TEMPLATE.to_owned(),
                params: params.clone(),
            })
            .collect::<Vec<_>>();
        let ids: Vec<Option<Uuid>> = match notify::enqueue_many(app, items).await {
            Ok(ids) => ids.into_iter().map(Some).collect(),
            Err(e) => {
                tracing::warn!(warning.id = %w.id, channel = channel.as_str(), error = %format!("{e:#}"), "warning messages not enqueued");
                vec![None; outs.len()]
            }
        };
        links.extend(outs.iter().map(|o| o.delivery_id).zip(ids));
    }
    if links.is_empty() {
        return Ok(());
    }
    app.store
        .write(ctx.clone(), move |tx| {
            for (d, n) in &links {
                warnings::set_notification(tx, *d, *n)?;
            }
            Ok(())
        })
        .await
}

/// Expire what is due (by the app clock) before reading: a warning past its expiry is never
/// shown as in force.
pub async fn expire_due(app: &App) -> Result<usize> {
    let now = app.clock.now();
    if !app
        .store
        .read(move |c, _| warnings::any_due(c, now))
        .await?
    {
        return Ok(0);
    }
    app.store
        .write(WriteCtx::system("warnings-expire"), warnings::expire_due)
        .await
}

pub async fn issue(app: &App, caller: Caller, ctx: WriteCtx, id: Uuid) -> Result<Fanout> {
    let f = app
        .store
        .write(ctx.clone(), move |tx| warnings::issue(tx, &caller, id))
        .await?;
    send(app, &ctx, &f).await?;
    // Plans whose trigger matches start (pending confirmation unless configured away).
    if let Some(w) = &f.warning {
        crate::ops::triggers::on_warning_issued(app, w).await;
    }
    Ok(f)
}

pub async fn update(
    app: &App,
    caller: Caller,
    ctx: WriteCtx,
    id: Uuid,
    u: UpdateInput,
) -> Result<Fanout> {
    let f = app
        .store
        .write(ctx.clone(), move |tx| warnings::update(tx, &caller, id, u))
        .await?;
    send(app, &ctx, &f).await?;
    // A raised level may match a plan the first version did not (same trigger id: once only).
    if let Some(w) = &f.warning {
        crate::ops::triggers::on_warning_issued(app, w).await;
    }
    Ok(f)
}

pub async fn cancel(
    app: &App,
    caller: Caller,
    ctx: WriteCtx,
    id: Uuid,
    reason: Option<String>,
) -> Result<Fanout> {
    let f = app
        .store
        .write(ctx.clone(), move |tx| {
            warnings::cancel(tx, &caller, id, reason)
        })
        .await?;
    send(app, &ctx, &f).await?;
    Ok(f)
}
