//! GetPermissions (docs/client-api.md#swarming-service). Without client authentication every
//! caller may do everything; pools are those the fleet reports.

use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, _req: pb::PermissionsRequest) -> Result<pb::ClientPermissions, Status> {
    let pools: Vec<String> =
        app.sched.bot_dimensions(None).into_iter().find(|(k, _)| k == "pool").map(|(_, v)| v).unwrap_or_default();
    Ok(pb::ClientPermissions {
        delete_bot: true,
        delete_bots: true,
        terminate_bot: true,
        cancel_task: true,
        get_bootstrap_token: true,
        cancel_tasks: true,
        list_bots: pools.clone(),
        list_tasks: pools,
        ..Default::default()
    })
}
