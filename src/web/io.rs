//! The import page, `/manage/import`: choose the kind, download its Chinese template, upload a
//! file (CSV or XLSX) into a community, watch the progress, read the report (row, column,
//! reason), and choose "import the valid rows" (仅导入有效行). Export links for every list.
//!
//! The upload is a `multipart/form-data` POST sent by htmx with the session's CSRF token in the
//! `X-CSRF-Token` header. The import runs as a background task
//! ([`crate::http::io::start_import`]); the answer is a fragment that polls
//! `/manage/import/jobs/{id}` until the report is there.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anxin_domain::Permission;
use anxin_store::scope::Caller;
use anxin_store::Conn;

use crate::app::App;
use crate::http::guard::{AuthError, Staff};
use crate::http::io::{self as api_io, KINDS};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::io::Kind;
use crate::web::manage::who_ctx;
use crate::web::{error_page, i18n, refused, render, Ui};

pub fn routes() -> Table {
    Table::new()
        .route(
            "/manage/import",
            &["GET", "POST"],
            Serves::Own,
            get(page)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    api_io::MAX_IMPORT_BYTES,
                )),
        )
        .route("/manage/import/jobs/{id}", &["GET"], Serves::Own, get(job))
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    kind: Option<String>,
}

#[derive(Debug, Serialize)]
struct KindLink {
    kind: &'static str,
    label: String,
    template_csv: &'static str,
    template_xlsx: &'static str,
    csv: &'static str,
    xlsx: &'static str,
    geojson: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Community {
    id: Uuid,
    name: String,
}

/// The communities the caller may import into (write reach for people or places).
fn communities(conn: &mut dyn Conn, caller: &Caller) -> anxin_store::Result<Vec<Community>> {
    let mut reach = caller.reach(Permission::WritePeople);
    reach.merge(caller.reach(Permission::WriteBase));
    let within = reach.expand_nodes(conn)?;
    let mut out = Vec::new();
    for r in conn.query(
        "SELECT id, name FROM nodes WHERE level = 'community' AND status = 'active' ORDER BY name, id",
        &[],
    )? {
        let id: Uuid = r.get("id")?;
        if within.as_ref().is_none_or(|w| w.contains(&id)) {
            out.push(Community {
                id,
                name: r.get("name")?,
            });
        }
    }
    Ok(out)
}

fn links(ui: &Ui) -> Vec<KindLink> {
    KINDS
        .iter()
        .map(|k| KindLink {
            kind: k.kind.as_str(),
            label: i18n::t(ui.lang, &format!("io.kind.{}", k.kind.as_str())),
            template_csv: k.template_csv,
            template_xlsx: k.template_xlsx,
            csv: k.csv,
            xlsx: k.xlsx,
            geojson: k.geojson,
        })
        .collect()
}

async fn page(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let kind = q
        .ok()
        .and_then(|Query(q)| q.kind)
        .and_then(|k| Kind::parse(&k))
        .unwrap_or(Kind::People);
    let caller = s.caller().clone();
    let comms = match app.store.read(move |c, _| communities(c, &caller)).await {
        Ok(c) => c,
        Err(e) => return error_page(&ui, &ApiError::from(e)),
    };
    render(
        &ui,
        StatusCode::OK,
        "import.html",
        context! {
            me => who_ctx(&s),
            kind => kind.as_str(),
            kinds => links(&ui),
            communities => comms,
            may_import => s.caller().has(Permission::ImportData),
            may_export => s.caller().has(Permission::ExportData),
            households_csv => api_io::HOUSEHOLDS_CSV,
            households_xlsx => api_io::HOUSEHOLDS_XLSX,
        },
    )
}

fn field<'a>(parts: &'a [(String, Bytes)], name: &str) -> Option<&'a str> {
    parts
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

async fn upload(
    ui: Ui,
    State(app): State<App>,
    s: Result<Staff, AuthError>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let session = s.0.clone();
    if let Err(e) = api_io::may_import(&session) {
        return error_page(&ui, &e);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(parts) = crate::http::guard::multipart_fields(ct, body).await else {
        return error_page(
            &ui,
            &ApiError::invalid("import.file_unreadable", "file", "not a multipart form"),
        );
    };
    let kind = field(&parts, "kind").and_then(Kind::parse);
    let community = field(&parts, "community").and_then(|c| c.parse::<Uuid>().ok());
    let valid_only = field(&parts, "valid_only").is_some_and(|v| !v.is_empty());
    let (Some(kind), Some(community)) = (kind, community) else {
        return error_page(
            &ui,
            &ApiError::invalid("value.required", "community", "kind and community"),
        );
    };
    let file = parts
        .iter()
        .find(|(n, _)| n == "file")
        .map_or(&[][..], |(_, v)| &v[..]);
    let sheet = match api_io::read_sheet(None, file) {
        Ok(s) => s,
        Err(e) => return error_page(&ui, &e),
    };
    let id = api_io::start_import(app, session, kind, community, valid_only, sheet);
    if headers.contains_key("hx-request") {
        job_fragment(&ui, &s, id, false)
    } else {
        crate::web::see_other(&format!("/manage/import/jobs/{id}"))
    }
}

async fn job(
    ui: Ui,
    headers: HeaderMap,
    s: Result<Staff, AuthError>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Response {
    let s = match s {
        Ok(s) => s,
        Err(e) => return refused(&ui, e),
    };
    let Ok(Path(id)) = id else {
        return error_page(&ui, &ApiError::not_found());
    };
    job_fragment(&ui, &s, id, !headers.contains_key("hx-request"))
}

#[derive(Debug, Serialize)]
struct ErrorRow {
    row: usize,
    column: String,
    reason: String,
    code: String,
}

/// The job's progress or report: an htmx fragment, or (a browser without script, after the
/// upload's redirect) a whole page that reloads itself until the job is done.
fn job_fragment(ui: &Ui, s: &Staff, id: Uuid, whole_page: bool) -> Response {
    let Some(st) = api_io::job_status(s.user_id(), id) else {
        return error_page(
            ui,
            &ApiError::new(StatusCode::NOT_FOUND, "import.job_unknown", "no such job"),
        );
    };
    let errors: Vec<ErrorRow> = st
        .report
        .as_ref()
        .map(|r| {
            r.errors
                .iter()
                .map(|e| ErrorRow {
                    row: e.row,
                    column: e.column.clone(),
                    reason: match ui.lang {
                        i18n::Lang::Zh => e.message.clone(),
                        i18n::Lang::En => e.message_en.clone(),
                    },
                    code: e.code.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let failed = st.failed.as_deref().map(|c| i18n::t(ui.lang, c));
    render(
        ui,
        StatusCode::OK,
        if whole_page {
            "import_job_page.html"
        } else {
            "import_job.html"
        },
        context! {
            me => who_ctx(s),
            job => st.job,
            kind => st.kind.as_str(),
            total => st.total,
            validated => st.validated,
            written => st.written,
            done => st.done,
            failed => failed,
            report => st.report,
            errors => errors,
        },
    )
}
