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

/// Enqueue the SMS of a step and link each delivery to its notification.
pub async fn send(app: &App, ctx: &WriteCtx, f: &Fanout) -> Result<()> {
    let Some(w) = &f.warning else { return Ok(()) };
    let params = warnings::sms_params(w);
    let mut links = Vec::with_capacity(f.sms.len());
    for s in &f.sms {
        let id = match notify::enqueue(
            app,
            ChannelKind::Sms,
            s.phone.clone(),
            s.phone_mask.clone(),
            TEMPLATE,
            params.clone(),
        )
        .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(warning.id = %w.id, delivery.id = %s.delivery_id, error = %e, "warning SMS not enqueued");
                None
            }
        };
        links.push((s.delivery_id, id));
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
