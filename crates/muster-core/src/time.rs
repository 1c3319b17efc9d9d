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

/// Why a Go-style duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoDurationError {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`.
    Invalid,
    /// A number without its unit (`10`).
    MissingUnit,
    /// A unit other than ns, us (µs), ms, s, m, h.
    UnknownUnit(String),
}

/// Parses a duration as Go's `time.ParseDuration` reads it (`300ms`, `1m30s`,
/// `1.5h`, `-5m`, `0`) into signed nanoseconds. Callers pick their own
/// messages and limits.
pub fn parse_go_duration_nanos(s: &str) -> Result<f64, GoDurationError> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(GoDurationError::Invalid);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(GoDurationError::Invalid);
        }
        let value: f64 = num.parse().map_err(|_| GoDurationError::Invalid)?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(GoDurationError::MissingUnit),
            u => return Err(GoDurationError::UnknownUnit(u.to_string())),
        };
        rest = &rest[unit_len..];
        total += value * nanos;
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod go_duration_tests {
    use super::{parse_go_duration_nanos as p, GoDurationError};

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(p("1m30s"), Ok(90e9));
        assert_eq!(p("1.5h"), Ok(5400e9));
        assert_eq!(p("-5ms"), Ok(-5e6));
        assert_eq!(p("0"), Ok(0.0));
        assert_eq!(p("10"), Err(GoDurationError::MissingUnit));
        assert_eq!(p("3d"), Err(GoDurationError::UnknownUnit("d".into())));
        assert_eq!(p(""), Err(GoDurationError::Invalid));
        assert_eq!(p("1.2.3s"), Err(GoDurationError::Invalid));
        assert_eq!(p(".s"), Err(GoDurationError::Invalid));
    }
}
