//! Working days and deadlines.
//!
//! China's working week is Monday to Friday, except where the State Council's yearly notice on
//! public holidays says otherwise: holidays (节假日) that fall on weekdays are days off, and some
//! weekend days are working days (调休, the adjusted working weekends). A [`WorkCalendar`] holds
//! those exceptions as data (the shipped years and whatever an administrator adds); everything
//! else follows the weekday rule.
//!
//! Deadlines ([`due`]) are computed in Asia/Shanghai and stored in UTC:
//! - `N days` ([`Term::Days`]): calendar days, the day it starts not counted, ending at 24:00 of
//!   the N-th day (found Monday 10:00, 3 days → Thursday 24:00, i.e. Friday 00:00).
//! - `N working days` ([`Term::WorkingDays`]): counted from the next working day after the day it
//!   starts, ending at 24:00 of the N-th working day (found on the eve of a holiday, the count
//!   starts after it, and an adjusted working weekend counts).
//! - `N hours` ([`Term::Hours`]): clock hours from the moment it starts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::clock::SHANGHAI;
use crate::error::DomainError;

string_enum! {
    /// An exception to the weekday rule.
    pub enum DayKind: "day_kind" {
        /// A public holiday (or a day off of a holiday period) on what would be a working day.
        Holiday = "holiday", "法定节假日",
        /// A weekend day that is a working day (调休).
        Workday = "workday", "调休上班",
    }
}

/// One exception: a date, its kind and the holiday it belongs to (元旦, 春节, 国庆节 …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    pub name: String,
}

/// The weekday rule plus its exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    special: BTreeMap<NaiveDate, (DayKind, String)>,
}

impl WorkCalendar {
    pub fn new(days: impl IntoIterator<Item = SpecialDay>) -> Self {
        Self {
            special: days
                .into_iter()
                .map(|d| (d.date, (d.kind, d.name)))
                .collect(),
        }
    }

    /// Is `date` a working day?
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.special.get(&date) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The exception on `date`, if any.
    pub fn special(&self, date: NaiveDate) -> Option<(DayKind, &str)> {
        self.special.get(&date).map(|(k, n)| (*k, n.as_str()))
    }

    /// Every exception, in date order.
    pub fn days(&self) -> impl Iterator<Item = SpecialDay> + '_ {
        self.special.iter().map(|(d, (k, n))| SpecialDay {
            date: *d,
            kind: *k,
            name: n.clone(),
        })
    }

    /// The first working day after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        loop {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                return d;
            }
        }
    }
}

/// A period a rule gives to do something: `3 days`, `7 working days`, `24 hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Term {
    Days(u32),
    WorkingDays(u32),
    Hours(u32),
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Days(n) => write!(f, "{n} days"),
            Term::WorkingDays(n) => write!(f, "{n} working days"),
            Term::Hours(n) => write!(f, "{n} hours"),
        }
    }
}

impl FromStr for Term {
    type Err = DomainError;

    /// `3 days`, `7 working days`, `24 hours` (singular forms and 天 / 个工作日 / 小时 too).
    fn from_str(s: &str) -> Result<Self, DomainError> {
        // Not “N days”, “N working days” or “N hours”.
        let bad = || DomainError::ValueInvalid { field: "term" };
        let s = s.trim();
        let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if n == 0 || n > 3650 {
            return Err(bad());
        }
        match s[digits.len()..].trim() {
            "day" | "days" | "天" | "日" => Ok(Term::Days(n)),
            "working day" | "working days" | "个工作日" | "工作日" => {
                Ok(Term::WorkingDays(n))
            }
            "hour" | "hours" | "小时" | "个小时" => Ok(Term::Hours(n)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Term {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// 24:00 of `date` in Asia/Shanghai (= 00:00 of the next day), in UTC.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    let next = date + Days::new(1);
    SHANGHAI
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// When something started at `start` with `term` to do it is due (see the module's rules).
pub fn due(start: DateTime<Utc>, term: Term, cal: &WorkCalendar) -> DateTime<Utc> {
    let day = start.with_timezone(&SHANGHAI).date_naive();
    match term {
        Term::Hours(n) => start + chrono::Duration::hours(i64::from(n)),
        Term::Days(n) => end_of_day(day + Days::new(u64::from(n))),
        Term::WorkingDays(n) => {
            let mut d = day;
            for _ in 0..n {
                d = cal.next_working_day(d);
            }
            end_of_day(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        SHANGHAI
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn terms_parse_and_print() {
        for (s, t) in [
            ("3 days", Term::Days(3)),
            ("7 working days", Term::WorkingDays(7)),
            ("24 hours", Term::Hours(24)),
            ("1 day", Term::Days(1)),
            ("7个工作日", Term::WorkingDays(7)),
        ] {
            assert_eq!(s.parse::<Term>().unwrap(), t, "{s}");
        }
        assert_eq!(Term::WorkingDays(7).to_string(), "7 working days");
        for bad in ["", "days", "0 days", "3 weeks", "-1 hours"] {
            assert!(bad.parse::<Term>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_weeks_without_exceptions() {
        let cal = WorkCalendar::default();
        // Monday 2026-11-23 10:00: 3 days → Thursday 24:00.
        assert_eq!(
            due(at(2026, 11, 23, 10), Term::Days(3), &cal),
            at(2026, 11, 27, 0)
        );
        // Friday: 1 working day → Monday 24:00.
        assert_eq!(
            due(at(2026, 11, 27, 23), Term::WorkingDays(1), &cal),
            at(2026, 12, 1, 0)
        );
        assert_eq!(
            due(at(2026, 11, 27, 23), Term::Hours(24), &cal),
            at(2026, 11, 28, 23)
        );
    }
}
