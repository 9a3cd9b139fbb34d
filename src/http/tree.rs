//! The community tree over HTTP: navigation, grids, compounds.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_store::tree::{self, TreeStore};
use anxin_store::WriteCtx;

use crate::app::App;
use crate::http::guard::Authenticated;
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
}

async fn roots(State(app): State<App>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    Ok(Json(app.store.read(move |c, _| c.roots(&caller)).await?))
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameInput {
    name: String,
}

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
