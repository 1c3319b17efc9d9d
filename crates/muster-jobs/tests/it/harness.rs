//! A test world: a store, a fake clock, engines (replicas) and helpers to
//! define jobs and read their invocations.

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use muster_core::{Clock, Time};
use muster_jobs::config::toml_file;
use muster_jobs::engine::{Catalog, EngineConfig};
use muster_jobs::manager::{Controller, ManagerError, Managers, TaskManager, Traits};
use muster_jobs::model::Status;
use muster_jobs::{Engine, Invocation};
use muster_store::Store;
use muster_testkit::FakeClock;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct World {
    pub store: Arc<dyn Store>,
    pub clock: Arc<FakeClock>,
    pub engine: Arc<Engine>,
    pub flaky: Arc<Flaky>,
    pub project: String,
}

/// A manager that fails with a transient error `fail_first` times per
/// invocation, counts launches per idempotency key, can hang, and creates
/// one "remote task" per key.
#[derive(Default)]
pub struct Flaky {
    pub fail_first: Mutex<i64>,
    pub launches: Mutex<BTreeMap<String, i64>>,
    pub tasks: Mutex<BTreeMap<String, String>>,
    pub hang_first: Mutex<bool>,
}

#[async_trait]
impl TaskManager for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn traits(&self) -> Traits {
        Traits { multistage: false }
    }
    fn validate(&self, _p: &serde_json::Value, _realm: &str) -> Result<(), String> {
        Ok(())
    }
    async fn launch(&self, ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        let key = ctl.idempotency_key();
        let n = {
            let mut l = self.launches.lock();
            let n = l.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let task = {
            let mut t = self.tasks.lock();
            let len = t.len();
            t.entry(key.clone()).or_insert_with(|| format!("task-{len}")).clone()
        };
        if n == 1 && std::mem::take(&mut *self.hang_first.lock()) {
            // The "crash": launched remotely, never recorded.
            std::future::pending::<()>().await;
        }
        if n <= *self.fail_first.lock() {
            return Err(ManagerError::Transient(format!("backend busy (attempt {n})")));
        }
        ctl.set_task_data(serde_json::json!({ "task": task }));
        ctl.set_status(Status::Succeeded);
        Ok(())
    }
    async fn abort(&self, _ctl: &mut Controller<'_>) -> Result<(), ManagerError> {
        Ok(())
    }
    async fn handle_timer(&self, _ctl: &mut Controller<'_>, _t: &str, _p: &[u8]) -> Result<(), ManagerError> {
        Ok(())
    }
}

pub fn t0() -> Time {
    Utc.with_ymd_and_hms(2044, 1, 1, 0, 0, 0).single().expect("valid")
}

impl World {
    pub fn new(store: Arc<dyn Store>, project: &str) -> World {
        let clock = Arc::new(FakeClock::new());
        clock.set(t0());
        let flaky = Arc::new(Flaky::default());
        let engine = Self::replica(&store, &clock, &flaky, "r1");
        World { store, clock, engine, flaky, project: project.to_string() }
    }

    /// Another engine on the same store and clock (a second replica).
    pub fn replica(store: &Arc<dyn Store>, clock: &Arc<FakeClock>, flaky: &Arc<Flaky>, name: &str) -> Arc<Engine> {
        let mut managers = Managers::builtin();
        managers.register(flaky.clone());
        let cfg = EngineConfig { replica: name.to_string(), ..EngineConfig::default() };
        let clock: Arc<dyn Clock> = clock.clone();
        Arc::new(Engine::new(store.clone(), clock, managers, cfg).expect("engine"))
    }

    pub fn now(&self) -> Time {
        self.clock.now()
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(std::time::Duration::from_millis((secs * 1000) as u64));
    }

    pub fn job(&self, id: &str) -> String {
        format!("{}/{id}", self.project)
    }

    /// Applies a jobs.toml body (the project line is added).
    pub async fn configure(&self, body: &str) {
        let src = format!("project = \"{}\"\n{body}", self.project);
        let mut managers = Managers::builtin();
        managers.register(self.flaky.clone());
        let parsed = toml_file::parse("jobs.toml", &src, &managers).expect("test config parses");
        let mut catalog = Catalog { revision: "test".into(), ..Catalog::default() };
        for p in parsed {
            let problem = (!p.problems.is_empty()).then(|| format!("{:?}", p.problems));
            catalog.jobs.push((p.def, problem));
        }
        self.engine.apply_config(&catalog, self.now()).await.expect("apply config");
    }

    pub async fn step(&self) {
        self.engine.step(self.now(), true).await.expect("step");
    }

    /// Newest first.
    pub async fn invocations(&self, id: &str) -> Vec<Invocation> {
        self.engine.invocations(&self.job(id), None, 1000).await.expect("invocations").0
    }

    pub async fn statuses(&self, id: &str) -> Vec<Status> {
        self.invocations(id).await.iter().map(|i| i.status).collect()
    }
}

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}
