//! DeleteBot (docs/client-api.md#bots-service): forgets the bot; its events stay.

use super::bot_id;
use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, req: pb::BotRequest) -> Result<pb::DeleteResponse, Status> {
    let id = bot_id(&req.bot_id)?;
    crate::client_api::common::access().checker().check_bot(
        id,
        &crate::access::bot_pools(&app, id),
        muster_access::perms::POOLS_DELETE_BOT,
    )?;
    if !app.sched.delete_bot(id, app.clock.now()).await? {
        return Err(Status::not_found(format!("{id:?} not found")));
    }
    Ok(pb::DeleteResponse { deleted: true })
}
