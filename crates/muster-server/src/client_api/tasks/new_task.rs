//! NewTask (docs/client-api.md#tasks-service, #new-task): authorized in upstream's order
//! (`access::authorize_new_task`), then created by the scheduler.

use crate::client_api::common::access;
use crate::State;
use muster_api::prpc::Status;
use muster_api::{convert, pb};

/// Response header carrying, for a task that ended NO_RESOURCE, the same
/// explanation `muster why` gives (one line, ASCII).
pub(crate) const WHY_HEADER: &str = "x-muster-why";

/// `limits_key` is who the per-caller rate limit and pending-bytes quota
/// count this call against; `size` the encoded request's bytes.
pub(crate) async fn handle(
    app: State,
    req: pb::NewTaskRequest,
    limits_key: &str,
    size: u64,
) -> Result<(pb::TaskRequestMetadataResponse, Vec<(&'static str, String)>), Status> {
    let now = app.clock.now();
    let mut new = convert::new_task_request_from_pb(req);
    let caller = crate::access::authorize_new_task(&access(), &mut new)?;
    check_topic(&app, &new.pubsub_topic)?;
    let out = create_limited(&app, new, &caller, limits_key, size, now).await?;
    if let Some(r) = &out.result {
        tracing::Span::current().record("task_id", r.id.summary_id());
    }
    let mut headers = Vec::new();
    if let Some(r) = out.result.as_ref().filter(|r| r.state == muster_core::TaskState::NoResource) {
        if let Ok(why) = app.sched.why_pending(r.id, now).await {
            tracing::info!(task_id = %r.id.summary_id(), why = %why.summary, "task NO_RESOURCE");
            let ascii: String =
                why.summary.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
            headers.push((WHY_HEADER, ascii));
        }
    }
    let request = convert::task_request_response(&out.request);
    let reply = match out.result {
        None => pb::TaskRequestMetadataResponse {
            task_id: String::new(),
            request: Some(pb::TaskRequestResponse { task_id: String::new(), ..request }),
            task_result: None,
        },
        Some(r) => pb::TaskRequestMetadataResponse {
            task_id: r.id.summary_id(),
            request: Some(request),
            task_result: Some(convert::task_result_response(&r, false)),
        },
    };
    Ok((reply, headers))
}

/// Creates `new` under the per-caller NewTask rate limit and pending-bytes
/// quota (docs/edge.md#newtask-rate-limit-and-quota): `limits_key` is who
/// the call counts against, `size` its bytes as received. Every way a client
/// creates a task (pRPC NewTask, the UI's new-task form and retry) goes
/// through here.
pub(crate) async fn create_limited(
    app: &crate::AppState,
    new: muster_core::task::NewTaskRequest,
    caller: &muster_sched::Caller,
    limits_key: &str,
    size: u64,
    now: muster_core::Time,
) -> Result<muster_sched::NewTaskOutcome, muster_core::Error> {
    let admitted = app
        .quotas
        .admit(limits_key, size, now, |id| app.sched.is_pending(id))
        .map_err(|s| muster_core::Error::new(muster_core::ErrorKind::ResourceExhausted, s.message))?;
    let out = app.sched.new_task(new, caller, now).await?;
    admitted.commit(out.result.as_ref().filter(|r| r.state == muster_core::TaskState::Pending).map(|r| r.id));
    Ok(out)
}

/// Only topics a configured sink takes (docs/notifications.md#topics).
fn check_topic(app: &State, topic: &str) -> Result<(), Status> {
    let snap = app.config.bot_config.as_ref().map(|c| c.get());
    let none = Default::default();
    let n = snap.as_ref().map_or(&none, |s| &s.notifications);
    muster_notify::check_topic(n, topic).map_err(Status::from)
}
