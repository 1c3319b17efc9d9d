//! `POST /swarming/api/v1/bot/event` (docs/bot-protocol.md#events).

use super::{bot_id_of, decode, hello, require_session};
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::{EventRequest, BOT_EVENTS};
use muster_core::Error;
use serde_json::{json, Value};
use std::net::SocketAddr;

pub(crate) async fn handle(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, JsonError> {
    crate::auth::bots::check(&app.config.bot_auth, peer.ip(), &headers)?;
    let req: EventRequest = decode(&body)?;
    let now = app.clock.now();
    let bot_id = bot_id_of(&req.dimensions, &headers).ok_or_else(|| Error::invalid("dimensions.id is required"))?;
    if !BOT_EVENTS.contains(&req.event.as_str()) {
        return Err(Error::invalid(format!("unsupported event {:?}; expected one of {BOT_EVENTS:?}", req.event)).into());
    }
    let session = require_session(&app, req.session.as_deref(), &bot_id, now)?;
    let h = hello(&app, &bot_id, &req.dimensions, &req.state, &req.version, &session.session_id, peer.ip());
    app.sched.bot_event(h, &req.event, &req.message, now).await?;
    Ok(Json(json!({})))
}
