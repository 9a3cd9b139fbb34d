//! Delivery records of notifications (SMS, e-mail, WeChat, voice, group robots): what was sent to
//! whom, when, how it went, what the provider reported back (receipts) and what people answered
//! (replies).
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
//!
//! Phone recipients (SMS, voice) also get a blind index (`recipient_bidx`, the same index as
//! people's phones) so that a reply from a phone can be linked to the message it answers without
//! storing or searching plaintext numbers. Receipts are matched by the provider's message id
//! (`provider_ref`). Reply texts are personal data: each is sealed with its own data key.

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

/// Channels whose recipient is a phone number (blind-indexed for linking replies).
const PHONE_CHANNELS: &[&str] = &["sms", "voice"];
const FIELD_REPLY: &str = "notification_replies.text";

/// Record one notification inside the caller's write (what [`insert_many`] does for each).
pub fn insert_in(tx: &mut crate::Tx<'_>, n: &NewNotification) -> Result<Uuid> {
    let env = tx.env();
    let id = tx.new_id();
    let now = tx.now();
    let key_id = tx.new_id();
    env.keys.new_data_key(tx.conn(), key_id, now)?;
    let recipient_ct = env
        .keys
        .seal(tx.conn(), key_id, FIELD_RECIPIENT, n.recipient.as_bytes())?;
    let params_ct = env.keys.seal(
        tx.conn(),
        key_id,
        FIELD_PARAMS,
        n.params.to_string().as_bytes(),
    )?;
    let bidx = PHONE_CHANNELS
        .contains(&n.channel.as_str())
        .then(|| env.keys.blind(crate::people::BIDX_PHONE, &n.recipient));
    tx.execute_unlogged(
        "INSERT INTO notifications (id, key_id, channel, template, params_ct, recipient_ct, \
         recipient_mask, status, attempts, next_attempt_at, created_at, recipient_bidx) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9, $10)",
        &params![
            id,
            key_id,
            n.channel.clone(),
            n.template.clone(),
            params_ct,
            recipient_ct,
            n.recipient_mask.clone(),
            n.due_at,
            now,
            bidx
        ],
    )?;
    Ok(id)
}

/// Record a notification; returns its id.
pub async fn insert(store: &Store, n: NewNotification) -> Result<Uuid> {
    store
        .write(WriteCtx::system("notify.enqueue"), move |tx| {
            insert_in(tx, &n)
        })
        .await
}

/// Record many notifications in one write (a warning to thousands of residents): all or none.
/// Returns their ids in the order given.
pub async fn insert_many(store: &Store, ns: Vec<NewNotification>) -> Result<Vec<Uuid>> {
    if ns.is_empty() {
        return Ok(Vec::new());
    }
    store
        .write(WriteCtx::system("notify.enqueue"), move |tx| {
            ns.iter().map(|n| insert_in(tx, n)).collect()
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

/// Mark a notification sent (the provider accepted it). `segments` is the number of SMS parts
/// it was billed as; `drop_params` discards the sealed parameters at once (a sign-in code has no
/// use after delivery).
pub async fn mark_sent(
    store: &Store,
    id: Uuid,
    now: DateTime<Utc>,
    provider_ref: Option<String>,
    segments: Option<i64>,
    drop_params: bool,
) -> Result<()> {
    store
        .write(WriteCtx::system("notify.sent"), move |tx| {
            let sql = if drop_params {
                "UPDATE notifications SET status = 'sent', sent_at = $1, provider_ref = $2, \
                 segments = $3, last_error = NULL, params_ct = NULL WHERE id = $4"
            } else {
                "UPDATE notifications SET status = 'sent', sent_at = $1, provider_ref = $2, \
                 segments = $3, last_error = NULL WHERE id = $4"
            };
            tx.execute_unlogged(sql, &params![now, provider_ref, segments, id])?;
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
    /// SMS parts the message was sent as.
    pub segments: Option<i64>,
    /// What the provider's receipt said: `delivered` or `failed`; `None` before a receipt.
    pub receipt_status: Option<String>,
    /// The provider's status code from the receipt (`DELIVRD`, `UNDELIV`, …).
    pub receipt_code: Option<String>,
    pub receipt_at: Option<DateTime<Utc>>,
    /// When the latest reply to this message arrived.
    pub replied_at: Option<DateTime<Utc>>,
}

pub async fn state(store: &Store, id: Uuid) -> Result<Option<NotificationState>> {
    store
        .read(move |c, _| {
            c.query_one(
                "SELECT id, channel, template, recipient_mask, status, attempts, next_attempt_at, \
                 last_error, provider_ref, created_at, sent_at, segments, receipt_status, \
                 receipt_code, receipt_at, replied_at FROM notifications WHERE id = $1",
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
                    segments: r.get("segments")?,
                    receipt_status: r.get("receipt_status")?,
                    receipt_code: r.get("receipt_code")?,
                    receipt_at: r.get("receipt_at")?,
                    replied_at: r.get("replied_at")?,
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

// ---- receipts and replies --------------------------------------------------------------------

/// What a delivery receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Delivered,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Failed => "failed",
        }
    }
}

/// Record a provider's delivery receipt against the message it sent as `provider_ref` on
/// `channel`. Returns the notification's id, `None` when no sent message has that reference.
/// `code` is the provider's status code; it must not carry personal data.
pub async fn record_receipt(
    store: &Store,
    channel: &str,
    provider_ref: &str,
    status: ReceiptStatus,
    code: Option<String>,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>> {
    let channel = channel.to_owned();
    let provider_ref = provider_ref.to_owned();
    let code: Option<String> = code.map(|c| c.chars().take(64).collect());
    store
        .write(WriteCtx::system("notify.receipt"), move |tx| {
            let r = tx.query_one(
                "UPDATE notifications SET receipt_status = $1, receipt_code = $2, receipt_at = $3 \
                 WHERE channel = $4 AND provider_ref = $5 AND status = 'sent' RETURNING id",
                &params![status.as_str(), code, at, channel, provider_ref],
            )?;
            r.map(|r| r.get("id")).transpose()
        })
        .await
}

/// A reply received from a provider (an SMS answered by its recipient).
#[derive(Clone)]
pub struct NewReply {
    pub channel: String,
    /// The provider's id of the message answered, when it says.
    pub provider_ref: Option<String>,
    /// The sender's phone in E.164, when known. Personal data: only its blind index is kept.
    pub sender: Option<String>,
    pub sender_mask: Option<String>,
    /// What they wrote. Sealed.
    pub text: String,
    pub received_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewReply")
            .field("channel", &self.channel)
            .field("sender", &self.sender_mask)
            .finish_non_exhaustive()
    }
}

/// A recorded reply: its id and the notification it answers, when one was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyRecorded {
    pub id: Uuid,
    pub notification_id: Option<Uuid>,
}

/// Longest reply text kept, in characters.
pub const REPLY_MAX_CHARS: usize = 1000;

/// Record a reply and link it to the message it answers: by the provider's message id when
/// given, else the latest message sent on the channel to the sender's phone (by blind index).
pub async fn record_reply(store: &Store, r: NewReply) -> Result<ReplyRecorded> {
    let env = store.env().clone();
    store
        .write(WriteCtx::system("notify.reply"), move |tx| {
            let bidx = r
                .sender
                .as_deref()
                .map(|p| env.keys.blind(crate::people::BIDX_PHONE, p));
            let mut linked: Option<Uuid> = None;
            if let Some(pr) = &r.provider_ref {
                linked = tx
                    .query_one(
                        "SELECT id FROM notifications WHERE channel = $1 AND provider_ref = $2",
                        &params![r.channel.clone(), pr.clone()],
                    )?
                    .map(|row| row.get("id"))
                    .transpose()?;
            }
            if linked.is_none() {
                if let Some(b) = &bidx {
                    linked = tx
                        .query_one(
                            "SELECT id FROM notifications WHERE channel = $1 AND recipient_bidx = $2 \
                             AND status = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1",
                            &params![r.channel.clone(), b.clone()],
                        )?
                        .map(|row| row.get("id"))
                        .transpose()?;
                }
            }
            let id = tx.new_id();
            let key_id = tx.new_id();
            let now = tx.now();
            env.keys.new_data_key(tx.conn(), key_id, now)?;
            let text: String = r.text.chars().take(REPLY_MAX_CHARS).collect();
            let text_ct = env
                .keys
                .seal(tx.conn(), key_id, FIELD_REPLY, text.as_bytes())?;
            tx.execute_unlogged(
                "INSERT INTO notification_replies (id, notification_id, key_id, channel, sender_bidx, \
                 sender_mask, text_ct, provider_ref, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &params![
                    id,
                    linked,
                    key_id,
                    r.channel.clone(),
                    bidx,
                    r.sender_mask.clone(),
                    text_ct,
                    r.provider_ref.clone(),
                    r.received_at
                ],
            )?;
            if let Some(n) = linked {
                tx.execute_unlogged(
                    "UPDATE notifications SET replied_at = $1 WHERE id = $2",
                    &params![r.received_at, n],
                )?;
            }
            Ok(ReplyRecorded {
                id,
                notification_id: linked,
            })
        })
        .await
}

/// A reply, opened, for the people who handle it.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reply {
    pub id: Uuid,
    pub notification_id: Option<Uuid>,
    pub channel: String,
    pub sender_mask: Option<String>,
    pub text: String,
    pub received_at: DateTime<Utc>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("id", &self.id)
            .field("notification_id", &self.notification_id)
            .field("sender", &self.sender_mask)
            .finish_non_exhaustive()
    }
}

/// The replies to one notification, oldest first.
pub async fn replies(store: &Store, notification_id: Uuid) -> Result<Vec<Reply>> {
    store
        .read(move |c, env| {
            let rows = c.query(
                "SELECT id, notification_id, channel, sender_mask, text_ct, received_at \
                 FROM notification_replies WHERE notification_id = $1 ORDER BY received_at, id",
                &params![notification_id],
            )?;
            rows.iter()
                .map(|r| {
                    let ct: Vec<u8> = r.get("text_ct")?;
                    Ok(Reply {
                        id: r.get("id")?,
                        notification_id: r.get("notification_id")?,
                        channel: r.get("channel")?,
                        sender_mask: r.get("sender_mask")?,
                        text: env.keys.open_string(c, FIELD_REPLY, &ct)?,
                        received_at: r.get("received_at")?,
                    })
                })
                .collect()
        })
        .await
}
