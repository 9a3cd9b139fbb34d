//! Import and export over HTTP.
//!
//! - `POST /api/v1/import/{kind}?community_id=…&valid_only=…&job=…`: the raw file is the body
//!   (`Content-Type: text/csv`, or the XLSX type; an XLSX body is also recognised by its ZIP
//!   signature). Answers the report (`io::Report`) with its job id. Needs `ImportData` and write
//!   reach over the community; audited (`import`).
//! - `GET /api/v1/import/jobs/{id}`: progress of a running import (rows total / validated /
//!   written) and its report once done. Jobs live in memory (the last 64), visible only to the
//!   user who started them. A page that wants progress while the POST runs picks the job id
//!   itself (`?job=<uuid>`) and polls this endpoint.
//! - `GET /api/v1/import/{kind}/template.csv|.xlsx`: the Chinese template (header + one example).
//! - `GET /api/v1/export/{kind}.csv|.xlsx`: the list with the list's filters, masked unless the
//!   caller holds `Unmask` and asks `?unmask=1`; audited (`export`, `masked: true|false`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use anxin_domain::Permission;
use anxin_store::audit::{self, AuditEntry};
use anxin_store::people::PeopleFilter;

use crate::app::App;
use crate::http::guard::Authenticated;
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::io::{self, Format, Progress, Report};

/// Largest accepted import file.
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

pub fn routes() -> Table {
    Table::new()
        .route(
            "/api/v1/import/people",
            &["POST"],
            Serves::Records("people"),
            post(import_people).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route(
            "/api/v1/import/jobs/{id}",
            &["GET"],
            Serves::Own,
            get(job_progress),
        )
        .route(
            "/api/v1/import/people/template.csv",
            &["GET"],
            Serves::Public,
            get(|| async { template(Format::Csv) }),
        )
        .route(
            "/api/v1/import/people/template.xlsx",
            &["GET"],
            Serves::Public,
            get(|| async { template(Format::Xlsx) }),
        )
        .route(
            "/api/v1/export/people.csv",
            &["GET"],
            Serves::Records("people"),
            get(
                |s: State<App>, a: Authenticated, f: Query<PeopleFilter>, o: Query<ExportOpts>| {
                    export_people(s, a, f, o, Format::Csv)
                },
            ),
        )
        .route(
            "/api/v1/export/people.xlsx",
            &["GET"],
            Serves::Records("people"),
            get(
                |s: State<App>, a: Authenticated, f: Query<PeopleFilter>, o: Query<ExportOpts>| {
                    export_people(s, a, f, o, Format::Xlsx)
                },
            ),
        )
}

struct Job {
    id: Uuid,
    owner: Uuid,
    progress: Arc<Progress>,
    report: Option<Report>,
}

fn jobs() -> &'static Mutex<VecDeque<Job>> {
    static JOBS: OnceLock<Mutex<VecDeque<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| Mutex::new(VecDeque::new()))
}

fn with_jobs<T>(f: impl FnOnce(&mut VecDeque<Job>) -> T) -> T {
    let mut g = jobs()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut g)
}

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    pub community_id: Option<Uuid>,
    #[serde(default)]
    pub valid_only: Option<String>,
    #[serde(default)]
    pub job: Option<Uuid>,
}

fn truthy(s: Option<&str>) -> bool {
    matches!(s, Some("1" | "true" | "yes" | "on"))
}

async fn import_people(
    State(app): State<App>,
    auth: Authenticated,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    if !caller.has(Permission::ImportData) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "import.not_allowed",
            "import not allowed",
        ));
    }
    let community = q
        .community_id
        .ok_or_else(|| ApiError::invalid("value.required", "community_id", "give community_id"))?;
    let valid_only = truthy(q.valid_only.as_deref());
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = Format::sniff(ct, &body);
    let sheet = io::sheet::read(&body, format)
        .map_err(|e| ApiError::invalid("import.file_unreadable", "file", e.to_string()))?;
    let job_id = q.job.unwrap_or_else(Uuid::now_v7);
    let progress = Arc::new(Progress::default());
    let owner = auth.user_id();
    with_jobs(|j| {
        j.retain(|x| x.id != job_id);
        if j.len() >= 64 {
            j.pop_front();
        }
        j.push_back(Job {
            id: job_id,
            owner,
            progress: progress.clone(),
            report: None,
        });
    });
    let opts = io::people::Options::new(community, valid_only);
    let res = io::people::import(
        &app.store,
        auth.write_ctx(),
        &caller,
        sheet,
        &opts,
        progress,
    )
    .await;
    let report = match res {
        Ok(r) => r,
        Err(e) => {
            with_jobs(|j| j.retain(|x| x.id != job_id));
            return Err(match e {
                io::ImportError::Store(s) => s.into(),
                io::ImportError::File(m) => ApiError::invalid("import.file_unreadable", "file", m),
            });
        }
    };
    let entry = AuditEntry::new("import")
        .actor(Some(owner))
        .ip(auth.ip())
        .target("node", community)
        .detail(json!({
            "kind": "people", "rows": report.rows, "imported": report.imported,
            "errors": report.errors.len(), "valid_only": valid_only, "job": job_id,
        }));
    app.store
        .write(auth.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await?;
    with_jobs(|j| {
        if let Some(x) = j.iter_mut().find(|x| x.id == job_id) {
            x.report = Some(report.clone());
        }
    });
    let status = if report.errors.is_empty() || report.written {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(json!({ "job": job_id, "report": report }))))
}

async fn job_progress(
    auth: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let me = auth.user_id();
    let found = with_jobs(|j| {
        j.iter().find(|x| x.id == id && x.owner == me).map(|x| {
            let (total, validated, written) = x.progress.snapshot();
            json!({
                "job": x.id, "total": total, "validated": validated, "written": written,
                "done": x.report.is_some(), "report": x.report,
            })
        })
    });
    found.map(Json).ok_or_else(ApiError::not_found)
}

fn file_response(format: Format, name: &str, body: Vec<u8>) -> impl IntoResponse {
    let (ct, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Xlsx => (io::XLSX_TYPE, "xlsx"),
    };
    (
        [
            (header::CONTENT_TYPE, ct.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        body,
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "file generation failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the file could not be generated",
    )
}

fn template(format: Format) -> Result<impl IntoResponse, ApiError> {
    let (head, rows) = io::people::template();
    let body = match format {
        Format::Csv => io::sheet::write_csv(&head, &rows),
        Format::Xlsx => io::sheet::write_xlsx("人口", &head, &rows),
    }
    .map_err(internal)?;
    Ok(file_response(format, "people-template", body))
}

#[derive(Debug, Deserialize)]
pub struct ExportOpts {
    #[serde(default)]
    pub unmask: Option<String>,
}

async fn export_people(
    State(app): State<App>,
    auth: Authenticated,
    Query(f): Query<PeopleFilter>,
    Query(o): Query<ExportOpts>,
    format: Format,
) -> Result<impl IntoResponse, ApiError> {
    let caller = auth.caller().clone();
    if !caller.has(Permission::ExportData) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "export.not_allowed",
            "export not allowed",
        ));
    }
    let unmask = truthy(o.unmask.as_deref());
    if unmask && !caller.has(Permission::Unmask) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "person.unmask_not_allowed",
            "unmask not allowed",
        ));
    }
    let rows = app
        .store
        .read(move |c, env| io::export::people_rows(c, env, &caller, &f, unmask))
        .await?;
    let entry = AuditEntry::new("export")
        .actor(Some(auth.user_id()))
        .ip(auth.ip())
        .detail(json!({
            "kind": "people", "rows": rows.len(), "masked": !unmask,
            "format": if format == Format::Csv { "csv" } else { "xlsx" },
        }));
    app.store
        .write(auth.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await?;
    let head = io::export::people_headers();
    let body = match format {
        Format::Csv => io::sheet::write_csv(&head, &rows),
        Format::Xlsx => io::sheet::write_xlsx("人口", &head, &rows),
    }
    .map_err(internal)?;
    Ok(file_response(format, "people", body))
}
