//! Volunteers and deployed cadres: the registry, call-outs, attendance and hours (owner:
//! volunteers & welfare).
//!
//! - The registry (`volunteers`, logged) needs `ManageVolunteers` over the home community. A
//!   volunteer's name, phone and certificates are personal data: the record has its own data key,
//!   so its change-log images are sealed; the phone is ciphertext + blind index + mask (like
//!   people's), and lists show the masked name.
//! - Call-outs (`callouts`, logged) are made by activation ([`CalloutStep`]: available volunteers
//!   of the activated scope holding every skill the plan asks for, in registry order, inserted in
//!   bulk) or by hand by staff during an active incident. The volunteer with an account accepts or
//!   declines their own (`RespondCallouts`), checks in at an open shelter or a named place and out
//!   again (`callout_attendance`, logged); minutes are totalled per call-out at check-out.
//! - Deactivation ends open call-outs and checks out anyone still checked in at its time.

use std::collections::HashSet;

use anxin_domain::roles::Permission;
use anxin_domain::{mask_name, mask_phone, Phone, Role};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Activation, ActivationStep};
use crate::conn::Conn;
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};

pub const KINDS: &[&str] = &["volunteer", "cadre"];
pub const AVAILABILITY: &[&str] = &["available", "limited", "unavailable"];
const NAME_MAX: usize = 64;
const SKILL_MAX: usize = 32;
const SKILLS_MAX: usize = 20;
const CERTS_MAX: usize = 20;
const NOTES_MAX: usize = 500;
const PLACE_MAX: usize = 100;

/// Blind-index context of volunteers' phones (shared with people's: the same number finds both).
pub const BIDX_PHONE: &str = crate::people::BIDX_PHONE;

const VOLUNTEER_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "v.community_id",
    grid: None,
    household: None,
};

const CALLOUT_SCOPE: ScopeCols<'static> = ScopeCols {
    node: "c.community_id",
    grid: None,
    household: None,
};

/// A JSON array of ids, for `Dialect::in_json_list`.
pub(crate) fn json_ids(ids: &[Uuid]) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

fn bad(code: &'static str, field: impl Into<String>) -> StoreError {
    StoreError::invalid(code, field)
}

/// Trimmed text of at most `max` characters without control characters; empty when absent.
pub(crate) fn clean_text(field: &str, raw: Option<&str>, max: usize) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.chars().count() > max {
        return Err(bad("value.too_long", field));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

fn one_of(field: &str, raw: &str, allowed: &[&str]) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad("value.required", field));
    }
    if !allowed.contains(&s) {
        return Err(bad("value.invalid", field));
    }
    Ok(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// The registry.

/// A certificate as given (first-aid card, lifeguard licence, …).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub name: String,
    #[serde(default)]
    pub number: String,
    /// `YYYY-MM-DD`; absent: no end date.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

/// A volunteer as entered (create: `community_id`, `name` required; edit: absent fields kept).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolunteerInput {
    /// `volunteer` (default) or `cadre` (下沉干部).
    pub kind: Option<String>,
    /// The home community.
    pub community_id: Option<Uuid>,
    /// The account that answers call-outs: a user holding a Volunteer grant.
    pub user_id: Option<Uuid>,
    /// Remove the account link (edit only).
    #[serde(default)]
    pub unlink_user: bool,
    pub name: Option<String>,
    /// Mobile or landline; an empty string removes it (edit).
    pub phone: Option<String>,
    pub skills: Option<Vec<String>>,
    pub certificates: Option<Vec<Certificate>>,
    /// `available` (default), `limited` or `unavailable`.
    pub availability: Option<String>,
    pub notes: Option<String>,
}

/// A volunteer as lists and pages show them: masked name and phone.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Volunteer {
    pub id: Uuid,
    pub kind: String,
    pub community_id: Uuid,
    pub community_name: String,
    pub user_id: Option<Uuid>,
    pub name_mask: String,
    pub phone_mask: Option<String>,
    pub skills: Vec<String>,
    pub certificates: Vec<Certificate>,
    pub availability: String,
    pub notes: String,
    /// Attended minutes over all call-outs.
    pub total_minutes: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const VOLUNTEER_COLS: &str = "v.id, v.kind, v.community_id, n.name AS community_name, v.user_id, \
    v.name_mask, v.phone_mask, v.skills, v.certificates, v.availability, v.notes, \
    (SELECT CAST(COALESCE(SUM(c.minutes), 0) AS BIGINT) FROM callouts c WHERE c.volunteer_id = v.id) AS total_minutes, \
    v.created_at, v.updated_at";

fn json_col<T: serde::de::DeserializeOwned>(r: &Row, col: &str) -> Result<T> {
    let s: String = r.get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Backend(format!("stored {col}: {e}")))
}

impl Volunteer {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            kind: r.get("kind")?,
            community_id: r.get("community_id")?,
            community_name: r.get("community_name")?,
            user_id: r.get("user_id")?,
            name_mask: r.get("name_mask")?,
            phone_mask: r.get("phone_mask")?,
            skills: json_col(r, "skills")?,
            certificates: json_col(r, "certificates")?,
            availability: r.get("availability")?,
            notes: r.get("notes")?,
            total_minutes: r.get("total_minutes")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
        })
    }
}

/// A skill key as stored: trimmed, lower case (so `First_Aid` and `first_aid` are one skill).
pub fn normalize_skill(s: &str) -> String {
    s.trim().to_lowercase()
}

fn parse_skills(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in raw {
        let s = normalize_skill(s);
        if s.is_empty() {
            continue;
        }
        if s.chars().count() > SKILL_MAX || s.chars().any(|c| c.is_control() || c == ',') {
            return Err(bad("value.invalid", "skills"));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.len() > SKILLS_MAX {
        return Err(bad("value.too_long", "skills"));
    }
    Ok(out)
}

fn parse_certificates(raw: &[Certificate]) -> Result<Vec<Certificate>> {
    if raw.len() > CERTS_MAX {
        return Err(bad("value.too_long", "certificates"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        let name = clean_text(&format!("certificates[{i}].name"), Some(&c.name), NAME_MAX)?;
        if name.is_empty() {
            return Err(bad("value.required", format!("certificates[{i}].name")));
        }
        let number = clean_text(
            &format!("certificates[{i}].number"),
            Some(&c.number),
            NAME_MAX,
        )?;
        out.push(Certificate {
            name,
            number,
            valid_until: c.valid_until,
        });
    }
    Ok(out)
}

fn parse_name(raw: &str) -> Result<String> {
    let n = clean_text("name", Some(raw), NAME_MAX)?;
    if n.is_empty() {
        return Err(bad("value.required", "name"));
    }
    Ok(n)
}

fn parse_phone(raw: &str) -> Result<Option<Phone>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Phone::parse(raw)
        .map(Some)
        .map_err(|e| bad(e.code(), e.field().unwrap_or("phone")))
}

fn manage_reach(caller: &Caller) -> Reach {
    caller.reach(Permission::ManageVolunteers)
}

/// The community must be a node of level community inside the caller's `ManageVolunteers` reach.
fn check_community(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<()> {
    if !manage_reach(caller).contains_node(conn, id)? {
        return Err(StoreError::NotFound);
    }
    let level: Option<String> = conn
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![id])?
        .map(|r| r.get("level"))
        .transpose()?;
    match level.as_deref() {
        Some("community") => Ok(()),
        Some(_) => Err(bad("volunteer.not_community", "community_id")),
        None => Err(StoreError::NotFound),
    }
}

/// The account must exist, be enabled, hold a Volunteer grant valid now, and not be another
/// volunteer's account already.
fn check_user(tx: &mut Tx, user: Uuid, except: Option<Uuid>) -> Result<()> {
    let now = tx.now();
    let n = tx.conn().query_i64(
        "SELECT count(*) FROM users u JOIN grants g ON g.user_id = u.id WHERE u.id = $1 \
         AND u.disabled = $2 AND g.role = $3 AND g.revoked_at IS NULL AND g.valid_from <= $4 \
         AND (g.valid_to IS NULL OR g.valid_to > $4)",
        &params![user, false, Role::Volunteer.as_str(), now],
    )?;
    if n == 0 {
        return Err(bad("volunteer.user_not_volunteer", "user_id"));
    }
    let taken = tx.conn().query_i64(
        "SELECT count(*) FROM volunteers WHERE user_id = $1 AND id <> $2",
        &params![user, except.unwrap_or(Uuid::nil())],
    )?;
    if taken > 0 {
        return Err(bad("volunteer.user_taken", "user_id"));
    }
    Ok(())
}

fn phone_cols(
    tx: &mut Tx,
    key_id: Uuid,
    phone: Option<&Phone>,
) -> Result<Vec<(&'static str, Value)>> {
    Ok(match phone {
        Some(p) => {
            let ct = tx.seal(key_id, "volunteers.phone", p.as_str().as_bytes())?;
            vec![
                ("phone_ct", Value::Bytes(ct)),
                (
                    "phone_bidx",
                    Value::Bytes(tx.env().keys.blind(BIDX_PHONE, p.as_str())),
                ),
                ("phone_mask", Value::Text(mask_phone(p))),
            ]
        }
        None => vec![
            ("phone_ct", Value::Null),
            ("phone_bidx", Value::Null),
            ("phone_mask", Value::Null),
        ],
    })
}

fn to_json_text<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("json: {e}")))
}

/// Register a volunteer (needs `ManageVolunteers` over the home community).
pub fn create_volunteer(tx: &mut Tx, caller: &Caller, i: &VolunteerInput) -> Result<Volunteer> {
    let community = i
        .community_id
        .ok_or_else(|| bad("value.required", "community_id"))?;
    check_community(tx.conn(), caller, community)?;
    let kind = one_of("kind", i.kind.as_deref().unwrap_or("volunteer"), KINDS)?;
    let name = parse_name(i.name.as_deref().unwrap_or(""))?;
    let phone = parse_phone(i.phone.as_deref().unwrap_or(""))?;
    let skills = parse_skills(i.skills.as_deref().unwrap_or(&[]))?;
    let certificates = parse_certificates(i.certificates.as_deref().unwrap_or(&[]))?;
    let availability = one_of(
        "availability",
        i.availability.as_deref().unwrap_or("available"),
        AVAILABILITY,
    )?;
    let notes = clean_text("notes", i.notes.as_deref(), NOTES_MAX)?;
    if let Some(u) = i.user_id {
        check_user(tx, u, None)?;
    }
    let id = tx.new_id();
    let now = tx.now();
    let key_id = tx.new_data_key()?;
    let mut cols: Vec<(&str, Value)> = vec![
        ("id", id.into()),
        ("key_id", key_id.into()),
        ("kind", kind.into()),
        ("community_id", community.into()),
        ("user_id", i.user_id.into()),
        ("name_mask", mask_name(&name).into()),
        ("name", name.into()),
        ("skills", to_json_text(&skills)?.into()),
        ("certificates", to_json_text(&certificates)?.into()),
        ("availability", availability.into()),
        ("notes", notes.into()),
        ("created_at", now.into()),
        ("updated_at", now.into()),
    ];
    cols.extend(phone_cols(tx, key_id, phone.as_ref())?);
    tx.insert("volunteers", &cols)?;
    load_volunteer(
        tx.conn(),
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
    )
}

/// Edit a volunteer: absent fields are kept.
pub fn update_volunteer(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    i: &VolunteerInput,
) -> Result<Volunteer> {
    let cur = load_volunteer(tx.conn(), &manage_reach(caller), id)?;
    let mut cols: Vec<(&str, Value)> = Vec::new();
    if let Some(c) = i.community_id {
        if c != cur.community_id {
            check_community(tx.conn(), caller, c)?;
            cols.push(("community_id", c.into()));
        }
    }
    if let Some(k) = &i.kind {
        cols.push(("kind", one_of("kind", k, KINDS)?.into()));
    }
    if let Some(n) = &i.name {
        let n = parse_name(n)?;
        cols.push(("name_mask", mask_name(&n).into()));
        cols.push(("name", n.into()));
    }
    if let Some(p) = &i.phone {
        let phone = parse_phone(p)?;
        let key_id: Uuid = tx
            .conn()
            .query_one("SELECT key_id FROM volunteers WHERE id = $1", &params![id])?
            .ok_or(StoreError::NotFound)?
            .get("key_id")?;
        cols.extend(phone_cols(tx, key_id, phone.as_ref())?);
    }
    if let Some(s) = &i.skills {
        cols.push(("skills", to_json_text(&parse_skills(s)?)?.into()));
    }
    if let Some(c) = &i.certificates {
        cols.push((
            "certificates",
            to_json_text(&parse_certificates(c)?)?.into(),
        ));
    }
    if let Some(a) = &i.availability {
        cols.push((
            "availability",
            one_of("availability", a, AVAILABILITY)?.into(),
        ));
    }
    if let Some(n) = &i.notes {
        cols.push(("notes", clean_text("notes", Some(n), NOTES_MAX)?.into()));
    }
    if i.unlink_user {
        cols.push(("user_id", Value::Null));
    } else if let Some(u) = i.user_id {
        if Some(u) != cur.user_id {
            check_user(tx, u, Some(id))?;
            cols.push(("user_id", u.into()));
        }
    }
    if !cols.is_empty() {
        let now = tx.now();
        cols.push(("updated_at", now.into()));
        tx.update("volunteers", id, &cols)?;
    }
    load_volunteer(
        tx.conn(),
        &Reach {
            all: true,
            ..Reach::default()
        },
        id,
    )
}

fn load_volunteer(conn: &mut dyn Conn, reach: &Reach, id: Uuid) -> Result<Volunteer> {
    let mut params = vec![Value::from(id)];
    let pred = reach.predicate(conn.dialect(), VOLUNTEER_SCOPE, &mut params);
    let row = conn
        .query_one(
            &format!(
                "SELECT {VOLUNTEER_COLS} FROM volunteers v JOIN nodes n ON n.id = v.community_id \
                 WHERE v.id = $1 AND {pred}"
            ),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Volunteer::from_row(&row)
}

/// One volunteer: for staff with `ManageVolunteers` over the home community, or the volunteer.
pub fn get_volunteer(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Volunteer> {
    match load_volunteer(conn, &manage_reach(caller), id) {
        Err(StoreError::NotFound) => {
            let v = load_volunteer(
                conn,
                &Reach {
                    all: true,
                    ..Reach::default()
                },
                id,
            )?;
            if v.user_id.is_some() && v.user_id == caller.user_id {
                Ok(v)
            } else {
                Err(StoreError::NotFound)
            }
        }
        other => other,
    }
}

/// Filters of the registry list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VolunteerQuery {
    /// Holding this skill.
    pub skill: Option<String>,
    /// `available`, `limited` or `unavailable`.
    pub availability: Option<String>,
    /// Home community (or any node above it).
    pub node_id: Option<Uuid>,
}

/// The registry within the caller's `ManageVolunteers` reach (at most 2,000, by name).
pub fn list_volunteers(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &VolunteerQuery,
) -> Result<Vec<Volunteer>> {
    let mut params = Vec::new();
    let pred = manage_reach(caller).predicate(conn.dialect(), VOLUNTEER_SCOPE, &mut params);
    let mut sql = format!(
        "SELECT {VOLUNTEER_COLS} FROM volunteers v JOIN nodes n ON n.id = v.community_id WHERE {pred}"
    );
    if let Some(a) = q.availability.as_deref().filter(|s| !s.is_empty()) {
        let a = one_of("availability", a, AVAILABILITY)?;
        params.push(a.into());
        sql.push_str(&format!(" AND v.availability = ${}", params.len()));
    }
    if let Some(node) = q.node_id {
        let r = Reach {
            nodes: vec![node],
            ..Reach::default()
        };
        let p = r.predicate(conn.dialect(), VOLUNTEER_SCOPE, &mut params);
        sql.push_str(&format!(" AND {p}"));
    }
    sql.push_str(" ORDER BY v.name_mask, v.id LIMIT 2000");
    let skill = q
        .skill
        .as_deref()
        .map(normalize_skill)
        .filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for r in conn.query(&sql, &params)? {
        let v = Volunteer::from_row(&r)?;
        if skill.as_ref().is_none_or(|s| v.skills.contains(s)) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The communities the caller may register volunteers in (by name, at most 500).
pub fn home_communities(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<(Uuid, String)>> {
    let mut params = Vec::new();
    let pred = manage_reach(caller).predicate(
        conn.dialect(),
        ScopeCols {
            node: "n.id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT n.id, n.name FROM nodes n WHERE n.level = 'community' AND n.status = 'active' \
             AND {pred} ORDER BY n.name, n.id LIMIT 500"
        ),
        &params,
    )?
    .iter()
    .map(|r| Ok((r.get("id")?, r.get("name")?)))
    .collect()
}

/// A volunteer's phone in clear, for the call-out SMS (never shown on a page).
pub fn volunteer_phone(
    conn: &mut dyn Conn,
    env: &crate::Env,
    id: Uuid,
) -> Result<Option<(String, String)>> {
    let Some(r) = conn.query_one(
        "SELECT phone_ct, phone_mask FROM volunteers WHERE id = $1",
        &params![id],
    )?
    else {
        return Ok(None);
    };
    let ct: Option<Vec<u8>> = r.get("phone_ct")?;
    let mask: Option<String> = r.get("phone_mask")?;
    match (ct, mask) {
        (Some(ct), Some(mask)) => Ok(Some((
            env.keys.open_string(conn, "volunteers.phone", &ct)?,
            mask,
        ))),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// Call-outs.

/// A call-out as the pages show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Callout {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub incident_title: String,
    pub incident_status: String,
    pub exercise: bool,
    pub volunteer_id: Uuid,
    pub volunteer_name_mask: String,
    pub community_id: Uuid,
    pub user_id: Option<Uuid>,
    /// called, accepted, declined, ended
    pub status: String,
    /// plan or manual
    pub source: String,
    pub called_at: DateTime<Utc>,
    pub responded_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Attended minutes (closed stretches).
    pub minutes: i64,
    /// Checked in now: where.
    pub checked_in_at: Option<DateTime<Utc>>,
    pub place: Option<String>,
}

const CALLOUT_COLS: &str =
    "c.id, c.incident_id, i.title AS incident_title, i.status AS incident_status, \
    i.exercise, c.volunteer_id, v.name_mask AS volunteer_name_mask, c.community_id, c.user_id, \
    c.status, c.source, c.called_at, c.responded_at, c.ended_at, c.minutes, \
    a.checked_in_at, COALESCE(f.name, a.place) AS place";

const CALLOUT_FROM: &str = "callouts c JOIN incidents i ON i.id = c.incident_id \
    JOIN volunteers v ON v.id = c.volunteer_id \
    LEFT JOIN callout_attendance a ON a.callout_id = c.id AND a.checked_out_at IS NULL \
    LEFT JOIN facilities f ON f.id = a.facility_id";

impl Callout {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            incident_id: r.get("incident_id")?,
            incident_title: r.get("incident_title")?,
            incident_status: r.get("incident_status")?,
            exercise: r.get("exercise")?,
            volunteer_id: r.get("volunteer_id")?,
            volunteer_name_mask: r.get("volunteer_name_mask")?,
            community_id: r.get("community_id")?,
            user_id: r.get("user_id")?,
            status: r.get("status")?,
            source: r.get("source")?,
            called_at: r.get("called_at")?,
            responded_at: r.get("responded_at")?,
            ended_at: r.get("ended_at")?,
            minutes: r.get("minutes")?,
            checked_in_at: r.get("checked_in_at")?,
            place: r.get("place")?,
        })
    }
}

/// Staff who see call-outs: the registry's managers and whoever works the incident.
fn staff_reach(caller: &Caller) -> Reach {
    let mut r = manage_reach(caller);
    r.merge(super::incident_reach(caller));
    r
}

/// Call-outs the caller may see: staff in reach, and a volunteer their own.
fn visible_pred(conn: &mut dyn Conn, caller: &Caller, params: &mut Vec<Value>) -> String {
    let staff = staff_reach(caller).predicate(conn.dialect(), CALLOUT_SCOPE, params);
    match caller.user_id {
        Some(u) if caller.has(Permission::RespondCallouts) => {
            params.push(u.into());
            format!("({staff} OR c.user_id = ${})", params.len())
        }
        _ => staff,
    }
}

/// Filters of the call-out list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CalloutQuery {
    pub incident_id: Option<Uuid>,
    pub volunteer_id: Option<Uuid>,
    /// called, accepted, declined, ended
    pub status: Option<String>,
    /// Only the caller's own call-outs.
    #[serde(default)]
    pub mine: bool,
}

/// Call-outs the caller may see (newest first, at most 2,000).
pub fn list_callouts(
    conn: &mut dyn Conn,
    caller: &Caller,
    q: &CalloutQuery,
) -> Result<Vec<Callout>> {
    let mut params = Vec::new();
    let pred = if q.mine {
        params.push(caller.user_id.unwrap_or(Uuid::nil()).into());
        "c.user_id = $1".to_owned()
    } else {
        visible_pred(conn, caller, &mut params)
    };
    let mut sql = format!("SELECT {CALLOUT_COLS} FROM {CALLOUT_FROM} WHERE {pred}");
    if let Some(i) = q.incident_id {
        params.push(i.into());
        sql.push_str(&format!(" AND c.incident_id = ${}", params.len()));
    }
    if let Some(v) = q.volunteer_id {
        params.push(v.into());
        sql.push_str(&format!(" AND c.volunteer_id = ${}", params.len()));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        params.push(one_of("status", s, &["called", "accepted", "declined", "ended"])?.into());
        sql.push_str(&format!(" AND c.status = ${}", params.len()));
    }
    sql.push_str(" ORDER BY c.called_at DESC, c.id LIMIT 2000");
    conn.query(&sql, &params)?
        .iter()
        .map(Callout::from_row)
        .collect()
}

/// One call-out the caller may see.
pub fn get_callout(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Callout> {
    let mut params = vec![Value::from(id)];
    let pred = visible_pred(conn, caller, &mut params);
    let row = conn
        .query_one(
            &format!("SELECT {CALLOUT_COLS} FROM {CALLOUT_FROM} WHERE c.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    Callout::from_row(&row)
}

fn callout_unscoped(conn: &mut dyn Conn, id: Uuid) -> Result<Callout> {
    let row = conn
        .query_one(
            &format!("SELECT {CALLOUT_COLS} FROM {CALLOUT_FROM} WHERE c.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    Callout::from_row(&row)
}

/// The caller's own call-out (they answer with `RespondCallouts`); anyone else's is not found.
fn own_callout(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<Callout> {
    let Some(me) = caller.user_id else {
        return Err(StoreError::NotFound);
    };
    if !caller.has(Permission::RespondCallouts) {
        return Err(StoreError::NotFound);
    }
    let c = callout_unscoped(conn, id)?;
    if c.user_id != Some(me) {
        return Err(StoreError::NotFound);
    }
    Ok(c)
}

fn require_active(c: &Callout) -> Result<()> {
    if c.incident_status != "active" {
        return Err(StoreError::Conflict {
            code: "callout.incident_not_active",
            detail: "the incident is not active".into(),
        });
    }
    Ok(())
}

fn wrong_status(code: &'static str) -> StoreError {
    StoreError::Conflict {
        code,
        detail: code.into(),
    }
}

/// Accept (`true`) or decline one's own call-out. A call-out is answered while it is `called`;
/// an accepted one may still be declined while not checked in.
pub fn respond(tx: &mut Tx, caller: &Caller, id: Uuid, accept: bool) -> Result<Callout> {
    let c = own_callout(tx.conn(), caller, id)?;
    require_active(&c)?;
    let ok = match (c.status.as_str(), accept) {
        ("called", _) => true,
        ("accepted", false) => c.checked_in_at.is_none(),
        _ => false,
    };
    if !ok {
        return Err(wrong_status("callout.wrong_status"));
    }
    let now = tx.now();
    let status = if accept { "accepted" } else { "declined" };
    tx.update(
        "callouts",
        id,
        &[
            ("status", status.into()),
            ("responded_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let what = if accept {
        "接受召集"
    } else {
        "谢绝召集"
    };
    super::log(
        tx,
        c.incident_id,
        &format!("callout.{status}"),
        &format!("志愿者{}{what}", c.volunteer_name_mask),
        Some(("callouts", id)),
    )?;
    callout_unscoped(tx.conn(), id)
}

/// Where a volunteer checks in: an open shelter of the incident's area, or a named place.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    pub facility_id: Option<Uuid>,
    pub place: Option<String>,
}

/// An open facility (status `open`) under the incident's node; `NotFound`-like refusal otherwise.
pub(crate) fn open_facility(
    conn: &mut dyn Conn,
    incident_node: Uuid,
    facility: Uuid,
    field: &'static str,
) -> Result<String> {
    let r = Reach {
        nodes: vec![incident_node],
        ..Reach::default()
    };
    let mut params = vec![Value::from(facility)];
    let pred = r.predicate(
        conn.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    let row = conn.query_one(
        &format!("SELECT f.name, f.status FROM facilities f WHERE f.id = $1 AND {pred}"),
        &params,
    )?;
    match row {
        Some(r) if r.get::<String>("status")? == "open" => r.get("name"),
        _ => Err(bad("welfare.facility_not_open", field)),
    }
}

/// An open shelter (or any facility opened for the emergency) in an incident's area.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct OpenShelter {
    pub id: Uuid,
    pub name: String,
}

/// The facilities with status `open` under an incident's node (by name, at most 200): where a
/// volunteer checks in and where a person is moved.
pub fn open_shelters(conn: &mut dyn Conn, incident_id: Uuid) -> Result<Vec<OpenShelter>> {
    let Some(node) = conn
        .query_one(
            "SELECT node_id FROM incidents WHERE id = $1",
            &params![incident_id],
        )?
        .map(|r| r.get::<Uuid>("node_id"))
        .transpose()?
    else {
        return Ok(Vec::new());
    };
    let r = Reach {
        nodes: vec![node],
        ..Reach::default()
    };
    let mut params = Vec::new();
    let pred = r.predicate(
        conn.dialect(),
        ScopeCols {
            node: "f.node_id",
            grid: None,
            household: None,
        },
        &mut params,
    );
    conn.query(
        &format!(
            "SELECT f.id, f.name FROM facilities f WHERE f.status = 'open' AND {pred} \
             ORDER BY f.name, f.id LIMIT 200"
        ),
        &params,
    )?
    .iter()
    .map(|r| {
        Ok(OpenShelter {
            id: r.get("id")?,
            name: r.get("name")?,
        })
    })
    .collect()
}

/// Check in at a place for one's own accepted call-out.
pub fn check_in(tx: &mut Tx, caller: &Caller, id: Uuid, at: &CheckIn) -> Result<Callout> {
    let c = own_callout(tx.conn(), caller, id)?;
    require_active(&c)?;
    if c.status != "accepted" {
        return Err(wrong_status("callout.wrong_status"));
    }
    if c.checked_in_at.is_some() {
        return Err(wrong_status("callout.already_checked_in"));
    }
    let place = clean_text("place", at.place.as_deref(), PLACE_MAX)?;
    let incident_node: Uuid = tx
        .conn()
        .query_one(
            "SELECT node_id FROM incidents WHERE id = $1",
            &params![c.incident_id],
        )?
        .ok_or(StoreError::NotFound)?
        .get("node_id")?;
    let where_ = match at.facility_id {
        Some(f) => open_facility(tx.conn(), incident_node, f, "facility_id")?,
        None if place.is_empty() => return Err(bad("value.required", "place")),
        None => place.clone(),
    };
    let now = tx.now();
    let aid = tx.new_id();
    tx.insert(
        "callout_attendance",
        &[
            ("id", aid.into()),
            ("callout_id", id.into()),
            ("incident_id", c.incident_id.into()),
            ("volunteer_id", c.volunteer_id.into()),
            ("community_id", c.community_id.into()),
            ("facility_id", at.facility_id.into()),
            ("place", place.into()),
            ("checked_in_at", now.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    super::log(
        tx,
        c.incident_id,
        "callout.check_in",
        &format!("志愿者{}到岗：{where_}", c.volunteer_name_mask),
        Some(("callouts", id)),
    )?;
    callout_unscoped(tx.conn(), id)
}

/// Whole minutes from `from` to `to` (never negative).
fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_minutes().max(0)
}

/// Close the open attendance of a call-out at `at`; returns its minutes (0 when none was open).
fn close_attendance(tx: &mut Tx, callout: Uuid, at: DateTime<Utc>) -> Result<Option<i64>> {
    let Some(r) = tx.conn().query_one(
        "SELECT id, checked_in_at FROM callout_attendance WHERE callout_id = $1 \
         AND checked_out_at IS NULL",
        &params![callout],
    )?
    else {
        return Ok(None);
    };
    let aid: Uuid = r.get("id")?;
    let since: DateTime<Utc> = r.get("checked_in_at")?;
    let m = minutes_between(since, at);
    tx.update(
        "callout_attendance",
        aid,
        &[
            ("checked_out_at", at.into()),
            ("minutes", m.into()),
            ("updated_at", tx.now().into()),
        ],
    )?;
    Ok(Some(m))
}

/// Check out of one's own call-out: the stretch's minutes are added to the call-out's total.
pub fn check_out(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<Callout> {
    let c = own_callout(tx.conn(), caller, id)?;
    let now = tx.now();
    let Some(m) = close_attendance(tx, id, now)? else {
        return Err(wrong_status("callout.not_checked_in"));
    };
    tx.update(
        "callouts",
        id,
        &[
            ("minutes", (c.minutes + m).into()),
            ("updated_at", now.into()),
        ],
    )?;
    super::log(
        tx,
        c.incident_id,
        "callout.check_out",
        &format!("志愿者{}离岗（{m}分钟）", c.volunteer_name_mask),
        Some(("callouts", id)),
    )?;
    callout_unscoped(tx.conn(), id)
}

/// A call-out by hand.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManualCallout {
    pub incident_id: Uuid,
    pub volunteer_id: Uuid,
}

/// Call out one volunteer by hand during an active incident: needs `ManageVolunteers` over the
/// volunteer's home community and sight of the incident.
pub fn call_out(tx: &mut Tx, caller: &Caller, m: &ManualCallout) -> Result<Callout> {
    let v = load_volunteer(tx.conn(), &manage_reach(caller), m.volunteer_id)?;
    let inc = super::get_incident(tx.conn(), caller, m.incident_id)?;
    if inc.status != "active" {
        return Err(wrong_status("callout.incident_not_active"));
    }
    if v.availability == "unavailable" {
        return Err(bad("callout.volunteer_unavailable", "volunteer_id"));
    }
    let exists = tx.conn().query_i64(
        "SELECT count(*) FROM callouts WHERE incident_id = $1 AND volunteer_id = $2",
        &params![m.incident_id, m.volunteer_id],
    )?;
    if exists > 0 {
        return Err(wrong_status("callout.duplicate"));
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "callouts",
        &[
            ("id", id.into()),
            ("incident_id", m.incident_id.into()),
            ("volunteer_id", v.id.into()),
            ("community_id", v.community_id.into()),
            ("user_id", v.user_id.into()),
            ("status", "called".into()),
            ("source", "manual".into()),
            ("called_by", caller.user_id.into()),
            ("called_at", now.into()),
            ("minutes", 0i64.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    super::log(
        tx,
        m.incident_id,
        "callout.called",
        &format!("召集志愿者{}", v.name_mask),
        Some(("callouts", id)),
    )?;
    callout_unscoped(tx.conn(), id)
}

/// The call-outs of an incident and their hours.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct IncidentCallouts {
    pub incident_id: Uuid,
    pub callouts: Vec<Callout>,
    pub called: usize,
    pub accepted: usize,
    pub declined: usize,
    pub ended: usize,
    pub checked_in: usize,
    /// Attended minutes over every call-out of the incident.
    pub total_minutes: i64,
}

/// An incident's call-outs (the incident must be visible to the caller).
pub fn incident_callouts(
    conn: &mut dyn Conn,
    caller: &Caller,
    incident_id: Uuid,
) -> Result<IncidentCallouts> {
    super::get_incident(conn, caller, incident_id)?;
    let list = list_callouts(
        conn,
        caller,
        &CalloutQuery {
            incident_id: Some(incident_id),
            ..CalloutQuery::default()
        },
    )?;
    let count = |s: &str| list.iter().filter(|c| c.status == s).count();
    Ok(IncidentCallouts {
        incident_id,
        called: count("called"),
        accepted: count("accepted"),
        declined: count("declined"),
        ended: count("ended"),
        checked_in: list.iter().filter(|c| c.checked_in_at.is_some()).count(),
        total_minutes: list.iter().map(|c| c.minutes).sum(),
        callouts: list,
    })
}

/// Who to notify of the call-outs `ids` (after commit): the volunteer, the account and the
/// incident's title. The phone is opened by the binary (`volunteer_phone`).
#[derive(Debug, Clone)]
pub struct CalloutNotice {
    pub callout_id: Uuid,
    pub volunteer_id: Uuid,
    pub user_id: Option<Uuid>,
    pub incident_title: String,
    pub community_name: String,
    pub exercise: bool,
}

/// The call-outs of an incident still waiting for an answer (status `called`).
pub fn pending_notices(conn: &mut dyn Conn, incident_id: Uuid) -> Result<Vec<CalloutNotice>> {
    notices(
        conn,
        "c.incident_id = $1 AND c.status = 'called'",
        incident_id,
    )
}

/// One call-out's notice.
pub fn notice(conn: &mut dyn Conn, callout_id: Uuid) -> Result<Vec<CalloutNotice>> {
    notices(conn, "c.id = $1", callout_id)
}

fn notices(conn: &mut dyn Conn, pred: &str, id: Uuid) -> Result<Vec<CalloutNotice>> {
    conn.query(
        &format!(
            "SELECT c.id, c.volunteer_id, c.user_id, i.title, i.exercise, n.name \
             FROM callouts c JOIN incidents i ON i.id = c.incident_id \
             JOIN nodes n ON n.id = c.community_id WHERE {pred} ORDER BY c.id"
        ),
        &params![id],
    )?
    .iter()
    .map(|r| {
        Ok(CalloutNotice {
            callout_id: r.get("id")?,
            volunteer_id: r.get("volunteer_id")?,
            user_id: r.get("user_id")?,
            incident_title: r.get("title")?,
            community_name: r.get("name")?,
            exercise: r.get("exercise")?,
        })
    })
    .collect()
}

/// Whether the caller holds an accepted call-out in `incident_id` (what lets a volunteer record
/// welfare checks there).
pub fn has_accepted(conn: &mut dyn Conn, caller: &Caller, incident_id: Uuid) -> Result<bool> {
    let Some(me) = caller.user_id else {
        return Ok(false);
    };
    Ok(conn.query_i64(
        "SELECT count(*) FROM callouts WHERE incident_id = $1 AND user_id = $2 AND status = 'accepted'",
        &params![incident_id, me],
    )? > 0)
}

// ---------------------------------------------------------------------------------------------
// The activation step.

/// Calls out volunteers: up to `body.volunteers.count` available volunteers whose home community
/// is in the activated scope and who hold every skill asked for, in registry order (oldest
/// registration first, then id), inserted in bulk. Notifications are sent after commit by the
/// binary (`anxin::ops::welfare::notify_callouts`).
pub struct CalloutStep;

/// The volunteers activation would call: ids, home communities and accounts, in order.
pub fn select_for_call(
    conn: &mut dyn Conn,
    nodes: &[Uuid],
    count: usize,
    skills: &[String],
) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>> {
    if count == 0 || nodes.is_empty() {
        return Ok(Vec::new());
    }
    let want: HashSet<String> = skills
        .iter()
        .map(|s| normalize_skill(s))
        .filter(|s| !s.is_empty())
        .collect();
    let d = conn.dialect();
    let params = vec![json_ids(nodes)];
    let rows = conn.query(
        &format!(
            "SELECT v.id, v.community_id, v.user_id, v.skills FROM volunteers v \
             WHERE v.availability = 'available' AND {} ORDER BY v.created_at, v.id",
            d.in_json_list("v.community_id", 1)
        ),
        &params,
    )?;
    let mut out = Vec::new();
    for r in rows {
        let have: Vec<String> = json_col(&r, "skills")?;
        if want.iter().all(|w| have.contains(w)) {
            out.push((r.get("id")?, r.get("community_id")?, r.get("user_id")?));
            if out.len() == count {
                break;
            }
        }
    }
    Ok(out)
}

impl ActivationStep for CalloutStep {
    fn name(&self) -> &'static str {
        "callouts"
    }
    fn activate(&self, tx: &mut Tx, a: &Activation<'_>) -> Result<serde_json::Value> {
        let Some(call) = &a.body.volunteers else {
            return Ok(serde_json::json!({ "requested": 0, "called": 0 }));
        };
        let picked = select_for_call(tx.conn(), a.nodes, call.count as usize, &call.skills)?;
        let rows: Vec<Vec<Value>> = picked
            .iter()
            .map(|(v, comm, user)| {
                vec![
                    tx.new_id().into(),
                    a.incident_id.into(),
                    (*v).into(),
                    (*comm).into(),
                    (*user).into(),
                    "called".into(),
                    "plan".into(),
                    a.actor.into(),
                    a.at.into(),
                    0i64.into(),
                    a.at.into(),
                    a.at.into(),
                ]
            })
            .collect();
        let n = tx.insert_many(
            "callouts",
            &[
                "id",
                "incident_id",
                "volunteer_id",
                "community_id",
                "user_id",
                "status",
                "source",
                "called_by",
                "called_at",
                "minutes",
                "created_at",
                "updated_at",
            ],
            &rows,
        )?;
        if call.count > 0 {
            super::log(
                tx,
                a.incident_id,
                "callout.called",
                &format!("召集志愿者{n}人（计划{}人）", call.count),
                None,
            )?;
        }
        Ok(serde_json::json!({ "requested": call.count, "called": n }))
    }

    fn deactivate(&self, tx: &mut Tx, id: Uuid, at: DateTime<Utc>) -> Result<serde_json::Value> {
        let open = tx.conn().query(
            "SELECT id, minutes FROM callouts WHERE incident_id = $1 \
             AND status IN ('called', 'accepted') ORDER BY id",
            &params![id],
        )?;
        let now = tx.now();
        let (mut ended, mut checked_out) = (0usize, 0usize);
        for r in open {
            let cid: Uuid = r.get("id")?;
            let minutes: i64 = r.get("minutes")?;
            let extra = close_attendance(tx, cid, at)?;
            if extra.is_some() {
                checked_out += 1;
            }
            tx.update(
                "callouts",
                cid,
                &[
                    ("status", "ended".into()),
                    ("ended_at", at.into()),
                    ("minutes", (minutes + extra.unwrap_or(0)).into()),
                    ("updated_at", now.into()),
                ],
            )?;
            ended += 1;
        }
        if ended > 0 {
            super::log(
                tx,
                id,
                "callout.ended",
                &format!("结束召集{ended}人，其中{checked_out}人自动离岗"),
                None,
            )?;
        }
        Ok(serde_json::json!({ "ended": ended, "checked_out": checked_out }))
    }
}
