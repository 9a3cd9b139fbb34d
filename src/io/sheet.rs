//! Reading a CSV or XLSX file into rows of strings, and writing rows out as CSV (with a BOM, so
//! Excel opens UTF-8 Chinese correctly) or XLSX. Every written cell is neutralised against
//! formula injection.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

use super::{neutralize_cell, Format, ImportError};

/// A sheet: its header row and its data rows, each with the row number the spreadsheet shows
/// (header = row 1). Blank rows are dropped; their numbers are kept by the rows after them.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub headers: Vec<String>,
    pub header_row: usize,
    pub rows: Vec<(usize, Vec<String>)>,
}

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Read a file for import: cells an export neutralised read back as they were.
pub fn read(bytes: &[u8], format: Format) -> Result<Sheet, ImportError> {
    read_with(bytes, format, true)
}

/// Read a file exactly as its cells are (what a spreadsheet program would show).
pub fn read_raw(bytes: &[u8], format: Format) -> Result<Sheet, ImportError> {
    read_with(bytes, format, false)
}

fn read_with(bytes: &[u8], format: Format, restore: bool) -> Result<Sheet, ImportError> {
    let mut all = match format {
        Format::Csv => read_csv(bytes)?,
        Format::Xlsx => read_xlsx(bytes)?,
    };
    all.retain(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()));
    for (_, cells) in all.iter_mut().filter(|_| restore) {
        for c in cells.iter_mut() {
            if let Some(rest) = unneutralized(c) {
                *c = rest;
            }
        }
    }
    let mut it = all.into_iter();
    let (header_row, headers) = it
        .next()
        .ok_or_else(|| ImportError::File("the file is empty".into()))?;
    Ok(Sheet {
        headers: headers.into_iter().map(|h| h.trim().to_owned()).collect(),
        header_row,
        rows: it.collect(),
    })
}

/// A cell that an export neutralised (`'` before `= + - @`, tab or CR) reads back as it was, so
/// an exported phone `+86…` imports again.
fn unneutralized(c: &str) -> Option<String> {
    let rest = c.strip_prefix('\'')?;
    matches!(
        rest.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
    .then(|| rest.to_owned())
}

fn read_csv(bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, ImportError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    // Row numbers as a spreadsheet shows them (blank lines, which the reader skips, still
    // count; a quoted cell spanning lines is one row): the line where the record ends, less
    // the line breaks inside its cells.
    let (mut line, mut seen) = (1usize, 0usize);
    let mut rec = csv::StringRecord::new();
    loop {
        match r.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(ImportError::File(format!("CSV after row {line}: {e}"))),
        }
        let mut end = usize::try_from(r.position().byte())
            .unwrap_or(seen)
            .min(bytes.len());
        while end > seen && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        line += bytes[seen..end].iter().filter(|b| **b == b'\n').count();
        seen = end;
        let inside: usize = rec.iter().map(|f| f.matches('\n').count()).sum();
        out.push((
            line - inside.min(line - 1),
            rec.iter().map(str::to_owned).collect(),
        ));
    }
    Ok(out)
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, ImportError> {
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e| ImportError::File(format!("not a readable XLSX file: {e}")))?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| ImportError::File("the workbook has no sheet".into()))?
        .map_err(|e| ImportError::File(format!("first sheet: {e}")))?;
    let (row0, col0) = range.start().unwrap_or((0, 0));
    let lead = usize::try_from(col0).unwrap_or(0);
    let first = usize::try_from(row0).unwrap_or(0);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            let mut v: Vec<String> = vec![String::new(); lead];
            v.extend(cells.iter().map(cell_text));
            (first + i + 1, v)
        })
        .collect())
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{f:.0}")
            } else {
                f.to_string()
            }
        }
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => {
            let days = dt.as_f64().floor();
            NaiveDate::from_ymd_opt(1899, 12, 30)
                .and_then(|base| {
                    // Excel's serial days; whole days only (dates of birth)
                    #[allow(clippy::cast_possible_truncation)]
                    let d = days as i64;
                    base.checked_add_signed(chrono::Duration::days(d))
                })
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| dt.as_f64().to_string())
        }
        Data::DateTimeIso(s) => s.chars().take(10).collect(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// CSV with a BOM; every cell neutralised.
pub fn write_csv(headers: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(headers).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(r.iter().map(|c| neutralize_cell(c)))
            .map_err(|e| e.to_string())?;
    }
    let mut body = BOM.to_vec();
    body.extend(w.into_inner().map_err(|e| e.into_error().to_string())?);
    Ok(body)
}

/// XLSX with one sheet, every cell a string (so ID numbers keep their digits) and neutralised.
pub fn write_xlsx(
    sheet_name: &str,
    headers: &[&str],
    rows: &[Vec<String>],
) -> Result<Vec<u8>, String> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name).map_err(|e| e.to_string())?;
    let bold = XFormat::new().set_bold();
    for (c, h) in headers.iter().enumerate() {
        let c = u16::try_from(c).map_err(|e| e.to_string())?;
        ws.write_string_with_format(0, c, *h, &bold)
            .map_err(|e| e.to_string())?;
        ws.set_column_width(c, 16).map_err(|e| e.to_string())?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(|e| e.to_string())?;
        for (c, v) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|e| e.to_string())?;
            if !v.is_empty() {
                ws.write_string(r, c, neutralize_cell(v))
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    wb.save_to_buffer().map_err(|e| e.to_string())
}
