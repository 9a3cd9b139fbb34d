//! The channels a resident account adds to be reached by warnings (issue 4), besides the in-app
//! banner and SMS to the person's own phone:
//!
//! - **e-mail**: the resident gives an address; a six-digit code is sent to it; the address
//!   counts only once the code has come back ([`start_email`], [`confirm_email`]). A wrong code
//!   counts against the address ([`MAX_ATTEMPTS`]); a code lasts [`CODE_MINUTES`].
//! - **WeChat**: the service account's openid of the resident, bound through WeChat's OAuth
//!   (the server exchanges the code WeChat gave for the openid), so it is verified at binding
//!   ([`bind_wechat`]).
//!
//! The address is personal data: sealed with the row's own data key (so its change-log images
//! are sealed too), shown only masked, opened only to send ([`verified_for_people`]). A user has
//! at most one channel of each kind; giving a new address replaces the old one.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::tx::Tx;
use crate::value::Value;
use crate::Env;
use serde_json::Value as Json;

/// The kinds a resident can add.
pub const KINDS: &[&str] = &["email", "wechat"];
/// Wrong codes an e-mail address takes before a new code must be asked for.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long an e-mail code lasts.
pub const CODE_MINUTES: i64 = 30;
/// Seal context of the address.
const FIELD: &str = "resident_channels.address";
/// Keyed-hash context of the codes.
const CODE_CONTEXT: &str = "resident_channels.code";

/// A channel as the resident sees it: masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    /// `email` or `wechat`.
    pub kind: String,
    /// The address masked (`z***@example.com`, `oAbC***yz`).
    pub address_mask: String,
    /// Whether warnings go to it (an e-mail address once its code came back).
    pub verified: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A verified channel of an account linked to a person, opened for sending.
#[derive(Clone)]
pub struct PersonChannel {
    pub person_id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub address: String,
    pub address_mask: String,
}

impl std::fmt::Debug for PersonChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonChannel")
            .field("person_id", &self.person_id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("address_mask", &self.address_mask)
            .finish()
    }
}

fn bad(code: &'static str, field: &str) -> StoreError {
    StoreError::invalid(code, field)
}

/// An e-mail address in the shape SMTP relays take: `local@domain.tld`, at most 254
/// characters, no spaces or control characters, one `@`, a dot in the domain; lower-cased
/// domain.
pub fn parse_email(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad("value.required", "address"));
    }
    let ok_chars = s
        .chars()
        .all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>' && c != ',');
    let Some((local, domain)) = s.split_once('@') else {
        return Err(bad("channel.email_invalid", "address"));
    };
    let domain_ok = !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    if !ok_chars || local.is_empty() || local.len() > 64 || s.len() > 254 || !domain_ok {
        return Err(bad("channel.email_invalid", "address"));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// A WeChat openid: 10–64 of `A-Z a-z 0-9 _ -`.
pub fn parse_openid(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (10..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(bad("channel.openid_invalid", "openid"));
    }
    Ok(s.to_owned())
}

/// `z***@example.com`: the first character of the local part and the domain.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `oAbC***yz`: the first four and the last two characters.
pub fn mask_openid(openid: &str) -> String {
    let head: String = openid.chars().take(4).collect();
    let tail: String = openid
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}***{tail}")
}

fn check_kind(kind: &str) -> Result<&'static str> {
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .ok_or_else(|| bad("channel.kind_unknown", "kind"))
}

fn from_row(r: &crate::value::Row) -> Result<Channel> {
    let verified_at: Option<DateTime<Utc>> = r.get("verified_at")?;
    Ok(Channel {
        kind: r.get("kind")?,
        address_mask: r.get("address_mask")?,
        verified: verified_at.is_some(),
        verified_at,
        updated_at: r.get("updated_at")?,
    })
}

const COLS: &str = "kind, address_mask, verified_at, updated_at";

/// The user's channels, masked, e-mail first.
pub fn list(conn: &mut dyn Conn, user_id: Uuid) -> Result<Vec<Channel>> {
    conn.query(
        &format!("SELECT {COLS} FROM resident_channels WHERE user_id = $1 ORDER BY kind"),
        &params![user_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

fn existing(tx: &mut Tx, user_id: Uuid, kind: &str) -> Result<Option<(Uuid, Uuid)>> {
    tx.query_one(
        "SELECT id, key_id FROM resident_channels WHERE user_id = $1 AND kind = $2",
        &params![user_id, kind],
    )?
    .map(|r| Ok((r.get("id")?, r.get("key_id")?)))
    .transpose()
}

/// Insert or replace the user's channel of `kind` with `address`; `verified` stamps it now.
fn put(
    tx: &mut Tx,
    user_id: Uuid,
    kind: &'static str,
    address: &str,
    mask: String,
    verified: bool,
    code_hash: Option<Vec<u8>>,
) -> Result<Channel> {
    let now = tx.now();
    let verified_at: Value = if verified { now.into() } else { Value::Null };
    let expires: Value = if code_hash.is_some() {
        (now + Duration::minutes(CODE_MINUTES)).into()
    } else {
        Value::Null
    };
    let code: Value = code_hash.map_or(Value::Null, Value::Bytes);
    let row = match existing(tx, user_id, kind)? {
        Some((id, key_id)) => {
            let ct = tx.seal(key_id, FIELD, address.as_bytes())?;
            tx.update(
                "resident_channels",
                id,
                &[
                    ("address_ct", Value::Bytes(ct)),
                    ("address_mask", mask.into()),
                    ("verified_at", verified_at),
                    ("code_hash", code),
                    ("code_expires_at", expires),
                    ("code_attempts", 0i64.into()),
                    ("updated_at", now.into()),
                ],
            )?
        }
        None => {
            let id = tx.new_id();
            let key_id = tx.new_data_key()?;
            let ct = tx.seal(key_id, FIELD, address.as_bytes())?;
            tx.insert(
                "resident_channels",
                &[
                    ("id", id.into()),
                    ("key_id", key_id.into()),
                    ("user_id", user_id.into()),
                    ("kind", kind.into()),
                    ("address_ct", Value::Bytes(ct)),
                    ("address_mask", mask.into()),
                    ("verified_at", verified_at),
                    ("code_hash", code),
                    ("code_expires_at", expires),
                    ("code_attempts", 0i64.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?
        }
    };
    from_row(&row)
}

/// Record `address` as the user's e-mail, waiting for `code` (sent to it by the caller after
/// commit). Returns the normalised address (to send the code to) and the channel.
pub fn start_email(
    tx: &mut Tx,
    user_id: Uuid,
    address: &str,
    code: &str,
) -> Result<(String, Channel)> {
    let address = parse_email(address)?;
    let hash = tx.env().keys.blind(CODE_CONTEXT, code);
    let mask = mask_email(&address);
    let ch = put(tx, user_id, "email", &address, mask, false, Some(hash))?;
    Ok((address, ch))
}

/// Check the code sent to the user's pending e-mail address; on success the address is
/// verified. Errors: no address waiting `channel.no_pending` (field `code`), expired
/// `channel.code_expired`, too many wrong codes `channel.code_locked`, wrong `channel.code_wrong`
/// (the attempt is counted, in the same transaction as the refusal is returned, so the caller
/// must commit it: see [`CodeCheck`]).
pub fn confirm_email(tx: &mut Tx, user_id: Uuid, code: &str) -> Result<CodeCheck> {
    let Some(r) = tx.query_one(
        "SELECT id, code_hash, code_expires_at, code_attempts, verified_at FROM resident_channels \
         WHERE user_id = $1 AND kind = 'email'",
        &params![user_id],
    )?
    else {
        return Err(bad("channel.no_pending", "code"));
    };
    let id: Uuid = r.get("id")?;
    let hash: Option<Vec<u8>> = r.get("code_hash")?;
    let expires: Option<DateTime<Utc>> = r.get("code_expires_at")?;
    let attempts: i64 = r.get("code_attempts")?;
    let (Some(hash), Some(expires)) = (hash, expires) else {
        return Err(bad("channel.no_pending", "code"));
    };
    let now = tx.now();
    if now > expires {
        return Ok(CodeCheck::Refused("channel.code_expired"));
    }
    if attempts >= MAX_ATTEMPTS {
        return Ok(CodeCheck::Refused("channel.code_locked"));
    }
    let given = tx.env().keys.blind(CODE_CONTEXT, code.trim());
    if !anxin_crypto::constant_time_eq(&given, &hash) {
        tx.update(
            "resident_channels",
            id,
            &[
                ("code_attempts", (attempts + 1).into()),
                ("updated_at", now.into()),
            ],
        )?;
        return Ok(CodeCheck::Refused(if attempts + 1 >= MAX_ATTEMPTS {
            "channel.code_locked"
        } else {
            "channel.code_wrong"
        }));
    }
    let row = tx.update(
        "resident_channels",
        id,
        &[
            ("verified_at", now.into()),
            ("code_hash", Value::Null),
            ("code_expires_at", Value::Null),
            ("code_attempts", 0i64.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(CodeCheck::Verified(from_row(&row)?))
}

/// What checking an e-mail code gave. A refusal is a value, not an error, so the counted
/// attempt commits with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Verified(Channel),
    /// `channel.code_wrong`, `channel.code_expired` or `channel.code_locked`.
    Refused(&'static str),
}

/// Bind the openid WeChat's OAuth gave for this user (replacing an earlier one).
pub fn bind_wechat(tx: &mut Tx, user_id: Uuid, openid: &str) -> Result<Channel> {
    let openid = parse_openid(openid)?;
    let mask = mask_openid(&openid);
    put(tx, user_id, "wechat", &openid, mask, true, None)
}

/// Remove the user's channel of `kind`; `false` when there was none.
pub fn remove(tx: &mut Tx, user_id: Uuid, kind: &str) -> Result<bool> {
    let kind = check_kind(kind)?;
    match existing(tx, user_id, kind)? {
        Some((id, _)) => {
            tx.delete("resident_channels", id)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The verified channels of the enabled accounts linked to `people`, opened for sending: one
/// entry per (person, account, kind). Callers dedupe per account when several of the people
/// share one.
pub fn verified_for_people(
    conn: &mut dyn Conn,
    env: &Env,
    people: &[Uuid],
) -> Result<Vec<PersonChannel>> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    let d = conn.dialect();
    let mut out = Vec::new();
    for chunk in people.chunks(5_000) {
        let ids = Value::Json(Json::Array(
            chunk.iter().map(|u| Json::String(u.to_string())).collect(),
        ));
        let rows = conn.query(
            &format!(
                "SELECT up.person_id, rc.user_id, rc.kind, rc.address_ct, rc.address_mask \
                 FROM user_people up JOIN users u ON u.id = up.user_id \
                 JOIN resident_channels rc ON rc.user_id = up.user_id \
                 WHERE u.disabled = FALSE AND rc.verified_at IS NOT NULL AND {} \
                 ORDER BY up.person_id, rc.user_id, rc.kind",
                d.in_json_list("up.person_id", 1)
            ),
            &[ids],
        )?;
        for r in rows {
            let ct: Vec<u8> = r.get("address_ct")?;
            out.push(PersonChannel {
                person_id: r.get("person_id")?,
                user_id: r.get("user_id")?,
                kind: r.get("kind")?,
                address: env.keys.open_string(conn, FIELD, &ct)?,
                address_mask: r.get("address_mask")?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_masked() {
        assert_eq!(
            parse_email(" Zhang.San@Example.COM ").unwrap(),
            "Zhang.San@example.com"
        );
        for bad in [
            "", "no-at", "a@b", "a@.b.cn", "a b@c.cn", "@c.cn", "a@c..cn", "a@b@c.cn", "<a@b.cn>",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(mask_email("zhangsan@example.com"), "z***@example.com");
        assert_eq!(mask_openid("oAbCdEfGhIjKyz"), "oAbC***yz");
        assert!(parse_openid("short").is_err());
        assert!(parse_openid("oAbC dEfGhIjK").is_err());
        assert_eq!(parse_openid("oAbC-dEf_GhIjK").unwrap(), "oAbC-dEf_GhIjK");
    }
}
