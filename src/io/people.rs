//! People with households, one row per person: the columns, the template, validation and the
//! chunked write.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anxin_domain::Permission;
use anxin_domain::{DocType, HouseholdRole, PopulationType, Sex};
use anxin_store::people::{NewPerson, PersonInput, BIDX_DOCUMENT};
use anxin_store::scope::Caller;
use anxin_store::{params, Store, StoreError, Value, WriteCtx};
use uuid::Uuid;

use super::sheet::Sheet;
use super::{ImportError, Progress, Report, RowError};

/// One column of a kind's sheet: its key, its Chinese header (the template's), English
/// aliases, whether it must be present, and the template's example value.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub key: &'static str,
    pub zh: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
    pub example: &'static str,
}

const fn col(
    key: &'static str,
    zh: &'static str,
    aliases: &'static [&'static str],
    required: bool,
    example: &'static str,
) -> Col {
    Col {
        key,
        zh,
        aliases,
        required,
        example,
    }
}

/// The people sheet, in template order.
pub const COLUMNS: &[Col] = &[
    col("name", "姓名", &["name"], true, "张三"),
    col("sex", "性别", &["sex", "gender"], false, "男"),
    col(
        "birth_date",
        "出生日期",
        &["birth_date", "birthdate"],
        false,
        "1949-12-31",
    ),
    col(
        "population_type",
        "人口类型",
        &["population_type"],
        true,
        "户籍人口",
    ),
    col(
        "doc_type",
        "证件类型",
        &["doc_type", "document_type"],
        true,
        "居民身份证",
    ),
    col(
        "doc_number",
        "证件号码",
        &["doc_number", "document_number", "身份证号码", "身份证号"],
        false,
        "11010519491231002X",
    ),
    col(
        "phone",
        "联系电话",
        &["phone", "手机号码", "电话"],
        false,
        "13812345678",
    ),
    col("nationality", "国籍", &["nationality"], false, ""),
    col(
        "household",
        "户号",
        &["household", "household_label"],
        false,
        "1-1-101",
    ),
    col(
        "role",
        "与户主关系",
        &["household_role", "role"],
        false,
        "户主",
    ),
    col("grid", "网格", &["grid"], false, "一网格"),
];

/// Where each column is in the file: key → (index, header text as in the file).
pub(crate) struct ColumnMap(HashMap<&'static str, (usize, String)>);

impl ColumnMap {
    pub(crate) fn new(cols: &[Col], headers: &[String]) -> Self {
        let mut m = HashMap::new();
        for c in cols {
            if let Some(i) = headers.iter().position(|h| {
                let h = h.trim();
                h == c.zh || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(h))
            }) {
                m.insert(c.key, (i, headers[i].clone()));
            }
        }
        Self(m)
    }

    pub(crate) fn missing(&self, cols: &[Col], header_row: usize) -> Vec<RowError> {
        cols.iter()
            .filter(|c| c.required && !self.0.contains_key(c.key))
            .map(|c| RowError::new(header_row, c.zh, "import.column_missing"))
            .collect()
    }

    pub(crate) fn get<'a>(&self, row: &'a [String], key: &str) -> &'a str {
        self.0
            .get(key)
            .and_then(|(i, _)| row.get(*i))
            .map_or("", |s| s.trim())
    }

    /// The header to name in a report for `key` (the file's, else the template's).
    pub(crate) fn header(&self, cols: &[Col], key: &str) -> String {
        self.0.get(key).map(|(_, h)| h.clone()).unwrap_or_else(|| {
            cols.iter()
                .find(|c| c.key == key)
                .map_or(String::new(), |c| c.zh.to_owned())
        })
    }
}

/// A closed-list value given as its code, its Chinese label, a prefix of the label of at least
/// two characters (户籍 for 户籍人口) or an alias; anything else is passed through for the
/// parser to refuse.
pub fn vocab<T: Copy>(
    raw: &str,
    all: &[T],
    code: fn(T) -> &'static str,
    zh: fn(T) -> &'static str,
    aliases: &[(&str, &'static str)],
) -> String {
    let raw = raw.trim();
    if raw.is_empty() {
        return String::new();
    }
    for &t in all {
        if code(t).eq_ignore_ascii_case(raw)
            || zh(t) == raw
            || (raw.chars().count() >= 2 && !raw.is_ascii() && zh(t).starts_with(raw))
        {
            return code(t).to_owned();
        }
    }
    aliases
        .iter()
        .find(|(a, _)| *a == raw)
        .map_or_else(|| raw.to_owned(), |(_, c)| (*c).to_owned())
}

fn map_population(raw: &str) -> String {
    vocab(
        raw,
        PopulationType::ALL,
        PopulationType::as_str,
        PopulationType::zh,
        &[
            ("常住", "resident"),
            ("常住人口", "resident"),
            ("境外", "foreign"),
        ],
    )
}

fn map_doc_type(raw: &str) -> String {
    vocab(
        raw,
        DocType::ALL,
        DocType::as_str,
        DocType::zh,
        &[("身份证", "mainland_id"), ("无", "none"), ("", "none")],
    )
}

fn map_sex(raw: &str) -> String {
    vocab(
        raw,
        Sex::ALL,
        Sex::as_str,
        Sex::zh,
        &[("男性", "male"), ("女性", "female")],
    )
}

fn map_role(raw: &str) -> String {
    vocab(
        raw,
        HouseholdRole::ALL,
        HouseholdRole::as_str,
        HouseholdRole::zh,
        &[
            ("本人", "head"),
            ("妻", "spouse"),
            ("夫", "spouse"),
            ("子", "child"),
            ("女", "child"),
        ],
    )
}

/// The column key a store error's field is about.
fn key_of_field(field: &str) -> &'static str {
    match field {
        "name" => "name",
        "sex" => "sex",
        "birth_date" => "birth_date",
        "population_type" => "population_type",
        "doc_type" => "doc_type",
        "doc_number" | "document_number" => "doc_number",
        "phone" => "phone",
        "household_role" => "role",
        "grid_id" => "grid",
        _ => "",
    }
}

/// A row that passed every check, ready to write.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub row: usize,
    pub person: NewPerson,
    pub household: Option<(String, HouseholdRole)>,
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct Options {
    pub community: Uuid,
    pub valid_only: bool,
    /// Rows sealed and written at a time (the import is one write transaction).
    pub chunk: usize,
}

impl Options {
    pub fn new(community: Uuid, valid_only: bool) -> Self {
        Self {
            community,
            valid_only,
            chunk: 5_000,
        }
    }
}

struct Context {
    grids: HashMap<String, Uuid>,
    households: HashMap<String, (Uuid, Option<Uuid>)>,
}

/// Check the target community (it must be a community within the caller's write reach) and
/// load its grids and households by name.
fn load_context(
    conn: &mut dyn anxin_store::Conn,
    caller: &Caller,
    community: Uuid,
) -> anxin_store::Result<Context> {
    let level = conn
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![community])?
        .map(|r| r.get::<String>("level"))
        .transpose()?;
    if level.as_deref() != Some("community") {
        return Err(StoreError::NotFound);
    }
    if !caller.is_system()
        && !caller
            .reach(Permission::WritePeople)
            .contains_node(conn, community)?
    {
        return Err(StoreError::NotFound);
    }
    let mut grids = HashMap::new();
    for r in conn.query(
        "SELECT id, name FROM grids WHERE community_id = $1",
        &params![community],
    )? {
        grids.insert(r.get::<String>("name")?, r.get::<Uuid>("id")?);
    }
    let mut households = HashMap::new();
    for r in conn.query(
        "SELECT id, label, grid_id FROM households WHERE community_id = $1",
        &params![community],
    )? {
        households.insert(
            r.get::<String>("label")?,
            (r.get::<Uuid>("id")?, r.get::<Option<Uuid>>("grid_id")?),
        );
    }
    Ok(Context { grids, households })
}

/// Validate every row (no database access beyond `ctx`): the domain parsers, closed lists in
/// Chinese or as codes, grids by name, duplicates within the file.
fn validate(
    sheet: &Sheet,
    map: &ColumnMap,
    ctx: &Context,
    community: Uuid,
    progress: &Progress,
) -> (Vec<Prepared>, Vec<RowError>) {
    let mut ok = Vec::with_capacity(sheet.rows.len());
    let mut errors = Vec::new();
    let mut seen_docs: HashMap<String, usize> = HashMap::new();
    let mut hh_grid: HashMap<String, Option<Uuid>> = HashMap::new();
    for (row, cells) in &sheet.rows {
        let row = *row;
        let get = |k: &str| map.get(cells, k);
        let err = |k: &str, code: &str| RowError::new(row, map.header(COLUMNS, k), code);
        let mut row_errors = Vec::new();
        let grid = match get("grid") {
            "" => None,
            g => match ctx.grids.get(g) {
                Some(id) => Some(*id),
                None => {
                    row_errors.push(err("grid", "import.grid_unknown"));
                    None
                }
            },
        };
        let doc_type = map_doc_type(get("doc_type"));
        let input = PersonInput {
            name: get("name").to_owned(),
            sex: Some(map_sex(get("sex"))),
            birth_date: Some(get("birth_date").to_owned()),
            population_type: map_population(get("population_type")),
            doc_type: if doc_type.is_empty() && !get("doc_number").is_empty() {
                "mainland_id".into()
            } else {
                doc_type
            },
            doc_number: Some(get("doc_number").to_owned()),
            phone: Some(get("phone").to_owned()),
            nationality: Some(get("nationality").to_owned()),
            community_id: community,
            grid_id: grid,
            household_id: None,
            household_role: None,
        };
        let parsed = NewPerson::parse(&input);
        let role = match get("role") {
            "" => Ok(HouseholdRole::Other),
            r => map_role(r).parse::<HouseholdRole>(),
        };
        if role.is_err() {
            row_errors.push(err("role", "value.invalid"));
        }
        let label = get("household").to_owned();
        if !label.is_empty() {
            let known = ctx.households.get(&label).map(|(_, g)| *g);
            let first = hh_grid
                .entry(label.clone())
                .or_insert(known.unwrap_or(grid));
            if grid.is_some() && *first != grid {
                if first.is_none() && known.is_none() {
                    *first = grid;
                } else {
                    row_errors.push(err("grid", "import.household_grid_mismatch"));
                }
            }
        }
        match parsed {
            Err(StoreError::Invalid { code, field }) => {
                row_errors.push(err(key_of_field(&field), code));
            }
            Err(e) => row_errors.push(err("", &format!("{e}"))),
            Ok(p) => {
                if p.document.doc_type() != DocType::None {
                    let n = p.document.normalized();
                    if let Some(first) = seen_docs.get(&n) {
                        let mut e = err("doc_number", "import.duplicate_in_file");
                        e.message = format!("{}（第 {first} 行）", e.message);
                        row_errors.push(e);
                    } else {
                        seen_docs.insert(n, row);
                    }
                }
                if row_errors.is_empty() {
                    ok.push(Prepared {
                        row,
                        person: p,
                        household: (!label.is_empty())
                            .then(|| (label.clone(), role.unwrap_or(HouseholdRole::Other))),
                    });
                }
            }
        }
        errors.extend(row_errors);
        progress.validated.fetch_add(1, Ordering::Relaxed);
    }
    (ok, errors)
}

/// Import people into `opts.community` as `caller`. Nothing is written when any row is wrong,
/// unless `opts.valid_only`.
pub async fn import(
    store: &Store,
    wctx: WriteCtx,
    caller: &Caller,
    sheet: Sheet,
    opts: &Options,
    progress: Arc<Progress>,
) -> Result<Report, ImportError> {
    let mut report = Report {
        kind: "people",
        rows: sheet.rows.len(),
        valid_only: opts.valid_only,
        ..Report::default()
    };
    progress.total.store(
        u64::try_from(sheet.rows.len()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let map = ColumnMap::new(COLUMNS, &sheet.headers);
    report.errors = map.missing(COLUMNS, sheet.header_row);
    if !report.errors.is_empty() {
        return Ok(report);
    }
    let community = opts.community;
    let c2 = caller.clone();
    let ctx = store
        .read(move |conn, _| load_context(conn, &c2, community))
        .await?;

    // Validation and blind indexes: CPU work, off the async threads.
    let env = store.env().clone();
    let p2 = progress.clone();
    let (ctx, mut ok, mut errors, bidx) = tokio::task::spawn_blocking(move || {
        let (ok, errors) = validate(&sheet, &map, &ctx, community, &p2);
        let bidx: Vec<Option<Vec<u8>>> = ok
            .iter()
            .map(|p| {
                (p.person.document.doc_type() != DocType::None).then(|| {
                    env.keys
                        .blind(BIDX_DOCUMENT, &p.person.document.normalized())
                })
            })
            .collect();
        let header = map.header(COLUMNS, "doc_number");
        (ctx, ok, errors, (bidx, header))
    })
    .await
    .map_err(|e| ImportError::File(format!("validation stopped: {e}")))?;
    let (bidx, doc_header) = bidx;

    // Documents already registered anywhere.
    let wanted: Vec<Vec<u8>> = bidx.iter().flatten().cloned().collect();
    let taken: HashSet<Vec<u8>> = store
        .read(move |conn, _| {
            let mut taken = HashSet::new();
            for part in wanted.chunks(500) {
                let marks: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                let ps: Vec<Value> = part.iter().map(|b| Value::Bytes(b.clone())).collect();
                for r in conn.query(
                    &format!(
                        "SELECT doc_bidx FROM people WHERE doc_bidx IN ({})",
                        marks.join(",")
                    ),
                    &ps,
                )? {
                    taken.insert(r.get::<Vec<u8>>("doc_bidx")?);
                }
            }
            Ok(taken)
        })
        .await?;
    if !taken.is_empty() {
        let mut keep = Vec::with_capacity(ok.len());
        for (p, b) in ok.into_iter().zip(bidx) {
            if b.as_ref().is_some_and(|b| taken.contains(b)) {
                errors.push(RowError::new(
                    p.row,
                    doc_header.clone(),
                    "person.document_taken",
                ));
            } else {
                keep.push(p);
            }
        }
        ok = keep;
    }
    errors.sort_by_key(|e| e.row);
    report.valid = ok.len();
    report.errors = errors;
    if !report.errors.is_empty() && !opts.valid_only {
        return Ok(report);
    }
    if ok.is_empty() {
        return Ok(report);
    }

    // New households (their grid is their first member's) and the people go in as one write on
    // the store's bulk path: all or nothing. Sealing and key wrapping run beside the write, a
    // chunk or two ahead of it.
    let env = store.env().clone();
    let mut households: HashMap<String, (Uuid, Option<Uuid>)> = ctx.households.clone();
    let mut new_hh: Vec<(String, Uuid, Option<Uuid>)> = Vec::new();
    for p in &mut ok {
        if let Some((label, role)) = &p.household {
            let (id, grid) = *households.entry(label.clone()).or_insert_with(|| {
                let made = (env.ids.new_id(), p.person.grid_id);
                new_hh.push((label.clone(), made.0, made.1));
                made
            });
            p.person.household = Some((id, *role));
            p.person.grid_id = grid;
        }
    }
    let total = ok.len();
    let households_created = new_hh.len();
    let mut chunks: Vec<Vec<Prepared>> = Vec::new();
    let mut rows = ok;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(opts.chunk.max(1)));
        chunks.push(std::mem::replace(&mut rows, rest));
    }
    let (send, recv) = std::sync::mpsc::sync_channel::<anxin_store::Result<SealedChunk>>(2);
    let env2 = env.clone();
    let producer = tokio::task::spawn_blocking(move || {
        for part in chunks {
            let sealed = sealed_chunk(&env2, &part);
            let stop = sealed.is_err();
            if send.send(sealed).is_err() || stop {
                break;
            }
        }
    });
    let at_row = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let at_row2 = at_row.clone();
    let p2 = progress.clone();
    let res = store
        .write_alone(wctx, move |tx| {
            tx.bulk_begin(total)?;
            let now = tx.now();
            // The community was checked for the caller in `load_context` and every grid is one
            // of its grids (validation).
            let hh: Vec<Vec<Value>> = new_hh
                .iter()
                .map(|(label, id, grid)| {
                    vec![
                        (*id).into(),
                        community.into(),
                        (*grid).into(),
                        Value::Null,
                        label.as_str().into(),
                        now.into(),
                        now.into(),
                    ]
                })
                .collect();
            tx.bulk_insert("households", HOUSEHOLD_COLS, &hh)?;
            let mut written = 0;
            for chunk in recv {
                let chunk = chunk?;
                at_row2.store(chunk.first_row, Ordering::Relaxed);
                let n = chunk.people.len();
                write_chunk(tx, chunk)?;
                tx.bulk_flush_log()?;
                written += n;
                p2.written
                    .fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
            }
            if written != total {
                return Err(StoreError::Backend(format!(
                    "import stopped after {written} of {total} people"
                )));
            }
            Ok(())
        })
        .await;
    let _ = producer.await;
    match res {
        Ok(()) => {
            report.imported = total;
            report.households_created = households_created;
            report.written = true;
        }
        Err(e @ (StoreError::Conflict { .. } | StoreError::Invalid { .. })) => {
            let code = match &e {
                StoreError::Conflict { code, .. } | StoreError::Invalid { code, .. } => *code,
                _ => "import.write_failed",
            };
            progress.written.store(0, Ordering::Relaxed);
            report
                .errors
                .push(RowError::new(at_row.load(Ordering::Relaxed), "", code));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(report)
}

const HOUSEHOLD_COLS: &[&str] = &[
    "id",
    "community_id",
    "grid_id",
    "dwelling_id",
    "label",
    "created_at",
    "updated_at",
];

/// One chunk of people ready to write: data keys made and wrapped, document and phone sealed,
/// blind indexes and masks computed. Times are filled in by the write (its own instant).
struct SealedChunk {
    first_row: usize,
    keys: Vec<(Arc<anxin_crypto::DataKey>, anxin_crypto::WrappedKey)>,
    people: Vec<Vec<Value>>,
    memberships: Vec<Vec<Value>>,
}

const PEOPLE_COLS: &[&str] = &[
    "id",
    "key_id",
    "community_id",
    "grid_id",
    "household_id",
    "name",
    "sex",
    "birth_date",
    "population_type",
    "nationality",
    "doc_type",
    "doc_ct",
    "doc_bidx",
    "doc_mask",
    "phone_ct",
    "phone_bidx",
    "phone_mask",
    "created_at",
    "updated_at",
];
const MEMBERSHIP_COLS: &[&str] = &[
    "id",
    "key_id",
    "household_id",
    "person_id",
    "role",
    "valid_from",
    "valid_to",
    "created_at",
    "updated_at",
];

/// The CPU work of the bulk path, outside the writer: a person is written as
/// `people::create_person` + `join_household` would write it (own data key, sealed document and
/// phone, blind indexes, masks, membership).
fn sealed_chunk(env: &anxin_store::Env, part: &[Prepared]) -> anxin_store::Result<SealedChunk> {
    use anxin_domain::{mask_document, mask_phone};
    use anxin_store::people::BIDX_PHONE;
    let mut out = SealedChunk {
        first_row: part.first().map_or(0, |p| p.row),
        keys: Vec::with_capacity(part.len()),
        people: Vec::with_capacity(part.len()),
        memberships: Vec::with_capacity(part.len()),
    };
    let seal = |dk: &anxin_crypto::DataKey, field: &str, pt: &str| -> anxin_store::Result<Value> {
        Ok(Value::Bytes(anxin_crypto::encrypt(
            dk,
            pt.as_bytes(),
            field.as_bytes(),
        )?))
    };
    for pr in part {
        let p = &pr.person;
        let id = env.ids.new_id();
        let (dk, wrapped) = anxin_store::tx::make_data_key(env, env.ids.new_id())?;
        let key_id = dk.id();
        let doc = &p.document;
        let (doc_ct, doc_bidx, doc_mask) = if doc.doc_type() == DocType::None {
            (Value::Null, Value::Null, Value::Null)
        } else {
            (
                seal(&dk, "people.doc_number", doc.number())?,
                Value::Bytes(env.keys.blind(BIDX_DOCUMENT, &doc.normalized())),
                Value::Text(mask_document(doc)),
            )
        };
        let (phone_ct, phone_bidx, phone_mask) = match &p.phone {
            Some(ph) => (
                seal(&dk, "people.phone", ph.as_str())?,
                Value::Bytes(env.keys.blind(BIDX_PHONE, ph.as_str())),
                Value::Text(mask_phone(ph)),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        out.people.push(vec![
            id.into(),
            key_id.into(),
            p.community_id.into(),
            p.grid_id.into(),
            p.household.map(|(h, _)| h).into(),
            p.name.as_str().into(),
            p.sex.map(Sex::as_str).into(),
            p.birth_date.into(),
            p.population_type.as_str().into(),
            p.nationality.clone().into(),
            doc.doc_type().as_str().into(),
            doc_ct,
            doc_bidx,
            doc_mask,
            phone_ct,
            phone_bidx,
            phone_mask,
            Value::Null,
            Value::Null,
        ]);
        if let Some((h, role)) = p.household {
            out.memberships.push(vec![
                env.ids.new_id().into(),
                key_id.into(),
                h.into(),
                id.into(),
                role.as_str().into(),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]);
        }
        out.keys.push((dk, wrapped));
    }
    Ok(out)
}

/// Write a sealed chunk on the store's bulk path: its data keys, people (with their name grams)
/// and memberships, each record with its change-log entry (`Tx::bulk_insert`).
fn write_chunk(tx: &mut anxin_store::Tx, mut c: SealedChunk) -> anxin_store::Result<()> {
    let now = tx.now();
    for r in &mut c.people {
        let n = r.len();
        r[n - 2] = now.into();
        r[n - 1] = now.into();
    }
    for r in &mut c.memberships {
        r[5] = now.date_naive().into();
        r[7] = now.into();
        r[8] = now.into();
    }
    tx.bulk_add_data_keys(c.keys)?;
    tx.bulk_insert("people", PEOPLE_COLS, &c.people)?;
    tx.bulk_insert("memberships", MEMBERSHIP_COLS, &c.memberships)?;
    Ok(())
}

/// The template's rows: the header and one example row.
pub fn template() -> (Vec<&'static str>, Vec<Vec<String>>) {
    (
        COLUMNS.iter().map(|c| c.zh).collect(),
        vec![COLUMNS.iter().map(|c| c.example.to_owned()).collect()],
    )
}
