//! BatchGetResult (docs/client-api.md#tasks-service): 1..1000 ids, results in request order.

use super::perf_allowed;
use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::prpc::{Code, Status};
use muster_api::{convert, pb};
use std::collections::HashSet;

pub(crate) async fn handle(app: State, req: pb::BatchGetResultRequest) -> Result<pb::BatchGetResultResponse, Status> {
    if req.task_ids.is_empty() {
        return Err(Status::invalid_argument("task_ids is required"));
    }
    if req.task_ids.len() > 1000 {
        return Err(Status::invalid_argument("at most 1000 task_ids can be requested at once"));
    }
    let mut ids = Vec::with_capacity(req.task_ids.len());
    let mut seen = HashSet::new();
    for s in &req.task_ids {
        let id = task_id(s)?;
        if !seen.insert(id) {
            return Err(Status::invalid_argument(format!("task {s} is specified more than once")));
        }
        ids.push(id);
    }
    let results = app.store.get_results(&ids).await.map_err(store_err)?;
    let ctx = access();
    let checker = ctx.checker();
    let results = req
        .task_ids
        .iter()
        .zip(results)
        .map(|(tid, r)| pb::batch_get_result_response::ResultOrError {
            task_id: tid.clone(),
            outcome: Some(match r {
                Some(r) => match checker
                    .check_task(&crate::access::result_acl(&app, tid, &r), muster_access::perms::TASKS_GET)
                {
                    Ok(()) => pb::batch_get_result_response::result_or_error::Outcome::Result(
                        convert::task_result_response(&r, perf_allowed(&r, req.include_performance_stats)),
                    ),
                    Err(e) => pb::batch_get_result_response::result_or_error::Outcome::Error(convert::status_to_pb(
                        &Status::from(e),
                    )),
                },
                None => pb::batch_get_result_response::result_or_error::Outcome::Error(convert::status_to_pb(
                    &Status::new(Code::NotFound, "no such task"),
                )),
            }),
        })
        .collect();
    Ok(pb::BatchGetResultResponse { results })
}
