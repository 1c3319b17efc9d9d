//! `scheduler.Scheduler` (the LUCI Scheduler API): decode → permission →
//! one engine call → encode. Served through the same pRPC dispatch (and so
//! the same caller resolution) as swarming.v2.

use super::{caller, job_id, require};
use crate::client_api::call;
use crate::State;
use axum::response::Response;
use muster_api::pb::scheduler as pb;
use muster_api::pb::Empty;
use muster_api::prpc::{Format, Status};
use muster_jobs::access::JobPerm;
use muster_jobs::model::{Invocation, Job, Payload, Trigger};

/// `timestamp` of EmitTriggers must be this close to now.
const MAX_SKEW_MICROS: i64 = 15 * 60 * 1_000_000;
/// Largest GetInvocations page.
const MAX_INVOCATIONS_PAGE: usize = 50;

pub(crate) async fn route(app: State, method: &str, i: Format, o: Format, b: &[u8]) -> Response {
    match method {
        "GetJobs" => call(app, i, o, b, get_jobs).await,
        "GetInvocations" => call(app, i, o, b, get_invocations).await,
        "GetInvocation" => call(app, i, o, b, get_invocation).await,
        "PauseJob" => call(app, i, o, b, pause_job).await,
        "ResumeJob" => call(app, i, o, b, resume_job).await,
        "AbortJob" => call(app, i, o, b, abort_job).await,
        "AbortInvocation" => call(app, i, o, b, abort_invocation).await,
        "EmitTriggers" => call(app, i, o, b, emit_triggers).await,
        _ => {
            let s = Status::unimplemented(format!(
                "method {method:?} in service \"scheduler.Scheduler\" is not implemented"
            ));
            crate::client_api::error_reply(&s, None)
        }
    }
}

fn job_ref(j: &Job) -> pb::JobRef {
    pb::JobRef { project: j.state.def.project.clone(), job: j.state.def.id.clone() }
}

fn job_pb(j: &Job) -> pb::Job {
    pb::Job {
        job_ref: Some(job_ref(j)),
        schedule: j.state.def.schedule.clone(),
        state: Some(pb::JobState { ui_status: j.state.ui_status().to_string() }),
        paused: j.state.paused.is_some(),
    }
}

pub(crate) fn invocation_pb(j: &Job, inv: &Invocation) -> pb::Invocation {
    pb::Invocation {
        invocation_ref: Some(pb::InvocationRef { job_ref: Some(job_ref(j)), invocation_id: inv.id }),
        started_ts: inv.started.timestamp_micros(),
        finished_ts: inv.data.finished.map(|t| t.timestamp_micros()).unwrap_or(0),
        triggered_by: inv.data.triggered_by.clone().unwrap_or_default(),
        status: inv.status.as_str().to_string(),
        r#final: inv.status.is_final(),
        config_revision: inv.data.revision.clone(),
        view_url: inv.data.view_url.clone(),
    }
}

async fn get_jobs(app: State, req: pb::JobsRequest) -> Result<pb::JobsReply, Status> {
    let engine = super::engine(&app)?;
    let who = caller();
    let mut jobs: Vec<pb::Job> = engine
        .jobs()
        .await?
        .iter()
        .filter(|j| j.state.enabled)
        .filter(|j| req.project.is_empty() || j.state.def.project == req.project)
        .filter(|j| req.cursor.is_empty() || j.job_id > req.cursor)
        .filter(|j| app.job_access.allows(&who, JobPerm::Get, &j.state.def.realm))
        .map(job_pb)
        .collect();
    let mut next_cursor = String::new();
    if req.page_size > 0 && jobs.len() > req.page_size as usize {
        jobs.truncate(req.page_size as usize);
        if let Some(r) = jobs.last().and_then(|j| j.job_ref.as_ref()) {
            next_cursor = format!("{}/{}", r.project, r.job);
        }
    }
    Ok(pb::JobsReply { jobs, next_cursor })
}

async fn get_invocations(app: State, req: pb::InvocationsRequest) -> Result<pb::InvocationsReply, Status> {
    let id = job_id(req.job_ref.as_ref())?;
    let job = require(&app, &id, JobPerm::Get).await?;
    let size = match req.page_size {
        n if n <= 0 => MAX_INVOCATIONS_PAGE,
        n => (n as usize).min(MAX_INVOCATIONS_PAGE),
    };
    let after = match req.cursor.as_str() {
        "" => None,
        c => Some(c.parse::<i64>().map_err(|_| Status::invalid_argument(format!("bad cursor {c:?}")))?),
    };
    let (invs, next) = super::engine(&app)?.invocations(&id, after, size).await?;
    Ok(pb::InvocationsReply {
        invocations: invs.iter().map(|i| invocation_pb(&job, i)).collect(),
        next_cursor: next.map(|c| c.to_string()).unwrap_or_default(),
    })
}

async fn get_invocation(app: State, req: pb::InvocationRef) -> Result<pb::Invocation, Status> {
    let id = job_id(req.job_ref.as_ref())?;
    let job = require(&app, &id, JobPerm::Get).await?;
    let inv = super::engine(&app)?.invocation(&id, req.invocation_id).await?;
    Ok(invocation_pb(&job, &inv))
}

async fn pause_job(app: State, req: pb::JobRef) -> Result<Empty, Status> {
    let id = job_id(Some(&req))?;
    require(&app, &id, JobPerm::Pause).await?;
    super::engine(&app)?.pause(&id, &caller(), "paused through the API").await?;
    Ok(Empty {})
}

async fn resume_job(app: State, req: pb::JobRef) -> Result<Empty, Status> {
    let id = job_id(Some(&req))?;
    require(&app, &id, JobPerm::Pause).await?;
    super::engine(&app)?.resume(&id).await?;
    Ok(Empty {})
}

async fn abort_job(app: State, req: pb::JobRef) -> Result<Empty, Status> {
    let id = job_id(Some(&req))?;
    require(&app, &id, JobPerm::Abort).await?;
    super::engine(&app)?.abort_job(&id, &caller()).await?;
    Ok(Empty {})
}

async fn abort_invocation(app: State, req: pb::InvocationRef) -> Result<Empty, Status> {
    let id = job_id(req.job_ref.as_ref())?;
    require(&app, &id, JobPerm::Abort).await?;
    super::engine(&app)?.abort_invocation(&id, req.invocation_id, &caller()).await?;
    Ok(Empty {})
}

/// The engine's payload for an API trigger; cron and webui are refused.
fn payload(t: &pb::Trigger) -> Result<Payload, Status> {
    use pb::trigger::Payload as P;
    let props = |s: &Option<pbjson_types::Struct>| s.as_ref().and_then(|s| serde_json::to_value(s).ok());
    Ok(match &t.payload {
        None => Payload::Api { properties: serde_json::Value::Null, tags: vec![] },
        Some(P::Cron(_)) | Some(P::Webui(_)) => {
            return Err(Status::invalid_argument(format!(
                "trigger {:?}: cron and webui triggers cannot be emitted",
                t.id
            )))
        }
        Some(P::Noop(n)) => Payload::Noop { data: n.data.clone() },
        Some(P::Buildbucket(b)) => {
            Payload::Api { properties: props(&b.properties).unwrap_or_default(), tags: b.tags.clone() }
        }
        Some(P::Gitiles(g)) => {
            let mut p = match props(&g.properties) {
                Some(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            p.insert("revision".into(), g.revision.clone().into());
            p.insert("repository".into(), g.repo.clone().into());
            p.insert("branch".into(), g.r#ref.clone().into());
            let mut tags = g.tags.clone();
            tags.push(format!("gitiles_ref:{}", g.r#ref));
            Payload::Api { properties: serde_json::Value::Object(p), tags }
        }
    })
}

async fn emit_triggers(app: State, req: pb::EmitTriggersRequest) -> Result<Empty, Status> {
    let engine = super::engine(&app)?;
    let now = app.clock.now();
    let who = caller();
    let created = match req.timestamp {
        0 => now,
        ts if (ts - now.timestamp_micros()).abs() > MAX_SKEW_MICROS => {
            return Err(Status::invalid_argument("timestamp must be within 15 minutes of the server's time"))
        }
        ts => muster_core::time::from_micros(ts),
    };
    let mut batches = Vec::new();
    for (i, b) in req.batches.iter().enumerate() {
        let t =
            b.trigger.as_ref().ok_or_else(|| Status::invalid_argument(format!("batch {i}: trigger is required")))?;
        if t.id.is_empty() {
            return Err(Status::invalid_argument(format!("batch {i}: trigger id is required")));
        }
        let mut jobs = Vec::new();
        for r in &b.jobs {
            let id = job_id(Some(r))?;
            require(&app, &id, JobPerm::Trigger).await?;
            jobs.push(id);
        }
        let trigger = Trigger {
            id: t.id.clone(),
            created,
            order_in_batch: i as i64,
            title: t.title.clone(),
            url: t.url.clone(),
            emitted_by_user: Some(who.clone()),
            emitter_job: None,
            emitter_inv: None,
            payload: payload(t)?,
        };
        batches.push((trigger, jobs));
    }
    engine.emit_triggers(&batches).await?;
    Ok(Empty {})
}
