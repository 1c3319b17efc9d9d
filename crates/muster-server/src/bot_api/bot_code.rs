//! `GET /bot_code` and `GET /swarming/api/v1/bot/bot_code/<version>`
//! (bot spec §5.3; DESIGN §6). `/bot_code` answers the bytes directly so that
//! `curl -o muster-bot URL/bot_code` works without `-L`.

use crate::bot_code::{own_platform, PlatformCode};
use crate::error::JsonError;
use crate::State;
use axum::extract::{Path, Query, State as S};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use muster_core::Error;
use std::collections::HashMap;

fn serve(code: &PlatformCode) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"muster-bot\"".to_string()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_string()),
            (header::HeaderName::from_static("x-muster-bot-version"), code.version.clone()),
        ],
        code.bytes.clone(),
    )
        .into_response()
}

/// `/bot_code[?platform=<os>-<arch>]`: the server's own platform by default.
pub(crate) async fn current(S(state): S<State>, Query(q): Query<HashMap<String, String>>) -> Response {
    let platform = q.get("platform").cloned().unwrap_or_else(own_platform);
    match state.bot_code.for_platform(&platform) {
        Some(code) => serve(code),
        None => JsonError(Error::not_found(format!(
            "no bot build for platform {platform:?}; this server has {:?}",
            state.bot_code.platforms.keys().collect::<Vec<_>>()
        )))
        .into_response(),
    }
}

pub(crate) async fn versioned(S(state): S<State>, Path(version): Path<String>) -> Response {
    match state.bot_code.by_version(&version) {
        Some(code) => serve(code),
        None => Redirect::to(&format!("/swarming/api/v1/bot/bot_code/{}", state.bot_code.version)).into_response(),
    }
}
