//! `POST /swarming/api/v1/bot/handshake` (docs/bot-protocol.md#handshake).
//!
//! The bot's credentials must pass its group's auth (401 otherwise, nothing
//! stored), or it presents a one-time bootstrap token that is exchanged for
//! a machine token of its own (`crate::auth::bootstrap`). The new session becomes the bot's current one: calls with an
//! older session of the same bot id are refused, and the process holding it
//! is told to stop at its next poll (docs/bot-groups.md).

use super::{authorize, bot_id_of, decode, hello, is_python_bot, refresh, BotCaller};
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::{BotGroupCfg, HandshakeRequest, HandshakeResponse};
use muster_core::Error;
use std::net::SocketAddr;

fn valid_session_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 50 && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'/'))
}

pub(crate) async fn handle(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HandshakeResponse>, JsonError> {
    let req: HandshakeRequest = decode(&body)?;
    let bot_id = bot_id_of(&req.dimensions, &headers).ok_or_else(|| Error::invalid("dimensions.id is required"))?;
    let now = app.clock.now();
    let (caller, machine_token) = match crate::auth::bootstrap::presented_token(&headers) {
        None => (authorize(&app, &bot_id, peer.ip(), &headers).await?, None),
        Some(bootstrap) => {
            let key = &app.config.session_secret;
            let x = crate::auth::bootstrap::exchange(
                &app.bot_access,
                app.store.as_ref(),
                key,
                &bot_id,
                peer.ip(),
                bootstrap,
                now,
            )
            .await?;
            let caller = BotCaller { bot_id: bot_id.clone(), groups: x.groups, auth: x.auth, peer: peer.ip() };
            (caller, Some(x.machine_token))
        }
    };
    let session_id = match req.session_id.as_deref() {
        Some(s) if valid_session_id(s) => s.to_string(),
        _ => format!("autogen-{}-{:04x}", now.timestamp_millis(), rand::random::<u16>()),
    };
    let h = hello(&caller, &req.dimensions, &req.state, &req.version, &session_id);
    app.sched.handshake(h, now).await?;
    // The version this bot should run: the zip for Python bots, else ours.
    let bot_version = match &app.python_bot {
        Some(py) if is_python_bot(&headers) => py.current(now).await.version.clone(),
        _ => app.bot_code.version.clone(),
    };
    let group = caller.group();
    let (bot_config_name, bot_config) = match &group.hook_script {
        Some((name, body)) => (name.clone(), Some(body.clone())),
        None => ("bot_config.py".to_string(), None),
    };
    Ok(Json(HandshakeResponse {
        session: Some(refresh(&app, &bot_id, &session_id, &group.config_version(), now)),
        server_version: app.config.server_version.clone(),
        bot_version,
        bot_config,
        bot_config_name,
        bot_config_rev: app.config.server_version.clone(),
        bot_group_cfg: BotGroupCfg { dimensions: group.dimensions.clone() },
        machine_token,
    }))
}
