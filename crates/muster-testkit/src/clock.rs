use chrono::TimeZone;
use muster_core::{Clock, Time};
use parking_lot::Mutex;

/// A clock tests move by hand. Starts at 2044-01-01T00:00:00Z.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Time>,
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

impl FakeClock {
    pub fn new() -> FakeClock {
        let t = chrono::Utc.with_ymd_and_hms(2044, 1, 1, 0, 0, 0).single().unwrap_or_default();
        FakeClock { now: Mutex::new(t) }
    }
    pub fn set(&self, t: Time) {
        *self.now.lock() = t;
    }
    pub fn advance(&self, d: std::time::Duration) {
        let mut n = self.now.lock();
        *n += chrono::Duration::from_std(d).unwrap_or_default();
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Time {
        *self.now.lock()
    }
}
