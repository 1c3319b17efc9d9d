//! Task requests (TaskProperties/TaskSlice/NewTaskRequest, docs/client-api.md#new-task).

use crate::dims::TaskDimensions;
use crate::ids::TaskId;
use crate::time::Time;
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CacheEntry {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CipdPackage {
    pub package_name: String,
    pub version: String,
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CipdInput {
    pub server: String,
    pub client_package: Option<CipdPackage>,
    pub packages: Vec<CipdPackage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CipdPins {
    pub client_package: Option<CipdPackage>,
    pub packages: Vec<CipdPackage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Digest {
    pub hash: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CasReference {
    pub cas_instance: String,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Containment {
    pub lower_priority: bool,
    /// NOT_SPECIFIED=0, NONE=1, AUTO=2, JOB_OBJECT=3.
    pub containment_type: i32,
    pub limit_processes: i64,
    pub limit_total_committed_memory: i64,
}

/// What to run and where. Immutable once stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskProperties {
    pub caches: Vec<CacheEntry>,
    pub cipd_input: Option<CipdInput>,
    pub command: Vec<String>,
    pub relative_cwd: String,
    pub dimensions: TaskDimensions,
    pub env: Vec<(String, String)>,
    pub env_prefixes: Vec<(String, Vec<String>)>,
    pub execution_timeout_secs: i32,
    pub grace_period_secs: i32,
    pub idempotent: bool,
    pub cas_input_root: Option<CasReference>,
    pub io_timeout_secs: i32,
    pub outputs: Vec<String>,
    /// Never returned by the API, never logged.
    pub secret_bytes: Option<Vec<u8>>,
    pub containment: Containment,
}

impl TaskProperties {
    /// A stable hash of the properties (dedup key, docs/client-api.md#deduplication).
    /// Dimensions, env and caches are canonicalized first.
    pub fn properties_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &[u8]| {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value);
        };
        for c in &self.command {
            field("command", c.as_bytes());
        }
        field("relative_cwd", self.relative_cwd.as_bytes());
        for (k, v) in &self.dimensions.canonical().0 {
            field("dim", format!("{k}:{v}").as_bytes());
        }
        let mut env = self.env.clone();
        env.sort();
        for (k, v) in &env {
            field("env", format!("{k}={v}").as_bytes());
        }
        let mut ep = self.env_prefixes.clone();
        ep.sort();
        for (k, vs) in &ep {
            field("env_prefix", format!("{k}={}", vs.join("\u{0}")).as_bytes());
        }
        field("execution_timeout", &self.execution_timeout_secs.to_le_bytes());
        field("grace_period", &self.grace_period_secs.to_le_bytes());
        field("io_timeout", &self.io_timeout_secs.to_le_bytes());
        field("idempotent", &[self.idempotent as u8]);
        let mut caches = self.caches.clone();
        caches.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &caches {
            field("cache", format!("{}={}", c.name, c.path).as_bytes());
        }
        if let Some(ci) = &self.cipd_input {
            field("cipd_server", ci.server.as_bytes());
            if let Some(cp) = &ci.client_package {
                field("cipd_client", format!("{}@{}", cp.package_name, cp.version).as_bytes());
            }
            for p in &ci.packages {
                field("cipd_pkg", format!("{}@{}@{}", p.package_name, p.version, p.path).as_bytes());
            }
        }
        if let Some(cas) = &self.cas_input_root {
            field("cas_instance", cas.cas_instance.as_bytes());
            if let Some(d) = &cas.digest {
                field("cas_digest", format!("{}/{}", d.hash, d.size_bytes).as_bytes());
            }
        }
        for o in &self.outputs {
            field("output", o.as_bytes());
        }
        if let Some(s) = &self.secret_bytes {
            field("secret", s);
        }
        hex::encode(h.finalize())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TaskSlice {
    pub properties: TaskProperties,
    pub expiration_secs: i32,
    pub wait_for_capacity: bool,
}

/// A new-task request as the client sent it (before validation and defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTaskRequest {
    /// Deprecated top-level expiration; must be 0.
    pub expiration_secs: i32,
    pub name: String,
    pub parent_task_id: String,
    pub priority: i32,
    /// Deprecated top-level properties; must be unset.
    pub properties: Option<TaskProperties>,
    pub task_slices: Vec<TaskSlice>,
    pub tags: Vec<String>,
    pub user: String,
    pub service_account: String,
    pub pubsub_topic: String,
    pub pubsub_auth_token: String,
    pub pubsub_userdata: String,
    pub evaluate_only: bool,
    pub pool_task_template: i32,
    pub bot_ping_tolerance_secs: i32,
    pub request_uuid: String,
    pub resultdb_enable: bool,
    pub realm: String,
}

/// A stored, validated, immutable task request.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub id: TaskId,
    pub created: Time,
    pub name: String,
    /// Stored verbatim (normally a run id).
    pub parent_task_id: String,
    /// Effective priority, 0..=255 (0 only for termination tasks).
    pub priority: i32,
    pub slices: Vec<TaskSlice>,
    /// Final tag list: manual + automatic, sorted, de-duplicated.
    pub tags: Vec<String>,
    pub user: String,
    /// Caller identity, e.g. `user:a@b.com` or `anonymous:anonymous`.
    pub authenticated: String,
    pub service_account: String,
    pub realm: String,
    pub resultdb_enable: bool,
    pub pubsub_topic: String,
    pub pubsub_auth_token: String,
    pub pubsub_userdata: String,
    pub bot_ping_tolerance_secs: i32,
    /// Idempotency key as sent (scoped by the caller identity in storage).
    pub request_uuid: String,
}

impl TaskRequest {
    /// Total expiration of all slices (TaskRequestResponse.expiration_secs).
    pub fn expiration_secs(&self) -> i64 {
        self.slices.iter().map(|s| s.expiration_secs as i64).sum()
    }

    /// Absolute deadline of slice `i`: created + sum of expirations up to i.
    pub fn slice_deadline(&self, i: usize) -> Time {
        let secs: i64 = self.slices.iter().take(i + 1).map(|s| s.expiration_secs as i64).sum();
        crate::time::add_secs(self.created, secs)
    }

    /// Whether this is a bot termination task (TerminateBot).
    pub fn is_termination(&self) -> bool {
        self.tags.iter().any(|t| t == "swarming.terminate:1")
    }

    /// The pool all slices use.
    pub fn pool(&self) -> Option<&str> {
        self.slices.first().and_then(|s| s.properties.dimensions.pool())
    }
}
