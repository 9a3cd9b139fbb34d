//! Delivery records of notifications (SMS, e-mail): what was sent to whom, when, how it went.
//!
//! The recipient and the template parameters are personal data (a phone number, a sign-in code):
//! each notification gets its own data key and both are sealed with it; `recipient_mask` is what
//! lists and logs show. Retention deletes old records and shreds their keys.
//!
//! A delivery is claimed before it is attempted, by pushing `next_attempt_at` out by a lease and
//! counting the attempt, so two dispatchers (two server processes, or the dispatcher and a
//! sender delivering inline) never send the same message twice while both are alive; a
//! dispatcher that dies mid-send leaves the message to be taken over when the lease runs out.
//! On PostgreSQL the claim skips rows another claimer has locked.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::conn::Dialect;
use crate::error::{Result, StoreError};
use crate::params;
use crate::tx::WriteCtx;
use crate::value::Row;
use crate::Store;

/// Attempts before a message is given up as failed.
pub const MAX_ATTEMPTS: i64 = 8;
/// Delay before the first retry; doubled after each further failure up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::seconds(30);
pub const MAX_BACKOFF: Duration = Duration::hours(1);

const FIELD_RECIPIENT: &str = "notifications.recipient";
const FIELD_PARAMS: &str = "notifications.params";
const ERROR_MAX_CHARS: usize = 300;

/// A notification to record, pending delivery.
#[derive(Clone)]
pub struct NewNotification {
    /// `sms`, `email`, …
    pub channel: String,
    /// The template id (`login_code`): providers send approved templates, not free text.
    pub template: String,
    /// Phone in E.164 or e-mail address. Sealed.
    pub recipient: String,
    /// What lists and logs show instead (`138****5678`).
    pub recipient_mask: String,
    /// Template parameters, a JSON object of strings. Sealed.
    pub params: serde_json::Value,
    /// When the first attempt is due.
    pub due_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewNotification")
            .field("channel", &self.channel)
            .field("template", &self.template)
            .field("recipient", &self.recipient_mask)
            .finish_non_exhaustive()
    }
}

/// Record a notification; returns its id.
pub async fn insert(store: &Store, n: NewNotification) -> Result<Uuid> {
    let env = store.env().clone();
    store
        .write(WriteCtx::system("notify.enqueue"), move |tx| {
            let id = tx.new_id();
            let now = tx.now();
            let key_id = tx.new_id();
            env.keys.new_data_key(tx.conn(), key_id, now)?;
            let recipient_ct = env
                .keys
                .seal(tx.conn(), key_id, FIELD_RECIPIENT, n.recipient.as_bytes())?;
            let params_ct = env
                .keys
                .seal(tx.conn(), key_id, FIELD_PARAMS, n.params.to_string().as_bytes())?;
            tx.execute_unlogged(
                "INSERT INTO notifications (id, key_id, channel, template, params_ct, recipient_ct, \
                 recipient_mask, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9)",
                &params![
                    id,
                    key_id,
                    n.channel,
                    n.template,
                    params_ct,
                    recipient_ct,
                    n.recipient_mask,
                    n.due_at,
                    now
                ],
            )?;
            Ok(id)
        })
        .await
}

/// A notification claimed for one delivery attempt, opened.
#[derive(Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub channel: String,
    pub template: String,
    pub recipient: String,
    pub recipient_mask: String,
    pub params: serde_json::Value,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("template", &self.template)
            .field("recipient", &self.recipient_mask)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A claimed row whose ciphertexts are still to be opened.
struct Sealed {
    id: Uuid,
    channel: String,
    template: String,
    recipient_mask: String,
    attempts: i64,
    recipient_ct: Option<Vec<u8>>,
    params_ct: Option<Vec<u8>>,
}

fn sealed(r: &Row) -> Result<Sealed> {
    Ok(Sealed {
        id: r.get("id")?,
        channel: r.get("channel")?,
        template: r.get("template")?,
        recipient_mask: r
            .get::<Option<String>>("recipient_mask")?
            .unwrap_or_default(),
        attempts: r.get("attempts")?,
        recipient_ct: r.get("recipient_ct")?,
        params_ct: r.get("params_ct")?,
    })
}

/// Claim up to `limit` due notifications (pending, `next_attempt_at <= now`) for one attempt
/// each, holding them for `lease`. One whose data cannot be opened (its key was shredded) is
/// marked failed and not returned.
pub async fn claim_due(
    store: &Store,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let rows = store
        .write(WriteCtx::system("notify.claim"), move |tx| {
            let lock = match tx.dialect() {
                Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
                Dialect::Sqlite => "",
            };
            let rows = tx.query(
                &format!(
                    "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1 \
                     WHERE id IN (SELECT id FROM notifications WHERE status = 'pending' \
                     AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3 {lock}) RETURNING *"
                ),
                &params![now + lease, now, limit],
            )?;
            rows.iter().map(sealed).collect::<Result<Vec<_>>>()
        })
        .await?;
    open_all(store, rows, now).await
}

/// Claim one notification by id for an attempt now, whether or not it is due; `None` when it
/// is not pending or another dispatcher holds it.
pub async fn claim_one(
    store: &Store,
    id: Uuid,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<Claimed>> {
    let row = store
        .write(WriteCtx::system("notify.claim"), move |tx| {
            // Pending and not under someone else's lease: a fresh message is due at once, a
            // claimed one has next_attempt_at pushed into the future.
            let r = tx.query_one(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1 \
                 WHERE id = $2 AND status = 'pending' AND (attempts = 0 OR next_attempt_at <= $3) RETURNING *",
                &params![now + lease, id, now],
            )?;
            r.as_ref().map(sealed).transpose()
        })
        .await?;
    Ok(open_all(store, row.into_iter().collect(), now)
        .await?
        .into_iter()
        .next())
}

async fn open_all(store: &Store, rows: Vec<Sealed>, now: DateTime<Utc>) -> Result<Vec<Claimed>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (ok, broken) = store
        .read(move |c, env| {
            let mut ok = Vec::new();
            let mut broken = Vec::new();
            for s in rows {
                let opened = (|| -> Result<(String, serde_json::Value)> {
                    let rc = s
                        .recipient_ct
                        .as_deref()
                        .ok_or_else(|| StoreError::Crypto("no recipient".into()))?;
                    let recipient = env.keys.open_string(c, FIELD_RECIPIENT, rc)?;
                    let params = match s.params_ct.as_deref() {
                        Some(pc) => {
                            serde_json::from_str(&env.keys.open_string(c, FIELD_PARAMS, pc)?)
                                .map_err(|e| {
                                    StoreError::Backend(format!("notification params: {e}"))
                                })?
                        }
                        None => serde_json::Value::Object(serde_json::Map::new()),
                    };
                    Ok((recipient, params))
                })();
                match opened {
                    Ok((recipient, params)) => ok.push(Claimed {
                        id: s.id,
                        channel: s.channel,
                        template: s.template,
                        recipient,
                        recipient_mask: s.recipient_mask,
                        params,
                        attempts: s.attempts,
                    }),
                    Err(e) => broken.push((s.id, e.to_string())),
                }
            }
            Ok((ok, broken))
        })
        .await?;
    for (id, why) in broken {
        tracing::error!(notification.id = %id, error = %why, "notification cannot be opened; marked failed");
        record_failure(store, id, now, "cannot open recipient or parameters", false).await?;
    }
    Ok(ok)
}

/// Mark a notification sent. `drop_params` discards the sealed parameters at once (a sign-in
/// code has no use after delivery).
pub async fn mark_sent(
    store: &Store,
    id: Uuid,
    now: DateTime<Utc>,
    provider_ref: Option<String>,
    drop_params: bool,
) -> Result<()> {
    store
        .write(WriteCtx::system("notify.sent"), move |tx| {
            let sql = if drop_params {
                "UPDATE notifications SET status = 'sent', sent_at = $1, provider_ref = $2, \
                 last_error = NULL, params_ct = NULL WHERE id = $3"
            } else {
                "UPDATE notifications SET status = 'sent', sent_at = $1, provider_ref = $2, \
                 last_error = NULL WHERE id = $3"
            };
            tx.execute_unlogged(sql, &params![now, provider_ref, id])?;
            Ok(())
        })
        .await
}

/// The delay before retry number `attempts` (1 after the first failure).
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Duration::seconds(BASE_BACKOFF.num_seconds().saturating_mul(1_i64 << exp)).min(MAX_BACKOFF)
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    Failed,
}

/// Record a failed attempt. A retryable failure is retried after [`backoff`] until
/// [`MAX_ATTEMPTS`]; a permanent one fails at once. `reason` must not carry personal data.
pub async fn record_failure(
    store: &Store,
    id: Uuid,
    now: DateTime<Utc>,
    reason: &str,
    retryable: bool,
) -> Result<AfterFailure> {
    let reason: String = reason.chars().take(ERROR_MAX_CHARS).collect();
    store
        .write(WriteCtx::system("notify.failed"), move |tx| {
            let attempts = tx.conn().query_i64(
                "SELECT attempts FROM notifications WHERE id = $1",
                &params![id],
            )?;
            if retryable && attempts < MAX_ATTEMPTS {
                let at = now + backoff(attempts);
                tx.execute_unlogged(
                    "UPDATE notifications SET next_attempt_at = $1, last_error = $2 WHERE id = $3 AND status = 'pending'",
                    &params![at, reason, id],
                )?;
                Ok(AfterFailure::RetryAt(at))
            } else {
                tx.execute_unlogged(
                    "UPDATE notifications SET status = 'failed', last_error = $1 WHERE id = $2 AND status = 'pending'",
                    &params![reason, id],
                )?;
                Ok(AfterFailure::Failed)
            }
        })
        .await
}

/// A delivery record as operators see it: no recipient, no parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotificationState {
    pub id: Uuid,
    pub channel: String,
    pub template: String,
    pub recipient_mask: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

pub async fn state(store: &Store, id: Uuid) -> Result<Option<NotificationState>> {
    store
        .read(move |c, _| {
            c.query_one(
                "SELECT id, channel, template, recipient_mask, status, attempts, next_attempt_at, \
                 last_error, provider_ref, created_at, sent_at FROM notifications WHERE id = $1",
                &params![id],
            )?
            .map(|r| {
                Ok(NotificationState {
                    id: r.get("id")?,
                    channel: r.get("channel")?,
                    template: r.get("template")?,
                    recipient_mask: r.get("recipient_mask")?,
                    status: r.get("status")?,
                    attempts: r.get("attempts")?,
                    next_attempt_at: r.get("next_attempt_at")?,
                    last_error: r.get("last_error")?,
                    provider_ref: r.get("provider_ref")?,
                    created_at: r.get("created_at")?,
                    sent_at: r.get("sent_at")?,
                })
            })
            .transpose()
        })
        .await
}

/// The earliest `next_attempt_at` of a pending notification: when the dispatcher has work next.
pub async fn next_due(store: &Store) -> Result<Option<DateTime<Utc>>> {
    store
        .read(|c, _| {
            c.query_one(
                "SELECT next_attempt_at FROM notifications WHERE status = 'pending' ORDER BY next_attempt_at LIMIT 1",
                &[],
            )?
            .map(|r| r.get("next_attempt_at"))
            .transpose()
        })
        .await
}
