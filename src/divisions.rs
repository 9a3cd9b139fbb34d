//! `anxin import divisions`: the statistical division list (统计用区划代码) of one city.
//!
//! Reads the three files of the `china-division` layout (`areas-CCCC.csv`, `streets-CCCC.csv`,
//! `villages-CCCC.csv`), validates every row (the report names file, row, column and reason; any
//! error writes nothing), and applies the re-import plan in one transaction: running it twice
//! changes nothing the second time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anxin_domain::{DivisionCode, IncomingNode, Level};
use anxin_store::tree::DivisionReport;
use anxin_store::WriteCtx;
use serde::Serialize;

use crate::app::App;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub row: usize,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} row {} column {}: {}",
            self.file, self.row, self.column, self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} invalid rows; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error("{0}")]
    Other(String),
}

/// City names for the codes we ship data for; others come from `--city-name`.
fn known_city(code: &str) -> Option<&'static str> {
    match code {
        "5101" => Some("成都市"),
        "1101" => Some("北京市"),
        "3101" => Some("上海市"),
        "4401" => Some("广州市"),
        "4403" => Some("深圳市"),
        "5001" => Some("重庆市"),
        _ => None,
    }
}

fn find_city_code(dir: &Path) -> Result<String, ImportError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ImportError::Other(format!("{}: {e}", dir.display())))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(code) = name
            .strip_prefix("areas-")
            .and_then(|n| n.strip_suffix(".csv"))
        {
            return Ok(code.to_owned());
        }
    }
    Err(ImportError::Other(format!(
        "{}: no areas-<city>.csv file",
        dir.display()
    )))
}

struct Reader {
    rows: Vec<IncomingNode>,
    errors: Vec<RowError>,
    seen: HashSet<String>,
}

impl Reader {
    fn file(
        &mut self,
        path: &Path,
        level: Level,
        code_col: &str,
        parent_col: &str,
    ) -> Result<(), ImportError> {
        let fname = path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .map_err(|e| ImportError::Other(format!("{}: {e}", path.display())))?;
        let headers = rdr
            .headers()
            .map_err(|e| ImportError::Other(format!("{fname}: {e}")))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
        };
        let (Some(ci), Some(ni), Some(pi)) = (col(code_col), col("name"), col(parent_col)) else {
            return Err(ImportError::Other(format!(
                "{fname}: header must have columns {code_col}, name, {parent_col}"
            )));
        };
        for (i, rec) in rdr.records().enumerate() {
            // Row numbers as a spreadsheet shows them: the header is row 1.
            let row = i + 2;
            let err = |column: &str, reason: String| RowError {
                file: fname.clone(),
                row,
                column: column.to_owned(),
                reason,
            };
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    self.errors.push(err("*", e.to_string()));
                    continue;
                }
            };
            let raw_code = rec.get(ci).unwrap_or_default().trim();
            let name = rec.get(ni).unwrap_or_default().trim();
            let raw_parent = rec.get(pi).unwrap_or_default().trim();
            let code = match DivisionCode::parse(raw_code) {
                Ok(c) if c.level() == level => c,
                Ok(c) => {
                    self.errors.push(err(
                        code_col,
                        format!(
                            "{raw_code} is a {} code, expected {}",
                            c.level().as_str(),
                            level.as_str()
                        ),
                    ));
                    continue;
                }
                Err(e) => {
                    self.errors
                        .push(err(code_col, format!("{raw_code}: {}", e.code())));
                    continue;
                }
            };
            if name.is_empty() {
                self.errors.push(err("name", "empty".into()));
                continue;
            }
            let parent = match DivisionCode::parse(raw_parent) {
                Ok(p) if code.parent().as_ref() == Some(&p) => p,
                Ok(_) => {
                    self.errors.push(err(
                        parent_col,
                        format!("{raw_parent} does not contain {raw_code}"),
                    ));
                    continue;
                }
                Err(e) => {
                    self.errors
                        .push(err(parent_col, format!("{raw_parent}: {}", e.code())));
                    continue;
                }
            };
            if !self.seen.insert(code.as_str().to_owned()) {
                self.errors
                    .push(err(code_col, format!("{raw_code} appears twice")));
                continue;
            }
            self.rows.push(IncomingNode {
                code,
                name: name.to_owned(),
                parent_code: Some(parent),
                level,
            });
        }
        Ok(())
    }
}

/// Read and validate a division directory into the incoming list (city first).
pub fn read_dir(
    dir: &Path,
    city_name: Option<&str>,
) -> Result<(String, Vec<IncomingNode>), ImportError> {
    let city = find_city_code(dir)?;
    let city_code = DivisionCode::parse(&city)
        .map_err(|e| ImportError::Other(format!("city code {city}: {}", e.code())))?;
    let name = city_name
        .map(str::to_owned)
        .or_else(|| known_city(&city).map(str::to_owned))
        .ok_or_else(|| ImportError::Other(format!("unknown city {city}: pass --city-name")))?;
    let mut r = Reader {
        rows: vec![IncomingNode {
            code: city_code.clone(),
            name,
            parent_code: None,
            level: Level::City,
        }],
        errors: Vec::new(),
        seen: HashSet::from([city_code.as_str().to_owned()]),
    };
    let path = |kind: &str| -> PathBuf { dir.join(format!("{kind}-{city}.csv")) };
    r.file(&path("areas"), Level::District, "code", "cityCode")?;
    r.file(&path("streets"), Level::Street, "code", "areaCode")?;
    r.file(&path("villages"), Level::Community, "code", "streetCode")?;
    // A row whose parent is not in the list would dangle: report it against its own row.
    let known: HashSet<String> = r.rows.iter().map(|n| n.code.as_str().to_owned()).collect();
    let dangling: Vec<RowError> = r
        .rows
        .iter()
        .filter(|n| {
            n.parent_code
                .as_ref()
                .is_some_and(|p| !known.contains(p.as_str()))
        })
        .map(|n| RowError {
            file: format!("{}s", n.level.as_str()),
            row: 0,
            column: "parent".into(),
            reason: format!(
                "{} refers to a parent that is not in the list",
                n.code.short()
            ),
        })
        .collect();
    r.errors.extend(dangling);
    if !r.errors.is_empty() {
        return Err(ImportError::Rows(r.errors));
    }
    Ok((city, r.rows))
}

/// Import (or re-import) a city's division list. `source` labels the codes' provenance.
pub async fn import(
    app: &App,
    dir: &Path,
    city_name: Option<&str>,
    source: &str,
) -> Result<DivisionReport, ImportError> {
    let (city, rows) = read_dir(dir, city_name)?;
    let source = source.to_owned();
    app.store
        .write(WriteCtx::system("import-divisions"), move |tx| {
            anxin_store::tree::import_divisions(tx, &city, &rows, &source)
        })
        .await
        .map_err(|e| ImportError::Other(e.to_string()))
}
