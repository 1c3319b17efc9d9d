//! Simulated bots and submitting clients. A bot is one tokio task speaking
//! the real bot protocol: handshake → poll (long poll; `sleep`/`run`/...) →
//! task_update packets (output chunks, then the final packet with
//! exit_code). Thousands share one runtime and one HTTP client.

use crate::http::{summary_of, Http};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// When a task was acknowledged, delivered to a bot and completed, on the
/// bench's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    pub created: Option<Instant>,
    pub delivered: Option<Instant>,
    pub completed: Option<Instant>,
}

/// Per-task timestamps keyed by summary id, plus counters.
#[derive(Default)]
pub struct Recorder {
    tasks: Mutex<HashMap<String, Times>>,
    pub handshakes: AtomicU64,
    pub polling: AtomicU64,
    pub polls: AtomicU64,
    pub sleeps: AtomicU64,
    pub runs: AtomicU64,
    pub updates: AtomicU64,
    pub completed: AtomicU64,
    pub submitted: AtomicU64,
    pub errors: AtomicU64,
    last_error: Mutex<String>,
}

impl Recorder {
    fn with(&self, id: &str, f: impl FnOnce(&mut Times)) {
        if let Ok(mut m) = self.tasks.lock() {
            f(m.entry(id.to_string()).or_default());
        }
    }
    pub fn created(&self, id: &str, at: Instant) {
        self.with(id, |t| t.created = Some(at));
    }
    fn delivered(&self, id: &str, at: Instant) {
        self.with(id, |t| t.delivered = Some(at));
    }
    fn completed(&self, id: &str, at: Instant) {
        self.with(id, |t| t.completed = Some(at));
    }
    pub fn error(&self, e: &anyhow::Error) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut l) = self.last_error.lock() {
            *l = format!("{e:#}");
        }
    }
    pub fn last_error(&self) -> String {
        self.last_error.lock().map(|l| l.clone()).unwrap_or_default()
    }
    /// A copy of every task's timestamps.
    pub fn snapshot(&self) -> Vec<(String, Times)> {
        self.tasks.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default()
    }
    /// Forgets the per-task timestamps (between phases).
    pub fn clear_tasks(&self) {
        if let Ok(mut m) = self.tasks.lock() {
            m.clear();
        }
    }
}

/// How a bot runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packets {
    /// One final packet carrying the output and the exit code.
    Single,
    /// An output chunk, then the final packet.
    OutputThenFinal,
}

/// Bot behaviour shared by a fleet.
#[derive(Debug, Clone)]
pub struct BotCfg {
    pub packets: Packets,
    /// Upper bound on a `sleep` reply's duration (the real bot honours it).
    pub max_sleep: Duration,
    /// At most this many handshakes in flight (ramp-up).
    pub ramp: usize,
}

/// One simulated bot's identity.
#[derive(Debug, Clone)]
pub struct BotSpec {
    pub id: String,
    pub dims: Value,
}

impl BotSpec {
    /// `{id, pool, os}` plus `extra` (key → values).
    pub fn new(id: &str, pool: &str, extra: &[(&str, Vec<String>)]) -> BotSpec {
        let mut d = serde_json::Map::new();
        d.insert("id".into(), json!([id]));
        d.insert("pool".into(), json!([pool]));
        d.insert("os".into(), json!(["Linux"]));
        for (k, vs) in extra {
            d.insert((*k).to_string(), json!(vs));
        }
        BotSpec { id: id.to_string(), dims: Value::Object(d) }
    }
}

/// A running fleet; aborting it drops every in-flight request.
pub struct Fleet {
    handles: Vec<JoinHandle<()>>,
}

impl Fleet {
    pub fn start(http: &Http, specs: Vec<BotSpec>, cfg: &BotCfg, rec: &Arc<Recorder>) -> Fleet {
        let ramp = Arc::new(Semaphore::new(cfg.ramp.max(1)));
        let handles = specs
            .into_iter()
            .map(|spec| {
                let bot = SimBot {
                    http: http.clone(),
                    spec,
                    cfg: cfg.clone(),
                    rec: rec.clone(),
                    session: None,
                    state: json!({"running_time": 1, "sleep_streak": 0}),
                };
                tokio::spawn(bot.run(ramp.clone()))
            })
            .collect();
        Fleet { handles }
    }

    /// Waits until `n` bots have sent their first poll (or `limit` passes).
    pub async fn wait_polling(rec: &Recorder, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while rec.polling.load(Relaxed) < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub fn stop(self) {
        for h in self.handles {
            h.abort();
        }
    }
}

struct SimBot {
    http: Http,
    spec: BotSpec,
    cfg: BotCfg,
    rec: Arc<Recorder>,
    session: Option<String>,
    state: Value,
}

const OUTPUT: &[u8] = b"hello from a muster-bench bot\n";

impl SimBot {
    async fn run(mut self, ramp: Arc<Semaphore>) {
        {
            let _permit = ramp.acquire().await;
            self.handshake().await;
        }
        self.rec.handshakes.fetch_add(1, Relaxed);
        let mut first = true;
        let mut uuid = uuid::Uuid::new_v4().to_string();
        let mut failures = 0u32;
        loop {
            if first {
                self.rec.polling.fetch_add(1, Relaxed);
                first = false;
            }
            self.rec.polls.fetch_add(1, Relaxed);
            let body = json!({"dimensions": self.spec.dims, "state": self.state, "version": "",
                              "session": self.session, "request_uuid": uuid});
            let reply = match self.http.bot(&self.spec.id, "poll", &body).await {
                Ok(v) => v,
                Err(e) => {
                    self.rec.error(&e);
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
                    continue;
                }
            };
            failures = 0;
            uuid = uuid::Uuid::new_v4().to_string();
            self.remember(&reply);
            match reply["cmd"].as_str().unwrap_or("") {
                "sleep" => {
                    self.rec.sleeps.fetch_add(1, Relaxed);
                    let d = reply["duration"].as_f64().unwrap_or(1.0).max(0.0);
                    tokio::time::sleep(Duration::from_secs_f64(d).min(self.cfg.max_sleep)).await;
                }
                "run" => {
                    let at = Instant::now();
                    self.rec.runs.fetch_add(1, Relaxed);
                    let run_id = reply["manifest"]["task_id"].as_str().unwrap_or("").to_string();
                    self.rec.delivered(&summary_of(&run_id), at);
                    self.execute(&run_id).await;
                }
                "terminate" => return,
                _ => self.handshake().await,
            }
        }
    }

    fn remember(&mut self, v: &Value) {
        if let Some(s) = v["session"].as_str().filter(|s| !s.is_empty()) {
            self.session = Some(s.to_string());
        }
    }

    async fn handshake(&mut self) {
        let session_id = format!("{}/1", uuid::Uuid::new_v4().simple());
        let body = json!({"dimensions": self.spec.dims, "state": self.state, "version": "", "session_id": session_id});
        let mut wait = Duration::from_millis(100);
        loop {
            match self.http.bot(&self.spec.id, "handshake", &body).await {
                Ok(v) => {
                    self.remember(&v);
                    return;
                }
                Err(e) => {
                    self.rec.error(&e);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sends one task_update, retrying the same body (idempotent) on failure.
    async fn update(&mut self, run_id: &str, fields: Value) -> Option<Value> {
        let mut body = json!({"id": self.spec.id, "task_id": run_id, "session": self.session, "cost_usd": 0.0001});
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for attempt in 0..50u64 {
            self.rec.updates.fetch_add(1, Relaxed);
            match self.http.bot(&self.spec.id, &format!("task_update/{run_id}"), &body).await {
                Ok(v) => {
                    self.remember(&v);
                    return Some(v);
                }
                Err(e) => {
                    self.rec.error(&e);
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1).min(20))).await;
                }
            }
        }
        None
    }

    async fn execute(&mut self, run_id: &str) {
        let output = muster_api::bot::encode_b64(OUTPUT);
        let fin = json!({"exit_code": 0, "duration": 0.001, "hard_timeout": false, "io_timeout": false,
                         "bot_overhead": 0.001});
        let done = match self.cfg.packets {
            Packets::Single => {
                let mut f = fin;
                f["output"] = json!(output);
                f["output_chunk_start"] = json!(0);
                self.update(run_id, f).await
            }
            Packets::OutputThenFinal => {
                let out = self.update(run_id, json!({"output": output, "output_chunk_start": 0})).await;
                if out.is_some() {
                    self.update(run_id, fin).await
                } else {
                    None
                }
            }
        };
        if done.is_some() {
            let at = Instant::now();
            self.rec.completed.fetch_add(1, Relaxed);
            self.rec.completed(&summary_of(run_id), at);
        }
    }
}

/// Submits NewTask calls. `rate` > 0: that many per second (each call its own
/// task, so a slow reply does not slow the rate); 0: `clients` closed loops
/// as fast as replies come. `dims` picks each task's dimensions. Every
/// acknowledged task id is recorded with its reply time.
pub struct Submitters {
    handles: Vec<JoinHandle<()>>,
}

pub type DimsFn = Arc<dyn Fn(u64) -> Vec<(String, String)> + Send + Sync>;

impl Submitters {
    pub fn start(
        http: &Http,
        clients: usize,
        rate: f64,
        limit: Option<u64>,
        dims: DimsFn,
        rec: &Arc<Recorder>,
    ) -> Self {
        let seq = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        if rate > 0.0 {
            let (http, rec, seq, dims) = (http.clone(), rec.clone(), seq.clone(), dims.clone());
            let inflight = Arc::new(Semaphore::new(clients.max(1) * 64));
            handles.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    tick.tick().await;
                    let n = seq.fetch_add(1, Relaxed);
                    if limit.is_some_and(|l| n >= l) {
                        return;
                    }
                    let Ok(permit) = inflight.clone().acquire_owned().await else { return };
                    let (http, rec, dims) = (http.clone(), rec.clone(), dims.clone());
                    tokio::spawn(async move {
                        submit_one(&http, &rec, n, &dims(n)).await;
                        drop(permit);
                    });
                }
            }));
        } else {
            for _ in 0..clients.max(1) {
                let (http, rec, seq, dims) = (http.clone(), rec.clone(), seq.clone(), dims.clone());
                handles.push(tokio::spawn(async move {
                    loop {
                        let n = seq.fetch_add(1, Relaxed);
                        if limit.is_some_and(|l| n >= l) {
                            return;
                        }
                        submit_one(&http, &rec, n, &dims(n)).await;
                    }
                }));
            }
        }
        Submitters { handles }
    }

    /// Waits for every submitter to finish (only with a `limit`).
    pub async fn join(self) {
        for h in self.handles {
            let _ = h.await;
        }
    }

    pub fn stop(self) {
        for h in self.handles {
            h.abort();
        }
    }
}

async fn submit_one(http: &Http, rec: &Recorder, n: u64, dims: &[(String, String)]) {
    let uuid = uuid::Uuid::new_v4().to_string();
    for attempt in 0..5u64 {
        match http.new_task(&format!("bench-{n}"), dims, &uuid).await {
            Ok(id) => {
                let at = Instant::now();
                rec.submitted.fetch_add(1, Relaxed);
                rec.created(&id, at);
                return;
            }
            Err(e) => {
                rec.error(&e);
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
        }
    }
}
