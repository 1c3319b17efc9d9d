//! muster.v1: our own services (see `proto/muster/v1/ops.proto`), one file
//! per RPC: Fleet (drains) and Scheduler (why pending).

pub(crate) mod drain;
pub(crate) mod list_drains;
pub(crate) mod notifications;
pub(crate) mod undrain;
pub(crate) mod why_pending;

use muster_api::pb::muster::v1;
use muster_sched::DrainOutcome;

pub(crate) fn drain_response(out: &DrainOutcome) -> v1::DrainResponse {
    v1::DrainResponse {
        drain: Some(muster_api::convert_v1::drain_info(&out.drain)),
        changed: out.changed,
        bots: out.bots.clone(),
    }
}
