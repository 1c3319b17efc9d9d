//! ListTaskRequests (docs/client-api.md#tasks-service): like ListTasks, returning requests.

use super::list_tasks::query;
use crate::client_api::common::{cursor_in, cursor_out, limit, store_err, CursorKind};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::TasksRequest) -> Result<pb::TaskRequestsResponse, Status> {
    let now = app.clock.now();
    let mut q = query(req.state, req.sort, &req.tags, req.start.as_ref(), req.end.as_ref())?;
    q.limit = limit(req.limit)?;
    q.cursor = cursor_in(&app.sessions, CursorKind::ListTaskRequests, &req.cursor)?;
    let page = app.store.list_requests(&q).await.map_err(store_err)?;
    Ok(pb::TaskRequestsResponse {
        cursor: cursor_out(&app.sessions, CursorKind::ListTaskRequests, page.cursor),
        items: page.items.iter().map(convert::task_request_response).collect(),
        now: Some(convert::timestamp(now)),
    })
}
