//! A small tree for story tests: 成都市 → 锦江区 → 锦官驿街道 → two sibling communities, each
//! with two grids and a household per grid; and callers for each role of the isolation matrix.
#![allow(dead_code, clippy::unwrap_used)]

use anxin_domain::{Clock, Role, Scope, ScopeKind, Validity};
use anxin_store::accounts::{self, NewGrant, NewUser, UserKind};

use crate::support::TestApp;
use anxin_store::people::{self, NewPerson, PersonInput};
use anxin_store::scope::{ActiveGrant, Caller};
use anxin_store::{Store, WriteCtx};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct World {
    pub city: Uuid,
    pub district: Uuid,
    pub street: Uuid,
    /// Community A and its sibling B.
    pub comm_a: Uuid,
    pub comm_b: Uuid,
    /// Grids: A1, A2 in A; B1 in B.
    pub grid_a1: Uuid,
    pub grid_a2: Uuid,
    pub grid_b1: Uuid,
    /// Households: hA1 in grid A1, hA1n its neighbour in the same grid, hB1 in B.
    pub hh_a1: Uuid,
    pub hh_a1n: Uuid,
    pub hh_b1: Uuid,
    /// A person in hA1 (the record outsiders must not see), one in hA1n, one in hB1.
    pub person_a1: Uuid,
    pub person_a1n: Uuid,
    pub person_b1: Uuid,
    /// An issued warning of community A, drafted in grid A1 (its area reaches no one).
    pub warning_a1: Uuid,
}

pub const PERSON_A1_ID_NUMBER: &str = "11010519491231002X";
pub const PERSON_A1_PHONE: &str = "13812345678";

fn node(
    tx: &mut anxin_store::Tx,
    parent: Option<Uuid>,
    level: &str,
    name: &str,
) -> anxin_store::Result<Uuid> {
    let id = tx.new_id();
    let now = tx.now();
    tx.insert(
        "nodes",
        &[
            ("id", id.into()),
            ("parent_id", parent.into()),
            ("level", level.into()),
            ("name", name.into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )?;
    Ok(id)
}

pub fn person_input(
    name: &str,
    doc: Option<&str>,
    phone: Option<&str>,
    community: Uuid,
    grid: Uuid,
    hh: Uuid,
) -> PersonInput {
    PersonInput {
        name: name.into(),
        population_type: "registered".into(),
        doc_type: if doc.is_some() { "mainland_id" } else { "none" }.into(),
        doc_number: doc.map(Into::into),
        phone: phone.map(Into::into),
        community_id: community,
        grid_id: Some(grid),
        household_id: Some(hh),
        household_role: Some("head".into()),
        ..PersonInput::default()
    }
}

pub async fn build(store: &Store) -> World {
    store
        .write(WriteCtx::system("world"), |tx| {
            let sys = Caller::system();
            let city = node(tx, None, "city", "成都市")?;
            let district = node(tx, Some(city), "district", "锦江区")?;
            let street = node(tx, Some(district), "street", "锦官驿街道")?;
            let comm_a = node(tx, Some(street), "community", "水井坊社区")?;
            let comm_b = node(tx, Some(street), "community", "崇德里社区")?;
            let grid_a1 = anxin_store::tree::create_grid(tx, &sys, comm_a, "一网格")?.id;
            let grid_a2 = anxin_store::tree::create_grid(tx, &sys, comm_a, "二网格")?.id;
            let grid_b1 = anxin_store::tree::create_grid(tx, &sys, comm_b, "一网格")?.id;
            let hh = |tx: &mut anxin_store::Tx, c, g, l: &str| {
                people::create_household(tx, &sys, c, Some(g), None, l).map(|h| h.id)
            };
            let hh_a1 = hh(tx, comm_a, grid_a1, "1-1-101")?;
            let hh_a1n = hh(tx, comm_a, grid_a1, "1-1-102")?;
            let hh_b1 = hh(tx, comm_b, grid_b1, "2-1-101")?;
            let mk = |tx: &mut anxin_store::Tx, i: PersonInput| {
                people::create_person(tx, &sys, &NewPerson::parse(&i)?).map(|p| p.id)
            };
            let person_a1 = mk(
                tx,
                person_input(
                    "张三丰",
                    Some(PERSON_A1_ID_NUMBER),
                    Some(PERSON_A1_PHONE),
                    comm_a,
                    grid_a1,
                    hh_a1,
                ),
            )?;
            let person_a1n = mk(
                tx,
                person_input(
                    "李四",
                    Some("510104199001011230"),
                    Some("13900000001"),
                    comm_a,
                    grid_a1,
                    hh_a1n,
                ),
            )?;
            let person_b1 = mk(
                tx,
                person_input("王五", None, Some("13900000002"), comm_b, grid_b1, hh_b1),
            )?;
            let warning_a1 = tx.new_id();
            let now = tx.now();
            tx.insert(
                "warnings",
                &[
                    ("id", warning_a1.into()),
                    ("node_id", comm_a.into()),
                    ("grid_id", grid_a1.into()),
                    ("level", "yellow".into()),
                    ("category", "rainstorm".into()),
                    ("headline", "暴雨黄色预警".into()),
                    ("description", "测试预警".into()),
                    ("instruction", "".into()),
                    ("effective_at", now.into()),
                    ("expires_at", (now + chrono::Duration::days(7)).into()),
                    (
                        "area",
                        r#"{"polygons":[],"circles":[{"lon":104.2,"lat":30.7,"radius_m":10.0}],"nodes":[]}"#.into(),
                    ),
                    ("area_crs", "wgs84".into()),
                    ("status", "issued".into()),
                    ("version", 1i64.into()),
                    ("source", "local".into()),
                    ("sender", "anxin.local".into()),
                    ("cap_identifier", format!("anxin-{warning_a1}").into()),
                    ("issued_at", now.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
            Ok(World {
                warning_a1,
                city,
                district,
                street,
                comm_a,
                comm_b,
                grid_a1,
                grid_a2,
                grid_b1,
                hh_a1,
                hh_a1n,
                hh_b1,
                person_a1,
                person_a1n,
                person_b1,
            })
        })
        .await
        .unwrap()
}

pub fn caller(role: Role, kind: ScopeKind, scope: Uuid) -> Caller {
    Caller::user(
        Uuid::now_v7(),
        vec![ActiveGrant {
            grant_id: None,
            role,
            scope_kind: kind,
            scope_id: scope,
        }],
    )
}

impl World {
    pub fn worker_a(&self) -> Caller {
        caller(Role::CommunityWorker, ScopeKind::Node, self.comm_a)
    }
    pub fn worker_b(&self) -> Caller {
        caller(Role::CommunityWorker, ScopeKind::Node, self.comm_b)
    }
    pub fn grid_worker_a1(&self) -> Caller {
        caller(Role::GridWorker, ScopeKind::Grid, self.grid_a1)
    }
    pub fn grid_worker_a2(&self) -> Caller {
        caller(Role::GridWorker, ScopeKind::Grid, self.grid_a2)
    }
    pub fn resident_a1(&self) -> Caller {
        caller(Role::Resident, ScopeKind::Household, self.hh_a1)
    }
    pub fn resident_a1n(&self) -> Caller {
        caller(Role::Resident, ScopeKind::Household, self.hh_a1n)
    }
    pub fn district_officer(&self) -> Caller {
        caller(Role::DistrictOfficer, ScopeKind::Node, self.district)
    }
    pub fn provider(&self) -> Caller {
        caller(Role::Provider, ScopeKind::Node, self.comm_a)
    }
    pub fn inspector(&self) -> Caller {
        caller(Role::Inspector, ScopeKind::Node, self.comm_a)
    }
}

// ---- signed-in users for HTTP tests ----

pub struct User {
    pub name: &'static str,
    pub cookie: String,
    pub csrf: String,
}

/// A staff user with one grant, signed in.
pub async fn staff(t: &TestApp, name: &'static str, role: Role, scope: Scope) -> User {
    user(t, name, UserKind::Staff, Some((role, scope)), None).await
}

/// A user with one grant and a signed-in session (second factor satisfied).
pub async fn user(
    t: &TestApp,
    name: &'static str,
    kind: UserKind,
    grant: Option<(Role, Scope)>,
    person: Option<Uuid>,
) -> User {
    let now = t.clock.now();
    let (token, csrf) = t
        .store()
        .write(WriteCtx::system("matrix"), move |tx| {
            let sys = Caller::system();
            let u = accounts::create_user(
                tx,
                &sys,
                &NewUser {
                    kind,
                    username: (kind != UserKind::Resident).then(|| name.to_owned()),
                    display_name: name.to_owned(),
                    password_hash: (kind != UserKind::Resident).then(|| {
                        anxin_crypto::hash_password_with(
                            "matrix-Pass-2026",
                            &anxin_crypto::PasswordHasherConfig::INSECURE_FAST_FOR_TESTS,
                        )
                        .unwrap()
                    }),
                    phone: (kind == UserKind::Resident)
                        .then(|| anxin_domain::Phone::parse("13900000001").unwrap()),
                },
            )?;
            if let Some((role, scope)) = grant {
                accounts::create_grant(
                    tx,
                    &sys,
                    u.id,
                    &NewGrant {
                        role,
                        scope,
                        validity: Validity::starting(now),
                        source_ref: None,
                    },
                )?;
            }
            if let Some(p) = person {
                accounts::link_person(tx, &sys, u.id, p)?;
            }
            let s = accounts::create_session(tx, u.id, person, true, None)?;
            Ok((s.token, s.csrf))
        })
        .await
        .unwrap();
    User {
        name,
        cookie: format!("anxin_session={token}"),
        csrf,
    }
}

/// Monitoring in community A, grid A1: a water-level profile, a device using it and an active
/// alarm raised by it (for the isolation matrix and the monitoring stories).
pub async fn monitoring_a1(
    store: &Store,
    w: &World,
) -> std::collections::HashMap<&'static str, Uuid> {
    use anxin_store::monitor::{self as sm, DeviceInput, NewDevice, NewProfile, ProfileInput};
    let (comm_a, grid_a1) = (w.comm_a, w.grid_a1);
    store
        .write(WriteCtx::system("world-monitor"), move |tx| {
            let sys = Caller::system();
            let p = sm::create_profile(
                tx,
                &sys,
                &NewProfile::parse(ProfileInput {
                    node_id: Some(comm_a),
                    name: Some("A1水位".into()),
                    rules: Some(serde_json::json!({"rules": [{
                        "id": "high", "name": "水位高", "alarm_type": "water_level_high",
                        "severity": "major",
                        "raise": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}
                    }]})),
                })?,
            )?;
            let d = sm::create_device(
                tx,
                &sys,
                &NewDevice::parse(DeviceInput {
                    node_id: Some(comm_a),
                    grid_id: Some(grid_a1),
                    kind: Some("water_level".into()),
                    code: Some(format!("a1-water-{}", Uuid::now_v7().simple())),
                    name: Some("A1水位计".into()),
                    lon: Some(104.09),
                    lat: Some(30.66),
                    profile_id: Some(p.id),
                    ..DeviceInput::default()
                })?,
            )?;
            let info = sm::device_by_id(tx.conn(), d.device.id)?.unwrap();
            let now = tx.now();
            let applied = sm::apply_events(
                tx,
                &info,
                &[sm::NumberedEvent {
                    no: 1,
                    event: anxin_domain::rules::Event::Raise {
                        rule_id: "high".into(),
                        alarm_type: "water_level_high".into(),
                        severity: anxin_domain::alarm::Severity::Major,
                        at: now,
                        value: Some(3.5),
                    },
                }],
            )?;
            Ok(std::collections::HashMap::from([
                ("device_profiles", p.id),
                ("devices", d.device.id),
                ("alarms", applied.raised[0]),
            ]))
        })
        .await
        .unwrap()
}

/// A1 records of emergency operations for the isolation matrix: each part adds its own, and may
/// use what the parts before it made (an incident, a plan).
pub async fn operations_a1(
    store: &Store,
    w: &World,
) -> std::collections::HashMap<&'static str, Uuid> {
    let mut m = std::collections::HashMap::new();
    let part = crate::plans::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::volunteers::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::incidents::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::passes::a1(store, w, &m).await;
    m.extend(part);
    m
}

/// A JSON API call as `u` (session cookie and CSRF token): the status and the body (a string
/// when it is not JSON).
pub async fn call(
    base: &str,
    u: &User,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = crate::support::client()
        .request(m, format!("{base}{path}"))
        .header("cookie", &u.cookie)
        .header("x-csrf-token", &u.csrf);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The error code of an error answer ("" when there is none).
pub fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A1 records of hazard inspection for the isolation matrix: each part adds its own, and may use
/// what the parts before it made (a template, an inspection, a hazard).
pub async fn hazards_a1(store: &Store, w: &World) -> std::collections::HashMap<&'static str, Uuid> {
    let mut m = std::collections::HashMap::new();
    let part = crate::inspections::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::hazards::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::risks::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::supervision::a1(store, w, &m).await;
    m.extend(part);
    m
}

/// Supplies records of community A for the isolation matrix, each part adding its own.
pub async fn supplies_a1(
    store: &Store,
    w: &World,
) -> std::collections::HashMap<&'static str, Uuid> {
    let mut m = std::collections::HashMap::new();
    let part = crate::supplies::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::providers::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::campaigns::a1(store, w, &m).await;
    m.extend(part);
    let part = crate::funds::a1(store, w, &m).await;
    m.extend(part);
    m
}

/// Inside `tx`: a staff account `name` (password `staff-Pass-2026`) with one grant of `role` in
/// `scope`, in force since yesterday.
pub fn create_staff(
    tx: &mut anxin_store::Tx,
    name: &str,
    role: Role,
    scope: Scope,
) -> anxin_store::Result<Uuid> {
    let sys = Caller::system();
    let u = accounts::create_user(
        tx,
        &sys,
        &NewUser {
            kind: UserKind::Staff,
            username: Some(name.to_owned()),
            display_name: name.to_owned(),
            password_hash: Some(
                anxin_crypto::hash_password_with(
                    "staff-Pass-2026",
                    &anxin_crypto::PasswordHasherConfig::INSECURE_FAST_FOR_TESTS,
                )
                .unwrap(),
            ),
            phone: None,
        },
    )?;
    let now = tx.now();
    accounts::create_grant(
        tx,
        &sys,
        u.id,
        &NewGrant {
            role,
            scope,
            validity: Validity::starting(now - chrono::Duration::days(1)),
            source_ref: None,
        },
    )?;
    Ok(u.id)
}

/// A staff account ([`create_staff`]) with a duty (`duty`, e.g. 物资管理) at `node` and its
/// phone: who the notices that go to a node's duty phones reach.
pub async fn staff_on_duty(
    store: &Store,
    name: &str,
    role: Role,
    node: Uuid,
    duty: &str,
    phone: &str,
) -> Uuid {
    let (name, duty, phone) = (name.to_owned(), duty.to_owned(), phone.to_owned());
    store
        .write(WriteCtx::system("staff-on-duty"), move |tx| {
            let id = create_staff(tx, &name, role, Scope::Node(node))?;
            anxin_store::places::create_duty(
                tx,
                &Caller::system(),
                &anxin_store::places::NewDuty::parse(anxin_store::places::DutyInput {
                    node_id: Some(node),
                    duty: Some(duty),
                    responsible: Some(name),
                    user_id: Some(id),
                    phone: Some(phone),
                })?,
            )?;
            Ok(id)
        })
        .await
        .unwrap()
}
