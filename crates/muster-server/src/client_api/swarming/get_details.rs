//! GetDetails (docs/client-api.md#swarming-service): server-level `servers.peek`.

use crate::client_api::common::access;
use crate::State;
use muster_api::pb;
use muster_api::prpc::Status;

pub(crate) async fn handle(app: State, _req: pb::Empty) -> Result<pb::ServerDetails, Status> {
    access().checker().check_server(muster_access::perms::SERVERS_PEEK)?;
    Ok(pb::ServerDetails {
        server_version: app.config.server_version.clone(),
        bot_version: app.bot_code.version.clone(),
        display_server_url_template: format!("{}/task?id=%s", app.config.external_url),
        ..Default::default()
    })
}
