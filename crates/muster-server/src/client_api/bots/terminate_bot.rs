//! TerminateBot (docs/client-api.md#bots-service): a termination task the bot picks up and
//! exits on; an existing pending one is reused.

use super::bot_id;
use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, req: pb::TerminateRequest) -> Result<pb::TerminateResponse, Status> {
    let id = bot_id(&req.bot_id)?;
    let reason = muster_core::validate::validate_terminate_reason(&req.reason)?;
    crate::client_api::common::access().checker().check_bot(
        id,
        &crate::access::bot_pools(&app, id),
        muster_access::perms::POOLS_TERMINATE_BOT,
    )?;
    let task = app.sched.terminate_bot(id, &reason, app.clock.now()).await?;
    Ok(pb::TerminateResponse { task_id: task.summary_id() })
}
