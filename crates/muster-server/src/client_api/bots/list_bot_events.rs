//! ListBotEvents (docs/client-api.md#bots-service): newest first, paged.

use super::bot_id;
use crate::client_api::common::{access, cursor_in, cursor_out, limit, store_err, time_range, CursorKind};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_store::EventQuery;

pub(crate) async fn handle(app: State, req: pb::BotEventsRequest) -> Result<pb::BotEventsResponse, Status> {
    let now = app.clock.now();
    let id = bot_id(&req.bot_id)?;
    access().checker().check_bot(id, &crate::access::bot_pools(&app, id), muster_access::perms::POOLS_LIST_BOTS)?;
    let (start, end) = time_range(req.start.as_ref(), req.end.as_ref())?;
    let q = EventQuery {
        bot_id: id.to_string(),
        start,
        end,
        limit: limit(req.limit)?,
        cursor: cursor_in(&app.sessions, CursorKind::ListBotEvents, &req.cursor)?,
    };
    let page = app.store.list_bot_events(&q).await.map_err(store_err)?;
    Ok(pb::BotEventsResponse {
        cursor: cursor_out(&app.sessions, CursorKind::ListBotEvents, page.cursor),
        items: page.items.iter().map(convert::bot_event_response).collect(),
        now: Some(convert::timestamp(now)),
    })
}
