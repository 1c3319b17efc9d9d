//! ListBotTasks (docs/client-api.md#bots-service): the runs a bot executed (run view).
//! States that can never match a bot's run are refused, as upstream.

use super::bot_id;
use crate::client_api::common::{access, cursor_in, cursor_out, limit, store_err, time_range, CursorKind};
use crate::client_api::tasks::perf_allowed;
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_core::state::{SortQuery, StateQuery};
use muster_store::TaskQuery;

pub(crate) async fn handle(app: State, req: pb::BotTasksRequest) -> Result<pb::TaskListResponse, Status> {
    let now = app.clock.now();
    let id = bot_id(&req.bot_id)?;
    let state = convert::state_query_from_pb(req.state)?;
    if matches!(
        state,
        StateQuery::Pending
            | StateQuery::PendingRunning
            | StateQuery::Expired
            | StateQuery::Deduped
            | StateQuery::NoResource
            | StateQuery::Canceled
    ) {
        return Err(Status::invalid_argument(format!(
            "state {state:?} can never match a bot's tasks; use QUERY_ALL or a run state"
        )));
    }
    let sort = convert::sort_query_from_pb(req.sort)?;
    match sort {
        SortQuery::AbandonedTs => return Err(Status::invalid_argument("sort by abandoned time is not supported")),
        SortQuery::CompletedTs | SortQuery::StartedTs if state != StateQuery::All => {
            return Err(Status::invalid_argument("sorting by completed or started time requires QUERY_ALL"))
        }
        _ => {}
    }
    let (start, end) = time_range(req.start.as_ref(), req.end.as_ref())?;
    access().checker().check_bot(id, &crate::access::bot_pools(&app, id), muster_access::perms::POOLS_LIST_TASKS)?;
    let q = TaskQuery {
        state,
        sort,
        start,
        end,
        bot_id: Some(id.to_string()),
        limit: limit(req.limit)?,
        cursor: cursor_in(&app.sessions, CursorKind::ListBotTasks, &req.cursor)?,
        ..Default::default()
    };
    let page = app.store.list_results(&q).await.map_err(store_err)?;
    Ok(pb::TaskListResponse {
        cursor: cursor_out(&app.sessions, CursorKind::ListBotTasks, page.cursor),
        items: page
            .items
            .iter()
            .map(|r| convert::task_run_response(r, perf_allowed(r, req.include_performance_stats)))
            .collect(),
        now: Some(convert::timestamp(now)),
    })
}
