//! muster-sched: the scheduler (docs/scheduling.md; docs/design.md#data-flow).
//!
//! Owns: the in-memory index of pending slices grouped into queues by exact
//! canonical dimension set, the live bot table (dimensions, liveness, parked
//! long-polls), the expiry/death timers, and every task state transition
//! (create, claim, update, complete, cancel, kill, expire, bot died).
//! Durable effects go through the muster-store [`Store`] trait; the store is
//! the arbiter (claims are compare-and-set).
//! Must not: know HTTP, JSON, SQL, or read the wall clock (every entry point
//! takes `now`).
//!
//! Decisions (see the op modules for details):
//! - Capacity = a matching bot that is alive and not quarantined (busy and
//!   in-maintenance bots count) — [`new_task`](crate::Scheduler::new_task).
//! - A poll with a new request_uuid while the bot's task never saw a
//!   task_update gets the same manifest again; after an update it abandons
//!   the task (BOT_DIED). After a restart running tasks count as started.
//! - `dead_after` and bot `last_seen` live in memory; bot records are
//!   flushed by `sweep`; a restart gives every running task a full ping
//!   tolerance and every bot a full death timeout.
//! - DeleteBot does not abandon the bot's running task.
//! - Slice deadlines are absolute (created + Σ expirations), as Swarming.

mod bots;
mod cancel;
mod drain;
mod gauges;
pub mod index;
mod new_task;
mod poll;
mod rebuild;
mod state;
mod sweep;
mod sync;
mod task_update;
mod why;

pub use drain::DrainOutcome;
pub use gauges::{BotGauge, FleetGauges, PendingGauge};
pub use muster_core::why::{BotCounts, SliceWhy, WhyPending};
pub use sync::ResyncReport;

/// A running task that reported (or was claimed) this recently is being
/// run by some process: a new handshake or poll under the same bot id does
/// not declare it dead (bots report at least every 10 s while running).
pub const LIVE_TASK_WINDOW: chrono::Duration = chrono::Duration::seconds(60);

use muster_core::dims::DimFilter;
use muster_core::result::PerformanceStats;
use muster_core::task::{CasReference, CipdPackage, CipdPins};
use muster_core::{BotDimensions, Error, TaskId, TaskRequest, TaskResult};
use muster_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedConfig {
    /// A bot silent this long is dead (its task, if any, BOT_DIED).
    pub bot_death_timeout: Duration,
    /// Longest a poll is parked before answering `sleep`.
    pub long_poll: Duration,
    /// Sleep suggested to a bot when there is nothing to do (after a long poll).
    pub idle_sleep: Duration,
    /// Dedup window (docs/client-api.md#deduplication).
    pub reusable_task_age: Duration,
    /// Recorded in results' server_versions.
    pub server_version: String,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            bot_death_timeout: Duration::from_secs(600),
            long_poll: Duration::from_secs(25),
            idle_sleep: Duration::from_secs(1),
            reusable_task_age: Duration::from_secs(7 * 24 * 3600),
            server_version: concat!("muster-", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Who is calling a client op.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Identity, e.g. `user:a@b.com`, `anonymous:anonymous`.
    pub identity: String,
    /// May use priority < 20.
    pub high_priority_allowed: bool,
}

#[derive(Debug, Clone)]
pub struct NewTaskOutcome {
    pub request: TaskRequest,
    /// None for evaluate_only.
    pub result: Option<TaskResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOutcome {
    pub canceled: bool,
    pub was_running: bool,
}

#[derive(Debug, Clone)]
pub struct CancelTasksOutcome {
    pub matched: usize,
    pub cursor: Option<String>,
}

/// What a bot says about itself on handshake/poll/event.
#[derive(Debug, Clone, Default)]
pub struct BotHello {
    pub bot_id: String,
    /// Effective dimensions (server-enforced dimensions already merged).
    pub dimensions: BotDimensions,
    /// The state dict as a JSON object string.
    pub state_json: String,
    pub version: String,
    pub session_id: String,
    pub external_ip: String,
    pub authenticated_as: String,
    /// Non-empty: the bot is quarantined (reported or invalid input).
    pub quarantined_msg: String,
    /// Non-empty: the bot is in maintenance.
    pub maintenance_msg: String,
}

/// What a poll resolves to.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// Run this task (the claim is committed).
    Run { request: Box<TaskRequest>, result: Box<TaskResult> },
    /// Exit gracefully: a termination task was claimed.
    Terminate { task_id: TaskId },
    /// Nothing to do; poll again after this long.
    Sleep { duration: Duration, quarantined: bool },
}

/// One task_update packet, already decoded.
#[derive(Debug, Clone, Default)]
pub struct TaskUpdateOp {
    pub bot_id: String,
    pub task_id: TaskId,
    /// `(output_chunk_start, bytes)`.
    pub output: Option<(u64, Vec<u8>)>,
    pub cost_usd: Option<f64>,
    pub exit_code: Option<i64>,
    pub duration: Option<f64>,
    pub hard_timeout: bool,
    pub io_timeout: bool,
    pub canceled: bool,
    pub performance_stats: Option<PerformanceStats>,
    pub cas_output_root: Option<CasReference>,
    pub cipd_pins: Option<CipdPins>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskUpdateOutcome {
    /// False when the task is unknown or not this bot's.
    pub ok: bool,
    /// Tell the bot to stop the task (killed, gone, or not its task).
    pub must_stop: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TaskErrorOp {
    pub bot_id: String,
    pub task_id: TaskId,
    pub message: String,
    pub missing_cas: Vec<CasReference>,
    pub missing_cipd: Vec<CipdPackage>,
}

/// Bot listing filter (ListBots / CountBots).
#[derive(Debug, Clone, Default)]
pub struct BotQuery {
    pub dimensions: Vec<DimFilter>,
    pub quarantined: muster_core::state::NullableBool,
    pub in_maintenance: muster_core::state::NullableBool,
    pub is_dead: muster_core::state::NullableBool,
    pub is_busy: muster_core::state::NullableBool,
    pub limit: usize,
    /// Resume after this bot id (ascending order).
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BotsCount {
    pub count: u64,
    pub quarantined: u64,
    pub maintenance: u64,
    pub dead: u64,
    pub busy: u64,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub slices_expired: usize,
    pub tasks_bot_died: usize,
    pub bots_dead: usize,
}

/// The scheduler. One per server process.
///
/// Every op is implemented in the module named after it; the in-memory
/// state lives behind one synchronous lock that is never held across IO.
pub struct Scheduler {
    store: Arc<dyn Store>,
    cfg: SchedConfig,
    state: parking_lot::Mutex<state::State>,
}

impl Scheduler {
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// The store this scheduler commits to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Number of pending slices in the in-memory index.
    pub fn pending_count(&self) -> usize {
        self.state.lock().index.len()
    }

    /// Number of long-polls currently parked.
    pub fn parked_count(&self) -> usize {
        self.state.lock().parked.len()
    }

    /// Whether [`Scheduler::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.state.lock().closing
    }

    /// The server is shutting down: every parked poll answers `sleep` now
    /// (so its bot comes back to whichever server runs next without waiting
    /// out the long poll) and later polls are not parked. Idempotent.
    pub fn close(&self) {
        let parked = {
            let mut st = self.state.lock();
            st.closing = true;
            std::mem::take(&mut st.parked)
        };
        // Dropping the senders wakes the polls (outside the lock).
        drop(parked);
    }
}
