//! The community tree over HTTP: navigation, grids, compounds.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::tree::{self, Grid, Node, TreeStore};
use anxin_store::WriteCtx;

use crate::app::App;
use crate::http::guard::Authenticated;
use crate::http::openapi::Created;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;

pub fn routes() -> Table {
    Table::new()
        .route(
            "/api/v1/nodes",
            &["GET"],
            Serves::Records("nodes"),
            get(roots),
        )
        .route(
            "/api/v1/nodes/by-code/{code}",
            &["GET"],
            Serves::Records("nodes"),
            get(by_code),
        )
        .route(
            "/api/v1/nodes/{id}",
            &["GET"],
            Serves::Records("nodes"),
            get(show),
        )
        .route(
            "/api/v1/nodes/{id}/children",
            &["GET"],
            Serves::Records("nodes"),
            get(children),
        )
        .route(
            "/api/v1/nodes/{id}/grids",
            &["GET", "POST"],
            Serves::Records("nodes"),
            get(grids).post(create_grid),
        )
        .route(
            "/api/v1/nodes/{id}/compounds",
            &["POST"],
            Serves::Records("nodes"),
            post(create_compound),
        )
        .route(
            "/api/v1/grids/{id}",
            &["PATCH"],
            Serves::Records("grids"),
            patch(rename_grid),
        )
        .route(
            "/api/v1/compounds/{id}",
            &["PATCH"],
            Serves::Records("compounds"),
            patch(rename_compound),
        )
}

#[utoipa::path(
    get, path = "/api/v1/nodes", tag = "tree",
    responses((status = 200, description = "the roots of the caller's grants", body = [Node]))
)]
async fn roots(State(app): State<App>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(app.store.read(move |c, _| c.roots(&caller)).await?))
}

#[utoipa::path(
    get, path = "/api/v1/nodes/{id}", tag = "tree",
    params(("id" = Uuid, Path, description = "node id")),
    responses((status = 200, description = "the node and how many direct children it has per level", body = NodeDetail))
)]
async fn show(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let (node, counts) = app
        .store
        .read(move |c, _| Ok((c.node(&caller, id)?, c.count_below(&caller, id)?)))
        .await?;
    let counts: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(k, v)| (k, v.into())).collect();
    Ok(Json(json!({ "node": node, "below": counts })))
}

#[utoipa::path(
    get, path = "/api/v1/nodes/by-code/{code}", tag = "tree",
    params(("code" = String, Path, description = "a division code valid today")),
    responses((status = 200, body = Node))
)]
async fn by_code(
    State(app): State<App>,
    auth: Authenticated,
    Path(code): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| c.find_by_code(&caller, &code))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/nodes/{id}/children", tag = "tree",
    params(("id" = Uuid, Path, description = "node id")),
    responses((status = 200, body = [Node]))
)]
async fn children(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store.read(move |c, _| c.children(&caller, id)).await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/nodes/{id}/grids", tag = "tree",
    params(("id" = Uuid, Path, description = "community id")),
    responses((status = 200, body = [Grid]))
)]
async fn grids(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(
        app.store
            .read(move |c, _| {
                c.node(&caller, id)?;
                tree::list_grids(c, &caller, id)
            })
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NameInput {
    name: String,
}

#[utoipa::path(
    post, path = "/api/v1/nodes/{id}/grids", tag = "tree",
    params(("id" = Uuid, Path, description = "community id")),
    request_body = NameInput,
    responses((status = 201, body = Grid))
)]
async fn create_grid(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<NameInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let g = app
        .store
        .write(WriteCtx::by(auth.user_id(), auth.request_id()), move |tx| {
            tree::create_grid(tx, &caller, id, &i.name)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(
    post, path = "/api/v1/nodes/{id}/compounds", tag = "tree",
    params(("id" = Uuid, Path, description = "community id")),
    request_body = NameInput,
    responses((status = 201, body = Created))
)]
async fn create_compound(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<NameInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let c = app
        .store
        .write(WriteCtx::by(auth.user_id(), auth.request_id()), move |tx| {
            tree::create_compound(tx, &caller, id, &i.name)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": c }))))
}

#[utoipa::path(
    patch, path = "/api/v1/grids/{id}", tag = "tree",
    params(("id" = Uuid, Path, description = "grid id")),
    request_body = NameInput,
    responses((status = 200, body = Grid))
)]
async fn rename_grid(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<NameInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    let g = app
        .store
        .write(WriteCtx::by(auth.user_id(), auth.request_id()), move |tx| {
            tree::rename_grid(tx, &caller, id, &i.name)
        })
        .await?;
    Ok(Json(g))
}

/// Rename a compound (小区); the official divisions keep their statistical names.
#[utoipa::path(
    patch, path = "/api/v1/compounds/{id}", tag = "tree",
    params(("id" = Uuid, Path, description = "compound (node) id")),
    request_body = NameInput,
    responses((status = 200, body = Created))
)]
async fn rename_compound(
    State(app): State<App>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Json(i): Json<NameInput>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    app.store
        .write(WriteCtx::by(auth.user_id(), auth.request_id()), move |tx| {
            tree::rename_compound(tx, &caller, id, &i.name)
        })
        .await?;
    Ok(Json(json!({ "id": id })))
}

/// `GET /api/v1/nodes/{id}`: the node and counts of its direct children per level.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct NodeDetail {
    node: Node,
    /// Level name → number of direct children at that level.
    below: std::collections::BTreeMap<String, i64>,
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    roots,
    show,
    by_code,
    children,
    grids,
    create_grid,
    create_compound,
    rename_grid,
    rename_compound
))]
struct Api;

/// This module's part of the API document.
pub fn api() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
