//! Accounts: users, sign-in state, sessions, one-time codes, API tokens and grants.
//!
//! Three kinds of user:
//! - **staff** sign in with a username and an Argon2id password (PHC string; the HTTP layer
//!   hashes, so the cost is paid off the database thread), plus TOTP when they hold an
//!   administrator role;
//! - **residents** are identified by their phone's blind index (`users.phone_bidx`, context
//!   [`BIDX_PHONE`], shared with `people.phone_bidx`) and may act as the people linked to them in
//!   `user_people` (several people can share one phone: an elderly parent and their child);
//! - **integration** users exist only to hold API tokens.
//!
//! Users, grants and API tokens are records: every write goes through `Tx::insert/update` and
//! lands in the change log (a user's image is sealed with the user's data key). Sessions, sign-in
//! state, one-time codes and TOTP enrolments are operational and written unlogged. Secrets are
//! never stored: session and API tokens as SHA-256, one-time codes as a keyed hash, TOTP secrets
//! sealed.
//!
//! Who may change accounts: creating users and tokens needs `ManageAccounts`, grants need
//! `ManageGrants` over the grant's scope (a scope outside the caller's reach is "not found").
//! Separation of duties (三权分立): no one holds both `SecurityAdmin` and `AuditAdmin`, and no
//! one grants to themselves.

use anxin_crypto::{constant_time_eq, hash_token, new_token};
use anxin_domain::roles::{Permission, Role, Scope, ScopeKind, Validity};
use anxin_domain::{mask_name, mask_phone, Level, Phone};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::keys::Keys;
use crate::params;
use crate::scope::Caller;
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Env;

pub use crate::people::BIDX_PHONE;

/// The field TOTP secrets are sealed under (pending and confirmed alike).
pub const TOTP_FIELD: &str = "users.totp_secret";
/// Blind-index context of one-time sign-in codes (keyed, so a copied table reveals nothing).
const CODE_CONTEXT: &str = "login_codes.code";
/// A session's `last_seen` is written at most this often: most requests only read.
pub const SESSION_TOUCH_SECS: i64 = 60;
/// API tokens carry a prefix so secret scanners and log filters can recognise them.
pub const API_TOKEN_PREFIX: &str = "anx_";

/// The error for a missing permission. Distinct from not-found: the caller may know the record
/// exists (the permission is about an action, not a place).
pub const FORBIDDEN: &str = "auth.forbidden";

fn require(caller: &Caller, p: Permission) -> Result<()> {
    if caller.has(p) {
        Ok(())
    } else {
        Err(StoreError::Forbidden(FORBIDDEN))
    }
}

// ---------------------------------------------------------------------------------------------
// Users

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    Staff,
    Resident,
    Integration,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Staff => "staff",
            UserKind::Resident => "resident",
            UserKind::Integration => "integration",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "staff" => Ok(UserKind::Staff),
            "resident" => Ok(UserKind::Resident),
            "integration" => Ok(UserKind::Integration),
            _ => Err(StoreError::invalid("user.kind_invalid", "kind")),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: Uuid,
    pub kind: UserKind,
    pub username: Option<String>,
    pub display_name: String,
    pub disabled: bool,
    pub totp_enrolled: bool,
    pub created_at: DateTime<Utc>,
}

const USER_COLS: &str = "u.id, u.kind, u.username, u.display_name, u.disabled, \
     u.totp_secret_ct IS NOT NULL AS totp_enrolled, u.created_at";

fn user_from(r: &Row) -> Result<User> {
    Ok(User {
        id: r.get("id")?,
        kind: UserKind::parse(&r.get::<String>("kind")?)?,
        username: r.get("username")?,
        display_name: r.get("display_name")?,
        disabled: r.get("disabled")?,
        totp_enrolled: r.get("totp_enrolled")?,
        created_at: r.get("created_at")?,
    })
}

/// Usernames are compared lower-case: 3 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn normalize_username(raw: &str) -> Result<String> {
    let u = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&u.len())
        && u.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(u)
    } else {
        Err(StoreError::invalid("user.username_invalid", "username"))
    }
}

fn parse_display_name(raw: &str) -> Result<String> {
    let d = raw.trim();
    if d.is_empty() || d.chars().count() > 100 || d.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "user.display_name_invalid",
            "display_name",
        ));
    }
    Ok(d.to_owned())
}

/// The blind index a resident account (and a person) is found by.
pub fn phone_bidx(keys: &Keys, phone: &Phone) -> Vec<u8> {
    keys.blind(BIDX_PHONE, phone.as_str())
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub kind: UserKind,
    /// Staff and integration users.
    pub username: Option<String>,
    pub display_name: String,
    /// An Argon2id PHC string; staff only.
    pub password_hash: Option<String>,
    /// Residents only.
    pub phone: Option<Phone>,
}

/// Create a user. Needs `ManageAccounts`.
pub fn create_user(tx: &mut Tx, caller: &Caller, new: &NewUser) -> Result<User> {
    require(caller, Permission::ManageAccounts)?;
    insert_user(tx, new)
}

fn insert_user(tx: &mut Tx, new: &NewUser) -> Result<User> {
    let display_name = parse_display_name(&new.display_name)?;
    let username = new
        .username
        .as_deref()
        .map(normalize_username)
        .transpose()?;
    match new.kind {
        UserKind::Staff if username.is_none() || new.password_hash.is_none() => {
            return Err(StoreError::invalid("user.credentials_required", "password"));
        }
        UserKind::Integration if username.is_none() => {
            return Err(StoreError::invalid("user.username_invalid", "username"));
        }
        UserKind::Resident if new.phone.is_none() => {
            return Err(StoreError::invalid("user.phone_required", "phone"));
        }
        _ => {}
    }
    let bidx = new.phone.as_ref().map(|p| phone_bidx(&tx.env().keys, p));
    let id = tx.new_id();
    let key_id = tx.new_data_key()?;
    let now = tx.now();
    tx.insert(
        "users",
        &[
            ("id", id.into()),
            ("key_id", key_id.into()),
            ("kind", new.kind.as_str().into()),
            ("username", username.into()),
            ("display_name", display_name.into()),
            (
                "password_hash",
                match new.kind {
                    UserKind::Staff => new.password_hash.clone().into(),
                    _ => Value::Null,
                },
            ),
            ("phone_bidx", bidx.into()),
            ("disabled", false.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    get_user(tx.conn(), id)
}

pub fn get_user(conn: &mut dyn Conn, id: Uuid) -> Result<User> {
    let row = conn
        .query_one(
            &format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    user_from(&row)
}

/// A staff user and their password hash, for sign-in. `None` for unknown names.
pub fn user_by_username(
    conn: &mut dyn Conn,
    username: &str,
) -> Result<Option<(User, Option<String>)>> {
    let Ok(u) = normalize_username(username) else {
        return Ok(None);
    };
    let row = conn.query_one(
        &format!("SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = $1"),
        &params![u],
    )?;
    row.map(|r| Ok((user_from(&r)?, r.get("password_hash")?)))
        .transpose()
}

/// The resident account of a phone (by blind index), if there is one.
pub fn resident_by_phone(conn: &mut dyn Conn, bidx: &[u8]) -> Result<Option<User>> {
    let row = conn.query_one(
        &format!(
            "SELECT {USER_COLS} FROM users u WHERE u.kind = 'resident' AND u.phone_bidx = $1 \
             ORDER BY u.created_at LIMIT 1"
        ),
        &params![bidx.to_vec()],
    )?;
    row.as_ref().map(user_from).transpose()
}

/// Replace a password hash (after a successful sign-in with an outdated hash, or a reset).
pub fn set_password_hash(tx: &mut Tx, user_id: Uuid, phc: &str) -> Result<()> {
    let now = tx.now();
    tx.update(
        "users",
        user_id,
        &[("password_hash", phc.into()), ("updated_at", now.into())],
    )?;
    Ok(())
}

/// Disable a user: their sessions end at once, their tokens stop working. Needs `ManageAccounts`;
/// no one disables themselves (the last security administrator could lock everyone out).
pub fn disable_user(tx: &mut Tx, caller: &Caller, user_id: Uuid) -> Result<User> {
    require(caller, Permission::ManageAccounts)?;
    if caller.user_id == Some(user_id) {
        return Err(StoreError::Forbidden("user.self"));
    }
    let now = tx.now();
    tx.update(
        "users",
        user_id,
        &[("disabled", true.into()), ("updated_at", now.into())],
    )?;
    end_user_sessions(tx, user_id)?;
    get_user(tx.conn(), user_id)
}

// ---------------------------------------------------------------------------------------------
// Sign-in state: failures, lockout, TOTP replay guard

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failed: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub totp_last_step: Option<i64>,
}

impl LoginState {
    pub fn locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|u| now < u)
    }
}

pub fn login_state(conn: &mut dyn Conn, user_id: Uuid) -> Result<LoginState> {
    let row = conn.query_one(
        "SELECT failed, locked_until, last_login_at, totp_last_step FROM login_state WHERE user_id = $1",
        &params![user_id],
    )?;
    Ok(match row {
        Some(r) => LoginState {
            failed: r.get("failed")?,
            locked_until: r.get("locked_until")?,
            last_login_at: r.get("last_login_at")?,
            totp_last_step: r.get("totp_last_step")?,
        },
        None => LoginState::default(),
    })
}

fn ensure_login_state(tx: &mut Tx, user_id: Uuid) -> Result<()> {
    tx.execute_unlogged(
        "INSERT INTO login_state (user_id, failed) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING",
        &params![user_id],
    )?;
    Ok(())
}

/// Count a failed sign-in. When the count reaches `threshold` the account locks for `lock_for`
/// and the count starts again; returns the lock's end when this failure locked it.
pub fn record_login_failure(
    tx: &mut Tx,
    user_id: Uuid,
    threshold: u32,
    lock_for: Duration,
) -> Result<Option<DateTime<Utc>>> {
    ensure_login_state(tx, user_id)?;
    let failed = tx
        .query_one(
            "UPDATE login_state SET failed = failed + 1 WHERE user_id = $1 RETURNING failed",
            &params![user_id],
        )?
        .map(|r| r.get::<i64>("failed"))
        .transpose()?
        .unwrap_or(1);
    if failed < i64::from(threshold) {
        return Ok(None);
    }
    let until = tx.now() + lock_for;
    tx.execute_unlogged(
        "UPDATE login_state SET failed = 0, locked_until = $2 WHERE user_id = $1",
        &params![user_id, until],
    )?;
    Ok(Some(until))
}

/// A successful sign-in: failures forgotten, lock lifted, time kept.
pub fn record_login_success(tx: &mut Tx, user_id: Uuid) -> Result<()> {
    ensure_login_state(tx, user_id)?;
    let now = tx.now();
    tx.execute_unlogged(
        "UPDATE login_state SET failed = 0, locked_until = NULL, last_login_at = $2 WHERE user_id = $1",
        &params![user_id, now],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TOTP

fn unix_secs(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

fn user_key(conn: &mut dyn Conn, user_id: Uuid) -> Result<Uuid> {
    conn.query_one("SELECT key_id FROM users WHERE id = $1", &params![user_id])?
        .ok_or(StoreError::NotFound)?
        .get("key_id")
}

/// Keep `secret` as the user's pending TOTP secret, replacing any earlier pending one. It takes
/// effect only through [`confirm_totp`]. Refused once a secret is confirmed (`totp.enrolled`):
/// a second enrolment would let a stolen session replace the second factor.
pub fn begin_totp(tx: &mut Tx, user_id: Uuid, secret: &[u8]) -> Result<()> {
    if get_user(tx.conn(), user_id)?.totp_enrolled {
        return Err(StoreError::Conflict {
            code: "totp.enrolled",
            detail: "a TOTP secret is already confirmed".into(),
        });
    }
    let key_id = user_key(tx.conn(), user_id)?;
    let ct = tx.seal(key_id, TOTP_FIELD, secret)?;
    let now = tx.now();
    tx.execute_unlogged(
        "INSERT INTO totp_enrolments (user_id, secret_ct, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret_ct = excluded.secret_ct, created_at = excluded.created_at",
        &params![user_id, ct, now],
    )?;
    Ok(())
}

/// Confirm the pending secret with a current code. On success the secret becomes the user's
/// second factor and the code's step is spent. `false` for a wrong code or no pending secret.
pub fn confirm_totp(tx: &mut Tx, user_id: Uuid, code: &str) -> Result<bool> {
    let Some(row) = tx.query_one(
        "SELECT secret_ct FROM totp_enrolments WHERE user_id = $1",
        &params![user_id],
    )?
    else {
        return Ok(false);
    };
    let ct: Vec<u8> = row.get("secret_ct")?;
    let secret = tx.env().keys.open(tx.conn(), TOTP_FIELD, &ct)?;
    let Some(step) = anxin_crypto::verify_totp_step(&secret, code, unix_secs(tx.now())) else {
        return Ok(false);
    };
    let now = tx.now();
    tx.update(
        "users",
        user_id,
        &[("totp_secret_ct", ct.into()), ("updated_at", now.into())],
    )?;
    tx.execute_unlogged(
        "DELETE FROM totp_enrolments WHERE user_id = $1",
        &params![user_id],
    )?;
    spend_totp_step(tx, user_id, step)
}

/// The user's confirmed TOTP secret.
pub fn totp_secret(conn: &mut dyn Conn, env: &Env, user_id: Uuid) -> Result<Option<Vec<u8>>> {
    let row = conn
        .query_one(
            "SELECT totp_secret_ct FROM users WHERE id = $1",
            &params![user_id],
        )?
        .ok_or(StoreError::NotFound)?;
    let ct: Option<Vec<u8>> = row.get("totp_secret_ct")?;
    ct.map(|ct| env.keys.open(conn, TOTP_FIELD, &ct))
        .transpose()
}

/// Check a TOTP code against the user's confirmed secret at the write's time. A code whose step
/// was already used (or is older than one used) is refused, so an observed code cannot be
/// replayed.
pub fn check_totp(tx: &mut Tx, user_id: Uuid, code: &str) -> Result<bool> {
    let env = tx.env();
    let Some(secret) = totp_secret(tx.conn(), env, user_id)? else {
        return Ok(false);
    };
    match anxin_crypto::verify_totp_step(&secret, code, unix_secs(tx.now())) {
        Some(step) => spend_totp_step(tx, user_id, step),
        None => Ok(false),
    }
}

fn spend_totp_step(tx: &mut Tx, user_id: Uuid, step: u64) -> Result<bool> {
    let step = i64::try_from(step).map_err(|_| StoreError::invalid("totp.invalid", "totp"))?;
    ensure_login_state(tx, user_id)?;
    let n = tx.execute_unlogged(
        "UPDATE login_state SET totp_last_step = $2 WHERE user_id = $1 \
         AND (totp_last_step IS NULL OR totp_last_step < $2)",
        &params![user_id, step],
    )?;
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// A new session: the token and CSRF token exist in clear only in this value.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub token: String,
    pub csrf: String,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub user: User,
    pub person_id: Option<Uuid>,
    pub csrf: String,
    /// The second factor was given in this session.
    pub mfa: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl SessionRow {
    /// Whether the session has been idle longer than `idle` at `now`.
    pub fn idle_at(&self, now: DateTime<Utc>, idle: Duration) -> bool {
        now - self.last_seen > idle
    }
    /// Whether `last_seen` is old enough to be worth writing again.
    pub fn needs_touch(&self, now: DateTime<Utc>) -> bool {
        now - self.last_seen >= Duration::seconds(SESSION_TOUCH_SECS)
    }
}

pub fn create_session(
    tx: &mut Tx,
    user_id: Uuid,
    person_id: Option<Uuid>,
    mfa: bool,
    ip: Option<&str>,
) -> Result<NewSession> {
    let id = tx.new_id();
    let token = new_token();
    let csrf = new_token();
    let now = tx.now();
    tx.execute_unlogged(
        "INSERT INTO sessions (id, token_hash, user_id, person_id, csrf, mfa, ip, created_at, last_seen) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        &params![id, hash_token(&token).to_vec(), user_id, person_id, csrf.clone(), mfa, ip, now],
    )?;
    Ok(NewSession { id, token, csrf })
}

/// The session a cookie token names, with its user. Says nothing about idleness: the caller
/// compares [`SessionRow::idle_at`] with its configured timeout.
pub fn session_by_token(conn: &mut dyn Conn, token: &str) -> Result<Option<SessionRow>> {
    let row = conn.query_one(
        &format!(
            "SELECT {USER_COLS}, s.id AS session_id, s.person_id, s.csrf, s.mfa, \
             s.created_at AS session_created_at, s.last_seen FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        ),
        &params![hash_token(token).to_vec()],
    )?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SessionRow {
        id: r.get("session_id")?,
        user: user_from(&r)?,
        person_id: r.get("person_id")?,
        csrf: r.get("csrf")?,
        mfa: r.get("mfa")?,
        created_at: r.get("session_created_at")?,
        last_seen: r.get("last_seen")?,
    }))
}

/// Mark the session as used now.
pub fn touch_session(tx: &mut Tx, id: Uuid) -> Result<()> {
    let now = tx.now();
    tx.execute_unlogged(
        "UPDATE sessions SET last_seen = $2 WHERE id = $1",
        &params![id, now],
    )?;
    Ok(())
}

pub fn end_session(tx: &mut Tx, id: Uuid) -> Result<()> {
    tx.execute_unlogged("DELETE FROM sessions WHERE id = $1", &params![id])?;
    Ok(())
}

pub fn end_user_sessions(tx: &mut Tx, user_id: Uuid) -> Result<u64> {
    tx.execute_unlogged("DELETE FROM sessions WHERE user_id = $1", &params![user_id])
}

/// Record that the second factor was given in this session.
pub fn set_session_mfa(tx: &mut Tx, id: Uuid) -> Result<()> {
    tx.execute_unlogged(
        "UPDATE sessions SET mfa = $2 WHERE id = $1",
        &params![id, true],
    )?;
    Ok(())
}

/// Choose which linked person a resident session acts as. A person not linked to the session's
/// user is not found.
pub fn choose_person(
    tx: &mut Tx,
    session_id: Uuid,
    user_id: Uuid,
    person_id: Uuid,
) -> Result<LinkedPerson> {
    let person = linked_people(tx.conn(), user_id)?
        .into_iter()
        .find(|p| p.person_id == person_id)
        .ok_or(StoreError::NotFound)?;
    tx.execute_unlogged(
        "UPDATE sessions SET person_id = $2 WHERE id = $1",
        &params![session_id, person_id],
    )?;
    Ok(person)
}

// ---------------------------------------------------------------------------------------------
// Residents: the people behind a phone

/// A person a resident account may act as, as the resident sees it: masked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkedPerson {
    pub person_id: Uuid,
    pub name_masked: String,
    pub household_id: Option<Uuid>,
    pub community_id: Uuid,
}

pub fn linked_people(conn: &mut dyn Conn, user_id: Uuid) -> Result<Vec<LinkedPerson>> {
    let rows = conn.query(
        "SELECT p.id, p.name, p.household_id, p.community_id FROM user_people up \
         JOIN people p ON p.id = up.person_id WHERE up.user_id = $1 ORDER BY p.id",
        &params![user_id],
    )?;
    rows.iter()
        .map(|r| {
            Ok(LinkedPerson {
                person_id: r.get("id")?,
                name_masked: mask_name(&r.get::<String>("name")?),
                household_id: r.get("household_id")?,
                community_id: r.get("community_id")?,
            })
        })
        .collect()
}

/// Link a person to a resident account (a worker acting for someone without a phone, 代办).
/// Needs `ManageAccounts`.
pub fn link_person(tx: &mut Tx, caller: &Caller, user_id: Uuid, person_id: Uuid) -> Result<()> {
    require(caller, Permission::ManageAccounts)?;
    if get_user(tx.conn(), user_id)?.kind != UserKind::Resident {
        return Err(StoreError::invalid("user.not_resident", "user_id"));
    }
    insert_link(tx, user_id, person_id)
}

fn insert_link(tx: &mut Tx, user_id: Uuid, person_id: Uuid) -> Result<()> {
    tx.execute_unlogged(
        "INSERT INTO user_people (user_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &params![user_id, person_id],
    )?;
    Ok(())
}

/// Whether anyone could sign in with this phone: a resident account or a person registered with
/// it. Decides whether a code is sent; the answer never reaches the client.
pub fn phone_known(conn: &mut dyn Conn, bidx: &[u8]) -> Result<bool> {
    let n = conn.query_i64(
        "SELECT (SELECT count(*) FROM users WHERE kind = 'resident' AND phone_bidx = $1 AND NOT disabled) \
         + (SELECT count(*) FROM people WHERE phone_bidx = $1)",
        &params![bidx.to_vec()],
    )?;
    Ok(n > 0)
}

/// After a resident proved they hold `phone`: their account, created on first sign-in, and linked
/// to every person registered with that phone (links added by workers are kept). `None` when
/// neither an account nor a person has the phone.
pub fn provision_resident(tx: &mut Tx, phone: &Phone) -> Result<Option<User>> {
    let bidx = phone_bidx(&tx.env().keys, phone);
    let people: Vec<Uuid> = tx
        .query(
            "SELECT id FROM people WHERE phone_bidx = $1",
            &params![bidx.clone()],
        )?
        .iter()
        .map(|r| r.get("id"))
        .collect::<Result<_>>()?;
    let user = match resident_by_phone(tx.conn(), &bidx)? {
        Some(u) => u,
        None if people.is_empty() => return Ok(None),
        None => insert_user(
            tx,
            &NewUser {
                kind: UserKind::Resident,
                username: None,
                display_name: mask_phone(phone),
                password_hash: None,
                phone: Some(phone.clone()),
            },
        )?,
    };
    for p in people {
        insert_link(tx, user.id, p)?;
    }
    Ok(Some(user))
}

// ---------------------------------------------------------------------------------------------
// One-time sign-in codes

fn code_hash(keys: &Keys, code_id: Uuid, code: &str) -> Vec<u8> {
    keys.blind(CODE_CONTEXT, &format!("{code_id}:{code}"))
}

/// Store a new code for the phone, valid for `ttl`. Earlier unused codes for the phone stop
/// working: only the latest message counts.
pub fn create_login_code(tx: &mut Tx, bidx: &[u8], code: &str, ttl: Duration) -> Result<Uuid> {
    let id = tx.new_id();
    let now = tx.now();
    let hash = code_hash(&tx.env().keys, id, code);
    tx.execute_unlogged(
        "UPDATE login_codes SET used = $2 WHERE phone_bidx = $1 AND NOT used",
        &params![bidx.to_vec(), true],
    )?;
    tx.execute_unlogged(
        "INSERT INTO login_codes (id, phone_bidx, code_hash, attempts, used, created_at, expires_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6)",
        &params![id, bidx.to_vec(), hash, false, now, now + ttl],
    )?;
    Ok(id)
}

/// Check a code for the phone at the write's time. A right code is spent; a wrong one counts
/// against the code, which stops working after `max_attempts` wrong guesses.
pub fn check_login_code(tx: &mut Tx, bidx: &[u8], code: &str, max_attempts: u32) -> Result<bool> {
    let now = tx.now();
    let Some(row) = tx.query_one(
        "SELECT id, code_hash, attempts FROM login_codes WHERE phone_bidx = $1 AND NOT used \
         AND expires_at > $2 ORDER BY created_at DESC LIMIT 1",
        &params![bidx.to_vec(), now],
    )?
    else {
        return Ok(false);
    };
    let id: Uuid = row.get("id")?;
    let attempts: i64 = row.get("attempts")?;
    if attempts >= i64::from(max_attempts) {
        return Ok(false);
    }
    let stored: Vec<u8> = row.get("code_hash")?;
    let given = code_hash(&tx.env().keys, id, code.trim());
    if constant_time_eq(&stored, &given) {
        tx.execute_unlogged(
            "UPDATE login_codes SET used = $2 WHERE id = $1",
            &params![id, true],
        )?;
        Ok(true)
    } else {
        tx.execute_unlogged(
            "UPDATE login_codes SET attempts = attempts + 1 WHERE id = $1",
            &params![id],
        )?;
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------------
// API tokens

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const TOKEN_COLS: &str = "t.id, t.user_id, t.name, t.expires_at, t.revoked_at, t.created_at";

fn token_from(r: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        name: r.get("name")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
        created_at: r.get("created_at")?,
    })
}

/// Issue an API token for an integration user. Needs `ManageAccounts`. The token is returned
/// once, in clear; only its hash is kept.
pub fn create_api_token(
    tx: &mut Tx,
    caller: &Caller,
    user_id: Uuid,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiToken, String)> {
    require(caller, Permission::ManageAccounts)?;
    let user = get_user(tx.conn(), user_id)?;
    // Only integration users hold tokens: a token stands in for a password and a second factor,
    // so a person's own account never gets one.
    if user.disabled || user.kind != UserKind::Integration {
        return Err(StoreError::invalid("token.user_invalid", "user_id"));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(StoreError::invalid("token.name_invalid", "name"));
    }
    let now = tx.now();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(StoreError::invalid("token.expiry_invalid", "expires_at"));
    }
    let token = format!("{API_TOKEN_PREFIX}{}", new_token());
    let id = tx.new_id();
    let row = tx.insert(
        "api_tokens",
        &[
            ("id", id.into()),
            ("user_id", user_id.into()),
            ("name", name.into()),
            ("token_hash", hash_token(&token).to_vec().into()),
            ("expires_at", expires_at.into()),
            ("revoked_at", Value::Null),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok((token_from(&row)?, token))
}

/// Revoke a token (idempotent). Needs `ManageAccounts`.
pub fn revoke_api_token(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<ApiToken> {
    require(caller, Permission::ManageAccounts)?;
    let row = tx
        .query_one(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens t WHERE t.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    let t = token_from(&row)?;
    if t.revoked_at.is_some() {
        return Ok(t);
    }
    let now = tx.now();
    let row = tx.update(
        "api_tokens",
        id,
        &[("revoked_at", now.into()), ("updated_at", now.into())],
    )?;
    token_from(&row)
}

pub fn list_api_tokens(conn: &mut dyn Conn, user_id: Uuid) -> Result<Vec<ApiToken>> {
    conn.query(
        &format!("SELECT {TOKEN_COLS} FROM api_tokens t WHERE t.user_id = $1 ORDER BY t.created_at, t.id"),
        &params![user_id],
    )?
    .iter()
    .map(token_from)
    .collect()
}

/// The token and its user, when the token is live at `now` and its user is enabled.
pub fn user_by_api_token(
    conn: &mut dyn Conn,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(ApiToken, User)>> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = conn.query_one(
        &format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $2)"
        ),
        &params![hash_token(token).to_vec(), now],
    )?;
    let Some(row) = row else { return Ok(None) };
    let t = token_from(&row)?;
    let user = get_user(conn, t.user_id)?;
    if user.disabled {
        return Ok(None);
    }
    Ok(Some((t, user)))
}

// ---------------------------------------------------------------------------------------------
// Grants

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// Given by a security administrator.
    Manual,
    /// Follows from an assignment elsewhere (a volunteer task, a helper pairing), named by
    /// `source_ref`, and revoked with it.
    Assignment,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub id: Uuid,
    pub user_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: Role,
    #[cfg_attr(feature = "openapi", schema(value_type = ScopeDoc))]
    pub scope: Scope,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub source: GrantSource,
    pub source_ref: Option<String>,
    pub created_by: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// In force at the time of the read.
    pub active: bool,
}

/// A grant to create. `source_ref` set makes it an assignment grant.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub role: Role,
    pub scope: Scope,
    pub validity: Validity,
    pub source_ref: Option<String>,
}

const GRANT_COLS: &str =
    "g.id, g.user_id, g.role, g.scope_kind, g.scope_id, g.valid_from, g.valid_to, \
     g.source, g.source_ref, g.created_by, g.revoked_at, g.created_at";

fn grant_from(r: &Row, now: DateTime<Utc>) -> Result<Grant> {
    let bad = |f: &str| StoreError::Backend(format!("grant with unknown {f}"));
    let role: Role = r.get::<String>("role")?.parse().map_err(|_| bad("role"))?;
    let kind: ScopeKind = r
        .get::<String>("scope_kind")?
        .parse()
        .map_err(|_| bad("scope kind"))?;
    let sid: Uuid = r.get("scope_id")?;
    let scope = match kind {
        ScopeKind::Node => Scope::Node(sid),
        ScopeKind::Grid => Scope::Grid(sid),
        ScopeKind::Household => Scope::Household(sid),
    };
    let source = match r.get::<String>("source")?.as_str() {
        "assignment" => GrantSource::Assignment,
        _ => GrantSource::Manual,
    };
    let valid_from: DateTime<Utc> = r.get("valid_from")?;
    let valid_to: Option<DateTime<Utc>> = r.get("valid_to")?;
    let revoked_at: Option<DateTime<Utc>> = r.get("revoked_at")?;
    Ok(Grant {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        role,
        scope,
        valid_from,
        valid_to,
        source,
        source_ref: r.get("source_ref")?,
        created_by: r.get("created_by")?,
        revoked_at,
        created_at: r.get("created_at")?,
        active: revoked_at.is_none() && valid_from <= now && valid_to.is_none_or(|t| now < t),
    })
}

/// The roles no one may hold together (三权分立): who changes access never reads its record.
const EXCLUSIVE: &[(Role, Role)] = &[(Role::SecurityAdmin, Role::AuditAdmin)];

/// The tree node a scope hangs off, checking the scope exists and fits the role. A scope that
/// does not exist, is retired or sits at a level the role cannot be granted on is invalid.
fn scope_node(conn: &mut dyn Conn, role: Role, scope: Scope) -> Result<Uuid> {
    let missing = || StoreError::invalid("grant.scope_not_found", "scope");
    match scope {
        Scope::Node(id) => {
            let r = conn
                .query_one(
                    "SELECT level, status FROM nodes WHERE id = $1",
                    &params![id],
                )?
                .ok_or_else(missing)?;
            if r.get::<String>("status")? != "active" {
                return Err(missing());
            }
            let level: Level = r
                .get::<String>("level")?
                .parse()
                .map_err(|_| StoreError::Backend("node with unknown level".into()))?;
            if !role.node_levels().contains(&level) {
                return Err(StoreError::invalid("grant.scope_level", "scope"));
            }
            Ok(id)
        }
        Scope::Grid(id) => conn
            .query_one("SELECT community_id FROM grids WHERE id = $1", &params![id])?
            .ok_or_else(missing)?
            .get("community_id"),
        Scope::Household(id) => conn
            .query_one(
                "SELECT community_id FROM households WHERE id = $1",
                &params![id],
            )?
            .ok_or_else(missing)?
            .get("community_id"),
    }
}

/// Whether a validity period overlaps another grant's.
fn overlaps(
    a_from: DateTime<Utc>,
    a_to: Option<DateTime<Utc>>,
    b_from: DateTime<Utc>,
    b_to: Option<DateTime<Utc>>,
) -> bool {
    a_to.is_none_or(|t| b_from < t) && b_to.is_none_or(|t| a_from < t)
}

/// Grant `role` on `scope` to a user. Needs `ManageGrants` over the scope; the scope must exist
/// and fit the role; the role must fit the kind of user (administrator roles to staff only, the
/// resident role to residents only); no one grants to themselves; the
/// exclusive administrator roles are refused with `grant.separation_of_duties`; an identical
/// grant overlapping in time is `grant.duplicate`.
pub fn create_grant(tx: &mut Tx, caller: &Caller, user_id: Uuid, g: &NewGrant) -> Result<Grant> {
    require(caller, Permission::ManageGrants)?;
    if caller.user_id == Some(user_id) {
        return Err(StoreError::Forbidden("grant.self"));
    }
    g.role
        .check_scope(g.scope)
        .map_err(|e| StoreError::invalid(e.code(), "scope"))?;
    let user = get_user(tx.conn(), user_id)?;
    if user.disabled {
        return Err(StoreError::NotFound);
    }
    let fits = match user.kind {
        // Residents act for their household, and may volunteer.
        UserKind::Resident => matches!(g.role, Role::Resident | Role::Volunteer),
        UserKind::Staff => g.role != Role::Resident,
        UserKind::Integration => !matches!(
            g.role,
            Role::Resident | Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin
        ),
    };
    if !fits {
        return Err(StoreError::invalid("grant.user_kind", "role"));
    }
    let node = scope_node(tx.conn(), g.role, g.scope)?;
    if !caller
        .reach(Permission::ManageGrants)
        .contains_node(tx.conn(), node)?
    {
        return Err(StoreError::invalid("grant.scope_not_found", "scope"));
    }
    let now = tx.now();
    let (from, to) = (g.validity.from(), g.validity.until());
    let held: Vec<Grant> = tx
        .query(
            &format!(
                "SELECT {GRANT_COLS} FROM grants g WHERE g.user_id = $1 AND g.revoked_at IS NULL"
            ),
            &params![user_id],
        )?
        .iter()
        .map(|r| grant_from(r, now))
        .collect::<Result<_>>()?;
    for h in &held {
        let current = h.valid_to.is_none_or(|t| now < t);
        let clash = EXCLUSIVE
            .iter()
            .any(|&(a, b)| (g.role == a && h.role == b) || (g.role == b && h.role == a));
        if clash && current {
            return Err(StoreError::Forbidden("grant.separation_of_duties"));
        }
        if h.role == g.role && h.scope == g.scope && overlaps(h.valid_from, h.valid_to, from, to) {
            return Err(StoreError::Conflict {
                code: "grant.duplicate",
                detail: format!("overlaps grant {}", h.id),
            });
        }
    }
    let id = tx.new_id();
    let source = if g.source_ref.is_some() {
        "assignment"
    } else {
        "manual"
    };
    let row = tx.insert(
        "grants",
        &[
            ("id", id.into()),
            ("user_id", user_id.into()),
            ("role", g.role.as_str().into()),
            ("scope_kind", g.scope.kind().as_str().into()),
            ("scope_id", g.scope.id().into()),
            ("valid_from", from.into()),
            ("valid_to", to.into()),
            ("source", source.into()),
            ("source_ref", g.source_ref.clone().into()),
            ("created_by", caller.user_id.into()),
            ("revoked_at", Value::Null),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    grant_from(&row, now)
}

pub fn get_grant(conn: &mut dyn Conn, id: Uuid, now: DateTime<Utc>) -> Result<Grant> {
    let row = conn
        .query_one(
            &format!("SELECT {GRANT_COLS} FROM grants g WHERE g.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    grant_from(&row, now)
}

/// Revoke a grant (idempotent). Needs `ManageGrants` over its scope; outside it the grant is
/// not found.
pub fn revoke_grant(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Grant> {
    require(caller, Permission::ManageGrants)?;
    let now = tx.now();
    let g = get_grant(tx.conn(), id, now)?;
    let node = scope_node(tx.conn(), g.role, g.scope).or_else(|e| match (e, g.scope) {
        // A grant on a node that has since been retired or re-levelled can still be revoked.
        (StoreError::Invalid { .. }, Scope::Node(n)) => Ok(n),
        (e, _) => Err(e),
    })?;
    if !caller
        .reach(Permission::ManageGrants)
        .contains_node(tx.conn(), node)?
    {
        return Err(StoreError::NotFound);
    }
    if g.revoked_at.is_some() {
        return Ok(g);
    }
    let row = tx.update(
        "grants",
        id,
        &[("revoked_at", now.into()), ("updated_at", now.into())],
    )?;
    grant_from(&row, now)
}

/// Revoke every live grant that follows from the assignment `source_ref` (the assignment ended).
/// For the area that owns the assignment; returns the revoked grants' ids.
pub fn revoke_assignment_grants(tx: &mut Tx, source_ref: &str) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = tx
        .query(
            "SELECT id FROM grants WHERE source = 'assignment' AND source_ref = $1 AND revoked_at IS NULL",
            &params![source_ref],
        )?
        .iter()
        .map(|r| r.get("id"))
        .collect::<Result<_>>()?;
    let now = tx.now();
    for id in &ids {
        tx.update(
            "grants",
            *id,
            &[("revoked_at", now.into()), ("updated_at", now.into())],
        )?;
    }
    Ok(ids)
}

/// Every grant of a user, revoked and expired ones included, oldest first; `active` says which
/// are in force at `now`.
pub fn list_grants(conn: &mut dyn Conn, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Grant>> {
    conn.query(
        &format!(
            "SELECT {GRANT_COLS} FROM grants g WHERE g.user_id = $1 ORDER BY g.created_at, g.id"
        ),
        &params![user_id],
    )?
    .iter()
    .map(|r| grant_from(r, now))
    .collect()
}

/// Whether a caller's grants in force include an administrator role, for which a second factor
/// is required.
pub fn needs_second_factor(caller: &Caller) -> bool {
    [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin]
        .iter()
        .any(|r| caller.has_role(*r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            normalize_username(" Zhang.San ").ok().as_deref(),
            Some("zhang.san")
        );
        for bad in ["ab", "-abc", "张三丰", "a b c", &"x".repeat(65)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validity_overlap() {
        let t = |h: i64| DateTime::<Utc>::from_timestamp(h * 3600, 0).expect("time");
        assert!(overlaps(t(0), None, t(5), None));
        assert!(overlaps(t(0), Some(t(10)), t(5), Some(t(6))));
        assert!(!overlaps(t(0), Some(t(5)), t(5), None));
        assert!(!overlaps(t(6), None, t(0), Some(t(6))));
    }

    #[test]
    fn second_factor_for_administrators_only() {
        use crate::scope::ActiveGrant;
        let g = |role| ActiveGrant {
            grant_id: None,
            role,
            scope_kind: ScopeKind::Node,
            scope_id: Uuid::nil(),
        };
        assert!(!needs_second_factor(&Caller::user(
            Uuid::nil(),
            vec![g(Role::CommunityWorker)]
        )));
        for r in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            assert!(needs_second_factor(&Caller::user(
                Uuid::nil(),
                vec![g(Role::CommunityWorker), g(r)]
            )));
        }
    }
}

/// How a grant's scope appears in JSON: `{"kind": "node" | "grid" | "household", "id": …}`.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = Scope)]
#[allow(dead_code)]
pub struct ScopeDoc {
    /// `node`, `grid` or `household`.
    pub kind: String,
    pub id: Uuid,
}

// ---- for the administration pages ---------------------------------------------------------

/// Staff and integration accounts by username, for the security administrator's user list:
/// `q` is a username or display-name substring. Only for callers who manage accounts or
/// grants; anyone else gets [`StoreError::NotFound`], as if there were no list.
pub fn list_staff_users(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<User>, i64)> {
    if !(caller.has(Permission::ManageAccounts) || caller.has(Permission::ManageGrants)) {
        return Err(StoreError::NotFound);
    }
    let mut ps: Vec<Value> = Vec::new();
    let mut wher = String::from("u.kind <> 'resident'");
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        let mut pat = String::from("%");
        for c in q.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pat.push('\\');
            }
            pat.push(c);
        }
        pat.push('%');
        ps.push(pat.into());
        wher.push_str(
            " AND (u.username LIKE $1 ESCAPE '\\' OR u.display_name LIKE $1 ESCAPE '\\')",
        );
    }
    let total = conn.query_i64(&format!("SELECT count(*) FROM users u WHERE {wher}"), &ps)?;
    let n = ps.len();
    ps.push(limit.into());
    ps.push(offset.into());
    let rows = conn.query(
        &format!(
            "SELECT {USER_COLS} FROM users u WHERE {wher} ORDER BY u.username, u.id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ),
        &ps,
    )?;
    let users = rows.iter().map(user_from).collect::<Result<_>>()?;
    Ok((users, total))
}

/// The pending (not yet confirmed) TOTP secret of a user, to show the enrolment again after a
/// wrong confirmation code. `None` when there is none.
pub fn pending_totp_secret(
    conn: &mut dyn Conn,
    env: &Env,
    user_id: Uuid,
) -> Result<Option<Vec<u8>>> {
    let Some(row) = conn.query_one(
        "SELECT secret_ct FROM totp_enrolments WHERE user_id = $1",
        &params![user_id],
    )?
    else {
        return Ok(None);
    };
    let ct: Vec<u8> = row.get("secret_ct")?;
    env.keys.open(conn, TOTP_FIELD, &ct).map(Some)
}

/// A grant scope's name as the grants page shows it (a node's name, a grid's name with its
/// community, a household's label). `None` when the record is gone.
pub fn scope_label(conn: &mut dyn Conn, scope: Scope) -> Result<Option<String>> {
    let row = match scope {
        Scope::Node(id) => conn.query_one(
            "SELECT n.name AS label FROM nodes n WHERE n.id = $1",
            &params![id],
        )?,
        Scope::Grid(id) => conn.query_one(
            "SELECT n.name || ' · ' || g.name AS label FROM grids g JOIN nodes n ON n.id = g.community_id WHERE g.id = $1",
            &params![id],
        )?,
        Scope::Household(id) => conn.query_one(
            "SELECT h.label AS label FROM households h WHERE h.id = $1",
            &params![id],
        )?,
    };
    row.map(|r| r.get("label")).transpose()
}
