//! `POST /swarming/api/v1/bot/task_error[/<run id>]` (docs/bot-protocol.md#task-errors).
//! Replies `{}`: the Python bot accepts only `{}` or a dict with `resp`.

use super::task_update::{cipd_pkg, task_id_of};
use super::{authorize, decode, require_session};
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::TaskErrorRequest;
use muster_core::task::{CasReference, Digest};
use muster_core::Error;
use muster_sched::TaskErrorOp;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// Serves both `task_error` and `task_error/<run id>` (the bot always uses the latter).
pub(crate) async fn handle(
    s: S<State>,
    c: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Option<Path<String>>,
    body: Bytes,
) -> Result<Json<Value>, JsonError> {
    report(s, c, headers, path.map(|Path(id)| id), body).await
}

fn missing_cas(v: &Value) -> Option<CasReference> {
    let digest = v.get("digest")?.as_str()?;
    let (hash, size) = digest.split_once('/')?;
    Some(CasReference {
        cas_instance: v.get("instance").and_then(Value::as_str).unwrap_or_default().to_string(),
        digest: Some(Digest { hash: hash.to_string(), size_bytes: size.parse().ok()? }),
    })
}

async fn report(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path_id: Option<String>,
    body: Bytes,
) -> Result<Json<Value>, JsonError> {
    let req: TaskErrorRequest = decode(&body)?;
    let now = app.clock.now();
    if req.id.is_empty() {
        return Err(Error::invalid("id is required").into());
    }
    // An older session of this bot may still finish the task it runs: the
    // scheduler accepts updates only for the task assigned to this bot.
    authorize(&app, &req.id, peer.ip(), &headers).await?;
    require_session(&app, req.session.as_deref(), &req.id, now)?;
    let task_id = task_id_of(path_id.as_deref(), &req.task_id)?;
    let ce = req.client_error.unwrap_or_default();
    let op = TaskErrorOp {
        bot_id: req.id.clone(),
        task_id,
        message: req.message,
        missing_cas: ce.missing_cas.iter().filter_map(missing_cas).collect(),
        missing_cipd: ce.missing_cipd.iter().filter_map(cipd_pkg).collect(),
    };
    app.sched.task_error(op, now).await?;
    Ok(Json(json!({})))
}
