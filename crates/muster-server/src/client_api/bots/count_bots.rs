//! CountBots (docs/client-api.md#bots-service).

use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

pub(crate) async fn handle(app: State, req: pb::BotsCountRequest) -> Result<pb::BotsCount, Status> {
    let now = app.clock.now();
    let pairs: Vec<(String, String)> = req.dimensions.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
    let filter = muster_core::validate::validate_dimension_filter(&pairs)?;
    crate::client_api::common::access()
        .checker()
        .check_listing(&crate::access::filter_pools(&filter), muster_access::perms::POOLS_LIST_BOTS)?;
    let c = app.sched.count_bots(&filter, now);
    let n = |v: u64| v.min(i32::MAX as u64) as i32;
    Ok(pb::BotsCount {
        now: Some(convert::timestamp(now)),
        count: n(c.count),
        quarantined: n(c.quarantined),
        maintenance: n(c.maintenance),
        dead: n(c.dead),
        busy: n(c.busy),
    })
}
