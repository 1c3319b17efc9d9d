//! What a job, a trigger and an invocation are, and how they are stored
//! (the JSON `data` documents of `muster_store::jobs` rows).

use crate::machine::CronState;
use crate::policy::Policy;
use crate::schedule::Schedule;
use muster_core::Time;
use muster_store::jobs::{InvocationRow, JobRow, TriggerRow};
use serde::{Deserialize, Serialize};

/// Upper bound of a trigger's JSON payload (properties, tags, data).
pub const MAX_TRIGGER_PAYLOAD: usize = 64 * 1024;
/// An invocation's debug log is cut in the middle beyond this many bytes.
pub const MAX_DEBUG_LOG: usize = 200_000;
/// At most this many pending triggers per job; older ones are dropped.
pub const MAX_PENDING_TRIGGERS: usize = 1000;

/// An invocation's status (upstream's names and meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Starting,
    Retrying,
    Running,
    Succeeded,
    Failed,
    /// Kept for compatibility; never produced.
    Overrun,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "STARTING",
            Status::Retrying => "RETRYING",
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Overrun => "OVERRUN",
            Status::Aborted => "ABORTED",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "STARTING" => Status::Starting,
            "RETRYING" => Status::Retrying,
            "RUNNING" => Status::Running,
            "SUCCEEDED" => Status::Succeeded,
            "FAILED" => Status::Failed,
            "OVERRUN" => Status::Overrun,
            "ABORTED" => Status::Aborted,
            _ => return None,
        })
    }
    /// Not launched yet.
    pub fn is_initial(self) -> bool {
        matches!(self, Status::Starting | Status::Retrying)
    }
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Overrun | Status::Aborted)
    }
}

/// Which task manager runs a job, and its parameters (validated by it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub kind: String,
    pub params: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// A `job {}`: does work.
    #[default]
    Job,
    /// A `trigger {}`: polls and emits triggers to the jobs it lists.
    Trigger,
}

/// A job as defined in configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDef {
    pub project: String,
    pub id: String,
    /// `<project>:<realm>`.
    pub realm: String,
    pub flavor: Flavor,
    pub schedule: String,
    pub disabled: bool,
    pub policy: Policy,
    /// Jobs (ids in the same project) this job triggers: a trigger stanza
    /// forwards the triggers it emits; a job sends one when it succeeds.
    pub triggers: Vec<String>,
    pub task: TaskSpec,
    /// Beyond upstream: a running invocation older than this is failed.
    pub invocation_timeout_secs: Option<i64>,
}

impl JobDef {
    pub fn job_id(&self) -> String {
        format!("{}/{}", self.project, self.id)
    }
    /// The schedule, parsed (configs are validated at load).
    pub fn parsed_schedule(&self) -> Schedule {
        Schedule::parse(&self.schedule).unwrap_or(Schedule::Triggered)
    }
    pub fn triggered_job_ids(&self) -> Vec<String> {
        self.triggers.iter().map(|t| format!("{}/{}", self.project, t)).collect()
    }
}

/// Who paused a job, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseInfo {
    pub by: String,
    pub at: Time,
    pub reason: String,
}

/// The last finished invocation (for listings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub inv_id: i64,
    pub status: Status,
    pub finished: Time,
}

/// A job's durable state (the job row's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub def: JobDef,
    /// Digest of the configuration the definition came from.
    pub revision: String,
    /// False when removed from configuration, `disabled`, or invalid.
    pub enabled: bool,
    /// Why the definition was refused (the job is then disabled).
    pub problem: Option<String>,
    pub paused: Option<PauseInfo>,
    pub cron: CronState,
    /// Unfinished invocations.
    pub active: Vec<i64>,
    pub last_triage: Option<Time>,
    /// The newest finished invocations (newest first, a few).
    pub recent: Vec<LastRun>,
}

impl JobState {
    /// The schedule in effect: "triggered" while paused or disabled.
    pub fn effective_schedule(&self) -> Schedule {
        if self.paused.is_some() || !self.enabled {
            Schedule::Triggered
        } else {
            self.def.parsed_schedule()
        }
    }

    /// Upstream's public state: RUNNING, DISABLED, PAUSED, SCHEDULED, WAITING.
    pub fn ui_status(&self) -> &'static str {
        if !self.active.is_empty() {
            "RUNNING"
        } else if !self.enabled {
            "DISABLED"
        } else if self.paused.is_some() {
            "PAUSED"
        } else if self.cron.tick.is_some() {
            "SCHEDULED"
        } else {
            "WAITING"
        }
    }

    pub fn next_run(&self) -> Option<Time> {
        self.cron.tick.as_ref().map(|t| t.when)
    }
}

/// A job row, decoded.
#[derive(Debug, Clone)]
pub struct Job {
    pub job_id: String,
    pub version: i64,
    pub state: JobState,
}

impl Job {
    pub fn from_row(r: &JobRow) -> Result<Job, String> {
        let state = serde_json::from_str(&r.data).map_err(|e| format!("job {}: bad stored state: {e}", r.job_id))?;
        Ok(Job { job_id: r.job_id.clone(), version: r.version, state })
    }
    pub fn row(&self) -> Result<JobRow, String> {
        Ok(JobRow {
            job_id: self.job_id.clone(),
            project: self.state.def.project.clone(),
            version: self.version,
            data: serde_json::to_string(&self.state).map_err(|e| format!("encoding job state: {e}"))?,
        })
    }
}

/// What a trigger asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A schedule tick.
    Cron { generation: i64 },
    /// The UI's or CLI's "trigger now".
    Webui,
    /// Opaque data (upstream's noop trigger).
    Noop { data: String },
    /// Properties and tags for the invocation (API callers).
    Api {
        #[serde(default)]
        properties: serde_json::Value,
        #[serde(default)]
        tags: Vec<String>,
    },
    /// Another job's invocation finished.
    Invocation { job: String, inv_id: i64, status: Status },
}

/// A request to run a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub created: Time,
    #[serde(default)]
    pub order_in_batch: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
    /// The user who emitted it (API, UI, CLI).
    #[serde(default)]
    pub emitted_by_user: Option<String>,
    /// The job and invocation that emitted it.
    #[serde(default)]
    pub emitter_job: Option<String>,
    #[serde(default)]
    pub emitter_inv: Option<i64>,
    pub payload: Payload,
}

impl Trigger {
    pub fn row(&self, job_id: &str) -> Result<TriggerRow, String> {
        Ok(TriggerRow {
            job_id: job_id.to_string(),
            trigger_id: self.id.clone(),
            created: self.created,
            order_in_batch: self.order_in_batch,
            consumed_by: None,
            consumed_at: None,
            data: serde_json::to_string(self).map_err(|e| format!("encoding trigger: {e}"))?,
        })
    }
    pub fn from_row(r: &TriggerRow) -> Result<Trigger, String> {
        serde_json::from_str(&r.data).map_err(|e| format!("trigger {}: bad stored data: {e}", r.trigger_id))
    }
}

/// Who holds the right to launch an invocation now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: Time,
}

/// A timer an invocation asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerData {
    pub title: String,
    pub payload: Vec<u8>,
    pub created: Time,
}

/// An invocation's document (the row's data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationData {
    pub realm: String,
    pub triggered_by: Option<String>,
    pub properties: serde_json::Value,
    pub tags: Vec<String>,
    pub incoming: Vec<Trigger>,
    pub outgoing: Vec<Trigger>,
    /// The task definition and configuration revision at creation.
    pub task: TaskSpec,
    pub revision: String,
    pub triggered_job_ids: Vec<String>,
    pub flavor: Flavor,
    pub finished: Option<Time>,
    pub debug_log: String,
    /// Launch attempts so far.
    pub retry_count: i64,
    pub view_url: String,
    /// The task manager's own state.
    pub task_data: serde_json::Value,
    /// Earliest time of the next launch attempt.
    pub next_attempt: Time,
    pub lease: Option<Lease>,
    pub timeout_secs: Option<i64>,
    /// Why it finished, in one line (the job shows it).
    pub summary: String,
}

/// An invocation row, decoded.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: i64,
    pub job_id: String,
    pub started: Time,
    pub status: Status,
    pub mutation_count: i64,
    pub aborted_by: Option<String>,
    pub data: InvocationData,
}

impl Invocation {
    pub fn from_row(r: &InvocationRow) -> Result<Invocation, String> {
        Ok(Invocation {
            id: r.inv_id,
            job_id: r.job_id.clone(),
            started: r.started,
            status: Status::parse(&r.status)
                .ok_or_else(|| format!("invocation {}: unknown status {:?}", r.inv_id, r.status))?,
            mutation_count: r.mutation_count,
            aborted_by: r.aborted_by.clone(),
            data: serde_json::from_str(&r.data)
                .map_err(|e| format!("invocation {}: bad stored data: {e}", r.inv_id))?,
        })
    }
    pub fn row(&self) -> Result<InvocationRow, String> {
        Ok(InvocationRow {
            inv_id: self.id,
            job_id: self.job_id.clone(),
            started: self.started,
            status: self.status.as_str().to_string(),
            finished: self.status.is_final(),
            mutation_count: self.mutation_count,
            aborted_by: self.aborted_by.clone(),
            data: serde_json::to_string(&self.data).map_err(|e| format!("encoding invocation: {e}"))?,
        })
    }

    /// Appends `[HH:MM:SS.mmm] msg` lines to the debug log, cutting its
    /// middle when it grows past [`MAX_DEBUG_LOG`].
    pub fn log(&mut self, now: Time, msg: &str) {
        for line in msg.lines() {
            self.data.debug_log.push_str(&format!("[{}] {line}\n", now.format("%H:%M:%S%.3f")));
        }
        trim_log(&mut self.data.debug_log);
    }
}

const CUT_MARKER: &str = "--- the log has been cut here ---\n";

/// Keeps at least the first 50 and the last 100 lines, cutting the middle.
pub fn trim_log(log: &mut String) {
    if log.len() <= MAX_DEBUG_LOG {
        return;
    }
    let lines: Vec<&str> = log.split_inclusive('\n').collect();
    let head: String = lines.iter().take(50).copied().collect();
    let mut tail_lines = Vec::new();
    let mut tail_len = 0;
    for l in lines.iter().skip(50).rev() {
        if tail_lines.len() >= 100 && head.len() + tail_len + l.len() + CUT_MARKER.len() > MAX_DEBUG_LOG {
            break;
        }
        tail_len += l.len();
        tail_lines.push(*l);
    }
    tail_lines.reverse();
    let mut out = head;
    if tail_lines.len() + 50 < lines.len() {
        out.push_str(CUT_MARKER);
    }
    for l in tail_lines {
        out.push_str(l);
    }
    *log = out;
}

/// An invocation id: sorts newest first (bit 63 clear; 43 bits of NOT(ms
/// since 2015-01-01 UTC); 16 random bits; 4 zero bits).
pub fn new_invocation_id(now: Time, random16: u16) -> i64 {
    const EPOCH_2015_MS: i64 = 1_420_070_400_000;
    let ms = (now.timestamp_millis() - EPOCH_2015_MS).max(0) as u64;
    let inverted = !ms & ((1u64 << 43) - 1);
    ((inverted << 20) | ((random16 as u64) << 4)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn ids_sort_newest_first() {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("valid");
        let a = new_invocation_id(t, 65535);
        let b = new_invocation_id(t + Duration::milliseconds(1), 0);
        assert!(b < a && b > 0);
        assert_eq!(a & 0xf, 0);
    }

    #[test]
    fn log_is_bounded_keeping_head_and_tail() {
        let mut inv_log = String::new();
        for i in 0..20_000 {
            inv_log.push_str(&format!("line {i} {}\n", "x".repeat(20)));
        }
        trim_log(&mut inv_log);
        assert!(inv_log.len() <= MAX_DEBUG_LOG);
        assert!(inv_log.starts_with("line 0 "));
        assert!(inv_log.contains("line 49 "));
        assert!(inv_log.contains(CUT_MARKER));
        assert!(inv_log.ends_with(&format!("line 19999 {}\n", "x".repeat(20))));
    }
}
