//! muster.v1.Fleet/Undrain: lift a drain.

use crate::client_api::common::caller;
use crate::State;
use muster_api::convert_v1::drain_target_from_pb;
use muster_api::pb::muster::v1;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, req: v1::DrainRequest) -> Result<v1::DrainResponse, Status> {
    let target = drain_target_from_pb(&req)?;
    crate::access::check_drain(&app, &crate::access::current(), &target)?;
    let out = app.sched.undrain(target, &caller().identity, app.clock.now()).await?;
    Ok(super::drain_response(&out))
}
