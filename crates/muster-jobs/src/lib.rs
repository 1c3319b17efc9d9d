//! muster-jobs: scheduled jobs with LUCI Scheduler semantics (see
//! `docs/jobs.md`).
//!
//! Owns: the schedule grammar ([`schedule`], [`cron`]), the cron machine
//! ([`machine`]), triggering policies ([`policy`]), the job/trigger/
//! invocation model ([`model`]), the engine ([`engine`]: ticks, triage,
//! launches, timers, aborts), task managers ([`manager`]: `noop`, `http`,
//! and `muster` for this server's fleet) and job definitions ([`config`]).
//! Must not: speak HTTP to clients (muster-server does) or hold SQL
//! (muster-store does).

pub mod access;
pub mod config;
pub mod cron;
pub mod engine;
pub mod machine;
pub mod manager;
pub mod model;
pub mod policy;
pub mod schedule;

pub use engine::{Catalog, Engine, EngineConfig};
pub use manager::{Controller, ManagerError, Managers, Notification, TaskManager, Traits};
pub use model::{Invocation, Job, JobDef, Status, Trigger};
pub use schedule::Schedule;
