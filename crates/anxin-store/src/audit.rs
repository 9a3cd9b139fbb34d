//! The audit log: who did what to which record, from where. Append-only and hash-chained.
//!
//! Each entry's `hash` is SHA-256 over the previous entry's hash and the entry's own fields in a
//! length-prefixed canonical encoding ([`entry_hash`]); the first entry's previous hash is 32
//! zero bytes. Changing, deleting or re-ordering any entry breaks the chain from that entry on,
//! and [`verify`] names the first broken sequence number.
//!
//! Appends take turns on the single `audit_head` row (the same pattern as the change log's
//! counter): the row is locked from the moment an append reads the last hash until its
//! transaction commits, so two writers can never chain onto the same entry. SQLite's single
//! writer serialises anyway; on PostgreSQL the row lock does it.
//!
//! On PostgreSQL the head row stays locked from an append until its transaction commits: append
//! as the last step of a write, not the first, so the lock is held for a commit, not for the
//! write's work.
//!
//! `detail` holds identifiers, codes and masks only, never personal data: the log is kept for
//! years and read by the audit administrator, who must not see residents' data.
//!
//! Reading needs `Permission::ReadAudit` (the audit administrator); to anyone else the log does
//! not exist ([`StoreError::NotFound`]).

use anxin_domain::roles::Permission;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::Caller;
use crate::tx::Tx;
use crate::value::{time_text, Row, Value};

/// The previous hash of the very first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// Stable action names. Other areas add theirs here so the audit UI can translate them.
pub mod action {
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGOUT: &str = "auth.logout";
    pub const LOCKOUT: &str = "auth.lockout";
    pub const TOTP_ENROLLED: &str = "auth.totp_enrolled";
    pub const PERSON_CHOSEN: &str = "auth.person_chosen";
    pub const USER_CREATE: &str = "user.create";
    pub const USER_DISABLE: &str = "user.disable";
    pub const GRANT_CREATE: &str = "grant.create";
    pub const GRANT_REVOKE: &str = "grant.revoke";
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    pub const AUDIT_READ: &str = "audit.read";
    pub const AUDIT_VERIFY: &str = "audit.verify";
    /// Personal data shown in clear.
    pub const UNMASK: &str = "unmask";
    /// Records leaving the platform (CSV/XLSX, API bulk reads).
    pub const EXPORT: &str = "export";
    /// A read of sensitive records that is not an unmask (e.g. contact look-up in an activation).
    pub const SENSITIVE_READ: &str = "sensitive_read";
}

/// An entry to append. Build with [`AuditEntry::new`] and the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub actor: Option<Uuid>,
    pub action: &'static str,
    pub target_kind: Option<&'static str>,
    pub target_id: Option<Uuid>,
    /// The client address, as text.
    pub ip: Option<String>,
    /// Ids, codes and masks only: never personal data.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    pub fn new(action: &'static str) -> Self {
        Self {
            actor: None,
            action,
            target_kind: None,
            target_id: None,
            ip: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
    pub fn actor(mut self, actor: Option<Uuid>) -> Self {
        self.actor = actor;
        self
    }
    pub fn target(mut self, kind: &'static str, id: Uuid) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id);
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// An entry as stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: Option<Uuid>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
    /// Hex of the entry's chain hash, for cross-checking against an exported copy.
    pub hash: String,
}

/// What [`verify`] found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: i64,
    /// The first entry that does not fit the chain (changed, missing or out of place).
    pub first_bad_seq: Option<i64>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad_seq.is_none()
    }
}

/// Which entries to list. All fields are optional and combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub target_id: Option<Uuid>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    pub until: Option<DateTime<Utc>>,
}

/// A page, newest first: entries before `before_seq` (all when `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditPageReq {
    pub before_seq: Option<i64>,
    pub limit: Option<i64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    /// Pass as `before_seq` for the next (older) page; `None` on the last page.
    pub next_before_seq: Option<i64>,
}

pub const MAX_PAGE: i64 = 500;

fn put(h: &mut Sha256, field: Option<&[u8]>) {
    match field {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    }
}

/// The chain hash of one entry: SHA-256(prev_hash || canonical fields). Every field is written
/// as a presence byte and, when present, its length and bytes, so no two different entries
/// encode the same. Times are the fixed-width UTC text of `value::time_text` (microseconds, the
/// precision both backends keep).
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    prev_hash: &[u8],
    seq: i64,
    id: Uuid,
    at: DateTime<Utc>,
    actor: Option<Uuid>,
    action: &str,
    target_kind: Option<&str>,
    target_id: Option<Uuid>,
    ip: Option<&str>,
    detail: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"anxin.audit.v1");
    put(&mut h, Some(prev_hash));
    put(&mut h, Some(seq.to_string().as_bytes()));
    put(&mut h, Some(id.to_string().as_bytes()));
    put(&mut h, Some(time_text(&at).as_bytes()));
    put(
        &mut h,
        actor.map(|a| a.to_string()).as_deref().map(str::as_bytes),
    );
    put(&mut h, Some(action.as_bytes()));
    put(&mut h, target_kind.map(str::as_bytes));
    put(
        &mut h,
        target_id
            .map(|t| t.to_string())
            .as_deref()
            .map(str::as_bytes),
    );
    put(&mut h, ip.map(str::as_bytes));
    put(&mut h, Some(detail.as_bytes()));
    h.finalize().into()
}

/// Append one entry at `now` with id `id`; returns its sequence number. Call inside a write
/// transaction (the head row stays locked until it commits); [`record`] does it for a [`Tx`].
pub fn append(
    conn: &mut dyn Conn,
    entry: &AuditEntry,
    now: DateTime<Utc>,
    id: Uuid,
) -> Result<i64> {
    // Locks the head row on PostgreSQL until commit: the next append waits here.
    let head = conn
        .query_one(
            "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq, last_hash",
            &[],
        )?
        .ok_or_else(|| StoreError::Backend("audit_head row missing".into()))?;
    let seq: i64 = head.get("last_seq")?;
    let prev: Vec<u8> = head.get("last_hash")?;
    // Stored times keep microseconds; hash what will be read back.
    let at = DateTime::parse_from_rfc3339(&time_text(&now))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let detail = entry.detail.to_string();
    let hash = entry_hash(
        &prev,
        seq,
        id,
        at,
        entry.actor,
        entry.action,
        entry.target_kind,
        entry.target_id,
        entry.ip.as_deref(),
        &detail,
    );
    conn.execute(
        "INSERT INTO audit_log (seq, id, at, actor, action, target_kind, target_id, ip, detail, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &params![
            seq,
            id,
            at,
            entry.actor,
            entry.action,
            entry.target_kind,
            entry.target_id,
            entry.ip.clone(),
            detail,
            prev,
            hash.to_vec()
        ],
    )?;
    conn.execute(
        "UPDATE audit_head SET last_hash = $1 WHERE id = 1",
        &params![hash.to_vec()],
    )?;
    Ok(seq)
}

/// Append `entry` within the write `tx`, stamped with the write's time. The entry commits or
/// rolls back with the change it records.
pub fn record(tx: &mut Tx, entry: AuditEntry) -> Result<i64> {
    let now = tx.now();
    let id = tx.new_id();
    append(tx.conn(), &entry, now, id)
}

const ENTRY_COLS: &str =
    "seq, id, at, actor, action, target_kind, target_id, ip, detail, prev_hash, hash";

struct Stored {
    rec: AuditRecord,
    detail_text: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn read_entry(r: &Row) -> Result<Stored> {
    let detail_text: String = r.get("detail")?;
    let hash: Vec<u8> = r.get("hash")?;
    Ok(Stored {
        rec: AuditRecord {
            seq: r.get("seq")?,
            id: r.get("id")?,
            at: r.get("at")?,
            actor: r.get("actor")?,
            action: r.get("action")?,
            target_kind: r.get("target_kind")?,
            target_id: r.get("target_id")?,
            ip: r.get("ip")?,
            detail: serde_json::from_str(&detail_text).unwrap_or(serde_json::Value::Null),
            hash: hex::encode(&hash),
        },
        detail_text,
        prev_hash: r.get("prev_hash")?,
        hash,
    })
}

/// Check the whole chain, oldest first, and that it ends where the head says. Reads in pages,
/// so it runs in constant memory whatever the log's length.
pub fn verify(conn: &mut dyn Conn) -> Result<VerifyReport> {
    const BATCH: i64 = 1000;
    let head = conn
        .query_one(
            "SELECT last_seq, last_hash, first_seq, first_prev_hash FROM audit_head WHERE id = 1",
            &[],
        )?
        .ok_or_else(|| StoreError::Backend("audit_head row missing".into()))?;
    let last_seq: i64 = head.get("last_seq")?;
    let last_hash: Vec<u8> = head.get("last_hash")?;
    let mut expect_seq: i64 = head.get("first_seq")?;
    let mut expect_prev: Vec<u8> = head.get("first_prev_hash")?;
    let mut entries = 0i64;
    let mut first_bad = None;
    // Entries from before the anchor (retention moved it past them) are out of place too.
    let stray = conn.query_one(
        "SELECT min(seq) AS s FROM audit_log WHERE seq < $1",
        &params![expect_seq],
    )?;
    if let Some(s) = stray.and_then(|r| r.get::<Option<i64>>("s").ok().flatten()) {
        first_bad = Some(s);
    }
    let mut after = expect_seq - 1;
    loop {
        let rows = conn.query(
            &format!("SELECT {ENTRY_COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &params![after, BATCH],
        )?;
        let n = rows.len();
        for r in &rows {
            entries += 1;
            let seq: i64 = r.get("seq")?;
            after = seq;
            if first_bad.is_some() {
                continue;
            }
            if seq != expect_seq {
                // A gap: the entry at `expect_seq` is gone.
                first_bad = Some(expect_seq);
                continue;
            }
            let ok = match read_entry(r) {
                Ok(s) => {
                    let want = entry_hash(
                        &s.prev_hash,
                        s.rec.seq,
                        s.rec.id,
                        s.rec.at,
                        s.rec.actor,
                        &s.rec.action,
                        s.rec.target_kind.as_deref(),
                        s.rec.target_id,
                        s.rec.ip.as_deref(),
                        &s.detail_text,
                    );
                    let fits = s.prev_hash == expect_prev && s.hash == want;
                    expect_prev = s.hash;
                    fits
                }
                // A value the schema allows but no append writes: tampered.
                Err(_) => false,
            };
            if !ok {
                first_bad = Some(seq);
            }
            expect_seq += 1;
        }
        if i64::try_from(n).unwrap_or(0) < BATCH {
            break;
        }
    }
    if first_bad.is_none() && (expect_seq - 1 != last_seq || expect_prev != last_hash) {
        // The newest entries were removed (or the head was edited).
        first_bad = Some(expect_seq.min(last_seq));
    }
    Ok(VerifyReport {
        entries,
        first_bad_seq: first_bad,
    })
}

/// Entries matching `filter`, newest first. Only for callers with `ReadAudit`; anyone else gets
/// [`StoreError::NotFound`], as if there were no log.
pub fn list(
    conn: &mut dyn Conn,
    caller: &Caller,
    filter: &AuditFilter,
    page: AuditPageReq,
) -> Result<AuditPage> {
    if !caller.has(Permission::ReadAudit) {
        return Err(StoreError::NotFound);
    }
    let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let mut conds: Vec<String> = Vec::new();
    let mut ps: Vec<Value> = Vec::new();
    let mut cond = |c: &str, v: Value, ps: &mut Vec<Value>| {
        ps.push(v);
        conds.push(format!("{c} ${}", ps.len()));
    };
    if let Some(b) = page.before_seq {
        cond("seq <", b.into(), &mut ps);
    }
    if let Some(a) = filter.actor {
        cond("actor =", a.into(), &mut ps);
    }
    if let Some(a) = &filter.action {
        cond("action =", a.clone().into(), &mut ps);
    }
    if let Some(t) = filter.target_id {
        cond("target_id =", t.into(), &mut ps);
    }
    if let Some(f) = filter.from {
        cond("at >=", f.into(), &mut ps);
    }
    if let Some(u) = filter.until {
        cond("at <", u.into(), &mut ps);
    }
    let wher = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    ps.push((limit + 1).into());
    let rows = conn.query(
        &format!(
            "SELECT {ENTRY_COLS} FROM audit_log {wher} ORDER BY seq DESC LIMIT ${}",
            ps.len()
        ),
        &ps,
    )?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows.iter().take(usize::try_from(limit).unwrap_or(0)) {
        items.push(read_entry(r)?.rec);
    }
    let next_before_seq = if rows.len() > items.len() {
        items.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage {
        items,
        next_before_seq,
    })
}

/// Delete entries older than `before` (retention) and move the chain's anchor to the oldest
/// entry kept, so [`verify`] still checks everything that remains. Returns how many went.
pub fn purge_before(tx: &mut Tx, before: DateTime<Utc>) -> Result<u64> {
    let conn = tx.conn();
    // Lock the head first, like an append, so no entry is chained while the anchor moves.
    conn.execute(
        "UPDATE audit_head SET last_seq = last_seq WHERE id = 1",
        &[],
    )?;
    let keep = conn.query_one(
        "SELECT seq, prev_hash FROM audit_log WHERE at >= $1 ORDER BY seq LIMIT 1",
        &params![before],
    )?;
    let (first_seq, first_prev): (i64, Vec<u8>) = match keep {
        Some(r) => (r.get("seq")?, r.get("prev_hash")?),
        None => {
            // Nothing is kept: the chain restarts after the last entry.
            let h = conn
                .query_one(
                    "SELECT last_seq, last_hash FROM audit_head WHERE id = 1",
                    &[],
                )?
                .ok_or_else(|| StoreError::Backend("audit_head row missing".into()))?;
            (h.get::<i64>("last_seq")? + 1, h.get("last_hash")?)
        }
    };
    let n = conn.execute("DELETE FROM audit_log WHERE seq < $1", &params![first_seq])?;
    conn.execute(
        "UPDATE audit_head SET first_seq = $1, first_prev_hash = $2 WHERE id = 1",
        &params![first_seq, first_prev],
    )?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_every_field() {
        let at = DateTime::parse_from_rfc3339("2026-11-02T01:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        let id = Uuid::nil();
        let base = entry_hash(&GENESIS, 1, id, at, None, "a", None, None, None, "{}");
        let variants = [
            entry_hash(&[1; 32], 1, id, at, None, "a", None, None, None, "{}"),
            entry_hash(&GENESIS, 2, id, at, None, "a", None, None, None, "{}"),
            entry_hash(
                &GENESIS,
                1,
                Uuid::max(),
                at,
                None,
                "a",
                None,
                None,
                None,
                "{}",
            ),
            entry_hash(
                &GENESIS,
                1,
                id,
                at + chrono::Duration::microseconds(1),
                None,
                "a",
                None,
                None,
                None,
                "{}",
            ),
            entry_hash(&GENESIS, 1, id, at, Some(id), "a", None, None, None, "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "b", None, None, None, "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "a", Some(""), None, None, "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "a", None, Some(id), None, "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "a", None, None, Some(""), "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "a", None, None, None, "{ }"),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(&base, v, "variant {i}");
        }
        // Field boundaries are unambiguous.
        assert_ne!(
            entry_hash(&GENESIS, 1, id, at, None, "ab", Some("c"), None, None, "{}"),
            entry_hash(&GENESIS, 1, id, at, None, "a", Some("bc"), None, None, "{}"),
        );
    }
}
