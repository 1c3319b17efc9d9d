//! CancelTask (docs/client-api.md#tasks-service): pending → CANCELED; running → killed only
//! with `kill_running`; already final → `{canceled: false}`.

use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, req: pb::TaskCancelRequest) -> Result<pb::CancelResponse, Status> {
    let id = task_id(&req.task_id)?;
    let r = app.store.get_result(id).await.map_err(store_err)?.ok_or_else(|| Status::not_found("no such task"))?;
    access()
        .checker()
        .check_task(&crate::access::result_acl(&app, &req.task_id, &r), muster_access::perms::TASKS_CANCEL)?;
    let out = app.sched.cancel_task(id, req.kill_running, app.clock.now()).await?;
    Ok(pb::CancelResponse { canceled: out.canceled, was_running: out.was_running })
}
