//! Argument rules shared by the RPCs (docs/client-api.md#paging-and-filters).

use crate::auth::session::SessionKey;
use muster_api::convert;
use muster_api::prpc::Status;
use muster_core::{TaskId, Time};

/// `limit`: 0 → 100, negative or > 1000 → INVALID_ARGUMENT.
pub(crate) fn limit(v: i32) -> Result<usize, Status> {
    match v {
        0 => Ok(100),
        v if v < 0 => Err(Status::invalid_argument(format!("limit must be positive, got {v}"))),
        v if v > 1000 => Err(Status::invalid_argument(format!("limit must be less or equal to 1000, got {v}"))),
        v => Ok(v as usize),
    }
}

/// Which RPC a cursor belongs to: a cursor from one RPC is refused by another.
#[derive(Clone, Copy)]
pub(crate) enum CursorKind {
    ListTasks,
    ListTaskRequests,
    CancelTasks,
    ListBotEvents,
    ListBotTasks,
    ListBots,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            CursorKind::ListTasks => "lt",
            CursorKind::ListTaskRequests => "lr",
            CursorKind::CancelTasks => "ct",
            CursorKind::ListBotEvents => "be",
            CursorKind::ListBotTasks => "bt",
            CursorKind::ListBots => "lb",
        }
    }
}

/// Length of a cursor's signature (a truncated HMAC-SHA256).
const CURSOR_SIG_LEN: usize = 16;

/// The key cursors are signed with, derived from the deployment's session
/// key (shared by every replica, so a cursor works on any of them).
fn cursor_key(key: &SessionKey) -> SessionKey {
    key.derive("pagination cursor")
}

/// Wraps a store/scheduler position into an opaque, signed cursor:
/// base64url(kind tag ":" position, then a 16-byte HMAC of both). Only this
/// deployment can make one, so the store never sees a forged position.
pub(crate) fn cursor_out(key: &SessionKey, kind: CursorKind, inner: Option<String>) -> String {
    use base64::Engine as _;
    match inner {
        Some(c) => {
            let mut raw = format!("{}:{c}", kind.tag()).into_bytes();
            let sig = cursor_key(key).sign(&raw);
            raw.extend_from_slice(&sig[..CURSOR_SIG_LEN.min(sig.len())]);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        }
        None => String::new(),
    }
}

/// Unwraps a cursor of `kind`; empty → None; anything else (not ours, of
/// another RPC, tampered with) → INVALID_ARGUMENT.
pub(crate) fn cursor_in(key: &SessionKey, kind: CursorKind, c: &str) -> Result<Option<String>, Status> {
    use base64::Engine as _;
    if c.is_empty() {
        return Ok(None);
    }
    let bad = || Status::invalid_argument("bad pagination cursor");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    if raw.len() <= CURSOR_SIG_LEN {
        return Err(bad());
    }
    let (payload, sig) = raw.split_at(raw.len() - CURSOR_SIG_LEN);
    let full = cursor_key(key).sign(payload);
    // Constant-time comparison of the truncated tag.
    let same = full.len() >= CURSOR_SIG_LEN
        && full[..CURSOR_SIG_LEN].iter().zip(sig).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(bad());
    }
    let s = std::str::from_utf8(payload).map_err(|_| bad())?;
    let (tag, inner) = s.split_once(':').ok_or_else(bad)?;
    if tag != kind.tag() {
        return Err(bad());
    }
    Ok(Some(inner.to_string()))
}

/// `start`/`end` → times; both set and start >= end → INVALID_ARGUMENT.
pub(crate) fn time_range(
    start: Option<&muster_api::pb::Timestamp>,
    end: Option<&muster_api::pb::Timestamp>,
) -> Result<(Option<Time>, Option<Time>), Status> {
    let s = convert::opt_time_from_pb(start)?;
    let e = convert::opt_time_from_pb(end)?;
    if let (Some(s), Some(e)) = (s, e) {
        if s >= e {
            return Err(Status::invalid_argument("start time must be before the end time"));
        }
    }
    Ok((s, e))
}

pub(crate) fn task_id(s: &str) -> Result<TaskId, Status> {
    if s.is_empty() {
        return Err(Status::invalid_argument("task_id is required"));
    }
    Ok(TaskId::parse(s)?)
}

pub(crate) fn store_err(e: muster_store::StoreError) -> Status {
    Status::from(muster_core::Error::from(e))
}

/// The scheduler's view of this RPC's caller.
pub(crate) fn caller() -> muster_sched::Caller {
    muster_sched::Caller { identity: access().caller.identity.to_string(), high_priority_allowed: false }
}

/// The access context (snapshot + authenticated caller) of this RPC.
pub(crate) fn access() -> std::sync::Arc<crate::access::RequestAccess> {
    crate::access::current()
}
