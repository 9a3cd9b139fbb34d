//! The import engine of the place lists (buildings, dwellings, facilities) and the vulnerable
//! people list: each kind is a column table, a loader of what its rows may name within the
//! target community, a row validator and a writer through the store's own insert function.
//!
//! The engine reads the sheet, maps the headers, validates every row inside one read (the rows
//! name grids, compounds, buildings and people by name or number *within the target community*,
//! so a reference to anything outside the caller's reach is simply unknown: a row error, never a
//! leak), and writes only when no row is wrong, unless the user chose "import the valid rows".
//! Writes go in chunks, each chunk one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anxin_domain::geo::Crs;
use anxin_domain::{
    ContactChannel, DocType, Document, FacilityKind, FacilityStatus, Permission, VulnerableCategory,
};
use anxin_store::people::{self, VulnerableInput, BIDX_CATEGORY};
use anxin_store::places::{
    self, BuildingInput, DwellingInput, FacilityInput, LocationInput, NewBuilding, NewDwelling,
    NewFacility,
};
use anxin_store::scope::Caller;
use anxin_store::{params, Conn, Env, Store, StoreError, Tx, WriteCtx};
use uuid::Uuid;

use super::people::{vocab, Options};
use super::sheet::Sheet;
use super::{Col, ColumnMap, ImportError, Kind, Progress, Report, RowError};

/// One problem of a row: the column key it is about and the error code.
pub type Problem = (&'static str, &'static str);

/// The cells of one row, read by column key.
pub struct Cells<'a> {
    map: &'a ColumnMap,
    cells: &'a [String],
}

impl Cells<'_> {
    pub fn get(&self, key: &str) -> &str {
        self.map.get(self.cells, key)
    }

    /// The cell as `None` when blank.
    pub fn opt(&self, key: &str) -> Option<String> {
        Some(self.get(key))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// A whole number; `value.number` otherwise.
    pub fn int(&self, key: &'static str) -> Result<Option<i64>, Problem> {
        match self.get(key) {
            "" => Ok(None),
            s => s
                .parse::<i64>()
                .or_else(|_| match s.parse::<f64>() {
                    // A spreadsheet may store 6 as 6.0.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
                    _ => Err(()),
                })
                .map(Some)
                .map_err(|()| (key, "value.number")),
        }
    }

    /// A decimal number; `value.number` otherwise.
    pub fn num(&self, key: &'static str) -> Result<Option<f64>, Problem> {
        match self.get(key) {
            "" => Ok(None),
            s => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or((key, "value.number")),
        }
    }

    /// Longitude, latitude and their declared system, when any of the three is given.
    pub fn location(&self) -> Result<Option<LocationInput>, Problem> {
        let (lon, lat) = (self.num("lon")?, self.num("lat")?);
        let crs = self.get("crs");
        if lon.is_none() && lat.is_none() && crs.is_empty() {
            return Ok(None);
        }
        Ok(Some(LocationInput {
            lon,
            lat,
            crs: Some(map_crs(crs)).filter(|c| !c.is_empty()),
        }))
    }
}

/// A coordinate system as people write it: its code, label, or the map service it comes from.
fn map_crs(raw: &str) -> String {
    let norm: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '_'))
        .collect::<String>()
        .to_ascii_lowercase();
    vocab(
        &norm,
        Crs::ALL,
        Crs::as_str,
        Crs::zh,
        &[
            ("高德", "gcj02"),
            ("腾讯", "gcj02"),
            ("火星坐标", "gcj02"),
            ("百度", "bd09"),
            ("国家2000", "cgcs2000"),
            ("天地图", "cgcs2000"),
            ("gps", "wgs84"),
        ],
    )
}

/// The column a store error's field is about: the key itself, or the part after `location.`.
fn key_of(cols: &[Col], field: &str) -> &'static str {
    let f = field.strip_prefix("location.").unwrap_or(field);
    let f = match f {
        "location" => "lon",
        "area_m2" => "area",
        "node_id" => "compound",
        "grid_id" => "grid",
        "unit_id" => "unit",
        "person_id" => "person",
        "contact_channel" => "channel",
        other => other,
    };
    cols.iter().find(|c| c.key == f).map_or("", |c| c.key)
}

fn store_problem(cols: &[Col], e: StoreError) -> Problem {
    match e {
        StoreError::Invalid { code, field } => (key_of(cols, &field), code),
        StoreError::Conflict { code, .. } => ("", code),
        _ => ("", "import.write_failed"),
    }
}

/// One importable kind.
pub trait ListKind {
    /// What the rows may refer to, loaded once per import.
    type Ctx;
    /// A row that passed every check.
    type Item: Send + 'static;
    const KIND: Kind;
    const COLUMNS: &'static [Col];
    /// The permission a write needs over the target community.
    const WRITE: Permission;
    fn load(
        conn: &mut dyn Conn,
        caller: &Caller,
        community: Uuid,
    ) -> anxin_store::Result<Self::Ctx>;
    /// Check one row; `Err` lists every problem found.
    fn validate(
        ctx: &mut Self::Ctx,
        conn: &mut dyn Conn,
        env: &Env,
        caller: &Caller,
        row: &Cells<'_>,
    ) -> anxin_store::Result<Result<Self::Item, Vec<Problem>>>;
    fn write(tx: &mut Tx, caller: &Caller, item: &Self::Item) -> anxin_store::Result<()>;
}

/// The target must be a community within the caller's reach for `p`; anything else is not found.
fn check_community(
    conn: &mut dyn Conn,
    caller: &Caller,
    community: Uuid,
    p: Permission,
) -> anxin_store::Result<()> {
    let level = conn
        .query_one("SELECT level FROM nodes WHERE id = $1", &params![community])?
        .map(|r| r.get::<String>("level"))
        .transpose()?;
    if level.as_deref() != Some("community") {
        return Err(StoreError::NotFound);
    }
    if !caller.is_system() && !caller.reach(p).contains_node(conn, community)? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Import `sheet` as kind `K` into `opts.community` as `caller`. Nothing is written when any
/// row is wrong, unless `opts.valid_only`.
pub async fn import<K: ListKind + 'static>(
    store: &Store,
    wctx: WriteCtx,
    caller: &Caller,
    sheet: Sheet,
    opts: &Options,
    progress: Arc<Progress>,
) -> Result<Report, ImportError> {
    let mut report = Report {
        kind: K::KIND.as_str(),
        rows: sheet.rows.len(),
        valid_only: opts.valid_only,
        ..Report::default()
    };
    progress.total.store(
        u64::try_from(sheet.rows.len()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let map = ColumnMap::new(K::COLUMNS, &sheet.headers);
    report.errors = map.missing(K::COLUMNS, sheet.header_row);
    if !report.errors.is_empty() {
        return Ok(report);
    }
    let community = opts.community;
    let c2 = caller.clone();
    let p2 = progress.clone();
    let (ok, errors) = store
        .read(move |conn, env| {
            check_community(conn, &c2, community, K::WRITE)?;
            let mut ctx = K::load(conn, &c2, community)?;
            let mut ok: Vec<(usize, K::Item)> = Vec::with_capacity(sheet.rows.len());
            let mut errors = Vec::new();
            for (row, cells) in &sheet.rows {
                let c = Cells { map: &map, cells };
                match K::validate(&mut ctx, conn, env, &c2, &c)? {
                    Ok(item) => ok.push((*row, item)),
                    Err(problems) => errors.extend(
                        problems
                            .into_iter()
                            .map(|(k, code)| RowError::new(*row, map.header(K::COLUMNS, k), code)),
                    ),
                }
                p2.validated.fetch_add(1, Ordering::Relaxed);
            }
            Ok((ok, errors))
        })
        .await?;
    report.valid = ok.len();
    report.errors = errors;
    if (!report.errors.is_empty() && !opts.valid_only) || ok.is_empty() {
        return Ok(report);
    }
    let mut rows = ok;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(opts.chunk.max(1)));
        let part = std::mem::replace(&mut rows, rest);
        let n = part.len();
        let c2 = caller.clone();
        let res = store
            .write(wctx.clone(), move |tx| {
                for (row, item) in &part {
                    K::write(tx, &c2, item).map_err(|e| {
                        let (key, code) = store_problem(K::COLUMNS, e);
                        StoreError::Invalid {
                            code,
                            field: format!("row:{row}:{key}"),
                        }
                    })?;
                }
                Ok(())
            })
            .await;
        match res {
            Ok(()) => {
                report.imported += n;
                report.written = true;
                progress
                    .written
                    .fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
            }
            Err(StoreError::Invalid { code, field }) if field.starts_with("row:") => {
                let mut it = field[4..].splitn(2, ':');
                let row = it.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                let key = it.next().unwrap_or("");
                let map = ColumnMap::new(K::COLUMNS, &[]);
                report
                    .errors
                    .push(RowError::new(row, map.header(K::COLUMNS, key), code));
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// Names → ids within one community: its grids and compounds.
pub struct Places {
    community: Uuid,
    grids: HashMap<String, Uuid>,
    compounds: HashMap<String, Uuid>,
}

fn load_places(conn: &mut dyn Conn, community: Uuid) -> anxin_store::Result<Places> {
    let mut grids = HashMap::new();
    for r in conn.query(
        "SELECT id, name FROM grids WHERE community_id = $1",
        &params![community],
    )? {
        grids.insert(r.get::<String>("name")?, r.get::<Uuid>("id")?);
    }
    let mut compounds = HashMap::new();
    for r in conn.query(
        "SELECT id, name FROM nodes WHERE parent_id = $1 AND level = 'compound' AND status = 'active'",
        &params![community],
    )? {
        compounds.insert(r.get::<String>("name")?, r.get::<Uuid>("id")?);
    }
    Ok(Places {
        community,
        grids,
        compounds,
    })
}

impl Places {
    /// The compound named in the row, or the community when none is.
    fn node(&self, row: &Cells<'_>, problems: &mut Vec<Problem>) -> Uuid {
        match row.get("compound") {
            "" => self.community,
            name => self.compounds.get(name).copied().unwrap_or_else(|| {
                problems.push(("compound", "import.compound_unknown"));
                self.community
            }),
        }
    }

    fn grid(&self, row: &Cells<'_>, problems: &mut Vec<Problem>) -> Option<Uuid> {
        match row.get("grid") {
            "" => None,
            name => {
                let g = self.grids.get(name).copied();
                if g.is_none() {
                    problems.push(("grid", "import.grid_unknown"));
                }
                g
            }
        }
    }
}

fn parse_with<T>(
    cols: &[Col],
    mut problems: Vec<Problem>,
    parsed: anxin_store::Result<T>,
) -> anxin_store::Result<Result<T, Vec<Problem>>> {
    match parsed {
        Ok(t) if problems.is_empty() => Ok(Ok(t)),
        Ok(_) => Ok(Err(problems)),
        Err(e @ (StoreError::Invalid { .. } | StoreError::Conflict { .. })) => {
            problems.push(store_problem(cols, e));
            Ok(Err(problems))
        }
        Err(e) => Err(e),
    }
}

/// The first problem of a fallible cell read, kept; the value or its default.
fn take<T: Default>(problems: &mut Vec<Problem>, r: Result<T, Problem>) -> T {
    r.unwrap_or_else(|p| {
        problems.push(p);
        T::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Buildings.

pub struct Buildings;

pub const BUILDING_COLUMNS: &[Col] = &[
    Col::new(
        "name",
        "楼栋名称",
        &["name", "building", "楼栋"],
        true,
        "1栋",
    ),
    Col::new("compound", "所属小区", &["compound"], false, ""),
    Col::new("grid", "网格", &["grid"], false, "一网格"),
    Col::new("address", "地址", &["address"], false, "水井街1号"),
    Col::new("floors", "层数", &["floors"], false, "6"),
    Col::new("lon", "经度", &["lon", "longitude"], false, "104.0817"),
    Col::new("lat", "纬度", &["lat", "latitude"], false, "30.6520"),
    Col::new("crs", "坐标系", &["crs"], false, "WGS84"),
];

impl ListKind for Buildings {
    type Ctx = (Places, HashSet<String>);
    type Item = NewBuilding;
    const KIND: Kind = Kind::Buildings;
    const COLUMNS: &'static [Col] = BUILDING_COLUMNS;
    const WRITE: Permission = Permission::WriteBase;

    fn load(conn: &mut dyn Conn, _: &Caller, community: Uuid) -> anxin_store::Result<Self::Ctx> {
        let mut names = HashSet::new();
        for r in conn.query(
            "SELECT name FROM buildings WHERE community_id = $1",
            &params![community],
        )? {
            names.insert(r.get::<String>("name")?);
        }
        Ok((load_places(conn, community)?, names))
    }

    fn validate(
        (places, names): &mut Self::Ctx,
        _: &mut dyn Conn,
        _: &Env,
        _: &Caller,
        row: &Cells<'_>,
    ) -> anxin_store::Result<Result<NewBuilding, Vec<Problem>>> {
        let mut problems = Vec::new();
        let node_id = places.node(row, &mut problems);
        let grid_id = places.grid(row, &mut problems);
        let floors = take(&mut problems, row.int("floors"));
        let location = take(&mut problems, row.location());
        let name = row.get("name");
        if !name.is_empty() && !names.insert(name.to_owned()) {
            problems.push(("name", "import.already_exists"));
        }
        let parsed = NewBuilding::parse(BuildingInput {
            node_id: Some(node_id),
            grid_id,
            name: row.opt("name"),
            address: row.opt("address"),
            floors,
            location,
        });
        parse_with(Self::COLUMNS, problems, parsed)
    }

    fn write(tx: &mut Tx, caller: &Caller, item: &NewBuilding) -> anxin_store::Result<()> {
        places::create_building(tx, caller, item).map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------
// Dwellings.

pub struct Dwellings;

pub const DWELLING_COLUMNS: &[Col] = &[
    Col::new("building", "楼栋名称", &["building", "楼栋"], true, "1栋"),
    Col::new("unit", "单元", &["unit"], false, ""),
    Col::new("number", "门牌号", &["number", "房号"], true, "101"),
    Col::new("floor", "楼层", &["floor"], false, "1"),
    Col::new(
        "area",
        "建筑面积（平方米）",
        &["area_m2", "area", "面积"],
        false,
        "89.5",
    ),
];

/// A community's buildings by name, their units by name, and the door numbers taken.
pub struct DwellingCtx {
    buildings: HashMap<String, Uuid>,
    units: HashMap<(Uuid, String), Uuid>,
    taken: HashSet<(Uuid, String)>,
}

impl ListKind for Dwellings {
    type Ctx = DwellingCtx;
    type Item = (Uuid, NewDwelling);
    const KIND: Kind = Kind::Dwellings;
    const COLUMNS: &'static [Col] = DWELLING_COLUMNS;
    const WRITE: Permission = Permission::WriteBase;

    fn load(conn: &mut dyn Conn, _: &Caller, community: Uuid) -> anxin_store::Result<DwellingCtx> {
        let mut ctx = DwellingCtx {
            buildings: HashMap::new(),
            units: HashMap::new(),
            taken: HashSet::new(),
        };
        for r in conn.query(
            "SELECT id, name FROM buildings WHERE community_id = $1",
            &params![community],
        )? {
            ctx.buildings
                .insert(r.get::<String>("name")?, r.get::<Uuid>("id")?);
        }
        for r in conn.query(
            "SELECT u.id, u.building_id, u.name FROM units u JOIN buildings b ON b.id = u.building_id \
             WHERE b.community_id = $1",
            &params![community],
        )? {
            ctx.units.insert(
                (r.get::<Uuid>("building_id")?, r.get::<String>("name")?),
                r.get::<Uuid>("id")?,
            );
        }
        for r in conn.query(
            "SELECT d.building_id, d.number FROM dwellings d JOIN buildings b ON b.id = d.building_id \
             WHERE b.community_id = $1",
            &params![community],
        )? {
            ctx.taken
                .insert((r.get::<Uuid>("building_id")?, r.get::<String>("number")?));
        }
        Ok(ctx)
    }

    fn validate(
        ctx: &mut DwellingCtx,
        _: &mut dyn Conn,
        _: &Env,
        _: &Caller,
        row: &Cells<'_>,
    ) -> anxin_store::Result<Result<Self::Item, Vec<Problem>>> {
        let mut problems = Vec::new();
        let building = match row.get("building") {
            "" => {
                problems.push(("building", "value.required"));
                None
            }
            name => {
                let b = ctx.buildings.get(name).copied();
                if b.is_none() {
                    problems.push(("building", "import.building_unknown"));
                }
                b
            }
        };
        let unit_id = match (building, row.get("unit")) {
            (Some(b), u) if !u.is_empty() => {
                let id = ctx.units.get(&(b, u.to_owned())).copied();
                if id.is_none() {
                    problems.push(("unit", "import.unit_unknown"));
                }
                id
            }
            _ => None,
        };
        let floor = take(&mut problems, row.int("floor"));
        let area_m2 = take(&mut problems, row.num("area"));
        let number = row.get("number");
        if let Some(b) = building {
            if !number.is_empty() && !ctx.taken.insert((b, number.to_owned())) {
                problems.push(("number", "import.already_exists"));
            }
        }
        let parsed = NewDwelling::parse(DwellingInput {
            unit_id,
            number: row.opt("number"),
            floor,
            area_m2,
        })
        .map(|d| (building.unwrap_or_default(), d));
        parse_with(Self::COLUMNS, problems, parsed)
    }

    fn write(tx: &mut Tx, caller: &Caller, (b, d): &Self::Item) -> anxin_store::Result<()> {
        places::create_dwelling(tx, caller, *b, d).map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------
// Facilities.

pub struct Facilities;

pub const FACILITY_COLUMNS: &[Col] = &[
    Col::new("kind", "设施类型", &["kind", "类型"], true, "应急避难场所"),
    Col::new(
        "name",
        "设施名称",
        &["name", "名称"],
        true,
        "水井坊广场避难点",
    ),
    Col::new("compound", "所属小区", &["compound"], false, ""),
    Col::new("capacity", "容纳人数", &["capacity"], false, "500"),
    Col::new(
        "area",
        "面积（平方米）",
        &["area_m2", "area", "面积"],
        false,
        "1200",
    ),
    Col::new("status", "状态", &["status"], false, "在用"),
    Col::new("lon", "经度", &["lon", "longitude"], false, "104.0817"),
    Col::new("lat", "纬度", &["lat", "latitude"], false, "30.6520"),
    Col::new("crs", "坐标系", &["crs"], false, "WGS84"),
];

impl ListKind for Facilities {
    type Ctx = Places;
    type Item = NewFacility;
    const KIND: Kind = Kind::Facilities;
    const COLUMNS: &'static [Col] = FACILITY_COLUMNS;
    const WRITE: Permission = Permission::WriteBase;

    fn load(conn: &mut dyn Conn, _: &Caller, community: Uuid) -> anxin_store::Result<Places> {
        load_places(conn, community)
    }

    fn validate(
        places: &mut Places,
        _: &mut dyn Conn,
        _: &Env,
        _: &Caller,
        row: &Cells<'_>,
    ) -> anxin_store::Result<Result<NewFacility, Vec<Problem>>> {
        let mut problems = Vec::new();
        let node_id = places.node(row, &mut problems);
        let capacity = take(&mut problems, row.int("capacity"));
        let area_m2 = take(&mut problems, row.num("area"));
        let location = take(&mut problems, row.location());
        let kind = vocab(
            row.get("kind"),
            FacilityKind::ALL,
            FacilityKind::as_str,
            FacilityKind::zh,
            &[("避难场所", "shelter"), ("消防栓", "hydrant")],
        );
        let status = vocab(
            row.get("status"),
            FacilityStatus::ALL,
            FacilityStatus::as_str,
            FacilityStatus::zh,
            &[
                ("正常", "active"),
                ("开放", "open"),
                ("维修", "maintenance"),
            ],
        );
        let parsed = NewFacility::parse(FacilityInput {
            node_id: Some(node_id),
            kind: Some(kind).filter(|k| !k.is_empty()),
            name: row.opt("name"),
            location,
            capacity,
            area_m2,
            status: Some(status).filter(|s| !s.is_empty()),
            attrs: None,
        });
        parse_with(Self::COLUMNS, problems, parsed)
    }

    fn write(tx: &mut Tx, caller: &Caller, item: &NewFacility) -> anxin_store::Result<()> {
        places::create_facility(tx, caller, item).map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------
// Vulnerable people.

pub struct Vulnerable;

pub const VULNERABLE_COLUMNS: &[Col] = &[
    Col::new("name", "姓名", &["name"], false, "张三"),
    Col::new(
        "doc_number",
        "证件号码",
        &["doc_number", "document_number", "身份证号码", "身份证号"],
        false,
        "11010519491231002X",
    ),
    Col::new("person", "人员编号", &["person_id", "person"], false, ""),
    Col::new(
        "category",
        "类别",
        &["category", "脆弱群体类别"],
        true,
        "独居老人",
    ),
    Col::new(
        "channel",
        "联系方式",
        &["contact_channel", "channel"],
        true,
        "电话",
    ),
    Col::new("notes", "备注", &["notes"], false, ""),
];

/// Pairs (person, category) already on the list or earlier in the file.
pub struct VulnerableCtx {
    community: Uuid,
    seen: HashSet<(Uuid, &'static str)>,
}

impl ListKind for Vulnerable {
    type Ctx = VulnerableCtx;
    type Item = VulnerableInput;
    const KIND: Kind = Kind::Vulnerable;
    const COLUMNS: &'static [Col] = VULNERABLE_COLUMNS;
    const WRITE: Permission = Permission::WriteVulnerable;

    fn load(_: &mut dyn Conn, _: &Caller, community: Uuid) -> anxin_store::Result<VulnerableCtx> {
        Ok(VulnerableCtx {
            community,
            seen: HashSet::new(),
        })
    }

    fn validate(
        ctx: &mut VulnerableCtx,
        conn: &mut dyn Conn,
        env: &Env,
        caller: &Caller,
        row: &Cells<'_>,
    ) -> anxin_store::Result<Result<VulnerableInput, Vec<Problem>>> {
        let mut problems = Vec::new();
        // The person: by id (what an export carries), else by document number; either way only
        // within the caller's reach and the target community.
        let person = match (row.get("person"), row.get("doc_number")) {
            ("", "") => {
                problems.push(("doc_number", "vulnerable.person_or_document"));
                None
            }
            ("", doc) => match Document::parse(DocType::MainlandId, doc) {
                Err(e) => {
                    problems.push(("doc_number", e.code()));
                    None
                }
                Ok(d) => {
                    let found = people::find_by_document(conn, env, caller, &d)?
                        .into_iter()
                        .find(|p| p.community_id == ctx.community);
                    if found.is_none() {
                        problems.push(("doc_number", "import.person_unknown"));
                    }
                    found
                }
            },
            (id, _) => {
                let found = match id.parse::<Uuid>() {
                    Ok(id) => match people::get_person(conn, caller, id) {
                        Ok(p) => Some(p).filter(|p| p.community_id == ctx.community),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    },
                    Err(_) => None,
                };
                if found.is_none() {
                    problems.push(("person", "import.person_unknown"));
                }
                found
            }
        };
        if let Some(p) = &person {
            let name = row.get("name");
            if !name.is_empty() && name != p.name {
                problems.push(("name", "import.name_mismatch"));
            }
        }
        let category = vocab(
            row.get("category"),
            VulnerableCategory::ALL,
            VulnerableCategory::as_str,
            VulnerableCategory::zh,
            &[
                ("留守儿童", "minor_without_carer"),
                ("困境儿童", "minor_without_carer"),
                ("孕妇", "pregnant"),
                ("慢性病", "chronic_illness"),
                ("残疾", "disabled"),
            ],
        );
        let cat = category.parse::<VulnerableCategory>();
        match &cat {
            Err(_) if category.is_empty() => problems.push(("category", "value.required")),
            Err(e) => problems.push(("category", e.code())),
            Ok(c) => {
                if let Some(p) = &person {
                    let bidx = env.keys.blind(BIDX_CATEGORY, c.as_str());
                    let exists = conn.query_i64(
                        "SELECT count(*) FROM vulnerable WHERE person_id = $1 AND category_bidx = $2",
                        &params![p.id, bidx],
                    )? > 0;
                    if exists {
                        problems.push(("category", "import.already_exists"));
                    } else if !ctx.seen.insert((p.id, c.as_str())) {
                        problems.push(("category", "import.duplicate_row"));
                    }
                }
            }
        }
        let channel = vocab(
            row.get("channel"),
            ContactChannel::ALL,
            ContactChannel::as_str,
            ContactChannel::zh,
            &[
                ("电话联系", "phone_call"),
                ("入户", "home_visit"),
                ("APP", "app"),
            ],
        );
        match channel.parse::<ContactChannel>() {
            Err(_) if channel.is_empty() => problems.push(("channel", "value.required")),
            Err(e) => problems.push(("channel", e.code())),
            Ok(_) => {}
        }
        let Some(p) = person.filter(|_| problems.is_empty()) else {
            return Ok(Err(problems));
        };
        Ok(Ok(VulnerableInput {
            person_id: p.id,
            category,
            helper_user_id: None,
            contact_channel: channel,
            notes: row.opt("notes"),
        }))
    }

    fn write(tx: &mut Tx, caller: &Caller, item: &VulnerableInput) -> anxin_store::Result<()> {
        people::add_vulnerable(tx, caller, item).map(|_| ())
    }
}

/// The columns of a kind's sheet (the template's, in order).
pub fn columns(kind: Kind) -> &'static [Col] {
    match kind {
        Kind::People => super::people::COLUMNS,
        Kind::Buildings => BUILDING_COLUMNS,
        Kind::Dwellings => DWELLING_COLUMNS,
        Kind::Vulnerable => VULNERABLE_COLUMNS,
        Kind::Facilities => FACILITY_COLUMNS,
    }
}

/// Import `sheet` as `kind`: the people import or the engine above.
pub async fn import_kind(
    kind: Kind,
    store: &Store,
    wctx: WriteCtx,
    caller: &Caller,
    sheet: Sheet,
    opts: &Options,
    progress: Arc<Progress>,
) -> Result<Report, ImportError> {
    match kind {
        Kind::People => super::people::import(store, wctx, caller, sheet, opts, progress).await,
        Kind::Buildings => import::<Buildings>(store, wctx, caller, sheet, opts, progress).await,
        Kind::Dwellings => import::<Dwellings>(store, wctx, caller, sheet, opts, progress).await,
        Kind::Vulnerable => import::<Vulnerable>(store, wctx, caller, sheet, opts, progress).await,
        Kind::Facilities => import::<Facilities>(store, wctx, caller, sheet, opts, progress).await,
    }
}
