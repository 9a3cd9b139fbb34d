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
//!
//! The shipped years ([`SHIPPED`], [`WorkCalendar::shipped`]) are copied from the State
//! Council's notices (国务院办公厅关于部分节假日安排的通知):
//! - 2025: 国办发明电〔2024〕12号 (12 November 2024), which also raised the public holidays from
//!   11 to 13 days (除夕 and 5月2日 added);
//! - 2026: 国办发明电〔2025〕7号 (4 November 2025).
//!
//! Only the exceptions to the weekday rule are data: a holiday day off that falls on a weekend
//! (清明 2025-04-05, …) is a day off anyway and is not listed, and an adjusted working day is
//! always a Saturday or Sunday. The store keeps the same days as data an administrator updates
//! (`anxin_store::hazards::calendar`), seeded from this list, and a test compares it day by day
//! with an independent published calendar (the `chinesecalendar` package).

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

/// The years [`SHIPPED`] covers.
pub const SHIPPED_YEARS: [i32; 2] = [2025, 2026];

/// (date, kind, holiday) of the shipped years: every weekday day off and every working weekend
/// day of the State Council's notices (see the module doc for the notices).
pub const SHIPPED: &[(&str, DayKind, &str)] = &[
    // 2025, 国办发明电〔2024〕12号.
    // 一、元旦：1月1日（周三）放假1天，不调休。
    ("2025-01-01", DayKind::Holiday, "元旦"),
    // 二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。
    //     1月26日（周日）、2月8日（周六）上班。
    ("2025-01-26", DayKind::Workday, "春节"),
    ("2025-01-28", DayKind::Holiday, "春节"),
    ("2025-01-29", DayKind::Holiday, "春节"),
    ("2025-01-30", DayKind::Holiday, "春节"),
    ("2025-01-31", DayKind::Holiday, "春节"),
    ("2025-02-03", DayKind::Holiday, "春节"),
    ("2025-02-04", DayKind::Holiday, "春节"),
    ("2025-02-08", DayKind::Workday, "春节"),
    // 三、清明节：4月4日（周五）至6日（周日）放假，共3天。
    ("2025-04-04", DayKind::Holiday, "清明节"),
    // 四、劳动节：5月1日（周四）至5日（周一）放假调休，共5天。4月27日（周日）上班。
    ("2025-04-27", DayKind::Workday, "劳动节"),
    ("2025-05-01", DayKind::Holiday, "劳动节"),
    ("2025-05-02", DayKind::Holiday, "劳动节"),
    ("2025-05-05", DayKind::Holiday, "劳动节"),
    // 五、端午节：5月31日（周六）至6月2日（周一）放假，共3天。
    ("2025-06-02", DayKind::Holiday, "端午节"),
    // 六、国庆节、中秋节：10月1日（周三）至8日（周三）放假调休，共8天。
    //     9月28日（周日）、10月11日（周六）上班。
    ("2025-09-28", DayKind::Workday, "国庆节、中秋节"),
    ("2025-10-01", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-02", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-03", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-06", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-07", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-08", DayKind::Holiday, "国庆节、中秋节"),
    ("2025-10-11", DayKind::Workday, "国庆节、中秋节"),
    // 2026, 国办发明电〔2025〕7号.
    // 一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
    ("2026-01-01", DayKind::Holiday, "元旦"),
    ("2026-01-02", DayKind::Holiday, "元旦"),
    ("2026-01-04", DayKind::Workday, "元旦"),
    // 二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。
    //     2月14日（周六）、2月28日（周六）上班。
    ("2026-02-14", DayKind::Workday, "春节"),
    ("2026-02-16", DayKind::Holiday, "春节"),
    ("2026-02-17", DayKind::Holiday, "春节"),
    ("2026-02-18", DayKind::Holiday, "春节"),
    ("2026-02-19", DayKind::Holiday, "春节"),
    ("2026-02-20", DayKind::Holiday, "春节"),
    ("2026-02-23", DayKind::Holiday, "春节"),
    ("2026-02-28", DayKind::Workday, "春节"),
    // 三、清明节：4月4日（周六）至6日（周一）放假，共3天。
    ("2026-04-06", DayKind::Holiday, "清明节"),
    // 四、劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。
    ("2026-05-01", DayKind::Holiday, "劳动节"),
    ("2026-05-04", DayKind::Holiday, "劳动节"),
    ("2026-05-05", DayKind::Holiday, "劳动节"),
    ("2026-05-09", DayKind::Workday, "劳动节"),
    // 五、端午节：6月19日（周五）至21日（周日）放假，共3天。
    ("2026-06-19", DayKind::Holiday, "端午节"),
    // 六、中秋节：9月25日（周五）至27日（周日）放假，共3天。
    ("2026-09-25", DayKind::Holiday, "中秋节"),
    // 七、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。
    //     9月20日（周日）、10月10日（周六）上班。
    ("2026-09-20", DayKind::Workday, "国庆节"),
    ("2026-10-01", DayKind::Holiday, "国庆节"),
    ("2026-10-02", DayKind::Holiday, "国庆节"),
    ("2026-10-05", DayKind::Holiday, "国庆节"),
    ("2026-10-06", DayKind::Holiday, "国庆节"),
    ("2026-10-07", DayKind::Holiday, "国庆节"),
    ("2026-10-10", DayKind::Workday, "国庆节"),
];

/// The shipped exceptions as [`SpecialDay`]s, in date order.
pub fn shipped_days() -> Vec<SpecialDay> {
    let mut days: Vec<SpecialDay> = SHIPPED
        .iter()
        .filter_map(|(d, kind, name)| {
            Some(SpecialDay {
                date: NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?,
                kind: *kind,
                name: (*name).to_owned(),
            })
        })
        .collect();
    days.sort_by_key(|d| d.date);
    days
}

/// Is `date` a Saturday or a Sunday?
pub fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Why an exception cannot be, as an error code about its `date`: a holiday on a weekend is a
/// day off anyway (`calendar.holiday_on_weekend`), a working day on a weekday is one anyway
/// (`calendar.workday_on_weekday`).
pub fn check_special(date: NaiveDate, kind: DayKind) -> Result<(), &'static str> {
    match (kind, is_weekend(date)) {
        (DayKind::Holiday, true) => Err("calendar.holiday_on_weekend"),
        (DayKind::Workday, false) => Err("calendar.workday_on_weekday"),
        _ => Ok(()),
    }
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

    /// The shipped years ([`SHIPPED`]).
    pub fn shipped() -> Self {
        Self::new(shipped_days())
    }

    /// Is `date` a working day?
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.special.get(&date) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !is_weekend(date),
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

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn shipped_days_are_exceptions_of_the_weekday_rule() {
        let days = shipped_days();
        assert_eq!(days.len(), SHIPPED.len(), "every shipped date parses");
        for d in &days {
            assert_eq!(check_special(d.date, d.kind), Ok(()), "{}", d.date);
            assert!(SHIPPED_YEARS.contains(&d.date.year()), "{}", d.date);
        }
        let dates: std::collections::BTreeSet<NaiveDate> = days.iter().map(|d| d.date).collect();
        assert_eq!(dates.len(), days.len(), "each date once");
        // Days off per year on weekdays and the working weekends (count them in the notices).
        let count = |y: i32, k: DayKind| {
            days.iter()
                .filter(|d| d.date.year() == y && d.kind == k)
                .count()
        };
        assert_eq!(
            (count(2025, DayKind::Holiday), count(2025, DayKind::Workday)),
            (18, 5)
        );
        assert_eq!(
            (count(2026, DayKind::Holiday), count(2026, DayKind::Workday)),
            (19, 6)
        );
        // Working days in the year: 365 days − 104 weekend days − 13 public holidays = 248, both
        // years (the 调休 swaps move days, they do not add any).
        let cal = WorkCalendar::shipped();
        for y in SHIPPED_YEARS {
            let n = date(y, 1, 1)
                .iter_days()
                .take_while(|d| d.year() == y)
                .filter(|d| cal.is_working_day(*d))
                .count();
            assert_eq!(n, 248, "{y}");
        }
    }

    #[test]
    fn validation_of_an_exception() {
        // 2026-10-03 is a Saturday, 2026-10-08 a Thursday.
        assert_eq!(
            check_special(date(2026, 10, 3), DayKind::Holiday),
            Err("calendar.holiday_on_weekend")
        );
        assert_eq!(
            check_special(date(2026, 10, 8), DayKind::Workday),
            Err("calendar.workday_on_weekday")
        );
        assert_eq!(check_special(date(2026, 10, 8), DayKind::Holiday), Ok(()));
        assert_eq!(check_special(date(2026, 10, 10), DayKind::Workday), Ok(()));
    }

    /// A major hazard found on the eve of the National Day holiday: 7 working days start after
    /// the holiday, and the adjusted working Saturday counts.
    #[test]
    fn major_hazard_on_the_eve_of_national_day() {
        let cal = WorkCalendar::shipped();
        // 2026: found Wednesday 30 September 10:00. Off 1–7 October; Thu 8 (1), Fri 9 (2),
        // Sat 10 (3, 调休), Sun 11 off, Mon 12 (4), Tue 13 (5), Wed 14 (6), Thu 15 (7).
        let found = at(2026, 9, 30, 10);
        assert_eq!(due(found, Term::WorkingDays(7), &cal), at(2026, 10, 16, 0));
        // The plan must start within 24 clock hours, holiday or not.
        assert_eq!(due(found, Term::Hours(24), &cal), at(2026, 10, 1, 10));
        // A minor one: 3 calendar days, holiday or not.
        assert_eq!(due(found, Term::Days(3), &cal), at(2026, 10, 4, 0));
        // Without the calendar it would have been Friday 9 October.
        assert_eq!(
            due(found, Term::WorkingDays(7), &WorkCalendar::default()),
            at(2026, 10, 10, 0)
        );
        // 2025: found Tuesday 30 September 23:30. Off 1–8 October; Thu 9 (1), Fri 10 (2),
        // Sat 11 (3, 调休), Mon 13 (4) … Thu 16 (7).
        assert_eq!(
            due(at(2025, 9, 30, 23), Term::WorkingDays(7), &cal),
            at(2025, 10, 17, 0)
        );
        // Found on the Saturday before, 19 September 2026: Sunday 20 is a working day (调休).
        assert_eq!(
            due(at(2026, 9, 19, 9), Term::WorkingDays(1), &cal),
            at(2026, 9, 21, 0)
        );
    }

    #[test]
    fn spring_festival() {
        let cal = WorkCalendar::shipped();
        // 2026: found Friday 13 February. Sat 14 (1, 调休), off 15–23, Tue 24 (2) … Fri 27 (5),
        // Sat 28 (6, 调休), Mon 2 March (7).
        assert_eq!(
            due(at(2026, 2, 13, 16), Term::WorkingDays(7), &cal),
            at(2026, 3, 3, 0)
        );
        // 2025: found on New Year's Eve's eve, Monday 27 January. Off 28 January – 4 February;
        // Wed 5 (1) … Fri 7 (3), Sat 8 (4, 调休), Mon 10 (5).
        assert_eq!(
            due(at(2025, 1, 27, 8), Term::WorkingDays(5), &cal),
            at(2025, 2, 11, 0)
        );
    }

    fn working_days_between(cal: &WorkCalendar, from: NaiveDate, to: NaiveDate) -> u32 {
        // Working days after `from` up to and including `to`.
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| cal.is_working_day(*d))
            .count() as u32
    }

    use proptest::prelude::*;

    /// Any instant in the shipped years.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let from = at(2025, 1, 1, 0).timestamp();
        let to = at(2026, 12, 31, 0).timestamp();
        (from..to).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    fn term() -> impl Strategy<Value = Term> {
        prop_oneof![
            (1u32..40).prop_map(Term::Days),
            (1u32..40).prop_map(Term::WorkingDays),
            (1u32..500).prop_map(Term::Hours),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn due_is_after_start(start in instant(), term in term()) {
            let cal = WorkCalendar::shipped();
            prop_assert!(due(start, term, &cal) > start);
        }

        #[test]
        fn working_days_end_at_midnight_of_a_working_day(start in instant(), n in 1u32..40) {
            let cal = WorkCalendar::shipped();
            let d = due(start, Term::WorkingDays(n), &cal);
            let local = d.with_timezone(&SHANGHAI);
            // 24:00 of the last day = 00:00 of the next.
            prop_assert_eq!(local.time(), chrono::NaiveTime::MIN);
            let last = local.date_naive() - Days::new(1);
            prop_assert!(cal.is_working_day(last), "{} is not a working day", last);
            let first = start.with_timezone(&SHANGHAI).date_naive();
            prop_assert_eq!(working_days_between(&cal, first, last), n);
        }

        #[test]
        fn days_end_at_midnight_n_days_on(start in instant(), n in 1u32..40) {
            let cal = WorkCalendar::shipped();
            let d = due(start, Term::Days(n), &cal).with_timezone(&SHANGHAI);
            prop_assert_eq!(d.time(), chrono::NaiveTime::MIN);
            let first = start.with_timezone(&SHANGHAI).date_naive();
            prop_assert_eq!((d.date_naive() - first).num_days(), i64::from(n) + 1);
        }

        #[test]
        fn hours_ignore_holidays(start in instant(), n in 1u32..500) {
            let d = due(start, Term::Hours(n), &WorkCalendar::shipped());
            prop_assert_eq!(d, due(start, Term::Hours(n), &WorkCalendar::default()));
            prop_assert_eq!(d - start, chrono::Duration::hours(i64::from(n)));
        }

        #[test]
        fn monotone_in_start_and_in_n(
            a in instant(),
            later in 0i64..(20 * 86_400),
            term in term(),
        ) {
            let cal = WorkCalendar::shipped();
            let b = a + chrono::Duration::seconds(later);
            prop_assert!(due(a, term, &cal) <= due(b, term, &cal));
            let more = match term {
                Term::Days(n) => Term::Days(n + 1),
                Term::WorkingDays(n) => Term::WorkingDays(n + 1),
                Term::Hours(n) => Term::Hours(n + 1),
            };
            prop_assert!(due(a, term, &cal) < due(a, more, &cal));
        }

        #[test]
        fn the_calendar_moves_a_deadline_by_at_most_a_holiday_period(
            start in instant(),
            n in 1u32..40,
        ) {
            // Against the plain weekday rule, the shipped calendar moves a working-day deadline
            // of up to 40 days between 3 days earlier (adjusted working weekends counted) and 10
            // days later (the Spring Festival's weekdays off and the weekends around them): the
            // extremes over every start day of 2025–2026.
            let with = due(start, Term::WorkingDays(n), &WorkCalendar::shipped());
            let without = due(start, Term::WorkingDays(n), &WorkCalendar::default());
            let days = (with - without).num_days();
            prop_assert!((-3..=10).contains(&days), "moved by {} days", days);
        }
    }
}
