//! `POST /swarming/api/v1/bot/event` (docs/bot-protocol.md#events).

use super::{authorize, bot_id_of, currency, decode, hello, require_session, Currency};
use crate::error::JsonError;
use crate::State;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State as S};
use axum::http::HeaderMap;
use axum::Json;
use muster_api::bot::{EventRequest, BOT_EVENTS};
use muster_core::{Error, ErrorKind};
use serde_json::{json, Value};
use std::net::SocketAddr;

pub(crate) async fn handle(
    S(app): S<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, JsonError> {
    let req: EventRequest = decode(&body)?;
    let bot_id = bot_id_of(&req.dimensions, &headers).ok_or_else(|| Error::invalid("dimensions.id is required"))?;
    let caller = authorize(&app, &bot_id, peer.ip(), &headers).await?;
    let now = app.clock.now();
    if !BOT_EVENTS.contains(&req.event.as_str()) {
        return Err(Error::invalid(format!("unsupported event {:?}; expected one of {BOT_EVENTS:?}", req.event)).into());
    }
    let session = require_session(&app, req.session.as_deref(), &bot_id, now)?;
    if currency(&app, &bot_id, &session.session_id).await? == Currency::Superseded {
        return Err(Error::new(ErrorKind::Unauthenticated, "session replaced by a newer handshake of this bot").into());
    }
    let h = hello(&caller, &req.dimensions, &req.state, &req.version, "");
    app.sched.bot_event(h, &req.event, &req.message, now).await?;
    Ok(Json(json!({})))
}
