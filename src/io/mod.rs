//! Import and export of the lists (people with households first): CSV and XLSX in, CSV, XLSX
//! and GeoJSON out, templates in Chinese.
//!
//! An import reads the whole file into a [`sheet::Sheet`], validates every row with the domain
//! parsers (and against the database for duplicate documents), and writes only when nothing is
//! wrong — or, when the user chose "import the valid rows", writes the valid rows alone. Rows are
//! numbered as the spreadsheet shows them (the header is row 1); columns are named by the header
//! text as the file has it; reasons are the stable error codes with a zh-CN message.

pub mod export;
pub mod lists;
pub mod people;
pub mod sheet;

/// The column table of a kind's sheet and the mapping of a file's headers onto it (by the
/// Chinese header or an English alias), shared by every kind.
pub use people::Col;
pub(crate) use people::ColumnMap;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A kind of list that can be imported or exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    People,
    Buildings,
    Dwellings,
    Vulnerable,
    Facilities,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "people" => Kind::People,
            "buildings" => Kind::Buildings,
            "dwellings" => Kind::Dwellings,
            "vulnerable" => Kind::Vulnerable,
            "facilities" => Kind::Facilities,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::People => "people",
            Kind::Buildings => "buildings",
            Kind::Dwellings => "dwellings",
            Kind::Vulnerable => "vulnerable",
            Kind::Facilities => "facilities",
        }
    }
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// From a file name's extension.
    pub fn from_path(p: &std::path::Path) -> Option<Format> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// From an HTTP content type; XLSX files also start with the ZIP signature.
    pub fn sniff(content_type: Option<&str>, body: &[u8]) -> Format {
        let ct = content_type.unwrap_or("");
        if ct.contains("spreadsheetml") || ct.contains("excel") || body.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One problem with one cell (or a whole row when `column` is empty).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowError {
    /// The row as the spreadsheet shows it (header = row 1).
    pub row: usize,
    /// The column's header text as in the file.
    pub column: String,
    /// The stable error code.
    pub code: String,
    /// The reason in zh-CN.
    pub message: String,
    /// The reason in English.
    pub message_en: String,
}

impl RowError {
    pub fn new(row: usize, column: impl Into<String>, code: &str) -> Self {
        Self {
            row,
            column: column.into(),
            code: code.to_owned(),
            message: zh_message(code).to_owned(),
            message_en: crate::web::i18n::lookup(crate::web::i18n::Lang::En, code)
                .unwrap_or("Invalid value")
                .to_owned(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct Report {
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Data rows in the file (blank rows not counted).
    pub rows: usize,
    /// Rows that passed every check.
    pub valid: usize,
    /// Rows written.
    pub imported: usize,
    pub households_created: usize,
    /// Whether anything was written.
    pub written: bool,
    pub valid_only: bool,
    pub errors: Vec<RowError>,
}

/// Rows done out of the total, shared with whoever shows progress (the CLI's bar, the
/// `GET /api/v1/import/{id}` endpoint). `validated` counts rows checked, `written` rows stored.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicU64,
    pub validated: AtomicU64,
    pub written: AtomicU64,
}

impl Progress {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.total.load(Ordering::Relaxed),
            self.validated.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }
}

/// An import that could not even start (unreadable file, missing column, no such community).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] anxin_store::StoreError),
}

/// A spreadsheet cell that a spreadsheet program would not run as a formula: cells starting
/// with `= + - @`, a tab or a carriage return get a leading apostrophe.
pub fn neutralize_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// The zh-CN text for a stable error code (the report's `message`).
pub fn zh_message(code: &str) -> &'static str {
    match code {
        "value.required" => "必填项为空",
        "value.too_long" => "内容过长",
        "value.invalid" => "不是可选的值",
        "value.date" => "日期格式不正确（应为 YYYY-MM-DD）",
        "document.empty" => "证件号码为空",
        "document.format" => "证件号码格式不正确",
        "document.region" => "证件号码的地区码不正确",
        "document.birth_date" => "证件号码中的出生日期不正确",
        "document.checksum" => "证件号码校验位不正确",
        "document.unexpected_number" => "无证件时不应填写证件号码",
        "phone.format" => "联系电话格式不正确",
        "person.birth_date_mismatch" => "出生日期与证件号码不一致",
        "person.document_taken" => "证件号码已登记",
        "import.duplicate_in_file" => "与文件中前面的行证件号码重复",
        "import.column_missing" => "缺少必需的列",
        "import.grid_unknown" => "本社区没有该网格",
        "import.household_grid_mismatch" => "同一户的网格不一致",
        "grid.not_in_community" => "网格不属于该社区",
        "geo.out_of_range" => "坐标超出范围",
        "geo.not_finite" => "坐标不是有效数字",
        "import.write_failed" => "写入失败",
        "import.compound_unknown" => "本社区没有该小区",
        "import.building_unknown" => "本社区没有该楼栋",
        "import.unit_unknown" => "该楼栋没有该单元",
        "import.person_unknown" => "本社区没有该人员",
        "import.name_mismatch" => "姓名与登记的人员不一致",
        "import.already_exists" => "该记录已存在",
        "import.duplicate_row" => "与文件中前面的行重复",
        "value.number" => "不是有效的数字",
        "record.reference_invalid" => "引用的记录不存在",
        "building.node_level" => "楼栋只能属于社区或小区",
        "unit.not_in_building" => "单元不属于该楼栋",
        "facility.shelter_capacity_required" => "应急避难场所须填写容纳人数",
        "vulnerable.person_or_document" => "须填写证件号码或人员编号",
        _ => "数据无效",
    }
}

impl Col {
    pub const fn new(
        key: &'static str,
        zh: &'static str,
        aliases: &'static [&'static str],
        required: bool,
        example: &'static str,
    ) -> Col {
        Col {
            key,
            zh,
            aliases,
            required,
            example,
        }
    }
}

/// A kind's template: the Chinese headers and one example row.
pub fn template(kind: Kind) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let cols = lists::columns(kind);
    (
        cols.iter().map(|c| c.zh).collect(),
        vec![cols.iter().map(|c| c.example.to_owned()).collect()],
    )
}

/// The sheet name of a kind's files.
pub fn sheet_name(kind: Kind) -> &'static str {
    match kind {
        Kind::People => "人口",
        Kind::Buildings => "楼栋",
        Kind::Dwellings => "房屋",
        Kind::Vulnerable => "脆弱群体",
        Kind::Facilities => "设施",
    }
}
