//! ListTaskStates (docs/client-api.md#tasks-service): states in request order; any unknown
//! task fails the whole call with `<task_id>: no such task`.

use crate::client_api::common::{access, store_err, task_id};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::TaskStatesRequest) -> Result<pb::TaskStates, Status> {
    if req.task_id.is_empty() {
        return Err(Status::invalid_argument("task_id is required"));
    }
    if req.task_id.len() > 1000 {
        return Err(Status::invalid_argument("at most 1000 task ids can be requested at once"));
    }
    let ids = req.task_id.iter().map(|s| task_id(s)).collect::<Result<Vec<_>, _>>()?;
    let results = app.store.get_results(&ids).await.map_err(store_err)?;
    let mut states = Vec::with_capacity(results.len());
    let ctx = access();
    for (s, r) in req.task_id.iter().zip(results) {
        let r = r.ok_or_else(|| Status::not_found(format!("{s}: no such task")))?;
        if let Err(e) =
            ctx.checker().check_task(&crate::access::result_acl(&app, s, &r), muster_access::perms::TASKS_GET)
        {
            return Err(Status::from(muster_core::Error::new(e.kind, format!("{s}: {}", e.message))));
        }
        states.push(convert::task_state_to_pb(r.state) as i32);
    }
    Ok(pb::TaskStates { states })
}
