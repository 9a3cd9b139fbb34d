//! Identifiers: UUIDv7, globally unique without coordination (community nodes will later sync
//! with the city's), time-ordered so indexes stay compact. Demo and tests use [`SeededIdGen`] so
//! their data is deterministic.

use crate::clock::Clock;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Makes new record identifiers.
pub trait IdGen: Send + Sync + std::fmt::Debug {
    fn new_id(&self) -> Uuid;
}

/// UUIDv7 from the clock it is given and the operating system's randomness.
#[derive(Debug, Clone)]
pub struct SystemIdGen {
    clock: Arc<dyn Clock>,
}

impl SystemIdGen {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl IdGen for SystemIdGen {
    fn new_id(&self) -> Uuid {
        let mut rand = [0u8; 10];
        rand::thread_rng().fill_bytes(&mut rand);
        v7(self.clock.now().timestamp_millis(), rand)
    }
}

/// UUIDv7 whose random bits come from a seeded generator: the same seed and the same clock give
/// the same identifiers, run after run.
#[derive(Debug, Clone)]
pub struct SeededIdGen {
    clock: Arc<dyn Clock>,
    rng: Arc<Mutex<ChaCha20Rng>>,
}

impl SeededIdGen {
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Self {
        Self {
            clock,
            rng: Arc::new(Mutex::new(ChaCha20Rng::seed_from_u64(seed))),
        }
    }
}

impl IdGen for SeededIdGen {
    fn new_id(&self) -> Uuid {
        let mut rand = [0u8; 10];
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(&mut rand);
        v7(self.clock.now().timestamp_millis(), rand)
    }
}

fn v7(millis: i64, rand: [u8; 10]) -> Uuid {
    let millis = u64::try_from(millis).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    #[test]
    fn seeded_ids_repeat_and_are_v7() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let a = SeededIdGen::new(Arc::new(ManualClock::new(t)), 7);
        let b = SeededIdGen::new(Arc::new(ManualClock::new(t)), 7);
        let xs: Vec<_> = (0..5).map(|_| a.new_id()).collect();
        let ys: Vec<_> = (0..5).map(|_| b.new_id()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|u| u.get_version_num() == 7));
        let mut uniq = xs.clone();
        uniq.dedup();
        assert_eq!(uniq.len(), 5);
    }
}
