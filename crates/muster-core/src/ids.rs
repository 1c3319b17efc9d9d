//! The Swarming task id codec (docs/client-api.md#task-ids).
//!
//! A request value `R = (ms_since_2010 << 20) | (random16 << 4) | 0x1`.
//! Summary id = `hex(R) + "0"`, run id = `hex(R) + "1"`. Larger `R` = newer.

use crate::error::{Error, Result};
use crate::time::Time;
use chrono::{TimeZone, Utc};
use std::fmt;

/// The numeric request id `R` of a task. Displays as the summary id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub i64);

/// 2010-01-01T00:00:00Z in milliseconds since the Unix epoch.
const EPOCH_2010_MS: i64 = 1_262_304_000_000;

impl TaskId {
    /// Builds an id from creation time and 16 random bits.
    pub fn new(created: Time, random16: u16) -> TaskId {
        let ms = (created.timestamp_millis() - EPOCH_2010_MS).max(0) & ((1i64 << 43) - 1);
        TaskId((ms << 20) | ((random16 as i64) << 4) | 0x1)
    }

    /// Parses a summary (`…0`) or run (`…1`) id. The last hex digit is dropped.
    pub fn parse(s: &str) -> Result<TaskId> {
        if s.len() < 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::invalid(format!("bad task ID: {s:?}: must be lowercase hex, at least 2 characters")));
        }
        let body = &s[..s.len() - 1];
        let v =
            i64::from_str_radix(body, 16).map_err(|_| Error::invalid(format!("bad task ID: {s:?}: out of range")))?;
        if v <= 0 {
            return Err(Error::invalid(format!("bad task ID: {s:?}")));
        }
        Ok(TaskId(v))
    }

    /// Whether `s` names a run (ends in `1`) rather than a summary.
    pub fn is_run_id(s: &str) -> bool {
        s.ends_with('1')
    }

    /// The summary id, ending in `0`.
    pub fn summary_id(self) -> String {
        format!("{:x}0", self.0)
    }

    /// The run id, ending in `1`.
    pub fn run_id(self) -> String {
        format!("{:x}1", self.0)
    }

    /// The creation time encoded in the id (millisecond precision).
    pub fn created(self) -> Time {
        let ms = (self.0 >> 20) + EPOCH_2010_MS;
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}0", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_run_ids_share_the_request_value() {
        let t = Utc.with_ymd_and_hms(2044, 1, 2, 3, 4, 5).single().expect("valid date");
        let id = TaskId::new(t, 0xabcd);
        assert!(id.summary_id().ends_with('0'));
        assert!(id.run_id().ends_with('1'));
        assert_eq!(TaskId::parse(&id.summary_id()), Ok(id));
        assert_eq!(TaskId::parse(&id.run_id()), Ok(id));
        assert_eq!(id.created(), t);
    }

    #[test]
    fn upstream_example_id_parses() {
        let id = TaskId::parse("6663cfc78b41fb10").expect("valid");
        assert_eq!(id.summary_id(), "6663cfc78b41fb10");
        assert_eq!(id.run_id(), "6663cfc78b41fb11");
    }

    #[test]
    fn bad_ids_are_invalid_argument() {
        for s in ["", "0", "xyz0", "ABC0", "-10", "10000000000000000000000"] {
            let e = TaskId::parse(s).expect_err(s);
            assert_eq!(e.kind, crate::ErrorKind::InvalidArgument, "{s}");
        }
    }

    #[test]
    fn newer_ids_are_larger() {
        let t = Utc.with_ymd_and_hms(2044, 1, 2, 3, 4, 5).single().expect("valid date");
        let a = TaskId::new(t, 0xffff);
        let b = TaskId::new(t + chrono::Duration::milliseconds(1), 0);
        assert!(b > a);
    }
}
