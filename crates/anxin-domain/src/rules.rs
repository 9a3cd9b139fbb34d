//! Monitoring rules: what a device's readings must do to raise, and to clear, an alarm.
//!
//! A device profile ([`ProfileSpec`], stored as JSON) holds rules. Each rule has a `raise`
//! [`Condition`], an optional `clear` condition and an optional local [`Schedule`]. The spec is
//! validated and compiled once ([`ProfileSpec::compile`]) into a [`Profile`], which evaluates a
//! device's readings against that device's [`DeviceState`] and reports [`Event`]s.
//!
//! # Semantics
//!
//! Conditions are evaluated **on every reading** (at the reading's time `at`) and **on every tick**
//! (time passes with no reading, at `now`). On a reading:
//!
//! * `Threshold { metric, op, value }`: the reading's `metric` is strictly above / strictly below
//!   `value`. A reading *without* the metric — or with a NaN/infinite value for it, which is
//!   ignored as if absent — makes the condition false.
//! * `Sustained { cond, seconds }`: `cond` has been true on every reading since the first reading
//!   of the current run of true readings at time `s`, and `at - s >= seconds` (so true exactly at
//!   the duration). A reading where `cond` is false ends the run.
//! * `Repeated { cond, count, window_seconds }`: among the readings at times `t` with
//!   `at - window_seconds <= t <= at` (inclusive window), at least `count` had `cond` true. The
//!   current reading need not be one of them, so the condition stays true until the window slides
//!   past the `count`-th most recent hit.
//! * `Rate { metric, op, per_minute }`: `(v - v_prev) / (t - t_prev)` in units per minute,
//!   between this reading of `metric` and the previous reading *that had the metric* (finite),
//!   strictly above / below `per_minute`. The first reading of a metric, a reading without it, and
//!   a reading at the same instant as the previous one (dt = 0, ignored: the baseline stays) give
//!   false.
//! * `Silent { seconds }`: false on a reading (the device just spoke).
//! * `All { all }`: every sub-condition is true on this reading. All sub-conditions are always
//!   evaluated (no short-circuit), so their state (runs, windows, rate baselines) keeps up.
//!
//! On a tick at `now` (no new input): `Threshold` and `Rate` keep their value from the last
//! reading; `Sustained` becomes true once `now - s >= seconds` while its `cond` still holds (a
//! sustained rule completes with time even if the device sends nothing more); `Repeated` counts
//! its window ending at `now` (so it may expire); `Silent { seconds }` is true when the last
//! reading of the device is at least `seconds` old (`now - last >= seconds`; a device that never
//! sent a reading is not silent — it has no state yet).
//!
//! A rule then moves as follows (on readings and on ticks):
//!
//! * **Inactive**: if `raise` is true and the time is inside the schedule (or there is none), the
//!   rule becomes active and emits [`Event::Raise`]. Outside the schedule nothing raises, but the
//!   conditions' state keeps up (a run that started before the window opens completes inside it).
//! * **Active**: the rule clears ([`Event::Clear`]) when its `clear` condition is true — or, if it
//!   has none, when `raise` is no longer true. With a `clear` condition (hysteresis) the rule stays
//!   active while `raise` is false until `clear` is true; if both are true, clear wins. Schedules
//!   never hold an alarm open: an active alarm clears outside the window too. Otherwise, on a
//!   *reading* where `raise` is true, it emits [`Event::Update`] (never a second `Raise`); ticks
//!   emit no updates.
//!
//! Readings older than the device's last evaluated reading change nothing (equal times are
//! evaluated); ticks before it change nothing. Duplicates are the caller's business (it dedups by
//! sequence number). Ticks do not move the device's "last reading" time, so readings delivered
//! late (after a broker outage) are still evaluated; events carry the reading's time, so a
//! silence raised by a tick at the caller's clock may be cleared by a late reading whose time is
//! before the raise.
//!
//! The schedule is a daily window in Asia/Shanghai: `from <= t < until`; when `from > until` the
//! window wraps midnight (22:00–06:00 = "at night"), and the weekday of a wrapping window is the
//! day it *started* (Friday 22:00–Saturday 06:00 is Friday's night).
//!
//! Event values: the value of the rule's first metric (depth-first in `raise`; for a clear, in
//! `clear` if there is one) on this reading, when the reading has it; `None` on ticks and for
//! silence rules.
//!
//! # State
//!
//! [`DeviceState`] carries everything (active rules, runs, windows of at most `count` hit times,
//! rate baselines, the last reading time) and serialises to compact JSON, so the caller can store
//! it with the readings and a restart continues exactly where it stopped. A state belongs to one
//! version of a profile (it records a fingerprint of the spec, rule names excepted); evaluated
//! against a changed profile, it keeps its active rules by rule id, restarts the conditions'
//! state, and clears (with [`Event::Clear`], value `None`) rules that are no longer in the
//! profile.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveTime, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::alarm::Severity;
use crate::error::DomainError;

/// Most rules in one profile.
pub const MAX_RULES: usize = 64;
/// Most distinct metrics referenced by one profile.
pub const MAX_METRICS: usize = 32;
/// Most conditions (all nodes, all rules) in one profile.
pub const MAX_CONDITIONS: usize = 128;
/// Deepest nesting of conditions (a plain threshold is depth 1).
pub const MAX_DEPTH: usize = 4;
/// Most sub-conditions of one `All`.
pub const MAX_ALL: usize = 16;
/// Longest duration or window: 7 days.
pub const MAX_SECONDS: u32 = 7 * 24 * 3600;
/// Largest `count` of a `Repeated` (it bounds the state kept per device).
pub const MAX_COUNT: u32 = 100;

// JSON shape stored in the database as a device profile's rules; serde: tag = "kind", snake_case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSpec {
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// `[a-z0-9_]{1,40}`, unique in the profile.
    pub id: String,
    /// Human name, zh.
    pub name: String,
    /// e.g. `"water_level_high"`, `[a-z0-9_]{1,40}`.
    pub alarm_type: String,
    pub severity: Severity,
    pub raise: Condition,
    /// None: clears when `raise` is no longer true.
    #[serde(default)]
    pub clear: Option<Condition>,
    /// Only raises inside the schedule.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    Threshold {
        metric: String,
        op: Op,
        value: f64,
    },
    /// `cond` true continuously >= seconds.
    Sustained {
        cond: Box<Condition>,
        seconds: u32,
    },
    /// True in >= count readings within window.
    Repeated {
        cond: Box<Condition>,
        count: u32,
        window_seconds: u32,
    },
    /// Change per minute between consecutive readings of metric.
    Rate {
        metric: String,
        op: Op,
        per_minute: f64,
    },
    /// No reading for >= seconds (seen on tick).
    Silent {
        seconds: u32,
    },
    /// AND.
    All {
        all: Vec<Condition>,
    },
}

/// Strictly above / strictly below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Above,
    Below,
}

impl Op {
    #[inline]
    fn test(self, x: f64, limit: f64) -> bool {
        match self {
            Op::Above => x > limit,
            Op::Below => x < limit,
        }
    }
}

/// Local (Asia/Shanghai) daily window; from > until wraps midnight (22:00–06:00 = "at night").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub from: NaiveTime,
    pub until: NaiveTime,
    /// Empty = every day.
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
}

// ---------------------------------------------------------------------------------------------
// Validation

/// A validation problem with the full path of the field, e.g. `rules[2].raise.cond.seconds`.
///
/// [`ProfileSpec::check`] returns it; [`ProfileSpec::validate`] turns it into a [`DomainError`].
/// Codes: `rules.invalid` (a value out of range or malformed), `rules.duplicate_id`,
/// `rules.silent_misplaced` (a `silent` anywhere but as a whole `raise`/`clear`),
/// `rules.too_large` (more rules, metrics, conditions or nesting than the limits above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub code: &'static str,
    pub field: String,
    /// English, for logs; never holds the rejected value.
    pub reason: &'static str,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for RuleError {}

/// Field paths as `&'static str` for [`DomainError::ValueInvalid`]. Each distinct path is leaked
/// once and reused; the table is capped, so hostile input cannot grow memory without bound (past
/// the cap the path is shortened to `rules`).
fn intern_field(path: &str) -> &'static str {
    const CAP: usize = 4096;
    static TABLE: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let mut guard = match TABLE.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let table = guard.get_or_insert_with(HashMap::new);
    if let Some(s) = table.get(path) {
        return s;
    }
    if table.len() >= CAP {
        return "rules";
    }
    let leaked: &'static str = Box::leak(path.to_owned().into_boxed_str());
    table.insert(path.to_owned(), leaked);
    leaked
}

impl From<RuleError> for DomainError {
    fn from(e: RuleError) -> Self {
        DomainError::ValueInvalid {
            field: intern_field(&e.field),
        }
    }
}

fn err(code: &'static str, field: String, reason: &'static str) -> RuleError {
    RuleError {
        code,
        field,
        reason,
    }
}

fn is_token(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_metric(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

struct Checker<'a> {
    metrics: Vec<&'a str>,
    nodes: usize,
}

impl<'a> Checker<'a> {
    fn cond(
        &mut self,
        c: &'a Condition,
        path: &str,
        depth: usize,
        top: bool,
    ) -> Result<(), RuleError> {
        if depth > MAX_DEPTH {
            return Err(err(
                "rules.too_large",
                path.to_owned(),
                "conditions nested too deeply",
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_CONDITIONS {
            return Err(err(
                "rules.too_large",
                path.to_owned(),
                "too many conditions",
            ));
        }
        let secs = |s: u32, f: &str| -> Result<(), RuleError> {
            if s == 0 || s > MAX_SECONDS {
                return Err(err(
                    "rules.invalid",
                    format!("{path}.{f}"),
                    "must be between 1 second and 7 days",
                ));
            }
            Ok(())
        };
        match c {
            Condition::Threshold { metric, value, .. } => {
                self.metric(metric, path)?;
                if !value.is_finite() {
                    return Err(err(
                        "rules.invalid",
                        format!("{path}.value"),
                        "must be a finite number",
                    ));
                }
            }
            Condition::Rate {
                metric, per_minute, ..
            } => {
                self.metric(metric, path)?;
                if !per_minute.is_finite() {
                    return Err(err(
                        "rules.invalid",
                        format!("{path}.per_minute"),
                        "must be a finite number",
                    ));
                }
            }
            Condition::Sustained { cond, seconds } => {
                secs(*seconds, "seconds")?;
                self.cond(cond, &format!("{path}.cond"), depth + 1, false)?;
            }
            Condition::Repeated {
                cond,
                count,
                window_seconds,
            } => {
                if *count == 0 || *count > MAX_COUNT {
                    return Err(err(
                        "rules.invalid",
                        format!("{path}.count"),
                        "must be between 1 and 100",
                    ));
                }
                secs(*window_seconds, "window_seconds")?;
                self.cond(cond, &format!("{path}.cond"), depth + 1, false)?;
            }
            Condition::Silent { seconds } => {
                if !top {
                    return Err(err(
                        "rules.silent_misplaced",
                        path.to_owned(),
                        "a silence condition must be a rule's whole raise or clear condition",
                    ));
                }
                secs(*seconds, "seconds")?;
            }
            Condition::All { all } => {
                if all.is_empty() {
                    return Err(err(
                        "rules.invalid",
                        format!("{path}.all"),
                        "must not be empty",
                    ));
                }
                if all.len() > MAX_ALL {
                    return Err(err(
                        "rules.too_large",
                        format!("{path}.all"),
                        "too many conditions",
                    ));
                }
                for (i, sub) in all.iter().enumerate() {
                    self.cond(sub, &format!("{path}.all[{i}]"), depth + 1, false)?;
                }
            }
        }
        Ok(())
    }

    fn metric(&mut self, metric: &'a str, path: &str) -> Result<(), RuleError> {
        if !is_metric(metric) {
            return Err(err(
                "rules.invalid",
                format!("{path}.metric"),
                "must be 1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        if !self.metrics.contains(&metric) {
            if self.metrics.len() >= MAX_METRICS {
                return Err(err(
                    "rules.too_large",
                    format!("{path}.metric"),
                    "too many distinct metrics",
                ));
            }
            self.metrics.push(metric);
        }
        Ok(())
    }
}

impl ProfileSpec {
    /// Every problem names the rule and field, e.g. `rules[2].raise.cond.seconds`; the first
    /// problem found is reported. See [`RuleError`] for the codes.
    pub fn check(&self) -> Result<(), RuleError> {
        if self.rules.len() > MAX_RULES {
            return Err(err("rules.too_large", "rules".into(), "too many rules"));
        }
        let mut ck = Checker {
            metrics: Vec::new(),
            nodes: 0,
        };
        for (i, r) in self.rules.iter().enumerate() {
            let p = format!("rules[{i}]");
            if !is_token(&r.id) {
                return Err(err(
                    "rules.invalid",
                    format!("{p}.id"),
                    "must be 1 to 40 of a-z, 0-9 and '_'",
                ));
            }
            if self.rules[..i].iter().any(|o| o.id == r.id) {
                return Err(err(
                    "rules.duplicate_id",
                    format!("{p}.id"),
                    "another rule has this id",
                ));
            }
            let name = r.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(err(
                    "rules.invalid",
                    format!("{p}.name"),
                    "must be 1 to 100 characters",
                ));
            }
            if !is_token(&r.alarm_type) {
                return Err(err(
                    "rules.invalid",
                    format!("{p}.alarm_type"),
                    "must be 1 to 40 of a-z, 0-9 and '_'",
                ));
            }
            ck.cond(&r.raise, &format!("{p}.raise"), 1, true)?;
            if let Some(c) = &r.clear {
                ck.cond(c, &format!("{p}.clear"), 1, true)?;
            }
            if let Some(s) = &r.schedule {
                if s.from == s.until {
                    return Err(err(
                        "rules.invalid",
                        format!("{p}.schedule.until"),
                        "must differ from the start",
                    ));
                }
                for (j, d) in s.weekdays.iter().enumerate() {
                    if s.weekdays[..j].contains(d) {
                        return Err(err(
                            "rules.invalid",
                            format!("{p}.schedule.weekdays[{j}]"),
                            "day listed twice",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every problem names the rule and field: [`DomainError::ValueInvalid`] whose `field` is the
    /// path (`rules[2].raise.cond.seconds`). Use [`Self::check`] for the specific code.
    pub fn validate(&self) -> Result<(), DomainError> {
        self.check().map_err(DomainError::from)
    }

    /// Validates, interns metrics.
    pub fn compile(&self) -> Result<Profile, DomainError> {
        self.validate()?;
        Ok(Profile::build(self))
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled profile

/// A condition node; children always come before their parent in `Profile::nodes`, so one pass
/// in index order evaluates everything bottom-up (the children of an `All` are listed in
/// `Profile::kids`).
#[derive(Debug, Clone)]
enum Node {
    Threshold {
        m: u8,
        op: Op,
        value: f64,
    },
    Rate {
        m: u8,
        op: Op,
        per_minute: f64,
        /// `mem[off]` = time of the previous reading of the metric, `mem[off + 1]` its value.
        off: u32,
    },
    Sustained {
        child: u16,
        ms: i64,
        /// `mem[off]` = start of the current run.
        off: u32,
    },
    Repeated {
        child: u16,
        count: u32,
        window_ms: i64,
        /// `mem[off]` = number of hits kept (≤ count), `mem[off + 1 ..= off + count]` their
        /// times, oldest first.
        off: u32,
    },
    Silent {
        ms: i64,
    },
    All {
        from: u16,
        to: u16,
    },
}

#[derive(Debug, Clone)]
struct Window {
    from_ms: i64,
    until_ms: i64,
    /// Bit `n` = weekday with `num_days_from_monday() == n`; all bits when no days are listed.
    days: u8,
}

impl Window {
    fn new(s: &Schedule) -> Self {
        let ms = |t: NaiveTime| {
            i64::from(t.num_seconds_from_midnight()) * 1000 + i64::from(t.nanosecond() / 1_000_000)
        };
        let days = if s.weekdays.is_empty() {
            0x7f
        } else {
            s.weekdays
                .iter()
                .fold(0u8, |m, d| m | (1 << d.num_days_from_monday()))
        };
        Self {
            from_ms: ms(s.from),
            until_ms: ms(s.until),
            days,
        }
    }

    /// Is the UTC instant `at_ms` (milliseconds since the epoch) inside the window?
    fn contains(&self, at_ms: i64) -> bool {
        const DAY: i64 = 86_400_000;
        // Asia/Shanghai: a fixed UTC+8 all year (see crate::SHANGHAI).
        let local = at_ms + i64::from(crate::SHANGHAI.local_minus_utc()) * 1000;
        let day = local.div_euclid(DAY);
        let t = local.rem_euclid(DAY);
        let start_day = if self.from_ms < self.until_ms {
            if t < self.from_ms || t >= self.until_ms {
                return false;
            }
            day
        } else if t >= self.from_ms {
            day
        } else if t < self.until_ms {
            day - 1
        } else {
            return false;
        };
        // 1970-01-01 was a Thursday (3 days from Monday).
        let wd = (start_day + 3).rem_euclid(7);
        self.days & (1 << wd) != 0
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    raise: u16,
    clear: Option<u16>,
    window: Option<Window>,
    raise_metric: Option<u8>,
    clear_metric: Option<u8>,
}

/// A compiled profile: cheap to evaluate; Send + Sync; shareable via Arc.
#[derive(Debug, Clone)]
pub struct Profile {
    spec: ProfileSpec,
    fingerprint: u64,
    metrics: Vec<Box<str>>,
    nodes: Vec<Node>,
    /// Children of `All` nodes: `Node::All { from, to }` owns `kids[from..to]`.
    kids: Vec<u16>,
    /// A fresh state's `mem`: the words of every sustained, rate and repeated node.
    mem: Vec<i64>,
    rules: Vec<CompiledRule>,
}

/// One reading of a device: its time and its values by metric name.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub at: DateTime<Utc>,
    pub values: &'a [(&'a str, f64)],
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Profile {
    fn build(spec: &ProfileSpec) -> Self {
        // The fingerprint covers what evaluation depends on: renaming a rule keeps its state.
        let mut unnamed = spec.clone();
        for r in &mut unnamed.rules {
            r.name.clear();
        }
        let mut p = Profile {
            spec: spec.clone(),
            // serde_json cannot fail on these plain types; an empty fingerprint would only make
            // states restart, never mix.
            fingerprint: fnv1a(&serde_json::to_vec(&unnamed).unwrap_or_default()) | 1,
            metrics: Vec::new(),
            nodes: Vec::new(),
            kids: Vec::new(),
            mem: Vec::new(),
            rules: Vec::new(),
        };
        for r in &spec.rules {
            let raise = p.add(&r.raise);
            let clear = r.clear.as_ref().map(|c| p.add(c));
            let raise_metric = p.first_metric(&r.raise);
            let clear_metric = match &r.clear {
                Some(c) => p.first_metric(c),
                None => raise_metric,
            };
            p.rules.push(CompiledRule {
                raise,
                clear,
                window: r.schedule.as_ref().map(Window::new),
                raise_metric,
                clear_metric,
            });
        }
        p
    }

    fn metric(&mut self, name: &str) -> u8 {
        let i = match self.metrics.iter().position(|m| &**m == name) {
            Some(i) => i,
            None => {
                self.metrics.push(name.into());
                self.metrics.len() - 1
            }
        };
        // Validation caps metrics at MAX_METRICS (32).
        u8::try_from(i).unwrap_or(u8::MAX)
    }

    fn first_metric(&mut self, c: &Condition) -> Option<u8> {
        match c {
            Condition::Threshold { metric, .. } | Condition::Rate { metric, .. } => {
                Some(self.metric(metric))
            }
            Condition::Sustained { cond, .. } | Condition::Repeated { cond, .. } => {
                self.first_metric(cond)
            }
            Condition::Silent { .. } => None,
            Condition::All { all } => all.iter().find_map(|c| self.first_metric(c)),
        }
    }

    fn push(&mut self, n: Node) -> u16 {
        self.nodes.push(n);
        // Validation caps conditions at MAX_CONDITIONS (128).
        u16::try_from(self.nodes.len() - 1).unwrap_or(u16::MAX)
    }

    /// Reserves `words` words of state, the first set to `first`; returns the offset.
    fn words(&mut self, first: i64, words: usize) -> u32 {
        let off = self.mem.len();
        self.mem.push(first);
        self.mem.resize(off + words, 0);
        // Validation bounds this: 128 conditions × (1 + MAX_COUNT) words.
        u32::try_from(off).unwrap_or(u32::MAX)
    }

    fn add(&mut self, c: &Condition) -> u16 {
        let ms = |s: u32| i64::from(s) * 1000;
        match c {
            Condition::Threshold { metric, op, value } => {
                let m = self.metric(metric);
                self.push(Node::Threshold {
                    m,
                    op: *op,
                    value: *value,
                })
            }
            Condition::Rate {
                metric,
                op,
                per_minute,
            } => {
                let m = self.metric(metric);
                let off = self.words(NONE, 2);
                self.push(Node::Rate {
                    m,
                    op: *op,
                    per_minute: *per_minute,
                    off,
                })
            }
            Condition::Sustained { cond, seconds } => {
                let child = self.add(cond);
                let off = self.words(NONE, 1);
                self.push(Node::Sustained {
                    child,
                    ms: ms(*seconds),
                    off,
                })
            }
            Condition::Repeated {
                cond,
                count,
                window_seconds,
            } => {
                let child = self.add(cond);
                let off = self.words(0, 1 + *count as usize);
                self.push(Node::Repeated {
                    child,
                    count: *count,
                    window_ms: ms(*window_seconds),
                    off,
                })
            }
            Condition::Silent { seconds } => self.push(Node::Silent { ms: ms(*seconds) }),
            Condition::All { all } => {
                let kids: Vec<u16> = all.iter().map(|c| self.add(c)).collect();
                let from = u16::try_from(self.kids.len()).unwrap_or(u16::MAX);
                self.kids.extend(kids);
                let to = u16::try_from(self.kids.len()).unwrap_or(u16::MAX);
                self.push(Node::All { from, to })
            }
        }
    }

    pub fn spec(&self) -> &ProfileSpec {
        &self.spec
    }

    /// A fingerprint of the spec; a [`DeviceState`] remembers the one it was built for.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Brings `st` to this profile: a fresh state, or one from another version of the profile,
    /// keeps its active rules by id; rules gone from the profile clear.
    fn sync(&self, st: &mut DeviceState, at: DateTime<Utc>, out: &mut Vec<Event>) {
        if st.fp == self.fingerprint && st.mem.len() == self.mem.len() {
            return;
        }
        st.fp = self.fingerprint;
        st.held = [0; 2];
        st.mem.clone_from(&self.mem);
        st.active = 0;
        let old = std::mem::take(&mut st.active_ids);
        for id in old {
            match self.spec.rules.iter().position(|r| r.id == id) {
                Some(i) if st.active & (1 << i) == 0 => {
                    st.active |= 1 << i;
                    st.active_ids.push(id);
                }
                Some(_) => {}
                None => out.push(Event::Clear {
                    rule_id: id,
                    at,
                    value: None,
                }),
            }
        }
    }

    /// Evaluate one reading; push events to `out` (does not clear `out`). A reading older than
    /// the last one evaluated for this device changes nothing (returns without events).
    pub fn evaluate(&self, state: &mut DeviceState, r: &Reading<'_>, out: &mut Vec<Event>) {
        let at = r.at.timestamp_millis();
        if matches!(state.last, Some(last) if at < last) {
            return;
        }
        self.sync(state, r.at, out);
        let mut vals = [f64::NAN; MAX_METRICS];
        for (j, &(name, v)) in r.values.iter().enumerate() {
            if v.is_finite() {
                // Devices usually send their metrics in one order: try the same position first.
                let i = match self.metrics.get(j) {
                    Some(m) if **m == *name => Some(j),
                    _ => self.metrics.iter().position(|m| **m == *name),
                };
                if let Some(i) = i {
                    vals[i] = v;
                }
            }
        }
        state.last = Some(at);
        self.pass(state, at, Some(&vals));
        self.transitions(state, r.at, Some(&vals), out);
    }

    /// Time passes with no reading (silence rules; sustained rules that complete with time).
    pub fn tick(&self, state: &mut DeviceState, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let t = now.timestamp_millis();
        match state.last {
            // Never spoke: nothing to be silent about and no condition state.
            None => return,
            Some(last) if t < last => return,
            Some(_) => {}
        }
        self.sync(state, now, out);
        self.pass(state, t, None);
        self.transitions(state, now, None, out);
    }

    /// Evaluates every node bottom-up at time `t`; `vals` is the reading (None on a tick).
    fn pass(&self, st: &mut DeviceState, t: i64, vals: Option<&[f64; MAX_METRICS]>) {
        let last = st.last;
        let mut held = st.held;
        let mem = &mut st.mem[..];
        let get = |h: &[u64; 2], i: u16| h[usize::from(i >> 6)] & (1 << (i & 63)) != 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let i = i as u16; // at most MAX_CONDITIONS (128)
            let v = match *node {
                Node::Threshold { m, op, value } => match vals {
                    // NaN (absent) compares false either way.
                    Some(vals) => op.test(vals[usize::from(m)], value),
                    None => get(&held, i),
                },
                Node::Rate {
                    m,
                    op,
                    per_minute,
                    off,
                } => match vals {
                    Some(vals) => {
                        let x = vals[usize::from(m)];
                        let off = off as usize;
                        let (pt, pv) = (mem[off], f64::from_bits(mem[off + 1] as u64));
                        if x.is_nan() || pt == t {
                            // Absent, or dt = 0 (ignored): the baseline stays.
                            false
                        } else {
                            mem[off] = t;
                            mem[off + 1] = x.to_bits() as i64;
                            pt != NONE && op.test((x - pv) * 60_000.0 / (t - pt) as f64, per_minute)
                        }
                    }
                    None => get(&held, i),
                },
                Node::Sustained { child, ms, off } => {
                    let since = &mut mem[off as usize];
                    if get(&held, child) {
                        if *since == NONE {
                            *since = t;
                        }
                        t - *since >= ms
                    } else {
                        *since = NONE;
                        false
                    }
                }
                Node::Repeated {
                    child,
                    count,
                    window_ms,
                    off,
                } => {
                    let (off, count) = (off as usize, count as usize);
                    let (len, hits) = mem[off..=off + count].split_at_mut(1);
                    let n = len[0] as usize;
                    if vals.is_some() && get(&held, child) {
                        if n < count {
                            hits[n] = t;
                            len[0] += 1;
                        } else {
                            hits.copy_within(1.., 0);
                            hits[count - 1] = t;
                        }
                    }
                    len[0] as usize >= count && hits[0] >= t - window_ms
                }
                Node::Silent { ms } => match (vals, last) {
                    (None, Some(last)) => t - last >= ms,
                    _ => false,
                },
                Node::All { from, to } => self.kids[usize::from(from)..usize::from(to)]
                    .iter()
                    .all(|&k| get(&held, k)),
            };
            let (w, b) = (usize::from(i >> 6), 1u64 << (i & 63));
            if v {
                held[w] |= b;
            } else {
                held[w] &= !b;
            }
        }
        st.held = held;
    }

    #[inline]
    fn held(st: &DeviceState, i: u16) -> bool {
        st.held[usize::from(i >> 6)] & (1 << (i & 63)) != 0
    }

    fn transitions(
        &self,
        st: &mut DeviceState,
        at: DateTime<Utc>,
        vals: Option<&[f64; MAX_METRICS]>,
        out: &mut Vec<Event>,
    ) {
        let t = at.timestamp_millis();
        let value = |m: Option<u8>| -> Option<f64> {
            let v = vals?[usize::from(m?)];
            (!v.is_nan()).then_some(v)
        };
        for (i, r) in self.rules.iter().enumerate() {
            let bit = 1u64 << i;
            let raise = Self::held(st, r.raise);
            if st.active & bit != 0 {
                let cleared = match r.clear {
                    Some(c) => Self::held(st, c),
                    None => !raise,
                };
                let spec = &self.spec.rules[i];
                if cleared {
                    st.active &= !bit;
                    st.active_ids.retain(|id| *id != spec.id);
                    out.push(Event::Clear {
                        rule_id: spec.id.clone(),
                        at,
                        value: value(r.clear_metric),
                    });
                } else if raise && vals.is_some() {
                    out.push(Event::Update {
                        rule_id: spec.id.clone(),
                        at,
                        value: value(r.raise_metric),
                    });
                }
            } else if raise && r.window.as_ref().is_none_or(|w| w.contains(t)) {
                let spec = &self.spec.rules[i];
                st.active |= bit;
                st.active_ids.push(spec.id.clone());
                out.push(Event::Raise {
                    rule_id: spec.id.clone(),
                    alarm_type: spec.alarm_type.clone(),
                    severity: spec.severity,
                    at,
                    value: value(r.raise_metric),
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State and events

fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero2(n: &[u64; 2]) -> bool {
    *n == [0, 0]
}

/// An empty time in the state's words.
const NONE: i64 = i64::MIN;

/// Per device (for one profile): all the rule state (active flags, since-times, counters/windows,
/// last values and times). Serialisable so it survives a restart; small (bounded windows).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Fingerprint of the profile version this state belongs to (0 = fresh).
    #[serde(default)]
    fp: u64,
    /// Time of the last evaluated reading (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<i64>,
    /// Bit i = rule i is active.
    #[serde(default, skip_serializing_if = "is_zero")]
    active: u64,
    /// Ids of the active rules (to carry them over a profile change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    active_ids: Vec<String>,
    /// Bit i = condition node i was true at the last evaluation.
    #[serde(default, rename = "h", skip_serializing_if = "is_zero2")]
    held: [u64; 2],
    /// The conditions' memory, one block of words per node that has any (see `Node`): the start
    /// of a sustained run; a rate's previous time and value (the value's IEEE bits, so it comes
    /// back from JSON bit for bit); a repeated's hit count and hit times. Times are ms since the
    /// epoch, `NONE` = empty. One allocation per device, so evaluation touches few cache lines.
    #[serde(default, rename = "m", skip_serializing_if = "Vec::is_empty")]
    mem: Vec<i64>,
}

impl DeviceState {
    /// Ids of the rules that are active (raised and not cleared), in the order they were raised.
    pub fn active_rule_ids(&self) -> &[String] {
        &self.active_ids
    }

    /// Is this rule active?
    pub fn is_active(&self, rule_id: &str) -> bool {
        self.active_ids.iter().any(|id| id == rule_id)
    }

    /// The time of the last reading evaluated (readings before it are ignored).
    pub fn last_reading_at(&self) -> Option<DateTime<Utc>> {
        self.last.and_then(DateTime::from_timestamp_millis)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A rule became active. `value`: the triggering metric value where there is one.
    Raise {
        rule_id: String,
        alarm_type: String,
        severity: Severity,
        at: DateTime<Utc>,
        value: Option<f64>,
    },
    /// A reading matched a rule that is already active (update the open alarm, do not open another).
    Update {
        rule_id: String,
        at: DateTime<Utc>,
        value: Option<f64>,
    },
    Clear {
        rule_id: String,
        at: DateTime<Utc>,
        value: Option<f64>,
    },
}

impl Event {
    pub fn rule_id(&self) -> &str {
        match self {
            Event::Raise { rule_id, .. }
            | Event::Update { rule_id, .. }
            | Event::Clear { rule_id, .. } => rule_id,
        }
    }
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Event::Raise { at, .. } | Event::Update { at, .. } | Event::Clear { at, .. } => *at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, TimeZone};
    use proptest::prelude::*;

    #[test]
    fn profile_is_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Profile>();
        shareable::<DeviceState>();
    }

    fn t0() -> DateTime<Utc> {
        // 2026-07-03 is a Friday; 12:00 UTC = 20:00 in Shanghai.
        Utc.with_ymd_and_hms(2026, 7, 3, 12, 0, 0)
            .single()
            .expect("t0")
    }
    fn at(secs: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(secs)
    }

    fn profile(json: serde_json::Value) -> Profile {
        let spec: ProfileSpec = serde_json::from_value(json).expect("spec parses");
        spec.compile().expect("spec compiles")
    }

    fn rule(id: &str, raise: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"id": id, "name": "规则", "alarm_type": id, "severity": "major", "raise": raise})
    }

    fn thr(metric: &str, op: &str, value: f64) -> serde_json::Value {
        serde_json::json!({"kind": "threshold", "metric": metric, "op": op, "value": value})
    }

    /// Feed one reading and return its events.
    fn feed(p: &Profile, st: &mut DeviceState, secs: i64, values: &[(&str, f64)]) -> Vec<Event> {
        let mut out = Vec::new();
        p.evaluate(
            st,
            &Reading {
                at: at(secs),
                values,
            },
            &mut out,
        );
        out
    }

    fn tick(p: &Profile, st: &mut DeviceState, secs: i64) -> Vec<Event> {
        let mut out = Vec::new();
        p.tick(st, at(secs), &mut out);
        out
    }

    /// Events as short strings: "raise r 5" / "update r" / "clear r".
    fn kinds(ev: &[Event]) -> Vec<String> {
        ev.iter()
            .map(|e| match e {
                Event::Raise { rule_id, .. } => format!("raise {rule_id}"),
                Event::Update { rule_id, .. } => format!("update {rule_id}"),
                Event::Clear { rule_id, .. } => format!("clear {rule_id}"),
            })
            .collect()
    }

    #[test]
    fn spec_json_shape() {
        let json = serde_json::json!({"rules": [{
            "id": "level_high", "name": "水位过高", "alarm_type": "water_level_high",
            "severity": "critical",
            "raise": {"kind": "sustained", "seconds": 60,
                      "cond": {"kind": "threshold", "metric": "level", "op": "above", "value": 3.0}},
            "clear": {"kind": "threshold", "metric": "level", "op": "below", "value": 2.5},
            "schedule": {"from": "22:00:00", "until": "06:00:00", "weekdays": ["Fri", "Sat"]}
        }]});
        let spec: ProfileSpec = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(spec.rules[0].severity, Severity::Critical);
        let back = serde_json::to_value(&spec).expect("serialises");
        let again: ProfileSpec = serde_json::from_value(back).expect("parses again");
        assert_eq!(again, spec);
        spec.validate().expect("valid");
        let e = serde_json::to_value(Event::Clear {
            rule_id: "r".into(),
            at: t0(),
            value: Some(1.5),
        })
        .expect("event");
        assert_eq!(e["event"], "clear");
    }

    #[test]
    fn threshold_is_strict_and_updates_while_active() {
        let p = profile(serde_json::json!({"rules": [rule("hi", thr("level", "above", 3.0))]}));
        let mut st = DeviceState::default();
        assert!(
            feed(&p, &mut st, 0, &[("level", 3.0)]).is_empty(),
            "exactly at is not above"
        );
        let ev = feed(&p, &mut st, 1, &[("level", 3.01), ("temp", 20.0)]);
        assert_eq!(
            ev,
            vec![Event::Raise {
                rule_id: "hi".into(),
                alarm_type: "hi".into(),
                severity: Severity::Major,
                at: at(1),
                value: Some(3.01),
            }]
        );
        assert!(st.is_active("hi"));
        assert_eq!(
            feed(&p, &mut st, 2, &[("level", 4.0)]),
            vec![Event::Update {
                rule_id: "hi".into(),
                at: at(2),
                value: Some(4.0)
            }]
        );
        assert_eq!(
            feed(&p, &mut st, 3, &[("level", 3.0)]),
            vec![Event::Clear {
                rule_id: "hi".into(),
                at: at(3),
                value: Some(3.0)
            }]
        );
        assert!(st.active_rule_ids().is_empty());

        let lo = profile(serde_json::json!({"rules": [rule("lo", thr("level", "below", 0.5))]}));
        let mut st = DeviceState::default();
        assert!(feed(&lo, &mut st, 0, &[("level", 0.5)]).is_empty());
        assert_eq!(
            kinds(&feed(&lo, &mut st, 1, &[("level", 0.49)])),
            ["raise lo"]
        );
    }

    #[test]
    fn missing_metric_and_nan_make_the_condition_false() {
        let p = profile(serde_json::json!({"rules": [rule("hi", thr("level", "above", 3.0))]}));
        let mut st = DeviceState::default();
        assert!(feed(&p, &mut st, 0, &[("temp", 99.0)]).is_empty());
        assert!(feed(&p, &mut st, 1, &[("level", f64::NAN)]).is_empty());
        assert!(feed(&p, &mut st, 2, &[("level", f64::INFINITY)]).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 3, &[("level", 5.0)])),
            ["raise hi"]
        );
        // An active rule without `clear` clears when its raise no longer holds — also when the
        // metric is missing or not a number; the event then carries no value.
        assert_eq!(
            feed(&p, &mut st, 4, &[("level", f64::NAN)]),
            vec![Event::Clear {
                rule_id: "hi".into(),
                at: at(4),
                value: None
            }]
        );
    }

    #[test]
    fn hysteresis_holds_until_clear() {
        let mut r = rule("hi", thr("level", "above", 3.0));
        r["clear"] = thr("level", "below", 2.5);
        let p = profile(serde_json::json!({ "rules": [r] }));
        let mut st = DeviceState::default();
        assert_eq!(
            kinds(&feed(&p, &mut st, 0, &[("level", 3.5)])),
            ["raise hi"]
        );
        assert!(
            feed(&p, &mut st, 1, &[("level", 2.8)]).is_empty(),
            "between: stays, no update"
        );
        assert!(
            feed(&p, &mut st, 2, &[("level", 2.5)]).is_empty(),
            "exactly at clear: not below"
        );
        assert!(tick(&p, &mut st, 3600).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 3601, &[("level", 3.2)])),
            ["update hi"]
        );
        assert_eq!(
            feed(&p, &mut st, 3602, &[("level", 2.4)]),
            vec![Event::Clear {
                rule_id: "hi".into(),
                at: at(3602),
                value: Some(2.4)
            }]
        );
        assert!(
            feed(&p, &mut st, 3603, &[("level", 2.8)]).is_empty(),
            "no raise between"
        );
    }

    #[test]
    fn sustained_raises_exactly_at_duration_and_completes_on_tick() {
        let p = profile(serde_json::json!({"rules": [rule("hi", serde_json::json!(
            {"kind": "sustained", "seconds": 60, "cond": thr("level", "above", 3.0)}))]}));
        let mut st = DeviceState::default();
        assert!(feed(&p, &mut st, 0, &[("level", 4.0)]).is_empty());
        assert!(feed(&p, &mut st, 59, &[("level", 4.0)]).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 60, &[("level", 4.0)])),
            ["raise hi"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 61, &[("level", 1.0)])),
            ["clear hi"]
        );

        // An interruption restarts the run.
        assert!(feed(&p, &mut st, 100, &[("level", 4.0)]).is_empty());
        assert!(feed(&p, &mut st, 130, &[("level", 2.0)]).is_empty());
        assert!(feed(&p, &mut st, 140, &[("level", 4.0)]).is_empty());
        assert!(
            feed(&p, &mut st, 190, &[("level", 4.0)]).is_empty(),
            "50 s into the new run"
        );
        // With no further reading, time completes it.
        assert!(tick(&p, &mut st, 199).is_empty());
        let ev = tick(&p, &mut st, 200);
        assert_eq!(
            ev,
            vec![Event::Raise {
                rule_id: "hi".into(),
                alarm_type: "hi".into(),
                severity: Severity::Major,
                at: at(200),
                value: None
            }]
        );
        assert!(tick(&p, &mut st, 260).is_empty(), "ticks never update");
    }

    #[test]
    fn repeated_counts_hits_in_an_inclusive_sliding_window() {
        let p = profile(serde_json::json!({"rules": [rule("gas", serde_json::json!(
            {"kind": "repeated", "count": 3, "window_seconds": 60, "cond": thr("ch4", "above", 10.0)}))]}));
        let mut st = DeviceState::default();
        assert!(feed(&p, &mut st, 0, &[("ch4", 11.0)]).is_empty());
        assert!(feed(&p, &mut st, 10, &[("ch4", 1.0)]).is_empty());
        assert!(feed(&p, &mut st, 30, &[("ch4", 12.0)]).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 60, &[("ch4", 13.0)])),
            ["raise gas"],
            "0 is in [0, 60]"
        );
        // A reading below threshold inside the window: the 3 hits still count → update.
        assert_eq!(
            kinds(&feed(&p, &mut st, 60, &[("ch4", 1.0)])),
            ["update gas"]
        );
        // At 61 the hit at 0 has left the window.
        assert_eq!(
            kinds(&feed(&p, &mut st, 61, &[("ch4", 1.0)])),
            ["clear gas"]
        );

        let mut st = DeviceState::default();
        for s in [0, 30] {
            assert!(feed(&p, &mut st, s, &[("ch4", 20.0)]).is_empty());
        }
        assert!(
            feed(&p, &mut st, 61, &[("ch4", 20.0)]).is_empty(),
            "0 is outside [1, 61]"
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 62, &[("ch4", 20.0)])),
            ["raise gas"]
        );
        // The window expires with time alone.
        assert!(tick(&p, &mut st, 90).is_empty());
        assert_eq!(kinds(&tick(&p, &mut st, 91)), ["clear gas"]);
    }

    #[test]
    fn rate_uses_consecutive_readings_of_the_metric() {
        let p = profile(serde_json::json!({"rules": [rule("rise", serde_json::json!(
            {"kind": "rate", "metric": "level", "op": "above", "per_minute": 0.5}))]}));
        let mut st = DeviceState::default();
        assert!(
            feed(&p, &mut st, 0, &[("level", 1.0)]).is_empty(),
            "no baseline yet"
        );
        // +0.25 in 30 s = exactly 0.5/min: not above.
        assert!(feed(&p, &mut st, 30, &[("level", 1.25)]).is_empty());
        // A reading without the metric neither counts nor moves the baseline.
        assert!(feed(&p, &mut st, 40, &[("temp", 1.0)]).is_empty());
        // +0.5 over 30 s from the baseline at 30 s = 1.0/min.
        assert_eq!(
            kinds(&feed(&p, &mut st, 60, &[("level", 1.75)])),
            ["raise rise"]
        );
        // dt = 0: ignored (false), baseline stays at (60, 1.75).
        assert_eq!(
            kinds(&feed(&p, &mut st, 60, &[("level", 9.0)])),
            ["clear rise"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 120, &[("level", 2.8)])),
            ["raise rise"],
            "1.05/min"
        );

        let fall = profile(serde_json::json!({"rules": [rule("fall", serde_json::json!(
            {"kind": "rate", "metric": "level", "op": "below", "per_minute": -1.0}))]}));
        let mut st = DeviceState::default();
        assert!(feed(&fall, &mut st, 0, &[("level", 5.0)]).is_empty());
        assert!(
            feed(&fall, &mut st, 60, &[("level", 4.0)]).is_empty(),
            "-1/min is not below"
        );
        assert_eq!(
            kinds(&feed(&fall, &mut st, 120, &[("level", 2.9)])),
            ["raise fall"]
        );
    }

    #[test]
    fn silent_raises_on_tick_and_clears_on_the_next_reading() {
        let p = profile(serde_json::json!({"rules": [
            rule("quiet", serde_json::json!({"kind": "silent", "seconds": 600})),
            rule("hi", thr("level", "above", 3.0)),
        ]}));
        let mut st = DeviceState::default();
        assert!(
            tick(&p, &mut st, 10_000).is_empty(),
            "a device never heard from is not silent"
        );
        assert!(feed(&p, &mut st, 0, &[("level", 1.0)]).is_empty());
        assert!(tick(&p, &mut st, 599).is_empty());
        assert_eq!(
            tick(&p, &mut st, 600),
            vec![Event::Raise {
                rule_id: "quiet".into(),
                alarm_type: "quiet".into(),
                severity: Severity::Major,
                at: at(600),
                value: None
            }]
        );
        assert!(tick(&p, &mut st, 1200).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 1300, &[("level", 5.0)])),
            ["clear quiet", "raise hi"]
        );
    }

    #[test]
    fn all_needs_every_part_on_the_same_reading() {
        let p = profile(serde_json::json!({"rules": [rule("both", serde_json::json!(
            {"kind": "all", "all": [thr("level", "above", 3.0), thr("rain", "above", 10.0),
              {"kind": "sustained", "seconds": 30, "cond": thr("level", "above", 2.0)}]}))]}));
        let mut st = DeviceState::default();
        assert!(
            feed(&p, &mut st, 0, &[("level", 4.0), ("rain", 20.0)]).is_empty(),
            "not sustained yet"
        );
        assert!(
            feed(&p, &mut st, 30, &[("level", 4.0)]).is_empty(),
            "rain missing"
        );
        // The sustained part kept its run although the All was false at 30.
        assert_eq!(
            kinds(&feed(&p, &mut st, 31, &[("rain", 11.0), ("level", 3.5)])),
            ["raise both"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 32, &[("level", 3.5), ("rain", 5.0)])),
            ["clear both"]
        );
    }

    #[test]
    fn schedule_wraps_midnight_in_shanghai_and_keeps_the_starting_weekday() {
        // 22:00–06:00 Shanghai, Friday nights only. t0 = Friday 20:00 Shanghai.
        let mut r = rule("night", thr("level", "above", 3.0));
        r["schedule"] =
            serde_json::json!({"from": "22:00:00", "until": "06:00:00", "weekdays": ["Fri"]});
        let p = profile(serde_json::json!({ "rules": [r] }));
        let h = 3600;
        let cases: &[(i64, bool)] = &[
            (0, false),                 // Fri 20:00
            (2 * h - 1, false),         // Fri 21:59:59
            (2 * h, true),              // Fri 22:00 (inclusive)
            (5 * h, true),              // Sat 01:00 — Friday's night
            (10 * h - 1, true),         // Sat 05:59:59
            (10 * h, false),            // Sat 06:00 (exclusive)
            (26 * h, false),            // Sat 22:00 — Saturday's night, not listed
            (29 * h, false),            // Sun 01:00
            (7 * 24 * h + 2 * h, true), // next Fri 22:00
        ];
        // The cases' local times, as chrono sees them in crate::SHANGHAI.
        let local = |secs: i64| {
            let l = at(secs).with_timezone(&crate::SHANGHAI);
            (l.weekday(), l.hour(), l.minute(), l.second())
        };
        assert_eq!(local(0), (Weekday::Fri, 20, 0, 0));
        assert_eq!(local(5 * h), (Weekday::Sat, 1, 0, 0));
        assert_eq!(local(10 * h - 1), (Weekday::Sat, 5, 59, 59));
        assert_eq!(local(29 * h), (Weekday::Sun, 1, 0, 0));
        for &(secs, raises) in cases {
            let mut st = DeviceState::default();
            let ev = feed(&p, &mut st, secs, &[("level", 5.0)]);
            assert_eq!(
                !ev.is_empty(),
                raises,
                "at {}",
                at(secs).with_timezone(&crate::SHANGHAI)
            );
        }

        // Outside the window nothing raises, but an active alarm updates and clears.
        let mut st = DeviceState::default();
        assert_eq!(
            kinds(&feed(&p, &mut st, 9 * h, &[("level", 5.0)])),
            ["raise night"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 11 * h, &[("level", 5.0)])),
            ["update night"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 12 * h, &[("level", 1.0)])),
            ["clear night"]
        );
        assert!(feed(&p, &mut st, 13 * h, &[("level", 5.0)]).is_empty());

        // A daytime window without weekdays: every day, [from, until).
        let mut r = rule("day", thr("level", "above", 3.0));
        r["schedule"] = serde_json::json!({"from": "08:00:00", "until": "20:00:00"});
        let p = profile(serde_json::json!({ "rules": [r] }));
        for &(secs, raises) in &[
            (0, false),
            (-1, true),
            (-12 * h, true),
            (-12 * h - 1, false),
        ] {
            let mut st = DeviceState::default();
            assert_eq!(
                !feed(&p, &mut st, secs, &[("level", 5.0)]).is_empty(),
                raises,
                "{secs}"
            );
        }
    }

    #[test]
    fn older_readings_and_ticks_change_nothing() {
        let p = profile(serde_json::json!({"rules": [rule("hi", thr("level", "above", 3.0))]}));
        let mut st = DeviceState::default();
        assert_eq!(
            kinds(&feed(&p, &mut st, 100, &[("level", 5.0)])),
            ["raise hi"]
        );
        let before = st.clone();
        assert!(feed(&p, &mut st, 99, &[("level", 1.0)]).is_empty());
        assert!(tick(&p, &mut st, 50).is_empty());
        assert_eq!(st, before);
        assert_eq!(st.last_reading_at(), Some(at(100)));
        assert_eq!(
            kinds(&feed(&p, &mut st, 100, &[("level", 1.0)])),
            ["clear hi"],
            "same time counts"
        );
    }

    #[test]
    fn a_changed_profile_keeps_active_rules_by_id_and_clears_removed_ones() {
        let v1 = profile(serde_json::json!({"rules": [
            rule("a", thr("level", "above", 3.0)), rule("b", thr("temp", "above", 50.0))]}));
        let mut st = DeviceState::default();
        assert_eq!(
            kinds(&feed(&v1, &mut st, 0, &[("level", 5.0), ("temp", 60.0)])),
            ["raise a", "raise b"]
        );
        let v2 = profile(serde_json::json!({"rules": [
            rule("c", thr("x", "above", 1.0)), rule("a", thr("level", "above", 4.0))]}));
        assert_eq!(
            kinds(&feed(&v2, &mut st, 1, &[("level", 4.5)])),
            ["clear b", "update a"]
        );
        assert_eq!(st.active_rule_ids(), ["a"]);
        assert_eq!(
            kinds(&feed(&v2, &mut st, 2, &[("level", 3.5)])),
            ["clear a"]
        );

        // Renaming a rule keeps a sustained run going; changing its condition restarts it.
        let sustained = |name: &str, limit: f64| {
            let mut r = rule(
                "s",
                serde_json::json!({"kind": "sustained", "seconds": 60,
                "cond": thr("level", "above", limit)}),
            );
            r["name"] = serde_json::json!(name);
            profile(serde_json::json!({ "rules": [r] }))
        };
        let (a, renamed, changed) = (
            sustained("甲", 3.0),
            sustained("乙", 3.0),
            sustained("甲", 3.1),
        );
        assert_eq!(a.fingerprint(), renamed.fingerprint());
        assert_ne!(a.fingerprint(), changed.fingerprint());
        let mut st = DeviceState::default();
        assert!(feed(&a, &mut st, 0, &[("level", 5.0)]).is_empty());
        let mut st2 = st.clone();
        assert_eq!(
            kinds(&feed(&renamed, &mut st, 60, &[("level", 5.0)])),
            ["raise s"]
        );
        assert!(
            feed(&changed, &mut st2, 60, &[("level", 5.0)]).is_empty(),
            "run restarted at 60"
        );
        assert_eq!(
            kinds(&feed(&changed, &mut st2, 120, &[("level", 5.0)])),
            ["raise s"]
        );
    }

    #[test]
    fn profiles_with_more_than_64_conditions_keep_every_condition_apart() {
        // 40 rules of 2 conditions each = 80 nodes: the held bits span two words. Rule i
        // watches metric m(i % 20) above 1 (i < 20) or above 100 (i >= 20).
        let rules: Vec<serde_json::Value> = (0..40)
            .map(|i| {
                let metric = format!("m{}", i % 20);
                let limit = if i < 20 { 1.0 } else { 100.0 };
                rule(
                    &format!("r{i}"),
                    serde_json::json!({"kind": "sustained", "seconds": 10,
                        "cond": thr(&metric, "above", limit)}),
                )
            })
            .collect();
        let p = profile(serde_json::json!({ "rules": rules }));
        let mut st = DeviceState::default();
        assert!(feed(&p, &mut st, 0, &[("m19", 200.0), ("m0", 0.0)]).is_empty());
        assert_eq!(
            kinds(&feed(&p, &mut st, 10, &[("m19", 200.0), ("m0", 0.0)])),
            ["raise r19", "raise r39"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 20, &[("m0", 2.0), ("m19", 50.0)])),
            ["update r19", "clear r39"]
        );
        assert_eq!(
            kinds(&feed(&p, &mut st, 30, &[("m0", 2.0), ("m19", 50.0)])),
            ["raise r0", "update r19"]
        );
        assert_eq!(st.active_rule_ids(), ["r19", "r0"]);
    }

    fn check_err(json: serde_json::Value) -> RuleError {
        let spec: ProfileSpec = serde_json::from_value(json).expect("parses");
        let e = spec.check().expect_err("invalid");
        let d = spec.validate().expect_err("invalid");
        assert_eq!(d.field(), Some(e.field.as_str()));
        assert!(!e.to_string().is_empty());
        e
    }

    #[test]
    fn validation_errors_name_the_rule_and_field() {
        let ok = rule("a", thr("level", "above", 3.0));
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                serde_json::json!({"rules": [ok, rule("a", thr("x", "above", 1.0))]}),
                "rules.duplicate_id",
                "rules[1].id",
            ),
            (
                serde_json::json!({"rules": [rule("Bad-Id", thr("x", "above", 1.0))]}),
                "rules.invalid",
                "rules[0].id",
            ),
            (
                serde_json::json!({"rules": [{"id": "a", "name": " ", "alarm_type": "t", "severity": "minor",
                "raise": thr("x", "above", 1.0)}]}),
                "rules.invalid",
                "rules[0].name",
            ),
            (
                serde_json::json!({"rules": [{"id": "a", "name": "n", "alarm_type": "", "severity": "minor",
                "raise": thr("x", "above", 1.0)}]}),
                "rules.invalid",
                "rules[0].alarm_type",
            ),
            (
                serde_json::json!({"rules": [rule("a", thr("", "above", 1.0))]}),
                "rules.invalid",
                "rules[0].raise.metric",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "sustained", "seconds": 60,
                "cond": {"kind": "sustained", "seconds": 0, "cond": thr("x", "above", 1.0)}}))]}),
                "rules.invalid",
                "rules[0].raise.cond.seconds",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "repeated", "count": 0,
                "window_seconds": 60, "cond": thr("x", "above", 1.0)}))]}),
                "rules.invalid",
                "rules[0].raise.count",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "repeated", "count": 2,
                "window_seconds": 700_000, "cond": thr("x", "above", 1.0)}))]}),
                "rules.invalid",
                "rules[0].raise.window_seconds",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "all", "all": [
                thr("x", "above", 1.0), {"kind": "silent", "seconds": 60}]}))]}),
                "rules.silent_misplaced",
                "rules[0].raise.all[1]",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "all", "all": []}))]}),
                "rules.invalid",
                "rules[0].raise.all",
            ),
            (
                serde_json::json!({"rules": [rule("a", serde_json::json!({"kind": "sustained", "seconds": 5,
                "cond": {"kind": "sustained", "seconds": 5, "cond": {"kind": "sustained", "seconds": 5,
                "cond": {"kind": "sustained", "seconds": 5, "cond": thr("x", "above", 1.0)}}}}))]}),
                "rules.too_large",
                "rules[0].raise.cond.cond.cond.cond",
            ),
        ];
        for (json, code, field) in cases {
            let e = check_err(json);
            assert_eq!((e.code, e.field.as_str()), (code, field));
        }
        // Clear and schedule are checked too.
        let mut r = rule("a", thr("x", "above", 1.0));
        r["clear"] =
            serde_json::json!({"kind": "rate", "metric": "x", "op": "below", "per_minute": 1.0});
        r["schedule"] = serde_json::json!({"from": "08:00:00", "until": "08:00:00"});
        assert_eq!(
            check_err(serde_json::json!({ "rules": [r] })).field,
            "rules[0].schedule.until"
        );
        let mut r = rule("a", thr("x", "above", 1.0));
        r["schedule"] = serde_json::json!({"from": "08:00:00", "until": "09:00:00", "weekdays": ["Mon", "Mon"]});
        assert_eq!(
            check_err(serde_json::json!({ "rules": [r] })).field,
            "rules[0].schedule.weekdays[1]"
        );
        // Not-finite numbers cannot come from JSON, but can from code.
        let spec = ProfileSpec {
            rules: vec![RuleSpec {
                id: "a".into(),
                name: "n".into(),
                alarm_type: "t".into(),
                severity: Severity::Minor,
                raise: Condition::Threshold {
                    metric: "x".into(),
                    op: Op::Above,
                    value: f64::NAN,
                },
                clear: None,
                schedule: None,
            }],
        };
        assert_eq!(spec.check().expect_err("nan").field, "rules[0].raise.value");
        assert!(ProfileSpec { rules: vec![] }.compile().is_ok());
    }

    // -----------------------------------------------------------------------------------------
    // Properties

    /// The benchmark's kind of profile: water level with threshold+sustained+rate+hysteresis, gas
    /// repeated, a silence rule and a night schedule.
    fn realistic() -> Profile {
        let mut level = rule(
            "level_high",
            serde_json::json!({"kind": "sustained", "seconds": 60,
            "cond": thr("level", "above", 3.0)}),
        );
        level["clear"] = thr("level", "below", 2.5);
        let rise = rule(
            "level_rising",
            serde_json::json!({"kind": "rate", "metric": "level",
            "op": "above", "per_minute": 0.5}),
        );
        let gas = rule(
            "gas",
            serde_json::json!({"kind": "repeated", "count": 3, "window_seconds": 120,
            "cond": thr("gas", "above", 20.0)}),
        );
        let quiet = rule(
            "quiet",
            serde_json::json!({"kind": "silent", "seconds": 300}),
        );
        let mut night = rule(
            "night_flood",
            serde_json::json!({"kind": "all", "all": [
            thr("level", "above", 2.0), thr("rain", "above", 5.0)]}),
        );
        night["schedule"] = serde_json::json!({"from": "22:00:00", "until": "06:00:00"});
        profile(serde_json::json!({"rules": [level, rise, gas, quiet, night]}))
    }

    #[derive(Debug, Clone)]
    enum Step {
        Reading {
            dt: i64,
            level: Option<i32>,
            gas: Option<i32>,
            rain: i32,
        },
        Tick {
            dt: i64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (-20i64..200, proptest::option::of(0i32..500), proptest::option::of(0i32..40), 0i32..20)
                .prop_map(|(dt, level, gas, rain)| Step::Reading { dt, level, gas, rain }),
            1 => (0i64..600).prop_map(|dt| Step::Tick { dt }),
        ]
    }

    /// Runs the steps from `clock`, returning the events; the clock (seconds) moves by each dt.
    fn run(p: &Profile, st: &mut DeviceState, clock: &mut i64, steps: &[Step]) -> Vec<Event> {
        let mut out = Vec::new();
        for s in steps {
            match *s {
                Step::Reading {
                    dt,
                    level,
                    gas,
                    rain,
                } => {
                    *clock += dt;
                    let mut vals: Vec<(&str, f64)> = vec![("rain", f64::from(rain))];
                    if let Some(l) = level {
                        vals.push(("level", f64::from(l) / 100.0));
                    }
                    if let Some(g) = gas {
                        vals.push(("gas", f64::from(g)));
                    }
                    p.evaluate(
                        st,
                        &Reading {
                            at: at(*clock),
                            values: &vals,
                        },
                        &mut out,
                    );
                }
                Step::Tick { dt } => {
                    *clock += dt;
                    p.tick(st, at(*clock), &mut out);
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn state_survives_serde_mid_stream(steps in proptest::collection::vec(step(), 0..120), split in 0usize..120) {
            let p = realistic();
            let split = split.min(steps.len());
            let mut clock = 0;
            let mut st = DeviceState::default();
            let whole = run(&p, &mut st, &mut clock, &steps);

            let mut clock = 0;
            let mut st = DeviceState::default();
            let mut parts = run(&p, &mut st, &mut clock, &steps[..split]);
            let json = serde_json::to_string(&st).expect("serialises");
            let mut restored: DeviceState = serde_json::from_str(&json).expect("deserialises");
            prop_assert_eq!(&restored, &st);
            parts.extend(run(&p, &mut restored, &mut clock, &steps[split..]));
            prop_assert_eq!(whole, parts);
        }

        #[test]
        fn while_active_matches_update_never_raise_again(steps in proptest::collection::vec(step(), 0..200)) {
            let p = realistic();
            let mut clock = 0;
            let mut st = DeviceState::default();
            let mut active = std::collections::HashSet::new();
            for s in &steps {
                for e in run(&p, &mut st, &mut clock, std::slice::from_ref(s)) {
                    let id = e.rule_id().to_owned();
                    match e {
                        Event::Raise { .. } => prop_assert!(active.insert(id), "second raise"),
                        Event::Update { .. } => prop_assert!(active.contains(&id), "update of inactive"),
                        Event::Clear { .. } => prop_assert!(active.remove(&id), "clear of inactive"),
                    }
                }
                let mut ids: Vec<&String> = active.iter().collect();
                ids.sort();
                let mut now: Vec<&String> = st.active_rule_ids().iter().collect();
                now.sort();
                prop_assert_eq!(ids, now);
            }
        }

        /// Any spec that validates compiles and evaluates without panicking, and its events keep
        /// the raise/update/clear discipline; any spec that does not validates names a field
        /// under `rules`.
        #[test]
        fn random_specs_validate_or_name_a_field(
            spec in arb_spec(),
            steps in proptest::collection::vec(arb_reading(), 0..60),
        ) {
            match spec.check() {
                Err(e) => {
                    prop_assert!(e.field.starts_with("rules"), "{}", e.field);
                    prop_assert!(e.code.starts_with("rules."));
                    prop_assert!(spec.compile().is_err());
                }
                Ok(()) => {
                    let p = spec.compile().expect("valid spec compiles");
                    let mut st = DeviceState::default();
                    let mut active = std::collections::HashSet::new();
                    let mut clock = 0i64;
                    for (dt, tick_after, vals) in &steps {
                        clock += dt;
                        let pairs: Vec<(&str, f64)> = vals.iter().map(|(k, v)| (*k, *v)).collect();
                        let mut out = Vec::new();
                        p.evaluate(&mut st, &Reading { at: at(clock), values: &pairs }, &mut out);
                        if *tick_after > 0 {
                            p.tick(&mut st, at(clock + tick_after), &mut out);
                        }
                        for e in out {
                            let id = e.rule_id().to_owned();
                            match e {
                                Event::Raise { .. } => prop_assert!(active.insert(id)),
                                Event::Update { .. } => prop_assert!(active.contains(&id)),
                                Event::Clear { .. } => prop_assert!(active.remove(&id)),
                            }
                        }
                        let json = serde_json::to_string(&st).expect("serialises");
                        let back: DeviceState = serde_json::from_str(&json).expect("deserialises");
                        prop_assert_eq!(&back, &st);
                    }
                }
            }
        }
    }

    const METRICS: [&str; 3] = ["a", "b", "c"];

    fn arb_cond() -> impl Strategy<Value = Condition> {
        let op = prop_oneof![Just(Op::Above), Just(Op::Below)];
        let leaf = prop_oneof![
            (0usize..3, op.clone(), -5i32..15).prop_map(|(m, op, v)| Condition::Threshold {
                metric: METRICS[m].into(),
                op,
                value: f64::from(v),
            }),
            (0usize..3, op, -10i32..10).prop_map(|(m, op, v)| Condition::Rate {
                metric: METRICS[m].into(),
                op,
                per_minute: f64::from(v) / 2.0,
            }),
        ];
        // Mostly valid: a silence nested inside another condition is rare (and invalid).
        let leaf = prop_oneof![
            20 => leaf,
            1 => (0u32..400).prop_map(|seconds| Condition::Silent { seconds }),
        ];
        leaf.prop_recursive(5, 24, 4, |inner| {
            prop_oneof![
                (inner.clone(), 0u32..300).prop_map(|(c, seconds)| Condition::Sustained {
                    cond: Box::new(c),
                    seconds,
                }),
                (
                    inner.clone(),
                    prop_oneof![9 => 1u32..6, 1 => Just(0u32)],
                    0u32..300
                )
                    .prop_map(|(c, count, window_seconds)| {
                        Condition::Repeated {
                            cond: Box::new(c),
                            count,
                            window_seconds,
                        }
                    }),
                prop_oneof![
                    9 => proptest::collection::vec(inner, 1..4),
                    1 => Just(vec![]),
                ]
                .prop_map(|all| Condition::All { all }),
            ]
        })
    }

    fn arb_spec() -> impl Strategy<Value = ProfileSpec> {
        let top = || {
            prop_oneof![
                6 => arb_cond(),
                1 => (0u32..400).prop_map(|seconds| Condition::Silent { seconds }),
            ]
        };
        let rule = (
            // Mostly a fresh id (set below); sometimes a duplicate or a malformed one.
            prop_oneof![18 => Just(""), 1 => Just("r0"), 1 => Just("R4")],
            top(),
            proptest::option::of(top()),
            proptest::option::of((0u32..24, 0u32..24)),
        )
            .prop_map(|(id, raise, clear, hours)| RuleSpec {
                id: id.into(),
                name: "规则".into(),
                alarm_type: "t".into(),
                severity: Severity::Minor,
                raise,
                clear,
                schedule: hours.map(|(f, u)| Schedule {
                    from: NaiveTime::from_hms_opt(f, 0, 0).expect("hour"),
                    until: NaiveTime::from_hms_opt(u, 0, 0).expect("hour"),
                    weekdays: vec![],
                }),
            });
        proptest::collection::vec(rule, 1..5).prop_map(|mut rules| {
            for (i, r) in rules.iter_mut().enumerate() {
                if r.id.is_empty() {
                    r.id = format!("r{i}");
                }
            }
            ProfileSpec { rules }
        })
    }

    /// (seconds since the previous reading, seconds to tick after it (0 = none), values).
    fn arb_reading() -> impl Strategy<Value = (i64, i64, Vec<(&'static str, f64)>)> {
        let value = prop_oneof![
            8 => (-5i32..15).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
        ];
        (
            -30i64..240,
            prop_oneof![3 => Just(0i64), 1 => 1i64..900],
            proptest::collection::vec((0usize..4, value), 0..4).prop_map(|vs| {
                vs.into_iter()
                    .map(|(m, v)| (["a", "b", "c", "zz"][m], v))
                    .collect()
            }),
        )
    }
}
