//! Time. The only place that may read the wall clock is [`SystemClock`].

use chrono::{DateTime, Utc};

/// A point in time, UTC, microsecond precision in storage.
pub type Time = DateTime<Utc>;

/// Source of "now". Read once per request and pass the value down.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Time;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Utc::now()
    }
}

/// Microseconds since the Unix epoch (the storage representation).
pub fn to_micros(t: Time) -> i64 {
    t.timestamp_micros()
}

/// Inverse of [`to_micros`]; out-of-range values clamp to the epoch.
pub fn from_micros(us: i64) -> Time {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Seconds (float) between two times, never negative.
pub fn secs_between(from: Time, to: Time) -> f64 {
    let us = (to - from).num_microseconds().unwrap_or(0).max(0);
    us as f64 / 1e6
}

/// `t + secs` seconds.
pub fn add_secs(t: Time, secs: i64) -> Time {
    t + chrono::Duration::seconds(secs)
}
