//! Detail and edit pages for the places of part 1 (buildings, units, dwellings, facilities,
//! duties) and the create forms hung under the tree (a node's new building, facility, grid,
//! compound, duty). Every form posts to a page route that calls the same store function as
//! the JSON API (`src/http/places.rs`, `src/http/tree.rs`), with the caller: a record out of
//! reach answers like a missing one, and a refused value shows the store's own error code, in
//! the page language, next to its field.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use uuid::Uuid;

use anxin_domain::people::{FacilityKind, FacilityStatus};
use anxin_store::places::{
    self, BuildingInput, BuildingPatch, DutyFilter, DutyInput, DutyPatch, DutyQuery, DwellingInput,
    DwellingPatch, FacilityInput, FacilityPatch, NewBuilding, NewDuty, NewDwelling, NewFacility,
    NewUnit, PageInput, Paging, UnitInput,
};
use anxin_store::tree::{self, Node, TreeStore};

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::web::forms::{
    self, action, answer, enum_label, fact, fact_link, form_page, put, record_page, text, Field,
    Fields, FormPage, Opt, RecordPage, Section,
};
use crate::web::{error_page, i18n, Input, Ui};

macro_rules! done {
    ($ui:expr, $r:expr) => {
        match $r {
            Ok(v) => v,
            Err(e) => return error_page(&$ui, &ApiError::from(e)),
        }
    };
}

pub fn routes() -> Table {
    let b = Serves::Records("buildings");
    let n = Serves::Records("nodes");
    Table::new()
        .route("/manage/buildings/{id}", &["GET"], b, get(building))
        .route(
            "/manage/buildings/{id}/edit",
            &["GET", "POST"],
            b,
            get(building_edit_page).post(building_edit),
        )
        .route(
            "/manage/buildings/{id}/units/new",
            &["GET", "POST"],
            b,
            get(unit_new_page).post(unit_create),
        )
        .route(
            "/manage/buildings/{id}/dwellings/new",
            &["GET", "POST"],
            b,
            get(dwelling_new_page).post(dwelling_create),
        )
        .route(
            "/manage/units/{id}/edit",
            &["GET", "POST"],
            Serves::Records("units"),
            get(unit_edit_page).post(unit_edit),
        )
        .route(
            "/manage/dwellings/{id}",
            &["GET"],
            Serves::Records("dwellings"),
            get(dwelling),
        )
        .route(
            "/manage/dwellings/{id}/edit",
            &["GET", "POST"],
            Serves::Records("dwellings"),
            get(dwelling_edit_page).post(dwelling_edit),
        )
        .route(
            "/manage/facilities/{id}",
            &["GET"],
            Serves::Records("facilities"),
            get(facility),
        )
        .route(
            "/manage/facilities/{id}/edit",
            &["GET", "POST"],
            Serves::Records("facilities"),
            get(facility_edit_page).post(facility_edit),
        )
        .route(
            "/manage/duties/{id}/edit",
            &["GET", "POST"],
            Serves::Records("duties"),
            get(duty_edit_page).post(duty_edit),
        )
        .route(
            "/manage/nodes/{id}/buildings/new",
            &["GET", "POST"],
            n,
            get(building_new_page).post(building_create),
        )
        .route(
            "/manage/nodes/{id}/facilities/new",
            &["GET", "POST"],
            n,
            get(facility_new_page).post(facility_create),
        )
        .route(
            "/manage/nodes/{id}/grids/new",
            &["GET", "POST"],
            n,
            get(grid_new_page).post(grid_create),
        )
        .route(
            "/manage/nodes/{id}/compounds/new",
            &["GET", "POST"],
            n,
            get(compound_new_page).post(compound_create),
        )
        .route(
            "/manage/grids/{id}",
            &["GET"],
            Serves::Records("grids"),
            get(grid),
        )
        .route(
            "/manage/grids/{id}/edit",
            &["GET", "POST"],
            Serves::Records("grids"),
            get(grid_edit_page).post(grid_edit),
        )
        .route(
            "/manage/compounds/{id}/edit",
            &["GET", "POST"],
            Serves::Records("compounds"),
            get(compound_edit_page).post(compound_edit),
        )
        .route("/manage/nodes/{id}/duties", &["GET"], n, get(duties))
        .route(
            "/manage/nodes/{id}/duties/new",
            &["GET", "POST"],
            n,
            get(duty_new_page).post(duty_create),
        )
}

fn t(ui: &Ui, key: &str) -> String {
    i18n::t(ui.lang, key)
}

fn title(ui: &Ui, key: &str, name: &str) -> String {
    format!("{}：{name}", t(ui, key))
}

fn opt_text<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn location_text(l: Option<&places::Location>) -> String {
    l.map(|l| format!("{:.5}, {:.5}", l.lat, l.lon))
        .unwrap_or_default()
}

fn all_pages() -> Result<Paging, anxin_store::StoreError> {
    Paging::parse(PageInput {
        limit: Some(places::MAX_LIMIT),
        offset: None,
    })
}

/// The community a node belongs to for grids: itself, or a compound's parent.
fn community_of(
    c: &mut dyn anxin_store::Conn,
    caller: &anxin_store::scope::Caller,
    n: &Node,
) -> Option<Uuid> {
    match n.level.as_str() {
        "community" => Some(n.id),
        "compound" => n.parent_id.filter(|p| c.node(caller, *p).is_ok()),
        _ => None,
    }
}

fn grid_opts(grids: &[tree::Grid]) -> Vec<Opt> {
    grids
        .iter()
        .map(|g| Opt::new(g.id, g.name.clone()))
        .collect()
}

// ---- buildings ----------------------------------------------------------------------------

fn building_fields(ui: &Ui, grids: &[tree::Grid]) -> Vec<Field> {
    let mut f = vec![
        Field::text(ui, "name", "places.name").required(),
        Field::text(ui, "address", "places.address"),
        Field::number(ui, "floors", "places.floors"),
        Field::select(ui, "grid_id", "rec.grid", grid_opts(grids)),
    ];
    f.extend(forms::location_fields(ui));
    f
}

fn building_input(node: Option<Uuid>, f: &Fields) -> Result<BuildingInput, ApiError> {
    Ok(BuildingInput {
        node_id: node,
        grid_id: forms::uuid(f, "grid_id")?,
        name: text(f, "name"),
        address: text(f, "address"),
        floors: forms::int(f, "floors")?,
        location: forms::location(f)?,
    })
}

async fn building(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let b = places::get_building(c, &caller, id)?;
            let units = places::list_units(c, &caller, id)?;
            let dwellings = places::list_dwellings(c, &caller, id, None, all_pages()?)?;
            let node = c.node(&caller, b.node_id).ok();
            let grids = tree::list_grids(c, &caller, b.community_id).unwrap_or_default();
            Ok((b, units, dwellings, node, grids))
        })
        .await;
    let (b, units, dwellings, node, grids) = done!(ui, got);
    let mut facts = vec![
        fact(&ui, "places.address", b.address.clone().unwrap_or_default()),
        fact(&ui, "places.floors", opt_text(b.floors)),
        fact(&ui, "places.location", location_text(b.location.as_ref())),
    ];
    if let Some(n) = &node {
        facts.push(fact_link(
            &ui,
            "rec.node",
            n.name.clone(),
            format!("/manage/nodes/{}", n.id),
        ));
    }
    if let Some(g) = grids.iter().find(|g| Some(g.id) == b.grid_id) {
        facts.push(fact_link(
            &ui,
            "rec.grid",
            g.name.clone(),
            format!("/manage/grids/{}", g.id),
        ));
    }
    let unit_name = |u: Option<Uuid>| {
        units
            .iter()
            .find(|x| Some(x.id) == u)
            .map(|x| x.name.clone())
            .unwrap_or_default()
    };
    let mut us = Section::new(&ui, "units", "rec.units", &["places.name"]);
    for u in &units {
        us.row(
            Some(format!("/manage/units/{}/edit", u.id)),
            vec![u.name.clone()],
        );
    }
    us.actions.push(action(
        &ui,
        "rec.add_unit",
        format!("/manage/buildings/{id}/units/new"),
    ));
    let mut ds = Section::new(
        &ui,
        "dwellings",
        "rec.dwellings",
        &["rec.number", "rec.unit", "rec.floor", "rec.area"],
    );
    for d in &dwellings.items {
        ds.row(
            Some(format!("/manage/dwellings/{}", d.id)),
            vec![
                d.number.clone(),
                unit_name(d.unit_id),
                opt_text(d.floor),
                opt_text(d.area_m2),
            ],
        );
    }
    ds.actions.push(action(
        &ui,
        "rec.add_dwelling",
        format!("/manage/buildings/{id}/dwellings/new"),
    ));
    record_page(
        &ui,
        &s,
        RecordPage {
            title: b.name.clone(),
            tag: t(&ui, "rec.building"),
            facts,
            actions: vec![action(
                &ui,
                "rec.edit",
                format!("/manage/buildings/{id}/edit"),
            )],
            sections: vec![us, ds],
        },
    )
}

/// The new-building form under `node` (a community or a compound).
async fn building_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    node: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let (n, grids) = app
        .store
        .read(move |c, _| {
            let n = c.node(&caller, node)?;
            let grids = match community_of(c, &caller, &n) {
                Some(cm) => tree::list_grids(c, &caller, cm)?,
                None => Vec::new(),
            };
            Ok((n, grids))
        })
        .await?;
    Ok(FormPage {
        title: title(ui, "rec.new_building", &n.name),
        action: format!("/manage/nodes/{node}/buildings/new"),
        cancel: format!("/manage/nodes/{node}"),
        fields: building_fields(ui, &grids),
    })
}

async fn building_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match building_new_form(&ui, &app, &s, node).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn building_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match building_input(Some(node), &f) {
        Ok(i) => app
            .store
            .write(s.write_ctx(), move |tx| {
                places::create_building(tx, &caller, &NewBuilding::parse(i)?)
            })
            .await
            .map(|b| format!("/manage/buildings/{}", b.id))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    answer(&ui, &s, r, building_new_form(&ui, &app, &s, node), &f).await
}

async fn building_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let (b, grids) = app
        .store
        .read(move |c, _| {
            let b = places::get_building(c, &caller, id)?;
            let grids = tree::list_grids(c, &caller, b.community_id).unwrap_or_default();
            Ok((b, grids))
        })
        .await?;
    let mut v = Fields::new();
    v.insert("name".into(), b.name.clone());
    put(&mut v, "address", b.address.clone());
    put(&mut v, "floors", b.floors);
    put(&mut v, "grid_id", b.grid_id);
    forms::location_values(&mut v, b.location.as_ref());
    Ok((
        FormPage {
            title: title(ui, "rec.edit_building", &b.name),
            action: format!("/manage/buildings/{id}/edit"),
            cancel: format!("/manage/buildings/{id}"),
            fields: building_fields(ui, &grids),
        },
        v,
    ))
}

async fn building_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match building_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn building_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match building_input(None, &f) {
        Ok(i) => {
            let patch = BuildingPatch {
                node_id: None,
                grid_id: Some(i.grid_id),
                name: Some(i.name),
                address: Some(i.address),
                floors: Some(i.floors),
                location: Some(i.location),
            };
            app.store
                .write(s.write_ctx(), move |tx| {
                    places::update_building(tx, &caller, id, patch)
                })
                .await
                .map(|_| format!("/manage/buildings/{id}"))
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    let form = async { building_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

// ---- units --------------------------------------------------------------------------------

fn unit_fields(ui: &Ui) -> Vec<Field> {
    vec![Field::text(ui, "name", "places.name")
        .required()
        .hint(ui, "rec.unit_hint")]
}

async fn unit_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    building: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let b = app
        .store
        .read(move |c, _| places::get_building(c, &caller, building))
        .await?;
    Ok(FormPage {
        title: title(ui, "rec.add_unit", &b.name),
        action: format!("/manage/buildings/{building}/units/new"),
        cancel: format!("/manage/buildings/{building}"),
        fields: unit_fields(ui),
    })
}

async fn unit_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match unit_new_form(&ui, &app, &s, id).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn unit_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let input = UnitInput {
        name: text(&f, "name"),
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            places::create_unit(tx, &caller, id, &NewUnit::parse(input)?)
        })
        .await
        .map(|_| format!("/manage/buildings/{id}"))
        .map_err(ApiError::from);
    answer(&ui, &s, r, unit_new_form(&ui, &app, &s, id), &f).await
}

async fn unit_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let u = app
        .store
        .read(move |c, _| places::get_unit(c, &caller, id))
        .await?;
    let mut v = Fields::new();
    v.insert("name".into(), u.name.clone());
    Ok((
        FormPage {
            title: title(ui, "rec.edit_unit", &u.name),
            action: format!("/manage/units/{id}/edit"),
            cancel: format!("/manage/buildings/{}", u.building_id),
            fields: unit_fields(ui),
        },
        v,
    ))
}

async fn unit_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match unit_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn unit_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let input = UnitInput {
        name: text(&f, "name"),
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            places::update_unit(tx, &caller, id, &NewUnit::parse(input)?)
        })
        .await
        .map(|u| format!("/manage/buildings/{}", u.building_id))
        .map_err(ApiError::from);
    let form = async { unit_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

// ---- dwellings ----------------------------------------------------------------------------

fn dwelling_fields(ui: &Ui, units: &[places::Unit]) -> Vec<Field> {
    let units = units
        .iter()
        .map(|u| Opt::new(u.id, u.name.clone()))
        .collect();
    vec![
        Field::text(ui, "number", "rec.number")
            .required()
            .hint(ui, "rec.number_hint"),
        Field::select(ui, "unit_id", "rec.unit", units),
        Field::number(ui, "floor", "rec.floor"),
        Field::decimal(ui, "area_m2", "rec.area"),
    ]
}

fn dwelling_input(f: &Fields) -> Result<DwellingInput, ApiError> {
    Ok(DwellingInput {
        unit_id: forms::uuid(f, "unit_id")?,
        number: text(f, "number"),
        floor: forms::int(f, "floor")?,
        area_m2: forms::float(f, "area_m2")?,
    })
}

async fn dwelling(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let d = places::get_dwelling(c, &caller, id)?;
            let b = places::get_building(c, &caller, d.building_id)?;
            let units = places::list_units(c, &caller, d.building_id)?;
            Ok((d, b, units))
        })
        .await;
    let (d, b, units) = done!(ui, got);
    let unit = units
        .iter()
        .find(|u| Some(u.id) == d.unit_id)
        .map(|u| u.name.clone())
        .unwrap_or_default();
    record_page(
        &ui,
        &s,
        RecordPage {
            title: format!("{} {}", b.name, d.number),
            tag: t(&ui, "rec.dwelling"),
            facts: vec![
                fact_link(
                    &ui,
                    "rec.building",
                    b.name.clone(),
                    format!("/manage/buildings/{}", b.id),
                ),
                fact(&ui, "rec.unit", unit),
                fact(&ui, "rec.number", d.number.clone()),
                fact(&ui, "rec.floor", opt_text(d.floor)),
                fact(&ui, "rec.area", opt_text(d.area_m2)),
            ],
            actions: vec![action(
                &ui,
                "rec.edit",
                format!("/manage/dwellings/{id}/edit"),
            )],
            sections: Vec::new(),
        },
    )
}

async fn dwelling_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    building: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let (b, units) = app
        .store
        .read(move |c, _| {
            let b = places::get_building(c, &caller, building)?;
            let units = places::list_units(c, &caller, building)?;
            Ok((b, units))
        })
        .await?;
    Ok(FormPage {
        title: title(ui, "rec.add_dwelling", &b.name),
        action: format!("/manage/buildings/{building}/dwellings/new"),
        cancel: format!("/manage/buildings/{building}"),
        fields: dwelling_fields(ui, &units),
    })
}

async fn dwelling_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match dwelling_new_form(&ui, &app, &s, id).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn dwelling_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match dwelling_input(&f) {
        Ok(i) => app
            .store
            .write(s.write_ctx(), move |tx| {
                places::create_dwelling(tx, &caller, id, &NewDwelling::parse(i)?)
            })
            .await
            .map(|d| format!("/manage/dwellings/{}", d.id))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    answer(&ui, &s, r, dwelling_new_form(&ui, &app, &s, id), &f).await
}

async fn dwelling_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let (d, units) = app
        .store
        .read(move |c, _| {
            let d = places::get_dwelling(c, &caller, id)?;
            let units = places::list_units(c, &caller, d.building_id)?;
            Ok((d, units))
        })
        .await?;
    let mut v = Fields::new();
    v.insert("number".into(), d.number.clone());
    put(&mut v, "unit_id", d.unit_id);
    put(&mut v, "floor", d.floor);
    put(&mut v, "area_m2", d.area_m2);
    Ok((
        FormPage {
            title: title(ui, "rec.edit_dwelling", &d.number),
            action: format!("/manage/dwellings/{id}/edit"),
            cancel: format!("/manage/dwellings/{id}"),
            fields: dwelling_fields(ui, &units),
        },
        v,
    ))
}

async fn dwelling_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match dwelling_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn dwelling_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match dwelling_input(&f) {
        Ok(i) => {
            let patch = DwellingPatch {
                unit_id: Some(i.unit_id),
                number: Some(i.number),
                floor: Some(i.floor),
                area_m2: Some(i.area_m2),
            };
            app.store
                .write(s.write_ctx(), move |tx| {
                    places::update_dwelling(tx, &caller, id, patch)
                })
                .await
                .map(|_| format!("/manage/dwellings/{id}"))
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    let form = async { dwelling_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

// ---- facilities ---------------------------------------------------------------------------

fn facility_fields(ui: &Ui) -> Vec<Field> {
    let kinds = FacilityKind::ALL
        .iter()
        .map(|k| Opt::new(k.as_str(), t(ui, &format!("facility.{}", k.as_str()))))
        .collect();
    let statuses = FacilityStatus::ALL
        .iter()
        .map(|k| Opt::new(k.as_str(), enum_label(ui, k.zh(), k.as_str())))
        .collect();
    let mut f = vec![
        Field::text(ui, "name", "places.name").required(),
        Field::select(ui, "kind", "places.kind", kinds).required(),
        Field::number(ui, "capacity", "places.capacity").hint(ui, "rec.capacity_hint"),
        Field::decimal(ui, "area_m2", "rec.area"),
        Field::select(ui, "status", "rec.status", statuses).required(),
    ];
    f.extend(forms::location_fields(ui));
    f
}

fn facility_input(node: Option<Uuid>, f: &Fields) -> Result<FacilityInput, ApiError> {
    Ok(FacilityInput {
        node_id: node,
        kind: text(f, "kind"),
        name: text(f, "name"),
        location: forms::location(f)?,
        capacity: forms::int(f, "capacity")?,
        area_m2: forms::float(f, "area_m2")?,
        status: text(f, "status"),
        attrs: None,
    })
}

async fn facility(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let f = places::get_facility(c, &caller, id)?;
            let node = c.node(&caller, f.node_id).ok();
            Ok((f, node))
        })
        .await;
    let (f, node) = done!(ui, got);
    let mut facts = vec![
        fact(
            &ui,
            "places.kind",
            t(&ui, &format!("facility.{}", f.kind.as_str())),
        ),
        fact(
            &ui,
            "rec.status",
            enum_label(&ui, f.status.zh(), f.status.as_str()),
        ),
        fact(&ui, "places.capacity", opt_text(f.capacity)),
        fact(&ui, "rec.area", opt_text(f.area_m2)),
        fact(&ui, "places.location", location_text(f.location.as_ref())),
    ];
    if let Some(n) = &node {
        facts.push(fact_link(
            &ui,
            "rec.node",
            n.name.clone(),
            format!("/manage/nodes/{}", n.id),
        ));
    }
    record_page(
        &ui,
        &s,
        RecordPage {
            title: f.name.clone(),
            tag: t(&ui, "rec.facility"),
            facts,
            actions: vec![action(
                &ui,
                "rec.edit",
                format!("/manage/facilities/{id}/edit"),
            )],
            sections: Vec::new(),
        },
    )
}

async fn facility_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    node: Uuid,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let n = app.store.read(move |c, _| c.node(&caller, node)).await?;
    Ok(FormPage {
        title: title(ui, "rec.new_facility", &n.name),
        action: format!("/manage/nodes/{node}/facilities/new"),
        cancel: format!("/manage/nodes/{node}"),
        fields: facility_fields(ui),
    })
}

async fn facility_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let mut v = Fields::new();
    v.insert("status".into(), "active".into());
    match facility_new_form(&ui, &app, &s, node).await {
        Ok(p) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn facility_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match facility_input(Some(node), &f) {
        Ok(i) => app
            .store
            .write(s.write_ctx(), move |tx| {
                places::create_facility(tx, &caller, &NewFacility::parse(i)?)
            })
            .await
            .map(|x| format!("/manage/facilities/{}", x.id))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    answer(&ui, &s, r, facility_new_form(&ui, &app, &s, node), &f).await
}

async fn facility_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let x = app
        .store
        .read(move |c, _| places::get_facility(c, &caller, id))
        .await?;
    let mut v = Fields::new();
    v.insert("name".into(), x.name.clone());
    v.insert("kind".into(), x.kind.as_str().into());
    v.insert("status".into(), x.status.as_str().into());
    put(&mut v, "capacity", x.capacity);
    put(&mut v, "area_m2", x.area_m2);
    forms::location_values(&mut v, x.location.as_ref());
    Ok((
        FormPage {
            title: title(ui, "rec.edit_facility", &x.name),
            action: format!("/manage/facilities/{id}/edit"),
            cancel: format!("/manage/facilities/{id}"),
            fields: facility_fields(ui),
        },
        v,
    ))
}

async fn facility_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match facility_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn facility_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let r = match facility_input(None, &f) {
        Ok(i) => {
            // Kind-specific attributes are not on this form: they stay as they are.
            let patch = FacilityPatch {
                node_id: None,
                kind: Some(i.kind),
                name: Some(i.name),
                location: Some(i.location),
                capacity: Some(i.capacity),
                area_m2: Some(i.area_m2),
                status: Some(i.status),
                attrs: None,
            };
            app.store
                .write(s.write_ctx(), move |tx| {
                    places::update_facility(tx, &caller, id, patch)
                })
                .await
                .map(|_| format!("/manage/facilities/{id}"))
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    let form = async { facility_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

// ---- grids and compounds ------------------------------------------------------------------

fn name_fields(ui: &Ui) -> Vec<Field> {
    vec![Field::text(ui, "name", "places.name").required()]
}

async fn named_new_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    node: Uuid,
    what: &'static str,
) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let n = app.store.read(move |c, _| c.node(&caller, node)).await?;
    Ok(FormPage {
        title: title(ui, &format!("rec.new_{what}"), &n.name),
        action: format!("/manage/nodes/{node}/{what}s/new"),
        cancel: format!("/manage/nodes/{node}"),
        fields: name_fields(ui),
    })
}

// ---- renaming grids and compounds ----------------------------------------------------------

/// What a rename form renames: the page's title key, its URL, where it goes back to.
#[derive(Clone, Copy)]
enum Named {
    Grid,
    Compound,
}

impl Named {
    /// In the new-form's title key and address (`rec.new_grid`, `/manage/nodes/{id}/grids/new`).
    fn slug(self) -> &'static str {
        match self {
            Named::Grid => "grid",
            Named::Compound => "compound",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Named::Grid => "rec.edit_grid",
            Named::Compound => "rec.edit_compound",
        }
    }
    fn action(self, id: Uuid) -> String {
        match self {
            Named::Grid => format!("/manage/grids/{id}/edit"),
            Named::Compound => format!("/manage/compounds/{id}/edit"),
        }
    }
}

/// The rename form with the current name; `back` is the record's page.
async fn rename_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    what: Named,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let (name, back) = app
        .store
        .read(move |c, _| match what {
            Named::Grid => {
                tree::get_grid(c, &caller, id).map(|g| (g.name, format!("/manage/grids/{id}")))
            }
            Named::Compound => {
                let n = c.node(&caller, id)?;
                if n.level != "compound" {
                    return Err(anxin_store::StoreError::NotFound);
                }
                Ok((n.name, format!("/manage/nodes/{id}")))
            }
        })
        .await?;
    let mut v = Fields::new();
    v.insert("name".into(), name.clone());
    let page = FormPage {
        title: title(ui, what.key(), &name),
        action: what.action(id),
        cancel: back,
        fields: name_fields(ui),
    };
    Ok((page, v))
}

async fn rename_page(
    ui: Ui,
    app: App,
    s: Result<Staff, AuthError>,
    what: Named,
    id: Uuid,
) -> Response {
    let s = staff!(ui, s);
    match rename_form(&ui, &app, &s, what, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn rename(
    ui: Ui,
    app: App,
    s: Result<Staff, AuthError>,
    what: Named,
    id: Uuid,
    f: Fields,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let name = f.get("name").cloned().unwrap_or_default();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| match what {
            Named::Grid => tree::rename_grid(tx, &caller, id, &name).map(|_| ()),
            Named::Compound => tree::rename_compound(tx, &caller, id, &name),
        })
        .await
        .map(|()| match what {
            Named::Grid => format!("/manage/grids/{id}"),
            Named::Compound => format!("/manage/nodes/{id}"),
        })
        .map_err(ApiError::from);
    let form = async { rename_form(&ui, &app, &s, what, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}

async fn grid_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    rename_page(ui, app, s, Named::Grid, id).await
}

async fn grid_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    rename(ui, app, s, Named::Grid, id, f).await
}

async fn compound_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    rename_page(ui, app, s, Named::Compound, id).await
}

async fn compound_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    rename(ui, app, s, Named::Compound, id, f).await
}

async fn grid_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    named_new_page(ui, app, s, Named::Grid, node).await
}

async fn grid_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    named_create(ui, app, s, Named::Grid, node, f).await
}

async fn compound_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    named_new_page(ui, app, s, Named::Compound, node).await
}

async fn compound_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    named_create(ui, app, s, Named::Compound, node, f).await
}

async fn named_new_page(
    ui: Ui,
    app: App,
    s: Result<Staff, AuthError>,
    what: Named,
    node: Uuid,
) -> Response {
    let s = staff!(ui, s);
    match named_new_form(&ui, &app, &s, node, what.slug()).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

/// Create a grid or compound in `node`; a grid goes back to the node, a compound to itself.
async fn named_create(
    ui: Ui,
    app: App,
    s: Result<Staff, AuthError>,
    what: Named,
    node: Uuid,
    f: Fields,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let name = f.get("name").cloned().unwrap_or_default();
    let r = app
        .store
        .write(s.write_ctx(), move |tx| match what {
            Named::Grid => tree::create_grid(tx, &caller, node, &name).map(|_| node),
            Named::Compound => tree::create_compound(tx, &caller, node, &name),
        })
        .await
        .map(|id| format!("/manage/nodes/{id}"))
        .map_err(ApiError::from);
    answer(
        &ui,
        &s,
        r,
        named_new_form(&ui, &app, &s, node, what.slug()),
        &f,
    )
    .await
}

/// A grid as navigation: its community, its buildings and the first people in it.
async fn grid(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let g = tree::get_grid(c, &caller, id)?;
            let community = c.node(&caller, g.community_id).ok();
            let bf = places::BuildingFilter::parse(places::BuildingQuery {
                grid_id: Some(id),
                limit: Some(places::MAX_LIMIT),
                ..places::BuildingQuery::default()
            })?;
            let buildings = places::list_buildings(c, &caller, &bf)?;
            // Staff who read places but not people (the system administrator) see no people.
            let pf = anxin_store::people::PeopleFilter {
                grid: Some(id),
                limit: Some(20),
                ..anxin_store::people::PeopleFilter::default()
            };
            let people = anxin_store::people::list_people(c, &caller, &pf).ok();
            Ok((g, community, buildings, people))
        })
        .await;
    let (g, community, buildings, people) = done!(ui, got);
    let mut facts = Vec::new();
    if let Some(n) = &community {
        facts.push(fact_link(
            &ui,
            "rec.node",
            n.name.clone(),
            format!("/manage/nodes/{}", n.id),
        ));
    }
    let mut bs = Section::new(
        &ui,
        "buildings",
        "rec.grid_buildings",
        &["places.name", "places.address", "places.floors"],
    );
    for b in &buildings.items {
        bs.row(
            Some(format!("/manage/buildings/{}", b.id)),
            vec![
                b.name.clone(),
                b.address.clone().unwrap_or_default(),
                opt_text(b.floors),
            ],
        );
    }
    let mut sections = vec![bs];
    if let Some(list) = people {
        let mut ps = Section::new(
            &ui,
            "people",
            "rec.grid_people",
            &["people.name", "people.phone"],
        );
        for p in &list.items {
            ps.row(
                Some(format!("/manage/people/{}", p.id)),
                vec![p.name.clone(), p.phone_mask.clone().unwrap_or_default()],
            );
        }
        ps.actions.push(action(
            &ui,
            "rec.all_people",
            format!("/manage/people?grid={id}"),
        ));
        sections.push(ps);
    }
    record_page(
        &ui,
        &s,
        RecordPage {
            title: g.name.clone(),
            tag: t(&ui, "rec.grid"),
            facts,
            actions: vec![action(&ui, "rec.edit", format!("/manage/grids/{id}/edit"))],
            sections,
        },
    )
}

// ---- duties -------------------------------------------------------------------------------

fn duty_fields(ui: &Ui) -> Vec<Field> {
    vec![
        Field::text(ui, "duty", "rec.duty")
            .required()
            .hint(ui, "rec.duty_hint"),
        Field::text(ui, "responsible", "rec.responsible").required(),
        Field::new(ui, "phone", "people.phone", "tel").hint(ui, "rec.duty_phone_hint"),
    ]
}

/// The duty list (职责清单) of a node and everything below it.
async fn duties(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let got = app
        .store
        .read(move |c, _| {
            let n = c.node(&caller, node)?;
            let f = DutyFilter::parse(DutyQuery {
                under: Some(node),
                limit: Some(places::MAX_LIMIT),
                ..DutyQuery::default()
            })?;
            Ok((n, places::list_duties(c, &caller, &f)?))
        })
        .await;
    let (n, list) = done!(ui, got);
    let mut sec = Section::new(
        &ui,
        "duties",
        "rec.duties",
        &["rec.duty", "rec.responsible", "people.phone"],
    );
    for d in &list.items {
        sec.row(
            Some(format!("/manage/duties/{}/edit", d.id)),
            vec![
                d.duty.clone(),
                d.responsible.clone(),
                d.phone_mask.clone().unwrap_or_default(),
            ],
        );
    }
    sec.actions.push(action(
        &ui,
        "rec.add_duty",
        format!("/manage/nodes/{node}/duties/new"),
    ));
    record_page(
        &ui,
        &s,
        RecordPage {
            title: title(&ui, "rec.duties", &n.name),
            tag: String::new(),
            facts: vec![fact_link(
                &ui,
                "rec.node",
                n.name.clone(),
                format!("/manage/nodes/{node}"),
            )],
            actions: Vec::new(),
            sections: vec![sec],
        },
    )
}

async fn duty_new_form(ui: &Ui, app: &App, s: &Staff, node: Uuid) -> Result<FormPage, ApiError> {
    let caller = s.caller().clone();
    let n = app.store.read(move |c, _| c.node(&caller, node)).await?;
    Ok(FormPage {
        title: title(ui, "rec.add_duty", &n.name),
        action: format!("/manage/nodes/{node}/duties/new"),
        cancel: format!("/manage/nodes/{node}/duties"),
        fields: duty_fields(ui),
    })
}

async fn duty_new_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match duty_new_form(&ui, &app, &s, node).await {
        Ok(p) => form_page(&ui, &s, p, &Fields::new(), None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn duty_create(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(node): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    let input = DutyInput {
        node_id: Some(node),
        duty: text(&f, "duty"),
        responsible: text(&f, "responsible"),
        user_id: None,
        phone: text(&f, "phone"),
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            places::create_duty(tx, &caller, &NewDuty::parse(input)?)
        })
        .await
        .map(|_| format!("/manage/nodes/{node}/duties"))
        .map_err(ApiError::from);
    answer(&ui, &s, r, duty_new_form(&ui, &app, &s, node), &f).await
}

async fn duty_edit_form(
    ui: &Ui,
    app: &App,
    s: &Staff,
    id: Uuid,
) -> Result<(FormPage, Fields), ApiError> {
    let caller = s.caller().clone();
    let d = app
        .store
        .read(move |c, _| places::get_duty(c, &caller, id))
        .await?;
    let mut v = Fields::new();
    v.insert("duty".into(), d.duty.clone());
    v.insert("responsible".into(), d.responsible.clone());
    let mut fields = duty_fields(ui);
    if let Some(p) = fields.iter_mut().find(|f| f.name == "phone") {
        p.label = format!(
            "{}（{}）",
            p.label,
            d.phone_mask.clone().unwrap_or_else(|| "—".into())
        );
        p.hint = Some(t(ui, "people.phone_hint"));
    }
    Ok((
        FormPage {
            title: title(ui, "rec.edit_duty", &d.duty),
            action: format!("/manage/duties/{id}/edit"),
            cancel: format!("/manage/nodes/{}/duties", d.node_id),
            fields,
        },
        v,
    ))
}

async fn duty_edit_page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
) -> Response {
    let s = staff!(ui, s);
    match duty_edit_form(&ui, &app, &s, id).await {
        Ok((p, v)) => form_page(&ui, &s, p, &v, None),
        Err(e) => error_page(&ui, &e),
    }
}

async fn duty_edit(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    Path(id): Path<Uuid>,
    Input(f): Input<Fields>,
) -> Response {
    let s = staff!(ui, s);
    let caller = s.caller().clone();
    // An empty phone keeps the stored one (it is shown only masked).
    let patch = DutyPatch {
        node_id: None,
        duty: Some(text(&f, "duty")),
        responsible: Some(text(&f, "responsible")),
        user_id: None,
        phone: text(&f, "phone").map(Some),
    };
    let r = app
        .store
        .write(s.write_ctx(), move |tx| {
            places::update_duty(tx, &caller, id, patch)
        })
        .await
        .map(|d| format!("/manage/nodes/{}/duties", d.node_id))
        .map_err(ApiError::from);
    let form = async { duty_edit_form(&ui, &app, &s, id).await.map(|(p, _)| p) };
    answer(&ui, &s, r, form, &f).await
}
