//! GetToken (docs/client-api.md#swarming-service): server-level `pools.createBot` (bot
//! bootstrap group or administrators) gets an HMAC bootstrap token, valid
//! 1 h, recording who asked; it opens `/bot_code?tok=…`.

use crate::client_api::common::access;
use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, _req: pb::Empty) -> Result<pb::BootstrapToken, Status> {
    let ctx = access();
    ctx.checker().check_server(muster_access::perms::POOLS_CREATE_BOT)?;
    let (token, _exp) =
        muster_access::bootstrap::issue(&app.config.session_secret, ctx.caller.identity.as_str(), app.clock.now())
            .ok_or_else(|| Status::from(muster_core::Error::internal("cannot issue a bootstrap token")))?;
    Ok(pb::BootstrapToken { bootstrap_token: token })
}
