//! ListTasks (docs/client-api.md#tasks-service): summaries, newest first; state defaults
//! to QUERY_PENDING; only QUERY_CREATED_TS sorting.

use super::perf_allowed;
use crate::client_api::common::{access, cursor_in, cursor_out, limit, store_err, time_range, CursorKind};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_core::state::SortQuery;
use muster_store::TaskQuery;

/// Builds the store query shared by ListTasks, ListTaskRequests and CountTasks.
pub(crate) fn query(
    state: i32,
    sort: i32,
    tags: &[String],
    start: Option<&pb::Timestamp>,
    end: Option<&pb::Timestamp>,
) -> Result<TaskQuery, Status> {
    let sort = convert::sort_query_from_pb(sort)?;
    if sort != SortQuery::CreatedTs {
        return Err(Status::invalid_argument(format!("sort order {sort:?} is not supported currently")));
    }
    let (start, end) = time_range(start, end)?;
    let tags = muster_core::validate::validate_tag_filter(tags)?;
    // Listing ACL: pools.listTasks in every pool the tags name (none: server level).
    access().checker().check_listing(&crate::access::filter_pools(&tags), muster_access::perms::POOLS_LIST_TASKS)?;
    Ok(TaskQuery { state: convert::state_query_from_pb(state)?, sort, tags, start, end, ..Default::default() })
}

pub(crate) async fn handle(app: State, req: pb::TasksWithPerfRequest) -> Result<pb::TaskListResponse, Status> {
    let now = app.clock.now();
    let mut q = query(req.state, req.sort, &req.tags, req.start.as_ref(), req.end.as_ref())?;
    q.limit = limit(req.limit)?;
    q.cursor = cursor_in(&app.sessions, CursorKind::ListTasks, &req.cursor)?;
    let page = app.store.list_results(&q).await.map_err(store_err)?;
    Ok(pb::TaskListResponse {
        cursor: cursor_out(&app.sessions, CursorKind::ListTasks, page.cursor),
        items: page
            .items
            .iter()
            .map(|r| convert::task_result_response(r, perf_allowed(r, req.include_performance_stats)))
            .collect(),
        now: Some(convert::timestamp(now)),
    })
}
