//! Versioned JSON blobs: private serde mirrors of the muster-core records.
//!
//! muster-core types do not derive `Serialize` (no wire serde in the domain),
//! so this module owns one mirror struct per stored record and the lossless
//! conversions both ways. Every top-level blob carries `v` (the blob format
//! version); fields added later must be `#[serde(default)]` so old rows
//! still decode. Empty strings, lists and `None`s are omitted (smaller rows,
//! faster startup). Times are microseconds since the Unix epoch.

use crate::{Result, StoreError};
use muster_core::bot::{BotEvent, BotInfo};
use muster_core::dims::{BotDimensions, TaskDimensions};
use muster_core::result::{OperationStats, PerformanceStats, TaskResult};
use muster_core::state::TaskState;
use muster_core::task::{
    CacheEntry, CasReference, CipdInput, CipdPackage, CipdPins, Containment, Digest, TaskProperties, TaskRequest,
    TaskSlice,
};
use muster_core::time::{from_micros, to_micros};
use muster_core::{TaskId, Time};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The blob format version written by this binary.
const BLOB_V: u32 = 1;

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Other(format!("encoding blob: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Other(format!("decoding {what} blob: {e}")))
}

fn t(x: Time) -> i64 {
    to_micros(x)
}
fn ot(x: Option<Time>) -> Option<i64> {
    x.map(to_micros)
}
fn tt(x: i64) -> Time {
    from_micros(x)
}
fn ott(x: Option<i64>) -> Option<Time> {
    x.map(from_micros)
}

#[derive(Serialize, Deserialize)]
struct DigestB {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hash: String,
    size_bytes: i64,
}

#[derive(Serialize, Deserialize)]
struct CasRefB {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cas_instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<DigestB>,
}

fn cas_b(c: &CasReference) -> CasRefB {
    CasRefB {
        cas_instance: c.cas_instance.clone(),
        digest: c.digest.as_ref().map(|d| DigestB { hash: d.hash.clone(), size_bytes: d.size_bytes }),
    }
}
fn cas_d(c: CasRefB) -> CasReference {
    CasReference {
        cas_instance: c.cas_instance,
        digest: c.digest.map(|d| Digest { hash: d.hash, size_bytes: d.size_bytes }),
    }
}

#[derive(Serialize, Deserialize)]
struct PkgB {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    package_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    path: String,
}

fn pkg_b(p: &CipdPackage) -> PkgB {
    PkgB { package_name: p.package_name.clone(), version: p.version.clone(), path: p.path.clone() }
}
fn pkg_d(p: PkgB) -> CipdPackage {
    CipdPackage { package_name: p.package_name, version: p.version, path: p.path }
}

#[derive(Serialize, Deserialize)]
struct CipdInputB {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_package: Option<PkgB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    packages: Vec<PkgB>,
}

#[derive(Serialize, Deserialize)]
struct CipdPinsB {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_package: Option<PkgB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    packages: Vec<PkgB>,
}

fn pins_b(p: &CipdPins) -> CipdPinsB {
    CipdPinsB { client_package: p.client_package.as_ref().map(pkg_b), packages: p.packages.iter().map(pkg_b).collect() }
}
fn pins_d(p: CipdPinsB) -> CipdPins {
    CipdPins { client_package: p.client_package.map(pkg_d), packages: p.packages.into_iter().map(pkg_d).collect() }
}

#[derive(Serialize, Deserialize)]
struct ContainmentB {
    lower_priority: bool,
    containment_type: i32,
    limit_processes: i64,
    limit_total_committed_memory: i64,
}

#[derive(Serialize, Deserialize)]
struct PropertiesB {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    caches: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cipd_input: Option<CipdInputB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    relative_cwd: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dimensions: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env_prefixes: Vec<(String, Vec<String>)>,
    execution_timeout_secs: i32,
    grace_period_secs: i32,
    idempotent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cas_input_root: Option<CasRefB>,
    io_timeout_secs: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_bytes: Option<Vec<u8>>,
    containment: ContainmentB,
}

fn props_b(p: &TaskProperties) -> PropertiesB {
    PropertiesB {
        caches: p.caches.iter().map(|c| (c.name.clone(), c.path.clone())).collect(),
        cipd_input: p.cipd_input.as_ref().map(|c| CipdInputB {
            server: c.server.clone(),
            client_package: c.client_package.as_ref().map(pkg_b),
            packages: c.packages.iter().map(pkg_b).collect(),
        }),
        command: p.command.clone(),
        relative_cwd: p.relative_cwd.clone(),
        dimensions: p.dimensions.0.clone(),
        env: p.env.clone(),
        env_prefixes: p.env_prefixes.clone(),
        execution_timeout_secs: p.execution_timeout_secs,
        grace_period_secs: p.grace_period_secs,
        idempotent: p.idempotent,
        cas_input_root: p.cas_input_root.as_ref().map(cas_b),
        io_timeout_secs: p.io_timeout_secs,
        outputs: p.outputs.clone(),
        secret_bytes: p.secret_bytes.clone(),
        containment: ContainmentB {
            lower_priority: p.containment.lower_priority,
            containment_type: p.containment.containment_type,
            limit_processes: p.containment.limit_processes,
            limit_total_committed_memory: p.containment.limit_total_committed_memory,
        },
    }
}

fn props_d(p: PropertiesB) -> TaskProperties {
    TaskProperties {
        caches: p.caches.into_iter().map(|(name, path)| CacheEntry { name, path }).collect(),
        cipd_input: p.cipd_input.map(|c| CipdInput {
            server: c.server,
            client_package: c.client_package.map(pkg_d),
            packages: c.packages.into_iter().map(pkg_d).collect(),
        }),
        command: p.command,
        relative_cwd: p.relative_cwd,
        dimensions: TaskDimensions(p.dimensions),
        env: p.env,
        env_prefixes: p.env_prefixes,
        execution_timeout_secs: p.execution_timeout_secs,
        grace_period_secs: p.grace_period_secs,
        idempotent: p.idempotent,
        cas_input_root: p.cas_input_root.map(cas_d),
        io_timeout_secs: p.io_timeout_secs,
        outputs: p.outputs,
        secret_bytes: p.secret_bytes,
        containment: Containment {
            lower_priority: p.containment.lower_priority,
            containment_type: p.containment.containment_type,
            limit_processes: p.containment.limit_processes,
            limit_total_committed_memory: p.containment.limit_total_committed_memory,
        },
    }
}

#[derive(Serialize, Deserialize)]
struct SliceB {
    properties: PropertiesB,
    expiration_secs: i32,
    wait_for_capacity: bool,
}

/// Blob of `task_request`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RequestB {
    v: u32,
    id: i64,
    created: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    parent_task_id: String,
    priority: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    slices: Vec<SliceB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    authenticated: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    service_account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    realm: String,
    resultdb_enable: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pubsub_topic: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pubsub_auth_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pubsub_userdata: String,
    bot_ping_tolerance_secs: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    request_uuid: String,
}

pub(crate) fn request_b(r: &TaskRequest) -> RequestB {
    RequestB {
        v: BLOB_V,
        id: r.id.0,
        created: t(r.created),
        name: r.name.clone(),
        parent_task_id: r.parent_task_id.clone(),
        priority: r.priority,
        slices: r
            .slices
            .iter()
            .map(|s| SliceB {
                properties: props_b(&s.properties),
                expiration_secs: s.expiration_secs,
                wait_for_capacity: s.wait_for_capacity,
            })
            .collect(),
        tags: r.tags.clone(),
        user: r.user.clone(),
        authenticated: r.authenticated.clone(),
        service_account: r.service_account.clone(),
        realm: r.realm.clone(),
        resultdb_enable: r.resultdb_enable,
        pubsub_topic: r.pubsub_topic.clone(),
        pubsub_auth_token: r.pubsub_auth_token.clone(),
        pubsub_userdata: r.pubsub_userdata.clone(),
        bot_ping_tolerance_secs: r.bot_ping_tolerance_secs,
        request_uuid: r.request_uuid.clone(),
    }
}

pub(crate) fn request_d(b: RequestB) -> TaskRequest {
    TaskRequest {
        id: TaskId(b.id),
        created: tt(b.created),
        name: b.name,
        parent_task_id: b.parent_task_id,
        priority: b.priority,
        slices: b
            .slices
            .into_iter()
            .map(|s| TaskSlice {
                properties: props_d(s.properties),
                expiration_secs: s.expiration_secs,
                wait_for_capacity: s.wait_for_capacity,
            })
            .collect(),
        tags: b.tags,
        user: b.user,
        authenticated: b.authenticated,
        service_account: b.service_account,
        realm: b.realm,
        resultdb_enable: b.resultdb_enable,
        pubsub_topic: b.pubsub_topic,
        pubsub_auth_token: b.pubsub_auth_token,
        pubsub_userdata: b.pubsub_userdata,
        bot_ping_tolerance_secs: b.bot_ping_tolerance_secs,
        request_uuid: b.request_uuid,
    }
}

pub(crate) fn decode_request(bytes: &[u8]) -> Result<TaskRequest> {
    decode::<RequestB>(bytes, "task request").map(request_d)
}

#[derive(Serialize, Deserialize)]
struct PerfB {
    bot_overhead: f32,
    /// isolated_download, isolated_upload, package_installation, cache_trim,
    /// named_caches_install, named_caches_uninstall, cleanup (durations).
    ops: [Option<f32>; 7],
}

fn perf_b(p: &PerformanceStats) -> PerfB {
    let d = |o: &Option<OperationStats>| o.as_ref().map(|s| s.duration);
    PerfB {
        bot_overhead: p.bot_overhead,
        ops: [
            d(&p.isolated_download),
            d(&p.isolated_upload),
            d(&p.package_installation),
            d(&p.cache_trim),
            d(&p.named_caches_install),
            d(&p.named_caches_uninstall),
            d(&p.cleanup),
        ],
    }
}

fn perf_d(p: PerfB) -> PerformanceStats {
    let o = |x: Option<f32>| x.map(|duration| OperationStats { duration });
    let [a, b, c, d, e, f, g] = p.ops;
    PerformanceStats {
        bot_overhead: p.bot_overhead,
        isolated_download: o(a),
        isolated_upload: o(b),
        package_installation: o(c),
        cache_trim: o(d),
        named_caches_install: o(e),
        named_caches_uninstall: o(f),
        cleanup: o(g),
    }
}

/// Blob of `task_result` (the `version` column is authoritative).
#[derive(Serialize, Deserialize)]
pub(crate) struct ResultB {
    v: u32,
    id: i64,
    state: i32,
    current_slice: i32,
    created: i64,
    modified: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    abandoned: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    bot_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    bot_dimensions: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    bot_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_idle_since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    failure: bool,
    internal_failure: bool,
    killing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_after: Option<i64>,
    cost_usd: f64,
    cost_saved_usd: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    deduped_from: String,
    output_of: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cas_output_root: Option<CasRefB>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cipd_pins: Option<CipdPinsB>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    performance_stats: Option<PerfB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing_cas: Vec<CasRefB>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing_cipd: Vec<PkgB>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    try_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dedup_hash: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    server_versions: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    claim_id: String,
}

pub(crate) fn encode_result(r: &TaskResult) -> Result<Vec<u8>> {
    encode(&ResultB {
        v: BLOB_V,
        id: r.id.0,
        state: r.state.as_i32(),
        current_slice: r.current_slice,
        created: t(r.created),
        modified: t(r.modified),
        started: ot(r.started),
        completed: ot(r.completed),
        abandoned: ot(r.abandoned),
        bot_id: r.bot_id.clone(),
        bot_dimensions: r.bot_dimensions.0.clone(),
        bot_version: r.bot_version.clone(),
        bot_idle_since: ot(r.bot_idle_since),
        exit_code: r.exit_code,
        duration: r.duration,
        failure: r.failure,
        internal_failure: r.internal_failure,
        killing: r.killing,
        dead_after: ot(r.dead_after),
        cost_usd: r.cost_usd,
        cost_saved_usd: r.cost_saved_usd,
        deduped_from: r.deduped_from.clone(),
        output_of: r.output_of.0,
        cas_output_root: r.cas_output_root.as_ref().map(cas_b),
        cipd_pins: r.cipd_pins.as_ref().map(pins_b),
        performance_stats: r.performance_stats.as_ref().map(perf_b),
        missing_cas: r.missing_cas.iter().map(cas_b).collect(),
        missing_cipd: r.missing_cipd.iter().map(pkg_b).collect(),
        try_number: r.try_number,
        dedup_hash: r.dedup_hash.clone(),
        name: r.name.clone(),
        tags: r.tags.clone(),
        user: r.user.clone(),
        server_versions: r.server_versions.clone(),
        claim_id: r.claim_id.clone(),
    })
}

/// Decodes a result blob; `version` comes from the row's column.
pub(crate) fn decode_result(bytes: &[u8], version: i64) -> Result<TaskResult> {
    let b: ResultB = decode(bytes, "task result")?;
    let state = TaskState::from_i32(b.state)
        .ok_or_else(|| StoreError::Other(format!("decoding task result blob: unknown state {}", b.state)))?;
    Ok(TaskResult {
        id: TaskId(b.id),
        version,
        state,
        current_slice: b.current_slice,
        created: tt(b.created),
        modified: tt(b.modified),
        started: ott(b.started),
        completed: ott(b.completed),
        abandoned: ott(b.abandoned),
        bot_id: b.bot_id,
        bot_dimensions: BotDimensions(b.bot_dimensions),
        bot_version: b.bot_version,
        bot_idle_since: ott(b.bot_idle_since),
        exit_code: b.exit_code,
        duration: b.duration,
        failure: b.failure,
        internal_failure: b.internal_failure,
        killing: b.killing,
        dead_after: ott(b.dead_after),
        cost_usd: b.cost_usd,
        cost_saved_usd: b.cost_saved_usd,
        deduped_from: b.deduped_from,
        output_of: TaskId(b.output_of),
        cas_output_root: b.cas_output_root.map(cas_d),
        cipd_pins: b.cipd_pins.map(pins_d),
        performance_stats: b.performance_stats.map(perf_d),
        missing_cas: b.missing_cas.into_iter().map(cas_d).collect(),
        missing_cipd: b.missing_cipd.into_iter().map(pkg_d).collect(),
        try_number: b.try_number,
        dedup_hash: b.dedup_hash,
        name: b.name,
        tags: b.tags,
        user: b.user,
        server_versions: b.server_versions,
        claim_id: b.claim_id,
    })
}

/// Blob of `bot`.
#[derive(Serialize, Deserialize)]
struct BotB {
    v: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    bot_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dimensions: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state_json: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    external_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    authenticated_as: String,
    first_seen: i64,
    last_seen: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_id: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    task_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    quarantined_msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    maintenance_msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    termination_task_id: String,
    deleted: bool,
    is_dead: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_since: Option<i64>,
}

pub(crate) fn encode_bot(b: &BotInfo) -> Result<Vec<u8>> {
    encode(&BotB {
        v: BLOB_V,
        bot_id: b.bot_id.clone(),
        dimensions: b.dimensions.0.clone(),
        state_json: b.state_json.clone(),
        version: b.version.clone(),
        external_ip: b.external_ip.clone(),
        authenticated_as: b.authenticated_as.clone(),
        first_seen: t(b.first_seen),
        last_seen: t(b.last_seen),
        session_id: b.session_id.clone(),
        task_id: b.task_id.map(|i| i.0),
        task_name: b.task_name.clone(),
        quarantined_msg: b.quarantined_msg.clone(),
        maintenance_msg: b.maintenance_msg.clone(),
        termination_task_id: b.termination_task_id.clone(),
        deleted: b.deleted,
        is_dead: b.is_dead,
        idle_since: ot(b.idle_since),
    })
}

pub(crate) fn decode_bot(bytes: &[u8]) -> Result<BotInfo> {
    let b: BotB = decode(bytes, "bot")?;
    Ok(BotInfo {
        bot_id: b.bot_id,
        dimensions: BotDimensions(b.dimensions),
        state_json: b.state_json,
        version: b.version,
        external_ip: b.external_ip,
        authenticated_as: b.authenticated_as,
        first_seen: tt(b.first_seen),
        last_seen: tt(b.last_seen),
        session_id: b.session_id,
        task_id: b.task_id.map(TaskId),
        task_name: b.task_name,
        quarantined_msg: b.quarantined_msg,
        maintenance_msg: b.maintenance_msg,
        termination_task_id: b.termination_task_id,
        deleted: b.deleted,
        is_dead: b.is_dead,
        idle_since: ott(b.idle_since),
    })
}

/// Blob of `bot_event`.
#[derive(Serialize, Deserialize)]
struct EventB {
    v: u32,
    ts: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    bot_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    event_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dimensions: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state_json: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    external_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    authenticated_as: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    version: String,
    quarantined: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    maintenance_msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    task_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    session_id: String,
}

pub(crate) fn encode_event(e: &BotEvent) -> Result<Vec<u8>> {
    encode(&EventB {
        v: BLOB_V,
        ts: t(e.ts),
        bot_id: e.bot_id.clone(),
        event_type: e.event_type.clone(),
        message: e.message.clone(),
        dimensions: e.dimensions.0.clone(),
        state_json: e.state_json.clone(),
        external_ip: e.external_ip.clone(),
        authenticated_as: e.authenticated_as.clone(),
        version: e.version.clone(),
        quarantined: e.quarantined,
        maintenance_msg: e.maintenance_msg.clone(),
        task_id: e.task_id.clone(),
        session_id: e.session_id.clone(),
    })
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<BotEvent> {
    let b: EventB = decode(bytes, "bot event")?;
    Ok(BotEvent {
        ts: tt(b.ts),
        bot_id: b.bot_id,
        event_type: b.event_type,
        message: b.message,
        dimensions: BotDimensions(b.dimensions),
        state_json: b.state_json,
        external_ip: b.external_ip,
        authenticated_as: b.authenticated_as,
        version: b.version,
        quarantined: b.quarantined,
        maintenance_msg: b.maintenance_msg,
        task_id: b.task_id,
        session_id: b.session_id,
    })
}
