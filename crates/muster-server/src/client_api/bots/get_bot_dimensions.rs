//! GetBotDimensions (docs/client-api.md#bots-service): union of dimension values across bots.

use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::BotsDimensionsRequest) -> Result<pb::BotsDimensions, Status> {
    let pool = (!req.pool.is_empty()).then_some(req.pool.as_str());
    let dims = app.sched.bot_dimensions(pool);
    Ok(pb::BotsDimensions {
        bots_dimensions: dims.into_iter().map(|(key, value)| pb::StringListPair { key, value }).collect(),
        ts: Some(convert::timestamp(app.clock.now())),
    })
}
