//! `GET /bot_code` and `GET /swarming/api/v1/bot/bot_code/<version>`
//! (bot spec §5.3; DESIGN §6). `/bot_code` answers the bytes directly so that
//! `curl -o muster-bot URL/bot_code` works without `-L`.

use crate::State;
use axum::extract::{Path, State as S};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

fn serve(state: &State) -> Response {
    let code = &state.bot_code;
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

pub(crate) async fn current(S(state): S<State>) -> Response {
    serve(&state)
}

pub(crate) async fn versioned(S(state): S<State>, Path(version): Path<String>) -> Response {
    if version == state.bot_code.version {
        serve(&state)
    } else {
        Redirect::to(&format!("/swarming/api/v1/bot/bot_code/{}", state.bot_code.version)).into_response()
    }
}
