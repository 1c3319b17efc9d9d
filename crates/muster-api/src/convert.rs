//! Conversions between the swarming.v2 wire types ([`crate::pb`]) and the
//! muster-core domain types.
//!
//! Owns: the shape of every API view of the domain: which fields a
//! `TaskRequestResponse` echoes (docs/client-api.md#stored-request: secrets redacted, pubsub
//! token dropped, dimensions sorted), the summary and run views of a
//! `TaskResultResponse` (docs/client-api.md#result-view), `BotInfo`/`BotEventResponse` (docs/client-api.md#bots-and-events), and
//! enum/timestamp mapping. Unknown enum numbers are INVALID_ARGUMENT.
//!
//! Naming: `x_from_pb` builds a domain value from the wire, `x_to_pb` the
//! reverse; response views are named after the pb message they build.

use crate::pb;
use crate::prpc::Status;
use muster_core::bot::{BotEvent, BotInfo};
use muster_core::dims::{BotDimensions, DimFilter, TaskDimensions};
use muster_core::result::{OperationStats, PerformanceStats, TaskResult};
use muster_core::state::{NullableBool, SortQuery, StateQuery, TaskState};
use muster_core::task::{self, TaskProperties, TaskRequest, TaskSlice};
use muster_core::time::Time;

/// What secret bytes are echoed as (docs/client-api.md#stored-request).
pub const REDACTED: &[u8] = b"<REDACTED>";

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// A domain time as a protobuf Timestamp.
pub fn timestamp(t: Time) -> pb::Timestamp {
    pb::Timestamp::from_datetime(t)
}

/// `Some(timestamp)` for `Some(time)`.
pub fn opt_timestamp(t: Option<Time>) -> Option<pb::Timestamp> {
    t.map(timestamp)
}

/// A protobuf Timestamp as a domain time; out of range ⇒ INVALID_ARGUMENT.
pub fn time_from_pb(ts: &pb::Timestamp) -> Result<Time, Status> {
    ts.to_datetime()
        .ok_or_else(|| Status::invalid_argument(format!("invalid timestamp {}s {}ns", ts.seconds, ts.nanos)))
}

/// An optional Timestamp field (`start`, `end`).
pub fn opt_time_from_pb(ts: Option<&pb::Timestamp>) -> Result<Option<Time>, Status> {
    ts.map(time_from_pb).transpose()
}

// ---------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------

/// The wire enum of a domain state.
pub fn task_state_to_pb(s: TaskState) -> pb::TaskState {
    match s {
        TaskState::Invalid => pb::TaskState::Invalid,
        TaskState::Running => pb::TaskState::Running,
        TaskState::Pending => pb::TaskState::Pending,
        TaskState::Expired => pb::TaskState::Expired,
        TaskState::TimedOut => pb::TaskState::TimedOut,
        TaskState::BotDied => pb::TaskState::BotDied,
        TaskState::Canceled => pb::TaskState::Canceled,
        TaskState::Completed => pb::TaskState::Completed,
        TaskState::Killed => pb::TaskState::Killed,
        TaskState::NoResource => pb::TaskState::NoResource,
        TaskState::ClientError => pb::TaskState::ClientError,
    }
}

/// A wire TaskState number as a domain state.
pub fn task_state_from_pb(v: i32) -> Result<TaskState, Status> {
    TaskState::from_i32(v).ok_or_else(|| Status::invalid_argument(format!("invalid task state {v}")))
}

/// A `state` filter (`StateQuery`) field.
pub fn state_query_from_pb(v: i32) -> Result<StateQuery, Status> {
    StateQuery::from_i32(v).ok_or_else(|| Status::invalid_argument(format!("invalid state query {v}")))
}

/// A `sort` (`SortQuery`) field.
pub fn sort_query_from_pb(v: i32) -> Result<SortQuery, Status> {
    SortQuery::from_i32(v).ok_or_else(|| Status::invalid_argument(format!("invalid sort query {v}")))
}

/// A tri-state (`NullableBool`) filter field.
pub fn nullable_bool_from_pb(v: i32) -> Result<NullableBool, Status> {
    NullableBool::from_i32(v).ok_or_else(|| Status::invalid_argument(format!("invalid nullable bool {v}")))
}

// ---------------------------------------------------------------------------
// Dimensions and pairs
// ---------------------------------------------------------------------------

/// Bot dimensions as key-sorted `StringListPair`s (values already sorted).
pub fn string_list_pairs(d: &BotDimensions) -> Vec<pb::StringListPair> {
    d.0.iter().map(|(k, v)| pb::StringListPair { key: k.clone(), value: v.clone() }).collect()
}

/// `StringListPair`s as bot dimensions (values sorted, de-duplicated).
pub fn bot_dimensions_from_pb(pairs: &[pb::StringListPair]) -> BotDimensions {
    BotDimensions::from_map(pairs.iter().map(|p| (p.key.clone(), p.value.clone())))
}

/// Listing filters from `StringPair`s (`os` = `Linux|Mac`), docs/client-api.md#paging-and-filters.
pub fn dim_filters_from_pb(pairs: &[pb::StringPair]) -> Vec<DimFilter> {
    pairs.iter().map(|p| DimFilter::new(&p.key, &p.value)).collect()
}

fn string_pairs(v: &[(String, String)]) -> Vec<pb::StringPair> {
    v.iter().map(|(k, v)| pb::StringPair { key: k.clone(), value: v.clone() }).collect()
}

fn pairs_from_pb(v: Vec<pb::StringPair>) -> Vec<(String, String)> {
    v.into_iter().map(|p| (p.key, p.value)).collect()
}

// ---------------------------------------------------------------------------
// Requests: wire → domain
// ---------------------------------------------------------------------------

fn cipd_package_from_pb(p: pb::CipdPackage) -> task::CipdPackage {
    task::CipdPackage { package_name: p.package_name, version: p.version, path: p.path }
}

fn cas_reference_from_pb(c: pb::CasReference) -> task::CasReference {
    task::CasReference {
        cas_instance: c.cas_instance,
        digest: c.digest.map(|d| task::Digest { hash: d.hash, size_bytes: d.size_bytes }),
    }
}

/// Wire properties as domain properties. Empty `secret_bytes` ⇒ `None`.
pub fn task_properties_from_pb(p: pb::TaskProperties) -> TaskProperties {
    TaskProperties {
        caches: p.caches.into_iter().map(|c| task::CacheEntry { name: c.name, path: c.path }).collect(),
        cipd_input: p.cipd_input.map(|c| task::CipdInput {
            server: c.server,
            client_package: c.client_package.map(cipd_package_from_pb),
            packages: c.packages.into_iter().map(cipd_package_from_pb).collect(),
        }),
        command: p.command,
        relative_cwd: p.relative_cwd,
        dimensions: TaskDimensions::new(pairs_from_pb(p.dimensions)),
        env: pairs_from_pb(p.env),
        env_prefixes: p.env_prefixes.into_iter().map(|e| (e.key, e.value)).collect(),
        execution_timeout_secs: p.execution_timeout_secs,
        grace_period_secs: p.grace_period_secs,
        idempotent: p.idempotent,
        cas_input_root: p.cas_input_root.map(cas_reference_from_pb),
        io_timeout_secs: p.io_timeout_secs,
        outputs: p.outputs,
        secret_bytes: if p.secret_bytes.is_empty() { None } else { Some(p.secret_bytes) },
        containment: p
            .containment
            .map(|c| task::Containment {
                lower_priority: c.lower_priority,
                containment_type: c.containment_type,
                limit_processes: c.limit_processes,
                limit_total_committed_memory: c.limit_total_committed_memory,
            })
            .unwrap_or_default(),
    }
}

/// A wire slice as a domain slice.
pub fn task_slice_from_pb(s: pb::TaskSlice) -> TaskSlice {
    TaskSlice {
        properties: task_properties_from_pb(s.properties.unwrap_or_default()),
        expiration_secs: s.expiration_secs,
        wait_for_capacity: s.wait_for_capacity,
    }
}

/// A NewTask request as the domain's unvalidated request. Nothing is
/// validated here (that is `muster_core::validate`); deprecated fields are
/// carried over so validation can reject them.
pub fn new_task_request_from_pb(r: pb::NewTaskRequest) -> task::NewTaskRequest {
    task::NewTaskRequest {
        expiration_secs: r.expiration_secs,
        name: r.name,
        parent_task_id: r.parent_task_id,
        priority: r.priority,
        properties: r.properties.map(task_properties_from_pb),
        task_slices: r.task_slices.into_iter().map(task_slice_from_pb).collect(),
        tags: r.tags,
        user: r.user,
        service_account: r.service_account,
        pubsub_topic: r.pubsub_topic,
        pubsub_auth_token: r.pubsub_auth_token,
        pubsub_userdata: r.pubsub_userdata,
        evaluate_only: r.evaluate_only,
        pool_task_template: r.pool_task_template,
        bot_ping_tolerance_secs: r.bot_ping_tolerance_secs,
        request_uuid: r.request_uuid,
        resultdb_enable: r.resultdb.is_some_and(|c| c.enable),
        realm: r.realm,
    }
}

// ---------------------------------------------------------------------------
// Requests: domain → wire
// ---------------------------------------------------------------------------

fn cipd_package_to_pb(p: &task::CipdPackage) -> pb::CipdPackage {
    pb::CipdPackage { package_name: p.package_name.clone(), version: p.version.clone(), path: p.path.clone() }
}

fn cas_reference_to_pb(c: &task::CasReference) -> pb::CasReference {
    pb::CasReference {
        cas_instance: c.cas_instance.clone(),
        digest: c.digest.as_ref().map(|d| pb::Digest { hash: d.hash.clone(), size_bytes: d.size_bytes }),
    }
}

fn cipd_pins_to_pb(p: &task::CipdPins) -> pb::CipdPins {
    pb::CipdPins {
        client_package: p.client_package.as_ref().map(cipd_package_to_pb),
        packages: p.packages.iter().map(cipd_package_to_pb).collect(),
    }
}

/// How [`task_properties_to_pb`] renders stored properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertiesView {
    /// Everything as is (building a request, e.g. in the CLI).
    Full,
    /// An API echo of a stored request: secret bytes become `<REDACTED>`,
    /// dimensions are sorted by key then value, containment keeps only its
    /// type (docs/client-api.md#task-properties, #stored-request).
    Echo,
}

/// Domain properties as wire properties.
pub fn task_properties_to_pb(p: &TaskProperties, view: PropertiesView) -> pb::TaskProperties {
    let mut dimensions = p.dimensions.0.clone();
    let (secret_bytes, containment) = match view {
        PropertiesView::Full => (
            p.secret_bytes.clone().unwrap_or_default(),
            pb::Containment {
                lower_priority: p.containment.lower_priority,
                containment_type: p.containment.containment_type,
                limit_processes: p.containment.limit_processes,
                limit_total_committed_memory: p.containment.limit_total_committed_memory,
            },
        ),
        PropertiesView::Echo => {
            dimensions.sort();
            (
                p.secret_bytes.as_ref().map(|_| REDACTED.to_vec()).unwrap_or_default(),
                pb::Containment { containment_type: p.containment.containment_type, ..Default::default() },
            )
        }
    };
    // Unset containment (type NOT_SPECIFIED, nothing else) is absent, as
    // upstream echoes it; env and env prefixes are maps there: sorted by key.
    let containment = (containment != pb::Containment::default()).then_some(containment);
    let mut env = p.env.clone();
    let mut env_prefixes = p.env_prefixes.clone();
    if view == PropertiesView::Echo {
        env.sort_by(|a, b| a.0.cmp(&b.0));
        env_prefixes.sort_by(|a, b| a.0.cmp(&b.0));
    }
    pb::TaskProperties {
        caches: p.caches.iter().map(|c| pb::CacheEntry { name: c.name.clone(), path: c.path.clone() }).collect(),
        cipd_input: p.cipd_input.as_ref().map(|c| pb::CipdInput {
            server: c.server.clone(),
            client_package: c.client_package.as_ref().map(cipd_package_to_pb),
            packages: c.packages.iter().map(cipd_package_to_pb).collect(),
        }),
        command: p.command.clone(),
        relative_cwd: p.relative_cwd.clone(),
        dimensions: string_pairs(&dimensions),
        env: string_pairs(&env),
        env_prefixes: env_prefixes.into_iter().map(|(key, value)| pb::StringListPair { key, value }).collect(),
        execution_timeout_secs: p.execution_timeout_secs,
        grace_period_secs: p.grace_period_secs,
        idempotent: p.idempotent,
        cas_input_root: p.cas_input_root.as_ref().map(cas_reference_to_pb),
        io_timeout_secs: p.io_timeout_secs,
        outputs: p.outputs.clone(),
        secret_bytes,
        containment,
    }
}

/// A domain slice as a wire slice.
pub fn task_slice_to_pb(s: &TaskSlice, view: PropertiesView) -> pb::TaskSlice {
    pb::TaskSlice {
        properties: Some(task_properties_to_pb(&s.properties, view)),
        expiration_secs: s.expiration_secs,
        wait_for_capacity: s.wait_for_capacity,
    }
}

/// A domain new-task request as the wire request (CLI side; inverse of
/// [`new_task_request_from_pb`]).
pub fn new_task_request_to_pb(r: &task::NewTaskRequest) -> pb::NewTaskRequest {
    pb::NewTaskRequest {
        expiration_secs: r.expiration_secs,
        name: r.name.clone(),
        parent_task_id: r.parent_task_id.clone(),
        priority: r.priority,
        properties: r.properties.as_ref().map(|p| task_properties_to_pb(p, PropertiesView::Full)),
        task_slices: r.task_slices.iter().map(|s| task_slice_to_pb(s, PropertiesView::Full)).collect(),
        tags: r.tags.clone(),
        user: r.user.clone(),
        service_account: r.service_account.clone(),
        pubsub_topic: r.pubsub_topic.clone(),
        pubsub_auth_token: r.pubsub_auth_token.clone(),
        pubsub_userdata: r.pubsub_userdata.clone(),
        evaluate_only: r.evaluate_only,
        pool_task_template: r.pool_task_template,
        bot_ping_tolerance_secs: r.bot_ping_tolerance_secs,
        request_uuid: r.request_uuid.clone(),
        resultdb: r.resultdb_enable.then_some(pb::ResultDbCfg { enable: true }),
        realm: r.realm.clone(),
    }
}

/// The API echo of a stored request (docs/client-api.md#stored-request): summary `task_id`, total
/// `expiration_secs`, `properties` = slice 0, secrets redacted, pubsub auth
/// token never returned. For `evaluate_only` clear `task_id` afterwards.
pub fn task_request_response(r: &TaskRequest) -> pb::TaskRequestResponse {
    let task_slices: Vec<pb::TaskSlice> = r.slices.iter().map(|s| task_slice_to_pb(s, PropertiesView::Echo)).collect();
    pb::TaskRequestResponse {
        task_id: r.id.summary_id(),
        expiration_secs: i32::try_from(r.expiration_secs()).unwrap_or(i32::MAX),
        name: r.name.clone(),
        parent_task_id: r.parent_task_id.clone(),
        priority: r.priority,
        properties: task_slices.first().and_then(|s| s.properties.clone()),
        tags: r.tags.clone(),
        created_ts: Some(timestamp(r.created)),
        user: r.user.clone(),
        authenticated: r.authenticated.clone(),
        task_slices,
        service_account: r.service_account.clone(),
        realm: r.realm.clone(),
        resultdb: Some(pb::ResultDbCfg { enable: r.resultdb_enable }),
        pubsub_topic: r.pubsub_topic.clone(),
        pubsub_userdata: r.pubsub_userdata.clone(),
        bot_ping_tolerance_secs: r.bot_ping_tolerance_secs,
        rbe_instance: String::new(),
    }
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

fn operation_stats_to_pb(o: &Option<OperationStats>) -> Option<pb::OperationStats> {
    o.as_ref().map(|o| pb::OperationStats { duration: o.duration })
}

fn cas_stats_to_pb(o: &Option<OperationStats>) -> Option<pb::CasOperationStats> {
    o.as_ref().map(|o| pb::CasOperationStats { duration: o.duration, ..Default::default() })
}

/// Performance stats as the wire message.
pub fn performance_stats_to_pb(p: &PerformanceStats) -> pb::PerformanceStats {
    pb::PerformanceStats {
        bot_overhead: p.bot_overhead,
        isolated_download: cas_stats_to_pb(&p.isolated_download),
        isolated_upload: cas_stats_to_pb(&p.isolated_upload),
        package_installation: operation_stats_to_pb(&p.package_installation),
        cache_trim: operation_stats_to_pb(&p.cache_trim),
        named_caches_install: operation_stats_to_pb(&p.named_caches_install),
        named_caches_uninstall: operation_stats_to_pb(&p.named_caches_uninstall),
        cleanup: operation_stats_to_pb(&p.cleanup),
    }
}

/// Fields common to the summary and run views.
fn result_common(r: &TaskResult, include_performance_stats: bool) -> pb::TaskResultResponse {
    pb::TaskResultResponse {
        task_id: r.id.summary_id(),
        bot_dimensions: string_list_pairs(&r.bot_dimensions),
        bot_id: r.bot_id.clone(),
        bot_idle_since_ts: opt_timestamp(r.bot_idle_since),
        bot_version: r.bot_version.clone(),
        bot_logs_cloud_project: String::new(),
        completed_ts: opt_timestamp(r.completed),
        cost_saved_usd: 0.0,
        created_ts: Some(timestamp(r.created)),
        deduped_from: String::new(),
        duration: r.duration.unwrap_or(0.0) as f32,
        exit_code: r.exit_code.unwrap_or(0),
        failure: r.failure,
        internal_failure: r.internal_failure,
        modified_ts: Some(timestamp(r.modified)),
        cas_output_root: r.cas_output_root.as_ref().map(cas_reference_to_pb),
        server_versions: r.server_versions.clone(),
        started_ts: opt_timestamp(r.started),
        state: task_state_to_pb(r.state) as i32,
        abandoned_ts: opt_timestamp(r.abandoned),
        costs_usd: Vec::new(),
        name: r.name.clone(),
        tags: r.tags.clone(),
        user: r.user.clone(),
        performance_stats: if include_performance_stats {
            r.performance_stats.as_ref().map(performance_stats_to_pb)
        } else {
            None
        },
        cipd_pins: r.cipd_pins.as_ref().map(cipd_pins_to_pb),
        run_id: String::new(),
        current_task_slice: r.current_slice,
        resultdb_info: None,
        missing_cas: r.missing_cas.iter().map(cas_reference_to_pb).collect(),
        missing_cipd: r.missing_cipd.iter().map(cipd_package_to_pb).collect(),
    }
}

/// The summary view (GetResult, ListTasks, BatchGetResult; docs/client-api.md#result-view):
/// `task_id` ends in 0, `run_id` as described there, `costs_usd` = `[cost]` or empty
/// when 0, dedup fields kept. Performance stats only when asked for (the
/// caller decides whether the state allows them).
pub fn task_result_response(r: &TaskResult, include_performance_stats: bool) -> pb::TaskResultResponse {
    let mut out = result_common(r, include_performance_stats);
    out.run_id = r.run_id();
    out.costs_usd = if r.cost_usd != 0.0 { vec![r.cost_usd as f32] } else { Vec::new() };
    out.cost_saved_usd = r.cost_saved_usd as f32;
    out.deduped_from = r.deduped_from.clone();
    out
}

/// The run view (ListBotTasks, docs/client-api.md#bots-service): `task_id` still the summary id,
/// `run_id` ends in 1, `costs_usd` exactly one element, no dedup fields.
pub fn task_run_response(r: &TaskResult, include_performance_stats: bool) -> pb::TaskResultResponse {
    let mut out = result_common(r, include_performance_stats);
    out.run_id = r.id.run_id();
    out.costs_usd = vec![r.cost_usd as f32];
    out
}

// ---------------------------------------------------------------------------
// Bots
// ---------------------------------------------------------------------------

/// A bot as the wire BotInfo (docs/client-api.md#bots-and-events): `task_id` is the RUN id of the
/// current task, `state` the bot's JSON dict as a string.
pub fn bot_info(b: &BotInfo) -> pb::BotInfo {
    pb::BotInfo {
        bot_id: b.bot_id.clone(),
        task_id: b.task_id.map(|t| t.run_id()).unwrap_or_default(),
        external_ip: b.external_ip.clone(),
        authenticated_as: b.authenticated_as.clone(),
        first_seen_ts: if b.deleted { None } else { Some(timestamp(b.first_seen)) },
        is_dead: b.is_dead,
        last_seen_ts: Some(timestamp(b.last_seen)),
        quarantined: b.quarantined(),
        maintenance_msg: b.maintenance_msg.clone(),
        dimensions: string_list_pairs(&b.dimensions),
        task_name: b.task_name.clone(),
        version: b.version.clone(),
        state: b.state_json.clone(),
        deleted: b.deleted,
        session_id: b.session_id.clone(),
        termination_task_id: b.termination_task_id.clone(),
    }
}

/// A bot history entry as the wire event (docs/bot-protocol.md#events).
pub fn bot_event_response(e: &BotEvent) -> pb::BotEventResponse {
    pb::BotEventResponse {
        ts: Some(timestamp(e.ts)),
        event_type: e.event_type.clone(),
        message: e.message.clone(),
        dimensions: string_list_pairs(&e.dimensions),
        state: e.state_json.clone(),
        external_ip: e.external_ip.clone(),
        authenticated_as: e.authenticated_as.clone(),
        version: e.version.clone(),
        quarantined: e.quarantined,
        maintenance_msg: e.maintenance_msg.clone(),
        task_id: e.task_id.clone(),
        session_id: e.session_id.clone(),
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A status as the `google.rpc.Status` embedded in `BatchGetResultResponse`.
pub fn status_to_pb(s: &Status) -> pb::google::rpc::Status {
    pb::google::rpc::Status { code: s.code.as_i32(), message: s.message.clone(), details: Vec::new() }
}
