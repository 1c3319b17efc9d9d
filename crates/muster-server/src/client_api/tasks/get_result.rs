//! GetResult (docs/client-api.md#tasks-service, #result-view).

use super::perf_allowed;
use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::TaskIdWithPerfRequest) -> Result<pb::TaskResultResponse, Status> {
    let id = task_id(&req.task_id)?;
    let r = app.store.get_result(id).await.map_err(store_err)?.ok_or_else(|| Status::not_found("no such task"))?;
    access()
        .checker()
        .check_task(&crate::access::result_acl(&app, &req.task_id, &r), muster_access::perms::TASKS_GET)?;
    Ok(convert::task_result_response(&r, perf_allowed(&r, req.include_performance_stats)))
}
