//! GetToken (docs/client-api.md#swarming-service). muster bots need no bootstrap token: access
//! to /bot_code is governed by the bot address allowlist and bot token, so
//! this returns an empty token rather than leaking the shared bot token to
//! unauthenticated callers.

use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(_app: State, _req: pb::Empty) -> Result<pb::BootstrapToken, Status> {
    Ok(pb::BootstrapToken { bootstrap_token: String::new() })
}
