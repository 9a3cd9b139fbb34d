//! The alarm lifecycle: active/cleared × unacknowledged/acknowledged, severity, and escalation.
//!
//! An alarm is opened by a rule's raise ([`crate::rules::Event::Raise`]), updated while the rule
//! keeps matching, cleared when the rule's clear condition holds (or its raise no longer holds),
//! and acknowledged by a person. The two flags are independent: an operator may acknowledge an
//! alarm that is still active, and a cleared alarm still waits for someone to acknowledge it. Only
//! an alarm that is both cleared and acknowledged is *closed*; the next raise of the same rule on
//! the same device then opens a new alarm.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

string_enum! {
    /// How bad an alarm is. Ordered: `Minor < Major < Critical`.
    pub enum Severity: "severity" {
        Minor = "minor", "一般",
        Major = "major", "重要",
        Critical = "critical", "紧急",
    }
}

impl Severity {
    /// Parses the stable name (`"minor"`, `"major"`, `"critical"`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.parse()
    }
}

/// active/cleared × unacknowledged/acknowledged
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmStatus {
    pub active: bool,
    pub acknowledged: bool,
}

impl AlarmStatus {
    /// A freshly raised alarm: active, not acknowledged.
    pub fn raised() -> Self {
        Self {
            active: true,
            acknowledged: false,
        }
    }

    /// Acknowledge. Acknowledging twice is an error (`alarm.already_acknowledged` is reported as
    /// `value.invalid` on field `acknowledged`), so two operators learn that someone was first.
    pub fn ack(self) -> Result<Self, DomainError> {
        if self.acknowledged {
            return Err(DomainError::ValueInvalid {
                field: "acknowledged",
            });
        }
        Ok(Self {
            acknowledged: true,
            ..self
        })
    }

    /// Clear (the condition is over, or an operator clears it by hand). Clearing a cleared alarm is
    /// an error on field `active`.
    pub fn clear(self) -> Result<Self, DomainError> {
        if !self.active {
            return Err(DomainError::ValueInvalid { field: "active" });
        }
        Ok(Self {
            active: false,
            ..self
        })
    }

    /// closed = cleared and acknowledged: a new raise of the same rule opens a new alarm.
    pub fn is_closed(self) -> bool {
        !self.active && self.acknowledged
    }

    /// `"active_unacked"`, `"active_acked"`, `"cleared_unacked"` or `"cleared_acked"`.
    pub fn as_str(self) -> &'static str {
        match (self.active, self.acknowledged) {
            (true, false) => "active_unacked",
            (true, true) => "active_acked",
            (false, false) => "cleared_unacked",
            (false, true) => "cleared_acked",
        }
    }

    /// The Chinese label for [`Self::as_str`].
    pub fn zh(self) -> &'static str {
        match (self.active, self.acknowledged) {
            (true, false) => "告警中·未确认",
            (true, true) => "告警中·已确认",
            (false, false) => "已恢复·未确认",
            (false, true) => "已关闭",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let (active, acknowledged) = match s.trim() {
            "active_unacked" => (true, false),
            "active_acked" => (true, true),
            "cleared_unacked" => (false, false),
            "cleared_acked" => (false, true),
            _ => return Err(DomainError::ValueInvalid { field: "status" }),
        };
        Ok(Self {
            active,
            acknowledged,
        })
    }
}

/// Escalation: an alarm not acknowledged within `after_minutes` of being raised (or of its last
/// escalation) goes one level up. Returns how many levels it should be above its device's node
/// now (0 = none), capped at `max_levels`.
///
/// Precisely: with `d = now - raised_at`, the level is `floor(d / after_minutes)` — level 1 is
/// reached at exactly `after_minutes`, level 2 at exactly `2 × after_minutes`, and so on. An
/// acknowledged alarm, a `now` before `raised_at`, or `after_minutes == 0` (escalation off) give 0.
/// The result only depends on the inputs, so a job that runs late or twice computes the same level;
/// the caller escalates when the stored level is below the returned one.
pub fn escalation_level(
    raised_at: DateTime<Utc>,
    acknowledged: bool,
    after_minutes: u32,
    max_levels: u32,
    now: DateTime<Utc>,
) -> u32 {
    if acknowledged || after_minutes == 0 || now < raised_at {
        return 0;
    }
    let elapsed_ms = (now - raised_at).num_milliseconds();
    let step_ms = i64::from(after_minutes) * 60_000;
    let levels = elapsed_ms / step_ms;
    u32::try_from(levels).unwrap_or(u32::MAX).min(max_levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn severity_names_order_and_labels() {
        crate::string_enum::check_round_trip(Severity::ALL);
        assert!(Severity::Minor < Severity::Major && Severity::Major < Severity::Critical);
        assert_eq!(Severity::parse("critical"), Ok(Severity::Critical));
        assert_eq!(Severity::Critical.zh(), "紧急");
        assert_eq!(
            Severity::parse("fatal"),
            Err(DomainError::ValueInvalid { field: "severity" })
        );
    }

    #[test]
    fn lifecycle_ack_and_clear_in_either_order() {
        let r = AlarmStatus::raised();
        assert_eq!(r.as_str(), "active_unacked");
        assert!(!r.is_closed());

        let acked = r.ack().expect("ack");
        assert_eq!(acked.as_str(), "active_acked");
        assert!(!acked.is_closed(), "acknowledged but still active is open");
        assert_eq!(
            acked.ack(),
            Err(DomainError::ValueInvalid {
                field: "acknowledged"
            })
        );
        let closed = acked.clear().expect("clear");
        assert!(closed.is_closed());
        assert_eq!(closed.as_str(), "cleared_acked");

        let cleared = r.clear().expect("clear");
        assert_eq!(cleared.as_str(), "cleared_unacked");
        assert!(!cleared.is_closed(), "cleared but unacknowledged is open");
        assert_eq!(
            cleared.clear(),
            Err(DomainError::ValueInvalid { field: "active" })
        );
        assert!(cleared.ack().expect("ack").is_closed());

        for s in [r, acked, closed, cleared] {
            assert_eq!(AlarmStatus::parse(s.as_str()), Ok(s));
            assert!(!s.zh().is_empty());
        }
        assert!(AlarmStatus::parse("open").is_err());
    }

    #[test]
    fn escalation_steps_exactly_at_each_multiple_and_caps() {
        let t0 = Utc
            .with_ymd_and_hms(2026, 7, 1, 2, 0, 0)
            .single()
            .expect("t0");
        let at = |m: i64, s: i64| t0 + Duration::minutes(m) + Duration::seconds(s);
        assert_eq!(escalation_level(t0, false, 15, 3, t0), 0);
        assert_eq!(escalation_level(t0, false, 15, 3, at(14, 59)), 0);
        assert_eq!(escalation_level(t0, false, 15, 3, at(15, 0)), 1);
        assert_eq!(escalation_level(t0, false, 15, 3, at(29, 59)), 1);
        assert_eq!(escalation_level(t0, false, 15, 3, at(30, 0)), 2);
        assert_eq!(escalation_level(t0, false, 15, 3, at(45, 0)), 3);
        assert_eq!(escalation_level(t0, false, 15, 3, at(600, 0)), 3, "capped");
        assert_eq!(escalation_level(t0, true, 15, 3, at(600, 0)), 0, "acked");
        assert_eq!(escalation_level(t0, false, 0, 3, at(600, 0)), 0, "off");
        assert_eq!(
            escalation_level(t0, false, 15, 3, at(-5, 0)),
            0,
            "clock skew"
        );
        assert_eq!(
            escalation_level(t0, false, 15, 0, at(600, 0)),
            0,
            "no levels"
        );
    }
}
