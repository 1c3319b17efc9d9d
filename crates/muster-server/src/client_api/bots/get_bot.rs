//! GetBot (docs/client-api.md#bots-service): a known bot, or one reconstructed from its
//! newest event with `deleted: true`, else NOT_FOUND.

use super::bot_id;
use crate::client_api::common::{access, store_err};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_store::EventQuery;

pub(crate) async fn handle(app: State, req: pb::BotRequest) -> Result<pb::BotInfo, Status> {
    let id = bot_id(&req.bot_id)?;
    access().checker().check_bot(id, &crate::access::bot_pools(&app, id), muster_access::perms::POOLS_LIST_BOTS)?;
    let now = app.clock.now();
    if let Some(b) = app.sched.get_bot(id, now) {
        return Ok(convert::bot_info(&b));
    }
    let q = EventQuery { bot_id: id.to_string(), limit: 1, ..Default::default() };
    let events = app.store.list_bot_events(&q).await.map_err(store_err)?;
    let e = events.items.first().ok_or_else(|| Status::not_found(format!("no such bot: {id}")))?;
    Ok(pb::BotInfo {
        bot_id: id.to_string(),
        external_ip: e.external_ip.clone(),
        authenticated_as: e.authenticated_as.clone(),
        last_seen_ts: Some(convert::timestamp(e.ts)),
        quarantined: e.quarantined,
        maintenance_msg: e.maintenance_msg.clone(),
        dimensions: convert::string_list_pairs(&e.dimensions),
        version: e.version.clone(),
        state: e.state_json.clone(),
        deleted: true,
        session_id: e.session_id.clone(),
        ..Default::default()
    })
}
