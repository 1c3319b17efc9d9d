//! muster.v1.Notifications/List and /Retry: the task notification outbox
//! (docs/notifications.md#operating). Server administrators only.

use crate::client_api::common::access;
use crate::State;
use muster_api::convert::timestamp;
use muster_api::pb::muster::v1;
use muster_api::prpc::Status;
use muster_store::outbox::OutboxRow;

fn require_admin() -> Result<(), Status> {
    let ctx = access();
    if ctx.snap.is_member(ctx.caller.identity.as_str(), &ctx.caller.extra_groups, &ctx.snap.server_groups.admins) {
        return Ok(());
    }
    tracing::info!(caller = %ctx.caller.identity, "permission denied: notifications");
    Err(Status::from(muster_core::Error::permission(format!(
        "the caller \"{}\" may not manage notifications (server administrators only)",
        ctx.caller.identity
    ))))
}

fn info(r: &OutboxRow) -> v1::NotificationInfo {
    let task_state = muster_notify::message::Payload::of(r).map(|p| p.state).unwrap_or_default();
    v1::NotificationInfo {
        delivery_id: r.delivery_id.clone(),
        sink: r.sink.clone(),
        topic: r.topic.clone(),
        task_id: r.subject.clone(),
        event: r.event.clone(),
        update_id: r.update_id,
        state: r.state.clone(),
        attempts: r.attempts,
        last_error: r.last_error.clone(),
        created_ts: Some(timestamp(r.created)),
        next_attempt_ts: (r.state == muster_store::outbox::PENDING).then(|| timestamp(r.next_attempt_at)),
        finished_ts: r.finished_at.map(timestamp),
        task_state,
    }
}

pub(crate) async fn list(
    app: State,
    req: v1::ListNotificationsRequest,
) -> Result<v1::ListNotificationsResponse, Status> {
    require_admin()?;
    let limit = if req.limit <= 0 { 100 } else { req.limit.min(1000) as usize };
    let rows = muster_notify::admin::list(app.store.as_ref(), req.dead, limit).await?;
    Ok(v1::ListNotificationsResponse { items: rows.iter().map(info).collect() })
}

pub(crate) async fn retry(app: State, req: v1::RetryNotificationRequest) -> Result<v1::NotificationInfo, Status> {
    require_admin()?;
    if req.delivery_id.is_empty() {
        return Err(Status::invalid_argument("delivery_id is required"));
    }
    let now = app.clock.now();
    let row = muster_notify::admin::retry(app.store.as_ref(), &req.delivery_id, now).await?;
    tracing::info!(delivery_id = %row.delivery_id, caller = %access().caller.identity, "notification retry requested");
    Ok(info(&row))
}
