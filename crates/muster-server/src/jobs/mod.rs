//! Scheduled jobs in the server (engine and rules live in muster-jobs):
//! building the engine with this server's managers (`noop`, `http`, and
//! `muster` on this fleet), its loops (the engine pass and the config
//! reload), the `scheduler.Scheduler` pRPC service ([`prpc`]) and the UI
//! pages ([`ui`]).

pub(crate) mod prpc;
pub(crate) mod ui;

use crate::State;
use muster_api::pb::scheduler as pb;
use muster_api::prpc::Status;
use muster_core::Clock;
use muster_jobs::access::JobPerm;
use muster_jobs::manager::muster::Muster;
use muster_jobs::{Engine, EngineConfig, Job, Managers};
use muster_sched::Scheduler;
use muster_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Server settings for jobs.
#[derive(Debug, Clone)]
pub struct JobsSettings {
    /// Directory holding `jobs.toml` and `luci-scheduler/<project>.cfg`.
    /// None = no job definitions (the API still answers, with no jobs).
    pub config_dir: Option<PathBuf>,
    /// How often the definitions are re-read (applied only when changed).
    pub reload_interval: Duration,
    /// How long a launch claim keeps other replicas from launching the same
    /// invocation (a crashed replica's launch is retried after it).
    pub launch_lease: Duration,
    /// Test hook, see `muster_jobs::EngineConfig::failpoint`.
    pub failpoint: Option<String>,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            config_dir: None,
            reload_interval: Duration::from_secs(10),
            launch_lease: Duration::from_secs(30),
            failpoint: None,
        }
    }
}

/// The engine for this server, when the store keeps jobs.
pub(crate) fn build_engine(
    store: &Arc<dyn Store>,
    sched: &Arc<Scheduler>,
    clock: &Arc<dyn Clock>,
    s: &JobsSettings,
) -> Option<Arc<Engine>> {
    let mut managers = Managers::builtin();
    managers.register(Arc::new(Muster::new(sched.clone())));
    let cfg = EngineConfig {
        launch_lease: chrono::Duration::from_std(s.launch_lease).unwrap_or(chrono::Duration::seconds(30)),
        failpoint: s.failpoint.clone(),
        ..EngineConfig::default()
    };
    match Engine::new(store.clone(), clock.clone(), managers, cfg) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            tracing::warn!("jobs are disabled: {}", e.message);
            None
        }
    }
}

/// Runs the engine loop and the config reloader until `shutdown`.
pub(crate) fn spawn(
    engine: Arc<Engine>,
    s: &JobsSettings,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut v = vec![tokio::spawn(engine.clone().run(shutdown.clone()))];
    if let Some(dir) = &s.config_dir {
        v.push(tokio::spawn(muster_jobs::config::watch(engine, dir.clone(), s.reload_interval, shutdown)));
    }
    v
}

/// The engine, or UNAVAILABLE.
pub(crate) fn engine_of(app: &State) -> Result<&Arc<Engine>, muster_core::Error> {
    app.jobs.as_ref().ok_or_else(|| {
        muster_core::Error::new(muster_core::ErrorKind::Unavailable, "jobs are not available on this server")
    })
}

fn engine(app: &State) -> Result<&Arc<Engine>, Status> {
    Ok(engine_of(app)?)
}

/// The caller's identity (the same resolution as the swarming.v2 API).
pub(crate) fn caller() -> String {
    crate::client_api::common::caller().identity
}

/// `<project>/<job>` from a JobRef.
fn job_id(r: Option<&pb::JobRef>) -> Result<String, Status> {
    match r {
        Some(r) if !r.project.is_empty() && !r.job.is_empty() => Ok(format!("{}/{}", r.project, r.job)),
        _ => Err(Status::invalid_argument("job_ref with project and job is required")),
    }
}

/// The job if the caller may see it and holds `perm` on it: a job the caller
/// may not see is NOT_FOUND, a missing permission PERMISSION_DENIED.
pub(crate) async fn require_job(
    app: &State,
    who: &str,
    job_id: &str,
    perm: JobPerm,
) -> Result<Job, muster_core::Error> {
    let job = engine_of(app)?.job(job_id).await?;
    let job = match job {
        Some(j) if j.state.enabled && app.job_access.allows(who, JobPerm::Get, &j.state.def.realm) => j,
        _ => return Err(muster_core::Error::not_found(format!("no such job {job_id:?}"))),
    };
    if perm != JobPerm::Get && !app.job_access.allows(who, perm, &job.state.def.realm) {
        return Err(muster_core::Error::permission(format!("{who} lacks {} on job {job_id}", perm.name())));
    }
    Ok(job)
}

async fn require(app: &State, job_id: &str, perm: JobPerm) -> Result<Job, Status> {
    Ok(require_job(app, &caller(), job_id, perm).await?)
}
