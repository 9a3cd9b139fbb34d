//! People, households and vulnerable people over HTTP, plus the masked CSV export.
//!
//! Every handler passes the caller to the store, which scopes the query; reads that reveal
//! personal data in plaintext (unmask, search by document or phone, the vulnerable list, exports)
//! are audited before the answer leaves, and fail closed if the audit cannot be written.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::{DocType, Document, HouseholdRole, Phone, VulnerableCategory};
use anxin_store::audit::{self, AuditEntry};
use anxin_store::people::{
    self, Household, Member, NewPerson, Page, PeopleFilter, PersonInput, PersonPatch, PersonView,
    Unmasked, VulnerableInput, VulnerableView,
};
use anxin_store::WriteCtx;

use crate::app::App;
use crate::http::guard::Authenticated;
use crate::http::openapi::Created;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    Table::new()
        .route(
            "/api/v1/people",
            &["GET", "POST"],
            Serves::Records("people"),
            get(list).post(create),
        )
        .route(
            "/api/v1/people.csv",
            &["GET"],
            Serves::Records("people"),
            get(export_csv),
        )
        .route(
            "/api/v1/people/search",
            &["GET"],
            Serves::Records("people"),
            get(search),
        )
        .route(
            "/api/v1/people/{id}",
            &["GET", "PATCH", "DELETE"],
            Serves::Records("people"),
            get(show).patch(update).delete(erase),
        )
        .route(
            "/api/v1/people/{id}/unmask",
            &["POST"],
            Serves::Records("people"),
            post(unmask),
        )
        .route(
            "/api/v1/households",
            &["POST"],
            Serves::Records("households"),
            post(create_household),
        )
        .route(
            "/api/v1/households/{id}",
            &["GET", "PATCH"],
            Serves::Records("households"),
            get(show_household).patch(update_household),
        )
        .route(
            "/api/v1/households/{id}/members",
            &["POST"],
            Serves::Records("households"),
            post(add_member),
        )
        .route(
            "/api/v1/memberships/{id}",
            &["DELETE"],
            Serves::Records("memberships"),
            delete(end_membership),
        )
        .route(
            "/api/v1/vulnerable",
            &["GET", "POST"],
            Serves::Records("vulnerable"),
            get(list_vulnerable).post(add_vulnerable),
        )
}

fn ctx(auth: &Authenticated) -> WriteCtx {
    WriteCtx::by(auth.user_id(), auth.request_id())
}

/// Write an audit entry in its own transaction; the answer is withheld if it fails.
async fn audit(app: &App, auth: &Authenticated, entry: AuditEntry) -> Result<(), ApiError> {
    let entry = entry.actor(Some(auth.user_id())).ip(auth.ip());
    app.store
        .write(ctx(auth), move |tx| audit::record(tx, entry).map(|_| ()))
        .await
        .map_err(ApiError::from)
}

#[utoipa::path(
    get, path = "/api/v1/people", tag = "people",
    params(PeopleFilter),
    responses((status = 200, description = "one page of people in scope, masked, in (name, id) order: `next` is the cursor of the following page (pass it as `after`); `total` is counted up to 1,000 past the page, `total_capped` when more match", body = Page<PersonView>))
)]
async fn list(
    State(app): State<App>,
    auth: Authenticated,
    Query(f): Query<PeopleFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let page = app
        .store
        .read(move |c, env| people::list_people_cached(c, env, &caller, &f))
        .await?;
    Ok(Json(page))
}

#[utoipa::path(
    post, path = "/api/v1/people", tag = "people",
    request_body = PersonInput,
    responses((status = 201, body = PersonView))
)]
async fn create(
    State(app): State<App>,
    auth: Authenticated,
    Json(input): Json<PersonInput>,
) -> Result<impl IntoResponse, ApiError> {
    let p = NewPerson::parse(&input)?;
    let caller = auth.caller().clone();
    let v = app
        .store
        .write(ctx(&auth), move |tx| people::create_person(tx, &caller, &p))
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(
    get, path = "/api/v1/people/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "person id")),
    responses((status = 200, body = PersonView))
)]
async fn show(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| people::get_person(c, &caller, id))
            .await?,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/people/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "person id")),
    request_body = PersonPatch,
    responses((status = 200, body = PersonView))
)]
async fn update(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(patch): Json<PersonPatch>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .write(ctx(&auth), move |tx| {
                people::update_person(tx, &caller, id, &patch)
            })
            .await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/people/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "person id")),
    responses((status = 204, description = "erased (audited)"))
)]
async fn erase(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let (actor, ip) = (auth.user_id(), auth.ip());
    app.store
        .write(ctx(&auth), move |tx| {
            people::erase_person(tx, &caller, id)?;
            audit::record(
                tx,
                AuditEntry::new("erase")
                    .actor(Some(actor))
                    .ip(ip)
                    .target("person", id),
            )
            .map(|_| ())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/people/{id}/unmask", tag = "people",
    params(("id" = Uuid, Path, description = "person id")),
    responses((status = 200, description = "the plaintext document number and phone (audited)", body = Unmasked))
)]
async fn unmask(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let u = app
        .store
        .read(move |c, env| people::unmask_person(c, env, &caller, id))
        .await?;
    audit(&app, &auth, AuditEntry::new("unmask").target("person", id)).await?;
    Ok(Json(u))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    doc_type: Option<String>,
    doc_number: Option<String>,
    phone: Option<String>,
}

/// Exact search by document number or phone through the blind indexes.
#[utoipa::path(
    get, path = "/api/v1/people/search", tag = "people",
    params(SearchQuery),
    responses((status = 200, description = "exact matches by document number or phone (audited)", body = [PersonView]))
)]
async fn search(
    State(app): State<App>,
    auth: Authenticated,
    Query(q): Query<SearchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let (found, by) = match (&q.doc_number, &q.phone) {
        (Some(n), _) => {
            let t: DocType = q.doc_type.as_deref().unwrap_or("mainland_id").parse()?;
            let doc = Document::parse(t, n)?;
            (
                app.store
                    .read(move |c, env| people::find_by_document(c, env, &caller, &doc))
                    .await?,
                "document",
            )
        }
        (None, Some(p)) => {
            let phone = Phone::parse(p)?;
            (
                app.store
                    .read(move |c, env| people::find_by_phone(c, env, &caller, &phone))
                    .await?,
                "phone",
            )
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "value.required",
                "doc_number",
                "give doc_number or phone",
            ))
        }
    };
    audit(
        &app,
        &auth,
        AuditEntry::new("sensitive_read")
            .detail(json!({ "kind": "people_search", "by": by, "found": found.len() })),
    )
    .await?;
    Ok(Json(found))
}

#[utoipa::path(
    get, path = "/api/v1/people.csv", tag = "people",
    params(PeopleFilter),
    responses((status = 200, description = "every person matching, masked, as CSV with a BOM (audited)", content_type = "text/csv", body = String))
)]
async fn export_csv(
    State(app): State<App>,
    auth: Authenticated,
    Query(mut f): Query<PeopleFilter>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    if !caller.has(anxin_domain::Permission::ExportData) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "export.not_allowed",
            "export not allowed",
        ));
    }
    f.limit = Some(people::MAX_PAGE);
    let rows = app
        .store
        .read(move |c, env| {
            // Walked by keyset cursor: each page is an index range, however deep.
            let mut all = Vec::new();
            loop {
                let page = people::list_people_cached(c, env, &caller, &f)?;
                all.extend(page.items);
                match page.next {
                    Some(next) => f.after = Some(next),
                    None => break,
                }
            }
            Ok(all)
        })
        .await?;
    audit(
        &app,
        &auth,
        AuditEntry::new("export")
            .detail(json!({ "kind": "people", "rows": rows.len(), "masked": true })),
    )
    .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let head = [
        "id",
        "姓名",
        "性别",
        "出生日期",
        "人口类型",
        "证件类型",
        "证件号码",
        "联系电话",
        "社区",
        "网格",
        "户",
    ];
    w.write_record(head).map_err(internal)?;
    for p in &rows {
        let cells = [
            p.id.to_string(),
            p.name.clone(),
            p.sex.clone().unwrap_or_default(),
            p.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            p.population_type.clone(),
            p.doc_type.clone(),
            p.doc_mask.clone().unwrap_or_default(),
            p.phone_mask.clone().unwrap_or_default(),
            p.community_id.to_string(),
            p.grid_id.map(|g| g.to_string()).unwrap_or_default(),
            p.household_id.map(|h| h.to_string()).unwrap_or_default(),
        ];
        w.write_record(cells.iter().map(|c| crate::io::neutralize_cell(c)))
            .map_err(internal)?;
    }
    let mut body = vec![0xEF, 0xBB, 0xBF]; // BOM: Excel opens UTF-8 Chinese correctly
    body.extend(w.into_inner().map_err(|e| internal(e.into_error()))?);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"people.csv\"",
            ),
        ],
        body,
    ))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "export failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HouseholdInput {
    community_id: Uuid,
    grid_id: Option<Uuid>,
    dwelling_id: Option<Uuid>,
    label: String,
}

#[utoipa::path(
    post, path = "/api/v1/households", tag = "people",
    request_body = HouseholdInput,
    responses((status = 201, body = Household))
)]
async fn create_household(
    State(app): State<App>,
    auth: Authenticated,
    Json(i): Json<HouseholdInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let h = app
        .store
        .write(ctx(&auth), move |tx| {
            people::create_household(
                tx,
                &caller,
                i.community_id,
                i.grid_id,
                i.dwelling_id,
                &i.label,
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(h)))
}

#[utoipa::path(
    get, path = "/api/v1/households/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "household id")),
    responses((status = 200, body = HouseholdDetail))
)]
async fn show_household(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let (household, members) = app
        .store
        .read(move |c, _| people::get_household(c, &caller, id))
        .await?;
    Ok(Json(json!({ "household": household, "members": members })))
}

/// A household's label and grid; an absent field keeps its value, `"grid_id": null` takes the
/// household out of any grid. Current members' grid follows.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HouseholdPatch {
    label: Option<String>,
    #[serde(default, deserialize_with = "anxin_store::places::present")]
    #[schema(value_type = Option<Uuid>)]
    grid_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    patch, path = "/api/v1/households/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "household id")),
    request_body = HouseholdPatch,
    responses((status = 200, body = Household))
)]
async fn update_household(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<HouseholdPatch>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let h = app
        .store
        .write(ctx(&auth), move |tx| {
            let (current, _) = people::get_household(tx.conn(), &caller, id)?;
            let label = i.label.unwrap_or(current.label);
            let grid_id = i.grid_id.unwrap_or(current.grid_id);
            people::update_household(tx, &caller, id, &label, grid_id)
        })
        .await?;
    Ok(Json(h))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberInput {
    person_id: Uuid,
    role: String,
    valid_from: Option<chrono::NaiveDate>,
}

#[utoipa::path(
    post, path = "/api/v1/households/{id}/members", tag = "people",
    params(("id" = Uuid, Path, description = "household id")),
    request_body = MemberInput,
    responses((status = 201, body = MembershipCreated))
)]
async fn add_member(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<MemberInput>,
) -> Result<impl IntoResponse, ApiError> {
    let role: HouseholdRole = i.role.parse()?;
    let caller = auth.caller().clone();
    let today = app.clock.local_now().date_naive();
    let m = app
        .store
        .write(ctx(&auth), move |tx| {
            people::join_household(
                tx,
                &caller,
                id,
                i.person_id,
                role,
                i.valid_from.unwrap_or(today),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "membership_id": m }))))
}

#[utoipa::path(
    delete, path = "/api/v1/memberships/{id}", tag = "people",
    params(("id" = Uuid, Path, description = "membership id")),
    responses((status = 204, description = "the membership ends today"))
)]
async fn end_membership(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let today = app.clock.local_now().date_naive();
    app.store
        .write(ctx(&auth), move |tx| {
            people::leave_household(tx, &caller, id, today)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VulnerableQuery {
    category: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/vulnerable", tag = "people",
    params(VulnerableQuery),
    responses((status = 200, description = "vulnerable people in scope (audited)", body = [VulnerableView]))
)]
async fn list_vulnerable(
    State(app): State<App>,
    auth: Authenticated,
    Query(q): Query<VulnerableQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let category = q
        .category
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(str::parse::<VulnerableCategory>)
        .transpose()?;
    let caller = auth.caller().clone();
    let list = app
        .store
        .read(move |c, env| people::list_vulnerable(c, env, &caller, category))
        .await?;
    audit(
        &app,
        &auth,
        AuditEntry::new("sensitive_read")
            .detail(json!({ "kind": "vulnerable", "rows": list.len() })),
    )
    .await?;
    Ok(Json(list))
}

#[utoipa::path(
    post, path = "/api/v1/vulnerable", tag = "people",
    request_body = VulnerableInput,
    responses((status = 201, body = Created))
)]
async fn add_vulnerable(
    State(app): State<App>,
    auth: Authenticated,
    Json(i): Json<VulnerableInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let id = app
        .store
        .write(ctx(&auth), move |tx| {
            people::add_vulnerable(tx, &caller, &i)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// `GET /api/v1/households/{id}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct HouseholdDetail {
    household: Household,
    members: Vec<Member>,
}

/// `POST /api/v1/households/{id}/members`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct MembershipCreated {
    membership_id: Uuid,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    export_csv,
    search,
    show,
    update,
    erase,
    unmask,
    create_household,
    show_household,
    update_household,
    add_member,
    end_membership,
    list_vulnerable,
    add_vulnerable
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
