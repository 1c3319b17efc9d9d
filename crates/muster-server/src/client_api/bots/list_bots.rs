//! ListBots (docs/client-api.md#bots-service): ascending bot id, filters, paged.

use crate::client_api::common::{access, cursor_in, cursor_out, limit, CursorKind};
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use muster_sched::BotQuery;

pub(crate) async fn handle(app: State, req: pb::BotsRequest) -> Result<pb::BotInfoListResponse, Status> {
    let now = app.clock.now();
    let pairs: Vec<(String, String)> = req.dimensions.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
    let dimensions = muster_core::validate::validate_dimension_filter(&pairs)?;
    access()
        .checker()
        .check_listing(&crate::access::filter_pools(&dimensions), muster_access::perms::POOLS_LIST_BOTS)?;
    let q = BotQuery {
        dimensions,
        quarantined: convert::nullable_bool_from_pb(req.quarantined)?,
        in_maintenance: convert::nullable_bool_from_pb(req.in_maintenance)?,
        is_dead: convert::nullable_bool_from_pb(req.is_dead)?,
        is_busy: convert::nullable_bool_from_pb(req.is_busy)?,
        limit: limit(req.limit)?,
        cursor: cursor_in(&app.sessions, CursorKind::ListBots, &req.cursor)?,
    };
    let page = app.sched.list_bots(&q, now);
    Ok(pb::BotInfoListResponse {
        cursor: cursor_out(&app.sessions, CursorKind::ListBots, page.cursor),
        items: page.items.iter().map(convert::bot_info).collect(),
        now: Some(convert::timestamp(now)),
        death_timeout: app.sched.config().bot_death_timeout.as_secs().min(i32::MAX as u64) as i32,
    })
}
