//! GetPermissions (docs/client-api.md#swarming-service): what the caller may do, never
//! PERMISSION_DENIED itself. Pools come from `pool:` tags; `list_bots` /
//! `list_tasks` are the configured pools the caller may list.

use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_access::perms;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, req: pb::PermissionsRequest) -> Result<pb::ClientPermissions, Status> {
    let ctx = access();
    let c = ctx.checker();
    let mut pools: Vec<String> = req.tags.iter().filter_map(|t| t.strip_prefix("pool:")).map(str::to_string).collect();
    pools.sort();
    pools.dedup();
    let on_bot = |perm: &str| {
        if req.bot_id.is_empty() {
            c.server_perm(perm)
        } else {
            c.bot_perm(&crate::access::bot_pools(&app, &req.bot_id), perm)
        }
    };
    let cancel_tasks = c.listing_perm(&pools, perms::POOLS_CANCEL_TASK);
    let cancel_task = if req.task_id.is_empty() {
        cancel_tasks
    } else {
        let id = task_id(&req.task_id)?;
        let r = app.store.get_result(id).await.map_err(store_err)?.ok_or_else(|| Status::not_found("no such task"))?;
        c.task_perm(&crate::access::result_acl(&app, &req.task_id, &r), perms::TASKS_CANCEL)
    };
    Ok(pb::ClientPermissions {
        delete_bot: on_bot(perms::POOLS_DELETE_BOT),
        delete_bots: c.listing_perm(&pools, perms::POOLS_DELETE_BOT),
        terminate_bot: on_bot(perms::POOLS_TERMINATE_BOT),
        get_configs: false,
        put_configs: false,
        cancel_task,
        get_bootstrap_token: c.server_perm(perms::POOLS_CREATE_BOT),
        cancel_tasks,
        list_bots: c.pools_with(perms::POOLS_LIST_BOTS),
        list_tasks: c.pools_with(perms::POOLS_LIST_TASKS),
    })
}
