//! People as communities govern them (实有人口), households and memberships, and the people
//! needing care (脆弱群体).
//!
//! ID numbers, phones and vulnerable categories are sealed with the person's own data key (so
//! erasing a person shreds their whole history), found through keyed blind indexes, and shown as
//! masks. Plaintext comes back only through [`unmask_person`], which needs `Permission::Unmask`;
//! the HTTP layer audits every call.

use anxin_domain::roles::Permission;
use anxin_domain::{
    mask_document, mask_phone, ContactChannel, DocType, Document, HouseholdRole, Phone,
    PopulationType, Sex, VulnerableCategory,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::conn::{Conn, Dialect};
use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::{Caller, Reach, ReachCache, ScopeCols};
use crate::tx::Tx;
use crate::value::{Row, Value};
use crate::Env;

/// Blind-index contexts. The phone context is shared with resident accounts, so a sign-in by
/// phone finds the people behind it.
pub const BIDX_DOCUMENT: &str = "people.document";
pub const BIDX_PHONE: &str = "phone";
pub const BIDX_CATEGORY: &str = "vulnerable.category";

const PEOPLE_COLS: ScopeCols<'static> = ScopeCols {
    node: "p.community_id",
    grid: Some("p.grid_id"),
    household: Some("p.household_id"),
};

/// Where a caller may read (or write) people: staff reach plus their own household.
fn people_reach(caller: &Caller, write: bool) -> Reach {
    let (staff, own) = if write {
        (Permission::WritePeople, Permission::WriteOwnHousehold)
    } else {
        (Permission::ReadPeople, Permission::ReadOwnHousehold)
    };
    let mut r = caller.reach(staff);
    r.merge(caller.reach(own));
    r
}

/// A person as entered: raw strings from a form, an API body or an import row.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub name: String,
    #[serde(default)]
    pub sex: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    pub population_type: String,
    pub doc_type: String,
    #[serde(default)]
    pub doc_number: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub nationality: Option<String>,
    pub community_id: Uuid,
    #[serde(default)]
    pub grid_id: Option<Uuid>,
    #[serde(default)]
    pub household_id: Option<Uuid>,
    #[serde(default)]
    pub household_role: Option<String>,
}

/// The columns `cols` of person `id` if it lies within `reach`; `None` outside it or missing.
fn person_within(conn: &mut dyn Conn, reach: &Reach, id: Uuid, cols: &str) -> Result<Option<Row>> {
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), PEOPLE_COLS, &mut params);
    conn.query_one(
        &format!("SELECT {cols} FROM people p WHERE p.id = $1 AND {pred}"),
        &params,
    )
}

/// A person that has passed every check: nothing invalid gets past [`NewPerson::parse`].
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub name: String,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    pub population_type: PopulationType,
    pub document: Document,
    pub phone: Option<Phone>,
    pub nationality: Option<String>,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub household: Option<(Uuid, HouseholdRole)>,
}

fn field_err(field: &'static str, e: &anxin_domain::DomainError) -> StoreError {
    StoreError::invalid(e.code(), e.field().unwrap_or(field))
}

/// Parse a closed-list value (a domain enum), naming `field` when it is not one of the list.
fn parse_field<T: std::str::FromStr<Err = anxin_domain::DomainError>>(
    raw: &str,
    field: &'static str,
) -> Result<T> {
    raw.trim().parse().map_err(|e| field_err(field, &e))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn parse_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    if name.chars().count() > 64 {
        return Err(StoreError::invalid("value.too_long", "name"));
    }
    Ok(name.to_owned())
}

impl NewPerson {
    pub fn parse(i: &PersonInput) -> Result<Self> {
        let name = parse_name(&i.name)?;
        let population_type: PopulationType = parse_field(&i.population_type, "population_type")?;
        let doc_type: DocType = parse_field(&i.doc_type, "doc_type")?;
        let document = Document::parse(doc_type, non_empty(&i.doc_number).unwrap_or(""))
            .map_err(|e| field_err("doc_number", &e))?;
        let phone = non_empty(&i.phone)
            .map(Phone::parse)
            .transpose()
            .map_err(|e| field_err("phone", &e))?;
        let sex = match non_empty(&i.sex) {
            Some(s) => Some(s.parse::<Sex>().map_err(|e| field_err("sex", &e))?),
            None => document.sex(),
        };
        let birth_date = match non_empty(&i.birth_date) {
            Some(s) => Some(
                s.parse::<NaiveDate>()
                    .map_err(|_| StoreError::invalid("value.date", "birth_date"))?,
            ),
            None => document.birth_date(),
        };
        if let (Some(given), Some(from_doc)) = (birth_date, document.birth_date()) {
            if given != from_doc {
                return Err(StoreError::invalid(
                    "person.birth_date_mismatch",
                    "birth_date",
                ));
            }
        }
        let household = match i.household_id {
            Some(h) => {
                let role = non_empty(&i.household_role).unwrap_or("other");
                Some((
                    h,
                    role.parse::<HouseholdRole>()
                        .map_err(|e| field_err("household_role", &e))?,
                ))
            }
            None => None,
        };
        Ok(Self {
            name,
            sex,
            birth_date,
            population_type,
            document,
            phone,
            nationality: non_empty(&i.nationality).map(str::to_owned),
            community_id: i.community_id,
            grid_id: i.grid_id,
            household,
        })
    }
}

/// A person as lists and detail pages show them: masked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PersonView {
    pub id: Uuid,
    pub name: String,
    pub sex: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub population_type: String,
    pub doc_type: String,
    pub doc_mask: Option<String>,
    pub phone_mask: Option<String>,
    pub nationality: Option<String>,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
}

const VIEW_COLS: &str =
    "p.id, p.name, p.sex, p.birth_date, p.population_type, p.doc_type, p.doc_mask, \
    p.phone_mask, p.nationality, p.community_id, p.grid_id, p.household_id";

impl PersonView {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            name: r.get("name")?,
            sex: r.get("sex")?,
            birth_date: r.get("birth_date")?,
            population_type: r.get("population_type")?,
            doc_type: r.get("doc_type")?,
            doc_mask: r.get("doc_mask")?,
            phone_mask: r.get("phone_mask")?,
            nationality: r.get("nationality")?,
            community_id: r.get("community_id")?,
            grid_id: r.get("grid_id")?,
            household_id: r.get("household_id")?,
        })
    }
}

/// The plaintext a permitted caller may see on request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Unmasked {
    pub doc_number: Option<String>,
    pub phone: Option<String>,
}

fn check_grid(tx: &mut Tx, grid: Option<Uuid>, community: Uuid) -> Result<()> {
    if let Some(g) = grid {
        let ok = tx.conn().query_i64(
            "SELECT count(*) FROM grids WHERE id = $1 AND community_id = $2",
            &params![g, community],
        )?;
        if ok == 0 {
            return Err(StoreError::invalid("grid.not_in_community", "grid_id"));
        }
    }
    Ok(())
}

fn check_community(
    tx: &mut Tx,
    caller: &Caller,
    reach: &Reach,
    community: Uuid,
    grid: Option<Uuid>,
) -> Result<()> {
    let level = tx
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![community])?
        .map(|r| r.get::<String>("level"))
        .transpose()?;
    match level.as_deref() {
        Some("community") => {}
        Some(_) => {
            return Err(StoreError::invalid(
                "person.community_required",
                "community_id",
            ))
        }
        None => return Err(StoreError::NotFound),
    }
    let in_grid = grid.is_some_and(|g| reach.grids.contains(&g));
    if !caller.is_system() && !in_grid && !reach.contains_node(tx.conn(), community)? {
        return Err(StoreError::NotFound);
    }
    check_grid(tx, grid, community)
}

fn sealed_fields(
    tx: &mut Tx,
    key_id: Uuid,
    doc: &Document,
    phone: Option<&Phone>,
) -> Result<Vec<(&'static str, Value)>> {
    let keys = &tx.env().keys;
    let (doc_ct, doc_bidx, doc_mask) = if doc.doc_type() == DocType::None {
        (Value::Null, Value::Null, Value::Null)
    } else {
        let ct = keys.seal(
            tx.conn(),
            key_id,
            "people.doc_number",
            doc.number().as_bytes(),
        )?;
        let keys = &tx.env().keys;
        (
            Value::Bytes(ct),
            Value::Bytes(keys.blind(BIDX_DOCUMENT, &doc.normalized())),
            Value::Text(mask_document(doc)),
        )
    };
    let (phone_ct, phone_bidx, phone_mask) = match phone {
        Some(p) => {
            let ct =
                tx.env()
                    .keys
                    .seal(tx.conn(), key_id, "people.phone", p.as_str().as_bytes())?;
            (
                Value::Bytes(ct),
                Value::Bytes(tx.env().keys.blind(BIDX_PHONE, p.as_str())),
                Value::Text(mask_phone(p)),
            )
        }
        None => (Value::Null, Value::Null, Value::Null),
    };
    Ok(vec![
        ("doc_type", doc.doc_type().as_str().into()),
        ("doc_ct", doc_ct),
        ("doc_bidx", doc_bidx),
        ("doc_mask", doc_mask),
        ("phone_ct", phone_ct),
        ("phone_bidx", phone_bidx),
        ("phone_mask", phone_mask),
    ])
}

fn document_taken(tx: &mut Tx, doc: &Document, except: Option<Uuid>) -> Result<bool> {
    if doc.doc_type() == DocType::None {
        return Ok(false);
    }
    let bidx = tx.env().keys.blind(BIDX_DOCUMENT, &doc.normalized());
    let n = tx.conn().query_i64(
        "SELECT count(*) FROM people WHERE doc_bidx = $1 AND id <> $2",
        &params![bidx, except.unwrap_or(Uuid::nil())],
    )?;
    Ok(n > 0)
}

/// Register a person. A document number already on record anywhere is a conflict: one person
/// is one record, wherever they live.
pub fn create_person(tx: &mut Tx, caller: &Caller, p: &NewPerson) -> Result<PersonView> {
    let reach = people_reach(caller, true);
    check_community(tx, caller, &reach, p.community_id, p.grid_id)?;
    if document_taken(tx, &p.document, None)? {
        return Err(StoreError::Conflict {
            code: "person.document_taken",
            detail: "document already registered".into(),
        });
    }
    let id = tx.new_id();
    let now = tx.now();
    let key_id = tx.new_data_key()?;
    let mut cols: Vec<(&str, Value)> = vec![
        ("id", id.into()),
        ("key_id", key_id.into()),
        ("community_id", p.community_id.into()),
        ("grid_id", p.grid_id.into()),
        ("household_id", Value::Null),
        ("name", p.name.as_str().into()),
        ("sex", p.sex.map(Sex::as_str).into()),
        ("birth_date", p.birth_date.into()),
        ("population_type", p.population_type.as_str().into()),
        ("nationality", p.nationality.clone().into()),
        ("created_at", now.into()),
        ("updated_at", now.into()),
    ];
    cols.extend(sealed_fields(tx, key_id, &p.document, p.phone.as_ref())?);
    tx.insert("people", &cols)?;
    if let Some((h, role)) = p.household {
        join_household(tx, caller, h, id, role, now.date_naive())?;
    }
    let row = tx
        .query_one(
            &format!("SELECT {VIEW_COLS} FROM people p WHERE p.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    PersonView::from_row(&row)
}

/// One person, masked; `NotFound` outside the caller's reach.
pub fn get_person(conn: &mut dyn Conn, caller: &Caller, id: Uuid) -> Result<PersonView> {
    let row = person_within(conn, &people_reach(caller, false), id, VIEW_COLS)?
        .ok_or(StoreError::NotFound)?;
    PersonView::from_row(&row)
}

/// The plaintext document number and phone. Needs `Unmask` over the person; the caller of
/// this function must audit it.
pub fn unmask_person(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    id: Uuid,
) -> Result<Unmasked> {
    get_person(conn, caller, id)?;
    let row = person_within(
        conn,
        &caller.reach(Permission::Unmask),
        id,
        "p.doc_ct, p.phone_ct",
    )?
    .ok_or(StoreError::Forbidden("person.unmask_not_allowed"))?;
    let open = |conn: &mut dyn Conn, col: &str, field: &str| -> Result<Option<String>> {
        match row.get::<Option<Vec<u8>>>(col)? {
            Some(ct) => env.keys.open_string(conn, field, &ct).map(Some),
            None => Ok(None),
        }
    };
    Ok(Unmasked {
        doc_number: open(conn, "doc_ct", "people.doc_number")?,
        phone: open(conn, "phone_ct", "people.phone")?,
    })
}

/// Changes to a person; `None` leaves a field as it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    pub name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub population_type: Option<String>,
    pub doc_type: Option<String>,
    pub doc_number: Option<String>,
    /// An empty string removes the phone.
    pub phone: Option<String>,
    pub nationality: Option<String>,
    pub grid_id: Option<Uuid>,
}

pub fn update_person(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    patch: &PersonPatch,
) -> Result<PersonView> {
    let row = person_within(
        tx.conn(),
        &people_reach(caller, true),
        id,
        "p.key_id, p.community_id, p.grid_id, p.doc_type, p.doc_ct, p.phone_ct",
    )?
    .ok_or(StoreError::NotFound)?;
    let key_id: Uuid = row.get("key_id")?;
    let community: Uuid = row.get("community_id")?;
    let old_grid: Option<Uuid> = row.get("grid_id")?;
    let mut cols: Vec<(&str, Value)> = vec![("updated_at", tx.now().into())];
    if let Some(n) = &patch.name {
        cols.push(("name", parse_name(n)?.into()));
    }
    if let Some(s) = &patch.sex {
        let sex: Sex = parse_field(s, "sex")?;
        cols.push(("sex", sex.as_str().into()));
    }
    if let Some(b) = &patch.birth_date {
        let d: NaiveDate = b
            .trim()
            .parse()
            .map_err(|_| StoreError::invalid("value.date", "birth_date"))?;
        cols.push(("birth_date", d.into()));
    }
    if let Some(t) = &patch.population_type {
        let t: PopulationType = parse_field(t, "population_type")?;
        cols.push(("population_type", t.as_str().into()));
    }
    if let Some(g) = patch.grid_id {
        check_grid(tx, Some(g), community)?;
        cols.push(("grid_id", g.into()));
    }
    if let Some(n) = &patch.nationality {
        cols.push(("nationality", n.trim().to_owned().into()));
    }
    if patch.doc_number.is_some() || patch.doc_type.is_some() || patch.phone.is_some() {
        // Re-seal both sealed fields together so they always share the record's key.
        let current_doc_type: String = row.get("doc_type")?;
        let doc_type: DocType = parse_field(
            patch.doc_type.as_deref().unwrap_or(&current_doc_type),
            "doc_type",
        )?;
        let number = match &patch.doc_number {
            Some(n) => n.clone(),
            None => match row.get::<Option<Vec<u8>>>("doc_ct")? {
                Some(ct) => tx
                    .env()
                    .keys
                    .open_string(tx.conn(), "people.doc_number", &ct)?,
                None => String::new(),
            },
        };
        let doc = Document::parse(doc_type, &number).map_err(|e| field_err("doc_number", &e))?;
        if document_taken(tx, &doc, Some(id))? {
            return Err(StoreError::Conflict {
                code: "person.document_taken",
                detail: "document already registered".into(),
            });
        }
        let phone = match &patch.phone {
            Some(p) if p.trim().is_empty() => None,
            Some(p) => Some(Phone::parse(p).map_err(|e| field_err("phone", &e))?),
            None => match row.get::<Option<Vec<u8>>>("phone_ct")? {
                Some(ct) => Some(
                    Phone::parse(&tx.env().keys.open_string(tx.conn(), "people.phone", &ct)?)
                        .map_err(|e| field_err("phone", &e))?,
                ),
                None => None,
            },
        };
        cols.extend(sealed_fields(tx, key_id, &doc, phone.as_ref())?);
    }
    tx.update("people", id, &cols)?;
    if let Some(g) = patch.grid_id {
        vulnerable_follow(tx, id, None, old_grid, Some(g))?;
    }
    let row = tx
        .query_one(
            &format!("SELECT {VIEW_COLS} FROM people p WHERE p.id = $1"),
            &params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    PersonView::from_row(&row)
}

/// Erase a person (PIPL deletion): their rows go and their data key is shredded, which makes
/// every change-log image of them unreadable.
pub fn erase_person(tx: &mut Tx, caller: &Caller, id: Uuid) -> Result<()> {
    let row = person_within(tx.conn(), &people_reach(caller, true), id, "p.key_id")?
        .ok_or(StoreError::NotFound)?;
    let key_id: Uuid = row.get("key_id")?;
    for table in ["memberships", "vulnerable"] {
        let ids = tx.query(
            &format!("SELECT id FROM {table} WHERE person_id = $1"),
            &params![id],
        )?;
        for r in ids {
            tx.delete(table, r.get("id")?)?;
        }
    }
    tx.execute_unlogged("DELETE FROM user_people WHERE person_id = $1", &params![id])?;
    tx.delete("people", id)?;
    tx.env().keys.shred(tx.conn(), key_id)
}

#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PeopleFilter {
    /// Any node: people in its subtree.
    pub node: Option<Uuid>,
    pub grid: Option<Uuid>,
    pub household: Option<Uuid>,
    /// A substring of the name, one character or more (Chinese works: 张 finds 张三 and 李张).
    pub q: Option<String>,
    pub population_type: Option<String>,
    pub limit: Option<i64>,
    /// Rows to skip (for jumping to a page); `after` is the way to walk a long list.
    pub offset: Option<i64>,
    /// The `next` cursor of the previous page: the page after it (keyset paging, stable under
    /// equal names). When given, `offset` is ignored.
    pub after: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many match: exact unless `total_capped`, then at least this many (counting stops
    /// 1,000 rows past the page; shown as "1000+").
    pub total: i64,
    /// Whether `total` is a lower bound because counting stopped at the cap.
    pub total_capped: bool,
    pub limit: i64,
    pub offset: i64,
    /// Cursor of the next page (pass as `after`); absent on the last page.
    pub next: Option<String>,
}

pub const MAX_PAGE: i64 = 200;
/// Matches counted beyond the page's offset before the total is shown as "1,000+".
pub const COUNT_CAP: i64 = 1_000;

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Every distinct 1- and 2-character substring of a name: what `person_name_grams` holds for a
/// person, so a search for one or two characters anywhere in a name is one index lookup.
pub fn name_grams(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out: Vec<String> = Vec::with_capacity(chars.len() * 2);
    for i in 0..chars.len() {
        out.push(chars[i].to_string());
        if let Some(pair) = chars.get(i..i + 2) {
            out.push(pair.iter().collect());
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The opaque cursor of a list position (the last row's name and id).
fn cursor(name: &str, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}{name}"))
}

fn parse_cursor(raw: &str) -> Result<(String, Uuid)> {
    use base64::Engine;
    let bad = || StoreError::invalid("value.invalid", "after");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, name) = (
        text.get(..36).ok_or_else(bad)?,
        text.get(36..).ok_or_else(bad)?,
    );
    Ok((name.to_owned(), Uuid::parse_str(id).map_err(|_| bad())?))
}

/// Whether a condition reads a column of `people p` (so a gram walk must join it).
fn refs_people(cond: &str) -> bool {
    cond.match_indices("p.").any(|(i, _)| {
        i == 0 || {
            let b = cond.as_bytes()[i - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        }
    })
}

/// `col IN (the ids bound as one JSON array at $n)`, comparing as the column's own type so
/// PostgreSQL can use an index on it.
fn ids_in(d: Dialect, col: &str, n: usize) -> String {
    match d {
        Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each(${n}))"),
        Dialect::Postgres => {
            format!("{col} IN (SELECT v::uuid FROM jsonb_array_elements_text(${n}::jsonb) AS t(v))")
        }
    }
}

fn json_uuids<'a>(ids: impl Iterator<Item = &'a Uuid>) -> Value {
    Value::Json(serde_json::Value::Array(
        ids.map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    ))
}

/// How a list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Walk `people_name_order` (name, id) and skip rows outside reach and filters: a wide reach
    /// (a district, a community) fills a page after a few rows.
    NameOrder,
    /// Walk the name grams of the query's first characters in (name, id) order.
    Grams,
    /// A narrow reach or filter (grids, households): read those rows by their index and sort.
    Narrow,
}

/// One page of people within the caller's reach, in (name, id) order.
///
/// The caller's node grants are expanded to node ids once per call (not a recursive query per
/// row); a page at an offset starts from the position found by walking the index alone, then
/// reads `limit` rows by key; the total is counted only up to [`COUNT_CAP`] rows past the page.
pub fn list_people(
    conn: &mut dyn Conn,
    caller: &Caller,
    f: &PeopleFilter,
) -> Result<Page<PersonView>> {
    list_people_with(conn, None, false, caller, f)
}

/// [`list_people`] with the caller's node reach taken from the store's [`ReachCache`] (kept per
/// set of grants until the tree changes) instead of expanded by a recursive query per call: what
/// the list endpoint uses.
///
/// Call it on a reader connection, outside a transaction: it reads in one read transaction of
/// its own (on PostgreSQL `REPEATABLE READ, READ ONLY`: one snapshot for every statement), so
/// it can also drop the reach test when every person lies within the caller's reach (checked
/// in the same snapshot; see [`covers_everyone`]).
///
/// On PostgreSQL the transaction also asks for generic plans: each statement of the list is
/// prepared once per pooled connection, but with `LIMIT $n` the planner costs a generic plan
/// for 10% of the rows, so `plan_cache_mode = auto` found the custom plan cheaper and planned
/// the statement anew on every execution (0.3–0.6 ms each, three or four per request). The
/// generic plans are the same index walks. JIT is off for the same reason: a generic plan's
/// cost estimate (10% of a million rows) is above `jit_above_cost`, and the compile would be
/// paid on every execution of a walk that stops after a page.
pub fn list_people_cached(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    f: &PeopleFilter,
) -> Result<Page<PersonView>> {
    let cache = Some(&env.reach_cache);
    conn.batch(match conn.dialect() {
        Dialect::Sqlite => "BEGIN",
        Dialect::Postgres => {
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL jit = off"
        }
    })?;
    let page = list_people_with(conn, cache, true, caller, f);
    let end = conn.batch(if page.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let page = page?;
    end?;
    Ok(page)
}

/// Whether every person lies in one of `nodes` (sorted): the distinct communities of `people`,
/// one index seek each, stopping once more are seen than `nodes` holds. Costs one seek per
/// populated community in reach, so a wide reach that holds everyone (a district officer of a
/// district's own deployment) need not test each row it walks.
fn covers_everyone(conn: &mut dyn Conn, nodes: &[Uuid]) -> Result<bool> {
    let bound = i64::try_from(nodes.len())
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    let rows = conn.query(
        "WITH RECURSIVE c(id) AS (\
         SELECT (SELECT community_id FROM people ORDER BY community_id LIMIT 1) \
         UNION ALL SELECT (SELECT p.community_id FROM people p WHERE p.community_id > c.id \
         ORDER BY p.community_id LIMIT 1) FROM c WHERE c.id IS NOT NULL) \
         SELECT id FROM c WHERE id IS NOT NULL LIMIT $1",
        &[Value::Int(bound)],
    )?;
    for r in rows {
        let id: Uuid = r.get("id")?;
        if nodes.binary_search(&id).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `snapshot`: the reads run in one transaction (one snapshot), so a check of the whole table
/// and the page agree.
fn list_people_with(
    conn: &mut dyn Conn,
    cache: Option<&ReachCache>,
    snapshot: bool,
    caller: &Caller,
    f: &PeopleFilter,
) -> Result<Page<PersonView>> {
    let d = conn.dialect();
    let reach = people_reach(caller, false);
    let limit = f.limit.unwrap_or(20).clamp(1, MAX_PAGE);
    let after = f
        .after
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .map(parse_cursor)
        .transpose()?;
    let offset = if after.is_some() {
        0
    } else {
        f.offset.unwrap_or(0).max(0)
    };
    let q =
        f.q.as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
    let reach_nodes = reach.node_ids(conn, cache)?;
    let filter_nodes = match f.node {
        Some(n) => Reach {
            nodes: vec![n],
            ..Reach::default()
        }
        .node_ids(conn, cache)?,
        None => None,
    };
    let wide = reach_nodes.as_ref().is_none_or(|n| !n.is_empty());
    let plan = if !wide || f.grid.is_some() || f.household.is_some() {
        Plan::Narrow
    } else if q.is_some() {
        Plan::Grams
    } else {
        Plan::NameOrder
    };
    let (name_col, id_col, community) = match plan {
        Plan::Grams => ("g.name", "g.person_id", "g.community_id"),
        _ => ("p.name", "p.id", "p.community_id"),
    };
    // The reach by community, in a form that keeps the wide plans walking (name, id): SQLite must
    // not take the community index (and sort the whole reach: `+col` hides it); PostgreSQL must
    // test the ids as a hashed set per row, not turn them into a join that loses the order (the
    // `OR col IS NULL`, never true, keeps the subquery a filter).
    let community_in = |n: usize| match (plan, d) {
        (Plan::Narrow, _) => ids_in(d, community, n),
        (Plan::NameOrder, Dialect::Sqlite) => ids_in(d, &format!("+{community}"), n),
        (Plan::Grams, Dialect::Sqlite) => ids_in(d, community, n),
        (_, Dialect::Postgres) => format!("({} OR {community} IS NULL)", ids_in(d, community, n)),
    };
    let mut params: Vec<Value> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    if let Some(gram_q) = q.as_deref().filter(|_| plan == Plan::Grams) {
        let gram: String = gram_q.chars().take(2).collect();
        params.push(gram.into());
        conds.push(format!("g.gram = ${}", params.len()));
    }
    // Every person within the node reach (checked in the page's snapshot): no reach test per
    // row. On PostgreSQL the test is a hashed set built per statement from the reach's node
    // ids bound as JSON: most of a first page's or a count's time.
    // A reach found not to hold everyone is remembered until the tree changes.
    let everyone = match (&reach_nodes, cache) {
        (Some(nodes), Some(cache)) if snapshot && !nodes.is_empty() => {
            !cache.known_partial(&reach.nodes) && {
                let all = covers_everyone(conn, nodes)?;
                if !all {
                    cache.mark_partial(&reach.nodes);
                }
                all
            }
        }
        _ => false,
    };
    match &reach_nodes {
        None => {}
        Some(_) if everyone => {}
        Some(nodes) => {
            let mut parts = Vec::new();
            if !nodes.is_empty() {
                params.push(json_uuids(nodes.iter()));
                parts.push(community_in(params.len()));
            }
            for (col, ids) in [
                ("p.grid_id", &reach.grids),
                ("p.household_id", &reach.households),
            ] {
                match ids.as_slice() {
                    [] => {}
                    // One grid (the grid worker): a plain equality, so PostgreSQL walks
                    // `people_grid_name` in order.
                    [one] => {
                        params.push((*one).into());
                        parts.push(format!("{col} = ${}", params.len()));
                    }
                    many => {
                        params.push(json_uuids(many.iter()));
                        parts.push(ids_in(d, col, params.len()));
                    }
                }
            }
            conds.push(if parts.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("({})", parts.join(" OR "))
            });
        }
    }
    if let Some(nodes) = &filter_nodes {
        params.push(json_uuids(nodes.iter()));
        conds.push(community_in(params.len()));
    }
    if let Some(g) = f.grid {
        params.push(g.into());
        conds.push(format!("p.grid_id = ${}", params.len()));
    }
    if let Some(h) = f.household {
        params.push(h.into());
        conds.push(format!("p.household_id = ${}", params.len()));
    }
    if let Some(q) = &q {
        // The gram finds every name holding the first one or two characters; longer queries
        // (and the narrow plan) check the whole substring.
        if plan != Plan::Grams || q.chars().count() > 2 {
            params.push(format!("%{}%", escape_like(q)).into());
            conds.push(format!("{name_col} LIKE ${} ESCAPE '\\'", params.len()));
        }
    }
    if let Some(t) = f.population_type.as_deref().filter(|t| !t.is_empty()) {
        let t: PopulationType = t.parse().map_err(|e| field_err("population_type", &e))?;
        params.push(t.as_str().into());
        conds.push(format!("p.population_type = ${}", params.len()));
    }
    let cond = if conds.is_empty() {
        "1 = 1".to_owned()
    } else {
        conds.join(" AND ")
    };
    // What the rows are read from. The gram walk joins `people` only for the page's own columns
    // (and for conditions on people's columns): positions and counts stay in the gram index.
    let grams_alone = plan == Plan::Grams && !conds.iter().any(|c| refs_people(c));
    let (from, walk) = match plan {
        Plan::Grams if grams_alone => (
            "person_name_grams g JOIN people p ON p.id = g.person_id",
            "person_name_grams g",
        ),
        Plan::Grams => (
            "person_name_grams g JOIN people p ON p.id = g.person_id",
            "person_name_grams g JOIN people p ON p.id = g.person_id",
        ),
        _ => ("people p", "people p"),
    };
    let count_params = params.clone();
    // PostgreSQL counts a wide walk in its order too: unordered, it may collect every match of
    // a common gram in a bitmap first (100,000 entries for 王 at a million people) where the
    // ordered walk stops at the cap. SQLite walks in order anyway; a narrow plan would sort.
    let count_order = if d == Dialect::Postgres && plan != Plan::Narrow {
        format!(" ORDER BY {name_col}, {id_col}")
    } else {
        String::new()
    };
    // Where the page starts: after the cursor, or at the row `offset` rows in, found by walking
    // the index alone (no table or heap reads for the rows skipped), so the page itself is a
    // keyset read of `limit` rows.
    let start: Option<(String, Uuid, &str)> = match &after {
        Some((name, id)) => Some((name.clone(), *id, ">")),
        None if offset > 0 => {
            let mut p = params.clone();
            p.push(offset.into());
            conn.query_one(
                &format!(
                    "SELECT {name_col} AS name, {id_col} AS id FROM {walk} WHERE {cond} \
                     ORDER BY {name_col}, {id_col} LIMIT 1 OFFSET ${}",
                    p.len()
                ),
                &p,
            )?
            .map(|r| Ok::<_, StoreError>((r.get("name")?, r.get("id")?, ">=")))
            .transpose()?
        }
        None => None,
    };
    let past_end = after.is_none() && offset > 0 && start.is_none();
    let mut page_cond = cond.clone();
    if let Some((name, id, op)) = &start {
        params.push(name.as_str().into());
        params.push((*id).into());
        page_cond = format!(
            "{page_cond} AND ({name_col}, {id_col}) {op} (${}, ${})",
            params.len() - 1,
            params.len()
        );
    }
    params.push(limit.into());
    let rows = if past_end {
        Vec::new()
    } else {
        conn.query(
            &format!(
                "SELECT {VIEW_COLS} FROM {from} WHERE {page_cond} ORDER BY {name_col}, {id_col} LIMIT ${}",
                params.len()
            ),
            &params,
        )?
    };
    let items: Vec<PersonView> = rows
        .iter()
        .map(PersonView::from_row)
        .collect::<Result<_>>()?;
    let shown = i64::try_from(items.len()).unwrap_or(0);
    let next = (shown == limit)
        .then(|| items.last().map(|p| cursor(&p.name, p.id)))
        .flatten();
    // The total, without walking the rows before the page a second time: a short page is the
    // last one (exact); after a full page, count on from its last row, up to the cap.
    let count = |conn: &mut dyn Conn, extra: Option<(&str, Uuid)>, cap: i64| -> Result<i64> {
        let mut p = count_params.clone();
        let mut c = cond.clone();
        if let Some((name, id)) = extra {
            p.push(name.into());
            p.push(id.into());
            c = format!(
                "{c} AND ({name_col}, {id_col}) > (${}, ${})",
                p.len() - 1,
                p.len()
            );
        }
        p.push(cap.saturating_add(1).into());
        conn.query_i64(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM {walk} WHERE {c}{count_order} LIMIT ${}) t",
                p.len()
            ),
            &p,
        )
    };
    let (total, total_capped) = match (&after, items.last()) {
        (None, Some(_)) if shown < limit => (offset + shown, false),
        (None, Some(last)) => {
            let more = count(conn, Some((&last.name, last.id)), COUNT_CAP)?;
            (offset + shown + more.min(COUNT_CAP), more > COUNT_CAP)
        }
        // A cursor page, or an offset past the end: count from the start, up to the cap past
        // the offset (so a reach shorter than the offset gets its exact size).
        _ => {
            let cap = offset.saturating_add(COUNT_CAP);
            let counted = count(conn, None, cap)?;
            (counted.min(cap), counted > cap)
        }
    };
    Ok(Page {
        items,
        total,
        total_capped,
        limit,
        offset,
        next,
    })
}

/// People with this document, by blind index, within reach.
pub fn find_by_document(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    doc: &Document,
) -> Result<Vec<PersonView>> {
    find_by(
        conn,
        caller,
        "p.doc_bidx",
        env.keys.blind(BIDX_DOCUMENT, &doc.normalized()),
    )
}

/// People with this phone (several may share one), within reach.
pub fn find_by_phone(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    phone: &Phone,
) -> Result<Vec<PersonView>> {
    find_by(
        conn,
        caller,
        "p.phone_bidx",
        env.keys.blind(BIDX_PHONE, phone.as_str()),
    )
}

fn find_by(
    conn: &mut dyn Conn,
    caller: &Caller,
    col: &str,
    bidx: Vec<u8>,
) -> Result<Vec<PersonView>> {
    let reach = people_reach(caller, false);
    let mut params = params![bidx].to_vec();
    let pred = reach.predicate(conn.dialect(), PEOPLE_COLS, &mut params);
    let rows = conn.query(
        &format!("SELECT {VIEW_COLS} FROM people p WHERE {col} = $1 AND {pred} ORDER BY p.name"),
        &params,
    )?;
    rows.iter().map(PersonView::from_row).collect()
}

// ---- households ----

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Household {
    pub id: Uuid,
    pub community_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub dwelling_id: Option<Uuid>,
    pub label: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub membership_id: Uuid,
    pub role: String,
    pub valid_from: NaiveDate,
    pub person: PersonView,
}

const HH_COLS: ScopeCols<'static> = ScopeCols {
    node: "h.community_id",
    grid: Some("h.grid_id"),
    household: Some("h.id"),
};

pub fn create_household(
    tx: &mut Tx,
    caller: &Caller,
    community_id: Uuid,
    grid_id: Option<Uuid>,
    dwelling_id: Option<Uuid>,
    label: &str,
) -> Result<Household> {
    let reach = people_reach(caller, true);
    check_community(tx, caller, &reach, community_id, grid_id)?;
    let label = label.trim();
    if label.is_empty() {
        return Err(StoreError::invalid("value.required", "label"));
    }
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "households",
        &[
            ("id", id.into()),
            ("community_id", community_id.into()),
            ("grid_id", grid_id.into()),
            ("dwelling_id", dwelling_id.into()),
            ("label", label.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(Household {
        id,
        community_id,
        grid_id,
        dwelling_id,
        label: label.to_owned(),
    })
}

pub fn get_household(
    conn: &mut dyn Conn,
    caller: &Caller,
    id: Uuid,
) -> Result<(Household, Vec<Member>)> {
    let reach = people_reach(caller, false);
    let mut params = params![id].to_vec();
    let pred = reach.predicate(conn.dialect(), HH_COLS, &mut params);
    let r = conn
        .query_one(
            &format!("SELECT h.id, h.community_id, h.grid_id, h.dwelling_id, h.label FROM households h WHERE h.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let hh = Household {
        id: r.get("id")?,
        community_id: r.get("community_id")?,
        grid_id: r.get("grid_id")?,
        dwelling_id: r.get("dwelling_id")?,
        label: r.get("label")?,
    };
    let rows = conn.query(
        &format!(
            "SELECT m.id AS membership_id, m.role, m.valid_from, {VIEW_COLS} FROM memberships m \
             JOIN people p ON p.id = m.person_id WHERE m.household_id = $1 AND m.valid_to IS NULL ORDER BY m.valid_from, p.name"
        ),
        &params![id],
    )?;
    let members = rows
        .iter()
        .map(|r| {
            Ok(Member {
                membership_id: r.get("membership_id")?,
                role: r.get("role")?,
                valid_from: r.get("valid_from")?,
                person: PersonView::from_row(r)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok((hh, members))
}

/// Make a person a member of a household from `from`; the person's current household, community
/// and grid follow the household.
pub fn join_household(
    tx: &mut Tx,
    caller: &Caller,
    household: Uuid,
    person: Uuid,
    role: HouseholdRole,
    from: NaiveDate,
) -> Result<Uuid> {
    let reach = people_reach(caller, true);
    let mut params = params![household].to_vec();
    let pred = reach.predicate(tx.dialect(), HH_COLS, &mut params);
    let h = tx
        .query_one(
            &format!(
                "SELECT h.community_id, h.grid_id FROM households h WHERE h.id = $1 AND {pred}"
            ),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let was = tx
        .query_one(
            "SELECT key_id, grid_id FROM people WHERE id = $1",
            &params![person],
        )?
        .ok_or(StoreError::NotFound)?;
    let key_id: Uuid = was.get("key_id")?;
    let old_grid: Option<Uuid> = was.get("grid_id")?;
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "memberships",
        &[
            ("id", id.into()),
            ("key_id", key_id.into()),
            ("household_id", household.into()),
            ("person_id", person.into()),
            ("role", role.as_str().into()),
            ("valid_from", from.into()),
            ("valid_to", Value::Null),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    let community: Uuid = h.get("community_id")?;
    let grid: Option<Uuid> = h.get("grid_id")?;
    tx.update(
        "people",
        person,
        &[
            ("household_id", household.into()),
            ("community_id", community.into()),
            ("grid_id", grid.into()),
            ("updated_at", now.into()),
        ],
    )?;
    vulnerable_follow(tx, person, Some(community), old_grid, grid)?;
    Ok(id)
}

/// A vulnerable person's records follow the person: to the community of the household they
/// joined, and from the grid they were in to their new one (a grid set on the record by hand,
/// different from the person's, stays). Welfare checks and delivery orders are made from these
/// records, so a person who moved is checked where they live now.
fn vulnerable_follow(
    tx: &mut Tx,
    person: Uuid,
    community: Option<Uuid>,
    old_grid: Option<Uuid>,
    grid: Option<Uuid>,
) -> Result<()> {
    let now = tx.now();
    if let Some(c) = community {
        tx.update_where(
            "vulnerable",
            &[("community_id", c.into()), ("updated_at", now.into())],
            "person_id = $1 AND community_id <> $2",
            &params![person, c],
        )?;
    }
    if old_grid != grid {
        tx.update_where(
            "vulnerable",
            &[("grid_id", grid.into()), ("updated_at", now.into())],
            "person_id = $1 AND grid_id IS NOT DISTINCT FROM $2",
            &params![person, old_grid],
        )?;
    }
    Ok(())
}

/// End a membership (moved out); the history stays.
pub fn leave_household(
    tx: &mut Tx,
    caller: &Caller,
    membership: Uuid,
    until: NaiveDate,
) -> Result<()> {
    let reach = people_reach(caller, true);
    let mut params = params![membership].to_vec();
    let pred = reach.predicate(tx.dialect(), HH_COLS, &mut params);
    let m = tx
        .query_one(
            &format!("SELECT m.person_id, m.household_id FROM memberships m JOIN households h ON h.id = m.household_id WHERE m.id = $1 AND m.valid_to IS NULL AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let now = tx.now();
    tx.update(
        "memberships",
        membership,
        &[("valid_to", until.into()), ("updated_at", now.into())],
    )?;
    let person: Uuid = m.get("person_id")?;
    let hh: Uuid = m.get("household_id")?;
    let current: Option<Uuid> = tx
        .query_one(
            "SELECT household_id FROM people WHERE id = $1",
            &params![person],
        )?
        .and_then(|r| r.get("household_id").ok().flatten());
    if current == Some(hh) {
        tx.update(
            "people",
            person,
            &[("household_id", Value::Null), ("updated_at", now.into())],
        )?;
    }
    Ok(())
}

// ---- vulnerable people ----

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnerableInput {
    pub person_id: Uuid,
    pub category: String,
    #[serde(default)]
    pub helper_user_id: Option<Uuid>,
    pub contact_channel: String,
    #[serde(default)]
    pub notes: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct VulnerableView {
    pub id: Uuid,
    pub person_id: Uuid,
    pub name: String,
    pub category: String,
    pub helper_user_id: Option<Uuid>,
    pub contact_channel: String,
    pub notes: Option<String>,
}

const VULN_COLS: ScopeCols<'static> = ScopeCols {
    node: "v.community_id",
    grid: Some("v.grid_id"),
    household: None,
};

pub fn add_vulnerable(tx: &mut Tx, caller: &Caller, i: &VulnerableInput) -> Result<Uuid> {
    let category: VulnerableCategory = parse_field(&i.category, "category")?;
    let channel: ContactChannel = parse_field(&i.contact_channel, "contact_channel")?;
    let p = person_within(
        tx.conn(),
        &caller.reach(Permission::WriteVulnerable),
        i.person_id,
        "p.key_id, p.community_id, p.grid_id",
    )?
    .ok_or(StoreError::NotFound)?;
    let key_id: Uuid = p.get("key_id")?;
    if let Some(h) = i.helper_user_id {
        if tx.conn().query_i64(
            "SELECT count(*) FROM users WHERE id = $1 AND NOT disabled",
            &params![h],
        )? == 0
        {
            return Err(StoreError::invalid(
                "vulnerable.helper_unknown",
                "helper_user_id",
            ));
        }
    }
    let id = tx.new_id();
    let now = tx.now();
    let cat_ct = tx.env().keys.seal(
        tx.conn(),
        key_id,
        "vulnerable.category",
        category.as_str().as_bytes(),
    )?;
    let notes_ct = match i.notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Value::Bytes(tx.env().keys.seal(
            tx.conn(),
            key_id,
            "vulnerable.notes",
            n.as_bytes(),
        )?),
        None => Value::Null,
    };
    let bidx = tx.env().keys.blind(BIDX_CATEGORY, category.as_str());
    tx.insert(
        "vulnerable",
        &[
            ("id", id.into()),
            ("key_id", key_id.into()),
            ("person_id", i.person_id.into()),
            ("community_id", p.get::<Uuid>("community_id")?.into()),
            ("grid_id", p.get::<Option<Uuid>>("grid_id")?.into()),
            ("category_ct", cat_ct.into()),
            ("category_bidx", bidx.into()),
            ("helper_user_id", i.helper_user_id.into()),
            ("contact_channel", channel.as_str().into()),
            ("notes_ct", notes_ct),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(id)
}

/// Vulnerable people within reach, with their (decrypted) categories; optionally one category.
/// Helpers see the people assigned to them. The caller must audit this read.
pub fn list_vulnerable(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    category: Option<VulnerableCategory>,
) -> Result<Vec<VulnerableView>> {
    let reach = caller.reach(Permission::ReadVulnerable);
    let mut params: Vec<Value> = Vec::new();
    let mut pred = reach.predicate(conn.dialect(), VULN_COLS, &mut params);
    if let Some(uid) = caller.user_id {
        params.push(uid.into());
        pred = format!("({pred} OR v.helper_user_id = ${})", params.len());
    }
    if let Some(c) = category {
        params.push(env.keys.blind(BIDX_CATEGORY, c.as_str()).into());
        pred = format!("{pred} AND v.category_bidx = ${}", params.len());
    }
    let rows = conn.query(
        &format!(
            "SELECT v.id, v.person_id, p.name, v.category_ct, v.helper_user_id, v.contact_channel, v.notes_ct \
             FROM vulnerable v JOIN people p ON p.id = v.person_id WHERE {pred} ORDER BY p.name, v.id"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            let cat: Vec<u8> = r.get("category_ct")?;
            let notes: Option<Vec<u8>> = r.get("notes_ct")?;
            Ok(VulnerableView {
                id: r.get("id")?,
                person_id: r.get("person_id")?,
                name: r.get("name")?,
                category: env.keys.open_string(conn, "vulnerable.category", &cat)?,
                helper_user_id: r.get("helper_user_id")?,
                contact_channel: r.get("contact_channel")?,
                notes: notes
                    .map(|n| env.keys.open_string(conn, "vulnerable.notes", &n))
                    .transpose()?,
            })
        })
        .collect()
}

/// Change a household's label and grid (staff with write reach; outside it:
/// [`StoreError::NotFound`]). The grid must belong to the household's community; its current
/// members' grid follows, as when they join.
pub fn update_household(
    tx: &mut Tx,
    caller: &Caller,
    id: Uuid,
    label: &str,
    grid_id: Option<Uuid>,
) -> Result<Household> {
    let reach = caller.reach(Permission::WritePeople);
    let mut params = params![id].to_vec();
    let pred = reach.predicate(tx.dialect(), HH_COLS, &mut params);
    let r = tx
        .query_one(
            &format!("SELECT h.community_id, h.grid_id, h.dwelling_id FROM households h WHERE h.id = $1 AND {pred}"),
            &params,
        )?
        .ok_or(StoreError::NotFound)?;
    let community_id: Uuid = r.get("community_id")?;
    let old_grid: Option<Uuid> = r.get("grid_id")?;
    let dwelling_id: Option<Uuid> = r.get("dwelling_id")?;
    let label = label.trim();
    if label.is_empty() {
        return Err(StoreError::invalid("value.required", "label"));
    }
    // A grid worker may not move a household out of their grids.
    if grid_id != old_grid && !caller.is_system() {
        let to_own_grid = grid_id.is_some_and(|g| reach.grids.contains(&g));
        if !to_own_grid && !reach.contains_node(tx.conn(), community_id)? {
            return Err(StoreError::invalid("grid.out_of_reach", "grid_id"));
        }
    }
    check_grid(tx, grid_id, community_id)?;
    let now = tx.now();
    tx.update(
        "households",
        id,
        &[
            ("label", label.into()),
            ("grid_id", grid_id.into()),
            ("updated_at", now.into()),
        ],
    )?;
    if grid_id != old_grid {
        let members = tx.query(
            "SELECT m.person_id FROM memberships m WHERE m.household_id = $1 AND m.valid_to IS NULL",
            &params![id],
        )?;
        for m in &members {
            let person: Uuid = m.get("person_id")?;
            tx.update(
                "people",
                person,
                &[("grid_id", grid_id.into()), ("updated_at", now.into())],
            )?;
            vulnerable_follow(tx, person, None, old_grid, grid_id)?;
        }
    }
    Ok(Household {
        id,
        community_id,
        grid_id,
        dwelling_id,
        label: label.to_owned(),
    })
}
