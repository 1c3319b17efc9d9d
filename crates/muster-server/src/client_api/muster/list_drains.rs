//! muster.v1.Fleet/ListDrains: every drain in force.

use crate::State;
use muster_api::pb::muster::v1;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, _req: v1::ListDrainsRequest) -> Result<v1::ListDrainsResponse, Status> {
    crate::access::current().checker().check_server(muster_access::perms::SERVERS_PEEK)?;
    let drains = app.sched.list_drains().iter().map(muster_api::convert_v1::drain_info).collect();
    Ok(v1::ListDrainsResponse { drains })
}
