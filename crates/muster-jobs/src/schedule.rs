//! Job schedules: `triggered`, `continuously`, `with <duration> interval`
//! (relative: counted from the moment the previous run was seen finished)
//! and cron expressions (absolute, UTC; see [`crate::cron`]).

use crate::cron::CronExpr;
use chrono::Duration;
use muster_core::Time;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Never ticks; runs only when triggered.
    Triggered,
    /// Ticks `interval` after the previous run finished (0 = continuously).
    Relative(Duration),
    /// Ticks at the times a cron expression matches.
    Absolute(Box<CronExpr>),
}

impl Schedule {
    /// Parses the schedule grammar; errors say what is wrong.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let t = s.trim();
        if t.is_empty() || t == "triggered" {
            return Ok(Schedule::Triggered);
        }
        if t == "continuously" {
            return Ok(Schedule::Relative(Duration::zero()));
        }
        if t.starts_with("with ") {
            let parts: Vec<&str> = t.split(' ').collect();
            if parts.len() != 3 || parts[2] != "interval" {
                return Err(format!(
                    "bad schedule {s:?}: expected \"with <duration> interval\", e.g. \"with 10m interval\""
                ));
            }
            let d = parse_go_duration(parts[1]).map_err(|e| format!("bad schedule {s:?}: {e}"))?;
            if d < Duration::zero() {
                return Err(format!("bad schedule {s:?}: the interval must not be negative"));
            }
            return Ok(Schedule::Relative(d));
        }
        CronExpr::parse(t).map(|c| Schedule::Absolute(Box::new(c))).map_err(|e| format!("bad schedule {s:?}: {e}"))
    }

    /// When the next tick is due. `prev` is when the cron machine last
    /// rewound (relative schedules count from it). None = never.
    pub fn next(&self, now: Time, prev: Option<Time>) -> Option<Time> {
        match self {
            Schedule::Triggered => None,
            Schedule::Absolute(c) => c.next(now),
            Schedule::Relative(d) => {
                let base = prev.unwrap_or(now) + *d;
                Some(base.max(now))
            }
        }
    }

    pub fn is_absolute(&self) -> bool {
        matches!(self, Schedule::Absolute(_))
    }
}

/// Parses a Go duration (`300ms`, `10s`, `1m30s`, `1.5h`, `-5m`; units ns,
/// us, µs, ms, s, m, h; no days).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    use muster_core::time::{parse_go_duration_nanos, GoDurationError};
    let total = parse_go_duration_nanos(s).map_err(|e| match e {
        GoDurationError::Invalid => format!("invalid duration {s:?}"),
        GoDurationError::MissingUnit => format!("missing unit in duration {s:?} (use ns, us, ms, s, m or h)"),
        GoDurationError::UnknownUnit(u) => format!("unknown unit {u:?} in duration {s:?} (use ns, us, ms, s, m or h)"),
    })?;
    if total.abs() > i64::MAX as f64 {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(Duration::nanoseconds(total.round() as i64))
}

/// A duration the way users write it in configs: Go-style (`90s`, `1h30m`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.num_milliseconds();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if s >= 3600 {
        out += &format!("{}h", s / 3600);
        s %= 3600;
    }
    if s >= 60 {
        out += &format!("{}m", s / 60);
        s %= 60;
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn at(secs: i64) -> Time {
        Utc.timestamp_opt(secs, 0).single().expect("valid")
    }

    #[test]
    fn grammar() {
        assert_eq!(Schedule::parse("triggered"), Ok(Schedule::Triggered));
        assert_eq!(Schedule::parse(""), Ok(Schedule::Triggered));
        assert_eq!(Schedule::parse("continuously"), Ok(Schedule::Relative(Duration::zero())));
        assert_eq!(Schedule::parse("with 10m interval"), Ok(Schedule::Relative(Duration::minutes(10))));
        assert_eq!(Schedule::parse("with 1m30s interval"), Ok(Schedule::Relative(Duration::seconds(90))));
        assert_eq!(Schedule::parse("with 1.5h interval"), Ok(Schedule::Relative(Duration::minutes(90))));
        assert_eq!(Schedule::parse("with 300ms interval"), Ok(Schedule::Relative(Duration::milliseconds(300))));
        assert_eq!(Schedule::parse("with 0s interval"), Ok(Schedule::Relative(Duration::zero())));
        assert!(Schedule::parse("0 3 * * *").is_ok_and(|s| s.is_absolute()));
    }

    #[test]
    fn bad_schedules_are_explained() {
        for (s, needle) in [
            ("with -5m interval", "negative"),
            ("with 5 interval", "missing unit"),
            ("with 5d interval", "unknown unit"),
            ("with 5m", "with <duration> interval"),
            ("with 5m  interval", "with <duration> interval"),
            ("61 * * * *", "minute"),
            ("garbage", "field"),
        ] {
            let e = Schedule::parse(s).expect_err(s);
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn relative_counts_from_the_rewind_but_never_in_the_past() {
        let s = Schedule::parse("with 10s interval").expect("parses");
        assert_eq!(s.next(at(100), Some(at(95))), Some(at(105)));
        assert_eq!(s.next(at(100), Some(at(50))), Some(at(100)));
        assert_eq!(s.next(at(100), None), Some(at(110)));
        assert_eq!(Schedule::Triggered.next(at(100), None), None);
    }

    #[test]
    fn durations_print_go_style() {
        assert_eq!(format_duration(Duration::seconds(5400)), "1h30m");
        assert_eq!(format_duration(Duration::seconds(2)), "2s");
        assert_eq!(format_duration(Duration::milliseconds(300)), "300ms");
    }

    fn cron_strategy() -> impl Strategy<Value = String> {
        let field = |max: u32| {
            prop_oneof![
                Just("*".to_string()),
                (0..=max).prop_map(|n| n.to_string()),
                (1..=max).prop_map(|s| format!("*/{s}")),
                (0..=max, 0..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            ]
        };
        let dom = prop_oneof![Just("*".to_string()), (1u32..=28).prop_map(|n| n.to_string()), Just("L".to_string())];
        let month = prop_oneof![Just("*".to_string()), (1u32..=12).prop_map(|n| n.to_string())];
        (field(59), field(23), dom, month, field(6)).prop_map(|(m, h, d, mo, w)| format!("{m} {h} {d} {mo} {w}"))
    }

    proptest! {
        /// The next tick is strictly later, on a whole minute, matches the
        /// expression's minute/hour, and no earlier whole minute matched.
        #[test]
        fn next_tick_is_the_first_match_after_now(expr in cron_strategy(), secs in 0i64..4_000_000_000) {
            let c = CronExpr::parse(&expr).expect("generated expressions parse");
            let now = at(secs);
            if let Some(n) = c.next(now) {
                prop_assert!(n > now);
                prop_assert_eq!(n.timestamp() % 60, 0);
                // The tick itself matches: asking from one second before gives it back.
                prop_assert_eq!(c.next(n - Duration::seconds(1)), Some(n));
                // Nothing in between: the next tick after any earlier minute
                // within the gap is n itself (checked on a few samples).
                let gap = (n - now).num_minutes();
                for k in [0, gap / 3, gap / 2, (gap - 1).max(0)] {
                    let probe = now + Duration::minutes(k);
                    if probe < n {
                        prop_assert_eq!(c.next(probe), Some(n));
                    }
                }
            }
        }

        /// Relative schedules never tick in the past and never later than
        /// the interval after the rewind (or now).
        #[test]
        fn relative_next_is_bounded(interval in 0i64..100_000, now in 0i64..10_000_000, back in 0i64..200_000) {
            let s = Schedule::Relative(Duration::seconds(interval));
            let prev = at(now - back);
            let n = s.next(at(now), Some(prev)).expect("relative always ticks");
            prop_assert!(n >= at(now));
            prop_assert!(n <= at(now) + Duration::seconds(interval));
        }
    }
}
