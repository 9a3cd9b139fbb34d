//! Time. Stored in UTC, shown in Asia/Shanghai. All code asks a [`Clock`], so tests of deadlines
//! and escalations move time forward instead of sleeping.

use chrono::{DateTime, FixedOffset, Utc};
use std::sync::{Arc, Mutex};

/// Asia/Shanghai. China has kept UTC+8 all year since 1991 (no daylight saving), so a fixed offset
/// is exact for every instant the platform records; birth dates are plain dates and need no zone.
pub const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(o) => o,
    None => panic!("UTC+8 is a valid offset"),
};

/// The source of "now" for everything that stores or compares time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Now in Asia/Shanghai, for display and for rules phrased in local days.
    fn local_now(&self) -> DateTime<FixedOffset> {
        self.now().with_timezone(&SHANGHAI)
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; shared by clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let c = ManualClock::new(start);
        let c2 = c.clone();
        c.advance(chrono::Duration::hours(25));
        assert_eq!(c2.now(), start + chrono::Duration::hours(25));
        assert_eq!(
            c2.local_now().format("%Y-%m-%d %H").to_string(),
            "2026-01-02 09"
        );
    }
}
