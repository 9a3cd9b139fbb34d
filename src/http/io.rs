//! Import and export over HTTP, for every list of part 1.
//!
//! - `POST /api/v1/import/{kind}?community_id=…&valid_only=…&job=…` (`kind`: people, buildings,
//!   dwellings, vulnerable, facilities): the raw file is the body (`Content-Type: text/csv`, or
//!   the XLSX type; an XLSX body is also recognised by its ZIP signature). Answers the report
//!   (`io::Report`) with its job id: 200 when something was written or nothing was wrong, 422 when
//!   rows were wrong and nothing was written. Needs `ImportData` and write reach over the
//!   community; audited (`import`).
//! - `GET /api/v1/import/jobs/{id}`: progress of a running import (rows total / validated /
//!   written) and its report once done. Jobs live in memory (the last 64), visible only to the
//!   user who started them. A client that wants progress while the POST runs picks the job id
//!   itself (`?job=<uuid>`) and polls this endpoint; the import page starts the import as a
//!   background task ([`start_import`]) and polls the same registry.
//! - `GET /api/v1/import/{kind}/template.csv|.xlsx`: the Chinese template (header + one example).
//! - `GET /api/v1/export/{kind}.csv|.xlsx` (and `.geojson` for buildings, dwellings, facilities;
//!   households as CSV/XLSX): the list within the caller's reach, masked (people: unless the
//!   caller holds `Unmask` and asks `?unmask=1`); audited (`export`).

use crate::http::error::query;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use anxin_domain::Permission;
use anxin_store::audit;
use anxin_store::people::PeopleFilter;

use crate::app::App;
use crate::http::guard::{Authenticated, Session};
use crate::http::routes::{Serves, Table};
use crate::http::ApiError;
use crate::io::export::ExportFilter;
use crate::io::{self, Format, Kind, Progress, Report};

/// Largest accepted import file.
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

/// The routes of one importable kind.
pub struct KindRoutes {
    pub kind: Kind,
    pub records: &'static str,
    pub import: &'static str,
    pub template_csv: &'static str,
    pub template_xlsx: &'static str,
    pub csv: &'static str,
    pub xlsx: &'static str,
    pub geojson: Option<&'static str>,
}

macro_rules! kind_routes {
    ($kind:expr, $name:literal, $records:literal, $geo:expr) => {
        KindRoutes {
            kind: $kind,
            records: $records,
            import: concat!("/api/v1/import/", $name),
            template_csv: concat!("/api/v1/import/", $name, "/template.csv"),
            template_xlsx: concat!("/api/v1/import/", $name, "/template.xlsx"),
            csv: concat!("/api/v1/export/", $name, ".csv"),
            xlsx: concat!("/api/v1/export/", $name, ".xlsx"),
            geojson: if $geo {
                Some(concat!("/api/v1/export/", $name, ".geojson"))
            } else {
                None
            },
        }
    };
}

/// Every importable kind and its routes.
pub const KINDS: &[KindRoutes] = &[
    kind_routes!(Kind::People, "people", "people", false),
    kind_routes!(Kind::Buildings, "buildings", "buildings", true),
    kind_routes!(Kind::Dwellings, "dwellings", "dwellings", true),
    kind_routes!(Kind::Vulnerable, "vulnerable", "vulnerable", false),
    kind_routes!(Kind::Facilities, "facilities", "facilities", true),
];

pub const HOUSEHOLDS_CSV: &str = "/api/v1/export/households.csv";
pub const HOUSEHOLDS_XLSX: &str = "/api/v1/export/households.xlsx";
pub const JOB_PATH: &str = "/api/v1/import/jobs/{id}";

/// An export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Csv,
    Xlsx,
    GeoJson,
}

pub fn routes() -> Table {
    let mut t = Table::new().route(JOB_PATH, &["GET"], Serves::Own, get(job_progress));
    for k in KINDS {
        let kind = k.kind;
        t = t
            .route(
                k.import,
                &["POST"],
                Serves::Records(k.records),
                post(
                    move |s: State<App>,
                          a: Authenticated,
                          q: Result<Query<ImportQuery>, QueryRejection>,
                          h: HeaderMap,
                          b: Bytes| import_list(s, a, q, h, b, kind),
                )
                .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
            )
            .route(
                k.template_csv,
                &["GET"],
                Serves::Public,
                get(move || async move { template(kind, Format::Csv) }),
            )
            .route(
                k.template_xlsx,
                &["GET"],
                Serves::Public,
                get(move || async move { template(kind, Format::Xlsx) }),
            );
        let formats: &[(&'static str, OutFormat)] =
            &[(k.csv, OutFormat::Csv), (k.xlsx, OutFormat::Xlsx)];
        let geo: Vec<(&'static str, OutFormat)> = k
            .geojson
            .map(|p| (p, OutFormat::GeoJson))
            .into_iter()
            .collect();
        for &(path, format) in formats.iter().chain(geo.iter()) {
            t = if kind == Kind::People {
                t.route(
                    path,
                    &["GET"],
                    Serves::Records(k.records),
                    get(
                        move |s: State<App>,
                              a: Authenticated,
                              f: Result<Query<PeopleFilter>, QueryRejection>,
                              o: Result<Query<ExportOpts>, QueryRejection>| {
                            export_people(s, a, f, o, format)
                        },
                    ),
                )
            } else {
                t.route(
                    path,
                    &["GET"],
                    Serves::Records(k.records),
                    get(
                        move |s: State<App>,
                              a: Authenticated,
                              f: Result<Query<ExportFilter>, QueryRejection>| {
                            export_list(s, a, f, kind, format)
                        },
                    ),
                )
            };
        }
    }
    for (path, format) in [
        (HOUSEHOLDS_CSV, OutFormat::Csv),
        (HOUSEHOLDS_XLSX, OutFormat::Xlsx),
    ] {
        t = t.route(
            path,
            &["GET"],
            Serves::Records("households"),
            get(move |s: State<App>, a: Authenticated| export_households(s, a, format)),
        );
    }
    t
}

struct Job {
    id: Uuid,
    owner: Uuid,
    kind: Kind,
    progress: Arc<Progress>,
    report: Option<Report>,
    /// The import stopped before a report (unreadable file, community not found).
    failed: Option<String>,
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The community the rows go into.
    pub community_id: Option<Uuid>,
    /// `1`/`true`: import the valid rows even when others are wrong.
    #[serde(default)]
    pub valid_only: Option<String>,
    /// A job id the client picked, to poll `GET /api/v1/import/jobs/{id}` while this runs.
    #[serde(default)]
    pub job: Option<Uuid>,
}

fn truthy(s: Option<&str>) -> bool {
    matches!(s, Some("1" | "true" | "yes" | "on"))
}

/// What an import answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportAnswer {
    pub job: Uuid,
    pub report: Report,
}

/// A job's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job: Uuid,
    #[schema(value_type = String)]
    pub kind: Kind,
    pub total: u64,
    pub validated: u64,
    pub written: u64,
    pub done: bool,
    /// Why the import stopped before a report, when it did.
    pub failed: Option<String>,
    pub report: Option<Report>,
}

/// The status of job `id` if `owner` started it.
pub fn job_status(owner: Uuid, id: Uuid) -> Option<JobStatus> {
    with_jobs(|j| {
        j.iter().find(|x| x.id == id && x.owner == owner).map(|x| {
            let (total, validated, written) = x.progress.snapshot();
            JobStatus {
                job: x.id,
                kind: x.kind,
                total,
                validated,
                written,
                done: x.report.is_some() || x.failed.is_some(),
                failed: x.failed.clone(),
                report: x.report.clone(),
            }
        })
    })
}

/// The caller holds `p`, else 403 with `code`.
fn require(s: &Session, p: Permission, code: &'static str) -> Result<(), ApiError> {
    if s.caller().has(p) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, code, "not allowed"))
    }
}

/// Check that the session may import at all.
pub fn may_import(s: &Session) -> Result<(), ApiError> {
    require(s, Permission::ImportData, "import.not_allowed")
}

/// Register job `job_id` and run the import to its end: report stored in the job, audited.
pub async fn run_import(
    app: App,
    s: Session,
    kind: Kind,
    community: Uuid,
    valid_only: bool,
    sheet: io::sheet::Sheet,
    job_id: Uuid,
) -> Result<Report, ApiError> {
    let progress = Arc::new(Progress::default());
    let owner = s.user_id();
    with_jobs(|j| {
        j.retain(|x| x.id != job_id);
        if j.len() >= 64 {
            j.pop_front();
        }
        j.push_back(Job {
            id: job_id,
            owner,
            kind,
            progress: progress.clone(),
            report: None,
            failed: None,
        });
    });
    let opts = io::people::Options::new(community, valid_only);
    let res = io::lists::import_kind(
        kind,
        &app.store,
        s.write_ctx(),
        s.caller(),
        sheet,
        &opts,
        progress,
    )
    .await;
    let report = match res {
        Ok(r) => r,
        Err(e) => {
            let err: ApiError = match e {
                io::ImportError::Store(s) => s.into(),
                io::ImportError::File(m) => ApiError::invalid("import.file_unreadable", "file", m),
            };
            with_jobs(|j| {
                if let Some(x) = j.iter_mut().find(|x| x.id == job_id) {
                    x.failed = Some(err.code.to_owned());
                }
            });
            return Err(err);
        }
    };
    let entry = s.audit("import").target("node", community).detail(json!({
        "kind": kind.as_str(), "rows": report.rows, "imported": report.imported,
        "errors": report.errors.len(), "valid_only": valid_only, "job": job_id,
    }));
    app.store
        .write(s.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await?;
    with_jobs(|j| {
        if let Some(x) = j.iter_mut().find(|x| x.id == job_id) {
            x.report = Some(report.clone());
        }
    });
    Ok(report)
}

/// Start an import in the background and answer its job id at once (the import page).
pub fn start_import(
    app: App,
    s: Session,
    kind: Kind,
    community: Uuid,
    valid_only: bool,
    sheet: io::sheet::Sheet,
) -> Uuid {
    let job_id = Uuid::now_v7();
    // Registered before the task runs, so the first poll finds it.
    let owner = s.user_id();
    with_jobs(|j| {
        if j.len() >= 64 {
            j.pop_front();
        }
        j.push_back(Job {
            id: job_id,
            owner,
            kind,
            progress: Arc::new(Progress::default()),
            report: None,
            failed: None,
        });
    });
    tokio::spawn(async move {
        if let Err(e) = run_import(app, s, kind, community, valid_only, sheet, job_id).await {
            tracing::info!(job = %job_id, code = e.code, "import stopped");
        }
    });
    job_id
}

/// Read an uploaded file's bytes as a sheet.
pub fn read_sheet(content_type: Option<&str>, body: &[u8]) -> Result<io::sheet::Sheet, ApiError> {
    let format = Format::sniff(content_type, body);
    io::sheet::read(body, format)
        .map_err(|e| ApiError::invalid("import.file_unreadable", "file", e.to_string()))
}

async fn import_list(
    State(app): State<App>,
    auth: Authenticated,
    q: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let s = auth.into_session();
    may_import(&s)?;
    let community = q
        .community_id
        .ok_or_else(|| ApiError::invalid("value.required", "community_id", "give community_id"))?;
    let valid_only = truthy(q.valid_only.as_deref());
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let sheet = read_sheet(ct, &body)?;
    let job_id = q.job.unwrap_or_else(Uuid::now_v7);
    let report = run_import(app, s, kind, community, valid_only, sheet, job_id).await?;
    let status = if report.errors.is_empty() || report.written {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        Json(ImportAnswer {
            job: job_id,
            report,
        }),
    )
        .into_response())
}

async fn job_progress(
    auth: Authenticated,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<JobStatus>, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::not_found());
    };
    job_status(auth.user_id(), id)
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

fn file_response(format: OutFormat, name: &str, body: Vec<u8>) -> Response {
    let (ct, ext) = match format {
        OutFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        OutFormat::Xlsx => (io::XLSX_TYPE, "xlsx"),
        OutFormat::GeoJson => ("application/geo+json", "geojson"),
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
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "file generation failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the file could not be generated",
    )
}

fn sheet_file(
    format: OutFormat,
    kind_sheet: &str,
    head: &[&str],
    rows: &[Vec<String>],
) -> Result<Vec<u8>, ApiError> {
    match format {
        OutFormat::Xlsx => io::sheet::write_xlsx(kind_sheet, head, rows),
        OutFormat::Csv | OutFormat::GeoJson => io::sheet::write_csv(head, rows),
    }
    .map_err(internal)
}

fn template(kind: Kind, format: Format) -> Result<Response, ApiError> {
    let (head, rows) = io::template(kind);
    let out = if format == Format::Csv {
        OutFormat::Csv
    } else {
        OutFormat::Xlsx
    };
    let body = sheet_file(out, io::sheet_name(kind), &head, &rows)?;
    Ok(file_response(
        out,
        &format!("{}-template", kind.as_str()),
        body,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportOpts {
    /// `1`: documents and phones in plaintext (needs `Unmask`).
    #[serde(default)]
    pub unmask: Option<String>,
}

fn may_export(s: &Session) -> Result<(), ApiError> {
    require(s, Permission::ExportData, "export.not_allowed")
}

fn format_name(f: OutFormat) -> &'static str {
    match f {
        OutFormat::Csv => "csv",
        OutFormat::Xlsx => "xlsx",
        OutFormat::GeoJson => "geojson",
    }
}

async fn audit_export(
    app: &App,
    s: &Session,
    kind: &str,
    rows: usize,
    masked: bool,
    format: OutFormat,
) -> Result<(), ApiError> {
    let entry = s.audit("export").detail(json!({
        "kind": kind, "rows": rows, "masked": masked, "format": format_name(format),
    }));
    app.store
        .write(s.write_ctx(), move |tx| {
            audit::record(tx, entry).map(|_| ())
        })
        .await?;
    Ok(())
}

async fn export_people(
    State(app): State<App>,
    auth: Authenticated,
    f: Result<Query<PeopleFilter>, QueryRejection>,
    o: Result<Query<ExportOpts>, QueryRejection>,
    format: OutFormat,
) -> Result<Response, ApiError> {
    let (f, o) = (query(f)?, query(o)?);
    let s = auth.into_session();
    may_export(&s)?;
    let caller = s.caller().clone();
    let unmask = truthy(o.unmask.as_deref());
    if unmask {
        require(&s, Permission::Unmask, "person.unmask_not_allowed")?;
    }
    let rows = app
        .store
        .read(move |c, env| io::export::people_rows(c, env, &caller, &f, unmask))
        .await?;
    audit_export(&app, &s, "people", rows.len(), !unmask, format).await?;
    let head = io::export::people_headers();
    let body = sheet_file(format, "人口", &head, &rows)?;
    Ok(file_response(format, "people", body))
}

async fn export_list(
    State(app): State<App>,
    auth: Authenticated,
    f: Result<Query<ExportFilter>, QueryRejection>,
    kind: Kind,
    format: OutFormat,
) -> Result<Response, ApiError> {
    let f = query(f)?;
    let s = auth.into_session();
    may_export(&s)?;
    let caller = s.caller().clone();
    let records = app
        .store
        .read(move |c, env| io::export::records(c, env, &caller, kind, &f))
        .await?;
    audit_export(&app, &s, kind.as_str(), records.len(), true, format).await?;
    let body = if format == OutFormat::GeoJson {
        serde_json::to_vec(&io::export::geojson(kind, &records)).map_err(internal)?
    } else {
        let rows: Vec<Vec<String>> = records.iter().map(|r| r.row(kind)).collect();
        sheet_file(
            format,
            io::sheet_name(kind),
            &io::export::headers(kind),
            &rows,
        )?
    };
    Ok(file_response(format, kind.as_str(), body))
}

async fn export_households(
    State(app): State<App>,
    auth: Authenticated,
    format: OutFormat,
) -> Result<Response, ApiError> {
    let s = auth.into_session();
    may_export(&s)?;
    let caller = s.caller().clone();
    let rows = app
        .store
        .read(move |c, _| io::export::household_rows(c, &caller))
        .await?;
    audit_export(&app, &s, "households", rows.len(), true, format).await?;
    let body = sheet_file(format, "户", io::export::HOUSEHOLD_HEADERS, &rows)?;
    Ok(file_response(format, "households", body))
}

// ---------------------------------------------------------------------------------------------
// The API document of these routes. Their paths are generated per kind, so the operations are
// built here rather than with `#[utoipa::path]`; `openapi::document` adds security and errors.

pub fn api() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::{
        ContentBuilder, ObjectBuilder, OneOfBuilder, OpenApiBuilder, PathsBuilder, Ref, Required,
        ResponseBuilder, Type,
    };
    use utoipa::{IntoParams, PartialSchema};

    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let binary = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .build()
    };
    let csv_xlsx_body = |desc: &str| {
        RequestBodyBuilder::new()
            .description(Some(desc))
            .required(Some(Required::True))
            .content(
                "text/csv",
                ContentBuilder::new().schema(Some(string())).build(),
            )
            .content(
                io::XLSX_TYPE,
                ContentBuilder::new().schema(Some(binary())).build(),
            )
            .build()
    };
    let file = |ct: &str, desc: &str| {
        let schema = if ct == io::XLSX_TYPE {
            binary()
        } else {
            string()
        };
        ResponseBuilder::new()
            .description(desc)
            .content(ct, ContentBuilder::new().schema(Some(schema)).build())
            .build()
    };
    let geojson = || {
        ResponseBuilder::new()
            .description("a GeoJSON FeatureCollection (RFC 7946, WGS84 longitude/latitude)")
            .content(
                "application/geo+json",
                ContentBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Object)
                            .property(
                                "type",
                                ObjectBuilder::new()
                                    .schema_type(Type::String)
                                    .enum_values(Some(["FeatureCollection"])),
                            )
                            .required("type")
                            .property(
                                "features",
                                utoipa::openapi::ArrayBuilder::new()
                                    .items(ObjectBuilder::new().schema_type(Type::Object)),
                            )
                            .required("features"),
                    ))
                    .build(),
            )
            .build()
    };
    let under = || {
        ParameterBuilder::new()
            .name("under")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("a node: only records in its subtree"))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Uuid,
                )),
            )))
            .build()
    };
    let json_of = |name: &str| {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(name)))
            .build()
    };

    let mut paths = PathsBuilder::new().build();
    paths.add_path_operation(
        JOB_PATH,
        vec![HttpMethod::Get],
        OperationBuilder::new()
            .tag("io")
            .summary(Some("progress and report of an import the caller started"))
            .parameter(
                ParameterBuilder::new()
                    .name("id")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
                        Some(utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Uuid,
                        )),
                    ))),
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("the job")
                    .content("application/json", json_of("JobStatus")),
            )
            .build(),
    );
    for k in KINDS {
        let name = k.kind.as_str();
        paths.add_path_operation(
            k.import,
            vec![HttpMethod::Post],
            OperationBuilder::new()
                .tag("io")
                .summary(Some(format!("import {name} from CSV or XLSX")))
                .description(Some(
                    "The raw file is the body. Every row is validated; with any error nothing \
                     is written (422 with the report) unless `valid_only` is set.",
                ))
                .parameters(Some(ImportQuery::into_params(|| Some(ParameterIn::Query))))
                .request_body(Some(csv_xlsx_body(
                    "the file, with the template's header row",
                )))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("the import ran; the report says what was written")
                        .content("application/json", json_of("ImportAnswer")),
                )
                .response(
                    "422",
                    ResponseBuilder::new()
                        .description(
                            "rows were wrong and nothing was written (the report), or the \
                             request was invalid (the error shape)",
                        )
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(
                                    OneOfBuilder::new()
                                        .item(Ref::from_schema_name("ImportAnswer"))
                                        .item(Ref::from_schema_name("Error")),
                                ))
                                .build(),
                        ),
                )
                .build(),
        );
        for (path, ct) in [
            (k.template_csv, "text/csv"),
            (k.template_xlsx, io::XLSX_TYPE),
        ] {
            paths.add_path_operation(
                path,
                vec![HttpMethod::Get],
                OperationBuilder::new()
                    .tag("io")
                    .summary(Some(format!("the Chinese import template of {name}")))
                    .response("200", file(ct, "the template: header and one example row"))
                    .build(),
            );
        }
        let mut outs = vec![(k.csv, "text/csv"), (k.xlsx, io::XLSX_TYPE)];
        if let Some(g) = k.geojson {
            outs.push((g, "application/geo+json"));
        }
        for (path, ct) in outs {
            let mut op = OperationBuilder::new()
                .tag("io")
                .summary(Some(format!("export {name} within the caller's reach")));
            op = if k.kind == Kind::People {
                let mut ps = PeopleFilter::into_params(|| Some(ParameterIn::Query));
                ps.extend(ExportOpts::into_params(|| Some(ParameterIn::Query)));
                op.parameters(Some(ps))
            } else {
                op.parameter(under())
            };
            let resp = if ct == "application/geo+json" {
                geojson()
            } else {
                file(ct, "the list, masked, cells neutralised against formulas")
            };
            paths.add_path_operation(
                path,
                vec![HttpMethod::Get],
                op.response("200", resp).build(),
            );
        }
    }
    for (path, ct) in [
        (HOUSEHOLDS_CSV, "text/csv"),
        (HOUSEHOLDS_XLSX, io::XLSX_TYPE),
    ] {
        paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            OperationBuilder::new()
                .tag("io")
                .summary(Some("export the households within the caller's reach"))
                .response("200", file(ct, "label, grid, head, members"))
                .build(),
        );
    }
    let mut components = utoipa::openapi::Components::new();
    for (name, schema) in [
        ("ImportAnswer", ImportAnswer::schema()),
        ("JobStatus", JobStatus::schema()),
        ("Report", Report::schema()),
        ("RowError", io::RowError::schema()),
    ] {
        components.schemas.insert(name.to_owned(), schema);
    }
    OpenApiBuilder::new()
        .paths(paths)
        .components(Some(components))
        .build()
}
