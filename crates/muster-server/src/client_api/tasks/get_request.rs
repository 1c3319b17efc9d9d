//! GetRequest (docs/client-api.md#tasks-service, #stored-request).

use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::TaskIdRequest) -> Result<pb::TaskRequestResponse, Status> {
    let id = task_id(&req.task_id)?;
    let r = app.store.get_request(id).await.map_err(store_err)?.ok_or_else(|| Status::not_found("no such task"))?;
    access()
        .checker()
        .check_task(&crate::access::request_acl(&app, &req.task_id, &r), muster_access::perms::TASKS_GET)?;
    Ok(convert::task_request_response(&r))
}
