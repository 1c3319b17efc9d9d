//! Generated swarming.v2 protobuf types (prost) with proto3-JSON serde (pbjson).
//!
//! Owns: the module layout of the generated code and [`Timestamp`]. The schema
//! lives in `proto/swarming/v2/swarming.proto`; `build.rs` generates the code.
//! Types are re-exported at this level, so use `muster_api::pb::NewTaskRequest`.
//! Enum fields are `i32` (proto3 open enums): compare with
//! `pb::TaskState::Completed as i32`, read with `pb::TaskState::try_from(v)`.

#![allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]

use chrono::{DateTime, SecondsFormat, Utc};

/// `google.rpc` (only `Status`).
pub mod google {
    /// `google.rpc.Status`: the error model used inside `BatchGetResultResponse`.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.rpc.serde.rs"));
    }
}

/// `swarming` packages.
pub mod swarming {
    /// `swarming.v2`: every message and enum of the client API.
    pub mod v2 {
        include!(concat!(env!("OUT_DIR"), "/swarming.v2.rs"));
        include!(concat!(env!("OUT_DIR"), "/swarming.v2.serde.rs"));
    }
}

/// `muster` packages: our own services (no Swarming equivalent).
pub mod muster {
    /// `muster.v1`: Fleet (drains) and Scheduler (why pending).
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/muster.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/muster.v1.serde.rs"));
    }
}

pub use swarming::v2::*;

/// `scheduler`: the LUCI Scheduler API (jobs), `proto/scheduler/scheduler.proto`.
pub mod scheduler {
    include!(concat!(env!("OUT_DIR"), "/scheduler.rs"));
    include!(concat!(env!("OUT_DIR"), "/scheduler.serde.rs"));
}

/// The encoded `FileDescriptorSet` of swarming.v2 (and its imports), for
/// reflection/discovery endpoints.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swarming_descriptor.bin"));

/// Well-known types used by the messages (`Empty` for GetDetails/GetToken,
/// `Any` inside `google.rpc.Status`).
pub use pbjson_types::{Any, Empty};

/// `google.protobuf.Timestamp`. Binary layout as upstream; JSON is RFC 3339
/// UTC with a `Z` suffix and 0, 3, 6 or 9 fractional digits
/// (`"2024-01-02T03:04:05.123Z"`); any offset is accepted on input.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0..=999_999_999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// As a chrono time; `None` when out of range or nanos are invalid.
    pub fn to_datetime(&self) -> Option<DateTime<Utc>> {
        let nanos = u32::try_from(self.nanos).ok().filter(|n| *n < 1_000_000_000)?;
        DateTime::from_timestamp(self.seconds, nanos)
    }

    /// From a chrono time.
    pub fn from_datetime(t: DateTime<Utc>) -> Timestamp {
        Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t =
            self.to_datetime().ok_or_else(|| serde::ser::Error::custom(format!("timestamp out of range: {self:?}")))?;
        serializer.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let t = DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)?;
        Ok(Timestamp::from_datetime(t.with_timezone(&Utc)))
    }
}
