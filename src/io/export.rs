//! Exports: the people list (masked unless the caller may unmask and asks to) as rows under the
//! import template's headers, so an export can be imported again.

use std::collections::HashMap;

use anxin_domain::geo::Crs;
use anxin_domain::{
    ContactChannel, DocType, HouseholdRole, Permission, PopulationType, Sex, VulnerableCategory,
};
use anxin_store::people::{self, PeopleFilter, PersonView};
use anxin_store::places::{self, Location};
use anxin_store::scope::{Caller, ScopeCols};
use anxin_store::{params, Conn, Env, Result};
use uuid::Uuid;

use super::people::COLUMNS;
use super::Kind;

/// The export's headers: the template's, then the record id.
pub fn people_headers() -> Vec<&'static str> {
    let mut h: Vec<&'static str> = COLUMNS.iter().map(|c| c.zh).collect();
    h.push("记录编号");
    h
}

fn zh_of<T: std::str::FromStr + Copy>(code: &str, zh: fn(T) -> &'static str) -> String {
    code.parse::<T>()
        .map_or_else(|_| code.to_owned(), |t| zh(t).to_owned())
}

/// Every person the filter selects within the caller's reach, as export rows. With `unmask`
/// (the caller must hold `Unmask`, checked per person by the store) documents and phones are in
/// plaintext; the caller of this function audits the export.
pub fn people_rows(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    filter: &PeopleFilter,
    unmask: bool,
) -> Result<Vec<Vec<String>>> {
    let mut f = filter.clone();
    f.limit = Some(people::MAX_PAGE);
    let mut all: Vec<PersonView> = Vec::new();
    let mut offset = 0;
    loop {
        f.offset = Some(offset);
        let page = people::list_people(conn, caller, &f)?;
        let n = i64::try_from(page.items.len()).unwrap_or(0);
        all.extend(page.items);
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    let mut labels: HashMap<Uuid, String> = HashMap::new();
    let mut grids: HashMap<Uuid, String> = HashMap::new();
    let mut out = Vec::with_capacity(all.len());
    for p in all {
        let (doc, phone) = if unmask && caller.has(Permission::Unmask) {
            let u = people::unmask_person(conn, env, caller, p.id)?;
            (
                u.doc_number.unwrap_or_default(),
                u.phone.unwrap_or_default(),
            )
        } else {
            (
                p.doc_mask.clone().unwrap_or_default(),
                p.phone_mask.clone().unwrap_or_default(),
            )
        };
        let (label, role) = match p.household_id {
            Some(h) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = labels.entry(h) {
                    let l = conn
                        .query_one("SELECT label FROM households WHERE id = $1", &params![h])?
                        .map(|r| r.get::<String>("label"))
                        .transpose()?
                        .unwrap_or_default();
                    slot.insert(l);
                }
                let role = conn
                    .query_one(
                        "SELECT role FROM memberships WHERE person_id = $1 AND household_id = $2 AND valid_to IS NULL",
                        &params![p.id, h],
                    )?
                    .map(|r| r.get::<String>("role"))
                    .transpose()?
                    .unwrap_or_default();
                (
                    labels.get(&h).cloned().unwrap_or_default(),
                    zh_of::<HouseholdRole>(&role, HouseholdRole::zh),
                )
            }
            None => (String::new(), String::new()),
        };
        let grid = match p.grid_id {
            Some(g) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = grids.entry(g) {
                    let n = conn
                        .query_one("SELECT name FROM grids WHERE id = $1", &params![g])?
                        .map(|r| r.get::<String>("name"))
                        .transpose()?
                        .unwrap_or_default();
                    slot.insert(n);
                }
                grids.get(&g).cloned().unwrap_or_default()
            }
            None => String::new(),
        };
        out.push(vec![
            p.name.clone(),
            p.sex
                .as_deref()
                .map(|s| zh_of::<Sex>(s, Sex::zh))
                .unwrap_or_default(),
            p.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            zh_of::<PopulationType>(&p.population_type, PopulationType::zh),
            zh_of::<DocType>(&p.doc_type, DocType::zh),
            doc,
            phone,
            p.nationality.clone().unwrap_or_default(),
            label,
            role,
            grid,
            p.id.to_string(),
        ]);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The place lists, vulnerable people and households: rows under the import template's headers
// (so an export imports again) plus the record id, and GeoJSON for the places.

/// The record id column every export ends with.
pub const ID_HEADER: &str = "记录编号";

/// The headers of a kind's export: the template's, then the record id.
pub fn headers(kind: Kind) -> Vec<&'static str> {
    let mut h: Vec<&'static str> = super::lists::columns(kind).iter().map(|c| c.zh).collect();
    h.push(ID_HEADER);
    h
}

/// One exported record: its id, location (WGS84) and cells keyed like the kind's columns.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: Uuid,
    pub location: Option<Location>,
    pub cells: Vec<(&'static str, String)>,
}

impl Record {
    /// The cells in the order of `kind`'s export headers.
    pub fn row(&self, kind: Kind) -> Vec<String> {
        let mut r: Vec<String> = super::lists::columns(kind)
            .iter()
            .map(|c| {
                self.cells
                    .iter()
                    .find(|(k, _)| *k == c.key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        r.push(self.id.to_string());
        r
    }
}

/// Every page of a list, `limit` at a time.
fn all_pages<T>(mut f: impl FnMut(i64) -> Result<(Vec<T>, i64)>) -> Result<Vec<T>> {
    let mut all = Vec::new();
    loop {
        let offset = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let (items, total) = f(offset)?;
        let n = items.len();
        all.extend(items);
        if n == 0 || i64::try_from(all.len()).unwrap_or(i64::MAX) >= total {
            return Ok(all);
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The location cells: WGS84 (what is stored), so the file imports again as it is.
fn location_cells(l: Option<Location>) -> [(&'static str, String); 3] {
    match l {
        Some(l) => [
            ("lon", format!("{:.7}", l.lon)),
            ("lat", format!("{:.7}", l.lat)),
            ("crs", Crs::Wgs84.zh().to_owned()),
        ],
        None => [
            ("lon", String::new()),
            ("lat", String::new()),
            ("crs", String::new()),
        ],
    }
}

/// Names of grids and compounds by id (for the cells that name them).
fn names(conn: &mut dyn Conn, sql: &str) -> Result<HashMap<Uuid, String>> {
    conn.query(sql, &[])?
        .iter()
        .map(|r| Ok((r.get::<Uuid>("id")?, r.get::<String>("name")?)))
        .collect()
}

fn compound_name(compounds: &HashMap<Uuid, String>, node: Uuid) -> String {
    compounds.get(&node).cloned().unwrap_or_default()
}

const PAGE: i64 = places::MAX_LIMIT;

/// Filters the place exports take: a node whose subtree to export.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ExportFilter {
    pub under: Option<Uuid>,
}

/// The records of `kind` within the caller's reach, masked.
pub fn records(
    conn: &mut dyn Conn,
    env: &Env,
    caller: &Caller,
    kind: Kind,
    f: &ExportFilter,
) -> Result<Vec<Record>> {
    let grids = names(conn, "SELECT id, name FROM grids")?;
    let compounds = names(conn, "SELECT id, name FROM nodes WHERE level = 'compound'")?;
    match kind {
        Kind::Buildings => {
            let filter = places::BuildingFilter {
                under: f.under,
                paging: places::Paging::parse(places::PageInput {
                    limit: Some(PAGE),
                    offset: None,
                })?,
                ..Default::default()
            };
            let all = all_pages(|offset| {
                let mut q = filter.clone();
                q.paging = places::Paging::parse(places::PageInput {
                    limit: Some(PAGE),
                    offset: Some(offset),
                })?;
                let p = places::list_buildings(conn, caller, &q)?;
                Ok((p.items, p.total))
            })?;
            Ok(all
                .into_iter()
                .map(|b| {
                    let mut cells = vec![
                        ("name", b.name.clone()),
                        ("compound", compound_name(&compounds, b.node_id)),
                        (
                            "grid",
                            b.grid_id
                                .and_then(|g| grids.get(&g).cloned())
                                .unwrap_or_default(),
                        ),
                        ("address", b.address.clone().unwrap_or_default()),
                        ("floors", opt(b.floors)),
                    ];
                    cells.extend(location_cells(b.location));
                    Record {
                        id: b.id,
                        location: b.location,
                        cells,
                    }
                })
                .collect())
        }
        Kind::Dwellings => {
            let all = all_pages(|offset| {
                let p = places::list_all_dwellings(conn, caller, f.under, PAGE, offset)?;
                Ok((p.items, p.total))
            })?;
            Ok(all
                .into_iter()
                .map(|d| Record {
                    id: d.dwelling.id,
                    location: d.location,
                    cells: vec![
                        ("building", d.building_name),
                        ("unit", d.unit_name.unwrap_or_default()),
                        ("number", d.dwelling.number),
                        ("floor", opt(d.dwelling.floor)),
                        ("area", opt(d.dwelling.area_m2)),
                    ],
                })
                .collect())
        }
        Kind::Facilities => {
            let all = all_pages(|offset| {
                let q = places::FacilityFilter {
                    under: f.under,
                    paging: places::Paging::parse(places::PageInput {
                        limit: Some(PAGE),
                        offset: Some(offset),
                    })?,
                    ..Default::default()
                };
                let p = places::list_facilities(conn, caller, &q)?;
                Ok((p.items, p.total))
            })?;
            Ok(all
                .into_iter()
                .map(|x| {
                    let mut cells = vec![
                        ("kind", x.kind.zh().to_owned()),
                        ("name", x.name.clone()),
                        ("compound", compound_name(&compounds, x.node_id)),
                        ("capacity", opt(x.capacity)),
                        ("area", opt(x.area_m2)),
                        ("status", x.status.zh().to_owned()),
                    ];
                    cells.extend(location_cells(x.location));
                    Record {
                        id: x.id,
                        location: x.location,
                        cells,
                    }
                })
                .collect())
        }
        Kind::Vulnerable => {
            // Category and channel are what the list is for; notes stay sealed (not exported),
            // documents only as their masks.
            let list = people::list_vulnerable(conn, env, caller, None)?;
            let mut out = Vec::with_capacity(list.len());
            for v in list {
                let doc = match people::get_person(conn, caller, v.person_id) {
                    Ok(p) => p.doc_mask.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                out.push(Record {
                    id: v.id,
                    location: None,
                    cells: vec![
                        ("name", v.name),
                        ("doc_number", doc),
                        ("person", v.person_id.to_string()),
                        (
                            "category",
                            zh_of::<VulnerableCategory>(&v.category, VulnerableCategory::zh),
                        ),
                        (
                            "channel",
                            zh_of::<ContactChannel>(&v.contact_channel, ContactChannel::zh),
                        ),
                    ],
                });
            }
            Ok(out)
        }
        Kind::People => Ok(Vec::new()),
    }
}

/// The households export's headers.
pub const HOUSEHOLD_HEADERS: &[&str] = &["户号", "网格", "户主", "人数", ID_HEADER];

/// Every household within the caller's reach for reading people: label, grid, head's name and
/// how many members it has now.
pub fn household_rows(conn: &mut dyn Conn, caller: &Caller) -> Result<Vec<Vec<String>>> {
    let reach = caller.reach(Permission::ReadPeople);
    let mut params = Vec::new();
    let pred = reach.predicate(
        conn.dialect(),
        ScopeCols {
            node: "h.community_id",
            grid: Some("h.grid_id"),
            household: Some("h.id"),
        },
        &mut params,
    );
    let rows = conn.query(
        &format!(
            "SELECT h.id, h.label, g.name AS grid, \
             (SELECT p.name FROM memberships m JOIN people p ON p.id = m.person_id \
              WHERE m.household_id = h.id AND m.valid_to IS NULL AND m.role = 'head' \
              ORDER BY p.name LIMIT 1) AS head, \
             (SELECT count(*) FROM memberships m WHERE m.household_id = h.id AND m.valid_to IS NULL) AS members \
             FROM households h LEFT JOIN grids g ON g.id = h.grid_id WHERE {pred} ORDER BY h.label, h.id"
        ),
        &params,
    )?;
    rows.iter()
        .map(|r| {
            Ok(vec![
                r.get::<String>("label")?,
                r.get::<Option<String>>("grid")?.unwrap_or_default(),
                r.get::<Option<String>>("head")?.unwrap_or_default(),
                r.get::<i64>("members")?.to_string(),
                r.get::<Uuid>("id")?.to_string(),
            ])
        })
        .collect()
}

/// A GeoJSON FeatureCollection (RFC 7946: WGS84 longitude, latitude) of `records`; a record
/// without a location is a feature with a null geometry.
pub fn geojson(kind: Kind, records: &[Record]) -> serde_json::Value {
    let cols = super::lists::columns(kind);
    let features: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut props = serde_json::Map::new();
            for (k, v) in &r.cells {
                if matches!(*k, "lon" | "lat" | "crs") {
                    continue;
                }
                let name = cols.iter().find(|c| c.key == *k).map_or(*k, |c| c.zh);
                props.insert(name.to_owned(), serde_json::Value::String(v.clone()));
            }
            props.insert("id".into(), serde_json::Value::String(r.id.to_string()));
            serde_json::json!({
                "type": "Feature",
                "id": r.id,
                "geometry": r.location.map(|l| serde_json::json!({
                    "type": "Point", "coordinates": [l.lon, l.lat],
                })),
                "properties": props,
            })
        })
        .collect();
    serde_json::json!({ "type": "FeatureCollection", "features": features })
}
