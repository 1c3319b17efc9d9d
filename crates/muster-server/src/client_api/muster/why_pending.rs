//! muster.v1.Scheduler/WhyPending: why a task waits.

use crate::State;
use muster_api::pb::muster::v1;
use muster_api::prpc::Status;
use muster_core::TaskId;

pub(crate) async fn handle(app: State, req: v1::WhyPendingRequest) -> Result<v1::WhyPendingResponse, Status> {
    if req.task_id.is_empty() {
        return Err(Status::invalid_argument("task_id is required"));
    }
    let id = TaskId::parse(&req.task_id).map_err(|e| Status::invalid_argument(e.message))?;
    let r = app
        .store
        .get_result(id)
        .await
        .map_err(crate::client_api::common::store_err)?
        .ok_or_else(|| Status::not_found("no such task"))?;
    crate::access::current()
        .checker()
        .check_task(&crate::access::result_acl(&app, &req.task_id, &r), muster_access::perms::TASKS_GET)?;
    let why = app.sched.why_pending(id, app.clock.now()).await?;
    Ok(muster_api::convert_v1::why_pending_response(&why))
}
