//! CancelTasks (docs/client-api.md#tasks-service): tags required; pending (and running with
//! `kill_running`) tasks matching them are cancelled, newest first.

use crate::client_api::common::{access, cursor_in, cursor_out, limit, time_range, CursorKind};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_core::state::StateQuery;
use muster_store::TaskQuery;

pub(crate) async fn handle(app: State, req: pb::TasksCancelRequest) -> Result<pb::TasksCancelResponse, Status> {
    let now = app.clock.now();
    if req.tags.is_empty() {
        return Err(Status::invalid_argument("tags are required when cancelling multiple tasks"));
    }
    let (start, end) = time_range(req.start.as_ref(), req.end.as_ref())?;
    let tags = muster_core::validate::validate_tag_filter(&req.tags)?;
    access().checker().check_listing(&crate::access::filter_pools(&tags), muster_access::perms::POOLS_CANCEL_TASK)?;
    let q = TaskQuery {
        state: if req.kill_running { StateQuery::PendingRunning } else { StateQuery::Pending },
        tags,
        start,
        end,
        limit: limit(req.limit)?,
        cursor: cursor_in(&app.sessions, CursorKind::CancelTasks, &req.cursor)?,
        ..Default::default()
    };
    let out = app.sched.cancel_tasks(q, req.kill_running, now).await?;
    Ok(pb::TasksCancelResponse {
        cursor: cursor_out(&app.sessions, CursorKind::CancelTasks, out.cursor),
        now: Some(convert::timestamp(now)),
        matched: out.matched.min(i32::MAX as usize) as i32,
    })
}
