//! The engine: ticks, triage, launches, timers, aborts and timeouts.
//!
//! Every replica runs the same loop ([`Engine::run`], one pass =
//! [`Engine::step`]); the store is the arbiter. Each effect commits in one
//! transaction guarded by a compare-and-set:
//! - a tick: {job row CAS (cron state), trigger `cron:v1:<generation>`};
//! - a triage: {job row CAS, triggers consumed (all still pending or
//!   nothing), invocations inserted} — two replicas triaging the same tick
//!   cannot both win, so a tick runs exactly once;
//! - a launch: claimed by a lease (CAS on the invocation's mutation count,
//!   which only saves work), the manager called outside any transaction, the
//!   outcome committed by CAS. A crash in between leaves the invocation
//!   claimed until the lease expires; the next attempt calls the manager again
//!   with the same idempotency key, and gets the same task back.
//!
//! Time comes from the caller (`now`), read once per pass.

use crate::manager::{Controller, ManagerError, Managers, NewTimer, Notification};
use crate::model::{
    new_invocation_id, Flavor, Invocation, InvocationData, Job, JobDef, JobState, LastRun, Lease, PauseInfo, Payload,
    Status, TimerData, Trigger, MAX_PENDING_TRIGGERS, MAX_TRIGGER_PAYLOAD,
};
use crate::policy::{self, Pending};
use crate::schedule::{format_duration, Schedule};
use chrono::Duration;
use muster_core::{Clock, Error, Time};
use muster_store::jobs::{JobStore, JobWrite, TimerRow};
use muster_store::{CommitOutcome, Store, Txn, Write};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Launch attempts before an invocation fails.
pub const MAX_LAUNCH_ATTEMPTS: i64 = 50;
/// Consumed triggers are remembered (deduplicated) this long.
pub const TRIGGER_DEDUP_WINDOW: Duration = Duration::days(7);
/// How many finished invocations a job row remembers for listings.
const RECENT_RUNS: usize = 10;
/// Attempts of a compare-and-set loop on one job row.
const CAS_ATTEMPTS: usize = 8;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this process in launch leases.
    pub replica: String,
    /// How long a launch claim keeps other replicas away.
    pub launch_lease: Duration,
    /// Pause between passes of the loop (commits wake it earlier).
    pub interval: std::time::Duration,
    /// Test hook: `exit-after-launch` exits the process right after a
    /// manager launched and before the outcome commits (a crash there).
    pub failpoint: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            replica: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            launch_lease: Duration::seconds(30),
            interval: std::time::Duration::from_millis(500),
            failpoint: None,
        }
    }
}

/// A configuration snapshot to apply: every job with the reason it is
/// refused, if it is.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub jobs: Vec<(JobDef, Option<String>)>,
    pub revision: String,
}

/// Work found for one invocation.
enum Work {
    Launch(i64),
    Abort(i64),
    Timeout(i64),
    Timer(TimerRow),
}

impl Work {
    fn inv(&self) -> i64 {
        match self {
            Work::Launch(i) | Work::Abort(i) | Work::Timeout(i) => *i,
            Work::Timer(t) => t.inv_id,
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    managers: Managers,
    cfg: EngineConfig,
    http: reqwest::Client,
    wake: Notify,
    busy: Mutex<HashSet<i64>>,
    passes: std::sync::atomic::AtomicU64,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

fn jw(j: JobWrite) -> Write {
    Write::Jobs(Box::new(j))
}

/// Launch backoff: 5 s doubling to 10 min.
fn backoff(attempt: i64) -> Duration {
    let secs = 5i64.saturating_mul(1i64 << (attempt - 1).clamp(0, 20));
    Duration::seconds(secs.min(600))
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, managers: Managers, cfg: EngineConfig) -> Result<Engine> {
        if store.jobs().is_none() {
            return Err(Error::internal("this store does not support jobs"));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("muster-jobs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("building the HTTP client: {e}")))?;
        Ok(Engine {
            store,
            clock,
            managers,
            cfg,
            http,
            wake: Notify::new(),
            busy: Mutex::new(HashSet::new()),
            passes: Default::default(),
        })
    }

    pub fn managers(&self) -> &Managers {
        &self.managers
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn js(&self) -> &dyn JobStore {
        // Checked in `new`.
        self.store.jobs().expect("store supports jobs")
    }

    async fn commit(&self, txn: Txn) -> Result<bool> {
        match self.store.commit(txn).await? {
            CommitOutcome::Committed => {
                self.wake.notify_one();
                Ok(true)
            }
            CommitOutcome::Conflict { .. } => Ok(false),
        }
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let now = self.clock.now();
            if let Err(e) = self.step(now, false).await {
                tracing::warn!("jobs engine pass failed: {}", e.message);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.interval) => {}
            }
        }
    }

    /// One pass at `now`: due ticks, triage, launches, aborts, timeouts and
    /// timers. With `wait`, the invocation work is done before returning
    /// (tests); otherwise it runs in the background.
    pub async fn step(self: &Arc<Self>, now: Time, wait: bool) -> Result<()> {
        let js = self.js();
        let jobs = self.load_jobs().await?;
        for job in &jobs {
            let due = job.state.cron.tick.as_ref().filter(|t| t.when <= now + Duration::milliseconds(50));
            if let (true, Some(t)) = (job.state.enabled, due) {
                if let Err(e) = self.tick(&job.job_id, t.nonce, now).await {
                    tracing::warn!(job = %job.job_id, "tick failed: {}", e.message);
                }
            }
        }
        let active: HashSet<i64> = js.active_invocations().await?.iter().map(|r| r.inv_id).collect();
        let pending: HashSet<String> = js.jobs_with_pending_triggers().await?.into_iter().collect();
        for job in self.load_jobs().await? {
            let s = &job.state;
            let finished_some = s.active.iter().any(|i| !active.contains(i));
            let idle_unarmed = s.enabled
                && s.paused.is_none()
                && s.cron.tick.is_none()
                && s.active.is_empty()
                && !matches!(s.effective_schedule(), Schedule::Triggered);
            if pending.contains(&job.job_id) || finished_some || idle_unarmed {
                if let Err(e) = self.triage(&job.job_id, now).await {
                    tracing::warn!(job = %job.job_id, "triage failed: {}", e.message);
                }
            }
        }
        let mut work = Vec::new();
        for row in js.active_invocations().await? {
            let inv = match Invocation::from_row(&row) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!("{e}");
                    continue;
                }
            };
            if inv.aborted_by.is_some() {
                work.push(Work::Abort(inv.id));
            } else if inv.status.is_initial() {
                let leased = inv.data.lease.as_ref().is_some_and(|l| l.until > now);
                if inv.data.next_attempt <= now && !leased {
                    work.push(Work::Launch(inv.id));
                }
            } else if let Some(t) = inv.data.timeout_secs {
                if now - inv.started >= Duration::seconds(t) {
                    work.push(Work::Timeout(inv.id));
                }
            }
        }
        for t in js.due_timers(now, 256).await? {
            work.push(Work::Timer(t));
        }
        let mut handles = Vec::new();
        for w in work {
            let id = w.inv();
            if !self.busy.lock().insert(id) {
                continue;
            }
            let me = self.clone();
            let fut = async move {
                let r = match w {
                    Work::Launch(i) => me.launch(i, now).await,
                    Work::Abort(i) => me.finish_abort(i, now, None).await,
                    Work::Timeout(i) => me.finish_abort(i, now, Some("timed out")).await,
                    Work::Timer(t) => me.deliver_timer(t, now).await,
                };
                me.busy.lock().remove(&id);
                if let Err(e) = r {
                    tracing::warn!(invocation = id, "jobs: {}", e.message);
                }
            };
            if wait {
                handles.push(tokio::spawn(fut));
            } else {
                tokio::spawn(fut);
            }
        }
        for h in handles {
            let _ = h.await;
        }
        if self.passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(1000) {
            let prune = Txn::new().with(jw(JobWrite::PruneTriggers { before: now - TRIGGER_DEDUP_WINDOW }));
            self.store.commit(prune).await?;
        }
        Ok(())
    }

    async fn load_jobs(&self) -> Result<Vec<Job>> {
        let rows = self.js().list_jobs().await?;
        Ok(rows
            .iter()
            .filter_map(|r| match Job::from_row(r) {
                Ok(j) => Some(j),
                Err(e) => {
                    tracing::error!("{e}");
                    None
                }
            })
            .collect())
    }

    async fn read_job(&self, job_id: &str) -> Result<Option<Job>> {
        match self.js().get_job(job_id).await? {
            Some(r) => Ok(Some(Job::from_row(&r).map_err(internal)?)),
            None => Ok(None),
        }
    }

    async fn read_inv(&self, inv_id: i64) -> Result<Option<Invocation>> {
        match self.js().get_invocation(inv_id).await? {
            Some(r) => Ok(Some(Invocation::from_row(&r).map_err(internal)?)),
            None => Ok(None),
        }
    }

    fn put_job(job: &Job) -> Result<Write> {
        Ok(jw(JobWrite::PutJob { row: job.row().map_err(internal)?, expect: Some(job.version) }))
    }

    /// Fires a due tick: the cron state and the tick's trigger commit together.
    async fn tick(&self, job_id: &str, nonce: i64, now: Time) -> Result<()> {
        let Some(mut job) = self.read_job(job_id).await? else { return Ok(()) };
        let before = job.state.clone();
        let sched = job.state.effective_schedule();
        let actions = match job.state.cron.on_timer_tick(nonce, now, &sched) {
            Ok(a) => a,
            Err(_) => return Ok(()), // slightly early: the next pass fires it
        };
        if job.state == before {
            return Ok(());
        }
        let mut txn = Txn::new().with(Self::put_job(&job)?);
        for crate::machine::Action::StartInvocation { generation } in actions {
            let t = Trigger {
                id: crate::machine::CronState::trigger_id(generation),
                created: now,
                order_in_batch: 0,
                title: "schedule tick".into(),
                url: String::new(),
                emitted_by_user: None,
                emitter_job: None,
                emitter_inv: None,
                payload: Payload::Cron { generation },
            };
            txn.push(jw(JobWrite::AddTrigger(t.row(job_id).map_err(internal)?)));
        }
        // A conflict means another replica (or a config change) got there
        // first: the next pass sees the new state.
        self.commit(txn).await?;
        Ok(())
    }

    /// Turns pending triggers into invocations by the job's policy.
    pub async fn triage(&self, job_id: &str, now: Time) -> Result<()> {
        for _ in 0..CAS_ATTEMPTS {
            if self.triage_once(job_id, now).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn triage_once(&self, job_id: &str, now: Time) -> Result<bool> {
        let js = self.js();
        let Some(mut job) = self.read_job(job_id).await? else { return Ok(true) };
        let before = job.state.clone();
        let rows = js.pending_triggers(job_id).await?;
        let mut still = Vec::new();
        for id in &job.state.active {
            match self.read_inv(*id).await? {
                Some(inv) if inv.status.is_final() => {
                    job.state.recent.insert(
                        0,
                        LastRun { inv_id: inv.id, status: inv.status, finished: inv.data.finished.unwrap_or(now) },
                    );
                    job.state.recent.truncate(RECENT_RUNS);
                }
                Some(_) => still.push(*id),
                None => {}
            }
        }
        let mut writes = Vec::new();
        let mut discard: Vec<String> = Vec::new();
        let mut triggers = Vec::new();
        for r in &rows {
            match Trigger::from_row(r) {
                Ok(t) => triggers.push(t),
                Err(e) => {
                    tracing::error!("{e}");
                    discard.push(r.trigger_id.clone());
                }
            }
        }
        if !job.state.enabled || job.state.paused.is_some() {
            discard.extend(triggers.drain(..).map(|t| t.id));
        } else if triggers.len() > MAX_PENDING_TRIGGERS {
            let extra = triggers.len() - MAX_PENDING_TRIGGERS;
            discard.extend(triggers.drain(..extra).map(|t| t.id));
        }
        let view: Vec<Pending> = triggers.iter().map(|t| Pending { id: t.id.clone(), created: t.created }).collect();
        let decision = policy::triage(&job.state.def.policy, now, still.len(), &view);
        discard.extend(decision.discard.iter().map(|i| triggers[*i].id.clone()));
        for batch in &decision.invocations {
            let incoming: Vec<Trigger> = batch.iter().map(|i| triggers[*i].clone()).collect();
            let inv = self.new_invocation(&job.state, incoming, now);
            writes.push(jw(JobWrite::ConsumeTriggers {
                job_id: job_id.to_string(),
                ids: inv.data.incoming.iter().map(|t| t.id.clone()).collect(),
                by: inv.id,
                at: now,
            }));
            writes.push(jw(JobWrite::InsertInvocation(inv.row().map_err(internal)?)));
            still.push(inv.id);
        }
        if !discard.is_empty() {
            writes.push(jw(JobWrite::ConsumeTriggers { job_id: job_id.to_string(), ids: discard, by: 0, at: now }));
        }
        job.state.active = still;
        if job.state.active.is_empty() {
            let sched = job.state.effective_schedule();
            job.state.cron.rewind_if_necessary(now, &sched);
        }
        if job.state == before && writes.is_empty() {
            return Ok(true);
        }
        job.state.last_triage = Some(now);
        let mut txn = Txn::new().with(Self::put_job(&job)?);
        txn.writes.extend(writes);
        self.commit(txn).await
    }

    fn new_invocation(&self, st: &JobState, incoming: Vec<Trigger>, now: Time) -> Invocation {
        let newest = incoming.last();
        let (properties, tags) = match newest.map(|t| &t.payload) {
            Some(Payload::Api { properties, tags }) => (properties.clone(), tags.clone()),
            Some(Payload::Noop { data }) if !data.is_empty() => {
                (serde_json::json!({ "noop_trigger_data": data }), vec![])
            }
            _ => (serde_json::Value::Null, vec![]),
        };
        let users: HashSet<&str> = incoming.iter().filter_map(|t| t.emitted_by_user.as_deref()).collect();
        let triggered_by = if users.len() == 1 { users.into_iter().next().map(str::to_string) } else { None };
        let mut inv = Invocation {
            id: new_invocation_id(now, rand::random::<u16>()),
            job_id: st.def.job_id(),
            started: now,
            status: Status::Starting,
            mutation_count: 0,
            aborted_by: None,
            data: InvocationData {
                realm: st.def.realm.clone(),
                triggered_by,
                properties,
                tags,
                incoming,
                outgoing: vec![],
                task: st.def.task.clone(),
                revision: st.revision.clone(),
                triggered_job_ids: st.def.triggered_job_ids(),
                flavor: st.def.flavor,
                finished: None,
                debug_log: String::new(),
                retry_count: 0,
                view_url: String::new(),
                task_data: serde_json::Value::Null,
                next_attempt: now,
                lease: None,
                timeout_secs: st.def.invocation_timeout_secs,
                summary: String::new(),
            },
        };
        let ids: Vec<&str> = inv.data.incoming.iter().map(|t| t.id.as_str()).collect();
        let msg = format!("Created by triage from {} trigger(s): {}", ids.len(), ids.join(", "));
        inv.log(now, &msg);
        inv
    }

    /// Claims and launches an invocation.
    async fn launch(&self, inv_id: i64, now: Time) -> Result<()> {
        let Some(mut inv) = self.read_inv(inv_id).await? else { return Ok(()) };
        if !inv.status.is_initial() {
            return Ok(());
        }
        if inv.aborted_by.is_some() {
            return self.finish_abort(inv_id, now, None).await;
        }
        if inv.data.lease.as_ref().is_some_and(|l| l.until > now) {
            return Ok(());
        }
        let attempt = inv.data.retry_count + 1;
        if attempt > MAX_LAUNCH_ATTEMPTS {
            inv.status = Status::Failed;
            inv.data.summary = format!("gave up after {MAX_LAUNCH_ATTEMPTS} launch attempts");
            let s = inv.data.summary.clone();
            inv.log(now, &s);
            self.save(&inv, inv.clone(), vec![], vec![], vec![], now).await?;
            return Ok(());
        }
        let before = inv.clone();
        inv.data.retry_count = attempt;
        inv.data.lease = Some(Lease { owner: self.cfg.replica.clone(), until: now + self.cfg.launch_lease });
        inv.log(now, &format!("Starting the invocation (attempt {attempt})"));
        let claim = Txn::new().with(jw(JobWrite::UpdateInvocation(Self::inv_row(&before, &inv)?)));
        if !self.commit(claim).await? {
            return Ok(()); // someone else claimed it
        }
        inv.mutation_count += 1;
        let claimed = inv.clone();
        let Some(manager) = self.managers.get(&inv.data.task.kind).cloned() else {
            inv.status = Status::Failed;
            inv.data.summary = format!("unknown task kind {:?}", inv.data.task.kind);
            let s = inv.data.summary.clone();
            inv.log(now, &s);
            return self.save(&claimed, inv, vec![], vec![], vec![], now).await.map(|_| ());
        };
        let mut ctl = Controller::new(inv, now, &self.http);
        let r = manager.launch(&mut ctl).await;
        if self.cfg.failpoint.as_deref() == Some("exit-after-launch") {
            tracing::warn!("failpoint exit-after-launch: exiting before the launch commits");
            std::process::exit(86);
        }
        let now = self.clock.now();
        let Controller { inv: mut after, timers, emitted, .. } = ctl;
        after.data.lease = None;
        match r {
            Ok(()) if after.status.is_initial() => {
                after.status = Status::Failed;
                after.data.summary = "the task manager did not start the invocation".into();
                after.log(now, "the task manager returned without starting the invocation");
            }
            Ok(()) => {}
            Err(ManagerError::Transient(m)) => {
                after.status = Status::Retrying;
                after.data.next_attempt = now + backoff(attempt);
                after.log(now, &format!("Launch failed (will retry in {}): {m}", format_duration(backoff(attempt))));
            }
            Err(ManagerError::Fatal(m)) => {
                after.status = Status::Failed;
                after.log(now, &format!("Launch failed: {m}"));
                after.data.summary = m;
            }
        }
        self.save(&claimed, after, timers, emitted, vec![], now).await.map(|_| ())
    }

    fn inv_row(before: &Invocation, after: &Invocation) -> Result<muster_store::jobs::InvocationRow> {
        let mut row = after.row().map_err(internal)?;
        row.mutation_count = before.mutation_count;
        Ok(row)
    }

    /// Commits an invocation's new state (CAS on `before`'s mutation count)
    /// with its new timers, emitted triggers and `extra` writes. Returns
    /// false on a conflict (nothing applied).
    async fn save(
        &self,
        before: &Invocation,
        mut after: Invocation,
        timers: Vec<NewTimer>,
        emitted: Vec<Trigger>,
        extra: Vec<Write>,
        now: Time,
    ) -> Result<bool> {
        let mut txn = Txn::new();
        let targets = after.data.triggered_job_ids.clone();
        for t in &emitted {
            for target in &targets {
                txn.push(jw(JobWrite::AddTrigger(t.row(target).map_err(internal)?)));
            }
        }
        after.data.outgoing.extend(emitted);
        if after.status.is_final() {
            after.data.finished = Some(now);
            after.data.lease = None;
            let took = format_duration(Duration::seconds((now - after.started).num_seconds().max(0)));
            after.log(now, &format!("Invocation finished in {took} with status {}", after.status.as_str()));
            if after.data.flavor == Flavor::Job && after.status == Status::Succeeded {
                let done = Trigger {
                    id: format!("inv:{}:done", after.id),
                    created: now,
                    order_in_batch: 0,
                    title: format!("{} succeeded", after.job_id),
                    url: String::new(),
                    emitted_by_user: None,
                    emitter_job: Some(after.job_id.clone()),
                    emitter_inv: Some(after.id),
                    payload: Payload::Invocation { job: after.job_id.clone(), inv_id: after.id, status: after.status },
                };
                for target in &targets {
                    txn.push(jw(JobWrite::AddTrigger(done.row(target).map_err(internal)?)));
                }
            }
        } else {
            for (i, t) in timers.iter().enumerate() {
                let data = TimerData { title: t.title.clone(), payload: t.payload.clone(), created: now };
                txn.push(jw(JobWrite::PutTimer(TimerRow {
                    timer_id: format!("{}:{}:{}:{i}", after.job_id, after.id, before.mutation_count),
                    job_id: after.job_id.clone(),
                    inv_id: after.id,
                    due: now + t.delay,
                    data: serde_json::to_string(&data).map_err(internal)?,
                })));
            }
        }
        txn.writes.insert(0, jw(JobWrite::UpdateInvocation(Self::inv_row(before, &after)?)));
        txn.writes.extend(extra);
        let ok = self.commit(txn).await?;
        if !ok {
            tracing::debug!(invocation = after.id, "invocation changed meanwhile; its update is dropped");
        }
        Ok(ok)
    }

    /// Ends an invocation that was asked to abort (or timed out): the manager
    /// is told (best effort), then the invocation is ABORTED (FAILED for a
    /// timeout) unless the manager finished it.
    async fn finish_abort(&self, inv_id: i64, now: Time, timeout: Option<&str>) -> Result<()> {
        let Some(inv) = self.read_inv(inv_id).await? else { return Ok(()) };
        if inv.status.is_final() {
            return Ok(());
        }
        let before = inv.clone();
        let launched = !inv.status.is_initial();
        let mut ctl = Controller::new(inv, now, &self.http);
        match timeout {
            Some(why) => {
                let limit = ctl.inv.data.timeout_secs.unwrap_or(0);
                ctl.log(&format!("The invocation {why} after {}", format_duration(Duration::seconds(limit))));
            }
            None => {
                let by = ctl.inv.aborted_by.clone().unwrap_or_default();
                ctl.log(&format!("Aborted by {by}"));
            }
        }
        if launched {
            if let Some(m) = self.managers.get(&ctl.inv.data.task.kind).cloned() {
                if let Err(e) = m.abort(&mut ctl).await {
                    ctl.log(&format!("The task manager could not abort: {e}"));
                }
            }
        }
        let Controller { inv: mut after, emitted, .. } = ctl;
        if !after.status.is_final() {
            match timeout {
                Some(why) => {
                    after.status = Status::Failed;
                    after.data.summary = format!(
                        "{why} after {}",
                        format_duration(Duration::seconds(after.data.timeout_secs.unwrap_or(0)))
                    );
                }
                None => {
                    after.status = Status::Aborted;
                    after.data.summary = format!("aborted by {}", after.aborted_by.clone().unwrap_or_default());
                }
            }
        }
        // Pending timers of a finished invocation are dropped on delivery.
        self.save(&before, after, vec![], emitted, vec![], now).await?;
        Ok(())
    }

    async fn deliver_timer(&self, t: TimerRow, now: Time) -> Result<()> {
        let consume = jw(JobWrite::DeleteTimer(t.timer_id.clone()));
        let inv = self.read_inv(t.inv_id).await?;
        let Some(inv) = inv.filter(|i| !i.status.is_final()) else {
            self.commit(Txn::new().with(consume)).await?;
            return Ok(());
        };
        if inv.aborted_by.is_some() {
            return self.finish_abort(inv.id, now, None).await;
        }
        let Some(m) = self.managers.get(&inv.data.task.kind).cloned() else { return Ok(()) };
        let data: TimerData = serde_json::from_str(&t.data).map_err(internal)?;
        let before = inv.clone();
        let mut ctl = Controller::new(inv, now, &self.http);
        match m.handle_timer(&mut ctl, &data.title, &data.payload).await {
            Ok(()) => {}
            Err(ManagerError::Transient(e)) => {
                tracing::debug!(invocation = before.id, "timer {:?}: transient error, retried: {e}", data.title);
                return Ok(());
            }
            Err(ManagerError::Fatal(e)) => {
                ctl.log(&format!("Timer {:?} failed: {e}", data.title));
                ctl.inv.data.summary = e;
                ctl.set_status(Status::Failed);
            }
        }
        let Controller { inv: after, timers, emitted, .. } = ctl;
        self.save(&before, after, timers, emitted, vec![consume], now).await?;
        Ok(())
    }

    /// Delivers a notification about an invocation to its manager.
    pub async fn notify(&self, inv_id: i64, n: &Notification) -> Result<()> {
        let now = self.clock.now();
        let Some(inv) = self.read_inv(inv_id).await? else { return Err(Error::not_found("no such invocation")) };
        if inv.status.is_final() {
            return Ok(());
        }
        if inv.aborted_by.is_some() {
            return self.finish_abort(inv_id, now, None).await;
        }
        let Some(m) = self.managers.get(&inv.data.task.kind).cloned() else { return Ok(()) };
        let before = inv.clone();
        let mut ctl = Controller::new(inv, now, &self.http);
        match m.handle_notification(&mut ctl, n).await {
            Ok(()) => {}
            Err(ManagerError::Transient(e)) => return Err(Error::new(muster_core::ErrorKind::Unavailable, e)),
            Err(ManagerError::Fatal(e)) => {
                ctl.log(&format!("Notification failed: {e}"));
                ctl.set_status(Status::Failed);
            }
        }
        let Controller { inv: after, timers, emitted, .. } = ctl;
        if !self.save(&before, after, timers, emitted, vec![], now).await? {
            return Err(Error::new(muster_core::ErrorKind::Unavailable, "invocation changed meanwhile; retry"));
        }
        Ok(())
    }

    // ---- configuration ----

    /// Makes the stored jobs match `catalog`: new jobs appear, changed ones
    /// are updated (a schedule change re-arms the cron), jobs that are
    /// refused, `disabled` or gone are disabled (their pending triggers are
    /// dropped; running invocations go on).
    pub async fn apply_config(&self, catalog: &Catalog, now: Time) -> Result<()> {
        let mut seen = HashSet::new();
        for (def, problem) in &catalog.jobs {
            seen.insert(def.job_id());
            self.apply_job(def, problem.clone(), &catalog.revision, now).await?;
        }
        for job in self.load_jobs().await? {
            if seen.contains(&job.job_id) || !job.state.enabled {
                continue;
            }
            let def = job.state.def.clone();
            self.apply_job(&JobDef { disabled: true, ..def }, None, &catalog.revision, now).await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    async fn apply_job(&self, def: &JobDef, problem: Option<String>, revision: &str, now: Time) -> Result<()> {
        let job_id = def.job_id();
        let enable = problem.is_none() && !def.disabled;
        for _ in 0..CAS_ATTEMPTS {
            let existing = self.read_job(&job_id).await?;
            let (mut st, version) = match &existing {
                Some(j) => (j.state.clone(), Some(j.version)),
                None => (
                    JobState {
                        def: def.clone(),
                        revision: revision.to_string(),
                        enabled: false,
                        problem: None,
                        paused: None,
                        cron: Default::default(),
                        active: vec![],
                        last_triage: None,
                        recent: vec![],
                    },
                    None,
                ),
            };
            let before = existing.as_ref().map(|j| j.state.clone());
            let schedule_changed = st.def.schedule != def.schedule;
            st.def = def.clone();
            st.revision = revision.to_string();
            st.problem = problem.clone();
            let was = st.enabled;
            st.enabled = enable;
            let sched = st.effective_schedule();
            if !enable {
                st.cron.disable();
            } else if !was {
                st.cron.enable(now, &sched);
            } else if schedule_changed {
                st.cron.on_schedule_change(now, &sched);
            }
            if before.as_ref() == Some(&st) {
                return Ok(());
            }
            let job = Job { job_id: job_id.clone(), version: version.unwrap_or(0), state: st };
            let row = job.row().map_err(internal)?;
            if self.commit(Txn::new().with(jw(JobWrite::PutJob { row, expect: version }))).await? {
                return Ok(());
            }
        }
        Err(Error::new(muster_core::ErrorKind::Unavailable, format!("job {job_id} kept changing; try again")))
    }

    // ---- API ----

    /// Every job (disabled ones included), by id.
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        self.load_jobs().await
    }

    pub async fn job(&self, job_id: &str) -> Result<Option<Job>> {
        self.read_job(job_id).await
    }

    /// A job that exists and is enabled, or NOT_FOUND.
    async fn visible(&self, job_id: &str) -> Result<Job> {
        match self.read_job(job_id).await? {
            Some(j) if j.state.enabled => Ok(j),
            _ => Err(Error::not_found(format!("no such job {job_id:?}"))),
        }
    }

    /// A job's invocations, newest first; the cursor is the last id seen.
    pub async fn invocations(
        &self,
        job_id: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<Invocation>, Option<i64>)> {
        let rows = self.js().list_invocations(job_id, after, limit + 1).await?;
        let mut out: Vec<Invocation> =
            rows.iter().map(Invocation::from_row).collect::<Result<_, _>>().map_err(internal)?;
        let cursor = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|i| i.id)
        } else {
            None
        };
        Ok((out, cursor))
    }

    /// An invocation of this job, or NOT_FOUND.
    pub async fn invocation(&self, job_id: &str, inv_id: i64) -> Result<Invocation> {
        match self.read_inv(inv_id).await? {
            Some(i) if i.job_id == job_id => Ok(i),
            _ => Err(Error::not_found(format!("no invocation {inv_id} of job {job_id:?}"))),
        }
    }

    pub async fn pending_triggers(&self, job_id: &str) -> Result<Vec<Trigger>> {
        let rows = self.js().pending_triggers(job_id).await?;
        rows.iter().map(Trigger::from_row).collect::<Result<_, _>>().map_err(internal)
    }

    pub async fn timers(&self, inv_id: i64) -> Result<Vec<(TimerRow, TimerData)>> {
        let rows = self.js().invocation_timers(inv_id).await?;
        let mut out = Vec::new();
        for r in rows {
            let d: TimerData = serde_json::from_str(&r.data).map_err(internal)?;
            out.push((r, d));
        }
        Ok(out)
    }

    /// Adds triggers to jobs, each `(trigger, jobs)`. Idempotent by trigger
    /// id. Unknown or disabled jobs fail the whole call (NOT_FOUND, all
    /// named); triggers for paused jobs are dropped, as upstream does.
    /// Returns the jobs whose triggers were dropped because they are paused.
    pub async fn emit_triggers(&self, batches: &[(Trigger, Vec<String>)]) -> Result<Vec<String>> {
        let mut missing = BTreeMap::new();
        let mut paused = Vec::new();
        let mut txn = Txn::new();
        for (t, jobs) in batches {
            if t.id.is_empty() {
                return Err(Error::invalid("a trigger needs an id"));
            }
            let size = serde_json::to_string(&t.payload).map(|s| s.len()).unwrap_or(usize::MAX);
            if size > MAX_TRIGGER_PAYLOAD {
                return Err(Error::invalid(format!(
                    "trigger {:?}: payload of {size} bytes is over the {MAX_TRIGGER_PAYLOAD}-byte limit",
                    t.id
                )));
            }
            for job_id in jobs {
                match self.read_job(job_id).await? {
                    Some(j) if j.state.enabled => {
                        if j.state.paused.is_some() {
                            paused.push(job_id.clone());
                            continue;
                        }
                        txn.push(jw(JobWrite::AddTrigger(t.row(job_id).map_err(internal)?)));
                    }
                    _ => {
                        missing.insert(job_id.clone(), ());
                    }
                }
            }
        }
        if !missing.is_empty() {
            let names: Vec<String> = missing.into_keys().collect();
            return Err(Error::not_found(format!("no such job(s): {}", names.join(", "))));
        }
        self.commit(txn).await?;
        Ok(paused)
    }

    /// "Trigger now" from the UI or CLI: refused for a paused job.
    pub async fn trigger_now(&self, job_id: &str, who: &str, id: Option<String>, payload: Payload) -> Result<String> {
        let job = self.visible(job_id).await?;
        if job.state.paused.is_some() {
            return Err(Error::precondition(format!("job {job_id} is paused: resume it first")));
        }
        let now = self.clock.now();
        let id = id.unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
        let t = Trigger {
            id: id.clone(),
            created: now,
            order_in_batch: 0,
            title: format!("triggered by {who}"),
            url: String::new(),
            emitted_by_user: Some(who.to_string()),
            emitter_job: None,
            emitter_inv: None,
            payload,
        };
        self.emit_triggers(&[(t, vec![job_id.to_string()])]).await?;
        Ok(id)
    }

    async fn update_job(&self, job_id: &str, f: impl Fn(&mut JobState, Time)) -> Result<()> {
        let now = self.clock.now();
        for _ in 0..CAS_ATTEMPTS {
            let mut job = self.visible(job_id).await?;
            let before = job.state.clone();
            f(&mut job.state, now);
            if job.state == before {
                return Ok(());
            }
            if self.commit(Txn::new().with(Self::put_job(&job)?)).await? {
                return Ok(());
            }
        }
        Err(Error::new(muster_core::ErrorKind::Unavailable, format!("job {job_id} kept changing; try again")))
    }

    /// Pauses a job: no more ticks, pending and new triggers are dropped,
    /// running invocations go on. Pausing a paused job changes nothing.
    pub async fn pause(&self, job_id: &str, who: &str, reason: &str) -> Result<()> {
        self.update_job(job_id, |st, now| {
            if st.paused.is_none() {
                st.paused = Some(PauseInfo { by: who.to_string(), at: now, reason: reason.to_string() });
                st.cron.on_schedule_change(now, &Schedule::Triggered);
            }
        })
        .await
    }

    /// Resumes a paused job: the schedule is re-armed from now.
    pub async fn resume(&self, job_id: &str) -> Result<()> {
        self.update_job(job_id, |st, now| {
            if st.paused.take().is_some() {
                let s = st.effective_schedule();
                st.cron.on_schedule_change(now, &s);
            }
        })
        .await
    }

    /// Asks an invocation to abort: recorded first (acknowledged once
    /// durable), then carried out. Aborting a finished invocation does nothing.
    pub async fn abort_invocation(&self, job_id: &str, inv_id: i64, who: &str) -> Result<()> {
        let inv = self.invocation(job_id, inv_id).await?;
        if inv.status.is_final() {
            return Ok(());
        }
        let mark = Txn::new().with(jw(JobWrite::SetAbortedBy { inv_id, by: who.to_string() }));
        self.commit(mark).await?;
        let now = self.clock.now();
        // If this races a launch or a timer, the loser's commit conflicts and
        // the next pass finishes the abort.
        if self.busy.lock().insert(inv_id) {
            let r = self.finish_abort(inv_id, now, None).await;
            self.busy.lock().remove(&inv_id);
            r?;
        }
        Ok(())
    }

    /// Aborts every running invocation of a job; pending triggers stay.
    pub async fn abort_job(&self, job_id: &str, who: &str) -> Result<usize> {
        let job = self.visible(job_id).await?;
        for id in &job.state.active {
            self.abort_invocation(job_id, *id, who).await?;
        }
        Ok(job.state.active.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_backoff_doubles_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(10));
        assert_eq!(backoff(8), Duration::seconds(600));
        assert_eq!(backoff(50), Duration::seconds(600));
    }
}
