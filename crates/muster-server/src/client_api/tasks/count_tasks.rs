//! CountTasks (docs/client-api.md#tasks-service): `start` required, `end` defaults to now.

use super::list_tasks::query;
use crate::client_api::common::store_err;
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::TasksCountRequest) -> Result<pb::TasksCount, Status> {
    let now = app.clock.now();
    if req.start.is_none() {
        return Err(Status::invalid_argument("start timestamp is required"));
    }
    let mut q = query(req.state, 0, &req.tags, req.start.as_ref(), req.end.as_ref())?;
    if q.end.is_none() {
        q.end = Some(now);
    }
    let count = app.store.count_results(&q).await.map_err(store_err)?;
    Ok(pb::TasksCount { count: count.min(i32::MAX as u64) as i32, now: Some(convert::timestamp(now)) })
}
