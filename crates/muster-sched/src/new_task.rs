//! NewTask (docs/client-api.md#tasks-service, #slices-and-capacity, #deduplication): validate, idempotency by
//! request_uuid, dedup of idempotent slices, capacity / slice selection,
//! one durable commit, then index insert and wake of a parked bot.
//!
//! Capacity rule: a slice with `wait_for_capacity=false` has capacity when
//! at least one known bot matching its dimensions is alive (not dead) and not
//! quarantined. Busy and in-maintenance bots count (they come back).

use crate::index::PendingEntry;
use crate::{Caller, NewTaskOutcome, Result, Scheduler};
use muster_core::task::NewTaskRequest;
use muster_core::validate::{build_request, validate_new_task, CreateContext};
use muster_core::{Error, TaskRequest, TaskResult, TaskState, Time};
use muster_store::{CommitOutcome, Txn, Write};
use std::sync::Arc;

/// What the slice selection decided for a new task.
enum Start {
    Deduped(Box<TaskResult>),
    Pending(usize),
    NoResource,
}

impl Scheduler {
    /// Validates, dedups, checks capacity, commits, indexes, wakes a bot.
    /// A repeated `request_uuid` from the same caller returns the original.
    pub async fn new_task(&self, req: NewTaskRequest, caller: &Caller, now: Time) -> Result<NewTaskOutcome> {
        validate_new_task(&req)?;
        let ctx = CreateContext {
            now,
            random16: rand::random::<u16>(),
            authenticated: caller.identity.clone(),
            high_priority_allowed: caller.high_priority_allowed,
        };
        let request = build_request(&req, &ctx);
        if req.evaluate_only {
            return Ok(NewTaskOutcome { request, result: None });
        }
        let uuid_key = (!req.request_uuid.is_empty()).then(|| format!("{}:{}", caller.identity, req.request_uuid));
        if let Some(key) = &uuid_key {
            if let Some(out) = self.existing_by_uuid(key).await? {
                return Ok(out);
            }
        }
        self.create_task(request, uuid_key).await
    }

    async fn existing_by_uuid(&self, key: &str) -> Result<Option<NewTaskOutcome>> {
        let Some(id) = self.store.lookup_request_uuid(key).await? else { return Ok(None) };
        let request = self.store.get_request(id).await?;
        let result = self.store.get_result(id).await?;
        match (request, result) {
            (Some(request), Some(result)) => Ok(Some(NewTaskOutcome { request, result: Some(result) })),
            _ => Err(Error::internal(format!("request_uuid maps to missing task {id}"))),
        }
    }

    /// Stores a built request (dedup, capacity) and makes it schedulable.
    /// Shared by NewTask and TerminateBot.
    pub(crate) async fn create_task(
        &self,
        mut request: TaskRequest,
        uuid_key: Option<String>,
    ) -> Result<NewTaskOutcome> {
        // One time for the request and its result: the request's creation
        // time (the request's `now` at the stored microsecond precision).
        let now = request.created;
        let start = self.choose_start(&request, now).await?;
        let mut result = TaskResult::pending(request.id, now, &request.name, &request.tags, &request.user);
        self.stamp(&mut result, now);
        match &start {
            Start::Deduped(r) => {
                result = (**r).clone();
                for s in &mut request.slices {
                    s.properties.secret_bytes = None;
                }
            }
            Start::Pending(i) => result.current_slice = *i as i32,
            Start::NoResource => {
                result.state = TaskState::NoResource;
                result.current_slice = request.slices.len().saturating_sub(1) as i32;
                result.abandoned = Some(now);
                result.completed = Some(now);
            }
        }
        for attempt in 0..4 {
            let mut txn = Txn::new()
                .with(Write::InsertTask { request: Box::new(request.clone()), result: Box::new(result.clone()) });
            if let Some(key) = &uuid_key {
                txn.push(Write::PutRequestUuid { key: key.clone(), task: request.id, created: now });
            }
            match self.store.commit(txn).await? {
                CommitOutcome::Committed => break,
                CommitOutcome::Conflict { index: 1 } => {
                    // Lost the request_uuid race: the other insert wins.
                    if let Some(key) = &uuid_key {
                        if let Some(out) = self.existing_by_uuid(key).await? {
                            return Ok(out);
                        }
                    }
                    return Err(Error::internal("request_uuid conflict without a task"));
                }
                CommitOutcome::Conflict { .. } => {
                    // Task id collision (same ms, same 16 random bits).
                    if attempt == 3 {
                        return Err(Error::internal("could not allocate a task id"));
                    }
                    let id = muster_core::TaskId::new(now, rand::random::<u16>());
                    request.id = id;
                    result.id = id;
                    result.output_of = if matches!(start, Start::Deduped(_)) { result.output_of } else { id };
                }
            }
        }
        result.version += 1;
        if let Start::Pending(slice) = start {
            self.dispatch(PendingEntry { request: Arc::new(request.clone()), slice });
        }
        Ok(NewTaskOutcome { request, result: Some(result) })
    }

    async fn choose_start(&self, request: &TaskRequest, now: Time) -> Result<Start> {
        let since =
            now - chrono::Duration::from_std(self.cfg.reusable_task_age).unwrap_or_else(|_| chrono::Duration::days(7));
        for (i, s) in request.slices.iter().enumerate() {
            if !s.properties.idempotent {
                continue;
            }
            let hash = s.properties.properties_hash();
            if let Some(orig) = self.store.find_dedup(&hash, since).await? {
                if orig.state == TaskState::Completed && orig.exit_code.unwrap_or(0) == 0 && !orig.is_deduped() {
                    return Ok(Start::Deduped(Box::new(self.deduped_result(request, &orig, i, now))));
                }
            }
        }
        let mut st = self.state.lock();
        for (i, s) in request.slices.iter().enumerate() {
            if request.slice_deadline(i) <= now {
                continue;
            }
            if s.wait_for_capacity || st.index.has_capacity(&s.properties.dimensions) {
                return Ok(Start::Pending(i));
            }
        }
        Ok(Start::NoResource)
    }

    fn deduped_result(&self, request: &TaskRequest, orig: &TaskResult, slice: usize, now: Time) -> TaskResult {
        let mut r = TaskResult::pending(request.id, now, &request.name, &request.tags, &request.user);
        r.state = TaskState::Completed;
        r.current_slice = slice as i32;
        r.started = orig.started;
        r.completed = orig.completed;
        r.exit_code = orig.exit_code;
        r.duration = orig.duration;
        r.bot_id = orig.bot_id.clone();
        r.bot_dimensions = orig.bot_dimensions.clone();
        r.bot_version = orig.bot_version.clone();
        r.bot_idle_since = orig.bot_idle_since;
        r.deduped_from = orig.id.run_id();
        r.output_of = orig.output_of;
        r.cost_saved_usd = orig.cost_usd;
        r.cas_output_root = orig.cas_output_root.clone();
        r.cipd_pins = orig.cipd_pins.clone();
        r.performance_stats = orig.performance_stats.clone();
        r.try_number = Some(0);
        r.dedup_hash = None;
        self.stamp(&mut r, now);
        r
    }
}
