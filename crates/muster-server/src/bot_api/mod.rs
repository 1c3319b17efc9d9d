//! The Swarming bot API (docs/bot-protocol.md).
//!
//! One file per endpoint. Every JSON endpoint answers JSON (errors too), never
//! redirects, and replies with a non-empty dict (the Python bot's quirks).

mod bot_code;
mod event;
mod handshake;
mod manifest;
mod poll;
mod server_ping;
mod task_error;
mod task_update;

use crate::auth::session::SessionError;
use crate::error::JsonError;
use crate::{AppState, State};
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use muster_botauth::{Authorized, BotGroups};
use muster_core::{Error, ErrorKind, Time};
use muster_sched::BotHello;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) fn routes() -> Router<State> {
    const P: &str = "/swarming/api/v1/bot";
    Router::new()
        .route(&format!("{P}/server_ping"), get(server_ping::handle))
        .route(&format!("{P}/handshake"), post(handshake::handle))
        .route(&format!("{P}/poll"), post(poll::handle))
        .route(&format!("{P}/task_update"), post(task_update::handle))
        .route(&format!("{P}/task_update/{{task_id}}"), post(task_update::handle))
        .route(&format!("{P}/task_error"), post(task_error::handle))
        .route(&format!("{P}/task_error/{{task_id}}"), post(task_error::handle))
        .route(&format!("{P}/event"), post(event::handle))
        .route(&format!("{P}/bot_code/{{version}}"), get(bot_code::versioned))
        .route("/bot_code", get(bot_code::current))
}

/// Decodes a JSON dict body leniently (unknown keys ignored).
pub(crate) fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, JsonError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| Error::invalid(format!("request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::invalid("request body must be a JSON object").into());
    }
    serde_json::from_value(v).map_err(|e| Error::invalid(format!("bad request body: {e}")).into())
}

/// The bot id a request speaks for: `dimensions.id[0]`, else the header.
pub(crate) fn bot_id_of(dims: &Value, headers: &HeaderMap) -> Option<String> {
    dims.get("id")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| headers.get("x-luci-swarming-bot-id").and_then(|v| v.to_str().ok()).map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// Whether the caller is a muster bot (as opposed to the upstream Python bot).
pub(crate) fn is_muster_bot(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("muster-bot"))
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Whether the caller is the upstream Python bot (`swarming_bot/1.0.0@host`).
pub(crate) fn is_python_bot(headers: &HeaderMap) -> bool {
    user_agent(headers).to_ascii_lowercase().starts_with("swarming_bot/")
}

/// Whether a `/bot_code` download comes from Python code (the bot itself, or
/// a bootstrap script using urllib/requests) rather than curl or a muster bot.
pub(crate) fn is_python_downloader(headers: &HeaderMap) -> bool {
    let ua = user_agent(headers).to_ascii_lowercase();
    ["swarming_bot/", "python-urllib/", "python-requests/"].iter().any(|p| ua.starts_with(p))
}

/// Text of a truthy `quarantined`/`maintenance` value (string or bool).
fn flag_text(v: Option<&Value>, default_msg: &str) -> String {
    match v {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Bool(true)) => default_msg.to_string(),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f != 0.0) => default_msg.to_string(),
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().filter_map(|x| x.as_str()).next().unwrap_or(default_msg).to_string()
        }
        _ => String::new(),
    }
}

/// A bot that passed its group's auth for this call.
pub(crate) struct BotCaller {
    pub bot_id: String,
    pub groups: Arc<BotGroups>,
    pub auth: Authorized,
    pub peer: IpAddr,
}

impl BotCaller {
    pub fn group(&self) -> &muster_botauth::BotGroup {
        self.groups.group(self.auth.group)
    }
}

/// Checks `bot_id`'s credentials against its group (every bot call).
/// Refused: 401, nothing stored.
pub(crate) async fn authorize(
    app: &AppState,
    bot_id: &str,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<BotCaller, JsonError> {
    let (groups, auth) = app.bot_access.authorize(app.store.as_ref(), bot_id, peer, headers).await?;
    Ok(BotCaller { bot_id: bot_id.to_string(), groups, auth, peer })
}

/// Whether a session is the bot's latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Currency {
    Current,
    /// A newer handshake of the same bot id replaced it: the process holding
    /// it may finish its running task, then is told to stop.
    Superseded,
}

/// Compares a session with the bot's latest handshake. Memory may lag a
/// peer replica, so a mismatch is confirmed against the store.
pub(crate) async fn currency(app: &AppState, bot_id: &str, session_id: &str) -> Result<Currency, JsonError> {
    match app.sched.bot_session(bot_id) {
        None => return Ok(Currency::Current),
        Some(s) if s.is_empty() || s == session_id => return Ok(Currency::Current),
        Some(_) => {}
    }
    Ok(match app.store.get_bot(bot_id).await? {
        Some(b) if !b.session_id.is_empty() && b.session_id != session_id => Currency::Superseded,
        _ => Currency::Current,
    })
}

/// Builds what the scheduler needs from a bot's dimensions and state: the
/// group's dimensions replace the reported ones for every trusted key and
/// every key the group sets. Invalid dimensions do not reject the call:
/// they quarantine the bot. `session_id` is empty except at handshake (only
/// a handshake changes the bot's current session).
pub(crate) fn hello(caller: &BotCaller, dims: &Value, state: &Value, version: &str, session_id: &str) -> BotHello {
    let bot_id = caller.bot_id.as_str();
    let mut quarantined = String::new();
    let reported = match muster_api::bot::parse_dimensions(dims) {
        Ok(d) => d,
        Err(e) => {
            quarantined = e;
            muster_core::BotDimensions::default()
        }
    };
    let merged = caller.groups.merge_dimensions(caller.auth.group, &reported.0);
    let mut dimensions = muster_core::BotDimensions::from_map(merged);
    dimensions.0.insert("id".to_string(), vec![bot_id.to_string()]);
    if quarantined.is_empty() {
        if let Err(e) = muster_core::validate::validate_bot_dimensions(&dimensions) {
            quarantined = e.message;
        }
    }
    if quarantined.is_empty() {
        quarantined = flag_text(state.get("quarantined"), "quarantined by the bot");
    }
    if quarantined.is_empty() {
        quarantined = flag_text(dims.get("quarantined"), "quarantined by the bot");
    }
    let maintenance_msg = flag_text(state.get("maintenance"), "in maintenance");
    let state_json = if state.is_object() { state.to_string() } else { "{}".to_string() };
    BotHello {
        bot_id: bot_id.to_string(),
        dimensions,
        state_json,
        version: version.to_string(),
        session_id: session_id.to_string(),
        external_ip: caller.peer.to_string(),
        authenticated_as: caller.auth.identity.clone(),
        quarantined_msg: quarantined,
        maintenance_msg,
    }
}

/// Verifies a session token for a non-poll call; maps failures to 401/403.
pub(crate) fn require_session(
    app: &AppState,
    token: Option<&str>,
    bot_id: &str,
    now: Time,
) -> Result<crate::auth::session::Session, JsonError> {
    app.sessions.verify(token, Some(bot_id), now).map_err(|e| {
        let kind = if e == SessionError::WrongBot { ErrorKind::PermissionDenied } else { ErrorKind::Unauthenticated };
        JsonError(Error::new(kind, e.to_string()))
    })
}

/// A fresh token for `bot_id`/`session_id` (group config version `cfg`),
/// valid from `now`.
pub(crate) fn refresh(app: &AppState, bot_id: &str, session_id: &str, cfg: &str, now: Time) -> String {
    let expiry = now.timestamp() + app.config.session_expiry.as_secs() as i64;
    app.sessions.issue(bot_id, session_id, expiry, cfg)
}
