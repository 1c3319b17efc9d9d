//! `POST /swarming/api/v1/bot/poll` (docs/bot-protocol.md#poll, #poll-commands).
//!
//! Decision order: credentials (401), session (missing/expired →
//! `bot_restart`, another bot's → 403, replaced by a newer handshake of the
//! same bot → `terminate`), version (→ `update`), the group's config changed
//! since the handshake (→ `bot_restart`), then the scheduler: `run`,
//! `terminate` or `sleep` (quarantine and maintenance included).
//!
//! Version check: muster bots (User-Agent `muster-bot/…`) are compared with
//! the muster executable for their platform; upstream Python bots
//! (`swarming_bot/…`) with the `swarming_bot.zip` digest when the server has
//! `--python-bot-dir`. Like the Go server, an empty `version` is never told to
//! update (the Python bot always sends its digest; an empty one means a bot
//! that cannot self-update). Other callers are never told to update.

use super::{authorize, bot_id_of, currency, decode, hello, is_muster_bot, is_python_bot, manifest, refresh, Currency};
use crate::auth::session::SessionError;
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::{cmd, PollRequest, PollResponse};
use muster_core::{Error, ErrorKind};
use muster_sched::PollOutcome;
use std::net::SocketAddr;

pub(crate) async fn handle(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PollResponse>, JsonError> {
    let req: PollRequest = decode(&body)?;
    let bot_id = bot_id_of(&req.dimensions, &headers).ok_or_else(|| Error::invalid("dimensions.id is required"))?;
    let caller = authorize(&app, &bot_id, peer.ip(), &headers).await?;
    let now = app.clock.now();
    let session = match app.sessions.verify(req.session.as_deref(), Some(&bot_id), now) {
        Ok(s) => s,
        Err(SessionError::WrongBot) => {
            return Err(Error::new(ErrorKind::PermissionDenied, "session token belongs to another bot").into())
        }
        Err(e) => {
            return Ok(Json(PollResponse {
                cmd: cmd::BOT_RESTART.to_string(),
                message: Some(format!("Bot session invalid: {e}")),
                ..Default::default()
            }))
        }
    };
    if currency(&app, &bot_id, &session.session_id).await? == Currency::Superseded {
        // Another process handshook as this bot since: this one must stop
        // (not restart, which would displace the other in turn).
        return Ok(Json(PollResponse {
            cmd: cmd::TERMINATE.to_string(),
            task_id: Some(String::new()),
            message: Some("another process handshook as this bot; stopping".to_string()),
            ..Default::default()
        }));
    }
    if is_muster_bot(&headers) && !req.version.is_empty() {
        let platform = req.state.get("platform").and_then(|v| v.as_str());
        if let Some(version) = app.bot_code.update_for(platform, &req.version) {
            request_update(&app, &caller, &req, &version, now).await;
            return Ok(Json(PollResponse {
                cmd: cmd::UPDATE.to_string(),
                version: Some(version),
                ..Default::default()
            }));
        }
    }
    // The bot's group changed its forced dimensions or hook script since the
    // handshake (a config reload): restart so that the bot picks them up.
    if !session.cfg.is_empty() && session.cfg != caller.group().config_version() {
        return Ok(Json(PollResponse {
            cmd: cmd::BOT_RESTART.to_string(),
            message: Some("Restarting to pick up new bots.cfg config".to_string()),
            ..Default::default()
        }));
    }
    if let Some(py) = app.python_bot.as_ref().filter(|_| is_python_bot(&headers) && !req.version.is_empty()) {
        let current = py.current(now).await;
        if req.version != current.version {
            request_update(&app, &caller, &req, &current.version, now).await;
            return Ok(Json(PollResponse {
                cmd: cmd::UPDATE.to_string(),
                version: Some(current.version.clone()),
                ..Default::default()
            }));
        }
    }
    let request_uuid = req.request_uuid.clone().unwrap_or_default();
    let h = hello(&caller, &req.dimensions, &req.state, &req.version, "");
    let authenticated_as = h.authenticated_as.clone();
    // The poll may stay parked for a long time: free the request before waiting
    // (20,000 parked bots each holding a body and headers add up).
    drop((req, body, headers));
    let outcome = app.sched.poll(h, &request_uuid, now).await?;
    // The reply is sent after a (possibly long) poll: refresh from a fresh read.
    let token = refresh(&app, &bot_id, &session.session_id, &session.cfg, app.clock.now());
    let reply = match outcome {
        PollOutcome::Run { request, result } => {
            record_dispatch(&request, &result, now);
            PollResponse {
                cmd: cmd::RUN.to_string(),
                manifest: Some(manifest::build(&request, &result, &authenticated_as)?),
                session: Some(token),
                ..Default::default()
            }
        }
        PollOutcome::Terminate { task_id } => PollResponse {
            cmd: cmd::TERMINATE.to_string(),
            task_id: Some(task_id.run_id()),
            session: Some(token),
            ..Default::default()
        },
        PollOutcome::Sleep { duration, quarantined } => PollResponse {
            cmd: cmd::SLEEP.to_string(),
            duration: Some(duration.as_secs_f64()),
            quarantined: Some(quarantined),
            session: Some(token),
            ..Default::default()
        },
    };
    Ok(Json(reply))
}

/// Dispatch latency: from the moment both the task and this bot were
/// waiting (the later of the task's creation and the poll's arrival) to
/// the committed claim.
fn record_dispatch(
    request: &muster_core::TaskRequest,
    result: &muster_core::TaskResult,
    poll_arrived: muster_core::Time,
) {
    let Some(started) = result.started else { return };
    let from = request.created.max(poll_arrived);
    let secs = (started - from).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
    let pool = request.slices.get(result.current_slice.max(0) as usize).and_then(|s| s.properties.dimensions.pool());
    metrics::histogram!("muster_task_dispatch_latency_seconds", "pool" => muster_observe::pool_label(pool))
        .record(secs);
}

/// Records the `request_update` bot event (as upstream does each time a bot
/// is told to update). A failure to record does not stop the update.
async fn request_update(
    app: &crate::AppState,
    caller: &super::BotCaller,
    req: &PollRequest,
    version: &str,
    now: muster_core::Time,
) {
    let bot_id = caller.bot_id.as_str();
    let h = hello(caller, &req.dimensions, &req.state, &req.version, "");
    if let Err(e) = app.sched.bot_event(h, "request_update", &format!("update to {version}"), now).await {
        tracing::warn!(bot_id, error = %e.message, "recording request_update");
    }
}
