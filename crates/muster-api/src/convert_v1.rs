//! muster.v1 (our own services) ⇄ muster-core: drains and why-pending.

use crate::convert::{opt_timestamp, task_state_to_pb, timestamp};
use crate::pb::muster::v1;
use crate::pb::StringPair;
use crate::prpc::Status;
use muster_core::{Drain, DrainTarget, TaskDimensions};

/// The target of a DrainRequest: exactly one of bot_id, pool, dimensions.
pub fn drain_target_from_pb(r: &v1::DrainRequest) -> Result<DrainTarget, Status> {
    let given = [!r.bot_id.is_empty(), !r.pool.is_empty(), !r.dimensions.is_empty()].iter().filter(|b| **b).count();
    if given != 1 {
        return Err(Status::invalid_argument("give exactly one of bot_id, pool or dimensions"));
    }
    if !r.bot_id.is_empty() {
        return Ok(DrainTarget::Bot(r.bot_id.clone()));
    }
    if !r.pool.is_empty() {
        return Ok(DrainTarget::Pool(r.pool.clone()));
    }
    let mut pairs = Vec::with_capacity(r.dimensions.len());
    for p in &r.dimensions {
        if p.key.is_empty()
            || p.value.is_empty()
            || p.key.contains(':')
            || p.key.contains('\n')
            || p.value.contains('\n')
        {
            return Err(Status::invalid_argument(format!("bad dimension {}:{}", p.key, p.value)));
        }
        pairs.push((p.key.clone(), p.value.clone()));
    }
    Ok(DrainTarget::dimensions(pairs))
}

fn pairs(d: &TaskDimensions) -> Vec<StringPair> {
    d.0.iter().map(|(k, v)| StringPair { key: k.clone(), value: v.clone() }).collect()
}

pub fn drain_info(d: &Drain) -> v1::DrainInfo {
    let mut out = v1::DrainInfo {
        target: d.target.key(),
        description: d.target.describe(),
        reason: d.reason.clone(),
        created_by: d.created_by.clone(),
        created_ts: Some(timestamp(d.created)),
        ..Default::default()
    };
    match &d.target {
        DrainTarget::Bot(b) => out.bot_id = b.clone(),
        DrainTarget::Pool(p) => out.pool = p.clone(),
        DrainTarget::Dimensions(dims) => out.dimensions = pairs(dims),
    }
    out
}

pub fn why_pending_response(w: &muster_core::why::WhyPending) -> v1::WhyPendingResponse {
    v1::WhyPendingResponse {
        task_id: w.task_id.summary_id(),
        state: task_state_to_pb(w.state) as i32,
        summary: w.summary.clone(),
        current_slice: w.current_slice as i32,
        slices: w
            .slices
            .iter()
            .map(|s| v1::SliceWhy {
                index: s.index as i32,
                active: s.active,
                dimensions: pairs(&s.dimensions),
                bots: Some(v1::BotCounts {
                    matching: s.bots.matching as i32,
                    alive: s.bots.alive as i32,
                    idle: s.bots.idle as i32,
                    busy: s.bots.busy as i32,
                    quarantined: s.bots.quarantined as i32,
                    dead: s.bots.dead as i32,
                    drained: s.bots.drained as i32,
                }),
                limiting_dimension: s.limiting_dimension.clone(),
                summary: s.summary.clone(),
                queue_position: s.queue_position as i32,
                queue_length: s.queue_length as i32,
                ahead: s.ahead as i32,
                higher_priority_ahead: s.higher_priority_ahead as i32,
                dispatches_per_minute: s.dispatches_per_minute,
                estimated_start: opt_timestamp(s.estimated_start),
            })
            .collect(),
    }
}
