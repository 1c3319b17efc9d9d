//! Durable state of scheduled jobs (`muster-jobs`): job rows guarded by a
//! version (compare-and-set), triggers deduplicated by id, invocations
//! guarded by a mutation count, and timers.
//!
//! The rows carry the few columns queries need plus an opaque JSON `data`
//! document owned by muster-jobs; this crate knows no job rules. Writes go
//! through [`crate::Txn`] as [`crate::Write::Jobs`], so a tick, the trigger it
//! adds, the triggers a triage consumes and the invocations it creates commit
//! together or not at all.

use crate::Result;
use async_trait::async_trait;
use muster_core::Time;

/// A job: `job_id` is `<project>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub project: String,
    /// Compare-and-set counter, bumped by every committed [`JobWrite::PutJob`].
    pub version: i64,
    pub data: String,
}

/// A trigger of a job. `consumed_by` is None while pending, the invocation
/// that consumed it, or 0 when discarded. Consumed rows stay (deduplication)
/// until [`JobWrite::PruneTriggers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRow {
    pub job_id: String,
    pub trigger_id: String,
    pub created: Time,
    pub order_in_batch: i64,
    pub consumed_by: Option<i64>,
    pub consumed_at: Option<Time>,
    pub data: String,
}

/// An invocation (one run of a job). Ids sort newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRow {
    pub inv_id: i64,
    pub job_id: String,
    pub started: Time,
    pub status: String,
    pub finished: bool,
    /// Compare-and-set counter, bumped by every committed
    /// [`JobWrite::UpdateInvocation`].
    pub mutation_count: i64,
    /// Set by [`JobWrite::SetAbortedBy`] without touching the counter.
    pub aborted_by: Option<String>,
    pub data: String,
}

/// A timer of an invocation, due at `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRow {
    pub timer_id: String,
    pub job_id: String,
    pub inv_id: i64,
    pub due: Time,
    pub data: String,
}

/// A job mutation inside a [`crate::Txn`].
#[derive(Debug, Clone)]
pub enum JobWrite {
    /// `expect: None` inserts (conflict if the job exists); `Some(v)` updates
    /// only if the stored version is `v` (conflict otherwise); the stored
    /// version becomes `v + 1` (1 on insert). `row.version` is ignored.
    PutJob { row: JobRow, expect: Option<i64> },
    /// Adds a pending trigger unless one with this (job, id) exists, pending
    /// or consumed: a duplicate is a no-op, never a conflict.
    AddTrigger(TriggerRow),
    /// Marks these pending triggers consumed by `by` (0 = discarded).
    /// Conflict unless every one of them is still pending.
    ConsumeTriggers { job_id: String, ids: Vec<String>, by: i64, at: Time },
    /// Conflict if the id exists. `mutation_count` is stored as given.
    InsertInvocation(InvocationRow),
    /// Applies only if the stored count equals `row.mutation_count`; the
    /// stored count becomes that + 1. Leaves `aborted_by` alone.
    UpdateInvocation(InvocationRow),
    /// Records an abort request; never a conflict (missing row: no-op).
    SetAbortedBy { inv_id: i64, by: String },
    /// Adds a timer unless one with this id exists.
    PutTimer(TimerRow),
    /// Consumes a timer: conflict if it is gone (already delivered).
    DeleteTimer(String),
    /// Deletes triggers consumed before `before`.
    PruneTriggers { before: Time },
}

/// Reads of job state (the writes are [`crate::Write::Jobs`]).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Every job, by id.
    async fn list_jobs(&self) -> Result<Vec<JobRow>>;
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRow>>;
    /// A job's pending triggers, oldest first (created, order, id).
    async fn pending_triggers(&self, job_id: &str) -> Result<Vec<TriggerRow>>;
    /// Jobs with at least one pending trigger.
    async fn jobs_with_pending_triggers(&self) -> Result<Vec<String>>;
    /// A trigger, pending or consumed.
    async fn get_trigger(&self, job_id: &str, trigger_id: &str) -> Result<Option<TriggerRow>>;
    async fn get_invocation(&self, inv_id: i64) -> Result<Option<InvocationRow>>;
    /// A job's invocations, newest first, after the id `after` (paging).
    async fn list_invocations(&self, job_id: &str, after: Option<i64>, limit: usize) -> Result<Vec<InvocationRow>>;
    /// Every unfinished invocation.
    async fn active_invocations(&self) -> Result<Vec<InvocationRow>>;
    /// Timers due at or before `now`, earliest first.
    async fn due_timers(&self, now: Time, limit: usize) -> Result<Vec<TimerRow>>;
    /// An invocation's timers (pending ones).
    async fn invocation_timers(&self, inv_id: i64) -> Result<Vec<TimerRow>>;
}
