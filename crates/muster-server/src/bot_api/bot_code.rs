//! `GET /bot_code` and `GET /swarming/api/v1/bot/bot_code/<version>`
//! (docs/bot-protocol.md#bot-code, #python-bot-code).
//!
//! `/bot_code` answers the muster executable directly so that
//! `curl -o muster-bot URL/bot_code` works without `-L`. `/bot_code?bot=python`,
//! and any `/bot_code` request whose User-Agent is the Python bot's or a
//! Python HTTP library's (a bootstrap script), is redirected (302) to
//! `/swarming/api/v1/bot/bot_code/<zip digest>` instead; `?bot=muster` forces
//! the executable. The versioned URL serves whichever artifact has that
//! digest (a muster build or the zip); an unknown digest is redirected to the
//! current artifact of the caller's kind.

use super::is_python_downloader;
use crate::bot_code::{own_platform, PlatformCode};
use crate::error::JsonError;
use crate::State;
use axum::extract::{Path, Query, State as S};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use muster_core::Error;
use std::collections::HashMap;

const VERSIONED: &str = "/swarming/api/v1/bot/bot_code";

fn serve(bytes: Bytes, version: &str, filename: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::CACHE_CONTROL, "public, max-age=3600".to_string()),
            (header::HeaderName::from_static("x-muster-bot-version"), version.to_string()),
        ],
        bytes,
    )
        .into_response()
}

fn serve_exe(code: &PlatformCode) -> Response {
    serve(code.bytes.clone(), &code.version, "muster-bot")
}

/// A 302 (what Swarming sends; the Python bot's downloader follows it).
fn found(version: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, format!("{VERSIONED}/{version}"))]).into_response()
}

fn no_python_code() -> Response {
    JsonError(Error::not_found(
        "this server has no Python bot code: start it with --python-bot-dir <luci-py/appengine/swarming/swarming_bot>",
    ))
    .into_response()
}

/// Whether a `/bot_code` request asks for the Python zip.
fn wants_python(q: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    match q.get("bot").map(String::as_str) {
        Some("python") => true,
        Some(_) => false,
        None => q.get("platform").is_none() && is_python_downloader(headers),
    }
}

/// `/bot_code[?platform=<os>-<arch>][?bot=python|muster]`.
pub(crate) async fn current(
    S(state): S<State>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if wants_python(&q, &headers) {
        return match &state.python_bot {
            Some(py) => found(&py.current(state.clock.now()).await.version),
            None => no_python_code(),
        };
    }
    if let Some(bot) = q.get("bot").filter(|b| b.as_str() != "muster") {
        return JsonError(Error::invalid(format!("unknown bot kind {bot:?}: expected \"muster\" or \"python\"")))
            .into_response();
    }
    let platform = q.get("platform").cloned().unwrap_or_else(own_platform);
    match state.bot_code.for_platform(&platform) {
        Some(code) => serve_exe(code),
        None => JsonError(Error::not_found(format!(
            "no bot build for platform {platform:?}; this server has {:?}",
            state.bot_code.platforms.keys().collect::<Vec<_>>()
        )))
        .into_response(),
    }
}

pub(crate) async fn versioned(S(state): S<State>, headers: HeaderMap, Path(version): Path<String>) -> Response {
    if let Some(code) = state.bot_code.by_version(&version) {
        return serve_exe(code);
    }
    if let Some(py) = &state.python_bot {
        let zip = py.current(state.clock.now()).await;
        if zip.version == version {
            return serve(zip.bytes.clone(), &zip.version, "swarming_bot.zip");
        }
        if is_python_downloader(&headers) {
            return found(&zip.version);
        }
    }
    found(&state.bot_code.version)
}
