//! GetBotDimensions (docs/client-api.md#bots-service): union of dimension values across
//! bots. With `pool`: that pool's bots (needs pools.listBots there). Without:
//! every bot for a server-level viewer, else the union over the configured
//! pools the caller may list (possibly empty, never an error).

use crate::client_api::common::access;
use crate::State;
use muster_access::perms;
use muster_api::prpc::Status;
use muster_api::{convert, pb};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) async fn handle(app: State, req: pb::BotsDimensionsRequest) -> Result<pb::BotsDimensions, Status> {
    let ctx = access();
    let checker = ctx.checker();
    let dims = if !req.pool.is_empty() {
        checker.check_pool(&req.pool, perms::POOLS_LIST_BOTS)?;
        app.sched.bot_dimensions(Some(&req.pool))
    } else if checker.server_perm(perms::POOLS_LIST_BOTS) {
        app.sched.bot_dimensions(None)
    } else {
        let mut union: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for pool in checker.pools_with(perms::POOLS_LIST_BOTS) {
            for (k, vs) in app.sched.bot_dimensions(Some(&pool)) {
                union.entry(k).or_default().extend(vs);
            }
        }
        union.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect()
    };
    Ok(pb::BotsDimensions {
        bots_dimensions: dims.into_iter().map(|(key, value)| pb::StringListPair { key, value }).collect(),
        ts: Some(convert::timestamp(app.clock.now())),
    })
}
