//! Task results: the summary of a task and its single run (docs/client-api.md#task-states, #result-view).
//!
//! muster never retries a task internally, so one record carries both the
//! summary (id `…0`) and the run (id `…1`) views.

use crate::dims::BotDimensions;
use crate::ids::TaskId;
use crate::state::TaskState;
use crate::task::{CasReference, CipdPackage, CipdPins};
use crate::time::Time;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationStats {
    pub duration: f32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerformanceStats {
    pub bot_overhead: f32,
    pub isolated_download: Option<OperationStats>,
    pub isolated_upload: Option<OperationStats>,
    pub package_installation: Option<OperationStats>,
    pub cache_trim: Option<OperationStats>,
    pub named_caches_install: Option<OperationStats>,
    pub named_caches_uninstall: Option<OperationStats>,
    pub cleanup: Option<OperationStats>,
}

/// The mutable state of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    pub id: TaskId,
    /// Optimistic-concurrency version, bumped by every store write.
    pub version: i64,
    pub state: TaskState,
    /// Index of the active (or used) slice.
    pub current_slice: i32,
    pub created: Time,
    pub modified: Time,
    pub started: Option<Time>,
    pub completed: Option<Time>,
    pub abandoned: Option<Time>,
    pub bot_id: String,
    pub bot_dimensions: BotDimensions,
    pub bot_version: String,
    pub bot_idle_since: Option<Time>,
    pub exit_code: Option<i64>,
    pub duration: Option<f64>,
    pub failure: bool,
    pub internal_failure: bool,
    /// Kill requested while running; the bot is told `must_stop`.
    pub killing: bool,
    /// Running task without a ping past this is BOT_DIED.
    pub dead_after: Option<Time>,
    pub cost_usd: f64,
    pub cost_saved_usd: f64,
    /// Run id of the original task when deduplicated.
    pub deduped_from: String,
    /// Summary whose output this task reads (itself unless deduped).
    pub output_of: TaskId,
    pub cas_output_root: Option<CasReference>,
    pub cipd_pins: Option<CipdPins>,
    pub performance_stats: Option<PerformanceStats>,
    pub missing_cas: Vec<CasReference>,
    pub missing_cipd: Vec<CipdPackage>,
    /// None while never run, 1 once claimed, 0 when deduped.
    pub try_number: Option<i32>,
    /// Properties hash, set when this result is reusable for dedup.
    pub dedup_hash: Option<String>,
    /// Copied from the request for listings.
    pub name: String,
    pub tags: Vec<String>,
    pub user: String,
    pub server_versions: Vec<String>,
    /// Claim id (the poll request_uuid) that assigned this task to its bot.
    pub claim_id: String,
}

impl TaskResult {
    /// A new PENDING result for a request created at `created`.
    pub fn pending(id: TaskId, created: Time, name: &str, tags: &[String], user: &str) -> TaskResult {
        TaskResult {
            id,
            version: 0,
            state: TaskState::Pending,
            current_slice: 0,
            created,
            modified: created,
            started: None,
            completed: None,
            abandoned: None,
            bot_id: String::new(),
            bot_dimensions: BotDimensions::default(),
            bot_version: String::new(),
            bot_idle_since: None,
            exit_code: None,
            duration: None,
            failure: false,
            internal_failure: false,
            killing: false,
            dead_after: None,
            cost_usd: 0.0,
            cost_saved_usd: 0.0,
            deduped_from: String::new(),
            output_of: id,
            cas_output_root: None,
            cipd_pins: None,
            performance_stats: None,
            missing_cas: Vec::new(),
            missing_cipd: Vec::new(),
            try_number: None,
            dedup_hash: None,
            name: name.to_string(),
            tags: tags.to_vec(),
            user: user.to_string(),
            server_versions: Vec::new(),
            claim_id: String::new(),
        }
    }

    /// The API `run_id`: deduped_from when deduped, `<id>1` once claimed.
    pub fn run_id(&self) -> String {
        if !self.deduped_from.is_empty() {
            self.deduped_from.clone()
        } else if self.try_number == Some(1) {
            self.id.run_id()
        } else {
            String::new()
        }
    }

    /// Whether the task is deduplicated (COMPLETED with try_number 0).
    pub fn is_deduped(&self) -> bool {
        self.try_number == Some(0)
    }
}
