//! The working-day calendar as data (owner: calendar & risks).
//!
//! The shipped years are `anxin_domain::calendar::SHIPPED` (the State Council's notices, in the
//! code). `calendar_days` holds what administrators changed: a row overrides the shipped entry of
//! its date or adds one (`holiday`, `workday`), or withdraws a shipped one (`normal`: the weekday
//! rule applies). An administrator with `ManageConfig` lists the calendar by year (the shipped
//! days with the rows applied) and adds, changes or removes days, e.g. when the State Council
//! publishes the next year's notice. Every change goes through [`Tx`] and so is in the change log;
//! nothing is seeded, so a fresh database holds no unlogged rows and stays empty for a restore.
//!
//! [`load`] gives the [`WorkCalendar`] deadlines are computed with: what is in force now, so an
//! edit moves the deadlines computed after it (a running deadline is kept in its record).
//!
//! Validation: a holiday on a Saturday or Sunday is refused (`calendar.holiday_on_weekend`), a
//! working day on a weekday too (`calendar.workday_on_weekday`), both naming `date`.

use std::collections::BTreeMap;

use anxin_domain::calendar::{check_special, shipped_days, DayKind, SpecialDay, WorkCalendar};
use anxin_domain::roles::Permission;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::params;
use crate::scope::Caller;
use crate::tx::Tx;
use crate::Conn;

/// The longest name of a day (元旦, 国庆节、中秋节 …).
const NAME_MAX: usize = 40;
/// Years an administrator may edit.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// The calendar deadlines are computed with: the shipped years with administrators' changes.
pub fn load(conn: &mut dyn Conn) -> Result<WorkCalendar> {
    Ok(WorkCalendar::new(
        effective(conn, None)?.into_values().map(|(d, _)| d),
    ))
}

/// A stored change: its id, kind (holiday, workday, normal) and name.
struct Stored {
    id: Uuid,
    kind: String,
    name: String,
    created_by: Option<Uuid>,
    updated_at: DateTime<Utc>,
}

fn stored(conn: &mut dyn Conn, year: Option<i32>) -> Result<BTreeMap<NaiveDate, Stored>> {
    let rows = match year {
        Some(y) => {
            let from = NaiveDate::from_ymd_opt(y, 1, 1).ok_or(StoreError::NotFound)?;
            let to = NaiveDate::from_ymd_opt(y + 1, 1, 1).ok_or(StoreError::NotFound)?;
            conn.query(
                "SELECT * FROM calendar_days WHERE day >= $1 AND day < $2",
                &params![from, to],
            )?
        }
        None => conn.query("SELECT * FROM calendar_days", &[])?,
    };
    rows.iter()
        .map(|r| {
            Ok((
                r.get("day")?,
                Stored {
                    id: r.get("id")?,
                    kind: r.get("kind")?,
                    name: r.get("name")?,
                    created_by: r.get("created_by")?,
                    updated_at: r.get("updated_at")?,
                },
            ))
        })
        .collect()
}

/// The exceptions in force (of `year`, or all), each with the stored change behind it if any.
fn effective(
    conn: &mut dyn Conn,
    year: Option<i32>,
) -> Result<BTreeMap<NaiveDate, (SpecialDay, Option<Stored>)>> {
    let mut out: BTreeMap<NaiveDate, (SpecialDay, Option<Stored>)> = shipped_days()
        .into_iter()
        .filter(|d| year.is_none_or(|y| d.date.year() == y))
        .map(|d| (d.date, (d, None)))
        .collect();
    for (date, s) in stored(conn, year)? {
        match s.kind.parse::<DayKind>() {
            Ok(kind) => {
                let day = SpecialDay {
                    date,
                    kind,
                    name: s.name.clone(),
                };
                out.insert(date, (day, Some(s)));
            }
            // normal: the shipped exception is withdrawn.
            Err(_) => {
                out.remove(&date);
            }
        }
    }
    Ok(out)
}

/// One exception to the weekday rule.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct CalendarDay {
    /// The administrator's change behind it (none: as shipped).
    pub id: Option<Uuid>,
    /// The date (Asia/Shanghai), `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// holiday (a day off on a weekday) or workday (a working weekend day, 调休).
    pub kind: String,
    /// The holiday it belongs to (元旦, 春节, 国庆节 …).
    pub name: String,
    /// As shipped with the platform (the State Council's notice), unchanged.
    pub shipped: bool,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    /// Who changed it (none: as shipped).
    pub created_by: Option<Uuid>,
    /// When it was changed (none: as shipped).
    pub updated_at: Option<DateTime<Utc>>,
}

impl CalendarDay {
    fn of(day: &SpecialDay, s: Option<&Stored>) -> Self {
        Self {
            id: s.map(|s| s.id),
            date: day.date,
            kind: day.kind.as_str().to_owned(),
            name: day.name.clone(),
            shipped: s.is_none(),
            weekday: day.date.weekday().number_from_monday(),
            created_by: s.and_then(|s| s.created_by),
            updated_at: s.map(|s| s.updated_at),
        }
    }
}

/// A day to add, or what to change of one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DayInput {
    /// `YYYY-MM-DD` (in a PUT the path names it; a date here must be the same).
    pub date: Option<String>,
    /// holiday or workday.
    pub kind: Option<String>,
    /// The holiday it belongs to (春节 …).
    pub name: Option<String>,
}

/// The year filter of the list.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct YearQuery {
    /// The year (default: this year in Asia/Shanghai).
    pub year: Option<i32>,
}

fn allowed(caller: &Caller) -> Result<()> {
    if caller.has(Permission::ManageConfig) {
        Ok(())
    } else {
        Err(StoreError::Forbidden("calendar.not_allowed"))
    }
}

/// A date as the API takes it.
pub fn parse_date(raw: Option<&str>) -> Result<NaiveDate> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(StoreError::invalid("value.required", "date"));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::invalid("value.invalid", "date"))?;
    if !YEARS.contains(&d.year()) {
        return Err(StoreError::invalid("calendar.year_out_of_range", "date"));
    }
    Ok(d)
}

fn check_year(year: i32) -> Result<()> {
    if YEARS.contains(&year) {
        Ok(())
    } else {
        Err(StoreError::invalid("calendar.year_out_of_range", "year"))
    }
}

fn parse_kind(raw: Option<&str>) -> Result<DayKind> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(StoreError::invalid("value.required", "kind"));
    }
    s.parse()
        .map_err(|_| StoreError::invalid("value.invalid", "kind"))
}

fn parse_name(raw: Option<&str>) -> Result<String> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(StoreError::invalid("value.required", "name"));
    }
    if s.chars().count() > NAME_MAX {
        return Err(StoreError::invalid("value.too_long", "name"));
    }
    if s.chars().any(char::is_control) {
        return Err(StoreError::invalid("value.invalid", "name"));
    }
    Ok(s.to_owned())
}

fn check(date: NaiveDate, kind: DayKind) -> Result<()> {
    check_special(date, kind).map_err(|code| StoreError::invalid(code, "date"))
}

/// The exception in force on `date` and the stored change of that date (which may be a
/// withdrawal), if any.
fn at(conn: &mut dyn Conn, date: NaiveDate) -> Result<(Option<CalendarDay>, Option<Uuid>)> {
    let row_id: Option<Uuid> = conn
        .query_one(
            "SELECT id FROM calendar_days WHERE day = $1",
            &params![date],
        )?
        .map(|r| r.get("id"))
        .transpose()?;
    let day = effective(conn, Some(date.year()))?
        .remove(&date)
        .map(|(d, s)| CalendarDay::of(&d, s.as_ref()));
    Ok((day, row_id))
}

fn is_shipped(date: NaiveDate) -> bool {
    shipped_days().iter().any(|d| d.date == date)
}

/// The exceptions of `year` in force, in date order.
pub fn list(conn: &mut dyn Conn, caller: &Caller, year: i32) -> Result<Vec<CalendarDay>> {
    allowed(caller)?;
    check_year(year)?;
    Ok(effective(conn, Some(year))?
        .values()
        .map(|(d, s)| CalendarDay::of(d, s.as_ref()))
        .collect())
}

/// The exception on `date`.
pub fn get(conn: &mut dyn Conn, caller: &Caller, date: NaiveDate) -> Result<CalendarDay> {
    allowed(caller)?;
    at(conn, date)?.0.ok_or(StoreError::NotFound)
}

/// Write the change of `date` (insert, or update the row there).
fn write(
    tx: &mut Tx,
    caller: &Caller,
    row: Option<Uuid>,
    date: NaiveDate,
    kind: &str,
    name: &str,
) -> Result<()> {
    let now = tx.now();
    match row {
        Some(id) => {
            tx.update(
                "calendar_days",
                id,
                &[
                    ("kind", kind.into()),
                    ("name", name.into()),
                    ("created_by", caller.user_id.into()),
                    ("updated_at", now.into()),
                ],
            )?;
        }
        None => {
            let id = tx.new_id();
            tx.insert(
                "calendar_days",
                &[
                    ("id", id.into()),
                    ("day", date.into()),
                    ("kind", kind.into()),
                    ("name", name.into()),
                    ("created_by", caller.user_id.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )?;
        }
    }
    Ok(())
}

/// Add an exception; `calendar.day_exists` when the date has one in force.
pub fn add(tx: &mut Tx, caller: &Caller, input: &DayInput) -> Result<CalendarDay> {
    allowed(caller)?;
    let date = parse_date(input.date.as_deref())?;
    let kind = parse_kind(input.kind.as_deref())?;
    let name = parse_name(input.name.as_deref())?;
    check(date, kind)?;
    let (day, row) = at(tx.conn(), date)?;
    if day.is_some() {
        return Err(StoreError::Conflict {
            code: "calendar.day_exists",
            detail: format!("{date} is already in the calendar"),
        });
    }
    write(tx, caller, row, date, kind.as_str(), &name)?;
    at(tx.conn(), date)?.0.ok_or(StoreError::NotFound)
}

/// Set the exception on `date`: change the one in force (kind and name as given, the rest
/// kept), or add it when there is none (then kind and name are required).
pub fn set(tx: &mut Tx, caller: &Caller, date: NaiveDate, input: &DayInput) -> Result<CalendarDay> {
    allowed(caller)?;
    if !YEARS.contains(&date.year()) {
        return Err(StoreError::invalid("calendar.year_out_of_range", "date"));
    }
    if let Some(d) = input.date.as_deref() {
        if parse_date(Some(d))? != date {
            return Err(StoreError::invalid("calendar.date_fixed", "date"));
        }
    }
    let (day, row) = at(tx.conn(), date)?;
    let Some(old) = day else {
        return add(
            tx,
            caller,
            &DayInput {
                date: Some(date.to_string()),
                ..input.clone()
            },
        );
    };
    let kind = match input.kind.as_deref() {
        Some(k) => parse_kind(Some(k))?,
        None => parse_kind(Some(&old.kind))?,
    };
    let name = match input.name.as_deref() {
        Some(n) => parse_name(Some(n))?,
        None => old.name.clone(),
    };
    check(date, kind)?;
    write(tx, caller, row, date, kind.as_str(), &name)?;
    at(tx.conn(), date)?.0.ok_or(StoreError::NotFound)
}

/// Remove the exception on `date` (the weekday rule applies to it again): an added day's row
/// goes; a shipped day is withdrawn by a `normal` row.
pub fn remove(tx: &mut Tx, caller: &Caller, date: NaiveDate) -> Result<()> {
    allowed(caller)?;
    let (day, row) = at(tx.conn(), date)?;
    let day = day.ok_or(StoreError::NotFound)?;
    if is_shipped(date) {
        write(tx, caller, row, date, "normal", &day.name)
    } else {
        match row {
            Some(id) => tx.delete("calendar_days", id),
            None => Err(StoreError::NotFound),
        }
    }
}

/// The years that have exceptions in force, oldest first (for the page's year links).
pub fn years(conn: &mut dyn Conn) -> Result<Vec<i32>> {
    let mut out: Vec<i32> = effective(conn, None)?.keys().map(|d| d.year()).collect();
    out.dedup();
    Ok(out)
}
