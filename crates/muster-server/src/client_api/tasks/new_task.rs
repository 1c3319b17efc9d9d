//! NewTask (docs/client-api.md#tasks-service, #new-task).

use crate::client_api::common::caller;
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::NewTaskRequest) -> Result<pb::TaskRequestMetadataResponse, Status> {
    let now = app.clock.now();
    let new = convert::new_task_request_from_pb(req);
    let out = app.sched.new_task(new, &caller(), now).await?;
    let request = convert::task_request_response(&out.request);
    Ok(match out.result {
        None => pb::TaskRequestMetadataResponse {
            task_id: String::new(),
            request: Some(pb::TaskRequestResponse { task_id: String::new(), ..request }),
            task_result: None,
        },
        Some(r) => pb::TaskRequestMetadataResponse {
            task_id: r.id.summary_id(),
            request: Some(request),
            task_result: Some(convert::task_result_response(&r, false)),
        },
    })
}
