//! `POST /swarming/api/v1/bot/task_update[/<run id>]` (docs/bot-protocol.md#task-updates).

use super::{authorize, decode, refresh, require_session};
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::{TaskUpdateRequest, TaskUpdateResponse};
use muster_core::result::{OperationStats, PerformanceStats};
use muster_core::task::{CasReference, CipdPackage, CipdPins, Digest};
use muster_core::{Error, TaskId};
use muster_sched::TaskUpdateOp;
use serde_json::Value;
use std::net::SocketAddr;

/// Serves both `task_update` and `task_update/<run id>` (the bot always uses the latter).
pub(crate) async fn handle(
    s: S<State>,
    c: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Option<Path<String>>,
    body: Bytes,
) -> Result<Json<TaskUpdateResponse>, JsonError> {
    update(s, c, headers, path.map(|Path(id)| id), body).await
}

/// The task id of a bot call: path and body must agree when both are given.
pub(crate) fn task_id_of(path: Option<&str>, body: &str) -> Result<TaskId, Error> {
    let id = match (path, body) {
        (Some(p), b) if !b.is_empty() && p != b => {
            return Err(Error::invalid(format!("task id in path {p:?} differs from body {b:?}")))
        }
        (Some(p), _) => p,
        (None, b) if !b.is_empty() => b,
        _ => return Err(Error::invalid("task_id is required")),
    };
    TaskId::parse(id)
}

fn op_stats(v: &Option<Value>) -> Option<OperationStats> {
    v.as_ref().and_then(|v| v.get("duration")).and_then(Value::as_f64).map(|d| OperationStats { duration: d as f32 })
}

fn cas_ref(v: &Value) -> Option<CasReference> {
    let digest = v.get("digest")?;
    Some(CasReference {
        cas_instance: v.get("cas_instance")?.as_str()?.to_string(),
        digest: Some(Digest {
            hash: digest.get("hash")?.as_str()?.to_string(),
            size_bytes: digest.get("size_bytes").and_then(|s| s.as_i64().or_else(|| s.as_str()?.parse().ok()))?,
        }),
    })
}

pub(crate) fn cipd_pkg(v: &Value) -> Option<CipdPackage> {
    Some(CipdPackage {
        package_name: v.get("package_name")?.as_str()?.to_string(),
        version: v.get("version").and_then(Value::as_str).unwrap_or_default().to_string(),
        path: v.get("path").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

fn to_op(bot_id: &str, task_id: TaskId, r: &TaskUpdateRequest) -> Result<TaskUpdateOp, Error> {
    let output = r
        .output_bytes()
        .map_err(|e| Error::invalid(format!("output: {e}")))?
        .map(|bytes| (r.output_chunk_start.unwrap_or(0), bytes));
    let has_stats = r.bot_overhead.is_some() || r.isolated_stats.is_some() || r.named_caches_stats.is_some();
    let performance_stats = has_stats.then(|| PerformanceStats {
        bot_overhead: r.bot_overhead.unwrap_or(0.0) as f32,
        isolated_download: op_stats(&r.isolated_stats.as_ref().and_then(|s| s.get("download").cloned())),
        isolated_upload: op_stats(&r.isolated_stats.as_ref().and_then(|s| s.get("upload").cloned())),
        package_installation: op_stats(&r.cipd_stats),
        cache_trim: op_stats(&r.cache_trim_stats),
        named_caches_install: op_stats(&r.named_caches_stats.as_ref().and_then(|s| s.get("install").cloned())),
        named_caches_uninstall: op_stats(&r.named_caches_stats.as_ref().and_then(|s| s.get("uninstall").cloned())),
        cleanup: op_stats(&r.cleanup_stats),
    });
    let cipd_pins = r.cipd_pins.as_ref().map(|v| CipdPins {
        client_package: v.get("client_package").and_then(cipd_pkg),
        packages: v
            .get("packages")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(cipd_pkg).collect())
            .unwrap_or_default(),
    });
    Ok(TaskUpdateOp {
        bot_id: bot_id.to_string(),
        task_id,
        output,
        cost_usd: r.cost_usd,
        exit_code: r.exit_code,
        duration: r.duration,
        hard_timeout: r.hard_timeout.unwrap_or(false),
        io_timeout: r.io_timeout.unwrap_or(false),
        canceled: r.canceled.unwrap_or(false),
        performance_stats,
        cas_output_root: r.cas_output_root.as_ref().and_then(cas_ref),
        cipd_pins,
    })
}

async fn update(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path_id: Option<String>,
    body: Bytes,
) -> Result<Json<TaskUpdateResponse>, JsonError> {
    let req: TaskUpdateRequest = decode(&body)?;
    let now = app.clock.now();
    if req.id.is_empty() {
        return Err(Error::invalid("id is required").into());
    }
    // An older session of this bot may still finish the task it runs: the
    // scheduler accepts updates only for the task assigned to this bot.
    authorize(&app, &req.id, peer.ip(), &headers).await?;
    let session = require_session(&app, req.session.as_deref(), &req.id, now)?;
    let task_id = task_id_of(path_id.as_deref(), &req.task_id)?;
    let op = to_op(&req.id, task_id, &req)?;
    let out = app.sched.task_update(op, now).await?;
    Ok(Json(TaskUpdateResponse {
        ok: out.ok,
        must_stop: out.must_stop,
        stop_reason: (!out.ok).then(|| "task is not assigned to this bot".to_string()),
        session: Some(refresh(&app, &req.id, &session.session_id, &session.cfg, now)),
    }))
}
