//! GetStdout (docs/client-api.md#stdout): bytes from `offset`, at most `length`
//! (0 or > 16,384,000 clamps to 16,384,000), plus the current state.

use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

const MAX_LENGTH: i64 = 16_384_000;

pub(crate) async fn handle(app: State, req: pb::TaskIdWithOffsetRequest) -> Result<pb::TaskOutputResponse, Status> {
    let id = task_id(&req.task_id)?;
    if req.offset < 0 {
        return Err(Status::invalid_argument("offset must be non-negative"));
    }
    if req.length < 0 {
        return Err(Status::invalid_argument("length must be non-negative"));
    }
    let length = if req.length == 0 || req.length > MAX_LENGTH { MAX_LENGTH } else { req.length };
    let r = app.store.get_result(id).await.map_err(store_err)?.ok_or_else(|| Status::not_found("no such task"))?;
    access()
        .checker()
        .check_task(&crate::access::result_acl(&app, &req.task_id, &r), muster_access::perms::TASKS_GET)?;
    let output = app.store.read_output(r.output_of, req.offset as u64, length as u64).await.map_err(store_err)?;
    Ok(pb::TaskOutputResponse { output, state: convert::task_state_to_pb(r.state) as i32 })
}
