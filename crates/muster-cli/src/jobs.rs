//! `muster jobs`: scheduled jobs over the `scheduler.Scheduler` API.

use crate::args::{CommonArgs, Env};
use crate::client::Client;
use crate::error::{CliError, RpcContext};
use crate::format::{self, Table};
use clap::{Args, Subcommand};
use muster_api::pb::scheduler as pb;
use muster_api::pb::Empty;
use std::io::Write;

const SERVICE: &str = "scheduler.Scheduler";

/// `muster jobs`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(after_help = "Examples:
  muster jobs list -S http://127.0.0.1:8080
  muster jobs show infra/nightly
  muster jobs trigger infra/nightly --prop branch=main --tag reason:hotfix
  muster jobs pause infra/nightly --reason \"tree closed\"
  muster jobs resume infra/nightly
  muster jobs runs infra/nightly --limit 5
  muster jobs abort infra/nightly            # every running invocation
  muster jobs abort infra/nightly 8461229…   # one invocation
  muster jobs check /etc/muster/config       # validate definitions offline

Jobs are defined in <config-dir>/jobs.toml and <config-dir>/luci-scheduler/<project>.cfg
on the server; see docs/jobs.md.")]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: JobsAction,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum JobsAction {
    /// List jobs with their state and schedule.
    List(ListArgs),
    /// Show one job and its latest invocations.
    Show(JobArgs),
    /// Ask a job to run now (idempotent with --id).
    Trigger(TriggerArgs),
    /// Stop a job's schedule and drop its triggers (running invocations go on).
    Pause(PauseArgs),
    /// Re-arm a paused job's schedule.
    Resume(JobArgs),
    /// Abort a job's running invocations, or one invocation.
    Abort(AbortArgs),
    /// List a job's invocations, newest first.
    Runs(RunsArgs),
    /// Validate a configuration directory offline (no server needed).
    Check(CheckArgs),
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only this project's jobs.
    #[arg(long)]
    pub project: Option<String>,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct JobArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job, `<project>/<job>`.
    #[arg(value_name = "PROJECT/JOB")]
    pub job: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct TriggerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job, `<project>/<job>`.
    #[arg(value_name = "PROJECT/JOB")]
    pub job: String,
    /// Trigger id: triggering again with the same id does nothing (default: random).
    #[arg(long)]
    pub id: Option<String>,
    /// A property for the invocation, `key=value` (repeatable).
    #[arg(long = "prop", value_name = "KEY=VALUE")]
    pub props: Vec<String>,
    /// A tag for the invocation, `key:value` (repeatable).
    #[arg(long = "tag", value_name = "KEY:VALUE")]
    pub tags: Vec<String>,
    /// Shown with the trigger in the UI.
    #[arg(long, default_value = "")]
    pub title: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct PauseArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job, `<project>/<job>`.
    #[arg(value_name = "PROJECT/JOB")]
    pub job: String,
    /// Why (shown on the job page).
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct AbortArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job, `<project>/<job>`.
    #[arg(value_name = "PROJECT/JOB")]
    pub job: String,
    /// Only this invocation.
    #[arg(value_name = "INVOCATION_ID")]
    pub invocation: Option<i64>,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct RunsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The job, `<project>/<job>`.
    #[arg(value_name = "PROJECT/JOB")]
    pub job: String,
    /// At most this many (1-50).
    #[arg(long, default_value_t = 20)]
    pub limit: i32,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct CheckArgs {
    /// The configuration directory (holding jobs.toml and/or luci-scheduler/).
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
}

impl JobsAction {
    /// The server flags of the action (`check` has none).
    pub fn common(&self) -> Option<&CommonArgs> {
        Some(match self {
            JobsAction::List(a) => &a.common,
            JobsAction::Show(a) | JobsAction::Resume(a) => &a.common,
            JobsAction::Trigger(a) => &a.common,
            JobsAction::Pause(a) => &a.common,
            JobsAction::Abort(a) => &a.common,
            JobsAction::Runs(a) => &a.common,
            JobsAction::Check(_) => return None,
        })
    }
}

fn job_ref(s: &str) -> Result<pb::JobRef, CliError> {
    match s.split_once('/') {
        Some((p, j)) if !p.is_empty() && !j.is_empty() => Ok(pb::JobRef { project: p.to_string(), job: j.to_string() }),
        _ => Err(CliError::usage(format!("bad job {s:?}: expected <project>/<job>"))),
    }
}

fn ts(micros: i64) -> String {
    if micros == 0 {
        return "-".into();
    }
    let t = muster_core::time::from_micros(micros);
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn get_jobs(client: &Client, project: &str) -> Result<Vec<pb::Job>, CliError> {
    let req = pb::JobsRequest { project: project.to_string(), ..Default::default() };
    let r: pb::JobsReply = client.call(SERVICE, "GetJobs", &req).await.context(|| "listing jobs".to_string())?;
    Ok(r.jobs)
}

async fn find_job(client: &Client, job: &str) -> Result<pb::Job, CliError> {
    let r = job_ref(job)?;
    get_jobs(client, &r.project).await?.into_iter().find(|j| j.job_ref.as_ref() == Some(&r)).ok_or_else(|| {
        CliError::Rpc {
            context: format!("looking up job {job}"),
            error: crate::RpcError::Status(muster_api::prpc::Status::not_found(format!("no such job {job:?}"))),
        }
    })
}

fn state(j: &pb::Job) -> String {
    j.state.as_ref().map(|s| s.ui_status.clone()).unwrap_or_default()
}

fn name(j: &pb::Job) -> String {
    j.job_ref.as_ref().map(|r| format!("{}/{}", r.project, r.job)).unwrap_or_default()
}

fn runs_table(invs: &[pb::Invocation]) -> String {
    let mut t = Table::new(&["INVOCATION", "STATUS", "STARTED", "FINISHED", "TRIGGERED BY", "VIEW"]);
    for i in invs {
        let id = i.invocation_ref.as_ref().map(|r| r.invocation_id.to_string()).unwrap_or_default();
        t.row(vec![
            id,
            i.status.clone(),
            ts(i.started_ts),
            ts(i.finished_ts),
            i.triggered_by.clone(),
            i.view_url.clone(),
        ]);
    }
    t.render()
}

async fn invocations(client: &Client, job: &str, limit: i32) -> Result<Vec<pb::Invocation>, CliError> {
    let req = pb::InvocationsRequest { job_ref: Some(job_ref(job)?), page_size: limit, ..Default::default() };
    let r: pb::InvocationsReply =
        client.call(SERVICE, "GetInvocations", &req).await.context(|| format!("listing runs of {job}"))?;
    Ok(r.invocations)
}

/// Runs a `muster jobs` action (not `check`, which the binary runs).
pub async fn jobs(client: &Client, _env: &Env, a: &JobsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let json = a.action.common().is_some_and(|c| c.json);
    match &a.action {
        JobsAction::List(l) => {
            let jobs = get_jobs(client, l.project.as_deref().unwrap_or("")).await?;
            if json {
                return format::write_json(out, &format::list_output(&jobs)?).map(|_| 0);
            }
            let mut t = Table::new(&["JOB", "STATE", "SCHEDULE"]);
            for j in &jobs {
                t.row(vec![name(j), state(j), j.schedule.clone()]);
            }
            format::line(out, t.render().trim_end())?;
        }
        JobsAction::Show(s) => {
            let j = find_job(client, &s.job).await?;
            let runs = invocations(client, &s.job, 10).await?;
            if json {
                let v = serde_json::json!({ "job": format::snake(&j)?, "invocations": format::list_output(&runs)? });
                return format::write_json(out, &v).map(|_| 0);
            }
            format::line(
                out,
                &format!(
                    "Job:       {}\nState:     {}\nSchedule:  {}\nPaused:    {}\n",
                    name(&j),
                    state(&j),
                    j.schedule,
                    j.paused
                ),
            )?;
            format::line(out, runs_table(&runs).trim_end())?;
        }
        JobsAction::Trigger(t) => {
            let job = find_job(client, &t.job).await?;
            if job.paused {
                return Err(CliError::Refused(format!(
                    "job {} is paused: `muster jobs resume {}` first",
                    t.job, t.job
                )));
            }
            let mut props = serde_json::Map::new();
            for p in &t.props {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| CliError::usage(format!("bad --prop {p:?}: expected key=value")))?;
                props.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            for tag in &t.tags {
                if !tag.contains(':') {
                    return Err(CliError::usage(format!("bad --tag {tag:?}: expected key:value")));
                }
            }
            let properties: pbjson_types::Struct = serde_json::from_value(serde_json::Value::Object(props))
                .map_err(|e| CliError::usage(format!("bad properties: {e}")))?;
            let id = t.id.clone().unwrap_or_else(|| format!("cli:{}", uuid::Uuid::new_v4()));
            let trigger = pb::Trigger {
                id: id.clone(),
                title: t.title.clone(),
                url: String::new(),
                payload: Some(pb::trigger::Payload::Buildbucket(pb::BuildbucketTrigger {
                    properties: Some(properties),
                    tags: t.tags.clone(),
                })),
            };
            let req = pb::EmitTriggersRequest {
                batches: vec![pb::emit_triggers_request::Batch {
                    trigger: Some(trigger),
                    jobs: vec![job_ref(&t.job)?],
                }],
                timestamp: 0,
            };
            let _: Empty =
                client.call(SERVICE, "EmitTriggers", &req).await.context(|| format!("triggering {}", t.job))?;
            if json {
                return format::write_json(out, &serde_json::json!({ "trigger_id": id })).map(|_| 0);
            }
            format::line(out, &format!("Triggered {} (trigger id {id})", t.job))?;
        }
        JobsAction::Pause(p) => {
            let _: Empty =
                client.call(SERVICE, "PauseJob", &job_ref(&p.job)?).await.context(|| format!("pausing {}", p.job))?;
            if !json {
                format::line(out, &format!("Paused {}", p.job))?;
            }
        }
        JobsAction::Resume(r) => {
            let _: Empty =
                client.call(SERVICE, "ResumeJob", &job_ref(&r.job)?).await.context(|| format!("resuming {}", r.job))?;
            if !json {
                format::line(out, &format!("Resumed {}", r.job))?;
            }
        }
        JobsAction::Abort(a) => {
            match a.invocation {
                Some(inv) => {
                    let req = pb::InvocationRef { job_ref: Some(job_ref(&a.job)?), invocation_id: inv };
                    let _: Empty = client
                        .call(SERVICE, "AbortInvocation", &req)
                        .await
                        .context(|| format!("aborting invocation {inv} of {}", a.job))?;
                }
                None => {
                    let _: Empty = client
                        .call(SERVICE, "AbortJob", &job_ref(&a.job)?)
                        .await
                        .context(|| format!("aborting {}", a.job))?;
                }
            }
            if !json {
                format::line(out, &format!("Aborted {}", a.job))?;
            }
        }
        JobsAction::Runs(r) => {
            if !(1..=50).contains(&r.limit) {
                return Err(CliError::usage("--limit must be 1-50"));
            }
            let runs = invocations(client, &r.job, r.limit).await?;
            if json {
                return format::write_json(out, &format::list_output(&runs)?).map(|_| 0);
            }
            format::line(out, runs_table(&runs).trim_end())?;
        }
        JobsAction::Check(_) => {
            return Err(CliError::usage("`muster jobs check` runs in the muster binary"));
        }
    }
    Ok(0)
}
