//! Exports: the people list (masked unless the caller may unmask and asks to) as rows under the
//! import template's headers, so an export can be imported again.

use std::collections::HashMap;

use anxin_domain::{DocType, HouseholdRole, Permission, PopulationType, Sex};
use anxin_store::people::{self, PeopleFilter, PersonView};
use anxin_store::scope::Caller;
use anxin_store::{params, Conn, Env, Result};
use uuid::Uuid;

use super::people::COLUMNS;

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
